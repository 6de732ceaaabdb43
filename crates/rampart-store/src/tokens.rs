//! Enrolment tokens: issued, redeemed (counted atomically), listed, revoked.

use sqlx::Row;
use time::{Duration, OffsetDateTime};

use crate::{EnrolmentToken, Labels, Redemption, Store, StoreError, from_secs, on_pool, secs};

macro_rules! token_columns {
    () => {
        "jti, grp, labels, audience, max_uses, uses, expires_at, created_at, revoked_at, reenrol_agent_id"
    };
}

/// Maps a row to an [`EnrolmentToken`]; a macro so it compiles against both backends' row types.
macro_rules! token_from_row {
    ($r:expr) => {{
        let r = $r;
        let labels: String = r.try_get("labels")?;
        let labels: Labels = serde_json::from_str(&labels)
            .map_err(|e| StoreError::corrupt("enrolment_tokens.labels", e))?;
        Ok::<EnrolmentToken, StoreError>(EnrolmentToken {
            jti: r.try_get("jti")?,
            group: r.try_get("grp")?,
            labels,
            audience: r.try_get("audience")?,
            max_uses: u32::try_from(r.try_get::<i64, _>("max_uses")?).unwrap_or(0),
            uses: u32::try_from(r.try_get::<i64, _>("uses")?).unwrap_or(u32::MAX),
            expires_at: from_secs(r.try_get("expires_at")?),
            created_at: from_secs(r.try_get("created_at")?),
            revoked_at: r.try_get::<Option<i64>, _>("revoked_at")?.map(from_secs),
            reenrol_agent_id: r.try_get("reenrol_agent_id")?,
        })
    }};
}

impl Store {
    /// Records a newly issued token.
    pub async fn insert_enrolment_token(&self, t: &EnrolmentToken) -> Result<(), StoreError> {
        let labels = serde_json::to_string(&t.labels)
            .map_err(|e| StoreError::corrupt("enrolment token labels", e))?;
        let sql = concat!(
            "INSERT INTO enrolment_tokens (",
            token_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        );
        on_pool!(&self.db, p => {
            sqlx::query(sql)
            .bind(&t.jti)
            .bind(&t.group)
            .bind(&labels)
            .bind(&t.audience)
            .bind(i64::from(t.max_uses))
            .bind(i64::from(t.uses))
            .bind(secs(t.expires_at))
            .bind(secs(t.created_at))
            .bind(t.revoked_at.map(secs))
            .bind(&t.reenrol_agent_id)
            .execute(p)
            .await?;
        });
        Ok(())
    }

    /// Spends one use of token `jti` if it is still good at `now` (expiry extended by `leeway`).
    ///
    /// The check and the count are one conditional `UPDATE`, so two servers redeeming the same
    /// single-use token at the same instant cannot both succeed. When the update matches nothing,
    /// a second read says why, so the caller can give a precise error.
    pub async fn redeem_enrolment_token(
        &self,
        jti: &str,
        now: OffsetDateTime,
        leeway: Duration,
    ) -> Result<Redemption, StoreError> {
        let sql = concat!(
            "UPDATE enrolment_tokens SET uses = uses + 1 \
             WHERE jti = $1 AND uses < max_uses AND revoked_at IS NULL AND expires_at >= $2 \
             RETURNING ",
            token_columns!()
        );
        let cutoff = secs(now - leeway);
        let accepted = on_pool!(&self.db, p => match sqlx::query(sql).bind(jti).bind(cutoff).fetch_optional(p).await? {
            Some(r) => Some(token_from_row!(&r)?),
            None => None,
        });
        if let Some(t) = accepted {
            return Ok(Redemption::Accepted(t));
        }
        let Some(t) = self.enrolment_token(jti).await? else {
            return Ok(Redemption::Unknown);
        };
        Ok(if t.revoked_at.is_some() {
            Redemption::Revoked
        } else if t.uses >= t.max_uses {
            Redemption::Exhausted
        } else {
            Redemption::Expired
        })
    }

    /// One token by `jti`.
    pub async fn enrolment_token(&self, jti: &str) -> Result<Option<EnrolmentToken>, StoreError> {
        let sql = concat!(
            "SELECT ",
            token_columns!(),
            " FROM enrolment_tokens WHERE jti = $1"
        );
        let t = on_pool!(&self.db, p => match sqlx::query(sql).bind(jti).fetch_optional(p).await? {
            Some(r) => Some(token_from_row!(&r)?),
            None => None,
        });
        Ok(t)
    }

    /// Every token, newest first.
    pub async fn enrolment_tokens(&self) -> Result<Vec<EnrolmentToken>, StoreError> {
        let sql = concat!(
            "SELECT ",
            token_columns!(),
            " FROM enrolment_tokens ORDER BY created_at DESC, jti"
        );
        let rows = on_pool!(&self.db, p => sqlx::query(sql)
            .fetch_all(p)
            .await?
            .iter()
            .map(|r| token_from_row!(r))
            .collect::<Result<Vec<_>, _>>()?);
        Ok(rows)
    }

    /// Withdraws a token. Returns false when no such token exists.
    pub async fn revoke_enrolment_token(
        &self,
        jti: &str,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        const SQL: &str =
            "UPDATE enrolment_tokens SET revoked_at = $2 WHERE jti = $1 AND revoked_at IS NULL";
        let n = on_pool!(&self.db, p => sqlx::query(SQL).bind(jti).bind(secs(now)).execute(p).await?.rows_affected());
        if n == 0 && self.enrolment_token(jti).await?.is_none() {
            return Ok(false);
        }
        Ok(true)
    }
}
