//! The crate's one error type, and the single place where an [`Error`] becomes
//! the [`SignerError`] a caller sees over IPC.
//!
//! Refusals (bad CSR, bad key, policy) keep their reason for the caller;
//! everything else is logged here and leaves the signer as
//! [`SignerError::Internal`].

use std::io;
use std::path::PathBuf;

use akamu_pki::csr::CsrError;
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
    /// The `[tcp]` listener could not be set up (its files or its address).
    #[error("[tcp] listener: {0}")]
    Tcp(#[from] daemon_kit::tls::SetupError),
    /// Installing signal handlers or a blocking task failed.
    #[error("runtime: {0}")]
    Runtime(io::Error),
    /// A PKCS#11 call failed (module error, session gone, token refused).
    #[error("PKCS#11: {0}")]
    Pkcs11(#[from] cryptoki::error::Error),
    /// A token, or a key on it, was not found.
    #[error("PKCS#11 {what} not found: {name}")]
    TokenNotFound {
        /// What was looked for.
        what: &'static str,
        /// Its label or id.
        name: String,
    },
    /// The audit log could not be written or does not verify.
    #[error("audit log: {0}")]
    Audit(#[from] crate::audit::AuditError),
    /// The transparency log could not be appended to, opened or trusted.
    #[error("transparency log: {0}")]
    Mtc(#[from] crate::mtc::MtcError),
    /// A blocking signing task panicked or was cancelled.
    #[error("signing task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
    /// Privileges could not be dropped, or a key or PIN file is readable by
    /// others.
    #[error("{0}")]
    Privileges(#[from] daemon_kit::privileges::PrivilegeError),
}

/// Why a subscriber public key is not acceptable.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KeyRefusal {
    /// The SubjectPublicKeyInfo does not parse.
    #[error("public key does not parse")]
    Unparsable,
    /// RSA modulus of a size other than 2048, 3072 or 4096 bits.
    #[error("RSA key of {bits} bits (allowed: 2048, 3072, 4096)")]
    RsaSize {
        /// The modulus size.
        bits: u32,
    },
    /// RSA public exponent other than 65537.
    #[error("RSA public exponent must be 65537")]
    RsaExponent,
    /// An EC key on a curve we do not accept.
    #[error("EC curve {0} is not accepted")]
    Curve(String),
    /// A key algorithm we do not accept.
    #[error("key algorithm {0} is not accepted")]
    Algorithm(String),
    /// An RSA modulus with the ROCA fingerprint (CVE-2017-15361).
    #[error("RSA modulus has the ROCA fingerprint (CVE-2017-15361)")]
    Roca,
    /// An RSA modulus that Fermat's method factors (primes too close).
    #[error("RSA modulus is factorable by Fermat's method (primes too close)")]
    Fermat,
    /// The key is on the blocklist.
    #[error("public key is blocked")]
    Blocked,
}

/// "a CAA check made at T", or "no CAA check".
fn caa_time(checked_at: &Option<i64>) -> String {
    match checked_at {
        Some(t) => format!("a CAA check made at {t}"),
        None => "no CAA check".to_owned(),
    }
}

/// Why the signer's policy refuses a request.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PolicyRefusal {
    /// The request has no identifiers.
    #[error("no identifiers")]
    NoIdentifiers,
    /// More identifiers than the profile allows.
    #[error("{0} identifiers (more than the profile allows)")]
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
    /// The requested validity is longer than the profile allows.
    #[error("requested validity of {requested_secs} s exceeds the profile's {max_secs} s")]
    ValidityTooLong {
        /// Requested `notAfter − notBefore`.
        requested_secs: i64,
        /// The profile's maximum.
        max_secs: i64,
    },
    /// The requested `notAfter` is after the issuing CA's.
    #[error("requested notAfter is after the issuing CA's notAfter")]
    BeyondIssuer,
    /// A CRL entry is malformed (serial, time or reason).
    #[error("bad revocation entry: {0}")]
    BadRevocation(String),
    /// No valid validator statement covers this name for the account.
    #[error("no valid validation statement covers {0}")]
    Unvalidated(String),
    /// A fresh validator statement covers this name, but too few of the
    /// trusted remote perspectives corroborate it (BR §3.2.2.9).
    #[error("multi-perspective corroboration of {name} not met: {detail}")]
    Uncorroborated {
        /// The name.
        name: String,
        /// Which perspectives did not corroborate, and why.
        detail: String,
    },
    /// The statements covering this name all verify but are older than the
    /// signer's `[policy] statement_max_age_secs` (or validated in the
    /// future beyond the allowed clock skew): the name must be validated
    /// again.
    #[error(
        "validation statement {statement} for {name} was made at {validated_at}, \
         not within the signer's {max_age_secs} s before now ({now})"
    )]
    StaleStatement {
        /// The name.
        name: String,
        /// The newest statement that would otherwise cover it (its id).
        statement: String,
        /// That statement's `validated_at`.
        validated_at: i64,
        /// The signer's maximum age.
        max_age_secs: i64,
        /// The signer's clock.
        now: i64,
    },
    /// A fresh statement covers this name, but the CAA check behind it is
    /// missing or older than the signer's `[policy] caa_max_age_secs`.
    #[error(
        "validation statement {statement} for {name} has {}; the signer relies on CAA checks up to {max_age_secs} s old (now {now})",
        caa_time(.checked_at)
    )]
    StaleCaa {
        /// The name.
        name: String,
        /// The statement's id.
        statement: String,
        /// When its CAA check was made, if it has one.
        checked_at: Option<i64>,
        /// The signer's maximum age.
        max_age_secs: i64,
        /// The signer's clock.
        now: i64,
    },
    /// The requested profile does not exist.
    #[error("unknown profile {0:?}")]
    UnknownProfile(String),
    /// A STAR reissue for an order the signer recorded no first issuance
    /// of (or whose end-date passed long ago).
    #[error("STAR reissue for order {0:?}, of which the signer has no record")]
    StarUnknownOrder(String),
    /// A STAR request outside the order's recorded terms.
    #[error("STAR order {order:?}: {why}")]
    StarOutOfScope {
        /// The order.
        order: String,
        /// What is outside.
        why: String,
    },
}

