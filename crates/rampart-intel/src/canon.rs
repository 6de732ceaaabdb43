//! One canonical form per indicator kind, and strict validation with a reason for every
//! rejection.
//!
//! Deduplication is only as good as canonicalisation: OpenCTI's duplicate bugs (hash case,
//! pattern whitespace, quoting) and MISP's near-duplicates all come from comparing values as
//! the feed wrote them. Every value entering Rampart goes through [`canonicalize`] (when the feed
//! says what it is) or [`detect`] (free text, lookups), and the result is the only form stored,
//! indexed and exported. The raw value is kept beside it in the observation.
//!
//! The rules follow the reference notes (MISP's `AttributeValidationTool`, IntelMQ's
//! harmonisation, the STIX and KEV schemas) and are listed on [`canonicalize`].

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::kind::IocKind;

/// Longest value accepted for any kind: long enough for real phishing URLs with tracking
/// parameters, short enough that one hostile row cannot blow up the index.
pub const MAX_VALUE_LEN: usize = 8192;

/// A validated indicator value in its canonical form.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct Ioc {
    /// Its kind (may differ from the kind asked for: a `/32` CIDR is an `ipv4`).
    pub kind: IocKind,
    /// Its canonical value.
    pub value: String,
}

impl Ioc {
    /// Builds an indicator from parts already known to be canonical (index and store reads).
    pub fn new(kind: IocKind, value: impl Into<String>) -> Ioc {
        Ioc {
            kind,
            value: value.into(),
        }
    }
}

impl std::fmt::Display for Ioc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.kind, self.value)
    }
}

