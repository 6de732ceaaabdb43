//! STIX 2.1 bundles (2.0 accepted): indicators from patterns, context from relationships.
//!
//! Each `indicator` with a STIX pattern becomes one record. A pattern that is a disjunction of
//! simple equalities on known properties fans out into one indicator per value; anything else
//! (AND, FOLLOWEDBY, qualifiers, MATCHES, unknown properties) is kept whole as a
//! `stix_pattern` in canonical form. `indicates` relationships to malware, attack patterns,
//! campaigns and intrusion sets add families, ATT&CK ids and tags.

use std::collections::HashMap;
use std::io::BufRead;

use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::fields::parse_time;
use super::input::{LineCounter, read_document};
use super::json;
use super::{Ctx, Format, ParseError};
use crate::canon::canonicalize;
use crate::kind::IocKind;
use crate::record::Record;
use crate::stix_pattern::{self, Path};

/// The kind a simple `path = 'value'` names, for the properties Rampart indexes.
pub(crate) fn kind_for_path(path: &Path) -> Option<IocKind> {
    let plain = path.plain();
    Some(match plain.as_str() {
        "ipv4-addr:value"
        | "ipv6-addr:value"
        | "network-traffic:dst_ref.value"
        | "network-traffic:src_ref.value" => IocKind::Cidr,
        "domain-name:value" => IocKind::Domain,
        "url:value" => IocKind::Url,
        "email-addr:value" | "email-message:from_ref.value" | "email-message:sender_ref.value" => {
            IocKind::Email
        }
        "file:name" => IocKind::Filename,
        "mutex:name" => IocKind::Mutex,
        "autonomous-system:number" => IocKind::Asn,
        "x-rampart-other:value" => IocKind::Other,
        "file:extensions.windows-pebinary-ext.imphash" => IocKind::Imphash,
        _ => {
            let (prefix, key) = plain.rsplit_once('.')?;
            let key = key.to_ascii_uppercase().replace('-', "");
            match (prefix, key.as_str()) {
                ("file:hashes" | "artifact:hashes", "MD5") => IocKind::Md5,
                ("file:hashes" | "artifact:hashes", "SHA1") => IocKind::Sha1,
                ("file:hashes" | "artifact:hashes", "SHA224") => IocKind::Sha224,
                ("file:hashes" | "artifact:hashes", "SHA256") => IocKind::Sha256,
                ("file:hashes" | "artifact:hashes", "SHA384") => IocKind::Sha384,
                ("file:hashes" | "artifact:hashes", "SHA512") => IocKind::Sha512,
                ("file:hashes", "SSDEEP") => IocKind::Ssdeep,
                ("file:hashes", "TLSH") => IocKind::Tlsh,
                ("x509-certificate:hashes", "SHA1") => IocKind::X509Sha1,
                _ => return None,
            }
        }
    })
}

/// The ATT&CK id of an object (first `mitre-attack` external reference).
pub(crate) fn attack_id(obj: &Map<String, Value>) -> Option<String> {
    obj.get("external_references")?
        .as_array()?
        .iter()
        .filter_map(Value::as_object)
        .find(|r| {
            r.get("source_name")
                .and_then(Value::as_str)
                .is_some_and(|s| s.starts_with("mitre-"))
        })
        .and_then(|r| r.get("external_id")?.as_str())
        .map(str::to_owned)
}

/// One bundle object: the line it starts on, its text, its fields (empty if not an object).
type BundleObject<'a> = (u64, &'a str, Map<String, Value>);

