//! Protocol details of RFC 8555 (and RFC 8738 IP identifiers) that a
//! client relies on: `Retry-After` while something is processing, which
//! challenges are offered for which identifier, the IP-address flow with
//! instant-acme, and a failed challenge invalidating its authorization and
//! order with the error recorded.

use std::time::Duration;

use http::StatusCode;
use instant_acme::{AuthorizationStatus, ChallengeType, Identifier, NewOrder};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::json;

use crate::support::acme::{Session, challenge, challenge_types, dns, ip};
use crate::support::certs::verify_with_sans;
use crate::support::client::{
    RawClient, RawResponse, acme_account, csr, finalize_and_download, wait_ready,
};
use crate::support::dns::DnsServer;
use crate::support::http01::Http01Server;
use crate::support::procs::{Ca, CaOptions};

struct Fixture {
    _dns: DnsServer,
    ca: Ca,
    http: Http01Server,
    raw: RawClient,
}

impl Fixture {
    async fn new() -> Fixture {
        Self::with_server_toml("").await
    }

    async fn with_server_toml(server_toml: &str) -> Fixture {
        let dns = DnsServer::start().await;
        let ca = Ca::start_async(CaOptions {
            dns_resolver_addr: Some(dns.addr()),
            server_toml: server_toml.into(),
            ..CaOptions::default()
        })
        .await;
        let http = Http01Server::start(ca.http_validation_port()).await;
        let raw = RawClient::new(&ca).await;
        Fixture {
            _dns: dns,
            ca,
            http,
            raw,
        }
    }
}

fn retry_after(rsp: &RawResponse) -> Option<u64> {
    rsp.headers
        .get(http::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
}

/// Resumes a SIGSTOPped process when dropped (also when the test fails).
struct Resume(i32);

impl Drop for Resume {
    fn drop(&mut self) {
        let _ = kill(Pid::from_raw(self.0), Signal::SIGCONT);
    }
}

/// §7.5.1: the answer to a challenge response waits up to
/// `challenge_wait_ms` for the validation, so a quick validation is
/// answered with its result (`valid`, or `invalid` with the problem) and the
/// authorization and order are settled without polling; with
/// `challenge_wait_ms = 0` the answer is `processing` at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn challenge_answer_carries_a_quick_validation_result() {
    let f = Fixture::with_server_toml("challenge_wait_ms = 8000").await;
    let s = Session::new(&f.raw).await;

    let (order_url, order) = s.new_order(&[dns("quick.example.org")]).await;
    let authz_url = Session::authz_urls(&order)[0].clone();
    let ch = challenge(&s.authz(&authz_url).await, "http-01");
    let token = ch["token"].as_str().expect("token");
    f.http.set(token, &s.key_authorization(token));
    let rsp = s
        .post_ok(ch["url"].as_str().expect("url"), Some(&json!({})))
        .await;
    let answer = rsp.json();
    assert_eq!(answer["status"], "valid", "challenge answer: {answer}");
    assert!(answer["validated"].is_string(), "{answer}");
    assert!(
        retry_after(&rsp).is_none(),
        "nothing to wait for: {:?}",
        rsp.headers
    );
    assert_eq!(s.authz(&authz_url).await["status"], "valid");
    let order = s.post_ok(&order_url, None).await.json();
    assert_eq!(order["status"], "ready", "no polling needed: {order}");

    let (_, order) = s.new_order(&[dns("wrong-quick.example.org")]).await;
    let authz_url = Session::authz_urls(&order)[0].clone();
    let ch = challenge(&s.authz(&authz_url).await, "http-01");
    f.http.set(
        ch["token"].as_str().expect("token"),
        "not-the-key-authorization",
    );
    let answer = s
        .post_ok(ch["url"].as_str().expect("url"), Some(&json!({})))
        .await
        .json();
    assert_eq!(answer["status"], "invalid", "challenge answer: {answer}");
    assert_eq!(
        answer["error"]["type"], "urn:ietf:params:acme:error:incorrectResponse",
        "{answer}"
    );
    assert_eq!(s.authz(&authz_url).await["status"], "invalid");

    let f = Fixture::with_server_toml("challenge_wait_ms = 0").await;
    let s = Session::new(&f.raw).await;
    let (order_url, order) = s.new_order(&[dns("later.example.org")]).await;
    let authz_url = Session::authz_urls(&order)[0].clone();
    let ch = challenge(&s.authz(&authz_url).await, "http-01");
    let token = ch["token"].as_str().expect("token");
    f.http.set(token, &s.key_authorization(token));
    f.http.set_delay(Duration::from_millis(300));
    let rsp = s
        .post_ok(ch["url"].as_str().expect("url"), Some(&json!({})))
        .await;
    assert_eq!(rsp.json()["status"], "processing", "no waiting configured");
    assert!(retry_after(&rsp).is_some(), "{:?}", rsp.headers);
    f.http.set_delay(Duration::ZERO);
    assert_eq!(s.settle(&order_url).await["status"], "ready");
}

