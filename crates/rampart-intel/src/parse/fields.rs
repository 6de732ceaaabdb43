//! Field-level helpers shared by the parsers: the feeds' CSV dialect, header maps, timestamps.

use std::collections::HashMap;

use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{Date, OffsetDateTime, PrimitiveDateTime};

use crate::record::is_null;

/// Splits one CSV line. Handles what the feeds really write: quoted fields with `""` escapes,
/// unquoted fields, and abuse.ch's `", "` separator (blanks between a separator and an opening
/// quote are ignored). An unterminated quote is an error.
pub(crate) fn split_csv(line: &str, sep: u8) -> Result<Vec<String>, &'static str> {
    let bytes = line.as_bytes();
    let mut fields = Vec::new();
    let mut i = 0;
    loop {
        // Blanks before a quoted field.
        let mut j = i;
        while j < bytes.len() && (bytes[j] == b' ' || bytes[j] == b'\t') && sep != b'\t' {
            j += 1;
        }
        if j < bytes.len() && bytes[j] == b'"' {
            let mut field = String::new();
            let mut k = j + 1;
            let mut start = k;
            loop {
                match bytes[k..].iter().position(|&b| b == b'"') {
                    None => return Err("unterminated quoted field"),
                    Some(p) => {
                        field.push_str(&line[start..k + p]);
                        k += p + 1;
                        if k < bytes.len() && bytes[k] == b'"' {
                            field.push('"');
                            k += 1;
                            start = k;
                        } else {
                            break;
                        }
                    }
                }
            }
            // Blanks after the closing quote, then a separator or the end.
            while k < bytes.len() && (bytes[k] == b' ' || bytes[k] == b'\t') && sep != b'\t' {
                k += 1;
            }
            fields.push(field);
            if k >= bytes.len() {
                return Ok(fields);
            }
            if bytes[k] != sep {
                return Err("text after a closing quote");
            }
            i = k + 1;
        } else {
            let end = bytes[i..]
                .iter()
                .position(|&b| b == sep)
                .map_or(bytes.len(), |p| i + p);
            fields.push(line[i..end].to_owned());
            if end >= bytes.len() {
                return Ok(fields);
            }
            i = end + 1;
        }
    }
}

/// A header row: column names (lowercase, trimmed) to positions.
#[derive(Debug, Clone)]
pub(crate) struct Header {
    names: Vec<String>,
    index: HashMap<String, usize>,
}

impl Header {
    pub(crate) fn new<S: AsRef<str>>(names: &[S]) -> Header {
        let names: Vec<String> = names
            .iter()
            .map(|n| {
                n.as_ref()
                    .trim()
                    .trim_matches('"')
                    .trim()
                    .to_ascii_lowercase()
            })
            .collect();
        let index = names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.clone(), i))
            .collect();
        Header { names, index }
    }

    pub(crate) fn len(&self) -> usize {
        self.names.len()
    }

    pub(crate) fn has(&self, name: &str) -> bool {
        self.index.contains_key(name)
    }

    /// The first of `names` present in the header.
    pub(crate) fn find(&self, names: &[&str]) -> Option<usize> {
        names.iter().find_map(|n| self.index.get(*n).copied())
    }

    /// The non-null value of the first of `names` present in the header.
    pub(crate) fn get<'r>(&self, row: &'r [String], names: &[&str]) -> Option<&'r str> {
        let i = self.find(names)?;
        row.get(i).map(|v| v.trim()).filter(|v| !is_null(v))
    }
}

/// Parses the timestamp spellings the feeds use, as Unix seconds UTC:
/// `2026-02-26 11:30:24`, the same with ` UTC`, RFC 3339, `2021-08-18`, `03-01-2026`
/// (day first, viriback) and epoch seconds (MISP).
pub fn parse_time(value: &str) -> Option<i64> {
    let v = value.trim();
    if is_null(v) {
        return None;
    }
    if v.bytes().all(|b| b.is_ascii_digit()) {
        return v
            .parse::<i64>()
            .ok()
            .filter(|s| *s > 0 && *s < 32_503_680_000);
    }
    let v = v.strip_suffix(" UTC").unwrap_or(v);
    if let Ok(t) = OffsetDateTime::parse(v, &Rfc3339) {
        return Some(t.unix_timestamp());
    }
    let sql = format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    if let Ok(t) = PrimitiveDateTime::parse(v, sql) {
        return Some(t.assume_utc().unix_timestamp());
    }
    let iso_frac = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond]");
    if let Ok(t) = PrimitiveDateTime::parse(v, iso_frac) {
        return Some(t.assume_utc().unix_timestamp());
    }
    let iso = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
    if let Ok(t) = PrimitiveDateTime::parse(v, iso) {
        return Some(t.assume_utc().unix_timestamp());
    }
    let date = format_description!("[year]-[month]-[day]");
    if let Ok(d) = Date::parse(v, date) {
        return Some(d.midnight().assume_utc().unix_timestamp());
    }
    let dmy = format_description!("[day]-[month]-[year]");
    if let Ok(d) = Date::parse(v, dmy) {
        return Some(d.midnight().assume_utc().unix_timestamp());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_dialects() {
        let ok = |line: &str| split_csv(line, b',').unwrap_or_else(|e| panic!("{line}: {e}"));
        assert_eq!(ok(r#""a","b,c","""q""""#), ["a", "b,c", "\"q\""]);
        assert_eq!(
            ok(r#""2024-07-16", "1301606", "", "100""#),
            ["2024-07-16", "1301606", "", "100"]
        );
        assert_eq!(ok("a,,c"), ["a", "", "c"]);
        assert_eq!(ok("a,b,"), ["a", "b", ""]);
        assert_eq!(ok(""), [""]);
        assert_eq!(split_csv(r#""abc"#, b','), Err("unterminated quoted field"));
        assert_eq!(
            split_csv(r#""abc"x,1"#, b','),
            Err("text after a closing quote")
        );
    }

    #[test]
    fn header_lookup_by_name() {
        let header = Header::new(&[" \"first_seen_utc\"", "\"IOC_Value\" "]);
        let row = vec!["2024-01-01".to_owned(), "n/a".to_owned()];
        assert_eq!(header.get(&row, &["first_seen_utc"]), Some("2024-01-01"));
        assert_eq!(header.get(&row, &["ioc_value"]), None);
        assert!(header.has("ioc_value"));
    }

    #[test]
    fn timestamps() {
        assert_eq!(parse_time("2026-02-26 11:30:24"), Some(1_772_105_424));
        assert_eq!(parse_time("2026-02-26 11:30:24 UTC"), Some(1_772_105_424));
        assert_eq!(parse_time("2026-02-26T11:30:24+00:00"), Some(1_772_105_424));
        assert_eq!(parse_time("2026-02-26T11:30:24.5Z"), Some(1_772_105_424));
        assert_eq!(parse_time("2015-09-02T09:21:53.093"), Some(1_441_185_713));
        assert_eq!(parse_time("2026-02-26"), Some(1_772_064_000));
        assert_eq!(parse_time("26-02-2026"), Some(1_772_064_000));
        assert_eq!(parse_time("1472541011"), Some(1_472_541_011));
        assert_eq!(parse_time("None"), None);
        assert_eq!(parse_time("yesterday"), None);
    }
}
