//! A DNS server on 127.0.0.1 (hickory-server, UDP and TCP): every name has
//! `A 127.0.0.1`; TXT records are set at run time; other types get an empty
//! NOERROR answer. Stops when dropped.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::str::FromStr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use hickory_proto::op::{Header, HeaderCounts, Metadata, ResponseCode};
use hickory_proto::rr::rdata::{A, TXT};
use hickory_proto::rr::{LowerName, Name, RData, Record, RecordType};
use hickory_server::Server;
use hickory_server::net::runtime::Time;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;
use tokio::net::{TcpListener, UdpSocket};

type Txt = Arc<RwLock<HashMap<LowerName, Vec<String>>>>;

pub struct DnsServer {
    addr: SocketAddr,
    txt: Txt,
    server: Server<Handler>,
}

impl DnsServer {
    pub async fn start() -> DnsServer {
        let mut attempt = 0;
        let (udp, tcp) = loop {
            let udp = UdpSocket::bind("127.0.0.1:0").await.expect("bind UDP");
            let port = udp.local_addr().expect("addr").port();
            match TcpListener::bind(("127.0.0.1", port)).await {
                Ok(tcp) => break (udp, tcp),
                Err(e) => {
                    attempt += 1;
                    assert!(attempt < 20, "no port free for UDP and TCP: {e}");
                }
            }
        };
        let addr = udp.local_addr().expect("addr");
        let txt = Txt::default();
        let mut server = Server::new(Handler { txt: txt.clone() });
        server.register_socket(udp);
        server.register_listener(tcp, Duration::from_secs(5), 64);
        DnsServer { addr, txt, server }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn set_txt(&self, name: &str, values: &[&str]) {
        self.txt.write().unwrap_or_else(|e| e.into_inner()).insert(
            lower(name),
            values.iter().map(|v| (*v).to_owned()).collect(),
        );
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        self.server.shutdown_token().cancel();
    }
}

struct Handler {
    txt: Txt,
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
        let answers: Vec<Record> = match request.request_info() {
            Ok(info) => {
                let name = info.query.name();
                let owner = Name::from(name.clone());
                match info.query.query_type() {
                    RecordType::A => vec![Record::from_rdata(
                        owner,
                        1,
                        RData::A(A(Ipv4Addr::LOCALHOST)),
                    )],
                    RecordType::TXT => self
                        .txt
                        .read()
                        .unwrap_or_else(|e| e.into_inner())
                        .get(name)
                        .map(|vs| {
                            vs.iter()
                                .map(|v| {
                                    Record::from_rdata(
                                        owner.clone(),
                                        1,
                                        RData::TXT(TXT::new(vec![v.clone()])),
                                    )
                                })
                                .collect()
                        })
                        .unwrap_or_default(),
                    _ => Vec::new(),
                }
            }
            Err(_) => {
                metadata.response_code = ResponseCode::FormErr;
                Vec::new()
            }
        };
        let response = builder.build(
            metadata,
            answers.iter(),
            std::iter::empty(),
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

fn lower(name: &str) -> LowerName {
    let mut n = Name::from_str(name).unwrap_or_else(|e| panic!("bad DNS name {name:?}: {e}"));
    n.set_fqdn(true);
    LowerName::new(&n)
}
