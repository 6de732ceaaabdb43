//! Exports in the formats firewalls, resolvers, IDS and SIEMs already read.
//!
//! Each format takes the indicator kinds it can express and skips the rest (a domain has no
//! place in an IP blocklist). Output is streamed line by line; the STIX bundle's ids are
//! deterministic (the same indicator always gets the same ids), so consumers can deduplicate
//! across exports.

use std::io::{self, Write};
use std::str::FromStr;

use serde_json::json;
use uuid::Uuid;

use rampart_store::{IntelExportRow, Store};

use crate::allowlist::Allowlists;
use crate::canon::{self, Ioc};
use crate::kind::IocKind;
use crate::score;

/// One indicator to export.
#[derive(Debug, Clone, PartialEq)]
pub struct Exported {
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

/// Why an export stopped.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The store could not be read.
    #[error(transparent)]
    Store(#[from] rampart_store::StoreError),
    /// The output could not be written.
    #[error("cannot write the export: {0}")]
    Io(#[from] io::Error),
}

/// A stored row as exporters see it, with its current score.
pub fn from_row(row: IntelExportRow, at: i64) -> Option<Exported> {
    let i = &row.indicator;
    let kind = IocKind::from_stored(i.kind)?;
    let score = score::current(
        &score::Facts::from_row(i),
        at,
        &score::DecayModel::default(),
    );
    Some(Exported {
        ioc: Ioc::new(kind, i.value.clone()),
        score,
        first_seen: row.first_seen,
        last_seen: i.last_seen,
        threat_type: row.threat_type,
        family: row.family,
        attack: row.attack,
    })
}

/// Exports every live indicator scoring at least `min_score` and not covered by `allow`;
/// returns (written, allowlisted left out). Rows are read in batches, so the store is never
/// held for the length of the write.
pub async fn export_all(
    store: &Store,
    allow: &Allowlists,
    format: ExportFormat,
    min_score: u8,
    at: i64,
    out: &mut (dyn Write + Send),
) -> Result<(u64, u64), ExportError> {
    let mut rows = Vec::new();
    store
        .intel_export_rows(at, 50_000, &mut |row| rows.push(row))
        .await?;
    let mut skipped = 0u64;
    let mut exporter = Exporter::new(format, out, at)?;
    for row in rows {
        let id = u64::try_from(row.indicator.id).unwrap_or(0);
        let Some(item) = from_row(row, at) else {
            continue;
        };
        if item.score < min_score {
            continue;
        }
        if allow.check(&item.ioc).is_some() {
            skipped += 1;
            continue;
        }
        exporter.write(&item, SURICATA_SID_BASE + id)?;
    }
    Ok((exporter.finish()?, skipped))
}

/// Starts Suricata rule ids here (the 9,000,000 block is for local rules).
pub const SURICATA_SID_BASE: u64 = 9_100_000;

fn timestamp(secs: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".to_owned())
}

fn csv_field(out: &mut dyn Write, value: &str) -> io::Result<()> {
    if value.contains([',', '"', '\n', '\r']) {
        write!(out, "\"{}\"", value.replace('"', "\"\""))
    } else {
        out.write_all(value.as_bytes())
    }
}

/// Escapes a Suricata `content` / `msg` string (`"`, `;`, `\` are special).
fn suricata_escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '"' => out.push_str("|22|"),
            ';' => out.push_str("|3B|"),
            '\\' => out.push_str("|5C|"),
            c => out.push(c),
        }
    }
    out
}

