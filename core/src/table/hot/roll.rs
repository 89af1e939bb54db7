//! Rolls of a hot window pipe to a later window, and its first window
//! (see [`hot`](super)). Nothing here takes the entry lock.
//!
//! A window pipe counts its rolls in `H`'s 16 index bits `r` and keeps the
//! start of window `r` in the start word of `r`'s parity (`S_P0` even,
//! `S_P1` odd) and `(r, last window's count)` in `S_X`. Two words cannot
//! be swapped together, so a roll from window `r` (count `c`, start `s`)
//! to `r + 1` first **marks** `H` (window `r + 1` with the rolling bit,
//! bit 48), which stops every other change of `H`, and is then
//! **finished** by anyone: the words window `r + 1` reads are stored, then
//! `H` is swapped to window `r + 1` with its first call counted. Only
//! checks move a window, each counting its own call (a SLIDING drop, which
//! counts nothing, moves nothing, see [`SlidingWindow`]), so a finished
//! roll's count is 1 (but a hop's, below). Checks of window `r` that come
//! after the mark see the bit and finish the roll instead of counting,
//! then check again (in window `r + 1`, as time going backwards does if
//! their time lies before its start). A caller stopped or killed after
//! any step leaves a state the next caller of the pipe finishes without a
//! lock; nothing waits for anybody.
//!
//! # Aligned windows: the mark says it all
//! The check that rolls decides on exactly what it read: it swaps `H`
//! from the very word it read (window `r`, count `c`) to a mark that lets
//! anyone finish the roll: the new window lies `d` windows on, so starts
//! at `s + d * interval`, and its last count is `c` if `d == 1`, else 0
//! (idle windows between). The mark holds `c` with the open bit if
//! `d == 1`, else `d` without it (an idle mark, so the open bit alone
//! does not tell a rolling `H` from a dead one). A check that counted in
//! window `r` meanwhile made the swap fail: the roller decides again on
//! the new count. So the roll is one swap, the serial order is the order
//! of the swaps, and the roller's verdict (which RED, REDP and SLIDING
//! take from `c`) is exact. **Finish**: store the new start in the start
//! word of `r + 1`'s parity (it held `r - 1`'s start, which no reader of
//! `r` needs), then `(r + 1, last count)` in `S_X`, each by swaps made only
//! while `H` still holds the mark, then swap `H` to window `r + 1` with a
//! count of 1: the roller's call. A roll of [`FAR`] (2^30) windows or
//! more (1 ms windows idle for 12 days, 1 s windows for 34 years; 10 s
//! windows never get there in a `u64` of nanoseconds) first **hops**: a
//! mark with bit 30 set moves the pipe short of the target by a distance
//! of 24 significant bits (`mantissa << exponent`), with no call counted,
//! and the roller checks again from there; at most two hops get within
//! [`FAR`] of any window. A call whose time lies before the hop's window
//! and that races the roll counts there (as time going backwards does)
//! instead of in window `r`: the only way an empty window can show.
//!
//! # Windows from the first call: claim, mark, finish
//! An interval limit whose windows start at the first call after the last
//! one ended (FreeSWITCH mod_hash) starts a new window at the time of
//! whichever call rolls first, which no mark has room for, so a roll from
//! window `r` (count `c`, start `s`) to `r + 1` takes three steps, each of
//! which any caller can make:
//!
//! 1. **Claim** the start: swap the start word of `r + 1`'s parity from
//!    what it holds to the caller's time `t`, only while it holds less
//!    than `s + interval` (it then holds `r - 1`'s start, which came at
//!    least an interval before `s`: no claim for `r + 1` yet) and `H`
//!    still holds what the caller read. Exactly one caller wins; every
//!    other roller finds the word at `s + interval` or above and adopts
//!    the winner's start.
//! 2. **Mark** the roll: swap `H` from window `r` (whatever its count
//!    then, `c'`) to window `r + 1` with the rolling bit and the open bit,
//!    and the count `c'`, the last window's final count.
//! 3. **Finish**: store `(r + 1, c')` in `S_X` (0 for `c'` when the start
//!    lies an interval or more past `r`'s end: an idle window between,
//!    as [`Window`](crate::Window) decides), by a swap made only while `H`
//!    still holds the rolling word, then swap `H` to window `r + 1` with a
//!    count of 1: the winner's call, the first of its window.
//!
//! The winner returns the verdict of the first call of the new window
//! (in the serial order its call is the roll: an interval limit decides
//! by the count alone, which the checks of window `r` between the claim
//! and the mark do not change); every other caller that saw the claim
//! checks again in the new window. A claim with `H` unmarked is adopted
//! by the next roller (a killed winner's call is then counted: a call
//! whose reply was lost).
//!
//! # The first window, claimed by one caller, opened by anyone
//! A new pipe's `H` is fresh (no window open) and its `S_P0` holds
//! [`UNCLAIMED`] (`S_X`: rolls 0, last count 0); no reader of a fresh `H`
//! reads another word. A check whose window starts at `s` **claims** the
//! first window by swapping `S_P0` from `UNCLAIMED` to `s`, only while
//! `H` is still the fresh one it read: exactly one claim wins, and `S_P0`
//! then changes no more until `H` opens. Whoever finds `S_P0` claimed
//! **opens** `H` by one swap from fresh to window 0 with one call
//! counted: the claimant's. The claimant's verdict stands, whoever made
//! the swap; every other caller checks again in the open window (its own
//! later window is then an ordinary roll, an earlier one time going
//! backwards). That is the serial order "the claimant first", whichever
//! window each caller is in: had another caller counted itself first in
//! the claimed window, no serial order would give its verdict (the loom
//! model `first_window_open_racing_open` fails so). A caller stopped or
//! killed after its claim leaves a claimed `S_P0` and a fresh `H`: the
//! next check opens it, counting the claimant's call (a call whose reply
//! was lost). [`Window`](crate::window) starts no window at `u64::MAX`
//! (`LAST_START`), so no start is taken for `UNCLAIMED`.
//!
//! What the checks of `H` cannot close: a caller stalled between its last
//! load of `H` and a swap of another word, while the entry is deleted and
//! its slot reused by another window pipe still in its first window, can
//! land that swap in the new entry (only while the word still holds what
//! the insert wrote: 0, or `UNCLAIMED` in `S_P0`).
//! * A first-call roll's claim in `S_P1`: if its start lies an interval or
//!   more past the new window's start, the new entry's next roll adopts it:
//!   that window's bounds shift, no count is lost or doubled.
//! * An aligned roll's finish storing its start in `S_P1`: the new entry's
//!   first roll overwrites it before any reader needs it.
//! * A first window's claim in `S_P0`: it opens the new entry's first
//!   window at the stalled caller's start, with that call of the old life
//!   counted in the new one.

