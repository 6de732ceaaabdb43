//! The rules the index is judged by: allowlists and decay models, and their generation.

use rampart_intel::rows::{IntelAllowlist, IntelDecayRow};

use sqlx::Row;

use crate::{Store, StoreError, on_pool, on_reader};

use super::{BUMP_RULES_SQL, json_list};

impl Store {
    /// The rules' generation: moved by every change to allowlists and decay models.
    pub async fn intel_rules_generation(&self) -> Result<i64, StoreError> {
        // Every intel request asks: a reader, not the pool.
        on_reader!(self, c => {
            Ok(sqlx::query_scalar("SELECT generation FROM intel_rules WHERE id = 1")
                .fetch_one(c)
                .await?)
        })
    }

    /// The operators' decay models.
    pub async fn intel_decay_models(&self) -> Result<Vec<IntelDecayRow>, StoreError> {
        on_pool!(&self.db, p => {
            let rows = sqlx::query("SELECT scope, lifetime_days, speed FROM intel_decay_models ORDER BY scope")
                .fetch_all(p)
                .await?;
            rows.iter()
                .map(|r| {
                    Ok(IntelDecayRow {
                        scope: r.try_get("scope")?,
                        lifetime_days: r.try_get("lifetime_days")?,
                        speed: r.try_get("speed")?,
                    })
                })
                .collect::<Result<Vec<_>, sqlx::Error>>()
                .map_err(StoreError::from)
        })
    }

    /// Sets an operator's decay model for a scope (replacing one set before).
    pub async fn intel_put_decay_model(&self, row: &IntelDecayRow) -> Result<(), StoreError> {
        on_pool!(&self.db, p => {
            let mut tx = p.begin().await?;
            sqlx::query(
                "INSERT INTO intel_decay_models (scope, lifetime_days, speed) VALUES ($1, $2, $3) \
                 ON CONFLICT (scope) DO UPDATE SET lifetime_days = excluded.lifetime_days, speed = excluded.speed",
            )
            .bind(&row.scope)
            .bind(row.lifetime_days)
            .bind(row.speed)
            .execute(&mut *tx)
            .await?;
            sqlx::query(BUMP_RULES_SQL).execute(&mut *tx).await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// Removes an operator's decay model (the built-in one applies again); false if none.
    pub async fn intel_delete_decay_model(&self, scope: &str) -> Result<bool, StoreError> {
        on_pool!(&self.db, p => {
            let mut tx = p.begin().await?;
            let done = sqlx::query("DELETE FROM intel_decay_models WHERE scope = $1").bind(scope).execute(&mut *tx).await?;
            sqlx::query(BUMP_RULES_SQL).execute(&mut *tx).await?;
            tx.commit().await?;
            Ok(done.rows_affected() > 0)
        })
    }

    /// Creates or replaces an allowlist.
    pub async fn intel_put_allowlist(&self, list: &IntelAllowlist) -> Result<(), StoreError> {
        let entries = serde_json::to_string(&list.entries)
            .map_err(|e| StoreError::corrupt("allowlist entries", e))?;
        on_pool!(&self.db, p => {
            let mut tx = p.begin().await?;
            sqlx::query(
                "INSERT INTO intel_allowlists (name, match_type, entries, description, created_at) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (name) DO UPDATE SET match_type = excluded.match_type, entries = excluded.entries, \
                 description = excluded.description",
            )
            .bind(&list.name)
            .bind(&list.match_type)
            .bind(&entries)
            .bind(&list.description)
            .bind(list.created_at)
            .execute(&mut *tx)
            .await?;
            sqlx::query(BUMP_RULES_SQL).execute(&mut *tx).await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// Every allowlist, by name.
    pub async fn intel_allowlists(&self) -> Result<Vec<IntelAllowlist>, StoreError> {
        on_pool!(&self.db, p => {
            let rows = sqlx::query("SELECT name, match_type, entries, description, created_at FROM intel_allowlists ORDER BY name")
                .fetch_all(p)
                .await?;
            let mut out = Vec::with_capacity(rows.len());
            for r in &rows {
                let entries: String = r.try_get("entries")?;
                out.push(IntelAllowlist {
                    name: r.try_get("name")?,
                    match_type: r.try_get("match_type")?,
                    entries: json_list(&entries)?,
                    description: r.try_get("description")?,
                    created_at: r.try_get("created_at")?,
                });
            }
            Ok(out)
        })
    }

    /// Removes an allowlist. Returns whether it existed.
    pub async fn intel_delete_allowlist(&self, name: &str) -> Result<bool, StoreError> {
        on_pool!(&self.db, p => {
            let mut tx = p.begin().await?;
            let done = sqlx::query("DELETE FROM intel_allowlists WHERE name = $1").bind(name).execute(&mut *tx).await?;
            sqlx::query(BUMP_RULES_SQL).execute(&mut *tx).await?;
            tx.commit().await?;
            Ok(done.rows_affected() > 0)
        })
    }
}
