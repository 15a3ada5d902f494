//! The built-in http-01 responder (RFC 8555 §8.3): a small hyper server
//! answering `GET /.well-known/acme-challenge/<token>`.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use super::{ChallengeSolver, SolverFuture};
use crate::ClientError;

/// Path prefix the CA fetches.
const PREFIX: &str = "/.well-known/acme-challenge/";
/// A connection that has not sent its headers by then is dropped.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Upper bound on one connection's life.
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(30);

type Tokens = Arc<RwLock<HashMap<String, String>>>;

/// Serves key authorizations over plain HTTP. Stops when dropped.
pub struct Http01Solver {
    addr: SocketAddr,
    tokens: Tokens,
    running: Mutex<Option<(SocketAddr, JoinHandle<()>)>>,
}

impl Http01Solver {
    /// A solver for `port` on every IPv4 address (not bound until
    /// [`Http01Solver::start`]).
    pub fn new(port: u16) -> Self {
        Self::with_addr(SocketAddr::from((Ipv4Addr::UNSPECIFIED, port)))
    }

    /// A solver for a specific address (e.g. `127.0.0.1:5002` in tests;
    /// port 0 picks a free port, see [`Http01Solver::local_addr`]).
    pub fn with_addr(addr: SocketAddr) -> Self {
        Self {
            addr,
            tokens: Arc::default(),
            running: Mutex::new(None),
        }
    }

    /// Binds the port and serves in a background task. Starting twice is a
    /// no-op.
    pub async fn start(&self) -> Result<(), ClientError> {
        if self.lock().is_some() {
            return Ok(());
        }
        let listener = TcpListener::bind(self.addr).await.map_err(|e| {
            ClientError::Io(format!("failed to bind port {}: {e}", self.addr.port()))
        })?;
        let local = listener.local_addr()?;
        let tokens = Arc::clone(&self.tokens);
        let task = tokio::spawn(serve(listener, tokens));
        *self.lock() = Some((local, task));
        Ok(())
    }

    /// The bound address, once started.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.lock().as_ref().map(|(a, _)| *a)
    }

    /// Stops serving (also done on drop).
    pub fn stop(&self) {
        if let Some((_, task)) = self.lock().take() {
            task.abort();
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<(SocketAddr, JoinHandle<()>)>> {
        // Never held across a panic point; recover anyway.
        self.running.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn tokens_mut(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, String>> {
        self.tokens.write().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for Http01Solver {
    fn drop(&mut self) {
        self.stop();
    }
}

impl ChallengeSolver for Http01Solver {
    fn present(&self, token: &str, key_auth: &str) -> SolverFuture<'_> {
        self.tokens_mut()
            .insert(token.to_owned(), key_auth.to_owned());
        Box::pin(async { Ok(()) })
    }

    fn cleanup(&self, token: &str) -> SolverFuture<'_> {
        self.tokens_mut().remove(token);
        Box::pin(async { Ok(()) })
    }
}

async fn serve(listener: TcpListener, tokens: Tokens) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!("http-01 solver: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let tokens = Arc::clone(&tokens);
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let tokens = Arc::clone(&tokens);
                async move { Ok::<_, Infallible>(answer(&tokens, &req)) }
            });
            let conn = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service);
            match tokio::time::timeout(CONNECTION_TIMEOUT, conn).await {
                Ok(Err(e)) => tracing::debug!(%peer, "http-01 solver connection: {e}"),
                Err(_) => tracing::debug!(%peer, "http-01 solver connection timed out"),
                Ok(Ok(())) => {}
            }
        });
    }
}

fn answer(tokens: &Tokens, req: &http::Request<Incoming>) -> Response<Full<Bytes>> {
    let found = (req.method() == Method::GET || req.method() == Method::HEAD)
        .then(|| req.uri().path().strip_prefix(PREFIX))
        .flatten()
        .and_then(|token| {
            tokens
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .get(token)
                .cloned()
        });
    tracing::debug!(
        path = req.uri().path(),
        found = found.is_some(),
        "http-01 request"
    );
    let mut resp = match found {
        Some(key_auth) => Response::new(Full::new(Bytes::from(key_auth))),
        None => {
            let mut r = Response::new(Full::new(Bytes::from_static(b"not found\n")));
            *r.status_mut() = StatusCode::NOT_FOUND;
            r
        }
    };
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain"),
    );
    resp
}
