//! The one time source of a benchmark.
//!
//! floodgate takes `now` as an argument; governor and ratelimit read a clock
//! they own. To make every side pay the same for time, each case advances a
//! [`BenchClock`] by [`STEP_NS`](crate::STEP_NS) per operation and every side
//! reads that clock: floodgate and the hand-written peers get its value as
//! `now`, governor and ratelimit read it through their `Clock` traits. An
//! advance is a relaxed load and store (no read-modify-write), so the time
//! source costs about a nanosecond and no side is slowed by a locked
//! instruction it would not otherwise pay.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A fake clock in ns, advanced by the benchmark loop. Clones share the time.
///
/// Only one thread should advance a clock (threaded cases give each thread
/// its own), so a plain load and store is enough.
#[derive(Debug, Clone, Default)]
pub struct BenchClock {
    ns: Arc<PaddedNs>,
}

/// The time on a cache line of its own.
#[derive(Debug, Default)]
#[repr(align(128))]
struct PaddedNs(AtomicU64);

impl BenchClock {
    /// A clock at 0 ns.
    pub fn new() -> BenchClock {
        BenchClock::default()
    }

    /// A clock at `ns`.
    pub fn at(ns: u64) -> BenchClock {
        let c = BenchClock::default();
        c.ns.0.store(ns, Ordering::Relaxed);
        c
    }

    /// Advances the clock by [`STEP_NS`](crate::STEP_NS) and returns the new
    /// time in ns.
    #[inline(always)]
    pub fn tick(&self) -> u64 {
        let t = self.ns.0.load(Ordering::Relaxed) + crate::STEP_NS;
        self.ns.0.store(t, Ordering::Relaxed);
        t
    }

    /// The time in ns.
    #[inline(always)]
    pub fn now_ns(&self) -> u64 {
        self.ns.0.load(Ordering::Relaxed)
    }
}

impl governor::clock::Clock for BenchClock {
    type Instant = governor::nanos::Nanos;

    #[inline(always)]
    fn now(&self) -> Self::Instant {
        self.now_ns().into()
    }
}

impl ratelimit::Clock for BenchClock {
    #[inline(always)]
    fn elapsed(&self) -> Duration {
        Duration::from_nanos(self.now_ns())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_share_the_time() {
        let a = BenchClock::new();
        let b = a.clone();
        assert_eq!(a.tick(), crate::STEP_NS);
        assert_eq!(b.now_ns(), crate::STEP_NS);
        assert_eq!(
            governor::clock::Clock::now(&b),
            governor::nanos::Nanos::from(crate::STEP_NS)
        );
        assert_eq!(
            ratelimit::Clock::elapsed(&b),
            Duration::from_nanos(crate::STEP_NS)
        );
    }
}
