//! JWS algorithms accepted for ACME account keys (RFC 7518 §3, RFC 8037,
//! RFC 9964 for ML-DSA).

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
    /// RSASSA-PKCS1-v1_5 SHA-384.
    Rs384,
    /// RSASSA-PKCS1-v1_5 SHA-512.
    Rs512,
    /// RSASSA-PSS SHA-384, MGF1 SHA-384, 48-byte salt.
    Ps384,
    /// RSASSA-PSS SHA-512, MGF1 SHA-512, 64-byte salt.
    Ps512,
    /// ML-DSA-44 (FIPS 204, RFC 9964), pure mode, empty context.
    MlDsa44,
    /// ML-DSA-65 (FIPS 204, RFC 9964), pure mode, empty context.
    MlDsa65,
    /// ML-DSA-87 (FIPS 204, RFC 9964), pure mode, empty context.
    MlDsa87,
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
            Self::Rs384 => "RS384",
            Self::Rs512 => "RS512",
            Self::Ps384 => "PS384",
            Self::Ps512 => "PS512",
            Self::MlDsa44 => "ML-DSA-44",
            Self::MlDsa65 => "ML-DSA-65",
            Self::MlDsa87 => "ML-DSA-87",
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
            "RS384" => Self::Rs384,
            "RS512" => Self::Rs512,
            "PS384" => Self::Ps384,
            "PS512" => Self::Ps512,
            "ML-DSA-44" => Self::MlDsa44,
            "ML-DSA-65" => Self::MlDsa65,
            "ML-DSA-87" => Self::MlDsa87,
            _ => return None,
        })
    }

    /// The names of all accepted algorithms, for `badSignatureAlgorithm`
    /// problem documents (RFC 8555 §6.2) and the directory's `meta`.
    pub const ALL: [&'static str; 13] = [
        "ES256",
        "ES384",
        "ES512",
        "RS256",
        "RS384",
        "RS512",
        "PS256",
        "PS384",
        "PS512",
        "EdDSA",
        "ML-DSA-44",
        "ML-DSA-65",
        "ML-DSA-87",
    ];

    /// The ML-DSA parameter set of an ML-DSA algorithm.
    pub fn ml_dsa(self) -> Option<MlDsa> {
        match self {
            Self::MlDsa44 => Some(MlDsa::P44),
            Self::MlDsa65 => Some(MlDsa::P65),
            Self::MlDsa87 => Some(MlDsa::P87),
            _ => None,
        }
    }

    /// Whether this is an RSA algorithm (PKCS#1 v1.5 or PSS).
    pub fn is_rsa(self) -> bool {
        matches!(
            self,
            Self::Rs256 | Self::Rs384 | Self::Rs512 | Self::Ps256 | Self::Ps384 | Self::Ps512
        )
    }
}

impl fmt::Display for Alg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An ML-DSA parameter set (FIPS 204 Table 1 and 2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MlDsa {
    /// ML-DSA-44 (security category 2).
    P44,
    /// ML-DSA-65 (security category 3).
    P65,
    /// ML-DSA-87 (security category 5).
    P87,
}

impl MlDsa {
    /// All three parameter sets.
    pub const ALL: [MlDsa; 3] = [Self::P44, Self::P65, Self::P87];

    /// The JWS algorithm of this parameter set.
    pub fn alg(self) -> Alg {
        match self {
            Self::P44 => Alg::MlDsa44,
            Self::P65 => Alg::MlDsa65,
            Self::P87 => Alg::MlDsa87,
        }
    }

    /// The length of an encoded public key in bytes (FIPS 204 Table 2).
    pub fn public_key_len(self) -> usize {
        match self {
            Self::P44 => 1312,
            Self::P65 => 1952,
            Self::P87 => 2592,
        }
    }

    /// The length of a signature in bytes (FIPS 204 Table 2).
    pub fn signature_len(self) -> usize {
        match self {
            Self::P44 => 2420,
            Self::P65 => 3309,
            Self::P87 => 4627,
        }
    }

    /// The openssl key type.
    pub fn openssl_type(self) -> openssl::pkey::KeyType {
        match self {
            Self::P44 => openssl::pkey::KeyType::ML_DSA_44,
            Self::P65 => openssl::pkey::KeyType::ML_DSA_65,
            Self::P87 => openssl::pkey::KeyType::ML_DSA_87,
        }
    }

    /// The parameter set of an openssl key, if it is an ML-DSA key.
    pub fn of_key<T>(key: &openssl::pkey::PKeyRef<T>) -> Option<Self> {
        Self::ALL.into_iter().find(|p| key.is_a(p.openssl_type()))
    }

    /// Generates a private key from a fresh random 32-byte seed (FIPS 204
    /// Algorithm 1, ML-DSA.KeyGen).
    pub fn generate(self) -> Result<openssl::pkey::PKey<openssl::pkey::Private>, crate::JoseError> {
        let mut seed = [0u8; 32];
        openssl::rand::rand_bytes(&mut seed)?;
        let key =
            openssl::pkey::PKey::private_key_from_seed(None, self.openssl_type(), None, &seed);
        seed.fill(0);
        Ok(key?)
    }
}