use super::{
    is_first, is_gcra, is_slots, Snap, COUNT, FROZEN, GEN_BITS, IDX_MASK, IDX_SHIFT, OPEN, RETRIES,
    S_H, S_IV, S_P0, S_P1, S_X, UNCLAIMED,
};
use crate::table::lock::{fence_acquire, Ordering};
use crate::table::word::{Entry, W64};
use crate::table::Table;
use crate::window::first_event_next;
#[cfg(doc)]
use crate::SlidingWindow;

/// The start word of roll count `r`'s parity.
fn slot(e: &Entry, r: u64) -> &W64 {
    &e.s[if r & 1 == 0 { S_P0 } else { S_P1 }]
}

/// Whether `h` (a live, unfrozen `H` of the snapshot's generation) still
/// holds window `r` (low 16 bits) or has moved on.
fn in_window(h: u64, gen_bits: u64, r: u64) -> bool {
    h & (GEN_BITS | FROZEN | OPEN | (IDX_MASK << IDX_SHIFT)) == gen_bits | OPEN | (r << IDX_SHIFT)
}

/// A roll of a first-call interval limit from the window `snap` read to
/// the next one, starting at `start` unless another caller claimed it
/// first (see the module docs: claim, mark, finish). True if the caller's
/// claim won: its call is the new window's first, counted (by whoever
/// finished the roll), and its verdict stands; false if `H` changed before
/// a claim or another caller's start was adopted: check again.
///
/// `snap` by value: a reference would make the hot loop keep its snapshot
/// in memory on every check, not only on this cold path (6 instructions
/// per check through a handle, measured).
#[cold]
#[inline(never)]
pub(super) fn roll_first(e: &Entry, snap: Snap, start: u64) -> bool {
    let r = (snap.h >> IDX_SHIFT) & IDX_MASK;
    let to = (r + 1) & IDX_MASK;
    let end = snap.p[(r & 1) as usize].saturating_add(snap.iv);
    let word = slot(e, to);
    let mut v = word.load(Ordering::Acquire);
    let mut mine = false;
    for _ in 0..RETRIES {
        if v >= end {
            break;
        }
        // The start words read with `snap` (and `v`) are at least as old
        // as `H` read here: a claim for a later window than `to` came
        // after `H` left `snap`'s window, which this load then sees.
        fence_acquire();
        if e.s[S_H].load(Ordering::Acquire) != snap.h {
            return false;
        }
        match word.cas(v, start) {
            Ok(_) => {
                mine = true;
                break;
            }
            Err(now) => v = now,
        }
    }
    if !mine && v < end {
        // No claim after `RETRIES` failed swaps of the start word.
        return false;
    }
    let gen_bits = snap.h & GEN_BITS;
    let rolling_to = rolling(snap.h) | OPEN;
    let mut h = snap.h;
    for _ in 0..RETRIES {
        if in_window(h, gen_bits, r) {
            let marked = rolling_to | (h & COUNT);
            match e.s[S_H].cas(h, marked) {
                Ok(_) => {
                    finish_first(e, marked);
                    break;
                }
                Err(now) => h = now,
            }
        } else {
            if h & !COUNT == rolling_to {
                finish_first(e, h);
            }
            // Finished, moved on, dead or reused: nothing left to do.
            break;
        }
    }
    mine
}

