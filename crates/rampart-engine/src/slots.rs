//! CPU slots: how many policy commands may compete for the CPU at once.
//!
//! Audit commands are short and CPU-bound, and one of them is usually much longer than the rest:
//! on a host without a running systemd, `systemctl list-unit-files` walks every unit directory
//! for a third of a second while forty `dpkg-query` runs take a few milliseconds each. If every
//! command starts as soon as a worker asks for it, the kernel shares the cores fairly among all
//! of them: the long command gets a sliver until the short ones are done, then runs alone while
//! the other cores sit idle, and the scan takes as long as the short commands *plus* the long
//! one. Letting only as many commands run as there are cores gives a long command a core of its
//! own from the moment it starts, and the scan takes about as long as its longest command or its
//! total CPU time over the cores, whichever is larger.
//!
//! A command that is not using the CPU (it waits on the network, a lock or a pipe, and none of
//! its descendants computes either) gives its slot back, so a slow but idle command never holds
//! up the rest: a slot limits CPU contention, not the number of commands in flight. Slots are
//! handed out in the order they were asked for, so the engine's ordering of checks (longest
//! measured commands first, see [`crate::costs`]) survives.

use std::collections::BTreeSet;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Instant;

/// A fair (first come, first served) counting semaphore for running commands.
#[derive(Debug)]
pub struct CpuSlots {
    total: usize,
    state: Mutex<State>,
    freed: Condvar,
}

#[derive(Debug)]
struct State {
    free: usize,
    next_ticket: u64,
    /// Tickets of the threads waiting, oldest first.
    waiting: BTreeSet<u64>,
}

impl CpuSlots {
    /// `n` slots (at least one).
    pub fn new(n: usize) -> CpuSlots {
        CpuSlots {
            total: n.max(1),
            state: Mutex::new(State {
                free: n.max(1),
                next_ticket: 0,
                waiting: BTreeSet::new(),
            }),
            freed: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state is a few integers updated in single steps: a panic elsewhere while the lock
        // was held cannot leave it half-written, so a poisoned lock is still usable.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Waits for a slot, in arrival order. `None` when `deadline` passes first.
    pub fn acquire(&self, deadline: Option<Instant>) -> Option<Slot<'_>> {
        let mut st = self.lock();
        let ticket = st.next_ticket;
        st.next_ticket += 1;
        st.waiting.insert(ticket);
        loop {
            if st.free > 0 && st.waiting.first() == Some(&ticket) {
                st.waiting.remove(&ticket);
                st.free -= 1;
                // The next in line may be able to go too.
                self.freed.notify_all();
                return Some(Slot {
                    slots: self,
                    held: true,
                });
            }
            st = match deadline {
                None => self
                    .freed
                    .wait(st)
                    .unwrap_or_else(std::sync::PoisonError::into_inner),
                Some(at) => {
                    let left = at.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        st.waiting.remove(&ticket);
                        // Whoever was behind this ticket may now be first.
                        self.freed.notify_all();
                        return None;
                    }
                    self.freed
                        .wait_timeout(st, left)
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .0
                }
            };
        }
    }

    /// Slots currently held.
    pub fn in_use(&self) -> usize {
        self.total - self.lock().free
    }

    /// How many slots there are.
    pub fn total(&self) -> usize {
        self.total
    }

    fn give_back(&self) {
        self.lock().free += 1;
        self.freed.notify_all();
    }
}

/// A held slot; given back when released or dropped.
#[derive(Debug)]
pub struct Slot<'a> {
    slots: &'a CpuSlots,
    held: bool,
}

impl Slot<'_> {
    /// Gives the slot back early (the command stopped using the CPU). Idempotent.
    pub fn release(&mut self) {
        if std::mem::take(&mut self.held) {
            self.slots.give_back();
        }
    }

    /// Whether the slot is still held.
    pub fn is_held(&self) -> bool {
        self.held
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.release();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[test]
    fn never_more_holders_than_slots_and_first_come_first_served() {
        let slots = CpuSlots::new(2);
        let holding = AtomicUsize::new(0);
        let most = AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| {
                    for _ in 0..50 {
                        let slot = slots.acquire(None).expect("no deadline");
                        let now = holding.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(now, Ordering::SeqCst);
                        std::thread::yield_now();
                        holding.fetch_sub(1, Ordering::SeqCst);
                        drop(slot);
                    }
                });
            }
        });
        assert_eq!(most.load(Ordering::SeqCst), 2);
        assert_eq!(slots.in_use(), 0);

        // One slot, held: later arrivals are served in the order they asked.
        let slots = CpuSlots::new(1);
        let first = slots.acquire(None).expect("free");
        let order = Mutex::new(Vec::new());
        std::thread::scope(|s| {
            for i in 0..4 {
                let (slots, order) = (&slots, &order);
                s.spawn(move || {
                    let _slot = slots.acquire(None).expect("no deadline");
                    order.lock().expect("order").push(i);
                });
                // Wait until thread i is queued before starting thread i + 1.
                while slots.lock().waiting.len() < i + 1 {
                    std::thread::yield_now();
                }
            }
            drop(first);
        });
        assert_eq!(*order.lock().expect("order"), vec![0, 1, 2, 3]);
    }

    #[test]
    fn a_deadline_ends_the_wait_and_lets_the_next_in_line_through() {
        let slots = CpuSlots::new(1);
        let mut held = slots.acquire(None).expect("free");
        assert!(
            slots
                .acquire(Some(Instant::now() + Duration::from_millis(20)))
                .is_none()
        );
        // The timed-out ticket left the queue: a new arrival is served once the slot is free.
        held.release();
        assert!(!held.is_held());
        held.release(); // idempotent: does not add a slot
        assert_eq!(slots.in_use(), 0);
        let again = slots.acquire(Some(Instant::now())).expect("free slot");
        assert_eq!(slots.in_use(), 1);
        drop(again);
        assert_eq!(slots.in_use(), 0);
    }
}
