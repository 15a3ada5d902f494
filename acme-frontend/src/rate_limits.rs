//! Rate limits and abuse controls: `[rate_limits]` resolved into a
//! [`Policy`], and the admissions that run inside the writer job of the
//! request they limit (new account, new order, pre-authorization), plus
//! what validations and issuances count.
//!
//! The arithmetic is `protocol::rate_limit` (GCRA, pure); the state is
//! `store::rate_limits` (in the database, so every front end on it shares
//! the buckets). Because an admission runs in the same writer job as the
//! change it allows, a request that fails after it (a refused order, a
//! failed insert) rolls its spend back with it: nothing is spent for a
//! request that did not happen, which is what Boulder's refunds achieve.
//!
//! **Invariant:** every refusal is made by [`refuse`], the one place a
//! limit turns into a `rateLimited` error (a refusal counter belongs
//! there).

use std::collections::HashMap;
use std::net::IpAddr;

use ipnet::IpNet;
use shared_proto::Identifier;

use crate::config::{BucketLimit, RateLimits};
use crate::error::Error;
use crate::protocol::rate_limit::{
    self as gcra, LimitName, Rate, Subject, account_identifier_key, account_identifier_prefix,
    ip_key, ipv6_range_key, registered_domains,
};
use crate::store::{self, Conn};

/// One limit's value for one subject.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Setting {
    /// A GCRA bucket.
    Bucket(Rate),
    /// At most this many objects.
    Count(u64),
}

/// `[rate_limits]`, checked and indexed.
#[derive(Clone, Debug, Default)]
pub struct Policy {
    defaults: HashMap<LimitName, Setting>,
    accounts: HashMap<(LimitName, String), Setting>,
    /// Longest prefix first.
    ips: Vec<(LimitName, IpNet, Setting)>,
}

/// Parses `192.0.2.0/24`, `2001:db8::/32`, or a bare address (a /32 or
/// /128); the network is taken as given with its host bits cleared.
pub fn parse_cidr(s: &str) -> Option<IpNet> {
    let s = s.trim();
    if let Ok(net) = s.parse::<IpNet>() {
        return Some(net.trunc());
    }
    s.parse::<IpAddr>().ok().map(IpNet::from)
}

fn bucket(b: &BucketLimit) -> Result<Rate, String> {
    if b.count == 0 || b.burst == 0 || b.period_secs == 0 {
        return Err("count, period_secs and burst must each be at least 1".into());
    }
    let period_ms = b
        .period_secs
        .checked_mul(1000)
        .filter(|ms| *ms >= b.count)
        .ok_or("count must be at most 1000 per second of period_secs (one per millisecond)")?;
    Ok(Rate {
        count: b.count,
        period_ms,
        burst: b.burst,
    })
}

