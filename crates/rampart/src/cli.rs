//! Command-line definition.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// Rampart: security compliance scanning and threat intelligence.
#[derive(Debug, Parser)]
#[command(name = "rampart", version, about, long_about = None)]
pub struct Cli {
    /// More log output on stderr (-v info, -vv debug). RAMPART_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Audit this host (or a root directory) against policies and report.
    Scan(ScanArgs),
    /// Re-render a saved JSON report (other format, waivers approved since, one framework).
    Report(ReportArgs),
    /// Print a JSON Schema: of the JSON report, or of the native policy format.
    Schema {
        /// Which document.
        #[arg(value_enum)]
        of: SchemaOf,
    },
    /// Inspect policies: lint, show, schema.
    #[command(subcommand)]
    Policy(PolicyCommand),
}

/// Documents with a published JSON Schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SchemaOf {
    /// The JSON report (`rampart scan --format json`).
    Report,
    /// The native policy format (same as `rampart policy schema`).
    Policy,
}

/// Report formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    /// Terminal report.
    Pretty,
    /// Rampart JSON report.
    Json,
    /// Wazuh 4.x SCA check and summary events (NDJSON).
    Wazuh,
    /// JUnit XML.
    Junit,
    /// CSV.
    Csv,
    /// Single-file HTML.
    Html,
}

/// Colour choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorArg {
    /// Colour when writing to a terminal and NO_COLOR is unset.
    Auto,
    /// Always colour.
    Always,
    /// Never colour.
    Never,
}

/// SCA schema choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ScaVersionArg {
    /// Detect from the file.
    Auto,
    /// Wazuh 4.x semantics.
    #[value(name = "4")]
    V4,
    /// Wazuh 5.x semantics.
    #[value(name = "5")]
    V5,
}

/// `rampart scan`.
#[derive(Debug, Args)]
pub struct ScanArgs {
    /// Policy file (Rampart YAML or Wazuh SCA YAML); repeat for several. Default: the built-in
    /// Linux baseline.
    #[arg(short, long = "policy", value_name = "FILE")]
    pub policies: Vec<PathBuf>,
    /// Import the results of an OpenSCAP run (XCCDF 1.2 results or ARF) instead of scanning.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["policies", "root"])]
    pub import_oscap: Option<PathBuf>,
    /// Scan this directory as if it were `/` (a mounted image, a container rootfs).
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// With --root, run command rules chrooted into the root (needs root privileges).
    #[arg(long, requires = "root")]
    pub chroot_commands: bool,
    /// What to report and where.
    #[command(flatten)]
    pub out: OutputArgs,
    /// Per-command timeout in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    pub command_timeout: u64,
    /// Overall deadline in seconds: commands not started by then are not run.
    #[arg(long, value_name = "SECS")]
    pub deadline: Option<u64>,
    /// Worker threads (default: 4 per core, 4 to 32).
    #[arg(short, long, value_name = "N")]
    pub jobs: Option<usize>,
    /// Read SCA files as this Wazuh version.
    #[arg(long, value_enum, default_value_t = ScaVersionArg::Auto)]
    pub sca_version: ScaVersionArg,
    /// Evaluate directories on NFS/CIFS too (Wazuh skips them by default).
    #[arg(long)]
    pub no_skip_nfs: bool,
    /// No progress bar.
    #[arg(short, long)]
    pub quiet: bool,
}

impl OutputArgs {
    /// The format asked for, or the one the output file's extension implies.
    pub fn effective_format(&self) -> FormatArg {
        if let Some(f) = self.format {
            return f;
        }
        let ext = self
            .output
            .as_ref()
            .and_then(|p| p.extension())
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        match ext.as_deref() {
            Some("json") => FormatArg::Json,
            Some("html" | "htm") => FormatArg::Html,
            Some("csv") => FormatArg::Csv,
            Some("xml") => FormatArg::Junit,
            Some("ndjson" | "jsonl") => FormatArg::Wazuh,
            _ => FormatArg::Pretty,
        }
    }
}

/// Output options shared by `scan` and `report`.
#[derive(Debug, Args)]
pub struct OutputArgs {
    /// Output format (default: from the --output extension — .json, .html, .csv, .xml for
    /// JUnit, .ndjson for Wazuh events — else pretty).
    #[arg(short, long, value_enum)]
    pub format: Option<FormatArg>,
    /// Write the report to this file instead of standard output.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Waivers file (YAML): accepted risks, excluded from the score.
    #[arg(long, value_name = "FILE")]
    pub waivers: Option<PathBuf>,
    /// Only report checks mapped to this compliance framework (e.g. nist_800_53, pci_dss_4.0,
    /// soc_2, cis).
    #[arg(long, value_name = "NAME")]
    pub framework: Option<String>,
    /// Exit with status 1 when the score is below this percentage.
    #[arg(long, value_name = "SCORE")]
    pub fail_under: Option<f64>,
    /// List every check in the terminal report, not only failures.
    #[arg(long)]
    pub show_all: bool,
    /// Colour in the terminal report.
    #[arg(long, value_enum, default_value_t = ColorArg::Auto)]
    pub color: ColorArg,
}

/// `rampart report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// A JSON report written by `rampart scan --format json`.
    pub input: PathBuf,
    /// What to report and where.
    #[command(flatten)]
    pub out: OutputArgs,
}

/// `rampart policy ...`.
#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Check policies for errors and for constructs that probably do not do what was meant.
    Lint {
        /// Policy files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Exit with status 1 when there are warnings.
        #[arg(long)]
        deny_warnings: bool,
    },
    /// Print a policy's checks as Rampart understands them.
    Show {
        /// Policy file (default: the built-in baseline).
        file: Option<PathBuf>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Print the JSON Schema of Rampart's native policy format.
    Schema,
}
