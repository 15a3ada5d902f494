//! Unit tests of the leaf policy and the subscriber key checks.

use openssl::bn::{BigNum, BigNumContext, BigNumRef};
use openssl::nid::Nid;
use openssl::pkey::{Id, PKey};

use super::public_key::{ROCA_PRIMES, isqrt};
use super::*;
use crate::error::KeyRefusal;

const DAY: i64 = 86_400;
const NOW: i64 = 1_800_000_000;

fn profile() -> Profile {
    Profile::tls_server(90, NOW + 3650 * DAY)
}

#[test]
fn validity_table() {
    let p = profile();
    type Case = (Option<i64>, Option<i64>, Result<(i64, i64), PolicyRefusal>);
    let cases: &[Case] = &[
        (None, None, Ok((NOW, NOW + 90 * DAY))),
        // Backdating up to an hour is honoured, more falls back to now.
        (
            Some(NOW - 3600),
            None,
            Ok((NOW - 3600, NOW - 3600 + 90 * DAY)),
        ),
        (Some(NOW - 3601), None, Ok((NOW, NOW + 90 * DAY))),
        (Some(NOW + DAY), None, Ok((NOW + DAY, NOW + 91 * DAY))),
        // A shorter notAfter is honoured, a longer one is capped.
        (None, Some(NOW + 7 * DAY), Ok((NOW, NOW + 7 * DAY))),
        (
            None,
            Some(NOW + 3650 * DAY),
            Err(PolicyRefusal::ValidityTooLong {
                requested_secs: 3650 * DAY,
                max_secs: 90 * DAY,
            }),
        ),
        (None, Some(NOW), Err(PolicyRefusal::EmptyValidity)),
        (
            Some(NOW + DAY),
            Some(NOW + DAY),
            Err(PolicyRefusal::EmptyValidity),
        ),
    ];
    for (nb, na, want) in cases {
        assert_eq!(&validity(&p, *nb, *na, NOW), want, "nb={nb:?} na={na:?}");
    }
}

#[test]
fn validity_never_outlives_the_ca() {
    let p = Profile::tls_server(90, NOW + 10 * DAY);
    assert_eq!(validity(&p, None, None, NOW), Ok((NOW, NOW + 10 * DAY)));
    assert_eq!(
        validity(&p, None, Some(NOW + 11 * DAY), NOW),
        Err(PolicyRefusal::BeyondIssuer)
    );
    assert_eq!(
        validity(&p, Some(NOW + 11 * DAY), None, NOW),
        Err(PolicyRefusal::CaExpired)
    );
}

#[test]
fn identifier_table() {
    let ok = [
        vec![Identifier::dns("a.example.org")],
        vec![
            Identifier::dns("*.example.org"),
            Identifier::ip("::1".parse().expect("ip")),
        ],
    ];
    for ids in ok {
        assert!(
            check_identifiers(&ids, is_valid_dns_name, MAX_IDENTIFIERS).is_ok(),
            "{ids:?}"
        );
    }
    let bad = |kind, value: &str| Identifier {
        kind,
        value: value.to_owned(),
    };
    let refused = [
        (vec![], PolicyRefusal::NoIdentifiers),
        (
            vec![Identifier::dns("localhost")],
            PolicyRefusal::InvalidDnsName("localhost".into()),
        ),
        (
            vec![Identifier::dns("under_score.example")],
            PolicyRefusal::InvalidDnsName("under_score.example".into()),
        ),
        (
            vec![bad(IdentifierKind::Dns, "UPPER.example.org")],
            PolicyRefusal::InvalidDnsName("UPPER.example.org".into()),
        ),
        (
            vec![Identifier::dns("duskgytldkxiuqc6.onion")],
            PolicyRefusal::InvalidDnsName("duskgytldkxiuqc6.onion".into()),
        ),
        (
            vec![bad(IdentifierKind::Ip, "010.0.0.1")],
            PolicyRefusal::InvalidIpAddress("010.0.0.1".into()),
        ),
        (
            vec![bad(IdentifierKind::Ip, "::0001")],
            PolicyRefusal::InvalidIpAddress("::0001".into()),
        ),
    ];
    for (ids, want) in refused {
        assert_eq!(
            check_identifiers(&ids, is_valid_dns_name, MAX_IDENTIFIERS),
            Err(want)
        );
    }
    let many: Vec<_> = (0..=MAX_IDENTIFIERS)
        .map(|i| Identifier::dns(&format!("n{i}.example.org")))
        .collect();
    assert_eq!(
        check_identifiers(&many, is_valid_dns_name, MAX_IDENTIFIERS),
        Err(PolicyRefusal::TooManyIdentifiers(MAX_IDENTIFIERS + 1))
    );
}

