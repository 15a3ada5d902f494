//! The listener: TCP, optional TLS (rustls, ring provider), HTTP/1.1 and
//! HTTP/2, a body limit and deadlines on reading requests.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use super::Request;
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

/// Builds a TLS acceptor from PEM files (chain, then key).
pub fn tls_acceptor(cert_file: &Path, key_file: &Path) -> Result<TlsAcceptor, Error> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert_file)
        .and_then(|it| it.collect::<Result<_, _>>())
        .map_err(|e| Error::Internal(format!("reading {}: {e}", cert_file.display())))?;
    let key = PrivateKeyDer::from_pem_file(key_file)
        .map_err(|e| Error::Internal(format!("reading {}: {e}", key_file.display())))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Internal(format!("TLS versions: {e}")))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| Error::Internal(format!("TLS certificate: {e}")))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Serves until `shutdown` resolves.
pub async fn serve(
    app: Arc<App>,
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    loop {
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
        let tls = tls.clone();
        tokio::spawn(async move {
            match tls {
                Some(acceptor) => match tokio::time::timeout(TLS_TIMEOUT, acceptor.accept(stream))
                    .await
                {
                    Ok(Ok(s)) => serve_conn(app, TokioIo::new(s), peer).await,
                    Ok(Err(e)) => {
                        tracing::debug!(target: "frontend", %peer, error = %e, "TLS handshake failed")
                    }
                    Err(_) => tracing::debug!(target: "frontend", %peer, "TLS handshake timed out"),
                },
                None => serve_conn(app, TokioIo::new(stream), peer).await,
            }
        });
    }
}

async fn serve_conn<I>(app: Arc<App>, io: I, peer: SocketAddr)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let service = service_fn(move |req: hyper::Request<Incoming>| {
        let app = app.clone();
        async move { Ok::<_, Infallible>(handle(app, req).await) }
    });
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT);
    builder.http2().max_concurrent_streams(100);
    if let Err(e) = builder.serve_connection(io, service).await {
        tracing::debug!(target: "frontend", %peer, error = %e, "connection ended with an error");
    }
}

async fn handle(app: Arc<App>, req: hyper::Request<Incoming>) -> http::Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let method = parts.method.clone();
    let result = async {
        let limit = app.config.server.max_body_bytes;
        let declared = parts
            .headers
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        if declared.is_some_and(|n| n > limit) {
            return Err(Error::PayloadTooLarge(limit));
        }
        let body =
            match tokio::time::timeout(BODY_TIMEOUT, Limited::new(body, limit).collect()).await {
                Ok(Ok(collected)) => collected.to_bytes(),
                Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => {
                    return Err(Error::PayloadTooLarge(limit));
                }
                Ok(Err(e)) => return Err(Error::Malformed(format!("reading request body: {e}"))),
                Err(_) => return Err(Error::Malformed("request body timed out".into())),
            };
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
        };
        route(&app, request).await
    }
    .await;
    finish(&app, &method, result)
}
