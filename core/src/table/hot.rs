//! The lock-free hot path: checks on window pipes aligned to an epoch
//! (TAILDROP, RED, REDP, SLIDING, FEEDBACK, NETWORK, NOP, aligned interval
//! limits), on interval limits whose windows start at the first call
//! (FreeSWITCH mod_hash) and on GCRA, and slot acquires, releases and usage
//! of SLOTS entries without leases, take no lock; one compare-and-swap of
//! one 64-bit word commits one. Only a roll of 2^15 windows or more of an
//! aligned pipe takes the entry lock (a pipe's first window takes a claim
//! and a swap, a roll of a first-call interval limit three swaps, once per
//! interval, each of which any caller can make); a SLOTS entry's first
//! lease or hub balance makes it a locked entry (`hot/convert.rs`).
//!
//! # The words
//! A hot entry keeps its state in 64-bit words of its state area (it has
//! one buffer, not two):
//!
//! | word | holds | written by |
//! | --- | --- | --- |
//! | `S_CFG` | codec word 0 (algorithm, flags) and the limit | insert; a new limit (a plain store) |
//! | `S_IV` | the window interval / GCRA period | insert |
//! | `S_H` | the **hot word**: everything a check changes | compare-and-swap; a frozen roll |
//! | `S_X` | window pipes: the highest window index a roll wrote (`UNCLAIMED` (`u64::MAX`) until the first window is claimed); first-call windows: (rolls, low 16 bits; the last window's count); GCRA: codec word 8 (burst) | a claim or a roll, before its swap; insert; a new limit |
//! | `S_P0`, `S_P1` | records (window index, low 32 bits; count) of even and odd windows; first-call windows: the starts of windows of even and odd roll counts (`S_P0`: `UNCLAIMED` (`u64::MAX`) until the first window is claimed) | a claim or a roll, before its swap, only while `H` still holds what it read; a frozen roll |
//! | `S_UNDO` (3) | a frozen roll's undo record | a frozen roll, before it freezes |
//!
//! Window pipes: `H` = 15 bits of the entry's generation (bits 49-63) |
//! frozen bit 48 | the low 16 bits of the window index, counted from the
//! table's epoch (bits 32-47) | open bit 31 | count (31 bits, saturating).
//! The rest of the window index comes from `S_X`: the index is the
//! highest one not above `S_X` with those 16 low bits. An `H` that is not
//! open holds no state: bit 0 set marks the entry **dead** (being removed,
//! evicted or replaced: a caller that sees it takes the locked path, which
//! waits for the remover or finishes its work). Interval limits whose
//! windows start at the first call: the same `H`, but its 16 index bits
//! count the window's rolls, and bit 48 marks a roll under way (not a
//! frozen one): the window's start (any time, not a multiple of the
//! interval) is claimed in the start word of the new window's parity,
//! then `H` is marked and finished by anyone (`hot/roll.rs`); checks
//! within the window are one swap. GCRA: `H` = the TAT, which
//! stops at `u64::MAX - 1`; `u64::MAX` is dead. SLOTS: `H` = 15 bits of
//! the generation | frozen bit 48 (a conversion under way) | unmatched
//! releases (bits 32-47) | open bit 31, always set while hot | usage (31
//! bits); `S_CFG` holds the max, `S_IV` the codec's "no lease expiry".
//! Counts that would not fit make the entry a locked one instead of
//! saturating (`hot/convert.rs`).
//!
//! # A check
//! Read the generation (even), compare the key, load `H` (acquire) and
//! the other words, fence, read the generation again (changed: the slot
//! was reused, look again; see `word::gen_begin` for the writer's side;
//! `H` frozen or dead: take the locked path), decode the limiter from the
//! words, run it, encode `H'`; if nothing changed (a read, a drop that
//! counts nothing), load `H` again to make sure the words belonged
//! together (changed: retry), done; else compare-and-swap `H -> H'`. A
//! failed swap means another caller committed first: decode again and
//! retry (lock-free: each retry follows someone's progress; a bound of
//! 2^16 retries gives `Error::Busy`).
//!
//! A TAILDROP check that stays in its window skips the decoding: tried on
//! the loop's first snapshot, it swaps `H` to the count plus one
//! (`table/hot/fast.rs`; any other case goes the general way with that
//! snapshot).
//!
//! # Rollover
//! Finished by anyone, without the lock, or frozen under it: see
//! `table/hot/roll.rs`, whose docs say how.
//!
//! # Removal and reuse
//! Only holders of the entry lock remove, evict or replace a hot entry,
//! and they first swap `H` to dead (from the exact value they judged idle,
//! when evicting: a check that came between makes the swap fail and the
//! entry stays). A check's swap from any live value then fails. The slot's
//! next entry starts with a fresh `H` carrying the new generation, so an
//! `H` read before the reuse never equals it; a check validates the
//! generation after reading `H`. A remover killed after the dead swap
//! leaves a dead entry under a dead holder's lock: the next locker takes
//! it over and finishes the removal (`Table::recover`).
//!
//! What a swap cannot tell apart, and how it is closed: a check stalled
//! between reading `H` and swapping while its entry was deleted, another
//! key inserted in the slot and checked until its `H` equals the value the
//! stalled check read. A window pipe's `H` carries 15 bits of the
//! generation, so that takes 2^15 lives of the slot within one stalled
//! check. A GCRA's TAT has no room for them: after its swap, a GCRA check
//! reads the generation again, and if it changed and `H` still holds what
//! it wrote, swaps it back and looks again (a later check built on it
//! first would keep it: a third caller inside the same instant).
//!
//! # Limits of the packing
//! * A window's count saturates at 2^31 - 1 (a bare limiter's at 2^32 - 1).
//! * A check stalled between reading `H` and its swap while the pipe moves
//!   on by a multiple of 2^16 windows and back to the same count (so `H`
//!   has the same bits): a roll catches it at its raise of `S_X` (above);
//!   a check that stays in its window commits what the serial order would
//!   (its count lands in the new window), but decided with the last
//!   window's count it read before, which only SLIDING, RED and REDP use.
//!   A first-call interval limit's check in that case also commits what
//!   the serial order would: its time lay before the new window's start
//!   (which came at least an interval after the old one's), so the serial
//!   order counts it in the new window too, and an interval limit decides
//!   by the count alone.
//! * A GCRA's TAT stops at `u64::MAX - 1` (so does a bare [`Gcra`](crate::Gcra)'s).
//! * Where the target has no 64-bit atomics (thumbv7em) nothing is hot:
//!   every operation takes the entry's lock, as all did before layout 3.

