//! Attestation signing keys and issued attestations.
//!
//! Keys go through three states: `next` (published in the JWKS, not yet signing), `current`
//! (signing) and `retired` (published for a while longer, then only kept so old bundles can be
//! explained). A partial unique index allows one `next` and one `current`, so two replicas
//! cannot both create or rotate keys. Private keys arrive encrypted; this module never sees
//! a plaintext key.

use sqlx::Row;
use time::OffsetDateTime;

use crate::{Store, StoreError, from_secs, on_pool, on_reader, secs};

/// A stored signing key.
#[derive(Debug, Clone, PartialEq)]
pub struct AttestationKey {
    /// RFC 7638 thumbprint.
    pub kid: String,
    /// `EdDSA`, `ES256` or `RS256`.
    pub alg: String,
    /// `next`, `current` or `retired`.
    pub state: String,
    /// The public JWK's JSON text.
    pub public_jwk: String,
    /// The private key, passphrase-encrypted PKCS#8 PEM.
    pub private_key: String,
    /// Published.
    pub created_at: OffsetDateTime,
    /// Began signing.
    pub activated_at: Option<OffsetDateTime>,
    /// Stopped signing.
    pub retired_at: Option<OffsetDateTime>,
}

/// What a rotation changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotation {
    /// The key that stopped signing.
    pub retired: Option<String>,
    /// The key that signs from now on (the previous `next`).
    pub current: String,
    /// The key published for the next rotation.
    pub next: String,
}

/// A stored attestation.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredAttestation {
    /// Its id (`jti`).
    pub jti: String,
    /// The run it attests.
    pub run_id: String,
    /// Agent.
    pub agent_id: String,
    /// Policy.
    pub policy_id: String,
    /// Signing key.
    pub kid: String,
    /// compliant | noncompliant | partial.
    pub status: String,
    /// Score.
    pub score: f64,
    /// The run's start.
    pub started_at: OffsetDateTime,
    /// Issued.
    pub issued_at: OffsetDateTime,
    /// Expires.
    pub expires_at: OffsetDateTime,
    /// The audit entry that recorded the issue.
    pub log_index: u64,
    /// The compact JWS.
    pub jws: String,
    /// Whether a run of the same agent and policy that started later has an attestation.
    pub stale: bool,
}

/// A run's stored texts, for its evidence document.
#[derive(Debug, Clone, PartialEq)]
pub struct RunEvidence {
    /// Run id.
    pub run_id: String,
    /// Agent id.
    pub agent_id: String,
    /// Policy id.
    pub policy_id: String,
    /// Version number, if any.
    pub policy_version: Option<i64>,
    /// Policy content SHA-256.
    pub policy_digest: String,
    /// What started it.
    pub trigger: String,
    /// Start (Unix seconds).
    pub started_at: i64,
    /// End (Unix seconds).
    pub finished_at: i64,
    /// The scanner.
    pub generator: String,
    /// The results digest.
    pub results_digest: String,
    /// The host's stored JSON.
    pub host: String,
    /// The warnings' stored JSON.
    pub warnings: String,
    /// Each check's stored outcome JSON, in natural check id order.
    pub checks: Vec<String>,
    /// SHA-256 (hex) of the certificate it was posted with (empty before this was kept).
    pub cert_sha256: String,
    /// That certificate's expiry.
    pub cert_not_after: OffsetDateTime,
}

macro_rules! key_row {
    ($r:expr) => {{
        let r = $r;
        let at = |c: &str| -> Result<Option<OffsetDateTime>, sqlx::Error> {
            Ok(r.try_get::<Option<i64>, _>(c)?.map(from_secs))
        };
        Ok::<_, StoreError>(AttestationKey {
            kid: r.try_get("kid")?,
            alg: r.try_get("alg")?,
            state: r.try_get("state")?,
            public_jwk: r.try_get("public_jwk")?,
            private_key: r.try_get("private_key")?,
            created_at: from_secs(r.try_get("created_at")?),
            activated_at: at("activated_at")?,
            retired_at: at("retired_at")?,
        })
    }};
}

macro_rules! attestation_row {
    ($r:expr) => {{
        let r = $r;
        Ok::<_, StoreError>(StoredAttestation {
            jti: r.try_get("jti")?,
            run_id: r.try_get("run_id")?,
            agent_id: r.try_get("agent_id")?,
            policy_id: r.try_get("policy_id")?,
            kid: r.try_get("kid")?,
            status: r.try_get("status")?,
            score: r.try_get("score")?,
            started_at: from_secs(r.try_get("started_at")?),
            issued_at: from_secs(r.try_get("issued_at")?),
            expires_at: from_secs(r.try_get("expires_at")?),
            log_index: u64::try_from(r.try_get::<i64, _>("log_index")?)
                .map_err(|e| StoreError::corrupt("attestations.log_index", e))?,
            jws: r.try_get("jws")?,
            stale: r.try_get::<i64, _>("stale")? != 0,
        })
    }};
}

