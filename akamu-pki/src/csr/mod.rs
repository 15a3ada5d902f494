//! PKCS#10 certificate requests: parse with x509-cert, verify the
//! self-signature (`csr/verify.rs`), and compare the requested names with an
//! order's identifiers (RFC 8555 §7.4).
//!
//! Both the frontend (to answer `badCSR` early) and the signer (which trusts no
//! caller) run these checks.

mod verify;

use std::collections::BTreeSet;
use std::net::IpAddr;

use const_oid::ObjectIdentifier;
use const_oid::db::rfc4519::CN;
use const_oid::db::rfc5280::{ID_CE_BASIC_CONSTRAINTS, ID_CE_SUBJECT_ALT_NAME};
use der::{Decode, Encode};
use openssl::pkey::{PKey, Public};
use shared_proto::Identifier;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{BasicConstraints, SubjectAltName};
use x509_cert::request::CertReq;

pub use crate::spki::{ecdsa_verify_digest, public_key_from_spki};
use verify::verify_signature;

/// `pkcs-9-at-extensionRequest` (RFC 2985).
pub(crate) const ID_EXTENSION_REQ: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.14");

/// What a CSR asks for, after its signature has been verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParsedCsr {
    /// The subscriber's SubjectPublicKeyInfo, DER.
    pub spki_der: Vec<u8>,
    /// The subject's commonName, if any.
    pub common_name: Option<String>,
    /// Every identifier the CSR names (SAN dNSName and iPAddress entries and
    /// the commonName), normalised.
    pub identifiers: BTreeSet<Identifier>,
    /// Whether the CSR asks for `cA=TRUE`.
    pub requests_ca: bool,
}

/// Why a CSR was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CsrError {
    /// Not a DER PKCS#10 request.
    #[error("CSR is not valid DER PKCS#10: {0}")]
    Parse(String),
    /// The self-signature does not verify with the CSR's key.
    #[error("CSR signature does not verify")]
    Signature,
    /// A SAN of a type other than dNSName or iPAddress, or a malformed one.
    #[error("CSR has an unsupported subjectAltName entry: {0}")]
    UnsupportedName(String),
    /// BasicConstraints cA=TRUE requested.
    #[error("CSR requests a CA certificate (cA=TRUE)")]
    RequestsCa,
    /// The CSR's names differ from the order's identifiers.
    #[error("CSR names do not match the order: {0}")]
    NameMismatch(String),
}

impl ParsedCsr {
    /// Parses `der` and verifies its self-signature.
    pub fn parse_and_verify(der: &[u8]) -> Result<Self, CsrError> {
        Self::parse_and_verify_with_key(der).map(|(csr, _)| csr)
    }

    /// Like [`ParsedCsr::parse_and_verify`], and also returns the public key
    /// the signature was verified with, so that a caller checking the key
    /// (the signer's key policy) need not decode [`ParsedCsr::spki_der`]
    /// again.
    pub fn parse_and_verify_with_key(der: &[u8]) -> Result<(Self, PKey<Public>), CsrError> {
        Self::parse_with(der, verify_signature)
    }

    /// Parses `der`, verifying its signature with `verify`.
    pub(crate) fn parse_with(
        der: &[u8],
        verify: fn(&[u8], &CertReq) -> Result<PKey<Public>, CsrError>,
    ) -> Result<(Self, PKey<Public>), CsrError> {
        let req = CertReq::from_der(der).map_err(|e| CsrError::Parse(e.to_string()))?;
        let key = verify(der, &req)?;

        let spki_der = req
            .info
            .public_key
            .to_der()
            .map_err(|e| CsrError::Parse(e.to_string()))?;

        let mut common_name = None;
        for atv in req.info.subject.iter() {
            if atv.oid == CN {
                let cn = decode_directory_string(&atv.value)
                    .ok_or_else(|| CsrError::Parse("commonName is not a string".into()))?;
                common_name = Some(cn);
            }
        }

        let mut identifiers = BTreeSet::new();
        let mut requests_ca = false;
        for attr in req.info.attributes.iter() {
            if attr.oid != ID_EXTENSION_REQ {
                continue;
            }
            for value in attr.values.iter() {
                let exts: Vec<x509_cert::ext::Extension> = value
                    .decode_as()
                    .map_err(|e| CsrError::Parse(format!("extensionRequest: {e}")))?;
                for ext in exts {
                    if ext.extn_id == ID_CE_SUBJECT_ALT_NAME {
                        let san = SubjectAltName::from_der(ext.extn_value.as_bytes())
                            .map_err(|e| CsrError::Parse(format!("subjectAltName: {e}")))?;
                        for name in san.0 {
                            identifiers.insert(general_name_to_identifier(&name)?);
                        }
                    } else if ext.extn_id == ID_CE_BASIC_CONSTRAINTS {
                        let bc = BasicConstraints::from_der(ext.extn_value.as_bytes())
                            .map_err(|e| CsrError::Parse(format!("basicConstraints: {e}")))?;
                        requests_ca |= bc.ca;
                    }
                }
            }
        }
        if let Some(cn) = &common_name {
            identifiers.insert(name_to_identifier(cn));
        }
        let csr = Self {
            spki_der,
            common_name,
            identifiers,
            requests_ca,
        };
        Ok((csr, key))
    }

