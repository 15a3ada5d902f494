//! Loopback TCP ports for servers a test starts in another process (the CA,
//! Pebble) or binds later (a challenge solver whose port a server's
//! configuration must name first).
//!
//! Binding port 0 and releasing it hands out a port from the kernel's
//! *ephemeral* range, and that range is exactly where every outgoing
//! connection of the machine takes its source port. Between the release and
//! the moment the test's server binds the port, any client connection (of
//! this test, of a test running beside it, of another process) may take it
//! as its source port, and the bind fails with `EADDRINUSE`. That happened in
//! CI. So [`free_port`] hands out ports *below* the ephemeral range, never the
//! same port twice in one process, and only ports it could bind a moment ago.

use std::collections::HashSet;
use std::net::{Ipv4Addr, TcpListener};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

/// Lowest port handed out (well above the registered services tests may
/// meet on a developer's machine).
const FLOOR: u16 = 10_000;

/// Where the kernel's ephemeral range starts when it cannot be read
/// (Linux's default).
const DEFAULT_EPHEMERAL_START: u16 = 32_768;

/// Ports already handed out by this process.
static HANDED_OUT: Mutex<Option<HashSet<u16>>> = Mutex::new(None);

/// The first port of the kernel's ephemeral range
/// (`/proc/sys/net/ipv4/ip_local_port_range`).
fn ephemeral_start() -> u16 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(DEFAULT_EPHEMERAL_START)
}

/// The range [`free_port`] draws from: `FLOOR` up to the ephemeral range, or
/// (when the ephemeral range starts too low to leave room) `FLOOR..65535`.
fn candidate_range() -> (u16, u16) {
    let start = ephemeral_start();
    if start > FLOOR + 1_000 {
        (FLOOR, start)
    } else {
        (FLOOR, u16::MAX)
    }
}

/// A TCP port on 127.0.0.1 that was free a moment ago, outside the kernel's
/// ephemeral range and not handed out before by this process.
///
/// # Panics
///
/// When no port of the range can be bound (a test machine out of ports).
pub fn free_port() -> u16 {
    try_free_port().expect("no free TCP port on 127.0.0.1 below the ephemeral range")
}

/// [`free_port`] without the panic: `None` when no port could be bound.
pub fn try_free_port() -> Option<u16> {
    let (lo, hi) = candidate_range();
    let span = u32::from(hi - lo);
    // A start that differs between processes (test binaries run one after
    // another, and two developers' runs may overlap) and between calls.
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0)
        ^ std::process::id().wrapping_mul(2_654_435_761);
    let mut guard = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
    let handed_out = guard.get_or_insert_with(HashSet::new);
    for i in 0..span {
        // `(seed + i) % span < span ≤ u16::MAX - lo`, so the sum fits.
        let port = lo + ((seed.wrapping_add(i)) % span) as u16;
        if handed_out.contains(&port) {
            continue;
        }
        if TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok() {
            handed_out.insert(port);
            return Some(port);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_below_the_ephemeral_range_and_never_repeat() {
        let (lo, hi) = candidate_range();
        let mut seen = HashSet::new();
        for _ in 0..200 {
            let port = free_port();
            assert!((lo..hi).contains(&port), "{port} outside {lo}..{hi}");
            assert!(seen.insert(port), "{port} handed out twice");
        }
    }

    #[test]
    fn a_handed_out_port_can_be_bound() {
        let port = free_port();
        TcpListener::bind((Ipv4Addr::LOCALHOST, port)).expect("bind the handed-out port");
    }
}