const KEY_COLUMNS: &str =
    "kid, alg, state, public_jwk, private_key, created_at, activated_at, retired_at";

/// The attestation columns, and whether a later run of the same agent and policy has one.
macro_rules! attestation_select {
    ($where:literal) => {
        concat!(
            "SELECT a.jti, a.run_id, a.agent_id, a.policy_id, a.kid, a.status, a.score, \
             a.started_at, a.issued_at, a.expires_at, a.log_index, a.jws, \
             CASE WHEN EXISTS (SELECT 1 FROM attestations n WHERE n.agent_id = a.agent_id \
             AND n.policy_id = a.policy_id AND (n.started_at > a.started_at \
             OR (n.started_at = a.started_at AND n.issued_at > a.issued_at))) \
             THEN CAST(1 AS BIGINT) ELSE CAST(0 AS BIGINT) END AS stale FROM attestations a ",
            $where
        )
    };
}

/// Binds a key's columns in [`INSERT_KEY`]'s order (a macro: the query types differ).
macro_rules! bind_key {
    ($q:expr, $k:expr) => {{
        let k = $k;
        $q.bind(&k.kid)
            .bind(&k.alg)
            .bind(&k.state)
            .bind(&k.public_jwk)
            .bind(&k.private_key)
            .bind(secs(k.created_at))
            .bind(k.activated_at.map(secs))
            .bind(k.retired_at.map(secs))
    }};
}

const INSERT_KEY: &str = "INSERT INTO attestation_keys \
     (kid, alg, state, public_jwk, private_key, created_at, activated_at, retired_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";

/// Why a batch's attestations could not be made ([`Store::record_attestations`]).
pub type SignError = Box<dyn std::error::Error + Send + Sync>;

/// The start of both backends' insert of attestation rows (a macro, for `concat!`).
macro_rules! insert_attestations {
    () => {
        "INSERT INTO attestations (jti, run_id, agent_id, policy_id, kid, status, score, \
         started_at, issued_at, expires_at, log_index, jws) "
    };
}

/// A log index as the databases' signed integer.
fn log_index(a: &StoredAttestation) -> Result<i64, StoreError> {
    i64::try_from(a.log_index).map_err(|e| StoreError::corrupt("log index", e))
}

/// Per attestation, whether it is among the `stored` (their `jti`s).
fn stored_flags(all: &[StoredAttestation], stored: &[String]) -> Vec<bool> {
    let stored: std::collections::HashSet<&str> = stored.iter().map(String::as_str).collect();
    all.iter()
        .map(|a| stored.contains(a.jti.as_str()))
        .collect()
}

/// Inserts `all` on PostgreSQL, one statement for the batch (a round trip per row is what
/// PostgreSQL pays for); a run that has one keeps it. The `jti`s stored.
async fn insert_postgres(
    conn: &mut sqlx::PgConnection,
    all: &[StoredAttestation],
) -> Result<Vec<String>, StoreError> {
    let indexes = all.iter().map(log_index).collect::<Result<Vec<_>, _>>()?;
    let text = |f: fn(&StoredAttestation) -> &str| all.iter().map(f).collect::<Vec<&str>>();
    let int = |f: fn(&StoredAttestation) -> OffsetDateTime| {
        all.iter().map(|a| secs(f(a))).collect::<Vec<i64>>()
    };
    const SQL: &str = concat!(
        insert_attestations!(),
        "SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], \
         $6::text[], $7::float8[], $8::int8[], $9::int8[], $10::int8[], $11::int8[], \
         $12::text[]) ON CONFLICT (run_id) DO NOTHING RETURNING jti"
    );
    Ok(sqlx::query_scalar(SQL)
        .bind(text(|a| &a.jti))
        .bind(text(|a| &a.run_id))
        .bind(text(|a| &a.agent_id))
        .bind(text(|a| &a.policy_id))
        .bind(text(|a| &a.kid))
        .bind(text(|a| &a.status))
        .bind(all.iter().map(|a| a.score).collect::<Vec<f64>>())
        .bind(int(|a| a.started_at))
        .bind(int(|a| a.issued_at))
        .bind(int(|a| a.expires_at))
        .bind(&indexes)
        .bind(text(|a| &a.jws))
        .fetch_all(&mut *conn)
        .await?)
}

