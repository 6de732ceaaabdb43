//! Roles, the permissions they hold, and the agent groups a grant may be limited to.
//!
//! The model is deliberately small and closed: four roles, one permission per kind of thing
//! and whether it is read or changed. Every endpoint names exactly one permission (the route
//! table), so the matrix in `docs/access.md` is the whole truth about who may do what, and a
//! test walks it endpoint by endpoint.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// What a user (or one of their tokens) is.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything, including users and the CA.
    Admin,
    /// Runs the fleet: agents, policies and their assignments, enrolment tokens, feeds, scans.
    Operator,
    /// Reads everything, the audit log included; changes nothing.
    Auditor,
    /// Reads the fleet, results and threat intel.
    Viewer,
}

/// One thing an endpoint requires.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Permission {
    /// Anyone with a valid credential: their own account, tokens and sessions.
    SelfService,
    /// List and show agents.
    AgentsRead,
    /// Revoke agents, ask them to scan now.
    AgentsManage,
    /// List enrolment tokens (never their secret).
    EnrolmentRead,
    /// Issue and revoke enrolment tokens.
    EnrolmentManage,
    /// Read policies, their versions, content and assignments.
    PoliciesRead,
    /// Upload policies; assign and unassign them.
    PoliciesManage,
    /// Runs, check results, history, scores, diffs.
    ResultsRead,
    /// Lookups, matches, exports, feeds and their health, fleet hits, TAXII.
    IntelRead,
    /// Define, remove, sync and upload feeds; record sightings.
    IntelManage,
    /// List users and their tokens.
    UsersRead,
    /// Add, disable and change users; revoke anyone's tokens and sessions.
    UsersManage,
    /// Search, export and verify the audit log.
    AuditRead,
    /// Rotate the attestation signing keys.
    KeysManage,
    /// Ask for a waiver (justification, scope, last day).
    WaiversRequest,
    /// Approve or deny someone else's waiver request.
    WaiversDecide,
    /// Scrape the server's Prometheus metrics (fleet-wide counts and scores).
    MetricsRead,
    /// Define, change and remove event destinations (SIEMs, webhooks); read and resolve their
    /// dead letters.
    EventsManage,
}

impl Permission {
    /// Every permission, in a fixed order (documentation, tests).
    pub const ALL: [Permission; 18] = [
        Permission::SelfService,
        Permission::AgentsRead,
        Permission::AgentsManage,
        Permission::EnrolmentRead,
        Permission::EnrolmentManage,
        Permission::PoliciesRead,
        Permission::PoliciesManage,
        Permission::ResultsRead,
        Permission::IntelRead,
        Permission::IntelManage,
        Permission::UsersRead,
        Permission::UsersManage,
        Permission::AuditRead,
        Permission::KeysManage,
        Permission::WaiversRequest,
        Permission::WaiversDecide,
        Permission::MetricsRead,
        Permission::EventsManage,
    ];

