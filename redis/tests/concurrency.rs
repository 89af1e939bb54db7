//! "Exact under concurrency": 8 client processes hammer one key at once.
//!
//! The workers are this test binary run again (`--exact worker --ignored`)
//! with `FG_WORKER=<role>`; each prints `FGW key=value ...` lines that the
//! parent test adds up. Workers start together on a Redis-held barrier.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

const WORKERS: usize = 8;

// ------------------------------------------------------------ worker side

fn env_u64(name: &str) -> u64 {
    std::env::var(name)
        .unwrap_or_else(|_| panic!("{name} not set"))
        .parse()
        .unwrap()
}

fn worker_con() -> Connection {
    let port = env_u64("FG_PORT");
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap();
    let con = client
        .get_connection_with_timeout(Duration::from_secs(5))
        .unwrap();
    con.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    con
}

/// INCR `key` and wait (bounded) until it reaches `n`.
fn barrier(con: &mut Connection, key: &str, n: i64) {
    call(con, &["INCR", key]);
    let ok = wait_until(Duration::from_secs(30), Duration::from_millis(1), || {
        string(&call(con, &["GET", key])).parse::<i64>().unwrap() >= n
    });
    assert!(ok, "barrier {key} not reached by {n} workers in 30 s");
}

fn wait_go(con: &mut Connection) {
    call(con, &["INCR", "ready"]);
    let ok = wait_until(Duration::from_secs(30), Duration::from_millis(1), || {
        int(&call(con, &["EXISTS", "go"])) == 1
    });
    assert!(ok, "no go signal in 30 s");
}

const TD_ROUNDS: u64 = 20;
const TD_CALLS: u64 = 20;
const TD_LIMIT: u64 = 50;

fn worker_taildrop(con: &mut Connection, id: u64) {
    let base = env_u64("FG_BASE");
    wait_go(con);
    for round in 0..TD_ROUNDS {
        barrier(con, &format!("bar:{round}"), WORKERS as i64);
        let mut passes = 0;
        for j in 0..TD_CALLS {
            // All inside window `round`, distinct times.
            let now = base + round * S + (id * TD_CALLS + j) * 1000;
            let r = call(
                con,
                &[
                    "FG.CHECK",
                    "td",
                    "TAILDROP",
                    &TD_LIMIT.to_string(),
                    "INTERVAL",
                    "1000",
                    "NOW",
                    &now.to_string(),
                ],
            );
            match int(&r) {
                1 => passes += 1,
                -1 => {}
                other => panic!("FG.CHECK -> {other}"),
            }
        }
        println!("FGW round={round} passes={passes} calls={TD_CALLS}");
    }
}

const SEM_MAX: i64 = 7;
const SEM_LOOPS: u64 = 150;

fn worker_acquire(con: &mut Connection) {
    wait_go(con);
    let (mut grants, mut refusals, mut max_held, mut max_usage, mut bad) = (0, 0, 0, 0, 0);
    for _ in 0..SEM_LOOPS {
        let r = array(&call(
            con,
            &["FG.ACQUIRE", "sem", &SEM_MAX.to_string(), "HOLD", "60000"],
        ));
        if int(&r[0]) == 1 {
            grants += 1;
            let lease = bytes(&r[1]);
            // Leases this process knows it holds, added up over all workers.
            let held = int(&call(con, &["INCR", "held"]));
            max_held = max_held.max(held);
            let usage = int(&call(con, &["FG.USAGE", "sem"]));
            max_usage = max_usage.max(usage);
            call(con, &["DECR", "held"]);
            if int(&call(con, &[&b"FG.RELEASE"[..], b"sem", &lease])) != 1 {
                bad += 1;
            }
        } else {
            assert_eq!(r, vec![Value::Int(0), Value::BulkString(Vec::new())]);
            refusals += 1;
        }
    }
    println!(
        "FGW grants={grants} refusals={refusals} max_held={max_held} max_usage={max_usage} bad_release={bad}"
    );
}

const HUB: [&str; 10] = [
    "FG.HUB", "KEY", "5", "12", "m1", "m2", "m3", "m4", "HOLD", "60000",
];

fn hub_call(con: &mut Connection, key: &str) -> Option<(String, Vec<u8>)> {
    let argv: Vec<&str> = HUB
        .iter()
        .map(|a| if *a == "KEY" { key } else { a })
        .collect();
    let r = array(&call(con, &argv));
    match &r[0] {
        Value::Nil => {
            assert_eq!(r[1], Value::BulkString(Vec::new()), "refusal: {r:?}");
            None
        }
        m => Some((string(m), bytes(&r[1]))),
    }
}

fn worker_hub_fill(con: &mut Connection) {
    wait_go(con);
    for _ in 0..50 {
        match hub_call(con, "hub") {
            Some((member, lease)) => {
                println!(
                    "FGW member={member} lease={}",
                    String::from_utf8_lossy(&lease)
                )
            }
            None => break,
        }
    }
}