fn msg_escape(value: &str) -> String {
    value.replace(['"', ';', '\\'], "_")
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
            let hashes = json!({"hashes": {key: ioc.value}});
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
        IocKind::Tlsh => format!("[file:hashes.TLSH = '{v}']"),
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
        return vec![json!({
            "type": "vulnerability",
            "spec_version": "2.1",
            "id": id,
            "created": timestamp(e.first_seen),
            "modified": timestamp(e.last_seen.max(e.first_seen)),
            "name": e.ioc.value,
            "external_references": [{"source_name": "cve", "external_id": e.ioc.value}],
        })];
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
        "created": timestamp(e.first_seen),
        "modified": timestamp(e.last_seen.max(e.first_seen)),
        "name": format!("{} {}", e.ioc.kind, e.ioc.value),
        "indicator_types": ["malicious-activity"],
        "pattern": pattern,
        "pattern_type": "stix",
        "pattern_version": "2.1",
        "valid_from": timestamp(e.first_seen),
        "confidence": e.score,
    });
    if let Some(o) = indicator.as_object_mut() {
        if !labels.is_empty() {
            o.insert("labels".into(), json!(labels));
        }
        if let Some(f) = &e.family {
            o.insert("description".into(), json!(format!("malware family: {f}")));
        }
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
            "created": timestamp(e.first_seen),
            "modified": timestamp(e.first_seen),
            "relationship_type": "based-on",
            "source_ref": indicator_id,
            "target_ref": sco_id,
        }));
    }
    out
}

/// Writes exports, one indicator at a time.
pub struct Exporter<'w> {
    format: ExportFormat,
    out: &'w mut dyn Write,
    count: u64,
    first: bool,
}

