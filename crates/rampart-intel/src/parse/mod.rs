//! Feed parsers: one [`Format`] per dialect, all producing [`Record`]s.
//!
//! Rules every parser follows (the reference's key take-aways):
//! - columns are found **by header name**, never by position; a known feed whose file lost its
//!   header falls back to the documented column order for that many fields, and says so;
//! - comment and null conventions are per feed (`#` banners with the header inside a comment,
//!   Spamhaus `;`, `n/a`/`None`/empty as null);
//! - a malformed row is reported with its line number and skipped, and the rest of the file is
//!   still read; a broken document (invalid JSON, a zip bomb) is one clear [`ParseError`];
//! - memory is bounded by [`Limits`], whatever the input.

mod abusech;
pub mod detect;
mod fields;
mod input;
mod json;
mod lists;
mod misp;
mod otx;
mod stix;
mod table;
mod vuln;

use std::io::{BufRead, Read};
use std::str::FromStr;

use serde::Serialize;

use crate::canon::{Rejection, canonicalize};
use crate::kind::IocKind;
use crate::record::{Problem, Record};

pub use detect::{Detected, detect_format};
pub use fields::parse_time;
pub use misp::{MispFeedManifest, parse_misp_manifest};
pub(crate) use stix::attack_id as stix_attack_id;

/// The feed dialects Rampart reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    /// abuse.ch URLhaus CSV dumps (`csv_recent`, `csv_online`, full).
    UrlhausCsv,
    /// URLhaus JSON (full dump keyed by id, or one object per line).
    UrlhausJson,
    /// ThreatFox CSV export.
    ThreatfoxCsv,
    /// ThreatFox JSON export (keyed by id), API response (`data`) or API objects per line.
    ThreatfoxJson,
    /// Feodo Tracker IP blocklist CSV.
    FeodoCsv,
    /// Feodo Tracker IP blocklist JSON (bare array).
    FeodoJson,
    /// MalwareBazaar CSV export (one sample's hashes per row).
    MalwarebazaarCsv,
    /// abuse.ch SSL certificate blacklist (SHA-1 fingerprints).
    SslblCsv,
    /// CISA Known Exploited Vulnerabilities, JSON.
    KevJson,
    /// CISA Known Exploited Vulnerabilities, CSV.
    KevCsv,
    /// AlienVault OTX: pulses (array, or `results`) or exported indicators one per line.
    OtxJson,
    /// PhishTank `online-valid.csv`.
    PhishtankCsv,
    /// PhishTank `online-valid.json`.
    PhishtankJson,
    /// OpenPhish `feed.txt` (one URL per line; all phishing).
    Openphish,
    /// Spamhaus DROP / EDROP / ASN-DROP, text (`;` comments) or JSON lines.
    SpamhausDrop,
    /// One indicator per line, kind detected per line; `#`, `;` and `//` comments.
    Plain,
    /// Any CSV with a header; columns named like indicator kinds are read.
    Csv,
    /// A MISP event (`{"Event": …}`), as in MISP feeds.
    MispEvent,
    /// A STIX 2.1 (or 2.0) bundle.
    Stix,
}

impl Format {
    /// Every format, for help texts and tests.
    pub const ALL: [Format; 19] = [
        Format::UrlhausCsv,
        Format::UrlhausJson,
        Format::ThreatfoxCsv,
        Format::ThreatfoxJson,
        Format::FeodoCsv,
        Format::FeodoJson,
        Format::MalwarebazaarCsv,
        Format::SslblCsv,
        Format::KevJson,
        Format::KevCsv,
        Format::OtxJson,
        Format::PhishtankCsv,
        Format::PhishtankJson,
        Format::Openphish,
        Format::SpamhausDrop,
        Format::Plain,
        Format::Csv,
        Format::MispEvent,
        Format::Stix,
    ];

