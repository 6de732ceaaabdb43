//! The JSON shapes feeds use for "a list of records", and tolerant field access.
//!
//! Feeds wrap their records in every possible way: a bare array (Feodo), an object keyed by id
//! whose values are one-element arrays (URLhaus and ThreatFox dumps), an object with a named
//! array (`data`, `vulnerabilities`, `results`, `objects`), or one object per line (API exports
//! saved by collectors). [`objects`] accepts all of them and reports each record's line.
//! Nesting depth is bounded by serde_json (128 levels), size by [`super::Limits::max_document`].

use std::collections::BTreeMap;
use std::io::BufRead;

use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::input::{LineCounter, read_document};
use super::{Ctx, ParseError};

/// One record object as found in the document.
pub(crate) struct Obj<'a> {
    /// The object's text, exactly as in the document.
    pub raw: &'a str,
    /// The key it was filed under, for keyed dumps.
    pub key: Option<String>,
    /// 1-based line where it starts.
    pub line: u64,
    /// Its fields.
    pub map: Map<String, Value>,
}

/// Reads `doc` and calls `each` for every record object. `wrappers` names the fields that may
/// hold the record array in a wrapping object.
pub(crate) fn objects(
    doc: &mut dyn BufRead,
    ctx: &mut Ctx<'_>,
    wrappers: &[&str],
    each: &mut dyn FnMut(Obj<'_>, &mut Ctx<'_>) -> Result<(), ParseError>,
) -> Result<(), ParseError> {
    let bytes = read_document(doc, ctx.limits())?;
    let text = std::str::from_utf8(&bytes).map_err(|e| {
        let line = bytes[..e.valid_up_to()]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1;
        ParseError::Json {
            line,
            column: 0,
            message: "not valid UTF-8".to_owned(),
        }
    })?;
    let mut counter = LineCounter::new(text.as_bytes());
    let whole: Result<&RawValue, _> = serde_json::from_str(text);
    let top = match whole {
        Ok(top) => top,
        Err(e) if is_trailing(&e) => return lines(text, ctx, each),
        Err(e) => return Err(ParseError::json(&e)),
    };
    let start = top.get().trim_start();
    let mut items: Vec<(Option<String>, &RawValue)> = Vec::new();
    if start.starts_with('[') {
        let array: Vec<&RawValue> =
            serde_json::from_str(top.get()).map_err(|e| ParseError::json(&e))?;
        items.extend(array.into_iter().map(|v| (None, v)));
    } else if start.starts_with('{') {
        let map: BTreeMap<String, &RawValue> =
            serde_json::from_str(top.get()).map_err(|e| ParseError::json(&e))?;
        if let Some(inner) = wrappers.iter().find_map(|w| map.get(*w)) {
            if inner.get().trim_start().starts_with('[') {
                let array: Vec<&RawValue> =
                    serde_json::from_str(inner.get()).map_err(|e| ParseError::json(&e))?;
                items.extend(array.into_iter().map(|v| (None, v)));
            }
        } else if map
            .values()
            .all(|v| v.get().trim_start().starts_with(['[', '{']))
        {
            // Keyed dump: `{ "<id>": [ {…} ], … }`, in document order.
            let mut keyed: Vec<(String, &RawValue)> = map.into_iter().collect();
            keyed.sort_by_key(|(_, v)| v.get().as_ptr() as usize);
            for (key, value) in keyed {
                if value.get().trim_start().starts_with('[') {
                    let array: Vec<&RawValue> =
                        serde_json::from_str(value.get()).map_err(|e| ParseError::json(&e))?;
                    items.extend(array.into_iter().map(|v| (Some(key.clone()), v)));
                } else {
                    items.push((Some(key), value));
                }
            }
        } else {
            // A single record object.
            items.push((None, top));
        }
    }
    for (key, raw) in items {
        let line = counter.line_of(raw.get());
        match serde_json::from_str::<Map<String, Value>>(raw.get()) {
            Ok(map) => each(
                Obj {
                    raw: raw.get(),
                    key,
                    line,
                    map,
                },
                ctx,
            )?,
            Err(_) => ctx.problem(line, None, "record is not a JSON object; skipped"),
        }
    }
    Ok(())
}

fn is_trailing(e: &serde_json::Error) -> bool {
    e.to_string().starts_with("trailing characters")
}

/// One JSON object per line.
fn lines(
    text: &str,
    ctx: &mut Ctx<'_>,
    each: &mut dyn FnMut(Obj<'_>, &mut Ctx<'_>) -> Result<(), ParseError>,
) -> Result<(), ParseError> {
    for (i, line) in text.split('\n').enumerate() {
        let line_no = i as u64 + 1;
        let trimmed = line.trim();
        if trimmed.is_empty() {
            continue;
        }
        match serde_json::from_str::<Map<String, Value>>(trimmed) {
            Ok(map) => each(
                Obj {
                    raw: trimmed,
                    key: None,
                    line: line_no,
                    map,
                },
                ctx,
            )?,
            Err(e) => ctx.problem(
                line_no,
                None,
                format!(
                    "invalid JSON (column {}): {}; skipped",
                    e.column(),
                    super::strip_position(&e.to_string())
                ),
            ),
        }
    }
    Ok(())
}

/// The first of `keys` holding a non-null string or number, as text.
pub(crate) fn text(map: &Map<String, Value>, keys: &[&str]) -> Option<String> {
    keys.iter().find_map(|k| match map.get(*k) {
        Some(Value::String(s)) if !crate::record::is_null(s) => Some(s.trim().to_owned()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    })
}

/// The first of `keys` as a list of strings: a JSON array, or a comma-separated string.
pub(crate) fn list(map: &Map<String, Value>, keys: &[&str]) -> Vec<String> {
    for k in keys {
        match map.get(*k) {
            Some(Value::Array(items)) => {
                return items
                    .iter()
                    .filter_map(|v| match v {
                        Value::String(s) => Some(s.clone()),
                        Value::Number(n) => Some(n.to_string()),
                        Value::Object(o) => {
                            o.get("name").and_then(Value::as_str).map(str::to_owned)
                        }
                        _ => None,
                    })
                    .collect();
            }
            Some(Value::String(s)) => return s.split(',').map(|t| t.trim().to_owned()).collect(),
            _ => {}
        }
    }
    Vec::new()
}

/// The first of `keys` as a 0–100 confidence.
pub(crate) fn confidence(map: &Map<String, Value>, keys: &[&str]) -> Option<u8> {
    text(map, keys)
        .and_then(|t| t.parse::<f64>().ok())
        .filter(|c| (0.0..=100.0).contains(c))
        .map(|c| c.round() as u8)
}
