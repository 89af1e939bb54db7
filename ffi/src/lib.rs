//! C ABI for the floodgate core: `libfloodgate.a`, `libfloodgate.so` and
//! `include/floodgate.h` (generated from this file by cbindgen).
//!
//! # Conventions
//! * Every function returns an [`fg_result`] (except [`fg_now_ns`],
//!   [`fg_strerror`] and the version functions). Verdicts are non-negative
//!   or small negative codes (Kamailio's 1, -1, -2, 2 among them); errors are
//!   `FG_E_*`, all below -99. [`fg_strerror`] names each.
//! * Outputs go through out-pointers that are written only on success. A NULL
//!   required pointer is [`fg_result::FG_E_NULL`]; optional out-pointers say so.
//! * Keys are `(const uint8_t *key, size_t key_len)`: any bytes, NUL and
//!   non-UTF-8 included, 1 to `FG_MAX_KEY_LEN` (56) of them.
//! * Time is `uint64_t` nanoseconds of a monotonic clock the caller picks
//!   ([`fg_now_ns`] reads `CLOCK_MONOTONIC`); the core never reads a clock.
//! * The table lives in memory the caller owns (shm, a `MAP_SHARED` file, a
//!   static buffer), aligned to 8 bytes. An [`fg_table`] handle is plain
//!   memory the caller owns too (stack, static, global): no allocation, no
//!   free. It stays valid while the region stays mapped. A handle may be
//!   shared by any number of threads; after `fork` it keeps working in the
//!   child, which then locks under its own pid. It holds addresses in the
//!   process that filled it in: do not hand the handle itself to another
//!   process (through shared memory, say); that process attaches its own.
//! * Nothing panics into C: every export runs behind one macro that adds
//!   `#[no_mangle]`, the NULL checks and a panic boundary
//!   ([`fg_result::FG_E_PANIC`]).
//! * A failed call changes nothing in the table.
//! * No call waits without bound: an entry whose lock stays held by a live
//!   holder (a process stopped in a debugger or by `SIGSTOP`, a lock word
//!   naming a live pid) gives [`fg_result::FG_E_BUSY`] after a bounded wait
//!   (0.1 to 0.2 s on an idle machine), and [`fg_list`] and
//!   [`fg_clean_unused`] pass over such an entry.
#![deny(missing_docs)]
#![deny(clippy::undocumented_unsafe_blocks)]
#![allow(non_camel_case_types)]

use core::ffi::c_char;
use fg::table::{Balanced, Config, LeaseRelease, LeaseVerdict, Owner, Table};
use fg::{Algorithm, Error, Gains, MaxZero, Release, SlotVerdict, Verdict};

mod codes;
pub use codes::*;

/// Major version; equals the crate's (a test checks it).
pub const FG_VERSION_MAJOR: u32 = 0;
/// Minor version.
pub const FG_VERSION_MINOR: u32 = 1;
/// Patch version.
pub const FG_VERSION_PATCH: u32 = 0;
/// Longest key in bytes.
pub const FG_MAX_KEY_LEN: usize = 56;
/// Most members in a balancing group.
pub const FG_MAX_MEMBERS: usize = 16;
/// Size of an [`fg_table`] handle in `uint64_t` words.
pub const FG_TABLE_HANDLE_WORDS: usize = 20;

/// A handle on a table: plain memory owned by the caller, filled in by
/// [`fg_table_init`] or [`fg_table_attach`]. Do not touch its contents.
/// Valid in the process that filled it in and in its `fork`ed children;
/// any other process calls [`fg_table_attach`] for a handle of its own.
#[repr(C)]
pub struct fg_table {
    /// Opaque.
    pub opaque: [u64; FG_TABLE_HANDLE_WORDS],
}

/// A table's shape and time settings ([`fg_table_bytes`], [`fg_table_init`]).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct fg_config {
    /// Entries, 1 to 2^24.
    pub capacity: u32,
    /// Lease records, 0 to 2^24 (0: no leases).
    pub lease_capacity: u32,
    /// Window length (ns) of pipes the table creates: pipelimit's
    /// `timer_interval`. Not 0.
    pub interval_ns: u64,
    /// Time (ns) at which aligned windows start.
    pub epoch_ns: u64,
    /// Hash seed: pick it at random.
    pub seed: u64,
}

