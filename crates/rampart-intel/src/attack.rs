//! MITRE ATT&CK: the names behind the ids feeds attach to indicators.
//!
//! Rampart ships no ATT&CK data (it changes twice a year and has its own terms); the user
//! imports the enterprise bundle they trust (`enterprise-attack.json` from
//! mitre-attack/attack-stix-data, STIX 2.1, or the legacy 2.0 files) and ids on indicators —
//! from STIX relationships, MISP galaxy tags, OTX `attack_ids`, feed tags — resolve to names and
//! tactics in lookups and exports.
//!
//! Per ATT&CK's data model: the id is the first `mitre-attack` external reference; revoked and
//! deprecated objects are skipped (ids are reused after revocation); a technique's tactics are
//! its `kill_chain_phases` (`mitre-attack` chain) whose names come from `x-mitre-tactic`
//! objects' `x_mitre_shortname`.

use std::collections::HashMap;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::parse::ParseError;

/// One ATT&CK object worth naming.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AttackEntry {
    /// `T1003`, `T1003.001`, `TA0006`, `G0009`, `S0090`, `M1026`, …
    pub id: String,
    /// `technique`, `tactic`, `group`, `software`, `mitigation`, `campaign`.
    pub kind: String,
    /// Its name (`OS Credential Dumping`).
    pub name: String,
    /// For techniques: the tactics' names (or short names when the bundle has no tactic objects).
    pub tactics: Vec<String>,
}

fn attack_kind(stix_type: &str) -> Option<&'static str> {
    Some(match stix_type {
        "attack-pattern" => "technique",
        "x-mitre-tactic" => "tactic",
        "intrusion-set" => "group",
        "malware" | "tool" => "software",
        "course-of-action" => "mitigation",
        "campaign" => "campaign",
        _ => return None,
    })
}

fn is_dead(o: &Map<String, Value>) -> bool {
    o.get("revoked").and_then(Value::as_bool) == Some(true)
        || o.get("x_mitre_deprecated").and_then(Value::as_bool) == Some(true)
}

/// Reads ATT&CK entries from a STIX bundle (2.0 or 2.1) or a single STIX object.
pub fn parse_bundle(bytes: &[u8]) -> Result<Vec<AttackEntry>, ParseError> {
    let top: Map<String, Value> =
        serde_json::from_slice(bytes).map_err(|e| ParseError::json(&e))?;
    let objects: Vec<&Map<String, Value>> = match top.get("objects") {
        Some(Value::Array(list)) => list.iter().filter_map(Value::as_object).collect(),
        _ if top.contains_key("type") => vec![&top],
        _ => {
            return Err(ParseError::Shape {
                format: crate::parse::Format::Stix,
                message: "neither a bundle with `objects` nor a STIX object".into(),
            });
        }
    };
    let tactic_names: HashMap<&str, &str> = objects
        .iter()
        .filter(|o| o.get("type").and_then(Value::as_str) == Some("x-mitre-tactic") && !is_dead(o))
        .filter_map(|o| {
            Some((
                o.get("x_mitre_shortname")?.as_str()?,
                o.get("name")?.as_str()?,
            ))
        })
        .collect();
    let mut out = Vec::new();
    for o in objects {
        let Some(kind) = o.get("type").and_then(Value::as_str).and_then(attack_kind) else {
            continue;
        };
        if is_dead(o) {
            continue;
        }
        let Some(id) = crate::parse::stix_attack_id(o) else {
            continue;
        };
        let Some(name) = o.get("name").and_then(Value::as_str) else {
            continue;
        };
        let tactics = o
            .get("kill_chain_phases")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_object)
            .filter(|p| {
                p.get("kill_chain_name")
                    .and_then(Value::as_str)
                    .is_some_and(|n| n.starts_with("mitre-"))
            })
            .filter_map(|p| p.get("phase_name").and_then(Value::as_str))
            .map(|short| tactic_names.get(short).copied().unwrap_or(short).to_owned())
            .collect();
        out.push(AttackEntry {
            id,
            kind: kind.to_owned(),
            name: name.to_owned(),
            tactics,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn techniques_tactics_and_the_dead() {
        let bundle = br#"{"type":"bundle","id":"bundle--1","objects":[
          {"type":"x-mitre-tactic","id":"x-mitre-tactic--1","name":"Credential Access","x_mitre_shortname":"credential-access",
           "external_references":[{"source_name":"mitre-attack","external_id":"TA0006"}]},
          {"type":"attack-pattern","id":"attack-pattern--1","name":"OS Credential Dumping",
           "kill_chain_phases":[{"kill_chain_name":"mitre-attack","phase_name":"credential-access"}],
           "external_references":[{"source_name":"mitre-attack","external_id":"T1003"}]},
          {"type":"attack-pattern","id":"attack-pattern--2","name":"Old","revoked":true,
           "external_references":[{"source_name":"mitre-attack","external_id":"T1000"}]},
          {"type":"attack-pattern","id":"attack-pattern--3","name":"Deprecated","x_mitre_deprecated":true,
           "external_references":[{"source_name":"mitre-attack","external_id":"T1001"}]},
          {"type":"identity","id":"identity--1","name":"MITRE"}
        ]}"#;
        let entries = parse_bundle(bundle).unwrap_or_else(|e| panic!("{e}"));
        let ids: Vec<&str> = entries.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids, ["TA0006", "T1003"]);
        assert_eq!(entries[1].tactics, ["Credential Access"]);
        assert!(parse_bundle(b"[]").is_err());
    }
}
