//! "Semantics equal the core's": the module, driven with `TESTCLOCK yes` and
//! explicit `NOW` times, gives the same verdicts as the `floodgate` core crate
//! fed the same times; and CL.THROTTLE gives redis-cell's replies.

mod common;

use std::cell::{Cell, RefCell};

use common::*;
use floodgate::{Algorithm, IntervalLimit, Limiter, MaxZero, Shared, Window};
use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence, TestCaseError, TestRunner};

const REGRESSIONS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/proptest-regressions/semantics.txt"
);

fn runner(cases: u32) -> TestRunner {
    TestRunner::new(Config {
        cases: proptest_cases(cases),
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(REGRESSIONS))),
        ..Config::default()
    })
}

fn testclock_server() -> Server {
    Server::start(ServerOpts::new().module("TESTCLOCK yes"))
}

/// A base time (ns) a little in the future, on a multiple of `interval_ns`:
/// keys written with NOW >= base expire (2 intervals / TAT after) later than
/// the real clock gets during a case, so no state is lost to expiry.
fn base_for(interval_ns: u64) -> u64 {
    (now_ns() + 10 * S) / interval_ns * interval_ns
}

/// Turns raw generated steps into offsets from `base` (ns): bursts at one
/// time, small steps, times just around window edges (edge - 2 ..= edge + 2
/// ns), gaps of several intervals, and a few steps backwards. Offsets stay
/// under ~45 s so a case spans well under a minute of NOW time.
fn times(interval_ns: u64, steps: &[(u8, u64, i64)]) -> Vec<u64> {
    let mut t = interval_ns; // start in the second window: backwards steps can leave it
    let mut out = Vec::with_capacity(steps.len());
    for &(kind, a, b) in steps {
        let far = t > 40 * S;
        t = match kind {
            0..=39 => t,
            40..=64 => t + 1 + a % (interval_ns / 4).max(1_000_000),
            65..=84 if !far => {
                let edge = (t / interval_ns + 1 + a % 2) * interval_ns;
                edge.saturating_add_signed(b)
            }
            85..=94 if !far => t + interval_ns * (2 + a % 4) + a % interval_ns,
            95.. => t.saturating_sub(a % (interval_ns / 2 + 1)),
            _ => t + 1,
        };
        out.push(t);
    }
    out
}

fn steps_strategy(max: usize) -> impl Strategy<Value = Vec<(u8, u64, i64)>> {
    prop::collection::vec((0u8..100, any::<u64>(), -2i64..=2), 1..max)
}

const CHECK_ALGS: [&str; 6] = ["TAILDROP", "RED", "REDP", "SLIDING", "NOP", "GCRA"];
const INTERVALS_MS: [u64; 6] = [1, 3, 10, 100, 250, 1000];

/// A limit valid for the algorithm (RED, REDP and GCRA refuse 0).
fn limit_for(alg: &str, pick: u64) -> i64 {
    let limits = [0i64, 1, 2, 3, 5, 10, 50];
    let l = limits[(pick % limits.len() as u64) as usize];
    match alg {
        "RED" | "REDP" | "GCRA" if l == 0 => 1,
        _ => l,
    }
}

fn verdict_code(v: &Value) -> Option<i64> {
    match v {
        Value::Int(i) => Some(*i),
        _ => None,
    }
}

/// Describes a mismatch with enough context to replay it by hand.
fn mismatch(
    what: &str,
    i: usize,
    interval_ns: u64,
    offsets: &[u64],
    expected: i64,
    got: &Value,
) -> TestCaseError {
    let lo = i.saturating_sub(6);
    let ctx: Vec<String> = offsets[lo..=i]
        .iter()
        .map(|t| {
            format!(
                "{}.{:09}s(w{} +{}ns)",
                t / S,
                t % S,
                t / interval_ns,
                t % interval_ns
            )
        })
        .collect();
    TestCaseError::fail(format!(
        "{what}: event #{i}: core says {expected}, module replied {got:?}; \
         interval {interval_ns} ns; offsets from base (last few): {}",
        ctx.join(", ")
    ))
}