/// Why a value was rejected. The text is shown to users next to the file and line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// Nothing left after trimming.
    #[error("empty value")]
    Empty,
    /// Longer than [`MAX_VALUE_LEN`].
    #[error("value is {len} bytes long, the limit is {MAX_VALUE_LEN}")]
    TooLong {
        /// Its length.
        len: usize,
    },
    /// Control characters or whitespace where none may be.
    #[error("contains whitespace or control characters")]
    Whitespace,
    /// Not an IPv4 address.
    #[error("not an IPv4 address (dotted quad, no leading zeros)")]
    Ipv4,
    /// Not an IPv6 address.
    #[error("not an IPv6 address")]
    Ipv6,
    /// Not `address/prefix`, or the prefix is out of range.
    #[error("not a network (`address/prefix`, prefix 0–32 for IPv4, 0–128 for IPv6)")]
    Cidr,
    /// A port outside 1–65535 or missing.
    #[error("port must be a number from 1 to 65535")]
    Port,
    /// A broken host name; the text says what is wrong.
    #[error("not a domain name: {0}")]
    Domain(&'static str),
    /// A broken URL; the text says what is wrong.
    #[error("not a URL: {0}")]
    Url(&'static str),
    /// Not `local@domain`.
    #[error("not an e-mail address: {0}")]
    Email(&'static str),
    /// Wrong length or non-hex characters for a hash kind.
    #[error("not a {kind} hash: {expected}")]
    Hash {
        /// The hash kind.
        kind: IocKind,
        /// What was expected.
        expected: &'static str,
    },
    /// Not `blocksize:hash:hash`.
    #[error("not an ssdeep hash (`blocksize:hash:hash`, base64 alphabet)")]
    Ssdeep,
    /// Not a TLSH digest.
    #[error("not a TLSH digest (`T1` and 70 hex digits, or 70/72 hex digits)")]
    Tlsh,
    /// Not `CVE-YYYY-NNNN…`.
    #[error("not a CVE id (`CVE-YYYY-NNNN`, 4–19 digits)")]
    Cve,
    /// Not an AS number in range.
    #[error("not an AS number (AS1 … AS4294967295, asdot accepted)")]
    Asn,
    /// Not `Tnnnn` or `Tnnnn.nnn`.
    #[error("not an ATT&CK technique id (`T1234` or `T1234.001`)")]
    Attack,
    /// The value is a kind Rampart cannot recognise from its text alone.
    #[error("not recognised as any indicator kind")]
    Unrecognised,
}

/// Canonicalises `raw` as an indicator of `kind`.
///
/// | kind | rule |
/// | --- | --- |
/// | ipv4 | strict dotted quad; leading zeros (octal ambiguity) rejected |
/// | ipv6 | RFC 5952 form (lowercase, compressed); brackets accepted; IPv4-mapped → ipv4 |
/// | cidr | host bits masked; `/32` and `/128` become the address |
/// | ip_port | split on the last `:`, `[v6]:port` accepted, port 1–65535 |
/// | domain | trimmed, trailing dot removed, IDNA → ASCII, lowercase; labels 1–63 of `a-z0-9-_`, at least two labels, total ≤ 253, not an address |
/// | url | scheme and host lowercased, host canonical as a domain or address, default port dropped, empty path → `/`, the rest byte for byte |
/// | email | domain canonical, local part kept (it is case-sensitive by RFC 5321) |
/// | md5 … sha512, imphash, ja3, x509_sha1 | lowercase hex of the exact length |
/// | ssdeep | `blocksize:hash:hash`, case kept (base64) |
/// | tlsh | lowercase hex, `t1` prefix kept when given |
/// | cve | uppercase, en-dash → `-` |
/// | asn | `AS` + decimal (asdot `a.b` → a·65536+b) |
/// | attack_technique | uppercase `T1234[.001]` |
/// | filename, mutex, stix_pattern, other | trimmed, kept verbatim |
pub fn canonicalize(kind: IocKind, raw: &str) -> Result<Ioc, Rejection> {
    let value = raw.trim();
    if value.is_empty() {
        return Err(Rejection::Empty);
    }
    if value.len() > MAX_VALUE_LEN {
        return Err(Rejection::TooLong { len: value.len() });
    }
    match kind {
        IocKind::Ipv4 => ipv4(value).map(|a| Ioc::new(IocKind::Ipv4, a.to_string())),
        IocKind::Ipv6 => ipv6(value).map(ip_ioc),
        IocKind::Cidr => cidr(value),
        IocKind::IpPort => ip_port(value),
        IocKind::Domain => domain(value).map(|d| Ioc::new(IocKind::Domain, d)),
        IocKind::Url => url(value).map(|u| Ioc::new(IocKind::Url, u)),
        IocKind::Email => email(value).map(|e| Ioc::new(IocKind::Email, e)),
        IocKind::Md5 | IocKind::Imphash | IocKind::Ja3 => hex_hash(kind, value, 32),
        IocKind::Sha1 | IocKind::X509Sha1 => hex_hash(kind, value, 40),
        IocKind::Sha224 => hex_hash(kind, value, 56),
        IocKind::Sha256 => hex_hash(kind, value, 64),
        IocKind::Sha384 => hex_hash(kind, value, 96),
        IocKind::Sha512 => hex_hash(kind, value, 128),
        IocKind::Ssdeep => ssdeep(value),
        IocKind::Tlsh => tlsh(value),
        IocKind::Cve => cve(value),
        IocKind::Asn => asn(value).map(|n| Ioc::new(IocKind::Asn, format!("AS{n}"))),
        IocKind::AttackTechnique => attack(value),
        IocKind::Filename | IocKind::Mutex | IocKind::StixPattern | IocKind::Other => {
            if value.chars().any(|c| c.is_control() && c != '\t') {
                return Err(Rejection::Whitespace);
            }
            Ok(Ioc::new(kind, value))
        }
    }
}

/// Recognises the kind of a bare value (a plain list line, a lookup argument) and
/// canonicalises it. Free text should be refanged first ([`crate::fang::refang`]).
///
/// A 32-hex value is an `md5` here; lookups also try `imphash` and `ja3` (see
/// [`hash_kinds_for`]).
pub fn detect(raw: &str) -> Result<Ioc, Rejection> {
    let value = raw.trim();
    if value.is_empty() {
        return Err(Rejection::Empty);
    }
    if value.len() > MAX_VALUE_LEN {
        return Err(Rejection::TooLong { len: value.len() });
    }
    let bytes = value.as_bytes();
    if value.contains("://") {
        return canonicalize(IocKind::Url, value);
    }
    if value.contains('@') {
        return canonicalize(IocKind::Email, value);
    }
    if value.contains('/') {
        return canonicalize(IocKind::Cidr, value);
    }
    if let Ok(ioc) = canonicalize(IocKind::Ipv4, value) {
        return Ok(ioc);
    }
    if value.contains(':') {
        if let Ok(ioc) = canonicalize(IocKind::Ipv6, value) {
            return Ok(ioc);
        }
        if let Ok(ioc) = canonicalize(IocKind::IpPort, value) {
            return Ok(ioc);
        }
        if let Ok(ioc) = canonicalize(IocKind::Ssdeep, value) {
            return Ok(ioc);
        }
        return Err(Rejection::Unrecognised);
    }
    if bytes.iter().all(u8::is_ascii_hexdigit) {
        let kind = match bytes.len() {
            32 => Some(IocKind::Md5),
            40 => Some(IocKind::Sha1),
            56 => Some(IocKind::Sha224),
            64 => Some(IocKind::Sha256),
            96 => Some(IocKind::Sha384),
            128 => Some(IocKind::Sha512),
            70 | 72 => Some(IocKind::Tlsh),
            _ => None,
        };
        if let Some(kind) = kind {
            return canonicalize(kind, value);
        }
    }
    if (value.starts_with("T1") || value.starts_with("t1"))
        && value.len() == 72
        && let Ok(ioc) = canonicalize(IocKind::Tlsh, value)
    {
        return Ok(ioc);
    }
    if has_prefix_ignore_case(value, "cve-") || value.starts_with("CVE–") {
        return canonicalize(IocKind::Cve, value);
    }
    if let Ok(ioc) = attack(value) {
        return Ok(ioc);
    }
    if value.len() > 2
        && has_prefix_ignore_case(value, "as")
        && value
            .bytes()
            .skip(2)
            .all(|b| b.is_ascii_digit() || b == b'.')
    {
        return canonicalize(IocKind::Asn, value);
    }
    if value.contains('.') {
        return canonicalize(IocKind::Domain, value);
    }
    Err(Rejection::Unrecognised)
}

/// Whether `value` starts with ASCII `prefix`, ignoring ASCII case. Byte-wise, so a multi-byte
/// character at the start is simply not a match (slicing `&value[..n]` could panic there).
pub fn has_prefix_ignore_case(value: &str, prefix: &str) -> bool {
    value
        .as_bytes()
        .get(..prefix.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(prefix.as_bytes()))
}

/// The kinds a lookup of a hex digest of this length should try (a 32-hex value may be an MD5,
/// an imphash or a JA3 fingerprint; a 40-hex one a SHA-1 of a file or of a certificate).
pub fn hash_kinds_for(kind: IocKind) -> &'static [IocKind] {
    match kind {
        IocKind::Md5 | IocKind::Imphash | IocKind::Ja3 => {
            &[IocKind::Md5, IocKind::Imphash, IocKind::Ja3]
        }
        IocKind::Sha1 | IocKind::X509Sha1 => &[IocKind::Sha1, IocKind::X509Sha1],
        _ => &[],
    }
}

/// Parses a strict dotted-quad IPv4 address (the standard library already refuses leading
/// zeros, which some resolvers read as octal).
pub fn ipv4(value: &str) -> Result<Ipv4Addr, Rejection> {
    value.parse::<Ipv4Addr>().map_err(|_| Rejection::Ipv4)
}

fn ipv6(value: &str) -> Result<IpAddr, Rejection> {
    let inner = value
        .strip_prefix('[')
        .and_then(|v| v.strip_suffix(']'))
        .unwrap_or(value);
    let addr: Ipv6Addr = inner.parse().map_err(|_| Rejection::Ipv6)?;
    Ok(unmap(IpAddr::V6(addr)))
}

/// An IPv4-mapped IPv6 address (`::ffff:1.2.3.4`) is the IPv4 address: one key, not two.
fn unmap(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    }
}

