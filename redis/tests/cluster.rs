//! floodgate-redis in a Redis Cluster: 3 primaries + 3 replicas on loopback
//! ports, every node loading the module.
//!
//! What it shows (one cluster, one test, well under 90 s):
//! 1. every module command declares its key: `COMMAND GETKEYS` returns it;
//! 2. keys spread over the three shards (DBSIZE > 0 on each primary, the
//!    replicas hold the same keys), a command sent to the wrong node gets
//!    `MOVED`, a replica in READONLY mode serves FG.INFO/FG.USAGE but
//!    redirects the writing commands;
//! 3. slot migration with `redis-cli --cluster reshard`: a slot holding an
//!    FG.CHECK window, an FG.ACQUIRE lease and an FG.HUB moves to another
//!    primary with DUMP and FG.INFO unchanged and PEXPIRETIME unchanged to
//!    the millisecond or so (MIGRATE sends the TTL relative, 0-1 ms seen;
//!    50 ms allowed), the 4th TAILDROP check drops and both leases release
//!    there;
//! 4. failover: `kill -9` of a primary while 4 clients admit as fast as they
//!    can (one command at a time each), its replica is promoted, checks go on
//!    through it; the test prints how many acknowledged admissions the
//!    failover lost without WAIT, then repeats on another shard with
//!    `WAIT 1 1000` after every admission and asserts that no admission
//!    WAIT confirmed is lost.
//!
//! Run: `cargo test -p floodgate-redis --release --test cluster -- --nocapture`

#[path = "common/cluster.rs"]
mod cluster_support;
mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use cluster_support::{as_array, as_int, as_text, connect, key_slot, run, Cluster, NodeInfo};
use redis::Value;

/// A window length near 10 minutes whose current (epoch-aligned) window has
/// at least half of it left, so no TAILDROP window of the test rolls over
/// while it runs (the whole test takes far less than 5 minutes).
fn pick_interval(now: u64) -> u64 {
    (600_000..=900_000)
        .step_by(1_000)
        .find(|i| now % i < i / 2)
        .expect("some interval has half its window left")
}

/// A hash tag whose slot is `slot` (brute force over short names).
fn tag_for_slot(slot: u16) -> String {
    (0..2_000_000u32)
        .map(|i| format!("t{i}"))
        .find(|t| key_slot(t.as_bytes()) == slot)
        .expect("a tag for every slot")
}

/// A hash tag whose slot the node serves.
fn tag_owned_by(node: &NodeInfo, prefix: &str) -> String {
    (0..1_000_000u32)
        .map(|i| format!("{prefix}{i}"))
        .find(|t| node.owns(key_slot(t.as_bytes())))
        .expect("a tag for every primary")
}

fn int(reply: &Result<Value, String>, what: &str) -> i64 {
    match reply {
        Ok(v) => as_int(v).unwrap_or_else(|| panic!("{what}: expected an integer, got {v:?}")),
        Err(e) => panic!("{what}: expected an integer, got error {e:?}"),
    }
}

/// FG.INFO's flat field/value array as a map of texts.
fn info_map(reply: &Result<Value, String>, what: &str) -> HashMap<String, String> {
    let v = reply
        .as_ref()
        .unwrap_or_else(|e| panic!("{what}: FG.INFO error {e:?}"));
    let items = as_array(v).unwrap_or_else(|| panic!("{what}: FG.INFO not an array: {v:?}"));
    assert!(
        items.len().is_multiple_of(2),
        "{what}: FG.INFO odd length: {items:?}"
    );
    items
        .chunks(2)
        .map(|kv| {
            (
                as_text(&kv[0]).unwrap_or_default(),
                as_text(&kv[1]).unwrap_or_default(),
            )
        })
        .collect()
}

fn info_counter(reply: &Result<Value, String>, what: &str) -> u64 {
    let m = info_map(reply, what);
    m.get("counter")
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("{what}: FG.INFO has no integer counter: {m:?}"))
}

