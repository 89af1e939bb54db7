//! The module's one contact with Redis: a command's arguments, its key, its
//! reply, and the replication of its effect.
//!
//! Replication by effect: a command that changes a key propagates
//! `SET key <new value> PXAT <expiry>` (or `DEL key`) to replicas and the AOF,
//! never itself. Replicas and AOF replays therefore hold exactly the
//! primary's state and never decide with their own clocks; the expiry is
//! absolute, so a replica promoted later expires the key when the primary
//! would have.
//!
//! This is the module's hot path, so it talks to the module API directly
//! (the table of function pointers Redis fills at load, copied once into
//! `Api`): arguments are read in place (`StringPtrLen`, no copies, no
//! reference counts, their slices on the stack), the key with string DMA,
//! the expiry set absolutely, `RedisModule_Replicate` called with the
//! command's own key string and a `PXAT` string made once at load, and
//! replies written with `RedisModule_ReplyWith*`; the expiry is set only when
//! it changes (once a window for a pipe), and a pipe's value is encoded on
//! the stack. Through the `redis-module` crate's safe layer, with an
//! `encode` that grew its Vec, an `FG.CHECK` took 15 188 instructions per
//! request in Redis, against 10 613 on the first version of this path,
//! measured the same way (BENCHMARKS.md). These `unsafe` blocks run only
//! inside Redis, so Miri cannot cover them: the integration tests in
//! `tests/` run every one in a real redis-server.
#![allow(unsafe_code)]

use std::ffi::{c_char, c_int, c_long, c_longlong, CString};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::OnceLock;

use redis_module::raw::{self, RedisModuleCtx, RedisModuleKey, RedisModuleString};
use smallvec::SmallVec;

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

/// How a command uses its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// May change it.
    Write,
    /// Only reads it.
    Read,
    /// Only reads it, and the reply gets the key's `pttl` appended.
    Info,
}

/// The module API functions the module calls, copied once at load.
struct Api {
    open_key: unsafe extern "C" fn(*mut Ctx, *mut RString, c_int) -> *mut RKey,
    close_key: unsafe extern "C" fn(*mut RKey),
    key_type: unsafe extern "C" fn(*mut RKey) -> c_int,
    string_dma: unsafe extern "C" fn(*mut RKey, *mut usize, c_int) -> *mut c_char,
    string_truncate: unsafe extern "C" fn(*mut RKey, usize) -> c_int,
    set_abs_expire: unsafe extern "C" fn(*mut RKey, c_longlong) -> c_int,
    get_expire: unsafe extern "C" fn(*mut RKey) -> c_longlong,
    delete_key: unsafe extern "C" fn(*mut RKey) -> c_int,
    milliseconds: unsafe extern "C" fn() -> c_longlong,
    ptr_len: unsafe extern "C" fn(*const RString, *mut usize) -> *const c_char,
    replicate: unsafe extern "C" fn(*mut Ctx, *const c_char, *const c_char, ...) -> c_int,
    wrong_arity: unsafe extern "C" fn(*mut Ctx) -> c_int,
    reply_error: unsafe extern "C" fn(*mut Ctx, *const c_char) -> c_int,
    reply_long: unsafe extern "C" fn(*mut Ctx, c_longlong) -> c_int,
    reply_array: unsafe extern "C" fn(*mut Ctx, c_long) -> c_int,
    reply_buffer: unsafe extern "C" fn(*mut Ctx, *const c_char, usize) -> c_int,
    reply_null: unsafe extern "C" fn(*mut Ctx) -> c_int,
    /// `PXAT`, created once and never freed: replication passes it by
    /// reference count instead of building the string on every command.
    pxat: Retained,
}

/// A module string the module holds for its whole life.
struct Retained(*mut RString);

// SAFETY: the string is created once at load, never freed or changed by
// the module, and only used (its reference count moved by Redis while it
// propagates) on Redis's main thread, where every command runs.
unsafe impl Send for Retained {}
// SAFETY: as for Send.
unsafe impl Sync for Retained {}

