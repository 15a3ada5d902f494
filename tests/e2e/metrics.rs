//! Metrics (issue 12) as an operator checks them: `[metrics] listen_addr`
//! starts a separate plain-HTTP listener whose `GET /metrics` passes
//! `promtool check metrics` (Debian's prometheus package) with no lint
//! warning, and whose figures follow what happened — a certificate issued
//! with instant-acme and revoked, a bad request's problem type, the
//! signer's and the validator's own figures over their RPC, the CRL's age.
//! A signer that does not answer leaves the scrape working with
//! `akamu_signer_up 0`. Off by default: the frontend then listens on its
//! ACME port alone, and the ACME listener never serves `/metrics`.

use std::collections::BTreeSet;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use instant_acme::{RevocationReason, RevocationRequest};
use rustls::pki_types::CertificateDer;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::client::{RawClient, acme_account, issue_http01};
use crate::support::dns::DnsServer;
use crate::support::http01::Http01Server;
use crate::support::procs::{Ca, CaOptions, free_port, which};

/// How long a figure that follows an event asynchronously (the CRL) may take.
const SETTLE: Duration = Duration::from_secs(20);

/// One plain-HTTP request to the metrics listener: status, content type,
/// body.
async fn http(method: Method, url: &str) -> (StatusCode, String, String) {
    let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let req = Request::builder()
        .method(method)
        .uri(url)
        .body(Empty::new())
        .expect("request");
    let rsp = tokio::time::timeout(Duration::from_secs(10), client.request(req))
        .await
        .unwrap_or_else(|_| panic!("{url}: no answer within 10 s"))
        .unwrap_or_else(|e| panic!("{url}: {e:?}"));
    let status = rsp.status();
    let content_type = rsp
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body = rsp.into_body().collect().await.expect("body").to_bytes();
    (
        status,
        content_type,
        String::from_utf8(body.to_vec()).expect("UTF-8"),
    )
}

/// A scrape that must succeed.
async fn scrape(url: &str) -> Scrape {
    let (status, content_type, text) = http(Method::GET, url).await;
    assert_eq!(status, StatusCode::OK, "GET {url}: {text}");
    assert_eq!(
        content_type, "text/plain; version=0.0.4; charset=utf-8",
        "GET {url}: the Prometheus text format's media type"
    );
    Scrape(text)
}

/// `promtool check metrics` on `text`: exit 0, nothing printed (no lint).
fn promtool_check(text: &str) {
    let promtool = which("promtool").unwrap_or_else(|| {
        panic!("promtool is not installed: `apt-get install prometheus` (CI installs it itself)")
    });
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run promtool");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("feed promtool");
    let out = child.wait_with_output().expect("promtool finishes");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && said.trim().is_empty(),
        "promtool check metrics: {}\n{said}\n--- scrape ---\n{text}",
        out.status
    );
}

/// CPU seconds (user + system) and resident bytes of `pid`, from
/// `/proc/<pid>/stat` and `/proc/<pid>/status`.
fn kernel_figures(pid: i32) -> (f64, f64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .expect("stat has a command")
        .1
        .split_whitespace()
        .collect();
    // utime and stime are fields 14 and 15; `fields` starts at field 3.
    let ticks: f64 =
        fields[11].parse::<f64>().expect("utime") + fields[12].parse::<f64>().expect("stime");
    let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .expect("CLK_TCK") as f64;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let rss_kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS");
    (ticks / hz, rss_kib * 1024.0)
}

/// A scrape's text, with look-ups of samples by name and labels.
struct Scrape(String);

impl Scrape {
    /// The samples named `name` whose labels include every `labels` pair.
    fn values(&self, name: &str, labels: &[(&str, &str)]) -> Vec<f64> {
        self.0
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| {
                let (series, value) = l.rsplit_once(' ')?;
                let (n, rest) = series.split_once('{').unwrap_or((series, ""));
                if n != name {
                    return None;
                }
                let rest = rest.trim_end_matches('}');
                let have: BTreeSet<(&str, &str)> = rest
                    .split(',')
                    .filter_map(|kv| kv.split_once('='))
                    .map(|(k, v)| (k, v.trim_matches('"')))
                    .collect();
                labels
                    .iter()
                    .all(|pair| have.contains(pair))
                    .then(|| value.parse().ok())?
            })
            .collect()
    }

    /// The one sample `name{labels}`; panics if absent.
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let v = self.values(name, labels);
        assert_eq!(
            v.len(),
            1,
            "one sample {name}{labels:?} expected in the scrape:\n{}",
            self.0
        );
        v[0]
    }

    /// `name{labels}`, or 0 when the series does not exist yet.
    fn value_or_zero(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.values(name, labels).into_iter().sum()
    }
}

