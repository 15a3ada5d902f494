//! Prometheus metrics of the whole CA, served on a separate listener
//! (`[metrics] listen_addr`, off by default; see [`server`]).
//!
//! The frontend's own figures live in one process-wide [`Metrics`]
//! (prometheus-client counters and histograms, a few atomic adds per
//! request); the recording functions below are what the request path, the
//! jobs, the RPC clients and the store call. Labels come from small fixed
//! sets: endpoint names from the resource table, statuses, ACME problem
//! types, challenge types, peers and methods — never URLs or ids.
//!
//! The signer and the validator have no listener of their own: at scrape
//! time [`scrape`] asks each for its figures over its `metrics` RPC, with a
//! deadline, and [`remote`] turns the answers (and every process's CPU and
//! memory, the CRL's age) into metric families. A peer that does not answer
//! is `akamu_<peer>_up 0` and the scrape still succeeds.

pub mod remote;
pub mod server;

use std::sync::LazyLock;
use std::time::Duration;

use prometheus_client::encoding::{EncodeLabel, EncodeLabelSet, LabelSetEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::App;

/// How long a scrape waits for the signer's and the validator's figures.
pub const PEER_DEADLINE: Duration = Duration::from_secs(2);

/// Latency buckets for RPCs, database commits and issuance, seconds.
const LATENCY_BUCKETS: [f64; 16] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0,
    40.0,
];

/// Buckets for the number of jobs in one database commit (the writer takes
/// at most 64).
const BATCH_BUCKETS: [f64; 7] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0];

/// `endpoint` and `status` of an HTTP request.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
struct RequestLabels {
    endpoint: &'static str,
    status: u16,
}

/// The ACME problem `type` (without its URN prefix).
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
struct ProblemLabels {
    kind: String,
}

/// A validation's challenge type and result (`valid` or a problem type).
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
struct ValidationLabels {
    challenge: &'static str,
    result: &'static str,
}

/// An RPC's peer and method.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
struct RpcLabels {
    peer: &'static str,
    method: &'static str,
}

/// A failed RPC: peer, method and what failed.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
struct RpcErrorLabels {
    peer: &'static str,
    method: &'static str,
    error: &'static str,
}

/// A single `&'static str` label (`sync`, `limit`).
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
struct OneLabel(&'static str, &'static str);

impl EncodeLabelSet for RequestLabels {
    fn encode(&self, encoder: &mut LabelSetEncoder) -> Result<(), std::fmt::Error> {
        ("endpoint", self.endpoint).encode(encoder.encode_label())?;
        ("status", self.status).encode(encoder.encode_label())
    }
}

impl EncodeLabelSet for ProblemLabels {
    fn encode(&self, encoder: &mut LabelSetEncoder) -> Result<(), std::fmt::Error> {
        ("type", self.kind.as_str()).encode(encoder.encode_label())
    }
}

impl EncodeLabelSet for ValidationLabels {
    fn encode(&self, encoder: &mut LabelSetEncoder) -> Result<(), std::fmt::Error> {
        ("challenge", self.challenge).encode(encoder.encode_label())?;
        ("result", self.result).encode(encoder.encode_label())
    }
}

impl EncodeLabelSet for RpcLabels {
    fn encode(&self, encoder: &mut LabelSetEncoder) -> Result<(), std::fmt::Error> {
        ("peer", self.peer).encode(encoder.encode_label())?;
        ("method", self.method).encode(encoder.encode_label())
    }
}

impl EncodeLabelSet for RpcErrorLabels {
    fn encode(&self, encoder: &mut LabelSetEncoder) -> Result<(), std::fmt::Error> {
        ("peer", self.peer).encode(encoder.encode_label())?;
        ("method", self.method).encode(encoder.encode_label())?;
        ("error", self.error).encode(encoder.encode_label())
    }
}

impl EncodeLabelSet for OneLabel {
    fn encode(&self, encoder: &mut LabelSetEncoder) -> Result<(), std::fmt::Error> {
        (self.0, self.1).encode(encoder.encode_label())
    }
}

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

/// The frontend's own metrics, registered once.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    problems: Family<ProblemLabels, Counter>,
    issuance: Histogram,
    issued: Counter,
    revoked: Counter,
    validations: Family<ValidationLabels, Counter>,
    rpc_seconds: Family<RpcLabels, Histogram, fn() -> Histogram>,
    rpc_errors: Family<RpcErrorLabels, Counter>,
    db_commit_seconds: Family<OneLabel, Histogram, fn() -> Histogram>,
    db_batch_jobs: Histogram,
    rate_limit_refusals: Family<OneLabel, Counter>,
}

