//! TAILDROP (Kamailio pipelimit): at most `limit` requests per interval.
//!
//! Every request is counted, dropped ones too; a request passes iff the
//! interval's counter, after counting it, is `<= limit`. `limit` is per
//! interval, as in pipelimit 5.6 (not per second as in the older `ratelimit`
//! module). With limit 0 every request is dropped.
//!
//! Known weakness kept for compatibility: with fixed windows up to 2x the
//! limit can pass around a window edge. [`SlidingWindow`](crate::SlidingWindow)
//! removes it.

use crate::window::WindowCounter;
use crate::{Verdict, Window};

/// A TAILDROP pipe. See the [module docs](self).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Taildrop {
    pub(crate) limit: u32,
    pub(crate) counter: WindowCounter,
}

impl Taildrop {
    /// A pipe passing at most `limit` requests per window.
    pub const fn new(limit: u32, window: Window) -> Taildrop {
        Taildrop {
            limit,
            counter: WindowCounter::new(window),
        }
    }

    /// Counts one request at `now` and says whether it passes.
    #[inline(always)]
    pub fn check(&mut self, now: u64) -> Verdict {
        let n = self.counter.hit(now);
        Taildrop::decide(n, self.limit)
    }

    /// The verdict on a request that made the window's count `n`: the
    /// table's one-swap check decides with it too.
    #[inline(always)]
    pub(crate) const fn decide(n: u32, limit: u32) -> Verdict {
        Verdict::from_pass(n <= limit)
    }

    /// The limit per window.
    pub const fn limit(&self) -> u32 {
        self.limit
    }

    /// Replaces the limit; it applies from the next request on.
    #[inline]
    pub fn set_limit(&mut self, limit: u32) {
        self.limit = limit;
    }

    /// The window counter (counter, last counter, window).
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

    const S: u64 = 1_000_000_000;

    #[test]
    fn passes_limit_per_interval_then_drops() {
        let mut p = Taildrop::new(3, Window::aligned(10 * S, 0).unwrap());
        let v: [Verdict; 5] = core::array::from_fn(|i| p.check(i as u64));
        assert_eq!(
            v,
            [
                Verdict::Pass,
                Verdict::Pass,
                Verdict::Pass,
                Verdict::Drop,
                Verdict::Drop
            ]
        );
        assert_eq!(p.counter().counter(), 5);
        // Next interval: the counter starts again; last_counter keeps 5.
        assert_eq!(p.check(10 * S), Verdict::Pass);
        assert_eq!(p.counter().last_counter(), 5);
    }

    #[test]
    fn fixed_window_lets_2x_through_at_an_edge() {
        // The documented weakness: 3 at the end of one window, 3 at the start of the next.
        let mut p = Taildrop::new(3, Window::aligned(10 * S, 0).unwrap());
        let passed = [9 * S, 9 * S, 9 * S, 10 * S, 10 * S, 10 * S]
            .iter()
            .filter(|&&t| p.check(t).passed())
            .count();
        assert_eq!(passed, 6);
    }

    #[test]
    fn limit_zero_drops_all_and_reset_reopens() {
        let mut p = Taildrop::new(0, Window::aligned(S, 0).unwrap());
        assert_eq!(p.check(0), Verdict::Drop);
        p.set_limit(1);
        p.reset();
        assert_eq!(p.limit(), 1);
        assert_eq!(p.check(1), Verdict::Pass);
        assert_eq!(p.check(2), Verdict::Drop);
    }
}
