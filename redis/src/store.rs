//! The module's one contact with Redis's keyspace: open the key, hand its
//! old value to a command, apply the [`Outcome`] and replicate its effect.
//!
//! Replication by effect: a command that changes a key propagates
//! `SET key <new value> PXAT <expiry>` (or `DEL key`) to replicas and the AOF,
//! never itself. Replicas and AOF replays therefore hold exactly the
//! primary's state and never decide with their own clocks; the expiry is
//! absolute, so a replica promoted later expires the key when the primary
//! would have.
//!
//! Keys are read and written with the low-level key API (string DMA and an
//! absolute expiry) rather than `RedisModule_Call("SET", ...)`: that would
//! cost a command lookup, a fake client and a parsed reply per check. The
//! few calls the `redis-module` crate has no safe wrapper for are the
//! `unsafe` blocks here; they run only inside Redis, so Miri cannot cover
//! them: the integration tests in `tests/` run them in a real redis-server.
#![allow(unsafe_code)]

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use redis_module::raw::{self, KeyMode, KeyType};
use redis_module::{Context, RedisError, RedisResult, RedisString, RedisValue};

use crate::args::{self, CmdError};
use crate::cmd::{Effect, Env, Ids, Outcome, Reply};
use crate::value::{self, DecodeError, Value};

/// FG.CHECK's default window, ns (module argument `INTERVAL`).
pub static DEFAULT_INTERVAL: AtomicU64 = AtomicU64::new(10_000 * args::MS);
/// Whether commands may carry their own time (module argument `TESTCLOCK`).
pub static TEST_CLOCK: AtomicBool = AtomicBool::new(false);
/// The lease handle sequence's state (commands run on Redis's main thread).
pub static IDS: AtomicU64 = AtomicU64::new(0);

/// A command: its arguments after the key, the key's old value, the
/// environment.
pub type Handler = fn(&[&[u8]], Option<Value>, &mut Env) -> Result<Outcome, CmdError>;

/// An open key, closed on drop.
struct Key {
    key: *mut raw::RedisModuleKey,
}

impl Key {
    fn open(ctx: &Context, name: &RedisString, write: bool) -> Key {
        let mode = if write {
            KeyMode::READ | KeyMode::WRITE
        } else {
            KeyMode::READ
        };
        Key {
            key: raw::open_key(ctx.ctx, name.inner, mode),
        }
    }

    fn kind(&self) -> KeyType {
        let empty = raw::REDISMODULE_KEYTYPE_EMPTY as i32;
        // SAFETY: the API table is filled once at load, before any command.
        let kind = unsafe { raw::RedisModule_KeyType };
        // SAFETY: `self.key` was returned by RedisModule_OpenKey in this
        // command and is closed only on drop; KeyType accepts NULL too.
        kind.map_or(empty, |kind| unsafe { kind(self.key) }).into()
    }

    /// The string's bytes, copied (they are about to be overwritten).
    fn bytes(&self) -> Option<Vec<u8>> {
        let mut len: libc::size_t = 0;
        let p = raw::string_dma(self.key, &mut len, KeyMode::READ);
        if p.is_null() {
            return None;
        }
        // SAFETY: StringDMA returned a non-NULL pointer to `len` bytes of
        // this open key's string, valid until the key is changed or closed;
        // they are copied before either happens.
        Some(unsafe { std::slice::from_raw_parts(p.cast::<u8>(), len) }.to_vec())
    }

    fn write(&self, bytes: &[u8], expire_ms: i64) -> Result<(), CmdError> {
        let failed = || CmdError::msg("could not write the key");
        if raw::string_truncate(self.key, bytes.len()) != raw::Status::Ok {
            return Err(failed());
        }
        let mut len: libc::size_t = 0;
        let p = raw::string_dma(self.key, &mut len, KeyMode::WRITE);
        if p.is_null() || len != bytes.len() {
            return Err(failed());
        }
        // SAFETY: StringDMA returned a writable buffer of exactly
        // `bytes.len()` bytes (checked) for this key, opened for writing;
        // `bytes` is our own slice and cannot overlap Redis's buffer.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), p.cast::<u8>(), bytes.len()) };
        // SAFETY: the API table is filled once at load, before any command.
        let set_abs = unsafe { raw::RedisModule_SetAbsExpire }.ok_or_else(failed)?;
        // SAFETY: the key is open for writing and now holds a string.
        if unsafe { set_abs(self.key, expire_ms) } != raw::Status::Ok as i32 {
            return Err(failed());
        }
        Ok(())
    }

    fn delete(&self) {
        // SAFETY: the API table is filled once at load, before any command.
        if let Some(del) = unsafe { raw::RedisModule_DeleteKey } {
            // SAFETY: the key is open for writing; deleting an empty key is
            // a no-op returning an error code, which changes nothing.
            unsafe { del(self.key) };
        }
    }
}

impl Drop for Key {
    fn drop(&mut self) {
        raw::close_key(self.key);
    }
}

