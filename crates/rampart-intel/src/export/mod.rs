//! Exports in the formats firewalls, resolvers, IDS and SIEMs already read.
//!
//! Each format takes the indicator kinds it can express and skips the rest (a domain has no
//! place in an IP blocklist), and says so: the formats with comments open with a header that
//! counts what was left out and why, so their bodies are built before the header is written.
//! The STIX bundle's ids are deterministic (the same indicator always gets the same ids), so
//! consumers can deduplicate across exports.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::str::FromStr;

use serde_json::json;
use uuid::Uuid;

use crate::rows::IntelExportRow;

use crate::canon::{self, Ioc};
use crate::kind::IocKind;
use crate::score;

pub mod suricata;

/// One indicator to export.
#[derive(Debug, Clone, PartialEq)]
pub struct Exported {
    /// The indicator's stable id (Suricata sids are derived from it).
    pub id: u64,
    /// The indicator.
    pub ioc: Ioc,
    /// Current score, 0–100.
    pub score: u8,
    /// Earliest source sighting (Unix seconds).
    pub first_seen: i64,
    /// Latest source sighting (Unix seconds).
    pub last_seen: i64,
    /// Threat type of its latest record.
    pub threat_type: Option<String>,
    /// Malware family of its latest record.
    pub family: Option<String>,
    /// ATT&CK technique ids from all its records.
    pub attack: Vec<String>,
    /// The feeds that report it, by name, sorted.
    pub feeds: Vec<String>,
    /// The most restrictive TLP among those feeds (TLP 2.0 name), if any feed reports it.
    pub tlp: Option<&'static str>,
    /// The stamp of its current version, microseconds since the epoch (0: none). It is the
    /// STIX `modified` of its objects, so every change is a new STIX version and TAXII
    /// pollers see updates.
    pub version: i64,
}

/// The most restrictive of TLP 2.0 markings (`red` over `amber+strict` over `amber` …);
/// unknown names count as the most restrictive, so a marking is never weakened by an export.
pub fn strictest_tlp<'a>(tlps: impl IntoIterator<Item = &'a str>) -> Option<&'static str> {
    tlps.into_iter()
        .map(|t| {
            crate::feeds::TLPS
                .iter()
                .position(|known| known.eq_ignore_ascii_case(t))
                .unwrap_or(crate::feeds::TLPS.len() - 1)
        })
        .max()
        .map(|i| crate::feeds::TLPS[i])
}

/// Export formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    /// CSV with a header: kind, value, score, first_seen, last_seen, threat_type, malware.
    Csv,
    /// Addresses and networks, one per line.
    BlocklistIp,
    /// Domains, one per line.
    BlocklistDomain,
    /// URLs, one per line.
    Urls,
    /// `0.0.0.0 domain` lines for a hosts file.
    Hosts,
    /// A DNS response-policy zone (RPZ): domains and their sub-domains, and address triggers.
    Rpz,
    /// Suricata rules: addresses, domains (DNS queries and TLS SNI) and URLs (HTTP).
    Suricata,
    /// A STIX 2.1 bundle of indicators with their observables.
    Stix,
}

impl FromStr for ExportFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "csv" => ExportFormat::Csv,
            "blocklist-ip" => ExportFormat::BlocklistIp,
            "blocklist-domain" => ExportFormat::BlocklistDomain,
            "urls" | "blocklist-url" => ExportFormat::Urls,
            "hosts" => ExportFormat::Hosts,
            "rpz" => ExportFormat::Rpz,
            "suricata" => ExportFormat::Suricata,
            "stix" => ExportFormat::Stix,
            other => {
                return Err(format!(
                    "unknown export format `{other}`; known: csv, blocklist-ip, blocklist-domain, urls, hosts, rpz, suricata, stix"
                ));
            }
        })
    }
}

/// The STIX 2.1 namespace for deterministic SCO ids (cti-python-stix2).
const STIX_SCO_NAMESPACE: Uuid = Uuid::from_u128(0x00ab_edb4_aa42_466c_9c01_fed2_3315_a9b7);
/// Rampart's own namespace for indicator ids.
const RAMPART_NAMESPACE: Uuid = Uuid::from_u128(0x7d1c_2b5e_9a4f_5c3e_8b21_4f6d_0e9a_3c17);

/// A stored row as exporters see it, with its current score under `decay`.
pub fn from_row(row: IntelExportRow, at: i64, decay: &score::DecayModels) -> Exported {
    let i = &row.indicator;
    let kind = i.kind;
    let score = decay.score(
        &score::Facts::from_row(i),
        kind,
        i.threat_type.as_deref(),
        at,
    );
    Exported {
        id: u64::try_from(i.id).unwrap_or(0),
        ioc: Ioc::new(kind, i.value.clone()),
        score,
        first_seen: row.first_seen,
        last_seen: i.last_seen,
        threat_type: row.indicator.threat_type.clone(),
        family: row.family,
        attack: row.attack,
        tlp: strictest_tlp(row.feeds.iter().map(|(_, tlp)| tlp.as_str())),
        feeds: row.feeds.into_iter().map(|(name, _)| name).collect(),
        version: row.version,
    }
}

