//! `rampart users` and `rampart tokens`: thin clients of the server's user and API-token
//! endpoints (docs/access.md). A refusal names the permission that was missing.

use std::process::ExitCode;

use anyhow::{anyhow, bail};
use rampart_access::Role;
use rampart_server::api::{
    IssuedToken, NewTokenRequest, NewUserRequest, RoleRequest, UserWithPassword,
};
use rampart_store::{ApiToken, User};

use super::fleet::{Api, opt, print_json, runtime, t, table, write_secret};
use crate::cli::{TokensCommand, UsersCommand};

fn role(r: &str) -> anyhow::Result<Role> {
    r.parse().map_err(|e| anyhow!("--role: {e}"))
}

fn groups_text(groups: &[String]) -> String {
    if groups.is_empty() {
        "(all)".to_owned()
    } else {
        groups.join(",")
    }
}

fn user_rows(users: &[User]) {
    let rows = users
        .iter()
        .map(|u| {
            let state = match (u.disabled_at, u.must_change_password) {
                (Some(_), _) => "disabled",
                (None, true) => "password to change",
                (None, false) => "active",
            };
            vec![
                u.name.clone(),
                u.role.to_string(),
                groups_text(&u.groups),
                state.to_owned(),
                if u.oidc_subject.is_some() {
                    "oidc"
                } else {
                    "password"
                }
                .to_owned(),
                t(u.created_at),
            ]
        })
        .collect();
    table(
        &["NAME", "ROLE", "GROUPS", "STATE", "LOGIN", "CREATED"],
        rows,
    );
}

fn with_password(api: &Api, done: &UserWithPassword, what: &str) -> anyhow::Result<()> {
    if api.json {
        return print_json(done);
    }
    println!(
        "{what} {} ({} of {}); one-time password, shown once (changed at the first login):",
        done.user.name,
        done.user.role,
        groups_text(&done.user.groups)
    );
    println!("{}", done.one_time_password);
    Ok(())
}

/// `users disable` or `users enable`.
async fn switch(name: &str, conn: &crate::cli::ServerConn, action: &str) -> anyhow::Result<()> {
    let api = Api::new(conn)?;
    let user: User = api
        .request(
            reqwest::Method::POST,
            &format!("/api/v1/users/{name}/{action}"),
            None,
        )
        .await?;
    if api.json {
        return print_json(&user);
    }
    let state = if user.disabled_at.is_some() {
        "disabled: its tokens stop working and its sessions ended"
    } else {
        "enabled"
    };
    println!("{} {state}", user.name);
    Ok(())
}

/// `rampart users …`.
pub fn users(cmd: UsersCommand) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async move {
        match cmd {
            UsersCommand::List { conn } => {
                let api = Api::new(&conn)?;
                let users: Vec<User> = api.get("/api/v1/users").await?;
                if api.json {
                    return print_json(&users);
                }
                user_rows(&users);
            }
            UsersCommand::Add {
                name,
                role: r,
                groups,
                conn,
            } => {
                let api = Api::new(&conn)?;
                let req = NewUserRequest {
                    name,
                    role: role(&r)?,
                    groups,
                };
                let done: UserWithPassword = api
                    .send(reqwest::Method::POST, "/api/v1/users", &req)
                    .await?;
                with_password(&api, &done, "added")?;
            }
            UsersCommand::Role {
                name,
                role: r,
                groups,
                conn,
            } => {
                let api = Api::new(&conn)?;
                let req = RoleRequest {
                    role: role(&r)?,
                    groups,
                };
                let user: User = api
                    .send(
                        reqwest::Method::PUT,
                        &format!("/api/v1/users/{name}/role"),
                        &req,
                    )
                    .await?;
                if api.json {
                    return print_json(&user);
                }
                println!(
                    "{} is now {} of {}",
                    user.name,
                    user.role,
                    groups_text(&user.groups)
                );
            }
            UsersCommand::Disable { name, conn } => switch(&name, &conn, "disable").await?,
            UsersCommand::Enable { name, conn } => switch(&name, &conn, "enable").await?,
            UsersCommand::ResetPassword { name, conn } => {
                let api = Api::new(&conn)?;
                let done: UserWithPassword = api
                    .request(
                        reqwest::Method::POST,
                        &format!("/api/v1/users/{name}/reset-password"),
                        None,
                    )
                    .await?;
                with_password(&api, &done, "reset")?;
            }
        }
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

fn token_rows(tokens: &[ApiToken]) {
    let rows = tokens
        .iter()
        .map(|k| {
            vec![
                k.user.clone(),
                k.name.clone(),
                format!("{}…", k.shown),
                k.role.to_string(),
                groups_text(&k.groups),
                t(k.expires_at),
                opt(k.last_used_at.map(t)),
                opt(k.revoked_at.map(t)),
            ]
        })
        .collect();
    table(
        &[
            "USER",
            "NAME",
            "TOKEN",
            "ROLE",
            "GROUPS",
            "EXPIRES",
            "LAST USED",
            "REVOKED",
        ],
        rows,
    );
}

/// `rampart tokens …`.
pub fn tokens(cmd: TokensCommand) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async move {
        match cmd {
            TokensCommand::List { user, conn } => {
                let api = Api::new(&conn)?;
                let path = match &user {
                    Some(u) => format!("/api/v1/users/{u}/tokens"),
                    None => "/api/v1/me/tokens".to_owned(),
                };
                let tokens: Vec<ApiToken> = api.get(&path).await?;
                if api.json {
                    return print_json(&tokens);
                }
                token_rows(&tokens);
            }
            TokensCommand::Create {
                name,
                role: r,
                groups,
                ttl,
                output,
                conn,
            } => {
                let days = match ttl.strip_suffix('d').map(str::parse::<u32>) {
                    Some(Ok(d)) if (1..=365).contains(&d) => d,
                    _ => bail!("--ttl {ttl:?}: days with a d unit, 1d to 365d"),
                };
                let api = Api::new(&conn)?;
                let req = NewTokenRequest {
                    name,
                    role: r.as_deref().map(role).transpose()?,
                    groups,
                    ttl_days: Some(days),
                };
                let issued: IssuedToken = api
                    .send(reqwest::Method::POST, "/api/v1/me/tokens", &req)
                    .await?;
                match &output {
                    Some(path) => {
                        write_secret(path, &issued.token)?;
                        if api.json {
                            return print_json(&issued.info);
                        }
                        println!(
                            "token {} ({} of {}, until {}) written to {}",
                            issued.info.name,
                            issued.info.role,
                            groups_text(&issued.info.groups),
                            t(issued.info.expires_at),
                            path.display()
                        );
                    }
                    None if api.json => return print_json(&issued),
                    None => {
                        eprintln!(
                            "token {} ({} of {}, until {}), shown once:",
                            issued.info.name,
                            issued.info.role,
                            groups_text(&issued.info.groups),
                            t(issued.info.expires_at)
                        );
                        println!("{}", issued.token);
                    }
                }
            }
            TokensCommand::Revoke { name, user, conn } => {
                let api = Api::new(&conn)?;
                let path = match &user {
                    Some(u) => format!("/api/v1/users/{u}/tokens/{name}"),
                    None => format!("/api/v1/me/tokens/{name}"),
                };
                let revoked: ApiToken = api.request(reqwest::Method::DELETE, &path, None).await?;
                if api.json {
                    return print_json(&revoked);
                }
                println!("token {} of {} revoked", revoked.name, revoked.user);
            }
        }
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}
