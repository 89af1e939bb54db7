//! Fixed windows that roll over lazily, and the per-window counter that
//! TAILDROP, RED, FEEDBACK, NETWORK, NOP and the interval limit share.
//!
//! # How a window rolls
//! There is no timer. A window is opened by the first event; each later event
//! first rolls the window forward if its time lies at or past the window's end.
//! The result equals a timer that fired at every window boundary:
//!
//! * [`Anchor::Aligned`]: windows are `[epoch + k*interval, epoch + (k+1)*interval)`.
//!   This is Kamailio's pipelimit timer (started at the epoch) and FreeSWITCH
//!   mod_hiredis's `resource_<now/interval>` keys (with epoch 0).
//! * [`Anchor::FirstEvent`]: a window starts at the first event at or after the
//!   previous window's end and lasts one interval. This is FreeSWITCH mod_hash's
//!   interval limit.
//!
//! When a window rolls, the window that just ended becomes the "last" window.
//! If at least one whole window passed without any event, the last window is
//! an empty one: a timer that fired through the gap would have seen a counter
//! of 0. With [`Anchor::FirstEvent`] the window that ended counts as the last
//! one if the new window starts less than one interval after its end.
//!
//! # Time
//! Times are `u64` nanoseconds from any monotonic origin the caller chooses.
//! An event whose time lies *before* the current window's start (time went
//! backwards, or two threads raced on their clock reads) is counted in the
//! current window: windows never roll back. An aligned event before the epoch
//! opens the window that starts at the epoch. A window that would end past
//! `u64::MAX` ends there and includes `u64::MAX` itself. Windows take an
//! event at `u64::MAX` for one at [`LAST_START`] (`u64::MAX - 1`): none
//! starts later, and the window that holds `LAST_START` holds `u64::MAX`
//! too, whatever its interval (a table keeps `u64::MAX` to mark a start
//! nobody has claimed yet, as a GCRA's TAT stops at `u64::MAX - 1`). Only
//! the last nanosecond of time sees this: an aligned window that would
//! start at `u64::MAX` (1 ns windows from epoch 0, or any interval that
//! divides `u64::MAX - epoch`) is not opened, its event counted in the
//! window before; an epoch of `u64::MAX` starts its window at
//! `LAST_START`.
//! Nothing here can overflow or panic.

use crate::Error;

/// Where windows start. See the [module docs](self).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Anchor {
    /// Windows at `epoch + k * interval` (Kamailio pipelimit, FreeSWITCH mod_hiredis).
    Aligned {
        /// The time (ns) at which the first window starts.
        epoch: u64,
    },
    /// A window starts at the first event after the previous window ended
    /// (FreeSWITCH mod_hash).
    FirstEvent,
}

/// The latest time a window starts at: an event after it counts as one
/// here (see the [module docs](self)).
pub const LAST_START: u64 = u64::MAX - 1;

/// A window length and anchor, validated (the interval is never 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Window {
    pub(crate) interval: u64,
    pub(crate) anchor: Anchor,
}

impl Window {
    /// A window of `interval_ns` nanoseconds. Errors with
    /// [`Error::ZeroInterval`] if the interval is 0.
    pub const fn new(interval_ns: u64, anchor: Anchor) -> Result<Window, Error> {
        if interval_ns == 0 {
            return Err(Error::ZeroInterval);
        }
        Ok(Window {
            interval: interval_ns,
            anchor,
        })
    }

    /// Windows aligned to `epoch + k * interval_ns`.
    pub const fn aligned(interval_ns: u64, epoch: u64) -> Result<Window, Error> {
        Window::new(interval_ns, Anchor::Aligned { epoch })
    }

    /// Windows that start at the first event after the previous one ended.
    pub const fn first_event(interval_ns: u64) -> Result<Window, Error> {
        Window::new(interval_ns, Anchor::FirstEvent)
    }

    /// The window length in nanoseconds (never 0).
    pub const fn interval(&self) -> u64 {
        self.interval
    }

    /// The anchor.
    pub const fn anchor(&self) -> Anchor {
        self.anchor
    }

    /// Start of the aligned window that contains `now` (the epoch's window
    /// for times before the epoch).
    fn aligned_floor(&self, epoch: u64, now: u64) -> u64 {
        let since = now.saturating_sub(epoch);
        // At most `LAST_START`: only an epoch of `u64::MAX` (with `now`
        // before it) would start a window later.
        (epoch + (since / self.interval) * self.interval).min(LAST_START)
    }

