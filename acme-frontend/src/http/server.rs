//! The listener: TCP, optional TLS (rustls with aws-lc-rs, configured and
//! reloaded by `crate::tls`), HTTP/1.1 and HTTP/2, a body limit and
//! deadlines on reading requests.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use bytes::BytesMut;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::time::Instant;

use super::Request;
use super::client_ip::client_ip;
use super::idle::IdleIo;
use super::response::finish;
use super::router::route;
use crate::App;
use crate::error::Error;

/// Deadline for a client to send its request headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Deadline for a client to send its body.
const BODY_TIMEOUT: Duration = Duration::from_secs(10);
/// Deadline for a TLS handshake.
const TLS_TIMEOUT: Duration = Duration::from_secs(10);
/// How long an idle connection that is being shut down may take to finish
/// its requests in flight before it is dropped.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);
/// The most of a refused (too large) body that is read and thrown away
/// before the 413 is sent, so that a client still sending sees the answer
/// instead of a TCP reset (closing a socket with unread data resets it).
const DRAIN_MAX: usize = 1024 * 1024;
/// How often a connection being shut down is checked for requests in
/// flight (the first check also lets a GOAWAY reach the peer).
const SHUTDOWN_POLL: Duration = Duration::from_secs(1);

/// Serves until `shutdown` resolves.
pub async fn serve(
    app: Arc<App>,
    listener: TcpListener,
    tls: Option<Arc<crate::tls::Acceptor>>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    // At most `max_connections` connections (TLS handshakes included) at a
    // time: past that the listener stops accepting and new peers wait in
    // the kernel's backlog until a connection ends.
    let slots = Arc::new(Semaphore::new(app.config.server.max_connections));
    loop {
        let slot = tokio::select! {
            () = &mut shutdown => break,
            slot = slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                // Never closed; if it were, there is nothing left to serve.
                Err(_) => break,
            },
        };
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(target: "frontend", error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        // The configuration of the moment: a SIGHUP reload after this
        // point changes the next connection, not this one.
        let tls = tls.as_ref().map(|t| t.current());
        tokio::spawn(async move {
            let _slot = slot;
            match tls {
                Some(acceptor) => match tokio::time::timeout(TLS_TIMEOUT, acceptor.accept(stream))
                    .await
                {
                    Ok(Ok(s)) => serve_conn(app, s, peer).await,
                    Ok(Err(e)) => handshake_failed(peer, &e),
                    Err(_) => tracing::debug!(target: "frontend", %peer, "TLS handshake timed out"),
                },
                None => serve_conn(app, stream, peer).await,
            }
        });
    }
}

/// Logs a failed handshake: a missing client certificate (when one is
/// required) as a verification failure, since the verifier, which logs the
/// other refusals with their reason, never sees it; the rest at debug.
fn handshake_failed(peer: SocketAddr, e: &std::io::Error) {
    let tls_error = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>());
    match tls_error {
        Some(rustls::Error::NoCertificatesPresented) => tracing::warn!(
            target: "frontend",
            %peer,
            "client cert verification failed: no client certificate presented \
             ([tls.client_auth] required = true)"
        ),
        Some(rustls::Error::InvalidCertificate(err)) => {
            tracing::info!(target: "frontend", %peer, error = %err, "TLS handshake refused: client certificate");
        }
        _ => tracing::debug!(target: "frontend", %peer, error = %e, "TLS handshake failed"),
    }
}

/// Serves one connection until the client closes it, an error ends it, or
/// no byte has moved for `[server] idle_timeout_secs`. An idle connection is
/// shut down gracefully (HTTP/2 GOAWAY) and dropped as soon as it has no
/// request in flight (at the latest [`SHUTDOWN_GRACE`] later): a peer need
/// not cooperate for its socket to be freed.
async fn serve_conn<S>(app: Arc<App>, stream: S, peer: SocketAddr)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let idle_timeout = Duration::from_secs(app.config.server.idle_timeout_secs);
    let (io, activity) = IdleIo::new(stream);
    let in_flight = Arc::new(AtomicUsize::new(0));
    let service = {
        let in_flight = in_flight.clone();
        service_fn(move |req: hyper::Request<Incoming>| {
            let app = app.clone();
            let guard = InFlight::enter(&in_flight);
            // Boxed: the request's future is large (every handler's state),
            // and hyper moves it into a task per HTTP/2 stream; moving a
            // box costs a pointer, moving the future tens of kilobytes.
            Box::pin(async move {
                let rsp = handle(app, req, peer).await;
                drop(guard);
                Ok::<_, Infallible>(rsp)
            })
        })
    };
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT.min(idle_timeout));
    builder.http2().max_concurrent_streams(100);
    let conn = builder.serve_connection(TokioIo::new(io), service);
    tokio::pin!(conn);
    let mut wake = activity.last() + idle_timeout;
    let mut shutdown_since: Option<Instant> = None;
    let result = loop {
        tokio::select! {
            result = conn.as_mut() => break result,
            () = tokio::time::sleep_until(wake) => {}
        }
        let now = Instant::now();
        match shutdown_since {
            None if activity.idle_for() < idle_timeout => {
                wake = activity.last() + idle_timeout;
            }
            None => {
                tracing::debug!(target: "frontend", %peer, "idle connection: shutting down");
                conn.as_mut().graceful_shutdown();
                shutdown_since = Some(now);
                wake = now + SHUTDOWN_POLL;
            }
            Some(since) => {
                if in_flight.load(Ordering::Acquire) == 0 || now >= since + SHUTDOWN_GRACE {
                    tracing::debug!(target: "frontend", %peer, "idle connection dropped");
                    return;
                }
                wake = now + SHUTDOWN_POLL;
            }
        }
    };
    if let Err(e) = result {
        tracing::debug!(target: "frontend", %peer, error = %e, "connection ended with an error");
    }
}

