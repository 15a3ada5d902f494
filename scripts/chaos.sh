#!/usr/bin/env bash
# The chaos drill, long form: instant-acme clients issue certificates while
# a driver kill -9s a random process of the CA (frontend, signer, validator)
# every 0.5–3 s; then every certificate a client received must be in the
# database and in the signer's audit log (`akamu-cli audit reconcile`),
# nothing may stay `processing`, every failure must be a problem document or
# a dropped connection, and every client must complete a retry.
# The test command runs the same drill for 45 s (tests/e2e/chaos.rs).
#
# Usage: scripts/chaos.sh [seconds] [clients]     (default 600 s, 4 clients)
#   AKAMU_CHAOS_SEED  reproduce the kill schedule of an earlier run
# Prints the report (kills by process, attempts, outcomes by type, time to
# recover after a kill) and leaves it in target/chaos-report.json.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_INCREMENTAL=0
export AKAMU_CHAOS_SECS=${1:-600}
export AKAMU_CHAOS_CLIENTS=${2:-4}
export AKAMU_CHAOS_REPORT="$PWD/target/chaos-report.json"
while [ -e /tmp/akamu-bench.lock ]; do
    echo "a benchmark is running (/tmp/akamu-bench.lock): waiting"
    sleep 30
done
cargo build --workspace --bins
cargo test -p tests --test e2e chaos::kill_9_under_load_loses_nothing -- --nocapture --exact \
    2>&1 | grep -E 'CHAOS REPORT|test result|panicked|FAILED' 
python3 -m json.tool "$AKAMU_CHAOS_REPORT"
