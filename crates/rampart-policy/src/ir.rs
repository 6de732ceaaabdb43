//! The policy IR: policy → checks → rules → probes + matchers.
//!
//! Every front-end compiles to these types, and the engine evaluates only these types, so a native
//! check and a Wazuh SCA check are scored, reported and attested alike. Regexes are compiled here,
//! once per load. Where the dialects disagree on semantics (Wazuh 4.x vs 5.x), the check carries
//! its [`Dialect`] and the engine follows it.

use crate::error::Location;
use crate::sca::osmatch::OsMatch;
use crate::sca::osregex::OsRegex;
use rampart_core::Severity;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

/// Which evaluation semantics a check follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// Wazuh 4.x SCA (`wm_sca.c`): short-circuit, per-line `!`, OS_Regex by default.
    Sca4,
    /// Wazuh 5.x SCA: every rule runs, a lone `!minterm` means "no line matches", PCRE2.
    Sca5,
    /// Rampart's own policies.
    Native,
}

/// Source format of a policy file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyFormat {
    /// Rampart YAML.
    Rampart,
    /// Wazuh SCA, 4.x schema.
    WazuhSca4,
    /// Wazuh SCA, 5.x schema.
    WazuhSca5,
}

impl PolicyFormat {
    /// Stable name used in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            PolicyFormat::Rampart => "rampart",
            PolicyFormat::WazuhSca4 => "wazuh-sca-4",
            PolicyFormat::WazuhSca5 => "wazuh-sca-5",
        }
    }
}

/// A loaded, compiled policy.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Policy id.
    pub id: String,
    /// Human name.
    pub name: String,
    /// Description.
    pub description: String,
    /// File it was loaded from, as named by the user (or `builtin:<name>`).
    pub file: String,
    /// Source format.
    pub format: PolicyFormat,
    /// SHA-256 of the file's bytes.
    pub sha256: String,
    /// References.
    pub references: Vec<String>,
    /// Requirements gate (the policy only applies when it passes).
    pub requirements: Option<Requirements>,
    /// The checks, in file order.
    pub checks: Vec<Check>,
}

/// A requirements gate.
#[derive(Debug, Clone)]
pub struct Requirements {
    /// Title.
    pub title: String,
    /// Description.
    pub description: String,
    /// Aggregation.
    pub condition: Condition,
    /// Rules.
    pub rules: Vec<Rule>,
}

/// How rule results combine into a check result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    /// Every rule must be found.
    All,
    /// At least one rule must be found.
    Any,
    /// No rule may be found.
    None,
}

impl Condition {
    /// The word used in policies.
    pub fn as_str(self) -> &'static str {
        match self {
            Condition::All => "all",
            Condition::Any => "any",
            Condition::None => "none",
        }
    }
}

/// One check.
#[derive(Debug, Clone)]
pub struct Check {
    /// Id, unique within the policy.
    pub id: String,
    /// Title.
    pub title: String,
    /// Description.
    pub description: String,
    /// Rationale.
    pub rationale: String,
    /// Remediation.
    pub remediation: String,
    /// Impact of the remediation.
    pub impact: String,
    /// Severity.
    pub severity: Severity,
    /// References.
    pub references: Vec<String>,
    /// Compliance mappings as written: key → control ids.
    pub compliance: BTreeMap<String, Vec<String>>,
    /// MITRE ATT&CK ids.
    pub mitre: Vec<String>,
    /// Aggregation.
    pub condition: Condition,
    /// Rules, in order.
    pub rules: Vec<Rule>,
    /// Semantics to follow.
    pub dialect: Dialect,
    /// Where the check starts in its file.
    pub location: Location,
    /// Native `applies_if`: rules that must all hold for the check to apply at all.
    pub applies_if: Vec<Rule>,
}

/// One rule: a probe, what to look for, and whether the outcome is negated.
#[derive(Debug, Clone)]
pub struct Rule {
    /// The rule as written (SCA) or a rendering of it (native).
    pub text: String,
    /// `not` prefix.
    pub negated: bool,
    /// What to look at and what to look for.
    pub probe: Probe,
    /// Where the rule is written.
    pub location: Location,
}

