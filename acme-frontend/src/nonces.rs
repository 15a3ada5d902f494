//! Anti-replay nonces (RFC 8555 §6.5), in one of two stores:
//!
//! - **memory** (one front end, the default): [`NonceBook`]; issuing one
//!   costs no database write and no memory (a MAC'd counter; one bit per
//!   nonce of a fixed window records redemption). A restart forgets them
//!   (a new key); clients retry on `badNonce`.
//! - **database** (`[fleet] enabled`, several front ends): a nonce carries
//!   its issue time, a random part and a MAC under a key every front end
//!   reads from the database ([`SharedNonces`]), so handing one out costs
//!   no write and any front end recognises it; redeeming it inserts it into
//!   `used_nonces`, whose primary key refuses the second use at any front
//!   end, restarts included. Rows are pruned once their nonce is too old to
//!   be accepted anyway.

use std::sync::Mutex;

use rand::RngCore;
use ring::hmac;

use crate::error::Error;
use crate::store::{self, Store};

/// How long an unused nonce stays valid, in seconds.
pub const NONCE_TTL_SECS: i64 = 3600;
/// How many of the most recently issued nonces can still be redeemed: the
/// window of the redemption bitmap (one bit per nonce, 512 KiB). A nonce
/// that many issuances old is refused even inside its TTL (clients retry on
/// `badNonce`); at a thousand nonces a second that is more than an hour.
pub const WINDOW: u64 = 1 << 22;

/// Bytes of a nonce: issue time (4, seconds), counter (8), MAC (12).
const NONCE_LEN: usize = 24;
/// The MAC's bytes (HMAC-SHA256, truncated).
const MAC_LEN: usize = 12;
/// Bits per word of the bitmap.
const WORD_BITS: u64 = 64;

/// Issued nonces and which of them were redeemed, in fixed memory.
///
/// A nonce is its issue time, a counter and a MAC over both under a key
/// drawn at start, so it is unpredictable (RFC 8555 §6.5) and needs no
/// entry to be recognised; the only state is one bit per nonce of the last
/// [`WINDOW`] issued, set when it is redeemed. Memory does not grow with
/// the nonces handed out, whether or not clients use them.
pub struct NonceBook {
    key: hmac::Key,
    inner: Mutex<Window>,
}

/// The redemption bitmap: bit `c % WINDOW` stands for counter `c` while
/// `low <= c < next`.
struct Window {
    /// The counter of the next nonce to issue.
    next: u64,
    /// The oldest counter still redeemable.
    low: u64,
    bits: Vec<u64>,
}

impl Default for NonceBook {
    fn default() -> Self {
        let mut key = [0u8; 32];
        rand::rng().fill_bytes(&mut key);
        Self {
            // The key's inner and outer hash states are computed once here,
            // so a MAC costs two SHA-256 blocks.
            key: hmac::Key::new(hmac::HMAC_SHA256, &key),
            inner: Mutex::new(Window {
                next: 0,
                low: 0,
                bits: vec![0; (WINDOW / WORD_BITS) as usize],
            }),
        }
    }
}

impl NonceBook {
    fn mac(&self, body: &[u8]) -> Option<[u8; MAC_LEN]> {
        let full = hmac::sign(&self.key, body);
        let mut mac = [0u8; MAC_LEN];
        mac.copy_from_slice(full.as_ref().get(..MAC_LEN)?);
        Some(mac)
    }

    /// Issues a fresh nonce at `now`.
    pub fn issue(&self, now: i64) -> String {
        let counter = {
            let mut window = self.inner.lock().unwrap_or_else(|p| p.into_inner());
            window.advance()
        };
        let mut raw = [0u8; NONCE_LEN];
        raw[..4].copy_from_slice(&(now.clamp(0, u32::MAX as i64) as u32).to_be_bytes());
        raw[4..12].copy_from_slice(&counter.to_be_bytes());
        match self.mac(&raw[..12]) {
            Some(mac) => raw[12..].copy_from_slice(&mac),
            // HMAC-SHA256 does not fail with a valid key; if it did, the
            // nonce would be refused at redemption, which clients retry.
            None => rand::rng().fill_bytes(&mut raw[12..]),
        }
        akamu_jose::b64(&raw)
    }

