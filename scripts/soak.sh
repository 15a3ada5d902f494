#!/usr/bin/env bash
# Soak: one hour (by default) of moderate ACME load on a CA started here,
# sampling each process's resident memory, open files and threads and the
# database's size. Not part of the test command.
#
# The CA is the launcher (acme-frontend with ca-signer and validator-worker
# as children) on a state directory in /tmp, with clean-up on
# ([server] retention_days = 1). The load is acme-bench --directory in
# rounds of SOAK_REQUESTS issuances by SOAK_CLIENTS clients, SOAK_PAUSE
# seconds apart.
#
# Usage: scripts/soak.sh [seconds]     (default 3600)
#   SOAK_SAMPLE_SECS  seconds between samples (default 10)
#   SOAK_CLIENTS      clients per round (default 2)
#   SOAK_REQUESTS     issuances per round (default 20)
#   SOAK_PAUSE        seconds between rounds (default 10)
#   SOAK_NEW_ACCOUNTS 1: every round registers new accounts (default: the
#                     clients keep their accounts across rounds, as real
#                     clients do)
#   SOAK_PROFILE      release or debug binaries (default: release if built)
#   SOAK_OUT          CSV of samples (default target/soak.csv)
# Prints a summary: per process the first, last and largest RSS, open files
# and threads after the warm-up (the first tenth), the drift (mean of the
# last quarter minus mean of the second quarter), and the database's growth
# per issuance.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
duration=${1:-3600}
sample=${SOAK_SAMPLE_SECS:-10}
clients=${SOAK_CLIENTS:-2}
requests=${SOAK_REQUESTS:-20}
pause=${SOAK_PAUSE:-10}
out=${SOAK_OUT:-$root/target/soak.csv}
profile=${SOAK_PROFILE:-}
if [ -z "$profile" ]; then
    if [ -x target/release/acme-frontend ] && [ -x target/release/acme-bench ]; then profile=release; else profile=debug; fi
fi
bins="$root/target/$profile"
for b in acme-frontend ca-signer validator-worker acme-bench; do
    [ -x "$bins/$b" ] || { echo "$bins/$b is missing: cargo build --workspace --bins${profile/debug/}${profile/release/ --release}"; exit 1; }
done
while [ -e /tmp/akamu-bench.lock ]; do
    echo "a benchmark is running (/tmp/akamu-bench.lock): waiting"
    sleep 30
done

