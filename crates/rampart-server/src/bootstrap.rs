//! First start and every start: store, CA, token signer, admin token.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rampart_access::Role;
use rampart_pki::{Ca, CaFiles, TokenSigner};
use rampart_store::{CaMaterial, NewUser, Store, User};
use time::OffsetDateTime;

use crate::app::App;
use crate::{ServerConfig, ServerError};

pub(crate) struct Boot {
    pub app: Arc<App>,
    pub initial_admin_password: Option<String>,
    pub initial_admin_password_file: Option<std::path::PathBuf>,
}

/// The first admin's user name.
pub const FIRST_ADMIN: &str = "admin";

/// File (in the data directory) the first admin's one-time password is written to, 0600:
/// never to stdout, which the shipped unit sends to the journal for any reader of the logs.
pub const ADMIN_PASSWORD_FILE: &str = "admin-password";

fn data_dir_error(path: &std::path::Path, source: std::io::Error) -> ServerError {
    ServerError::DataDir {
        path: path.display().to_string(),
        source,
    }
}

/// The data directory holds the database (token hashes, the encrypted CA keys) and the first
/// admin token: 0700, whatever the umask, and tightened when an older release left it wider.
fn secure_data_dir(dir: &std::path::Path) -> Result<(), ServerError> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| data_dir_error(dir, e))?;
    let mode = std::fs::metadata(dir)
        .map_err(|e| data_dir_error(dir, e))?
        .permissions()
        .mode()
        & 0o777;
    if mode != 0o700 {
        tracing::warn!(dir = %dir.display(), mode = format!("{mode:o}"), "data directory was not 0700; tightening it");
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| data_dir_error(dir, e))?;
    }
    Ok(())
}

/// The SQLite database and its journal files, 0600. A new database file is created 0600 before
/// SQLite opens it, so SQLite gives its WAL and shared-memory files the same mode.
fn secure_database_files(db: &std::path::Path) -> Result<(), ServerError> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(db)
    {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(data_dir_error(db, e)),
    }
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut name = db.as_os_str().to_owned();
        name.push(suffix);
        let path = std::path::PathBuf::from(name);
        if path.exists() {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
                .map_err(|e| data_dir_error(&path, e))?;
        }
    }
    Ok(())
}

/// Writes the first admin's one-time password to a 0600 file, replacing one an earlier start
/// wrote whose password never reached the store.
fn write_admin_password(
    dir: &std::path::Path,
    password: &str,
) -> Result<std::path::PathBuf, ServerError> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let path = dir.join(ADMIN_PASSWORD_FILE);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&path)
        .map_err(|e| data_dir_error(&path, e))?;
    // `mode` applies only when the file is created.
    f.set_permissions(std::fs::Permissions::from_mode(0o600))
        .and_then(|()| f.write_all(format!("{password}\n").as_bytes()))
        .and_then(|()| f.sync_all())
        .map_err(|e| data_dir_error(&path, e))?;
    Ok(path)
}

/// The first admin's one-time password, when no enabled admin can log in yet: on the first
/// start (the admin is created), and after an upgrade from admin tokens (the migrated admin has
/// no password). The file first: a password stored but never handed out would lock the admin out.
async fn first_admin(
    store: &Store,
    data_dir: &std::path::Path,
) -> Result<Option<(String, std::path::PathBuf)>, ServerError> {
    let users = store.users().await?;
    let admins: Vec<&User> = users
        .iter()
        .filter(|u| u.role == Role::Admin && u.disabled_at.is_none())
        .collect();
    if admins
        .iter()
        .any(|u| u.has_password || u.oidc_subject.is_some())
    {
        return Ok(None);
    }
    let password = rampart_access::secret::new_one_time_password();
    let phc = tokio::task::spawn_blocking({
        let password = password.clone();
        move || rampart_access::password::hash(&password)
    })
    .await
    .map_err(|e| ServerError::FirstAdmin(e.to_string()))?
    .map_err(|e| ServerError::FirstAdmin(e.to_string()))?;
    let path = write_admin_password(data_dir, &password)?;
    let now = OffsetDateTime::now_utc();
    let stored = match admins.first() {
        Some(admin) => store.set_first_password(&admin.name, &phc, now).await?,
        None => match store
            .insert_user(&NewUser {
                name: FIRST_ADMIN.to_owned(),
                role: Role::Admin,
                groups: Vec::new(),
                password_hash: Some(phc),
                must_change_password: true,
                oidc_subject: None,
                created_at: now,
            })
            .await
        {
            Ok(_) => true,
            Err(rampart_store::StoreError::Conflict { .. }) => false,
            Err(e) => return Err(e.into()),
        },
    };
    if !stored {
        // Another replica on the same database set the first admin's password at the same
        // moment; its data directory holds the password, and this one must not.
        let _ = std::fs::remove_file(&path);
        return Ok(None);
    }
    Ok(Some((password, path)))
}

/// Hash under which an admin token is stored.
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
    secure_data_dir(&config.data_dir)?;
    let store = match &config.database_url {
        Some(url) => Store::open(url).await?,
        None => {
            let db = config.data_dir.join("rampart.db");
            secure_database_files(&db)?;
            Store::open_sqlite(&db).await?
        }
    };
    let (ca, tokens) = load_or_create_ca(&store, &config.passphrase).await?;
    let audit_key =
        crate::audit::load_or_create_key(&store, &config.passphrase, &ca.root_fingerprint())
            .await?;

    let (initial_admin_password, initial_admin_password_file) =
        first_admin(&store, &config.data_dir).await?.unzip();
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
    let oidc = config
        .oidc
        .clone()
        .map(|c| crate::oidc::Oidc::new(c, &api_url))
        .transpose()
        .map_err(ServerError::Oidc)?;
    let app = Arc::new(App::new(
        store, ca, tokens, config, api_url, agent_url, intel, audit_key, oidc,
    ));
    app.refresh_revocations().await?;
    Ok(Boot {
        app,
        initial_admin_password,
        initial_admin_password_file,
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
    use rustls::pki_types::pem::PemObject;
    let der = rustls::pki_types::CertificateDer::from_pem_slice(new.cert_pem.as_bytes())
        .map_err(|e| ServerError::IncompleteCa(e.to_string()))?;
    let fingerprint = rampart_pki::fingerprint(&der);
    // Run on the server's machine with the passphrase, not through the API: the actor is the
    // local account that ran it.
    let actor = format!(
        "local:{}",
        std::env::var("USER").unwrap_or_else(|_| "unknown".into())
    );
    let event = rampart_audit::Event::new(
        actor,
        "ca.rotate_intermediate",
        "ca:intermediate",
        rampart_audit::Outcome::Success,
    )
    .via("cli")
    .detail("sha256", fingerprint.clone());
    store.audit_append(&[event], now).await?;
    store.close().await;
    tracing::warn!("intermediate CA rotated; restart the servers");
    Ok(fingerprint)
}
