//! Clients of the CA under test.
//!
//! - [`acme_account`] and the order helpers drive `instant-acme`, a
//!   third-party RFC 8555 client, through an HTTPS client that trusts only the
//!   CA certificate from the READY line.
//! - [`RawClient`] sends hand-built requests (any content type, any body) for
//!   the bad-input tests, and [`JwsAccount`] signs them with `akamu-jose`.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use akamu_jose::{Alg, SigningKey};
use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use instant_acme::{
    Account, AccountBuilder, AuthorizationStatus, BodyWrapper, ChallengeType, Identifier,
    NewAccount, NewOrder, Order, OrderStatus, RetryPolicy,
};
use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use serde_json::{Value, json};

use super::http01::Http01Server;
use super::procs::Ca;

/// `application/problem+json`, the only acceptable error body (RFC 8555 §6.7).
pub(crate) const PROBLEM_JSON: &str = "application/problem+json";
/// `application/jose+json`, the content type of every ACME POST (§6.2).
pub(crate) const JOSE_JSON: &str = "application/jose+json";

/// How long order polling waits before giving up.
const POLL_TIMEOUT: Duration = Duration::from_secs(60);

/// A rustls client config that trusts only the certificates in `ca_cert`,
/// with the ring provider chosen explicitly (CRATE-NOTES: rustls / hyper).
pub(crate) fn tls_config(ca_cert: &Path) -> rustls::ClientConfig {
    let mut roots = RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(ca_cert)
        .unwrap_or_else(|e| panic!("read CA cert {}: {e}", ca_cert.display()));
    for cert in certs {
        let cert = cert.unwrap_or_else(|e| panic!("parse CA cert {}: {e}", ca_cert.display()));
        roots.add(cert).expect("CA cert usable as a trust anchor");
    }
    assert!(!roots.is_empty(), "no certificate in {}", ca_cert.display());
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth()
}

fn https_connector(ca_cert: &Path) -> HttpsConnector<HttpConnector> {
    HttpsConnectorBuilder::new()
        .with_tls_config(tls_config(ca_cert))
        .https_only()
        .enable_http1()
        .enable_http2()
        .build()
}

/// An instant-acme account builder whose HTTPS client trusts only the CA.
pub(crate) fn account_builder(ca: &Ca) -> AccountBuilder {
    account_builder_trusting(ca.ca_cert())
}

/// An instant-acme account builder whose HTTPS client trusts only `ca_cert`.
pub(crate) fn account_builder_trusting(ca_cert: &Path) -> AccountBuilder {
    let http: HyperClient<_, BodyWrapper<Bytes>> =
        HyperClient::builder(TokioExecutor::new()).build(https_connector(ca_cert));
    Account::builder_with_http(Box::new(http))
}

/// The ACME problem type of an instant-acme error, without the
/// `urn:ietf:params:acme:error:` prefix (panics if it is not a problem).
pub(crate) fn problem_type(err: &instant_acme::Error) -> String {
    match err {
        instant_acme::Error::Api(p) => p
            .r#type
            .as_deref()
            .unwrap_or_default()
            .trim_start_matches("urn:ietf:params:acme:error:")
            .to_owned(),
        other => panic!("expected an ACME problem document, got: {other:?}"),
    }
}

/// Creates a new ACME account (fresh P-256 key, ToS agreed) with instant-acme.
pub(crate) async fn acme_account(ca: &Ca) -> Account {
    let (account, _credentials) = account_builder(ca)
        .create(
            &NewAccount {
                contact: &[],
                terms_of_service_agreed: true,
                only_return_existing: false,
            },
            ca.directory().to_owned(),
            None,
        )
        .await
        .unwrap_or_else(|e| panic!("instant-acme could not create an account: {e}"));
    account
}

/// What a completed order gives the applicant.
#[derive(Debug, Clone)]
pub(crate) struct Issued {
    /// The order URL.
    pub order_url: String,
    /// The downloaded chain, PEM, leaf first.
    pub chain_pem: String,
    /// The leaf's private key, PEM.
    pub key_pem: String,
    /// The certificate URL from the valid order.
    pub cert_url: String,
}

/// Places a new order for DNS `names`.
pub(crate) async fn new_order(account: &Account, names: &[&str]) -> Order {
    let identifiers: Vec<Identifier> = names
        .iter()
        .map(|n| Identifier::Dns((*n).to_owned()))
        .collect();
    account
        .new_order(&NewOrder::new(&identifiers))
        .await
        .unwrap_or_else(|e| panic!("new-order for {names:?} failed: {e}"))
}

