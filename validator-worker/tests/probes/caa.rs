//! CAA (RFC 8659, RFC 8657) checked with every validation, against the
//! shared test DNS server (test-kit, hickory-server on loopback).

use std::sync::Arc;

use shared_proto::Identifier;
use shared_proto::statement::{CaaCheck, StatementKey};
use shared_proto::validator::{ChallengeType, ProblemKind, ValidationRecord};
use test_kit::dns::DnsServer;
use validator_worker::dns01::expected_txt;
use validator_worker::service::ValidatorService;

use crate::support::{KEY_AUTH, config, expect_problem, request};

/// The CA's CAA identity in these tests.
const CA: &str = "ca.test";

/// A signing service resolving through `dns`, with CAA identities `ids`.
fn svc(dns: &DnsServer, ids: &[&str], dir: &tempfile::TempDir) -> ValidatorService {
    let mut c = config();
    c.dns_resolver_addr = Some(dns.addr());
    c.caa_identities = ids.iter().map(|s| (*s).to_owned()).collect();
    let key = StatementKey::load_or_create(&dir.path().join("statement.key")).expect("key");
    crate::support::service(c).with_statement_key(Arc::new(key))
}

/// Publishes the dns-01 answer for `name` and validates it.
async fn validate(
    dns: &DnsServer,
    svc: &ValidatorService,
    name: &str,
    method: ChallengeType,
) -> Result<ValidationRecord, shared_proto::validator::ValidationProblem> {
    let base = name.trim_start_matches("*.");
    dns.set_txt(
        &format!("_acme-challenge.{base}"),
        &[&expected_txt(KEY_AUTH)],
    );
    let mut req = request(Identifier::dns(name), method);
    // A statement that lasts (the shared helper asks for none).
    req.authz_expires = i64::MAX;
    svc.validate(&req).await
}

fn caa_of(record: &ValidationRecord) -> Option<CaaCheck> {
    record.statement.as_ref().and_then(|s| s.statement.caa)
}

#[tokio::test]
async fn no_caa_anywhere_permits_and_the_statement_says_when() {
    let dns = DnsServer::start().await;
    let dir = tempfile::tempdir().expect("dir");
    let s = svc(&dns, &[CA], &dir);
    let record = validate(&dns, &s, "a.example.org", ChallengeType::Dns01)
        .await
        .expect("valid");
    assert!(matches!(caa_of(&record), Some(CaaCheck::Checked { at }) if at > 0));
    // Without identities the validator checks nothing and says so.
    let off = svc(&dns, &[], &dir);
    let record = validate(&dns, &off, "a.example.org", ChallengeType::Dns01)
        .await
        .expect("valid");
    assert_eq!(caa_of(&record), Some(CaaCheck::NotConfigured));
}

#[tokio::test]
async fn the_tree_is_climbed_and_the_closest_set_decides() {
    let dns = DnsServer::start().await;
    let dir = tempfile::tempdir().expect("dir");
    let s = svc(&dns, &[CA], &dir);
    dns.set_caa("example.org", &[(0, "issue", "other-ca.test")]);
    let p = expect_problem(
        validate(&dns, &s, "deep.sub.example.org", ChallengeType::Dns01).await,
        ProblemKind::Caa,
    );
    assert!(
        p.detail.contains("0 issue \"other-ca.test\"") && p.detail.contains("at example.org"),
        "the detail names the record and where it is: {}",
        p.detail
    );
    // A set closer to the name wins over its parent's.
    dns.set_caa("sub.example.org", &[(0, "issue", "CA.test")]);
    validate(&dns, &s, "deep.sub.example.org", ChallengeType::Dns01)
        .await
        .expect("the closer set permits");
    // Only iodef: no restriction.
    dns.set_caa("example.org", &[(0, "iodef", "mailto:sec@example.org")]);
    validate(&dns, &s, "x.example.org", ChallengeType::Dns01)
        .await
        .expect("iodef restricts nothing");
}

