//! OSCAL 1.1 assessment results (`assessment-results`), the format FedRAMP and NIST tooling reads.
//!
//! One OSCAL `result` per evaluated policy run: an observation per check carrying its evidence
//! rule by rule, a finding per control the checks map to (satisfied or not), a risk with status
//! `deviation-approved` for each failure a waiver accepted, and, for a run the server attested,
//! the signed attestation itself embedded in the back matter so an auditor holding only this file
//! can verify it (`docs/oscal.md`).
//!
//! The document is byte-reproducible: every UUID is a version-5 UUID derived from the run and the
//! check or control it names, every timestamp comes from the runs, and everything is written in
//! a fixed order. Rendering the same runs twice gives the same bytes, so a document can be
//! hashed, diffed and signed.

use std::collections::BTreeMap;

use base64::Engine as _;
use rampart_core::{
    CheckOutcome, Framework, HostInfo, ObservationKind, PolicyInfo, RuleVerdict, ScanReport, Status,
};
use serde::Serialize;
use sha2::{Digest, Sha256};
use time::{
    Date, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset,
    format_description::well_known::Rfc3339,
};
use uuid::Uuid;

use crate::ReportError;

/// The OSCAL version the documents follow.
pub const OSCAL_VERSION: &str = "1.1.3";

/// Namespace of Rampart's own property and part names. A name, not an address to fetch.
pub const NS: &str = "https://rampart.example/ns/oscal";

/// Namespace of the version-5 UUIDs (fixed forever: changing it changes every document).
const UUID_NS: Uuid = Uuid::from_u128(0x66188233_27d6_4f71_b696_2fc714059738);

/// What was assessed and by which runs.
#[derive(Debug, Clone)]
pub struct Assessment<'a> {
    /// The scanner, e.g. `rampart 0.1.0`.
    pub generator: &'a str,
    /// The server's agent id, when the runs came from the fleet.
    pub agent_id: Option<&'a str>,
    /// The host as the scan described it.
    pub host: &'a HostInfo,
    /// One run per policy, in the order the document lists them.
    pub runs: Vec<AssessedRun<'a>>,
}

/// One policy's evaluation.
#[derive(Debug, Clone)]
pub struct AssessedRun<'a> {
    /// The run's id (the scan id for a local report).
    pub run_id: &'a str,
    /// The policy evaluated.
    pub policy: &'a PolicyInfo,
    /// The server's version number of the policy, if it has one.
    pub policy_version: Option<i64>,
    /// Where the policy can be fetched, if anywhere (the server's API path, a local file).
    pub policy_href: Option<String>,
    /// When the run started.
    pub started_at: OffsetDateTime,
    /// When it finished.
    pub finished_at: OffsetDateTime,
    /// The canonical results digest.
    pub results_digest: &'a str,
    /// Every check outcome, in policy order.
    pub checks: &'a [CheckOutcome],
    /// The scan's warnings.
    pub warnings: &'a [String],
    /// The server's signed attestation of this run, if it has one.
    pub attestation: Option<AttestationRef<'a>>,
}

/// A signed attestation of a run, referenced and embedded by the document.
#[derive(Debug, Clone)]
pub struct AttestationRef<'a> {
    /// Its `jti`.
    pub jti: &'a str,
    /// The signing key's id (RFC 7638 thumbprint).
    pub kid: &'a str,
    /// compliant | noncompliant | partial.
    pub status: &'a str,
    /// When it was issued.
    pub issued_at: OffsetDateTime,
    /// When it stops being valid.
    pub expires_at: OffsetDateTime,
    /// The compact JWS.
    pub jws: &'a str,
    /// Where its offline bundle can be fetched (the API path).
    pub bundle_href: Option<String>,
}

/// The OSCAL document of a local scan report: one result per policy, no attestation.
pub fn render(report: &ScanReport) -> Result<Vec<u8>, ReportError> {
    let run_id = if report.scan_id.is_empty() {
        report.results_digest.as_str()
    } else {
        report.scan_id.as_str()
    };
    let runs = report
        .policies
        .iter()
        .map(|p| AssessedRun {
            run_id,
            policy: &p.policy,
            policy_version: None,
            policy_href: (!p.policy.file.is_empty()).then(|| p.policy.file.clone()),
            started_at: report.started_at,
            finished_at: report.finished_at,
            results_digest: &report.results_digest,
            checks: &p.checks,
            warnings: &report.warnings,
            attestation: None,
        })
        .collect();
    render_assessment(&Assessment {
        generator: &report.generator,
        agent_id: None,
        host: &report.host,
        runs,
    })
}

/// The OSCAL document of an assessment.
pub fn render_assessment(a: &Assessment<'_>) -> Result<Vec<u8>, ReportError> {
    let doc = document(a)?;
    let mut out = serde_json::to_vec_pretty(&Root {
        assessment_results: doc,
    })
    .map_err(|e| ReportError::Render(e.to_string()))?;
    out.push(b'\n');
    Ok(out)
}