mod convert;
mod fast;
mod roll;

use super::codec::{decode_as, encode, Cell, BUF_WORDS};
use super::layout::*;
use super::lock::{fence_acquire, Ordering};
use super::word::{Entry, HOT};
use super::Table;
use crate::{Algorithm, Anchor, Error, Limiter, Slots};

/// Codec words 0 (algorithm, flags) and 1 (limit).
pub(crate) const S_CFG: usize = 0;
/// Codec words 2-3: interval / period.
pub(crate) const S_IV: usize = 1;
/// The hot word.
pub(crate) const S_H: usize = 2;
/// Records of past windows (index, count): an even window's in `S_P0`,
/// an odd one's in `S_P1`.
pub(crate) const S_P0: usize = 3;
/// Window pipes: the highest index a roll wrote; GCRA: codec word 8 (burst).
pub(crate) const S_X: usize = 4;
/// See [`S_P0`] (buffer 1's first word: a hot entry has one buffer).
pub(crate) const S_P1: usize = 5;
/// A frozen roll's undo record: `S_X`, `S_P0` and `S_P1` as they were.
const S_UNDO: [usize; 3] = [6, 7, 8];

const OPEN: u64 = 1 << 31;
const COUNT: u64 = OPEN - 1;
/// A SLOTS `H`'s unmatched releases (bits 32-47), at most this many.
const UNMATCHED: u64 = 0xffff;
/// A window pipe's `H`: the low 16 bits of its window index (bits 32-47).
const IDX_SHIFT: u32 = 32;
const IDX_MASK: u64 = 0xffff;
/// A window pipe's `H`: a roll under way under the entry lock (bit 48).
const FROZEN: u64 = 1 << 48;
/// A window pipe's `H`: 15 bits of its entry's generation (bits 49-63).
const GEN_SHIFT: u32 = 49;
const GEN_BITS: u64 = 0x7fff << GEN_SHIFT;
/// How far (in windows) a roll without the lock may move, and how far
/// above `H`'s window `S_X` may stand for `H` to be read without it.
const NEAR: u64 = 1 << 15;
/// A GCRA's dead `H`; a live TAT stops one below it.
const GCRA_DEAD: u64 = u64::MAX;
const DEAD: u64 = 1;
/// What a fresh window pipe's `S_X` (aligned windows) or `S_P0` (windows
/// from the first call) holds until a caller claims its first window
/// (`hot/roll.rs`, "The first window").
pub(crate) const UNCLAIMED: u64 = u64::MAX;
/// Retries of a failed swap before [`Error::Busy`].
const RETRIES: u32 = 1 << 16;
/// Codec word 0's open bit, which `S_CFG` does not keep (`H` says it).
const OPEN_BIT: u32 = 1 << 5;
/// Codec word 0's first-event anchor bit, which `S_CFG` keeps.
const FIRST_EVENT: u64 = 1 << 4;
/// Codec word 0's anchor and open bits: [`Snap::words`] sets both from
/// what it knows (the anchor from its caller's constant, so that the
/// compiler drops first-event code from the checks of aligned pipes).
const WINDOW_BITS: u32 = OPEN_BIT | FIRST_EVENT as u32;

