//! The kinds of indicator Rampart knows, and their stable names.
//!
//! The names are part of the API, the database and every export: they never change once
//! released. The dedup key of an indicator is `(kind, canonical value)`, so two kinds must never
//! share canonical forms that mean the same thing (a `/32` CIDR is an `ipv4`, not a `cidr`).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// What an indicator's value is.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
#[repr(u8)]
pub enum IocKind {
    /// An IPv4 address, dotted quad.
    Ipv4 = 1,
    /// An IPv6 address, RFC 5952 text form.
    Ipv6 = 2,
    /// An IPv4 or IPv6 network with host bits masked, never a single address.
    Cidr = 3,
    /// An address and a port (`1.2.3.4:443`, `[2001:db8::1]:443`).
    IpPort = 4,
    /// A domain or host name, IDNA ASCII form, lowercase, no trailing dot.
    Domain = 5,
    /// A URL: scheme and host lowercased, default port dropped, the rest byte for byte.
    Url = 6,
    /// An e-mail address; the domain is canonicalised, the local part is kept.
    Email = 7,
    /// MD5 of a file.
    Md5 = 8,
    /// SHA-1 of a file.
    Sha1 = 9,
    /// SHA-224 of a file.
    Sha224 = 10,
    /// SHA-256 of a file.
    Sha256 = 11,
    /// SHA-384 of a file.
    Sha384 = 12,
    /// SHA-512 of a file.
    Sha512 = 13,
    /// ssdeep fuzzy hash (case-sensitive base64 alphabet).
    Ssdeep = 14,
    /// TLSH fuzzy hash.
    Tlsh = 15,
    /// PE import hash (MD5 of the import table).
    Imphash = 16,
    /// JA3 / JA3S TLS fingerprint (MD5).
    Ja3 = 17,
    /// SHA-1 fingerprint of an X.509 certificate (SSL blacklist).
    X509Sha1 = 18,
    /// A CVE identifier.
    Cve = 19,
    /// An autonomous system number.
    Asn = 20,
    /// A MITRE ATT&CK technique or sub-technique id.
    AttackTechnique = 21,
    /// A file name.
    Filename = 22,
    /// A mutex name.
    Mutex = 23,
    /// A STIX pattern that does not reduce to simple comparisons, kept whole.
    StixPattern = 24,
    /// Anything else a feed marks as an indicator (user agents, registry keys, …), kept verbatim.
    Other = 25,
}

impl IocKind {
    /// Every kind, in declaration order.
    pub const ALL: [IocKind; 25] = [
        IocKind::Ipv4,
        IocKind::Ipv6,
        IocKind::Cidr,
        IocKind::IpPort,
        IocKind::Domain,
        IocKind::Url,
        IocKind::Email,
        IocKind::Md5,
        IocKind::Sha1,
        IocKind::Sha224,
        IocKind::Sha256,
        IocKind::Sha384,
        IocKind::Sha512,
        IocKind::Ssdeep,
        IocKind::Tlsh,
        IocKind::Imphash,
        IocKind::Ja3,
        IocKind::X509Sha1,
        IocKind::Cve,
        IocKind::Asn,
        IocKind::AttackTechnique,
        IocKind::Filename,
        IocKind::Mutex,
        IocKind::StixPattern,
        IocKind::Other,
    ];

    /// The stable name used in the API, the database and exports.
    pub fn as_str(self) -> &'static str {
        match self {
            IocKind::Ipv4 => "ipv4",
            IocKind::Ipv6 => "ipv6",
            IocKind::Cidr => "cidr",
            IocKind::IpPort => "ip_port",
            IocKind::Domain => "domain",
            IocKind::Url => "url",
            IocKind::Email => "email",
            IocKind::Md5 => "md5",
            IocKind::Sha1 => "sha1",
            IocKind::Sha224 => "sha224",
            IocKind::Sha256 => "sha256",
            IocKind::Sha384 => "sha384",
            IocKind::Sha512 => "sha512",
            IocKind::Ssdeep => "ssdeep",
            IocKind::Tlsh => "tlsh",
            IocKind::Imphash => "imphash",
            IocKind::Ja3 => "ja3",
            IocKind::X509Sha1 => "x509_sha1",
            IocKind::Cve => "cve",
            IocKind::Asn => "asn",
            IocKind::AttackTechnique => "attack_technique",
            IocKind::Filename => "filename",
            IocKind::Mutex => "mutex",
            IocKind::StixPattern => "stix_pattern",
            IocKind::Other => "other",
        }
    }

    /// The compact number stored in the index and the database.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// The kind stored under `code`, if any.
    pub fn from_code(code: u8) -> Option<IocKind> {
        IocKind::ALL.get(usize::from(code).checked_sub(1)?).copied()
    }

    /// The kind of a code read back from the store (stored as a wider integer).
    pub fn from_stored(code: i64) -> Option<IocKind> {
        u8::try_from(code).ok().and_then(IocKind::from_code)
    }

    /// Whether the kind names a file hash (the members of an equivalence set).
    pub fn is_file_hash(self) -> bool {
        matches!(
            self,
            IocKind::Md5
                | IocKind::Sha1
                | IocKind::Sha224
                | IocKind::Sha256
                | IocKind::Sha384
                | IocKind::Sha512
                | IocKind::Ssdeep
                | IocKind::Tlsh
                | IocKind::Imphash
        )
    }

    /// Whether the kind is network infrastructure a firewall or resolver can block.
    pub fn is_network(self) -> bool {
        matches!(
            self,
            IocKind::Ipv4
                | IocKind::Ipv6
                | IocKind::Cidr
                | IocKind::IpPort
                | IocKind::Domain
                | IocKind::Url
        )
    }
}

impl fmt::Display for IocKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The name given is not a kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown indicator kind `{0}` (known: ipv4, ipv6, cidr, ip_port, domain, url, email, md5, sha1, sha224, sha256, sha384, sha512, ssdeep, tlsh, imphash, ja3, x509_sha1, cve, asn, attack_technique, filename, mutex, stix_pattern, other)"
)]
pub struct UnknownKind(pub String);

impl FromStr for IocKind {
    type Err = UnknownKind;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        IocKind::ALL
            .iter()
            .copied()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| UnknownKind(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_codes_round_trip() {
        for kind in IocKind::ALL {
            assert_eq!(kind.as_str().parse::<IocKind>(), Ok(kind));
            assert_eq!(IocKind::from_code(kind.code()), Some(kind));
            let json = serde_json::to_string(&kind).unwrap_or_default();
            assert_eq!(json, format!("\"{}\"", kind.as_str()));
        }
        assert_eq!(IocKind::from_code(0), None);
        assert_eq!(IocKind::from_code(26), None);
        assert!("IPv4".parse::<IocKind>().is_err());
    }
}
