//! Sweeps of malformed requests over real HTTPS: every JWS endpoint gets
//! correctly signed requests whose payload is the wrong shape (wrong types,
//! missing or absurd fields, not JSON at all), and the JWS envelope gets
//! every header mistake a client can make. Each answer must be an RFC 8555
//! problem document with a 4xx status (never a 500, never a dropped
//! connection), and the CA must still serve a correct request afterwards.

use akamu_jose::{Alg, SigningKey, b64};
use http::StatusCode;
use serde_json::{Value, json};

use crate::support::client::{JwsAccount, RawClient, RawResponse, csr};

/// One bad request: where it goes, the payload bytes, and the problem types
/// a correct CA may answer with (empty = any ACME problem type).
struct Case {
    what: String,
    url: String,
    payload: Vec<u8>,
    types: &'static [&'static str],
}

fn case(
    what: &str,
    url: &str,
    payload: impl Into<Vec<u8>>,
    types: &'static [&'static str],
) -> Case {
    Case {
        what: what.to_owned(),
        url: url.to_owned(),
        payload: payload.into(),
        types,
    }
}

/// The bad-input fixture (CA, raw client, account) and one pending order.
struct Fixture {
    base: crate::bad_input::Fixture,
    order_url: String,
    authz_url: String,
    challenge_url: String,
    finalize_url: String,
}

impl Fixture {
    async fn new() -> Fixture {
        let base = crate::bad_input::Fixture::new().await;
        let order = base.new_order("sweep.example.org").await;
        let challenge_url = order.authz["challenges"][0]["url"]
            .as_str()
            .expect("challenge URL")
            .to_owned();
        let (order_url, authz_url, finalize_url) = (order.url, order.authz_url, order.finalize_url);
        Fixture {
            base,
            order_url,
            authz_url,
            challenge_url,
            finalize_url,
        }
    }

    /// The CA still answers a correct request after the sweep.
    async fn assert_still_serving(&self) {
        let rsp = signed(&self.base.raw, &self.base.account, &self.order_url, "").await;
        assert_eq!(rsp.status, StatusCode::OK, "order after the sweep: {rsp:?}");
        assert_eq!(rsp.json()["status"], "pending");
        let payload = json!({"identifiers": [{"type": "dns", "value": "after.example.org"}]});
        let rsp = signed(
            &self.base.raw,
            &self.base.account,
            &self.base.raw.url("newOrder"),
            payload.to_string(),
        )
        .await;
        assert_eq!(
            rsp.status,
            StatusCode::CREATED,
            "newOrder after the sweep: {rsp:?}"
        );
    }
}

/// Asserts a problem document (see `RawResponse::assert_problem`) that
/// also carries what every ACME response carries (RFC 8555 §6.5, §7.1): a
/// fresh `Replay-Nonce`, so the client can retry at once, and the
/// directory as `Link: rel="index"`.
fn refused(rsp: &RawResponse, what: &str, types: &[&str]) {
    rsp.assert_problem(what, types);
    assert!(
        rsp.nonce().is_some_and(|n| !n.is_empty()),
        "{what}: no Replay-Nonce"
    );
    let links: Vec<&str> = rsp
        .headers
        .get_all(http::header::LINK)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    assert!(
        links
            .iter()
            .any(|l| l.ends_with(";rel=\"index\"") && l.contains("/directory>")),
        "{what}: no Link rel=\"index\" to the directory: {links:?}"
    );
}

/// POSTs `payload` signed by `account` (kid) with a fresh nonce.
async fn signed(
    raw: &RawClient,
    account: &JwsAccount,
    url: &str,
    payload: impl AsRef<[u8]>,
) -> RawResponse {
    let body = account
        .key
        .sign_flattened(
            json!({"kid": account.kid, "nonce": raw.nonce().await, "url": url}),
            payload.as_ref(),
        )
        .expect("sign JWS");
    raw.post_jose(url, &body).await
}

