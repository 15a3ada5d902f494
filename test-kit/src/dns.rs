//! A real DNS server (hickory-server, UDP and TCP on 127.0.0.1, the same
//! port number for both) that a validator or ACME server is pointed at.
//!
//! It serves an in-memory view of a few zones (by default
//! [`DEFAULT_ZONES`]; the root zone `.` takes every name): every name under
//! a zone has `A 127.0.0.1` unless overridden ([`DnsRecords::set_a`]) or
//! removed ([`DnsRecords::remove_name`]); TXT records are added and removed
//! at run time for dns-01, CAA records for CAA ([`DnsRecords::set_caa`]),
//! and a name can be made to answer SERVFAIL ([`DnsRecords::servfail`]). Names outside the zones, or removed, get NXDOMAIN
//! (or REFUSED, see [`DnsServerBuilder::refuse_outside_zones`]). AAAA and
//! other types get an empty NOERROR answer with the zone's SOA, so a
//! resolver that tries IPv6 first falls back to the A. With
//! [`DnsServerBuilder::answer_caa_above_zones`], CAA queries for the names
//! above a zone (its parents, up to the root) get an empty NOERROR answer
//! instead, as a CA climbing the tree (RFC 8659 §3) needs. The server
//! counts the queries it answers by type ([`DnsRecords::queries`]).
//!
//! This file depends only on hickory-proto, hickory-server, tokio and
//! async-trait, so test crates that cannot depend on `test-kit` may include
//! it with `#[path]` (akamu-client's test support does, for akamu-cli).

use std::collections::{HashMap, HashSet};
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::ops::Deref;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use hickory_proto::op::{Header, HeaderCounts, Metadata, ResponseCode};
pub use hickory_proto::rr::RecordType;
use hickory_proto::rr::rdata::{A, CAA, SOA, TXT};
use hickory_proto::rr::{LowerName, Name, RData, Record};
use hickory_server::Server;
use hickory_server::net::runtime::Time;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;
use tokio::net::{TcpListener, UdpSocket};

/// The zones [`DnsServer::start`] serves.
pub const DEFAULT_ZONES: &[&str] = &["example.org.", "akamu.test."];

/// TTL of every answer: short, so nothing a test changes is cached for long.
const TTL: u32 = 1;
/// Idle deadline of one DNS-over-TCP connection.
const TCP_TIMEOUT: Duration = Duration::from_secs(10);
/// hickory-server's per-connection TCP response buffer.
const TCP_RESPONSE_BUFFER: usize = 1024;
/// Tries at finding a port number free for both UDP and TCP.
const PORT_ATTEMPTS: usize = 20;

/// A running test DNS server. Stops when dropped (its tasks are aborted).
///
/// Derefs to its [`DnsRecords`], so `dns.set_txt(..)` works directly.
pub struct DnsServer {
    addr: SocketAddr,
    records: DnsRecords,
    server: Server<Handler>,
}

impl DnsServer {
    /// Serves [`DEFAULT_ZONES`] on a free port of 127.0.0.1.
    ///
    /// # Panics
    /// When no port is free for both UDP and TCP.
    pub async fn start() -> DnsServer {
        DnsServer::start_with_zones(DEFAULT_ZONES).await
    }

    /// Serves the given zones (e.g. `"example.org."`, or `"."` for every
    /// name) on a free port of 127.0.0.1.
    ///
    /// # Panics
    /// On a bad zone name, or when no port is free for both UDP and TCP.
    pub async fn start_with_zones(zones: &[&str]) -> DnsServer {
        DnsServer::builder()
            .zones(zones)
            .bind()
            .await
            .expect("start the test DNS server")
    }

    /// A builder for a server on a chosen port or with other options.
    pub fn builder() -> DnsServerBuilder {
        DnsServerBuilder::default()
    }

    /// The `ip:port` the server answers on (UDP and TCP).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A handle on the served records that outlives borrows of the server
    /// (e.g. for a task that publishes records on request).
    pub fn records(&self) -> DnsRecords {
        self.records.clone()
    }
}

impl Deref for DnsServer {
    type Target = DnsRecords;

    fn deref(&self) -> &DnsRecords {
        &self.records
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        // Server's tasks live in a JoinSet that aborts them when dropped;
        // cancelling first makes the intent explicit.
        self.server.shutdown_token().cancel();
    }
}

