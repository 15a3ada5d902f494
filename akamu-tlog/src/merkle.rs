//! RFC 9162 §2.1 Merkle tree hashing, inclusion and consistency proofs.
//!
//! A leaf's hash is SHA-256(0x00 ‖ entry), a node's SHA-256(0x01 ‖ left ‖
//! right); the hash of an empty tree is SHA-256 of nothing. [`Tree`] keeps
//! the hash of every complete subtree (level `h` holds the subtrees of
//! 2^h leaves, left to right), from which tiles, roots and proofs are read
//! without rehashing entries.

use openssl::sha::Sha256;

/// A SHA-256 hash.
pub type Hash = [u8; 32];

/// RFC 9162 §2.1.1: the hash of a leaf holding `entry`.
pub fn leaf_hash(entry: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update(&[0x00]);
    h.update(entry);
    h.finish()
}

/// RFC 9162 §2.1.1: the hash of an interior node.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update(&[0x01]);
    h.update(left);
    h.update(right);
    h.finish()
}

/// The hash of the empty tree, SHA-256 of the empty string.
pub fn empty_root() -> Hash {
    Sha256::new().finish()
}

/// The largest power of two strictly below `n` (`n` ≥ 2).
fn split(n: u64) -> u64 {
    1 << (63 - (n - 1).leading_zeros())
}

/// Why a proof does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// The sizes or the index make no sense together.
    #[error("bad proof request: {0}")]
    Bounds(&'static str),
    /// The proof has the wrong number of hashes.
    #[error("proof has the wrong length")]
    Length,
    /// The hashes do not lead to the expected root(s).
    #[error("proof does not lead to the expected root")]
    Mismatch,
}

/// The hashes of every complete subtree of an append-only list of leaves.
#[derive(Clone, Debug, Default)]
pub struct Tree {
    /// `levels[h][i]`: the hash of leaves `i·2^h .. (i+1)·2^h`.
    levels: Vec<Vec<Hash>>,
}

impl Tree {
    /// An empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// A tree of the given leaf hashes.
    pub fn from_leaf_hashes(leaves: impl IntoIterator<Item = Hash>) -> Self {
        let mut t = Self::new();
        for l in leaves {
            t.push(l);
        }
        t
    }

    /// The number of leaves.
    pub fn size(&self) -> u64 {
        self.levels.first().map_or(0, |l| l.len() as u64)
    }

    /// Appends a leaf hash; returns its index.
    pub fn push(&mut self, leaf: Hash) -> u64 {
        let index = self.size();
        let mut h = 0;
        let mut hash = leaf;
        loop {
            if self.levels.len() == h {
                self.levels.push(Vec::new());
            }
            let level = &mut self.levels[h];
            level.push(hash);
            if level.len() % 2 == 1 {
                break;
            }
            hash = node_hash(&level[level.len() - 2], &level[level.len() - 1]);
            h += 1;
        }
        index
    }

    /// The complete subtrees of height `height`, left to right (the hashes
    /// a tile of that level holds).
    pub fn level(&self, height: usize) -> &[Hash] {
        self.levels.get(height).map_or(&[], Vec::as_slice)
    }

    /// The hash of leaf `index`.
    pub fn leaf(&self, index: u64) -> Option<Hash> {
        self.level(0).get(usize::try_from(index).ok()?).copied()
    }

    /// MTH(D[a:b]) for `a < b ≤ size`, from the complete subtrees.
    fn range(&self, a: u64, b: u64) -> Hash {
        let n = b - a;
        if n.is_power_of_two() && a.is_multiple_of(n) {
            let h = n.trailing_zeros() as usize;
            return self.levels[h][(a >> h) as usize];
        }
        let k = split(n);
        node_hash(&self.range(a, a + k), &self.range(a + k, b))
    }

    /// The root of the first `size` leaves (`size ≤ self.size()`).
    pub fn root_at(&self, size: u64) -> Result<Hash, ProofError> {
        if size > self.size() {
            return Err(ProofError::Bounds("size beyond the tree"));
        }
        Ok(if size == 0 {
            empty_root()
        } else {
            self.range(0, size)
        })
    }

