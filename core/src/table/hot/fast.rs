//! The one-swap check: a TAILDROP check that stays in its window (the
//! common case) commits with one compare-and-swap of `H` without decoding
//! the limiter.
//!
//! It is [`Table::hot_update`]'s path for that case, taken in the same
//! order: read `H` (acquire) and the words the window needs, fence, read
//! the generation again; `H` must be open and not frozen and the window
//! of `now` the one `H` holds; then swap `H` to the count plus one. Any
//! other case (another algorithm, a roll, a saturated count, a failed
//! swap, a corrupt interval) changes nothing here and goes to
//! `hot_update`, which looks again from the start. So it adds no state
//! and no interleaving the general path does not have: its swap is the
//! general path's swap of a check that stays in its window.

use super::super::codec::Cell;
use super::super::layout::E_GEN;
use super::super::lock::{fence_acquire, Ordering};
use super::super::word::Entry;
use super::super::Table;
use super::{full_index, COUNT, FROZEN, IDX_MASK, IDX_SHIFT, OPEN, S_CFG, S_H, S_IV, S_X};
use crate::window::same_window;
use crate::{Algorithm, Error, Taildrop, Verdict};

impl Table<'_> {
    /// pipelimit's check of hot entry `e` (of generation `gen`, read even
    /// before its key was compared) at `now`, lock-free; `Ok(None)` as
    /// [`Table::hot_update`]: take the locked path.
    #[inline(always)]
    pub(crate) fn hot_check(
        &self,
        e: &Entry,
        gen: u32,
        now: u64,
    ) -> Result<Option<Verdict>, Error> {
        if let Some(v) = self.taildrop_in_window(e, gen, now, 0) {
            return Ok(Some(v));
        }
        self.hot_check_general(e, gen, now)
    }

    /// [`Table::hot_check`] of every other case.
    #[inline(always)]
    fn hot_check_general(&self, e: &Entry, gen: u32, now: u64) -> Result<Option<Verdict>, Error> {
        let shared = self.shared();
        self.hot_update::<_, false>(
            e,
            gen,
            now,
            true,
            #[inline(always)]
            |c: &mut Cell| c.limiter.check(now, &shared),
        )
    }

    /// The one-swap case (module docs): `None` if it does not hold or its
    /// swap failed, having changed nothing. `limit`: as
    /// [`Table::check_or_create`]'s, which replaces a limit above 0: the
    /// case holds only if that changes nothing (0 for a plain check).
    #[inline(always)]
    pub(crate) fn taildrop_in_window(
        &self,
        e: &Entry,
        gen: u32,
        now: u64,
        limit: i64,
    ) -> Option<Verdict> {
        let cfg = e.s[S_CFG].load(Ordering::Relaxed);
        if cfg as u32 & 0xf != Algorithm::Taildrop as u32
            || (limit > 0 && limit != i64::from((cfg >> 32) as u32))
        {
            return None;
        }
        let h = e.s[S_H].load(Ordering::Acquire);
        let iv = e.s[S_IV].load(Ordering::Relaxed);
        let x = e.s[S_X].load(Ordering::Relaxed);
        // The reader side of the generation's sequence lock, as in
        // hot_run: the same generation after the words were read means
        // they are this entry's.
        fence_acquire();
        if e[E_GEN].load(Ordering::Relaxed) != gen || h & (OPEN | FROZEN) != OPEN || iv == 0 {
            return None;
        }
        // The window `H` holds, as Snap::words finds its start.
        let idx = full_index(((h >> IDX_SHIFT) & IDX_MASK) as u16, x);
        let start = idx.saturating_mul(iv).saturating_add(self.epoch);
        if !same_window(start, iv, now) {
            return None;
        }
        // The count as the limiter's counter has it (at most COUNT, so no
        // overflow), stored saturating as `pack` stores it.
        let n = (h & COUNT) as u32 + 1;
        let new = (h & !COUNT) | u64::from(n).min(COUNT);
        if new == h || e.s[S_H].cas(h, new).is_err() {
            return None;
        }
        e.used.store(now, Ordering::Relaxed);
        Some(Taildrop::decide(n, (cfg >> 32) as u32))
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use crate::table::tests::{cfg, with_table};
    use crate::{Algorithm, Taildrop, Verdict, Window};

    const IV: u64 = 10_000_000_000;

    #[test]
    fn one_swap_checks_decide_and_count_as_the_bare_limiter() {
        with_table(cfg(4), |t| {
            let mut bare = Taildrop::new(3, Window::aligned(IV, 0).unwrap());
            assert_eq!(
                t.check_or_create(b"k", Algorithm::Taildrop, 3, 5),
                Ok(bare.check(5))
            );
            // In the window, past the limit, back in time (the window
            // stays), rolled on, idle windows, and by key, by handle and
            // through check_or_create with the same limit or none.
            let h = t.resolve(b"k").unwrap();
            let (a, b) = (IV, 4 * IV);
            let times = [6, 7, 8, 9, 3, a - 1, a, a + 1, a - 2, b + 7, b + 8];
            for (i, now) in times.into_iter().enumerate() {
                let got = match i % 4 {
                    0 => t.check(b"k", now),
                    1 => t.check_ref(h, now),
                    2 => t.check_or_create(b"k", Algorithm::Red, 3, now),
                    _ => t.check_or_create(b"k", Algorithm::Taildrop, 0, now),
                };
                assert_eq!(got, Ok(bare.check(now)), "check {i} at {now}");
                let s = t.get(b"k", now).unwrap();
                let c = bare.counter();
                assert_eq!(
                    (s.algorithm, s.counter, s.last_counter),
                    (Algorithm::Taildrop, c.counter(), c.last_counter()),
                    "after check {i} at {now}"
                );
            }
        });
    }

    #[test]
    fn a_new_limit_takes_the_general_path_and_applies() {
        with_table(cfg(4), |t| {
            assert_eq!(
                t.check_or_create(b"k", Algorithm::Taildrop, 1, 1),
                Ok(Verdict::Pass)
            );
            assert_eq!(t.check(b"k", 2), Ok(Verdict::Drop));
            assert_eq!(
                t.check_or_create(b"k", Algorithm::Taildrop, 5, 3),
                Ok(Verdict::Pass),
                "count 3 under the new limit 5"
            );
            let s = t.get(b"k", 4).unwrap();
            assert_eq!((s.limit, s.counter), (5, 3));
        });
    }
}