fn worker_hub_churn(con: &mut Connection) {
    wait_go(con);
    let (mut max_total, mut max_member, mut max_usage, mut bad) = (0, 0, 0, 0);
    for _ in 0..60 {
        // Hold up to two leases at once: 8 workers want up to 16 > 12.
        let mut held = Vec::new();
        for _ in 0..2 {
            if let Some((member, lease)) = hub_call(con, "hub2") {
                max_total = max_total.max(int(&call(con, &["INCR", "h2:total"])));
                max_member = max_member.max(int(&call(con, &["INCR", &format!("h2:{member}")])));
                held.push((member, lease));
            }
        }
        max_usage = max_usage.max(int(&call(con, &["FG.USAGE", "hub2"])));
        for (member, lease) in held {
            call(con, &["DECR", "h2:total"]);
            call(con, &["DECR", &format!("h2:{member}")]);
            if int(&call(con, &[&b"FG.RELEASE"[..], b"hub2", &lease])) != 1 {
                bad += 1;
            }
        }
    }
    println!(
        "FGW max_total={max_total} max_member={max_member} max_usage={max_usage} bad_release={bad}"
    );
}

/// Not a test by itself: the body of a worker process (see the module docs).
#[test]
#[ignore = "worker process, spawned by the other tests of this file"]
fn worker() {
    let Ok(role) = std::env::var("FG_WORKER") else {
        return;
    };
    let id = env_u64("FG_WORKER_ID");
    let mut con = worker_con();
    match role.as_str() {
        "taildrop" => worker_taildrop(&mut con, id),
        "acquire" => worker_acquire(&mut con),
        "hub_fill" => worker_hub_fill(&mut con),
        "hub_churn" => worker_hub_churn(&mut con),
        other => panic!("unknown role {other}"),
    }
}

// ------------------------------------------------------------ parent side

