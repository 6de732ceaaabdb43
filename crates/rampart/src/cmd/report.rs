//! `rampart report`: a saved scan report rendered again, or an agent's report from the server.

use std::path::Path;
use std::process::ExitCode;

use anyhow::bail;

use super::fleet::{Api, runtime};
use crate::cli::{FormatArg, ReportArgs};

/// `rampart report TARGET`.
pub fn run(args: ReportArgs) -> anyhow::Result<ExitCode> {
    let path = Path::new(&args.target);
    if path.exists() {
        if args.policy.is_some() {
            bail!(
                "--policy picks an agent's run on the server; {} is a report file",
                path.display()
            );
        }
        return super::scan::rerender(path, &args.out);
    }
    from_server(&args)
}

/// The server renders what needs its records (the attestations); the options that change a
/// report's content (waivers, framework filter) are the server's business there, not the
/// client's, so they are refused rather than silently ignored.
fn from_server(args: &ReportArgs) -> anyhow::Result<ExitCode> {
    let agent = args.target.as_str();
    if args.out.format != Some(FormatArg::Oscal) {
        bail!(
            "{agent}: no such report file; for an agent's report from the server, ask for \
             --format oscal (OSCAL assessment results)"
        );
    }
    for (given, flag) in [
        (args.out.waivers.is_some(), "--waivers"),
        (args.out.framework.is_some(), "--framework"),
        (args.out.fail_under.is_some(), "--fail-under"),
    ] {
        if given {
            bail!(
                "{flag} applies to a report file; an agent's report on the server is judged with \
                 the server's waivers"
            );
        }
    }
    runtime()?.block_on(async {
        let api = Api::new(&args.conn)?;
        let mut path = format!("/api/v1/agents/{}/report?format=oscal", enc(agent));
        if let Some(p) = &args.policy {
            path.push_str(&format!("&policy={}", enc(p)));
        }
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