    /// The name used in the API, the OpenAPI document and error messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::SelfService => "self_service",
            Permission::AgentsRead => "agents_read",
            Permission::AgentsManage => "agents_manage",
            Permission::EnrolmentRead => "enrolment_read",
            Permission::EnrolmentManage => "enrolment_manage",
            Permission::PoliciesRead => "policies_read",
            Permission::PoliciesManage => "policies_manage",
            Permission::ResultsRead => "results_read",
            Permission::IntelRead => "intel_read",
            Permission::IntelManage => "intel_manage",
            Permission::UsersRead => "users_read",
            Permission::UsersManage => "users_manage",
            Permission::AuditRead => "audit_read",
            Permission::KeysManage => "keys_manage",
            Permission::WaiversRequest => "waivers_request",
            Permission::WaiversDecide => "waivers_decide",
            Permission::MetricsRead => "metrics_read",
            Permission::EventsManage => "events_manage",
        }
    }

    /// Whether exercising it changes nothing. A grant limited to some groups keeps its role's
    /// reads of fleet-wide things (policies, intel) but none of its fleet-wide changes: an
    /// "operator of web" must not redefine a feed every group's hits depend on.
    pub fn is_read(self) -> bool {
        matches!(
            self,
            Permission::SelfService
                | Permission::AgentsRead
                | Permission::EnrolmentRead
                | Permission::PoliciesRead
                | Permission::ResultsRead
                | Permission::IntelRead
                | Permission::UsersRead
                | Permission::AuditRead
                | Permission::MetricsRead
        )
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Role {
    /// Every role, most powerful first.
    pub const ALL: [Role; 4] = [Role::Admin, Role::Operator, Role::Auditor, Role::Viewer];

    /// The name used in the API, the CLI and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Operator => "operator",
            Role::Auditor => "auditor",
            Role::Viewer => "viewer",
        }
    }

    /// Whether the role holds `p` (before any group limit).
    pub fn allows(self, p: Permission) -> bool {
        use Permission::*;
        match self {
            Role::Admin => true,
            Role::Operator => matches!(
                p,
                SelfService
                    | AgentsRead
                    | AgentsManage
                    | EnrolmentRead
                    | EnrolmentManage
                    | PoliciesRead
                    | PoliciesManage
                    | ResultsRead
                    | IntelRead
                    | IntelManage
                    | WaiversRequest
                    | MetricsRead
            ),
            // An auditor changes nothing but decides on risks others want accepted.
            Role::Auditor => p.is_read() || p == WaiversDecide,
            Role::Viewer => matches!(
                p,
                SelfService | AgentsRead | PoliciesRead | ResultsRead | IntelRead | MetricsRead
            ),
        }
    }

    /// Whether every permission of `self` is also one of `other`'s: a token may carry a role
    /// only if it is at most its user's. Operator and auditor are not comparable.
    pub fn is_within(self, other: Role) -> bool {
        Permission::ALL
            .iter()
            .all(|&p| !self.allows(p) || other.allows(p))
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A role name that is not one of the four.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("role {0:?}: one of admin, operator, auditor, viewer")]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;

    fn from_str(s: &str) -> Result<Role, UnknownRole> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| UnknownRole(s.to_owned()))
    }
}

/// Which agent groups a grant covers.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Scope {
    /// The whole fleet.
    #[default]
    All,
    /// Only agents in these groups (never empty).
    Groups(BTreeSet<String>),
}

impl Scope {
    /// A scope from a list of group names: none means the whole fleet. Each name follows the
    /// rule for agent group names.
    pub fn from_groups<I, S>(groups: I) -> Result<Scope, String>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut set = BTreeSet::new();
        for g in groups {
            let g = g.into();
            rampart_core::names::check_name("group", &g)?;
            set.insert(g);
        }
        Ok(if set.is_empty() {
            Scope::All
        } else {
            Scope::Groups(set)
        })
    }

    /// The groups, or `None` for the whole fleet.
    pub fn groups(&self) -> Option<&BTreeSet<String>> {
        match self {
            Scope::All => None,
            Scope::Groups(g) => Some(g),
        }
    }

    /// Whether `group` is covered.
    pub fn covers(&self, group: &str) -> bool {
        match self {
            Scope::All => true,
            Scope::Groups(g) => g.contains(group),
        }
    }

    /// Whether every group `self` covers is covered by `other`.
    pub fn is_within(&self, other: &Scope) -> bool {
        match (self, other) {
            (_, Scope::All) => true,
            (Scope::All, Scope::Groups(_)) => false,
            (Scope::Groups(mine), Scope::Groups(theirs)) => mine.is_subset(theirs),
        }
    }
}

/// What a request acts on, as far as group limits are concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target<'a> {
    /// Something fleet-wide: a policy, a feed, a user, the audit log.
    Fleet,
    /// A list the handler filters to the caller's groups.
    Listing,
    /// One agent group, or something inside it (an agent, its runs, a token for it).
    Group(&'a str),
    /// Something computed over every group's agents (a fleet-wide score, every IOC hit): a
    /// group-limited grant would see other groups through it, so only a whole-fleet grant may.
    AllGroups,
}

