//! Unit tests of hot interval limits whose windows start at the first
//! event (FreeSWITCH mod_hash's `max/interval`, see [`hot`](super::hot)):
//! checks and resets as exact as the bare limiter, rolls frozen under the
//! lock, a check whose swap a roll beat, and a roll left frozen by a killed
//! holder. (With a lock held by a live holder: `tests_busy.rs`.)

use super::hot::{S_H, S_P0, S_X};
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
        let got = t.hot_update::<_, false>(e, gen, 2 * S, true, |c| {
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
        assert_eq!(e.s[S_X].load(Ordering::Relaxed), 5 * S);
        assert_eq!(check(&t, 2, MaxZero::RefuseAll, 6 * S), Ok(Verdict::Drop));
        // Without the lock, a roll is not made: the locked path is.
        let got = t.hot_update::<_, false>(e, gen, 9 * S, true, |c| match &mut c.limiter {
            Limiter::Interval(l) => Ok(l.check(9 * S)),
            _ => Err(Error::WrongAlgorithm),
        });
        assert_eq!(got, Ok(None));
        assert_eq!(counters(&t, b"f", 6 * S), (3, 2), "nothing changed");
    });
}

#[test]
fn a_first_event_roll_left_frozen_by_a_killed_holder_is_undone() {
    with_table(|t| {
        for now in [S, 2 * S, 5 * S] {
            assert_eq!(check(&t, 5, MaxZero::RefuseAll, now), Ok(Verdict::Pass));
        }
        let e = entry(&t, b"f");
        let (h, x, p0) = (
            e.s[S_H].load(Ordering::Relaxed),
            e.s[S_X].load(Ordering::Relaxed),
            e.s[S_P0].load(Ordering::Relaxed),
        );
        assert_eq!((x, p0), (5 * S, 2), "the window's start, the last count");
        // Process 99 locked the entry to roll it to 9 s, froze it, stored
        // the new start and last count, and died before storing `H`.
        let lock = e[E_LOCK].load(Ordering::Relaxed);
        e[E_LOCK].store((lock & 0x8000_0000) | 99, Ordering::Relaxed);
        for (i, v) in [(6, x), (7, p0), (8, e.s[5].load(Ordering::Relaxed))] {
            e.s[i].store(v, Ordering::Relaxed);
        }
        e.s[S_H].store(h | FROZEN, Ordering::Relaxed);
        e.s[S_X].store(9 * S, Ordering::Relaxed);
        e.s[S_P0].store(1, Ordering::Relaxed);
        // A listing shows the window as it was; a check takes the lock over
        // and finds it so too.
        assert_eq!(t.iter(6 * S).count(), 1);
        assert_eq!(counters(&t, b"f", 6 * S), (1, 2));
        assert_eq!(e.s[S_H].load(Ordering::Relaxed), h, "undone");
        assert_eq!(
            (
                e.s[S_X].load(Ordering::Relaxed),
                e.s[S_P0].load(Ordering::Relaxed)
            ),
            (x, p0)
        );
        assert_eq!(lock::holder(&e[E_LOCK]), 0);
        assert_eq!(check(&t, 5, MaxZero::RefuseAll, 7 * S), Ok(Verdict::Pass));
        assert_eq!(counters(&t, b"f", 7 * S), (2, 2));
        assert_eq!(check(&t, 5, MaxZero::RefuseAll, 9 * S), Ok(Verdict::Pass));
        assert_eq!(counters(&t, b"f", 9 * S), (1, 2));
        assert!(hot(&t, b"f"));
    });
}
