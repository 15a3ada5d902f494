//! JSON Web Keys (RFC 7517/7518/8037, RFC 9964 `AKP` for ML-DSA) and
//! thumbprints (RFC 7638).

use openssl::bn::{BigNum, BigNumContext};
use openssl::ec::{EcGroup, EcKey};
use openssl::nid::Nid;
use openssl::pkey::{HasPublic, Id, PKey, PKeyRef, Public};
use openssl::rsa::Rsa;
use openssl::sha::sha256;
use serde::{Deserialize, Serialize};

use crate::{Alg, JoseError, MlDsa, b64, b64_decode};

/// Smallest RSA modulus accepted for account keys.
const MIN_RSA_BITS: u32 = 2048;
/// Largest RSA modulus accepted (bounds verification cost).
const MAX_RSA_BITS: u32 = 8192;

/// A public JWK. Members other than the key material (`use`, `kid`, …) are
/// ignored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kty")]
pub enum Jwk {
    /// An elliptic-curve key (`P-256`, `P-384`, `P-521`).
    #[serde(rename = "EC")]
    Ec {
        /// Curve name.
        crv: String,
        /// X coordinate, base64url.
        x: String,
        /// Y coordinate, base64url.
        y: String,
    },
    /// An RSA key.
    #[serde(rename = "RSA")]
    Rsa {
        /// Modulus, base64url.
        n: String,
        /// Public exponent, base64url.
        e: String,
    },
    /// An octet key pair (`Ed25519`, `Ed448`).
    #[serde(rename = "OKP")]
    Okp {
        /// Curve name.
        crv: String,
        /// Public key, base64url.
        x: String,
    },
    /// An algorithm key pair (RFC 9964): an ML-DSA public key, which names
    /// its algorithm.
    #[serde(rename = "AKP")]
    Akp {
        /// The algorithm (`ML-DSA-44`, `ML-DSA-65`, `ML-DSA-87`).
        alg: String,
        /// The encoded public key (FIPS 204 `pkEncode`), base64url.
        #[serde(rename = "pub")]
        public: String,
    },
}

impl Jwk {
    /// Parses a JWK from a JSON value.
    pub fn from_json(value: &serde_json::Value) -> Result<Self, JoseError> {
        serde_json::from_value(value.clone()).map_err(|e| JoseError::BadJwk(e.to_string()))
    }

    /// The JWK of a public (or private) openssl key.
    pub fn from_key<T: HasPublic>(key: &PKeyRef<T>) -> Result<Self, JoseError> {
        match key.id() {
            Id::EC => {
                let ec = key.ec_key()?;
                let group = ec.group();
                let crv = match group.curve_name() {
                    Some(Nid::X9_62_PRIME256V1) => "P-256",
                    Some(Nid::SECP384R1) => "P-384",
                    Some(Nid::SECP521R1) => "P-521",
                    _ => return Err(JoseError::BadJwk("unsupported EC curve".into())),
                };
                let width = (group.degree() as usize).div_ceil(8);
                let mut ctx = BigNumContext::new()?;
                let mut x = BigNum::new()?;
                let mut y = BigNum::new()?;
                ec.public_key()
                    .affine_coordinates(group, &mut x, &mut y, &mut ctx)?;
                Ok(Self::Ec {
                    crv: crv.into(),
                    x: b64(&x.to_vec_padded(width as i32)?),
                    y: b64(&y.to_vec_padded(width as i32)?),
                })
            }
            Id::RSA => {
                let rsa = key.rsa()?;
                Ok(Self::Rsa {
                    n: b64(&rsa.n().to_vec()),
                    e: b64(&rsa.e().to_vec()),
                })
            }
            Id::ED25519 | Id::ED448 => Ok(Self::Okp {
                crv: if key.id() == Id::ED25519 {
                    "Ed25519"
                } else {
                    "Ed448"
                }
                .into(),
                x: b64(&key.raw_public_key()?),
            }),
            _ => match MlDsa::of_key(key) {
                Some(set) => Ok(Self::Akp {
                    alg: set.alg().as_str().into(),
                    public: b64(&key.raw_public_key()?),
                }),
                None => Err(JoseError::BadJwk("unsupported key type".into())),
            },
        }
    }

