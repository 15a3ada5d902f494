//! The test DNS server answers over UDP and TCP as documented.

use std::net::{Ipv4Addr, SocketAddr};
use std::str::FromStr;
use std::time::Duration;

use hickory_proto::op::{Message, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use test_kit::dns::{DnsServer, check_name};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UdpSocket;

async fn ask_udp(server: SocketAddr, name: &str, rtype: RecordType) -> Message {
    let mut msg = Message::query();
    msg.metadata.recursion_desired = true;
    msg.add_query(Query::query(Name::from_str(name).expect("name"), rtype));
    let sock = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    sock.send_to(&msg.to_vec().expect("encode"), server)
        .await
        .expect("send");
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), sock.recv(&mut buf))
        .await
        .expect("DNS answer within 5 s")
        .expect("recv");
    let reply = Message::from_vec(&buf[..n]).expect("decode");
    assert_eq!(reply.metadata.id, msg.metadata.id);
    reply
}

async fn ask_tcp(server: SocketAddr, name: &str, rtype: RecordType) -> Message {
    let mut msg = Message::query();
    msg.add_query(Query::query(Name::from_str(name).expect("name"), rtype));
    let wire = msg.to_vec().expect("encode");
    let mut stream = tokio::net::TcpStream::connect(server)
        .await
        .expect("connect");
    let len = u16::try_from(wire.len()).expect("small query");
    stream.write_all(&len.to_be_bytes()).await.expect("write");
    stream.write_all(&wire).await.expect("write");
    let mut len = [0u8; 2];
    stream.read_exact(&mut len).await.expect("read len");
    let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
    stream.read_exact(&mut buf).await.expect("read");
    Message::from_vec(&buf).expect("decode")
}

fn a_records(msg: &Message) -> Vec<Ipv4Addr> {
    msg.answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(a.0),
            _ => None,
        })
        .collect()
}

