//! GCRA, the generic cell rate algorithm (as in the `governor` crate).
//!
//! `rate` cells per `period`: emission interval `T = period / rate` (integer
//! ns, rounded down), tolerance `tau = T * (burst - 1)`. The only state is the
//! theoretical arrival time `TAT`. At time `t`: refuse if `t < TAT - tau`;
//! else pass and set `TAT = max(TAT, t) + T`. There are no window edges:
//! `burst` requests may pass at once, then one every `T`.
//!
//! Time going backwards is not trusted: `TAT` never moves back, so an earlier
//! `t` only makes a refusal more likely. All arithmetic saturates; `TAT`
//! stops at `u64::MAX - 1` (a table's lock-free hot path keeps
//! `u64::MAX` to mark an entry being removed), and a `TAT` stuck there
//! refuses everything before `u64::MAX - 1 - tau`.

use crate::{Error, Verdict};

/// The highest theoretical arrival time: `TAT` saturates here.
pub(crate) const TAT_MAX: u64 = u64::MAX - 1;

/// A GCRA limiter. See the [module docs](self).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Gcra {
    pub(crate) t: u64,
    pub(crate) tau: u64,
    pub(crate) tat: u64,
    pub(crate) rate: u32,
    pub(crate) burst: u32,
    pub(crate) period: u64,
}

impl Gcra {
    /// `rate` cells per `period_ns`, up to `burst` at once.
    pub const fn new(rate: u32, period_ns: u64, burst: u32) -> Result<Gcra, Error> {
        if period_ns == 0 {
            return Err(Error::ZeroInterval);
        }
        if rate == 0 {
            return Err(Error::InvalidLimit);
        }
        if burst == 0 {
            return Err(Error::InvalidBurst);
        }
        let t = period_ns / rate as u64;
        if t == 0 {
            return Err(Error::RateTooHigh);
        }
        Ok(Gcra {
            t,
            tau: t.saturating_mul(burst as u64 - 1),
            tat: 0,
            rate,
            burst,
            period: period_ns,
        })
    }

    /// Decides one cell at `now`.
    #[inline(always)]
    pub fn check(&mut self, now: u64) -> Verdict {
        if now < self.tat.saturating_sub(self.tau) {
            return Verdict::Drop;
        }
        self.tat = self.tat.max(now).saturating_add(self.t).min(TAT_MAX);
        Verdict::Pass
    }

    /// Decides `n` cells at once at `now` (redis-cell's quantity): they pass
    /// together iff `now >= max(TAT, now) + n*T - (tau + T)`, and then
    /// `TAT = max(TAT, now) + n*T`; refused, nothing changes. `n == 1` is
    /// [`Gcra::check`]; `n == 0` passes and changes nothing (a peek). More
    /// cells than the burst never pass.
    pub fn check_n(&mut self, now: u64, n: u32) -> Verdict {
        if n == 0 {
            return Verdict::Pass;
        }
        let new_tat = self
            .tat
            .max(now)
            .saturating_add(self.t.saturating_mul(u64::from(n)))
            .min(TAT_MAX);
        let allow_at = new_tat.saturating_sub(self.tau.saturating_add(self.t));
        if now < allow_at || n > self.burst {
            return Verdict::Drop;
        }
        self.tat = new_tat;
        Verdict::Pass
    }

    /// The earliest time a cell would pass (the caller's `Retry-After`).
    pub const fn earliest(&self) -> u64 {
        self.tat.saturating_sub(self.tau)
    }

    /// The emission interval T in ns.
    pub const fn emission_interval(&self) -> u64 {
        self.t
    }

    /// The tolerance tau in ns.
    pub const fn tolerance(&self) -> u64 {
        self.tau
    }

    /// The period in ns that `rate` cells are spread over.
    pub const fn period(&self) -> u64 {
        self.period
    }

    /// The rate: cells per period.
    pub const fn rate(&self) -> u32 {
        self.rate
    }

    /// The burst.
    pub const fn burst(&self) -> u32 {
        self.burst
    }

    /// The theoretical arrival time (0 before the first cell).
    pub const fn tat(&self) -> u64 {
        self.tat
    }