impl Policy {
    /// Resolves `[rate_limits]`; the error names what is wrong.
    pub fn from_config(c: &RateLimits) -> Result<Self, String> {
        let mut defaults = HashMap::new();
        let buckets = [
            (LimitName::NewAccountsPerIp, &c.new_accounts_per_ip),
            (
                LimitName::NewAccountsPerIpv6Range,
                &c.new_accounts_per_ipv6_range,
            ),
            (LimitName::NewOrdersPerAccount, &c.new_orders_per_account),
            (
                LimitName::FailedValidationsPerAccountIdentifier,
                &c.failed_validations_per_account_identifier,
            ),
            (
                LimitName::CertificatesPerRegisteredDomain,
                &c.certificates_per_registered_domain,
            ),
        ];
        for (name, limit) in buckets {
            if let Some(b) = limit {
                let rate = bucket(b).map_err(|e| format!("{name}: {e}"))?;
                defaults.insert(name, Setting::Bucket(rate));
            }
        }
        let counts = [
            (
                LimitName::PendingOrdersPerAccount,
                &c.pending_orders_per_account,
            ),
            (
                LimitName::PendingAuthorizationsPerAccount,
                &c.pending_authorizations_per_account,
            ),
        ];
        for (name, limit) in counts {
            if let Some(l) = limit {
                if l.count == 0 {
                    return Err(format!("{name}: count must be at least 1"));
                }
                defaults.insert(name, Setting::Count(l.count));
            }
        }
        let mut policy = Policy {
            defaults,
            ..Policy::default()
        };
        for (i, o) in c.overrides.iter().enumerate() {
            let at = |e: String| format!("overrides[{i}] ({}): {e}", o.limit);
            let name = LimitName::parse(&o.limit).ok_or_else(|| {
                format!(
                    "overrides[{i}]: unknown limit {:?} (one of: {})",
                    o.limit,
                    LimitName::ALL.map(LimitName::as_str).join(", ")
                )
            })?;
            let setting = if name.is_count() {
                if o.period_secs.is_some() || o.burst.is_some() {
                    return Err(at("a count limit takes only `count`".into()));
                }
                if o.count == 0 {
                    return Err(at("count must be at least 1".into()));
                }
                Setting::Count(o.count)
            } else {
                let (Some(period_secs), Some(burst)) = (o.period_secs, o.burst) else {
                    return Err(at("needs count, period_secs and burst".into()));
                };
                Setting::Bucket(
                    bucket(&BucketLimit {
                        count: o.count,
                        period_secs,
                        burst,
                    })
                    .map_err(at)?,
                )
            };
            match (name.subject(), &o.account, &o.ip) {
                (Subject::Account, Some(account), None) => {
                    let id = account_id_of(account)
                        .ok_or_else(|| at(format!("{account:?} is not an account id or URL")))?;
                    policy.accounts.insert((name, id), setting);
                }
                (Subject::ClientIp, None, Some(ip)) => {
                    let net = parse_cidr(ip)
                        .ok_or_else(|| at(format!("{ip:?} is not a CIDR or an IP address")))?;
                    policy.ips.push((name, net, setting));
                }
                (Subject::Account, ..) => {
                    return Err(at("this limit is kept per account: give `account`".into()));
                }
                (Subject::ClientIp, ..) => {
                    return Err(at("this limit is kept per client IP: give `ip`".into()));
                }
            }
        }
        policy
            .ips
            .sort_by_key(|(_, net, _)| std::cmp::Reverse(net.prefix_len()));
        Ok(policy)
    }

    /// Whether any limit is configured (nothing to do otherwise).
    pub fn is_empty(&self) -> bool {
        self.defaults.is_empty() && self.accounts.is_empty() && self.ips.is_empty()
    }

    /// Whether `name` may apply to anyone (default or override).
    fn mentions(&self, name: LimitName) -> bool {
        self.defaults.contains_key(&name)
            || self.accounts.keys().any(|(n, _)| *n == name)
            || self.ips.iter().any(|(n, ..)| *n == name)
    }

    /// The setting of an account-kept limit for `account_id`, and whether
    /// it is the account's own override.
    pub fn for_account(&self, name: LimitName, account_id: &str) -> Option<(Setting, bool)> {
        if let Some(s) = self.accounts.get(&(name, account_id.to_owned())) {
            return Some((*s, true));
        }
        self.defaults.get(&name).map(|s| (*s, false))
    }

    /// The setting of an IP-kept limit for a client at `ip` (the most
    /// specific override containing it, else the default).
    pub fn for_ip(&self, name: LimitName, ip: IpAddr) -> Option<Setting> {
        let ip = ip.to_canonical();
        self.ips
            .iter()
            .find(|(n, net, _)| *n == name && net.contains(&ip))
            .map(|(_, _, s)| *s)
            .or_else(|| self.defaults.get(&name).copied())
    }
}

/// The account id an override or an operator names: an id, or an account
/// URL (its last path segment).
pub fn account_id_of(s: &str) -> Option<String> {
    let id = s.trim().trim_end_matches('/').rsplit('/').next()?;
    let ok = !id.is_empty()
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    ok.then(|| id.to_owned())
}

/// **The** refusal: every limit that says no says it here, as a
/// `rateLimited` problem (429) naming the limit, with `Retry-After` when
/// waiting helps (`None`: only an operator lifts it).
pub fn refuse(limit: LimitName, retry_after_ms: Option<i64>, detail: String) -> Error {
    let retry_after_secs = retry_after_ms.map(gcra::retry_after_secs);
    crate::metrics::rate_limit_refused(limit.as_str());
    tracing::debug!(target: "frontend", limit = %limit, retry_after = ?retry_after_secs, "rate limited");
    Error::RateLimited {
        limit: limit.as_str(),
        retry_after_secs,
        detail: match retry_after_secs {
            Some(s) => format!("rate limit {limit} exceeded: {detail}; retry after {s} s"),
            None => format!("rate limit {limit}: {detail}"),
        },
    }
}

