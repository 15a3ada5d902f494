//! Rate limits: the names, the bucket keys and the GCRA arithmetic (the
//! "generic cell rate algorithm" Boulder's `ratelimits` package uses).
//!
//! A bucket holds at most `burst` tokens and gains `count` tokens per
//! `period`. It is not stored as a number of tokens but as its theoretical
//! arrival time (TAT): the moment at which it will be full again. A TAT in
//! the past means a full bucket; spending `n` tokens moves the TAT forward by
//! `n` emission intervals (`period / count`); a request is allowed while the
//! new TAT stays within `burst` intervals of now. Times are Unix
//! milliseconds, passed in: nothing here reads the clock or the database.

use std::fmt;
use std::net::IpAddr;

use shared_proto::{Identifier, IdentifierKind};

/// Every limit, named as its `[rate_limits]` table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LimitName {
    /// New accounts per client IP address.
    NewAccountsPerIp,
    /// New accounts per client IPv6 /48.
    NewAccountsPerIpv6Range,
    /// New orders per account.
    NewOrdersPerAccount,
    /// Failed validations per account and identifier; the failure the
    /// bucket cannot absorb pauses the pair.
    FailedValidationsPerAccountIdentifier,
    /// Certificates per registered domain (public suffix + 1 label).
    CertificatesPerRegisteredDomain,
    /// Orders of an account not yet finalized (a count, not a bucket).
    PendingOrdersPerAccount,
    /// Pending authorizations of an account (a count, not a bucket).
    PendingAuthorizationsPerAccount,
}

/// What a limit's buckets (or counts) are kept per, hence what an override
/// names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Subject {
    /// The client's IP address (overrides: `ip = "CIDR"`).
    ClientIp,
    /// The account (overrides: `account = "ID or URL"`).
    Account,
}

impl LimitName {
    /// Every limit.
    pub const ALL: [LimitName; 7] = [
        Self::NewAccountsPerIp,
        Self::NewAccountsPerIpv6Range,
        Self::NewOrdersPerAccount,
        Self::FailedValidationsPerAccountIdentifier,
        Self::CertificatesPerRegisteredDomain,
        Self::PendingOrdersPerAccount,
        Self::PendingAuthorizationsPerAccount,
    ];

    /// The configuration name (the `[rate_limits]` table, the stored
    /// bucket's limit, the word in a refusal's detail).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NewAccountsPerIp => "new_accounts_per_ip",
            Self::NewAccountsPerIpv6Range => "new_accounts_per_ipv6_range",
            Self::NewOrdersPerAccount => "new_orders_per_account",
            Self::FailedValidationsPerAccountIdentifier => {
                "failed_validations_per_account_identifier"
            }
            Self::CertificatesPerRegisteredDomain => "certificates_per_registered_domain",
            Self::PendingOrdersPerAccount => "pending_orders_per_account",
            Self::PendingAuthorizationsPerAccount => "pending_authorizations_per_account",
        }
    }

    /// Parses a configuration name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|n| n.as_str() == s)
    }

    /// Whether this limit counts current objects instead of keeping a GCRA
    /// bucket (`count` only, no `period_secs` or `burst`).
    pub fn is_count(self) -> bool {
        matches!(
            self,
            Self::PendingOrdersPerAccount | Self::PendingAuthorizationsPerAccount
        )
    }

    /// What the limit is kept per.
    pub fn subject(self) -> Subject {
        match self {
            Self::NewAccountsPerIp | Self::NewAccountsPerIpv6Range => Subject::ClientIp,
            _ => Subject::Account,
        }
    }
}

impl fmt::Display for LimitName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A bucket's parameters: `count` tokens per `period_ms`, at most `burst`
/// held.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    /// Tokens added per period (at least 1).
    pub count: u64,
    /// The period, milliseconds (at least `count`, so a token takes at
    /// least 1 ms).
    pub period_ms: u64,
    /// Most tokens held (at least 1).
    pub burst: u64,
}

