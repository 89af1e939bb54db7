//! Multi-process stress (Linux): one table in a /dev/shm file, built by the
//! test process, used by forked children that map the file again and attach
//! to it with their pid as owner id; the parent samples it meanwhile.
//!
//! Children report through atomics in anonymous shared memory and their
//! exit code (0: every check held; see `FAILURES`). The parent then checks
//! exact totals: TAILDROP passes equal the limit and its counter the number
//! of checks, NOP counts every check, slots and leases are all given back,
//! each lease was released exactly once, each key exists once.
#![cfg(target_os = "linux")]

mod common;

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::SeqCst};
use std::time::{Duration, Instant};

use common::{
    again, map_again, now_ns, pid_owner, Children, Ended, SharedMem, ShmFile, Watchdog, BUSY,
};
use floodgate::table::{Balanced, Config, Lease, LeaseRelease, LeaseVerdict, Table};
use floodgate::{Algorithm, Release, SlotVerdict, Verdict};

const CHILDREN: usize = 4;
/// Iterations per child; one iteration is 4 to 14 table calls.
const ITERATIONS: u64 = 40_000;
/// The whole test, by a watchdog; waits give up 10 s before.
const LIMIT: Duration = Duration::from_secs(120);
const TD_LIMIT: i64 = 30_000;
const SLOT_MAX: u32 = 2;
const LEASE_MAX: u32 = 3;
/// Leases one child holds at most (alone more than `LEASE_MAX`).
const LEASES_HELD: usize = 4;
const HUB: [&[u8]; 3] = [b"hub-a", b"hub-b", b"hub-c"];
const HUB_PER: u32 = 1;
const HUB_TOTAL: u32 = 2;

/// What each child counts.
#[derive(Default)]
#[repr(C)]
struct Report {
    calls: AtomicU64,
    checks: AtomicU64,
    td_passes: AtomicU64,
    slots_acquired: AtomicU64,
    slots_refused: AtomicU64,
    leases_acquired: AtomicU64,
    leases_released: AtomicU64,
    leases_refused: AtomicU64,
    hub_acquired: AtomicU64,
    hub_full: AtomicU64,
    /// Calls made again after `Busy`.
    busy: AtomicU64,
}

/// Shared between the parent and every child.
#[derive(Default)]
#[repr(C)]
struct Shared {
    /// Holders counted outside the table (see `enter`).
    slot_holders: AtomicU32,
    lease_holders: AtomicU32,
    hub_holders: [AtomicU32; 3],
    hub_total: AtomicU32,
    reports: [Report; CHILDREN],
}

// Child exit codes.
const E_MAP: i32 = 10;
const E_ATTACH: i32 = 11;
const E_ERROR: i32 = 12;
const E_TAILDROP: i32 = 13;
const E_NOP: i32 = 14;
const E_SLOT_OVER_MAX: i32 = 20;
const E_UNMATCHED: i32 = 21;
const E_USAGE_WHILE_HOLDING: i32 = 22;
const E_LEASE_OVER_MAX: i32 = 23;
const E_LEASE_NOT_RELEASED: i32 = 24;
const E_LEASE_TWICE: i32 = 25;
const E_HUB_OVER_MAX: i32 = 26;
const E_HUB_RELEASE: i32 = 27;

const FAILURES: [(i32, &str); 14] = [
    (common::PANICKED, "child panicked"),
    (E_MAP, "could not map the table file"),
    (E_ATTACH, "Table::attach failed"),
    (E_ERROR, "a table call returned an error"),
    (E_TAILDROP, "TAILDROP gave PassNop"),
    (E_NOP, "NOP did not pass with PassNop"),
    (E_SLOT_OVER_MAX, "more slot holders than max"),
    (E_UNMATCHED, "a matched slot release was Unmatched"),
    (E_USAGE_WHILE_HOLDING, "usage out of 1..=max while holding"),
    (E_LEASE_OVER_MAX, "more lease holders than max"),
    (E_LEASE_NOT_RELEASED, "a held lease did not release"),
    (E_LEASE_TWICE, "a second release of a lease did something"),
    (E_HUB_OVER_MAX, "hub member or total above max"),
    (E_HUB_RELEASE, "a hub slot release was Unmatched"),
];

