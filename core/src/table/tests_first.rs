//! Unit tests of hot interval limits whose windows start at the first
//! event (FreeSWITCH mod_hash's `max/interval`, see [`hot`](super::hot)):
//! checks and resets as exact as the bare limiter, rolls without the lock,
//! a check whose swap a roll beat, two rolls that race, and a roll left at
//! every step by a killed caller. (With a lock held by a live holder:
//! `tests_busy.rs`.)

use super::hot::{S_H, S_P0, S_P1, S_X};
use super::tests_hot::{entry, with_table};
use super::*;
use crate::{IntervalLimit, MaxZero, Verdict, Window};

const FROZEN: u64 = 1 << 48;
/// One second, FreeSWITCH's unit.
const S: u64 = 1_000_000_000;

fn hot(t: &Table<'_>, key: &[u8]) -> bool {
    entry(t, key)[E_META].load(Ordering::Relaxed) & META_HOT != 0
}

/// `(counter, last_counter)` of `key` at `now`.
fn counters(t: &Table<'_>, key: &[u8], now: u64) -> (u32, u32) {
    let s = t.get(key, now).unwrap();
    (s.counter, s.last_counter)
}

fn check(t: &Table<'_>, max: i32, zero: MaxZero, now: u64) -> Result<Verdict, Error> {
    t.rate_check(b"f", max, 3 * S, true, zero, now)
}

#[test]
fn first_event_intervals_are_hot_and_count_as_the_bare_limiter() {
    for zero in [MaxZero::RefuseAll, MaxZero::ModHash, MaxZero::Unlimited] {
        with_table(|t| {
            let w = Window::first_event(3 * S).unwrap();
            let mut bare = IntervalLimit::new(2, w, zero);
            let mut now = 7 * S;
            let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
            for step in 0..if cfg!(miri) { 40 } else { 3_000 } {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                // In the window, into the next one, an idle window or more
                // on, or back in time (the window stays).
                now = match (x >> 4) % 8 {
                    0..=3 => now + (x >> 12) % (S / 2),
                    4 => now + 3 * S + (x >> 12) % (3 * S),
                    5 => now + 6 * S + (x >> 12) % (40 * S),
                    6 => now.saturating_sub((x >> 12) % (5 * S)),
                    _ => now,
                };
                let max = ((x >> 40) % 5) as i32 - 1;
                if x & 15 == 0 && step > 0 {
                    bare.reset();
                    assert_eq!(t.interval_reset(b"f", now), Ok(()), "{step}");
                } else {
                    bare.set_max(max);
                    assert_eq!(check(&t, max, zero, now), Ok(bare.check(now)), "{step}");
                }
                let c = bare.counter();
                let s = t.get(b"f", now).unwrap();
                assert_eq!(
                    (s.counter, s.last_counter),
                    c.view(now),
                    "{zero:?}: after step {step} at {now}"
                );
                assert!(hot(&t, b"f"), "{step}");
            }
        });
    }
}

#[test]
fn a_check_that_a_roll_beat_lands_in_the_new_window() {
    with_table(|t| {
        assert_eq!(check(&t, 2, MaxZero::RefuseAll, S), Ok(Verdict::Pass));
        assert_eq!(check(&t, 2, MaxZero::RefuseAll, S), Ok(Verdict::Pass));
        let e = entry(&t, b"f");
        let gen = e[E_GEN].load(Ordering::Relaxed);
        // A check in window [1 s, 4 s) without the lock; before its swap,
        // another caller rolls to the window starting at 5 s. The swap
        // fails, and the check runs again on the new window: its time
        // lies before that window's start, which keeps it (time went
        // backwards in the serial order), so it is the second call there.
        let mut rolled = false;
        let got = t.hot_update::<_, false>(e, gen, 2 * S, |c| {
            if !rolled {
                rolled = true;
                assert_eq!(check(&t, 2, MaxZero::RefuseAll, 5 * S), Ok(Verdict::Pass));
            }
            match &mut c.limiter {
                Limiter::Interval(l) => Ok(l.check(2 * S)),
                _ => Err(Error::WrongAlgorithm),
            }
        });
        assert_eq!(got, Ok(Some(Verdict::Pass)));
        assert_eq!(counters(&t, b"f", 5 * S), (2, 2));
        // Window 1's start in the odd start word, (1, 2) as the last count.
        assert_eq!(e.s[S_P1].load(Ordering::Relaxed), 5 * S);
        assert_eq!(
            e.s[S_X].load(Ordering::Relaxed) & 0xffff_ffff_ffff,
            (1 << 32) | 2
        );
        assert_eq!(check(&t, 2, MaxZero::RefuseAll, 6 * S), Ok(Verdict::Drop));
        // Without the lock, a roll is made too: the window [9 s, 12 s).
        let got = t.hot_update::<_, false>(e, gen, 9 * S, |c| match &mut c.limiter {
            Limiter::Interval(l) => Ok(l.check(9 * S)),
            _ => Err(Error::WrongAlgorithm),
        });
        assert_eq!(got, Ok(Some(Verdict::Pass)));
        assert_eq!(counters(&t, b"f", 9 * S), (1, 3));
        assert_eq!(e.s[S_P0].load(Ordering::Relaxed), 9 * S);
        assert_eq!(check(&t, 2, MaxZero::RefuseAll, 11 * S), Ok(Verdict::Pass));
        assert_eq!(check(&t, 2, MaxZero::RefuseAll, 12 * S), Ok(Verdict::Pass));
        assert_eq!(counters(&t, b"f", 12 * S), (1, 2), "rolled at 12 s");
    });
}

