//! dns-01 (RFC 8555 §8.4) and dns-persist-01 record helpers. They compute
//! what to publish; publishing is the caller's job.

use akamu_jose::b64;
use openssl::sha::sha256;

use crate::ClientError;

/// dns-01 helper.
#[derive(Clone, Copy, Debug)]
pub struct Dns01Helper;

impl Dns01Helper {
    /// The TXT value: base64url(SHA-256(key authorization)).
    pub fn txt_value(key_auth: &str) -> Result<String, ClientError> {
        Ok(b64(&sha256(key_auth.as_bytes())))
    }

    /// The record name, `_acme-challenge.<domain>.` (a wildcard's `*.` is
    /// dropped, RFC 8555 §8.4).
    pub fn record_name(domain: &str) -> String {
        format!("_acme-challenge.{}.", base_domain(domain))
    }
}

/// dns-account-01 helper (draft-ietf-acme-dns-account-label): dns-01's
/// value under a label that names the account, so several accounts can
/// validate the same domain at once.
#[derive(Clone, Copy, Debug)]
pub struct DnsAccount01Helper;

impl DnsAccount01Helper {
    /// The TXT value: as dns-01, base64url(SHA-256(key authorization)).
    pub fn txt_value(key_auth: &str) -> Result<String, ClientError> {
        Dns01Helper::txt_value(key_auth)
    }

    /// The record name, `_<label>._acme-challenge.<domain>.`, where the
    /// label is the lower-case base32 of the first 10 bytes of
    /// SHA-256(`account_url`) (a wildcard's `*.` is dropped).
    pub fn record_name(domain: &str, account_url: &str) -> String {
        let digest = sha256(account_url.as_bytes());
        let label = data_encoding::BASE32_NOPAD
            .encode(&digest[..10])
            .to_ascii_lowercase();
        format!("_{label}._acme-challenge.{}.", base_domain(domain))
    }
}

/// dns-persist-01 helper (the reference's computation: the same digest as
/// dns-01, published under `_validation-persist`).
#[derive(Clone, Copy, Debug)]
pub struct DnsPersist01Helper;

impl DnsPersist01Helper {
    /// The TXT value: base64url(SHA-256(key authorization)).
    pub fn txt_value(key_auth: &str) -> Result<String, ClientError> {
        Dns01Helper::txt_value(key_auth)
    }

    /// The record name, `_validation-persist.<domain>.`.
    pub fn record_name(domain: &str) -> String {
        format!("_validation-persist.{}.", base_domain(domain))
    }
}

fn base_domain(domain: &str) -> &str {
    domain
        .strip_prefix("*.")
        .unwrap_or(domain)
        .trim_end_matches('.')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_account_names() {
        // SHA-256("") begins e3 b0 c4 42 98 fc 1c 14 9a fb.
        assert_eq!(
            DnsAccount01Helper::record_name("*.Example.org.", ""),
            "_4oymiquy7qobjgx3._acme-challenge.Example.org."
        );
    }

    /// The value is the SHA-256 of the key authorization, base64url.
    #[test]
    fn txt_value_and_names() {
        let ka = "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA.9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTI";
        assert_eq!(
            Dns01Helper::txt_value(ka).expect("txt"),
            b64(&sha256(ka.as_bytes()))
        );
        assert_eq!(Dns01Helper::txt_value(ka).expect("t").len(), 43);
        assert_eq!(
            Dns01Helper::record_name("*.example.org"),
            "_acme-challenge.example.org."
        );
        assert_eq!(
            DnsPersist01Helper::record_name("example.org."),
            "_validation-persist.example.org."
        );
    }
}
