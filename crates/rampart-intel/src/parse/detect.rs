//! Which feed format a document is, from its first bytes: what `intel ingest` does when no
//! `--format` is given, so a file saved from a feed's web page imports without knowing Rampart's
//! format names. It says what it recognised, or names the candidates when the content does not
//! decide (a user then picks one with `--format`).

use super::Format;

/// Bytes of the document looked at.
pub const DETECT_BYTES: usize = 64 * 1024;

/// What the first bytes of a document say about its format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Detected {
    /// The format, and what gave it away.
    Format(Format, &'static str),
    /// The content does not decide between these (or is compressed, or empty).
    Undecided {
        /// Why not.
        reason: &'static str,
        /// The formats it could be.
        candidates: Vec<Format>,
    },
}

/// JSON formats, for an undecided JSON document.
const JSON_FORMATS: [Format; 10] = [
    Format::Stix,
    Format::MispEvent,
    Format::KevJson,
    Format::ThreatfoxJson,
    Format::UrlhausJson,
    Format::FeodoJson,
    Format::OtxJson,
    Format::PhishtankJson,
    Format::SpamhausDrop,
    Format::Csv,
];

/// Detects the format of a document from its start (at most [`DETECT_BYTES`] are read).
pub fn detect_format(head: &[u8]) -> Detected {
    let head = &head[..head.len().min(DETECT_BYTES)];
    if head.starts_with(&[0x1f, 0x8b]) || head.starts_with(b"PK\x03\x04") {
        return Detected::Undecided {
            reason: "the file is compressed (gzip or zip): its content cannot be sniffed",
            candidates: Format::ALL.to_vec(),
        };
    }
    let text = String::from_utf8_lossy(head);
    let text = text.trim_start_matches('\u{feff}').trim_start();
    if text.is_empty() {
        return Detected::Undecided {
            reason: "the file is empty",
            candidates: Vec::new(),
        };
    }
    if text.starts_with('{') || text.starts_with('[') {
        return json(text);
    }
    lines(text)
}

/// Whether `text` has `"key"` followed by `:` (whitespace allowed), as a JSON object key.
fn has_key(text: &str, key: &str) -> bool {
    let quoted = format!("\"{key}\"");
    text.match_indices(&quoted)
        .any(|(i, _)| text[i + quoted.len()..].trim_start().starts_with(':'))
}

/// Whether `"key"` has the string value `value`.
fn key_is(text: &str, key: &str, value: &str) -> bool {
    let quoted = format!("\"{key}\"");
    text.match_indices(&quoted).any(|(i, _)| {
        text[i + quoted.len()..]
            .trim_start()
            .strip_prefix(':')
            .is_some_and(|rest| rest.trim_start().starts_with(&format!("\"{value}\"")))
    })
}

fn json(text: &str) -> Detected {
    let found = |f, why| Detected::Format(f, why);
    if key_is(text, "type", "bundle") {
        return found(Format::Stix, "a STIX bundle (`\"type\": \"bundle\"`)");
    }
    if has_key(text, "spec_version") && (has_key(text, "pattern") || has_key(text, "objects")) {
        return found(Format::Stix, "STIX objects (`spec_version`)");
    }
    if has_key(text, "Event") || (has_key(text, "Attribute") && has_key(text, "uuid")) {
        return found(Format::MispEvent, "a MISP event (`Event` / `Attribute`)");
    }
    if has_key(text, "catalogVersion") || has_key(text, "cveID") {
        return found(
            Format::KevJson,
            "CISA's KEV catalogue (`catalogVersion` / `cveID`)",
        );
    }
    if has_key(text, "ioc_type") || has_key(text, "ioc_value") {
        return found(Format::ThreatfoxJson, "ThreatFox (`ioc_type`)");
    }
    if has_key(text, "url_status")
        || (has_key(text, "dateadded") && has_key(text, "url") && has_key(text, "threat"))
    {
        return found(
            Format::UrlhausJson,
            "URLhaus (`dateadded`, `url`, `threat`)",
        );
    }
    if has_key(text, "phish_id") {
        return found(Format::PhishtankJson, "PhishTank (`phish_id`)");
    }
    if has_key(text, "ip_address") && has_key(text, "port") && has_key(text, "status") {
        return found(
            Format::FeodoJson,
            "Feodo Tracker (`ip_address`, `port`, `status`)",
        );
    }
    if has_key(text, "sblid") || (has_key(text, "cidr") && has_key(text, "rir")) {
        return found(Format::SpamhausDrop, "Spamhaus DROP JSON (`sblid`)");
    }
    if has_key(text, "pulse_info")
        || (has_key(text, "indicators") && has_key(text, "author_name"))
        || (has_key(text, "indicator") && has_key(text, "type"))
    {
        return found(
            Format::OtxJson,
            "AlienVault OTX (`indicator` / `pulse_info`)",
        );
    }
    Detected::Undecided {
        reason: "JSON, but none of the keys of a known feed",
        candidates: JSON_FORMATS.to_vec(),
    }
}