impl<'w> Exporter<'w> {
    /// Starts an export (writes any header). `generated` is the Unix time stamped into headers.
    pub fn new(
        format: ExportFormat,
        out: &'w mut dyn Write,
        generated: i64,
    ) -> io::Result<Exporter<'w>> {
        match format {
            ExportFormat::Csv => writeln!(
                out,
                "kind,value,score,first_seen,last_seen,threat_type,malware,attack"
            )?,
            ExportFormat::BlocklistIp
            | ExportFormat::BlocklistDomain
            | ExportFormat::Urls
            | ExportFormat::Hosts => {
                writeln!(
                    out,
                    "# Rampart threat-intel export, {}",
                    timestamp(generated)
                )?;
            }
            ExportFormat::Rpz => {
                writeln!(
                    out,
                    "; Rampart threat-intel response policy zone, {}",
                    timestamp(generated)
                )?;
                writeln!(out, "$TTL 300")?;
                writeln!(
                    out,
                    "@ IN SOA localhost. hostmaster.localhost. ({generated} 3600 600 86400 300)"
                )?;
                writeln!(out, "@ IN NS localhost.")?;
            }
            ExportFormat::Suricata => writeln!(
                out,
                "# Rampart threat-intel rules, {}",
                timestamp(generated)
            )?,
            ExportFormat::Stix => {
                let bundle_id =
                    Uuid::new_v5(&RAMPART_NAMESPACE, format!("bundle {generated}").as_bytes());
                write!(
                    out,
                    "{{\"type\":\"bundle\",\"id\":\"bundle--{bundle_id}\",\"objects\":["
                )?;
            }
        }
        Ok(Exporter {
            format,
            out,
            count: 0,
            first: true,
        })
    }

    /// Writes one indicator if the format can express it; returns whether it did.
    pub fn write(&mut self, e: &Exported, sid: u64) -> io::Result<bool> {
        let v = &e.ioc.value;
        let kind = e.ioc.kind;
        let written = match self.format {
            ExportFormat::Csv => {
                write!(self.out, "{kind},")?;
                csv_field(self.out, v)?;
                write!(
                    self.out,
                    ",{},{},{},",
                    e.score,
                    timestamp(e.first_seen),
                    timestamp(e.last_seen)
                )?;
                csv_field(self.out, e.threat_type.as_deref().unwrap_or(""))?;
                self.out.write_all(b",")?;
                csv_field(self.out, e.family.as_deref().unwrap_or(""))?;
                self.out.write_all(b",")?;
                csv_field(self.out, &e.attack.join(";"))?;
                self.out.write_all(b"\n")?;
                true
            }
            ExportFormat::BlocklistIp => match kind {
                IocKind::Ipv4 | IocKind::Ipv6 | IocKind::Cidr => {
                    writeln!(self.out, "{v}")?;
                    true
                }
                _ => false,
            },
            ExportFormat::BlocklistDomain | ExportFormat::Hosts => match kind {
                IocKind::Domain if self.format == ExportFormat::Hosts => {
                    writeln!(self.out, "0.0.0.0 {v}")?;
                    true
                }
                IocKind::Domain => {
                    writeln!(self.out, "{v}")?;
                    true
                }
                _ => false,
            },
            ExportFormat::Urls => match kind {
                IocKind::Url => {
                    writeln!(self.out, "{v}")?;
                    true
                }
                _ => false,
            },
            ExportFormat::Rpz => match kind {
                IocKind::Domain => {
                    writeln!(self.out, "{v} CNAME .")?;
                    writeln!(self.out, "*.{v} CNAME .")?;
                    true
                }
                IocKind::Ipv4 | IocKind::Cidr if !v.contains(':') => {
                    // RPZ IP triggers: prefix length, then the octets reversed.
                    let (addr, prefix) = v.split_once('/').unwrap_or((v.as_str(), "32"));
                    let reversed: Vec<&str> = addr.split('.').rev().collect();
                    writeln!(self.out, "{prefix}.{}.rpz-ip CNAME .", reversed.join("."))?;
                    true
                }
                _ => false,
            },
            ExportFormat::Suricata => {
                let label = format!(
                    "Rampart intel {kind} {}{}{}",
                    msg_escape(v),
                    e.threat_type
                        .as_deref()
                        .map(|t| format!(" {}", msg_escape(t)))
                        .unwrap_or_default(),
                    e.family
                        .as_deref()
                        .map(|f| format!(" {}", msg_escape(f)))
                        .unwrap_or_default()
                );
                let meta = format!("metadata:rampart_score {};", e.score);
                match kind {
                    IocKind::Ipv4 | IocKind::Ipv6 | IocKind::Cidr => {
                        writeln!(
                            self.out,
                            "alert ip $HOME_NET any -> [{v}] any (msg:\"{label}\"; {meta} sid:{sid}; rev:1;)"
                        )?;
                        true
                    }
                    IocKind::IpPort => match canon::split_ip_port(v) {
                        Ok((addr, port)) => {
                            writeln!(
                                self.out,
                                "alert ip $HOME_NET any -> [{addr}] {port} (msg:\"{label}\"; {meta} sid:{sid}; rev:1;)"
                            )?;
                            true
                        }
                        Err(_) => false,
                    },
                    IocKind::Domain => {
                        writeln!(
                            self.out,
                            "alert dns $HOME_NET any -> any any (msg:\"{label}\"; dns.query; dotprefix; content:\".{}\"; nocase; endswith; {meta} sid:{sid}; rev:1;)",
                            suricata_escape(v)
                        )?;
                        true
                    }
                    IocKind::Url => match canon::url_parts(v) {
                        Some(parts) if parts.scheme == "http" => {
                            let path_start = v.find("://").map_or(0, |i| i + 3);
                            let path = v[path_start..]
                                .find('/')
                                .map_or("/", |i| &v[path_start + i..]);
                            writeln!(
                                self.out,
                                "alert http $HOME_NET any -> any any (msg:\"{label}\"; http.host; content:\"{}\"; nocase; endswith; http.uri; content:\"{}\"; startswith; {meta} sid:{sid}; rev:1;)",
                                suricata_escape(parts.host),
                                suricata_escape(path)
                            )?;
                            true
                        }
                        Some(parts) if parts.scheme == "https" => {
                            // Only the host is visible in TLS (SNI).
                            writeln!(
                                self.out,
                                "alert tls $HOME_NET any -> any any (msg:\"{label}\"; tls.sni; content:\"{}\"; nocase; endswith; {meta} sid:{sid}; rev:1;)",
                                suricata_escape(parts.host)
                            )?;
                            true
                        }
                        _ => false,
                    },
                    _ => false,
                }
            }
            ExportFormat::Stix => {
                let objects = stix_objects(e);
                if objects.is_empty() {
                    false
                } else {
                    for o in objects {
                        if !self.first {
                            self.out.write_all(b",")?;
                        }
                        self.first = false;
                        serde_json::to_writer(&mut *self.out, &o).map_err(io::Error::other)?;
                    }
                    true
                }
            }
        };
        if written {
            self.count += 1;
        }
        Ok(written)
    }

    /// Finishes the export (closes the bundle) and returns how many indicators were written.
    pub fn finish(self) -> io::Result<u64> {
        if self.format == ExportFormat::Stix {
            writeln!(self.out, "]}}")?;
        }
        self.out.flush()?;
        Ok(self.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(kind: IocKind, value: &str) -> Exported {
        Exported {
            ioc: Ioc::new(kind, value),
            score: 80,
            first_seen: 1_772_105_424,
            last_seen: 1_772_105_424,
            threat_type: Some("botnet_cc".into()),
            family: Some("win.cobalt_strike".into()),
            attack: Vec::new(),
        }
    }

    fn export(format: ExportFormat, items: &[Exported]) -> String {
        let mut buf = Vec::new();
        let mut ex =
            Exporter::new(format, &mut buf, 1_772_105_424).unwrap_or_else(|e| panic!("{e}"));
        for (i, item) in items.iter().enumerate() {
            ex.write(item, SURICATA_SID_BASE + i as u64)
                .unwrap_or_else(|e| panic!("{e}"));
        }
        ex.finish().unwrap_or_else(|e| panic!("{e}"));
        String::from_utf8(buf).unwrap_or_default()
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
        assert_eq!(
            ip.lines().skip(1).collect::<Vec<_>>(),
            ["1.2.3.4", "10.0.0.0/8"]
        );
        let dom = export(ExportFormat::BlocklistDomain, &mix());
        assert_eq!(dom.lines().skip(1).collect::<Vec<_>>(), ["evil.example"]);
        let hosts = export(ExportFormat::Hosts, &mix());
        assert_eq!(
            hosts.lines().skip(1).collect::<Vec<_>>(),
            ["0.0.0.0 evil.example"]
        );
        let urls = export(ExportFormat::Urls, &mix());
        assert_eq!(urls.lines().count(), 3);
    }

    #[test]
    fn rpz_zone() {
        let rpz = export(ExportFormat::Rpz, &mix());
        let body: Vec<&str> = rpz.lines().skip(4).collect();
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
    fn suricata_rules_escape_content() {
        let rules = export(ExportFormat::Suricata, &mix());
        let lines: Vec<&str> = rules.lines().skip(1).collect();
        assert_eq!(lines.len(), 6, "{rules}");
        assert!(lines[0].starts_with("alert ip $HOME_NET any -> [1.2.3.4] any (msg:\"Rampart intel ipv4 1.2.3.4 botnet_cc win.cobalt_strike\";"));
        assert!(lines[0].ends_with("sid:9100000; rev:1;)"));
        assert!(
            lines[2].contains("dns.query; dotprefix; content:\".evil.example\"; nocase; endswith;")
        );
        assert!(
            lines[3].contains("http.uri; content:\"/a|3B|b|22|c\"; startswith;"),
            "{}",
            lines[3]
        );
        assert!(
            lines[3].contains("msg:\"Rampart intel url http://evil.example/a_b_c botnet_cc"),
            "{}",
            lines[3]
        );
        assert!(lines[4].contains("tls.sni; content:\"x.example\""));
        assert!(lines[5].contains("-> [5.6.7.8] 443 ("));
    }

    #[test]
    fn csv_quotes_fields() {
        let csv = export(ExportFormat::Csv, &mix());
        let line = csv.lines().nth(4).unwrap_or_default();
        assert_eq!(
            line,
            "url,\"http://evil.example/a;b\"\"c\",80,2026-02-26T11:30:24Z,2026-02-26T11:30:24Z,botnet_cc,win.cobalt_strike,"
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
                .ends_with(",T1071.001;T1105"),
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
