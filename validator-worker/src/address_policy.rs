//! Which addresses the validator may connect to.
//!
//! Unless `allow_private_targets` is set, the validator refuses every address
//! in the IANA special-purpose registries that is not globally reachable:
//! loopback, RFC 1918, CGNAT, link-local, documentation, benchmarking,
//! multicast, ULA and friends. IPv4-mapped (`::ffff:0:0/96`) and NAT64
//! (`64:ff9b::/96`) addresses are judged by the IPv4 address they embed, since
//! that is where a connection to them ends up.
//!
//! An IP identifier in a reserved range is a `rejectedIdentifier`; a name that
//! resolves only to reserved addresses is a `connection` problem.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::error::PolicyError;

/// Reserved IPv4 ranges: (network, prefix length, name). More specific
/// entries come first so the reported name is the most precise one.
const V4_RESERVED: &[(u32, u8, &str)] = &[
    (0xffff_ffff, 32, "limited broadcast"),
    (0x0000_0000, 8, "\"this network\" (RFC 791)"),
    (0x0a00_0000, 8, "private (RFC 1918)"),
    (0x6440_0000, 10, "shared address space (RFC 6598)"),
    (0x7f00_0000, 8, "loopback"),
    (0xa9fe_0000, 16, "link-local"),
    (0xac10_0000, 12, "private (RFC 1918)"),
    (0xc000_0000, 24, "IETF protocol assignments"),
    (0xc000_0200, 24, "documentation (TEST-NET-1)"),
    (0xc058_6300, 24, "6to4 relay anycast"),
    (0xc0a8_0000, 16, "private (RFC 1918)"),
    (0xc612_0000, 15, "benchmarking (RFC 2544)"),
    (0xc633_6400, 24, "documentation (TEST-NET-2)"),
    (0xcb00_7100, 24, "documentation (TEST-NET-3)"),
    (0xe000_0000, 4, "multicast"),
    (0xf000_0000, 4, "reserved (240.0.0.0/4)"),
];

/// Reserved IPv6 ranges: (network, prefix length, name). The mapped and NAT64
/// prefixes are handled before this table.
const V6_RESERVED: &[(u128, u8, &str)] = &[
    (0, 128, "unspecified"),
    (1, 128, "loopback"),
    (0, 96, "IPv4-compatible (deprecated)"),
    (
        0x0064_ff9b_0001_0000_0000_0000_0000_0000,
        48,
        "local-use NAT64 (RFC 8215)",
    ),
    (
        0x0100_0000_0000_0000_0000_0000_0000_0000,
        64,
        "discard-only (RFC 6666)",
    ),
    (
        0x2001_0db8_0000_0000_0000_0000_0000_0000,
        32,
        "documentation",
    ),
    (
        0x2001_0000_0000_0000_0000_0000_0000_0000,
        23,
        "IETF protocol assignments",
    ),
    (0x2002_0000_0000_0000_0000_0000_0000_0000, 16, "6to4"),
    (
        0x3fff_0000_0000_0000_0000_0000_0000_0000,
        20,
        "documentation (RFC 9637)",
    ),
    (
        0x5f00_0000_0000_0000_0000_0000_0000_0000,
        16,
        "segment routing SIDs (RFC 9602)",
    ),
    (
        0xfc00_0000_0000_0000_0000_0000_0000_0000,
        7,
        "unique local (ULA)",
    ),
    (0xfe80_0000_0000_0000_0000_0000_0000_0000, 10, "link-local"),
    (
        0xfec0_0000_0000_0000_0000_0000_0000_0000,
        10,
        "site-local (deprecated)",
    ),
    (0xff00_0000_0000_0000_0000_0000_0000_0000, 8, "multicast"),
];

const V4_MAPPED: (u128, u8) = (0x0000_0000_0000_0000_0000_ffff_0000_0000, 96);
const NAT64_WELL_KNOWN: (u128, u8) = (0x0064_ff9b_0000_0000_0000_0000_0000_0000, 96);

/// The name of the reserved range `addr` falls in, or `None` for a globally
/// reachable address.
pub fn reserved_range(addr: IpAddr) -> Option<&'static str> {
    match addr {
        IpAddr::V4(v4) => reserved_v4(v4),
        IpAddr::V6(v6) => reserved_v6(v6),
    }
}

fn reserved_v4(addr: Ipv4Addr) -> Option<&'static str> {
    let bits = u32::from(addr);
    V4_RESERVED
        .iter()
        .find(|(net, len, _)| prefix_match_v4(bits, *net, *len))
        .map(|(_, _, name)| *name)
}

fn reserved_v6(addr: Ipv6Addr) -> Option<&'static str> {
    let bits = u128::from(addr);
    for (prefix, what) in [(V4_MAPPED, "IPv4-mapped"), (NAT64_WELL_KNOWN, "NAT64")] {
        if prefix_match_v6(bits, prefix.0, prefix.1) {
            // The low 32 bits are the IPv4 address the connection reaches.
            let embedded = Ipv4Addr::from((bits & 0xffff_ffff) as u32);
            return reserved_v4(embedded).map(|_| what);
        }
    }
    V6_RESERVED
        .iter()
        .find(|(net, len, _)| prefix_match_v6(bits, *net, *len))
        .map(|(_, _, name)| *name)
}

