//! Whole-log verification, as an auditor runs it on the export: every entry in order, every
//! signed checkpoint, and the checkpoint the auditor trusted last time.
//!
//! The checker recomputes the tree from the entries' bytes and compares its root with each
//! checkpoint at that checkpoint's size. Entries carry their own index, so a deleted, inserted
//! or reordered row shows where it happened; an edited entry shows as the first checkpoint
//! after it that no longer matches. A checkpoint that does not match while a later one does
//! was signed over another history: a fork.

use crate::checkpoint::Checkpoint;
use crate::entry::Entry;
use crate::merkle::{Hash, leaf_hash};
use crate::tree::Frontier;

/// One thing wrong with the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// The line at this position is not an entry.
    Unreadable {
        /// Position in the export (from 0).
        position: u64,
        /// Why.
        detail: String,
    },
    /// The entry at this position names another index: entries before it were deleted
    /// (`found` > `position`) or it was inserted or moved (`found` < `position`).
    Misplaced {
        /// Position in the export.
        position: u64,
        /// The index the entry carries.
        found: u64,
    },
    /// Entries in `from..size` are not what the checkpoint of `size` signed: one of them was
    /// edited, or entries were deleted, inserted or reordered there. Only the first such
    /// checkpoint is reported: every later root covers the same change.
    Changed {
        /// The previous matching checkpoint's size (0 for the first).
        from: u64,
        /// The checkpoint's size.
        size: u64,
    },
    /// The checkpoint of `size` is signed by the log key but does not match the entries that
    /// later checkpoints do: it signs another history.
    Fork {
        /// Its size.
        size: u64,
    },
    /// Checkpoints cover more entries than the log holds: entries at the end were deleted.
    Truncated {
        /// Entries in the log.
        entries: u64,
        /// The largest checkpoint's size.
        checkpoint: u64,
    },
    /// The log does not extend the checkpoint trusted at the last verification.
    Diverged {
        /// That checkpoint's size.
        size: u64,
    },
    /// Two checkpoints whose sizes grow while their times go back.
    TimeReversed {
        /// The later checkpoint's size.
        size: u64,
    },
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Problem::Unreadable { position, detail } => {
                write!(f, "entry {position}: unreadable ({detail})")
            }
            Problem::Misplaced { position, found } if found > position => write!(
                f,
                "entry {position}: holds index {found}: entries {position}..{found} were deleted"
            ),
            Problem::Misplaced { position, found } => write!(
                f,
                "entry {position}: holds index {found}: inserted or moved (reordered)"
            ),
            Problem::Changed { from, size } => write!(
                f,
                "entries {from}..{size} do not match the checkpoint of size {size}: edited, deleted, inserted or reordered since it was signed"
            ),
            Problem::Fork { size } => write!(
                f,
                "checkpoint of size {size} is a fork: signed by the log key over another history than the later checkpoints"
            ),
            Problem::Truncated {
                entries,
                checkpoint,
            } => write!(
                f,
                "the log holds {entries} entries but a checkpoint covers {checkpoint}: entries at the end were deleted"
            ),
            Problem::Diverged { size } => write!(
                f,
                "the log does not extend the checkpoint of size {size} verified before: history was rewritten (fork)"
            ),
            Problem::TimeReversed { size } => write!(
                f,
                "checkpoint of size {size} is older than a smaller checkpoint"
            ),
        }
    }
}

/// What verification found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// Entries read.
    pub entries: u64,
    /// Checkpoints whose root matched.
    pub checkpoints_matched: u64,
    /// The largest checkpoint, when there is one.
    pub latest: Option<Checkpoint>,
    /// Entries after the largest checkpoint (not yet signed).
    pub unsigned: u64,
    /// Everything wrong, in log order (at most [`MAX_PROBLEMS`]).
    pub problems: Vec<Problem>,
}

/// More problems than this are not listed: the log is broken either way.
pub const MAX_PROBLEMS: usize = 100;

/// Feeds entries in order; checks each checkpoint as its size is reached.
pub struct LogCheck {
    checkpoints: Vec<Checkpoint>,
    /// Per checkpoint: whether its root matched.
    matched: Vec<Option<bool>>,
    next: usize,
    trusted: Option<Checkpoint>,
    trusted_ok: Option<bool>,
    frontier: Frontier,
    /// The index the previous entry carried.
    last_index: Option<u64>,
    problems: Vec<Problem>,
}

