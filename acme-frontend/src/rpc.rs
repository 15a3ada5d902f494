//! Clients for `ca-signer` and `validator-worker`: one connection each,
//! reconnected with backoff when the peer restarts; every call has a deadline.
//! The signer is reached on its Unix socket or, on another host, over TCP
//! with mutual TLS (`[signer] address`); the validator on its socket.

use std::path::PathBuf;
use std::time::Duration;

use shared_proto::deadline::{self, context_with};
use shared_proto::signer::{
    CaInfo, IssueRequest, IssuedCertificate, SignerError, SignerMetrics, SignerRpcClient,
};
use shared_proto::statement::SignedStatement;
use shared_proto::tls::ClientTls;
use shared_proto::transport::{self, TransportError};
use shared_proto::validator::{
    ValidateRequest, ValidationProblem, ValidationRecord, ValidatorInfo, ValidatorMetrics,
    ValidatorRpcClient,
};
use tarpc::client::RpcError;
use tokio::sync::{Mutex, Notify};

/// Where a peer listens.
pub enum Endpoint {
    /// A Unix socket.
    Unix(PathBuf),
    /// A TCP listener with mutual TLS.
    Tls {
        /// `host:port`.
        address: String,
        /// The client configuration (CA, server name, our certificate).
        tls: ClientTls,
    },
}

impl Endpoint {
    async fn connect(&self) -> Result<transport::Stream, TransportError> {
        Ok(match self {
            Self::Unix(path) => Box::new(transport::connect(path).await?),
            Self::Tls { address, tls } => Box::new(transport::connect_tls(address, tls).await?),
        })
    }
}

/// A reconnecting link to one peer.
struct Link<C> {
    name: &'static str,
    endpoint: Endpoint,
    client: Mutex<Option<C>>,
    make: fn(transport::Stream) -> C,
    /// Notified after each new connection (the first, and every one after
    /// the peer restarted).
    connected: Notify,
}

impl<C: Clone> Link<C> {
    async fn get(&self) -> Result<C, TransportError> {
        let mut slot = self.client.lock().await;
        if let Some(c) = slot.as_ref() {
            return Ok(c.clone());
        }
        // Boxed: connecting (TCP and TLS to a remote signer) is rare, and
        // its state would otherwise be held inline by every call's future.
        let stream = Box::pin(self.endpoint.connect()).await?;
        let client = (self.make)(stream);
        *slot = Some(client.clone());
        self.connected.notify_one();
        tracing::debug!(target: "frontend", peer = self.name, "connected");
        Ok(client)
    }

    async fn reset(&self) {
        *self.client.lock().await = None;
    }
}

/// Why a call did not produce an answer from the peer's service.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The peer could not be reached within the retry budget.
    #[error("{peer} unavailable: {detail}")]
    Unavailable {
        /// `signer` or `validator`.
        peer: &'static str,
        /// What went wrong last.
        detail: String,
    },
}

/// Both peers.
pub struct Peers {
    signer: Link<SignerRpcClient>,
    validator: Link<ValidatorRpcClient>,
}

/// How long a call keeps retrying a peer that is down (the launcher restarts
/// crashed children within about a second).
const RETRY_BUDGET: Duration = Duration::from_secs(15);

impl Peers {
    /// Links to the two peers; nothing connects until the first call.
    pub fn new(signer: Endpoint, validator_socket: PathBuf) -> Self {
        Self {
            signer: Link {
                name: "signer",
                endpoint: signer,
                client: Mutex::new(None),
                make: |s| SignerRpcClient::new(Default::default(), transport::framed(s)).spawn(),
                connected: Notify::new(),
            },
            validator: Link {
                name: "validator",
                endpoint: Endpoint::Unix(validator_socket),
                client: Mutex::new(None),
                make: |s| ValidatorRpcClient::new(Default::default(), transport::framed(s)).spawn(),
                connected: Notify::new(),
            },
        }
    }

    /// Asks the signer for a certificate.
    pub async fn issue(
        &self,
        request: IssueRequest,
    ) -> Result<Result<IssuedCertificate, SignerError>, CallError> {
        retry(&self.signer, "issue_certificate", |c| {
            let request = request.clone();
            async move {
                c.issue_certificate(context_with(deadline::SIGNER_CALL), request)
                    .await
            }
        })
        .await
    }

