//! DNS lookups for validation (hickory-resolver 0.26).
//!
//! With `dns_resolver_addr` every lookup goes to that one nameserver (UDP,
//! falling back to TCP); otherwise the system configuration is used. Answers
//! are never cached: the resolver has a zero-sized cache and clamps every
//! TTL to zero, so a validation always sees what the nameserver says now.
//! It is built once and shared by all probes (building and dropping one per
//! lookup was a quarter of the validator's instructions per issuance). The
//! hosts file is never consulted.
//!
//! Only `localhost` and `*.localhost` are answered locally (127.0.0.1 and ::1,
//! RFC 6761 §6.3), and only when private targets are allowed: that is how the
//! development launcher validates `*.localhost` names without a DNS server.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use hickory_resolver::config::{
    ConnectionConfig, NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts,
};
use hickory_resolver::net::NetError;
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::dnssec::{Proof, TrustAnchors};
use hickory_resolver::proto::rr::{Name, RData, Record, RecordType};
use hickory_resolver::{Resolver, TokioResolver};

use crate::error::{DnsError, ProbeError};

/// The validator's cache-less resolver (cheap to clone: clones share it).
#[derive(Clone)]
pub struct DnsResolver {
    config: ResolverConfig,
    opts: ResolverOpts,
    localhost: bool,
    /// DNSSEC validation against these trust anchors, when on.
    dnssec: Option<Arc<TrustAnchors>>,
    /// Built at the first lookup from the fields above, then shared.
    shared: Arc<OnceLock<TokioResolver>>,
}

impl std::fmt::Debug for DnsResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DnsResolver")
            .field("config", &self.config)
            .field("localhost", &self.localhost)
            .field("dnssec", &self.dnssec.is_some())
            .finish_non_exhaustive()
    }
}

impl DnsResolver {
    /// A resolver that asks only `nameserver` (UDP and TCP) when given, and the
    /// system's nameservers otherwise. `allow_localhost` enables the RFC 6761
    /// answers for `localhost` names. `timeout` bounds each query attempt.
    pub fn new(nameserver: Option<SocketAddr>, allow_localhost: bool, timeout: Duration) -> Self {
        let (config, mut opts) = match nameserver {
            Some(addr) => {
                let mut udp = ConnectionConfig::udp();
                udp.port = addr.port();
                let mut tcp = ConnectionConfig::tcp();
                tcp.port = addr.port();
                let ns = NameServerConfig::new(addr.ip(), true, vec![udp, tcp]);
                (
                    ResolverConfig::from_name_servers(vec![ns]),
                    ResolverOpts::default(),
                )
            }
            None => match hickory_resolver::system_conf::read_system_conf() {
                Ok(conf) => conf,
                Err(e) => {
                    // Start anyway (the development launcher validates
                    // `*.localhost` without DNS); every real lookup will end
                    // in a `dns` problem, and this says why.
                    tracing::warn!(error = %e, "cannot read the system DNS configuration; \
                        set dns_resolver_addr");
                    (
                        ResolverConfig::from_name_servers(Vec::new()),
                        ResolverOpts::default(),
                    )
                }
            },
        };
        opts.cache_size = 0;
        opts.positive_max_ttl = Some(Duration::ZERO);
        opts.negative_max_ttl = Some(Duration::ZERO);
        opts.use_hosts_file = ResolveHosts::Never;
        opts.timeout = timeout;
        opts.attempts = 2;
        opts.try_tcp_on_error = true;
        Self {
            config,
            opts,
            localhost: allow_localhost,
            dnssec: None,
            shared: Arc::new(OnceLock::new()),
        }
    }

    /// Validates every answer with DNSSEC from `anchors` (the IANA root's
    /// keys, or an operator's for a private tree): an answer whose
    /// signature chain is bogus or cannot be established is refused as a
    /// `dns` problem; an answer proven unsigned (an insecure delegation)
    /// is taken as it is.
    pub fn with_dnssec(mut self, anchors: TrustAnchors) -> Self {
        self.opts.edns0 = true;
        self.dnssec = Some(Arc::new(anchors));
        self.shared = Arc::new(OnceLock::new());
        self
    }

    /// The shared resolver, built on first use.
    fn resolver(&self) -> Result<&TokioResolver, ProbeError> {
        if let Some(resolver) = self.shared.get() {
            return Ok(resolver);
        }
        let resolver = self.make()?;
        // Two first lookups at once may both build one; the first stored wins.
        Ok(self.shared.get_or_init(|| resolver))
    }

    fn make(&self) -> Result<TokioResolver, ProbeError> {
        let mut builder =
            Resolver::builder_with_config(self.config.clone(), TokioRuntimeProvider::default());
        *builder.options_mut() = self.opts.clone();
        if let Some(anchors) = &self.dnssec {
            builder = builder.with_trust_anchor(Arc::clone(anchors));
        }
        builder
            .build()
            .map_err(|_| ProbeError::Internal("cannot build the DNS resolver"))
    }