/// `[1, "<lease>"]` of FG.ACQUIRE, or `[member, lease]` of FG.HUB.
fn pair(reply: &Result<Value, String>, what: &str) -> (Value, String) {
    let v = reply
        .as_ref()
        .unwrap_or_else(|e| panic!("{what}: error {e:?}"));
    match as_array(v) {
        Some([first, lease]) => (
            first.clone(),
            as_text(lease).unwrap_or_else(|| panic!("{what}: lease not a string: {v:?}")),
        ),
        _ => panic!("{what}: expected a 2-element array, got {v:?}"),
    }
}

fn assert_moved(reply: &Result<Value, String>, slot: u16, owner: u16, what: &str) {
    let want = format!("MOVED {slot} 127.0.0.1:{owner}");
    match reply {
        Err(e) if *e == want => {}
        other => panic!("{what}: expected {want:?}, got {other:?}"),
    }
}

/// 1. COMMAND GETKEYS finds the key of every module command.
fn check_getkeys(c: &mut Cluster) {
    let port = c.alive_ports()[0];
    let cases: &[&[&str]] = &[
        &["FG.CHECK", "mykey", "TAILDROP", "10"],
        &["FG.CHECK", "mykey", "GCRA", "10", "INTERVAL", "1000"],
        &["FG.RATE", "mykey", "10", "1000"],
        &["FG.ACQUIRE", "mykey", "5"],
        &["FG.ACQUIRE", "mykey", "5", "HOLD", "1000"],
        &["FG.RELEASE", "mykey", "0123456789abcdef"],
        &["FG.USAGE", "mykey"],
        &["FG.HUB", "mykey", "1", "2", "a", "b"],
        &["FG.RESET", "mykey"],
        &["FG.INFO", "mykey"],
        &["CL.THROTTLE", "mykey", "15", "30", "60"],
        &["CL.THROTTLE", "mykey", "15", "30", "60", "2"],
    ];
    for args in cases {
        let mut full = vec!["COMMAND", "GETKEYS"];
        full.extend_from_slice(args);
        let reply = c.cmd_on(port, &full);
        let want = Value::Array(vec![Value::BulkString(b"mykey".to_vec())]);
        assert_eq!(reply, Ok(want), "COMMAND GETKEYS {}", args.join(" "));
    }
    println!(
        "[getkeys] COMMAND GETKEYS returns the key for all {} command forms",
        cases.len()
    );
}

