//! Rolls of a hot window pipe to a later window (see [`hot`](super)).
//!
//! # Rollover, finished by anyone
//! A check that moves `H` from window `i` (count `c`) to window `j`,
//! `j - i < 2^15`, first raises `S_X` to `j` (an index `H` does not hold
//! yet, which readers of `i` still read right: `i` is the highest index not
//! above `j` with its 16 bits), then writes its records, each a
//! compare-and-swap made only while `H` still holds what the check read:
//! `(i, c)` in `i`'s word, unless it holds `i` with a count as high; and
//! if `j - i` is even, an idle record `(j - 1, 0)` in the other word,
//! unless that holds `i - 1` (readers of `i` still need it). Then it swaps
//! `H`. If the swap fails, `H` changed and the check retries, recording
//! the newer count; if it succeeds, window `i`'s record holds its final
//! count, since counts of a window only grow and its `H` is gone. A
//! process killed before the swap leaves a record not above the final
//! count (any later roller records the final one over it) and `S_X` at
//! most `j`. A reader of window `j` takes the last window's count from
//! `j - 1`'s word if that names `j - 1` by its 32 bits, else 0 (an idle
//! window between). Every roll rewrites both words or leaves in one a
//! record of a window less than 2^15 back, so no record lives 2^32
//! windows to pass for another. So no roll needs a lock, and none is ever
//! half done in a way another caller cannot finish.
//!
//! A check whose raise of `S_X` finds it 2^15 or more above its `i` read a
//! stale `H` (one that came back to the same bits 2^16 windows later: the
//! index is there to catch that) or an `S_X` that is off: it takes the
//! locked path, as do rolls of 2^15 windows or more (a raise that far
//! would make readers of `i` read another window).
//!
//! # Frozen rolls, under the entry lock
//! The holder writes the undo record (`S_X`, `S_P0`, `S_P1` as read),
//! swaps `H` to itself with the frozen bit (a failed swap: look again),
//! stores `j - 1`'s record (the count of `i` if `j = i + 1`, else 0) and
//! an idle record of `j - 2` in the other word, `S_X = j`, and `H'`.
//! Callers without the lock that see the frozen bit take the locked path
//! and wait for the holder. A holder killed while `H` is frozen leaves
//! its lock to the next locker, which puts the undo record back and clears
//! the bit (`Table::hot_recover`): the roll did not happen. Listings read
//! a frozen entry under its lock.
//!
//! # The first window, claimed by one caller, opened by anyone
//! A new pipe's `H` is fresh (no window open) and its `S_X` holds
//! [`UNCLAIMED`]; no reader of a fresh `H` reads another word. A check in
//! window `j` **claims** the first window by swapping `S_X` from
//! `UNCLAIMED` to `j`, only while `H` is still the fresh one it read:
//! exactly one claim wins, and `S_X` then changes no more until `H` opens.
//! Whoever finds `S_X` claimed **opens** `H` by one swap from fresh to the
//! claimed window with one call counted: the claimant's (only a check
//! opens a window, and it counts itself: a SLIDING drop, which counts
//! nothing, leaves its pipe unopened, see [`SlidingWindow`]). The claimant's
//! verdict stands, whoever made the swap; every other caller checks again
//! in the open window (its own later window is then an ordinary roll, an
//! earlier one time going backwards). That is the serial order "the
//! claimant first", whichever window each caller is in: had another
//! caller counted itself first in the claimed window, no serial order
//! would give its verdict (the loom model `first_window_open_racing_open`
//! fails so). Readers of the open `H` find its index in `S_X` exactly.
//! A caller stopped or killed after its claim leaves a claimed `S_X` and
//! a fresh `H`: the next check opens it, counting the claimant's call (a
//! call whose reply was lost). [`Window`](crate::window) numbers no
//! aligned window `u64::MAX` (`LAST_INDEX`), so no window is claimed as
//! `UNCLAIMED`.

