//! Errors of the validator, and the one place that maps a failed probe to an
//! ACME problem kind ([`ProbeError::kind`], `From<&ProbeError> for
//! ValidationProblem`).
//!
//! Details name the host, port, address, URL or record involved: they reach
//! the subscriber. They never contain more than a short, sanitised excerpt of
//! what the applicant sent.

use std::fmt;
use std::io;
use std::net::IpAddr;
use std::path::PathBuf;

use shared_proto::validator::{ChallengeType, ProblemKind, ValidationProblem};

/// Why the validator process could not start or keep running.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration file could not be read.
    #[error("cannot read config {}: {source}", path.display())]
    ReadConfig {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// The configuration file is not valid TOML for [`crate::Config`].
    #[error("cannot parse config {}: {source}", path.display())]
    ParseConfig {
        /// The file (empty when parsing text).
        path: PathBuf,
        /// The cause.
        source: Box<toml::de::Error>,
    },
    /// A configuration value is out of range.
    #[error("invalid config: {0}")]
    InvalidConfig(&'static str),
    /// A configuration value is wrong, with the key at fault.
    #[error("invalid config: {field}: {problem}")]
    InvalidValue {
        /// The key, e.g. `tcp.client_names`.
        field: &'static str,
        /// What is wrong with it.
        problem: String,
    },
    /// The `[tcp]` listener could not be set up (its files, its address).
    #[error("[tcp]: {0}")]
    Tcp(#[from] daemon_kit::tls::SetupError),
    /// The TLS client settings of a perspective could not be loaded.
    #[error("perspective {name}: {source}")]
    PerspectiveTls {
        /// The perspective.
        name: String,
        /// What was wrong.
        source: shared_proto::tls::TlsError,
    },
    /// The socket could not be bound.
    #[error("cannot listen on {}: {source}", path.display())]
    Bind {
        /// The socket path.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// Other I/O (signals, stdout).
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: &'static str,
        /// The cause.
        source: io::Error,
    },
    /// The statement key could not be loaded or created.
    #[error("statement key: {0}")]
    StatementKey(#[from] shared_proto::statement::StatementError),
    /// Privileges could not be dropped, or a secret file is too open.
    #[error("{0}")]
    Privileges(#[from] daemon_kit::privileges::PrivilegeError),
}

/// Why one probe failed. Each variant maps to exactly one [`ProblemKind`].
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// The request itself is unusable.
    #[error(transparent)]
    Request(#[from] RequestError),
    /// A DNS lookup failed.
    #[error(transparent)]
    Dns(#[from] DnsError),
    /// An address is reserved and may not be probed.
    #[error(transparent)]
    Policy(#[from] PolicyError),
    /// A TCP connection could not be set up.
    #[error(transparent)]
    Connect(#[from] ConnectError),
    /// An http-01 fetch failed or answered wrongly.
    #[error(transparent)]
    Http(#[from] HttpError),
    /// A tls-alpn-01 handshake failed or presented the wrong certificate.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// dns-01 TXT records exist, but none matches.
    #[error("none of the {seen} TXT record(s) at {name} matches the expected value {expected:?}")]
    TxtMismatch {
        /// The name queried.
        name: String,
        /// How many TXT records were seen.
        seen: usize,
        /// The expected record value (public: base64url of a hash).
        expected: String,
    },
    /// The whole probe did not finish within the configured deadline.
    #[error("{} probe of {identifier} did not finish within {after_ms} ms", challenge.as_str())]
    Timeout {
        /// Which challenge.
        challenge: ChallengeType,
        /// The identifier value.
        identifier: String,
        /// The deadline.
        after_ms: u64,
    },
    /// dns-persist-01 TXT records exist, but none grants this validation.
    #[error("none of the {seen} TXT record(s) at {name} grants this validation: {why}")]
    PersistMismatch {
        /// The name queried.
        name: String,
        /// How many TXT records were seen.
        seen: usize,
        /// What was wrong with them.
        why: String,
        /// The record form checked.
        form: shared_proto::validator::PersistForm,
        /// Whether a record for this CA was malformed (draft-02 §6.2).
        syntax: bool,
    },
    /// An onion-csr-01 CSR that does not prove control of the hidden
    /// service (RFC 9799 §3.2).
    #[error("onion-csr-01: {0}")]
    OnionCsr(String),
    /// The validator could not set itself up for the probe.
    #[error("internal validator error: {0}")]
    Internal(&'static str),
    /// CAA forbids issuance, or could not be looked up (RFC 8659).
    #[error(transparent)]
    Caa(#[from] crate::caa::CaaError),
    /// A statement sent for a CAA re-check is not one this validator can
    /// vouch for again.
    #[error("cannot re-check CAA for statement {id}: {reason}")]
    Recheck {
        /// The statement's id.
        id: String,
        /// Why (a fixed explanation).
        reason: &'static str,
    },
    /// Too few remote perspectives corroborated the validation (BR
    /// §3.2.2.9): the detail names each one that did not, and why.
    #[error("multi-perspective validation failed: {detail}")]
    Uncorroborated {
        /// The kind of the first failing perspective's problem (by
        /// configuration order), `serverInternal` when none answered with
        /// one (all unreachable).
        kind: ProblemKind,
        /// Which perspectives did not corroborate, and why.
        detail: String,
    },
}

/// Request fields the validator refuses.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// The token is not base64url or too short.
    #[error("token is not a base64url string of at least 22 characters")]
    BadToken,
    /// The key authorization does not start with `token.`.
    #[error("key authorization does not start with the token and a dot")]
    BadKeyAuthorization,
    /// The identifier value does not parse.
    #[error("identifier {0:?} is not a valid DNS name or IP address")]
    BadIdentifier(String),
    /// The challenge type does not apply to this identifier.
    #[error("{} cannot validate {identifier}: {reason}", challenge.as_str())]
    Unsupported {
        /// Which challenge.
        challenge: ChallengeType,
        /// The identifier.
        identifier: String,
        /// Why (a fixed explanation).
        reason: &'static str,
    },
    /// Subdomain coverage (RFC 9444) was asked for where it cannot be
    /// given.
    #[error("a validation of {identifier} cannot cover its subdomains: {reason}")]
    Subdomains {
        /// The identifier.
        identifier: String,
        /// Why (a fixed explanation).
        reason: &'static str,
    },
}

/// DNS lookup failures.
#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    /// The name does not exist.
    #[error("DNS problem: NXDOMAIN looking up {rtype} for {name}")]
    NxDomain {
        /// The name.
        name: String,
        /// The record type queried.
        rtype: &'static str,
    },
    /// The name exists but has no records of the type.
    #[error("DNS problem: no {rtype} records found for {name}")]
    NoRecords {
        /// The name.
        name: String,
        /// The record type(s) queried.
        rtype: &'static str,
    },
    /// The query timed out.
    #[error("DNS problem: query timed out looking up {rtype} for {name}")]
    Timeout {
        /// The name.
        name: String,
        /// The record type queried.
        rtype: &'static str,
    },
    /// The name is not a valid DNS name.
    #[error("DNS problem: {name:?} is not a valid DNS name")]
    BadName {
        /// The name.
        name: String,
    },
    /// Any other resolver failure (SERVFAIL, REFUSED, I/O).
    #[error("DNS problem: looking up {rtype} for {name}: {cause}")]
    Failure {
        /// The name.
        name: String,
        /// The record type queried.
        rtype: &'static str,
        /// The resolver's description.
        cause: String,
    },
    /// DNSSEC validation is on and the answer did not validate (a bogus or
    /// unprovable signature chain); an answer proven unsigned passes.
    #[error("DNS problem: DNSSEC validation of {rtype} for {name} failed ({proof})")]
    Dnssec {
        /// The name.
        name: String,
        /// The record type queried.
        rtype: &'static str,
        /// What the validating resolver concluded.
        proof: String,
    },
}

/// Reserved-address refusals (see [`crate::address_policy`]).
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// An IP identifier lies in a reserved range.
    #[error("{addr} is in a reserved address range ({range}) and cannot be validated")]
    ReservedIdentifier {
        /// The address.
        addr: IpAddr,
        /// The name of the range.
        range: &'static str,
    },
    /// A host name resolves only to reserved addresses.
    #[error(
        "{host} resolves only to reserved addresses ({}); refusing to connect",
        AddrList(addrs)
    )]
    OnlyReserved {
        /// The host name.
        host: String,
        /// The reserved addresses.
        addrs: Vec<IpAddr>,
    },
    /// A `.onion` name, and no Tor proxy to reach it through (RFC 9799
    /// §4; `.onion` is never resolved in the DNS, RFC 7686 §2).
    #[error(
        "{host} is a Tor hidden service and this validator has no tor_socks_proxy; use onion-csr-01"
    )]
    NoTor {
        /// The name.
        host: String,
    },
}

/// A TCP connect that did not succeed.
#[derive(Debug, thiserror::Error)]
#[error("connection to {host}:{port} ({addr}) failed: {cause}")]
pub struct ConnectError {
    /// The host name (or address literal).
    pub host: String,
    /// The port.
    pub port: u16,
    /// The address tried.
    pub addr: IpAddr,
    /// What happened.
    pub cause: ConnectCause,
}

/// Why a connect failed.
#[derive(Debug, thiserror::Error)]
pub enum ConnectCause {
    /// No answer within the connect timeout.
    #[error("timed out after {0} ms")]
    Timeout(u64),
    /// The OS reported an error (refused, unreachable, reset…).
    #[error("{0}")]
    Io(#[from] io::Error),
    /// The Tor SOCKS5 proxy refused or could not reach the target.
    #[error("through Tor: {0}")]
    Tor(String),
}

/// http-01 failures after a connection was made.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The server answered with a non-2xx status.
    #[error("invalid response from {url} [{addr}]: HTTP status {status}")]
    Status {
        /// The URL fetched.
        url: String,
        /// The address that answered.
        addr: IpAddr,
        /// The status code.
        status: u16,
    },
    /// The body exceeds the limit.
    #[error("invalid response from {url} [{addr}]: response body too large (limit {limit} bytes)")]
    BodyTooLarge {
        /// The URL fetched.
        url: String,
        /// The address that answered.
        addr: IpAddr,
        /// The limit.
        limit: usize,
    },
    /// The body is not the key authorization.
    #[error(
        "invalid response from {url} [{addr}]: received {received:?} ({len} bytes), expected {expected:?}"
    )]
    Mismatch {
        /// The URL fetched.
        url: String,
        /// The address that answered.
        addr: IpAddr,
        /// A short, sanitised excerpt of the body.
        received: String,
        /// The body length.
        len: usize,
        /// The expected key authorization.
        expected: String,
    },
    /// The HTTP exchange broke (reset, malformed response, TLS failure on an
    /// https redirect).
    #[error("fetching {url} [{addr}] failed: {cause}")]
    Exchange {
        /// The URL fetched.
        url: String,
        /// The address that answered.
        addr: IpAddr,
        /// The cause.
        cause: String,
    },
    /// More redirects than allowed.
    #[error("too many redirects (more than {max}) starting at {url}")]
    TooManyRedirects {
        /// The first URL.
        url: String,
        /// The limit.
        max: usize,
    },
    /// A redirect the validator will not follow.
    #[error("refusing redirect from {from} to {location:?}: {reason}")]
    BadRedirect {
        /// The URL that redirected.
        from: String,
        /// The `Location` value (sanitised).
        location: String,
        /// Why.
        reason: &'static str,
    },
}

/// tls-alpn-01 failures.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The TLS handshake failed.
    #[error("TLS handshake with {host}:{port} ({addr}) failed: {cause}")]
    Handshake {
        /// The host.
        host: String,
        /// The port.
        port: u16,
        /// The address.
        addr: IpAddr,
        /// The cause.
        cause: io::Error,
    },
    /// The server did not negotiate `acme-tls/1`.
    #[error("{host}:{port} ({addr}) did not negotiate the acme-tls/1 ALPN protocol")]
    NoAlpn {
        /// The host.
        host: String,
        /// The port.
        port: u16,
        /// The address.
        addr: IpAddr,
    },
    /// The server sent no certificate.
    #[error("{host}:{port} ({addr}) presented no certificate")]
    NoCertificate {
        /// The host.
        host: String,
        /// The port.
        port: u16,
        /// The address.
        addr: IpAddr,
    },
    /// The certificate does not meet RFC 8737 §3.
    #[error(
        "certificate presented by {host}:{port} ({addr}) is not a valid acme-tls/1 certificate: {cause}"
    )]
    Certificate {
        /// The host.
        host: String,
        /// The port.
        port: u16,
        /// The address.
        addr: IpAddr,
        /// What is wrong.
        cause: CertError,
    },
}

