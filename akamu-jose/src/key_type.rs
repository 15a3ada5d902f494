//! Key-type names as the Akāmu tools spell them (`ec:P-256`, `rsa:3072`,
//! `ed25519`, `ml-dsa-65`, …) and key generation from them: the one vocabulary for
//! account keys (`akamu-client`, `akamu-cli --key-type`), certificate keys
//! (`acme-bench --key-type`) and CA keys (`[ca] key_type`,
//! `acme-bench --ca-key-type`, `akamu-cli ceremony --key-type`).
//!
//! The canonical spellings are the reference's (`ec:P-256`, `ec:P-384`,
//! `ec:P-521`, `rsa:2048`, `rsa:3072`, `rsa:4096`, `ed25519`, `ml-dsa-44`,
//! `ml-dsa-65`, `ml-dsa-87`) plus `ed448`;
//! parsing ignores case and also takes the older spellings `P-256`,
//! `ec:p256`, `rsa2048` and so on. [`fmt::Display`] and serde write the
//! canonical spelling.

use std::fmt;
use std::str::FromStr;

use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;

use crate::{JoseError, MlDsa};

/// A key type that can be generated for JWS signing or for certificates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyType {
    /// ECDSA on P-256 (`ec:P-256`, signs ES256).
    EcP256,
    /// ECDSA on P-384 (`ec:P-384`, signs ES384).
    EcP384,
    /// ECDSA on P-521 (`ec:P-521`, signs ES512).
    EcP521,
    /// RSA with the given modulus size in bits (`rsa:2048`, `rsa:3072`,
    /// `rsa:4096`; signs RS256).
    Rsa(u32),
    /// Ed25519 (`ed25519`, signs EdDSA).
    Ed25519,
    /// Ed448 (`ed448`, signs EdDSA).
    Ed448,
    /// ML-DSA (`ml-dsa-44`, `ml-dsa-65`, `ml-dsa-87`; FIPS 204).
    MlDsa(MlDsa),
}

impl KeyType {
    /// Every key type `FromStr` accepts, in their canonical spelling.
    pub const NAMES: [&'static str; 11] = [
        "ec:P-256",
        "ec:P-384",
        "ec:P-521",
        "rsa:2048",
        "rsa:3072",
        "rsa:4096",
        "ed25519",
        "ed448",
        "ml-dsa-44",
        "ml-dsa-65",
        "ml-dsa-87",
    ];

    /// The key type of an openssl key, if it is one of ours (RSA of any
    /// size is `Rsa(bits)`).
    pub fn of_key<T: openssl::pkey::HasPublic>(key: &openssl::pkey::PKeyRef<T>) -> Option<Self> {
        use openssl::nid::Nid;
        use openssl::pkey::Id;
        match key.id() {
            Id::EC => match key.ec_key().ok()?.group().curve_name()? {
                Nid::X9_62_PRIME256V1 => Some(Self::EcP256),
                Nid::SECP384R1 => Some(Self::EcP384),
                Nid::SECP521R1 => Some(Self::EcP521),
                _ => None,
            },
            Id::RSA => Some(Self::Rsa(key.bits())),
            Id::ED25519 => Some(Self::Ed25519),
            Id::ED448 => Some(Self::Ed448),
            _ => MlDsa::of_key(key).map(Self::MlDsa),
        }
    }

    /// Generates a fresh private key of this type.
    pub fn generate(self) -> Result<PKey<Private>, JoseError> {
        use openssl::ec::{EcGroup, EcKey};
        use openssl::nid::Nid;
        let ec = |nid: Nid| -> Result<PKey<Private>, JoseError> {
            let group = EcGroup::from_curve_name(nid)?;
            Ok(PKey::from_ec_key(EcKey::generate(&group)?)?)
        };
        match self {
            Self::EcP256 => ec(Nid::X9_62_PRIME256V1),
            Self::EcP384 => ec(Nid::SECP384R1),
            Self::EcP521 => ec(Nid::SECP521R1),
            Self::Rsa(bits) => Ok(PKey::from_rsa(Rsa::generate(bits)?)?),
            Self::Ed25519 => Ok(PKey::generate_ed25519()?),
            Self::Ed448 => Ok(PKey::generate_ed448()?),
            Self::MlDsa(set) => set.generate(),
        }
    }
}

/// A key-type name that [`KeyType`] does not know.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "unsupported key type {0:?} (supported: ec:P-256, ec:P-384, ec:P-521, rsa:2048, rsa:3072, rsa:4096, ed25519, ed448, ml-dsa-44, ml-dsa-65, ml-dsa-87)"
)]
pub struct UnknownKeyType(pub String);

impl FromStr for KeyType {
    type Err = UnknownKeyType;

