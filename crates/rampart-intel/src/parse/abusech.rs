//! abuse.ch feeds: URLhaus, ThreatFox, Feodo Tracker, MalwareBazaar, SSL blacklist.

use std::io::BufRead;

use serde_json::{Map, Value};

use super::fields::parse_time;
use super::json::{self, Obj};
use super::table::{self, CsvSpec, Row};
use super::{Ctx, ParseError};
use crate::canon::{self, Ioc, split_ip_port};
use crate::kind::IocKind;
use crate::record::Record;

const URLHAUS: CsvSpec = CsvSpec {
    name: "urlhaus-csv",
    comments: &["#"],
    sep: b',',
    header_marker: &["url", "dateadded"],
    layouts: &[
        &[
            "id",
            "dateadded",
            "url",
            "url_status",
            "last_online",
            "threat",
            "tags",
            "urlhaus_link",
            "reporter",
        ],
        &[
            "id",
            "dateadded",
            "url",
            "url_status",
            "threat",
            "tags",
            "urlhaus_link",
            "reporter",
        ],
    ],
};

/// URLhaus CSV: one URL per row.
pub(super) fn urlhaus_csv(doc: &mut dyn BufRead, ctx: &mut Ctx<'_>) -> Result<(), ParseError> {
    table::read(doc, ctx, &URLHAUS, &mut |row, ctx| {
        let mut record = Record {
            line: row.line,
            source_ref: row.get(&["id"]).map(str::to_owned),
            first_seen: row.get(&["dateadded"]).and_then(parse_time),
            last_seen: row.get(&["last_online"]).and_then(parse_time),
            threat_type: row.get(&["threat"]).map(str::to_lowercase),
            status: row.get(&["url_status"]).map(str::to_lowercase),
            reference: row.get(&["urlhaus_link"]).map(str::to_owned),
            reporter: row.get(&["reporter"]).map(str::to_owned),
            raw: row.raw.to_owned(),
            ..Record::default()
        };
        for tag in row.get(&["tags"]).unwrap_or_default().split(',') {
            record.tag(tag);
        }
        ctx.require(&mut record, IocKind::Url, row.get(&["url"]), "url");
        ctx.emit(record)
    })
}

/// URLhaus JSON (keyed dump or objects per line).
pub(super) fn urlhaus_json(doc: &mut dyn BufRead, ctx: &mut Ctx<'_>) -> Result<(), ParseError> {
    json::objects(doc, ctx, &["urls", "data"], &mut |obj, ctx| {
        let m = &obj.map;
        let mut record = Record {
            line: obj.line,
            source_ref: json::text(m, &["id"]).or(obj.key.clone()),
            first_seen: json::text(m, &["dateadded", "date_added"])
                .as_deref()
                .and_then(parse_time),
            last_seen: json::text(m, &["last_online"])
                .as_deref()
                .and_then(parse_time),
            threat_type: json::text(m, &["threat"]).map(|t| t.to_lowercase()),
            status: json::text(m, &["url_status"]).map(|t| t.to_lowercase()),
            reference: json::text(m, &["urlhaus_link", "urlhaus_reference"]),
            reporter: json::text(m, &["reporter"]),
            raw: obj.raw.to_owned(),
            ..Record::default()
        };
        for tag in json::list(m, &["tags"]) {
            record.tag(&tag);
        }
        ctx.require(
            &mut record,
            IocKind::Url,
            json::text(m, &["url"]).as_deref(),
            "url",
        );
        ctx.emit(record)
    })
}

const THREATFOX: CsvSpec = CsvSpec {
    name: "threatfox-csv",
    comments: &["#"],
    sep: b',',
    header_marker: &["ioc_value", "ioc_type"],
    layouts: &[
        &[
            "first_seen_utc",
            "ioc_id",
            "ioc_value",
            "ioc_type",
            "threat_type",
            "fk_malware",
            "malware_alias",
            "malware_printable",
            "last_seen_utc",
            "confidence_level",
            "is_compromised",
            "reference",
            "tags",
            "anonymous",
            "reporter",
        ],
        &[
            "first_seen_utc",
            "ioc_id",
            "ioc_value",
            "ioc_type",
            "threat_type",
            "fk_malware",
            "malware_alias",
            "malware_printable",
            "last_seen_utc",
            "confidence_level",
            "reference",
            "tags",
            "anonymous",
            "reporter",
        ],
    ],
};

