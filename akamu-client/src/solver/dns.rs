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

    /// draft-ietf-acme-dns-persist-02 §4.1: the hashed account URI,
    /// `<account_hash_prefix>sha-256/<base64url(SHA-256(len ‖ domain ‖
    /// thumbprint ‖ account URL))>`, for a record at `domain` (a wildcard's
    /// `*.` is dropped; the name is lower-cased without a trailing dot), or
    /// for any domain when `domain` is `None` (the domain-less `*` form,
    /// which lets one record value serve several names at the cost of
    /// linking them). `key_thumbprint` is the account key's RFC 7638
    /// thumbprint, base64url ([`crate::AccountKey::thumbprint`]).
    pub fn hashed_account_uri(
        account_hash_prefix: &str,
        domain: Option<&str>,
        key_thumbprint: &str,
        account_url: &str,
    ) -> Result<String, ClientError> {
        let domain = domain.map_or_else(|| "*".to_owned(), |d| base_domain(d).to_ascii_lowercase());
        let len = u8::try_from(domain.len())
            .map_err(|_| ClientError::InvalidArgument("domain longer than 255 octets".into()))?;
        let mut input =
            Vec::with_capacity(1 + domain.len() + key_thumbprint.len() + account_url.len());
        input.push(len);
        input.extend_from_slice(domain.as_bytes());
        input.extend_from_slice(key_thumbprint.as_bytes());
        input.extend_from_slice(account_url.as_bytes());
        Ok(format!(
            "{account_hash_prefix}sha-256/{}",
            b64(&sha256(&input))
        ))
    }

    /// draft-ietf-acme-dns-persist-02's TXT value: `"<issuer-domain>;
    /// accounturi=<hashed URI>"`, with `; policy=wildcard` when it must
    /// also cover `*.<domain>` and `; persistUntil=<Unix seconds>` when
    /// `persist_until` is given. `hashed_uri` comes from
    /// [`DnsPersist01Helper::hashed_account_uri`].
    pub fn txt_value_draft02(
        issuer_domain: &str,
        hashed_uri: &str,
        wildcard: bool,
        persist_until: Option<i64>,
    ) -> String {
        let mut value = format!("{issuer_domain}; accounturi={hashed_uri}");
        if wildcard {
            value.push_str("; policy=wildcard");
        }
        if let Some(t) = persist_until {
            value.push_str(&format!("; persistUntil={t}"));
        }
        value
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

    /// draft-ietf-acme-dns-persist-02 §8.2's test vectors.
    #[test]
    fn persist_hashed_uri_vectors() {
        let prefix = "https://ca.example/account-hash/";
        let key = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs";
        let acct = "https://ca.example/acct/123";
        let uri = DnsPersist01Helper::hashed_account_uri(prefix, Some("Example.com."), key, acct)
            .expect("uri");
        assert_eq!(
            uri,
            "https://ca.example/account-hash/sha-256/5SQm7n6tPh2-PlLbCKGnViTXX5z19SCN4cPGQHSk-kw"
        );
        assert_eq!(
            DnsPersist01Helper::hashed_account_uri(prefix, None, key, acct).expect("uri"),
            "https://ca.example/account-hash/sha-256/NpDnSwUthQK8zCgFdefYxAdAVPnygMLbs9US6oO-5ug"
        );
        assert_eq!(
            DnsPersist01Helper::txt_value_draft02(
                "authority.example",
                &uri,
                true,
                Some(1_767_225_600)
            ),
            format!(
                "authority.example; accounturi={uri}; policy=wildcard; persistUntil=1767225600"
            )
        );
    }

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