/// POSTs `payload` signed by a fresh key carried as `jwk` (newAccount).
async fn signed_with_new_jwk(raw: &RawClient, url: &str, payload: impl AsRef<[u8]>) -> RawResponse {
    let key = SigningKey::generate(Alg::Es256).expect("generate ES256 key");
    let jwk = key.public_jwk().expect("public JWK").to_json();
    let body = key
        .sign_flattened(
            json!({"jwk": jwk, "nonce": raw.nonce().await, "url": url}),
            payload.as_ref(),
        )
        .expect("sign JWS");
    raw.post_jose(url, &body).await
}

/// Payloads that are no well-formed JSON object: every endpoint that takes an
/// object must refuse them as `malformed`.
fn not_objects() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("payload `null`", b"null".to_vec()),
        ("payload `[]`", b"[]".to_vec()),
        ("payload `\"x\"`", b"\"x\"".to_vec()),
        ("payload `42`", b"42".to_vec()),
        ("payload `1e999`", b"1e999".to_vec()),
        ("truncated JSON", br#"{"identifiers":"#.to_vec()),
        (
            "invalid UTF-8",
            vec![b'{', b'"', 0xff, 0xfe, b'"', b':', b'1', b'}'],
        ),
        ("trailing garbage", b"{} {}".to_vec()),
        ("nesting 5000 deep", {
            let mut v = vec![b'['; 5000];
            v.extend(vec![b']'; 5000]);
            v
        }),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payloads_that_are_not_objects_are_malformed_everywhere() {
    let f = Fixture::new().await;
    let endpoints = [
        ("newOrder", f.base.raw.url("newOrder")),
        ("newAuthz", f.base.raw.url("newAuthz")),
        ("revokeCert", f.base.raw.url("revokeCert")),
        ("keyChange", f.base.raw.url("keyChange")),
        ("account", f.base.account.kid.clone()),
        ("finalize", f.finalize_url.clone()),
        ("authorization", f.authz_url.clone()),
        ("challenge", f.challenge_url.clone()),
    ];
    for (name, url) in &endpoints {
        for (what, payload) in not_objects() {
            let rsp = signed(&f.base.raw, &f.base.account, url, &payload).await;
            refused(&rsp, &format!("{name}: {what}"), &["malformed"]);
            assert_eq!(rsp.status, StatusCode::BAD_REQUEST, "{name}: {what}");
        }
    }
    for (what, payload) in not_objects() {
        let rsp = signed_with_new_jwk(&f.base.raw, &f.base.raw.url("newAccount"), &payload).await;
        refused(&rsp, &format!("newAccount: {what}"), &["malformed"]);
    }
    f.assert_still_serving().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_of_the_wrong_shape_are_problems() {
    let f = Fixture::new().await;
    let new_order = f.base.raw.url("newOrder");
    let new_authz = f.base.raw.url("newAuthz");
    let revoke = f.base.raw.url("revokeCert");
    let key_change = f.base.raw.url("keyChange");
    let kid = f.base.account.kid.clone();
    let long_label = format!("{}.example.org", "a".repeat(64));
    let long_name = format!("{}example.org", "abcdefghi.".repeat(30));
    let many: Vec<Value> = (0..300)
        .map(|i| json!({"type": "dns", "value": format!("n{i}.example.org")}))
        .collect();
    let (csr_der, _) = csr(&["sweep.example.org"]);
    let order_cases: Vec<(&str, Value, &'static [&'static str])> = vec![
        ("no identifiers", json!({}), &["malformed"]),
        (
            "payload written as an array of its fields",
            // identifiers, notBefore, notAfter, profile: what serde's derive
            // would also take for the order payload struct.
            json!([[{"type": "dns", "value": "a.example.org"}], null, null, null]),
            &["malformed"],
        ),
        (
            "empty identifiers",
            json!({"identifiers": []}),
            &["malformed"],
        ),
        (
            "identifiers a number",
            json!({"identifiers": 5}),
            &["malformed"],
        ),
        (
            "identifier without value",
            json!({"identifiers": [{"type": "dns"}]}),
            &["malformed"],
        ),
        (
            "identifier value a number",
            json!({"identifiers": [{"type": "dns", "value": 7}]}),
            &["malformed"],
        ),
        (
            "identifier a string",
            json!({"identifiers": ["a.example.org"]}),
            &["malformed"],
        ),
        (
            "email identifier",
            json!({"identifiers": [{"type": "email", "value": "a@example.org"}]}),
            &["unsupportedIdentifier", "rejectedIdentifier", "malformed"],
        ),
        (
            "300 identifiers",
            json!({"identifiers": many}),
            &["rejectedIdentifier", "malformed"],
        ),
        (
            "notBefore not a date",
            json!({"identifiers": [{"type": "dns", "value": "a.example.org"}], "notBefore": "yesterday"}),
            &["malformed"],
        ),
        (
            "notAfter a number",
            json!({"identifiers": [{"type": "dns", "value": "a.example.org"}], "notAfter": 5}),
            &["malformed"],
        ),
        (
            "profile a number",
            json!({"identifiers": [{"type": "dns", "value": "a.example.org"}], "profile": 5}),
            &["malformed", "invalidProfile"],
        ),
    ];
    // Identifiers no certificate may name: refused whatever the shape
    // around them is right.
    let bad_identifiers: [(&str, &str, &str); 9] = [
        ("empty name", "dns", ""),
        ("label of 64 octets", "dns", long_label.as_str()),
        ("name over 253 octets", "dns", long_name.as_str()),
        ("NUL in a name", "dns", "a\u{0}b.example.org"),
        ("non-ASCII name", "dns", "bücher.example.org"),
        ("wildcard not leftmost", "dns", "a.*.example.org"),
        ("two wildcards", "dns", "*.*.example.org"),
        ("IP identifier that is no address", "ip", "999.1.1.1"),
        ("IP identifier with a prefix length", "ip", "192.0.2.0/24"),
    ];
    let mut cases = Vec::new();
    for (what, kind, value) in bad_identifiers {
        cases.push(case(
            &format!("newOrder: {what}"),
            &new_order,
            json!({"identifiers": [{"type": kind, "value": value}]}).to_string(),
            &["rejectedIdentifier", "malformed"],
        ));
        cases.push(case(
            &format!("newAuthz: {what}"),
            &new_authz,
            json!({"identifier": {"type": kind, "value": value}}).to_string(),
            &["rejectedIdentifier", "malformed"],
        ));
    }
    for (what, payload, types) in &order_cases {
        cases.push(case(
            &format!("newOrder: {what}"),
            &new_order,
            payload.to_string(),
            types,
        ));
    }
    for (what, payload, types) in order_cases.iter().take(6) {
        // newAuthz takes one `identifier`, not a list: the same shapes there.
        let identifier = payload.get("identifiers").cloned().unwrap_or(Value::Null);
        let one = identifier.get(0).cloned().unwrap_or(identifier);
        cases.push(case(
            &format!("newAuthz: {what}"),
            &new_authz,
            json!({"identifier": one}).to_string(),
            types,
        ));
    }
    cases.extend([
        case(
            "newOrder: an extra member that is not UTF-8",
            &new_order,
            [
                &br#"{"identifiers": [{"type": "dns", "value": "a.example.org"}], "x": ""#[..],
                &[0xff, 0xfe],
                br#""}"#,
            ]
            .concat(),
            &["malformed"],
        ),
        case(
            "account: contact a string",
            &kid,
            json!({"contact": "mailto:a@example.org"}).to_string(),
            &["malformed"],
        ),
        case(
            "account: contact [5]",
            &kid,
            json!({"contact": [5]}).to_string(),
            &["malformed", "invalidContact"],
        ),
        case(
            "account: contact not a URL",
            &kid,
            json!({"contact": ["not a url"]}).to_string(),
            &["invalidContact", "unsupportedContact", "malformed"],
        ),
        case(
            "account: contact http URL",
            &kid,
            json!({"contact": ["http://example.org/"]}).to_string(),
            &["unsupportedContact", "invalidContact"],
        ),
        case(
            "account: status valid",
            &kid,
            json!({"status": "valid"}).to_string(),
            &["malformed"],
        ),
        case(
            "account: status 7",
            &kid,
            json!({"status": 7}).to_string(),
            &["malformed"],
        ),
        case(
            "finalize: no csr",
            &f.finalize_url,
            json!({}).to_string(),
            &["malformed", "badCSR", "orderNotReady"],
        ),
        case(
            "finalize: csr a number",
            &f.finalize_url,
            json!({"csr": 5}).to_string(),
            &["malformed", "badCSR", "orderNotReady"],
        ),
        case(
            "finalize: csr not base64url",
            &f.finalize_url,
            json!({"csr": "!!!"}).to_string(),
            &["malformed", "badCSR", "orderNotReady"],
        ),
        // A good CSR for an order that is not ready yet (RFC 8555 §7.4).
        case(
            "finalize: pending order",
            &f.finalize_url,
            json!({"csr": b64(&csr_der)}).to_string(),
            &["orderNotReady"],
        ),
        case(
            "revokeCert: no certificate",
            &revoke,
            json!({}).to_string(),
            &["malformed"],
        ),
        case(
            "revokeCert: certificate a number",
            &revoke,
            json!({"certificate": 5}).to_string(),
            &["malformed"],
        ),
        case(
            "revokeCert: certificate not base64url",
            &revoke,
            json!({"certificate": "!!"}).to_string(),
            &["malformed"],
        ),
        case(
            "revokeCert: certificate not DER",
            &revoke,
            json!({"certificate": b64(b"garbage")}).to_string(),
            &["malformed", "badCertificate"],
        ),
        case(
            "revokeCert: a CSR instead of a certificate",
            &revoke,
            json!({"certificate": b64(&csr_der)}).to_string(),
            &["malformed", "badCertificate"],
        ),
        case(
            "revokeCert: reason a string",
            &revoke,
            json!({"certificate": b64(b"garbage"), "reason": "one"}).to_string(),
            &["malformed", "badRevocationReason"],
        ),
        case(
            "revokeCert: reason -1",
            &revoke,
            json!({"certificate": b64(b"garbage"), "reason": -1}).to_string(),
            &["malformed", "badRevocationReason", "badCertificate"],
        ),
        case(
            "revokeCert: reason 2^40",
            &revoke,
            json!({"certificate": b64(b"garbage"), "reason": 1u64 << 40}).to_string(),
            &["malformed", "badRevocationReason", "badCertificate"],
        ),
        case(
            "keyChange: empty object",
            &key_change,
            json!({}).to_string(),
            &["malformed"],
        ),
        case(
            "keyChange: inner JWS with garbage parts",
            &key_change,
            json!({"protected": "!!", "payload": "!!", "signature": "!!"}).to_string(),
            &["malformed"],
        ),
        case(
            "keyChange: inner JWS without a jwk",
            &key_change,
            {
                let inner = f
                    .base
                    .account
                    .key
                    .sign_flattened(
                        json!({"url": key_change}),
                        json!({"account": kid}).to_string().as_bytes(),
                    )
                    .expect("sign inner JWS");
                inner.to_string()
            },
            &["malformed"],
        ),
    ]);
    for c in &cases {
        let rsp = signed(&f.base.raw, &f.base.account, &c.url, &c.payload).await;
        refused(&rsp, &c.what, c.types);
    }
    let new_account = f.base.raw.url("newAccount");
    let account_cases: Vec<(&str, Value, &'static [&'static str])> = vec![
        (
            "contact a string",
            json!({"contact": "mailto:a@example.org"}),
            &["malformed"],
        ),
        (
            "contact [5]",
            json!({"contact": [5]}),
            &["malformed", "invalidContact"],
        ),
        (
            "termsOfServiceAgreed a string",
            json!({"termsOfServiceAgreed": "yes"}),
            &["malformed"],
        ),
        (
            "onlyReturnExisting a number",
            json!({"onlyReturnExisting": 1}),
            &["malformed"],
        ),
        (
            "onlyReturnExisting for an unknown key",
            json!({"onlyReturnExisting": true}),
            &["accountDoesNotExist"],
        ),
        (
            "externalAccountBinding a string",
            json!({"externalAccountBinding": "x"}),
            &["malformed"],
        ),
    ];
    for (what, payload, types) in &account_cases {
        let rsp = signed_with_new_jwk(&f.base.raw, &new_account, payload.to_string()).await;
        refused(&rsp, &format!("newAccount: {what}"), types);
    }
    f.assert_still_serving().await;
}

