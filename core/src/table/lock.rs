//! Lock words that survive a killed holder, without OS locks.
//!
//! A lock word holds the owner's id in bits 0-30 (0: unlocked) and, for
//! double-buffered state, the index of the committed buffer in bit 31. A
//! caller takes the lock with a compare-and-swap from "unlocked" to its own
//! id, changes the *other* buffer, then commits and unlocks with one release
//! store that writes 0 as owner and the new buffer index. A holder killed at
//! any point before that store leaves the committed buffer as it was.
//!
//! While the lock is held by another id, a waiter spins; every
//! [`CHECK_EVERY`] spins it asks the `is_alive` function of its [`Owner`] about the holder's id, and
//! if the holder is dead it takes the lock over with a compare-and-swap that
//! keeps bit 31 (only one waiter can win), as nginx does with its shared
//! memory mutexes. The new holder is told the lock was recovered, so it can
//! repair what a half-done operation may have left outside the buffers.
//!
//! Ids are process ids on the C side (all threads of a process share one:
//! a thread cannot die alone). A pid that is reused by a new process before
//! a waiter noticed the old one died keeps the lock looking held; Linux
//! allocates pids cyclically, so that takes a wrap of the pid space.

use crate::Error;

#[cfg(not(loom))]
pub(crate) use core::sync::atomic::{AtomicU32, Ordering};
#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicU32, Ordering};

const OWNER_MASK: u32 = 0x7fff_ffff;
const ACTIVE_BIT: u32 = 0x8000_0000;

/// How many spins between two liveness checks of a lock holder.
pub const CHECK_EVERY: u32 = 1024;

/// Who is calling into a table: the id written into lock words, how to tell
/// whether another id's holder still lives, and what to do while waiting.
///
/// Within one process every thread may use the same id. Processes sharing a
/// table must use distinct ids (their pids).
#[derive(Debug, Clone, Copy)]
pub struct Owner {
    id: u32,
    /// Where the current id is read from at every lock, if not fixed.
    current: Option<&'static core::sync::atomic::AtomicU32>,
    is_alive: fn(u32) -> bool,
    relax: fn(u32),
}

fn always_alive(_: u32) -> bool {
    true
}

fn spin(_: u32) {
    core::hint::spin_loop();
}

impl Owner {
    /// One process, any number of threads: id 1, holders never considered
    /// dead, busy-wait with a spin hint.
    pub const SINGLE_PROCESS: Owner = Owner {
        id: 1,
        current: None,
        is_alive: always_alive,
        relax: spin,
    };

    /// An owner with `id` in `1..=2^31-1` and a liveness test for other ids
    /// (on Linux: `kill(id, 0)` failing with `ESRCH` means dead).
    pub const fn new(id: u32, is_alive: fn(u32) -> bool) -> Result<Owner, Error> {
        if id == 0 || id > OWNER_MASK {
            return Err(Error::InvalidOwner);
        }
        Ok(Owner {
            id,
            current: None,
            is_alive,
            relax: spin,
        })
    }

    /// An owner whose id is read from `current` at every lock, so that one
    /// `Owner` (and a [`Table`](crate::table::Table) holding it) follows its
    /// process across `fork`: the child stores its own pid in `current`
    /// (from a `pthread_atfork` child handler, say). While `current` holds
    /// no valid id (0, or above 2^31-1), `fallback` is used; `fallback`
    /// must be valid as in [`Owner::new`].
    pub const fn from_static(
        current: &'static core::sync::atomic::AtomicU32,
        fallback: u32,
        is_alive: fn(u32) -> bool,
    ) -> Result<Owner, Error> {
        match Owner::new(fallback, is_alive) {
            Ok(mut o) => {
                o.current = Some(current);
                Ok(o)
            }
            Err(e) => Err(e),
        }
    }

    /// Replaces what a waiter does between spins (for example `sched_yield`
    /// every so many spins); it gets the number of spins so far.
    pub const fn with_relax(mut self, relax: fn(u32)) -> Owner {
        self.relax = relax;
        self
    }

    /// The id written into lock words now.
    #[inline(always)]
    pub fn id(&self) -> u32 {
        match self.current {
            Some(c) => match c.load(core::sync::atomic::Ordering::Relaxed) {
                v @ 1..=OWNER_MASK => v,
                _ => self.id,
            },
            None => self.id,
        }
    }
}

/// The result of taking a lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Held {
    /// Index (0 or 1) of the committed buffer.
    pub active: u32,
    /// True if the lock was taken over from a dead holder.
    pub recovered: bool,
}