//! # Windows from the first call, finished by anyone
//! An interval limit whose windows start at the first call after the last
//! one ended (FreeSWITCH mod_hash) counts its rolls in `H`'s 16 index bits
//! `r` and keeps the start of window `r` in the start word of `r`'s parity
//! (`S_P0` even, `S_P1` odd) and `(r, last window's count)` in `S_X`. A new
//! start is the time of whichever call rolls first, and two words cannot
//! be swapped together, so a roll from window `r` (count `c`, start `s`) to
//! `r + 1` takes three steps, each of which any caller can make:
//!
//! 1. **Claim** the start: swap the start word of `r + 1`'s parity from
//!    what it holds to the caller's time `t`, only while it holds less
//!    than `s + interval` (it then holds `r - 1`'s start, which came at
//!    least an interval before `s`: no claim for `r + 1` yet) and `H`
//!    still holds what the caller read. Exactly one caller wins; every
//!    other roller finds the word at `s + interval` or above and adopts
//!    the winner's start.
//! 2. **Mark** the roll: swap `H` from window `r` (whatever its count
//!    then, `c'`) to window `r + 1` with the rolling bit (bit 48) and the
//!    count `c'`, the last window's final count (checks of window `r`
//!    that come later see the bit and help instead of counting).
//! 3. **Finish**: store `(r + 1, c')` in `S_X` (0 for `c'` when the start
//!    lies an interval or more past `r`'s end: an idle window between,
//!    as [`Window`](crate::Window) decides), by a swap made only while `H`
//!    still holds the rolling word, then swap `H` to window `r + 1`
//!    with a count of 1: the winner's call, the first of its window.
//!
//! The winner returns the verdict of the first call of the new window
//! (in the serial order its call is the roll); every other caller that
//! saw the claim runs its check again on the new window (a time before
//! the winner's start keeps it, as time going backwards does). A caller
//! stopped or killed after any step leaves a state the next caller of the
//! limit finishes without a lock: a claim with `H` unmarked is adopted
//! by the next roller (a killed winner's call is then counted: a call
//! whose reply was lost), a marked `H` is finished by whoever reads it
//! (checks, listings, the locked path). Nothing waits for anybody.
//!
//! The first window is claimed and opened as an aligned pipe's, but the
//! claim is window 0's start, in `S_P0`, which a new limit's insert sets
//! to [`UNCLAIMED`] (and `S_X` to rolls 0, last count 0).
//! [`Window`](crate::window) starts no window at `u64::MAX`
//! (`LAST_START`), so no start is taken for `UNCLAIMED`. Nothing of these
//! limits takes the entry lock.
//!
//! What the checks of `H` cannot close: a claimant stalled between its
//! last load of `H` and its swap of the start word, while the entry is
//! deleted and its slot reused by another first-call limit still in its
//! first window, can land its time in the new entry's start word (only
//! while that word still holds the 0 an insert writes). If that time lies
//! an interval or more past the new window's start, the new entry's next
//! roll adopts it as its start: that window's bounds shift, no count is
//! lost or doubled. The aligned rolls' raise of `S_X` shares this window
//! of a few instructions (`hot.rs`, "Removal and reuse"), and so do the
//! first windows' claims: a claim that lands in the next life of the slot
//! opens its first window at the stalled caller's window or start, with
//! that call of the old life counted in the new one (an aligned pipe's
//! next check then rolls on from there, under the lock if that lies 2^15
//! windows or more back).

use super::{
    is_first, is_gcra, is_slots, join, Snap, COUNT, FROZEN, GEN_BITS, IDX_MASK, IDX_SHIFT, OPEN,
    RETRIES, S_CFG, S_H, S_IV, S_P0, S_P1, S_UNDO, S_X, UNCLAIMED,
};
use crate::table::lock::{fence_acquire, Ordering};
use crate::table::word::{Entry, W64};
use crate::table::Table;
use crate::window::first_event_next;
#[cfg(doc)]
use crate::SlidingWindow;

