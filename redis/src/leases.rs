//! `FG.ACQUIRE`, `FG.RELEASE`, `FG.USAGE` and `FG.HUB`: concurrent slots
//! held by leases, and app_rpt hub balancing, counted by the core's
//! [`Slots`] and [`least_loaded`].
//!
//! Every slot is a lease with a handle and an expiry. A holder that never
//! releases (a crashed PBX, a lost BYE, a transferred call) frees its slot
//! when the lease expires; a release is idempotent, so a slot is never
//! given back twice and a count never goes below zero. The key expires with
//! its last lease.

use floodgate::slots::least_loaded;
use floodgate::{SlotVerdict, Slots};

use crate::args::{self, CmdError};
use crate::cmd::{Effect, Env, Outcome, Reply};
use crate::value::{Lease, Leases, Value, MAX_LEASES, MAX_MEMBERS};

/// A lease's hold when the caller names none: 4 hours, longer than a call.
pub const DEFAULT_HOLD: u64 = 4 * 3600 * 1_000 * args::MS;

/// The leases unexpired at `now`.
pub fn live(ls: &Leases, now: u64) -> Vec<&Lease> {
    ls.list.iter().filter(|l| l.expires > now).collect()
}

/// Slots held per member, in the order members first appear.
pub fn per_member(live: &[&Lease]) -> Vec<(Vec<u8>, usize)> {
    let mut out: Vec<(Vec<u8>, usize)> = Vec::new();
    for l in live {
        match out.iter_mut().find(|(m, _)| *m == l.member) {
            Some((_, n)) => *n += 1,
            None => out.push((l.member.clone(), 1)),
        }
    }
    out
}

/// What to write after a change to `ls` (the key goes with its last lease).
fn store(ls: Leases, hub: bool, changed: bool, now: u64) -> Effect {
    if !changed {
        return Effect::Keep;
    }
    match ls.last_expiry() {
        None => Effect::Delete,
        Some(until) => Effect::set(
            if hub {
                Value::Hub(ls)
            } else {
                Value::Slots(ls)
            },
            until,
            now,
        ),
    }
}

/// A handle no lease of `ls` has.
fn fresh(ls: &Leases, env: &mut Env) -> u64 {
    loop {
        let id = env.ids.next_id();
        if ls.list.iter().all(|l| l.id != id) {
            return id;
        }
    }
}

fn room_for_one(ls: &Leases) -> Result<(), CmdError> {
    if ls.list.len() >= MAX_LEASES {
        return Err(CmdError::msg(format!(
            "this key already holds {MAX_LEASES} leases, the most one key may"
        )));
    }
    Ok(())
}

fn max_arg(arg: &[u8], what: &str) -> Result<i32, CmdError> {
    Ok(args::int_in(arg, what, i32::MIN.into(), i32::MAX.into())? as i32)
}

