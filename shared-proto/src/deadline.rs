//! Deadlines for every IPC call. tarpc carries the deadline to the server,
//! which abandons work that nobody waits for any more.

use std::time::{Duration, Instant};

use tarpc::context;

/// Deadline for a signer call (one certificate or CRL signature).
pub const SIGNER_CALL: Duration = Duration::from_secs(10);
/// Deadline for a validator call: the validator's own probe deadlines plus slack.
pub const VALIDATOR_CALL: Duration = Duration::from_secs(40);
/// Deadline for connecting and exchanging the protocol preamble.
pub const CONNECT: Duration = Duration::from_secs(3);

/// A fresh tarpc context that expires `after` from now.
pub fn context_with(after: Duration) -> context::Context {
    let mut ctx = context::current();
    ctx.deadline = Instant::now() + after;
    ctx
}
