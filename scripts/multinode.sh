#!/usr/bin/env bash
# The multi-node deployment on loopback (docs/src/multinode.md), as
# separate processes: one ca-signer listening on TCP with mutual TLS, two
# acme-frontends (A and B) in [fleet] mode on one database, a primary
# validator-worker fanning out to five remote perspectives over TCP with
# mutual TLS, and nginx balancing A and B at one directory URL.
#
#   scripts/multinode.sh up STATE_DIR     # start everything, print KEY=value lines
#   scripts/multinode.sh down STATE_DIR   # stop exactly what `up` started (idempotent)
#
# Environment:
#   AKAMU_BIN_DIR          the binaries (default: target/debug of this checkout)
#   AKAMU_DNS_RESOLVER     host:port of the DNS server the validators ask
#                          (default: the system resolver)
#   AKAMU_DNS_RESOLVER_P1 … _P5   a perspective's own resolver (default
#                          AKAMU_DNS_RESOLVER): a test's "lying" view
#   AKAMU_HTTP_PORT        the port http-01 is validated on (default: a free one)
#   AKAMU_TLS_PORT         the port tls-alpn-01 is validated on (default: a free one)
#   AKAMU_MULTINODE_DB     sqlite (default: one file shared by A and B) or
#                          postgres (a server started here, or the one at
#                          AKAMU_MULTINODE_DATABASE_URL)
#   AKAMU_MULTINODE_TIMEOUT  seconds each process may take to be ready (default 60)
#   NGINX                  the nginx binary (default: nginx on PATH, or /usr/sbin/nginx)
#
# `up` prints DIRECTORY (through nginx), FRONTEND_A, FRONTEND_B (each front
# end's own directory URL), TLS_CA, ROOT_CERT, DATABASE_PATH (or
# DATABASE_URL), PIDS and a few more paths; every process's output is in
# STATE_DIR/logs. On failure it prints the failing process's log tail,
# stops what it had started, and exits non-zero.
set -euo pipefail
shopt -u patsub_replacement 2>/dev/null || true

ROOT=$(cd "$(dirname "$0")/.." && pwd)
TEMPLATES=$ROOT/deploy/multinode
# The five remote perspectives: name and RIR label.
PERSPECTIVES=(p1:ARIN p2:RIPE p3:APNIC p4:LACNIC p5:AFRINIC)

die() {
    echo "multinode: $*" >&2
    exit 1
}

usage() {
    echo "usage: $0 up|down STATE_DIR" >&2
    exit 2
}

# render TEMPLATE OUT KEY=VALUE…: every @KEY@ replaced; a placeholder left
# over is an error.
render() {
    local text kv template=$1
    text=$(<"$1")
    local out=$2
    shift 2
    for kv in "$@"; do
        text=${text//"@${kv%%=*}@"/"${kv#*=}"}
    done
    text=${text//"@STATE_DIR@"/"$STATE"}
    if [[ $text =~ @[A-Z_0-9]+@ ]]; then
        die "placeholder ${BASH_REMATCH[0]} left in $(basename "$template")"
    fi
    printf '%s\n' "$text" >"$out"
}

# free_ports N: N distinct free TCP ports on 127.0.0.1, one a line.
free_ports() {
    python3 - "$1" <<'EOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
for s in socks:
    print(s.getsockname()[1])
EOF
}

# The database the front ends share. Sets DATABASE_TOML (the front ends'
# [database] section) and DATABASE_REPORT (the KEY=value line `up`
# prints). Called with the run/ and logs/ directories made and PG_PORT a
# free port.
database_setup() {
    case "${AKAMU_MULTINODE_DB:-sqlite}" in
    sqlite)
        # One SQLite file (WAL) shared by A and B: one host only, never on a
        # network file system.
        mkdir -p "$STATE/db"
        DATABASE_TOML=$(printf '[database]\npath = "%s"' "$STATE/db/akamu.db")
        DATABASE_REPORT="DATABASE_PATH=$STATE/db/akamu.db"
        ;;
    postgres)
        local url=${AKAMU_MULTINODE_DATABASE_URL:-}
        [ -n "$url" ] || url=$(start_postgres)
        DATABASE_TOML=$(printf '[database]\nurl = "%s"' "$url")
        DATABASE_REPORT="DATABASE_URL=$url"
        ;;
    *)
        die "AKAMU_MULTINODE_DB=${AKAMU_MULTINODE_DB}: expected sqlite or postgres"
        ;;
    esac
}

