//! A hand-driven ACME session over [`RawClient`]: every request is signed
//! with `akamu-jose` and every answer is a [`RawResponse`], so tests can
//! assert exact statuses, headers and problem documents at each step of
//! RFC 8555 (orders, authorizations, challenges, finalize, revocation).

use std::time::Duration;

use akamu_jose::{SigningKey, b64, b64_decode};
use http::StatusCode;
use openssl::bn::BigNum;
use openssl::pkey::PKey;
use openssl::rsa::RsaPrivateKeyBuilder;
use openssl::x509::X509;
use serde_json::{Value, json};

use super::client::{JwsAccount, RawClient, RawResponse, csr, sign_with_jwk};
use super::http01::Http01Server;

/// How long polling waits for an order or authorization to settle.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(60);

/// `{"type": "dns", "value": name}`.
pub(crate) fn dns(name: &str) -> Value {
    json!({"type": "dns", "value": name})
}

/// `{"type": "ip", "value": addr}`.
pub(crate) fn ip(addr: &str) -> Value {
    json!({"type": "ip", "value": addr})
}

/// One account speaking raw JWS to one CA.
pub(crate) struct Session {
    /// The HTTPS client (directory already fetched).
    pub raw: RawClient,
    /// The account (key and `kid`).
    pub account: JwsAccount,
}

/// What a raw issuance produced.
#[derive(Debug, Clone)]
pub(crate) struct RawIssued {
    /// The order URL.
    pub order_url: String,
    /// The order object once `valid`.
    pub order: Value,
    /// The certificate URL.
    pub cert_url: String,
    /// The downloaded chain, PEM, leaf first.
    pub chain_pem: String,
    /// The leaf's private key, PEM (the CSR's key).
    pub key_pem: String,
}

impl RawIssued {
    /// The leaf certificate.
    pub(crate) fn leaf(&self) -> X509 {
        X509::stack_from_pem(self.chain_pem.as_bytes())
            .expect("chain is PEM")
            .into_iter()
            .next()
            .expect("chain has a leaf")
    }

    /// The leaf, DER.
    pub(crate) fn leaf_der(&self) -> Vec<u8> {
        self.leaf().to_der().expect("DER")
    }

    /// The leaf's key as a JWS signing key (for revocation by certificate key).
    pub(crate) fn leaf_key(&self) -> SigningKey {
        SigningKey::from_pem(self.key_pem.as_bytes()).expect("leaf key PEM")
    }
}

impl Session {
    /// Orders `name`, answers its http-01 challenge correctly through
    /// `http`, waits for the authorization and the order to become invalid
    /// (a validation the CA refused), and returns the challenge's problem.
    pub(crate) async fn failed_http01(&self, http: &Http01Server, name: &str) -> Value {
        let (order_url, order) = self.new_order(&[identifier(name)]).await;
        let authz_url = Session::authz_urls(&order)[0].clone();
        let authz = self.authz(&authz_url).await;
        self.respond_http01(http, &authz).await;
        let authz = self.settle(&authz_url).await;
        assert_eq!(authz["status"], "invalid", "{authz}");
        let order = self.settle(&order_url).await;
        assert_eq!(order["status"], "invalid", "{order}");
        challenge(&authz, "http-01")["error"].clone()
    }

    /// Publishes the correct answer to the http-01 challenge of `authz` on
    /// `http` and responds to the challenge.
    pub(crate) async fn respond_http01(&self, http: &Http01Server, authz: &Value) {
        let ch = challenge(authz, "http-01");
        let token = ch["token"].as_str().expect("token");
        http.set(token, &self.key_authorization(token));
        self.post_ok(ch["url"].as_str().expect("challenge url"), Some(&json!({})))
            .await;
    }

    /// Registers a fresh ES256 account on `raw`'s CA.
    pub(crate) async fn new(raw: &RawClient) -> Session {
        Session {
            raw: raw.clone(),
            account: JwsAccount::create(raw).await,
        }
    }

    /// A session for an existing account key and URL.
    pub(crate) fn with_account(raw: &RawClient, account: JwsAccount) -> Session {
        Session {
            raw: raw.clone(),
            account,
        }
    }

    /// A `kid`-signed POST with a fresh nonce (`None` = POST-as-GET).
    pub(crate) async fn post(&self, url: &str, payload: Option<&Value>) -> RawResponse {
        let body = self.account.sign(&self.raw.nonce().await, url, payload);
        self.raw.post_jose(url, &body).await
    }

