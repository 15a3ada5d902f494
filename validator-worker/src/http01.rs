//! http-01 (RFC 8555 §8.3).
//!
//! `GET http://<name>:<port>/.well-known/acme-challenge/<token>` over a TCP
//! connection the validator opens itself to a resolved, policy-checked address;
//! hyper only speaks HTTP/1.1 on that stream and never resolves anything.
//!
//! Redirects are followed (at most [`MAX_REDIRECTS`]) only to http or https
//! URLs on ports 80 or 443 or the configured validation ports; each target is
//! resolved and checked again. https targets are fetched without certificate
//! checks (see [`crate::danger`]). The body may hold at most [`MAX_BODY`]
//! bytes, and after trimming whitespace must equal the key authorization.

use std::net::IpAddr;

use bytes::Bytes;
use http::header::{ACCEPT, CONNECTION, CONTENT_LENGTH, HOST, LOCATION, USER_AGENT};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use shared_proto::Identifier;
use shared_proto::identifier::is_valid_dns_name;
use shared_proto::validator::{ChallengeType, ValidationRecord};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::task::JoinHandle;

use crate::error::{HttpError, ProbeError, RequestError, sanitize_excerpt};
use crate::probe::{Host, Prober};

/// Largest body accepted, in bytes.
pub const MAX_BODY: usize = 8192;
/// Most redirects followed.
pub const MAX_REDIRECTS: usize = 10;
/// The `User-Agent` sent.
pub const USER_AGENT_VALUE: &str = "akamu-validator";
/// Largest response head (status line and headers) hyper buffers.
const MAX_HEAD: usize = 16 * 1024;
/// Length of the body excerpt shown in a mismatch.
const EXCERPT: usize = 64;

/// Validates an http-01 challenge for `identifier`.
pub async fn validate(
    prober: &Prober,
    identifier: &Identifier,
    token: &str,
    key_authorization: &str,
) -> Result<ValidationRecord, ProbeError> {
    if identifier.is_wildcard() {
        return Err(RequestError::Unsupported {
            challenge: ChallengeType::Http01,
            identifier: identifier.to_string(),
            reason: "wildcard identifiers can only be validated with dns-01 (RFC 8555 §7.1.3)",
        }
        .into());
    }
    let host = Host::from_identifier(identifier)?;
    let port = prober.config.http_validation_port;
    let first = Target {
        https: false,
        host_header: host.url_host(),
        host: host.clone(),
        port,
        path: format!("/.well-known/acme-challenge/{token}"),
    };
    let first_url = first.url();

    let mut target = first;
    let mut first_hop: Option<(Vec<IpAddr>, Option<IpAddr>)> = None;
    let mut redirects = 0;
    loop {
        let resolved = prober.resolve(&target.host, first_hop.is_none()).await?;
        let (stream, addr) = prober.connect(&target.host, target.port, &resolved).await?;
        let hop0 = first_hop
            .get_or_insert_with(|| (resolved.all.clone(), resolved.address_used(addr)))
            .clone();
        let url = target.url();
        let exchange = fetch(prober, stream, &target, addr).await?;
        let status = exchange.response.status();

        if is_followed_redirect(status) {
            let Some(location) = exchange.response.headers().get(LOCATION) else {
                return Err(HttpError::Status {
                    url,
                    addr,
                    status: status.as_u16(),
                }
                .into());
            };
            if redirects == MAX_REDIRECTS {
                return Err(HttpError::TooManyRedirects {
                    url: first_url,
                    max: MAX_REDIRECTS,
                }
                .into());
            }
            redirects += 1;
            target = redirect_target(prober, &url, location.as_bytes())?;
            tracing::debug!(from = %url, to = %target.url(), "following redirect");
            continue;
        }
        if !status.is_success() {
            return Err(HttpError::Status {
                url,
                addr,
                status: status.as_u16(),
            }
            .into());
        }
        let body = exchange.read_body(&url, addr).await?;
        let trimmed = body.trim_ascii();
        if trimmed != key_authorization.as_bytes() {
            return Err(HttpError::Mismatch {
                url,
                addr,
                received: sanitize_excerpt(trimmed, EXCERPT),
                len: body.len(),
                expected: key_authorization.to_owned(),
            }
            .into());
        }
        let (addresses_resolved, address_used) = hop0;
        return Ok(ValidationRecord {
            url: Some(first_url),
            hostname: host.to_string(),
            port: Some(port),
            addresses_resolved,
            address_used,
            validated_at: crate::now_unix(),
            statement: None,
            persist_until: None,
            persist_hash: None,
        });
    }
}

