//! Command-line tokenisation exactly as Wazuh's `w_strtok` does it, because SCA commands are run
//! without a shell: spaces separate words, double quotes group (and are removed), a backslash makes
//! the next character literal (and is removed). Single quotes are ordinary characters.

/// Splits a command line into an argument vector.
pub fn tokenize(command: &str) -> Vec<String> {
    let bytes = command.as_bytes();
    let mut out: Vec<Vec<u8>> = Vec::new();
    let mut acc: Option<Vec<u8>> = None;
    let mut quoting = false;
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        match c {
            b' ' if !quoting => {
                if let Some(a) = acc.take() {
                    out.push(a);
                }
            }
            b'"' => {
                // An empty pair of quotes still produces an (empty) argument.
                if quoting {
                    acc.get_or_insert_with(Vec::new);
                }
                quoting = !quoting;
            }
            b'\\' => {
                if let Some(next) = bytes.get(i + 1) {
                    acc.get_or_insert_with(Vec::new).push(*next);
                    i += 1;
                }
            }
            _ => acc.get_or_insert_with(Vec::new).push(c),
        }
        i += 1;
    }
    if let Some(a) = acc {
        out.push(a);
    }
    out.into_iter()
        .map(|v| String::from_utf8_lossy(&v).into_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::tokenize;

    #[test]
    fn splits_like_w_strtok() {
        assert_eq!(tokenize("findmnt -kn /tmp"), ["findmnt", "-kn", "/tmp"]);
        assert_eq!(tokenize("  a   b  "), ["a", "b"]);
        assert_eq!(
            tokenize(r#"sh -c "nft list ruleset | awk '/hook input/,/}/'""#),
            ["sh", "-c", "nft list ruleset | awk '/hook input/,/}/'"]
        );
        assert_eq!(
            tokenize(r#"stat -Lc "%n %a %u %U %g %G" /boot/grub/grub.cfg"#),
            ["stat", "-Lc", "%n %a %u %U %g %G", "/boot/grub/grub.cfg"]
        );
    }

    #[test]
    fn quotes_join_and_backslashes_escape() {
        assert_eq!(tokenize(r#"a"b c"d"#), ["ab cd"]);
        assert_eq!(tokenize(r#"echo """#), ["echo", ""]);
        assert_eq!(tokenize(r"a\ b"), ["a b"]);
        assert_eq!(tokenize(r#"grep \"x\""#), ["grep", "\"x\""]);
        assert_eq!(tokenize(r"a\\b"), [r"a\b"]);
        // Single quotes are not special.
        assert_eq!(tokenize("echo 'a b'"), ["echo", "'a", "b'"]);
        // A trailing backslash is dropped.
        assert_eq!(tokenize("a\\"), ["a"]);
    }
}