    /// Parses `ec:P-256`, `ec:P-384`, `ec:P-521`, `rsa:2048`, `rsa:3072`,
    /// `rsa:4096`, `ed25519`, `ed448`, `ml-dsa-44`, `ml-dsa-65` or
    /// `ml-dsa-87` (case-insensitive).
    /// Also takes `P-256`/`ec:p256`-style curve names and `rsa2048`-style
    /// RSA sizes, the spellings the signer's configuration accepted before.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "ec:p-256" | "ec:p256" | "p-256" => Self::EcP256,
            "ec:p-384" | "ec:p384" | "p-384" => Self::EcP384,
            "ec:p-521" | "ec:p521" | "p-521" => Self::EcP521,
            "rsa:2048" | "rsa2048" => Self::Rsa(2048),
            "rsa:3072" | "rsa3072" => Self::Rsa(3072),
            "rsa:4096" | "rsa4096" => Self::Rsa(4096),
            "ed25519" => Self::Ed25519,
            "ed448" => Self::Ed448,
            "ml-dsa-44" | "mldsa44" => Self::MlDsa(MlDsa::P44),
            "ml-dsa-65" | "mldsa65" => Self::MlDsa(MlDsa::P65),
            "ml-dsa-87" | "mldsa87" => Self::MlDsa(MlDsa::P87),
            _ => return Err(UnknownKeyType(s.to_owned())),
        })
    }
}

impl fmt::Display for KeyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::EcP256 => f.write_str("ec:P-256"),
            Self::EcP384 => f.write_str("ec:P-384"),
            Self::EcP521 => f.write_str("ec:P-521"),
            Self::Rsa(bits) => write!(f, "rsa:{bits}"),
            Self::Ed25519 => f.write_str("ed25519"),
            Self::Ed448 => f.write_str("ed448"),
            Self::MlDsa(MlDsa::P44) => f.write_str("ml-dsa-44"),
            Self::MlDsa(MlDsa::P65) => f.write_str("ml-dsa-65"),
            Self::MlDsa(MlDsa::P87) => f.write_str("ml-dsa-87"),
        }
    }
}

impl serde::Serialize for KeyType {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for KeyType {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use openssl::pkey::Id;

    use super::*;
    use crate::{Alg, FlattenedJws, SigningKey};

    #[test]
    fn names_round_trip() {
        for name in KeyType::NAMES {
            let kt: KeyType = name.parse().expect("parse");
            assert_eq!(kt.to_string(), name);
        }
        for (alias, canonical) in [
            ("P-256", "ec:P-256"),
            ("ec:p256", "ec:P-256"),
            ("EC:P-384", "ec:P-384"),
            ("P-521", "ec:P-521"),
            ("rsa2048", "rsa:2048"),
            ("rsa3072", "rsa:3072"),
            ("RSA:4096", "rsa:4096"),
            ("Ed25519", "ed25519"),
        ] {
            let kt: KeyType = alias.parse().expect(alias);
            assert_eq!(kt.to_string(), canonical);
        }
        assert!("rsa:1024".parse::<KeyType>().is_err());
        assert_eq!(
            "ML-DSA-65".parse::<KeyType>(),
            Ok(KeyType::MlDsa(MlDsa::P65))
        );
        assert!("ml-dsa-66".parse::<KeyType>().is_err());
        assert!("dsa".parse::<KeyType>().is_err());
    }

    #[test]
    fn serde_uses_the_canonical_spelling() {
        let kt: KeyType = serde_json::from_str("\"P-384\"").expect("alias");
        assert_eq!(kt, KeyType::EcP384);
        assert_eq!(serde_json::to_string(&kt).expect("json"), "\"ec:P-384\"");
        let err = serde_json::from_str::<KeyType>("\"dsa\"").expect_err("dsa");
        assert!(err.to_string().contains("unsupported key type"), "{err}");
    }

    #[test]
    fn every_type_generates_signs_and_round_trips_pem() {
        for name in KeyType::NAMES {
            let kt: KeyType = name.parse().expect("parse");
            let key = SigningKey::generate_key_type(kt).expect("generate");
            let expected_alg = match kt {
                KeyType::EcP256 => Alg::Es256,
                KeyType::EcP384 => Alg::Es384,
                KeyType::EcP521 => Alg::Es512,
                KeyType::Rsa(bits) => {
                    assert_eq!(key.pkey().bits(), bits);
                    Alg::Rs256
                }
                KeyType::Ed25519 => {
                    assert_eq!(key.pkey().id(), Id::ED25519);
                    Alg::EdDsa
                }
                KeyType::Ed448 => {
                    assert_eq!(key.pkey().id(), Id::ED448);
                    Alg::EdDsa
                }
                KeyType::MlDsa(set) => {
                    assert!(key.pkey().is_a(set.openssl_type()));
                    set.alg()
                }
            };
            assert_eq!(key.alg(), expected_alg, "{name}");
            assert_eq!(KeyType::of_key(key.pkey()), Some(kt), "{name}");
            let pem = key.to_pem().expect("pem");
            let back = SigningKey::from_pem(&pem).expect("load");
            assert_eq!(back.alg(), expected_alg);
            assert_eq!(back.thumbprint().expect("t"), key.thumbprint().expect("t"));
            assert!(back.pkey().public_eq(key.pkey()));

            let jws = back
                .sign_flattened(serde_json::json!({"nonce": "n", "url": "u"}), b"{}")
                .expect("sign");
            let jws: FlattenedJws = serde_json::from_value(jws).expect("parse");
            let public = key.public_jwk().expect("jwk").to_public_key().expect("pk");
            jws.verify(expected_alg, &public).expect("verifies");
        }
    }
}
