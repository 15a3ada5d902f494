//! Public keys prepared once for verifying many JWS signatures.
//!
//! Two algorithms go through ring, which measured faster than openssl's
//! `EVP_DigestVerify*` on our 2-core x86-64 machines (release build, 600-byte
//! input, medians): ES256 54 µs against 65 µs, and Ed25519 46 µs against
//! 104 µs. Everything else stays on openssl. ring was not faster for ES384
//! (760 µs against 670 µs) or RS256/PS256: they are within ±3 % at 2048 bits,
//! and ring is 15–20 % slower at 3072 and 4096 bits because it re-parses the
//! modulus for every signature. ring does not do ES512 or Ed448 at all.
//! Keeping RSA on openssl also keeps one openssl behaviour: it accepts a PS256
//! signature shorter than the modulus (leading zero bytes left out), and ring
//! refuses it.
//!
//! The tests compare the ring path with the openssl path on random and mutated
//! signatures, out-of-range ECDSA scalars, non-canonical Ed25519 `S` values,
//! and small-order or non-canonically encoded Ed25519 keys. They found no
//! difference.

use std::fmt;

use openssl::bn::BigNumContext;
use openssl::ec::PointConversionForm;
use openssl::nid::Nid;
use openssl::pkey::{Id, PKey, PKeyRef, Public};
use ring::signature::{ECDSA_P256_SHA256_FIXED, ED25519, UnparsedPublicKey, VerificationAlgorithm};

use crate::jws::{ec_params, verify_signature};
use crate::{Alg, FlattenedJws, JoseError, Jwk, b64_decode};

/// An account key that is parsed and checked once, then used to verify many
/// JWS signatures. Cheap to clone: the openssl key is reference-counted.
///
/// [`VerifyingKey::verify`] accepts exactly the signatures accepted by
/// [`Jwk::check_alg`] followed by [`verify_signature`], and refuses the rest
/// with the same error. ES256 (P-256) and EdDSA with Ed25519 keys go through
/// ring. The other algorithms go through openssl.
#[derive(Clone)]
pub struct VerifyingKey {
    jwk: Jwk,
    pkey: PKey<Public>,
    ring: Option<RingKey>,
}

/// The key as ring takes it, for the algorithms routed to ring.
#[derive(Clone)]
enum RingKey {
    /// A P-256 point, uncompressed (`04 ‖ x ‖ y`).
    P256([u8; 65]),
    /// An Ed25519 public key.
    Ed25519([u8; 32]),
}

impl VerifyingKey {
    /// Prepares `jwk` for verification. The checks and errors are those of
    /// [`Jwk::to_public_key`]: the EC point must be on its curve, and the RSA
    /// modulus must have 2048 to 8192 bits.
    pub fn from_jwk(jwk: Jwk) -> Result<Self, JoseError> {
        let pkey = jwk.to_public_key()?;
        let ring = ring_key(&pkey);
        Ok(Self { jwk, pkey, ring })
    }

    /// The JWK this key came from.
    pub fn jwk(&self) -> &Jwk {
        &self.jwk
    }

    /// The openssl public key, for example to compare it with a certificate's
    /// key.
    pub fn public_key(&self) -> &PKeyRef<Public> {
        &self.pkey
    }

    /// Verifies `sig` over `input`. The signature is in its JOSE encoding:
    /// raw `r ‖ s` for ECDSA. The key must fit `alg` (see [`Jwk::check_alg`]);
    /// if it does not, the error is [`JoseError::AlgKeyMismatch`].
    pub fn verify(&self, alg: Alg, input: &[u8], sig: &[u8]) -> Result<(), JoseError> {
        self.jwk.check_alg(alg)?;
        self.verify_checked(alg, input, sig)
    }

    /// [`VerifyingKey::verify`] once `alg` has been checked against the key.
    fn verify_checked(&self, alg: Alg, input: &[u8], sig: &[u8]) -> Result<(), JoseError> {
        match (&self.ring, alg) {
            (Some(RingKey::P256(point)), Alg::Es256) => {
                // Same length rule as `verify_signature`. ring's fixed-width
                // verifier also refuses any other length.
                if sig.len() != 2 * ec_params(Alg::Es256).1 {
                    return Err(JoseError::BadSignature);
                }
                ring_verify(&ECDSA_P256_SHA256_FIXED, point, input, sig)
            }
            (Some(RingKey::Ed25519(key)), Alg::EdDsa) => ring_verify(&ED25519, key, input, sig),
            _ => verify_signature(alg, &self.pkey, input, sig),
        }
    }

