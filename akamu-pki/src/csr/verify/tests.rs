//! The two verification paths give the same verdict: every request the
//! fast path accepts, openssl accepts with the same key, and every other
//! request gets openssl's verdict.

use const_oid::ObjectIdentifier;
use const_oid::db::rfc5912::{SECP_256_R_1, SECP_384_R_1, SECP_521_R_1};
use der::asn1::{Any, BitString};
use der::{Decode, Encode, Tag};
use openssl::bn::{BigNum, BigNumContext};
use openssl::ec::{Asn1Flag, EcGroup, EcKey, EcPoint, PointConversionForm};
use openssl::ecdsa::EcdsaSig;
use openssl::error::ErrorStack;
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private, Public};
use openssl::x509::X509ReqBuilder;
use shared_proto::Identifier;
use x509_cert::request::CertReq;
use x509_cert::spki::SubjectPublicKeyInfoOwned;

use super::{verify_common, verify_with_openssl};
use crate::csr::{CsrError, ParsedCsr};
use crate::spki::{ec_public_key, named_group};
use crate::test_support::{csr, ec_key, ec_spki, point, rsa_key};

/// What a request gives: the parse, and the key's DER (`None` when
/// openssl cannot encode the key).
type Verdict = Result<(ParsedCsr, Option<Vec<u8>>), CsrError>;

fn shape(r: Result<(ParsedCsr, PKey<Public>), CsrError>) -> Verdict {
    r.map(|(csr, key)| (csr, key.public_key_to_der().ok()))
}

/// The verdict of `parse_and_verify_with_key`.
fn verdict(der: &[u8]) -> Verdict {
    shape(ParsedCsr::parse_and_verify_with_key(der))
}

/// The reference: openssl's `X509_REQ` parse and verification for every
/// request, as before the fast path existed.
fn reference(der: &[u8]) -> Verdict {
    drop(ErrorStack::get());
    shape(ParsedCsr::parse_with(der, |d, _| verify_with_openssl(d)))
}

/// Whether the request is verified without openssl's decoder.
fn fast(der: &[u8]) -> bool {
    CertReq::from_der(der)
        .ok()
        .and_then(|req| verify_common(der, &req))
        .is_some()
}

/// A CSR for `a.example.org` made by openssl with `key` and `md`.
fn openssl_csr(key: &PKey<Private>, md: MessageDigest) -> Vec<u8> {
    let mut b = X509ReqBuilder::new().expect("req");
    b.set_pubkey(key).expect("pubkey");
    let mut san = openssl::x509::extension::SubjectAlternativeName::new();
    san.dns("a.example.org");
    let mut exts = openssl::stack::Stack::new().expect("stack");
    exts.push(san.build(&b.x509v3_context(None)).expect("san"))
        .expect("push");
    b.add_extensions(&exts).expect("exts");
    b.sign(key, md).expect("sign");
    b.build().to_der().expect("der")
}

/// `der` with the SPKI `spki`, signed again by `sign` over the new
/// certificationRequestInfo.
fn with_spki(der: &[u8], spki: &[u8], sign: impl FnOnce(&[u8]) -> Vec<u8>) -> Vec<u8> {
    let mut req = CertReq::from_der(der).expect("parse");
    req.info.public_key = SubjectPublicKeyInfoOwned::from_der(spki).expect("spki");
    let info = req.info.to_der().expect("info");
    req.signature = BitString::from_bytes(&sign(&info)).expect("bits");
    req.to_der().expect("der")
}

fn ecdsa_sha256(key: &EcKey<Private>) -> impl FnOnce(&[u8]) -> Vec<u8> + '_ {
    |m| {
        EcdsaSig::sign(&openssl::sha::sha256(m), key)
            .and_then(|s| s.to_der())
            .expect("sign")
    }
}

/// An ECDSA P-256 SHA-256 signature that verifies for the public key at
/// infinity (d = 0): with Q = O, u1·G + u2·Q = k·G whatever u2 is.
fn forged_for_infinity(message: &[u8]) -> Vec<u8> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).expect("group");
    let mut ctx = BigNumContext::new().expect("ctx");
    let mut n = BigNum::new().expect("bn");
    group.order(&mut n, &mut ctx).expect("order");
    let k = BigNum::from_u32(12_345).expect("k");
    let mut r_point = EcPoint::new(&group).expect("point");
    r_point.mul_generator2(&group, &k, &mut ctx).expect("kG");
    let (mut x, mut y) = (BigNum::new().expect("x"), BigNum::new().expect("y"));
    r_point
        .affine_coordinates(&group, &mut x, &mut y, &mut ctx)
        .expect("affine");
    let mut r = BigNum::new().expect("r");
    r.nnmod(&x, &n, &mut ctx).expect("r");
    let e = BigNum::from_slice(&openssl::sha::sha256(message)).expect("e");
    let mut k_inv = BigNum::new().expect("k⁻¹");
    k_inv.mod_inverse(&k, &n, &mut ctx).expect("k⁻¹");
    let mut s = BigNum::new().expect("s");
    s.mod_mul(&e, &k_inv, &n, &mut ctx).expect("s");
    EcdsaSig::from_private_components(r, s)
        .and_then(|sig| sig.to_der())
        .expect("sig")
}

