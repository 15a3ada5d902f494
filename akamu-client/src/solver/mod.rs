//! Challenge solvers: the [`ChallengeSolver`] trait, the built-in http-01
//! and tls-alpn-01 servers, and the DNS record helpers.

mod dns;
mod http01;
mod tls_alpn01;

use std::future::Future;
use std::pin::Pin;

pub use dns::{Dns01Helper, DnsAccount01Helper, DnsPersist01Helper};
pub use http01::Http01Solver;
pub use tls_alpn01::{TlsAlpn01Solver, reverse_dns_name};

use crate::ClientError;

/// The future a [`ChallengeSolver`] method returns.
pub type SolverFuture<'a> = Pin<Box<dyn Future<Output = Result<(), ClientError>> + Send + 'a>>;

/// Something that can publish a key authorization where the CA will look
/// for it (an HTTP server, a DNS API, …).
pub trait ChallengeSolver: Send + Sync {
    /// Publishes `key_auth` for `token`; called before
    /// [`crate::AcmeClient::trigger_challenge`].
    fn present(&self, token: &str, key_auth: &str) -> SolverFuture<'_>;

    /// Withdraws what `present` published; called once the authorization
    /// reached a final state.
    fn cleanup(&self, token: &str) -> SolverFuture<'_>;
}
