//! What every probe shares: the target host, resolution under the address
//! policy, and TCP connects with a deadline.
//!
//! The validator resolves a name once, checks every address against
//! [`AddressPolicy`], and connects its own socket to a checked address, so no
//! second resolution can happen behind the policy's back (DNS rebinding).

use std::fmt;
use std::net::IpAddr;
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
/// policy allows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolved {
    /// All addresses (for the validation record).
    pub all: Vec<IpAddr>,
    /// The addresses that may be probed, never empty.
    pub allowed: Vec<IpAddr>,
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
        let resolver = DnsResolver::new(
            config.dns_resolver_addr,
            config.allow_private_targets,
            config.connect_timeout(),
        );
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
        Ok(Resolved { all, allowed })
    }

    /// Connects to `port` on the first allowed IPv6 address, falling back to
    /// the first allowed IPv4 address, each under the connect timeout.
    pub async fn connect(
        &self,
        host: &Host,
        port: u16,
        resolved: &Resolved,
    ) -> Result<(TcpStream, IpAddr), ProbeError> {
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
}