fn ip_ioc(addr: IpAddr) -> Ioc {
    match addr {
        IpAddr::V4(a) => Ioc::new(IocKind::Ipv4, a.to_string()),
        IpAddr::V6(a) => Ioc::new(IocKind::Ipv6, a.to_string()),
    }
}

/// Parses an address of either family (brackets allowed around IPv6).
pub fn ip(value: &str) -> Result<IpAddr, Rejection> {
    if let Ok(a) = ipv4(value) {
        return Ok(IpAddr::V4(a));
    }
    ipv6(value)
}

/// A network with host bits masked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Network {
    /// The first address.
    pub addr: IpAddr,
    /// The prefix length.
    pub prefix: u8,
}

impl Network {
    /// Whether the network is a single address.
    pub fn is_host(&self) -> bool {
        match self.addr {
            IpAddr::V4(_) => self.prefix == 32,
            IpAddr::V6(_) => self.prefix == 128,
        }
    }

    /// Whether `addr` lies inside the network.
    pub fn contains(&self, addr: IpAddr) -> bool {
        match (self.addr, addr) {
            (IpAddr::V4(net), IpAddr::V4(a)) => {
                mask_v4(u32::from(a), self.prefix) == u32::from(net)
            }
            (IpAddr::V6(net), IpAddr::V6(a)) => {
                mask_v6(u128::from(a), self.prefix) == u128::from(net)
            }
            _ => false,
        }
    }
}

impl std::fmt::Display for Network {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// Masks the host bits of an IPv4 address.
pub fn mask_v4(addr: u32, prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        addr & (u32::MAX << (32 - u32::from(prefix.min(32))))
    }
}

/// Masks the host bits of an IPv6 address.
pub fn mask_v6(addr: u128, prefix: u8) -> u128 {
    if prefix == 0 {
        0
    } else {
        addr & (u128::MAX << (128 - u32::from(prefix.min(128))))
    }
}

/// Parses `address/prefix`, masking host bits.
pub fn network(value: &str) -> Result<Network, Rejection> {
    let (addr, prefix) = value.split_once('/').ok_or(Rejection::Cidr)?;
    let prefix: u8 = prefix
        .trim()
        .parse()
        .ok()
        .filter(|p| prefix.bytes().all(|b| b.is_ascii_digit()) && *p <= 128)
        .ok_or(Rejection::Cidr)?;
    let addr = ip(addr.trim()).map_err(|_| Rejection::Cidr)?;
    match addr {
        IpAddr::V4(a) if prefix <= 32 => Ok(Network {
            addr: IpAddr::V4(Ipv4Addr::from(mask_v4(u32::from(a), prefix))),
            prefix,
        }),
        IpAddr::V6(a) => Ok(Network {
            addr: IpAddr::V6(Ipv6Addr::from(mask_v6(u128::from(a), prefix))),
            prefix,
        }),
        IpAddr::V4(_) => Err(Rejection::Cidr),
    }
}

fn cidr(value: &str) -> Result<Ioc, Rejection> {
    if !value.contains('/') {
        // A bare address where a network was expected is the address itself.
        return ip(value).map(ip_ioc).map_err(|_| Rejection::Cidr);
    }
    let net = network(value)?;
    if net.is_host() {
        return Ok(ip_ioc(net.addr));
    }
    Ok(Ioc::new(IocKind::Cidr, net.to_string()))
}