#[test]
fn fg_check_verdicts_equal_the_core_for_every_algorithm() {
    let server = testclock_server();
    let con = RefCell::new(server.con());
    let seq = Cell::new(0u64);
    let strategy = (0usize..6, 0usize..6, any::<u64>(), steps_strategy(150));
    runner(160)
        .run(&strategy, |(a, iv, lim, steps)| {
            let alg = CHECK_ALGS[a];
            let iv_ms = INTERVALS_MS[iv];
            let interval_ns = iv_ms * MS;
            let limit = limit_for(alg, lim);
            let offsets = times(interval_ns, &steps);
            let base = base_for(interval_ns);
            seq.set(seq.get() + 1);
            let key = format!("sem:check:{alg}:{}", seq.get());

            let algorithm = Algorithm::from_name(alg.as_bytes()).unwrap();
            let mut core =
                Limiter::new(algorithm, limit, Window::aligned(interval_ns, 0).unwrap()).unwrap();
            let cmds: Vec<Vec<String>> = offsets
                .iter()
                .map(|t| {
                    vec![
                        "FG.CHECK".into(),
                        key.clone(),
                        alg.into(),
                        limit.to_string(),
                        "INTERVAL".into(),
                        iv_ms.to_string(),
                        "NOW".into(),
                        (base + t).to_string(),
                    ]
                })
                .collect();
            let replies = pipeline(&mut con.borrow_mut(), &cmds);
            for (i, (t, reply)) in offsets.iter().zip(&replies).enumerate() {
                let expected = core.check(base + t, &Shared::default()).unwrap().code() as i64;
                if verdict_code(reply) != Some(expected) {
                    return Err(mismatch(
                        &format!("FG.CHECK {alg} limit {limit}"),
                        i,
                        interval_ns,
                        &offsets,
                        expected,
                        reply,
                    ));
                }
            }
            // FG.INFO reports the stored algorithm, limit and interval; a
            // pipe whose state is a fresh one's (a SLIDING pipe of limit 0
            // has passed nothing, so opened no window) is no key at all.
            let info = fg_info(&mut con.borrow_mut(), key.as_bytes());
            let field = |f: &str| info_get(&info, f);
            let last = base + offsets.last().copied().unwrap_or(0);
            if expiry(&core) <= last {
                prop_assert_eq!(field("algorithm"), None, "FG.INFO {:?}", info);
                return Ok(());
            }
            prop_assert_eq!(
                field("algorithm").map(|s| s.to_uppercase()),
                Some(alg.to_string())
            );
            if alg != "NOP" {
                prop_assert_eq!(
                    field("limit"),
                    Some(limit.to_string()),
                    "FG.INFO {:?}",
                    info
                );
            }
            // (The module reports interval_ms -1 for GCRA, which has no
            // window; not asserted there.)
            if alg != "GCRA" {
                prop_assert_eq!(
                    field("interval_ms"),
                    Some(iv_ms.to_string()),
                    "FG.INFO {:?}",
                    info
                );
            }
            Ok(())
        })
        .unwrap();
}

/// One event of the "stored pipe" property: which algorithm name, limit and
/// interval the caller passes (the pipe keeps its own), or a reset.
#[derive(Debug, Clone)]
enum Ev {
    Check {
        alg: usize,
        limit_pick: u64,
        iv: usize,
    },
    Reset,
}

fn ev_strategy() -> impl Strategy<Value = Ev> {
    prop_oneof![
        12 => Just(Ev::Check { alg: usize::MAX, limit_pick: u64::MAX, iv: usize::MAX }),
        2 => (0usize..6, any::<u64>(), 0usize..6)
            .prop_map(|(alg, limit_pick, iv)| Ev::Check { alg, limit_pick, iv }),
        1 => (any::<u64>()).prop_map(|p| Ev::Check { alg: usize::MAX, limit_pick: p, iv: usize::MAX }),
        1 => Just(Ev::Reset),
    ]
}

/// When the module lets a pipe's key go (spec: "Key expires 2 intervals
/// after its current window started (GCRA: at its TAT)"): from then on its
/// state is as good as a fresh one, and FG.RESET deletes it.
fn expiry(l: &Limiter) -> u64 {
    if let Limiter::Gcra(g) = l {
        return g.tat();
    }
    let c = l.window_counter().unwrap();
    c.state()
        .start()
        .map_or(0, |s| s.saturating_add(2 * c.window().interval()))
}

