//! `ValidatorRpc`: what `acme-frontend` may ask of `validator-worker`.
//!
//! The request carries everything the probe needs; the answer is a record of
//! what was checked or a problem with an ACME error kind. Nothing in it only
//! works locally, so the same service can later be reached over TCP from
//! remote perspectives.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::Identifier;

/// The validator's RPC surface.
#[tarpc::service]
pub trait ValidatorRpc {
    /// Probes one challenge and reports the result.
    async fn validate_challenge(
        request: ValidateRequest,
    ) -> Result<ValidationRecord, ValidationProblem>;
    /// The validator's own figures (probes by challenge type and result,
    /// probe latency, CPU and memory) for the frontend's `/metrics`
    /// (protocol version 6).
    async fn metrics() -> ValidatorMetrics;
    /// What the validator is configured to enforce (its CAA identities),
    /// for the frontend's directory (protocol version 8).
    async fn validator_info() -> ValidatorInfo;
    /// Looks CAA up again for a statement this validator signed and, when
    /// the record set still permits issuance, signs the same statement with
    /// a new CAA time (protocol version 8). The frontend asks at finalize
    /// when the CAA check behind an authorization is older than
    /// `caa_recheck_hours`; the validator re-checks only names it validated
    /// itself (the statement must verify with its key and be unexpired).
    async fn recheck_caa(
        statement: crate::statement::SignedStatement,
    ) -> Result<crate::statement::SignedStatement, ValidationProblem>;
    /// RFC 9444 and RFC 8659: for `name`, a name below the identifier of a
    /// statement this validator signed that covers subdomains, looks up
    /// CAA for `name` itself and, when it permits issuance, signs a
    /// statement for exactly `name` (same account, method, validation time
    /// and expiry; not covering subdomains) with that CAA check. The
    /// signer takes a subdomain statement's CAA check only for the name it
    /// was made for, so names below it need these (protocol version 15).
    async fn caa_for_subdomain(
        statement: crate::statement::SignedStatement,
        name: crate::Identifier,
    ) -> Result<crate::statement::SignedStatement, ValidationProblem>;
}

/// What the validator enforces, as it owns it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidatorInfo {
    /// The CA's domain names that CAA `issue` and `issuewild` properties
    /// must name (RFC 8659 §4.2); empty when the validator checks no CAA.
    /// The directory's `meta.caaIdentities`.
    pub caa_identities: Vec<String>,
    /// dns-persist-01: the issuer domain `_validation-persist` records must
    /// name (the validator's `dns_persist_issuer_domain`); `None` when the
    /// validator does not do dns-persist-01, and the frontend does not
    /// offer it.
    pub dns_persist_issuer_domain: Option<String>,
    /// dns-persist-01: which record form the validator checks, so the
    /// frontend shows the matching directory and challenge fields
    /// (protocol version 16).
    pub dns_persist_form: PersistForm,
    /// RFC 9799 §4: the validator reaches hidden services through a Tor
    /// SOCKS5 proxy (its `tor_socks_proxy`), so http-01 and tls-alpn-01
    /// may be offered for `.onion` names (protocol version 17).
    pub tor_connectivity: bool,
}

/// The form of dns-persist-01 records a validator accepts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PersistForm {
    /// The reference's (and draft-ietf-acme-dns-persist-01's) form: the
    /// record's `accounturi` is the account URL, `persistUntil` an RFC 3339
    /// UTC time; the challenge carries `issuer-domain-names`.
    #[default]
    #[serde(rename = "draft-01")]
    Draft01,
    /// draft-ietf-acme-dns-persist-02: `accounturi` is a hashed URI,
    /// `<accountHashPrefix>sha-256/<base64url SHA-256(len ‖ domain ‖
    /// thumbprint ‖ account URL)>`, over any key the account holds or held
    /// (within the retention rules); `persistUntil` is Unix seconds; the
    /// directory's meta carries `accountHashPrefix` and
    /// `issuerDomainNames`, the challenge `issuerDomainNames`.
    #[serde(rename = "draft-02")]
    Draft02,
}

impl PersistForm {
    /// The configuration spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Draft01 => "draft-01",
            Self::Draft02 => "draft-02",
        }
    }
}