#[test]
fn local_names_only_for_the_server_certificate() {
    assert!(is_valid_local_name("localhost"));
    assert!(is_valid_local_name("a.example.org"));
    assert!(!is_valid_local_name("under_score"));
    assert!(!is_valid_local_name("123"));
    assert!(!is_valid_dns_name("localhost"));
}

#[test]
fn common_name_prefers_the_csr_cn_and_fits_64_chars() {
    let long = Identifier::dns(&format!("{}.example.org", "a".repeat(60)));
    let short = Identifier::dns("b.example.org");
    let sans = vec![long.clone(), short.clone()];
    assert_eq!(
        pick_common_name(Some(&long), &sans).as_deref(),
        Some("b.example.org")
    );
    assert_eq!(pick_common_name(None, &[long]), None);
    assert_eq!(
        pick_common_name(Some(&short), &sans).as_deref(),
        Some("b.example.org")
    );
    // Never an IP address: an IP-only certificate has no CN.
    let ip = Identifier::ip("192.0.2.1".parse().expect("ip"));
    assert_eq!(pick_common_name(Some(&ip), std::slice::from_ref(&ip)), None);
    assert_eq!(
        pick_common_name(Some(&ip), &[ip.clone(), short.clone()]).as_deref(),
        Some("b.example.org")
    );
}

#[test]
fn key_policy() {
    let any = KeyPolicy::default();
    let ec = |nid| {
        let g = openssl::ec::EcGroup::from_curve_name(nid).expect("group");
        let k = openssl::ec::EcKey::generate(&g).expect("ec");
        PKey::from_ec_key(k)
            .expect("pkey")
            .public_key_to_der()
            .expect("der")
    };
    assert_eq!(
        check_public_key(&ec(Nid::X9_62_PRIME256V1), &any),
        Ok(false)
    );
    assert_eq!(check_public_key(&ec(Nid::SECP384R1), &any), Ok(false));
    let p521 = ec(Nid::SECP521R1);
    assert!(matches!(
        check_public_key(&p521, &any),
        Err(KeyRefusal::Curve(_))
    ));
    let allow = KeyPolicy {
        allow_p521: true,
        allow_ed25519: true,
        ..KeyPolicy::default()
    };
    assert_eq!(check_public_key(&p521, &allow), Ok(false));
    assert!(matches!(
        check_public_key(&ec(Nid::SECP256K1), &allow),
        Err(KeyRefusal::Curve(_))
    ));
    let rsa = |bits, e: u32| {
        let e = BigNum::from_u32(e).expect("e");
        let k = openssl::rsa::Rsa::generate_with_e(bits, &e).expect("rsa");
        PKey::from_rsa(k)
            .expect("pkey")
            .public_key_to_der()
            .expect("der")
    };
    assert_eq!(check_public_key(&rsa(2048, 65537), &any), Ok(true));
    assert_eq!(
        check_public_key(&rsa(1024, 65537), &any),
        Err(KeyRefusal::RsaSize { bits: 1024 })
    );
    assert_eq!(
        check_public_key(&rsa(2560, 65537), &any),
        Err(KeyRefusal::RsaSize { bits: 2560 })
    );
    assert_eq!(
        check_public_key(&rsa(2048, 3), &any),
        Err(KeyRefusal::RsaExponent)
    );
    let ed = PKey::generate_ed25519()
        .expect("ed")
        .public_key_to_der()
        .expect("der");
    assert!(matches!(
        check_public_key(&ed, &any),
        Err(KeyRefusal::Algorithm(_))
    ));
    assert_eq!(check_public_key(&ed, &allow), Ok(false));
    assert_eq!(check_public_key(b"junk", &any), Err(KeyRefusal::Unparsable));

    let key = ec(Nid::X9_62_PRIME256V1);
    let blocked = KeyPolicy {
        blocked: Arc::new([spki_sha256(&key)].into_iter().collect()),
        ..KeyPolicy::default()
    };
    assert_eq!(check_public_key(&key, &blocked), Err(KeyRefusal::Blocked));
}

