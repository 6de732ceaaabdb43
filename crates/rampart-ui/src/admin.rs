//! The administration pages: the waivers inbox and enrolment tokens.
//!
//! Each page is built for one viewer: the server decides which forms they may use (a role
//! without the right gets no form, and the server refuses the post anyway), and which rows
//! they may act on (nobody decides on their own request).

use askama::Template;

use crate::pages::{Page, Shell};

/// A short message after an action that worked, or why one did not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// It worked: what happened.
    Done(String),
    /// It was refused: why, in the server's words.
    Refused(String),
}

impl Notice {
    /// The class and ARIA role the page gives it: a refusal is an alert.
    pub fn is_refusal(&self) -> bool {
        matches!(self, Notice::Refused(_))
    }

    /// Its text.
    pub fn text(&self) -> &str {
        match self {
            Notice::Done(t) | Notice::Refused(t) => t,
        }
    }
}

/// One waiver as the inbox lists it.
#[derive(Debug, Clone)]
pub struct WaiverRow {
    /// Its id.
    pub id: String,
    /// The check id or glob (`POLICY:GLOB`).
    pub check: String,
    /// The policy and check id of the page of that check across the fleet, when it names one
    /// check of one policy.
    pub check_page: Option<(String, String)>,
    /// Who it covers, as text (`the fleet`, `group web`, `agent web-01`).
    pub scope: String,
    /// The covered agent's id, for an agent scope (its page is linked).
    pub scope_agent: Option<String>,
    /// Why the risk is accepted.
    pub justification: String,
    /// Its last valid day.
    pub until: String,
    /// Days from today to its last day (0 on the day itself).
    pub days_left: i64,
    /// `pending`, `approved`, `denied` or `expired`.
    pub state: String,
    /// Who asked, and when.
    pub requested_by: String,
    /// When (UTC, to the minute).
    pub requested_at: String,
    /// Who decided, when, and what they said.
    pub decided: Option<Decision>,
    /// Whether this viewer may approve or deny it (a pending request of someone else, and the
    /// viewer's role decides on waivers).
    pub decidable: bool,
    /// Whether the viewer asked for it.
    pub own: bool,
}

/// A decision on a waiver.
#[derive(Debug, Clone)]
pub struct Decision {
    /// Who.
    pub by: String,
    /// When (UTC, to the minute).
    pub at: String,
    /// Their note.
    pub note: Option<String>,
}

/// The request form's values: empty for a new request, as posted when the server refused it.
#[derive(Debug, Clone, Default)]
pub struct WaiverForm {
    /// Check id or glob.
    pub check: String,
    /// `fleet`, `group` or `agent`.
    pub scope: String,
    /// The group or agent id.
    pub name: String,
    /// Last day, `YYYY-MM-DD`.
    pub until: String,
    /// Why.
    pub justification: String,
}

impl WaiverForm {
    /// Whether the scope menu's `kind` entry is the chosen one.
    pub fn scope_is(&self, kind: &str) -> bool {
        self.scope == kind || (self.scope.is_empty() && kind == "fleet")
    }
}

/// `/ui/waivers`: the waivers inbox.
#[derive(Debug, Template)]
#[template(path = "waivers.html")]
pub struct WaiversPage {
    /// The signed-in user.
    pub shell: Shell,
    /// After an action.
    pub notice: Option<Notice>,
    /// Requests waiting for a decision, oldest first.
    pub pending: Vec<WaiverRow>,
    /// Approved waivers whose last day is within the warning window, soonest first.
    pub expiring: Vec<WaiverRow>,
    /// How many days ahead "expiring soon" looks.
    pub expiring_days: i64,
    /// Every approved waiver in force, soonest last day first.
    pub in_force: Vec<WaiverRow>,
    /// Denied and expired waivers, newest request first.
    pub closed: Vec<WaiverRow>,
    /// The request form, for a role that may ask for waivers.
    pub request: Option<WaiverForm>,
    /// The earliest and latest last day a request may name.
    pub first_day: String,
    /// See `first_day`.
    pub last_day: String,
}

impl Page for WaiversPage {
    const NAME: &'static str = "waivers";
}

