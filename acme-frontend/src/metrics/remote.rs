//! The metric families made at scrape time: the figures the signer and the
//! validator sent over their `metrics` RPC, every process's CPU and memory,
//! whether each peer answered, and the age of the CRL being served.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use shared_proto::metrics::{HeapFigures, Histogram, ProcessFigures};
use shared_proto::signer::SignerMetrics;
use shared_proto::validator::ValidatorMetrics;

/// What one scrape learnt; encoded once, then dropped.
#[derive(Debug)]
pub struct Figures {
    /// This process's CPU and memory.
    pub frontend: ProcessFigures,
    /// The signer's answer, if it answered in time.
    pub signer: Option<SignerMetrics>,
    /// The validator's answer, if it answered in time.
    pub validator: Option<ValidatorMetrics>,
    /// `thisUpdate` of the CRL being served (Unix seconds), if any.
    pub crl_this_update: Option<i64>,
    /// Now, Unix seconds.
    pub now: i64,
    /// With `[fleet] enabled`: whether this front end holds the jobs lease.
    pub jobs_lease_held: Option<bool>,
}

type Fmt = Result<(), std::fmt::Error>;

/// A heap counter family: name, help and how to read its value.
type HeapFamily = (&'static str, &'static str, fn(&HeapFigures) -> u64);

/// A per-process family: name, help, type and how to read its value.
type ProcessFamily = (
    &'static str,
    &'static str,
    MetricType,
    fn(&ProcessFigures) -> f64,
);

fn counter(e: &mut DescriptorEncoder, name: &str, help: &str, v: u64) -> Fmt {
    let c = ConstCounter::new(v);
    c.encode(e.encode_descriptor(name, help, None, c.metric_type())?)
}

fn gauge(e: &mut DescriptorEncoder, name: &str, help: &str, v: i64) -> Fmt {
    let g = ConstGauge::new(v);
    g.encode(e.encode_descriptor(name, help, None, g.metric_type())?)
}

fn histogram(e: &mut DescriptorEncoder, name: &str, help: &str, h: &Histogram) -> Fmt {
    let mut m = e.encode_descriptor(name, help, None, MetricType::Histogram)?;
    let buckets: Vec<(f64, u64)> = h
        .bounds
        .iter()
        .copied()
        .chain(std::iter::once(f64::INFINITY))
        .zip(h.counts.iter().copied())
        .collect();
    m.encode_histogram::<NoLabelSet>(h.sum, h.count, &buckets, None)
}

impl Collector for Figures {
    fn encode(&self, mut e: DescriptorEncoder) -> Fmt {
        let processes: Vec<(&str, &ProcessFigures)> = [
            Some(("frontend", &self.frontend)),
            self.signer.as_ref().map(|s| ("signer", &s.process)),
            self.validator.as_ref().map(|v| ("validator", &v.process)),
        ]
        .into_iter()
        .flatten()
        .collect();
        self.encode_processes(&mut e, &processes)?;
        gauge(
            &mut e,
            "akamu_signer_up",
            "Whether the signer answered this scrape's metrics RPC in time (1) or not (0).",
            i64::from(self.signer.is_some()),
        )?;
        gauge(
            &mut e,
            "akamu_validator_up",
            "Whether the validator answered this scrape's metrics RPC in time (1) or not (0).",
            i64::from(self.validator.is_some()),
        )?;
        if let Some(s) = &self.signer {
            encode_signer(&mut e, s)?;
        }
        if let Some(v) = &self.validator {
            encode_validator(&mut e, v)?;
        }
        if let Some(this_update) = self.crl_this_update {
            gauge(
                &mut e,
                "akamu_crl_age_seconds",
                "Seconds since thisUpdate of the CRL being served.",
                (self.now - this_update).max(0),
            )?;
        }
        if let Some(held) = self.jobs_lease_held {
            gauge(
                &mut e,
                "akamu_fleet_jobs_lease_held",
                "1 while this front end holds the jobs lease and runs the background jobs.",
                i64::from(held),
            )?;
        }
        Ok(())
    }
}

