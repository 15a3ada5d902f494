//! Anti-replay nonces (RFC 8555 §6.5), kept in memory: issuing one costs no
//! database write and no memory (a MAC'd counter; one bit per nonce of a
//! fixed window records redemption). A restart forgets them (a new key);
//! clients retry on `badNonce`.

use std::sync::Mutex;

use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::sign::Signer;
use rand::RngCore;

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
    key: PKey<Private>,
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
            // HMAC keys of any length are accepted; this cannot fail short
            // of an allocation failure inside openssl.
            key: PKey::hmac(&key).expect("an HMAC key from 32 random bytes"),
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
        let mut signer = Signer::new(MessageDigest::sha256(), &self.key).ok()?;
        signer.update(body).ok()?;
        let full = signer.sign_to_vec().ok()?;
        let mut mac = [0u8; MAC_LEN];
        mac.copy_from_slice(full.get(..MAC_LEN)?);
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