    /// What the CA is, as the signer owns it.
    pub async fn ca_info(&self) -> Result<Result<CaInfo, SignerError>, CallError> {
        retry(&self.signer, "ca_info", |c| async move {
            c.ca_info(context_with(deadline::SIGNER_CALL)).await
        })
        .await
    }

    /// Notified each time a new connection to the signer is made: after its
    /// restart the CA's facts may have changed.
    pub fn signer_connected(&self) -> &Notify {
        &self.signer.connected
    }

    /// Asks the signer to sign a CRL.
    pub async fn generate_crl(
        &self,
        request: shared_proto::signer::CrlRequest,
    ) -> Result<Result<shared_proto::signer::SignedCrl, SignerError>, CallError> {
        retry(&self.signer, "generate_crl", |c| {
            let request = request.clone();
            async move {
                c.generate_crl(context_with(deadline::SIGNER_CALL), request)
                    .await
            }
        })
        .await
    }

    /// Reads the signer's transparency log (checkpoint, key, tiles).
    pub async fn log_read(
        &self,
        request: shared_proto::signer::LogRead,
    ) -> Result<Result<Vec<u8>, shared_proto::signer::LogReadError>, CallError> {
        retry(&self.signer, "log_read", |c| {
            let request = request.clone();
            async move {
                c.log_read(context_with(deadline::SIGNER_CALL), request)
                    .await
            }
        })
        .await
    }

    /// The signer's figures for `/metrics`: one attempt within `deadline`
    /// (connection included), `None` if the signer did not answer.
    pub async fn signer_metrics(&self, deadline: Duration) -> Option<SignerMetrics> {
        once(&self.signer, "metrics", deadline, |c| async move {
            c.metrics(context_with(deadline)).await
        })
        .await
    }

    /// The validator's figures for `/metrics`, like [`Self::signer_metrics`].
    pub async fn validator_metrics(&self, deadline: Duration) -> Option<ValidatorMetrics> {
        once(&self.validator, "metrics", deadline, |c| async move {
            c.metrics(context_with(deadline)).await
        })
        .await
    }

    /// What the validator enforces (its CAA identities).
    pub async fn validator_info(&self) -> Result<ValidatorInfo, CallError> {
        retry(&self.validator, "validator_info", |c| async move {
            c.validator_info(context_with(deadline::VALIDATOR_CALL))
                .await
        })
        .await
    }

    /// Notified each time a new connection to the validator is made: after
    /// its restart its configuration may have changed.
    pub fn validator_connected(&self) -> &Notify {
        &self.validator.connected
    }

    /// Asks the validator to look CAA up again for one of its statements.
    pub async fn recheck_caa(
        &self,
        statement: SignedStatement,
    ) -> Result<Result<SignedStatement, ValidationProblem>, CallError> {
        retry(&self.validator, "recheck_caa", |c| {
            let statement = statement.clone();
            async move {
                c.recheck_caa(context_with(deadline::VALIDATOR_CALL), statement)
                    .await
            }
        })
        .await
    }

    /// Asks the validator for a statement of `name`, below the identifier
    /// of `statement`, with a CAA check of `name` itself.
    pub async fn caa_for_subdomain(
        &self,
        statement: SignedStatement,
        name: shared_proto::Identifier,
    ) -> Result<Result<SignedStatement, ValidationProblem>, CallError> {
        retry(&self.validator, "caa_for_subdomain", |c| {
            let (statement, name) = (statement.clone(), name.clone());
            async move {
                c.caa_for_subdomain(context_with(deadline::VALIDATOR_CALL), statement, name)
                    .await
            }
        })
        .await
    }

    /// Asks the validator to probe a challenge.
    pub async fn validate(
        &self,
        request: ValidateRequest,
    ) -> Result<Result<ValidationRecord, ValidationProblem>, CallError> {
        retry(&self.validator, "validate_challenge", |c| {
            let request = request.clone();
            async move {
                c.validate_challenge(context_with(deadline::VALIDATOR_CALL), request)
                    .await
            }
        })
        .await
    }
}