fn prefix_match_v4(addr: u32, net: u32, len: u8) -> bool {
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    addr & mask == net & mask
}

fn prefix_match_v6(addr: u128, net: u128, len: u8) -> bool {
    let mask = if len == 0 {
        0
    } else {
        u128::MAX << (128 - len)
    };
    addr & mask == net & mask
}

/// The validator's address policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AddressPolicy {
    allow_private: bool,
}

impl AddressPolicy {
    /// A policy; `allow_private` turns every check off (tests, development).
    pub fn new(allow_private: bool) -> Self {
        Self { allow_private }
    }

    /// Whether reserved addresses are allowed.
    pub fn allows_private(&self) -> bool {
        self.allow_private
    }

    /// Whether `addr` may be probed.
    pub fn permits(&self, addr: IpAddr) -> bool {
        self.allow_private || reserved_range(addr).is_none()
    }

    /// Checks an IP identifier: refused as `rejectedIdentifier` when reserved.
    pub fn check_identifier(&self, addr: IpAddr) -> Result<(), PolicyError> {
        match reserved_range(addr) {
            Some(range) if !self.allow_private => {
                Err(PolicyError::ReservedIdentifier { addr, range })
            }
            _ => Ok(()),
        }
    }

    /// Keeps the addresses of `host` that may be probed; if none is left, the
    /// host resolves only to reserved addresses (a `connection` problem).
    pub fn filter(&self, host: &str, addrs: &[IpAddr]) -> Result<Vec<IpAddr>, PolicyError> {
        let allowed: Vec<IpAddr> = addrs.iter().copied().filter(|a| self.permits(*a)).collect();
        if allowed.is_empty() {
            return Err(PolicyError::OnlyReserved {
                host: host.to_owned(),
                addrs: addrs.to_vec(),
            });
        }
        Ok(allowed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_table() {
        let reserved = [
            "0.0.0.0",
            "0.1.2.3",
            "10.0.0.1",
            "100.64.0.1",
            "100.127.255.254",
            "127.0.0.1",
            "127.255.255.255",
            "169.254.169.254",
            "172.16.0.1",
            "172.31.255.255",
            "192.0.0.9",
            "192.0.2.1",
            "192.88.99.1",
            "192.168.1.1",
            "198.18.0.1",
            "198.19.255.255",
            "198.51.100.7",
            "203.0.113.9",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "::127.0.0.1",
            "::ffff:127.0.0.1",
            "::ffff:10.1.2.3",
            "::ffff:192.168.0.1",
            "64:ff9b::a00:1",
            "64:ff9b:1::1",
            "100::1",
            "2001::1",
            "2001:2::1",
            "2001:db8::1",
            "2002:c000:0201::1",
            "3fff::1",
            "5f00::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "febf::1",
            "fec0::1",
            "ff02::1",
        ];
        for a in reserved {
            let ip: IpAddr = a.parse().expect(a);
            assert!(reserved_range(ip).is_some(), "{a} should be reserved");
        }
        let public = [
            "1.1.1.1",
            "8.8.8.8",
            "100.63.255.255",
            "100.128.0.0",
            "172.15.255.255",
            "172.32.0.0",
            "192.0.1.1",
            "192.169.0.1",
            "198.17.255.255",
            "198.20.0.0",
            "223.255.255.254",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2001:4860:4860::8888",
            "2606:4700::1111",
            "2400:cb00::1",
        ];
        for a in public {
            let ip: IpAddr = a.parse().expect(a);
            assert_eq!(reserved_range(ip), None, "{a} should be public");
        }
    }

    #[test]
    fn range_names_are_specific() {
        let name = |a: &str| reserved_range(a.parse().expect(a));
        assert_eq!(name("127.0.0.1"), Some("loopback"));
        assert_eq!(name("255.255.255.255"), Some("limited broadcast"));
        assert_eq!(name("::1"), Some("loopback"));
        assert_eq!(name("::ffff:127.0.0.1"), Some("IPv4-mapped"));
        assert_eq!(name("2001:db8::1"), Some("documentation"));
        assert_eq!(name("fd00::1"), Some("unique local (ULA)"));
    }

    #[test]
    fn policy_kinds() {
        let strict = AddressPolicy::new(false);
        let lax = AddressPolicy::new(true);
        let lo: IpAddr = "127.0.0.1".parse().expect("ip");
        let public: IpAddr = "8.8.8.8".parse().expect("ip");

        assert!(matches!(
            strict.check_identifier(lo),
            Err(PolicyError::ReservedIdentifier {
                range: "loopback",
                ..
            })
        ));
        assert!(strict.check_identifier(public).is_ok());
        assert!(lax.check_identifier(lo).is_ok());

        assert!(matches!(
            strict.filter("h.example", &[lo]),
            Err(PolicyError::OnlyReserved { .. })
        ));
        assert_eq!(
            strict.filter("h.example", &[lo, public]).expect("one left"),
            vec![public]
        );
        assert_eq!(lax.filter("h.example", &[lo]).expect("allowed"), vec![lo]);
    }
}
