//! dns-01 (RFC 8555 §8.4) against a hickory DNS server on loopback.

use std::net::Ipv4Addr;

use shared_proto::Identifier;
use shared_proto::validator::{ChallengeType, ProblemKind};
use validator_worker::dns01::expected_txt;
use validator_worker::service::ValidatorService;

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

/// A validator with `dnssec_validation` and the zone's key as its trust
/// anchor, against `dns`.
fn dnssec_svc(dns: &DnsServer, anchor: &str) -> (tempfile::TempDir, ValidatorService) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("anchor.keys");
    std::fs::write(&path, anchor).expect("anchor");
    let mut c = config();
    c.dns_resolver_addr = Some(dns.addr);
    c.allow_private_targets = false;
    c.dnssec_validation = true;
    c.dnssec_trust_anchor_file = Some(path);
    (dir, service(c))
}

/// DNSSEC on: the record of a signed zone validates, with the zone's key as
/// the trust anchor.
#[tokio::test]
async fn dnssec_signed_answer_validates() {
    let expected = expected_txt(KEY_AUTH);
    let (dns, anchor) =
        DnsServer::start_signed("test.", vec![Rr::Txt("_acme-challenge.ok", vec![expected])]).await;
    let (_dir, svc) = dnssec_svc(&dns, &anchor);
    let record = svc
        .validate(&request(Identifier::dns("ok.test"), ChallengeType::Dns01))
        .await
        .expect("a signed record validates");
    assert_eq!(record.hostname, "ok.test");
}

/// DNSSEC on: the same record served unsigned for a zone whose key is a
/// trust anchor (a forged or stripped answer) is a `dns` problem naming
/// DNSSEC; with validation off it passes.
#[tokio::test]
async fn dnssec_unsigned_answer_is_refused() {
    let expected = expected_txt(KEY_AUTH);
    let (signed, anchor) = DnsServer::start_signed("test.", vec![]).await;
    drop(signed);
    let dns = DnsServer::start("test.", vec![Rr::Txt("_acme-challenge.ok", vec![expected])]).await;
    let (_dir, strict) = dnssec_svc(&dns, &anchor);
    let problem = expect_problem(
        strict
            .validate(&request(Identifier::dns("ok.test"), ChallengeType::Dns01))
            .await,
        ProblemKind::Dns,
    );
    assert!(problem.detail.contains("DNSSEC"), "{problem}");
    svc(&dns)
        .validate(&request(Identifier::dns("ok.test"), ChallengeType::Dns01))
        .await
        .expect("without validation the unsigned record passes");
}

/// DNSSEC on: a zone signed by a key other than the trust anchor's (a
/// forger with its own key) is a `dns` problem.
#[tokio::test]
async fn dnssec_answer_signed_by_another_key_is_refused() {
    let expected = expected_txt(KEY_AUTH);
    let (_, anchor) = DnsServer::start_signed("test.", vec![]).await;
    let (dns, _) =
        DnsServer::start_signed("test.", vec![Rr::Txt("_acme-challenge.ok", vec![expected])]).await;
    let (_dir, strict) = dnssec_svc(&dns, &anchor);
    let problem = expect_problem(
        strict
            .validate(&request(Identifier::dns("ok.test"), ChallengeType::Dns01))
            .await,
        ProblemKind::Dns,
    );
    assert!(problem.detail.contains("DNSSEC"), "{problem}");
}