    /// Where the window containing `now` starts if one is opened at `now`.
    fn open_at(&self, now: u64) -> u64 {
        match self.anchor {
            Anchor::Aligned { epoch } => self.aligned_floor(epoch, now),
            Anchor::FirstEvent => now,
        }
    }

    /// Moves `state` to the window of `now` and says how it moved.
    #[inline(always)]
    pub(crate) fn advance(&self, state: &mut WindowState, now: u64) -> Roll {
        // Fast path, inlined: no division while inside the current window.
        if state.open && same_window(state.start, self.interval, now) {
            return Roll::Same;
        }
        let (new, roll) = self.advance_slow(*state, now);
        *state = new;
        roll
    }

    /// [`Window::advance`] when the window opens or moves: out of line, and
    /// by value, so that callers can keep their state in registers.
    #[inline(never)]
    fn advance_slow(self, mut state: WindowState, now: u64) -> (WindowState, Roll) {
        let roll = self.advance_moving(&mut state, now);
        (state, roll)
    }

    fn advance_moving(&self, state: &mut WindowState, now: u64) -> Roll {
        // No window starts at `u64::MAX` (module docs).
        let now = now.min(LAST_START);
        if !state.open {
            state.open = true;
            state.start = self.open_at(now);
            return Roll::Idle;
        }
        if same_window(state.start, self.interval, now) {
            return Roll::Same;
        }
        match self.anchor {
            Anchor::Aligned { epoch } => {
                let new = self.aligned_floor(epoch, now);
                if new <= state.start {
                    // Only reachable when the next window would start past u64::MAX.
                    return Roll::Same;
                }
                let windows = (new - state.start) / self.interval;
                state.start = new;
                if windows == 1 {
                    Roll::Next
                } else {
                    Roll::Idle
                }
            }
            Anchor::FirstEvent => {
                let next = first_event_next(state.start, self.interval, now);
                state.start = now;
                if next {
                    Roll::Next
                } else {
                    Roll::Idle
                }
            }
        }
    }
}

/// Whether a window from the first event opened at `now`, after the one
/// that started at `start` ended, is the next one (it opens less than an
/// interval after that one's end), not one after an idle window: then
/// the window that ended is the last window.
#[inline(always)]
pub(crate) const fn first_event_next(start: u64, interval: u64, now: u64) -> bool {
    now.saturating_sub(start.saturating_add(interval)) < interval
}

/// Whether `now` is still in the open window that started at `start`: up
/// to `interval` ns after it, or before it (time went backwards: the
/// window stays).
#[inline(always)]
pub(crate) const fn same_window(start: u64, interval: u64, now: u64) -> bool {
    now < start || now - start < interval
}

/// Where a window state stands: not yet opened, or the start of the current window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct WindowState {
    pub(crate) start: u64,
    pub(crate) open: bool,
}

impl WindowState {
    /// The start (ns) of the current window, or `None` before the first event.
    pub const fn start(&self) -> Option<u64> {
        if self.open {
            Some(self.start)
        } else {
            None
        }
    }
}

/// How a window moved on an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Roll {
    /// Still the same window.
    Same,
    /// The next window: the one that just ended is the last window.
    Next,
    /// A later window, with at least one empty window in between (or the
    /// very first window): the last window had no events.
    Idle,
}

/// A counter per window with the previous window's total: what pipelimit's
/// `counter` and `last_counter` are, without the timer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct WindowCounter {
    pub(crate) window: Window,
    pub(crate) state: WindowState,
    pub(crate) counter: u32,
    pub(crate) last: u32,
}

impl WindowCounter {
    /// A counter over `window`, at zero.
    pub const fn new(window: Window) -> WindowCounter {
        WindowCounter {
            window,
            state: WindowState {
                start: 0,
                open: false,
            },
            counter: 0,
            last: 0,
        }
    }

    /// The window definition.
    pub const fn window(&self) -> Window {
        self.window
    }

    /// Where the current window stands.
    pub const fn state(&self) -> WindowState {
        self.state
    }

    /// Rolls to the window of `now` (last = the ended window's count, or 0).
    #[inline(always)]
    pub(crate) fn roll(&mut self, now: u64) -> Roll {
        let roll = self.window.advance(&mut self.state, now);
        match roll {
            Roll::Same => {}
            Roll::Next => {
                self.last = self.counter;
                self.counter = 0;
            }
            Roll::Idle => {
                self.last = 0;
                self.counter = 0;
            }
        }
        roll
    }

