//! `acme-bench`: issuance throughput, per-phase latency, and memory and CPU
//! per certificate of each CA process, for Akāmu or any RFC 8555 server.
//!
//! [`run`] does one benchmark: start the responders (http-01, tls-alpn-01,
//! DNS) on loopback, start Akāmu unless `--directory` names a server,
//! create one account per client, run the warmup, sample the processes, run
//! the measured window, sample again, and build a [`report::Report`].

pub mod ca;
pub mod heap;
pub mod load;
pub mod options;
pub mod procstat;
pub mod report;
pub mod responders;
pub mod stats;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};

use crate::ca::{ManagedCa, Targets};
use crate::load::{LoadConfig, PhaseResult};
use crate::options::Options;
use crate::procstat::{ProcSample, SelfSample};
use crate::report::{
    Latency, LoadGenerator, Machine, ProcessReport, Report, RunConfig, RunSummary, Target, Warmup,
    per_cert_ms,
};
use crate::responders::Responders;
use crate::stats::Summary;

/// Prints a progress line on stderr (stdout carries only the report).
fn progress(msg: &str) {
    eprintln!("[acme-bench] {msg}");
}

/// Runs one benchmark as described by `opts`.
pub async fn run(opts: &Options) -> Result<Report> {
    opts.check().map_err(|e| anyhow!(e))?;
    let started_at = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let run_deadline = Instant::now() + Duration::from_secs(opts.max_secs);

    let responders =
        Arc::new(Responders::start(opts.http_port, opts.tls_port, opts.dns_port).await?);
    progress(&format!(
        "responders: http-01 {}, tls-alpn-01 {}, dns {}",
        responders.http_addr, responders.tls_addr, responders.dns_addr
    ));

    let managed = if opts.managed() {
        let bin_dir = match &opts.bin_dir {
            Some(d) => d.clone(),
            None => default_bin_dir()?,
        };
        let targets = Targets {
            http_port: responders.http_addr.port(),
            tls_port: responders.tls_addr.port(),
            dns: responders.dns_addr,
        };
        // The started CA checks CAA (`caa_identities`): the zone's record
        // set names it.
        responders.allow_ca(responders::CA_IDENTITY);
        let (opts2, bin_dir2) = (opts.clone(), bin_dir.clone());
        let ca = tokio::task::spawn_blocking(move || ManagedCa::start(&opts2, &bin_dir2, targets))
            .await??;
        progress(&format!(
            "started Akāmu from {}: {} (pids {:?})",
            bin_dir.display(),
            ca.ready.directory,
            ca.pids()
        ));
        Some(ca)
    } else {
        None
    };
    let result = measure(
        opts,
        &responders,
        managed.as_ref(),
        run_deadline,
        started_at,
    )
    .await;
    if let (Err(_), Some(ca)) = (&result, &managed) {
        progress(&format!("Akāmu's log (last lines):\n{}", ca.log_tail(30)));
    }
    drop(managed);
    result
}