/// One enrolment token as the list shows it (never its secret: only its id is stored).
#[derive(Debug, Clone)]
pub struct TokenRow {
    /// Its id (the JWT `jti`).
    pub jti: String,
    /// The group agents join.
    pub group: String,
    /// The labels they get, `key=value`.
    pub labels: Vec<String>,
    /// Enrolments made with it.
    pub uses: u32,
    /// Enrolments it allows.
    pub max_uses: u32,
    /// When it was made (UTC, to the minute).
    pub created: String,
    /// When it stops being accepted.
    pub expires: String,
    /// `active`, `used up`, `expired` or `revoked`.
    pub state: &'static str,
    /// The agent it re-enrols, if it is a re-enrolment token.
    pub reenrol: Option<String>,
    /// Whether this viewer may revoke it (active, and their role manages that group).
    pub revocable: bool,
}

impl TokenRow {
    /// The state as a class name (no spaces).
    pub fn state_class(&self) -> &'static str {
        match self.state {
            "used up" => "used-up",
            other => other,
        }
    }
}

/// A token just made: shown once, in the answer to the form that made it.
#[derive(Debug, Clone)]
pub struct CreatedToken {
    /// The token to hand to the agent.
    pub token: String,
    /// Its id.
    pub jti: String,
    /// Its group.
    pub group: String,
    /// When it stops being accepted (UTC, to the minute).
    pub expires_at: String,
    /// The server address agents enrol at.
    pub server: String,
}

/// The new-token form's values.
#[derive(Debug, Clone)]
pub struct TokenForm {
    /// The group.
    pub group: String,
    /// Labels, one `key=value` per line.
    pub labels: String,
    /// Lifetime in seconds (one of [`TokenForm::LIFETIMES`]).
    pub ttl_secs: i64,
    /// Enrolments allowed.
    pub max_uses: u32,
}

impl Default for TokenForm {
    fn default() -> TokenForm {
        TokenForm {
            group: String::new(),
            labels: String::new(),
            ttl_secs: 3600,
            max_uses: 1,
        }
    }
}

impl TokenForm {
    /// The lifetimes offered: short, as enrolment tokens should be.
    pub const LIFETIMES: [(i64, &'static str); 4] = [
        (900, "15 minutes"),
        (3600, "1 hour"),
        (86_400, "1 day"),
        (604_800, "7 days"),
    ];

    /// [`TokenForm::LIFETIMES`], for the template.
    pub fn lifetimes(&self) -> &'static [(i64, &'static str)] {
        &Self::LIFETIMES
    }
}

/// `/ui/tokens`: enrolment tokens.
#[derive(Debug, Template)]
#[template(path = "tokens.html")]
pub struct TokensPage {
    /// The signed-in user.
    pub shell: Shell,
    /// After an action.
    pub notice: Option<Notice>,
    /// The token just made, shown this once.
    pub created: Option<CreatedToken>,
    /// The tokens of the viewer's groups, newest first.
    pub tokens: Vec<TokenRow>,
    /// The form, for a role that may issue tokens.
    pub form: Option<TokenForm>,
}

impl Page for TokensPage {
    const NAME: &'static str = "tokens";
}

/// One audit entry as the search lists it.
#[derive(Debug, Clone)]
pub struct AuditRow {
    /// Its index in the log.
    pub index: u64,
    /// When (UTC, to the second).
    pub time: String,
    /// Who.
    pub actor: String,
    /// With which credential.
    pub via: Option<String>,
    /// From which address.
    pub source: Option<String>,
    /// What.
    pub action: String,
    /// To what.
    pub target: String,
    /// `success`, `failure` or `denied`.
    pub outcome: String,
    /// Particulars, `key: value`.
    pub details: Vec<String>,
}

/// The search form's values, as asked.
#[derive(Debug, Clone, Default)]
pub struct AuditFilters {
    /// Exactly this actor.
    pub actor: String,
    /// This action, or a prefix ending in `*`.
    pub action: String,
    /// Exactly this target.
    pub target: String,
    /// From this day (UTC, `YYYY-MM-DD`).
    pub since: String,
    /// To this day, inclusive.
    pub until: String,
}

