//! Command-line options and their validation.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use akamu_jose::KeyType;
use clap::Parser;

/// Runs full RFC 8555 flows (new-order → challenge → finalize → download)
/// against a real CA and reports throughput, per-phase latency, errors by
/// ACME problem type, and the memory and CPU of each CA process.
///
/// Without `--directory` it starts Akāmu's three processes itself
/// (`acme-frontend`, `ca-signer`, `validator-worker` from `--bin-dir`) on
/// loopback with a file-backed SQLite database in a temporary directory.
#[derive(Debug, Clone, Parser)]
#[command(name = "acme-bench", version)]
pub struct Options {
    /// Concurrent clients (one ACME account and one HTTPS connection pool each).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub clients: u32,

    /// Issuances to measure (warmup not counted).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub requests: u64,

    /// Warmup issuances run (and discarded) before the measured window.
    #[arg(long, default_value_t = 10)]
    pub warmup: u64,

    /// Cap of the poll interval in milliseconds; the adaptive backoff starts
    /// at 1 ms and doubles after each poll that finds nothing new.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u64).range(1..=60_000))]
    pub poll_ms: u64,

    /// Challenge type answered by the bench's own responders: http-01,
    /// dns-01, tls-alpn-01, or dns-persist-01 (a standing
    /// `_validation-persist` TXT record naming the CA and the account,
    /// draft-ietf-acme-dns-persist).
    #[arg(long, default_value = "http-01")]
    pub challenge: ChallengeKind,

    /// Order `*.<fresh name>` (one wildcard identifier) instead of the
    /// name itself; needs a DNS challenge (dns-01 or dns-persist-01).
    #[arg(long)]
    pub wildcard: bool,
    /// Offer only HTTP/1.1 to the server (ALPN `http/1.1`), as certbot
    /// does; by default HTTP/2 is offered too and taken when the server
    /// supports it.
    #[arg(long)]
    pub http1: bool,

    /// The CA's dns-persist-01 issuer domain, named first in the records
    /// the bench publishes: needed with `--directory` and
    /// `--challenge dns-persist-01` (a started Akāmu has its own).
    #[arg(long, value_name = "DOMAIN", requires = "directory")]
    pub persist_issuer_domain: Option<String>,

    /// Subscriber (CSR) key type: ec:P-256, ec:P-384, rsa:2048, rsa:3072,
    /// rsa:4096, ed25519, ml-dsa-44, ml-dsa-65, ml-dsa-87 (the started CA's
    /// profile accepts the chosen type).
    #[arg(long, default_value = "ec:P-256", value_parser = csr_key_type)]
    pub key_type: KeyType,

    /// CA key type generated when the bench starts Akāmu (`[ca] key_type`):
    /// ec:P-256, ec:P-384, ec:P-521, rsa:2048, rsa:3072, rsa:4096, ed25519,
    /// ml-dsa-44, ml-dsa-65, ml-dsa-87 (file backend; the bench's HTTPS
    /// client then verifies ML-DSA with aws-lc-rs).
    #[arg(long, default_value = "ec:P-256", value_parser = ca_key_type)]
    pub ca_key_type: KeyType,

    /// Where the CA key lives when the bench starts Akāmu: `file`, or
    /// `softhsm` (a SoftHSM2 token in the temporary directory, reached over
    /// PKCS#11 by the signer).
    #[arg(long, default_value = "file")]
    pub ca_backend: CaBackend,

    /// Database of the started CA: an SQLite path, `:memory:`, or a
    /// PostgreSQL URL (`postgres://…`, `[database] url`; an empty
    /// database the bench's CA migrates). Default: a SQLite file in the
    /// bench's temporary state directory.
    #[arg(long, value_name = "PATH|:memory:|URL")]
    pub db: Option<String>,

    /// Report format on stdout.
    #[arg(long, default_value = "text")]
    pub output: OutputFormat,

    /// Check every issued certificate: it parses, names exactly the order's
    /// identifiers, carries the CSR's key, and is signed by the next
    /// certificate of the chain.
    #[arg(long)]
    pub verify_cert: bool,

    /// Turn the transparency log on in the CA the bench starts (`[mtc]
    /// enabled = true`): every certificate is appended to it before it
    /// leaves the signer.
    #[arg(long)]
    pub mtc: bool,

    /// Turn every `[rate_limits]` table on in the CA the bench starts, with
    /// the suggested periods and counts far above what a run can spend (50
    /// clients × 10 000 issuances under the one registered domain
    /// `acme-bench.test` never trip them): the cost of checking and
    /// counting, without refusals.
    #[arg(long)]
    pub rate_limits: bool,