/// What a draft-02 dns-persist-01 check needs to know of the account
/// (draft-ietf-acme-dns-persist-02 §4.1 and §4.2); the frontend owns the
/// account, its keys and the hashes that passed before.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PersistAccount {
    /// The directory's `accountHashPrefix`.
    pub account_hash_prefix: String,
    /// The unpadded base64url SHA-256 JWK thumbprint of the account's
    /// current key (43 characters).
    pub key_thumbprint: String,
    /// Hashed URIs that passed a validation of this account before, for
    /// this domain or in the domain-less (`*`) form, made with keys the
    /// account has since replaced and that are still retained (§4.2: not
    /// past `keyRotationPeriod`, not pruned by a revocation with a
    /// certificate key). At most [`MAX_PERSIST_RETAINED`].
    pub retained: Vec<String>,
}

/// The most retained hashed URIs passed in one request.
pub const MAX_PERSIST_RETAINED: usize = 64;

/// The hashed URI of a draft-02 record that granted a validation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PersistHash {
    /// The record's `accounturi`.
    pub uri: String,
    /// The `domain_name` it was computed over: the validated name, or `*`
    /// for the domain-less form.
    pub domain: String,
    /// Whether it was computed with the account's current key (else it was
    /// one of the retained hashes).
    pub current_key: bool,
}

/// The validator's figures since it started, for the frontend's `/metrics`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ValidatorMetrics {
    /// Probes finished, by challenge type and result.
    pub probes: Vec<ProbeCount>,
    /// Duration of each probe (request checks, resolution, connection and
    /// statement included).
    pub probe_seconds: crate::metrics::Histogram,
    /// The validator process's CPU and memory.
    pub process: crate::metrics::ProcessFigures,
}

/// How many probes of one challenge type ended one way.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeCount {
    /// The challenge type.
    pub challenge: ChallengeType,
    /// `None` for a successful probe, else the problem it ended with.
    pub problem: Option<ProblemKind>,
    /// How many.
    pub count: u64,
}

/// ACME challenge types.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ChallengeType {
    /// RFC 8555 §8.3.
    Http01,
    /// RFC 8555 §8.4.
    Dns01,
    /// RFC 8737.
    TlsAlpn01,
    /// draft-ietf-acme-dns-account-label: dns-01's TXT value at a name
    /// made from the account URL, `_<label>._acme-challenge.<domain>`.
    DnsAccount01,
    /// RFC 9799 §3.2: a CSR signed by the hidden service's key, carrying
    /// the key authorization (`.onion` names only).
    OnionCsr01,
    /// A standing TXT record at `_validation-persist.<domain>` naming the
    /// CA's issuer domain and the account (the reference's form).
    DnsPersist01,
}

impl ChallengeType {
    /// The ACME spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Http01 => "http-01",
            Self::Dns01 => "dns-01",
            Self::TlsAlpn01 => "tls-alpn-01",
            Self::DnsAccount01 => "dns-account-01",
            Self::OnionCsr01 => "onion-csr-01",
            Self::DnsPersist01 => "dns-persist-01",
        }
    }

    /// Whether the method proves control by a change in the domain's DNS
    /// (the Baseline Requirements' §3.2.2.4.7): such a validation may
    /// cover a wildcard of the name and, when asked, the names below it
    /// (RFC 9444). IP identifiers cannot be validated this way.
    pub fn is_dns_change(self) -> bool {
        matches!(self, Self::Dns01 | Self::DnsAccount01)
    }

    /// Whether a validation by this method may cover a wildcard of the
    /// name: the DNS changes, and dns-persist-01 (whose validator accepts
    /// a wildcard only under a record with `policy=wildcard`).
    pub fn may_cover_wildcard(self) -> bool {
        self.is_dns_change() || self == Self::DnsPersist01
    }

    /// Parses the ACME spelling.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "http-01" => Some(Self::Http01),
            "dns-01" => Some(Self::Dns01),
            "tls-alpn-01" => Some(Self::TlsAlpn01),
            "dns-account-01" => Some(Self::DnsAccount01),
            "onion-csr-01" => Some(Self::OnionCsr01),
            "dns-persist-01" => Some(Self::DnsPersist01),
            _ => None,
        }
    }
}

