//! The report: one JSON document (`--output json`) or text tables.
//!
//! # JSON schema (version 1)
//!
//! ```text
//! {
//!   "schema_version": 1,
//!   "tool": "acme-bench", "tool_version": "0.1.0",
//!   "started_at": "2026-11-22T10:00:00Z",          RFC 3339, UTC
//!   "machine": { "cpus": 2, "kernel": "6.1.0-…", "cpu_model": "…" },
//!   "target": {
//!     "directory": "https://localhost:PORT/acme/directory",
//!     "managed": true,                               the bench started Akāmu
//!     "ca_key_type": "ec:P-256" | null,              null when not managed
//!     "ca_backend": "file" | "pkcs11-softhsm2" | null,
//!     "db": "/tmp/…/akamu.db" | ":memory:" | null,
//!     "mtc": false | true | null,                     transparency log on
//!     "caa": true | null,                            CAA checked (always when managed)
//!     "rate_limits": false | true | null              every [rate_limits] table on
//!   },
//!   "config": { "clients": 25, "requests": 200, "warmup": 20, "poll_ms": 5,
//!               "challenge": "http-01", "key_type": "ec:P-256",
//!               "verify_cert": false, "wildcard": false, "http1": false },
//!   "summary": {
//!     "attempted": 200, "succeeded": 200, "failed": 0, "skipped": 0,
//!     "verified": 0,
//!     "elapsed_secs": 1.23,                          measured window only
//!     "throughput_per_sec": 162.6                    succeeded / elapsed_secs
//!   },
//!   "latency": {                                     successful issuances
//!     "total":     Summary, "new_order": Summary, "challenge": Summary,
//!     "finalize":  Summary, "download":  Summary
//!   },
//!   "errors": { "badNonce": 1, "timeout": 2 },       measured window, by type
//!   "error_samples": [ "…" ],                        up to 8 messages
//!   "warmup": { "succeeded": 20, "failed": 0, "elapsed_secs": 0.3 },
//!   "dns_queries": { "A": 0, "AAAA": 0,              answered by the bench's DNS
//!                    "CAA": 600, "TXT": 0 },         server, measured window
//!   "processes": [ {                                 empty without pids
//!     "name": "acme-frontend", "pid": 123,
//!     "peak_rss_bytes": 20000000,                    VmHWM after the run
//!     "rss_after_bytes": 15000000,                   VmRSS after the run
//!     "cpu_secs": 0.8,                               utime+stime, measured window
//!     "cpu_ms_per_cert": 4.0,                        cpu_secs·1000 / succeeded
//!     "heap_alloc_bytes_per_cert": 400000,           --heap-stats only: bytes
//!     "heap_allocations_per_cert": 3000              requested (incl. freed), calls
//!   } ],
//!   "load_generator": { "cpu_secs": 0.5, "cpu_ms_per_cert": 2.5,
//!                       "peak_rss_bytes": 30000000 }
//! }
//! Summary = { "count", "mean_ms", "min_ms", "p50_ms", "p95_ms", "p99_ms", "max_ms" }
//! ```
//!
//! Error types are ACME problem types without `urn:ietf:params:acme:error:`
//! (`badNonce`, `connection`, `unauthorized`, …) or the bench's own:
//! `timeout` (polling gave up, or `--issuance-timeout-secs` passed), `transport` (HTTP/TLS failure),
//! `orderInvalid` (invalid order with no error detail), `verify`
//! (`--verify-cert` refused the certificate), `client` (anything else).
//! Fields are only ever added; a removal or change of meaning bumps
//! `schema_version`.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::stats::Summary;

/// Current value of [`Report::schema_version`].
pub const SCHEMA_VERSION: u32 = 1;

/// The whole report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// `"acme-bench"`.
    pub tool: String,
    /// The bench's version.
    pub tool_version: String,
    /// When the run started (RFC 3339, UTC).
    pub started_at: String,
    /// Where it ran.
    pub machine: Machine,
    /// What was benchmarked.
    pub target: Target,
    /// The options that shape the load.
    pub config: RunConfig,
    /// Counts and throughput of the measured window.
    pub summary: RunSummary,
    /// Latency of successful measured issuances.
    pub latency: Latency,
    /// Failed measured issuances by error type.
    pub errors: BTreeMap<String, u64>,
    /// A few error messages.
    pub error_samples: Vec<String>,
    /// The warmup phase.
    pub warmup: Warmup,
    /// Queries the bench's DNS server answered in the measured window, by
    /// type (A, AAAA, CAA, TXT); absent in reports from before it counted.
    #[serde(default)]
    pub dns_queries: BTreeMap<String, u64>,
    /// Memory and CPU of the CA's processes (and `--watch-pid`s).
    pub processes: Vec<ProcessReport>,
    /// The bench's own CPU and memory.
    pub load_generator: LoadGenerator,
}