    /// Checks that the CSR names exactly `order` and does not ask for a CA.
    pub fn check_against(&self, order: &[Identifier]) -> Result<(), CsrError> {
        if self.requests_ca {
            return Err(CsrError::RequestsCa);
        }
        let wanted: BTreeSet<Identifier> = order.iter().cloned().collect();
        let extra: Vec<String> = self
            .identifiers
            .difference(&wanted)
            .map(|i| i.to_string())
            .collect();
        let missing: Vec<String> = wanted
            .difference(&self.identifiers)
            .map(|i| i.to_string())
            .collect();
        if extra.is_empty() && missing.is_empty() {
            return Ok(());
        }
        let mut parts = Vec::new();
        if !extra.is_empty() {
            parts.push(format!("not in the order: {}", extra.join(", ")));
        }
        if !missing.is_empty() {
            parts.push(format!("missing from the CSR: {}", missing.join(", ")));
        }
        Err(CsrError::NameMismatch(parts.join("; ")))
    }
}

fn decode_directory_string(any: &der::Any) -> Option<String> {
    use der::asn1::{Ia5StringRef, PrintableStringRef, Utf8StringRef};
    if let Ok(s) = any.decode_as::<Utf8StringRef<'_>>() {
        return Some(s.as_str().to_owned());
    }
    if let Ok(s) = any.decode_as::<PrintableStringRef<'_>>() {
        return Some(s.as_str().to_owned());
    }
    if let Ok(s) = any.decode_as::<Ia5StringRef<'_>>() {
        return Some(s.as_str().to_owned());
    }
    None
}

/// A commonName is an IP identifier if it parses as an address, else DNS.
fn name_to_identifier(name: &str) -> Identifier {
    match name.parse::<IpAddr>() {
        Ok(ip) => Identifier::ip(ip),
        Err(_) => Identifier::dns(name),
    }
}

fn general_name_to_identifier(name: &GeneralName) -> Result<Identifier, CsrError> {
    match name {
        GeneralName::DnsName(dns) => Ok(Identifier::dns(dns.as_str())),
        GeneralName::IpAddress(octets) => {
            let bytes = octets.as_bytes();
            let ip = match bytes.len() {
                4 => {
                    let mut a = [0u8; 4];
                    a.copy_from_slice(bytes);
                    IpAddr::from(a)
                }
                16 => {
                    let mut a = [0u8; 16];
                    a.copy_from_slice(bytes);
                    IpAddr::from(a)
                }
                n => {
                    return Err(CsrError::UnsupportedName(format!(
                        "iPAddress of {n} octets"
                    )));
                }
            };
            Ok(Identifier::ip(ip))
        }
        other => Err(CsrError::UnsupportedName(format!("{other:?}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::csr;

    #[test]
    fn parses_names_and_cn() {
        let der = csr(
            &["a.example.org", "B.example.org", "192.0.2.1"],
            Some("a.example.org"),
            false,
        );
        let parsed = ParsedCsr::parse_and_verify(&der).expect("parse");
        let ids = [
            Identifier::dns("a.example.org"),
            Identifier::dns("b.example.org"),
            Identifier::ip("192.0.2.1".parse().expect("ip")),
        ];
        parsed.check_against(&ids).expect("matches");
        assert_eq!(parsed.common_name.as_deref(), Some("a.example.org"));
    }

    #[test]
    fn extra_and_missing_names_are_refused() {
        let der = csr(&["a.example.org", "evil.example.org"], None, false);
        let parsed = ParsedCsr::parse_and_verify(&der).expect("parse");
        let err = parsed
            .check_against(&[Identifier::dns("a.example.org")])
            .unwrap_err();
        assert!(matches!(err, CsrError::NameMismatch(ref m) if m.contains("evil.example.org")));
        let err = parsed
            .check_against(&[
                Identifier::dns("a.example.org"),
                Identifier::dns("evil.example.org"),
                Identifier::dns("c.example.org"),
            ])
            .unwrap_err();
        assert!(matches!(err, CsrError::NameMismatch(ref m) if m.contains("missing")));
    }

    #[test]
    fn cn_outside_sans_is_a_mismatch() {
        let der = csr(&["a.example.org"], Some("other.example.org"), false);
        let parsed = ParsedCsr::parse_and_verify(&der).expect("parse");
        assert!(
            parsed
                .check_against(&[Identifier::dns("a.example.org")])
                .is_err()
        );
    }

    #[test]
    fn ca_request_is_refused() {
        let der = csr(&["a.example.org"], None, true);
        let parsed = ParsedCsr::parse_and_verify(&der).expect("parse");
        assert!(parsed.requests_ca);
        assert_eq!(
            parsed.check_against(&[Identifier::dns("a.example.org")]),
            Err(CsrError::RequestsCa)
        );
    }

    #[test]
    fn tampered_signature_is_refused() {
        let mut der = csr(&["a.example.org"], None, false);
        let last = der.len() - 1;
        der[last] ^= 0x01;
        assert_eq!(ParsedCsr::parse_and_verify(&der), Err(CsrError::Signature));
    }

    #[test]
    fn garbage_is_a_parse_error() {
        assert!(matches!(
            ParsedCsr::parse_and_verify(b"\x30\x03abc"),
            Err(CsrError::Parse(_))
        ));
    }
}