fn lines(text: &str) -> Detected {
    let found = |f, why| Detected::Format(f, why);
    // abuse.ch and Spamhaus files open with a comment banner naming the source.
    let banner: String = text
        .lines()
        .take_while(|l| l.starts_with('#') || l.starts_with(';') || l.trim().is_empty())
        .collect::<Vec<_>>()
        .join("\n");
    for (needle, format, why) in [
        ("URLhaus", Format::UrlhausCsv, "the URLhaus banner"),
        ("ThreatFox", Format::ThreatfoxCsv, "the ThreatFox banner"),
        (
            "Feodo Tracker",
            Format::FeodoCsv,
            "the Feodo Tracker banner",
        ),
        (
            "MalwareBazaar",
            Format::MalwarebazaarCsv,
            "the MalwareBazaar banner",
        ),
        ("SSLBL", Format::SslblCsv, "the SSLBL banner"),
        ("Spamhaus", Format::SpamhausDrop, "the Spamhaus banner"),
    ] {
        if banner.contains(needle) {
            return found(format, why);
        }
    }
    let first = text
        .lines()
        .find(|l| {
            let l = l.trim();
            !(l.is_empty() || l.starts_with('#') || l.starts_with(';') || l.starts_with("//"))
        })
        .unwrap_or_default();
    if first.starts_with("cveID,") {
        return found(Format::KevCsv, "the KEV CSV header (`cveID,…`)");
    }
    if first.starts_with("phish_id,") {
        return found(
            Format::PhishtankCsv,
            "the PhishTank CSV header (`phish_id,…`)",
        );
    }
    // A header row: several fields, none of them a value of its own (no dot, colon or slash).
    let fields: Vec<&str> = first.split(',').map(str::trim).collect();
    if fields.len() > 1
        && fields.iter().all(|f| {
            let f = f.trim_matches('"');
            !f.is_empty() && !f.contains(['.', ':', '/'])
        })
    {
        return found(Format::Csv, "a CSV header row");
    }
    found(
        Format::Plain,
        "one value per line (use --format openphish for OpenPhish's feed: the same lines, all phishing)",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn format(text: &str) -> Option<Format> {
        match detect_format(text.as_bytes()) {
            Detected::Format(f, _) => Some(f),
            Detected::Undecided { .. } => None,
        }
    }

    #[test]
    fn json_documents() {
        assert_eq!(
            format(r#"{"type": "bundle", "id": "bundle--x"}"#),
            Some(Format::Stix)
        );
        assert_eq!(
            format(r#"{"more": false, "objects": [{"spec_version": "2.1"}]}"#),
            Some(Format::Stix)
        );
        assert_eq!(
            format(r#"{"Event": {"info": "x"}}"#),
            Some(Format::MispEvent)
        );
        assert_eq!(
            format(r#"{"ioc_type": "ip:port"}"#),
            Some(Format::ThreatfoxJson)
        );
        assert_eq!(format(r#"[{"phish_id": 1}]"#), Some(Format::PhishtankJson));
        assert_eq!(format(r#"{"hello": "world"}"#), None);
        // A value is not a key.
        assert_eq!(format(r#"{"note": "\"type\" bundle"}"#), None);
    }

    #[test]
    fn text_documents() {
        assert_eq!(format("cveID,vendorProject\n"), Some(Format::KevCsv));
        assert_eq!(
            format("family,url,ip\nx,http://a.example/,1.2.3.4\n"),
            Some(Format::Csv)
        );
        assert_eq!(format("1.2.3.4\nevil.example\n"), Some(Format::Plain));
        assert_eq!(format("http://a.example/x,y\n"), Some(Format::Plain));
        assert_eq!(
            format("; Spamhaus DROP List\n1.2.3.0/24 ; SBL1\n"),
            Some(Format::SpamhausDrop)
        );
    }

    #[test]
    fn compressed_and_empty_files_are_undecided() {
        assert!(matches!(
            detect_format(&[0x1f, 0x8b, 8, 0]),
            Detected::Undecided { reason, .. } if reason.contains("compressed")
        ));
        assert!(matches!(
            detect_format(b"  \n"),
            Detected::Undecided {
                reason: "the file is empty",
                ..
            }
        ));
    }
}