/// Whether a cell is kept hot: GCRA, pipes with aligned windows, interval
/// limits (either anchor), and SLOTS without leases whose counts fit in
/// `H`, on a target with 64-bit atomics.
pub(crate) fn is_hot(cell: &Cell) -> bool {
    HOT && match &cell.limiter {
        Limiter::Slots(s) => slots_word(s, cell.leased, cell.next_expiry).is_some(),
        Limiter::Gcra(_) | Limiter::Interval(_) => true,
        l => l
            .window_counter()
            .is_some_and(|c| matches!(c.window().anchor(), Anchor::Aligned { .. })),
    }
}

/// Whether a window pipe's windows start at the first event (`S_CFG`).
fn is_first(cfg: u64) -> bool {
    cfg & FIRST_EVENT != 0
}

fn is_gcra(cfg: u64) -> bool {
    cfg as u32 & 0xf == Algorithm::Gcra as u32
}

pub(crate) fn is_slots(cfg: u64) -> bool {
    cfg as u32 & 0xf == Algorithm::Slots as u32
}

/// A SLOTS `H`'s state bits (generation aside) for these counts, if they
/// fit and no lease is held (`leased`, `next_expiry`: the cell's).
fn slots_word(s: &Slots, leased: u32, next_expiry: u64) -> Option<u64> {
    (leased == 0
        && next_expiry == u64::MAX
        && u64::from(s.usage) <= COUNT
        && u64::from(s.unmatched) <= UNMATCHED)
        .then(|| (u64::from(s.unmatched) << IDX_SHIFT) | OPEN | u64::from(s.usage))
}

/// The `H` of a new entry of generation `gen`: no state yet (a SLOTS
/// entry: no slot held).
pub(crate) fn fresh(cfg: u64, gen: u32) -> u64 {
    if is_gcra(cfg) {
        0
    } else {
        // The generation moves by 4 per life of an entry (word::gen_begin).
        let g = (u64::from(gen >> 2) << GEN_SHIFT) & GEN_BITS;
        if is_slots(cfg) {
            g | OPEN
        } else {
            g
        }
    }
}

/// Whether `h` holds state (else it is fresh or dead). A GCRA's TAT of 0
/// is its state before the first cell.
fn has_state(gcra: bool, h: u64) -> bool {
    if gcra {
        h != GCRA_DEAD
    } else {
        h & OPEN != 0
    }
}

/// Whether `h` marks a dead entry.
pub(crate) fn is_dead(cfg: u64, h: u64) -> bool {
    if is_gcra(cfg) {
        h == GCRA_DEAD
    } else {
        h & OPEN == 0 && h & DEAD != 0
    }
}

fn dead(cfg: u64, h: u64) -> u64 {
    if is_gcra(cfg) {
        GCRA_DEAD
    } else {
        (h & GEN_BITS) | DEAD
    }
}

fn split(v: u64) -> (u32, u32) {
    (v as u32, (v >> 32) as u32)
}

fn join(lo: u32, hi: u32) -> u64 {
    u64::from(lo) | (u64::from(hi) << 32)
}

/// The full window index whose low 16 bits are `low`: the highest one not
/// above `x`, the highest index any roll of the entry wrote (every roll
/// raises `x` before its swap, so the window `H` holds is never above it).
/// Below 0 only in a corrupt entry, read as `low` itself.
fn full_index(low: u16, x: u64) -> u64 {
    let back = u64::from((x as u16).wrapping_sub(low));
    x.checked_sub(back).unwrap_or(u64::from(low))
}

/// One read of a hot entry's words.
#[derive(Clone, Copy)]
pub(crate) struct Snap {
    cfg: u64,
    iv: u64,
    x: u64,
    h: u64,
    p: [u64; 2],
}

/// What [`Snap::words`] knew of the window: its full index, for packing.
#[derive(Clone, Copy)]
struct Old {
    idx: Option<u64>,
}

