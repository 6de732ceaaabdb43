//! Who may do what in Rampart, with no I/O: roles and permissions ([`role`]), the password
//! policy and argon2id hashes ([`password`]), and the credentials the server hands out
//! ([`secret`]). The store keeps users, tokens and sessions; the server enforces the grants
//! this crate defines, in one layer over its route table.

pub mod oidc;
pub mod password;
pub mod role;
pub mod secret;

pub use role::{Denied, Grant, Permission, Role, Scope, Target};

/// Longest user name.
pub const USER_NAME_MAX: usize = 64;

/// [`check_user_name`] as a JSON Schema pattern, for API documents.
pub const USER_NAME_PATTERN: &str = "^[a-z0-9][a-z0-9._@-]{0,63}$";

/// A user name: 1–64 bytes of lowercase ASCII letters, digits, `.`, `_`, `-` and `@` (so an
/// e-mail address from an identity provider fits), starting with a letter or a digit. Names
/// are compared exactly, so upper case is refused rather than folded: `Alice` and `alice`
/// can never be two accounts.
pub fn check_user_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= USER_NAME_MAX
        && (name.as_bytes()[0].is_ascii_lowercase() || name.as_bytes()[0].is_ascii_digit())
        && name.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-' | b'@')
        });
    if ok {
        Ok(())
    } else {
        let shown: String = name.chars().take(40).collect();
        Err(format!(
            "user name {shown:?}: 1–{USER_NAME_MAX} lowercase letters, digits, '.', '_', '-' or '@', starting with a letter or digit"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_names() {
        for good in [
            "alice",
            "bob.smith",
            "carol@example.com",
            "svc-ci_2",
            "9lives",
        ] {
            assert_eq!(check_user_name(good), Ok(()), "{good}");
        }
        for bad in [
            "",
            "Alice",
            "-rf",
            ".hidden",
            "a b",
            "ali\u{0441}e",
            "a/b",
            &"x".repeat(65),
        ] {
            assert!(check_user_name(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            check_user_name("Bob").unwrap_err(),
            "user name \"Bob\": 1–64 lowercase letters, digits, '.', '_', '-' or '@', starting with a letter or digit"
        );
    }
}