async fn measure(
    opts: &Options,
    responders: &Arc<Responders>,
    managed: Option<&ManagedCa>,
    run_deadline: Instant,
    started_at: String,
) -> Result<Report> {
    let (directory, bundle): (String, PathBuf) = match managed {
        Some(ca) => (ca.ready.directory.clone(), ca.ready.ca_cert.clone()),
        None => (
            opts.directory.clone().unwrap_or_default(),
            opts.ca_bundle.clone().unwrap_or_default(),
        ),
    };
    let mut pids: Vec<(String, i32)> = managed.map(ManagedCa::pids).unwrap_or_default();
    pids.extend(opts.watch_pids.iter().map(|w| (w.name.clone(), w.pid)));

    let account_deadline = Duration::from_secs(opts.issuance_timeout_secs);
    let accounts = tokio::time::timeout(
        account_deadline,
        load::create_accounts(
            &directory,
            &bundle,
            opts.clients,
            opts.accounts.as_deref(),
            opts.http1,
        ),
    )
    .await
    .map_err(|_| anyhow!("no answer from {directory} within {account_deadline:?}"))?
    .context("creating the accounts")?;
    progress(&format!("{} accounts created", accounts.len()));

    let cfg = Arc::new(LoadConfig {
        directory: directory.clone(),
        challenge: opts.challenge,
        key_type: opts.key_type,
        poll_cap: Duration::from_millis(opts.poll_ms),
        poll_timeout: Duration::from_secs(opts.poll_timeout_secs),
        issuance_timeout: Duration::from_secs(opts.issuance_timeout_secs),
        verify_cert: opts.verify_cert,
        run_tag: run_tag(),
        wildcard: opts.wildcard,
        persist_issuer: match managed {
            Some(_) => Some(responders::CA_IDENTITY.to_owned()),
            None => opts.persist_issuer_domain.clone(),
        },
    });
    let warm = if opts.warmup > 0 {
        let csrs = load::make_csrs(&cfg, 0, opts.warmup).await;
        let w = load::run_phase(
            cfg.clone(),
            responders.clone(),
            &accounts,
            (0, opts.warmup),
            csrs,
            run_deadline,
        )
        .await;
        progress(&format!(
            "warmup: {} ok, {} failed in {:.2} s",
            w.ok.len(),
            w.failed(),
            w.elapsed.as_secs_f64()
        ));
        w
    } else {
        PhaseResult::default()
    };

    let csrs = load::make_csrs(&cfg, opts.warmup, opts.requests).await;
    let metrics_url = managed.and_then(|ca| ca.metrics_url.clone());
    let heap_before = match &metrics_url {
        Some(url) => Some(heap::scrape(url).await.context("heap counters before")?),
        None => None,
    };
    let before: Vec<Option<ProcSample>> = pids.iter().map(|(_, p)| procstat::sample(*p)).collect();
    let self_before = procstat::self_sample();
    let dns_before = responders.dns_queries();
    let measured = load::run_phase(
        cfg.clone(),
        responders.clone(),
        &accounts,
        (opts.warmup, opts.requests),
        csrs,
        run_deadline,
    )
    .await;
    let after: Vec<Option<ProcSample>> = pids.iter().map(|(_, p)| procstat::sample(*p)).collect();
    let self_after = procstat::self_sample();
    let dns_queries: BTreeMap<String, u64> = responders
        .dns_queries()
        .into_iter()
        .map(|(t, n)| {
            let before = dns_before.get(&t).copied().unwrap_or(0);
            (t, n.saturating_sub(before))
        })
        .collect();
    let heap_after = match &metrics_url {
        Some(url) => Some(heap::scrape(url).await.context("heap counters after")?),
        None => None,
    };
    progress(&format!(
        "measured: {} ok, {} failed in {:.2} s",
        measured.ok.len(),
        measured.failed(),
        measured.elapsed.as_secs_f64()
    ));

    let succeeded = measured.ok.len() as u64;
    let processes = pids
        .iter()
        .zip(before.iter().zip(&after))
        .filter_map(|((name, pid), (b, a))| {
            let a = (*a)?;
            let cpu = (a.cpu_secs - b.map_or(0.0, |b| b.cpu_secs)).max(0.0);
            let heap = heap_before
                .as_ref()
                .zip(heap_after.as_ref())
                .and_then(|(b, a)| Some((*b.get(name.as_str())?, *a.get(name.as_str())?)))
                .filter(|_| succeeded > 0);
            Some(ProcessReport {
                name: name.clone(),
                pid: *pid,
                peak_rss_bytes: a.peak_rss_bytes,
                rss_after_bytes: a.rss_bytes,
                cpu_secs: cpu,
                cpu_ms_per_cert: per_cert_ms(cpu, succeeded),
                heap_alloc_bytes_per_cert: heap
                    .map(|(b, a)| (a.allocated_bytes - b.allocated_bytes) / succeeded as f64),
                heap_allocations_per_cert: heap
                    .map(|(b, a)| (a.allocations - b.allocations) / succeeded as f64),
            })
        })
        .collect();
    Ok(build_report(
        opts,
        started_at,
        directory,
        managed,
        &warm,
        &measured,
        processes,
        (self_before, self_after),
        dns_queries,
    ))
}

