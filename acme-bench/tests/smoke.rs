//! Smoke runs: the bench binary starts the real Akāmu binaries (debug
//! build, next to the bench executable: `cargo build --workspace --bins`
//! first, as `scripts/test.sh` does), issues a few certificates and reports
//! them as JSON: with http-01 and the heap counters of `--heap-stats`, and
//! with every production feature on (dns-persist-01 for wildcards, rate
//! limits, the transparency log). The started CA always checks CAA. No
//! timing is asserted.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use acme_bench::report::{Report, SCHEMA_VERSION};

/// Runs the bench with `args` against a started Akāmu; its report and
/// its stderr.
fn run_bench(args: &[&str]) -> (Report, String) {
    let bench = Path::new(env!("CARGO_BIN_EXE_acme-bench"));
    let bin_dir = bench.parent().expect("bench has a directory");
    for bin in ["acme-frontend", "ca-signer", "validator-worker"] {
        assert!(
            bin_dir.join(bin).is_file(),
            "{} is missing: run `cargo build --workspace --bins` first",
            bin_dir.join(bin).display()
        );
    }
    let started = Instant::now();
    let out = Command::new(bench)
        .args(args)
        .args(["--output", "json", "--verify-cert", "--max-secs", "120"])
        .arg("--bin-dir")
        .arg(bin_dir)
        .output()
        .expect("run acme-bench");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "acme-bench failed ({}) after {:?}:\n{stderr}\nstdout:\n{}",
        out.status,
        started.elapsed(),
        String::from_utf8_lossy(&out.stdout)
    );
    let report: Report = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not a report ({e}):\n{}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    assert!(started.elapsed() < Duration::from_secs(600));
    assert_eq!(report.schema_version, SCHEMA_VERSION);
    assert!(report.target.managed);
    // CAA is checked: each fresh name's record set is looked up, from the
    // name up to the zone's apex (three names), where the record naming
    // the started CA ends the climb. The fresh name is asked every time;
    // the validator's resolver may answer two concurrent lookups of the
    // shared parents with one query.
    assert_eq!(report.target.caa, Some(true));
    let caa = report.dns_queries.get("CAA").copied().unwrap_or(0);
    assert!(
        caa > report.summary.succeeded,
        "{caa} CAA queries for {} issuances",
        report.summary.succeeded
    );
    (report, stderr.into_owned())
}

#[test]
fn five_issuances_reported_as_json() {
    let (report, stderr) = run_bench(&[
        "--clients",
        "2",
        "--requests",
        "5",
        "--warmup",
        "1",
        "--poll-ms",
        "5",
        "--heap-stats",
    ]);
    assert_eq!(report.summary.succeeded, 5, "{report:#?}\n{stderr}");
    assert_eq!(report.summary.failed, 0, "{:?}", report.error_samples);
    assert_eq!(report.summary.verified, 5);
    assert_eq!(report.latency.total.count, 5);
    assert_eq!(report.warmup.succeeded, 1);
    let names: Vec<&str> = report.processes.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["acme-frontend", "ca-signer", "validator-worker"]);
    assert!(report.processes.iter().all(|p| p.peak_rss_bytes > 0));
    // --heap-stats: every process counted its heap requests during the
    // measured window (an issuance asks for kilobytes in many calls).
    for p in &report.processes {
        let bytes = p.heap_alloc_bytes_per_cert.unwrap_or(0.0);
        let calls = p.heap_allocations_per_cert.unwrap_or(0.0);
        assert!(
            bytes > 1_000.0 && calls > 10.0,
            "{}: {bytes} B, {calls} calls",
            p.name
        );
    }
    assert_eq!(report.target.rate_limits, Some(false));
    assert_eq!(report.config.challenge, "http-01");
    // The JSON is also a plain value with the documented top-level keys.
    let v = serde_json::to_value(&report).expect("json");
    assert!(v["latency"]["finalize"]["p99_ms"].is_number());
}

#[test]
fn wildcards_by_dns_persist_01_with_rate_limits_and_the_log() {
    let (report, stderr) = run_bench(&[
        "--clients",
        "2",
        "--requests",
        "4",
        "--warmup",
        "1",
        "--poll-ms",
        "5",
        "--challenge",
        "dns-persist-01",
        "--wildcard",
        "--rate-limits",
        "--mtc",
    ]);
    assert_eq!(
        report.summary.failed, 0,
        "{:?}\n{stderr}",
        report.error_samples
    );
    assert_eq!(report.summary.succeeded, 4, "{report:#?}\n{stderr}");
    // --verify-cert: each leaf names exactly its order's `*.` name.
    assert_eq!(report.summary.verified, 4);
    assert_eq!(report.warmup.succeeded, 1);
    assert_eq!(report.config.challenge, "dns-persist-01");
    assert!(report.config.wildcard);
    assert_eq!(report.target.rate_limits, Some(true));
    assert_eq!(report.target.mtc, Some(true));
    // The validator read each `_validation-persist` record.
    let txt = report.dns_queries.get("TXT").copied().unwrap_or(0);
    assert!(txt >= 4, "{txt} TXT queries: {:?}", report.dns_queries);
}
