//! FEEDBACK (Kamailio pipelimit): a PID controller on the host's CPU load sets
//! one drop rate that every FEEDBACK pipe applies.
//!
//! # The controller ([`PidController`])
//! The host measures its load in `0.0..=1.0` (or an operator pushes one) and
//! calls [`PidController::update`]. With `setpoint` the target load:
//!
//! ```text
//! err = setpoint - load
//! dif = err - last_err
//! if int_err < 0 || err < 0 { int_err += err }
//! out = kp*err + ki*int_err + kd*dif
//! last_err = err
//! drop_rate = max(out, 0), truncated to an integer percent
//! ```
//!
//! Default gains kp = 0, ki = -25, kd = 0, as in Kamailio. Worked example:
//! setpoint 0.5 and loads 0.9, 0.9, 0.9 give int_err -0.4, -0.8, -1.2 and drop
//! rates 10, 20, 30 (a unit test reproduces it).
//!
//! # The pipe ([`Feedback`])
//! Each request increments the pipe's counter `c` and is dropped iff
//! `PERMUTATION[c % 100] < drop_rate`. Because [`PERMUTATION`] is a
//! permutation of 0..99, exactly `drop_rate` of every 100 consecutive requests
//! are dropped, spread out rather than bunched.
//!
//! # Differences from Kamailio, deliberate
//! * [`PERMUTATION`] is floodgate's own: `PERMUTATION[i] = (61 * i) % 100`
//!   (61 is coprime to 100 and close to 100/phi, which spreads drops evenly).
//!   Kamailio uses a different fixed table, so the same counters drop the same
//!   *number* of requests per 100 but at other positions.
//! * The drop rate is clamped to 100 (Kamailio keeps larger values, which drop
//!   everything just the same).
//! * Loads outside `0.0..=1.0` or NaN, and non-finite gains, are refused with a
//!   typed error instead of being used.
//! * The setpoint is a percent `0..=100` set through
//!   [`PidController::set_setpoint_percent`]; in a table it is set when a
//!   FEEDBACK pipe is created as well, not only through `pl.set_pipe`.

use crate::window::WindowCounter;
use crate::{Error, Verdict, Window};

/// The fixed permutation of 0..99 used by the drop test:
/// `PERMUTATION[i] = (61 * i) % 100`.
pub const PERMUTATION: [u8; 100] = {
    let mut p = [0u8; 100];
    let mut i = 0;
    while i < 100 {
        p[i] = ((61 * i) % 100) as u8;
        i += 1;
    }
    p
};

/// The drop test of a FEEDBACK pipe for its `counter`-th request of a window.
pub const fn feedback_drops(counter: u32, drop_rate: u8) -> bool {
    PERMUTATION[(counter % 100) as usize] < drop_rate
}

/// PID gains. See the [module docs](self).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Gains {
    /// Proportional gain (default 0).
    pub kp: f64,
    /// Integral gain (default -25).
    pub ki: f64,
    /// Derivative gain (default 0).
    pub kd: f64,
}

impl Gains {
    /// Kamailio's defaults: kp 0, ki -25, kd 0.
    pub const DEFAULT: Gains = Gains {
        kp: 0.0,
        ki: -25.0,
        kd: 0.0,
    };
}

impl Default for Gains {
    fn default() -> Gains {
        Gains::DEFAULT
    }
}

/// The whole state of the FEEDBACK controller: one per table, shared by every
/// FEEDBACK pipe in it. Plain data: copy it in and out of shared memory.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PidController {
    setpoint: f64,
    gains: Gains,
    int_err: f64,
    last_err: f64,
    load: f64,
    drop_rate: u8,
}

impl Default for PidController {
    fn default() -> PidController {
        PidController::new()
    }
}

impl PidController {
    /// Setpoint 0, default gains, no error history, drop rate 0.
    pub const fn new() -> PidController {
        PidController {
            setpoint: 0.0,
            gains: Gains::DEFAULT,
            int_err: 0.0,
            last_err: 0.0,
            load: 0.0,
            drop_rate: 0,
        }
    }

