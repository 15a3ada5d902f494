//! Multi-perspective validation (BR §3.2.2.9) with real processes: five
//! remote perspectives, each its own `validator-worker` process with its
//! own socket, RIR label and statement key, and the CA's primary validator
//! fanning out to them; the signer trusts the perspectives' keys and checks
//! the quorum itself. The applicant answers http-01 from a real HTTP
//! server on loopback.
//!
//! * All five corroborate: a certificate that verifies against the root.
//! * One down: still issued (four of five); two down: refused, and the
//!   problem names both.
//! * A perspective that hangs is cancelled once four have corroborated;
//!   the order does not wait for its timeout.
//! * Every finalize re-checks CAA (`caa_recheck_hours = 0`), through the
//!   perspectives too.
//! * A lying perspective (a fake speaking the RPC, signing "valid" with
//!   its own trusted key whatever it is asked) is outvoted.
//! * Over TCP with mutual TLS (`tcp:127.0.0.1:port`): five perspectives
//!   issue, one down still issues; a perspective that does not list the
//!   primary's client name refuses it (and logs why), and one whose
//!   certificate has the wrong name or comes from another CA does not
//!   corroborate: the problem names each.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::json;
use shared_proto::statement::{
    CaaCheck, Perspective as Who, SignedStatement, Statement, StatementKey,
};
use shared_proto::validator::{
    ValidateRequest, ValidationProblem, ValidationRecord, ValidatorInfo, ValidatorMetrics,
    ValidatorRpc,
};
use tarpc::context;
use tarpc::server::{BaseChannel, Channel};

use crate::support::acme::{Session, challenge, identifier};
use crate::support::certs::{dns_sans, verify_chain};
use crate::support::client::{RawClient, acme_account, issue_http01};
use crate::support::dns::DnsServer;
use crate::support::http01::Http01Server;
use crate::support::link_pki::{LinkCa, write_file};
use crate::support::procs::{Ca, CaOptions, binary_path};

/// The five perspectives: name and RIR label.
const FIVE: [(&str, &str); 5] = [
    ("p1", "ARIN"),
    ("p2", "RIPE"),
    ("p3", "APNIC"),
    ("p4", "LACNIC"),
    ("p5", "AFRINIC"),
];

/// A remote perspective: a `validator-worker` process with a
/// `[remote_perspective]`, stopped on drop.
struct Perspective {
    name: &'static str,
    rir: &'static str,
    socket: PathBuf,
    key: PathBuf,
    config: PathBuf,
    /// Its `[tcp]` listener, when reached over TCP with mutual TLS.
    tcp: Option<TcpSide>,
    /// Its stderr.
    log: PathBuf,
    child: Option<Child>,
}

/// A perspective's mutual-TLS listener.
#[derive(Clone)]
struct TcpSide {
    port: u16,
    /// The name the primary expects (`server_name`).
    server_name: String,
    cert: PathBuf,
    key: PathBuf,
    client_ca: PathBuf,
    client_names: Vec<String>,
}

impl Perspective {
    /// Writes its config under `dir` and starts it.
    fn start(
        dir: &Path,
        who: (&'static str, &'static str),
        http_port: u16,
        dns: &DnsServer,
    ) -> Self {
        Self::start_with(dir, who, http_port, dns, None)
    }

    /// Writes its config under `dir` (with `[tcp]` when given) and starts
    /// it.
    fn start_with(
        dir: &Path,
        (name, rir): (&'static str, &'static str),
        http_port: u16,
        dns: &DnsServer,
        tcp: Option<TcpSide>,
    ) -> Self {
        let uid = nix::unistd::geteuid().as_raw();
        let mut p = Self {
            name,
            rir,
            socket: dir.join(format!("{name}.sock")),
            key: dir.join(format!("{name}.key")),
            config: dir.join(format!("{name}.toml")),
            tcp,
            log: dir.join(format!("{name}.log")),
            child: None,
        };
        // p1 over TCP listens on TCP only (no socket, no uid allow-list).
        let unix = if p.tcp.is_some() && name == "p1" {
            String::new()
        } else {
            format!("socket_path = {:?}\nallowed_uids = [{uid}]\n", p.socket)
        };
        let mut text = format!(
            "{unix}statement_key_file = {:?}\n\
             http_validation_port = {http_port}\nallow_private_targets = true\n\
             dns_resolver_addr = \"{}\"\ncaa_identities = [\"akamu.test\"]\n\
             [remote_perspective]\nname = {name:?}\nrir = {rir:?}\n",
            p.key,
            dns.addr()
        );
        if let Some(t) = &p.tcp {
            text.push_str(&format!(
                "[tcp]\nlisten_addr = \"127.0.0.1:{}\"\ncert_file = {:?}\nkey_file = {:?}\n\
                 client_ca_file = {:?}\nclient_names = {:?}\n",
                t.port, t.cert, t.key, t.client_ca, t.client_names
            ));
        }
        std::fs::write(&p.config, text).expect("write perspective config");
        p.spawn();
        p
    }