fn describe(rate: Rate) -> String {
    format!(
        "{} per {} s, burst {}",
        rate.count,
        rate.period_ms / 1000,
        rate.burst
    )
}

/// Spends one token of `limit`'s bucket `key`, or refuses.
fn spend_or_refuse(
    c: &mut Conn,
    limit: LimitName,
    rate: Rate,
    key: &str,
    what: &str,
    now_ms: i64,
) -> Result<(), Error> {
    let tat = store::rate_limits::tat(c, limit.as_str(), key)?;
    let d = gcra::spend(rate, tat, now_ms, 1);
    if !d.allowed {
        return Err(refuse(
            limit,
            Some(d.retry_after_ms),
            format!("{what} ({})", describe(rate)),
        ));
    }
    store::rate_limits::set_tat(c, limit.as_str(), key, d.new_tat)
}

/// New account from `ip` (run in the job that inserts the account, after
/// it is known to be new): spends `new_accounts_per_ip` and, for an IPv6
/// client, `new_accounts_per_ipv6_range`.
pub fn admit_new_account(c: &mut Conn, p: &Policy, ip: IpAddr, now_ms: i64) -> Result<(), Error> {
    if let Some(Setting::Bucket(rate)) = p.for_ip(LimitName::NewAccountsPerIp, ip) {
        let key = ip_key(ip);
        let what = format!("too many new accounts from {key}");
        spend_or_refuse(c, LimitName::NewAccountsPerIp, rate, &key, &what, now_ms)?;
    }
    if let Some(key) = ipv6_range_key(ip)
        && let Some(Setting::Bucket(rate)) = p.for_ip(LimitName::NewAccountsPerIpv6Range, ip)
    {
        let what = format!("too many new accounts from {key}");
        spend_or_refuse(
            c,
            LimitName::NewAccountsPerIpv6Range,
            rate,
            &key,
            &what,
            now_ms,
        )?;
    }
    Ok(())
}

/// A new order as the limits see it.
pub struct NewOrder<'a> {
    /// The ordering account.
    pub account_id: &'a str,
    /// Its identifiers.
    pub identifiers: &'a [Identifier],
    /// How many authorizations the order creates (the others are reused).
    pub new_authzs: usize,
    /// Exempt from `certificates_per_registered_domain`: an ARI renewal
    /// (`replaces`, RFC 9773) whose predecessor's suggested window has
    /// opened.
    pub renewal_exempt: bool,
}

/// New order (run in the job that inserts it, after its authorizations
/// are chosen): refuses paused identifiers, counts pending orders and
/// authorizations, checks (without spending) `certificates_per_registered_domain`,
/// and spends `new_orders_per_account`.
pub fn admit_new_order(
    c: &mut Conn,
    p: &Policy,
    order: &NewOrder<'_>,
    now_ms: i64,
) -> Result<(), Error> {
    let account = order.account_id;
    if p.mentions(LimitName::FailedValidationsPerAccountIdentifier) {
        refuse_paused(c, account, order.identifiers)?;
    }
    if let Some((Setting::Count(max), _)) =
        p.for_account(LimitName::PendingOrdersPerAccount, account)
    {
        let (n, first) = store::rate_limits::unfinished_orders(c, account, now_ms / 1000)?;
        if u64::try_from(n).unwrap_or(0) >= max {
            return Err(refuse_count(
                LimitName::PendingOrdersPerAccount,
                first,
                now_ms,
                format!("this account has {n} orders not yet finalized (at most {max})"),
            ));
        }
    }
    admit_pending_authzs(c, p, account, order.new_authzs, now_ms)?;
    if !order.renewal_exempt
        && let Some((Setting::Bucket(rate), own)) =
            p.for_account(LimitName::CertificatesPerRegisteredDomain, account)
    {
        for domain in registered_domains(order.identifiers) {
            let key = domain_key(account, &domain, own);
            let tat = store::rate_limits::tat(
                c,
                LimitName::CertificatesPerRegisteredDomain.as_str(),
                &key,
            )?;
            let d = gcra::spend(rate, tat, now_ms, 1);
            if !d.allowed {
                return Err(refuse(
                    LimitName::CertificatesPerRegisteredDomain,
                    Some(d.retry_after_ms),
                    format!("too many certificates for {domain} ({})", describe(rate)),
                ));
            }
        }
    }
    if let Some((Setting::Bucket(rate), _)) = p.for_account(LimitName::NewOrdersPerAccount, account)
    {
        spend_or_refuse(
            c,
            LimitName::NewOrdersPerAccount,
            rate,
            account,
            "too many new orders for this account",
            now_ms,
        )?;
    }
    Ok(())
}

