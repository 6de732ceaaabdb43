//! The same RFC 9162 tree as [`crate::merkle`], kept as stored nodes instead of a list of
//! leaves, so that a log of millions of entries answers a proof with a few dozen reads and an
//! append with none beyond its own row.
//!
//! Every *perfect* subtree (2^level leaves starting at a multiple of 2^level) gets its hash
//! stored once, when its last leaf arrives ([`Frontier::push`]). Any range RFC 9162's splitting
//! asks for is a left-to-right run of such subtrees, so roots, audit paths and consistency
//! proofs are computed from at most O(log² n) stored nodes ([`NodeSource`]). Callers first ask
//! which nodes a proof needs (`*_nodes`), read them in one query, then compute.

use std::collections::{BTreeSet, HashMap};

use sha2::{Digest, Sha256};

use crate::merkle::{Hash, node_hash};

/// A perfect subtree: the leaves `index << level .. (index + 1) << level`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId {
    /// Height above the leaves (0: a leaf).
    pub level: u8,
    /// Position among the subtrees of that height.
    pub index: u64,
}

/// Where a computation reads stored subtree hashes from.
pub trait NodeSource {
    /// The hash of a perfect subtree, if it is known.
    fn node(&mut self, id: NodeId) -> Option<Hash>;
}

impl NodeSource for HashMap<NodeId, Hash> {
    fn node(&mut self, id: NodeId) -> Option<Hash> {
        self.get(&id).copied()
    }
}

/// Records what a computation asks for and answers with zeros: how the `*_nodes` functions
/// learn which reads a proof needs.
#[derive(Default)]
struct Recorder(BTreeSet<NodeId>);

impl NodeSource for Recorder {
    fn node(&mut self, id: NodeId) -> Option<Hash> {
        self.0.insert(id);
        Some([0; 32])
    }
}

/// Why a tree computation could not be done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TreeError {
    /// The index or sizes are impossible for the tree.
    #[error("the leaf index or tree sizes are out of range")]
    OutOfRange,
    /// A subtree the computation needs is not stored.
    #[error("subtree {}/{} is missing from the store", .0.level, .0.index)]
    Missing(NodeId),
}

/// The largest power of two smaller than `n` (n > 1).
fn split(n: u64) -> u64 {
    debug_assert!(n > 1);
    1 << (63 - (n - 1).leading_zeros())
}

/// MTH(D[lo:hi]) from stored perfect subtrees (hi > lo).
fn range_hash(lo: u64, hi: u64, src: &mut impl NodeSource) -> Result<Hash, TreeError> {
    let n = hi - lo;
    if n.is_power_of_two() && lo.is_multiple_of(n) {
        let id = NodeId {
            level: n.trailing_zeros() as u8,
            index: lo >> n.trailing_zeros(),
        };
        return src.node(id).ok_or(TreeError::Missing(id));
    }
    let k = split(n);
    Ok(node_hash(
        &range_hash(lo, lo + k, src)?,
        &range_hash(lo + k, hi, src)?,
    ))
}

/// The root of the tree over the first `size` leaves.
pub fn root(size: u64, src: &mut impl NodeSource) -> Result<Hash, TreeError> {
    if size == 0 {
        return Ok(Sha256::digest([]).into());
    }
    range_hash(0, size, src)
}

/// The stored nodes [`root`] reads for `size`.
pub fn root_nodes(size: u64) -> Vec<NodeId> {
    let mut r = Recorder::default();
    // The recorder answers every read.
    let _ = root(size, &mut r);
    r.0.into_iter().collect()
}

/// PATH(m, D[size]): the audit path of leaf `m`.
pub fn inclusion_path(
    m: u64,
    size: u64,
    src: &mut impl NodeSource,
) -> Result<Vec<Hash>, TreeError> {
    if m >= size {
        return Err(TreeError::OutOfRange);
    }
    let mut out = Vec::new();
    path_into(m, 0, size, src, &mut out)?;
    Ok(out)
}

fn path_into(
    m: u64,
    lo: u64,
    hi: u64,
    src: &mut impl NodeSource,
    out: &mut Vec<Hash>,
) -> Result<(), TreeError> {
    let n = hi - lo;
    if n <= 1 {
        return Ok(());
    }
    let k = split(n);
    if m < k {
        path_into(m, lo, lo + k, src, out)?;
        out.push(range_hash(lo + k, hi, src)?);
    } else {
        path_into(m - k, lo + k, hi, src, out)?;
        out.push(range_hash(lo, lo + k, src)?);
    }
    Ok(())
}

