//! Unit tests of bounded waits: lock words that name a holder that is alive
//! and never unlocks (a stopped process, a forged word) give
//! [`Error::Busy`], change nothing, and stop nobody else. The owner here
//! gives up after [`lock::CHECK_EVERY`] spins instead of
//! [`lock::BUSY_AFTER`], so these run fast, under Miri too; `tests/busy.rs` runs the real bound
//! with real processes.

use super::*;
use crate::{Gains, Release, SlotVerdict, Verdict};

const S: u64 = 1_000_000_000;
/// The id of the live holder that never unlocks.
const STUCK: u32 = 2;

/// Id 1, every id alive, no pause between spins, `Busy` after one
/// liveness check period (the unit tests run under Miri too).
fn owner() -> Owner {
    Owner::new(1, |_| true)
        .unwrap()
        .with_relax(|_| {})
        .with_busy_after(lock::CHECK_EVERY)
}

fn with_table<R>(capacity: usize, f: impl FnOnce(Table<'_>) -> R) -> R {
    let c = Config {
        capacity,
        lease_capacity: capacity,
        interval_ns: 10 * S,
        epoch: 0,
        seed: 0x1234_5678,
    };
    let need = Table::size_for(&c).unwrap();
    let mut mem = vec![0u8; need + 8];
    let off = mem.as_ptr().align_offset(8);
    let t = Table::init_in(&mut mem[off..off + need], &c, owner()).unwrap();
    f(t)
}

fn idx_of(t: &Table<'_>, key: &[u8]) -> usize {
    t.find(&t.key(key).unwrap()).map(|g| g.idx).unwrap()
}

/// Makes the lock word `word` look held by [`STUCK`], keeping its buffer bit;
/// returns the word as it was.
fn forge(word: &AtomicU32) -> u32 {
    let was = word.load(Ordering::Relaxed);
    word.store((was & 0x8000_0000) | STUCK, Ordering::Relaxed);
    was
}

#[test]
fn an_entry_locked_by_a_live_holder_stops_only_what_needs_its_lock() {
    with_table(8, |t| {
        assert_eq!(
            t.check_or_create(b"stuck", Algorithm::Taildrop, 5, 0),
            Ok(Verdict::Pass)
        );
        assert_eq!(
            t.check_or_create(b"free", Algorithm::Taildrop, 2, 0),
            Ok(Verdict::Pass)
        );
        assert_eq!(t.acquire(b"slots", 3, 0), Ok(SlotVerdict::Acquired));
        let LeaseVerdict::Acquired(lease) = t.lease_acquire(b"slots", 3, None, 0).unwrap() else {
            panic!("refused")
        };
        let stuck = idx_of(&t, b"stuck");
        let before = t.get(b"stuck", 0).unwrap();
        let was = forge(&t.entries[stuck][E_LOCK]);

        // Checks and reads of a hot entry take no lock: they go on, exact.
        assert_eq!(t.check(b"stuck", 1), Ok(Verdict::Pass));
        assert_eq!(
            t.check_or_create(b"stuck", Algorithm::Taildrop, 3, 1),
            Ok(Verdict::Pass)
        );
        assert_eq!(t.check(b"stuck", 1), Ok(Verdict::Drop), "4th of limit 3");
        assert_eq!(t.get(b"stuck", 1).unwrap().counter, before.counter + 3);
        assert_eq!(t.interval_reset(b"stuck", 1), Ok(()));
        assert_eq!(t.get(b"stuck", 1).unwrap().counter, 0);
        assert_eq!(
            t.rate_check(b"stuck", 3, S, false, MaxZero::RefuseAll, 1),
            Err(Error::WrongAlgorithm)
        );
        let h = t.resolve(b"stuck");
        assert_eq!(
            h,
            Err(Error::Busy),
            "resolve looks the key up under the lock"
        );
        // What changes the entry itself, or needs a locked kind, gives up.
        assert_eq!(t.set(b"stuck", Algorithm::Red, 4, 1), Err(Error::Busy));
        assert_eq!(t.remove(b"stuck"), Err(Error::Busy));
        // Slot calls on a rate pipe are refused from its hot words.
        assert_eq!(t.acquire(b"stuck", 3, 1), Err(Error::WrongAlgorithm));
        assert_eq!(t.release(b"stuck", 1), Err(Error::WrongAlgorithm));
        assert_eq!(t.usage(b"stuck", 1), Err(Error::WrongAlgorithm));
        assert_eq!(t.lease_acquire(b"stuck", 3, None, 1), Err(Error::Busy));
        assert_eq!(t.release_lease_of(b"stuck", 1), Err(Error::Busy));
        assert_eq!(
            t.balance_acquire(&[b"slots", b"stuck"], 5, -1, 1),
            Err(Error::Busy)
        );
        // The same for a locked kind: a SLOTS entry with a lease (leases
        // are counted under the lock) stuck the same way.
        let slots = idx_of(&t, b"slots");
        let was_slots = forge(&t.entries[slots][E_LOCK]);
        assert_eq!(t.usage(b"slots", 1), Err(Error::Busy));
        assert_eq!(t.acquire(b"slots", 3, 1), Err(Error::Busy));
        assert_eq!(t.entry_at(slots, 1), None, "a listing leaves it out");
        t.entries[slots][E_LOCK].store(was_slots, Ordering::Release);
        // Existence needs no entry lock; nor does the count.
        assert_eq!(t.active(b"stuck"), Ok(true));
        assert_eq!(t.len(), 3);

        // Everybody else goes on, with the right verdicts.
        assert_eq!(t.check(b"free", 1), Ok(Verdict::Pass));
        assert_eq!(t.check(b"free", 1), Ok(Verdict::Drop));
        assert_eq!(t.usage(b"slots", 1), Ok(2), "a plain slot and a lease");
        assert_eq!(t.release(b"slots", 1), Ok(Release::Released));
        assert_eq!(t.lease_release(lease, 1), Ok(LeaseRelease::Released));
        assert_eq!(
            t.check_or_create(b"new", Algorithm::Taildrop, 1, 1),
            Ok(Verdict::Pass)
        );
        // Listings show it (read without its lock); clean_unused, which
        // removes entries under their lock, leaves it alone.
        let mut listed: Vec<Vec<u8>> = t.iter(1).map(|e| e.key().to_vec()).collect();
        listed.sort();
        assert_eq!(listed, [&b"free"[..], b"new", b"slots", b"stuck"]);
        assert_eq!(t.entry_at(stuck, 1).unwrap().stats.counter, 0);
        assert_eq!(t.clean_unused(1, 100 * S), 3, "every other entry is old");
        assert_eq!(t.len(), 1);
        assert_eq!(
            t.entries[stuck][E_LOCK].load(Ordering::Relaxed) & 0x7fff_ffff,
            STUCK
        );

        // Once it unlocks, the calls that gave up changed nothing: the
        // limit is the 3 the last check set, the count the reset's 0.
        t.entries[stuck][E_LOCK].store(was, Ordering::Release);
        let after = t.get(b"stuck", 2).unwrap();
        assert_eq!(
            (after.algorithm, after.limit, after.counter),
            (before.algorithm, 3, 0)
        );
        assert_eq!(t.check(b"stuck", 2), Ok(Verdict::Pass));
        assert_eq!(t.get(b"stuck", 2).unwrap().counter, 1);
        assert!(t.resolve(b"stuck").is_ok());
    });
}

#[test]
fn a_held_lease_entry_that_stays_locked_keeps_its_lease() {
    with_table(4, |t| {
        let LeaseVerdict::Acquired(l) = t.lease_acquire(b"node", 2, Some(5 * S), 0).unwrap() else {
            panic!("refused")
        };
        let idx = idx_of(&t, b"node");
        let was = forge(&t.entries[idx][E_LOCK]);
        assert_eq!(t.lease_release(l, 1), Err(Error::Busy));
        t.entries[idx][E_LOCK].store(was, Ordering::Release);
        assert_eq!(
            t.usage(b"node", 2),
            Ok(1),
            "the failed release took nothing"
        );
        assert_eq!(t.lease_release(l, 2), Ok(LeaseRelease::Released));
    });
}

#[test]
fn inserts_pass_over_slots_that_stay_locked() {
    with_table(4, |t| {
        // 4 slots, one bucket: every key's two buckets are the whole table.
        for k in [b"a", b"b", b"c"] {
            assert_eq!(t.acquire(k, 1, 0), Ok(SlotVerdict::Acquired));
        }
        assert_eq!(
            t.check_or_create(b"idle", Algorithm::Nop, 0, 0),
            Ok(Verdict::PassNop)
        );
        let idle = idx_of(&t, b"idle");
        // Eviction passes over a candidate that stays locked: "idle" is the
        // only idle entry, and it is busy.
        let was = forge(&t.entries[idle][E_LOCK]);
        assert_eq!(
            t.check_or_create(b"new", Algorithm::Nop, 0, 20 * S),
            Err(Error::Full)
        );
        t.entries[idle][E_LOCK].store(was, Ordering::Release);
        // A free slot that stays locked is passed over too; with no other
        // way in, the insert is Busy (a free slot exists: try again).
        assert_eq!(t.remove(b"idle"), Ok(()));
        let was = forge(&t.entries[idle][E_LOCK]);
        assert_eq!(
            t.check_or_create(b"new", Algorithm::Nop, 0, 20 * S),
            Err(Error::Busy)
        );
        assert_eq!(t.len(), 3, "nothing inserted");
        // With a slot freed elsewhere, the insert goes there.
        assert_eq!(t.release(b"c", 0), Ok(Release::Released));
        assert_eq!(t.remove(b"c"), Ok(()));
        let c = (0..4)
            .find(|&i| i != idle && t.entry_at(i, 0).is_none())
            .unwrap();
        assert_eq!(
            t.check_or_create(b"new", Algorithm::Nop, 0, 20 * S),
            Ok(Verdict::PassNop)
        );
        assert_eq!(idx_of(&t, b"new"), c);
        t.entries[idle][E_LOCK].store(was, Ordering::Release);
    });
}

#[test]
fn a_stuck_insert_lock_stops_inserts_only() {
    with_table(8, |t| {
        assert_eq!(
            t.check_or_create(b"old", Algorithm::Taildrop, 2, 0),
            Ok(Verdict::Pass)
        );
        let was = forge(&t.hdr[H_INSERT_LOCK]);
        assert_eq!(
            t.check_or_create(b"new", Algorithm::Taildrop, 2, 0),
            Err(Error::Busy)
        );
        assert_eq!(t.acquire(b"new", 2, 0), Err(Error::Busy));
        assert_eq!(t.set(b"new", Algorithm::Nop, 0, 0), Err(Error::Busy));
        assert_eq!(
            t.balance_acquire(&[b"m1", b"m2"], 1, -1, 0),
            Err(Error::Busy)
        );
        assert_eq!(t.len(), 1, "nothing inserted");
        // Existing keys need no insert.
        assert_eq!(t.check(b"old", 1), Ok(Verdict::Pass));
        assert_eq!(
            t.check_or_create(b"old", Algorithm::Taildrop, 0, 1),
            Ok(Verdict::Drop)
        );
        assert_eq!(t.set(b"old", Algorithm::Taildrop, 9, 1), Ok(()));
        t.hdr[H_INSERT_LOCK].store(was, Ordering::Release);
        assert_eq!(
            t.check_or_create(b"new", Algorithm::Taildrop, 2, 0),
            Ok(Verdict::Pass)
        );
    });
}

#[test]
fn a_stuck_controller_fails_feedback_changes_before_anything_changed() {
    with_table(8, |t| {
        assert_eq!(t.set(b"fb", Algorithm::Feedback, 50, 0), Ok(()));
        assert_eq!(
            t.check_or_create(b"td", Algorithm::Taildrop, 1, 0),
            Ok(Verdict::Pass)
        );
        let pid = t.pid_get().unwrap();
        let was = forge(&t.hdr[H_CTRL_LOCK]);
        assert_eq!(t.pid_get(), Err(Error::Busy));
        assert_eq!(t.push_load(0.5), Err(Error::Busy));
        assert_eq!(t.pid_set(Gains::DEFAULT), Err(Error::Busy));
        assert_eq!(t.set_setpoint(10), Err(Error::Busy));
        // A FEEDBACK pipe with another setpoint: refused before it is made.
        assert_eq!(t.set(b"fb2", Algorithm::Feedback, 70, 0), Err(Error::Busy));
        assert_eq!(
            t.check_or_create(b"fb2", Algorithm::Feedback, 70, 0),
            Err(Error::Busy)
        );
        assert_eq!(t.active(b"fb2"), Ok(false));
        assert_eq!(t.set(b"fb", Algorithm::Feedback, 70, 0), Err(Error::Busy));
        assert_eq!(t.get(b"fb", 0).unwrap().limit, 50);
        // The same setpoint needs no controller; nor do other pipes.
        assert_eq!(
            t.check_or_create(b"fb", Algorithm::Feedback, 50, 0),
            Ok(Verdict::Pass)
        );
        assert_eq!(t.check(b"fb", 0), Ok(Verdict::Pass));
        assert_eq!(t.check(b"td", 0), Ok(Verdict::Drop));
        assert_eq!(t.setpoint_percent(), 50);
        t.hdr[H_CTRL_LOCK].store(was, Ordering::Release);
        assert_eq!(t.pid_get(), Ok(pid), "unchanged");
        assert_eq!(
            t.check_or_create(b"fb2", Algorithm::Feedback, 70, 0),
            Ok(Verdict::Pass)
        );
        assert_eq!(t.setpoint_percent(), 70);
    });
}

#[test]
fn a_mod_hash_limit_checks_and_rolls_while_its_lock_is_held() {
    with_table(4, |t| {
        let check = |now| t.rate_check(b"f", 3, 3 * S, true, MaxZero::RefuseAll, now);
        assert_eq!(check(S), Ok(Verdict::Pass));
        let f = idx_of(&t, b"f");
        let was = forge(&t.entries[f][E_LOCK]);
        // In the window [1 s, 4 s), or before it: no lock.
        for (now, v) in [
            (2 * S, Verdict::Pass),
            (3 * S, Verdict::Pass),
            (S, Verdict::Drop),
        ] {
            assert_eq!(check(now), Ok(v));
        }
        assert_eq!(t.interval_reset(b"f", 3 * S), Ok(()));
        let counts = |now| t.get(b"f", now).map(|s| (s.counter, s.last_counter));
        assert_eq!(counts(3 * S), Ok((0, 0)));
        // Rolls take no lock either: the window [4 s, 7 s), then [7 s, 10 s).
        assert_eq!(check(4 * S), Ok(Verdict::Pass));
        assert_eq!(counts(4 * S), Ok((1, 0)));
        for _ in 0..2 {
            assert_eq!(check(6 * S), Ok(Verdict::Pass));
        }
        assert_eq!(check(6 * S), Ok(Verdict::Drop));
        assert_eq!(check(7 * S), Ok(Verdict::Pass));
        assert_eq!(counts(7 * S), Ok((1, 4)));
        assert_eq!(
            t.entries[f][E_LOCK].load(Ordering::Relaxed) & !0x8000_0000,
            STUCK
        );
        t.entries[f][E_LOCK].store(was, Ordering::Release);
        assert_eq!(check(8 * S), Ok(Verdict::Pass));
        assert_eq!(counts(8 * S), Ok((2, 4)));
    });
}

/// A pipe made by `set` and never checked (its `H` fresh): its first
/// window opens without the lock, whether the first check claims it or a
/// killed caller's claim is found (the claimed window's start, in `S_P0`).
#[test]
fn a_first_window_opens_while_the_lock_is_held() {
    use super::hot::{fresh, S_H, S_P0, S_P1, S_X, UNCLAIMED};
    with_table(4, |t| {
        let counts = |k: &[u8], now| t.get(k, now).map(|s| (s.counter, s.last_counter));
        // A new pipe whose lock a live holder keeps, its first window
        // claimed by a killed caller for the window starting at `claim`
        // (or unclaimed); gives the entry and its lock word as it was.
        let stuck = |key: &[u8], claim: Option<u64>| {
            assert_eq!(t.set(key, Algorithm::Taildrop, 2, 0), Ok(()));
            let e = &t.entries[idx_of(&t, key)];
            assert_eq!(e.s[S_P0].load(Ordering::Relaxed), UNCLAIMED);
            assert_eq!(e.s[S_X].load(Ordering::Relaxed) & 0xffff_ffff_ffff, 0);
            if let Some(start) = claim {
                e.s[S_P0].store(start, Ordering::Relaxed);
            }
            (e, forge(&e[E_LOCK]))
        };
        // Claimed by the first check, in window 2 ([20 s, 30 s)).
        let (a, was) = stuck(b"a", None);
        assert_eq!(t.check(b"a", 25 * S), Ok(Verdict::Pass));
        assert_eq!(a.s[S_P0].load(Ordering::Relaxed), 20 * S);
        assert_eq!(t.check(b"a", 21 * S), Ok(Verdict::Pass));
        assert_eq!(t.check(b"a", 29 * S), Ok(Verdict::Drop));
        assert_eq!(counts(b"a", 29 * S), Ok((3, 0)));
        assert_eq!(t.check(b"a", 30 * S), Ok(Verdict::Pass), "rolled");
        assert_eq!(counts(b"a", 30 * S), Ok((1, 3)));
        a[E_LOCK].store(was, Ordering::Release);

        // Claimed for window 4 by a caller killed before it opened `H`:
        // window 4 opens with the claimant's call counted (a call whose
        // reply was lost); a check in window 2 (before it: time going
        // backwards) counts in it after that call, one in window 5 rolls.
        let (b, was) = stuck(b"b", Some(40 * S));
        assert_eq!(t.check(b"b", 25 * S), Ok(Verdict::Pass));
        assert_eq!(counts(b"b", 45 * S), Ok((2, 0)));
        assert_eq!(t.check(b"b", 49 * S), Ok(Verdict::Drop));
        assert_eq!(t.check(b"b", 50 * S), Ok(Verdict::Pass));
        assert_eq!(counts(b"b", 50 * S), Ok((1, 3)));
        b[E_LOCK].store(was, Ordering::Release);
        // Claimed for window 1, found by a check in window 3: window 1
        // opens with the claimant's call, the check rolls on (an idle
        // window between).
        let (c, was) = stuck(b"c", Some(10 * S));
        assert_eq!(t.check(b"c", 35 * S), Ok(Verdict::Pass));
        assert_eq!(counts(b"c", 35 * S), Ok((1, 0)));
        // Rolled once: window 3's start in `S_P1`, window 1's count last
        // but an idle window between.
        assert_eq!(c.s[S_P1].load(Ordering::Relaxed), 30 * S);
        assert_eq!(c.s[S_X].load(Ordering::Relaxed) & 0xffff_ffff_ffff, 1 << 32);
        c[E_LOCK].store(was, Ordering::Release);

        // A mod_hash limit (max 0: the first call of a window passes)
        // whose first window a killed caller claimed at 5 s: it is the
        // window's first call, counted when the next caller opens it.
        let f = |now| t.rate_check(b"f", 0, 3 * S, true, MaxZero::ModHash, now);
        assert_eq!(f(S), Ok(Verdict::Pass));
        let e = &t.entries[idx_of(&t, b"f")];
        let gen = e[E_GEN].load(Ordering::Relaxed);
        let cfg = u64::from(e.word0());
        // As a new entry's words (`hot_write`), then the claim.
        e.s[S_H].store(fresh(cfg, gen), Ordering::Relaxed);
        e.s[S_X].store(fresh(cfg, gen) & !0xffff_ffff_ffff, Ordering::Relaxed);
        e.s[S_P0].store(UNCLAIMED, Ordering::Relaxed);
        assert_eq!(counts(b"f", 6 * S), Ok((0, 0)), "no window open");
        let was = forge(&e[E_LOCK]);
        e.s[S_P0].store(5 * S, Ordering::Relaxed);
        assert_eq!(f(6 * S), Ok(Verdict::Drop), "not the first call");
        assert_eq!(counts(b"f", 6 * S), Ok((2, 0)));
        // The window is [5 s, 8 s): the claimant's start.
        assert_eq!(f(8 * S), Ok(Verdict::Pass));
        assert_eq!(counts(b"f", 8 * S), Ok((1, 2)));
        // Unclaimed: the next call claims and is the first.
        e.s[S_H].store(fresh(cfg, gen), Ordering::Relaxed);
        e.s[S_X].store(fresh(cfg, gen) & !0xffff_ffff_ffff, Ordering::Relaxed);
        e.s[S_P0].store(UNCLAIMED, Ordering::Relaxed);
        assert_eq!(f(20 * S), Ok(Verdict::Pass));
        assert_eq!(f(21 * S), Ok(Verdict::Drop));
        assert_eq!(counts(b"f", 22 * S), Ok((2, 0)));
        assert_eq!(e.s[S_P0].load(Ordering::Relaxed), 20 * S);
        assert_eq!(e[E_LOCK].load(Ordering::Relaxed) & !0x8000_0000, STUCK);
        e[E_LOCK].store(was, Ordering::Release);
    });
}