/// Takes the lock in `word` for `owner`: one compare-and-swap when it is
/// free, else [`lock_contended`].
#[inline(always)]
pub(crate) fn lock(word: &AtomicU32, owner: &Owner) -> Held {
    let cur = word.load(Ordering::Relaxed);
    if cur & OWNER_MASK == 0
        && word
            .compare_exchange_weak(cur, cur | owner.id(), Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    {
        return Held {
            active: cur >> 31,
            recovered: false,
        };
    }
    lock_contended(word, owner)
}

/// Takes the lock in `word` for `owner`, waiting for (or taking over from)
/// its holder.
#[cold]
#[inline(never)]
fn lock_contended(word: &AtomicU32, owner: &Owner) -> Held {
    let id = owner.id();
    let mut spins: u32 = 0;
    loop {
        let cur = word.load(Ordering::Relaxed);
        let holder = cur & OWNER_MASK;
        let active = cur >> 31;
        if holder == 0 {
            if word
                .compare_exchange_weak(cur, cur | id, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
            {
                return Held {
                    active,
                    recovered: false,
                };
            }
            continue;
        }
        spins = spins.wrapping_add(1);
        if spins.is_multiple_of(CHECK_EVERY)
            && !(owner.is_alive)(holder)
            && word
                .compare_exchange(
                    cur,
                    (cur & ACTIVE_BIT) | id,
                    Ordering::Acquire,
                    Ordering::Relaxed,
                )
                .is_ok()
        {
            return Held {
                active,
                recovered: true,
            };
        }
        (owner.relax)(spins);
        #[cfg(loom)]
        loom::thread::yield_now();
    }
}

/// Unlocks `word`, making buffer `active` (0 or 1) the committed one.
pub(crate) fn unlock(word: &AtomicU32, active: u32) {
    word.store((active & 1) << 31, Ordering::Release);
}

/// The id holding `word`, 0 if none (for tests).
#[cfg(test)]
pub(crate) fn holder(word: &AtomicU32) -> u32 {
    word.load(Ordering::Relaxed) & OWNER_MASK
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    /// Only id 7 (the caller) is alive.
    fn alive(id: u32) -> bool {
        id == 7
    }

    #[test]
    fn owner_ids_are_validated() {
        assert_eq!(
            Owner::new(0, always_alive).unwrap_err(),
            Error::InvalidOwner
        );
        assert_eq!(
            Owner::new(1 << 31, always_alive).unwrap_err(),
            Error::InvalidOwner
        );
        assert_eq!(
            Owner::new(OWNER_MASK, always_alive).unwrap().id(),
            OWNER_MASK
        );
        assert_eq!(Owner::SINGLE_PROCESS.with_relax(spin).id(), 1);
    }

    #[test]
    fn a_static_owner_follows_its_cell_and_falls_back_when_invalid() {
        static CURRENT: core::sync::atomic::AtomicU32 = core::sync::atomic::AtomicU32::new(0);
        assert_eq!(
            Owner::from_static(&CURRENT, 0, alive).unwrap_err(),
            Error::InvalidOwner
        );
        let o = Owner::from_static(&CURRENT, 5, alive).unwrap();
        assert_eq!(o.id(), 5, "0 in the cell: the fallback");
        CURRENT.store(7, core::sync::atomic::Ordering::Relaxed);
        assert_eq!(o.id(), 7);
        let w = AtomicU32::new(0);
        lock(&w, &o);
        assert_eq!(holder(&w), 7, "the lock word carries the id of the moment");
        unlock(&w, 0);
        CURRENT.store(1 << 31, core::sync::atomic::Ordering::Relaxed);
        assert_eq!(o.id(), 5, "an invalid id in the cell: the fallback");
        // A holder that died under the old id is taken over under the new one.
        CURRENT.store(7, core::sync::atomic::Ordering::Relaxed);
        let w = AtomicU32::new(ACTIVE_BIT | 9);
        assert_eq!(
            lock(&w, &o),
            Held {
                active: 1,
                recovered: true
            }
        );
        assert_eq!(holder(&w), 7);
    }

    #[test]
    fn lock_unlock_keeps_the_active_bit() {
        let w = AtomicU32::new(0);
        let me = Owner::new(7, alive).unwrap();
        assert_eq!(
            lock(&w, &me),
            Held {
                active: 0,
                recovered: false
            }
        );
        assert_eq!(holder(&w), 7);
        unlock(&w, 1);
        assert_eq!(holder(&w), 0);
        assert_eq!(lock(&w, &me).active, 1);
        unlock(&w, 1);
    }

    #[test]
    fn a_dead_holder_is_taken_over_keeping_the_committed_buffer() {
        // Held by id 9 (dead per `alive`), buffer 1 committed.
        let w = AtomicU32::new(ACTIVE_BIT | 9);
        let me = Owner::new(7, alive).unwrap();
        assert_eq!(
            lock(&w, &me),
            Held {
                active: 1,
                recovered: true
            }
        );
        assert_eq!(holder(&w), 7);
        unlock(&w, 0);
        assert_eq!(w.load(Ordering::Relaxed), 0);
    }
}
