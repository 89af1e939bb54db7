//! The operator's commands through the real binary: every command, its
//! human-readable and `--json` output (parsed back), its exit codes, bad
//! arguments (exit 2 and a message naming the problem), `--help`.

mod common;

use common::*;
use serde_json::json;

/// Every command of the binary, as `--help` is asked for it.
const COMMANDS: &[&[&str]] = &[
    &[],
    &["list"],
    &["stats"],
    &["set-pipe"],
    &["get-pid"],
    &["set-pid"],
    &["push-load"],
    &["usage"],
    &["release"],
    &["reset"],
    &["delete"],
    &["clean-unused"],
    &["simulate"],
    &["agi"],
    &["agi", "link"],
    &["agi", "hub"],
    &["agi", "release"],
];

#[test]
fn help_on_every_command_with_the_exit_codes() {
    for cmd in COMMANDS {
        let mut args = cmd.to_vec();
        args.push("--help");
        let r = cli_raw(&args);
        assert_eq!(r.code, 0, "{args:?}: {r:?}");
        assert!(
            r.stdout.contains("Usage: floodgate"),
            "{args:?}: {}",
            r.stdout
        );
        assert!(r.stdout.contains("Exit codes:"), "{args:?}");
        assert!(r.stdout.contains("2  usage"), "{args:?}");
        assert!(r.stderr.is_empty(), "{args:?}: {}", r.stderr);
    }
    let r = cli_raw(&["help", "set-pipe"]);
    assert_eq!(r.code, 0);
    assert!(r.stdout.contains("pl.set_pipe"), "{}", r.stdout);
    let r = cli_raw(&["--version"]);
    assert_eq!(r.code, 0);
    assert!(r.stdout.starts_with("floodgate "), "{}", r.stdout);
}

#[test]
fn pipes_set_list_reset_delete_clean() {
    let t = TempTable::new("pipes");
    // A new table is made with the shape given once.
    let v = cli_json(
        &t,
        &[
            "--capacity",
            "64",
            "--interval",
            "2s",
            "set-pipe",
            "10.0.0.1",
            "TAILDROP",
            "3",
        ],
        0,
    );
    assert_eq!(
        v,
        json!({"key": "10.0.0.1", "algorithm": "TAILDROP", "limit": 3,
               "counter": 0, "last_counter": 0, "load": 0})
    );
    // Later uses leave the flags out, or repeat them.
    cli_json(&t, &["set-pipe", "sip:alice", "red", "10"], 0);
    cli_json(
        &t,
        &["--capacity", "64", "set-pipe", "cpu", "FEEDBACK", "80"],
        0,
    );
    cli_json(&t, &["set-pipe", "fs/calls", "INTERVAL", "-1"], 0);

    let all = cli_json(&t, &["list"], 0);
    let keys: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["10.0.0.1", "cpu", "fs/calls", "sip:alice"]);
    assert_eq!(all[1]["algorithm"], "FEEDBACK");
    assert_eq!(all[1]["limit"], 80);
    assert_eq!(all[2]["limit"], -1);

    let r = cli(&t, &["list"]);
    assert_eq!(r.code, 0);
    let mut lines = r.stdout.lines();
    assert_eq!(
        lines.next().unwrap().split_whitespace().collect::<Vec<_>>(),
        ["KEY", "ALGORITHM", "LIMIT", "COUNTER", "LAST", "LOAD"]
    );
    assert!(r.stdout.contains("sip:alice  RED"), "{}", r.stdout);

    let one = cli_json(&t, &["list", "sip:alice"], 0);
    assert_eq!(one["algorithm"], "RED");
    assert_eq!(one["limit"], 10);
    let r = cli(&t, &["list", "nope"]);
    assert_eq!((r.code, r.stdout.as_str()), (1, ""));
    assert!(r.stderr.contains("nope: no such entry"), "{r:?}");

    // set-pipe on an existing pipe keeps its algorithm when it is the same.
    let v = cli_json(&t, &["set-pipe", "10.0.0.1", "TAILDROP", "5"], 0);
    assert_eq!(v["limit"], 5);

    let stats = cli_json(&t, &["stats"], 0);
    assert_eq!(stats["capacity"], 64);
    assert_eq!(stats["lease_capacity"], 64);
    assert_eq!(stats["interval_ns"], 2_000_000_000u64);
    assert_eq!(stats["entries"], 4);
    assert_eq!(stats["setpoint_percent"], 80);
    assert_eq!(stats["path"], t.arg());
    assert_eq!(stats["pipes"].as_array().unwrap().len(), 4);
    assert_eq!(stats["pipes"][0]["key"], "10.0.0.1");
    let r = cli(&t, &["stats"]);
    assert_eq!(r.code, 0);
    assert!(r.stdout.contains("interval   2s"), "{}", r.stdout);
    assert!(r.stdout.contains("setpoint 80%"), "{}", r.stdout);

    assert_eq!(
        cli_json(&t, &["reset", "10.0.0.1"], 0),
        json!({"key": "10.0.0.1", "reset": true})
    );
    assert_eq!(cli(&t, &["reset", "nope"]).code, 1);
    assert_eq!(
        cli_json(&t, &["delete", "sip:alice"], 0),
        json!({"key": "sip:alice", "deleted": true})
    );
    let r = cli(&t, &["delete", "sip:alice"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("sip:alice: no such entry"), "{r:?}");

    // Nothing was used for 0 intervals yet; clean_unused 0 deletes nothing.
    assert_eq!(
        cli_json(&t, &["clean-unused", "0"], 0),
        json!({"intervals": 0, "removed": 0})
    );
    let v = cli_json(&t, &["clean-unused", "1000000"], 0);
    assert_eq!(v["removed"], 0);
    let r = cli(&t, &["clean-unused", "3"]);
    assert_eq!(r.code, 0);
    assert!(r.stdout.starts_with("removed "), "{}", r.stdout);
}

