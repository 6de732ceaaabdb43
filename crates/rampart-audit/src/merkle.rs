//! RFC 9162 §2.1: the Merkle Tree Hash of a list of leaves, audit paths and consistency
//! proofs, and the verification algorithms of §2.1.3.2 and §2.1.4.2.
//!
//! Leaves are hashed with a 0x00 prefix and interior nodes with 0x01 (second-preimage
//! resistance: a leaf can never pass for a node). The tree over n leaves splits at the largest
//! power of two below n, so a tree only ever grows on its right: every earlier root stays
//! provable against every later one.

use sha2::{Digest, Sha256};

/// A SHA-256 hash.
pub type Hash = [u8; 32];

/// The hash of a leaf: SHA-256(0x00 ‖ entry).
pub fn leaf_hash(entry: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(entry);
    h.finalize().into()
}

/// The hash of an interior node: SHA-256(0x01 ‖ left ‖ right).
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The largest power of two smaller than `n` (n > 1).
fn split(n: usize) -> usize {
    debug_assert!(n > 1);
    let mut k = 1;
    while k << 1 < n {
        k <<= 1;
    }
    k
}

/// MTH(D[n]) over leaf hashes; the empty tree's is SHA-256 of nothing.
pub fn root(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => Sha256::digest([]).into(),
        1 => leaves[0],
        n => {
            let k = split(n);
            node_hash(&root(&leaves[..k]), &root(&leaves[k..]))
        }
    }
}

/// PATH(m, D[n]): the audit path of leaf `m` in the tree over `leaves`, or `None` when `m` is
/// not a leaf of it.
pub fn inclusion_proof(m: usize, leaves: &[Hash]) -> Option<Vec<Hash>> {
    if m >= leaves.len() {
        return None;
    }
    let mut path = Vec::new();
    path_into(m, leaves, &mut path);
    Some(path)
}

fn path_into(m: usize, leaves: &[Hash], out: &mut Vec<Hash>) {
    let n = leaves.len();
    if n <= 1 {
        return;
    }
    let k = split(n);
    if m < k {
        path_into(m, &leaves[..k], out);
        out.push(root(&leaves[k..]));
    } else {
        path_into(m - k, &leaves[k..], out);
        out.push(root(&leaves[..k]));
    }
}

/// PROOF(m, D[n]): that the tree over the first `m` leaves is a prefix of the tree over all
/// of `leaves`; `None` unless 0 < m ≤ n.
pub fn consistency_proof(m: usize, leaves: &[Hash]) -> Option<Vec<Hash>> {
    if m == 0 || m > leaves.len() {
        return None;
    }
    let mut proof = Vec::new();
    subproof(m, leaves, true, &mut proof);
    Some(proof)
}

fn subproof(m: usize, leaves: &[Hash], complete: bool, out: &mut Vec<Hash>) {
    let n = leaves.len();
    if m == n {
        if !complete {
            out.push(root(leaves));
        }
        return;
    }
    let k = split(n);
    if m <= k {
        subproof(m, &leaves[..k], complete, out);
        out.push(root(&leaves[k..]));
    } else {
        subproof(m - k, &leaves[k..], false, out);
        out.push(root(&leaves[..k]));
    }
}

/// Why a proof does not hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// The index or sizes are impossible for the tree.
    #[error("the leaf index or tree sizes are out of range")]
    OutOfRange,
    /// The proof has the wrong number of hashes for its sizes.
    #[error("the proof has the wrong length")]
    Length,
    /// The hashes do not lead to the root.
    #[error("the proof does not lead to the root")]
    Mismatch,
}

