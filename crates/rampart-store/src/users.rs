//! Users, their API tokens and browser sessions.
//!
//! The store keeps what the server decided: hashes (never a password, token or session id),
//! grants, times. Whether a credential is still good at "now" (expiry, idle timeout,
//! revocation, a disabled user) is the caller's judgement on the rows returned here, so one
//! read serves both the check and the error that names why a credential was refused.

use rampart_access::{Grant, Role, Scope};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sqlx::Row;
use time::OffsetDateTime;

use crate::{Store, StoreError, from_secs, on_pool, on_reader, secs};

/// A user account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct User {
    /// Row id (never reused).
    pub id: i64,
    /// Login name.
    pub name: String,
    /// What the user is.
    pub role: Role,
    /// The agent groups the role is limited to; empty: the whole fleet.
    pub groups: Vec<String>,
    /// Whether a password login is possible.
    pub has_password: bool,
    /// The password is a one-time one and must be changed at the next login.
    pub must_change_password: bool,
    /// Issuer and subject, for a user created by an OIDC login.
    pub oidc_subject: Option<String>,
    /// When the account was created.
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "rampart_core::timestamp::Rfc3339")]
    pub created_at: OffsetDateTime,
    /// When the password was last set.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schemars(with = "Option<rampart_core::timestamp::Rfc3339>")]
    pub password_changed_at: Option<OffsetDateTime>,
    /// When an admin disabled the account (its tokens and sessions stop working with it).
    #[serde(with = "time::serde::rfc3339::option")]
    #[schemars(with = "Option<rampart_core::timestamp::Rfc3339>")]
    pub disabled_at: Option<OffsetDateTime>,
}

impl User {
    /// The user's role with its group limit.
    pub fn grant(&self) -> Grant {
        grant(self.role, &self.groups)
    }
}

fn grant(role: Role, groups: &[String]) -> Grant {
    // Names were validated on the way in; a hand-edited bad one limits the grant to nothing
    // rather than widening it to the whole fleet.
    let scope = Scope::from_groups(groups.iter().cloned())
        .unwrap_or_else(|_| Scope::Groups(std::collections::BTreeSet::from(["\u{0}".to_owned()])));
    Grant { role, scope }
}

/// A user to create.
#[derive(Debug, Clone, PartialEq)]
pub struct NewUser {
    /// Login name (checked by the caller).
    pub name: String,
    /// Role.
    pub role: Role,
    /// Group limit; empty: the whole fleet.
    pub groups: Vec<String>,
    /// argon2id PHC string, if the user logs in with a password.
    pub password_hash: Option<String>,
    /// Whether that password must be changed at first login.
    pub must_change_password: bool,
    /// Issuer and subject, for a user created by an OIDC login.
    pub oidc_subject: Option<String>,
    /// Now.
    pub created_at: OffsetDateTime,
}

/// An API token as listed: never the token, only its first characters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ApiToken {
    /// Row id.
    pub id: i64,
    /// The owner's name.
    pub user: String,
    /// The owner's name for it, unique among their live tokens.
    pub name: String,
    /// Its first characters.
    pub shown: String,
    /// The role it carries (at most its owner's).
    pub role: Role,
    /// The groups it is limited to; empty: the whole fleet.
    pub groups: Vec<String>,
    /// When it was made.
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "rampart_core::timestamp::Rfc3339")]
    pub created_at: OffsetDateTime,
    /// When it stops working.
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "rampart_core::timestamp::Rfc3339")]
    pub expires_at: OffsetDateTime,
    /// When it was last used (to the minute).
    #[serde(with = "time::serde::rfc3339::option")]
    #[schemars(with = "Option<rampart_core::timestamp::Rfc3339>")]
    pub last_used_at: Option<OffsetDateTime>,
    /// When it was revoked.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schemars(with = "Option<rampart_core::timestamp::Rfc3339>")]
    pub revoked_at: Option<OffsetDateTime>,
}

impl ApiToken {
    /// The token's role with its group limit.
    pub fn grant(&self) -> Grant {
        grant(self.role, &self.groups)
    }
}

/// A token to store.
#[derive(Debug, Clone, PartialEq)]
pub struct NewApiToken {
    /// Owner.
    pub user_id: i64,
    /// Name.
    pub name: String,
    /// Hex SHA-256 of the token.
    pub token_hash: String,
    /// Its first characters.
    pub shown: String,
    /// Role (at most the owner's; checked by the caller).
    pub role: Role,
    /// Group limit.
    pub groups: Vec<String>,
    /// Now.
    pub created_at: OffsetDateTime,
    /// When it stops working.
    pub expires_at: OffsetDateTime,
}

