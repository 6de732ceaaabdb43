//! Errors and diagnostics of policy loading, with the place they refer to.

use std::fmt;

/// A place in a policy file (1-based line and column; 0 when unknown).
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
pub struct Location {
    /// File as the user named it (or `builtin:<name>`).
    pub file: String,
    /// Line, 1-based.
    pub line: u64,
    /// Column, 1-based.
    pub column: u64,
}

impl Location {
    /// A location in `file` at `line`:`column`.
    pub fn new(file: &str, line: u64, column: u64) -> Location {
        Location {
            file: file.to_string(),
            line,
            column,
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}", self.file)
        } else {
            write!(f, "{}:{}:{}", self.file, self.line, self.column)
        }
    }
}

/// How serious a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// The policy is usable but probably does not do what its author meant.
    Warning,
    /// The policy cannot be used.
    Error,
}

/// One finding about a policy, pointing at the place and the check.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Diagnostic {
    /// Severity.
    pub level: Level,
    /// Where.
    pub location: Location,
    /// Which check, when the finding is about one.
    pub check: Option<String>,
    /// A short machine code (`sca-d-plus`, `bad-regex`, ...), stable for filtering.
    pub code: &'static str,
    /// What is wrong and, where possible, how to fix it.
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = match self.level {
            Level::Warning => "warning",
            Level::Error => "error",
        };
        write!(f, "{}: {level}[{}]: ", self.location, self.code)?;
        if let Some(c) = &self.check {
            write!(f, "check {c}: ")?;
        }
        f.write_str(&self.message)
    }
}

/// Why a policy could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The file could not be read.
    #[error("{path}: cannot read policy: {source}")]
    Read {
        /// File.
        path: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// The policy is invalid; every error found is listed (first one in the message).
    #[error("{}", render(.0))]
    Invalid(Vec<Diagnostic>),
}

fn render(diags: &[Diagnostic]) -> String {
    let mut out = String::new();
    for (i, d) in diags.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(&d.to_string());
    }
    out
}

impl PolicyError {
    /// An invalid-policy error with one diagnostic.
    pub fn at(
        location: Location,
        check: Option<String>,
        code: &'static str,
        message: impl Into<String>,
    ) -> PolicyError {
        PolicyError::Invalid(vec![Diagnostic {
            level: Level::Error,
            location,
            check,
            code,
            message: message.into(),
        }])
    }

    /// The diagnostics carried by an invalid-policy error.
    pub fn diagnostics(&self) -> &[Diagnostic] {
        match self {
            PolicyError::Invalid(d) => d,
            PolicyError::Read { .. } => &[],
        }
    }
}