fn document(a: &Assessment<'_>) -> Result<AssessmentResults, ReportError> {
    if a.runs.is_empty() {
        return Err(ReportError::Render(
            "no runs to report: an OSCAL assessment needs at least one result".into(),
        ));
    }
    let subject = a.agent_id.unwrap_or(&a.host.hostname);
    let mut fingerprint = Sha256::new();
    fingerprint.update(subject.as_bytes());
    for r in &a.runs {
        for part in [r.run_id, &r.policy.id, r.results_digest] {
            fingerprint.update([0]);
            fingerprint.update(part.as_bytes());
        }
    }
    let fingerprint = hex(&fingerprint.finalize());
    let doc_uuid = v5(&UUID_NS, &format!("assessment-results:{fingerprint}"));
    let plan_uuid = v5(&doc_uuid, "assessment-plan");
    let last_modified = a
        .runs
        .iter()
        .map(|r| r.finished_at)
        .max()
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);

    let mut resources = vec![Resource {
        uuid: plan_uuid,
        title: Some("Assessment plan".into()),
        description: Some(format!(
            "The plan was the set of policies evaluated: {}. Each is a resource of this document, \
             identified by the SHA-256 of its content.",
            a.runs
                .iter()
                .map(|r| policy_label(r))
                .collect::<Vec<_>>()
                .join(", ")
        )),
        ..Resource::default()
    }];
    let mut results = Vec::with_capacity(a.runs.len());
    for run in &a.runs {
        let (result, mut res) = result(a, run)?;
        results.push(result);
        resources.append(&mut res);
    }
    let host = one_line(&a.host.hostname);
    Ok(AssessmentResults {
        uuid: doc_uuid,
        metadata: Metadata {
            title: match a.agent_id {
                Some(id) => format!("Rampart assessment results: {host} (agent {id})"),
                None => format!("Rampart assessment results: {host}"),
            },
            last_modified: timestamp(last_modified)?,
            version: format!("sha256:{}", &fingerprint[..16]),
            oscal_version: OSCAL_VERSION,
            props: props(&[("generator", a.generator)]),
            remarks: Some(
                "Generated by Rampart from stored results; rendering the same runs again gives \
                 the same bytes."
                    .into(),
            ),
        },
        import_ap: ImportAp {
            href: format!("#{plan_uuid}"),
            remarks: Some(
                "Rampart has no separate assessment plan: its policies are the plan.".into(),
            ),
        },
        results,
        back_matter: BackMatter { resources },
    })
}

fn policy_label(r: &AssessedRun<'_>) -> String {
    match r.policy_version {
        Some(v) => format!("{} version {v}", r.policy.id),
        None => r.policy.id.clone(),
    }
}

