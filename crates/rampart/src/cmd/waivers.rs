//! `rampart waivers request|approve|deny|list`: thin clients of the server's waiver API.

use std::process::ExitCode;

use anyhow::bail;
use rampart_server::api::{WaiverDecision, WaiverRequest};
use rampart_store::{StoredWaiver, WaiverScope};

use super::fleet::{Api, runtime, t, table};
use crate::cli::WaiversCommand;

fn scope(w: &StoredWaiver) -> String {
    match &w.scope {
        WaiverScope::Agent(a) => format!("agent {a}"),
        WaiverScope::Group(g) => format!("group {g}"),
        WaiverScope::Fleet => "fleet".into(),
    }
}

fn show(api: &Api, w: &StoredWaiver) -> anyhow::Result<()> {
    if api.json {
        println!("{}", serde_json::to_string(w)?);
    } else {
        println!(
            "waiver {} {}: {} on {} until {} — {}",
            w.id,
            w.state,
            w.check,
            scope(w),
            w.expires_on,
            w.justification
        );
    }
    Ok(())
}

/// `rampart waivers …`.
pub fn run(cmd: WaiversCommand) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async move {
        match cmd {
            WaiversCommand::Request {
                check,
                agent,
                group,
                fleet,
                until,
                why,
                conn,
            } => {
                let scope = match (agent, group, fleet) {
                    (Some(a), None, false) => WaiverScope::Agent(a),
                    (None, Some(g), false) => WaiverScope::Group(g),
                    (None, None, true) => WaiverScope::Fleet,
                    _ => bail!("say whom the waiver covers: --agent ID, --group NAME or --fleet"),
                };
                let api = Api::new(&conn)?;
                let w: StoredWaiver = api
                    .send(
                        reqwest::Method::POST,
                        "/api/v1/waivers",
                        &WaiverRequest {
                            check,
                            scope,
                            until,
                            justification: why,
                        },
                    )
                    .await?;
                show(&api, &w)?;
            }
            WaiversCommand::Approve { id, note, conn } => {
                let api = Api::new(&conn)?;
                let w: StoredWaiver = api
                    .send(
                        reqwest::Method::POST,
                        &format!("/api/v1/waivers/{}/approve", enc(&id)),
                        &WaiverDecision { note },
                    )
                    .await?;
                show(&api, &w)?;
            }
            WaiversCommand::Deny { id, why, conn } => {
                let api = Api::new(&conn)?;
                let w: StoredWaiver = api
                    .send(
                        reqwest::Method::POST,
                        &format!("/api/v1/waivers/{}/deny", enc(&id)),
                        &WaiverDecision { note: why },
                    )
                    .await?;
                show(&api, &w)?;
            }
            WaiversCommand::List { state, conn } => {
                let api = Api::new(&conn)?;
                let path = match &state {
                    Some(s) => format!("/api/v1/waivers?state={}&limit=1000", enc(s)),
                    None => "/api/v1/waivers?limit=1000".to_owned(),
                };
                let all: Vec<StoredWaiver> = api.get(&path).await?;
                if api.json {
                    println!("{}", serde_json::to_string(&all)?);
                } else {
                    table(
                        &[
                            "ID",
                            "STATE",
                            "CHECK",
                            "SCOPE",
                            "UNTIL",
                            "REQUESTED BY",
                            "DECIDED BY",
                            "REQUESTED",
                        ],
                        all.iter()
                            .map(|w| {
                                vec![
                                    w.id.clone(),
                                    w.state.clone(),
                                    w.check.clone(),
                                    scope(w),
                                    w.expires_on.clone(),
                                    w.requested_by.clone(),
                                    w.decided_by.clone().unwrap_or_else(|| "-".into()),
                                    t(w.requested_at),
                                ]
                            })
                            .collect(),
                    );
                }
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
