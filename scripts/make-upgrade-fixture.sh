#!/usr/bin/env bash
# Makes the upgrade fixture (tests/fixtures/upgrade-<commit>/) with the
# binaries of an earlier commit: a CA started by that commit's launcher, an
# account, three certificates (one revoked, one with two names); then a SQL text dump of its database, its audit log, CRL number and
# CA certificate, and a manifest of what a later version must still serve.
# tests/e2e/upgrade.rs starts the current binaries on it.
#
# No private key is written into the fixture: the CA key and the account key
# are Ed25519 keys whose 32-byte seeds are fixed below (and in
# tests/e2e/upgrade.rs), so the test rebuilds them. They protect nothing.
#
# Usage: scripts/make-upgrade-fixture.sh <commit> [<bin dir>]
#   <commit>   the earlier version (e.g. 61d64c9)
#   <bin dir>  that commit's acme-frontend and akamu-cli, already built; by
#              default the commit is exported to a temporary directory and
#              built there (several minutes; about 10 GB while it runs).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
commit=${1:?usage: $0 <commit> [<bin dir>]}
short=$(git rev-parse --short=7 "$commit")
out="$root/tests/fixtures/upgrade-$short"

# Keep these in step with tests/e2e/upgrade.rs.
CA_SEED=9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60
ACCOUNT_SEED=4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb
ED25519_PKCS8_PREFIX=302e020100300506032b657004220420

tmp=$(mktemp -d /tmp/akamu-fixture.XXXXXX)
frontend_pid=""
cleanup() {
    if [ -n "$frontend_pid" ] && kill -0 "$frontend_pid" 2>/dev/null; then
        kill -TERM "$frontend_pid" 2>/dev/null || true
        wait "$frontend_pid" 2>/dev/null || true
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT

if [ $# -ge 2 ]; then
    bins=$(cd "$2" && pwd)
else
    # An export, not a worktree: nothing is registered in the repository.
    mkdir -p "$tmp/src"
    git archive "$commit" | tar -x -C "$tmp/src"
    (cd "$tmp/src" && CARGO_INCREMENTAL=0 cargo build --workspace --bins)
    bins="$tmp/src/target/debug"
fi

ed25519_pem() { # seed file
    printf '%s%s' "$ED25519_PKCS8_PREFIX" "$1" | xxd -r -p \
        | openssl pkey -inform DER -out "$2"
    chmod 600 "$2"
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

state="$tmp/state"
mkdir -p "$state"
ed25519_pem "$CA_SEED" "$state/ca.key.pem"
ed25519_pem "$ACCOUNT_SEED" "$tmp/account.key.pem"
openssl req -x509 -new -key "$state/ca.key.pem" -days 3650 \
    -subj "/O=Akamu upgrade fixture/CN=Akamu upgrade fixture root" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -out "$state/ca.cert.pem" 2>/dev/null

port=$(free_port)
http_port=$(free_port)
cat > "$tmp/akamu.toml" <<TOML
listen_addr = "127.0.0.1:$port"
base_url    = "https://localhost:$port"
state_dir   = "$state"

[database]
path = "$state/akamu.db"

[ca]
key_file      = "$state/ca.key.pem"
cert_file     = "$state/ca.cert.pem"
key_type      = "ed25519"
validity_days = 90
crl_url       = "https://localhost:$port/crl/ca.crl"

[tls]
enabled     = true
cert_file   = "$state/server.crt"
key_file    = "$state/server.key"
server_name = "localhost"

[server]
http_validation_port  = $http_port
allow_private_targets = true
TOML

"$bins/acme-frontend" --config "$tmp/akamu.toml" >"$tmp/stdout" 2>"$tmp/stderr" &
frontend_pid=$!
for _ in $(seq 1 600); do
    grep -q '^READY' "$tmp/stdout" && break
    kill -0 "$frontend_pid" 2>/dev/null || { cat "$tmp/stderr"; exit 1; }
    sleep 0.1
done
grep -q '^READY' "$tmp/stdout" || { echo "no READY line"; cat "$tmp/stderr"; exit 1; }
directory=$(sed -n 's/^READY //p' "$tmp/stdout" | python3 -c 'import json,sys; print(json.load(sys.stdin)["directory"])')

cli() { "$bins/akamu-cli" --json "$@" --server "$directory" --ca-bundle "$state/ca.cert.pem" --account-key "$tmp/account.key.pem"; }
cli account register >"$tmp/account.json"
issue() { # name... -> json
    local args=()
    for d in "$@"; do args+=(--domain "$d"); done
    cli issue "${args[@]}" --challenge http-01 --http-port "$http_port" --out "$tmp/$1.pem"
}
issue kept.localhost >"$tmp/kept.json"
issue revoked.localhost >"$tmp/revoked.json"
issue two.localhost second.localhost >"$tmp/two.json"
cli revoke --cert "$tmp/revoked.localhost.pem" --reason 1 >"$tmp/revoke.json"
sleep 3 # the CRL job asks the signer for a CRL after the revocation

kill -TERM "$frontend_pid"
wait "$frontend_pid" || true
frontend_pid=""

mkdir -p "$out"
python3 - "$state/akamu.db" "$out/akamu.sql" <<'PY'
import sqlite3, sys
con = sqlite3.connect(sys.argv[1])
with open(sys.argv[2], "w") as f:
    # As sqlite3's .dump: tables come in name order, before the rows they
    # refer to exist.
    f.write("PRAGMA foreign_keys=OFF;\n")
    for line in con.iterdump():
        f.write(line + "\n")
PY
cp "$state/audit.log" "$state/ca.cert.pem" "$out/"
for f in crl-number crl_number blocked-keys.txt; do
    [ -f "$state/$f" ] && cp "$state/$f" "$out/"
done
python3 - "$tmp" "$out/manifest.json" "$(git rev-parse "$commit")" <<'PY'
import json, subprocess, sys
tmp, out, commit = sys.argv[1:4]
def load(name):
    with open(f"{tmp}/{name}.json") as f:
        value = json.load(f)
    for temporary in ("certificate", "key"):  # paths in the temporary directory
        value.pop(temporary, None)
    return value
def serial(pem):
    text = subprocess.run(["openssl", "x509", "-noout", "-serial", "-in", pem],
                          capture_output=True, text=True, check=True).stdout
    return text.strip().split("=", 1)[1].lower().lstrip("0")
certs = []
for name, names in [("kept", ["kept.localhost"]), ("revoked", ["revoked.localhost"]),
                    ("two", ["two.localhost", "second.localhost"])]:
    certs.append({"names": names, "serial": serial(f"{tmp}/{names[0]}.pem"),
                  "issue": load(name), "revoked": name == "revoked"})
json.dump({"commit": commit, "account": load("account"), "certificates": certs},
          open(out, "w"), indent=2, sort_keys=True)
PY
ls -la "$out"
echo "fixture written to $out"