/// What a rule looks at.
#[derive(Debug, Clone)]
pub enum Probe {
    /// Files: existence, or a line matching the pattern.
    File {
        /// Paths (a comma list in 4.x is split).
        paths: Vec<String>,
        /// Line pattern; `None` tests existence.
        content: Option<Pattern>,
    },
    /// Directories: existence, or a (recursively searched) file whose name passes the filter and,
    /// optionally, with a line matching the pattern.
    Directory {
        /// Directories.
        paths: Vec<String>,
        /// File name filter; `None` tests existence of the directory.
        filter: Option<NameFilter>,
        /// Line pattern for matched files.
        content: Option<Pattern>,
    },
    /// A command, run without a shell, stdout and stderr merged.
    Command {
        /// The command line as written (after variable substitution).
        command: String,
        /// The tokenised argument vector.
        argv: Vec<String>,
        /// Output line pattern; `None` means "found" without running (4.x).
        output: Option<Pattern>,
    },
    /// Running processes.
    Process {
        /// Pattern tested against each process.
        pattern: Pattern,
    },
    /// A Windows registry key or value.
    Registry {
        /// Key path.
        key: String,
        /// Value name.
        value: Option<String>,
        /// Data pattern.
        data: Option<Pattern>,
    },
    /// File metadata (native): type, permission bits, owner, group.
    Stat(StatTest),
    /// A kernel parameter read from `/proc/sys` (native).
    Sysctl {
        /// Dotted key, e.g. `net.ipv4.ip_forward`.
        key: String,
        /// Pattern the value must match.
        value: Pattern,
    },
    /// An installed package (native): dpkg status database, or `rpm -q`.
    Package {
        /// Package name.
        name: String,
    },
    /// Mount options of a mount point (native): `/proc/mounts`, else `/etc/fstab`.
    Mount {
        /// Mount point.
        point: String,
        /// Options that must all be present (empty: the mount point must exist).
        options: Vec<String>,
    },
}

/// Constraints on a file's metadata. Every given constraint must hold for the rule to be found.
#[derive(Debug, Clone, Default)]
pub struct StatTest {
    /// Path.
    pub path: String,
    /// Permission bits that must NOT be set (e.g. `0o137` for "at most 0640").
    pub forbidden_mode_bits: Option<u32>,
    /// The maximum mode as written, for evidence.
    pub max_mode: Option<u32>,
    /// Acceptable owners (names or numeric uids).
    pub owners: Vec<String>,
    /// Acceptable groups (names or numeric gids).
    pub groups: Vec<String>,
}

/// A directory rule's file-name filter.
#[derive(Debug, Clone)]
pub enum NameFilter {
    /// `r:` filter: OS_Regex against the entry name (4.x). When the regex does not match, Wazuh
    /// still tries OS_Match with the whole filter text (`r:` included), so that is kept too.
    Regex {
        /// The regex after `r:`.
        regex: OsRegex,
        /// OS_Match of the whole filter text.
        fallback: OsMatch,
    },
    /// Anything else: OS_Match (`^`, `$`, `|`, case-insensitive substring) (4.x).
    Match(OsMatch),
    /// A regex filter (5.x `r:` filters are PCRE2; native filters use Rust regex).
    Matcher(Matcher),
    /// 5.x literal filter: case-sensitive exact name.
    Exact(String),
}

/// A conjunction of minterms, tested against one line (or process, or value) at a time.
#[derive(Debug, Clone)]
pub struct Pattern {
    /// The pattern as written.
    pub text: String,
    /// Minterms, all of which must hold.
    pub minterms: Vec<Minterm>,
}

/// One term of a pattern.
#[derive(Debug, Clone)]
pub struct Minterm {
    /// `!` prefix.
    pub negated: bool,
    /// The test.
    pub test: Test,
}

