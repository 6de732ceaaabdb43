//! First start and every start: store, CA, token signer, admin token.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rampart_pki::{Ca, CaFiles, TokenSigner};
use rampart_store::{CaMaterial, Store};
use rand::RngCore;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::app::App;
use crate::{ServerConfig, ServerError};

pub(crate) struct Boot {
    pub app: Arc<App>,
    pub initial_admin_token: Option<String>,
}

/// Hash under which an admin token is stored.
pub(crate) fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn files(m: &CaMaterial) -> CaFiles {
    CaFiles {
        cert_pem: m.cert_pem.clone(),
        key_pem: m.key_pem.clone(),
    }
}

fn material(name: &str, f: &CaFiles, now: OffsetDateTime) -> CaMaterial {
    CaMaterial {
        name: name.into(),
        cert_pem: f.cert_pem.clone(),
        key_pem: f.key_pem.clone(),
        created_at: now,
    }
}

/// Loads the CA and token signer, creating them on first start. Replicas starting together on
/// one database race to insert; the loser loads the winner's (retrying while the winner is
/// still writing its three records).
async fn load_or_create_ca(
    store: &Store,
    passphrase: &[u8],
) -> Result<(Ca, TokenSigner), ServerError> {
    let now = OffsetDateTime::now_utc();
    if store.ca_material("root").await?.is_none() {
        let (_, root, inter) = Ca::create(passphrase, now)?;
        let (_, signer) = TokenSigner::generate(passphrase)?;
        if store
            .insert_ca_material_if_absent(&material("root", &root, now))
            .await?
        {
            store
                .insert_ca_material_if_absent(&material("intermediate", &inter, now))
                .await?;
            store
                .insert_ca_material_if_absent(&material("token-signer", &signer, now))
                .await?;
            tracing::info!("created a new CA (root + intermediate) and enrolment token key");
        }
    }
    for attempt in 0..50 {
        let root = store.ca_material("root").await?;
        let inter = store.ca_material("intermediate").await?;
        let signer = store.ca_material("token-signer").await?;
        if let (Some(root), Some(inter), Some(signer)) = (root, inter, signer) {
            let ca = Ca::load(&files(&root), &files(&inter), passphrase)?;
            let tokens = TokenSigner::load(&files(&signer), passphrase)?;
            return Ok((ca, tokens));
        }
        if attempt == 49 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Err(ServerError::IncompleteCa(
        "root present but intermediate or token key missing after 10 s".into(),
    ))
}

pub(crate) async fn bootstrap(
    config: ServerConfig,
    api_addr: SocketAddr,
    agent_addr: SocketAddr,
) -> Result<Boot, ServerError> {
    std::fs::create_dir_all(&config.data_dir).map_err(|e| ServerError::DataDir {
        path: config.data_dir.display().to_string(),
        source: e,
    })?;
    let store = match &config.database_url {
        Some(url) => Store::open(url).await?,
        None => Store::open_sqlite(&config.data_dir.join("rampart.db")).await?,
    };
    let (ca, tokens) = load_or_create_ca(&store, &config.passphrase).await?;

    let initial_admin_token = if store.has_admin_token().await? {
        None
    } else {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        let token = format!("rmp_admin_{}", hex::encode(bytes));
        store
            .add_admin_token(
                &token_hash(&token),
                "initial admin token",
                OffsetDateTime::now_utc(),
            )
            .await?;
        Some(token)
    };

    let host = config
        .names
        .first()
        .cloned()
        .unwrap_or_else(|| "localhost".into());
    let host_in_url = if host.contains(':') {
        format!("[{host}]")
    } else {
        host
    };
    let api_url = config
        .public_url
        .clone()
        .unwrap_or_else(|| format!("https://{host_in_url}:{}", api_addr.port()));
    let agent_url = config
        .agent_public_url
        .clone()
        .unwrap_or_else(|| format!("https://{host_in_url}:{}", agent_addr.port()));
    let api_url = api_url.trim_end_matches('/').to_string();
    let agent_url = agent_url.trim_end_matches('/').to_string();
    let intel = crate::intel::Intel::load(&store).await?;
    let app = Arc::new(App::new(
        store, ca, tokens, config, api_url, agent_url, intel,
    ));
    app.refresh_revocations().await?;
    Ok(Boot {
        app,
        initial_admin_token,
    })
}

/// Replaces the intermediate CA with a new one signed by the same root; returns the new
/// intermediate's SHA-256. Servers pick it up at their next start. Agents need nothing: they
/// trust the root, their current certificates (from the old intermediate) stay valid until
/// they expire, and their next renewal comes from the new intermediate.
pub async fn rotate_intermediate(
    data_dir: &std::path::Path,
    database_url: Option<&str>,
    passphrase: &[u8],
) -> Result<String, ServerError> {
    let store = match database_url {
        Some(url) => Store::open(url).await?,
        None => Store::open_sqlite(&data_dir.join("rampart.db")).await?,
    };
    let root = store.ca_material("root").await?.ok_or_else(|| {
        ServerError::IncompleteCa("no CA in this database yet; start the server once first".into())
    })?;
    let inter = store
        .ca_material("intermediate")
        .await?
        .ok_or_else(|| ServerError::IncompleteCa("no intermediate".into()))?;
    let ca = Ca::load(&files(&root), &files(&inter), passphrase)?;
    let now = OffsetDateTime::now_utc();
    let (_, new) = ca.rotate_intermediate(passphrase, now)?;
    store
        .replace_ca_material(&material("intermediate", &new, now))
        .await?;
    store.close().await;
    use rustls::pki_types::pem::PemObject;
    let der = rustls::pki_types::CertificateDer::from_pem_slice(new.cert_pem.as_bytes())
        .map_err(|e| ServerError::IncompleteCa(e.to_string()))?;
    tracing::warn!("intermediate CA rotated; restart the servers");
    Ok(rampart_pki::fingerprint(&der))
}