    fn spawn(&mut self) {
        let mut child = Command::new(binary_path("validator-worker"))
            .arg("--config")
            .arg(&self.config)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&self.log).expect("log file"))
            .spawn()
            .expect("spawn validator-worker");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.starts_with("READY") {
                    let _ = tx.send(());
                }
            }
        });
        rx.recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("perspective {} never said READY", self.name));
        self.child = Some(child);
    }

    /// SIGTERM, then wait: the perspective is down, its socket gone.
    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let pid = Pid::from_raw(i32::try_from(child.id()).expect("pid"));
            let _ = kill(pid, Signal::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if matches!(child.try_wait(), Ok(Some(_))) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Its `[[validator.perspectives]]` entry for the launcher.
    fn entry(&self) -> String {
        match &self.tcp {
            None => entry(self.name, self.rir, &self.socket, &self.key),
            Some(t) => format!(
                "[[validator.perspectives]]\nname = {:?}\nrir = {:?}\n\
                 address = \"tcp:127.0.0.1:{}\"\nserver_name = {:?}\npublic_key_file = {:?}\n",
                self.name,
                self.rir,
                t.port,
                t.server_name,
                shared_proto::statement::public_path(&self.key)
            ),
        }
    }

    /// Waits up to 10 s for a line of its log holding every one of
    /// `needles`.
    async fn wait_for_line(&self, needles: &[&str]) -> String {
        for _ in 0..100 {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            if let Some(line) = log.lines().find(|l| needles.iter().all(|n| l.contains(n))) {
                return line.to_owned();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "{} logged no line with {needles:?}:\n{}",
            self.name,
            std::fs::read_to_string(&self.log).unwrap_or_default()
        );
    }
}

impl Drop for Perspective {
    fn drop(&mut self) {
        self.stop();
    }
}

fn entry(name: &str, rir: &str, socket: &Path, key: &Path) -> String {
    format!(
        "[[validator.perspectives]]\nname = {name:?}\nrir = {rir:?}\naddress = \"unix:{}\"\n\
         public_key_file = {:?}\n",
        socket.display(),
        shared_proto::statement::public_path(key)
    )
}

/// The CA, its primary validator asking the perspectives `entries`.
/// `caa_recheck_hours = 0`: every finalize has the primary, and through
/// it the perspectives, look CAA up again (`recheck_caa`), and the signer
/// takes only the re-checked statements.
async fn start_ca(dns: &DnsServer, http_port: u16, entries: &str, timeout_ms: u64) -> Ca {
    Ca::start_async(CaOptions {
        dns_resolver_addr: Some(dns.addr()),
        http_validation_port: Some(http_port),
        server_toml: "caa_identities = [\"akamu.test\"]\ncaa_recheck_hours = 0\n".into(),
        extra_toml: format!("[validator]\nperspective_timeout_ms = {timeout_ms}\n{entries}"),
        ..CaOptions::default()
    })
    .await
}

/// Five perspectives up → issued; one down → issued; two down → the
/// challenge fails with a problem naming the two.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_perspectives_then_one_then_two_down() {
    let dns = DnsServer::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let http_port = test_kit::ports::free_port();
    let mut perspectives: Vec<Perspective> = FIVE
        .iter()
        .map(|&p| Perspective::start(dir.path(), p, http_port, &dns))
        .collect();
    let entries: String = perspectives.iter().map(Perspective::entry).collect();
    let ca = start_ca(&dns, http_port, &entries, 20_000).await;
    let http = Http01Server::start(http_port).await;
    let account = acme_account(&ca).await;

    let issued = issue_http01(&account, &http, &["all.example.org"]).await;
    let certs = tempfile::tempdir().expect("tempdir");
    let leaf = verify_chain(certs.path(), ca.ca_cert(), &issued.chain_pem);
    assert_eq!(dns_sans(&leaf), vec!["all.example.org"]);
    // The primary and at least four perspectives fetched the token.
    assert!(http.hits() >= 5, "hits: {}", http.hits());

    perspectives[4].stop();
    let issued = issue_http01(&account, &http, &["four.example.org"]).await;
    let leaf = verify_chain(certs.path(), ca.ca_cert(), &issued.chain_pem);
    assert_eq!(dns_sans(&leaf), vec!["four.example.org"]);

    perspectives[3].stop();
    let raw = RawClient::new(&ca).await;
    let s = Session::new(&raw).await;
    let problem = &s.failed_http01(&http, "three.example.org").await;
    let detail = problem["detail"].as_str().unwrap_or_default();
    for needle in [
        "multi-perspective validation failed",
        "2 of 5 remote perspectives did not corroborate",
        "p4 (LACNIC)",
        "p5 (AFRINIC)",
    ] {
        assert!(detail.contains(needle), "{needle:?} in {problem}");
    }
    assert!(
        !detail.contains("p1 (ARIN)"),
        "only the failed ones: {problem}"
    );
    // Both unreachable: the CA's own fault, not the applicant's.
    assert_eq!(
        problem["type"], "urn:ietf:params:acme:error:serverInternal",
        "{problem}"
    );
    drop(perspectives);
}