/// A browser session.
#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    /// Hex SHA-256 of the cookie's value.
    pub id_hash: String,
    /// Owner.
    pub user_id: i64,
    /// The token the browser must echo on every change.
    pub csrf_token: String,
    /// Login time.
    pub created_at: OffsetDateTime,
    /// Last request (the idle timeout counts from here; kept to the minute).
    pub last_seen_at: OffsetDateTime,
    /// Absolute end.
    pub expires_at: OffsetDateTime,
    /// When it was logged out or revoked.
    pub revoked_at: Option<OffsetDateTime>,
    /// Client address at login.
    pub client: String,
    /// The browser's User-Agent at login (at most 256 characters).
    pub user_agent: String,
}

/// A credential found by its hash, with its owner as they are now.
#[derive(Debug, Clone, PartialEq)]
pub struct Authenticated<C> {
    /// The token or session.
    pub credential: C,
    /// Its owner.
    pub user: User,
}

const USER_COLUMNS: &str = "u.id, u.name, u.role, u.scope_groups, u.password_hash IS NOT NULL AS has_password, \
     u.must_change_password, u.oidc_subject, u.created_at, u.password_changed_at, u.disabled_at";

const TOKEN_COLUMNS: &str = "t.id AS t_id, u.name AS t_user, t.name AS t_name, t.shown, t.role AS t_role, \
     t.scope_groups AS t_groups, t.created_at AS t_created_at, t.expires_at, t.last_used_at, t.revoked_at";

const SESSION_COLUMNS: &str = "s.id_hash, s.user_id, s.csrf_token, s.created_at AS s_created_at, s.last_seen_at, \
     s.expires_at AS s_expires_at, s.revoked_at AS s_revoked_at, s.client, s.user_agent";

fn role(value: &str, what: &'static str) -> Result<Role, StoreError> {
    value.parse().map_err(|e| StoreError::corrupt(what, e))
}

fn groups(value: &str, what: &'static str) -> Result<Vec<String>, StoreError> {
    serde_json::from_str(value).map_err(|e| StoreError::corrupt(what, e))
}

fn groups_json(groups: &[String]) -> String {
    serde_json::Value::from(groups.to_vec()).to_string()
}

macro_rules! user_from_row {
    ($r:expr) => {{
        let r = $r;
        Ok::<User, StoreError>(User {
            id: r.try_get("id")?,
            name: r.try_get("name")?,
            role: role(r.try_get("role")?, "users.role")?,
            groups: groups(r.try_get("scope_groups")?, "users.scope_groups")?,
            has_password: r.try_get("has_password")?,
            must_change_password: r.try_get("must_change_password")?,
            oidc_subject: r.try_get("oidc_subject")?,
            created_at: from_secs(r.try_get("created_at")?),
            password_changed_at: r
                .try_get::<Option<i64>, _>("password_changed_at")?
                .map(from_secs),
            disabled_at: r.try_get::<Option<i64>, _>("disabled_at")?.map(from_secs),
        })
    }};
}

macro_rules! token_from_row {
    ($r:expr) => {{
        let r = $r;
        Ok::<ApiToken, StoreError>(ApiToken {
            id: r.try_get("t_id")?,
            user: r.try_get("t_user")?,
            name: r.try_get("t_name")?,
            shown: r.try_get("shown")?,
            role: role(r.try_get("t_role")?, "api_tokens.role")?,
            groups: groups(r.try_get("t_groups")?, "api_tokens.scope_groups")?,
            created_at: from_secs(r.try_get("t_created_at")?),
            expires_at: from_secs(r.try_get("expires_at")?),
            last_used_at: r.try_get::<Option<i64>, _>("last_used_at")?.map(from_secs),
            revoked_at: r.try_get::<Option<i64>, _>("revoked_at")?.map(from_secs),
        })
    }};
}

macro_rules! session_from_row {
    ($r:expr) => {{
        let r = $r;
        Ok::<Session, StoreError>(Session {
            id_hash: r.try_get("id_hash")?,
            user_id: r.try_get("user_id")?,
            csrf_token: r.try_get("csrf_token")?,
            created_at: from_secs(r.try_get("s_created_at")?),
            last_seen_at: from_secs(r.try_get("last_seen_at")?),
            expires_at: from_secs(r.try_get("s_expires_at")?),
            revoked_at: r.try_get::<Option<i64>, _>("s_revoked_at")?.map(from_secs),
            client: r.try_get("client")?,
            user_agent: r.try_get("user_agent")?,
        })
    }};
}

