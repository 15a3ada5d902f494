//! Anti-replay nonces (RFC 8555 §6.5), in one of two stores:
//!
//! - **memory** (one front end, the default): the set of issued, unused
//!   nonces; issuing and redeeming cost no database access. A restart
//!   forgets them; clients retry on `badNonce`.
//! - **database** (`[fleet] enabled`, several front ends): a nonce carries
//!   its issue time, a random part and a MAC under a key every front end
//!   reads from the database ([`SharedNonces`]), so handing one out costs
//!   no write and any front end recognises it; redeeming it inserts it into
//!   `used_nonces`, whose primary key refuses the second use at any front
//!   end, restarts included. Rows are pruned once their nonce is too old to
//!   be accepted anyway.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use rand::RngCore;

use crate::error::Error;
use crate::store::{self, Store};

/// How long an unused nonce stays valid, in seconds.
pub const NONCE_TTL_SECS: i64 = 3600;
/// Most outstanding nonces; the oldest are forgotten first.
pub const MAX_OUTSTANDING: usize = 200_000;

/// The set of issued, unused nonces.
#[derive(Default)]
pub struct NonceBook {
    inner: Mutex<Book>,
}

#[derive(Default)]
struct Book {
    live: HashMap<String, i64>,
    order: VecDeque<(String, i64)>,
}

impl NonceBook {
    /// Issues a fresh nonce at `now`.
    pub fn issue(&self, now: i64) -> String {
        let mut raw = [0u8; 16];
        rand::rng().fill_bytes(&mut raw);
        let nonce = akamu_jose::b64(&raw);
        let Ok(mut book) = self.inner.lock() else {
            // A poisoned lock only means another thread panicked mid-update;
            // an unrecorded nonce is refused later, which clients retry.
            return nonce;
        };
        book.prune(now);
        while book.order.len() >= MAX_OUTSTANDING {
            if let Some((old, _)) = book.order.pop_front() {
                book.live.remove(&old);
            }
        }
        book.live.insert(nonce.clone(), now);
        book.order.push_back((nonce.clone(), now));
        nonce
    }

    /// Consumes `nonce`: true once for a nonce we issued within the TTL.
    pub fn consume(&self, nonce: &str, now: i64) -> bool {
        let Ok(mut book) = self.inner.lock() else {
            return false;
        };
        match book.live.remove(nonce) {
            Some(issued) => now - issued < NONCE_TTL_SECS,
            None => false,
        }
    }
}

impl Book {
    /// Drops expired and already-consumed entries from the front.
    fn prune(&mut self, now: i64) {
        while let Some((n, at)) = self.order.front() {
            let expired = now - at >= NONCE_TTL_SECS;
            if !expired && self.live.contains_key(n) {
                break;
            }
            if expired {
                let n = n.clone();
                self.live.remove(&n);
            }
            self.order.pop_front();
        }
    }
}

/// Seconds a database nonce may be dated in the future (clocks of the
/// front ends differ a little).
pub const FUTURE_SKEW_SECS: i64 = 60;
/// How long after its nonce's acceptance ended a `used_nonces` row is kept:
/// a margin for front ends whose clocks are behind the pruner's.
pub const PRUNE_MARGIN_SECS: i64 = 300;

/// Bytes of a database nonce: issue time (8), random (8), MAC (16).
const SHARED_LEN: usize = 32;
/// Bytes of a database nonce that name it in `used_nonces`.
const ID_LEN: usize = 16;

/// Self-authenticating nonces under the fleet's shared key.
pub struct SharedNonces {
    key: Vec<u8>,
}

impl SharedNonces {
    /// Nonces under `key` (the fleet's, from `store::fleet::nonce_key`).
    pub fn new(key: Vec<u8>) -> Self {
        Self { key }
    }

    fn mac(&self, id: &[u8]) -> Option<Vec<u8>> {
        let mut mac = akamu_jose::hmac_sign("HS256", &self.key, id).ok()?;
        mac.truncate(SHARED_LEN - ID_LEN);
        Some(mac)
    }

    /// A fresh nonce issued at `now`.
    pub fn issue(&self, now: i64) -> String {
        let mut raw = [0u8; SHARED_LEN];
        raw[..8].copy_from_slice(&now.to_be_bytes());
        rand::rng().fill_bytes(&mut raw[8..ID_LEN]);
        match self.mac(&raw[..ID_LEN]) {
            Some(mac) => raw[ID_LEN..].copy_from_slice(&mac),
            // HMAC-SHA256 with a non-empty key does not fail; if it did,
            // the nonce is refused at redemption, which clients retry.
            None => rand::rng().fill_bytes(&mut raw[ID_LEN..]),
        }
        akamu_jose::b64(&raw)
    }

    /// Checks `nonce` at `now` without redeeming it: its id (for
    /// `used_nonces`) and the instant its acceptance ends, when it is ours
    /// (MAC) and within its lifetime.
    pub fn check(&self, nonce: &str, now: i64) -> Option<(Vec<u8>, i64)> {
        let raw = akamu_jose::b64_decode(nonce).ok()?;
        if raw.len() != SHARED_LEN {
            return None;
        }
        let (id, mac) = raw.split_at(ID_LEN);
        let expected = self.mac(id)?;
        if !openssl::memcmp::eq(&expected, mac) {
            return None;
        }
        let mut at = [0u8; 8];
        at.copy_from_slice(&id[..8]);
        let issued = i64::from_be_bytes(at);
        let fresh = issued <= now.saturating_add(FUTURE_SKEW_SECS)
            && now.saturating_sub(issued) < NONCE_TTL_SECS;
        fresh.then(|| (id.to_vec(), issued.saturating_add(NONCE_TTL_SECS)))
    }
}

