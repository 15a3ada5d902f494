//! The IPC contract between `acme-frontend`, `ca-signer` and `validator-worker`.
//!
//! * [`signer`] and [`validator`] hold the two tarpc services and their types.
//! * [`transport`] is the transport: Unix sockets (bind with safe
//!   permissions, `SO_PEERCRED` allow-list) or TCP with mutual TLS ([`tls`]:
//!   client-certificate names on an allow-list), then the protocol-version
//!   preamble and bincode frames with a length cap.
//! * [`deadline`] builds tarpc contexts with an explicit deadline.
//! * [`statement`] is the validator-signed statement of what it validated.
//! * [`quorum`] is the multi-perspective quorum rule (BR §3.2.2.9).
//! * [`metrics`] holds the figures the daemons report to the frontend's
//!   `/metrics`.
//!
//! bincode is positional: append fields and variants at the end, never reorder,
//! and bump [`PROTOCOL_VERSION`] on any change of a wire type.

pub mod deadline;
pub mod identifier;
pub mod metrics;
pub mod peer;
pub mod quorum;
pub mod signer;
pub mod statement;
pub mod tls;
pub mod transport;
pub mod validator;

pub use identifier::{Identifier, IdentifierKind};

/// Version of the wire types in this crate. Both ends send it in the connection
/// preamble and refuse to talk to a different version.
pub const PROTOCOL_VERSION: u16 = 21;
