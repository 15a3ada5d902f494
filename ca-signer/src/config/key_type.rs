//! The CA key type and signature digest, as configured.

use serde::Deserialize;

/// The one key-type vocabulary of the workspace (`ec:P-256`, `rsa:3072`,
/// `ed25519`, …), shared with akamu-jose, akamu-client, akamu-cli and
/// acme-bench.
pub use akamu_jose::KeyType;

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
