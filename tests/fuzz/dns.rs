//! DNS answers as the validator reads them: a UDP and TCP nameserver on
//! loopback answers every query with the case's bytes (the query's id put
//! in), and the validator's own resolver (`validator_worker::resolver`)
//! looks up TXT (dns-01, dns-account-01, dns-persist-01) and CAA records;
//! what it returns goes through the CAA decision and the dns-persist-01
//! record check. The record-level parsers also get many cases of their own.

use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::rdata::caa::KeyValue;
use hickory_proto::rr::rdata::{CAA, CNAME, TXT};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use shared_proto::validator::ChallengeType;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};
use validator_worker::caa::{self, IssueValue};
use validator_worker::resolver::DnsResolver;

use crate::harness::{run, run_deep, runtime};

const ACCOUNT: &str = "https://ca.test/acme/acct/1";
const NOW: i64 = 1_800_000_000;

/// A nameserver answering every query with `answer` (its first two bytes
/// replaced by the query's id), over UDP and TCP on one port.
async fn nameserver(answer: Arc<Mutex<Vec<u8>>>) -> SocketAddr {
    let (udp, tcp) = loop {
        let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        if let Ok(tcp) = TcpListener::bind(udp.local_addr().unwrap()).await {
            break (udp, tcp);
        }
    };
    let addr = udp.local_addr().unwrap();
    let with_id = |answer: &Arc<Mutex<Vec<u8>>>, query: &[u8]| {
        let mut out = answer.lock().unwrap().clone();
        for (slot, b) in out.iter_mut().zip(query.iter().take(2)) {
            *slot = *b;
        }
        out
    };
    let udp_answer = answer.clone();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        while let Ok((n, from)) = udp.recv_from(&mut buf).await {
            let out = with_id(&udp_answer, &buf[..n]);
            let _ = udp.send_to(&out, from).await;
        }
    });
    tokio::spawn(async move {
        while let Ok((mut s, _)) = tcp.accept().await {
            let out_for = answer.clone();
            tokio::spawn(async move {
                let mut len = [0u8; 2];
                if s.read_exact(&mut len).await.is_err() {
                    return;
                }
                let mut query = vec![0u8; usize::from(u16::from_be_bytes(len))];
                if s.read_exact(&mut query).await.is_err() {
                    return;
                }
                let out = with_id(&out_for, &query);
                let mut framed = (out.len().min(usize::from(u16::MAX)) as u16)
                    .to_be_bytes()
                    .to_vec();
                framed.extend_from_slice(&out);
                let _ = s.write_all(&framed).await;
            });
        }
    });
    addr
}

fn response(name: &str, rtype: RecordType, rdatas: Vec<RData>) -> Vec<u8> {
    let name = Name::from_str(name).unwrap();
    let mut m = Message::new(0, MessageType::Response, OpCode::Query);
    m.metadata.recursion_desired = true;
    m.metadata.recursion_available = true;
    m.add_query(Query::query(name.clone(), rtype));
    for rdata in rdatas {
        m.add_answer(Record::from_rdata(name.clone(), 60, rdata));
    }
    m.to_vec().unwrap()
}

fn resolver(addr: SocketAddr) -> DnsResolver {
    DnsResolver::new(Some(addr), false, Duration::from_millis(100))
}

#[test]
fn txt_answers() {
    let rt = runtime();
    let answer: Arc<Mutex<Vec<u8>>> = Arc::default();
    let addr = rt.block_on(nameserver(answer.clone()));
    let resolver = resolver(addr);
    let name = "_acme-challenge.fuzz.test.";
    let txt = |parts: &[&str]| RData::TXT(TXT::new(parts.iter().map(|s| s.to_string()).collect()));
    let seeds = vec![
        response(
            name,
            RecordType::TXT,
            vec![txt(&["LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0"])],
        ),
        response(
            name,
            RecordType::TXT,
            vec![
                txt(&[
                    "ca.test; accounturi=https://ca.test/acme/acct/1; ",
                    "policy=wildcard; persistUntil=2030-01-01T00:00:00Z",
                ]),
                txt(&["v=spf1 -all"]),
            ],
        ),
        response(
            name,
            RecordType::TXT,
            vec![RData::CNAME(CNAME(
                Name::from_str("other.fuzz.test.").unwrap(),
            ))],
        ),
    ];
    rt.block_on(async {
        *answer.lock().unwrap() = seeds[0].clone();
        assert_eq!(resolver.lookup_txt(name).await.unwrap().len(), 1);
    });
    run_deep("dns-txt", &seeds, 60, 1, |input| {
        *answer.lock().unwrap() = input.to_vec();
        let Ok(records) = rt.block_on(resolver.lookup_txt(name)) else {
            return false;
        };
        for record in records {
            if let Ok(text) = std::str::from_utf8(&record) {
                persist_check(text);
            }
        }
        true
    });
}

