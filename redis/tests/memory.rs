//! "Bounded memory": whatever the commands, every key the module writes has a
//! TTL no longer than its parameters imply, and once the longest hold / two
//! intervals have passed the keyspace is empty again.

mod common;

use std::time::{Duration, Instant};

use common::*;

const ALGS: [&str; 6] = ["TAILDROP", "RED", "REDP", "SLIDING", "NOP", "GCRA"];
const KEYS_PER_FAMILY: u64 = 40;
/// Module default interval for FG.CHECK without INTERVAL.
const DEFAULT_IV: u64 = 300;
const MAX_IV: u64 = 500;
const MAX_HOLD: u64 = 1000;
/// CL.THROTTLE: period 1 s, count >= 1, max_burst <= 2: TTL <= 3 s.
const MAX_CELL_TTL: u64 = 3000;

/// The longest TTL (ms) a key of this name may carry.
fn ttl_bound(key: &[u8]) -> u64 {
    let k = String::from_utf8_lossy(key);
    let b = match k.split(':').next().unwrap() {
        "chk" | "rate" => 2 * MAX_IV.max(DEFAULT_IV),
        "sem" | "hub" => MAX_HOLD,
        "cl" => MAX_CELL_TTL,
        other => panic!("unexpected key family {other:?} ({k})"),
    };
    b + 50 // scheduling slack
}

fn random_cmd(r: &mut Rng, leases: &mut Vec<(Vec<u8>, Vec<u8>)>) -> Vec<Vec<u8>> {
    let key = |r: &mut Rng, fam: &str| format!("{fam}:{}", r.range(0, KEYS_PER_FAMILY - 1));
    let v = |items: Vec<String>| items.into_iter().map(String::into_bytes).collect();
    let hold = |r: &mut Rng| r.range(100, MAX_HOLD).to_string();
    match r.range(0, 99) {
        0..=29 => {
            let alg = r.pick(&ALGS).to_string();
            let limit = r.range(
                if matches!(alg.as_str(), "RED" | "REDP" | "GCRA") {
                    1
                } else {
                    0
                },
                8,
            );
            let mut c = vec!["FG.CHECK".into(), key(r, "chk"), alg, limit.to_string()];
            if r.chance(80) {
                c.push("INTERVAL".into());
                c.push(r.range(50, MAX_IV).to_string());
            }
            v(c)
        }
        30..=44 => {
            let mut c = vec![
                "FG.RATE".into(),
                key(r, "rate"),
                r.range(0, 6).to_string().replace('6', "-1"),
                r.range(50, MAX_IV).to_string(),
            ];
            if r.chance(50) {
                c.push(r.pick(&["ALIGNED", "FIRST"]).to_string());
            }
            if r.chance(30) {
                c.push("MAXZERO".into());
                c.push(r.pick(&["REFUSE", "MODHASH", "UNLIMITED"]).to_string());
            }
            v(c)
        }
        45..=59 => {
            let max = r.range(0, 6).to_string().replace('6', "-1");
            v(vec![
                "FG.ACQUIRE".into(),
                key(r, "sem"),
                max,
                "HOLD".into(),
                hold(r),
            ])
        }
        60..=69 => {
            let mut c: Vec<Vec<u8>> = vec![b"FG.HUB".to_vec(), key(r, "hub").into_bytes()];
            c.push(r.range(0, 3).to_string().into_bytes());
            c.push(r.range(0, 6).to_string().replace('6', "-1").into_bytes());
            for m in 0..r.range(1, 4) {
                c.push(format!("m{m}").into_bytes());
            }
            c.push(b"HOLD".to_vec());
            c.push(hold(r).into_bytes());
            c
        }
        70..=79 => match leases.pop() {
            Some((k, l)) if r.chance(85) => vec![b"FG.RELEASE".to_vec(), k, l],
            _ => v(vec![
                "FG.RELEASE".into(),
                key(r, "sem"),
                "0000000000000000".into(),
            ]),
        },
        80..=87 => v(vec![
            "CL.THROTTLE".into(),
            key(r, "cl"),
            r.range(0, 2).to_string(),
            r.range(1, 5).to_string(),
            "1".into(),
            r.range(0, 3).to_string(),
        ]),
        88..=93 => {
            let fam = r.pick(&["chk", "rate", "sem", "hub", "cl"]).to_string();
            v(vec!["FG.RESET".into(), key(r, &fam)])
        }
        94..=96 => v(vec!["FG.USAGE".into(), key(r, "sem")]),
        _ => v(vec!["FG.INFO".into(), key(r, "chk")]),
    }
}

#[test]
fn every_key_expires_and_the_keyspace_empties() {
    let s = Server::start(ServerOpts::new().module(&format!("INTERVAL {DEFAULT_IV}")));
    let mut con = s.con();
    let mut rng = Rng::from_env("memory");
    let mut leases: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    let mut ok = 0usize;
    let mut other_errors = Vec::new();
    // 10 rounds of 300 commands, 100 ms apart: windows roll and keys expire
    // while the run goes on.
    for _round in 0..10 {
        let cmds: Vec<Vec<Vec<u8>>> = (0..300)
            .map(|_| random_cmd(&mut rng, &mut leases))
            .collect();
        let replies = pipeline(&mut con, &cmds);
        for (c, reply) in cmds.iter().zip(&replies) {
            match reply {
                Value::ServerError(_) => {
                    let t = err_text(reply).unwrap();
                    // Calls on a key another family wrote are refused; the
                    // rest must succeed.
                    if !t.starts_with("WRONGTYPE") {
                        other_errors.push(format!("{} -> {t}", show_args(c)));
                    }
                }
                Value::Array(a) if c[0] == b"FG.ACQUIRE" || c[0] == b"FG.HUB" => {
                    ok += 1;
                    if matches!(a.first(), Some(Value::Int(1)) | Some(Value::BulkString(_))) {
                        leases.push((c[1].clone(), bytes(&a[1])));
                    }
                }
                _ => ok += 1,
            }
        }
        // Every key has a TTL, and none longer than its parameters allow.
        for k in keys(&mut con) {
            let pttl = int(&call(&mut con, &[&b"PTTL"[..], &k]));
            assert!(pttl != -1, "key {} has no TTL", show_bytes(&k));
            assert!(
                pttl <= ttl_bound(&k) as i64,
                "key {} has PTTL {pttl} ms, above its bound {} ms; FG.INFO: {:?}",
                show_bytes(&k),
                ttl_bound(&k),
                fg_info(&mut con, &k)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        other_errors.is_empty(),
        "unexpected errors:\n{}",
        other_errors.join("\n")
    );
    assert!(ok > 2000, "only {ok} commands succeeded");

    // After the longest TTL has passed, nothing is left.
    let bound = Duration::from_millis(MAX_CELL_TTL.max(2 * MAX_IV).max(MAX_HOLD) + 3000);
    let start = Instant::now();
    let empty = wait_until(bound, Duration::from_millis(100), || {
        int(&cmd(&mut con, "DBSIZE")) == 0
    });
    let left: Vec<String> = keys(&mut con)
        .iter()
        .map(|k| {
            let pttl = int(&call(&mut con, &[&b"PTTL"[..], k]));
            format!("{} (PTTL {pttl})", show_bytes(k))
        })
        .collect();
    assert!(
        empty,
        "DBSIZE not 0 {:?} after the run; left: {left:?}",
        start.elapsed()
    );
}
