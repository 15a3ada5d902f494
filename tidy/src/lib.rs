//! Helpers for the workspace's tidy tests (`tests/tidy.rs`), which turn the
//! **Invariant:** lines of ARCHITECTURE.md into checks that run under
//! `cargo test` (rust-analyzer's "tidy" tests, STYLE example 17).
//!
//! * [`files`] finds the workspace, its members and their files.
//! * [`rust_source`] is a small Rust lexer: comments and literals blanked,
//!   `#[cfg(test)]` items blanked, tokens with line numbers.
//! * [`markdown`] extracts links and heading anchors (GitHub-style slugs).
//! * [`cargo`] reads manifests and `Cargo.lock` (direct and transitive
//!   dependencies).
//! * [`wire`] traces serde formats with serde-reflection and renders them as a
//!   stable text whose SHA-256 is the wire fingerprint.
//!
//! The checks themselves, and the lists they enforce, live in
//! `tests/tidy.rs`.

pub mod cargo;
pub mod files;
pub mod markdown;
pub mod rust_source;
pub mod wire;

/// One broken invariant: where, and what was found there.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Violation {
    /// The file, relative to the workspace root, with `/` separators.
    pub path: String,
    /// The 1-based line, or 0 when the finding is about the whole file.
    pub line: usize,
    /// What was found.
    pub found: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.path, self.found)
        } else {
            write!(f, "{}:{}: {}", self.path, self.line, self.found)
        }
    }
}

/// Panics with `invariant` and one line per violation unless `violations` is
/// empty.
#[track_caller]
pub fn assert_none(invariant: &str, violations: &[Violation]) {
    if violations.is_empty() {
        return;
    }
    let mut message = format!("invariant broken: {invariant}\n");
    for v in violations {
        message.push_str(&format!("  {v}\n"));
    }
    panic!("{message}");
}