/// Whether this Redis has what the module needs (checked at load).
pub fn api_complete() -> bool {
    // SAFETY: called after RedisModule_Init filled the API table; the
    // entries are copied out, no reference to the statics is made.
    let (abs, ms, del, kind) = unsafe {
        (
            raw::RedisModule_SetAbsExpire,
            raw::RedisModule_Milliseconds,
            raw::RedisModule_DeleteKey,
            raw::RedisModule_KeyType,
        )
    };
    abs.is_some() && ms.is_some() && del.is_some() && kind.is_some()
}

/// The server clock, ms since the Unix epoch.
fn clock_ms() -> u64 {
    // SAFETY: the API table is filled once at load, before any command.
    match unsafe { raw::RedisModule_Milliseconds } {
        // SAFETY: a plain function of Redis's with no arguments.
        Some(ms) => u64::try_from(unsafe { ms() }).unwrap_or(0),
        None => 0,
    }
}

fn decode(bytes: &[u8]) -> Result<Value, CmdError> {
    value::decode(bytes).map_err(|e| match e {
        DecodeError::NotOurs => CmdError::WrongType,
        DecodeError::Version(v) => CmdError::msg(format!(
            "the key holds floodgate state of encoding version {v}, this module reads version {}: let it expire or DEL it",
            value::VERSION
        )),
        DecodeError::Corrupt => {
            CmdError::msg("the key holds corrupt floodgate state: DEL it")
        }
    })
}

fn to_redis(r: Reply) -> RedisValue {
    match r {
        Reply::Int(i) => RedisValue::Integer(i),
        Reply::Text(b) => RedisValue::StringBuffer(b),
        Reply::Nil => RedisValue::Null,
        Reply::Array(v) => RedisValue::Array(v.into_iter().map(to_redis).collect()),
    }
}

fn to_error(e: CmdError) -> RedisError {
    match e {
        CmdError::WrongArity => RedisError::WrongArity,
        CmdError::WrongType => RedisError::WrongType,
        e => RedisError::String(e.to_string()),
    }
}

/// Runs `handler` on the key `args[1]` (`write`: may change it). A panic
/// (a bug) becomes an error reply instead of taking Redis down: nothing is
/// written before a command has decided, so the key is unchanged.
pub fn run(ctx: &Context, args: &[RedisString], handler: Handler, write: bool) -> RedisResult {
    let run = std::panic::AssertUnwindSafe(|| run_inner(ctx, args, handler, write));
    match std::panic::catch_unwind(run) {
        Ok(result) => result.map_err(to_error),
        Err(_) => Err(RedisError::Str(
            "ERR floodgate: internal error (a bug: please report the command)",
        )),
    }
}

fn run_inner(
    ctx: &Context,
    args: &[RedisString],
    handler: Handler,
    write: bool,
) -> Result<RedisValue, CmdError> {
    let mut argv: Vec<&[u8]> = args.iter().map(|a| a.as_slice()).collect();
    let test_now = args::take_now(&mut argv, TEST_CLOCK.load(Ordering::Relaxed))?;
    // After NOW came off: `FG.CHECK NOW 5` names no key.
    let (Some(name), Some(rest)) = (args.get(1), argv.get(2..)) else {
        return Err(CmdError::WrongArity);
    };
    let now = test_now.unwrap_or_else(|| clock_ms().saturating_mul(args::MS));
    let mut env = Env {
        now,
        default_interval: DEFAULT_INTERVAL.load(Ordering::Relaxed),
        ids: Ids(IDS.load(Ordering::Relaxed)),
    };
    let key = Key::open(ctx, name, write);
    let old = match key.kind() {
        KeyType::Empty => None,
        KeyType::String => Some(decode(&key.bytes().ok_or(CmdError::WrongType)?)?),
        _ => return Err(CmdError::WrongType),
    };
    let existed = old.is_some();
    let outcome = handler(rest, old, &mut env)?;
    IDS.store(env.ids.0, Ordering::Relaxed);
    match outcome.effect {
        Effect::Keep => {}
        Effect::Set(v, until) if write => {
            let bytes = value::encode(&v);
            let ms = until / args::MS + u64::from(!until.is_multiple_of(args::MS));
            let ms = i64::try_from(ms).unwrap_or(i64::MAX);
            key.write(&bytes, ms)?;
            let ms = ms.to_string();
            let argv: [&[u8]; 4] = [name.as_slice(), &bytes, b"PXAT", ms.as_bytes()];
            ctx.replicate("SET", &argv[..]);
        }
        Effect::Delete if write => {
            if existed {
                key.delete();
                ctx.replicate("DEL", &[name.as_slice()][..]);
            }
        }
        // A read-only command never decides to write.
        Effect::Set(..) | Effect::Delete => {}
    }
    Ok(to_redis(outcome.reply))
}

/// `PTTL` of the key, for `FG.INFO`.
pub fn pttl(ctx: &Context, name: &RedisString) -> RedisValue {
    match ctx.call("PTTL", &[name][..]) {
        Ok(v) => v,
        Err(_) => RedisValue::Integer(-2),
    }
}
