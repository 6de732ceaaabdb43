//! PDF compliance reports for one host, a group or the fleet: an executive summary (score,
//! trend, per framework), a control table per framework, failed checks with remediation, the
//! waivers in force, the attestations that sign the results and an evidence appendix.
//!
//! The caller gathers the facts ([`ReportInput`]); [`Report::build`] does the arithmetic;
//! [`render`] lays the report out with an embedded Typst template and writes the PDF in-process,
//! fonts embedded. The template reads the report as JSON data, never as markup, so a host name
//! or an evidence line holding Typst syntax is printed as the text it is.

mod model;
mod scan;
mod world;

pub use model::{
    AttestationRow, CheckResult, ControlRow, EvidenceBlock, EvidenceSample, FailureRow,
    FrameworkSection, MAX_EVIDENCE, MAX_EVIDENCE_LINES, MAX_FAILURES, PolicyLine, Report,
    ReportInput, Subject, SubjectKind, Tally, TrendBar, TrendPoint, WaiverRow, natural,
};
pub use scan::{HostResults, evidence_sample, from_scan};

use typst::diag::{SourceDiagnostic, Warned};
use typst::foundations::{Datetime, Smart};
use typst_layout::PagedDocument;
use typst_pdf::{PdfOptions, Timestamp};

/// The layout, compiled into the binary.
const TEMPLATE: &str = include_str!("../templates/report.typ");

/// Why a report could not be made.
#[derive(Debug, thiserror::Error)]
pub enum PdfError {
    /// The report could not be serialised for the template.
    #[error("cannot pass the report to the layout: {0}")]
    Data(#[from] serde_json::Error),
    /// The layout failed (a bug in the template, or a limit of Typst's).
    #[error("cannot lay out the report: {0}")]
    Layout(String),
    /// The PDF could not be written.
    #[error("cannot write the PDF: {0}")]
    Write(String),
}

/// A laid-out report.
#[derive(Debug)]
pub struct Pdf {
    /// The PDF file.
    pub bytes: Vec<u8>,
    /// Its pages.
    pub pages: usize,
    /// What the layout warned about (a glyph no embedded font has, say).
    pub warnings: Vec<String>,
}

/// Lays out a report and writes it as a PDF. CPU-bound (tens of milliseconds for a host,
/// longer for a long appendix): servers call it off their async workers.
pub fn render(report: &Report) -> Result<Pdf, PdfError> {
    let data = serde_json::to_vec(report)?;
    let at = report.generated_at.to_offset(time::UtcOffset::UTC);
    let today = Datetime::from_ymd_hms(
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second(),
    )
    .ok_or_else(|| PdfError::Layout(format!("{at} is not a date Typst can hold")))?;
    let world = world::ReportWorld::new(TEMPLATE, data, today)
        .map_err(|e| PdfError::Layout(e.to_string()))?;
    let Warned { output, warnings } = typst::compile::<PagedDocument>(&world);
    let document = output.map_err(|errors| PdfError::Layout(messages(&errors)))?;
    let options = PdfOptions {
        ident: Smart::Custom(format!("{}@{}", report.title, report.generated_rfc3339)),
        creator: Smart::Custom(Some(report.generator.clone())),
        timestamp: Some(Timestamp::new_utc(today)),
        ..PdfOptions::default()
    };
    let bytes =
        typst_pdf::pdf(&document, &options).map_err(|errors| PdfError::Write(messages(&errors)))?;
    Ok(Pdf {
        bytes,
        pages: document.pages().len(),
        warnings: warnings.iter().map(|w| w.message.to_string()).collect(),
    })
}

fn messages(diagnostics: &[SourceDiagnostic]) -> String {
    diagnostics
        .iter()
        .map(|d| d.message.to_string())
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests;