/// Host facts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Machine {
    /// Logical CPUs available to the bench.
    pub cpus: u32,
    /// `uname -r`.
    pub kernel: String,
    /// First `model name` of `/proc/cpuinfo`.
    pub cpu_model: String,
}

/// The server under test.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Target {
    /// Its ACME directory URL.
    pub directory: String,
    /// True when the bench started Akāmu itself.
    pub managed: bool,
    /// `[ca] key_type` of a started Akāmu.
    pub ca_key_type: Option<String>,
    /// Key backend of a started Akāmu.
    pub ca_backend: Option<String>,
    /// Database of a started Akāmu.
    pub db: Option<String>,
    /// Whether a started Akāmu had its transparency log on (`--mtc`);
    /// absent in reports from before it existed.
    #[serde(default)]
    pub mtc: Option<bool>,
    /// Whether a started Akāmu checked CAA (`caa_identities`, always on);
    /// absent in reports from before it did.
    #[serde(default)]
    pub caa: Option<bool>,
    /// Whether a started Akāmu had every `[rate_limits]` table on
    /// (`--rate-limits`); absent in reports from before it existed.
    #[serde(default)]
    pub rate_limits: Option<bool>,
}

/// The load's shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunConfig {
    /// Concurrent clients.
    pub clients: u32,
    /// Measured issuances requested.
    pub requests: u64,
    /// Warmup issuances.
    pub warmup: u64,
    /// Poll interval cap, ms.
    pub poll_ms: u64,
    /// Challenge type.
    pub challenge: String,
    /// Subscriber key type.
    pub key_type: String,
    /// Whether certificates were checked.
    pub verify_cert: bool,
    /// Whether each order was for a wildcard (`--wildcard`).
    #[serde(default)]
    pub wildcard: bool,
    /// Whether only HTTP/1.1 was offered to the server (`--http1`).
    #[serde(default)]
    pub http1: bool,
}

/// Counts and throughput of the measured window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    /// Issuances started.
    pub attempted: u64,
    /// Issuances that ended with a downloaded certificate.
    pub succeeded: u64,
    /// Issuances that failed.
    pub failed: u64,
    /// Issuances not started because `--max-secs` passed.
    pub skipped: u64,
    /// Certificates checked by `--verify-cert`.
    pub verified: u64,
    /// Wall time of the measured window.
    pub elapsed_secs: f64,
    /// `succeeded / elapsed_secs`.
    pub throughput_per_sec: f64,
}

/// Per-phase latency.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    /// new-order through download.
    pub total: Summary,
    /// newOrder POST.
    pub new_order: Summary,
    /// Challenge POST until the order is ready.
    pub challenge: Summary,
    /// Finalize POST until the order is valid.
    pub finalize: Summary,
    /// Certificate download.
    pub download: Summary,
}

/// The warmup phase, in brief.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Warmup {
    /// Successful warmup issuances.
    pub succeeded: u64,
    /// Failed warmup issuances.
    pub failed: u64,
    /// Its wall time.
    pub elapsed_secs: f64,
}

/// One sampled process.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProcessReport {
    /// `acme-frontend`, `ca-signer`, `validator-worker`, or a `--watch-pid` name.
    pub name: String,
    /// Its pid.
    pub pid: i32,
    /// `VmHWM` after the run, bytes.
    pub peak_rss_bytes: u64,
    /// `VmRSS` after the run, bytes.
    pub rss_after_bytes: u64,
    /// utime + stime during the measured window, seconds.
    pub cpu_secs: f64,
    /// `cpu_secs` in ms per successful measured issuance.
    pub cpu_ms_per_cert: f64,
    /// With `--heap-stats`: heap bytes requested (incl. freed) during the
    /// measured window per successful issuance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heap_alloc_bytes_per_cert: Option<f64>,
    /// With `--heap-stats`: heap allocation calls per successful issuance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heap_allocations_per_cert: Option<f64>,
}

