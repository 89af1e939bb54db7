//! Unit tests of placement: two buckets, tags apart from the entries, and
//! what a process killed between writing a tag and an entry leaves behind.

use super::*;
use crate::Verdict;

const S: u64 = 1_000_000_000;

/// A table of `capacity` entries, no lease records, hash seed `seed`.
fn with_table<R>(capacity: usize, seed: u64, f: impl FnOnce(Table<'_>) -> R) -> R {
    let config = Config {
        lease_capacity: 0,
        seed,
        ..super::tests::cfg(capacity)
    };
    super::tests::with_table(config, f)
}

/// Every entry in use carries its key's tag, in one of its key's two
/// buckets; every free entry has tag 0.
fn assert_tags_consistent(t: &Table<'_>) {
    for idx in 0..t.capacity() {
        let used = meta_state(t.entries[idx][E_META].load(Ordering::Relaxed)) == STATE_USED;
        if !used {
            assert_eq!(t.tag_at(idx), 0, "free entry {idx} has a tag");
            continue;
        }
        let listed = t.entry_at(idx, 0).expect("an entry in use is listed");
        let k = t.key(listed.key()).unwrap();
        assert_eq!(t.tag_at(idx), tag16(k.hash), "entry {idx}: wrong tag");
        assert!(
            t.candidates(&k).any(|i| i == idx),
            "entry {idx} outside its buckets"
        );
        assert_eq!(t.locate(&k), Some(idx));
    }
}

#[test]
fn buckets_are_distinct_and_slots_in_range() {
    // Miri: without 1000, whose region alone takes it seconds to set up.
    let caps: &[usize] = if cfg!(miri) {
        &[1, 2, 31, 32, 33, 64, 100]
    } else {
        &[1, 2, 31, 32, 33, 64, 100, 1000]
    };
    for &capacity in caps {
        with_table(capacity, 7, |t| {
            // Miri runs these tests for the region's unsafe casts, slowly.
            for i in 0u32..if cfg!(miri) { 20 } else { 500 } {
                let key = i.to_le_bytes();
                let k = t.key(&key).unwrap();
                let (b1, b2) = t.bucket_pair(&k);
                let nb = capacity.div_ceil(BUCKET_SLOTS);
                assert!(b1 < nb && b2 < nb);
                assert_eq!(b1 == b2, nb == 1, "capacity {capacity}");
                let slots: std::vec::Vec<usize> = t.candidates(&k).collect();
                assert!(slots.iter().all(|&s| s < capacity));
                let mut sorted = slots.clone();
                sorted.sort_unstable();
                sorted.dedup();
                assert_eq!(sorted.len(), slots.len(), "a slot twice");
                let want = if nb == 1 {
                    capacity
                } else {
                    (capacity - b1 * 32).min(32) + (capacity - b2 * 32).min(32)
                };
                assert_eq!(slots.len(), want);
            }
        });
    }
}

#[test]
fn tags_follow_inserts_removals_evictions_and_cleaning() {
    with_table(100, 0xfeed, |t| {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for step in 0..if cfg!(miri) { 300 } else { 20_000u64 } {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let key = (x % 150).to_le_bytes();
            let now = step * S / 100;
            match x % 7 {
                0 => {
                    let _ = t.remove(&key);
                }
                1 => {
                    t.clean_unused(1, now);
                }
                _ => match t.check_or_create(&key, Algorithm::Taildrop, 3, now) {
                    Ok(_) | Err(Error::Full) => {}
                    Err(e) => panic!("step {step}: {e:?}"),
                },
            }
            if step % 500 == 0 {
                assert_tags_consistent(&t);
            }
        }
        assert_tags_consistent(&t);
        assert!(t.len() > if cfg!(miri) { 10 } else { 50 });
    });
}

#[test]
fn a_tag_left_on_a_free_entry_is_passed_over_and_the_slot_reused() {
    // Four entries, one bucket. "a" goes in; then every free slot gets the
    // tag "b" would have, as if inserts of "b" had each been killed after
    // writing the tag and before publishing the entry.
    with_table(4, 3, |t| {
        assert_eq!(
            t.check_or_create(b"a", Algorithm::Taildrop, 1, 0),
            Ok(Verdict::Pass)
        );
        let b = t.key(b"b").unwrap();
        for idx in 0..4 {
            if t.tag_at(idx) == 0 {
                t.set_tag(idx, tag16(b.hash));
            }
        }
        assert_eq!(t.locate(&b), None);
        assert_eq!(t.check(b"b", 0), Err(Error::NoPipe));
        assert_eq!(t.len(), 1);
        // No slot has tag 0, so the insert scans for an evictable entry:
        // a free entry with a stale tag is one, and is reused.
        assert_eq!(
            t.check_or_create(b"b", Algorithm::Taildrop, 1, 0),
            Ok(Verdict::Pass)
        );
        assert_eq!(t.check(b"b", 0), Ok(Verdict::Drop));
        assert_eq!(t.check(b"a", 0), Ok(Verdict::Drop));
        assert_eq!(t.len(), 2);
        // The scan locked (and so cleaned) free entries it passed; what is
        // left stale is still passed over by lookups, and the next inserts
        // fill the table.
        assert_eq!(
            t.check_or_create(b"c", Algorithm::Taildrop, 1, 0),
            Ok(Verdict::Pass)
        );
        assert_eq!(
            t.check_or_create(b"d", Algorithm::Taildrop, 1, 0),
            Ok(Verdict::Pass)
        );
        assert_eq!(
            t.check_or_create(b"e", Algorithm::Taildrop, 1, 0),
            Err(Error::Full)
        );
        assert_tags_consistent(&t);
    });
}

#[test]
fn a_used_entry_whose_tag_was_wiped_is_not_overwritten() {
    // Memory overwritten by someone else: an entry in use with tag 0. The
    // entry is invisible to lookups, but an insert never takes its slot.
    with_table(2, 5, |t| {
        assert_eq!(
            t.check_or_create(b"a", Algorithm::Taildrop, 5, 0),
            Ok(Verdict::Pass)
        );
        let idx = (0..2).find(|&i| t.tag_at(i) != 0).unwrap();
        t.set_tag(idx, 0);
        assert_eq!(t.check(b"a", 0), Err(Error::NoPipe));
        assert_eq!(
            t.check_or_create(b"x", Algorithm::Taildrop, 5, 0),
            Ok(Verdict::Pass)
        );
        // The other slot went to "x"; "a" is still in its own, untouched.
        assert_eq!(t.len(), 2);
        assert_eq!(
            t.check_or_create(b"y", Algorithm::Taildrop, 5, 0),
            Err(Error::Full)
        );
        let e = t.entry_at(idx, 0).unwrap();
        assert_eq!(e.key(), b"a");
    });
}

#[test]
fn a_killed_insert_or_delete_leaves_a_tag_that_recovery_clears() {
    // Entry 1 locked by id 9, which is dead, with a tag but no entry in
    // use: its holder died between writing one and publishing the other
    // (an insert), or between unpublishing and clearing (a delete).
    fn only_7_lives(id: u32) -> bool {
        id == 7
    }
    with_table(4, 9, |t| {
        let t = t.with_owner(Owner::new(7, only_7_lives).unwrap());
        t.set_tag(1, 0x1234);
        t.entries[1][E_LOCK].store(9, Ordering::Relaxed);
        // Lookups pass over it.
        let k = t.key(b"k").unwrap();
        assert_eq!(t.locate(&k), None);
        // Whoever locks it next takes it over and clears the tag.
        let g = t.lock_idx(1).unwrap();
        assert_eq!(t.tag_at(1), 0);
        drop(g);
        // And the slot is free for an insert as any other.
        for key in [&b"k"[..], b"l", b"m", b"n"] {
            assert_eq!(
                t.check_or_create(key, Algorithm::Taildrop, 1, 0),
                Ok(Verdict::Pass)
            );
        }
        assert_tags_consistent(&t);
    });
}

#[test]
fn a_small_static_table_has_a_short_tag_array_and_finds_every_key() {
    // Five entries: one bucket, whose tag words a StaticTable does not pad.
    static T: StaticTable<5, 0> = StaticTable::new();
    let t = T.init(10 * S, 0, 99, Owner::SINGLE_PROCESS).unwrap();
    for key in [&b"a"[..], b"b", b"c", b"d", b"e"] {
        assert_eq!(
            t.check_or_create(key, Algorithm::Taildrop, 1, 0),
            Ok(Verdict::Pass)
        );
    }
    assert_eq!(
        t.check_or_create(b"f", Algorithm::Taildrop, 1, 0),
        Err(Error::Full)
    );
    for key in [&b"a"[..], b"b", b"c", b"d", b"e"] {
        assert_eq!(t.check(key, 0), Ok(Verdict::Drop));
    }
    assert_eq!(t.check(b"f", 0), Err(Error::NoPipe));
    assert_tags_consistent(&t);
}
