//! Compliance frameworks and the many spellings policies use for them.
//!
//! Wazuh 4.x CIS policies say `nist_sp_800-53` and `pci_dss_v4.0`, the older `sca_unix_audit`
//! says `nist_800_53` and `pci_dss`, 5.x says `tsc` for SOC 2. Scores per framework only make
//! sense if those land on one name, so every compliance key is normalised here.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::fmt;

/// A compliance framework, by canonical name.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(transparent)]
pub struct Framework(String);

/// Canonical framework names with the keys that map to them and a human title.
const KNOWN: &[(&str, &str, &[&str])] = &[
    ("cis", "CIS Benchmarks", &["cis"]),
    ("cis_csc_v7", "CIS Controls v7", &["cis_csc_v7", "cis_csc"]),
    ("cis_csc_v8", "CIS Controls v8", &["cis_csc_v8"]),
    (
        "nist_800_53",
        "NIST SP 800-53",
        &[
            "nist_800_53",
            "nist_sp_800-53",
            "nist_sp_800_53",
            "nist-800-53",
            "nist",
        ],
    ),
    (
        "nist_800_171",
        "NIST SP 800-171",
        &["nist_800_171", "nist_sp_800-171"],
    ),
    (
        "pci_dss_4.0",
        "PCI DSS 4.0",
        &[
            "pci_dss_4.0",
            "pci_dss_v4.0",
            "pci_dss_v4",
            "pci_dss_4",
            "pci_dss",
        ],
    ),
    (
        "pci_dss_3.2.1",
        "PCI DSS 3.2.1",
        &["pci_dss_3.2.1", "pci_dss_v3.2.1"],
    ),
    (
        "soc_2",
        "SOC 2 (Trust Services Criteria)",
        &["soc_2", "soc2", "tsc"],
    ),
    ("hipaa", "HIPAA", &["hipaa"]),
    (
        "iso_27001",
        "ISO/IEC 27001",
        &["iso_27001", "iso_27001-2013", "iso_27001_2013", "iso27001"],
    ),
    ("cmmc", "CMMC 2.0", &["cmmc", "cmmc_v2.0"]),
    ("gdpr", "GDPR", &["gdpr"]),
    ("nis2", "NIS2", &["nis2"]),
    ("fedramp", "FedRAMP", &["fedramp"]),
    ("stig", "DISA STIG", &["stig", "disa_stig"]),
];

impl Framework {
    /// Normalises a compliance key as written in a policy. Unknown keys are kept (lower-cased) so
    /// that an organisation's own framework still gets its own score.
    pub fn from_key(key: &str) -> Framework {
        let lower = key.trim().to_ascii_lowercase();
        for (canonical, _, aliases) in KNOWN {
            if aliases.contains(&lower.as_str()) {
                return Framework((*canonical).to_string());
            }
        }
        Framework(lower)
    }

    /// Looks up a framework the user named on the command line; only known frameworks (by any
    /// alias) are accepted, so a typo is an error instead of an empty report.
    pub fn parse_known(name: &str) -> Option<Framework> {
        let f = Framework::from_key(name);
        f.is_known().then_some(f)
    }

    /// Whether this is one of the frameworks Rampart knows by name.
    pub fn is_known(&self) -> bool {
        KNOWN.iter().any(|(c, _, _)| *c == self.0)
    }

    /// Whether the key is a MITRE ATT&CK key rather than a compliance framework.
    pub fn is_mitre_key(key: &str) -> bool {
        key.trim().to_ascii_lowercase().starts_with("mitre")
    }

    /// The canonical name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A human title (the canonical name for frameworks Rampart does not know).
    pub fn title(&self) -> &str {
        KNOWN
            .iter()
            .find(|(c, _, _)| *c == self.0)
            .map(|(_, t, _)| *t)
            .unwrap_or(&self.0)
    }

    /// Canonical names of every known framework, for help texts and error messages.
    pub fn known_names() -> Vec<&'static str> {
        KNOWN.iter().map(|(c, _, _)| *c).collect()
    }
}

impl fmt::Display for Framework {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wazuh_spellings_normalise() {
        assert_eq!(
            Framework::from_key("nist_sp_800-53").as_str(),
            "nist_800_53"
        );
        assert_eq!(Framework::from_key("NIST_800_53").as_str(), "nist_800_53");
        assert_eq!(Framework::from_key("pci_dss_v4.0").as_str(), "pci_dss_4.0");
        assert_eq!(
            Framework::from_key("pci_dss_v3.2.1").as_str(),
            "pci_dss_3.2.1"
        );
        assert_eq!(Framework::from_key("tsc").as_str(), "soc_2");
        assert_eq!(Framework::from_key("iso_27001-2013").as_str(), "iso_27001");
        assert_eq!(
            Framework::from_key("acme_internal").as_str(),
            "acme_internal"
        );
        assert!(!Framework::from_key("acme_internal").is_known());
    }

    #[test]
    fn command_line_names_must_be_known() {
        assert!(Framework::parse_known("nist_800_53").is_some());
        assert!(Framework::parse_known("soc2").is_some());
        assert!(Framework::parse_known("nist_800_35").is_none());
    }

    #[test]
    fn mitre_keys_are_not_frameworks() {
        assert!(Framework::is_mitre_key("mitre_techniques"));
        assert!(!Framework::is_mitre_key("cis"));
    }
}
