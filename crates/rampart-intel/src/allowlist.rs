//! Allowlists: known-good values that must never alert, and the answer to "which list said so".
//!
//! Match types follow MISP warninglists — `cidr`, `hostname`, `string`, `substring`, `regex` —
//! with the fixes its users asked for: lists apply to every indicator (not only `to_ids` ones),
//! a listed network covers networks inside it (CIDR-in-CIDR), a hostname entry covers its
//! sub-domains and the hosts of URLs and e-mail addresses, and every hit names its list and
//! entry. MISP warninglist files (`list.json`) import as they are.

use std::net::IpAddr;

use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::canon::{self, Ioc, Network, host_ioc, parent_domains, url_parts};
use crate::kind::IocKind;

/// How a list's entries match.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchType {
    /// Networks (or addresses): an address, or a network inside one, matches.
    Cidr,
    /// Domain names: the name, its sub-domains, and URLs / e-mail addresses on them match.
    Hostname,
    /// The exact canonical value.
    String,
    /// A substring of the canonical value (case-insensitive).
    Substring,
    /// A regular expression over the canonical value.
    Regex,
}

impl std::str::FromStr for MatchType {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "cidr" => MatchType::Cidr,
            "hostname" => MatchType::Hostname,
            "string" => MatchType::String,
            "substring" => MatchType::Substring,
            "regex" => MatchType::Regex,
            other => {
                return Err(format!(
                    "unknown allowlist type `{other}` (cidr, hostname, string, substring, regex)"
                ));
            }
        })
    }
}

impl MatchType {
    /// The type's name.
    pub fn as_str(self) -> &'static str {
        match self {
            MatchType::Cidr => "cidr",
            MatchType::Hostname => "hostname",
            MatchType::String => "string",
            MatchType::Substring => "substring",
            MatchType::Regex => "regex",
        }
    }
}

/// An allowlist as defined: name, type, entries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AllowlistDef {
    /// Unique name.
    pub name: String,
    /// How entries match.
    pub match_type: MatchType,
    /// The entries as written.
    pub entries: Vec<String>,
    /// What the list is for.
    pub description: Option<String>,
}

/// An entry that is not valid for its list's type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("allowlist {list}, entry {index} `{entry}`: {reason}")]
pub struct AllowlistError {
    /// The list.
    pub list: String,
    /// 0-based position of the entry.
    pub index: usize,
    /// The entry.
    pub entry: String,
    /// What is wrong.
    pub reason: String,
}

/// Which list and entry matched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct AllowHit {
    /// The list's name.
    pub list: String,
    /// The entry that matched, as written.
    pub entry: String,
}

enum Compiled {
    Cidr(Vec<(Network, usize)>),
    Hostname(std::collections::HashMap<String, usize>),
    String(std::collections::HashMap<String, usize>),
    Substring(Vec<(String, usize)>),
    Regex(Vec<(Regex, usize)>),
}

struct List {
    def: AllowlistDef,
    compiled: Compiled,
}

/// Compiled allowlists, checked in name order; the first hit is reported.
#[derive(Default)]
pub struct Allowlists {
    lists: Vec<List>,
}

impl std::fmt::Debug for Allowlists {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.lists.iter().map(|l| &l.def.name))
            .finish()
    }
}

