//! Bounded property-based fuzzing of everything that reads untrusted bytes
//! (issue 18): JWS and JWK, CSRs, validation statements, RPC frames and the
//! connection preamble, DNS answers, http-01 responses, tls-alpn-01
//! certificates and ARI certificate identifiers.
//!
//! Each target starts from valid inputs (seeds) and mutates them
//! ([`harness`]): bit flips, interesting bytes and integers, insertions,
//! deletions, duplications, truncations and splices between seeds. A target
//! asserts that the parser never panics and that no single allocation made
//! while it runs exceeds [`harness::ALLOCATION_LIMIT`] (a counting global
//! allocator, [`alloc`]); any other property it checks is its own.
//!
//! `cargo test -p tests --test fuzz` runs a few hundred cases per target
//! with a fixed seed; `scripts/fuzz.sh` runs many more with a random seed
//! (`AKAMU_FUZZ_CASES`, `AKAMU_FUZZ_SEED`). A failing case prints its seed,
//! case number and input, and writes the input under
//! `target/fuzz-failures/`; it becomes a regression test in [`regressions`].
#![allow(clippy::unwrap_used)]

mod alloc;
mod ari;
mod csr;
mod dns;
mod harness;
mod http01;
mod jose;
mod regressions;
mod rpc;
mod tls_alpn01;

#[global_allocator]
static ALLOCATOR: alloc::Counting = alloc::Counting;
