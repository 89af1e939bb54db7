//! `FG.CHECK` (pipelimit's `pl_check`), `FG.RATE` (FreeSWITCH `max/interval`),
//! `FG.RESET` and `FG.INFO`: the windowed limiters, run by the core.
//!
//! A key lives until its state equals a fresh one: two intervals after its
//! current window started (by then the last window is an empty one and the
//! counter is 0), or, for GCRA, until its theoretical arrival time.

use floodgate::{Algorithm, Anchor, IntervalLimit, Limiter, MaxZero, Shared, Window};

use crate::args::{self, is, CmdError};
use crate::cmd::{Effect, Env, Outcome, Reply};
use crate::leases;
use crate::value::Value;

/// The algorithms `FG.CHECK` runs, for error messages.
const CHECK_ALGORITHMS: &str = "TAILDROP, RED, REDP, SLIDING, NOP or GCRA";

/// When a limiter's state is no different from a fresh one's.
pub fn expiry(l: &Limiter) -> u64 {
    if let Limiter::Gcra(g) = l {
        return g.tat();
    }
    match l.window_counter() {
        Some(c) => match c.state().start() {
            Some(start) => start.saturating_add(c.window().interval().saturating_mul(2)),
            None => 0,
        },
        None => 0,
    }
}

fn check_algorithm(arg: &[u8]) -> Result<Algorithm, CmdError> {
    let a = Algorithm::from_name(arg).ok_or_else(|| {
        CmdError::msg(format!(
            "unknown algorithm '{}' (use {CHECK_ALGORITHMS})",
            args::show(arg)
        ))
    })?;
    match a {
        Algorithm::Feedback | Algorithm::Network => Err(CmdError::msg(format!(
            "{} depends on one host's {}: use it in floodgate's Kamailio module, not cluster-wide",
            a.name(),
            if a == Algorithm::Feedback {
                "CPU load"
            } else {
                "network queues"
            }
        ))),
        Algorithm::Interval => Err(CmdError::msg(
            "INTERVAL is FreeSWITCH's max/interval limit: use FG.RATE",
        )),
        Algorithm::Slots => Err(CmdError::msg("SLOTS are concurrent slots: use FG.ACQUIRE")),
        _ => Ok(a),
    }
}

/// Turns a core error into a reply naming the argument.
pub fn core_err(e: floodgate::Error, what: &str) -> CmdError {
    CmdError::msg(format!("{what}: {e}"))
}

/// Counts and decides one request at `now`; the pipe or rate is stored as
/// `kind` wraps it, until its state equals a fresh one.
fn decide(mut l: Limiter, kind: fn(Limiter) -> Value, now: u64) -> Result<Outcome, CmdError> {
    let verdict = l
        .check(now, &Shared::default())
        .map_err(|e| core_err(e, "check"))?;
    Ok(Outcome {
        reply: Reply::Int(verdict.code().into()),
        effect: Effect::set(kind(l), expiry(&l), now),
    })
}

/// `FG.CHECK key algorithm limit [INTERVAL ms]`: 1 pass, -1 drop, 2 NOP.
pub fn check(a: &[&[u8]], old: Option<Value>, env: &mut Env) -> Result<Outcome, CmdError> {
    let interval = match a {
        [_, _] => env.default_interval,
        [_, _, opt, ms] if is(opt, "INTERVAL") => args::millis(ms, "INTERVAL")?,
        [_, _, opt, _] => {
            return Err(CmdError::msg(format!(
                "unknown option '{}' (INTERVAL ms)",
                args::show(opt)
            )))
        }
        _ => return Err(CmdError::WrongArity),
    };
    let algorithm = check_algorithm(a[0])?;
    let limit = args::int(a[1], "limit")?;
    let l = match old {
        None => Limiter::new(
            algorithm,
            limit,
            Window::aligned(interval, 0).map_err(|e| core_err(e, "INTERVAL"))?,
        )
        .map_err(|e| core_err(e, "limit"))?,
        Some(Value::Pipe(mut l)) => {
            if limit > 0 {
                l.set_limit(limit).map_err(|e| core_err(e, "limit"))?;
            }
            l
        }
        Some(_) => return Err(CmdError::WrongType),
    };
    decide(l, Value::Pipe, env.now)
}

