//! Figures a daemon keeps for the frontend's `/metrics`: a lock-free latency
//! histogram ([`Histogram`]) and what the process costs
//! ([`process_figures`], read from `/proc/self`). The daemons report them
//! over their `metrics` RPC as [`shared_proto::metrics`] types.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use shared_proto::metrics::{self, ProcessFigures};

/// Bucket bounds for operations that take microseconds to seconds
/// (signatures, fsyncs, probes), seconds.
pub const LATENCY_BOUNDS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// Bucket bounds for network probes, seconds.
pub const PROBE_BOUNDS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// A latency histogram with fixed bounds: one relaxed atomic add per
/// bucket, count and sum per observation, no lock.
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [f64],
    /// One per bound, then the overflow bucket.
    counts: Vec<AtomicU64>,
    count: AtomicU64,
    /// Sum of observations in nanoseconds.
    sum_nanos: AtomicU64,
}

impl Histogram {
    /// An empty histogram over `bounds` (ascending, seconds).
    pub fn new(bounds: &'static [f64]) -> Self {
        Self {
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            count: AtomicU64::new(0),
            sum_nanos: AtomicU64::new(0),
        }
    }

    /// Records one observation.
    pub fn observe(&self, elapsed: Duration) {
        let secs = elapsed.as_secs_f64();
        let bucket = self
            .bounds
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(self.bounds.len());
        if let Some(c) = self.counts.get(bucket) {
            c.fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// The histogram as it is now, for the wire.
    pub fn snapshot(&self) -> metrics::Histogram {
        let counts: Vec<u64> = self
            .counts
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .collect();
        metrics::Histogram {
            bounds: self.bounds.to_vec(),
            // The sum of the buckets, so that the +Inf bucket always equals
            // the count even while an observation is being recorded.
            count: counts.iter().sum(),
            counts,
            sum: Duration::from_nanos(self.sum_nanos.load(Ordering::Relaxed)).as_secs_f64(),
        }
    }
}

/// This process's CPU time and memory, from `/proc/self/stat` and
/// `/proc/self/status`; zeros for what cannot be read.
pub fn process_figures() -> ProcessFigures {
    let ticks = clock_ticks();
    let mut figures = ProcessFigures::default();
    if let Ok(stat) = std::fs::read_to_string("/proc/self/stat") {
        let stat = parse_stat(&stat);
        figures.cpu_seconds = (stat.utime + stat.stime) as f64 / ticks;
        figures.virtual_memory_bytes = stat.vsize;
        figures.start_time_seconds = boot_time().map_or(0.0, |b| b + stat.starttime as f64 / ticks);
    }
    if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
        figures.resident_memory_bytes = status_kib(&status, "VmRSS:").map_or(0, |k| k * 1024);
    }
    figures.heap = crate::heap::figures();
    figures
}

/// Clock ticks per second (`sysconf(_SC_CLK_TCK)`, 100 on Linux).
fn clock_ticks() -> f64 {
    match nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK) {
        Ok(Some(t)) if t > 0 => t as f64,
        _ => 100.0,
    }
}

/// The boot time, Unix seconds (`btime` of `/proc/stat`).
fn boot_time() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    stat.lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(|v| v as f64)
}

/// The fields of `/proc/self/stat` used here.
#[derive(Debug, Default, PartialEq)]
struct Stat {
    utime: u64,
    stime: u64,
    starttime: u64,
    vsize: u64,
}

/// Parses `/proc/<pid>/stat` (proc(5)): the command name is in parentheses
/// and may hold spaces, so fields are counted after its closing `)`.
fn parse_stat(text: &str) -> Stat {
    let Some((_, rest)) = text.rsplit_once(')') else {
        return Stat::default();
    };
    // rest starts at field 3 (state).
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| {
        fields
            .get(n - 3)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    Stat {
        utime: field(14),
        stime: field(15),
        starttime: field(22),
        vsize: field(23),
    }
}

/// The value in KiB of a `Vm…:` line of `/proc/<pid>/status`.
fn status_kib(text: &str, key: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_after_a_command_with_spaces_and_parentheses() {
        let line = "4242 (a (b) c) S 1 4242 4242 0 -1 4194560 100 0 0 0 \
                    250 75 0 0 20 0 3 0 98765 123456789 512 18446744073709551615";
        assert_eq!(
            parse_stat(line),
            Stat {
                utime: 250,
                stime: 75,
                starttime: 98765,
                vsize: 123456789,
            }
        );
        assert_eq!(parse_stat("garbage"), Stat::default());
    }

    #[test]
    fn status_lines() {
        let status = "Name:\tx\nVmPeak:\t  2000 kB\nVmRSS:\t  1234 kB\n";
        assert_eq!(status_kib(status, "VmRSS:"), Some(1234));
        assert_eq!(status_kib(status, "VmSwap:"), None);
    }

    #[test]
    fn this_process_has_cpu_time_and_memory() {
        let mut x = 0u64;
        for i in 0..2_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        assert_ne!(x, 1);
        let f = process_figures();
        assert!(f.resident_memory_bytes > 1024 * 1024, "{f:?}");
        assert!(f.virtual_memory_bytes >= f.resident_memory_bytes, "{f:?}");
        assert!(f.cpu_seconds >= 0.0, "{f:?}");
        assert!(f.start_time_seconds > 1.0e9, "{f:?}");
    }

    #[test]
    fn histogram_buckets_sum_and_count() {
        let h = Histogram::new(&LATENCY_BOUNDS);
        h.observe(Duration::from_micros(50));
        h.observe(Duration::from_millis(3));
        h.observe(Duration::from_secs(10));
        let s = h.snapshot();
        assert_eq!(s.count, 3);
        assert_eq!(s.counts.len(), LATENCY_BOUNDS.len() + 1);
        assert_eq!(s.counts[0], 1);
        assert_eq!(s.counts[5], 1, "3 ms falls in the 5 ms bucket");
        assert_eq!(s.counts[LATENCY_BOUNDS.len()], 1, "10 s overflows");
        assert!((s.sum - 10.00305).abs() < 1e-9, "{}", s.sum);
    }
}
