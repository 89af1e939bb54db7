//! `CL.THROTTLE key max_burst count period [quantity]`: redis-cell's
//! command and reply, on the core's [`Gcra`].
//!
//! `count` per `period` seconds, bursts of `max_burst + 1`. Emission
//! interval `T = period / count` (ns, rounded down), tolerance of the
//! whole burst `dvt = T * (max_burst + 1)`. With `base = max(TAT, now)`,
//! `quantity` cells pass iff `now >= base + quantity*T - dvt`
//! ([`Gcra::check_n`]), and then `TAT = base + quantity*T`. The reply, five
//! integers as redis-cell's:
//!
//! | # | value |
//! | --- | --- |
//! | 1 | limited: 0 or 1 |
//! | 2 | limit: `max_burst + 1` |
//! | 3 | remaining: `floor((dvt - ttl) / T)`, at least 0, with `ttl` = new `TAT - now` (passed) or `base - now` (limited) |
//! | 4 | retry_after: seconds until this quantity would pass, rounded up as redis-cell rounds; -1 when passed, or when the quantity exceeds the burst (it never will) |
//! | 5 | reset_after: `ttl` in seconds, rounded up as redis-cell rounds |
//!
//! Seconds are rounded as redis-cell 0.3 and 0.4 round them: the whole
//! seconds, plus one when what is left holds at least one whole millisecond
//! (`whole_seconds() + (subsec_milliseconds() > 0)`). A remainder under a
//! millisecond is dropped, so after one cell of a 1 000 000-a-second limit
//! `reset_after` is 0, as redis-cell says. (redis-cell 0.2, the version on
//! crates.io, truncated every fraction.)
//!
//! Differences from redis-cell, deliberate: the key stores floodgate's own
//! encoding (not redis-cell's decimal TAT), written with an absolute expiry
//! and replicated as its effect; zero or negative counts, periods and
//! bursts are errors, never a crash; a limited call's `ttl` never goes
//! negative, so `remaining` never exceeds the limit; and `remaining` is
//! divided in nanoseconds (redis-cell divides whole microseconds as `f64`,
//! which can differ by one near a multiple and, for an emission interval
//! under 1 µs, divides by zero).

use floodgate::Gcra;

use crate::args::{self, CmdError};
use crate::cmd::{Effect, Env, Outcome, Reply};
use crate::pipe::core_err;
use crate::value::Value;

const SECOND: u64 = 1_000_000_000;
const MILLISECOND: u64 = 1_000_000;

/// redis-cell's rounding of a duration to seconds: whole seconds, plus one
/// when the rest holds a whole millisecond or more.
fn ceil_seconds(ns: u64) -> i64 {
    (ns / SECOND + u64::from(ns % SECOND >= MILLISECOND)) as i64
}