/// How a fake perspective answers.
#[derive(Clone, Copy)]
enum Fake {
    /// Signs a successful validation of whatever it is asked.
    Lie,
    /// Never answers.
    Hang,
}

/// A test-only perspective speaking the validator RPC on a Unix socket.
#[derive(Clone)]
struct FakePerspective {
    how: Fake,
    who: Who,
    key: Arc<StatementKey>,
    /// Requests received.
    asked: Arc<AtomicUsize>,
    /// Requests whose handler was dropped before it finished (cancelled).
    cancelled: Arc<AtomicUsize>,
}

/// Counts a handler dropped before it finished.
struct CancelGuard(Arc<AtomicUsize>, bool);

impl Drop for CancelGuard {
    fn drop(&mut self) {
        if !self.1 {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
}

impl ValidatorRpc for FakePerspective {
    async fn validate_challenge(
        self,
        _: context::Context,
        request: ValidateRequest,
    ) -> Result<ValidationRecord, ValidationProblem> {
        self.asked.fetch_add(1, Ordering::SeqCst);
        let mut guard = CancelGuard(self.cancelled.clone(), false);
        if let Fake::Hang = self.how {
            std::future::pending::<()>().await;
        }
        guard.1 = true;
        let now = daemon_now();
        let signed = self
            .key
            .sign(Statement {
                id: "lie".into(),
                account_uri: request.account_uri.clone(),
                identifier: request.identifier.clone(),
                challenge_type: request.challenge_type,
                validated_at: now,
                expires: request.authz_expires,
                covers_subdomains: request.covers_subdomains,
                caa: Some(CaaCheck::Checked { at: now }),
                perspective: Some(self.who.clone()),
            })
            .expect("sign");
        let mut record = ValidationRecord::name_only(request.identifier.value.clone(), now);
        record.statement = Some(signed);
        Ok(record)
    }

    async fn metrics(self, _: context::Context) -> ValidatorMetrics {
        ValidatorMetrics::default()
    }

    async fn validator_info(self, _: context::Context) -> ValidatorInfo {
        ValidatorInfo::default()
    }

    async fn recheck_caa(
        self,
        _: context::Context,
        statement: SignedStatement,
    ) -> Result<SignedStatement, ValidationProblem> {
        Ok(statement)
    }

    async fn caa_for_subdomain(
        self,
        _: context::Context,
        statement: SignedStatement,
        _: shared_proto::Identifier,
    ) -> Result<SignedStatement, ValidationProblem> {
        Ok(statement)
    }
}

fn daemon_now() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_secs(),
    )
    .expect("time")
}

