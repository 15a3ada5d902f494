//! Smoke run: the bench binary starts the real Akāmu binaries (debug build,
//! next to the bench executable: `cargo build --workspace --bins` first, as
//! `scripts/test.sh` does), issues five certificates and reports them as
//! JSON, with the heap counters of `--heap-stats`. No timing is asserted.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use acme_bench::report::{Report, SCHEMA_VERSION};

#[test]
fn five_issuances_reported_as_json() {
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
        .args([
            "--clients",
            "2",
            "--requests",
            "5",
            "--warmup",
            "1",
            "--poll-ms",
            "5",
        ])
        .args(["--output", "json", "--verify-cert", "--max-secs", "120"])
        .arg("--heap-stats")
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
    assert_eq!(report.schema_version, SCHEMA_VERSION);
    assert!(report.target.managed);
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
    // The JSON is also a plain value with the documented top-level keys.
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert!(v["latency"]["finalize"]["p99_ms"].is_number());
    assert!(started.elapsed() < Duration::from_secs(600));
}