fn timestamp(secs: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".to_owned())
}

/// A STIX timestamp: RFC 3339 in UTC with three fractional digits, the precision STIX 2.1
/// requires at least for `created` and `modified` (§3.2) and the validators check everywhere.
fn stix_timestamp(secs: i64) -> String {
    let t =
        time::OffsetDateTime::from_unix_timestamp(secs).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.000Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// A STIX timestamp with microseconds, for `modified`: a version stamp in full, so two
/// versions of an object never share one (STIX allows any sub-second precision from
/// milliseconds up).
fn stix_timestamp_us(us: i64) -> String {
    let whole = stix_timestamp(us.div_euclid(1_000_000));
    let date = whole.strip_suffix(".000Z").unwrap_or(&whole);
    format!("{date}.{:06}Z", us.rem_euclid(1_000_000))
}

/// An indicator's STIX `modified`: its version, never before `created`.
fn stix_modified(e: &Exported) -> String {
    stix_timestamp_us(e.version.max(e.first_seen.saturating_mul(1_000_000)))
}

/// The TLP 2.0 marking definitions OASIS publishes (the `tlp-2.0` extension definition of
/// cti-stix-common-objects): fixed ids every STIX consumer can resolve.
const TLP_EXTENSION: &str = "extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d";

/// The marking-definition id of a TLP 2.0 name (`clear` … `red`).
pub fn tlp_marking_id(tlp: &str) -> Option<&'static str> {
    Some(match tlp {
        "clear" => "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487",
        "green" => "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb",
        "amber" => "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421",
        "amber+strict" => "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003",
        "red" => "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1",
        _ => return None,
    })
}

/// The TLP 2.0 marking-definition object, as OASIS publishes it.
pub fn tlp_marking(tlp: &str) -> Option<serde_json::Value> {
    let id = tlp_marking_id(tlp)?;
    Some(json!({
        "type": "marking-definition",
        "spec_version": "2.1",
        "id": id,
        "created": "2022-10-01T00:00:00.000Z",
        "name": format!("TLP:{}", tlp.to_ascii_uppercase()),
        "extensions": {
            TLP_EXTENSION: {"extension_type": "property-extension", "tlp_2_0": tlp}
        }
    }))
}

fn csv_field(out: &mut dyn Write, value: &str) -> io::Result<()> {
    if value.contains([',', '"', '\n', '\r']) {
        write!(out, "\"{}\"", value.replace('"', "\"\""))
    } else {
        out.write_all(value.as_bytes())
    }
}

/// A hash as STIX writes it: TLSH is the 70 digits without the `t1` version prefix Rampart's
/// canonical form keeps; every other hash as it is.
fn stix_hash_value(ioc: &Ioc) -> &str {
    match ioc.kind {
        IocKind::Tlsh => ioc.value.strip_prefix("t1").unwrap_or(&ioc.value),
        _ => &ioc.value,
    }
}

/// The STIX SCO type and deterministic id of an indicator, for kinds that have one.
pub fn stix_observable(ioc: &Ioc) -> Option<(serde_json::Value, String)> {
    let (sco_type, contributing, object) = match ioc.kind {
        IocKind::Ipv4 | IocKind::Ipv6 | IocKind::Cidr => {
            let t = if ioc.value.contains(':') {
                "ipv6-addr"
            } else {
                "ipv4-addr"
            };
            (t, json!({"value": ioc.value}), json!({"value": ioc.value}))
        }
        IocKind::Domain => (
            "domain-name",
            json!({"value": ioc.value}),
            json!({"value": ioc.value}),
        ),
        IocKind::Url => (
            "url",
            json!({"value": ioc.value}),
            json!({"value": ioc.value}),
        ),
        IocKind::Email => (
            "email-addr",
            json!({"value": ioc.value}),
            json!({"value": ioc.value}),
        ),
        IocKind::Md5
        | IocKind::Sha1
        | IocKind::Sha256
        | IocKind::Sha512
        | IocKind::Ssdeep
        | IocKind::Tlsh => {
            let key = match ioc.kind {
                IocKind::Md5 => "MD5",
                IocKind::Sha1 => "SHA-1",
                IocKind::Sha256 => "SHA-256",
                IocKind::Sha512 => "SHA-512",
                IocKind::Ssdeep => "SSDEEP",
                _ => "TLSH",
            };
            let hashes = json!({"hashes": {key: stix_hash_value(ioc)}});
            ("file", hashes.clone(), hashes)
        }
        IocKind::Asn => {
            let n: u64 = ioc.value.trim_start_matches("AS").parse().ok()?;
            (
                "autonomous-system",
                json!({"number": n}),
                json!({"number": n}),
            )
        }
        _ => return None,
    };
    // The id hashes the canonical JSON of the id-contributing properties (sorted keys, no
    // spaces), as cti-python-stix2 does.
    let id = format!(
        "{sco_type}--{}",
        Uuid::new_v5(&STIX_SCO_NAMESPACE, contributing.to_string().as_bytes())
    );
    let mut obj = json!({"type": sco_type, "spec_version": "2.1", "id": id});
    if let (Some(o), Some(extra)) = (obj.as_object_mut(), object.as_object()) {
        for (k, v) in extra {
            o.insert(k.clone(), v.clone());
        }
    }
    Some((obj, id))
}

