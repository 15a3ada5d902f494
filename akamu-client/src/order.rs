//! Orders, authorizations and challenges (RFC 8555 §7.1.3-§7.1.5, §7.4,
//! §7.5), with polling that backs off exponentially, honours `Retry-After`
//! and stops at a deadline.

use std::time::{Duration, Instant};

use akamu_jose::b64;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::error::Problem;
use crate::transport::Response;
use crate::{Account, AcmeClient, ClientError};

/// First wait between two polls.
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
/// Longest wait between two polls without a `Retry-After`.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Longest `Retry-After` honoured as given (larger values are capped).
const MAX_RETRY_AFTER: Duration = Duration::from_secs(120);

/// An identifier (RFC 8555 §7.1.4): `{"type": …, "value": …}`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Identifier {
    /// `dns` or `ip`.
    pub r#type: String,
    /// The name or address.
    pub value: String,
    /// RFC 9444 §4.3: in a new order, an ancestor domain of `value` whose
    /// authorization (covering its subdomains) stands for this
    /// identifier's. Needs `meta.subdomainAuthAllowed`.
    #[serde(
        default,
        rename = "ancestorDomain",
        skip_serializing_if = "Option::is_none"
    )]
    pub ancestor_domain: Option<String>,
}

impl Identifier {
    /// A DNS name (`*.example.com` for a wildcard).
    pub fn dns(name: impl Into<String>) -> Self {
        Self {
            r#type: "dns".into(),
            value: name.into(),
            ancestor_domain: None,
        }
    }

    /// An IP address (RFC 8738), IPv4 or IPv6 in text form.
    pub fn ip(addr: impl Into<String>) -> Self {
        Self {
            r#type: "ip".into(),
            value: addr.into(),
            ancestor_domain: None,
        }
    }

    /// This identifier, ordered under the authorization of `ancestor`
    /// (RFC 9444 `ancestorDomain`): the server authorizes `ancestor` for
    /// its subdomains (dns-01) or reuses such an authorization.
    pub fn below(mut self, ancestor: impl Into<String>) -> Self {
        self.ancestor_domain = Some(ancestor.into());
        self
    }

    /// A Tor hidden-service name (`….onion`). RFC 9799 §3 carries these as
    /// `dns` identifiers, so this is [`Identifier::dns`] by another name.
    pub fn onion(name: impl Into<String>) -> Self {
        Self::dns(name)
    }
}

/// An order (RFC 8555 §7.1.3).
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Order {
    /// The order URL (from `Location`; not part of the JSON).
    #[serde(skip)]
    pub url: String,
    /// `pending`, `ready`, `processing`, `valid` or `invalid`.
    pub status: String,
    /// When the order expires (RFC 3339).
    #[serde(default)]
    pub expires: Option<String>,
    /// The identifiers ordered.
    #[serde(default)]
    pub identifiers: Vec<Identifier>,
    /// Requested notBefore.
    #[serde(default)]
    pub not_before: Option<String>,
    /// Requested notAfter.
    #[serde(default)]
    pub not_after: Option<String>,
    /// The error that made the order invalid.
    #[serde(default)]
    pub error: Option<Problem>,
    /// Authorization URLs.
    #[serde(default)]
    pub authorizations: Vec<String>,
    /// Finalize URL.
    #[serde(default)]
    pub finalize: String,
    /// Certificate URL, once `valid`.
    #[serde(default)]
    pub certificate: Option<String>,
    /// The rolling certificate URL of a STAR order (RFC 8739 §3.1.2).
    #[serde(default, rename = "star-certificate")]
    pub star_certificate: Option<String>,
    /// `Retry-After` of the response this was read from.
    #[serde(skip)]
    pub retry_after: Option<Duration>,
}