#[test]
fn fg_check_keeps_the_stored_algorithm_and_window_and_replaces_the_limit() {
    // Spec: FG.CHECK "creates the pipe or keeps its stored algorithm (and its
    // window) and replaces the limit if limit > 0"; FG.RESET "1 if the key
    // existed (window counter zeroed now / GCRA history forgotten)".
    // Core model: Limiter::set_limit when limit > 0, Limiter::reset on
    // FG.RESET; a reset whose pipe is then due (GCRA always, else 2
    // intervals past its window start) deletes the key, so the next
    // FG.CHECK creates a new pipe from its own arguments.
    let server = testclock_server();
    let con = RefCell::new(server.con());
    let seq = Cell::new(0u64);
    let strategy = (
        0usize..6,
        0usize..6,
        any::<u64>(),
        prop::collection::vec((ev_strategy(), (0u8..100, any::<u64>(), -2i64..=2)), 1..120),
    );
    runner(128)
        .run(&strategy, |(a, iv, lim, events)| {
            let alg = CHECK_ALGS[a];
            let iv_ms = INTERVALS_MS[iv];
            let interval_ns = iv_ms * MS;
            let limit = limit_for(alg, lim);
            let steps: Vec<(u8, u64, i64)> = events.iter().map(|e| e.1).collect();
            let offsets = times(interval_ns, &steps);
            let base = base_for(interval_ns);
            seq.set(seq.get() + 1);
            let key = format!("sem:stored:{alg}:{}", seq.get());

            // The commands: the first creates the pipe as chosen; later
            // checks pass the stored pipe's arguments or other ones.
            let mut cmds: Vec<Vec<String>> = Vec::new();
            for (i, ((ev, _), t)) in events.iter().zip(&offsets).enumerate() {
                let now = (base + t).to_string();
                let (name, lim, ivm) = match ev {
                    Ev::Reset if i > 0 => {
                        cmds.push(vec!["FG.RESET".into(), key.clone(), "NOW".into(), now]);
                        continue;
                    }
                    Ev::Check {
                        alg: ca,
                        limit_pick,
                        iv: civ,
                    } if i > 0 => (
                        if *ca == usize::MAX { alg } else { CHECK_ALGS[*ca] },
                        if *limit_pick == u64::MAX {
                            limit
                        } else {
                            limit_for("RED", *limit_pick) // > 0: valid for every algorithm
                        },
                        if *civ == usize::MAX { iv_ms } else { INTERVALS_MS[*civ] },
                    ),
                    _ => (alg, limit, iv_ms),
                };
                cmds.push(vec![
                    "FG.CHECK".into(),
                    key.clone(),
                    if i % 2 == 0 { name.to_lowercase() } else { name.to_string() },
                    lim.to_string(),
                    "INTERVAL".into(),
                    ivm.to_string(),
                    "NOW".into(),
                    now,
                ]);
            }
            let replies = pipeline(&mut con.borrow_mut(), &cmds);

            let mut core: Option<Limiter> = None;
            for (i, ((c, t), reply)) in cmds.iter().zip(&offsets).zip(&replies).enumerate() {
                let now = base + t;
                if c[0] == "FG.RESET" {
                    let expected = match core.as_mut() {
                        None => 0,
                        Some(l) => {
                            l.reset();
                            if l.algorithm() == Algorithm::Gcra || expiry(l) <= now {
                                core = None;
                            }
                            1
                        }
                    };
                    if verdict_code(reply) != Some(expected) {
                        return Err(mismatch(
                            &format!("{c:?}"),
                            i,
                            interval_ns,
                            &offsets,
                            expected,
                            reply,
                        ));
                    }
                    continue;
                }
                let lim: i64 = c[3].parse().unwrap();
                let l = match core.as_mut() {
                    Some(l) => {
                        if lim > 0 {
                            l.set_limit(lim).unwrap();
                        }
                        l
                    }
                    None => {
                        let algorithm = Algorithm::from_name(c[2].as_bytes()).unwrap();
                        let ivm: u64 = c[5].parse().unwrap();
                        let w = Window::aligned(ivm * MS, 0).unwrap();
                        core.insert(Limiter::new(algorithm, lim, w).unwrap())
                    }
                };
                let expected = l.check(now, &Shared::default()).unwrap().code() as i64;
                if verdict_code(reply) != Some(expected) {
                    return Err(mismatch(
                        &format!(
                            "stored {:?} (created {alg} limit {limit} interval {iv_ms} ms); call {c:?}",
                            l.algorithm()
                        ),
                        i,
                        interval_ns,
                        &offsets,
                        expected,
                        reply,
                    ));
                }
                // A state as good as a fresh one is not stored (a SLIDING
                // pipe of limit 0 that has passed nothing opened no window).
                if expiry(l) <= now {
                    core = None;
                }
            }
            Ok(())
        })
        .unwrap();
}

