//! A counting global allocator: the largest single allocation request made
//! on the current thread since the last [`reset`], so a fuzz case can show
//! that no input makes a parser ask for memory in proportion to a length
//! field it read instead of to the bytes it was given.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

thread_local! {
    // Const-initialised and without a destructor: touching it never
    // allocates, so it is safe to use inside the allocator.
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

/// The system allocator, recording the largest request per thread.
pub(crate) struct Counting;

fn record(size: usize) {
    let _ = LARGEST.try_with(|largest| {
        if size > largest.get() {
            largest.set(size);
        }
    });
}

// SAFETY: every call is forwarded unchanged to `System`; the only extra work
// is a thread-local `Cell` update that neither allocates nor unwinds.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        record(layout.size());
        // SAFETY: the caller's contract for `alloc` is passed through.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        record(layout.size());
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        record(new_size);
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// Forgets the largest allocation seen on this thread.
pub(crate) fn reset() {
    LARGEST.with(|l| l.set(0));
}

/// The largest single allocation requested on this thread since [`reset`].
pub(crate) fn largest() -> usize {
    LARGEST.with(Cell::get)
}

#[test]
fn the_counter_sees_a_large_allocation() {
    reset();
    let v: Vec<u8> = Vec::with_capacity(64 << 20);
    assert!(largest() >= 64 << 20, "largest: {}", largest());
    drop(std::hint::black_box(v));
    reset();
    assert_eq!(largest(), 0);
}