/// The whole path an operator checks: issue and revoke with instant-acme,
/// a bad request, then one scrape that promtool accepts and that shows
/// each of them, the peers' figures and the CRL's age; a stopped signer
/// turns into `akamu_signer_up 0` without failing the scrape.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scrape_passes_promtool_and_shows_what_happened() {
    let dns = DnsServer::start().await;
    let port = free_port();
    let metrics_port = free_port();
    let ca = Ca::start_async(CaOptions {
        dns_resolver_addr: Some(dns.addr()),
        listen_port: Some(port),
        ca_toml: format!("crl_url = \"https://localhost:{port}/crl/ca.crl\""),
        extra_toml: format!("[metrics]\nlisten_addr = \"127.0.0.1:{metrics_port}\"\n"),
        ..CaOptions::default()
    })
    .await;
    let url = format!("http://127.0.0.1:{metrics_port}/metrics");
    let http01 = Http01Server::start(ca.http_validation_port()).await;
    let raw = RawClient::new(&ca).await;

    let account = acme_account(&ca).await;
    let issued = issue_http01(&account, &http01, &["metrics.example.org"]).await;
    let leaf = crate::support::certs::split_chain(&issued.chain_pem)[0]
        .to_der()
        .expect("DER");
    account
        .revoke(&RevocationRequest {
            certificate: &CertificateDer::from(leaf),
            reason: Some(RevocationReason::KeyCompromise),
        })
        .await
        .expect("the owner revokes its certificate");

    let before = scrape(&url).await;
    let malformed = |s: &Scrape| s.value_or_zero("akamu_problems_total", &[("type", "malformed")]);
    // A JWS that is no JWS: a malformed problem document.
    let rsp = raw
        .post_jose(&raw.url("newOrder"), &json!({"protected": "x"}))
        .await;
    rsp.assert_problem("a body that is no JWS", &["malformed"]);

    // The CRL follows the revocation asynchronously: wait for its age.
    let deadline = Instant::now() + SETTLE;
    let text = loop {
        let s = scrape(&url).await;
        if !s.values("akamu_crl_age_seconds", &[]).is_empty() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "no akamu_crl_age_seconds within {SETTLE:?}:\n{}",
            s.0
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    promtool_check(&text.0);
    // Shown with --nocapture (the sample in docs/src/operations.md).
    println!("--- scrape ---\n{}--- end of scrape ---", text.0);

    assert!(text.value("akamu_certificates_issued_total", &[]) >= 1.0);
    assert_eq!(text.value("akamu_certificates_revoked_total", &[]), 1.0);
    assert!(
        text.value(
            "akamu_http_requests_total",
            &[("endpoint", "new-order"), ("status", "201")]
        ) >= 1.0
    );
    assert!(
        text.value(
            "akamu_http_requests_total",
            &[("endpoint", "revoke-cert"), ("status", "200")]
        ) >= 1.0
    );
    assert_eq!(
        malformed(&text),
        malformed(&before) + 1.0,
        "the bad request's problem type was counted once"
    );
    assert!(text.value("akamu_issuance_duration_seconds_count", &[]) >= 1.0);
    assert!(
        text.value(
            "akamu_validations_total",
            &[("challenge", "http-01"), ("result", "valid")]
        ) >= 1.0
    );
    assert!(
        text.value(
            "akamu_rpc_duration_seconds_count",
            &[("peer", "signer"), ("method", "issue_certificate")]
        ) >= 1.0
    );
    assert!(text.value("akamu_db_batch_jobs_count", &[]) >= 1.0);
    assert!(
        text.value(
            "akamu_db_commit_duration_seconds_count",
            &[("sync", "full")]
        ) >= 1.0,
        "certificate and revocation commits are durable"
    );

    // The signer's and the validator's own figures, through their RPCs.
    assert_eq!(text.value("akamu_signer_up", &[]), 1.0);
    assert_eq!(text.value("akamu_validator_up", &[]), 1.0);
    assert!(text.value("akamu_signer_signatures_total", &[("kind", "certificate")]) >= 1.0);
    assert!(text.value("akamu_signer_signatures_total", &[("kind", "crl")]) >= 1.0);
    assert!(text.value("akamu_signer_sign_duration_seconds_count", &[]) >= 2.0);
    assert!(text.value("akamu_signer_audit_append_duration_seconds_count", &[]) >= 2.0);
    assert_eq!(text.value("akamu_signer_key_errors_total", &[]), 0.0);
    assert!(
        text.value(
            "akamu_validator_probes_total",
            &[("challenge", "http-01"), ("result", "valid")]
        ) >= 1.0
    );
    let age = text.value("akamu_crl_age_seconds", &[]);
    assert!((0.0..60.0).contains(&age), "CRL age {age}");
    // Each process's figures are its own: they agree with what the kernel
    // says of that pid, read here just after the scrape.
    for (process, pid) in [
        ("frontend", ca.ready().frontend_pid),
        ("signer", ca.signer_pid().expect("signer pid")),
        ("validator", ca.validator_pid().expect("validator pid")),
    ] {
        let (kernel_cpu, kernel_rss) = kernel_figures(pid);
        let rss = text.value(
            "akamu_process_resident_memory_bytes",
            &[("process", process)],
        );
        assert!(
            rss > 1_000_000.0 && rss > kernel_rss / 2.0 && rss < kernel_rss * 2.0,
            "{process}: resident memory {rss}, the kernel says {kernel_rss}"
        );
        let cpu = text.value("akamu_process_cpu_seconds_total", &[("process", process)]);
        assert!(
            cpu >= 0.0 && cpu <= kernel_cpu + 0.011 && kernel_cpu - cpu < 5.0,
            "{process}: CPU seconds {cpu}, the kernel says {kernel_cpu}"
        );
    }

    // Only GET /metrics; the ACME listener serves no metrics.
    let (status, _, _) = http(Method::GET, &format!("http://127.0.0.1:{metrics_port}/")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _, _) = http(Method::POST, &url).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    let rsp = raw.get(&format!("{}/metrics", ca.base_url())).await;
    assert_eq!(rsp.status, StatusCode::NOT_FOUND, "{rsp:?}");
    assert!(!String::from_utf8_lossy(&rsp.body).contains("akamu_"));

    // Bounded: a request body is never waited for, and a peer that sends
    // nothing is dropped after the header deadline.
    let addr = format!("127.0.0.1:{metrics_port}");
    let mut stream = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("connect");
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n")
        .await
        .expect("send headers");
    let mut head = vec![0u8; 12];
    tokio::time::timeout(Duration::from_secs(5), stream.read_exact(&mut head))
        .await
        .expect("answered without the announced body")
        .expect("read");
    assert_eq!(&head, b"HTTP/1.1 200", "{}", String::from_utf8_lossy(&head));
    let mut silent = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("connect");
    let started = Instant::now();
    let mut byte = [0u8; 1];
    let read = tokio::time::timeout(Duration::from_secs(20), silent.read(&mut byte))
        .await
        .expect("a silent connection is closed by the server");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    assert!(started.elapsed() < Duration::from_secs(10));

    // A signer that does not answer (stopped): the scrape still succeeds,
    // within the peer deadline, and says so.
    let signer = nix::unistd::Pid::from_raw(ca.signer_pid().expect("signer pid"));
    nix::sys::signal::kill(signer, nix::sys::signal::Signal::SIGSTOP).expect("SIGSTOP");
    // kill() returns before every thread has stopped: wait until the
    // kernel reports the process stopped (state T).
    let stop_deadline = Instant::now() + Duration::from_secs(5);
    while crate::support::pids::proc_stat(signer.as_raw()).is_some_and(|(_, state, _)| state != 'T')
    {
        assert!(Instant::now() < stop_deadline, "the signer did not stop");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let started = Instant::now();
    let down = scrape(&url).await;
    let took = started.elapsed();
    nix::sys::signal::kill(signer, nix::sys::signal::Signal::SIGCONT).expect("SIGCONT");
    assert_eq!(
        down.value("akamu_signer_up", &[]),
        0.0,
        "signer {signer} stopped, children {:?}",
        ca.children()
    );
    assert!(down.values("akamu_signer_signatures_total", &[]).is_empty());
    assert_eq!(down.value("akamu_validator_up", &[]), 1.0);
    assert!(took < Duration::from_secs(5), "the scrape took {took:?}");
    promtool_check(&down.0);
    drop(http01);
}

/// Without `[metrics]` the frontend listens on its ACME port alone (its
/// sockets, matched against the kernel's table of listening TCP sockets).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn off_by_default_nothing_else_listens() {
    let dns = DnsServer::start().await;
    let port = free_port();
    let ca = Ca::start_async(CaOptions {
        dns_resolver_addr: Some(dns.addr()),
        listen_port: Some(port),
        ..CaOptions::default()
    })
    .await;
    let pid = ca.ready().frontend_pid;
    let mut inodes = BTreeSet::new();
    for fd in std::fs::read_dir(format!("/proc/{pid}/fd")).expect("the frontend's fds") {
        let Ok(target) = std::fs::read_link(fd.expect("fd").path()) else {
            continue;
        };
        let target = target.to_string_lossy().into_owned();
        if let Some(inode) = target
            .strip_prefix("socket:[")
            .and_then(|s| s.strip_suffix(']'))
        {
            inodes.insert(inode.to_owned());
        }
    }
    let mut ports = BTreeSet::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            // local_address, st (0A = LISTEN), inode: fields 1, 3 and 9.
            if f.len() > 9 && f[3] == "0A" && inodes.contains(f[9]) {
                let port_hex = f[1].rsplit(':').next().expect("port");
                ports.insert(u16::from_str_radix(port_hex, 16).expect("hex port"));
            }
        }
    }
    assert_eq!(
        ports,
        BTreeSet::from([port]),
        "the frontend listens only on its ACME port"
    );
    let raw = RawClient::new(&ca).await;
    let rsp = raw.get(&format!("{}/metrics", ca.base_url())).await;
    assert_eq!(rsp.status, StatusCode::NOT_FOUND, "{rsp:?}");
}