impl Metrics {
    fn new() -> Self {
        let mut m = Self {
            registry: Registry::default(),
            requests: Family::default(),
            problems: Family::default(),
            issuance: latency_histogram(),
            issued: Counter::default(),
            revoked: Counter::default(),
            validations: Family::default(),
            rpc_seconds: Family::new_with_constructor(latency_histogram),
            rpc_errors: Family::default(),
            db_commit_seconds: Family::new_with_constructor(latency_histogram),
            db_batch_jobs: Histogram::new(BATCH_BUCKETS),
            rate_limit_refusals: Family::default(),
        };
        let r = &mut m.registry;
        r.register(
            "akamu_http_requests",
            "ACME requests answered, by endpoint (a row of the resource table, crl, or unknown) and HTTP status",
            m.requests.clone(),
        );
        r.register(
            "akamu_problems",
            "Problem documents returned, by ACME problem type",
            m.problems.clone(),
        );
        r.register(
            "akamu_issuance_duration_seconds",
            "Time from the start of an issuance attempt (order processing) to the certificate committed",
            m.issuance.clone(),
        );
        r.register(
            "akamu_certificates_issued",
            "Certificates issued and stored",
            m.issued.clone(),
        );
        r.register(
            "akamu_certificates_revoked",
            "Certificates revoked through ACME revokeCert",
            m.revoked.clone(),
        );
        r.register(
            "akamu_validations",
            "Challenge validations finished, by challenge type and result (valid, or the ACME problem type)",
            m.validations.clone(),
        );
        r.register(
            "akamu_rpc_duration_seconds",
            "Duration of RPC calls to the signer and the validator that got an answer, by peer and method",
            m.rpc_seconds.clone(),
        );
        r.register(
            "akamu_rpc_errors",
            "RPC calls to the signer and the validator that failed (connect, transport or deadline), by peer and method",
            m.rpc_errors.clone(),
        );
        r.register(
            "akamu_db_commit_duration_seconds",
            "Duration of database commits of the single writer, by synchronous mode (normal, full)",
            m.db_commit_seconds.clone(),
        );
        r.register(
            "akamu_db_batch_jobs",
            "Write jobs committed together in one database transaction",
            m.db_batch_jobs.clone(),
        );
        r.register(
            "akamu_rate_limit_refusals",
            "Requests refused by a rate limit, by limit",
            m.rate_limit_refusals.clone(),
        );
        m
    }
}

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// Counts an answered ACME request. `endpoint` is a name from the resource
/// table (`Resource::name`), `crl` or `unknown`.
pub fn request(endpoint: &'static str, status: u16) {
    METRICS
        .requests
        .get_or_create(&RequestLabels { endpoint, status })
        .inc();
}

/// Counts a problem document of type `urn` (the full `type` URN).
pub fn problem(urn: &str) {
    let kind = urn
        .strip_prefix(crate::error::ACME_ERROR_NS)
        .unwrap_or(urn)
        .to_owned();
    METRICS
        .problems
        .get_or_create(&ProblemLabels { kind })
        .inc();
}

/// Records an issuance that committed its certificate after `elapsed`.
pub fn issued(elapsed: Duration) {
    METRICS.issuance.observe(elapsed.as_secs_f64());
    METRICS.issued.inc();
}

/// Counts a certificate revoked through ACME.
pub fn revoked() {
    METRICS.revoked.inc();
}

/// Counts a finished validation: `result` is `valid` or an ACME problem
/// type name.
pub fn validation(challenge: &'static str, result: &'static str) {
    METRICS
        .validations
        .get_or_create(&ValidationLabels { challenge, result })
        .inc();
}

/// Records one RPC attempt to `peer`: its duration if it was answered, or
/// what failed (`connect`, `transport`, `deadline`).
pub fn rpc(peer: &'static str, method: &'static str, outcome: Result<Duration, &'static str>) {
    match outcome {
        Ok(elapsed) => METRICS
            .rpc_seconds
            .get_or_create(&RpcLabels { peer, method })
            .observe(elapsed.as_secs_f64()),
        Err(error) => {
            METRICS
                .rpc_errors
                .get_or_create(&RpcErrorLabels {
                    peer,
                    method,
                    error,
                })
                .inc();
        }
    }
}

/// Records a database commit of `jobs` write jobs that took `elapsed`
/// (`durable`: committed with `synchronous = FULL`).
pub fn db_commit(elapsed: Duration, jobs: usize, durable: bool) {
    let sync = if durable { "full" } else { "normal" };
    METRICS
        .db_commit_seconds
        .get_or_create(&OneLabel("sync", sync))
        .observe(elapsed.as_secs_f64());
    METRICS.db_batch_jobs.observe(jobs as f64);
}

/// Counts a request refused by the rate limit named `limit` (a name from
/// the rate limiter's fixed set, never a client-chosen value). Exposed as
/// `akamu_rate_limit_refusals_total{limit="…"}`.
pub fn rate_limit_refused(limit: &'static str) {
    METRICS
        .rate_limit_refusals
        .get_or_create(&OneLabel("limit", limit))
        .inc();
}

/// One scrape: the frontend's metrics, then the figures asked of the signer
/// and the validator (each within [`PEER_DEADLINE`]), every process's CPU
/// and memory and the CRL's age, in the Prometheus text format 0.0.4.
pub async fn scrape(app: &App) -> Result<String, std::fmt::Error> {
    let (signer, validator) = tokio::join!(
        app.peers.signer_metrics(PEER_DEADLINE),
        app.peers.validator_metrics(PEER_DEADLINE),
    );
    let mut per_scrape = Registry::default();
    per_scrape.register_collector(Box::new(remote::Figures {
        frontend: daemon_kit::figures::process_figures(),
        signer,
        validator,
        crl_this_update: app.crl.this_update(),
        now: crate::now(),
        jobs_lease_held: app.leader.fleet().then(|| app.leader.is_leader()),
    }));
    let mut text = String::new();
    prometheus_client::encoding::prometheus_text::encode(&mut text, &METRICS.registry)?;
    prometheus_client::encoding::prometheus_text::encode(&mut text, &per_scrape)?;
    Ok(text)
}
