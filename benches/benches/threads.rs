//! Two threads on distinct keys and on one key, against one thread: the
//! throughput floodgate's per-entry locks give, next to one mutex around a
//! map, pipelimit-style bucket locks and governor's keyed limiter.
//!
//! Each sample starts its threads, lines them up on a barrier, and times
//! `iters` operations per thread from the barrier to the last join. The
//! reported time is wall time / (threads x iters): time per operation of
//! the whole process, so throughput is its inverse and the 2-thread
//! speed-up is `time(1_thread) / time(2_distinct)`.
//!
//! Each thread has its own clock (a shared one would be a written cache
//! line both threads fight over). The distinct keys are chosen so that no
//! side's two entries share a cache line by accident: floodgate's entries
//! are at least two slots apart (an entry is 112 bytes) and the
//! pipelimit-style table's buckets are on different 64-byte lines. The
//! governor peer is the shipped `DefaultKeyedRateLimiter` on its own
//! (quanta) clock with a quota real time never exhausts: its fake-clock
//! variant would need one clock written by both threads. `compute_only`
//! (arithmetic, nothing shared) is the control: its speed-up is what the
//! machine gave two threads during the run.
//! See BENCHMARKS.md.

use std::hint::black_box;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use floodgate::table::Table;
use floodgate::{Algorithm, Verdict};
use floodgate_benches::cases::leaked_table;
use floodgate_benches::clock::BenchClock;
use floodgate_benches::peers::{ChainedTable, FixedWindow, MutexMap};
use floodgate_benches::{INTERVAL_NS, RATE_PER_SEC};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

mod common;

/// Where the next sample's clocks start: after every earlier sample's end,
/// so that time never goes back for a key across samples.
static NEXT_START: AtomicU64 = AtomicU64::new(0);

/// Runs `iters` operations on each of `threads` threads, each built by
/// `worker(thread index, start time)` on its thread, and returns wall time
/// / threads.
fn run<W, F>(threads: usize, iters: u64, worker: &W) -> Duration
where
    W: Fn(usize, u64) -> F + Sync,
    F: FnMut() -> bool,
{
    let span = (iters + 1) * floodgate_benches::STEP_NS + INTERVAL_NS;
    let start_ns = NEXT_START.fetch_add(span, Ordering::Relaxed);
    let barrier = Barrier::new(threads + 1);
    let mut start = Instant::now();
    std::thread::scope(|s| {
        for i in 0..threads {
            let barrier = &barrier;
            s.spawn(move || {
                let mut op = worker(i, start_ns);
                let mut ok = 0u64;
                barrier.wait();
                for _ in 0..iters {
                    ok += u64::from(black_box(op()));
                }
                assert_eq!(ok, iters, "an operation failed");
            });
        }
        barrier.wait();
        start = Instant::now();
    });
    start.elapsed() / threads as u32
}

/// The slot of `key` in `t`.
fn slot_of(t: &Table<'_>, key: &[u8]) -> usize {
    (0..t.capacity())
        .find(|&i| t.entry_at(i, 0).is_some_and(|e| e.key() == key))
        .expect("key in table")
}

