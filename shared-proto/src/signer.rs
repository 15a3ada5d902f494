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
    /// What the CA is: its chain, the URLs and profiles it puts in leaves,
    /// its limits. (Protocol version 3 had `ca_chain` here, the chain alone.)
    async fn ca_info() -> Result<CaInfo, SignerError>;
    /// Signs a fresh CRL listing `request.revoked`, with the next CRL Number.
    async fn generate_crl(request: CrlRequest) -> Result<SignedCrl, SignerError>;
    /// The signer's own figures (signatures, latencies, errors, CPU and
    /// memory) for the frontend's `/metrics` (protocol version 6).
    async fn metrics() -> SignerMetrics;
    /// Reads the transparency log: its newest signed checkpoint, its
    /// verifier key, a hash tile or part of an entry bundle (protocol
    /// version 18). Everything it returns is checkable against the
    /// signed checkpoint, so the frontend serves it without being trusted.
    async fn log_read(request: LogRead) -> Result<Vec<u8>, LogReadError>;
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
    /// The validator's signed statements for the order's authorizations;
    /// every identifier must be covered by one (see `statement`).
    pub statements: Vec<crate::statement::SignedStatement>,
    /// The signer profile to issue under (ACME profiles extension); `None`
    /// for the signer's default.
    pub profile: Option<String>,
    /// When the frontend moved the order to `processing` (Unix seconds),
    /// sent on every retry: a retry the signer no longer holds in memory is
    /// looked up in its audit log from this time on, so an order is never
    /// signed twice. `None` on the first attempt, which cannot repeat an
    /// earlier one (the move to `processing` is guarded): the signer then
    /// answers only from its table of recent issuances and does no lookup.
    /// Not part of the request's identity (a retry has the same digest).
    pub processing_since: Option<i64>,
    /// The STAR terms (RFC 8739) of an auto-renewed order (protocol version
    /// 7); `None` for an ordinary order. The first issuance of a STAR order
    /// needs fresh statements like any other, and the signer records the
    /// terms with it; a reissue ([`StarTerms::reissue`]) needs none, and the
    /// signer checks it against what it recorded, not against these.
    pub star: Option<StarTerms>,
}

/// The terms of a STAR order (RFC 8739 `auto-renewal`), as the frontend
/// accepted them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StarTerms {
    /// `end-date`: no certificate of the order is valid after it (Unix
    /// seconds).
    pub end_date: i64,
    /// `lifetime`: each certificate's validity from its nominal start,
    /// seconds.
    pub lifetime_secs: i64,
    /// `lifetime-adjust`: how far each `notBefore` is pre-dated, seconds.
    pub lifetime_adjust_secs: i64,
    /// `false` for the order's first issuance (fresh statements required;
    /// the signer records the terms), `true` for a later one (no statements;
    /// the signer's record decides).
    pub reissue: bool,
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
    /// The certificate's index in the signer's transparency log, `None`
    /// when the log is off (protocol version 18).
    pub mtc_log_index: Option<u64>,
}

/// What the CA is, as the signer owns it. The frontend asks for it when it
/// connects and again after the signer restarts; it keeps no copy of these
/// facts in its own configuration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaInfo {
    /// PEM certificates served after each leaf, the issuing CA first.
    pub chain_pem: String,
    /// CRL distribution point put in every leaf (`[ca] crl_url`), if any.
    pub crl_url: Option<String>,
    /// OCSP URL put in every leaf's AIA, if any.
    pub ocsp_url: Option<String>,
    /// caIssuers URL put in every leaf's AIA, if any.
    pub ca_issuers_url: Option<String>,
    /// The profile used when an order names none.
    pub default_profile: String,
    /// Every profile the signer issues under (the default included), sorted
    /// by name.
    pub profiles: Vec<ProfileInfo>,
    /// The longest validity the signer will sign (`[policy]
    /// max_validity_days`), seconds.
    pub max_validity_secs: i64,
    /// The issuing CA certificate's notAfter, Unix seconds (no leaf
    /// outlives it).
    pub ca_not_after: i64,
    /// The oldest CAA check the signer relies on (`[policy]
    /// caa_max_age_secs`), seconds (protocol version 8): the frontend
    /// re-checks CAA before that age whatever its own `caa_recheck_hours`
    /// says.
    pub caa_max_age_secs: i64,
}