/// A role, limited to some groups or not: what a user holds and what a token carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// The role.
    pub role: Role,
    /// The groups it applies to.
    pub scope: Scope,
}

/// Why a grant does not allow a request; the message names what is missing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    /// The role lacks the permission.
    #[error("this needs the {permission} permission, which the {role} role does not have")]
    Permission {
        /// What was needed.
        permission: Permission,
        /// What the caller is.
        role: Role,
    },
    /// The grant is limited to other groups.
    #[error("the {role} role is limited to groups {groups}; this acts on group {group}")]
    Group {
        /// What the caller is.
        role: Role,
        /// The caller's groups.
        groups: String,
        /// The group acted on.
        group: String,
    },
    /// A group-limited grant asked for something computed over every group.
    #[error("this covers every group's agents; the {role} role here is limited to groups {groups}")]
    AllGroups {
        /// What the caller is.
        role: Role,
        /// The caller's groups.
        groups: String,
    },
    /// A group-limited grant asked for a fleet-wide change.
    #[error(
        "{permission} changes something fleet-wide; the {role} role here is limited to groups {groups}"
    )]
    FleetWide {
        /// What was needed.
        permission: Permission,
        /// What the caller is.
        role: Role,
        /// The caller's groups.
        groups: String,
    },
}

impl Grant {
    /// A grant of `role` over the whole fleet.
    pub fn fleet(role: Role) -> Grant {
        Grant {
            role,
            scope: Scope::All,
        }
    }

    /// Whether this grant may exercise `permission` on `target`.
    pub fn check(&self, permission: Permission, target: Target<'_>) -> Result<(), Denied> {
        if !self.role.allows(permission) {
            return Err(Denied::Permission {
                permission,
                role: self.role,
            });
        }
        let Scope::Groups(groups) = &self.scope else {
            return Ok(());
        };
        let list = || groups.iter().cloned().collect::<Vec<_>>().join(",");
        match target {
            Target::Listing => Ok(()),
            Target::Fleet if permission.is_read() => Ok(()),
            Target::Fleet => Err(Denied::FleetWide {
                permission,
                role: self.role,
                groups: list(),
            }),
            Target::AllGroups => Err(Denied::AllGroups {
                role: self.role,
                groups: list(),
            }),
            Target::Group(g) if groups.contains(g) => Ok(()),
            Target::Group(g) => Err(Denied::Group {
                role: self.role,
                groups: list(),
                group: g.to_owned(),
            }),
        }
    }

