//! CAA (RFC 8659) with the ACME extensions `accounturi` and
//! `validationmethods` (RFC 8657).
//!
//! [`check`] finds the relevant record set by climbing the tree (RFC 8659
//! §3: the name itself, then each parent down to the top-level domain, the
//! first non-empty set wins) and [`evaluate`] decides on it: an unknown tag
//! marked critical refuses; without `issue` (or, for a wildcard,
//! `issuewild`) properties nothing is restricted; otherwise one of them
//! must name one of the CA's `caa_identities` with parameters that admit
//! the account and the challenge type. A lookup that fails (SERVFAIL,
//! REFUSED, timeout, a truncated answer TCP could not complete) refuses:
//! an unknown record set is never taken for an empty one.

use std::fmt;

use shared_proto::statement::CaaCheck;
use shared_proto::validator::ChallengeType;
use shared_proto::{Identifier, IdentifierKind};

use crate::error::{DnsError, ProbeError, RequestError};
use crate::probe::Prober;
use crate::resolver::CaaRecord;

/// Property tags this validator understands (RFC 8659 §4.2–§4.4) or knows
/// to carry no restriction for it (the IANA registry's `contactemail`,
/// `contactphone`, `issuemail`, `issuevmc`): a critical one of these does
/// not refuse.
const KNOWN_TAGS: &[&str] = &[
    "issue",
    "issuewild",
    "iodef",
    "contactemail",
    "contactphone",
    "issuemail",
    "issuevmc",
];

/// Checks CAA for a validation of `identifier` by `account_uri` with
/// `method`. IP identifiers are exempt; a validator without
/// `caa_identities` checks nothing (and says so in its statement).
pub async fn check(
    prober: &Prober,
    identifier: &Identifier,
    account_uri: &str,
    method: ChallengeType,
) -> Result<CaaCheck, ProbeError> {
    // IP addresses have no CAA; a .onion name's CAA lives in its hidden
    // service descriptor, which this validator cannot reach (RFC 9799).
    if identifier.kind == IdentifierKind::Ip
        || shared_proto::identifier::is_onion(&identifier.value)
    {
        return Ok(CaaCheck::NotApplicable);
    }
    let identities = &prober.config.caa_identities;
    if identities.is_empty() {
        return Ok(CaaCheck::NotConfigured);
    }
    if !shared_proto::identifier::is_valid_dns_name(&identifier.value) {
        return Err(RequestError::BadIdentifier(identifier.value.clone()).into());
    }
    let base = identifier.base_name().to_ascii_lowercase();
    let labels: Vec<&str> = base.split('.').collect();
    for i in 0..labels.len() {
        let name = labels[i..].join(".");
        let records =
            prober
                .resolver
                .lookup_caa(&name)
                .await
                .map_err(|source| CaaError::Lookup {
                    name: name.clone(),
                    source,
                })?;
        if records.is_empty() {
            continue;
        }
        evaluate(
            &name,
            &records,
            &Request {
                identities,
                wildcard: identifier.is_wildcard(),
                account_uri,
                method,
            },
        )
        .map_err(|e| CaaError::Forbidden {
            identifier: identifier.value.clone(),
            refusal: e,
        })?;
        break;
    }
    Ok(CaaCheck::Checked {
        at: crate::now_unix(),
    })
}

/// CAA refusals (see [`crate::caa`]).
#[derive(Debug, thiserror::Error)]
pub enum CaaError {
    /// The CAA record set at a name could not be looked up: issuance is
    /// refused rather than the set taken for empty (RFC 8659 §3).
    #[error("CAA record lookup for {name} failed, so issuance is refused: {source}")]
    Lookup {
        /// The name queried.
        name: String,
        /// The DNS failure.
        source: DnsError,
    },
    /// The relevant record set does not permit issuance.
    #[error("CAA forbids issuance for {identifier}: {refusal}")]
    Forbidden {
        /// The identifier value.
        identifier: String,
        /// Which record refuses, and why.
        refusal: Refusal,
    },
}

/// What a record set is asked: may this CA issue for this account and
/// method?
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    /// The CA's domain names (`caa_identities`).
    pub identities: &'a [String],
    /// Whether the certificate name is a wildcard (`issuewild` first).
    pub wildcard: bool,
    /// The ACME account URL (RFC 8657 `accounturi`).
    pub account_uri: &'a str,
    /// The challenge type used (RFC 8657 `validationmethods`).
    pub method: ChallengeType,
}