/// Reads the bundle's objects with the line each starts on.
fn bundle_objects(text: &str) -> Result<Vec<BundleObject<'_>>, ParseError> {
    #[derive(serde::Deserialize)]
    struct Bundle<'a> {
        #[serde(rename = "type")]
        kind: Option<String>,
        #[serde(borrow, default)]
        objects: Option<Vec<&'a RawValue>>,
        #[serde(default)]
        id: Option<String>,
    }
    let bundle: Bundle<'_> = serde_json::from_str(text).map_err(|e| ParseError::json(&e))?;
    // A bundle; a TAXII 2.1 envelope (`{"more": …, "objects": […]}`, no `type`); or one STIX
    // object on its own (what many tools write for a single indicator).
    let objects: Vec<&str> = match (bundle.kind.as_deref(), bundle.objects) {
        (Some("bundle") | None, Some(objects)) => objects.iter().map(|r| r.get()).collect(),
        (Some("bundle"), None) => Vec::new(),
        (Some(kind), None)
            if bundle
                .id
                .as_deref()
                .is_some_and(|id| id.starts_with(&format!("{kind}--"))) =>
        {
            vec![text]
        }
        (other, _) => {
            return Err(ParseError::Shape {
                format: Format::Stix,
                message: match other {
                    Some(kind) => format!(
                        "top-level `type` is \"{kind}\": expected a bundle, a TAXII envelope (`objects`) or one STIX object with a matching `id`"
                    ),
                    None => "neither a STIX bundle, a TAXII envelope (`objects`) nor a STIX object (no `type`)".to_owned(),
                },
            });
        }
    };
    let mut counter = LineCounter::new(text.as_bytes());
    let mut out = Vec::with_capacity(objects.len());
    for raw in objects {
        let line = counter.line_of(raw);
        if let Ok(map) = serde_json::from_str::<Map<String, Value>>(raw) {
            out.push((line, raw, map));
        } else {
            out.push((line, raw, Map::new()));
        }
    }
    Ok(out)
}

