//! PKCS#10 requests: the finalize CSR (RFC 8555 §7.4), the onion-csr-01
//! CSR (RFC 9799), and PEM → DER.

use std::net::IpAddr;

use der::asn1::{
    Any, BitString, Ia5String, ObjectIdentifier, OctetString, SetOfVec, Utf8StringRef,
};
use der::oid::AssociatedOid;
use der::{Decode, Encode};
use openssl::hash::MessageDigest;
use openssl::pkey::{Id, PKey, PKeyRef, Private};
use openssl::stack::Stack;
use openssl::x509::extension::SubjectAlternativeName;
use openssl::x509::{X509NameBuilder, X509ReqBuilder};
use x509_cert::attr::Attribute;
use x509_cert::ext::Extension;
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::name::Name;
use x509_cert::request::{CertReq, CertReqInfo, ExtensionReq, Version};
use x509_cert::spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};

use crate::ClientError;

/// CA/Browser Forum `caSigningNonce` (BR Appendix B; RFC 9799 §4).
pub(crate) const OID_CA_SIGNING_NONCE: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("2.23.140.41");
/// CA/Browser Forum `applicantSigningNonce` (BR Appendix B; RFC 9799 §4).
pub(crate) const OID_APPLICANT_SIGNING_NONCE: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("2.23.140.42");
/// `id-Ed25519` (RFC 8410).
const OID_ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");
/// Longest CN (RFC 5280 `ub-common-name`).
const MAX_CN_LEN: usize = 64;

/// Builds a DER CSR for `domains`: every entry becomes a SAN (an `iPAddress`
/// when it parses as an IP address, a `dNSName` otherwise); the first
/// becomes the CN when it fits in 64 characters. Wildcards are passed as
/// given.
pub fn build_csr(domains: &[&str], key: &PKeyRef<Private>) -> Result<Vec<u8>, ClientError> {
    let Some(first) = domains.first() else {
        return Err(ClientError::InvalidArgument(
            "a CSR needs at least one name".into(),
        ));
    };
    let mut req = X509ReqBuilder::new()?;
    req.set_version(0)?;
    let mut name = X509NameBuilder::new()?;
    if first.len() <= MAX_CN_LEN {
        name.append_entry_by_text("CN", first)?;
    }
    req.set_subject_name(&name.build())?;
    req.set_pubkey(key)?;
    let mut san = SubjectAlternativeName::new();
    for d in domains {
        if d.parse::<IpAddr>().is_ok() {
            san.ip(d);
        } else {
            san.dns(d);
        }
    }
    let ext = san.build(&req.x509v3_context(None))?;
    let mut exts = Stack::new()?;
    exts.push(ext)?;
    req.add_extensions(&exts)?;
    req.sign(key, digest_for(key))?;
    Ok(req.build().to_der()?)
}

/// The CSR digest for a key: none for EdDSA and ML-DSA (which sign the
/// message itself; RFC 8410, RFC 9881), SHA-256 otherwise.
fn digest_for(key: &PKeyRef<Private>) -> MessageDigest {
    match key.id() {
        Id::ED25519 | Id::ED448 => MessageDigest::null(),
        _ if akamu_jose::MlDsa::of_key(key).is_some() => MessageDigest::null(),
        _ => MessageDigest::sha256(),
    }
}

/// Builds the onion-csr-01 CSR (RFC 9799 §4) for `domain`, signed by the
/// hidden service's Ed25519 key (`hs_key_pem`, PKCS#8 PEM).
///
/// The CSR has an empty subject, a `dNSName` SAN for `domain`, the
/// `caSigningNonce` attribute (2.23.140.41) holding `key_auth` as a
/// UTF8String (as the reference specifies), and an
/// `applicantSigningNonce` attribute (2.23.140.42) of 16 random bytes.
pub fn build_onion_csr(
    domain: &str,
    key_auth: &str,
    hs_key_pem: &[u8],
) -> Result<Vec<u8>, ClientError> {
    if !domain.to_ascii_lowercase().ends_with(".onion") {
        return Err(ClientError::InvalidArgument(format!(
            "{domain:?} is not a .onion name"
        )));
    }
    let key = PKey::private_key_from_pem(hs_key_pem)
        .map_err(|e| ClientError::Crypto(format!("cannot read the hidden-service key: {e}")))?;
    if key.id() != Id::ED25519 {
        return Err(ClientError::InvalidArgument(
            "the hidden-service key must be Ed25519".into(),
        ));
    }
    let der_err = |e: der::Error| ClientError::Crypto(format!("encoding the onion CSR: {e}"));
    let spki = SubjectPublicKeyInfoOwned::from_der(&key.public_key_to_der()?).map_err(der_err)?;

    let san = SubjectAltName(vec![GeneralName::DnsName(
        Ia5String::new(domain).map_err(der_err)?,
    )]);
    let ext = Extension {
        extn_id: SubjectAltName::OID,
        critical: false,
        extn_value: OctetString::new(san.to_der().map_err(der_err)?).map_err(der_err)?,
    };
    let ext_req = Attribute::try_from(ExtensionReq(vec![ext])).map_err(der_err)?;

    let mut applicant_nonce = [0u8; 16];
    openssl::rand::rand_bytes(&mut applicant_nonce)?;
    let attr = |oid, value: Any| -> Result<Attribute, der::Error> {
        Ok(Attribute {
            oid,
            values: SetOfVec::try_from(vec![value])?,
        })
    };
    let ca_nonce = attr(
        OID_CA_SIGNING_NONCE,
        Any::encode_from(&Utf8StringRef::new(key_auth).map_err(der_err)?).map_err(der_err)?,
    )
    .map_err(der_err)?;
    let applicant = attr(
        OID_APPLICANT_SIGNING_NONCE,
        Any::encode_from(&OctetString::new(applicant_nonce.to_vec()).map_err(der_err)?)
            .map_err(der_err)?,
    )
    .map_err(der_err)?;

    let info = CertReqInfo {
        version: Version::V1,
        subject: Name::default(),
        public_key: spki,
        attributes: SetOfVec::try_from(vec![ext_req, ca_nonce, applicant]).map_err(der_err)?,
    };
    let tbs = info.to_der().map_err(der_err)?;
    let mut signer = openssl::sign::Signer::new_without_digest(&key)?;
    let sig = signer.sign_oneshot_to_vec(&tbs)?;
    let req = CertReq {
        info,
        algorithm: AlgorithmIdentifierOwned {
            oid: OID_ED25519,
            parameters: None,
        },
        signature: BitString::from_bytes(&sig).map_err(der_err)?,
    };
    req.to_der().map_err(der_err)
}