/// `FG.ACQUIRE key max [HOLD ms] [PLAIN]` -> `[1, lease]` or `[0, ""]`;
/// with `PLAIN`, the lease or `"0"` as one string (for clients that read no
/// arrays, such as FreeSWITCH's `hiredis_raw`).
pub fn acquire(a: &[&[u8]], old: Option<Value>, env: &mut Env) -> Result<Outcome, CmdError> {
    let [max, opts @ ..] = a else {
        return Err(CmdError::WrongArity);
    };
    let max = max_arg(max, "max")?;
    let (mut hold, mut plain) = (DEFAULT_HOLD, false);
    let mut rest = opts;
    while let [opt, tail @ ..] = rest {
        rest = tail;
        if args::is(opt, "PLAIN") {
            plain = true;
        } else if args::is(opt, "HOLD") {
            let [ms, tail @ ..] = rest else {
                return Err(CmdError::msg("HOLD needs a number of milliseconds"));
            };
            rest = tail;
            hold = args::millis(ms, "HOLD")?;
        } else {
            return Err(CmdError::msg(format!(
                "unknown option '{}' (HOLD ms, PLAIN)",
                args::show(opt)
            )));
        }
    }
    let mut ls = match old {
        None => Leases {
            max,
            total_max: -1,
            list: Vec::new(),
        },
        Some(Value::Slots(ls)) => ls,
        Some(_) => return Err(CmdError::WrongType),
    };
    let mut changed = ls.expire(env.now) || ls.max != max;
    ls.max = max;
    let held = u32::try_from(ls.list.len()).unwrap_or(u32::MAX);
    let reply = match Slots::held(max, held).acquire() {
        SlotVerdict::Acquired => {
            room_for_one(&ls)?;
            let id = fresh(&ls, env);
            ls.list.push(Lease {
                id,
                expires: env.now.saturating_add(hold),
                member: Vec::new(),
            });
            changed = true;
            let lease = Reply::text(&args::lease_text(id));
            if plain {
                lease
            } else {
                Reply::Array(vec![Reply::Int(1), lease])
            }
        }
        SlotVerdict::Refused if plain => Reply::text("0"),
        SlotVerdict::Refused => Reply::Array(vec![Reply::Int(0), Reply::text("")]),
    };
    Ok(Outcome {
        reply,
        effect: store(ls, false, changed, env.now),
    })
}

/// `FG.RELEASE key lease` -> 1 released, 0 unknown, already released or expired.
pub fn release(a: &[&[u8]], old: Option<Value>, env: &mut Env) -> Result<Outcome, CmdError> {
    let [lease] = a else {
        return Err(CmdError::WrongArity);
    };
    let id = args::lease_id(lease)?;
    let (mut ls, hub) = match old {
        None => return Ok(Outcome::keep(Reply::Int(0))),
        Some(Value::Slots(ls)) => (ls, false),
        Some(Value::Hub(ls)) => (ls, true),
        Some(_) => return Err(CmdError::WrongType),
    };
    let expired = ls.expire(env.now);
    let before = ls.list.len();
    if let Some(id) = id {
        ls.list.retain(|l| l.id != id);
    }
    let released = ls.list.len() != before;
    Ok(Outcome {
        reply: Reply::Int(released.into()),
        effect: store(ls, hub, expired || released, env.now),
    })
}

/// `FG.USAGE key` -> slots held now.
pub fn usage(a: &[&[u8]], old: Option<Value>, env: &mut Env) -> Result<Outcome, CmdError> {
    if !a.is_empty() {
        return Err(CmdError::WrongArity);
    }
    let n = match old {
        None => 0,
        Some(Value::Slots(ls)) | Some(Value::Hub(ls)) => live(&ls, env.now).len(),
        Some(_) => return Err(CmdError::WrongType),
    };
    Ok(Outcome::keep(Reply::Int(n as i64)))
}

