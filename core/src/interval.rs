//! Interval limit (FreeSWITCH `limit ... max/interval`, e.g. `5/1`, `100/60`):
//! at most `max` new calls per window, whatever their length.
//!
//! Every call is counted, refused ones too (both FreeSWITCH backends do so);
//! a call passes iff the window's count, after counting it, is `<= max`.
//! `max < 0` counts only and never refuses. What `max == 0` means is where
//! FreeSWITCH's backends disagree, so it is a setting ([`MaxZero`]):
//!
//! | FreeSWITCH backend | window | `max == 0` | floodgate settings |
//! | --- | --- | --- | --- |
//! | mod_hash | starts at the first call after the previous window | first call of each window admitted | [`Anchor::FirstEvent`](crate::Anchor::FirstEvent), [`MaxZero::ModHash`] |
//! | mod_hiredis | aligned to the epoch (`now / interval`) | unlimited | [`Anchor::Aligned`](crate::Anchor::Aligned) with epoch 0, [`MaxZero::Unlimited`] |
//! | floodgate default | either | refuse all | [`MaxZero::RefuseAll`] |
//!
//! FreeSWITCH counts whole seconds; here the window is any number of ns, so
//! `5/1` is `IntervalLimit::new(5, Window::aligned(1_000_000_000, 0)?, ..)`.

use crate::window::{Roll, WindowCounter};
use crate::{Verdict, Window};

/// What `max == 0` means. See the [module docs](self).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum MaxZero {
    /// Refuse every call (the floodgate default, and what FreeSWITCH documents).
    #[default]
    RefuseAll,
    /// mod_hash: the first call of each window is admitted, later ones refused.
    ModHash,
    /// mod_hiredis: `max == 0` means no limit.
    Unlimited,
}

/// A FreeSWITCH-style `max/interval` limit. See the [module docs](self).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IntervalLimit {
    pub(crate) max: i32,
    pub(crate) zero: MaxZero,
    pub(crate) counter: WindowCounter,
}

impl IntervalLimit {
    /// At most `max` calls per window (`max < 0`: count only).
    pub const fn new(max: i32, window: Window, zero: MaxZero) -> IntervalLimit {
        IntervalLimit {
            max,
            zero,
            counter: WindowCounter::new(window),
        }
    }

    /// Counts one new call at `now` and says whether it is admitted.
    #[inline(always)]
    pub fn check(&mut self, now: u64) -> Verdict {
        let first = self.counter.roll(now) != Roll::Same;
        let n = self.counter.hit(now);
        let pass = match self.max {
            m if m < 0 => true,
            0 => match self.zero {
                MaxZero::RefuseAll => false,
                MaxZero::ModHash => first,
                MaxZero::Unlimited => true,
            },
            m => n <= m as u32,
        };
        Verdict::from_pass(pass)
    }

    /// The maximum per window (negative: count only).
    pub const fn max(&self) -> i32 {
        self.max
    }

    /// Replaces the maximum.
    #[inline]
    pub fn set_max(&mut self, max: i32) {
        self.max = max;
    }

    /// The `max == 0` setting.
    pub const fn max_zero(&self) -> MaxZero {
        self.zero
    }

    /// The window counter (`limit_usage` prints its counter).
    pub const fn counter(&self) -> &WindowCounter {
        &self.counter
    }

    /// Zeroes the current window's count now (`limit_interval_reset`).
    pub fn reset(&mut self) {
        self.counter.reset();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    fn passes(l: &mut IntervalLimit, times: &[u64]) -> usize {
        times.iter().filter(|&&t| l.check(t).passed()).count()
    }

    #[test]
    fn five_per_second() {
        let mut l = IntervalLimit::new(5, Window::aligned(S, 0).unwrap(), MaxZero::RefuseAll);
        assert_eq!(passes(&mut l, &[0; 8]), 5);
        assert_eq!(l.counter().counter(), 8, "refused calls count too");
        assert_eq!(passes(&mut l, &[S; 8]), 5);
        assert_eq!(l.max(), 5);
    }

    #[test]
    fn two_per_thirty_seconds_first_event_anchor() {
        let w = Window::first_event(30 * S).unwrap();
        let mut l = IntervalLimit::new(2, w, MaxZero::RefuseAll);
        assert_eq!(passes(&mut l, &[7 * S, 8 * S, 9 * S]), 2);
        // mod_hash: the window runs 7..37 s, not 0..30 s.
        assert_eq!(l.check(31 * S), Verdict::Drop);
        assert_eq!(l.check(37 * S), Verdict::Pass);
    }

    #[test]
    fn negative_max_counts_only() {
        let mut l = IntervalLimit::new(-1, Window::aligned(S, 0).unwrap(), MaxZero::RefuseAll);
        assert_eq!(passes(&mut l, &[1; 100]), 100);
        assert_eq!(l.counter().counter(), 100);
    }

    #[test]
    fn max_zero_settings() {
        let w = Window::aligned(S, 0).unwrap();
        let mut refuse = IntervalLimit::new(0, w, MaxZero::RefuseAll);
        let mut hash = IntervalLimit::new(0, w, MaxZero::ModHash);
        let mut redis = IntervalLimit::new(0, w, MaxZero::Unlimited);
        let times = [0, 1, 2, S, S + 1, 3 * S];
        assert_eq!(passes(&mut refuse, &times), 0);
        assert_eq!(passes(&mut hash, &times), 3);
        assert_eq!(passes(&mut redis, &times), 6);
        assert_eq!(hash.max_zero(), MaxZero::ModHash);
    }

    #[test]
    fn mod_hash_reset_does_not_readmit() {
        let mut l = IntervalLimit::new(0, Window::aligned(S, 0).unwrap(), MaxZero::ModHash);
        assert_eq!(l.check(0), Verdict::Pass);
        l.reset();
        assert_eq!(l.check(1), Verdict::Drop);
    }

    #[test]
    fn interval_reset_reopens_the_window() {
        let mut l = IntervalLimit::new(2, Window::aligned(60 * S, 0).unwrap(), MaxZero::RefuseAll);
        assert_eq!(passes(&mut l, &[0, 1, 2]), 2);
        l.reset();
        assert_eq!(passes(&mut l, &[3, 4, 5]), 2);
        l.set_max(-1);
        assert_eq!(l.check(6), Verdict::Pass);
    }
}
