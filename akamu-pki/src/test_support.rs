//! Keys, SPKIs and requests shared by the unit tests.

use const_oid::ObjectIdentifier;
use const_oid::db::rfc5912::ID_EC_PUBLIC_KEY;
use der::Encode;
use der::asn1::{Any, BitString};
use openssl::bn::{BigNum, BigNumContext};
use openssl::ec::{EcGroup, EcKey, PointConversionForm};
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use x509_cert::spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};

/// A request made by rcgen (P-256) for `names`, with an optional
/// commonName, asking for `cA=TRUE` if `ca`.
pub(crate) fn csr(names: &[&str], cn: Option<&str>, ca: bool) -> Vec<u8> {
    let key = rcgen::KeyPair::generate().expect("key");
    let mut params =
        rcgen::CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .expect("params");
    params.distinguished_name = rcgen::DistinguishedName::new();
    if let Some(cn) = cn {
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, cn);
    }
    if ca {
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    }
    params.serialize_request(&key).expect("csr").der().to_vec()
}

pub(crate) fn ec_key(nid: Nid) -> EcKey<Private> {
    EcKey::generate(&EcGroup::from_curve_name(nid).expect("group")).expect("ec")
}

pub(crate) fn rsa_key(bits: u32, e: u32) -> PKey<Private> {
    let e = BigNum::from_u32(e).expect("e");
    PKey::from_rsa(Rsa::generate_with_e(bits, &e).expect("rsa")).expect("pkey")
}

/// An ecPublicKey SPKI on `curve` with the point bytes `point`.
pub(crate) fn ec_spki(curve: ObjectIdentifier, point: &[u8]) -> Vec<u8> {
    SubjectPublicKeyInfoOwned {
        algorithm: AlgorithmIdentifierOwned {
            oid: ID_EC_PUBLIC_KEY,
            parameters: Some(Any::encode_from(&curve).expect("oid")),
        },
        subject_public_key: BitString::from_bytes(point).expect("bits"),
    }
    .to_der()
    .expect("spki")
}

pub(crate) fn point(key: &EcKey<Private>, form: PointConversionForm) -> Vec<u8> {
    let mut ctx = BigNumContext::new().expect("ctx");
    key.public_key()
        .to_bytes(key.group(), form, &mut ctx)
        .expect("point")
}