/// One issuance profile as the signer enforces it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProfileInfo {
    /// The profile's name, as an order names it.
    pub name: String,
    /// Validity of leaves issued under it, seconds.
    pub validity_secs: i64,
    /// Most names (SANs) a certificate may carry.
    pub max_sans: u32,
    /// Extended key usages, as names: "serverAuth", and "clientAuth" when
    /// the profile allows it.
    pub extended_key_usages: Vec<String>,
    /// How long after its validation an authorization may serve orders
    /// under this profile, seconds (Boulder's validation profiles); `None`:
    /// as long as the authorization is valid.
    pub authz_reuse_secs: Option<i64>,
}

/// A request to sign a CRL: the full list of revoked, unexpired certificates.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CrlRequest {
    /// Every revoked certificate the CRL must list.
    pub revoked: Vec<RevokedEntry>,
}

/// One revoked certificate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevokedEntry {
    /// The serial number, lower-case hex without leading zero bytes.
    pub serial_hex: String,
    /// When it was revoked, Unix seconds.
    pub revoked_at: i64,
    /// RFC 5280 CRLReason code; `None` or `Some(0)` (unspecified) leaves the
    /// entry without a reasonCode, as the Baseline Requirements ask.
    pub reason: Option<i32>,
}

/// A signed CRL.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SignedCrl {
    /// The CRL, DER (serve as `application/pkix-crl`).
    pub der: Vec<u8>,
    /// Its CRL Number; strictly greater than every earlier one.
    pub number: u64,
    /// `thisUpdate`, Unix seconds.
    pub this_update: i64,
    /// `nextUpdate`, Unix seconds.
    pub next_update: i64,
}

/// The signer's figures since it started, for the frontend's `/metrics`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SignerMetrics {
    /// Leaf certificates signed (a repeated request answered with the
    /// certificate already signed is not counted again).
    pub certificates_signed: u64,
    /// CRLs signed.
    pub crls_signed: u64,
    /// Issue requests refused by policy (audited refusals).
    pub refusals: u64,
    /// Repeated issue requests answered with the certificate already signed.
    pub repeated_requests: u64,
    /// Signing operations with the CA key that failed (file key or HSM).
    pub key_errors: u64,
    /// Audit-log appends that failed (the request then failed too).
    pub audit_errors: u64,
    /// Duration of each signature with the CA key (certificates and CRLs).
    pub sign_seconds: crate::metrics::Histogram,
    /// Duration of each audit-log append, fsync included.
    pub audit_append_seconds: crate::metrics::Histogram,
    /// The signer process's CPU and memory.
    pub process: crate::metrics::ProcessFigures,
    /// The transparency log's figures; `None` when the log is off
    /// (protocol version 19).
    pub log: Option<LogFigures>,
}

/// The transparency log as the signer sees it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogFigures {
    /// Entries appended.
    pub entries: u64,
    /// Entries the newest signed checkpoint covers.
    pub checkpoint_entries: u64,
    /// When the newest checkpoint was signed, Unix seconds (0 before the
    /// first).
    pub checkpoint_time: i64,
}

/// What to read from the transparency log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LogRead {
    /// The newest signed checkpoint (a C2SP signed note).
    Checkpoint,
    /// The log key's note verifier key.
    VerifierKey,
    /// Hash tile `level`/`index` of `width` hashes (1–256).
    HashTile {
        /// Tile level.
        level: u8,
        /// Tile index.
        index: u64,
        /// Number of hashes (256: a full tile).
        width: u16,
    },
    /// Entries `from ..` of entry bundle `index` of `width` entries, as
    /// many as fit in one answer (at least one): the caller asks again
    /// from the next entry until it has `width`.
    Entries {
        /// Bundle index.
        index: u64,
        /// Number of entries in the bundle (256: a full bundle).
        width: u16,
        /// The first entry wanted, 0 ≤ from < width.
        from: u16,
    },
}

/// Why a log read has no answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum LogReadError {
    /// The signer's `[mtc] enabled` is false.
    #[error("the transparency log is not enabled")]
    Disabled,
    /// The log has no such tile (yet).
    #[error("no such tile")]
    NotFound,
    /// Reading failed; details are in the signer's log.
    #[error("signer internal error")]
    Internal,
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
    /// No valid validator statement covers a name for the requesting
    /// account: the name was never validated (or the statement expired).
    #[error("not validated: {0}")]
    Unvalidated(String),
    /// The CAA check behind a name's statement is missing or older than
    /// the signer's `[policy] caa_max_age_secs` (protocol version 8).
    #[error("CAA not checked recently enough: {0}")]
    Caa(String),
}
