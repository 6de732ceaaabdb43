//! The agent loop.

use std::path::PathBuf;
use std::time::Duration;

use rampart_core::fleet::{Heartbeat, HeartbeatResponse, RunReceipt, RunSubmission};
use rampart_engine::{ScanContext, ScanOptions};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::sync::watch;

use crate::client::{agent_client, check, unreachable};
use crate::enrol::key_and_csr;
use crate::policies::{HeldPolicy, content_path, held, sync};
use crate::schedule::{ScheduleState, next_after};
use crate::state::write_atomic;
use crate::status::{AgentStatusReport, PolicyStatus};
use crate::{AgentError, Spool, StateDir};

/// How the agent scans and spools.
#[derive(Debug, Clone)]
pub struct AgentOptions {
    /// Root directory scanned (`/` for the host).
    pub scan_root: PathBuf,
    /// Per-command timeout.
    pub command_timeout: Duration,
    /// Worker threads per scan.
    pub jobs: usize,
    /// Spool bound: results.
    pub spool_max_entries: usize,
    /// Spool bound: bytes.
    pub spool_max_bytes: u64,
    /// Override of the server's heartbeat interval (tests).
    pub heartbeat: Option<Duration>,
    /// Report connections, listeners and `/etc/hosts` entries with each run, for threat-intel
    /// matching on the server.
    pub report_observables: bool,
}

impl Default for AgentOptions {
    fn default() -> AgentOptions {
        AgentOptions {
            scan_root: PathBuf::from("/"),
            command_timeout: Duration::from_secs(30),
            jobs: rampart_engine::context::default_jobs(),
            spool_max_entries: 1000,
            spool_max_bytes: 512 * 1024 * 1024,
            heartbeat: None,
            report_observables: true,
        }
    }
}

