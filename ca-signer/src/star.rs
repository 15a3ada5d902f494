//! STAR (RFC 8739): the signer's own record of every auto-renewed order.
//!
//! A STAR order's first issuance is an ordinary one (fresh validator
//! statements for every identifier); the signer records the order's terms
//! with it in the audit log ([`StarRecord`], the issue record's `star`
//! member). Later certificates of the order (reissues) come without
//! statements: the signer checks each against that record alone, never
//! against what the frontend says now, so a compromised frontend cannot
//! widen the names, change the account, lengthen a certificate or stretch
//! the order past its `end-date`.
//!
//! The audit log is the durable store: [`StarBook::observe`] rebuilds the
//! book from it at start, as it streams by. Orders whose `end-date` has
//! passed are forgotten (no reissue can be accepted for them anyway).
//!
//! Pure: `now` is a parameter.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use shared_proto::signer::{IssueRequest, StarTerms};

use crate::audit::{Operation, Record};
use crate::error::PolicyRefusal;
use crate::policy::Checked;

/// The terms of a STAR order as the signer recorded them at its first
/// issuance (with the order id and profile of that issue record).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StarRecord {
    /// The requesting account's URL.
    pub account: String,
    /// The validated identifiers, as `kind:value`, sorted.
    pub identifiers: Vec<String>,
    /// The profile the order is issued under.
    pub profile: String,
    /// `end-date`, Unix seconds.
    pub end_date: i64,
    /// `lifetime`, seconds.
    pub lifetime_secs: i64,
    /// `lifetime-adjust`, seconds.
    pub lifetime_adjust_secs: i64,
}

impl StarRecord {
    /// The record for the first issuance of `request` under `profile`.
    pub fn new(request: &IssueRequest, terms: &StarTerms, profile: &str) -> Self {
        Self {
            account: request.account_uri.clone(),
            identifiers: identifiers(request),
            profile: profile.to_owned(),
            end_date: terms.end_date,
            lifetime_secs: terms.lifetime_secs,
            lifetime_adjust_secs: terms.lifetime_adjust_secs,
        }
    }

    /// Whether the checked certificate `checked` stays inside these terms:
    /// it ends no later than `end-date` and is valid no longer than
    /// `lifetime + lifetime-adjust`.
    pub fn check_window(&self, order_id: &str, checked: &Checked) -> Result<(), PolicyRefusal> {
        let out = |why: String| PolicyRefusal::StarOutOfScope {
            order: order_id.to_owned(),
            why,
        };
        if checked.not_after() > self.end_date {
            return Err(out(format!(
                "notAfter {} is after the order's end-date {}",
                checked.not_after(),
                self.end_date
            )));
        }
        let validity = checked.not_after() - checked.not_before();
        let allowed = self.lifetime_secs.saturating_add(self.lifetime_adjust_secs);
        if validity > allowed {
            return Err(out(format!(
                "validity of {validity} s exceeds the order's lifetime + lifetime-adjust ({allowed} s)"
            )));
        }
        Ok(())
    }
}

/// The identifiers of `request` as the record spells them: sorted,
/// without duplicates.
fn identifiers(request: &IssueRequest) -> Vec<String> {
    let mut ids: Vec<String> = request
        .identifiers
        .iter()
        .map(ToString::to_string)
        .collect();
    ids.sort();
    ids.dedup();
    ids
}

/// Checks the terms of a first issuance before anything is signed: sane
/// numbers, an `end-date` still ahead.
pub fn check_terms(order_id: &str, terms: &StarTerms, now: i64) -> Result<(), PolicyRefusal> {
    let out = |why: &str| PolicyRefusal::StarOutOfScope {
        order: order_id.to_owned(),
        why: why.to_owned(),
    };
    if terms.lifetime_secs <= 0 {
        return Err(out("lifetime is not positive"));
    }
    if terms.lifetime_adjust_secs < 0 {
        return Err(out("lifetime-adjust is negative"));
    }
    if terms.end_date <= now {
        return Err(out("end-date has passed"));
    }
    Ok(())
}

/// Every STAR order the signer has issued a first certificate for and whose
/// `end-date` has not passed, by order id.
#[derive(Debug, Default)]
pub struct StarBook {
    orders: HashMap<String, StarRecord>,
}

impl StarBook {
    /// An empty book.
    pub fn new() -> Self {
        Self::default()
    }

    /// Looks at the next record of the audit log (at start).
    pub fn observe(&mut self, r: &Record) {
        if r.operation != Operation::Issue {
            return;
        }
        if let (Some(order), Some(star)) = (&r.order_id, &r.star) {
            self.orders.insert(order.clone(), star.clone());
        }
    }

    /// Forgets the orders whose `end-date` is before `now`.
    pub fn prune(&mut self, now: i64) {
        self.orders.retain(|_, r| r.end_date > now);
    }

    /// The record of `order_id`, if any.
    pub fn get(&self, order_id: &str) -> Option<&StarRecord> {
        self.orders.get(order_id)
    }