    /// Rebuilds a controller from its parts (as stored in shared memory).
    /// Every value is checked as the setters would check it.
    pub fn from_parts(
        setpoint: f64,
        gains: Gains,
        int_err: f64,
        last_err: f64,
        load: f64,
        drop_rate: u8,
    ) -> Result<PidController, Error> {
        if !(0.0..=1.0).contains(&setpoint) {
            return Err(Error::InvalidLimit);
        }
        check_gains(gains)?;
        if !int_err.is_finite() || !last_err.is_finite() {
            return Err(Error::InvalidGain);
        }
        check_load(load)?;
        Ok(PidController {
            setpoint,
            gains,
            int_err,
            last_err,
            load,
            drop_rate: drop_rate.min(100),
        })
    }

    /// Sets the target load as a percent `0..=100` (a FEEDBACK pipe's limit).
    pub fn set_setpoint_percent(&mut self, percent: u32) -> Result<(), Error> {
        if percent > 100 {
            return Err(Error::InvalidLimit);
        }
        self.setpoint = 0.01 * f64::from(percent);
        Ok(())
    }

    /// Sets the gains (`pl.set_pid`); each must be finite.
    pub fn set_gains(&mut self, gains: Gains) -> Result<(), Error> {
        check_gains(gains)?;
        self.gains = gains;
        Ok(())
    }

    /// Runs one controller update with a measured or pushed `load` and
    /// returns the new drop rate (percent, 0..=100).
    pub fn update(&mut self, load: f64) -> Result<u8, Error> {
        check_load(load)?;
        let err = self.setpoint - load;
        let dif = err - self.last_err;
        if self.int_err < 0.0 || err < 0.0 {
            self.int_err += err;
        }
        let out = self.gains.kp * err + self.gains.ki * self.int_err + self.gains.kd * dif;
        self.last_err = err;
        self.load = load;
        // C's double-to-int conversion truncates; `as` also maps NaN to 0 and
        // saturates, and the clamp keeps it a percent.
        self.drop_rate = if out > 0.0 { out.min(100.0) as u8 } else { 0 };
        Ok(self.drop_rate)
    }

    /// The current drop rate in percent (0..=100).
    pub const fn drop_rate(&self) -> u8 {
        self.drop_rate
    }

    /// The target load (0.0..=1.0).
    pub const fn setpoint(&self) -> f64 {
        self.setpoint
    }

    /// The gains.
    pub const fn gains(&self) -> Gains {
        self.gains
    }

    /// The integral of the error.
    pub const fn int_err(&self) -> f64 {
        self.int_err
    }

    /// The error at the last update.
    pub const fn last_err(&self) -> f64 {
        self.last_err
    }

    /// The load given to the last update.
    pub const fn load(&self) -> f64 {
        self.load
    }
}

fn check_load(load: f64) -> Result<(), Error> {
    if (0.0..=1.0).contains(&load) {
        Ok(())
    } else {
        Err(Error::InvalidLoad)
    }
}

fn check_gains(g: Gains) -> Result<(), Error> {
    if g.kp.is_finite() && g.ki.is_finite() && g.kd.is_finite() {
        Ok(())
    } else {
        Err(Error::InvalidGain)
    }
}

/// A FEEDBACK pipe. See the [module docs](self).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Feedback {
    pub(crate) counter: WindowCounter,
}

impl Feedback {
    /// A FEEDBACK pipe; the drop rate comes from the shared controller.
    pub const fn new(window: Window) -> Feedback {
        Feedback {
            counter: WindowCounter::new(window),
        }
    }

