//! What a command decides, apart from Redis: the reply and what becomes of
//! the key. Every command is a pure function of its arguments, the key's old
//! value and an [`Env`]; `store` applies the [`Outcome`]. That keeps the
//! logic testable without a server, and makes replication by effect natural:
//! what is replicated is the new value, never the command.

use crate::value::Value;

/// A reply, in the few shapes the module uses (so Kamailio's ndb_redis and
/// FreeSWITCH's hiredis read them: integers and flat arrays).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// An integer.
    Int(i64),
    /// A bulk string.
    Text(Vec<u8>),
    /// A nil bulk string.
    Nil,
    /// A flat array.
    Array(Vec<Reply>),
}

impl Reply {
    /// A bulk string from text.
    pub fn text(s: &str) -> Reply {
        Reply::Text(s.as_bytes().to_vec())
    }
}

/// What becomes of the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Unchanged: nothing written, nothing replicated.
    Keep,
    /// Written, expiring at the given time (ns, same clock as `now`).
    Set(Value, u64),
    /// Deleted (if it existed).
    Delete,
}

impl Effect {
    /// `value` until `until`; a value already as good as absent at `now`
    /// is not written at all (the key goes).
    pub fn set(value: Value, until: u64, now: u64) -> Effect {
        if until <= now {
            Effect::Delete
        } else {
            Effect::Set(value, until)
        }
    }
}

/// A command's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The reply.
    pub reply: Reply,
    /// The key's fate.
    pub effect: Effect,
}

impl Outcome {
    /// A reply that leaves the key as it is.
    pub fn keep(reply: Reply) -> Outcome {
        Outcome {
            reply,
            effect: Effect::Keep,
        }
    }
}

/// What a command may read besides its arguments and key.
#[derive(Debug, Clone)]
pub struct Env {
    /// The command's time, ns since the Unix epoch (read once per command).
    pub now: u64,
    /// FG.CHECK's default window, ns.
    pub default_interval: u64,
    /// Where lease handles come from.
    pub ids: Ids,
}

/// Lease handles: a splitmix64 sequence from a per-process random seed.
/// Handles only need to be unlikely to repeat; the value a primary picks is
/// replicated, so replicas never pick their own.
#[derive(Debug, Clone)]
pub struct Ids(pub u64);

impl Ids {
    /// The next handle (never 0).
    pub fn next_id(&mut self) -> u64 {
        loop {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^= z >> 31;
            if z != 0 {
                return z;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_due_now_is_not_written() {
        assert_eq!(Effect::set(Value::Throttle(1), 10, 10), Effect::Delete);
        assert_eq!(
            Effect::set(Value::Throttle(1), 11, 10),
            Effect::Set(Value::Throttle(1), 11)
        );
    }

    #[test]
    fn ids_do_not_repeat_in_a_long_run() {
        let mut ids = Ids(7);
        let mut seen: Vec<u64> = (0..100_000).map(|_| ids.next_id()).collect();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), 100_000);
        assert!(!seen.contains(&0));
    }
}
