//! `SignerRpc`: what `acme-frontend` may ask of `ca-signer`.
//!
//! The signer receives the subscriber's CSR and the identifiers the frontend
//! says were validated; it never receives a TBS certificate or bytes to sign.
//! It re-checks the CSR, builds the certificate from its own profile, signs it
//! and returns it.

use serde::{Deserialize, Serialize};

use crate::Identifier;

/// The signer's RPC surface.
#[tarpc::service]
pub trait SignerRpc {
    /// Issues a leaf certificate for a finalized order.
    async fn issue_certificate(request: IssueRequest) -> Result<IssuedCertificate, SignerError>;
    /// The certificates served after each leaf (the issuing CA first).
    async fn ca_chain() -> Result<CaChain, SignerError>;
}

/// A request to issue one leaf certificate.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct IssueRequest {
    /// The subscriber's PKCS#10 request, DER.
    pub csr_der: Vec<u8>,
    /// The order's identifiers; the CSR must name exactly these.
    pub identifiers: Vec<Identifier>,
    /// Requested `notBefore` (Unix seconds), if the order had one.
    pub not_before: Option<i64>,
    /// Requested `notAfter` (Unix seconds), if the order had one.
    pub not_after: Option<i64>,
    /// The requesting ACME account's URL.
    pub account_uri: String,
    /// The order's id, for the audit trail.
    pub order_id: String,
}

/// A signed leaf certificate.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct IssuedCertificate {
    /// The leaf, DER.
    pub der: Vec<u8>,
    /// The serial number, lower-case hex without leading zero bytes.
    pub serial_hex: String,
    /// `notBefore`, Unix seconds.
    pub not_before: i64,
    /// `notAfter`, Unix seconds.
    pub not_after: i64,
    /// The PEM chain served to the subscriber: leaf, then the CA chain.
    pub chain_pem: String,
}

/// The CA certificates the signer serves after each leaf.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CaChain {
    /// PEM certificates, the issuing CA first.
    pub pem: String,
}

/// Why the signer refused or failed a request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum SignerError {
    /// The CSR does not parse, its signature is wrong, or it names something
    /// other than the identifiers.
    #[error("bad CSR: {0}")]
    BadCsr(String),
    /// The subscriber key is not acceptable (type, size, weak).
    #[error("bad public key: {0}")]
    BadPublicKey(String),
    /// The request breaks the signer's profile (validity, names, extensions).
    #[error("refused by the signer's policy: {0}")]
    PolicyRefused(String),
    /// The key backend or certificate encoding failed; details are in the
    /// signer's log.
    #[error("signer internal error")]
    Internal,
}