    /// Benchmark this ACME directory instead of starting Akāmu.
    #[arg(long, value_name = "URL", requires = "ca_bundle")]
    pub directory: Option<String>,

    /// PEM file of the roots that the `--directory` server's HTTPS
    /// certificate chains to.
    #[arg(long, value_name = "PEM", requires = "directory")]
    pub ca_bundle: Option<PathBuf>,

    /// Directory holding acme-frontend, ca-signer and validator-worker.
    /// Default: the directory of the acme-bench executable.
    #[arg(long, value_name = "DIR")]
    pub bin_dir: Option<PathBuf>,

    /// Port of the http-01 token server on 127.0.0.1 (0: a free port).
    #[arg(long, default_value_t = 0)]
    pub http_port: u16,

    /// Port of the tls-alpn-01 responder on 127.0.0.1 (0: a free port).
    #[arg(long, default_value_t = 0)]
    pub tls_port: u16,

    /// Port (UDP and TCP) of the DNS server on 127.0.0.1 (0: a free port).
    #[arg(long, default_value_t = 0)]
    pub dns_port: u16,

    /// Extra process to sample like the CA's own (`NAME=PID`, repeatable),
    /// e.g. a `--directory` server's pid.
    #[arg(long = "watch-pid", value_name = "NAME=PID")]
    pub watch_pids: Vec<WatchPid>,

    /// Hard limit on the whole run in seconds; clients stop starting new
    /// issuances after it.
    #[arg(long, default_value_t = 600)]
    pub max_secs: u64,

    /// Give up polling an order after this many seconds.
    #[arg(long, default_value_t = 30)]
    pub poll_timeout_secs: u64,

    /// Give up one issuance (every request and poll of it) after this many
    /// seconds: a server that stops answering ends the run with `timeout`
    /// errors instead of hanging it.
    #[arg(long, default_value_t = 120)]
    pub issuance_timeout_secs: u64,

    /// Write the started CA's logs here instead of the temporary directory
    /// (kept after the run).
    #[arg(long, value_name = "FILE")]
    pub ca_log: Option<PathBuf>,

    /// Keep the clients' accounts in FILE (instant-acme credentials, JSON):
    /// the accounts saved there are used, missing ones are created and
    /// saved. For runs in rounds against one CA (`--directory`), whose
    /// clients should keep their accounts as real clients do.
    #[arg(long, value_name = "FILE", requires = "directory")]
    pub accounts: Option<PathBuf>,

    /// Count the heap requests of the started CA's three processes
    /// (`AKAMU_HEAP_STATS=1`, read from its `/metrics`) and report bytes
    /// requested per issuance (incl. freed), the reference's "alloc
    /// pressure". Counting costs CPU: measure CPU figures without it.
    #[arg(long, conflicts_with = "directory")]
    pub heap_stats: bool,

    /// Internal: initialise a SoftHSM2 token in DIR (run as a child process).
    #[arg(long, hide = true, value_name = "DIR")]
    pub internal_hsm_init: Option<PathBuf>,
}

impl Options {
    /// Whether the bench starts (and then owns) Akāmu itself.
    pub fn managed(&self) -> bool {
        self.directory.is_none()
    }

    /// Rejects combinations clap cannot express.
    pub fn check(&self) -> Result<(), String> {
        if !self.managed() {
            if self.db.is_some() {
                return Err(
                    "--db only applies when the bench starts Akāmu (no --directory)".into(),
                );
            }
            if self.ca_backend != CaBackend::File {
                return Err("--ca-backend only applies when the bench starts Akāmu".into());
            }
            if self.mtc {
                return Err("--mtc only applies when the bench starts Akāmu".into());
            }
            if self.rate_limits {
                return Err("--rate-limits only applies when the bench starts Akāmu".into());
            }
            if self.challenge == ChallengeKind::DnsPersist01 && self.persist_issuer_domain.is_none()
            {
                return Err("--challenge dns-persist-01 with --directory needs \
                            --persist-issuer-domain: the records name the CA's issuer domain, \
                            which the bench cannot learn from the server"
                    .into());
            }
        }
        if self.wildcard && !self.challenge.is_dns() {
            return Err(format!(
                "--wildcard needs a DNS challenge (dns-01 or dns-persist-01): a CA validates \
                 no wildcard name with {} (RFC 8555 §7.1.3)",
                self.challenge
            ));
        }
        if let Some(domain) = &self.persist_issuer_domain {
            if self.challenge != ChallengeKind::DnsPersist01 {
                return Err(
                    "--persist-issuer-domain only applies to --challenge dns-persist-01".into(),
                );
            }
            if domain.is_empty() || domain.contains([';', ' ', '\t', '"']) {
                return Err(format!(
                    "--persist-issuer-domain {domain:?} is not a domain name"
                ));
            }
        }
        if self.max_secs == 0 || self.poll_timeout_secs == 0 || self.issuance_timeout_secs == 0 {
            return Err(
                "--max-secs, --poll-timeout-secs and --issuance-timeout-secs must be positive"
                    .into(),
            );
        }
        let ports = [self.http_port, self.tls_port, self.dns_port];
        for (i, a) in ports.iter().enumerate() {
            if *a != 0 && ports[i + 1..].contains(a) {
                return Err(format!("port {a} is given twice"));
            }
        }
        Ok(())
    }
}

