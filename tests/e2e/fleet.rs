//! Several front ends (issue 17): two `acme-frontend`s serving one
//! `base_url` on one SQLite file (and, the `postgres_` tests, on one
//! PostgreSQL database), with one signer and one validator started
//! on their own (production style, [`Fleet`]). A test client plays the load
//! balancer: it signs every JWS for the shared URLs and sends each request
//! to the front end it chooses.
//!
//! - a nonce handed out by A is accepted once at B, refused (`badNonce`) the
//!   second time at either, and still refused after B restarts; a nonce B
//!   handed out before its restart is accepted after it;
//! - a key rollover at A makes B refuse the old key at once, a deactivation
//!   at A makes B refuse the account at once;
//! - the same order finalized at A and B at the same moment gets one
//!   certificate, and both front ends tell the same one;
//! - a certificate revoked at A and B at once is revoked once (the other
//!   answer is `alreadyRevoked`), and the revocation is in the CRL both
//!   serve (the same bytes);
//! - kill -9 of A, the holder of the jobs lease: B takes the lease over
//!   within the lease time and the CRL job runs there (a revocation made
//!   after the kill reaches the CRL).

use std::time::{Duration, Instant};

use acme_frontend::store::{self, Query, Store};
use akamu_jose::{Alg, SigningKey};
use http::StatusCode;
use openssl::x509::X509Crl;
use serde_json::{Value, json};

use crate::support::acme::{Session, identifier, revocation};
use crate::support::client::{JwsAccount, RawClient, csr};
use crate::support::dns::DnsServer;
use crate::support::fleet::{Fleet, FleetOptions};
use crate::support::http01::Http01Server;

/// `[fleet] lease_secs` of these tests.
const LEASE_SECS: u32 = 3;
/// The CRL's path (the signer's `crl_url`, see [`Fleet`]).
const CRL_PATH: &str = "/crl/ca.crl";

async fn start(dns: &DnsServer, postgres: bool) -> (Fleet, RawClient, RawClient) {
    let fleet = Fleet::start_async(FleetOptions {
        frontends: 2,
        dns: dns.addr(),
        lease_secs: LEASE_SECS,
        enabled: true,
        postgres,
    })
    .await;
    let a = RawClient::connect(fleet.ca_cert(), &fleet.directory()).await;
    let a = a.routed(fleet.base_url(), &fleet.frontends[0].origin());
    let b = a.routed(fleet.base_url(), &fleet.frontends[1].origin());
    (fleet, a, b)
}

/// A POST-as-GET of the account, signed with `key` and `nonce`.
fn account_get(key: &SigningKey, kid: &str, nonce: &str) -> Value {
    key.sign_flattened(json!({"kid": kid, "nonce": nonce, "url": kid}), b"")
        .expect("sign")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nonces_account_changes_and_finalize_hold_across_front_ends() {
    across_front_ends(false).await;
}

/// The same on one PostgreSQL database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_nonces_account_changes_and_finalize_hold_across_front_ends() {
    across_front_ends(true).await;
}

