#!/usr/bin/env bash
# Runs the same acme-bench load against Debian's Pebble (real validation:
# PEBBLE_VA_NOSLEEP=1, not PEBBLE_VA_ALWAYS_VALID) and against Akāmu (three
# processes started by the bench) in one run, and prints both with the ratio.
#
# Usage: scripts/bench-vs-pebble.sh [acme-bench options]
#   default options: --clients 25 --requests 300 --warmup 30 --poll-ms 5
#   BIN_DIR=...    where acme-bench, acme-frontend, ca-signer, validator-worker
#                  are (default target/release; build them with
#                  cargo build --release -p acme-bench -p acme-frontend -p ca-signer -p validator-worker)
#   KEEP=1         keep the work directory (Pebble's log, both JSON reports)
#   AKAMU_ARGS=... options for the Akāmu run only (default "--mtc
#                  --rate-limits": the transparency log and every rate limit
#                  on; the started CA always checks CAA). AKAMU_ARGS= for none.
#
# Everything listens on 127.0.0.1 only. Pebble's random nonce rejection is
# turned off (PEBBLE_WFE_NONCEREJECT=0) so both servers see the same number
# of requests; its authorization reuse does not apply (every order names a
# fresh domain).
set -euo pipefail
cd "$(dirname "$0")/.."

BIN_DIR=${BIN_DIR:-target/release}
BENCH="$BIN_DIR/acme-bench"
read -r -a AKAMU_EXTRA <<<"${AKAMU_ARGS---mtc --rate-limits}"
if [ "$#" -eq 0 ]; then
    set -- --clients 25 --requests 300 --warmup 30 --poll-ms 5
fi
for b in acme-bench acme-frontend ca-signer validator-worker; do
    if [ ! -x "$BIN_DIR/$b" ]; then
        echo "$BIN_DIR/$b is missing: cargo build --release -p acme-bench -p acme-frontend -p ca-signer -p validator-worker" >&2
        exit 2
    fi
done
for tool in jq openssl ss; do
    command -v "$tool" >/dev/null || { echo "$tool is required" >&2; exit 2; }
done

if ! dpkg -s pebble >/dev/null 2>&1; then
    echo "installing Debian's pebble" >&2
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq pebble >/dev/null
fi
PEBBLE=$(dpkg -L pebble | grep -E '/bin/pebble$' | head -n1)
[ -x "$PEBBLE" ] || { echo "no pebble binary in the pebble package" >&2; exit 2; }
PEBBLE_VERSION=$(dpkg-query -W -f='${Version}' pebble)

WORK=$(mktemp -d /tmp/bench-vs-pebble.XXXXXX)
PEBBLE_PID=""
cleanup() {
    if [ -n "$PEBBLE_PID" ] && kill -0 "$PEBBLE_PID" 2>/dev/null; then
        kill "$PEBBLE_PID" 2>/dev/null || true
        wait "$PEBBLE_PID" 2>/dev/null || true
    fi
    if [ "${KEEP:-0}" = 1 ]; then
        echo "kept $WORK" >&2
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT

# A port of 127.0.0.1 free for both TCP and UDP (and not handed out yet).
USED=" "
free_port() {
    local p
    for _ in $(seq 1 200); do
        # Below Linux's ephemeral range (32768–60999 by default), so that an
        # outgoing connection's local port cannot be taken meanwhile.
        p=$(( (RANDOM << 15 | RANDOM) % 12000 + 20000 ))
        case "$USED" in *" $p "*) continue ;; esac
        if ! ss -Htuln | awk '{print $5}' | grep -qE "[:.]$p\$"; then
            USED="$USED$p "
            echo "$p"
            return 0
        fi
    done
    echo "no free port found" >&2
    return 1
}
PEBBLE_PORT=$(free_port); MGMT_PORT=$(free_port)
HTTP_PORT=$(free_port); TLS_PORT=$(free_port); DNS_PORT=$(free_port)

# Pebble's HTTPS certificate: a throw-away CA and a leaf for 127.0.0.1.
(
    cd "$WORK"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout ca.key -out ca.pem -days 2 -subj "/CN=bench-vs-pebble CA" \
        -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout wfe.key -out wfe.csr -subj "/CN=localhost" 2>/dev/null
    printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' > wfe.ext
    openssl x509 -req -in wfe.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
        -out wfe.pem -days 2 -extfile wfe.ext 2>/dev/null
)
cat > "$WORK/pebble.json" <<EOF
{
  "pebble": {
    "listenAddress": "127.0.0.1:$PEBBLE_PORT",
    "managementListenAddress": "127.0.0.1:$MGMT_PORT",
    "certificate": "$WORK/wfe.pem",
    "privateKey": "$WORK/wfe.key",
    "httpPort": $HTTP_PORT,
    "tlsPort": $TLS_PORT,
    "ocspResponderURL": "",
    "externalAccountBindingRequired": false
  }
}
EOF