/// RFC 9162 §2.1.3.2: whether `path` proves leaf `leaf` at index `index` in the tree of
/// `size` leaves with root `root`.
pub fn verify_inclusion(
    leaf: &Hash,
    index: usize,
    size: usize,
    path: &[Hash],
    root: &Hash,
) -> Result<(), ProofError> {
    if index >= size {
        return Err(ProofError::OutOfRange);
    }
    let (mut f_n, mut s_n) = (index, size - 1);
    let mut r = *leaf;
    for p in path {
        if s_n == 0 {
            return Err(ProofError::Length);
        }
        if f_n & 1 == 1 || f_n == s_n {
            r = node_hash(p, &r);
            if f_n & 1 == 0 {
                while f_n & 1 == 0 && f_n != 0 {
                    f_n >>= 1;
                    s_n >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        f_n >>= 1;
        s_n >>= 1;
    }
    if s_n != 0 {
        return Err(ProofError::Length);
    }
    if &r == root {
        Ok(())
    } else {
        Err(ProofError::Mismatch)
    }
}

/// RFC 9162 §2.1.4.2: whether `proof` shows the tree of `size2` leaves with root `root2`
/// extends the tree of `size1` leaves with root `root1`.
pub fn verify_consistency(
    size1: usize,
    size2: usize,
    proof: &[Hash],
    root1: &Hash,
    root2: &Hash,
) -> Result<(), ProofError> {
    if size1 == 0 || size1 > size2 {
        return Err(ProofError::OutOfRange);
    }
    if size1 == size2 {
        return if !proof.is_empty() {
            Err(ProofError::Length)
        } else if root1 == root2 {
            Ok(())
        } else {
            Err(ProofError::Mismatch)
        };
    }
    // A size1 that is a power of two is its own subtree root: prepend it.
    let mut nodes: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if size1.is_power_of_two() {
        nodes.push(*root1);
    }
    nodes.extend_from_slice(proof);
    let (first, rest) = nodes.split_first().ok_or(ProofError::Length)?;
    let (mut f_n, mut s_n) = (size1 - 1, size2 - 1);
    while f_n & 1 == 1 {
        f_n >>= 1;
        s_n >>= 1;
    }
    let (mut fr, mut sr) = (*first, *first);
    for c in rest {
        if s_n == 0 {
            return Err(ProofError::Length);
        }
        if f_n & 1 == 1 || f_n == s_n {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if f_n & 1 == 0 {
                while f_n & 1 == 0 && f_n != 0 {
                    f_n >>= 1;
                    s_n >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, c);
        }
        f_n >>= 1;
        s_n >>= 1;
    }
    if s_n != 0 {
        return Err(ProofError::Length);
    }
    if &fr == root1 && &sr == root2 {
        Ok(())
    } else {
        Err(ProofError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaves(n: usize) -> Vec<Hash> {
        (0..n)
            .map(|i| leaf_hash(format!("entry {i}").as_bytes()))
            .collect()
    }

    #[test]
    fn hashes_by_hand() {
        // SHA-256 of the empty string (FIPS 180-2 style test value).
        assert_eq!(
            hex::encode(root(&[])),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        // A leaf is SHA-256(0x00): SHA-256 of the single byte 0x00.
        assert_eq!(
            hex::encode(leaf_hash(b"")),
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
        );
        // Three leaves split 2 + 1: MTH = node(node(l0, l1), l2).
        let l = leaves(3);
        assert_eq!(root(&l), node_hash(&node_hash(&l[0], &l[1]), &l[2]));
        // Five leaves split 4 + 1.
        let l = leaves(5);
        let four = node_hash(&node_hash(&l[0], &l[1]), &node_hash(&l[2], &l[3]));
        assert_eq!(root(&l), node_hash(&four, &l[4]));
        // The leaf and node prefixes keep a leaf from passing for a node.
        assert_ne!(leaf_hash(&[l[0], l[1]].concat()), node_hash(&l[0], &l[1]));
    }

    #[test]
    fn paths_and_proofs_by_hand() {
        let l = leaves(7);
        // RFC 9162 §2.1.5's tree of 7: the path of leaf 3 (d) is [c, hash(a,b), hash(e,f,g)].
        let efg = node_hash(&node_hash(&l[4], &l[5]), &l[6]);
        assert_eq!(
            inclusion_proof(3, &l).unwrap(),
            vec![l[2], node_hash(&l[0], &l[1]), efg]
        );
        // PROOF(3, D[7]) = [c, d, hash(a,b), hash(e,f,g)]: §2.1.5's example for 3 and 7.
        assert_eq!(
            consistency_proof(3, &l).unwrap(),
            vec![l[2], l[3], node_hash(&l[0], &l[1]), efg]
        );
        // PROOF(4, D[7]) = [hash(e,f,g)]: the first four form a complete subtree.
        assert_eq!(consistency_proof(4, &l).unwrap(), vec![efg]);
        assert_eq!(inclusion_proof(7, &l), None);
        assert_eq!(consistency_proof(0, &l), None);
        assert_eq!(consistency_proof(8, &l), None);
    }

    #[test]
    fn every_proof_of_every_tree_up_to_40_verifies() {
        let all = leaves(40);
        for n in 1..=all.len() {
            let tree = &all[..n];
            let r = root(tree);
            for m in 0..n {
                let path = inclusion_proof(m, tree).unwrap();
                assert_eq!(
                    verify_inclusion(&tree[m], m, n, &path, &r),
                    Ok(()),
                    "{m} of {n}"
                );
            }
            for m in 1..=n {
                let proof = consistency_proof(m, tree).unwrap();
                let old = root(&tree[..m]);
                assert_eq!(
                    verify_consistency(m, n, &proof, &old, &r),
                    Ok(()),
                    "{m} → {n}"
                );
            }
        }
    }

    #[test]
    fn tampering_is_detected() {
        let l = leaves(13);
        let r = root(&l);
        let path = inclusion_proof(5, &l).unwrap();
        // A changed entry, a wrong index, a wrong size, a bent or shortened path.
        assert_eq!(
            verify_inclusion(&leaf_hash(b"edited"), 5, 13, &path, &r),
            Err(ProofError::Mismatch)
        );
        assert_eq!(
            verify_inclusion(&l[5], 6, 13, &path, &r),
            Err(ProofError::Mismatch)
        );
        assert!(verify_inclusion(&l[5], 5, 20, &path, &r).is_err());
        let mut bent = path.clone();
        bent[1][0] ^= 1;
        assert_eq!(
            verify_inclusion(&l[5], 5, 13, &bent, &r),
            Err(ProofError::Mismatch)
        );
        assert_eq!(
            verify_inclusion(&l[5], 5, 13, &path[..path.len() - 1], &r),
            Err(ProofError::Length)
        );
        assert_eq!(
            verify_inclusion(&l[5], 13, 13, &path, &r),
            Err(ProofError::OutOfRange)
        );
        // A later log that rewrote entry 2 is not consistent with the earlier root (a fork).
        let old = root(&l[..8]);
        let mut forked = l.clone();
        forked[2] = leaf_hash(b"rewritten");
        let proof = consistency_proof(8, &forked).unwrap();
        assert_eq!(
            verify_consistency(8, 13, &proof, &old, &root(&forked)),
            Err(ProofError::Mismatch)
        );
        // Reordered entries change the root.
        let mut swapped = l.clone();
        swapped.swap(3, 4);
        assert_ne!(root(&swapped), r);
        assert_eq!(
            verify_consistency(13, 8, &[], &r, &old),
            Err(ProofError::OutOfRange)
        );
        assert_eq!(verify_consistency(13, 13, &[], &r, &r), Ok(()));
        assert_eq!(
            verify_consistency(13, 13, &[r], &r, &r),
            Err(ProofError::Length)
        );
    }
}
