//! The transparency log (issue 16) end to end: certificates issued over
//! ACME are entries of the log the frontend serves under `/log/`; an
//! independent judge (`tlog_judge.py`: pyca/cryptography and hashlib)
//! checks the signed checkpoint and recomputes its root from the entry
//! bundles; `akamu-cli log verify` follows the log from checkpoint to
//! checkpoint and checks the database; a changed entry, a forked
//! checkpoint and an unreachable log each get their exit code; and a
//! signer killed between its audit record and its log entry loses nothing.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use akamu_tlog::{Checkpoint, NoteSigner};
use serde_json::Value;

use crate::support::client::{acme_account, issue_http01};
use crate::support::dns::DnsServer;
use crate::support::http01::Http01Server;
use crate::support::procs::{Ca, CaOptions, binary_path};

/// How long a checkpoint may take to cover a new certificate.
const CHECKPOINT_TIMEOUT: Duration = Duration::from_secs(30);

/// A CA with the log on and a metrics listener of its own.
async fn start(dns: &DnsServer, env: Vec<(String, PathBuf)>) -> Ca {
    let metrics_port = crate::support::procs::free_port();
    Ca::start_async(CaOptions {
        dns_resolver_addr: Some(dns.addr()),
        extra_toml: format!(
            "[mtc]\nenabled = true\n[metrics]\nlisten_addr = \"127.0.0.1:{metrics_port}\"\n"
        ),
        env,
        ..CaOptions::default()
    })
    .await
}

fn log_url(ca: &Ca) -> String {
    format!("{}/log", ca.base_url())
}

/// The log key as the operator has it (the signer's file), and the
/// verifier key a relying party is given out of band.
fn log_key(ca: &Ca) -> (NoteSigner, String) {
    let pem = std::fs::read(ca.state_dir().join("mtc-log.key")).expect("the signer made the key");
    let key = openssl::pkey::PKey::private_key_from_pem(&pem).expect("Ed25519 PEM");
    let origin = akamu_tlog::default_origin(&ca.base_url());
    let signer = NoteSigner::new(&origin, key).expect("signer");
    let vkey = signer.verifier_key();
    (signer, vkey)
}

fn cli(args: &[&str]) -> Output {
    Command::new(binary_path("akamu-cli"))
        .args(args)
        .output()
        .expect("run akamu-cli")
}

fn json_of(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "no JSON ({e}): {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn verify(ca: &Ca, vkey: &str, state: &Path) -> Output {
    let ca_cert = ca.ca_cert().to_string_lossy().into_owned();
    cli(&[
        "--json",
        "log",
        "verify",
        "--log",
        &log_url(ca),
        "--key",
        vkey,
        "--state",
        &state.to_string_lossy(),
        "--config",
        &ca.config_path().to_string_lossy(),
        "--ca-bundle",
        &ca_cert,
    ])
}