    /// Records `record` for `order_id` (after its audit record was
    /// written).
    pub fn insert(&mut self, order_id: &str, record: StarRecord) {
        self.orders.insert(order_id.to_owned(), record);
    }

    /// How many orders are recorded.
    pub fn len(&self) -> usize {
        self.orders.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.orders.is_empty()
    }

    /// Checks a first issuance of `request` (terms `terms`, profile
    /// `profile`) against the book: an order already recorded with other
    /// terms cannot be recorded again. Returns the record to write.
    pub fn check_first(
        &self,
        request: &IssueRequest,
        terms: &StarTerms,
        profile: &str,
        now: i64,
    ) -> Result<StarRecord, PolicyRefusal> {
        check_terms(&request.order_id, terms, now)?;
        let record = StarRecord::new(request, terms, profile);
        match self.get(&request.order_id) {
            Some(known) if *known != record => Err(PolicyRefusal::StarOutOfScope {
                order: request.order_id.clone(),
                why: "the order was recorded with other terms".to_owned(),
            }),
            _ => Ok(record),
        }
    }

    /// Checks a reissue of `request` under `profile` at `now` against the
    /// record of its order: the order must be recorded, with the same
    /// account, identifiers and profile, and its `end-date` not passed. The
    /// certificate's window is checked after the policy computed it
    /// ([`StarRecord::check_window`]). Returns the record.
    pub fn check_reissue(
        &self,
        request: &IssueRequest,
        profile: &str,
        now: i64,
    ) -> Result<&StarRecord, PolicyRefusal> {
        let order = &request.order_id;
        let known = self
            .get(order)
            .ok_or_else(|| PolicyRefusal::StarUnknownOrder(order.clone()))?;
        let out = |why: &str| PolicyRefusal::StarOutOfScope {
            order: order.clone(),
            why: why.to_owned(),
        };
        if known.account != request.account_uri {
            return Err(out("another account"));
        }
        if known.identifiers != identifiers(request) {
            return Err(out("other identifiers than the order's validated ones"));
        }
        if known.profile != profile {
            return Err(out("another profile"));
        }
        if known.end_date <= now {
            return Err(out("end-date has passed"));
        }
        Ok(known)
    }
}

#[cfg(test)]
mod tests {
    use shared_proto::Identifier;

    use super::*;

    fn request(order: &str, names: &[&str], account: &str) -> IssueRequest {
        IssueRequest {
            csr_der: Vec::new(),
            identifiers: names.iter().map(|n| Identifier::dns(n)).collect(),
            not_before: None,
            not_after: None,
            account_uri: account.to_owned(),
            order_id: order.to_owned(),
            statements: Vec::new(),
            profile: None,
            processing_since: None,
            star: None,
        }
    }

    fn terms(end_date: i64) -> StarTerms {
        StarTerms {
            end_date,
            lifetime_secs: 3600,
            lifetime_adjust_secs: 60,
            reissue: false,
        }
    }

    #[test]
    fn a_reissue_is_checked_against_the_record() {
        let mut book = StarBook::new();
        let first = request("o1", &["b.example", "a.example"], "acct1");
        let rec = book
            .check_first(&first, &terms(10_000), "p", 100)
            .expect("first");
        assert_eq!(rec.identifiers, ["dns:a.example", "dns:b.example"]);
        book.insert("o1", rec.clone());
        // Same names in another order: accepted.
        let same = request("o1", &["a.example", "b.example"], "acct1");
        assert_eq!(book.check_reissue(&same, "p", 200), Ok(&rec));
        let refused = |r: &IssueRequest, profile: &str, now: i64| {
            book.check_reissue(r, profile, now).expect_err("refused")
        };
        assert!(matches!(
            refused(&request("o2", &["a.example", "b.example"], "acct1"), "p", 200),
            PolicyRefusal::StarUnknownOrder(o) if o == "o2"
        ));
        for (r, profile, now) in [
            (
                request("o1", &["a.example", "b.example"], "acct2"),
                "p",
                200,
            ),
            (
                request("o1", &["a.example", "c.example"], "acct1"),
                "p",
                200,
            ),
            (request("o1", &["a.example"], "acct1"), "p", 200),
            (same.clone(), "q", 200),
            (same.clone(), "p", 10_000),
        ] {
            assert!(matches!(
                refused(&r, profile, now),
                PolicyRefusal::StarOutOfScope { .. }
            ));
        }
        // Recorded again with other terms: refused; with the same: fine.
        assert!(book.check_first(&same, &terms(20_000), "p", 100).is_err());
        assert!(book.check_first(&same, &terms(10_000), "p", 100).is_ok());
        book.prune(10_000);
        assert!(book.is_empty());
    }

    #[test]
    fn bad_terms_are_refused() {
        let r = request("o1", &["a.example"], "acct1");
        let book = StarBook::new();
        for t in [
            StarTerms {
                lifetime_secs: 0,
                ..terms(1000)
            },
            StarTerms {
                lifetime_adjust_secs: -1,
                ..terms(1000)
            },
            terms(100),
        ] {
            assert!(book.check_first(&r, &t, "p", 100).is_err(), "{t:?}");
        }
    }
}