/// The word of window `idx`'s parity: its record (aligned windows) or its
/// start (windows from the first call, `idx` counting rolls).
fn slot(e: &Entry, idx: u64) -> &W64 {
    &e.s[if idx & 1 == 0 { S_P0 } else { S_P1 }]
}

/// Writes record `(idx, count)` in the record word of `idx`'s parity,
/// unless that word holds window `idx` already with a count as high (with
/// `raise`) or with this count (without), or holds window `keep`. Only
/// while `H` still holds `snap.h`: a check that read `H` long ago and finds
/// it moved on leaves the word alone (its swap of `H` fails anyway).
fn record(e: &Entry, snap: &Snap, idx: u64, count: u32, raise: bool, keep: Option<u64>) {
    let (low, word) = (idx as u32, slot(e, idx));
    let want = join(count, low);
    let mut p = word.load(Ordering::Acquire);
    for _ in 0..RETRIES {
        let (held, c) = ((p >> 32) as u32, p as u32);
        if (held == low && (c == count || (raise && c > count)))
            || keep.is_some_and(|k| held == k as u32)
        {
            return;
        }
        if e.s[S_H].load(Ordering::Acquire) != snap.h {
            return;
        }
        match word.cas(p, want) {
            Ok(_) => return,
            Err(now) => p = now,
        }
    }
}

