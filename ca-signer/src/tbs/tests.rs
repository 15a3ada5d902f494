//! Unit tests of the TBS builders, the lint and the signing checks.

use const_oid::db::rfc4519::CN;
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Padding;
use openssl::sign::RsaPssSaltlen;
use openssl::x509::X509;

use super::*;
use crate::config::{HashAlg, KeyType};
use crate::keys::file::FileKey;
use crate::policy::{self, Profile};

const NOW: i64 = 1_800_000_000;
const YEAR: i64 = 365 * 86_400;

/// Turns a good signature into a bad one.
type Spoil = Box<dyn Fn(Vec<u8>) -> Vec<u8> + Send + Sync>;

/// A backend that signs with `inner` and hands back `spoil` of it.
struct Faulty<'a> {
    inner: &'a dyn KeyBackend,
    spoil: Spoil,
}

impl KeyBackend for Faulty<'_> {
    fn public_key_der(&self) -> &[u8] {
        self.inner.public_key_der()
    }
    fn signature_algorithm(&self) -> SignatureAlgorithm {
        self.inner.signature_algorithm()
    }
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, Error> {
        Ok((self.spoil)(self.inner.sign(message)?))
    }
}

/// An RSA key signing RSASSA-PSS with SHA-256, MGF1-SHA-256 and a salt
/// of `salt` bytes.
struct Pss {
    pkey: PKey<Private>,
    spki_der: Vec<u8>,
    salt: i32,
}

impl Pss {
    fn new(salt: i32) -> Self {
        let pkey = PKey::from_rsa(openssl::rsa::Rsa::generate(2048).expect("rsa")).expect("pkey");
        let spki_der = pkey.public_key_to_der().expect("spki");
        Self {
            pkey,
            spki_der,
            salt,
        }
    }
}

impl KeyBackend for Pss {
    fn public_key_der(&self) -> &[u8] {
        &self.spki_der
    }
    fn signature_algorithm(&self) -> SignatureAlgorithm {
        SignatureAlgorithm::RsaPssSha256
    }
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, Error> {
        let mut signer = openssl::sign::Signer::new(MessageDigest::sha256(), &self.pkey)?;
        signer.set_rsa_padding(Padding::PKCS1_PSS)?;
        signer.set_rsa_pss_saltlen(RsaPssSaltlen::custom(self.salt))?;
        signer.set_rsa_mgf1_md(MessageDigest::sha256())?;
        Ok(signer.sign_oneshot_to_vec(message)?)
    }
}

fn root(key: &dyn KeyBackend) -> Result<SignedCertificate, Error> {
    build_root("Test CA", "Akāmu", key, 1, NOW, NOW + YEAR)?.sign(key)
}

/// A leaf for `a.example.org` issued by the root of `ca`.
fn leaf_tbs(ca: &dyn KeyBackend) -> LintedTbs {
    let subject = FileKey::generate(KeyType::EcP256, HashAlg::Sha256).expect("key");
    let checked = policy::check_server_certificate(
        &Profile::tls_server(90, NOW + YEAR),
        &["a.example.org".to_owned()],
        subject.public_key_der(),
        NOW,
    )
    .expect("checked");
    let issuer = self_issuer(&name(&[(CN, "Test CA")]).expect("name"), ca).expect("issuer");
    build_leaf(checked, &issuer, &LeafUrls::default(), &mut rand::rng()).expect("leaf")
}

/// What openssl's `X509_verify` says of `der` under `key`'s public key.
fn openssl_verifies(der: &[u8], key: &dyn KeyBackend) -> bool {
    let public = PKey::public_key_from_der(key.public_key_der()).expect("spki");
    X509::from_der(der)
        .expect("certificate")
        .verify(&public)
        .expect("verify")
}

fn spoilers() -> Vec<(&'static str, Spoil)> {
    vec![
        (
            "flipped last byte",
            Box::new(|mut s: Vec<u8>| {
                let last = s.len() - 1;
                s[last] ^= 0x01;
                s
            }),
        ),
        (
            "flipped first byte",
            Box::new(|mut s: Vec<u8>| {
                s[0] ^= 0x80;
                s
            }),
        ),
        (
            "trailing byte",
            Box::new(|mut s: Vec<u8>| {
                s.push(0);
                s
            }),
        ),
        ("empty", Box::new(|_| Vec::new())),
    ]
}

