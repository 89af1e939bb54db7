//! A process killed with SIGKILL in the middle of table operations (Linux).
//!
//! Forked children hammer one table in a /dev/shm file (checks, an interval
//! limit whose windows roll, plain slot pairs, leases with a maximum hold
//! time, removing and re-creating keys).
//! The parent stops one child (SIGSTOP) until it catches it holding an
//! entry's lock, kills it there with SIGKILL, and then checks that:
//! * the other children still finish (within a deadline: the table did not
//!   wedge; the dead holder's lock is taken over),
//! * every entry decodes, each key is listed once, counts never went above
//!   their max (sampled all along),
//! * once the survivors gave back all of theirs, what remains is at most
//!   what the dead child could hold at that instant (it records, in shared
//!   memory, when it may hold a slot, a lease or a counted check),
//! * its leases (with a max hold time) expire: after `now` passes their
//!   expiry the slots are free and taken again, and its handle releases
//!   nothing.
#![cfg(target_os = "linux")]

mod common;

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::SeqCst};
use std::time::{Duration, Instant};

use common::{
    again, map_again, now_ns, pid_owner, Children, Ended, SharedMem, ShmFile, Watchdog, BUSY,
};
use floodgate::table::{
    entries_word, Config, Lease, LeaseRelease, LeaseVerdict, Table, ENTRY_WORDS,
};
use floodgate::{Algorithm, Error, MaxZero, Release, SlotVerdict, Verdict};

const CHILDREN: usize = 4;
/// The child that gets killed (it loops until then).
const VICTIM: usize = 1;
/// Iterations of each survivor (about 8 table calls each), at least: a
/// survivor that has not had a lease yet goes on until it gets one.
const ITERATIONS: u64 = 12_000;
const SLOT_MAX: u32 = 3;
const LEASE_MAX: u32 = 3;
const LEASE_HOLD: u64 = 300_000_000;
/// The victim's long lease, taken once at its start.
const VLEASE_HOLD: u64 = 5_000_000_000;
/// Keys each child removes and re-creates in turn.
const CHURN: usize = 6;
/// The whole test, by a watchdog; waits give up 10 s before.
const LIMIT: Duration = Duration::from_secs(120);
/// Owner id bits of a lock word (bit 31 is the committed buffer).
const OWNER_MASK: u32 = 0x7fff_ffff;

/// What each child records.
#[derive(Default)]
#[repr(C)]
struct Report {
    iterations: AtomicU64,
    /// Checks of "nop" that returned.
    checks: AtomicU64,
    /// 1 from just before a check of "nop" until it is counted in `checks`.
    in_check: AtomicU64,
    /// 1 from just before a slot acquire until its release returned.
    in_plain: AtomicU64,
    /// 1 from just before a lease acquire until its release returned.
    in_lease: AtomicU64,
    /// Latest expiry of the leases it asked for.
    lease_expiry: AtomicU64,
    leases_acquired: AtomicU64,
    leases_released: AtomicU64,
    /// Releases that found the lease expired and reclaimed.
    leases_expired: AtomicU64,
    slots_acquired: AtomicU64,
    /// The victim's long lease: handle bits, expiry, and 1 once taken.
    vlease: AtomicU64,
    vlease_expiry: AtomicU64,
    vlease_taken: AtomicU64,
    /// Calls made again after `Busy`.
    busy: AtomicU64,
}

#[derive(Default)]
#[repr(C)]
struct Shared {
    /// Plain slot holders counted outside the table: a child adds itself
    /// after the table granted a slot and leaves before it releases, so
    /// this never exceeds the table's count.
    slot_holders: AtomicU32,
    reports: [Report; CHILDREN],
}

// Child exit codes.
const E_MAP: i32 = 10;
const E_ATTACH: i32 = 11;
const E_ERROR: i32 = 12;
const E_NOP: i32 = 13;
const E_SLOT_OVER_MAX: i32 = 20;
const E_UNMATCHED: i32 = 21;
const E_VLEASE: i32 = 22;

