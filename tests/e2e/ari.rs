//! ACME Renewal Information (RFC 9773) judged by instant-acme and raw
//! requests: the directory's `renewalInfo`, the suggested window of a fresh
//! and of a revoked certificate, malformed and unknown identifiers, and
//! `replaces` in new-order (success, `alreadyReplaced`, another account's
//! certificate, no shared identifier, two concurrent replacements).

use std::time::Duration;

use http::StatusCode;
use instant_acme::{CertificateIdentifier, Identifier, NewOrder};
use rustls::pki_types::CertificateDer;
use serde_json::json;

use crate::issuance::start_ca;
use crate::support::acme::{Session, created, dns};
use crate::support::certs::leaf_of;
use crate::support::client::{
    RawClient, acme_account, answer_http01, finalize_and_download, issue_http01, problem_type,
    wait_ready,
};
use crate::support::dns::DnsServer;
use crate::support::http01::Http01Server;
use crate::support::procs::Ca;

/// A CA with its DNS and http-01 servers.
struct Fixture {
    _dns: DnsServer,
    ca: Ca,
    http: Http01Server,
}

impl Fixture {
    async fn new() -> Fixture {
        let dns = DnsServer::start().await;
        let ca = start_ca(&dns).await;
        let http = Http01Server::start(ca.http_validation_port()).await;
        Fixture {
            _dns: dns,
            ca,
            http,
        }
    }
}

/// The RFC 9773 identifier of a PEM chain's leaf, as instant-acme computes it.
fn cert_id(chain_pem: &str) -> CertificateIdentifier<'static> {
    let der = CertificateDer::from(leaf_of(chain_pem).to_der().expect("DER"));
    CertificateIdentifier::try_from(&der)
        .expect("instant-acme computes the identifier")
        .into_owned()
}

fn unix(t: &openssl::asn1::Asn1TimeRef) -> i64 {
    let epoch = openssl::asn1::Asn1Time::from_unix(0).expect("epoch");
    let d = epoch.diff(t).expect("diff");
    i64::from(d.days) * 86_400 + i64::from(d.secs)
}

/// RFC 9773 §4: a fresh 90-day certificate's window runs from two thirds of
/// its life to a day before it expires; Retry-After is the configured 6 h
/// plus at most a tenth; a revoked certificate's window lies in the past.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renewal_info_windows_for_fresh_and_revoked_certificates() {
    let f = Fixture::new().await;
    let account = acme_account(&f.ca).await;
    let issued = issue_http01(&account, &f.http, &["ari.example.org"]).await;
    let leaf = leaf_of(&issued.chain_pem);
    let (nb, na) = (unix(leaf.not_before()), unix(leaf.not_after()));

    let (info, retry) = account
        .renewal_info(&cert_id(&issued.chain_pem))
        .await
        .expect("renewal info");
    let start = info.suggested_window.start.unix_timestamp();
    let end = info.suggested_window.end.unix_timestamp();
    assert_eq!(start, nb + (na - nb) * 2 / 3, "window start: {info:?}");
    assert_eq!(end, na - 86_400, "window end: {info:?}");
    assert!(info.explanation_url.is_none());
    // instant-acme gives the Retry-After as a delay from now.
    assert!(
        retry <= Duration::from_secs(21_600 + 2_160) && retry >= Duration::from_secs(21_500),
        "Retry-After {retry:?}"
    );

    let der = leaf.to_der().expect("DER");
    account
        .revoke(&instant_acme::RevocationRequest {
            certificate: &CertificateDer::from(der),
            reason: None,
        })
        .await
        .expect("revoke");
    let (info, _) = account
        .renewal_info(&cert_id(&issued.chain_pem))
        .await
        .expect("renewal info after revocation");
    let now = time::OffsetDateTime::now_utc();
    assert!(
        info.suggested_window.end < now && info.suggested_window.start < info.suggested_window.end,
        "a revoked certificate is renewed now: {info:?}"
    );
}

/// Malformed identifiers are 400 `malformed`; a well-formed one that names
/// no certificate of ours (unknown serial, or our serial under another
/// key identifier) is 404; both as problem documents. POST is not allowed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renewal_info_refuses_malformed_and_unknown_identifiers() {
    let f = Fixture::new().await;
    let account = acme_account(&f.ca).await;
    let issued = issue_http01(&account, &f.http, &["known.example.org"]).await;
    let raw = RawClient::new(&f.ca).await;
    let dir = raw.get(f.ca.directory()).await;
    let base =
        serde_json::from_slice::<serde_json::Value>(&dir.body).expect("directory")["renewalInfo"]
            .as_str()
            .expect("the directory has renewalInfo")
            .to_owned();
    assert!(!base.ends_with('/'), "{base}");

    for bad in [
        "nodot",
        "aYhba4dGQEHhs3uEe6CuLN4ByNQ.",
        "aYhba4dGQEHhs3uEe6CuLN4ByNQ=.AIdlQyE",
        "aYhba4dGQEHhs3uEe6CuLN4ByNQ.h2VDIQ",
        "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AAEC",
    ] {
        let rsp = raw.get(&format!("{base}/{bad}")).await;
        rsp.assert_problem(bad, &["malformed"]);
        assert_eq!(rsp.status, StatusCode::BAD_REQUEST, "{bad}");
    }

    let known = cert_id(&issued.chain_pem).to_string();
    let (aki, serial) = known.split_once('.').expect("dot");
    for unknown in [
        format!("{aki}.AIdlQyE"),
        format!("aYhba4dGQEHhs3uEe6CuLN4ByNQ.{serial}"),
    ] {
        let rsp = raw.get(&format!("{base}/{unknown}")).await;
        rsp.assert_problem(&unknown, &["malformed"]);
        assert_eq!(rsp.status, StatusCode::NOT_FOUND, "{unknown}");
    }
    let rsp = raw.get(&format!("{base}/{known}")).await;
    assert_eq!(rsp.status, StatusCode::OK);
    let rsp = raw.post_jose(&format!("{base}/{known}"), &json!({})).await;
    assert_eq!(rsp.status, StatusCode::METHOD_NOT_ALLOWED);
}