/// An RSA public key with modulus `n` and e = 65537, as SPKI DER.
fn spki_with_modulus(n: &BigNumRef) -> Vec<u8> {
    let rsa = openssl::rsa::Rsa::from_public_components(
        n.to_owned().expect("n"),
        BigNum::from_u32(65537).expect("e"),
    )
    .expect("rsa");
    PKey::from_rsa(rsa)
        .expect("pkey")
        .public_key_to_der()
        .expect("der")
}

#[test]
fn roca_fingerprint_is_detected() {
    // n ≡ 1 (mod every fingerprint prime): 1 lies in every subgroup, so
    // such a modulus carries the fingerprint.
    let mut m = BigNum::from_u32(1).expect("1");
    let mut ctx = BigNumContext::new().expect("ctx");
    for p in ROCA_PRIMES {
        let mut next = BigNum::new().expect("bn");
        next.checked_mul(&m, &BigNum::from_u32(p).expect("p"), &mut ctx)
            .expect("mul");
        m = next;
    }
    let mut n = BigNum::new().expect("bn");
    n.set_bit(2047).expect("bit");
    let mut r = BigNum::new().expect("bn");
    r.nnmod(&n, &m, &mut ctx).expect("mod");
    let mut fingerprinted = BigNum::new().expect("bn");
    fingerprinted.checked_sub(&n, &r).expect("sub");
    fingerprinted.add_word(1).expect("add");
    let base = fingerprinted.to_owned().expect("c");
    fingerprinted.checked_add(&base, &m).expect("add");
    assert_eq!(fingerprinted.num_bits(), 2048);
    assert!(roca_fingerprint(&fingerprinted));
    assert_eq!(
        check_public_key(&spki_with_modulus(&fingerprinted), &KeyPolicy::default()),
        Err(KeyRefusal::Roca)
    );
    let good = openssl::rsa::Rsa::generate(2048).expect("rsa");
    assert!(!roca_fingerprint(good.n()));
}

#[test]
fn fermat_breaks_close_primes() {
    let mut ctx = BigNumContext::new().expect("ctx");
    let mut p = BigNum::new().expect("bn");
    p.generate_prime(1024, false, None, None).expect("prime");
    let mut q = p.to_owned().expect("q");
    loop {
        q.add_word(2).expect("add");
        if q.is_prime(20, &mut ctx).expect("test") {
            break;
        }
    }
    let mut n = BigNum::new().expect("bn");
    n.checked_mul(&p, &q, &mut ctx).expect("mul");
    assert!(fermat_factor(&n, FERMAT_ROUNDS).expect("fermat"));
    assert_eq!(
        check_public_key(&spki_with_modulus(&n), &KeyPolicy::default()),
        Err(KeyRefusal::Fermat)
    );
    let good = openssl::rsa::Rsa::generate(2048).expect("rsa");
    assert!(!fermat_factor(good.n(), FERMAT_ROUNDS).expect("fermat"));
    let base = BigNum::from_u32(1_000_003).expect("bn");
    let mut root = BigNum::new().expect("bn");
    root.sqr(&base, &mut ctx).expect("sqr");
    assert_eq!(
        isqrt(&root, &mut ctx).expect("isqrt"),
        BigNum::from_u32(1_000_003).expect("bn")
    );
}

// ---- Requests through `check`: the CSR's key, decoded once ----

use akamu_pki::csr::CsrError;
use openssl::ec::{EcGroup, EcKey};
use openssl::ecdsa::EcdsaSig;
use openssl::hash::MessageDigest;
use openssl::pkey::Private;

fn request_for(csr_der: Vec<u8>) -> IssueRequest {
    IssueRequest {
        csr_der,
        identifiers: vec![Identifier::dns("a.example.org")],
        not_before: None,
        not_after: None,
        account_uri: "https://acme.example.org/acme/acct/1".to_owned(),
        order_id: "order-1".to_owned(),
        statements: Vec::new(),
        profile: None,
        processing_since: None,
        star: None,
    }
}