/// Adds a ThreatFox value by its `ioc_type`. An `ip:port` also yields the address, so that a
/// connection to the host on another port still matches; the record relates the two.
fn threatfox_value(record: &mut Record, ctx: &mut Ctx<'_>, ioc_type: &str, value: &str) {
    let kind = match ioc_type {
        "ip:port" => {
            match split_ip_port(value.trim()) {
                Ok((addr, port)) => {
                    record.push(Ioc::new(IocKind::IpPort, canon::format_ip_port(addr, port)));
                    let kind = if addr.is_ipv4() {
                        IocKind::Ipv4
                    } else {
                        IocKind::Ipv6
                    };
                    record.push(Ioc::new(kind, addr.to_string()));
                }
                Err(why) => ctx.reject(record.line, "ioc_value", value, &why),
            }
            return;
        }
        "domain" => IocKind::Domain,
        "url" => IocKind::Url,
        "md5_hash" => IocKind::Md5,
        "sha1_hash" => IocKind::Sha1,
        "sha256_hash" => IocKind::Sha256,
        "sha3_384_hash" => IocKind::Other,
        "envelope_from" | "body_from" => IocKind::Email,
        other => {
            ctx.problem(
                record.line,
                Some("ioc_type"),
                format!("unknown ThreatFox ioc_type `{other}`; kept as `other`"),
            );
            IocKind::Other
        }
    };
    ctx.add(record, kind, value, "ioc_value");
}

fn threatfox_families(record: &mut Record, malpedia: Option<&str>, printable: Option<&str>) {
    match malpedia {
        Some(id) if !id.eq_ignore_ascii_case("unknown") => record.family(id),
        _ => {
            if let Some(p) = printable.filter(|p| !p.eq_ignore_ascii_case("unknown malware")) {
                record.family(p);
            }
        }
    }
}

/// ThreatFox CSV export.
pub(super) fn threatfox_csv(doc: &mut dyn BufRead, ctx: &mut Ctx<'_>) -> Result<(), ParseError> {
    table::read(doc, ctx, &THREATFOX, &mut |row: &Row<'_>, ctx| {
        let mut record = Record {
            line: row.line,
            source_ref: row.get(&["ioc_id"]).map(str::to_owned),
            first_seen: row.get(&["first_seen_utc"]).and_then(parse_time),
            last_seen: row.get(&["last_seen_utc"]).and_then(parse_time),
            threat_type: row.get(&["threat_type"]).map(str::to_lowercase),
            confidence: row
                .get(&["confidence_level"])
                .and_then(|c| c.parse().ok())
                .filter(|c| *c <= 100),
            reference: row.get(&["reference"]).map(str::to_owned),
            reporter: row.get(&["reporter"]).map(str::to_owned),
            raw: row.raw.to_owned(),
            ..Record::default()
        };
        threatfox_families(
            &mut record,
            row.get(&["fk_malware"]),
            row.get(&["malware_printable"]),
        );
        for tag in row.get(&["tags"]).unwrap_or_default().split(',') {
            record.tag(tag);
        }
        match (row.get(&["ioc_type"]), row.get(&["ioc_value"])) {
            (Some(t), Some(v)) => threatfox_value(&mut record, ctx, &t.to_ascii_lowercase(), v),
            _ => ctx.problem(
                row.line,
                Some("ioc_value"),
                "missing ioc_value or ioc_type; skipped",
            ),
        }
        ctx.emit(record)
    })
}

