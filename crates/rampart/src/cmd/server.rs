//! `rampart server` and `rampart ca`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, anyhow};
use rampart_server::{RunningServer, ServerConfig};

use crate::cli::{CaCommand, ServerArgs};
use crate::exit;

/// The CA passphrase: from a file, else RAMPART_CA_PASSPHRASE. Never a command-line argument
/// (it would show in `ps`).
fn passphrase(file: Option<&Path>) -> anyhow::Result<Vec<u8>> {
    let p = match file {
        Some(f) => std::fs::read(f).with_context(|| format!("--passphrase-file {}", f.display()))?,
        None => std::env::var("RAMPART_CA_PASSPHRASE")
            .map_err(|_| {
                anyhow!(
                    "the CA keys are encrypted at rest: set RAMPART_CA_PASSPHRASE or pass --passphrase-file FILE"
                )
            })?
            .into_bytes(),
    };
    let p: Vec<u8> = p.trim_ascii_end().to_vec();
    if p.len() < 12 {
        return Err(anyhow!("the CA passphrase must be at least 12 characters"));
    }
    Ok(p)
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// Runs the server until SIGINT or SIGTERM.
pub fn run(args: ServerArgs) -> anyhow::Result<ExitCode> {
    let mut config = ServerConfig::new(
        args.data_dir.clone(),
        passphrase(args.passphrase_file.as_deref())?,
    );
    config.database_url = args.database_url;
    config.listen = args.listen;
    config.agent_listen = args.agent_listen;
    config.names = args.names;
    config.public_url = args.public_url;
    config.agent_public_url = args.agent_public_url;
    config.heartbeat = Duration::from_secs(args.heartbeat_secs.max(1));
    config.offline_after_missed = args.offline_after_missed;
    config.retention_days = args.retention_days;
    config.event_retention_days = args.event_retention_days;
    config.max_auth_failures = args.max_auth_failures;
    config.rate_limits = rampart_server::RateLimits {
        login_per_minute: args.rate_login,
        enrol_per_minute: args.rate_enrol,
        lookup_per_minute: args.rate_lookup,
        export_per_minute: args.rate_export,
    };
    config.session_idle = std::time::Duration::from_secs(args.session_idle_minutes * 60);
    config.session_max = std::time::Duration::from_secs(args.session_max_hours * 3600);
    if let Some(issuer) = args.oidc_issuer.clone() {
        let secret = match &args.oidc_client_secret_file {
            Some(f) => std::fs::read_to_string(f)
                .with_context(|| format!("--oidc-client-secret-file {}", f.display()))?,
            None => std::env::var("RAMPART_OIDC_CLIENT_SECRET").map_err(|_| {
                anyhow::anyhow!(
                    "--oidc-issuer needs the client secret: --oidc-client-secret-file or RAMPART_OIDC_CLIENT_SECRET"
                )
            })?,
        };
        let default_role = args
            .oidc_default_role
            .as_deref()
            .map(|r| format!("*={r}").parse::<rampart_access::oidc::RoleMapping>())
            .transpose()
            .map_err(|e| anyhow::anyhow!("--oidc-default-role: {e}"))?;
        config.oidc = Some(rampart_server::OidcConfig {
            issuer,
            client_id: args.oidc_client_id.clone(),
            client_secret: secret.trim().to_owned(),
            scopes: args.oidc_scopes.clone(),
            role_claim: args.oidc_role_claim.clone(),
            mappings: args.oidc_roles.clone(),
            default_role,
        });
    }
    config.attestation_alg = args.attestation_alg;
    config.audit_checkpoints = rampart_server::audit::CheckpointPolicy {
        every_entries: args.audit_checkpoint_entries,
        every: std::time::Duration::from_secs(args.audit_checkpoint_secs),
    };
    runtime()?.block_on(async move {
        let server = RunningServer::start(config).await?;
        write_root(&args.data_dir, &server.root_pem)?;
        println!(
            "rampart server: API {} (agents on port {})",
            server.api_url,
            server.agent_addr.port()
        );
        println!("root CA: {}", args.data_dir.join("root-ca.pem").display());
        if let Some(path) = &server.initial_admin_password_file {
            // Never the password itself: stdout goes to the journal under the shipped unit.
            println!(
                "admin password written to {} (mode 0600; one-time: `rampart login --user admin` sets a new one, then delete the file)",
                path.display()
            );
        }
        use std::io::Write;
        let _ = std::io::stdout().flush();
        server.run_until(shutdown_signal()).await;
        anyhow::Ok(())
    })?;
    Ok(ExitCode::from(exit::OK))
}

/// The root certificate is public; writing it next to the data lets local admin commands trust
/// the server without copying it around.
fn write_root(data_dir: &Path, pem: &str) -> anyhow::Result<()> {
    let path: PathBuf = data_dir.join("root-ca.pem");
    if std::fs::read_to_string(&path).ok().as_deref() != Some(pem) {
        super::write_atomic(&path, pem.as_bytes())?;
    }
    Ok(())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("shutting down");
}

/// `rampart ca …`.
pub fn ca(cmd: CaCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        CaCommand::RotateIntermediate {
            data_dir,
            database_url,
            passphrase_file,
            json,
        } => {
            let pass = passphrase(passphrase_file.as_deref())?;
            let fp = runtime()?.block_on(rampart_server::rotate_intermediate(
                &data_dir,
                database_url.as_deref(),
                &pass,
            ))?;
            if json {
                println!("{}", serde_json::json!({"intermediate_sha256": fp}));
            } else {
                println!(
                    "new intermediate CA installed (SHA-256 {fp}); restart every server to use it"
                );
            }
            Ok(ExitCode::from(exit::OK))
        }
    }
}
