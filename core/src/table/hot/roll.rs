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
//! locked path, as do the first window's open and rolls of 2^15 windows or
//! more (a raise that far would make readers of `i` read another window).
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
//! The first window's open needs no freezing: no caller without the lock
//! changes a fresh `H` (an open is not theirs to make) and no reader of a
//! fresh `H` reads another word, so the holder stores `S_X = j`, then `H'`.
//!
//! # Windows from the first call
//! An interval limit whose windows start at the first call after the last
//! one ended (FreeSWITCH mod_hash) keeps the window's start in `S_X` and
//! the last window's count in `S_P0`; `H`'s 16 index bits count its rolls.
//! A new start is the time of whichever check rolls first, and two words
//! (`S_X` and `H`) cannot be swapped together: a start written before the
//! swap of `H` could be overwritten by a rival's before it lands, or land
//! on a later window. So every roll of such a limit is frozen as above
//! (undo record, freeze, `S_P0`, `S_X`, `H'`), at most once per interval;
//! checks within the window swap `H` alone. The cost: while the holder of
//! a roll is stopped (not dead) with `H` frozen, checks of that limit get
//! `Busy` after the bounded wait, as for any locked entry; killed, the
//! next locker undoes the roll.

use super::{
    has_state, is_gcra, is_slots, join, Snap, COUNT, FROZEN, RETRIES, S_CFG, S_H, S_P0, S_P1,
    S_UNDO, S_X,
};
use crate::table::lock::Ordering;
use crate::table::word::{Entry, W64};
use crate::table::Table;

/// The record word of window `idx`'s parity.
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

impl Table<'_> {
    /// A roll to window `to` (from window `from`, or the first window)
    /// that the lock-free one cannot make, under the entry lock: open the
    /// first window; or freeze `H` (every caller without the lock then
    /// takes the locked path and waits), store the records `to` reads and
    /// `S_X` exactly, then `H`. False if `H` changed since `snap`: look
    /// again. A holder killed while `H` is frozen leaves the undo record,
    /// which [`Table::hot_recover`] puts back: the roll did not happen.
    #[cold]
    #[inline(never)]
    pub(super) fn frozen_roll(
        &self,
        e: &Entry,
        snap: &Snap,
        from: Option<u64>,
        to: u64,
        h: u64,
    ) -> bool {
        let Some(from) = from else {
            // The first window: callers without the lock never change a
            // fresh `H` (they take this path to open it), and readers of a
            // fresh `H` read no other word, so nothing needs freezing:
            // store the index, then swap `H` in. Killed between, the entry
            // stays fresh. The records are the insert's (count 0).
            e.s[S_X].store(to, Ordering::Release);
            return e.s[S_H].cas(snap.h, h).is_ok();
        };
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

    /// A roll of a hot pipe whose windows start at the first event, to the
    /// window starting at `start` whose last window counted `last`, under
    /// the entry lock: `H`'s 16 bits count rolls, so the start and the last
    /// count cannot be read from them, and every roll is frozen (the first
    /// window's open as in [`Table::frozen_roll`]): store `S_P0 = last`,
    /// `S_X = start`, then `H`. False if `H` changed since `snap`.
    #[cold]
    #[inline(never)]
    pub(super) fn frozen_roll_first(
        &self,
        e: &Entry,
        snap: &Snap,
        start: u64,
        last: u32,
        h: u64,
    ) -> bool {
        let opened = has_state(false, snap.h);
        if opened && !freeze(e, snap) {
            return false;
        }
        e.s[S_P0].store(u64::from(last), Ordering::Release);
        e.s[S_X].store(start, Ordering::Release);
        if !opened {
            return e.s[S_H].cas(snap.h, h).is_ok();
        }
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
        for (i, to) in S_UNDO.into_iter().zip([S_X, S_P0, S_P1]) {
            e.s[to].store(e.s[i].load(Ordering::Relaxed), Ordering::Release);
        }
        e.s[S_H].store(h & !FROZEN, Ordering::Release);
    }
}