/// RFC 9773 §5 with instant-acme: an order replacing a certificate echoes
/// `replaces` and issues; naming that certificate again is 409
/// `alreadyReplaced`; another account's certificate is refused, and so is
/// one that shares no identifier with the order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replaces_succeeds_once_and_checks_owner_and_identifiers() {
    let f = Fixture::new().await;
    let account = acme_account(&f.ca).await;
    let name = "renew.example.org";
    let first = issue_http01(&account, &f.http, &[name]).await;
    let id = cert_id(&first.chain_pem);

    let ids = [Identifier::Dns(name.to_owned())];
    let mut order = account
        .new_order(&NewOrder::new(&ids).replaces(id.clone()))
        .await
        .expect("an order replacing our certificate");
    assert_eq!(
        order.state().replaces.as_ref(),
        Some(&id),
        "replaces is echoed"
    );
    answer_http01(&mut order, &f.http).await;
    wait_ready(&mut order).await;
    let second = finalize_and_download(&mut order, &[name]).await;
    assert_ne!(
        leaf_of(&second.chain_pem)
            .serial_number()
            .to_bn()
            .expect("bn"),
        leaf_of(&first.chain_pem)
            .serial_number()
            .to_bn()
            .expect("bn")
    );

    let err = account
        .new_order(&NewOrder::new(&ids).replaces(id.clone()))
        .await
        .err()
        .expect("a replaced certificate cannot be replaced again");
    assert_eq!(problem_type(&err), "alreadyReplaced", "{err:?}");

    let other = acme_account(&f.ca).await;
    let err = other
        .new_order(&NewOrder::new(&ids).replaces(cert_id(&second.chain_pem)))
        .await
        .err()
        .expect("another account's certificate");
    assert_eq!(problem_type(&err), "unauthorized", "{err:?}");

    let elsewhere = [Identifier::Dns("unrelated.example.org".to_owned())];
    let err = account
        .new_order(&NewOrder::new(&elsewhere).replaces(cert_id(&second.chain_pem)))
        .await
        .err()
        .expect("no shared identifier");
    assert_eq!(problem_type(&err), "malformed", "{err:?}");
}

/// Two orders replacing one certificate, both ready, finalized at once:
/// exactly one is processed, the other is 409 `alreadyReplaced` and stays
/// unfinalized.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_replacements_yield_one_certificate() {
    let f = Fixture::new().await;
    let raw = RawClient::new(&f.ca).await;
    let s = Session::new(&raw).await;
    let name = "race.example.org";
    let first = s.issue_http01(&f.http, &[name]).await;
    let id = cert_id(&first.chain_pem).to_string();

    let mut ready = Vec::new();
    for _ in 0..2 {
        let rsp = s
            .new_order_raw(&[dns(name)], json!({ "replaces": id }))
            .await;
        let (url, order) = created(&rsp, "an order replacing the certificate");
        assert_eq!(order["replaces"], id.as_str(), "{order}");
        s.answer_http01(&order, &f.http).await;
        let order = s.settle(&url).await;
        assert_eq!(order["status"], "ready", "{order}");
        ready.push((url, order));
    }
    let (csr_a, _) = crate::support::client::csr(&[name]);
    let (csr_b, _) = crate::support::client::csr(&[name]);
    let (a, b) = tokio::join!(
        s.finalize_raw(&ready[0].1, &csr_a),
        s.finalize_raw(&ready[1].1, &csr_b)
    );
    let outcomes = [&a, &b];
    let won: Vec<_> = outcomes.iter().filter(|r| r.status.is_success()).collect();
    let lost: Vec<_> = outcomes.iter().filter(|r| !r.status.is_success()).collect();
    assert_eq!(
        won.len(),
        1,
        "one finalize wins: {} / {}",
        a.status,
        b.status
    );
    assert_eq!(lost.len(), 1);
    lost[0].assert_problem("the second replacement", &["alreadyReplaced"]);
    assert_eq!(lost[0].status, StatusCode::CONFLICT);

    let loser_url = if a.status.is_success() {
        &ready[1].0
    } else {
        &ready[0].0
    };
    let loser = s.post_ok(loser_url, None).await;
    let loser: serde_json::Value = serde_json::from_slice(&loser.body).expect("order JSON");
    assert_eq!(
        loser["status"], "ready",
        "the losing order was not finalized: {loser}"
    );
}