/// 2. Keys spread over the shards; MOVED; READONLY replicas.
fn check_spread(c: &mut Cluster, interval: &str) {
    const KEYS: usize = 300;
    for i in 0..KEYS {
        let key = format!("spread:{i}");
        let r = c.cmd(&["FG.CHECK", &key, "TAILDROP", "10", "INTERVAL", interval]);
        assert_eq!(
            int(&r, &format!("FG.CHECK {key}")),
            1,
            "first check of {key} passes"
        );
    }
    let primaries = c.primaries();
    assert_eq!(primaries.len(), 3, "three primaries: {primaries:?}");
    let mut total = 0;
    let mut per_shard = Vec::new();
    for p in &primaries {
        let n = int(&c.cmd_on(p.port, &["DBSIZE"]), "DBSIZE");
        assert!(n > 0, "primary {} holds none of the {KEYS} keys", p.port);
        // The router wrote this shard's keys on its cached connection to the
        // primary, so WAIT there covers them all; then the replica has them.
        let acked = int(&c.cmd_on(p.port, &["WAIT", "1", "2000"]), "WAIT");
        assert_eq!(acked, 1, "replica of {} acknowledged the writes", p.port);
        let replica = c.replica_of(&p.id).expect("a replica per primary");
        let rn = int(&c.cmd_on(replica.port, &["DBSIZE"]), "DBSIZE replica");
        assert_eq!(rn, n, "replica {} holds its primary's keys", replica.port);
        per_shard.push((p.port, n));
        total += n;
    }
    assert_eq!(
        total as usize, KEYS,
        "every key lives on exactly one primary"
    );
    println!(
        "[spread] {KEYS} FG.CHECK keys over the primaries (port, DBSIZE): {per_shard:?}; \
         replicas hold the same counts"
    );

    // The wrong primary answers MOVED, for writing and read-only commands.
    let key = "spread:0";
    let slot = key_slot(key.as_bytes());
    let owner = primaries
        .iter()
        .find(|p| p.owns(slot))
        .expect("owner of spread:0")
        .clone();
    let other = primaries.iter().find(|p| p.port != owner.port).unwrap();
    let r = c.cmd_on(
        other.port,
        &["FG.CHECK", key, "TAILDROP", "10", "INTERVAL", interval],
    );
    assert_moved(&r, slot, owner.port, "FG.CHECK on the wrong primary");
    for args in [
        vec!["FG.INFO", key],
        vec!["FG.USAGE", key],
        vec!["FG.ACQUIRE", key, "1"],
        vec!["FG.RATE", key, "1", "1000"],
        vec!["CL.THROTTLE", key, "1", "1", "1"],
    ] {
        let r = c.cmd_on(other.port, &args);
        assert_moved(
            &r,
            slot,
            owner.port,
            &format!("{args:?} on the wrong primary"),
        );
    }
    // A replica: MOVED without READONLY; with READONLY it serves the
    // read-only commands (FG.INFO, FG.USAGE) and still redirects writes.
    let replica = c.replica_of(&owner.id).expect("replica of the owner");
    let mut rcon = connect(replica.port).expect("connect replica");
    assert_moved(
        &run(&mut rcon, &["FG.INFO", key]),
        slot,
        owner.port,
        "FG.INFO on a replica without READONLY",
    );
    assert_eq!(run(&mut rcon, &["READONLY"]), Ok(Value::Okay));
    let m = info_map(
        &run(&mut rcon, &["FG.INFO", key]),
        "FG.INFO on a READONLY replica",
    );
    assert_eq!(
        m.get("counter").map(String::as_str),
        Some("1"),
        "FG.INFO on the replica: {m:?}"
    );
    // A lease in the same slot (hash tag), replicated before it is read.
    let lease_key = format!("{{{key}}}:lease");
    let (ok, _) = pair(
        &c.cmd(&["FG.ACQUIRE", &lease_key, "3", "HOLD", "600000"]),
        "FG.ACQUIRE",
    );
    assert_eq!(ok, Value::Int(1), "FG.ACQUIRE granted");
    assert_eq!(
        int(&c.cmd_on(owner.port, &["WAIT", "1", "2000"]), "WAIT"),
        1
    );
    assert_eq!(
        int(
            &run(&mut rcon, &["FG.USAGE", &lease_key]),
            "FG.USAGE on a READONLY replica"
        ),
        1
    );
    for args in [
        vec!["FG.CHECK", key, "TAILDROP", "10", "INTERVAL", interval],
        vec!["FG.ACQUIRE", &lease_key, "3"],
        vec!["FG.RESET", key],
    ] {
        let r = run(&mut rcon, &args);
        assert_moved(
            &r,
            slot,
            owner.port,
            &format!("{args:?} on a READONLY replica"),
        );
    }
    println!(
        "[redirect] wrong primary -> MOVED {slot} 127.0.0.1:{}; READONLY replica serves FG.INFO/FG.USAGE, \
         redirects FG.CHECK/FG.ACQUIRE/FG.RESET",
        owner.port
    );
}

