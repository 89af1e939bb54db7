//! Nobody can hang anybody (Linux): a lock held by a process that is alive
//! but never unlocks gives `Error::Busy` after the bounded wait, with the
//! real bound and the real pid owner, to what needs that lock only; checks
//! of hot entries (lock-free) never wait at all.
//!
//! * Lock words forged to name live pids (1, and this test's parent): checks
//!   and reads of those (hot) entries, slot acquires and releases of a hot
//!   SLOTS entry, checks and resets in the window of a mod_hash interval
//!   limit, and listings go on with exact counts; what changes an
//!   entry itself (another algorithm, removal) and the operations of a
//!   locked kind (SLOTS with leases) return `Busy`; other keys and other
//!   inserts go on; a forged insert lock stops inserts only.
//! * A real child stopped with `SIGSTOP` in the middle of an insert (holding
//!   the insert lock and a free entry's lock) or of a lease acquire or
//!   release (holding its entry's lock): checks, slot acquires and releases
//!   on existing hot keys and listings go on, exact; inserts (while it
//!   holds the insert lock) and that entry's operations are `Busy`; once it
//!   runs again every count is exact.
//!
//! Nothing here asserts a duration: a watchdog ends the test binary if it
//! hangs, and the time each `Busy` took is printed.
#![cfg(target_os = "linux")]

mod common;

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::SeqCst};
use std::time::{Duration, Instant};

use common::{map_again, now_ns, pid_owner, Children, Ended, SharedMem, ShmFile, Watchdog};
use floodgate::table::{entries_word, Config, LeaseRelease, LeaseVerdict, Table, ENTRY_WORDS};
use floodgate::{Algorithm, Error, MaxZero, Verdict};

/// Each test, by a watchdog; waits give up 10 s before.
const LIMIT: Duration = Duration::from_secs(120);
/// Owner id bits of a lock word (bit 31 is the committed buffer).
const OWNER_MASK: u32 = 0x7fff_ffff;
/// Header word of the insert lock (the layout's; not public).
const INSERT_LOCK: usize = 12;

/// 16 entries, windows of `interval_ns` from 0.
fn config(interval_ns: u64) -> Config {
    Config {
        capacity: 16,
        lease_capacity: 8,
        interval_ns,
        epoch: 0,
        seed: now_ns() | 1,
    }
}

/// The lock word of the entry that holds `key`.
fn lock_word<'f>(file: &'f ShmFile, t: &Table<'_>, key: &[u8]) -> &'f AtomicU32 {
    let idx = (0..t.capacity())
        .find(|&i| t.entry_at(i, 0).is_some_and(|e| e.key() == key))
        .expect("key not found");
    file.word(entries_word(t.capacity()) + idx * ENTRY_WORDS)
}

/// Makes `word` name `pid` as its holder (keeping the buffer bit); returns
/// the word as it was.
fn forge(word: &AtomicU32, pid: u32) -> u32 {
    let was = word.load(SeqCst);
    word.store((was & !OWNER_MASK) | pid, SeqCst);
    was
}

/// Runs `f`, prints how long it took, and returns its result.
fn timed<T>(what: &str, f: impl FnOnce() -> T) -> T {
    let start = Instant::now();
    let r = f();
    eprintln!("{what}: {:?}", start.elapsed());
    r
}

fn keys(t: &Table<'_>) -> Vec<Vec<u8>> {
    let mut k: Vec<Vec<u8>> = t.iter(0).map(|e| e.key().to_vec()).collect();
    k.sort();
    k
}

