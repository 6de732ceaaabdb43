//! Deterministic synthetic indicators and queries for benchmarks (`rampart bench intel`).
//!
//! The mix follows what real feeds deliver: mostly addresses, domains, URLs and file hashes,
//! a few thousand networks. Values are canonical by construction and distinct per seed index,
//! so a generated set of N values holds N distinct indicators.

use crate::canon::Ioc;
use crate::kind::IocKind;

/// splitmix64: small, fast, and the same on every machine.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number below `n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

const TLDS: [&str; 8] = ["com", "net", "org", "info", "ru", "top", "xyz", "cn"];
const WORDS: [&str; 16] = [
    "login", "secure", "update", "cdn", "mail", "api", "files", "portal", "verify", "account",
    "pay", "dl", "static", "auth", "cloud", "app",
];

/// The `i`-th synthetic domain: unique per `i`, two or three labels.
pub fn domain(i: u64) -> String {
    let tld = TLDS[(i % 8) as usize];
    let word = WORDS[((i / 8) % 16) as usize];
    format!(
        "{word}-{:x}.{tld}",
        i.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 24
    )
}

/// The `i`-th synthetic public IPv4 address (avoids 0/8, 10/8, 127/8 and multicast).
pub fn ipv4(i: u64) -> String {
    let n = (i.wrapping_mul(2_654_435_761) % 3_000_000_000) as u32 + 0x0b00_0000;
    std::net::Ipv4Addr::from(n).to_string()
}

/// Indicator `i` of the benchmark mix (35 % IPv4, 25 % domains, 20 % URLs, 15 % SHA-256,
/// 2.8 % MD5, 2 % ip:port, 0.2 % networks).
pub fn indicator(i: u64) -> Ioc {
    let bucket = i % 1000;
    let mut rng = Rng::new(i);
    match bucket {
        0..350 => Ioc::new(IocKind::Ipv4, ipv4(i)),
        350..600 => Ioc::new(IocKind::Domain, domain(i)),
        600..800 => {
            let host = if rng.below(4) == 0 {
                ipv4(i)
            } else {
                domain(i)
            };
            Ioc::new(
                IocKind::Url,
                format!(
                    "http://{host}/{}/{:x}.php",
                    WORDS[rng.below(16) as usize],
                    rng.next_u64() >> 32
                ),
            )
        }
        800..950 => Ioc::new(
            IocKind::Sha256,
            format!(
                "{:016x}{:016x}{:016x}{:016x}",
                rng.next_u64(),
                rng.next_u64(),
                rng.next_u64(),
                i
            ),
        ),
        950..978 => Ioc::new(IocKind::Md5, format!("{:016x}{:016x}", rng.next_u64(), i)),
        978..998 => Ioc::new(
            IocKind::IpPort,
            format!("{}:{}", ipv4(i), 1024 + rng.below(60000)),
        ),
        _ => {
            // Networks: /16 … /24 inside 100.64/10 … 223/8, masked.
            let prefix = 16 + rng.below(9) as u8;
            let base = (i.wrapping_mul(0x9e37_79b9) as u32) | 0x6400_0000;
            let net = crate::canon::mask_v4(base & 0xdfff_ffff, prefix);
            Ioc::new(
                IocKind::Cidr,
                format!("{}/{prefix}", std::net::Ipv4Addr::from(net)),
            )
        }
    }
}

/// A query against an index built from `indicator(0..n)`: a mix of exact hits, sub-domains of
/// listed domains, URLs on listed hosts, addresses inside listed networks, and misses.
pub fn query(rng: &mut Rng, n: u64) -> Ioc {
    let i = rng.below(n);
    match rng.below(8) {
        // Exact hit on whatever indicator i is.
        0 | 1 => indicator(i),
        // Sub-domain of a listed domain.
        2 => {
            let d = 350 + (i / 1000) * 1000 + rng.below(250);
            let d = if d < n { d } else { 350 };
            Ioc::new(IocKind::Domain, format!("www.{}", domain(d)))
        }
        // A new URL on a listed domain.
        3 => {
            let d = 350 + (i / 1000) * 1000 + rng.below(250);
            let d = if d < n { d } else { 350 };
            Ioc::new(
                IocKind::Url,
                format!("https://{}/new/{:x}", domain(d), rng.next_u64()),
            )
        }
        // An address, usually inside a listed network or listed itself.
        4 | 5 => Ioc::new(IocKind::Ipv4, ipv4(rng.next_u64())),
        // Misses of each kind.
        6 => Ioc::new(
            IocKind::Domain,
            format!("miss-{:x}.example", rng.next_u64()),
        ),
        _ => Ioc::new(
            IocKind::Url,
            format!("http://miss-{:x}.example/x", rng.next_u64()),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::canon::canonicalize;

    #[test]
    fn generated_values_are_canonical_and_distinct() {
        let mut seen = std::collections::HashSet::new();
        for i in 0..20_000 {
            let ioc = indicator(i);
            let again = canonicalize(ioc.kind, &ioc.value).unwrap_or_else(|e| panic!("{ioc}: {e}"));
            assert_eq!(again, ioc);
            assert!(
                seen.insert(ioc.clone()) || ioc.kind == IocKind::Cidr,
                "duplicate {ioc}"
            );
        }
    }
}