/// The STIX pattern for an indicator.
pub fn stix_pattern(ioc: &Ioc) -> Option<String> {
    let quote = |v: &str| v.replace('\\', "\\\\").replace('\'', "\\'");
    let v = quote(&ioc.value);
    Some(match ioc.kind {
        IocKind::Ipv4 => format!("[ipv4-addr:value = '{v}']"),
        IocKind::Ipv6 => format!("[ipv6-addr:value = '{v}']"),
        IocKind::Cidr if ioc.value.contains(':') => format!("[ipv6-addr:value = '{v}']"),
        IocKind::Cidr => format!("[ipv4-addr:value = '{v}']"),
        IocKind::Domain => format!("[domain-name:value = '{v}']"),
        IocKind::Url => format!("[url:value = '{v}']"),
        IocKind::Email => format!("[email-addr:value = '{v}']"),
        IocKind::Md5 => format!("[file:hashes.MD5 = '{v}']"),
        IocKind::Sha1 => format!("[file:hashes.'SHA-1' = '{v}']"),
        IocKind::Sha256 => format!("[file:hashes.'SHA-256' = '{v}']"),
        IocKind::Sha512 => format!("[file:hashes.'SHA-512' = '{v}']"),
        IocKind::Ssdeep => format!("[file:hashes.SSDEEP = '{v}']"),
        IocKind::Tlsh => format!("[file:hashes.TLSH = '{}']", stix_hash_value(ioc)),
        IocKind::Other => format!("[x-rampart-other:value = '{v}']"),
        IocKind::X509Sha1 => format!("[x509-certificate:hashes.'SHA-1' = '{v}']"),
        IocKind::Imphash => format!("[file:extensions.'windows-pebinary-ext'.imphash = '{v}']"),
        IocKind::Filename => format!("[file:name = '{v}']"),
        IocKind::Mutex => format!("[mutex:name = '{v}']"),
        IocKind::Asn => format!(
            "[autonomous-system:number = {}]",
            ioc.value.trim_start_matches("AS")
        ),
        IocKind::IpPort => {
            let (addr, port) = canon::split_ip_port(&ioc.value).ok()?;
            let t = if addr.is_ipv4() {
                "ipv4-addr"
            } else {
                "ipv6-addr"
            };
            format!(
                "[network-traffic:dst_ref.type = '{t}' AND network-traffic:dst_ref.value = '{addr}' AND network-traffic:dst_port = {port}]"
            )
        }
        IocKind::StixPattern => ioc.value.clone(),
        _ => return None,
    })
}

/// The STIX objects of one indicator: an indicator with its observable and `based-on`
/// relationship, or for a CVE a `vulnerability`.
pub fn stix_objects(e: &Exported) -> Vec<serde_json::Value> {
    if e.ioc.kind == IocKind::Cve {
        let key = format!("cve\0{}", e.ioc.value);
        let id = format!(
            "vulnerability--{}",
            Uuid::new_v5(&RAMPART_NAMESPACE, key.as_bytes())
        );
        return vec![marked(
            json!({
                "type": "vulnerability",
                "spec_version": "2.1",
                "id": id,
                "created": stix_timestamp(e.first_seen),
                "modified": stix_modified(e),
                "name": e.ioc.value,
                "description": format!("{} exploited in the wild ({})", e.ioc.value, describe_sources(e)),
                "external_references": [{"source_name": "cve", "external_id": e.ioc.value}],
            }),
            e.tlp,
        )];
    }
    let Some(pattern) = stix_pattern(&e.ioc) else {
        return Vec::new();
    };
    let key = format!("{}\0{}", e.ioc.kind, e.ioc.value);
    let indicator_id = format!(
        "indicator--{}",
        Uuid::new_v5(&RAMPART_NAMESPACE, key.as_bytes())
    );
    let mut labels = Vec::new();
    if let Some(t) = &e.threat_type {
        labels.push(t.clone());
    }
    let mut indicator = json!({
        "type": "indicator",
        "spec_version": "2.1",
        "id": indicator_id,
        "created": stix_timestamp(e.first_seen),
        "modified": stix_modified(e),
        "name": format!("{} {}", e.ioc.kind, e.ioc.value),
        "indicator_types": ["malicious-activity"],
        "pattern": pattern,
        "pattern_type": "stix",
        "pattern_version": "2.1",
        "valid_from": stix_timestamp(e.first_seen),
        "confidence": e.score,
    });
    if let Some(o) = indicator.as_object_mut() {
        if !labels.is_empty() {
            o.insert("labels".into(), json!(labels));
        }
        o.insert("description".into(), json!(describe(e)));
        if !e.attack.is_empty() {
            let refs: Vec<serde_json::Value> = e
                .attack
                .iter()
                .map(|t| {
                    json!({
                        "source_name": "mitre-attack",
                        "external_id": t,
                        "url": format!("https://attack.mitre.org/techniques/{}/", t.replace('.', "/")),
                    })
                })
                .collect();
            o.insert("external_references".into(), json!(refs));
        }
    }
    let mut out = vec![indicator];
    if let Some((sco, sco_id)) = stix_observable(&e.ioc) {
        let rel_id = format!(
            "relationship--{}",
            Uuid::new_v5(
                &RAMPART_NAMESPACE,
                format!("{indicator_id} based-on {sco_id}").as_bytes()
            )
        );
        out.push(sco);
        out.push(json!({
            "type": "relationship",
            "spec_version": "2.1",
            "id": rel_id,
            "created": stix_timestamp(e.first_seen),
            "modified": stix_modified(e),
            "relationship_type": "based-on",
            "source_ref": indicator_id,
            "target_ref": sco_id,
        }));
    }
    out.into_iter().map(|o| marked(o, e.tlp)).collect()
}

