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
//!
//! # Bounded waits
//! A holder that is alive but never unlocks would otherwise stop every
//! caller of its entry for good: a process stopped in a debugger or by
//! `SIGSTOP`, one in another PID namespace (its pid means nothing here, and
//! may name a live process), or a lock word overwritten with a live pid
//! such as 1. So a waiter gives up with [`Error::Busy`] once it has spun
//! [`BUSY_AFTER`] times without seeing the lock word change, and changes
//! nothing. Any change of the word (a holder unlocking, another one taking
//! the lock, a commit flipping the buffer bit) is progress and starts the
//! count again, so a busy entry with holders coming and going never gives
//! `Busy`. A dead holder is still taken over (its liveness is checked every
//! [`CHECK_EVERY`] spins, the last time right before giving up).
//!
//! The core reads no clock, so the bound is a number of spins:
//! [`BUSY_AFTER`], 2^22. With the pid owner of the C ABI and the CLI
//! (`table::process::process_owner`: a `sched_yield` every 64 spins, and a
//! `kill(pid, 0)` every [`CHECK_EVERY`]) that is 65 536 yields, measured at
//! 0.12 to 0.16 s on an idle 2-core x86 machine, and longer on a loaded
//! one, where every yield hands the CPU to whoever is runnable, a
//! preempted holder included. A holder that is merely preempted runs again
//! long before that (a scheduler time slice is a few milliseconds), so
//! `Busy` means a holder that cannot run. A waiter that only spins
//! ([`Owner::SINGLE_PROCESS`]'s default relax: no `std`, no yield) takes
//! about as long, 0.07 s on that machine, burning its own time slices
//! meanwhile; give it a relax that yields ([`Owner::with_relax`]) where
//! threads outnumber cores.
//!
//! On `Busy`, retry later, or treat it as any other failed call: a
//! rate check's caller applies its fail-open or fail-closed policy.
//!
//! Under `cfg(loom)` the wait stays unbounded: loom explores the
//! interleavings of the locking protocol itself, where a bound would only
//! add paths that give up; the `Busy` path is covered by the unit and
//! integration tests instead.

use crate::Error;

#[cfg(not(loom))]
pub(crate) use core::sync::atomic::{AtomicU32, Ordering};
#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicU32, Ordering};

const OWNER_MASK: u32 = 0x7fff_ffff;
const ACTIVE_BIT: u32 = 0x8000_0000;

/// How many spins between two liveness checks of a lock holder.
pub const CHECK_EVERY: u32 = 1024;

/// Spins during which the lock word did not change after which a waiter
/// gives up with [`Error::Busy`] (see [Bounded waits](self#bounded-waits)).
/// A multiple of [`CHECK_EVERY`], so a dead holder is checked for right
/// before giving up.
pub const BUSY_AFTER: u32 = 1 << 22;

const _: () = assert!(BUSY_AFTER.is_multiple_of(CHECK_EVERY));

/// Who is calling into a table: the id written into lock words, how to tell
/// whether another id's holder still lives, and what to do while waiting
/// (for at most [`BUSY_AFTER`] spins without progress: [`Error::Busy`]).
///
/// Within one process every thread may use the same id. Processes sharing a
/// table must use distinct ids (their pids).
#[derive(Debug, Clone, Copy)]
pub struct Owner {
    id: u32,
    /// [`BUSY_AFTER`], except in unit tests that want `Busy` sooner.
    busy_after: u32,
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
        busy_after: BUSY_AFTER,
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
            busy_after: BUSY_AFTER,
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

    /// The same owner giving up after `spins` unchanged spins instead of
    /// [`BUSY_AFTER`] (unit tests: Miri runs them too).
    #[cfg(test)]
    pub(crate) const fn with_busy_after(mut self, spins: u32) -> Owner {
        self.busy_after = spins;
        self
    }

    /// What a waiter does between spins (its relax function).
    pub(crate) fn relax(&self, spins: u32) {
        (self.relax)(spins)
    }