/// What verifying the stored log found.
#[derive(Debug, Clone)]
pub struct VerificationView {
    /// Whether nothing is wrong.
    pub intact: bool,
    /// Entries read.
    pub entries: u64,
    /// Signed checkpoints read.
    pub checkpoints: u64,
    /// Those whose root the entries recompute to.
    pub checkpoints_matched: u64,
    /// The largest checkpoint: its size and when it was signed.
    pub latest: Option<(u64, String)>,
    /// Entries after it, not yet signed.
    pub unsigned: u64,
    /// What is wrong.
    pub problems: Vec<String>,
    /// How long it took, in milliseconds.
    pub took_ms: u128,
}

/// `/ui/audit`: the audit log searched, newest first, and its verification.
#[derive(Debug, Template)]
#[template(path = "audit.html")]
pub struct AuditLogPage {
    /// The signed-in user.
    pub shell: Shell,
    /// Why a verification did not run, if it did not.
    pub notice: Option<Notice>,
    /// The search asked.
    pub filters: AuditFilters,
    /// The outcome menu.
    pub outcome: crate::pages::Select,
    /// The entries found, newest first.
    pub entries: Vec<AuditRow>,
    /// The query of the next (older) page, when there is one.
    pub older: Option<String>,
    /// Entries in the log.
    pub size: u64,
    /// The latest signed checkpoint: its size and time.
    pub latest: Option<(u64, String)>,
    /// The verification, when one was asked for.
    pub verification: Option<VerificationView>,
}

impl Page for AuditLogPage {
    const NAME: &'static str = "audit";
}

/// One user as the users page lists them.
#[derive(Debug, Clone)]
pub struct UserRow {
    /// Login name.
    pub name: String,
    /// Role.
    pub role: String,
    /// The groups the role is limited to, comma-separated; empty: the whole fleet.
    pub groups: String,
    /// `active`, `disabled` or `one-time password` (must change it at the next sign-in).
    pub state: &'static str,
    /// How they sign in: `password`, `OpenID Connect` or both.
    pub sign_in: String,
    /// When the account was made (UTC, to the minute).
    pub created: String,
    /// Whether the account is disabled.
    pub disabled: bool,
    /// Whether it is the viewer.
    pub is_self: bool,
}

/// One API token as the users page lists it (never its secret: its first characters).
#[derive(Debug, Clone)]
pub struct ApiTokenRow {
    /// Its owner.
    pub user: String,
    /// Its name.
    pub name: String,
    /// Its first characters, to recognise it.
    pub shown: String,
    /// The role it carries.
    pub role: String,
    /// Its group limit, comma-separated; empty: the owner's.
    pub groups: String,
    /// When it was made, expires and was last used (UTC, to the minute).
    pub created: String,
    /// See `created`.
    pub expires: String,
    /// See `created`; empty: never.
    pub last_used: String,
    /// `live`, `expired` or `revoked`.
    pub state: &'static str,
}

/// A one-time password just given: shown once, in the answer to the form.
#[derive(Debug, Clone)]
pub struct IssuedPassword {
    /// Whose.
    pub user: String,
    /// The password.
    pub password: String,
}

/// The new-user form's values.
#[derive(Debug, Clone, Default)]
pub struct NewUserForm {
    /// Login name.
    pub name: String,
    /// Role.
    pub role: String,
    /// Groups, comma-separated.
    pub groups: String,
}

/// `/ui/users`: users and API tokens.
#[derive(Debug, Template)]
#[template(path = "users.html")]
pub struct UsersPage {
    /// The signed-in user.
    pub shell: Shell,
    /// After an action.
    pub notice: Option<Notice>,
    /// A one-time password just given.
    pub issued: Option<IssuedPassword>,
    /// Every user, by name.
    pub users: Vec<UserRow>,
    /// Every API token, by owner and newest first.
    pub tokens: Vec<ApiTokenRow>,
    /// Whether the viewer may change users and revoke their tokens (the forms are shown).
    pub manage: bool,
    /// The new-user form, for a role that manages users.
    pub create: NewUserForm,
    /// The roles, most powerful first.
    pub roles: Vec<&'static str>,
}

impl Page for UsersPage {
    const NAME: &'static str = "users";
}
