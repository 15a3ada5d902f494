#!/usr/bin/env bash
# Runs the Performance chapter's measurement matrix with acme-bench against
# Akāmu (three processes started by the bench for every row) and prints the
# markdown tables of docs/src/performance.md: concurrent clients 1/5/10/25/50,
# subscriber key types, challenge types (dns-persist-01 included), wildcard
# orders (--wildcard by dns-01 and dns-persist-01) and CA keys (file and
# PKCS#11 on SoftHSM2) and databases (SQLite file and :memory:, PostgreSQL
# with PG_URL), all at 25 clients unless
# the row says otherwise. Extra options apply to every row (e.g. --mtc
# --rate-limits for the production features; the started CA always checks
# CAA).
#
# Usage: scripts/bench-matrix.sh [extra acme-bench options]
#   REQUESTS=400 WARMUP=40 POLL_MS=5   load per row (defaults shown)
#   BIN_DIR=target/release             where the four binaries are; build with
#       cargo build --release -p acme-bench -p acme-frontend -p ca-signer -p validator-worker
#   OUT=dir                            keep every row's JSON report in dir
#   HEAP_REQUESTS=200                  each row is run a second time with
#       --heap-stats and this many requests for its MiB/iss column (the
#       counting costs CPU, so the CPU columns come from the first run);
#       HEAP_REQUESTS=0 skips it
#   PG_URL=postgres://…                 add the database table's PostgreSQL row
#       (an empty database the bench's CA migrates; dropped and created by
#       the caller between runs is best)
#   ONLY=clients|keys|challenges|wildcard|ca|db   run one table only
#   REPORT_ONLY=1 OUT=dir              print the tables from an earlier run's reports
#
# Run it on a quiet machine: the CA and the load generator share the cores.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN_DIR=${BIN_DIR:-target/release}
REQUESTS=${REQUESTS:-400}
WARMUP=${WARMUP:-40}
POLL_MS=${POLL_MS:-5}
HEAP_REQUESTS=${HEAP_REQUESTS:-200}
PG_URL=${PG_URL:-}
ONLY=${ONLY:-}
for b in acme-bench acme-frontend ca-signer validator-worker; do
    if [ ! -x "$BIN_DIR/$b" ]; then
        echo "$BIN_DIR/$b is missing: cargo build --release -p acme-bench -p acme-frontend -p ca-signer -p validator-worker" >&2
        exit 2
    fi
done
command -v jq >/dev/null || { echo "jq is required" >&2; exit 2; }

OUT=${OUT:-$(mktemp -d /tmp/bench-matrix.XXXXXX)}
mkdir -p "$OUT"

# run NAME [acme-bench options]: one row's JSON report in $OUT/NAME.json.
run() {
    local name=$1
    shift
    [ "${REPORT_ONLY:-0}" = 1 ] && return 0
    echo "== $name: $*" >&2
    "$BIN_DIR/acme-bench" --requests "$REQUESTS" --warmup "$WARMUP" --poll-ms "$POLL_MS" \
        --output json "$@" >"$OUT/$name.json"
    if [ "$HEAP_REQUESTS" -gt 0 ]; then
        echo "== $name (heap): $*" >&2
        "$BIN_DIR/acme-bench" --requests "$HEAP_REQUESTS" --warmup "$WARMUP" --poll-ms "$POLL_MS" \
            --output json --heap-stats "$@" >"$OUT/$name.heap.json"
    fi
}

