//! Test support shared by the workspace: the e2e tests (`tests`), the
//! akamu-client and akamu-cli integration tests, and acme-bench.
//!
//! - [`dns`]: a loopback authoritative DNS server (hickory-server, UDP and
//!   TCP on 127.0.0.1) answering `A 127.0.0.1` for test names and serving
//!   dns-01 TXT records set at run time.
//! - [`softhsm`]: SoftHSM2 tokens in a directory of their own.
//! - [`unix_peers`]: hostile peers for a daemon's Unix socket.
//! - [`postgres`]: a real PostgreSQL server (initdb + postgres on a loopback
//!   port, as an unprivileged user when the tests run as root).
//! - [`ports`]: loopback TCP ports for servers a test starts later, drawn
//!   from below the kernel's ephemeral range.

pub mod dns;
pub mod ports;
pub mod postgres;
pub mod socks;
pub mod softhsm;
pub mod unix_peers;
