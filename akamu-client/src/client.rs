//! `AcmeClient`: directory discovery, nonces, and signed requests with the
//! one automatic `badNonce` retry (RFC 8555 §6.2, §6.5, §7.1.1, §7.2).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, StatusCode};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::transport::{DEFAULT_REQUEST_TIMEOUT, Response, TlsOptions, Transport};
use crate::{AccountKey, ClientError};

/// Default deadline of [`AcmeClient::poll_order`] and friends (the
/// reference's 30 seconds).
pub const DEFAULT_POLL_TIMEOUT: Duration = Duration::from_secs(30);

/// The directory object (RFC 8555 §7.1.1).
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Directory {
    /// `newNonce` URL.
    pub new_nonce: String,
    /// `newAccount` URL.
    pub new_account: String,
    /// `newOrder` URL.
    pub new_order: String,
    /// `newAuthz` URL (optional: pre-authorization).
    #[serde(default)]
    pub new_authz: Option<String>,
    /// `revokeCert` URL.
    pub revoke_cert: String,
    /// `keyChange` URL.
    pub key_change: String,
    /// `renewalInfo` URL (RFC 9773), when the server supports ARI.
    #[serde(default)]
    pub renewal_info: Option<String>,
    /// The `meta` object.
    #[serde(default)]
    pub meta: DirectoryMeta,
}

/// The directory's `meta` object.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DirectoryMeta {
    /// Terms of service URL.
    #[serde(default)]
    pub terms_of_service: Option<String>,
    /// The CA's website.
    #[serde(default)]
    pub website: Option<String>,
    /// CAA issuer domain names.
    #[serde(default)]
    pub caa_identities: Vec<String>,
    /// Whether new accounts need External Account Binding.
    #[serde(default)]
    pub external_account_required: bool,
    /// RFC 9444 §4.4: the server accepts `subdomainAuthAllowed` in
    /// new-authz and `ancestorDomain` in new-order identifiers.
    #[serde(default)]
    pub subdomain_auth_allowed: bool,
    /// RFC 8739 §3.3 `auto-renewal`: present when the server does STAR.
    #[serde(default, rename = "auto-renewal")]
    pub auto_renewal: Option<Value>,
    /// draft-ietf-acme-dns-persist-02 §4.1: the prefix of hashed account
    /// URIs (present when the server checks dns-persist-01 records in the
    /// draft-02 form).
    #[serde(default)]
    pub account_hash_prefix: Option<String>,
    /// draft-ietf-acme-dns-persist-02 §3.2: issuer domain names a record
    /// may name before any challenge was seen.
    #[serde(default)]
    pub issuer_domain_names: Vec<String>,
    /// draft-ietf-acme-dns-persist-02 §4.3: how long records made with a
    /// replaced account key keep validating, seconds.
    #[serde(default)]
    pub key_rotation_period: Option<u64>,
}

/// Builds an [`AcmeClient`] with non-default trust or timeouts.
#[derive(Clone, Debug)]
pub struct ClientBuilder {
    directory_url: String,
    pub(crate) tls: TlsOptions,
    request_timeout: Duration,
    poll_timeout: Duration,
}

impl ClientBuilder {
    /// Trusts the certificates in `pem` (one or more `CERTIFICATE` blocks)
    /// as additional roots, e.g. a private CA's root. The system roots stay
    /// trusted unless [`ClientBuilder::only_added_roots`] is set.
    pub fn add_root_pem(mut self, pem: &[u8]) -> Result<Self, ClientError> {
        let mut found = 0;
        for cert in CertificateDer::pem_slice_iter(pem) {
            let cert =
                cert.map_err(|e| ClientError::Crypto(format!("cannot parse root PEM: {e}")))?;
            self.tls.extra_roots.push(cert);
            found += 1;
        }
        if found == 0 {
            return Err(ClientError::Crypto("no CERTIFICATE in the root PEM".into()));
        }
        Ok(self)
    }

    /// Trusts only the roots added with [`ClientBuilder::add_root_pem`],
    /// not the system store.
    pub fn only_added_roots(mut self) -> Self {
        self.tls.only_extra_roots = true;
        self
    }

    /// Deadline for each HTTP exchange (default 30 s).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Deadline of [`AcmeClient::poll_order`], [`AcmeClient::poll_authorization`]
    /// and the wait inside [`AcmeClient::finalize`] (default 30 s).
    pub fn poll_timeout(mut self, timeout: Duration) -> Self {
        self.poll_timeout = timeout;
        self
    }

    /// Unlocks options that weaken security ([`crate::danger`]).
    pub fn dangerous(self) -> crate::danger::DangerousClientBuilder {
        crate::danger::DangerousClientBuilder { inner: self }
    }

    /// A plain HTTP(S) getter with this builder's trust and deadline, for
    /// resources outside ACME (a transparency log's tiles); no directory
    /// is fetched. Bodies are read up to [`Fetcher::MAX_BODY`].
    pub fn build_fetcher(self) -> Result<Fetcher, ClientError> {
        let transport =
            Transport::new(&self.tls, self.request_timeout)?.with_max_body(Fetcher::MAX_BODY);
        Ok(Fetcher { transport })
    }