fn failure(code: i32) -> &'static str {
    match code {
        common::PANICKED => "child panicked",
        E_MAP => "could not map the table file",
        E_ATTACH => "Table::attach failed",
        E_ERROR => "a table call returned an error",
        E_NOP => "NOP did not pass with PassNop",
        E_SLOT_OVER_MAX => "more slot holders than max",
        E_UNMATCHED => "a matched slot release was Unmatched",
        E_VLEASE => "the victim's long lease was refused",
        _ => "unknown exit code",
    }
}

macro_rules! ensure {
    ($cond:expr, $code:expr) => {
        if !$cond {
            return $code;
        }
    };
}

macro_rules! ok {
    ($e:expr) => {
        match again(|| $e) {
            Ok(v) => v,
            Err(_) => return E_ERROR,
        }
    };
}

fn churn_key(child: usize, i: u64) -> [u8; 3] {
    [b'c', b'0' + child as u8, b'0' + (i % CHURN as u64) as u8]
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
    if me == VICTIM {
        let now = now_ns();
        r.vlease_expiry.store(now + VLEASE_HOLD, SeqCst);
        match ok!(t.lease_acquire(b"vlease", 1, Some(VLEASE_HOLD), now)) {
            LeaseVerdict::Acquired(l) => r.vlease.store(l.to_bits(), SeqCst),
            LeaseVerdict::Refused => return E_VLEASE,
        }
        r.vlease_taken.store(1, SeqCst);
    }
    let mut i = 0u64;
    // Past ITERATIONS, a survivor that never got a lease goes on until it
    // does (the others end, the victim's lease expires; the watchdog
    // bounds it): on a busy machine the children that run find the ones
    // preempted holding all the leases, and a late starter could otherwise
    // be refused every time, leaving its lease path untested.
    while me == VICTIM || i < ITERATIONS || r.leases_acquired.load(SeqCst) == 0 {
        r.iterations.store(i, SeqCst);
        let now = now_ns();

        // A lease, held across the rest of the iteration.
        r.in_lease.store(1, SeqCst);
        r.lease_expiry.store(now + LEASE_HOLD, SeqCst);
        let lease = match ok!(t.lease_acquire(b"leases", LEASE_MAX as i32, Some(LEASE_HOLD), now)) {
            LeaseVerdict::Acquired(l) => {
                r.leases_acquired.fetch_add(1, SeqCst);
                Some(l)
            }
            LeaseVerdict::Refused => {
                if i >= ITERATIONS {
                    // Let the holders run and give theirs back.
                    std::thread::sleep(Duration::from_micros(200));
                }
                None
            }
        };

        // Remove and re-create a key: inserts under the insert lock.
        let key = churn_key(me, i);
        match again(|| t.remove(&key)) {
            Ok(()) | Err(Error::NoPipe) => {}
            Err(_) => return E_ERROR,
        }
        ensure!(
            ok!(t.check_or_create(&key, Algorithm::Nop, 0, now)) == Verdict::PassNop,
            E_NOP
        );

        // A counted check.
        r.in_check.store(1, SeqCst);
        ensure!(ok!(t.check(b"nop", now)) == Verdict::PassNop, E_NOP);
        r.checks.fetch_add(1, SeqCst);
        r.in_check.store(0, SeqCst);

        // A mod_hash interval limit of 1 ms windows from the first call:
        // its rolls claim, mark and finish without the lock (a victim killed
        // between leaves the roll for the next caller to finish).
        let first = ok!(t.rate_check(b"first", 2, 1_000_000, true, MaxZero::RefuseAll, now));
        ensure!(first != Verdict::PassNop, E_ERROR);

        // A plain slot pair.
        r.in_plain.store(1, SeqCst);
        if ok!(t.acquire(b"slots", SLOT_MAX as i32, now)) == SlotVerdict::Acquired {
            r.slots_acquired.fetch_add(1, SeqCst);
            let n = sh.slot_holders.fetch_add(1, SeqCst) + 1;
            ensure!(n <= SLOT_MAX, E_SLOT_OVER_MAX);
            sh.slot_holders.fetch_sub(1, SeqCst);
            ensure!(
                ok!(t.release(b"slots", now_ns())) == Release::Released,
                E_UNMATCHED
            );
        }
        r.in_plain.store(0, SeqCst);

        if let Some(l) = lease {
            match ok!(t.lease_release(l, now_ns())) {
                LeaseRelease::Released => r.leases_released.fetch_add(1, SeqCst),
                LeaseRelease::AlreadyReleased => r.leases_expired.fetch_add(1, SeqCst),
            };
        }
        r.in_lease.store(0, SeqCst);
        r.busy.store(BUSY.load(SeqCst), SeqCst);
        i += 1;
    }
    0
}

