//! Resolved keys: look a key up once ([`Table::resolve`]), then check
//! through the [`Handle`] ([`Table::check_ref`] for pipes and GCRA,
//! [`Table::rate_check_ref`] for interval limits) without hashing the key
//! or reading tags, for callers that check the same keys again and again
//! (a trunk, a peer, a node's links).
//!
//! A handle names an entry's slot and its generation. Entries never move
//! (see the table's placement), and the generation changes whenever an
//! entry is deleted, evicted or created, so a handle whose entry has since
//! gone, or now holds another key, no longer matches: every call through it
//! fails with [`Error::Stale`] and touches nothing. On a hot entry the check
//! takes no lock: the generation is read before the state and again after
//! it (see [`hot`](super::hot)); on a locked entry it is compared under the
//! lock. The generation is 32 bits, bumped four times per life of an entry
//! (an insert and a delete each make it odd, then even): a handle could
//! only be mistaken for a later entry of its slot after 2^30 deletions and
//! creations there between two uses.

use super::codec::Cell;
use super::layout::*;
use super::lock::Ordering;
use super::word::Entry;
use super::{interval_call, lookup::key_error, Guard, Table};
use crate::{Error, Verdict};

/// A key resolved to its entry by [`Table::resolve`]; copy it freely, store
/// it as a `u64` ([`Handle::to_bits`]), share it between the processes of
/// one table (slots and generations are the table's, not a process's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Handle {
    slot: u32,
    gen: u32,
}

impl Handle {
    /// The handle as one integer (for C, or to store): the slot in the low
    /// 32 bits, the generation in the high 32.
    pub const fn to_bits(self) -> u64 {
        self.slot as u64 | ((self.gen as u64) << 32)
    }

    /// A handle from [`Handle::to_bits`]. Any value is accepted: one that
    /// names no live entry of the table is [`Error::Stale`] when used.
    pub const fn from_bits(bits: u64) -> Handle {
        Handle {
            slot: bits as u32,
            gen: (bits >> 32) as u32,
        }
    }

    /// The entry's slot (0 to the table's capacity), as
    /// [`Table::entry_at`] numbers them.
    pub const fn slot(self) -> usize {
        self.slot as usize
    }
}

impl<'a> Table<'a> {
    /// The handle of `key`'s entry: [`Error::NoPipe`] if there is none.
    pub fn resolve(&self, key: &[u8]) -> Result<Handle, Error> {
        let Some(k) = self.try_key(key) else {
            return Err(key_error(key));
        };
        let g = self.find(&k)?;
        Ok(Handle {
            slot: g.idx as u32,
            gen: g.gen(),
        })
    }

    /// [`Table::check`] through a handle: counts and decides one request
    /// on the handle's entry, or [`Error::Stale`] if that entry has been
    /// deleted, evicted or reused since [`Table::resolve`] (nothing is
    /// touched then).
    pub fn check_ref(&self, handle: Handle, now: u64) -> Result<Verdict, Error> {
        self.through(
            handle,
            #[inline(always)]
            |e| self.hot_check(e, handle.gen, now),
            |g| self.check_locked(g, now),
        )
    }

    /// [`Table::rate_check`] through a handle (FreeSWITCH `limit ...
    /// max/interval` on a key resolved once): `max` replaces the stored
    /// max, as each `rate_check` call's does, then one call is counted and
    /// decided. The interval, the anchor and the `max == 0` rule are the
    /// entry's, as the `rate_check` that created it set them; to change
    /// them, call [`Table::rate_check`] by key, which starts the entry
    /// afresh (a new entry: the old handle becomes stale where entries
    /// are hot, that is wherever the target has 64-bit atomics).
    /// [`Error::WrongAlgorithm`] if the entry is not an interval limit,
    /// [`Error::Stale`] as [`Table::check_ref`].
    pub fn rate_check_ref(&self, handle: Handle, max: i32, now: u64) -> Result<Verdict, Error> {
        let run = |c: &mut Cell| interval_call(c, max, now);
        self.through(
            handle,
            #[inline(always)]
            |e| self.hot_update::<_, false>(e, handle.gen, now, run),
            |g| self.update(g, now, run),
        )
    }

