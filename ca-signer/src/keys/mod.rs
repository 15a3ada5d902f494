//! Key backends: where the CA's private key lives and how it signs.
//!
//! [`KeyBackend`] is the only way the rest of the signer touches a private
//! key. [`file::FileKey`] keeps it in a PEM file through openssl;
//! [`pkcs11::Pkcs11Key`] keeps it inside a PKCS#11 token.

pub mod file;
pub mod pkcs11;
pub mod verify;

pub use verify::CaPublicKey;

use const_oid::ObjectIdentifier;
use const_oid::db::rfc5912::{
    ECDSA_WITH_SHA_256, ECDSA_WITH_SHA_384, ECDSA_WITH_SHA_512, SHA_256_WITH_RSA_ENCRYPTION,
    SHA_384_WITH_RSA_ENCRYPTION, SHA_512_WITH_RSA_ENCRYPTION,
};
use const_oid::db::rfc5912::{ID_MGF_1, ID_RSASSA_PSS, ID_SHA_256, ID_SHA_384, ID_SHA_512};
use const_oid::db::rfc8410::{ID_ED_448, ID_ED_25519};
use der::Any;
use der::asn1::Null;
use spki::AlgorithmIdentifierOwned;

use crate::config::HashAlg;
use crate::error::Error;

/// A CA private key that can sign.
pub trait KeyBackend: Send + Sync {
    /// The key's SubjectPublicKeyInfo, DER.
    fn public_key_der(&self) -> &[u8];

    /// The signature algorithm this key signs with.
    fn signature_algorithm(&self) -> SignatureAlgorithm;

    /// Signs `message` (a DER TBS) and returns the bytes that go into the
    /// signature BIT STRING: a DER `ECDSA-Sig-Value` for ECDSA, the PKCS#1 v1.5
    /// block for RSA, the 64-byte signature for Ed25519.
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, Error>;
}

/// The signature algorithms a CA key may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignatureAlgorithm {
    /// ecdsa-with-SHA256.
    EcdsaSha256,
    /// ecdsa-with-SHA384.
    EcdsaSha384,
    /// ecdsa-with-SHA512.
    EcdsaSha512,
    /// sha256WithRSAEncryption.
    RsaSha256,
    /// sha384WithRSAEncryption.
    RsaSha384,
    /// sha512WithRSAEncryption.
    RsaSha512,
    /// Ed25519 (RFC 8410).
    Ed25519,
    /// RSASSA-PSS with SHA-256, MGF1-SHA-256, 32-byte salt (RFC 4055).
    RsaPssSha256,
    /// RSASSA-PSS with SHA-384, MGF1-SHA-384, 48-byte salt.
    RsaPssSha384,
    /// RSASSA-PSS with SHA-512, MGF1-SHA-512, 64-byte salt.
    RsaPssSha512,
    /// Ed448 (RFC 8410).
    Ed448,
    /// ML-DSA-44 (FIPS 204, RFC 9881), pure, empty context.
    MlDsa44,
    /// ML-DSA-65 (FIPS 204, RFC 9881), pure, empty context.
    MlDsa65,
    /// ML-DSA-87 (FIPS 204, RFC 9881), pure, empty context.
    MlDsa87,
}

/// id-ml-dsa-44 (RFC 9881 §2, NIST CSOR).
pub const ID_ML_DSA_44: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.3.17");
/// id-ml-dsa-65.
pub const ID_ML_DSA_65: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.3.18");
/// id-ml-dsa-87.
pub const ID_ML_DSA_87: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.3.19");

/// RSASSA-PSS-params (RFC 4055 §3.1), trailerField left at its default.
#[derive(der::Sequence)]
struct PssParams {
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT")]
    hash: AlgorithmIdentifierOwned,
    #[asn1(context_specific = "1", tag_mode = "EXPLICIT")]
    mask_gen: AlgorithmIdentifierOwned,
    #[asn1(context_specific = "2", tag_mode = "EXPLICIT")]
    salt_length: u8,
}