    /// [`Session::post`], asserting a 2xx answer.
    pub(crate) async fn post_ok(&self, url: &str, payload: Option<&Value>) -> RawResponse {
        let rsp = self.post(url, payload).await;
        assert!(
            rsp.status.is_success(),
            "POST {url} ({payload:?}): {} {}",
            rsp.status,
            String::from_utf8_lossy(&rsp.body)
        );
        rsp
    }

    /// newOrder for `identifiers` (plus any extra payload fields); returns
    /// the raw answer.
    pub(crate) async fn new_order_raw(&self, identifiers: &[Value], extra: Value) -> RawResponse {
        let mut payload = json!({ "identifiers": identifiers });
        if let (Value::Object(p), Value::Object(e)) = (&mut payload, extra) {
            p.extend(e);
        }
        self.post(&self.raw.url("newOrder"), Some(&payload)).await
    }

    /// newOrder, asserting `201 Created` with a Location; returns (URL, order).
    pub(crate) async fn new_order(&self, identifiers: &[Value]) -> (String, Value) {
        let rsp = self.new_order_raw(identifiers, json!({})).await;
        created(&rsp, "newOrder")
    }

    /// POST-as-GET of an authorization.
    pub(crate) async fn authz(&self, url: &str) -> Value {
        self.post_ok(url, None).await.json()
    }

    /// The authorization URLs of `order`.
    pub(crate) fn authz_urls(order: &Value) -> Vec<String> {
        order["authorizations"]
            .as_array()
            .unwrap_or_else(|| panic!("order has no authorizations: {order}"))
            .iter()
            .map(|u| u.as_str().expect("authorization URL").to_owned())
            .collect()
    }

    /// The key authorization for `token` (RFC 8555 §8.1).
    pub(crate) fn key_authorization(&self, token: &str) -> String {
        let thumbprint = self.account.key.thumbprint().expect("thumbprint");
        format!("{token}.{thumbprint}")
    }

    /// Publishes the http-01 answer of every pending authorization of
    /// `order` on `http` and responds to the challenges.
    pub(crate) async fn answer_http01(&self, order: &Value, http: &Http01Server) {
        for url in Self::authz_urls(order) {
            let authz = self.authz(&url).await;
            if authz["status"] == "valid" {
                continue;
            }
            assert_eq!(authz["status"], "pending", "authorization {url}: {authz}");
            self.respond_http01(http, &authz).await;
        }
    }