/// What is wrong with a tls-alpn-01 certificate (RFC 8737 §3).
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    /// The certificate does not parse.
    #[error("cannot parse the certificate: {0}")]
    Parse(der::Error),
    /// No id-pe-acmeIdentifier extension.
    #[error("the id-pe-acmeIdentifier extension is missing")]
    MissingAcmeIdentifier,
    /// An extension appears more than once.
    #[error("the {0} extension appears more than once")]
    DuplicateExtension(&'static str),
    /// The extension is not critical.
    #[error("the id-pe-acmeIdentifier extension is not marked critical")]
    NotCritical,
    /// The extension value is not a DER OCTET STRING of 32 bytes.
    #[error("the id-pe-acmeIdentifier extension value is not an OCTET STRING of 32 bytes")]
    BadAcmeIdentifier,
    /// The hash does not match.
    #[error("the id-pe-acmeIdentifier value does not match SHA-256 of the key authorization")]
    HashMismatch,
    /// No subjectAltName extension.
    #[error("the subjectAltName extension is missing")]
    MissingSan,
    /// The SAN does not decode.
    #[error("cannot decode the subjectAltName extension: {0}")]
    BadSan(der::Error),
    /// Not exactly one SAN entry.
    #[error("the subjectAltName extension has {0} entries; exactly one is required")]
    SanCount(usize),
    /// The one SAN entry is not the identifier.
    #[error("the subjectAltName entry {found} does not match the identifier")]
    SanMismatch {
        /// A description of the entry found.
        found: String,
    },
}