/// `FG.HUB key per_member_max total_max member [member ...] [HOLD ms]` ->
/// `[member, lease]`, or `[nil, ""]` when full (send to the dump node).
pub fn hub(a: &[&[u8]], old: Option<Value>, env: &mut Env) -> Result<Outcome, CmdError> {
    let mut a = a;
    let hold = args::take_hold(&mut a, 3)?.unwrap_or(DEFAULT_HOLD);
    if a.len() < 3 {
        return Err(CmdError::WrongArity);
    }
    let per_max = max_arg(a[0], "per_member_max")?;
    let total_max = max_arg(a[1], "total_max")?;
    let members = &a[2..];
    if members.len() > MAX_MEMBERS {
        return Err(CmdError::msg(format!(
            "a hub has at most {MAX_MEMBERS} members, got {}",
            members.len()
        )));
    }
    if let Some(m) =
        (1..members.len()).find_map(|i| members[..i].contains(&members[i]).then_some(members[i]))
    {
        return Err(CmdError::msg(format!(
            "member '{}' is listed twice",
            args::show(m)
        )));
    }
    let mut ls = match old {
        None => Leases::default(),
        Some(Value::Hub(ls)) => ls,
        Some(_) => return Err(CmdError::WrongType),
    };
    let mut changed = ls.expire(env.now) || ls.max != per_max || ls.total_max != total_max;
    ls.max = per_max;
    ls.total_max = total_max;
    let count = |m: &[u8]| ls.list.iter().filter(|l| l.member == m).count();
    let listed: Vec<Slots> = members
        .iter()
        .map(|m| Slots::held(per_max, u32::try_from(count(m)).unwrap_or(u32::MAX)))
        .collect();
    // Leases on members no longer listed still count toward the hub's
    // total: a member with no room stands for them.
    let others = ls.list.len() - listed.iter().map(|s| s.usage() as usize).sum::<usize>();
    let all = listed
        .into_iter()
        .chain([Slots::held(0, u32::try_from(others).unwrap_or(u32::MAX))]);
    let reply = match least_loaded(all, total_max) {
        Some(i) => {
            room_for_one(&ls)?;
            let id = fresh(&ls, env);
            ls.list.push(Lease {
                id,
                expires: env.now.saturating_add(hold),
                member: members[i].to_vec(),
            });
            changed = true;
            Reply::Array(vec![
                Reply::Text(members[i].to_vec()),
                Reply::text(&args::lease_text(id)),
            ])
        }
        None => Reply::Array(vec![Reply::Nil, Reply::text("")]),
    };
    Ok(Outcome {
        reply,
        effect: store(ls, true, changed, env.now),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::Ids;

    const S: u64 = 1_000_000_000;

    fn run(
        f: crate::store::Handler,
        a: &[&[u8]],
        state: &mut Option<Value>,
        now: u64,
    ) -> Result<Reply, CmdError> {
        let mut env = Env {
            now,
            default_interval: S,
            ids: Ids(now),
        };
        let out = f(a, state.clone(), &mut env)?;
        match out.effect {
            Effect::Keep => {}
            Effect::Set(v, _) => *state = Some(v),
            Effect::Delete => *state = None,
        }
        Ok(out.reply)
    }

    fn lease_of(r: &Reply) -> Vec<u8> {
        match r {
            Reply::Array(v) => match &v[1] {
                Reply::Text(t) => t.clone(),
                other => panic!("{other:?}"),
            },
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn slots_never_exceed_max_and_release_is_idempotent() {
        let mut st = None;
        let a = run(acquire, &[b"2"], &mut st, S).unwrap();
        let b = run(acquire, &[b"2"], &mut st, S + 1).unwrap();
        assert_ne!(lease_of(&a), lease_of(&b));
        assert_eq!(
            run(acquire, &[b"2"], &mut st, S + 2),
            Ok(Reply::Array(vec![Reply::Int(0), Reply::text("")]))
        );
        assert_eq!(run(usage, &[], &mut st, S), Ok(Reply::Int(2)));
        let la = lease_of(&a);
        assert_eq!(run(release, &[&la], &mut st, S), Ok(Reply::Int(1)));
        assert_eq!(run(release, &[&la], &mut st, S), Ok(Reply::Int(0)));
        assert_eq!(run(release, &[b""], &mut st, S), Ok(Reply::Int(0)));
        assert!(run(release, &[b"nonsense"], &mut st, S).is_err());
        assert_eq!(run(usage, &[], &mut st, S), Ok(Reply::Int(1)));
        assert_eq!(
            run(release, &[&lease_of(&b)], &mut st, S),
            Ok(Reply::Int(1))
        );
        assert_eq!(st, None, "the key goes with its last lease");
    }

    #[test]
    fn an_unreleased_lease_frees_its_slot_after_its_hold() {
        let mut st = None;
        let _ = run(acquire, &[b"1", b"HOLD", b"1000"], &mut st, 10 * S).unwrap();
        let refused = Reply::Array(vec![Reply::Int(0), Reply::text("")]);
        assert_eq!(run(acquire, &[b"1"], &mut st, 11 * S - 1), Ok(refused));
        assert_eq!(run(usage, &[], &mut st, 11 * S), Ok(Reply::Int(0)));
        let r = run(acquire, &[b"1"], &mut st, 11 * S).unwrap();
        assert!(matches!(&r, Reply::Array(v) if v[0] == Reply::Int(1)));
        // Zero refuses all, negative counts only.
        assert_eq!(
            run(acquire, &[b"0"], &mut None, S),
            Ok(Reply::Array(vec![Reply::Int(0), Reply::text("")]))
        );
        let mut count = None;
        for _ in 0..50 {
            let _ = run(acquire, &[b"-1"], &mut count, S).unwrap();
        }
        assert_eq!(run(usage, &[], &mut count, S), Ok(Reply::Int(50)));
    }

    #[test]
    fn plain_replies_one_string_for_clients_that_read_no_arrays() {
        let mut st = None;
        let r = run(acquire, &[b"1", b"PLAIN", b"HOLD", b"5000"], &mut st, S).unwrap();
        let Reply::Text(lease) = r else {
            panic!("{r:?}")
        };
        assert_eq!(lease.len(), 16);
        assert_eq!(
            run(acquire, &[b"1", b"plain"], &mut st, S),
            Ok(Reply::text("0"))
        );
        assert_eq!(run(release, &[&lease], &mut st, S), Ok(Reply::Int(1)));
        for bad in [
            &[&b"1"[..], b"HOLD"][..],
            &[b"1", b"LOUD"],
            &[b"1", b"HOLD", b"0"],
        ] {
            assert!(run(acquire, bad, &mut None, S).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn hub_fills_the_least_loaded_member_first_under_both_maxima() {
        let mut st = None;
        let members: [&[u8]; 4] = [b"2001", b"2002", b"2003", b"2004"];
        let mut got = Vec::new();
        loop {
            let mut a: Vec<&[u8]> = vec![b"3", b"10"];
            a.extend(members);
            match run(hub, &a, &mut st, S).unwrap() {
                Reply::Array(v) if v[0] == Reply::Nil => break,
                Reply::Array(v) => got.push(v[0].clone()),
                other => panic!("{other:?}"),
            }
            assert!(got.len() <= 10);
        }
        assert_eq!(got.len(), 10);
        let first: Vec<Reply> = members.iter().map(|m| Reply::Text(m.to_vec())).collect();
        assert_eq!(got[..4], first[..], "ties go to the member listed first");
        for m in &first {
            let n = got.iter().filter(|g| *g == m).count();
            assert!((2..=3).contains(&n), "{m:?}: {n}");
        }
        assert_eq!(run(usage, &[], &mut st, S), Ok(Reply::Int(10)));
        // Members no longer listed still count toward the total.
        assert_eq!(
            run(hub, &[b"3", b"10", b"9999"], &mut st, S),
            Ok(Reply::Array(vec![Reply::Nil, Reply::text("")]))
        );
    }

    #[test]
    fn hub_arguments_are_checked() {
        assert!(run(hub, &[b"3", b"10", b"a", b"a"], &mut None, S)
            .unwrap_err()
            .to_string()
            .contains("twice"));
        assert_eq!(
            run(hub, &[b"3", b"10"], &mut None, S),
            Err(CmdError::WrongArity)
        );
        let many: Vec<Vec<u8>> = (0..65).map(|i| format!("m{i}").into_bytes()).collect();
        let mut a: Vec<&[u8]> = vec![b"3", b"10"];
        a.extend(many.iter().map(|m| m.as_slice()));
        assert!(run(hub, &a, &mut None, S).is_err());
        let mut slots = None;
        let _ = run(acquire, &[b"1"], &mut slots, S);
        assert_eq!(
            run(hub, &[b"1", b"1", b"a"], &mut slots, S),
            Err(CmdError::WrongType)
        );
    }
}
