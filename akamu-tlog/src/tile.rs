//! C2SP tlog-tiles: tile paths, hash tiles read from a [`Tree`], and entry
//! bundles (each entry a big-endian uint16 length, then its bytes).
//!
//! A tile at level `L`, index `N` holds the hashes of the complete subtrees
//! of height `8·L` numbered `256·N ..`; it is full at 256 hashes, and a
//! partial tile of width `W` (1–255) is served as `<N>.p/<W>`. `N` is
//! written in groups of three digits, all but the last prefixed with `x`
//! (`1234067` → `x001/x234/067`).

use crate::merkle::{Hash, Tree};

/// Hashes (or entries) in a full tile.
pub const TILE_WIDTH: u64 = 256;
/// Tree levels per tile level.
pub const TILE_HEIGHT: usize = 8;
/// The highest tile level served (63 tree levels cover every `u64` size).
pub const MAX_LEVEL: u8 = 7;

/// What a tile path names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TileKind {
    /// A hash tile of this level.
    Hash(u8),
    /// An entry bundle.
    Entries,
}

/// One tile: kind, index and width (1–256; 256 is a full tile).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TilePath {
    /// Hash tile level, or entries.
    pub kind: TileKind,
    /// The tile's index in its level.
    pub index: u64,
    /// Number of hashes or entries (256 for a full tile).
    pub width: u16,
}

impl TilePath {
    /// Parses the part of a URL after `tile/`: `<L>/<N>[.p/<W>]` or
    /// `entries/<N>[.p/<W>]`. Anything else (leading zeros beyond the
    /// three-digit groups, a width outside 1–255, a level above
    /// [`MAX_LEVEL`]) is `None`.
    pub fn parse(rest: &str) -> Option<Self> {
        let (first, rest) = rest.split_once('/')?;
        let kind = if first == "entries" {
            TileKind::Entries
        } else {
            let level: u8 = digits(first, 1)?.try_into().ok()?;
            if level > MAX_LEVEL {
                return None;
            }
            TileKind::Hash(level)
        };
        let (index_part, width) = match rest.split_once(".p/") {
            Some((i, w)) => {
                let w = digits(w, 3)?;
                if !(1..=255).contains(&w) {
                    return None;
                }
                (i, u16::try_from(w).ok()?)
            }
            None => (rest, 256),
        };
        let groups: Vec<&str> = index_part.split('/').collect();
        let (last, init) = groups.split_last()?;
        let mut index: u64 = 0;
        for g in init {
            let g = g.strip_prefix('x')?;
            if g.len() != 3 {
                return None;
            }
            index = index.checked_mul(1000)?.checked_add(digits(g, 3)?)?;
        }
        if last.len() != 3 {
            return None;
        }
        index = index.checked_mul(1000)?.checked_add(digits(last, 3)?)?;
        let path = Self { kind, index, width };
        // One spelling per tile: no leading `x000` groups.
        (path.to_string() == format!("{first}/{rest}")).then_some(path)
    }

    /// Whether this is a full tile.
    pub fn is_full(&self) -> bool {
        u64::from(self.width) == TILE_WIDTH
    }
}

/// Decimal digits only, at most `max` of them.
fn digits(s: &str, max: usize) -> Option<u64> {
    if s.is_empty() || s.len() > max || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

impl std::fmt::Display for TilePath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.kind {
            TileKind::Hash(l) => write!(f, "{l}/")?,
            TileKind::Entries => f.write_str("entries/")?,
        }
        let mut groups = Vec::new();
        let mut n = self.index;
        loop {
            groups.push(n % 1000);
            n /= 1000;
            if n == 0 {
                break;
            }
        }
        for (i, g) in groups.iter().rev().enumerate() {
            if i + 1 < groups.len() {
                write!(f, "x{g:03}/")?;
            } else {
                write!(f, "{g:03}")?;
            }
        }
        if !self.is_full() {
            write!(f, ".p/{}", self.width)?;
        }
        Ok(())
    }
}

/// The tiles a client reads for a tree of `size` entries at tile `level`
/// (hash level, or entries when `None`): the full ones, then the partial
/// one, if any.
pub fn tiles_for_size(size: u64, kind: TileKind) -> Vec<TilePath> {
    let shift = match kind {
        TileKind::Hash(l) => TILE_HEIGHT * usize::from(l),
        TileKind::Entries => 0,
    };
    let count = if shift >= 64 { 0 } else { size >> shift };
    let full = count / TILE_WIDTH;
    let rest = count % TILE_WIDTH;
    let mut out: Vec<TilePath> = (0..full)
        .map(|index| TilePath {
            kind,
            index,
            width: 256,
        })
        .collect();
    if rest > 0 {
        out.push(TilePath {
            kind,
            index: full,
            // rest < 256.
            width: rest as u16,
        });
    }
    out
}

/// The hash tiles (every level) of a tree of `size` entries.
pub fn hash_tiles_for_size(size: u64) -> Vec<TilePath> {
    (0..=MAX_LEVEL)
        .flat_map(|l| tiles_for_size(size, TileKind::Hash(l)))
        .collect()
}

/// The bytes of hash tile `path` from `tree`, or `None` when the tree does
/// not (yet) have its hashes. An entry path is `None` too.
pub fn hash_tile(tree: &Tree, path: &TilePath) -> Option<Vec<u8>> {
    let TileKind::Hash(level) = path.kind else {
        return None;
    };
    let hashes = tree.level(TILE_HEIGHT * usize::from(level));
    let start = usize::try_from(path.index.checked_mul(TILE_WIDTH)?).ok()?;
    let end = start.checked_add(usize::from(path.width))?;
    let slice = hashes.get(start..end)?;
    Some(slice.iter().flat_map(|h| h.iter().copied()).collect())
}