/// Stops `pid` and waits until it is stopped.
fn stop(pid: libc::pid_t) {
    let mut status = 0;
    // SAFETY: our own child; waits for its stop (or end) only.
    unsafe {
        assert_eq!(libc::kill(pid, libc::SIGSTOP), 0);
        assert_eq!(libc::waitpid(pid, &mut status, libc::WUNTRACED), pid);
    }
    if !libc::WIFSTOPPED(status) {
        let code = libc::WEXITSTATUS(status);
        panic!("the victim ended before it was killed: {}", failure(code));
    }
}

fn signal(pid: libc::pid_t, sig: libc::c_int) {
    // SAFETY: our own child.
    assert_eq!(unsafe { libc::kill(pid, sig) }, 0);
}

/// Entries whose lock word names `pid` as holder.
fn locks_held_by(file: &ShmFile, capacity: usize, pid: libc::pid_t) -> Vec<usize> {
    (0..capacity)
        .filter(|&i| {
            let lock = file.word(entries_word(capacity) + i * ENTRY_WORDS);
            lock.load(SeqCst) & OWNER_MASK == pid as u32
        })
        .collect()
}

#[test]
fn a_child_killed_mid_operation_leaves_a_usable_table() {
    let config = Config {
        capacity: 64,
        lease_capacity: 32,
        interval_ns: u64::MAX,
        epoch: 0,
        seed: now_ns() | 1,
    };
    let file = ShmFile::create("sigkill", Table::size_for(&config).unwrap());
    // SAFETY: the only slice of the mapping in this process; it lives
    // until the end of the test, within `file`. (`file.word` only reads
    // lock words atomically.)
    let t = Table::init_in(unsafe { file.bytes() }, &config, pid_owner()).unwrap();
    // SAFETY: `Shared` is made of atomics only.
    let shared = unsafe { SharedMem::<Shared>::new() };
    let sh = shared.get();
    let now = now_ns();
    assert_eq!(
        t.check_or_create(b"nop", Algorithm::Nop, 0, now),
        Ok(Verdict::PassNop)
    );
    for (k, max) in [
        (&b"slots"[..], SLOT_MAX),
        (b"leases", LEASE_MAX),
        (b"vlease", 1),
    ] {
        assert_eq!(t.acquire(k, max as i32, now), Ok(SlotVerdict::Acquired));
        assert_eq!(t.release(k, now), Ok(Release::Released));
    }
    let leases_idx = (0..config.capacity)
        .find(|&i| t.entry_at(i, now).is_some_and(|e| e.key() == b"leases"))
        .unwrap();
    let sample = || {
        let now = now_ns();
        let u = again(|| t.usage(b"slots", now)).unwrap();
        assert!(u <= SLOT_MAX, "sampled slot usage {u} > {SLOT_MAX}");
        let l = again(|| t.usage(b"leases", now)).unwrap();
        assert!(l <= LEASE_MAX, "sampled lease usage {l} > {LEASE_MAX}");
        assert!(again(|| t.usage(b"vlease", now)).unwrap() <= 1);
    };

    let started = Instant::now();
    let started_ns = now_ns();
    let deadline = started + LIMIT - Duration::from_secs(10);
    let mut children = Children::default();
    let pids: Vec<libc::pid_t> = (0..CHILDREN)
        .map(|me| {
            let (file, sh) = (&file, sh);
            children.spawn(move || child(me, file, sh))
        })
        .collect();
    let victim = pids[VICTIM];
    let _watchdog = Watchdog::start(LIMIT, pids.clone(), &file);
    let vr = &sh.reports[VICTIM];

    // Let the victim run a while.
    while vr.iterations.load(SeqCst) < 200 {
        assert!(Instant::now() < deadline, "the victim does not progress");
        if let Some(e) = children.try_reap(victim) {
            panic!("the victim ended early: {e:?}");
        }
        sample();
        std::thread::sleep(Duration::from_millis(1));
    }
    std::thread::sleep(Duration::from_millis(20));

    // Catch it holding a lock, and kill it there: preferably the lock of
    // "leases", where a death between changing a lease record and
    // committing the count needs the recount of the taker-over.
    let mut attempts = 0;
    let held = loop {
        attempts += 1;
        stop(victim);
        let held = locks_held_by(&file, config.capacity, victim);
        if !held.is_empty() && (held.contains(&leases_idx) || attempts > 500) {
            signal(victim, libc::SIGKILL);
            break held;
        }
        assert!(
            attempts < 2000,
            "the victim was never caught holding a lock"
        );
        signal(victim, libc::SIGCONT);
        // Sampling takes locks: only while the victim runs.
        sample();
        std::thread::sleep(Duration::from_micros(100 * (attempts % 20)));
    };
    // Reap it at once: until then `kill(pid, 0)` says it lives (a zombie)
    // and nobody may take its locks over.
    let reaped = children.wait(victim, deadline, || {});
    assert_eq!(reaped, Some(Ended::Signaled(libc::SIGKILL)));
    let killed_at = now_ns();
    // What it may have held at that instant.
    let v_in_check = vr.in_check.load(SeqCst);
    let v_in_plain = vr.in_plain.load(SeqCst);
    let v_in_lease = vr.in_lease.load(SeqCst);
    let v_lease_expiry = vr.lease_expiry.load(SeqCst);
    let v_iterations = vr.iterations.load(SeqCst);
    assert_eq!(vr.vlease_taken.load(SeqCst), 1);
    let vlease = Lease::from_bits(vr.vlease.load(SeqCst));
    let vlease_expiry = vr.vlease_expiry.load(SeqCst);

    // Its long lease still holds the only slot of "vlease".
    let now = now_ns();
    assert!(
        now < vlease_expiry,
        "too slow: the victim's long lease expired before the kill ({} ms late)",
        (now - vlease_expiry) / 1_000_000
    );
    assert_eq!(t.usage(b"vlease", now), Ok(1));
    assert_eq!(
        t.lease_acquire(b"vlease", 1, Some(LEASE_HOLD), now),
        Ok(LeaseVerdict::Refused)
    );

    // The others finish: nothing wedged on the dead holder's locks.
    let ended = children.wait_all(deadline, sample);
    assert_eq!(ended.len(), CHILDREN - 1);
    for (pid, e) in &ended {
        match e {
            Ended::Exited(0) => {}
            Ended::Exited(c) => panic!("child {pid} failed: {} ({c})", failure(*c)),
            Ended::Signaled(s) => panic!("child {pid} killed by signal {s}"),
        }
    }
    let survivors_done = started.elapsed();

    // Every entry decodes, each key once.
    let now = now_ns();
    let mut keys: Vec<Vec<u8>> = t.iter(now).map(|e| e.key().to_vec()).collect();
    assert_eq!(keys.len(), t.len(), "an entry in use does not decode");
    keys.sort();
    let listed = keys.len();
    keys.dedup();
    assert_eq!(keys.len(), listed, "a key is listed twice");
    for k in &keys {
        assert!(t.get(k, now).is_ok());
    }
    let mut want: Vec<Vec<u8>> = vec![b"nop".to_vec(), b"slots".to_vec(), b"leases".to_vec()];
    want.push(b"vlease".to_vec());
    want.push(b"first".to_vec());
    for c in (0..CHILDREN).filter(|&c| c != VICTIM) {
        want.extend((0..CHURN as u64).map(|i| churn_key(c, i).to_vec()));
    }
    for w in &want {
        assert!(keys.contains(w), "{:?} missing", String::from_utf8_lossy(w));
    }
    for k in keys.iter().filter(|k| !want.contains(k)) {
        assert!(
            k.starts_with(&churn_key(VICTIM, 0)[..2]),
            "unexpected key {k:?}"
        );
    }
    // The dead child's locks were all taken over.
    assert!(locks_held_by(&file, config.capacity, victim).is_empty());

    // Counted checks: every returned check, and the victim's last one only
    // if it was inside it.
    // (+ 1: the parent's check that created the pipe)
    let checks: u64 = 1 + sh
        .reports
        .iter()
        .map(|r| r.checks.load(SeqCst))
        .sum::<u64>();
    let counter = u64::from(t.get(b"nop", now).unwrap().counter);
    assert!(
        counter == checks || (v_in_check == 1 && counter == checks + 1),
        "nop counter {counter}, checks returned {checks}, victim inside: {v_in_check}"
    );

    // Plain slots: only the victim's one may remain.
    let plain = t.usage(b"slots", now).unwrap();
    assert!(
        u64::from(plain) <= v_in_plain,
        "{plain} slots left, the victim could hold {v_in_plain}"
    );
    assert!(sh.slot_holders.load(SeqCst) <= plain);
    assert_eq!(t.get(b"slots", now).unwrap().last_counter, 0, "unmatched");
    // Survivors' leases: each released once, or found expired.
    for (c, r) in sh.reports.iter().enumerate().filter(|&(c, _)| c != VICTIM) {
        let (a, rel, exp) = (
            r.leases_acquired.load(SeqCst),
            r.leases_released.load(SeqCst),
            r.leases_expired.load(SeqCst),
        );
        assert!(a > 0, "child {c} never got a lease");
        assert_eq!(a, rel + exp, "child {c}: leases acquired vs given back");
    }
    // Leases: only the victim's may remain before they expire.
    let now = now_ns();
    let leased = t.usage(b"leases", now).unwrap();
    if now < v_lease_expiry {
        assert!(
            u64::from(leased) <= v_in_lease,
            "{leased} leases left, the victim could hold {v_in_lease}"
        );
    } else {
        assert_eq!(leased, 0, "expired leases were not reclaimed");
    }

    // After every expiry the slots are free again and taken.
    let after = v_lease_expiry.max(vlease_expiry) + 1;
    while now_ns() < after {
        std::thread::sleep(Duration::from_millis(5));
    }
    let now = now_ns();
    assert_eq!(t.usage(b"leases", now), Ok(0));
    let mut fresh = Vec::new();
    for _ in 0..LEASE_MAX {
        match t.lease_acquire(b"leases", LEASE_MAX as i32, Some(LEASE_HOLD), now) {
            Ok(LeaseVerdict::Acquired(l)) => fresh.push(l),
            other => panic!("a freed lease slot was not reusable: {other:?}"),
        }
    }
    assert_eq!(
        t.lease_acquire(b"leases", LEASE_MAX as i32, Some(LEASE_HOLD), now),
        Ok(LeaseVerdict::Refused)
    );
    let LeaseVerdict::Acquired(v2) = t
        .lease_acquire(b"vlease", 1, Some(LEASE_HOLD), now)
        .unwrap()
    else {
        panic!("the victim's expired long lease still holds its slot");
    };
    assert_eq!(
        t.lease_release(vlease, now),
        Ok(LeaseRelease::AlreadyReleased),
        "the dead child's handle must release nothing"
    );
    assert_eq!(t.usage(b"vlease", now), Ok(1), "the new lease holds");
    assert_eq!(t.lease_release(v2, now), Ok(LeaseRelease::Released));
    for l in fresh {
        assert_eq!(t.lease_release(l, now), Ok(LeaseRelease::Released));
    }
    // No lease record leaked: the whole area can be claimed again.
    let mut all = Vec::new();
    while let Ok(LeaseVerdict::Acquired(l)) = t.lease_acquire(b"leases", -1, None, now) {
        all.push(l);
    }
    assert_eq!(all.len(), t.lease_capacity(), "lease records leaked");
    for l in all {
        assert_eq!(t.lease_release(l, now), Ok(LeaseRelease::Released));
    }
    let calls: u64 = sh
        .reports
        .iter()
        .map(|r| r.iterations.load(SeqCst) * 8)
        .sum();
    eprintln!(
        "victim killed after {v_iterations} iterations, {attempts} stop(s), holding the \
         locks of entries {held:?} (\"leases\" is {leases_idx}; in check {v_in_check}, plain {v_in_plain}, lease \
         {v_in_lease}); survivors done in {survivors_done:?}; ~{calls} table calls; \
         killed {} ms after the start; {} Busy calls made again",
        (killed_at - started_ns) / 1_000_000,
        sh.reports.iter().map(|r| r.busy.load(SeqCst)).sum::<u64>() + BUSY.load(SeqCst)
    );
}