impl LogCheck {
    /// A check of the log against `checkpoints` (any order) and, when there is one, the
    /// checkpoint trusted at the last verification.
    pub fn new(mut checkpoints: Vec<Checkpoint>, trusted: Option<Checkpoint>) -> LogCheck {
        checkpoints.sort_by_key(|c| c.size);
        checkpoints.dedup();
        let mut problems = Vec::new();
        for pair in checkpoints.windows(2) {
            if pair[1].time < pair[0].time {
                problems.push(Problem::TimeReversed { size: pair[1].size });
            }
        }
        let mut check = LogCheck {
            matched: vec![None; checkpoints.len()],
            checkpoints,
            next: 0,
            trusted,
            trusted_ok: None,
            frontier: Frontier::empty(),
            last_index: None,
            problems,
        };
        check.compare();
        check
    }

    fn problem(&mut self, p: Problem) {
        if self.problems.len() < MAX_PROBLEMS {
            self.problems.push(p);
        }
    }

    /// The next entry's stored bytes.
    pub fn push(&mut self, leaf: &[u8]) {
        let position = self.frontier.size();
        match Entry::parse(leaf) {
            Ok(e) => {
                // One report per break in the run of indices, not one per shifted entry.
                let follows = self
                    .last_index
                    .is_some_and(|l| l.checked_add(1) == Some(e.index));
                if e.index != position && !follows {
                    self.problem(Problem::Misplaced {
                        position,
                        found: e.index,
                    });
                }
                self.last_index = Some(e.index);
            }
            Err(e) => {
                self.problem(Problem::Unreadable {
                    position,
                    detail: e.to_string(),
                });
                self.last_index = None;
            }
        }
        self.frontier.push(leaf_hash(leaf));
        self.compare();
    }

    /// Compares the checkpoints (and the trusted one) of the current size.
    fn compare(&mut self) {
        let size = self.frontier.size();
        let mut root: Option<Hash> = None;
        while self.next < self.checkpoints.len() && self.checkpoints[self.next].size <= size {
            if self.checkpoints[self.next].size == size {
                let r = *root.get_or_insert_with(|| self.frontier.root());
                self.matched[self.next] = Some(self.checkpoints[self.next].root == r);
            }
            self.next += 1;
        }
        if let Some(t) = &self.trusted
            && t.size == size
        {
            let r = *root.get_or_insert_with(|| self.frontier.root());
            self.trusted_ok = Some(t.root == r);
        }
    }