/// The hashes of a hash tile's bytes (`None` if not a whole number).
pub fn split_hashes(bytes: &[u8]) -> Option<Vec<Hash>> {
    if !bytes.len().is_multiple_of(32) {
        return None;
    }
    Some(
        bytes
            .chunks_exact(32)
            .filter_map(|c| c.try_into().ok())
            .collect(),
    )
}

/// Appends one entry to a bundle (or to the log's file, which uses the
/// same encoding); `None` if it is longer than 65535 bytes.
pub fn push_entry(bundle: &mut Vec<u8>, entry: &[u8]) -> Option<()> {
    let len = u16::try_from(entry.len()).ok()?;
    bundle.extend_from_slice(&len.to_be_bytes());
    bundle.extend_from_slice(entry);
    Some(())
}

/// The entries of a bundle; `None` if it does not parse exactly.
pub fn split_entries(mut bundle: &[u8]) -> Option<Vec<&[u8]>> {
    let mut out = Vec::new();
    while !bundle.is_empty() {
        let (len, rest) = bundle.split_first_chunk::<2>()?;
        let len = usize::from(u16::from_be_bytes(*len));
        if rest.len() < len {
            return None;
        }
        let (entry, rest) = rest.split_at(len);
        out.push(entry);
        bundle = rest;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merkle::leaf_hash;

    #[test]
    fn paths_round_trip_in_the_c2sp_spelling() {
        for (text, kind, index, width) in [
            ("0/000", TileKind::Hash(0), 0, 256),
            ("1/x001/234.p/5", TileKind::Hash(1), 1234, 5),
            ("entries/x001/x234/067", TileKind::Entries, 1_234_067, 256),
            ("entries/255.p/255", TileKind::Entries, 255, 255),
        ] {
            let p = TilePath::parse(text).expect(text);
            assert_eq!((p.kind, p.index, p.width), (kind, index, width), "{text}");
            assert_eq!(p.to_string(), text);
        }
        for bad in [
            "0/0",
            "0/0000",
            "0/x000/001",
            "8/000",
            "0/000.p/0",
            "0/000.p/256",
            "0/000.p/05x",
            "0/001/002",
            "entries",
            "0/-01",
            "0/+01",
            "x/000",
            "entries/x1/000",
        ] {
            assert_eq!(TilePath::parse(bad), None, "{bad}");
        }
    }

    /// Trees of the sizes at the tile boundaries: every tile a client
    /// would read exists with the right width, its hashes are the tree's,
    /// and the level-1 hashes are the level-0 tiles' roots.
    #[test]
    fn tiles_at_the_boundaries() {
        let mut tree = Tree::new();
        let mut next = 0u32;
        for size in [0u64, 1, 255, 256, 257, 65_537] {
            while tree.size() < size {
                tree.push(leaf_hash(&next.to_be_bytes()));
                next += 1;
            }
            let tiles = hash_tiles_for_size(size);
            let level0: Vec<_> = tiles
                .iter()
                .filter(|t| t.kind == TileKind::Hash(0))
                .collect();
            let level1: Vec<_> = tiles
                .iter()
                .filter(|t| t.kind == TileKind::Hash(1))
                .collect();
            let level2: Vec<_> = tiles
                .iter()
                .filter(|t| t.kind == TileKind::Hash(2))
                .collect();
            assert_eq!(level0.len() as u64, size.div_ceil(256), "size {size}");
            assert_eq!(
                level1.len() as u64,
                (size / 256).div_ceil(256),
                "size {size}"
            );
            assert_eq!(
                level2.len() as u64,
                (size / 65_536).div_ceil(256),
                "size {size}"
            );
            let widths: Vec<u16> = level0.iter().map(|t| t.width).collect();
            match size {
                0 => assert!(widths.is_empty()),
                1 => assert_eq!(widths, [1]),
                255 => assert_eq!(widths, [255]),
                256 => assert_eq!(widths, [256]),
                257 => assert_eq!(widths, [256, 1]),
                _ => {
                    assert_eq!(widths.len(), 257);
                    assert_eq!(widths[256], 1);
                    assert_eq!(level1[0].width, 256);
                    assert_eq!(level2[0].width, 1);
                }
            }
            for t in &tiles {
                let bytes = hash_tile(&tree, t).expect("tile exists");
                assert_eq!(bytes.len(), 32 * usize::from(t.width), "{t}");
                if let TileKind::Hash(1) = t.kind {
                    // Each level-1 hash is the root of a full level-0 tile.
                    let hashes = split_hashes(&bytes).expect("hashes");
                    for (i, h) in hashes.iter().enumerate() {
                        let n = t.index * 256 + i as u64;
                        let leaves =
                            tree.level(0)[(n * 256) as usize..((n + 1) * 256) as usize].to_vec();
                        assert_eq!(*h, Tree::from_leaf_hashes(leaves).root());
                    }
                }
            }
            // A wider tile than the tree holds does not exist.
            let beyond = TilePath {
                kind: TileKind::Hash(0),
                index: size / 256,
                width: (size % 256) as u16 + 1,
            };
            assert_eq!(hash_tile(&tree, &beyond), None, "size {size}");
        }
    }

    #[test]
    fn entry_bundles_round_trip_and_refuse_damage() {
        let mut b = Vec::new();
        for e in [&b""[..], b"a", &[7u8; 300]] {
            push_entry(&mut b, e).expect("fits");
        }
        let entries = split_entries(&b).expect("parses");
        assert_eq!(entries.len(), 3);
        assert_eq!(entries[2].len(), 300);
        assert_eq!(split_entries(&b[..b.len() - 1]), None);
        assert!(push_entry(&mut b, &vec![0u8; 65_536]).is_none());
    }
}