/// A challenge type the bench can answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChallengeKind {
    /// RFC 8555 §8.3.
    Http01,
    /// RFC 8555 §8.4.
    Dns01,
    /// RFC 8737.
    TlsAlpn01,
    /// draft-ietf-acme-dns-persist.
    DnsPersist01,
}

impl ChallengeKind {
    /// The RFC name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Http01 => "http-01",
            Self::Dns01 => "dns-01",
            Self::TlsAlpn01 => "tls-alpn-01",
            Self::DnsPersist01 => "dns-persist-01",
        }
    }

    /// Whether it is answered in DNS (and so can validate a wildcard).
    pub fn is_dns(self) -> bool {
        matches!(self, Self::Dns01 | Self::DnsPersist01)
    }
}

impl FromStr for ChallengeKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "http-01" => Ok(Self::Http01),
            "dns-01" => Ok(Self::Dns01),
            "tls-alpn-01" => Ok(Self::TlsAlpn01),
            "dns-persist-01" => Ok(Self::DnsPersist01),
            other => Err(format!(
                "unknown challenge {other:?} (http-01, dns-01, tls-alpn-01, dns-persist-01)"
            )),
        }
    }
}

impl fmt::Display for ChallengeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Parses `--key-type`: an [`akamu_jose::KeyType`] the bench makes CSRs
/// for (ECDSA P-256/P-384, RSA, Ed25519, ML-DSA-44/65/87).
fn csr_key_type(s: &str) -> Result<KeyType, String> {
    match s.parse::<KeyType>().map_err(|e| e.to_string())? {
        kt @ (KeyType::EcP256
        | KeyType::EcP384
        | KeyType::Rsa(_)
        | KeyType::Ed25519
        | KeyType::MlDsa(_)) => Ok(kt),
        other => Err(format!(
            "the bench makes no {other} CSRs (ec:P-256, ec:P-384, rsa:2048, rsa:3072, rsa:4096, \
             ed25519, ml-dsa-44, ml-dsa-65, ml-dsa-87)"
        )),
    }
}

/// Parses `--ca-key-type`: an [`akamu_jose::KeyType`] the signer generates
/// CA keys of (`[ca] key_type`: every type, ML-DSA and Ed448 included).
fn ca_key_type(s: &str) -> Result<KeyType, String> {
    s.parse::<KeyType>().map_err(|e| e.to_string())
}

/// Where the started CA keeps its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaBackend {
    /// A PEM file generated by the signer on first start.
    File,
    /// A SoftHSM2 token (PKCS#11), key made by a root ceremony.
    SoftHsm,
}

impl FromStr for CaBackend {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "file" => Ok(Self::File),
            "softhsm" | "pkcs11" => Ok(Self::SoftHsm),
            other => Err(format!("unknown CA backend {other:?} (file, softhsm)")),
        }
    }
}

impl fmt::Display for CaBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::File => "file",
            Self::SoftHsm => "pkcs11-softhsm2",
        })
    }
}

/// Report format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    /// Human-readable tables.
    Text,
    /// One JSON document (see [`crate::report::Report`]).
    Json,
}

impl FromStr for OutputFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "text" => Ok(Self::Text),
            "json" => Ok(Self::Json),
            other => Err(format!("unknown output {other:?} (text, json)")),
        }
    }
}

/// `NAME=PID` of an extra process to sample.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchPid {
    /// Label in the report.
    pub name: String,
    /// Process id.
    pub pid: i32,
}