tmp=$(mktemp -d /tmp/akamu-soak.XXXXXX)
frontend_pid=""
load_pid=""
cleanup() {
    [ -n "$load_pid" ] && kill "$load_pid" 2>/dev/null || true
    [ -n "$load_pid" ] && wait "$load_pid" 2>/dev/null || true
    if [ -n "$frontend_pid" ] && kill -0 "$frontend_pid" 2>/dev/null; then
        kill -TERM "$frontend_pid" 2>/dev/null || true
        wait "$frontend_pid" 2>/dev/null || true
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
port=$(free_port); http_port=$(free_port); tls_port=$(free_port); dns_port=$(free_port)
state="$tmp/state"
mkdir -p "$state"
cat > "$tmp/akamu.toml" <<TOML
listen_addr = "127.0.0.1:$port"
base_url    = "https://localhost:$port"
state_dir   = "$state"

[database]
path = "$state/akamu.db"

[ca]
key_file      = "$state/ca.key.pem"
cert_file     = "$state/ca.cert.pem"
validity_days = 90

[tls]
enabled     = true
cert_file   = "$state/server.crt"
key_file    = "$state/server.key"
server_name = "localhost"

[server]
http_validation_port     = $http_port
tls_alpn_validation_port = $tls_port
dns_resolver_addr        = "127.0.0.1:$dns_port"
allow_private_targets    = true
retention_days           = 1
TOML

"$bins/acme-frontend" --config "$tmp/akamu.toml" >"$tmp/ca.out" 2>"$tmp/ca.err" &
frontend_pid=$!
for _ in $(seq 1 600); do
    grep -q '^READY' "$tmp/ca.out" && break
    kill -0 "$frontend_pid" 2>/dev/null || { tail -20 "$tmp/ca.err"; exit 1; }
    sleep 0.1
done
ready=$(sed -n 's/^READY //p' "$tmp/ca.out")
[ -n "$ready" ] || { echo "no READY line"; tail -20 "$tmp/ca.err"; exit 1; }
directory=$(echo "$ready" | python3 -c 'import json,sys; print(json.load(sys.stdin)["directory"])')
echo "soak: $profile binaries, $duration s, directory $directory, samples to $out"

# The load: rounds of acme-bench against the CA until the time is up.
(
    end=$((SECONDS + duration))
    round=0
    while [ $SECONDS -lt $end ]; do
        round=$((round + 1))
        accounts=(--accounts "$tmp/accounts.json")
        [ "${SOAK_NEW_ACCOUNTS:-0}" = 1 ] && accounts=()
        "$bins/acme-bench" --directory "$directory" --ca-bundle "$state/ca.cert.pem" "${accounts[@]}" \
            --clients "$clients" --requests "$requests" --warmup 0 \
            --http-port "$http_port" --tls-port "$tls_port" --dns-port "$dns_port" \
            --max-secs $((end - SECONDS + 1)) --output json >"$tmp/bench-$round.json" 2>>"$tmp/bench.err" || true
        sleep "$pause"
    done
) &
load_pid=$!

# The samples: one line per process and sample.
mkdir -p "$(dirname "$out")"
echo "t,process,pid,rss_kb,threads,open_files,db_bytes,certificates" > "$out"
start=$SECONDS
while [ $((SECONDS - start)) -lt "$duration" ]; do
    t=$((SECONDS - start))
    db_bytes=$(( $(stat -c %s "$state/akamu.db" 2>/dev/null || echo 0) + $(stat -c %s "$state/akamu.db-wal" 2>/dev/null || echo 0) ))
    certs=$(python3 -c "import sqlite3,sys; print(sqlite3.connect('file:$state/akamu.db?mode=ro', uri=True).execute('select count(*) from certificates').fetchone()[0])" 2>/dev/null || echo "")
    for pid in "$frontend_pid" $(cat /proc/"$frontend_pid"/task/*/children 2>/dev/null); do
        [ -r "/proc/$pid/status" ] || continue
        name=$(cat "/proc/$pid/comm")
        rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status")
        threads=$(awk '/^Threads:/ {print $2}' "/proc/$pid/status")
        fds=$(ls "/proc/$pid/fd" 2>/dev/null | wc -l)
        echo "$t,$name,$pid,$rss,$threads,$fds,$db_bytes,$certs" >> "$out"
    done
    sleep "$sample"
done

python3 - "$out" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
if not rows:
    sys.exit("no samples")
end = max(int(r["t"]) for r in rows)
warm = end / 10
print(f"{'process':<16} {'metric':<11} {'first':>9} {'last':>9} {'max':>9} {'drift':>9}")
for proc in sorted({r["process"] for r in rows}):
    mine = [r for r in rows if r["process"] == proc and int(r["t"]) >= warm]
    if not mine:
        continue
    for metric in ("rss_kb", "open_files", "threads"):
        v = [int(r[metric]) for r in mine]
        q = max(1, len(v) // 4)
        drift = sum(v[-q:]) / q - sum(v[q:2 * q] or v[:q]) / len(v[q:2 * q] or v[:q])
        print(f"{proc:<16} {metric:<11} {v[0]:>9} {v[-1]:>9} {max(v):>9} {drift:>+9.1f}")
db = [(int(r["t"]), int(r["db_bytes"]), int(r["certificates"] or 0)) for r in rows]
(t0, b0, c0), (t1, b1, c1) = db[0], db[-1]
per = (b1 - b0) / (c1 - c0) if c1 > c0 else float("nan")
print(f"database: {b0} -> {b1} bytes, certificates {c0} -> {c1} in {t1 - t0} s "
      f"({per:.0f} bytes per certificate)")
PY
errors=$(cat "$tmp"/bench-*.json 2>/dev/null | python3 -c '
import json, sys
issued = errors = 0
dec = json.JSONDecoder()
text = sys.stdin.read()
i = 0
while i < len(text):
    while i < len(text) and text[i].isspace(): i += 1
    if i >= len(text): break
    obj, i = dec.raw_decode(text, i)
    issued += obj.get("summary", {}).get("succeeded", 0)
    errs = obj.get("errors", {})
    errors += sum(errs.values()) if isinstance(errs, dict) else (errs or 0)
print(f"load: {issued} issuances, {errors} errors")
' || true)
echo "$errors"
