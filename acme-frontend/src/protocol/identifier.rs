//! Identifiers in new-order requests (RFC 8555 §7.1.3, §7.4; RFC 8738).

use std::collections::BTreeSet;
use std::net::IpAddr;

use serde::Deserialize;
use shared_proto::identifier::{is_onion, is_valid_dns_name};
use shared_proto::validator::ChallengeType;
use shared_proto::{Identifier, IdentifierKind};

use crate::error::Error;

/// Most identifiers one order may carry: `[server]
/// max_identifiers_per_order`'s ceiling and default (Boulder's `maxNames`;
/// the signer refuses more).
pub const MAX_IDENTIFIERS: usize = 100;

/// An identifier as it appears in a request body.
#[derive(Clone, Debug, Deserialize)]
pub struct WireIdentifier {
    /// `dns` or `ip`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The name or address.
    pub value: String,
}

/// Checks and normalises one identifier.
pub fn parse(wire: &WireIdentifier) -> Result<Identifier, Error> {
    match IdentifierKind::parse(&wire.kind) {
        Some(IdentifierKind::Dns) => {
            let id = Identifier::dns(&wire.value);
            if !is_valid_dns_name(&id.value) {
                return Err(Error::RejectedIdentifier(format!(
                    "{:?} is not a valid DNS name for a certificate",
                    wire.value
                )));
            }
            if is_onion(&id.value) {
                return Err(Error::RejectedIdentifier(format!(
                    "{:?} is a .onion name: RFC 9799 needs onion-csr-01 or a probe over Tor, which this CA does not offer, and forbids dns-01",
                    wire.value
                )));
            }
            Ok(id)
        }
        Some(IdentifierKind::Ip) => {
            let ip: IpAddr = wire
                .value
                .parse()
                .map_err(|_| Error::Malformed(format!("{:?} is not an IP address", wire.value)))?;
            Ok(Identifier::ip(ip))
        }
        None => Err(Error::UnsupportedIdentifier(format!(
            "identifier type {:?} is not supported (dns, ip)",
            wire.kind
        ))),
    }
}

/// Checks and normalises the identifiers of a new order: at least one, at
/// most `max` (`[server] max_identifiers_per_order`) after duplicates are
/// removed, sorted. Too many is `malformed`, as in Boulder: the request is
/// wrong, not any one name.
pub fn parse_all(wire: &[WireIdentifier], max: usize) -> Result<Vec<Identifier>, Error> {
    if wire.is_empty() {
        return Err(Error::Malformed(
            "an order needs at least one identifier".into(),
        ));
    }
    let set: BTreeSet<Identifier> = wire.iter().map(parse).collect::<Result<_, _>>()?;
    if set.len() > max {
        return Err(too_many(max));
    }
    Ok(set.into_iter().collect())
}

fn too_many(max: usize) -> Error {
    Error::Malformed(format!(
        "an order may carry at most {max} identifiers (distinct names)"
    ))
}

/// The challenge types offered for an identifier: wildcards only dns-01
/// (RFC 8555 §7.1.3), IP addresses never dns-01 (RFC 8738 §7).
pub fn offered_challenges(id: &Identifier) -> &'static [ChallengeType] {
    match id.kind {
        IdentifierKind::Ip => &[ChallengeType::Http01, ChallengeType::TlsAlpn01],
        IdentifierKind::Dns if id.is_wildcard() => &[ChallengeType::Dns01],
        IdentifierKind::Dns => &[
            ChallengeType::Http01,
            ChallengeType::Dns01,
            ChallengeType::TlsAlpn01,
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(kind: &str, value: &str) -> WireIdentifier {
        WireIdentifier {
            kind: kind.into(),
            value: value.into(),
        }
    }

    #[test]
    fn normalises_and_dedups() {
        let ids = parse_all(
            &[
                w("dns", "B.example.org"),
                w("dns", "b.example.org."),
                w("ip", "192.0.2.1"),
            ],
            MAX_IDENTIFIERS,
        )
        .expect("ok");
        assert_eq!(ids.len(), 2);
        assert_eq!(ids[0], Identifier::dns("b.example.org"));
    }

    #[test]
    fn refusals_have_the_right_type() {
        assert!(matches!(
            parse(&w("email", "a@b.c")),
            Err(Error::UnsupportedIdentifier(_))
        ));
        assert!(matches!(
            parse(&w("dns", "bad_name.example")),
            Err(Error::RejectedIdentifier(_))
        ));
        assert!(matches!(
            parse(&w("ip", "300.1.1.1")),
            Err(Error::Malformed(_))
        ));
        assert!(matches!(parse_all(&[], 100), Err(Error::Malformed(_))));
        let three = [
            w("dns", "a.example.org"),
            w("dns", "b.example.org"),
            w("dns", "c.example.org"),
        ];
        assert!(matches!(parse_all(&three, 2), Err(Error::Malformed(_))));
        assert_eq!(parse_all(&three, 3).expect("three").len(), 3);
        // Duplicates count once.
        let dup = [w("dns", "a.example.org"), w("dns", "A.example.org.")];
        assert_eq!(parse_all(&dup, 1).expect("one name").len(), 1);
        // Name length: 253 octets in all, 63 per label.
        let label = "a".repeat(63);
        let ok = format!("{label}.{label}.{label}.{}.org", "b".repeat(57));
        assert_eq!(ok.len(), 253);
        assert!(parse(&w("dns", &ok)).is_ok());
        assert!(matches!(
            parse(&w("dns", &format!("c{ok}"))),
            Err(Error::RejectedIdentifier(_))
        ));
        assert!(matches!(
            parse(&w("dns", &format!("{}.example.org", "a".repeat(64)))),
            Err(Error::RejectedIdentifier(_))
        ));
        for onion in [
            "pg6mmjiyjmcrsslvykfwnntlaru7p5svn6y2ymmju6nubxndf4pscryd.onion",
            "*.pg6mmjiyjmcrsslvykfwnntlaru7p5svn6y2ymmju6nubxndf4pscryd.onion",
            "www.duskgytldkxiuqc6.ONION",
        ] {
            assert!(
                matches!(parse(&w("dns", onion)), Err(Error::RejectedIdentifier(_))),
                "{onion}"
            );
        }
    }

    #[test]
    fn challenge_offers() {
        assert_eq!(
            offered_challenges(&Identifier::dns("*.example.org")),
            &[ChallengeType::Dns01]
        );
        let ip = Identifier::ip("192.0.2.1".parse().expect("ip"));
        assert!(!offered_challenges(&ip).contains(&ChallengeType::Dns01));
        assert_eq!(offered_challenges(&Identifier::dns("example.org")).len(), 3);
    }
}
