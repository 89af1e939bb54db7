//! Result codes and the small enumerations of the C ABI. Values never change.

use fg::Error;

/// What every `fg_` function returns. Verdicts first (Kamailio's `pl_check`
/// codes 1, -1, -2, 2 among them, so a module can return them unchanged);
/// errors are `FG_E_*`, all below -99.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum fg_result {
    /// Done.
    FG_OK = 0,
    /// The request passes (Kamailio 1).
    FG_PASS = 1,
    /// Passed by a NOP pipe (Kamailio 2).
    FG_PASS_NOP = 2,
    /// A slot (or lease) was taken.
    FG_ACQUIRED = 3,
    /// A slot was given back.
    FG_RELEASED = 4,
    /// A release found no slot held; the count stays at 0 and the release
    /// is counted as unmatched.
    FG_UNMATCHED = 5,
    /// The lease was released before, expired, or its entry was deleted:
    /// nothing changed.
    FG_ALREADY_RELEASED = 6,
    /// The request is dropped (Kamailio -1).
    FG_DROP = -1,
    /// No pipe with that key (Kamailio -2).
    FG_NO_PIPE = -2,
    /// No slot free: nothing taken.
    FG_REFUSED = -3,
    /// Every member of a balancing group is full, or the group is at its
    /// total: send the link to the dump node.
    FG_GROUP_FULL = -4,
    /// A required pointer was NULL.
    FG_E_NULL = -100,
    /// A key of length 0.
    FG_E_EMPTY_KEY = -101,
    /// A key longer than `FG_MAX_KEY_LEN` (56) bytes.
    FG_E_KEY_TOO_LONG = -102,
    /// An algorithm number or name that is not an `fg_algorithm`.
    FG_E_UNKNOWN_ALGORITHM = -103,
    /// An interval, period or hold time of 0.
    FG_E_ZERO_INTERVAL = -104,
    /// A limit out of range for its algorithm.
    FG_E_INVALID_LIMIT = -105,
    /// A GCRA burst of 0.
    FG_E_INVALID_BURST = -106,
    /// A GCRA rate above one per ns.
    FG_E_RATE_TOO_HIGH = -107,
    /// A load that is NaN or outside 0.0..=1.0.
    FG_E_INVALID_LOAD = -108,
    /// A PID gain that is NaN or infinite.
    FG_E_INVALID_GAIN = -109,
    /// The key holds another kind of limiter (a rate check on SLOTS, ...).
    FG_E_WRONG_ALGORITHM = -110,
    /// The table has no free or evictable entry for this key.
    FG_E_FULL = -111,
    /// No free lease record.
    FG_E_LEASES_FULL = -112,
    /// A capacity of 0 or above 2^24.
    FG_E_INVALID_CAPACITY = -113,
    /// The region is smaller than the table needs.
    FG_E_REGION_TOO_SMALL = -114,
    /// The region is not aligned to 8 bytes.
    FG_E_MISALIGNED = -115,
    /// The memory holds no floodgate table.
    FG_E_NOT_A_TABLE = -116,
    /// The memory holds a floodgate table of another layout version (from
    /// another floodgate release; version 1 tables, before buckets and
    /// tags, among them): remove it and create a new one.
    FG_E_LAYOUT_MISMATCH = -117,
    /// A balancing group of 0 or more than `FG_MAX_MEMBERS` members.
    FG_E_INVALID_GROUP = -118,
    /// The same key twice in one balancing group.
    FG_E_DUPLICATE_MEMBER = -119,
    /// Stored table state does not decode (memory overwritten).
    FG_E_CORRUPT = -120,
    /// The handle was not filled in by `fg_table_init` or `fg_table_attach`.
    FG_E_BAD_HANDLE = -121,
    /// An argument outside its documented values (an `fg_anchor`, ...).
    FG_E_INVALID_ARGUMENT = -122,
    /// An internal error was caught at the boundary (a bug: please report it).
    FG_E_PANIC = -123,
    /// The entry (or the table's insert or controller lock) stayed locked
    /// by a live holder (a stopped process, a lock word naming a live pid)
    /// for the bounded wait: nothing changed. Try again later, or apply
    /// your policy for errors (fail open or closed).
    FG_E_BUSY = -124,
    /// A handle (`fg_resolve`) whose entry was deleted, evicted or reused
    /// for another key since, or that names no entry of this table:
    /// nothing was touched. Resolve the key again.
    FG_E_STALE = -125,
}