#[test]
fn fg_rate_verdicts_equal_the_core_interval_limit() {
    let server = testclock_server();
    let con = RefCell::new(server.con());
    let seq = Cell::new(0u64);
    let strategy = (
        0usize..6, // max
        0usize..6, // interval
        0usize..3, // anchor: omitted / ALIGNED / FIRST
        0usize..4, // MAXZERO: omitted / REFUSE / MODHASH / UNLIMITED
        steps_strategy(150),
    );
    runner(160)
        .run(&strategy, |(m, iv, anchor, mz, steps)| {
            let max = [-1i64, 0, 1, 2, 3, 5][m];
            let iv_ms = INTERVALS_MS[iv];
            let interval_ns = iv_ms * MS;
            let offsets = times(interval_ns, &steps);
            let base = base_for(interval_ns);
            seq.set(seq.get() + 1);
            let key = format!("sem:rate:{}", seq.get());
            let window = if anchor == 2 {
                Window::first_event(interval_ns).unwrap()
            } else {
                Window::aligned(interval_ns, 0).unwrap()
            };
            let zero = [
                MaxZero::RefuseAll,
                MaxZero::RefuseAll,
                MaxZero::ModHash,
                MaxZero::Unlimited,
            ][mz];
            let mut core = IntervalLimit::new(max as i32, window, zero);
            let mut args: Vec<String> = vec![
                "FG.RATE".into(),
                key.clone(),
                max.to_string(),
                iv_ms.to_string(),
            ];
            match anchor {
                1 => args.push("ALIGNED".into()),
                2 => args.push("FIRST".into()),
                _ => {}
            }
            if mz > 0 {
                args.push("MAXZERO".into());
                args.push(["", "REFUSE", "MODHASH", "UNLIMITED"][mz].into());
            }
            let cmds: Vec<Vec<String>> = offsets
                .iter()
                .map(|t| {
                    let mut c = args.clone();
                    c.push("NOW".into());
                    c.push((base + t).to_string());
                    c
                })
                .collect();
            let replies = pipeline(&mut con.borrow_mut(), &cmds);
            for (i, (t, reply)) in offsets.iter().zip(&replies).enumerate() {
                let expected = core.check(base + t).code() as i64;
                if verdict_code(reply) != Some(expected) {
                    return Err(mismatch(
                        &args.join(" "),
                        i,
                        interval_ns,
                        &offsets,
                        expected,
                        reply,
                    ));
                }
            }
            Ok(())
        })
        .unwrap();
}

// ------------------------------------------------------------ CL.THROTTLE

/// redis-cell's GCRA, the reference for CL.THROTTLE's reply:
///
/// * `T = period / count` (emission interval), tolerance `tau = T * (max_burst + 1)`
/// * `tat` = the stored theoretical arrival time, or `now` if none (or stale)
/// * `new_tat = max(tat, now) + q * T`; limited iff `now < new_tat - tau`
/// * `ttl = new_tat - now` if allowed (and `tat := new_tat`), else `tat - now`
/// * `remaining = floor((tau - ttl) / T)` (never below 0)
/// * `retry_after = ceil((new_tat - tau - now) / 1 s)` when limited and
///   `q * T <= tau` (the request could ever pass), else `-1`
/// * `reset_after = ceil(ttl / 1 s)`; `limit = max_burst + 1`
/// * `ceil` is redis-cell 0.3's: whole seconds, plus one when the rest holds
///   at least one whole millisecond (a rest under 1 ms is dropped)
///
/// Reply: `[limited, limit, remaining, retry_after, reset_after]`.
struct CellModel {
    t: u64,
    tau: u64,
    limit: i64,
    tat: Option<u64>,
}