/// Why a relevant record set refuses issuance; the text names the record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// Where the record set was found.
    pub name: String,
    /// What refuses.
    pub reason: Reason,
}

/// The reasons a record set refuses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reason {
    /// A critical property with a tag this CA does not understand.
    CriticalUnknown(String),
    /// No `issue`/`issuewild` property names this CA; the properties seen.
    NotNamed {
        /// `issue` or `issuewild`.
        tag: &'static str,
        /// The properties, in presentation format.
        records: Vec<String>,
    },
    /// A property names this CA, but its `accounturi` is another account.
    OtherAccount {
        /// The property, in presentation format.
        record: String,
    },
    /// A property names this CA, but its `validationmethods` excludes the
    /// challenge type used.
    MethodExcluded {
        /// The property, in presentation format.
        record: String,
        /// The challenge type used.
        method: ChallengeType,
    },
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = &self.name;
        match &self.reason {
            Reason::CriticalUnknown(tag) => write!(
                f,
                "the CAA record set at {name} has a critical property with the unknown tag {tag:?}"
            ),
            Reason::NotNamed { tag, records } => write!(
                f,
                "no CAA {tag} record at {name} names this CA (records: {})",
                records.join(", ")
            ),
            Reason::OtherAccount { record } => write!(
                f,
                "the CAA record {record} at {name} authorizes another ACME account (RFC 8657 accounturi)"
            ),
            Reason::MethodExcluded { record, method } => write!(
                f,
                "the CAA record {record} at {name} does not allow the {} validation method (RFC 8657 validationmethods)",
                method.as_str()
            ),
        }
    }
}

/// Decides on the relevant, non-empty record set `records` found at
/// `name` (RFC 8659 §4, RFC 8657 §3–§4).
pub fn evaluate(name: &str, records: &[CaaRecord], request: &Request<'_>) -> Result<(), Refusal> {
    let refuse = |reason| Refusal {
        name: name.to_owned(),
        reason,
    };
    if let Some(r) = records
        .iter()
        .find(|r| r.critical && !KNOWN_TAGS.contains(&r.tag.to_ascii_lowercase().as_str()))
    {
        return Err(refuse(Reason::CriticalUnknown(r.tag.clone())));
    }
    // RFC 8659 §4.3: for a wildcard, issuewild properties take precedence;
    // without any, the issue properties apply.
    let (tag, relevant) = match (request.wildcard, with_tag(records, "issuewild")) {
        (true, wild) if !wild.is_empty() => ("issuewild", wild),
        _ => ("issue", with_tag(records, "issue")),
    };
    if relevant.is_empty() {
        // RFC 8659 §4.1: only iodef or unrestricting properties.
        return Ok(());
    }
    let mut named_but_refused = None;
    for record in &relevant {
        let Some(value) = IssueValue::parse(&record.value) else {
            continue;
        };
        let Some(domain) = &value.domain else {
            continue;
        };
        if !request
            .identities
            .iter()
            .any(|id| id.eq_ignore_ascii_case(domain))
        {
            continue;
        }
        match value.admits(request.account_uri, request.method) {
            Ok(()) => return Ok(()),
            Err(why) => {
                let record = present(record);
                named_but_refused = Some(match why {
                    Param::AccountUri => Reason::OtherAccount { record },
                    Param::ValidationMethods => Reason::MethodExcluded {
                        record,
                        method: request.method,
                    },
                });
            }
        }
    }
    Err(refuse(named_but_refused.unwrap_or_else(|| {
        Reason::NotNamed {
            tag,
            records: relevant.iter().map(|r| present(r)).collect(),
        }
    })))
}

/// The records of `records` with `tag` (tags compare case-insensitively).
fn with_tag<'a>(records: &'a [CaaRecord], tag: &str) -> Vec<&'a CaaRecord> {
    records
        .iter()
        .filter(|r| r.tag.eq_ignore_ascii_case(tag))
        .collect()
}

/// A record in presentation format, `0 issue "value"` (value sanitised).
fn present(r: &CaaRecord) -> String {
    format!(
        "{} {} \"{}\"",
        if r.critical { 128 } else { 0 },
        r.tag.to_ascii_lowercase(),
        crate::error::sanitize_excerpt(&r.value, 200)
    )
}

/// Which RFC 8657 parameter refused.
enum Param {
    AccountUri,
    ValidationMethods,
}

/// An `issue` or `issuewild` property value (RFC 8659 §4.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IssueValue {
    /// The issuer domain name; `None` for `;` (no CA may issue).
    pub domain: Option<String>,
    /// The parameters, tags lower-cased, in order.
    pub parameters: Vec<(String, String)>,
}

