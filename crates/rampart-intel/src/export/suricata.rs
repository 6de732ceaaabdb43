//! Suricata 7 rules from indicators.
//!
//! Each rule matches its indicator and nothing else, judged by what Suricata actually sees:
//!
//! * **Addresses and networks** go into the rule header (`alert ip $HOME_NET any -> [addr]`),
//!   never into a text buffer: `86.54.24.29` as content would also hit `186.54.24.29`, and an
//!   address never appears in TLS SNI (RFC 6066 §3 forbids literal addresses there).
//! * **Domains** match on a label boundary in DNS queries, TLS SNI and the HTTP host
//!   (`dotprefix; content:".evil.cy"; endswith;`): `sub.evil.cy` alerts, `notevil.cy` does not.
//!   `http.host` is normalised to lower case by Suricata, so it takes no `nocase`.
//! * **http URLs** match their exact host and their exact request target (`startswith;
//!   endswith;`, so `/i` never hits `/index.php`). A target with percent-escapes, dot segments
//!   or bytes outside printable ASCII is matched against `http.uri.raw`, because the normalised
//!   `http.uri` buffer holds the decoded form and would never contain them.
//! * **https URLs** show only their host (SNI). A URL naming just the host (`https://h/`) becomes
//!   an exact SNI rule; one with a path cannot be matched without matching every other path on
//!   that host (a payload on a file-sharing site would alert on all traffic to the site), so it
//!   gets no rule. When its host is itself listed, the host's own rules cover it.
//! * **Certificate SHA-1s** (SSL blacklist) become `tls.cert_fingerprint` rules and **JA3**
//!   values `ja3.hash` rules.
//!
//! Every byte Suricata treats specially in `content` is written as hex (`|7C|` for `|`), and the
//! header of the file says how many indicators were left out and why.
//!
//! Rule ids: `sid = SID_BASE + RULES_PER_INDICATOR × indicator id + rule number`, so an
//! indicator keeps its sids across exports (suppressions and thresholds stay valid) and one
//! indicator may need up to four rules (a domain: DNS, TLS, HTTP).

use std::collections::HashSet;
use std::fmt::Write as _;
use std::net::IpAddr;

use crate::canon;
use crate::kind::IocKind;

use super::Exported;

/// The first sid Rampart uses. Far above the ranges public rulesets allocate (Emerging Threats
/// 2,000,000–2,999,999, Suricata's own 2,200,000–2,299,999, abuse.ch SSLBL from 902,200,000).
pub const SID_BASE: u64 = 3_000_000_000;
/// Sids reserved per indicator (a domain needs three).
pub const RULES_PER_INDICATOR: u64 = 4;
/// The largest sid Suricata accepts (a 32-bit unsigned integer).
const SID_MAX: u64 = u32::MAX as u64;

/// The sid of rule `n` of an indicator, if it fits Suricata's 32-bit sids.
pub fn sid(indicator_id: u64, n: u64) -> Option<u64> {
    let sid = indicator_id
        .checked_mul(RULES_PER_INDICATOR)?
        .checked_add(SID_BASE)?
        .checked_add(n)?;
    (n < RULES_PER_INDICATOR && sid <= SID_MAX).then_some(sid)
}

/// Why an indicator got no rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LeftOut {
    /// Its kind has no Suricata keyword (file hashes, e-mail addresses, …).
    NoRuleForm(IocKind),
    /// An https URL with a path whose host is not listed: TLS hides the path.
    HttpsPath,
    /// An https URL with a path whose host is listed: the host's rules already apply.
    CoveredByHost,
    /// A URL of another scheme than http or https.
    Scheme,
    /// Its id is too large for Suricata's 32-bit sids.
    SidRange,
}