#[test]
fn pid_controller_get_set_push() {
    let t = TempTable::new("pid");
    let v = cli_json(&t, &["get-pid"], 0);
    assert_eq!(v["ki"], -25.0);
    assert_eq!(v["kp"], 0.0);
    assert_eq!(v["drop_rate"], 0);
    cli_json(&t, &["set-pipe", "cpu", "FEEDBACK", "50"], 0);
    // pipelimit's worked example: setpoint 0.5, loads 0.9 -> 10, 20, 30.
    for want in [10, 20, 30] {
        let v = cli_json(&t, &["push-load", "0.9"], 0);
        assert_eq!(v, json!({"load": 0.9, "drop_rate": want}));
    }
    let v = cli_json(&t, &["set-pid", "-10", "0.5", "0"], 0);
    assert_eq!(
        (v["ki"].as_f64(), v["kp"].as_f64()),
        (Some(-10.0), Some(0.5))
    );
    assert_eq!(v["setpoint"], 0.5);
    let r = cli(&t, &["get-pid"]);
    assert_eq!(r.code, 0);
    assert!(r.stdout.contains("ki         -10"), "{}", r.stdout);
    let r = cli(&t, &["push-load", "0"]);
    assert_eq!(r.code, 0);
    assert!(r.stdout.starts_with("load 0: drop rate "), "{}", r.stdout);
}