/// A sentence an analyst reads in a TIP: threat type, family, the feeds and the score.
fn describe(e: &Exported) -> String {
    let mut text = format!("{} {}", e.ioc.kind, e.ioc.value);
    if let Some(t) = &e.threat_type {
        text.push_str(&format!(", threat type {t}"));
    }
    if let Some(f) = &e.family {
        text.push_str(&format!(", malware family {f}"));
    }
    text.push_str(&format!(
        "; {}; Rampart score {}",
        describe_sources(e),
        e.score
    ));
    text
}

fn describe_sources(e: &Exported) -> String {
    match e.feeds.len() {
        0 => "reported to Rampart directly".to_owned(),
        1 => format!("reported by the feed {}", e.feeds[0]),
        n => format!("reported by {n} feeds: {}", e.feeds.join(", ")),
    }
}

/// Adds the TLP marking of the indicator's feeds to an object.
fn marked(mut object: serde_json::Value, tlp: Option<&str>) -> serde_json::Value {
    if let (Some(id), Some(o)) = (tlp.and_then(tlp_marking_id), object.as_object_mut()) {
        o.insert("object_marking_refs".into(), json!([id]));
    }
    object
}

/// What was left out before formatting, so that the formats with a header can say so.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Excluded {
    /// Covered by an allowlist.
    pub allowlisted: u64,
    /// Scored below `min_score`.
    pub below_min_score: u64,
    /// The minimum score asked for.
    pub min_score: u8,
}

/// What an export wrote and left out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExportSummary {
    /// Indicators written (each as one line, one object group or one or more rules).
    pub written: u64,
    /// Indicators left out before formatting (allowlist, minimum score).
    pub excluded: Excluded,
    /// Indicators the format could not express, by reason.
    pub left_out: BTreeMap<String, u64>,
}

impl ExportSummary {
    /// Every left-out count, allowlist and minimum score included, as lines a person reads.
    pub fn left_out_lines(&self) -> Vec<String> {
        let mut lines = Vec::new();
        if self.excluded.allowlisted > 0 {
            lines.push(format!("{} allowlisted", self.excluded.allowlisted));
        }
        if self.excluded.below_min_score > 0 {
            lines.push(format!(
                "{} scoring below {}",
                self.excluded.below_min_score, self.excluded.min_score
            ));
        }
        for (why, n) in &self.left_out {
            lines.push(format!("{n} {why}"));
        }
        lines
    }
}

/// Why a line-per-value format skipped an indicator.
fn no_form(kind: IocKind, format: &str) -> String {
    format!("{kind} (no {format} form)")
}