# A PostgreSQL server of Debian's packages for this deployment, on
# 127.0.0.1:PG_PORT, trust authentication for its one role `akamu` (on
# loopback, for a demonstration or a test; a real deployment brings its
# own server and a password file, docs/src/fleet.md). Its cluster lives in
# a directory of its own under /tmp, owned by `nobody` when we are root
# (PostgreSQL refuses to run as root and must reach its data directory);
# `down` stops it and removes that directory. Prints the database URL.
start_postgres() {
    local bin
    bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
    [ -x "$bin/postgres" ] || die "PostgreSQL not found (apt-get install postgresql)"
    local dir as=()
    dir=$(mktemp -d /tmp/akamu-multinode-pg.XXXXXX)
    echo "$dir" >"$STATE/run/pg.dir"
    if [ "$(id -u)" -eq 0 ]; then
        chown nobody: "$dir"
        as=(setpriv --reuid=nobody --regid="$(id -g nobody)" --clear-groups)
    fi
    "${as[@]}" "$bin/initdb" -D "$dir/data" -U akamu --auth=trust -E UTF8 --no-locale --no-sync \
        >"$STATE/logs/pg-initdb.log" 2>&1 || { tail -n 20 "$STATE/logs/pg-initdb.log" >&2; die "initdb failed"; }
    PORT_READY=$PG_PORT
    # fsync off: a throwaway server on loopback (the front ends' durability
    # is not what this deployment shows).
    start pg "" "${as[@]}" "$bin/postgres" -D "$dir/data" -p "$PG_PORT" -k "$dir" \
        -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c max_connections=100 >&2
    # Listening is not yet accepting sessions ("starting up"): retry.
    local tries=0
    until "$bin/createdb" -h 127.0.0.1 -p "$PG_PORT" -U akamu akamu >"$STATE/logs/pg-createdb.log" 2>&1; do
        tries=$((tries + 1))
        [ "$tries" -lt 50 ] || fail pg "createdb failed: $(cat "$STATE/logs/pg-createdb.log")"
        sleep 0.2
    done
    echo "postgres://akamu@127.0.0.1:$PG_PORT/akamu"
}

# PKI: a web CA for the HTTPS listeners (nginx, A, B: what clients trust)
# and a links CA for the mutual-TLS links between our processes. Neither is
# the ACME CA, which the signer generates at its first start.
make_ca() { # NAME FILE-STEM
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
        -subj "/CN=$1" -keyout "$PKI/$2.key" -out "$PKI/$2.pem" \
        -addext basicConstraints=critical,CA:TRUE \
        -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
    chmod 600 "$PKI/$2.key"
}