/// New pre-authorization (RFC 8555 §7.4.1) for `id`.
pub fn admit_new_authz(
    c: &mut Conn,
    p: &Policy,
    account_id: &str,
    id: &Identifier,
    now_ms: i64,
) -> Result<(), Error> {
    if p.mentions(LimitName::FailedValidationsPerAccountIdentifier) {
        refuse_paused(c, account_id, std::slice::from_ref(id))?;
    }
    admit_pending_authzs(c, p, account_id, 1, now_ms)
}

fn admit_pending_authzs(
    c: &mut Conn,
    p: &Policy,
    account: &str,
    adding: usize,
    now_ms: i64,
) -> Result<(), Error> {
    let Some((Setting::Count(max), _)) =
        p.for_account(LimitName::PendingAuthorizationsPerAccount, account)
    else {
        return Ok(());
    };
    if adding == 0 {
        return Ok(());
    }
    let (n, first) = store::rate_limits::pending_authzs(c, account, now_ms / 1000)?;
    let after = u64::try_from(n).unwrap_or(0).saturating_add(adding as u64);
    if after > max {
        return Err(refuse_count(
            LimitName::PendingAuthorizationsPerAccount,
            first,
            now_ms,
            format!(
                "this account has {n} pending authorizations and this request adds {adding} \
                 (at most {max})"
            ),
        ));
    }
    Ok(())
}

/// A count limit's refusal: retry when the first pending object expires
/// (finishing or deactivating one frees a place sooner).
fn refuse_count(limit: LimitName, first_expiry: Option<i64>, now_ms: i64, what: String) -> Error {
    let wait = first_expiry.map(|e| e.saturating_mul(1000).saturating_sub(now_ms));
    refuse(limit, Some(wait.unwrap_or(1000)), what)
}

fn refuse_paused(c: &mut Conn, account: &str, ids: &[Identifier]) -> Result<(), Error> {
    let paused = store::rate_limits::paused_among(c, account, ids)?;
    if paused.is_empty() {
        return Ok(());
    }
    Err(refuse(
        LimitName::FailedValidationsPerAccountIdentifier,
        None,
        format!(
            "this account is paused for {} after repeated failed validations; \
             the CA's operator can lift it (akamu-cli admin unpause)",
            paused.join(", ")
        ),
    ))
}

fn domain_key(account: &str, domain: &str, own_override: bool) -> String {
    if own_override {
        format!("{account}/{domain}")
    } else {
        domain.to_owned()
    }
}

/// What a finished validation of `account_id`'s authorization for `id`
/// does to `failed_validations_per_account_identifier`: a failure spends
/// a token, and the failure the bucket cannot pay for pauses the pair; a
/// success refills the bucket (the limit counts failures in a row, as
/// Boulder's pausing limit does). Never refuses: the validation's result
/// is recorded either way. Returns whether the pair was just paused.
pub fn after_validation(
    c: &mut Conn,
    p: &Policy,
    account_id: &str,
    id: &Identifier,
    valid: bool,
    now_ms: i64,
) -> Result<bool, Error> {
    let limit = LimitName::FailedValidationsPerAccountIdentifier;
    let Some((Setting::Bucket(rate), _)) = p.for_account(limit, account_id) else {
        return Ok(false);
    };
    let key = account_identifier_key(account_id, id);
    if valid {
        store::rate_limits::reset(c, limit.as_str(), &key)?;
        return Ok(false);
    }
    let tat = store::rate_limits::tat(c, limit.as_str(), &key)?;
    let d = gcra::spend(rate, tat, now_ms, 1);
    if d.allowed {
        store::rate_limits::set_tat(c, limit.as_str(), &key, d.new_tat)?;
        return Ok(false);
    }
    let paused = store::rate_limits::pause(c, account_id, id, now_ms / 1000)?;
    if paused {
        tracing::warn!(target: "frontend", account = %account_id, identifier = %id, "paused after repeated failed validations");
    }
    Ok(paused)
}

