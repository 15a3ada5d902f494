//! Revocation (RFC 8555 §7.6), signed by the account key or by the
//! certificate's own key.

use akamu_jose::b64;
use serde_json::json;

use crate::client::Signer;
use crate::{Account, AccountKey, AcmeClient, ClientError};

/// Checks a CRL reason code (RFC 5280 §5.3.1): 0-6 and 8-10; 7 is unused
/// and anything above 10 does not exist.
pub fn validate_reason(reason: u8) -> Result<(), ClientError> {
    match reason {
        0..=6 | 8..=10 => Ok(()),
        _ => Err(ClientError::InvalidArgument(format!(
            "invalid reason code {reason}; valid values: 0–6, 8–10"
        ))),
    }
}

impl AcmeClient {
    /// Revokes `cert_der` with the account key. `reason` `None` is
    /// unspecified; otherwise a CRL reason code (0-6, 8-10).
    pub async fn revoke_certificate(
        &self,
        account: &Account,
        cert_der: &[u8],
        reason: Option<u8>,
    ) -> Result<(), ClientError> {
        self.revoke(account.signer(), cert_der, reason).await
    }

    /// Revokes `cert_der` with the certificate's own private key (the
    /// request carries the key as `jwk`).
    pub async fn revoke_certificate_with_cert_key(
        &self,
        cert_key: &AccountKey,
        cert_der: &[u8],
        reason: Option<u8>,
    ) -> Result<(), ClientError> {
        self.revoke(Signer::Jwk(cert_key), cert_der, reason).await
    }

    async fn revoke(
        &self,
        signer: Signer<'_>,
        cert_der: &[u8],
        reason: Option<u8>,
    ) -> Result<(), ClientError> {
        let mut payload = json!({"certificate": b64(cert_der)});
        if let Some(r) = reason {
            validate_reason(r)?;
            payload["reason"] = r.into();
        }
        let url = self.directory().revoke_cert.clone();
        self.post(&url, signer, Some(&payload)).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reason_codes() {
        for r in (0..=6).chain(8..=10) {
            assert!(validate_reason(r).is_ok(), "{r}");
        }
        for r in [7, 11, 255] {
            let e = validate_reason(r).expect_err("refused");
            assert!(e.to_string().contains("invalid reason code"), "{e}");
        }
    }
}