/// Where nonces are kept: this process's memory, or the database.
pub enum Nonces {
    /// One front end.
    Memory(NonceBook),
    /// Several front ends on one database.
    Database(SharedNonces),
}

impl Nonces {
    /// Issues a fresh nonce at `now`.
    pub fn issue(&self, now: i64) -> String {
        match self {
            Self::Memory(book) => book.issue(now),
            Self::Database(shared) => shared.issue(now),
        }
    }

    /// Redeems `nonce` at `now`: true once for a nonce any front end of
    /// this database issued within its lifetime, false afterwards.
    pub async fn consume(&self, store: &Store, nonce: &str, now: i64) -> Result<bool, Error> {
        match self {
            Self::Memory(book) => Ok(book.consume(nonce, now)),
            Self::Database(shared) => {
                let Some((id, expires)) = shared.check(nonce, now) else {
                    return Ok(false);
                };
                store
                    .run(move |c| store::fleet::redeem_nonce(c, &id, expires))
                    .await
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_nonces_carry_their_time_and_a_mac() {
        let a = SharedNonces::new(vec![1u8; 32]);
        let n = a.issue(1_000);
        assert_eq!(n.len(), 43);
        assert_ne!(n, a.issue(1_000), "random part");
        let (id, expires) = a.check(&n, 1_001).expect("accepted");
        assert_eq!(id.len(), ID_LEN);
        assert_eq!(expires, 1_000 + NONCE_TTL_SECS);
        // Another front end with the same key accepts it; another key not.
        assert!(SharedNonces::new(vec![1u8; 32]).check(&n, 1_001).is_some());
        assert!(SharedNonces::new(vec![2u8; 32]).check(&n, 1_001).is_none());
        // Too old, or from too far in the future.
        assert!(a.check(&n, 1_000 + NONCE_TTL_SECS).is_none());
        assert!(a.check(&n, 1_000 - FUTURE_SKEW_SECS - 1).is_none());
        assert!(a.check(&n, 1_000 - FUTURE_SKEW_SECS).is_some());
        // Tampered: another time under the old MAC, a flipped bit, junk.
        let mut raw = akamu_jose::b64_decode(&n).expect("b64");
        raw[7] ^= 1;
        assert!(a.check(&akamu_jose::b64(&raw), 1_001).is_none());
        raw[7] ^= 1;
        raw[31] ^= 0x80;
        assert!(a.check(&akamu_jose::b64(&raw), 1_001).is_none());
        assert!(a.check("not base64 !", 1_001).is_none());
        assert!(a.check(&akamu_jose::b64(&[0u8; 31]), 1_001).is_none());
        // A memory-store nonce is not a database nonce.
        assert!(a.check(&NonceBook::default().issue(1_000), 1_001).is_none());
    }

    #[tokio::test]
    async fn a_database_nonce_is_redeemed_once_by_any_front_end() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("n.db");
        let one = Store::open(&path).expect("open");
        let two = Store::open(&path).expect("open again");
        // Both front ends end up with the key the first one stored.
        let k1 = one
            .run(|c| store::fleet::nonce_key(c, &[1u8; 32]))
            .await
            .expect("key");
        let k2 = two
            .run(|c| store::fleet::nonce_key(c, &[2u8; 32]))
            .await
            .expect("key");
        assert_eq!(k1, k2);
        let a = Nonces::Database(SharedNonces::new(k1));
        let b = Nonces::Database(SharedNonces::new(k2));
        let n = a.issue(5_000);
        assert!(b.consume(&two, &n, 5_001).await.expect("redeem"));
        assert!(!b.consume(&two, &n, 5_001).await.expect("replay at B"));
        assert!(!a.consume(&one, &n, 5_002).await.expect("replay at A"));
        // Pruning keeps rows until their nonce is out of its lifetime.
        let pruned = one
            .run(|c| store::fleet::prune_nonces(c, 5_000 + NONCE_TTL_SECS, 100))
            .await
            .expect("prune");
        assert_eq!(pruned, 0);
        assert!(!a.consume(&one, &n, 5_003).await.expect("still refused"));
        let pruned = one
            .run(|c| store::fleet::prune_nonces(c, 5_001 + NONCE_TTL_SECS, 100))
            .await
            .expect("prune");
        assert_eq!(pruned, 1);
        assert!(
            !a.consume(&one, &n, 5_001 + NONCE_TTL_SECS)
                .await
                .expect("expired")
        );
    }

    #[test]
    fn single_use_and_expiry() {
        let book = NonceBook::default();
        let n = book.issue(100);
        assert!(book.consume(&n, 101));
        assert!(!book.consume(&n, 101), "replay");
        let old = book.issue(100);
        assert!(!book.consume(&old, 100 + NONCE_TTL_SECS));
        assert!(!book.consume("never-issued", 100));
    }

    #[test]
    fn nonces_are_distinct() {
        let book = NonceBook::default();
        let a = book.issue(1);
        let b = book.issue(1);
        assert_ne!(a, b);
        assert_eq!(a.len(), 22);
    }
}