impl Snap {
    /// Reads the words; `H` first, with acquire ordering, so that `P` is
    /// at least as new as the roll that made `H`.
    #[inline(always)]
    pub(crate) fn read(e: &Entry) -> Snap {
        let h = e.s[S_H].load(Ordering::Acquire);
        Snap {
            h,
            p: [
                e.s[S_P0].load(Ordering::Relaxed),
                e.s[S_P1].load(Ordering::Relaxed),
            ],
            cfg: e.s[S_CFG].load(Ordering::Relaxed),
            iv: e.s[S_IV].load(Ordering::Relaxed),
            x: e.s[S_X].load(Ordering::Relaxed),
        }
    }

    /// [`Snap::read`], then the reader side of the generation's sequence
    /// lock (see `word::gen_begin`): `gen` was read (even) before the key
    /// was compared; the same generation after the state was read (the
    /// `bool`) means no insert or delete came between.
    #[inline(always)]
    fn read_seq(e: &Entry, gen: u32) -> (Snap, bool) {
        let snap = Snap::read(e);
        fence_acquire();
        (snap, e[E_GEN].load(Ordering::Relaxed) == gen)
    }

    /// Whether the words [`Snap::read`] read belong together: after an
    /// acquire fence, `H` still holds what was read and no roll is frozen.
    /// (A frozen roll stores `S_X` and the records with release ordering
    /// after freezing `H`, so reading one of them shows `H` changed here;
    /// a lock-free roll raises `S_X` by less than 2^15 before its swap,
    /// which leaves `H`'s window read right.)
    #[inline(always)]
    fn stable(&self, e: &Entry) -> bool {
        fence_acquire();
        let h = e.s[S_H].load(Ordering::Relaxed);
        h == self.h && (is_gcra(self.cfg) || h & FROZEN == 0)
    }

    /// [`Snap::read`] until the words belong together; `None` while a roll
    /// is frozen (its holder has the entry lock) or after [`RETRIES`]. A
    /// first-call interval limit's marked roll is finished here.
    pub(crate) fn read_stable(e: &Entry) -> Option<Snap> {
        for _ in 0..RETRIES {
            let snap = Snap::read(e);
            if snap.stable(e) {
                return Some(snap);
            }
            if !is_gcra(snap.cfg) && snap.h & FROZEN != 0 {
                if !is_first(snap.cfg) || snap.h & OPEN == 0 {
                    return None;
                }
                roll::finish_first(e, snap.h);
            }
        }
        None
    }

    pub(crate) fn h(&self) -> u64 {
        self.h
    }

    pub(crate) fn cfg(&self) -> u64 {
        self.cfg
    }

    /// The codec's words for this state (`alg`: the entry's algorithm, and
    /// `first_call`, whether its windows start at the first call, as its
    /// `S_CFG` says; constants on the hot path).
    #[inline(always)]
    fn words(&self, alg: Algorithm, first_call: bool, epoch: u64) -> ([u32; BUF_WORDS], Old) {
        let gcra = alg == Algorithm::Gcra;
        let mut w = [0u32; BUF_WORDS];
        (w[0], w[1]) = split(self.cfg);
        w[0] &= !WINDOW_BITS;
        if first_call {
            w[0] |= FIRST_EVENT as u32;
        }
        (w[2], w[3]) = split(self.iv);
        if gcra {
            w[8] = self.x as u32;
        }
        if alg == Algorithm::Slots {
            // Usage and unmatched releases; no lease (`S_IV` holds the
            // codec's "no expiry", words 2-3).
            if has_state(false, self.h) {
                w[6] = (self.h & COUNT) as u32;
                w[7] = ((self.h >> IDX_SHIFT) & UNMATCHED) as u32;
            }
            return (w, Old { idx: None });
        }
        if !has_state(gcra, self.h) {
            return (w, Old { idx: None });
        }
        if gcra {
            (w[4], w[5]) = split(self.h);
            return (w, Old { idx: None });
        }
        let low = ((self.h >> IDX_SHIFT) & IDX_MASK) as u16;
        let count = (self.h & COUNT) as u32;
        if first_call {
            // Windows from the first call: `H`'s 16 bits count rolls, the
            // start word of their parity holds the window's start and
            // `S_X` the last count, tagged with the rolls (`hot/roll.rs`).
            w[0] |= OPEN_BIT;
            (w[4], w[5]) = split(self.p[usize::from(low & 1)]);
            w[6] = count;
            // Tagged with `low` whenever `H` shows the window unmarked: a
            // roll stores it before it leaves the mark (and only then).
            w[7] = self.x as u32;
            return (
                w,
                Old {
                    idx: Some(u64::from(low)),
                },
            );
        }
        let idx = full_index(low, self.x);
        // Saturating: only a corrupt index can get there (a window starts
        // at or before the time that opened it); an interval of 0 is
        // Corrupt when decoded.
        let start = idx.saturating_mul(self.iv).saturating_add(epoch);
        w[0] |= OPEN_BIT;
        (w[4], w[5]) = split(start);
        w[6] = count;
        // A record names its window by the low 32 bits of its index.
        w[7] = match idx.checked_sub(1) {
            Some(last) => {
                let p = self.p[(last & 1) as usize];
                if (p >> 32) as u32 == last as u32 {
                    p as u32
                } else {
                    0
                }
            }
            None => 0,
        };
        (w, Old { idx: Some(idx) })
    }