fn failure(code: i32) -> &'static str {
    FAILURES
        .iter()
        .find(|f| f.0 == code)
        .map_or("unknown exit code", |f| f.1)
}

/// Returns `$code` from the child when `$cond` is false.
macro_rules! ensure {
    ($cond:expr, $code:expr) => {
        if !$cond {
            return $code;
        }
    };
}

/// Unwraps a table result in a child, or returns `E_ERROR`.
macro_rules! ok {
    ($e:expr) => {
        match again(|| $e) {
            Ok(v) => v,
            Err(_) => return E_ERROR,
        }
    };
}

/// Counts a holder outside the table; false if that makes more than `max`.
fn enter(count: &AtomicU32, max: u32) -> bool {
    count.fetch_add(1, SeqCst) < max
}

fn leave(count: &AtomicU32) {
    count.fetch_sub(1, SeqCst);
}

/// A child's work. No allocation, no panics: failures are exit codes.
fn child(me: usize, file: &ShmFile, sh: &Shared) -> i32 {
    let Some(region) = map_again(&file.path, file.len()) else {
        return E_MAP;
    };
    let Ok(t) = Table::attach(region, pid_owner()) else {
        return E_ATTACH;
    };
    let r = &sh.reports[me];
    let mut leases: [Option<Lease>; LEASES_HELD] = [None; LEASES_HELD];
    let mut calls = 0u64;
    for i in 0..ITERATIONS {
        let now = now_ns();
        // Hub balancing: every other iteration holds a slot all through it,
        // every 8th asks for 3 (more than the total: Full even alone).
        let mut hub = [None; 3];
        let want = match i % 8 {
            0 => 3,
            n if n % 2 == 0 => 1,
            _ => 0,
        };
        for place in hub.iter_mut().take(want) {
            calls += 1;
            match ok!(t.balance_acquire(&HUB, HUB_PER as i32, HUB_TOTAL as i32, now)) {
                Balanced::Acquired { member, .. } => {
                    r.hub_acquired.fetch_add(1, SeqCst);
                    let fine = enter(&sh.hub_holders[member], HUB_PER);
                    let fine = enter(&sh.hub_total, HUB_TOTAL) && fine;
                    ensure!(fine, E_HUB_OVER_MAX);
                    *place = Some(member);
                }
                Balanced::Full => {
                    r.hub_full.fetch_add(1, SeqCst);
                    break;
                }
            }
        }
        // Checks; the first ones race to create the pipes.
        let v = if i == 0 {
            ok!(t.check_or_create(b"taildrop", Algorithm::Taildrop, TD_LIMIT, now))
        } else {
            ok!(t.check(b"taildrop", now))
        };
        match v {
            Verdict::Pass => {
                r.td_passes.fetch_add(1, SeqCst);
            }
            Verdict::Drop => {}
            Verdict::PassNop => return E_TAILDROP,
        }
        let v = if i == 0 {
            ok!(t.check_or_create(b"nop", Algorithm::Nop, 0, now))
        } else {
            ok!(t.check(b"nop", now))
        };
        ensure!(v == Verdict::PassNop, E_NOP);
        r.checks.fetch_add(1, SeqCst);
        calls += 2;

        // A plain slot pair.
        calls += 1;
        if ok!(t.acquire(b"slots", SLOT_MAX as i32, now)) == SlotVerdict::Acquired {
            r.slots_acquired.fetch_add(1, SeqCst);
            ensure!(enter(&sh.slot_holders, SLOT_MAX), E_SLOT_OVER_MAX);
            if i % 8 == 0 {
                let u = ok!(t.usage(b"slots", now));
                ensure!((1..=SLOT_MAX).contains(&u), E_USAGE_WHILE_HOLDING);
                calls += 1;
            }
            leave(&sh.slot_holders);
            ensure!(
                ok!(t.release(b"slots", now)) == Release::Released,
                E_UNMATCHED
            );
            calls += 1;
        } else {
            r.slots_refused.fetch_add(1, SeqCst);
        }

        // Leases: release the one in this place if held, else take one.
        let place = &mut leases[i as usize % LEASES_HELD];
        calls += 1;
        match place.take() {
            Some(l) => {
                leave(&sh.lease_holders);
                ensure!(
                    ok!(t.lease_release(l, now)) == LeaseRelease::Released,
                    E_LEASE_NOT_RELEASED
                );
                r.leases_released.fetch_add(1, SeqCst);
                if i % 16 == 0 {
                    ensure!(
                        ok!(t.lease_release(l, now)) == LeaseRelease::AlreadyReleased,
                        E_LEASE_TWICE
                    );
                    calls += 1;
                }
            }
            None => match ok!(t.lease_acquire(b"leases", LEASE_MAX as i32, None, now)) {
                LeaseVerdict::Acquired(l) => {
                    r.leases_acquired.fetch_add(1, SeqCst);
                    ensure!(enter(&sh.lease_holders, LEASE_MAX), E_LEASE_OVER_MAX);
                    *place = Some(l);
                }
                LeaseVerdict::Refused => {
                    r.leases_refused.fetch_add(1, SeqCst);
                }
            },
        }

        // Hub: the slot taken at the start of the iteration goes back here.
        for member in hub.into_iter().flatten() {
            leave(&sh.hub_holders[member]);
            leave(&sh.hub_total);
            ensure!(
                ok!(t.release(HUB[member], now)) == Release::Released,
                E_HUB_RELEASE
            );
            calls += 1;
        }
    }
    for l in leases.into_iter().flatten() {
        leave(&sh.lease_holders);
        ensure!(
            ok!(t.lease_release(l, now_ns())) == LeaseRelease::Released,
            E_LEASE_NOT_RELEASED
        );
        r.leases_released.fetch_add(1, SeqCst);
        calls += 1;
    }
    r.calls.store(calls, SeqCst);
    r.busy.store(BUSY.load(SeqCst), SeqCst);
    0
}