/// Runs `WORKERS` worker processes of `role` against `server` and returns
/// each one's `FGW` lines as key/value maps.
fn run_workers(
    server: &Server,
    role: &str,
    env: &[(&str, String)],
) -> Vec<Vec<BTreeMap<String, String>>> {
    let mut con = server.con();
    cmd(&mut con, "DEL ready go");
    let exe = std::env::current_exe().unwrap();
    let dir = temp_dir("workers");
    let mut children = Vec::new();
    for id in 0..WORKERS {
        let out = dir.join(format!("{id}.out"));
        let err = dir.join(format!("{id}.err"));
        let mut c = Command::new(&exe);
        c.args([
            "--exact",
            "worker",
            "--ignored",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env("FG_WORKER", role)
        .env("FG_WORKER_ID", id.to_string())
        .env("FG_PORT", server.port.to_string())
        .stdin(Stdio::null())
        .stdout(fs::File::create(&out).unwrap())
        .stderr(fs::File::create(&err).unwrap());
        for (k, v) in env {
            c.env(k, v);
        }
        children.push((c.spawn().expect("spawn worker"), out, err));
    }
    let ready = wait_until(Duration::from_secs(30), Duration::from_millis(5), || {
        let r = cmd(&mut con, "GET ready");
        !is_nil(&r) && string(&r) == WORKERS.to_string()
    });
    cmd(&mut con, "SET go 1");
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut results = Vec::new();
    let mut failures = Vec::new();
    for (mut child, out, err) in children {
        let status = loop {
            if let Some(st) = child.try_wait().unwrap() {
                break Some(st);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let stdout = fs::read_to_string(&out).unwrap_or_default();
        let stderr = fs::read_to_string(&err).unwrap_or_default();
        if status.map(|s| s.success()) != Some(true) {
            failures.push(format!(
                "worker {role} exited {status:?}\nstdout:\n{}\nstderr:\n{}",
                tail(&stdout, 30),
                tail(&stderr, 30)
            ));
        }
        let lines: Vec<BTreeMap<String, String>> = stdout
            .lines()
            // libtest may print "test worker ... " on the same line first.
            .filter_map(|l| l.find("FGW ").map(|i| &l[i + 4..]))
            .map(|l| {
                l.split_whitespace()
                    .filter_map(|kv| kv.split_once('='))
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect()
            })
            .collect();
        results.push(lines);
    }
    let _ = fs::remove_dir_all(&dir);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(ready, "workers never all got ready");
    results
}

fn num(m: &BTreeMap<String, String>, k: &str) -> i64 {
    m.get(k)
        .unwrap_or_else(|| panic!("no {k} in {m:?}"))
        .parse()
        .unwrap()
}

#[test]
fn taildrop_passes_exactly_the_limit_per_window() {
    let server = Server::start(ServerOpts::new().module("TESTCLOCK yes"));
    // Windows of 1 s starting 2 minutes ahead: keys outlive the test.
    let base = (now_ns() + 120 * S) / S * S;
    let results = run_workers(&server, "taildrop", &[("FG_BASE", base.to_string())]);
    let mut per_round = vec![(0i64, 0i64); TD_ROUNDS as usize];
    for lines in &results {
        assert_eq!(
            lines.len(),
            TD_ROUNDS as usize,
            "a worker reported {} rounds",
            lines.len()
        );
        for m in lines {
            let round = num(m, "round") as usize;
            per_round[round].0 += num(m, "passes");
            per_round[round].1 += num(m, "calls");
        }
    }
    for (round, (passes, calls)) in per_round.iter().enumerate() {
        assert_eq!(
            *calls,
            (WORKERS as u64 * TD_CALLS) as i64,
            "round {round}: calls"
        );
        assert_eq!(
            *passes, TD_LIMIT as i64,
            "window {round}: {passes} of {calls} concurrent calls passed, limit {TD_LIMIT}"
        );
    }
}

#[test]
fn acquire_never_exceeds_max_and_releases_balance() {
    let server = Server::start(ServerOpts::new());
    let results = run_workers(&server, "acquire", &[]);
    let mut total = (0, 0);
    for lines in &results {
        assert_eq!(lines.len(), 1);
        let m = &lines[0];
        assert!(
            num(m, "max_held") <= SEM_MAX,
            "more than {SEM_MAX} leases held at once: {m:?}"
        );
        assert!(
            num(m, "max_usage") <= SEM_MAX,
            "FG.USAGE above {SEM_MAX}: {m:?}"
        );
        assert_eq!(
            num(m, "bad_release"),
            0,
            "a granted lease did not release: {m:?}"
        );
        total.0 += num(m, "grants");
        total.1 += num(m, "refusals");
    }
    println!("acquire: {} grants, {} refusals", total.0, total.1);
    assert_eq!(total.0 + total.1, (WORKERS as u64 * SEM_LOOPS) as i64);
    assert!(total.0 > 0, "nothing was ever granted");
    let mut con = server.con();
    assert_eq!(
        int(&cmd(&mut con, "FG.USAGE sem")),
        0,
        "slots left held after all releases"
    );
    assert_eq!(string(&cmd(&mut con, "GET held")), "0");
}

#[test]
fn hub_fills_to_its_total_evenly_and_never_beyond() {
    let server = Server::start(ServerOpts::new());
    let results = run_workers(&server, "hub_fill", &[]);
    let mut per_member: BTreeMap<String, i64> = BTreeMap::new();
    let mut leases = Vec::new();
    for lines in &results {
        for m in lines {
            *per_member.entry(m["member"].clone()).or_default() += 1;
            leases.push((m["member"].clone(), m["lease"].clone()));
        }
    }
    let total: i64 = per_member.values().sum();
    assert_eq!(
        total, 12,
        "hub granted {total} leases, total_max 12: {per_member:?}"
    );
    let max = *per_member.values().max().unwrap();
    let min = if per_member.len() < 4 {
        0
    } else {
        *per_member.values().min().unwrap()
    };
    assert!(max <= 5, "a member above per_member_max 5: {per_member:?}");
    assert!(max - min <= 1, "uneven spread: {per_member:?}");
    let mut unique: Vec<&String> = leases.iter().map(|l| &l.1).collect();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), leases.len(), "a lease was handed out twice");

    let mut con = server.con();
    assert_eq!(int(&cmd(&mut con, "FG.USAGE hub")), 12);
    let full = array(&cmd(&mut con, "FG.HUB hub 5 12 m1 m2 m3 m4 HOLD 60000"));
    assert!(is_nil(&full[0]), "13th lease granted: {full:?}");
    // Free one of m2's: m2 is now the emptiest and is picked.
    let (_, lease) = leases.iter().find(|l| l.0 == "m2").unwrap();
    assert_eq!(int(&call(&mut con, &["FG.RELEASE", "hub", lease])), 1);
    let again = array(&cmd(&mut con, "FG.HUB hub 5 12 m1 m2 m3 m4 HOLD 60000"));
    assert_eq!(string(&again[0]), "m2", "{again:?}");
}

#[test]
fn hub_under_churn_never_exceeds_total_or_member_max() {
    let server = Server::start(ServerOpts::new());
    let results = run_workers(&server, "hub_churn", &[]);
    for lines in &results {
        assert_eq!(lines.len(), 1);
        let m = &lines[0];
        println!("hub churn worker: {m:?}");
        assert!(num(m, "max_total") <= 12, "more than 12 held: {m:?}");
        assert!(num(m, "max_member") <= 5, "a member above 5: {m:?}");
        assert!(num(m, "max_usage") <= 12, "FG.USAGE above 12: {m:?}");
        assert_eq!(num(m, "bad_release"), 0, "{m:?}");
    }
    let mut con = server.con();
    assert_eq!(int(&cmd(&mut con, "FG.USAGE hub2")), 0);
}
