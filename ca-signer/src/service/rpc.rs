//! The tarpc handler: runs the [`Issuer`] on a blocking thread per call and
//! maps its errors once.

use std::sync::Arc;
use std::time::Instant;

use shared_proto::peer::Peer;
use shared_proto::signer::{
    CaInfo, CrlRequest, IssueRequest, IssuedCertificate, LogRead, LogReadError, SignedCrl,
    SignerError, SignerMetrics, SignerRpc,
};
use tarpc::context::Context;

use super::Issuer;
use crate::error::Error;

/// The tarpc handler for one connection.
#[derive(Clone)]
pub struct SignerService {
    issuer: Arc<Issuer>,
    peer: Peer,
}

impl SignerService {
    /// A handler for a connection from `peer` (a uid on the Unix socket, a
    /// client name over mutual TLS).
    pub fn new(issuer: Arc<Issuer>, peer: Peer) -> Self {
        Self { issuer, peer }
    }

    fn expired(&self, ctx: &Context) -> bool {
        if ctx.deadline <= Instant::now() {
            tracing::warn!(target: "signer", peer = %self.peer, "request arrived after its deadline");
            return true;
        }
        false
    }
}

impl SignerRpc for SignerService {
    async fn issue_certificate(
        self,
        ctx: Context,
        request: IssueRequest,
    ) -> Result<IssuedCertificate, SignerError> {
        if self.expired(&ctx) {
            return Err(SignerError::Internal);
        }
        let peer = self.peer.clone();
        let requester = self.peer.clone();
        let account = request.account_uri.clone();
        let order = request.order_id.clone();
        let sans: Vec<String> = request
            .identifiers
            .iter()
            .map(ToString::to_string)
            .collect();
        let issuer = Arc::clone(&self.issuer);
        // Signing is CPU work (and may block on a token): keep it off the
        // async workers. If the deadline passes, tarpc drops this future and
        // the result is discarded.
        let result = tokio::task::spawn_blocking(move || {
            issuer.issue(
                &request,
                Some(&requester),
                crate::unix_now(),
                &mut rand::rng(),
            )
        })
        .await
        .map_err(Error::from)
        .and_then(|r| r);
        match result {
            Ok(cert) => {
                tracing::info!(
                    target: "signer",
                    serial = %cert.serial_hex,
                    sans = ?sans,
                    peer = %peer,
                    account = %account,
                    order = %order,
                    not_before = cert.not_before,
                    not_after = cert.not_after,
                    "issued certificate"
                );
                Ok(cert)
            }
            Err(e) => {
                let reply = e.to_signer_error();
                if reply != SignerError::Internal {
                    tracing::warn!(
                        target: "signer",
                        sans = ?sans,
                        peer = %peer,
                        account = %account,
                        order = %order,
                        reason = %e,
                        "refused certificate"
                    );
                }
                Err(reply)
            }
        }
    }

    async fn ca_info(self, _ctx: Context) -> Result<CaInfo, SignerError> {
        Ok(self.issuer.ca_info())
    }

    async fn metrics(self, _ctx: Context) -> SignerMetrics {
        // Reads a few atomics and two small files under /proc/self.
        SignerMetrics {
            log: self.issuer.mtc().map(|log| log.figures()),
            ..crate::metrics::snapshot()
        }
    }

    async fn log_read(self, _ctx: Context, request: LogRead) -> Result<Vec<u8>, LogReadError> {
        let log = self.issuer.mtc().ok_or(LogReadError::Disabled)?;
        let path = |kind, index, width| akamu_tlog::TilePath { kind, index, width };
        match request {
            LogRead::Checkpoint => Ok(log.checkpoint().as_bytes().to_vec()),
            LogRead::VerifierKey => Ok(format!("{}\n", log.verifier_key()).into_bytes()),
            LogRead::HashTile {
                level,
                index,
                width,
            } => {
                if level > akamu_tlog::tile::MAX_LEVEL || width == 0 || width > 256 {
                    return Err(LogReadError::NotFound);
                }
                log.hash_tile(&path(akamu_tlog::TileKind::Hash(level), index, width))
                    .ok_or(LogReadError::NotFound)
            }
            LogRead::Entries { index, width, from } => {
                let log = Arc::clone(log);
                // A file read: off the async workers.
                tokio::task::spawn_blocking(move || log.entries(index, width, from))
                    .await
                    .map_err(|_| LogReadError::Internal)?
                    .map_err(|e| {
                        tracing::error!(target: "signer", error = %e, "reading log entries");
                        LogReadError::Internal
                    })?
                    .ok_or(LogReadError::NotFound)
            }
        }
    }

    async fn generate_crl(
        self,
        ctx: Context,
        request: CrlRequest,
    ) -> Result<SignedCrl, SignerError> {
        if self.expired(&ctx) {
            return Err(SignerError::Internal);
        }
        let peer = self.peer.clone();
        let requester = self.peer.clone();
        let issuer = Arc::clone(&self.issuer);
        let result = tokio::task::spawn_blocking(move || {
            issuer.generate_crl(&request, Some(&requester), crate::unix_now())
        })
        .await
        .map_err(Error::from)
        .and_then(|r| r);
        match result {
            Ok(crl) => {
                tracing::info!(
                    target: "signer",
                    number = crl.number,
                    peer = %peer,
                    next_update = crl.next_update,
                    "signed CRL"
                );
                Ok(crl)
            }
            Err(e) => Err(e.to_signer_error()),
        }
    }
}