/// One challenge to probe.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ValidateRequest {
    /// The identifier being validated.
    pub identifier: Identifier,
    /// Which challenge.
    pub challenge_type: ChallengeType,
    /// The challenge token.
    pub token: String,
    /// `token || '.' || base64url(thumbprint)` (RFC 8555 §8.1).
    pub key_authorization: String,
    /// The requesting account's URL.
    pub account_uri: String,
    /// When the authorization expires (Unix seconds).
    pub authz_expires: i64,
    /// RFC 9444: the authorization allows subdomains, so the statement
    /// should cover the names below the identifier. The validator agrees
    /// only for dns-01 on a DNS name that is not a public suffix.
    pub covers_subdomains: bool,
    /// onion-csr-01: the DER CSR the client posted (RFC 9799 §3.2), at
    /// most [`MAX_ONION_CSR`] bytes.
    pub onion_csr: Option<Vec<u8>>,
    /// dns-persist-01: the account's facts for the draft-02 form (the
    /// frontend sends them for every dns-persist-01 challenge; a draft-01
    /// validator ignores them) (protocol version 16).
    pub persist: Option<PersistAccount>,
}

/// The largest onion-csr-01 CSR passed to the validator, bytes.
pub const MAX_ONION_CSR: usize = 16 * 1024;

/// What a successful probe saw (RFC 8555 §8.3 `validationRecord`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidationRecord {
    /// The URL fetched, for http-01.
    pub url: Option<String>,
    /// The host name probed.
    pub hostname: String,
    /// The port probed, for http-01 and tls-alpn-01.
    pub port: Option<u16>,
    /// The addresses the name resolved to.
    pub addresses_resolved: Vec<IpAddr>,
    /// The address that answered.
    pub address_used: Option<IpAddr>,
    /// When the probe finished (Unix seconds).
    pub validated_at: i64,
    /// The validator's signed statement of this validation, which the signer
    /// requires before it issues for the identifier; from a primary with
    /// remote perspectives, carrying their statements
    /// ([`crate::statement::SignedStatement::corroborations`]), and from a
    /// remote perspective, naming it.
    pub statement: Option<crate::statement::SignedStatement>,
    /// dns-persist-01: the record's `persistUntil` (Unix seconds); the
    /// authorization and the statement never outlive it.
    pub persist_until: Option<i64>,
    /// dns-persist-01, draft-02 form: the hashed URI that granted it, which
    /// the frontend keeps so that a later key rollover does not orphan the
    /// record (protocol version 16).
    pub persist_hash: Option<PersistHash>,
}

impl ValidationRecord {
    /// The record of a validation that connected to nothing (DNS methods,
    /// onion-csr-01): the name checked, when, no URL, port or addresses.
    pub fn name_only(hostname: String, validated_at: i64) -> Self {
        Self {
            url: None,
            hostname,
            port: None,
            addresses_resolved: Vec::new(),
            address_used: None,
            validated_at,
            statement: None,
            persist_until: None,
            persist_hash: None,
        }
    }
}

/// ACME error kinds a probe can end in (RFC 8555 §6.7).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProblemKind {
    /// Could not connect to the applicant.
    Connection,
    /// DNS lookup failed.
    Dns,
    /// The applicant answered, but not with the expected content.
    IncorrectResponse,
    /// TLS handshake or certificate problem (tls-alpn-01).
    Tls,
    /// The identifier may not be validated by this CA (reserved address,
    /// policy).
    RejectedIdentifier,
    /// The request to the validator itself was malformed.
    Malformed,
    /// The validator failed internally.
    ServerInternal,
    /// CAA records forbid issuance, or could not be looked up (RFC 8659;
    /// protocol version 8).
    Caa,
    /// A record names another issuer or account, or is past its
    /// `persistUntil` (dns-persist-01 in the draft-02 form, whose §6.2 asks
    /// for `unauthorized`; protocol version 16).
    Unauthorized,
}

impl ProblemKind {
    /// The RFC 8555 error type name (without the `urn:ietf:params:acme:error:` prefix).
    pub fn acme_type(self) -> &'static str {
        match self {
            Self::Connection => "connection",
            Self::Dns => "dns",
            Self::IncorrectResponse => "incorrectResponse",
            Self::Tls => "tls",
            Self::RejectedIdentifier => "rejectedIdentifier",
            Self::Malformed => "malformed",
            Self::ServerInternal => "serverInternal",
            Self::Caa => "caa",
            Self::Unauthorized => "unauthorized",
        }
    }
}

/// A failed probe: an ACME error kind and a detail for the subscriber.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{}: {detail}", kind.acme_type())]
pub struct ValidationProblem {
    /// The ACME error kind.
    pub kind: ProblemKind,
    /// A human-readable explanation naming the host, port or record involved.
    pub detail: String,
}

impl ValidationProblem {
    /// A problem of `kind` with `detail`.
    pub fn new(kind: ProblemKind, detail: impl Into<String>) -> Self {
        Self {
            kind,
            detail: detail.into(),
        }
    }
}