impl FakePerspective {
    /// Serves on `socket` (the real transport: preamble, frames) until the
    /// test ends; the key is created at `key` (public half beside it).
    fn start(how: Fake, (name, rir): (&str, &str), socket: &Path, key: &Path) -> Self {
        let fake = Self {
            how,
            who: Who {
                name: name.into(),
                rir: rir.into(),
            },
            key: Arc::new(StatementKey::load_or_create(key).expect("key")),
            asked: Arc::default(),
            cancelled: Arc::default(),
        };
        let listener = shared_proto::transport::bind(socket, 0o600).expect("bind");
        let allow = shared_proto::peer::AllowList::new([nix::unistd::geteuid().as_raw()]);
        let serving = fake.clone();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                if shared_proto::transport::accept_handshake(&mut stream, &allow)
                    .await
                    .is_err()
                {
                    continue;
                }
                let channel = BaseChannel::with_defaults(shared_proto::transport::framed(stream));
                tokio::spawn(
                    channel
                        .execute(serving.clone().serve())
                        .for_each(|f| async move {
                            tokio::spawn(f);
                        }),
                );
            }
        });
        fake
    }
}

/// A perspective that never answers is cancelled once the other four have
/// corroborated: the order is valid long before the perspective timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_perspective_is_cancelled_once_the_quorum_is_met() {
    let dns = DnsServer::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let http_port = test_kit::ports::free_port();
    let (hang_socket, hang_key) = (dir.path().join("p1.sock"), dir.path().join("p1.key"));
    let hanging = FakePerspective::start(Fake::Hang, FIVE[0], &hang_socket, &hang_key);
    let real: Vec<Perspective> = FIVE[1..]
        .iter()
        .map(|&p| Perspective::start(dir.path(), p, http_port, &dns))
        .collect();
    let entries = entry(FIVE[0].0, FIVE[0].1, &hang_socket, &hang_key)
        + &real.iter().map(Perspective::entry).collect::<String>();
    let timeout_ms = 30_000;
    let ca = start_ca(&dns, http_port, &entries, timeout_ms).await;
    let http = Http01Server::start(http_port).await;
    let account = acme_account(&ca).await;

    let started = Instant::now();
    let issued = issue_http01(&account, &http, &["quick.example.org"]).await;
    let took = started.elapsed();
    let certs = tempfile::tempdir().expect("tempdir");
    verify_chain(certs.path(), ca.ca_cert(), &issued.chain_pem);
    assert!(
        took < Duration::from_millis(timeout_ms / 2),
        "issued in {took:?}, not after the hanging perspective's timeout"
    );
    assert_eq!(hanging.asked.load(Ordering::SeqCst), 1);
    // tarpc carried the cancellation to the perspective, which dropped the
    // request's handler.
    let deadline = Instant::now() + Duration::from_secs(5);
    while hanging.cancelled.load(Ordering::SeqCst) == 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(hanging.cancelled.load(Ordering::SeqCst), 1, "cancelled");
    drop(real);
}

