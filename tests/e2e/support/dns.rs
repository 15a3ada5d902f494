//! The workspace's shared test DNS server (`test_kit::dns`), which the
//! validator is pointed at through `server.dns_resolver_addr`.
//!
//! [`DnsServer::start`] serves `example.org.` and `akamu.test.`: every name
//! under them has `A 127.0.0.1` unless a test overrides or removes it; TXT
//! records are set at run time for dns-01; other names get NXDOMAIN.
//! [`DnsRecords`] is the handle the control endpoint
//! (`super::dns_control`) publishes through.

pub(crate) use test_kit::dns::{DnsRecords, DnsServer};
