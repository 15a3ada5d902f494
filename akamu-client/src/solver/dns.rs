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

/// dns-persist-01 helper: the standing record the reference (and the
/// IETF draft's -01 form) define, published once and kept across renewals.
#[derive(Clone, Copy, Debug)]
pub struct DnsPersist01Helper;

impl DnsPersist01Helper {
    /// The TXT value: `"<issuer-domain>; accounturi=<account URL>"`, with
    /// `; policy=wildcard` when it must also cover `*.<domain>` and
    /// `; persistUntil=<YYYY-MM-DDTHH:MM:SSZ>` when `persist_until`
    /// (Unix seconds) is given. `issuer_domain` is one of the challenge's
    /// `issuer-domain-names`.
    pub fn txt_value(
        issuer_domain: &str,
        account_url: &str,
        wildcard: bool,
        persist_until: Option<i64>,
    ) -> Result<String, ClientError> {
        let mut value = format!("{issuer_domain}; accounturi={account_url}");
        if wildcard {
            value.push_str("; policy=wildcard");
        }
        if let Some(t) = persist_until {
            let t = time::OffsetDateTime::from_unix_timestamp(t)
                .map_err(|e| ClientError::InvalidArgument(format!("persistUntil: {e}")))?;
            let format =
                time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
            let text = t
                .format(&format)
                .map_err(|e| ClientError::InvalidArgument(format!("persistUntil: {e}")))?;
            value.push_str("; persistUntil=");
            value.push_str(&text);
        }
        Ok(value)
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

    #[test]
    fn persist_records_in_the_reference_format() {
        let acct = "https://acme.example.com/acme/account/42";
        assert_eq!(
            DnsPersist01Helper::txt_value("acme.example.com", acct, false, None).expect("txt"),
            "acme.example.com; accounturi=https://acme.example.com/acme/account/42"
        );
        assert_eq!(
            DnsPersist01Helper::txt_value("acme.example.com", acct, true, Some(1_800_000_000))
                .expect("txt"),
            "acme.example.com; accounturi=https://acme.example.com/acme/account/42; policy=wildcard; persistUntil=2027-01-15T08:00:00Z"
        );
    }
}