#[tokio::test]
async fn issuewild_applies_to_wildcards_only() {
    let dns = DnsServer::start().await;
    let dir = tempfile::tempdir().expect("dir");
    let s = svc(&dns, &[CA], &dir);
    dns.set_caa(
        "wild.example.org",
        &[(0, "issue", ";"), (0, "issuewild", CA)],
    );
    validate(&dns, &s, "*.wild.example.org", ChallengeType::Dns01)
        .await
        .expect("issuewild names this CA");
    let p = expect_problem(
        validate(&dns, &s, "wild.example.org", ChallengeType::Dns01).await,
        ProblemKind::Caa,
    );
    assert!(p.detail.contains("issue"), "{}", p.detail);
}

#[tokio::test]
async fn a_critical_unknown_tag_refuses() {
    let dns = DnsServer::start().await;
    let dir = tempfile::tempdir().expect("dir");
    let s = svc(&dns, &[CA], &dir);
    dns.set_caa(
        "crit.example.org",
        &[(0, "issue", CA), (128, "tbs", "unknown")],
    );
    let p = expect_problem(
        validate(&dns, &s, "crit.example.org", ChallengeType::Dns01).await,
        ProblemKind::Caa,
    );
    assert!(p.detail.contains("\"tbs\""), "{}", p.detail);
}

#[tokio::test]
async fn rfc8657_accounturi_and_validationmethods() {
    let dns = DnsServer::start().await;
    let dir = tempfile::tempdir().expect("dir");
    let s = svc(&dns, &[CA], &dir);
    let account = request(Identifier::dns("x"), ChallengeType::Dns01).account_uri;
    dns.set_caa(
        "mine.example.org",
        &[(0, "issue", &format!("{CA}; accounturi={account}"))],
    );
    validate(&dns, &s, "mine.example.org", ChallengeType::Dns01)
        .await
        .expect("our account");
    dns.set_caa(
        "theirs.example.org",
        &[(0, "issue", &format!("{CA}; accounturi={account}9"))],
    );
    let p = expect_problem(
        validate(&dns, &s, "theirs.example.org", ChallengeType::Dns01).await,
        ProblemKind::Caa,
    );
    assert!(p.detail.contains("accounturi"), "{}", p.detail);
    dns.set_caa(
        "http.example.org",
        &[(
            0,
            "issue",
            &format!("{CA}; validationmethods=http-01,tls-alpn-01"),
        )],
    );
    let p = expect_problem(
        validate(&dns, &s, "http.example.org", ChallengeType::Dns01).await,
        ProblemKind::Caa,
    );
    assert!(p.detail.contains("dns-01"), "{}", p.detail);
}

#[tokio::test]
async fn servfail_refuses_rather_than_reading_as_empty() {
    let dns = DnsServer::start().await;
    let dir = tempfile::tempdir().expect("dir");
    let s = svc(&dns, &[CA], &dir);
    // The parent fails: the climb cannot know the relevant set.
    dns.servfail("example.org", true);
    let p = expect_problem(
        validate(&dns, &s, "sf.example.org", ChallengeType::Dns01).await,
        ProblemKind::Caa,
    );
    assert!(
        p.detail
            .contains("CAA record lookup for example.org failed"),
        "{}",
        p.detail
    );
}

#[tokio::test]
async fn a_truncated_answer_is_completed_over_tcp() {
    let dns = DnsServer::start().await;
    let dir = tempfile::tempdir().expect("dir");
    let s = svc(&dns, &[CA], &dir);
    // Far more than fits in a UDP answer (EDNS 1232 bytes): the record
    // naming this CA comes last, so a truncated answer would refuse.
    let others: Vec<String> = (0..60)
        .map(|i| format!("some-other-certificate-authority-number-{i}.test"))
        .collect();
    let mut set: Vec<(u8, &str, &str)> = others.iter().map(|o| (0, "issue", o.as_str())).collect();
    set.push((0, "issue", CA));
    dns.set_caa("big.example.org", &set);
    validate(&dns, &s, "big.example.org", ChallengeType::Dns01)
        .await
        .expect("the whole set arrived over TCP");
    // And when all of them are others, the refusal names them.
    set.pop();
    dns.set_caa("big.example.org", &set);
    let p = expect_problem(
        validate(&dns, &s, "big.example.org", ChallengeType::Dns01).await,
        ProblemKind::Caa,
    );
    assert!(p.detail.contains("number-59.test"), "{}", p.detail);
}