/// An authorization (RFC 8555 §7.1.4).
#[derive(Clone, Debug, Deserialize)]
pub struct Authorization {
    /// The authorization URL.
    #[serde(skip)]
    pub url: String,
    /// The identifier to prove control of.
    pub identifier: Identifier,
    /// `pending`, `valid`, `invalid`, `deactivated`, `expired`, `revoked`.
    pub status: String,
    /// When it expires (RFC 3339).
    #[serde(default)]
    pub expires: Option<String>,
    /// The challenges offered.
    #[serde(default)]
    pub challenges: Vec<Challenge>,
    /// Whether the order asked for `*.` + the identifier.
    #[serde(default)]
    pub wildcard: bool,
    /// RFC 9444 §4.1: the authorization also covers the names below the
    /// identifier.
    #[serde(default, rename = "subdomainAuthAllowed")]
    pub subdomain_auth_allowed: bool,
    /// `Retry-After` of the response this was read from.
    #[serde(skip)]
    pub retry_after: Option<Duration>,
}

impl Authorization {
    /// The challenge of type `kind` (`http-01`, `dns-01`, `tls-alpn-01`, …).
    pub fn find_challenge(&self, kind: &str) -> Option<&Challenge> {
        self.challenges.iter().find(|c| c.r#type == kind)
    }
}

/// A challenge (RFC 8555 §7.1.5, §8).
#[derive(Clone, Debug, Deserialize)]
pub struct Challenge {
    /// The challenge URL.
    pub url: String,
    /// The challenge type.
    pub r#type: String,
    /// `pending`, `processing`, `valid` or `invalid`.
    pub status: String,
    /// The token, for the token-based types.
    #[serde(default)]
    pub token: Option<String>,
    /// When it was validated (RFC 3339).
    #[serde(default)]
    pub validated: Option<String>,
    /// Why validation failed.
    #[serde(default)]
    pub error: Option<Problem>,
    /// Any other members (e.g. RFC 9799's `nonce`, dns-persist-01's
    /// `issuer-domain-names`).
    #[serde(flatten)]
    pub extra: serde_json::Map<String, Value>,
}

/// Options for [`AcmeClient::new_order_with`].
#[derive(Clone, Copy, Debug, Default)]
pub struct NewOrder<'a> {
    /// The identifiers to certify.
    pub identifiers: &'a [Identifier],
    /// Requested notBefore (RFC 3339).
    pub not_before: Option<&'a str>,
    /// Requested notAfter (RFC 3339).
    pub not_after: Option<&'a str>,
    /// The ARI cert-id of the certificate this order replaces (RFC 9773 §5).
    pub replaces: Option<&'a str>,
}

/// A progress callback: the last status seen and the time spent so far.
pub type OnWait<'a> = &'a (dyn Fn(&str, Duration) + Send + Sync);

/// How long to poll and whom to tell while waiting.
#[derive(Clone, Copy)]
pub struct PollOptions<'a> {
    /// Give up after this long.
    pub timeout: Duration,
    /// Called before each wait with the last status and the time spent.
    pub on_wait: Option<OnWait<'a>>,
}

