//! Sliding-window counter: beyond the references, a TAILDROP without the 2x
//! burst at a window edge.
//!
//! The estimate of the last interval's traffic at time `now`, `e` ns into the
//! current window of length `I`, is the previous window's passes weighted by
//! the part of it still inside the sliding interval, plus this window's:
//! `prev * (I - e) / I + current`. A request passes iff the estimate including
//! it stays `<= limit` (computed exactly in integers:
//! `prev * (I - e) + (current + 1) * I <= limit * I`).
//!
//! Only passed requests are counted: counting drops too would keep a pipe
//! under steady 2x overload from ever passing again. So the counter of a
//! sliding pipe, unlike TAILDROP's, is the number of passes. A drop
//! changes nothing at all: it neither counts nor moves the window, so a
//! pipe's window moves only with its passes (a pipe of limit 0 never opens
//! one). Moved by the drop, the window would differ only for a later call
//! with an earlier time, which would count in the drop's window instead
//! of the one before; a shared table could not move a window for a call
//! that counts nothing without another word (see `table/hot/roll.rs`).
//!
//! Use [`Anchor::Aligned`](crate::Anchor::Aligned) windows. With
//! [`Anchor::FirstEvent`](crate::Anchor::FirstEvent) the previous window may
//! have ended before the current one began; it is still weighted as if
//! adjacent, which errs on the side of dropping.

use crate::window::WindowCounter;
use crate::{Verdict, Window};

/// A sliding-window limiter. See the [module docs](self).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SlidingWindow {
    pub(crate) limit: u32,
    pub(crate) counter: WindowCounter,
}

impl SlidingWindow {
    /// At most about `limit` passes in any interval-long span.
    pub const fn new(limit: u32, window: Window) -> SlidingWindow {
        SlidingWindow {
            limit,
            counter: WindowCounter::new(window),
        }
    }

    /// Decides one request at `now`; only passes are counted.
    #[inline(always)]
    pub fn check(&mut self, now: u64) -> Verdict {
        let before = self.counter;
        let n = self.counter.hit(now);
        let interval = u128::from(self.counter.window().interval());
        let remaining = interval - u128::from(self.counter.elapsed_in_window(now));
        let estimate =
            u128::from(self.counter.last_counter()) * remaining + u128::from(n) * interval;
        let pass = estimate <= u128::from(self.limit) * interval;
        if !pass {
            // Nothing counted, the window not moved (module docs).
            self.counter = before;
        }
        Verdict::from_pass(pass)
    }

    /// The limit per sliding interval.
    pub const fn limit(&self) -> u32 {
        self.limit
    }

    /// Replaces the limit.
    #[inline]
    pub fn set_limit(&mut self, limit: u32) {
        self.limit = limit;
    }

    /// The window counter (passes only).
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

    #[test]
    fn a_drop_before_the_first_pass_opens_no_window() {
        let mut p = SlidingWindow::new(0, Window::aligned(100, 0).unwrap());
        assert_eq!(p.check(550), Verdict::Drop);
        assert_eq!(p.counter().state().start(), None);
        // The first pass opens its own window, not the drop's.
        p.set_limit(1);
        assert_eq!(p.check(120), Verdict::Pass);
        assert_eq!(p.counter().state().start(), Some(100));
        // A drop in an open window keeps it.
        assert_eq!(p.check(150), Verdict::Drop);
        assert_eq!(p.counter().state().start(), Some(100));
        assert_eq!(p.counter().counter(), 1);
    }

    #[test]
    fn a_drop_in_a_later_window_moves_nothing() {
        let mut p = SlidingWindow::new(2, Window::aligned(100, 0).unwrap());
        assert!(p.check(90).passed() && p.check(91).passed());
        // 10 ns into the next window, 90% of 2 still weigh: a drop, which
        // leaves window 0 open with its count.
        assert_eq!(p.check(110), Verdict::Drop);
        assert_eq!(p.counter().state().start(), Some(0));
        assert_eq!((p.counter().counter(), p.counter().last_counter()), (2, 0));
        // A call with an earlier time is still in window 0 (a drop there).
        assert_eq!(p.check(95), Verdict::Drop);
        // The next pass moves it: window 1, window 0's passes the last.
        assert_eq!(p.check(160), Verdict::Pass);
        assert_eq!(p.counter().state().start(), Some(100));
        assert_eq!((p.counter().counter(), p.counter().last_counter()), (1, 2));
    }

    #[test]
    fn no_double_burst_at_the_edge() {
        let mut p = SlidingWindow::new(3, Window::aligned(100, 0).unwrap());
        let passed = [99, 99, 99, 100, 100, 100]
            .iter()
            .filter(|&&t| p.check(t).passed())
            .count();
        assert_eq!(passed, 3, "TAILDROP would pass 6");
    }

    #[test]
    fn previous_window_fades_linearly() {
        let mut p = SlidingWindow::new(10, Window::aligned(100, 0).unwrap());
        for _ in 0..10 {
            assert!(p.check(50).passed());
        }
        // 30% into the next window, 70% of 10 = 7 still weigh: 3 more pass.
        let passed = (0..10).filter(|_| p.check(130).passed()).count();
        assert_eq!(passed, 3);
        assert_eq!(p.counter().counter(), 3, "only passes are counted");
    }

    #[test]
    fn steady_overload_still_passes_the_limit() {
        let mut p = SlidingWindow::new(10, Window::aligned(100, 0).unwrap());
        let mut passed_late = 0;
        for t in 0..1000u64 {
            // Two requests per ns tick of 5: 40 offered per window.
            if t % 5 == 0 {
                for _ in 0..2 {
                    if p.check(t).passed() && t >= 500 {
                        passed_late += 1;
                    }
                }
            }
        }
        // 5 windows after warm-up: 10 per window on average.
        assert!((45..=55).contains(&passed_late), "{passed_late}");
    }

    #[test]
    fn limit_zero_and_extremes() {
        let mut p = SlidingWindow::new(0, Window::aligned(u64::MAX, 0).unwrap());
        assert_eq!(p.check(u64::MAX), Verdict::Drop);
        p.set_limit(u32::MAX);
        assert_eq!(p.limit(), u32::MAX);
        assert_eq!(p.check(u64::MAX), Verdict::Pass);
        p.reset();
        assert_eq!(p.counter().counter(), 0);
    }
}
