//! The CA key type and signature digest, as configured.

use std::fmt;
use std::str::FromStr;

use serde::Deserialize;

/// A key type for CA key generation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub enum KeyType {
    /// ECDSA on P-256.
    EcP256,
    /// ECDSA on P-384.
    EcP384,
    /// ECDSA on P-521.
    EcP521,
    /// RSA with this many bits (2048, 3072 or 4096), e = 65537.
    Rsa(u32),
    /// Ed25519.
    Ed25519,
}

/// Digest used with ECDSA and RSA CA keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HashAlg {
    /// SHA-256.
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
}

impl FromStr for KeyType {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "ec:P-256" | "P-256" => Self::EcP256,
            "ec:P-384" | "P-384" => Self::EcP384,
            "ec:P-521" | "P-521" => Self::EcP521,
            "rsa:2048" | "rsa2048" => Self::Rsa(2048),
            "rsa:3072" | "rsa3072" => Self::Rsa(3072),
            "rsa:4096" | "rsa4096" => Self::Rsa(4096),
            "ed25519" => Self::Ed25519,
            other => {
                return Err(format!(
                    "unknown key_type {other:?} (ec:P-256, ec:P-384, ec:P-521, \
                     rsa:2048, rsa:3072, rsa:4096, ed25519)"
                ));
            }
        })
    }
}

impl TryFrom<String> for KeyType {
    type Error = String;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
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
        }
    }
}