    /// The limiter, changing nothing (listings, idleness).
    pub(crate) fn cell(&self, epoch: u64) -> Result<Cell, Error> {
        let alg = Algorithm::from_u8((self.cfg & 0xf) as u8).ok_or(Error::Corrupt)?;
        let (w, _) = self.words(alg, is_first(self.cfg), epoch);
        super::codec::decode(&w, epoch)
    }
}

/// `H` for the codec words `w` a check left, given what it read, and the
/// full index of its window if the window moved (or opened); `first_call`:
/// windows start at the first call, and the index counts rolls.
#[inline(always)]
fn pack(
    gcra: bool,
    first_call: bool,
    w: &[u32; BUF_WORDS],
    before: &[u32; BUF_WORDS],
    snap: &Snap,
    old: Old,
    epoch: u64,
) -> (u64, Option<u64>) {
    if gcra {
        let tat = join(w[4], w[5]);
        if tat == join(before[4], before[5]) {
            return (snap.h, None);
        }
        return (tat.min(GCRA_DEAD - 1), None);
    }
    if w[0] & OPEN_BIT == 0 {
        return (snap.h, None);
    }
    let start = join(w[4], w[5]);
    let old_start = join(before[4], before[5]);
    let (idx, moved) = match old.idx {
        Some(i) if start == old_start => (i, false),
        // Windows from the first event: the index counts rolls, one each.
        Some(i) if first_call => (i.wrapping_add(1) & IDX_MASK, true),
        None if first_call => (0, true),
        Some(i) if start > old_start && snap.iv != 0 => {
            (i.saturating_add((start - old_start) / snap.iv), true)
        }
        _ => (start.saturating_sub(epoch) / snap.iv.max(1), true),
    };
    let h =
        (snap.h & GEN_BITS) | ((idx & IDX_MASK) << IDX_SHIFT) | OPEN | u64::from(w[6]).min(COUNT);
    (h, moved.then_some(idx))
}

impl<'a> Table<'a> {
    /// Runs `f` on hot entry `e` (of generation `gen`) as of `now`,
    /// lock-free, and commits what it changed; with `touch`, records `now`
    /// as the entry's last use (every operation but a read does).
    /// `Ok(None)`: the entry is dead or no longer of generation `gen`, a
    /// roll of it is frozen, or this one must be (a window `NEAR` or more
    /// past the last): take the locked path, which looks again. `LOCKED`:
    /// the caller holds the entry lock, and freezes such rolls itself.
    /// `f` may run more than once (after a failed swap): it must change
    /// nothing but the cell.
    #[inline(always)]
    pub(crate) fn hot_update<T, const LOCKED: bool>(
        &self,
        e: &Entry,
        gen: u32,
        now: u64,
        touch: bool,
        f: impl FnMut(&mut Cell) -> Result<T, Error>,
    ) -> Result<Option<T>, Error> {
        self.hot_update_fast::<T, LOCKED>(e, gen, now, touch, |_| None, f)
    }

