//! Identifiers in new-order requests (RFC 8555 §7.1.3, §7.4; RFC 8738).

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use serde::Deserialize;
use shared_proto::identifier::{
    is_below, is_onion, is_public_suffix, is_valid_dns_name, onion_v3_key,
};
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
    /// RFC 9444 §4.3: in a new-order request, an ancestor domain of
    /// `value` whose authorization (covering its subdomains) stands for
    /// this identifier's.
    #[serde(default, rename = "ancestorDomain")]
    pub ancestor_domain: Option<String>,
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
            if is_onion(&id.value) && onion_v3_key(&id.value).is_none() {
                return Err(Error::RejectedIdentifier(format!(
                    "{:?} is not a version 3 .onion address (RFC 9799 §2: 56 base32 characters with a valid checksum; version 2 addresses are refused)",
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

/// RFC 9444 §4.3: for each new-order identifier that names an
/// `ancestorDomain`, the ancestor (a DNS identifier) whose authorization
/// covers it. `allowed` is `[server] allow_subdomain_auth`. The ancestor
/// must be a valid DNS name strictly above the identifier on label
/// boundaries and not a public suffix; an identifier named twice with two
/// different ancestors is malformed.
pub fn ancestors(
    wire: &[WireIdentifier],
    allowed: bool,
) -> Result<BTreeMap<Identifier, Identifier>, Error> {
    let mut out = BTreeMap::new();
    for w in wire {
        let Some(text) = &w.ancestor_domain else {
            continue;
        };
        let id = parse(w)?;
        let ancestor = ancestor_of(&id, text, allowed)?;
        if let Some(other) = out.insert(id.clone(), ancestor.clone())
            && other != ancestor
        {
            return Err(Error::Malformed(format!(
                "{} is ordered twice with different ancestorDomain values",
                id.value
            )));
        }
    }
    Ok(out)
}

/// Checks one `ancestorDomain` (see [`ancestors`]).
fn ancestor_of(id: &Identifier, text: &str, allowed: bool) -> Result<Identifier, Error> {
    if id.kind != IdentifierKind::Dns {
        return Err(Error::Malformed(format!(
            "ancestorDomain applies to dns identifiers only, not to {}",
            id.value
        )));
    }
    let ancestor = Identifier::dns(text);
    if ancestor.is_wildcard() || !is_valid_dns_name(&ancestor.value) {
        return Err(Error::Malformed(format!(
            "ancestorDomain {text:?} is not a DNS name without a wildcard label"
        )));
    }
    if !is_below(&id.value, &ancestor.value) {
        return Err(Error::Malformed(format!(
            "ancestorDomain {:?} is not an ancestor of {}",
            ancestor.value, id.value
        )));
    }
    subdomain_root(&ancestor, allowed, "ancestorDomain")?;
    Ok(ancestor)
}

/// Whether `root` may be authorized for the names below it (RFC 9444),
/// asked for by request member `member`: the server must offer it
/// (`allowed`, `[server] allow_subdomain_auth`), `root` must be a DNS name
/// without a wildcard label that is not a `.onion` name (RFC 9799 allows
/// no DNS-based method) — `malformed` otherwise — and not a public suffix
/// (RFC 9444 §8: `com`, `co.uk`, `github.io`), `rejectedIdentifier`.
pub fn subdomain_root(root: &Identifier, allowed: bool, member: &str) -> Result<(), Error> {
    if !allowed {
        return Err(Error::Malformed(format!(
            "this server does not offer subdomain authorization (RFC 9444): {member} is refused"
        )));
    }
    if root.kind != IdentifierKind::Dns || root.is_wildcard() || is_onion(&root.value) {
        return Err(Error::Malformed(format!(
            "{member} applies to DNS names without a wildcard label other than .onion names, not to {}",
            root.value
        )));
    }
    if is_public_suffix(&root.value) {
        return Err(Error::RejectedIdentifier(format!(
            "{} is a public suffix: its subdomains belong to different owners, so no authorization covers them",
            root.value
        )));
    }
    Ok(())
}

fn too_many(max: usize) -> Error {
    Error::Malformed(format!(
        "an order may carry at most {max} identifiers (distinct names)"
    ))
}

/// The optional challenge types the operator turned on.
#[derive(Clone, Copy, Debug, Default)]
pub struct Offers {
    /// `[server] dns_account_01_enabled`.
    pub dns_account_01: bool,
    /// The validator does dns-persist-01 (it has an issuer domain).
    pub dns_persist_01: bool,
    /// The validator reaches `.onion` names through Tor (RFC 9799 §4).
    pub tor: bool,
}

/// The challenge types offered for an identifier: wildcards only DNS
/// changes (dns-01, RFC 8555 §7.1.3; dns-account-01 when offered), IP
/// addresses never a DNS method (RFC 8738 §7), and an authorization that
/// covers subdomains (RFC 9444) only DNS changes: the Baseline
/// Requirements let no other method we offer (§3.2.2.4.19, .20) prove
/// control of names below the one validated.
pub fn offered_challenges(id: &Identifier, subdomains: bool, offers: Offers) -> Vec<ChallengeType> {
    // RFC 9799 §4: never a DNS method for a hidden service; http-01 and
    // tls-alpn-01 (not for a wildcard) only when the validator reaches
    // Tor.
    if id.kind == IdentifierKind::Dns && is_onion(&id.value) {
        let mut out = vec![ChallengeType::OnionCsr01];
        if offers.tor && !id.is_wildcard() && !subdomains {
            out.extend([ChallengeType::Http01, ChallengeType::TlsAlpn01]);
        }
        return out;
    }
    let mut out = match id.kind {
        IdentifierKind::Ip => return vec![ChallengeType::Http01, ChallengeType::TlsAlpn01],
        IdentifierKind::Dns if id.is_wildcard() || subdomains => vec![ChallengeType::Dns01],
        IdentifierKind::Dns => vec![
            ChallengeType::Http01,
            ChallengeType::Dns01,
            ChallengeType::TlsAlpn01,
        ],
    };
    if offers.dns_account_01 {
        out.push(ChallengeType::DnsAccount01);
    }
    // A standing record proves control of the name it sits at (and, with
    // `policy=wildcard`, of its wildcard), not of names below it.
    if offers.dns_persist_01 && !subdomains {
        out.push(ChallengeType::DnsPersist01);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(kind: &str, value: &str) -> WireIdentifier {
        WireIdentifier {
            kind: kind.into(),
            value: value.into(),
            ancestor_domain: None,
        }
    }

    fn below(value: &str, ancestor: &str) -> WireIdentifier {
        WireIdentifier {
            ancestor_domain: Some(ancestor.into()),
            ..w("dns", value)
        }
    }

    #[test]
    fn ancestor_domains() {
        let ok = ancestors(
            &[
                below("A.example.org", "Example.org."),
                below("*.b.example.org", "example.org"),
                w("dns", "other.example.net"),
            ],
            true,
        )
        .expect("ok");
        assert_eq!(ok.len(), 2);
        assert_eq!(
            ok.get(&Identifier::dns("a.example.org")),
            Some(&Identifier::dns("example.org"))
        );
        let refused = |wire: &[WireIdentifier], allowed| ancestors(wire, allowed).err();
        assert!(matches!(
            refused(&[below("a.example.org", "example.org")], false),
            Some(Error::Malformed(_))
        ));
        for (value, ancestor) in [
            ("example.org", "example.org"),
            ("a.badexample.org", "example.org"),
            ("a.example.org", "*.example.org"),
            ("a.example.org", "exa mple.org"),
        ] {
            assert!(
                matches!(
                    refused(&[below(value, ancestor)], true),
                    Some(Error::Malformed(_))
                ),
                "{value} below {ancestor}"
            );
        }
        assert!(matches!(
            refused(&[below("example.co.uk", "co.uk")], true),
            Some(Error::RejectedIdentifier(_))
        ));
        let ip = WireIdentifier {
            ancestor_domain: Some("example.org".into()),
            ..w("ip", "192.0.2.1")
        };
        assert!(matches!(refused(&[ip], true), Some(Error::Malformed(_))));
        assert!(matches!(
            refused(
                &[
                    below("a.b.example.org", "example.org"),
                    below("a.b.example.org", "b.example.org")
                ],
                true
            ),
            Some(Error::Malformed(_))
        ));
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
        ] {
            let id = parse(&w("dns", onion)).expect("a v3 onion name");
            assert_eq!(
                offered_challenges(&id, false, Offers::default()),
                [ChallengeType::OnionCsr01]
            );
            // Through Tor, http-01 and tls-alpn-01 too, not for a wildcard.
            let tor = Offers {
                tor: true,
                dns_persist_01: true,
                dns_account_01: true,
            };
            let expected: &[ChallengeType] = if id.is_wildcard() {
                &[ChallengeType::OnionCsr01]
            } else {
                &[
                    ChallengeType::OnionCsr01,
                    ChallengeType::Http01,
                    ChallengeType::TlsAlpn01,
                ]
            };
            assert_eq!(offered_challenges(&id, false, tor), expected);
        }
        for bad in [
            "www.duskgytldkxiuqc6.ONION",
            "pg6mmjiyjmcrsslvykfwnntlaru7p5svn6y2ymmju6nubxndf4pscrya.onion",
        ] {
            assert!(
                matches!(parse(&w("dns", bad)), Err(Error::RejectedIdentifier(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn challenge_offers() {
        let none = Offers::default();
        let account = Offers {
            dns_account_01: true,
            ..Offers::default()
        };
        let persist = Offers {
            dns_persist_01: true,
            ..Offers::default()
        };
        assert_eq!(
            offered_challenges(&Identifier::dns("*.example.org"), false, persist),
            [ChallengeType::Dns01, ChallengeType::DnsPersist01]
        );
        assert_eq!(
            offered_challenges(&Identifier::dns("example.org"), true, persist),
            [ChallengeType::Dns01]
        );
        assert!(
            !offered_challenges(
                &Identifier::ip("192.0.2.1".parse().expect("ip")),
                false,
                persist
            )
            .contains(&ChallengeType::DnsPersist01)
        );
        assert_eq!(
            offered_challenges(&Identifier::dns("*.example.org"), false, none),
            [ChallengeType::Dns01]
        );
        assert_eq!(
            offered_challenges(&Identifier::dns("*.example.org"), false, account),
            [ChallengeType::Dns01, ChallengeType::DnsAccount01]
        );
        let ip = Identifier::ip("192.0.2.1".parse().expect("ip"));
        for offers in [none, account] {
            assert!(
                offered_challenges(&ip, false, offers)
                    .iter()
                    .all(|c| !c.is_dns_change())
            );
        }
        assert_eq!(
            offered_challenges(&Identifier::dns("example.org"), false, none).len(),
            3
        );
        assert_eq!(
            offered_challenges(&Identifier::dns("example.org"), false, account).len(),
            4
        );
        assert_eq!(
            offered_challenges(&Identifier::dns("example.org"), true, none),
            [ChallengeType::Dns01]
        );
        assert_eq!(
            offered_challenges(&Identifier::dns("example.org"), true, account),
            [ChallengeType::Dns01, ChallengeType::DnsAccount01]
        );
    }
}