fn port(value: &str) -> Result<u16, Rejection> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Rejection::Port);
    }
    match value.parse::<u16>() {
        Ok(p) if p > 0 => Ok(p),
        _ => Err(Rejection::Port),
    }
}

/// Splits `ip:port` on the last colon (ThreatFox writes IPv6 unbracketed: `2a02:cf40:1::5:40669`).
pub fn split_ip_port(value: &str) -> Result<(IpAddr, u16), Rejection> {
    if let Some(rest) = value.strip_prefix('[') {
        let (addr, port_text) = rest.split_once("]:").ok_or(Rejection::Port)?;
        let addr: Ipv6Addr = addr.parse().map_err(|_| Rejection::Ipv6)?;
        return Ok((unmap(IpAddr::V6(addr)), port(port_text)?));
    }
    let (addr, port_text) = value.rsplit_once(':').ok_or(Rejection::Port)?;
    Ok((ip(addr)?, port(port_text)?))
}

fn ip_port(value: &str) -> Result<Ioc, Rejection> {
    let (addr, port) = split_ip_port(value)?;
    Ok(Ioc::new(IocKind::IpPort, format_ip_port(addr, port)))
}

/// The canonical `ip:port` text (IPv6 in brackets, as in URLs).
pub fn format_ip_port(addr: IpAddr, port: u16) -> String {
    match addr {
        IpAddr::V4(a) => format!("{a}:{port}"),
        IpAddr::V6(a) => format!("[{a}]:{port}"),
    }
}

/// Canonicalises a domain name (see [`canonicalize`]).
pub fn domain(value: &str) -> Result<String, Rejection> {
    let value = value.strip_suffix('.').unwrap_or(value);
    if value.is_empty() {
        return Err(Rejection::Domain("empty"));
    }
    if value.contains(|c: char| c.is_whitespace() || c.is_control()) {
        return Err(Rejection::Domain("contains whitespace"));
    }
    if value.contains([':', '/', '@', '\\', '?', '#']) {
        return Err(Rejection::Domain("contains `:`, `/`, `@`, `?` or `#`"));
    }
    let ascii = if value.is_ascii() {
        value.to_ascii_lowercase()
    } else {
        idna::domain_to_ascii(value).map_err(|_| Rejection::Domain("invalid IDNA"))?
    };
    check_labels(&ascii)?;
    Ok(ascii)
}

fn check_labels(name: &str) -> Result<(), Rejection> {
    if name.len() > 253 {
        return Err(Rejection::Domain("longer than 253 characters"));
    }
    let mut labels = 0;
    let mut last = "";
    for label in name.split('.') {
        if label.is_empty() {
            return Err(Rejection::Domain("empty label"));
        }
        if label.len() > 63 {
            return Err(Rejection::Domain("label longer than 63 characters"));
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        {
            return Err(Rejection::Domain("characters outside a-z 0-9 - _"));
        }
        labels += 1;
        last = label;
    }
    if labels < 2 {
        return Err(Rejection::Domain("a single label is not a domain"));
    }
    if last.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Rejection::Domain("numeric top-level label (an address?)"));
    }
    Ok(())
}

fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" | "ws" => Some(80),
        "https" | "wss" => Some(443),
        "ftp" => Some(21),
        _ => None,
    }
}

/// The parts of a canonical URL that lookups fall back to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlParts<'a> {
    /// Lowercase scheme.
    pub scheme: &'a str,
    /// The host: a canonical domain, IPv4 text or bracketed IPv6 text.
    pub host: &'a str,
    /// The explicit non-default port.
    pub port: Option<u16>,
}

/// Splits a canonical URL (as produced by [`canonicalize`]) into scheme, host and port.
pub fn url_parts(canonical: &str) -> Option<UrlParts<'_>> {
    let (scheme, rest) = canonical.split_once("://")?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let (host, port) = if hostport.starts_with('[') {
        match hostport.find(']') {
            Some(i) => (
                &hostport[..=i],
                hostport[i + 1..]
                    .strip_prefix(':')
                    .and_then(|p| p.parse().ok()),
            ),
            None => (hostport, None),
        }
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h, p.parse().ok()),
            None => (hostport, None),
        }
    };
    Some(UrlParts { scheme, host, port })
}

/// The indicator a URL host names (a domain or an address).
pub fn host_ioc(host: &str) -> Option<Ioc> {
    if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return inner
            .parse::<Ipv6Addr>()
            .ok()
            .map(|a| ip_ioc(unmap(IpAddr::V6(a))));
    }
    if let Ok(a) = host.parse::<Ipv4Addr>() {
        return Some(Ioc::new(IocKind::Ipv4, a.to_string()));
    }
    if host.contains('.') {
        return Some(Ioc::new(IocKind::Domain, host));
    }
    None
}