type Ctx = RedisModuleCtx;
type RKey = RedisModuleKey;
type RString = RedisModuleString;

static API: OnceLock<Api> = OnceLock::new();

/// Copies the API functions the module needs; false if this Redis lacks
/// one. Called once, at load, after `RedisModule_Init`.
pub fn load_api() -> bool {
    // SAFETY: RedisModule_Init filled the table before this runs and
    // nothing writes it again; the entries are copied out by value.
    let api = unsafe {
        (|| {
            let create = raw::RedisModule_CreateString?;
            // A NULL context: no automatic memory, the string lives on.
            let pxat = create(std::ptr::null_mut(), c"PXAT".as_ptr(), 4);
            if pxat.is_null() {
                return None;
            }
            Some(Api {
                open_key: raw::RedisModule_OpenKey?,
                close_key: raw::RedisModule_CloseKey?,
                key_type: raw::RedisModule_KeyType?,
                string_dma: raw::RedisModule_StringDMA?,
                string_truncate: raw::RedisModule_StringTruncate?,
                set_abs_expire: raw::RedisModule_SetAbsExpire?,
                get_expire: raw::RedisModule_GetExpire?,
                delete_key: raw::RedisModule_DeleteKey?,
                milliseconds: raw::RedisModule_Milliseconds?,
                ptr_len: raw::RedisModule_StringPtrLen?,
                replicate: raw::RedisModule_Replicate?,
                wrong_arity: raw::RedisModule_WrongArity?,
                reply_error: raw::RedisModule_ReplyWithError?,
                reply_long: raw::RedisModule_ReplyWithLongLong?,
                reply_array: raw::RedisModule_ReplyWithArray?,
                reply_buffer: raw::RedisModule_ReplyWithStringBuffer?,
                reply_null: raw::RedisModule_ReplyWithNull?,
                pxat: Retained(pxat),
            })
        })()
    };
    match api {
        Some(api) => API.set(api).is_ok() || API.get().is_some(),
        None => false,
    }
}

const READ: c_int = raw::REDISMODULE_READ as c_int;
const WRITE: c_int = raw::REDISMODULE_WRITE as c_int;

/// An open key, closed on drop.
struct Key<'a> {
    api: &'a Api,
    key: *mut RKey,
}

impl Key<'_> {
    fn kind(&self) -> c_int {
        // SAFETY: `self.key` came from OpenKey in this command and is
        // closed only on drop; KeyType accepts NULL (a missing key read).
        unsafe { (self.api.key_type)(self.key) }
    }

    /// The string value, borrowed until the key changes or closes.
    fn bytes(&self) -> Option<&[u8]> {
        let mut len = 0usize;
        // SAFETY: an open string key; READ mode does not change it.
        let p = unsafe { (self.api.string_dma)(self.key, &mut len, READ) };
        if p.is_null() {
            return None;
        }
        // SAFETY: DMA gave `len` readable bytes, valid while the key is
        // open and unchanged; the borrow of `self` keeps it so.
        Some(unsafe { std::slice::from_raw_parts(p.cast::<u8>(), len) })
    }

    /// Writes `bytes` as the value; `expire_ms` (absolute) if given.
    fn write(&self, bytes: &[u8], expire_ms: Option<c_longlong>) -> Result<(), CmdError> {
        let failed = || CmdError::msg("could not write the key");
        // SAFETY: the key is open for writing (Access::Write).
        if unsafe { (self.api.string_truncate)(self.key, bytes.len()) } != OK {
            return Err(failed());
        }
        let mut len = 0usize;
        // SAFETY: as above; the key now holds a string of bytes.len().
        let p = unsafe { (self.api.string_dma)(self.key, &mut len, WRITE) };
        if p.is_null() || len != bytes.len() {
            return Err(failed());
        }
        // SAFETY: DMA gave a writable buffer of exactly bytes.len() bytes,
        // which cannot overlap our own `bytes`.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), p.cast::<u8>(), len) };
        if let Some(ms) = expire_ms {
            // SAFETY: an open, written string key.
            if unsafe { (self.api.set_abs_expire)(self.key, ms) } != OK {
                return Err(failed());
            }
        }
        Ok(())
    }

    fn delete(&self) {
        // SAFETY: an open key opened for writing.
        unsafe { (self.api.delete_key)(self.key) };
    }

    /// Milliseconds to live, -1 without expiry, -2 missing.
    fn pttl(&self) -> i64 {
        if self.kind() == raw::REDISMODULE_KEYTYPE_EMPTY as c_int {
            return -2;
        }
        // SAFETY: an open key.
        let ms = unsafe { (self.api.get_expire)(self.key) };
        if ms < 0 {
            -1
        } else {
            ms
        }
    }
}

