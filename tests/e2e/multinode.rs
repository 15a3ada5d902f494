//! The multi-node deployment (issue 17), as `scripts/multinode.sh up`
//! starts it: a signer reached over TCP with mutual TLS only, front ends A
//! and B in `[fleet]` mode on one database behind Debian's nginx, and a
//! primary validator with five remote perspectives over TCP with mutual
//! TLS. Each test brings up its own deployment against its own DNS and
//! http-01 servers, and `down`s it on drop.
//!
//! - Debian's certbot and lego each get a certificate through nginx that
//!   verifies against ROOT_CERT, and nginx's log shows both A and B served
//!   each client's requests; with B stopped lego is served by A alone, and
//!   after A's kill (below) by B alone; a nonce from A is accepted once at B and
//!   refused (`badNonce`) the second time; after a key rollover at A, B
//!   refuses the old key; one order finalized at A and B at once is
//!   signed once.
//! - kill -9 of A while instant-acme clients issue through nginx: the
//!   clients (retrying a failed issuance from the start) all finish, every
//!   certificate they received is in the database, and `akamu-cli audit
//!   reconcile` passes.
//! - A perspective whose resolver lies about a name is outvoted; one
//!   perspective stopped: issued (4 of 5); two stopped: refused, the
//!   problem naming both.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use akamu_jose::{Alg, SigningKey};
use http::StatusCode;
use instant_acme::{
    Account, AuthorizationStatus, ChallengeType, Identifier, NewAccount, NewOrder, OrderStatus,
    RetryPolicy,
};
use nix::sys::signal::Signal;
use serde_json::{Value, json};

use crate::support::acme::{Session, identifier};
use crate::support::certs::{dns_sans, leaf_of, verify_chain};
use crate::support::client::{JwsAccount, RawClient, account_builder_trusting, csr};
use crate::support::dns::DnsServer;
use crate::support::http01::Http01Server;
use crate::support::multinode::{Multinode, MultinodeOptions};
use crate::support::operator::akamu_cli;
use crate::support::tools::{Certbot, Lego};

/// The database the front ends share.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Db {
    /// One SQLite file.
    Sqlite,
    /// A PostgreSQL server started by the script.
    Postgres,
}

