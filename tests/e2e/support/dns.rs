//! A real DNS server (hickory-server, UDP and TCP on 127.0.0.1) that the
//! validator is pointed at through `server.dns_resolver_addr`.
//!
//! It serves an in-memory view of a few zones (by default `example.org.` and
//! `akamu.test.`): every name under a zone has `A 127.0.0.1` unless a test
//! overrides or removes it; TXT records are added and removed at run time
//! (`set_txt`, `clear_txt`) for dns-01. Names outside the zones, or removed
//! with `remove_name`, get NXDOMAIN. AAAA and other types get an empty
//! NOERROR answer, so a resolver that tries IPv6 first falls back to the A.

use std::collections::{HashMap, HashSet};
use std::net::{Ipv4Addr, SocketAddr};
use std::str::FromStr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use hickory_proto::op::{Header, HeaderCounts, Metadata, ResponseCode};
use hickory_proto::rr::rdata::{A, SOA, TXT};
use hickory_proto::rr::{LowerName, Name, RData, Record, RecordType};
use hickory_server::Server;
use hickory_server::net::runtime::Time;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;
use tokio::net::{TcpListener, UdpSocket};

/// TTL of every answer: short, so nothing a test changes is cached for long.
const TTL: u32 = 1;

/// A running test DNS server. Stops when dropped (its tasks are aborted).
pub struct DnsServer {
    addr: SocketAddr,
    data: Arc<RwLock<ZoneData>>,
    server: Server<Handler>,
}

impl DnsServer {
    /// Serves `example.org.` and `akamu.test.` on a free port of 127.0.0.1.
    pub async fn start() -> DnsServer {
        DnsServer::start_with_zones(&["example.org.", "akamu.test."]).await
    }

    /// Serves the given zones (absolute names) on a free port of 127.0.0.1,
    /// the same port number for UDP and TCP.
    pub async fn start_with_zones(zones: &[&str]) -> DnsServer {
        let zones = zones.iter().map(|z| lower(z)).collect();
        let data = Arc::new(RwLock::new(ZoneData {
            zones,
            ..ZoneData::default()
        }));
        // UDP and TCP share a port number; retry if someone holds the TCP side.
        let mut attempt = 0;
        let (udp, tcp) = loop {
            let udp = UdpSocket::bind("127.0.0.1:0").await.expect("bind UDP");
            let port = udp.local_addr().expect("udp addr").port();
            match TcpListener::bind(("127.0.0.1", port)).await {
                Ok(tcp) => break (udp, tcp),
                Err(e) => {
                    attempt += 1;
                    assert!(attempt < 20, "no port free for UDP and TCP: {e}");
                }
            }
        };
        let addr = udp.local_addr().expect("udp addr");
        let mut server = Server::new(Handler { data: data.clone() });
        server.register_socket(udp);
        server.register_listener(tcp, Duration::from_secs(5), 64);
        DnsServer { addr, data, server }
    }

    /// `ip:port` to put in `dns_resolver_addr`.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Replaces the TXT records of `name` (e.g. `_acme-challenge.www.example.org`).
    pub fn set_txt(&self, name: &str, values: &[&str]) {
        let mut data = self.write();
        let name = lower(name);
        data.removed.remove(&name);
        data.txt
            .insert(name, values.iter().map(|v| (*v).to_owned()).collect());
    }

    /// Removes all TXT records of `name`.
    pub fn clear_txt(&self, name: &str) {
        self.write().txt.remove(&lower(name));
    }

    /// Adds one TXT value to `name`, keeping the others (a wildcard and its
    /// base name publish two values at the same `_acme-challenge` name).
    pub fn add_txt(&self, name: &str, value: &str) {
        self.data_handle().add_txt(name, value);
    }

    /// Removes one TXT value of `name`, keeping the others.
    pub fn remove_txt(&self, name: &str, value: &str) {
        self.data_handle().remove_txt(name, value);
    }

    /// The TXT values currently published at `name`.
    pub fn txt(&self, name: &str) -> Vec<String> {
        let data = self.data.read().unwrap_or_else(|e| e.into_inner());
        data.txt.get(&lower(name)).cloned().unwrap_or_default()
    }

    /// A handle on the zone data for the control endpoint
    /// (`super::dns_control`), which lets external hook scripts publish TXT
    /// records.
    pub(crate) fn data_handle(&self) -> ZoneHandle {
        ZoneHandle(self.data.clone())
    }

    /// Replaces the A records of `name` (default: 127.0.0.1).
    pub fn set_a(&self, name: &str, addrs: &[Ipv4Addr]) {
        let mut data = self.write();
        let name = lower(name);
        data.removed.remove(&name);
        data.a.insert(name, addrs.to_vec());
    }

    /// Makes `name` answer NXDOMAIN even though it is inside a zone.
    pub fn remove_name(&self, name: &str) {
        self.write().removed.insert(lower(name));
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, ZoneData> {
        self.data.write().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        // Server's tasks live in a JoinSet that aborts them when dropped;
        // cancelling first makes the intent explicit.
        self.server.shutdown_token().cancel();
    }
}

/// Shared access to a running server's TXT records.
#[derive(Clone)]
pub(crate) struct ZoneHandle(Arc<RwLock<ZoneData>>);

impl ZoneHandle {
    /// Adds one TXT value (idempotent).
    pub(crate) fn add_txt(&self, name: &str, value: &str) {
        let mut data = self.0.write().unwrap_or_else(|e| e.into_inner());
        let name = lower(name);
        data.removed.remove(&name);
        let values = data.txt.entry(name).or_default();
        if !values.iter().any(|v| v == value) {
            values.push(value.to_owned());
        }
    }

