//! Waivers: accepted risks, written down with a justification, an approver and an expiry date.
//!
//! Wazuh users have asked for years for a way to mark checks as accepted (wazuh#3596, #12394,
//! #16269) and end up editing the policy files. Rampart keeps policies pristine and records
//! exceptions beside them:
//!
//! ```yaml
//! waivers:
//!   - check: "33010"            # check id, or a glob such as "331*"
//!     policy: cis_debian12      # optional: only this policy
//!     justification: "/tmp is a tmpfs managed by systemd on this fleet"
//!     approver: "J. Doe (CISO)"
//!     expires: 2027-03-31       # optional; after this day the waiver is ignored, with a warning
//! ```
//!
//! A waived check is reported as `waived` with its justification and excluded from the score. A
//! malformed file is an error, never silently ignored.

use crate::error::{Location, PolicyError};
use globset::{Glob, GlobMatcher};
use rampart_core::{ScanReport, Status, WaiverInfo};
use serde::Deserialize;
use serde_saphyr::Spanned;
use time::Date;
use time::macros::format_description;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    waivers: Vec<Spanned<RawWaiver>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWaiver {
    check: Spanned<String>,
    policy: Option<String>,
    justification: Option<Spanned<String>>,
    approver: Option<String>,
    expires: Option<Spanned<String>>,
}

/// One waiver.
#[derive(Debug, Clone)]
pub struct Waiver {
    /// Check id or glob.
    pub pattern: String,
    matcher: GlobMatcher,
    /// Restricts the waiver to one policy id.
    pub policy: Option<String>,
    /// Why the risk is accepted.
    pub justification: String,
    /// Who approved it.
    pub approver: Option<String>,
    /// Last valid day.
    pub expires: Option<Date>,
    /// Where it is written.
    pub location: Location,
    /// The server's id, for a waiver approved on the server.
    pub id: Option<String>,
}

impl Waiver {
    /// A waiver approved on the server: `check` is a check id or glob, optionally prefixed
    /// with a policy id and a colon (`cis_debian12:3301*`). The error says what is wrong with
    /// the pattern.
    pub fn approved(
        id: &str,
        check: &str,
        justification: &str,
        approver: &str,
        expires: Date,
    ) -> Result<Waiver, String> {
        let (policy, pattern) = split_check(check)?;
        let matcher = Glob::new(pattern)
            .map_err(|e| format!("check {check:?}: invalid glob: {e}"))?
            .compile_matcher();
        Ok(Waiver {
            pattern: pattern.to_owned(),
            matcher,
            policy: policy.map(str::to_owned),
            justification: justification.to_owned(),
            approver: Some(approver.to_owned()),
            expires: Some(expires),
            location: Location::new(&format!("waiver {id}"), 0, 0),
            id: Some(id.to_owned()),
        })
    }
}

/// `POLICY:GLOB` or `GLOB`: the policy id (if given) and the check glob, both non-empty.
pub fn split_check(check: &str) -> Result<(Option<&str>, &str), String> {
    let (policy, pattern) = match check.split_once(':') {
        Some((p, g)) => (Some(p.trim()), g.trim()),
        None => (None, check.trim()),
    };
    if pattern.is_empty() || policy.is_some_and(str::is_empty) {
        return Err(format!(
            "check {check:?}: a check id or glob, optionally after a policy id and a colon (cis_debian12:3301*)"
        ));
    }
    Glob::new(pattern).map_err(|e| format!("check {check:?}: invalid glob: {e}"))?;
    Ok((policy, pattern))
}

/// A parsed waivers file.
#[derive(Debug, Clone, Default)]
pub struct Waivers {
    /// Waivers in file order (the first matching one applies).
    pub waivers: Vec<Waiver>,
}

