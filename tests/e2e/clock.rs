//! Time moved, not waited for (issue 18): the three processes of a debug
//! build read their clock through `daemon_kit::clock`, which adds the
//! seconds written in the file named by `AKAMU_TEST_CLOCK_FILE`. A test
//! rewrites that file and the frontend, the signer and the validator are
//! a day later at once: orders and authorizations expire, the signer
//! refuses a statement older than its limit, the CRL is renewed before its
//! `nextUpdate`, and a STAR order gets its next certificate.

use std::path::{Path, PathBuf};
use std::time::Duration;

use openssl::asn1::{Asn1Time, Asn1TimeRef};
use openssl::x509::X509Crl;
use serde_json::{Value, json};

use crate::support::acme::{Session, created, dns};
use crate::support::certs::{leaf_of, serial};
use crate::support::client::{RawClient, csr};
use crate::support::dns::DnsServer;
use crate::support::http01::Http01Server;
use crate::support::procs::{Ca, CaOptions, free_port};

const DAY: i64 = 86_400;

/// The test clock: a file the CA's processes read on every clock reading.
struct Clock {
    path: PathBuf,
    _dir: tempfile::TempDir,
}

impl Clock {
    fn new() -> Clock {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("clock");
        std::fs::write(&path, "0").expect("write the clock");
        Clock { path, _dir: dir }
    }

    /// The environment that hands the clock to the launcher and its
    /// children.
    fn env(&self) -> Vec<(String, PathBuf)> {
        vec![("AKAMU_TEST_CLOCK_FILE".into(), self.path.clone())]
    }

    /// Moves the CA's clock to `secs` after the real time.
    fn set(&self, secs: i64) {
        std::fs::write(&self.path, secs.to_string()).expect("move the clock");
    }

    fn path(&self) -> &Path {
        &self.path
    }
}

fn unix_now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn unix(t: &Asn1TimeRef) -> i64 {
    let d = Asn1Time::from_unix(0)
        .expect("epoch")
        .diff(t)
        .expect("diff");
    i64::from(d.days) * DAY + i64::from(d.secs)
}

/// Validates a new order for `name` up to `ready`; returns its URL and
/// the order.
async fn ready_order(s: &Session, http: &Http01Server, name: &str) -> (String, Value) {
    let (url, order) = s.new_order(&[dns(name)]).await;
    s.answer_http01(&order, http).await;
    let order = s.settle(&url).await;
    assert_eq!(order["status"], "ready", "{order}");
    (url, order)
}

/// Order and authorization expiry, the signer's statement age and the
/// CRL's renewal, each reached by moving the clock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moving_the_clock_expires_orders_ages_statements_and_renews_the_crl() {
    let clock = Clock::new();
    let dns_server = DnsServer::start().await;
    let port = free_port();
    let crl_url = format!("https://localhost:{port}/crl/ca.crl");
    let ca = Ca::start_async(CaOptions {
        dns_resolver_addr: Some(dns_server.addr()),
        listen_port: Some(port),
        ca_toml: format!("crl_url = \"{crl_url}\""),
        extra_toml: "[signer.policy]\nstatement_max_age_secs = 600\n".into(),
        env: clock.env(),
        ..CaOptions::default()
    })
    .await;
    assert!(clock.path().exists());
    let http = Http01Server::start(ca.http_validation_port()).await;
    let raw = RawClient::new(&ca).await;
    let s = Session::new(&raw).await;

    // Before any move: a fresh statement gets a certificate.
    let (url, order) = ready_order(&s, &http, "now.example.org").await;
    s.finalize_and_download(&url, &order, &["now.example.org"])
        .await;

    let crl_before = served_crl(&raw, &crl_url, |_| true).await;

    // A validated order and a pending one, then eleven minutes later.
    let (stale_url, stale) = ready_order(&s, &http, "stale.example.org").await;
    let (pending_url, pending) = s.new_order(&[dns("pending.example.org")]).await;
    let pending_authz = Session::authz_urls(&pending)[0].clone();
    clock.set(660);

    // The authorization is still valid for the frontend (a day), but the
    // signer relies on no statement older than 600 s.
    let (der, _) = csr(&["stale.example.org"]);
    let rsp = s.finalize_raw(&stale, &der).await;
    assert!(
        !rsp.status.is_success(),
        "finalize on a stale statement: {rsp:?}"
    );
    let order = rsp.json();
    // The finalize is answered with the signer's refusal: the validation
    // is 660 s old on the moved clock.
    assert_eq!(
        order["type"], "urn:ietf:params:acme:error:unauthorized",
        "{order}"
    );
    let detail = order["detail"].as_str().unwrap_or_default();
    // 660 s on the moved clock, plus the real seconds the validation and
    // the finalize took (more than one on a loaded machine).
    let age: i64 = detail
        .split("validated ")
        .nth(1)
        .and_then(|t| t.split(" s ago").next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("the refusal names the statement's age: {order}"));
    assert!(
        (660..700).contains(&age) && detail.contains("up to 600 s old"),
        "the refusal names the statement's age: {order}"
    );
    let order = s.post_ok(&stale_url, None).await.json();
    assert!(order["certificate"].is_null(), "{order}");
    assert_eq!(
        s.post_ok(&pending_url, None).await.json()["status"],
        "pending"
    );

    // A day and a minute later: the pending order and its authorization
    // have expired, and the CRL was renewed on the moved clock.
    clock.set(DAY + 60);
    let order = s.post_ok(&pending_url, None).await.json();
    assert_eq!(order["status"], "invalid", "an expired order: {order}");
    let authz = s.authz(&pending_authz).await;
    assert_eq!(
        authz["status"], "expired",
        "an expired authorization: {authz}"
    );

    let crl_after = served_crl(&raw, &crl_url, |c| c.0 > crl_before.0).await;
    assert!(
        crl_after.0 >= unix_now() + DAY,
        "the new CRL's thisUpdate {} is on the moved clock",
        crl_after.0
    );
    assert!(
        crl_after.1 > crl_before.1 + DAY - 120,
        "nextUpdate moved on"
    );
    drop(ca);
}