/// What a listing shows of one entry (pl.list, pl.stats, limit_usage).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct fg_entry {
    /// The key's bytes (the first `key_len` count).
    pub key: [u8; FG_MAX_KEY_LEN],
    /// Length of the key.
    pub key_len: u32,
    /// One of [`fg_algorithm`].
    pub algorithm: u32,
    /// The limit (TAILDROP limit, interval max, slots max, GCRA rate, FEEDBACK setpoint).
    pub limit: i64,
    /// Requests in the current window; SLOTS: slots held.
    pub counter: u32,
    /// Requests in the previous window; SLOTS: unmatched releases.
    pub last_counter: u32,
    /// pipelimit's load: RED `last / limit`, NETWORK 1 or -1, else 0.
    pub load: i32,
}

/// The shared FEEDBACK controller ([`fg_pid_get`]).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct fg_pid {
    /// Target load, 0.0 to 1.0.
    pub setpoint: f64,
    /// Proportional gain.
    pub kp: f64,
    /// Integral gain.
    pub ki: f64,
    /// Derivative gain.
    pub kd: f64,
    /// Integral of the error.
    pub int_err: f64,
    /// Error at the last update.
    pub last_err: f64,
    /// Load given to the last update.
    pub load: f64,
    /// Drop rate in percent, 0 to 100.
    pub drop_rate: u32,
}

/// A callback for [`fg_list`]: return 0 to go on, anything else to stop.
pub type fg_list_cb =
    Option<unsafe extern "C" fn(entry: *const fg_entry, ctx: *mut core::ffi::c_void) -> i32>;

// ---------------------------------------------------------------------------
// The handle.

const HANDLE_MAGIC: u64 = u64::from_le_bytes(*b"FGHANDL1");

#[repr(C)]
struct Handle {
    magic: u64,
    table: Table<'static>,
}

const _: () = assert!(FG_MAX_KEY_LEN == fg::table::MAX_KEY_LEN);
const _: () = assert!(core::mem::size_of::<Handle>() <= 8 * FG_TABLE_HANDLE_WORDS);
const _: () = assert!(core::mem::align_of::<Handle>() <= 8);

/// The owner a handle's table locks as: this process, its id followed
/// across `fork` (see [`fg::table::process`]), so one handle serves
/// parent and child alike.
fn owner() -> Owner {
    fg::table::process::process_owner()
}

/// The table behind a handle, borrowed in place (no copy per call).
///
/// # Safety
/// `t` is non-null (checked by the export macro) and points to an `fg_table`
/// that nobody writes while the returned reference is used (the header's
/// contract: a handle is written only by `fg_table_init`/`fg_table_attach`).
#[inline(always)]
unsafe fn table<'h>(t: *const fg_table) -> Result<&'h Table<'static>, fg_result> {
    let h = t.cast::<Handle>();
    // SAFETY: fg_table is 8-aligned and at least as large as Handle (const
    // asserts above); reading the magic is reading a u64 of caller memory.
    if unsafe { core::ptr::addr_of!((*h).magic).read() } != HANDLE_MAGIC {
        return Err(fg_result::FG_E_BAD_HANDLE);
    }
    // SAFETY: the magic says fg_table_init/attach wrote a Handle here, and
    // the caller keeps it unchanged while the call runs.
    Ok(unsafe { &(*h).table })
}

fn write_handle(out: *mut fg_table, table: Table<'static>) {
    let h = Handle {
        magic: HANDLE_MAGIC,
        table,
    };
    // SAFETY: out is non-null (checked by the macro), 8-aligned and large
    // enough for a Handle (const asserts above).
    unsafe { out.cast::<Handle>().write(h) };
}

/// A key from C.
///
/// # Safety
/// `key` is non-null and valid for `len` bytes when `len` <= 64.
unsafe fn key<'k>(key: *const u8, len: usize) -> Result<&'k [u8], fg_result> {
    if len == 0 {
        return Err(fg_result::FG_E_EMPTY_KEY);
    }
    if len > FG_MAX_KEY_LEN {
        return Err(fg_result::FG_E_KEY_TOO_LONG);
    }
    // SAFETY: the caller's contract for (key, len); len is 1..=FG_MAX_KEY_LEN.
    Ok(unsafe { core::slice::from_raw_parts(key, len) })
}