/// `fg_algorithm`: TAILDROP (pipelimit).
pub const FG_ALGO_TAILDROP: u32 = 0;
/// `fg_algorithm`: RED (pipelimit-compatible).
pub const FG_ALGO_RED: u32 = 1;
/// `fg_algorithm`: FEEDBACK (pipelimit PID; limit = setpoint percent).
pub const FG_ALGO_FEEDBACK: u32 = 2;
/// `fg_algorithm`: NETWORK (pipelimit; limit in bytes waiting).
pub const FG_ALGO_NETWORK: u32 = 3;
/// `fg_algorithm`: NOP (pipelimit; passes with `FG_PASS_NOP`).
pub const FG_ALGO_NOP: u32 = 4;
/// `fg_algorithm`: INTERVAL (FreeSWITCH `max/interval`).
pub const FG_ALGO_INTERVAL: u32 = 5;
/// `fg_algorithm`: SLOTS (FreeSWITCH concurrent limit, app_rpt links).
pub const FG_ALGO_SLOTS: u32 = 6;
/// `fg_algorithm`: GCRA (rate = limit per table interval, burst 1).
pub const FG_ALGO_GCRA: u32 = 7;
/// `fg_algorithm`: REDP, proportional RED (beyond the references).
pub const FG_ALGO_REDP: u32 = 8;
/// `fg_algorithm`: SLIDING, sliding-window counter (beyond the references).
pub const FG_ALGO_SLIDING: u32 = 9;

/// `fg_anchor`: windows aligned to the table's epoch (mod_hiredis).
pub const FG_ANCHOR_ALIGNED: u32 = 0;
/// `fg_anchor`: a window starts at the first call after the last (mod_hash).
pub const FG_ANCHOR_FIRST_EVENT: u32 = 1;

/// `fg_max_zero`: `max == 0` refuses everything (FreeSWITCH's documentation).
pub const FG_MAX_ZERO_REFUSE_ALL: u32 = 0;
/// `fg_max_zero`: `max == 0` admits the first call of each window (mod_hash).
pub const FG_MAX_ZERO_MOD_HASH: u32 = 1;
/// `fg_max_zero`: `max == 0` means no limit (mod_hiredis).
pub const FG_MAX_ZERO_UNLIMITED: u32 = 2;

impl From<Error> for fg_result {
    fn from(e: Error) -> fg_result {
        match e {
            Error::ZeroInterval => fg_result::FG_E_ZERO_INTERVAL,
            Error::InvalidLimit => fg_result::FG_E_INVALID_LIMIT,
            Error::InvalidBurst => fg_result::FG_E_INVALID_BURST,
            Error::RateTooHigh => fg_result::FG_E_RATE_TOO_HIGH,
            Error::InvalidLoad => fg_result::FG_E_INVALID_LOAD,
            Error::InvalidGain => fg_result::FG_E_INVALID_GAIN,
            Error::WrongAlgorithm => fg_result::FG_E_WRONG_ALGORITHM,
            Error::NoPipe => fg_result::FG_NO_PIPE,
            Error::EmptyKey => fg_result::FG_E_EMPTY_KEY,
            Error::KeyTooLong => fg_result::FG_E_KEY_TOO_LONG,
            Error::Full => fg_result::FG_E_FULL,
            Error::LeasesFull => fg_result::FG_E_LEASES_FULL,
            Error::InvalidCapacity => fg_result::FG_E_INVALID_CAPACITY,
            Error::RegionTooSmall => fg_result::FG_E_REGION_TOO_SMALL,
            Error::Misaligned => fg_result::FG_E_MISALIGNED,
            Error::NotATable => fg_result::FG_E_NOT_A_TABLE,
            Error::LayoutMismatch => fg_result::FG_E_LAYOUT_MISMATCH,
            Error::InvalidOwner => fg_result::FG_E_INVALID_ARGUMENT,
            Error::InvalidGroup => fg_result::FG_E_INVALID_GROUP,
            Error::DuplicateMember => fg_result::FG_E_DUPLICATE_MEMBER,
            Error::Corrupt => fg_result::FG_E_CORRUPT,
            Error::Busy => fg_result::FG_E_BUSY,
            Error::Stale => fg_result::FG_E_STALE,
            _ => fg_result::FG_E_INVALID_ARGUMENT,
        }
    }
}

