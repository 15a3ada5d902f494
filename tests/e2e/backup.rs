//! The restore drill of docs/src/operations.md, against the real binaries:
//! `akamu-cli admin backup` while several clients issue certificates, then
//! stop the frontend, replace its database with the backup, remove the
//! `-wal`/`-shm` files, start it again, and check that every certificate
//! the backup holds is served, that the database is consistent, and that
//! `akamu-cli audit reconcile` names certificates signed after the backup
//! and `--import` takes them over from the audit log.

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use instant_acme::Account;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::sync::Mutex;

use crate::issuance::start_ca;
use crate::support::client::{acme_account, issue_http01};
use crate::support::dns::DnsServer;
use crate::support::http01::Http01Server;
use crate::support::operator::{Run, akamu_cli};
use crate::support::pids::proc_stat;
use crate::support::procs::Ca;

/// Clients issuing at once.
const CLIENTS: usize = 4;

/// One issued certificate as its client saw it.
#[derive(Clone, Debug)]
struct Cert {
    serial: String,
    url: String,
    chain_pem: String,
    /// Its order, and the index of the client (account) that placed it.
    order_url: String,
    client: usize,
}

/// The normalised serial of the leaf of `chain_pem`.
fn serial_of(chain_pem: &str) -> String {
    let leaf = openssl::x509::X509::from_pem(chain_pem.as_bytes()).expect("leaf PEM");
    let hex = leaf
        .serial_number()
        .to_bn()
        .and_then(|bn| bn.to_hex_str().map(|s| s.to_string()))
        .expect("serial");
    akamu_pki::serial::normalize(&hex).expect("hex serial")
}

/// `akamu-cli --json` with `args`.
fn cli(args: &[&OsStr]) -> Run {
    let mut all: Vec<&OsStr> = vec!["--json".as_ref()];
    all.extend_from_slice(args);
    akamu_cli(&all, &[])
}

fn reconcile(ca: &Ca, extra: &[&OsStr]) -> Run {
    let audit_log = ca.state_dir().join("audit.log");
    let mut args: Vec<&OsStr> = vec![
        "audit".as_ref(),
        "reconcile".as_ref(),
        "--audit-log".as_ref(),
        audit_log.as_os_str(),
        "--config".as_ref(),
        ca.config_path().as_os_str(),
    ];
    args.extend_from_slice(extra);
    cli(&args)
}

