#!/usr/bin/env bash
# The project's test command: installs what the tests need on a Debian
# machine (build headers, certbot, lego), builds every binary, runs every test.
# Usage: scripts/test.sh [extra cargo test args]
set -euo pipefail
cd "$(dirname "$0")/.."

need_pkgs=()
# perl and make build the vendored OpenSSL (openssl-src, docs/src/cryptography.md).
for pkg in perl make gcc pkg-config libssl-dev certbot lego openssl systemd selinux-policy-dev selinux-policy-default semodule-utils policycoreutils selinux-utils setools softhsm2 opensc python3-venv pebble prometheus nginx postgresql libpq-dev; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need_pkgs+=("$pkg")
done
if [ "${#need_pkgs[@]}" -gt 0 ]; then
    echo "installing: ${need_pkgs[*]}"
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_pkgs[@]}" >/dev/null
fi

# pkilint (PyPI) judges the certificates and CRLs the signer makes (ca-signer/tests/hsm.rs);
# pyca/cryptography >= 50 in the same venv judges ML-DSA and Ed448 (tests/e2e/pq.rs).
if [ ! -x .venv/bin/lint_cabf_serverauth_cert ] \
    || ! .venv/bin/python -c 'import cryptography.hazmat.primitives.asymmetric.mldsa' 2>/dev/null; then
    python3 -m venv .venv && .venv/bin/pip install -q pkilint 'cryptography>=50'
fi

# certbot 5 (PyPI) beside Debian's 2.1: profiles, IP addresses, ARI
# (tests/e2e/certbot5.rs).
if [ ! -x .venv-certbot5/bin/certbot ]; then
    python3 -m venv .venv-certbot5 && .venv-certbot5/bin/pip install -q 'certbot>=5,<6'
fi

# Lints (skip with AKAMU_SKIP_LINT=1 when iterating).
if [ "${AKAMU_SKIP_LINT:-0}" != 1 ]; then
    if cargo clippy --version >/dev/null 2>&1; then
        cargo clippy --workspace --all-targets -- -D warnings
    else
        echo "clippy is not installed for this toolchain: lints skipped"
    fi
fi

# The e2e tests start the real binaries from target/debug.
cargo build --workspace --bins
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
cargo test --workspace --no-fail-fast "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
# One closing line for the whole run.
awk '/^test result:/ { p += $4; f += $6; s += $8 } END { printf "total: %d passed, %d failed, %d skipped\n", p, f, s }' "$log"
exit "$status"
