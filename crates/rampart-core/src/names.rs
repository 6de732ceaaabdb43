//! Names an operator gives things (feeds, agent groups, label keys) and the free text beside
//! them (label values): one rule, checked wherever they enter, so that a name is always a safe
//! path component, URL segment, log field and file name, and no client can store megabytes in
//! a label.

/// Longest name.
pub const NAME_MAX: usize = 64;

/// [`check_name`] as a JSON Schema pattern, for API documents.
pub const NAME_PATTERN: &str = "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$";
/// Longest label value.
pub const LABEL_VALUE_MAX: usize = 256;
/// Most labels on one token or agent.
pub const LABELS_MAX: usize = 32;

/// A name: 1–64 bytes of ASCII letters, digits, `.`, `_` and `-`, starting with a letter or a
/// digit (so never `.`, `..` or an option-like `-x`). `what` names the field in the error.
pub fn check_name(what: &str, value: &str) -> Result<(), String> {
    let ok = !value.is_empty()
        && value.len() <= NAME_MAX
        && value.as_bytes()[0].is_ascii_alphanumeric()
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{what} {:?}: 1–{NAME_MAX} letters, digits, '.', '_' or '-', starting with a letter or digit",
            shorten(value)
        ))
    }
}

/// Labels: at most 32, keys are names, values at most 256 bytes without control characters.
pub fn check_labels<'a>(
    labels: impl ExactSizeIterator<Item = (&'a String, &'a String)>,
) -> Result<(), String> {
    if labels.len() > LABELS_MAX {
        return Err(format!("labels: at most {LABELS_MAX}"));
    }
    for (key, value) in labels {
        check_name("label", key)?;
        if value.chars().count() > LABEL_VALUE_MAX || value.chars().any(char::is_control) {
            return Err(format!(
                "label {key}: a value of at most {LABEL_VALUE_MAX} characters without control characters"
            ));
        }
    }
    Ok(())
}

/// A value as quoted in an error: its start, never megabytes of it.
fn shorten(value: &str) -> String {
    match value.char_indices().nth(40) {
        Some((i, _)) => format!("{}…", &value[..i]),
        None => value.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_safe_words() {
        for good in ["web", "db-01", "abuse.ch_urlhaus", "9x"] {
            assert_eq!(check_name("feed", good), Ok(()), "{good}");
        }
        for bad in [
            "",
            "../../etc/x",
            "a b",
            ".hidden",
            "-rf",
            "é",
            "a/b",
            &"x".repeat(65),
        ] {
            assert!(check_name("feed", bad).is_err(), "{bad}");
        }
        let long = check_name("feed", &"y".repeat(50_000_000)).unwrap_err();
        assert!(
            long.len() < 200,
            "errors quote only the start: {}",
            long.len()
        );
    }

    #[test]
    fn labels_are_bounded() {
        use std::collections::BTreeMap;
        let ok: BTreeMap<String, String> = [("env".into(), "prod".into())].into();
        assert_eq!(check_labels(ok.iter()), Ok(()));
        let huge: BTreeMap<String, String> = [("env".into(), "x".repeat(257))].into();
        assert!(check_labels(huge.iter()).is_err());
        let ctl: BTreeMap<String, String> = [("env".into(), "a\nb".into())].into();
        assert!(check_labels(ctl.iter()).is_err());
        let bad_key: BTreeMap<String, String> = [("a b".into(), "x".into())].into();
        assert!(check_labels(bad_key.iter()).is_err());
        let many: BTreeMap<String, String> =
            (0..33).map(|i| (format!("k{i}"), String::new())).collect();
        assert!(check_labels(many.iter()).is_err());
    }
}