/// The bench process itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoadGenerator {
    /// User + system CPU during the measured window, seconds.
    pub cpu_secs: f64,
    /// `cpu_secs` in ms per successful measured issuance.
    pub cpu_ms_per_cert: f64,
    /// `ru_maxrss`, bytes.
    pub peak_rss_bytes: u64,
}

/// `cpu_secs` as ms per certificate (0 when nothing was issued).
pub fn per_cert_ms(cpu_secs: f64, certs: u64) -> f64 {
    if certs == 0 {
        0.0
    } else {
        cpu_secs * 1e3 / certs as f64
    }
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

impl Report {
    /// With `--heap-stats`: heap bytes requested per issuance by the CA's
    /// processes together.
    pub fn heap_alloc_bytes_per_cert(&self) -> Option<f64> {
        let counted: Vec<f64> = self
            .processes
            .iter()
            .filter_map(|p| p.heap_alloc_bytes_per_cert)
            .collect();
        (!counted.is_empty()).then(|| counted.iter().sum())
    }

    /// Human-readable rendering.
    pub fn to_text(&self) -> String {
        let mut o = String::new();
        let c = &self.config;
        let s = &self.summary;
        let _ = writeln!(o, "acme-bench {} — {}", self.tool_version, self.started_at);
        let _ = writeln!(
            o,
            "  target:    {}{}",
            self.target.directory,
            if self.target.managed {
                format!(
                    " (started by the bench; CA key {} in {}, db {}{}{}{})",
                    self.target.ca_key_type.as_deref().unwrap_or("?"),
                    self.target.ca_backend.as_deref().unwrap_or("?"),
                    self.target.db.as_deref().unwrap_or("?"),
                    if self.target.caa == Some(true) {
                        ", CAA checked"
                    } else {
                        ""
                    },
                    if self.target.mtc == Some(true) {
                        ", transparency log on"
                    } else {
                        ""
                    },
                    if self.target.rate_limits == Some(true) {
                        ", rate limits on"
                    } else {
                        ""
                    }
                )
            } else {
                String::new()
            }
        );
        let _ = writeln!(
            o,
            "  machine:   {} CPUs, {}, kernel {}",
            self.machine.cpus, self.machine.cpu_model, self.machine.kernel
        );
        let _ = writeln!(
            o,
            "  load:      {} clients{}, {} requests (+{} warmup), {}{} with {} keys, poll cap {} ms{}",
            c.clients,
            if c.http1 { " (HTTP/1.1 only)" } else { "" },
            c.requests,
            c.warmup,
            if c.wildcard { "wildcards by " } else { "" },
            c.challenge,
            c.key_type,
            c.poll_ms,
            if c.verify_cert {
                ", certificates verified"
            } else {
                ""
            }
        );
        if !self.dns_queries.is_empty() {
            let _ = writeln!(
                o,
                "  dns:       {} queries answered in the measured window",
                self.dns_queries
                    .iter()
                    .map(|(t, n)| format!("{t} {n}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        let _ = writeln!(o);
        let _ = writeln!(
            o,
            "  issued {} of {} in {:.3} s: {:.1} issuances/s{}",
            s.succeeded,
            s.attempted,
            s.elapsed_secs,
            s.throughput_per_sec,
            if s.skipped > 0 {
                format!(" ({} skipped at --max-secs)", s.skipped)
            } else {
                String::new()
            }
        );
        let _ = writeln!(o);
        let _ = writeln!(
            o,
            "  {:<12} {:>9} {:>9} {:>9} {:>9} {:>9}",
            "phase (ms)", "mean", "p50", "p95", "p99", "max"
        );
        let l = &self.latency;
        for (name, sum) in [
            ("new-order", &l.new_order),
            ("challenge", &l.challenge),
            ("finalize", &l.finalize),
            ("download", &l.download),
            ("total", &l.total),
        ] {
            let _ = writeln!(
                o,
                "  {:<12} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>9.2}",
                name, sum.mean_ms, sum.p50_ms, sum.p95_ms, sum.p99_ms, sum.max_ms
            );
        }
        let _ = writeln!(o);
        if self.errors.is_empty() {
            let _ = writeln!(o, "  errors: none");
        } else {
            let _ = writeln!(o, "  errors:");
            for (k, v) in &self.errors {
                let _ = writeln!(o, "    {k:<24} {v}");
            }
            for m in &self.error_samples {
                let _ = writeln!(o, "    e.g. {m}");
            }
        }
        let _ = writeln!(o);
        let _ = writeln!(
            o,
            "  {:<18} {:>8} {:>14} {:>14} {:>10} {:>13}",
            "process", "pid", "peak RSS MiB", "RSS after MiB", "CPU s", "CPU ms/cert"
        );
        for p in &self.processes {
            let _ = writeln!(
                o,
                "  {:<18} {:>8} {:>14.1} {:>14.1} {:>10.3} {:>13.3}",
                p.name,
                p.pid,
                mib(p.peak_rss_bytes),
                mib(p.rss_after_bytes),
                p.cpu_secs,
                p.cpu_ms_per_cert
            );
        }
        if let Some(total) = self.heap_alloc_bytes_per_cert() {
            let _ = writeln!(
                o,
                "  heap requested (incl. freed): {:.3} MiB/iss. ({})",
                total / (1024.0 * 1024.0),
                self.processes
                    .iter()
                    .filter_map(|p| Some(format!(
                        "{} {:.3} MiB, {:.0} allocations",
                        p.name,
                        p.heap_alloc_bytes_per_cert? / (1024.0 * 1024.0),
                        p.heap_allocations_per_cert.unwrap_or(0.0)
                    )))
                    .collect::<Vec<_>>()
                    .join("; ")
            );
        }
        let g = &self.load_generator;
        let _ = writeln!(
            o,
            "  {:<18} {:>8} {:>14.1} {:>14} {:>10.3} {:>13.3}",
            "(load generator)",
            std::process::id(),
            mib(g.peak_rss_bytes),
            "-",
            g.cpu_secs,
            g.cpu_ms_per_cert
        );
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(n: u64) -> Summary {
        Summary {
            count: n,
            mean_ms: 1.5,
            min_ms: 1.0,
            p50_ms: 1.4,
            p95_ms: 2.0,
            p99_ms: 2.5,
            max_ms: 3.0,
        }
    }

    /// A filled-in report, as a run would produce.
    pub(super) fn sample() -> Report {
        Report {
            schema_version: SCHEMA_VERSION,
            tool: "acme-bench".into(),
            tool_version: "0.1.0".into(),
            started_at: "2026-11-22T10:00:00Z".into(),
            machine: Machine {
                cpus: 2,
                kernel: "6.1.0".into(),
                cpu_model: "Test CPU".into(),
            },
            target: Target {
                directory: "https://localhost:1/acme/directory".into(),
                managed: true,
                ca_key_type: Some("ec:P-256".into()),
                ca_backend: Some("file".into()),
                db: Some(":memory:".into()),
                mtc: Some(false),
                caa: Some(true),
                rate_limits: Some(true),
            },
            config: RunConfig {
                clients: 2,
                requests: 5,
                warmup: 1,
                poll_ms: 5,
                challenge: "http-01".into(),
                key_type: "ec:P-256".into(),
                verify_cert: true,
                wildcard: false,
                http1: false,
            },
            summary: RunSummary {
                attempted: 5,
                succeeded: 4,
                failed: 1,
                skipped: 0,
                verified: 4,
                elapsed_secs: 0.5,
                throughput_per_sec: 8.0,
            },
            latency: Latency {
                total: summary(4),
                new_order: summary(4),
                challenge: summary(4),
                finalize: summary(4),
                download: summary(4),
            },
            errors: BTreeMap::from([("badNonce".to_owned(), 1)]),
            error_samples: vec!["new-order: API error".into()],
            warmup: Warmup {
                succeeded: 1,
                failed: 0,
                elapsed_secs: 0.1,
            },
            dns_queries: BTreeMap::from([("CAA".to_owned(), 12), ("TXT".to_owned(), 0)]),
            processes: vec![ProcessReport {
                name: "acme-frontend".into(),
                pid: 10,
                peak_rss_bytes: 20 << 20,
                rss_after_bytes: 15 << 20,
                cpu_secs: 0.2,
                cpu_ms_per_cert: 50.0,
                heap_alloc_bytes_per_cert: None,
                heap_allocations_per_cert: None,
            }],
            load_generator: LoadGenerator {
                cpu_secs: 0.1,
                cpu_ms_per_cert: 25.0,
                peak_rss_bytes: 30 << 20,
            },
        }
    }

    #[test]
    fn json_has_the_documented_shape() {
        let v = serde_json::to_value(sample()).expect("serialize");
        let keys = |v: &serde_json::Value| -> Vec<String> {
            let mut k: Vec<String> = v.as_object().expect("object").keys().cloned().collect();
            k.sort();
            k
        };
        assert_eq!(
            keys(&v),
            [
                "config",
                "dns_queries",
                "error_samples",
                "errors",
                "latency",
                "load_generator",
                "machine",
                "processes",
                "schema_version",
                "started_at",
                "summary",
                "target",
                "tool",
                "tool_version",
                "warmup",
            ]
        );
        assert_eq!(v["schema_version"], 1);
        assert_eq!(
            keys(&v["summary"]),
            [
                "attempted",
                "elapsed_secs",
                "failed",
                "skipped",
                "succeeded",
                "throughput_per_sec",
                "verified",
            ]
        );
        assert_eq!(
            keys(&v["latency"]),
            ["challenge", "download", "finalize", "new_order", "total"]
        );
        assert_eq!(
            keys(&v["latency"]["total"]),
            [
                "count", "max_ms", "mean_ms", "min_ms", "p50_ms", "p95_ms", "p99_ms"
            ]
        );
        assert_eq!(
            keys(&v["processes"][0]),
            [
                "cpu_ms_per_cert",
                "cpu_secs",
                "name",
                "peak_rss_bytes",
                "pid",
                "rss_after_bytes",
            ]
        );
        assert_eq!(
            keys(&v["load_generator"]),
            ["cpu_ms_per_cert", "cpu_secs", "peak_rss_bytes"]
        );
        assert_eq!(
            keys(&v["target"]),
            [
                "ca_backend",
                "ca_key_type",
                "caa",
                "db",
                "directory",
                "managed",
                "mtc",
                "rate_limits",
            ]
        );
        assert_eq!(v["errors"]["badNonce"], 1);
        assert!(v["summary"]["throughput_per_sec"].is_f64());
        assert!(v["processes"][0]["peak_rss_bytes"].is_u64());
    }

    #[test]
    fn json_round_trips() {
        let r = sample();
        let text = serde_json::to_string_pretty(&r).expect("serialize");
        let back: Report = serde_json::from_str(&text).expect("parse");
        assert_eq!(back, r);
    }

    #[test]
    fn unmanaged_targets_have_nulls() {
        let mut r = sample();
        r.target = Target {
            directory: "https://127.0.0.1:14000/dir".into(),
            managed: false,
            ca_key_type: None,
            ca_backend: None,
            db: None,
            mtc: None,
            caa: None,
            rate_limits: None,
        };
        let v = serde_json::to_value(&r).expect("serialize");
        assert!(v["target"]["ca_key_type"].is_null());
        assert_eq!(v["target"]["managed"], false);
    }

    #[test]
    fn text_names_every_phase_and_process() {
        let t = sample().to_text();
        for needle in [
            "new-order",
            "challenge",
            "finalize",
            "download",
            "total",
            "acme-frontend",
            "(load generator)",
            "badNonce",
            "8.0 issuances/s",
            "CAA checked",
            "rate limits on",
            "CAA 12, TXT 0 queries",
        ] {
            assert!(t.contains(needle), "{needle} missing from:\n{t}");
        }
    }

    #[test]
    fn reports_from_before_the_new_fields_still_parse() {
        let mut v = serde_json::to_value(sample()).expect("serialize");
        let o = v.as_object_mut().expect("object");
        o.remove("dns_queries");
        for k in ["caa", "rate_limits", "mtc"] {
            o["target"].as_object_mut().expect("target").remove(k);
        }
        o["config"]
            .as_object_mut()
            .expect("config")
            .remove("wildcard");
        o["config"].as_object_mut().expect("config").remove("http1");
        let old: Report = serde_json::from_value(v).expect("an older report");
        assert_eq!((old.target.caa, old.target.rate_limits), (None, None));
        assert!(!old.config.wildcard && !old.config.http1 && old.dns_queries.is_empty());
    }

    #[test]
    fn per_cert_handles_zero() {
        assert_eq!(per_cert_ms(1.0, 0), 0.0);
        assert!((per_cert_ms(0.5, 100) - 5.0).abs() < 1e-12);
    }
}
