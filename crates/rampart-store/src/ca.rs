//! The server's signing material and admin tokens.
//!
//! CA keys live in the database, not in the data directory, so that every replica sharing a
//! PostgreSQL database signs with the same CA. They are stored encrypted; this module never sees
//! a plaintext key.

use sqlx::Row;
use time::OffsetDateTime;

use crate::{CaMaterial, Store, StoreError, from_secs, on_pool, on_reader, secs};

impl Store {
    /// The named signer, if it exists.
    pub async fn ca_material(&self, name: &str) -> Result<Option<CaMaterial>, StoreError> {
        const SQL: &str =
            "SELECT name, cert_pem, key_pem, created_at FROM ca_material WHERE name = $1";
        let row = on_pool!(&self.db, p => sqlx::query(SQL).bind(name).fetch_optional(p).await?.map(|r| {
            Ok::<_, sqlx::Error>(CaMaterial {
                name: r.try_get("name")?,
                cert_pem: r.try_get("cert_pem")?,
                key_pem: r.try_get("key_pem")?,
                created_at: from_secs(r.try_get("created_at")?),
            })
        }));
        Ok(row.transpose()?)
    }

    /// Stores `material` unless a signer of that name exists. Returns whether it was stored:
    /// two replicas starting at once both try, one wins, and both then load the winner's.
    pub async fn insert_ca_material_if_absent(
        &self,
        material: &CaMaterial,
    ) -> Result<bool, StoreError> {
        const SQL: &str = "INSERT INTO ca_material (name, cert_pem, key_pem, created_at) \
                           VALUES ($1, $2, $3, $4) ON CONFLICT (name) DO NOTHING";
        let done = on_pool!(&self.db, p => sqlx::query(SQL)
            .bind(&material.name)
            .bind(&material.cert_pem)
            .bind(&material.key_pem)
            .bind(secs(material.created_at))
            .execute(p)
            .await?
            .rows_affected());
        Ok(done == 1)
    }

    /// Replaces the named signer (intermediate rotation).
    pub async fn replace_ca_material(&self, material: &CaMaterial) -> Result<(), StoreError> {
        const SQL: &str = "INSERT INTO ca_material (name, cert_pem, key_pem, created_at) \
                           VALUES ($1, $2, $3, $4) ON CONFLICT (name) DO UPDATE SET \
                           cert_pem = excluded.cert_pem, key_pem = excluded.key_pem, \
                           created_at = excluded.created_at";
        on_pool!(&self.db, p => {
            sqlx::query(SQL)
            .bind(&material.name)
            .bind(&material.cert_pem)
            .bind(&material.key_pem)
            .bind(secs(material.created_at))
            .execute(p)
            .await?;
        });
        Ok(())
    }

    /// Records an admin bearer token by its hash (the token itself is never stored).
    pub async fn add_admin_token(
        &self,
        token_hash: &str,
        label: &str,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        const SQL: &str =
            "INSERT INTO admin_tokens (token_hash, label, created_at) VALUES ($1, $2, $3)";
        on_pool!(&self.db, p => {
            sqlx::query(SQL).bind(token_hash).bind(label).bind(secs(now)).execute(p).await?;
        });
        Ok(())
    }

    /// The label of the admin token with this hash, if there is one.
    pub async fn admin_token(&self, token_hash: &str) -> Result<Option<String>, StoreError> {
        const SQL: &str = "SELECT label FROM admin_tokens WHERE token_hash = $1";
        // Every admin request asks: a reader, not the pool.
        let label = on_reader!(self, c => sqlx::query_scalar::<_, String>(SQL).bind(token_hash).fetch_optional(c).await?);
        Ok(label)
    }

    /// Whether any admin token exists (first start creates one).
    pub async fn has_admin_token(&self) -> Result<bool, StoreError> {
        const SQL: &str = "SELECT COUNT(*) FROM admin_tokens";
        let n = on_pool!(&self.db, p => sqlx::query_scalar::<_, i64>(SQL).fetch_one(p).await?);
        Ok(n > 0)
    }
}
