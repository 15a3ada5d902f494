//! The accept loop: `SO_PEERCRED` allow-list and protocol preamble per
//! connection, then tarpc requests served concurrently.

use std::time::Duration;

use futures::StreamExt;
use shared_proto::peer::AllowList;
use shared_proto::transport::{accept_handshake, framed};
use shared_proto::validator::ValidatorRpc;
use tarpc::server::{BaseChannel, Channel};
use tokio::net::UnixListener;

use crate::service::ValidatorService;

/// Accepts connections on `listener` forever.
pub async fn serve(listener: UnixListener, allow: AllowList, service: ValidatorService) {
    loop {
        let mut stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let allow = allow.clone();
        let service = service.clone();
        tokio::spawn(async move {
            match accept_handshake(&mut stream, &allow).await {
                Ok(peer) => tracing::debug!(uid = peer.uid, pid = ?peer.pid, "peer connected"),
                Err(e) => {
                    tracing::warn!(error = %e, "refused connection");
                    return;
                }
            }
            BaseChannel::with_defaults(framed(stream))
                .execute(service.serve())
                .for_each(|request| async {
                    tokio::spawn(request);
                })
                .await;
        });
    }
}