fn url(value: &str) -> Result<String, Rejection> {
    if value
        .bytes()
        .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
    {
        return Err(Rejection::Url("contains whitespace or control characters"));
    }
    let (scheme, rest) = value
        .split_once("://")
        .ok_or(Rejection::Url("missing `scheme://`"))?;
    if scheme.is_empty()
        || !scheme.as_bytes()[0].is_ascii_alphabetic()
        || !scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
    {
        return Err(Rejection::Url("invalid scheme"));
    }
    let scheme = scheme.to_ascii_lowercase();
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    let (host_text, port_text) = if let Some(v6) = hostport.strip_prefix('[') {
        let close = v6.find(']').ok_or(Rejection::Url("unclosed `[` in host"))?;
        let after = &v6[close + 1..];
        let port = match after {
            "" => None,
            p => Some(
                p.strip_prefix(':')
                    .ok_or(Rejection::Url("junk after `]`"))?,
            ),
        };
        (&hostport[..close + 2], port)
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        }
    };
    if host_text.is_empty() {
        return Err(Rejection::Url("empty host"));
    }
    let host = if let Some(inner) = host_text
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
    {
        let addr: Ipv6Addr = inner
            .parse()
            .map_err(|_| Rejection::Url("invalid IPv6 host"))?;
        match unmap(IpAddr::V6(addr)) {
            IpAddr::V4(a) => a.to_string(),
            IpAddr::V6(a) => format!("[{a}]"),
        }
    } else if host_text.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        ipv4(host_text)
            .map_err(|_| Rejection::Url("invalid IPv4 host"))?
            .to_string()
    } else {
        domain(host_text).map_err(|e| match e {
            Rejection::Domain(why) => Rejection::Url(why),
            _ => Rejection::Url("invalid host"),
        })?
    };
    let port = match port_text {
        None | Some("") => None,
        Some(p) => {
            let p = port(p).map_err(|_| Rejection::Url("port must be 1–65535"))?;
            (default_port(&scheme) != Some(p)).then_some(p)
        }
    };
    let mut out = String::with_capacity(value.len());
    out.push_str(&scheme);
    out.push_str("://");
    if let Some(u) = userinfo {
        out.push_str(u);
        out.push('@');
    }
    out.push_str(&host);
    if let Some(p) = port {
        out.push(':');
        out.push_str(&p.to_string());
    }
    if tail.is_empty() || tail.starts_with(['?', '#']) {
        // RFC 3986 §6.2.3: for http-like schemes an empty path is "/".
        out.push('/');
    }
    out.push_str(tail);
    Ok(out)
}

fn email(value: &str) -> Result<String, Rejection> {
    let value = value.strip_prefix("mailto:").unwrap_or(value);
    let (local, dom) = value
        .rsplit_once('@')
        .ok_or(Rejection::Email("missing `@`"))?;
    if local.is_empty() {
        return Err(Rejection::Email("empty local part"));
    }
    if local.len() > 64 {
        return Err(Rejection::Email("local part longer than 64 characters"));
    }
    if local.contains(|c: char| c.is_whitespace() || c.is_control() || c == '@') {
        return Err(Rejection::Email("whitespace or `@` in the local part"));
    }
    let dom = domain(dom).map_err(|_| Rejection::Email("invalid domain"))?;
    Ok(format!("{local}@{dom}"))
}

fn hex_hash(kind: IocKind, value: &str, len: usize) -> Result<Ioc, Rejection> {
    if value.len() != len || !value.bytes().all(|b| b.is_ascii_hexdigit()) {
        let expected = match len {
            32 => "32 hex digits",
            40 => "40 hex digits",
            56 => "56 hex digits",
            64 => "64 hex digits",
            96 => "96 hex digits",
            _ => "128 hex digits",
        };
        return Err(Rejection::Hash { kind, expected });
    }
    Ok(Ioc::new(kind, value.to_ascii_lowercase()))
}

fn is_b64(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'/' || b == b'+'
}

fn ssdeep(value: &str) -> Result<Ioc, Rejection> {
    let mut parts = value.splitn(3, ':');
    let block = parts.next().unwrap_or_default();
    let h1 = parts.next().ok_or(Rejection::Ssdeep)?;
    let h2 = parts.next().ok_or(Rejection::Ssdeep)?;
    let ok = !block.is_empty()
        && block.len() <= 10
        && block.bytes().all(|b| b.is_ascii_digit())
        && h1.bytes().all(is_b64)
        && h2.bytes().all(is_b64);
    if !ok {
        return Err(Rejection::Ssdeep);
    }
    Ok(Ioc::new(IocKind::Ssdeep, value))
}

fn tlsh(value: &str) -> Result<Ioc, Rejection> {
    let lower = value.to_ascii_lowercase();
    let digits = lower.strip_prefix("t1").unwrap_or(&lower);
    let ok = (lower.starts_with("t1") && digits.len() == 70 || matches!(lower.len(), 70 | 72))
        && digits.bytes().all(|b| b.is_ascii_hexdigit());
    if !ok {
        return Err(Rejection::Tlsh);
    }
    // TLSH 4 writes the version prefix `T1` before the 70 digits older tools print alone: both
    // are one hash, kept as `t1` + digits so that either spelling finds it.
    if lower.len() == 70 {
        return Ok(Ioc::new(IocKind::Tlsh, format!("t1{lower}")));
    }
    Ok(Ioc::new(IocKind::Tlsh, lower))
}