impl LeftOut {
    /// The reason as the export header and the CLI say it.
    pub fn describe(self) -> String {
        match self {
            LeftOut::NoRuleForm(kind) => format!("{kind} (no Suricata keyword matches this kind)"),
            LeftOut::HttpsPath => {
                "https URLs with a path (TLS hides the path; a rule on the host would match every other path on it, and the host is not listed)".to_owned()
            }
            LeftOut::CoveredByHost => {
                "https URLs with a path whose host is listed (the host's own rules cover them)"
                    .to_owned()
            }
            LeftOut::Scheme => "URLs of a scheme other than http and https".to_owned(),
            LeftOut::SidRange => format!(
                "indicators whose id does not fit a 32-bit sid (above {})",
                (SID_MAX - SID_BASE) / RULES_PER_INDICATOR
            ),
        }
    }
}

/// Builds rules for a set of indicators; knows which hosts the set lists, so that an https URL
/// with a path can tell "covered by its host" from "left out".
pub struct RuleSet {
    /// Domains and addresses that get rules of their own.
    listed: HashSet<String>,
}

impl RuleSet {
    /// Prepares rules for `items` (every item that will be written).
    pub fn new(items: &[Exported]) -> RuleSet {
        let listed = items
            .iter()
            .filter(|e| {
                matches!(
                    e.ioc.kind,
                    IocKind::Domain | IocKind::Ipv4 | IocKind::Ipv6 | IocKind::Cidr
                )
            })
            .map(|e| e.ioc.value.clone())
            .collect();
        RuleSet { listed }
    }

    /// Whether the rules of a listed domain or address cover this URL host: the host itself,
    /// one of its parent domains (domain rules match sub-domains), or a network holding it.
    fn host_listed(&self, host: &str) -> bool {
        if let Some(addr) = literal_address(host) {
            return self.listed.contains(&addr.to_string())
                || networks_holding(addr).any(|n| self.listed.contains(&n));
        }
        let mut rest = host;
        loop {
            if self.listed.contains(rest) {
                return true;
            }
            match rest.split_once('.') {
                Some((_, parent)) if parent.contains('.') => rest = parent,
                _ => return false,
            }
        }
    }

    /// The rules of one indicator, one per line, or why it has none.
    pub fn rules(&self, e: &Exported) -> Result<Vec<String>, LeftOut> {
        let kind = e.ioc.kind;
        let v = e.ioc.value.as_str();
        let mut rules = Rules::new(e);
        match kind {
            IocKind::Ipv4 | IocKind::Ipv6 | IocKind::Cidr => {
                rules.push("ip", "$HOME_NET", &format!("[{v}]"), "any", IP_THRESHOLD)?;
            }
            IocKind::IpPort => {
                let (addr, port) =
                    canon::split_ip_port(v).map_err(|_| LeftOut::NoRuleForm(kind))?;
                let dst = format!("[{addr}]");
                let port = port.to_string();
                rules.push("tcp", "$HOME_NET", &dst, &port, IP_THRESHOLD)?;
                rules.push("udp", "$HOME_NET", &dst, &port, IP_THRESHOLD)?;
            }
            IocKind::Domain => {
                let label = content(&format!(".{v}"));
                rules.push(
                    "dns",
                    "$HOME_NET",
                    "any",
                    "any",
                    &format!("dns.query; dotprefix; content:\"{label}\"; nocase; endswith;"),
                )?;
                rules.push(
                    "tls",
                    "$HOME_NET",
                    "any",
                    "any",
                    &format!("tls.sni; dotprefix; content:\"{label}\"; nocase; endswith;"),
                )?;
                rules.push(
                    "http",
                    "$HOME_NET",
                    "any",
                    "any",
                    &format!("http.host; dotprefix; content:\"{label}\"; endswith;"),
                )?;
            }
            IocKind::Url => self.url_rules(&mut rules, v)?,
            IocKind::X509Sha1 => {
                rules.push(
                    "tls",
                    "$EXTERNAL_NET",
                    "$HOME_NET",
                    "any",
                    &format!(
                        "tls.cert_fingerprint; content:\"{}\";",
                        colon_hex(&v.to_ascii_lowercase())
                    ),
                )?;
            }
            IocKind::Ja3 => {
                rules.push(
                    "tls",
                    "$HOME_NET",
                    "any",
                    "any",
                    &format!(
                        "ja3.hash; content:\"{}\";",
                        content(&v.to_ascii_lowercase())
                    ),
                )?;
            }
            _ => return Err(LeftOut::NoRuleForm(kind)),
        }
        Ok(rules.lines)
    }