/// Writes `items` in `format`, with the format's header (which names what was left out where
/// the format has comments), and says what was written and left out.
pub fn write_export(
    format: ExportFormat,
    items: &[Exported],
    excluded: Excluded,
    generated: i64,
    out: &mut dyn Write,
) -> io::Result<ExportSummary> {
    let mut summary = ExportSummary {
        excluded,
        ..ExportSummary::default()
    };
    let leave_out = |summary: &mut ExportSummary, why: String| {
        *summary.left_out.entry(why).or_insert(0) += 1;
    };
    match format {
        ExportFormat::Suricata => {
            let rules = suricata::RuleSet::new(items);
            let mut body = String::new();
            let mut count = 0u64;
            for e in items {
                match rules.rules(e) {
                    Ok(lines) => {
                        summary.written += 1;
                        for line in lines {
                            count += 1;
                            body.push_str(&line);
                            body.push('\n');
                        }
                    }
                    Err(why) => leave_out(&mut summary, why.describe()),
                }
            }
            let mut head = String::new();
            suricata::header(
                &mut head,
                &timestamp(generated),
                summary.written,
                count,
                &summary.left_out_lines(),
            );
            out.write_all(head.as_bytes())?;
            out.write_all(body.as_bytes())?;
        }
        ExportFormat::Stix => {
            let bundle_id =
                Uuid::new_v5(&RAMPART_NAMESPACE, format!("bundle {generated}").as_bytes());
            write!(
                out,
                "{{\"type\":\"bundle\",\"id\":\"bundle--{bundle_id}\",\"objects\":["
            )?;
            let mut first = true;
            let mut tlps = std::collections::BTreeSet::new();
            for e in items {
                let objects = stix_objects(e);
                if objects.is_empty() {
                    leave_out(&mut summary, no_form(e.ioc.kind, "STIX"));
                    continue;
                }
                summary.written += 1;
                tlps.extend(e.tlp);
                for o in objects {
                    if !first {
                        out.write_all(b",")?;
                    }
                    first = false;
                    serde_json::to_writer(&mut *out, &o).map_err(io::Error::other)?;
                }
            }
            // The marking definitions the objects refer to, so the bundle stands alone.
            for marking in tlps.into_iter().filter_map(tlp_marking) {
                if !first {
                    out.write_all(b",")?;
                }
                first = false;
                serde_json::to_writer(&mut *out, &marking).map_err(io::Error::other)?;
            }
            writeln!(out, "]}}")?;
        }
        ExportFormat::Csv => {
            writeln!(
                out,
                "kind,value,score,first_seen,last_seen,threat_type,malware,attack,feeds,tlp,sources"
            )?;
            for e in items {
                write!(out, "{},", e.ioc.kind)?;
                csv_field(out, &e.ioc.value)?;
                write!(
                    out,
                    ",{},{},{},",
                    e.score,
                    timestamp(e.first_seen),
                    timestamp(e.last_seen)
                )?;
                csv_field(out, e.threat_type.as_deref().unwrap_or(""))?;
                out.write_all(b",")?;
                csv_field(out, e.family.as_deref().unwrap_or(""))?;
                out.write_all(b",")?;
                csv_field(out, &e.attack.join(";"))?;
                out.write_all(b",")?;
                csv_field(out, &e.feeds.join(";"))?;
                writeln!(out, ",{},{}", e.tlp.unwrap_or(""), e.feeds.len())?;
                summary.written += 1;
            }
        }
        ExportFormat::BlocklistIp
        | ExportFormat::BlocklistDomain
        | ExportFormat::Urls
        | ExportFormat::Hosts
        | ExportFormat::Rpz => {
            let mut body = Vec::new();
            for e in items {
                if line_format(format, e, &mut body)? {
                    summary.written += 1;
                } else {
                    let name = match format {
                        ExportFormat::Rpz => "RPZ",
                        ExportFormat::Hosts => "hosts-file",
                        _ => "blocklist",
                    };
                    leave_out(&mut summary, no_form(e.ioc.kind, name));
                }
            }
            let comment = if format == ExportFormat::Rpz {
                ";"
            } else {
                "#"
            };
            writeln!(
                out,
                "{comment} Rampart threat-intel export, {}: {} indicators",
                timestamp(generated),
                summary.written
            )?;
            for line in summary.left_out_lines() {
                writeln!(out, "{comment} left out: {line}")?;
            }
            if format == ExportFormat::Rpz {
                writeln!(out, "$TTL 300")?;
                writeln!(
                    out,
                    "@ IN SOA localhost. hostmaster.localhost. ({generated} 3600 600 86400 300)"
                )?;
                writeln!(out, "@ IN NS localhost.")?;
            }
            out.write_all(&body)?;
        }
    }
    out.flush()?;
    Ok(summary)
}

/// The owner name of an RPZ IP trigger, without `.rpz-ip`, in the canonical form BIND's
/// `ip2name` writes (it logs "is not the canonical" for any other): the prefix length, then
/// the address reversed; IPv4 by octets, IPv6 by 16-bit words in hex without leading zeros,
/// with `zz` for the longest run of two or more zero words (the run RFC 5952 writes as `::`).
/// BIND refuses a prefix length of 0, so a `/0` network has no trigger.
fn rpz_ip(value: &str) -> Option<String> {
    let (addr, prefix) = match value.split_once('/') {
        Some((a, p)) => (a, Some(p.parse::<u8>().ok().filter(|p| *p > 0)?)),
        None => (value, None),
    };
    match addr.parse::<std::net::IpAddr>().ok()? {
        std::net::IpAddr::V4(a) => {
            let o = a.octets();
            Some(format!(
                "{}.{}.{}.{}.{}",
                prefix.unwrap_or(32),
                o[3],
                o[2],
                o[1],
                o[0]
            ))
        }
        std::net::IpAddr::V6(a) => {
            let words = a.segments();
            // The longest run of two or more zero words, the leftmost on a tie (RFC 5952 4.2).
            let (mut best, mut run) = ((0usize, 0usize), (0usize, 0usize));
            for (i, w) in words.iter().enumerate() {
                if *w == 0 {
                    if run.1 == 0 {
                        run.0 = i;
                    }
                    run.1 += 1;
                    if run.1 > best.1 {
                        best = run;
                    }
                } else {
                    run.1 = 0;
                }
            }
            let mut labels: Vec<String> = Vec::with_capacity(9);
            let mut i = 0;
            while i < 8 {
                if best.1 >= 2 && i == best.0 {
                    labels.push("zz".to_owned());
                    i += best.1;
                } else {
                    labels.push(format!("{:x}", words[i]));
                    i += 1;
                }
            }
            labels.reverse();
            Some(format!("{}.{}", prefix.unwrap_or(128), labels.join(".")))
        }
    }
}

