//! JWS algorithms accepted for ACME account keys (RFC 7518 §3, RFC 8037).

use std::fmt;

/// A JWS signature algorithm.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Alg {
    /// ECDSA P-256 SHA-256.
    Es256,
    /// ECDSA P-384 SHA-384.
    Es384,
    /// ECDSA P-521 SHA-512.
    Es512,
    /// RSASSA-PKCS1-v1_5 SHA-256.
    Rs256,
    /// RSASSA-PSS SHA-256, MGF1 SHA-256, 32-byte salt.
    Ps256,
    /// Ed25519 or Ed448 (RFC 8037).
    EdDsa,
}

impl Alg {
    /// The JOSE name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Es256 => "ES256",
            Self::Es384 => "ES384",
            Self::Es512 => "ES512",
            Self::Rs256 => "RS256",
            Self::Ps256 => "PS256",
            Self::EdDsa => "EdDSA",
        }
    }

    /// Parses a JOSE name; `None` for anything we do not accept (including
    /// `none` and the HMAC algorithms, which are only valid for EAB).
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "ES256" => Self::Es256,
            "ES384" => Self::Es384,
            "ES512" => Self::Es512,
            "RS256" => Self::Rs256,
            "PS256" => Self::Ps256,
            "EdDSA" => Self::EdDsa,
            _ => return None,
        })
    }

    /// The names of all accepted algorithms, for `badSignatureAlgorithm`
    /// problem documents (RFC 8555 §6.2).
    pub const ALL: [&'static str; 6] = ["ES256", "ES384", "ES512", "RS256", "PS256", "EdDSA"];
}

impl fmt::Display for Alg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
