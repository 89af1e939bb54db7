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
}

impl Error {
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
        let all = [
            Error::ZeroInterval,
            Error::InvalidLimit,
            Error::InvalidBurst,
            Error::RateTooHigh,
            Error::InvalidLoad,
            Error::InvalidGain,
            Error::WrongAlgorithm,
        ];
        for (i, e) in all.iter().enumerate() {
            assert_eq!(format!("{e}"), e.as_str());
            for other in &all[i + 1..] {
                assert_ne!(e.as_str(), other.as_str());
            }
        }
    }
}
