//! The mutation engine and the runner every target uses.

use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::alloc;

/// The largest single allocation a case may request: inputs are at most
/// [`MAX_INPUT`] bytes, so anything near this means a parser trusted a
/// length it read.
pub(crate) const ALLOCATION_LIMIT: usize = 16 << 20;

/// The longest input a mutation produces.
pub(crate) const MAX_INPUT: usize = 64 << 10;

/// splitmix64: small, seedable, good enough to pick mutations.
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n > 0`).
    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

const INTERESTING_BYTES: &[u8] = &[
    0x00, 0x01, 0x02, 0x7f, 0x80, 0x81, 0xff, b'"', b'\\', b'{', b'}', b'[', b']', b',', b':',
    b'.', b'=', b';', b'-', b'_', b'0', b'9', b' ', b'\r', b'\n', 0x30, 0x04, 0x03, 0x02, 0x05,
];

const INTERESTING_U64: &[u64] = &[
    0,
    1,
    0x7f,
    0x80,
    0xff,
    0xffff,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_ffff,
    1 << 32,
    1 << 40,
    i64::MAX as u64,
    u64::MAX,
];

/// One mutation of `data`; `seeds` provide splice material.
fn mutate_once(rng: &mut Rng, data: &mut Vec<u8>, seeds: &[Vec<u8>]) {
    let len = data.len();
    match rng.below(11) {
        0 if len > 0 => {
            let i = rng.below(len);
            data[i] ^= 1 << rng.below(8);
        }
        1 if len > 0 => {
            let i = rng.below(len);
            data[i] = rng.next() as u8;
        }
        2 if len > 0 => {
            let i = rng.below(len);
            data[i] = INTERESTING_BYTES[rng.below(INTERESTING_BYTES.len())];
        }
        3 => {
            let at = rng.below(len + 1);
            let n = 1 + rng.below(16);
            let bytes: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
            data.splice(at..at, bytes);
        }
        4 if len > 0 => {
            let at = rng.below(len);
            let n = 1 + rng.below((len - at).min(64));
            data.drain(at..at + n);
        }
        5 if len > 0 => {
            let at = rng.below(len);
            let n = 1 + rng.below((len - at).min(256));
            let chunk = data[at..at + n].to_vec();
            let to = rng.below(len + 1);
            data.splice(to..to, chunk);
        }
        6 if len > 0 => data.truncate(rng.below(len)),
        7 if !seeds.is_empty() => {
            let other = &seeds[rng.below(seeds.len())];
            if !other.is_empty() {
                let from = rng.below(other.len());
                let n = 1 + rng.below((other.len() - from).min(256));
                let to = rng.below(len + 1);
                let end = (to + n).min(len);
                data.splice(to..end, other[from..from + n].iter().copied());
            }
        }
        8 | 9 if len > 0 => {
            let value = INTERESTING_U64[rng.below(INTERESTING_U64.len())];
            let width = [1usize, 2, 4, 8][rng.below(4)];
            let bytes = if rng.below(2) == 0 {
                value.to_be_bytes()
            } else {
                value.to_le_bytes()
            };
            let bytes = if rng.below(2) == 0 {
                &bytes[8 - width..]
            } else {
                &bytes[..width]
            };
            let at = rng.below(len);
            for (k, b) in bytes.iter().enumerate() {
                if let Some(slot) = data.get_mut(at + k) {
                    *slot = *b;
                }
            }
        }
        _ => {
            // Repeat a chunk many times: long strings, deep nesting.
            if len > 0 {
                let at = rng.below(len);
                let n = 1 + rng.below((len - at).min(8));
                let chunk = data[at..at + n].to_vec();
                let times = 1 + rng.below(512);
                let to = rng.below(len + 1);
                data.splice(to..to, chunk.iter().copied().cycle().take(n * times));
            }
        }
    }
}

/// A mutated copy of one of `seeds` (or, now and then, random bytes).
pub(crate) fn mutant(rng: &mut Rng, seeds: &[Vec<u8>]) -> Vec<u8> {
    let mut data = match rng.below(32) {
        0 => (0..rng.below(256)).map(|_| rng.next() as u8).collect(),
        1 => Vec::new(),
        _ => seeds[rng.below(seeds.len())].clone(),
    };
    let rounds = 1 + rng.below(8);
    for _ in 0..rounds {
        mutate_once(rng, &mut data, seeds);
    }
    data.truncate(MAX_INPUT);
    data
}

/// Cases per target: `AKAMU_FUZZ_CASES` when set, else the target's
/// default times `AKAMU_FUZZ_SCALE` (1 unless set; targets that need a
/// network round trip per case have small defaults and stay small).
pub(crate) fn cases(default: u64) -> u64 {
    let var = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<u64>().ok());
    var("AKAMU_FUZZ_CASES")
        .unwrap_or_else(|| default.saturating_mul(var("AKAMU_FUZZ_SCALE").unwrap_or(1)))
}

/// The run's seed: `AKAMU_FUZZ_SEED` or a fixed one (reproducible runs in
/// the test command).
pub(crate) fn seed() -> u64 {
    std::env::var("AKAMU_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x00ac_a3e0_1818)
}

/// Runs `target` on every seed and on `default_cases` mutants; panics (with
/// what reproduces it) when a case panics or allocates more than
/// [`ALLOCATION_LIMIT`] at once.
pub(crate) fn run(
    name: &str,
    seeds: &[Vec<u8>],
    default_cases: u64,
    mut target: impl FnMut(&[u8]),
) {
    run_deep(name, seeds, default_cases, 0, |input| {
        target(input);
        false
    });
}

/// [`run`] for a target that tells whether a case got through its parser
/// to the deepest check (`true`); at least `min_percent` of the mutants
/// must, or the mutations never reach what the target is about and the
/// run fails as vacuous.
pub(crate) fn run_deep(
    name: &str,
    seeds: &[Vec<u8>],
    default_cases: u64,
    min_percent: u64,
    mut target: impl FnMut(&[u8]) -> bool,
) {
    assert!(!seeds.is_empty(), "{name}: no seeds");
    let mut deep = 0u64;
    let seed = seed();
    let mut rng = Rng::new(seed ^ fnv(name.as_bytes()));
    let total = cases(default_cases);
    for case in 0..seeds.len() as u64 + total {
        let input = match seeds.get(case as usize) {
            Some(s) => s.clone(),
            None => mutant(&mut rng, seeds),
        };
        alloc::reset();
        let outcome = catch_unwind(AssertUnwindSafe(|| target(&input)));
        let largest = alloc::largest();
        let failure = match outcome {
            Err(_) => Some("panicked".to_owned()),
            Ok(_) if largest > ALLOCATION_LIMIT => {
                Some(format!("allocated {largest} bytes at once"))
            }
            Ok(reached) => {
                if reached && case >= seeds.len() as u64 {
                    deep += 1;
                }
                None
            }
        };
        if let Some(why) = failure {
            // The harness's own checks (names ending in `-check`) save nothing.
            let file = if name.ends_with("-check") {
                "(not saved)".to_owned()
            } else {
                save(name, seed, case, &input)
            };
            panic!(
                "fuzz target {name} {why} on case {case} (AKAMU_FUZZ_SEED={seed}); \
                 input ({} bytes) saved to {file}: {}",
                input.len(),
                hex::encode(&input[..input.len().min(512)])
            );
        }
    }
    let cases = seeds.len() as u64 + total;
    if min_percent > 0 {
        eprintln!(
            "fuzz target {name}: {cases} cases, seed {seed}, {deep} mutants reached the deepest check"
        );
    } else {
        eprintln!("fuzz target {name}: {cases} cases, seed {seed}");
    }
    assert!(
        deep * 100 >= total * min_percent,
        "fuzz target {name}: only {deep} of {total} mutants got through the parser"
    );
}

fn save(name: &str, seed: u64, case: u64, input: &[u8]) -> String {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/fuzz-failures");
    let path = dir.join(format!("{name}-{seed}-{case}.bin"));
    match std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&path, input)) {
        Ok(()) => path.display().to_string(),
        Err(e) => format!("(not saved: {e})"),
    }
}

fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// A current-thread runtime, so a target's async work allocates on the
/// thread the counter watches.
pub(crate) fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn mutants_differ_from_their_seeds_and_stay_bounded() {
    let seeds = vec![b"{\"a\":1}".to_vec(), vec![0u8; 100]];
    let mut rng = Rng::new(1);
    let mutants: Vec<Vec<u8>> = (0..1000).map(|_| mutant(&mut rng, &seeds)).collect();
    let changed = mutants.iter().filter(|m| !seeds.contains(m)).count();
    assert!(changed > 900, "only {changed} of 1000 mutants changed");
    assert!(mutants.iter().all(|m| m.len() <= MAX_INPUT));
}

#[test]
#[should_panic(expected = "allocated")]
fn a_large_allocation_fails_the_case() {
    run("alloc-check", &[vec![1]], 0, |_| {
        std::hint::black_box(Vec::<u8>::with_capacity(ALLOCATION_LIMIT + 1));
    });
}

#[test]
#[should_panic(expected = "panicked")]
fn a_panic_fails_the_case() {
    run("panic-check", &[vec![1]], 3, |input| {
        assert!(input == [1], "mutated");
    });
}
