//! AlienVault OTX: pulses (with their indicators) and exported indicator lines.

use std::io::BufRead;

use serde_json::{Map, Value};

use super::fields::parse_time;
use super::json;
use super::{Ctx, ParseError};
use crate::kind::IocKind;
use crate::record::Record;

/// OTX indicator `type` → kind. `None`: not an indicator Rampart matches on (kept as `other`
/// only when it is still a concrete value).
fn kind_of(otx_type: &str) -> IocKind {
    match otx_type {
        "IPv4" => IocKind::Ipv4,
        "IPv6" => IocKind::Ipv6,
        "CIDR" => IocKind::Cidr,
        "domain" | "hostname" => IocKind::Domain,
        "URL" => IocKind::Url,
        "email" => IocKind::Email,
        "FileHash-MD5" => IocKind::Md5,
        "FileHash-SHA1" => IocKind::Sha1,
        "FileHash-SHA256" => IocKind::Sha256,
        "FileHash-IMPHASH" => IocKind::Imphash,
        "CVE" => IocKind::Cve,
        "Mutex" => IocKind::Mutex,
        "FilePath" => IocKind::Filename,
        "JA3" => IocKind::Ja3,
        _ => IocKind::Other,
    }
}

fn indicator(
    ind: &Map<String, Value>,
    pulse: Option<&Map<String, Value>>,
    line: u64,
    raw: &str,
    ctx: &mut Ctx<'_>,
) -> Result<(), ParseError> {
    let otx_type = json::text(ind, &["type"]).unwrap_or_default();
    let mut record = Record {
        line,
        source_ref: json::text(ind, &["_id", "id"]),
        first_seen: json::text(ind, &["created"])
            .as_deref()
            .and_then(parse_time),
        description: json::text(ind, &["title", "description"]),
        raw: raw.to_owned(),
        ..Record::default()
    };
    if let Some(pulse) = pulse {
        if let Some(name) = json::text(pulse, &["name"]) {
            record.description = Some(match record.description.take() {
                Some(d) => format!("{name}: {d}"),
                None => name,
            });
        }
        record.reference = json::list(pulse, &["references"])
            .into_iter()
            .find(|r| r.starts_with("http"));
        record.reporter = json::text(pulse, &["author_name"]);
        for tag in json::list(pulse, &["tags"]) {
            record.tag(&tag);
        }
        for family in json::list(pulse, &["malware_families"]) {
            record.family(&family);
        }
        for id in json::list(pulse, &["attack_ids"]) {
            if let Ok(t) = crate::canon::canonicalize(IocKind::AttackTechnique, &id) {
                record.attack.push(t.value);
            }
        }
    }
    let value = json::text(ind, &["indicator"]);
    let Some(value) = value else {
        ctx.problem(line, Some("indicator"), "missing indicator value; skipped");
        return Ok(());
    };
    let kind = kind_of(&otx_type);
    if kind == IocKind::Other {
        record.tag(&format!("otx-type:{otx_type}"));
    }
    // OTX files `URI` paths and full URLs under one type: a URL if it parses as one.
    if otx_type == "URI"
        && let Ok(url) = crate::canon::canonicalize(IocKind::Url, &value)
    {
        record.push(url);
        return ctx.emit(record);
    }
    ctx.add(&mut record, kind, &value, "indicator");
    ctx.emit(record)
}

/// Pulses (a JSON array, or `{"results": […]}`) or exported indicators (one object per line).
pub(super) fn otx_json(doc: &mut dyn BufRead, ctx: &mut Ctx<'_>) -> Result<(), ParseError> {
    json::objects(
        doc,
        ctx,
        &["results"],
        &mut |obj, ctx| match obj.map.get("indicators") {
            Some(Value::Array(indicators)) => {
                for ind in indicators {
                    match ind {
                        Value::Object(ind) => {
                            let raw = serde_json::to_string(ind).unwrap_or_default();
                            indicator(ind, Some(&obj.map), obj.line, &raw, ctx)?;
                        }
                        _ => ctx.problem(
                            obj.line,
                            Some("indicators"),
                            "indicator is not an object; skipped",
                        ),
                    }
                }
                Ok(())
            }
            _ => indicator(&obj.map, None, obj.line, obj.raw, ctx),
        },
    )
}