/// How to start a [`DnsServer`]: zones, port, answer outside the zones.
#[derive(Debug, Clone)]
pub struct DnsServerBuilder {
    zones: Vec<String>,
    port: u16,
    refuse_outside_zones: bool,
    caa_above_zones: bool,
}

impl Default for DnsServerBuilder {
    fn default() -> DnsServerBuilder {
        DnsServerBuilder {
            zones: DEFAULT_ZONES.iter().map(|z| (*z).to_owned()).collect(),
            port: 0,
            refuse_outside_zones: false,
            caa_above_zones: false,
        }
    }
}

impl DnsServerBuilder {
    /// The zones to serve, replacing [`DEFAULT_ZONES`] (`"."` serves every
    /// name).
    pub fn zones(mut self, zones: &[&str]) -> DnsServerBuilder {
        self.zones = zones.iter().map(|z| (*z).to_owned()).collect();
        self
    }

    /// The port on 127.0.0.1 for UDP and TCP; 0 (the default) picks a free
    /// one.
    pub fn port(mut self, port: u16) -> DnsServerBuilder {
        self.port = port;
        self
    }

    /// Answers REFUSED (not authoritative) instead of NXDOMAIN for names
    /// outside the zones.
    pub fn refuse_outside_zones(mut self) -> DnsServerBuilder {
        self.refuse_outside_zones = true;
        self
    }

    /// Answers CAA queries for the names above a zone (`test.` and `.`
    /// above `example.test.`) with an empty NOERROR answer rather than
    /// NXDOMAIN or REFUSED: the parents have no CAA records, so a CA that
    /// climbs the tree past the zone (RFC 8659 §3) finds nothing there
    /// instead of failing its lookup.
    pub fn answer_caa_above_zones(mut self) -> DnsServerBuilder {
        self.caa_above_zones = true;
        self
    }

    /// Binds the sockets and starts serving. Needs a tokio runtime.
    ///
    /// # Errors
    /// A bad zone name (`InvalidInput`), or a port that cannot be bound.
    pub async fn bind(self) -> io::Result<DnsServer> {
        let zones = self
            .zones
            .iter()
            .map(|z| parse_name(z).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e)))
            .collect::<io::Result<Vec<_>>>()?;
        let outside = if self.refuse_outside_zones {
            ResponseCode::Refused
        } else {
            ResponseCode::NXDomain
        };
        let records = DnsRecords(Arc::new(RwLock::new(ZoneData {
            zones,
            outside,
            caa_above_zones: self.caa_above_zones,
            ..ZoneData::default()
        })));
        let (udp, tcp) = bind_udp_tcp(self.port).await?;
        let addr = udp.local_addr()?;
        let mut server = Server::new(Handler {
            records: records.clone(),
        });
        server.register_socket(udp);
        server.register_listener(tcp, TCP_TIMEOUT, TCP_RESPONSE_BUFFER);
        Ok(DnsServer {
            addr,
            records,
            server,
        })
    }
}

/// Binds UDP and TCP on the same port of 127.0.0.1; for port 0, retries
/// when the TCP side of the port UDP got is taken.
async fn bind_udp_tcp(port: u16) -> io::Result<(UdpSocket, TcpListener)> {
    let with_context = |proto: &str, port: u16, e: io::Error| {
        io::Error::new(e.kind(), format!("bind DNS {proto} 127.0.0.1:{port}: {e}"))
    };
    if port != 0 {
        let udp = UdpSocket::bind((Ipv4Addr::LOCALHOST, port))
            .await
            .map_err(|e| with_context("UDP", port, e))?;
        let tcp = TcpListener::bind((Ipv4Addr::LOCALHOST, port))
            .await
            .map_err(|e| with_context("TCP", port, e))?;
        return Ok((udp, tcp));
    }
    let mut last = None;
    for _ in 0..PORT_ATTEMPTS {
        let udp = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .map_err(|e| with_context("UDP", 0, e))?;
        let port = udp.local_addr()?.port();
        match TcpListener::bind((Ipv4Addr::LOCALHOST, port)).await {
            Ok(tcp) => return Ok((udp, tcp)),
            Err(e) => last = Some(e),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AddrInUse,
        format!("no port free for DNS over UDP and TCP: {last:?}"),
    ))
}