impl ProbeError {
    /// The ACME problem kind for this failure.
    pub fn kind(&self) -> ProblemKind {
        match self {
            Self::Request(_) => ProblemKind::Malformed,
            Self::Dns(_) => ProblemKind::Dns,
            Self::Policy(PolicyError::ReservedIdentifier { .. }) => ProblemKind::RejectedIdentifier,
            Self::Policy(PolicyError::OnlyReserved { .. } | PolicyError::NoTor { .. }) => {
                ProblemKind::Connection
            }
            Self::Connect(_) => ProblemKind::Connection,
            Self::Http(
                HttpError::Status { .. }
                | HttpError::BodyTooLarge { .. }
                | HttpError::Mismatch { .. },
            ) => ProblemKind::IncorrectResponse,
            Self::Http(
                HttpError::Exchange { .. }
                | HttpError::TooManyRedirects { .. }
                | HttpError::BadRedirect { .. },
            ) => ProblemKind::Connection,
            Self::Tls(TlsError::Certificate { .. }) => ProblemKind::IncorrectResponse,
            Self::Tls(_) => ProblemKind::Tls,
            // draft-02 §6.2 asks for `malformed` and `unauthorized`; the
            // reference's form keeps dns-01's `incorrectResponse`.
            Self::PersistMismatch {
                form: shared_proto::validator::PersistForm::Draft02,
                syntax,
                ..
            } => {
                if *syntax {
                    ProblemKind::Malformed
                } else {
                    ProblemKind::Unauthorized
                }
            }
            Self::TxtMismatch { .. } | Self::PersistMismatch { .. } | Self::OnionCsr(_) => {
                ProblemKind::IncorrectResponse
            }
            Self::Timeout {
                challenge:
                    ChallengeType::Dns01 | ChallengeType::DnsAccount01 | ChallengeType::DnsPersist01,
                ..
            } => ProblemKind::Dns,
            Self::Timeout { .. } => ProblemKind::Connection,
            Self::Internal(_) => ProblemKind::ServerInternal,
            Self::Caa(_) => ProblemKind::Caa,
            Self::Recheck { .. } => ProblemKind::Malformed,
            Self::Uncorroborated { kind, .. } => *kind,
        }
    }
}