impl CellModel {
    fn new(max_burst: u64, count: u64, period_s: u64) -> CellModel {
        let t = period_s * S / count;
        CellModel {
            t,
            tau: t * (max_burst + 1),
            limit: max_burst as i64 + 1,
            tat: None,
        }
    }

    fn throttle(&mut self, now: u64, q: u64) -> [i64; 5] {
        let ceil_s = |ns: u64| (ns / S + u64::from(ns % S >= MS)) as i64;
        let tat = self.tat.unwrap_or(now).max(now);
        let inc = q * self.t;
        let new_tat = tat + inc;
        let allow_at = new_tat.saturating_sub(self.tau);
        let (limited, ttl, retry) = if now < allow_at {
            let retry = if inc <= self.tau {
                ceil_s(allow_at - now)
            } else {
                -1
            };
            (1, tat - now, retry)
        } else {
            self.tat = Some(new_tat);
            (0, new_tat - now, -1)
        };
        let remaining = (self.tau.saturating_sub(ttl) / self.t) as i64;
        [limited, self.limit, remaining, retry, ceil_s(ttl)]
    }
}

fn ints(v: &Value) -> Option<Vec<i64>> {
    match v {
        Value::Array(a) => a.iter().map(verdict_code).collect(),
        _ => None,
    }
}

#[test]
fn cl_throttle_replays_redis_cells_case_table() {
    // redis-cell's own test (src/cell/mod.rs, it_rate_limits): max_burst 4,
    // 1 per 1 s, so limit 5. (offset ms, quantity, remaining, reset_after s,
    // retry_after s, limited) as in that table, seconds rounded up as the
    // module's reply does.
    let table: [(u64, u64, i64, i64, i64, i64); 15] = [
        (0, 6, 5, 0, -1, 1), // larger than the burst: never allowed
        (0, 1, 4, 1, -1, 0),
        (0, 1, 3, 2, -1, 0),
        (0, 1, 2, 3, -1, 0),
        (0, 1, 1, 4, -1, 0),
        (0, 1, 0, 5, -1, 0),
        (0, 1, 0, 5, 1, 1),
        (3000, 1, 2, 3, -1, 0),
        (3100, 1, 1, 4, -1, 0), // reset 3.9 s -> 4
        (4000, 1, 1, 4, -1, 0),
        (8000, 1, 4, 1, -1, 0),
        (9500, 1, 4, 1, -1, 0),
        (9500, 0, 4, 1, -1, 0), // quantity 0 peeks
        (9500, 2, 2, 3, -1, 0),
        (9500, 5, 2, 3, 3, 1),
    ];
    let server = testclock_server();
    let mut con = server.con();
    let base = base_for(S);
    let mut model = CellModel::new(4, 1, 1);
    for (i, &(off, q, remaining, reset, retry, limited)) in table.iter().enumerate() {
        let expected = [limited, 5, remaining, retry, reset];
        // The model encodes the formula; it must reproduce redis-cell's table.
        assert_eq!(
            model.throttle(base + off * MS, q),
            expected,
            "model vs redis-cell table, case {i}"
        );
        let now = (base + off * MS).to_string();
        let q = q.to_string();
        let reply = call(
            &mut con,
            &["CL.THROTTLE", "cell:table", "4", "1", "1", &q, "NOW", &now],
        );
        assert_eq!(
            ints(&reply),
            Some(expected.to_vec()),
            "CL.THROTTLE cell:table 4 1 1 {q} at +{off} ms (redis-cell case {i})"
        );
    }
    // Quantity defaults to 1.
    let now = (base + 20_000 * MS).to_string();
    let reply = call(
        &mut con,
        &["CL.THROTTLE", "cell:table", "4", "1", "1", "NOW", &now],
    );
    assert_eq!(
        ints(&reply),
        Some(model.throttle(base + 20_000 * MS, 1).to_vec()),
        "CL.THROTTLE without quantity"
    );
    // A million a second: every time left is under a millisecond, which
    // redis-cell rounds down to 0 s, a limited call's retry_after too.
    let mut fast = CellModel::new(100, 1_000_000, 1);
    for (q, expected) in [
        (1, [0, 101, 100, -1, 0]),
        (100, [0, 101, 0, -1, 0]),
        (1, [1, 101, 0, 0, 0]),
    ] {
        assert_eq!(fast.throttle(base, q), expected, "model, quantity {q}");
        let reply = call(
            &mut con,
            &[
                "CL.THROTTLE",
                "cell:fast",
                "100",
                "1000000",
                "1",
                &q.to_string(),
                "NOW",
                &base.to_string(),
            ],
        );
        assert_eq!(
            ints(&reply),
            Some(expected.to_vec()),
            "cell:fast, quantity {q}"
        );
    }
}

