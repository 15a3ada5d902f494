//! The Baseline Requirements' multi-perspective quorum (BR §3.2.2.9), as a
//! pure function: the primary validator uses it to stop asking once the
//! outcome is decided, the signer to check the perspective statements an
//! issue request carries. No I/O, no clock.
//!
//! With `n` remote perspectives configured:
//!
//! * `n = 0`: no corroboration is required (a private CA without remote
//!   perspectives; the behaviour before multi-perspective validation).
//! * `n = 1`: the one perspective must corroborate. The BR table starts at
//!   two perspectives; one perspective that may fail would corroborate
//!   nothing, so we allow it no failure. The RIR rule cannot apply to one
//!   perspective and is not asked.
//! * `n = 2..=5`: at most one perspective may fail to corroborate.
//! * `n >= 6`: at most two may.
//!
//! From two perspectives on, the corroborating ones must carry at least two
//! distinct RIR labels (compared case-insensitively).

/// What one remote perspective said, so far.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// It validated the same thing (and its statement checks out).
    Corroborated,
    /// It failed, refused, did not answer, or its statement does not
    /// check out.
    NotCorroborated,
    /// No answer yet.
    Pending,
}

/// One remote perspective's RIR label and outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Vote<'a> {
    /// The perspective's RIR label, e.g. `"ARIN"`, `"RIPE"`.
    pub rir: &'a str,
    /// What it said.
    pub outcome: Outcome,
}

/// The quorum's verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// The quorum is met whatever the pending perspectives say.
    Met,
    /// The quorum cannot be met whatever the pending perspectives say.
    Failed,
    /// It depends on the pending perspectives.
    Undecided,
}

/// How many of `n` remote perspectives may fail to corroborate.
pub fn max_non_corroborating(n: usize) -> usize {
    match n {
        0 | 1 => 0,
        2..=5 => 1,
        _ => 2,
    }
}

/// How many distinct RIR labels the corroborating perspectives of `n` must
/// carry.
pub fn distinct_rirs_required(n: usize) -> usize {
    n.min(2)
}

/// The number of distinct labels among `rirs`, case-insensitively.
fn distinct(rirs: impl Iterator<Item = String>) -> usize {
    rirs.collect::<std::collections::BTreeSet<_>>().len()
}

