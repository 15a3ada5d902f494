//! Tests of what is deployed next to the binaries, not of the binaries:
//! `systemd/` (units, sysusers.d, tmpfiles.d, example configs) and
//! `selinux/` (the policy module). The library is empty; the checks are the
//! integration tests in `tests/`:
//!
//! - `systemd.rs`: `systemd-analyze verify` is silent on every unit,
//!   `systemd-analyze security` keeps each service within its exposure
//!   budget, sysusers.d and tmpfiles.d create what the units expect.
//! - `selinux.rs`: the module builds with `selinux-policy-dev`, links into a
//!   copy of the system's policy store, and setools finds no rule that lets
//!   a domain reach what it must not (`selinux_checks.py`).
//! - `examples.rs`: the example configs parse with the real config types and
//!   agree with the units' paths.
//!
//! Each check also runs against a planted mistake to prove it can fail.
//! `docs/src/hardening.md` explains the rules and records the scores.