    /// Polls `url` (order or authorization) until its status is not
    /// `pending` or `processing`; returns the object.
    pub(crate) async fn settle(&self, url: &str) -> Value {
        let deadline = tokio::time::Instant::now() + SETTLE_TIMEOUT;
        loop {
            let obj = self.post_ok(url, None).await.json();
            match obj["status"].as_str() {
                Some("pending" | "processing") => {}
                _ => return obj,
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{url} still {} after {SETTLE_TIMEOUT:?}: {obj}",
                obj["status"]
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Finalizes `order` with `csr_der`; returns the raw answer.
    pub(crate) async fn finalize_raw(&self, order: &Value, csr_der: &[u8]) -> RawResponse {
        let url = order["finalize"].as_str().expect("finalize URL");
        self.post(url, Some(&json!({"csr": b64(csr_der)}))).await
    }

    /// Finalizes a ready order with a fresh CSR for `names`, waits for
    /// `valid` and downloads the chain.
    pub(crate) async fn finalize_and_download(
        &self,
        order_url: &str,
        order: &Value,
        names: &[&str],
    ) -> RawIssued {
        let (der, key_pem) = csr(names);
        let rsp = self.finalize_raw(order, &der).await;
        assert!(
            rsp.status.is_success(),
            "finalize {order_url}: {} {}",
            rsp.status,
            String::from_utf8_lossy(&rsp.body)
        );
        let order = self.settle(order_url).await;
        assert_eq!(order["status"], "valid", "order after finalize: {order}");
        let cert_url = order["certificate"]
            .as_str()
            .expect("a valid order has a certificate URL")
            .to_owned();
        let rsp = self.post_ok(&cert_url, None).await;
        RawIssued {
            order_url: order_url.to_owned(),
            order,
            cert_url,
            chain_pem: String::from_utf8(rsp.body.to_vec()).expect("PEM chain is text"),
            key_pem,
        }
    }

    /// The whole http-01 flow for `identifiers` (`names` are their values,
    /// for the CSR).
    pub(crate) async fn issue_http01(&self, http: &Http01Server, names: &[&str]) -> RawIssued {
        let ids: Vec<Value> = names.iter().map(|n| identifier(n)).collect();
        let (url, order) = self.new_order(&ids).await;
        self.answer_http01(&order, http).await;
        let order = self.settle(&url).await;
        assert_eq!(order["status"], "ready", "order {url}: {order}");
        self.finalize_and_download(&url, &order, names).await
    }

    /// revokeCert signed by this account (`kid`).
    pub(crate) async fn revoke(&self, cert_der: &[u8], reason: Option<i64>) -> RawResponse {
        let url = self.raw.url("revokeCert");
        self.post(&url, Some(&revocation(cert_der, reason))).await
    }
}

/// An identifier object for `value`: `ip` if it parses as an address.
pub(crate) fn identifier(value: &str) -> Value {
    if value.parse::<std::net::IpAddr>().is_ok() {
        ip(value)
    } else {
        dns(value)
    }
}

/// The revokeCert payload.
pub(crate) fn revocation(cert_der: &[u8], reason: Option<i64>) -> Value {
    let mut payload = json!({"certificate": b64(cert_der)});
    if let Some(r) = reason {
        payload["reason"] = json!(r);
    }
    payload
}

/// revokeCert signed with `key` in a `jwk` header (the certificate's key).
pub(crate) async fn revoke_with_key(
    raw: &RawClient,
    key: &SigningKey,
    cert_der: &[u8],
    reason: Option<i64>,
) -> RawResponse {
    let url = raw.url("revokeCert");
    let body = sign_with_jwk(key, &raw.nonce().await, &url, &revocation(cert_der, reason));
    raw.post_jose(&url, &body).await
}

/// The challenge of `kind` in `authz` (panics, quoting the authz, if absent).
pub(crate) fn challenge(authz: &Value, kind: &str) -> Value {
    authz["challenges"]
        .as_array()
        .unwrap_or_else(|| panic!("authorization has no challenges: {authz}"))
        .iter()
        .find(|c| c["type"] == kind)
        .unwrap_or_else(|| panic!("{kind} not offered: {authz}"))
        .clone()
}

/// The challenge types offered by `authz`, sorted.
pub(crate) fn challenge_types(authz: &Value) -> Vec<String> {
    let mut types: Vec<String> = authz["challenges"]
        .as_array()
        .unwrap_or_else(|| panic!("authorization has no challenges: {authz}"))
        .iter()
        .map(|c| c["type"].as_str().unwrap_or_default().to_owned())
        .collect();
    types.sort();
    types
}

/// Asserts `201 Created` with a Location; returns (Location, body).
pub(crate) fn created(rsp: &RawResponse, what: &str) -> (String, Value) {
    assert_eq!(
        rsp.status,
        StatusCode::CREATED,
        "{what}: {} {}",
        rsp.status,
        String::from_utf8_lossy(&rsp.body)
    );
    let url = rsp
        .location()
        .unwrap_or_else(|| panic!("{what}: 201 without Location"));
    (url, rsp.json())
}

/// The `Link` headers of `rsp` with relation `rel`, as URLs.
pub(crate) fn links(rsp: &RawResponse, rel: &str) -> Vec<String> {
    rsp.headers
        .get_all(http::header::LINK)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter(|l| {
            l.split(';')
                .skip(1)
                .any(|p| p.trim() == format!("rel=\"{rel}\"") || p.trim() == format!("rel={rel}"))
        })
        .filter_map(|l| {
            let l = l.trim();
            let start = l.find('<')?;
            let end = l.find('>')?;
            Some(l[start + 1..end].to_owned())
        })
        .collect()
}

/// certbot's account key (`private_key.json`, an RSA JWK with the private
/// parts) as a signing key.
pub(crate) fn signing_key_from_rsa_jwk(jwk: &Value) -> SigningKey {
    let n = |k: &str| {
        let s = jwk[k]
            .as_str()
            .unwrap_or_else(|| panic!("RSA JWK has no {k}: {jwk}"));
        BigNum::from_slice(&b64_decode(s).expect("base64url")).expect("bignum")
    };
    let rsa = RsaPrivateKeyBuilder::new(n("n"), n("e"), n("d"))
        .expect("rsa builder")
        .set_factors(n("p"), n("q"))
        .expect("factors")
        .set_crt_params(n("dp"), n("dq"), n("qi"))
        .expect("crt params")
        .build();
    SigningKey::from_pkey(PKey::from_rsa(rsa).expect("pkey")).expect("signing key")
}