impl Rate {
    /// Time for one token to come back, milliseconds (at least 1).
    pub fn emission_interval(&self) -> i64 {
        i64::try_from(self.period_ms / self.count.max(1))
            .unwrap_or(i64::MAX)
            .max(1)
    }

    /// Time for an empty bucket to fill, milliseconds.
    pub fn burst_offset(&self) -> i64 {
        self.emission_interval()
            .saturating_mul(i64::try_from(self.burst).unwrap_or(i64::MAX))
    }
}

/// The outcome of [`spend`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    /// Whether the request may go ahead.
    pub allowed: bool,
    /// The TAT to store if the request goes ahead (unchanged when refused).
    pub new_tat: i64,
    /// When refused: milliseconds until the bucket has the tokens asked
    /// for. When allowed: 0.
    pub retry_after_ms: i64,
    /// Whole tokens left after this decision.
    pub remaining: u64,
}

/// Spends `cost` tokens from a bucket whose TAT is `tat` (`None`: never
/// used, i.e. full) at `now`. Refused when the bucket holds fewer than
/// `cost` tokens; nothing is spent then. A check that must not spend
/// (certificates at new-order) calls this and does not store the result.
pub fn spend(rate: Rate, tat: Option<i64>, now: i64, cost: u64) -> Decision {
    let interval = rate.emission_interval();
    let offset = rate.burst_offset();
    // A TAT in the past is a full bucket: capacity does not pile up.
    let tat = tat.map_or(now, |t| t.max(now));
    let increment = interval.saturating_mul(i64::try_from(cost).unwrap_or(i64::MAX));
    let new_tat = tat.saturating_add(increment);
    // How far the new TAT stays inside the burst window.
    let slack = now.saturating_sub(new_tat.saturating_sub(offset));
    if slack < 0 {
        let left = now.saturating_sub(tat.saturating_sub(offset)) / interval;
        return Decision {
            allowed: false,
            new_tat: tat,
            retry_after_ms: -slack,
            remaining: u64::try_from(left).unwrap_or(0),
        };
    }
    Decision {
        allowed: true,
        new_tat,
        retry_after_ms: 0,
        remaining: u64::try_from(slack / interval).unwrap_or(0),
    }
}

/// Spends `cost` tokens whatever the bucket holds (a certificate that was
/// issued counts even if a concurrent issuance took the last token): the
/// new TAT.
pub fn spend_anyway(rate: Rate, tat: Option<i64>, now: i64, cost: u64) -> i64 {
    let tat = tat.map_or(now, |t| t.max(now));
    tat.saturating_add(
        rate.emission_interval()
            .saturating_mul(i64::try_from(cost).unwrap_or(i64::MAX)),
    )
}

/// Gives `cost` tokens back (a request refused later for another reason):
/// the new TAT, never earlier than `now` (a bucket is never more than full).
pub fn refund(rate: Rate, tat: i64, now: i64, cost: u64) -> i64 {
    let decrement = rate
        .emission_interval()
        .saturating_mul(i64::try_from(cost).unwrap_or(i64::MAX));
    tat.saturating_sub(decrement).max(now)
}

/// `Retry-After` seconds for a wait of `ms` milliseconds: rounded up, at
/// least 1 (a client told 0 would retry at once and be refused again).
pub fn retry_after_secs(ms: i64) -> u64 {
    u64::try_from(ms.max(1).saturating_add(999) / 1000).unwrap_or(1)
}

/// The bucket key of a client address: the address itself, IPv4-mapped
/// IPv6 addresses as IPv4.
pub fn ip_key(ip: IpAddr) -> String {
    ip.to_canonical().to_string()
}

/// The bucket key of a client's IPv6 /48 (`2001:db8:1::/48`), or `None`
/// for an IPv4 client.
pub fn ipv6_range_key(ip: IpAddr) -> Option<String> {
    match ip.to_canonical() {
        IpAddr::V4(_) => None,
        IpAddr::V6(v6) => {
            let s = v6.segments();
            let net = std::net::Ipv6Addr::new(s[0], s[1], s[2], 0, 0, 0, 0, 0);
            Some(format!("{net}/48"))
        }
    }
}