/// The records a roll from window `from` (count `count`) to window `to`,
/// `to - from < NEAR`, leaves without the lock: `from`'s count in `from`'s
/// word (the last window's count if `to` is next; else a record `to`'s
/// readers never take); and if `to - 1` has the parity of `from`'s last
/// window, an idle record of `to - 1` in that word, unless the word holds
/// `from - 1`, which readers of `from` still need (and which lies less
/// than `NEAR` from `to - 1`, so cannot pass for it). So each roll writes
/// both words or leaves in one a record less than `NEAR` windows old: no
/// record can be 2^32 windows old and pass for a window by its 32 bits.
pub(super) fn record_roll(e: &Entry, snap: &Snap, from: u64, count: u32, to: u64) {
    record(e, snap, from, count, true, None);
    let d = to - from;
    if d >= 2 && d & 1 == 0 {
        record(e, snap, to - 1, 0, false, from.checked_sub(1));
    }
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
    let rolling_to = gen_bits | FROZEN | OPEN | (to << IDX_SHIFT);
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

/// Finishes the roll that `h`, a first-call interval limit's `H` with the
/// rolling bit, marks (step 3 of the module docs): the last count in
/// `S_X`, then `H` to the new window with one call counted. Any caller may;
/// several may at once (they store the same record; one swap of `H` wins).
#[cold]
#[inline(never)]
pub(super) fn finish_first(e: &Entry, h: u64) {
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
    let want = (to << 32) | last;
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
    let _ = e.s[S_H].cas(h, (h & !(FROZEN | COUNT)) | 1);
}

/// The start of a frozen roll: writes the undo record (`S_X`, `S_P0`,
/// `S_P1` as `snap` read them) and swaps `H` to itself with the frozen
/// bit; false if `H` changed since `snap`.
fn freeze(e: &Entry, snap: &Snap) -> bool {
    for (i, v) in S_UNDO.into_iter().zip([snap.x, snap.p[0], snap.p[1]]) {
        e.s[i].store(v, Ordering::Relaxed);
    }
    // Release (in the swap): the undo record is in place before `H` is
    // frozen.
    e.s[S_H].cas(snap.h, snap.h | FROZEN).is_ok()
}

/// Opens the first window of a fresh window pipe (whose fresh `H` the
/// caller read: `fresh`) for a check whose window is `claim`: its index
/// (aligned windows, claimed in `S_X`) or its start (`first_call`: windows
/// from the first call, claimed in `S_P0`, as window 0). Claims it unless
/// another caller claimed first, then swaps `H` from fresh to the claimed
/// window with the claimant's call counted. True if the caller's claim
/// won: its call is the first of the pipe, counted (by whoever opened
/// `H`), and its verdict stands; false if `H` changed before a claim or
/// another caller's claim was found: check again. See the module docs,
/// "The first window".
#[cold]
#[inline(never)]
pub(super) fn open(e: &Entry, fresh: u64, first_call: bool, claim: u64) -> bool {
    let word = &e.s[if first_call { S_P0 } else { S_X }];
    let mut held = word.load(Ordering::Acquire);
    let mut mine = false;
    if held == UNCLAIMED {
        // A snapshot of an earlier life of the slot must not claim a
        // later life's word (`H` carries the generation).
        fence_acquire();
        if e.s[S_H].load(Ordering::Acquire) != fresh {
            return false;
        }
        // `Window` gives no window index or start of `UNCLAIMED`
        // (`LAST_INDEX`, `LAST_START`): kept here against a corrupt state.
        let claim = claim.min(UNCLAIMED - 1);
        match word.cas(UNCLAIMED, claim) {
            Ok(_) => (held, mine) = (claim, true),
            Err(now) => held = now,
        }
    }
    // Aligned: the claimed window's index (`S_X` now names it exactly);
    // from the first call: window 0 (`S_X`: rolls 0, last count 0, as the
    // insert wrote). One call counted: the claimant's, as a roll counts
    // its winner's (the caller claims only for a check that counts
    // itself).
    let idx = if first_call { 0 } else { held & IDX_MASK };
    let opened = (fresh & GEN_BITS) | (idx << IDX_SHIFT) | OPEN | 1;
    let _ = e.s[S_H].cas(fresh, opened);
    mine
}

impl Table<'_> {
    /// A roll to window `to` from window `from` that the lock-free one
    /// cannot make, under the entry lock: freeze `H` (every caller without
    /// the lock then takes the locked path and waits), store the records
    /// `to` reads and `S_X` exactly, then `H`. False if `H` changed since
    /// `snap`: look again. A holder killed while `H` is frozen leaves the
    /// undo record, which [`Table::hot_recover`] puts back: the roll did
    /// not happen.
    #[cold]
    #[inline(never)]
    pub(super) fn frozen_roll(&self, e: &Entry, snap: &Snap, from: u64, to: u64, h: u64) -> bool {
        if !freeze(e, snap) {
            return false;
        }
        // Window `to - 1`'s record, and in the other word one that no
        // window near `to` takes (whatever the words held could be 2^32
        // windows old).
        let last = to.wrapping_sub(1);
        let count = if from.checked_add(1) == Some(to) {
            (snap.h & COUNT) as u32
        } else {
            0
        };
        slot(e, last).store(join(count, last as u32), Ordering::Release);
        let before = to.wrapping_sub(2);
        slot(e, before).store(join(0, before as u32), Ordering::Release);
        e.s[S_X].store(to, Ordering::Release);
        e.s[S_H].store(h, Ordering::Release);
        true
    }

    /// Puts back what a holder killed inside [`Table::frozen_roll`] found
    /// (called under the entry lock it left); of a SLOTS entry frozen by a
    /// holder killed inside `Table::hot_to_locked`, clears the bit: the
    /// entry stays hot, its state in `H` (see `hot/convert.rs`).
    pub(crate) fn hot_recover(&self, e: &Entry) {
        let h = e.s[S_H].load(Ordering::Acquire);
        let cfg = e.s[S_CFG].load(Ordering::Relaxed);
        if is_gcra(cfg) || h & FROZEN == 0 {
            return;
        }
        if is_slots(cfg) {
            e.s[S_H].store(h & !FROZEN, Ordering::Release);
            return;
        }
        if is_first(cfg) {
            // A roll of a first-call limit is finished, not undone.
            finish_first(e, h);
            return;
        }
        for (i, to) in S_UNDO.into_iter().zip([S_X, S_P0, S_P1]) {
            e.s[to].store(e.s[i].load(Ordering::Relaxed), Ordering::Release);
        }
        e.s[S_H].store(h & !FROZEN, Ordering::Release);
    }
}
