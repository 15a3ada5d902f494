//! http-01 (RFC 8555 §8.3) against a hyper server on loopback.

use std::net::Ipv4Addr;

use http::StatusCode;
use shared_proto::Identifier;
use shared_proto::validator::{ChallengeType, ProblemKind};

use crate::support::{
    DnsServer, HttpServer, KEY_AUTH, Rr, challenge_path, config, expect_problem, lo4, redirect,
    request, respond, service,
};

fn serve_key_auth(path: &str) -> http::Response<http_body_util::Full<bytes::Bytes>> {
    if path == challenge_path() {
        respond(StatusCode::OK, format!("{KEY_AUTH}\r\n"))
    } else {
        respond(StatusCode::NOT_FOUND, "no")
    }
}

fn http_config(port: u16) -> validator_worker::Config {
    let mut c = config();
    c.http_validation_port = port;
    c
}

#[tokio::test]
async fn valid_ip_identifier_fills_the_record() {
    let server = HttpServer::start(serve_key_auth).await;
    let svc = service(http_config(server.port()));
    let record = svc
        .validate(&request(Identifier::ip(lo4()), ChallengeType::Http01))
        .await
        .expect("valid");
    assert_eq!(
        record.url.as_deref(),
        Some(format!("http://127.0.0.1:{}{}", server.port(), challenge_path()).as_str())
    );
    assert_eq!(record.hostname, "127.0.0.1");
    assert_eq!(record.port, Some(server.port()));
    assert_eq!(record.addresses_resolved, vec![lo4()]);
    assert_eq!(record.address_used, Some(lo4()));
    assert!(record.validated_at > 1_600_000_000);
    let seen = server.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].host, "127.0.0.1");
    assert_eq!(seen[0].user_agent, "akamu-validator");
}

#[tokio::test]
async fn localhost_name_resolves_locally_and_sends_the_name_as_host() {
    let server = HttpServer::start(serve_key_auth).await;
    let svc = service(http_config(server.port()));
    let record = svc
        .validate(&request(
            Identifier::dns("app.localhost"),
            ChallengeType::Http01,
        ))
        .await
        .expect("valid");
    assert_eq!(record.hostname, "app.localhost");
    assert_eq!(record.address_used, Some(lo4()));
    assert!(record.addresses_resolved.contains(&lo4()));
    assert!(server.seen().iter().all(|s| s.host == "app.localhost"));
}

#[tokio::test]
async fn name_resolved_through_the_dns_server() {
    let dns = DnsServer::start("test.", vec![Rr::A("www", Ipv4Addr::LOCALHOST)]).await;
    let server = HttpServer::start(serve_key_auth).await;
    let mut c = http_config(server.port());
    c.dns_resolver_addr = Some(dns.addr);
    let record = service(c)
        .validate(&request(Identifier::dns("www.test"), ChallengeType::Http01))
        .await
        .expect("valid");
    assert_eq!(record.addresses_resolved, vec![lo4()]);
    assert_eq!(server.seen()[0].host, "www.test");
}

#[tokio::test]
async fn wrong_body_is_incorrect_response_with_excerpt() {
    let server = HttpServer::start(|_: &str| respond(StatusCode::OK, "not-it\x1b[31m")).await;
    let svc = service(http_config(server.port()));
    let p = expect_problem(
        svc.validate(&request(Identifier::ip(lo4()), ChallengeType::Http01))
            .await,
        ProblemKind::IncorrectResponse,
    );
    assert!(p.detail.contains("not-it?[31m"), "{}", p.detail);
    assert!(p.detail.contains(KEY_AUTH), "{}", p.detail);
    assert!(!p.detail.contains('\x1b'));
}

#[tokio::test]
async fn not_found_is_incorrect_response_naming_the_status() {
    let server = HttpServer::start(|_: &str| respond(StatusCode::NOT_FOUND, KEY_AUTH)).await;
    let svc = service(http_config(server.port()));
    let p = expect_problem(
        svc.validate(&request(Identifier::ip(lo4()), ChallengeType::Http01))
            .await,
        ProblemKind::IncorrectResponse,
    );
    assert!(p.detail.contains("404"), "{}", p.detail);
}

#[tokio::test]
async fn body_over_8192_bytes_is_refused() {
    let big = format!("{KEY_AUTH}{}", " ".repeat(9000 - KEY_AUTH.len()));
    let server = HttpServer::start(move |_: &str| respond(StatusCode::OK, big.clone())).await;
    let svc = service(http_config(server.port()));
    let p = expect_problem(
        svc.validate(&request(Identifier::ip(lo4()), ChallengeType::Http01))
            .await,
        ProblemKind::IncorrectResponse,
    );
    assert!(p.detail.contains("response body too large"), "{}", p.detail);

    // Exactly at the limit is fine.
    let fits = format!("{KEY_AUTH}{}", " ".repeat(8192 - KEY_AUTH.len()));
    let server = HttpServer::start(move |_: &str| respond(StatusCode::OK, fits.clone())).await;
    service(http_config(server.port()))
        .validate(&request(Identifier::ip(lo4()), ChallengeType::Http01))
        .await
        .expect("8192 bytes fit");
}

#[tokio::test]
async fn closed_port_is_connection_problem_naming_host_and_address() {
    let port = {
        let l = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
        l.local_addr().expect("addr").port()
    };
    let svc = service(http_config(port));
    let p = expect_problem(
        svc.validate(&request(Identifier::ip(lo4()), ChallengeType::Http01))
            .await,
        ProblemKind::Connection,
    );
    assert!(
        p.detail.contains(&format!("127.0.0.1:{port}")),
        "{}",
        p.detail
    );
}