impl FromStr for WatchPid {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (name, pid) = s
            .split_once('=')
            .ok_or_else(|| format!("expected NAME=PID, got {s:?}"))?;
        let pid: i32 = pid.parse().map_err(|_| format!("bad pid in {s:?}"))?;
        if name.is_empty() || pid <= 0 {
            return Err(format!("expected NAME=PID with a positive pid, got {s:?}"));
        }
        Ok(Self {
            name: name.to_owned(),
            pid,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Options, clap::Error> {
        Options::try_parse_from(std::iter::once("acme-bench").chain(args.iter().copied()))
    }

    #[test]
    fn defaults_follow_the_reference() {
        let o = parse(&[]).expect("parse");
        assert_eq!(o.clients, 10);
        assert_eq!(o.requests, 100);
        assert_eq!(o.warmup, 10);
        assert_eq!(o.poll_ms, 50);
        assert_eq!(o.challenge, ChallengeKind::Http01);
        assert_eq!(o.key_type, KeyType::EcP256);
        assert_eq!(o.ca_key_type, KeyType::EcP256);
        assert_eq!(o.ca_backend, CaBackend::File);
        assert_eq!(o.output, OutputFormat::Text);
        assert!(!o.verify_cert);
        assert!(o.managed());
        assert!(o.db.is_none());
        assert!(!o.wildcard && !o.rate_limits);
        assert_eq!(o.issuance_timeout_secs, 120);
        o.check().expect("defaults are consistent");
    }

    #[test]
    fn a_zero_issuance_timeout_is_refused() {
        let o = parse(&["--issuance-timeout-secs", "0"]).expect("parse");
        let err = o.check().expect_err("zero timeout");
        assert!(err.contains("--issuance-timeout-secs"), "{err}");
        let o = parse(&["--issuance-timeout-secs", "5"]).expect("parse");
        assert_eq!(o.issuance_timeout_secs, 5);
        o.check().expect("positive timeout");
    }

    #[test]
    fn every_option_parses() {
        let o = parse(&[
            "--clients",
            "25",
            "--requests",
            "300",
            "--warmup",
            "0",
            "--poll-ms",
            "5",
            "--challenge",
            "tls-alpn-01",
            "--key-type",
            "rsa:2048",
            "--ca-key-type",
            "ec:P-384",
            "--db",
            ":memory:",
            "--output",
            "json",
            "--verify-cert",
            "--http-port",
            "5002",
            "--tls-port",
            "5001",
            "--dns-port",
            "8053",
            "--watch-pid",
            "pebble=42",
            "--ca-backend",
            "softhsm",
        ])
        .expect("parse");
        assert_eq!(
            (o.clients, o.requests, o.warmup, o.poll_ms),
            (25, 300, 0, 5)
        );
        assert_eq!(o.challenge, ChallengeKind::TlsAlpn01);
        assert_eq!(o.key_type, KeyType::Rsa(2048));
        assert_eq!(o.ca_key_type, KeyType::EcP384);
        assert_eq!(o.db.as_deref(), Some(":memory:"));
        assert_eq!(o.output, OutputFormat::Json);
        assert!(o.verify_cert);
        assert_eq!((o.http_port, o.tls_port, o.dns_port), (5002, 5001, 8053));
        assert_eq!(
            o.watch_pids,
            vec![WatchPid {
                name: "pebble".into(),
                pid: 42
            }]
        );
        assert_eq!(o.ca_backend, CaBackend::SoftHsm);
        o.check().expect("consistent");
    }

    #[test]
    fn directory_needs_a_bundle_and_excludes_db() {
        assert!(parse(&["--directory", "https://127.0.0.1:14000/dir"]).is_err());
        assert!(parse(&["--ca-bundle", "x.pem"]).is_err());
        let o = parse(&[
            "--directory",
            "https://127.0.0.1:14000/dir",
            "--ca-bundle",
            "x.pem",
        ])
        .expect("parse");
        assert!(!o.managed());
        o.check().expect("consistent");
        let o = parse(&[
            "--directory",
            "https://x/dir",
            "--ca-bundle",
            "x.pem",
            "--db",
            ":memory:",
        ])
        .expect("parse");
        assert!(o.check().is_err());
    }

    #[test]
    fn http1_is_off_unless_asked() {
        assert!(!parse(&[]).expect("parse").http1);
        assert!(parse(&["--http1"]).expect("parse").http1);
    }

    #[test]
    fn bad_values_are_refused() {
        for args in [
            &["--clients", "0"][..],
            &["--requests", "0"],
            &["--poll-ms", "0"],
            &["--challenge", "dns-account-01"],
            &["--key-type", "ed448"],
            &["--ca-key-type", "ec:P-999"],
            &["--output", "xml"],
            &["--watch-pid", "pebble"],
            &["--watch-pid", "=3"],
            &["--ca-backend", "tpm"],
        ] {
            assert!(parse(args).is_err(), "{args:?} should be refused");
        }
        let o = parse(&["--http-port", "5002", "--tls-port", "5002"]).expect("parse");
        assert!(o.check().is_err(), "duplicate ports");
    }

    #[test]
    fn dns_persist_01_is_answered_and_needs_an_issuer_with_a_directory() {
        let o = parse(&["--challenge", "dns-persist-01"]).expect("parse");
        assert_eq!(o.challenge, ChallengeKind::DnsPersist01);
        assert!(o.challenge.is_dns());
        o.check().expect("the started CA has its own issuer domain");
        let remote = ["--directory", "https://x/dir", "--ca-bundle", "x.pem"];
        let o = parse(&[&remote[..], &["--challenge", "dns-persist-01"]].concat()).expect("parse");
        let err = o.check().expect_err("no issuer domain");
        assert!(err.contains("--persist-issuer-domain"), "{err}");
        let o = parse(
            &[
                &remote[..],
                &[
                    "--challenge",
                    "dns-persist-01",
                    "--persist-issuer-domain",
                    "ca.example",
                ],
            ]
            .concat(),
        )
        .expect("parse");
        assert_eq!(o.persist_issuer_domain.as_deref(), Some("ca.example"));
        o.check().expect("issuer given");
        // Only with --directory, only for dns-persist-01, only a name.
        assert!(parse(&["--persist-issuer-domain", "ca.example"]).is_err());
        let o = parse(&[&remote[..], &["--persist-issuer-domain", "ca.example"]].concat())
            .expect("parse");
        assert!(o.check().is_err(), "http-01 with an issuer domain");
        let o = parse(
            &[
                &remote[..],
                &[
                    "--challenge",
                    "dns-persist-01",
                    "--persist-issuer-domain",
                    "a; b",
                ],
            ]
            .concat(),
        )
        .expect("parse");
        assert!(o.check().is_err(), "not a domain name");
    }

    #[test]
    fn wildcard_needs_a_dns_challenge() {
        for ch in ["dns-01", "dns-persist-01"] {
            let o = parse(&["--wildcard", "--challenge", ch]).expect("parse");
            assert!(o.wildcard);
            o.check().expect("a DNS challenge validates a wildcard");
        }
        for ch in ["http-01", "tls-alpn-01"] {
            let o = parse(&["--wildcard", "--challenge", ch]).expect("parse");
            let err = o.check().expect_err("a wildcard needs a DNS challenge");
            assert!(err.contains("--wildcard") && err.contains(ch), "{err}");
        }
        let o = parse(&["--wildcard"]).expect("parse");
        assert!(o.check().is_err(), "the default http-01");
    }

    #[test]
    fn rate_limits_only_in_the_started_ca() {
        let o = parse(&["--rate-limits", "--mtc"]).expect("parse");
        assert!(o.rate_limits && o.mtc);
        o.check().expect("managed");
        let o = parse(&[
            "--rate-limits",
            "--directory",
            "https://x/dir",
            "--ca-bundle",
            "x.pem",
        ])
        .expect("parse");
        let err = o.check().expect_err("not managed");
        assert!(err.contains("--rate-limits"), "{err}");
    }

    #[test]
    fn names_round_trip() {
        for s in ["http-01", "dns-01", "tls-alpn-01", "dns-persist-01"] {
            assert_eq!(s.parse::<ChallengeKind>().expect("parse").to_string(), s);
        }
        for s in ["ec:P-256", "ec:P-384", "rsa:2048", "rsa:4096"] {
            assert_eq!(csr_key_type(s).expect("parse").to_string(), s);
        }
        for s in ["ec:P-256", "ec:P-521", "rsa:3072", "ed25519"] {
            assert_eq!(ca_key_type(s).expect("parse").to_string(), s);
        }
        assert_eq!(ca_key_type("P-384"), Ok(KeyType::EcP384));
        assert_eq!(
            ca_key_type("ml-dsa-65").expect("ml-dsa").to_string(),
            "ml-dsa-65"
        );
        assert!(ca_key_type("ml-dsa-66").is_err());
        for s in ["ed25519", "ml-dsa-44", "ml-dsa-65", "ml-dsa-87"] {
            assert_eq!(csr_key_type(s).expect("parse").to_string(), s);
        }
        assert!(csr_key_type("ed448").is_err());
    }
}