    /// The format's name on the command line and in feed definitions.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::UrlhausCsv => "urlhaus-csv",
            Format::UrlhausJson => "urlhaus-json",
            Format::ThreatfoxCsv => "threatfox-csv",
            Format::ThreatfoxJson => "threatfox-json",
            Format::FeodoCsv => "feodo-csv",
            Format::FeodoJson => "feodo-json",
            Format::MalwarebazaarCsv => "malwarebazaar-csv",
            Format::SslblCsv => "sslbl-csv",
            Format::KevJson => "kev-json",
            Format::KevCsv => "kev-csv",
            Format::OtxJson => "otx-json",
            Format::PhishtankCsv => "phishtank-csv",
            Format::PhishtankJson => "phishtank-json",
            Format::Openphish => "openphish",
            Format::SpamhausDrop => "spamhaus-drop",
            Format::Plain => "plain",
            Format::Csv => "csv",
            Format::MispEvent => "misp-event",
            Format::Stix => "stix",
        }
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The name is not a format.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown feed format `{0}`; known formats: urlhaus-csv, urlhaus-json, threatfox-csv, threatfox-json, feodo-csv, feodo-json, malwarebazaar-csv, sslbl-csv, kev-json, kev-csv, otx-json, phishtank-csv, phishtank-json, openphish, spamhaus-drop, plain, csv, misp-event, misp-feed (a directory), stix"
)]
pub struct UnknownFormat(pub String);

impl FromStr for Format {
    type Err = UnknownFormat;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim().to_ascii_lowercase();
        let alias = match s.as_str() {
            "feodo-txt" | "txt" | "list" => "plain",
            "threatfox-api" => "threatfox-json",
            "otx" => "otx-json",
            "misp" => "misp-event",
            "stix2" | "stix-bundle" => "stix",
            "drop" => "spamhaus-drop",
            other => other,
        };
        Format::ALL
            .iter()
            .copied()
            .find(|f| f.as_str() == alias)
            .ok_or(UnknownFormat(s))
    }
}

/// Caps that keep memory and time bounded on hostile input. The defaults fit every real feed
/// (the largest, ThreatFox's full dump, is about 300 MB unpacked).
#[derive(Debug, Clone)]
pub struct Limits {
    /// Longest line read; longer lines are reported and skipped.
    pub max_line: usize,
    /// Largest document read into memory (JSON formats, zip archives).
    pub max_document: u64,
    /// Most bytes decompressed from one input (gzip, zip), against decompression bombs.
    pub max_decompressed: u64,
    /// Most records taken from one input; the rest is reported as truncated.
    pub max_records: u64,
    /// Problems kept with their text; the rest are only counted.
    pub max_problems_kept: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_line: 1 << 20,
            max_document: 1 << 30,
            max_decompressed: 8 << 30,
            max_records: 200_000_000,
            max_problems_kept: 1000,
        }
    }
}

/// A document that cannot be read at all (row-level trouble is a [`Problem`] instead).
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    /// Reading failed.
    #[error("read failed: {0}")]
    Io(#[from] std::io::Error),
    /// The input exceeds a limit.
    #[error("{what} exceeds the limit of {limit} bytes")]
    TooLarge {
        /// What was too large.
        what: &'static str,
        /// The limit.
        limit: u64,
    },
    /// The compressed container is broken.
    #[error("corrupt input: {0}")]
    Corrupt(String),
    /// The JSON document is broken.
    #[error("invalid JSON at line {line}, column {column}: {message}")]
    Json {
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// serde_json's explanation.
        message: String,
    },
    /// The document is well-formed but not what the format expects.
    #[error("not a {format} document: {message}")]
    Shape {
        /// The format expected.
        format: Format,
        /// What is missing or wrong.
        message: String,
    },
}

impl ParseError {
    pub(crate) fn json(e: &serde_json::Error) -> ParseError {
        ParseError::Json {
            line: e.line(),
            column: e.column(),
            message: strip_position(&e.to_string()),
        }
    }
}

/// serde_json appends " at line L column C" to its messages; Rampart reports those separately.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

