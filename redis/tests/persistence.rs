//! State survives restarts: an RDB restart (SAVE, kill -9, restart on the
//! same dir), an AOF restart (appendfsync always, kill -9, restart) and an AOF
//! rewrite (BGREWRITEAOF, kill -9, restart). Each time every key's DUMP and
//! PEXPIRETIME are unchanged, and further commands give the verdicts the
//! saved state implies.

mod common;

use std::time::Duration;

use common::*;

/// An interval (ms) whose current aligned window has at least 60 s left, so
/// "the same window" holds across the restarts.
fn interval_with_room() -> u64 {
    let now = now_ms();
    [600_000u64, 700_000, 900_000, 1_100_000, 1_300_000]
        .into_iter()
        .find(|iv| iv - now % iv > 60_000)
        .expect("one of five intervals has a minute left")
}

type Snapshot = Vec<(String, Value, i64)>;

fn snapshot(con: &mut Connection) -> Snapshot {
    keys(con)
        .into_iter()
        .map(|k| {
            let dump = call(con, &[&b"DUMP"[..], &k]);
            let at = int(&call(con, &[&b"PEXPIRETIME"[..], &k]));
            (show_bytes(&k), dump, at)
        })
        .collect()
}

#[track_caller]
fn assert_same(before: &Snapshot, after: &Snapshot, what: &str) {
    let names = |s: &Snapshot| s.iter().map(|e| e.0.clone()).collect::<Vec<_>>();
    assert_eq!(names(before), names(after), "{what}: keyspace changed");
    for (b, a) in before.iter().zip(after) {
        assert_eq!(b.1, a.1, "{what}: DUMP of {} changed", b.0);
        assert_eq!(b.2, a.2, "{what}: PEXPIRETIME of {} changed", b.0);
        assert!(b.2 > 0, "{what}: {} has no expiry ({})", b.0, b.2);
    }
}

/// Leases taken while populating.
struct Leases {
    sem: Vec<Vec<u8>>,
    hub: Vec<(Vec<u8>, Vec<u8>)>,
}

/// One key of every kind, each filled to its limit.
fn populate(con: &mut Connection, iv: u64) -> Leases {
    let iv_s = iv.to_string();
    let period = (iv / 1000).to_string();
    for _ in 0..3 {
        assert_eq!(
            int(&call(
                con,
                &["FG.CHECK", "td", "TAILDROP", "3", "INTERVAL", &iv_s]
            )),
            1
        );
    }
    assert_eq!(
        int(&call(
            con,
            &["FG.CHECK", "gc", "GCRA", "1", "INTERVAL", &iv_s]
        )),
        1
    );
    for _ in 0..2 {
        assert_eq!(
            int(&call(
                con,
                &["FG.CHECK", "sl", "SLIDING", "2", "INTERVAL", &iv_s]
            )),
            1
        );
        assert_eq!(int(&call(con, &["FG.RATE", "rt", "2", &iv_s])), 1);
        assert_eq!(int(&call(con, &["FG.RATE", "rf", "2", &iv_s, "FIRST"])), 1);
    }
    let mut sem = Vec::new();
    for _ in 0..2 {
        let r = array(&call(con, &["FG.ACQUIRE", "sem", "2", "HOLD", &iv_s]));
        assert_eq!(int(&r[0]), 1, "FG.ACQUIRE sem 2: {r:?}");
        let lease = bytes(&r[1]);
        assert_eq!(lease.len(), 16, "lease is 16 hex chars: {lease:?}");
        assert!(lease.iter().all(u8::is_ascii_hexdigit), "lease {lease:?}");
        sem.push(lease);
    }
    let mut hub = Vec::new();
    for expected in [&b"a"[..], b"b"] {
        let r = array(&call(
            con,
            &["FG.HUB", "hub", "1", "2", "a", "b", "HOLD", &iv_s],
        ));
        assert_eq!(bytes(&r[0]), expected, "FG.HUB hub 1 2 a b: {r:?}");
        hub.push((bytes(&r[0]), bytes(&r[1])));
    }
    let r = array(&call(con, &["CL.THROTTLE", "cl", "0", "1", &period]));
    assert_eq!(int(&r[0]), 0, "CL.THROTTLE cl 0 1 {period}: {r:?}");
    Leases { sem, hub }
}