impl SignatureAlgorithm {
    /// The algorithm's OID.
    pub fn oid(self) -> ObjectIdentifier {
        match self {
            Self::EcdsaSha256 => ECDSA_WITH_SHA_256,
            Self::EcdsaSha384 => ECDSA_WITH_SHA_384,
            Self::EcdsaSha512 => ECDSA_WITH_SHA_512,
            Self::RsaSha256 => SHA_256_WITH_RSA_ENCRYPTION,
            Self::RsaSha384 => SHA_384_WITH_RSA_ENCRYPTION,
            Self::RsaSha512 => SHA_512_WITH_RSA_ENCRYPTION,
            Self::Ed25519 => ID_ED_25519,
            Self::Ed448 => ID_ED_448,
            Self::MlDsa44 => ID_ML_DSA_44,
            Self::MlDsa65 => ID_ML_DSA_65,
            Self::MlDsa87 => ID_ML_DSA_87,
            Self::RsaPssSha256 | Self::RsaPssSha384 | Self::RsaPssSha512 => ID_RSASSA_PSS,
        }
    }

    /// The digest the algorithm uses (EdDSA and ML-DSA sign the message
    /// itself; SHA-512 is reported for them and not used).
    pub fn hash(self) -> HashAlg {
        match self {
            Self::EcdsaSha256 | Self::RsaSha256 | Self::RsaPssSha256 => HashAlg::Sha256,
            Self::EcdsaSha384 | Self::RsaSha384 | Self::RsaPssSha384 => HashAlg::Sha384,
            Self::EcdsaSha512
            | Self::RsaSha512
            | Self::RsaPssSha512
            | Self::Ed25519
            | Self::Ed448
            | Self::MlDsa44
            | Self::MlDsa65
            | Self::MlDsa87 => HashAlg::Sha512,
        }
    }

    /// Whether the algorithm signs the message itself, without a separate
    /// digest (EdDSA, ML-DSA).
    pub fn signs_message(self) -> bool {
        matches!(
            self,
            Self::Ed25519 | Self::Ed448 | Self::MlDsa44 | Self::MlDsa65 | Self::MlDsa87
        )
    }

    /// The algorithm of an ML-DSA parameter set.
    pub fn ml_dsa(set: akamu_jose::MlDsa) -> Self {
        match set {
            akamu_jose::MlDsa::P44 => Self::MlDsa44,
            akamu_jose::MlDsa::P65 => Self::MlDsa65,
            akamu_jose::MlDsa::P87 => Self::MlDsa87,
        }
    }

    /// The AlgorithmIdentifier written into certificates: parameters NULL for
    /// RSA (RFC 4055), absent for ECDSA (RFC 5758), EdDSA (RFC 8410) and
    /// ML-DSA (RFC 9881).
    pub fn algorithm_identifier(self) -> AlgorithmIdentifierOwned {
        let parameters = match self {
            Self::RsaSha256 | Self::RsaSha384 | Self::RsaSha512 => Some(Null.into()),
            Self::RsaPssSha256 | Self::RsaPssSha384 | Self::RsaPssSha512 => {
                let (oid, salt_length) = match self.hash() {
                    HashAlg::Sha256 => (ID_SHA_256, 32),
                    HashAlg::Sha384 => (ID_SHA_384, 48),
                    HashAlg::Sha512 => (ID_SHA_512, 64),
                };
                let hash = AlgorithmIdentifierOwned {
                    oid,
                    parameters: Some(Null.into()),
                };
                let params = PssParams {
                    hash: hash.clone(),
                    mask_gen: AlgorithmIdentifierOwned {
                        oid: ID_MGF_1,
                        parameters: Any::encode_from(&hash).ok(),
                    },
                    salt_length,
                };
                // Encoding fixed, small structures cannot fail.
                Any::encode_from(&params).ok()
            }
            _ => None,
        };
        AlgorithmIdentifierOwned {
            oid: self.oid(),
            parameters,
        }
    }
}