PEBBLE_VA_NOSLEEP=1 PEBBLE_WFE_NONCEREJECT=0 \
    "$PEBBLE" -config "$WORK/pebble.json" -dnsserver "127.0.0.1:$DNS_PORT" \
    >"$WORK/pebble.log" 2>&1 &
PEBBLE_PID=$!
DIRECTORY="https://127.0.0.1:$PEBBLE_PORT/dir"
for _ in $(seq 1 100); do
    curl -fsS --cacert "$WORK/ca.pem" "$DIRECTORY" >/dev/null 2>&1 && break
    kill -0 "$PEBBLE_PID" 2>/dev/null || { cat "$WORK/pebble.log" >&2; exit 1; }
    sleep 0.1
done
curl -fsS --cacert "$WORK/ca.pem" "$DIRECTORY" >/dev/null || { cat "$WORK/pebble.log" >&2; exit 1; }

PORTS=(--http-port "$HTTP_PORT" --tls-port "$TLS_PORT" --dns-port "$DNS_PORT")
echo "== Pebble $PEBBLE_VERSION ($DIRECTORY, pid $PEBBLE_PID)" >&2
"$BENCH" "$@" "${PORTS[@]}" --output json \
    --directory "$DIRECTORY" --ca-bundle "$WORK/ca.pem" \
    --watch-pid "pebble=$PEBBLE_PID" >"$WORK/pebble-report.json" || true
kill "$PEBBLE_PID" 2>/dev/null || true
wait "$PEBBLE_PID" 2>/dev/null || true
PEBBLE_PID=""

echo "== Akāmu (started by the bench) ${AKAMU_EXTRA[*]}" >&2
"$BENCH" "$@" "${AKAMU_EXTRA[@]}" "${PORTS[@]}" --output json >"$WORK/akamu-report.json" || true

for r in pebble akamu; do
    jq -e .summary >/dev/null <"$WORK/$r-report.json" || { echo "no report from the $r run" >&2; exit 1; }
done

jq -rn --slurpfile p "$WORK/pebble-report.json" --slurpfile a "$WORK/akamu-report.json" \
    --arg pv "$PEBBLE_VERSION" '
  def r2: (. * 100 | round) / 100;
  def cpu: ([.processes[].cpu_ms_per_cert] | add // 0);
  def rss: ([.processes[].peak_rss_bytes] | add // 0) / 1048576;
  def ratio(a; b): if b == 0 then "-" else (a / b | r2 | tostring) + "x" end;
  $p[0] as $p | $a[0] as $a |
  "load: \($a.config.clients) clients, \($a.config.requests) requests (+\($a.config.warmup) warmup), \($a.config.challenge), \($a.config.key_type), poll cap \($a.config.poll_ms) ms",
  "",
  "| metric | Pebble \($pv) | Akāmu | Akāmu / Pebble |",
  "| --- | ---: | ---: | ---: |",
  "| succeeded / failed | \($p.summary.succeeded) / \($p.summary.failed) | \($a.summary.succeeded) / \($a.summary.failed) | |",
  "| throughput (iss/s) | \($p.summary.throughput_per_sec | r2) | \($a.summary.throughput_per_sec | r2) | \(ratio($a.summary.throughput_per_sec; $p.summary.throughput_per_sec)) |",
  "| mean latency (ms) | \($p.latency.total.mean_ms | r2) | \($a.latency.total.mean_ms | r2) | \(ratio($a.latency.total.mean_ms; $p.latency.total.mean_ms)) |",
  "| p50 latency (ms) | \($p.latency.total.p50_ms | r2) | \($a.latency.total.p50_ms | r2) | \(ratio($a.latency.total.p50_ms; $p.latency.total.p50_ms)) |",
  "| p99 latency (ms) | \($p.latency.total.p99_ms | r2) | \($a.latency.total.p99_ms | r2) | \(ratio($a.latency.total.p99_ms; $p.latency.total.p99_ms)) |",
  "| challenge p50 (ms) | \($p.latency.challenge.p50_ms | r2) | \($a.latency.challenge.p50_ms | r2) | \(ratio($a.latency.challenge.p50_ms; $p.latency.challenge.p50_ms)) |",
  "| finalize p50 (ms) | \($p.latency.finalize.p50_ms | r2) | \($a.latency.finalize.p50_ms | r2) | \(ratio($a.latency.finalize.p50_ms; $p.latency.finalize.p50_ms)) |",
  "| server CPU per cert (ms, all processes) | \($p | cpu | r2) | \($a | cpu | r2) | \(ratio($a | cpu; $p | cpu)) |",
  "| server peak RSS (MiB, all processes) | \($p | rss | r2) | \($a | rss | r2) | \(ratio($a | rss; $p | rss)) |",
  "| load generator CPU per cert (ms) | \($p.load_generator.cpu_ms_per_cert | r2) | \($a.load_generator.cpu_ms_per_cert | r2) | |",
  "",
  "errors: Pebble \($p.errors), Akāmu \($a.errors)"
'
