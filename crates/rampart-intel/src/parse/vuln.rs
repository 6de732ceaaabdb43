//! CISA Known Exploited Vulnerabilities (JSON and CSV): one `cve` indicator per entry.

use std::io::BufRead;

use super::fields::parse_time;
use super::json;
use super::table::{self, CsvSpec};
use super::{Ctx, ParseError};
use crate::kind::IocKind;
use crate::record::Record;

/// What KEV says about one vulnerability, whichever encoding it came in.
struct Entry<'a> {
    cve: Option<&'a str>,
    vendor: Option<&'a str>,
    product: Option<&'a str>,
    name: Option<&'a str>,
    added: Option<&'a str>,
    ransomware: Option<&'a str>,
    notes: Option<&'a str>,
    cwes: Vec<String>,
}

fn record(entry: Entry<'_>, line: u64, raw: &str, ctx: &mut Ctx<'_>) -> Result<(), ParseError> {
    let description = match (entry.vendor, entry.product, entry.name) {
        (Some(v), Some(p), Some(n)) => Some(format!("{v} {p}: {n}")),
        (_, _, Some(n)) => Some(n.to_owned()),
        _ => None,
    };
    let mut record = Record {
        line,
        source_ref: entry.cve.map(str::to_owned),
        first_seen: entry.added.and_then(parse_time),
        threat_type: Some("exploited_vulnerability".to_owned()),
        description,
        // The first reference in KEV's " ; "-separated notes is the vendor advisory.
        reference: entry
            .notes
            .and_then(|n| n.split(" ; ").find(|p| p.trim_start().starts_with("http")))
            .map(|u| u.trim().to_owned()),
        raw: raw.to_owned(),
        ..Record::default()
    };
    if entry
        .ransomware
        .is_some_and(|r| r.eq_ignore_ascii_case("known"))
    {
        record.tag("ransomware");
    }
    for cwe in entry.cwes {
        record.tag(&cwe);
    }
    ctx.require(&mut record, IocKind::Cve, entry.cve, "cveID");
    ctx.emit(record)
}

/// `known_exploited_vulnerabilities.json`.
pub(super) fn kev_json(doc: &mut dyn BufRead, ctx: &mut Ctx<'_>) -> Result<(), ParseError> {
    json::objects(doc, ctx, &["vulnerabilities"], &mut |obj, ctx| {
        let m = &obj.map;
        let text = |k: &str| json::text(m, &[k]);
        let (cve, vendor, product, name, added, ransomware, notes) = (
            text("cveID"),
            text("vendorProject"),
            text("product"),
            text("vulnerabilityName"),
            text("dateAdded"),
            text("knownRansomwareCampaignUse"),
            text("notes"),
        );
        let entry = Entry {
            cve: cve.as_deref(),
            vendor: vendor.as_deref(),
            product: product.as_deref(),
            name: name.as_deref(),
            added: added.as_deref(),
            ransomware: ransomware.as_deref(),
            notes: notes.as_deref(),
            cwes: json::list(m, &["cwes"]),
        };
        record(entry, obj.line, obj.raw, ctx)
    })
}

const KEV_CSV: CsvSpec = CsvSpec {
    name: "kev-csv",
    comments: &[],
    sep: b',',
    header_marker: &["cveid"],
    layouts: &[],
};

/// `known_exploited_vulnerabilities.csv`.
pub(super) fn kev_csv(doc: &mut dyn BufRead, ctx: &mut Ctx<'_>) -> Result<(), ParseError> {
    table::read(doc, ctx, &KEV_CSV, &mut |row, ctx| {
        let entry = Entry {
            cve: row.get(&["cveid"]),
            vendor: row.get(&["vendorproject"]),
            product: row.get(&["product"]),
            name: row.get(&["vulnerabilityname"]),
            added: row.get(&["dateadded"]),
            ransomware: row.get(&["knownransomwarecampaignuse"]),
            notes: row.get(&["notes"]),
            cwes: row
                .get(&["cwes"])
                .map(|c| c.split(',').map(|s| s.trim().to_owned()).collect())
                .unwrap_or_default(),
        };
        record(entry, row.line, row.raw, ctx)
    })
}
