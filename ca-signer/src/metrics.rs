//! The signer's figures for the frontend's `/metrics`: counters and
//! histograms kept in one process-wide [`Figures`], read by the `metrics`
//! RPC ([`snapshot`]). Recording is a few relaxed atomic adds; the signer
//! opens no port for them (it has no network).

use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use daemon_kit::figures::{Histogram, LATENCY_BOUNDS, process_figures};
use shared_proto::signer::SignerMetrics;

use crate::error::Error;
use crate::keys::KeyBackend;

/// What a signature with the CA key was for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignatureKind {
    /// A certificate (leaf or the frontend's server certificate).
    Certificate,
    /// A CRL.
    Crl,
}

/// The signer's counters and histograms since it started.
#[derive(Debug)]
pub struct Figures {
    certificates_signed: AtomicU64,
    crls_signed: AtomicU64,
    refusals: AtomicU64,
    repeated_requests: AtomicU64,
    key_errors: AtomicU64,
    audit_errors: AtomicU64,
    sign_seconds: Histogram,
    audit_append_seconds: Histogram,
}

static FIGURES: LazyLock<Figures> = LazyLock::new(|| Figures {
    certificates_signed: AtomicU64::new(0),
    crls_signed: AtomicU64::new(0),
    refusals: AtomicU64::new(0),
    repeated_requests: AtomicU64::new(0),
    key_errors: AtomicU64::new(0),
    audit_errors: AtomicU64::new(0),
    sign_seconds: Histogram::new(&LATENCY_BOUNDS),
    audit_append_seconds: Histogram::new(&LATENCY_BOUNDS),
});

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// Signs `message` with `key`, timing the signature and counting it (or
/// the key error).
pub fn sign(kind: SignatureKind, key: &dyn KeyBackend, message: &[u8]) -> Result<Vec<u8>, Error> {
    let started = Instant::now();
    let result = key.sign(message);
    FIGURES.sign_seconds.observe(started.elapsed());
    match (&result, kind) {
        (Err(_), _) => bump(&FIGURES.key_errors),
        (Ok(_), SignatureKind::Certificate) => bump(&FIGURES.certificates_signed),
        (Ok(_), SignatureKind::Crl) => bump(&FIGURES.crls_signed),
    }
    result
}

/// Records one audit-log append that took from `started` until now.
pub fn audit_appended(started: Instant, ok: bool) {
    FIGURES.audit_append_seconds.observe(started.elapsed());
    if !ok {
        bump(&FIGURES.audit_errors);
    }
}

/// Counts an issue request refused by policy.
pub fn refused() {
    bump(&FIGURES.refusals);
}

/// Counts a repeated issue request answered with the certificate already
/// signed.
pub fn repeated() {
    bump(&FIGURES.repeated_requests);
}

/// The figures as they are now, with this process's CPU and memory.
pub fn snapshot() -> SignerMetrics {
    let f = &*FIGURES;
    let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
    SignerMetrics {
        certificates_signed: load(&f.certificates_signed),
        crls_signed: load(&f.crls_signed),
        refusals: load(&f.refusals),
        repeated_requests: load(&f.repeated_requests),
        key_errors: load(&f.key_errors),
        audit_errors: load(&f.audit_errors),
        sign_seconds: f.sign_seconds.snapshot(),
        audit_append_seconds: f.audit_append_seconds.snapshot(),
        process: process_figures(),
        log: None,
    }
}
