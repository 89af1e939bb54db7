//! RED (Kamailio pipelimit-compatible Random Early Detection).
//!
//! At each window boundary `load = last window's counter / limit` (integer
//! division). In the new window every request is counted and passes iff
//! `load == 0` or `counter % load == 0`. A window with no traffic counts as a
//! window: after it `load` is 0 and everything passes. The first window also
//! has load 0 (pipelimit starts with load 0).
//!
//! Worked example (SEMANTICS.md), limit 10: 35 requests in one window give
//! load 3, so in the next window requests 3, 6, 9, ... pass.
//!
//! Known weakness kept for compatibility: with 10..19 requests and limit 10,
//! load is 1 and every request of the next window passes; this RED only drops
//! from twice the limit. [`RedProportional`](crate::RedProportional) drops in
//! proportion from 1x.
//!
//! Difference from Kamailio: limit 0 is refused with [`Error::InvalidLimit`]
//! (Kamailio would divide by it, so it leaves load at 0 and passes everything).

use crate::window::WindowCounter;
use crate::{Error, Verdict, Window};

/// A pipelimit-compatible RED pipe. See the [module docs](self).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Red {
    pub(crate) limit: u32,
    pub(crate) load: u32,
    pub(crate) counter: WindowCounter,
}

impl Red {
    /// A RED pipe with `limit` requests per window (at least 1).
    pub const fn new(limit: u32, window: Window) -> Result<Red, Error> {
        if limit == 0 {
            return Err(Error::InvalidLimit);
        }
        Ok(Red {
            limit,
            load: 0,
            counter: WindowCounter::new(window),
        })
    }

    /// Rolls the window and takes the load from the last window's count
    /// (0 after an idle window, whose count is 0) and the current limit.
    fn roll(&mut self, now: u64) {
        self.counter.roll(now);
        self.load = self.counter.last_counter() / self.limit;
    }

    /// Counts one request at `now` and says whether it passes.
    #[inline(always)]
    pub fn check(&mut self, now: u64) -> Verdict {
        self.roll(now);
        let n = self.counter.hit(now);
        Verdict::from_pass(self.load == 0 || n.is_multiple_of(self.load))
    }

    /// The load of the current window as of the last request.
    pub const fn load(&self) -> u32 {
        self.load
    }

    /// The load a timer would show at `now` (for listings), changing nothing.
    pub fn load_at(&self, now: u64) -> u32 {
        let mut copy = *self;
        copy.roll(now);
        copy.load
    }

    /// The limit per window.
    pub const fn limit(&self) -> u32 {
        self.limit
    }

    /// Replaces the limit (at least 1); the load of the current window is
    /// taken again with it from the next request on (Kamailio computes the
    /// load at its timer tick, so there a new limit waits for the next
    /// window: the table's lock-free hot path keeps only the last window's
    /// count, not the load, so the load follows the limit at once).
    #[inline]
    pub fn set_limit(&mut self, limit: u32) -> Result<(), Error> {
        if limit == 0 {
            return Err(Error::InvalidLimit);
        }
        self.limit = limit;
        Ok(())
    }

    /// The window counter.
    pub const fn counter(&self) -> &WindowCounter {
        &self.counter
    }

    /// Zeroes the current window's count now (the load is kept).
    pub fn reset(&mut self) {
        self.counter.reset();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn red(limit: u32) -> Red {
        Red::new(limit, Window::aligned(100, 0).unwrap()).unwrap()
    }

    #[test]
    fn worked_example_35_over_10_passes_every_third() {
        let mut p = red(10);
        for i in 0..35 {
            // First window: load 0, everything passes.
            assert_eq!(p.check(i), Verdict::Pass);
        }
        let v: [bool; 9] = core::array::from_fn(|i| p.check(100 + i as u64).passed());
        assert_eq!(p.load(), 3);
        assert_eq!(
            v,
            [false, false, true, false, false, true, false, false, true]
        );
    }

    #[test]
    fn idle_window_sets_load_zero() {
        let mut p = red(10);
        for i in 0..35 {
            let _ = p.check(i);
        }
        // Window 1 empty, window 2: load computed from the empty window.
        assert_eq!(p.load_at(150), 3);
        assert_eq!(p.load_at(250), 0);
        for i in 0..50 {
            assert_eq!(p.check(250 + i), Verdict::Pass);
        }
    }

    #[test]
    fn one_to_two_times_the_limit_never_drops() {
        let mut p = red(10);
        for w in 0..5u64 {
            for i in 0..19 {
                assert_eq!(p.check(w * 100 + i), Verdict::Pass, "window {w}");
            }
        }
        assert_eq!(p.load(), 1);
    }

    #[test]
    fn limit_zero_is_refused() {
        assert_eq!(
            Red::new(0, Window::aligned(1, 0).unwrap()),
            Err(Error::InvalidLimit)
        );
        let mut p = red(5);
        assert_eq!(p.set_limit(0), Err(Error::InvalidLimit));
        assert_eq!(p.set_limit(7), Ok(()));
        assert_eq!(p.limit(), 7);
    }

    #[test]
    fn reset_keeps_load() {
        let mut p = red(1);
        for i in 0..4 {
            let _ = p.check(i);
        }
        let _ = p.check(100);
        assert_eq!(p.load(), 4);
        p.reset();
        assert_eq!(p.counter().counter(), 0);
        assert_eq!(p.check(101), Verdict::Drop);
    }
}
