//! A table file whose lock words name a live process that never unlocks
//! (pid 1 here; in real life a process stopped in a debugger or by
//! `SIGSTOP`, or a forged file): every command still ends. Listings, reads
//! and limit changes of rate pipes (hot entries: no lock) go on; a command
//! that needs a stuck lock (another algorithm, a delete, an insert, the
//! controller) fails with exit 3 and says the entry is busy, and changes
//! nothing.

mod common;

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::time::Duration;

use common::*;
use floodgate::table::{entries_word, ENTRY_WORDS};

/// A watchdog on each run; a busy call takes well under a second.
const LIMIT: Duration = Duration::from_secs(60);
const CAPACITY: usize = 8;
/// Header words of the insert and controller locks (the layout's; not public).
const INSERT_LOCK: usize = 12;
const CTRL_LOCK: usize = 13;

/// The lock words of the table in `t`'s file: every entry's, the insert
/// lock and the controller lock.
fn lock_words() -> Vec<usize> {
    (0..CAPACITY)
        .map(|i| entries_word(CAPACITY) + i * ENTRY_WORDS)
        .chain([INSERT_LOCK, CTRL_LOCK])
        .collect()
}

/// Sets the holder of every lock word to `pid` (0: unlocked), keeping the
/// committed-buffer bit.
fn set_holders(t: &TempTable, pid: u32) {
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&t.path)
        .unwrap();
    for w in lock_words() {
        let mut b = [0u8; 4];
        f.read_exact_at(&mut b, (w * 4) as u64).unwrap();
        let v = (u32::from_le_bytes(b) & 0x8000_0000) | pid;
        f.write_all_at(&v.to_le_bytes(), (w * 4) as u64).unwrap();
    }
}

fn assert_busy(r: &Run, what: &str) {
    assert_eq!(r.code, 3, "{what}: {r:?}");
    assert!(
        r.stderr.contains("stayed locked by a live holder"),
        "{what}: {}",
        r.stderr
    );
}

#[test]
fn lock_words_naming_pid_1_stop_no_command() {
    let t = TempTable::new("busy");
    let cap = CAPACITY.to_string();
    for (k, a, l) in [("a", "TAILDROP", "5"), ("b", "NOP", "0")] {
        cli_json(&t, &["--capacity", &cap, "set-pipe", k, a, l], 0);
    }
    let before = snapshot(&t);
    let pid = cli_json(&t, &["get-pid"], 0);
    set_holders(&t, 1);

    // Listings and reads of the (hot) pipes end, with the pipes in them.
    let r = cli_within(&t, &["list"], LIMIT);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        r.stdout.lines().count(),
        3,
        "the header, a and b: {}",
        r.stdout
    );
    let r = cli_within(&t, &["list", "--json"], LIMIT);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stdout.contains("\"a\"") && r.stdout.contains("\"b\""),
        "{r:?}"
    );
    let r = cli_within(&t, &["list", "a"], LIMIT);
    assert_eq!(r.code, 0, "{r:?}");
    let r = cli_within(&t, &["clean-unused", "1"], LIMIT);
    assert_eq!(r.code, 0, "{r:?}");
    // What needs a stuck lock fails, and says why.
    assert_busy(
        &cli_within(&t, &["set-pipe", "a", "NOP", "0"], LIMIT),
        "set-pipe a (another algorithm)",
    );
    assert_busy(
        &cli_within(&t, &["set-pipe", "c", "TAILDROP", "1"], LIMIT),
        "set-pipe c (new: the insert lock)",
    );
    assert_busy(&cli_within(&t, &["get-pid"], LIMIT), "get-pid");
    assert_busy(&cli_within(&t, &["push-load", "0.5"], LIMIT), "push-load");
    assert_busy(&cli_within(&t, &["delete", "b"], LIMIT), "delete b");

    // Unlocked: everything is as it was.
    set_holders(&t, 0);
    assert_eq!(snapshot(&t), before);
    assert_eq!(cli_json(&t, &["get-pid"], 0), pid);
    let r = cli(&t, &["list", "c"]);
    assert_eq!(r.code, 1, "c was not made: {r:?}");
}