/// The verdicts the populated state implies (changes the state).
fn verify_full(con: &mut Connection, iv: u64, leases: &Leases, what: &str) {
    let iv_s = iv.to_string();
    let period = (iv / 1000).to_string();
    let checks: [(&[&str], i64); 5] = [
        (&["FG.CHECK", "td", "TAILDROP", "3", "INTERVAL", &iv_s], -1),
        (&["FG.CHECK", "gc", "GCRA", "1", "INTERVAL", &iv_s], -1),
        (&["FG.CHECK", "sl", "SLIDING", "2", "INTERVAL", &iv_s], -1),
        (&["FG.RATE", "rt", "2", &iv_s], -1),
        (&["FG.RATE", "rf", "2", &iv_s, "FIRST"], -1),
    ];
    for (args, expected) in checks {
        assert_eq!(
            int(&call(con, args)),
            expected,
            "{what}: {}",
            args.join(" ")
        );
    }
    assert_eq!(int(&cmd(con, "FG.USAGE sem")), 2, "{what}: FG.USAGE sem");
    let r = array(&call(con, &["FG.ACQUIRE", "sem", "2", "HOLD", &iv_s]));
    assert_eq!(
        r,
        vec![Value::Int(0), Value::BulkString(Vec::new())],
        "{what}: 3rd acquire"
    );
    assert_eq!(
        int(&call(con, &[&b"FG.RELEASE"[..], b"sem", &leases.sem[0]])),
        1,
        "{what}"
    );
    assert_eq!(
        int(&call(con, &[&b"FG.RELEASE"[..], b"sem", &leases.sem[0]])),
        0,
        "{what}"
    );
    assert_eq!(
        int(&cmd(con, "FG.USAGE sem")),
        1,
        "{what}: FG.USAGE sem after release"
    );

    let r = array(&call(
        con,
        &["FG.HUB", "hub", "1", "2", "a", "b", "HOLD", &iv_s],
    ));
    assert!(is_nil(&r[0]), "{what}: hub is full: {r:?}");
    let (member, lease) = &leases.hub[0];
    assert_eq!(
        int(&call(con, &[&b"FG.RELEASE"[..], b"hub", lease])),
        1,
        "{what}"
    );
    let r = array(&call(
        con,
        &["FG.HUB", "hub", "1", "2", "a", "b", "HOLD", &iv_s],
    ));
    assert_eq!(
        &bytes(&r[0]),
        member,
        "{what}: the freed member is picked again"
    );

    let r = array(&call(con, &["CL.THROTTLE", "cl", "0", "1", &period]));
    assert_eq!(int(&r[0]), 1, "{what}: CL.THROTTLE limited: {r:?}");
}

/// Verdicts after a second restart (state as `verify_full` left it).
fn verify_again(con: &mut Connection, iv: u64, leases: &Leases, what: &str) {
    let iv_s = iv.to_string();
    assert_eq!(
        int(&call(
            con,
            &["FG.CHECK", "td", "TAILDROP", "3", "INTERVAL", &iv_s]
        )),
        -1,
        "{what}: td"
    );
    assert_eq!(int(&cmd(con, "FG.USAGE sem")), 1, "{what}: FG.USAGE sem");
    assert_eq!(
        int(&call(con, &[&b"FG.RELEASE"[..], b"sem", &leases.sem[1]])),
        1,
        "{what}"
    );
    assert_eq!(int(&cmd(con, "FG.USAGE sem")), 0, "{what}: FG.USAGE sem");
    assert_eq!(int(&cmd(con, "FG.USAGE hub")), 2, "{what}: FG.USAGE hub");
}

#[test]
fn state_survives_an_rdb_restart() {
    let iv = interval_with_room();
    let mut s = Server::start(ServerOpts::new());
    let mut con = s.con();
    let leases = populate(&mut con, iv);
    let before = snapshot(&mut con);
    assert_eq!(
        before.len(),
        8,
        "one key per kind: {:?}",
        before.iter().map(|e| &e.0).collect::<Vec<_>>()
    );
    assert_eq!(cmd(&mut con, "SAVE"), Value::Okay);
    drop(con);
    s.restart();
    let mut con = s.con();
    assert_same(&before, &snapshot(&mut con), "after RDB restart");
    verify_full(&mut con, iv, &leases, "after RDB restart");
}

fn wait_rewrite_done(s: &Server, con: &mut Connection) {
    let done = wait_until(Duration::from_secs(20), Duration::from_millis(50), || {
        let info = s.info(con, "persistence");
        let get = |f: &str| info.iter().find(|(k, _)| k == f).map(|(_, v)| v.clone());
        get("aof_rewrite_in_progress").as_deref() == Some("0")
            && get("aof_rewrite_scheduled").as_deref() == Some("0")
    });
    assert!(done, "BGREWRITEAOF did not finish in 20 s");
    assert_eq!(
        s.info_field(con, "persistence", "aof_last_bgrewrite_status")
            .as_deref(),
        Some("ok")
    );
}

#[test]
fn state_survives_an_aof_restart_and_a_rewrite() {
    let iv = interval_with_room();
    let mut s = Server::start(ServerOpts::new().args("--appendonly yes --appendfsync always"));
    let mut con = s.con();
    // Let the initial AOF base be written before the commands.
    wait_rewrite_done(&s, &mut con);
    let leases = populate(&mut con, iv);
    let before = snapshot(&mut con);
    assert_eq!(before.len(), 8);
    drop(con);
    s.restart(); // kill -9: only the AOF has the state
    let mut con = s.con();
    assert_same(&before, &snapshot(&mut con), "after AOF restart");
    verify_full(&mut con, iv, &leases, "after AOF restart");

    // Rewrite the AOF from the current state, then restart again.
    let before = snapshot(&mut con);
    let r = cmd(&mut con, "BGREWRITEAOF");
    assert!(err_text(&r).is_none(), "BGREWRITEAOF: {r:?}");
    wait_rewrite_done(&s, &mut con);
    drop(con);
    s.restart();
    let mut con = s.con();
    assert_same(
        &before,
        &snapshot(&mut con),
        "after BGREWRITEAOF and restart",
    );
    verify_again(&mut con, iv, &leases, "after BGREWRITEAOF and restart");
}