/// A CSR for `a.example.org` made by openssl.
fn openssl_csr(key: &PKey<Private>) -> Vec<u8> {
    let mut b = openssl::x509::X509ReqBuilder::new().expect("req");
    b.set_pubkey(key).expect("pubkey");
    let mut san = openssl::x509::extension::SubjectAlternativeName::new();
    san.dns("a.example.org");
    let mut exts = openssl::stack::Stack::new().expect("stack");
    exts.push(san.build(&b.x509v3_context(None)).expect("san"))
        .expect("push");
    b.add_extensions(&exts).expect("exts");
    let md = if key.id() == Id::ED25519
        || key.id() == Id::ED448
        || akamu_jose::MlDsa::of_key(key).is_some()
    {
        MessageDigest::null()
    } else {
        MessageDigest::sha256()
    };
    b.sign(key, md).expect("sign");
    b.build().to_der().expect("der")
}

fn ec_key(nid: Nid) -> EcKey<Private> {
    EcKey::generate(&EcGroup::from_curve_name(nid).expect("group")).expect("ec")
}

fn rsa_key(bits: u32, e: u32) -> PKey<Private> {
    let e = BigNum::from_u32(e).expect("e");
    PKey::from_rsa(openssl::rsa::Rsa::generate_with_e(bits, &e).expect("rsa")).expect("pkey")
}

/// `der` with its key's point bytes replaced by `point` (same curve),
/// signed again with `sign` over the new certificationRequestInfo.
fn with_point(der: &[u8], point: &[u8], sign: impl FnOnce(&[u8]) -> Vec<u8>) -> Vec<u8> {
    use der::asn1::BitString;
    use der::{Decode, Encode};
    let mut req = x509_cert::request::CertReq::from_der(der).expect("parse");
    req.info.public_key.subject_public_key = BitString::from_bytes(point).expect("bits");
    let info = req.info.to_der().expect("info");
    req.signature = BitString::from_bytes(&sign(&info)).expect("bits");
    req.to_der().expect("der")
}

#[test]
fn csr_keys_are_judged_as_before() {
    let p = profile();
    let any = KeyPolicy::default();
    let check_csr = |der: Vec<u8>, keys: &KeyPolicy| check(&p, keys, &request_for(der), NOW);

    let ec = ec_key(Nid::X9_62_PRIME256V1);
    let ec_pkey = PKey::from_ec_key(ec.clone()).expect("pkey");
    let good = check_csr(openssl_csr(&ec_pkey), &any).expect("P-256");
    assert!(!good.rsa_subscriber);
    assert_eq!(good.spki_der(), ec_pkey.public_key_to_der().expect("spki"));
    let rsa = check_csr(openssl_csr(&rsa_key(2048, 65537)), &any).expect("RSA-2048");
    assert!(rsa.rsa_subscriber);

    let refused = |der: Vec<u8>, keys: &KeyPolicy| match check_csr(der, keys) {
        Err(Error::PublicKey(r)) => Some(r),
        _ => None,
    };
    assert_eq!(
        refused(openssl_csr(&rsa_key(2048, 3)), &any),
        Some(KeyRefusal::RsaExponent)
    );
    assert_eq!(
        refused(openssl_csr(&rsa_key(1024, 65537)), &any),
        Some(KeyRefusal::RsaSize { bits: 1024 })
    );
    let p521 = openssl_csr(&PKey::from_ec_key(ec_key(Nid::SECP521R1)).expect("pkey"));
    assert!(matches!(
        refused(p521.clone(), &any),
        Some(KeyRefusal::Curve(_))
    ));
    let allow = KeyPolicy {
        allow_p521: true,
        allow_ed25519: true,
        ..KeyPolicy::default()
    };
    assert!(check_csr(p521, &allow).is_ok());
    let k1 = openssl_csr(&PKey::from_ec_key(ec_key(Nid::SECP256K1)).expect("pkey"));
    assert!(matches!(refused(k1, &allow), Some(KeyRefusal::Curve(_))));
    let ed = openssl_csr(&PKey::generate_ed25519().expect("ed25519"));
    assert!(matches!(
        refused(ed.clone(), &any),
        Some(KeyRefusal::Algorithm(_))
    ));
    assert!(check_csr(ed, &allow).is_ok());
    let blocked = KeyPolicy {
        blocked: Arc::new(
            [spki_sha256(&ec_pkey.public_key_to_der().expect("spki"))]
                .into_iter()
                .collect(),
        ),
        ..KeyPolicy::default()
    };
    assert_eq!(
        refused(openssl_csr(&ec_pkey), &blocked),
        Some(KeyRefusal::Blocked)
    );

    // A flipped signature byte.
    let mut der = openssl_csr(&ec_pkey);
    let last = der.len() - 1;
    der[last] ^= 0x01;
    assert!(matches!(
        check_csr(der, &any),
        Err(Error::Csr(CsrError::Signature))
    ));
    // A key whose point is not on the curve (signed by the real key).
    let mut ctx = BigNumContext::new().expect("ctx");
    let mut off_curve = ec
        .public_key()
        .to_bytes(
            ec.group(),
            openssl::ec::PointConversionForm::UNCOMPRESSED,
            &mut ctx,
        )
        .expect("point");
    off_curve[64] ^= 0x01;
    let der = with_point(&openssl_csr(&ec_pkey), &off_curve, |m| {
        EcdsaSig::sign(&openssl::sha::sha256(m), &ec)
            .and_then(|s| s.to_der())
            .expect("sign")
    });
    assert!(matches!(
        check_csr(der, &any),
        Err(Error::Csr(CsrError::Parse(_)))
    ));
    // The point at infinity is not a key, whatever the signature
    // (akamu_pki::csr's tests forge one that verifies for it).
    let der = with_point(&openssl_csr(&ec_pkey), &[0x00], |_| {
        vec![0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01]
    });
    let verdict = check_csr(der, &any);
    assert!(
        matches!(verdict, Err(Error::Csr(CsrError::Parse(_)))),
        "{verdict:?}"
    );
}