/// What a parse produced besides its records.
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct Summary {
    /// Documents read (1, or the members of a zip archive).
    pub documents: u64,
    /// Records handed on.
    pub records: u64,
    /// Indicators in those records (observations to store).
    pub indicators: u64,
    /// Rows or values that were rejected.
    pub problems: u64,
    /// The first [`Limits::max_problems_kept`] problems.
    pub problem_samples: Vec<Problem>,
    /// Records not taken because [`Limits::max_records`] was reached.
    pub truncated: bool,
    /// Things worth knowing that are not errors (an assumed header, skipped non-IDS values).
    pub notes: Vec<String>,
    /// Lines of input read, over every document.
    pub lines: u64,
    /// Of those, lines with something on them other than a comment (`#`, `//`, `;`).
    pub content_lines: u64,
}

impl Summary {
    /// Why a parse that produced no indicator produced none, in words for the user; `None`
    /// when it produced some, or when rejected rows or notes already say why.
    /// `format` is the parser's, when the caller knows it.
    pub fn why_empty(&self, format: Option<Format>) -> Option<String> {
        if self.indicators > 0 || self.problems > 0 || !self.notes.is_empty() {
            return None;
        }
        let what = format.map_or_else(|| "feed".to_owned(), |f| f.to_string());
        let json = matches!(
            format,
            Some(
                Format::UrlhausJson
                    | Format::ThreatfoxJson
                    | Format::FeodoJson
                    | Format::KevJson
                    | Format::OtxJson
                    | Format::PhishtankJson
                    | Format::MispEvent
                    | Format::Stix
            )
        );
        Some(if self.documents == 0 {
            "the archive holds no file".to_owned()
        } else if self.lines == 0 {
            "the file is empty".to_owned()
        } else if self.content_lines == 0 {
            format!(
                "its {} line{} {} blank or comments",
                self.lines,
                if self.lines == 1 { "" } else { "s" },
                if self.lines == 1 { "is" } else { "are" }
            )
        } else if json {
            format!("the document holds no {what} record (is it another format? --format chooses)")
        } else if self.records == 0
            && self.content_lines == 1
            && !matches!(
                format,
                Some(Format::Plain | Format::Openphish | Format::SpamhausDrop)
            )
        {
            "only a header row: no data rows".to_owned()
        } else {
            format!(
                "none of its {} lines is a {what} record (is it another format? --format chooses)",
                self.content_lines
            )
        })
    }
}

/// Counts the lines a parser consumes, and those with content, on the way through.
struct Counting<'a> {
    inner: &'a mut dyn BufRead,
    lines: u64,
    content_lines: u64,
    /// Where the current line stands: nothing seen yet, content, or a comment.
    state: LineState,
}

#[derive(Clone, Copy, PartialEq)]
enum LineState {
    Start,
    Content,
    /// A comment, or a `/` that may start one.
    Comment,
    Slash,
}

impl Read for Counting<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = {
            let available = self.fill_buf()?;
            let n = available.len().min(buf.len());
            buf[..n].copy_from_slice(&available[..n]);
            n
        };
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for Counting<'_> {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        self.inner.fill_buf()
    }

    fn consume(&mut self, amt: usize) {
        let (mut state, mut lines, mut content) = (self.state, 0u64, 0u64);
        if let Ok(buf) = self.inner.fill_buf() {
            for &b in &buf[..amt.min(buf.len())] {
                state = match (state, b) {
                    (state, b'\n') => {
                        lines += 1;
                        content += u64::from(state.has_content());
                        LineState::Start
                    }
                    (LineState::Start, b' ' | b'\t' | b'\r') => LineState::Start,
                    (LineState::Start, b'#' | b';') => LineState::Comment,
                    (LineState::Start, b'/') => LineState::Slash,
                    (LineState::Slash, b'/') => LineState::Comment,
                    (LineState::Start | LineState::Slash, _) => LineState::Content,
                    (state, _) => state,
                };
            }
        }
        self.state = state;
        self.lines += lines;
        self.content_lines += content;
        self.inner.consume(amt);
    }
}

impl LineState {
    /// Whether a line that ended in this state had content (a lone `/` is content).
    fn has_content(self) -> bool {
        matches!(self, LineState::Content | LineState::Slash)
    }
}