    /// The root of the whole tree.
    pub fn root(&self) -> Hash {
        self.root_at(self.size()).unwrap_or_else(|_| empty_root())
    }

    /// RFC 9162 §2.1.3.1: the inclusion proof of leaf `index` in the tree
    /// of the first `size` leaves.
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>, ProofError> {
        if index >= size || size > self.size() {
            return Err(ProofError::Bounds("index or size beyond the tree"));
        }
        let mut proof = Vec::new();
        self.path(index, 0, size, &mut proof);
        Ok(proof)
    }

    fn path(&self, m: u64, a: u64, b: u64, out: &mut Vec<Hash>) {
        let n = b - a;
        if n == 1 {
            return;
        }
        let k = split(n);
        if m - a < k {
            self.path(m, a, a + k, out);
            out.push(self.range(a + k, b));
        } else {
            self.path(m, a + k, b, out);
            out.push(self.range(a, a + k));
        }
    }

    /// RFC 9162 §2.1.4.1: the consistency proof between the trees of the
    /// first `old` and the first `new` leaves.
    pub fn consistency_proof(&self, old: u64, new: u64) -> Result<Vec<Hash>, ProofError> {
        if old > new || new > self.size() {
            return Err(ProofError::Bounds("sizes out of order or beyond the tree"));
        }
        let mut proof = Vec::new();
        if old > 0 && old < new {
            self.subproof(old, 0, new, true, &mut proof);
        }
        Ok(proof)
    }

    fn subproof(&self, m: u64, a: u64, b: u64, start: bool, out: &mut Vec<Hash>) {
        let n = b - a;
        if m == n {
            if !start {
                out.push(self.range(a, b));
            }
            return;
        }
        let k = split(n);
        if m <= k {
            self.subproof(m, a, a + k, start, out);
            out.push(self.range(a + k, b));
        } else {
            self.subproof(m - k, a + k, b, false, out);
            out.push(self.range(a, a + k));
        }
    }
}