    fn url_rules(&self, rules: &mut Rules<'_>, v: &str) -> Result<(), LeftOut> {
        let parts = canon::url_parts(v).ok_or(LeftOut::NoRuleForm(IocKind::Url))?;
        let target = request_target(v);
        let literal = literal_address(parts.host);
        match parts.scheme {
            "http" => {
                let port = parts.port.map_or("any".to_owned(), |p| p.to_string());
                let buffer = if needs_raw(target) {
                    "http.uri.raw"
                } else {
                    "http.uri"
                };
                let uri = format!(
                    "{buffer}; content:\"{}\"; startswith; endswith;",
                    content(target)
                );
                match literal {
                    // The Host header of a request to an address may carry anything; the
                    // destination address is what identifies it.
                    Some(addr) => {
                        rules.push("http", "$HOME_NET", &format!("[{addr}]"), &port, &uri)
                    }
                    None => rules.push(
                        "http",
                        "$HOME_NET",
                        "any",
                        &port,
                        &format!(
                            "http.host; content:\"{}\"; startswith; endswith; {uri}",
                            content(parts.host)
                        ),
                    ),
                }
            }
            "https" if target != "/" => {
                if self.host_listed(parts.host) {
                    Err(LeftOut::CoveredByHost)
                } else {
                    Err(LeftOut::HttpsPath)
                }
            }
            "https" => match literal {
                Some(addr) => {
                    let port = parts.port.unwrap_or(443).to_string();
                    rules.push(
                        "tcp",
                        "$HOME_NET",
                        &format!("[{addr}]"),
                        &port,
                        IP_THRESHOLD,
                    )
                }
                None => {
                    let port = parts.port.map_or("any".to_owned(), |p| p.to_string());
                    rules.push(
                        "tls",
                        "$HOME_NET",
                        "any",
                        &port,
                        &format!(
                            "tls.sni; content:\"{}\"; nocase; startswith; endswith;",
                            content(parts.host)
                        ),
                    )
                }
            },
            _ => Err(LeftOut::Scheme),
        }
    }
}

/// Header-only rules alert on every packet; one alert per source and hour is what an analyst
/// can read (the same as Emerging Threats' reputation rules).
const IP_THRESHOLD: &str = "threshold:type limit, track by_src, count 1, seconds 3600;";

/// The rules of one indicator as they are built.
struct Rules<'e> {
    e: &'e Exported,
    lines: Vec<String>,
}