/// The stored nodes [`inclusion_path`] reads.
pub fn inclusion_nodes(m: u64, size: u64) -> Result<Vec<NodeId>, TreeError> {
    let mut r = Recorder::default();
    inclusion_path(m, size, &mut r)?;
    Ok(r.0.into_iter().collect())
}

/// PROOF(m, D[size]): that the tree of the first `m` leaves is a prefix of the tree of `size`.
pub fn consistency_path(
    m: u64,
    size: u64,
    src: &mut impl NodeSource,
) -> Result<Vec<Hash>, TreeError> {
    if m == 0 || m > size {
        return Err(TreeError::OutOfRange);
    }
    let mut out = Vec::new();
    subproof(m, 0, size, true, src, &mut out)?;
    Ok(out)
}

fn subproof(
    m: u64,
    lo: u64,
    hi: u64,
    complete: bool,
    src: &mut impl NodeSource,
    out: &mut Vec<Hash>,
) -> Result<(), TreeError> {
    let n = hi - lo;
    if m == n {
        if !complete {
            out.push(range_hash(lo, hi, src)?);
        }
        return Ok(());
    }
    let k = split(n);
    if m <= k {
        subproof(m, lo, lo + k, complete, src, out)?;
        out.push(range_hash(lo + k, hi, src)?);
    } else {
        subproof(m - k, lo + k, hi, false, src, out)?;
        out.push(range_hash(lo, lo + k, src)?);
    }
    Ok(())
}

/// The stored nodes [`consistency_path`] reads.
pub fn consistency_nodes(m: u64, size: u64) -> Result<Vec<NodeId>, TreeError> {
    let mut r = Recorder::default();
    consistency_path(m, size, &mut r)?;
    Ok(r.0.into_iter().collect())
}

/// The right edge of a tree: the hashes of its perfect subtrees, largest (leftmost) first. It
/// is all an append needs: a new leaf merges with the subtrees it completes, and the root is
/// the edge folded from the right.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    hashes: Vec<Hash>,
}

impl Frontier {
    /// The empty tree's.
    pub fn empty() -> Frontier {
        Frontier {
            size: 0,
            hashes: Vec::new(),
        }
    }

    /// The subtrees that make up the edge of a tree of `size` leaves, largest first.
    pub fn node_ids(size: u64) -> Vec<NodeId> {
        (0..64u8)
            .rev()
            .filter(|level| size >> level & 1 == 1)
            .map(|level| NodeId {
                level,
                index: (size >> level) - 1,
            })
            .collect()
    }

    /// A frontier from its size and its subtree hashes as [`Frontier::to_bytes`] wrote them;
    /// `None` when their number does not fit the size.
    pub fn from_bytes(size: u64, bytes: &[u8]) -> Option<Frontier> {
        if bytes.len() != size.count_ones() as usize * 32 {
            return None;
        }
        let hashes = bytes
            .chunks_exact(32)
            .map(|c| {
                let mut h = [0; 32];
                h.copy_from_slice(c);
                h
            })
            .collect();
        Some(Frontier { size, hashes })
    }

