//! MISP events and feeds (`manifest.json` + one `<uuid>.json` per event).
//!
//! Only attributes flagged `to_ids` become indicators: MISP's own meaning of the flag is "use
//! this for detection", and events carry many context values (links, comments, free text) that
//! are not. Composite `a|b` attributes yield one indicator per usable part, related by their
//! record.

use std::collections::BTreeMap;
use std::io::BufRead;

use serde::Deserialize;
use serde_json::{Map, Value};

use super::fields::parse_time;
use super::input::read_document;
use super::json;
use super::{Ctx, Format, ParseError};
use crate::canon::{self, Ioc};
use crate::kind::IocKind;
use crate::record::Record;

/// A MISP attribute type's kind. `None` for types that are context, not indicators.
fn kind_of(misp_type: &str) -> Option<IocKind> {
    Some(match misp_type {
        // `ip` is the address half of composites such as `domain|ip`; the Cidr rules turn plain
        // addresses into ipv4/ipv6.
        "ip-src" | "ip-dst" | "ip" => IocKind::Cidr,
        "domain" | "hostname" => IocKind::Domain,
        "url" | "uri" => IocKind::Url,
        "email" | "email-src" | "email-dst" | "email-reply-to" => IocKind::Email,
        "md5" => IocKind::Md5,
        "sha1" => IocKind::Sha1,
        "sha224" => IocKind::Sha224,
        "sha256" => IocKind::Sha256,
        "sha384" => IocKind::Sha384,
        "sha512" => IocKind::Sha512,
        "ssdeep" => IocKind::Ssdeep,
        "tlsh" => IocKind::Tlsh,
        "imphash" => IocKind::Imphash,
        "ja3-fingerprint-md5" => IocKind::Ja3,
        "x509-fingerprint-sha1" => IocKind::X509Sha1,
        "vulnerability" => IocKind::Cve,
        "AS" => IocKind::Asn,
        "filename" => IocKind::Filename,
        "mutex" => IocKind::Mutex,
        "port" | "comment" | "text" | "link" | "other" | "datetime" | "counter" => return None,
        "regkey" | "regkey|value" | "user-agent" | "yara" | "snort" | "sigma" | "btc"
        | "named pipe" => IocKind::Other,
        _ => return None,
    })
}

/// Adds one attribute's value(s) to `record`.
fn attribute(record: &mut Record, ctx: &mut Ctx<'_>, misp_type: &str, value: &str) {
    if let Some((left, right)) = misp_type.split_once('|')
        && misp_type != "regkey|value"
    {
        let Some((lv, rv)) = value.split_once('|') else {
            ctx.problem(
                record.line,
                Some("value"),
                format!("composite `{misp_type}` value without `|`; skipped"),
            );
            return;
        };
        match (left, right) {
            ("ip-src" | "ip-dst", "port") => {
                match canon::canonicalize(IocKind::IpPort, &format!("{}:{}", lv.trim(), rv.trim()))
                {
                    Ok(ioc) => {
                        if let Ok((addr, _)) = canon::split_ip_port(&ioc.value) {
                            let kind = if addr.is_ipv4() {
                                IocKind::Ipv4
                            } else {
                                IocKind::Ipv6
                            };
                            record.push(Ioc::new(kind, addr.to_string()));
                        }
                        record.push(ioc);
                    }
                    Err(why) => ctx.reject(record.line, "value", value, &why),
                }
            }
            ("hostname" | "domain", "port") => {
                ctx.add(record, IocKind::Domain, lv, "value");
            }
            _ => {
                for (part_type, part) in [(left, lv), (right, rv)] {
                    if let Some(kind) = kind_of(part_type) {
                        ctx.add(record, kind, part, "value");
                    }
                }
            }
        }
        return;
    }
    match kind_of(misp_type) {
        Some(kind) => {
            ctx.add(record, kind, value, "value");
        }
        None => ctx.note(format!(
            "misp: attributes of type `{misp_type}` are context, not indicators; not imported"
        )),
    }
}

fn tags(map: &Map<String, Value>) -> Vec<String> {
    json::list(map, &["Tag"])
}

fn attack_from_tag(tag: &str) -> Option<String> {
    // misp-galaxy:mitre-attack-pattern="Spearphishing Link - T1566.002"
    let start = tag.rfind(" - T")? + 3;
    let id = tag[start..].trim_end_matches('"');
    canon::canonicalize(IocKind::AttackTechnique, id)
        .ok()
        .map(|i| i.value)
}

