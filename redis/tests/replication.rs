//! "One clock, replicated by effect": a replica whose wall clock runs 30 s
//! ahead of its primary ends up with byte-identical state and identical
//! absolute expiry times after thousands of mixed commands on the primary,
//! because the module replicates `SET key <state> PXAT <ms>` / `DEL`, never
//! the command (which the replica would evaluate against its own clock).

mod common;

use std::time::Duration;

use common::*;

const OFFSET_S: i64 = 30;

/// Every key's (DUMP, PEXPIRETIME).
fn snapshot(con: &mut Connection, keys: &[Vec<u8>]) -> Vec<(Value, i64)> {
    keys.iter()
        .map(|k| {
            let dump = call(con, &[&b"DUMP"[..], k]);
            let at = int(&call(con, &[&b"PEXPIRETIME"[..], k]));
            (dump, at)
        })
        .collect()
}

struct Mix {
    rng: Rng,
    sem_leases: Vec<(String, Vec<u8>)>,
    hub_leases: Vec<(String, Vec<u8>)>,
}

const CHECK_ALGS: [&str; 6] = ["TAILDROP", "RED", "REDP", "SLIDING", "NOP", "GCRA"];

impl Mix {
    /// One random command. Every parameter keeps every TTL far above the
    /// replica's 30 s lead (a key whose expiry lies in the replica's past is
    /// invisible there): intervals, holds and GCRA emission intervals are
    /// all >= 60 s.
    fn next(&mut self) -> Vec<Vec<u8>> {
        let r = &mut self.rng;
        let s = |v: &[String]| v.iter().map(|x| x.as_bytes().to_vec()).collect::<Vec<_>>();
        let i = r.range(0, 2);
        match r.range(0, 99) {
            0..=29 => {
                let a = r.range(0, 5) as usize;
                let alg = CHECK_ALGS[a];
                // Per-key parameters are fixed so the stored pipe matches them.
                let (limit, iv) = if alg == "GCRA" {
                    (1 + i % 2, 300_000)
                } else {
                    (2 + i, [60_000, 120_000, 300_000][i as usize])
                };
                s(&[
                    "FG.CHECK".into(),
                    format!("chk:{alg}:{i}"),
                    alg.into(),
                    limit.to_string(),
                    "INTERVAL".into(),
                    iv.to_string(),
                ])
            }
            30..=44 => {
                let first = r.chance(50);
                let max = [-1i64, 0, 2, 5][i as usize % 4];
                let mut v = vec![
                    "FG.RATE".to_string(),
                    format!("rate:{}:{i}", if first { "first" } else { "aligned" }),
                    max.to_string(),
                    [60_000, 90_000, 120_000][i as usize].to_string(),
                    if first { "FIRST" } else { "ALIGNED" }.to_string(),
                ];
                if max == 0 {
                    v.push("MAXZERO".into());
                    v.push(["REFUSE", "MODHASH", "UNLIMITED"][r.range(0, 2) as usize].into());
                }
                s(&v)
            }
            45..=59 => s(&[
                "FG.ACQUIRE".into(),
                format!("sem:{i}"),
                "3".into(),
                "HOLD".into(),
                r.range(120_000, 600_000).to_string(),
            ]),
            60..=69 => {
                if self.sem_leases.is_empty() || r.chance(15) {
                    s(&[
                        "FG.RELEASE".into(),
                        format!("sem:{i}"),
                        "00000000deadbeef".into(),
                    ])
                } else {
                    let n = r.range(0, self.sem_leases.len() as u64 - 1) as usize;
                    let (k, l) = self.sem_leases.swap_remove(n);
                    vec![b"FG.RELEASE".to_vec(), k.into_bytes(), l]
                }
            }
            70..=79 => s(&[
                "FG.HUB".into(),
                format!("hub:{i}"),
                "2".into(),
                "5".into(),
                "a".into(),
                "b".into(),
                "c".into(),
                "HOLD".into(),
                r.range(120_000, 600_000).to_string(),
            ]),
            80..=84 => match self.hub_leases.pop() {
                Some((k, l)) => vec![b"FG.RELEASE".to_vec(), k.into_bytes(), l],
                None => s(&["FG.USAGE".into(), format!("hub:{i}")]),
            },
            85..=89 => {
                let all = [
                    format!("chk:TAILDROP:{i}"),
                    format!("chk:GCRA:{i}"),
                    format!("chk:SLIDING:{i}"),
                    format!("rate:aligned:{i}"),
                    format!("rate:first:{i}"),
                    format!("sem:{i}"),
                    format!("hub:{i}"),
                    format!("cl:{i}"),
                ];
                let k = r.pick(&all).clone();
                s(&["FG.RESET".into(), k])
            }
            90..=96 => s(&[
                "CL.THROTTLE".into(),
                format!("cl:{i}"),
                "3".into(),
                "1".into(),
                "120".into(),
                r.range(0, 2).to_string(),
            ]),
            _ => s(&["FG.INFO".into(), format!("chk:TAILDROP:{i}")]),
        }
    }