/// One run's result and the back-matter resources it references.
fn result(
    a: &Assessment<'_>,
    run: &AssessedRun<'_>,
) -> Result<(OscalResult, Vec<Resource>), ReportError> {
    let key = format!("result:{}:{}", run.run_id, run.policy.id);
    let uuid = v5(&UUID_NS, &key);
    let tool = v5(&uuid, "tool");
    let host = v5(&uuid, "host");
    let policy_res = v5(&uuid, "policy");
    let collected = timestamp(run.finished_at)?;
    let origins = vec![Origin {
        actors: vec![Actor {
            kind: "tool",
            actor_uuid: tool,
        }],
    }];
    let subjects = vec![SubjectRef {
        subject_uuid: host,
        kind: "inventory-item",
    }];

    let mut summary = rampart_core::Summary::default();
    let mut observations = Vec::with_capacity(run.checks.len());
    let mut risks = Vec::new();
    let mut obs_of: Vec<Uuid> = Vec::with_capacity(run.checks.len());
    let mut risk_of: Vec<Option<Uuid>> = Vec::with_capacity(run.checks.len());
    for c in run.checks {
        summary.add(c.status);
        let o = v5(&uuid, &format!("observation:{}", c.id));
        obs_of.push(o);
        observations.push(observation(run, c, o, &collected, &origins, &subjects));
        let risk = accepted_failure(c).then(|| v5(&uuid, &format!("risk:{}", c.id)));
        if let Some(r) = risk {
            risks.push(accepted_risk(a, run, c, r, o)?);
        }
        risk_of.push(risk);
    }
    summary.finish();

    // Controls in a fixed order: framework, then control id as written.
    let mut controls: BTreeMap<(Framework, String), Vec<usize>> = BTreeMap::new();
    let mut unmapped = Vec::new();
    for (i, c) in run.checks.iter().enumerate() {
        let frameworks = c.frameworks();
        if frameworks.is_empty() {
            unmapped.push(i);
        }
        for f in frameworks {
            let mut ids: Vec<&str> = c.controls(&f);
            ids.sort_unstable();
            ids.dedup();
            for id in ids {
                let id = id.trim();
                if !id.is_empty() {
                    controls
                        .entry((f.clone(), id.to_owned()))
                        .or_default()
                        .push(i);
                }
            }
        }
    }
    let mut findings = Vec::new();
    let mut include = Vec::new();
    let mut undecided = 0usize;
    for ((framework, control), members) in &controls {
        let target = control_target(framework, control);
        let Some(state) = judge(members.iter().map(|&i| &run.checks[i])) else {
            undecided += 1;
            continue;
        };
        include.push(ControlRef {
            control_id: target.clone(),
        });
        findings.push(finding(
            run,
            FindingOf {
                uuid: v5(&uuid, &format!("finding:{}:{control}", framework.as_str())),
                title: format!("{} {control}", framework.title()),
                target,
                props: props(&[("framework", framework.as_str()), ("control-id", control)]),
            },
            members,
            state,
            &obs_of,
            &risk_of,
            &origins,
        ));
    }
    // A check mapped to no control is its own objective, so that no failure goes unreported.
    for &i in &unmapped {
        let c = &run.checks[i];
        let Some(state) = judge(std::iter::once(c)) else {
            undecided += 1;
            continue;
        };
        findings.push(finding(
            run,
            FindingOf {
                uuid: v5(&uuid, &format!("finding:check:{}", c.id)),
                title: format!("{}:{} {}", run.policy.id, c.id, one_line(&c.title)),
                target: token(&format!("{}_{}", run.policy.id, c.id)),
                props: props(&[("policy-id", &run.policy.id), ("check-id", &c.id)]),
            },
            &[i],
            state,
            &obs_of,
            &risk_of,
            &origins,
        ));
    }

    let mut remarks = Vec::new();
    if undecided > 0 {
        remarks.push(format!(
            "{undecided} control(s) or unmapped check(s) have no finding: none of their checks \
             passed or failed on this host (not applicable, or waived without a recorded result)."
        ));
    }
    remarks.extend(run.warnings.iter().map(|w| format!("Scan warning: {w}")));

    let mut resources = vec![Resource {
        uuid: policy_res,
        title: Some(format!("Policy {}", policy_label(run))),
        description: Some(if run.policy.name.trim().is_empty() {
            format!("The policy {} as evaluated.", run.policy.id)
        } else {
            format!(
                "{} ({}), as evaluated.",
                one_line(&run.policy.name),
                run.policy.id
            )
        }),
        props: props(&[
            ("policy-id", &run.policy.id),
            ("policy-sha256", &run.policy.sha256),
        ]),
        rlinks: run
            .policy_href
            .iter()
            .filter(|h| !h.trim().is_empty())
            .map(|h| Rlink {
                href: h.clone(),
                media_type: None,
                hashes: sha256_hash(&run.policy.sha256),
            })
            .collect(),
        base64: None,
    }];

    let mut links = vec![Link {
        href: format!("#{policy_res}"),
        rel: "reference",
        text: "The policy evaluated".into(),
    }];
    let mut attestations = Vec::new();
    let mut result_props = vec![
        ("run-id", run.run_id.to_owned()),
        ("policy-id", run.policy.id.clone()),
    ];
    if let Some(v) = run.policy_version {
        result_props.push(("policy-version", v.to_string()));
    }
    result_props.extend([
        ("policy-sha256", run.policy.sha256.clone()),
        ("results-digest", run.results_digest.to_owned()),
        ("score", format!("{:.2}", summary.score)),
    ]);
    if let Some(att) = &run.attestation {
        let att_res = v5(&uuid, "attestation");
        result_props.push(("attestation-jti", att.jti.to_owned()));
        links.push(Link {
            href: format!("#{att_res}"),
            rel: "reference",
            text: "The server's signed attestation of this run".into(),
        });
        attestations.push(OscalAttestation {
            parts: vec![Part {
                name: "attestation",
                ns: NS,
                title: "Signed compliance attestation".into(),
                prose: format!(
                    "The Rampart server signed this run's results as attestation {} \
                     (status {}, key {}), issued {} and valid until {}. The JWS is embedded in \
                     the back matter; `rampart attest verify` checks it offline with the bundle \
                     from the server, whose evidence digest covers every observation here.",
                    att.jti,
                    att.status,
                    att.kid,
                    timestamp(att.issued_at)?,
                    timestamp(att.expires_at)?,
                ),
                links: vec![Link {
                    href: format!("#{att_res}"),
                    rel: "reference",
                    text: "The signed attestation (JWS)".into(),
                }],
            }],
        });
        resources.push(Resource {
            uuid: att_res,
            title: Some(format!("Rampart compliance attestation {}", att.jti)),
            description: Some(format!(
                "Compact JWS (typ rampart-compliance+jwt) signed with key {}; verify it against \
                 the server's JWKS at /.well-known/jwks.json or offline with its bundle.",
                att.kid
            )),
            props: props(&[
                ("attestation-jti", att.jti),
                ("attestation-kid", att.kid),
                ("attestation-status", att.status),
            ]),
            rlinks: att
                .bundle_href
                .iter()
                .map(|h| Rlink {
                    href: h.clone(),
                    media_type: Some("application/json"),
                    hashes: vec![],
                })
                .collect(),
            base64: Some(Base64 {
                filename: format!("{}.jwt", token(att.jti)),
                media_type: "application/jwt",
                value: base64::engine::general_purpose::STANDARD.encode(att.jws.as_bytes()),
            }),
        });
    }

    let host_name = one_line(&a.host.hostname);
    let description = format!(
        "Rampart evaluated {} on {}: {} checks, {} passed, {} failed, {} not applicable, {} not \
         run, {} errors, {} waived; score {:.2}%.",
        policy_label(run),
        if host_name.is_empty() {
            "the host"
        } else {
            &host_name
        },
        summary.total,
        summary.passed,
        summary.failed,
        summary.not_applicable,
        summary.not_run,
        summary.error,
        summary.waived,
        summary.score
    );
    let result = OscalResult {
        uuid,
        title: format!(
            "{} on {}",
            policy_label(run),
            if host_name.is_empty() {
                "the host"
            } else {
                &host_name
            }
        ),
        description,
        start: timestamp(run.started_at)?,
        end: collected.clone(),
        props: props_owned(result_props),
        links,
        local_definitions: LocalDefinitions {
            components: vec![Component {
                uuid: tool,
                kind: "software",
                title: "Rampart".into(),
                description: "The scanner that evaluated the policy on the host.".into(),
                props: props(&[("generator", a.generator)]),
                status: ComponentStatus {
                    state: "operational",
                },
            }],
            inventory_items: vec![InventoryItem {
                uuid: host,
                description: format!(
                    "The host {}{}.",
                    if host_name.is_empty() {
                        "scanned"
                    } else {
                        &host_name
                    },
                    a.agent_id
                        .map(|id| format!(", Rampart agent {id}"))
                        .unwrap_or_default()
                ),
                props: host_props(a),
            }],
        },
        reviewed_controls: ReviewedControls {
            control_selections: vec![ControlSelection {
                description: if include.is_empty() {
                    "The policy maps no check with a result to a control; each check is its own \
                     objective."
                        .into()
                } else {
                    "Every control the policy's checks map to and that a check passed or failed \
                     on this host."
                        .into()
                },
                include_controls: include,
            }],
        },
        attestations,
        observations,
        risks,
        findings,
        remarks: (!remarks.is_empty()).then(|| remarks.join("\n\n")),
    };
    Ok((result, resources))
}