fn sum(sh: &Shared, f: impl Fn(&Report) -> &AtomicU64) -> u64 {
    sh.reports.iter().map(|r| f(r).load(SeqCst)).sum()
}

#[test]
fn forked_children_share_one_table() {
    let config = Config {
        capacity: 64,
        lease_capacity: 32,
        interval_ns: u64::MAX,
        epoch: 0,
        seed: now_ns() | 1,
    };
    let file = ShmFile::create("stress", Table::size_for(&config).unwrap());
    // SAFETY: the only slice of the mapping in this process; it lives
    // until the end of the test, within `file`.
    let t = Table::init_in(unsafe { file.bytes() }, &config, pid_owner()).unwrap();
    // SAFETY: `Shared` is made of atomics only.
    let shared = unsafe { SharedMem::<Shared>::new() };
    let sh = shared.get();
    // The keys the parent samples exist before the children start.
    let now = now_ns();
    for (k, max) in [(&b"slots"[..], SLOT_MAX), (b"leases", LEASE_MAX)]
        .into_iter()
        .chain(HUB.map(|k| (k, HUB_PER)))
    {
        assert_eq!(t.acquire(k, max as i32, now), Ok(SlotVerdict::Acquired));
        assert_eq!(t.release(k, now), Ok(Release::Released));
    }

    let started = Instant::now();
    let mut children = Children::default();
    for me in 0..CHILDREN {
        let (file, sh) = (&file, sh);
        children.spawn(move || child(me, file, sh));
    }
    let _watchdog = Watchdog::start(LIMIT, children.running().to_vec(), &file);
    // Sample while they run.
    let mut samples = 0u64;
    let mut max_seen = [0u32; 2];
    let deadline = started + LIMIT - Duration::from_secs(10);
    let ended = children.wait_all(deadline, || {
        for _ in 0..20 {
            let now = now_ns();
            let u = again(|| t.usage(b"slots", now)).unwrap();
            assert!(u <= SLOT_MAX, "sampled slot usage {u} > {SLOT_MAX}");
            let l = again(|| t.usage(b"leases", now)).unwrap();
            assert!(l <= LEASE_MAX, "sampled lease usage {l} > {LEASE_MAX}");
            for k in HUB {
                let h = again(|| t.usage(k, now)).unwrap();
                assert!(h <= HUB_PER, "sampled hub usage {h} > {HUB_PER}");
            }
            max_seen = [max_seen[0].max(u), max_seen[1].max(l)];
            samples += 1;
        }
    });
    let elapsed = started.elapsed();
    for (pid, e) in &ended {
        match e {
            Ended::Exited(0) => {}
            Ended::Exited(c) => panic!("child {pid} failed: {} ({c})", failure(*c)),
            Ended::Signaled(s) => panic!("child {pid} killed by signal {s}"),
        }
    }
    assert_eq!(ended.len(), CHILDREN);

    let now = now_ns();
    let total = CHILDREN as u64 * ITERATIONS;
    assert_eq!(sum(sh, |r| &r.checks), total);
    // TAILDROP: exactly `limit` passes in the one window, every check counted.
    assert_eq!(sum(sh, |r| &r.td_passes), TD_LIMIT as u64);
    let td = t.get(b"taildrop", now).unwrap();
    assert_eq!(u64::from(td.counter), total, "taildrop counter");
    assert_eq!(u64::from(t.get(b"nop", now).unwrap().counter), total);
    // Slots: all pairs matched and given back.
    let acquired = sum(sh, |r| &r.slots_acquired);
    assert_eq!(acquired + sum(sh, |r| &r.slots_refused), total);
    assert!(acquired > 0);
    assert_eq!(t.usage(b"slots", now), Ok(0));
    assert_eq!(t.get(b"slots", now).unwrap().last_counter, 0, "unmatched");
    // Leases: each released exactly once.
    let leased = sum(sh, |r| &r.leases_acquired);
    assert!(leased > 0);
    assert_eq!(sum(sh, |r| &r.leases_released), leased);
    assert!(
        sum(sh, |r| &r.leases_refused) > 0,
        "4 wanted leases never met max 3"
    );
    assert_eq!(t.usage(b"leases", now), Ok(0));
    // Hub: asking for 3 slots of a group of total 2 met Full.
    assert!(sum(sh, |r| &r.hub_acquired) > 0);
    assert!(sum(sh, |r| &r.hub_full) > 0);
    for k in HUB {
        assert_eq!(t.usage(k, now), Ok(0));
        assert_eq!(t.get(k, now).unwrap().last_counter, 0);
    }
    // The outside counts are back to zero too.
    assert_eq!(sh.slot_holders.load(SeqCst), 0);
    assert_eq!(sh.lease_holders.load(SeqCst), 0);
    assert_eq!(sh.hub_total.load(SeqCst), 0);
    // Each key once, every entry decodes.
    let mut keys: Vec<Vec<u8>> = t.iter(now).map(|e| e.key().to_vec()).collect();
    keys.sort();
    let mut want: Vec<Vec<u8>> = [&b"taildrop"[..], b"nop", b"slots", b"leases"]
        .into_iter()
        .chain(HUB)
        .map(|k| k.to_vec())
        .collect();
    want.sort();
    assert_eq!(keys, want);
    assert_eq!(t.len(), want.len());
    // No lease record leaked: the whole lease area can be claimed again.
    let mut all = Vec::new();
    while let Ok(LeaseVerdict::Acquired(l)) = t.lease_acquire(b"leases", -1, None, now) {
        all.push(l);
    }
    assert_eq!(all.len(), t.lease_capacity());
    for l in all {
        assert_eq!(t.lease_release(l, now), Ok(LeaseRelease::Released));
    }
    assert!(samples > 0);
    let calls = sum(sh, |r| &r.calls);
    let busy = sum(sh, |r| &r.busy) + BUSY.load(SeqCst);
    eprintln!(
        "{CHILDREN} children, {calls} table calls in {elapsed:?}; \
         {samples} parent samples, max usage seen {max_seen:?}; \
         {busy} Busy calls made again"
    );
    assert!(calls >= 4 * total);
}
