//! Line lists (plain, OpenPhish, Spamhaus DROP), PhishTank, and any CSV with a header.

use std::io::BufRead;

use super::fields::parse_time;
use super::input::Lines;
use super::json;
use super::table::{self, CsvSpec};
use super::{Ctx, ParseError};
use crate::canon::detect;
use crate::fang::refang;
use crate::kind::IocKind;
use crate::record::Record;

/// Reads lines, skipping blanks and comments, reporting over-long and non-UTF-8 lines.
fn each_line(
    doc: &mut dyn BufRead,
    ctx: &mut Ctx<'_>,
    comments: &[&str],
    each: &mut dyn FnMut(u64, &str, &mut Ctx<'_>) -> Result<(), ParseError>,
) -> Result<(), ParseError> {
    let mut lines = Lines::new(doc, ctx.limits());
    while lines.advance(ctx)? {
        let text = lines.text();
        let t = text.trim();
        if t.is_empty() || comments.iter().any(|c| t.starts_with(c)) {
            continue;
        }
        each(lines.number, text, ctx)?;
    }
    Ok(())
}

/// Marks that show a value was defanged; only such lines are refanged.
fn looks_defanged(value: &str) -> bool {
    value.contains('[') || value.contains("(.)") || value.contains("hxxp") || value.contains("hXXp")
}

/// One indicator per line, kind detected; an inline ` # comment` is dropped.
pub(super) fn plain(
    doc: &mut dyn BufRead,
    ctx: &mut Ctx<'_>,
    threat_type: Option<&str>,
) -> Result<(), ParseError> {
    each_line(doc, ctx, &["#", ";", "//"], &mut |line, text, ctx| {
        let mut value = text.trim();
        for marker in [" #", "\t#", " ;", "\t"] {
            if let Some(i) = value.find(marker) {
                value = value[..i].trim_end();
            }
        }
        let value = if looks_defanged(value) {
            refang(value)
        } else {
            value.into()
        };
        let mut record = Record {
            line,
            threat_type: threat_type.map(str::to_owned),
            raw: text.to_owned(),
            ..Record::default()
        };
        match detect(&value) {
            Ok(ioc) => record.push(ioc),
            Err(why) => ctx.reject(line, "value", &value, &why),
        }
        ctx.emit(record)
    })
}

/// Spamhaus DROP/EDROP (`1.4.0.0/17 ; SBL256893`), ASN-DROP (`AS260 ; AE | NAME`) and their
/// JSON-lines successors (`{"cidr":…,"sblid":…}`, `{"asn":…}`, a trailing metadata object).
pub(super) fn spamhaus(doc: &mut dyn BufRead, ctx: &mut Ctx<'_>) -> Result<(), ParseError> {
    each_line(doc, ctx, &[";", "#"], &mut |line, text, ctx| {
        let mut record = Record {
            line,
            threat_type: Some("hijacked_netblock".to_owned()),
            raw: text.to_owned(),
            ..Record::default()
        };
        let t = text.trim();
        if t.starts_with('{') {
            let map: serde_json::Map<String, serde_json::Value> = match serde_json::from_str(t) {
                Ok(m) => m,
                Err(e) => {
                    ctx.problem(
                        line,
                        None,
                        format!("invalid JSON (column {}); skipped", e.column()),
                    );
                    return Ok(());
                }
            };
            if json::text(&map, &["type"]).as_deref() == Some("metadata") {
                return Ok(());
            }
            record.source_ref = json::text(&map, &["sblid"]);
            record.description = json::text(&map, &["asname"]);
            if let Some(cidr) = json::text(&map, &["cidr"]) {
                ctx.add(&mut record, IocKind::Cidr, &cidr, "cidr");
            } else if let Some(asn) = json::text(&map, &["asn"]) {
                ctx.add(&mut record, IocKind::Asn, &asn, "asn");
            } else {
                ctx.problem(line, None, "neither `cidr` nor `asn`; skipped");
            }
            return ctx.emit(record);
        }
        let (value, comment) = match t.split_once(';') {
            Some((v, c)) => (v.trim(), Some(c.trim())),
            None => (t, None),
        };
        let kind = if value.len() > 2
            && crate::canon::has_prefix_ignore_case(value, "as")
            && !value.contains('/')
        {
            IocKind::Asn
        } else {
            IocKind::Cidr
        };
        if let Some(comment) = comment.filter(|c| !c.is_empty()) {
            if kind == IocKind::Cidr {
                record.source_ref = Some(comment.to_owned());
            } else {
                record.description = Some(comment.to_owned());
            }
        }
        ctx.add(&mut record, kind, value, "value");
        ctx.emit(record)
    })
}

fn phish_record(line: u64, raw: &str) -> Record {
    Record {
        line,
        threat_type: Some("phishing".to_owned()),
        raw: raw.to_owned(),
        ..Record::default()
    }
}

const PHISHTANK: CsvSpec = CsvSpec {
    name: "phishtank-csv",
    comments: &[],
    sep: b',',
    header_marker: &["phish_id", "url"],
    layouts: &[&[
        "phish_id",
        "url",
        "phish_detail_url",
        "submission_time",
        "verified",
        "verification_time",
        "online",
        "target",
    ]],
};

fn phish_fields(
    record: &mut Record,
    id: Option<String>,
    detail: Option<String>,
    time: Option<String>,
    online: Option<String>,
    target: Option<String>,
) {
    record.source_ref = id;
    record.reference = detail;
    record.first_seen = time.as_deref().and_then(parse_time);
    record.status = online.map(|o| {
        if o.eq_ignore_ascii_case("yes") {
            "online".to_owned()
        } else {
            "offline".to_owned()
        }
    });
    if let Some(target) = target.filter(|t| !t.eq_ignore_ascii_case("other")) {
        record.tag(&format!("target:{target}"));
    }
}

/// PhishTank `online-valid.csv`.
pub(super) fn phishtank_csv(doc: &mut dyn BufRead, ctx: &mut Ctx<'_>) -> Result<(), ParseError> {
    table::read(doc, ctx, &PHISHTANK, &mut |row, ctx| {
        let mut record = phish_record(row.line, row.raw);
        let s = |k: &str| row.get(&[k]).map(str::to_owned);
        phish_fields(
            &mut record,
            s("phish_id"),
            s("phish_detail_url"),
            s("submission_time"),
            s("online"),
            s("target"),
        );
        ctx.require(&mut record, IocKind::Url, row.get(&["url"]), "url");
        ctx.emit(record)
    })
}

/// PhishTank `online-valid.json`. The hosting addresses in `details` are not indicators (they
/// are mostly CDNs); they stay in the raw record.
pub(super) fn phishtank_json(doc: &mut dyn BufRead, ctx: &mut Ctx<'_>) -> Result<(), ParseError> {
    json::objects(doc, ctx, &[], &mut |obj, ctx| {
        let m = &obj.map;
        let mut record = phish_record(obj.line, obj.raw);
        let s = |k: &str| json::text(m, &[k]);
        phish_fields(
            &mut record,
            s("phish_id"),
            s("phish_detail_url"),
            s("submission_time"),
            s("online"),
            s("target"),
        );
        ctx.require(&mut record, IocKind::Url, s("url").as_deref(), "url");
        ctx.emit(record)
    })
}

/// Column names that hold indicators, and their kind (`None`: detect per value).
const VALUE_COLUMNS: &[(&str, Option<IocKind>)] = &[
    ("url", Some(IocKind::Url)),
    ("uri", Some(IocKind::Url)),
    ("ip", None),
    ("ip_address", None),
    ("ipaddress", None),
    ("dst_ip", None),
    ("src_ip", None),
    ("ipv4", Some(IocKind::Ipv4)),
    ("ipv6", Some(IocKind::Ipv6)),
    ("cidr", Some(IocKind::Cidr)),
    ("domain", Some(IocKind::Domain)),
    ("hostname", Some(IocKind::Domain)),
    ("host", None),
    ("fqdn", Some(IocKind::Domain)),
    ("email", Some(IocKind::Email)),
    ("md5", Some(IocKind::Md5)),
    ("sha1", Some(IocKind::Sha1)),
    ("sha256", Some(IocKind::Sha256)),
    ("sha512", Some(IocKind::Sha512)),
    ("hash", None),
    ("ioc", None),
    ("indicator", None),
    ("value", None),
    ("cve", Some(IocKind::Cve)),
];

const GENERIC: CsvSpec = CsvSpec {
    name: "csv",
    comments: &["#"],
    sep: b',',
    header_marker: &[],
    layouts: &[],
};

/// Any CSV whose header names its columns: every column named like an indicator
/// ([`VALUE_COLUMNS`]) is read; `family`/`malware`, `first_seen`/`firstseen`/`date`, `tags`
/// and `threat_type` are carried along.
pub(super) fn generic_csv(doc: &mut dyn BufRead, ctx: &mut Ctx<'_>) -> Result<(), ParseError> {
    let mut checked = false;
    table::read(doc, ctx, &GENERIC, &mut |row, ctx| {
        let columns: Vec<(usize, &str, Option<IocKind>)> = VALUE_COLUMNS
            .iter()
            .filter_map(|(name, kind)| row.header.find(&[name]).map(|i| (i, *name, *kind)))
            .collect();
        if columns.is_empty() {
            if !checked {
                ctx.problem(row.line, None, "the header names no indicator column (url, ip, domain, md5, sha256, hash, ioc, …)");
            }
            checked = true;
            return Ok(());
        }
        let mut record = Record {
            line: row.line,
            first_seen: row
                .get(&[
                    "first_seen",
                    "firstseen",
                    "first_seen_utc",
                    "dateadded",
                    "date",
                ])
                .and_then(parse_time),
            last_seen: row.get(&["last_seen", "lastseen"]).and_then(parse_time),
            threat_type: row.get(&["threat_type", "threat"]).map(str::to_lowercase),
            raw: row.raw.to_owned(),
            ..Record::default()
        };
        if let Some(f) = row.get(&["family", "malware", "malware_family", "signature"]) {
            record.family(f);
        }
        for tag in row.get(&["tags"]).unwrap_or_default().split(',') {
            record.tag(tag);
        }
        for (i, name, kind) in columns {
            let Some(value) = row
                .fields
                .get(i)
                .map(|v| v.trim())
                .filter(|v| !crate::record::is_null(v))
            else {
                continue;
            };
            match kind {
                Some(kind) => {
                    ctx.add(&mut record, kind, value, name);
                }
                None => match detect(value) {
                    Ok(ioc) => record.push(ioc),
                    Err(why) => ctx.reject(row.line, name, value, &why),
                },
            }
        }
        ctx.emit(record)
    })
}