/// Decides the quorum over all configured remote perspectives' `votes`
/// (one per perspective; with none configured the quorum is met).
pub fn decide(votes: &[Vote<'_>]) -> Decision {
    let n = votes.len();
    let allowed = max_non_corroborating(n);
    let rirs_needed = distinct_rirs_required(n);
    let failed = votes
        .iter()
        .filter(|v| v.outcome == Outcome::NotCorroborated)
        .count();
    let corroborating = votes
        .iter()
        .filter(|v| v.outcome == Outcome::Corroborated)
        .count();
    let rirs_now = distinct(
        votes
            .iter()
            .filter(|v| v.outcome == Outcome::Corroborated)
            .map(|v| v.rir.to_ascii_lowercase()),
    );
    let rirs_possible = distinct(
        votes
            .iter()
            .filter(|v| v.outcome != Outcome::NotCorroborated)
            .map(|v| v.rir.to_ascii_lowercase()),
    );
    if failed > allowed || rirs_possible < rirs_needed {
        return Decision::Failed;
    }
    if corroborating + allowed >= n && rirs_now >= rirs_needed {
        return Decision::Met;
    }
    Decision::Undecided
}

#[cfg(test)]
mod tests {
    use super::*;
    use Outcome::{Corroborated as C, NotCorroborated as F, Pending as P};

    fn votes<'a>(v: &[(&'a str, Outcome)]) -> Vec<Vote<'a>> {
        v.iter()
            .map(|&(rir, outcome)| Vote { rir, outcome })
            .collect()
    }

    /// Every assignment of outcomes to `rirs`, as index lists.
    fn all_assignments(n: usize) -> Vec<Vec<Outcome>> {
        let mut out = vec![Vec::new()];
        for _ in 0..n {
            out = out
                .into_iter()
                .flat_map(|v| {
                    [C, F, P].into_iter().map(move |o| {
                        let mut v = v.clone();
                        v.push(o);
                        v
                    })
                })
                .collect();
        }
        out
    }

    /// The rule stated directly for a complete set of answers.
    fn final_rule(rirs: &[&str], outcomes: &[Outcome]) -> bool {
        let n = rirs.len();
        let ok: Vec<_> = rirs
            .iter()
            .zip(outcomes)
            .filter(|(_, o)| **o == C)
            .map(|(r, _)| r.to_ascii_lowercase())
            .collect();
        let failures = n - ok.len();
        let distinct = ok.iter().collect::<std::collections::BTreeSet<_>>().len();
        let max_fail = match n {
            0 | 1 => 0,
            2..=5 => 1,
            _ => 2,
        };
        failures <= max_fail && distinct >= n.min(2)
    }

    #[test]
    fn the_table() {
        assert_eq!(
            (0..=9).map(max_non_corroborating).collect::<Vec<_>>(),
            [0, 0, 1, 1, 1, 1, 2, 2, 2, 2]
        );
        assert_eq!(
            (0..=4).map(distinct_rirs_required).collect::<Vec<_>>(),
            [0, 1, 2, 2, 2]
        );
    }

    #[test]
    fn none_configured_is_met() {
        assert_eq!(decide(&[]), Decision::Met);
    }

    #[test]
    fn one_perspective_must_corroborate() {
        assert_eq!(decide(&votes(&[("ARIN", C)])), Decision::Met);
        assert_eq!(decide(&votes(&[("ARIN", F)])), Decision::Failed);
        assert_eq!(decide(&votes(&[("ARIN", P)])), Decision::Undecided);
    }

    #[test]
    fn five_perspectives_four_of_five() {
        let rirs = ["ARIN", "RIPE", "APNIC", "LACNIC", "AFRINIC"];
        let with =
            |o: [Outcome; 5]| decide(&votes(&rirs.iter().copied().zip(o).collect::<Vec<_>>()));
        assert_eq!(with([C, C, C, C, C]), Decision::Met);
        assert_eq!(with([C, C, C, C, F]), Decision::Met);
        assert_eq!(with([C, C, C, C, P]), Decision::Met, "decided early");
        assert_eq!(with([C, C, C, F, F]), Decision::Failed);
        assert_eq!(with([F, F, P, P, P]), Decision::Failed, "decided early");
        assert_eq!(with([C, C, C, F, P]), Decision::Undecided);
    }

    #[test]
    fn six_perspectives_allow_two_failures() {
        let rirs = ["ARIN", "ARIN", "RIPE", "RIPE", "APNIC", "APNIC"];
        let with =
            |o: [Outcome; 6]| decide(&votes(&rirs.iter().copied().zip(o).collect::<Vec<_>>()));
        assert_eq!(with([C, C, C, C, F, F]), Decision::Met);
        assert_eq!(with([C, C, C, F, F, F]), Decision::Failed);
    }

    #[test]
    fn corroboration_from_one_rir_is_not_enough() {
        // All in one region: never met, and known to fail at once.
        let v = votes(&[("ARIN", P), ("arin", P), ("ARIN", P)]);
        assert_eq!(decide(&v), Decision::Failed);
        // The only perspective of the second region failed.
        let v = votes(&[("ARIN", C), ("ARIN", C), ("ARIN", C), ("RIPE", F)]);
        assert_eq!(decide(&v), Decision::Failed);
        // Enough corroborations, but the second region is still pending.
        let v = votes(&[("ARIN", C), ("ARIN", C), ("ARIN", C), ("RIPE", P)]);
        assert_eq!(decide(&v), Decision::Undecided);
        // Labels compare case-insensitively.
        let v = votes(&[("ripe", C), ("RIPE", C)]);
        assert_eq!(decide(&v), Decision::Failed);
    }

    /// Exhaustive over up to 7 perspectives, three RIR layouts each, every
    /// assignment of outcomes: a decision is never contradicted by how the
    /// pending perspectives answer, agrees with the direct rule when
    /// nothing is pending, and is made as soon as it is determined.
    #[test]
    fn exhaustive_against_the_direct_rule() {
        let layouts: [&[&str]; 3] = [
            &["ARIN", "RIPE", "APNIC", "LACNIC", "AFRINIC", "ARIN", "RIPE"],
            &["ARIN", "ARIN", "ARIN", "ARIN", "ARIN", "ARIN", "RIPE"],
            &["RIPE", "RIPE", "RIPE", "RIPE", "RIPE", "RIPE", "RIPE"],
        ];
        for layout in layouts {
            for n in 0..=layout.len() {
                let rirs = &layout[..n];
                for outcomes in all_assignments(n) {
                    let v: Vec<_> = rirs
                        .iter()
                        .zip(&outcomes)
                        .map(|(&rir, &outcome)| Vote { rir, outcome })
                        .collect();
                    let decision = decide(&v);
                    // Every completion of the pending ones.
                    let pending: Vec<usize> = (0..n).filter(|&i| outcomes[i] == P).collect();
                    let mut finals = std::collections::BTreeSet::new();
                    for mask in 0..(1u32 << pending.len()) {
                        let mut done = outcomes.clone();
                        for (bit, &i) in pending.iter().enumerate() {
                            done[i] = if mask & (1 << bit) != 0 { C } else { F };
                        }
                        finals.insert(final_rule(rirs, &done));
                    }
                    let expected = match (finals.contains(&true), finals.contains(&false)) {
                        (true, false) => Decision::Met,
                        (false, true) => Decision::Failed,
                        _ => Decision::Undecided,
                    };
                    assert_eq!(decision, expected, "{rirs:?} {outcomes:?}");
                }
            }
        }
    }
}