/// Waits until process `pid` has exited (gone or a zombie).
async fn wait_exited(pid: i32, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while proc_stat(pid).is_some_and(|(_, state, _)| state != 'Z') {
        assert!(
            Instant::now() < deadline,
            "process {pid} still runs after {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Issues certificates for fresh names until `stop`, recording each;
/// gives the account back.
async fn client_loop(
    account: Account,
    http: Arc<Http01Server>,
    id: usize,
    stop: Arc<AtomicBool>,
    issued: Arc<Mutex<Vec<Cert>>>,
    count: Arc<AtomicUsize>,
) -> Account {
    let mut n = 0;
    while !stop.load(Ordering::Relaxed) {
        let name = format!("c{id}-{n}.backup.akamu.test");
        let got = issue_http01(&account, &http, &[name.as_str()]).await;
        issued.lock().await.push(Cert {
            serial: serial_of(&got.chain_pem),
            url: got.cert_url,
            chain_pem: got.chain_pem,
            order_url: got.order_url,
            client: id,
        });
        count.fetch_add(1, Ordering::Relaxed);
        n += 1;
    }
    account
}

/// Issue 12: an online backup under load restores to a CA that serves
/// every certificate the backup holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_under_load_restores_to_a_ca_serving_every_certificate_in_it() {
    let dns = DnsServer::start().await;
    let mut ca = start_ca(&dns).await;
    let responder = Arc::new(Http01Server::start(ca.http_validation_port()).await);
    let mut accounts = Vec::new();
    for _ in 0..CLIENTS {
        accounts.push(acme_account(&ca).await);
    }

    let stop = Arc::new(AtomicBool::new(false));
    let issued = Arc::new(Mutex::new(Vec::new()));
    let count = Arc::new(AtomicUsize::new(0));
    let mut clients = Vec::new();
    for (id, account) in accounts.into_iter().enumerate() {
        clients.push(tokio::spawn(client_loop(
            account,
            responder.clone(),
            id,
            stop.clone(),
            issued.clone(),
            count.clone(),
        )));
    }
    // Take the backup once the clients have issued a few certificates,
    // with all of them mid-issuance.
    let deadline = Instant::now() + Duration::from_secs(120);
    while count.load(Ordering::Relaxed) < 3 * CLIENTS {
        assert!(Instant::now() < deadline, "no issuance under load");
        assert!(
            clients.iter().all(|c| !c.is_finished()),
            "a client stopped before the backup"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let work = tempfile::tempdir().expect("tempdir");
    let backup = work.path().join("akamu-backup.db");
    let before_backup = count.load(Ordering::Relaxed);
    let (cfg, out) = (ca.config_path().to_owned(), backup.clone());
    let run = tokio::task::spawn_blocking(move || {
        cli(&[
            "admin".as_ref(),
            "backup".as_ref(),
            "--config".as_ref(),
            cfg.as_os_str(),
            "--out".as_ref(),
            out.as_os_str(),
        ])
    })
    .await
    .expect("join");
    let after_backup = count.load(Ordering::Relaxed);
    run.assert_success();
    let report: serde_json::Value = serde_json::from_str(&run.stdout).expect("--json output");
    // Let every client finish at least one more issuance after the backup.
    let deadline = Instant::now() + Duration::from_secs(120);
    while count.load(Ordering::Relaxed) < after_backup + CLIENTS {
        assert!(Instant::now() < deadline, "no issuance after the backup");
        assert!(
            clients.iter().all(|c| !c.is_finished()),
            "a client stopped after the backup"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let mut accounts = Vec::new();
    for c in clients {
        accounts.push(c.await.expect("client task"));
    }
    let issued = issued.lock().await.clone();

    // An existing file is never overwritten.
    let before = std::fs::read(&backup).expect("read backup");
    let again = cli(&[
        "admin".as_ref(),
        "backup".as_ref(),
        "--config".as_ref(),
        ca.config_path().as_os_str(),
        "--out".as_ref(),
        backup.as_os_str(),
    ]);
    assert!(!again.success(), "a second backup onto the file: {again}");
    assert!(
        again.all_output().contains("refusing to overwrite"),
        "{again}"
    );
    assert_eq!(std::fs::read(&backup).expect("read backup"), before);

    let in_backup = acme_frontend::admin::database_serials(
        &acme_frontend::store::Location::Sqlite(backup.clone()),
    )
    .expect("serials of the backup");
    assert_eq!(
        report["certificates"].as_u64(),
        Some(in_backup.len() as u64),
        "{run}"
    );
    let all: BTreeSet<String> = issued.iter().map(|c| c.serial.clone()).collect();
    assert!(
        in_backup.is_subset(&all),
        "the backup holds only issued certificates"
    );
    assert!(
        in_backup.len() >= before_backup,
        "everything issued before the backup started is in it"
    );
    let after: BTreeSet<String> = all.difference(&in_backup).cloned().collect();
    assert!(!after.is_empty(), "some certificates were issued after it");
    eprintln!(
        "[e2e] restore drill: {} issued under load ({} before the backup started, {} when it \
         ended), {} in the backup, {} after it",
        all.len(),
        before_backup,
        after_backup,
        in_backup.len(),
        after.len()
    );

    // The restore procedure: stop the frontend, replace the database,
    // remove -wal and -shm, start.
    let frontend = ca.ready().frontend_pid;
    kill(Pid::from_raw(frontend), Signal::SIGTERM).expect("SIGTERM the frontend");
    wait_exited(frontend, Duration::from_secs(30)).await;
    let db = ca.db_path();
    std::fs::copy(&backup, &db).expect("restore the backup");
    for suffix in ["-wal", "-shm"] {
        let mut side = db.clone().into_os_string();
        side.push(suffix);
        let side = Path::new(&side);
        if side.exists() {
            std::fs::remove_file(side).expect("remove -wal/-shm");
        }
    }
    ca.restart_after_crash(Vec::new(), Duration::from_secs(30))
        .await;

    // Every certificate the backup holds is served at its URL, to the
    // account that ordered it (POST-as-GET, RFC 8555 §7.4.2).
    let mut served = 0;
    for cert in &issued {
        let account = &accounts[cert.client];
        let fetched = match account.order(cert.order_url.clone()).await {
            Ok(mut order) => order.certificate().await,
            Err(e) => Err(e),
        };
        if in_backup.contains(&cert.serial) {
            let chain = fetched
                .unwrap_or_else(|e| panic!("{} after the restore: {e}", cert.url))
                .unwrap_or_else(|| panic!("{} has no certificate after the restore", cert.url));
            assert_eq!(chain, cert.chain_pem, "{}", cert.url);
            served += 1;
        } else {
            // Not in the restored database: its order is gone (404), or the
            // backup caught it before `valid` (pending or ready: no
            // certificate), or `processing`, which the recovery sweep
            // completes with the certificate the signer already signed for
            // it. Never a different certificate.
            if let Ok(Some(chain)) = fetched {
                assert_eq!(
                    chain, cert.chain_pem,
                    "{}: a processing order completes with the certificate already signed",
                    cert.order_url
                );
            }
        }
    }
    assert_eq!(served, in_backup.len());
    eprintln!("[e2e] restore drill: {served} certificates served after the restore");

    // The restored database is consistent.
    cli(&[
        "admin".as_ref(),
        "check".as_ref(),
        "--config".as_ref(),
        ca.config_path().as_os_str(),
    ])
    .assert_success();

    // The audit log names exactly what the backup lacks.
    let run = reconcile(&ca, &[]);
    assert!(!run.success(), "reconcile must report the gap: {run}");
    let first = run.stdout.lines().next().unwrap_or_default();
    let gap: serde_json::Value = serde_json::from_str(first).expect("--json report");
    let audit_only: BTreeSet<String> = gap["audit_only"]
        .as_array()
        .expect("audit_only")
        .iter()
        .filter_map(|s| s.as_str().map(str::to_owned))
        .collect();
    // The recovery sweep may already have taken back those whose order
    // the backup holds in `processing` (the signer answers a repeated
    // request with the certificate it signed); the others are listed.
    assert!(
        !audit_only.is_empty() && audit_only.is_subset(&after),
        "{run}"
    );
    assert_eq!(gap["database_only"], serde_json::json!([]), "{run}");

    // Taking them over from the audit log closes the gap.
    let chain = ca.ca_cert().as_os_str().to_owned();
    let run = reconcile(&ca, &["--import".as_ref(), "--chain".as_ref(), &chain]);
    run.assert_success();
    let imported: serde_json::Value = serde_json::from_str(&run.stdout).expect("--json output");
    eprintln!(
        "[e2e] restore drill: reconcile listed {} in the audit log only, --import took {} over",
        audit_only.len(),
        imported["imported"].as_array().map_or(0, Vec::len)
    );
    reconcile(&ca, &[]).assert_success();
}