/// Inserts `all` on SQLite in transaction `tx` of result ingestion's own connection
/// (`batch.rs`), a statement prepared once; a run that has one keeps it. The `jti`s stored.
fn insert_blocking(
    tx: &rusqlite::Transaction<'_>,
    all: &[StoredAttestation],
) -> Result<Vec<String>, StoreError> {
    use rusqlite::OptionalExtension as _;
    let mut insert = tx.prepare_cached(concat!(
        insert_attestations!(),
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12) \
         ON CONFLICT (run_id) DO NOTHING RETURNING jti"
    ))?;
    let mut stored = Vec::with_capacity(all.len());
    for a in all {
        let jti: Option<String> = insert
            .query_row(
                rusqlite::params![
                    a.jti,
                    a.run_id,
                    a.agent_id,
                    a.policy_id,
                    a.kid,
                    a.status,
                    a.score,
                    secs(a.started_at),
                    secs(a.issued_at),
                    secs(a.expires_at),
                    log_index(a)?,
                    a.jws,
                ],
                |r| r.get(0),
            )
            .optional()?;
        stored.extend(jti);
    }
    Ok(stored)
}

impl Store {
    /// Every signing key, newest first.
    pub async fn attestation_keys(&self) -> Result<Vec<AttestationKey>, StoreError> {
        let sql =
            format!("SELECT {KEY_COLUMNS} FROM attestation_keys ORDER BY created_at DESC, kid");
        on_pool!(&self.db, p => sqlx::query(sqlx::AssertSqlSafe(sql)).fetch_all(p).await?
            .into_iter().map(|r| key_row!(r)).collect())
    }

    /// One signing key.
    pub async fn attestation_key(&self, kid: &str) -> Result<Option<AttestationKey>, StoreError> {
        let sql = format!("SELECT {KEY_COLUMNS} FROM attestation_keys WHERE kid = $1");
        on_reader!(self, c => sqlx::query(sqlx::AssertSqlSafe(sql)).bind(kid).fetch_optional(c).await?
            .map(|r| key_row!(r)).transpose())
    }

    /// The id of the key signing now.
    pub async fn current_attestation_kid(&self) -> Result<Option<String>, StoreError> {
        const SQL: &str = "SELECT kid FROM attestation_keys WHERE state = 'current'";
        Ok(on_reader!(self, c => sqlx::query_scalar(SQL).fetch_optional(c).await?))
    }

    /// Stores the first `current` and `next` keys unless there are keys already; returns
    /// whether it did (two replicas starting at once: one wins, both use the winner's).
    pub async fn init_attestation_keys(
        &self,
        current: &AttestationKey,
        next: &AttestationKey,
    ) -> Result<bool, StoreError> {
        const ANY: &str = "SELECT COUNT(*) FROM attestation_keys WHERE state <> 'retired'";
        let done = on_pool!(&self.db, p => {
            let mut tx = p.begin().await?;
            let n: i64 = sqlx::query_scalar(ANY).fetch_one(&mut *tx).await?;
            if n > 0 {
                false
            } else {
                for k in [current, next] {
                    let r = bind_key!(sqlx::query(INSERT_KEY), k).execute(&mut *tx).await;
                    if let Err(e) = r {
                        return match StoreError::conflict_or(e, "attestation key", &k.kid) {
                            StoreError::Conflict { .. } => Ok(false),
                            other => Err(other),
                        };
                    }
                }
                tx.commit().await?;
                true
            }
        });
        Ok(done)
    }

