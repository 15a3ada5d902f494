//! Anti-replay nonces (RFC 8555 §6.5), kept in memory: issuing one costs no
//! database write. A restart forgets them; clients retry on `badNonce`.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use rand::RngCore;

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

#[cfg(test)]
mod tests {
    use super::*;

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