/// A lying perspective, signing "valid" with its own trusted key for a
/// challenge the applicant answered wrongly, is outvoted: the other four
/// and the primary fail, the order is invalid, no certificate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lying_perspective_is_outvoted() {
    let dns = DnsServer::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let http_port = test_kit::ports::free_port();
    let (liar_socket, liar_key) = (dir.path().join("p1.sock"), dir.path().join("p1.key"));
    let liar = FakePerspective::start(Fake::Lie, FIVE[0], &liar_socket, &liar_key);
    let real: Vec<Perspective> = FIVE[1..]
        .iter()
        .map(|&p| Perspective::start(dir.path(), p, http_port, &dns))
        .collect();
    let entries = entry(FIVE[0].0, FIVE[0].1, &liar_socket, &liar_key)
        + &real.iter().map(Perspective::entry).collect::<String>();
    let ca = start_ca(&dns, http_port, &entries, 20_000).await;
    let http = Http01Server::start(http_port).await;
    let raw = RawClient::new(&ca).await;
    let s = Session::new(&raw).await;

    let (order_url, order) = s.new_order(&[identifier("liar.example.org")]).await;
    let authz_url = Session::authz_urls(&order)[0].clone();
    let authz = s.authz(&authz_url).await;
    let ch = challenge(&authz, "http-01");
    let token = ch["token"].as_str().expect("token");
    // The wrong key authorization: only the liar says it matched.
    http.set(token, &format!("{token}.not-the-account-thumbprint"));
    s.post_ok(ch["url"].as_str().expect("url"), Some(&json!({})))
        .await;
    let authz = s.settle(&authz_url).await;
    assert_eq!(authz["status"], "invalid", "{authz}");
    let problem = &challenge(&authz, "http-01")["error"];
    assert_eq!(
        problem["type"], "urn:ietf:params:acme:error:incorrectResponse",
        "{problem}"
    );
    let order = s.settle(&order_url).await;
    assert_eq!(order["status"], "invalid", "{order}");
    assert!(order.get("certificate").is_none(), "{order}");
    drop((liar, real));
}

/// The primary's client name on the links.
const PRIMARY_NAME: &str = "primary.ca.internal";