/// 3. Slot migration with `redis-cli --cluster reshard`.
fn check_migration(c: &mut Cluster, interval: &str) {
    c.refresh_slots();
    let primaries = c.primaries();
    let src = primaries[0].clone();
    let dst = primaries[1].clone();
    // reshard --cluster-slots 1 moves the source's lowest slot: put the
    // keys there with a hash tag.
    let slot = src.first_slot().expect("source has slots");
    let tag = tag_for_slot(slot);
    let check_key = format!("{{{tag}}}:check");
    let lease_key = format!("{{{tag}}}:lease");
    let hub_key = format!("{{{tag}}}:hub");
    let ks = int(
        &c.cmd_on(src.port, &["CLUSTER", "KEYSLOT", &check_key]),
        "KEYSLOT",
    );
    assert_eq!(ks, i64::from(slot), "client and server agree on the slot");

    for n in 1..=3 {
        let r = c.cmd(&[
            "FG.CHECK", &check_key, "TAILDROP", "3", "INTERVAL", interval,
        ]);
        assert_eq!(
            int(&r, "FG.CHECK before migration"),
            1,
            "check {n} of 3 passes"
        );
    }
    let (ok, lease) = pair(
        &c.cmd(&["FG.ACQUIRE", &lease_key, "5", "HOLD", "600000"]),
        "FG.ACQUIRE",
    );
    assert_eq!(ok, Value::Int(1), "FG.ACQUIRE granted");
    assert_eq!(lease.len(), 16, "lease is 16 hex chars: {lease:?}");
    let (member, hub_lease) = pair(
        &c.cmd(&[
            "FG.HUB", &hub_key, "2", "3", "alpha", "beta", "HOLD", "600000",
        ]),
        "FG.HUB",
    );
    assert_eq!(
        as_text(&member).as_deref(),
        Some("alpha"),
        "FG.HUB picks alpha"
    );
    assert_eq!(
        int(
            &c.cmd_on(src.port, &["CLUSTER", "COUNTKEYSINSLOT", &slot.to_string()]),
            "COUNT"
        ),
        3
    );

    let keys = [&check_key, &lease_key, &hub_key];
    let mut before = Vec::new();
    for k in keys {
        let dump = c.cmd_on(src.port, &["DUMP", k]).expect("DUMP");
        let pexp = int(&c.cmd_on(src.port, &["PEXPIRETIME", k]), "PEXPIRETIME");
        assert!(pexp > 0, "{k} has a TTL (PEXPIRETIME {pexp})");
        let info = info_map(&c.cmd_on(src.port, &["FG.INFO", k]), "FG.INFO");
        before.push((dump, pexp, info));
    }

    let t = Instant::now();
    let out = cluster_support::redis_cli(
        &[
            "--cluster".into(),
            "reshard".into(),
            format!("127.0.0.1:{}", src.port),
            "--cluster-from".into(),
            src.id.clone(),
            "--cluster-to".into(),
            dst.id.clone(),
            "--cluster-slots".into(),
            "1".into(),
            "--cluster-yes".into(),
        ],
        Duration::from_secs(30),
    );
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "reshard failed: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains(&format!("Moving slot {slot} from")),
        "reshard did not move slot {slot}: {text}"
    );
    let took = t.elapsed();

    // Every node learns the new owner (bounded).
    let view = c.wait_agreement(Duration::from_secs(10));
    assert!(
        view.iter().any(|n| n.id == dst.id && n.owns(slot)),
        "slot {slot} not on the destination after reshard: {view:?}"
    );
    c.refresh_slots();
    assert_eq!(
        c.owner_port(&check_key),
        dst.port,
        "slot {slot} now on the destination"
    );
    assert_moved(
        &c.cmd_on(src.port, &["FG.INFO", &check_key]),
        slot,
        dst.port,
        "old owner after migration",
    );
    assert_eq!(
        int(
            &c.cmd_on(dst.port, &["CLUSTER", "COUNTKEYSINSLOT", &slot.to_string()]),
            "COUNT"
        ),
        3
    );

    let mut max_drift = 0;
    for (k, (dump, pexp, info)) in keys.iter().zip(&before) {
        let d2 = c
            .cmd_on(dst.port, &["DUMP", k])
            .expect("DUMP after migration");
        assert_eq!(&d2, dump, "{k}: DUMP unchanged by the migration");
        let p2 = int(&c.cmd_on(dst.port, &["PEXPIRETIME", k]), "PEXPIRETIME");
        // MIGRATE carries the TTL relative (RESTORE key <ttl ms>): the
        // absolute expiry may move by the transfer's milliseconds; allow a
        // few, and print what was seen.
        let drift = (p2 - pexp).abs();
        max_drift = max_drift.max(drift);
        assert!(
            drift <= 50,
            "{k}: PEXPIRETIME {pexp} -> {p2} (moved {drift} ms)"
        );
        let mut i2 = info_map(&c.cmd_on(dst.port, &["FG.INFO", k]), "FG.INFO after");
        let mut i1 = info.clone();
        i1.remove("pttl");
        i2.remove("pttl");
        assert_eq!(i2, i1, "{k}: FG.INFO (but pttl) unchanged");
    }

    let r = c.cmd(&[
        "FG.CHECK", &check_key, "TAILDROP", "3", "INTERVAL", interval,
    ]);
    assert_eq!(
        int(&r, "4th FG.CHECK after migration"),
        -1,
        "the 4th check drops"
    );
    assert_eq!(c.owner_port(&check_key), dst.port);
    assert_eq!(int(&c.cmd(&["FG.USAGE", &lease_key]), "FG.USAGE"), 1);
    assert_eq!(
        int(&c.cmd(&["FG.RELEASE", &lease_key, &lease]), "FG.RELEASE"),
        1
    );
    assert_eq!(
        int(
            &c.cmd(&["FG.RELEASE", &lease_key, &lease]),
            "FG.RELEASE again"
        ),
        0
    );
    assert_eq!(int(&c.cmd(&["FG.USAGE", &hub_key]), "FG.USAGE hub"), 1);
    assert_eq!(
        int(
            &c.cmd(&["FG.RELEASE", &hub_key, &hub_lease]),
            "FG.RELEASE hub"
        ),
        1
    );
    assert_eq!(
        int(&c.cmd(&["FG.USAGE", &hub_key]), "FG.USAGE hub after"),
        0
    );
    println!(
        "[migration] slot {slot} ({} keys) {} -> {} by redis-cli --cluster reshard in {:?}: \
         DUMP equal, PEXPIRETIME drift {max_drift} ms, 4th TAILDROP 3 check dropped, \
         lease and hub lease released (1)",
        keys.len(),
        src.port,
        dst.port,
        took
    );
}