    /// The ML-DSA parameter set named by an `AKP` key's `alg`.
    fn akp_set(alg: &str) -> Result<MlDsa, JoseError> {
        Alg::parse(alg)
            .and_then(Alg::ml_dsa)
            .ok_or_else(|| JoseError::BadJwk(format!("unsupported AKP algorithm {alg:?}")))
    }

    /// The openssl public key, with curve-point and size checks.
    pub fn to_public_key(&self) -> Result<PKey<Public>, JoseError> {
        match self {
            Self::Ec { crv, x, y } => {
                let (nid, width) = match crv.as_str() {
                    "P-256" => (Nid::X9_62_PRIME256V1, 32),
                    "P-384" => (Nid::SECP384R1, 48),
                    "P-521" => (Nid::SECP521R1, 66),
                    other => return Err(JoseError::BadJwk(format!("unsupported curve {other:?}"))),
                };
                let x = b64_decode(x)?;
                let y = b64_decode(y)?;
                if x.len() != width || y.len() != width {
                    return Err(JoseError::BadJwk(
                        "EC coordinate has the wrong length".into(),
                    ));
                }
                let group = EcGroup::from_curve_name(nid)?;
                let bx = BigNum::from_slice(&x)?;
                let by = BigNum::from_slice(&y)?;
                let ec = EcKey::from_public_key_affine_coordinates(&group, &bx, &by)
                    .map_err(|_| JoseError::BadJwk("EC point is not on the curve".into()))?;
                // EC_KEY_set_public_key_affine_coordinates already ran
                // EC_KEY_check_key: the point is on the curve.
                Ok(PKey::from_ec_key(ec)?)
            }
            Self::Rsa { n, e } => {
                let n = BigNum::from_slice(&b64_decode(n)?)?;
                let e = BigNum::from_slice(&b64_decode(e)?)?;
                let bits = n.num_bits() as u32;
                if bits < MIN_RSA_BITS {
                    return Err(JoseError::WeakKey(format!("RSA modulus of {bits} bits")));
                }
                if bits > MAX_RSA_BITS {
                    return Err(JoseError::BadJwk(format!(
                        "RSA modulus of {bits} bits is too large"
                    )));
                }
                let rsa = Rsa::from_public_components(n, e)?;
                Ok(PKey::from_rsa(rsa)?)
            }
            Self::Okp { crv, x } => {
                let id = match crv.as_str() {
                    "Ed25519" => Id::ED25519,
                    "Ed448" => Id::ED448,
                    other => {
                        return Err(JoseError::BadJwk(format!(
                            "unsupported OKP curve {other:?}"
                        )));
                    }
                };
                PKey::public_key_from_raw_bytes(&b64_decode(x)?, id)
                    .map_err(|_| JoseError::BadJwk("invalid OKP public key".into()))
            }
            Self::Akp { alg, public } => {
                let set = Self::akp_set(alg)?;
                let raw = b64_decode(public)?;
                if raw.len() != set.public_key_len() {
                    return Err(JoseError::BadJwk(format!(
                        "{alg} public key of {} bytes (expected {})",
                        raw.len(),
                        set.public_key_len()
                    )));
                }
                PKey::public_key_from_raw_bytes_ex(None, set.openssl_type(), None, &raw)
                    .map_err(|_| JoseError::BadJwk("invalid ML-DSA public key".into()))
            }
        }
    }