/// Decodes every PEM block in `pem` to DER, in order. Input without PEM
/// blocks gives an empty vector.
pub fn pem_to_der(pem: &[u8]) -> Vec<Vec<u8>> {
    let text = String::from_utf8_lossy(pem);
    let mut out = Vec::new();
    let mut rest: &str = &text;
    while let Some(start) = rest.find("-----BEGIN ") {
        let after = &rest[start + 11..];
        let Some(label_end) = after.find("-----") else {
            break;
        };
        let label = &after[..label_end];
        let body_start = &after[label_end + 5..];
        let end_marker = format!("-----END {label}-----");
        let Some(body_end) = body_start.find(&end_marker) else {
            break;
        };
        let b64: String = body_start[..body_end]
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        if let Ok(der) = openssl::base64::decode_block(&b64) {
            out.push(der);
        }
        rest = &body_start[body_end + end_marker.len()..];
    }
    out
}

#[cfg(test)]
mod tests {
    use openssl::x509::X509Req;

    use super::*;
    use crate::AccountKey;

    #[test]
    fn csr_names_every_domain_and_is_self_signed() {
        for kt in ["ec:P-256", "rsa:2048", "ed25519", "ed448"] {
            let key = AccountKey::generate(kt).expect("key");
            let der = build_csr(
                &[
                    "example.com",
                    "www.example.com",
                    "*.example.com",
                    "192.0.2.1",
                    "2001:db8::1",
                ],
                key.private_key(),
            )
            .expect("csr");
            let req = X509Req::from_der(&der).expect("parse");
            let pk = req.public_key().expect("pk");
            assert!(req.verify(&pk).expect("verify"), "{kt}: signature");
            assert!(pk.public_eq(key.private_key()));
            let cn = req
                .subject_name()
                .entries_by_nid(openssl::nid::Nid::COMMONNAME)
                .next()
                .expect("cn");
            assert_eq!(cn.data().to_string().expect("utf8"), "example.com");
            let text = String::from_utf8(req.to_text().expect("text")).expect("utf8");
            for want in [
                "DNS:example.com",
                "DNS:www.example.com",
                "DNS:*.example.com",
                "IP Address:192.0.2.1",
                "IP Address:2001:DB8:0:0:0:0:0:1",
            ] {
                assert!(text.contains(want), "{kt}: {want} missing in\n{text}");
            }
        }
        let key = AccountKey::generate("ec:P-256").expect("key");
        assert!(build_csr(&[], key.private_key()).is_err());
        let long = format!("{}.example.com", "a".repeat(60));
        let der = build_csr(&[&long], key.private_key()).expect("csr");
        let req = X509Req::from_der(&der).expect("parse");
        assert_eq!(
            req.subject_name().entries().count(),
            0,
            "no CN above 64 chars"
        );
    }

    #[test]
    fn onion_csr_carries_the_nonces_and_verifies() {
        let hs = PKey::generate_ed25519().expect("ed25519");
        let pem = hs.private_key_to_pem_pkcs8().expect("pem");
        let der = build_onion_csr("abc.onion", "tok.thumb", &pem).expect("csr");
        let req = X509Req::from_der(&der).expect("openssl parses it");
        assert!(req.verify(&req.public_key().expect("pk")).expect("verify"));
        let parsed = CertReq::from_der(&der).expect("parse");
        let attrs: Vec<_> = parsed.info.attributes.iter().collect();
        let ca = attrs
            .iter()
            .find(|a| a.oid == OID_CA_SIGNING_NONCE)
            .expect("caSigningNonce");
        let value = ca.values.iter().next().expect("value");
        assert_eq!(value.decode_as::<String>().expect("utf8"), "tok.thumb");
        assert!(attrs.iter().any(|a| a.oid == OID_APPLICANT_SIGNING_NONCE));
        let text = String::from_utf8(req.to_text().expect("text")).expect("utf8");
        assert!(text.contains("DNS:abc.onion"), "{text}");

        assert!(build_onion_csr("abc.example", "k", &pem).is_err());
        let ec = AccountKey::generate("ec:P-256")
            .expect("k")
            .to_pem()
            .expect("pem");
        assert!(build_onion_csr("abc.onion", "k", ec.as_bytes()).is_err());
    }

    #[test]
    fn pem_to_der_reads_every_block() {
        let a = AccountKey::generate("ec:P-256").expect("k");
        let pem = a.to_pem().expect("pem");
        let two = format!("junk\n{pem}\n{pem}");
        let ders = pem_to_der(two.as_bytes());
        assert_eq!(ders.len(), 2);
        assert!(PKey::private_key_from_der(&ders[0]).is_ok());
        assert!(pem_to_der(b"nothing here").is_empty());
    }
}
