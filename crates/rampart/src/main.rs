//! The `rampart` binary: wires the library crates together behind one CLI. Errors are `anyhow`
//! here and nowhere else; exit codes are part of the interface (see `exit`).

// Printing to stdout is this crate's job; the lint guards the library crates.
#![allow(clippy::print_stdout)]

mod cli;
mod cmd;
mod exit;

use clap::Parser;
use std::process::ExitCode;

/// mimalloc instead of the system allocator: under ingestion glibc's malloc and free took a
/// fifth of the server's CPU (docs/performance.md, "Fleet server").
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    // A command whose output is piped into `head` ends when the reader does, as Unix tools do
    // (killed by SIGPIPE, exit status 141 in the shell), instead of panicking on the failed
    // write. Not for the long-running processes: the server and the agent daemon keep Rust's
    // default (SIGPIPE ignored), so a peer that goes away is an error they handle, never the
    // end of the process.
    let daemon = matches!(
        cli.command,
        cli::Command::Server(_)
            | cli::Command::Agent(cli::AgentCommand::Run { .. })
            | cli::Command::Bench(_)
    );
    if !daemon {
        sigpipe::reset();
    }
    init_tracing(cli.verbose, cli.log_format);
    match cmd::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("rampart: error: {e:#}");
            ExitCode::from(exit::code_for(&e))
        }
    }
}

fn init_tracing(verbose: u8, format: cli::LogFormat) {
    let level = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("RAMPART_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        cli::LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
        // The current span's fields (the request id) and the whole span list on every line,
        // so a log shipper can join a request's lines without parsing text.
        cli::LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .flatten_event(true)
            .init(),
    }
}