impl IssueValue {
    /// Parses a value; `None` when it does not follow the grammar (such a
    /// property authorizes no one).
    pub fn parse(raw: &[u8]) -> Option<Self> {
        let text = std::str::from_utf8(raw).ok()?;
        let (head, tail) = match text.split_once(';') {
            Some((h, t)) => (h, Some(t)),
            None => (text, None),
        };
        let head = head.trim_matches(is_wsp);
        let domain = if head.is_empty() {
            None
        } else if is_issuer_domain_name(head) {
            Some(head.to_ascii_lowercase())
        } else {
            return None;
        };
        let mut parameters = Vec::new();
        if let Some(tail) = tail {
            let tail = tail.trim_matches(is_wsp);
            if !tail.is_empty() {
                for parameter in tail.split(';') {
                    let (tag, value) = parameter.split_once('=')?;
                    let tag = tag.trim_matches(is_wsp);
                    let value = value.trim_matches(is_wsp);
                    if !is_label(tag) || !value.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
                        return None;
                    }
                    parameters.push((tag.to_ascii_lowercase(), value.to_owned()));
                }
            }
        }
        Some(Self { domain, parameters })
    }

    /// RFC 8657: `accounturi` must be the account's URL, and
    /// `validationmethods` must list the method. Other parameters are
    /// ignored.
    fn admits(&self, account_uri: &str, method: ChallengeType) -> Result<(), Param> {
        for (tag, value) in &self.parameters {
            match tag.as_str() {
                "accounturi" if value != account_uri => return Err(Param::AccountUri),
                "validationmethods" if !value.split(',').any(|m| m.trim() == method.as_str()) => {
                    return Err(Param::ValidationMethods);
                }
                _ => {}
            }
        }
        Ok(())
    }
}

fn is_wsp(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// RFC 8659 §4.2 `label`: letters and digits, inner hyphens.
fn is_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
}