#[tokio::test]
async fn recheck_signs_a_fresh_statement_or_refuses() {
    let dns = DnsServer::start().await;
    let dir = tempfile::tempdir().expect("dir");
    let s = svc(&dns, &[CA], &dir);
    let record = validate(&dns, &s, "re.example.org", ChallengeType::Dns01)
        .await
        .expect("valid");
    let signed = record.statement.expect("statement");
    let again = s.recheck(signed.clone()).await.expect("still permitted");
    assert_eq!(again.statement.id, signed.statement.id);
    assert_eq!(again.statement.validated_at, signed.statement.validated_at);
    assert!(matches!(
        again.statement.caa,
        Some(CaaCheck::Checked { .. })
    ));
    dns.set_caa("example.org", &[(0, "issue", "other-ca.test")]);
    expect_problem(s.recheck(signed.clone()).await, ProblemKind::Caa);
    // Another validator's statement is not re-signed.
    let other_dir = tempfile::tempdir().expect("dir");
    let other = svc(&dns, &[CA], &other_dir);
    let p = expect_problem(other.recheck(signed).await, ProblemKind::Malformed);
    assert!(
        p.detail.contains("not signed by this validator"),
        "{}",
        p.detail
    );
}

/// RFC 9444: a statement covering subdomains yields, for a name below it,
/// a statement of exactly that name with that name's own CAA check; a
/// name whose own records forbid this CA is refused with `caa`; a name not
/// below it, or a statement that does not cover subdomains, is refused.
#[tokio::test]
async fn names_below_a_subdomain_statement_get_their_own_caa_check() {
    let dns = DnsServer::start().await;
    let dir = tempfile::tempdir().expect("dir");
    let s = svc(&dns, &[CA], &dir);
    dns.set_txt("_acme-challenge.example.org", &[&expected_txt(KEY_AUTH)]);
    let mut req = request(Identifier::dns("example.org"), ChallengeType::Dns01);
    req.authz_expires = i64::MAX;
    req.covers_subdomains = true;
    let ancestor = s
        .validate(&req)
        .await
        .expect("valid")
        .statement
        .expect("statement");
    assert!(ancestor.statement.covers_subdomains);

    let own = s
        .recheck_below(ancestor.clone(), Identifier::dns("a.b.example.org"))
        .await
        .expect("no records of its own: permitted");
    assert_eq!(own.statement.identifier, Identifier::dns("a.b.example.org"));
    assert!(!own.statement.covers_subdomains);
    assert!(matches!(own.statement.caa, Some(CaaCheck::Checked { .. })));
    assert_eq!(own.statement.validated_at, ancestor.statement.validated_at);

    dns.set_caa("locked.example.org", &[(0, "issue", "other-ca.test")]);
    expect_problem(
        s.recheck_below(ancestor.clone(), Identifier::dns("locked.example.org"))
            .await,
        ProblemKind::Caa,
    );
    expect_problem(
        s.recheck_below(ancestor.clone(), Identifier::dns("example.net"))
            .await,
        ProblemKind::Malformed,
    );
    let plain = validate(&dns, &s, "plain.example.org", ChallengeType::Dns01)
        .await
        .expect("valid")
        .statement
        .expect("statement");
    expect_problem(
        s.recheck_below(plain, Identifier::dns("x.plain.example.org"))
            .await,
        ProblemKind::Malformed,
    );
}