/// Last-use and last-seen times are kept to the minute: a busy token then costs one write a
/// minute, not one per request.
const TOUCH_GRANULARITY_SECS: i64 = 60;

impl Store {
    /// Creates a user. A name already taken is [`StoreError::Conflict`].
    pub async fn insert_user(&self, u: &NewUser) -> Result<User, StoreError> {
        const SQL: &str = "INSERT INTO users (name, role, scope_groups, password_hash, must_change_password, \
             oidc_subject, created_at, password_changed_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
        let changed = u.password_hash.as_ref().map(|_| secs(u.created_at));
        let groups = groups_json(&u.groups);
        let done = on_pool!(&self.db, p => sqlx::query(SQL)
            .bind(&u.name)
            .bind(u.role.as_str())
            .bind(&groups)
            .bind(&u.password_hash)
            .bind(u.must_change_password)
            .bind(&u.oidc_subject)
            .bind(secs(u.created_at))
            .bind(changed)
            .execute(p)
            .await
            .map(|_| ()));
        done.map_err(|e| StoreError::conflict_or(e, "user", &u.name))?;
        self.user(&u.name)
            .await?
            .ok_or_else(|| StoreError::not_found("user", &u.name))
    }

    /// One user by name.
    pub async fn user(&self, name: &str) -> Result<Option<User>, StoreError> {
        Ok(self.user_with_password(name).await?.map(|(u, _)| u))
    }

    /// One user by name with their password hash, for a password login.
    pub async fn user_with_password(
        &self,
        name: &str,
    ) -> Result<Option<(User, Option<String>)>, StoreError> {
        let sql = format!("SELECT {USER_COLUMNS}, u.password_hash FROM users u WHERE u.name = $1");
        on_pool!(&self.db, p => {
            let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(name).fetch_optional(p).await?;
            row.map(|r| Ok((user_from_row!(&r)?, r.try_get("password_hash")?))).transpose()
        })
    }