#[test]
fn lock_words_naming_live_pids_are_busy_and_stop_nobody_else() {
    // Windows of 1 s: every call below runs in the first one (now < 1 s).
    let config = config(1_000_000_000);
    let file = ShmFile::create("busy-forged", Table::size_for(&config).unwrap());
    let _watchdog = Watchdog::start(LIMIT, Vec::new(), &file);
    // SAFETY: the only slice of the mapping in this process; it lives
    // until the end of the test, within `file`. (`file.word` only touches
    // words atomically.)
    let t = Table::init_in(unsafe { file.bytes() }, &config, pid_owner()).unwrap();
    for k in [&b"init"[..], b"parent", b"free"] {
        assert_eq!(
            t.check_or_create(k, Algorithm::Taildrop, 2, 0),
            Ok(Verdict::Pass)
        );
    }
    // SAFETY: no arguments.
    let parent = unsafe { libc::getppid() } as u32;
    assert!(floodgate::table::process::pid_is_alive(1));
    assert!(floodgate::table::process::pid_is_alive(parent));
    let init_word = lock_word(&file, &t, b"init");
    let parent_word = lock_word(&file, &t, b"parent");
    let saved = [forge(init_word, 1), forge(parent_word, parent)];

    for k in [&b"init"[..], b"parent"] {
        let name = String::from_utf8_lossy(k);
        // Hot entries: checks and reads take no lock.
        assert_eq!(
            timed(&format!("check {name}: no wait"), || t.check(k, 1)),
            Ok(Verdict::Pass)
        );
        assert_eq!(t.check(k, 1), Ok(Verdict::Drop));
        assert_eq!(t.get(k, 1).unwrap().counter, 3);
        assert_eq!(
            t.check_or_create(k, Algorithm::Taildrop, 2, 1),
            Ok(Verdict::Drop)
        );
        // What changes the entry itself waits for the lock, and gives up.
        assert_eq!(
            timed(&format!("set {name} to NOP: Busy"), || t.set(
                k,
                Algorithm::Nop,
                0,
                1
            )),
            Err(Error::Busy)
        );
        assert_eq!(t.remove(k), Err(Error::Busy));
        assert_eq!(t.active(k), Ok(true));
    }
    // An idle pipe stuck the same way: its next check rolls 2^15 windows
    // on (layout 6 made such a roll under the lock), then 2^31 more (the
    // roll hops first): no lock taken, nobody waited for.
    assert_eq!(
        t.check_or_create(b"idle", Algorithm::Taildrop, 2, 1),
        Ok(Verdict::Pass)
    );
    let idle_word = lock_word(&file, &t, b"idle");
    let idle_saved = forge(idle_word, parent);
    let mut now = 1;
    for windows in [1u64 << 15, 1 << 31] {
        now += windows * 1_000_000_000;
        assert_eq!(
            timed(
                &format!("a stuck pipe's roll {windows} windows on: no wait"),
                || { t.check(b"idle", now) }
            ),
            Ok(Verdict::Pass)
        );
        assert_eq!(t.check(b"idle", now), Ok(Verdict::Pass));
        assert_eq!(t.check(b"idle", now - 1), Ok(Verdict::Drop));
        let s = t.get(b"idle", now).unwrap();
        assert_eq!((s.counter, s.last_counter), (3, 0), "{windows} windows on");
    }
    idle_word.store(idle_saved, SeqCst);
    assert_eq!(t.remove(b"idle"), Ok(()));
    // A pipe made by pl.set_pipe and never checked, stuck the same way:
    // its first window opens without the lock.
    assert_eq!(t.set(b"fresh", Algorithm::Taildrop, 2, 0), Ok(()));
    let fresh_word = lock_word(&file, &t, b"fresh");
    let fresh_saved = forge(fresh_word, parent);
    assert_eq!(
        timed("first check of a stuck new pipe: no wait", || t
            .check(b"fresh", 1)),
        Ok(Verdict::Pass)
    );
    assert_eq!(t.check(b"fresh", 1), Ok(Verdict::Pass));
    assert_eq!(t.check(b"fresh", 1), Ok(Verdict::Drop));
    assert_eq!(t.get(b"fresh", 1).unwrap().counter, 3);
    fresh_word.store(fresh_saved, SeqCst);
    assert_eq!(t.remove(b"fresh"), Ok(()));
    // A hot SLOTS entry (no lease) stuck the same way: acquire, release
    // and usage take no lock.
    assert_eq!(
        t.acquire(b"hslots", 2, 1),
        Ok(floodgate::SlotVerdict::Acquired)
    );
    let hslots_word = lock_word(&file, &t, b"hslots");
    let hslots_saved = forge(hslots_word, 1);
    assert_eq!(
        timed("acquire on a stuck hot SLOTS entry: no wait", || t
            .acquire(b"hslots", 2, 1)),
        Ok(floodgate::SlotVerdict::Acquired)
    );
    assert_eq!(
        t.acquire(b"hslots", 2, 1),
        Ok(floodgate::SlotVerdict::Refused)
    );
    assert_eq!(t.release(b"hslots", 1), Ok(floodgate::Release::Released));
    assert_eq!(t.usage(b"hslots", 1), Ok(1));
    // A FreeSWITCH mod_hash limit (windows from the first call) stuck the
    // same way: checks, resets and rolls take no lock.
    let fs = |now| t.rate_check(b"fs", 2, 1_000_000_000, true, MaxZero::RefuseAll, now);
    assert_eq!(fs(1), Ok(Verdict::Pass));
    let fs_word = lock_word(&file, &t, b"fs");
    let fs_saved = forge(fs_word, 1);
    assert_eq!(
        timed("mod_hash check of a stuck entry: no wait", || fs(2)),
        Ok(Verdict::Pass)
    );
    assert_eq!(fs(3), Ok(Verdict::Drop));
    assert_eq!(t.interval_reset(b"fs", 3), Ok(()));
    assert_eq!(fs(4), Ok(Verdict::Pass));
    assert_eq!(t.get(b"fs", 4).unwrap().counter, 1);
    assert_eq!(
        timed("mod_hash roll of a stuck entry: no wait", || fs(
            1_000_000_004
        )),
        Ok(Verdict::Pass)
    );
    let s = t.get(b"fs", 1_000_000_004).unwrap();
    assert_eq!((s.counter, s.last_counter), (1, 1), "a new window");
    // A locked kind (SLOTS with a lease) stuck the same way: its
    // operations are Busy.
    assert!(matches!(
        t.lease_acquire(b"slots", 2, None, 1),
        Ok(floodgate::table::LeaseVerdict::Acquired(_))
    ));
    let slots_word = lock_word(&file, &t, b"slots");
    let slots_saved = forge(slots_word, 1);
    assert_eq!(
        timed("acquire on a stuck SLOTS entry with a lease: Busy", || t
            .acquire(b"slots", 2, 1)),
        Err(Error::Busy)
    );
    assert_eq!(t.usage(b"slots", 1), Err(Error::Busy));
    // Others go on.
    assert_eq!(t.check(b"free", 1), Ok(Verdict::Pass));
    assert_eq!(t.check(b"free", 1), Ok(Verdict::Drop));
    assert_eq!(
        t.check_or_create(b"new", Algorithm::Taildrop, 1, 1),
        Ok(Verdict::Pass)
    );
    assert_eq!(t.check(b"new", 1), Ok(Verdict::Drop));
    assert_eq!(
        timed(
            "listing with four stuck hot entries and a stuck SLOTS",
            || { keys(&t) }
        ),
        [&b"free"[..], b"fs", b"hslots", b"init", b"new", b"parent"],
        "hot entries are listed without their lock; the locked SLOTS entry is left out"
    );
    assert_eq!(t.len(), 7);
    assert_eq!(
        t.clean_unused(1, u64::MAX),
        2,
        "the stuck ones are left alone"
    );
    assert_eq!(t.len(), 5);
    slots_word.store(slots_saved, SeqCst);
    fs_word.store(fs_saved, SeqCst);
    assert_eq!(fs(5), Ok(Verdict::Pass));
    hslots_word.store(hslots_saved, SeqCst);
    assert_eq!(t.usage(b"slots", 2), Ok(1), "the Busy acquire took nothing");
    assert_eq!(t.usage(b"hslots", 2), Ok(1));

    // A forged insert lock stops inserts only.
    let ins = file.word(INSERT_LOCK);
    let was = forge(ins, 1);
    assert_eq!(
        timed("insert under a stuck insert lock: Busy", || {
            t.check_or_create(b"newer", Algorithm::Taildrop, 1, 2)
        }),
        Err(Error::Busy)
    );
    assert_eq!(t.active(b"newer"), Ok(false));
    assert_eq!(
        t.check_or_create(b"init", Algorithm::Taildrop, 1, 2),
        Ok(Verdict::Drop),
        "an existing hot key is checked (its 5th call), not re-inserted"
    );
    ins.store(was, SeqCst);

    // Unlocked: as they were (the failed calls changed nothing).
    init_word.store(saved[0], SeqCst);
    parent_word.store(saved[1], SeqCst);
    let s = t.get(b"init", 3).unwrap();
    assert_eq!(
        (s.counter, s.limit),
        (5, 1),
        "init: 5 checks, the last set limit 1"
    );
    let s = t.get(b"parent", 3).unwrap();
    assert_eq!(
        (s.counter, s.limit, s.algorithm),
        (4, 2, Algorithm::Taildrop),
        "parent: the failed calls changed nothing"
    );
    assert_eq!(
        t.check_or_create(b"newer", Algorithm::Taildrop, 1, 3),
        Ok(Verdict::Pass)
    );
}

