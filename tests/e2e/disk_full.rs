//! A full disk under the CA's state directory (a small tmpfs; root only):
//! requests that must write get `serverInternal` problem documents, the
//! database stays consistent, nothing is half-recorded, and once space is
//! freed the CA issues again and `akamu-cli audit reconcile` agrees.

use std::ffi::OsStr;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use instant_acme::{Identifier, NewOrder, OrderStatus};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::issuance::start_ca;
use crate::support::client::{
    acme_account, answer_http01, csr, download, issue_http01, new_order, problem_type, wait_ready,
};
use crate::support::dns::DnsServer;
use crate::support::http01::Http01Server;
use crate::support::operator::{Run, akamu_cli};
use crate::support::pids::proc_stat;
use crate::support::procs::{Ca, CaOptions};

/// Size of the tmpfs holding the state directory.
const TMPFS_SIZE: &str = "32m";

/// A tmpfs mounted at a path; unmounted on drop, lazily: a process still
/// holding a file there cannot stop it. Declared after the [`Ca`] whose
/// state it holds, it is dropped first, and the CA's own clean-up then
/// removes the directory underneath.
///
struct Tmpfs {
    path: PathBuf,
}

impl Tmpfs {
    fn mount(path: &Path, size: &str) -> Tmpfs {
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o"])
            .arg(format!("size={size},mode=0700"))
            .arg("tmpfs")
            .arg(path)
            .status()
            .expect("run mount");
        assert!(status.success(), "mount tmpfs on {}", path.display());
        Tmpfs {
            path: path.to_owned(),
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
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

/// Copies the regular files and directories of `from` into `to`.
fn copy_tree(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).expect("list state dir") {
        let entry = entry.expect("entry");
        let kind = entry.file_type().expect("file type");
        let target = to.join(entry.file_name());
        if kind.is_dir() {
            std::fs::create_dir(&target).expect("mkdir");
            let mode = entry.metadata().expect("stat").permissions();
            std::fs::set_permissions(&target, mode).expect("chmod");
            copy_tree(&entry.path(), &target);
        } else if kind.is_file() {
            std::fs::copy(entry.path(), &target).expect("copy state file");
        }
    }
}

/// Fills the file system holding `path` to the last byte; returns the
/// filler's size.
fn fill(path: &Path) -> u64 {
    let mut file = std::fs::File::create(path).expect("create filler");
    let mut written = 0u64;
    for chunk in [1 << 20, 4096, 1] {
        let block = vec![0xa5u8; chunk];
        loop {
            match file.write(&block) {
                Ok(0) => break,
                Ok(n) => written += n as u64,
                Err(e) if e.kind() == std::io::ErrorKind::StorageFull => break,
                Err(e) => panic!("filling {}: {e}", path.display()),
            }
        }
    }
    let _ = file.sync_all();
    written
}

/// `akamu-cli --json` with `args`.
fn cli(args: &[&OsStr]) -> Run {
    let mut all: Vec<&OsStr> = vec!["--json".as_ref()];
    all.extend_from_slice(args);
    akamu_cli(&all, &[])
}

/// Issue 12: a full disk gives clients `serverInternal`, never a corrupted
/// database or a half-recorded certificate, and the CA recovers once space
/// is freed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_gives_server_internal_and_the_ca_recovers_once_space_is_freed() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!(
            "[e2e] SKIPPED a_full_disk_gives_server_internal_and_the_ca_recovers_once_space_is_freed: \
             mounting a tmpfs needs root"
        );
        return;
    }
    let dns = DnsServer::start().await;
    let mut ca = start_ca(&dns).await;

    // Move the state directory onto a small tmpfs: stop the CA, mount the
    // tmpfs over the directory, copy the files back, start again.
    let frontend = ca.ready().frontend_pid;
    let children = [ca.ready().signer_pid, ca.ready().validator_pid];
    kill(Pid::from_raw(frontend), Signal::SIGTERM).expect("SIGTERM the frontend");
    wait_exited(frontend, Duration::from_secs(30)).await;
    for pid in children {
        wait_exited(pid, Duration::from_secs(30)).await;
    }
    let state = ca.state_dir().to_owned();
    let saved = state.with_extension("on-disk");
    std::fs::rename(&state, &saved).expect("move the state dir aside");
    std::fs::create_dir(&state).expect("mount point");
    let _tmpfs = Tmpfs::mount(&state, TMPFS_SIZE);
    copy_tree(&saved, &state);
    ca.restart_after_crash(Vec::new(), Duration::from_secs(30))
        .await;

    let http = Http01Server::start(ca.http_validation_port()).await;
    let account = acme_account(&ca).await;
    let names = ["full.disk.akamu.test"];
    let mut order = new_order(&account, &names).await;
    answer_http01(&mut order, &http).await;
    wait_ready(&mut order).await;

    let filler = state.join("filler");
    let filled = fill(&filler);
    eprintln!("[e2e] filled the state tmpfs with {filled} bytes");

    // Finalize must write (ready → processing): SQLITE_FULL, serverInternal,
    // and the order stays ready.
    let (csr_der, _key) = csr(&names);
    let refused = order.finalize_csr(&csr_der).await;
    let err = refused.expect_err("finalize on a full disk");
    assert_eq!(problem_type(&err), "serverInternal", "{err:?}");
    if let instant_acme::Error::Api(p) = &err {
        assert_eq!(p.status, Some(500), "{p:?}");
    }
    // So must a new order.
    let refused = account
        .new_order(&NewOrder::new(&[Identifier::Dns(
            "other.disk.akamu.test".into(),
        )]))
        .await;
    let Err(err) = refused else {
        panic!("new-order succeeded on a full disk");
    };
    assert_eq!(problem_type(&err), "serverInternal", "{err:?}");
    // Reads still work: the order is still ready, nothing was half-written.
    let state_now = order.refresh().await.expect("fetch the order").status;
    assert_eq!(state_now, OrderStatus::Ready);

    // Free the space: the same order finalizes and its certificate is
    // served.
    std::fs::remove_file(&filler).expect("free the space");
    order
        .finalize_csr(&csr_der)
        .await
        .expect("finalize once space is free");
    let chain = download(&mut order).await;
    assert!(chain.contains("BEGIN CERTIFICATE"));

    // The database is consistent, and the audit log and the database agree.
    cli(&[
        "admin".as_ref(),
        "check".as_ref(),
        "--config".as_ref(),
        ca.config_path().as_os_str(),
    ])
    .assert_success();
    let audit_log = state.join("audit.log");
    cli(&[
        "audit".as_ref(),
        "reconcile".as_ref(),
        "--audit-log".as_ref(),
        audit_log.as_os_str(),
        "--config".as_ref(),
        ca.config_path().as_os_str(),
    ])
    .assert_success();
}