    /// The user an OIDC login with this issuer and subject created.
    pub async fn user_by_oidc_subject(&self, subject: &str) -> Result<Option<User>, StoreError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users u WHERE u.oidc_subject = $1");
        on_pool!(&self.db, p => {
            let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(subject).fetch_optional(p).await?;
            row.map(|r| user_from_row!(&r)).transpose()
        })
    }

    /// Every user, by name.
    pub async fn users(&self) -> Result<Vec<User>, StoreError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users u ORDER BY u.name");
        on_pool!(&self.db, p => {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).fetch_all(p).await?;
            rows.iter().map(|r| user_from_row!(r)).collect()
        })
    }

    /// Changes a user's role and group limit. Tokens keep their own grant; the server judges a
    /// token by the lesser of it and its owner's current grant.
    pub async fn set_user_grant(
        &self,
        name: &str,
        role: Role,
        groups: &[String],
    ) -> Result<User, StoreError> {
        const SQL: &str = "UPDATE users SET role = $2, scope_groups = $3 WHERE name = $1";
        let groups = groups_json(groups);
        let n = on_pool!(&self.db, p => sqlx::query(SQL).bind(name).bind(role.as_str()).bind(&groups)
            .execute(p).await?.rows_affected());
        self.changed_user(n, name).await
    }

    /// Disables (`Some(now)`) or re-enables (`None`) a user.
    pub async fn set_user_disabled(
        &self,
        name: &str,
        at: Option<OffsetDateTime>,
    ) -> Result<User, StoreError> {
        const SQL: &str = "UPDATE users SET disabled_at = $2 WHERE name = $1";
        let n = on_pool!(&self.db, p => sqlx::query(SQL).bind(name).bind(at.map(secs))
            .execute(p).await?.rows_affected());
        self.changed_user(n, name).await
    }

    /// Sets a user's password hash; `must_change` marks it one-time.
    pub async fn set_user_password(
        &self,
        name: &str,
        password_hash: &str,
        must_change: bool,
        now: OffsetDateTime,
    ) -> Result<User, StoreError> {
        const SQL: &str = "UPDATE users SET password_hash = $2, must_change_password = $3, \
             password_changed_at = $4 WHERE name = $1";
        let n = on_pool!(&self.db, p => sqlx::query(SQL).bind(name).bind(password_hash)
            .bind(must_change).bind(secs(now)).execute(p).await?.rows_affected());
        self.changed_user(n, name).await
    }

    /// Sets a one-time password for a user who has no way to log in yet (no password, no OIDC
    /// identity). Whether it was set: `false` when another replica got there first.
    pub async fn set_first_password(
        &self,
        name: &str,
        password_hash: &str,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        const SQL: &str = "UPDATE users SET password_hash = $2, must_change_password = $3, \
             password_changed_at = $4 WHERE name = $1 AND password_hash IS NULL AND oidc_subject IS NULL";
        let n = on_pool!(&self.db, p => sqlx::query(SQL).bind(name).bind(password_hash)
            .bind(true).bind(secs(now)).execute(p).await?.rows_affected());
        Ok(n == 1)
    }

    async fn changed_user(&self, rows: u64, name: &str) -> Result<User, StoreError> {
        if rows == 0 {
            return Err(StoreError::not_found("user", name));
        }
        self.user(name)
            .await?
            .ok_or_else(|| StoreError::not_found("user", name))
    }

    /// Stores a new API token. A live token of the same user and name is
    /// [`StoreError::Conflict`].
    pub async fn insert_api_token(&self, t: &NewApiToken) -> Result<ApiToken, StoreError> {
        const SQL: &str = "INSERT INTO api_tokens (user_id, name, token_hash, shown, role, scope_groups, \
             created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
        let groups = groups_json(&t.groups);
        let done = on_pool!(&self.db, p => sqlx::query(SQL)
            .bind(t.user_id)
            .bind(&t.name)
            .bind(&t.token_hash)
            .bind(&t.shown)
            .bind(t.role.as_str())
            .bind(&groups)
            .bind(secs(t.created_at))
            .bind(secs(t.expires_at))
            .execute(p)
            .await
            .map(|_| ()));
        done.map_err(|e| StoreError::conflict_or(e, "token", &t.name))?;
        self.api_token_by_hash(&t.token_hash)
            .await?
            .map(|a| a.credential)
            .ok_or_else(|| StoreError::not_found("token", &t.name))
    }

    /// The token with this hash and its owner, whatever their state: every API request asks,
    /// so it is one indexed read on a reader.
    pub async fn api_token_by_hash(
        &self,
        token_hash: &str,
    ) -> Result<Option<Authenticated<ApiToken>>, StoreError> {
        let sql = format!(
            "SELECT {TOKEN_COLUMNS}, {USER_COLUMNS} FROM api_tokens t JOIN users u ON u.id = t.user_id \
             WHERE t.token_hash = $1"
        );
        on_reader!(self, c => {
            let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(token_hash).fetch_optional(c).await?;
            row.map(|r| Ok(Authenticated { credential: token_from_row!(&r)?, user: user_from_row!(&r)? }))
                .transpose()
        })
    }

    /// Tokens, newest first: one user's, or everyone's.
    pub async fn api_tokens(&self, user: Option<&str>) -> Result<Vec<ApiToken>, StoreError> {
        let sql = format!(
            "SELECT {TOKEN_COLUMNS} FROM api_tokens t JOIN users u ON u.id = t.user_id \
             WHERE $1 IS NULL OR u.name = $1 ORDER BY t.id DESC"
        );
        on_pool!(&self.db, p => {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(user).fetch_all(p).await?;
            rows.iter().map(|r| token_from_row!(r)).collect()
        })
    }

    /// Revokes a user's live token by name. `None` when they have no live token of that name.
    pub async fn revoke_api_token(
        &self,
        user: &str,
        name: &str,
        now: OffsetDateTime,
    ) -> Result<Option<ApiToken>, StoreError> {
        const SQL: &str = "UPDATE api_tokens SET revoked_at = $3 \
             WHERE name = $2 AND revoked_at IS NULL AND user_id = (SELECT id FROM users WHERE name = $1) \
             RETURNING token_hash";
        let hash: Option<String> = on_pool!(&self.db, p => sqlx::query_scalar(SQL)
            .bind(user).bind(name).bind(secs(now)).fetch_optional(p).await?);
        match hash {
            Some(h) => Ok(self.api_token_by_hash(&h).await?.map(|a| a.credential)),
            None => Ok(None),
        }
    }

    /// Revokes every live token and session of a user ("log out everywhere", a disabled
    /// account, a password reset). Returns how many tokens and sessions it ended.
    pub async fn revoke_user_credentials(
        &self,
        user_id: i64,
        tokens: bool,
        now: OffsetDateTime,
    ) -> Result<(u64, u64), StoreError> {
        const TOKENS: &str =
            "UPDATE api_tokens SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL";
        const SESSIONS: &str =
            "UPDATE sessions SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL";
        on_pool!(&self.db, p => {
            let mut tx = p.begin().await?;
            let t = if tokens {
                sqlx::query(TOKENS).bind(user_id).bind(secs(now)).execute(&mut *tx).await?.rows_affected()
            } else {
                0
            };
            let s = sqlx::query(SESSIONS).bind(user_id).bind(secs(now)).execute(&mut *tx).await?.rows_affected();
            tx.commit().await?;
            Ok((t, s))
        })
    }

    /// Records a token's use, at most once a minute per token.
    pub async fn touch_api_token(&self, id: i64, now: OffsetDateTime) -> Result<(), StoreError> {
        const SQL: &str = "UPDATE api_tokens SET last_used_at = $2 \
             WHERE id = $1 AND (last_used_at IS NULL OR last_used_at <= $2 - $3)";
        on_pool!(&self.db, p => {
            sqlx::query(SQL).bind(id).bind(secs(now)).bind(TOUCH_GRANULARITY_SECS).execute(p).await?;
        });
        Ok(())
    }

    /// Stores a new session.
    pub async fn insert_session(&self, s: &Session) -> Result<(), StoreError> {
        const SQL: &str = "INSERT INTO sessions (id_hash, user_id, csrf_token, created_at, last_seen_at, \
             expires_at, revoked_at, client, user_agent) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";
        on_pool!(&self.db, p => sqlx::query(SQL)
            .bind(&s.id_hash)
            .bind(s.user_id)
            .bind(&s.csrf_token)
            .bind(secs(s.created_at))
            .bind(secs(s.last_seen_at))
            .bind(secs(s.expires_at))
            .bind(s.revoked_at.map(secs))
            .bind(&s.client)
            .bind(&s.user_agent)
            .execute(p)
            .await
            .map(|_| ())?);
        Ok(())
    }

    /// The session with this hash and its owner, whatever their state.
    pub async fn session_by_hash(
        &self,
        id_hash: &str,
    ) -> Result<Option<Authenticated<Session>>, StoreError> {
        let sql = format!(
            "SELECT {SESSION_COLUMNS}, {USER_COLUMNS} FROM sessions s JOIN users u ON u.id = s.user_id \
             WHERE s.id_hash = $1"
        );
        on_reader!(self, c => {
            let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id_hash).fetch_optional(c).await?;
            row.map(|r| Ok(Authenticated { credential: session_from_row!(&r)?, user: user_from_row!(&r)? }))
                .transpose()
        })
    }

    /// Moves a live session's idle timeout forward, at most once per `granularity` (the
    /// caller keeps it well under the idle timeout: a minute for the default half hour).
    pub async fn touch_session(
        &self,
        id_hash: &str,
        now: OffsetDateTime,
        granularity: time::Duration,
    ) -> Result<(), StoreError> {
        const SQL: &str = "UPDATE sessions SET last_seen_at = $2 \
             WHERE id_hash = $1 AND revoked_at IS NULL AND last_seen_at <= $2 - $3";
        on_pool!(&self.db, p => {
            sqlx::query(SQL).bind(id_hash).bind(secs(now)).bind(granularity.whole_seconds())
                .execute(p).await?;
        });
        Ok(())
    }

    /// Ends one session (log out). Whether a live one was ended.
    pub async fn revoke_session(
        &self,
        id_hash: &str,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        const SQL: &str =
            "UPDATE sessions SET revoked_at = $2 WHERE id_hash = $1 AND revoked_at IS NULL";
        let n = on_pool!(&self.db, p => sqlx::query(SQL).bind(id_hash).bind(secs(now))
            .execute(p).await?.rows_affected());
        Ok(n > 0)
    }
}

