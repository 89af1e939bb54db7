//! How full a table gets before an insert fails (issue 12: at least 90% of
//! capacity usable at 1 000, 100 000 and 1 000 000 entries).
//!
//! Every key is a TAILDROP pipe whose window is still open, so no entry is
//! idle and none can be evicted: an insert fails only when both of the
//! key's buckets are full. Prints the load at the first `Full` per size and
//! seed (`cargo test --release -p floodgate --test load -- --nocapture`,
//! with `FG_LOAD_SEEDS=10` for ten seeds more per size); BENCHMARKS.md
//! quotes it.

mod common;

use floodgate::table::{Config, Owner, Table};
use floodgate::{Algorithm, Error, Verdict};

/// Fills a new table of `capacity` entries with distinct keys until the
/// first insert that fails; returns how many went in. Each key is checked
/// again afterwards: every one is still there, with its count.
fn fill(capacity: usize, seed: u64) -> usize {
    let config = Config {
        capacity,
        lease_capacity: 0,
        interval_ns: 1_000_000_000,
        epoch: 0,
        seed,
    };
    common::with_heap_table(&config, Owner::SINGLE_PROCESS, |t| {
        fill_table(&t, capacity, seed)
    })
}

/// [`fill`] on the new table `t`.
fn fill_table(t: &Table<'_>, capacity: usize, seed: u64) -> usize {
    let key = |i: usize| (i as u64 ^ seed.rotate_left(17)).to_le_bytes();
    let mut n = 0;
    loop {
        match t.check_or_create(&key(n), Algorithm::Taildrop, 2, 0) {
            Ok(Verdict::Pass) => n += 1,
            Err(Error::Full) => break,
            other => panic!("insert {n} of {capacity}: {other:?}"),
        }
        assert!(n <= capacity, "more keys than entries");
    }
    assert_eq!(t.len(), n);
    for i in 0..n {
        assert_eq!(
            t.check(&key(i), 0),
            Ok(Verdict::Pass),
            "key {i}: second request"
        );
    }
    for i in 0..n.min(1000) {
        assert_eq!(
            t.check(&key(i), 0),
            Ok(Verdict::Drop),
            "key {i}: third request"
        );
    }
    n
}

/// `seeds`, and with `FG_LOAD_SEEDS=N` in the environment also seeds 1 to
/// N (for the load curve in BENCHMARKS.md; CI runs the listed seeds only).
fn at_least_90_percent(capacity: usize, seeds: &[u64]) {
    let more = std::env::var("FG_LOAD_SEEDS")
        .ok()
        .map(|n| n.parse::<u64>().expect("FG_LOAD_SEEDS: a number"))
        .unwrap_or(0);
    let extra = (1..=more).filter(|s| !seeds.contains(s));
    for seed in seeds.iter().copied().chain(extra) {
        let n = fill(capacity, seed);
        let load = n as f64 / capacity as f64;
        println!(
            "capacity {capacity:>9}, seed {seed:#018x}: first Full at {n} keys, load {load:.4}"
        );
        assert!(
            load >= 0.90,
            "capacity {capacity}, seed {seed:#x}: Full at load {load:.4}"
        );
    }
}

#[test]
fn a_thousand_entries_fill_to_90_percent() {
    at_least_90_percent(1_000, &[1, 2, 3, 4, 5, 0x5eed, 0xdead_beef, u64::MAX]);
}

#[test]
fn a_hundred_thousand_entries_fill_to_90_percent() {
    at_least_90_percent(100_000, &[1, 0x5eed]);
}

#[test]
fn a_million_entries_fill_to_90_percent() {
    at_least_90_percent(1_000_000, &[0x5eed]);
}