impl Waivers {
    /// Parses a waivers file.
    pub fn parse(source: &str, file: &str) -> Result<Waivers, PolicyError> {
        let raw: RawFile =
            serde_saphyr::from_str(source).map_err(|e| crate::yaml_error(file, &e))?;
        let mut diags = Vec::new();
        let mut out = Vec::new();
        for w in raw.waivers {
            let loc = Location::new(file, w.referenced.line(), w.referenced.column());
            let w = w.value;
            let check_loc =
                Location::new(file, w.check.referenced.line(), w.check.referenced.column());
            let pattern = w.check.value.trim().to_string();
            let err = |at: Location, code: &'static str, msg: String| crate::error::Diagnostic {
                level: crate::error::Level::Error,
                location: at,
                check: Some(pattern.clone()),
                code,
                message: msg,
            };
            if pattern.is_empty() {
                diags.push(err(
                    check_loc.clone(),
                    "bad-waiver",
                    "'check' must name a check id or glob".into(),
                ));
                continue;
            }
            let matcher = match Glob::new(&pattern) {
                Ok(g) => g.compile_matcher(),
                Err(e) => {
                    diags.push(err(
                        check_loc.clone(),
                        "bad-waiver",
                        format!("invalid glob: {e}"),
                    ));
                    continue;
                }
            };
            let justification = match &w.justification {
                Some(j) if !j.value.trim().is_empty() => j.value.trim().to_string(),
                Some(j) => {
                    let at = Location::new(file, j.referenced.line(), j.referenced.column());
                    diags.push(err(
                        at,
                        "bad-waiver",
                        "'justification' must not be empty".into(),
                    ));
                    continue;
                }
                None => {
                    diags.push(err(
                        loc.clone(),
                        "bad-waiver",
                        "'justification' is required".into(),
                    ));
                    continue;
                }
            };
            let expires = match &w.expires {
                None => None,
                Some(e) => {
                    let fmt = format_description!("[year]-[month]-[day]");
                    match Date::parse(e.value.trim(), &fmt) {
                        Ok(d) => Some(d),
                        Err(_) => {
                            let at =
                                Location::new(file, e.referenced.line(), e.referenced.column());
                            diags.push(err(
                                at,
                                "bad-waiver",
                                format!(
                                    "'expires' must be a date like 2027-03-31, not '{}'",
                                    e.value
                                ),
                            ));
                            continue;
                        }
                    }
                }
            };
            out.push(Waiver {
                pattern,
                matcher,
                policy: w.policy,
                justification,
                approver: w.approver,
                expires,
                location: loc,
                id: None,
            });
        }
        if !diags.is_empty() {
            return Err(PolicyError::Invalid(diags));
        }
        Ok(Waivers { waivers: out })
    }

    /// Reads and parses a waivers file.
    pub fn load(path: &std::path::Path) -> Result<Waivers, PolicyError> {
        let display = path.display().to_string();
        let source = std::fs::read_to_string(path).map_err(|source| PolicyError::Read {
            path: display.clone(),
            source,
        })?;
        Waivers::parse(&source, &display)
    }

    /// Applies the waivers to a report as of `today`: matching non-passing checks become
    /// `waived`. Expired waivers are ignored and reported in the returned warnings. Summaries and
    /// the digest are refreshed.
    pub fn apply(&self, report: &mut ScanReport, today: Date) -> Vec<String> {
        let mut warnings = Vec::new();
        let mut expired_reported = vec![false; self.waivers.len()];
        for p in &mut report.policies {
            for c in &mut p.checks {
                let found = self.waivers.iter().enumerate().find(|(_, w)| {
                    w.policy.as_deref().is_none_or(|pid| pid == p.policy.id)
                        && w.matcher.is_match(&c.id)
                });
                let Some((i, w)) = found else { continue };
                if let Some(exp) = w.expires
                    && exp < today
                {
                    if !expired_reported[i] {
                        expired_reported[i] = true;
                        warnings.push(format!(
                            "{}: waiver for '{}' expired on {exp}; ignored",
                            w.location, w.pattern
                        ));
                    }
                    continue;
                }
                if c.status == Status::Pass || c.status == Status::Waived {
                    continue;
                }
                c.original_status = Some(c.status);
                c.status = Status::Waived;
                c.waiver = Some(WaiverInfo {
                    id: w.id.clone(),
                    pattern: w.pattern.clone(),
                    justification: w.justification.clone(),
                    approver: w.approver.clone(),
                    expires: w.expires.map(|d| d.to_string()),
                });
            }
        }
        report.refresh();
        warnings
    }
}
