//! Order, authorization and challenge transitions (RFC 8555 §7.1.6).
//!
//! The stored status of an order is only a starting point: what clients see
//! is derived from it, its authorizations and the clock ([`order_status`]),
//! as Boulder's `statusForOrder` does.

use super::{AuthzStatus, ChallengeStatus, OrderStatus};
use crate::error::Error;

/// An authorization's status as of `now`: a pending or valid authorization
/// past its expiry is `expired`.
pub fn authz_status(stored: AuthzStatus, expires: i64, now: i64) -> AuthzStatus {
    match stored {
        AuthzStatus::Pending | AuthzStatus::Valid if now >= expires => AuthzStatus::Expired,
        other => other,
    }
}

/// An order's status as of `now`, from its stored status and its
/// authorizations' current statuses.
pub fn order_status(
    stored: OrderStatus,
    expires: i64,
    authzs: &[AuthzStatus],
    now: i64,
) -> OrderStatus {
    match stored {
        OrderStatus::Valid | OrderStatus::Invalid | OrderStatus::Processing => return stored,
        OrderStatus::Pending | OrderStatus::Ready => {}
    }
    if now >= expires {
        return OrderStatus::Invalid;
    }
    if authzs.iter().any(|a| {
        matches!(
            a,
            AuthzStatus::Invalid
                | AuthzStatus::Deactivated
                | AuthzStatus::Expired
                | AuthzStatus::Revoked
        )
    }) {
        return OrderStatus::Invalid;
    }
    stored_order_status(authzs)
}

/// The status of a live (unexpired, not failed) order whose authorizations
/// have these statuses: `ready` once every one is valid, else `pending`.
/// The one place that decides "all authorizations valid ⇒ order ready":
/// new orders, the validation cascade and [`order_status`] all ask it.
pub fn stored_order_status(authzs: &[AuthzStatus]) -> OrderStatus {
    if !authzs.is_empty() && authzs.iter().all(|a| *a == AuthzStatus::Valid) {
        OrderStatus::Ready
    } else {
        OrderStatus::Pending
    }
}

/// What a `{}` POST to a challenge does (RFC 8555 §7.5.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChallengeTrigger {
    /// Start validation: the challenge goes to `processing`.
    Start,
    /// Nothing to do; return the challenge as it is (already processing,
    /// valid or invalid).
    AsIs,
}

/// Decides what a challenge response does, given the challenge and its
/// authorization as of `now`.
pub fn trigger_challenge(
    challenge: ChallengeStatus,
    authz: AuthzStatus,
) -> Result<ChallengeTrigger, Error> {
    match (challenge, authz) {
        (ChallengeStatus::Pending, AuthzStatus::Pending) => Ok(ChallengeTrigger::Start),
        (ChallengeStatus::Pending, other) => Err(Error::Malformed(format!(
            "the authorization is {other}; its challenges can no longer be answered"
        ))),
        _ => Ok(ChallengeTrigger::AsIs),
    }
}

/// The statuses a validation result leads to: challenge, then authorization
/// (RFC 8555 §7.1.6). The order follows by [`order_status`].
pub fn after_validation(ok: bool) -> (ChallengeStatus, AuthzStatus) {
    if ok {
        (ChallengeStatus::Valid, AuthzStatus::Valid)
    } else {
        (ChallengeStatus::Invalid, AuthzStatus::Invalid)
    }
}

/// Checks that an order in `status` may be finalized (RFC 8555 §7.4).
pub fn check_finalizable(status: OrderStatus) -> Result<(), Error> {
    if status == OrderStatus::Ready {
        Ok(())
    } else {
        Err(Error::OrderNotReady(format!(
            "order is {status}; it can be finalized only when ready"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use AuthzStatus as A;
    use OrderStatus as O;

    #[test]
    fn order_status_table() {
        let now = 1_000;
        let later = 2_000;
        let cases: &[(O, i64, &[A], O)] = &[
            (O::Pending, later, &[A::Pending, A::Valid], O::Pending),
            (O::Pending, later, &[A::Valid, A::Valid], O::Ready),
            (O::Pending, later, &[A::Valid, A::Invalid], O::Invalid),
            (O::Pending, later, &[A::Deactivated], O::Invalid),
            (O::Pending, later, &[A::Expired, A::Valid], O::Invalid),
            (O::Ready, later, &[A::Valid], O::Ready),
            (O::Pending, now, &[A::Valid], O::Invalid),
            (O::Processing, now, &[A::Valid], O::Processing),
            (O::Valid, now, &[A::Expired], O::Valid),
            (O::Invalid, later, &[A::Valid], O::Invalid),
            (O::Pending, later, &[], O::Pending),
        ];
        for (stored, expires, authzs, want) in cases {
            assert_eq!(
                order_status(*stored, *expires, authzs, now),
                *want,
                "{stored} {authzs:?}"
            );
        }
    }

    #[test]
    fn authz_expiry() {
        assert_eq!(authz_status(A::Valid, 10, 10), A::Expired);
        assert_eq!(authz_status(A::Pending, 10, 9), A::Pending);
        assert_eq!(authz_status(A::Invalid, 10, 20), A::Invalid);
    }

    #[test]
    fn challenge_trigger_table() {
        use ChallengeStatus as C;
        assert_eq!(
            trigger_challenge(C::Pending, A::Pending).ok(),
            Some(ChallengeTrigger::Start)
        );
        assert_eq!(
            trigger_challenge(C::Processing, A::Pending).ok(),
            Some(ChallengeTrigger::AsIs)
        );
        assert_eq!(
            trigger_challenge(C::Valid, A::Valid).ok(),
            Some(ChallengeTrigger::AsIs)
        );
        assert!(trigger_challenge(C::Pending, A::Valid).is_err());
        assert!(trigger_challenge(C::Pending, A::Expired).is_err());
    }

    #[test]
    fn finalize_only_when_ready() {
        assert!(check_finalizable(O::Ready).is_ok());
        for s in [O::Pending, O::Processing, O::Valid, O::Invalid] {
            assert!(matches!(check_finalizable(s), Err(Error::OrderNotReady(_))));
        }
    }
}
