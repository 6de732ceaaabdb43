//! Rampart's fleet server.
//!
//! Two listeners, both TLS with a certificate from the server's own CA:
//!
//! * the **API port** (`/api/v1`): enrolment (token + CSR, no client certificate), the CA's root
//!   and CRL, and the admin API (bearer token);
//! * the **agent port** (`/agent/v1`): mutual TLS only — a client certificate chained to the
//!   root and not revoked is required at the handshake, checked against a revocation set that
//!   changes without a restart.
//!
//! State lives in the [`rampart_store::Store`] (SQLite or PostgreSQL); the process keeps only
//! caches it can rebuild, so several replicas can share one PostgreSQL database. The server
//! never evaluates checks: agents scan with the engine and post results.

mod accounts;
mod alerts;
pub mod api;
mod app;
mod attest;
pub mod audit;
mod bootstrap;
mod config;
mod enrolment;
mod error;
mod events;
mod ingest;
mod intel;
mod live;
mod metrics;
mod oidc;
pub mod pace;
mod policies;
mod reports;
mod routes;
mod seal;
mod tls;
mod ui;
mod waivers;

pub use bootstrap::rotate_intermediate;
pub use config::ServerConfig;
pub use error::ServerError;
pub use oidc::OidcConfig;
pub use routes::openapi::openapi_document;
pub use routes::rate_limit::RateLimits;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::sync::watch;
use tokio::task::JoinSet;

/// A started server.
pub struct RunningServer {
    /// Where the API port listens.
    pub api_addr: SocketAddr,
    /// Where the agent port listens.
    pub agent_addr: SocketAddr,
    /// The first admin's one-time password, only on the start that set it (it is stored
    /// hashed and must be changed at the first login).
    pub initial_admin_password: Option<String>,
    /// The 0600 file in the data directory it was written to.
    pub initial_admin_password_file: Option<std::path::PathBuf>,
    /// The root CA certificate, PEM.
    pub root_pem: String,
    /// Base URL of the API, e.g. `https://localhost:8443`.
    pub api_url: String,
    shutdown: watch::Sender<bool>,
    tasks: JoinSet<()>,
    app: Arc<app::App>,
}

impl RunningServer {
    /// Starts a server: opens the store, loads or creates the CA, binds both ports.
    pub async fn start(config: ServerConfig) -> Result<RunningServer, ServerError> {
        let api_listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|e| ServerError::Bind {
                addr: config.listen,
                source: e,
            })?;
        let agent_listener = tokio::net::TcpListener::bind(config.agent_listen)
            .await
            .map_err(|e| ServerError::Bind {
                addr: config.agent_listen,
                source: e,
            })?;
        let api_addr = api_listener.local_addr().map_err(|e| ServerError::Bind {
            addr: config.listen,
            source: e,
        })?;
        let agent_addr = agent_listener.local_addr().map_err(|e| ServerError::Bind {
            addr: config.agent_listen,
            source: e,
        })?;
        let boot = bootstrap::bootstrap(config, api_addr, agent_addr).await?;
        let app = boot.app.clone();
        let (shutdown, rx) = watch::channel(false);
        let mut tasks = JoinSet::new();
        let api_tls = tls::api_tls_config(&app)?;
        let agent_tls = tls::agent_tls_config(&app)?;
        tasks.spawn(tls::serve(
            api_listener,
            api_tls,
            routes::api_router(app.clone()),
            app.clone(),
            rx.clone(),
        ));
        tasks.spawn(tls::serve(
            agent_listener,
            agent_tls,
            routes::agent_router(app.clone()),
            app.clone(),
            rx.clone(),
        ));
        tasks.spawn(app::background(app.clone(), rx.clone()));
        tasks.spawn(app::wal_checkpoints(app.clone(), rx.clone()));
        tasks.spawn(intel::background(app.clone(), rx.clone()));
        tasks.spawn(ingest::writer(app.clone(), rx.clone()));
        tasks.spawn(attest::issuer(app.clone(), rx.clone()));
        tasks.spawn(waivers::expiry(app.clone(), rx.clone()));
        tasks.spawn(live::relay(app.clone(), rx.clone()));
        tasks.spawn(events::dispatcher(app.clone(), rx.clone()));
        tasks.spawn(alerts::evaluator(app.clone(), rx.clone()));
        tasks.spawn(audit::writer(app.clone(), rx));
        if let Err(e) = audit::record_start(&app).await {
            tracing::error!(error = ?e, "could not record the server start in the audit log");
        }
        // Failing here is not fatal: the first attestation tries again.
        if let Err(e) = attest::ensure_keys(&app).await {
            tracing::error!(error = ?e, "could not create the attestation keys");
        }
        tasks.spawn(attest::open_signing_key(app.clone()));
        tracing::info!(api = %app.api_url, agent = %app.agent_url, backend = ?app.store.backend(), "rampart server listening");
        Ok(RunningServer {
            api_addr,
            agent_addr,
            initial_admin_password: boot.initial_admin_password,
            initial_admin_password_file: boot.initial_admin_password_file,
            root_pem: app.ca().root_pem().to_string(),
            api_url: app.api_url.clone(),
            shutdown,
            tasks,
            app,
        })
    }

    /// Stops accepting, lets requests in flight finish, flushes heartbeats, closes the store.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        while self.tasks.join_next().await.is_some() {}
        self.app.flush_heartbeats().await;
        self.app.store.close().await;
    }

    /// Runs until `stop` resolves, then shuts down.
    pub async fn run_until(self, stop: impl std::future::Future<Output = ()>) {
        stop.await;
        self.shutdown().await;
    }
}