/// One URL to fetch.
#[derive(Clone, Debug)]
struct Target {
    https: bool,
    host: Host,
    /// The `Host` header value.
    host_header: String,
    port: u16,
    /// Path and query.
    path: String,
}

impl Target {
    fn url(&self) -> String {
        let (scheme, default) = if self.https {
            ("https", 443)
        } else {
            ("http", 80)
        };
        let port = if self.port == default {
            String::new()
        } else {
            format!(":{}", self.port)
        };
        format!("{scheme}://{}{port}{}", self.host.url_host(), self.path)
    }
}

/// A response whose body has not been read yet, and the task driving its
/// connection (aborted on drop).
struct Exchange {
    response: Response<Incoming>,
    connection: JoinHandle<()>,
}

impl Drop for Exchange {
    fn drop(&mut self) {
        self.connection.abort();
    }
}

impl Exchange {
    /// Reads at most [`MAX_BODY`] bytes of the body.
    async fn read_body(mut self, url: &str, addr: IpAddr) -> Result<Vec<u8>, HttpError> {
        let too_large = || HttpError::BodyTooLarge {
            url: url.to_owned(),
            addr,
            limit: MAX_BODY,
        };
        let declared = self
            .response
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > MAX_BODY as u64) {
            return Err(too_large());
        }
        let mut body = Vec::new();
        while let Some(frame) = self.response.body_mut().frame().await {
            let frame = frame.map_err(|e| HttpError::Exchange {
                url: url.to_owned(),
                addr,
                cause: e.to_string(),
            })?;
            if let Ok(data) = frame.into_data() {
                if body.len() + data.len() > MAX_BODY {
                    return Err(too_large());
                }
                body.extend_from_slice(&data);
            }
        }
        Ok(body)
    }
}

/// Sends the GET for `target` over `stream` (wrapped in TLS for https).
async fn fetch(
    prober: &Prober,
    stream: tokio::net::TcpStream,
    target: &Target,
    addr: IpAddr,
) -> Result<Exchange, ProbeError> {
    let exchange_error = |cause: String| HttpError::Exchange {
        url: target.url(),
        addr,
        cause,
    };
    let request = Request::builder()
        .method(Method::GET)
        .uri(target.path.as_str())
        .header(HOST, target.host_header.as_str())
        .header(USER_AGENT, USER_AGENT_VALUE)
        .header(ACCEPT, "*/*")
        .header(CONNECTION, "close")
        .body(Empty::<Bytes>::new())
        .map_err(|e| exchange_error(format!("cannot build request: {e}")))?;
    if !target.https {
        return send(stream, request)
            .await
            .map_err(|e| exchange_error(e.to_string()).into());
    }
    let server_name = match &target.host {
        Host::Name(name) => ServerName::try_from(name.clone())
            .map_err(|e| exchange_error(format!("invalid TLS server name: {e}")))?,
        Host::Ip(ip) => ServerName::IpAddress((*ip).into()),
    };
    let connector = tokio_rustls::TlsConnector::from(prober.https_tls.clone());
    let tls = connector
        .connect(server_name, stream)
        .await
        .map_err(|e| exchange_error(format!("TLS handshake failed: {e}")))?;
    send(tls, request)
        .await
        .map_err(|e| exchange_error(e.to_string()).into())
}

async fn send<T>(io: T, request: Request<Empty<Bytes>>) -> Result<Exchange, hyper::Error>
where
    T: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::Builder::new()
        .max_buf_size(MAX_HEAD)
        .handshake(TokioIo::new(io))
        .await?;
    let connection = tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "http-01 connection ended with an error");
        }
    });
    match sender.send_request(request).await {
        Ok(response) => Ok(Exchange {
            response,
            connection,
        }),
        Err(e) => {
            connection.abort();
            Err(e)
        }
    }
}