/// One MISP event document (`{"Event": {…}}` or the bare event object).
pub(super) fn event(doc: &mut dyn BufRead, ctx: &mut Ctx<'_>) -> Result<(), ParseError> {
    let bytes = read_document(doc, ctx.limits())?;
    let top: Map<String, Value> =
        serde_json::from_slice(&bytes).map_err(|e| ParseError::json(&e))?;
    let event = match top.get("Event") {
        Some(Value::Object(e)) => e,
        _ if top.contains_key("Attribute") => &top,
        _ => {
            return Err(ParseError::Shape {
                format: Format::MispEvent,
                message: "no `Event` object".to_owned(),
            });
        }
    };
    let info = json::text(event, &["info"]);
    let event_tags = tags(event);
    let event_time = json::text(event, &["timestamp", "publish_timestamp"])
        .as_deref()
        .and_then(parse_time);
    let mut attrs: Vec<&Map<String, Value>> = Vec::new();
    if let Some(Value::Array(list)) = event.get("Attribute") {
        attrs.extend(list.iter().filter_map(Value::as_object));
    }
    if let Some(Value::Array(objects)) = event.get("Object") {
        for object in objects.iter().filter_map(Value::as_object) {
            if let Some(Value::Array(list)) = object.get("Attribute") {
                attrs.extend(list.iter().filter_map(Value::as_object));
            }
        }
    }
    let mut skipped = 0u64;
    for (i, attr) in attrs.into_iter().enumerate() {
        let to_ids = matches!(attr.get("to_ids"), Some(Value::Bool(true)))
            || matches!(attr.get("to_ids"), Some(Value::String(s)) if s == "1" || s == "true");
        let deleted = matches!(attr.get("deleted"), Some(Value::Bool(true)));
        if !to_ids || deleted {
            skipped += 1;
            continue;
        }
        let (Some(misp_type), Some(value)) =
            (json::text(attr, &["type"]), json::text(attr, &["value"]))
        else {
            ctx.problem(
                0,
                Some(&format!("Attribute[{i}]")),
                "attribute without type or value; skipped",
            );
            continue;
        };
        let mut record = Record {
            line: i as u64 + 1,
            source_ref: json::text(attr, &["uuid"]),
            first_seen: json::text(attr, &["first_seen"])
                .as_deref()
                .and_then(parse_time)
                .or(event_time),
            last_seen: json::text(attr, &["last_seen", "timestamp"])
                .as_deref()
                .and_then(parse_time),
            description: info.clone(),
            raw: serde_json::to_string(attr).unwrap_or_default(),
            ..Record::default()
        };
        if let Some(category) = json::text(attr, &["category"]) {
            record.tag(&format!("misp-category:{category}"));
        }
        for tag in event_tags.iter().chain(tags(attr).iter()) {
            if let Some(t) = attack_from_tag(tag) {
                record.attack.push(t);
            }
            record.tag(tag);
        }
        attribute(&mut record, ctx, &misp_type, &value);
        ctx.emit(record)?;
    }
    if skipped > 0 {
        ctx.note(format!(
            "misp: {skipped} attribute(s) not flagged to_ids (or deleted) were not imported"
        ));
    }
    Ok(())
}

/// One entry of a MISP feed's `manifest.json`.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
pub struct MispFeedManifest {
    /// The event's UUID (the file is `<uuid>.json`).
    #[serde(skip)]
    pub uuid: String,
    /// The event's title.
    #[serde(default)]
    pub info: Option<String>,
    /// Last change (epoch seconds, string or number): an unchanged event need not be fetched.
    #[serde(default)]
    pub timestamp: Option<Value>,
}

/// Parses a MISP feed manifest into its events, oldest change first.
pub fn parse_misp_manifest(bytes: &[u8]) -> Result<Vec<MispFeedManifest>, ParseError> {
    let map: BTreeMap<String, MispFeedManifest> =
        serde_json::from_slice(bytes).map_err(|e| ParseError::json(&e))?;
    let mut out: Vec<MispFeedManifest> = map
        .into_iter()
        .filter(|(uuid, _)| {
            uuid.len() == 36 && uuid.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')
        })
        .map(|(uuid, mut m)| {
            m.uuid = uuid;
            m
        })
        .collect();
    out.sort_by_key(|m| {
        m.timestamp.as_ref().and_then(|t| match t {
            Value::String(s) => s.parse::<i64>().ok(),
            Value::Number(n) => n.as_i64(),
            _ => None,
        })
    });
    Ok(out)
}