    /// Fetches the directory and returns the client.
    pub async fn build(self) -> Result<AcmeClient, ClientError> {
        let scheme_ok = self.directory_url.starts_with("https://")
            || (self.tls.allow_http && self.directory_url.starts_with("http://"));
        if !scheme_ok {
            return Err(ClientError::InvalidArgument(format!(
                "directory URL {:?} must be https:// (plain HTTP only through danger::allow_plain_http)",
                self.directory_url
            )));
        }
        let transport = Transport::new(&self.tls, self.request_timeout)?;
        let resp = transport
            .request(Method::GET, &self.directory_url, None, Bytes::new())
            .await?
            .error_for_status(&self.directory_url)?;
        let directory: Directory = resp.json("directory")?;
        Ok(AcmeClient {
            inner: Arc::new(Inner {
                transport,
                directory,
                directory_url: self.directory_url,
                poll_timeout: self.poll_timeout,
            }),
        })
    }
}

/// Unauthenticated GETs with the trust, deadline and body cap of a
/// [`ClientBuilder`] ([`ClientBuilder::build_fetcher`]).
pub struct Fetcher {
    transport: Transport,
}

impl Fetcher {
    /// The largest body read: a full C2SP entry bundle of the longest
    /// entries (256 × (2 + 65535) bytes).
    pub const MAX_BODY: usize = 256 * 65_537;

    /// GETs `url`: `Ok(Some(body))` for a 200, `Ok(None)` for a 404, an
    /// error for anything else or a failed exchange.
    pub async fn get(&self, url: &str) -> Result<Option<Bytes>, ClientError> {
        let resp = self
            .transport
            .request(Method::GET, url, None, Bytes::new())
            .await?;
        match resp.status {
            StatusCode::OK => Ok(Some(resp.body)),
            StatusCode::NOT_FOUND => Ok(None),
            s => Err(ClientError::Http(format!("GET {url}: HTTP {s}"))),
        }
    }
}

/// An ACME client bound to one server directory. Cheap to clone; clones
/// share the connection pool and the nonce pool.
#[derive(Clone)]
pub struct AcmeClient {
    inner: Arc<Inner>,
}

struct Inner {
    transport: Transport,
    directory: Directory,
    directory_url: String,
    poll_timeout: Duration,
}

/// Which key signs a request and how the server finds it (RFC 8555 §6.2).
#[derive(Clone, Copy)]
pub(crate) enum Signer<'a> {
    /// An account's key, named by its URL (`kid`).
    Kid(&'a AccountKey, &'a str),
    /// A key sent in full (`jwk`): new-account, revocation by certificate key.
    Jwk(&'a AccountKey),
}

impl AcmeClient {
    /// Fetches the directory over HTTPS, trusting the system roots.
    pub async fn new(directory_url: &str) -> Result<Self, ClientError> {
        Self::builder(directory_url).build().await
    }

    /// A builder for extra roots, timeouts or (in [`crate::danger`]) plain
    /// HTTP.
    pub fn builder(directory_url: &str) -> ClientBuilder {
        ClientBuilder {
            directory_url: directory_url.to_owned(),
            tls: TlsOptions::default(),
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            poll_timeout: DEFAULT_POLL_TIMEOUT,
        }
    }

    /// The directory fetched at construction.
    pub fn directory(&self) -> &Directory {
        &self.inner.directory
    }

    /// The directory URL.
    pub fn directory_url(&self) -> &str {
        &self.inner.directory_url
    }

    pub(crate) fn poll_timeout(&self) -> Duration {
        self.inner.poll_timeout
    }

    /// A fresh nonce: from the pool, or `HEAD newNonce` on a miss.
    async fn nonce(&self) -> Result<String, ClientError> {
        if let Some(n) = self.inner.transport.pop_nonce() {
            return Ok(n);
        }
        let url = &self.inner.directory.new_nonce;
        self.inner
            .transport
            .request(Method::HEAD, url, None, Bytes::new())
            .await?
            .error_for_status(url)?;
        // `request` pooled the Replay-Nonce of the answer.
        self.inner.transport.pop_nonce().ok_or_else(|| {
            ClientError::Http(format!("{url} answered without a Replay-Nonce header"))
        })
    }

    /// A JWS-signed POST; `payload` `None` is POST-as-GET (RFC 8555 §6.3).
    /// A `badNonce` answer is retried once with the nonce it carried.
    /// Error statuses become errors.
    pub(crate) async fn post(
        &self,
        url: &str,
        signer: Signer<'_>,
        payload: Option<&Value>,
    ) -> Result<Response, ClientError> {
        let payload = match payload {
            Some(v) => v.to_string().into_bytes(),
            None => Vec::new(),
        };
        let mut retried = false;
        loop {
            let nonce = self.nonce().await?;
            let (key, mut protected) = match signer {
                Signer::Kid(key, kid) => (key, json!({"kid": kid})),
                Signer::Jwk(key) => (key, json!({"jwk": key.jwk().to_json()})),
            };
            protected["nonce"] = nonce.into();
            protected["url"] = url.into();
            let body = key.signing_key().sign_flattened(protected, &payload)?;
            let resp = self
                .inner
                .transport
                .request(
                    Method::POST,
                    url,
                    Some("application/jose+json"),
                    Bytes::from(body.to_string()),
                )
                .await?;
            match resp.error_for_status(url) {
                Err(e) if e.is_acme("badNonce") && !retried => {
                    tracing::debug!(url, "badNonce: retrying once");
                    retried = true;
                }
                other => return other,
            }
        }
    }

    /// An unauthenticated GET (directory-like resources, ARI, STAR).
    pub(crate) async fn get(&self, url: &str) -> Result<Response, ClientError> {
        self.inner
            .transport
            .request(Method::GET, url, None, Bytes::new())
            .await?
            .error_for_status(url)
    }
}

impl std::fmt::Debug for AcmeClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AcmeClient")
            .field("directory_url", &self.inner.directory_url)
            .finish_non_exhaustive()
    }
}