fn host_props(a: &Assessment<'_>) -> Vec<Property> {
    let mut p = vec![];
    if !a.host.hostname.trim().is_empty() {
        // `fqdn` is OSCAL's own property of an inventory item (no namespace).
        p.push(Property {
            name: "fqdn".into(),
            ns: None,
            value: one_line(&a.host.hostname),
        });
    }
    if !a.host.os.trim().is_empty() {
        p.push(Property {
            name: "os-name".into(),
            ns: None,
            value: one_line(&a.host.os),
        });
    }
    p.append(&mut props(&[
        ("kernel", &a.host.kernel),
        ("agent-id", a.agent_id.unwrap_or_default()),
        ("scan-root", a.host.root.as_deref().unwrap_or_default()),
    ]));
    p
}

/// Whether a waiver accepted a failure (or an error) of this check: that is an approved deviation.
fn accepted_failure(c: &CheckOutcome) -> bool {
    c.status == Status::Waived && matches!(c.original_status, Some(Status::Fail | Status::Error))
}

/// A check's result for judging its controls: a waived check counts as what it was before.
fn underlying(c: &CheckOutcome) -> Option<Status> {
    match c.status {
        Status::Waived => c.original_status,
        s => Some(s),
    }
}

/// satisfied / not-satisfied and why, or `None` when no check decided anything.
fn judge<'c>(
    checks: impl Iterator<Item = &'c CheckOutcome>,
) -> Option<(&'static str, &'static str)> {
    let (mut fail, mut error, mut pass) = (false, false, false);
    for c in checks {
        match underlying(c) {
            Some(Status::Fail) => fail = true,
            Some(Status::Error | Status::NotRun) => error = true,
            Some(Status::Pass) => pass = true,
            _ => {}
        }
    }
    if fail {
        Some(("not-satisfied", "fail"))
    } else if error {
        Some(("not-satisfied", "other"))
    } else if pass {
        Some(("satisfied", "pass"))
    } else {
        None
    }
}

struct FindingOf {
    uuid: Uuid,
    title: String,
    target: String,
    props: Vec<Property>,
}

fn finding(
    run: &AssessedRun<'_>,
    of: FindingOf,
    members: &[usize],
    (state, reason): (&'static str, &'static str),
    obs_of: &[Uuid],
    risk_of: &[Option<Uuid>],
    origins: &[Origin],
) -> Finding {
    let mut counts = rampart_core::Summary::default();
    for &i in members {
        counts.add(run.checks[i].status);
    }
    let mut parts = Vec::new();
    for (n, what) in [
        (counts.passed, "passed"),
        (counts.failed, "failed"),
        (counts.error, "could not be evaluated"),
        (counts.not_run, "not run"),
        (counts.not_applicable, "not applicable"),
        (counts.waived, "waived"),
    ] {
        if n > 0 {
            parts.push(format!("{n} {what}"));
        }
    }
    let failing: Vec<&str> = members
        .iter()
        .map(|&i| &run.checks[i])
        .filter(|c| {
            matches!(
                underlying(c),
                Some(Status::Fail | Status::Error | Status::NotRun)
            )
        })
        .map(|c| c.id.as_str())
        .collect();
    let mut description = format!(
        "{} check(s) of policy {} assess this objective: {}.",
        members.len(),
        run.policy.id,
        parts.join(", ")
    );
    if !failing.is_empty() {
        description.push_str(&format!(" Not met by: {}.", failing.join(", ")));
    }
    Finding {
        uuid: of.uuid,
        title: of.title,
        description,
        props: of.props,
        origins: origins.to_vec(),
        target: Target {
            kind: "objective-id",
            target_id: of.target,
            status: ObjectiveStatus { state, reason },
        },
        related_observations: members
            .iter()
            .map(|&i| RelatedObservation {
                observation_uuid: obs_of[i],
            })
            .collect(),
        related_risks: members
            .iter()
            .filter_map(|&i| risk_of[i])
            .map(|risk_uuid| RelatedRisk { risk_uuid })
            .collect(),
    }
}