/// Where a redirect leads, if the validator may follow it.
fn redirect_target(prober: &Prober, from: &str, location: &[u8]) -> Result<Target, ProbeError> {
    let shown = sanitize_excerpt(location, 256);
    let bad = |reason: &'static str| HttpError::BadRedirect {
        from: from.to_owned(),
        location: shown.clone(),
        reason,
    };
    let location = std::str::from_utf8(location).map_err(|_| bad("Location is not ASCII"))?;
    let base = url::Url::parse(from).map_err(|_| bad("the current URL does not parse"))?;
    let next = base
        .join(location)
        .map_err(|_| bad("Location is not a valid URL"))?;
    let https = match next.scheme() {
        "http" => false,
        "https" => true,
        _ => return Err(bad("only http and https redirects are followed").into()),
    };
    if !next.username().is_empty() || next.password().is_some() {
        return Err(bad("URLs with credentials are not followed").into());
    }
    let host = match next.host() {
        Some(url::Host::Domain(d)) => {
            let d = d.trim_end_matches('.').to_ascii_lowercase();
            if !is_valid_dns_name(&d) || d.starts_with("*.") {
                return Err(bad("the host is not a valid DNS name").into());
            }
            Host::Name(d)
        }
        Some(url::Host::Ipv4(a)) => Host::Ip(a.into()),
        Some(url::Host::Ipv6(a)) => Host::Ip(a.into()),
        None => return Err(bad("the URL has no host").into()),
    };
    let Some(port) = next.port_or_known_default() else {
        return Err(bad("the URL has no port").into());
    };
    let config = &prober.config;
    if ![
        80,
        443,
        config.http_validation_port,
        config.tls_alpn_validation_port,
    ]
    .contains(&port)
    {
        return Err(bad("only ports 80 and 443 (or the validation ports) are followed").into());
    }
    let mut path = next.path().to_owned();
    if let Some(q) = next.query() {
        path.push('?');
        path.push_str(q);
    }
    let default_port = if https { 443 } else { 80 };
    let host_header = if port == default_port {
        host.url_host()
    } else {
        format!("{}:{port}", host.url_host())
    };
    Ok(Target {
        https,
        host,
        host_header,
        port,
        path,
    })
}

/// Whether the status is a redirect the validator follows.
fn is_followed_redirect(status: StatusCode) -> bool {
    matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn prober() -> Prober {
        let mut c = Config::new("x.sock", vec![0]);
        c.http_validation_port = 5002;
        c.tls_alpn_validation_port = 5001;
        c.dns_resolver_addr = Some("127.0.0.1:9".parse().expect("addr"));
        Prober::new(c).expect("prober")
    }

    #[test]
    fn redirect_rules() {
        let p = prober();
        let from = "http://a.example:5002/.well-known/acme-challenge/t";
        let ok = |loc: &str| redirect_target(&p, from, loc.as_bytes()).expect(loc);
        let t = ok("/other?x=1");
        assert_eq!(t.url(), "http://a.example:5002/other?x=1");
        assert_eq!(t.host_header, "a.example:5002");
        let t = ok("https://b.example/p");
        assert!(t.https);
        assert_eq!(t.port, 443);
        assert_eq!(t.host_header, "b.example");
        let t = ok("http://[2001:db8::1]/p");
        assert_eq!(t.host, Host::Ip("2001:db8::1".parse().expect("ip")));
        assert_eq!(t.host_header, "[2001:db8::1]");

        for bad in [
            "ftp://a.example/",
            "http://a.example:8080/",
            "http://user:pw@a.example/",
            "http://under_score.example/",
            "https://a.example:22/",
        ] {
            let err = redirect_target(&p, from, bad.as_bytes()).expect_err(bad);
            assert!(
                matches!(err, ProbeError::Http(HttpError::BadRedirect { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn first_url_shows_port_only_when_not_80() {
        let t = Target {
            https: false,
            host: Host::Ip("::1".parse().expect("ip")),
            host_header: "[::1]".into(),
            port: 80,
            path: "/p".into(),
        };
        assert_eq!(t.url(), "http://[::1]/p");
        let t = Target { port: 8080, ..t };
        assert_eq!(t.url(), "http://[::1]:8080/p");
    }
}
