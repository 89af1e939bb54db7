//! Unit tests of a hot window pipe's rolls (see [`hot`](super::hot) and
//! `hot/roll.rs`): rolls whose packed word comes out the same, rolls of
//! any distance, none of which takes the lock, a roll left at any step by
//! a killed caller, the last window of time, and SLIDING drops, which move
//! nothing.

use super::hot::{S_H, S_P0, S_P1, S_X};
use super::tests::{as_bytes, region};
use super::*;
use crate::Verdict;

/// Windows of 1 ms, so that 2^32 of them fit in a `u64` of nanoseconds.
const IV: u64 = 1_000_000;

fn config() -> Config {
    Config {
        capacity: 8,
        lease_capacity: 8,
        interval_ns: IV,
        epoch: 0,
        seed: 0x1234_5678,
    }
}

/// A live process other than the table's owner.
const OTHER: u32 = 2;

/// A table whose owner is process 1, and whose other processes but
/// [`OTHER`] are all dead (a lock word naming one is taken over).
pub(super) fn with_table<R>(f: impl FnOnce(Table<'_>) -> R) -> R {
    fn alive(id: u32) -> bool {
        id == 1 || id == OTHER
    }
    let c = config();
    let mut mem = region(Table::size_for(&c).unwrap());
    let t = Table::init_in(as_bytes(&mut mem), &c, Owner::new(1, alive).unwrap()).unwrap();
    f(t)
}

pub(super) fn entry<'t>(t: &'t Table<'_>, key: &[u8]) -> &'t Entry {
    let idx = t.find(&t.key(key).unwrap()).map(|g| g.idx).unwrap();
    &t.entries[idx]
}

/// `(counter, last_counter)` of `key` at `now`.
fn counters(t: &Table<'_>, key: &[u8], now: u64) -> (u32, u32) {
    let st = t.get(key, now).unwrap();
    (st.counter, st.last_counter)
}

#[test]
fn a_roll_of_2_16_windows_with_the_same_count_moves_the_window() {
    with_table(|t| {
        // One pass per window, the window moved far (2^16 windows) and
        // back to the same count: the roll must commit, or the next check
        // would roll again and pass.
        let t0 = 5 * IV;
        assert_eq!(
            t.check_or_create(b"k", Algorithm::Taildrop, 1, t0),
            Ok(Verdict::Pass)
        );
        let t1 = t0 + (1 << 16) * IV;
        assert_eq!(t.check(b"k", t1), Ok(Verdict::Pass));
        assert_eq!(t.check(b"k", t1 + 1), Ok(Verdict::Drop));
        assert_eq!(counters(&t, b"k", t1), (2, 0));
        assert_eq!(counters(&t, b"k", t1 + IV), (0, 2));
        // The same through a handle.
        let h = t.resolve(b"k").unwrap();
        let t2 = t1 + (3 << 16) * IV;
        assert_eq!(t.check_ref(h, t2), Ok(Verdict::Pass));
        assert_eq!(t.check_ref(h, t2), Ok(Verdict::Drop));
        assert_eq!(counters(&t, b"k", t2), (2, 0));
    });
}

#[test]
fn the_last_aligned_window_opens_as_the_bare_limiter() {
    use crate::window::LAST_START;
    use crate::{IntervalLimit, MaxZero, Window};
    // 1 ns windows from epoch 0: a call at u64::MAX is in the window that
    // starts at LAST_START (`Window`), not u64::MAX, the value of an
    // unclaimed `S_P0`.
    with_table(|t| {
        let mut bare = IntervalLimit::new(2, Window::aligned(1, 0).unwrap(), MaxZero::RefuseAll);
        for _ in 0..3 {
            let v = t.rate_check(b"m", 2, 1, false, MaxZero::RefuseAll, u64::MAX);
            assert_eq!(v, Ok(bare.check(u64::MAX)));
            let s = t.get(b"m", u64::MAX).unwrap();
            assert_eq!((s.counter, s.last_counter), bare.counter().view(u64::MAX));
        }
        assert_eq!(bare.counter().view(u64::MAX), (3, 0));
        assert_eq!(entry(&t, b"m").s[S_P0].load(Ordering::Relaxed), LAST_START);
    });
}

/// Rolls of every distance, up to the end of time, none of them under the
/// lock: a live process holds the entry's lock word throughout.
#[test]
fn rolls_of_any_distance_take_no_lock_and_keep_the_window_exact() {
    with_table(|t| {
        assert_eq!(
            t.check_or_create(b"k", Algorithm::Taildrop, 3, 0),
            Ok(Verdict::Pass)
        );
        let e = entry(&t, b"k");
        let was = e[E_LOCK].load(Ordering::Relaxed);
        e[E_LOCK].store((was & 0x8000_0000) | OTHER, Ordering::Relaxed);
        let mut now = 0;
        // Rolls so far: one per mark; a roll of `FAR` windows or more hops
        // first, at most twice (`hot/roll.rs`).
        let mut r = 0u64;
        let steps = [
            1u64 << 15,
            1,
            2,
            (1 << 15) - 1,
            1 << 40,
            3,
            1 << 16,
            1 << 32,
        ];
        for step in steps {
            now += step * IV;
            let before = r;
            // The window before was left with 4 (see the end of the loop).
            let last: u32 = if step == 1 { 4 } else { 0 };
            assert_eq!(t.check(b"k", now), Ok(Verdict::Pass));
            assert_eq!(t.check(b"k", now - 1), Ok(Verdict::Pass), "same window");
            // The roll count in `H`, the start in its parity's word, the
            // last count in `S_X`, tagged.
            let h = e.s[S_H].load(Ordering::Relaxed);
            r = (h >> 32) & 0xffff;
            // `S_X` carries the generation, as `H` does.
            assert_eq!(e.s[S_X].load(Ordering::Relaxed) >> 49, h >> 49);
            let marks = r.wrapping_sub(before) & 0xffff;
            if step < super::hot::FAR {
                assert_eq!(marks, 1, "after {before}");
            } else {
                assert!((2..=3).contains(&marks), "{marks} after {before}");
            }
            let p = [S_P0, S_P1][(r & 1) as usize];
            assert_eq!(e.s[p].load(Ordering::Relaxed), now);
            assert_eq!(
                e.s[S_X].load(Ordering::Relaxed) & 0xffff_ffff_ffff,
                (r << 32) | u64::from(last)
            );
            assert_eq!(counters(&t, b"k", now), (2, last));
            assert_eq!(
                t.check(b"k", now.saturating_sub(1 << 50)),
                Ok(Verdict::Pass)
            );
            assert_eq!(t.check(b"k", now), Ok(Verdict::Drop));
            assert_eq!(counters(&t, b"k", now + IV), (0, 4));
        }
        // To the last window of time (1 ms windows from epoch 0).
        let end = u64::MAX - u64::MAX % IV;
        assert_eq!(t.check(b"k", u64::MAX), Ok(Verdict::Pass));
        assert_eq!(t.check(b"k", end), Ok(Verdict::Pass));
        assert_eq!(counters(&t, b"k", u64::MAX), (2, 0));
        assert_eq!(t.check(b"k", end - IV), Ok(Verdict::Pass), "time back");
        assert_eq!(t.check(b"k", u64::MAX), Ok(Verdict::Drop));
        assert_eq!(lock::holder(&e[E_LOCK]), OTHER, "still the live holder's");
        e[E_LOCK].store(was, Ordering::Release);
    });
}

#[test]
fn a_start_2_32_windows_on_is_not_the_next_window() {
    with_table(|t| {
        // Window 10 ends with 3 checks, the last window of window 11.
        for _ in 0..3 {
            assert_eq!(
                t.check_or_create(b"k", Algorithm::Taildrop, 9, 10 * IV),
                Ok(Verdict::Pass)
            );
        }
        assert_eq!(t.check(b"k", 11 * IV), Ok(Verdict::Pass));
        assert_eq!(counters(&t, b"k", 11 * IV), (1, 3));
        // Window 11 + 2^32 (the same low 32 bits of the index as 11's):
        // an idle window between.
        let far = (11 + (1u64 << 32)) * IV;
        assert_eq!(t.check(b"k", far), Ok(Verdict::Pass));
        assert_eq!(counters(&t, b"k", far), (1, 0));
        assert_eq!(t.check(b"k", far + IV), Ok(Verdict::Pass));
        assert_eq!(counters(&t, b"k", far + IV), (1, 1));
    });
}

/// A caller killed after each step of an aligned roll (mark, new start
/// stored, last count stored), to the next window and to one 4 windows
/// on: the next caller, a listing or the locked path's recovery finishes
/// the roll, counting the killed call (its reply was lost) as the new
/// window's first.
#[test]
fn an_aligned_roll_left_at_any_step_by_a_killed_caller_is_finished() {
    const FROZEN: u64 = 1 << 48;
    const OPEN: u64 = 1 << 31;
    let cases = (0..3).flat_map(|s| ["check", "listing", "lock"].map(move |by| (s, by)));
    for ((step, by), w) in cases.flat_map(|c| [(c, 22u64), (c, 25)]) {
        with_table(|t| {
            for now in [20 * IV, 20 * IV + 1, 21 * IV] {
                let v = t.check_or_create(b"k", Algorithm::Taildrop, 5, now);
                assert_eq!(v, Ok(Verdict::Pass));
            }
            let e = entry(&t, b"k");
            let h = e.s[S_H].load(Ordering::Relaxed);
            assert_eq!((h >> 32) & 0xffff, 1, "one roll");
            assert_eq!(h & 0xffff, 1, "one call in window 21");
            assert_eq!(e.s[S_P1].load(Ordering::Relaxed), 21 * IV);
            assert_eq!(
                e.s[S_X].load(Ordering::Relaxed) & 0xffff_ffff_ffff,
                (1 << 32) | 2
            );
            // A caller in window `w` marked `H` (roll 2: window 21's count
            // with the open bit for the next window, else the distance),
            // then (by step) stored window `w`'s start, then its last
            // count, and died.
            let d = w - 21;
            let last = if d == 1 { 1 } else { 0 };
            let rolling = (h & !((0xffff << 32) | OPEN | 0xffff)) | (2 << 32) | FROZEN;
            let mark = if d == 1 {
                rolling | OPEN | 1
            } else {
                rolling | d
            };
            e.s[S_H].store(mark, Ordering::Relaxed);
            if step >= 1 {
                e.s[S_P0].store(w * IV, Ordering::Relaxed);
            }
            if step >= 2 {
                e.s[S_X].store(
                    (h & !0xffff_ffff_ffff) | (2 << 32) | last,
                    Ordering::Relaxed,
                );
            }
            let at = w * IV;
            let what = format!("{step} {by} {w}");
            match by {
                "listing" => {
                    assert_eq!(t.iter(at).count(), 1);
                    assert_eq!(counters(&t, b"k", at), (1, last as u32), "{what}");
                }
                "lock" => {
                    t.hot_recover(e);
                    assert_eq!(counters(&t, b"k", at), (1, last as u32), "{what}");
                }
                _ => {}
            }
            // A check of window `w` after the killed one, and one that
            // went back in time (counted in window `w` too).
            assert_eq!(t.check(b"k", at + 5), Ok(Verdict::Pass), "{what}");
            assert_eq!(t.check(b"k", 21 * IV), Ok(Verdict::Pass), "{what}");
            assert_eq!(counters(&t, b"k", at), (3, last as u32), "{what}");
            assert_eq!(e.s[S_P0].load(Ordering::Relaxed), at, "{what}");
            assert_eq!(t.check(b"k", at + IV), Ok(Verdict::Pass));
            assert_eq!(counters(&t, b"k", at + IV), (1, 3), "{what}");
            assert_eq!(e.s[S_H].load(Ordering::Relaxed) & FROZEN, 0);
            assert_eq!(lock::holder(&e[E_LOCK]), 0);
        });
    }
}

/// A roll that RED, REDP and SLIDING decide by the last window's count is
/// decided on the count its swap replaced: a check counted in the old
/// window after the roller read it makes the roller decide again.
#[test]
fn a_roll_decides_on_the_count_it_replaces() {
    use crate::{SlidingWindow, Window};
    with_table(|t| {
        let mut bare = SlidingWindow::new(3, Window::aligned(IV, 0).unwrap());
        assert_eq!(t.set(b"s", Algorithm::Sliding, 3, 0), Ok(()));
        for now in [0, 1] {
            assert_eq!(t.check(b"s", now), Ok(bare.check(now)));
        }
        let e = entry(&t, b"s");
        let gen = e[E_GEN].load(Ordering::Relaxed);
        let mut late = true;
        // The roll to window 1 at its start, with a check of window 0 (its
        // third pass) coming in between the roller's read and its swap:
        // the roller, which passed on a last count of 2, drops on 3.
        let got = t.hot_update::<_, false>(e, gen, IV, |c| {
            if core::mem::take(&mut late) {
                assert_eq!(t.check(b"s", IV - 1), Ok(bare.check(IV - 1)));
            }
            c.limiter.check(IV, &t.shared())
        });
        assert_eq!(got, Ok(Some(bare.check(IV))));
        assert_eq!(got, Ok(Some(Verdict::Drop)));
        assert_eq!(counters(&t, b"s", IV), bare.counter().view(IV));
        assert_eq!(counters(&t, b"s", IV), (0, 3));
    });
}

#[test]
fn a_sliding_drop_before_any_pass_opens_no_window() {
    use crate::{SlidingWindow, Window};
    // Found by a long table_model run: a table whose SLIDING pipe's first
    // call dropped must open its first window where the bare limiter
    // does, which a later call with an earlier time shows.
    with_table(|t| {
        let mut bare = SlidingWindow::new(0, Window::aligned(IV, 0).unwrap());
        assert_eq!(t.set(b"s", Algorithm::Sliding, 0, 0), Ok(()));
        assert_eq!(t.check(b"s", 50 * IV + 1), Ok(bare.check(50 * IV + 1)));
        bare.set_limit(1);
        let v = t.check_or_create(b"s", Algorithm::Taildrop, 1, 10 * IV);
        assert_eq!(v, Ok(bare.check(10 * IV)));
        assert_eq!(v, Ok(Verdict::Pass));
        for now in [10 * IV, 11 * IV, 50 * IV + 1] {
            let c = bare.counter();
            assert_eq!(counters(&t, b"s", now), c.view(now), "at {now}");
        }
        assert_eq!(counters(&t, b"s", 10 * IV), (1, 0));
    });
}

#[test]
fn a_sliding_drop_in_a_later_window_moves_nothing() {
    use crate::{SlidingWindow, Window};
    // A roll needs a counted call (`hot/roll.rs`): a SLIDING drop, which
    // counts nothing, leaves the window where it was, as the bare limiter
    // does, which a later call with an earlier time shows.
    with_table(|t| {
        let mut bare = SlidingWindow::new(2, Window::aligned(IV, 0).unwrap());
        assert_eq!(t.set(b"s", Algorithm::Sliding, 2, 0), Ok(()));
        for now in [IV - 10, IV - 9, IV + 1, IV - 5, 2 * IV - 1, IV + IV / 2] {
            assert_eq!(t.check(b"s", now), Ok(bare.check(now)), "at {now}");
            let c = bare.counter();
            assert_eq!(counters(&t, b"s", now), c.view(now), "at {now}");
        }
        // The drops at IV + 1 and IV - 5 left window 0 open; the pass at
        // 1.5 IV moved it.
        assert_eq!(bare.counter().state().start(), Some(IV));
        assert_eq!(counters(&t, b"s", IV), (1, 2));
        let h = entry(&t, b"s").s[S_H].load(Ordering::Relaxed);
        assert_eq!((h >> 32) & 0xffff, 1, "one roll");
    });
}