/// Concurrent clients admitting during a failover.
const WRITERS: usize = 4;

/// What a failover did to the acknowledged admissions (sums over writers).
struct Failover {
    /// Admissions (FG.CHECK replies 1) the clients received before the kill.
    acked: u64,
    /// Of those, how many a `WAIT 1 1000` reply >= 1 covered.
    confirmed: u64,
    /// The window counters the promoted replica holds.
    counter: u64,
    /// Acknowledged admissions the promoted replica does not count (per
    /// writer: acked - counter, when positive; a writer has at most one
    /// admission in flight, applied but not acknowledged).
    lost: u64,
    promoted_after: Duration,
}

/// 4. Kill -9 a primary under load; its replica takes over; checks go on.
fn failover(c: &mut Cluster, interval: &str, with_wait: bool, used: &mut Vec<String>) -> Failover {
    c.refresh_slots();
    let candidates: Vec<NodeInfo> = c.primaries();
    let primary = candidates
        .into_iter()
        .find(|p| !used.contains(&p.id) && c.replica_of(&p.id).is_some())
        .expect("a primary with a live replica");
    used.push(primary.id.clone());
    let replica = c.replica_of(&primary.id).expect("its replica");
    let tag = tag_owned_by(&primary, if with_wait { "w" } else { "f" });
    let load_key = format!("{{{tag}}}:load");
    let check_key = format!("{{{tag}}}:check");
    let lease_key = format!("{{{tag}}}:lease");
    assert_eq!(c.owner_port(&load_key), primary.port);

    // State made durable before the kill: 2 of 5 checks, one lease.
    for _ in 0..2 {
        let r = c.cmd(&[
            "FG.CHECK", &check_key, "TAILDROP", "5", "INTERVAL", interval,
        ]);
        assert_eq!(int(&r, "FG.CHECK before failover"), 1);
    }
    let (ok, lease) = pair(
        &c.cmd(&["FG.ACQUIRE", &lease_key, "1", "HOLD", "600000"]),
        "FG.ACQUIRE",
    );
    assert_eq!(ok, Value::Int(1));
    assert_eq!(
        int(&c.cmd_on(primary.port, &["WAIT", "1", "2000"]), "WAIT"),
        1
    );

    // WRITERS clients admitting as fast as they can until the primary dies,
    // each on its own key of the shard, one command at a time (so at most
    // one admission per client is in flight at the kill).
    let load_keys: Vec<String> = (0..WRITERS).map(|w| format!("{load_key}:{w}")).collect();
    let stats: Vec<Arc<[AtomicU64; 2]>> = (0..WRITERS).map(|_| Arc::default()).collect();
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let stat = stats[w].clone();
            let (port, key, interval) = (primary.port, load_keys[w].clone(), interval.to_string());
            thread::spawn(move || -> Option<String> {
                let [acked, confirmed] = &*stat;
                let mut con = connect(port).expect("writer connect");
                let start = Instant::now();
                while start.elapsed() < Duration::from_secs(15) {
                    let admit = [
                        "FG.CHECK",
                        &key,
                        "TAILDROP",
                        "1000000000",
                        "INTERVAL",
                        &interval,
                    ];
                    match run(&mut con, &admit) {
                        Ok(Value::Int(1)) => {
                            acked.fetch_add(1, Ordering::SeqCst);
                        }
                        Err(e) if e.starts_with("IO ") => return None,
                        other => return Some(format!("FG.CHECK under load: {other:?}")),
                    }
                    if with_wait {
                        match run(&mut con, &["WAIT", "1", "1000"]) {
                            Ok(Value::Int(n)) if n >= 1 => {
                                confirmed.store(acked.load(Ordering::SeqCst), Ordering::SeqCst);
                            }
                            Ok(Value::Int(_)) => {}
                            Err(e) if e.starts_with("IO ") => return None,
                            other => return Some(format!("WAIT: {other:?}")),
                        }
                    }
                }
                Some("the writer was never cut off".into())
            })
        })
        .collect();
    let total = |i: usize| -> u64 { stats.iter().map(|s| s[i].load(Ordering::SeqCst)).sum() };
    let target = if with_wait { 8_000 } else { 20_000 };
    // Kill once the clients have admitted `target` (or after 10 s on a slow
    // machine: the measurement holds for any count).
    let deadline = Instant::now() + Duration::from_secs(10);
    while total(0) < target && Instant::now() < deadline {
        if writers.iter().any(|w| w.is_finished()) {
            break; // an error: reported by join below
        }
        thread::sleep(Duration::from_millis(5));
    }
    assert!(total(0) > 0, "no admission before the kill");
    c.kill9(primary.port);
    for w in writers {
        let error = w.join().expect("writer thread");
        assert_eq!(error, None, "a writer stopped on a non-IO reply");
    }

    let promoted_after = c.wait_promoted(replica.port, Duration::from_secs(20));
    c.wait_state_ok(Duration::from_secs(20));
    c.refresh_slots();
    assert_eq!(
        c.owner_port(&load_key),
        replica.port,
        "the promoted replica serves the slot"
    );

    let mut out = Failover {
        acked: 0,
        confirmed: 0,
        counter: 0,
        lost: 0,
        promoted_after,
    };
    for (w, key) in load_keys.iter().enumerate() {
        let acked = stats[w][0].load(Ordering::SeqCst);
        let confirmed = stats[w][1].load(Ordering::SeqCst);
        let counter = info_counter(&c.cmd(&["FG.INFO", key]), "FG.INFO on the promoted replica");
        assert!(
            counter <= acked + 1,
            "{key}: the promoted replica counts {counter} admissions, more than the {acked} \
             acknowledged + 1 in flight"
        );
        if with_wait {
            assert!(confirmed > 0, "{key}: WAIT confirmed no admission");
            assert!(
                counter >= confirmed,
                "{key}: admissions acknowledged by WAIT 1 were lost: {confirmed} confirmed, \
                 the promoted replica counts {counter}"
            );
        }
        out.acked += acked;
        out.confirmed += confirmed;
        out.counter += counter;
        out.lost += acked.saturating_sub(counter);

        // Checks go on through the new primary, from the replicated count.
        let r = c.cmd(&[
            "FG.CHECK",
            key,
            "TAILDROP",
            "1000000000",
            "INTERVAL",
            interval,
        ]);
        assert_eq!(int(&r, "FG.CHECK after failover"), 1);
        let after = info_counter(&c.cmd(&["FG.INFO", key]), "FG.INFO after");
        assert_eq!(
            after,
            counter + 1,
            "{key}: the counter goes on from the replicated value"
        );
    }
    for n in 3..=5 {
        let r = c.cmd(&[
            "FG.CHECK", &check_key, "TAILDROP", "5", "INTERVAL", interval,
        ]);
        assert_eq!(
            int(&r, "FG.CHECK after failover"),
            1,
            "check {n} of 5 passes"
        );
    }
    let r = c.cmd(&[
        "FG.CHECK", &check_key, "TAILDROP", "5", "INTERVAL", interval,
    ]);
    assert_eq!(
        int(&r, "6th FG.CHECK after failover"),
        -1,
        "check 6 of 5 drops"
    );
    assert_eq!(int(&c.cmd(&["FG.USAGE", &lease_key]), "FG.USAGE"), 1);
    let (ok, _) = pair(&c.cmd(&["FG.ACQUIRE", &lease_key, "1"]), "FG.ACQUIRE full");
    assert_eq!(
        ok,
        Value::Int(0),
        "the replicated lease still holds the only slot"
    );
    assert_eq!(
        int(&c.cmd(&["FG.RELEASE", &lease_key, &lease]), "FG.RELEASE"),
        1
    );
    assert_eq!(int(&c.cmd(&["FG.USAGE", &lease_key]), "FG.USAGE"), 0);

    out
}

