//! What every probe shares: the target host, resolution under the address
//! policy, and TCP connects with a deadline.
//!
//! The validator resolves a name once, checks every address against
//! [`AddressPolicy`], and connects its own socket to a checked address, so no
//! second resolution can happen behind the policy's back (DNS rebinding).

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use rustls::ClientConfig;
use shared_proto::identifier::is_valid_dns_name;
use shared_proto::{Identifier, IdentifierKind};
use tokio::net::TcpStream;

use crate::address_policy::AddressPolicy;
use crate::config::Config;
use crate::danger;
use crate::error::{ConnectCause, ConnectError, Error, ProbeError, RequestError};
use crate::resolver::DnsResolver;

/// ALPN protocol of RFC 8737.
pub const ACME_TLS_ALPN: &[u8] = b"acme-tls/1";

/// A host to connect to: a DNS name (lower case, no trailing dot) or an IP
/// address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Host {
    /// A DNS name.
    Name(String),
    /// An IP address.
    Ip(IpAddr),
}

impl Host {
    /// The host of a DNS or IP identifier (wildcard label removed).
    pub fn from_identifier(identifier: &Identifier) -> Result<Self, RequestError> {
        match identifier.kind {
            IdentifierKind::Dns => {
                if !is_valid_dns_name(&identifier.value) {
                    return Err(RequestError::BadIdentifier(identifier.value.clone()));
                }
                Ok(Self::Name(identifier.base_name().to_ascii_lowercase()))
            }
            IdentifierKind::Ip => identifier
                .value
                .parse()
                .map(Self::Ip)
                .map_err(|_| RequestError::BadIdentifier(identifier.value.clone())),
        }
    }

    /// The host as written in a URL authority (IPv6 in brackets).
    pub fn url_host(&self) -> String {
        match self {
            Self::Name(n) => n.clone(),
            Self::Ip(IpAddr::V4(a)) => a.to_string(),
            Self::Ip(IpAddr::V6(a)) => format!("[{a}]"),
        }
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Name(n) => f.write_str(n),
            Self::Ip(a) => write!(f, "{a}"),
        }
    }
}

/// The addresses of a host: everything it resolved to, and the subset the
/// policy allows; or, for a `.onion` name, the Tor proxy that reaches it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolved {
    /// All addresses (for the validation record; none for `.onion`).
    pub all: Vec<IpAddr>,
    /// The addresses that may be probed, never empty (the proxy's for
    /// `.onion`).
    pub allowed: Vec<IpAddr>,
    /// RFC 9799 §4: the Tor SOCKS5 proxy to connect through, for a
    /// `.onion` name.
    pub tor: Option<SocketAddr>,
}

impl Resolved {
    /// The address a connection to `addr` shows in a validation record:
    /// none through Tor (the proxy is not the service).
    pub fn address_used(&self, addr: IpAddr) -> Option<IpAddr> {
        self.tor.is_none().then_some(addr)
    }
}

/// The state shared by all probes of one validator process.
#[derive(Clone, Debug)]
pub struct Prober {
    /// The configuration.
    pub config: Arc<Config>,
    /// The resolver.
    pub resolver: DnsResolver,
    /// The address policy.
    pub policy: AddressPolicy,
    /// TLS client for https redirects of http-01 (no certificate checks).
    pub https_tls: Arc<ClientConfig>,
    /// TLS client for tls-alpn-01 (no certificate checks, ALPN `acme-tls/1`).
    pub acme_tls: Arc<ClientConfig>,
}

impl Prober {
    /// Sets up resolver, policy and TLS clients from `config`.
    pub fn new(config: Config) -> Result<Self, Error> {
        let mut resolver = DnsResolver::new(
            config.dns_resolver_addr,
            config.allow_private_targets,
            config.connect_timeout(),
        );
        if config.dnssec_validation {
            let anchors = match &config.dnssec_trust_anchor_file {
                Some(path) => hickory_resolver::proto::dnssec::TrustAnchors::from_file(path)
                    .map_err(|_| {
                        Error::InvalidConfig(
                            "dnssec_trust_anchor_file is not a readable file of DNSKEY records",
                        )
                    })?,
                None => hickory_resolver::proto::dnssec::TrustAnchors::default(),
            };
            resolver = resolver.with_dnssec(anchors);
        }
        let https_tls = danger::client_config(b"http/1.1")
            .map_err(|_| Error::InvalidConfig("cannot build the TLS client configuration"))?;
        let acme_tls = danger::client_config(ACME_TLS_ALPN)
            .map_err(|_| Error::InvalidConfig("cannot build the TLS client configuration"))?;
        Ok(Self {
            policy: AddressPolicy::new(config.allow_private_targets),
            config: Arc::new(config),
            resolver,
            https_tls: Arc::new(https_tls),
            acme_tls: Arc::new(acme_tls),
        })
    }

