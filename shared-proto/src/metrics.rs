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
    /// What the process asked of its heap, while counting is on
    /// (`AKAMU_HEAP_STATS=1`, see `daemon_kit::heap`).
    pub heap: Option<HeapFigures>,
}

/// A process's heap requests since counting was turned on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeapFigures {
    /// Bytes requested (allocations and the new sizes of reallocations),
    /// including what was freed again.
    pub allocated_bytes: u64,
    /// Allocation and reallocation calls.
    pub allocations: u64,
    /// Bytes freed (including the old sizes of reallocations).
    pub freed_bytes: u64,
}
