//! The OpenAPI 3.1 document, generated from the endpoint table and the wire types' JSON
//! Schemas (OpenAPI 3.1 uses JSON Schema 2020-12, which is what the types derive).

use serde_json::{Map, Value, json};

use super::{Auth, Port, Reply, endpoints};

fn operation_id(method: &str, path: &str) -> String {
    let mut id = method.to_ascii_lowercase();
    for seg in path
        .split('/')
        .filter(|s| !s.is_empty() && *s != "api" && *s != "agent" && *s != "v1")
    {
        id.push('_');
        id.push_str(&seg.replace(['{', '}'], "").replace(['.', '-'], "_"));
    }
    id
}

fn problem_schema() -> Value {
    json!({
        "type": "object",
        "description": "RFC 9457 problem details.",
        "required": ["type", "title", "status", "detail", "code"],
        "properties": {
            "type": {"type": "string", "description": "urn:rampart:problem:<code>"},
            "title": {"type": "string"},
            "status": {"type": "integer"},
            "detail": {"type": "string", "description": "What was wrong, naming the field or value."},
            "code": {"type": "string", "description": "Stable machine-readable code."}
        }
    })
}

/// The query parameters of a handler's `Query` type, from its root schema: one parameter per
/// property, required when the type requires it, with the property's schema (an `Option`'s
/// `null` dropped: an absent parameter is how a query says "none") and its doc comment.
fn query_parameters(root: &Value) -> Vec<Value> {
    let required: Vec<&str> = root["required"]
        .as_array()
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let Some(props) = root["properties"].as_object() else {
        return Vec::new();
    };
    props
        .iter()
        .map(|(name, schema)| {
            let mut schema = schema.clone();
            let description = schema.as_object_mut().and_then(|o| o.remove("description"));
            if let Some(types) = schema["type"].as_array() {
                let kept: Vec<Value> = types.iter().filter(|t| *t != "null").cloned().collect();
                schema["type"] = match kept.as_slice() {
                    [one] => one.clone(),
                    _ => Value::Array(kept),
                };
            }
            let mut p = json!({
                "name": name,
                "in": "query",
                "required": required.contains(&name.as_str()),
                "schema": schema,
            });
            if let Some(d) = description {
                p["description"] = d;
            }
            p
        })
        .collect()
}

/// The document. `api_url`/`agent_url` fill `servers` when known (served documents); the
/// snapshot leaves them out so it does not depend on ports.
pub fn openapi_document(api_url: Option<&str>, agent_url: Option<&str>) -> Value {
    let mut settings = schemars::generate::SchemaSettings::draft2020_12();
    settings.definitions_path = "/components/schemas/".into();
    let mut g = settings.into_generator();
    let mut paths: Map<String, Value> = Map::new();
    for e in endpoints() {
        let method = e.method.as_str().to_ascii_lowercase();
        let mut op = Map::new();
        op.insert("operationId".into(), json!(operation_id(&method, e.path)));
        op.insert("summary".into(), json!(e.summary));
        op.insert(
            "tags".into(),
            json!([match (e.port, e.auth) {
                (Port::Agent, _) => "agent",
                (_, Auth::Admin) => "admin",
                _ => "public",
            }]),
        );
        match e.auth {
            Auth::Public => {
                op.insert("security".into(), json!([]));
            }
            Auth::Admin => {
                op.insert("security".into(), json!([{"adminToken": []}]));
            }
            Auth::AgentCert => {
                op.insert("security".into(), json!([{"agentCertificate": []}]));
            }
        }
        let mut params: Vec<Value> = e
            .path
            .split('/')
            .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        if let Some(query) = e.query {
            params.extend(query_parameters(
                &serde_json::to_value(query(&mut g)).unwrap_or(Value::Null),
            ));
        }
        if !params.is_empty() {
            op.insert("parameters".into(), Value::Array(params));
        }
        if let Some(req) = e.request {
            let schema = serde_json::to_value(req(&mut g)).unwrap_or(Value::Null);
            let mut body =
                json!({"required": true, "content": {"application/json": {"schema": schema}}});
            if e.gzip_request {
                body["description"] = json!("Sent with Content-Encoding: gzip.");
            }
            op.insert("requestBody".into(), body);
        }
        let ok = match e.reply {
            Reply::Json(f) => {
                let schema = serde_json::to_value(f(&mut g)).unwrap_or(Value::Null);
                json!({"description": "Success", "content": {"application/json": {"schema": schema}}})
            }
            Reply::Pem => json!({"description": "PEM", "content": {"application/x-pem-file": {}}}),
            Reply::Der => json!({"description": "DER", "content": {"application/pkix-crl": {}}}),
            Reply::Bytes => {
                json!({"description": "Document", "content": {"application/octet-stream": {}}})
            }
            Reply::Taxii => {
                json!({"description": "TAXII 2.1 resource", "content": {super::taxii::TAXII: {}}})
            }
        };
        op.insert(
            "responses".into(),
            json!({
                "200": ok,
                "default": {"description": "Error", "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}}
            }),
        );
        let entry = paths.entry(e.path.to_string()).or_insert_with(|| json!({}));
        entry[method] = Value::Object(op);
    }
    let mut schemas = g.take_definitions(true);
    schemas.insert("Problem".into(), problem_schema());
    let mut doc = json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Rampart fleet API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Admin and enrolment API (API port, bearer token) and agent API (agent port, mutual TLS)."
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "adminToken": {"type": "http", "scheme": "bearer", "description": "Admin token printed at the server's first start."},
                "agentCertificate": {"type": "mutualTLS", "description": "Client certificate issued at enrolment, on the agent port."}
            }
        }
    });
    if let (Some(api), Some(agent)) = (api_url, agent_url) {
        doc["servers"] = json!([
            {"url": api, "description": "API port"},
            {"url": agent, "description": "Agent port (mutual TLS)"}
        ]);
    }
    doc
}
