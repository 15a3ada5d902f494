//! Counting what a process asks of its heap, for the benchmark's
//! allocation figures (bytes requested per issuance, including what is
//! freed again) — the reference's "alloc pressure".
//!
//! [`Counting`] is the global allocator of the three daemons. It forwards
//! every call to the system allocator and, only while counting is on,
//! adds to three relaxed counters; off (the default) it costs one relaxed
//! load per call. Counting is turned on at start by `AKAMU_HEAP_STATS=1`
//! (acme-bench's `--heap-stats` sets it), not by configuration: it is a
//! measuring instrument, and its counters are shared by every thread, so
//! it costs CPU when on.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use shared_proto::metrics::HeapFigures;

/// The environment variable that turns counting on (`1`).
pub const ENV: &str = "AKAMU_HEAP_STATS";

static ON: AtomicBool = AtomicBool::new(false);
static ALLOCATED: AtomicU64 = AtomicU64::new(0);
static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);
static FREED: AtomicU64 = AtomicU64::new(0);

/// The system allocator, counting while [`enable_from_env`] turned it on.
pub struct Counting;

fn allocated(size: usize) {
    if ON.load(Ordering::Relaxed) {
        ALLOCATED.fetch_add(size as u64, Ordering::Relaxed);
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
    }
}

fn freed(size: usize) {
    if ON.load(Ordering::Relaxed) {
        FREED.fetch_add(size as u64, Ordering::Relaxed);
    }
}

// SAFETY: every method forwards its arguments unchanged to `System`, which
// upholds GlobalAlloc's contract; the counting touches only atomics (it
// never allocates, so it cannot recurse into the allocator).
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's guarantees for `layout` are System's.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            allocated(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as `alloc`.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            allocated(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by System (every allocation of this
        // allocator is) with `layout`, as the caller guarantees.
        unsafe { System.dealloc(ptr, layout) };
        freed(layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as `dealloc` for `ptr` and `layout`; `new_size` is the
        // caller's to uphold.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            // Counted as a new request of the new size and the old one
            // freed, as a copying reallocation would be.
            freed(layout.size());
            allocated(new_size);
        }
        p
    }
}

/// Turns counting on when `AKAMU_HEAP_STATS=1`; call first thing in `main`.
/// Returns whether it is on.
pub fn enable_from_env() -> bool {
    let on = std::env::var(ENV).is_ok_and(|v| v == "1");
    if on {
        ON.store(true, Ordering::Relaxed);
    }
    on
}

/// The counters since counting was turned on; `None` while it is off.
pub fn figures() -> Option<HeapFigures> {
    ON.load(Ordering::Relaxed).then(|| HeapFigures {
        allocated_bytes: ALLOCATED.load(Ordering::Relaxed),
        allocations: ALLOCATIONS.load(Ordering::Relaxed),
        freed_bytes: FREED.load(Ordering::Relaxed),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // The test binary's allocator is the system one: exercise `Counting`
    // directly.
    #[test]
    #[allow(unsafe_code)]
    fn counts_requests_and_frees_only_while_on() {
        let layout = Layout::from_size_align(1000, 8).expect("layout");
        // SAFETY: a non-zero layout; the pointer is freed with it below.
        let p = unsafe { Counting.alloc(layout) };
        assert!(!p.is_null());
        // SAFETY: allocated above with `layout`.
        unsafe { Counting.dealloc(p, layout) };
        assert!(figures().is_none(), "off by default");

        ON.store(true, Ordering::Relaxed);
        let before = figures().expect("on");
        // SAFETY: as above; the reallocation grows the block to 3000
        // bytes and it is freed with that size.
        unsafe {
            let p = Counting.alloc(layout);
            assert!(!p.is_null());
            let q = Counting.realloc(p, layout, 3000);
            assert!(!q.is_null());
            Counting.dealloc(q, Layout::from_size_align(3000, 8).expect("layout"));
        }
        let after = figures().expect("on");
        // Other tests of this binary run on other threads with the system
        // allocator, so only this test's calls are counted.
        assert_eq!(after.allocated_bytes - before.allocated_bytes, 4000);
        assert_eq!(after.allocations - before.allocations, 2);
        assert_eq!(after.freed_bytes - before.freed_bytes, 4000);
    }
}
