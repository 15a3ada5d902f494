//! Figures a daemon reports over its `metrics` RPC: plain numbers, never
//! preformatted text. The frontend turns them into Prometheus metric
//! families when `/metrics` is scraped (see `acme_frontend::metrics`).

use serde::{Deserialize, Serialize};

/// A latency histogram with fixed bucket bounds, in seconds.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Histogram {
    /// Upper bounds of the finite buckets, ascending, seconds.
    pub bounds: Vec<f64>,
    /// Observations per bucket (not cumulative): one count per bound, then
    /// one for the observations above the last bound.
    pub counts: Vec<u64>,
    /// Sum of all observations, seconds.
    pub sum: f64,
    /// Number of observations.
    pub count: u64,
}

/// What a process costs, read from `/proc/self`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ProcessFigures {
    /// User and system CPU time spent, seconds.
    pub cpu_seconds: f64,
    /// Resident memory, bytes.
    pub resident_memory_bytes: u64,
    /// Virtual memory, bytes.
    pub virtual_memory_bytes: u64,
    /// When the process started, Unix seconds.
    pub start_time_seconds: f64,
}
