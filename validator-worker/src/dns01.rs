//! dns-01 (RFC 8555 §8.4) and dns-account-01
//! (draft-ietf-acme-dns-account-label).
//!
//! Looks up TXT records at `_acme-challenge.<name>` (wildcard label removed;
//! dns-account-01: `_<account label>._acme-challenge.<name>`) and accepts
//! the challenge when one record, its character-strings joined and
//! whitespace trimmed, equals base64url(SHA-256(key authorization)).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use shared_proto::validator::{ChallengeType, ValidationRecord};
use shared_proto::{Identifier, IdentifierKind};

use crate::error::{ProbeError, RequestError};
use crate::probe::{Host, Prober};

/// The label prepended to the validated name.
pub const LABEL: &str = "_acme-challenge";

/// The TXT value a dns-01 challenge expects for `key_authorization`.
pub fn expected_txt(key_authorization: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, key_authorization.as_bytes());
    URL_SAFE_NO_PAD.encode(digest.as_ref())
}

/// dns-account-01's account label: `_` and the lower-case base32 (no
/// padding) of the first 10 bytes of SHA-256(account URL), 16 characters.
pub fn account_label(account_uri: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, account_uri.as_bytes());
    let encoded = data_encoding::BASE32_NOPAD.encode(&digest.as_ref()[..10]);
    format!("_{}", encoded.to_ascii_lowercase())
}

/// Validates a dns-01 challenge for `identifier`.
pub async fn validate(
    prober: &Prober,
    identifier: &Identifier,
    key_authorization: &str,
) -> Result<ValidationRecord, ProbeError> {
    validate_at(
        prober,
        identifier,
        key_authorization,
        ChallengeType::Dns01,
        LABEL,
    )
    .await
}

/// Validates a dns-account-01 challenge for `identifier` by the account at
/// `account_uri`.
pub async fn validate_account(
    prober: &Prober,
    identifier: &Identifier,
    key_authorization: &str,
    account_uri: &str,
) -> Result<ValidationRecord, ProbeError> {
    let prefix = format!("{}.{LABEL}", account_label(account_uri));
    validate_at(
        prober,
        identifier,
        key_authorization,
        ChallengeType::DnsAccount01,
        &prefix,
    )
    .await
}

/// The name a DNS method looks under for `identifier` (the wildcard label
/// dropped); IP identifiers cannot be validated through DNS.
pub fn dns_base(identifier: &Identifier, challenge: ChallengeType) -> Result<String, ProbeError> {
    if identifier.kind == IdentifierKind::Ip {
        return Err(RequestError::Unsupported {
            challenge,
            identifier: identifier.to_string(),
            reason: "IP identifiers cannot be validated through DNS (RFC 8738 §7)",
        }
        .into());
    }
    match Host::from_identifier(identifier)? {
        Host::Name(base) => Ok(base),
        // from_identifier returns Host::Name for every DNS identifier.
        Host::Ip(_) => Err(ProbeError::Internal("DNS identifier without a name")),
    }
}

/// The TXT check of `challenge` at `<prefix>.<base name>`.
async fn validate_at(
    prober: &Prober,
    identifier: &Identifier,
    key_authorization: &str,
    challenge: ChallengeType,
    prefix: &str,
) -> Result<ValidationRecord, ProbeError> {
    let base = dns_base(identifier, challenge)?;
    let name = format!("{prefix}.{base}");
    let expected = expected_txt(key_authorization);
    let records = prober.resolver.lookup_txt(&name).await?;
    if records
        .iter()
        .any(|r| r.trim_ascii() == expected.as_bytes())
    {
        return Ok(ValidationRecord::name_only(base, crate::now_unix()));
    }
    Err(ProbeError::TxtMismatch {
        name,
        seen: records.len(),
        expected,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_labels_are_sixteen_base32_characters() {
        let label = account_label("https://ca.example/acme/account/1");
        assert_eq!(label.len(), 17);
        assert!(label.starts_with('_'));
        assert!(
            label[1..]
                .bytes()
                .all(|b| b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b))
        );
        assert_ne!(label, account_label("https://ca.example/acme/account/2"));
        // SHA-256("") begins e3 b0 c4 42 98 fc 1c 14 9a fb; RFC 4648
        // base32 of those ten bytes.
        assert_eq!(account_label(""), "_4oymiquy7qobjgx3");
    }

    #[test]
    fn expected_value_is_base64url_sha256() {
        // RFC 8555 §8.4 example shape: 43 characters, no padding.
        let v = expected_txt("token.thumbprint");
        assert_eq!(v.len(), 43);
        assert!(!v.contains('=') && !v.contains('+') && !v.contains('/'));
        // SHA-256("") is well known.
        assert_eq!(
            expected_txt(""),
            "47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU"
        );
    }
}
