//! Result ingestion with group commit.
//!
//! Handlers queue validated runs and wait; one writer takes whatever is queued (up to a batch)
//! and stores it in a single transaction, then answers every waiting handler. A run is
//! acknowledged only after its transaction committed, so an acknowledged result survives a
//! crash; batching turns hundreds of small commits per second into a few large ones.

use std::sync::Arc;

use rampart_store::{IngestOutcome, NewRun, RunNotice, StoreError};
use tokio::sync::{oneshot, watch};

use crate::app::App;

const MAX_BATCH: usize = 64;

pub(crate) struct IngestJob {
    pub run: NewRun,
    pub reply: oneshot::Sender<Result<IngestOutcome, String>>,
}

/// Queues a run and waits until it is durable (or refused).
pub(crate) async fn submit(app: &App, run: NewRun) -> Result<IngestOutcome, String> {
    let (reply, rx) = oneshot::channel();
    app.ingest_tx
        .send(IngestJob { run, reply })
        .await
        .map_err(|_| "server is shutting down".to_string())?;
    rx.await
        .map_err(|_| "server is shutting down".to_string())?
}

/// Transactions in flight at once: SQLite has one writer anyway; PostgreSQL uses a core per
/// connection, so a few concurrent batches keep both cores busy.
fn writers(app: &App) -> usize {
    match app.store.backend() {
        rampart_store::Backend::Sqlite => 1,
        rampart_store::Backend::Postgres => 4,
    }
}

pub(crate) async fn writer(app: Arc<App>, mut shutdown: watch::Receiver<bool>) {
    let Some(mut rx) = app
        .ingest_rx
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take()
    else {
        return;
    };
    let slots = writers(&app);
    let permits = Arc::new(tokio::sync::Semaphore::new(slots));
    loop {
        let first = tokio::select! {
            _ = shutdown.changed() => None,
            job = rx.recv() => job,
        };
        let Some(first) = first else {
            // Shutdown: store what is already queued, then stop.
            rx.close();
            let mut rest = Vec::new();
            while let Ok(job) = rx.try_recv() {
                rest.push(job);
            }
            if !rest.is_empty() {
                commit(&app, rest).await;
            }
            // Wait for batches still committing.
            let _all = permits
                .acquire_many(u32::try_from(slots).unwrap_or(1))
                .await;
            return;
        };
        // Wait for a free writer first: runs arriving meanwhile join this batch.
        let Ok(permit) = permits.clone().acquire_owned().await else {
            return;
        };
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let app = app.clone();
        tokio::spawn(async move {
            commit(&app, batch).await;
            drop(permit);
        });
    }
}

async fn commit(app: &App, batch: Vec<IngestJob>) {
    let (runs, replies): (Vec<NewRun>, Vec<_>) =
        batch.into_iter().map(|j| (j.run, j.reply)).unzip();
    match app.store.ingest_runs(&runs).await {
        Ok(outcomes) => {
            app.metrics.runs(&runs, &outcomes);
            app.wrote_events();
            let stored: Vec<RunNotice> = runs
                .iter()
                .zip(&outcomes)
                .filter(|(_, o)| **o == IngestOutcome::Stored)
                .map(|(r, _)| notice(r))
                .collect();
            for (reply, outcome) in replies.into_iter().zip(outcomes) {
                let _ = reply.send(Ok(outcome));
            }
            // After the answers: telling the dashboards never delays an agent.
            crate::live::announce(app, stored).await;
        }
        Err(e) if runs.len() > 1 => {
            // One bad run must not sink the others: retry them one by one.
            tracing::warn!(error = %e, runs = runs.len(), "batch ingestion failed; retrying runs one by one");
            app.metrics.ingest_error("batch");
            let mut stored = Vec::new();
            for (run, reply) in runs.iter().zip(replies) {
                let r = app.store.ingest_runs(std::slice::from_ref(run)).await;
                match &r {
                    Ok(outcomes) => app.metrics.runs(std::slice::from_ref(run), outcomes),
                    Err(e) => {
                        tracing::warn!(error = %e, run = %run.id, agent = %run.agent_id, "run could not be stored");
                        app.metrics.run_failed();
                    }
                }
                if matches!(r.as_deref(), Ok([IngestOutcome::Stored])) {
                    stored.push(notice(run));
                }
                let _ = reply.send(single(r));
            }
            crate::live::announce(app, stored).await;
        }
        Err(e) => {
            if let Some(run) = runs.first() {
                tracing::warn!(error = %e, run = %run.id, agent = %run.agent_id, "run could not be stored");
            }
            for reply in replies {
                app.metrics.run_failed();
                let _ = reply.send(Err(e.to_string()));
            }
        }
    }
}

/// What the dashboards are told about a stored run.
fn notice(r: &NewRun) -> RunNotice {
    RunNotice {
        agent: r.agent_id.clone(),
        run: r.id.clone(),
        policy: r.policy_id.clone(),
    }
}

fn single(r: Result<Vec<IngestOutcome>, StoreError>) -> Result<IngestOutcome, String> {
    match r {
        Ok(v) => v.into_iter().next().ok_or_else(|| "no outcome".to_string()),
        Err(e) => Err(e.to_string()),
    }
}
