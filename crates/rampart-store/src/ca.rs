//! The server's signing material and admin tokens.
//!
//! CA keys live in the database, not in the data directory, so that every replica sharing a
//! PostgreSQL database signs with the same CA. They are stored encrypted; this module never sees
//! a plaintext key.

use sqlx::Row;

use crate::{CaMaterial, Store, StoreError, from_secs, on_pool, secs};

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
}