/// The envelope around a payload: protected headers with every mistake.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jws_envelope_mistakes_are_problems() {
    let f = Fixture::new().await;
    let url = f.base.raw.url("newOrder");
    let new_account = f.base.raw.url("newAccount");
    let payload = json!({"identifiers": [{"type": "dns", "value": "env.example.org"}]}).to_string();
    let jwk = f
        .base
        .account
        .key
        .public_jwk()
        .expect("public JWK")
        .to_json();
    let mut x_off_curve = jwk.clone();
    x_off_curve["x"] = json!(b64(&[1u8; 32]));
    let rsa512 = json!({"kty": "RSA", "n": b64(&[0xc3u8; 64]), "e": "AQAB"});

    // (what, protected header, types). A fresh nonce is added unless the
    // case sets one; the request goes to the header's `url` when that is a
    // string (newAccount for the `jwk` cases), else to newOrder.
    let headers: Vec<(&str, Value, &'static [&'static str])> = vec![
        (
            "no kid and no jwk",
            json!({"alg": "ES256", "url": url}),
            &["malformed"],
        ),
        (
            "kid and jwk both",
            json!({"alg": "ES256", "kid": f.base.account.kid, "jwk": jwk, "url": url}),
            &["malformed"],
        ),
        (
            "no url",
            json!({"alg": "ES256", "kid": f.base.account.kid}),
            &["malformed", "unauthorized"],
        ),
        (
            "url a number",
            json!({"alg": "ES256", "kid": f.base.account.kid, "url": 5}),
            &["malformed", "unauthorized"],
        ),
        (
            "kid a number",
            json!({"alg": "ES256", "kid": 5, "url": url}),
            &["malformed", "accountDoesNotExist"],
        ),
        (
            "kid of no account",
            json!({"alg": "ES256", "kid": format!("{}x", f.base.account.kid), "url": url}),
            &["accountDoesNotExist", "malformed", "unauthorized"],
        ),
        (
            "alg HS256",
            json!({"alg": "HS256", "kid": f.base.account.kid, "url": url}),
            &["badSignatureAlgorithm", "malformed"],
        ),
        (
            "alg ES384 for a P-256 key",
            json!({"alg": "ES384", "kid": f.base.account.kid, "url": url}),
            &["badSignatureAlgorithm", "malformed", "unauthorized"],
        ),
        (
            "alg RS256 for a P-256 key",
            json!({"alg": "RS256", "kid": f.base.account.kid, "url": url}),
            &["badSignatureAlgorithm", "malformed", "unauthorized"],
        ),
        (
            "alg missing",
            json!({"kid": f.base.account.kid, "url": url}),
            &["malformed", "badSignatureAlgorithm"],
        ),
        (
            "crit with an unknown extension",
            json!({"alg": "ES256", "kid": f.base.account.kid, "url": url, "crit": ["foo"], "foo": 1}),
            &["malformed", "badSignatureAlgorithm"],
        ),
        (
            "b64 false (RFC 7797)",
            json!({"alg": "ES256", "kid": f.base.account.kid, "url": url, "crit": ["b64"], "b64": false}),
            &["malformed", "badSignatureAlgorithm"],
        ),
        (
            "jwk off the curve",
            json!({"alg": "ES256", "jwk": x_off_curve, "url": new_account}),
            &["malformed", "badPublicKey", "unauthorized"],
        ),
        (
            "RSA-512 jwk",
            json!({"alg": "RS256", "jwk": rsa512, "url": new_account}),
            &[
                "badPublicKey",
                "malformed",
                "unauthorized",
                "badSignatureAlgorithm",
            ],
        ),
        (
            "jwk of kty oct",
            json!({"alg": "HS256", "jwk": {"kty": "oct", "k": "AAAA"}, "url": new_account}),
            &["badSignatureAlgorithm", "badPublicKey", "malformed"],
        ),
        (
            "jwk of kty EC without y",
            json!({"alg": "ES256", "jwk": {"kty": "EC", "crv": "P-256", "x": jwk["x"]}, "url": new_account}),
            &["malformed", "badPublicKey"],
        ),
        (
            "jwk of curve P-192",
            json!({"alg": "ES256", "jwk": {"kty": "EC", "crv": "P-192", "x": jwk["x"], "y": jwk["y"]}, "url": new_account}),
            &["malformed", "badPublicKey", "badSignatureAlgorithm"],
        ),
        (
            "header written as an array",
            json!(["ES256", "nonce", url, null, f.base.account.kid, null]),
            &["malformed"],
        ),
        (
            "nonce a number",
            json!({"alg": "ES256", "kid": f.base.account.kid, "url": url, "nonce": 5}),
            &["badNonce", "malformed"],
        ),
        (
            "nonce empty",
            json!({"alg": "ES256", "kid": f.base.account.kid, "url": url, "nonce": ""}),
            &["badNonce", "malformed"],
        ),
        (
            "nonce of another server",
            json!({"alg": "ES256", "kid": f.base.account.kid, "url": url, "nonce": "AAAAAAAAAAAAAAAAAAAAAA"}),
            &["badNonce"],
        ),
    ];
    for (what, mut header, types) in headers {
        if header.is_object() && header.get("nonce").is_none() {
            header["nonce"] = json!(f.base.raw.nonce().await);
        }
        let target = header["url"].as_str().unwrap_or(&url).to_owned();
        let protected = b64(header.to_string().as_bytes());
        let payload = b64(payload.as_bytes());
        // A real ES256 signature by the account key over exactly these bytes:
        // the refusal must come from the header, not a broken signature.
        let sig = f
            .base
            .account
            .key
            .sign(format!("{protected}.{payload}").as_bytes())
            .expect("sign");
        let body = json!({"protected": protected, "payload": payload, "signature": b64(&sig)});
        let rsp = f.base.raw.post_jose(&target, &body).await;
        refused(&rsp, what, types);
    }

    // A correctly signed request written as an array of its three members.
    let good = f
        .base
        .account
        .key
        .sign_flattened(
            json!({"kid": f.base.account.kid, "nonce": f.base.raw.nonce().await, "url": url}),
            payload.as_bytes(),
        )
        .expect("sign JWS");
    let array = json!([good["protected"], good["payload"], good["signature"]]);
    let rsp = f.base.raw.post_jose(&url, &array).await;
    refused(&rsp, "flattened JWS written as an array", &["malformed"]);

    // Bodies that are no flattened JWS.
    let nonce_free: Vec<(&str, Value)> = vec![
        ("body `[]`", json!([])),
        ("body `null`", Value::Null),
        ("protected missing", json!({"payload": "", "signature": ""})),
        (
            "signature missing",
            json!({"protected": "e30", "payload": ""}),
        ),
        (
            "protected a number",
            json!({"protected": 5, "payload": "", "signature": ""}),
        ),
        (
            "protected `[]`",
            json!({"protected": b64(b"[]"), "payload": "", "signature": ""}),
        ),
        (
            "protected not base64url",
            json!({"protected": "!!", "payload": "", "signature": ""}),
        ),
        (
            "protected padded base64",
            json!({"protected": "e30=", "payload": "", "signature": ""}),
        ),
        (
            "general serialization",
            json!({"payload": "", "signatures": [{"protected": "e30", "signature": ""}]}),
        ),
        (
            "unprotected header",
            json!({"protected": "e30", "header": {"alg": "none"}, "payload": "", "signature": ""}),
        ),
    ];
    for (what, body) in nonce_free {
        let rsp = f.base.raw.post_jose(&url, &body).await;
        refused(
            &rsp,
            what,
            &["malformed", "badSignatureAlgorithm", "badNonce"],
        );
    }
    let rsp = f
        .base
        .raw
        .send(
            http::Method::POST,
            &url,
            Some("application/jose+json"),
            b"{\"protected\":".to_vec(),
        )
        .await;
    refused(&rsp, "truncated body", &["malformed"]);
    let rsp = f
        .base
        .raw
        .send(
            http::Method::POST,
            &url,
            Some("application/jose+json"),
            vec![0xff; 100],
        )
        .await;
    refused(&rsp, "binary body", &["malformed"]);
    f.assert_still_serving().await;
}

