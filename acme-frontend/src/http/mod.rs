//! HTTP: the listener (plain or TLS), request limits, routing and the
//! headers every ACME response carries.

pub mod client_ip;
pub mod idle;
pub mod message;
pub mod resource;
pub mod response;
pub mod router;
pub mod server;

pub use message::{Reply, Request};