    /// With DNSSEC on, refuses answers (of `rtype`) that did not validate.
    fn check_proofs(
        &self,
        name: &str,
        rtype: &'static str,
        records: &[Record],
    ) -> Result<(), DnsError> {
        if self.dnssec.is_none() {
            return Ok(());
        }
        match records
            .iter()
            .map(|r| r.proof)
            .find(|p| !matches!(p, Proof::Secure | Proof::Insecure))
        {
            None => Ok(()),
            Some(proof) => Err(DnsError::Dnssec {
                name: name.to_owned(),
                rtype,
                proof: proof.to_string(),
            }),
        }
    }

    /// The A and AAAA addresses of `host` (IPv6 first). Fails with a `dns`
    /// problem when the name does not exist or has neither record type.
    pub async fn lookup_ip(&self, host: &str) -> Result<Vec<IpAddr>, ProbeError> {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        if self.localhost && is_localhost(&host) {
            return Ok(vec![
                IpAddr::V6(Ipv6Addr::LOCALHOST),
                IpAddr::V4(Ipv4Addr::LOCALHOST),
            ]);
        }
        let name = fqdn(&host)?;
        let resolver = self.resolver()?;
        let (v6, v4) = tokio::join!(
            resolver.lookup(name.clone(), RecordType::AAAA),
            resolver.lookup(name, RecordType::A),
        );
        let mut addrs = Vec::new();
        let mut errors = Vec::new();
        for (result, rtype) in [(v6, "AAAA"), (v4, "A")] {
            match result {
                Ok(lookup) => {
                    self.check_proofs(&host, rtype, lookup.answers())?;
                    addrs.extend(lookup.answers().iter().filter_map(|r| match &r.data {
                        RData::A(a) => Some(IpAddr::V4(a.0)),
                        RData::AAAA(aaaa) => Some(IpAddr::V6(aaaa.0)),
                        _ => None,
                    }));
                }
                Err(e) => errors.push((e, rtype)),
            }
        }
        if !addrs.is_empty() {
            return Ok(addrs);
        }
        // Report the most telling failure: a missing name, then a real error,
        // then "no records of either type".
        if errors.iter().any(|(e, _)| e.is_nx_domain()) {
            return Err(DnsError::NxDomain {
                name: host,
                rtype: "A/AAAA",
            }
            .into());
        }
        if let Some((e, rtype)) = errors.into_iter().find(|(e, _)| !e.is_no_records_found()) {
            return Err(map_error(&host, rtype, &e).into());
        }
        Err(DnsError::NoRecords {
            name: host,
            rtype: "A/AAAA",
        }
        .into())
    }

    /// The TXT records at `name`, each with its character-strings joined.
    pub async fn lookup_txt(&self, name: &str) -> Result<Vec<Vec<u8>>, ProbeError> {
        let name_str = name.trim_end_matches('.').to_ascii_lowercase();
        let fq = fqdn(&name_str)?;
        let resolver = self.resolver()?;
        let lookup = resolver
            .lookup(fq, RecordType::TXT)
            .await
            .map_err(|e| map_error(&name_str, "TXT", &e))?;
        self.check_proofs(&name_str, "TXT", lookup.answers())?;
        let records: Vec<Vec<u8>> = lookup
            .answers()
            .iter()
            .filter_map(|r| match &r.data {
                RData::TXT(txt) => Some(txt.txt_data.iter().flatten().copied().collect()),
                _ => None,
            })
            .collect();
        if records.is_empty() {
            return Err(DnsError::NoRecords {
                name: name_str,
                rtype: "TXT",
            }
            .into());
        }
        Ok(records)
    }
}

/// One CAA resource record (RFC 8659 §4.1), as received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaaRecord {
    /// The Issuer Critical Flag.
    pub critical: bool,
    /// The property tag, as received (compare case-insensitively).
    pub tag: String,
    /// The property value, raw.
    pub value: Vec<u8>,
}

impl DnsResolver {
    /// The CAA record set at `name` (CNAMEs followed by the resolver):
    /// empty when the name does not exist or has no CAA records. Any other
    /// failure (SERVFAIL, REFUSED, a timeout, a truncated answer that TCP
    /// could not complete) is an error, never an empty set: hickory retries
    /// a truncated UDP answer over TCP itself and reports `Truncated` only
    /// when that failed too.
    pub async fn lookup_caa(&self, name: &str) -> Result<Vec<CaaRecord>, DnsError> {
        let name_str = name.trim_end_matches('.').to_ascii_lowercase();
        if self.localhost && is_localhost(&name_str) {
            // RFC 6761 names answered locally have no CAA.
            return Ok(Vec::new());
        }
        let fq = Name::from_ascii(format!("{name_str}.")).map_err(|_| DnsError::BadName {
            name: name_str.clone(),
        })?;
        let resolver = self.resolver().map_err(|_| DnsError::Failure {
            name: name_str.clone(),
            rtype: "CAA",
            cause: "cannot build the DNS resolver".into(),
        })?;
        match resolver.lookup(fq, RecordType::CAA).await {
            Ok(lookup) => {
                self.check_proofs(&name_str, "CAA", lookup.answers())?;
                Ok(lookup
                    .answers()
                    .iter()
                    .filter_map(|r| match &r.data {
                        RData::CAA(caa) => Some(CaaRecord {
                            critical: caa.issuer_critical,
                            tag: caa.tag.clone(),
                            value: caa.value.clone(),
                        }),
                        _ => None,
                    })
                    .collect())
            }
            Err(e) if e.is_nx_domain() || e.is_no_records_found() => Ok(Vec::new()),
            Err(e) => Err(map_error(&name_str, "CAA", &e)),
        }
    }
}