impl Error {
    /// Whether this is a refusal of the request (audited as such) rather than
    /// a failure of the signer.
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            Self::Csr(_) | Self::PublicKey(_) | Self::Policy(_) | Self::Lint(_)
        )
    }

    /// The error a caller sees over IPC. Internal details are logged here and
    /// replaced by [`SignerError::Internal`].
    pub fn to_signer_error(&self) -> SignerError {
        match self {
            Self::Csr(e) => SignerError::BadCsr(e.to_string()),
            Self::PublicKey(e) => SignerError::BadPublicKey(e.to_string()),
            Self::Policy(PolicyRefusal::Unvalidated(name)) => {
                SignerError::Unvalidated(name.clone())
            }
            // Not validated to the CA's standard: the name needs a new
            // validation.
            Self::Policy(PolicyRefusal::Uncorroborated { name, detail }) => {
                SignerError::Unvalidated(format!(
                    "{name} (multi-perspective corroboration not met: {detail})"
                ))
            }
            // Like an expired statement: the name needs a new validation.
            Self::Policy(PolicyRefusal::StaleStatement {
                name,
                validated_at,
                max_age_secs,
                now,
                ..
            }) => SignerError::Unvalidated(if validated_at > now {
                format!("{name} (its validation statement is dated in the future)")
            } else {
                format!(
                    "{name} (validated {} s ago; the signer relies on validations up to {max_age_secs} s old)",
                    now - validated_at
                )
            }),
            Self::Policy(PolicyRefusal::StaleCaa {
                name,
                checked_at,
                max_age_secs,
                now,
                ..
            }) => SignerError::Caa(match checked_at {
                Some(t) => format!(
                    "{name} (CAA checked {} s ago; the signer relies on CAA checks up to {max_age_secs} s old)",
                    now - t
                ),
                None => {
                    format!("{name} (its validation statement records no CAA check of this name)")
                }
            }),
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