    /// Whether ring verifies `alg` for this key (otherwise openssl does).
    #[cfg(test)]
    fn uses_ring(&self, alg: Alg) -> bool {
        matches!(
            (&self.ring, alg),
            (Some(RingKey::P256(_)), Alg::Es256) | (Some(RingKey::Ed25519(_)), Alg::EdDsa)
        )
    }
}

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyingKey")
            .field("jwk", &self.jwk)
            .field("ring", &self.ring.is_some())
            .finish_non_exhaustive()
    }
}

impl FlattenedJws {
    /// Verifies the signature with a prepared key. This is
    /// [`FlattenedJws::verify`] with the alg check of [`Jwk::check_alg`] first.
    pub fn verify_with(&self, alg: Alg, key: &VerifyingKey) -> Result<(), JoseError> {
        key.jwk.check_alg(alg)?;
        let sig = b64_decode(&self.signature)?;
        key.verify_checked(alg, &self.signing_input(), &sig)
    }
}

/// Takes the key material for ring from the openssl key (the values openssl
/// verifies with), for P-256 and Ed25519. Returns `None`, so that openssl is
/// used, for any other key or if openssl cannot export the key.
fn ring_key(pkey: &PKeyRef<Public>) -> Option<RingKey> {
    match pkey.id() {
        Id::EC => {
            let ec = pkey.ec_key().ok()?;
            let group = ec.group();
            if group.curve_name() != Some(Nid::X9_62_PRIME256V1) {
                return None;
            }
            let mut ctx = BigNumContext::new().ok()?;
            let point = ec
                .public_key()
                .to_bytes(group, PointConversionForm::UNCOMPRESSED, &mut ctx)
                .ok()?;
            point.try_into().ok().map(RingKey::P256)
        }
        Id::ED25519 => {
            let raw = pkey.raw_public_key().ok()?;
            raw.try_into().ok().map(RingKey::Ed25519)
        }
        _ => None,
    }
}

fn ring_verify(
    alg: &'static dyn VerificationAlgorithm,
    key: &[u8],
    input: &[u8],
    sig: &[u8],
) -> Result<(), JoseError> {
    UnparsedPublicKey::new(alg, key)
        .verify(input, sig)
        .map_err(|_| JoseError::BadSignature)
}

#[cfg(test)]
mod tests {
    use openssl::bn::BigNum;
    use openssl::ec::{EcGroup, EcKey};
    use openssl::hash::MessageDigest;
    use openssl::rsa::{Padding, Rsa};
    use openssl::sign::{RsaPssSaltlen, Signer};

    use super::*;
    use crate::{KeyType, SigningKey, b64};

    /// Every algorithm we accept, from the one list of their names.
    fn all_algs() -> Vec<Alg> {
        Alg::ALL.iter().filter_map(|n| Alg::parse(n)).collect()
    }

    /// The path the frontend takes today: alg check, then openssl.
    fn old_path(jwk: &Jwk, alg: Alg, input: &[u8], sig: &[u8]) -> Result<(), JoseError> {
        jwk.check_alg(alg)?;
        let pkey = jwk.to_public_key()?;
        verify_signature(alg, &pkey, input, sig)
    }

    /// A signer for each algorithm, plus the extra key types (Ed448, larger
    /// RSA) that go through openssl.
    fn signers() -> Vec<SigningKey> {
        let mut keys: Vec<SigningKey> = all_algs()
            .into_iter()
            .map(|alg| SigningKey::generate(alg).expect("generate"))
            .collect();
        for kt in [KeyType::Ed448, KeyType::Rsa(3072)] {
            keys.push(SigningKey::generate_key_type(kt).expect("generate"));
        }
        keys
    }

    fn random_bytes(len: usize) -> Vec<u8> {
        let mut buf = vec![0u8; len];
        openssl::rand::rand_bytes(&mut buf).expect("rand");
        buf
    }

    fn random_below(n: usize) -> usize {
        let b = random_bytes(4);
        u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize % n
    }

    /// Asserts that both paths give the same result, and returns it.
    fn same(
        key: &VerifyingKey,
        alg: Alg,
        input: &[u8],
        sig: &[u8],
        what: &str,
    ) -> Result<(), JoseError> {
        let new = key.verify(alg, input, sig);
        let old = old_path(key.jwk(), alg, input, sig);
        assert_eq!(new, old, "{alg} {}: {what}", key.jwk().describe());
        new
    }