    /// Checks that `alg` fits this key (RFC 7518 §3.4: ES256 needs P-256, …).
    pub fn check_alg(&self, alg: Alg) -> Result<(), JoseError> {
        let ok = match (self, alg) {
            (Self::Ec { crv, .. }, Alg::Es256) => crv == "P-256",
            (Self::Ec { crv, .. }, Alg::Es384) => crv == "P-384",
            (Self::Ec { crv, .. }, Alg::Es512) => crv == "P-521",
            (Self::Rsa { .. }, alg) if alg.is_rsa() => true,
            (Self::Okp { .. }, Alg::EdDsa) => true,
            // RFC 9964: the JWS `alg` must be the key's own `alg`.
            (Self::Akp { alg: key_alg, .. }, alg) if alg.ml_dsa().is_some() => {
                key_alg == alg.as_str()
            }
            _ => false,
        };
        if ok {
            Ok(())
        } else {
            Err(JoseError::AlgKeyMismatch {
                alg: alg.to_string(),
                key: self.describe(),
            })
        }
    }

    /// A short description such as `EC P-256` or `RSA`.
    pub fn describe(&self) -> String {
        match self {
            Self::Ec { crv, .. } => format!("EC {crv}"),
            Self::Rsa { .. } => "RSA".into(),
            Self::Okp { crv, .. } => format!("OKP {crv}"),
            Self::Akp { alg, .. } => format!("AKP {alg}"),
        }
    }

