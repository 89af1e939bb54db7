//! Unit tests of hot SLOTS entries (see `hot/convert.rs`): lock-free
//! acquire, release and usage as exact as the bare counter, the
//! conversion to a locked entry (counts past what `H` packs, a lease, a
//! hub), and a converter killed before and after its commit.

use super::hot::S_H;
use super::tests_hot::{entry, with_table};
use super::*;
use crate::table::leases::{LeaseRelease, LeaseVerdict};

const OPEN: u64 = 1 << 31;
const FROZEN: u64 = 1 << 48;

fn hot(t: &Table<'_>, key: &[u8]) -> bool {
    entry(t, key)[E_META].load(Ordering::Relaxed) & META_HOT != 0
}

/// `(usage, unmatched releases)` as a listing shows them.
fn counts(t: &Table<'_>, key: &[u8]) -> (u32, u32) {
    let s = t.get(key, 0).unwrap();
    (s.counter, s.last_counter)
}

#[test]
fn hot_slots_count_as_the_bare_counter() {
    with_table(|t| {
        let mut bare = Slots::new(3);
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        for step in 0..if cfg!(miri) { 60 } else { 2_000 } {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let max = (x >> 8) as i32 % 5 - 1;
            match x % 3 {
                0 => {
                    bare.set_max(max);
                    assert_eq!(t.acquire(b"s", max, step), Ok(bare.acquire()), "{step}");
                }
                1 if step > 0 => assert_eq!(t.release(b"s", step), Ok(bare.release()), "{step}"),
                _ => assert_eq!(t.usage(b"s", step).ok(), (step > 0).then(|| bare.usage())),
            }
            if step > 0 {
                assert_eq!(counts(&t, b"s"), (bare.usage(), bare.unmatched_releases()));
                assert_eq!(t.get(b"s", step).unwrap().limit, i64::from(bare.max()));
                assert!(hot(&t, b"s"), "step {step}: no lease, small counts: hot");
            }
        }
    });
}

#[test]
fn counts_past_what_h_packs_make_the_entry_locked() {
    with_table(|t| {
        assert_eq!(t.release(b"u", 0), Err(Error::NoPipe));
        assert_eq!(t.acquire(b"u", -1, 0), Ok(SlotVerdict::Acquired));
        assert_eq!(t.release(b"u", 0), Ok(Release::Released));
        // 2^16 - 2 unmatched releases, as if made one by one.
        let e = entry(&t, b"u");
        let h = e.s[S_H].load(Ordering::Relaxed);
        e.s[S_H].store(h | (0xfffe << 32), Ordering::Relaxed);
        assert_eq!(t.release(b"u", 0), Ok(Release::Unmatched));
        assert!(hot(&t, b"u"), "2^16 - 1 still fits");
        assert_eq!(t.release(b"u", 0), Ok(Release::Unmatched));
        assert!(!hot(&t, b"u"), "2^16 does not");
        assert_eq!(counts(&t, b"u"), (0, 1 << 16));
        assert_eq!(t.acquire(b"u", -1, 0), Ok(SlotVerdict::Acquired));
        assert_eq!(counts(&t, b"u"), (1, 1 << 16));

        // Usage at 2^31 - 1 (count only): the next acquire goes on, locked.
        assert_eq!(t.acquire(b"c", -1, 0), Ok(SlotVerdict::Acquired));
        let e = entry(&t, b"c");
        let h = e.s[S_H].load(Ordering::Relaxed);
        e.s[S_H].store(h | (OPEN - 1), Ordering::Relaxed);
        assert_eq!(t.acquire(b"c", -1, 0), Ok(SlotVerdict::Acquired));
        assert!(!hot(&t, b"c"));
        assert_eq!(t.usage(b"c", 0), Ok(1 << 31));
        assert_eq!(t.release(b"c", 0), Ok(Release::Released));
        assert_eq!(counts(&t, b"c"), ((1 << 31) - 1, 0));
    });
}