fn benches(c: &mut Criterion) {
    let lim = i64::from(RATE_PER_SEC);
    let fg = leaked_table(1024, 0);
    let chained: Arc<ChainedTable<FixedWindow>> = Arc::new(ChainedTable::for_keys(1024));
    let mutex: Arc<MutexMap<FixedWindow>> = Arc::new(MutexMap::new());
    let quota = Quota::with_period(Duration::from_nanos(1))
        .expect("period")
        .allow_burst(NonZeroU32::MAX);
    let gov: Arc<DefaultKeyedRateLimiter<String>> = Arc::new(RateLimiter::keyed(quota));

    // Thread 0 uses "10.0.0.1"; thread 1 the first "10.0.0.j" whose entries
    // share no cache line with thread 0's on any side.
    let k0 = "10.0.0.1".to_owned();
    let create = |k: &str| {
        let v = fg.check_or_create(k.as_bytes(), Algorithm::Taildrop, lim, 0);
        assert_eq!(v, Ok(Verdict::Pass), "create {k}");
    };
    create(&k0);
    let s0 = slot_of(&fg, k0.as_bytes());
    let b0 = chained.bucket_of(k0.as_bytes());
    let k1 = (2..255)
        .map(|j| format!("10.0.0.{j}"))
        .find(|k| {
            create(k);
            let s1 = slot_of(&fg, k.as_bytes());
            let b1 = chained.bucket_of(k.as_bytes());
            s1.abs_diff(s0) >= 2 && b1 / 4 != b0 / 4
        })
        .expect("two keys apart");
    eprintln!(
        "threads: keys {k0:?} (slot {s0}) and {k1:?} (slot {})",
        slot_of(&fg, k1.as_bytes())
    );
    let keys = [k0, k1];
    for k in &keys {
        chained.with(k.as_bytes(), FixedWindow::default, |_| ());
        mutex.with(k, FixedWindow::default, |_| ());
        assert!(gov.check_key(k).is_ok());
    }
    let key = |mode: &str, i: usize| -> &str {
        if mode == "same" {
            &keys[0]
        } else {
            &keys[i]
        }
    };

    let mut g = c.benchmark_group("threads");
    for (param, threads, mode) in [
        ("1_thread", 1, "distinct"),
        ("2_distinct", 2, "distinct"),
        ("2_same", 2, "same"),
    ] {
        g.bench_function(BenchmarkId::new("floodgate", param), |b| {
            b.iter_custom(|iters| {
                run(threads, iters, &|i, t0| {
                    let k = key(mode, i).as_bytes();
                    let clock = BenchClock::at(t0);
                    move || {
                        let now = clock.tick();
                        fg.check_or_create(k, Algorithm::Taildrop, lim, now) == Ok(Verdict::Pass)
                    }
                })
            })
        });
        g.bench_function(BenchmarkId::new("mutex_map", param), |b| {
            b.iter_custom(|iters| {
                run(threads, iters, &|i, t0| {
                    let k = key(mode, i);
                    let (clock, m) = (BenchClock::at(t0), &mutex);
                    move || {
                        let now = clock.tick();
                        m.with(k, FixedWindow::default, |w| {
                            w.check(now, INTERVAL_NS, RATE_PER_SEC)
                        })
                    }
                })
            })
        });
        g.bench_function(BenchmarkId::new("pipelimit_table", param), |b| {
            b.iter_custom(|iters| {
                run(threads, iters, &|i, t0| {
                    let k = key(mode, i).as_bytes();
                    let (clock, t) = (BenchClock::at(t0), &chained);
                    move || {
                        let now = clock.tick();
                        t.with(k, FixedWindow::default, |w| {
                            w.check(now, INTERVAL_NS, RATE_PER_SEC)
                        })
                    }
                })
            })
        });
        // The control: arithmetic only, nothing shared. Its speed-up is
        // what the machine gives two threads during this run (1.0 when
        // another job holds the second core).
        g.bench_function(BenchmarkId::new("compute_only", param), |b| {
            b.iter_custom(|iters| {
                run(threads, iters, &|i, _| {
                    let mut x = 0x9e37_79b9_7f4a_7c15u64 ^ i as u64;
                    move || {
                        for _ in 0..8 {
                            x ^= x << 13;
                            x ^= x >> 7;
                            x ^= x << 17;
                        }
                        x != 0
                    }
                })
            })
        });
        g.bench_function(BenchmarkId::new("governor_keyed_quanta", param), |b| {
            b.iter_custom(|iters| {
                run(threads, iters, &|i, _| {
                    let k = key(mode, i).to_owned();
                    let l = &gov;
                    move || l.check_key(&k).is_ok()
                })
            })
        });
    }
    g.finish();
}

criterion_group! {
    name = group;
    config = common::config();
    targets = benches
}
criterion_main!(group);
