//! The validator's server: [`ValidatorService`] behind the shared accept
//! loop ([`daemon_kit::accept`]), which checks the `SO_PEERCRED` allow-list
//! and the protocol preamble per connection and serves tarpc requests
//! concurrently.

use std::future::Future;

use daemon_kit::accept::Acceptor;
use shared_proto::validator::ValidatorRpc;
use tarpc::server::Serve;

use crate::service::ValidatorService;

/// Serves `service` on `acceptor` until `shutdown` completes, then removes
/// the socket.
pub async fn serve_until(
    acceptor: Acceptor,
    service: ValidatorService,
    shutdown: impl Future<Output = ()>,
) {
    acceptor
        .serve_until(
            move |_peer| {
                let serve = service.clone().serve();
                move |ctx, req| Serve::serve(serve, ctx, req)
            },
            shutdown,
        )
        .await;
}