/// Shared access to a running server's records; cheap to clone.
///
/// Names are absolute or relative (`www.example.org` means
/// `www.example.org.`), case-insensitive.
///
/// # Panics
/// Every method panics on a name that is not a valid DNS name.
#[derive(Clone)]
pub struct DnsRecords(Arc<RwLock<ZoneData>>);

impl DnsRecords {
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
    /// Adding a value already there changes nothing.
    pub fn add_txt(&self, name: &str, value: &str) {
        let mut data = self.write();
        let name = lower(name);
        data.removed.remove(&name);
        let values = data.txt.entry(name).or_default();
        if !values.iter().any(|v| v == value) {
            values.push(value.to_owned());
        }
    }

    /// Removes one TXT value of `name`, keeping the others (the name's TXT
    /// set disappears with its last value).
    pub fn remove_txt(&self, name: &str, value: &str) {
        let mut data = self.write();
        let name = lower(name);
        if let Some(values) = data.txt.get_mut(&name) {
            values.retain(|v| v != value);
            if values.is_empty() {
                data.txt.remove(&name);
            }
        }
    }

    /// The TXT values currently published at `name`.
    pub fn txt(&self, name: &str) -> Vec<String> {
        self.read()
            .txt
            .get(&lower(name))
            .cloned()
            .unwrap_or_default()
    }

    /// Replaces the A records of `name` (default: 127.0.0.1).
    pub fn set_a(&self, name: &str, addrs: &[Ipv4Addr]) {
        let mut data = self.write();
        let name = lower(name);
        data.removed.remove(&name);
        data.a.insert(name, addrs.to_vec());
    }

    /// Replaces the CAA records of `name` (RFC 8659), each given as
    /// `(flags, tag, value)`, e.g. `(0, "issue", "ca.example")` or
    /// `(128, "tbs", "x")`; an empty slice removes them.
    pub fn set_caa(&self, name: &str, records: &[(u8, &str, &str)]) {
        let mut data = self.write();
        let name = lower(name);
        if records.is_empty() {
            data.caa.remove(&name);
            return;
        }
        data.removed.remove(&name);
        data.caa.insert(
            name,
            records
                .iter()
                .map(|(flags, tag, value)| ((*flags), (*tag).to_owned(), (*value).to_owned()))
                .collect(),
        );
    }

    /// Makes every query for `name` answer SERVFAIL (`false` undoes it).
    pub fn servfail(&self, name: &str, on: bool) {
        let mut data = self.write();
        let name = lower(name);
        if on {
            data.servfail.insert(name);
        } else {
            data.servfail.remove(&name);
        }
    }

    /// Makes `name` answer NXDOMAIN even though it is inside a zone (until
    /// records are set for it again).
    pub fn remove_name(&self, name: &str) {
        self.write().removed.insert(lower(name));
    }

    /// How many queries of type `rtype` the server has answered (whatever
    /// the answer), e.g. `queries(RecordType::CAA)`.
    pub fn queries(&self, rtype: RecordType) -> u64 {
        let data = self.read();
        match counter_index(rtype) {
            Some(i) => data.queries[i].load(Ordering::Relaxed),
            None => data.other_queries.load(Ordering::Relaxed),
        }
    }