fn algorithm(a: u32) -> Result<Algorithm, fg_result> {
    u8::try_from(a)
        .ok()
        .and_then(Algorithm::from_u8)
        .ok_or(fg_result::FG_E_UNKNOWN_ALGORITHM)
}

fn verdict(v: Verdict) -> fg_result {
    match v {
        Verdict::Pass => fg_result::FG_PASS,
        Verdict::Drop => fg_result::FG_DROP,
        Verdict::PassNop => fg_result::FG_PASS_NOP,
    }
}

/// Writes `v` through `out` when it is not NULL.
///
/// # Safety
/// `out` is NULL or valid for a write of `T`.
unsafe fn put<T>(out: *mut T, v: T) {
    if !out.is_null() {
        // SAFETY: non-null and valid per the caller's contract.
        unsafe { out.write(v) };
    }
}

/// What an export's body may return early with.
type R = Result<fg_result, fg_result>;

/// Return values the export macro knows how to fill in for NULL and panic.
trait Ffi {
    const NULL: Self;
    const PANIC: Self;
}

impl Ffi for fg_result {
    const NULL: Self = fg_result::FG_E_NULL;
    const PANIC: Self = fg_result::FG_E_PANIC;
}

impl Ffi for u64 {
    const NULL: Self = 0;
    const PANIC: Self = 0;
}

impl Ffi for u32 {
    const NULL: Self = 0;
    const PANIC: Self = 0;
}

impl Ffi for *const c_char {
    const NULL: Self = c"a required pointer is NULL".as_ptr();
    const PANIC: Self = c"internal error caught at the C boundary".as_ptr();
}

