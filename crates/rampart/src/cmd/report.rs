//! `rampart report`: a saved scan report rendered again, or an agent's report from the server.

use std::path::Path;
use std::process::ExitCode;

use anyhow::bail;

use super::fleet::{Api, runtime};
use crate::cli::{FormatArg, ReportArgs};

/// `rampart report TARGET`, `rampart report --group G`, `rampart report --fleet`.
pub fn run(args: ReportArgs) -> anyhow::Result<ExitCode> {
    if let Some(target) = &args.target {
        let path = Path::new(target);
        if path.exists() {
            if args.policy.is_some() {
                bail!(
                    "--policy picks an agent's run on the server; {} is a report file",
                    path.display()
                );
            }
            return super::scan::rerender(path, &args.out);
        }
    }
    from_server(&args)
}

/// The server renders what needs its records (the attestations); the options that change a
/// report's content (waivers, framework filter) are the server's business there, not the
/// client's, so they are refused rather than silently ignored.
fn from_server(args: &ReportArgs) -> anyhow::Result<ExitCode> {
    let format = args.out.effective_format();
    let path = match (&args.target, &args.group) {
        (Some(agent), _) => {
            let kind = match format {
                FormatArg::Oscal => "oscal",
                FormatArg::Pdf => "pdf",
                _ => bail!(
                    "{agent}: no such report file; for an agent's report from the server, ask for \
                     --format oscal (OSCAL assessment results) or --format pdf"
                ),
            };
            let mut path = format!("/api/v1/agents/{}/report?format={kind}", enc(agent));
            if let Some(p) = &args.policy {
                path.push_str(&format!("&policy={}", enc(p)));
            }
            path
        }
        (None, group) => {
            if format != FormatArg::Pdf {
                bail!(
                    "--group and --fleet report as PDF only: add --format pdf (or --output FILE.pdf)"
                );
            }
            match group {
                Some(g) => format!("/api/v1/report?format=pdf&group={}", enc(g)),
                None => "/api/v1/report?format=pdf".to_owned(),
            }
        }
    };
    for (given, flag) in [
        (args.out.waivers.is_some(), "--waivers"),
        (args.out.framework.is_some(), "--framework"),
        (args.out.fail_under.is_some(), "--fail-under"),
    ] {
        if given {
            bail!(
                "{flag} applies to a report file; a report from the server is judged with the \
                 server's waivers"
            );
        }
    }
    if format == FormatArg::Pdf
        && args.out.output.is_none()
        && std::io::IsTerminal::is_terminal(&std::io::stdout())
    {
        bail!(
            "--format pdf: a PDF is binary; name a file with --output or redirect standard output"
        );
    }
    runtime()?.block_on(async {
        let api = Api::new(&args.conn)?;
        let bytes = api.get_response(&path).await?.bytes().await?;
        match &args.out.output {
            Some(file) => super::write_atomic(file, &bytes)?,
            None => std::io::Write::write_all(&mut std::io::stdout().lock(), &bytes)?,
        }
        Ok(ExitCode::SUCCESS)
    })
}

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
