//! The one-swap check: a TAILDROP check that stays in its window (the
//! common case) commits with one compare-and-swap of `H` without decoding
//! the limiter.
//!
//! [`Table::hot_update_fast`] reads the first round of its loop (the
//! words, the fence, the generation: the same reads in the same order)
//! before its general code, and tries the shortcut on it: the snapshot
//! must be live, not frozen and of the caller's generation, the window of
//! `now` the one `H` holds, and the swap is `H` to the count plus one, the
//! very swap the general path makes for such a check. Any other case
//! (another algorithm, a roll, a new limit, a saturated count, a corrupt
//! interval) hands the same snapshot on to the general path; a failed
//! swap reads again, as the general path does. So it adds no read, no
//! state and no interleaving (the loom models explore exactly as many as
//! before), and saves the codec's decoding and encoding.

use super::super::codec::Cell;
use super::super::word::Entry;
use super::super::Table;
use super::{Snap, COUNT, FROZEN, IDX_SHIFT, OPEN};
use crate::window::same_window;
use crate::{Error, Taildrop, Verdict};

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
        self.hot_update_fast::<_, false>(
            e,
            gen,
            now,
            #[inline(always)]
            |snap| self.taildrop_in_window(snap, now, 0),
            #[inline(always)]
            |c: &mut Cell| c.limiter.check(now, &self.shared()),
        )
    }

    /// The one-swap case (module docs) on `snap`, a TAILDROP entry's
    /// words ([`Table::hot_update_fast`] asks only for those): the new `H`
    /// and the verdict, or `None` if it does not hold. `limit`: as
    /// [`Table::check_or_create`]'s, which replaces a limit above 0: the
    /// case holds only if that changes nothing (0 for a plain check).
    #[inline(always)]
    pub(crate) fn taildrop_in_window(
        &self,
        snap: &Snap,
        now: u64,
        limit: i64,
    ) -> Option<(u64, Verdict)> {
        let (stored, h, iv) = (snap.limit, snap.h, snap.iv);
        if (limit > 0 && limit != i64::from(stored)) || h & (OPEN | FROZEN) != OPEN || iv == 0 {
            return None;
        }
        // The window `H` holds, as Snap::words finds its start: in the
        // start word of its roll count's parity.
        let start = snap.p[((h >> IDX_SHIFT) & 1) as usize];
        if !same_window(start, iv, now) {
            return None;
        }
        // The count as the limiter's counter has it (at most COUNT, so no
        // overflow), stored saturating as `pack` stores it.
        let n = (h & COUNT) as u32 + 1;
        let new = (h & !COUNT) | u64::from(n).min(COUNT);
        if new == h {
            return None;
        }
        Some((new, Taildrop::decide(n, stored)))
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