impl std::fmt::Debug for PollOptions<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PollOptions")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl AcmeClient {
    /// Places an order for `identifiers` (RFC 8555 §7.4).
    pub async fn new_order(
        &self,
        account: &Account,
        identifiers: &[Identifier],
    ) -> Result<Order, ClientError> {
        self.new_order_with(
            account,
            &NewOrder {
                identifiers,
                ..NewOrder::default()
            },
        )
        .await
    }

    /// Places an order with a validity window or an ARI `replaces`.
    pub async fn new_order_with(
        &self,
        account: &Account,
        req: &NewOrder<'_>,
    ) -> Result<Order, ClientError> {
        let mut payload = json!({ "identifiers": req.identifiers });
        if let Some(nb) = req.not_before {
            payload["notBefore"] = nb.into();
        }
        if let Some(na) = req.not_after {
            payload["notAfter"] = na.into();
        }
        if let Some(r) = req.replaces {
            payload["replaces"] = r.into();
        }
        let url = self.directory().new_order.clone();
        let resp = self.post(&url, account.signer(), Some(&payload)).await?;
        order_from(resp, None)
    }

    /// Fetches an order (POST-as-GET).
    pub async fn get_order(&self, account: &Account, url: &str) -> Result<Order, ClientError> {
        let resp = self.post(url, account.signer(), None).await?;
        order_from(resp, Some(url))
    }

    /// Fetches an authorization (POST-as-GET).
    pub async fn get_authorization(
        &self,
        account: &Account,
        url: &str,
    ) -> Result<Authorization, ClientError> {
        let resp = self.post(url, account.signer(), None).await?;
        let mut authz: Authorization = resp.json("authorization")?;
        authz.url = url.to_owned();
        authz.retry_after = resp.retry_after();
        Ok(authz)
    }

    /// Pre-authorizes `identifier` (RFC 8555 §7.4.1 `newAuthz`); with
    /// `subdomains`, for every name below it as well (RFC 9444 §4.2:
    /// `subdomainAuthAllowed`, dns-01 only). Fails with
    /// [`ClientError::Unsupported`] when the server has no `newAuthz`, or
    /// `subdomains` is asked of a server that does not advertise
    /// `meta.subdomainAuthAllowed`.
    pub async fn new_authorization(
        &self,
        account: &Account,
        identifier: &Identifier,
        subdomains: bool,
    ) -> Result<Authorization, ClientError> {
        let dir = self.directory();
        let url = dir.new_authz.clone().ok_or_else(|| {
            ClientError::Unsupported("the server offers no pre-authorization (newAuthz)".into())
        })?;
        if subdomains && !dir.meta.subdomain_auth_allowed {
            return Err(ClientError::Unsupported(
                "the server does not advertise subdomain authorization (meta.subdomainAuthAllowed)"
                    .into(),
            ));
        }
        let mut payload =
            json!({ "identifier": { "type": identifier.r#type, "value": identifier.value } });
        if subdomains {
            payload["subdomainAuthAllowed"] = true.into();
        }
        let resp = self.post(&url, account.signer(), Some(&payload)).await?;
        let location = resp.location().ok_or_else(|| {
            ClientError::Http("new-authz answered without a Location header".into())
        })?;
        let mut authz: Authorization = resp.json("authorization")?;
        authz.url = location;
        authz.retry_after = resp.retry_after();
        Ok(authz)
    }

    /// Tells the server to validate `challenge` (POST `{}`, RFC 8555
    /// §7.5.1). Validation runs asynchronously; poll afterwards.
    pub async fn trigger_challenge(
        &self,
        account: &Account,
        challenge: &crate::Challenge,
    ) -> Result<Challenge, ClientError> {
        self.post_challenge(account, &challenge.url, &json!({}))
            .await
    }

    /// Responds to an onion-csr-01 challenge with the CSR from
    /// [`crate::build_onion_csr`] (RFC 9799 §4).
    pub async fn trigger_challenge_onion(
        &self,
        account: &Account,
        challenge_url: &str,
        csr_der: &[u8],
    ) -> Result<Challenge, ClientError> {
        self.post_challenge(account, challenge_url, &json!({"csr": b64(csr_der)}))
            .await
    }

    async fn post_challenge(
        &self,
        account: &Account,
        url: &str,
        payload: &Value,
    ) -> Result<Challenge, ClientError> {
        let resp = self.post(url, account.signer(), Some(payload)).await?;
        resp.json("challenge")
    }

    /// Deactivates an authorization (RFC 8555 §7.5.2).
    pub async fn deactivate_authorization(
        &self,
        account: &Account,
        url: &str,
    ) -> Result<Authorization, ClientError> {
        let resp = self
            .post(
                url,
                account.signer(),
                Some(&json!({"status": "deactivated"})),
            )
            .await?;
        let mut authz: Authorization = resp.json("authorization")?;
        authz.url = url.to_owned();
        Ok(authz)
    }

    /// Polls the order until it is `ready` or `valid`, within the client's
    /// poll deadline (30 s unless [`crate::ClientBuilder::poll_timeout`]).
    /// `invalid` is an error carrying the order's or a challenge's problem.
    pub async fn poll_order(&self, account: &Account, url: &str) -> Result<Order, ClientError> {
        let opts = PollOptions {
            timeout: self.poll_timeout(),
            on_wait: None,
        };
        self.poll_order_with(account, url, &opts).await
    }

    /// [`AcmeClient::poll_order`] with an explicit deadline and progress
    /// callback.
    pub async fn poll_order_with(
        &self,
        account: &Account,
        url: &str,
        opts: &PollOptions<'_>,
    ) -> Result<Order, ClientError> {
        self.wait_order(account, url, opts, &["ready", "valid"])
            .await
    }

    /// Polls an authorization until it is `valid`. `invalid` (or any other
    /// final status) is an error with the failed challenge's problem.
    pub async fn poll_authorization(
        &self,
        account: &Account,
        url: &str,
        opts: &PollOptions<'_>,
    ) -> Result<Authorization, ClientError> {
        let mut backoff = Backoff::new(opts, "authorization");
        loop {
            let authz = self.get_authorization(account, url).await?;
            match authz.status.as_str() {
                "valid" => return Ok(authz),
                "pending" => backoff.wait(authz.retry_after, &authz.status).await?,
                _ => {
                    let problem = authz.challenges.iter().find_map(|c| c.error.clone());
                    return Err(match problem {
                        Some(p) => p.into(),
                        None => ClientError::Invalid {
                            what: "authorization",
                            url: url.to_owned(),
                        },
                    });
                }
            }
        }
    }

    /// Submits the CSR (RFC 8555 §7.4) and waits, within the poll deadline,
    /// until the order is `valid` and names its certificate.
    pub async fn finalize(
        &self,
        account: &Account,
        order: &Order,
        csr_der: &[u8],
    ) -> Result<Order, ClientError> {
        let opts = PollOptions {
            timeout: self.poll_timeout(),
            on_wait: None,
        };
        self.finalize_with(account, order, csr_der, &opts).await
    }

    /// [`AcmeClient::finalize`] with an explicit deadline and progress
    /// callback.
    pub async fn finalize_with(
        &self,
        account: &Account,
        order: &Order,
        csr_der: &[u8],
        opts: &PollOptions<'_>,
    ) -> Result<Order, ClientError> {
        let payload = json!({"csr": b64(csr_der)});
        let resp = self
            .post(&order.finalize, account.signer(), Some(&payload))
            .await?;
        let done = order_from(resp, Some(&order.url))?;
        // A STAR order (RFC 8739) has its rolling `star-certificate`.
        if done.status == "valid" && (done.certificate.is_some() || done.star_certificate.is_some())
        {
            return Ok(done);
        }
        if done.status == "invalid" {
            return Err(invalid_order(self, account, &done).await);
        }
        self.wait_order(account, &order.url, opts, &["valid"]).await
    }

    /// Downloads the certificate chain (POST-as-GET, RFC 8555 §7.4.2):
    /// PEM, leaf first.
    pub async fn download_certificate(
        &self,
        account: &Account,
        url: &str,
    ) -> Result<Vec<u8>, ClientError> {
        let resp = self.post(url, account.signer(), None).await?;
        Ok(resp.body.to_vec())
    }

    async fn wait_order(
        &self,
        account: &Account,
        url: &str,
        opts: &PollOptions<'_>,
        done: &[&str],
    ) -> Result<Order, ClientError> {
        let mut backoff = Backoff::new(opts, "order");
        loop {
            let order = self.get_order(account, url).await?;
            if done.contains(&order.status.as_str())
                && (order.status != "valid"
                    || order.certificate.is_some()
                    || order.star_certificate.is_some())
            {
                return Ok(order);
            }
            if order.status == "invalid" {
                return Err(invalid_order(self, account, &order).await);
            }
            backoff.wait(order.retry_after, &order.status).await?;
        }
    }
}

/// The best explanation for an invalid order: its own `error`, else the
/// first failed challenge's.
async fn invalid_order(client: &AcmeClient, account: &Account, order: &Order) -> ClientError {
    if let Some(p) = order.error.clone() {
        return p.into();
    }
    for url in &order.authorizations {
        if let Ok(authz) = client.get_authorization(account, url).await
            && let Some(p) = authz.challenges.iter().find_map(|c| c.error.clone())
        {
            return p.into();
        }
    }
    ClientError::Invalid {
        what: "order",
        url: order.url.clone(),
    }
}

pub(crate) fn order_from(resp: Response, known_url: Option<&str>) -> Result<Order, ClientError> {
    let mut order: Order = resp.json("order")?;
    order.url = match (resp.location(), known_url) {
        (_, Some(u)) => u.to_owned(),
        (Some(u), None) => u,
        (None, None) => {
            return Err(ClientError::Http(
                "the new order has no Location header".into(),
            ));
        }
    };
    order.retry_after = resp.retry_after();
    Ok(order)
}

/// Exponential backoff with `Retry-After` and a deadline.
struct Backoff<'a> {
    start: Instant,
    next: Duration,
    opts: &'a PollOptions<'a>,
    what: &'static str,
}

impl<'a> Backoff<'a> {
    fn new(opts: &'a PollOptions<'a>, what: &'static str) -> Self {
        Self {
            start: Instant::now(),
            next: FIRST_BACKOFF,
            opts,
            what,
        }
    }

    async fn wait(
        &mut self,
        retry_after: Option<Duration>,
        status: &str,
    ) -> Result<(), ClientError> {
        let elapsed = self.start.elapsed();
        if elapsed >= self.opts.timeout {
            return Err(ClientError::Timeout {
                what: self.what,
                secs: self.opts.timeout.as_secs(),
                last_status: status.to_owned(),
            });
        }
        let delay = retry_after
            .map_or(self.next, |d| d.min(MAX_RETRY_AFTER))
            .min(self.opts.timeout - elapsed);
        self.next = (self.next * 2).min(MAX_BACKOFF);
        if let Some(cb) = self.opts.on_wait {
            cb(status, elapsed);
        }
        tokio::time::sleep(delay).await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_serialise_as_rfc8555_objects() {
        assert_eq!(
            serde_json::to_value(Identifier::dns("example.com")).expect("json"),
            json!({"type": "dns", "value": "example.com"})
        );
        assert_eq!(
            serde_json::to_value(Identifier::ip("2001:db8::1")).expect("json"),
            json!({"type": "ip", "value": "2001:db8::1"})
        );
        assert_eq!(Identifier::onion("foo.onion").r#type, "dns");
    }

    #[test]
    fn authorization_parses_and_finds_challenges() {
        let authz: Authorization = serde_json::from_value(json!({
            "identifier": {"type": "dns", "value": "example.org"},
            "status": "pending",
            "challenges": [
                {"type": "http-01", "url": "https://ca/c/1", "status": "pending", "token": "t1"},
                {"type": "onion-csr-01", "url": "https://ca/c/2", "status": "pending", "nonce": "n"}
            ]
        }))
        .expect("parse");
        assert_eq!(
            authz
                .find_challenge("http-01")
                .and_then(|c| c.token.as_deref()),
            Some("t1")
        );
        assert_eq!(
            authz.find_challenge("onion-csr-01").expect("c").extra["nonce"],
            "n"
        );
        assert!(authz.find_challenge("dns-01").is_none());
    }

    #[tokio::test]
    async fn backoff_grows_and_stops_at_the_deadline() {
        let opts = PollOptions {
            timeout: Duration::from_millis(600),
            on_wait: None,
        };
        let mut b = Backoff::new(&opts, "order");
        let start = Instant::now();
        let mut waits = 0;
        let err = loop {
            match b.wait(None, "pending").await {
                Ok(()) => waits += 1,
                Err(e) => break e,
            }
        };
        assert!(matches!(err, ClientError::Timeout { what: "order", .. }));
        assert!((2..=3).contains(&waits), "{waits}");
        assert!(start.elapsed() >= Duration::from_millis(600));
        assert!(start.elapsed() < Duration::from_millis(1500));
    }
}