    #[test]
    fn routes_only_es256_and_ed25519_to_ring() {
        for key in signers() {
            let vk = VerifyingKey::from_jwk(key.public_jwk().expect("jwk")).expect("vk");
            let expect_ring = match vk.jwk() {
                Jwk::Ec { crv, .. } => crv == "P-256",
                Jwk::Okp { crv, .. } => crv == "Ed25519",
                Jwk::Rsa { .. } | Jwk::Akp { .. } => false,
            };
            assert_eq!(
                vk.uses_ring(key.alg()),
                expect_ring,
                "{}",
                vk.jwk().describe()
            );
            assert!(vk.public_key().public_eq(key.pkey()));
        }
    }

    #[test]
    fn valid_signatures_verify_and_bad_ones_fail_like_openssl() {
        for key in signers() {
            let alg = key.alg();
            let vk = VerifyingKey::from_jwk(key.public_jwk().expect("jwk")).expect("vk");
            let input = b"eyJhbGciOiJFUzI1NiJ9.e30";
            let sig = key.sign(input).expect("sign");
            assert_eq!(same(&vk, alg, input, &sig, "valid"), Ok(()));

            let mut flipped = sig.clone();
            flipped[sig.len() / 2] ^= 0x01;
            assert_eq!(
                same(&vk, alg, input, &flipped, "flipped"),
                Err(JoseError::BadSignature)
            );
            let mut last = sig.clone();
            *last.last_mut().expect("non-empty") ^= 0x80;
            assert_eq!(
                same(&vk, alg, input, &last, "last byte"),
                Err(JoseError::BadSignature)
            );
            assert_eq!(
                same(&vk, alg, b"eyJhbGciOiJFUzI1NiJ9.e31", &sig, "other input"),
                Err(JoseError::BadSignature)
            );
            for bad_len in [
                sig[..sig.len() - 1].to_vec(),
                [sig.as_slice(), &[0]].concat(),
                [[0].as_slice(), &sig].concat(),
                Vec::new(),
            ] {
                assert_eq!(
                    same(&vk, alg, input, &bad_len, "wrong length"),
                    Err(JoseError::BadSignature)
                );
            }
            for other in all_algs()
                .into_iter()
                .filter(|&a| vk.jwk().check_alg(a).is_err())
            {
                let err = same(&vk, other, input, &sig, "wrong key type");
                assert!(
                    matches!(err, Err(JoseError::AlgKeyMismatch { .. })),
                    "{other} with {}: {err:?}",
                    vk.jwk().describe()
                );
            }
        }
    }

    #[test]
    fn differential_random_messages() {
        for key in signers() {
            let alg = key.alg();
            let vk = VerifyingKey::from_jwk(key.public_jwk().expect("jwk")).expect("vk");
            for i in 0..200 {
                let input = random_bytes(random_below(600));
                let sig = key.sign(&input).expect("sign");
                assert_eq!(same(&vk, alg, &input, &sig, "valid"), Ok(()), "#{i}");

                let mut bit = sig.clone();
                bit[random_below(sig.len())] ^= 1 << random_below(8);
                same(&vk, alg, &input, &bit, "bit flip").expect_err("bit flip");

                let mut byte = sig.clone();
                let at = random_below(sig.len());
                byte[at] = byte[at].wrapping_add(1 + random_below(255) as u8);
                same(&vk, alg, &input, &byte, "byte changed").expect_err("byte");

                let mut other = input.clone();
                if other.is_empty() {
                    other.push(0);
                } else {
                    let at = random_below(other.len());
                    other[at] ^= 1 << random_below(8);
                }
                same(&vk, alg, &other, &sig, "input changed").expect_err("input");

                let cut = random_below(sig.len());
                let _ = same(&vk, alg, &input, &sig[..cut], "truncated");
                let longer = [sig.as_slice(), &random_bytes(1 + random_below(8))].concat();
                let _ = same(&vk, alg, &input, &longer, "extended");
                let (a, b) = sig.split_at(sig.len() / 2);
                let _ = same(&vk, alg, &input, &[b, a].concat(), "halves swapped");
                let _ = same(&vk, alg, &input, &random_bytes(sig.len()), "random");
                let _ = same(&vk, alg, &input, &vec![0; sig.len()], "zero");
                let _ = same(&vk, alg, &input, &vec![0xff; sig.len()], "ones");
            }
        }
    }

