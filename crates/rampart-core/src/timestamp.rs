//! How timestamps look on the wire, for JSON Schema: RFC 3339 strings
//! (`time::serde::rfc3339`), stated as `"format": "date-time"` so that API clients and contract
//! tests know a field is a date, not any text.

use std::borrow::Cow;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};

/// The schema of an `OffsetDateTime` serialised as RFC 3339:
/// `#[schemars(with = "rampart_core::timestamp::Rfc3339")]`.
pub struct Rfc3339;

impl JsonSchema for Rfc3339 {
    fn schema_name() -> Cow<'static, str> {
        "Rfc3339".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({"type": "string", "format": "date-time"})
    }
}