/// Publishes the http-01 key authorization of every pending authorization on
/// `http` and tells the CA the challenges are ready. Returns the challenge URLs.
pub(crate) async fn answer_http01(order: &mut Order, http: &Http01Server) -> Vec<String> {
    let mut urls = Vec::new();
    let mut authzs = order.authorizations();
    while let Some(authz) = authzs.next().await {
        let mut authz = authz.unwrap_or_else(|e| panic!("fetch authorization: {e}"));
        match authz.status {
            AuthorizationStatus::Pending => {}
            AuthorizationStatus::Valid => continue,
            other => panic!(
                "authorization {} is {other:?}, expected pending",
                authz.url()
            ),
        }
        let mut challenge = authz
            .challenge(ChallengeType::Http01)
            .expect("the CA offers http-01");
        http.set(&challenge.token, challenge.key_authorization().as_str());
        urls.push(challenge.url.clone());
        match challenge.set_ready().await {
            Ok(()) => {}
            // The CA waited for the validation and answered with its
            // failure; callers assert the outcome on the order/authz.
            Err(instant_acme::Error::Api(_)) => {}
            Err(e) => panic!("respond to challenge: {e}"),
        }
    }
    urls
}

/// Polls until the order is `ready` (panics on `invalid` or a timeout).
pub(crate) async fn wait_ready(order: &mut Order) {
    let policy = RetryPolicy::new()
        .initial_delay(Duration::from_millis(200))
        .backoff(1.5)
        .timeout(POLL_TIMEOUT);
    let status = order
        .poll_ready(&policy)
        .await
        .unwrap_or_else(|e| panic!("order {} never became ready: {e}", order.url()));
    let url = order.url().to_owned();
    assert_eq!(
        status,
        OrderStatus::Ready,
        "order {url} state: {:?}",
        order.state()
    );
}

/// A P-256 key and a CSR naming exactly `names` (no subject), as DER.
pub(crate) fn csr(names: &[&str]) -> (Vec<u8>, String) {
    let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
    let mut params = rcgen::CertificateParams::new(names).expect("valid SANs");
    params.distinguished_name = rcgen::DistinguishedName::new();
    let key = rcgen::KeyPair::generate().expect("generate P-256 key");
    let csr = params.serialize_request(&key).expect("serialize CSR");
    (csr.der().to_vec(), key.serialize_pem())
}

/// Finalizes with a fresh CSR for `names` and polls until the chain can be
/// downloaded.
pub(crate) async fn finalize_and_download(order: &mut Order, names: &[&str]) -> Issued {
    let (csr_der, key_pem) = csr(names);
    order
        .finalize_csr(&csr_der)
        .await
        .unwrap_or_else(|e| panic!("finalize {} failed: {e}", order.url()));
    let chain_pem = download(order).await;
    let cert_url = order
        .state()
        .certificate
        .clone()
        .expect("a valid order has a certificate URL");
    Issued {
        order_url: order.url().to_owned(),
        chain_pem,
        key_pem,
        cert_url,
    }
}

/// Polls a finalized order until `valid` and downloads the chain.
pub(crate) async fn download(order: &mut Order) -> String {
    let policy = RetryPolicy::new()
        .initial_delay(Duration::from_millis(200))
        .backoff(1.5)
        .timeout(POLL_TIMEOUT);
    order
        .poll_certificate(&policy)
        .await
        .unwrap_or_else(|e| panic!("certificate for {} never arrived: {e}", order.url()))
}

/// The whole http-01 flow: order → challenges → ready → finalize → download.
pub(crate) async fn issue_http01(account: &Account, http: &Http01Server, names: &[&str]) -> Issued {
    let mut order = new_order(account, names).await;
    assert_eq!(
        order.state().status,
        OrderStatus::Pending,
        "a new order starts pending"
    );
    answer_http01(&mut order, http).await;
    wait_ready(&mut order).await;
    finalize_and_download(&mut order, names).await
}

/// One HTTP response, fully read.
#[derive(Debug, Clone)]
pub(crate) struct RawResponse {
    /// Status code.
    pub status: StatusCode,
    /// Headers.
    pub headers: HeaderMap,
    /// Body bytes.
    pub body: Bytes,
}

