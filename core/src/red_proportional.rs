//! Proportional RED: beyond the references, a RED that drops in proportion
//! to the overload from 1x, with no random numbers.
//!
//! Every request is counted (as in RED). If the last window's count `L` was
//! above `limit`, the `n`-th request of the new window passes iff
//! `floor(n * limit / L) > floor((n - 1) * limit / L)`: the passes are spread
//! evenly (Bresenham), and of the first `n` requests exactly
//! `floor(n * limit / L)` pass. Offered 1.5x the limit steadily, 1x passes;
//! offered 3x, 1x passes. If the last window was at or under the limit (or
//! empty, or this is the first window), everything passes.
//!
//! Like RED it looks at the last window, so a sudden surge passes in the
//! proportion of the window before; TAILDROP or GCRA bound a surge instead.
//! Pipelimit's own RED only drops from 2x the limit; see [`Red`](crate::Red).

use crate::window::WindowCounter;
use crate::{Error, Verdict, Window};

/// A proportional RED pipe. See the [module docs](self).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RedProportional {
    pub(crate) limit: u32,
    pub(crate) counter: WindowCounter,
}

/// Whether the `n`-th request passes when `limit` of every `offered` may.
pub(crate) const fn spread_pass(n: u32, limit: u32, offered: u32) -> bool {
    if offered <= limit {
        return true;
    }
    let (n, limit, offered) = (n as u64, limit as u64, offered as u64);
    n * limit / offered > (n - 1) * limit / offered
}

impl RedProportional {
    /// A pipe aiming at `limit` passes per window (at least 1).
    pub const fn new(limit: u32, window: Window) -> Result<RedProportional, Error> {
        if limit == 0 {
            return Err(Error::InvalidLimit);
        }
        Ok(RedProportional {
            limit,
            counter: WindowCounter::new(window),
        })
    }

    /// Counts one request at `now` and says whether it passes.
    #[inline(always)]
    pub fn check(&mut self, now: u64) -> Verdict {
        let n = self.counter.hit(now);
        Verdict::from_pass(spread_pass(n, self.limit, self.counter.last_counter()))
    }

    /// The limit per window.
    pub const fn limit(&self) -> u32 {
        self.limit
    }

    /// Replaces the limit (at least 1).
    #[inline]
    pub fn set_limit(&mut self, limit: u32) -> Result<(), Error> {
        if limit == 0 {
            return Err(Error::InvalidLimit);
        }
        self.limit = limit;
        Ok(())
    }

    /// The pipelimit-style load (last count / limit) at `now`, for listings.
    pub fn load_at(&self, now: u64) -> u32 {
        self.counter.view(now).1 / self.limit
    }

    /// The window counter.
    pub const fn counter(&self) -> &WindowCounter {
        &self.counter
    }

    /// Zeroes the current window's count now.
    pub fn reset(&mut self) {
        self.counter.reset();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(p: &mut RedProportional, window: u64, offered: u64) -> u64 {
        (0..offered)
            .filter(|i| p.check(window * 1000 + i).passed())
            .count() as u64
    }

    #[test]
    fn one_and_a_half_times_passes_about_the_limit() {
        let mut p = RedProportional::new(100, Window::aligned(1000, 0).unwrap()).unwrap();
        assert_eq!(run(&mut p, 0, 150), 150, "first window: no history");
        for w in 1..10 {
            assert_eq!(run(&mut p, w, 150), 100, "window {w}");
        }
        assert_eq!(p.load_at(10_000), 1);
    }

    #[test]
    fn three_times_passes_the_limit_evenly() {
        let mut p = RedProportional::new(10, Window::aligned(1000, 0).unwrap()).unwrap();
        let _ = run(&mut p, 0, 30);
        let v: [bool; 6] = core::array::from_fn(|i| p.check(1000 + i as u64).passed());
        assert_eq!(v, [false, false, true, false, false, true]);
    }

    #[test]
    fn under_the_limit_everything_passes_and_idle_resets() {
        let mut p = RedProportional::new(10, Window::aligned(1000, 0).unwrap()).unwrap();
        let _ = run(&mut p, 0, 40);
        assert_eq!(run(&mut p, 1, 8), 2);
        assert_eq!(run(&mut p, 2, 10), 10, "last window had 8 <= 10");
        let _ = run(&mut p, 3, 40);
        assert_eq!(run(&mut p, 5, 40), 40, "window 4 was empty");
    }

    #[test]
    fn limits_and_extremes() {
        assert!(RedProportional::new(0, Window::aligned(1, 0).unwrap()).is_err());
        assert!(spread_pass(u32::MAX, 1, u32::MAX));
        assert!(!spread_pass(u32::MAX - 1, 1, u32::MAX));
        let mut p = RedProportional::new(3, Window::aligned(1, 0).unwrap()).unwrap();
        assert_eq!(p.set_limit(0), Err(Error::InvalidLimit));
        assert_eq!(p.set_limit(4), Ok(()));
        assert_eq!(p.limit(), 4);
        p.reset();
        assert_eq!(p.counter().counter(), 0);
    }
}
