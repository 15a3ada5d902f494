//! dns-01 (RFC 8555 §8.4).
//!
//! Looks up TXT records at `_acme-challenge.<name>` (wildcard label removed)
//! and accepts the challenge when one record, its character-strings joined and
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

/// Validates a dns-01 challenge for `identifier`.
pub async fn validate(
    prober: &Prober,
    identifier: &Identifier,
    key_authorization: &str,
) -> Result<ValidationRecord, ProbeError> {
    if identifier.kind == IdentifierKind::Ip {
        return Err(RequestError::Unsupported {
            challenge: ChallengeType::Dns01,
            identifier: identifier.to_string(),
            reason: "IP identifiers cannot be validated with dns-01 (RFC 8738 §7)",
        }
        .into());
    }
    let Host::Name(base) = Host::from_identifier(identifier)? else {
        // from_identifier returns Host::Name for every DNS identifier.
        return Err(ProbeError::Internal("DNS identifier without a name"));
    };
    let name = format!("{LABEL}.{base}");
    let expected = expected_txt(key_authorization);
    let records = prober.resolver.lookup_txt(&name).await?;
    if records
        .iter()
        .any(|r| r.trim_ascii() == expected.as_bytes())
    {
        return Ok(ValidationRecord {
            url: None,
            hostname: base,
            port: None,
            addresses_resolved: Vec::new(),
            address_used: None,
            validated_at: crate::now_unix(),
            statement: None,
        });
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