impl RawResponse {
    /// The `Content-Type` header, or "" when absent.
    pub(crate) fn content_type(&self) -> &str {
        self.headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// The `Replay-Nonce` header, if any.
    pub(crate) fn nonce(&self) -> Option<String> {
        self.headers
            .get("replay-nonce")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    }

    /// The `Location` header, if any.
    pub(crate) fn location(&self) -> Option<String> {
        self.headers
            .get(http::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    }

    /// The body as JSON (panics with the body text if it is not).
    pub(crate) fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}); status {}: {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// Asserts an RFC 7807 problem: not a 500, a 4xx status, content type
    /// `application/problem+json`, and a `type` that is one of `types`
    /// (short names like `"malformed"`, prefixed here with
    /// `urn:ietf:params:acme:error:`; an empty list accepts any ACME error
    /// type). Returns the problem document.
    pub(crate) fn assert_problem(&self, what: &str, types: &[&str]) -> Value {
        let text = String::from_utf8_lossy(&self.body);
        assert_ne!(
            self.status,
            StatusCode::INTERNAL_SERVER_ERROR,
            "{what}: the server answered 500: {text}"
        );
        assert!(
            self.status.is_client_error(),
            "{what}: expected a 4xx status, got {}: {text}",
            self.status
        );
        assert!(
            self.content_type().starts_with(PROBLEM_JSON),
            "{what}: expected Content-Type {PROBLEM_JSON}, got {:?} (status {}): {text}",
            self.content_type(),
            self.status
        );
        let problem = self.json();
        eprintln!("[e2e] {what}: {} {problem}", self.status);
        let ty = problem["type"].as_str().unwrap_or_default();
        let wanted: Vec<String> = types
            .iter()
            .map(|t| format!("urn:ietf:params:acme:error:{t}"))
            .collect();
        assert!(
            ty.starts_with("urn:ietf:params:acme:error:")
                && (wanted.is_empty() || wanted.iter().any(|w| w == ty)),
            "{what}: problem type {ty:?} is not one of {wanted:?}; status {}; document: {problem}",
            self.status
        );
        if let Some(status) = problem.get("status").and_then(Value::as_u64) {
            assert_eq!(
                status,
                u64::from(self.status.as_u16()),
                "{what}: problem `status` differs from the HTTP status: {problem}"
            );
        }
        problem
    }
}

/// A plain HTTPS client trusting only the CA, for hand-built requests.
#[derive(Clone)]
pub(crate) struct RawClient {
    client: HyperClient<HttpsConnector<HttpConnector>, Full<Bytes>>,
    directory: Value,
    /// Requests to URLs under `.0` are sent under `.1` instead (one front
    /// end of several serving the same `base_url`); JWS `url`s are not
    /// changed.
    route: Option<(String, String)>,
}

impl RawClient {
    /// Connects to `ca` and fetches its directory.
    pub(crate) async fn new(ca: &Ca) -> RawClient {
        let client =
            HyperClient::builder(TokioExecutor::new()).build(https_connector(ca.ca_cert()));
        let mut raw = RawClient {
            client,
            directory: Value::Null,
            route: None,
        };
        let rsp = raw.get(ca.directory()).await;
        assert_eq!(rsp.status, StatusCode::OK, "GET directory: {rsp:?}");
        raw.directory = rsp.json();
        raw
    }

    /// Connects to the CA whose certificate is `ca_cert` and fetches the
    /// directory at `directory` (a CA the harness did not start as [`Ca`]).
    /// Its TCP connections set `TCP_NODELAY` (a POST's headers and body
    /// are two writes: without it, latencies measured through this client
    /// would be the peer's 40 ms delayed ACK).
    pub(crate) async fn connect(ca_cert: &Path, directory: &str) -> RawClient {
        let mut tcp = HttpConnector::new();
        tcp.set_nodelay(true);
        tcp.enforce_http(false);
        let connector = HttpsConnectorBuilder::new()
            .with_tls_config(tls_config(ca_cert))
            .https_only()
            .enable_http1()
            .enable_http2()
            .wrap_connector(tcp);
        let client = HyperClient::builder(TokioExecutor::new()).build(connector);
        let mut raw = RawClient {
            client,
            directory: Value::Null,
            route: None,
        };
        let rsp = raw.get(directory).await;
        assert_eq!(rsp.status, StatusCode::OK, "GET directory: {rsp:?}");
        raw.directory = rsp.json();
        raw
    }

    /// This client, sending every request for a URL under `base_url` to
    /// `origin` instead (a load balancer's choice, made by the test).
    pub(crate) fn routed(&self, base_url: &str, origin: &str) -> RawClient {
        RawClient {
            route: Some((base_url.to_owned(), origin.to_owned())),
            ..self.clone()
        }
    }

    /// The directory object.
    pub(crate) fn directory(&self) -> &Value {
        &self.directory
    }

    /// A URL from the directory (`"newNonce"`, `"newAccount"`, …).
    pub(crate) fn url(&self, resource: &str) -> String {
        self.directory[resource]
            .as_str()
            .unwrap_or_else(|| panic!("directory has no {resource}: {}", self.directory))
            .to_owned()
    }