/// An OpenID Connect login in flight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidcLogin {
    /// The PKCE code verifier.
    pub verifier: String,
    /// The nonce the ID token must carry.
    pub nonce: String,
    /// When the login started.
    pub created_at: OffsetDateTime,
    /// For a command-line login: the CLI's loopback port and its challenge.
    pub cli: Option<(u16, String)>,
}

/// A one-time code a command-line OIDC login trades for an API token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidcExchange {
    /// Whose.
    pub user_name: String,
    /// BASE64URL(SHA-256(verifier)) the CLI sent when it started.
    pub challenge: String,
    /// When the login finished at the provider.
    pub created_at: OffsetDateTime,
}

impl Store {
    /// Records a login in flight under the hash of its state; forgets those older than
    /// `forget_before` (abandoned at the provider).
    pub async fn insert_oidc_login(
        &self,
        state_hash: &str,
        login: &OidcLogin,
        forget_before: OffsetDateTime,
    ) -> Result<(), StoreError> {
        const PRUNE: &str = "DELETE FROM oidc_logins WHERE created_at < $1";
        const SQL: &str = "INSERT INTO oidc_logins (state_hash, verifier, nonce, created_at, cli_port, \
                           cli_challenge) VALUES ($1, $2, $3, $4, $5, $6)";
        on_pool!(&self.db, p => {
            sqlx::query(PRUNE).bind(secs(forget_before)).execute(p).await?;
            sqlx::query(SQL)
                .bind(state_hash)
                .bind(&login.verifier)
                .bind(&login.nonce)
                .bind(secs(login.created_at))
                .bind(login.cli.as_ref().map(|(port, _)| i32::from(*port)))
                .bind(login.cli.as_ref().map(|(_, challenge)| challenge.clone()))
                .execute(p)
                .await?;
        });
        Ok(())
    }