/// `FG.RATE key max interval_ms [ALIGNED|FIRST] [MAXZERO REFUSE|MODHASH|UNLIMITED]`.
pub fn rate(a: &[&[u8]], old: Option<Value>, env: &mut Env) -> Result<Outcome, CmdError> {
    if a.len() < 2 {
        return Err(CmdError::WrongArity);
    }
    let max = args::int_in(a[0], "max", i32::MIN.into(), i32::MAX.into())? as i32;
    let interval = args::millis(a[1], "interval")?;
    let mut anchor = Anchor::Aligned { epoch: 0 };
    let mut zero = MaxZero::RefuseAll;
    let mut rest = &a[2..];
    while let [opt, tail @ ..] = rest {
        rest = tail;
        if is(opt, "ALIGNED") {
            anchor = Anchor::Aligned { epoch: 0 };
        } else if is(opt, "FIRST") {
            anchor = Anchor::FirstEvent;
        } else if is(opt, "MAXZERO") {
            let [mode, tail @ ..] = rest else {
                return Err(CmdError::msg("MAXZERO needs REFUSE, MODHASH or UNLIMITED"));
            };
            rest = tail;
            zero = if is(mode, "REFUSE") {
                MaxZero::RefuseAll
            } else if is(mode, "MODHASH") {
                MaxZero::ModHash
            } else if is(mode, "UNLIMITED") {
                MaxZero::Unlimited
            } else {
                return Err(CmdError::msg(format!(
                    "MAXZERO must be REFUSE, MODHASH or UNLIMITED, not '{}'",
                    args::show(mode)
                )));
            };
        } else {
            return Err(CmdError::msg(format!(
                "unknown option '{}' (ALIGNED, FIRST or MAXZERO mode)",
                args::show(opt)
            )));
        }
    }
    let l = match old {
        None => {
            let w = Window::new(interval, anchor).map_err(|e| core_err(e, "interval"))?;
            Limiter::Interval(IntervalLimit::new(max, w, zero))
        }
        Some(Value::Rate(mut l)) => {
            l.set_limit(max.into()).map_err(|e| core_err(e, "max"))?;
            l
        }
        Some(_) => return Err(CmdError::WrongType),
    };
    decide(l, Value::Rate, env.now)
}

/// `FG.RESET key`: zeroes a window's counter now, forgets a GCRA's history
/// (which leaves nothing to keep: the key goes); slots are untouched
/// (release them). 1 if the key existed, else 0.
pub fn reset(a: &[&[u8]], old: Option<Value>, env: &mut Env) -> Result<Outcome, CmdError> {
    if !a.is_empty() {
        return Err(CmdError::WrongArity);
    }
    let reset = |mut l: Limiter| {
        l.reset();
        (l, expiry(&l))
    };
    Ok(match old {
        None => Outcome::keep(Reply::Int(0)),
        Some(Value::Pipe(Limiter::Gcra(_))) | Some(Value::Throttle(_)) => Outcome {
            reply: Reply::Int(1),
            effect: Effect::Delete,
        },
        Some(Value::Pipe(l)) => {
            let (l, until) = reset(l);
            Outcome {
                reply: Reply::Int(1),
                effect: Effect::set(Value::Pipe(l), until, env.now),
            }
        }
        Some(Value::Rate(l)) => {
            let (l, until) = reset(l);
            Outcome {
                reply: Reply::Int(1),
                effect: Effect::set(Value::Rate(l), until, env.now),
            }
        }
        Some(Value::Slots(_)) | Some(Value::Hub(_)) => Outcome::keep(Reply::Int(1)),
    })
}

fn field(out: &mut Vec<Reply>, name: &str, v: Reply) {
    out.push(Reply::text(name));
    out.push(v);
}