/// Starts a deployment validating against `dns` (and `perspective_dns`).
async fn up(
    dns: &DnsServer,
    perspective_dns: Vec<(&'static str, std::net::SocketAddr)>,
    db: Db,
) -> Multinode {
    Multinode::up(MultinodeOptions {
        dns: dns.addr(),
        http_port: test_kit::ports::free_port(),
        perspective_dns,
        postgres: db == Db::Postgres,
    })
    .await
}

/// The HTTP port the validators fetch http-01 tokens from.
fn http_port(mn: &Multinode) -> u16 {
    mn.var("HTTP_PORT").parse().expect("HTTP_PORT")
}

/// nginx's access-log lines, each with the upstream that served it.
fn upstreams_since(mn: &Multinode, from_line: usize) -> Vec<String> {
    mn.log("nginx-access")
        .lines()
        .skip(from_line)
        .map(str::to_owned)
        .collect()
}

/// Asserts that both front ends served some of `lines` with a 2xx.
fn served_by_both(mn: &Multinode, lines: &[String], what: &str) {
    for fe in ["a", "b"] {
        let origin = mn.frontend_origin(fe);
        let port = origin.rsplit(':').next().expect("port");
        let hit = lines.iter().any(|l| {
            l.contains(&format!("upstream=127.0.0.1:{port}"))
                && (l.contains("\" 200 ") || l.contains("\" 201 "))
        });
        assert!(
            hit,
            "{what}: front end {fe} (port {port}) served none of:\n{}",
            lines.join("\n")
        );
    }
}

/// Asserts that every request of `lines` that reached a front end ended at
/// front end `fe` (nginx logs `upstream=X, Y` when it moved on from X).
fn served_only_by(mn: &Multinode, lines: &[String], fe: &str, what: &str) {
    let origin = mn.frontend_origin(fe);
    let port = origin.rsplit(':').next().expect("port");
    let last: Vec<&str> = lines
        .iter()
        .filter_map(|l| l.split("upstream=").nth(1))
        .map(|u| u.rsplit(", ").next().unwrap_or(u).trim())
        .collect();
    assert!(!last.is_empty(), "{what}: no request reached a front end");
    for u in &last {
        assert_eq!(
            *u,
            format!("127.0.0.1:{port}"),
            "{what}: only front end {fe} serves:\n{}",
            lines.join("\n")
        );
    }
}

/// lego through nginx for `name` (http-01 on the validation port), its
/// chain verified against ROOT_CERT; returns nginx's lines of the run.
async fn lego_issues(mn: &Multinode, dir: &std::path::Path, name: &str) -> Vec<String> {
    let before = mn.log("nginx-access").lines().count();
    let lego = Lego::at(mn.directory(), mn.tls_ca(), &dir.join(name));
    let listen = format!("127.0.0.1:{}", http_port(mn));
    lego.ok(
        &["--domains", name, "--http", "--http.port", &listen],
        &["run"],
        &[],
    )
    .await;
    let leaf = verify_chain(dir, mn.root_cert(), &lego.bundle(name));
    assert_eq!(dns_sans(&leaf), vec![name]);
    upstreams_since(mn, before)
}

/// An instant-acme account through nginx.
async fn account(mn: &Multinode) -> Account {
    let (account, _) = account_builder_trusting(mn.tls_ca())
        .create(
            &NewAccount {
                contact: &[],
                terms_of_service_agreed: true,
                only_return_existing: false,
            },
            mn.directory().to_owned(),
            None,
        )
        .await
        .unwrap_or_else(|e| panic!("instant-acme account through nginx: {e}"));
    account
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certbot_lego_nonces_rollover_and_finalize_race_across_front_ends() {
    across_front_ends(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgres_certbot_lego_nonces_rollover_and_finalize_race_across_front_ends() {
    across_front_ends(Db::Postgres).await;
}

async fn across_front_ends(db: Db) {
    let dns = DnsServer::start().await;
    let mn = up(&dns, Vec::new(), db).await;
    let port = http_port(&mn).to_string();
    let dir = tempfile::tempdir().expect("tempdir");

    // Debian's certbot, standalone http-01, through nginx.
    let before = mn.log("nginx-access").lines().count();
    let certbot = Certbot::at(mn.directory(), mn.tls_ca(), &dir.path().join("certbot"));
    let name = "certbot.example.org";
    certbot
        .ok(&[
            "certonly",
            "--standalone",
            "--http-01-port",
            &port,
            "--http-01-address",
            "127.0.0.1",
            "-d",
            name,
            "--agree-tos",
            "--no-eff-email",
            "--register-unsafely-without-email",
        ])
        .await;
    let chain = std::fs::read_to_string(certbot.live(name).join("fullchain.pem"))
        .expect("certbot's fullchain.pem");
    let leaf = verify_chain(dir.path(), mn.root_cert(), &chain);
    assert_eq!(dns_sans(&leaf), vec![name]);
    served_by_both(&mn, &upstreams_since(&mn, before), "certbot");

    // Debian's lego, http-01 on its own server, through nginx.
    let lines = lego_issues(&mn, dir.path(), "lego.example.org").await;
    served_by_both(&mn, &lines, "lego");

    // A nonce handed out by A, used at B: accepted once, refused twice.
    let raw = RawClient::connect(mn.tls_ca(), mn.directory()).await;
    let a = raw.routed(mn.base_url(), mn.frontend_origin("a"));
    let b = raw.routed(mn.base_url(), mn.frontend_origin("b"));
    let alice = JwsAccount::create(&a).await;
    let body = alice.sign(&a.nonce().await, &alice.kid, None);
    let rsp = b.post_jose(&alice.kid, &body).await;
    assert_eq!(rsp.status, StatusCode::OK, "A's nonce at B: {rsp:?}");
    let rsp = b.post_jose(&alice.kid, &body).await;
    let problem = rsp.assert_problem("A's nonce at B, twice", &["badNonce"]);
    assert_eq!(rsp.status, StatusCode::BAD_REQUEST, "{problem}");
    assert_eq!(
        problem["type"], "urn:ietf:params:acme:error:badNonce",
        "{problem}"
    );

    // Key rollover at A: B refuses the old key at once.
    let bob = JwsAccount::create(&b).await;
    let new_key = SigningKey::generate(Alg::Es256).expect("key");
    let url = a.url("keyChange");
    let inner = bob.key_change_inner(&new_key, &url);
    let rsp = a
        .post_jose(&url, &bob.sign(&a.nonce().await, &url, Some(&inner)))
        .await;
    assert_eq!(rsp.status, StatusCode::OK, "keyChange at A: {rsp:?}");
    let old = bob.sign(&b.nonce().await, &bob.kid, None);
    b.post_jose(&bob.kid, &old).await.assert_problem(
        "the old key at B after the rollover at A",
        &["malformed", "unauthorized"],
    );
    let renewed = JwsAccount {
        key: new_key,
        kid: bob.kid.clone(),
    };
    let rsp = b
        .post_jose(&bob.kid, &renewed.sign(&b.nonce().await, &bob.kid, None))
        .await;
    assert_eq!(rsp.status, StatusCode::OK, "the new key at B: {rsp:?}");

    // The same order finalized at A and at B at once: one certificate.
    let http = Http01Server::start(http_port(&mn)).await;
    let session = Session::with_account(&a, alice);
    let name = "race.example.org";
    let (order_url, order) = session.new_order(&[identifier(name)]).await;
    session.answer_http01(&order, &http).await;
    let order = session.settle(&order_url).await;
    assert_eq!(order["status"], "ready", "{order}");
    let finalize = order["finalize"].as_str().expect("finalize URL");
    let (der, _key) = csr(&[name]);
    let payload = json!({"csr": akamu_jose::b64(&der)});
    let at_a = session
        .account
        .sign(&a.nonce().await, finalize, Some(&payload));
    let at_b = session
        .account
        .sign(&b.nonce().await, finalize, Some(&payload));
    let (ra, rb) = tokio::join!(a.post_jose(finalize, &at_a), b.post_jose(finalize, &at_b));
    let won = [&ra, &rb].iter().filter(|r| r.status.is_success()).count();
    assert_eq!(won, 1, "exactly one finalize wins: A {ra:?}, B {rb:?}");
    for r in [&ra, &rb].into_iter().filter(|r| !r.status.is_success()) {
        r.assert_problem("the losing finalize", &["orderNotReady"]);
    }
    let done = session.settle(&order_url).await;
    assert_eq!(done["status"], "valid", "{done}");
    let cert_url = done["certificate"].as_str().expect("certificate URL");
    let from_a = session.post_ok(cert_url, None).await.body;
    let from_b = Session::with_account(&b, session.account)
        .post_ok(cert_url, None)
        .await
        .body;
    assert_eq!(from_a, from_b, "A and B serve the same certificate");
    let chain = String::from_utf8(from_a.to_vec()).expect("PEM");
    verify_chain(dir.path(), mn.root_cert(), &chain);
    let audit = std::fs::read_to_string(mn.var("AUDIT_LOG")).expect("audit log");
    let signed = audit
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|r| r["serial"].is_string() && r["names"] == json!([format!("dns:{name}")]))
        .count();
    assert_eq!(
        signed, 1,
        "the signer signed the raced order once:\n{audit}"
    );
    drop(http);
    tokio::time::sleep(Duration::from_millis(300)).await;

    // B stopped: nginx sends everything to A, and lego is served there.
    mn.signal("fe-b", Signal::SIGTERM).await;
    let lines = lego_issues(&mn, dir.path(), "lego-at-a.example.org").await;
    served_only_by(&mn, &lines, "a", "lego with B stopped");
}

/// One issuance for `name` with instant-acme, every failure returned.
async fn try_issue(account: &Account, http: &Http01Server, name: &str) -> Result<String, String> {
    let ids = [Identifier::Dns(name.to_owned())];
    let mut order = account
        .new_order(&NewOrder::new(&ids))
        .await
        .map_err(|e| format!("new-order: {e}"))?;
    let mut authzs = order.authorizations();
    while let Some(authz) = authzs.next().await {
        let mut authz = authz.map_err(|e| format!("authorization: {e}"))?;
        if authz.status != AuthorizationStatus::Pending {
            continue;
        }
        let mut ch = authz
            .challenge(ChallengeType::Http01)
            .ok_or("no http-01 challenge")?;
        http.set(&ch.token, ch.key_authorization().as_str());
        ch.set_ready()
            .await
            .map_err(|e| format!("challenge: {e}"))?;
    }
    let policy = RetryPolicy::new()
        .initial_delay(Duration::from_millis(200))
        .backoff(1.5)
        .timeout(Duration::from_secs(40));
    let status = order
        .poll_ready(&policy)
        .await
        .map_err(|e| format!("poll ready: {e}"))?;
    if status != OrderStatus::Ready {
        return Err(format!("order is {status:?}"));
    }
    let (der, _key) = csr(&[name]);
    order
        .finalize_csr(&der)
        .await
        .map_err(|e| format!("finalize: {e}"))?;
    order
        .poll_certificate(&policy)
        .await
        .map_err(|e| format!("certificate: {e}"))
}

/// Clients, certificates each, and attempts per certificate.
const CLIENTS: usize = 4;
const PER_CLIENT: usize = 3;
const ATTEMPTS: usize = 6;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_a_front_end_under_load_loses_no_certificate() {
    kill_9_under_load(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgres_kill_9_of_a_front_end_under_load_loses_no_certificate() {
    kill_9_under_load(Db::Postgres).await;
}

async fn kill_9_under_load(db: Db) {
    let dns = DnsServer::start().await;
    let mn = Arc::new(up(&dns, Vec::new(), db).await);
    let http = Arc::new(Http01Server::start(http_port(&mn)).await);
    let issued = Arc::new(AtomicUsize::new(0));

    let mut clients = Vec::new();
    for c in 0..CLIENTS {
        let (mn, http, issued) = (mn.clone(), http.clone(), issued.clone());
        clients.push(tokio::spawn(async move {
            let account = account(&mn).await;
            let mut chains = Vec::new();
            let mut failures = Vec::new();
            for i in 0..PER_CLIENT {
                let mut attempt = 0;
                loop {
                    let name = format!("c{c}-{i}-{attempt}.example.org");
                    match tokio::time::timeout(
                        Duration::from_secs(60),
                        try_issue(&account, &http, &name),
                    )
                    .await
                    {
                        Ok(Ok(chain)) => {
                            issued.fetch_add(1, Ordering::SeqCst);
                            chains.push((name, chain));
                            break;
                        }
                        Ok(Err(e)) => failures.push(format!("{name}: {e}")),
                        Err(_) => failures.push(format!("{name}: no certificate within 60 s")),
                    }
                    attempt += 1;
                    assert!(
                        attempt < ATTEMPTS,
                        "client {c} gave up on certificate {i}: {failures:#?}"
                    );
                    tokio::time::sleep(Duration::from_millis(300)).await;
                }
            }
            (chains, failures)
        }));
    }

    // Kill A once the load is under way (two certificates issued).
    let deadline = Instant::now() + Duration::from_secs(60);
    while issued.load(Ordering::SeqCst) < 2 {
        assert!(Instant::now() < deadline, "no certificate within 60 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let before_kill = mn.log("nginx-access").lines().count();
    let so_far: Vec<String> = upstreams_since(&mn, 0);
    served_by_both(&mn, &so_far, "the load before the kill");
    mn.signal("fe-a", Signal::SIGKILL).await;

    let mut chains = Vec::new();
    let mut failures = Vec::new();
    for client in clients {
        let (c, f) = client.await.expect("client task");
        chains.extend(c);
        failures.extend(f);
    }
    eprintln!(
        "{} certificates, {} failed attempts (retried): {failures:#?}",
        chains.len(),
        failures.len()
    );
    assert_eq!(chains.len(), CLIENTS * PER_CLIENT, "every client finished");
    // After the kill, B served the rest through nginx.
    let after: Vec<String> = upstreams_since(&mn, before_kill);
    let port_b = mn
        .frontend_origin("b")
        .rsplit(':')
        .next()
        .expect("port")
        .to_owned();
    assert!(
        after
            .iter()
            .any(|l| l.contains(&format!("upstream=127.0.0.1:{port_b}")) && l.contains("\" 200 ")),
        "B served after the kill:\n{}",
        after.join("\n")
    );

    // Every certificate a client received is in the database.
    let dir = tempfile::tempdir().expect("tempdir");
    let stored = mn.stored_certificates();
    for (name, chain) in &chains {
        let leaf = verify_chain(dir.path(), mn.root_cert(), chain);
        assert_eq!(dns_sans(&leaf), vec![name.as_str()]);
        let der = leaf_of(chain).to_der().expect("der");
        assert!(
            stored.contains(&der),
            "{name}'s certificate is not in the database"
        );
    }

    // A is gone: lego through nginx is served by B alone.
    drop(http);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let lines = lego_issues(&mn, dir.path(), "lego-at-b.example.org").await;
    served_only_by(&mn, &lines, "b", "lego after A's kill");

    // The audit log and the database agree: whatever A was signing when it
    // died is picked up by the lease holder's sweep (work older than 60 s).
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let run = akamu_cli(
            &[
                "audit",
                "reconcile",
                "--audit-log",
                mn.var("AUDIT_LOG"),
                "--config",
                mn.var("CONFIG_B"),
            ],
            &[],
        );
        if run.success() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "audit reconcile still fails 120 s after the kill: {}",
            run.all_output()
        );
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
}

/// Orders `name` through nginx, answers http-01 correctly, and returns the
/// challenge's problem once the authorization is invalid.
async fn failed_validation(mn: &Multinode, http: &Http01Server, name: &str) -> Value {
    let raw = RawClient::connect(mn.tls_ca(), mn.directory()).await;
    Session::new(&raw).await.failed_http01(http, name).await
}

/// Asserts a refusal's problem names `failed` and not `fine`.
fn assert_names(problem: &Value, failed: &[&str], fine: &[&str]) {
    let detail = problem["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("2 of 5 remote perspectives did not corroborate"),
        "{problem}"
    );
    for p in failed {
        assert!(detail.contains(p), "{p:?} named in {problem}");
    }
    for p in fine {
        assert!(!detail.contains(p), "{p:?} not named in {problem}");
    }
    assert!(
        problem["type"]
            .as_str()
            .is_some_and(|t| t.starts_with("urn:ietf:params:acme:error:")),
        "{problem}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn perspectives_quorum_and_a_lying_perspective() {
    let dns = DnsServer::start().await;
    // p5's resolver lies about the hijacked names: another address, where
    // the applicant's server is not.
    let liar = DnsServer::start().await;
    for name in ["hijacked.example.org", "hijacked-too.example.org"] {
        liar.records()
            .set_a(name, &["127.0.0.2".parse().expect("ip")]);
    }
    let mn = up(&dns, vec![("p5", liar.addr())], Db::Sqlite).await;
    let http = Http01Server::start(http_port(&mn)).await;
    let account = account(&mn).await;
    let dir = tempfile::tempdir().expect("tempdir");

    // The lying perspective is outvoted: four of five corroborate.
    let name = "hijacked.example.org";
    let chain = try_issue(&account, &http, name)
        .await
        .unwrap_or_else(|e| panic!("{name} despite p5's lie: {e}"));
    let leaf = verify_chain(dir.path(), mn.root_cert(), &chain);
    assert_eq!(dns_sans(&leaf), vec![name]);

    // One perspective stopped: still issued (4 of 5).
    mn.signal("p1", Signal::SIGTERM).await;
    let name = "one-down.example.org";
    let chain = try_issue(&account, &http, name)
        .await
        .unwrap_or_else(|e| panic!("{name} with p1 down: {e}"));
    verify_chain(dir.path(), mn.root_cert(), &chain);

    // p1 down and p5 lying: refused, naming both (so p5 did dissent above).
    let problem = failed_validation(&mn, &http, "hijacked-too.example.org").await;
    assert_names(&problem, &["p1 (ARIN)", "p5 (AFRINIC)"], &["p2 (RIPE)"]);

    // Two perspectives stopped: refused, naming both.
    mn.signal("p2", Signal::SIGTERM).await;
    let problem = failed_validation(&mn, &http, "two-down.example.org").await;
    assert_names(&problem, &["p1 (ARIN)", "p2 (RIPE)"], &["p5 (AFRINIC)"]);
    assert_eq!(
        problem["type"], "urn:ietf:params:acme:error:serverInternal",
        "unreachable perspectives are the CA's fault: {problem}"
    );
}