/// Networks every deployment treats as not routable on the Internet: private (RFC 1918,
/// RFC 4193), loopback, link-local, CGNAT, documentation, multicast and unspecified. A feed
/// listing them is wrong, and blocking them breaks the local network.
pub fn builtin_non_routable() -> AllowlistDef {
    AllowlistDef {
        name: "builtin-non-routable".into(),
        match_type: MatchType::Cidr,
        entries: [
            "0.0.0.0/8",
            "10.0.0.0/8",
            "100.64.0.0/10",
            "127.0.0.0/8",
            "169.254.0.0/16",
            "172.16.0.0/12",
            "192.0.2.0/24",
            "192.168.0.0/16",
            "198.18.0.0/15",
            "198.51.100.0/24",
            "203.0.113.0/24",
            "224.0.0.0/4",
            "240.0.0.0/4",
            "::/128",
            "::1/128",
            "fc00::/7",
            "fe80::/10",
            "ff00::/8",
            "2001:db8::/32",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect(),
        description: Some("Non-routable and reserved address space (built in).".into()),
    }
}

/// A MISP warninglist file (`list.json`: name, type, list, description).
#[derive(Debug, Deserialize)]
struct Warninglist {
    name: String,
    #[serde(rename = "type")]
    kind: String,
    list: Vec<String>,
    #[serde(default)]
    description: Option<String>,
}

/// Reads a MISP warninglist file into a definition (`name` overrides the list's own name).
pub fn from_warninglist(bytes: &[u8], name: Option<&str>) -> Result<AllowlistDef, String> {
    let w: Warninglist =
        serde_json::from_slice(bytes).map_err(|e| format!("not a MISP warninglist: {e}"))?;
    let match_type = w.kind.parse::<MatchType>()?;
    Ok(AllowlistDef {
        name: name.map_or_else(|| slug(&w.name), str::to_owned),
        match_type,
        entries: w.list,
        description: w.description,
    })
}

fn slug(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    s.split('-')
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join("-")
}

fn compile(def: &AllowlistDef) -> Result<Compiled, AllowlistError> {
    let err = |index: usize, entry: &str, reason: String| AllowlistError {
        list: def.name.clone(),
        index,
        entry: entry.to_owned(),
        reason,
    };
    Ok(match def.match_type {
        MatchType::Cidr => {
            let mut nets = Vec::with_capacity(def.entries.len());
            for (i, e) in def.entries.iter().enumerate() {
                let net = if e.contains('/') {
                    canon::network(e.trim()).map_err(|r| err(i, e, r.to_string()))?
                } else {
                    let addr = canon::ip(e.trim()).map_err(|r| err(i, e, r.to_string()))?;
                    let prefix = if addr.is_ipv4() { 32 } else { 128 };
                    Network { addr, prefix }
                };
                nets.push((net, i));
            }
            Compiled::Cidr(nets)
        }
        MatchType::Hostname => {
            let mut names = std::collections::HashMap::new();
            for (i, e) in def.entries.iter().enumerate() {
                let name = canon::domain(e.trim().trim_start_matches("*.").trim_start_matches('.'))
                    .map_err(|r| err(i, e, r.to_string()))?;
                names.entry(name).or_insert(i);
            }
            Compiled::Hostname(names)
        }
        MatchType::String => {
            let mut values = std::collections::HashMap::new();
            for (i, e) in def.entries.iter().enumerate() {
                // Entries are compared with canonical values: canonicalise what can be.
                let v = canon::detect(e)
                    .map(|ioc| ioc.value)
                    .unwrap_or_else(|_| e.trim().to_owned());
                values.entry(v).or_insert(i);
            }
            Compiled::String(values)
        }
        MatchType::Substring => Compiled::Substring(
            def.entries
                .iter()
                .enumerate()
                .filter(|(_, e)| !e.trim().is_empty())
                .map(|(i, e)| (e.trim().to_lowercase(), i))
                .collect(),
        ),
        MatchType::Regex => {
            let mut out = Vec::with_capacity(def.entries.len());
            for (i, e) in def.entries.iter().enumerate() {
                // MISP stores PCRE-style `/…/i`; accept both that and a bare pattern.
                let (pattern, insensitive) =
                    match e.strip_prefix('/').and_then(|r| r.rsplit_once('/')) {
                        Some((p, flags)) => (p.to_owned(), flags.contains('i')),
                        None => (e.clone(), false),
                    };
                let re = regex::RegexBuilder::new(&pattern)
                    .case_insensitive(insensitive)
                    .size_limit(1 << 20)
                    .build()
                    .map_err(|r| err(i, e, r.to_string()))?;
                out.push((re, i));
            }
            Compiled::Regex(out)
        }
    })
}

impl Allowlists {
    /// Compiles definitions; an invalid entry names its list and position.
    pub fn new(defs: Vec<AllowlistDef>) -> Result<Allowlists, AllowlistError> {
        let mut lists = Vec::with_capacity(defs.len());
        for def in defs {
            let compiled = compile(&def)?;
            lists.push(List { def, compiled });
        }
        lists.sort_by(|a, b| a.def.name.cmp(&b.def.name));
        Ok(Allowlists { lists })
    }

    /// Checks a canonical indicator; the first matching list and entry, if any.
    pub fn check(&self, ioc: &Ioc) -> Option<AllowHit> {
        let host = host_of(ioc);
        let network = network_of(ioc, host.as_ref());
        for list in &self.lists {
            let found = match &list.compiled {
                Compiled::Cidr(nets) => network.and_then(|n| {
                    nets.iter()
                        .find(|(net, _)| net.prefix <= n.prefix && net.contains(n.addr))
                        .map(|(_, i)| *i)
                }),
                Compiled::Hostname(names) => host
                    .as_ref()
                    .filter(|h| h.kind == IocKind::Domain)
                    .and_then(|h| {
                        std::iter::once(h.value.as_str())
                            .chain(parent_domains(&h.value))
                            .find_map(|d| names.get(d).copied())
                    }),
                Compiled::String(values) => values.get(&ioc.value).copied(),
                Compiled::Substring(subs) => {
                    let lower = ioc.value.to_lowercase();
                    subs.iter()
                        .find(|(s, _)| lower.contains(s.as_str()))
                        .map(|(_, i)| *i)
                }
                Compiled::Regex(res) => res
                    .iter()
                    .find(|(re, _)| re.is_match(&ioc.value))
                    .map(|(_, i)| *i),
            };
            if let Some(i) = found {
                return Some(AllowHit {
                    list: list.def.name.clone(),
                    entry: list.def.entries.get(i).cloned().unwrap_or_default(),
                });
            }
        }
        None
    }

    /// Number of lists.
    pub fn len(&self) -> usize {
        self.lists.len()
    }

    /// Whether there is no list.
    pub fn is_empty(&self) -> bool {
        self.lists.is_empty()
    }
}

/// The host an indicator is about: itself for domains and addresses, the host of a URL, the
/// domain of an e-mail address, the address of an `ip:port`.
fn host_of(ioc: &Ioc) -> Option<Ioc> {
    match ioc.kind {
        IocKind::Domain | IocKind::Ipv4 | IocKind::Ipv6 => Some(ioc.clone()),
        IocKind::Url => url_parts(&ioc.value).and_then(|p| host_ioc(p.host)),
        IocKind::Email => ioc
            .value
            .rsplit_once('@')
            .map(|(_, d)| Ioc::new(IocKind::Domain, d)),
        IocKind::IpPort => canon::split_ip_port(&ioc.value).ok().map(|(a, _)| match a {
            IpAddr::V4(v) => Ioc::new(IocKind::Ipv4, v.to_string()),
            IpAddr::V6(v) => Ioc::new(IocKind::Ipv6, v.to_string()),
        }),
        _ => None,
    }
}

fn network_of(ioc: &Ioc, host: Option<&Ioc>) -> Option<Network> {
    if ioc.kind == IocKind::Cidr {
        return canon::network(&ioc.value).ok();
    }
    let host = host.filter(|h| matches!(h.kind, IocKind::Ipv4 | IocKind::Ipv6))?;
    let addr = canon::ip(&host.value).ok()?;
    Some(Network {
        addr,
        prefix: if addr.is_ipv4() { 32 } else { 128 },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::canon::detect;

    fn lists() -> Allowlists {
        Allowlists::new(vec![
            builtin_non_routable(),
            AllowlistDef {
                name: "top-sites".into(),
                match_type: MatchType::Hostname,
                entries: vec!["google.com".into(), "*.dropbox.com".into()],
                description: None,
            },
            AllowlistDef {
                name: "exact".into(),
                match_type: MatchType::String,
                entries: vec!["D41D8CD98F00B204E9800998ECF8427E".into()],
                description: None,
            },
            AllowlistDef {
                name: "cdn-substring".into(),
                match_type: MatchType::Substring,
                entries: vec!["akamaiedge".into()],
                description: None,
            },
            AllowlistDef {
                name: "updates-regex".into(),
                match_type: MatchType::Regex,
                entries: vec!["/^https?://[a-z0-9.-]*windowsupdate\\.com//i".into()],
                description: None,
            },
        ])
        .unwrap_or_else(|e| panic!("{e}"))
    }

    fn hit(value: &str) -> Option<(String, String)> {
        let ioc = detect(value).unwrap_or_else(|e| panic!("{value}: {e}"));
        lists().check(&ioc).map(|h| (h.list, h.entry))
    }

    #[test]
    fn each_match_type_says_which_list_and_entry() {
        let nr = "builtin-non-routable".to_owned();
        assert_eq!(hit("10.1.2.3"), Some((nr.clone(), "10.0.0.0/8".into())));
        assert_eq!(
            hit("10.1.0.0/16"),
            Some((nr.clone(), "10.0.0.0/8".into())),
            "CIDR inside CIDR"
        );
        assert_eq!(
            hit("10.0.0.0/7"),
            None,
            "a network larger than the listed one is not covered"
        );
        assert_eq!(
            hit("http://192.168.1.1:8080/admin"),
            Some((nr.clone(), "192.168.0.0/16".into()))
        );
        assert_eq!(
            hit("172.16.5.5:443"),
            Some((nr.clone(), "172.16.0.0/12".into()))
        );
        assert_eq!(hit("fe80::1"), Some((nr, "fe80::/10".into())));
        assert_eq!(hit("8.8.8.8"), None);
        assert_eq!(
            hit("mail.google.com"),
            Some(("top-sites".into(), "google.com".into()))
        );
        assert_eq!(
            hit("https://www.dropbox.com/scl/fi/x.msi"),
            Some(("top-sites".into(), "*.dropbox.com".into()))
        );
        assert_eq!(
            hit("user@google.com"),
            Some(("top-sites".into(), "google.com".into()))
        );
        assert_eq!(hit("notgoogle.com"), None);
        assert_eq!(
            hit("d41d8cd98f00b204e9800998ecf8427e"),
            Some(("exact".into(), "D41D8CD98F00B204E9800998ECF8427E".into()))
        );
        assert_eq!(
            hit("e1.a.akamaiedge.net"),
            Some(("cdn-substring".into(), "akamaiedge".into()))
        );
        assert_eq!(
            hit("http://download.WindowsUpdate.com/x.cab").map(|h| h.0),
            Some("updates-regex".into())
        );
    }

    #[test]
    fn bad_entries_name_the_list_and_position() {
        let e = Allowlists::new(vec![AllowlistDef {
            name: "nets".into(),
            match_type: MatchType::Cidr,
            entries: vec!["10.0.0.0/8".into(), "10.0.0.0/33".into()],
            description: None,
        }])
        .err()
        .unwrap_or_else(|| panic!("invalid entry accepted"));
        assert_eq!(
            (e.list.as_str(), e.index, e.entry.as_str()),
            ("nets", 1, "10.0.0.0/33")
        );
        let e = Allowlists::new(vec![AllowlistDef {
            name: "re".into(),
            match_type: MatchType::Regex,
            entries: vec!["(unclosed".into()],
            description: None,
        }]);
        assert!(e.is_err());
        assert!(
            from_warninglist(b"{\"name\":\"x\",\"type\":\"bogus\",\"list\":[]}", None).is_err()
        );
    }
}