/// ThreatFox JSON export (`{ "<id>": [ {…} ] }`), API response (`{"data": […]}`) or API objects
/// one per line.
pub(super) fn threatfox_json(doc: &mut dyn BufRead, ctx: &mut Ctx<'_>) -> Result<(), ParseError> {
    json::objects(doc, ctx, &["data"], &mut |obj: Obj<'_>, ctx| {
        let m: &Map<String, Value> = &obj.map;
        let mut record = Record {
            line: obj.line,
            source_ref: json::text(m, &["id", "ioc_id"]).or(obj.key.clone()),
            first_seen: json::text(m, &["first_seen_utc", "first_seen"])
                .as_deref()
                .and_then(parse_time),
            last_seen: json::text(m, &["last_seen_utc", "last_seen"])
                .as_deref()
                .and_then(parse_time),
            threat_type: json::text(m, &["threat_type"]).map(|t| t.to_lowercase()),
            confidence: json::confidence(m, &["confidence_level"]),
            reference: json::text(m, &["reference"]),
            reporter: json::text(m, &["reporter"]),
            raw: obj.raw.to_owned(),
            ..Record::default()
        };
        threatfox_families(
            &mut record,
            json::text(m, &["malware", "fk_malware"]).as_deref(),
            json::text(m, &["malware_printable"]).as_deref(),
        );
        for tag in json::list(m, &["tags"]) {
            record.tag(&tag);
        }
        match (
            json::text(m, &["ioc_type"]),
            json::text(m, &["ioc_value", "ioc"]),
        ) {
            (Some(t), Some(v)) => threatfox_value(&mut record, ctx, &t.to_ascii_lowercase(), &v),
            _ => ctx.problem(
                obj.line,
                Some("ioc"),
                "missing ioc value or ioc_type; skipped",
            ),
        }
        ctx.emit(record)
    })
}

const FEODO: CsvSpec = CsvSpec {
    name: "feodo-csv",
    comments: &["#"],
    sep: b',',
    header_marker: &["dst_ip"],
    layouts: &[&[
        "first_seen_utc",
        "dst_ip",
        "dst_port",
        "c2_status",
        "last_online",
        "malware",
    ]],
};

/// An address, and with a port also the `ip:port`.
fn address_and_port(
    record: &mut Record,
    ctx: &mut Ctx<'_>,
    ip: &str,
    port: Option<&str>,
    field: &str,
) {
    match canon::ip(ip.trim()) {
        Ok(addr) => {
            let kind = if addr.is_ipv4() {
                IocKind::Ipv4
            } else {
                IocKind::Ipv6
            };
            record.push(Ioc::new(kind, addr.to_string()));
            if let Some(port) = port {
                match port.trim().parse::<u16>() {
                    Ok(p) if p > 0 => {
                        record.push(Ioc::new(IocKind::IpPort, canon::format_ip_port(addr, p)))
                    }
                    _ => ctx.problem(
                        record.line,
                        Some("port"),
                        format!("`{port}` is not a port; address kept"),
                    ),
                }
            }
        }
        Err(why) => ctx.reject(record.line, field, ip, &why),
    }
}

/// Feodo Tracker CSV (header not commented).
pub(super) fn feodo_csv(doc: &mut dyn BufRead, ctx: &mut Ctx<'_>) -> Result<(), ParseError> {
    table::read(doc, ctx, &FEODO, &mut |row, ctx| {
        let mut record = Record {
            line: row.line,
            first_seen: row
                .get(&["first_seen_utc", "first_seen"])
                .and_then(parse_time),
            last_seen: row.get(&["last_online"]).and_then(parse_time),
            status: row.get(&["c2_status"]).map(str::to_lowercase),
            threat_type: Some("botnet_cc".to_owned()),
            raw: row.raw.to_owned(),
            ..Record::default()
        };
        if let Some(m) = row.get(&["malware"]) {
            record.family(m);
        }
        match row.get(&["dst_ip"]) {
            Some(ip) => address_and_port(&mut record, ctx, ip, row.get(&["dst_port"]), "dst_ip"),
            None => ctx.problem(row.line, Some("dst_ip"), "empty address; skipped"),
        }
        ctx.emit(record)
    })
}

