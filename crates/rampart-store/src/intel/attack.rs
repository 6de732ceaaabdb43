//! The MITRE ATT&CK catalogue an import stores, for names and tactics in lookups.

use sqlx::Row;

use crate::{Store, StoreError, on_pool};

use super::json_list;

impl Store {
    /// Stores ATT&CK entries `(id, kind, name, tactics)`, replacing earlier imports of the same
    /// ids. Returns how many were stored.
    pub async fn intel_put_attack(
        &self,
        entries: &[(String, String, String, Vec<String>)],
        now: i64,
    ) -> Result<u64, StoreError> {
        on_pool!(&self.db, p => {
            let mut tx = p.begin().await?;
            for (id, kind, name, tactics) in entries {
                let tactics = serde_json::to_string(tactics).map_err(|e| StoreError::corrupt("attack tactics", e))?;
                sqlx::query(
                    "INSERT INTO intel_attack (id, kind, name, tactics, imported_at) VALUES ($1, $2, $3, $4, $5) \
                     ON CONFLICT (id) DO UPDATE SET kind = excluded.kind, name = excluded.name, tactics = excluded.tactics, \
                     imported_at = excluded.imported_at",
                )
                .bind(id)
                .bind(kind)
                .bind(name)
                .bind(&tactics)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok(entries.len() as u64)
        })
    }

    /// Names and tactics of ATT&CK ids: `(id, kind, name, tactics)` for those imported.
    pub async fn intel_attack_names(
        &self,
        ids: &[String],
    ) -> Result<Vec<(String, String, String, Vec<String>)>, StoreError> {
        let mut out = Vec::with_capacity(ids.len());
        on_pool!(&self.db, p => {
            for id in ids {
                let row = sqlx::query("SELECT id, kind, name, tactics FROM intel_attack WHERE id = $1")
                    .bind(id)
                    .fetch_optional(p)
                    .await?;
                if let Some(r) = row {
                    let tactics: String = r.try_get("tactics")?;
                    out.push((r.try_get("id")?, r.try_get("kind")?, r.try_get("name")?, json_list(&tactics)?));
                }
            }
            Ok(out)
        })
    }
}
