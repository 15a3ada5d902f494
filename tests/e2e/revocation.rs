//! Certificate revocation (RFC 8555 §7.6): by the owner (instant-acme), by
//! the certificate's own key (raw `jwk` JWS, which instant-acme cannot
//! send), by another account that holds valid authorizations for every
//! name, and the refusals: a stranger, an unusable reason code, a second
//! revocation.

use http::StatusCode;
use instant_acme::{RevocationReason, RevocationRequest};
use rustls::pki_types::CertificateDer;
use serde_json::json;

use crate::issuance::start_ca;
use crate::support::acme::{RawIssued, Session, challenge, created, dns, revoke_with_key};
use crate::support::client::{RawClient, acme_account, issue_http01, problem_type};
use crate::support::dns::DnsServer;
use crate::support::http01::Http01Server;
use crate::support::procs::Ca;

struct Fixture {
    _dns: DnsServer,
    ca: Ca,
    http: Http01Server,
    raw: RawClient,
}

impl Fixture {
    async fn new() -> Fixture {
        let dns = DnsServer::start().await;
        let ca = start_ca(&dns).await;
        let http = Http01Server::start(ca.http_validation_port()).await;
        let raw = RawClient::new(&ca).await;
        Fixture {
            _dns: dns,
            ca,
            http,
            raw,
        }
    }

    /// A fresh raw account with a certificate for `names`.
    async fn issued(&self, names: &[&str]) -> (Session, RawIssued) {
        let owner = Session::new(&self.raw).await;
        let issued = owner.issue_http01(&self.http, names).await;
        (owner, issued)
    }
}

/// The owner revokes with instant-acme (reason keyCompromise); a second
/// revocation is `alreadyRevoked`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn owner_revokes_with_instant_acme_then_already_revoked() {
    let f = Fixture::new().await;
    let account = acme_account(&f.ca).await;
    let issued = issue_http01(&account, &f.http, &["owner.example.org"]).await;
    let leaf = crate::support::certs::split_chain(&issued.chain_pem)[0]
        .to_der()
        .expect("DER");
    let der = CertificateDer::from(leaf);
    account
        .revoke(&RevocationRequest {
            certificate: &der,
            reason: Some(RevocationReason::KeyCompromise),
        })
        .await
        .expect("the owner revokes its certificate");
    let err = account
        .revoke(&RevocationRequest {
            certificate: &der,
            reason: None,
        })
        .await
        .expect_err("a second revocation must fail");
    assert_eq!(problem_type(&err), "alreadyRevoked", "{err:?}");
}

/// Revocation signed with the certificate's own key in a `jwk` header
/// (no account involved); then the owner's attempt is `alreadyRevoked`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocation_by_the_certificate_key() {
    let f = Fixture::new().await;
    let (owner, issued) = f.issued(&["certkey.example.org"]).await;

    // A key that is neither the certificate's nor an account's.
    let other = akamu_jose::SigningKey::generate(akamu_jose::Alg::Es256).expect("key");
    let rsp = revoke_with_key(&f.raw, &other, &issued.leaf_der(), None).await;
    rsp.assert_problem("revocation signed by an unrelated key", &["unauthorized"]);

    let rsp = revoke_with_key(&f.raw, &issued.leaf_key(), &issued.leaf_der(), Some(1)).await;
    assert_eq!(
        rsp.status,
        StatusCode::OK,
        "revocation by the certificate key: {}",
        String::from_utf8_lossy(&rsp.body)
    );
    let rsp = owner.revoke(&issued.leaf_der(), None).await;
    rsp.assert_problem("owner revokes a revoked certificate", &["alreadyRevoked"]);
}

/// A stranger (no authorization for the name) is `unauthorized`; reason 7
/// is `badRevocationReason`; neither revokes the certificate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stranger_and_reason_7_are_refused() {
    let f = Fixture::new().await;
    let (owner, issued) = f.issued(&["victim.example.org"]).await;

    let stranger = Session::new(&f.raw).await;
    let rsp = stranger.revoke(&issued.leaf_der(), None).await;
    rsp.assert_problem("revocation by a stranger account", &["unauthorized"]);
    assert_eq!(rsp.status, StatusCode::UNAUTHORIZED);

    let rsp = owner.revoke(&issued.leaf_der(), Some(7)).await;
    rsp.assert_problem("revocation reason 7", &["badRevocationReason"]);
    assert_eq!(rsp.status, StatusCode::BAD_REQUEST);
    let rsp = owner.revoke(&issued.leaf_der(), Some(11)).await;
    rsp.assert_problem("revocation reason 11", &["badRevocationReason"]);

    // Still revocable: nothing above revoked it.
    let rsp = owner.revoke(&issued.leaf_der(), Some(4)).await;
    assert_eq!(
        rsp.status,
        StatusCode::OK,
        "owner revokes after the refusals: {}",
        String::from_utf8_lossy(&rsp.body)
    );
}

/// §7.6: an account that does not own the certificate but holds valid
/// authorizations for all its names may revoke it; with an authorization
/// for only one of two names it may not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_owner_with_valid_authorizations_for_all_names_revokes() {
    let f = Fixture::new().await;
    let names = ["a.rev.example.org", "b.rev.example.org"];
    let (_owner, issued) = f.issued(&names).await;

    // Another account pre-authorizes the first name only.
    let other = Session::new(&f.raw).await;
    let authorize = |name: &'static str| {
        let other = &other;
        let http = &f.http;
        async move {
            let rsp = other
                .post(
                    &other.raw.url("newAuthz"),
                    Some(&json!({"identifier": dns(name)})),
                )
                .await;
            let (url, authz) = created(&rsp, "newAuthz");
            let ch = challenge(&authz, "http-01");
            let token = ch["token"].as_str().expect("token");
            http.set(token, &other.key_authorization(token));
            other
                .post_ok(ch["url"].as_str().expect("url"), Some(&json!({})))
                .await;
            let authz = other.settle(&url).await;
            assert_eq!(
                authz["status"], "valid",
                "pre-authorization {name}: {authz}"
            );
        }
    };
    authorize(names[0]).await;
    let rsp = other.revoke(&issued.leaf_der(), None).await;
    rsp.assert_problem(
        "revocation by an account authorized for one name of two",
        &["unauthorized"],
    );

    authorize(names[1]).await;
    let rsp = other.revoke(&issued.leaf_der(), Some(5)).await;
    assert_eq!(
        rsp.status,
        StatusCode::OK,
        "revocation by an account authorized for every name: {}",
        String::from_utf8_lossy(&rsp.body)
    );
    let rsp = revoke_with_key(&f.raw, &issued.leaf_key(), &issued.leaf_der(), None).await;
    rsp.assert_problem("revoking it again", &["alreadyRevoked"]);
}