/// RFC 9162 §2.1.3.2: checks that `leaf` is leaf `index` of the tree of
/// `size` leaves whose root is `root`.
pub fn verify_inclusion(
    leaf: &Hash,
    index: u64,
    size: u64,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), ProofError> {
    if index >= size {
        return Err(ProofError::Bounds("index beyond the tree"));
    }
    let (mut fnode, mut snode) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if snode == 0 {
            return Err(ProofError::Length);
        }
        if fnode & 1 == 1 || fnode == snode {
            r = node_hash(p, &r);
            while fnode & 1 == 0 && fnode != 0 {
                fnode >>= 1;
                snode >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    if snode != 0 {
        return Err(ProofError::Length);
    }
    if r != *root {
        return Err(ProofError::Mismatch);
    }
    Ok(())
}

/// RFC 9162 §2.1.4.2: checks that the tree of `old` leaves with root
/// `old_root` is a prefix of the tree of `new` leaves with root `new_root`.
pub fn verify_consistency(
    old: u64,
    new: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> Result<(), ProofError> {
    if old > new {
        return Err(ProofError::Bounds("the old tree is larger"));
    }
    if old == new {
        if !proof.is_empty() {
            return Err(ProofError::Length);
        }
        return if old_root == new_root {
            Ok(())
        } else {
            Err(ProofError::Mismatch)
        };
    }
    if old == 0 {
        // Every tree extends the empty one.
        return if proof.is_empty() {
            Ok(())
        } else {
            Err(ProofError::Length)
        };
    }
    let mut path: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if old.is_power_of_two() {
        path.push(*old_root);
    }
    path.extend_from_slice(proof);
    let Some((first, rest)) = path.split_first() else {
        return Err(ProofError::Length);
    };
    let (mut fnode, mut snode) = (old - 1, new - 1);
    while fnode & 1 == 1 {
        fnode >>= 1;
        snode >>= 1;
    }
    let (mut fr, mut sr) = (*first, *first);
    for c in rest {
        if snode == 0 {
            return Err(ProofError::Length);
        }
        if fnode & 1 == 1 || fnode == snode {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while fnode & 1 == 0 && fnode != 0 {
                fnode >>= 1;
                snode >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    if snode != 0 {
        return Err(ProofError::Length);
    }
    if fr != *old_root || sr != *new_root {
        return Err(ProofError::Mismatch);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hd(s: &str) -> Hash {
        let v = hex::decode(s).expect("hex");
        v.try_into().expect("32 bytes")
    }

    /// The leaves of the certificate-transparency reference test vectors
    /// (RFC 6962 / RFC 9162 implementations pin them).
    fn leaves() -> Vec<Vec<u8>> {
        [
            "",
            "00",
            "10",
            "2021",
            "3031",
            "40414243",
            "5051525354555657",
            "606162636465666768696a6b6c6d6e6f",
        ]
        .iter()
        .map(|s| hex::decode(s).expect("hex"))
        .collect()
    }

    const ROOTS: [&str; 9] = [
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ];

    fn tree() -> Tree {
        Tree::from_leaf_hashes(leaves().iter().map(|l| leaf_hash(l)))
    }

    #[test]
    fn roots_match_the_reference_vectors() {
        let t = tree();
        for (size, root) in ROOTS.iter().enumerate() {
            assert_eq!(
                t.root_at(size as u64).expect("root"),
                hd(root),
                "size {size}"
            );
        }
        assert_eq!(Tree::new().root(), hd(ROOTS[0]));
    }

    #[test]
    fn inclusion_proofs_match_the_reference_vectors() {
        let t = tree();
        let cases: [(u64, u64, &[&str]); 4] = [
            (0, 1, &[]),
            (
                0,
                8,
                &[
                    "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
                ],
            ),
            (
                5,
                8,
                &[
                    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                    "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
                ],
            ),
            (
                2,
                3,
                &["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"],
            ),
        ];
        for (index, size, want) in cases {
            let proof = t.inclusion_proof(index, size).expect("proof");
            let want: Vec<Hash> = want.iter().map(|s| hd(s)).collect();
            assert_eq!(proof, want, "leaf {index} of {size}");
            let leaf = t.leaf(index).expect("leaf");
            let root = t.root_at(size).expect("root");
            verify_inclusion(&leaf, index, size, &proof, &root).expect("verifies");
        }
    }

    #[test]
    fn consistency_proofs_match_the_reference_vectors() {
        let t = tree();
        let cases: [(u64, u64, &[&str]); 4] = [
            (1, 1, &[]),
            (
                1,
                8,
                &[
                    "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
                ],
            ),
            (
                6,
                8,
                &[
                    "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                    "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
                ],
            ),
            (
                2,
                5,
                &[
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                ],
            ),
        ];
        for (old, new, want) in cases {
            let proof = t.consistency_proof(old, new).expect("proof");
            let want: Vec<Hash> = want.iter().map(|s| hd(s)).collect();
            assert_eq!(proof, want, "{old} → {new}");
            let (r1, r2) = (t.root_at(old).expect("r1"), t.root_at(new).expect("r2"));
            verify_consistency(old, new, &r1, &r2, &proof).expect("verifies");
        }
    }

    #[test]
    fn every_proof_up_to_70_leaves_verifies_and_a_changed_hash_fails() {
        let t = Tree::from_leaf_hashes((0u32..70).map(|i| leaf_hash(&i.to_be_bytes())));
        for new in 1..=70u64 {
            let root = t.root_at(new).expect("root");
            for i in 0..new {
                let p = t.inclusion_proof(i, new).expect("incl");
                let leaf = t.leaf(i).expect("leaf");
                verify_inclusion(&leaf, i, new, &p, &root).expect("incl verifies");
                let wrong = t.leaf((i + 1) % 70).expect("other");
                assert!(verify_inclusion(&wrong, i, new, &p, &root).is_err());
            }
            for old in 0..=new {
                let p = t.consistency_proof(old, new).expect("cons");
                let old_root = t.root_at(old).expect("old root");
                verify_consistency(old, new, &old_root, &root, &p).expect("cons verifies");
                if old > 0 && old < new {
                    let forged = leaf_hash(b"fork");
                    assert_eq!(
                        verify_consistency(old, new, &forged, &root, &p),
                        Err(ProofError::Mismatch),
                        "{old} → {new}"
                    );
                }
            }
        }
    }
}