    /// The report, once every entry was pushed.
    pub fn finish(mut self) -> Report {
        let entries = self.frontier.size();
        // Mismatches: a fork when a later checkpoint matches (the entries are what the log
        // signs now), a change to the entries otherwise.
        let mut from = 0;
        let mut later_match = vec![false; self.checkpoints.len()];
        let mut seen = false;
        for i in (0..self.checkpoints.len()).rev() {
            later_match[i] = seen;
            seen |= self.matched[i] == Some(true);
        }
        let mut matched = 0;
        let mut changed = false;
        let mut found = Vec::new();
        for (i, cp) in self.checkpoints.iter().enumerate() {
            match self.matched[i] {
                Some(true) => {
                    matched += 1;
                    from = cp.size;
                }
                Some(false) if later_match[i] => found.push(Problem::Fork { size: cp.size }),
                // Every later root covers the change too: the first is the one that says where.
                Some(false) if changed => {}
                Some(false) => {
                    found.push(Problem::Changed {
                        from,
                        size: cp.size,
                    });
                    changed = true;
                }
                None => {}
            }
        }
        for p in found {
            self.problem(p);
        }
        if let Some(last) = self.checkpoints.last()
            && last.size > entries
        {
            self.problem(Problem::Truncated {
                entries,
                checkpoint: last.size,
            });
        }
        if let Some(t) = &self.trusted
            && self.trusted_ok != Some(true)
        {
            let size = t.size;
            self.problem(Problem::Diverged { size });
        }
        let latest = self.checkpoints.last().cloned();
        let unsigned = entries.saturating_sub(latest.as_ref().map_or(0, |c| c.size));
        Report {
            entries,
            checkpoints_matched: matched,
            latest,
            unsigned,
            problems: self.problems,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::{Event, Outcome};
    use time::OffsetDateTime;

    fn entry(i: u64, what: &str) -> String {
        Entry {
            index: i,
            time: OffsetDateTime::from_unix_timestamp(1_764_763_200 + i as i64).unwrap(),
            event: Event::new("alice", what, format!("user:u{i}"), Outcome::Success),
        }
        .to_leaf()
    }

    fn log(n: u64) -> Vec<String> {
        (0..n).map(|i| entry(i, "user.create")).collect()
    }

    fn checkpoint_of(lines: &[String]) -> Checkpoint {
        let mut f = Frontier::empty();
        for l in lines {
            f.push(leaf_hash(l.as_bytes()));
        }
        Checkpoint {
            origin: "o".into(),
            size: lines.len() as u64,
            root: f.root(),
            time: OffsetDateTime::from_unix_timestamp(1_764_763_200 + lines.len() as i64).unwrap(),
        }
    }

    fn run(lines: &[String], cps: Vec<Checkpoint>, trusted: Option<Checkpoint>) -> Report {
        let mut c = LogCheck::new(cps, trusted);
        for l in lines {
            c.push(l.as_bytes());
        }
        c.finish()
    }

    #[test]
    fn an_intact_log_verifies() {
        let l = log(20);
        let cps = vec![checkpoint_of(&l[..5]), checkpoint_of(&l[..16])];
        let r = run(&l, cps, Some(checkpoint_of(&l[..9])));
        assert_eq!(r.problems, vec![]);
        assert_eq!(r.entries, 20);
        assert_eq!(r.checkpoints_matched, 2);
        assert_eq!(r.unsigned, 4);
        assert_eq!(r.latest.unwrap().size, 16);
    }

    #[test]
    fn each_kind_of_tampering_is_named() {
        let l = log(20);
        let cps = || vec![checkpoint_of(&l[..8]), checkpoint_of(&l[..16])];

        // Edited: entry 10's action changed; its index is intact.
        let mut edited = l.clone();
        edited[10] = entry(10, "user.delete");
        let r = run(&edited, cps(), None);
        assert_eq!(r.problems, vec![Problem::Changed { from: 8, size: 16 }]);

        // Deleted from the middle.
        let mut deleted = l.clone();
        deleted.remove(3);
        let r = run(&deleted, cps(), None);
        assert_eq!(
            r.problems,
            vec![
                Problem::Misplaced {
                    position: 3,
                    found: 4
                },
                Problem::Changed { from: 0, size: 8 },
            ]
        );

        // Deleted at the end, below a checkpoint.
        let r = run(&l[..14], cps(), None);
        assert_eq!(
            r.problems,
            vec![Problem::Truncated {
                entries: 14,
                checkpoint: 16
            }]
        );

        // Inserted: a forged entry 5 with the ones after renumbered.
        let mut inserted = l[..5].to_vec();
        inserted.push(entry(5, "user.forged"));
        inserted.extend((5..20).map(|i| entry(i + 1, "user.create")));
        let r = run(&inserted, cps(), None);
        assert_eq!(r.problems, vec![Problem::Changed { from: 0, size: 8 }]);

        // Reordered: two entries swapped as they are.
        let mut swapped = l.clone();
        swapped.swap(11, 12);
        let r = run(&swapped, cps(), None);
        assert_eq!(
            r.problems,
            vec![
                Problem::Misplaced {
                    position: 11,
                    found: 12
                },
                Problem::Misplaced {
                    position: 12,
                    found: 11
                },
                Problem::Changed { from: 8, size: 16 },
            ]
        );

        // A forked checkpoint: signed over another first 8 entries, while size 16 matches.
        let mut other = l[..8].to_vec();
        other[2] = entry(2, "user.other");
        let r = run(
            &l,
            vec![checkpoint_of(&other), checkpoint_of(&l[..16])],
            None,
        );
        assert_eq!(r.problems, vec![Problem::Fork { size: 8 }]);

        // A rewritten history that its own (re-signed) checkpoints match, against the
        // checkpoint trusted before.
        let mut rewritten = l.clone();
        rewritten[1] = entry(1, "user.rewritten");
        let own = vec![checkpoint_of(&rewritten[..16])];
        let r = run(&rewritten, own, Some(checkpoint_of(&l[..8])));
        assert_eq!(r.problems, vec![Problem::Diverged { size: 8 }]);
        // A trusted checkpoint beyond the log.
        let r = run(&l[..4], vec![], Some(checkpoint_of(&l[..8])));
        assert_eq!(r.problems, vec![Problem::Diverged { size: 8 }]);

        // Garbage where an entry was.
        let mut garbage = l.clone();
        garbage[0] = "{".into();
        let r = run(&garbage, cps(), None);
        assert!(matches!(
            r.problems[0],
            Problem::Unreadable { position: 0, .. }
        ));

        // Time going back between checkpoints.
        let mut early = checkpoint_of(&l[..16]);
        early.time = OffsetDateTime::UNIX_EPOCH;
        let r = run(&l, vec![checkpoint_of(&l[..8]), early], None);
        assert_eq!(r.problems, vec![Problem::TimeReversed { size: 16 }]);
    }
}