#[test]
fn slots_usage_and_release_by_key_and_by_lease() {
    let t = TempTable::new("slots");
    // A plain SLOTS entry as a C program or pl.set_pipe would make it.
    cli_json(&t, &["set-pipe", "fs/gw1", "SLOTS", "2"], 0);
    assert_eq!(
        cli_json(&t, &["usage", "fs/gw1"], 0),
        json!({"key": "fs/gw1", "usage": 0})
    );
    let r = cli(&t, &["release", "fs/gw1"]);
    assert_eq!(r.code, 1, "nothing held: {r:?}");
    assert!(r.stderr.contains("nothing held"), "{r:?}");
    let v = cli_json(&t, &["release", "fs/gw1"], 1);
    assert_eq!(v["released"], false);
    let listed = cli_json(&t, &["list", "fs/gw1"], 0);
    assert_eq!(listed["last_counter"], 2, "two unmatched releases counted");

    // A link held by a lease (agi link): by key the operator releases the
    // lease (the one expiring first), once; its handle then finds nothing.
    let mut ch = Channel::default();
    assert_eq!(
        serve(&t, &["link", "--node", "2000", "--max", "3"], &mut ch).0,
        0
    );
    let lease = ch.var("FG_LEASE").unwrap().to_owned();
    assert_eq!(cli_json(&t, &["usage", "node/2000"], 0)["usage"], 1);
    let v = cli_json(&t, &["release", "node/2000"], 0);
    assert_eq!(v["released"], true);
    assert_eq!(usage(&t, "node/2000"), 0);
    let r = cli(&t, &["release", "node/2000"]);
    assert_eq!(r.code, 1, "nothing left to release: {r:?}");
    assert_eq!(usage(&t, "node/2000"), 0);
    let r = cli(&t, &["release", "--lease", &lease]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("not held"), "{r:?}");
    // By its handle: released once.
    let mut ch = Channel::default();
    assert_eq!(
        serve(&t, &["link", "--node", "2000", "--max", "3"], &mut ch).0,
        0
    );
    let lease = ch.var("FG_LEASE").unwrap().to_owned();
    let v = cli_json(&t, &["release", "--lease", &lease], 0);
    assert_eq!(
        v,
        json!({"lease": lease.parse::<u64>().unwrap(), "released": true})
    );
    assert_eq!(usage(&t, "node/2000"), 0);
    let r = cli(&t, &["release", "--lease", &lease]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("not held"), "{r:?}");

    // usage on a rate pipe names the problem; on nothing it is exit 1.
    cli_json(&t, &["set-pipe", "p", "TAILDROP", "1"], 0);
    let r = cli(&t, &["usage", "p"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("rate pipe"), "{r:?}");
    let r = cli(&t, &["usage", "none"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("none: no such entry"), "{r:?}");

    // delete ends the leases of an entry.
    let mut ch = Channel::default();
    assert_eq!(
        serve(&t, &["link", "--node", "2000", "--max", "3"], &mut ch).0,
        0
    );
    cli_json(&t, &["delete", "node/2000"], 0);
    assert_eq!(
        serve(&t, &["release"], &mut ch).0,
        0,
        "its hangup is harmless"
    );
    assert_eq!(usage(&t, "node/2000"), 0);
}

#[test]
fn bad_arguments_exit_2_and_name_the_problem() {
    let t = TempTable::new("badargs");
    cli_json(&t, &["set-pipe", "p", "TAILDROP", "1"], 0);
    cli_json(&t, &["set-pipe", "s", "SLOTS", "1"], 0);
    let before = snapshot(&t);
    let long_key = "k".repeat(57);
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["frobnicate"], "unrecognized subcommand 'frobnicate'"),
        (
            vec!["set-pipe", "x", "FOO", "3"],
            "unknown algorithm \"FOO\"",
        ),
        (
            vec!["set-pipe", "x", "TAILDROP", "many"],
            "invalid value 'many' for '<LIMIT>'",
        ),
        (vec!["set-pipe", "x", "TAILDROP"], "<LIMIT>"),
        (vec!["set-pipe", "x", "RED", "0"], "limit out of range"),
        (
            vec!["set-pipe", "x", "FEEDBACK", "101"],
            "limit out of range",
        ),
        (
            vec!["set-pipe", "x", "TAILDROP", "-1"],
            "limit out of range",
        ),
        (
            vec!["set-pipe", &long_key, "TAILDROP", "1"],
            "at most 56 bytes",
        ),
        (vec!["set-pipe", "", "TAILDROP", "1"], "must not be empty"),
        (vec!["set-pid", "1", "2"], "<KD>"),
        (vec!["set-pid", "nan", "0", "0"], "PID gains must be finite"),
        (
            vec!["set-pid", "x", "0", "0"],
            "invalid value 'x' for '<KI>'",
        ),
        (
            vec!["push-load", "1.5"],
            "load must be a number in 0.0..=1.0",
        ),
        (
            vec!["push-load", "-0.1"],
            "load must be a number in 0.0..=1.0",
        ),
        (vec!["push-load"], "<LOAD>"),
        (vec!["usage"], "<KEY>"),
        (vec!["usage", "p"], "rate pipe"),
        (vec!["release"], "--lease"),
        (vec!["release", "s", "--lease", "1"], "cannot be used with"),
        (
            vec!["release", "--lease", "x"],
            "invalid value 'x' for '--lease <HANDLE>'",
        ),
        (
            vec!["clean-unused", "-1"],
            "invalid value '-1' for '<INTERVALS>'",
        ),
        (vec!["clean-unused", "many"], "invalid value 'many'"),
        (vec!["list", "a", "b"], "unexpected argument 'b'"),
        (vec!["--capacity", "0", "list"], "must be in 1..="),
        (
            vec!["--interval", "0", "list"],
            "interval must be longer than 0",
        ),
        (vec!["--interval", "5x", "list"], "unknown unit"),
        (
            vec!["--capacity", "99", "list"],
            "--capacity 99 does not match",
        ),
        (vec!["--leases", "7", "list"], "--leases 7 does not match"),
        (
            vec!["--interval", "1m", "list"],
            "--interval 1m does not match",
        ),
        (vec!["--table", "a/b", "list"], "a table name is"),
        (
            vec!["set-pipe", "s", "TAILDROP", "1", "--json", "--json"],
            "cannot be used multiple times",
        ),
    ];
    for (args, want) in &cases {
        let r = cli(&t, args);
        assert_eq!(r.code, 2, "{args:?}: {r:?}");
        assert!(
            r.stderr.contains(want),
            "{args:?}: stderr {:?} lacks {want:?}",
            r.stderr
        );
        assert!(r.stdout.is_empty(), "{args:?}: {:?}", r.stdout);
    }
    assert_eq!(snapshot(&t), before, "refused commands changed nothing");
    // --path and --table together name the conflict.
    let r = cli_raw(&["--path", "/tmp/x", "--table", "y", "list"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("cannot be used with"), "{r:?}");
}

#[test]
fn a_mismatching_or_foreign_file_is_refused_and_left_alone() {
    let t = TempTable::new("shape");
    cli_json(
        &t,
        &[
            "--capacity",
            "16",
            "--leases",
            "4",
            "--interval",
            "500ms",
            "stats",
        ],
        0,
    );
    let r = cli(&t, &["--capacity", "32", "--interval", "1s", "stats"]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr
            .contains("the table there has capacity 16, 4 lease records and interval 500ms")
            && r.stderr
                .contains("--capacity 32, --interval 1s does not match"),
        "{r:?}"
    );
    // The same flags again are fine.
    cli_json(
        &t,
        &[
            "--capacity",
            "16",
            "--leases",
            "4",
            "--interval",
            "500ms",
            "stats",
        ],
        0,
    );

    let f = TempTable::new("foreign");
    std::fs::write(&f.path, b"hello, this is not a table, but it is long enough to look at....................................................................................................................................................................................").unwrap();
    let before = std::fs::read(&f.path).unwrap();
    let r = cli(&f, &["list"]);
    assert_eq!(r.code, 3, "{r:?}");
    assert!(r.stderr.contains("not a floodgate table"), "{r:?}");
    assert_eq!(std::fs::read(&f.path).unwrap(), before);

    // Table files of layout versions 1 (before buckets and tags), 2
    // (before the lock-free hot path), 3 (SLOTS and first-call interval
    // limits never hot), 4 (first-call limits rolled under the lock), 5
    // (first windows opened under the lock), 6 (far aligned rolls under
    // the lock), 7 (168-byte entries) and 8 (160-byte entries), as an
    // older floodgate left them: refused, untouched, and the message says
    // what to do.
    for version in [1u32, 2, 3, 4, 5, 6, 7, 8] {
        let old = TempTable::new(&format!("layout{version}"));
        cli_json(
            &old,
            &["--capacity", "16", "set-pipe", "a", "TAILDROP", "5"],
            0,
        );
        let mut bytes = std::fs::read(&old.path).unwrap();
        bytes[4..8].copy_from_slice(&version.to_ne_bytes());
        std::fs::write(&old.path, &bytes).unwrap();
        let want = format!(
            "layout version {version}, made by an older floodgate; this one reads version {}",
            floodgate::table::LAYOUT_VERSION
        );
        for args in [
            &["list"][..],
            &["usage", "a"],
            &["set-pipe", "b", "RED", "3"],
        ] {
            let r = cli(&old, args);
            assert_eq!(r.code, 3, "{args:?}: {r:?}");
            assert!(
                r.stderr.contains(&want) && r.stderr.contains("remove the file"),
                "{args:?}: {r:?}"
            );
            assert_eq!(std::fs::read(&old.path).unwrap(), bytes, "{args:?}");
        }
    }

    let missing = cli_raw(&["--path", "/nonexistent-dir/floodgate-x", "list"]);
    assert_eq!(missing.code, 3);
    assert!(
        missing.stderr.contains("No such file or directory"),
        "{missing:?}"
    );
}

#[test]
fn the_default_path_is_in_dev_shm_under_the_table_name() {
    if !std::path::Path::new("/dev/shm").is_dir() {
        return;
    }
    let name = format!("test-default-{}", std::process::id());
    let path = format!("/dev/shm/floodgate-{name}");
    let r = cli_raw(&["--table", &name, "stats", "--json"]);
    let _ = std::fs::remove_file(&path);
    assert_eq!(r.code, 0, "{r:?}");
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["path"], path);
    assert_eq!(v["capacity"], 1024);
    assert_eq!(v["interval_ns"], 10_000_000_000u64);
}