    /// Runs `hot` on the handle's entry if it is hot and of the handle's
    /// generation (lock-free, as [`Table::check`]'s hot path: the
    /// generation read after the meta word must be the handle's, and
    /// `hot` checks it again after reading the state), else `locked` on
    /// it under its lock, if it is still the handle's; [`Error::Stale`]
    /// otherwise, with nothing touched.
    #[inline(always)]
    fn through<T>(
        &self,
        handle: Handle,
        hot: impl FnOnce(&Entry) -> Result<Option<T>, Error>,
        locked: impl FnOnce(Guard<'a>) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let idx = handle.slot();
        let Some(e) = self.entries.get(idx) else {
            return Err(Error::Stale);
        };
        let m = e[E_META].load(Ordering::Acquire);
        if meta_state(m) == STATE_USED && m & META_HOT != 0 {
            if e[E_GEN].load(Ordering::Acquire) != handle.gen {
                return Err(Error::Stale);
            }
            if let Some(v) = hot(e)? {
                return Ok(v);
            }
        }
        let g = self.lock_idx(idx)?;
        if g.gen() != handle.gen || meta_state(g.e[E_META].load(Ordering::Relaxed)) != STATE_USED {
            return Err(Error::Stale);
        }
        locked(g)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::table::{Config, MAX_KEY_LEN};
    use crate::{Algorithm, MaxZero};

    const S: u64 = 1_000_000_000;

    /// A table of `capacity` entries and 4 lease records.
    fn with_table<R>(capacity: usize, f: impl FnOnce(Table<'_>) -> R) -> R {
        let config = Config {
            lease_capacity: 4,
            ..crate::table::tests::cfg(capacity)
        };
        crate::table::tests::with_table(config, f)
    }

    #[test]
    fn a_handle_checks_its_key_as_check_does() {
        with_table(8, |t| {
            assert_eq!(t.resolve(b"a"), Err(Error::NoPipe));
            assert_eq!(t.resolve(b""), Err(Error::EmptyKey));
            assert_eq!(t.resolve(&[1u8; MAX_KEY_LEN + 1]), Err(Error::KeyTooLong));
            assert_eq!(
                t.check_or_create(b"a", Algorithm::Taildrop, 3, 0),
                Ok(Verdict::Pass)
            );
            let h = t.resolve(b"a").unwrap();
            assert_eq!(Handle::from_bits(h.to_bits()), h);
            assert_eq!(t.entry_at(h.slot(), 0).unwrap().key(), b"a");
            // The same pipe, whichever way it is named.
            assert_eq!(t.check_ref(h, 1), Ok(Verdict::Pass));
            assert_eq!(t.check(b"a", 2), Ok(Verdict::Pass));
            assert_eq!(t.check_ref(h, 3), Ok(Verdict::Drop));
            assert_eq!(t.check_ref(h, 10 * S), Ok(Verdict::Pass));
            assert_eq!(t.get(b"a", 10 * S).unwrap().counter, 1);
            // A NOP pipe passes through its handle as through its key.
            assert_eq!(
                t.check_or_create(b"n", Algorithm::Nop, 1, 0),
                Ok(Verdict::PassNop)
            );
            let n = t.resolve(b"n").unwrap();
            assert_ne!(n.slot(), h.slot());
            assert_eq!(t.check_ref(n, 0), Ok(Verdict::PassNop));
        });
    }

    #[test]
    fn an_interval_limit_through_its_handle_is_rate_check_on_its_key() {
        with_table(8, |t| {
            for (key, first) in [(&b"aligned"[..], false), (b"first", true)] {
                let rc = |max, now| t.rate_check(key, max, 10 * S, first, MaxZero::ModHash, now);
                // Created by key, then by handle and by key in turn: one
                // count, one window, whichever way it is named.
                assert_eq!(rc(2, 3 * S), Ok(Verdict::Pass));
                let h = t.resolve(key).unwrap();
                assert_eq!(t.rate_check_ref(h, 2, 3 * S + 1), Ok(Verdict::Pass));
                assert_eq!(rc(2, 3 * S + 2), Ok(Verdict::Drop));
                assert_eq!(t.rate_check_ref(h, 2, 3 * S + 3), Ok(Verdict::Drop));
                // Each call's max replaces the stored one.
                assert_eq!(t.rate_check_ref(h, 5, 3 * S + 4), Ok(Verdict::Pass));
                assert_eq!(t.get(key, 3 * S + 4).unwrap().limit, 5);
                assert_eq!(t.get(key, 3 * S + 4).unwrap().counter, 5);
                // max 0 as the entry's rule says (mod_hash: only the
                // window's first call passes).
                assert_eq!(t.rate_check_ref(h, 0, 3 * S + 5), Ok(Verdict::Drop));
                // The next window: aligned at 10 s, or 10 s after 3 s.
                let next = if first { 13 * S } else { 10 * S };
                assert_eq!(t.rate_check_ref(h, 1, next - 1), Ok(Verdict::Drop));
                assert_eq!(t.rate_check_ref(h, 1, next), Ok(Verdict::Pass));
                assert_eq!(rc(1, next + 1), Ok(Verdict::Drop));
                let s = t.get(key, next + 1).unwrap();
                assert_eq!((s.counter, s.last_counter), (2, 7));
                // A new interval by key starts a new entry: the handle is
                // stale and touches nothing.
                assert_eq!(
                    t.rate_check(key, 1, 20 * S, first, MaxZero::ModHash, next + 2),
                    Ok(Verdict::Pass)
                );
                assert_eq!(t.rate_check_ref(h, 9, next + 3), Err(Error::Stale));
                assert_eq!(t.get(key, next + 3).unwrap().limit, 1);
            }
            // Another kind of entry: refused, untouched.
            assert_eq!(
                t.check_or_create(b"pipe", Algorithm::Taildrop, 3, 0),
                Ok(Verdict::Pass)
            );
            let p = t.resolve(b"pipe").unwrap();
            assert_eq!(t.rate_check_ref(p, 9, 1), Err(Error::WrongAlgorithm));
            assert_eq!(t.get(b"pipe", 1).unwrap().counter, 1);
            assert_eq!(
                t.rate_check_ref(Handle::from_bits(u64::MAX), 1, 1),
                Err(Error::Stale)
            );
        });
    }

    #[test]
    fn a_handle_of_a_deleted_evicted_or_reused_entry_is_stale() {
        with_table(1, |t| {
            // One entry: every key takes slot 0 in turn.
            assert_eq!(
                t.check_or_create(b"a", Algorithm::Taildrop, 1, 0),
                Ok(Verdict::Pass)
            );
            let a = t.resolve(b"a").unwrap();
            t.remove(b"a").unwrap();
            assert_eq!(t.check_ref(a, 0), Err(Error::Stale));
            // Reused by "b": a's handle still does not reach it.
            assert_eq!(
                t.check_or_create(b"b", Algorithm::Taildrop, 1, 0),
                Ok(Verdict::Pass)
            );
            let b = t.resolve(b"b").unwrap();
            assert_eq!(b.slot(), a.slot());
            assert_eq!(t.check_ref(a, 1), Err(Error::Stale));
            assert_eq!(t.get(b"b", 1).unwrap().counter, 1, "a's handle touched b");
            // "c" evicts the idle "b" (its window is over).
            assert_eq!(
                t.check_or_create(b"c", Algorithm::Taildrop, 1, 20 * S),
                Ok(Verdict::Pass)
            );
            assert_eq!(t.check_ref(b, 20 * S), Err(Error::Stale));
            assert_eq!(t.check(b"c", 20 * S), Ok(Verdict::Drop));
            // "a" again, in the same slot: a fresh handle, the old one stale.
            t.remove(b"c").unwrap();
            assert_eq!(
                t.check_or_create(b"a", Algorithm::Taildrop, 1, 30 * S),
                Ok(Verdict::Pass)
            );
            assert_eq!(t.check_ref(a, 30 * S), Err(Error::Stale));
            let a2 = t.resolve(b"a").unwrap();
            assert_eq!(t.check_ref(a2, 30 * S), Ok(Verdict::Drop));
            // clean_unused ends it too.
            assert_eq!(t.clean_unused(1, 100 * S), 1);
            assert_eq!(t.check_ref(a2, 100 * S), Err(Error::Stale));
        });
    }

    #[test]
    fn a_handle_from_nowhere_is_stale_and_touches_nothing() {
        with_table(4, |t| {
            assert_eq!(
                t.check_or_create(b"a", Algorithm::Taildrop, 1, 0),
                Ok(Verdict::Pass)
            );
            let h = t.resolve(b"a").unwrap();
            for bits in [
                u64::MAX,
                4,
                5,
                h.to_bits() ^ (1 << 32),
                h.to_bits() + (1 << 33),
            ] {
                assert_eq!(
                    t.check_ref(Handle::from_bits(bits), 0),
                    Err(Error::Stale),
                    "{bits:#x}"
                );
            }
            // Slots in range but free: stale whatever the generation.
            for slot in 0..4u64 {
                if slot as usize != h.slot() {
                    for gen in 0..4u64 {
                        let bits = slot | (gen << 32);
                        assert_eq!(t.check_ref(Handle::from_bits(bits), 0), Err(Error::Stale));
                    }
                }
            }
            assert_eq!(t.get(b"a", 0).unwrap().counter, 1);
        });
    }

    #[test]
    fn a_handle_on_a_slots_pipe_is_wrong_algorithm() {
        with_table(4, |t| {
            assert_eq!(t.acquire(b"s", 2, 0), Ok(crate::SlotVerdict::Acquired));
            let h = t.resolve(b"s").unwrap();
            assert_eq!(t.check(b"s", 0), Err(Error::WrongAlgorithm));
            assert_eq!(t.check_ref(h, 0), Err(Error::WrongAlgorithm));
            assert_eq!(t.usage(b"s", 0), Ok(1));
        });
    }
}
