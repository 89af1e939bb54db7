//! Multi-thread stress of one shared [`Table`]: std threads, one table in an
//! 8-aligned heap region, `Owner::SINGLE_PROCESS` shared by every thread.
//!
//! Every test ends on exact totals (counters equal to the number of checks
//! made, every slot and lease given back, each key listed once), and checks
//! the maxima while it runs in two independent ways:
//! * a "holders" count kept outside the table: a worker adds itself right
//!   after the table granted it a slot and removes itself right before it
//!   gives the slot back, so the workers it counts are a subset of the
//!   table's holders at every instant, and it exceeding a max means the
//!   table let more than max in;
//! * a sampler thread reading `usage()` (and the listings) in a loop.
//!
//! The tables use one window of `u64::MAX` ns, so no counter rolls over and
//! window counters must equal the number of requests exactly; only
//! [`first_call_windows_start_at_the_call_that_passed`] and
//! [`aligned_rolls_pass_once_per_window`] roll, on a clock of ticks, and
//! check where each window starts or which windows pass.
//!
//! Operation counts (table calls, fixed, asserted by each test and summed by
//! the const assertion below) are the same in debug and release builds. A
//! call that gives up with `Error::Busy` changes nothing and is made again
//! ([`again`]), so it is not counted.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering::SeqCst};

use common::{again, BUSY};
use std::sync::{Barrier, OnceLock};
use std::thread;
use std::time::Instant;

use floodgate::table::{Balanced, Config, Lease, LeaseRelease, LeaseVerdict, Owner, Table};
use floodgate::{Algorithm, Error, MaxZero, Release, SlotVerdict, Verdict};

const THREADS: usize = 4;

/// Checks per thread and key (3 keys).
const CHECKS_PER_THREAD: u64 = 80_000;
/// Acquire attempts per thread on the plain slots key.
const SLOT_ROUNDS: u64 = 60_000;
/// Steps (one acquire or one release each) per thread of the hub test.
const BALANCE_STEPS: u64 = 30_000;
/// Steps per thread of the lease test.
const LEASE_STEPS: u64 = 40_000;
/// Keys and rounds of the insert test.
const INSERT_KEYS: usize = 300;
const INSERT_ROUNDS: usize = 12;

/// Table calls made by the workers of each test (samplers and final checks
/// not counted). Slot rounds: acquire, and when granted usage + release, so
/// at least one call each; lease steps: one call each, more for repeated
/// releases; insert rounds: a creating call and a remove per key and thread.
const CHECK_OPS: u64 = THREADS as u64 * CHECKS_PER_THREAD * 4;
const SLOT_OPS_MIN: u64 = THREADS as u64 * SLOT_ROUNDS;
const BALANCE_OPS: u64 = THREADS as u64 * BALANCE_STEPS;
const LEASE_OPS_MIN: u64 = THREADS as u64 * LEASE_STEPS;
const INSERT_OPS: u64 = (THREADS * INSERT_ROUNDS * INSERT_KEYS * 2) as u64;
const _: () = assert!(
    CHECK_OPS + SLOT_OPS_MIN + BALANCE_OPS + LEASE_OPS_MIN + INSERT_OPS >= 1_000_000,
    "the stress must make at least 1e6 table operations"
);

/// Monotonic ns since the first call in this process.
fn now() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

/// A small xorshift generator, one per thread.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn config(capacity: usize, lease_capacity: usize) -> Config {
    Config {
        capacity,
        lease_capacity,
        // One window for the whole run: nothing rolls over.
        interval_ns: u64::MAX,
        epoch: 0,
        seed: 0x5eed_0ff1_00d6_a7e5,
    }
}

/// Waits for a lock by spinning, yielding the CPU every 64 spins.
fn spin_then_yield(spins: u32) {
    if spins.is_multiple_of(64) {
        thread::yield_now();
    } else {
        std::hint::spin_loop();
    }
}

/// `Owner::SINGLE_PROCESS` (id 1, holders never dead) that yields while it
/// waits. With more threads than cores (4 workers and a sampler here, often
/// on 2 cores) a pure spin burns whole time slices while the lock holder is
/// preempted; the yield keeps the heavy tests fast without changing the lock
/// protocol. The lighter tests use the plain spinning owner.
const YIELDING: Owner = Owner::SINGLE_PROCESS.with_relax(spin_then_yield);