impl Counting<'_> {
    /// Counts a last line without a newline (one of blanks only is no line).
    fn finish(&mut self) {
        if self.state != LineState::Start {
            self.lines += 1;
            self.content_lines += u64::from(self.state.has_content());
        }
        self.state = LineState::Start;
    }
}

/// Parser state shared by all formats: problems, limits, and where records go.
pub(crate) struct Ctx<'a> {
    limits: &'a Limits,
    summary: &'a mut Summary,
    sink: &'a mut dyn FnMut(Record),
}

impl Ctx<'_> {
    pub(crate) fn limits(&self) -> &Limits {
        self.limits
    }

    /// Records a rejected row or value.
    pub(crate) fn problem(&mut self, line: u64, field: Option<&str>, message: impl Into<String>) {
        self.summary.problems += 1;
        if self.summary.problem_samples.len() < self.limits.max_problems_kept {
            self.summary.problem_samples.push(Problem {
                line,
                field: field.map(str::to_owned),
                message: message.into(),
            });
        }
    }

    /// Records a note once.
    pub(crate) fn note(&mut self, note: impl Into<String>) {
        let note = note.into();
        if !self.summary.notes.contains(&note) {
            self.summary.notes.push(note);
        }
    }

    /// Canonicalises `raw` as `kind` into `record`, or reports why not. Returns whether it was
    /// added.
    pub(crate) fn add(
        &mut self,
        record: &mut Record,
        kind: IocKind,
        raw: &str,
        field: &str,
    ) -> bool {
        match canonicalize(kind, raw) {
            Ok(ioc) => {
                record.push(ioc);
                true
            }
            Err(why) => {
                self.reject(record.line, field, raw, &why);
                false
            }
        }
    }

    /// Like [`Ctx::add`] for a value the row must have: a missing one is reported as such.
    pub(crate) fn require(
        &mut self,
        record: &mut Record,
        kind: IocKind,
        raw: Option<&str>,
        field: &str,
    ) {
        match raw {
            Some(raw) => {
                self.add(record, kind, raw, field);
            }
            None => self.problem(
                record.line,
                Some(field),
                format!("no `{field}` value; row skipped"),
            ),
        }
    }

    pub(crate) fn reject(&mut self, line: u64, field: &str, raw: &str, why: &Rejection) {
        let shown: String = raw.chars().take(120).collect();
        self.problem(line, Some(field), format!("`{shown}` rejected: {why}"));
    }

    /// Hands on a record; records without indicators are dropped (their problems were
    /// reported). Errors once the record limit is reached.
    pub(crate) fn emit(&mut self, record: Record) -> Result<(), ParseError> {
        if record.indicators.is_empty() {
            return Ok(());
        }
        if self.summary.records >= self.limits.max_records {
            if !self.summary.truncated {
                self.summary.truncated = true;
                let max = self.limits.max_records;
                self.problem(
                    record.line,
                    None,
                    format!("record limit of {max} reached; the rest of the input was not read"),
                );
            }
            return Err(ParseError::TooLarge {
                what: "record count",
                limit: self.limits.max_records,
            });
        }
        self.summary.records += 1;
        self.summary.indicators += record.indicators.len() as u64;
        (self.sink)(record);
        Ok(())
    }
}

/// Parses everything in `input` (plain, gzip or zip) as `format`, handing each record to `sink`
/// as soon as it is complete.
///
/// Row-level problems are in the returned [`Summary`]; a [`ParseError`] means the document
/// could not be read on (records already handed on stay valid).
pub fn parse(
    format: Format,
    input: &mut dyn Read,
    limits: &Limits,
    sink: &mut dyn FnMut(Record),
) -> Result<Summary, ParseError> {
    let mut summary = Summary::default();
    let result = {
        let mut ctx = Ctx {
            limits,
            summary: &mut summary,
            sink,
        };
        input::documents(input, limits, &mut |_name, doc| {
            ctx.summary.documents += 1;
            let mut counted = Counting {
                inner: doc,
                lines: 0,
                content_lines: 0,
                state: LineState::Start,
            };
            let result = parse_document(format, &mut counted, &mut ctx);
            counted.finish();
            ctx.summary.lines += counted.lines;
            ctx.summary.content_lines += counted.content_lines;
            result
        })
    };
    match result {
        // The record cap is a reported truncation, not a failure.
        Err(ParseError::TooLarge {
            what: "record count",
            ..
        }) => Ok(summary),
        Err(e) => Err(e),
        Ok(()) => Ok(summary),
    }
}