/// Runs the independent judge; its JSON when everything holds.
fn judge(ca: &Ca, vkey: &str) -> Result<Value, String> {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: scripts/test.sh creates it with pyca/cryptography",
        python.display()
    );
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("e2e/tlog_judge.py");
    let out = Command::new(python)
        .arg(script)
        .arg(log_url(ca))
        .arg(vkey)
        .arg(ca.ca_cert())
        .output()
        .expect("run tlog_judge.py");
    if out.status.success() {
        Ok(serde_json::from_slice(&out.stdout).expect("judge JSON"))
    } else {
        Err(format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// Waits until the judge sees a checkpoint of at least `size` entries.
async fn judged_at_least(ca: &Ca, vkey: &str, size: u64) -> Value {
    let start = Instant::now();
    loop {
        let last = judge(ca, vkey);
        if let Ok(v) = &last
            && v["size"].as_u64().unwrap_or(0) >= size
        {
            return v.clone();
        }
        assert!(
            start.elapsed() < CHECKPOINT_TIMEOUT,
            "no checkpoint of {size} entries: {last:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn sha256_hex(der: &[u8]) -> String {
    openssl::sha::sha256(der)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn leaf_der(chain_pem: &str) -> Vec<u8> {
    openssl::x509::X509::from_pem(chain_pem.as_bytes())
        .expect("leaf PEM")
        .to_der()
        .expect("DER")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issued_certificates_are_in_the_signed_log_and_the_monitor_follows_it() {
    let dns = DnsServer::start().await;
    let ca = start(&dns, Vec::new()).await;
    let http = Http01Server::start(ca.http_validation_port()).await;
    let account = acme_account(&ca).await;
    let (signer, vkey) = log_key(&ca);

    // The key the log serves is the signer's.
    let pem = std::fs::read(ca.ca_cert()).expect("CA PEM");
    let fetcher = akamu_client::AcmeClient::builder(&log_url(&ca))
        .add_root_pem(&pem)
        .expect("root")
        .build_fetcher()
        .expect("fetcher");
    let served = fetcher
        .get(&format!("{}/key", log_url(&ca)))
        .await
        .expect("GET /log/key")
        .expect("found");
    assert_eq!(String::from_utf8_lossy(&served).trim(), vkey);
    let missing = fetcher
        .get(&format!("{}/tile/0/x001/000", log_url(&ca)))
        .await
        .expect("GET a tile the log does not have");
    assert!(missing.is_none(), "a tile beyond the log is a 404");

    let first = issue_http01(&account, &http, &["log-one.example.org"]).await;
    let second = issue_http01(&account, &http, &["log-two.example.org"]).await;
    // Three entries: the frontend's HTTPS certificate (signed at start)
    // and the two.
    let judged = judged_at_least(&ca, &vkey, 3).await;
    let entries: Vec<&str> = judged["entry_sha256"]
        .as_array()
        .expect("entries")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for issued in [&first, &second] {
        let h = sha256_hex(&leaf_der(&issued.chain_pem));
        assert!(
            entries.contains(&h.as_str()),
            "{h} is an entry: {entries:?}"
        );
    }

    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state");
    let out = verify(&ca, &vkey, &state);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = json_of(&out);
    let size = v["size"].as_u64().expect("size");
    assert_eq!(v["root"], judged["root"], "the monitor and the judge agree");
    assert_eq!(size, 3, "{v}");
    // Both at the index the frontend stored with them.
    assert_eq!(v["certificates_checked"].as_u64(), Some(2), "{v}");
    assert_eq!(v["certificates_unindexed"].as_u64(), Some(0), "{v}");
    let old: Checkpoint = {
        let note = std::fs::read_to_string(&state).expect("state written");
        akamu_tlog::NoteVerifier::parse(&vkey)
            .expect("vkey")
            .open_checkpoint(&note)
            .expect("state is the signed checkpoint")
    };

    let third = issue_http01(&account, &http, &["log-three.example.org"]).await;
    judged_at_least(&ca, &vkey, old.size + 1).await;
    // /metrics shows the log's size and its newest checkpoint.
    let text = metrics_text(&ca);
    let gauge = |name: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("{name} in /metrics:\n{text}"))
    };
    assert!(gauge("akamu_log_entries") >= 4.0, "{text}");
    assert!(gauge("akamu_log_checkpoint_entries") >= 4.0, "{text}");
    assert!(gauge("akamu_log_checkpoint_timestamp_seconds") > 1_767_225_600.0);
    let out = verify(&ca, &vkey, &state);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = json_of(&out);
    assert_eq!(v["previous_size"].as_u64(), Some(old.size), "{v}");
    assert!(v["size"].as_u64() > Some(old.size));

    // An inclusion proof for the newest certificate.
    let pem = dir.path().join("third.pem");
    std::fs::write(&pem, &third.chain_pem).expect("write");
    let out = cli(&[
        "--json",
        "log",
        "prove",
        "--log",
        &log_url(&ca),
        "--cert",
        &pem.to_string_lossy(),
        "--key",
        &vkey,
        "--ca-bundle",
        &ca.ca_cert().to_string_lossy(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let p = json_of(&out);
    assert_eq!(p["leaf_hash"].as_str().map(str::len), Some(64));
    assert!(p["index"].as_u64() < p["size"].as_u64());

    // A forked checkpoint: the size the monitor saw, another root, signed
    // with the log's real key.
    let seen = json_of(&verify(&ca, &vkey, &state));
    let fork = Checkpoint {
        origin: signer_origin(&ca),
        size: seen["size"].as_u64().expect("size"),
        root: [7; 32],
    };
    std::fs::write(&state, signer.sign(&fork.body()).expect("sign")).expect("write");
    let out = verify(&ca, &vkey, &state);
    assert_eq!(
        out.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("fork"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // A flipped byte in what is served: the signer's entries file is
    // changed under it, so the entry bundle it hands out differs.
    std::fs::remove_file(&state).expect("rm state");
    let log_file = ca.state_dir().join("mtc.log");
    let good = std::fs::read(&log_file).expect("read log");
    let mut bad = good.clone();
    let last = bad.len() - 1;
    bad[last] ^= 0x01;
    std::fs::write(&log_file, &bad).expect("flip");
    let out = verify(&ca, &vkey, &state);
    std::fs::write(&log_file, &good).expect("restore");
    assert_eq!(
        out.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(judge(&ca, &vkey).is_ok(), "restored");

    // A wrong key: the checkpoint is refused.
    let other = NoteSigner::new(
        &signer_origin(&ca),
        akamu_tlog::note::generate_key().expect("key"),
    )
    .expect("other")
    .verifier_key();
    let out = verify(&ca, &other, &state);
    assert_eq!(
        out.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Nothing listening: unreachable, not a fork.
    let closed = format!("https://127.0.0.1:{}/log", test_kit::ports::free_port());
    let out = cli(&["log", "verify", "--log", &closed, "--key", &vkey]);
    assert_eq!(
        out.status.code(),
        Some(5),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn signer_origin(ca: &Ca) -> String {
    akamu_tlog::default_origin(&ca.base_url())
}

/// kill -9 of the signer after its audit record and before its log entry
/// (a fault point in debug builds, once): the launcher restarts it, the
/// restarted signer appends the entry from its audit log, the frontend's
/// retry gets the same certificate, and the log holds it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signer_killed_between_signature_and_reply_loses_no_entry() {
    let dns = DnsServer::start().await;
    let env = vec![(
        "AKAMU_FAULT_POINT".to_owned(),
        PathBuf::from("signer-after-audit-before-log"),
    )];
    let ca = start(&dns, env).await;
    let http = Http01Server::start(ca.http_validation_port()).await;
    let account = acme_account(&ca).await;
    let (_, vkey) = log_key(&ca);
    let before = ca.ready().signer_pid;

    let issued = issue_http01(&account, &http, &["crash.example.org"]).await;
    assert!(
        ca.state_dir().join("mtc.log.fault-fired").exists(),
        "the signer reached the fault point"
    );
    assert_ne!(ca.signer_pid(), Some(before), "the signer was restarted");

    // The frontend's HTTPS certificate, then this one.
    let judged = judged_at_least(&ca, &vkey, 2).await;
    let h = sha256_hex(&leaf_der(&issued.chain_pem));
    let entries = judged["entry_sha256"].as_array().expect("entries");
    assert!(
        entries.iter().any(|e| e.as_str() == Some(h.as_str())),
        "{judged}"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let out = verify(&ca, &vkey, &dir.path().join("state"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(json_of(&out)["certificates_checked"].as_u64(), Some(1));
}

/// Without `[mtc] enabled` there is no log: `/log/` paths are 404s, and the
/// monitor says so as "unreachable", not as a fork.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_log_its_paths_are_not_found() {
    let ca = Ca::start_async(CaOptions::default()).await;
    let pem = std::fs::read(ca.ca_cert()).expect("CA PEM");
    let fetcher = akamu_client::AcmeClient::builder(&log_url(&ca))
        .add_root_pem(&pem)
        .expect("root")
        .build_fetcher()
        .expect("fetcher");
    for path in [
        "checkpoint",
        "key",
        "tile/0/000.p/1",
        "tile/entries/000.p/1",
    ] {
        let got = fetcher
            .get(&format!("{}/{path}", log_url(&ca)))
            .await
            .expect("GET");
        assert!(got.is_none(), "{path} is not found");
    }
    assert!(!ca.state_dir().join("mtc.log").exists(), "nothing written");
}

/// The text of the CA's `/metrics` (plain HTTP on its metrics listener).
fn metrics_text(ca: &Ca) -> String {
    use std::io::{Read, Write};
    let config = std::fs::read_to_string(ca.config_path()).expect("config");
    let addr = config
        .split("[metrics]")
        .nth(1)
        .and_then(|t| t.split('"').nth(1))
        .expect("metrics listen_addr")
        .to_owned();
    let mut stream = std::net::TcpStream::connect(&addr).expect("connect to /metrics");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(
        stream,
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .expect("request");
    let mut body = String::new();
    stream.read_to_string(&mut body).expect("response");
    body
}