/// Finishes the roll that `h`, a window pipe's `H` with the rolling bit,
/// marks, whichever its anchor (read from the meta word, the entry's for
/// as long as its generation, which `h` carries, holds).
#[cold]
#[inline(never)]
pub(super) fn finish(e: &Entry, h: u64) {
    if is_first(u64::from(e.word0())) {
        finish_first(e, h);
    } else {
        finish_aligned(e, h);
    }
}

/// Finishes the roll that `h`, a first-call interval limit's `H` with the
/// rolling bit, marks (step 3 of the module docs, "Windows from the first
/// call"): the last count in `S_X`, then `H` to the new window with one
/// call counted. Any caller may; several may at once (they store the same
/// record; one swap of `H` wins).
fn finish_first(e: &Entry, h: u64) {
    let to = (h >> IDX_SHIFT) & IDX_MASK;
    let start = slot(e, to).load(Ordering::Acquire);
    let prev = slot(e, to.wrapping_sub(1)).load(Ordering::Acquire);
    let iv = e.s[S_IV].load(Ordering::Relaxed);
    // Next or Idle, as `Window::advance` decides for the winner's time.
    let last = if first_event_next(prev, iv, start) {
        h & COUNT
    } else {
        0
    };
    conclude(e, h, last, 1);
}

/// `H`'s rolling bit and roll count for a roll from the window `h` holds
/// (with its generation): what both kinds of roll mark `H` with.
fn rolling(h: u64) -> u64 {
    let to = (((h >> IDX_SHIFT) & IDX_MASK) + 1) & IDX_MASK;
    (h & GEN_BITS) | FROZEN | (to << IDX_SHIFT)
}

/// The end of every roll's finish: the new window's last count in `S_X`,
/// then `H` from the mark `h` to the new window, open, with `n` calls
/// counted (one: the roller's; none: a hop's).
fn conclude(e: &Entry, h: u64, last: u64, n: u64) {
    let rolled = h & (GEN_BITS | (IDX_MASK << IDX_SHIFT));
    store_last(e, h, rolled | last);
    let _ = e.s[S_H].cas(h, rolled | OPEN | n);
}

/// Stores `want`, a roll's (generation; roll count; last window's count),
/// in `S_X`, by swaps made only while `H` still holds the roll's mark `h`.
/// (The generation: a swap stalled across a delete and an insert cannot
/// land in the slot's next life, whose insert tags `S_X` with its own.)
fn store_last(e: &Entry, h: u64, want: u64) {
    let mut l = e.s[S_X].load(Ordering::Acquire);
    for _ in 0..RETRIES {
        if l == want {
            break;
        }
        if e.s[S_H].load(Ordering::Acquire) != h {
            return;
        }
        match e.s[S_X].cas(l, want) {
            Ok(_) => break,
            Err(now) => l = now,
        }
    }
}

/// An aligned roll's idle mark: `d`, less than this, windows on; or, with
/// this bit, a hop (module docs).
pub(crate) const FAR: u64 = 1 << 30;
/// A hop's significant bits (its mark: `FAR | exponent << 24 | mantissa`).
const HOP_BITS: u32 = 24;

/// The mark of an aligned roll from the window `snap` read (roll count
/// `r`, count `c`, start `s`) to the one that starts at `start`, `d`
/// windows on: `r + 1` with the rolling bit, and with the open bit and
/// `c` if `d == 1`, else `d` if less than [`FAR`], else a hop (see
/// [`hop`]). The bool: a hop.
fn aligned_mark(snap: &Snap, start: u64) -> (u64, bool) {
    let r = (snap.h >> IDX_SHIFT) & IDX_MASK;
    let rolling = rolling(snap.h);
    let s = snap.p[(r & 1) as usize];
    let d = start.saturating_sub(s) / snap.iv.max(1);
    match d {
        0 | 1 => (rolling | OPEN | (snap.h & COUNT), false),
        d if d < FAR => (rolling | d, false),
        d => {
            // Short of the target, in 24 significant bits.
            let short = d - 1;
            let exp = u64::from(64 - short.leading_zeros() - HOP_BITS);
            (rolling | FAR | (exp << HOP_BITS) | (short >> exp), true)
        }
    }
}

/// The distance (windows) of a hop, from its mark's low bits.
fn hop(bits: u64) -> u64 {
    let exp = (bits >> HOP_BITS) & 0x3f;
    (bits & ((1 << HOP_BITS) - 1))
        .checked_shl(exp as u32)
        .unwrap_or(u64::MAX)
}