/// The bucket key of an account and an identifier (failed validations,
/// pausing): `<account>/<type>:<name>`, the name without its wildcard
/// label (the name that was validated).
pub fn account_identifier_key(account_id: &str, id: &Identifier) -> String {
    format!("{account_id}/{}:{}", id.kind.as_str(), id.base_name())
}

/// The part of every [`account_identifier_key`] of `account_id` before the
/// identifier.
pub fn account_identifier_prefix(account_id: &str) -> String {
    format!("{account_id}/")
}

/// What the certificates-per-domain limit counts an identifier under: the
/// registered domain of a DNS name (the public suffix and one more label,
/// from the Public Suffix List compiled into the `psl` crate: `a.example.co.uk`
/// → `example.co.uk`), the name itself when it is a public suffix or has
/// no registrable part; an IPv4 address as itself; an IPv6 address as its
/// /64, as Boulder does.
pub fn registered_domain(id: &Identifier) -> String {
    match id.kind {
        IdentifierKind::Dns => {
            let name = id.base_name();
            psl::domain_str(name).unwrap_or(name).to_owned()
        }
        IdentifierKind::Ip => match id.value.parse::<IpAddr>() {
            Ok(IpAddr::V6(v6)) => {
                let s = v6.segments();
                let net = std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0);
                format!("{net}/64")
            }
            _ => id.value.clone(),
        },
    }
}