    /// Adds one event at `now` (saturating) and returns the window's count.
    #[inline(always)]
    pub(crate) fn hit(&mut self, now: u64) -> u32 {
        self.roll(now);
        self.counter = self.counter.saturating_add(1);
        self.counter
    }

    /// `(counter, last_counter)` as a timer would show them at `now`, without
    /// changing anything: what listings print.
    pub fn view(&self, now: u64) -> (u32, u32) {
        let mut copy = *self;
        copy.roll(now);
        (copy.counter, copy.last)
    }

    /// The count of the current window as of the last event.
    pub const fn counter(&self) -> u32 {
        self.counter
    }

    /// The count of the window before the current one, as of the last event.
    pub const fn last_counter(&self) -> u32 {
        self.last
    }

    /// Zeroes the current window's count now (FreeSWITCH
    /// `limit_interval_reset`); the window itself is kept.
    pub fn reset(&mut self) {
        self.counter = 0;
    }

    /// Nanoseconds of the current window already gone at `now` (0 before the
    /// first event or when `now` lies before the window's start).
    pub(crate) fn elapsed_in_window(&self, now: u64) -> u64 {
        if self.state.open {
            now.saturating_sub(self.state.start)
                .min(self.window.interval)
        } else {
            0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn aligned(iv: u64, epoch: u64) -> Window {
        Window::aligned(iv, epoch).unwrap()
    }

    #[test]
    fn zero_interval_is_an_error() {
        assert_eq!(Window::aligned(0, 0), Err(Error::ZeroInterval));
        assert_eq!(Window::first_event(0), Err(Error::ZeroInterval));
    }

    #[test]
    fn aligned_rolls_at_multiples_of_the_interval() {
        let w = aligned(10, 5);
        let mut s = WindowState::default();
        assert_eq!(w.advance(&mut s, 17), Roll::Idle);
        assert_eq!(s.start(), Some(15));
        assert_eq!(w.advance(&mut s, 24), Roll::Same);
        assert_eq!(w.advance(&mut s, 25), Roll::Next);
        assert_eq!(s.start(), Some(25));
        assert_eq!(w.advance(&mut s, 45), Roll::Idle);
        assert_eq!(s.start(), Some(45));
        // Backwards: stays in the current window.
        assert_eq!(w.advance(&mut s, 3), Roll::Same);
        assert_eq!(s.start(), Some(45));
    }

    #[test]
    fn before_the_epoch_opens_the_epoch_window() {
        let w = aligned(10, 100);
        let mut s = WindowState::default();
        assert_eq!(w.advance(&mut s, 7), Roll::Idle);
        assert_eq!(s.start(), Some(100));
        assert_eq!(w.advance(&mut s, 109), Roll::Same);
        assert_eq!(w.advance(&mut s, 110), Roll::Next);
    }

    #[test]
    fn first_event_windows_start_at_the_event() {
        let w = Window::first_event(10).unwrap();
        let mut s = WindowState::default();
        assert_eq!(w.advance(&mut s, 3), Roll::Idle);
        assert_eq!(w.advance(&mut s, 12), Roll::Same);
        assert_eq!(w.advance(&mut s, 13), Roll::Next);
        assert_eq!(s.start(), Some(13));
        // Ends at 23; an event at 32 is less than one interval after: Next.
        assert_eq!(w.advance(&mut s, 32), Roll::Next);
        // Ends at 42; 52 is one whole interval later: an empty window between.
        assert_eq!(w.advance(&mut s, 52), Roll::Idle);
    }

    #[test]
    fn extremes_do_not_overflow() {
        // The window that would start at u64::MAX is not opened.
        let w = aligned(u64::MAX, 0);
        let mut s = WindowState::default();
        assert_eq!(w.advance(&mut s, u64::MAX - 1), Roll::Idle);
        assert_eq!(w.advance(&mut s, u64::MAX), Roll::Same);
        assert_eq!(s.start(), Some(0));

        // Nor by an epoch of u64::MAX: its window starts one earlier.
        let w = aligned(10, u64::MAX);
        let mut s = WindowState::default();
        assert_eq!(w.advance(&mut s, 0), Roll::Idle);
        assert_eq!(s.start(), Some(LAST_START));
        assert_eq!(w.advance(&mut s, u64::MAX), Roll::Same);

        // Last aligned window before u64::MAX: the next one would start past it.
        let w = aligned(10, 0);
        let mut s = WindowState::default();
        assert_eq!(w.advance(&mut s, u64::MAX - 3), Roll::Idle);
        assert_eq!(w.advance(&mut s, u64::MAX), Roll::Same);

        let w = Window::first_event(u64::MAX).unwrap();
        let mut s = WindowState::default();
        assert_eq!(w.advance(&mut s, 5), Roll::Idle);
        assert_eq!(w.advance(&mut s, u64::MAX), Roll::Same);
    }

    #[test]
    fn no_aligned_window_starts_at_u64_max() {
        let w = aligned(1, 0);
        let mut s = WindowState::default();
        assert_eq!(w.advance(&mut s, u64::MAX), Roll::Idle);
        assert_eq!(s.start(), Some(LAST_START));
        assert_eq!(w.advance(&mut s, u64::MAX - 1), Roll::Same);
        assert_eq!(w.advance(&mut s, u64::MAX), Roll::Same);
        let mut s = WindowState::default();
        assert_eq!(w.advance(&mut s, u64::MAX - 2), Roll::Idle);
        assert_eq!(w.advance(&mut s, u64::MAX), Roll::Next);
        assert_eq!(s.start(), Some(u64::MAX - 1));
        // 3 divides u64::MAX: the window that would start there is not
        // opened, and the one before holds u64::MAX.
        let w = aligned(3, 0);
        let mut s = WindowState::default();
        assert_eq!(w.advance(&mut s, u64::MAX - 1), Roll::Idle);
        assert_eq!(s.start(), Some(u64::MAX - 3));
        assert_eq!(w.advance(&mut s, u64::MAX), Roll::Same);
        let mut c = WindowCounter::new(aligned(3, 0));
        assert_eq!(c.hit(u64::MAX), 1);
        assert_eq!(c.state().start(), Some(u64::MAX - 3));
        assert_eq!(c.hit(u64::MAX), 2);
        // An epoch that puts a start at u64::MAX for another interval.
        let w = aligned(4, 3);
        let mut s = WindowState::default();
        assert_eq!(w.advance(&mut s, u64::MAX), Roll::Idle);
        assert_eq!(s.start(), Some(u64::MAX - 4));
    }

    #[test]
    fn first_event_windows_start_at_last_start_at_the_latest() {
        // A 2 ns window opened at u64::MAX starts 1 ns earlier and holds it.
        let w = Window::first_event(2).unwrap();
        let mut s = WindowState::default();
        assert_eq!(w.advance(&mut s, u64::MAX), Roll::Idle);
        assert_eq!(s.start(), Some(LAST_START));
        assert_eq!(w.advance(&mut s, u64::MAX), Roll::Same);
        // 1 ns windows: one that starts there holds u64::MAX too.
        let mut c = WindowCounter::new(Window::first_event(1).unwrap());
        c.hit(LAST_START - 1);
        assert_eq!(c.hit(u64::MAX), 1);
        assert_eq!(c.state().start(), Some(LAST_START));
        assert_eq!(
            c.last_counter(),
            1,
            "the next window after LAST_START - 1's"
        );
        assert_eq!(c.hit(u64::MAX), 2);
        assert_eq!(c.hit(LAST_START), 3);
        assert_eq!(c.view(u64::MAX), (3, 1));
    }

    #[test]
    fn counter_keeps_the_last_window_and_idles_to_zero() {
        let mut c = WindowCounter::new(aligned(10, 0));
        for _ in 0..7 {
            c.hit(1);
        }
        assert_eq!((c.counter(), c.last_counter()), (7, 0));
        assert_eq!(c.view(12), (0, 7));
        assert_eq!(c.view(25), (0, 0));
        c.hit(12);
        assert_eq!((c.counter(), c.last_counter()), (1, 7));
        c.reset();
        assert_eq!(c.counter(), 0);
        assert_eq!(c.elapsed_in_window(15), 5);
        assert_eq!(c.elapsed_in_window(3), 0);
    }

    #[test]
    fn counter_saturates() {
        let mut c = WindowCounter::new(aligned(10, 0));
        c.counter = u32::MAX;
        c.state = WindowState {
            start: 0,
            open: true,
        };
        assert_eq!(c.hit(1), u32::MAX);
    }
}