/// A minterm's test.
#[derive(Debug, Clone)]
pub enum Test {
    /// The line matches the regex.
    Regex(Matcher),
    /// The regex's capture, as an integer, compares with a constant.
    Numeric {
        /// Regex with a capture group.
        regex: Matcher,
        /// The comparison as parsed.
        compare: Compare,
        /// The text after ` compare `, as written.
        text: String,
    },
    /// The whole line equals the text.
    Literal {
        /// Text.
        text: String,
        /// 4.x compares case-insensitively, 5.x exactly.
        case_sensitive: bool,
    },
}

/// A parsed numeric comparison, or why it cannot be applied (reported when a line matches, as
/// Wazuh does).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Compare {
    /// `captured OP value`.
    Op(CompareOp, i64),
    /// No ` compare ` keyword at all: Wazuh reports the rule invalid before trying the regex.
    NoKeyword(String),
    /// The comparison text is unusable; rules using it are not applicable.
    Invalid(String),
}

/// Comparison operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

impl CompareOp {
    /// The operator as policies write it.
    pub fn symbol(self) -> &'static str {
        match self {
            CompareOp::Eq => "==",
            CompareOp::Ne => "!=",
            CompareOp::Lt => "<",
            CompareOp::Le => "<=",
            CompareOp::Gt => ">",
            CompareOp::Ge => ">=",
        }
    }

    /// Applies the operator.
    pub fn apply(self, left: i64, right: i64) -> bool {
        match self {
            CompareOp::Eq => left == right,
            CompareOp::Ne => left != right,
            CompareOp::Lt => left < right,
            CompareOp::Le => left <= right,
            CompareOp::Gt => left > right,
            CompareOp::Ge => left >= right,
        }
    }
}

/// A compiled regular expression in one of the supported dialects.
#[derive(Clone)]
pub enum Matcher {
    /// OSSEC OS_Regex (Wazuh 4.x default).
    Os(OsRegex),
    /// PCRE2 (Wazuh `regex_type: pcre2`, and 5.x).
    Pcre(Arc<pcre2::bytes::Regex>),
    /// Rust `regex` syntax (native policies; linear time).
    Rust(regex::bytes::Regex),
    /// A Wazuh pattern that does not compile: Wazuh treats it as never matching; lint reports it.
    Broken {
        /// The pattern.
        pattern: String,
        /// The compiler's complaint.
        error: String,
    },
}

impl fmt::Debug for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Matcher::Os(r) => write!(f, "{r:?}"),
            Matcher::Pcre(r) => write!(f, "Pcre({:?})", r.as_str()),
            Matcher::Rust(r) => write!(f, "Rust({:?})", r.as_str()),
            Matcher::Broken { pattern, error } => write!(f, "Broken({pattern:?}: {error})"),
        }
    }
}

impl Matcher {
    /// Whether the regex matches somewhere in the subject. A PCRE2 match error (resource limits)
    /// counts as no match, as in Wazuh.
    pub fn is_match(&self, subject: &[u8]) -> bool {
        match self {
            Matcher::Os(r) => r.is_match(subject),
            Matcher::Pcre(r) => r.is_match(subject).unwrap_or(false),
            Matcher::Rust(r) => r.is_match(subject),
            Matcher::Broken { .. } => false,
        }
    }

    /// `None` when there is no match; otherwise the first capture group's text (`None` inside
    /// when the regex has no group or it did not participate).
    pub fn first_capture(&self, subject: &[u8]) -> Option<Option<Vec<u8>>> {
        match self {
            Matcher::Os(r) => r.captures(subject).map(|c| c.into_iter().next()),
            Matcher::Pcre(r) => match r.captures(subject) {
                Ok(Some(c)) => Some(c.get(1).map(|m| m.as_bytes().to_vec())),
                _ => None,
            },
            Matcher::Rust(r) => r
                .captures(subject)
                .map(|c| c.get(1).map(|m| m.as_bytes().to_vec())),
            Matcher::Broken { .. } => None,
        }
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        match self {
            Matcher::Os(r) => r.as_str(),
            Matcher::Pcre(r) => r.as_str(),
            Matcher::Rust(r) => r.as_str(),
            Matcher::Broken { pattern, .. } => pattern,
        }
    }
}
