//! # floodgate
//!
//! An allocation-free, `no_std` rate-limit core implementing the limit
//! algorithms of Kamailio's `pipelimit` (TAILDROP, RED, FEEDBACK, NETWORK,
//! NOP), FreeSWITCH's `limit` (concurrent slots and `max/interval` limits),
//! the link limits that AllStarLink / hamvoip (Asterisk app_rpt) nodes need,
//! GCRA, and two algorithms beyond those references (proportional RED and a
//! sliding-window counter).
//!
//! Every limiter is a small `Copy` state machine. None allocates, reads a
//! clock or panics: time is a `u64` of nanoseconds the caller passes in
//! (from any monotonic origin), arithmetic saturates, and time going
//! backwards is handled as each module documents. Invalid parameters give a
//! typed [`Error`].
//!
//! ```
//! use floodgate::{Taildrop, Verdict, Window};
//! const S: u64 = 1_000_000_000;
//! // pipelimit: 3 requests per 10 s interval, timer started at t = 0.
//! let mut pipe = Taildrop::new(3, Window::aligned(10 * S, 0)?);
//! let verdicts: Vec<Verdict> = (0..4).map(|i| pipe.check(i * S)).collect();
//! assert_eq!(verdicts, [Verdict::Pass, Verdict::Pass, Verdict::Pass, Verdict::Drop]);
//! assert_eq!(pipe.check(10 * S), Verdict::Pass); // next interval
//! # Ok::<(), floodgate::Error>(())
//! ```
//!
//! # The limiters
//!
//! | type | reference | semantics |
//! | --- | --- | --- |
//! | [`Taildrop`] | pipelimit TAILDROP | pass iff the window's counter `<= limit` |
//! | [`Red`] | pipelimit RED | `load = last / limit`; pass iff `load == 0 \|\| counter % load == 0` |
//! | [`Feedback`] + [`PidController`] | pipelimit FEEDBACK | PID on pushed load sets a drop rate; drop iff `PERMUTATION[counter % 100] < rate` |
//! | [`Network`] | pipelimit NETWORK | drop while pushed bytes waiting `> limit` |
//! | [`Nop`] | pipelimit NOP | count and pass with [`Verdict::PassNop`] |
//! | [`IntervalLimit`] | FreeSWITCH `max/interval` | at most `max` per window; `<0` count only |
//! | [`Slots`] | FreeSWITCH concurrent limit, app_rpt links | acquire / release; never above max, never below 0 |
//! | [`Gcra`] | governor | refuse iff `t < TAT - tau`; no window edges |
//! | [`RedProportional`] | beyond the references | passes `limit / last` of requests, evenly spread, from 1x overload |
//! | [`SlidingWindow`] | beyond the references | previous window weighted by its overlap; no 2x edge burst |
//!
//! [`Limiter`] holds any of them, so pipes of different algorithms can share
//! one container.
//!
//! # Tables
//! [`table::Table`] keeps limiters of any kind under byte-string keys in
//! memory the caller owns (a static, Kamailio's shm, a `MAP_SHARED` file),
//! shared by threads and processes with no OS lock, and safe against a
//! process killed mid-operation. See the [`table`] module.
//!
//! # Windows
//! Window-based limiters roll over lazily on the next call; see [`window`]
//! for the exact rules (aligned to an epoch the caller chooses, or starting at
//! the first event as FreeSWITCH mod_hash does; idle windows count; time going
//! backwards stays in the current window).
//!
//! # Deliberate differences from the references
//! Each is also stated in its module.
//! * TAILDROP's limit is per interval, as pipelimit 5.6 (not per second as
//!   the older `ratelimit` module).
//! * RED and proportional RED refuse limit 0 with [`Error::InvalidLimit`]
//!   (pipelimit would divide by it and leave the load at 0, passing all).
//! * FEEDBACK uses floodgate's own permutation, `(61 * i) % 100`; drop counts
//!   per 100 requests equal Kamailio's, positions differ. Drop rates are
//!   clamped to 100, loads outside `0.0..=1.0` and non-finite gains refused.
//! * NETWORK follows the last pushed value at once and passes before the
//!   first push (pipelimit returns 0 until its first timer tick).
//! * Interval limits count refused calls (as FreeSWITCH does) and let the
//!   caller choose what `max == 0` means ([`MaxZero`]); the default refuses
//!   all, mod_hash's and mod_hiredis's readings are available.
//! * Slots cannot tell a second acquire by the same holder (mod_hash can);
//!   a table's leases give each holder its own handle.
//! * Windows need no timer: the result equals a timer started at the epoch.
//! * Tables: creating a FEEDBACK pipe (or replacing its limit) sets the
//!   shared setpoint, not only `pl.set_pipe`; the controller's whole state
//!   (integral term included) lives in the shared table, so `pl.push_load`
//!   from any process updates the one controller every process uses.
//!   [`table::Table::set`] creates a missing pipe (pipelimit's `pl.set_pipe`
//!   refuses one). A full table evicts an idle entry or fails with
//!   [`Error::Full`]; pipelimit's chained table never fills. A pipe whose
//!   lock stays held by a process that is alive but stopped gives
//!   [`Error::Busy`] after a bounded wait; pipelimit's callers wait for it.
//! * Tables keep keys of 1 to 56 bytes ([`table::MAX_KEY_LEN`]; pipelimit
//!   takes names of any length, floodgate's Kamailio module stores longer
//!   ones as a prefix and a hash). No word records when an entry was last
//!   used: [`table::Table::clean_unused`] and eviction judge a pipe by the
//!   window its state last opened, which is pipelimit's rule for pipes on
//!   the table's interval; a pipe whose windows start at its first call
//!   may go one window earlier, a GCRA goes by its theoretical arrival
//!   time less one emission interval, and a SLOTS entry holding nothing
//!   goes at the next cleaning.
//!
//! # Errors
//! All fallible operations return [`Error`], a small `Copy` enum that
//! implements `Display` and `core::error::Error`.
#![cfg_attr(not(test), no_std)]
#![deny(missing_docs)]
#![deny(unsafe_code)]
#![deny(clippy::undocumented_unsafe_blocks)]

mod error;
pub mod feedback;
pub mod gcra;
pub mod interval;
pub mod limiter;
pub mod network;
pub mod nop;
pub mod red;
pub mod red_proportional;
pub mod sliding;
pub mod slots;
pub mod table;
pub mod taildrop;
mod verdict;
pub mod window;

pub use error::Error;
pub use feedback::{feedback_drops, Feedback, Gains, PidController, PERMUTATION};
pub use gcra::Gcra;
pub use interval::{IntervalLimit, MaxZero};
pub use limiter::{Algorithm, Limiter, Shared, Stats, STATE_WORDS};
pub use network::{network_load, Network};
pub use nop::Nop;
pub use red::Red;
pub use red_proportional::RedProportional;
pub use sliding::SlidingWindow;
pub use slots::Slots;
pub use taildrop::Taildrop;
pub use verdict::{Release, SlotVerdict, Verdict};
pub use window::{Anchor, Window, WindowCounter, WindowState};