/// Every resource with every method: the methods a resource does not take
/// are `405` problems that name the ones it does (`Allow`, RFC 9110
/// §15.5.6), GET resources also answer HEAD (RFC 9110 §9.1), unknown paths
/// are `404` problems, and nothing is a 5xx.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_method_on_every_resource_is_answered_properly() {
    let f = Fixture::new().await;
    let raw = &f.base.raw;
    let post_only: Vec<String> = vec![
        raw.url("newAccount"),
        raw.url("newOrder"),
        raw.url("newAuthz"),
        raw.url("revokeCert"),
        raw.url("keyChange"),
        f.base.account.kid.clone(),
        f.order_url.clone(),
        f.finalize_url.clone(),
        f.authz_url.clone(),
        f.challenge_url.clone(),
    ];
    let get_head = vec![raw.url("newNonce"), f.base.ca.directory().to_owned()];
    let base = f.base.ca.base_url();
    let unknown = [
        format!("{base}/"),
        format!("{base}/acme"),
        format!("{base}/acme/nope"),
        format!("{base}/acme/order"),
        format!("{base}/acme/order/a/b/c"),
        format!("{base}/acme/%2e%2e/%2e%2e/etc/passwd"),
        format!("{base}/{}", "a/".repeat(500)),
    ];
    let methods = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"];
    let mut answers = 0;
    for (urls, allow) in [
        (post_only.as_slice(), "POST"),
        (get_head.as_slice(), "GET, HEAD, POST"),
        (&unknown[..], ""),
    ] {
        for url in urls {
            for method in methods {
                let m = http::Method::from_bytes(method.as_bytes()).expect("method");
                let rsp = raw
                    .send(m.clone(), url, Some("text/plain"), Vec::new())
                    .await;
                let what = format!("{method} {url}");
                assert!(!rsp.status.is_server_error(), "{what}: {}", rsp.status);
                answers += 1;
                let allowed = allow.split(", ").any(|a| a == method);
                if allow.is_empty() {
                    assert_eq!(rsp.status, StatusCode::NOT_FOUND, "{what}");
                } else if !allowed {
                    assert_eq!(rsp.status, StatusCode::METHOD_NOT_ALLOWED, "{what}");
                    let header = rsp
                        .headers
                        .get(http::header::ALLOW)
                        .and_then(|v| v.to_str().ok());
                    assert_eq!(header, Some(allow), "{what}: Allow header");
                } else if method == "POST" {
                    // A POST that is no JWS (text/plain) is refused, not served.
                    assert_eq!(rsp.status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{what}");
                } else {
                    assert!(rsp.status.is_success(), "{what}: {}", rsp.status);
                }
                if rsp.status.is_client_error() && m != http::Method::HEAD {
                    rsp.assert_problem(&what, &["malformed"]);
                }
            }
        }
    }
    assert_eq!(answers, (10 + 2 + 7) * methods.len());
    f.assert_still_serving().await;
}
