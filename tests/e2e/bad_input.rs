//! Hand-built bad requests over real HTTPS (RFC 8555 §6.2–6.7): each one
//! gets a precise `application/problem+json` answer with a 4xx status, never
//! a 500. Requests are signed with `akamu-jose`, or deliberately not.

use std::time::Duration;

use akamu_jose::{Alg, SigningKey, b64, b64_decode};
use http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::issuance::start_ca;
use crate::support::client::{JwsAccount, RawClient, RawResponse, csr, sign_with_jwk};
use crate::support::dns::DnsServer;
use crate::support::http01::Http01Server;
use crate::support::procs::Ca;

/// Size the contract allows for a request body.
const BODY_LIMIT: usize = 64 * 1024;

/// An order placed by hand: its URLs and its one authorization.
pub(crate) struct RawOrder {
    pub(crate) url: String,
    pub(crate) authz_url: String,
    pub(crate) finalize_url: String,
    /// The authorization object as fetched right after the order.
    pub(crate) authz: Value,
}

/// A CA, a raw client and a registered hand-driven account.
pub(crate) struct Fixture {
    _dns: DnsServer,
    pub(crate) ca: Ca,
    pub(crate) raw: RawClient,
    pub(crate) account: JwsAccount,
}

impl Fixture {
    pub(crate) async fn new() -> Fixture {
        let dns = DnsServer::start().await;
        let ca = start_ca(&dns).await;
        let raw = RawClient::new(&ca).await;
        let account = JwsAccount::create(&raw).await;
        Fixture {
            _dns: dns,
            ca,
            raw,
            account,
        }
    }

    /// POST-as-GET of our own account URL, correctly signed.
    async fn fetch_account(&self, nonce: &str) -> RawResponse {
        let body = self.account.sign(nonce, &self.account.kid, None);
        self.raw.post_jose(&self.account.kid, &body).await
    }

    /// A hand-driven new order for one DNS `name` (asserts 201).
    pub(crate) async fn new_order(&self, name: &str) -> RawOrder {
        let payload = json!({"identifiers": [{"type": "dns", "value": name}]});
        let rsp = self
            .post_ok(&self.raw.url("newOrder"), Some(&payload))
            .await;
        assert_eq!(rsp.status, StatusCode::CREATED, "newOrder answers 201");
        let url = rsp.location().expect("newOrder returns Location");
        let order = rsp.json();
        let authz_url = order["authorizations"][0]
            .as_str()
            .expect("authorization URL")
            .to_owned();
        let finalize_url = order["finalize"].as_str().expect("finalize URL").to_owned();
        let authz = self.post_ok(&authz_url, None).await.json();
        RawOrder {
            url,
            authz_url,
            finalize_url,
            authz,
        }
    }