/// Feodo Tracker JSON (a bare array).
pub(super) fn feodo_json(doc: &mut dyn BufRead, ctx: &mut Ctx<'_>) -> Result<(), ParseError> {
    json::objects(doc, ctx, &[], &mut |obj, ctx| {
        let m = &obj.map;
        let mut record = Record {
            line: obj.line,
            first_seen: json::text(m, &["first_seen"])
                .as_deref()
                .and_then(parse_time),
            last_seen: json::text(m, &["last_online"])
                .as_deref()
                .and_then(parse_time),
            status: json::text(m, &["status"]).map(|s| s.to_lowercase()),
            threat_type: Some("botnet_cc".to_owned()),
            raw: obj.raw.to_owned(),
            ..Record::default()
        };
        if let Some(m) = json::text(m, &["malware"]) {
            record.family(&m);
        }
        match json::text(m, &["ip_address"]) {
            Some(ip) => address_and_port(
                &mut record,
                ctx,
                &ip,
                json::text(m, &["port"]).as_deref(),
                "ip_address",
            ),
            None => ctx.problem(obj.line, Some("ip_address"), "missing address; skipped"),
        }
        ctx.emit(record)
    })
}

const MALWAREBAZAAR: CsvSpec = CsvSpec {
    name: "malwarebazaar-csv",
    comments: &["#"],
    sep: b',',
    header_marker: &["sha256_hash"],
    layouts: &[&[
        "first_seen_utc",
        "sha256_hash",
        "md5_hash",
        "sha1_hash",
        "reporter",
        "file_name",
        "file_type_guess",
        "mime_type",
        "signature",
        "clamav",
        "vtpercent",
        "imphash",
        "ssdeep",
        "tlsh",
    ]],
};

/// MalwareBazaar CSV: every hash of one sample in one record (an equivalence set).
pub(super) fn malwarebazaar_csv(
    doc: &mut dyn BufRead,
    ctx: &mut Ctx<'_>,
) -> Result<(), ParseError> {
    table::read(doc, ctx, &MALWAREBAZAAR, &mut |row, ctx| {
        let mut record = Record {
            line: row.line,
            source_ref: row.get(&["sha256_hash"]).map(str::to_lowercase),
            first_seen: row.get(&["first_seen_utc"]).and_then(parse_time),
            reporter: row.get(&["reporter"]).map(str::to_owned),
            threat_type: Some("payload".to_owned()),
            description: row.get(&["file_name"]).map(|f| format!("file name: {f}")),
            raw: row.raw.to_owned(),
            ..Record::default()
        };
        if let Some(sig) = row.get(&["signature"]) {
            record.family(sig);
        }
        if let Some(t) = row.get(&["file_type_guess"]) {
            record.tag(t);
        }
        for (field, kind) in [
            ("sha256_hash", IocKind::Sha256),
            ("md5_hash", IocKind::Md5),
            ("sha1_hash", IocKind::Sha1),
            ("imphash", IocKind::Imphash),
            ("ssdeep", IocKind::Ssdeep),
            ("tlsh", IocKind::Tlsh),
        ] {
            if let Some(v) = row.get(&[field]) {
                ctx.add(&mut record, kind, v, field);
            }
        }
        ctx.emit(record)
    })
}

const SSLBL: CsvSpec = CsvSpec {
    name: "sslbl-csv",
    comments: &["#"],
    sep: b',',
    header_marker: &["sha1"],
    layouts: &[&["listingdate", "sha1", "listingreason"]],
};

/// SSL certificate blacklist: certificate SHA-1 fingerprints with a listing reason.
pub(super) fn sslbl_csv(doc: &mut dyn BufRead, ctx: &mut Ctx<'_>) -> Result<(), ParseError> {
    table::read(doc, ctx, &SSLBL, &mut |row, ctx| {
        let reason = row.get(&["listingreason"]);
        let mut record = Record {
            line: row.line,
            first_seen: row.get(&["listingdate"]).and_then(parse_time),
            description: reason.map(str::to_owned),
            raw: row.raw.to_owned(),
            ..Record::default()
        };
        if let Some(reason) = reason {
            // "AsyncRAT C&C" → family asyncrat, a C2 certificate.
            let family = reason.trim_end_matches(" C&C").trim_end_matches(" C2");
            if family.len() < reason.len() {
                record.threat_type = Some("botnet_cc".to_owned());
            }
            record.family(family);
        }
        ctx.require(&mut record, IocKind::X509Sha1, row.get(&["sha1"]), "SHA1");
        ctx.emit(record)
    })
}