/// `FG.INFO key`: field/value pairs (empty for a missing key).
pub fn info(a: &[&[u8]], old: Option<Value>, env: &mut Env) -> Result<Outcome, CmdError> {
    if !a.is_empty() {
        return Err(CmdError::WrongArity);
    }
    let mut out: Vec<Reply> = Vec::new();
    match old {
        None => {}
        Some(v @ (Value::Pipe(_) | Value::Rate(_))) => {
            let kind = if matches!(v, Value::Pipe(_)) {
                "pipe"
            } else {
                "rate"
            };
            let (Value::Pipe(l) | Value::Rate(l)) = v else {
                return Err(CmdError::WrongType);
            };
            let s = l.stats(env.now, &Shared::default(), 0);
            field(&mut out, "kind", Reply::text(kind));
            field(&mut out, "algorithm", Reply::text(s.algorithm.name()));
            field(&mut out, "limit", Reply::Int(s.limit));
            field(&mut out, "counter", Reply::Int(s.counter.into()));
            field(&mut out, "last_counter", Reply::Int(s.last_counter.into()));
            let (start, interval) = match (&l, l.window_counter()) {
                (_, Some(c)) => (
                    c.state().start().map_or(-1, |s| (s / args::MS) as i64),
                    (c.window().interval() / args::MS) as i64,
                ),
                // GCRA: no window; its period is the interval it was given.
                (Limiter::Gcra(g), None) => (-1, (g.period() / args::MS) as i64),
                _ => (-1, -1),
            };
            field(&mut out, "window_start_ms", Reply::Int(start));
            field(&mut out, "interval_ms", Reply::Int(interval));
            if let Limiter::Gcra(g) = l {
                field(&mut out, "tat_ms", Reply::Int((g.tat() / args::MS) as i64));
            }
            field(&mut out, "slots_held", Reply::Int(0));
        }
        Some(v @ (Value::Slots(_) | Value::Hub(_))) => {
            let hub = matches!(v, Value::Hub(_));
            let (Value::Slots(ls) | Value::Hub(ls)) = v else {
                return Err(CmdError::WrongType);
            };
            field(
                &mut out,
                "kind",
                Reply::text(if hub { "hub" } else { "slots" }),
            );
            field(&mut out, "algorithm", Reply::text("SLOTS"));
            field(&mut out, "limit", Reply::Int(ls.max.into()));
            if hub {
                field(&mut out, "total_max", Reply::Int(ls.total_max.into()));
            }
            let live = leases::live(&ls, env.now);
            field(&mut out, "slots_held", Reply::Int(live.len() as i64));
            if hub {
                for (member, n) in leases::per_member(&live) {
                    out.push(Reply::Text([b"member:", member.as_slice()].concat()));
                    out.push(Reply::Int(n as i64));
                }
            }
        }
        Some(Value::Throttle(tat)) => {
            field(&mut out, "kind", Reply::text("throttle"));
            field(&mut out, "algorithm", Reply::text("GCRA"));
            field(&mut out, "tat_ms", Reply::Int((tat / args::MS) as i64));
        }
    }
    Ok(Outcome::keep(Reply::Array(out)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::Ids;

    const S: u64 = 1_000_000_000;

    fn env(now: u64) -> Env {
        Env {
            now,
            default_interval: 10 * S,
            ids: Ids(1),
        }
    }

    /// Runs a command on `state` at `now`, keeping what it writes.
    fn run(
        f: crate::store::Handler,
        a: &[&str],
        state: &mut Option<Value>,
        now: u64,
    ) -> Result<Reply, CmdError> {
        let a: Vec<&[u8]> = a.iter().map(|s| s.as_bytes()).collect();
        let out = f(&a, state.clone(), &mut env(now))?;
        match out.effect {
            Effect::Keep => {}
            Effect::Set(v, until) => {
                assert!(until > now);
                *state = Some(v);
            }
            Effect::Delete => *state = None,
        }
        Ok(out.reply)
    }

    #[test]
    fn taildrop_counts_per_aligned_window_and_keeps_its_algorithm() {
        let mut st = None;
        let t0 = 1_000 * S;
        let v: Vec<Reply> = (0..4)
            .map(|i| run(check, &["TAILDROP", "3"], &mut st, t0 + i).unwrap())
            .collect();
        assert_eq!(
            v,
            [Reply::Int(1), Reply::Int(1), Reply::Int(1), Reply::Int(-1)]
        );
        // The stored algorithm stays; a limit > 0 replaces the limit.
        assert_eq!(
            run(check, &["RED", "5"], &mut st, t0 + 5),
            Ok(Reply::Int(1))
        );
        assert!(matches!(st, Some(Value::Pipe(Limiter::Taildrop(_)))));
        assert_eq!(
            run(check, &["RED", "0"], &mut st, t0 + 6),
            Ok(Reply::Int(-1))
        );
        assert_eq!(
            run(check, &["TAILDROP", "3"], &mut st, t0 + 10 * S),
            Ok(Reply::Int(1))
        );
    }

    #[test]
    fn a_pipe_lives_two_intervals_from_its_window_start_and_gcra_until_its_tat() {
        let t0 = 1_000 * S + 3 * S;
        let a: Vec<&[u8]> = vec![b"NOP", b"0", b"INTERVAL", b"2000"];
        let out = check(&a, None, &mut env(t0)).unwrap();
        assert_eq!(out.reply, Reply::Int(2));
        let Effect::Set(_, until) = out.effect else {
            panic!("{out:?}")
        };
        assert_eq!(until, 1_002 * S + 4 * S);
        let a: Vec<&[u8]> = vec![b"GCRA", b"4", b"INTERVAL", b"1000"];
        let out = check(&a, None, &mut env(t0)).unwrap();
        assert_eq!(out.effect, {
            let mut g = Limiter::new(Algorithm::Gcra, 4, Window::aligned(S, 0).unwrap()).unwrap();
            let _ = g.check(t0, &Shared::default());
            Effect::Set(Value::Pipe(g), t0 + S / 4)
        });
    }

    #[test]
    fn host_local_and_other_family_algorithms_are_refused_by_name() {
        for (alg, needle) in [
            ("FEEDBACK", "CPU load"),
            ("network", "network queues"),
            ("INTERVAL", "FG.RATE"),
            ("SLOTS", "FG.ACQUIRE"),
            ("FOO", "unknown algorithm 'FOO'"),
        ] {
            let e = run(check, &[alg, "3"], &mut None, S)
                .unwrap_err()
                .to_string();
            assert!(e.starts_with("ERR ") && e.contains(needle), "{e}");
        }
        let e = run(check, &["RED", "0"], &mut None, S)
            .unwrap_err()
            .to_string();
        assert!(e.contains("limit"), "{e}");
        let e = run(check, &["TAILDROP", "4294967296"], &mut None, S).unwrap_err();
        assert!(e.to_string().contains("limit"), "{e}");
        let e = run(check, &["TAILDROP", "1", "INTERVAL", "0"], &mut None, S).unwrap_err();
        assert!(e.to_string().contains("INTERVAL"), "{e}");
        assert_eq!(
            run(check, &["TAILDROP"], &mut None, S),
            Err(CmdError::WrongArity)
        );
        let mut slots = Some(Value::Throttle(5));
        assert_eq!(
            run(check, &["TAILDROP", "1"], &mut slots, S),
            Err(CmdError::WrongType)
        );
        assert_eq!(
            run(rate, &["1", "1000"], &mut slots, S),
            Err(CmdError::WrongType)
        );
    }

    #[test]
    fn rate_reads_freeswitch_options() {
        let t0 = 5_000 * S + S / 2;
        // FIRST: the window starts at the first call, 1 s long.
        let mut st = None;
        for (dt, want) in [(0, 1), (1, 1), (2, -1), (S - 1, -1), (S, 1)] {
            let r = run(rate, &["2", "1000", "FIRST"], &mut st, t0 + dt).unwrap();
            assert_eq!(r, Reply::Int(want), "at +{dt}");
        }
        // max 0: REFUSE all, MODHASH admits the window's first, UNLIMITED all.
        for (mode, want) in [
            ("REFUSE", [-1, -1]),
            ("MODHASH", [1, -1]),
            ("unlimited", [1, 1]),
        ] {
            let mut st = None;
            for w in want {
                let r = run(rate, &["0", "1000", "maxzero", mode], &mut st, t0).unwrap();
                assert_eq!(r, Reply::Int(w), "{mode}");
            }
        }
        for bad in [
            &["1", "1000", "MAXZERO"][..],
            &["1", "1000", "SIDEWAYS"],
            &["1", "0"],
            &["x", "5"],
        ] {
            assert!(run(rate, bad, &mut None, t0).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn reset_zeroes_windows_forgets_gcra_and_leaves_slots() {
        let t0 = 7_000 * S;
        let mut st = None;
        for _ in 0..3 {
            let _ = run(rate, &["2", "10000"], &mut st, t0);
        }
        assert_eq!(run(reset, &[], &mut st, t0), Ok(Reply::Int(1)));
        assert!(matches!(st, Some(Value::Rate(_))));
        assert_eq!(run(rate, &["2", "10000"], &mut st, t0), Ok(Reply::Int(1)));
        let mut g = None;
        let _ = run(check, &["GCRA", "1"], &mut g, t0);
        assert_eq!(run(reset, &[], &mut g, t0), Ok(Reply::Int(1)));
        assert_eq!(g, None);
        assert_eq!(run(reset, &[], &mut None, t0), Ok(Reply::Int(0)));
        let mut slots = Some(Value::Slots(Default::default()));
        assert_eq!(run(reset, &[], &mut slots, t0), Ok(Reply::Int(1)));
        assert!(slots.is_some());
    }

    #[test]
    fn info_lists_fields_and_values_in_pairs() {
        let t0 = 9_000 * S;
        let mut st = None;
        let _ = run(check, &["RED", "10"], &mut st, t0);
        let Reply::Array(f) = run(info, &[], &mut st, t0).unwrap() else {
            panic!()
        };
        assert_eq!(f.len() % 2, 0);
        assert_eq!(
            f[..6],
            [
                Reply::text("kind"),
                Reply::text("pipe"),
                Reply::text("algorithm"),
                Reply::text("RED"),
                Reply::text("limit"),
                Reply::Int(10)
            ]
        );
        assert_eq!(run(info, &[], &mut None, t0), Ok(Reply::Array(vec![])));
    }
}
