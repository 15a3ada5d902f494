//! HTTP for the client: hyper-util's pooled client over hyper-rustls (ring),
//! a deadline on every request, a cap on every response body, and the
//! `Replay-Nonce` pool.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, LOCATION, RETRY_AFTER, USER_AGENT};
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;

use crate::ClientError;
use crate::error::Problem;

/// Default deadline for one HTTP exchange (connect, headers and body).
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// TCP connect deadline.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest response body read (a certificate chain is a few KiB; an order
/// with many authorizations some tens of KiB).
pub const MAX_RESPONSE_BYTES: usize = 1024 * 1024;
/// Nonces kept for reuse; more are dropped (they expire on the server anyway).
const MAX_POOLED_NONCES: usize = 16;
/// `User-Agent` sent with every request (RFC 8555 §6.1).
const UA: &str = concat!("akamu-client/", env!("CARGO_PKG_VERSION"));

/// A response read in full.
#[derive(Debug)]
pub(crate) struct Response {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Response {
    /// The `Location` header.
    pub(crate) fn location(&self) -> Option<String> {
        header_str(&self.headers, LOCATION.as_str()).map(str::to_owned)
    }

    /// `Retry-After` as a duration from now (RFC 9110 §10.2.3: seconds or an
    /// HTTP-date).
    pub(crate) fn retry_after(&self) -> Option<Duration> {
        header_str(&self.headers, RETRY_AFTER.as_str()).and_then(parse_retry_after)
    }

    /// The `Content-Type` without parameters, lower-cased.
    pub(crate) fn content_type(&self) -> String {
        header_str(&self.headers, CONTENT_TYPE.as_str())
            .and_then(|v| v.split(';').next())
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase()
    }

    /// The body as JSON of type `T`.
    pub(crate) fn json<T: serde::de::DeserializeOwned>(
        &self,
        what: &str,
    ) -> Result<T, ClientError> {
        serde_json::from_slice(&self.body)
            .map_err(|e| ClientError::Http(format!("malformed {what} from the server: {e}")))
    }