    /// Resolves `host` and applies the address policy. An IP address that is
    /// the identifier itself is a `rejectedIdentifier` when reserved; any other
    /// host with only reserved addresses is a `connection` problem.
    pub async fn resolve(&self, host: &Host, is_identifier: bool) -> Result<Resolved, ProbeError> {
        // RFC 7686 §2: `.onion` is never looked up in the DNS; RFC 9799 §4:
        // it is reached through Tor, when the validator has a proxy.
        if let Host::Name(name) = host
            && shared_proto::identifier::is_onion(name)
        {
            let Some(proxy) = self.config.tor_socks_proxy else {
                return Err(ProbeError::Policy(crate::error::PolicyError::NoTor {
                    host: name.clone(),
                }));
            };
            return Ok(Resolved {
                all: Vec::new(),
                allowed: vec![proxy.ip()],
                tor: Some(proxy),
            });
        }
        let all = match host {
            Host::Ip(addr) => {
                if is_identifier {
                    self.policy.check_identifier(*addr)?;
                }
                vec![*addr]
            }
            Host::Name(name) => self.resolver.lookup_ip(name).await?,
        };
        let allowed = self.policy.filter(&host.to_string(), &all)?;
        Ok(Resolved {
            all,
            allowed,
            tor: None,
        })
    }

    /// Connects to `port` on the first allowed IPv6 address, falling back to
    /// the first allowed IPv4 address, each under the connect timeout.
    pub async fn connect(
        &self,
        host: &Host,
        port: u16,
        resolved: &Resolved,
    ) -> Result<(TcpStream, IpAddr), ProbeError> {
        if let Some(proxy) = resolved.tor {
            return self.connect_tor(proxy, host, port).await;
        }
        let v6 = resolved.allowed.iter().find(|a| a.is_ipv6());
        let v4 = resolved.allowed.iter().find(|a| a.is_ipv4());
        let mut last = None;
        for addr in v6.into_iter().chain(v4).copied() {
            let attempt = tokio::time::timeout(
                self.config.connect_timeout(),
                TcpStream::connect((addr, port)),
            )
            .await;
            let cause = match attempt {
                Ok(Ok(stream)) => return Ok((stream, addr)),
                Ok(Err(e)) => ConnectCause::Io(e),
                Err(_) => ConnectCause::Timeout(self.config.connect_timeout_ms),
            };
            tracing::debug!(%host, port, %addr, %cause, "connect failed");
            last = Some(ConnectError {
                host: host.to_string(),
                port,
                addr,
                cause,
            });
        }
        match last {
            Some(e) => Err(e.into()),
            // `Resolved::allowed` is never empty (AddressPolicy::filter), so
            // at least one attempt was made; this arm is defensive.
            None => Err(ProbeError::Internal("no address to connect to")),
        }
    }

    /// Connects to `host:port` through the Tor SOCKS5 proxy at `proxy`
    /// (RFC 1928 CONNECT with the name, so the proxy resolves it), the
    /// proxy's handshake included under the connect timeout. Returns the
    /// stream and the proxy's address.
    async fn connect_tor(
        &self,
        proxy: SocketAddr,
        host: &Host,
        port: u16,
    ) -> Result<(TcpStream, IpAddr), ProbeError> {
        let name = host.to_string();
        let attempt = tokio::time::timeout(
            self.config.connect_timeout(),
            tokio_socks::tcp::Socks5Stream::connect(proxy, (name.as_str(), port)),
        )
        .await;
        let cause = match attempt {
            Ok(Ok(stream)) => return Ok((stream.into_inner(), proxy.ip())),
            Ok(Err(tokio_socks::Error::Io(e))) => ConnectCause::Io(e),
            Ok(Err(e)) => ConnectCause::Tor(e.to_string()),
            Err(_) => ConnectCause::Timeout(self.config.connect_timeout_ms),
        };
        tracing::debug!(%host, port, %proxy, %cause, "connect through Tor failed");
        Err(ConnectError {
            host: name,
            port,
            addr: proxy.ip(),
            cause,
        }
        .into())
    }
}