fn txt_records(msg: &Message) -> Vec<String> {
    msg.answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::TXT(t) => Some(t.to_string()),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn names_in_zone_resolve_to_loopback() {
    let dns = DnsServer::start().await;
    let reply = ask_udp(dns.addr(), "www.example.org.", RecordType::A).await;
    assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
    assert_eq!(a_records(&reply), vec![Ipv4Addr::LOCALHOST]);
    let reply = ask_tcp(dns.addr(), "deep.name.akamu.test.", RecordType::A).await;
    assert_eq!(a_records(&reply), vec![Ipv4Addr::LOCALHOST]);
    let reply = ask_udp(dns.addr(), "www.example.org.", RecordType::AAAA).await;
    assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
    assert!(reply.answers.is_empty());
}

#[tokio::test]
async fn unknown_names_are_nxdomain() {
    let dns = DnsServer::start().await;
    let reply = ask_udp(dns.addr(), "www.example.com.", RecordType::A).await;
    assert_eq!(reply.metadata.response_code, ResponseCode::NXDomain);
    dns.remove_name("gone.example.org");
    let reply = ask_udp(dns.addr(), "gone.example.org.", RecordType::A).await;
    assert_eq!(reply.metadata.response_code, ResponseCode::NXDomain);
}

#[tokio::test]
async fn txt_records_change_at_run_time() {
    let dns = DnsServer::start().await;
    let name = "_acme-challenge.www.example.org";
    assert!(txt_records(&ask_udp(dns.addr(), name, RecordType::TXT).await).is_empty());
    dns.set_txt(name, &["one", "two"]);
    let mut got = txt_records(&ask_udp(dns.addr(), name, RecordType::TXT).await);
    got.sort();
    assert_eq!(got, vec!["one".to_owned(), "two".to_owned()]);
    dns.clear_txt(name);
    assert!(txt_records(&ask_tcp(dns.addr(), name, RecordType::TXT).await).is_empty());
}

#[tokio::test]
async fn txt_values_are_added_and_removed_one_by_one() {
    let dns = DnsServer::start().await;
    let records = dns.records();
    let name = "_acme-challenge.wild.example.org.";
    records.add_txt(name, "base");
    records.add_txt(name, "wildcard");
    records.add_txt(name, "wildcard");
    assert_eq!(dns.txt(name), vec!["base", "wildcard"]);
    records.remove_txt(name, "base");
    let got = txt_records(&ask_udp(dns.addr(), name, RecordType::TXT).await);
    assert_eq!(got, vec!["wildcard".to_owned()]);
    records.remove_txt(name, "wildcard");
    assert!(dns.txt(name).is_empty());
}

#[tokio::test]
async fn a_records_can_be_overridden() {
    let dns = DnsServer::start().await;
    dns.set_a("other.example.org", &[Ipv4Addr::new(127, 0, 0, 2)]);
    let reply = ask_udp(dns.addr(), "other.example.org.", RecordType::A).await;
    assert_eq!(a_records(&reply), vec![Ipv4Addr::new(127, 0, 0, 2)]);
}

#[tokio::test]
async fn the_root_zone_answers_every_name() {
    let dns = DnsServer::start_with_zones(&["."]).await;
    let reply = ask_udp(dns.addr(), "www.example.com.", RecordType::A).await;
    assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
    assert_eq!(a_records(&reply), vec![Ipv4Addr::LOCALHOST]);
}

#[tokio::test]
async fn builder_refuses_outside_zones_on_a_chosen_port() {
    let port = {
        let probe = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind probe");
        probe.local_addr().expect("probe addr").port()
    };
    let dns = DnsServer::builder()
        .zones(&["bench.test."])
        .port(port)
        .refuse_outside_zones()
        .bind()
        .await
        .expect("bind the port just freed");
    assert_eq!(dns.addr().port(), port);
    let reply = ask_tcp(dns.addr(), "www.example.org.", RecordType::A).await;
    assert_eq!(reply.metadata.response_code, ResponseCode::Refused);
    let reply = ask_udp(dns.addr(), "a.b.bench.test.", RecordType::A).await;
    assert_eq!(a_records(&reply), vec![Ipv4Addr::LOCALHOST]);
}

#[tokio::test]
async fn caa_above_the_zone_is_empty_and_queries_are_counted() {
    let dns = DnsServer::builder()
        .zones(&["bench.test."])
        .refuse_outside_zones()
        .answer_caa_above_zones()
        .bind()
        .await
        .expect("bind");
    dns.set_caa("bench.test.", &[(0, "issue", "ca.bench.test")]);
    // The parents of the zone, up to the root: no records, no failure.
    for parent in ["test.", "."] {
        let reply = ask_udp(dns.addr(), parent, RecordType::CAA).await;
        assert_eq!(
            reply.metadata.response_code,
            ResponseCode::NoError,
            "{parent}"
        );
        assert!(reply.answers.is_empty(), "{parent}: {reply:?}");
    }
    // The apex has its record; a sibling zone and other types stay refused.
    let reply = ask_tcp(dns.addr(), "bench.test.", RecordType::CAA).await;
    assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
    assert_eq!(reply.answers.len(), 1, "{reply:?}");
    let reply = ask_udp(dns.addr(), "other.test.", RecordType::CAA).await;
    assert_eq!(reply.metadata.response_code, ResponseCode::Refused);
    let reply = ask_udp(dns.addr(), "test.", RecordType::A).await;
    assert_eq!(reply.metadata.response_code, ResponseCode::Refused);
    assert_eq!(dns.queries(RecordType::CAA), 4);
    assert_eq!(dns.queries(RecordType::A), 1);
    assert_eq!(dns.queries(RecordType::TXT), 0);
    let _ = ask_udp(dns.addr(), "x.bench.test.", RecordType::MX).await;
    assert_eq!(dns.queries(RecordType::MX), 1);
}

#[tokio::test]
async fn without_the_option_caa_above_the_zone_is_refused() {
    let dns = DnsServer::builder()
        .zones(&["bench.test."])
        .refuse_outside_zones()
        .bind()
        .await
        .expect("bind");
    let reply = ask_udp(dns.addr(), "test.", RecordType::CAA).await;
    assert_eq!(reply.metadata.response_code, ResponseCode::Refused);
}

#[test]
fn names_are_checked() {
    assert!(check_name("_acme-challenge.www.example.org").is_ok());
    assert!(check_name("bad..name").is_err());
}
