//! Which address a request comes from: the TCP peer, or, when the peer is
//! a trusted reverse proxy (`[server] trusted_proxies`), the address that
//! proxy saw, from `X-Forwarded-For`.
//!
//! Each proxy appends the address it received the request from, so the
//! list reads left (client) to right (the last proxy's peer). Only entries
//! added by trusted proxies can be believed: walking from the right, the
//! first entry that is not itself a trusted proxy is the client. Anything
//! to its left was written by the client and is ignored.

use std::net::IpAddr;

use http::HeaderMap;
use ipnet::IpNet;

/// The client address of a request from `peer` with `headers`.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let peer = peer.to_canonical();
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    // Several headers count as one list, in order (RFC 9110 §5.3).
    let entries: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    let mut client = peer;
    for entry in entries.iter().rev() {
        match parse_entry(entry) {
            Some(ip) => {
                client = ip;
                if !is_trusted(&ip) {
                    return ip;
                }
            }
            // Garbage from a trusted proxy: the last address believed is
            // the best there is.
            None => return client,
        }
    }
    client
}

/// An `X-Forwarded-For` entry: an address, possibly with a port
/// (`192.0.2.1:4711`, `[2001:db8::1]:4711`).
fn parse_entry(entry: &str) -> Option<IpAddr> {
    if let Ok(ip) = entry.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    if let Ok(sa) = entry.parse::<std::net::SocketAddr>() {
        return Some(sa.ip().to_canonical());
    }
    entry
        .strip_prefix('[')
        .and_then(|e| e.strip_suffix(']'))
        .and_then(|e| e.parse::<IpAddr>().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    fn xff(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("x-forwarded-for", v.parse().expect("header value"));
        }
        h
    }

    #[test]
    fn the_peer_is_the_client_unless_it_is_a_trusted_proxy() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().expect("net")];
        let forged = xff(&["203.0.113.9"]);
        assert_eq!(
            client_ip(ip("192.0.2.1"), &forged, &trusted),
            ip("192.0.2.1")
        );
        assert_eq!(client_ip(ip("192.0.2.1"), &forged, &[]), ip("192.0.2.1"));
        assert_eq!(
            client_ip(ip("10.0.0.5"), &forged, &trusted),
            ip("203.0.113.9")
        );
        assert_eq!(
            client_ip(ip("10.0.0.5"), &HeaderMap::new(), &trusted),
            ip("10.0.0.5"),
            "a trusted proxy that adds nothing is the client"
        );
    }

    #[test]
    fn the_rightmost_untrusted_entry_wins_over_what_the_client_wrote() {
        let trusted: Vec<IpNet> = vec![
            "10.0.0.0/8".parse().expect("net"),
            "2001:db8:ffff::/48".parse().expect("net"),
        ];
        // The client forged 198.51.100.1; proxies 10.1.1.1 and then the
        // peer 10.0.0.5 added the rest.
        let h = xff(&["198.51.100.1, 203.0.113.9", "10.1.1.1"]);
        assert_eq!(client_ip(ip("10.0.0.5"), &h, &trusted), ip("203.0.113.9"));
        let h = xff(&["[2001:db8::7]:4711, 2001:db8:ffff::1"]);
        assert_eq!(
            client_ip(ip("::ffff:10.0.0.5"), &h, &trusted),
            ip("2001:db8::7")
        );
        let h = xff(&["203.0.113.9:80"]);
        assert_eq!(client_ip(ip("10.0.0.5"), &h, &trusted), ip("203.0.113.9"));
        // Only trusted entries: the leftmost of them.
        let h = xff(&["10.2.2.2, 10.1.1.1"]);
        assert_eq!(client_ip(ip("10.0.0.5"), &h, &trusted), ip("10.2.2.2"));
        // Garbage: the last address believed.
        let h = xff(&["203.0.113.9, unknown, 10.1.1.1"]);
        assert_eq!(client_ip(ip("10.0.0.5"), &h, &trusted), ip("10.1.1.1"));
    }
}
