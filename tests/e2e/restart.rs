//! Crash safety of the process split (DESIGN.md "IPC", "Running it"): the
//! dev launcher restarts a `ca-signer` or `validator-worker` that dies, the
//! frontend reconnects, and a call in flight when a peer dies leaves the
//! order retryable, never stuck in `processing`.

use std::time::Duration;

use instant_acme::{AuthorizationStatus, ChallengeStatus, ChallengeType, Order, OrderStatus};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::issuance::start_ca;
use crate::support::certs::{dns_sans, verify_chain};
use crate::support::client::{
    acme_account, answer_http01, csr, download, issue_http01, new_order, wait_ready,
};
use crate::support::dns::DnsServer;
use crate::support::http01::Http01Server;
use crate::support::procs::Ca;

/// How long the launcher may take to notice a death and restart the child.
const RESTART_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a challenge or order may take to leave `processing`.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(90);

const SIGNER: &str = "ca-signer";
const VALIDATOR: &str = "validator-work";

fn kill9(pid: i32) {
    kill(Pid::from_raw(pid), Signal::SIGKILL).unwrap_or_else(|e| panic!("kill -9 {pid}: {e}"));
}

/// Kills the child `prefix` (pid `old`) with SIGKILL and waits for the
/// launcher to start a new one that serves its socket. Returns the new pid.
async fn kill_and_wait_restart(ca: &Ca, prefix: &str, old: i32) -> i32 {
    kill9(old);
    let new = ca.wait_restarted(prefix, old, RESTART_TIMEOUT).await;
    ca.wait_listening(new, RESTART_TIMEOUT).await;
    new
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validator_killed_is_restarted_and_next_order_completes() {
    let dns = DnsServer::start().await;
    let ca = start_ca(&dns).await;
    let http = Http01Server::start(ca.http_validation_port()).await;
    let account = acme_account(&ca).await;

    let old = ca.ready().validator_pid;
    assert_eq!(
        ca.validator_pid(),
        Some(old),
        "READY validator_pid is the running child"
    );
    let new = kill_and_wait_restart(&ca, VALIDATOR, old).await;
    assert_ne!(new, old);

    let names = ["after-validator-restart.example.org"];
    let issued = issue_http01(&account, &http, &names).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let leaf = verify_chain(dir.path(), ca.ca_cert(), &issued.chain_pem);
    assert_eq!(dns_sans(&leaf), vec![names[0]]);
    assert_eq!(
        ca.validator_pid(),
        Some(new),
        "the restarted validator did the work"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signer_killed_before_finalize_still_issues() {
    let dns = DnsServer::start().await;
    let ca = start_ca(&dns).await;
    let http = Http01Server::start(ca.http_validation_port()).await;
    let account = acme_account(&ca).await;

    let names = ["after-signer-restart.example.org"];
    let mut order = new_order(&account, &names).await;
    answer_http01(&mut order, &http).await;
    wait_ready(&mut order).await;

    // Kill the signer between challenge-valid and finalize, and finalize at
    // once, while the launcher is still restarting it.
    let old = ca.ready().signer_pid;
    assert_eq!(
        ca.signer_pid(),
        Some(old),
        "READY signer_pid is the running child"
    );
    kill9(old);
    let chain = finalize_with_retries(&mut order, &names).await;
    let new = ca.wait_restarted(SIGNER, old, RESTART_TIMEOUT).await;
    assert_ne!(new, old);

    let dir = tempfile::tempdir().expect("tempdir");
    let leaf = verify_chain(dir.path(), ca.ca_cert(), &chain);
    assert_eq!(dns_sans(&leaf), vec![names[0]]);

    // And the restarted signer keeps serving new orders.
    let issued = issue_http01(&account, &http, &["again.example.org"]).await;
    verify_chain(dir.path(), ca.ca_cert(), &issued.chain_pem);

    // Every certificate either signer process signed is in the database,
    // and nothing else is: `akamu-cli audit reconcile` agrees.
    let audit_log = ca.state_dir().join("audit.log");
    let db = ca.db_path();
    let run = reconcile(&audit_log, &db);
    run.assert_success();
    let report: serde_json::Value = serde_json::from_str(&run.stdout).expect("--json output");
    assert_eq!(report["audit_only"], serde_json::json!([]), "{run}");
    assert_eq!(report["database_only"], serde_json::json!([]), "{run}");
    // The frontend's HTTPS certificate, signed at the first start, is
    // listed apart: it is not an ACME issuance.
    assert_eq!(
        report["server_certificates"].as_array().map(Vec::len),
        Some(1),
        "{run}"
    );

    // A certificate missing from the database (here: a snapshot of it with
    // one row deleted) is named, and the command fails.
    let copy = dir.path().join("snapshot.db");
    let leaf = crate::support::certs::split_chain(&issued.chain_pem)[0].clone();
    let serial = leaf
        .serial_number()
        .to_bn()
        .and_then(|bn| bn.to_hex_str().map(|h| h.to_ascii_lowercase()))
        .expect("serial as hex");
    let serial = serial.trim_start_matches('0').to_owned();
    assert_eq!(
        snapshot_without_certificate(&db, &copy, &serial),
        1,
        "one certificate row deleted from the snapshot"
    );
    let run = reconcile(&audit_log, &copy);
    assert!(
        !run.success(),
        "reconcile must fail on a missing row: {run}"
    );
    // In --json mode the report is the first line and the error the second.
    let first = run.stdout.lines().next().unwrap_or_default();
    let report: serde_json::Value = serde_json::from_str(first).expect("--json report");
    assert_eq!(report["audit_only"], serde_json::json!([serial]), "{run}");
    assert_eq!(report["database_only"], serde_json::json!([]), "{run}");

    // `--import` brings it back from the certificate its audit record
    // carries; afterwards the two records agree again.
    let chain = ca.ca_cert().as_os_str().to_owned();
    let run = reconcile_with(
        &audit_log,
        &copy,
        &["--import".as_ref(), "--chain".as_ref(), &chain],
    );
    run.assert_success();
    let report: serde_json::Value = serde_json::from_str(&run.stdout).expect("--json output");
    assert_eq!(report["imported"], serde_json::json!([serial]), "{run}");
    assert_eq!(report["audit_only"], serde_json::json!([]), "{run}");
    reconcile(&audit_log, &copy).assert_success();
}

/// Writes a consistent snapshot of the live WAL database `db` to `copy`
/// (`VACUUM INTO`, which reads one transaction's view) and deletes the
/// certificate with `serial` (hex, no leading zeros) from the snapshot.
/// Returns the number of rows deleted.
fn snapshot_without_certificate(
    db: &std::path::Path,
    copy: &std::path::Path,
    serial: &str,
) -> usize {
    use diesel::{Connection, RunQueryDsl, SqliteConnection, sql_types::Text};
    let mut live = SqliteConnection::establish(&format!("file:{}?mode=ro", db.display()))
        .unwrap_or_else(|e| panic!("open {}: {e}", db.display()));
    diesel::sql_query("VACUUM INTO ?")
        .bind::<Text, _>(copy.display().to_string())
        .execute(&mut live)
        .unwrap_or_else(|e| panic!("snapshot {}: {e}", db.display()));
    let mut snap = SqliteConnection::establish(&copy.display().to_string())
        .unwrap_or_else(|e| panic!("open {}: {e}", copy.display()));
    diesel::sql_query("DELETE FROM certificates WHERE ltrim(lower(serial_number), '0') = ?")
        .bind::<Text, _>(serial)
        .execute(&mut snap)
        .unwrap_or_else(|e| panic!("delete from {}: {e}", copy.display()))
}

/// `akamu-cli --json audit reconcile` of `audit_log` against `db`.
fn reconcile(audit_log: &std::path::Path, db: &std::path::Path) -> crate::support::operator::Run {
    reconcile_with(audit_log, db, &[])
}

/// [`reconcile`] with `extra` arguments.
fn reconcile_with(
    audit_log: &std::path::Path,
    db: &std::path::Path,
    extra: &[&std::ffi::OsStr],
) -> crate::support::operator::Run {
    let mut args: Vec<&std::ffi::OsStr> = vec![
        "--json".as_ref(),
        "audit".as_ref(),
        "reconcile".as_ref(),
        "--audit-log".as_ref(),
        audit_log.as_os_str(),
        "--database".as_ref(),
        db.as_os_str(),
    ];
    args.extend_from_slice(extra);
    crate::support::operator::akamu_cli(&args, &[])
}

/// A finalize racing with the signer's death: whichever wins, the order
/// must not stay `processing` nor turn `invalid`; a retrying client gets
/// its certificate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signer_killed_during_finalize_leaves_order_retryable() {
    let dns = DnsServer::start().await;
    let ca = start_ca(&dns).await;
    let http = Http01Server::start(ca.http_validation_port()).await;
    let account = acme_account(&ca).await;

    let names = ["racing-finalize.example.org"];
    let mut order = new_order(&account, &names).await;
    answer_http01(&mut order, &http).await;
    wait_ready(&mut order).await;

    let old = ca.signer_pid().expect("a signer is running");
    let (der, _key) = csr(&names);
    let (first, ()) = tokio::join!(order.finalize_csr(&der), async { kill9(old) });
    eprintln!("[e2e] finalize racing the signer's death: {first:?}");
    let chain = finalize_with_retries(&mut order, &names).await;
    ca.wait_restarted(SIGNER, old, RESTART_TIMEOUT).await;

    let dir = tempfile::tempdir().expect("tempdir");
    let leaf = verify_chain(dir.path(), ca.ca_cert(), &chain);
    assert_eq!(dns_sans(&leaf), vec![names[0]]);

    // Whenever the kill landed (even after the old signer had signed and
    // audited but before it answered), the order got the certificate the
    // audit log holds, and no certificate is signed without being stored.
    let run = reconcile(&ca.state_dir().join("audit.log"), &ca.db_path());
    run.assert_success();
}

/// Finalizes `order`, as a careful client would: while the order is
/// `ready` (again), (re)send finalize; while `processing`, poll; give up
/// only if the order turns `invalid` or nothing settles in time.
async fn finalize_with_retries(order: &mut Order, names: &[&str]) -> String {
    let (csr_der, _key) = csr(names);
    let deadline = tokio::time::Instant::now() + SETTLE_TIMEOUT;
    let mut errors = Vec::new();
    let url = order.url().to_owned();
    loop {
        assert!(
            tokio::time::Instant::now() < deadline,
            "order {url} did not become valid within {SETTLE_TIMEOUT:?}; finalize errors: {errors:#?}; last state: {:?}",
            order.state()
        );
        let status = match order.refresh().await {
            Ok(state) => state.status,
            Err(e) => {
                errors.push(format!("refresh: {e}"));
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        match status {
            OrderStatus::Ready => {
                if let Err(e) = order.finalize_csr(&csr_der).await {
                    errors.push(format!("finalize: {e}"));
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
            OrderStatus::Processing => tokio::time::sleep(Duration::from_millis(250)).await,
            OrderStatus::Valid => {
                eprintln!("[e2e] order {url} valid; errors on the way: {errors:?}");
                return download(order).await;
            }
            OrderStatus::Invalid | OrderStatus::Pending => panic!(
                "killing the signer left order {url} {status:?} (not retryable); finalize errors: {errors:#?}; state: {:?}",
                order.state()
            ),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validator_killed_mid_validation_leaves_no_challenge_processing() {
    let dns = DnsServer::start().await;
    let ca = start_ca(&dns).await;
    let http = Http01Server::start(ca.http_validation_port()).await;
    let account = acme_account(&ca).await;

    // The token server stalls, so the validator is busy with our challenge
    // when it dies.
    http.set_delay(Duration::from_secs(120));
    let mut order = new_order(&account, &["stalled.example.org"]).await;
    answer_http01(&mut order, &http).await;
    http.wait_hits(1, Duration::from_secs(30)).await;
    let old = ca.validator_pid().expect("a validator is running");
    kill9(old);
    // Whatever the frontend does next (retry or fail), it may now succeed.
    http.set_delay(Duration::ZERO);
    ca.wait_restarted(VALIDATOR, old, RESTART_TIMEOUT).await;

    let deadline = tokio::time::Instant::now() + SETTLE_TIMEOUT;
    let (authz_status, challenge_status, error) = loop {
        let mut authzs = order.authorizations();
        let mut authz = authzs.next().await.expect("one").expect("authorization");
        let state = authz.refresh().await.expect("refresh authorization");
        let challenge = state
            .challenges
            .iter()
            .find(|c| c.r#type == ChallengeType::Http01)
            .expect("http-01 challenge");
        if matches!(
            challenge.status,
            ChallengeStatus::Valid | ChallengeStatus::Invalid
        ) {
            break (state.status, challenge.status, challenge.error.clone());
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the challenge is still {:?} {SETTLE_TIMEOUT:?} after the validator died: stuck",
            challenge.status
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    eprintln!("[e2e] challenge after the validator died: {challenge_status:?} {error:?}");
    match challenge_status {
        ChallengeStatus::Valid => {
            assert_eq!(authz_status, AuthorizationStatus::Valid);
            // The order completes too.
            wait_ready(&mut order).await;
        }
        _ => {
            assert_eq!(authz_status, AuthorizationStatus::Invalid);
            let problem = error.expect("an invalid challenge carries an error");
            assert!(
                problem
                    .r#type
                    .as_deref()
                    .is_some_and(|t| t.starts_with("urn:ietf:params:acme:error:")),
                "challenge error has an ACME type: {problem:?}"
            );
            let state = order.refresh().await.expect("refresh order");
            assert_eq!(
                state.status,
                OrderStatus::Invalid,
                "order follows its authorization"
            );
        }
    }
}

/// The worst moment for the frontend to die: the signer has signed (and
/// audited) the certificate, the frontend has not committed it. A fault
/// point makes the frontend abort exactly there, every time. After a restart
/// the recovery sweep asks the signer again with the order's
/// `processing_since`, the signer answers with the certificate it already
/// signed, and the client gets that one: one signature per order, every
/// signed certificate in the database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frontend_killed_between_signature_and_commit_loses_no_certificate() {
    let dns = DnsServer::start().await;
    let mut ca = Ca::start_async(crate::support::procs::CaOptions {
        dns_resolver_addr: Some(dns.addr()),
        env: vec![(
            "AKAMU_FAULT_POINT".into(),
            acme_frontend::fault::AFTER_SIGN_BEFORE_COMMIT.into(),
        )],
        ..Default::default()
    })
    .await;
    let http = Http01Server::start(ca.http_validation_port()).await;
    let account = acme_account(&ca).await;
    let names = ["crash-before-commit.example.org"];
    let mut order = new_order(&account, &names).await;
    answer_http01(&mut order, &http).await;
    wait_ready(&mut order).await;
    let order_id = order
        .url()
        .rsplit('/')
        .next()
        .expect("order URL has an id")
        .to_owned();

    // The frontend aborts while answering: the client sees a broken
    // connection, not a certificate.
    let (csr_der, _key) = csr(&names);
    assert!(
        order.finalize_csr(&csr_der).await.is_err(),
        "the frontend must die before answering the finalize"
    );
    ca.restart_after_crash(Vec::new(), RESTART_TIMEOUT).await;

    let chain = download(&mut order).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let leaf = verify_chain(dir.path(), ca.ca_cert(), &chain);
    assert_eq!(dns_sans(&leaf), vec![names[0]]);
    let serial = leaf
        .serial_number()
        .to_bn()
        .and_then(|bn| bn.to_hex_str().map(|h| h.to_ascii_lowercase()))
        .expect("serial as hex");

    // Exactly one signature for the order, and it is the certificate
    // served.
    let audit_log = ca.state_dir().join("audit.log");
    let text = std::fs::read_to_string(&audit_log).expect("read the audit log");
    let issued: Vec<serde_json::Value> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|r| r["operation"] == "issue" && r["order_id"] == order_id.as_str())
        .collect();
    assert_eq!(
        issued.len(),
        1,
        "signatures for order {order_id}: {issued:?}"
    );
    assert_eq!(
        issued[0]["serial"]
            .as_str()
            .map(|s| s.trim_start_matches('0')),
        Some(serial.trim_start_matches('0')),
        "the served certificate is the one signed before the crash"
    );
    reconcile(&audit_log, &ca.db_path()).assert_success();
}
