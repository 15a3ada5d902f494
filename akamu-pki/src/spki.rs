//! Public keys from DER SubjectPublicKeyInfo, and ECDSA verification as
//! openssl's `ECDSA_verify` decides it.
//!
//! The common keys (EC on P-256, P-384 or P-521 with a named curve and an
//! uncompressed point; RSA with NULL parameters) are built directly from the
//! parsed SPKI, without openssl's (slow) decoder framework; see
//! [`crate::csr`] for why that matters.

use std::sync::OnceLock;

use const_oid::ObjectIdentifier;
use const_oid::db::rfc5912::{
    ID_EC_PUBLIC_KEY, RSA_ENCRYPTION, SECP_256_R_1, SECP_384_R_1, SECP_521_R_1,
};
use der::Decode;
use der::asn1::UintRef;
use openssl::bn::{BigNum, BigNumContext};
use openssl::ec::{EcGroup, EcKey, EcPoint};
use openssl::ecdsa::EcdsaSig;
use openssl::error::ErrorStack;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Public};
use openssl::rsa::Rsa;
use x509_cert::spki::SubjectPublicKeyInfoOwned;

/// Decodes a DER SubjectPublicKeyInfo into an openssl key.
///
/// The common keys (EC on P-256, P-384 or P-521 with a named curve and an
/// uncompressed point; RSA with NULL parameters) are built directly from the
/// parsed SPKI; anything else goes through [`PKey::public_key_from_der`].
/// Either way the result is the same key, a point off its curve is refused,
/// and `public_key_to_der` gives the same bytes.
pub fn public_key_from_spki(spki_der: &[u8]) -> Result<PKey<Public>, ErrorStack> {
    if let Ok(spki) = SubjectPublicKeyInfoOwned::from_der(spki_der)
        && let Some(key) = CommonKey::from_spki(&spki)
        && let Ok(pkey) = key.into_pkey()
    {
        return Ok(pkey);
    }
    PKey::public_key_from_der(spki_der)
}

/// A public key built without openssl's decoder framework.
pub(crate) enum CommonKey {
    /// An EC key on a named curve.
    Ec(EcKey<Public>),
    /// An RSA key.
    Rsa(PKey<Public>),
}

impl CommonKey {
    /// The key of `spki` if it is a common one and valid, else `None`.
    pub(crate) fn from_spki(spki: &SubjectPublicKeyInfoOwned) -> Option<Self> {
        let bits = spki.subject_public_key.as_bytes()?;
        let algorithm = &spki.algorithm;
        if algorithm.oid == ID_EC_PUBLIC_KEY {
            let curve: ObjectIdentifier = algorithm.parameters.as_ref()?.decode_as().ok()?;
            ec_public_key(named_group(curve)?, bits).map(Self::Ec)
        } else if algorithm.oid == RSA_ENCRYPTION
            && algorithm.parameters == Some(der::asn1::Any::null())
        {
            rsa_public_key(bits).map(Self::Rsa)
        } else {
            None
        }
    }

    pub(crate) fn into_pkey(self) -> Result<PKey<Public>, ErrorStack> {
        match self {
            Self::Ec(ec) => PKey::from_ec_key(ec),
            Self::Rsa(pkey) => Ok(pkey),
        }
    }
}

/// The group of a named curve we build keys for, made once per process.
pub(crate) fn named_group(curve: ObjectIdentifier) -> Option<&'static EcGroup> {
    static P256: OnceLock<Option<EcGroup>> = OnceLock::new();
    static P384: OnceLock<Option<EcGroup>> = OnceLock::new();
    static P521: OnceLock<Option<EcGroup>> = OnceLock::new();
    let (cell, nid) = if curve == SECP_256_R_1 {
        (&P256, Nid::X9_62_PRIME256V1)
    } else if curve == SECP_384_R_1 {
        (&P384, Nid::SECP384R1)
    } else if curve == SECP_521_R_1 {
        (&P521, Nid::SECP521R1)
    } else {
        return None;
    };
    cell.get_or_init(|| EcGroup::from_curve_name(nid).ok())
        .as_ref()
}

/// An EC public key from an uncompressed point (`04 ‖ X ‖ Y`).
/// `EC_POINT_oct2point` refuses coordinates that are out of range or not on
/// the curve; the point at infinity has another encoding and is left to
/// openssl's decoder like every other form.
pub(crate) fn ec_public_key(group: &EcGroup, point: &[u8]) -> Option<EcKey<Public>> {
    let field_len = usize::try_from(group.degree().div_ceil(8)).ok()?;
    if point.first() != Some(&0x04) || point.len() != 1 + 2 * field_len {
        return None;
    }
    let mut ctx = BigNumContext::new().ok()?;
    let point = EcPoint::from_bytes(group, point, &mut ctx).ok()?;
    if point.is_infinity(group) || !point.is_on_curve(group, &mut ctx).unwrap_or(false) {
        return None;
    }
    EcKey::from_public_key(group, &point).ok()
}