#[test]
fn cluster_three_primaries_three_replicas() {
    let t0 = Instant::now();
    let module = common::module_path();
    let mut c = Cluster::start(6);
    let ports: Vec<u16> = c.nodes.iter().map(|n| n.port).collect();
    c.create();
    println!(
        "[cluster] 3 primaries + 3 replicas on {ports:?} loading {} up in {:?}",
        module.display(),
        t0.elapsed()
    );

    let interval = pick_interval(common::now_ms()).to_string();
    println!("[cluster] TAILDROP windows of {interval} ms (current window has > half left)");

    check_getkeys(&mut c);
    check_spread(&mut c, &interval);
    check_migration(&mut c, &interval);

    let mut used = Vec::new();
    let no_wait = failover(&mut c, &interval, false, &mut used);
    println!(
        "[failover, no WAIT] kill -9 under load ({WRITERS} clients): {} admissions \
         acknowledged, promoted replica counts {} -> LOST {} acknowledged (replica promoted \
         after {:?})",
        no_wait.acked, no_wait.counter, no_wait.lost, no_wait.promoted_after
    );
    let waited = failover(&mut c, &interval, true, &mut used);
    println!(
        "[failover, WAIT 1 1000 after each] kill -9 under load ({WRITERS} clients): {} \
         admissions acknowledged, {} confirmed by WAIT, promoted replica counts {} -> LOST {} \
         acknowledged, 0 of the WAIT-confirmed (replica promoted after {:?})",
        waited.acked, waited.confirmed, waited.counter, waited.lost, waited.promoted_after
    );
    println!(
        "[cluster] done in {:?}, {} MOVED redirections followed",
        t0.elapsed(),
        c.redirects
    );
}