/// Valid requests of every common kind.
fn common_requests() -> Vec<(String, Vec<u8>, Vec<u8>)> {
    let mut out = Vec::new();
    for nid in [Nid::X9_62_PRIME256V1, Nid::SECP384R1, Nid::SECP521R1] {
        let key = PKey::from_ec_key(ec_key(nid)).expect("pkey");
        for (name, md) in [
            ("sha256", MessageDigest::sha256()),
            ("sha384", MessageDigest::sha384()),
            ("sha512", MessageDigest::sha512()),
        ] {
            out.push((
                format!("{nid:?} {name}"),
                openssl_csr(&key, md),
                key.public_key_to_der().expect("spki"),
            ));
        }
    }
    let rsa = rsa_key(2048, 65537);
    for (name, md) in [
        ("sha256", MessageDigest::sha256()),
        ("sha384", MessageDigest::sha384()),
        ("sha512", MessageDigest::sha512()),
    ] {
        out.push((
            format!("RSA-2048 {name}"),
            openssl_csr(&rsa, md),
            rsa.public_key_to_der().expect("spki"),
        ));
    }
    out
}

#[test]
fn common_requests_verify_without_the_decoder_and_return_their_key() {
    for (name, der, spki) in common_requests() {
        assert!(fast(&der), "{name}");
        let got = verdict(&der);
        assert_eq!(got, reference(&der), "{name}");
        let (csr, key) = got.expect(&name);
        assert_eq!(key.as_deref(), Some(spki.as_slice()), "{name}");
        assert_eq!(csr.spki_der, spki, "{name}");
        csr.check_against(&[Identifier::dns("a.example.org")])
            .expect(&name);
    }
    // rcgen's P-256 requests too.
    let der = csr(&["a.example.org"], Some("a.example.org"), false);
    assert!(fast(&der));
    assert_eq!(verdict(&der), reference(&der));
}

#[test]
fn other_requests_are_left_to_openssl_and_still_verify() {
    let cases = [
        (
            "Ed25519",
            openssl_csr(
                &PKey::generate_ed25519().expect("ed25519"),
                MessageDigest::null(),
            ),
        ),
        (
            "secp256k1",
            openssl_csr(
                &PKey::from_ec_key(ec_key(Nid::SECP256K1)).expect("pkey"),
                MessageDigest::sha256(),
            ),
        ),
        (
            "ECDSA SHA-1",
            openssl_csr(
                &PKey::from_ec_key(ec_key(Nid::X9_62_PRIME256V1)).expect("pkey"),
                MessageDigest::sha1(),
            ),
        ),
        (
            "RSA SHA-224",
            openssl_csr(&rsa_key(2048, 65537), MessageDigest::sha224()),
        ),
    ];
    for (name, der) in cases {
        assert!(!fast(&der), "{name}");
        let got = verdict(&der);
        assert!(got.is_ok(), "{name}: {got:?}");
        assert_eq!(got, reference(&der), "{name}");
    }
}

#[test]
fn flipped_signature_bytes_are_refused_as_before() {
    for (name, der, _) in common_requests() {
        let req = CertReq::from_der(&der).expect("parse");
        let sig_len = req.signature.raw_bytes().len();
        // The signature is the last thing in the request.
        for i in [der.len() - sig_len, der.len() - sig_len / 2, der.len() - 1] {
            let mut bad = der.clone();
            bad[i] ^= 0x01;
            let got = verdict(&bad);
            assert_eq!(got, Err(CsrError::Signature), "{name} byte {i}");
            assert_eq!(got, reference(&bad), "{name} byte {i}");
        }
    }
}

#[test]
fn a_key_off_its_curve_is_refused_as_before() {
    for (nid, curve) in [
        (Nid::X9_62_PRIME256V1, SECP_256_R_1),
        (Nid::SECP384R1, SECP_384_R_1),
        (Nid::SECP521R1, SECP_521_R_1),
    ] {
        let key = ec_key(nid);
        let group = key.group();
        let mut bad_point = point(&key, PointConversionForm::UNCOMPRESSED);
        let last = bad_point.len() - 1;
        bad_point[last] ^= 0x01;
        // openssl's oct2point refuses the point, so neither the fast key
        // nor openssl's decoder accepts it.
        let mut ctx = BigNumContext::new().expect("ctx");
        assert!(EcPoint::from_bytes(group, &bad_point, &mut ctx).is_err());
        assert!(ec_public_key(named_group(curve).expect("group"), &bad_point).is_none());

        let base = openssl_csr(
            &PKey::from_ec_key(key.clone()).expect("pkey"),
            MessageDigest::sha256(),
        );
        let der = with_spki(&base, &ec_spki(curve, &bad_point), ecdsa_sha256(&key));
        let got = verdict(&der);
        assert!(matches!(got, Err(CsrError::Parse(_))), "{nid:?}: {got:?}");
        assert_eq!(got, reference(&der), "{nid:?}");
    }
}