/// Counts an issued certificate for `certificates_per_registered_domain`
/// (run in the job that stores it): one token of each registered domain it
/// names, taken even when a concurrent issuance took the last one (the
/// certificate exists). An account with its own override also spends from
/// its own buckets.
pub fn count_issuance(
    c: &mut Conn,
    p: &Policy,
    account_id: &str,
    ids: &[Identifier],
    now_ms: i64,
) -> Result<(), Error> {
    let limit = LimitName::CertificatesPerRegisteredDomain;
    let Some((Setting::Bucket(own_rate), own)) = p.for_account(limit, account_id) else {
        return Ok(());
    };
    for domain in registered_domains(ids) {
        let mut keys = vec![(domain.clone(), p.defaults.get(&limit).copied())];
        if own {
            keys.push((
                domain_key(account_id, &domain, true),
                Some(Setting::Bucket(own_rate)),
            ));
        }
        for (key, setting) in keys {
            let Some(Setting::Bucket(rate)) = setting else {
                continue;
            };
            let tat = store::rate_limits::tat(c, limit.as_str(), &key)?;
            let new_tat = gcra::spend_anyway(rate, tat, now_ms, 1);
            store::rate_limits::set_tat(c, limit.as_str(), &key, new_tat)?;
        }
    }
    Ok(())
}

/// What an operator's unpause lifted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unpaused {
    /// The identifiers unpaused, `type:name`.
    pub identifiers: Vec<String>,
}

