//! One request at a time per request digest: two identical requests that
//! arrive together (a frontend retry racing the first attempt) never both
//! sign. The second waits for the first to finish, then finds its
//! certificate among the recent issuances (`crate::recent`).

use std::collections::HashSet;
use std::sync::{Condvar, Mutex, PoisonError};

/// The digests of the requests being worked on.
#[derive(Debug, Default)]
pub struct InFlight {
    digests: Mutex<HashSet<String>>,
    done: Condvar,
}

/// The turn of one request: while it lives, no other request with the
/// same digest proceeds. Dropping it (also on an error or a panic) lets
/// the next one in.
#[derive(Debug)]
pub struct Turn<'a> {
    set: &'a InFlight,
    digest: String,
}

impl InFlight {
    /// Waits until no request with `digest` is in flight, then takes the
    /// turn for it. Blocks the calling thread: call it from a blocking
    /// task.
    pub fn enter(&self, digest: &str) -> Turn<'_> {
        let guard = self.digests.lock().unwrap_or_else(PoisonError::into_inner);
        let mut guard = self
            .done
            .wait_while(guard, |set| set.contains(digest))
            .unwrap_or_else(PoisonError::into_inner);
        guard.insert(digest.to_owned());
        Turn {
            set: self,
            digest: digest.to_owned(),
        }
    }
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        self.set
            .digests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.digest);
        self.set.done.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn one_turn_per_digest_at_a_time() {
        let set = InFlight::default();
        let inside = AtomicUsize::new(0);
        let most = AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| {
                    for _ in 0..50 {
                        let _turn = set.enter("d");
                        let n = inside.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(n, Ordering::SeqCst);
                        std::thread::yield_now();
                        inside.fetch_sub(1, Ordering::SeqCst);
                    }
                });
            }
        });
        assert_eq!(most.load(Ordering::SeqCst), 1);
        // Different digests do not wait for each other.
        let _a = set.enter("a");
        let _b = set.enter("b");
    }
}