    /// Sends one request.
    pub(crate) async fn send(
        &self,
        method: Method,
        url: &str,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> RawResponse {
        self.send_with_headers(method, url, content_type, body, &[])
            .await
    }

    /// Sends one request with extra headers (e.g. `X-Forwarded-For`).
    pub(crate) async fn send_with_headers(
        &self,
        method: Method,
        url: &str,
        content_type: Option<&str>,
        body: Vec<u8>,
        headers: &[(&str, &str)],
    ) -> RawResponse {
        let routed = match &self.route {
            Some((from, to)) if url.starts_with(from.as_str()) => {
                format!("{to}{}", &url[from.len()..])
            }
            _ => url.to_owned(),
        };
        let mut req = Request::builder().method(method).uri(&routed);
        if let Some(ct) = content_type {
            req = req.header(http::header::CONTENT_TYPE, ct);
        }
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        let req = req
            .body(Full::new(Bytes::from(body)))
            .expect("valid request");
        let rsp = self
            .client
            .request(req)
            .await
            .unwrap_or_else(|e| panic!("request to {url} failed: {e:?}"));
        let (parts, body) = rsp.into_parts();
        let body = body
            .collect()
            .await
            .unwrap_or_else(|e| panic!("read body from {url}: {e}"))
            .to_bytes();
        RawResponse {
            status: parts.status,
            headers: parts.headers,
            body,
        }
    }

    /// GET `url`.
    pub(crate) async fn get(&self, url: &str) -> RawResponse {
        self.send(Method::GET, url, None, Vec::new()).await
    }

    /// A fresh nonce from newNonce (HEAD).
    pub(crate) async fn nonce(&self) -> String {
        let rsp = self
            .send(Method::HEAD, &self.url("newNonce"), None, Vec::new())
            .await;
        assert!(rsp.status.is_success(), "HEAD newNonce: {rsp:?}");
        rsp.nonce().expect("newNonce returns a Replay-Nonce")
    }

    /// POST a body with `application/jose+json`.
    pub(crate) async fn post_jose(&self, url: &str, body: &Value) -> RawResponse {
        self.send(
            Method::POST,
            url,
            Some(JOSE_JSON),
            body.to_string().into_bytes(),
        )
        .await
    }
}

/// An ACME account driven by hand: our own key, our own JWS.
pub(crate) struct JwsAccount {
    /// The account key.
    pub key: SigningKey,
    /// The account URL (`kid`).
    pub kid: String,
}

impl JwsAccount {
    /// Registers a fresh ES256 account through newAccount with a `jwk` header.
    pub(crate) async fn create(raw: &RawClient) -> JwsAccount {
        let key = SigningKey::generate(Alg::Es256).expect("generate ES256 key");
        let url = raw.url("newAccount");
        let body = sign_with_jwk(
            &key,
            &raw.nonce().await,
            &url,
            &json!({"termsOfServiceAgreed": true}),
        );
        let rsp = raw.post_jose(&url, &body).await;
        assert_eq!(
            rsp.status,
            StatusCode::CREATED,
            "newAccount: {} {}",
            rsp.status,
            String::from_utf8_lossy(&rsp.body)
        );
        let kid = rsp.location().expect("newAccount returns Location");
        JwsAccount { key, kid }
    }

    /// A flattened JWS with `kid`, `nonce` and `url`, over `payload`
    /// (`None` = POST-as-GET, empty payload).
    pub(crate) fn sign(&self, nonce: &str, url: &str, payload: Option<&Value>) -> Value {
        let payload = payload
            .map(|p| p.to_string().into_bytes())
            .unwrap_or_default();
        self.key
            .sign_flattened(
                json!({"kid": self.kid, "nonce": nonce, "url": url}),
                &payload,
            )
            .expect("sign JWS")
    }

    /// The inner JWS of a key-change to `new_key` (RFC 8555 §7.3.5):
    /// signed by the new key, naming this account and its current key;
    /// `url` is the keyChange URL.
    pub(crate) fn key_change_inner(&self, new_key: &SigningKey, url: &str) -> Value {
        new_key
            .sign_flattened(
                json!({"jwk": new_key.public_jwk().expect("jwk").to_json(), "url": url}),
                json!({"account": self.kid, "oldKey": self.key.public_jwk().expect("jwk").to_json()})
                    .to_string()
                    .as_bytes(),
            )
            .expect("inner JWS")
    }
}

/// A flattened JWS with an embedded `jwk` (newAccount, revoke by cert key).
pub(crate) fn sign_with_jwk(key: &SigningKey, nonce: &str, url: &str, payload: &Value) -> Value {
    let jwk = key.public_jwk().expect("public JWK").to_json();
    key.sign_flattened(
        json!({"jwk": jwk, "nonce": nonce, "url": url}),
        payload.to_string().as_bytes(),
    )
    .expect("sign JWS")
}
