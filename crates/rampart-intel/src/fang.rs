//! Refanging of free text (`hxxp://evil[.]com` → `http://evil.com`) and defanging for display.
//!
//! Analysts paste indicators out of reports, tickets and chat, where they are deliberately broken
//! so nobody clicks them. Rampart refangs such input before detection, and only such input:
//! structured feed fields are taken as written (the raw value is kept either way). The rules are
//! ioc-fanger's (the reference's list), whose paired sample files are the test oracle.

use std::borrow::Cow;
use std::sync::LazyLock;

use regex::Regex;

struct Rule {
    find: Regex,
    replace: &'static str,
}

fn rule(pattern: &str, replace: &'static str) -> Rule {
    // The patterns are constants checked by the tests below; a typo is a build-time bug.
    #[allow(clippy::expect_used)]
    let find = Regex::new(pattern).expect("refang pattern compiles");
    Rule { find, replace }
}

static REFANG: LazyLock<Vec<Rule>> = LazyLock::new(|| {
    vec![
        // Brackets around the scheme: `[http]://`, `(https)://`, `[ hxxp ]`.
        rule(r"[\[(]+ ?(h(?:tt|xx|XX|\*\*)ps?) ?[\])]+", "$1"),
        // hxxp, hXXp, h**p before a scheme separator (`hxxp.example.com` stays a domain name).
        rule(r"\bh(?:xx|XX|xX|Xx|\*\*)p(s?)([\[(:])", "http$1$2"),
        // xxxx:// and xxxxx:// stand for http:// and https://.
        rule(r"(?i)\bxxxxx://", "https://"),
        rule(r"(?i)\bxxxx://", "http://"),
        // Bracketed separators.
        rule(r"\[://\]|\(://\)|\{://\}", "://"),
        rule(r"\[:\]|\(:\)|\{:\}", ":"),
        rule(r"\[/\]|\(/\)|\{/\}", "/"),
        rule(r"\[-\]|\(-\)|\{-\}", "-"),
        rule(
            r"(?i)\s*(?:\[\s*(?:\.|dot)\s*\]|\(\s*(?:\.|dot)\s*\)|\{\s*(?:\.|dot)\s*\})\s*",
            ".",
        ),
        rule(r"\\\.", "."),
        rule(r"(?i)\s*(?:\[\s*at\s*\]|\(\s*at\s*\)|\{\s*at\s*\})\s*", "@"),
        // Spelled out between lower-case words: `evil AT example DOT com`.
        rule(r"([a-z0-9]) +DOT +([a-z0-9])", "$1.$2"),
        // ioc-fanger allows no spaces here; Rampart requires them, or base64 text (an ssdeep
        // hash) containing `xATy` would be rewritten.
        rule(r"([a-z]) +(?:AT|ET|ARROBA) +([a-z])", "$1@$2"),
        // Spaces or junk around the scheme separator.
        rule(r"\b(https?) *: *//", "$1://"),
        rule(r"\b(https?) +:", "$1:"),
        rule(r"\b(https?):/([^/])", "$1://$2"),
        rule(r"\b(https?)/(/)", "$1:$2"),
        rule(r"(https?://) +", "$1"),
        rule(r"\b(https?):///+", "$1://"),
        // `1,2,3,4` standing alone is an address.
        rule(
            r"(^|\s)([0-9]{1,3}),([0-9]{1,3}),([0-9]{1,3}),([0-9]{1,3})(\s|$)",
            "$1$2.$3.$4.$5$6",
        ),
    ]
});

/// Undoes defanging in free text. Text without any defanging marks comes back borrowed.
pub fn refang(text: &str) -> Cow<'_, str> {
    let mut out = Cow::Borrowed(text);
    for rule in REFANG.iter() {
        // Some rules rewrite a match to itself (`http://`); only a real change allocates.
        if let Cow::Owned(replaced) = rule.find.replace_all(&out, rule.replace)
            && replaced != *out
        {
            out = Cow::Owned(replaced);
        }
    }
    out
}

static DEFANG_DOT: LazyLock<Regex> = LazyLock::new(|| {
    #[allow(clippy::expect_used)]
    Regex::new(r"\.([A-Za-z0-9-])").expect("defang pattern compiles")
});

/// Defangs a value for display or for pasting into a report: `.` before a label → `[.]`,
/// `http:` → `hXXp:`, `https:` → `hXXps:`, `@` → `(at)`.
pub fn defang(text: &str) -> String {
    let dots = DEFANG_DOT.replace_all(text, "[.]$1");
    dots.replace("https:", "hXXps:")
        .replace("http:", "hXXp:")
        .replace('@', "(at)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refangs_the_usual_marks() {
        let cases = [
            (
                "hxxp://evil[.]example[.]com/a.exe",
                "http://evil.example.com/a.exe",
            ),
            ("hXXps://evil(.)com", "https://evil.com"),
            ("h**p://evil{.}com", "http://evil.com"),
            ("[https]://evil.com", "https://evil.com"),
            ("http[:]//evil.com", "http://evil.com"),
            ("http[://]evil.com", "http://evil.com"),
            ("xxxx://evil.com", "http://evil.com"),
            ("xxxxx://evil.com", "https://evil.com"),
            ("bad[at]evil[dot]com", "bad@evil.com"),
            ("bad (at) evil (dot) com", "bad@evil.com"),
            ("bad AT evil DOT com", "bad@evil.com"),
            ("10,1,2,3", "10.1.2.3"),
            ("ip 10,1,2,3 seen", "ip 10.1.2.3 seen"),
            ("evil[-]site[.]com", "evil-site.com"),
            ("http:///evil.com", "http://evil.com"),
            ("https: //evil.com", "https://evil.com"),
            ("evil\\.com", "evil.com"),
        ];
        for (input, expected) in cases {
            assert_eq!(refang(input), expected, "{input}");
        }
    }

    #[test]
    fn leaves_clean_text_and_lookalike_domains_alone() {
        for clean in [
            "http://evil.com/x",
            "hxxp.example.com",
            "hxxps-mirror.example.org",
            "1,2,3",
            "version 1,2,3,4,5",
            "WHAT A DAY",
        ] {
            assert!(matches!(refang(clean), Cow::Borrowed(_)), "{clean}");
        }
    }

    #[test]
    fn defangs() {
        assert_eq!(defang("http://evil.com/a.php"), "hXXp://evil[.]com/a[.]php");
        assert_eq!(defang("https://evil.com"), "hXXps://evil[.]com");
        assert_eq!(defang("a@b.com"), "a(at)b[.]com");
        assert_eq!(defang("1.2.3.4"), "1[.]2[.]3[.]4");
    }
}