/// Calls `f` on the link's client once, within `deadline` (connection
/// included); a failure resets the link. Counted for `/metrics` like every
/// call.
async fn once<C, T, F, Fut>(
    link: &Link<C>,
    method: &'static str,
    deadline: Duration,
    f: F,
) -> Option<T>
where
    C: Clone,
    F: FnOnce(C) -> Fut,
    Fut: std::future::Future<Output = Result<T, RpcError>>,
{
    let attempt = async {
        let Ok(client) = link.get().await else {
            crate::metrics::rpc(link.name, method, Err("connect"));
            return None;
        };
        match timed(link.name, method, f(client)).await {
            Ok(v) => Some(v),
            Err(_) => {
                link.reset().await;
                None
            }
        }
    };
    match tokio::time::timeout(deadline, attempt).await {
        Ok(v) => v,
        Err(_) => {
            crate::metrics::rpc(link.name, method, Err("deadline"));
            None
        }
    }
}

/// One call that records its duration or its failure for `/metrics` when
/// it ends.
///
/// A combinator rather than an `async fn`: an `async fn` would hold the
/// call's future twice, once as its argument and once where it is awaited
/// (tarpc's call futures are ≈ 4.5 KB, and every RPC-calling handler's
/// future, allocated per request, carried both).
fn timed<T>(
    peer: &'static str,
    method: &'static str,
    call: impl std::future::Future<Output = Result<T, RpcError>>,
) -> impl std::future::Future<Output = Result<T, RpcError>> {
    use futures::FutureExt;
    let started = tokio::time::Instant::now();
    call.inspect(move |result| {
        crate::metrics::rpc(
            peer,
            method,
            match result {
                Ok(_) => Ok(started.elapsed()),
                Err(RpcError::DeadlineExceeded) => Err("deadline"),
                Err(_) => Err("transport"),
            },
        );
    })
}

/// Calls `f` on the link's client; on transport failures resets the link and
/// retries with backoff until [`RETRY_BUDGET`] is spent. A deadline exceeded
/// by the peer itself is not retried. Every attempt is counted for
/// `/metrics` under `method`.
async fn retry<C, T, F, Fut>(link: &Link<C>, method: &'static str, f: F) -> Result<T, CallError>
where
    C: Clone,
    F: Fn(C) -> Fut,
    Fut: std::future::Future<Output = Result<T, RpcError>>,
{
    let start = tokio::time::Instant::now();
    let mut backoff = Duration::from_millis(50);
    loop {
        let detail = match link.get().await {
            Ok(client) => match timed(link.name, method, f(client)).await {
                Ok(v) => return Ok(v),
                Err(RpcError::DeadlineExceeded) => {
                    return Err(CallError::Unavailable {
                        peer: link.name,
                        detail: "call exceeded its deadline".into(),
                    });
                }
                Err(e) => {
                    link.reset().await;
                    e.to_string()
                }
            },
            Err(e) => {
                crate::metrics::rpc(link.name, method, Err("connect"));
                e.to_string()
            }
        };
        if start.elapsed() + backoff > RETRY_BUDGET {
            tracing::warn!(target: "frontend", peer = link.name, %detail, "giving up on peer");
            return Err(CallError::Unavailable {
                peer: link.name,
                detail,
            });
        }
        tracing::debug!(target: "frontend", peer = link.name, %detail, "retrying");
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(1));
    }
}

#[cfg(test)]
mod future_sizes {
    use super::*;
    use crate::http::router::tests::future_size as size;

    #[test]
    fn a_call_holds_the_rpc_future_once() {
        // Every finalize and every validation allocates these futures; an
        // `async fn` wrapper once held tarpc's call future twice (10.8 KB).
        let rpc = size(|c: &'static ValidatorRpcClient, r: ValidateRequest| {
            c.validate_challenge(tarpc::context::current(), r)
        });
        let call = size(|p: &'static Peers, r: ValidateRequest| p.validate(r));
        assert!(call < rpc * 3 / 2, "validate: {call} bytes around {rpc}");
        let rpc = size(|c: &'static SignerRpcClient, r: IssueRequest| {
            c.issue_certificate(tarpc::context::current(), r)
        });
        let call = size(|p: &'static Peers, r: IssueRequest| p.issue(r));
        assert!(call < rpc * 3 / 2, "issue: {call} bytes around {rpc}");
    }
}
