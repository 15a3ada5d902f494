//! The soak's load (`scripts/soak.sh`, issue 18): rounds of acme-bench
//! against one CA whose clients keep their accounts between rounds
//! (`--accounts FILE`), as certbot or lego do, instead of registering new
//! ones each round.

use std::path::Path;
use std::process::Command;

use crate::chaos::count;
use crate::support::procs::{Ca, CaOptions, binary_path};

/// One acme-bench round against `ca`: `clients` clients, `requests`
/// issuances; returns the number that succeeded.
fn round(ca: &Ca, dns_port: u16, accounts: &Path, clients: u32, requests: u32) -> u64 {
    let out = Command::new(binary_path("acme-bench"))
        .arg("--directory")
        .arg(ca.directory())
        .arg("--ca-bundle")
        .arg(ca.ca_cert())
        .arg("--accounts")
        .arg(accounts)
        .args(["--clients", &clients.to_string()])
        .args(["--requests", &requests.to_string()])
        .args(["--warmup", "0", "--poll-ms", "5", "--max-secs", "120"])
        .args(["--http-port", &ca.http_validation_port().to_string()])
        .args(["--dns-port", &dns_port.to_string()])
        .args(["--output", "json"])
        .output()
        .expect("run acme-bench");
    assert!(
        out.status.success(),
        "acme-bench failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("a JSON report");
    assert_eq!(report["summary"]["failed"], 0, "{report:#}");
    report["summary"]["succeeded"].as_u64().expect("succeeded")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_rounds_keep_their_accounts() {
    // acme-bench answers the validator's DNS queries on this port.
    let dns_port = test_kit::ports::free_port();
    let ca = Ca::start_async(CaOptions {
        dns_resolver_addr: Some((std::net::Ipv4Addr::LOCALHOST, dns_port).into()),
        ..CaOptions::default()
    })
    .await;
    let dir = tempfile::tempdir().expect("temp dir");
    let accounts = dir.path().join("accounts.json");
    let db = ca.db_path();
    let ca = std::sync::Arc::new(ca);

    let c = ca.clone();
    let a = accounts.clone();
    let issued = tokio::task::spawn_blocking(move || {
        (round(&c, dns_port, &a, 2, 3), round(&c, dns_port, &a, 2, 3))
    })
    .await
    .expect("rounds");
    assert_eq!(issued, (3, 3));
    // Two rounds of two clients: two accounts, saved owner-only.
    assert_eq!(count(&db, "SELECT COUNT(*) FROM accounts"), 2);
    let saved: Vec<serde_json::Value> =
        serde_json::from_slice(&std::fs::read(&accounts).expect("saved")).expect("JSON");
    assert_eq!(saved.len(), 2);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&accounts)
        .expect("stat")
        .permissions()
        .mode();
    assert_eq!(mode & 0o077, 0, "accounts file mode {mode:o}");

    // A third client joins: one more account, the two kept.
    let c = ca.clone();
    let a = accounts.clone();
    let issued = tokio::task::spawn_blocking(move || round(&c, dns_port, &a, 3, 3))
        .await
        .expect("round");
    assert_eq!(issued, 3);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM accounts"), 3);
    // Every issuance of the three rounds was by one of those accounts.
    assert_eq!(count(&db, "SELECT COUNT(*) FROM certificates"), 9);
}
