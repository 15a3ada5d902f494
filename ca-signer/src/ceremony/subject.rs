//! Subjects of CA certificates, as the operator writes them.

use const_oid::ObjectIdentifier;
use const_oid::db::rfc4519::{C, CN, L, O, OU, ST};
use der::Any;
use der::asn1::{PrintableStringRef, Utf8StringRef};
use x509_cert::attr::AttributeTypeAndValue;
use x509_cert::name::{Name, RdnSequence, RelativeDistinguishedName};

use crate::error::Error;

/// Parses an RFC 4514 subject (`CN=…,O=…,C=…`; no escapes) into a Name.
/// RFC 4514 lists the most specific RDN first, so the encoded order is the
/// reverse. C is a PrintableString, everything else a UTF8String.
pub fn parse_subject(text: &str) -> Result<Name, Error> {
    let bad = |problem: String| Error::ConfigValue {
        field: "--subject",
        problem,
    };
    let mut rdns = Vec::new();
    for part in text.split(',') {
        let (key, value) = part
            .split_once('=')
            .ok_or_else(|| bad(format!("{part:?} is not KEY=VALUE")))?;
        let (key, value) = (key.trim(), value.trim());
        if value.is_empty() || value.chars().count() > 64 || value.contains('\\') {
            return Err(bad(format!(
                "{key}: value must have 1 to 64 characters, no escapes"
            )));
        }
        let oid: ObjectIdentifier = match key.to_ascii_uppercase().as_str() {
            "CN" => CN,
            "O" => O,
            "OU" => OU,
            "C" => C,
            "L" => L,
            "ST" => ST,
            other => {
                return Err(bad(format!(
                    "unsupported attribute {other} (CN, O, OU, C, L, ST)"
                )));
            }
        };
        let value = if oid == C {
            if value.len() != 2 || !value.bytes().all(|b| b.is_ascii_uppercase()) {
                return Err(bad("C must be two upper-case letters".to_owned()));
            }
            Any::encode_from(&PrintableStringRef::new(value)?)?
        } else {
            Any::encode_from(&Utf8StringRef::new(value)?)?
        };
        rdns.push(RelativeDistinguishedName::try_from(vec![
            AttributeTypeAndValue { oid, value },
        ])?);
    }
    if !rdns.iter().any(|r| r.as_ref().iter().any(|a| a.oid == CN)) {
        return Err(bad("a CN is required".to_owned()));
    }
    rdns.reverse();
    let mut seq = RdnSequence::default();
    for r in rdns {
        seq.push(r);
    }
    Ok(Name::hazmat_from_rdn_sequence(seq))
}
