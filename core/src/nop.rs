//! NOP (Kamailio pipelimit): counts and passes every request, and says so
//! with its own verdict, [`Verdict::PassNop`] (Kamailio's return code 2).

use crate::window::WindowCounter;
use crate::{Verdict, Window};

/// A NOP pipe. See the [module docs](self).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Nop {
    pub(crate) counter: WindowCounter,
}

impl Nop {
    /// A pipe that limits nothing.
    pub const fn new(window: Window) -> Nop {
        Nop {
            counter: WindowCounter::new(window),
        }
    }

    /// Counts one request at `now`; always [`Verdict::PassNop`].
    #[inline(always)]
    pub fn check(&mut self, now: u64) -> Verdict {
        self.counter.hit(now);
        Verdict::PassNop
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
    fn counts_and_passes_with_its_own_verdict() {
        let mut p = Nop::new(Window::aligned(10, 0).unwrap());
        for i in 0..1000 {
            assert_eq!(p.check(i % 10), Verdict::PassNop);
        }
        assert_eq!(p.counter().counter(), 1000);
        assert_eq!(Verdict::PassNop.code(), 2);
        p.reset();
        assert_eq!(p.counter().counter(), 0);
    }
}