/// `CL.THROTTLE key max_burst count period [quantity]`.
pub fn throttle(a: &[&[u8]], old: Option<Value>, env: &mut Env) -> Result<Outcome, CmdError> {
    let (mb, count, period, quantity) = match a {
        [mb, c, p] => (mb, c, p, None),
        [mb, c, p, q] => (mb, c, p, Some(q)),
        _ => return Err(CmdError::WrongArity),
    };
    let max_burst = args::int_in(mb, "max_burst", 0, i64::from(u32::MAX) - 1)?;
    let count = args::int_in(count, "count", 1, u32::MAX.into())? as u32;
    let period = args::int_in(period, "period", 1, u32::MAX.into())? as u64 * SECOND;
    let q = match quantity {
        Some(q) => args::int_in(q, "quantity", 0, u32::MAX.into())? as u32,
        None => 1,
    };
    let mut g =
        Gcra::new(count, period, max_burst as u32 + 1).map_err(|e| core_err(e, "count/period"))?;
    let tat = match old {
        None => 0,
        Some(Value::Throttle(t)) => t,
        Some(_) => return Err(CmdError::WrongType),
    };
    g.restore_tat(tat);
    let now = env.now;
    let t = g.emission_interval();
    let dvt = g.tolerance().saturating_add(t);
    let base = tat.max(now);
    let increment = t.saturating_mul(q.into());
    let limited = !g.check_n(now, q).passed();
    let ttl = if limited { base } else { base.max(g.tat()) } - now;
    let remaining = (dvt.saturating_sub(ttl) / t) as i64;
    let retry_after = if limited && increment <= dvt {
        ceil_seconds(
            base.saturating_add(increment)
                .saturating_sub(dvt)
                .saturating_sub(now),
        )
    } else {
        -1
    };
    let reply = Reply::Array(vec![
        Reply::Int(limited.into()),
        Reply::Int(max_burst + 1),
        Reply::Int(remaining),
        Reply::Int(retry_after),
        Reply::Int(ceil_seconds(ttl)),
    ]);
    let effect = if limited || q == 0 {
        Effect::Keep
    } else {
        Effect::set(Value::Throttle(g.tat()), g.tat(), now)
    };
    Ok(Outcome { reply, effect })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::Ids;

    const MS: u64 = MILLISECOND;

    /// redis-cell's own case table (limit 5, one per second): quantity,
    /// time offset, then limited, remaining, retry_after, reset_after as
    /// this module replies them (seconds rounded up).
    #[test]
    fn redis_cell_case_table() {
        let start = 1_700_000_000_000 * MS;
        let cases: [(u32, u64, [i64; 4]); 15] = [
            (6, 0, [1, 5, -1, 0]),
            (1, 0, [0, 4, -1, 1]),
            (1, 0, [0, 3, -1, 2]),
            (1, 0, [0, 2, -1, 3]),
            (1, 0, [0, 1, -1, 4]),
            (1, 0, [0, 0, -1, 5]),
            (1, 0, [1, 0, 1, 5]),
            (1, 3000, [0, 2, -1, 3]),
            (1, 3100, [0, 1, -1, 4]),
            (1, 4000, [0, 1, -1, 4]),
            (1, 8000, [0, 4, -1, 1]),
            (1, 9500, [0, 4, -1, 1]),
            (0, 9500, [0, 4, -1, 1]),
            (2, 9500, [0, 2, -1, 3]),
            (5, 9500, [1, 2, 3, 3]),
        ];
        let mut state = None;
        for (i, (q, dt, want)) in cases.into_iter().enumerate() {
            let q = q.to_string();
            let a: Vec<&[u8]> = vec![b"4", b"1", b"1", q.as_bytes()];
            let mut env = Env {
                now: start + dt * MS,
                default_interval: 0,
                ids: Ids(0),
            };
            let out = throttle(&a, state.clone(), &mut env).unwrap();
            let Reply::Array(r) = out.reply else { panic!() };
            let got: Vec<i64> = r
                .iter()
                .map(|x| match x {
                    Reply::Int(i) => *i,
                    _ => panic!(),
                })
                .collect();
            assert_eq!(got, [want[0], 5, want[1], want[2], want[3]], "case {i}");
            match out.effect {
                Effect::Set(v, _) => state = Some(v),
                Effect::Keep => {}
                Effect::Delete => state = None,
            }
        }
    }

    #[test]
    fn seconds_round_up_from_a_whole_millisecond_as_redis_cell_does() {
        for (ns, want) in [
            (0, 0),
            (1, 0),
            (MS - 1, 0),
            (MS, 1),
            (SECOND, 1),
            (SECOND + MS - 1, 1),
            (SECOND + MS, 2),
            (3 * SECOND + 900 * MS, 4),
            (u64::MAX, (u64::MAX / SECOND + 1) as i64),
        ] {
            assert_eq!(ceil_seconds(ns), want, "{ns} ns");
        }
        // One cell of a million a second: the bucket is whole again 1 µs
        // later, and redis-cell replies `0 101 100 -1 0`.
        let mut env = Env {
            now: 1_700_000_000 * SECOND,
            default_interval: 0,
            ids: Ids(0),
        };
        let out = throttle(&[b"100", b"1000000", b"1"], None, &mut env).unwrap();
        assert_eq!(
            out.reply,
            Reply::Array(vec![
                Reply::Int(0),
                Reply::Int(101),
                Reply::Int(100),
                Reply::Int(-1),
                Reply::Int(0),
            ])
        );
    }

    #[test]
    fn nonsense_parameters_are_errors_not_crashes() {
        let mut env = Env {
            now: 1,
            default_interval: 0,
            ids: Ids(0),
        };
        for bad in [
            &[&b"4"[..], b"0", b"1"][..],
            &[b"-1", b"1", b"1"],
            &[b"4", b"1", b"0"],
            &[b"4", b"1", b"1", b"-1"],
            &[b"4", b"1", b"x"],
            &[b"4294967295", b"1", b"1"],
        ] {
            let e = throttle(bad, None, &mut env).unwrap_err();
            assert!(e.to_string().starts_with("ERR "), "{bad:?}: {e}");
        }
        assert_eq!(
            throttle(&[b"4", b"1"], None, &mut env),
            Err(CmdError::WrongArity)
        );
        let e = throttle(&[b"1", b"4294967295", b"1"], None, &mut env).unwrap_err();
        assert!(e.to_string().contains("count/period"), "{e}");
    }
}
