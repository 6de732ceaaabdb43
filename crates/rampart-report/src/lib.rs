//! Rendering scan reports (terminal, JSON, Wazuh-compatible events, JUnit, CSV, HTML, OSCAL) and
//! importing OpenSCAP results into the same model.
//!
//! Renderers are pure functions of a [`ScanReport`]: the same report always renders to the same
//! bytes, which is what makes snapshot tests and signed reports possible.

pub mod csv;
pub mod html;
pub mod json;
pub mod junit;
pub mod oscal;
pub mod oscap;
pub mod terminal;
pub mod text;
pub mod wazuh;

use rampart_core::ScanReport;
use std::str::FromStr;

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Human-readable terminal report.
    Pretty,
    /// Rampart's JSON report (`docs/report-format.md`).
    Json,
    /// Wazuh 4.x SCA events (check + summary), one JSON object per line.
    Wazuh,
    /// JUnit XML, one test case per check.
    Junit,
    /// CSV, one row per check.
    Csv,
    /// A single self-contained HTML file.
    Html,
    /// OSCAL 1.1 assessment results (JSON).
    Oscal,
}

impl FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "pretty" | "text" => Format::Pretty,
            "json" => Format::Json,
            "wazuh" | "wazuh-json" => Format::Wazuh,
            "junit" => Format::Junit,
            "csv" => Format::Csv,
            "html" => Format::Html,
            "oscal" => Format::Oscal,
            other => {
                return Err(format!(
                    "unknown format '{other}' (expected pretty, json, wazuh, junit, csv, html or oscal)"
                ));
            }
        })
    }
}

/// Errors while rendering.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// Serialisation failed.
    #[error("cannot render report: {0}")]
    Render(String),
}

/// Options for the terminal renderer.
#[derive(Debug, Clone, Copy, Default)]
pub struct PrettyOptions {
    /// Use ANSI colours.
    pub color: bool,
    /// List every check, not only failures.
    pub verbose: bool,
}

/// Renders a report in a file format (everything except the terminal view).
pub fn render(
    report: &ScanReport,
    format: Format,
    pretty: PrettyOptions,
) -> Result<Vec<u8>, ReportError> {
    match format {
        Format::Pretty => Ok(terminal::render(report, pretty).into_bytes()),
        Format::Json => json::render(report),
        Format::Wazuh => wazuh::render(report),
        Format::Junit => junit::render(report),
        Format::Csv => csv::render(report),
        Format::Html => html::render(report),
        Format::Oscal => oscal::render(report),
    }
}