    /// A correctly signed POST with a fresh nonce; asserts a 2xx answer.
    async fn post_ok(&self, url: &str, payload: Option<&Value>) -> RawResponse {
        let body = self.account.sign(&self.raw.nonce().await, url, payload);
        let rsp = self.raw.post_jose(url, &body).await;
        assert!(
            rsp.status.is_success(),
            "POST {url}: {} {}",
            rsp.status,
            String::from_utf8_lossy(&rsp.body)
        );
        rsp
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_content_type_is_a_problem() {
    let f = Fixture::new().await;
    let url = f.raw.url("newAccount");
    let key = SigningKey::generate(Alg::Es256).expect("key");
    let body = sign_with_jwk(
        &key,
        &f.raw.nonce().await,
        &url,
        &json!({"termsOfServiceAgreed": true}),
    );
    let rsp = f
        .raw
        .send(
            Method::POST,
            &url,
            Some("application/json"),
            body.to_string().into_bytes(),
        )
        .await;
    rsp.assert_problem("POST with Content-Type application/json", &[]);
    assert!(
        rsp.status == StatusCode::UNSUPPORTED_MEDIA_TYPE || rsp.status == StatusCode::BAD_REQUEST,
        "wrong Content-Type should be 415 (or 400), got {}",
        rsp.status
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_base64_in_protected_is_malformed() {
    let f = Fixture::new().await;
    let body = json!({"protected": "!!not*base64url!!", "payload": "", "signature": "AAAA"});
    let rsp = f.raw.post_jose(&f.raw.url("newOrder"), &body).await;
    rsp.assert_problem("protected header with bad base64url", &["malformed"]);
    assert_eq!(rsp.status, StatusCode::BAD_REQUEST);

    // Valid base64url of something that is not JSON.
    let body = json!({"protected": b64(b"not json"), "payload": "", "signature": "AAAA"});
    let rsp = f.raw.post_jose(&f.raw.url("newOrder"), &body).await;
    rsp.assert_problem("protected header that is not JSON", &["malformed"]);
    assert_eq!(rsp.status, StatusCode::BAD_REQUEST);

    // Not JWS at all.
    let rsp = f
        .raw
        .send(
            Method::POST,
            &f.raw.url("newOrder"),
            Some("application/jose+json"),
            b"{".to_vec(),
        )
        .await;
    rsp.assert_problem("truncated JSON body", &["malformed"]);
    assert_eq!(rsp.status, StatusCode::BAD_REQUEST);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_kid_is_account_does_not_exist() {
    let f = Fixture::new().await;
    let (prefix, _) = f
        .account
        .kid
        .rsplit_once('/')
        .expect("kid is a URL with a path");
    let ghost = JwsAccount {
        key: SigningKey::generate(Alg::Es256).expect("key"),
        kid: format!("{prefix}/does-not-exist-4242"),
    };
    let url = f.raw.url("newOrder");
    let payload = json!({"identifiers": [{"type": "dns", "value": "ghost.example.org"}]});
    let body = ghost.sign(&f.raw.nonce().await, &url, Some(&payload));
    let rsp = f.raw.post_jose(&url, &body).await;
    rsp.assert_problem("kid of no account", &["accountDoesNotExist"]);
    assert_eq!(rsp.status, StatusCode::BAD_REQUEST);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replayed_nonce_is_bad_nonce_with_a_fresh_one() {
    let f = Fixture::new().await;
    let nonce = f.raw.nonce().await;
    let first = f.fetch_account(&nonce).await;
    assert_eq!(
        first.status,
        StatusCode::OK,
        "POST-as-GET account: {}",
        String::from_utf8_lossy(&first.body)
    );

    let replay = f.fetch_account(&nonce).await;
    replay.assert_problem("replayed nonce", &["badNonce"]);
    assert_eq!(replay.status, StatusCode::BAD_REQUEST);
    let fresh = replay
        .nonce()
        .expect("a badNonce answer carries a fresh Replay-Nonce (RFC 8555 §6.5)");
    assert_ne!(fresh, nonce);

    // The fresh nonce works (this is how clients recover).
    let retry = f.fetch_account(&fresh).await;
    assert_eq!(retry.status, StatusCode::OK, "retry with the fresh nonce");

    // A nonce the server never issued is refused the same way.
    let made_up = f.fetch_account(&b64(b"never-issued-nonce")).await;
    made_up.assert_problem("made-up nonce", &["badNonce"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signature_by_another_key_is_refused() {
    let f = Fixture::new().await;
    let impostor = JwsAccount {
        key: SigningKey::generate(Alg::Es256).expect("key"),
        kid: f.account.kid.clone(),
    };
    let url = f.raw.url("newOrder");
    let payload = json!({"identifiers": [{"type": "dns", "value": "stolen.example.org"}]});
    let body = impostor.sign(&f.raw.nonce().await, &url, Some(&payload));
    let rsp = f.raw.post_jose(&url, &body).await;
    rsp.assert_problem(
        "JWS signed by a key that is not the account's",
        &["malformed", "unauthorized"],
    );

    // A valid signature bit-flipped is refused too.
    let mut body = f.account.sign(&f.raw.nonce().await, &url, Some(&payload));
    let mut sig = b64_decode(body["signature"].as_str().expect("signature")).expect("base64url");
    sig[0] ^= 0x01;
    let flipped = b64(&sig);
    body["signature"] = Value::String(flipped);
    let rsp = f.raw.post_jose(&url, &body).await;
    rsp.assert_problem("tampered signature", &["malformed", "unauthorized"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsupported_alg_is_refused() {
    let f = Fixture::new().await;
    let url = f.raw.url("newOrder");
    let protected =
        json!({"alg": "none", "kid": f.account.kid, "nonce": f.raw.nonce().await, "url": url});
    let body = json!({
        "protected": b64(protected.to_string().as_bytes()),
        "payload": b64(br#"{"identifiers":[{"type":"dns","value":"none.example.org"}]}"#),
        "signature": "",
    });
    let rsp = f.raw.post_jose(&url, &body).await;
    rsp.assert_problem("alg none", &["badSignatureAlgorithm", "malformed"]);
    assert_eq!(rsp.status, StatusCode::BAD_REQUEST);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn url_mismatch_is_unauthorized() {
    let f = Fixture::new().await;
    // Signed for newOrder, sent to the account URL.
    let body = f
        .account
        .sign(&f.raw.nonce().await, &f.raw.url("newOrder"), None);
    let rsp = f.raw.post_jose(&f.account.kid, &body).await;
    rsp.assert_problem(
        "protected url differs from the request URL",
        &["unauthorized"],
    );
    assert_eq!(rsp.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn body_over_64_kib_is_413() {
    let f = Fixture::new().await;
    let url = f.raw.url("newOrder");
    let pad = "A".repeat(BODY_LIMIT + 1024);
    let body = json!({"protected": "e30", "payload": pad, "signature": ""});
    let rsp = f.raw.post_jose(&url, &body).await;
    rsp.assert_problem("body over 64 KiB", &[]);
    assert_eq!(rsp.status, StatusCode::PAYLOAD_TOO_LARGE);

    // The server is still fine afterwards.
    let ok = f.fetch_account(&f.raw.nonce().await).await;
    assert_eq!(ok.status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finalize_csr_with_an_extra_san_is_bad_csr() {
    let f = Fixture::new().await;
    let http = Http01Server::start(f.ca.http_validation_port()).await;
    let name = "csr.example.org";

    // Hand-driven order up to `ready`.
    let RawOrder {
        url: order_url,
        authz_url: _,
        finalize_url,
        authz,
    } = f.new_order(name).await;
    let challenge = authz["challenges"]
        .as_array()
        .expect("challenges")
        .iter()
        .find(|c| c["type"] == "http-01")
        .expect("http-01 offered")
        .clone();
    let token = challenge["token"].as_str().expect("token");
    let thumbprint = f.account.key.thumbprint().expect("thumbprint");
    http.set(token, &format!("{token}.{thumbprint}"));
    f.post_ok(
        challenge["url"].as_str().expect("challenge url"),
        Some(&json!({})),
    )
    .await;

    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let order = f.post_ok(&order_url, None).await.json();
        match order["status"].as_str() {
            Some("ready") => break,
            Some("pending" | "processing") => {}
            other => panic!("order became {other:?}: {order}"),
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "order never became ready: {order}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    // The CSR asks for one name more than the order holds.
    let (der, _key) = csr(&[name, "extra.example.org"]);
    let payload = json!({"csr": b64(&der)});
    let body = f
        .account
        .sign(&f.raw.nonce().await, &finalize_url, Some(&payload));
    let rsp = f.raw.post_jose(&finalize_url, &body).await;
    rsp.assert_problem("CSR with a SAN the order lacks", &["badCSR"]);
    assert_eq!(rsp.status, StatusCode::BAD_REQUEST);

    // Garbage where the CSR should be.
    let payload = json!({"csr": b64(b"not a CSR")});
    let body = f
        .account
        .sign(&f.raw.nonce().await, &finalize_url, Some(&payload));
    let rsp = f.raw.post_jose(&finalize_url, &body).await;
    rsp.assert_problem("CSR that is not DER", &["badCSR", "malformed"]);

    // The order is still ready: a correct CSR still issues.
    let order = f.post_ok(&order_url, None).await.json();
    assert_eq!(
        order["status"], "ready",
        "a refused CSR leaves the order ready: {order}"
    );
    let (der, _key) = csr(&[name]);
    let payload = json!({"csr": b64(&der)});
    f.post_ok(&finalize_url, Some(&payload)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_resources_and_wrong_methods_are_problems() {
    let f = Fixture::new().await;
    let base = f.ca.base_url();

    // POST-as-GET of an order that does not exist.
    let url = format!("{base}/acme/order/does-not-exist-4242");
    let body = f.account.sign(&f.raw.nonce().await, &url, None);
    let rsp = f.raw.post_jose(&url, &body).await;
    rsp.assert_problem("POST-as-GET of an unknown order", &["malformed"]);
    assert_eq!(rsp.status, StatusCode::NOT_FOUND);

    // RFC 8555 §6.3: resources other than the directory and newNonce are
    // POST-only. The reference's
    // error table maps a wrong method to 405 (as Boulder and Pebble do).
    let rsp = f.raw.get(&f.raw.url("newOrder")).await;
    rsp.assert_problem("GET newOrder", &["malformed"]);
    assert_eq!(rsp.status, StatusCode::METHOD_NOT_ALLOWED);
    let rsp = f.raw.get(&f.account.kid).await;
    rsp.assert_problem("GET of an account URL", &["malformed"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_accounts_order_is_not_readable() {
    let f = Fixture::new().await;
    let payload = json!({"identifiers": [{"type": "dns", "value": "mine.example.org"}]});
    let rsp = f.post_ok(&f.raw.url("newOrder"), Some(&payload)).await;
    let order_url = rsp.location().expect("newOrder returns Location");
    let authz_url = rsp.json()["authorizations"][0]
        .as_str()
        .expect("authorization URL")
        .to_owned();

    let stranger = JwsAccount::create(&f.raw).await;
    for url in [&order_url, &authz_url] {
        let body = stranger.sign(&f.raw.nonce().await, url, None);
        let rsp = f.raw.post_jose(url, &body).await;
        rsp.assert_problem("another account's resource", &["unauthorized", "malformed"]);
        assert!(
            rsp.status == StatusCode::UNAUTHORIZED
                || rsp.status == StatusCode::FORBIDDEN
                || rsp.status == StatusCode::NOT_FOUND,
            "another account's {url}: {}",
            rsp.status
        );
    }
}

/// A newAccount JWS with `header` (nonce and url added), signed over the
/// usual input by `key`, then `mangle`d.
async fn new_account_with(
    raw: &RawClient,
    mut header: Value,
    key: &SigningKey,
    mangle: impl Fn(Vec<u8>) -> Vec<u8>,
) -> RawResponse {
    let url = raw.url("newAccount");
    header["nonce"] = raw.nonce().await.into();
    header["url"] = url.clone().into();
    let protected = b64(header.to_string().as_bytes());
    let payload = b64(br#"{"termsOfServiceAgreed":true}"#);
    let sig = key
        .sign(format!("{protected}.{payload}").as_bytes())
        .expect("sign");
    let body = json!({"protected": protected, "payload": payload, "signature": b64(&mangle(sig))});
    raw.post_jose(&url, &body).await
}

/// A change made to a signature before it is sent.
type Mangle = Box<dyn Fn(Vec<u8>) -> Vec<u8>>;

/// RFC 9964 keys that lie: an AKP key whose `pub` has the length of another
/// parameter set, a JWS `alg` other than the key's `alg`, signatures of the
/// wrong length, an unknown ML-DSA name, a classical `alg` with an AKP key
/// and the reverse. Each is a 400 problem (`malformed` or
/// `badSignatureAlgorithm`), never a 500; the honest request then succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lying_ml_dsa_keys_and_signatures_are_refused() {
    let f = Fixture::new().await;
    let key = SigningKey::generate(Alg::MlDsa65).expect("ML-DSA-65 key");
    let jwk = key.public_jwk().expect("jwk").to_json();
    let keep = |s: Vec<u8>| s;
    let relabel = |alg: &str| {
        let mut j = jwk.clone();
        j["alg"] = alg.into();
        j
    };
    let cases: Vec<(&str, Value, &[&str], Mangle)> = vec![
        (
            "AKP key of ML-DSA-65 length labelled ML-DSA-44",
            json!({"alg": "ML-DSA-44", "jwk": relabel("ML-DSA-44")}),
            &["malformed"],
            Box::new(keep),
        ),
        (
            "JWS alg ML-DSA-87 with an ML-DSA-65 key",
            json!({"alg": "ML-DSA-87", "jwk": jwk}),
            &["malformed", "badSignatureAlgorithm"],
            Box::new(keep),
        ),
        (
            "signature one byte short",
            json!({"alg": "ML-DSA-65", "jwk": jwk}),
            &["malformed"],
            Box::new(|mut s: Vec<u8>| {
                s.pop();
                s
            }),
        ),
        (
            "signature one byte long",
            json!({"alg": "ML-DSA-65", "jwk": jwk}),
            &["malformed"],
            Box::new(|mut s: Vec<u8>| {
                s.push(0);
                s
            }),
        ),
        (
            "signature with one bit flipped",
            json!({"alg": "ML-DSA-65", "jwk": jwk}),
            &["malformed"],
            Box::new(|mut s: Vec<u8>| {
                s[100] ^= 0x04;
                s
            }),
        ),
        (
            "unknown ML-DSA parameter set",
            json!({"alg": "ML-DSA-66", "jwk": relabel("ML-DSA-66")}),
            &["badSignatureAlgorithm"],
            Box::new(keep),
        ),
        (
            "ES256 with an AKP key",
            json!({"alg": "ES256", "jwk": jwk}),
            &["malformed", "badSignatureAlgorithm"],
            Box::new(keep),
        ),
    ];
    for (what, header, types, mangle) in cases {
        let rsp = new_account_with(&f.raw, header, &key, mangle).await;
        rsp.assert_problem(what, types);
        assert_eq!(rsp.status, StatusCode::BAD_REQUEST, "{what}");
    }
    let ec = SigningKey::generate(Alg::Es256).expect("EC key");
    let ec_jwk = ec.public_jwk().expect("jwk").to_json();
    let rsp = new_account_with(
        &f.raw,
        json!({"alg": "ML-DSA-65", "jwk": ec_jwk}),
        &ec,
        |s| s,
    )
    .await;
    rsp.assert_problem(
        "ML-DSA-65 with an EC key",
        &["malformed", "badSignatureAlgorithm"],
    );

    let rsp = new_account_with(&f.raw, json!({"alg": "ML-DSA-65", "jwk": jwk}), &key, |s| s).await;
    assert_eq!(
        rsp.status,
        StatusCode::CREATED,
        "the honest ML-DSA-65 request: {}",
        String::from_utf8_lossy(&rsp.body)
    );
}
