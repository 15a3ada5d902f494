//! STAR: Short-Term, Automatically Renewed certificates (RFC 8739).

use serde_json::json;

use crate::order::order_from;
use crate::{Account, AcmeClient, ClientError, Identifier, Order};

/// A STAR order (RFC 8739 §3.1.1 `auto-renewal`).
#[derive(Clone, Copy, Debug)]
pub struct StarOrderParams<'a> {
    /// Identifiers to certify.
    pub identifiers: &'a [Identifier],
    /// `end-date` (RFC 3339): no certificate's notBefore is later.
    pub end_date: &'a str,
    /// `lifetime` of each certificate, seconds.
    pub lifetime_secs: u64,
    /// `start-date` (RFC 3339); the server's choice when `None`.
    pub start_date: Option<&'a str>,
    /// `lifetime-adjust`: pre-dating of each notBefore, seconds (0 = none).
    pub lifetime_adjust_secs: u64,
    /// `allow-certificate-get`: fetch the rolling certificate with GET.
    pub allow_certificate_get: bool,
}

impl AcmeClient {
    /// Places a STAR order. [`ClientError::Unsupported`] (and no request)
    /// when the directory's `meta` has no `auto-renewal` object (RFC 8739
    /// §3.3), so a server that ignores the member cannot turn it into an
    /// ordinary order.
    pub async fn new_star_order(
        &self,
        account: &Account,
        params: &StarOrderParams<'_>,
    ) -> Result<Order, ClientError> {
        if self.directory().meta.auto_renewal.is_none() {
            return Err(ClientError::Unsupported(
                "the directory advertises no meta.auto-renewal (RFC 8739 STAR)".into(),
            ));
        }
        let mut auto = json!({
            "end-date": params.end_date,
            "lifetime": params.lifetime_secs,
        });
        if let Some(s) = params.start_date {
            auto["start-date"] = s.into();
        }
        if params.lifetime_adjust_secs > 0 {
            auto["lifetime-adjust"] = params.lifetime_adjust_secs.into();
        }
        if params.allow_certificate_get {
            auto["allow-certificate-get"] = true.into();
        }
        let payload = json!({"identifiers": params.identifiers, "auto-renewal": auto});
        let url = self.directory().new_order.clone();
        let resp = self.post(&url, account.signer(), Some(&payload)).await?;
        order_from(resp, None)
    }

    /// Downloads the current certificate of a STAR order (POST-as-GET).
    pub async fn download_star_certificate(
        &self,
        account: &Account,
        star_cert_url: &str,
    ) -> Result<Vec<u8>, ClientError> {
        self.download_certificate(account, star_cert_url).await
    }

    /// Fetches the current certificate with an unauthenticated GET (only
    /// when the order asked for `allow-certificate-get`).
    pub async fn get_star_certificate(&self, star_cert_url: &str) -> Result<Vec<u8>, ClientError> {
        Ok(self.get(star_cert_url).await?.body.to_vec())
    }

    /// Cancels a STAR order (RFC 8739 §3.1.2: `{"status": "canceled"}`).
    pub async fn cancel_star_order(
        &self,
        account: &Account,
        order_url: &str,
    ) -> Result<Order, ClientError> {
        let payload = json!({"status": "canceled"});
        let resp = self
            .post(order_url, account.signer(), Some(&payload))
            .await?;
        order_from(resp, Some(order_url))
    }
}