/// Every code with its NUL-terminated description.
pub(crate) const DESCRIPTIONS: [(fg_result, &str); 37] = [
    (fg_result::FG_OK, "ok\0"),
    (fg_result::FG_PASS, "pass\0"),
    (fg_result::FG_PASS_NOP, "pass (NOP pipe)\0"),
    (fg_result::FG_ACQUIRED, "slot acquired\0"),
    (fg_result::FG_RELEASED, "slot released\0"),
    (
        fg_result::FG_UNMATCHED,
        "release without a held slot (count stays at 0)\0",
    ),
    (
        fg_result::FG_ALREADY_RELEASED,
        "lease already released, expired or deleted\0",
    ),
    (fg_result::FG_DROP, "drop\0"),
    (fg_result::FG_NO_PIPE, "no such pipe\0"),
    (fg_result::FG_REFUSED, "no slot free\0"),
    (
        fg_result::FG_GROUP_FULL,
        "every member full or group total reached: use the dump node\0",
    ),
    (fg_result::FG_E_NULL, "a required pointer is NULL\0"),
    (fg_result::FG_E_EMPTY_KEY, "key is empty\0"),
    (
        fg_result::FG_E_KEY_TOO_LONG,
        "key is longer than 56 bytes\0",
    ),
    (fg_result::FG_E_UNKNOWN_ALGORITHM, "unknown algorithm\0"),
    (
        fg_result::FG_E_ZERO_INTERVAL,
        "interval, period or hold time is 0\0",
    ),
    (
        fg_result::FG_E_INVALID_LIMIT,
        "limit out of range for this algorithm\0",
    ),
    (fg_result::FG_E_INVALID_BURST, "burst must be at least 1\0"),
    (
        fg_result::FG_E_RATE_TOO_HIGH,
        "rate too high: emission interval below 1 ns\0",
    ),
    (
        fg_result::FG_E_INVALID_LOAD,
        "load must be a number in 0.0..1.0\0",
    ),
    (
        fg_result::FG_E_INVALID_GAIN,
        "PID gains must be finite numbers\0",
    ),
    (
        fg_result::FG_E_WRONG_ALGORITHM,
        "operation does not apply to this entry's algorithm\0",
    ),
    (
        fg_result::FG_E_FULL,
        "table full: no free or evictable entry for this key\0",
    ),
    (fg_result::FG_E_LEASES_FULL, "no free lease record\0"),
    (
        fg_result::FG_E_INVALID_CAPACITY,
        "capacity out of range (1 to 2^24)\0",
    ),
    (
        fg_result::FG_E_REGION_TOO_SMALL,
        "memory region too small for this table\0",
    ),
    (
        fg_result::FG_E_MISALIGNED,
        "memory region not aligned to 8 bytes\0",
    ),
    (
        fg_result::FG_E_NOT_A_TABLE,
        "memory holds no floodgate table\0",
    ),
    (
        fg_result::FG_E_LAYOUT_MISMATCH,
        "floodgate table of another layout version (made by another floodgate release): remove it and create a new one\0",
    ),
    (
        fg_result::FG_E_INVALID_GROUP,
        "balancing group must have 1 to 16 members\0",
    ),
    (
        fg_result::FG_E_DUPLICATE_MEMBER,
        "the same key twice in one balancing group\0",
    ),
    (
        fg_result::FG_E_CORRUPT,
        "stored table state does not decode\0",
    ),
    (
        fg_result::FG_E_BAD_HANDLE,
        "handle not filled in by fg_table_init or fg_table_attach\0",
    ),
    (
        fg_result::FG_E_INVALID_ARGUMENT,
        "argument outside its documented values\0",
    ),
    (
        fg_result::FG_E_PANIC,
        "internal error caught at the C boundary\0",
    ),
    (
        fg_result::FG_E_BUSY,
        "the entry stayed locked by a live holder; try again\0",
    ),
    (
        fg_result::FG_E_STALE,
        "the handle's entry was deleted or reused; resolve the key again\0",
    ),
];

/// The description of `code` (NUL-terminated), "unknown result code" if none.
pub(crate) fn describe(code: i32) -> &'static str {
    DESCRIPTIONS
        .iter()
        .find(|(c, _)| *c as i32 == code)
        .map_or("unknown result code\0", |(_, d)| d)
}
