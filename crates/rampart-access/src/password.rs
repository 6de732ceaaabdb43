//! Passwords: the policy a new one must meet, and argon2id hashes of them.
//!
//! The policy follows NIST SP 800-63B §3.1.1.2 rather than composition rules: long enough,
//! not the account's name, not a well-known password dressed up with digits and symbols, not
//! a run of one character or a keyboard sequence. Hashes are argon2id PHC strings with OWASP's
//! minimum parameters (19 MiB, 2 passes, 1 lane); the parameters travel in the string, so
//! stronger ones later still verify old hashes.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

/// Shortest password, in characters.
pub const MIN_CHARS: usize = 12;
/// Longest password, in characters (argon2 takes any length; this bounds the work a login
/// request can ask for).
pub const MAX_CHARS: usize = 256;

/// Why a password is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Weak {
    /// Fewer than [`MIN_CHARS`] characters.
    #[error("a password needs at least {MIN_CHARS} characters (this one has {0})")]
    Short(usize),
    /// More than [`MAX_CHARS`] characters.
    #[error("a password may have at most {MAX_CHARS} characters")]
    Long,
    /// It contains the user name.
    #[error("a password must not contain the user name")]
    HasName,
    /// A well-known password with digits or symbols around it.
    #[error("this is a well-known password (\"{0}\" with digits or symbols)")]
    Common(&'static str),
    /// Too few different characters, or a keyboard or alphabet run.
    #[error("a password must not be a run of a few characters or a keyboard sequence")]
    Predictable,
    /// Control characters cannot be typed reliably and hide in logs.
    #[error("a password must not contain control characters")]
    Control,
}

/// Words that, with digits and symbols stripped, make a password guessable in the first
/// minutes of any online or offline attack (the top of every breach list).
const COMMON: &[&str] = &[
    "password",
    "passwort",
    "qwerty",
    "qwertz",
    "azerty",
    "letmein",
    "welcome",
    "admin",
    "administrator",
    "changeme",
    "iloveyou",
    "rampart",
    "secret",
    "monkey",
    "dragon",
    "football",
    "baseball",
    "sunshine",
    "princess",
    "trustno",
    "master",
    "shadow",
    "superman",
    "starwars",
    "login",
    "default",
    "root",
    "test",
    "guest",
    "abc",
];

const RUNS: &[&str] = &[
    "01234567890123456789",
    "98765432109876543210",
    "abcdefghijklmnopqrstuvwxyz",
    "zyxwvutsrqponmlkjihgfedcba",
    "qwertyuiopasdfghjklzxcvbnm",
    "1qaz2wsx3edc4rfv5tgb6yhn7ujm",
    "1q2w3e4r5t6y7u8i9o0p",
    "qazwsxedcrfvtgbyhnujmikolp",
];

/// Checks a new password for `user` against the policy.
pub fn check_policy(user: &str, password: &str) -> Result<(), Weak> {
    let chars = password.chars().count();
    if chars < MIN_CHARS {
        return Err(Weak::Short(chars));
    }
    if chars > MAX_CHARS {
        return Err(Weak::Long);
    }
    if password.chars().any(char::is_control) {
        return Err(Weak::Control);
    }
    let lower = password.to_lowercase();
    let name = user.to_lowercase();
    if name.chars().count() >= 3 && lower.contains(&name) {
        return Err(Weak::HasName);
    }
    let distinct: std::collections::BTreeSet<char> = lower.chars().collect();
    if distinct.len() < 5 || RUNS.iter().any(|run| run.contains(lower.as_str())) {
        return Err(Weak::Predictable);
    }
    // Two readings of the password: its letters alone ("Password2024!" is "password"), and its
    // core without the digits and symbols around it, with the usual substitutions undone
    // ("P@ssw0rd12345" is "password").
    let bare: String = lower.chars().filter(|c| c.is_alphabetic()).collect();
    let undone: String = lower
        .trim_matches(|c: char| c.is_ascii_digit() || c.is_ascii_punctuation() || c == ' ')
        .chars()
        .filter_map(|c| match c {
            '@' | '4' => Some('a'),
            '3' => Some('e'),
            '0' => Some('o'),
            '1' | '!' => Some('i'),
            '$' | '5' => Some('s'),
            c if c.is_alphabetic() => Some(c),
            _ => None,
        })
        .collect();
    for word in COMMON {
        for candidate in [&bare, &undone] {
            if is_repetition(candidate, word) {
                return Err(Weak::Common(word));
            }
        }
    }
    Ok(())
}

