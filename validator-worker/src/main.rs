//! `validator-worker`: `--config FILE`, logs to stderr filtered by `RUST_LOG`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use validator_worker::{Config, run};

/// Akāmu challenge validator.
#[derive(Debug, Parser)]
#[command(name = "validator-worker", version, about)]
struct Args {
    /// Path to the TOML configuration.
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

    let config = match Config::load(&args.config) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "configuration");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the tokio runtime");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "validator stopped");
            ExitCode::FAILURE
        }
    }
}