    /// [`Table::hot_update`] with a shortcut for TAILDROP entries: `fast`,
    /// given a snapshot of words of generation `gen`, may return the `H`
    /// to swap in and the result, skipping the codec and `f` (see
    /// `hot/fast.rs`); `None` runs `f`.
    #[inline(always)]
    pub(crate) fn hot_update_fast<T, const LOCKED: bool>(
        &self,
        e: &Entry,
        gen: u32,
        now: u64,
        touch: bool,
        fast: impl Fn(&Snap) -> Option<(u64, T)>,
        f: impl FnMut(&mut Cell) -> Result<T, Error>,
    ) -> Result<Option<T>, Error> {
        let cfg = e.s[S_CFG].load(Ordering::Relaxed);
        let alg = cfg as u32 & 0xf;
        let mut first = None;
        if alg == Algorithm::Taildrop as u32 {
            // hot_run's first round, read here to try `fast` on it before
            // the general code; handed on unless it committed (the same
            // reads in the same order: no interleaving is added).
            let (snap, same_gen) = Snap::read_seq(e, gen);
            match same_gen.then(|| fast(&snap)).flatten() {
                Some((h, out)) => {
                    if e.s[S_H].cas(snap.h, h).is_ok() {
                        if touch {
                            e.used.store(now, Ordering::Relaxed);
                        }
                        return Ok(Some(out));
                    }
                    // As hot_run's failed swap: read again.
                }
                None => first = Some((snap, same_gen)),
            }
        }
        macro_rules! per_algorithm {
            ($($a:ident),*) => {
                match alg {
                    // Windows from the first call: their own code (the
                    // anchor, like the algorithm, is the entry's for as
                    // long as its generation holds).
                    x if x == Algorithm::Interval as u32 && is_first(cfg) => self.hot_run::<T, LOCKED, false>(e, gen, now, touch, Algorithm::Interval, true, first, f),
                    $(x if x == Algorithm::$a as u32 => self.hot_run::<T, LOCKED, false>(e, gen, now, touch, Algorithm::$a, false, first, f),)*
                    x if x == Algorithm::Slots as u32 => self.hot_run::<T, LOCKED, false>(e, gen, now, touch, Algorithm::Slots, false, first, f),
                    _ => Err(Error::Corrupt),
                }
            };
        }
        rate_algorithms!(per_algorithm)
    }

    /// [`Table::hot_run`] of a pipe whose first window a check opens
    /// (`FIRST`: the only instance that has the code to): out of line, so
    /// that the check of an open window neither sets up nor keeps what
    /// the open needs (inline, it kept its snapshot in memory: +7
    /// instructions per check through a handle, measured).
    #[cold]
    #[inline(never)]
    #[allow(clippy::too_many_arguments)]
    fn hot_open<T, const LOCKED: bool>(
        &self,
        e: &Entry,
        gen: u32,
        now: u64,
        touch: bool,
        alg: Algorithm,
        first_call: bool,
        f: impl FnMut(&mut Cell) -> Result<T, Error>,
    ) -> Result<Option<T>, Error> {
        self.hot_run::<T, LOCKED, true>(e, gen, now, touch, alg, first_call, None, f)
    }