    /// Rotates: the current key retires, the next key signs, `new_next` is published. Refused
    /// (conflict) when there is no next key, or when `not_published_after` is given and the
    /// next key was published after it (verifiers that fetch the JWKS rarely would not know
    /// it yet).
    pub async fn rotate_attestation_keys(
        &self,
        new_next: &AttestationKey,
        now: OffsetDateTime,
        not_published_after: Option<OffsetDateTime>,
    ) -> Result<Rotation, StoreError> {
        const LIVE: &str = "SELECT kid, state, created_at FROM attestation_keys \
                            WHERE state <> 'retired'";
        const RETIRE: &str = "UPDATE attestation_keys SET state = 'retired', retired_at = $1 \
                              WHERE state = 'current'";
        const PROMOTE: &str = "UPDATE attestation_keys SET state = 'current', activated_at = $1 \
                               WHERE state = 'next'";
        let at = secs(now);
        let rotation = on_pool!(&self.db, p => {
            let mut tx = p.begin().await?;
            let mut current = None;
            let mut next = None;
            for r in sqlx::query(LIVE).fetch_all(&mut *tx).await? {
                let kid: String = r.try_get("kid")?;
                let created: i64 = r.try_get("created_at")?;
                match r.try_get::<String, _>("state")?.as_str() {
                    "current" => current = Some(kid),
                    _ => next = Some((kid, created)),
                }
            }
            let Some((next, published)) = next else {
                return Err(StoreError::Conflict { what: "attestation key rotation", id: "no next key".into() });
            };
            if let Some(limit) = not_published_after
                && published > secs(limit)
            {
                return Err(StoreError::Conflict {
                    what: "attestation key rotation",
                    id: format!("next key {next} published at {}", from_secs(published)),
                });
            }
            sqlx::query(RETIRE).bind(at).execute(&mut *tx).await?;
            sqlx::query(PROMOTE).bind(at).execute(&mut *tx).await?;
            bind_key!(sqlx::query(INSERT_KEY), new_next)
                .execute(&mut *tx)
                .await
                .map_err(|e| StoreError::conflict_or(e, "attestation key", &new_next.kid))?;
            tx.commit().await?;
            Rotation { retired: current, current: next, next: new_next.kid.clone() }
        });
        Ok(rotation)
    }

    /// Stores attestations in one transaction; per attestation, `false` when its run already
    /// has one (a retried post racing the original): the caller answers with the stored one.
    pub async fn insert_attestations(
        &self,
        all: &[StoredAttestation],
    ) -> Result<Vec<bool>, StoreError> {
        let stored = match &self.db {
            crate::Db::Postgres(pool) => insert_postgres(&mut *pool.acquire().await?, all).await?,
            crate::Db::Sqlite(_) => {
                self.in_batch_transaction(|tx| insert_blocking(tx, all))
                    .await?
            }
        };
        Ok(stored_flags(all, &stored))
    }