/// A check that finds the next window's start claimed by another caller
/// (whose call is that window's first, mod_hash's `max == 0` pass) adopts
/// it: its own call is the second there, even when its time lies before
/// the claimed start.
#[test]
fn a_roll_whose_start_another_caller_claimed_adopts_it() {
    with_table(|t| {
        let zero = MaxZero::ModHash;
        assert_eq!(
            check(&t, 0, zero, S),
            Ok(Verdict::Pass),
            "first of [1 s, 4 s)"
        );
        assert_eq!(check(&t, 0, zero, 2 * S), Ok(Verdict::Drop));
        let e = entry(&t, b"f");
        let gen = e[E_GEN].load(Ordering::Relaxed);
        // A check at 4.5 s; before it claims, one at 5 s rolls (and passes:
        // the first call of its window).
        let mut raced = false;
        let got = t.hot_update::<_, false>(e, gen, 4 * S + S / 2, |c| {
            if !raced {
                raced = true;
                assert_eq!(check(&t, 0, zero, 5 * S), Ok(Verdict::Pass));
            }
            match &mut c.limiter {
                Limiter::Interval(l) => Ok(l.check(4 * S + S / 2)),
                _ => Err(Error::WrongAlgorithm),
            }
        });
        assert_eq!(got, Ok(Some(Verdict::Drop)), "the window's second call");
        assert_eq!(counters(&t, b"f", 5 * S), (2, 2));
        // The window is [5 s, 8 s): 7.9 s is in it, 8 s rolls.
        assert_eq!(check(&t, 0, zero, 8 * S - 1), Ok(Verdict::Drop));
        assert_eq!(check(&t, 0, zero, 8 * S), Ok(Verdict::Pass));
        assert_eq!(counters(&t, b"f", 8 * S), (1, 3));
    });
}

/// A caller killed after each step of a roll (claim, mark, last count
/// stored): the next caller finishes the roll from the killed one's start,
/// counting the killed call (its reply was lost) as the window's first;
/// so do a listing and the locked path's recovery. No lock is taken.
#[test]
fn a_first_event_roll_left_at_any_step_by_a_killed_caller_is_finished() {
    for (step, by) in (0..3).flat_map(|s| [(s, "check"), (s, "listing"), (s, "lock")]) {
        with_table(|t| {
            for now in [S, 2 * S, 5 * S] {
                assert_eq!(check(&t, 5, MaxZero::RefuseAll, now), Ok(Verdict::Pass));
            }
            let e = entry(&t, b"f");
            let h = e.s[S_H].load(Ordering::Relaxed);
            assert_eq!(h >> 32 & 0xffff, 1, "one roll");
            assert_eq!(e.s[S_P1].load(Ordering::Relaxed), 5 * S);
            assert_eq!(
                e.s[S_X].load(Ordering::Relaxed) & 0xffff_ffff_ffff,
                (1 << 32) | 2
            );
            // A caller at 9 s claimed window 2's start, then (by step)
            // marked `H` (window 2, rolling, count 1 of window 1), then
            // stored window 2's last count, and died.
            e.s[S_P0].store(9 * S, Ordering::Relaxed);
            let marked = (h & !(0xffff << 32)) | (2 << 32) | FROZEN;
            if step >= 1 {
                e.s[S_H].store(marked, Ordering::Relaxed);
            }
            if step >= 2 {
                e.s[S_X].store((h & !0xffff_ffff_ffff) | (2 << 32) | 1, Ordering::Relaxed);
            }
            match by {
                "listing" => {
                    assert_eq!(t.iter(9 * S).count(), 1);
                    if step >= 1 {
                        assert_eq!(counters(&t, b"f", 9 * S), (1, 1), "{step}: finished");
                    }
                }
                "lock" => {
                    // What the locked path's recovery runs on an entry a
                    // killed holder left: a marked roll is finished, not
                    // undone.
                    t.hot_recover(e);
                    if step >= 1 {
                        assert_eq!(counters(&t, b"f", 9 * S), (1, 1), "{step}: finished");
                    }
                }
                _ => {}
            }
            assert_eq!(
                check(&t, 5, MaxZero::RefuseAll, 10 * S),
                Ok(Verdict::Pass),
                "{step} {by}"
            );
            assert_eq!(counters(&t, b"f", 10 * S), (2, 1), "{step} {by}");
            // The window is [9 s, 12 s): 12 s rolls.
            assert_eq!(
                check(&t, 5, MaxZero::RefuseAll, 12 * S - 1),
                Ok(Verdict::Pass)
            );
            assert_eq!(check(&t, 5, MaxZero::RefuseAll, 12 * S), Ok(Verdict::Pass));
            assert_eq!(counters(&t, b"f", 12 * S), (1, 3), "{step} {by}");
            assert_eq!(e.s[S_H].load(Ordering::Relaxed) & FROZEN, 0);
            assert_eq!(lock::holder(&e[E_LOCK]), 0);
            assert!(hot(&t, b"f"));
        });
    }
}