#[test]
fn cl_throttle_replies_equal_the_gcra_model() {
    let server = testclock_server();
    let con = RefCell::new(server.con());
    let seq = Cell::new(0u64);
    let strategy = (
        0u64..5,                                          // max_burst
        prop::sample::select(vec![1u64, 2, 4, 5, 8, 10]), // count
        prop::sample::select(vec![1u64, 2, 10, 60]),      // period s
        prop::collection::vec((0u8..100, any::<u64>(), 0u64..100), 1..80),
    );
    runner(128)
        .run(&strategy, |(burst, count, period, events)| {
            let mut model = CellModel::new(burst, count, period);
            let t_ms = period * 1000 / count;
            let base = base_for(S);
            seq.set(seq.get() + 1);
            let key = format!("sem:cell:{}", seq.get());
            let mut off_ms = 0u64;
            let mut cmds = Vec::new();
            let mut plan = Vec::new();
            for &(kind, a, qp) in &events {
                off_ms += match kind {
                    0..=39 => 0,
                    40..=79 => a % t_ms + 1,
                    80..=94 => t_ms * (a % 3 + 1),
                    _ => t_ms * (burst + 2) + a % 1000,
                };
                let q = match qp {
                    0..=69 => 1,
                    70..=79 => 0,
                    80..=94 => qp % (burst + 2) + 1,
                    _ => qp % 8,
                };
                let now = base + off_ms * MS;
                let mut c = vec![
                    "CL.THROTTLE".to_string(),
                    key.clone(),
                    burst.to_string(),
                    count.to_string(),
                    period.to_string(),
                ];
                if q != 1 || a % 2 == 0 {
                    c.push(q.to_string());
                }
                c.push("NOW".into());
                c.push(now.to_string());
                cmds.push(c);
                plan.push((now, q));
            }
            let replies = pipeline(&mut con.borrow_mut(), &cmds);
            for (i, ((now, q), reply)) in plan.iter().zip(&replies).enumerate() {
                let expected = model.throttle(*now, *q).to_vec();
                prop_assert_eq!(
                    ints(reply),
                    Some(expected),
                    "event #{} {:?} (+{} ms)",
                    i,
                    cmds[i],
                    (now - base) / MS
                );
            }
            Ok(())
        })
        .unwrap();
}

#[test]
fn module_arguments_set_the_default_interval() {
    // Default INTERVAL is 10000 ms.
    let s = testclock_server();
    let mut con = s.con();
    assert_eq!(int(&cmd(&mut con, "FG.CHECK d TAILDROP 3")), 1);
    let info = fg_info(&mut con, b"d");
    assert_eq!(
        info_get(&info, "interval_ms").as_deref(),
        Some("10000"),
        "{info:?}"
    );
    // Argument names are case-insensitive.
    let s2 = Server::start(ServerOpts::new().module("interval 5000 testclock YES"));
    let mut con2 = s2.con();
    let now = (base_for(5000 * MS) + 4999 * MS).to_string();
    for _ in 0..3 {
        assert_eq!(
            int(&call(
                &mut con2,
                &["FG.CHECK", "d", "TAILDROP", "3", "NOW", &now]
            )),
            1
        );
    }
    assert_eq!(
        int(&call(
            &mut con2,
            &["FG.CHECK", "d", "TAILDROP", "3", "NOW", &now]
        )),
        -1
    );
    let info = fg_info(&mut con2, b"d");
    assert_eq!(
        info_get(&info, "interval_ms").as_deref(),
        Some("5000"),
        "{info:?}"
    );
    // 1 ms later is the next 5 s window.
    let next = (base_for(5000 * MS) + 5000 * MS).to_string();
    assert_eq!(
        int(&call(
            &mut con2,
            &["FG.CHECK", "d", "TAILDROP", "3", "NOW", &next]
        )),
        1
    );
}