# row LABEL NAME: one markdown table row from $OUT/NAME.json.
row() {
    local heap="$OUT/$2.heap.json"
    [ -f "$heap" ] || heap=/dev/null
    jq -r --arg lbl "$1" --slurpfile heap "$heap" '
      def r1: . * 10 | round / 10;
      def r2: . * 100 | round / 100;
      def proc($n): (.processes[] | select(.name == $n));
      [ $lbl,
        (.summary.throughput_per_sec | round | tostring),
        (.latency.total.mean_ms | r1 | tostring),
        (.latency.total.p50_ms | r1 | tostring),
        (.latency.total.p95_ms | r1 | tostring),
        (.latency.total.p99_ms | r1 | tostring),
        (.latency.new_order.p50_ms | r1 | tostring),
        (.latency.challenge.p50_ms | r1 | tostring),
        (.latency.finalize.p50_ms | r1 | tostring),
        (.latency.download.p50_ms | r1 | tostring),
        ([proc("acme-frontend"), proc("ca-signer"), proc("validator-worker")]
           | map(.cpu_ms_per_cert) | add | r2 | tostring),
        ([proc("acme-frontend"), proc("ca-signer"), proc("validator-worker")]
           | map(.cpu_ms_per_cert | r2 | tostring) | join(" / ")),
        (if ($heap | length) > 0
         then ([$heap[0].processes[] | .heap_alloc_bytes_per_cert // 0] | add / 1048576
               | . * 1000 | round / 1000 | tostring)
         else "–" end),
        (.load_generator.cpu_ms_per_cert | r2 | tostring),
        ([proc("acme-frontend"), proc("ca-signer"), proc("validator-worker")]
           | map(.peak_rss_bytes / 1048576 | r1 | tostring) | join(" / ")),
        (.summary.failed | tostring)
      ] | "| " + join(" | ") + " |"' "$OUT/$2.json"
}

header() {
    echo "| $1 | iss/s | mean ms | p50 | p95 | p99 | new-order p50 | challenge p50 | finalize p50 | download p50 | CA CPU ms/iss | CPU ms/cert (frontend / signer / validator) | heap MiB/iss | load generator CPU ms/cert | peak RSS MiB (frontend / signer / validator) | failed |"
    echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | --- | ---: |"
}

want() { [ -z "$ONLY" ] || [ "$ONLY" = "$1" ]; }

if want clients; then
    for n in 1 5 10 25 50; do run "clients-$n" --clients "$n" "$@"; done
fi
if want keys; then
    for k in ec:P-256 ec:P-384 rsa:2048 ed25519 ml-dsa-44 ml-dsa-65 ml-dsa-87; do run "key-${k//:/-}" --clients 25 --key-type "$k" "$@"; done
fi
if want challenges; then
    for c in http-01 dns-01 tls-alpn-01 dns-persist-01; do run "challenge-$c" --clients 25 --challenge "$c" "$@"; done
fi
if want wildcard; then
    for c in dns-01 dns-persist-01; do run "wildcard-$c" --clients 25 --challenge "$c" --wildcard "$@"; done
fi
if want ca; then
    run ca-p256-file --clients 25 --ca-key-type ec:P-256 "$@"
    run ca-p384-file --clients 25 --ca-key-type ec:P-384 "$@"
    run ca-rsa2048-file --clients 25 --ca-key-type rsa:2048 "$@"
    run ca-mldsa65-file --clients 25 --ca-key-type ml-dsa-65 "$@"
    for k in ml-dsa-44 ml-dsa-65 ml-dsa-87; do
        run "ca-pq-$k" --clients 25 --ca-key-type "$k" --key-type "$k" --verify-cert "$@"
    done
    run ca-p256-softhsm --clients 25 --ca-backend softhsm "$@"
fi
if want db; then
    run db-sqlite-file --clients 25 "$@"
    run db-sqlite-memory --clients 25 --db :memory: "$@"
    if [ -n "$PG_URL" ]; then run db-postgres --clients 25 --db "$PG_URL" "$@"; fi
fi

echo
echo "Rows: --requests $REQUESTS --warmup $WARMUP --poll-ms $POLL_MS $*; reports in $OUT"
if want clients; then
    echo
    header clients
    for n in 1 5 10 25 50; do row "$n" "clients-$n"; done
fi
if want keys; then
    echo
    header "key type (25 clients)"
    for k in ec:P-256 ec:P-384 rsa:2048 ed25519 ml-dsa-44 ml-dsa-65 ml-dsa-87; do row "$k" "key-${k//:/-}"; done
fi
if want challenges; then
    echo
    header "challenge (25 clients)"
    for c in http-01 dns-01 tls-alpn-01 dns-persist-01; do row "$c" "challenge-$c"; done
fi
if want wildcard; then
    echo
    header "wildcard by (25 clients)"
    for c in dns-01 dns-persist-01; do row "*.name, $c" "wildcard-$c"; done
fi
if want ca; then
    echo
    header "CA key (25 clients)"
    row "ec:P-256, file" ca-p256-file
    row "ec:P-384, file" ca-p384-file
    row "rsa:2048, file" ca-rsa2048-file
    row "ml-dsa-65, file (P-256 leaves)" ca-mldsa65-file
    for k in ml-dsa-44 ml-dsa-65 ml-dsa-87; do row "$k, file, $k leaves, --verify-cert" "ca-pq-$k"; done
    row "ec:P-256, PKCS#11 (SoftHSM2)" ca-p256-softhsm
fi
if want db; then
    echo
    header "database (25 clients)"
    row "SQLite file" db-sqlite-file
    row "SQLite :memory:" db-sqlite-memory
    if [ -f "$OUT/db-postgres.json" ]; then row "PostgreSQL, one front end" db-postgres; fi
fi
