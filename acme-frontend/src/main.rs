//! `acme-frontend`: args → tracing → config → run.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

/// Akāmu's ACME front end. Without --config it runs a complete CA on
/// loopback from the embedded defaults.
#[derive(Parser)]
#[command(version, about)]
struct Args {
    /// TOML configuration file.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

/// The system allocator, counting for the benchmark when
/// `AKAMU_HEAP_STATS=1` (see `daemon_kit::heap`).
#[global_allocator]
static HEAP: daemon_kit::heap::Counting = daemon_kit::heap::Counting;

fn main() -> ExitCode {
    daemon_kit::heap::enable_from_env();
    let args = Args::parse();
    daemon_kit::logging::init();
    let config = match acme_frontend::Config::load(args.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("acme-frontend: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("acme-frontend: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(acme_frontend::launcher::run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("acme-frontend: {e}");
            ExitCode::FAILURE
        }
    }
}