    /// ECDSA `r` or `s` outside `[1, n-1]`, and the other valid signature
    /// `(r, n - s)`.
    #[test]
    fn es256_out_of_range_scalars() {
        let key = SigningKey::generate(Alg::Es256).expect("gen");
        let vk = VerifyingKey::from_jwk(key.public_jwk().expect("jwk")).expect("vk");
        let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).expect("group");
        let mut ctx = BigNumContext::new().expect("ctx");
        let mut order = BigNum::new().expect("bn");
        group.order(&mut order, &mut ctx).expect("order");
        let pad = |n: &BigNum| n.to_vec_padded(32).expect("pad");
        let one = BigNum::from_u32(1).expect("1");
        let mut n_minus_1 = BigNum::new().expect("bn");
        n_minus_1.checked_sub(&order, &one).expect("sub");
        let mut n_plus_1 = BigNum::new().expect("bn");
        n_plus_1.checked_add(&order, &one).expect("add");

        let input = b"input";
        let sig = key.sign(input).expect("sign");
        let (r, s) = sig.split_at(32);
        let mut cases: Vec<Vec<u8>> = vec![];
        for bad in [
            [0u8; 32].to_vec(),
            pad(&order),
            pad(&n_plus_1),
            pad(&n_minus_1),
            [0xffu8; 32].to_vec(),
        ] {
            cases.push([bad.as_slice(), s].concat());
            cases.push([r, bad.as_slice()].concat());
        }
        for case in cases {
            assert_eq!(
                same(&vk, Alg::Es256, input, &case, "scalar out of range"),
                Err(JoseError::BadSignature)
            );
        }
        let mut neg_s = BigNum::new().expect("bn");
        neg_s
            .checked_sub(&order, &BigNum::from_slice(s).expect("bn"))
            .expect("sub");
        let malleated = [r, &pad(&neg_s)].concat();
        assert_eq!(same(&vk, Alg::Es256, input, &malleated, "r, n-s"), Ok(()));
    }

    /// Small-order and non-canonically encoded Ed25519 keys, which openssl
    /// takes as JWKs, with signatures that use those points.
    #[test]
    fn ed25519_edge_keys_agree() {
        let mut identity = [0u8; 32];
        identity[0] = 1;
        let mut identity_neg = identity;
        identity_neg[31] = 0x80;
        let mut order2 = [0xffu8; 32];
        order2[0] = 0xec;
        order2[31] = 0x7f;
        let mut y_p_plus_1 = [0xffu8; 32];
        y_p_plus_1[0] = 0xee;
        y_p_plus_1[31] = 0x7f;
        let mut y_p = [0xffu8; 32];
        y_p[0] = 0xed;
        y_p[31] = 0x7f;
        let order4 = [0u8; 32];
        let mut order4_neg = [0u8; 32];
        order4_neg[31] = 0x80;
        let mut accepted = 0;
        for raw in [
            identity,
            identity_neg,
            order2,
            y_p_plus_1,
            y_p,
            order4,
            order4_neg,
        ] {
            let jwk = Jwk::Okp {
                crv: "Ed25519".into(),
                x: b64(&raw),
            };
            let vk = VerifyingKey::from_jwk(jwk).expect("openssl takes any 32 bytes");
            assert!(vk.uses_ring(Alg::EdDsa));
            let mut r_identity = [0u8; 64];
            r_identity[0] = 1;
            let mut r_key = [0u8; 64];
            r_key[..32].copy_from_slice(&raw);
            let mut r_neg = r_identity;
            r_neg[31] = 0x80;
            for m in 0u32..32 {
                for sig in [r_identity, r_key, r_neg, [0; 64]] {
                    if same(&vk, Alg::EdDsa, &m.to_be_bytes(), &sig, "edge key").is_ok() {
                        accepted += 1;
                    }
                }
            }
        }
        // Both accept some of these (neither refuses small-order keys), so the
        // comparison above covered acceptances as well as refusals.
        assert!(accepted > 0);
    }

    /// `S + L` instead of `S`: both paths refuse the non-canonical scalar.
    #[test]
    fn ed25519_non_canonical_s_refused() {
        const L: [u8; 32] = [
            0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9,
            0xde, 0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
        ];
        let key = SigningKey::generate(Alg::EdDsa).expect("gen");
        let vk = VerifyingKey::from_jwk(key.public_jwk().expect("jwk")).expect("vk");
        let mut tried = 0;
        for m in 0u32..100 {
            let input = m.to_be_bytes();
            let mut sig = key.sign(&input).expect("sign");
            let mut carry = 0u16;
            for (byte, l) in sig[32..].iter_mut().zip(L) {
                let v = u16::from(*byte) + u16::from(l) + carry;
                *byte = v as u8;
                carry = v >> 8;
            }
            if carry == 0 {
                tried += 1;
                assert_eq!(
                    same(&vk, Alg::EdDsa, &input, &sig, "S + L"),
                    Err(JoseError::BadSignature)
                );
            }
        }
        assert!(tried > 50);
    }

    /// openssl accepts a PS256 signature that lacks its leading zero byte.
    /// The new path must accept it too (ring alone would refuse it).
    #[test]
    fn ps256_short_signature_like_openssl() {
        let pkey = PKey::from_rsa(Rsa::generate(2048).expect("rsa")).expect("pkey");
        let vk = VerifyingKey::from_jwk(Jwk::from_key(&pkey).expect("jwk")).expect("vk");
        for m in 0u32..20_000 {
            let input = m.to_be_bytes();
            let mut s = Signer::new(MessageDigest::sha256(), &pkey).expect("signer");
            s.set_rsa_padding(Padding::PKCS1_PSS).expect("pss");
            s.set_rsa_pss_saltlen(RsaPssSaltlen::DIGEST_LENGTH)
                .expect("salt");
            s.set_rsa_mgf1_md(MessageDigest::sha256()).expect("mgf1");
            s.update(&input).expect("update");
            let sig = s.sign_to_vec().expect("sign");
            if sig[0] == 0 {
                assert_eq!(same(&vk, Alg::Ps256, &input, &sig, "full"), Ok(()));
                assert_eq!(same(&vk, Alg::Ps256, &input, &sig[1..], "short"), Ok(()));
                return;
            }
        }
        panic!("no PSS signature with a leading zero byte in 20000 tries");
    }

    #[test]
    fn construction_refuses_what_to_public_key_refuses() {
        let weak = PKey::from_rsa(Rsa::generate(1024).expect("rsa")).expect("pkey");
        let off_curve = Jwk::Ec {
            crv: "P-256".into(),
            x: b64(&[1u8; 32]),
            y: b64(&[2u8; 32]),
        };
        let p256 = PKey::from_ec_key(
            EcKey::generate(&EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).expect("g"))
                .expect("ec"),
        )
        .expect("pkey");
        let short_coordinate = match Jwk::from_key(&p256).expect("jwk") {
            Jwk::Ec { crv, x, y } => Jwk::Ec {
                crv,
                x: b64(&b64_decode(&x).expect("x")[1..]),
                y,
            },
            _ => unreachable!("an EC key"),
        };
        for jwk in [
            Jwk::from_key(&weak).expect("jwk"),
            off_curve,
            short_coordinate,
            Jwk::Ec {
                crv: "P-192".into(),
                x: b64(&[1u8; 24]),
                y: b64(&[2u8; 24]),
            },
            Jwk::Okp {
                crv: "Ed25519".into(),
                x: b64(&[1u8; 31]),
            },
            Jwk::Okp {
                crv: "X25519".into(),
                x: b64(&[1u8; 32]),
            },
            Jwk::Rsa {
                n: "not base64!".into(),
                e: "AQAB".into(),
            },
        ] {
            let expected = jwk.to_public_key().expect_err("refused");
            assert_eq!(
                VerifyingKey::from_jwk(jwk.clone()).expect_err("refused"),
                expected,
                "{jwk:?}"
            );
        }
        assert!(matches!(
            VerifyingKey::from_jwk(Jwk::from_key(&weak).expect("jwk")),
            Err(JoseError::WeakKey(_))
        ));
    }

    #[test]
    fn flattened_jws_verify_with() {
        for key in signers() {
            let alg = key.alg();
            let vk = VerifyingKey::from_jwk(key.public_jwk().expect("jwk")).expect("vk");
            let jws = key
                .sign_flattened(serde_json::json!({"nonce": "n", "url": "u"}), b"{}")
                .expect("sign");
            let jws: FlattenedJws = serde_json::from_value(jws).expect("parse");
            assert_eq!(jws.verify_with(alg, &vk), Ok(()));
            assert_eq!(jws.verify(alg, vk.public_key()), Ok(()));

            let mut tampered = jws.clone();
            tampered.payload = b64(b"{\"x\":1}");
            assert_eq!(tampered.verify_with(alg, &vk), Err(JoseError::BadSignature));
            let mut bad_b64 = jws.clone();
            bad_b64.signature.push('=');
            assert_eq!(bad_b64.verify_with(alg, &vk), Err(JoseError::Base64));
            let wrong = if alg == Alg::EdDsa {
                Alg::Es256
            } else {
                Alg::EdDsa
            };
            assert!(matches!(
                jws.verify_with(wrong, &vk),
                Err(JoseError::AlgKeyMismatch { .. })
            ));
        }
    }
}