/// ML-DSA-44/65/87 and Ed448 CSRs verify and pass only under a profile that
/// lists them; such a profile refuses every type it does not list.
#[test]
fn profile_key_types_admit_ml_dsa_and_ed448() {
    let keys = KeyPolicy::default();
    let default = profile();
    let pq = Profile {
        key_types: Some(vec![
            KeyType::MlDsa(akamu_jose::MlDsa::P44),
            KeyType::MlDsa(akamu_jose::MlDsa::P65),
            KeyType::MlDsa(akamu_jose::MlDsa::P87),
            KeyType::Ed448,
            KeyType::Rsa(3072),
        ]),
        ..profile()
    };
    for kt in ["ml-dsa-44", "ml-dsa-65", "ml-dsa-87", "ed448"] {
        let kt: KeyType = kt.parse().expect("key type");
        let csr = openssl_csr(&kt.generate().expect("key"));
        let checked = check(&pq, &keys, &request_for(csr.clone()), NOW)
            .unwrap_or_else(|e| panic!("{kt} under the pq profile: {e}"));
        assert!(!checked.rsa_subscriber, "{kt}: digitalSignature only");
        let refused = check(&default, &keys, &request_for(csr.clone()), NOW)
            .expect_err("not under the default profile");
        assert!(
            matches!(refused, Error::PublicKey(KeyRefusal::Algorithm(_))),
            "{kt}: {refused:?}"
        );
        // A flipped bit in the signature: the CSR does not verify.
        let mut bad = csr;
        let at = bad.len() - 10;
        bad[at] ^= 0x01;
        assert!(check(&pq, &keys, &request_for(bad), NOW).is_err(), "{kt}");
    }
    let p256 = openssl_csr(&PKey::from_ec_key(ec_key(Nid::X9_62_PRIME256V1)).expect("pkey"));
    assert!(check(&default, &keys, &request_for(p256.clone()), NOW).is_ok());
    assert!(matches!(
        check(&pq, &keys, &request_for(p256), NOW),
        Err(Error::PublicKey(KeyRefusal::Algorithm(_)))
    ));
    assert!(matches!(
        check(
            &pq,
            &keys,
            &request_for(openssl_csr(&rsa_key(2048, 65537))),
            NOW
        ),
        Err(Error::PublicKey(KeyRefusal::RsaSize { bits: 2048 }))
    ));
}