    /// Puts back a theoretical arrival time saved earlier (from [`Gcra::tat`]).
    pub fn restore_tat(&mut self, tat: u64) {
        self.tat = tat.min(TAT_MAX);
    }

    /// Forgets all history, as if no cell had passed.
    pub fn reset(&mut self) {
        self.tat = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    #[test]
    fn burst_then_one_per_emission_interval() {
        // 5 per second, burst 3: T = 200 ms, tau = 400 ms.
        let mut g = Gcra::new(5, 1000 * MS, 3).unwrap();
        assert_eq!((g.emission_interval(), g.tolerance()), (200 * MS, 400 * MS));
        let t0 = 10_000 * MS;
        let v: [Verdict; 4] = core::array::from_fn(|_| g.check(t0));
        assert_eq!(
            v,
            [Verdict::Pass, Verdict::Pass, Verdict::Pass, Verdict::Drop]
        );
        assert_eq!(g.earliest(), t0 + 200 * MS);
        assert_eq!(g.check(t0 + 199 * MS), Verdict::Drop);
        assert_eq!(g.check(t0 + 200 * MS), Verdict::Pass);
        assert_eq!(g.check(t0 + 300 * MS), Verdict::Drop);
        assert_eq!(g.check(t0 + 400 * MS), Verdict::Pass);
    }

    #[test]
    fn check_n_is_check_for_one_and_never_exceeds_the_burst() {
        let mut a = Gcra::new(5, 1000 * MS, 3).unwrap();
        let mut b = a;
        for i in 0..400u64 {
            let t = 10_000 * MS + (i * i * 7919 % 3000) * MS / 3 + i * 37 * MS;
            assert_eq!(a.check(t), b.check_n(t, 1), "at {t}");
            assert_eq!(a, b);
        }
        let mut g = Gcra::new(1, 1000 * MS, 5).unwrap();
        let t0 = 50_000 * MS;
        assert_eq!(g.check_n(t0, 6), Verdict::Drop);
        assert_eq!(g.check_n(t0, 0), Verdict::Pass);
        assert_eq!(g.tat(), 0);
        assert_eq!(g.check_n(t0, 3), Verdict::Pass);
        assert_eq!(g.tat(), t0 + 3000 * MS);
        assert_eq!(g.check_n(t0, 3), Verdict::Drop);
        assert_eq!(g.check_n(t0, 2), Verdict::Pass);
        assert_eq!(g.check_n(t0, 1), Verdict::Drop);
        assert_eq!(g.check_n(t0 + 1000 * MS, 1), Verdict::Pass);
        assert_eq!(g.check_n(u64::MAX, u32::MAX), Verdict::Drop);
    }

    #[test]
    fn no_window_edge_burst() {
        // Steady state admits one per T whatever the alignment.
        let mut g = Gcra::new(10, 1000 * MS, 1).unwrap();
        let passed = (0..1000u64)
            .filter(|i| g.check(5_000 * MS + i * 10 * MS).passed())
            .count();
        assert_eq!(passed, 100);
    }

    #[test]
    fn parameters_are_validated() {
        assert_eq!(Gcra::new(1, 0, 1), Err(Error::ZeroInterval));
        assert_eq!(Gcra::new(0, 1, 1), Err(Error::InvalidLimit));
        assert_eq!(Gcra::new(1, 1, 0), Err(Error::InvalidBurst));
        assert_eq!(Gcra::new(10, 5, 1), Err(Error::RateTooHigh));
        let g = Gcra::new(1, u64::MAX, u32::MAX).unwrap();
        assert_eq!(g.tolerance(), u64::MAX);
        assert_eq!((g.rate(), g.burst()), (1, u32::MAX));
    }

    #[test]
    fn extremes_and_backwards_time() {
        let mut g = Gcra::new(1, u64::MAX / 2, 1).unwrap();
        assert_eq!(g.check(u64::MAX), Verdict::Pass);
        assert_eq!(g.tat(), TAT_MAX);
        assert_eq!(g.check(0), Verdict::Drop);
        assert_eq!(g.check(u64::MAX), Verdict::Pass);
        g.reset();
        assert_eq!(g.check(0), Verdict::Pass);
    }
}
