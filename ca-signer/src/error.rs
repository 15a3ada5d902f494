//! The crate's one error type, and the single place where an [`Error`] becomes
//! the [`SignerError`] a caller sees over IPC.
//!
//! Refusals (bad CSR, bad key, policy) keep their reason for the caller;
//! everything else is logged here and leaves the signer as
//! [`SignerError::Internal`].

use std::io;
use std::path::PathBuf;

use shared_proto::csr::CsrError;
use shared_proto::signer::SignerError;

/// Everything that can go wrong in the signer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// A file or directory could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// The configuration file is not valid TOML for [`crate::Config`].
    #[error("invalid configuration {path}: {source}")]
    ConfigSyntax {
        /// The configuration file.
        path: PathBuf,
        /// What the parser said.
        source: Box<toml::de::Error>,
    },
    /// A configuration value parses but is not acceptable.
    #[error("invalid configuration value for `{field}`: {problem}")]
    ConfigValue {
        /// The TOML key.
        field: &'static str,
        /// Why it was refused.
        problem: String,
    },
    /// Exactly one of the CA key and certificate exists (reference: partial
    /// state is rejected).
    #[error(
        "CA state is incomplete: {present} exists but {missing} is missing; \
         restore the missing file or remove both to generate a new CA"
    )]
    CaIncomplete {
        /// The file that exists.
        present: PathBuf,
        /// The file that is missing.
        missing: PathBuf,
    },
    /// The CA certificate's public key is not the CA key's.
    #[error("the CA certificate {cert} does not belong to the CA key {key}")]
    CaKeyMismatch {
        /// The key file.
        key: PathBuf,
        /// The certificate file.
        cert: PathBuf,
    },
    /// A PEM/DER key or certificate file does not parse.
    #[error("cannot parse {path}: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What openssl said.
        source: openssl::error::ErrorStack,
    },
    /// A key type this signer cannot sign with.
    #[error("unsupported CA key type: {0}")]
    UnsupportedCaKey(String),
    /// An openssl operation failed.
    #[error("openssl: {0}")]
    Openssl(#[from] openssl::error::ErrorStack),
    /// DER encoding or decoding failed.
    #[error("DER: {0}")]
    Der(#[from] der::Error),
    /// The x509-cert builder failed.
    #[error("certificate builder: {0}")]
    Builder(#[from] x509_cert::builder::Error),
    /// The TBS certificate we built breaks our own profile (a bug, never a
    /// caller's fault): it is not signed.
    #[error("lint failed on the built certificate: {0}")]
    Lint(&'static str),
    /// The signature we produced does not verify with the CA key.
    #[error("the new signature does not verify with the CA public key")]
    SignatureCheck,
    /// The key passed to sign is not the key the TBS was built for.
    #[error("the signing key is not the issuer key the certificate was built for")]
    WrongSigningKey,
    /// The subscriber's CSR was refused.
    #[error(transparent)]
    Csr(#[from] CsrError),
    /// The subscriber's public key was refused.
    #[error("subscriber key refused: {0}")]
    PublicKey(#[from] KeyRefusal),
    /// The request breaks the signer's policy.
    #[error("refused by policy: {0}")]
    Policy(#[from] PolicyRefusal),
    /// The socket could not be set up.
    #[error("socket {path}: {source}")]
    Socket {
        /// The socket path.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// Installing signal handlers or a blocking task failed.
    #[error("runtime: {0}")]
    Runtime(io::Error),
    /// A blocking signing task panicked or was cancelled.
    #[error("signing task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
}

/// Why a subscriber public key is not acceptable.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KeyRefusal {
    /// The SubjectPublicKeyInfo does not parse.
    #[error("public key does not parse")]
    Unparsable,
    /// RSA modulus too small or too large.
    #[error("RSA key of {bits} bits (allowed: 2048 to 8192)")]
    RsaSize {
        /// The modulus size.
        bits: u32,
    },
    /// RSA public exponent other than 65537.
    #[error("RSA public exponent must be 65537")]
    RsaExponent,
    /// An EC key on a curve we do not accept.
    #[error("EC curve {0} is not accepted (P-256, P-384, P-521)")]
    Curve(String),
    /// A key algorithm we do not accept.
    #[error("key algorithm {0} is not accepted (RSA, ECDSA, Ed25519)")]
    Algorithm(String),
}

/// Why the signer's policy refuses a request.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PolicyRefusal {
    /// The request has no identifiers.
    #[error("no identifiers")]
    NoIdentifiers,
    /// More identifiers than the profile allows.
    #[error("{0} identifiers (at most {max})", max = crate::policy::MAX_IDENTIFIERS)]
    TooManyIdentifiers(usize),
    /// A DNS identifier that is not a valid name for a certificate.
    #[error("not a valid DNS name: {0:?}")]
    InvalidDnsName(String),
    /// An IP identifier that is not a canonical IP literal.
    #[error("not a canonical IP address: {0:?}")]
    InvalidIpAddress(String),
    /// `notAfter` at or before `notBefore`.
    #[error("notAfter is not after notBefore")]
    EmptyValidity,
    /// The CA certificate expires before the leaf could start.
    #[error("the CA certificate expires before the requested notBefore")]
    CaExpired,
}

impl Error {
    /// The error a caller sees over IPC. Internal details are logged here and
    /// replaced by [`SignerError::Internal`].
    pub fn to_signer_error(&self) -> SignerError {
        match self {
            Self::Csr(e) => SignerError::BadCsr(e.to_string()),
            Self::PublicKey(e) => SignerError::BadPublicKey(e.to_string()),
            Self::Policy(e) => SignerError::PolicyRefused(e.to_string()),
            other => {
                tracing::error!(target: "signer", error = %other, "internal error");
                SignerError::Internal
            }
        }
    }
}

impl From<&Error> for SignerError {
    fn from(e: &Error) -> Self {
        e.to_signer_error()
    }
}
