//! The validator's figures for the frontend's `/metrics`: probes by
//! challenge type and result, probe latency, kept in one process-wide table
//! of atomics and read by the `metrics` RPC ([`snapshot`]).

use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use daemon_kit::figures::{Histogram, PROBE_BOUNDS, process_figures};
use shared_proto::validator::{ChallengeType, ProbeCount, ProblemKind, ValidatorMetrics};

/// Every challenge type, in the order of the table's rows.
const CHALLENGES: [ChallengeType; 6] = [
    ChallengeType::Http01,
    ChallengeType::Dns01,
    ChallengeType::TlsAlpn01,
    ChallengeType::DnsAccount01,
    ChallengeType::OnionCsr01,
    ChallengeType::DnsPersist01,
];

/// Every result, in the order of the table's columns: success, then each
/// problem kind.
const RESULTS: [Option<ProblemKind>; 10] = [
    None,
    Some(ProblemKind::Connection),
    Some(ProblemKind::Dns),
    Some(ProblemKind::IncorrectResponse),
    Some(ProblemKind::Tls),
    Some(ProblemKind::RejectedIdentifier),
    Some(ProblemKind::Malformed),
    Some(ProblemKind::ServerInternal),
    Some(ProblemKind::Caa),
    Some(ProblemKind::Unauthorized),
];

struct Figures {
    probes: [[AtomicU64; RESULTS.len()]; CHALLENGES.len()],
    probe_seconds: Histogram,
}

static FIGURES: LazyLock<Figures> = LazyLock::new(|| Figures {
    probes: std::array::from_fn(|_| std::array::from_fn(|_| AtomicU64::new(0))),
    probe_seconds: Histogram::new(&PROBE_BOUNDS),
});

fn row(challenge: ChallengeType) -> usize {
    match challenge {
        ChallengeType::Http01 => 0,
        ChallengeType::Dns01 => 1,
        ChallengeType::TlsAlpn01 => 2,
        ChallengeType::DnsAccount01 => 3,
        ChallengeType::OnionCsr01 => 4,
        ChallengeType::DnsPersist01 => 5,
    }
}

fn column(problem: Option<ProblemKind>) -> usize {
    match problem {
        None => 0,
        Some(ProblemKind::Connection) => 1,
        Some(ProblemKind::Dns) => 2,
        Some(ProblemKind::IncorrectResponse) => 3,
        Some(ProblemKind::Tls) => 4,
        Some(ProblemKind::RejectedIdentifier) => 5,
        Some(ProblemKind::Malformed) => 6,
        Some(ProblemKind::ServerInternal) => 7,
        Some(ProblemKind::Caa) => 8,
        Some(ProblemKind::Unauthorized) => 9,
    }
}

/// Records one finished probe.
pub fn probed(challenge: ChallengeType, problem: Option<ProblemKind>, elapsed: Duration) {
    if let Some(c) = FIGURES
        .probes
        .get(row(challenge))
        .and_then(|r| r.get(column(problem)))
    {
        c.fetch_add(1, Ordering::Relaxed);
    }
    FIGURES.probe_seconds.observe(elapsed);
}

/// The figures as they are now (results never seen are left out), with
/// this process's CPU and memory.
pub fn snapshot() -> ValidatorMetrics {
    let mut probes = Vec::new();
    for challenge in CHALLENGES {
        for problem in RESULTS {
            let count = FIGURES.probes[row(challenge)][column(problem)].load(Ordering::Relaxed);
            if count > 0 {
                probes.push(ProbeCount {
                    challenge,
                    problem,
                    count,
                });
            }
        }
    }
    ValidatorMetrics {
        probes,
        probe_seconds: FIGURES.probe_seconds.snapshot(),
        process: process_figures(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_and_columns_are_the_tables_order() {
        for (i, c) in CHALLENGES.iter().enumerate() {
            assert_eq!(row(*c), i);
        }
        for (i, r) in RESULTS.iter().enumerate() {
            assert_eq!(column(*r), i);
        }
    }

    #[test]
    fn a_probe_is_counted_under_its_type_and_result() {
        probed(
            ChallengeType::Dns01,
            Some(ProblemKind::Dns),
            Duration::from_millis(20),
        );
        let s = snapshot();
        let dns = s
            .probes
            .iter()
            .find(|p| p.challenge == ChallengeType::Dns01 && p.problem == Some(ProblemKind::Dns))
            .expect("counted");
        assert!(dns.count >= 1);
        assert!(s.probe_seconds.count >= 1);
        assert!(s.process.resident_memory_bytes > 0);
    }
}