    /// Issues a batch of attestations in one transaction: appends their issue `events` to the
    /// audit log (stamped `now`), signs a checkpoint covering them with the log's `key`, has
    /// `sign` make the attestations that name their entries (it gets the first entry's index,
    /// the entries being `events` in order, and the checkpoint), and stores those. Per
    /// attestation, `false` when its run already has one ([`Store::insert_attestations`]).
    /// Nothing is written when `sign` fails ([`StoreError::Attest`]).
    ///
    /// Why one transaction: the entries with their checkpoint, then the rows, were written in
    /// two, each a turn of SQLite's one writer and a sync of the log, together a third of the
    /// write turn under result ingestion (docs/performance.md). A crash between them also left entries whose
    /// attestation only the sweep would issue. On SQLite it runs on result ingestion's own
    /// connection (`batch.rs`), a statement prepared once per kind of row.
    pub async fn record_attestations<F>(
        &self,
        events: &[rampart_audit::Event],
        key: &rampart_audit::LogKey,
        now: OffsetDateTime,
        sign: F,
    ) -> Result<Vec<bool>, StoreError>
    where
        F: FnOnce(u64, &crate::StoredCheckpoint) -> Result<Vec<StoredAttestation>, SignError>,
    {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let uncovered = || StoreError::corrupt("audit checkpoint", "none covers the new entries");
        let (all, stored) = match &self.db {
            crate::Db::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                let entries =
                    crate::audit::append_signed_postgres(&mut tx, events, key, now).await?;
                let signed = entries.checkpoint.ok_or_else(uncovered)?;
                let all = sign(entries.first, &signed).map_err(StoreError::Attest)?;
                let stored = insert_postgres(&mut tx, &all).await?;
                // Last: from here to the commit other appends wait (`events::append_postgres`).
                crate::events::append_postgres(&mut tx, &entries.stream).await?;
                tx.commit().await?;
                (all, stored)
            }
            crate::Db::Sqlite(_) => {
                self.in_batch_transaction(|tx| {
                    let (first, signed) =
                        crate::audit::append_signed_blocking(tx, events, key, now)?;
                    let all =
                        sign(first, &signed.ok_or_else(uncovered)?).map_err(StoreError::Attest)?;
                    let stored = insert_blocking(tx, &all)?;
                    Ok((all, stored))
                })
                .await?
            }
        };
        Ok(stored_flags(&all, &stored))
    }

    /// Stores one attestation ([`Store::insert_attestations`]).
    pub async fn insert_attestation(&self, a: &StoredAttestation) -> Result<bool, StoreError> {
        Ok(self
            .insert_attestations(std::slice::from_ref(a))
            .await?
            .first()
            .copied()
            .unwrap_or(false))
    }

    /// The attestation of a run.
    pub async fn run_attestation(
        &self,
        run_id: &str,
    ) -> Result<Option<StoredAttestation>, StoreError> {
        const SQL: &str = attestation_select!("WHERE a.run_id = $1");
        on_reader!(self, c => sqlx::query(SQL).bind(run_id).fetch_optional(c).await?
            .map(|r| attestation_row!(r)).transpose())
    }

    /// One attestation.
    pub async fn attestation(&self, jti: &str) -> Result<Option<StoredAttestation>, StoreError> {
        const SQL: &str = attestation_select!("WHERE a.jti = $1");
        on_reader!(self, c => sqlx::query(SQL).bind(jti).fetch_optional(c).await?
            .map(|r| attestation_row!(r)).transpose())
    }

    /// An agent's attestations, optionally of one policy, the newest run first.
    pub async fn agent_attestations(
        &self,
        agent_id: &str,
        policy_id: Option<&str>,
        limit: u32,
    ) -> Result<Vec<StoredAttestation>, StoreError> {
        const SQL: &str = attestation_select!(
            "WHERE a.agent_id = $1 AND ($2 IS NULL OR a.policy_id = $2) \
             ORDER BY a.started_at DESC, a.issued_at DESC LIMIT $3"
        );
        on_pool!(&self.db, p => sqlx::query(SQL).bind(agent_id).bind(policy_id).bind(i64::from(limit))
            .fetch_all(p).await?.into_iter().map(|r| attestation_row!(r)).collect())
    }

    /// Runs received at or after `since`, and before `until`, that have no attestation (their
    /// issue was lost to a crash), oldest first.
    pub async fn unattested_runs(
        &self,
        since: OffsetDateTime,
        until: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<String>, StoreError> {
        const SQL: &str = "SELECT r.id FROM runs r LEFT JOIN attestations a ON a.run_id = r.id \
             WHERE a.jti IS NULL AND r.received_at >= $1 AND r.received_at < $2 \
             AND r.cert_sha256 <> '' ORDER BY r.received_at LIMIT $3";
        Ok(on_pool!(&self.db, p => sqlx::query_scalar(SQL)
            .bind(secs(since)).bind(secs(until)).bind(i64::from(limit))
            .fetch_all(p).await?))
    }

    /// A run's stored texts, for its evidence document; `None` once retention removed it.
    pub async fn run_evidence(&self, run_id: &str) -> Result<Option<RunEvidence>, StoreError> {
        const RUN: &str = "SELECT id, agent_id, policy_id, policy_version, policy_digest, \
             run_trigger, started_at, finished_at, generator, results_digest, host, warnings, \
             cert_sha256, cert_not_after FROM runs WHERE id = $1";
        const CHECKS: &str = "SELECT c.check_id, c.outcome, c.text_id, t.text FROM check_results c \
             LEFT JOIN check_texts t ON t.id = c.text_id WHERE c.run_id = $1";
        let out = on_pool!(&self.db, p => {
            let mut tx = p.begin().await?;
            let run = sqlx::query(RUN).bind(run_id).fetch_optional(&mut *tx).await?;
            match run {
                None => None,
                Some(r) => {
                    let mut checks: Vec<(String, String)> = sqlx::query(CHECKS)
                        .bind(run_id)
                        .fetch_all(&mut *tx)
                        .await?
                        .into_iter()
                        .map(|c| {
                            let outcome = crate::texts::joined(
                                c.try_get("outcome")?,
                                c.try_get("text_id")?,
                                c.try_get("text")?,
                            )?;
                            Ok::<_, StoreError>((c.try_get("check_id")?, outcome))
                        })
                        .collect::<Result<_, _>>()?;
                    tx.commit().await?;
                    checks.sort_by(|a, b| rampart_core::digest::natural_cmp(&a.0, &b.0));
                    Some(RunEvidence {
                        run_id: r.try_get("id")?,
                        agent_id: r.try_get("agent_id")?,
                        policy_id: r.try_get("policy_id")?,
                        policy_version: r.try_get("policy_version")?,
                        policy_digest: r.try_get("policy_digest")?,
                        trigger: r.try_get("run_trigger")?,
                        started_at: r.try_get("started_at")?,
                        finished_at: r.try_get("finished_at")?,
                        generator: r.try_get("generator")?,
                        results_digest: r.try_get("results_digest")?,
                        host: r.try_get("host")?,
                        warnings: r.try_get("warnings")?,
                        checks: checks.into_iter().map(|(_, o)| o).collect(),
                        cert_sha256: r.try_get("cert_sha256")?,
                        cert_not_after: from_secs(r.try_get("cert_not_after")?),
                    })
                }
            }
        });
        Ok(out)
    }
}