/// RFC 8659 §4.2 `issuer-domain-name`: labels joined by dots.
pub fn is_issuer_domain_name(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(|l| l.len() <= 63 && is_label(l))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ACCOUNT: &str = "https://ca.example/acme/account/1";

    fn rr(critical: bool, tag: &str, value: &str) -> CaaRecord {
        CaaRecord {
            critical,
            tag: tag.into(),
            value: value.as_bytes().to_vec(),
        }
    }

    fn ask(records: &[CaaRecord], wildcard: bool, method: ChallengeType) -> Result<(), Refusal> {
        let identities = vec!["ca.example".to_owned()];
        evaluate(
            "example.org",
            records,
            &Request {
                identities: &identities,
                wildcard,
                account_uri: ACCOUNT,
                method,
            },
        )
    }

    fn reason(r: Result<(), Refusal>) -> Reason {
        r.expect_err("refused").reason
    }

    const HTTP: ChallengeType = ChallengeType::Http01;
    const DNS: ChallengeType = ChallengeType::Dns01;

    #[test]
    fn values_parse_per_the_grammar() {
        let v =
            IssueValue::parse(b" ca.example ; accounturi = https://x/1 ;validationmethods=dns-01")
                .expect("parse");
        assert_eq!(v.domain.as_deref(), Some("ca.example"));
        assert_eq!(
            v.parameters,
            [
                ("accounturi".to_owned(), "https://x/1".to_owned()),
                ("validationmethods".to_owned(), "dns-01".to_owned())
            ]
        );
        assert_eq!(IssueValue::parse(b";").expect("parse").domain, None);
        assert_eq!(IssueValue::parse(b"").expect("parse").domain, None);
        assert_eq!(
            IssueValue::parse(b"CA.Example")
                .expect("parse")
                .domain
                .as_deref(),
            Some("ca.example")
        );
        for bad in [
            &b"ca example"[..],
            b"ca.example; x",
            b"-ca.example",
            b"ca.example; a=b c",
            b"\xff",
        ] {
            assert_eq!(IssueValue::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn issue_names_this_ca_or_not() {
        assert!(ask(&[rr(false, "issue", "ca.example")], false, HTTP).is_ok());
        assert!(ask(&[rr(false, "ISSUE", "CA.EXAMPLE")], false, HTTP).is_ok());
        assert!(matches!(
            reason(ask(&[rr(false, "issue", "other.example")], false, HTTP)),
            Reason::NotNamed { tag: "issue", .. }
        ));
        assert!(
            ask(&[rr(false, "issue", ";")], false, HTTP).is_err(),
            "no CA"
        );
        assert!(
            ask(
                &[
                    rr(false, "issue", "other.example"),
                    rr(false, "issue", "ca.example")
                ],
                false,
                HTTP
            )
            .is_ok(),
            "any one record may authorize"
        );
        // Only iodef: nothing restricted.
        assert!(ask(&[rr(false, "iodef", "mailto:x@example.org")], false, HTTP).is_ok());
        // A malformed value authorizes no one.
        assert!(ask(&[rr(false, "issue", "ca.example; junk")], false, HTTP).is_err());
    }

    #[test]
    fn issuewild_takes_precedence_for_wildcards() {
        let only_wild = [
            rr(false, "issue", "other.example"),
            rr(false, "issuewild", "ca.example"),
        ];
        assert!(ask(&only_wild, true, DNS).is_ok());
        assert!(
            ask(&only_wild, false, HTTP).is_err(),
            "issuewild is not for plain names"
        );
        let issue_only = [rr(false, "issue", "ca.example")];
        assert!(
            ask(&issue_only, true, DNS).is_ok(),
            "without issuewild, issue applies"
        );
        let wild_forbids = [
            rr(false, "issue", "ca.example"),
            rr(false, "issuewild", ";"),
        ];
        assert!(matches!(
            reason(ask(&wild_forbids, true, DNS)),
            Reason::NotNamed {
                tag: "issuewild",
                ..
            }
        ));
        assert!(ask(&wild_forbids, false, DNS).is_ok());
    }

    #[test]
    fn critical_unknown_tags_refuse() {
        let set = [rr(false, "issue", "ca.example"), rr(true, "tbs", "x")];
        assert_eq!(
            reason(ask(&set, false, HTTP)),
            Reason::CriticalUnknown("tbs".into())
        );
        let set = [rr(false, "issue", "ca.example"), rr(false, "tbs", "x")];
        assert!(ask(&set, false, HTTP).is_ok(), "not critical: ignored");
        let set = [
            rr(false, "issue", "ca.example"),
            rr(true, "iodef", "mailto:a@b"),
        ];
        assert!(ask(&set, false, HTTP).is_ok(), "critical but understood");
    }

    #[test]
    fn rfc8657_parameters() {
        let mine = format!("ca.example; accounturi={ACCOUNT}");
        assert!(ask(&[rr(false, "issue", &mine)], false, HTTP).is_ok());
        let theirs = "ca.example; accounturi=https://ca.example/acme/account/2";
        let r = reason(ask(&[rr(false, "issue", theirs)], false, HTTP));
        assert!(matches!(r, Reason::OtherAccount { .. }), "{r:?}");
        let dns_only = "ca.example; validationmethods=dns-01";
        assert!(ask(&[rr(false, "issue", dns_only)], false, DNS).is_ok());
        let r = reason(ask(&[rr(false, "issue", dns_only)], false, HTTP));
        assert!(matches!(r, Reason::MethodExcluded { .. }), "{r:?}");
        let both = "ca.example; validationmethods=http-01,tls-alpn-01";
        assert!(ask(&[rr(false, "issue", both)], false, ChallengeType::TlsAlpn01).is_ok());
        // Another record without the constraint still authorizes.
        let set = [rr(false, "issue", theirs), rr(false, "issue", "ca.example")];
        assert!(ask(&set, false, HTTP).is_ok());
        // Unknown parameters are ignored.
        assert!(ask(&[rr(false, "issue", "ca.example; policy=ev")], false, HTTP).is_ok());
    }

    #[test]
    fn refusals_name_the_record() {
        let theirs = "ca.example; accounturi=https://ca.example/acme/account/2";
        let text = ask(&[rr(false, "issue", theirs)], false, HTTP)
            .expect_err("refused")
            .to_string();
        assert!(
            text.contains(&format!("0 issue \"{theirs}\" at example.org")),
            "{text}"
        );
        let text = ask(&[rr(false, "issue", "other.example")], false, HTTP)
            .expect_err("refused")
            .to_string();
        assert!(text.contains("0 issue \"other.example\""), "{text}");
    }

    #[test]
    fn issuer_domain_names() {
        assert!(is_issuer_domain_name("ca.example"));
        assert!(is_issuer_domain_name("letsencrypt.org"));
        for bad in [
            "",
            "ca..example",
            "ca.example.",
            "-ca.example",
            "ca_x.example",
            "a b",
        ] {
            assert!(!is_issuer_domain_name(bad), "{bad:?}");
        }
    }
}
