//! Test harness shared by every e2e test.

// Each test uses a different part of the harness.
#![allow(dead_code)]

/// Hand-driven RFC 8555 sessions over raw JWS.
pub(crate) mod acme;
/// Judging certificates: `openssl verify` and SANs.
pub(crate) mod certs;
/// instant-acme and raw HTTPS clients trusting the test CA.
pub(crate) mod client;
/// A real DNS server (hickory-server) for the validator's lookups.
pub(crate) mod dns;
/// An HTTP endpoint through which hook scripts publish TXT records.
pub(crate) mod dns_control;
/// Several front ends on one database, with one signer and one validator.
pub(crate) mod fleet;
/// The applicant's http-01 token server.
pub(crate) mod http01;
/// The links' PKI (rcgen): the mutual-TLS links between our processes.
pub(crate) mod link_pki;
/// `scripts/multinode.sh up|down` driven from a test.
pub(crate) mod multinode;
/// The operator's tools: `akamu-cli` and the `openssl` CLI.
pub(crate) mod operator;
/// `/proc` queries: children, states, listening sockets.
pub(crate) mod pids;
/// Spawning the CA and waiting for its READY line.
pub(crate) mod procs;
/// Test PKIs (openssl) and TLS clients for the TLS-mode tests.
pub(crate) mod tls;
/// Running lego and certbot against a test CA.
pub(crate) mod tools;