#[test]
fn good_signatures_pass_the_check_and_openssl_agrees() {
    let keys: Vec<Box<dyn KeyBackend>> = vec![
        Box::new(FileKey::generate(KeyType::EcP256, HashAlg::Sha256).expect("key")),
        Box::new(FileKey::generate(KeyType::EcP384, HashAlg::Sha384).expect("key")),
        Box::new(FileKey::generate(KeyType::EcP521, HashAlg::Sha512).expect("key")),
        Box::new(FileKey::generate(KeyType::Rsa(2048), HashAlg::Sha256).expect("key")),
        Box::new(FileKey::generate(KeyType::Ed25519, HashAlg::Sha512).expect("key")),
        Box::new(Pss::new(32)),
    ];
    for key in &keys {
        let alg = key.signature_algorithm();
        let signed = root(key.as_ref()).unwrap_or_else(|e| panic!("{alg:?}: {e}"));
        assert!(openssl_verifies(&signed.der, key.as_ref()), "{alg:?} root");
        let leaf = leaf_tbs(key.as_ref());
        let tbs_der = leaf.tbs_der().to_vec();
        let signed = leaf
            .sign(key.as_ref())
            .unwrap_or_else(|e| panic!("{alg:?}: {e}"));
        assert!(openssl_verifies(&signed.der, key.as_ref()), "{alg:?} leaf");
        let parts = SignedParts::of(&signed.der).expect("parts");
        assert_eq!(
            parts.tbs,
            tbs_der.as_slice(),
            "{alg:?}: the linted TBS is signed"
        );
    }
}

#[test]
fn a_faulty_backend_never_yields_a_certificate() {
    let keys: Vec<Box<dyn KeyBackend>> = vec![
        Box::new(FileKey::generate(KeyType::EcP256, HashAlg::Sha256).expect("key")),
        Box::new(FileKey::generate(KeyType::Rsa(2048), HashAlg::Sha384).expect("key")),
        Box::new(FileKey::generate(KeyType::Ed25519, HashAlg::Sha512).expect("key")),
        Box::new(Pss::new(32)),
    ];
    for key in &keys {
        let alg = key.signature_algorithm();
        for (what, spoil) in spoilers() {
            let faulty = Faulty {
                inner: key.as_ref(),
                spoil,
            };
            assert!(
                matches!(root(&faulty), Err(Error::SignatureCheck)),
                "{alg:?} root, {what}"
            );
            assert!(
                matches!(
                    leaf_tbs(key.as_ref()).sign(&faulty),
                    Err(Error::SignatureCheck)
                ),
                "{alg:?} leaf, {what}"
            );
        }
        // A valid signature by another key of the same kind.
        let other: Box<dyn KeyBackend> = match alg {
            SignatureAlgorithm::RsaPssSha256 => Box::new(Pss::new(32)),
            _ => {
                let kt = match alg {
                    SignatureAlgorithm::EcdsaSha256 => KeyType::EcP256,
                    SignatureAlgorithm::Ed25519 => KeyType::Ed25519,
                    _ => KeyType::Rsa(2048),
                };
                Box::new(FileKey::generate(kt, alg.hash()).expect("key"))
            }
        };
        let tbs = leaf_tbs(key.as_ref());
        let foreign = other.sign(tbs.tbs_der()).expect("sign");
        let impostor = Faulty {
            inner: key.as_ref(),
            spoil: Box::new(move |_| foreign.clone()),
        };
        assert!(
            matches!(tbs.sign(&impostor), Err(Error::SignatureCheck)),
            "{alg:?}: another key's signature"
        );
    }
}

#[test]
fn pss_signatures_must_use_the_profile_salt() {
    // A salt of 0 verifies for openssl only with salt length 0: the CA's
    // algorithm identifier says 32.
    let key = Pss::new(0);
    assert!(matches!(root(&key), Err(Error::SignatureCheck)));
    // openssl, told the certificate's parameters, refuses it too.
    let sig = key.sign(b"message").expect("sign");
    let public = PKey::public_key_from_der(key.public_key_der()).expect("spki");
    let mut verifier = openssl::sign::Verifier::new(MessageDigest::sha256(), &public).expect("v");
    verifier
        .set_rsa_padding(Padding::PKCS1_PSS)
        .expect("padding");
    verifier
        .set_rsa_pss_saltlen(RsaPssSaltlen::custom(32))
        .expect("salt");
    verifier
        .set_rsa_mgf1_md(MessageDigest::sha256())
        .expect("mgf1");
    assert!(!verifier.verify_oneshot(&sig, b"message").unwrap_or(false));
    let key =
        CaPublicKey::new(key.public_key_der(), SignatureAlgorithm::RsaPssSha256).expect("key");
    assert!(!key.verify(b"message", &sig).expect("verify"));
}

#[test]
fn signed_parts_must_be_exactly_one_structure() {
    let key = FileKey::generate(KeyType::EcP256, HashAlg::Sha256).expect("key");
    let der = root(&key).expect("root").der;
    let parts = SignedParts::of(&der).expect("parts");
    assert_eq!(
        parts.algorithm,
        key.signature_algorithm()
            .algorithm_identifier()
            .to_der()
            .expect("alg")
            .as_slice()
    );
    let mut trailing = der.clone();
    trailing.push(0);
    assert!(SignedParts::of(&trailing).is_err());
    assert!(SignedParts::of(&der[..der.len() - 1]).is_err());
}