// ------------------------------------------------------------ slots and hubs

fn lease_of(reply: &Value) -> Option<Vec<u8>> {
    let a = array(reply);
    assert_eq!(a.len(), 2, "{reply:?}");
    match (&a[0], &a[1]) {
        (Value::Int(1), l) | (Value::BulkString(_), l) => {
            let l = bytes(l);
            assert!(
                l.len() == 16 && l.iter().all(u8::is_ascii_hexdigit),
                "lease {l:?} is not 16 hex chars"
            );
            Some(l)
        }
        (Value::Int(0) | Value::Nil, Value::BulkString(e)) if e.is_empty() => None,
        _ => panic!("unexpected reply {reply:?}"),
    }
}

#[test]
fn acquire_release_and_hold_follow_the_spec() {
    let s = testclock_server();
    let mut con = s.con();
    let t0 = base_for(S);
    let at = |ms: u64| (t0 + ms * MS).to_string();
    let acquire = |con: &mut Connection, key: &str, max: &str, hold: &str, ms: u64| {
        lease_of(&call(
            con,
            &["FG.ACQUIRE", key, max, "HOLD", hold, "NOW", &at(ms)],
        ))
    };

    // max < 0 counts only; max 0 refuses all.
    let mut leases = Vec::new();
    for i in 0..5 {
        leases.push(acquire(&mut con, "neg", "-1", "60000", i).expect("max -1 never refuses"));
    }
    let mut sorted = leases.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), 5, "leases are distinct: {leases:?}");
    assert_eq!(
        int(&call(&mut con, &["FG.USAGE", "neg", "NOW", &at(10)])),
        5
    );
    assert_eq!(acquire(&mut con, "zero", "0", "60000", 0), None);

    // A lease not released frees its slot after HOLD.
    let first = acquire(&mut con, "h", "1", "1000", 0).unwrap();
    assert_eq!(
        acquire(&mut con, "h", "1", "1000", 999),
        None,
        "slot still held"
    );
    assert_eq!(int(&call(&mut con, &["FG.USAGE", "h", "NOW", &at(999)])), 1);
    assert_eq!(
        int(&call(&mut con, &["FG.USAGE", "h", "NOW", &at(1000)])),
        0
    );
    let second = acquire(&mut con, "h", "1", "1000", 1000).expect("freed after HOLD");
    assert_ne!(first, second);
    // The expired lease is unknown now; the live one releases once.
    let release = |con: &mut Connection, key: &str, lease: &[u8], ms: u64| {
        int(&call(
            con,
            &[
                b"FG.RELEASE",
                key.as_bytes(),
                lease,
                b"NOW",
                at(ms).as_bytes(),
            ],
        ))
    };
    assert_eq!(release(&mut con, "h", &first, 1001), 0, "expired lease");
    assert_eq!(release(&mut con, "h", &second, 1001), 1);
    assert_eq!(release(&mut con, "h", &second, 1002), 0, "released twice");
    assert_eq!(
        release(&mut con, "missing", &second, 1002),
        0,
        "missing key"
    );
    assert_eq!(
        int(&call(&mut con, &["FG.USAGE", "h", "NOW", &at(1003)])),
        0
    );
    assert_eq!(int(&call(&mut con, &["FG.USAGE", "missing"])), 0);

    // FG.RESET leaves slots alone.
    let _ = acquire(&mut con, "r", "3", "60000", 0).unwrap();
    assert_eq!(int(&call(&mut con, &["FG.RESET", "r", "NOW", &at(1)])), 1);
    assert_eq!(int(&call(&mut con, &["FG.USAGE", "r", "NOW", &at(2)])), 1);

    // Default HOLD is 4 h: the key lives that long (real clock here).
    assert!(lease_of(&cmd(&mut con, "FG.ACQUIRE d 1")).is_some());
    let pttl = int(&cmd(&mut con, "PTTL d"));
    assert!(
        (14_400_000 - 5_000..=14_400_000).contains(&pttl),
        "default HOLD: PTTL {pttl}"
    );
}