#[test]
fn a_lease_or_a_hub_makes_the_entry_locked_with_its_counts() {
    with_table(|t| {
        assert_eq!(t.acquire(b"s", 5, 0), Ok(SlotVerdict::Acquired));
        assert_eq!(t.acquire(b"s", 5, 0), Ok(SlotVerdict::Acquired));
        assert_eq!(
            t.release_lease_of(b"s", 0),
            Ok(LeaseRelease::AlreadyReleased)
        );
        assert!(hot(&t, b"s"), "no lease to release: still hot");
        let LeaseVerdict::Acquired(l) = t.lease_acquire(b"s", 5, None, 0).unwrap() else {
            panic!("refused")
        };
        assert!(!hot(&t, b"s"));
        assert_eq!(t.usage(b"s", 0), Ok(3));
        // Plain releases never take the leased slot.
        assert_eq!(t.release(b"s", 0), Ok(Release::Released));
        assert_eq!(t.release(b"s", 0), Ok(Release::Released));
        assert_eq!(t.release(b"s", 0), Ok(Release::Unmatched));
        assert_eq!(t.lease_release(l, 0), Ok(LeaseRelease::Released));
        assert_eq!(counts(&t, b"s"), (0, 1));

        assert_eq!(t.acquire(b"m1", 2, 0), Ok(SlotVerdict::Acquired));
        assert!(hot(&t, b"m1"));
        assert_eq!(
            t.balance_acquire(&[b"m1", b"m2"], 2, -1, 0),
            Ok(Balanced::Acquired {
                member: 1,
                lease: None
            })
        );
        assert!(!hot(&t, b"m1") && !hot(&t, b"m2"));
        assert_eq!((t.usage(b"m1", 0), t.usage(b"m2", 0)), (Ok(1), Ok(1)));
        // A hub with a member of another kind is refused, and that member
        // is left as it was.
        assert_eq!(
            t.check_or_create(b"r", Algorithm::Taildrop, 1, 0),
            Ok(Verdict::Pass)
        );
        assert_eq!(
            t.balance_acquire(&[b"m1", b"r"], 2, -1, 0),
            Err(Error::WrongAlgorithm)
        );
        assert_eq!(t.check(b"r", 0), Ok(Verdict::Drop));
    });
}

#[test]
fn a_converter_killed_before_its_hot_bit_is_cleared_leaves_a_hot_entry() {
    with_table(|t| {
        for _ in 0..2 {
            assert_eq!(t.acquire(b"s", 5, 0), Ok(SlotVerdict::Acquired));
        }
        let e = entry(&t, b"s");
        let h = e.s[S_H].load(Ordering::Relaxed);
        // Process 99 locked the entry, froze `H`, wrote buffer 1 and
        // committed it in the lock word (steps 1 to 3), and died.
        e.s[S_H].store(h | FROZEN, Ordering::Relaxed);
        write_buffer(e, 1, &Snap::read(e).cell(t.epoch).unwrap());
        e[E_LOCK].store(0x8000_0000 | 99, Ordering::Relaxed);
        // Callers without the lock see the frozen bit and take the lock
        // over: the entry stays hot, its counts whole.
        assert_eq!(t.iter(0).count(), 1);
        assert_eq!(t.usage(b"s", 0), Ok(2));
        assert_eq!(e.s[S_H].load(Ordering::Relaxed), h, "the freeze undone");
        assert!(hot(&t, b"s"));
        assert_eq!(lock::holder(&e[E_LOCK]), 0);
        assert_eq!(t.acquire(b"s", 5, 0), Ok(SlotVerdict::Acquired));
        assert_eq!(counts(&t, b"s"), (3, 0));
    });
}

#[test]
fn a_converter_killed_after_its_commit_leaves_a_locked_entry() {
    with_table(|t| {
        for _ in 0..2 {
            assert_eq!(t.acquire(b"s", 5, 0), Ok(SlotVerdict::Acquired));
        }
        assert_eq!(t.release(b"s", 0), Ok(Release::Released));
        assert_eq!(t.release(b"s", 0), Ok(Release::Released));
        assert_eq!(t.release(b"s", 0), Ok(Release::Unmatched));
        assert_eq!(t.acquire(b"s", 5, 0), Ok(SlotVerdict::Acquired));
        let e = entry(&t, b"s");
        let gen = e[E_GEN].load(Ordering::Relaxed);
        // A caller without the lock read the hot bit before the conversion.
        let stale = |t: &Table<'_>| {
            t.hot_update::<_, false>(e, gen, 0, |c| match &mut c.limiter {
                Limiter::Slots(s) => Ok(s.acquire()),
                _ => Err(Error::WrongAlgorithm),
            })
        };
        // Process 99 converted it completely, then died holding the lock.
        let mut g = t.find(&t.key(b"s").unwrap()).unwrap();
        assert_eq!(t.hot_to_locked(&mut g), Ok(true));
        core::mem::forget(g);
        let lock = e[E_LOCK].load(Ordering::Relaxed);
        e[E_LOCK].store((lock & 0x8000_0000) | 99, Ordering::Relaxed);
        assert!(!hot(&t, b"s"));
        assert_eq!(stale(&t), Ok(None), "the frozen H: the locked path");
        assert_eq!(counts(&t, b"s"), (1, 1));
        assert_eq!(t.acquire(b"s", 5, 0), Ok(SlotVerdict::Acquired));
        assert_eq!(lock::holder(&e[E_LOCK]), 0);
        // That commit wrote buffer 0, and with it its leases (0, in the
        // low half: the open bit clear) and usage (2) in H's word.
        assert_eq!(e.s[S_H].load(Ordering::Relaxed), 2 << 32);
        assert_eq!(
            stale(&t),
            Ok(None),
            "an H that is not open: the locked path"
        );
        assert_eq!(counts(&t, b"s"), (2, 1));
        assert_eq!(t.release(b"s", 0), Ok(Release::Released));
        assert_eq!(t.usage(b"s", 0), Ok(1));
    });
}