fn observation(
    run: &AssessedRun<'_>,
    c: &CheckOutcome,
    uuid: Uuid,
    collected: &str,
    origins: &[Origin],
    subjects: &[SubjectRef],
) -> Observation {
    let mut p = vec![
        ("policy-id", run.policy.id.clone()),
        ("check-id", c.id.clone()),
        ("result", c.status.as_str().to_owned()),
    ];
    if let Some(o) = c.original_status {
        p.push(("original-result", o.as_str().to_owned()));
    }
    p.push(("severity", c.severity.as_str().to_owned()));
    if let Some(w) = &c.waiver {
        if let Some(id) = &w.id {
            p.push(("waiver-id", id.clone()));
        }
        p.push(("waiver-pattern", w.pattern.clone()));
    }
    let title = one_line(&c.title);
    let description = if c.description.trim().is_empty() {
        title.clone()
    } else {
        c.description.trim().to_owned()
    };
    Observation {
        uuid,
        title: format!("{}:{} {title}", run.policy.id, c.id),
        description: if description.is_empty() {
            format!("Check {} of policy {}.", c.id, run.policy.id)
        } else {
            description
        },
        props: props_owned(p),
        methods: vec!["TEST"],
        origins: origins.to_vec(),
        subjects: subjects.to_vec(),
        relevant_evidence: c
            .evidence
            .iter()
            .map(|e| RelevantEvidence {
                description: format!("Rule {}: {}", one_line(&e.rule), verdict(e.verdict)),
                remarks: (!e.observations.is_empty()).then(|| {
                    e.observations
                        .iter()
                        .map(|o| {
                            let mut s = format!("{} {}", kind(o.kind), o.target);
                            if let Some(l) = o.line {
                                s.push_str(&format!(", line {l}"));
                            }
                            if let Some(t) = &o.text {
                                s.push_str(&format!(": {t}"));
                            }
                            if let Some(d) = &o.detail {
                                s.push_str(&format!(" ({d})"));
                            }
                            s
                        })
                        .collect::<Vec<_>>()
                        .join("\n")
                }),
            })
            .collect(),
        collected: collected.to_owned(),
        remarks: c.reason.as_ref().filter(|r| !r.trim().is_empty()).cloned(),
    }
}

fn kind(k: ObservationKind) -> &'static str {
    match k {
        ObservationKind::File => "file",
        ObservationKind::Directory => "directory",
        ObservationKind::Command => "command",
        ObservationKind::Process => "process",
        ObservationKind::Registry => "registry",
        ObservationKind::Metadata => "metadata of",
        ObservationKind::Other => "observed",
    }
}

fn verdict(v: RuleVerdict) -> &'static str {
    match v {
        RuleVerdict::Found => "its condition held",
        RuleVerdict::NotFound => "its condition did not hold",
        RuleVerdict::Invalid => "it could not be evaluated",
        RuleVerdict::Skipped => "not evaluated (an earlier rule decided the check)",
    }
}

fn accepted_risk(
    a: &Assessment<'_>,
    run: &AssessedRun<'_>,
    c: &CheckOutcome,
    uuid: Uuid,
    observation: Uuid,
) -> Result<Risk, ReportError> {
    let w = c.waiver.as_ref();
    let justification = w
        .map(|w| w.justification.trim())
        .filter(|j| !j.is_empty())
        .unwrap_or("No justification was recorded.");
    let until = w.and_then(|w| w.expires.as_deref());
    let mut statement = format!(
        "Check {}:{} {} on {}; a waiver",
        run.policy.id,
        c.id,
        match c.original_status {
            Some(Status::Error) => "could not be evaluated",
            _ => "failed",
        },
        if a.host.hostname.is_empty() {
            "the host"
        } else {
            &a.host.hostname
        }
    );
    if let Some(w) = w {
        if let Some(id) = &w.id {
            statement.push_str(&format!(" ({id})"));
        }
        statement.push_str(&format!(" matching {}", w.pattern));
        if let Some(by) = &w.approver {
            statement.push_str(&format!(", approved by {by},"));
        }
    }
    statement.push_str(" accepts the deviation");
    if let Some(u) = until {
        statement.push_str(&format!(" until {u}"));
    }
    statement.push('.');
    let mut p = vec![("check-id", c.id.clone())];
    if let Some(w) = w {
        if let Some(id) = &w.id {
            p.push(("waiver-id", id.clone()));
        }
        p.push(("waiver-pattern", w.pattern.clone()));
        if let Some(by) = &w.approver {
            p.push(("waiver-approver", by.clone()));
        }
    }
    Ok(Risk {
        uuid,
        title: format!("Accepted deviation: {}", one_line(&c.title)),
        description: justification.to_owned(),
        statement,
        props: props_owned(p),
        status: "deviation-approved",
        deadline: until.map(end_of_day).transpose()?.flatten(),
        related_observations: vec![RelatedObservation {
            observation_uuid: observation,
        }],
    })
}

/// The last second of an ISO date, UTC; `None` for text that is not a date.
fn end_of_day(date: &str) -> Result<Option<String>, ReportError> {
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    match Date::parse(date.trim(), &fmt) {
        Ok(d) => {
            let t = PrimitiveDateTime::new(d, Time::from_hms(23, 59, 59).unwrap_or(Time::MIDNIGHT))
                .assume_utc();
            timestamp(t).map(Some)
        }
        Err(_) => Ok(None),
    }
}

/// The target id of a control: NIST SP 800-53 controls as NIST's OSCAL catalog names them
/// (`AC-2(1)` → `ac-2.1`), so findings join against that catalog; other frameworks have no
/// published OSCAL catalog, so their ids are qualified by the framework (`cis_csc_v8_4.8`) to
/// stay unique and to form an OSCAL token.
pub fn control_target(framework: &Framework, control: &str) -> String {
    if framework.as_str() == "nist_800_53" {
        let id: String = control
            .trim()
            .to_ascii_lowercase()
            .chars()
            .filter(|c| !c.is_whitespace() && *c != ')')
            .map(|c| if c == '(' { '.' } else { c })
            .collect();
        token(&id)
    } else {
        token(&format!("{}_{}", framework.as_str(), control.trim()))
    }
}

/// An OSCAL token: letters, digits, `-`, `.`, `_`, not starting with a digit, `-` or `.`.
fn token(s: &str) -> String {
    let mut out: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if !out.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
        out.insert(0, '_');
    }
    out
}