make_leaf() { # CA-STEM SUBJECT-ALT-NAMES EKU FILE-STEM
    local cn=${2%%,*}
    cn=${cn#*:}
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$cn" \
        -keyout "$PKI/$4.key" -out "$PKI/$4.csr" 2>/dev/null
    printf 'subjectAltName=%s\nextendedKeyUsage=%s\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n' \
        "$2" "$3" >"$PKI/$4.ext"
    openssl x509 -req -in "$PKI/$4.csr" -CA "$PKI/$1.pem" -CAkey "$PKI/$1.key" \
        -CAcreateserial -days 30 -extfile "$PKI/$4.ext" -out "$PKI/$4.crt" 2>/dev/null
    chmod 600 "$PKI/$4.key"
    rm -f "$PKI/$4.csr" "$PKI/$4.ext"
}

make_pki() {
    PKI=$STATE/pki
    mkdir -p "$PKI"
    chmod 700 "$PKI"
    make_ca "Akamu multinode web CA" web-ca
    local web=DNS:localhost,IP:127.0.0.1
    make_leaf web-ca "$web" serverAuth nginx-web
    make_leaf web-ca "$web" serverAuth fe-a-web
    make_leaf web-ca "$web" serverAuth fe-b-web
    make_ca "Akamu multinode links CA" links-ca
    make_leaf links-ca DNS:signer.ca.internal serverAuth signer
    make_leaf links-ca DNS:frontend-a.ca.internal clientAuth fe-a-link
    make_leaf links-ca DNS:frontend-b.ca.internal clientAuth fe-b-link
    make_leaf links-ca DNS:primary.ca.internal clientAuth primary
    local p
    for p in "${PERSPECTIVES[@]}"; do
        make_leaf links-ca "DNS:${p%%:*}.ca.internal" serverAuth "${p%%:*}"
    done
    # The links CA's key signs nothing more: keep it out of the running setup.
    rm -f "$PKI/links-ca.key" "$PKI/web-ca.key" "$PKI"/*.srl
}

# start NAME LOG-NEEDLE COMMAND…: runs COMMAND in the background (output in
# logs/NAME.log), records its pid in run/NAME.pid and PIDS, and waits until
# the log holds a line starting with LOG-NEEDLE ("" = wait for PORT_READY).
start() {
    local name=$1 needle=$2
    shift 2
    : >"$STATE/logs/$name.log"
    "$@" </dev/null >"$STATE/logs/$name.log" 2>&1 &
    local pid=$!
    echo "$pid" >"$STATE/run/$name.pid"
    echo "$name=$pid" >>"$STATE/pids"
    local deadline=$((SECONDS + ${AKAMU_MULTINODE_TIMEOUT:-60}))
    while :; do
        if [ -n "$needle" ] && grep -q "^$needle" "$STATE/logs/$name.log"; then
            return 0
        fi
        if [ -z "$needle" ] && (exec 3<>"/dev/tcp/127.0.0.1/$PORT_READY") 2>/dev/null; then
            return 0
        fi
        if ! kill -0 "$pid" 2>/dev/null; then
            fail "$name" "exited before it was ready"
        fi
        if [ "$SECONDS" -ge "$deadline" ]; then
            fail "$name" "not ready within ${AKAMU_MULTINODE_TIMEOUT:-60} s"
        fi
        sleep 0.1
    done
}

fail() { # NAME WHY
    {
        echo "multinode: $1 $2; the end of $STATE/logs/$1.log:"
        tail -n 40 "$STATE/logs/$1.log" | sed 's/^/    /'
    } >&2
    stop_all >&2
    rm -rf "$STATE/run"
    # A port picked free was taken by someone else before our process bound
    # it: the caller may try again with other ports.
    if grep -qi "address already in use\|address in use" "$STATE/logs/$1.log" 2>/dev/null; then
        exit 75
    fi
    exit 1
}

# Whether PID is still the process `up` started under NAME: alive, and its
# command line names this state directory (a recycled pid does not).
ours() { # NAME PID
    [ -r "/proc/$2/cmdline" ] || return 1
    local marker=$STATE/
    # PostgreSQL's command line names its own directory instead.
    [ "$1" = pg ] && marker=$(cat "$STATE/run/pg.dir" 2>/dev/null || echo "$STATE/")
    tr '\0' ' ' 2>/dev/null <"/proc/$2/cmdline" | grep -qF "$marker" || return 1
    # A zombie has no command line; it is gone already.
    [ "$(awk '{print $3}' "/proc/$2/stat" 2>/dev/null)" != Z ]
}

stop_one() { # NAME
    local file=$STATE/run/$1.pid pid
    [ -f "$file" ] || return 0
    pid=$(<"$file")
    if [[ $pid =~ ^[0-9]+$ ]] && ours "$1" "$pid"; then
        kill -TERM "$pid" 2>/dev/null || true
        local deadline=$((SECONDS + 10))
        while ours "$1" "$pid" && [ "$SECONDS" -lt "$deadline" ]; do
            sleep 0.1
        done
        if ours "$1" "$pid"; then
            echo "multinode: $1 ($pid) did not stop on SIGTERM; SIGKILL" >&2
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    rm -f "$file"
}

stop_all() {
    local name p
    for name in nginx fe-b fe-a signer validator; do
        stop_one "$name"
    done
    for p in "${PERSPECTIVES[@]}"; do
        stop_one "${p%%:*}"
    done
    stop_one pg
    if [ -f "$STATE/run/pg.dir" ]; then
        local dir
        dir=$(<"$STATE/run/pg.dir")
        case "$dir" in /tmp/akamu-multinode-pg.*) rm -rf "$dir" ;; esac
        rm -f "$STATE/run/pg.dir"
    fi
}

up() {
    [ -e "$STATE/run" ] && die "$STATE is in use (run/ exists): run \`$0 down $STATE\` first, or pick an empty directory"
    local bin=${AKAMU_BIN_DIR:-$ROOT/target/debug}
    bin=$(cd "$bin" && pwd) || die "AKAMU_BIN_DIR $bin is not a directory"
    local b
    for b in acme-frontend ca-signer validator-worker; do
        [ -x "$bin/$b" ] || die "$bin/$b is missing: cargo build --workspace --bins"
    done
    local nginx=${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}
    [ -x "$nginx" ] || die "nginx not found (apt-get install nginx)"
    command -v openssl >/dev/null || die "openssl not found"
    command -v python3 >/dev/null || die "python3 not found (picks free ports)"

    mkdir -p "$STATE"/{run,logs,signer,validator,fe-a,fe-b,nginx/{body,proxy,fastcgi,uwsgi,scgi}}
    : >"$STATE/pids"
    make_pki

    local ports
    mapfile -t ports < <(free_ports 15)
    PG_PORT=${ports[14]}
    database_setup
    local signer_port=${ports[0]} port_a=${ports[1]} port_b=${ports[2]} nginx_port=${ports[3]}
    local metrics_a=${ports[4]} metrics_b=${ports[5]}
    local http_port=${AKAMU_HTTP_PORT:-${ports[6]}} tls_port=${AKAMU_TLS_PORT:-${ports[7]}}
    local base_url=https://localhost:$nginx_port
    local uid user
    uid=$(id -u)
    user=$(id -un)
    local dns=""
    [ -n "${AKAMU_DNS_RESOLVER:-}" ] && dns="dns_resolver_addr = \"$AKAMU_DNS_RESOLVER\""

    # The perspectives first: each generates its statement key, which the
    # signer needs.
    local i=0 p name rir port signer_entries="" primary_entries="" var pdns
    for p in "${PERSPECTIVES[@]}"; do
        name=${p%%:*}
        rir=${p#*:}
        port=${ports[$((8 + i))]}
        i=$((i + 1))
        var=AKAMU_DNS_RESOLVER_${name^^}
        pdns=$dns
        [ -n "${!var:-}" ] && pdns="dns_resolver_addr = \"${!var}\""
        mkdir -p "$STATE/$name"
        render "$TEMPLATES/perspective.toml.in" "$STATE/$name.toml" \
            NAME="$name" RIR="$rir" PORT="$port" HTTP_PORT="$http_port" \
            TLS_PORT="$tls_port" DNS_RESOLVER="$pdns"
        start "$name" "READY " "$bin/validator-worker" --config "$STATE/$name.toml"
        primary_entries+=$(printf '[[perspectives]]\nname = "%s"\nrir = "%s"\naddress = "tcp:127.0.0.1:%s"\nserver_name = "%s.ca.internal"\n\n' \
            "$name" "$rir" "$port" "$name")$'\n\n'
        signer_entries+=$(printf '[[perspectives]]\nname = "%s"\nrir = "%s"\npublic_key_file = "%s"\n' \
            "$name" "$rir" "$STATE/$name/statement.key.pub")$'\n\n'
    done

    render "$TEMPLATES/validator-primary.toml.in" "$STATE/validator.toml" \
        UID="$uid" HTTP_PORT="$http_port" TLS_PORT="$tls_port" DNS_RESOLVER="$dns" \
        PRIMARY_PERSPECTIVES="$primary_entries"
    start validator "READY " "$bin/validator-worker" --config "$STATE/validator.toml"

    render "$TEMPLATES/signer.toml.in" "$STATE/signer.toml" \
        SIGNER_PORT="$signer_port" BASE_URL="$base_url" SIGNER_PERSPECTIVES="$signer_entries"
    start signer "READY " "$bin/ca-signer" --config "$STATE/signer.toml"

    local fe fport mport
    for fe in fe-a fe-b; do
        if [ "$fe" = fe-a ]; then fport=$port_a mport=$metrics_a; else fport=$port_b mport=$metrics_b; fi
        render "$TEMPLATES/frontend.toml.in" "$STATE/$fe.toml" \
            NAME="$fe" PORT="$fport" BASE_URL="$base_url" USER="$user" DATABASE="$DATABASE_TOML" \
            HTTP_PORT="$http_port" SIGNER_PORT="$signer_port" METRICS_PORT="$mport"
        start "$fe" "READY " "$bin/acme-frontend" --config "$STATE/$fe.toml"
    done

    local nginx_user=""
    [ "$uid" -eq 0 ] && nginx_user="user root;"
    render "$TEMPLATES/nginx.conf.in" "$STATE/nginx.conf" \
        NGINX_USER="$nginx_user" PORT_A="$port_a" PORT_B="$port_b" NGINX_PORT="$nginx_port"
    PORT_READY=$nginx_port
    start nginx "" "$nginx" -c "$STATE/nginx.conf" -p "$STATE/nginx" -e "$STATE/logs/nginx-error.log" \
        -g "daemon off;"

    cat <<EOF
DIRECTORY=$base_url/acme/directory
FRONTEND_A=https://localhost:$port_a/acme/directory
FRONTEND_B=https://localhost:$port_b/acme/directory
TLS_CA=$STATE/pki/web-ca.pem
ROOT_CERT=$STATE/signer/ca.cert.pem
$DATABASE_REPORT
PIDS=$STATE/pids
CONFIG_A=$STATE/fe-a.toml
CONFIG_B=$STATE/fe-b.toml
AUDIT_LOG=$STATE/signer/audit.log
METRICS_A=http://127.0.0.1:$metrics_a/metrics
METRICS_B=http://127.0.0.1:$metrics_b/metrics
NGINX_ACCESS_LOG=$STATE/logs/nginx-access.log
HTTP_PORT=$http_port
TLS_PORT=$tls_port
LOGS=$STATE/logs
EOF
}

[ $# -eq 2 ] || usage
case "$2" in /*) STATE=$2 ;; *) STATE=$(pwd)/$2 ;; esac
STATE=${STATE%/}
case "$1" in
up)
    mkdir -p "$STATE"
    STATE=$(cd "$STATE" && pwd)
    # Interrupted half-way: stop what was started.
    trap 'echo "multinode: interrupted; stopping what was started" >&2; stop_all; rm -rf "$STATE/run"; exit 130' INT TERM
    for attempt in 1 2 3; do
        rc=0
        (up) || rc=$?
        [ "$rc" -eq 75 ] || exit "$rc"
        echo "multinode: a port was taken meanwhile (attempt $attempt); again with other ports" >&2
    done
    exit 1
    ;;
down)
    [ -d "$STATE" ] || exit 0
    STATE=$(cd "$STATE" && pwd)
    stop_all
    rm -rf "$STATE/run"
    ;;
*) usage ;;
esac