    fn collect(&mut self, cmd: &[Vec<u8>], reply: &Value) {
        let key = String::from_utf8_lossy(&cmd[1]).into_owned();
        match (cmd[0].as_slice(), reply) {
            (b"FG.ACQUIRE", Value::Array(a)) if a.first() == Some(&Value::Int(1)) => {
                self.sem_leases.push((key, bytes(&a[1])));
            }
            (b"FG.HUB", Value::Array(a)) if !matches!(a.first(), Some(Value::Nil) | None) => {
                self.hub_leases.push((key, bytes(&a[1])));
            }
            _ => {}
        }
    }
}

#[test]
fn replica_with_a_skewed_clock_holds_identical_state_and_expiry() {
    let primary = Server::start(ServerOpts::new());
    let replica = Server::start(
        ServerOpts::new()
            .clock_offset(OFFSET_S)
            .args(&format!("--replicaof 127.0.0.1 {}", primary.port)),
    );
    let mut p = primary.con();
    let mut r = replica.con();

    // The replica's clock really is 30 s ahead.
    let skew = server_time_ns(&mut r) as i64 - server_time_ns(&mut p) as i64;
    assert!(
        (skew - OFFSET_S * S as i64).abs() < S as i64,
        "the replica's clock offset did not take effect: TIME differs by {skew} ns, not ~{OFFSET_S} s"
    );
    let up = wait_until(Duration::from_secs(15), Duration::from_millis(50), || {
        replica
            .info_field(&mut r, "replication", "master_link_status")
            .as_deref()
            == Some("up")
    });
    assert!(up, "replica never linked; log:\n{}", replica.tail());

    let mut mix = Mix {
        rng: Rng::from_env("replication"),
        sem_leases: Vec::new(),
        hub_leases: Vec::new(),
    };
    let mut errors = Vec::new();
    for _batch in 0..30 {
        let cmds: Vec<Vec<Vec<u8>>> = (0..100).map(|_| mix.next()).collect();
        let replies = pipeline(&mut p, &cmds);
        for (c, reply) in cmds.iter().zip(&replies) {
            if let Some(e) = err_text(reply) {
                errors.push(format!("{} -> {e}", show_args(c)));
            }
            mix.collect(c, reply);
        }
    }
    assert!(
        errors.is_empty(),
        "commands failed on the primary:\n{}",
        errors.join("\n")
    );

    let acked = int(&cmd(&mut p, "WAIT 1 5000"));
    assert!(
        acked >= 1,
        "WAIT 1 5000 -> {acked}: the replica did not acknowledge"
    );

    let pkeys = keys(&mut p);
    let rkeys = keys(&mut r);
    assert!(
        pkeys.len() >= 20,
        "only {} keys: the mix did too little",
        pkeys.len()
    );
    assert_eq!(
        pkeys.iter().map(|k| show_bytes(k)).collect::<Vec<_>>(),
        rkeys.iter().map(|k| show_bytes(k)).collect::<Vec<_>>(),
        "keyspaces differ (primary vs replica)"
    );
    let replica_now_ms = (server_time_ns(&mut r) / MS) as i64;
    let ps = snapshot(&mut p, &pkeys);
    let rs = snapshot(&mut r, &pkeys);
    for ((k, (pd, pat)), (rd, rat)) in pkeys.iter().zip(&ps).zip(&rs) {
        let k = show_bytes(k);
        assert!(
            *pat > 0,
            "{k}: no expiry on the primary (PEXPIRETIME {pat})"
        );
        assert!(
            *pat > replica_now_ms + 5000,
            "{k}: expires at {pat}, within the replica's 30 s lead: test parameters too short"
        );
        assert!(
            matches!(pd, Value::BulkString(_)),
            "{k}: DUMP on primary {pd:?}"
        );
        assert_eq!(pd, rd, "{k}: DUMP differs between primary and replica");
        assert_eq!(
            pat, rat,
            "{k}: PEXPIRETIME differs (primary {pat}, replica {rat})"
        );
    }

    // FG.CHECK window keys (not GCRA) expire 2 intervals after their aligned
    // window started: a multiple of the interval, 1-2 intervals ahead.
    let now = now_ms() as i64;
    for (k, (_, at)) in pkeys.iter().zip(&ps) {
        let k = String::from_utf8_lossy(k);
        let Some(rest) = k.strip_prefix("chk:") else {
            continue;
        };
        let (alg, i) = rest.split_once(':').unwrap();
        if alg == "GCRA" {
            continue;
        }
        let iv = [60_000i64, 120_000, 300_000][i.parse::<usize>().unwrap()];
        assert_eq!(
            at % iv,
            0,
            "{k}: PEXPIRETIME {at} not on a {iv} ms window edge"
        );
        assert!(
            *at > now && *at <= now + 2 * iv + 1000,
            "{k}: PEXPIRETIME {at} is not within 2 intervals of now {now}"
        );
    }

    // Replicated by effect: the replica never ran a module command.
    let stats = replica.info(&mut r, "commandstats");
    let verbatim: Vec<_> = stats
        .iter()
        .filter(|(k, _)| k.starts_with("cmdstat_fg.") || k.starts_with("cmdstat_cl."))
        .collect();
    assert!(
        verbatim.is_empty(),
        "module commands ran on the replica: {verbatim:?}"
    );
}