impl Drop for Key<'_> {
    fn drop(&mut self) {
        // SAFETY: opened by OpenKey in this command, closed once.
        unsafe { (self.api.close_key)(self.key) };
    }
}

const OK: c_int = raw::REDISMODULE_OK as c_int;

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

fn ceil_ms(ns: u64) -> c_longlong {
    let ms = ns / args::MS + u64::from(!ns.is_multiple_of(args::MS));
    c_longlong::try_from(ms).unwrap_or(c_longlong::MAX)
}

fn reply(api: &Api, ctx: *mut Ctx, r: &Reply) {
    // SAFETY: `ctx` is the command's context; buffers are valid for the call.
    unsafe {
        match r {
            Reply::Int(i) => (api.reply_long)(ctx, *i),
            Reply::Text(b) => (api.reply_buffer)(ctx, b.as_ptr().cast(), b.len()),
            Reply::Nil => (api.reply_null)(ctx),
            Reply::Array(v) => {
                (api.reply_array)(ctx, v.len() as c_long);
                for r in v {
                    reply(api, ctx, r);
                }
                OK
            }
        };
    }
}

fn reply_error(api: &Api, ctx: *mut Ctx, e: &CmdError) {
    if *e == CmdError::WrongArity {
        // SAFETY: the command's context.
        unsafe { (api.wrong_arity)(ctx) };
        return;
    }
    let text = CString::new(e.to_string())
        .unwrap_or_else(|_| CString::from(c"ERR floodgate: error text with a NUL"));
    // SAFETY: the command's context and a NUL-terminated string.
    unsafe { (api.reply_error)(ctx, text.as_ptr()) };
}

/// A command's entry point: runs `handler` on the key `argv[1]` and replies.
/// A panic (a bug) becomes an error reply instead of taking Redis down:
/// nothing is written before a command has decided, so the key is unchanged.
pub fn dispatch(
    ctx: *mut Ctx,
    argv: *mut *mut RString,
    argc: c_int,
    handler: Handler,
    access: Access,
) -> c_int {
    let Some(api) = API.get() else {
        return raw::REDISMODULE_ERR as c_int;
    };
    let run = std::panic::AssertUnwindSafe(|| run(api, ctx, argv, argc, handler, access));
    match std::panic::catch_unwind(run) {
        Ok(Ok(r)) => reply(api, ctx, &r),
        Ok(Err(e)) => reply_error(api, ctx, &e),
        Err(_) => reply_error(
            api,
            ctx,
            &CmdError::msg("floodgate: internal error (a bug: please report the command)"),
        ),
    }
    OK
}