/// What the child reports.
#[derive(Default)]
#[repr(C)]
struct Shared {
    /// Rounds done (each: a check of "hot", a slot of "hslot" and a lease
    /// of "slot" acquired and released, a key inserted and removed).
    rounds: AtomicU64,
    /// 1 once the child is about to start.
    started: AtomicU64,
    /// Set by the parent when it has caught the child twice: the child
    /// ends after the round it is in.
    quit: AtomicU64,
}

/// The child's bound, if the parent never says quit (the watchdog ends
/// it sooner): the parent must not depend on how fast the child runs, so
/// it says when to stop.
const CHILD_MAX_ROUNDS: u64 = 100_000_000;

/// The child's own keys: `c` and a byte below 8.
fn child_key(i: u64) -> [u8; 2] {
    [b'c', (i % 8) as u8]
}

fn is_childs(key: &[u8]) -> bool {
    key.len() == 2 && key[0] == b'c' && key[1] < 8
}

const E_MAP: i32 = 10;
const E_ATTACH: i32 = 11;
const E_ERROR: i32 = 12;

/// The child: checks "hot" (a NOP pipe: all pass), takes and gives back a
/// slot of "hslot" (hot SLOTS) and a lease of "slot" (SLOTS with leases,
/// a locked kind), inserts and removes one of 8
/// keys of its own, over and over until the parent says quit. The parent
/// holds no lock for long: no Busy for the child.
fn child(file: &ShmFile, sh: &Shared) -> i32 {
    let Some(region) = map_again(&file.path, file.len()) else {
        return E_MAP;
    };
    let Ok(t) = Table::attach(region, pid_owner()) else {
        return E_ATTACH;
    };
    sh.started.store(1, SeqCst);
    for i in 0..CHILD_MAX_ROUNDS {
        if sh.quit.load(SeqCst) != 0 {
            break;
        }
        let key = child_key(i);
        let lease = || match t.lease_acquire(b"slot", 1_000_000, None, now_ns()) {
            Ok(LeaseVerdict::Acquired(l)) => {
                t.lease_release(l, now_ns()) == Ok(LeaseRelease::Released)
            }
            _ => false,
        };
        let ok = t.check(b"hot", now_ns()) == Ok(Verdict::PassNop)
            && t.acquire(b"hslot", 1_000_000, now_ns()) == Ok(floodgate::SlotVerdict::Acquired)
            && lease()
            && t.release(b"hslot", now_ns()) == Ok(floodgate::Release::Released)
            && t.check_or_create(&key, Algorithm::Taildrop, 9, now_ns())
                .is_ok()
            && t.remove(&key) == Ok(());
        if !ok {
            return E_ERROR;
        }
        sh.rounds.fetch_add(1, SeqCst);
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
    assert!(
        libc::WIFSTOPPED(status),
        "the child ended before it was caught holding the lock"
    );
}

fn resume(pid: libc::pid_t) {
    // SAFETY: our own child.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGCONT) }, 0);
}

/// Stops the child until `caught` says it holds the lock wanted; returns
/// the number of stops.
fn catch(pid: libc::pid_t, deadline: Instant, caught: impl Fn() -> bool) -> u32 {
    let mut attempts = 0;
    loop {
        attempts += 1;
        stop(pid);
        if caught() {
            return attempts;
        }
        resume(pid);
        assert!(
            attempts < 20_000 && Instant::now() < deadline,
            "the child was never caught holding the lock"
        );
        std::thread::sleep(Duration::from_micros(20 * u64::from(attempts % 10)));
    }
}

#[test]
fn a_holder_stopped_by_sigstop_stops_only_what_needs_its_lock() {
    // One window for the whole run: nothing rolls over.
    let config = config(u64::MAX);
    let file = ShmFile::create("busy-stopped", Table::size_for(&config).unwrap());
    // SAFETY: as in the test above.
    let t = Table::init_in(unsafe { file.bytes() }, &config, pid_owner()).unwrap();
    assert_eq!(
        t.check_or_create(b"hot", Algorithm::Nop, 0, 0),
        Ok(Verdict::PassNop)
    );
    assert_eq!(
        t.check_or_create(b"cold", Algorithm::Taildrop, 2, 0),
        Ok(Verdict::Pass)
    );
    assert!(matches!(
        t.lease_acquire(b"slot", 1_000_000, None, 0),
        Ok(LeaseVerdict::Acquired(_))
    ));
    assert_eq!(t.release_lease_of(b"slot", 0), Ok(LeaseRelease::Released));
    assert_eq!(
        t.acquire(b"hslot", 1_000_000, 0),
        Ok(floodgate::SlotVerdict::Acquired)
    );
    assert_eq!(t.release(b"hslot", 0), Ok(floodgate::Release::Released));
    let slot = lock_word(&file, &t, b"slot");
    let ins = file.word(INSERT_LOCK);
    // SAFETY: `Shared` is made of atomics only.
    let shared = unsafe { SharedMem::<Shared>::new() };
    let sh = shared.get();
    let mut children = Children::default();
    let pid = {
        let file = &file;
        children.spawn(move || child(file, sh))
    };
    // Also ends the child (SIGKILL) if the test hangs; `children` kills
    // and reaps it if the test fails.
    let _watchdog = Watchdog::start(LIMIT, vec![pid], &file);
    let deadline = Instant::now() + LIMIT - Duration::from_secs(10);
    while sh.started.load(SeqCst) == 0 {
        assert!(Instant::now() < deadline, "the child does not start");
        std::thread::sleep(Duration::from_millis(1));
    }
    let mine = |w: &AtomicU32| w.load(SeqCst) & OWNER_MASK == pid as u32;
    let mut parent_checks = 0u64;

    // 1. Stopped in the middle of an insert: it holds the insert lock.
    let stops = catch(pid, deadline, || mine(ins));
    let rounds = sh.rounds.load(SeqCst);
    for _ in 0..3 {
        assert_eq!(
            timed("check of an existing key during the stopped insert", || t
                .check(b"hot", now_ns())),
            Ok(Verdict::PassNop)
        );
        parent_checks += 1;
    }
    assert_eq!(t.check(b"cold", now_ns()), Ok(Verdict::Pass));
    assert_eq!(t.check(b"cold", now_ns()), Ok(Verdict::Drop));
    assert_eq!(
        timed(
            "slot acquire on an existing hot key during the stopped insert",
            || t.acquire(b"hslot", 1_000_000, now_ns())
        ),
        Ok(floodgate::SlotVerdict::Acquired)
    );
    assert_eq!(
        t.release(b"hslot", now_ns()),
        Ok(floodgate::Release::Released)
    );
    let listed = timed("listing during the stopped insert", || keys(&t));
    // The child may be stopped after its key is in (or before it is out):
    // a complete hot entry is listed without its lock, so at most one of
    // the child's own keys may show up besides the parent's three.
    let (its, ours): (Vec<_>, Vec<_>) = listed.iter().partition(|k| is_childs(k));
    assert_eq!(
        ours,
        [&b"cold"[..], b"hot", b"hslot", b"slot"],
        "{listed:?}"
    );
    assert!(its.len() <= 1, "{listed:?}");
    assert_eq!(
        timed("another insert during the stopped insert: Busy", || {
            t.check_or_create(b"new", Algorithm::Taildrop, 1, now_ns())
        }),
        Err(Error::Busy)
    );
    assert!(mine(ins), "still its insert lock");
    assert_eq!(sh.rounds.load(SeqCst), rounds, "the child is stopped");
    resume(pid);
    eprintln!("caught the child inserting after {stops} stop(s)");

    // 2. Stopped in the middle of a lease acquire or release: it holds the
    //    SLOTS entry's lock (hot slot calls take none, so it is never
    //    caught holding "hslot").
    let stops = catch(pid, deadline, || mine(slot) && !mine(ins));
    assert_eq!(
        timed("acquire on the stopped holder's SLOTS entry: Busy", || t
            .acquire(b"slot", 1_000_000, now_ns())),
        Err(Error::Busy)
    );
    assert_eq!(t.usage(b"slot", now_ns()), Err(Error::Busy));
    assert_eq!(t.check(b"hot", now_ns()), Ok(Verdict::PassNop));
    parent_checks += 1;
    assert_eq!(
        t.acquire(b"hslot", 1_000_000, now_ns()),
        Ok(floodgate::SlotVerdict::Acquired)
    );
    assert_eq!(
        t.release(b"hslot", now_ns()),
        Ok(floodgate::Release::Released)
    );
    assert_eq!(
        t.check_or_create(b"new", Algorithm::Taildrop, 1, now_ns()),
        Ok(Verdict::Pass),
        "inserts go on"
    );
    assert!(
        !keys(&t).contains(&b"slot".to_vec()),
        "a locked entry is left out"
    );
    assert!(mine(slot), "still its lock");
    resume(pid);
    eprintln!("caught the child acquiring after {stops} stop(s)");

    // Told to quit, it finishes its round; every count is exact.
    sh.quit.store(1, SeqCst);
    let ended = children.wait(pid, deadline, || {});
    assert_eq!(ended, Some(Ended::Exited(0)));
    let rounds = sh.rounds.load(SeqCst);
    assert!(rounds > 0 && rounds < CHILD_MAX_ROUNDS, "{rounds}");
    let hot_stats = t.get(b"hot", now_ns()).unwrap();
    assert_eq!(
        u64::from(hot_stats.counter),
        1 + rounds + parent_checks,
        "the creation, the child's checks, the parent's"
    );
    assert_eq!(
        t.usage(b"slot", now_ns()),
        Ok(0),
        "the Busy calls took no slot"
    );
    assert_eq!(t.usage(b"hslot", now_ns()), Ok(0), "every slot given back");
    assert_eq!(keys(&t), [&b"cold"[..], b"hot", b"hslot", b"new", b"slot"]);
}
