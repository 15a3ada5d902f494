//! Key backends: where the CA's private key lives and how it signs.
//!
//! [`KeyBackend`] is the only way the rest of the signer touches a private
//! key. [`file::FileKey`] keeps it in a PEM file through openssl; a PKCS#11
//! backend will sit beside it.

pub mod file;

use const_oid::ObjectIdentifier;
use const_oid::db::rfc5912::{
    ECDSA_WITH_SHA_256, ECDSA_WITH_SHA_384, ECDSA_WITH_SHA_512, SHA_256_WITH_RSA_ENCRYPTION,
    SHA_384_WITH_RSA_ENCRYPTION, SHA_512_WITH_RSA_ENCRYPTION,
};
use const_oid::db::rfc8410::ID_ED_25519;
use der::asn1::Null;
use spki::AlgorithmIdentifierOwned;

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
        }
    }

    /// The AlgorithmIdentifier written into certificates: parameters NULL for
    /// RSA (RFC 4055), absent for ECDSA (RFC 5758) and Ed25519 (RFC 8410).
    pub fn algorithm_identifier(self) -> AlgorithmIdentifierOwned {
        let parameters = match self {
            Self::RsaSha256 | Self::RsaSha384 | Self::RsaSha512 => Some(Null.into()),
            _ => None,
        };
        AlgorithmIdentifierOwned {
            oid: self.oid(),
            parameters,
        }
    }
}