fn fmt(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

/// When to renew a certificate: at two thirds of its lifetime, shifted by up to ±5 % of the
/// lifetime so a fleet enrolled at once does not renew at once. The shift is derived from the
/// serial, so it is stable across restarts without storing it.
pub(crate) fn renew_at(
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
    serial: &str,
) -> OffsetDateTime {
    let life = not_after - not_before;
    let h = Sha256::digest(serial.as_bytes());
    let unit = f64::from(u16::from_be_bytes([h[0], h[1]])) / f64::from(u16::MAX); // 0..=1
    let fraction = 2.0 / 3.0 + (unit - 0.5) * 0.1;
    not_before + life * fraction
}

struct Loaded {
    identity: crate::AgentIdentityFile,
    client: reqwest::Client,
    cert: rampart_pki::AgentIdentity,
    /// The server's root CA, PEM (for the API port, where no client certificate is sent).
    root_pem: String,
}

fn load(state: &StateDir) -> Result<Loaded, AgentError> {
    let identity = state.load_identity()?;
    let root = state.read_string(&state.root_ca())?;
    let chain = state.read_string(&state.cert())?;
    let key = state.read_string(&state.key())?;
    let leaf = rustls::pki_types::pem::PemObject::from_pem_slice(chain.as_bytes())
        .map(|d: rustls::pki_types::CertificateDer<'_>| d.to_vec())
        .map_err(|e| AgentError::corrupt(&state.cert(), e))?;
    let cert =
        rampart_pki::agent_identity(&leaf).map_err(|e| AgentError::corrupt(&state.cert(), e))?;
    let client = agent_client(&root, &chain, &key)?;
    Ok(Loaded {
        identity,
        client,
        cert,
        root_pem: root,
    })
}

/// What a network failure on the agent port really was. A server that refuses a revoked
/// certificate ends the TLS session with an alert, which the HTTP client does not always
/// surface (the pooled connection may die before the request is written); so when the agent
/// port fails, the agent asks the API port (no client certificate, root CA pinned) for the
/// CRL and looks for its own serial. Listed: revoked, which no retry changes. Anything else,
/// including a CRL it cannot get: the failure as it was.
async fn diagnose(l: &Loaded, e: AgentError) -> AgentError {
    if !e.is_transient() {
        return e;
    }
    let url = format!("{}/api/v1/ca/crl.der", l.identity.api_url);
    let Ok(client) = crate::client::api_client(&l.root_pem) else {
        return e;
    };
    let crl = async {
        let resp = client.get(&url).send().await.ok()?;
        if !resp.status().is_success() {
            return None;
        }
        resp.bytes().await.ok()
    };
    match tokio::time::timeout(std::time::Duration::from_secs(10), crl).await {
        Ok(Some(der)) if rampart_pki::crl_lists_serial(&der, &l.cert.serial).unwrap_or(false) => {
            AgentError::Revoked {
                url: l.identity.agent_url.clone(),
            }
        }
        _ => e,
    }
}

async fn renew(state: &StateDir, l: &Loaded) -> Result<(), AgentError> {
    let (key_pem, csr_pem) = key_and_csr(&l.identity.agent_id)?;
    let url = format!("{}/agent/v1/renew", l.identity.agent_url);
    let resp = l
        .client
        .post(&url)
        .json(&rampart_core::fleet::RenewRequest { csr_pem })
        .send()
        .await
        .map_err(|e| unreachable(&url, &e))?;
    let resp: rampart_core::fleet::RenewResponse = check(resp, "certificate renewal")
        .await?
        .json()
        .await
        .map_err(|e| unreachable(&url, &e))?;
    // Key first: a crash between the two writes leaves the old certificate with a new key, which
    // fails loudly at the next handshake, instead of a new certificate nobody can use silently.
    let old_key = state.read_string(&state.key())?;
    write_atomic(&state.key(), key_pem.as_bytes(), 0o600)?;
    if let Err(e) = write_atomic(&state.cert(), resp.certificate_chain_pem.as_bytes(), 0o644) {
        write_atomic(&state.key(), old_key.as_bytes(), 0o600)?;
        return Err(e);
    }
    tracing::info!(agent = %l.identity.agent_id, "certificate renewed");
    Ok(())
}

/// Renews the certificate now, whatever its age (`rampart agent renew`).
/// Returns the new certificate's identity.
pub async fn renew_now(state: &StateDir) -> Result<rampart_pki::AgentIdentity, AgentError> {
    let l = load(state)?;
    if OffsetDateTime::now_utc() >= l.cert.not_after {
        return Err(AgentError::CertificateExpired {
            at: fmt(l.cert.not_after),
            agent_id: l.identity.agent_id.clone(),
        });
    }
    if let Err(e) = renew(state, &l).await {
        return Err(diagnose(&l, e).await);
    }
    Ok(load(state)?.cert)
}

async fn heartbeat(
    l: &Loaded,
    spooled: u64,
    state_word: &str,
) -> Result<HeartbeatResponse, AgentError> {
    let url = format!("{}/agent/v1/heartbeat", l.identity.agent_url);
    let beat = Heartbeat {
        state: state_word.into(),
        spooled_runs: spooled,
        agent_version: env!("CARGO_PKG_VERSION").into(),
    };
    let resp = l
        .client
        .post(&url)
        .json(&beat)
        .send()
        .await
        .map_err(|e| unreachable(&url, &e))?;
    check(resp, "heartbeat")
        .await?
        .json()
        .await
        .map_err(|e| unreachable(&url, &e))
}

/// Sends every spooled result, oldest first; stops at the first transient failure. A result the
/// server refuses for good (malformed) is dropped with an error, or it would block the spool.
async fn flush_spool(l: &Loaded, spool: &Spool) -> Result<usize, AgentError> {
    let url = format!("{}/agent/v1/runs", l.identity.agent_url);
    let mut sent = 0;
    for entry in spool.entries()? {
        let body = spool.read(&entry)?;
        let resp = l
            .client
            .post(&url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(reqwest::header::CONTENT_ENCODING, "gzip")
            .body(body)
            .send()
            .await
            .map_err(|e| unreachable(&url, &e))?;
        match check(resp, "result upload").await {
            Ok(resp) => {
                let receipt: RunReceipt = resp.json().await.map_err(|e| unreachable(&url, &e))?;
                tracing::info!(run = %receipt.run_id, outcome = %receipt.outcome, "result delivered");
                spool.remove(&entry)?;
                sent += 1;
            }
            Err(e) if e.is_transient() => return Err(e),
            Err(
                e @ AgentError::Refused {
                    status: 401 | 403, ..
                },
            ) => return Err(e),
            Err(e) => {
                tracing::error!(file = %entry.display(), error = %e, "server refused a spooled result for good; dropping it");
                spool.remove(&entry)?;
            }
        }
    }
    Ok(sent)
}

fn scan(
    state: &StateDir,
    opts: &AgentOptions,
    p: &HeldPolicy,
    trigger: &str,
) -> Result<RunSubmission, AgentError> {
    let path = content_path(state, &p.policy_id);
    let policy = rampart_policy::load_file(&path, rampart_policy::LoadOptions::default())
        .map_err(|e| AgentError::corrupt(&path, e))?;
    // The costs only order the work: a cache that cannot be read or written costs speed, never
    // a scan, so it is logged and passed over.
    let costs_path = state.command_costs();
    let costs = rampart_engine::costs::CommandCosts::load(&costs_path).unwrap_or_else(|e| {
        tracing::warn!("ignoring the command-costs cache: {e}");
        rampart_engine::costs::CommandCosts::new()
    });
    let ctx = ScanContext::new(ScanOptions {
        root: opts.scan_root.clone(),
        chroot_commands: false,
        command_timeout: opts.command_timeout,
        deadline: None,
        jobs: opts.jobs,
        command_slots: rampart_engine::context::default_command_slots(),
        skip_nfs: true,
        requirements: rampart_engine::RequirementsMode::Host,
    })
    .with_command_costs(costs);
    let run_id = uuid::Uuid::now_v7().to_string();
    let report = rampart_engine::scan_report(
        &ctx,
        std::slice::from_ref(&policy),
        &|_, _| {},
        run_id.clone(),
    );
    if let Some(Err(e)) = ctx.updated_costs().map(|costs| costs.save(&costs_path)) {
        tracing::warn!("cannot update the command-costs cache: {e}");
    }
    Ok(RunSubmission {
        run_id,
        policy_version: Some(p.version),
        policy_digest: p.digest.clone(),
        trigger: trigger.into(),
        report,
        observables: if opts.report_observables {
            crate::observe::observables(&opts.scan_root)
        } else {
            Vec::new()
        },
    })
}

/// One pass of the loop: renew if due, heartbeat, sync policies, send the spool, scan what is
/// due, send again. Writes the status file whatever happens.
pub async fn run_once(
    state: &StateDir,
    opts: &AgentOptions,
) -> Result<AgentStatusReport, AgentError> {
    let spool = Spool::new(state.spool(), opts.spool_max_entries, opts.spool_max_bytes);
    let mut status = AgentStatusReport::load(state).unwrap_or_default();
    let result = pass(state, opts, &spool, &mut status).await;
    let now = OffsetDateTime::now_utc();
    status.spooled_runs = spool.len() as u64;
    status.updated_at = fmt(now);
    match &result {
        Ok(()) => status.last_error = None,
        Err(e) => {
            status.last_error = Some(e.to_string());
            status.state = match e {
                AgentError::CertificateExpired { .. } => "certificate_expired".into(),
                AgentError::Revoked { .. } => "revoked".into(),
                e if e.is_transient() => "offline".into(),
                _ => "error".into(),
            };
        }
    }
    status.save(state)?;
    result.map(|()| status)
}

async fn pass(
    state: &StateDir,
    opts: &AgentOptions,
    spool: &Spool,
    status: &mut AgentStatusReport,
) -> Result<(), AgentError> {
    let now = OffsetDateTime::now_utc();
    let mut l = load(state)?;
    status.agent_id = l.identity.agent_id.clone();
    status.server = l.identity.agent_url.clone();
    if now >= l.cert.not_after {
        return Err(AgentError::CertificateExpired {
            at: fmt(l.cert.not_after),
            agent_id: l.identity.agent_id.clone(),
        });
    }
    if now >= renew_at(l.cert.not_before, l.cert.not_after, &l.cert.serial) {
        if let Err(e) = renew(state, &l).await {
            return Err(diagnose(&l, e).await);
        }
        l = load(state)?;
    }
    status.certificate_not_after = Some(fmt(l.cert.not_after));
    status.renew_at = Some(fmt(renew_at(
        l.cert.not_before,
        l.cert.not_after,
        &l.cert.serial,
    )));

    // An unreachable server does not stop scheduled scans: they run from the policies held
    // and wait in the spool. Only the network steps are skipped, and the error is reported.
    let mut offline: Option<AgentError> = None;
    let (scan_now, changed) = match heartbeat(&l, spool.len() as u64, "idle").await {
        Ok(hb) => {
            status.last_heartbeat = Some(fmt(now));
            status.state = "idle".into();
            let changed = sync(state, &l.client, &l.identity.agent_url, &hb.assignments).await?;
            if let Err(e) = flush_spool(&l, spool).await {
                offline = Some(e);
            }
            (hb.scan_now, changed)
        }
        Err(e) => match diagnose(&l, e).await {
            e if e.is_transient() => {
                offline = Some(e);
                (false, Vec::new())
            }
            e => return Err(e),
        },
    };

    let mut sched = ScheduleState::load(state);
    let held = held(state);
    let mut due: Vec<(HeldPolicy, &str)> = Vec::new();
    for p in &held {
        let trigger = if scan_now {
            Some("on_demand")
        } else if changed.contains(&p.policy_id)
            || sched
                .last
                .get(&p.policy_id)
                .is_none_or(|(d, _)| *d != p.digest)
        {
            // A new or changed policy is evaluated at once, then on its schedule.
            Some("policy_update")
        } else {
            let last = sched.last.get(&p.policy_id).map_or(0, |(_, t)| *t);
            let last = OffsetDateTime::from_unix_timestamp(last).unwrap_or(now);
            next_after(&p.schedule, last)
                .filter(|n| *n <= now)
                .map(|_| "schedule")
        };
        if let Some(t) = trigger {
            due.push((p.clone(), t));
        }
    }
    for (p, trigger) in due {
        status.state = "scanning".into();
        let (st, o, pc) = (state.clone(), opts.clone(), p.clone());
        let started = OffsetDateTime::now_utc();
        let sub = tokio::task::spawn_blocking(move || scan(&st, &o, &pc, trigger))
            .await
            .map_err(|e| AgentError::Key(format!("scan task failed: {e}")))??;
        spool.push(&sub)?;
        sched.last.insert(
            p.policy_id.clone(),
            (p.digest.clone(), started.unix_timestamp()),
        );
        sched.save(state)?;
        tracing::info!(policy = %p.policy_id, run = %sub.run_id, trigger, "scan finished");
    }
    status.state = "idle".into();
    if offline.is_none()
        && let Err(e) = flush_spool(&l, spool).await
    {
        offline = Some(e);
    }

    status.policies = held
        .iter()
        .map(|p| {
            let last = sched.last.get(&p.policy_id).map(|(_, t)| *t);
            let last_t = last.and_then(|t| OffsetDateTime::from_unix_timestamp(t).ok());
            PolicyStatus {
                policy_id: p.policy_id.clone(),
                version: p.version,
                schedule: p.schedule.clone(),
                last_scan: last_t.map(fmt),
                next_scan: last_t.and_then(|t| next_after(&p.schedule, t)).map(fmt),
            }
        })
        .collect();
    match offline {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Runs the loop until `shutdown` turns true. Failures are logged and retried at the next
/// beat; an expired certificate is reported with its recovery path at every beat. A revoked
/// agent stops: the server will refuse it whatever it retries, so the loop returns the error
/// (the spool is left as it is, for after re-enrolment).
pub async fn run(
    state: &StateDir,
    opts: &AgentOptions,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), AgentError> {
    state.load_identity()?;
    loop {
        let interval = match run_once(state, opts).await {
            Ok(_) => None,
            Err(e @ AgentError::Revoked { .. }) => {
                tracing::error!("{e}");
                return Err(e);
            }
            Err(e) => {
                match &e {
                    AgentError::CertificateExpired { .. } => tracing::error!("{e}"),
                    e if e.is_transient() => {
                        tracing::warn!(error = %e, "server unreachable; results stay in the spool")
                    }
                    e => tracing::error!(error = %e, "agent loop failed"),
                }
                None::<Duration>
            }
        };
        let beat = interval.or(opts.heartbeat).unwrap_or_else(|| {
            Duration::from_secs(
                state
                    .load_identity()
                    .map(|i| i.heartbeat_secs)
                    .unwrap_or(60)
                    .max(1),
            )
        });
        // ±10 % jitter so agents started together drift apart.
        let jitter = 0.9 + rand::random::<f64>() * 0.2;
        let sleep = beat.mul_f64(jitter);
        tokio::select! {
            _ = shutdown.changed() => return Ok(()),
            _ = tokio::time::sleep(sleep) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scans_keep_the_command_costs_and_survive_a_broken_cache() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::new(dir.path());
        let held = HeldPolicy {
            policy_id: "costs".into(),
            version: 1,
            digest: "00".repeat(32),
            schedule: "1h".into(),
        };
        let path = content_path(&state, &held.policy_id);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(
            &path,
            "policy:\n  id: costs\n  file: costs.yml\n  name: Costs\n  description: d\nchecks:\n  \
             - id: 1\n    title: t\n    condition: all\n    rules:\n      \
             - 'c:echo rampart-cost -> r:rampart-cost'\n",
        )
        .unwrap();
        let opts = AgentOptions {
            report_observables: false,
            ..AgentOptions::default()
        };
        let argv = ["echo".to_string(), "rampart-cost".to_string()];
        // Scans, checks the result and that the cache now holds the command's duration.
        let scan_and_check = || {
            let run = scan(&state, &opts, &held, "test").unwrap();
            assert_eq!(
                run.report.policies[0].checks[0].status,
                rampart_core::Status::Pass
            );
            let costs = rampart_engine::costs::CommandCosts::load(&state.command_costs()).unwrap();
            let root = std::path::Path::new("/");
            assert!(costs.expected(root, &argv).is_some(), "{costs:?}");
        };
        scan_and_check();
        // A broken cache costs the ordering, never the scan, and is rewritten whole.
        std::fs::write(state.command_costs(), "{ broken").unwrap();
        scan_and_check();
    }

    #[test]
    fn renewal_is_near_two_thirds_and_stable() {
        let nb = OffsetDateTime::from_unix_timestamp(1_790_000_000).unwrap();
        let na = nb + time::Duration::hours(24);
        let mut seen = Vec::new();
        for serial in ["01", "02", "03", "04", "05", "06"] {
            let r = renew_at(nb, na, serial);
            assert_eq!(r, renew_at(nb, na, serial), "same serial, same time");
            let h = (r - nb).as_seconds_f64() / 3600.0;
            assert!((14.8..=17.2).contains(&h), "{serial}: {h} h");
            seen.push(r);
        }
        seen.sort();
        seen.dedup();
        assert!(seen.len() > 1, "jitter spreads renewals");
    }
}