    /// Counts one request at `now` and applies `drop_rate` (percent, values
    /// above 100 act as 100).
    #[inline(always)]
    pub fn check(&mut self, now: u64, drop_rate: u8) -> Verdict {
        let n = self.counter.hit(now);
        Verdict::from_pass(!feedback_drops(n, drop_rate))
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

    #[test]
    fn permutation_is_a_permutation() {
        let mut seen = [false; 100];
        for &v in PERMUTATION.iter() {
            assert!(!seen[v as usize]);
            seen[v as usize] = true;
        }
    }

    #[test]
    fn worked_example_setpoint_half_load_point_nine() {
        let mut c = PidController::new();
        c.set_setpoint_percent(50).unwrap();
        let mut ints = [0.0; 3];
        let mut rates = [0u8; 3];
        for i in 0..3 {
            rates[i] = c.update(0.9).unwrap();
            ints[i] = c.int_err();
        }
        assert_eq!(rates, [10, 20, 30]);
        for (got, want) in ints.iter().zip([-0.4, -0.8, -1.2]) {
            assert!((got - want).abs() < 1e-12, "{got} vs {want}");
        }
        assert_eq!(c.drop_rate(), 30);
        assert_eq!(c.load(), 0.9);
    }

    #[test]
    fn integral_only_accumulates_when_negative() {
        let mut c = PidController::new();
        c.set_setpoint_percent(50).unwrap();
        // Under the setpoint with no negative history: no accumulation.
        assert_eq!(c.update(0.1).unwrap(), 0);
        assert_eq!(c.int_err(), 0.0);
        assert_eq!(c.update(0.9).unwrap(), 10);
        // Load drops: positive err now accumulates because int_err < 0.
        assert_eq!(c.update(0.3).unwrap(), 5);
        assert!((c.int_err() - (-0.2)).abs() < 1e-12);
        assert_eq!(c.update(0.3).unwrap(), 0);
        assert!((c.last_err() - 0.2).abs() < 1e-12);
    }

    #[test]
    fn rejects_bad_loads_and_gains_without_changing_state() {
        let mut c = PidController::new();
        let before = c;
        for bad in [f64::NAN, -0.01, 1.01, f64::INFINITY] {
            assert_eq!(c.update(bad), Err(Error::InvalidLoad));
        }
        let nan = Gains {
            kp: f64::NAN,
            ..Gains::DEFAULT
        };
        assert_eq!(c.set_gains(nan), Err(Error::InvalidGain));
        assert_eq!(c.set_setpoint_percent(101), Err(Error::InvalidLimit));
        assert_eq!(c, before);
        assert_eq!(c.gains(), Gains::default());
    }

    #[test]
    fn huge_gains_clamp_to_100() {
        let mut c = PidController::new();
        c.set_gains(Gains {
            kp: 0.0,
            ki: -1e300,
            kd: 0.0,
        })
        .unwrap();
        assert_eq!(c.update(1.0).unwrap(), 100);
        assert_eq!(c.setpoint(), 0.0);
    }

    #[test]
    fn from_parts_validates() {
        let c = PidController::from_parts(0.5, Gains::DEFAULT, -0.4, -0.4, 0.9, 200).unwrap();
        assert_eq!(c.drop_rate(), 100);
        assert!(PidController::from_parts(1.5, Gains::DEFAULT, 0.0, 0.0, 0.0, 0).is_err());
        assert!(PidController::from_parts(0.5, Gains::DEFAULT, f64::NAN, 0.0, 0.0, 0).is_err());
        assert!(PidController::from_parts(0.5, Gains::DEFAULT, 0.0, 0.0, 2.0, 0).is_err());
    }

    #[test]
    fn pipe_drops_exactly_rate_per_hundred() {
        for rate in [0u8, 1, 10, 33, 50, 99, 100, 255] {
            let mut p = Feedback::new(Window::aligned(u64::MAX, 0).unwrap());
            let drops = (0..1000).filter(|&i| !p.check(i, rate).passed()).count();
            assert_eq!(drops, 10 * usize::from(rate.min(100)), "rate {rate}");
        }
        let mut p = Feedback::new(Window::aligned(10, 0).unwrap());
        let _ = p.check(0, 0);
        p.reset();
        assert_eq!(p.counter().counter(), 0);
    }
}