/// Text on one line without surrounding blanks (OSCAL titles and property values).
fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn props(pairs: &[(&str, &str)]) -> Vec<Property> {
    props_owned(pairs.iter().map(|(k, v)| (*k, (*v).to_owned())).collect())
}

/// Rampart's properties; empty values are left out (OSCAL forbids them).
fn props_owned(pairs: Vec<(&str, String)>) -> Vec<Property> {
    pairs
        .into_iter()
        .filter_map(|(name, value)| {
            let value = one_line(&value);
            (!value.is_empty()).then(|| Property {
                name: name.to_owned(),
                ns: Some(NS),
                value,
            })
        })
        .collect()
}

fn sha256_hash(hex_digest: &str) -> Vec<Hash> {
    let h = hex_digest.trim();
    if h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()) {
        vec![Hash {
            algorithm: "SHA-256",
            value: h.to_ascii_lowercase(),
        }]
    } else {
        vec![]
    }
}

fn v5(ns: &Uuid, name: &str) -> Uuid {
    Uuid::new_v5(ns, name.as_bytes())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn timestamp(t: OffsetDateTime) -> Result<String, ReportError> {
    t.to_offset(UtcOffset::UTC)
        .format(&Rfc3339)
        .map_err(|e| ReportError::Render(format!("timestamp {t}: {e}")))
}

// --- The document's shape (only what Rampart writes), in OSCAL's JSON member names and order. ---

#[derive(Serialize)]
struct Root {
    #[serde(rename = "assessment-results")]
    assessment_results: AssessmentResults,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct AssessmentResults {
    uuid: Uuid,
    metadata: Metadata,
    import_ap: ImportAp,
    results: Vec<OscalResult>,
    back_matter: BackMatter,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct Metadata {
    title: String,
    last_modified: String,
    version: String,
    oscal_version: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    props: Vec<Property>,
    #[serde(skip_serializing_if = "Option::is_none")]
    remarks: Option<String>,
}

#[derive(Serialize)]
struct ImportAp {
    href: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    remarks: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct OscalResult {
    uuid: Uuid,
    title: String,
    description: String,
    start: String,
    end: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    props: Vec<Property>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    links: Vec<Link>,
    local_definitions: LocalDefinitions,
    reviewed_controls: ReviewedControls,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    attestations: Vec<OscalAttestation>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    observations: Vec<Observation>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    risks: Vec<Risk>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    findings: Vec<Finding>,
    #[serde(skip_serializing_if = "Option::is_none")]
    remarks: Option<String>,
}

#[derive(Serialize, Clone)]
struct Property {
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    ns: Option<&'static str>,
    value: String,
}

#[derive(Serialize)]
struct Link {
    href: String,
    rel: &'static str,
    text: String,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct LocalDefinitions {
    components: Vec<Component>,
    inventory_items: Vec<InventoryItem>,
}

#[derive(Serialize)]
struct Component {
    uuid: Uuid,
    #[serde(rename = "type")]
    kind: &'static str,
    title: String,
    description: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    props: Vec<Property>,
    status: ComponentStatus,
}

#[derive(Serialize)]
struct ComponentStatus {
    state: &'static str,
}

#[derive(Serialize)]
struct InventoryItem {
    uuid: Uuid,
    description: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    props: Vec<Property>,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct ReviewedControls {
    control_selections: Vec<ControlSelection>,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct ControlSelection {
    description: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    include_controls: Vec<ControlRef>,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct ControlRef {
    control_id: String,
}

#[derive(Serialize)]
struct OscalAttestation {
    parts: Vec<Part>,
}

#[derive(Serialize)]
struct Part {
    name: &'static str,
    ns: &'static str,
    title: String,
    prose: String,
    links: Vec<Link>,
}

#[derive(Serialize, Clone)]
struct Origin {
    actors: Vec<Actor>,
}

#[derive(Serialize, Clone)]
#[serde(rename_all = "kebab-case")]
struct Actor {
    #[serde(rename = "type")]
    kind: &'static str,
    actor_uuid: Uuid,
}

#[derive(Serialize, Clone)]
#[serde(rename_all = "kebab-case")]
struct SubjectRef {
    subject_uuid: Uuid,
    #[serde(rename = "type")]
    kind: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct Observation {
    uuid: Uuid,
    title: String,
    description: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    props: Vec<Property>,
    methods: Vec<&'static str>,
    origins: Vec<Origin>,
    subjects: Vec<SubjectRef>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    relevant_evidence: Vec<RelevantEvidence>,
    collected: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    remarks: Option<String>,
}

#[derive(Serialize)]
struct RelevantEvidence {
    description: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    remarks: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct Risk {
    uuid: Uuid,
    title: String,
    description: String,
    statement: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    props: Vec<Property>,
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    deadline: Option<String>,
    related_observations: Vec<RelatedObservation>,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct Finding {
    uuid: Uuid,
    title: String,
    description: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    props: Vec<Property>,
    origins: Vec<Origin>,
    target: Target,
    related_observations: Vec<RelatedObservation>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    related_risks: Vec<RelatedRisk>,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct Target {
    #[serde(rename = "type")]
    kind: &'static str,
    target_id: String,
    status: ObjectiveStatus,
}

#[derive(Serialize)]
struct ObjectiveStatus {
    state: &'static str,
    reason: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct RelatedObservation {
    observation_uuid: Uuid,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct RelatedRisk {
    risk_uuid: Uuid,
}

#[derive(Serialize, Default)]
struct BackMatter {
    resources: Vec<Resource>,
}

#[derive(Serialize, Default)]
struct Resource {
    uuid: Uuid,
    #[serde(skip_serializing_if = "Option::is_none")]
    title: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    props: Vec<Property>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    rlinks: Vec<Rlink>,
    #[serde(skip_serializing_if = "Option::is_none")]
    base64: Option<Base64>,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct Rlink {
    href: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    media_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    hashes: Vec<Hash>,
}

#[derive(Serialize)]
struct Hash {
    algorithm: &'static str,
    value: String,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct Base64 {
    filename: String,
    media_type: &'static str,
    value: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use rampart_core::{Evidence, Observation, WaiverInfo};
    use serde_json::Value;

    fn check(id: &str, status: Status, compliance: &[(&str, &[&str])]) -> CheckOutcome {
        let mut c = CheckOutcome::new(id, format!("Check {id}"), status);
        c.compliance = compliance
            .iter()
            .map(|(k, v)| (k.to_string(), v.iter().map(|s| s.to_string()).collect()))
            .collect();
        c
    }

    fn report(checks: Vec<CheckOutcome>) -> ScanReport {
        let policy = PolicyInfo {
            id: "cis_debian12".into(),
            name: "CIS Debian 12".into(),
            sha256: "ab".repeat(32),
            ..PolicyInfo::default()
        };
        let at = OffsetDateTime::from_unix_timestamp(1_780_000_000).unwrap();
        let mut r = ScanReport::single(policy, checks, at);
        r.scan_id = "scan-1".into();
        r.host.hostname = "web-1".into();
        r
    }

    fn doc(r: &ScanReport) -> Value {
        serde_json::from_slice(&render(r).unwrap()).unwrap()
    }

    fn findings(v: &Value) -> Vec<(String, String)> {
        v["assessment-results"]["results"][0]["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                (
                    f["target"]["target-id"].as_str().unwrap().to_owned(),
                    f["target"]["status"]["state"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }

    #[test]
    fn control_ids_become_tokens() {
        let nist = Framework::from_key("nist_sp_800-53");
        assert_eq!(control_target(&nist, "AC-2(1)"), "ac-2.1");
        assert_eq!(control_target(&nist, "CM-7"), "cm-7");
        let csc = Framework::from_key("cis_csc_v8");
        assert_eq!(control_target(&csc, "4.8"), "cis_csc_v8_4.8");
        let pci = Framework::from_key("pci_dss_v4.0");
        assert_eq!(control_target(&pci, "1.2.5"), "pci_dss_4.0_1.2.5");
        let own = Framework::from_key("9to5 rules");
        assert_eq!(control_target(&own, "A/1"), "_9to5_rules_A_1");
    }

    #[test]
    fn a_control_is_satisfied_only_when_no_check_of_it_fails() {
        let r = report(vec![
            check("1", Status::Pass, &[("cis_csc_v8", &["4.8", "4.1"])]),
            check("2", Status::Fail, &[("cis_csc_v8", &["4.8"])]),
            check("3", Status::Error, &[("soc_2", &["CC6.1"])]),
            check("4", Status::NotApplicable, &[("soc_2", &["CC7.1"])]),
        ]);
        let v = doc(&r);
        assert_eq!(
            findings(&v),
            [
                ("cis_csc_v8_4.1".to_owned(), "satisfied".to_owned()),
                ("cis_csc_v8_4.8".to_owned(), "not-satisfied".to_owned()),
                ("soc_2_CC6.1".to_owned(), "not-satisfied".to_owned()),
            ]
        );
        let result = &v["assessment-results"]["results"][0];
        let f48 = &result["findings"][1];
        assert_eq!(f48["target"]["status"]["reason"], "fail");
        assert_eq!(f48["related-observations"].as_array().unwrap().len(), 2);
        assert_eq!(result["findings"][2]["target"]["status"]["reason"], "other");
        // CC7.1 had only a not-applicable check: no finding, said in the remarks.
        assert!(result["remarks"].as_str().unwrap().starts_with("1 control"));
        let selected: Vec<&str> =
            result["reviewed-controls"]["control-selections"][0]["include-controls"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["control-id"].as_str().unwrap())
                .collect();
        assert_eq!(
            selected,
            ["cis_csc_v8_4.1", "cis_csc_v8_4.8", "soc_2_CC6.1"]
        );
        assert_eq!(result["observations"].as_array().unwrap().len(), 4);
    }

    #[test]
    fn a_waived_failure_is_an_approved_deviation_and_leaves_its_control_unsatisfied() {
        let mut waived = check("2", Status::Waived, &[("cis", &["5.1"])]);
        waived.original_status = Some(Status::Fail);
        waived.waiver = Some(WaiverInfo {
            id: Some("w-7".into()),
            pattern: "cis_debian12:2".into(),
            justification: "Legacy app needs it".into(),
            approver: Some("alice".into()),
            expires: Some("2027-03-31".into()),
        });
        let v = doc(&report(vec![
            waived,
            check("3", Status::Pass, &[("cis", &["5.2"])]),
        ]));
        let result = &v["assessment-results"]["results"][0];
        let risk = &result["risks"][0];
        assert_eq!(risk["status"], "deviation-approved");
        assert_eq!(risk["description"], "Legacy app needs it");
        assert_eq!(risk["deadline"], "2027-03-31T23:59:59Z");
        assert!(
            risk["statement"]
                .as_str()
                .unwrap()
                .contains("approved by alice")
        );
        let f = &result["findings"][0];
        assert_eq!(f["target"]["target-id"], "cis_5.1");
        assert_eq!(f["target"]["status"]["state"], "not-satisfied");
        assert_eq!(f["related-risks"][0]["risk-uuid"], risk["uuid"]);
        assert_eq!(
            risk["related-observations"][0]["observation-uuid"],
            result["observations"][0]["uuid"]
        );
    }

    #[test]
    fn a_check_mapped_to_no_control_is_its_own_objective() {
        let v = doc(&report(vec![check(
            "custom-1",
            Status::Fail,
            &[("mitre_techniques", &["T1"])],
        )]));
        assert_eq!(
            findings(&v),
            [(
                "cis_debian12_custom-1".to_owned(),
                "not-satisfied".to_owned()
            )]
        );
    }

    #[test]
    fn observations_carry_the_evidence_rule_by_rule() {
        let mut c = check("1", Status::Fail, &[("cis", &["1.1"])]);
        c.evidence = vec![Evidence {
            rule: "f:/etc/ssh/sshd_config -> r:^PermitRootLogin yes".into(),
            verdict: RuleVerdict::Found,
            observations: vec![Observation {
                kind: ObservationKind::File,
                target: "/etc/ssh/sshd_config".into(),
                line: Some(12),
                text: Some("PermitRootLogin yes".into()),
                detail: None,
            }],
        }];
        c.reason = Some("a line matched".into());
        let v = doc(&report(vec![c]));
        let o = &v["assessment-results"]["results"][0]["observations"][0];
        assert_eq!(o["methods"][0], "TEST");
        assert_eq!(
            o["relevant-evidence"][0]["description"],
            "Rule f:/etc/ssh/sshd_config -> r:^PermitRootLogin yes: its condition held"
        );
        assert_eq!(
            o["relevant-evidence"][0]["remarks"],
            "file /etc/ssh/sshd_config, line 12: PermitRootLogin yes"
        );
        assert_eq!(o["remarks"], "a line matched");
        assert_eq!(o["collected"], "2026-05-28T20:26:40Z");
    }

    #[test]
    fn the_same_runs_render_to_the_same_bytes_and_other_runs_to_other_ids() {
        let r = report(vec![check("1", Status::Pass, &[("cis", &["1.1"])])]);
        assert_eq!(render(&r).unwrap(), render(&r).unwrap());
        let mut other = r.clone();
        other.scan_id = "scan-2".into();
        let (a, b) = (doc(&r), doc(&other));
        assert_ne!(
            a["assessment-results"]["uuid"],
            b["assessment-results"]["uuid"]
        );
        assert_ne!(
            a["assessment-results"]["results"][0]["observations"][0]["uuid"],
            b["assessment-results"]["results"][0]["observations"][0]["uuid"]
        );
        // Version-5 UUIDs, as OSCAL's pattern wants (version 4 or 5).
        let id = a["assessment-results"]["uuid"].as_str().unwrap();
        assert_eq!(Uuid::parse_str(id).unwrap().get_version_num(), 5);
    }

    #[test]
    fn an_attestation_is_referenced_and_embedded() {
        let r = report(vec![check("1", Status::Pass, &[("cis", &["1.1"])])]);
        let p = &r.policies[0];
        let at = r.started_at;
        let a = Assessment {
            generator: "rampart test",
            agent_id: Some("agent-1"),
            host: &r.host,
            runs: vec![AssessedRun {
                run_id: "run-1",
                policy: &p.policy,
                policy_version: Some(3),
                policy_href: Some("/api/v1/policies/cis_debian12/versions/3".into()),
                started_at: at,
                finished_at: at,
                results_digest: &r.results_digest,
                checks: &p.checks,
                warnings: &[],
                attestation: Some(AttestationRef {
                    jti: "jti-1",
                    kid: "kid-1",
                    status: "compliant",
                    issued_at: at,
                    expires_at: at + time::Duration::hours(12),
                    jws: "eyJhbGciOiJFZERTQSJ9.e30.c2ln",
                    bundle_href: Some("/api/v1/agents/agent-1/attestations/jti-1/bundle".into()),
                }),
            }],
        };
        let v: Value = serde_json::from_slice(&render_assessment(&a).unwrap()).unwrap();
        let ar = &v["assessment-results"];
        let res = ar["back-matter"]["resources"].as_array().unwrap();
        let att = res
            .iter()
            .find(|r| r["base64"].is_object())
            .expect("attestation resource");
        let jws = base64::engine::general_purpose::STANDARD
            .decode(att["base64"]["value"].as_str().unwrap())
            .unwrap();
        assert_eq!(jws, b"eyJhbGciOiJFZERTQSJ9.e30.c2ln");
        assert_eq!(att["base64"]["media-type"], "application/jwt");
        let result = &ar["results"][0];
        let link = result["attestations"][0]["parts"][0]["links"][0]["href"]
            .as_str()
            .unwrap();
        assert_eq!(link, format!("#{}", att["uuid"].as_str().unwrap()));
        assert!(
            result["props"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["name"] == "attestation-jti" && p["value"] == "jti-1")
        );
        let plan = ar["import-ap"]["href"].as_str().unwrap();
        assert_eq!(plan, format!("#{}", res[0]["uuid"].as_str().unwrap()));
        assert_eq!(res[1]["rlinks"][0]["hashes"][0]["value"], "ab".repeat(32));
    }

    #[test]
    fn no_runs_is_an_error_not_an_invalid_document() {
        let host = HostInfo::default();
        let e = render_assessment(&Assessment {
            generator: "x",
            agent_id: None,
            host: &host,
            runs: vec![],
        })
        .unwrap_err();
        assert!(e.to_string().contains("no runs"));
    }
}