/// Five perspectives as `validator-worker` processes on
/// `tcp:127.0.0.1:<port>` with mutual TLS (an rcgen links CA, one server
/// certificate per perspective, the primary's client certificate; p1 on
/// TCP only, without a Unix socket): issued
/// and verified; one down, issued. Then p4's certificate carries the wrong
/// name and p5 comes back with a `client_names` that lacks the primary: it
/// refuses the primary and logs why; neither corroborates, the order fails
/// and the problem names both. Then p5's certificate comes from another
/// CA: the same, named.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_perspectives_over_mutual_tls() {
    let dns = DnsServer::start().await;
    let top = tempfile::tempdir().expect("tempdir");
    let dir = top.path();
    let http_port = test_kit::ports::free_port();

    let links = LinkCa::new("Akāmu links CA (test)");
    let links_ca = write_file(dir, "links-ca.pem", &links.cert_pem, 0o644);
    let other = LinkCa::new("Another CA");
    let primary = links.leaf(&[PRIMARY_NAME], true);
    let primary_cert = write_file(dir, "primary.crt", &primary.0, 0o644);
    let primary_key = write_file(dir, "primary.key", &primary.1, 0o600);
    // `names` on the certificate, signed by `ca`, allowing `clients`.
    let side = |name: &str, ca: &LinkCa, names: &[&str], clients: &[&str], tag: &str| {
        let (chain, key) = ca.leaf(names, false);
        TcpSide {
            port: test_kit::ports::free_port(),
            server_name: format!("{name}.ca.internal"),
            cert: write_file(dir, &format!("{name}-{tag}.crt"), &chain, 0o644),
            key: write_file(dir, &format!("{name}-{tag}.key"), &key, 0o600),
            client_ca: links_ca.clone(),
            client_names: clients.iter().map(|c| (*c).to_owned()).collect(),
        }
    };
    let good = |name: &str| {
        side(
            name,
            &links,
            &[&format!("{name}.ca.internal")],
            &[PRIMARY_NAME],
            "good",
        )
    };
    let mut perspectives: Vec<Perspective> = FIVE
        .iter()
        .map(|&p| Perspective::start_with(dir, p, http_port, &dns, Some(good(p.0))))
        .collect();
    let entries: String = perspectives.iter().map(Perspective::entry).collect();
    let client = format!(
        "[validator.perspective_client]\nca_file = {links_ca:?}\ncert_file = {primary_cert:?}\n\
         key_file = {primary_key:?}\n"
    );
    let ca = start_ca(&dns, http_port, &format!("{entries}{client}"), 20_000).await;
    let http = Http01Server::start(http_port).await;
    let account = acme_account(&ca).await;
    let certs = tempfile::tempdir().expect("tempdir");
    assert!(!perspectives[0].socket.exists(), "p1 listens on TCP only");

    let issued = issue_http01(&account, &http, &["tls.example.org"]).await;
    let leaf = verify_chain(certs.path(), ca.ca_cert(), &issued.chain_pem);
    assert_eq!(dns_sans(&leaf), vec!["tls.example.org"]);
    assert!(http.hits() >= 5, "hits: {}", http.hits());
    // At least the four the quorum needed admitted the primary by its
    // certificate name (the fifth may have been cancelled mid-handshake).
    let admitted = |p: &Perspective| {
        std::fs::read_to_string(&p.log)
            .unwrap_or_default()
            .lines()
            .any(|l| l.contains("TLS connection accepted") && l.contains(PRIMARY_NAME))
    };
    assert!(
        perspectives.iter().filter(|p| admitted(p)).count() >= 4,
        "the perspectives admitted the primary over TLS"
    );

    // One down: four of five.
    perspectives[4].stop();
    let issued = issue_http01(&account, &http, &["tls-four.example.org"]).await;
    verify_chain(certs.path(), ca.ca_cert(), &issued.chain_pem);

    // p4 with a certificate for another name, and p5 back (at their old
    // ports, where the primary's entries point) serving another primary
    // only: neither corroborates, which five cannot afford. The primary
    // waits for both answers, so p5's refusal is certain to be logged.
    let p4 = perspectives[3].tcp.clone().expect("tcp");
    perspectives[3].stop();
    perspectives[3] = Perspective::start_with(
        dir,
        FIVE[3],
        http_port,
        &dns,
        Some(TcpSide {
            port: p4.port,
            ..side(
                "p4",
                &links,
                &["not-p4.ca.internal"],
                &[PRIMARY_NAME],
                "wrong-name",
            )
        }),
    );
    let p5 = perspectives[4].tcp.clone().expect("tcp");
    perspectives[4] = Perspective::start_with(
        dir,
        FIVE[4],
        http_port,
        &dns,
        Some(TcpSide {
            client_names: vec!["another-primary.ca.internal".into()],
            ..p5.clone()
        }),
    );
    let p4_fails = format!(
        "p4 (LACNIC): cannot connect to tcp:127.0.0.1:{}: TLS: invalid peer certificate: \
         certificate not valid for name \"p4.ca.internal\"",
        p4.port
    );
    let detail = failed_validation(&ca, &http, "tls-refused.example.org").await;
    for needle in [
        "2 of 5 remote perspectives did not corroborate",
        &p4_fails,
        &format!(
            "p5 (AFRINIC): cannot connect to tcp:127.0.0.1:{}: the server refused this process",
            p5.port
        ),
    ] {
        assert!(detail.contains(needle), "{needle:?} in {detail}");
    }
    assert!(!detail.contains("p1 (ARIN)"), "{detail}");
    let line = perspectives[4]
        .wait_for_line(&["refused TLS connection", "client name not allowed"])
        .await;
    assert!(line.contains(PRIMARY_NAME), "{line}");

    // p5 with a certificate from another CA, serving our primary.
    perspectives[4].stop();
    perspectives[4] = Perspective::start_with(
        dir,
        FIVE[4],
        http_port,
        &dns,
        Some(TcpSide {
            port: p5.port,
            ..side(
                "p5",
                &other,
                &["p5.ca.internal"],
                &[PRIMARY_NAME],
                "other-ca",
            )
        }),
    );
    let detail = failed_validation(&ca, &http, "tls-bad.example.org").await;
    for needle in [
        "2 of 5 remote perspectives did not corroborate",
        &p4_fails,
        &format!(
            "p5 (AFRINIC): cannot connect to tcp:127.0.0.1:{}: TLS: invalid peer certificate: UnknownIssuer",
            p5.port
        ),
    ] {
        assert!(detail.contains(needle), "{needle:?} in {detail}");
    }
    assert!(!detail.contains("p1 (ARIN)"), "{detail}");
    drop(perspectives);
}

/// Orders `name`, answers http-01 correctly, and returns the detail of the
/// challenge's problem once the authorization and the order are invalid.
async fn failed_validation(ca: &Ca, http: &Http01Server, name: &str) -> String {
    let raw = RawClient::new(ca).await;
    let problem = Session::new(&raw).await.failed_http01(http, name).await;
    problem["detail"].as_str().unwrap_or_default().to_owned()
}