/// Every export goes through this macro: it adds `#[no_mangle]` and
/// `extern "C"`, returns `FG_E_NULL` if a listed pointer is NULL, and turns a
/// panic into `FG_E_PANIC` instead of unwinding into C. Bodies evaluate to
/// `Result<fg_result, fg_result>` (`Ok` and `Err` both go to C). Exports
/// that return another type name it (`-> T`); their body evaluates to `T`,
/// and `T`'s [`Ffi`] values stand for NULL and panic.
macro_rules! export {
    ($(
        $(#[$doc:meta])*
        fn $name:ident($($arg:ident: $ty:ty),* $(,)?) -> $ret:ty; nonnull($($nn:ident),*) $body:block
    )*) => {$(
        $(#[$doc])*
        #[no_mangle]
        pub extern "C" fn $name($($arg: $ty),*) -> $ret {
            $(if $nn.is_null() { return <$ret as Ffi>::NULL; })*
            let run = move || -> $ret { $body };
            match std::panic::catch_unwind(std::panic::AssertUnwindSafe(run)) {
                Ok(v) => v,
                Err(_) => <$ret as Ffi>::PANIC,
            }
        }
    )*};
    ($(
        $(#[$doc:meta])*
        fn $name:ident($($arg:ident: $ty:ty),* $(,)?) nonnull($($nn:ident),*) $body:block
    )*) => {$(
        $(#[$doc])*
        ///
        /// # Safety
        /// Pointers must be NULL or valid for what this function reads and
        /// writes through them; a handle must come from `fg_table_init` or
        /// `fg_table_attach`, and its region must still be mapped.
        // SAFETY (for the whole body): this is an `unsafe fn`; the raw
        // pointers its body reads and writes are checked non-null just below
        // (or, where optional, in the body), and their validity and lifetime
        // are the caller's contract, stated in `# Safety` above and in the
        // header: the body relies on nothing else.
        #[no_mangle]
        pub unsafe extern "C" fn $name($($arg: $ty),*) -> fg_result {
            $(if $nn.is_null() { return <fg_result as Ffi>::NULL; })*
            let run = move || -> R { $body };
            match std::panic::catch_unwind(std::panic::AssertUnwindSafe(run)) {
                Ok(Ok(code)) | Ok(Err(code)) => code,
                Err(_) => <fg_result as Ffi>::PANIC,
            }
        }
    )*};
}

fn cfg(c: &fg_config) -> Config {
    Config {
        capacity: c.capacity as usize,
        lease_capacity: c.lease_capacity as usize,
        interval_ns: c.interval_ns,
        epoch: c.epoch_ns,
        seed: c.seed,
    }
}

fn err(e: Error) -> fg_result {
    fg_result::from(e)
}

export! {
    /// Bytes a table with `config` needs: written to `*out`.
    fn fg_table_bytes(config: *const fg_config, out: *mut usize) nonnull(config, out) {
        let c = cfg(&*config);
        let n = Table::size_for(&c).map_err(err)?;
        out.write(n);
        Ok(fg_result::FG_OK)
    }

    /// Builds a new, empty table in `region` (`len` bytes, 8-aligned, at least
    /// `fg_table_bytes`) and fills in the handle `*out`. Once the arguments
    /// are checked, the first `fg_table_bytes` bytes are zeroed and the table
    /// written there; on an error nothing is written. Call once, in one
    /// process; others use `fg_table_attach`.
    fn fg_table_init(region: *mut core::ffi::c_void, len: usize, config: *const fg_config, out: *mut fg_table)
        nonnull(region, config, out)
    {
        let c = cfg(&*config);
        let t = Table::init_raw(region.cast(), len, &c, owner()).map_err(err)?;
        write_handle(out, t);
        Ok(fg_result::FG_OK)
    }

    /// Opens the table another process (or an earlier call) built in
    /// `region`, mapped at any address, and fills in `*out`.
    /// `FG_E_NOT_A_TABLE` if the memory holds no table, `FG_E_LAYOUT_MISMATCH`
    /// if it holds another layout version (a file left by another floodgate
    /// release: remove it and create a new table).
    fn fg_table_attach(region: *mut core::ffi::c_void, len: usize, out: *mut fg_table) nonnull(region, out) {
        let t = Table::attach_raw(region.cast(), len, owner()).map_err(err)?;
        write_handle(out, t);
        Ok(fg_result::FG_OK)
    }

    /// Kamailio `pl_check(name)`: counts one request on an existing pipe.
    /// `FG_PASS` (1), `FG_DROP` (-1), `FG_PASS_NOP` (2) or `FG_NO_PIPE` (-2),
    /// which a module can return unchanged.
    fn fg_check(t: *const fg_table, key: *const u8, key_len: usize, now_ns: u64) nonnull(t, key) {
        let tab = table(t)?;
        let k = self::key(key, key_len)?;
        match tab.check(k, now_ns) {
            Ok(v) => Ok(verdict(v)),
            Err(e) => Err(err(e)),
        }
    }

    /// Resolves `key` to a handle on its entry, written to `*handle_out`:
    /// check through it with `fg_check_ref`, which skips hashing and looking
    /// the key up. `FG_NO_PIPE` if there is no such entry. The handle is a
    /// plain number, valid in every process sharing the table until the
    /// entry is deleted, evicted or reused (then `FG_E_STALE`).
    fn fg_resolve(t: *const fg_table, key: *const u8, key_len: usize, handle_out: *mut u64)
        nonnull(t, key, handle_out)
    {
        let tab = table(t)?;
        let k = self::key(key, key_len)?;
        let h = tab.resolve(k).map_err(err)?;
        handle_out.write(h.to_bits());
        Ok(fg_result::FG_OK)
    }

    /// `fg_check` through a handle from `fg_resolve`: `FG_PASS`, `FG_DROP`
    /// or `FG_PASS_NOP` as `fg_check` on the key, or `FG_E_STALE` (nothing
    /// touched) if the handle's entry has been deleted, evicted or reused
    /// since, or `handle` never came from this table.
    fn fg_check_ref(t: *const fg_table, handle: u64, now_ns: u64) nonnull(t) {
        let tab = table(t)?;
        match tab.check_ref(fg::table::Handle::from_bits(handle), now_ns) {
            Ok(v) => Ok(verdict(v)),
            Err(e) => Err(err(e)),
        }
    }

    /// Kamailio `pl_check(name, algorithm, limit)`: creates the pipe (with the
    /// table's interval) if missing, else keeps its algorithm and replaces its
    /// limit when `limit > 0`; then counts one request. `algorithm` is an
    /// `fg_algorithm`.
    fn fg_check_create(t: *const fg_table, key: *const u8, key_len: usize, algorithm: u32, limit: i64, now_ns: u64)
        nonnull(t, key)
    {
        let tab = table(t)?;
        let k = self::key(key, key_len)?;
        let a = self::algorithm(algorithm)?;
        tab.check_or_create(k, a, limit, now_ns).map(verdict).map_err(err)
    }

    /// Kamailio `pl_active(name)`: `FG_OK` if the pipe exists, `FG_NO_PIPE` if
    /// not. Takes no entry lock (never `FG_E_BUSY`).
    fn fg_active(t: *const fg_table, key: *const u8, key_len: usize) nonnull(t, key) {
        let tab = table(t)?;
        let k = self::key(key, key_len)?;
        match tab.active(k).map_err(err)? {
            true => Ok(fg_result::FG_OK),
            false => Ok(fg_result::FG_NO_PIPE),
        }
    }

    /// Kamailio `pl.set_pipe`: creates the pipe or sets its algorithm and
    /// limit (same algorithm: counters kept). A FEEDBACK limit sets the setpoint.
    fn fg_pipe_set(t: *const fg_table, key: *const u8, key_len: usize, algorithm: u32, limit: i64, now_ns: u64)
        nonnull(t, key)
    {
        let tab = table(t)?;
        let k = self::key(key, key_len)?;
        let a = self::algorithm(algorithm)?;
        tab.set(k, a, limit, now_ns).map_err(err)?;
        Ok(fg_result::FG_OK)
    }

    /// Deletes an entry (FreeSWITCH users' "delete one entry"); its leases end.
    fn fg_pipe_remove(t: *const fg_table, key: *const u8, key_len: usize) nonnull(t, key) {
        let tab = table(t)?;
        let k = self::key(key, key_len)?;
        match tab.remove(k) {
            Ok(()) => Ok(fg_result::FG_OK),
            Err(e) => Err(err(e)),
        }
    }

    /// One entry as a listing shows it at `now_ns` (pl.list name, limit_usage).
    fn fg_get(t: *const fg_table, key: *const u8, key_len: usize, now_ns: u64, out: *mut fg_entry)
        nonnull(t, key, out)
    {
        let tab = table(t)?;
        let k = self::key(key, key_len)?;
        let s = tab.get(k, now_ns).map_err(err)?;
        let mut e = fg_entry {
            key: [0; FG_MAX_KEY_LEN],
            key_len: k.len() as u32,
            algorithm: s.algorithm as u32,
            limit: s.limit,
            counter: s.counter,
            last_counter: s.last_counter,
            load: s.load,
        };
        e.key[..k.len()].copy_from_slice(k);
        out.write(e);
        Ok(fg_result::FG_OK)
    }

    /// Calls `cb(entry, ctx)` for every entry as a listing shows it at
    /// `now_ns` (pl.list, pl.stats, pl.get_pipes), without allocating, until
    /// `cb` returns non-zero. The entry pointer is valid during the call only.
    /// An entry whose lock stays held by a live holder is left out.
    fn fg_list(t: *const fg_table, now_ns: u64, cb: fg_list_cb, ctx: *mut core::ffi::c_void) nonnull(t) {
        let tab = table(t)?;
        let Some(cb) = cb else { return Err(fg_result::FG_E_NULL) };
        for info in tab.iter(now_ns) {
            let mut e = fg_entry {
                key: [0; FG_MAX_KEY_LEN],
                key_len: info.key().len() as u32,
                algorithm: info.stats.algorithm as u32,
                limit: info.stats.limit,
                counter: info.stats.counter,
                last_counter: info.stats.last_counter,
                load: info.stats.load,
            };
            e.key[..info.key().len()].copy_from_slice(info.key());
            if cb(&e, ctx) != 0 {
                break;
            }
        }
        Ok(fg_result::FG_OK)
    }

    /// FreeSWITCH concurrent `limit` / app_rpt link: takes a slot of `key`
    /// under `max` (< 0 counts only, 0 refuses all). `FG_ACQUIRED` or `FG_REFUSED`.
    fn fg_slot_acquire(t: *const fg_table, key: *const u8, key_len: usize, max: i32, now_ns: u64) nonnull(t, key) {
        let tab = table(t)?;
        let k = self::key(key, key_len)?;
        match tab.acquire(k, max, now_ns).map_err(err)? {
            SlotVerdict::Acquired => Ok(fg_result::FG_ACQUIRED),
            SlotVerdict::Refused => Ok(fg_result::FG_REFUSED),
        }
    }

    /// Gives back a slot taken by `fg_slot_acquire` (at hangup).
    /// `FG_RELEASED`, or `FG_UNMATCHED` if no such slot is held: the count
    /// never goes below 0, and slots held by leases are left alone (release
    /// those with `fg_lease_release`).
    fn fg_slot_release(t: *const fg_table, key: *const u8, key_len: usize, now_ns: u64) nonnull(t, key) {
        let tab = table(t)?;
        let k = self::key(key, key_len)?;
        match tab.release(k, now_ns).map_err(err)? {
            Release::Released => Ok(fg_result::FG_RELEASED),
            Release::Unmatched => Ok(fg_result::FG_UNMATCHED),
        }
    }

    /// FreeSWITCH `limit_usage`: slots held on `key`, written to `*out`.
    fn fg_slot_usage(t: *const fg_table, key: *const u8, key_len: usize, now_ns: u64, out: *mut u32)
        nonnull(t, key, out)
    {
        let tab = table(t)?;
        let k = self::key(key, key_len)?;
        let n = tab.usage(k, now_ns).map_err(err)?;
        out.write(n);
        Ok(fg_result::FG_OK)
    }

    /// Takes a slot with a lease handle written to `*lease_out`. With
    /// `hold_ns > 0` the slot is reclaimed once that long has passed without
    /// a release; 0 holds it until released. `FG_ACQUIRED` or `FG_REFUSED`.
    fn fg_lease_acquire(
        t: *const fg_table, key: *const u8, key_len: usize, max: i32, hold_ns: u64, now_ns: u64,
        lease_out: *mut u64
    ) nonnull(t, key, lease_out) {
        let tab = table(t)?;
        let k = self::key(key, key_len)?;
        let hold = (hold_ns > 0).then_some(hold_ns);
        match tab.lease_acquire(k, max, hold, now_ns).map_err(err)? {
            LeaseVerdict::Acquired(l) => {
                lease_out.write(l.to_bits());
                Ok(fg_result::FG_ACQUIRED)
            }
            LeaseVerdict::Refused => Ok(fg_result::FG_REFUSED),
        }
    }

    /// Releases a lease; idempotent. `FG_RELEASED` or `FG_ALREADY_RELEASED`
    /// (released before, expired, or its entry deleted).
    fn fg_lease_release(t: *const fg_table, lease: u64, now_ns: u64) nonnull(t) {
        let tab = table(t)?;
        match tab.lease_release(fg::table::Lease::from_bits(lease), now_ns).map_err(err)? {
            LeaseRelease::Released => Ok(fg_result::FG_RELEASED),
            LeaseRelease::AlreadyReleased => Ok(fg_result::FG_ALREADY_RELEASED),
        }
    }

    /// FreeSWITCH `limit ... max/interval`: at most `max` new calls per
    /// `interval_ns` (< 0 counts only). `anchor` is an `fg_anchor`
    /// (`FG_ANCHOR_ALIGNED`: windows from the table's epoch, as mod_hiredis;
    /// `FG_ANCHOR_FIRST_EVENT`: from the first call, as mod_hash); `max_zero`
    /// an `fg_max_zero`. `FG_PASS` or `FG_DROP`.
    fn fg_rate_check(
        t: *const fg_table, key: *const u8, key_len: usize, max: i32, interval_ns: u64, anchor: u32,
        max_zero: u32, now_ns: u64
    ) nonnull(t, key) {
        let tab = table(t)?;
        let k = self::key(key, key_len)?;
        let first_event = match anchor {
            FG_ANCHOR_ALIGNED => false,
            FG_ANCHOR_FIRST_EVENT => true,
            _ => return Err(fg_result::FG_E_INVALID_ARGUMENT),
        };
        let mz = match max_zero {
            FG_MAX_ZERO_REFUSE_ALL => MaxZero::RefuseAll,
            FG_MAX_ZERO_MOD_HASH => MaxZero::ModHash,
            FG_MAX_ZERO_UNLIMITED => MaxZero::Unlimited,
            _ => return Err(fg_result::FG_E_INVALID_ARGUMENT),
        };
        tab.rate_check(k, max, interval_ns, first_event, mz, now_ns).map(verdict).map_err(err)
    }

    /// `fg_rate_check` through a handle from `fg_resolve` on an interval
    /// limit: `max` replaces the stored max; the interval, anchor and
    /// `max_zero` rule are the ones the `fg_rate_check` that created the
    /// entry gave (to change them, call `fg_rate_check` by key: it starts
    /// the entry afresh, and the handle then gets `FG_E_STALE`). `FG_PASS`
    /// or `FG_DROP`; `FG_E_WRONG_ALGORITHM` if the entry is not an interval
    /// limit; `FG_E_STALE` (nothing touched) as `fg_check_ref`.
    fn fg_rate_check_ref(t: *const fg_table, handle: u64, max: i32, now_ns: u64) nonnull(t) {
        let tab = table(t)?;
        tab.rate_check_ref(fg::table::Handle::from_bits(handle), max, now_ns)
            .map(verdict)
            .map_err(err)
    }

    /// FreeSWITCH `limit_interval_reset`: zeroes the current window's count now.
    fn fg_interval_reset(t: *const fg_table, key: *const u8, key_len: usize, now_ns: u64) nonnull(t, key) {
        let tab = table(t)?;
        let k = self::key(key, key_len)?;
        tab.interval_reset(k, now_ns).map_err(err)?;
        Ok(fg_result::FG_OK)
    }

    /// app_rpt hub balancing: takes a slot on the least-loaded of `n` member
    /// keys (`keys[i]`, `key_lens[i]`; ties to the lowest index), each under
    /// `per_member_max`, all under `total_max` (< 0: none), atomically.
    /// Writes the member's index to `*member_out`; with `lease_out` not NULL
    /// the slot is a lease (see `fg_lease_acquire` for `hold_ns`), else a
    /// plain slot to give back with `fg_slot_release` on that member's key.
    /// `FG_ACQUIRED`, or `FG_GROUP_FULL`: send the link to the dump node.
    fn fg_balance_acquire(
        t: *const fg_table, keys: *const *const u8, key_lens: *const usize, n: usize,
        per_member_max: i32, total_max: i32, hold_ns: u64, now_ns: u64,
        member_out: *mut usize, lease_out: *mut u64
    ) nonnull(t, keys, key_lens, member_out) {
        let tab = table(t)?;
        if n == 0 || n > FG_MAX_MEMBERS {
            return Err(fg_result::FG_E_INVALID_GROUP);
        }
        let mut members: [&[u8]; FG_MAX_MEMBERS] = [&[]; FG_MAX_MEMBERS];
        for (i, m) in members.iter_mut().enumerate().take(n) {
            let (p, len) = (*keys.add(i), *key_lens.add(i));
            if p.is_null() {
                return Err(fg_result::FG_E_NULL);
            }
            *m = self::key(p, len)?;
        }
        let members = &members[..n];
        let r = if lease_out.is_null() {
            tab.balance_acquire(members, per_member_max, total_max, now_ns)
        } else {
            let hold = (hold_ns > 0).then_some(hold_ns);
            tab.balance_lease(members, per_member_max, total_max, hold, now_ns)
        };
        match r.map_err(err)? {
            Balanced::Acquired { member, lease } => {
                member_out.write(member);
                if let Some(l) = lease {
                    put(lease_out, l.to_bits());
                }
                Ok(fg_result::FG_ACQUIRED)
            }
            Balanced::Full => Ok(fg_result::FG_GROUP_FULL),
        }
    }

    /// Kamailio `pl.set_pid ki kp kd`: sets the shared controller's gains
    /// (each finite, else `FG_E_INVALID_GAIN`).
    fn fg_pid_set(t: *const fg_table, ki: f64, kp: f64, kd: f64) nonnull(t) {
        let tab = table(t)?;
        tab.pid_set(Gains { kp, ki, kd }).map_err(err)?;
        Ok(fg_result::FG_OK)
    }

    /// Kamailio `pl.get_pid`: the whole shared controller, written to `*out`.
    fn fg_pid_get(t: *const fg_table, out: *mut fg_pid) nonnull(t, out) {
        let tab = table(t)?;
        let c = tab.pid_get().map_err(err)?;
        let g = c.gains();
        let p = fg_pid {
            setpoint: c.setpoint(),
            kp: g.kp,
            ki: g.ki,
            kd: g.kd,
            int_err: c.int_err(),
            last_err: c.last_err(),
            load: c.load(),
            drop_rate: u32::from(c.drop_rate()),
        };
        out.write(p);
        Ok(fg_result::FG_OK)
    }

    /// Sets the FEEDBACK setpoint in percent (0 to 100).
    fn fg_pid_setpoint(t: *const fg_table, percent: u32) nonnull(t) {
        let tab = table(t)?;
        tab.set_setpoint(percent).map_err(err)?;
        Ok(fg_result::FG_OK)
    }

    /// Kamailio `pl.push_load`: one controller update with a load in
    /// 0.0..=1.0 (NaN or outside: `FG_E_INVALID_LOAD`). Writes the new drop
    /// rate to `*drop_rate_out` if it is not NULL.
    fn fg_push_load(t: *const fg_table, load: f64, drop_rate_out: *mut u32) nonnull(t) {
        let tab = table(t)?;
        let r = tab.push_load(load).map_err(err)?;
        put(drop_rate_out, u32::from(r));
        Ok(fg_result::FG_OK)
    }

    /// NETWORK pipes: the bytes waiting on the host's queues, measured by the caller.
    fn fg_push_network(t: *const fg_table, bytes_waiting: u64) nonnull(t) {
        let tab = table(t)?;
        tab.push_network(bytes_waiting);
        Ok(fg_result::FG_OK)
    }

    /// Kamailio `clean_unused`: deletes pipes idle for `intervals` whole
    /// windows (0: none). Writes how many to `*removed_out` if not NULL. An
    /// entry whose lock stays held by a live holder is left alone.
    fn fg_clean_unused(t: *const fg_table, intervals: u32, now_ns: u64, removed_out: *mut usize) nonnull(t) {
        let tab = table(t)?;
        let n = tab.clean_unused(intervals, now_ns);
        put(removed_out, n);
        Ok(fg_result::FG_OK)
    }

    /// Parses a pipelimit algorithm name (`TAILDROP`, `RED`, ..., any case)
    /// of `len` bytes into `*out` (an `fg_algorithm`).
    fn fg_algorithm_from_name(name: *const c_char, len: usize, out: *mut u32) nonnull(name, out) {
        let s = core::slice::from_raw_parts(name.cast::<u8>(), len);
        let a = Algorithm::from_name(s).ok_or(fg_result::FG_E_UNKNOWN_ALGORITHM)?;
        out.write(a as u32);
        Ok(fg_result::FG_OK)
    }
}

export! {
    /// A static, NUL-terminated description of any result code (unknown codes
    /// included). Never NULL.
    fn fg_strerror(code: i32) -> *const c_char; nonnull() {
        codes::describe(code).as_ptr().cast()
    }

    /// `CLOCK_MONOTONIC` in nanoseconds: a convenience for callers; the core
    /// never reads a clock. 0 if the clock cannot be read.
    fn fg_now_ns() -> u64; nonnull() {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: ts is a valid timespec to write to.
        if unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) } != 0 {
            return 0;
        }
        (ts.tv_sec as u64)
            .saturating_mul(1_000_000_000)
            .saturating_add(ts.tv_nsec as u64)
    }

    /// The library's version as `major << 16 | minor << 8 | patch`; compare
    /// with `FG_VERSION_MAJOR` etc. from the header.
    fn fg_version() -> u32; nonnull() {
        FG_VERSION_MAJOR << 16 | FG_VERSION_MINOR << 8 | FG_VERSION_PATCH
    }

    /// The library's version as a static NUL-terminated string, e.g. "0.1.0".
    fn fg_version_string() -> *const c_char; nonnull() {
        concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
    }
}

#[cfg(test)]
mod tests;
