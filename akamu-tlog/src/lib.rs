//! The formats of Akāmu's transparency log, with no I/O: the signer builds
//! the log with them, the frontend checks tile paths with them, and
//! `akamu-cli log` verifies what the frontend serves with them.
//!
//! * [`merkle`]: RFC 9162 §2.1 hashing, the tree of complete subtrees,
//!   inclusion and consistency proofs and their verification.
//! * [`tile`]: C2SP `tlog-tiles` paths, hash tiles and entry bundles.
//! * [`note`]: C2SP `tlog-checkpoint` bodies and C2SP `signed-note`
//!   Ed25519 signatures and verifier keys.
//!
//! Each entry of the log is the DER of one certificate the signer signed.

pub mod merkle;
pub mod note;
pub mod tile;

pub use merkle::{Hash, Tree, leaf_hash};
pub use note::{Checkpoint, NoteSigner, NoteVerifier};
pub use tile::{TileKind, TilePath};

/// The log's origin for a frontend whose public base URL is `base_url`:
/// the URL without its scheme, followed by `/log` (C2SP origins are
/// schema-less URLs), e.g. `acme.example.com/log`.
pub fn default_origin(base_url: &str) -> String {
    let rest = base_url
        .split_once("://")
        .map_or(base_url, |(_, rest)| rest)
        .trim_end_matches('/');
    format!("{rest}/log")
}