    /// The canonical JSON of the required members in lexicographic order
    /// (RFC 7638 §3.2), which is also what thumbprints hash.
    pub fn canonical_json(&self) -> String {
        // serde_json::to_string of a &str cannot fail; format! keeps the exact order.
        let q = |s: &str| serde_json::Value::String(s.to_owned()).to_string();
        match self {
            Self::Ec { crv, x, y } => {
                format!(
                    r#"{{"crv":{},"kty":"EC","x":{},"y":{}}}"#,
                    q(crv),
                    q(x),
                    q(y)
                )
            }
            Self::Rsa { n, e } => format!(r#"{{"e":{},"kty":"RSA","n":{}}}"#, q(e), q(n)),
            Self::Okp { crv, x } => format!(r#"{{"crv":{},"kty":"OKP","x":{}}}"#, q(crv), q(x)),
            // RFC 9964: the required members of an AKP key are alg, kty, pub.
            Self::Akp { alg, public } => {
                format!(r#"{{"alg":{},"kty":"AKP","pub":{}}}"#, q(alg), q(public))
            }
        }
    }

    /// The RFC 7638 SHA-256 thumbprint, base64url.
    pub fn thumbprint(&self) -> String {
        b64(&sha256(self.canonical_json().as_bytes()))
    }

    /// The JWK as a JSON value (for protected headers).
    pub fn to_json(&self) -> serde_json::Value {
        // Serialising a plain enum of strings cannot fail.
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7638 §3.1 example.
    #[test]
    fn rfc7638_thumbprint() {
        let jwk: Jwk = serde_json::from_str(
            r#"{"kty":"RSA","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw","e":"AQAB","alg":"RS256","kid":"2011-04-29"}"#,
        )
        .expect("jwk");
        assert_eq!(
            jwk.thumbprint(),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
        assert!(jwk.to_public_key().is_ok());
    }

    #[test]
    fn ec_round_trip_and_alg_check() {
        for (nid, alg) in [
            (Nid::X9_62_PRIME256V1, Alg::Es256),
            (Nid::SECP384R1, Alg::Es384),
            (Nid::SECP521R1, Alg::Es512),
        ] {
            let group = EcGroup::from_curve_name(nid).expect("group");
            let key = PKey::from_ec_key(EcKey::generate(&group).expect("gen")).expect("pkey");
            let jwk = Jwk::from_key(&key).expect("jwk");
            let back = jwk.to_public_key().expect("back");
            assert!(back.public_eq(&key));
            assert!(jwk.check_alg(alg).is_ok());
            assert!(jwk.check_alg(Alg::Rs256).is_err());
        }
    }

    #[test]
    fn rejects_weak_rsa_and_off_curve_points() {
        let rsa = PKey::from_rsa(Rsa::generate(1024).expect("rsa")).expect("pkey");
        let jwk = Jwk::from_key(&rsa).expect("jwk");
        assert!(matches!(jwk.to_public_key(), Err(JoseError::WeakKey(_))));
        let bad = Jwk::Ec {
            crv: "P-256".into(),
            x: b64(&[1u8; 32]),
            y: b64(&[2u8; 32]),
        };
        assert!(matches!(bad.to_public_key(), Err(JoseError::BadJwk(_))));
        let unknown: Result<Jwk, _> = serde_json::from_str(r#"{"kty":"oct","k":"AAAA"}"#);
        assert!(unknown.is_err());
    }

    /// RFC 9964: an AKP key round-trips, names its algorithm, fits only
    /// that algorithm, and its thumbprint hashes `alg`, `kty`, `pub` in
    /// that order.
    #[test]
    fn akp_round_trip_alg_check_and_thumbprint() {
        for set in MlDsa::ALL {
            let key = set.generate().expect("generate");
            let jwk = Jwk::from_key(&key).expect("jwk");
            let Jwk::Akp { alg, public } = &jwk else {
                panic!("not AKP: {jwk:?}")
            };
            assert_eq!(alg, set.alg().as_str());
            assert_eq!(b64_decode(public).expect("b64").len(), set.public_key_len());
            let json = jwk.to_json();
            assert_eq!(json["kty"], "AKP");
            assert_eq!(json["pub"], public.as_str());
            assert_eq!(Jwk::from_json(&json).expect("parse"), jwk);
            assert!(jwk.to_public_key().expect("pk").public_eq(&key));
            assert!(jwk.check_alg(set.alg()).is_ok());
            for other in MlDsa::ALL.into_iter().filter(|o| *o != set) {
                assert!(matches!(
                    jwk.check_alg(other.alg()),
                    Err(JoseError::AlgKeyMismatch { .. })
                ));
            }
            assert!(jwk.check_alg(Alg::EdDsa).is_err());
            assert_eq!(
                jwk.canonical_json(),
                format!(r#"{{"alg":"{alg}","kty":"AKP","pub":"{public}"}}"#)
            );
            assert_eq!(
                jwk.thumbprint(),
                b64(&sha256(jwk.canonical_json().as_bytes()))
            );
        }
    }

    #[test]
    fn akp_refuses_wrong_lengths_and_unknown_algorithms() {
        let key = MlDsa::P65.generate().expect("generate");
        let raw = key.raw_public_key().expect("raw");
        let akp = |alg: &str, bytes: &[u8]| Jwk::Akp {
            alg: alg.into(),
            public: b64(bytes),
        };
        // An ML-DSA-65 key labelled ML-DSA-44 or -87: wrong length.
        for alg in ["ML-DSA-44", "ML-DSA-87"] {
            assert!(matches!(
                akp(alg, &raw).to_public_key(),
                Err(JoseError::BadJwk(_))
            ));
        }
        assert!(matches!(
            akp("ML-DSA-65", &raw[1..]).to_public_key(),
            Err(JoseError::BadJwk(_))
        ));
        assert!(matches!(
            akp("ML-DSA-65", &[raw.as_slice(), &[0]].concat()).to_public_key(),
            Err(JoseError::BadJwk(_))
        ));
        for alg in ["ES256", "ML-DSA-66", "SLH-DSA-SHA2-128s", ""] {
            assert!(matches!(
                akp(alg, &raw).to_public_key(),
                Err(JoseError::BadJwk(_))
            ));
        }
        // A missing `alg` or `pub` does not parse.
        for bad in [
            serde_json::json!({"kty": "AKP", "pub": b64(&raw)}),
            serde_json::json!({"kty": "AKP", "alg": "ML-DSA-65"}),
        ] {
            assert!(matches!(Jwk::from_json(&bad), Err(JoseError::BadJwk(_))));
        }
        assert!(akp("ML-DSA-65", &raw).to_public_key().is_ok());
    }
}