fn run(
    api: &Api,
    ctx: *mut Ctx,
    argv: *mut *mut RString,
    argc: c_int,
    handler: Handler,
    access: Access,
) -> Result<Reply, CmdError> {
    let strings: &[*mut RString] = match usize::try_from(argc) {
        // SAFETY: Redis passes `argc` valid strings in `argv` for the call.
        Ok(n) if !argv.is_null() => unsafe { std::slice::from_raw_parts(argv, n) },
        _ => &[],
    };
    // On the stack for every command but a long FG.HUB: no allocation.
    let all: SmallVec<[&[u8]; 16]> = strings
        .iter()
        .map(|&s| {
            let mut len = 0usize;
            // SAFETY: a valid argument string; the bytes live for the call.
            let p = unsafe { (api.ptr_len)(s, &mut len) };
            // SAFETY: StringPtrLen gives `len` bytes (non-NULL for any string).
            unsafe { std::slice::from_raw_parts(p.cast::<u8>(), len) }
        })
        .collect();
    let mut args = &all[..];
    let test_now = args::take_now(&mut args, TEST_CLOCK.load(Ordering::Relaxed))?;
    // After NOW came off: `FG.CHECK NOW 5` names no key.
    let (Some(&name), Some(rest)) = (strings.get(1), args.get(2..)) else {
        return Err(CmdError::WrongArity);
    };
    // SAFETY: a plain function of Redis's.
    let clock = unsafe { (api.milliseconds)() };
    let now = test_now.unwrap_or_else(|| u64::try_from(clock).unwrap_or(0) * args::MS);
    let mut env = Env {
        now,
        default_interval: DEFAULT_INTERVAL.load(Ordering::Relaxed),
        ids: Ids(IDS.load(Ordering::Relaxed)),
    };
    let mode = if access == Access::Write {
        READ | WRITE
    } else {
        READ
    };
    let key = Key {
        api,
        // SAFETY: the command's context and its own key argument.
        key: unsafe { (api.open_key)(ctx, name, mode) },
    };
    let old = match key.kind() {
        k if k == raw::REDISMODULE_KEYTYPE_EMPTY as c_int => None,
        k if k == raw::REDISMODULE_KEYTYPE_STRING as c_int => {
            Some(decode(key.bytes().ok_or(CmdError::WrongType)?)?)
        }
        _ => return Err(CmdError::WrongType),
    };
    // The key's expiry as its state implies it: unchanged, it is not set again.
    let old_expiry = old.as_ref().map(|v| ceil_ms(value::expiry(v)));
    let outcome = handler(rest, old, &mut env)?;
    IDS.store(env.ids.0, Ordering::Relaxed);
    match (outcome.effect, access) {
        (Effect::Keep, _) | (_, Access::Read | Access::Info) => {}
        (Effect::Set(v, until), Access::Write) => {
            let bytes = value::encode(&v);
            let ms = ceil_ms(until);
            key.write(&bytes, (old_expiry != Some(ms)).then_some(ms))?;
            let mut digits = itoa::Buffer::new();
            let ms_text = digits.format(ms);
            // SAFETY: "sbsb": the key (a module string), the value (pointer
            // and length), PXAT (a module string) and the expiry's digits
            // (pointer and length), as the format says.
            unsafe {
                (api.replicate)(
                    ctx,
                    c"SET".as_ptr(),
                    c"sbsb".as_ptr(),
                    name,
                    bytes.as_ptr().cast::<c_char>(),
                    bytes.len(),
                    api.pxat.0,
                    ms_text.as_ptr().cast::<c_char>(),
                    ms_text.len(),
                )
            };
        }
        (Effect::Delete, Access::Write) => {
            if old_expiry.is_some() {
                key.delete();
                // SAFETY: "s": the key, a module string.
                unsafe { (api.replicate)(ctx, c"DEL".as_ptr(), c"s".as_ptr(), name) };
            }
        }
    }
    let mut r = outcome.reply;
    if let (Access::Info, Reply::Array(fields)) = (access, &mut r) {
        if !fields.is_empty() {
            fields.push(Reply::text("pttl"));
            fields.push(Reply::Int(key.pttl()));
        }
    }
    Ok(r)
}
