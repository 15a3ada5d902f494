//! The `acme-bench` binary: options, one run, the report on stdout.

use std::process::ExitCode;

use acme_bench::options::{Options, OutputFormat};
use clap::Parser;

fn main() -> ExitCode {
    let opts = Options::parse();
    if let Some(dir) = &opts.internal_hsm_init {
        return match acme_bench::ca::hsm_ceremony(dir, opts.ca_key_type) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("acme-bench: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("acme-bench: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(acme_bench::run(&opts)) {
        Ok(report) => {
            match opts.output {
                OutputFormat::Text => print!("{}", report.to_text()),
                OutputFormat::Json => match serde_json::to_string_pretty(&report) {
                    Ok(s) => println!("{s}"),
                    Err(e) => {
                        eprintln!("acme-bench: cannot encode the report: {e}");
                        return ExitCode::FAILURE;
                    }
                },
            }
            // Failed issuances are in the report; the exit status says
            // whether every measured issuance succeeded.
            if report.summary.failed == 0 && report.summary.skipped == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(3)
            }
        }
        Err(e) => {
            eprintln!("acme-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}