    /// One hot operation: the loop of [`Table::hot_update_fast`]. `FIRST`:
    /// this instance opens a pipe's first window (see [`Table::hot_open`]).
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn hot_run<T, const LOCKED: bool, const FIRST: bool>(
        &self,
        e: &Entry,
        gen: u32,
        now: u64,
        touch: bool,
        alg: Algorithm,
        first_call: bool,
        mut first: Option<(Snap, bool)>,
        mut f: impl FnMut(&mut Cell) -> Result<T, Error>,
    ) -> Result<Option<T>, Error> {
        for _ in 0..RETRIES {
            let (snap, same_gen) = first.take().unwrap_or_else(|| Snap::read_seq(e, gen));
            let gcra = alg == Algorithm::Gcra;
            // The algorithm is the entry's for as long as its generation
            // holds (a new one takes a delete and an insert).
            let (dead, frozen) = if gcra {
                (snap.h == GCRA_DEAD, false)
            } else if alg == Algorithm::Slots {
                // Not open: dead, or no longer hot (its lock holder made
                // it a locked entry, whose buffer 0 holds 0 here).
                (snap.h & OPEN == 0, snap.h & FROZEN != 0)
            } else {
                (snap.h & (OPEN | DEAD) == DEAD, snap.h & FROZEN != 0)
            };
            if !same_gen || dead || frozen {
                if first_call && frozen && same_gen && !dead {
                    // A marked roll: anyone finishes it (`hot/roll.rs`).
                    roll::finish_first(e, snap.h);
                    continue;
                }
                if LOCKED && frozen {
                    // Frozen under our lock: left by a killed holder that
                    // recovery did not see (a corrupt region); undo it.
                    self.hot_recover(e);
                    continue;
                }
                return Ok(None);
            }
            let (before, old) = snap.words(alg, first_call, self.epoch);
            let mut cell = decode_as(alg, &before, self.epoch)?;
            let out = f(&mut cell)?;
            let after = encode(&cell);
            let (h, moved) = if alg == Algorithm::Slots {
                let Limiter::Slots(s) = &cell.limiter else {
                    return Err(Error::Corrupt);
                };
                // Counts that do not fit (or a lease, which only the
                // locked path takes): the entry must become a locked one.
                match slots_word(s, cell.leased, cell.next_expiry) {
                    Some(state) => ((snap.h & GEN_BITS) | state, None),
                    None => return Ok(None),
                }
            } else {
                pack(gcra, first_call, &after, &before, &snap, old, self.epoch)
            };
            match (moved, old.idx) {
                // The first window: claimed by one caller, opened by
                // anyone, the claimant's call counted (`hot/roll.rs`).
                // Only checks open a window, each counting its own call (a
                // SLIDING drop, which counts nothing, leaves its pipe
                // unopened: `SlidingWindow::check`).
                (Some(to), None) => match h & COUNT {
                    1 if !FIRST => {
                        return self.hot_open::<T, LOCKED>(e, gen, now, touch, alg, first_call, f);
                    }
                    1 => {
                        let claim = if first_call {
                            join(after[4], after[5])
                        } else {
                            to
                        };
                        if !roll::open(e, snap.h, first_call, claim) {
                            continue;
                        }
                    }
                    _ => return Err(Error::Corrupt),
                },
                // Windows from the first call: claim, mark, finish.
                (Some(_), Some(_)) if first_call => {
                    if !roll::roll_first(e, snap, join(after[4], after[5])) {
                        continue;
                    }
                }
                // A roll commits even when `H` comes out the same (a window
                // a multiple of 2^16 windows on, with the same count).
                (Some(to), Some(from)) => {
                    let count = (snap.h & COUNT) as u32;
                    // Before the swap: whoever reads the new `H` finds the
                    // rest of its window index in `S_X`; only ever raised
                    // here (after the first window's claim). A snapshot
                    // that finds it `NEAR` or more above its window is
                    // stale (its `H` may since have come back to the same
                    // bits), or the entry's `S_X` is off: the lock's path
                    // stores it exactly.
                    let near =
                        to.wrapping_sub(from) < NEAR && e.s[S_X].max(to).wrapping_sub(from) < NEAR;
                    if near {
                        roll::record_roll(e, &snap, from, count, to);
                        if e.s[S_H].cas(snap.h, h).is_err() {
                            continue;
                        }
                    } else if !LOCKED {
                        return Ok(None);
                    } else if !self.frozen_roll(e, &snap, from, to, h) {
                        continue;
                    }
                }
                (None, _) if h != snap.h => {
                    if e.s[S_H].cas(snap.h, h).is_err() {
                        continue;
                    }
                    // A GCRA's fresh H (a TAT of 0) is the same in every
                    // entry of the slot: if the slot was reused between
                    // reading H and the swap, the swap may have landed on
                    // the new entry. Undo it while it is still ours, and
                    // look again.
                    if gcra
                        && e[E_GEN].load(Ordering::Acquire) != gen
                        && e.s[S_H].cas(h, snap.h).is_ok()
                    {
                        return Ok(None);
                    }
                }
                // Nothing to swap: the words must have belonged together
                // (a swap checks that by itself).
                (None, _) => {
                    if !snap.stable(e) {
                        continue;
                    }
                }
            }
            let cfg = join(after[0] & !OPEN_BIT, after[1]);
            if cfg != snap.cfg {
                e.s[S_CFG].store(cfg, Ordering::Relaxed);
            }
            if u64::from(after[8]) != snap.x && gcra {
                e.s[S_X].store(u64::from(after[8]), Ordering::Relaxed);
            }
            if touch {
                e.used.store(now, Ordering::Relaxed);
            }
            return Ok(Some(out));
        }
        Err(Error::Busy)
    }