/// An aligned roll from the window `snap` read to the one that starts at
/// `start`, for a check that counts itself in it: one swap of `H` from
/// what `snap` read to the roll's mark, then its finish (by this caller
/// or any other). True if the check's call is committed as the new
/// window's first; false if `H` changed since `snap`, or the roll was a
/// hop (a window short of its own, with no call counted): check again.
#[cold]
#[inline(never)]
pub(super) fn roll_aligned(e: &Entry, snap: Snap, start: u64) -> bool {
    let (mark, hop) = aligned_mark(&snap, start);
    if e.s[S_H].cas(snap.h, mark).is_err() {
        return false;
    }
    finish_aligned(e, mark);
    !hop
}

/// Finishes the aligned roll that `h` marks (see the module docs,
/// "Aligned windows"): the new window's start in the start word of its
/// roll count's parity, its last count in `S_X`, then `H` to the new
/// window with the roller's call counted (none for a hop). Any caller
/// may; several may at once (they store the same words; one swap of `H`
/// wins).
fn finish_aligned(e: &Entry, h: u64) {
    let to = (h >> IDX_SHIFT) & IDX_MASK;
    let (word, from) = (slot(e, to), slot(e, to.wrapping_sub(1)));
    let iv = e.s[S_IV].load(Ordering::Relaxed);
    // The start word of the new window's parity, then the old window's
    // start, both read while `H` holds the mark: the old one changes only
    // after `H` leaves window `to`, the new one only here (a value read
    // before the mark was made fails the swap below).
    let mut v = word.load(Ordering::Acquire);
    let s = from.load(Ordering::Acquire);
    fence_acquire();
    if e.s[S_H].load(Ordering::Acquire) != h {
        return;
    }
    let (d, last, n) = if h & OPEN != 0 {
        (1, h & COUNT, 1)
    } else if h & FAR != 0 {
        (hop(h & (FAR - 1)), 0, 0)
    } else {
        // At least 2 (less only in a corrupt entry).
        (h & COUNT, 0, 1)
    };
    let start = s.saturating_add(d.saturating_mul(iv)).min(UNCLAIMED - 1);
    for _ in 0..RETRIES {
        if v == start {
            break;
        }
        match word.cas(v, start) {
            Ok(_) => break,
            Err(now) => v = now,
        }
        if e.s[S_H].load(Ordering::Acquire) != h {
            return;
        }
    }
    conclude(e, h, last, n);
}

/// Opens the first window of a fresh window pipe (whose fresh `H` the
/// caller read: `fresh`) for a check whose window starts at `start`:
/// claims it in `S_P0` unless another caller claimed first, then swaps `H`
/// from fresh to window 0 with the claimant's call counted. True if the
/// caller's claim won: its call is the first of the pipe, counted (by
/// whoever opened `H`), and its verdict stands; false if `H` changed
/// before a claim or another caller's claim was found: check again. See
/// the module docs, "The first window".
#[cold]
#[inline(never)]
pub(super) fn open(e: &Entry, fresh: u64, start: u64) -> bool {
    let word = &e.s[S_P0];
    let mut mine = false;
    if word.load(Ordering::Acquire) == UNCLAIMED {
        // A snapshot of an earlier life of the slot must not claim a
        // later life's word (`H` carries the generation).
        fence_acquire();
        if e.s[S_H].load(Ordering::Acquire) != fresh {
            return false;
        }
        // `Window` starts no window at `UNCLAIMED` (`LAST_START`): kept
        // here against a corrupt state.
        mine = word.cas(UNCLAIMED, start.min(UNCLAIMED - 1)).is_ok();
    }
    // Window 0 (`S_X`: rolls 0, last count 0, as the insert wrote), one
    // call counted: the claimant's, as a roll counts its winner's (the
    // caller claims only for a check that counts itself).
    let _ = e.s[S_H].cas(fresh, (fresh & GEN_BITS) | OPEN | 1);
    mine
}

impl Table<'_> {
    /// Finishes what a holder killed inside `Table::hot_to_locked` or a
    /// roll left (called under the entry lock it left): of a SLOTS entry
    /// frozen for a conversion, clears the bit (the entry stays hot, its
    /// state in `H`, see `hot/convert.rs`); a window pipe's marked roll is
    /// finished.
    pub(crate) fn hot_recover(&self, e: &Entry) {
        let h = e.s[S_H].load(Ordering::Acquire);
        let cfg = u64::from(e.word0());
        if is_gcra(cfg) || h & FROZEN == 0 {
            return;
        }
        if is_slots(cfg) {
            e.s[S_H].store(h & !FROZEN, Ordering::Release);
            return;
        }
        finish(e, h);
    }
}
