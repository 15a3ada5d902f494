//! dns-01 (RFC 8555 §8.4) against a hickory DNS server on loopback.

use std::net::Ipv4Addr;

use shared_proto::Identifier;
use shared_proto::validator::{ChallengeType, ProblemKind};
use validator_worker::dns01::expected_txt;

use crate::support::{DnsServer, KEY_AUTH, Rr, config, expect_problem, lo4, request, service};

async fn zone() -> DnsServer {
    let expected = expected_txt(KEY_AUTH);
    let (head, tail) = expected.split_at(20);
    DnsServer::start(
        "test.",
        vec![
            Rr::A("ok", Ipv4Addr::LOCALHOST),
            Rr::Txt("_acme-challenge.ok", vec!["unrelated".into()]),
            Rr::Txt("_acme-challenge.ok", vec![format!(" {expected} ")]),
            Rr::Txt("_acme-challenge.multi", vec![head.into(), tail.into()]),
            Rr::Txt("_acme-challenge.wrong", vec!["nope".into()]),
            Rr::Txt("_acme-challenge.wrong", vec![head.into()]),
            Rr::A("notxt", Ipv4Addr::LOCALHOST),
            Rr::A("_acme-challenge.notxt", Ipv4Addr::LOCALHOST),
        ],
    )
    .await
}

fn svc(dns: &DnsServer) -> validator_worker::service::ValidatorService {
    let mut c = config();
    c.dns_resolver_addr = Some(dns.addr);
    c.allow_private_targets = false;
    service(c)
}

#[tokio::test]
async fn matching_record_among_others_is_valid() {
    let dns = zone().await;
    let record = svc(&dns)
        .validate(&request(Identifier::dns("ok.test"), ChallengeType::Dns01))
        .await
        .expect("valid");
    assert_eq!(record.hostname, "ok.test");
    assert_eq!(record.port, None);
}

#[tokio::test]
async fn wildcard_uses_the_base_name() {
    let dns = zone().await;
    let record = svc(&dns)
        .validate(&request(Identifier::dns("*.ok.test"), ChallengeType::Dns01))
        .await
        .expect("valid");
    assert_eq!(record.hostname, "ok.test");
}

#[tokio::test]
async fn multi_string_record_is_joined() {
    let dns = zone().await;
    svc(&dns)
        .validate(&request(
            Identifier::dns("multi.test"),
            ChallengeType::Dns01,
        ))
        .await
        .expect("valid");
}

#[tokio::test]
async fn mismatch_is_incorrect_response_counting_records() {
    let dns = zone().await;
    let p = expect_problem(
        svc(&dns)
            .validate(&request(
                Identifier::dns("wrong.test"),
                ChallengeType::Dns01,
            ))
            .await,
        ProblemKind::IncorrectResponse,
    );
    assert!(p.detail.contains("2 TXT record"), "{}", p.detail);
    assert!(
        p.detail.contains("_acme-challenge.wrong.test"),
        "{}",
        p.detail
    );
}

#[tokio::test]
async fn nxdomain_is_dns_problem() {
    let dns = zone().await;
    let p = expect_problem(
        svc(&dns)
            .validate(&request(
                Identifier::dns("missing.test"),
                ChallengeType::Dns01,
            ))
            .await,
        ProblemKind::Dns,
    );
    assert!(p.detail.contains("NXDOMAIN"), "{}", p.detail);
    assert!(
        p.detail.contains("_acme-challenge.missing.test"),
        "{}",
        p.detail
    );
}

#[tokio::test]
async fn name_without_txt_is_dns_problem() {
    let dns = zone().await;
    let p = expect_problem(
        svc(&dns)
            .validate(&request(
                Identifier::dns("notxt.test"),
                ChallengeType::Dns01,
            ))
            .await,
        ProblemKind::Dns,
    );
    assert!(
        p.detail.contains("_acme-challenge.notxt.test"),
        "{}",
        p.detail
    );
}

#[tokio::test]
async fn ip_identifier_is_malformed() {
    let dns = zone().await;
    expect_problem(
        svc(&dns)
            .validate(&request(Identifier::ip(lo4()), ChallengeType::Dns01))
            .await,
        ProblemKind::Malformed,
    );
}

#[tokio::test]
async fn address_lookup_nxdomain_names_the_host() {
    let dns = zone().await;
    let p = expect_problem(
        svc(&dns)
            .validate(&request(
                Identifier::dns("missing.test"),
                ChallengeType::Http01,
            ))
            .await,
        ProblemKind::Dns,
    );
    assert!(p.detail.contains("missing.test"), "{}", p.detail);
}

#[tokio::test]
async fn unreachable_nameserver_is_dns_problem() {
    // Nobody listens on this loopback port: the query times out or is
    // refused, either way a dns problem.
    let mut c = config();
    c.connect_timeout_ms = 300;
    let p = expect_problem(
        service(c)
            .validate(&request(Identifier::dns("ok.test"), ChallengeType::Dns01))
            .await,
        ProblemKind::Dns,
    );
    assert!(p.detail.contains("_acme-challenge.ok.test"), "{}", p.detail);
}