/// §7.5.1 / §7.4: a challenge, its authorization and an order that are
/// `processing` carry `Retry-After`. The validator is held by a slow
/// http-01 answer; the signer by SIGSTOP while a finalize waits for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processing_resources_carry_retry_after() {
    let f = Fixture::new().await;
    let s = Session::new(&f.raw).await;
    let name = "slow.example.org";
    let (order_url, order) = s.new_order(&[dns(name)]).await;
    let authz_url = Session::authz_urls(&order)[0].clone();
    let authz = s.authz(&authz_url).await;
    let ch = challenge(&authz, "http-01");
    let token = ch["token"].as_str().expect("token");
    f.http.set(token, &s.key_authorization(token));
    f.http.set_delay(Duration::from_millis(1500));

    let rsp = s
        .post_ok(ch["url"].as_str().expect("url"), Some(&json!({})))
        .await;
    assert_eq!(rsp.json()["status"], "processing", "challenge answer");
    assert!(
        retry_after(&rsp).is_some(),
        "a processing challenge carries Retry-After: {:?}",
        rsp.headers
    );
    let rsp = s.post_ok(&authz_url, None).await;
    assert_eq!(rsp.json()["status"], "pending");
    assert!(
        retry_after(&rsp).is_some(),
        "an authorization with a processing challenge carries Retry-After: {:?}",
        rsp.headers
    );
    f.http.set_delay(Duration::ZERO);
    let order = s.settle(&order_url).await;
    assert_eq!(order["status"], "ready", "{order}");

    // Hold the signer so the finalized order stays processing.
    let signer = f.ca.signer_pid().expect("a running signer");
    kill(Pid::from_raw(signer), Signal::SIGSTOP).expect("SIGSTOP the signer");
    let resume = Resume(signer);
    let (der, _) = csr(&[name]);
    let finalize = {
        let s = Session::with_account(
            &f.raw,
            crate::support::client::JwsAccount {
                key: akamu_jose::SigningKey::from_pem(&s.account.key.to_pem().expect("pem"))
                    .expect("key"),
                kid: s.account.kid.clone(),
            },
        );
        let order = order.clone();
        tokio::spawn(async move { s.finalize_raw(&order, &der).await })
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let rsp = loop {
        let rsp = s.post_ok(&order_url, None).await;
        if rsp.json()["status"] == "processing" {
            break rsp;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the order never showed processing: {}",
            rsp.json()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(
        retry_after(&rsp).is_some(),
        "a processing order carries Retry-After: {:?}",
        rsp.headers
    );
    drop(resume);
    let rsp = finalize.await.expect("finalize task");
    assert!(
        rsp.status.is_success(),
        "finalize once the signer resumed: {} {}",
        rsp.status,
        String::from_utf8_lossy(&rsp.body)
    );
    let order = s.settle(&order_url).await;
    assert_eq!(order["status"], "valid", "{order}");
}

/// §7.1.3 / §8: a wildcard is offered dns-01 only; an IP address (RFC
/// 8738) is offered http-01 and tls-alpn-01 but never dns-01; a plain name
/// all three; a v3 .onion name (RFC 9799) only onion-csr-01, and a v2
/// .onion name is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offered_challenges_follow_the_identifier() {
    let f = Fixture::new().await;
    let s = Session::new(&f.raw).await;

    let (_, order) = s.new_order(&[dns("*.wild.example.org")]).await;
    let authz = s.authz(&Session::authz_urls(&order)[0]).await;
    assert_eq!(challenge_types(&authz), vec!["dns-01"], "wildcard: {authz}");
    assert_eq!(authz["identifier"], dns("wild.example.org"), "{authz}");
    assert_eq!(authz["wildcard"], json!(true), "{authz}");

    let (_, order) = s.new_order(&[ip("127.0.0.1")]).await;
    assert_eq!(order["identifiers"], json!([ip("127.0.0.1")]));
    let authz = s.authz(&Session::authz_urls(&order)[0]).await;
    assert_eq!(
        challenge_types(&authz),
        vec!["http-01", "tls-alpn-01"],
        "IP identifier: {authz}"
    );
    assert_eq!(authz["identifier"], ip("127.0.0.1"));

    let (_, order) = s.new_order(&[dns("plain.example.org")]).await;
    let authz = s.authz(&Session::authz_urls(&order)[0]).await;
    assert_eq!(
        challenge_types(&authz),
        vec!["dns-01", "http-01", "tls-alpn-01"],
        "plain name: {authz}"
    );
    assert!(authz.get("wildcard").is_none_or(|w| w == &json!(false)));

    // RFC 9799: a .onion name is never offered dns-01 (nor, without a path
    // to Tor, http-01 or tls-alpn-01); a version 2 name is refused.
    let (_, order) = s
        .new_order(&[dns(
            "pg6mmjiyjmcrsslvykfwnntlaru7p5svn6y2ymmju6nubxndf4pscryd.onion",
        )])
        .await;
    let authz = s.authz(&Session::authz_urls(&order)[0]).await;
    assert_eq!(challenge_types(&authz), vec!["onion-csr-01"], "{authz}");
    let rsp = s
        .new_order_raw(&[dns("duskgytldkxiuqc6.onion")], json!({}))
        .await;
    rsp.assert_problem("a v2 .onion name", &["rejectedIdentifier"]);
    assert_eq!(rsp.status, http::StatusCode::BAD_REQUEST);
}

/// RFC 8738 with instant-acme's `Identifier::Ip`: http-01 on 127.0.0.1,
/// a certificate with exactly one IP SAN. A CSR naming a DNS name (or an
/// extra address) for an IP order is `badCSR`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ip_identifier_certificate_via_http01() {
    let f = Fixture::new().await;
    let account = acme_account(&f.ca).await;
    let addr: std::net::IpAddr = "127.0.0.1".parse().expect("addr");
    let mut order = account
        .new_order(&NewOrder::new(&[Identifier::Ip(addr)]))
        .await
        .expect("new-order for an IP address");
    {
        let mut authzs = order.authorizations();
        let mut authz = authzs.next().await.expect("one").expect("authorization");
        assert_eq!(authz.status, AuthorizationStatus::Pending);
        assert!(
            !authz
                .challenges
                .iter()
                .any(|c| c.r#type == ChallengeType::Dns01),
            "dns-01 is not offered for an IP address"
        );
        let mut ch = authz
            .challenge(ChallengeType::Http01)
            .expect("http-01 for an IP address");
        f.http.set(&ch.token, ch.key_authorization().as_str());
        ch.set_ready().await.expect("respond");
    }
    wait_ready(&mut order).await;

    for bad in [
        &["127.0.0.1", "localhost"][..],
        &["127.0.0.1", "127.0.0.2"][..],
    ] {
        let (der, _) = csr(bad);
        let err = order
            .finalize_csr(&der)
            .await
            .err()
            .unwrap_or_else(|| panic!("CSR for {bad:?} must be refused"));
        assert_eq!(
            crate::support::client::problem_type(&err),
            "badCSR",
            "CSR {bad:?}: {err:?}"
        );
    }

    let issued = finalize_and_download(&mut order, &["127.0.0.1"]).await;
    let dir = tempfile::tempdir().expect("tempdir");
    verify_with_sans(
        dir.path(),
        f.ca.ca_cert(),
        &issued.chain_pem,
        &[],
        &["127.0.0.1"],
    );
}

/// §7.1.6: a failed challenge makes the challenge, its authorization and
/// the order invalid, with the error on the challenge and on the order;
/// the order cannot be finalized and its other authorization is not
/// affected for reuse.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_challenge_invalidates_authz_and_order_with_the_error() {
    let f = Fixture::new().await;
    let s = Session::new(&f.raw).await;
    let (order_url, order) = s.new_order(&[dns("fail.example.org")]).await;
    let authz_url = Session::authz_urls(&order)[0].clone();
    let authz = s.authz(&authz_url).await;
    let ch = challenge(&authz, "http-01");
    let token = ch["token"].as_str().expect("token");
    f.http.set(token, "wrong-key-authorization");
    s.post_ok(ch["url"].as_str().expect("url"), Some(&json!({})))
        .await;

    let authz = s.settle(&authz_url).await;
    assert_eq!(authz["status"], "invalid", "authorization: {authz}");
    let ch = challenge(&authz, "http-01");
    assert_eq!(ch["status"], "invalid", "challenge: {ch}");
    let ty = ch["error"]["type"].as_str().unwrap_or_default();
    assert!(
        ty == "urn:ietf:params:acme:error:incorrectResponse"
            || ty == "urn:ietf:params:acme:error:unauthorized",
        "challenge error: {ch}"
    );
    // The other challenges of the authorization cannot be tried any more.
    let other = challenge(&authz, "dns-01");
    let rsp = s
        .post(other["url"].as_str().expect("url"), Some(&json!({})))
        .await;
    rsp.assert_problem("answering a challenge of an invalid authorization", &[]);

    let order = s.settle(&order_url).await;
    assert_eq!(order["status"], "invalid", "order: {order}");
    let err = &order["error"];
    assert!(
        err["type"]
            .as_str()
            .is_some_and(|t| t.starts_with("urn:ietf:params:acme:error:")),
        "the invalid order records the error: {order}"
    );
    assert_eq!(
        err["type"], ch["error"]["type"],
        "the order's error is the challenge's: {order}"
    );
    let (der, _) = csr(&["fail.example.org"]);
    let rsp = s.finalize_raw(&order, &der).await;
    rsp.assert_problem("finalizing an invalid order", &["orderNotReady"]);
    assert_eq!(rsp.status, StatusCode::FORBIDDEN);
}
