//! Unit tests of the hot path's window index and records (see
//! [`hot`](super::hot)): rolls whose packed word comes out the same, rolls
//! too far for the lock-free path, records that could pass for another
//! window, and a frozen roll left by a killed holder.

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

/// A table whose owner is process 1, and whose other processes are all
/// dead (a lock word naming one is taken over).
pub(super) fn with_table<R>(f: impl FnOnce(Table<'_>) -> R) -> R {
    fn alive(id: u32) -> bool {
        id == 1
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
        // One pass per window. 2^16 windows on, the packed word of the new
        // window (index bits, count 1) equals the old one's: the roll must
        // still commit, or the next check would roll again and pass.
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
    use crate::window::LAST_INDEX;
    use crate::{IntervalLimit, MaxZero, Window};
    // 1 ns windows from epoch 0: a call at u64::MAX is in window
    // LAST_INDEX (`Window`), not u64::MAX, the value of an unclaimed `S_X`.
    with_table(|t| {
        let mut bare = IntervalLimit::new(2, Window::aligned(1, 0).unwrap(), MaxZero::RefuseAll);
        for _ in 0..3 {
            let v = t.rate_check(b"m", 2, 1, false, MaxZero::RefuseAll, u64::MAX);
            assert_eq!(v, Ok(bare.check(u64::MAX)));
            let s = t.get(b"m", u64::MAX).unwrap();
            assert_eq!((s.counter, s.last_counter), bare.counter().view(u64::MAX));
        }
        assert_eq!(bare.counter().view(u64::MAX), (3, 0));
        assert_eq!(entry(&t, b"m").s[S_X].load(Ordering::Relaxed), LAST_INDEX);
    });
}

#[test]
fn far_rolls_store_the_window_index_exactly() {
    with_table(|t| {
        assert_eq!(
            t.check_or_create(b"k", Algorithm::Taildrop, 3, 0),
            Ok(Verdict::Pass)
        );
        // Far (2^15 windows or more, under the lock) and near rolls, and
        // a clock gone back (the window stays).
        let mut now = 0;
        for step in [1u64 << 15, 1, 2, (1 << 15) - 1, 1 << 40, 3] {
            now += step * IV;
            // The window before was left with 4 (see the end of the loop).
            let last = if step == 1 { 4 } else { 0 };
            assert_eq!(t.check(b"k", now), Ok(Verdict::Pass));
            assert_eq!(t.check(b"k", now - 1), Ok(Verdict::Pass), "same window");
            let e = entry(&t, b"k");
            assert_eq!(e.s[S_X].load(Ordering::Relaxed), now / IV);
            assert_eq!(counters(&t, b"k", now), (2, last));
            assert_eq!(
                t.check(b"k", now.saturating_sub(1 << 50)),
                Ok(Verdict::Pass)
            );
            assert_eq!(t.check(b"k", now), Ok(Verdict::Drop));
            assert_eq!(counters(&t, b"k", now + IV), (0, 4));
        }
    });
}

#[test]
fn a_record_from_2_32_windows_back_is_not_the_last_window() {
    with_table(|t| {
        // Window 10 ends with 3 checks, recorded for window 11.
        for _ in 0..3 {
            assert_eq!(
                t.check_or_create(b"k", Algorithm::Taildrop, 9, 10 * IV),
                Ok(Verdict::Pass)
            );
        }
        assert_eq!(t.check(b"k", 11 * IV), Ok(Verdict::Pass));
        assert_eq!(counters(&t, b"k", 11 * IV), (1, 3));
        // Window 10 + 2^32 names its last window by the same 32 bits as
        // window 10: a far roll leaves a record that says it was idle.
        let far = (11 + (1u64 << 32)) * IV;
        assert_eq!(t.check(b"k", far), Ok(Verdict::Pass));
        assert_eq!(counters(&t, b"k", far), (1, 0));
    });
}

#[test]
fn a_near_roll_leaves_no_record_that_passes_for_its_last_window() {
    with_table(|t| {
        assert_eq!(
            t.check_or_create(b"k", Algorithm::Taildrop, 9, 100 * IV),
            Ok(Verdict::Pass)
        );
        // A stale record in window 101's word that names window 101 (as a
        // record 2^32 windows old would), beside window 99's in the other.
        let e = entry(&t, b"k");
        e.s[S_P1].store((101 << 32) | 7, Ordering::Relaxed);
        // Two windows on, without the lock: window 102 reads 101's word.
        assert_eq!(t.check(b"k", 102 * IV), Ok(Verdict::Pass));
        assert_eq!(counters(&t, b"k", 102 * IV), (1, 0));
        // One window on: the count of 102 is its last.
        assert_eq!(t.check(b"k", 103 * IV), Ok(Verdict::Pass));
        assert_eq!(counters(&t, b"k", 103 * IV), (1, 1));
        // Two windows on from 103: the word 105 reads holds 102's record,
        // which readers of 103 need until the swap: it is kept, and cannot
        // pass for 104.
        assert_eq!(t.check(b"k", 105 * IV), Ok(Verdict::Pass));
        assert_eq!(counters(&t, b"k", 105 * IV), (1, 0));
        assert_eq!(e.s[S_P0].load(Ordering::Relaxed), (102 << 32) | 1);
    });
}

#[test]
fn a_frozen_roll_left_by_a_killed_holder_is_undone() {
    with_table(|t| {
        for _ in 0..2 {
            assert_eq!(
                t.check_or_create(b"k", Algorithm::Taildrop, 5, 20 * IV),
                Ok(Verdict::Pass)
            );
        }
        let e = entry(&t, b"k");
        let (h, x, p0, p1) = (
            e.s[S_H].load(Ordering::Relaxed),
            e.s[S_X].load(Ordering::Relaxed),
            e.s[S_P0].load(Ordering::Relaxed),
            e.s[S_P1].load(Ordering::Relaxed),
        );
        // Process 99 locked the entry for a far roll, froze it, stored the
        // new index and record, and died before storing `H`.
        let lock = e[E_LOCK].load(Ordering::Relaxed);
        e[E_LOCK].store((lock & 0x8000_0000) | 99, Ordering::Relaxed);
        for (i, v) in [(6, x), (7, p0), (8, p1)] {
            e.s[i].store(v, Ordering::Relaxed);
        }
        e.s[S_H].store(h | (1 << 48), Ordering::Relaxed);
        e.s[S_X].store(1 << 40, Ordering::Relaxed);
        e.s[S_P1].store(((1u64 << 40) - 1) << 32, Ordering::Relaxed);
        // The listing leaves nothing out; a check takes the lock over and
        // finds the window as it was.
        assert_eq!(t.iter(20 * IV).count(), 1);
        assert_eq!(counters(&t, b"k", 20 * IV), (2, 0));
        assert_eq!(e.s[S_H].load(Ordering::Relaxed), h, "undone");
        assert_eq!(e.s[S_X].load(Ordering::Relaxed), x);
        assert_eq!(e.s[S_P1].load(Ordering::Relaxed), p1);
        assert_eq!(lock::holder(&e[E_LOCK]), 0);
        assert_eq!(t.check(b"k", 20 * IV), Ok(Verdict::Pass));
        assert_eq!(counters(&t, b"k", 21 * IV), (0, 3));
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
