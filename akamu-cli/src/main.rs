//! akamu-cli: a command-line ACME client over `akamu-client`.
//!
//! `main` parses the command line, runs one subcommand and turns the outcome
//! into the exit code, in one place: 0 success, 1 ACME or server error,
//! 2 usage error, 3 I/O error, 4 a broken, forked or incomplete
//! transparency log, 5 a transparency log that cannot be reached. Each top-level command is one variant of
//! [`Command`] delegating to `cmd::<name>::run`.

mod cmd;
mod common;
mod error;
mod output;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::error::CliError;
use crate::output::Output;

/// Command-line ACME client: accounts, issuance, ARI-aware renewal and
/// revocation.
#[derive(Parser)]
#[command(name = "akamu-cli", version, about)]
struct Cli {
    /// Print the result as JSON on stdout (progress stays on stderr).
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

/// The top-level commands.
#[derive(Subcommand)]
enum Command {
    /// Manage the ACME account (register, deregister, show, update, key-change).
    Account(cmd::account::Args),
    /// Obtain a certificate.
    Issue(cmd::issue::Args),
    /// ARI-aware renewal (RFC 9773): issue a replacement when renewal is due.
    Renew(cmd::renew::Args),
    /// Revoke a certificate with the account key or the certificate's key.
    Revoke(cmd::revoke::Args),
    /// STAR (RFC 8739): auto-renewed short-term certificates (order, fetch,
    /// cancel).
    Star(cmd::star::Args),
    /// Operator: key ceremonies (root, intermediate) and token listing.
    Ceremony(cmd::ceremony::Args),
    /// Operator: verify the signer's audit log, reconcile it with the database.
    Audit(cmd::audit::Args),
    /// Operator: revoke as the operator, block subscriber keys.
    Admin(cmd::admin::Args),
    /// Monitor the CA's transparency log: verify checkpoints, tiles,
    /// consistency and the database's certificates; prove inclusion.
    Log(cmd::log::Args),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    init_logging();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(3);
        }
    };
    let out = Output::new(cli.json);
    match runtime.block_on(run(cli.command, &out)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            out.error(&e);
            ExitCode::from(e.exit_code())
        }
    }
}

/// Runs one command.
async fn run(command: Command, out: &Output) -> Result<(), CliError> {
    match command {
        Command::Account(args) => cmd::account::run(args, out).await,
        Command::Issue(args) => cmd::issue::run(args, out).await,
        Command::Renew(args) => cmd::renew::run(args, out).await,
        Command::Revoke(args) => cmd::revoke::run(args, out).await,
        Command::Star(args) => cmd::star::run(args, out).await,
        Command::Ceremony(args) => cmd::ceremony::run(args, out),
        Command::Audit(args) => cmd::audit::run(args, out),
        Command::Admin(args) => cmd::admin::run(args, out),
        Command::Log(args) => cmd::log::run(args, out).await,
    }
}

/// `RUST_LOG` filtering, warnings by default, to stderr.
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