/// The distinct registered domains of an order's identifiers, sorted (an
/// order for `a.example.org` and `b.example.org` costs one token of
/// `example.org`).
pub fn registered_domains(ids: &[Identifier]) -> Vec<String> {
    let set: std::collections::BTreeSet<String> = ids.iter().map(registered_domain).collect();
    set.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2 per 10 s, burst 3: a token every 5 s.
    const RATE: Rate = Rate {
        count: 2,
        period_ms: 10_000,
        burst: 3,
    };
    const T0: i64 = 1_800_000_000_000;

    #[test]
    fn a_full_bucket_allows_burst_then_refuses_until_a_token_returns() {
        let mut tat = None;
        for left in [2, 1, 0] {
            let d = spend(RATE, tat, T0, 1);
            assert!(d.allowed, "{d:?}");
            assert_eq!(d.remaining, left);
            tat = Some(d.new_tat);
        }
        assert_eq!(tat, Some(T0 + 15_000));
        let refused = spend(RATE, tat, T0, 1);
        assert!(!refused.allowed);
        assert_eq!(refused.new_tat, T0 + 15_000, "a refusal spends nothing");
        assert_eq!(refused.retry_after_ms, 5_000);
        assert_eq!(refused.remaining, 0);
        // One millisecond early is still too early; on time is allowed.
        assert!(!spend(RATE, tat, T0 + 4_999, 1).allowed);
        let d = spend(RATE, tat, T0 + 5_000, 1);
        assert!(d.allowed);
        assert_eq!(d.new_tat, T0 + 20_000);
    }

    #[test]
    fn capacity_does_not_pile_up_beyond_burst() {
        // A bucket unused for an hour holds `burst` tokens, not more.
        let d = spend(RATE, Some(T0 - 3_600_000), T0, 3);
        assert!(d.allowed);
        assert_eq!(d.remaining, 0);
        assert!(!spend(RATE, Some(d.new_tat), T0, 1).allowed);
        assert!(!spend(RATE, None, T0, 4).allowed, "cost above burst");
    }

    #[test]
    fn retry_after_is_the_time_until_the_cost_fits() {
        let d = spend(RATE, Some(T0 + 15_000), T0 + 1_000, 2);
        assert!(!d.allowed);
        assert_eq!(d.retry_after_ms, 9_000);
        assert_eq!(retry_after_secs(d.retry_after_ms), 9);
        assert_eq!(retry_after_secs(1), 1);
        assert_eq!(retry_after_secs(1_001), 2);
        assert_eq!(retry_after_secs(0), 1);
    }

    #[test]
    fn refunds_give_tokens_back_but_never_beyond_full() {
        let tat = T0 + 15_000;
        assert_eq!(refund(RATE, tat, T0, 1), T0 + 10_000);
        assert_eq!(refund(RATE, tat, T0, 5), T0, "never earlier than now");
        assert!(spend(RATE, Some(refund(RATE, tat, T0, 1)), T0, 1).allowed);
    }

    #[test]
    fn spend_anyway_counts_past_the_limit() {
        let tat = spend_anyway(RATE, Some(T0 + 15_000), T0, 1);
        assert_eq!(tat, T0 + 20_000);
        assert_eq!(spend(RATE, Some(tat), T0, 1).retry_after_ms, 10_000);
        assert_eq!(spend_anyway(RATE, None, T0, 2), T0 + 10_000);
    }

    #[test]
    fn steady_state_is_count_per_period() {
        // 1 per 2 s, burst 1: a request every 2 s passes, one in between
        // does not.
        let rate = Rate {
            count: 1,
            period_ms: 2_000,
            burst: 1,
        };
        let mut tat = None;
        for i in 0..5 {
            let t = T0 + i * 2_000;
            let d = spend(rate, tat, t, 1);
            assert!(d.allowed, "request {i}");
            assert!(!spend(rate, Some(d.new_tat), t + 1_999, 1).allowed);
            tat = Some(d.new_tat);
        }
    }

    #[test]
    fn names_round_trip_and_know_their_subject() {
        for n in LimitName::ALL {
            assert_eq!(LimitName::parse(n.as_str()), Some(n));
        }
        assert_eq!(LimitName::parse("new_orders"), None);
        assert_eq!(LimitName::NewAccountsPerIp.subject(), Subject::ClientIp);
        assert_eq!(LimitName::NewOrdersPerAccount.subject(), Subject::Account);
        assert!(LimitName::PendingOrdersPerAccount.is_count());
        assert!(!LimitName::NewOrdersPerAccount.is_count());
    }

    #[test]
    fn keys() {
        let v6: IpAddr = "2001:db8:1:2:3::4".parse().expect("ip");
        assert_eq!(ipv6_range_key(v6).as_deref(), Some("2001:db8:1::/48"));
        let v4: IpAddr = "192.0.2.7".parse().expect("ip");
        assert_eq!(ipv6_range_key(v4), None);
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().expect("ip");
        assert_eq!(ip_key(mapped), "192.0.2.7");
        assert_eq!(ipv6_range_key(mapped), None);
        assert_eq!(
            account_identifier_key("acct1", &Identifier::dns("*.Example.org")),
            "acct1/dns:example.org"
        );
    }

    #[test]
    fn registered_domains_follow_the_public_suffix_list() {
        let rd = |n: &str| registered_domain(&Identifier::dns(n));
        assert_eq!(rd("a.example.co.uk"), "example.co.uk");
        assert_eq!(rd("b.example.co.uk"), "example.co.uk");
        assert_eq!(rd("example.co.uk"), "example.co.uk");
        assert_eq!(rd("other.co.uk"), "other.co.uk");
        assert_eq!(rd("*.www.example.org"), "example.org");
        assert_eq!(rd("x.y.example.com"), "example.com");
        // A name under a private suffix is its own registered domain.
        assert_eq!(rd("me.github.io"), "me.github.io");
        let ids = [
            Identifier::dns("a.example.co.uk"),
            Identifier::dns("b.example.co.uk"),
            Identifier::dns("other.co.uk"),
            Identifier::ip("2001:db8::1".parse().expect("ip")),
            Identifier::ip("2001:db8::2".parse().expect("ip")),
            Identifier::ip("192.0.2.1".parse().expect("ip")),
        ];
        assert_eq!(
            registered_domains(&ids),
            ["192.0.2.1", "2001:db8::/64", "example.co.uk", "other.co.uk"]
        );
    }
}