impl From<&ProbeError> for ValidationProblem {
    fn from(e: &ProbeError) -> Self {
        ValidationProblem::new(e.kind(), e.to_string())
    }
}

impl From<ProbeError> for ValidationProblem {
    fn from(e: ProbeError) -> Self {
        Self::from(&e)
    }
}

/// Displays a list of addresses as `a, b, c`.
struct AddrList<'a>(&'a [IpAddr]);

impl fmt::Display for AddrList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, a) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{a}")?;
        }
        Ok(())
    }
}

/// A short excerpt of untrusted bytes, safe to show: at most `max` characters,
/// printable ASCII only (others become `?`), an ellipsis when cut.
pub(crate) fn sanitize_excerpt(bytes: &[u8], max: usize) -> String {
    let mut out: String = bytes
        .iter()
        .take(max)
        .map(|&b| {
            if (0x20..0x7f).contains(&b) {
                char::from(b)
            } else {
                '?'
            }
        })
        .collect();
    if bytes.len() > max {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpt_is_short_and_printable() {
        assert_eq!(sanitize_excerpt(b"abc", 10), "abc");
        assert_eq!(sanitize_excerpt(b"a\x1b[31mb\n", 10), "a?[31mb?");
        assert_eq!(sanitize_excerpt(b"0123456789abc", 4), "0123…");
        assert_eq!(sanitize_excerpt("é".as_bytes(), 4), "??");
    }

    #[test]
    fn kinds_are_mapped_once() {
        let addr: IpAddr = "192.0.2.1".parse().expect("ip");
        let cases: Vec<(ProbeError, ProblemKind)> = vec![
            (RequestError::BadToken.into(), ProblemKind::Malformed),
            (
                DnsError::NxDomain {
                    name: "x".into(),
                    rtype: "A",
                }
                .into(),
                ProblemKind::Dns,
            ),
            (
                PolicyError::ReservedIdentifier {
                    addr,
                    range: "documentation",
                }
                .into(),
                ProblemKind::RejectedIdentifier,
            ),
            (
                PolicyError::OnlyReserved {
                    host: "x".into(),
                    addrs: vec![addr],
                }
                .into(),
                ProblemKind::Connection,
            ),
            (
                HttpError::Status {
                    url: "u".into(),
                    addr,
                    status: 404,
                }
                .into(),
                ProblemKind::IncorrectResponse,
            ),
            (
                HttpError::TooManyRedirects {
                    url: "u".into(),
                    max: 10,
                }
                .into(),
                ProblemKind::Connection,
            ),
            (
                TlsError::NoAlpn {
                    host: "h".into(),
                    port: 1,
                    addr,
                }
                .into(),
                ProblemKind::Tls,
            ),
            (
                TlsError::Certificate {
                    host: "h".into(),
                    port: 1,
                    addr,
                    cause: CertError::HashMismatch,
                }
                .into(),
                ProblemKind::IncorrectResponse,
            ),
            (
                ProbeError::Timeout {
                    challenge: ChallengeType::Dns01,
                    identifier: "x".into(),
                    after_ms: 1,
                },
                ProblemKind::Dns,
            ),
            (
                ProbeError::Timeout {
                    challenge: ChallengeType::Http01,
                    identifier: "x".into(),
                    after_ms: 1,
                },
                ProblemKind::Connection,
            ),
            (
                crate::caa::CaaError::Lookup {
                    name: "example.org".into(),
                    source: DnsError::Timeout {
                        name: "example.org".into(),
                        rtype: "CAA",
                    },
                }
                .into(),
                ProblemKind::Caa,
            ),
        ];
        for (err, kind) in cases {
            let p = ValidationProblem::from(&err);
            assert_eq!(p.kind, kind, "{err}");
            assert_eq!(p.detail, err.to_string());
        }
    }
}