    /// Counts one answered query of type `rtype`.
    fn count(&self, rtype: RecordType) {
        let data = self.read();
        let counter = match counter_index(rtype) {
            Some(i) => &data.queries[i],
            None => &data.other_queries,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    fn read(&self) -> RwLockReadGuard<'_, ZoneData> {
        self.0.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, ZoneData> {
        self.0.write().unwrap_or_else(|e| e.into_inner())
    }
}

/// The record types counted one by one; the others share one counter.
const COUNTED_TYPES: [RecordType; 6] = [
    RecordType::A,
    RecordType::AAAA,
    RecordType::TXT,
    RecordType::CAA,
    RecordType::SOA,
    RecordType::NS,
];

fn counter_index(rtype: RecordType) -> Option<usize> {
    COUNTED_TYPES.iter().position(|t| *t == rtype)
}

/// What the server knows.
struct ZoneData {
    zones: Vec<LowerName>,
    /// The response code for names outside every zone.
    outside: ResponseCode,
    /// Empty NOERROR answers to CAA queries for the zones' parents.
    caa_above_zones: bool,
    /// Queries answered, by [`COUNTED_TYPES`] index.
    queries: [AtomicU64; COUNTED_TYPES.len()],
    /// Queries of the other types.
    other_queries: AtomicU64,
    a: HashMap<LowerName, Vec<Ipv4Addr>>,
    txt: HashMap<LowerName, Vec<String>>,
    /// CAA records as (flags, tag, value).
    caa: HashMap<LowerName, Vec<(u8, String, String)>>,
    removed: HashSet<LowerName>,
    servfail: HashSet<LowerName>,
}

impl Default for ZoneData {
    fn default() -> ZoneData {
        ZoneData {
            zones: Vec::new(),
            outside: ResponseCode::NXDomain,
            caa_above_zones: false,
            queries: Default::default(),
            other_queries: AtomicU64::new(0),
            a: HashMap::new(),
            txt: HashMap::new(),
            caa: HashMap::new(),
            removed: HashSet::new(),
            servfail: HashSet::new(),
        }
    }
}

impl ZoneData {
    /// The response code, answer and authority records for one question.
    fn answer(
        &self,
        name: &LowerName,
        rtype: RecordType,
    ) -> (ResponseCode, Vec<Record>, Vec<Record>) {
        if self.servfail.contains(name) {
            return (ResponseCode::ServFail, Vec::new(), Vec::new());
        }
        let Some(zone) = self.zones.iter().find(|z| z.zone_of(name)) else {
            if rtype == RecordType::CAA
                && self.caa_above_zones
                && self.zones.iter().any(|z| name.zone_of(z))
            {
                return (ResponseCode::NoError, Vec::new(), Vec::new());
            }
            return (self.outside, Vec::new(), Vec::new());
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
            RecordType::CAA => self
                .caa
                .get(name)
                .map(|records| {
                    records
                        .iter()
                        .map(|(flags, tag, value)| {
                            Record::from_rdata(
                                owner.clone(),
                                TTL,
                                RData::CAA(caa_rdata(*flags, tag, value)),
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

/// hickory-server's request handler over the records.
struct Handler {
    records: DnsRecords,
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
                self.records.count(info.query.query_type());
                self.records
                    .read()
                    .answer(info.query.name(), info.query.query_type())
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

/// A CAA record's data with raw flags, tag and value (any tag, any value:
/// tests need unknown and malformed ones too).
fn caa_rdata(flags: u8, tag: &str, value: &str) -> CAA {
    let mut caa = CAA::new_issue(false, None, Vec::new());
    caa.issuer_critical = flags & 0x80 != 0;
    caa.reserved_flags = flags & 0x7f;
    tag.clone_into(&mut caa.tag);
    caa.value = value.as_bytes().to_vec();
    caa
}

/// The SOA of `zone` (`ns.<zone>`, `hostmaster.<zone>`, negative TTL [`TTL`]).
fn soa_record(zone: &LowerName) -> Record {
    let zone = Name::from(zone.clone());
    let host = |label: &str| {
        Name::from_str(label)
            .and_then(|n| n.append_domain(&zone))
            .unwrap_or_else(|_| zone.clone())
    };
    let soa = SOA::new(host("ns"), host("hostmaster"), 1, 60, 60, 600, TTL);
    Record::from_rdata(zone, TTL, RData::SOA(soa))
}

/// Parses a name, making it absolute (`www.example.org` → `www.example.org.`).
fn parse_name(name: &str) -> Result<LowerName, String> {
    let mut n = Name::from_str(name).map_err(|e| format!("bad DNS name {name:?}: {e}"))?;
    n.set_fqdn(true);
    Ok(LowerName::new(&n))
}

/// Checks that `name` is a valid DNS name, so that the [`DnsRecords`]
/// methods cannot panic on it (for callers that must not panic).
///
/// # Errors
/// Says why the name is bad.
pub fn check_name(name: &str) -> Result<(), String> {
    parse_name(name).map(drop)
}

/// [`parse_name`] for test input, which is known good.
fn lower(name: &str) -> LowerName {
    parse_name(name).unwrap_or_else(|e| panic!("{e}"))
}