    /// Turns an error status into the right `ClientError`: the problem
    /// document when there is one, the bare status otherwise.
    pub(crate) fn error_for_status(self, url: &str) -> Result<Self, ClientError> {
        if self.status.is_success() {
            return Ok(self);
        }
        if self.content_type() == "application/problem+json"
            && let Ok(mut p) = serde_json::from_slice::<Problem>(&self.body)
        {
            if p.status.is_none() {
                p.status = Some(self.status.as_u16());
            }
            return Err(p.into());
        }
        Err(ClientError::HttpStatus {
            status: self.status.as_u16(),
            url: url.to_owned(),
        })
    }
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Parses a `Retry-After` value.
pub(crate) fn parse_retry_after(v: &str) -> Option<Duration> {
    let v = v.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let fmt = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    let when = time::PrimitiveDateTime::parse(v, &fmt).ok()?.assume_utc();
    let now = time::OffsetDateTime::now_utc();
    let secs = (when - now).whole_seconds().max(0);
    Some(Duration::from_secs(u64::try_from(secs).unwrap_or(0)))
}

/// Where TLS trust comes from.
#[derive(Clone, Debug, Default)]
pub(crate) struct TlsOptions {
    /// Extra trust anchors (a private CA's root).
    pub extra_roots: Vec<CertificateDer<'static>>,
    /// Trust only `extra_roots`, not the system store.
    pub only_extra_roots: bool,
    /// Accept plain `http://` URLs (tests only; see `danger`).
    pub allow_http: bool,
    /// Skip certificate verification entirely (tests only; see `danger`).
    pub no_verify: bool,
}

/// The HTTP side of an `AcmeClient`.
pub(crate) struct Transport {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    timeout: Duration,
    nonces: Mutex<Vec<String>>,
    /// The largest response body read ([`MAX_RESPONSE_BYTES`] unless set).
    max_body: usize,
}

impl Transport {
    pub(crate) fn new(tls: &TlsOptions, timeout: Duration) -> Result<Self, ClientError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| ClientError::Http(format!("TLS setup: {e}")))?;
        let config = if tls.no_verify {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(crate::danger::NoVerifier::new()))
                .with_no_client_auth()
        } else {
            builder
                .with_root_certificates(root_store(tls)?)
                .with_no_client_auth()
        };
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(CONNECT_TIMEOUT));
        let connector = HttpsConnectorBuilder::new().with_tls_config(config);
        let connector = if tls.allow_http {
            connector.https_or_http()
        } else {
            connector.https_only()
        };
        let connector = connector.enable_http1().enable_http2().wrap_connector(http);
        let client = Client::builder(TokioExecutor::new()).build(connector);
        Ok(Self {
            client,
            timeout,
            nonces: Mutex::new(Vec::new()),
            max_body: MAX_RESPONSE_BYTES,
        })
    }

    /// Reads response bodies up to `max` bytes.
    pub(crate) fn with_max_body(mut self, max: usize) -> Self {
        self.max_body = max;
        self
    }

    /// One HTTP exchange with the deadline and body cap applied. Any
    /// `Replay-Nonce` in the response goes to the pool.
    pub(crate) async fn request(
        &self,
        method: Method,
        url: &str,
        content_type: Option<&str>,
        body: Bytes,
    ) -> Result<Response, ClientError> {
        let mut req = Request::builder()
            .method(method.clone())
            .uri(url)
            .header(USER_AGENT, UA);
        if let Some(ct) = content_type {
            req = req.header(CONTENT_TYPE, ct);
        }
        let req = req
            .body(Full::new(body))
            .map_err(|e| ClientError::Http(format!("bad request URL {url:?}: {e}")))?;
        tracing::debug!(%method, url, "request");
        let exchange = async {
            let resp =
                self.client.request(req).await.map_err(|e| {
                    ClientError::Http(format!("{method} {url}: {}", error_chain(&e)))
                })?;
            let (parts, body) = resp.into_parts();
            let body = Limited::new(body, self.max_body)
                .collect()
                .await
                .map_err(|e| ClientError::Http(format!("reading the response from {url}: {e}")))?
                .to_bytes();
            Ok::<_, ClientError>(Response {
                status: parts.status,
                headers: parts.headers,
                body,
            })
        };
        let resp = tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| {
                ClientError::Http(format!(
                    "{method} {url}: no complete response within {:?}",
                    self.timeout
                ))
            })??;
        tracing::debug!(status = resp.status.as_u16(), url, "response");
        if let Some(n) = header_str(&resp.headers, "replay-nonce") {
            self.push_nonce(n.to_owned());
        }
        Ok(resp)
    }

    /// Takes a nonce from the pool.
    pub(crate) fn pop_nonce(&self) -> Option<String> {
        self.lock_nonces().pop()
    }

    fn push_nonce(&self, nonce: String) {
        // RFC 8555 §6.5.1: a nonce is base64url; ignore anything else.
        if nonce.is_empty()
            || !nonce
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return;
        }
        let mut pool = self.lock_nonces();
        if pool.len() >= MAX_POOLED_NONCES {
            pool.remove(0);
        }
        pool.push(nonce);
    }

    fn lock_nonces(&self) -> std::sync::MutexGuard<'_, Vec<String>> {
        // The lock is never held across a panic point; recover anyway.
        self.nonces.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn root_store(tls: &TlsOptions) -> Result<RootCertStore, ClientError> {
    let mut roots = RootCertStore::empty();
    if !tls.only_extra_roots {
        let native = rustls_native_certs::load_native_certs();
        for e in &native.errors {
            tracing::warn!("system trust store: {e}");
        }
        let (added, ignored) = roots.add_parsable_certificates(native.certs);
        tracing::debug!(added, ignored, "system trust anchors");
    }
    for cert in &tls.extra_roots {
        roots.add(cert.clone()).map_err(|e| {
            ClientError::Crypto(format!("extra root is not a usable trust anchor: {e}"))
        })?;
    }
    if roots.is_empty() {
        return Err(ClientError::Crypto(
            "no trust anchors: the system store is empty and no extra root was given".into(),
        ));
    }
    Ok(roots)
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_seconds_and_dates() {
        assert_eq!(parse_retry_after("7"), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon"), None);
    }
}