    /// Removes one TXT value (the name disappears with its last value).
    pub(crate) fn remove_txt(&self, name: &str, value: &str) {
        let mut data = self.0.write().unwrap_or_else(|e| e.into_inner());
        let name = lower(name);
        if let Some(values) = data.txt.get_mut(&name) {
            values.retain(|v| v != value);
            if values.is_empty() {
                data.txt.remove(&name);
            }
        }
    }
}

/// What the server knows.
#[derive(Default)]
struct ZoneData {
    zones: Vec<LowerName>,
    a: HashMap<LowerName, Vec<Ipv4Addr>>,
    txt: HashMap<LowerName, Vec<String>>,
    removed: HashSet<LowerName>,
}

impl ZoneData {
    /// The response code and answer records for one question.
    fn answer(
        &self,
        name: &LowerName,
        rtype: RecordType,
    ) -> (ResponseCode, Vec<Record>, Vec<Record>) {
        let Some(zone) = self.zones.iter().find(|z| z.zone_of(name)) else {
            return (ResponseCode::NXDomain, Vec::new(), Vec::new());
        };
        let soa = vec![soa_record(zone)];
        if self.removed.contains(name) {
            return (ResponseCode::NXDomain, Vec::new(), soa);
        }
        let owner = Name::from(name.clone());
        let answers: Vec<Record> = match rtype {
            RecordType::A => {
                let addrs = self
                    .a
                    .get(name)
                    .cloned()
                    .unwrap_or_else(|| vec![Ipv4Addr::LOCALHOST]);
                addrs
                    .into_iter()
                    .map(|ip| Record::from_rdata(owner.clone(), TTL, RData::A(A(ip))))
                    .collect()
            }
            RecordType::TXT => self
                .txt
                .get(name)
                .map(|values| {
                    values
                        .iter()
                        .map(|v| {
                            Record::from_rdata(
                                owner.clone(),
                                TTL,
                                RData::TXT(TXT::new(vec![v.clone()])),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default(),
            RecordType::SOA if name == zone => soa.clone(),
            _ => Vec::new(),
        };
        // NODATA carries the SOA so resolvers can cache the negative answer.
        let authority = if answers.is_empty() { soa } else { Vec::new() };
        (ResponseCode::NoError, answers, authority)
    }
}

/// hickory-server's request handler over `ZoneData`.
struct Handler {
    data: Arc<RwLock<ZoneData>>,
}

#[async_trait::async_trait]
impl RequestHandler for Handler {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        mut response_handle: R,
    ) -> ResponseInfo {
        let builder = MessageResponseBuilder::from_message_request(request);
        let mut metadata = Metadata::response_from_request(&request.metadata);
        metadata.authoritative = true;
        let (code, answers, authority) = match request.request_info() {
            Ok(info) => {
                let data = self.data.read().unwrap_or_else(|e| e.into_inner());
                data.answer(info.query.name(), info.query.query_type())
            }
            Err(_) => (ResponseCode::FormErr, Vec::new(), Vec::new()),
        };
        metadata.response_code = code;
        let response = builder.build(
            metadata,
            answers.iter(),
            authority.iter(),
            std::iter::empty(),
            std::iter::empty(),
        );
        match response_handle.send_response(response).await {
            Ok(info) => info,
            Err(_) => {
                let mut metadata = Metadata::response_from_request(&request.metadata);
                metadata.response_code = ResponseCode::ServFail;
                ResponseInfo::from(Header {
                    metadata,
                    counts: HeaderCounts::default(),
                })
            }
        }
    }
}

fn soa_record(zone: &LowerName) -> Record {
    let zone = Name::from(zone.clone());
    let mname = Name::from_str("ns").and_then(|n| n.append_domain(&zone));
    let rname = Name::from_str("hostmaster").and_then(|n| n.append_domain(&zone));
    let soa = SOA::new(
        mname.unwrap_or_else(|_| zone.clone()),
        rname.unwrap_or_else(|_| zone.clone()),
        1,
        60,
        60,
        600,
        TTL,
    );
    Record::from_rdata(zone, TTL, RData::SOA(soa))
}

/// Parses a name, making it absolute (`www.example.org` → `www.example.org.`).
fn lower(name: &str) -> LowerName {
    let mut n = Name::from_str(name).unwrap_or_else(|e| panic!("bad DNS name {name:?}: {e}"));
    n.set_fqdn(true);
    LowerName::new(&n)
}

#[cfg(test)]
mod unit {
    use hickory_proto::op::{Message, Query};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

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
    async fn a_records_can_be_overridden() {
        let dns = DnsServer::start().await;
        dns.set_a("other.example.org", &[Ipv4Addr::new(127, 0, 0, 2)]);
        let reply = ask_udp(dns.addr(), "other.example.org.", RecordType::A).await;
        assert_eq!(a_records(&reply), vec![Ipv4Addr::new(127, 0, 0, 2)]);
    }
}