#[test]
fn other_point_encodings_and_explicit_curves_get_openssl_verdict() {
    let key = ec_key(Nid::X9_62_PRIME256V1);
    let base = openssl_csr(
        &PKey::from_ec_key(key.clone()).expect("pkey"),
        MessageDigest::sha256(),
    );
    let mut explicit = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).expect("group");
    explicit.set_asn1_flag(Asn1Flag::EXPLICIT_CURVE);
    let explicit_spki =
        PKey::from_ec_key(EcKey::from_public_key(&explicit, key.public_key()).expect("ec"))
            .and_then(|k| k.public_key_to_der())
            .expect("spki");
    let cases = [
        (
            "compressed",
            with_spki(
                &base,
                &ec_spki(SECP_256_R_1, &point(&key, PointConversionForm::COMPRESSED)),
                ecdsa_sha256(&key),
            ),
        ),
        (
            "hybrid",
            with_spki(
                &base,
                &ec_spki(SECP_256_R_1, &point(&key, PointConversionForm::HYBRID)),
                ecdsa_sha256(&key),
            ),
        ),
        (
            "explicit parameters",
            with_spki(&base, &explicit_spki, ecdsa_sha256(&key)),
        ),
        (
            "point at infinity",
            with_spki(&base, &ec_spki(SECP_256_R_1, &[0x00]), forged_for_infinity),
        ),
    ];
    for (name, der) in cases {
        assert!(!fast(&der), "{name}");
        assert_eq!(verdict(&der), reference(&der), "{name}");
    }
    // A signature forged for the point at infinity is refused.
    let forged = with_spki(&base, &ec_spki(SECP_256_R_1, &[0x00]), forged_for_infinity);
    assert!(
        matches!(
            ParsedCsr::parse_and_verify(&forged),
            Err(CsrError::Parse(ref d)) if d.contains("infinity")
        ),
        "{:?}",
        ParsedCsr::parse_and_verify(&forged)
    );
}

/// `der` with `edit` applied to its certificationRequestInfo, signed
/// again by `key`.
fn edited(der: &[u8], key: &EcKey<Private>, edit: impl FnOnce(&mut CertReq)) -> Vec<u8> {
    let mut req = CertReq::from_der(der).expect("parse");
    edit(&mut req);
    let info = req.info.to_der().expect("info");
    req.signature = BitString::from_bytes(&ecdsa_sha256(key)(&info)).expect("bits");
    req.to_der().expect("der")
}

#[test]
fn what_openssl_refuses_beyond_strict_der_is_still_refused() {
    let key = ec_key(Nid::X9_62_PRIME256V1);
    let base = openssl_csr(
        &PKey::from_ec_key(key.clone()).expect("pkey"),
        MessageDigest::sha256(),
    );
    // A subject attribute that is not valid UTF-8: x509-cert keeps the
    // value as ANY, openssl's name parser refuses it.
    let bad_subject = edited(&base, &key, |req| {
        let atv = x509_cert::attr::AttributeTypeAndValue {
            oid: const_oid::db::rfc4519::O,
            value: Any::new(Tag::Utf8String, vec![0xff, 0xfe]).expect("any"),
        };
        let mut rdns = x509_cert::name::RdnSequence::default();
        rdns.push(x509_cert::name::RelativeDistinguishedName::try_from(vec![atv]).expect("rdn"));
        req.info.subject = x509_cert::name::Name::hazmat_from_rdn_sequence(rdns);
    });
    // challengePassword holding a BOOLEAN of two octets.
    let bad_attribute = edited(&base, &key, |req| {
        let mut values = der::asn1::SetOfVec::new();
        values
            .insert(Any::new(Tag::Boolean, vec![0, 0]).expect("any"))
            .expect("insert");
        req.info
            .attributes
            .insert(x509_cert::attr::Attribute {
                oid: ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.7"),
                values,
            })
            .expect("insert");
    });
    for (name, der) in [("subject", bad_subject), ("attribute", bad_attribute)] {
        assert!(CertReq::from_der(&der).is_ok(), "{name}: strict DER");
        assert!(!fast(&der), "{name}");
        let got = verdict(&der);
        assert!(matches!(got, Err(CsrError::Parse(_))), "{name}: {got:?}");
        assert_eq!(got, reference(&der), "{name}");
    }
}

#[test]
fn mutated_requests_get_the_same_verdict_on_both_paths() {
    // xorshift64*: deterministic, no dependency.
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = move || {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x2545_f491_4f6c_dd1d)
    };
    for (name, der, _) in common_requests() {
        for _ in 0..150 {
            let mut bad = der.clone();
            let r = next();
            let i = usize::try_from(r % bad.len() as u64).expect("index");
            let bit = 1u8 << ((r >> 32) % 8);
            bad[i] ^= bit;
            assert_eq!(
                verdict(&bad),
                reference(&bad),
                "{name}: byte {i} ^ {bit:#x}"
            );
        }
    }
}