/// One line (or two, for RPZ domains) of the line-per-value formats; false when the format
/// cannot express the indicator.
fn line_format(format: ExportFormat, e: &Exported, out: &mut Vec<u8>) -> io::Result<bool> {
    let v = &e.ioc.value;
    Ok(match (format, e.ioc.kind) {
        (ExportFormat::BlocklistIp, IocKind::Ipv4 | IocKind::Ipv6 | IocKind::Cidr)
        | (ExportFormat::BlocklistDomain, IocKind::Domain)
        | (ExportFormat::Urls, IocKind::Url) => {
            writeln!(out, "{v}")?;
            true
        }
        (ExportFormat::Hosts, IocKind::Domain) => {
            writeln!(out, "0.0.0.0 {v}")?;
            true
        }
        (ExportFormat::Rpz, IocKind::Domain) => {
            writeln!(out, "{v} CNAME .")?;
            writeln!(out, "*.{v} CNAME .")?;
            true
        }
        (ExportFormat::Rpz, IocKind::Ipv4 | IocKind::Ipv6 | IocKind::Cidr) => match rpz_ip(v) {
            Some(trigger) => {
                writeln!(out, "{trigger}.rpz-ip CNAME .")?;
                true
            }
            None => false,
        },
        _ => false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(kind: IocKind, value: &str) -> Exported {
        Exported {
            id: 1,
            ioc: Ioc::new(kind, value),
            score: 80,
            first_seen: 1_772_105_424,
            last_seen: 1_772_105_424,
            threat_type: Some("botnet_cc".into()),
            family: Some("win.cobalt_strike".into()),
            attack: Vec::new(),
            feeds: vec!["threatfox".into(), "urlhaus".into()],
            tlp: Some("amber"),
            version: 1_772_105_424_123_456,
        }
    }

    fn export(format: ExportFormat, items: &[Exported]) -> String {
        let mut buf = Vec::new();
        let items: Vec<Exported> = items
            .iter()
            .enumerate()
            .map(|(i, e)| Exported {
                id: i as u64,
                ..e.clone()
            })
            .collect();
        write_export(format, &items, Excluded::default(), 1_772_105_424, &mut buf)
            .unwrap_or_else(|e| panic!("{e}"));
        String::from_utf8(buf).unwrap_or_default()
    }

    /// The lines that are not comments.
    fn body(text: &str) -> Vec<&str> {
        text.lines().filter(|l| !l.starts_with('#')).collect()
    }

    fn mix() -> Vec<Exported> {
        vec![
            e(IocKind::Ipv4, "1.2.3.4"),
            e(IocKind::Cidr, "10.0.0.0/8"),
            e(IocKind::Domain, "evil.example"),
            e(IocKind::Url, "http://evil.example/a;b\"c"),
            e(IocKind::Url, "https://x.example/login"),
            e(IocKind::IpPort, "5.6.7.8:443"),
            e(IocKind::Sha256, &"ab".repeat(32)),
        ]
    }

    #[test]
    fn blocklists_take_only_their_kinds() {
        let ip = export(ExportFormat::BlocklistIp, &mix());
        assert_eq!(body(&ip), ["1.2.3.4", "10.0.0.0/8"]);
        let dom = export(ExportFormat::BlocklistDomain, &mix());
        assert_eq!(body(&dom), ["evil.example"]);
        let hosts = export(ExportFormat::Hosts, &mix());
        assert_eq!(body(&hosts), ["0.0.0.0 evil.example"]);
        let urls = export(ExportFormat::Urls, &mix());
        assert_eq!(body(&urls).len(), 2);
        // The header says what the format could not hold.
        assert!(
            ip.lines()
                .any(|l| l == "# left out: 1 sha256 (no blocklist form)"),
            "{ip}"
        );
    }

    #[test]
    fn rpz_zone() {
        let rpz = export(ExportFormat::Rpz, &mix());
        let body: Vec<&str> = rpz
            .lines()
            .skip_while(|l| *l != "@ IN NS localhost.")
            .skip(1)
            .collect();
        assert_eq!(
            body,
            [
                "32.4.3.2.1.rpz-ip CNAME .",
                "8.0.0.0.10.rpz-ip CNAME .",
                "evil.example CNAME .",
                "*.evil.example CNAME ."
            ]
        );
    }

    #[test]
    fn suricata_rules_and_their_header() {
        let rules = export(ExportFormat::Suricata, &mix());
        let lines: Vec<&str> = rules.lines().collect();
        assert_eq!(
            lines[..5],
            [
                "# Rampart threat-intel rules for Suricata 7, generated 2026-02-26T11:30:24Z",
                "# 5 indicators as 8 rules; sid = 3000000000 + 4 x indicator id + rule number (0-3); see docs/intel.md",
                "# left out: 1 https URLs with a path (TLS hides the path; a rule on the host would match every other path on it, and the host is not listed)",
                "# left out: 1 sha256 (no Suricata keyword matches this kind)",
                "alert ip $HOME_NET any -> [1.2.3.4] any (msg:\"Rampart intel ipv4 1.2.3.4 botnet_cc win.cobalt_strike\"; threshold:type limit, track by_src, count 1, seconds 3600; classtype:command-and-control; metadata:rampart_kind ipv4, rampart_score 80; sid:3000000000; rev:1;)",
            ],
            "{rules}"
        );
        let body: Vec<&str> = lines[4..].to_vec();
        assert_eq!(body.len(), 8, "{rules}");
        assert!(body[1].contains("-> [10.0.0.0/8] any ("), "{}", body[1]);
        // A domain: DNS, TLS SNI and HTTP host, each on a label boundary; sids 4 x 2 + 0..2.
        assert!(
            body[2].starts_with("alert dns $HOME_NET any -> any any (")
                && body[2]
                    .contains("dns.query; dotprefix; content:\".evil.example\"; nocase; endswith;")
                && body[2].contains("sid:3000000008;"),
            "{}",
            body[2]
        );
        assert!(
            body[3].contains("tls.sni; dotprefix; content:\".evil.example\"; nocase; endswith;")
                && body[3].contains("sid:3000000009;"),
            "{}",
            body[3]
        );
        assert!(
            body[4].contains("http.host; dotprefix; content:\".evil.example\"; endswith;")
                && !body[4].contains("nocase")
                && body[4].contains("sid:3000000010;"),
            "{}",
            body[4]
        );
        // A URL: exact host, exact target, special bytes as hex, msg made safe.
        assert_eq!(
            body[5],
            "alert http $HOME_NET any -> any any (msg:\"Rampart intel url http://evil.example/a_b_c botnet_cc win.cobalt_strike\"; http.host; content:\"evil.example\"; startswith; endswith; http.uri; content:\"/a|3B|b|22|c\"; startswith; endswith; classtype:command-and-control; metadata:rampart_kind url, rampart_score 80; sid:3000000012; rev:1;)"
        );
        // An address and port: TCP and UDP to exactly that port.
        assert!(body[6].starts_with("alert tcp $HOME_NET any -> [5.6.7.8] 443 ("));
        assert!(body[7].starts_with("alert udp $HOME_NET any -> [5.6.7.8] 443 ("));
        assert!(body[7].contains("sid:3000000021;"));
    }

    #[test]
    fn suricata_https_url_with_a_listed_host_is_covered_not_lost() {
        let items = [
            e(IocKind::Url, "https://share.example/payload.exe"),
            e(IocKind::Domain, "share.example"),
            e(IocKind::Url, "https://cdn.share.example/x"),
            e(IocKind::Url, "https://c2.example/"),
            e(IocKind::Url, "https://203.0.113.5/gate"),
            e(IocKind::Cidr, "203.0.113.0/24"),
            e(IocKind::Url, "https://198.51.100.1:8443/"),
            e(IocKind::Url, "ftp://files.example/x"),
        ];
        let rules = export(ExportFormat::Suricata, &items);
        assert!(
            rules.contains("# left out: 3 https URLs with a path whose host is listed"),
            "{rules}"
        );
        assert!(
            rules.contains("# left out: 1 URLs of a scheme other than http and https"),
            "{rules}"
        );
        assert!(!rules.contains("TLS hides the path"), "{rules}");
        assert!(
            rules.contains("tls.sni; content:\"c2.example\"; nocase; startswith; endswith;"),
            "{rules}"
        );
        assert!(
            rules.contains("alert tcp $HOME_NET any -> [198.51.100.1] 8443 ("),
            "{rules}"
        );
        assert!(!rules.contains("payload.exe"), "{rules}");
    }

    #[test]
    fn suricata_tls_fingerprints_and_ja3() {
        let items = [
            e(
                IocKind::X509Sha1,
                "AABBCCDDEEFF00112233445566778899AABBCCDD",
            ),
            e(IocKind::Ja3, "e7d705a3286e19ea42f587b344ee6865"),
        ];
        let rules = export(ExportFormat::Suricata, &items);
        assert!(
            rules.contains("alert tls $EXTERNAL_NET any -> $HOME_NET any (msg:"),
            "{rules}"
        );
        assert!(rules.contains("tls.cert_fingerprint; content:\"aa:bb:cc:dd:ee:ff:00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd\";"), "{rules}");
        assert!(
            rules.contains("ja3.hash; content:\"e7d705a3286e19ea42f587b344ee6865\";"),
            "{rules}"
        );
    }

    #[test]
    fn rpz_ipv6_triggers_in_binds_canonical_form() {
        // Worked by hand from BIND's ip2name (lib/dns/rpz.c): words from the last, `zz` for the
        // longest zero run, the leftmost of the address on a tie.
        assert_eq!(rpz_ip("2001:2:3::1").as_deref(), Some("128.1.zz.3.2.2001"));
        assert_eq!(rpz_ip("2001:2::/48").as_deref(), Some("48.zz.2.2001"));
        assert_eq!(
            rpz_ip("2001:db8:1:2:3:4:5:6").as_deref(),
            Some("128.6.5.4.3.2.1.db8.2001")
        );
        assert_eq!(
            rpz_ip("2001:db8:0:1:0:0:0:1").as_deref(),
            Some("128.1.zz.1.0.db8.2001"),
            "a single zero word stays a word; the longer run is zz"
        );
        assert_eq!(
            rpz_ip("2001:db8:0:0:1:0:0:1").as_deref(),
            Some("128.1.0.0.1.zz.db8.2001"),
            "equal runs: the leftmost of the address is zz"
        );
        assert_eq!(rpz_ip("::/0"), None, "BIND refuses prefix length 0");
        assert_eq!(rpz_ip("0.0.0.0/0"), None);
        assert_eq!(rpz_ip("1.2.3.4").as_deref(), Some("32.4.3.2.1"));
        assert_eq!(rpz_ip("10.0.0.0/8").as_deref(), Some("8.0.0.0.10"));
    }

    #[test]
    fn the_strictest_tlp_wins() {
        assert_eq!(strictest_tlp(["clear", "amber", "green"]), Some("amber"));
        assert_eq!(
            strictest_tlp(["AMBER+STRICT", "amber"]),
            Some("amber+strict")
        );
        assert_eq!(
            strictest_tlp(["green", "purple"]),
            Some("red"),
            "unknown: strictest"
        );
        assert_eq!(strictest_tlp([]), None);
    }

    #[test]
    fn csv_quotes_fields() {
        let csv = export(ExportFormat::Csv, &mix());
        let line = csv.lines().nth(4).unwrap_or_default();
        assert_eq!(
            line,
            "url,\"http://evil.example/a;b\"\"c\",80,2026-02-26T11:30:24Z,2026-02-26T11:30:24Z,botnet_cc,win.cobalt_strike,,threatfox;urlhaus,amber,2"
        );
    }

    #[test]
    fn attack_techniques_travel_in_csv_and_stix() {
        let mut item = e(IocKind::Domain, "evil.example");
        item.attack = vec!["T1071.001".into(), "T1105".into()];
        let csv = export(ExportFormat::Csv, std::slice::from_ref(&item));
        assert!(
            csv.lines()
                .nth(1)
                .unwrap_or_default()
                .ends_with(",T1071.001;T1105,threatfox;urlhaus,amber,2"),
            "{csv}"
        );
        let stix = export(ExportFormat::Stix, &[item]);
        let bundle: serde_json::Value =
            serde_json::from_str(&stix).unwrap_or_else(|e| panic!("{e}"));
        let objects = bundle["objects"].as_array().cloned().unwrap_or_default();
        let indicator = objects
            .iter()
            .find(|o| o["type"] == "indicator")
            .cloned()
            .unwrap_or_default();
        assert_eq!(
            indicator["external_references"],
            json!([
                {"source_name": "mitre-attack", "external_id": "T1071.001", "url": "https://attack.mitre.org/techniques/T1071/001/"},
                {"source_name": "mitre-attack", "external_id": "T1105", "url": "https://attack.mitre.org/techniques/T1105/"}
            ])
        );
    }

    #[test]
    fn stix_bundle_with_deterministic_ids() {
        let a = export(ExportFormat::Stix, &mix());
        let b = export(ExportFormat::Stix, &mix());
        assert_eq!(a, b);
        let bundle: serde_json::Value = serde_json::from_str(&a).unwrap_or_else(|e| panic!("{e}"));
        let objects = bundle["objects"].as_array().cloned().unwrap_or_default();
        // Every pattern parses with Rampart's own STIX parser and reduces to the value.
        for o in objects.iter().filter(|o| o["type"] == "indicator") {
            let pattern = o["pattern"].as_str().unwrap_or_default();
            crate::stix_pattern::parse(pattern).unwrap_or_else(|e| panic!("{pattern}: {e}"));
        }
        // SCO ids are the ones cti-python-stix2 computes (values printed by
        // `IPv4Address(value='1.2.3.4').id` and `File(hashes={'SHA-256': 'ab' * 32}).id`, stix2 3.x).
        let ip = objects
            .iter()
            .find(|o| o["type"] == "ipv4-addr")
            .cloned()
            .unwrap_or_default();
        assert_eq!(ip["id"], "ipv4-addr--0198f97b-e65d-5025-87e5-58bc39d4bdb4");
        let file = objects
            .iter()
            .find(|o| o["type"] == "file")
            .cloned()
            .unwrap_or_default();
        assert_eq!(file["id"], "file--20432b06-75d2-54b6-80ef-6d923b5d925d");
        assert_eq!(
            objects.iter().filter(|o| o["type"] == "indicator").count(),
            7
        );
        assert_eq!(
            objects
                .iter()
                .filter(|o| o["type"] == "relationship")
                .count(),
            6,
            "ip:port has no single SCO"
        );
    }
}