/// A `vulnerability` with a CVE external reference is a `cve` indicator (what KEV lists and
/// what reports say a campaign exploits).
fn vulnerability(
    m: &Map<String, Value>,
    line: u64,
    raw: &str,
    ctx: &mut Ctx<'_>,
) -> Result<(), ParseError> {
    let cves: Vec<String> = m
        .get("external_references")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object)
        .filter(|r| r.get("source_name").and_then(Value::as_str) == Some("cve"))
        .filter_map(|r| {
            r.get("external_id")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .collect();
    if cves.is_empty() {
        return Ok(());
    }
    let mut record = Record {
        line,
        source_ref: json::text(m, &["id"]),
        first_seen: json::text(m, &["created"]).as_deref().and_then(parse_time),
        last_seen: json::text(m, &["modified"]).as_deref().and_then(parse_time),
        description: json::text(m, &["description", "name"]),
        threat_type: Some("vulnerability".to_owned()),
        raw: raw.to_owned(),
        ..Record::default()
    };
    for cve in cves {
        ctx.add(&mut record, IocKind::Cve, &cve, "external_references");
    }
    ctx.emit(record)
}

/// A STIX bundle document.
pub(super) fn bundle(doc: &mut dyn BufRead, ctx: &mut Ctx<'_>) -> Result<(), ParseError> {
    let bytes = read_document(doc, ctx.limits())?;
    let text = std::str::from_utf8(&bytes).map_err(|_| ParseError::Shape {
        format: Format::Stix,
        message: "not valid UTF-8".to_owned(),
    })?;
    let objects = bundle_objects(text)?;
    let by_id: HashMap<&str, &Map<String, Value>> = objects
        .iter()
        .filter_map(|(_, _, m)| Some((m.get("id")?.as_str()?, m)))
        .collect();
    // indicator id → the objects it `indicates` (or is related to).
    let mut related: HashMap<&str, Vec<&str>> = HashMap::new();
    for (_, _, m) in &objects {
        if m.get("type").and_then(Value::as_str) != Some("relationship") {
            continue;
        }
        let (Some(src), Some(dst)) = (
            m.get("source_ref").and_then(Value::as_str),
            m.get("target_ref").and_then(Value::as_str),
        ) else {
            continue;
        };
        if src.starts_with("indicator--") {
            related.entry(src).or_default().push(dst);
        }
    }
    for (line, raw, m) in &objects {
        if m.is_empty() {
            ctx.problem(*line, None, "object is not a JSON object; skipped");
            continue;
        }
        if m.get("type").and_then(Value::as_str) == Some("vulnerability") {
            vulnerability(m, *line, raw, ctx)?;
            continue;
        }
        if m.get("type").and_then(Value::as_str) != Some("indicator") {
            continue;
        }
        if m.get("revoked").and_then(Value::as_bool) == Some(true) {
            ctx.note("stix: revoked indicators were not imported");
            continue;
        }
        let id = json::text(m, &["id"]);
        let mut record = Record {
            line: *line,
            source_ref: id.clone(),
            first_seen: json::text(m, &["valid_from", "created"])
                .as_deref()
                .and_then(parse_time),
            last_seen: json::text(m, &["modified"]).as_deref().and_then(parse_time),
            valid_until: json::text(m, &["valid_until"])
                .as_deref()
                .and_then(parse_time),
            confidence: json::confidence(m, &["confidence"]),
            description: json::text(m, &["name", "description"]),
            threat_type: json::list(m, &["indicator_types", "labels"])
                .first()
                .map(|t| t.to_lowercase()),
            raw: (*raw).to_owned(),
            ..Record::default()
        };
        for label in json::list(m, &["labels"]) {
            record.tag(&label);
        }
        if let Some(Value::Array(phases)) = m.get("kill_chain_phases") {
            for phase in phases.iter().filter_map(Value::as_object) {
                if let Some(name) = phase.get("phase_name").and_then(Value::as_str) {
                    record.tag(&format!("kill-chain:{name}"));
                }
            }
        }
        for target in id
            .as_deref()
            .and_then(|i| related.get(i))
            .into_iter()
            .flatten()
        {
            let Some(obj) = by_id.get(target) else {
                continue;
            };
            let name = obj.get("name").and_then(Value::as_str);
            match target.split_once("--").map(|(t, _)| t) {
                Some("malware") | Some("tool") => {
                    if let Some(n) = name {
                        record.family(n);
                    }
                }
                Some("attack-pattern") => {
                    if let Some(t) =
                        attack_id(obj).and_then(|a| canonicalize(IocKind::AttackTechnique, &a).ok())
                    {
                        record.attack.push(t.value);
                    }
                }
                Some(kind @ ("campaign" | "intrusion-set" | "threat-actor")) => {
                    if let Some(n) = name {
                        record.tag(&format!("{kind}:{n}"));
                    }
                }
                _ => {}
            }
        }
        let pattern_type = json::text(m, &["pattern_type"]).unwrap_or_else(|| "stix".to_owned());
        let Some(pattern) = json::text(m, &["pattern"]) else {
            ctx.problem(
                *line,
                Some("pattern"),
                "indicator without a pattern; skipped",
            );
            continue;
        };
        if pattern_type != "stix" {
            // Sigma, YARA, Snort… rules are kept verbatim, not parsed.
            record.tag(&format!("pattern-type:{pattern_type}"));
            ctx.add(&mut record, IocKind::Other, &pattern, "pattern");
            ctx.emit(record)?;
            continue;
        }
        let obs = match stix_pattern::parse(&pattern) {
            Ok(obs) => obs,
            Err(e) => {
                ctx.problem(*line, Some("pattern"), e.to_string());
                continue;
            }
        };
        if let Some((addr, port)) = stix_pattern::destination_ip_port(&obs) {
            // An address and port (Rampart's own `ip_port` export, ThreatFox's ip:port).
            let value = if addr.contains(':') {
                format!("[{addr}]:{port}")
            } else {
                format!("{addr}:{port}")
            };
            ctx.add(&mut record, IocKind::IpPort, &value, "pattern");
            ctx.emit(record)?;
            continue;
        }
        let mut whole = true;
        if let Some(tests) = stix_pattern::simple_equalities(&obs) {
            whole = false;
            for (path, value) in tests {
                match kind_for_path(path) {
                    Some(kind) => {
                        ctx.add(&mut record, kind, &value, "pattern");
                    }
                    None => whole = true,
                }
            }
        }
        if whole {
            ctx.add(
                &mut record,
                IocKind::StixPattern,
                &obs.to_string(),
                "pattern",
            );
        }
        ctx.emit(record)?;
    }
    if !objects.is_empty() && !objects.iter().any(|(_, _, m)| importable(m)) {
        // Say what the bundle held instead: a user who exported reports or identities
        // should learn that, not only that nothing was found.
        let mut types: std::collections::BTreeMap<&str, u64> = std::collections::BTreeMap::new();
        for (_, _, m) in &objects {
            *types
                .entry(m.get("type").and_then(Value::as_str).unwrap_or("(no type)"))
                .or_default() += 1;
        }
        let listed: Vec<String> = types.iter().map(|(t, n)| format!("{t} ×{n}")).collect();
        ctx.note(format!(
            "stix: none of its {} objects is an indicator or a vulnerability ({})",
            objects.len(),
            listed.join(", ")
        ));
    }
    Ok(())
}

/// Whether an object is of a type this parser imports.
fn importable(m: &Map<String, Value>) -> bool {
    matches!(
        m.get("type").and_then(Value::as_str),
        Some("indicator" | "vulnerability")
    )
}