/// Runs `f` on a table built in an 8-aligned heap region, shared by every
/// thread through one `owner`.
fn with_table<R>(config: Config, owner: Owner, f: impl FnOnce(Table<'_>) -> R) -> R {
    common::with_heap_table(&config, owner, |t| {
        assert_eq!(t.capacity(), config.capacity);
        f(t)
    })
}

/// Adds a holder to an outside count and asserts it stays within `max`.
fn enter(count: &AtomicU32, max: u32, what: &str) {
    let n = count.fetch_add(1, SeqCst) + 1;
    assert!(n <= max, "{what}: {n} holders at once, max {max}");
}

fn leave(count: &AtomicU32) {
    count.fetch_sub(1, SeqCst);
}

/// Sets its flag when dropped: stops the sampler when the test ends, also
/// by a panic (a failed assertion must fail the test, not hang it).
struct SetOnDrop<'a>(&'a AtomicBool);

impl Drop for SetOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, SeqCst);
    }
}

/// A barrier that gives up (panics) once a thread of the test has failed,
/// where `std::sync::Barrier` would wait for it forever.
struct SpinBarrier {
    n: usize,
    arrived: AtomicUsize,
    generation: AtomicUsize,
    failed: AtomicBool,
}

impl SpinBarrier {
    fn new(n: usize) -> SpinBarrier {
        SpinBarrier {
            n,
            arrived: AtomicUsize::new(0),
            generation: AtomicUsize::new(0),
            failed: AtomicBool::new(false),
        }
    }

    fn wait(&self) {
        let generation = self.generation.load(SeqCst);
        if self.arrived.fetch_add(1, SeqCst) + 1 == self.n {
            self.arrived.store(0, SeqCst);
            self.generation.fetch_add(1, SeqCst);
            return;
        }
        while self.generation.load(SeqCst) == generation {
            assert!(!self.failed.load(SeqCst), "another thread failed");
            thread::yield_now();
        }
    }
}

/// Marks a [`SpinBarrier`] failed if its thread panics.
struct FailOnPanic<'a>(&'a SpinBarrier);

impl Drop for FailOnPanic<'_> {
    fn drop(&mut self) {
        if thread::panicking() {
            self.0.failed.store(true, SeqCst);
        }
    }
}