/// Issue 12: the signer fails closed when its audit log cannot be
/// appended to: no certificate leaves it unlogged, the order waits in
/// `processing`, the log stays whole (a cut-short append is undone), and
/// once space is freed the same order is issued by the same signer and the
/// audit log and the database agree.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_under_the_audit_log_makes_the_signer_refuse_to_sign() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!(
            "[e2e] SKIPPED a_full_disk_under_the_audit_log_makes_the_signer_refuse_to_sign: \
             mounting a tmpfs needs root"
        );
        return;
    }
    let audit_dir = tempfile::tempdir().expect("tempdir");
    let _tmpfs = Tmpfs::mount(audit_dir.path(), "4m");
    let audit_log = audit_dir.path().join("audit.log");
    let dns = DnsServer::start().await;
    let ca = Ca::start_async(CaOptions {
        dns_resolver_addr: Some(dns.addr()),
        extra_toml: format!("[signer.audit]\npath = \"{}\"\n", audit_log.display()),
        ..CaOptions::default()
    })
    .await;
    let http = Http01Server::start(ca.http_validation_port()).await;
    let account = acme_account(&ca).await;
    // tmpfs allocates whole pages: an append that fits in the slack of the
    // log's last page still succeeds on a full disk. Issue until the next
    // record (about 1.3 KB) cannot fit.
    let mut n = 0;
    while 4096 - std::fs::metadata(&audit_log).expect("stat").len() % 4096 >= 1600 {
        let name = format!("before{n}.disk.akamu.test");
        issue_http01(&account, &http, &[name.as_str()]).await;
        n += 1;
    }
    let names = ["audit.disk.akamu.test"];
    let mut order = new_order(&account, &names).await;
    answer_http01(&mut order, &http).await;
    wait_ready(&mut order).await;
    let issued_before = acme_frontend::admin::database_serials(
        &acme_frontend::store::Location::Sqlite(ca.db_path()),
    )
    .expect("serials");

    let filler = audit_dir.path().join("filler");
    fill(&filler);
    let (csr_der, _key) = csr(&names);
    order
        .finalize_csr(&csr_der)
        .await
        .expect("finalize is accepted; issuance waits");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let state = order.refresh().await.expect("fetch the order");
    assert_eq!(state.status, OrderStatus::Processing, "{state:?}");
    assert_eq!(state.certificate, None);
    assert_eq!(
        acme_frontend::admin::database_serials(&acme_frontend::store::Location::Sqlite(
            ca.db_path()
        ))
        .expect("serials"),
        issued_before,
        "no certificate without its audit record"
    );
    let verify = |what: &str| {
        let run = cli(&["audit".as_ref(), "verify".as_ref(), audit_log.as_os_str()]);
        eprintln!("[e2e] audit verify {what}: {run}");
        run
    };
    // The signer cut its failed append back: the log is whole on the full
    // disk, and nothing but space is needed to go on.
    verify("on the full disk").assert_success();

    // Recovery: free space. The frontend's sweep retries the order and the
    // same signer, never restarted, signs and logs it.
    let signer = ca.signer_pid().expect("the signer runs");
    std::fs::remove_file(&filler).expect("free the space");
    let chain = download(&mut order).await;
    assert!(chain.contains("BEGIN CERTIFICATE"));
    assert_eq!(ca.signer_pid(), Some(signer), "no restart was needed");
    cli(&[
        "audit".as_ref(),
        "reconcile".as_ref(),
        "--audit-log".as_ref(),
        audit_log.as_os_str(),
        "--config".as_ref(),
        ca.config_path().as_os_str(),
    ])
    .assert_success();
}