/// `RSAPublicKey` (RFC 8017 §A.1.1), strict DER.
#[derive(der::Sequence)]
struct RsaPublicKey<'a> {
    modulus: UintRef<'a>,
    public_exponent: UintRef<'a>,
}

/// An RSA public key from a DER `RSAPublicKey`.
fn rsa_public_key(der: &[u8]) -> Option<PKey<Public>> {
    let key = RsaPublicKey::from_der(der).ok()?;
    let n = BigNum::from_slice(key.modulus.as_bytes()).ok()?;
    let e = BigNum::from_slice(key.public_exponent.as_bytes()).ok()?;
    PKey::from_rsa(Rsa::from_public_components(n, e).ok()?).ok()
}

/// Whether `signature` (a DER `ECDSA-Sig-Value`) verifies for `digest`, as
/// openssl's `ECDSA_verify` decides it: a strict DER encoding without
/// trailing bytes, then `ECDSA_do_verify`.
pub fn ecdsa_verify_digest(key: &EcKey<Public>, digest: &[u8], signature: &[u8]) -> bool {
    let Ok(sig) = EcdsaSig::from_der(signature) else {
        return false;
    };
    if sig.to_der().ok().as_deref() != Some(signature) {
        return false;
    }
    sig.verify(digest, key).unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use der::Encode;
    use openssl::ec::PointConversionForm;
    use openssl::pkey::Id;

    use super::*;
    use crate::test_support::{ec_key, ec_spki, point, rsa_key};

    #[test]
    fn public_key_from_spki_gives_openssl_key() {
        let key = ec_key(Nid::X9_62_PRIME256V1);
        let mut off_curve = point(&key, PointConversionForm::UNCOMPRESSED);
        off_curve[64] ^= 0x01;
        let rsa = rsa_key(2048, 65537);
        let rsa_spki = rsa.public_key_to_der().expect("spki");
        let mut rsa_no_params = SubjectPublicKeyInfoOwned::from_der(&rsa_spki).expect("spki");
        rsa_no_params.algorithm.parameters = None;
        let mut trailing = rsa_spki.clone();
        trailing.push(0);
        let cases: Vec<(&str, Vec<u8>)> = vec![
            (
                "P-256",
                ec_spki(
                    SECP_256_R_1,
                    &point(&key, PointConversionForm::UNCOMPRESSED),
                ),
            ),
            (
                "P-384",
                PKey::from_ec_key(ec_key(Nid::SECP384R1))
                    .and_then(|k| k.public_key_to_der())
                    .expect("spki"),
            ),
            (
                "P-521",
                PKey::from_ec_key(ec_key(Nid::SECP521R1))
                    .and_then(|k| k.public_key_to_der())
                    .expect("spki"),
            ),
            (
                "compressed",
                ec_spki(SECP_256_R_1, &point(&key, PointConversionForm::COMPRESSED)),
            ),
            ("off the curve", ec_spki(SECP_256_R_1, &off_curve)),
            ("infinity", ec_spki(SECP_256_R_1, &[0x00])),
            (
                "wrong curve",
                ec_spki(
                    SECP_384_R_1,
                    &point(&key, PointConversionForm::UNCOMPRESSED),
                ),
            ),
            ("RSA", rsa_spki.clone()),
            (
                "RSA e=3",
                rsa_key(2048, 3).public_key_to_der().expect("spki"),
            ),
            (
                "RSA without parameters",
                rsa_no_params.to_der().expect("spki"),
            ),
            ("trailing byte", trailing),
            (
                "Ed25519",
                PKey::generate_ed25519()
                    .and_then(|k| k.public_key_to_der())
                    .expect("spki"),
            ),
            ("junk", b"junk".to_vec()),
        ];
        for (name, spki) in cases {
            let ours = public_key_from_spki(&spki)
                .map(|k| (k.id(), k.bits(), k.public_key_to_der().ok()))
                .ok();
            let openssl = PKey::public_key_from_der(&spki)
                .map(|k| (k.id(), k.bits(), k.public_key_to_der().ok()))
                .ok();
            assert_eq!(ours, openssl, "{name}");
        }
        // The common keys re-encode to exactly their input.
        let p256 = ec_spki(
            SECP_256_R_1,
            &point(&key, PointConversionForm::UNCOMPRESSED),
        );
        let k = public_key_from_spki(&p256).expect("P-256");
        assert_eq!(k.id(), Id::EC);
        assert_eq!(k.public_key_to_der().expect("der"), p256);
        assert_eq!(
            public_key_from_spki(&rsa_spki)
                .and_then(|k| k.public_key_to_der())
                .expect("der"),
            rsa_spki
        );
    }
}