/// (thisUpdate, nextUpdate) of the served CRL, polled until `done`.
async fn served_crl(raw: &RawClient, url: &str, done: impl Fn(&(i64, i64)) -> bool) -> (i64, i64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let rsp = raw.get(url).await;
        if rsp.status.is_success() {
            let crl = X509Crl::from_der(&rsp.body).expect("a DER CRL");
            let times = (
                unix(crl.last_update()),
                unix(crl.next_update().expect("nextUpdate")),
            );
            if done(&times) {
                return times;
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no CRL as expected at {url} (last answer {})",
            rsp.status
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A STAR order with a one-day lifetime gets its next certificate when the
/// clock reaches the next issue, not after a day of waiting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moving_the_clock_drives_the_star_schedule() {
    let clock = Clock::new();
    let dns_server = DnsServer::start().await;
    let ca = Ca::start_async(CaOptions {
        dns_resolver_addr: Some(dns_server.addr()),
        server_toml: "star_min_lifetime_secs = 3600\nstar_max_duration_secs = 2592000\n".into(),
        env: clock.env(),
        ..CaOptions::default()
    })
    .await;
    let http = Http01Server::start(ca.http_validation_port()).await;
    let raw = RawClient::new(&ca).await;
    let s = Session::new(&raw).await;
    let name = "star-clock.example.org";
    let end = unix_now() + 10 * DAY;
    let end_text = time::OffsetDateTime::from_unix_timestamp(end)
        .expect("time")
        .format(&time::format_description::well_known::Rfc3339)
        .expect("format");
    let rsp = s
        .new_order_raw(
            &[dns(name)],
            json!({ "auto-renewal": { "end-date": end_text, "lifetime": DAY } }),
        )
        .await;
    let (url, order) = created(&rsp, "a STAR order");
    s.answer_http01(&order, &http).await;
    let order = s.settle(&url).await;
    assert_eq!(order["status"], "ready", "{order}");
    let (der, _) = csr(&[name]);
    assert!(s.finalize_raw(&order, &der).await.status.is_success());
    let order = s.settle(&url).await;
    assert_eq!(order["status"], "valid", "{order}");
    let star_url = order["star-certificate"]
        .as_str()
        .expect("a star-certificate URL")
        .to_owned();
    let first = leaf_of(std::str::from_utf8(&s.post_ok(&star_url, None).await.body).expect("PEM"));

    clock.set(DAY);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let second = loop {
        let rsp = s.post_ok(&star_url, None).await;
        let leaf = leaf_of(std::str::from_utf8(&rsp.body).expect("PEM"));
        if serial(&leaf) != serial(&first) {
            break leaf;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no reissue within 20 s of moving the clock a day"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let shifted_now = unix_now() + DAY;
    assert!(
        unix(second.not_before()) >= unix(first.not_before()) + DAY - 3600,
        "the reissue starts a day later"
    );
    assert!(unix(second.not_before()) <= shifted_now);
    assert!(unix(second.not_after()) <= end);
}
