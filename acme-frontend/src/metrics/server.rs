//! The metrics listener: plain HTTP/1.1 on its own address, `GET /metrics`
//! only (another path is 404, another method 405), no request body read,
//! a header deadline, a deadline on the whole connection and a cap on
//! connections. It never shares the ACME listener.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use prometheus_client::encoding::prometheus_text::CONTENT_TYPE;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::App;

/// The one path served.
pub const PATH: &str = "/metrics";
/// Deadline for a client to send its request headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest life of one connection, keep-alive included (a scraper simply
/// reconnects).
const CONNECTION_DEADLINE: Duration = Duration::from_secs(60);
/// Most connections served at once; more wait in the kernel's backlog.
const MAX_CONNECTIONS: usize = 8;

/// Serves `GET /metrics` on `listener` forever.
pub async fn serve(app: Arc<App>, listener: TcpListener) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            // Never closed.
            return;
        };
        let (stream, peer) = match listener.accept().await {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(target: "frontend", error = %e, "metrics: accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let app = app.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let service = service_fn(move |req: hyper::Request<Incoming>| {
                let app = app.clone();
                async move { Ok::<_, Infallible>(answer(&app, req.method(), req.uri().path()).await) }
            });
            let conn = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service);
            match tokio::time::timeout(CONNECTION_DEADLINE, conn).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::debug!(target: "frontend", %peer, error = %e, "metrics: connection ended with an error")
                }
                Err(_) => {
                    tracing::debug!(target: "frontend", %peer, "metrics: connection deadline")
                }
            }
        });
    }
}

/// The answer to one request; its body is never read.
async fn answer(app: &App, method: &Method, path: &str) -> Response<Full<Bytes>> {
    if path != PATH {
        return plain(
            StatusCode::NOT_FOUND,
            "not found; metrics are at /metrics\n",
        );
    }
    if method != Method::GET {
        let mut rsp = plain(StatusCode::METHOD_NOT_ALLOWED, "only GET\n");
        rsp.headers_mut()
            .insert(header::ALLOW, http::HeaderValue::from_static("GET"));
        return rsp;
    }
    match super::scrape(app).await {
        Ok(text) => {
            let mut rsp = Response::new(Full::new(Bytes::from(text)));
            rsp.headers_mut().insert(
                header::CONTENT_TYPE,
                http::HeaderValue::from_static(CONTENT_TYPE),
            );
            rsp
        }
        Err(e) => {
            tracing::error!(target: "frontend", error = %e, "metrics: encoding failed");
            plain(StatusCode::INTERNAL_SERVER_ERROR, "encoding failed\n")
        }
    }
}

fn plain(status: StatusCode, text: &'static str) -> Response<Full<Bytes>> {
    let mut rsp = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *rsp.status_mut() = status;
    rsp.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    rsp
}