#[test]
fn concurrent_first_use_makes_one_table() {
    let t = TempTable::new("firstuse");
    let codes: Vec<i32> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..12)
            .map(|i| {
                let t = &t;
                s.spawn(move || {
                    let key = format!("p{i}");
                    cli(t, &["--capacity", "64", "set-pipe", &key, "TAILDROP", "1"]).code
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(codes.iter().all(|&c| c == 0), "{codes:?}");
    // Every process worked on the one table that was published.
    assert_eq!(cli_json(&t, &["list"], 0).as_array().unwrap().len(), 12);
    let dir = t.path.parent().unwrap();
    let stem = t.path.file_name().unwrap().to_string_lossy().into_owned();
    let leftovers: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(&format!(".{stem}.")))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
}

#[test]
fn non_utf8_keys_are_shown_escaped() {
    use std::os::unix::ffi::OsStrExt;
    let t = TempTable::new("bytes");
    let key = std::ffi::OsStr::from_bytes(b"ip\xff\x01");
    let out = std::process::Command::new(BIN)
        .arg("--path")
        .arg(&t.path)
        .args(["set-pipe"])
        .arg(key)
        .args(["NOP", "0", "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["key"], "ip\\xff\\x01");
    assert_eq!(v["algorithm"], "NOP");
}