/// Serves `/hop/n` → `/hop/n+1` up to `/hop/last`, which holds the key
/// authorization; the challenge path redirects to `/hop/1` (absolute URL).
fn chain(
    port: u16,
    last: u32,
) -> impl Fn(&str) -> http::Response<http_body_util::Full<bytes::Bytes>> {
    move |path: &str| {
        if path == challenge_path() {
            return redirect(&format!("http://127.0.0.1:{port}/hop/1"));
        }
        match path
            .strip_prefix("/hop/")
            .and_then(|n| n.parse::<u32>().ok())
        {
            Some(n) if n == last => respond(StatusCode::OK, KEY_AUTH),
            Some(n) => redirect(&format!("/hop/{}", n + 1)),
            None => respond(StatusCode::NOT_FOUND, ""),
        }
    }
}

/// Starts a server whose redirect chain ends at `/hop/last`.
async fn chain_server(last: u32) -> HttpServer {
    // The chain uses absolute URLs with the server's own port, known only
    // after binding.
    let port = std::sync::Arc::new(std::sync::OnceLock::<u16>::new());
    let cell = port.clone();
    let server =
        HttpServer::start(move |path: &str| chain(*cell.get().expect("port set"), last)(path))
            .await;
    port.set(server.port()).expect("set once");
    server
}

#[tokio::test]
async fn ten_redirects_are_followed_eleven_are_not() {
    let server = chain_server(10).await;
    let record = service(http_config(server.port()))
        .validate(&request(Identifier::ip(lo4()), ChallengeType::Http01))
        .await
        .expect("10 redirects are fine");
    assert_eq!(record.address_used, Some(lo4()));
    let seen = server.seen();
    assert_eq!(seen.len(), 11);
    assert_eq!(seen.last().expect("last").path, "/hop/10");
    let host = format!("127.0.0.1:{}", server.port());
    assert!(seen[1..].iter().all(|s| s.host == host), "{seen:?}");

    let long = chain_server(11).await;
    let p = expect_problem(
        service(http_config(long.port()))
            .validate(&request(Identifier::ip(lo4()), ChallengeType::Http01))
            .await,
        ProblemKind::Connection,
    );
    assert!(p.detail.contains("too many redirects"), "{}", p.detail);
    assert_eq!(long.seen().len(), 11, "stops after the 10th redirect");
}

#[tokio::test]
async fn redirect_to_a_port_outside_the_allowed_set_is_refused() {
    let other = HttpServer::start(|_: &str| respond(StatusCode::OK, KEY_AUTH)).await;
    let target = format!("http://127.0.0.1:{}/x", other.port());
    let server = HttpServer::start(move |_: &str| redirect(&target)).await;
    let p = expect_problem(
        service(http_config(server.port()))
            .validate(&request(Identifier::ip(lo4()), ChallengeType::Http01))
            .await,
        ProblemKind::Connection,
    );
    assert!(p.detail.contains("refusing redirect"), "{}", p.detail);
    assert!(other.seen().is_empty());
}

#[tokio::test]
async fn redirect_to_https_on_the_tls_port_is_followed_without_cert_checks() {
    let https = HttpServer::start_tls(|path: &str| {
        if path == "/secure" {
            respond(StatusCode::OK, KEY_AUTH)
        } else {
            respond(StatusCode::NOT_FOUND, "")
        }
    })
    .await;
    let target = format!("https://127.0.0.1:{}/secure", https.port());
    let server = HttpServer::start(move |_: &str| redirect(&target)).await;
    let mut c = http_config(server.port());
    c.tls_alpn_validation_port = https.port();
    service(c)
        .validate(&request(Identifier::ip(lo4()), ChallengeType::Http01))
        .await
        .expect("https redirect followed");
    assert_eq!(https.seen().len(), 1);
}

#[tokio::test]
async fn loopback_refused_without_allow_private_targets() {
    let server = HttpServer::start(serve_key_auth).await;
    let dns = DnsServer::start("test.", vec![Rr::A("www", Ipv4Addr::LOCALHOST)]).await;
    let mut c = http_config(server.port());
    c.allow_private_targets = false;
    c.dns_resolver_addr = Some(dns.addr);
    let svc = service(c);

    // An IP identifier in a reserved range is a rejected identifier.
    let p = expect_problem(
        svc.validate(&request(Identifier::ip(lo4()), ChallengeType::Http01))
            .await,
        ProblemKind::RejectedIdentifier,
    );
    assert!(p.detail.contains("loopback"), "{}", p.detail);

    // A name resolving only to loopback is a connection problem.
    let p = expect_problem(
        svc.validate(&request(Identifier::dns("www.test"), ChallengeType::Http01))
            .await,
        ProblemKind::Connection,
    );
    assert!(p.detail.contains("reserved"), "{}", p.detail);

    // *.localhost gets no help from the validator without
    // allow_private_targets; whatever it resolves to (hickory answers
    // loopback per RFC 6761), it is refused.
    let p = svc
        .validate(&request(
            Identifier::dns("app.localhost"),
            ChallengeType::Http01,
        ))
        .await
        .expect_err("refused");
    assert!(
        matches!(p.kind, ProblemKind::Connection | ProblemKind::Dns),
        "{p}"
    );
    assert!(server.seen().is_empty(), "nothing may reach the server");
}

#[tokio::test]
async fn wildcard_is_malformed_for_http01() {
    let svc = service(config());
    expect_problem(
        svc.validate(&request(
            Identifier::dns("*.app.localhost"),
            ChallengeType::Http01,
        ))
        .await,
        ProblemKind::Malformed,
    );
}