#[test]
fn hub_picks_the_emptiest_member_and_respects_both_limits() {
    let s = testclock_server();
    let mut con = s.con();
    let t0 = base_for(S);
    let at = |ms: u64| (t0 + ms * MS).to_string();
    let hub = |con: &mut Connection, args: &str, ms: u64| {
        let mut argv: Vec<String> = vec!["FG.HUB".into()];
        argv.extend(args.split_whitespace().map(String::from));
        argv.extend(["NOW".to_string(), at(ms)]);
        let r = call(con, &argv);
        let member = match &array(&r)[0] {
            Value::Nil => None,
            m => Some(string(m)),
        };
        (member, lease_of(&r))
    };

    // No total (-1): fewest held first, ties to the first listed, up to 2 each.
    let picks: Vec<Option<String>> = (0..7)
        .map(|i| hub(&mut con, "h1 2 -1 a b c HOLD 60000", i).0)
        .collect();
    let want = ["a", "b", "c", "a", "b", "c"];
    let mut expected: Vec<Option<String>> = want.iter().map(|m| Some(m.to_string())).collect();
    expected.push(None);
    assert_eq!(picks, expected);
    assert_eq!(int(&call(&mut con, &["FG.USAGE", "h1", "NOW", &at(10)])), 6);

    // Total 4 binds before per-member 5.
    let mut leases = Vec::new();
    for (i, m) in ["a", "b", "a", "b"].iter().enumerate() {
        let (member, lease) = hub(&mut con, "h2 5 4 a b HOLD 60000", i as u64);
        assert_eq!(member.as_deref(), Some(*m));
        leases.push(lease.unwrap());
    }
    assert_eq!(hub(&mut con, "h2 5 4 a b HOLD 60000", 5), (None, None));
    // Release one of a's: a is the emptiest again.
    let r = call(
        &mut con,
        &[
            b"FG.RELEASE",
            &b"h2"[..],
            &leases[0],
            b"NOW",
            at(6).as_bytes(),
        ],
    );
    assert_eq!(int(&r), 1);
    assert_eq!(
        hub(&mut con, "h2 5 4 a b HOLD 60000", 7).0.as_deref(),
        Some("a")
    );

    // Leases expire after HOLD and free their member.
    assert_eq!(
        hub(&mut con, "h3 1 1 x HOLD 1000", 0).0.as_deref(),
        Some("x")
    );
    assert_eq!(hub(&mut con, "h3 1 1 x HOLD 1000", 999).0, None);
    assert_eq!(
        hub(&mut con, "h3 1 1 x HOLD 1000", 1000).0.as_deref(),
        Some("x")
    );
}

#[test]
fn commands_declare_their_flags_and_key() {
    let s = testclock_server();
    let mut con = s.con();
    for (name, flag) in [
        ("fg.check", "denyoom"),
        ("fg.rate", "denyoom"),
        ("fg.acquire", "denyoom"),
        ("fg.release", "write"),
        ("fg.hub", "denyoom"),
        ("fg.reset", "write"),
        ("cl.throttle", "denyoom"),
        ("fg.usage", "readonly"),
        ("fg.info", "readonly"),
    ] {
        let info = array(&cmd(&mut con, &format!("COMMAND INFO {name}")));
        let entry = array(&info[0]);
        assert_eq!(string(&entry[0]), name);
        let flags: Vec<String> = array(&entry[2]).iter().map(string).collect();
        assert!(
            flags.iter().any(|f| f == flag),
            "{name}: flags {flags:?} lack {flag}"
        );
        if flag == "readonly" {
            assert!(!flags.iter().any(|f| f == "write"), "{name}: {flags:?}");
        } else {
            assert!(flags.iter().any(|f| f == "write"), "{name}: {flags:?}");
        }
        assert_eq!(
            (int(&entry[3]), int(&entry[4]), int(&entry[5])),
            (1, 1, 1),
            "{name}: first/last/step"
        );
    }
    let keys = array(&cmd(
        &mut con,
        "COMMAND GETKEYS FG.HUB hubkey 1 2 a b HOLD 5",
    ));
    assert_eq!(keys.iter().map(string).collect::<Vec<_>>(), ["hubkey"]);
    let keys = array(&cmd(&mut con, "COMMAND GETKEYS CL.THROTTLE cellkey 4 1 1"));
    assert_eq!(keys.iter().map(string).collect::<Vec<_>>(), ["cellkey"]);
}