    /// Writes `cell` into hot entry `e` of generation `gen` (an insert, under
    /// the entry lock, before the entry is published).
    ///
    /// The words a caller without the lock may still swap or raise (a
    /// check of the slot's last life stalled before its swap, see "Removal
    /// and reuse") are written by atomic swaps, not stores. On hardware
    /// either is safe: a stalled caller's read-modify-write lands wholly
    /// before the write (which replaces it) or after it (and reads it).
    /// Loom 0.7 lets a plain store fall between the read and the write of
    /// another thread's read-modify-write (tokio-rs/loom#254, fix pending
    /// in #391), so with stores its models report a stalled raise of `S_X`
    /// surviving the insert that had replaced it; a swap is an RMW, which
    /// loom orders correctly, and costs an insert nothing measurable.
    pub(crate) fn hot_write(&self, e: &Entry, gen: u32, cell: &Cell) {
        let w = encode(cell);
        let cfg = join(w[0] & !OPEN_BIT, w[1]);
        e.s[S_CFG].store(cfg, Ordering::Relaxed);
        e.s[S_IV].store(join(w[2], w[3]), Ordering::Relaxed);
        let (x, p0) = if is_gcra(cfg) {
            (u64::from(w[8]), 0)
        } else if is_slots(cfg) {
            (0, 0)
        } else if is_first(cfg) {
            // Rolls 0, last count 0; window 0's start unclaimed.
            (0, UNCLAIMED)
        } else {
            // The first window unclaimed (`hot/roll.rs`, "The first window").
            (UNCLAIMED, 0)
        };
        e.s[S_X].swap(x);
        e.s[S_P0].swap(p0);
        e.s[S_P1].swap(0);
        let mut h = fresh(cfg, gen);
        if let Limiter::Slots(s) = &cell.limiter {
            // is_hot(cell) held: the counts fit.
            h = (h & GEN_BITS) | slots_word(s, cell.leased, cell.next_expiry).unwrap_or(OPEN);
        }
        e.s[S_H].store(h, Ordering::Release);
    }

    /// Swaps hot entry `e`'s `H` from `h` to dead: true if it was still `h`.
    pub(crate) fn hot_kill(&self, e: &Entry, snap: &Snap) -> bool {
        e.s[S_H].cas(snap.h, dead(snap.cfg, snap.h)).is_ok()
    }

    /// Swaps hot entry `e`'s `H` to dead whatever it holds (a removal),
    /// retrying while checks commit; [`Error::Busy`] after [`RETRIES`].
    pub(crate) fn hot_kill_any(&self, e: &Entry) -> Result<(), Error> {
        for _ in 0..RETRIES {
            let snap = Snap::read(e);
            if is_dead(snap.cfg, snap.h) || self.hot_kill(e, &snap) {
                return Ok(());
            }
        }
        Err(Error::Busy)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn full_index_is_the_highest_not_above_the_last_roll() {
        assert_eq!(full_index(5, 5), 5);
        assert_eq!(full_index(4, 5), 4);
        // Above the last roll's index: the one 2^16 below.
        assert_eq!(full_index(6, 1 << 20), (1 << 20) - (1 << 16) + 6);
        // Across a wrap of the low 16 bits.
        assert_eq!(full_index(u16::MAX, 1 << 32), (1 << 32) - 1);
        assert_eq!(full_index(0xfff0, (1 << 32) + 5), (1 << 32) - 16);
        assert_eq!(full_index(7, 3 << 32), (3 << 32) - (1 << 16) + 7);
        // Up to 2^16 - 1 below, never 2^16 or more.
        assert_eq!(full_index(1, 1 << 16), 1);
        assert_eq!(full_index(0, (1 << 16) - 1), 0);
        // Never below 0 (a corrupt entry: read as the low bits themselves).
        assert_eq!(full_index(u16::MAX, 3), u64::from(u16::MAX));
        assert_eq!(full_index(1, u64::MAX), u64::MAX - (1 << 16) + 2);
    }

    #[test]
    fn fresh_and_dead_words_hold_no_state() {
        let td = Algorithm::Taildrop as u64;
        let gc = Algorithm::Gcra as u64;
        for gen in [0, 1, u32::MAX] {
            let f = fresh(td, gen);
            assert!(!has_state(false, f));
            assert!(!is_dead(td, f));
            assert!(is_dead(td, dead(td, f)));
            // A GCRA starts at TAT 0, a state like any other.
            assert_eq!(fresh(gc, gen), 0);
            assert!(!is_dead(gc, 0));
            assert!(is_dead(gc, dead(gc, 0)));
        }
        assert_ne!(fresh(td, 4), fresh(td, 8), "one life apart");
        // A SLOTS entry starts open, with no slot held: never dead.
        let sl = Algorithm::Slots as u64;
        for gen in [0, 4, u32::MAX] {
            let f = fresh(sl, gen);
            assert!(has_state(false, f) && !is_dead(sl, f));
            assert_eq!(f & !GEN_BITS, OPEN);
            assert!(is_dead(sl, dead(sl, f)));
        }
        // A live word becomes dead too.
        assert!(is_dead(td, dead(td, (7 << 32) | OPEN | 3)));
        assert!(is_dead(gc, dead(gc, 12_345)));
        assert!(!is_dead(gc, GCRA_DEAD - 1));
    }
}