async fn across_front_ends(postgres: bool) {
    let dns = DnsServer::start().await;
    let (mut fleet, a, b) = start(&dns, postgres).await;
    let http = Http01Server::start(fleet.http_validation_port()).await;
    let alice = JwsAccount::create(&a).await;

    // A nonce from A, used at B: accepted once, then refused at B and A.
    let body = alice.sign(&a.nonce().await, &alice.kid, None);
    let rsp = b.post_jose(&alice.kid, &body).await;
    assert_eq!(rsp.status, StatusCode::OK, "A's nonce at B: {rsp:?}");
    b.post_jose(&alice.kid, &body)
        .await
        .assert_problem("A's nonce at B, twice", &["badNonce"]);
    a.post_jose(&alice.kid, &body)
        .await
        .assert_problem("A's nonce back at A", &["badNonce"]);

    // B restarts: the used nonce stays used; one B handed out before the
    // restart is still good (once).
    let from_old_b = alice.sign(&b.nonce().await, &alice.kid, None);
    fleet.restart_frontend(1).await;
    let rsp = b.post_jose(&alice.kid, &body).await;
    let problem = rsp.assert_problem("a used nonce after B's restart", &["badNonce"]);
    assert_eq!(rsp.status, StatusCode::BAD_REQUEST, "{problem}");
    let rsp = b.post_jose(&alice.kid, &from_old_b).await;
    assert_eq!(rsp.status, StatusCode::OK, "the old B's nonce: {rsp:?}");
    a.post_jose(&alice.kid, &from_old_b)
        .await
        .assert_problem("the old B's nonce at A, twice", &["badNonce"]);

    // Key rollover at A: B refuses the old key from the next request on
    // (B served the account with the old key just before).
    let bob = JwsAccount::create(&a).await;
    let rsp = b
        .post_jose(&bob.kid, &bob.sign(&b.nonce().await, &bob.kid, None))
        .await;
    assert_eq!(rsp.status, StatusCode::OK, "B knows bob: {rsp:?}");
    let new_key = SigningKey::generate(Alg::Es256).expect("key");
    let url = a.url("keyChange");
    let inner = bob.key_change_inner(&new_key, &url);
    let rsp = a
        .post_jose(&url, &bob.sign(&a.nonce().await, &url, Some(&inner)))
        .await;
    assert_eq!(rsp.status, StatusCode::OK, "keyChange at A: {rsp:?}");
    b.post_jose(&bob.kid, &account_get(&bob.key, &bob.kid, &b.nonce().await))
        .await
        .assert_problem(
            "the old key at B after the rollover at A",
            &["malformed", "unauthorized"],
        );
    let rsp = b
        .post_jose(&bob.kid, &account_get(&new_key, &bob.kid, &b.nonce().await))
        .await;
    assert_eq!(rsp.status, StatusCode::OK, "the new key at B: {rsp:?}");

    // Deactivation at A: B refuses the account from the next request on.
    let carol = JwsAccount::create(&a).await;
    let rsp = b
        .post_jose(&carol.kid, &carol.sign(&b.nonce().await, &carol.kid, None))
        .await;
    assert_eq!(rsp.status, StatusCode::OK, "B knows carol: {rsp:?}");
    let deactivate = json!({"status": "deactivated"});
    let rsp = a
        .post_jose(
            &carol.kid,
            &carol.sign(&a.nonce().await, &carol.kid, Some(&deactivate)),
        )
        .await;
    assert_eq!(rsp.status, StatusCode::OK, "deactivation at A: {rsp:?}");
    let rsp = b
        .post_jose(&carol.kid, &carol.sign(&b.nonce().await, &carol.kid, None))
        .await;
    let problem = rsp.assert_problem("the deactivated account at B", &["unauthorized"]);
    assert_eq!(rsp.status, StatusCode::UNAUTHORIZED, "{problem}");

    // The same order finalized at A and at B at once: one certificate.
    let session = Session::with_account(&a, alice);
    let names = ["race.example.org"];
    let (order_url, order) = session.new_order(&[identifier(names[0])]).await;
    session.answer_http01(&order, &http).await;
    let order = session.settle(&order_url).await;
    assert_eq!(order["status"], "ready", "{order}");
    let finalize = order["finalize"].as_str().expect("finalize URL");
    let (der, _key) = csr(&names);
    let payload = json!({"csr": akamu_jose::b64(&der)});
    let at_a = session
        .account
        .sign(&a.nonce().await, finalize, Some(&payload));
    let at_b = session
        .account
        .sign(&b.nonce().await, finalize, Some(&payload));
    let (ra, rb) = tokio::join!(a.post_jose(finalize, &at_a), b.post_jose(finalize, &at_b));
    let won: Vec<_> = [&ra, &rb]
        .into_iter()
        .filter(|r| r.status.is_success())
        .collect();
    assert_eq!(
        won.len(),
        1,
        "exactly one finalize wins: A {ra:?}, B {rb:?}"
    );
    for r in [&ra, &rb].into_iter().filter(|r| !r.status.is_success()) {
        r.assert_problem("the losing finalize", &["orderNotReady"]);
    }
    let done = session.settle(&order_url).await;
    assert_eq!(done["status"], "valid", "{done}");
    let cert_url = done["certificate"].as_str().expect("certificate URL");
    let at_b_session = Session::with_account(&b, session.account);
    let seen_by_b = at_b_session.settle(&order_url).await;
    assert_eq!(
        seen_by_b["certificate"], done["certificate"],
        "B tells the same certificate"
    );
    let from_b = at_b_session.post_ok(cert_url, None).await.body;
    let from_a = Session::with_account(&a, at_b_session.account)
        .post_ok(cert_url, None)
        .await
        .body;
    assert_eq!(from_a, from_b, "A and B serve the same certificate");
    let mut conn = Store::open_read_only_at(&fleet.database()).expect("open the database");
    let certs = store::maintenance::certificate_count(&mut conn).expect("count");
    assert_eq!(certs, 1, "one certificate in the database");
    let audit = std::fs::read_to_string(fleet_audit_log(&fleet)).expect("audit log");
    let signed = audit
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|r| r["serial"].is_string() && r["names"] == json!(["dns:race.example.org"]))
        .count();
    assert_eq!(signed, 1, "the signer signed the order once:\n{audit}");
}

fn fleet_audit_log(fleet: &Fleet) -> std::path::PathBuf {
    fleet
        .ca_cert()
        .parent()
        .expect("signer dir")
        .join("audit.log")
}