    /// Consumes `nonce`: true once for a nonce we issued within the TTL
    /// and the window, false for anything else and every later time.
    pub fn consume(&self, nonce: &str, now: i64) -> bool {
        let Ok(raw) = akamu_jose::b64_decode(nonce) else {
            return false;
        };
        if raw.len() != NONCE_LEN {
            return false;
        }
        let Some(expected) = self.mac(&raw[..12]) else {
            return false;
        };
        if !openssl::memcmp::eq(&expected, &raw[12..]) {
            return false;
        }
        let mut at = [0u8; 4];
        at.copy_from_slice(&raw[..4]);
        let issued = i64::from(u32::from_be_bytes(at));
        if issued > now || now - issued >= NONCE_TTL_SECS {
            return false;
        }
        let mut counter = [0u8; 8];
        counter.copy_from_slice(&raw[4..12]);
        let counter = u64::from_be_bytes(counter);
        let mut window = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        window.redeem(counter)
    }
}

impl Window {
    /// The next counter; the window slides a word when it is full.
    fn advance(&mut self) -> u64 {
        let counter = self.next;
        self.next += 1;
        while self.next - self.low > WINDOW {
            // Forget the oldest word: its nonces are no longer redeemable.
            let word = ((self.low % WINDOW) / WORD_BITS) as usize;
            self.bits[word] = 0;
            self.low += WORD_BITS - self.low % WORD_BITS;
        }
        counter
    }

    /// Marks `counter` redeemed: true the first time, inside the window.
    fn redeem(&mut self, counter: u64) -> bool {
        if counter < self.low || counter >= self.next {
            return false;
        }
        let slot = counter % WINDOW;
        let (word, bit) = ((slot / WORD_BITS) as usize, 1u64 << (slot % WORD_BITS));
        let Some(w) = self.bits.get_mut(word) else {
            return false;
        };
        let fresh = *w & bit == 0;
        *w |= bit;
        fresh
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
    key: hmac::Key,
}

impl SharedNonces {
    /// Nonces under `key` (the fleet's, from `store::fleet::nonce_key`).
    pub fn new(key: Vec<u8>) -> Self {
        Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, &key),
        }
    }

    fn mac(&self, id: &[u8]) -> Option<Vec<u8>> {
        let full = hmac::sign(&self.key, id);
        Some(full.as_ref().get(..SHARED_LEN - ID_LEN)?.to_vec())
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
        assert_eq!(a.len(), 32);
    }

    #[test]
    fn forged_and_altered_nonces_are_refused() {
        let book = NonceBook::default();
        let n = book.issue(100);
        let mut raw = akamu_jose::b64_decode(&n).unwrap();
        raw[11] ^= 1; // another counter under the same MAC
        assert!(!book.consume(&akamu_jose::b64(&raw), 100));
        let other = NonceBook::default().issue(100);
        assert!(!book.consume(&other, 100), "another book's key");
        assert!(!book.consume(&n[..31], 100), "truncated");
        assert!(book.consume(&n, 100), "the original is intact");
    }

    #[test]
    fn issued_in_the_future_is_refused() {
        let book = NonceBook::default();
        let n = book.issue(200);
        assert!(!book.consume(&n, 199));
        assert!(book.consume(&n, 200));
    }

    #[test]
    fn the_window_slides_and_memory_stays_fixed() {
        let book = NonceBook::default();
        let first = book.issue(1);
        let kept = book.issue(1);
        for _ in 0..WINDOW - 1 {
            book.inner.lock().unwrap().advance();
        }
        // `first` (counter 0) and the rest of its word left the window.
        assert!(!book.consume(&first, 2), "older than the window");
        let late = book.issue(1);
        assert!(book.consume(&late, 2));
        assert!(!book.consume(&late, 2), "replay");
        let window = book.inner.lock().unwrap();
        assert_eq!(window.bits.len() as u64, WINDOW / WORD_BITS);
        assert!(window.next - window.low <= WINDOW);
        drop(window);
        assert!(
            !book.consume(&kept, 2),
            "its word was forgotten with the first"
        );
    }

    #[test]
    fn unused_nonces_cost_nothing() {
        let book = NonceBook::default();
        let used = book.issue(1);
        for _ in 0..100_000 {
            book.issue(1);
        }
        assert!(book.consume(&used, 2), "still redeemable");
        assert!(!book.consume(&used, 2));
    }
}
