//! A user's happy paths with instant-acme: account → order → challenge →
//! finalize → download, judged by `openssl verify` and the leaf's SANs.

use std::time::Duration;

use instant_acme::{AuthorizationStatus, ChallengeStatus, ChallengeType, OrderStatus};

use crate::support::certs::{dns_sans, san_count, verify_chain};
use crate::support::client::{
    RawClient, acme_account, answer_http01, finalize_and_download, issue_http01, new_order,
    wait_ready,
};
use crate::support::dns::DnsServer;
use crate::support::http01::Http01Server;
use crate::support::procs::{Ca, CaOptions};

/// A CA whose validator resolves names through `dns` and checks CAA
/// (RFC 8659) with the identity `akamu.test`: the test zones publish no CAA
/// records unless a test sets some, and an absent record set permits, so
/// every client test (lego, certbot, instant-acme, rustls-acme) also runs
/// through the CAA lookups.
pub(crate) async fn start_ca(dns: &DnsServer) -> Ca {
    Ca::start_async(CaOptions {
        dns_resolver_addr: Some(dns.addr()),
        server_toml: "caa_identities = [\"akamu.test\"]\n".into(),
        ..CaOptions::default()
    })
    .await
}

/// RFC 8555 §7.1–7.4, §8.3: two names over http-01; the chain verifies
/// with openssl against the CA certificate alone, and the SANs are exactly
/// the ordered names.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http01_two_names_chain_verifies_with_openssl() {
    let dns = DnsServer::start().await;
    let ca = start_ca(&dns).await;
    let http = Http01Server::start(ca.http_validation_port()).await;
    let account = acme_account(&ca).await;

    let names = ["www.example.org", "api.example.org"];
    let issued = issue_http01(&account, &http, &names).await;
    assert!(http.hits() >= 2, "the validator fetched both tokens");

    let dir = tempfile::tempdir().expect("tempdir");
    let leaf = verify_chain(dir.path(), ca.ca_cert(), &issued.chain_pem);
    assert_eq!(dns_sans(&leaf), vec!["api.example.org", "www.example.org"]);
    assert_eq!(san_count(&leaf), 2, "no SAN beyond the two ordered names");

    // The certificate is for the key in our CSR.
    let key = openssl::pkey::PKey::private_key_from_pem(issued.key_pem.as_bytes()).expect("key");
    let leaf_key = leaf.public_key().expect("leaf public key");
    assert!(leaf_key.public_eq(&key), "the leaf certifies the CSR's key");

    // RFC 8555 §6.3: the certificate is fetched by POST-as-GET (as
    // instant-acme did above); a plain GET is 405 (the reference's public
    // GET is the STAR exception only; conformance::get_elsewhere_is_405).
    let raw = RawClient::new(&ca).await;
    let rsp = raw.get(&issued.cert_url).await;
    rsp.assert_problem("GET of the certificate URL", &["malformed"]);
    assert_eq!(rsp.status, http::StatusCode::METHOD_NOT_ALLOWED);
}

/// RFC 8555 §8.4: dns-01 through the TXT records of the test DNS server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dns01_issuance_chain_verifies() {
    let dns = DnsServer::start().await;
    let ca = start_ca(&dns).await;
    let account = acme_account(&ca).await;

    let names = ["dns01.akamu.test"];
    let mut order = new_order(&account, &names).await;
    {
        let mut authzs = order.authorizations();
        while let Some(authz) = authzs.next().await {
            let mut authz = authz.expect("authorization");
            assert_eq!(authz.status, AuthorizationStatus::Pending);
            let mut challenge = authz
                .challenge(ChallengeType::Dns01)
                .expect("the CA offers dns-01");
            let name = format!("_acme-challenge.{}", challenge.identifier());
            dns.set_txt(&name, &[&challenge.key_authorization().dns_value()]);
            challenge.set_ready().await.expect("respond to dns-01");
        }
    }
    wait_ready(&mut order).await;
    let issued = finalize_and_download(&mut order, &names).await;

    let dir = tempfile::tempdir().expect("tempdir");
    let leaf = verify_chain(dir.path(), ca.ca_cert(), &issued.chain_pem);
    assert_eq!(dns_sans(&leaf), vec!["dns01.akamu.test"]);
}