/// Counts a request in flight on its connection while alive.
struct InFlight(Arc<AtomicUsize>);

impl InFlight {
    fn enter(count: &Arc<AtomicUsize>) -> InFlight {
        count.fetch_add(1, Ordering::AcqRel);
        InFlight(count.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

async fn handle(
    app: Arc<App>,
    req: hyper::Request<Incoming>,
    peer: SocketAddr,
) -> http::Response<ResponseBody> {
    let (parts, mut body) = req.into_parts();
    let method = parts.method.clone();
    let endpoint = super::router::endpoint(&app, parts.uri.path());
    let result = async {
        let declared = parts
            .headers
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        let body = read_body(&mut body, app.config.server.max_body_bytes, declared).await?;
        let path = parts.uri.path().to_owned();
        let query = parts.uri.query().map(str::to_owned);
        let request = Request {
            method: parts.method.clone(),
            url: app.urls.absolute(
                parts
                    .uri
                    .path_and_query()
                    .map_or(path.as_str(), |pq| pq.as_str()),
            ),
            path,
            query,
            content_type: parts
                .headers
                .get(http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            body,
            client_ip: client_ip(peer.ip(), &parts.headers, &app.trusted_proxies),
        };
        // Inline: the router boxes the handlers whose state is large, so
        // its own future is small (`router::tests`).
        route(&app, request).await
    }
    .await;
    let response = finish(&app, &method, result);
    crate::metrics::request(endpoint, response.status().as_u16());
    response.map(|reply| ResponseBody {
        reply,
        _request: body,
    })
}

/// A response body that holds the request's body until the response has
/// been sent. A request body left unread (a refused one) is thus dropped
/// after the response is complete, and HTTP/2 ends the request stream with
/// `RST_STREAM(NO_ERROR)` as RFC 9113 §8.1 asks for an early response, not
/// with `CANCEL`, which clients (curl) take as the failure of the whole
/// exchange, response included.
pub struct ResponseBody {
    reply: Full<Bytes>,
    _request: Incoming,
}

impl hyper::body::Body for ResponseBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Infallible>>> {
        std::pin::Pin::new(&mut self.get_mut().reply).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.reply.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.reply.size_hint()
    }
}

/// Reads a request body of at most `limit` bytes within [`BODY_TIMEOUT`].
///
/// A body over the limit (declared by `Content-Length` or found while
/// reading) is a 413, answered only after the rest of the body, up to
/// [`DRAIN_MAX`] bytes in all, has been read and discarded within the same
/// deadline: a client that is still sending would otherwise get a reset
/// instead of the problem document. A body declared larger than
/// [`DRAIN_MAX`] is refused at once, without reading it (a client that sent
/// `Expect: 100-continue` then never sends it).
async fn read_body(
    body: &mut Incoming,
    limit: usize,
    declared: Option<usize>,
) -> Result<Bytes, Error> {
    if declared.is_some_and(|n| n > DRAIN_MAX) {
        return Err(Error::PayloadTooLarge(limit));
    }
    let deadline = Instant::now() + BODY_TIMEOUT;
    let mut refused = declared.is_some_and(|n| n > limit);
    let mut collected = BytesMut::new();
    let mut seen = 0usize;
    loop {
        let frame = match tokio::time::timeout_at(deadline, body.frame()).await {
            Ok(Some(Ok(frame))) => frame,
            Ok(None) if !refused => return Ok(collected.freeze()),
            Ok(Some(Err(e))) if !refused => {
                return Err(Error::Malformed(format!("reading request body: {e}")));
            }
            Err(_) if !refused => return Err(Error::Malformed("request body timed out".into())),
            // A refused body that was read to its end, failed or stalled.
            Ok(None | Some(Err(_))) | Err(_) => return Err(Error::PayloadTooLarge(limit)),
        };
        let Ok(data) = frame.into_data() else {
            // Trailers carry no body bytes.
            continue;
        };
        seen = seen.saturating_add(data.len());
        if seen > DRAIN_MAX {
            return Err(Error::PayloadTooLarge(limit));
        }
        refused |= seen > limit;
        if refused {
            // Draining: nothing past the limit is kept.
            collected = BytesMut::new();
        } else {
            collected.extend_from_slice(&data);
        }
    }
}
