//! End-to-end tests of Akāmu: the real `acme-frontend`, `ca-signer` and
//! `validator-worker` binaries on real sockets, judged by third-party clients
//! (instant-acme, certbot), openssl, and hand-built requests.
//!
//! Build the binaries first: `cargo build --workspace --bins`, then
//! `cargo test -p tests`. Each test starts its own CA in its own temp dir;
//! set `AKAMU_E2E_SHOW_OUTPUT=1` to see the CA's output even when a test
//! passes (it is always printed when a test fails).

/// Harness: spawn the CA, a DNS server, an http-01 token server, clients.
mod support;

/// A user's happy paths: account, order, http-01 and dns-01, finalize,
/// download, and `openssl verify` of the chain.
mod issuance;

/// Debian's certbot, unmodified, obtains a certificate in standalone mode.
mod certbot;

/// Debian's lego, unmodified, obtains a certificate with its http-01 server.
mod lego;

/// Crash safety: kill -9 the signer or the validator, the launcher restarts
/// it, and no order or challenge is left stuck.
mod restart;

/// Hand-built bad requests get precise RFC 8555 problem documents, never 500.
mod bad_input;
