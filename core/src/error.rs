//! The crate's error type.

use core::fmt;

/// Why an operation was refused. Small, `Copy`, and stable: every variant has
/// a fixed meaning that the C ABI maps onto its own result codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Error {
    /// An interval or period of 0 ns was given; windows must have a length.
    ZeroInterval,
    /// A limit outside the algorithm's range (for example RED with limit 0,
    /// or a FEEDBACK setpoint above 100 percent).
    InvalidLimit,
    /// A GCRA burst of 0; the smallest burst is 1 (no burst).
    InvalidBurst,
    /// A GCRA rate whose emission interval `period / rate` is below 1 ns.
    RateTooHigh,
    /// A load that is NaN or outside `0.0..=1.0`.
    InvalidLoad,
    /// A PID gain that is NaN or infinite.
    InvalidGain,
    /// The operation does not apply to this algorithm (a rate check on
    /// SLOTS, a slot acquire on a rate pipe).
    WrongAlgorithm,
    /// No pipe (entry) with that key exists (pipelimit's -2).
    NoPipe,
    /// A key of length 0.
    EmptyKey,
    /// A key longer than [`MAX_KEY_LEN`](crate::table::MAX_KEY_LEN) bytes.
    KeyTooLong,
    /// The table has no free entry in the key's two buckets and none there
    /// is evictable; nothing was changed.
    Full,
    /// No free lease record; nothing was changed.
    LeasesFull,
    /// A table capacity of 0 or above [`MAX_CAPACITY`](crate::table::MAX_CAPACITY).
    InvalidCapacity,
    /// The memory region is smaller than the table needs.
    RegionTooSmall,
    /// The memory region is not aligned to 8 bytes.
    Misaligned,
    /// The memory holds no floodgate table (bad magic number).
    NotATable,
    /// The memory holds a floodgate table of another layout version or shape.
    LayoutMismatch,
    /// An owner id of 0 or above 2^31 - 1.
    InvalidOwner,
    /// A balancing group with no member or more than
    /// [`MAX_MEMBERS`](crate::table::MAX_MEMBERS) members.
    InvalidGroup,
    /// The same key twice in one balancing group.
    DuplicateMember,
    /// Stored state that does not decode (memory overwritten by someone else).
    Corrupt,
    /// An entry (or the table's insert or controller lock) stayed locked by
    /// a holder that is alive, or looks alive, for
    /// [`BUSY_AFTER`](crate::table::lock::BUSY_AFTER) spins without any
    /// change: a process stopped in a debugger or by `SIGSTOP`, one in
    /// another PID namespace, or a lock word overwritten with a live pid.
    /// Nothing was changed. Try again later, or apply the policy you have
    /// for errors (fail open or closed).
    Busy,
    /// A [`Handle`](crate::table::Handle) whose entry was deleted, evicted
    /// or reused for another key since it was resolved (or a handle that
    /// names no entry of this table): nothing was touched. Resolve the key
    /// again.
    Stale,
}

impl Error {
    /// Every error, in declaration order (for mapping tables such as the C
    /// ABI's result codes).
    pub const ALL: [Error; 23] = [
        Error::ZeroInterval,
        Error::InvalidLimit,
        Error::InvalidBurst,
        Error::RateTooHigh,
        Error::InvalidLoad,
        Error::InvalidGain,
        Error::WrongAlgorithm,
        Error::NoPipe,
        Error::EmptyKey,
        Error::KeyTooLong,
        Error::Full,
        Error::LeasesFull,
        Error::InvalidCapacity,
        Error::RegionTooSmall,
        Error::Misaligned,
        Error::NotATable,
        Error::LayoutMismatch,
        Error::InvalidOwner,
        Error::InvalidGroup,
        Error::DuplicateMember,
        Error::Corrupt,
        Error::Busy,
        Error::Stale,
    ];

    /// A short, static description (also what `Display` prints).
    pub const fn as_str(self) -> &'static str {
        match self {
            Error::ZeroInterval => "interval must be at least 1 ns",
            Error::InvalidLimit => "limit out of range for this algorithm",
            Error::InvalidBurst => "burst must be at least 1",
            Error::RateTooHigh => "rate too high: emission interval below 1 ns",
            Error::InvalidLoad => "load must be a number in 0.0..=1.0",
            Error::InvalidGain => "PID gains must be finite numbers",
            Error::WrongAlgorithm => "operation does not apply to this algorithm",
            Error::NoPipe => "no such pipe",
            Error::EmptyKey => "key is empty",
            Error::KeyTooLong => "key is longer than 56 bytes",
            Error::Full => "table full: no free or evictable entry for this key",
            Error::LeasesFull => "no free lease record",
            Error::InvalidCapacity => "capacity out of range",
            Error::RegionTooSmall => "memory region too small for this table",
            Error::Misaligned => "memory region not aligned to 8 bytes",
            Error::NotATable => "memory holds no floodgate table",
            Error::LayoutMismatch => "floodgate table of another layout version or shape",
            Error::InvalidOwner => "owner id must be in 1..=2^31-1",
            Error::InvalidGroup => "balancing group must have 1..=16 members",
            Error::DuplicateMember => "the same key twice in one balancing group",
            Error::Corrupt => "stored table state does not decode",
            Error::Busy => "the entry stayed locked by a live holder; try again",
            Error::Stale => "the handle's entry was deleted or reused; resolve the key again",
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl core::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_matches_as_str_and_is_distinct() {
        let all = Error::ALL;
        for (i, e) in all.iter().enumerate() {
            assert_eq!(format!("{e}"), e.as_str());
            for other in &all[i + 1..] {
                assert_ne!(e.as_str(), other.as_str());
            }
        }
    }
}
