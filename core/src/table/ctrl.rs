//! The FEEDBACK controller that every pipe of a table shares (pipelimit's
//! PID controller): double-buffered in the header under its own lock, like
//! an entry, with its drop rate and setpoint mirrored for lock-free reads.
//! Every read and change of it takes the controller lock, and gives
//! [`Error::Busy`] if that lock stays held by a live holder; the verdicts
//! of FEEDBACK pipes read only the mirrored drop rate and never wait for it.

use super::layout::*;
use super::lock::{self, AtomicU32, Ordering};
use super::{region, Table};
use crate::{Error, Gains, PidController};

/// The shared controller locked by this caller; unlocks (unchanged) when
/// dropped.
pub(crate) struct CtrlGuard<'t> {
    hdr: &'t [AtomicU32; HEADER_WORDS],
    /// Index (0 or 1) of the committed controller buffer.
    active: u32,
}

impl CtrlGuard<'_> {
    /// The committed controller (the default if it does not decode).
    pub(crate) fn read(&self) -> PidController {
        let base = H_CTRL + self.active as usize * CTRL_WORDS;
        let f = |i: usize| {
            f64::from_bits(
                u64::from(self.hdr[base + 2 * i].load(Ordering::Relaxed))
                    | (u64::from(self.hdr[base + 2 * i + 1].load(Ordering::Relaxed)) << 32),
            )
        };
        let gains = Gains {
            kp: f(1),
            ki: f(2),
            kd: f(3),
        };
        let rate = self.hdr[base + 14].load(Ordering::Relaxed) as u8;
        PidController::from_parts(f(0), gains, f(4), f(5), f(6), rate).unwrap_or_default()
    }

    /// Runs `f` on the controller and commits it into the other buffer,
    /// with the mirrored drop rate and setpoint; a failed `f` changes
    /// nothing.
    pub(crate) fn update<T>(
        self,
        f: impl FnOnce(&mut PidController) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let mut c = self.read();
        let out = f(&mut c)?;
        let next = (self.active ^ 1) & 1;
        region::write_ctrl(self.hdr, next, &c);
        self.hdr[H_DROP_RATE].store(u32::from(c.drop_rate()), Ordering::Relaxed);
        // The setpoint is always percent / 100, so rounding recovers the percent.
        let percent = (c.setpoint() * 100.0 + 0.5) as u32;
        self.hdr[H_SETPOINT].store(percent, Ordering::Relaxed);
        lock::unlock(&self.hdr[H_CTRL_LOCK], next);
        core::mem::forget(self);
        Ok(out)
    }
}

impl Drop for CtrlGuard<'_> {
    fn drop(&mut self) {
        lock::unlock(&self.hdr[H_CTRL_LOCK], self.active);
    }
}

impl<'a> Table<'a> {
    /// Locks the shared controller: [`Error::Busy`] if its holder stays.
    pub(crate) fn ctrl_lock(&self) -> Result<CtrlGuard<'a>, Error> {
        let held = lock::lock(&self.hdr[H_CTRL_LOCK], &self.owner)?;
        Ok(CtrlGuard {
            hdr: self.hdr,
            active: held.active,
        })
    }

    /// Runs `f` on the shared controller under the header's controller lock
    /// and commits it (double-buffered like entries).
    fn ctrl_update<T>(
        &self,
        f: impl FnOnce(&mut PidController) -> Result<T, Error>,
    ) -> Result<T, Error> {
        self.ctrl_lock()?.update(f)
    }

    /// A copy of the shared FEEDBACK controller (`pl.get_pid`);
    /// [`Error::Busy`] if its lock stays held by a live holder.
    pub fn pid_get(&self) -> Result<PidController, Error> {
        Ok(self.ctrl_lock()?.read())
    }

    /// Sets the PID gains (`pl.set_pid`); non-finite gains are refused.
    pub fn pid_set(&self, gains: Gains) -> Result<(), Error> {
        self.ctrl_update(|c| c.set_gains(gains))
    }

    /// Sets the FEEDBACK setpoint in percent (0..=100).
    pub fn set_setpoint(&self, percent: u32) -> Result<(), Error> {
        self.ctrl_update(|c| c.set_setpoint_percent(percent))
    }

    /// The FEEDBACK setpoint in percent, read without the controller lock.
    pub fn setpoint_percent(&self) -> u8 {
        self.hdr[H_SETPOINT].load(Ordering::Relaxed) as u8
    }

    /// Pushes a measured or forced load in `0.0..=1.0` (`pl.push_load`): one
    /// controller update, shared by every process; returns the new drop rate.
    pub fn push_load(&self, load: f64) -> Result<u8, Error> {
        self.ctrl_update(|c| c.update(load))
    }

    /// Pushes the bytes waiting on the host's network queues for NETWORK
    /// pipes. Stored saturated at `u32::MAX` (4 GiB); NETWORK limits are
    /// `u32`, so the verdicts are the same except for a limit of `u32::MAX`.
    pub fn push_network(&self, bytes_waiting: u64) {
        let v = u32::try_from(bytes_waiting).unwrap_or(u32::MAX);
        self.hdr[H_BYTES_WAITING].store(v, Ordering::Relaxed);
    }
}