/// Whether `s` is `word` once or more, possibly with a trailing fragment of it.
fn is_repetition(s: &str, word: &str) -> bool {
    if s.is_empty() || s.len() < word.len() {
        return false;
    }
    let mut rest = s;
    while let Some(tail) = rest.strip_prefix(word) {
        rest = tail;
    }
    rest.len() < s.len() && (rest.is_empty() || word.starts_with(rest))
}

/// Hashing failed (the parameters are fixed and valid, so this means the system's random
/// source failed or memory could not be had).
#[derive(Debug, thiserror::Error)]
#[error("password hashing failed: {0}")]
pub struct HashError(String);

fn argon2() -> Argon2<'static> {
    // OWASP's minimum for argon2id: m=19 MiB, t=2, p=1. The constructor cannot fail for these.
    let params = Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// An argon2id PHC string of `password` with a fresh random salt.
pub fn hash(password: &str) -> Result<String, HashError> {
    let salt = SaltString::generate(&mut OsRng);
    argon2()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| HashError(e.to_string()))
}

/// Whether `password` matches the PHC string `phc`. A malformed stored hash matches nothing.
pub fn verify(password: &str, phc: &str) -> bool {
    if password.chars().count() > MAX_CHARS {
        return false;
    }
    match PasswordHash::new(phc) {
        Ok(parsed) => argon2()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// Spends the time of one verification without a stored hash, so a login for a user that
/// does not exist takes as long as one with a wrong password (no user enumeration by timing).
pub fn verify_nothing(password: &str) {
    let _ = verify(password, dummy());
}

fn dummy() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| hash("no user has this password").unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strong_passwords_pass() {
        for good in [
            "correct horse battery staple",
            "Tr0ub4dor&3-xkcd-936",
            "wg7#Lq2!pZ9v",
            "日本語のパスフレーズです、長い",
        ] {
            assert_eq!(check_policy("alice", good), Ok(()), "{good}");
        }
    }

    #[test]
    fn weak_passwords_are_refused_with_the_reason() {
        let cases: &[(&str, Weak)] = &[
            ("short1!", Weak::Short(7)),
            ("alice-is-great-2026", Weak::HasName),
            ("ALICEalice12345", Weak::HasName),
            ("Password2024!", Weak::Common("password")),
            ("P@ssw0rd12345", Weak::Common("password")),
            ("passwordpassword", Weak::Common("password")),
            ("Welcome123456", Weak::Common("welcome")),
            ("changeme!!!!!!", Weak::Common("changeme")),
            ("aaaaaaaaaaaaaaaa", Weak::Predictable),
            ("abababababab12", Weak::Predictable),
            ("123456789012", Weak::Predictable),
            ("qwertyuiopas", Weak::Predictable),
            ("abcdefghijklm", Weak::Predictable),
            ("tab\there-and-more", Weak::Control),
        ];
        for (pw, why) in cases {
            assert_eq!(check_policy("alice", pw).as_ref(), Err(why), "{pw}");
        }
        assert_eq!(
            check_policy("alice", &"x1".repeat(10)),
            Err(Weak::Predictable)
        );
        assert_eq!(
            check_policy("alice", &"Zq9$".repeat(100)).unwrap_err(),
            Weak::Long
        );
        assert_eq!(
            check_policy("bob", "short").unwrap_err().to_string(),
            "a password needs at least 12 characters (this one has 5)"
        );
    }

    #[test]
    fn a_short_name_is_not_searched_for() {
        // "al" occurs in many strong passwords; only names of three or more letters count.
        assert_eq!(check_policy("al", "metal gear solid 3"), Ok(()));
    }

    #[test]
    fn hashes_are_argon2id_and_verify() {
        let h = hash("correct horse battery staple").unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify("correct horse battery staple", &h));
        assert!(!verify("correct horse battery stapl", &h));
        assert!(!verify("correct horse battery staple", "not a hash"));
        // A fresh salt each time: the same password never hashes the same.
        assert_ne!(h, hash("correct horse battery staple").unwrap());
        // Refusing an unknown user costs a real verification: the dummy is a well-formed hash
        // with the same parameters, which no password given to it matches.
        assert!(PasswordHash::new(dummy()).is_ok());
        assert!(dummy().starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(!verify("anything", dummy()));
    }
}
