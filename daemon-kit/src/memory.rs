//! Handing freed heap back to the system.
//!
//! glibc's malloc keeps memory a long-running server frees inside its
//! arenas: only the top of an arena is returned by itself, so a heap whose
//! free chunks lie between live ones grows in resident memory while the
//! memory in use stays flat. The frontend's one-hour soak showed exactly
//! that (`docs/src/reliability.md`: about 10 MB in use, 25 MB held, the
//! resident size rising with the work done); `malloc_trim(0)` gives the
//! free pages inside the arenas back (`madvise`), so the resident size
//! follows what is in use.

use std::time::Duration;

/// Returns the free pages of every malloc arena to the system; true when
/// some memory was released. Does nothing (false) where the C library is
/// not glibc.
pub fn release_free_memory() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: malloc_trim takes no pointer, touches only the
        // allocator's own free lists under each arena's lock, and glibc
        // documents it as safe to call from any thread at any time.
        #[allow(unsafe_code)]
        let released = unsafe { libc::malloc_trim(0) };
        released == 1
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}

/// Calls [`release_free_memory`] every `period`, on a blocking thread (a
/// trim walks every arena), forever.
pub async fn release_forever(period: Duration) {
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        // A failed join only means the blocking pool is shutting down.
        let _ = tokio::task::spawn_blocking(release_free_memory).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn freed_heap_goes_back_to_the_system() {
        fn rss_kb() -> u64 {
            std::fs::read_to_string("/proc/self/status")
                .ok()
                .and_then(|s| {
                    s.lines()
                        .find(|l| l.starts_with("VmRSS:"))
                        .and_then(|l| l.split_whitespace().nth(1))
                        .and_then(|v| v.parse().ok())
                })
                .unwrap_or(0)
        }
        // Fragment the heap: keep every other small block, free the rest,
        // so the freed memory lies between live blocks and is not at the
        // top of the heap (64 MiB in 64 KiB blocks, below the mmap
        // threshold; a freed block holds whole pages to give back).
        let mut blocks: Vec<Vec<u8>> = (0..1024).map(|i| vec![i as u8; 65_536]).collect();
        let kept: Vec<Vec<u8>> = blocks
            .iter_mut()
            .enumerate()
            .filter(|(i, _)| i % 2 == 0)
            .map(|(_, b)| std::mem::take(b))
            .collect();
        drop(blocks);
        let before = rss_kb();
        let released = release_free_memory();
        let after = rss_kb();
        assert!(kept.iter().all(|b| b.len() == 65_536));
        if cfg!(all(target_os = "linux", target_env = "gnu")) {
            assert!(released, "malloc_trim released nothing");
            assert!(
                before.saturating_sub(after) >= 16 * 1024,
                "resident size {before} KiB -> {after} KiB: less than 16 MiB of the 32 MiB freed went back"
            );
        }
    }
}
