//! `rampart bench auth`: what authentication and authorization cost an API call.
//!
//! Against a real server, open loop at a fixed rate, four calls in turn: `GET /api/v1/health`
//! (public: no credential, no store read) as the same-run floor; `GET /api/v1/me` with an API
//! token (authentication and authorization, nothing else: the token's read joined with its
//! user, the grant check); `GET /api/v1/agents/{id}` with that token and with a token limited
//! to a group (which adds the read of the agent's group). The differences against the floor are
//! the cost; the server's CPU per request is the steadier figure.

use std::process::ExitCode;

use serde_json::json;

use crate::cli::BenchAuthArgs;
use crate::cmd::bench::{open_loop, start_server_on, tls};

/// A call measured: its name in the figures, path, token, and which status means served.
type Scenario<'a> = (&'a str, &'a str, Option<&'a str>, fn(u16) -> bool);

/// Runs the benchmark.
pub fn run(args: BenchAuthArgs) -> anyhow::Result<ExitCode> {
    let dir = tempfile::tempdir()?;
    let server = start_server_on(&dir.path().join("data"), args.database_url.as_deref(), &[])?;
    let root = std::fs::read_to_string(server.data.join("root-ca.pem"))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let figures = runtime.block_on(async {
        let client = tls(&root, None)?;
        let base = format!("https://127.0.0.1:{}", server.api);
        let limited: rampart_server::api::IssuedToken = client
            .post(format!("{base}/api/v1/me/tokens"))
            .bearer_auth(&server.token)
            .json(&json!({"name": "web-only", "groups": ["web"]}))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let scenarios: [Scenario<'_>; 4] = [
            ("health_no_auth", "/api/v1/health", None, |s| s == 200),
            ("me_token", "/api/v1/me", Some(&server.token), |s| s == 200),
            // No agent has this id: the handler answers 404 after the full authorization.
            (
                "agent_token",
                "/api/v1/agents/no-such-agent",
                Some(&server.token),
                |s| s == 404,
            ),
            (
                "agent_group_limited_token",
                "/api/v1/agents/no-such-agent",
                Some(&limited.token),
                |s| s == 404,
            ),
        ];
        let mut out = serde_json::Map::new();
        out.insert("cpu".into(), json!(super::bench::cpu_model()));
        out.insert(
            "backend".into(),
            json!(if args.database_url.is_some() {
                "postgres"
            } else {
                "sqlite"
            }),
        );
        for (name, path, token, ok) in scenarios {
            let url = format!("{base}{path}");
            let token = token.map(str::to_owned);
            let figures = open_loop(
                &client,
                server.child_id(),
                args.rate,
                args.seconds,
                |_| (url.clone(), token.clone()),
                ok,
            )
            .await?;
            out.insert(name.into(), figures);
        }
        anyhow::Ok(serde_json::Value::Object(out))
    })?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&figures)?);
    } else {
        println!("cpu: {}", figures["cpu"].as_str().unwrap_or(""));
        for (name, f) in figures.as_object().into_iter().flatten() {
            if f.is_object() {
                println!(
                    "{name:28} p50 {:6.2} ms  p99 {:6.2} ms  max {:7.2} ms  server CPU {:5.0} us/request  errors {}",
                    f["p50_ms"].as_f64().unwrap_or(0.0),
                    f["p99_ms"].as_f64().unwrap_or(0.0),
                    f["max_ms"].as_f64().unwrap_or(0.0),
                    f["server_cpu_us_per_request"].as_f64().unwrap_or(0.0),
                    f["errors"]
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