/// Lifts the pause of `account_id` for `ids` (every paused identifier
/// when `None`), and refills their failed-validation buckets so the next
/// failure does not pause them again at once.
pub fn unpause(
    c: &mut Conn,
    account_id: &str,
    ids: Option<&[Identifier]>,
) -> Result<Unpaused, Error> {
    let limit = LimitName::FailedValidationsPerAccountIdentifier.as_str();
    let mut lifted = Vec::new();
    match ids {
        Some(ids) => {
            for id in ids {
                let kind = id.kind.as_str();
                if store::rate_limits::unpause(c, account_id, kind, id.base_name())? {
                    lifted.push(format!("{kind}:{}", id.base_name()));
                }
                store::rate_limits::reset(c, limit, &account_identifier_key(account_id, id))?;
            }
        }
        None => {
            for (kind, name) in store::rate_limits::paused_of(c, account_id)? {
                store::rate_limits::unpause(c, account_id, &kind, &name)?;
                lifted.push(format!("{kind}:{name}"));
            }
            store::rate_limits::reset_prefix(c, limit, &account_identifier_prefix(account_id))?;
        }
    }
    Ok(Unpaused {
        identifiers: lifted,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{CountLimit, LimitOverride};

    fn over(limit: &str, account: Option<&str>, ip: Option<&str>) -> LimitOverride {
        LimitOverride {
            limit: limit.into(),
            account: account.map(Into::into),
            ip: ip.map(Into::into),
            count: 50,
            period_secs: Some(60),
            burst: Some(50),
        }
    }

    #[test]
    fn policy_resolves_defaults_and_overrides() {
        let c = RateLimits {
            new_accounts_per_ip: Some(BucketLimit {
                count: 2,
                period_secs: 60,
                burst: 2,
            }),
            pending_orders_per_account: Some(CountLimit { count: 3 }),
            overrides: vec![
                over(
                    "new_orders_per_account",
                    Some("https://ca.example/acme/acct/abc_D-1"),
                    None,
                ),
                over("new_accounts_per_ip", None, Some("10.0.0.0/8")),
                over("new_accounts_per_ip", None, Some("10.1.0.0/16")),
            ],
            ..RateLimits::default()
        };
        let p = Policy::from_config(&c).expect("valid");
        let fifty = |burst| {
            Setting::Bucket(Rate {
                count: 50,
                period_ms: 60_000,
                burst,
            })
        };
        assert_eq!(
            p.for_account(LimitName::NewOrdersPerAccount, "abc_D-1"),
            Some((fifty(50), true))
        );
        assert_eq!(p.for_account(LimitName::NewOrdersPerAccount, "other"), None);
        assert_eq!(
            p.for_account(LimitName::PendingOrdersPerAccount, "x"),
            Some((Setting::Count(3), false))
        );
        let ip = |s: &str| s.parse::<IpAddr>().expect("ip");
        assert_eq!(
            p.for_ip(LimitName::NewAccountsPerIp, ip("192.0.2.1")),
            Some(Setting::Bucket(Rate {
                count: 2,
                period_ms: 60_000,
                burst: 2
            }))
        );
        assert_eq!(
            p.for_ip(LimitName::NewAccountsPerIp, ip("10.1.2.3")),
            Some(fifty(50)),
            "the most specific range"
        );
        assert_eq!(
            p.for_ip(LimitName::NewAccountsPerIp, ip("::ffff:10.9.9.9")),
            Some(fifty(50)),
            "an IPv4-mapped client is its IPv4 address"
        );
        assert_eq!(
            p.for_ip(LimitName::NewAccountsPerIpv6Range, ip("10.1.2.3")),
            None
        );
        assert!(!p.is_empty());
        assert!(
            Policy::from_config(&RateLimits::default())
                .expect("empty")
                .is_empty()
        );
    }

    #[test]
    fn bad_policies_are_refused_with_the_reason() {
        let refused = |c: RateLimits| Policy::from_config(&c).expect_err("refused");
        let b = |count, period_secs, burst| {
            Some(BucketLimit {
                count,
                period_secs,
                burst,
            })
        };
        assert!(
            refused(RateLimits {
                new_orders_per_account: b(0, 1, 1),
                ..RateLimits::default()
            })
            .contains("new_orders_per_account")
        );
        assert!(
            refused(RateLimits {
                new_orders_per_account: b(5000, 1, 1),
                ..RateLimits::default()
            })
            .contains("per second")
        );
        let with = |o: LimitOverride| RateLimits {
            overrides: vec![o],
            ..RateLimits::default()
        };
        assert!(refused(with(over("nope", Some("a"), None))).contains("unknown limit"));
        assert!(refused(with(over("new_accounts_per_ip", Some("a"), None))).contains("give `ip`"));
        assert!(
            refused(with(over(
                "new_orders_per_account",
                None,
                Some("10.0.0.0/8")
            )))
            .contains("give `account`")
        );
        assert!(
            refused(with(over("new_accounts_per_ip", None, Some("10.0.0.0/33"))))
                .contains("not a CIDR")
        );
        assert!(
            refused(with(over("pending_orders_per_account", Some("a"), None)))
                .contains("only `count`")
        );
        let mut no_burst = over("new_orders_per_account", Some("a"), None);
        no_burst.burst = None;
        assert!(refused(with(no_burst)).contains("needs count, period_secs and burst"));
    }

    #[test]
    fn cidrs_and_account_urls() {
        assert_eq!(
            parse_cidr("192.0.2.77/24"),
            Some("192.0.2.0/24".parse().expect("net"))
        );
        assert_eq!(
            parse_cidr("2001:db8::1"),
            Some("2001:db8::1/128".parse().expect("net"))
        );
        assert_eq!(parse_cidr("example.org"), None);
        assert_eq!(account_id_of("abc").as_deref(), Some("abc"));
        assert_eq!(
            account_id_of("https://ca.example/acme/acct/xyz/").as_deref(),
            Some("xyz")
        );
        assert_eq!(account_id_of("a b"), None);
    }

    #[test]
    fn a_refusal_is_rate_limited_and_names_its_limit() {
        let e = refuse(LimitName::NewOrdersPerAccount, Some(1_500), "x".into());
        match e {
            Error::RateLimited {
                limit,
                retry_after_secs,
                detail,
            } => {
                assert_eq!(limit, "new_orders_per_account");
                assert_eq!(retry_after_secs, Some(2));
                assert!(detail.contains("new_orders_per_account"), "{detail}");
            }
            other => panic!("{other:?}"),
        }
    }
}
