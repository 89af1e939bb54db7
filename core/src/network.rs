//! NETWORK (Kamailio pipelimit): drop while the bytes waiting on the host's
//! network queues exceed the limit.
//!
//! The host measures the bytes waiting and passes the last measurement to
//! [`Network::check`] (a table keeps it in its shared header); each request is counted and dropped iff the last pushed value is above
//! `limit`. The counter is kept per window for listings only.
//!
//! Differences from Kamailio, deliberate: Kamailio samples the queues on its
//! timer and returns 0 (which ends a Kamailio route) until the first tick;
//! here the verdict follows the last pushed value at once, and before any push
//! 0 bytes are assumed, so requests pass.

use crate::window::WindowCounter;
use crate::{Verdict, Window};

/// A NETWORK pipe. See the [module docs](self).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Network {
    pub(crate) limit: u32,
    pub(crate) counter: WindowCounter,
}

impl Network {
    /// A pipe dropping while more than `limit` bytes wait.
    pub const fn new(limit: u32, window: Window) -> Network {
        Network {
            limit,
            counter: WindowCounter::new(window),
        }
    }

    /// Counts one request at `now`; `bytes_waiting` is the host's last pushed
    /// measurement (in a table it lives in the shared header).
    #[inline(always)]
    pub fn check(&mut self, now: u64, bytes_waiting: u64) -> Verdict {
        self.counter.hit(now);
        Verdict::from_pass(bytes_waiting <= u64::from(self.limit))
    }

    /// The limit in bytes.
    pub const fn limit(&self) -> u32 {
        self.limit
    }

    /// Replaces the limit.
    #[inline]
    pub fn set_limit(&mut self, limit: u32) {
        self.limit = limit;
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

/// What pipelimit shows as a NETWORK pipe's load: 1 when the bytes waiting
/// exceed the limit, else -1 (the verdict is `-load`).
pub const fn network_load(bytes_waiting: u64, limit: u32) -> i32 {
    if bytes_waiting > limit as u64 {
        1
    } else {
        -1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drops_while_queue_exceeds_limit() {
        let mut p = Network::new(1000, Window::aligned(10, 0).unwrap());
        assert_eq!(p.check(0, 0), Verdict::Pass);
        assert_eq!(p.check(1, 1000), Verdict::Pass);
        assert_eq!(p.check(2, 1001), Verdict::Drop);
        assert_eq!(p.check(3, u64::MAX), Verdict::Drop);
        assert_eq!(p.counter().counter(), 4);
        assert_eq!(network_load(1001, 1000), 1);
        assert_eq!(network_load(10, 1000), -1);
        p.set_limit(5);
        assert_eq!(p.limit(), 5);
        p.reset();
        assert_eq!(p.counter().counter(), 0);
    }
}
