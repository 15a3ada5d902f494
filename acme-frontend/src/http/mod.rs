//! HTTP: the listener (plain or TLS), request limits, routing and the
//! headers every ACME response carries.

pub mod idle;
pub mod response;
pub mod router;
pub mod server;

pub use response::{Reply, Request};
