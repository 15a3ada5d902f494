//! The `ca-signer` binary: arguments, logging, configuration, then
//! [`ca_signer::run`].

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

/// Akāmu's signer: holds the CA key and signs certificates for the frontend.
#[derive(Debug, Parser)]
#[command(name = "ca-signer", version)]
struct Args {
    /// Path of the TOML configuration file.
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
}

/// The system allocator, counting for the benchmark when
/// `AKAMU_HEAP_STATS=1` (see `daemon_kit::heap`).
#[global_allocator]
static HEAP: daemon_kit::heap::Counting = daemon_kit::heap::Counting;

fn main() -> ExitCode {
    daemon_kit::heap::enable_from_env();
    let args = Args::parse();
    daemon_kit::logging::init();

    let config = match ca_signer::Config::load(&args.config) {
        Ok(config) => config,
        Err(e) => {
            tracing::error!(target: "signer", error = %e, "cannot load configuration");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(target: "signer", error = %e, "cannot start the runtime");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(ca_signer::run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(target: "signer", error = %e, "signer failed");
            ExitCode::FAILURE
        }
    }
}
