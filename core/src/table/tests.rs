//! Unit tests of the table (single-threaded behaviour and crash recovery;
//! concurrency is tested in tests/ and under loom).

use super::*;
use crate::{Gains, Release, SlotVerdict, Verdict};

const S: u64 = 1_000_000_000;

/// A heap buffer with room to start an 8-aligned region anywhere in it.
pub(super) fn region(bytes: usize) -> Vec<u8> {
    vec![0u8; bytes + 8]
}

/// The 8-aligned part of a [`region`] buffer.
pub(super) fn as_bytes(r: &mut [u8]) -> &mut [u8] {
    let off = r.as_ptr().align_offset(8);
    let len = r.len() - 8;
    &mut r[off..off + len]
}

pub(super) fn cfg(capacity: usize) -> Config {
    Config {
        capacity,
        lease_capacity: capacity,
        interval_ns: 10 * S,
        epoch: 0,
        seed: 0x1234_5678,
    }
}

pub(super) fn with_table<R>(config: Config, f: impl FnOnce(Table<'_>) -> R) -> R {
    let mut mem = region(Table::size_for(&config).unwrap());
    let t = Table::init_in(as_bytes(&mut mem), &config, Owner::SINGLE_PROCESS).unwrap();
    f(t)
}

#[test]
fn size_for_and_region_errors() {
    assert_eq!(Table::size_for(&cfg(0)), Err(Error::InvalidCapacity));
    assert_eq!(
        Table::size_for(&cfg(MAX_CAPACITY + 1)),
        Err(Error::InvalidCapacity)
    );
    let mut zero = cfg(4);
    zero.interval_ns = 0;
    assert_eq!(Table::size_for(&zero), Err(Error::ZeroInterval));
    let c = cfg(4);
    let need = Table::size_for(&c).unwrap();
    // Header, one bucket of tags (64 bytes), entries, lease records.
    assert_eq!(need, 192 + 64 + 4 * 112 + 4 * 20);
    let mut mem = region(need + 16);
    let bytes = as_bytes(&mut mem);
    assert_eq!(bytes.len(), need + 16);
    assert_eq!(
        Table::init_in(&mut bytes[..need - 1], &c, Owner::SINGLE_PROCESS).unwrap_err(),
        Error::RegionTooSmall
    );
    assert_eq!(
        Table::init_in(&mut bytes[4..], &c, Owner::SINGLE_PROCESS).unwrap_err(),
        Error::Misaligned
    );
    assert_eq!(
        Table::attach(&mut bytes[..need], Owner::SINGLE_PROCESS).unwrap_err(),
        Error::NotATable
    );
    assert_eq!(
        Table::attach(&mut bytes[..10], Owner::SINGLE_PROCESS).unwrap_err(),
        Error::RegionTooSmall
    );
}

#[test]
fn attach_sees_the_same_table_and_refuses_other_layouts() {
    let c = cfg(8);
    let need = Table::size_for(&c).unwrap();
    let mut mem = region(need);
    {
        let t = Table::init_in(as_bytes(&mut mem), &c, Owner::SINGLE_PROCESS).unwrap();
        assert_eq!(
            t.check_or_create(b"a", Algorithm::Taildrop, 1, 0),
            Ok(Verdict::Pass)
        );
    }
    {
        let t = Table::attach(as_bytes(&mut mem), Owner::SINGLE_PROCESS).unwrap();
        assert_eq!((t.capacity(), t.lease_capacity()), (8, 8));
        assert_eq!((t.interval(), t.epoch()), (10 * S, 0));
        assert_eq!(t.check(b"a", 1), Ok(Verdict::Drop));
    }
    // Other layout versions (header word 1): 1, the linear-probing layout
    // before buckets and tags, 2, 160-byte entries all locked, 3, whose
    // SLOTS and first-call interval limits were never hot, 4, whose
    // first-call limits rolled under the lock, 5, whose pipes opened their
    // first window under the lock, 6, whose aligned pipes rolled 2^15
    // windows or more under the lock (and kept window indices), 7, whose
    // entries were 168 bytes (a gap after each state buffer), 8, whose
    // entries were 160 bytes (the algorithm and limit in a state word,
    // locked buffers of nine codec words), and 10.
    for v in [1, 2, 3, 4, 5, 6, 7, 8, 10] {
        as_bytes(&mut mem)[4] = v;
        assert_eq!(
            Table::attach(as_bytes(&mut mem), Owner::SINGLE_PROCESS).unwrap_err(),
            Error::LayoutMismatch
        );
    }
    // A region cut shorter than the header says.
    as_bytes(&mut mem)[4] = LAYOUT_VERSION as u8;
    let bytes = as_bytes(&mut mem);
    assert_eq!(
        Table::attach(&mut bytes[..need - 8], Owner::SINGLE_PROCESS).unwrap_err(),
        Error::RegionTooSmall
    );
}

#[test]
fn pipelimit_check_flow() {
    with_table(cfg(16), |t| {
        assert_eq!(t.check(b"10.0.0.1", 0), Err(Error::NoPipe));
        assert_eq!(t.active(b"10.0.0.1"), Ok(false));
        for i in 0..3 {
            assert_eq!(
                t.check_or_create(b"10.0.0.1", Algorithm::Taildrop, 3, i),
                Ok(Verdict::Pass)
            );
        }
        assert_eq!(t.check(b"10.0.0.1", 4), Ok(Verdict::Drop));
        assert_eq!(t.active(b"10.0.0.1"), Ok(true));
        // Exists: algorithm kept, limit replaced when > 0.
        assert_eq!(
            t.check_or_create(b"10.0.0.1", Algorithm::Red, 10, 5),
            Ok(Verdict::Pass)
        );
        let st = t.get(b"10.0.0.1", 5).unwrap();
        assert_eq!(
            (st.algorithm, st.limit, st.counter),
            (Algorithm::Taildrop, 10, 5)
        );
        // limit <= 0 keeps the limit.
        let _ = t.check_or_create(b"10.0.0.1", Algorithm::Taildrop, 0, 6);
        assert_eq!(t.get(b"10.0.0.1", 6).unwrap().limit, 10);
        // Next interval: counter in last_counter.
        let st = t.get(b"10.0.0.1", 10 * S).unwrap();
        assert_eq!((st.counter, st.last_counter), (0, 6));
        // NOP says so.
        assert_eq!(
            t.check_or_create(b"nop", Algorithm::Nop, 0, 0),
            Ok(Verdict::PassNop)
        );
        assert_eq!(t.len(), 2);
        assert_eq!(t.remove(b"nop"), Ok(()));
        assert_eq!(t.remove(b"nop"), Err(Error::NoPipe));
        assert_eq!(t.check(b"nop", 0), Err(Error::NoPipe));
        assert!(!t.is_empty());
    });
}

#[test]
fn keys_are_bytes() {
    with_table(cfg(16), |t| {
        assert_eq!(t.check(b"", 0), Err(Error::EmptyKey));
        assert_eq!(t.check(&[1u8; 57], 0), Err(Error::KeyTooLong));
        let longest = [0xffu8; MAX_KEY_LEN];
        let nul = b"a\0b";
        assert_eq!(
            t.check_or_create(&longest, Algorithm::Taildrop, 1, 0),
            Ok(Verdict::Pass)
        );
        assert_eq!(
            t.check_or_create(nul, Algorithm::Taildrop, 1, 0),
            Ok(Verdict::Pass)
        );
        assert_eq!(t.check(b"a", 0), Err(Error::NoPipe));
        assert_eq!(t.check(b"a\0", 0), Err(Error::NoPipe));
        assert_eq!(t.check(nul, 0), Ok(Verdict::Drop));
        assert_eq!(t.check(&longest, 0), Ok(Verdict::Drop));
        let mut keys: Vec<Vec<u8>> = t.iter(0).map(|e| e.key().to_vec()).collect();
        keys.sort();
        assert_eq!(keys, vec![nul.to_vec(), longest.to_vec()]);
    });
}

#[test]
fn key_words_and_hash_are_the_stored_format() {
    // Table::key builds the words and hash a word at a time; they must be
    // exactly the zero-padded little-endian words and the byte hash that
    // tables in shared memory already hold.
    with_table(cfg(16), |t| {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for len in 1..=MAX_KEY_LEN {
            // Miri runs these tests for the region's unsafe casts, slowly.
            for _ in 0..if cfg!(miri) { 2 } else { 20 } {
                let mut bytes = [0u8; MAX_KEY_LEN];
                for b in bytes.iter_mut().take(len) {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    *b = x as u8;
                }
                let k = t.key(&bytes[..len]).unwrap();
                let words: [u32; KEY_WORDS] = core::array::from_fn(|i| {
                    u32::from_le_bytes([
                        bytes[4 * i],
                        bytes[4 * i + 1],
                        bytes[4 * i + 2],
                        bytes[4 * i + 3],
                    ])
                });
                assert_eq!(k.words(), words, "len {len}");
                assert_eq!(k.len(), len);
                assert_eq!(k.hash, hash::hash(t.seed, &bytes, len), "len {len}");
            }
        }
    });
}

#[test]
fn keys_differing_in_any_byte_or_length_are_distinct() {
    with_table(cfg(256), |t| {
        for len in [1usize, 3, 4, 5, 7, 8, 9, MAX_KEY_LEN - 1, MAX_KEY_LEN] {
            let base = vec![b'k'; len];
            assert_eq!(
                t.check_or_create(&base, Algorithm::Taildrop, 1, 0),
                Ok(Verdict::Pass)
            );
            for i in 0..len {
                let mut other = base.clone();
                other[i] ^= 1;
                assert_eq!(t.check(&other, 0), Err(Error::NoPipe), "len {len} byte {i}");
            }
            assert_eq!(t.check(&base, 0), Ok(Verdict::Drop), "len {len}");
        }
        // Prefixes of one another, each its own pipe; other lengths are not.
        assert_eq!(t.len(), 9);
        for len in [2usize, 6, 10, MAX_KEY_LEN - 2] {
            assert_eq!(
                t.check(&vec![b'k'; len], 0),
                Err(Error::NoPipe),
                "len {len}"
            );
        }
    });
}

#[test]
fn set_replaces_algorithm_and_feedback_sets_the_setpoint() {
    with_table(cfg(16), |t| {
        t.set(b"p", Algorithm::Taildrop, 5, 0).unwrap();
        for i in 0..4 {
            let _ = t.check(b"p", i);
        }
        t.set(b"p", Algorithm::Taildrop, 7, 5).unwrap();
        assert_eq!(
            t.get(b"p", 5).unwrap().counter,
            4,
            "same algorithm keeps counters"
        );
        t.set(b"p", Algorithm::Red, 2, 6).unwrap();
        let st = t.get(b"p", 6).unwrap();
        assert_eq!((st.algorithm, st.limit, st.counter), (Algorithm::Red, 2, 0));
        assert_eq!(t.set(b"p", Algorithm::Red, 0, 7), Err(Error::InvalidLimit));
        t.set(b"fb", Algorithm::Feedback, 50, 0).unwrap();
        assert_eq!(t.pid_get().unwrap().setpoint(), 0.5);
        assert_eq!(t.get(b"fb", 0).unwrap().limit, 50);
        // A slots entry holding slots keeps its algorithm.
        assert_eq!(t.acquire(b"room", 3, 0), Ok(SlotVerdict::Acquired));
        assert_eq!(
            t.set(b"room", Algorithm::Taildrop, 1, 0),
            Err(Error::WrongAlgorithm)
        );
        assert_eq!(t.usage(b"room", 0), Ok(1));
    });
}

#[test]
fn feedback_controller_is_shared_and_matches_the_worked_example() {
    with_table(cfg(16), |t| {
        assert_eq!(
            t.check_or_create(b"fb", Algorithm::Feedback, 50, 0),
            Ok(Verdict::Pass)
        );
        assert_eq!(t.push_load(0.9), Ok(10));
        assert_eq!(t.push_load(0.9), Ok(20));
        assert_eq!(t.push_load(0.9), Ok(30));
        assert_eq!(t.push_load(1.5), Err(Error::InvalidLoad));
        assert_eq!(t.shared().drop_rate, 30);
        let c = t.pid_get().unwrap();
        assert!((c.int_err() + 1.2).abs() < 1e-12);
        // 30 of the next 100 requests drop.
        let drops = (0..100)
            .filter(|&i| t.check(b"fb", i) == Ok(Verdict::Drop))
            .count();
        assert_eq!(drops, 30);
        let g = Gains {
            kp: 1.0,
            ki: -2.0,
            kd: 0.5,
        };
        t.pid_set(g).unwrap();
        assert_eq!(t.pid_get().unwrap().gains(), g);
        let bad = Gains { kp: f64::NAN, ..g };
        assert_eq!(t.pid_set(bad), Err(Error::InvalidGain));
        assert_eq!(t.set_setpoint(101), Err(Error::InvalidLimit));
        assert_eq!(t.pid_get().unwrap().gains(), g);
    });
}

#[test]
fn network_pipes_follow_the_pushed_value() {
    with_table(cfg(16), |t| {
        assert_eq!(
            t.check_or_create(b"net", Algorithm::Network, 1000, 0),
            Ok(Verdict::Pass)
        );
        t.push_network(5000);
        assert_eq!(t.check(b"net", 1), Ok(Verdict::Drop));
        assert_eq!(t.get(b"net", 1).unwrap().load, 1);
        t.push_network(u64::MAX);
        assert_eq!(t.shared().bytes_waiting, u64::from(u32::MAX));
        t.push_network(10);
        assert_eq!(t.check(b"net", 2), Ok(Verdict::Pass));
    });
}

#[test]
fn freeswitch_interval_and_slots() {
    with_table(cfg(16), |t| {
        // 5/1 aligned.
        let passed = (0..8)
            .filter(|_| t.rate_check(b"r", 5, S, false, MaxZero::RefuseAll, 0) == Ok(Verdict::Pass))
            .count();
        assert_eq!(passed, 5);
        t.interval_reset(b"r", 1).unwrap();
        assert_eq!(
            t.rate_check(b"r", 5, S, false, MaxZero::RefuseAll, 2),
            Ok(Verdict::Pass)
        );
        // max -1 counts only; 0 refuses.
        for _ in 0..100 {
            assert_eq!(
                t.rate_check(b"c", -1, S, true, MaxZero::RefuseAll, 0),
                Ok(Verdict::Pass)
            );
        }
        assert_eq!(t.get(b"c", 0).unwrap().counter, 100);
        assert_eq!(
            t.rate_check(b"z", 0, S, false, MaxZero::RefuseAll, 0),
            Ok(Verdict::Drop)
        );
        // A different interval starts afresh.
        assert_eq!(
            t.rate_check(b"r", 1, 30 * S, false, MaxZero::RefuseAll, 3),
            Ok(Verdict::Pass)
        );
        assert_eq!(
            t.rate_check(b"r", 1, 30 * S, false, MaxZero::RefuseAll, 4),
            Ok(Verdict::Drop)
        );
        assert_eq!(
            t.rate_check(b"r", 1, 0, false, MaxZero::RefuseAll, 4),
            Err(Error::ZeroInterval)
        );
        // Slots: exclusive room of 3.
        for _ in 0..3 {
            assert_eq!(t.acquire(b"room", 3, 0), Ok(SlotVerdict::Acquired));
        }
        assert_eq!(t.acquire(b"room", 3, 0), Ok(SlotVerdict::Refused));
        assert_eq!(t.release(b"room", 0), Ok(Release::Released));
        assert_eq!(t.usage(b"room", 0), Ok(2));
        assert_eq!(t.release(b"room", 0), Ok(Release::Released));
        assert_eq!(t.release(b"room", 0), Ok(Release::Released));
        assert_eq!(t.release(b"room", 0), Ok(Release::Unmatched));
        assert_eq!(
            t.get(b"room", 0).unwrap().last_counter,
            1,
            "one unmatched release"
        );
        assert_eq!(t.release(b"nobody", 0), Err(Error::NoPipe));
        // Wrong kinds.
        assert_eq!(t.acquire(b"r", 3, 0), Err(Error::WrongAlgorithm));
        assert_eq!(t.check(b"room", 0), Err(Error::WrongAlgorithm));
        assert_eq!(
            t.rate_check(b"room", 3, S, false, MaxZero::RefuseAll, 0),
            Err(Error::WrongAlgorithm)
        );
    });
}

#[test]
fn leases_release_once_and_expire() {
    with_table(cfg(16), |t| {
        let LeaseVerdict::Acquired(a) = t.lease_acquire(b"node", 2, None, 0).unwrap() else {
            panic!("refused")
        };
        let LeaseVerdict::Acquired(b) = t.lease_acquire(b"node", 2, Some(5 * S), 0).unwrap() else {
            panic!("refused")
        };
        assert_eq!(
            t.lease_acquire(b"node", 2, None, 0),
            Ok(LeaseVerdict::Refused)
        );
        // A plain release does not take a leased slot.
        assert_eq!(t.release(b"node", 0), Ok(Release::Unmatched));
        assert_eq!(t.lease_release(a, 1), Ok(LeaseRelease::Released));
        assert_eq!(t.lease_release(a, 1), Ok(LeaseRelease::AlreadyReleased));
        assert_eq!(t.usage(b"node", 1), Ok(1));
        // b expires at 5 s.
        assert_eq!(t.usage(b"node", 5 * S - 1), Ok(1));
        assert_eq!(t.usage(b"node", 5 * S), Ok(0));
        assert_eq!(t.lease_release(b, 6 * S), Ok(LeaseRelease::AlreadyReleased));
        assert_eq!(Lease::from_bits(b.to_bits()), b);
        assert_eq!(
            t.lease_acquire(b"node", 2, Some(0), 0),
            Err(Error::ZeroInterval)
        );
        assert_eq!(
            t.lease_release(Lease::from_bits(u64::MAX), 0),
            Ok(LeaseRelease::AlreadyReleased)
        );
        // Deleting the entry ends its leases.
        let LeaseVerdict::Acquired(c) = t.lease_acquire(b"node", 2, None, 7 * S).unwrap() else {
            panic!("refused")
        };
        t.remove(b"node").unwrap();
        assert_eq!(t.lease_release(c, 8 * S), Ok(LeaseRelease::AlreadyReleased));
        let LeaseVerdict::Acquired(_) = t.lease_acquire(b"node", 2, None, 8 * S).unwrap() else {
            panic!("refused")
        };
        assert_eq!(t.usage(b"node", 8 * S), Ok(1));
    });
}

#[test]
fn lease_records_run_out_cleanly() {
    let mut c = cfg(8);
    c.lease_capacity = 2;
    with_table(c, |t| {
        assert!(matches!(
            t.lease_acquire(b"a", -1, None, 0),
            Ok(LeaseVerdict::Acquired(_))
        ));
        assert!(matches!(
            t.lease_acquire(b"b", -1, None, 0),
            Ok(LeaseVerdict::Acquired(_))
        ));
        assert_eq!(t.lease_acquire(b"a", -1, None, 0), Err(Error::LeasesFull));
        assert_eq!(t.usage(b"a", 0), Ok(1), "a failed lease takes nothing");
    });
    let mut c = cfg(8);
    c.lease_capacity = 0;
    with_table(c, |t| {
        assert_eq!(t.lease_acquire(b"a", -1, None, 0), Err(Error::LeasesFull));
    });
}

#[test]
fn hub_of_four_virtual_nodes() {
    with_table(cfg(64), |t| {
        let nodes: [&[u8]; 4] = [b"node-1", b"node-2", b"node-3", b"node-4"];
        // Miri runs these tests for the region's unsafe casts, slowly: a
        // smaller hub there.
        const M: u32 = if cfg!(miri) { 8 } else { 50 };
        let mut per = [0u32; 4];
        for link in 0..u64::from(4 * M) {
            match t
                .balance_acquire(&nodes, M as i32, 4 * M as i32, link)
                .unwrap()
            {
                Balanced::Acquired { member, lease } => {
                    assert_eq!(lease, None);
                    // Least loaded, ties to the lowest index: round robin.
                    assert_eq!(member, link as usize % 4);
                    per[member] += 1;
                }
                Balanced::Full => panic!("link {link} refused"),
            }
        }
        assert_eq!(per, [M; 4]);
        let (m, total) = (M as i32, 4 * M as i32);
        assert_eq!(t.balance_acquire(&nodes, m, total, 300), Ok(Balanced::Full));
        // A disconnect frees a slot on node-3; the next link goes there.
        assert_eq!(t.release(b"node-3", 301), Ok(Release::Released));
        assert_eq!(
            t.balance_acquire(&nodes, m, total, 302),
            Ok(Balanced::Acquired {
                member: 2,
                lease: None
            })
        );
        // Total max below the sum of the members' maxima.
        assert_eq!(
            t.balance_acquire(&nodes[..2], m, 2 * m - 1, 303),
            Ok(Balanced::Full)
        );
        assert_eq!(t.balance_acquire(&[], 1, 1, 0), Err(Error::InvalidGroup));
        assert_eq!(
            t.balance_acquire(&[b"x", b"x"], 1, 1, 0),
            Err(Error::DuplicateMember)
        );
        let many = [&b"m"[..]; 17];
        assert_eq!(t.balance_acquire(&many, 1, 1, 0), Err(Error::InvalidGroup));
        // With leases.
        let hub: [&[u8]; 2] = [b"v1", b"v2"];
        let Balanced::Acquired {
            member: 0,
            lease: Some(l),
        } = t.balance_lease(&hub, 1, -1, Some(S), 0).unwrap()
        else {
            panic!("expected a lease on v1")
        };
        assert!(matches!(
            t.balance_lease(&hub, 1, -1, Some(S), 0),
            Ok(Balanced::Acquired {
                member: 1,
                lease: Some(_)
            })
        ));
        assert_eq!(t.balance_lease(&hub, 1, -1, Some(S), 0), Ok(Balanced::Full));
        assert_eq!(t.lease_release(l, 1), Ok(LeaseRelease::Released));
        assert!(matches!(
            t.balance_lease(&hub, 1, -1, None, 2),
            Ok(Balanced::Acquired { member: 0, .. })
        ));
        // v2's lease expired at 1 s.
        assert!(matches!(
            t.balance_lease(&hub, 1, -1, None, S + 2),
            Ok(Balanced::Acquired { member: 1, .. })
        ));
        t.set(b"rate", Algorithm::Taildrop, 1, 0).unwrap();
        assert_eq!(
            t.balance_acquire(&[b"v9", b"rate"], 1, -1, 0),
            Err(Error::WrongAlgorithm)
        );
    });
}

#[test]
fn full_table_evicts_the_least_recently_used_idle_entry() {
    let mut c = cfg(4);
    c.lease_capacity = 4;
    with_table(c, |t| {
        // Four pipes, used at t = 1, 2, 3, 4 (s), all in window 0.
        for (i, k) in [b"a", b"b", b"c", b"d"].iter().enumerate() {
            let v = t.check_or_create(*k, Algorithm::Taildrop, 10, (i as u64 + 1) * S);
            assert_eq!(v, Ok(Verdict::Pass));
        }
        // Same window: nothing idle, so Full and nothing changed.
        assert_eq!(
            t.check_or_create(b"e", Algorithm::Taildrop, 10, 5 * S),
            Err(Error::Full)
        );
        assert_eq!(t.len(), 4);
        // Next window: all idle; LRU among the first 3 idle candidates in e's window.
        assert_eq!(
            t.check_or_create(b"e", Algorithm::Taildrop, 10, 11 * S),
            Ok(Verdict::Pass)
        );
        assert_eq!(t.len(), 4);
        assert_eq!(t.active(b"e"), Ok(true));
        let gone: Vec<&[u8]> = [&b"a"[..], b"b", b"c", b"d"]
            .into_iter()
            .filter(|k| t.active(k) == Ok(false))
            .collect();
        assert_eq!(gone.len(), 1);
        // The least recently active goes: the one whose last window is the
        // oldest (a pipe's state says when it was last used).
        with_table(cfg(3), |t| {
            for (k, now) in [(b"b", 12 * S), (b"a", 3 * S), (b"c", 15 * S)] {
                let v = t.check_or_create(k, Algorithm::Taildrop, 10, now);
                assert_eq!(v, Ok(Verdict::Pass));
            }
            let v = t.check_or_create(b"d", Algorithm::Taildrop, 10, 50 * S);
            assert_eq!(v, Ok(Verdict::Pass));
            assert_eq!(t.active(b"a"), Ok(false));
            assert_eq!((t.active(b"b"), t.active(b"c")), (Ok(true), Ok(true)));
        });
        // Slots held are never evicted.
        with_table(cfg(1), |t| {
            assert_eq!(t.acquire(b"held", 1, 0), Ok(SlotVerdict::Acquired));
            assert_eq!(t.acquire(b"other", 1, 100 * S), Err(Error::Full));
            assert_eq!(t.release(b"held", 0), Ok(Release::Released));
            assert_eq!(t.acquire(b"other", 1, 100 * S), Ok(SlotVerdict::Acquired));
            assert_eq!(t.active(b"held"), Ok(false));
        });
    });
}

#[test]
fn clean_unused_follows_pipelimit_ticks() {
    with_table(cfg(16), |t| {
        let old = t.check_or_create(b"old", Algorithm::Taildrop, 5, 5 * S); // window 0
        let new = t.check_or_create(b"new", Algorithm::Red, 5, 25 * S); // window 2
        assert_eq!((old, new), (Ok(Verdict::Pass), Ok(Verdict::Pass)));
        assert_eq!(t.acquire(b"held", 1, 0), Ok(SlotVerdict::Acquired));
        assert_eq!(t.clean_unused(0, 100 * S), 0);
        // clean_unused 2: "old" (window 0) goes from window 3 on.
        assert_eq!(t.clean_unused(2, 29 * S), 0);
        assert_eq!(t.clean_unused(2, 30 * S), 1);
        assert_eq!(t.active(b"old"), Ok(false));
        assert_eq!(t.clean_unused(2, 50 * S), 1);
        assert_eq!(t.active(b"held"), Ok(true), "held slots stay");
    });
}

#[test]
fn listing_shows_every_entry() {
    with_table(cfg(32), |t| {
        for i in 0u8..10 {
            let v = t.check_or_create(&[b'k', i], Algorithm::Taildrop, 5, 0);
            assert_eq!(v, Ok(Verdict::Pass));
        }
        assert_eq!(t.iter(0).count(), 10);
        assert!(t
            .iter(0)
            .all(|e| e.stats.counter == 1 && e.stats.limit == 5));
        assert_eq!(t.entry_at(usize::MAX, 0), None);
    });
}

#[test]
fn a_dead_holder_mid_operation_leaves_a_consistent_entry() {
    /// Only id 1 (this test) is alive.
    fn alive(id: u32) -> bool {
        id == 1
    }
    let c = cfg(8);
    let mut mem = region(Table::size_for(&c).unwrap());
    let owner = Owner::new(1, alive).unwrap();
    let t = Table::init_in(as_bytes(&mut mem), &c, owner).unwrap();
    assert_eq!(t.acquire(b"slots", 5, 0), Ok(SlotVerdict::Acquired));
    let LeaseVerdict::Acquired(held) = t.lease_acquire(b"slots", 5, None, 0).unwrap() else {
        panic!("refused")
    };
    let k = t.key(b"slots").unwrap();
    let idx = t.find(&k).map(|g| g.idx).unwrap();
    // Process 99 locked the entry, claimed a lease record (pending), wrote
    // garbage into the uncommitted buffer, and died.
    let e = &t.entries[idx];
    let active = e[E_LOCK].load(Ordering::Relaxed) >> 31;
    e[E_LOCK].store((active << 31) | 99, Ordering::Relaxed);
    super::write_words(e, active as usize ^ 1, &[0xdead_beef; BUF_WORDS]);
    let free = t
        .leases
        .iter()
        .position(|r| r[L_OWNER].load(Ordering::Relaxed) == 0)
        .unwrap();
    t.leases[free][L_OWNER].store(LEASE_PENDING | (idx as u32 + 1), Ordering::Relaxed);
    // The next caller takes the lock over and finds the committed state.
    assert_eq!(t.usage(b"slots", 1), Ok(2));
    assert_eq!(lock::holder(&e[E_LOCK]), 0);
    assert_eq!(
        t.leases[free][L_OWNER].load(Ordering::Relaxed),
        0,
        "pending record freed"
    );
    assert_eq!(t.lease_release(held, 2), Ok(LeaseRelease::Released));
    assert_eq!(t.release(b"slots", 2), Ok(Release::Released));
    assert_eq!(t.usage(b"slots", 3), Ok(0));

    // Died after freeing a lease record, before committing the count.
    let LeaseVerdict::Acquired(l) = t.lease_acquire(b"slots", 5, None, 4).unwrap() else {
        panic!("refused")
    };
    let rec = &t.leases[(l.to_bits() >> 32) as usize];
    rec[L_OWNER].store(0, Ordering::Relaxed);
    let active = e[E_LOCK].load(Ordering::Relaxed) >> 31;
    e[E_LOCK].store((active << 31) | 77, Ordering::Relaxed);
    assert_eq!(t.usage(b"slots", 5), Ok(0), "recount matches the records");

    // A dead holder of the insert lock does not block inserts.
    t.hdr[H_INSERT_LOCK].store(55, Ordering::Relaxed);
    assert_eq!(
        t.check_or_create(b"new", Algorithm::Nop, 0, 6),
        Ok(Verdict::PassNop)
    );
}

#[test]
fn static_table_initializes_once() {
    static T: StaticTable<8, 4> = StaticTable::new();
    assert_eq!(
        T.table(Owner::SINGLE_PROCESS).unwrap_err(),
        Error::NotATable
    );
    assert_eq!(
        T.init(0, 0, 0, Owner::SINGLE_PROCESS).unwrap_err(),
        Error::ZeroInterval
    );
    let t = T.init(S, 0, 1, Owner::SINGLE_PROCESS).unwrap();
    assert_eq!(
        t.check_or_create(b"k", Algorithm::Taildrop, 1, 0),
        Ok(Verdict::Pass)
    );
    let again = T.init(5 * S, 0, 2, Owner::SINGLE_PROCESS).unwrap();
    assert_eq!(again.interval(), S, "settings of later calls are ignored");
    assert_eq!(again.check(b"k", 1), Ok(Verdict::Drop));
    assert_eq!((again.capacity(), again.lease_capacity()), (8, 4));
    let t2 = T.table(Owner::new(2, |_| true).unwrap()).unwrap();
    assert_eq!(
        t2.with_owner(Owner::SINGLE_PROCESS).check(b"k", 2),
        Ok(Verdict::Drop)
    );
}

#[test]
fn balancing_members_that_evict_each_other_is_full_not_a_deadlock() {
    /// Only id 1 (this test) exists: being asked about it means waiting on a
    /// lock this very caller holds, which never ends.
    fn alive(id: u32) -> bool {
        assert_ne!(id, 1, "waiting on a lock this caller holds");
        true
    }
    let owner = Owner::new(1, alive).unwrap();
    // One slot: creating "b" evicts the idle "a" into the same slot.
    let c = cfg(1);
    let mut mem = region(Table::size_for(&c).unwrap());
    let t = Table::init_in(as_bytes(&mut mem), &c, owner).unwrap();
    assert_eq!(t.balance_acquire(&[b"a", b"b"], 1, -1, 0), Err(Error::Full));
    assert_eq!(t.len(), 1);
    // Four slots, three held: the two members cannot both fit.
    let c = cfg(4);
    let mut mem = region(Table::size_for(&c).unwrap());
    let t = Table::init_in(as_bytes(&mut mem), &c, owner).unwrap();
    for k in [b"x", b"y", b"z"] {
        assert_eq!(t.acquire(k, 1, 0), Ok(SlotVerdict::Acquired));
    }
    assert_eq!(
        t.balance_lease(&[b"a", b"b"], 1, -1, None, 0),
        Err(Error::Full)
    );
    // With room for both, the group works.
    assert_eq!(t.release(b"z", 0), Ok(Release::Released));
    assert_eq!(t.remove(b"z"), Ok(()));
    assert!(matches!(
        t.balance_acquire(&[b"a", b"b"], 1, -1, 0),
        Ok(Balanced::Acquired {
            member: 0,
            lease: None
        })
    ));
}

#[test]
fn failed_creations_leave_nothing_behind() {
    with_table(cfg(16), |t| {
        // pl_check cannot count on a SLOTS pipe: it fails and creates nothing.
        assert_eq!(
            t.check_or_create(b"s", Algorithm::Slots, 3, 0),
            Err(Error::WrongAlgorithm)
        );
        assert_eq!(t.active(b"s"), Ok(false));
        assert!(t.is_empty());
    });
    // No free lease record: a lease on a new key neither creates the key nor
    // evicts an idle entry to make room for it.
    let mut c = cfg(2);
    c.lease_capacity = 1;
    with_table(c, |t| {
        assert!(matches!(
            t.lease_acquire(b"a", -1, None, 0),
            Ok(LeaseVerdict::Acquired(_))
        ));
        assert_eq!(
            t.check_or_create(b"idle", Algorithm::Taildrop, 5, 0),
            Ok(Verdict::Pass)
        );
        assert_eq!(
            t.lease_acquire(b"b", -1, None, 100 * S),
            Err(Error::LeasesFull)
        );
        assert_eq!(t.active(b"b"), Ok(false));
        assert_eq!(t.active(b"idle"), Ok(true));
        assert_eq!(t.len(), 2);
    });
}

#[test]
fn leases_held_until_released_outlive_the_end_of_time() {
    with_table(cfg(16), |t| {
        let LeaseVerdict::Acquired(l) = t.lease_acquire(b"n", -1, None, 0).unwrap() else {
            panic!("refused")
        };
        // A hold that runs past u64::MAX never ends either.
        let LeaseVerdict::Acquired(m) = t.lease_acquire(b"n", -1, Some(10), u64::MAX - 5).unwrap()
        else {
            panic!("refused")
        };
        assert_eq!(t.usage(b"n", u64::MAX), Ok(2));
        assert_eq!(t.lease_release(l, u64::MAX), Ok(LeaseRelease::Released));
        assert_eq!(t.lease_release(m, u64::MAX), Ok(LeaseRelease::Released));
        assert_eq!(t.usage(b"n", u64::MAX), Ok(0));
    });
}

#[test]
fn releasing_an_expired_lease_changes_nothing_even_before_reclaim() {
    with_table(cfg(16), |t| {
        let LeaseVerdict::Acquired(l) = t.lease_acquire(b"n", -1, Some(S), 0).unwrap() else {
            panic!("refused")
        };
        // Nothing reclaimed it yet, but at 1 s it has expired.
        assert_eq!(t.lease_release(l, S), Ok(LeaseRelease::AlreadyReleased));
        assert_eq!(t.usage(b"n", S), Ok(0));
        assert_eq!(t.lease_release(l, S), Ok(LeaseRelease::AlreadyReleased));
        assert_eq!(t.get(b"n", S).unwrap().last_counter, 0);
    });
}

#[test]
fn a_balance_refused_for_a_wrong_member_keeps_lease_counts_right() {
    with_table(cfg(16), |t| {
        t.set(b"rate", Algorithm::Taildrop, 1, 0).unwrap();
        let LeaseVerdict::Acquired(_) = t.lease_acquire(b"v1", -1, Some(S), 0).unwrap() else {
            panic!("refused")
        };
        // v1's lease has expired; the group fails on "rate" before any
        // reclaim, so v1's count still matches its records...
        assert_eq!(
            t.balance_acquire(&[b"v1", b"rate"], 5, -1, 2 * S),
            Err(Error::WrongAlgorithm)
        );
        // ...and the next operation reclaims the expired lease.
        assert_eq!(t.usage(b"v1", 2 * S), Ok(0));
    });
}

#[test]
fn clean_unused_keeps_pipes_used_near_the_end_of_time() {
    let mut c = cfg(16);
    c.interval_ns = 1;
    with_table(c, |t| {
        let v = t.check_or_create(b"p", Algorithm::Taildrop, 5, u64::MAX - 1);
        assert_eq!(v, Ok(Verdict::Pass));
        // Window u64::MAX - 1 + 3 + 1 never comes.
        assert_eq!(t.clean_unused(3, u64::MAX), 0);
        assert_eq!(t.active(b"p"), Ok(true));
        assert_eq!(t.clean_unused(1, u64::MAX), 0);
        let v = t.check_or_create(b"q", Algorithm::Taildrop, 5, u64::MAX - 2);
        assert_eq!(v, Ok(Verdict::Pass));
        assert_eq!(t.clean_unused(1, u64::MAX), 1);
        assert_eq!(t.active(b"q"), Ok(false));
    });
}

#[test]
fn a_holder_dying_while_deleting_an_entry_leaks_no_lease_record() {
    /// Only id 1 (this test) is alive.
    fn alive(id: u32) -> bool {
        id == 1
    }
    let c = cfg(4);
    let mut mem = region(Table::size_for(&c).unwrap());
    let t = Table::init_in(as_bytes(&mut mem), &c, Owner::new(1, alive).unwrap()).unwrap();
    let LeaseVerdict::Acquired(l) = t.lease_acquire(b"gone", 5, None, 0).unwrap() else {
        panic!("refused")
    };
    let k = t.key(b"gone").unwrap();
    let idx = t.find(&k).map(|g| g.idx).unwrap();
    // Process 99 locked the entry to delete it (remove, or an eviction),
    // marked it free, and died before freeing its lease records.
    let e = &t.entries[idx];
    let active = e[E_LOCK].load(Ordering::Relaxed) >> 31;
    e[E_LOCK].store((active << 31) | 99, Ordering::Relaxed);
    e[E_GEN].store(
        e[E_GEN].load(Ordering::Relaxed).wrapping_add(1),
        Ordering::Relaxed,
    );
    e[E_META].store(STATE_TOMB, Ordering::Release);
    // The next user of the slot takes its lock over and frees them.
    assert_eq!(t.acquire(b"gone", 5, 1), Ok(SlotVerdict::Acquired));
    assert_eq!(t.lease_release(l, 1), Ok(LeaseRelease::AlreadyReleased));
    let mut claimed = 0;
    while let Ok(LeaseVerdict::Acquired(_)) = t.lease_acquire(b"gone", -1, None, 2) {
        claimed += 1;
    }
    assert_eq!(
        claimed, c.lease_capacity,
        "a dead deleter's lease record leaked"
    );
}

#[test]
fn each_buffer_keeps_what_changes_and_neither_writes_the_others() {
    let epoch = codec::TEST_EPOCH;
    codec::each_kind(|a, mut l| {
        // A fresh state (no window open yet), then after events.
        let mut cells = [Cell::new(l); 3];
        let mut now = epoch;
        for c in cells.iter_mut() {
            *c = Cell::new(l);
            for _ in 0..3 {
                let _ = l.check(now, &Shared::default());
                now += 700;
            }
        }
        if a == Algorithm::Slots {
            for (i, c) in cells.iter_mut().enumerate() {
                let i = i as u32;
                c.limiter = Limiter::Slots(Slots {
                    max: 7,
                    usage: 10 + i,
                    unmatched: 20 + i,
                });
                c.leased = 1 + i;
                c.next_expiry = 0x1_0000_0005 + u64::from(i);
            }
        }
        let e = Entry::zero();
        let m = meta(STATE_USED, 3, 0) | meta_cfg(encode(&cells[0])[0]);
        e[E_META].store(m, Ordering::Relaxed);
        let read = |b: usize| decode(&super::read_words(&e, b), epoch);
        write_buffer(&e, 0, &cells[0]);
        write_buffer(&e, 1, &cells[1]);
        assert_eq!((read(0), read(1)), (Ok(cells[0]), Ok(cells[1])), "{a:?}");
        // Rewriting either buffer leaves the other whole.
        write_buffer(&e, 0, &cells[2]);
        assert_eq!((read(0), read(1)), (Ok(cells[2]), Ok(cells[1])), "{a:?}");
        write_buffer(&e, 1, &cells[0]);
        assert_eq!((read(0), read(1)), (Ok(cells[2]), Ok(cells[0])), "{a:?}");
        if a == Algorithm::Slots {
            // Buffer 0's leases where a hot entry kept `H`: not open.
            let h = e.s[hot::S_H].load(Ordering::Relaxed);
            assert_eq!(h, 3 | (12 << 32));
        }
    });
    // Five state words in all.
    assert_eq!(STATE_WORDS, 5);
    assert_eq!(core::mem::size_of::<Entry>(), 112);
}