    /// Takes (reads and deletes) the login in flight with this state hash: a state works once.
    pub async fn take_oidc_login(&self, state_hash: &str) -> Result<Option<OidcLogin>, StoreError> {
        const SQL: &str = "DELETE FROM oidc_logins WHERE state_hash = $1 \
                           RETURNING verifier, nonce, created_at, cli_port, cli_challenge";
        on_pool!(&self.db, p => {
            let row = sqlx::query(SQL).bind(state_hash).fetch_optional(p).await?;
            row.map(|r| {
                let port: Option<i32> = r.try_get("cli_port")?;
                let challenge: Option<String> = r.try_get("cli_challenge")?;
                let cli = match (port, challenge) {
                    (Some(p), Some(c)) => Some((
                        u16::try_from(p).map_err(|e| StoreError::corrupt("oidc login port", e))?,
                        c,
                    )),
                    _ => None,
                };
                Ok::<_, StoreError>(OidcLogin {
                    verifier: r.try_get("verifier")?,
                    nonce: r.try_get("nonce")?,
                    created_at: from_secs(r.try_get("created_at")?),
                    cli,
                })
            })
            .transpose()
        })
    }

    /// Records a one-time exchange code (by its hash); forgets those older than
    /// `forget_before`.
    pub async fn insert_oidc_exchange(
        &self,
        code_hash: &str,
        exchange: &OidcExchange,
        forget_before: OffsetDateTime,
    ) -> Result<(), StoreError> {
        const PRUNE: &str = "DELETE FROM oidc_exchanges WHERE created_at < $1";
        const SQL: &str = "INSERT INTO oidc_exchanges (code_hash, user_name, challenge, created_at) \
                           VALUES ($1, $2, $3, $4)";
        on_pool!(&self.db, p => {
            sqlx::query(PRUNE).bind(secs(forget_before)).execute(p).await?;
            sqlx::query(SQL)
                .bind(code_hash)
                .bind(&exchange.user_name)
                .bind(&exchange.challenge)
                .bind(secs(exchange.created_at))
                .execute(p)
                .await?;
        });
        Ok(())
    }

    /// Takes (reads and deletes) the exchange code with this hash: it works once.
    pub async fn take_oidc_exchange(
        &self,
        code_hash: &str,
    ) -> Result<Option<OidcExchange>, StoreError> {
        const SQL: &str = "DELETE FROM oidc_exchanges WHERE code_hash = $1 \
                           RETURNING user_name, challenge, created_at";
        on_pool!(&self.db, p => {
            let row = sqlx::query(SQL).bind(code_hash).fetch_optional(p).await?;
            row.map(|r| {
                Ok::<_, StoreError>(OidcExchange {
                    user_name: r.try_get("user_name")?,
                    challenge: r.try_get("challenge")?,
                    created_at: from_secs(r.try_get("created_at")?),
                })
            })
            .transpose()
        })
    }
}