    /// The subtree hashes, concatenated.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.hashes.concat()
    }

    /// The number of leaves.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Appends a leaf; returns every subtree it completes, the leaf itself first, for storing.
    pub fn push(&mut self, leaf: Hash) -> Vec<(NodeId, Hash)> {
        let index = self.size;
        let mut done = vec![(NodeId { level: 0, index }, leaf)];
        let mut h = leaf;
        let mut level = 0u8;
        while self.size >> level & 1 == 1 {
            // The bit is set, so the edge holds a subtree of this height.
            let Some(left) = self.hashes.pop() else { break };
            h = node_hash(&left, &h);
            level += 1;
            done.push((
                NodeId {
                    level,
                    index: index >> level,
                },
                h,
            ));
        }
        self.hashes.push(h);
        self.size += 1;
        done
    }

    /// MTH of the tree.
    pub fn root(&self) -> Hash {
        let mut it = self.hashes.iter().rev();
        match it.next() {
            None => Sha256::digest([]).into(),
            Some(last) => it.fold(*last, |acc, left| node_hash(left, &acc)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merkle::{self, leaf_hash};

    fn leaves(n: usize) -> Vec<Hash> {
        (0..n)
            .map(|i| leaf_hash(format!("entry {i}").as_bytes()))
            .collect()
    }

    /// A tree built by pushes, its nodes kept as a store would keep them.
    fn grown(n: usize) -> (Frontier, HashMap<NodeId, Hash>, Vec<Hash>) {
        let l = leaves(n);
        let mut f = Frontier::empty();
        let mut nodes = HashMap::new();
        for leaf in &l {
            for (id, h) in f.push(*leaf) {
                assert!(nodes.insert(id, h).is_none(), "{id:?} stored twice");
            }
        }
        (f, nodes, l)
    }

    #[test]
    fn split_is_the_largest_power_of_two_below() {
        assert_eq!(split(2), 1);
        assert_eq!(split(3), 2);
        assert_eq!(split(4), 2);
        assert_eq!(split(5), 4);
        assert_eq!(split(8), 4);
        assert_eq!(split(9), 8);
    }

    #[test]
    fn pushes_store_each_perfect_subtree_once() {
        // Seven leaves: 7 leaves, 3 pairs, 1 four = 11 stored subtrees, by hand.
        let (f, nodes, l) = grown(7);
        assert_eq!(nodes.len(), 11);
        let ab = merkle::node_hash(&l[0], &l[1]);
        let cd = merkle::node_hash(&l[2], &l[3]);
        assert_eq!(nodes[&NodeId { level: 1, index: 0 }], ab);
        assert_eq!(
            nodes[&NodeId { level: 2, index: 0 }],
            merkle::node_hash(&ab, &cd)
        );
        // The edge of 7 = 4 + 2 + 1.
        assert_eq!(
            Frontier::node_ids(7),
            vec![
                NodeId { level: 2, index: 0 },
                NodeId { level: 1, index: 2 },
                NodeId { level: 0, index: 6 },
            ]
        );
        assert_eq!(f.root(), merkle::root(&l));
    }

    #[test]
    fn stored_nodes_give_the_same_roots_paths_and_proofs_as_the_leaves() {
        let (_, mut nodes, l) = grown(40);
        for n in 1..=40u64 {
            let tree = &l[..n as usize];
            assert_eq!(root(n, &mut nodes).unwrap(), merkle::root(tree), "root {n}");
            for m in 0..n {
                assert_eq!(
                    inclusion_path(m, n, &mut nodes).unwrap(),
                    merkle::inclusion_proof(m as usize, tree).unwrap(),
                    "path {m} of {n}"
                );
                // Exactly the recorded nodes suffice.
                let mut only: HashMap<NodeId, Hash> = inclusion_nodes(m, n)
                    .unwrap()
                    .into_iter()
                    .map(|id| (id, nodes[&id]))
                    .collect();
                assert!(inclusion_path(m, n, &mut only).is_ok());
            }
            for m in 1..=n {
                assert_eq!(
                    consistency_path(m, n, &mut nodes).unwrap(),
                    merkle::consistency_proof(m as usize, tree).unwrap(),
                    "proof {m} → {n}"
                );
                let mut only: HashMap<NodeId, Hash> = consistency_nodes(m, n)
                    .unwrap()
                    .into_iter()
                    .map(|id| (id, nodes[&id]))
                    .collect();
                assert!(consistency_path(m, n, &mut only).is_ok());
            }
            let mut edge: HashMap<NodeId, Hash> = root_nodes(n)
                .into_iter()
                .map(|id| (id, nodes[&id]))
                .collect();
            assert_eq!(root(n, &mut edge).unwrap(), merkle::root(tree));
            // The root reads exactly the edge.
            let mut ids = Frontier::node_ids(n);
            ids.sort();
            assert_eq!(root_nodes(n), ids);
        }
    }

    #[test]
    fn a_frontier_round_trips_and_refuses_a_wrong_length() {
        let (f, _, _) = grown(13);
        let back = Frontier::from_bytes(13, &f.to_bytes()).unwrap();
        assert_eq!(back, f);
        assert_eq!(Frontier::from_bytes(12, &f.to_bytes()), None);
        assert_eq!(Frontier::empty().root(), merkle::root(&[]));
    }

    #[test]
    fn missing_nodes_and_bad_ranges_are_errors() {
        let (_, mut nodes, _) = grown(5);
        nodes.remove(&NodeId { level: 0, index: 4 });
        assert_eq!(
            root(5, &mut nodes),
            Err(TreeError::Missing(NodeId { level: 0, index: 4 }))
        );
        assert_eq!(inclusion_path(5, 5, &mut nodes), Err(TreeError::OutOfRange));
        assert_eq!(
            consistency_path(0, 5, &mut nodes),
            Err(TreeError::OutOfRange)
        );
        assert_eq!(
            consistency_path(6, 5, &mut nodes),
            Err(TreeError::OutOfRange)
        );
    }
}