#[test]
fn caa_answers() {
    let rt = runtime();
    let answer: Arc<Mutex<Vec<u8>>> = Arc::default();
    let addr = rt.block_on(nameserver(answer.clone()));
    let resolver = resolver(addr);
    let name = "fuzz.test.";
    let ca = Name::from_str("ca.test").unwrap();
    let seeds = vec![
        response(
            name,
            RecordType::CAA,
            vec![
                RData::CAA(CAA::new_issue(
                    false,
                    Some(ca.clone()),
                    vec![
                        KeyValue::new("accounturi", ACCOUNT),
                        KeyValue::new("validationmethods", "dns-01,http-01"),
                    ],
                )),
                RData::CAA(CAA::new_issuewild(true, None, vec![])),
            ],
        ),
        response(
            name,
            RecordType::CAA,
            vec![RData::CAA(CAA::new_issue(false, Some(ca), vec![]))],
        ),
    ];
    let identities = vec!["ca.test".to_owned()];
    rt.block_on(async {
        *answer.lock().unwrap() = seeds[1].clone();
        assert_eq!(resolver.lookup_caa(name).await.unwrap().len(), 1);
    });
    run("dns-caa", &seeds, 60, |input| {
        *answer.lock().unwrap() = input.to_vec();
        let Ok(records) = rt.block_on(resolver.lookup_caa(name)) else {
            return;
        };
        if records.is_empty() {
            return;
        }
        for wildcard in [false, true] {
            let request = caa::Request {
                identities: &identities,
                wildcard,
                account_uri: ACCOUNT,
                method: ChallengeType::Dns01,
            };
            let _ = caa::evaluate("fuzz.test", &records, &request);
        }
    });
}

/// CAA property values and dns-persist-01 records by themselves: many more
/// cases than a nameserver round trip allows.
#[test]
fn record_values() {
    let seeds: Vec<Vec<u8>> = [
        "ca.test; accounturi=https://ca.test/acme/acct/1; validationmethods=dns-01",
        ";",
        "ca.test",
        "ca.test; accounturi=https://ca.test/acme/acct/1; policy=wildcard; persistUntil=2030-01-01T00:00:00Z",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    let identities = vec!["ca.test".to_owned()];
    run("record-values", &seeds, 3000, |input| {
        let _ = IssueValue::parse(input);
        if let Ok(text) = std::str::from_utf8(input) {
            persist_check(text);
            let _ = caa::is_issuer_domain_name(text);
        }
        let records = vec![validator_worker::resolver::CaaRecord {
            critical: input.first().is_some_and(|b| b & 1 == 1),
            tag: ["issue", "issuewild", "iodef", "ISSUE", "x"][input.len() % 5].into(),
            value: input.to_vec(),
        }];
        let request = caa::Request {
            identities: &identities,
            wildcard: input.len() % 2 == 0,
            account_uri: ACCOUNT,
            method: ChallengeType::Http01,
        };
        let _ = caa::evaluate("fuzz.test", &records, &request);
    });
}

/// dns-persist-01's record check in both forms: the account URL (draft-01)
/// and the hashed account URIs of draft-02 (the current key's, for the
/// name and the domain-less form, and a retained one).
fn persist_check(text: &str) {
    use validator_worker::dns_persist::{Expected, accepted_hashes, check};
    let _ = check(text, "ca.test", Expected::Url(ACCOUNT), true, NOW);
    let account = shared_proto::validator::PersistAccount {
        account_hash_prefix: "https://ca.test/acme/account-hash/".into(),
        key_thumbprint: "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs".into(),
        retained: vec!["https://ca.test/acme/account-hash/sha-256/x".into()],
    };
    let accepted = accepted_hashes(&account, "a.test", ACCOUNT);
    let expected = Expected::Hashed {
        prefix: &account.account_hash_prefix,
        accepted: &accepted,
    };
    let _ = check(text, "ca.test", expected, true, NOW);
}