/// RFC 6761 §6.3: `localhost` and names below it are loopback.
fn is_localhost(host: &str) -> bool {
    host == "localhost" || host.ends_with(".localhost")
}

fn fqdn(host: &str) -> Result<Name, ProbeError> {
    Name::from_ascii(format!("{host}.")).map_err(|_| {
        DnsError::BadName {
            name: host.to_owned(),
        }
        .into()
    })
}

fn map_error(name: &str, rtype: &'static str, e: &NetError) -> DnsError {
    let name = name.to_owned();
    if e.is_nx_domain() {
        DnsError::NxDomain { name, rtype }
    } else if e.is_no_records_found() {
        DnsError::NoRecords { name, rtype }
    } else if matches!(e, NetError::Timeout) {
        DnsError::Timeout { name, rtype }
    } else {
        DnsError::Failure {
            name,
            rtype,
            cause: e.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::address_policy::AddressPolicy;

    #[test]
    fn localhost_names() {
        assert!(is_localhost("localhost"));
        assert!(is_localhost("a.b.localhost"));
        assert!(!is_localhost("notlocalhost"));
        assert!(!is_localhost("localhost.example"));
    }

    #[tokio::test]
    async fn localhost_only_when_private_targets_allowed() {
        // A nameserver on a loopback port nobody listens on: the localhost
        // answer must come without any query.
        let ns: SocketAddr = "127.0.0.1:9".parse().expect("addr");
        let lax = DnsResolver::new(Some(ns), true, Duration::from_millis(200));
        let addrs = lax.lookup_ip("app.localhost").await.expect("loopback");
        assert!(addrs.contains(&IpAddr::V4(Ipv4Addr::LOCALHOST)));
        assert!(addrs.contains(&IpAddr::V6(Ipv6Addr::LOCALHOST)));

        // Without private targets the validator adds nothing, but hickory
        // itself answers localhost names with loopback (RFC 6761), which the
        // address policy then refuses.
        let strict = DnsResolver::new(Some(ns), false, Duration::from_millis(200));
        if let Ok(addrs) = strict.lookup_ip("app.localhost").await {
            assert!(addrs.iter().all(|a| a.is_loopback()), "{addrs:?}");
            assert!(
                AddressPolicy::new(false)
                    .filter("app.localhost", &addrs)
                    .is_err()
            );
        }
    }

    #[tokio::test]
    async fn a_refused_caa_query_is_a_failure_every_time_never_an_empty_set() {
        // RFC 8659 §3: a CAA lookup that fails must stop issuance; a
        // REFUSED answer is a failure, not "no records" (the parent of a
        // name under a server that only answers its own zone).
        let dns = test_kit::dns::DnsServer::builder()
            .zones(&["example.test."])
            .refuse_outside_zones()
            .bind()
            .await
            .expect("DNS server");
        let resolver = DnsResolver::new(Some(dns.addr()), true, Duration::from_secs(2));
        for i in 0..30 {
            let inside = resolver.lookup_caa("a.example.test").await;
            assert!(matches!(&inside, Ok(r) if r.is_empty()), "{i}: {inside:?}");
            let refused = resolver.lookup_caa("test").await;
            assert!(refused.is_err(), "{i}: a refused query read as {refused:?}");
        }
    }

    #[tokio::test]
    async fn every_lookup_asks_the_nameserver_again() {
        // One resolver serves every probe: a changed record must be seen
        // by the very next lookup, and every lookup must reach the server.
        let dns = test_kit::dns::DnsServer::builder()
            .zones(&["example.test."])
            .bind()
            .await
            .expect("DNS server");
        let resolver = DnsResolver::new(Some(dns.addr()), true, Duration::from_secs(2));
        let name = "_acme-challenge.a.example.test";
        for value in ["one", "two", "three"] {
            dns.set_txt(name, &[value]);
            let got = resolver.clone().lookup_txt(name).await.expect("TXT");
            assert_eq!(got, vec![value.as_bytes().to_vec()]);
        }
        assert_eq!(dns.queries(RecordType::TXT), 3);

        let caa = resolver.lookup_caa("a.example.test").await.expect("CAA");
        assert!(caa.is_empty(), "{caa:?}");
        dns.set_caa("a.example.test", &[(0, "issue", "ca.example")]);
        let caa = resolver.lookup_caa("a.example.test").await.expect("CAA");
        assert_eq!(caa.len(), 1, "{caa:?}");
        assert_eq!(caa[0].value, b"ca.example");
    }
}
