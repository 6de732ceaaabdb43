//! Credentials Rampart hands out: API tokens, session ids, CSRF tokens, one-time passwords.
//!
//! Each carries 256 bits from the operating system's random source and a prefix saying what
//! it is (so a leaked one is recognisable by secret scanners and never mistaken for another
//! kind). The server keeps only the SHA-256 of a token or session id: with 256 random bits a
//! fast hash is enough (a slow password hash would only cost every request), and a database
//! leak gives nobody a usable credential.

use base64::Engine as _;
use rand::RngCore as _;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq as _;

/// The prefix of an API token.
pub const TOKEN_PREFIX: &str = "rpt_";
/// The prefix of a browser session id.
pub const SESSION_PREFIX: &str = "rps_";
/// How many characters of a token are kept in clear to tell tokens apart in lists
/// (the prefix and 8 of its 43 random characters: 48 bits, far from enough to guess the rest).
pub const SHOWN_CHARS: usize = TOKEN_PREFIX.len() + 8;

/// `bytes` random bytes as base64url without padding.
pub fn random_urlsafe(bytes: usize) -> String {
    random_b64(bytes)
}

fn random_b64(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut buf);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf)
}

/// A new API token: `rpt_` and 43 base64url characters.
pub fn new_token() -> String {
    format!("{TOKEN_PREFIX}{}", random_b64(32))
}

/// A new session id: `rps_` and 43 base64url characters.
pub fn new_session_id() -> String {
    format!("{SESSION_PREFIX}{}", random_b64(32))
}

/// A new CSRF token for a session (sent back by the browser in a header on every change).
pub fn new_csrf_token() -> String {
    random_b64(32)
}

/// The stored form of a token or session id: hex SHA-256. Tokens of earlier versions
/// (`rmp_admin_…`) were stored the same way, so they keep working after migration.
pub fn digest(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// The part of a token shown in lists.
pub fn shown(token: &str) -> String {
    token.chars().take(SHOWN_CHARS).collect()
}

/// Compares two secrets in time that does not depend on where they differ.
pub fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// Characters of one-time passwords: no 0/O, 1/l/I, so it can be read off a screen and typed.
const OTP_ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";

/// A one-time password for a new or reset account: 24 characters (about 139 bits) in groups of
/// six, to be changed at first login.
pub fn new_one_time_password() -> String {
    let mut out = String::with_capacity(27);
    let mut rng = rand::rngs::OsRng;
    for i in 0..24 {
        if i > 0 && i % 6 == 0 {
            out.push('-');
        }
        // Rejection sampling keeps every character equally likely.
        let c = loop {
            let b = (rng.next_u32() & 0xff) as usize;
            if b < 256 - 256 % OTP_ALPHABET.len() {
                break OTP_ALPHABET[b % OTP_ALPHABET.len()];
            }
        };
        out.push(char::from(c));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        let t = new_token();
        assert!(t.starts_with("rpt_") && t.len() == 4 + 43, "{t}");
        assert!(
            t[4..]
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        assert_ne!(t, new_token());
        let s = new_session_id();
        assert!(s.starts_with("rps_") && s.len() == 47);
        assert_eq!(new_csrf_token().len(), 43);
        assert_eq!(shown(&t), &t[..12]);
    }

    #[test]
    fn digest_is_hex_sha256_of_the_whole_token() {
        // SHA-256("abc"), FIPS 180-2 appendix B.1.
        assert_eq!(
            digest("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn comparison() {
        assert!(same("abc", "abc"));
        assert!(!same("abc", "abd"));
        assert!(!same("abc", "abcd"));
        assert!(!same("", "a"));
    }

    #[test]
    fn one_time_passwords() {
        let p = new_one_time_password();
        assert_eq!(p.len(), 27, "{p}");
        assert_eq!(p.matches('-').count(), 3);
        assert!(
            p.chars()
                .filter(|&c| c != '-')
                .all(|c| OTP_ALPHABET.contains(&(c as u8)))
        );
        assert!(!p.contains(['0', 'O', '1', 'l', 'I']));
        assert_ne!(p, new_one_time_password());
    }
}