    /// How many unchanged spins a waiter makes before [`Error::Busy`].
    pub(crate) fn busy_after(&self) -> u32 {
        self.busy_after
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
pub(crate) fn lock(word: &AtomicU32, owner: &Owner) -> Result<Held, Error> {
    let cur = word.load(Ordering::Relaxed);
    if cur & OWNER_MASK == 0
        && word
            .compare_exchange_weak(cur, cur | owner.id(), Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    {
        return Ok(Held {
            active: cur >> 31,
            recovered: false,
        });
    }
    lock_contended(word, owner)
}

/// Takes the lock in `word` for `owner`, waiting for (or taking over from)
/// its holder; [`Error::Busy`] after [`BUSY_AFTER`] spins without the word
/// changing (unbounded under loom).
#[cold]
#[inline(never)]
fn lock_contended(word: &AtomicU32, owner: &Owner) -> Result<Held, Error> {
    let id = owner.id();
    let mut spins: u32 = 0;
    // The word as last seen, and the spins since it last changed.
    let mut seen = word.load(Ordering::Relaxed);
    let mut still: u32 = 0;
    loop {
        let cur = word.load(Ordering::Relaxed);
        if cur != seen {
            seen = cur;
            still = 0;
        }
        let holder = cur & OWNER_MASK;
        let active = cur >> 31;
        if holder == 0 {
            if word
                .compare_exchange_weak(cur, cur | id, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
            {
                return Ok(Held {
                    active,
                    recovered: false,
                });
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
            return Ok(Held {
                active,
                recovered: true,
            });
        }
        still = still.saturating_add(1);
        if still >= owner.busy_after() && !cfg!(loom) {
            return Err(Error::Busy);
        }
        owner.relax(spins);
        #[cfg(loom)]
        loom::thread::yield_now();
    }
}

/// An acquire fence (loom's under loom): loads before it are done before
/// loads after it.
pub(crate) fn fence_acquire() {
    #[cfg(not(loom))]
    core::sync::atomic::fence(Ordering::Acquire);
    #[cfg(loom)]
    loom::sync::atomic::fence(Ordering::Acquire);
}

/// Unlocks `word`, making buffer `active` (0 or 1) the committed one.
pub(crate) fn unlock(word: &AtomicU32, active: u32) {
    word.store((active & 1) << 31, Ordering::Release);
}

/// Makes buffer `active` (0 or 1) the committed one of `word`, which the
/// caller holds and keeps holding: one release store of its own id with
/// the new buffer bit. A holder killed after it leaves that buffer
/// committed, as if it had unlocked; waiters see the word change
/// (progress, see [Bounded waits](self#bounded-waits)).
pub(crate) fn commit_held(word: &AtomicU32, active: u32) {
    let held = word.load(Ordering::Relaxed) & OWNER_MASK;
    word.store(held | ((active & 1) << 31), Ordering::Release);
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
        lock(&w, &o).unwrap();
        assert_eq!(holder(&w), 7, "the lock word carries the id of the moment");
        unlock(&w, 0);
        CURRENT.store(1 << 31, core::sync::atomic::Ordering::Relaxed);
        assert_eq!(o.id(), 5, "an invalid id in the cell: the fallback");
        // A holder that died under the old id is taken over under the new one.
        CURRENT.store(7, core::sync::atomic::Ordering::Relaxed);
        let w = AtomicU32::new(ACTIVE_BIT | 9);
        assert_eq!(
            lock(&w, &o),
            Ok(Held {
                active: 1,
                recovered: true
            })
        );
        assert_eq!(holder(&w), 7);
    }

    #[test]
    fn lock_unlock_keeps_the_active_bit() {
        let w = AtomicU32::new(0);
        let me = Owner::new(7, alive).unwrap();
        assert_eq!(
            lock(&w, &me),
            Ok(Held {
                active: 0,
                recovered: false
            })
        );
        assert_eq!(holder(&w), 7);
        unlock(&w, 1);
        assert_eq!(holder(&w), 0);
        assert_eq!(lock(&w, &me).map(|h| h.active), Ok(1));
        unlock(&w, 1);
    }

    #[test]
    fn a_dead_holder_is_taken_over_keeping_the_committed_buffer() {
        // Held by id 9 (dead per `alive`), buffer 1 committed.
        let w = AtomicU32::new(ACTIVE_BIT | 9);
        let me = Owner::new(7, alive).unwrap();
        assert_eq!(
            lock(&w, &me),
            Ok(Held {
                active: 1,
                recovered: true
            })
        );
        assert_eq!(holder(&w), 7);
        unlock(&w, 0);
        assert_eq!(w.load(Ordering::Relaxed), 0);
    }

    /// Counts relax calls (one per spin that found the lock held).
    fn counting(calls: &core::sync::atomic::AtomicU32) {
        calls.fetch_add(1, Ordering::Relaxed);
    }

    #[test]
    fn a_live_holder_that_never_unlocks_gives_busy_and_the_word_is_untouched() {
        static CALLS: core::sync::atomic::AtomicU32 = core::sync::atomic::AtomicU32::new(0);
        fn relax(_: u32) {
            counting(&CALLS);
        }
        // Held by id 9, alive: a stopped process, or a forged word.
        let w = AtomicU32::new(ACTIVE_BIT | 9);
        let me = Owner::new(7, always_alive)
            .unwrap()
            .with_relax(relax)
            .with_busy_after(4 * CHECK_EVERY);
        assert_eq!(lock(&w, &me), Err(Error::Busy));
        assert_eq!(w.load(Ordering::Relaxed), ACTIVE_BIT | 9, "nothing written");
        assert_eq!(
            CALLS.load(Ordering::Relaxed),
            4 * CHECK_EVERY - 1,
            "gave up at the bound, not before"
        );
        // The real bound is the same code with another number.
        assert_eq!(Owner::new(7, alive).unwrap().busy_after(), BUSY_AFTER);
        assert_eq!(Owner::SINGLE_PROCESS.busy_after(), BUSY_AFTER);
    }

    #[test]
    fn the_count_starts_again_whenever_the_word_changes() {
        static WORD: AtomicU32 = AtomicU32::new(0);
        static CALLS: core::sync::atomic::AtomicU32 = core::sync::atomic::AtomicU32::new(0);
        const BOUND: u32 = 4 * CHECK_EVERY;
        /// Another live holder takes over every BOUND / 2 spins, 3 times:
        /// progress, each time.
        fn relax(_: u32) {
            let n = CALLS.fetch_add(1, Ordering::Relaxed) + 1;
            if n.is_multiple_of(BOUND / 2) && n <= 3 * (BOUND / 2) {
                WORD.store(10 + n / (BOUND / 2), Ordering::Relaxed);
            }
        }
        WORD.store(9, Ordering::Relaxed);
        let me = Owner::new(7, always_alive)
            .unwrap()
            .with_relax(relax)
            .with_busy_after(BOUND);
        assert_eq!(lock(&WORD, &me), Err(Error::Busy));
        assert_eq!(holder(&WORD), 13, "the last holder keeps its lock");
        // Three changes, each BOUND / 2 spins apart, then BOUND unchanged.
        assert_eq!(CALLS.load(Ordering::Relaxed), 3 * (BOUND / 2) + BOUND - 1);
    }

    #[test]
    fn a_holder_that_unlocks_before_the_bound_hands_the_lock_over() {
        static WORD: AtomicU32 = AtomicU32::new(0);
        fn relax(spins: u32) {
            if spins == 3 * CHECK_EVERY {
                unlock(&WORD, 1);
            }
        }
        WORD.store(9, Ordering::Relaxed);
        let me = Owner::new(7, always_alive)
            .unwrap()
            .with_relax(relax)
            .with_busy_after(4 * CHECK_EVERY);
        assert_eq!(
            lock(&WORD, &me),
            Ok(Held {
                active: 1,
                recovered: false
            })
        );
        assert_eq!(holder(&WORD), 7);
    }

    #[test]
    fn a_dead_holder_is_taken_over_before_busy() {
        // Dead per `alive`: taken over at the first check even with a bound
        // of one check period.
        let w = AtomicU32::new(9);
        let me = Owner::new(7, alive).unwrap().with_busy_after(CHECK_EVERY);
        assert_eq!(
            lock(&w, &me),
            Ok(Held {
                active: 0,
                recovered: true
            })
        );
    }
}