/// RFC 8555 §8.3: a wrong key authorization makes the challenge, the
/// authorization and the order invalid, with a problem on the challenge.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http01_wrong_answer_makes_the_order_invalid() {
    let dns = DnsServer::start().await;
    let ca = start_ca(&dns).await;
    let http = Http01Server::start(ca.http_validation_port()).await;
    let account = acme_account(&ca).await;

    let mut order = new_order(&account, &["wrong.example.org"]).await;
    {
        let mut authzs = order.authorizations();
        let mut authz = authzs
            .next()
            .await
            .expect("one authorization")
            .expect("authorization");
        let mut challenge = authz.challenge(ChallengeType::Http01).expect("http-01");
        http.set(&challenge.token, "not-the-key-authorization");
        // The CA waits briefly for the validation, so its answer may already
        // carry the failure; either way the order must end up invalid.
        match challenge.set_ready().await {
            Ok(()) => {}
            Err(instant_acme::Error::Api(p)) => assert_eq!(
                p.r#type.as_deref(),
                Some("urn:ietf:params:acme:error:incorrectResponse"),
                "{p:?}"
            ),
            Err(e) => panic!("respond to challenge: {e}"),
        }
    }

    // Poll the order until it leaves pending/processing.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let status = loop {
        let state = order.refresh().await.expect("refresh order");
        if !matches!(state.status, OrderStatus::Pending | OrderStatus::Processing) {
            break state.status;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "order still {:?} after 60 s",
            state.status
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!(
        status,
        OrderStatus::Invalid,
        "a failed challenge invalidates the order"
    );

    let mut authzs = order.authorizations();
    let mut authz = authzs.next().await.expect("one").expect("authorization");
    let state = authz.refresh().await.expect("refresh authorization");
    assert_eq!(state.status, AuthorizationStatus::Invalid);
    let challenge = state
        .challenges
        .iter()
        .find(|c| c.r#type == ChallengeType::Http01)
        .expect("http-01 challenge");
    assert_eq!(challenge.status, ChallengeStatus::Invalid);
    let problem = challenge
        .error
        .as_ref()
        .expect("an invalid challenge carries an error");
    let ty = problem.r#type.as_deref().unwrap_or_default();
    assert!(
        ty == "urn:ietf:params:acme:error:incorrectResponse"
            || ty == "urn:ietf:params:acme:error:unauthorized",
        "challenge error type should be incorrectResponse (or unauthorized): {problem:?}"
    );
}

/// Two orders from one account, one after the other, both issue
/// (the second reuses nothing it should not).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_order_from_same_account_issues() {
    let dns = DnsServer::start().await;
    let ca = start_ca(&dns).await;
    let http = Http01Server::start(ca.http_validation_port()).await;
    let account = acme_account(&ca).await;

    let first = issue_http01(&account, &http, &["one.example.org"]).await;
    let mut order = new_order(&account, &["two.example.org"]).await;
    answer_http01(&mut order, &http).await;
    wait_ready(&mut order).await;
    let second = finalize_and_download(&mut order, &["two.example.org"]).await;
    assert_ne!(first.order_url, second.order_url);

    let dir = tempfile::tempdir().expect("tempdir");
    let a = verify_chain(dir.path(), ca.ca_cert(), &first.chain_pem);
    let b = verify_chain(dir.path(), ca.ca_cert(), &second.chain_pem);
    assert_eq!(dns_sans(&a), vec!["one.example.org"]);
    assert_eq!(dns_sans(&b), vec!["two.example.org"]);
    assert_ne!(
        a.serial_number().to_bn().expect("bn"),
        b.serial_number().to_bn().expect("bn"),
        "two certificates never share a serial"
    );
}

/// The validator resolves through the test DNS server only: a name it
/// answers NXDOMAIN for fails validation with a `dns` problem.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http01_for_an_nxdomain_name_fails_with_a_dns_problem() {
    let dns = DnsServer::start().await;
    let ca = start_ca(&dns).await;
    let http = Http01Server::start(ca.http_validation_port()).await;
    let account = acme_account(&ca).await;

    dns.remove_name("gone.example.org");
    let mut order = new_order(&account, &["gone.example.org"]).await;
    answer_http01(&mut order, &http).await;

    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let challenge = loop {
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
            break (challenge.status, challenge.error.clone());
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "challenge never settled"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!(
        challenge.0,
        ChallengeStatus::Invalid,
        "an NXDOMAIN name cannot validate"
    );
    let problem = challenge.1.expect("an invalid challenge carries an error");
    assert_eq!(
        problem.r#type.as_deref(),
        Some("urn:ietf:params:acme:error:dns"),
        "NXDOMAIN is a dns problem: {problem:?}"
    );
    assert_eq!(
        http.hits(),
        0,
        "nothing was fetched for an unresolvable name"
    );
}
