#!/usr/bin/env bash
# Longer runs of the fuzz targets in tests/fuzz (the test command runs a
# few hundred cases per target with a fixed seed). Each round takes a new
# random seed; a failure prints the seed and the input and leaves the input
# in target/fuzz-failures/ (add it to tests/fuzz/regressions.rs with the fix).
#
# Usage: scripts/fuzz.sh [target filter]
#   AKAMU_FUZZ_SCALE   multiplies each target's default case count (default 50:
#                      about 30 000 cases for the parsers, 3 000 for the DNS
#                      round trips; a round takes about ten minutes)
#   AKAMU_FUZZ_CASES   cases per target and round, for every target
#   AKAMU_FUZZ_ROUNDS  rounds (default 1)
#   AKAMU_FUZZ_SEED    seed of the first round (default random)
# e.g. AKAMU_FUZZ_SCALE=500 scripts/fuzz.sh jose
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_INCREMENTAL=0
export AKAMU_FUZZ_SCALE=${AKAMU_FUZZ_SCALE:-50}
rounds=${AKAMU_FUZZ_ROUNDS:-1}
seed=${AKAMU_FUZZ_SEED:-$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')}
cargo test -p tests --test fuzz --no-run
for round in $(seq 1 "$rounds"); do
    echo "fuzz round $round/$rounds: AKAMU_FUZZ_SEED=$seed, scale $AKAMU_FUZZ_SCALE${AKAMU_FUZZ_CASES:+, $AKAMU_FUZZ_CASES cases per target}"
    AKAMU_FUZZ_SEED=$seed cargo test -q -p tests --test fuzz -- --nocapture ${1:+"$1"} 2>&1 \
        | grep -E 'fuzz target|test result|FAILED|failures' | grep -v -- '-check'
    seed=$((seed + 1))
done
