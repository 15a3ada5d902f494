//! The applicant's side of http-01: a plain-HTTP hyper server on 127.0.0.1
//! at the CA's `http_validation_port`, serving
//! `/.well-known/acme-challenge/<token>` from a shared map and 404 otherwise.
//!
//! Tests can delay every answer (to kill the validator mid-validation) and
//! count the requests the validator made.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

const PREFIX: &str = "/.well-known/acme-challenge/";

/// A running token server. Stops when dropped.
pub(crate) struct Http01Server {
    addr: SocketAddr,
    state: Arc<State>,
    task: JoinHandle<()>,
}

#[derive(Default)]
struct State {
    tokens: Mutex<HashMap<String, String>>,
    delay: Mutex<Duration>,
    hits: AtomicU64,
    hit: Notify,
}

impl Http01Server {
    /// Listens on `127.0.0.1:port` (the CA's `http_validation_port`).
    pub(crate) async fn start(port: u16) -> Http01Server {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, port))
            .await
            .unwrap_or_else(|e| panic!("bind http-01 server on 127.0.0.1:{port}: {e}"));
        let addr = listener.local_addr().expect("local_addr");
        let state = Arc::new(State::default());
        let task = tokio::spawn(serve(listener, state.clone()));
        Http01Server { addr, state, task }
    }

    /// Where it listens.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves `key_authorization` at `/.well-known/acme-challenge/<token>`.
    pub(crate) fn set(&self, token: &str, key_authorization: &str) {
        lock(&self.state.tokens).insert(token.to_owned(), key_authorization.to_owned());
    }

    /// Stops serving `token` (it then gets 404).
    pub(crate) fn remove(&self, token: &str) {
        lock(&self.state.tokens).remove(token);
    }

    /// Delays every answer by `delay` (zero by default).
    pub(crate) fn set_delay(&self, delay: Duration) {
        *lock(&self.state.delay) = delay;
    }

    /// Number of challenge requests received so far.
    pub(crate) fn hits(&self) -> u64 {
        self.state.hits.load(Ordering::SeqCst)
    }

    /// Waits until at least `n` challenge requests have arrived.
    pub(crate) async fn wait_hits(&self, n: u64, timeout: Duration) {
        let wait = async {
            loop {
                let notified = self.state.hit.notified();
                if self.hits() >= n {
                    return;
                }
                notified.await;
            }
        };
        if tokio::time::timeout(timeout, wait).await.is_err() {
            panic!(
                "the validator made {} http-01 requests, expected {n} within {timeout:?}",
                self.hits()
            );
        }
    }
}

impl Drop for Http01Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(listener: TcpListener, state: Arc<State>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let state = state.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| answer(state.clone(), req));
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn answer(
    state: Arc<State>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let Some(token) = req.uri().path().strip_prefix(PREFIX) else {
        return Ok(status(StatusCode::NOT_FOUND, ""));
    };
    state.hits.fetch_add(1, Ordering::SeqCst);
    state.hit.notify_waiters();
    let delay = *lock(&state.delay);
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let body = lock(&state.tokens).get(token).cloned();
    Ok(match body {
        Some(body) => status(StatusCode::OK, &body),
        None => status(StatusCode::NOT_FOUND, "no such token"),
    })
}

fn status(code: StatusCode, body: &str) -> Response<Full<Bytes>> {
    let mut rsp = Response::new(Full::new(Bytes::from(body.to_owned())));
    *rsp.status_mut() = code;
    rsp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain"),
    );
    rsp
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod unit {
    use http_body_util::{BodyExt, Empty};
    use hyper_util::client::legacy::Client;

    use super::*;

    async fn get(addr: SocketAddr, path: &str) -> (StatusCode, String) {
        let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
        let uri = format!("http://{addr}{path}").parse().expect("uri");
        let rsp = client.get(uri).await.expect("GET");
        let code = rsp.status();
        let body = rsp.into_body().collect().await.expect("body").to_bytes();
        (code, String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test]
    async fn serves_tokens_and_404s_the_rest() {
        let port = crate::support::procs::free_port();
        let server = Http01Server::start(port).await;
        server.set("tok", "tok.thumb");
        assert_eq!(
            get(server.addr(), "/.well-known/acme-challenge/tok").await,
            (StatusCode::OK, "tok.thumb".to_owned())
        );
        assert_eq!(
            get(server.addr(), "/.well-known/acme-challenge/other")
                .await
                .0,
            StatusCode::NOT_FOUND
        );
        assert_eq!(get(server.addr(), "/").await.0, StatusCode::NOT_FOUND);
        server.remove("tok");
        assert_eq!(
            get(server.addr(), "/.well-known/acme-challenge/tok")
                .await
                .0,
            StatusCode::NOT_FOUND
        );
        server.wait_hits(3, Duration::from_secs(1)).await;
        assert_eq!(server.hits(), 3);
    }
}