#[test]
fn checks_count_exactly() {
    const TD_LIMIT: i64 = 10_000;
    const IV_MAX: i32 = 7_000;
    let total = THREADS as u64 * CHECKS_PER_THREAD;
    with_table(config(64, 0), YIELDING, |t| {
        let ops = AtomicU64::new(0);
        let start = Barrier::new(THREADS);
        // (taildrop passes, interval passes, nop passes, passes of the
        // interval from the first call) per thread.
        let per_thread: Vec<(u64, u64, u64, u64)> = thread::scope(|s| {
            let handles: Vec<_> = (0..THREADS)
                .map(|_| {
                    let (ops, start) = (&ops, &start);
                    s.spawn(move || {
                        let (mut td, mut iv, mut nop, mut first) = (0u64, 0u64, 0u64, 0u64);
                        start.wait();
                        for i in 0..CHECKS_PER_THREAD {
                            let now = now();
                            // The first checks race to create the pipes.
                            let v = if i == 0 {
                                again(|| {
                                    t.check_or_create(
                                        b"taildrop",
                                        Algorithm::Taildrop,
                                        TD_LIMIT,
                                        now,
                                    )
                                })
                            } else {
                                again(|| t.check(b"taildrop", now))
                            };
                            match v.unwrap() {
                                Verdict::Pass => td += 1,
                                Verdict::Drop => {}
                                Verdict::PassNop => panic!("taildrop said PassNop"),
                            }
                            let v = if i == 0 {
                                again(|| t.check_or_create(b"nop", Algorithm::Nop, 0, now))
                            } else {
                                again(|| t.check(b"nop", now))
                            };
                            assert_eq!(v, Ok(Verdict::PassNop));
                            nop += 1;
                            for (key, anchor_first, passes) in [
                                (&b"interval"[..], false, &mut iv),
                                (b"first", true, &mut first),
                            ] {
                                let v = again(|| {
                                    t.rate_check(
                                        key,
                                        IV_MAX,
                                        u64::MAX,
                                        anchor_first,
                                        MaxZero::RefuseAll,
                                        now,
                                    )
                                });
                                match v.unwrap() {
                                    Verdict::Pass => *passes += 1,
                                    Verdict::Drop => {}
                                    Verdict::PassNop => panic!("interval said PassNop"),
                                }
                            }
                            ops.fetch_add(4, SeqCst);
                        }
                        (td, iv, nop, first)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(ops.load(SeqCst), CHECK_OPS);
        eprintln!(
            "checks: {} table calls by the workers ({} Busy calls made again so far in this binary)",
            ops.load(SeqCst),
            BUSY.load(SeqCst)
        );
        let td: u64 = per_thread.iter().map(|p| p.0).sum();
        let iv: u64 = per_thread.iter().map(|p| p.1).sum();
        let nop: u64 = per_thread.iter().map(|p| p.2).sum();
        let first: u64 = per_thread.iter().map(|p| p.3).sum();
        let now = now();
        // Exactly `limit` passes, whatever the interleaving.
        assert_eq!(td, TD_LIMIT as u64, "taildrop passes");
        assert_eq!(iv, IV_MAX as u64, "interval passes");
        assert_eq!(
            first, IV_MAX as u64,
            "passes of the interval from the first call"
        );
        assert_eq!(nop, total);
        // Every check counted once: no lost update.
        let st = t.get(b"taildrop", now).unwrap();
        assert_eq!(u64::from(st.counter), total, "taildrop counter");
        assert_eq!(st.last_counter, 0, "the window never rolled");
        assert_eq!(u64::from(t.get(b"nop", now).unwrap().counter), total);
        assert_eq!(u64::from(t.get(b"interval", now).unwrap().counter), total);
        assert_eq!(u64::from(t.get(b"first", now).unwrap().counter), total);
        // Created once each.
        assert_eq!(t.len(), 4);
        assert_eq!(t.iter(now).count(), 4);
    });
}

/// A mod_hash limit of `max == 0` (the first call of each window passes)
/// rolled by every thread at once, on a shared clock of ticks (each call
/// takes the next tick, so at most [`THREADS`] calls are in flight). A
/// pass is the call whose claim started its window, so the passes' times,
/// sorted, are the windows' starts: each at least a window after the last
/// (two claims for one roll would break that), and at most `THREADS - 1`
/// ticks later than that (a call of a later tick cannot be made before
/// one in the ended window's next `THREADS` ticks has finished, and that
/// one lands in a later window); the last window starts at the last pass.
/// Pipes made by `set` (pl.set_pipe) whose first checks come from every
/// thread at once: one claims the first window, any of them opens it,
/// without the lock. Each round's passes equal the limit exactly, and
/// every check is counted. (Asserted after the threads end: a thread that
/// panicked would leave the others waiting at the barrier.)
#[test]
fn new_pipes_first_checked_by_every_thread_count_exactly() {
    const ROUNDS: u64 = if cfg!(debug_assertions) { 300 } else { 3_000 };
    const LIMIT: u64 = 5;
    const PER_THREAD: u64 = 3;
    with_table(config(16, 0), YIELDING, |t| {
        let barrier = Barrier::new(THREADS);
        let passes = AtomicU64::new(0);
        // Per round: passes, the pipe's counter, and whether set and
        // remove succeeded.
        let rounds: Vec<(u64, Result<u32, Error>, bool)> = thread::scope(|s| {
            let handles: Vec<_> = (0..THREADS)
                .map(|i| {
                    let (barrier, passes) = (&barrier, &passes);
                    s.spawn(move || {
                        let mut seen = Vec::new();
                        for r in 0..ROUNDS {
                            let key = r.to_le_bytes();
                            let made = i != 0
                                || again(|| t.set(&key, Algorithm::Taildrop, LIMIT as i64, r))
                                    .is_ok();
                            barrier.wait();
                            for _ in 0..PER_THREAD {
                                if again(|| t.check(&key, r)) == Ok(Verdict::Pass) {
                                    passes.fetch_add(1, SeqCst);
                                }
                            }
                            barrier.wait();
                            if i == 0 {
                                let counter = t.get(&key, r).map(|s| s.counter);
                                let removed = again(|| t.remove(&key)).is_ok();
                                seen.push((passes.swap(0, SeqCst), counter, made && removed));
                            }
                            barrier.wait();
                        }
                        seen
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap())
                .collect()
        });
        assert_eq!(rounds.len() as u64, ROUNDS);
        let counted = Ok(THREADS as u32 * PER_THREAD as u32);
        for (r, seen) in rounds.iter().enumerate() {
            assert_eq!(*seen, (LIMIT, counted, true), "round {r}");
        }
        assert!(t.is_empty());
    });
}

#[test]
fn first_call_windows_start_at_the_call_that_passed() {
    const W: u64 = 64;
    const CALLS: u64 = if cfg!(debug_assertions) {
        20_000
    } else {
        100_000
    };
    with_table(config(16, 0), YIELDING, |t| {
        let tick = AtomicU64::new(0);
        let start = Barrier::new(THREADS);
        let mut passes: Vec<u64> = thread::scope(|s| {
            let handles: Vec<_> = (0..THREADS)
                .map(|_| {
                    let (tick, start) = (&tick, &start);
                    s.spawn(move || {
                        let mut mine = Vec::new();
                        start.wait();
                        for _ in 0..CALLS {
                            let now = tick.fetch_add(1, SeqCst);
                            let v = again(|| t.rate_check(b"m", 0, W, true, MaxZero::ModHash, now));
                            match v.unwrap() {
                                Verdict::Pass => mine.push(now),
                                Verdict::Drop => {}
                                Verdict::PassNop => panic!("interval said PassNop"),
                            }
                        }
                        mine
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap())
                .collect()
        });
        passes.sort_unstable();
        let calls = THREADS as u64 * CALLS;
        assert!(
            passes[0] < THREADS as u64,
            "the first window: {}",
            passes[0]
        );
        for w in passes.windows(2) {
            let gap = w[1] - w[0];
            assert!(
                (W..W + THREADS as u64).contains(&gap),
                "windows starting at {} and {}",
                w[0],
                w[1]
            );
        }
        assert!(passes.len() as u64 >= calls / (W + THREADS as u64));
        let last = *passes.last().unwrap();
        let inside = t.get(b"m", last + W - 1).unwrap();
        let after = t.get(b"m", last + W).unwrap();
        assert!(inside.counter >= 1, "the last pass counted in its window");
        assert_eq!(
            (after.counter, after.last_counter),
            (0, inside.counter),
            "the last window ends {W} ticks after the last pass"
        );
        eprintln!(
            "first-call rolls: {} windows over {calls} calls",
            passes.len()
        );
    });
}

/// An aligned TAILDROP pipe of limit 1 (the first call counted in each
/// window passes) checked by every thread at once on a shared clock of
/// ticks, in phases between which the clock jumps 2^31 windows and a half
/// on (each jump's roll hops, `table/hot/roll.rs`). With windows longer
/// than the calls in flight, every window that some call's time lies in
/// is opened by one of them (by the time a later window's tick is taken,
/// most of the window's calls have finished), so the passes lie in
/// exactly the windows of the calls, one each: two rolls to one window, or
/// a roll lost, would break that.
#[test]
fn aligned_rolls_pass_once_per_window() {
    const W: u64 = 64;
    const PHASES: u64 = 8;
    const CALLS: u64 = if cfg!(debug_assertions) {
        2_000
    } else {
        12_000
    };
    const JUMP: u64 = (1 << 31) * W + W / 2;
    let config = Config {
        interval_ns: W,
        ..config(16, 0)
    };
    with_table(config, YIELDING, |t| {
        let tick = AtomicU64::new(0);
        let barrier = Barrier::new(THREADS);
        // Per thread: the windows of its calls, and the times of its passes.
        let seen: Vec<(Vec<u64>, Vec<u64>)> = thread::scope(|s| {
            let handles: Vec<_> = (0..THREADS)
                .map(|i| {
                    let (tick, barrier) = (&tick, &barrier);
                    s.spawn(move || {
                        let (mut windows, mut passes) = (Vec::new(), Vec::new());
                        for _ in 0..PHASES {
                            barrier.wait();
                            for _ in 0..CALLS {
                                let now = tick.fetch_add(1, SeqCst);
                                if windows.last() != Some(&(now / W)) {
                                    windows.push(now / W);
                                }
                                let v =
                                    again(|| t.check_or_create(b"a", Algorithm::Taildrop, 1, now));
                                if v.unwrap() == Verdict::Pass {
                                    passes.push(now);
                                }
                            }
                            barrier.wait();
                            if i == 0 {
                                tick.fetch_add(JUMP, SeqCst);
                            }
                        }
                        (windows, passes)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let mut windows: Vec<u64> = seen.iter().flat_map(|(w, _)| w.iter().copied()).collect();
        windows.sort_unstable();
        windows.dedup();
        let mut passes: Vec<u64> = seen.iter().flat_map(|(_, p)| p.iter().copied()).collect();
        passes.sort_unstable();
        let pass_windows: Vec<u64> = passes.iter().map(|p| p / W).collect();
        assert_eq!(pass_windows.len(), windows.len(), "one pass per window");
        assert_eq!(
            pass_windows, windows,
            "the passes lie in the windows of the calls"
        );
        let last = tick.load(SeqCst) - JUMP - 1;
        let st = t.get(b"a", last).unwrap();
        assert!(st.counter >= 1, "the last window counted its calls");
        eprintln!(
            "aligned rolls: {} windows over {} calls, {} jumps",
            windows.len(),
            THREADS as u64 * PHASES * CALLS,
            PHASES
        );
    });
}

#[test]
fn slot_pairs_never_exceed_max_and_always_match() {
    const MAX: u32 = 2;
    with_table(config(16, 0), YIELDING, |t| {
        let holders = AtomicU32::new(0);
        let done = AtomicBool::new(false);
        let ops = AtomicU64::new(0);
        let (mut acquired, mut refused, mut attempts, mut samples) = (0u64, 0u64, 0u64, 0u64);
        // Created before the workers, so the sampler always finds it.
        assert_eq!(
            t.acquire(b"slots", MAX as i32, now()),
            Ok(SlotVerdict::Acquired)
        );
        assert_eq!(t.release(b"slots", now()), Ok(Release::Released));
        thread::scope(|s| {
            let _stop_sampler = SetOnDrop(&done);
            let sampler = s.spawn(|| {
                let mut n = 0u64;
                while !done.load(SeqCst) {
                    let u = again(|| t.usage(b"slots", now())).unwrap();
                    assert!(u <= MAX, "sampled usage {u} above max {MAX}");
                    let st = again(|| t.get(b"slots", now())).unwrap();
                    assert!(st.counter <= MAX, "listed usage {} above max", st.counter);
                    assert_eq!(st.last_counter, 0, "an unmatched release happened");
                    n += 1;
                }
                n
            });
            let workers: Vec<_> = (0..THREADS)
                .map(|_| {
                    let (holders, ops) = (&holders, &ops);
                    s.spawn(move || {
                        let (mut a, mut r, mut attempts) = (0u64, 0u64, 0u64);
                        for round in 0..SLOT_ROUNDS {
                            // 1, 2 or 3 slots at once, stopping at a refusal:
                            // a third one is refused even with no other thread.
                            let mut held = 0;
                            for _ in 0..1 + round % 3 {
                                let v = again(|| t.acquire(b"slots", MAX as i32, now())).unwrap();
                                ops.fetch_add(1, SeqCst);
                                attempts += 1;
                                if v == SlotVerdict::Refused {
                                    r += 1;
                                    break;
                                }
                                a += 1;
                                held += 1;
                                enter(holders, MAX, "slots");
                            }
                            if held > 0 {
                                // Seen from inside: this thread's slots are counted.
                                let u = again(|| t.usage(b"slots", now())).unwrap();
                                assert!((held..=MAX).contains(&u), "usage {u} holding {held}");
                                ops.fetch_add(1, SeqCst);
                            }
                            for _ in 0..held {
                                leave(holders);
                                assert_eq!(
                                    again(|| t.release(b"slots", now())),
                                    Ok(Release::Released)
                                );
                                ops.fetch_add(1, SeqCst);
                            }
                        }
                        (a, r, attempts)
                    })
                })
                .collect();
            for w in workers {
                let (a, r, n) = w.join().unwrap();
                acquired += a;
                refused += r;
                attempts += n;
            }
            done.store(true, SeqCst);
            samples = sampler.join().unwrap();
        });
        assert!(ops.load(SeqCst) >= SLOT_OPS_MIN);
        eprintln!(
            "slots: {} table calls by the workers ({} Busy calls made again so far in this binary)",
            ops.load(SeqCst),
            BUSY.load(SeqCst)
        );
        assert_eq!(acquired + refused, attempts);
        assert!(attempts >= THREADS as u64 * SLOT_ROUNDS);
        assert!(acquired > 0 && samples > 0);
        assert!(refused > 0, "no acquire was ever refused");
        let now = now();
        assert_eq!(
            t.usage(b"slots", now),
            Ok(0),
            "every pair gave its slot back"
        );
        let st = t.get(b"slots", now).unwrap();
        assert_eq!((st.counter, st.last_counter), (0, 0), "usage, unmatched");
        assert_eq!(t.release(b"slots", now), Ok(Release::Unmatched));
    });
}

#[test]
fn hub_balancing_keeps_member_and_group_maxima() {
    // app_rpt hub: 4 nodes of 50 links, 200 in all (there the total binds
    // only together with the members' maxima)...
    hub_stress(
        [b"hub-1", b"hub-2", b"hub-3", b"hub-4"],
        50,
        200,
        210,
        BALANCE_STEPS / 2,
    );
    // ...and a group whose total binds before the members are full.
    hub_stress(
        [b"grp-1", b"grp-2", b"grp-3", b"grp-4"],
        50,
        120,
        130,
        BALANCE_STEPS / 2,
    );
}

/// `THREADS` threads take (plain or leased, alternately) and give back
/// balanced slots on `members`, each holding up to `hold`, for `steps` steps
/// each. One thread alone may want more than `total`, so the total is
/// reached however the threads are scheduled.
fn hub_stress(members: [&[u8]; 4], per_max: u32, total_max: u32, hold: usize, steps: u64) {
    assert!(hold > total_max as usize);
    let (per_i, total_i) = (per_max as i32, total_max as i32);
    with_table(config(64, 256), YIELDING, |t| {
        let per: [AtomicU32; 4] = Default::default();
        let total = AtomicU32::new(0);
        let done = AtomicBool::new(false);
        let ops = AtomicU64::new(0);
        let (mut granted, mut full, mut samples) = (0u64, 0u64, 0u64);
        // Created before the sampler starts.
        for m in members {
            assert_eq!(t.acquire(m, per_i, now()), Ok(SlotVerdict::Acquired));
            assert_eq!(t.release(m, now()), Ok(Release::Released));
        }
        thread::scope(|s| {
            let _stop_sampler = SetOnDrop(&done);
            let sampler = s.spawn(|| {
                let mut n = 0u64;
                while !done.load(SeqCst) {
                    for m in members {
                        let u = again(|| t.usage(m, now())).unwrap();
                        assert!(u <= per_max, "member usage {u} above {per_max}");
                    }
                    n += 1;
                }
                n
            });
            let workers: Vec<_> = (0..THREADS)
                .map(|w| {
                    let (per, total, ops) = (&per, &total, &ops);
                    s.spawn(move || {
                        let mut rng = Rng::new(w as u64 + 11);
                        let mut held: Vec<(usize, Option<Lease>)> = Vec::with_capacity(hold);
                        let (mut got, mut refused) = (0u64, 0u64);
                        let give_back = |(m, lease): (usize, Option<Lease>)| {
                            leave(&per[m]);
                            leave(total);
                            match lease {
                                Some(l) => assert_eq!(
                                    again(|| t.lease_release(l, now())),
                                    Ok(LeaseRelease::Released)
                                ),
                                None => {
                                    assert_eq!(
                                        again(|| t.release(members[m], now())),
                                        Ok(Release::Released)
                                    )
                                }
                            }
                        };
                        for step in 0..steps {
                            let acquire =
                                held.is_empty() || (held.len() < hold && rng.below(100) < 55);
                            if acquire {
                                let v = if step % 2 == 0 {
                                    again(|| t.balance_acquire(&members, per_i, total_i, now()))
                                } else {
                                    again(|| t.balance_lease(&members, per_i, total_i, None, now()))
                                };
                                match v.unwrap() {
                                    Balanced::Acquired { member, lease } => {
                                        assert_eq!(lease.is_some(), step % 2 == 1);
                                        enter(&per[member], per_max, "hub member");
                                        enter(total, total_max, "hub total");
                                        held.push((member, lease));
                                        got += 1;
                                    }
                                    Balanced::Full => refused += 1,
                                }
                            } else {
                                let i = rng.below(held.len() as u64) as usize;
                                give_back(held.swap_remove(i));
                            }
                            ops.fetch_add(1, SeqCst);
                        }
                        for h in held.drain(..) {
                            give_back(h);
                        }
                        (got, refused)
                    })
                })
                .collect();
            for w in workers {
                let (g, f) = w.join().unwrap();
                granted += g;
                full += f;
            }
            done.store(true, SeqCst);
            samples = sampler.join().unwrap();
        });
        assert_eq!(ops.load(SeqCst), THREADS as u64 * steps);
        eprintln!(
            "hub: {} table calls by the workers ({} Busy calls made again so far in this binary)",
            ops.load(SeqCst),
            BUSY.load(SeqCst)
        );
        assert!(granted > 0 && samples > 0);
        assert!(full > 0, "the group total was never reached");
        let now = now();
        for m in members {
            assert_eq!(t.usage(m, now), Ok(0), "every release returned the count");
            assert_eq!(t.get(m, now).unwrap().last_counter, 0, "unmatched releases");
        }
        // Quiet now: `total` balanced acquisitions spread evenly, then Full.
        let mut counts = [0u32; 4];
        for _ in 0..total_max {
            match t.balance_acquire(&members, per_i, total_i, now).unwrap() {
                Balanced::Acquired { member, .. } => counts[member] += 1,
                Balanced::Full => panic!("full before the total"),
            }
        }
        assert_eq!(counts, [(total_max / 4).min(per_max); 4]);
        assert_eq!(
            t.balance_acquire(&members, per_i, total_i, now),
            Ok(Balanced::Full)
        );
        for (m, n) in members.into_iter().zip(counts) {
            for _ in 0..n {
                assert_eq!(t.release(m, now), Ok(Release::Released));
            }
            assert_eq!(t.usage(m, now), Ok(0));
        }
    });
}

#[test]
fn leases_are_released_exactly_once() {
    const MAX: u32 = 16;
    /// Leases one thread holds at most: alone it wants more than max.
    const HOLD: usize = 20;
    /// Short-lived leases on a second key, some released after they expired.
    const EXP_MAX: u32 = 4;
    const EXP_HOLD_NS: u64 = 200_000;
    with_table(config(16, 64), Owner::SINGLE_PROCESS, |t| {
        let holders = AtomicU32::new(0);
        let done = AtomicBool::new(false);
        let ops = AtomicU64::new(0);
        for (k, m) in [(&b"leases"[..], MAX), (b"expiring", EXP_MAX)] {
            assert_eq!(t.acquire(k, m as i32, now()), Ok(SlotVerdict::Acquired));
            assert_eq!(t.release(k, now()), Ok(Release::Released));
        }
        // Per thread: (acquired, released, refused, expiring acquired,
        // expiring released, expiring found already reclaimed).
        let mut sums = [0u64; 6];
        let mut samples = 0;
        thread::scope(|s| {
            let _stop_sampler = SetOnDrop(&done);
            let sampler = s.spawn(|| {
                let mut n = 0u64;
                while !done.load(SeqCst) {
                    let u = again(|| t.usage(b"leases", now())).unwrap();
                    assert!(u <= MAX, "lease usage {u} above {MAX}");
                    let u = again(|| t.usage(b"expiring", now())).unwrap();
                    assert!(u <= EXP_MAX, "expiring usage {u} above {EXP_MAX}");
                    n += 1;
                }
                n
            });
            let workers: Vec<_> = (0..THREADS)
                .map(|w| {
                    let (holders, ops) = (&holders, &ops);
                    s.spawn(move || {
                        let mut rng = Rng::new(w as u64 + 101);
                        let mut held: Vec<Lease> = Vec::with_capacity(HOLD);
                        let mut exp: Option<Lease> = None;
                        let mut c = [0u64; 6];
                        let release = |l: Lease, c: &mut [u64; 6]| {
                            leave(holders);
                            assert_eq!(
                                again(|| t.lease_release(l, now())),
                                Ok(LeaseRelease::Released)
                            );
                            c[1] += 1;
                            // A second release of the same handle does nothing.
                            if c[1].is_multiple_of(8) {
                                assert_eq!(
                                    again(|| t.lease_release(l, now())),
                                    Ok(LeaseRelease::AlreadyReleased)
                                );
                            }
                        };
                        for step in 0..LEASE_STEPS {
                            match step % 4 {
                                // Expiring lease: take one, or give it back.
                                3 => match exp.take() {
                                    Some(l) => match again(|| t.lease_release(l, now())).unwrap() {
                                        LeaseRelease::Released => c[4] += 1,
                                        LeaseRelease::AlreadyReleased => c[5] += 1,
                                    },
                                    None => {
                                        let v = again(|| {
                                            t.lease_acquire(
                                                b"expiring",
                                                EXP_MAX as i32,
                                                Some(EXP_HOLD_NS),
                                                now(),
                                            )
                                        });
                                        if let LeaseVerdict::Acquired(l) = v.unwrap() {
                                            c[3] += 1;
                                            exp = Some(l);
                                        }
                                    }
                                },
                                _ => {
                                    let take =
                                        held.is_empty() || (held.len() < HOLD && rng.below(3) != 0);
                                    if take {
                                        match t
                                            .lease_acquire(b"leases", MAX as i32, None, now())
                                            .unwrap()
                                        {
                                            LeaseVerdict::Acquired(l) => {
                                                enter(holders, MAX, "leases");
                                                held.push(l);
                                                c[0] += 1;
                                            }
                                            LeaseVerdict::Refused => c[2] += 1,
                                        }
                                    } else {
                                        let i = rng.below(held.len() as u64) as usize;
                                        release(held.swap_remove(i), &mut c);
                                    }
                                }
                            }
                            ops.fetch_add(1, SeqCst);
                        }
                        for l in held.drain(..) {
                            release(l, &mut c);
                        }
                        if let Some(l) = exp {
                            match again(|| t.lease_release(l, now())).unwrap() {
                                LeaseRelease::Released => c[4] += 1,
                                LeaseRelease::AlreadyReleased => c[5] += 1,
                            }
                        }
                        c
                    })
                })
                .collect();
            for w in workers {
                for (sum, v) in sums.iter_mut().zip(w.join().unwrap()) {
                    *sum += v;
                }
            }
            done.store(true, SeqCst);
            samples = sampler.join().unwrap();
        });
        let [acquired, released, refused, exp_acquired, exp_released, exp_gone] = sums;
        assert!(ops.load(SeqCst) >= LEASE_OPS_MIN);
        eprintln!(
            "leases: {} table calls by the workers ({} Busy calls made again so far in this binary)",
            ops.load(SeqCst),
            BUSY.load(SeqCst)
        );
        assert!(samples > 0 && acquired > 0 && exp_acquired > 0);
        assert!(refused > 0, "20 wanted leases never met a max of 16");
        assert_eq!(released, acquired, "each lease released exactly once");
        assert_eq!(exp_released + exp_gone, exp_acquired);
        let now = now();
        assert_eq!(t.usage(b"leases", now), Ok(0));
        assert_eq!(t.usage(b"expiring", now + EXP_HOLD_NS), Ok(0));
        // Every record is free again: the whole lease area can be claimed.
        let mut all = Vec::new();
        loop {
            match t.lease_acquire(b"leases", -1, None, now) {
                Ok(LeaseVerdict::Acquired(l)) => all.push(l),
                Err(Error::LeasesFull) => break,
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(all.len(), t.lease_capacity(), "a lease record leaked");
        for l in all {
            assert_eq!(t.lease_release(l, now), Ok(LeaseRelease::Released));
        }
    });
}

#[test]
fn concurrent_inserts_never_duplicate_a_key() {
    let keys: Vec<Vec<u8>> = (0..INSERT_KEYS)
        .map(|i| format!("ins-{i:04}-{}", "x".repeat(i % 40)).into_bytes())
        .collect();
    with_table(config(512, 0), Owner::SINGLE_PROCESS, |t| {
        let barrier = SpinBarrier::new(THREADS);
        let ops = AtomicU64::new(0);
        let removed = AtomicU64::new(0);
        thread::scope(|s| {
            for w in 0..THREADS {
                let (keys, barrier, ops, removed) = (&keys, &barrier, &ops, &removed);
                s.spawn(move || {
                    let _fail = FailOnPanic(barrier);
                    let mut rng = Rng::new(w as u64 + 1001);
                    let mut order: Vec<usize> = (0..INSERT_KEYS).collect();
                    for round in 0..INSERT_ROUNDS {
                        // Each thread creates every key, in its own order.
                        for i in (1..order.len()).rev() {
                            order.swap(i, rng.below(i as u64 + 1) as usize);
                        }
                        for &i in &order {
                            let k = &keys[i][..];
                            let now = now();
                            match i % 3 {
                                0 => assert_eq!(
                                    again(|| t.check_or_create(k, Algorithm::Nop, 0, now)),
                                    Ok(Verdict::PassNop)
                                ),
                                1 => assert_eq!(
                                    again(|| t.acquire(k, -1, now)),
                                    Ok(SlotVerdict::Acquired)
                                ),
                                _ => assert_eq!(
                                    again(|| t.rate_check(
                                        k,
                                        -1,
                                        u64::MAX,
                                        false,
                                        MaxZero::RefuseAll,
                                        now
                                    )),
                                    Ok(Verdict::Pass)
                                ),
                            }
                            ops.fetch_add(1, SeqCst);
                        }
                        barrier.wait();
                        if w == 0 {
                            let now = now();
                            let mut seen = vec![0u32; INSERT_KEYS];
                            for e in t.iter(now) {
                                let i = keys.iter().position(|k| k == e.key()).unwrap();
                                seen[i] += 1;
                                // Every thread's call landed in this one entry.
                                assert_eq!(e.stats.counter, THREADS as u32, "round {round}");
                            }
                            assert!(seen.iter().all(|&n| n == 1), "round {round}: {seen:?}");
                            assert_eq!(t.len(), INSERT_KEYS);
                        }
                        barrier.wait();
                        // Everyone removes every key: each goes exactly once.
                        for &i in order.iter().rev() {
                            match again(|| t.remove(&keys[i])) {
                                Ok(()) => {
                                    removed.fetch_add(1, SeqCst);
                                }
                                Err(Error::NoPipe) => {}
                                Err(e) => panic!("remove: {e:?}"),
                            }
                            ops.fetch_add(1, SeqCst);
                        }
                        barrier.wait();
                        if w == 0 {
                            assert!(t.is_empty());
                            let n = removed.swap(0, SeqCst);
                            assert_eq!(n, INSERT_KEYS as u64, "round {round}: removes");
                        }
                        barrier.wait();
                    }
                });
            }
        });
        assert_eq!(ops.load(SeqCst), INSERT_OPS);
        eprintln!(
            "inserts: {} table calls by the workers ({} Busy calls made again so far in this binary)",
            ops.load(SeqCst),
            BUSY.load(SeqCst)
        );
    });
}