    /// Whether a token carrying `self` may be issued to a user holding `user`.
    pub fn is_within(&self, user: &Grant) -> bool {
        self.role.is_within(user.role) && self.scope.is_within(&user.scope)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Permission::*;

    /// The matrix of docs/access.md, written out by hand: each role's permissions.
    #[test]
    fn roles_hold_what_the_documented_matrix_says() {
        let expected: [(Role, &[Permission]); 4] = [
            (Role::Admin, &Permission::ALL),
            (
                Role::Operator,
                &[
                    SelfService,
                    AgentsRead,
                    AgentsManage,
                    EnrolmentRead,
                    EnrolmentManage,
                    PoliciesRead,
                    PoliciesManage,
                    ResultsRead,
                    IntelRead,
                    IntelManage,
                    WaiversRequest,
                    MetricsRead,
                ],
            ),
            (
                Role::Auditor,
                &[
                    SelfService,
                    AgentsRead,
                    EnrolmentRead,
                    PoliciesRead,
                    ResultsRead,
                    IntelRead,
                    UsersRead,
                    AuditRead,
                    WaiversDecide,
                    MetricsRead,
                ],
            ),
            (
                Role::Viewer,
                &[
                    SelfService,
                    AgentsRead,
                    PoliciesRead,
                    ResultsRead,
                    IntelRead,
                    MetricsRead,
                ],
            ),
        ];
        for (role, held) in expected {
            for p in Permission::ALL {
                assert_eq!(role.allows(p), held.contains(&p), "{role} {p}");
            }
        }
    }

    #[test]
    fn names_round_trip_and_unknown_roles_are_refused() {
        for r in Role::ALL {
            assert_eq!(r.as_str().parse::<Role>(), Ok(r));
            assert_eq!(serde_json::to_string(&r).unwrap(), format!("\"{r}\""));
        }
        for p in Permission::ALL {
            assert_eq!(serde_json::to_string(&p).unwrap(), format!("\"{p}\""));
        }
        assert_eq!(
            "root".parse::<Role>().unwrap_err().to_string(),
            "role \"root\": one of admin, operator, auditor, viewer"
        );
        assert!("Admin".parse::<Role>().is_err());
    }

    #[test]
    fn role_order_for_tokens() {
        assert!(Role::Viewer.is_within(Role::Operator));
        assert!(Role::Viewer.is_within(Role::Auditor));
        assert!(Role::Operator.is_within(Role::Admin));
        assert!(Role::Auditor.is_within(Role::Admin));
        assert!(!Role::Operator.is_within(Role::Auditor));
        assert!(!Role::Auditor.is_within(Role::Operator));
        assert!(!Role::Admin.is_within(Role::Operator));
        for r in Role::ALL {
            assert!(r.is_within(r));
        }
    }

    fn web_operator() -> Grant {
        Grant {
            role: Role::Operator,
            scope: Scope::from_groups(["web"]).unwrap(),
        }
    }

    #[test]
    fn group_limits() {
        let g = web_operator();
        assert_eq!(g.check(AgentsManage, Target::Group("web")), Ok(()));
        assert_eq!(
            g.check(AgentsManage, Target::Group("db"))
                .unwrap_err()
                .to_string(),
            "the operator role is limited to groups web; this acts on group db"
        );
        assert_eq!(g.check(AgentsRead, Target::Listing), Ok(()));
        assert_eq!(g.check(IntelRead, Target::Fleet), Ok(()));
        assert_eq!(
            g.check(IntelManage, Target::Fleet).unwrap_err().to_string(),
            "intel_manage changes something fleet-wide; the operator role here is limited to groups web"
        );
        assert_eq!(
            g.check(UsersRead, Target::Fleet).unwrap_err().to_string(),
            "this needs the users_read permission, which the operator role does not have"
        );
        assert_eq!(
            g.check(ResultsRead, Target::AllGroups)
                .unwrap_err()
                .to_string(),
            "this covers every group's agents; the operator role here is limited to groups web"
        );
        let all = Grant::fleet(Role::Operator);
        assert_eq!(all.check(ResultsRead, Target::AllGroups), Ok(()));
        assert_eq!(all.check(IntelManage, Target::Fleet), Ok(()));
        assert_eq!(all.check(AgentsManage, Target::Group("db")), Ok(()));
    }

    #[test]
    fn token_grants_stay_within_their_user() {
        let user = web_operator();
        let viewer_web = Grant {
            role: Role::Viewer,
            scope: Scope::from_groups(["web"]).unwrap(),
        };
        assert!(viewer_web.is_within(&user));
        assert!(!Grant::fleet(Role::Viewer).is_within(&user));
        let wider = Grant {
            role: Role::Viewer,
            scope: Scope::from_groups(["web", "db"]).unwrap(),
        };
        assert!(!wider.is_within(&user));
        assert!(user.is_within(&Grant::fleet(Role::Admin)));
        assert!(!Grant::fleet(Role::Auditor).is_within(&Grant::fleet(Role::Operator)));
    }

    #[test]
    fn scopes_validate_group_names() {
        assert_eq!(Scope::from_groups(Vec::<String>::new()), Ok(Scope::All));
        assert!(Scope::from_groups(["../x"]).is_err());
        assert_eq!(
            Scope::from_groups(["db", "web", "db"])
                .unwrap()
                .groups()
                .unwrap()
                .len(),
            2
        );
    }
}