#[allow(clippy::too_many_arguments)]
fn build_report(
    opts: &Options,
    started_at: String,
    directory: String,
    managed: Option<&ManagedCa>,
    warm: &PhaseResult,
    m: &PhaseResult,
    processes: Vec<ProcessReport>,
    (self_before, self_after): (SelfSample, SelfSample),
    dns_queries: BTreeMap<String, u64>,
) -> Report {
    let succeeded = m.ok.len() as u64;
    let elapsed = m.elapsed.as_secs_f64();
    let phase =
        |f: fn(&load::Timings) -> Duration| Summary::of(&m.ok.iter().map(f).collect::<Vec<_>>());
    let self_cpu = (self_after.cpu_secs - self_before.cpu_secs).max(0.0);
    Report {
        schema_version: report::SCHEMA_VERSION,
        tool: "acme-bench".into(),
        tool_version: env!("CARGO_PKG_VERSION").into(),
        started_at,
        machine: machine(),
        target: Target {
            directory,
            managed: managed.is_some(),
            ca_key_type: managed.map(|_| opts.ca_key_type.to_string()),
            ca_backend: managed.map(|_| opts.ca_backend.to_string()),
            db: managed.map(|ca| ca.db.clone()),
            mtc: managed.map(|_| opts.mtc),
            caa: managed.map(|_| true),
            rate_limits: managed.map(|_| opts.rate_limits),
        },
        config: RunConfig {
            clients: opts.clients,
            requests: opts.requests,
            warmup: opts.warmup,
            poll_ms: opts.poll_ms,
            challenge: opts.challenge.to_string(),
            key_type: opts.key_type.to_string(),
            verify_cert: opts.verify_cert,
            wildcard: opts.wildcard,
            http1: opts.http1,
        },
        summary: RunSummary {
            attempted: succeeded + m.failed(),
            succeeded,
            failed: m.failed(),
            skipped: m.skipped,
            verified: m.verified,
            elapsed_secs: elapsed,
            throughput_per_sec: if elapsed > 0.0 {
                succeeded as f64 / elapsed
            } else {
                0.0
            },
        },
        latency: Latency {
            total: phase(load::Timings::total),
            new_order: phase(|t| t.new_order),
            challenge: phase(|t| t.challenge),
            finalize: phase(|t| t.finalize),
            download: phase(|t| t.download),
        },
        errors: m.errors.clone(),
        error_samples: m.samples.clone(),
        warmup: Warmup {
            succeeded: warm.ok.len() as u64,
            failed: warm.failed(),
            elapsed_secs: warm.elapsed.as_secs_f64(),
        },
        processes,
        dns_queries,
        load_generator: LoadGenerator {
            cpu_secs: self_cpu,
            cpu_ms_per_cert: per_cert_ms(self_cpu, succeeded),
            peak_rss_bytes: self_after.peak_rss_bytes,
        },
    }
}

/// The directory of the running executable.
fn default_bin_dir() -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    exe.parent()
        .map(PathBuf::from)
        .ok_or_else(|| anyhow!("{} has no parent directory", exe.display()))
}

/// Six random hex digits that keep this run's names apart from earlier
/// runs against the same server or database.
fn run_tag() -> String {
    format!("r{:06x}", rand::random::<u32>() & 0xff_ffff)
}

fn machine() -> Machine {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu_model = cpuinfo
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")?
                .split_once(':')
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".into());
    Machine {
        cpus: std::thread::available_parallelism()
            .map_or(0, |n| u32::try_from(n.get()).unwrap_or(0)),
        kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_owned())
            .unwrap_or_default(),
        cpu_model,
    }
}
