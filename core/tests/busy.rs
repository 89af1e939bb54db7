//! Nobody can hang anybody (Linux): a lock held by a process that is alive
//! but never unlocks gives `Error::Busy` after the bounded wait, with the
//! real bound and the real pid owner, and stops nobody else.
//!
//! * Lock words forged to name live pids (1, and this test's parent): every
//!   operation on those entries returns `Busy`, while other keys, listings
//!   (which leave them out) and other inserts go on with the right verdicts;
//!   a forged insert lock stops inserts only.
//! * A real child stopped with `SIGSTOP` while it holds an entry's lock:
//!   the same, and once it runs again every count is exact.
//!
//! Nothing here asserts a duration: a watchdog ends the test binary if it
//! hangs, and the time each `Busy` took is printed.
#![cfg(target_os = "linux")]

mod common;

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::SeqCst};
use std::time::{Duration, Instant};

use common::{map_again, now_ns, pid_owner, Children, Ended, SharedMem, ShmFile, Watchdog};
use floodgate::table::{entries_word, Config, Table, ENTRY_WORDS};
use floodgate::{Algorithm, Error, Verdict};

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
        assert_eq!(
            timed(&format!("check {name}: Busy"), || t.check(k, 1)),
            Err(Error::Busy)
        );
        assert_eq!(t.get(k, 1), Err(Error::Busy));
        assert_eq!(t.set(k, Algorithm::Nop, 0, 1), Err(Error::Busy));
        assert_eq!(
            t.check_or_create(k, Algorithm::Taildrop, 2, 1),
            Err(Error::Busy)
        );
        assert_eq!(t.remove(k), Err(Error::Busy));
        assert_eq!(t.active(k), Ok(true));
    }
    // Others go on.
    assert_eq!(t.check(b"free", 1), Ok(Verdict::Pass));
    assert_eq!(t.check(b"free", 1), Ok(Verdict::Drop));
    assert_eq!(
        t.check_or_create(b"new", Algorithm::Taildrop, 1, 1),
        Ok(Verdict::Pass)
    );
    assert_eq!(t.check(b"new", 1), Ok(Verdict::Drop));
    assert_eq!(
        timed("listing with two stuck entries", || keys(&t)),
        [&b"free"[..], b"new"]
    );
    assert_eq!(t.len(), 4);
    assert_eq!(
        t.clean_unused(1, u64::MAX),
        2,
        "the stuck ones are left alone"
    );
    assert_eq!(t.len(), 2);

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
        Err(Error::Busy),
        "an existing key that stays locked is still Busy, not re-inserted"
    );
    ins.store(was, SeqCst);

    // Unlocked: as they were (the failed calls changed nothing).
    init_word.store(saved[0], SeqCst);
    parent_word.store(saved[1], SeqCst);
    for k in [&b"init"[..], b"parent"] {
        let s = t.get(k, 3).unwrap();
        assert_eq!((s.counter, s.limit), (1, 2), "{k:?} unchanged");
        assert_eq!(t.check(k, 3), Ok(Verdict::Pass));
        assert_eq!(t.check(k, 3), Ok(Verdict::Drop));
    }
    assert_eq!(
        t.check_or_create(b"newer", Algorithm::Taildrop, 1, 3),
        Ok(Verdict::Pass)
    );
}

/// What the child reports.
#[derive(Default)]
#[repr(C)]
struct Shared {
    /// Checks of "hot" that returned (Pass or Drop).
    checks: AtomicU64,
    /// 1 once the child is about to start.
    started: AtomicU64,
}

const CHILD_CHECKS: u64 = 200_000;
const E_MAP: i32 = 10;
const E_ATTACH: i32 = 11;
const E_ERROR: i32 = 12;

/// The child: checks "hot" over and over (a NOP pipe: all pass).
fn child(file: &ShmFile, sh: &Shared) -> i32 {
    let Some(region) = map_again(&file.path, file.len()) else {
        return E_MAP;
    };
    let Ok(t) = Table::attach(region, pid_owner()) else {
        return E_ATTACH;
    };
    sh.started.store(1, SeqCst);
    for _ in 0..CHILD_CHECKS {
        // The parent holds a lock only for an instant: no Busy for us.
        match t.check(b"hot", now_ns()) {
            Ok(Verdict::PassNop) => sh.checks.fetch_add(1, SeqCst),
            _ => return E_ERROR,
        };
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

#[test]
fn a_holder_stopped_by_sigstop_is_busy_and_stops_nobody_else() {
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
    let hot = lock_word(&file, &t, b"hot");
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

    // Catch it holding the lock of "hot".
    let mut attempts = 0;
    loop {
        attempts += 1;
        stop(pid);
        if hot.load(SeqCst) & OWNER_MASK == pid as u32 {
            break;
        }
        resume(pid);
        assert!(
            attempts < 5000 && Instant::now() < deadline,
            "the child was never caught holding the lock"
        );
        std::thread::sleep(Duration::from_micros(50 * (attempts % 10)));
    }
    let held_checks = sh.checks.load(SeqCst);

    // It is alive (stopped): its lock is not taken over, the wait is bounded.
    assert_eq!(
        timed("check of the stopped holder's entry: Busy", || {
            t.check(b"hot", now_ns())
        }),
        Err(Error::Busy)
    );
    assert_eq!(t.get(b"hot", now_ns()), Err(Error::Busy));
    assert_eq!(
        t.set(b"hot", Algorithm::Taildrop, 5, now_ns()),
        Err(Error::Busy)
    );
    assert_eq!(
        t.check_or_create(b"hot", Algorithm::Nop, 0, now_ns()),
        Err(Error::Busy)
    );
    assert_eq!(hot.load(SeqCst) & OWNER_MASK, pid as u32, "still its lock");
    // Everybody else goes on.
    assert_eq!(t.check(b"cold", now_ns()), Ok(Verdict::Pass));
    assert_eq!(t.check(b"cold", now_ns()), Ok(Verdict::Drop));
    assert_eq!(
        t.check_or_create(b"new", Algorithm::Taildrop, 1, now_ns()),
        Ok(Verdict::Pass)
    );
    assert_eq!(
        keys(&t),
        [&b"cold"[..], b"new"],
        "the stuck entry is left out"
    );
    assert_eq!(sh.checks.load(SeqCst), held_checks, "the child is stopped");

    // Running again, it finishes its checks.
    resume(pid);
    let ended = children.wait(pid, deadline, || {});
    assert_eq!(ended, Some(Ended::Exited(0)));
    assert_eq!(sh.checks.load(SeqCst), CHILD_CHECKS);
    // Every check counted once: the creation, the child's; the parent's
    // Busy calls counted nothing.
    let hot_stats = t.get(b"hot", now_ns()).unwrap();
    assert_eq!(u64::from(hot_stats.counter), 1 + CHILD_CHECKS);
    assert_eq!(
        hot_stats.algorithm,
        Algorithm::Nop,
        "the failed set changed nothing"
    );
    assert_eq!(keys(&t), [&b"cold"[..], b"hot", b"new"]);
    eprintln!("caught the child holding the lock after {attempts} stop(s)");
}