impl<'e> Rules<'e> {
    fn new(e: &'e Exported) -> Rules<'e> {
        Rules {
            e,
            lines: Vec::new(),
        }
    }

    fn push(
        &mut self,
        proto: &str,
        src: &str,
        dst: &str,
        dst_port: &str,
        body: &str,
    ) -> Result<(), LeftOut> {
        let e = self.e;
        let sid = sid(e.id, self.lines.len() as u64).ok_or(LeftOut::SidRange)?;
        let mut msg = format!("Rampart intel {} {}", e.ioc.kind, e.ioc.value);
        if let Some(t) = &e.threat_type {
            let _ = write!(msg, " {t}");
        }
        if let Some(f) = &e.family {
            let _ = write!(msg, " {f}");
        }
        let body = if body.is_empty() {
            String::new()
        } else {
            format!("{body} ")
        };
        self.lines.push(format!(
            "alert {proto} {src} any -> {dst} {dst_port} (msg:\"{}\"; {body}classtype:{}; metadata:rampart_kind {}, rampart_score {}; sid:{sid}; rev:1;)",
            msg_text(&msg),
            classtype(e.threat_type.as_deref()),
            e.ioc.kind,
            e.score,
        ));
        Ok(())
    }
}

/// The address a URL host names when it is an IP literal (`1.2.3.4`, `[2001:db8::1]`).
fn literal_address(host: &str) -> Option<IpAddr> {
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok()
}

/// Every network holding `a`, in Rampart's canonical CIDR form (host bits masked), from the
/// longest prefix to `/0`: a few dozen set lookups instead of a walk over every listed network.
fn networks_holding(a: IpAddr) -> impl Iterator<Item = String> {
    let (bits, max) = match a {
        IpAddr::V4(v4) => (u128::from(u32::from(v4)), 32u32),
        IpAddr::V6(v6) => (u128::from(v6), 128u32),
    };
    (0..max).rev().map(move |len| {
        let mask = u128::MAX.checked_shl(max - len).unwrap_or(0) & (u128::MAX >> (128 - max));
        let net = bits & mask;
        match a {
            IpAddr::V4(_) => format!(
                "{}/{len}",
                std::net::Ipv4Addr::from(u32::try_from(net).unwrap_or(0))
            ),
            IpAddr::V6(_) => format!("{}/{len}", std::net::Ipv6Addr::from(net)),
        }
    })
}

/// The request target an HTTP client sends for a canonical URL: path and query, without the
/// fragment (never sent) and without user information (sent as a header, not in the target).
fn request_target(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let target = rest.find('/').map_or("/", |i| &rest[i..]);
    let target = target.split('#').next().unwrap_or(target);
    if target.is_empty() { "/" } else { target }
}

/// Whether Suricata's normalised `http.uri` would differ from the bytes of `target`: libhtp
/// decodes percent-escapes and removes dot segments and repeated slashes there.
fn needs_raw(target: &str) -> bool {
    let path = target.split('?').next().unwrap_or(target);
    target.bytes().any(|b| b == b'%' || !b.is_ascii_graphic())
        || path.contains("//")
        || path.split('/').any(|seg| seg == "." || seg == "..")
}

/// A `content` string: bytes Suricata treats specially (`"`, `;`, `\`, `|`), spaces, controls
/// and non-ASCII are written as hex between pipes.
fn content(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut in_hex = false;
    for b in value.bytes() {
        let plain = b.is_ascii_graphic() && !matches!(b, b'"' | b';' | b'\\' | b'|');
        if plain {
            if in_hex {
                out.push('|');
                in_hex = false;
            }
            out.push(char::from(b));
        } else {
            if in_hex {
                out.push(' ');
            } else {
                out.push('|');
                in_hex = true;
            }
            let _ = write!(out, "{b:02X}");
        }
    }
    if in_hex {
        out.push('|');
    }
    out
}

/// `aabbcc…` → `aa:bb:cc:…`, the form of Suricata's `tls.cert_fingerprint` buffer.
fn colon_hex(hex: &str) -> String {
    let bytes = hex.as_bytes();
    let mut out = String::with_capacity(bytes.len() * 3 / 2);
    for (i, pair) in bytes.chunks(2).enumerate() {
        if i > 0 {
            out.push(':');
        }
        out.push_str(std::str::from_utf8(pair).unwrap_or_default());
    }
    out
}

/// Longest `msg` text written: a multi-kilobyte URL makes an unreadable alert.
const MSG_MAX: usize = 160;

/// A `msg` value: printable ASCII without the characters Suricata's option parser treats
/// specially, cut to a readable length.
fn msg_text(text: &str) -> String {
    let mut out: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && !matches!(c, '"' | ';' | '\\' | '|') || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .take(MSG_MAX + 1)
        .collect();
    if out.len() > MSG_MAX {
        out.truncate(MSG_MAX - 3);
        out.push_str("...");
    }
    out
}

/// The classtype for a feed's threat type (names from Suricata's `classification.config`).
pub fn classtype(threat_type: Option<&str>) -> &'static str {
    match threat_type.unwrap_or_default() {
        "botnet_cc" | "c2" | "c&c" | "command-and-control" => "command-and-control",
        "phishing" => "social-engineering",
        "malware_download" | "payload_delivery" | "payload" | "malware" => "trojan-activity",
        _ => "bad-unknown",
    }
}