fn cve(value: &str) -> Result<Ioc, Rejection> {
    let upper = value
        .replace(['\u{2013}', '\u{2014}', '\u{2011}'], "-")
        .to_ascii_uppercase();
    let rest = upper.strip_prefix("CVE-").ok_or(Rejection::Cve)?;
    let (year, num) = rest.split_once('-').ok_or(Rejection::Cve)?;
    let ok = year.len() == 4
        && year.bytes().all(|b| b.is_ascii_digit())
        && (4..=19).contains(&num.len())
        && num.bytes().all(|b| b.is_ascii_digit());
    if !ok {
        return Err(Rejection::Cve);
    }
    Ok(Ioc::new(IocKind::Cve, upper))
}

/// Parses an AS number (`AS13335`, `13335`, asdot `1.10`).
pub fn asn(value: &str) -> Result<u32, Rejection> {
    let digits = if value.len() > 2 && has_prefix_ignore_case(value, "as") {
        value.get(2..).unwrap_or_default()
    } else {
        value
    };
    let parse = |s: &str| -> Option<u64> {
        (!s.is_empty() && s.len() <= 10 && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    let n = match digits.split_once('.') {
        Some((hi, lo)) => {
            let (hi, lo) = (
                parse(hi).ok_or(Rejection::Asn)?,
                parse(lo).ok_or(Rejection::Asn)?,
            );
            if hi > 65535 || lo > 65535 {
                return Err(Rejection::Asn);
            }
            hi * 65536 + lo
        }
        None => parse(digits).ok_or(Rejection::Asn)?,
    };
    u32::try_from(n)
        .ok()
        .filter(|n| *n > 0)
        .ok_or(Rejection::Asn)
}

fn attack(value: &str) -> Result<Ioc, Rejection> {
    let upper = value.to_ascii_uppercase();
    let rest = upper.strip_prefix('T').ok_or(Rejection::Attack)?;
    let (main, sub) = match rest.split_once('.') {
        Some((m, s)) => (m, Some(s)),
        None => (rest, None),
    };
    let ok = main.len() == 4
        && main.bytes().all(|b| b.is_ascii_digit())
        && sub.is_none_or(|s| s.len() == 3 && s.bytes().all(|b| b.is_ascii_digit()));
    if !ok {
        return Err(Rejection::Attack);
    }
    Ok(Ioc::new(IocKind::AttackTechnique, upper))
}

/// The parent domains of a canonical domain, longest first, down to two labels
/// (`a.b.example.com` → `b.example.com`, `example.com`).
pub fn parent_domains(domain: &str) -> impl Iterator<Item = &str> {
    let mut rest = domain;
    std::iter::from_fn(move || {
        let (_, parent) = rest.split_once('.')?;
        if !parent.contains('.') {
            return None;
        }
        rest = parent;
        Some(parent)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(kind: IocKind, raw: &str) -> (IocKind, String) {
        match canonicalize(kind, raw) {
            Ok(ioc) => (ioc.kind, ioc.value),
            Err(e) => panic!("{raw:?} as {kind}: {e}"),
        }
    }

    #[test]
    fn addresses() {
        assert_eq!(
            ok(IocKind::Ipv4, " 1.2.3.4 "),
            (IocKind::Ipv4, "1.2.3.4".into())
        );
        assert_eq!(
            canonicalize(IocKind::Ipv4, "01.2.3.4"),
            Err(Rejection::Ipv4)
        );
        assert_eq!(canonicalize(IocKind::Ipv4, "1.2.3"), Err(Rejection::Ipv4));
        assert_eq!(
            canonicalize(IocKind::Ipv4, "256.1.1.1"),
            Err(Rejection::Ipv4)
        );
        assert_eq!(
            ok(IocKind::Ipv6, "2001:0DB8:0000:0000:0000:0000:0000:0001"),
            (IocKind::Ipv6, "2001:db8::1".into())
        );
        assert_eq!(
            ok(IocKind::Ipv6, "[2001:db8::1]"),
            (IocKind::Ipv6, "2001:db8::1".into())
        );
        assert_eq!(
            ok(IocKind::Ipv6, "::ffff:10.1.2.3"),
            (IocKind::Ipv4, "10.1.2.3".into())
        );
    }

    #[test]
    fn networks_mask_host_bits_and_single_hosts_become_addresses() {
        assert_eq!(
            ok(IocKind::Cidr, "10.1.2.3/8"),
            (IocKind::Cidr, "10.0.0.0/8".into())
        );
        assert_eq!(
            ok(IocKind::Cidr, "10.1.2.3/32"),
            (IocKind::Ipv4, "10.1.2.3".into())
        );
        assert_eq!(
            ok(IocKind::Cidr, "2a06:e480:ffff::/29"),
            (IocKind::Cidr, "2a06:e480::/29".into())
        );
        assert_eq!(
            ok(IocKind::Cidr, "2001:db8::1/128"),
            (IocKind::Ipv6, "2001:db8::1".into())
        );
        assert_eq!(
            ok(IocKind::Cidr, "0.0.0.0/0"),
            (IocKind::Cidr, "0.0.0.0/0".into())
        );
        assert_eq!(
            canonicalize(IocKind::Cidr, "10.0.0.0/33"),
            Err(Rejection::Cidr)
        );
        assert_eq!(
            canonicalize(IocKind::Cidr, "10.0.0.0/+8"),
            Err(Rejection::Cidr)
        );
        assert_eq!(
            canonicalize(IocKind::Cidr, "10.0.0.0/"),
            Err(Rejection::Cidr)
        );
    }

    #[test]
    fn ip_port_splits_on_the_last_colon() {
        assert_eq!(
            ok(IocKind::IpPort, "8.223.20.63:443"),
            (IocKind::IpPort, "8.223.20.63:443".into())
        );
        assert_eq!(
            ok(IocKind::IpPort, "2a02:cf40:1::5:40669"),
            (IocKind::IpPort, "[2a02:cf40:1::5]:40669".into())
        );
        assert_eq!(
            ok(IocKind::IpPort, "[2a02:cf40:1::5]:40669"),
            (IocKind::IpPort, "[2a02:cf40:1::5]:40669".into())
        );
        assert_eq!(
            canonicalize(IocKind::IpPort, "1.2.3.4:0"),
            Err(Rejection::Port)
        );
        assert_eq!(
            canonicalize(IocKind::IpPort, "1.2.3.4:65536"),
            Err(Rejection::Port)
        );
        assert_eq!(
            canonicalize(IocKind::IpPort, "1.2.3.4"),
            Err(Rejection::Port)
        );
    }

    #[test]
    fn domains() {
        assert_eq!(
            ok(IocKind::Domain, "WWW.Example.COM."),
            (IocKind::Domain, "www.example.com".into())
        );
        assert_eq!(
            ok(IocKind::Domain, "bücher.de"),
            (IocKind::Domain, "xn--bcher-kva.de".into())
        );
        assert_eq!(
            ok(IocKind::Domain, "_dmarc.example.org"),
            (IocKind::Domain, "_dmarc.example.org".into())
        );
        for (bad, why) in [
            ("www..example.com", "empty label"),
            ("localhost", "a single label is not a domain"),
            ("1.2.3.4", "numeric top-level label (an address?)"),
            ("exa mple.com", "contains whitespace"),
            ("example.com/path", "contains `:`, `/`, `@`, `?` or `#`"),
            ("ex!ample.com", "characters outside a-z 0-9 - _"),
        ] {
            assert_eq!(
                canonicalize(IocKind::Domain, bad),
                Err(Rejection::Domain(why)),
                "{bad}"
            );
        }
        let long_label = format!("{}.com", "a".repeat(64));
        assert!(canonicalize(IocKind::Domain, &long_label).is_err());
    }

    #[test]
    fn urls_lowercase_scheme_and_host_only() {
        assert_eq!(
            ok(IocKind::Url, "HTTP://Evil.Example.COM:80/Path/A.exe?Q=1#F"),
            (
                IocKind::Url,
                "http://evil.example.com/Path/A.exe?Q=1#F".into()
            )
        );
        assert_eq!(
            ok(IocKind::Url, "http://malaikahlowry33.top"),
            (IocKind::Url, "http://malaikahlowry33.top/".into())
        );
        assert_eq!(
            ok(IocKind::Url, "https://1.2.3.4:8443/x"),
            (IocKind::Url, "https://1.2.3.4:8443/x".into())
        );
        assert_eq!(
            ok(IocKind::Url, "http://[2001:DB8::1]:8080/"),
            (IocKind::Url, "http://[2001:db8::1]:8080/".into())
        );
        assert_eq!(
            ok(IocKind::Url, "https://user@host.example.net?x"),
            (IocKind::Url, "https://user@host.example.net/?x".into())
        );
        assert_eq!(
            canonicalize(IocKind::Url, "http://www..example.com/phishing"),
            Err(Rejection::Url("empty label"))
        );
        assert_eq!(
            canonicalize(IocKind::Url, "evil.com/x"),
            Err(Rejection::Url("missing `scheme://`"))
        );
        assert_eq!(
            canonicalize(IocKind::Url, "http://a.com/x y"),
            Err(Rejection::Url("contains whitespace or control characters"))
        );
        assert_eq!(
            canonicalize(IocKind::Url, "http://01.2.3.4/"),
            Err(Rejection::Url("invalid IPv4 host"))
        );
    }

    #[test]
    fn url_parts_and_host() {
        let parts = url_parts("http://[2001:db8::1]:8080/x").unwrap_or_else(|| panic!("parts"));
        assert_eq!(parts.host, "[2001:db8::1]");
        assert_eq!(parts.port, Some(8080));
        assert_eq!(
            host_ioc(parts.host),
            Some(Ioc::new(IocKind::Ipv6, "2001:db8::1"))
        );
        let parts = url_parts("https://u:p@a.example.com/").unwrap_or_else(|| panic!("parts"));
        assert_eq!(parts.host, "a.example.com");
        assert_eq!(
            host_ioc("1.2.3.4"),
            Some(Ioc::new(IocKind::Ipv4, "1.2.3.4"))
        );
    }

    #[test]
    fn hashes_are_lowercased_fuzzy_hashes_keep_case_where_it_matters() {
        assert_eq!(
            ok(IocKind::Md5, "D41D8CD98F00B204E9800998ECF8427E"),
            (IocKind::Md5, "d41d8cd98f00b204e9800998ecf8427e".into())
        );
        assert!(matches!(
            canonicalize(IocKind::Sha256, "abc"),
            Err(Rejection::Hash { .. })
        ));
        assert!(matches!(
            canonicalize(IocKind::Md5, &"g".repeat(32)),
            Err(Rejection::Hash { .. })
        ));
        let ssdeep = "3072:pNvCknyrs4RvRYNth2oWtyWQhJDyG3h4UkHIqmDzqVIjbitLgJ8yIk3:rqrs0vR8CyWwJDyGR4ejDzmLcik3";
        assert_eq!(
            ok(IocKind::Ssdeep, ssdeep),
            (IocKind::Ssdeep, ssdeep.into())
        );
        assert_eq!(
            canonicalize(IocKind::Ssdeep, "x:abc:def"),
            Err(Rejection::Ssdeep)
        );
        let tlsh = "T199F33AD7F800DDBDF80AE33B88570905B270B7A254820B376257B96BFD3A1990567EC6";
        assert_eq!(ok(IocKind::Tlsh, tlsh).1, tlsh.to_ascii_lowercase());
        // The same hash without its version prefix (as STIX and older tools write it).
        assert_eq!(ok(IocKind::Tlsh, &tlsh[2..]).1, tlsh.to_ascii_lowercase());
        assert_eq!(canonicalize(IocKind::Tlsh, "T1ABC"), Err(Rejection::Tlsh));
    }

    #[test]
    fn identifiers() {
        assert_eq!(
            ok(IocKind::Cve, "cve\u{2013}2021\u{2013}44228"),
            (IocKind::Cve, "CVE-2021-44228".into())
        );
        assert_eq!(
            canonicalize(IocKind::Cve, "CVE-21-44228"),
            Err(Rejection::Cve)
        );
        assert_eq!(
            ok(IocKind::Asn, "as13335"),
            (IocKind::Asn, "AS13335".into())
        );
        assert_eq!(ok(IocKind::Asn, "AS1.10"), (IocKind::Asn, "AS65546".into()));
        assert_eq!(canonicalize(IocKind::Asn, "AS0"), Err(Rejection::Asn));
        assert_eq!(
            canonicalize(IocKind::Asn, "AS4294967296"),
            Err(Rejection::Asn)
        );
        assert_eq!(
            ok(IocKind::AttackTechnique, "t1059.001"),
            (IocKind::AttackTechnique, "T1059.001".into())
        );
        assert_eq!(
            canonicalize(IocKind::AttackTechnique, "T105"),
            Err(Rejection::Attack)
        );
    }

    #[test]
    fn emails_keep_the_local_part() {
        assert_eq!(
            ok(IocKind::Email, "Bad.Guy@EXAMPLE.com"),
            (IocKind::Email, "Bad.Guy@example.com".into())
        );
        assert_eq!(
            canonicalize(IocKind::Email, "@example.com"),
            Err(Rejection::Email("empty local part"))
        );
        assert_eq!(
            canonicalize(IocKind::Email, "x@localhost"),
            Err(Rejection::Email("invalid domain"))
        );
    }

    #[test]
    fn detection_of_bare_values() {
        let cases = [
            ("1.2.3.4", IocKind::Ipv4, "1.2.3.4"),
            ("2001:db8::1", IocKind::Ipv6, "2001:db8::1"),
            ("1.4.0.0/17", IocKind::Cidr, "1.4.0.0/17"),
            ("1.2.3.4:80", IocKind::IpPort, "1.2.3.4:80"),
            (
                "2a02:cf40:1::5:40669",
                IocKind::IpPort,
                "[2a02:cf40:1::5]:40669",
            ),
            ("Evil.Example.com", IocKind::Domain, "evil.example.com"),
            ("hxxp-not-a-url.com", IocKind::Domain, "hxxp-not-a-url.com"),
            ("http://x.example/a", IocKind::Url, "http://x.example/a"),
            ("a@b.example", IocKind::Email, "a@b.example"),
            (
                "D41D8CD98F00B204E9800998ECF8427E",
                IocKind::Md5,
                "d41d8cd98f00b204e9800998ecf8427e",
            ),
            ("CVE-2021-44228", IocKind::Cve, "CVE-2021-44228"),
            ("T1003", IocKind::AttackTechnique, "T1003"),
            ("AS260", IocKind::Asn, "AS260"),
        ];
        for (raw, kind, canonical) in cases {
            assert_eq!(detect(raw), Ok(Ioc::new(kind, canonical)), "{raw}");
        }
        // `40669` has five digits, so it cannot be an IPv6 group: the last colon splits a port.
        assert_eq!(detect("hello"), Err(Rejection::Unrecognised));
        assert_eq!(detect(""), Err(Rejection::Empty));
        assert!(matches!(
            detect(&"a".repeat(9000)),
            Err(Rejection::TooLong { .. })
        ));
    }

    #[test]
    fn parents_longest_first() {
        let parents: Vec<&str> = parent_domains("a.b.example.com").collect();
        assert_eq!(parents, ["b.example.com", "example.com"]);
        assert_eq!(parent_domains("example.com").count(), 0);
    }
}
