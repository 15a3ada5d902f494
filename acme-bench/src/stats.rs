//! Latency summaries: mean and nearest-rank percentiles.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Summary of one set of durations, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Number of samples.
    pub count: u64,
    /// Arithmetic mean.
    pub mean_ms: f64,
    /// Smallest sample.
    pub min_ms: f64,
    /// Median (nearest rank).
    pub p50_ms: f64,
    /// 95th percentile (nearest rank).
    pub p95_ms: f64,
    /// 99th percentile (nearest rank).
    pub p99_ms: f64,
    /// Largest sample.
    pub max_ms: f64,
}

impl Summary {
    /// Summarises `samples` (any order). All fields are 0 when empty.
    pub fn of(samples: &[Duration]) -> Summary {
        let mut ms: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1e3).collect();
        ms.sort_by(f64::total_cmp);
        let count = ms.len() as u64;
        let mean_ms = if ms.is_empty() {
            0.0
        } else {
            ms.iter().sum::<f64>() / ms.len() as f64
        };
        Summary {
            count,
            mean_ms,
            min_ms: ms.first().copied().unwrap_or(0.0),
            p50_ms: percentile(&ms, 50.0),
            p95_ms: percentile(&ms, 95.0),
            p99_ms: percentile(&ms, 99.0),
            max_ms: ms.last().copied().unwrap_or(0.0),
        }
    }
}

/// Nearest-rank percentile of `sorted` (ascending): the smallest sample such
/// that at least `p` percent of the samples are ≤ it. 0 for an empty slice;
/// `p` is clamped to 0..=100 (0 gives the minimum).
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let p = p.clamp(0.0, 100.0);
    let n = sorted.len();
    // rank = ceil(p/100 · n), 1-based; at least 1.
    let rank = ((p / 100.0) * n as f64).ceil() as usize;
    sorted[rank.clamp(1, n) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: &[u64]) -> Vec<Duration> {
        v.iter().map(|m| Duration::from_millis(*m)).collect()
    }

    #[test]
    fn nearest_rank_on_one_to_hundred() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), 50.0);
        assert_eq!(percentile(&v, 95.0), 95.0);
        assert_eq!(percentile(&v, 99.0), 99.0);
        assert_eq!(percentile(&v, 100.0), 100.0);
        assert_eq!(percentile(&v, 0.0), 1.0);
    }

    #[test]
    fn nearest_rank_on_small_sets() {
        let v = [10.0, 20.0, 30.0, 40.0];
        assert_eq!(percentile(&v, 50.0), 20.0);
        assert_eq!(percentile(&v, 51.0), 30.0);
        assert_eq!(percentile(&v, 99.0), 40.0);
        assert_eq!(percentile(&[7.0], 99.0), 7.0);
        assert_eq!(percentile(&[], 50.0), 0.0);
        assert_eq!(percentile(&v, 250.0), 40.0, "clamped");
    }

    #[test]
    fn summary_of_unsorted_samples() {
        let s = Summary::of(&ms(&[30, 10, 20, 40, 100]));
        assert_eq!(s.count, 5);
        assert!((s.mean_ms - 40.0).abs() < 1e-9);
        assert_eq!(s.min_ms, 10.0);
        assert_eq!(s.p50_ms, 30.0);
        assert_eq!(s.p95_ms, 100.0);
        assert_eq!(s.p99_ms, 100.0);
        assert_eq!(s.max_ms, 100.0);
    }

    #[test]
    fn summary_of_nothing_is_zero() {
        let s = Summary::of(&[]);
        assert_eq!(s.count, 0);
        assert_eq!((s.mean_ms, s.p99_ms, s.max_ms), (0.0, 0.0, 0.0));
    }

    #[test]
    fn sub_millisecond_precision_is_kept() {
        let s = Summary::of(&[Duration::from_micros(1500)]);
        assert!((s.p50_ms - 1.5).abs() < 1e-9);
    }
}