impl Figures {
    fn encode_processes(
        &self,
        e: &mut DescriptorEncoder,
        processes: &[(&str, &ProcessFigures)],
    ) -> Fmt {
        let families: [ProcessFamily; 4] = [
            (
                "akamu_process_cpu_seconds",
                "User and system CPU time spent by each process, seconds.",
                MetricType::Counter,
                |p| p.cpu_seconds,
            ),
            (
                "akamu_process_resident_memory_bytes",
                "Resident memory of each process, bytes.",
                MetricType::Gauge,
                |p| p.resident_memory_bytes as f64,
            ),
            (
                "akamu_process_virtual_memory_bytes",
                "Virtual memory of each process, bytes.",
                MetricType::Gauge,
                |p| p.virtual_memory_bytes as f64,
            ),
            (
                "akamu_process_start_time_seconds",
                "Start time of each process since the Unix epoch, seconds.",
                MetricType::Gauge,
                |p| p.start_time_seconds,
            ),
        ];
        for (name, help, kind, value) in families {
            let mut m = e.encode_descriptor(name, help, None, kind)?;
            for (process, figures) in processes {
                let labels = [("process", *process)];
                let family = m.encode_family(&labels)?;
                match kind {
                    MetricType::Counter => ConstCounter::new(value(figures)).encode(family)?,
                    _ => ConstGauge::new(value(figures)).encode(family)?,
                }
            }
        }
        let counted: Vec<(&str, HeapFigures)> = processes
            .iter()
            .filter_map(|(process, figures)| figures.heap.map(|h| (*process, h)))
            .collect();
        if counted.is_empty() {
            return Ok(());
        }
        let heap: [HeapFamily; 3] = [
            (
                "akamu_process_heap_allocated_bytes",
                "Bytes requested from the heap, including those freed again (AKAMU_HEAP_STATS=1 only).",
                |h| h.allocated_bytes,
            ),
            (
                "akamu_process_heap_allocations",
                "Heap allocation calls (AKAMU_HEAP_STATS=1 only).",
                |h| h.allocations,
            ),
            (
                "akamu_process_heap_freed_bytes",
                "Bytes given back to the heap (AKAMU_HEAP_STATS=1 only).",
                |h| h.freed_bytes,
            ),
        ];
        for (name, help, value) in heap {
            let mut m = e.encode_descriptor(name, help, None, MetricType::Counter)?;
            for (process, figures) in &counted {
                let labels = [("process", *process)];
                let family = m.encode_family(&labels)?;
                ConstCounter::new(value(figures)).encode(family)?;
            }
        }
        Ok(())
    }
}

fn encode_signer(e: &mut DescriptorEncoder, s: &SignerMetrics) -> Fmt {
    {
        let mut m = e.encode_descriptor(
            "akamu_signer_signatures",
            "Signatures made with the CA key, by kind (certificate, crl).",
            None,
            MetricType::Counter,
        )?;
        for (kind, v) in [
            ("certificate", s.certificates_signed),
            ("crl", s.crls_signed),
        ] {
            ConstCounter::new(v).encode(m.encode_family(&[("kind", kind)])?)?;
        }
    }
    counter(
        e,
        "akamu_signer_refusals",
        "Issue requests the signer refused by policy (audited).",
        s.refusals,
    )?;
    counter(
        e,
        "akamu_signer_repeated_requests",
        "Repeated issue requests answered with the certificate already signed.",
        s.repeated_requests,
    )?;
    counter(
        e,
        "akamu_signer_key_errors",
        "Signing operations with the CA key (file or HSM) that failed.",
        s.key_errors,
    )?;
    counter(
        e,
        "akamu_signer_audit_errors",
        "Audit-log appends that failed.",
        s.audit_errors,
    )?;
    histogram(
        e,
        "akamu_signer_sign_duration_seconds",
        "Duration of each signature with the CA key.",
        &s.sign_seconds,
    )?;
    histogram(
        e,
        "akamu_signer_audit_append_duration_seconds",
        "Duration of each audit-log append, fsync included.",
        &s.audit_append_seconds,
    )?;
    if let Some(log) = &s.log {
        gauge(
            e,
            "akamu_log_entries",
            "Entries in the transparency log.",
            i64::try_from(log.entries).unwrap_or(i64::MAX),
        )?;
        gauge(
            e,
            "akamu_log_checkpoint_entries",
            "Entries the newest signed checkpoint of the transparency log covers.",
            i64::try_from(log.checkpoint_entries).unwrap_or(i64::MAX),
        )?;
        gauge(
            e,
            "akamu_log_checkpoint_timestamp_seconds",
            "When the newest checkpoint of the transparency log was signed (Unix seconds).",
            log.checkpoint_time,
        )?;
    }
    Ok(())
}

fn encode_validator(e: &mut DescriptorEncoder, v: &ValidatorMetrics) -> Fmt {
    // A family without samples is left out, as prometheus-client does.
    if !v.probes.is_empty() {
        let mut m = e.encode_descriptor(
            "akamu_validator_probes",
            "Probes the validator finished, by challenge type and result (valid, or the ACME problem type).",
            None,
            MetricType::Counter,
        )?;
        for p in &v.probes {
            let result = p.problem.map_or("valid", |k| k.acme_type());
            let labels = [("challenge", p.challenge.as_str()), ("result", result)];
            ConstCounter::new(p.count).encode(m.encode_family(&labels)?)?;
        }
    }
    histogram(
        e,
        "akamu_validator_probe_duration_seconds",
        "Duration of each probe (resolution, connection and statement included).",
        &v.probe_seconds,
    )
}