/// Parses a byte slice (tests, fuzzing, API uploads) and collects the records.
pub fn parse_bytes(
    format: Format,
    bytes: &[u8],
    limits: &Limits,
) -> Result<(Vec<Record>, Summary), ParseError> {
    let mut records = Vec::new();
    let summary = parse(format, &mut &bytes[..], limits, &mut |r| records.push(r))?;
    Ok((records, summary))
}

fn parse_document(
    format: Format,
    doc: &mut dyn BufRead,
    ctx: &mut Ctx<'_>,
) -> Result<(), ParseError> {
    match format {
        Format::UrlhausCsv => abusech::urlhaus_csv(doc, ctx),
        Format::UrlhausJson => abusech::urlhaus_json(doc, ctx),
        Format::ThreatfoxCsv => abusech::threatfox_csv(doc, ctx),
        Format::ThreatfoxJson => abusech::threatfox_json(doc, ctx),
        Format::FeodoCsv => abusech::feodo_csv(doc, ctx),
        Format::FeodoJson => abusech::feodo_json(doc, ctx),
        Format::MalwarebazaarCsv => abusech::malwarebazaar_csv(doc, ctx),
        Format::SslblCsv => abusech::sslbl_csv(doc, ctx),
        Format::KevJson => vuln::kev_json(doc, ctx),
        Format::KevCsv => vuln::kev_csv(doc, ctx),
        Format::OtxJson => otx::otx_json(doc, ctx),
        Format::PhishtankCsv => lists::phishtank_csv(doc, ctx),
        Format::PhishtankJson => lists::phishtank_json(doc, ctx),
        Format::Openphish => lists::plain(doc, ctx, Some("phishing")),
        Format::SpamhausDrop => lists::spamhaus(doc, ctx),
        Format::Plain => lists::plain(doc, ctx, None),
        Format::Csv => lists::generic_csv(doc, ctx),
        Format::MispEvent => misp::event(doc, ctx),
        Format::Stix => stix::bundle(doc, ctx),
    }
}

#[cfg(test)]
mod why_empty_tests {
    use super::*;

    fn summary(format: Format, text: &str) -> Summary {
        parse_bytes(format, text.as_bytes(), &Limits::default())
            .map(|(_, s)| s)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn lines_and_content_lines_are_counted_as_consumed() {
        let s = summary(Format::Plain, "# a\n\n  // b\n  ; c\n/x\nevil.example");
        assert_eq!((s.lines, s.content_lines), (6, 2));
        assert_eq!(s.indicators, 1);
        assert_eq!(s.why_empty(Some(Format::Plain)), None);
        let s = summary(Format::Plain, "   ");
        assert_eq!((s.lines, s.content_lines), (0, 0));
    }

    #[test]
    fn an_empty_yield_says_why() {
        for (format, text, why) in [
            (Format::Plain, "", "the file is empty"),
            (
                Format::Plain,
                "# a\n# b\n",
                "its 2 lines are blank or comments",
            ),
            (Format::Csv, "url,tags\n", "only a header row: no data rows"),
            (
                Format::KevJson,
                "{\"catalogVersion\": \"1\", \"vulnerabilities\": []}",
                "the document holds no kev-json record",
            ),
        ] {
            let s = summary(format, text);
            let got = s.why_empty(Some(format)).unwrap_or_default();
            assert!(got.starts_with(why), "{format}: {got:?}");
        }
        // Rejected rows say why themselves.
        let s = summary(Format::Plain, "hello world\n");
        assert_eq!(s.problems, 1);
        assert_eq!(s.why_empty(Some(Format::Plain)), None);
    }
}