/// The serials of the CRL `raw`'s front end serves, with its DER.
async fn served_crl(raw: &RawClient, base: &str) -> Option<(Vec<u8>, Vec<String>)> {
    let rsp = raw.get(&format!("{base}{CRL_PATH}")).await;
    if rsp.status != StatusCode::OK {
        return None;
    }
    let crl = X509Crl::from_der(&rsp.body).expect("DER CRL");
    let serials = crl
        .get_revoked()
        .map(|r| {
            r.iter()
                .map(|e| {
                    e.serial_number()
                        .to_bn()
                        .expect("bn")
                        .to_hex_str()
                        .expect("hex")
                        .to_ascii_lowercase()
                        .trim_start_matches('0')
                        .to_owned()
                })
                .collect()
        })
        .unwrap_or_default();
    Some((rsp.body.to_vec(), serials))
}

/// Waits until `raw`'s front end serves a CRL listing `serial`; returns
/// its DER and how long it took.
async fn wait_listed(
    raw: &RawClient,
    base: &str,
    serial: &str,
    within: Duration,
) -> (Vec<u8>, Duration) {
    let started = Instant::now();
    loop {
        let last = served_crl(raw, base).await;
        if let Some((der, serials)) = &last
            && serials.iter().any(|s| s == serial)
        {
            return (der.clone(), started.elapsed());
        }
        assert!(
            started.elapsed() < within,
            "no CRL listing {serial} within {within:?}; last: {:?}",
            last.map(|(_, s)| s)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn serial_of(chain_pem: &str) -> String {
    let leaf = openssl::x509::X509::stack_from_pem(chain_pem.as_bytes()).expect("PEM")[0]
        .serial_number()
        .to_bn()
        .expect("bn")
        .to_hex_str()
        .expect("hex")
        .to_ascii_lowercase();
    leaf.trim_start_matches('0').to_owned()
}

/// `akamu_fleet_jobs_lease_held` on front end `i`'s metrics listener.
async fn lease_gauge(fleet: &Fleet, i: usize) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", fleet.frontends[i].metrics_port))
        .await
        .expect("connect to the metrics listener");
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .expect("request");
    let mut text = String::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_string(&mut text))
        .await
        .expect("the scrape answers within 10 s")
        .expect("read");
    text.lines()
        .find_map(|l| l.strip_prefix("akamu_fleet_jobs_lease_held "))
        .unwrap_or_else(|| panic!("no akamu_fleet_jobs_lease_held in:\n{text}"))
        .trim()
        .to_owned()
}

fn lease_holder(fleet: &Fleet) -> Option<(String, i64)> {
    let mut conn = Store::open_read_only_at(&fleet.database()).expect("open the database");
    #[derive(diesel::QueryableByName)]
    struct Lease {
        #[diesel(sql_type = diesel::sql_types::Text)]
        holder: String,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        expires_ms: i64,
    }
    let rows: Vec<Lease> =
        diesel::sql_query("SELECT holder, expires_ms FROM leases WHERE name = 'jobs'")
            .fetch_all(&mut conn)
            .expect("select");
    rows.into_iter().next().map(|l| (l.holder, l.expires_ms))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_crl_for_the_fleet_and_the_jobs_survive_their_leader() {
    one_crl_and_the_lease(false).await;
}

/// The same on one PostgreSQL database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_one_crl_for_the_fleet_and_the_jobs_survive_their_leader() {
    one_crl_and_the_lease(true).await;
}

async fn one_crl_and_the_lease(postgres: bool) {
    let dns = DnsServer::start().await;
    let (mut fleet, a, b) = start(&dns, postgres).await;
    let http = Http01Server::start(fleet.http_validation_port()).await;
    let base = fleet.base_url().to_owned();
    assert_eq!(
        lease_holder(&fleet).map(|(h, _)| h).as_deref(),
        Some("fe-a"),
        "the first front end holds the jobs lease"
    );
    assert_eq!(
        lease_gauge(&fleet, 0).await,
        "1",
        "A's metrics say it holds the lease"
    );
    assert_eq!(
        lease_gauge(&fleet, 1).await,
        "0",
        "B's metrics say it does not"
    );

    // A certificate revoked at B is in the CRL A serves; both serve the
    // same CRL.
    let at_b = Session::new(&b).await;
    let first = at_b.issue_http01(&http, &["one.example.org"]).await;
    let first_serial = serial_of(&first.chain_pem);
    // Revoked at A and at B at the same moment: one revocation.
    let url = b.url("revokeCert");
    let payload = revocation(&first.leaf_der(), None);
    let via_a = at_b.account.sign(&a.nonce().await, &url, Some(&payload));
    let via_b = at_b.account.sign(&b.nonce().await, &url, Some(&payload));
    let (ra, rb) = tokio::join!(a.post_jose(&url, &via_a), b.post_jose(&url, &via_b));
    let ok: Vec<_> = [&ra, &rb]
        .into_iter()
        .filter(|r| r.status == StatusCode::OK)
        .collect();
    assert_eq!(ok.len(), 1, "one revocation wins: A {ra:?}, B {rb:?}");
    for r in [&ra, &rb]
        .into_iter()
        .filter(|r| r.status != StatusCode::OK)
    {
        r.assert_problem("the second revocation", &["alreadyRevoked"]);
    }
    let (der_a, took) = wait_listed(&a, &base, &first_serial, Duration::from_secs(15)).await;
    eprintln!("[e2e] revocation at B listed in A's CRL after {took:?}");
    let (der_b, _) = wait_listed(&b, &base, &first_serial, Duration::from_secs(10)).await;
    if der_a != der_b {
        // B may still have been one poll behind: the next answers agree.
        tokio::time::sleep(Duration::from_secs(3)).await;
        let (da, _) = served_crl(&a, &base).await.expect("A's CRL");
        let (db, _) = served_crl(&b, &base).await.expect("B's CRL");
        assert_eq!(da, db, "A and B serve the same CRL");
    }

    // kill -9 of the lease holder: B takes the lease over within the
    // lease time, and the CRL job runs there.
    let second = at_b.issue_http01(&http, &["two.example.org"]).await;
    let second_serial = serial_of(&second.chain_pem);
    fleet.kill9_frontend(0);
    let killed = Instant::now();
    let rsp = at_b
        .post(&url, Some(&revocation(&second.leaf_der(), None)))
        .await;
    assert_eq!(rsp.status, StatusCode::OK, "revocation at B: {rsp:?}");
    let lease = Duration::from_secs(u64::from(LEASE_SECS));
    // The lease expires at most LEASE_SECS after A's last renewal; B tries
    // every third of it, then its CRL check runs within 2 s.
    let (_, _) = wait_listed(
        &b,
        &base,
        &second_serial,
        lease + lease / 3 + Duration::from_secs(6),
    )
    .await;
    let took_over = killed.elapsed();
    eprintln!(
        "[e2e] after kill -9 of the holder, B's CRL lists the new revocation after {took_over:?}"
    );
    assert_eq!(
        lease_holder(&fleet).map(|(h, _)| h).as_deref(),
        Some("fe-b"),
        "B holds the jobs lease"
    );
    assert_eq!(
        lease_gauge(&fleet, 1).await,
        "1",
        "B's metrics say it holds the lease"
    );

    // A comes back: it does not take the lease back, and serves B's CRL.
    tokio::task::block_in_place(|| fleet.start_frontend(0));
    let (der, _) = wait_listed(&a, &base, &second_serial, Duration::from_secs(5)).await;
    let (der_b, _) = served_crl(&b, &base).await.expect("B's CRL");
    assert_eq!(der, der_b, "the restarted A serves B's CRL");
    assert_eq!(
        lease_holder(&fleet).map(|(h, _)| h).as_deref(),
        Some("fe-b"),
        "B keeps the lease while it renews it"
    );
    assert!(fleet.frontends[0].pid() > 0);
}

/// What `[fleet] enabled` costs one client's requests: the mean latency of
/// a POST-as-GET of the account (JWS check, account row, nonce
/// redemption) at one front end, with the key off and on. A measurement,
/// not a check: `cargo test -p tests --test e2e fleet::cost -- --ignored
/// --nocapture` (figures in docs/src/fleet.md).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, not a check"]
async fn cost_of_the_fleet_mode_per_request() {
    const ROUNDS: u32 = 400;
    let dns = DnsServer::start().await;
    let mut lines = Vec::new();
    for enabled in [false, true, false, true] {
        let fleet = Fleet::start_async(FleetOptions {
            frontends: 1,
            dns: dns.addr(),
            lease_secs: LEASE_SECS,
            enabled,
            postgres: false,
        })
        .await;
        let raw = RawClient::connect(fleet.ca_cert(), &fleet.directory()).await;
        let account = JwsAccount::create(&raw).await;
        let mut nonces = Vec::new();
        for _ in 0..ROUNDS + 20 {
            nonces.push(raw.nonce().await);
        }
        let mut total = Duration::ZERO;
        for (i, nonce) in nonces.iter().enumerate() {
            let body = account.sign(nonce, &account.kid, None);
            let started = Instant::now();
            let rsp = raw.post_jose(&account.kid, &body).await;
            if i >= 20 {
                total += started.elapsed();
            }
            assert_eq!(rsp.status, StatusCode::OK, "{rsp:?}");
        }
        lines.push(format!(
            "[fleet] enabled = {enabled}: POST-as-GET of the account, mean {:.0} µs over {ROUNDS}",
            total.as_secs_f64() * 1e6 / f64::from(ROUNDS)
        ));
    }
    println!("{}", lines.join("\n"));
}