/// Writes the header lines: what the file holds, the sid scheme, and every reason for which
/// indicators were left out with its count ([`super::ExportSummary::left_out_lines`]).
pub fn header(out: &mut String, generated: &str, indicators: u64, rules: u64, left_out: &[String]) {
    let _ = writeln!(
        out,
        "# Rampart threat-intel rules for Suricata 7, generated {generated}"
    );
    let _ = writeln!(
        out,
        "# {indicators} indicators as {rules} rules; sid = {SID_BASE} + {RULES_PER_INDICATOR} x indicator id + rule number (0-3); see docs/intel.md"
    );
    if left_out.is_empty() {
        let _ = writeln!(out, "# left out: none");
    }
    for line in left_out {
        let _ = writeln!(out, "# left out: {line}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_escapes_every_special_byte_as_hex() {
        assert_eq!(content("/a|b\"c;d\\e"), "/a|7C|b|22|c|3B|d|5C|e");
        assert_eq!(content("/a b \t"), "/a|20|b|20 09|");
        assert_eq!(content("/ü"), "/|C3 BC|");
        assert_eq!(content("plain.example"), "plain.example");
    }

    #[test]
    fn request_target_drops_fragment_and_user_info() {
        assert_eq!(request_target("http://u:p@h.example/a?b#c"), "/a?b");
        assert_eq!(request_target("http://h.example/"), "/");
        assert_eq!(request_target("http://h.example:8080/x"), "/x");
    }

    #[test]
    fn raw_buffer_for_targets_libhtp_normalises() {
        assert!(needs_raw("/a%20b"));
        assert!(needs_raw("/a/../b"));
        assert!(needs_raw("//a"));
        assert!(needs_raw("/a/./b"));
        assert!(!needs_raw("/a/b.php?x=1&y=..//"));
        assert!(!needs_raw("/index.php"));
    }

    #[test]
    fn sids_are_stable_and_bounded() {
        assert_eq!(sid(0, 0), Some(3_000_000_000));
        assert_eq!(sid(7, 2), Some(3_000_000_030));
        assert_eq!(sid(7, 4), None, "four rules per indicator at most");
        let last = (SID_MAX - SID_BASE) / RULES_PER_INDICATOR;
        assert_eq!(sid(last, 3), Some(SID_MAX));
        assert_eq!(sid(last + 1, 0), None);
    }

    #[test]
    fn messages_are_safe_and_short() {
        assert_eq!(msg_text("a\"b;c\\d|e f"), "a_b_c_d_e f");
        let long = msg_text(&"x".repeat(500));
        assert_eq!(long.len(), MSG_MAX);
        assert!(long.ends_with("..."));
    }

    #[test]
    fn networks_holding_an_address_in_canonical_form() {
        let v4: Vec<String> = networks_holding("10.1.2.3".parse().unwrap()).collect();
        assert_eq!(v4.len(), 32);
        assert_eq!(v4[0], "10.1.2.2/31");
        assert!(v4.contains(&"10.0.0.0/8".to_owned()));
        assert!(v4.contains(&"10.1.2.0/24".to_owned()));
        assert_eq!(v4[31], "0.0.0.0/0");
        let v6: Vec<String> = networks_holding("2001:db8::1".parse().unwrap()).collect();
        assert_eq!(v6.len(), 128);
        assert!(v6.contains(&"2001:db8::/32".to_owned()));
        assert_eq!(v6[127], "::/0");
    }
}
