//! The OpenAPI 3.1 document, generated from the endpoint table and the wire types' JSON
//! Schemas (OpenAPI 3.1 uses JSON Schema 2020-12, which is what the types derive).

use serde_json::{Map, Value, json};

use schemars::SchemaGenerator;

use super::{Auth, Body, Endpoint, Port, Reply, endpoints};

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

/// Writes the bounds of fixed-width integers (`"format": "uint32"`) as `minimum`/`maximum`
/// where a schema does not state tighter ones: JSON Schema validators and generators ignore
/// the format, and a client must learn from the document that 2^32 is refused.
fn bound_integers(v: &mut Value) {
    match v {
        Value::Object(o) => {
            let bounds: Option<(Value, Value)> = match o.get("format").and_then(Value::as_str) {
                Some("uint8") => Some((json!(0), json!(u8::MAX))),
                Some("uint16") => Some((json!(0), json!(u16::MAX))),
                Some("uint32") => Some((json!(0), json!(u32::MAX))),
                Some("uint64" | "uint") => Some((json!(0), json!(u64::MAX))),
                Some("int8") => Some((json!(i8::MIN), json!(i8::MAX))),
                Some("int16") => Some((json!(i16::MIN), json!(i16::MAX))),
                Some("int32") => Some((json!(i32::MIN), json!(i32::MAX))),
                Some("int64" | "int") => Some((json!(i64::MIN), json!(i64::MAX))),
                _ => None,
            };
            if let Some((min, max)) = bounds {
                o.entry("minimum").or_insert(min);
                o.entry("maximum").or_insert(max);
            }
            for child in o.values_mut() {
                bound_integers(child);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(bound_integers),
        _ => {}
    }
}

/// Keywords that only annotate a schema; beside a `$ref` they change nothing.
const ANNOTATIONS: [&str; 5] = ["description", "title", "default", "examples", "deprecated"];

/// Rewrites `{"$ref": R, <constraints>}` as `{"allOf": [{"$ref": R}, {<constraints>}]}`: the
/// same schema in JSON Schema 2020-12, but one that every OpenAPI tool applies (many drop a
/// `$ref`'s siblings, as OpenAPI 3.0 told them to). A field narrowing a shared type (a run
/// holds exactly one policy report) keeps its narrowing for them too.
fn ref_constraints_as_all_of(v: &mut Value) {
    match v {
        Value::Object(o) => {
            for child in o.values_mut() {
                ref_constraints_as_all_of(child);
            }
            if let Some(target) = o.get("$ref").cloned() {
                let constraints: Map<String, Value> = o
                    .iter()
                    .filter(|(k, _)| *k != "$ref" && !ANNOTATIONS.contains(&k.as_str()))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                if !constraints.is_empty() {
                    o.retain(|k, _| ANNOTATIONS.contains(&k.as_str()));
                    o.insert(
                        "allOf".into(),
                        json!([{"$ref": target}, Value::Object(constraints)]),
                    );
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(ref_constraints_as_all_of),
        _ => {}
    }
}

/// Every status an endpoint answers with, and what each carries. Errors follow from what the
/// endpoint takes (parameters, a body, a credential), so a new endpoint declares them by
/// being what it is; `default` stays for the router's own answers (405 on a method a path
/// does not take).
fn responses(e: &Endpoint, g: &mut SchemaGenerator) -> Value {
    let mut out = Map::new();
    let json_of = |schema: Value| json!({"application/json": {"schema": schema}});
    match e.reply {
        Reply::Json(f) => {
            let schema = serde_json::to_value(f(g)).unwrap_or(Value::Null);
            out.insert(
                "200".into(),
                json!({"description": "Success", "content": json_of(schema)}),
            );
        }
        Reply::Created(f) => {
            let schema = serde_json::to_value(f(g)).unwrap_or(Value::Null);
            out.insert(
                "201".into(),
                json!({"description": "Created", "content": json_of(schema)}),
            );
        }
        Reply::Upserted(f) => {
            let schema = serde_json::to_value(f(g)).unwrap_or(Value::Null);
            out.insert(
                "200".into(),
                json!({"description": "It existed already", "content": json_of(schema.clone())}),
            );
            out.insert(
                "201".into(),
                json!({"description": "Created", "content": json_of(schema)}),
            );
        }
        Reply::Document(types) => {
            let content: Map<String, Value> =
                types.iter().map(|t| ((*t).to_owned(), json!({}))).collect();
            out.insert(
                "200".into(),
                json!({"description": "Document", "content": content}),
            );
        }
        Reply::Taxii(f) => {
            let schema = serde_json::to_value(f(g)).unwrap_or(Value::Null);
            out.insert(
                "200".into(),
                json!({"description": "TAXII 2.1 resource", "content": {super::taxii::TAXII: {"schema": schema}}}),
            );
        }
        Reply::Redirect => {
            out.insert(
                "303".into(),
                json!({"description": "Go there", "headers": {"Location": {"schema": {"type": "string", "format": "uri"}}}}),
            );
        }
    }
    let has_path_params = e.path.contains('{');
    let has_body = !matches!(e.request, Body::None);
    let mut errors: Vec<(u16, &str)> = Vec::new();
    if has_path_params || e.query.is_some() || has_body {
        errors.push((
            400,
            "The request is wrong: a parameter, the body or a value in it (the detail names which)",
        ));
    }
    match e.auth {
        Auth::User(..) => {
            errors.push((
                401,
                "No API token or session, or not a valid one: unknown, expired, revoked or logged out, or its user disabled (WWW-Authenticate says how to send a token)",
            ));
            errors.push((
                403,
                "The token's role (or its user's) lacks the required permission, the request acts on an agent group its grant does not cover, or a session's change came without its CSRF token",
            ));
            errors.push((429, "Too many failed authentications from this address (Retry-After says how long to wait)"));
        }
        Auth::Public if e.path == "/api/v1/login" || e.path == "/api/v1/session" => {
            errors.push((401, "User name or password wrong (or the user disabled)"));
            errors.push((
                403,
                "The password is one-time: log in again with a new_password",
            ));
            errors.push((429, "Too many failed authentications from this address (Retry-After says how long to wait)"));
            errors.push((
                503,
                "Too many logins at once (Retry-After says when to try again)",
            ));
        }
        Auth::Public if has_body => {
            errors.push((
                401,
                "The enrolment token was refused: forged, expired, used up or revoked",
            ));
        }
        Auth::Public => {}
        Auth::AgentCert => {
            errors.push((401, "No client certificate"));
            errors.push((403, "The certificate or its agent has been revoked, or what is asked is not assigned to it"));
        }
    }
    if has_path_params || e.path == "/api/v1/enrol" {
        errors.push((404, "What the path names does not exist"));
    }
    // What only some endpoints answer, from what they do.
    match e.path {
        "/api/v1/policies" => {
            errors.push((
                422,
                "The policy does not parse or validate (the detail has file:line:column)",
            ));
        }
        "/api/v1/users" | "/api/v1/me/tokens" => {
            errors.push((409, "A user (or one's live token) of that name exists"));
        }
        "/api/v1/users/{name}/role" | "/api/v1/users/{name}/disable" => {
            errors.push((409, "That would leave no enabled admin"));
        }
        "/api/v1/session" => {
            errors.push((409, "Logging out needs a session, not an API token"));
        }
        "/api/v1/me/password" => {
            errors.push((
                503,
                "Too many password checks at once (Retry-After says when to try again)",
            ));
        }
        "/agent/v1/runs" => {
            errors.push((
                422,
                "The report's results_digest is not the digest of its content, or the run claims a policy version whose content it did not evaluate",
            ));
        }
        "/api/v1/oidc/token" => {
            errors.push((
                401,
                "Unknown, used or expired code, or not this login's verifier",
            ));
            errors.push((404, "No OpenID provider is configured"));
        }
        "/api/v1/oidc/login" => {
            errors.push((404, "No OpenID provider is configured"));
            errors.push((
                502,
                "The OpenID provider could not be reached or answered nonsense",
            ));
        }
        "/api/v1/oidc/callback" => {
            errors.push((401, "The provider refused the login, or its ID token was refused (signature, issuer, audience, expiry, nonce)"));
            errors.push((
                403,
                "The account has no mapped role, or its user is disabled",
            ));
            errors.push((404, "No OpenID provider is configured"));
            errors.push((
                502,
                "The OpenID provider could not be reached or answered nonsense",
            ));
        }
        "/api/v1/audit/checkpoint"
        | "/api/v1/audit/proof/inclusion"
        | "/api/v1/audit/proof/consistency" => {
            errors.push((404, "No such checkpoint, entry or tree size (yet)"));
        }
        "/api/v1/event-destinations/{destination}" if e.method == axum::http::Method::PUT => {
            errors.push((
                409,
                "As many destinations as the server takes are defined already (a new one is refused)",
            ));
        }
        "/api/v1/intel/feeds/{name}/sync" => {
            errors.push((
                409,
                "The feed has no URL to fetch (upload its files instead)",
            ));
        }
        _ => {}
    }
    if super::rate_limit::class_of(e.path).is_some() {
        errors.retain(|(status, _)| *status != 429);
        errors.push((429, "Too many requests of this kind from this client, or too many failed authentications from its address (Retry-After says when to try again)"));
    }
    if matches!(e.reply, Reply::Taxii(_)) {
        errors.push((406, "The Accept header does not take TAXII 2.1"));
    }
    if has_body {
        errors.push((408, "The body arrived too slowly"));
    }
    errors.push((413, "The body is larger than the endpoint takes"));
    if matches!(e.request, Body::Json(_) | Body::GzipJson(_)) {
        errors.push((415, "The body is not sent as JSON"));
    }
    errors.push((
        500,
        "The server failed (the detail says what; nothing was half-written)",
    ));
    let error_content = if matches!(e.reply, Reply::Taxii(_)) {
        let schema = g.subschema_for::<super::taxii::ErrorMessage>();
        json!({super::taxii::TAXII: {"schema": schema}})
    } else {
        let schema = g.subschema_for::<crate::api::Problem>();
        json!({"application/problem+json": {"schema": schema}})
    };
    errors.sort_by_key(|(status, _)| *status);
    for (status, description) in errors {
        out.insert(
            status.to_string(),
            json!({"description": description, "content": error_content.clone()}),
        );
    }
    out.insert(
        "default".into(),
        json!({"description": "Error", "content": error_content}),
    );
    Value::Object(out)
}

/// A path parameter's schema, by its name (the same name means the same thing on every path):
/// versions are numbers, an assignment's target kind is `group` or `agent`, an event
/// destination or an alert rule a name as names are everywhere, everything else an
/// identifier or name looked up as given (an unknown one is a 404).
fn path_parameter(name: &str) -> Value {
    match name {
        "version" => json!({"type": "integer", "format": "int64"}),
        "kind" => json!({"type": "string", "enum": ["group", "agent"]}),
        // Event destinations are named by the admin who defines them (PUT creates).
        "destination" | "rule" => {
            json!({"type": "string", "pattern": rampart_core::names::NAME_PATTERN})
        }
        _ => json!({"type": "string"}),
    }
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
                (_, Auth::User(..)) => "api",
                _ => "public",
            }]),
        );
        match e.auth {
            Auth::Public => {
                op.insert("security".into(), json!([]));
            }
            Auth::User(permission, _) => {
                op.insert(
                    "security".into(),
                    json!([{"apiToken": []}, {"session": []}]),
                );
                // Machine-readable for clients and the endpoint × role test, and in words.
                op.insert("x-rampart-permission".into(), json!(permission.as_str()));
                let roles: Vec<&str> = rampart_access::Role::ALL
                    .into_iter()
                    .filter(|r| r.allows(permission))
                    .map(|r| r.as_str())
                    .collect();
                op.insert(
                    "description".into(),
                    json!(format!(
                        "Requires the `{permission}` permission (roles: {}).",
                        roles.join(", ")
                    )),
                );
            }
            Auth::AgentCert => {
                op.insert("security".into(), json!([{"agentCertificate": []}]));
            }
        }
        let mut params: Vec<Value> = e
            .path
            .split('/')
            .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| json!({"name": name, "in": "path", "required": true, "schema": path_parameter(name)}))
            .collect();
        if let Some(query) = e.query {
            params.extend(query_parameters(
                &serde_json::to_value(query(&mut g)).unwrap_or(Value::Null),
            ));
        }
        if !params.is_empty() {
            op.insert("parameters".into(), Value::Array(params));
        }
        match e.request {
            Body::None => {}
            Body::Json(req) | Body::GzipJson(req) => {
                let schema = serde_json::to_value(req(&mut g)).unwrap_or(Value::Null);
                let mut body =
                    json!({"required": true, "content": {"application/json": {"schema": schema}}});
                if matches!(e.request, Body::GzipJson(_)) {
                    body["description"] = json!("Sent with Content-Encoding: gzip.");
                }
                op.insert("requestBody".into(), body);
            }
            Body::File => {
                op.insert(
                    "requestBody".into(),
                    json!({
                        "required": true,
                        "description": "The file as it is: plain, gzip or zip.",
                        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}
                    }),
                );
            }
        }
        op.insert("responses".into(), responses(&e, &mut g));
        let entry = paths.entry(e.path.to_string()).or_insert_with(|| json!({}));
        entry[method] = Value::Object(op);
    }
    let mut schemas = g.take_definitions(true);
    for schema in schemas.values_mut().chain(paths.values_mut()) {
        bound_integers(schema);
        ref_constraints_as_all_of(schema);
    }
    let mut doc = json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Rampart fleet API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Fleet, policy, results and threat-intel API (API port, user API tokens; each operation names the permission it requires in `x-rampart-permission`) and agent API (agent port, mutual TLS). docs/access.md has the role matrix."
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "apiToken": {"type": "http", "scheme": "bearer", "description": "A user's API token (rpt_…); the first admin's is written to the data directory at the server's first start."},
                "session": {"type": "apiKey", "in": "cookie", "name": "__Host-rampart_session", "description": "A browser session (POST /api/v1/session); state-changing requests also carry its CSRF token in X-CSRF-Token."},
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
