//! The lock-free hot path: checks on window pipes aligned to an epoch
//! (TAILDROP, RED, REDP, SLIDING, FEEDBACK, NETWORK, NOP, aligned interval
//! limits), on interval limits whose windows start at the first call
//! (FreeSWITCH mod_hash) and on GCRA, and slot acquires, releases and usage
//! of SLOTS entries without leases, take no lock; one compare-and-swap of
//! one 64-bit word commits one. A roll to a later window (once per window,
//! however far) takes a mark and three swaps that finish it (a first-call
//! limit's a claim before), and a pipe's first window a claim and a swap,
//! each of which any caller can make (`hot/roll.rs`); a SLOTS entry's
//! first lease or hub balance makes it a locked entry (`hot/convert.rs`).
//!
//! # The words
//! A hot entry keeps its algorithm and flags (codec word 0, the open bit
//! aside) in its meta word, for life, and its limit in head word
//! `E_LIMIT` (an insert, or a new limit: a plain store); together they
//! are its `cfg`. Its state is in 64-bit words of its state area (it has
//! one buffer, not two):
//!
//! | word | holds | written by |
//! | --- | --- | --- |
//! | `S_IV` | the window interval / GCRA period | insert |
//! | `S_H` | the **hot word**: everything a check changes | compare-and-swap |
//! | `S_X` | window pipes: (generation, 15 bits; rolls, low 16 bits; the last window's count), as `H` packs them; GCRA: codec word 8 (burst) | a roll's finish; insert; a new limit (GCRA) |
//! | `S_P0`, `S_P1` | window pipes: the starts of windows of even and odd roll counts (`S_P0`: `UNCLAIMED` (`u64::MAX`) until the first window is claimed) | a claim, only while `H` still holds what the claimant read |
//!
//! Window pipes, aligned or with windows from the first call (FreeSWITCH
//! mod_hash): `H` = 15 bits of the entry's generation (bits 49-63) |
//! rolling bit 48 | the window's roll count, low 16 bits (bits 32-47) |
//! open bit 31 | count (31 bits, saturating). The window's start is in
//! the start word of its roll count's parity; the last window's count in
//! `S_X`, tagged with the roll count. An `H` that is neither open nor
//! rolling holds no state: bit 0 set marks the entry **dead** (being
//! removed, evicted or replaced: a caller that sees it takes the locked
//! path, which waits for the remover or finishes its work). The rolling
//! bit marks a roll under way, which anyone finishes: an aligned roll's
//! mark says where the new window lies (its open bit and the old count if
//! it is the next window, else the distance), a first-call limit's comes
//! after the new start was claimed in the start word of the new roll
//! count's parity (`hot/roll.rs`); checks within a window are one swap. GCRA: `H` = the
//! TAT, which stops at `u64::MAX - 1`; `u64::MAX` is dead. SLOTS: `H` =
//! 15 bits of the generation | frozen bit 48 (a conversion under way) |
//! unmatched releases (bits 32-47) | open bit 31, always set while hot |
//! usage (31 bits); the limit word holds the max, and no other word is
//! used (no lease, so no expiry). Counts that would not fit make the
//! entry a locked one instead of saturating (`hot/convert.rs`).
//!
//! # A check
//! Read the generation (even), compare the key, load `H` (acquire) and
//! the other words, fence, read the generation again (changed: the slot
//! was reused, look again; see `word::gen_begin` for the writer's side;
//! `H` rolling: finish the roll; dead: take the locked path), decode the
//! limiter from the words, run it, encode `H'`; if nothing changed (a read, a drop that
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
//! Claimed by one caller, finished by anyone, without the lock: see
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
//! * A check stalled between reading `H` and its swap while the pipe rolls
//!   on by a multiple of 2^16 windows and back to the same count (so `H`
//!   has the same bits) commits what the serial order would: its time lay
//!   before the new window's start (which came at least an interval after
//!   the old one's), so the serial order counts it in the new window too
//!   (time going backwards); but decided with the last window's count it
//!   read before, which only SLIDING, RED and REDP use.
//! * A GCRA's TAT stops at `u64::MAX - 1` (so does a bare [`Gcra`](crate::Gcra)'s).
//! * Where the target has no 64-bit atomics (thumbv7em) nothing is hot:
//!   every operation takes the entry's lock, as all did before layout 3.

mod convert;
mod fast;
mod roll;

#[cfg(test)]
pub(crate) use roll::FAR;

use super::codec::{decode_as, encode, join, split, Cell, BUF_WORDS};
use super::layout::*;
use super::lock::{fence_acquire, Ordering};
use super::word::{Entry, HOT};
use super::Table;
use crate::{Algorithm, Anchor, Error, Limiter, Slots};

/// Codec words 2-3: interval / period (a SLOTS entry: unused).
pub(crate) const S_IV: usize = 0;
/// The hot word.
pub(crate) const S_H: usize = 1;
/// Window starts: of an even roll count in `S_P0`, of an odd one in `S_P1`.
pub(crate) const S_P0: usize = 2;
/// Window pipes: (rolls; the last window's count); GCRA: codec word 8 (burst).
pub(crate) const S_X: usize = 3;
/// See [`S_P0`].
pub(crate) const S_P1: usize = 4;

const OPEN: u64 = 1 << 31;
const COUNT: u64 = OPEN - 1;
/// A SLOTS `H`'s unmatched releases (bits 32-47), at most this many.
const UNMATCHED: u64 = 0xffff;
/// A window pipe's `H`: the low 16 bits of its window's roll count (bits
/// 32-47); a SLOTS `H`: unmatched releases.
const IDX_SHIFT: u32 = 32;
const IDX_MASK: u64 = 0xffff;
/// A window pipe's `H`: a roll under way (bit 48); a SLOTS `H`: a
/// conversion to a locked entry under way.
const FROZEN: u64 = 1 << 48;
/// A window pipe's `H`: 15 bits of its entry's generation (bits 49-63).
const GEN_SHIFT: u32 = 49;
const GEN_BITS: u64 = 0x7fff << GEN_SHIFT;
/// A GCRA's dead `H`; a live TAT stops one below it.
const GCRA_DEAD: u64 = u64::MAX;
const DEAD: u64 = 1;
/// What a fresh window pipe's `S_P0` holds until a caller claims its first
/// window (`hot/roll.rs`, "The first window").
pub(crate) const UNCLAIMED: u64 = u64::MAX;
/// Retries of a failed swap before [`Error::Busy`].
const RETRIES: u32 = 1 << 16;
/// Codec word 0's open bit, which the meta word does not keep (`H` says it).
const OPEN_BIT: u32 = CFG_OPEN;
/// Codec word 0's first-event anchor bit, which the meta word keeps.
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

/// Whether a window pipe's windows start at the first event (from its
/// codec word 0, or [`Snap::cfg`]).
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
        // (A rolling `H` is never dead: an aligned idle roll's mark has
        // the open bit clear, see `hot/roll.rs`.)
        h & (FROZEN | OPEN | DEAD) == DEAD
    }
}

fn dead(cfg: u64, h: u64) -> u64 {
    if is_gcra(cfg) {
        GCRA_DEAD
    } else {
        (h & GEN_BITS) | DEAD
    }
}

/// One read of a hot entry's words.
#[derive(Clone, Copy)]
pub(crate) struct Snap {
    /// Codec word 0 (the meta word's, the open bit clear).
    w0: u32,
    /// The limit (head word [`E_LIMIT`]).
    limit: u32,
    iv: u64,
    x: u64,
    h: u64,
    p: [u64; 2],
}

/// What [`Snap::words`] knew of the window: its roll count, for packing.
#[derive(Clone, Copy)]
struct Old {
    rolls: Option<u64>,
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
            w0: e.word0(),
            limit: e[E_LIMIT].load(Ordering::Relaxed),
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
    /// acquire fence, `H` still holds what was read and marks no roll (a
    /// roll writes the words its new window reads before it swaps `H` to
    /// it, and claims a start word of the other parity only).
    #[inline(always)]
    fn stable(&self, e: &Entry) -> bool {
        fence_acquire();
        let h = e.s[S_H].load(Ordering::Relaxed);
        h == self.h && (is_gcra(self.cfg()) || h & FROZEN == 0)
    }

    /// [`Snap::read`] until the words belong together; `None` while a
    /// SLOTS entry is frozen (its holder has the entry lock) or after
    /// [`RETRIES`]. A window pipe's marked roll is finished here.
    pub(crate) fn read_stable(e: &Entry) -> Option<Snap> {
        for _ in 0..RETRIES {
            let snap = Snap::read(e);
            if snap.stable(e) {
                return Some(snap);
            }
            if !is_gcra(snap.cfg()) && snap.h & FROZEN != 0 {
                if is_slots(snap.cfg()) {
                    return None;
                }
                roll::finish(e, snap.h);
            }
        }
        None
    }

    pub(crate) fn h(&self) -> u64 {
        self.h
    }

    /// Codec words 0 (algorithm, flags) and 1 (the limit) as one value:
    /// what `is_gcra`, `is_slots`, `is_first` and `dead` read.
    #[inline(always)]
    pub(crate) fn cfg(&self) -> u64 {
        join(self.w0, self.limit)
    }

    /// The codec's words for this state (`alg`: the entry's algorithm, and
    /// `first_call`, whether its windows start at the first call, as its
    /// meta word says; constants on the hot path).
    #[inline(always)]
    fn words(&self, alg: Algorithm, first_call: bool) -> ([u32; BUF_WORDS], Old) {
        let gcra = alg == Algorithm::Gcra;
        let mut w = [0u32; BUF_WORDS];
        (w[0], w[1]) = (self.w0, self.limit);
        w[0] &= !WINDOW_BITS;
        if first_call {
            w[0] |= FIRST_EVENT as u32;
        }
        (w[2], w[3]) = split(self.iv);
        if gcra {
            w[8] = self.x as u32;
        }
        if alg == Algorithm::Slots {
            // Usage and unmatched releases; no lease (the codec's "no
            // expiry" in words 2-3: a hot SLOTS entry keeps only `H`).
            (w[2], w[3]) = (u32::MAX, u32::MAX);
            if has_state(false, self.h) {
                w[6] = (self.h & COUNT) as u32;
                w[7] = ((self.h >> IDX_SHIFT) & UNMATCHED) as u32;
            }
            return (w, Old { rolls: None });
        }
        if !has_state(gcra, self.h) {
            return (w, Old { rolls: None });
        }
        if gcra {
            (w[4], w[5]) = split(self.h);
            return (w, Old { rolls: None });
        }
        // Either anchor: `H`'s 16 bits count rolls, the start word of their
        // parity holds the window's start and `S_X` the last count, tagged
        // with the rolls (`hot/roll.rs`).
        let rolls = (self.h >> IDX_SHIFT) & IDX_MASK;
        w[0] |= OPEN_BIT;
        (w[4], w[5]) = split(self.p[(rolls & 1) as usize]);
        w[6] = (self.h & COUNT) as u32;
        // Tagged with `rolls` whenever `H` shows the window unmarked: a
        // roll stores it before it leaves the mark (and only then).
        w[7] = self.x as u32;
        (w, Old { rolls: Some(rolls) })
    }

    /// The limiter, changing nothing (listings, idleness).
    pub(crate) fn cell(&self, epoch: u64) -> Result<Cell, Error> {
        let alg = Algorithm::from_u8((self.w0 & 0xf) as u8).ok_or(Error::Corrupt)?;
        let (w, _) = self.words(alg, is_first(self.cfg()));
        super::codec::decode(&w, epoch)
    }
}

/// `H` for the codec words `w` a check left, given what it read, and the
/// start of its window if the window moved (or opened).
#[inline(always)]
fn pack(
    gcra: bool,
    w: &[u32; BUF_WORDS],
    before: &[u32; BUF_WORDS],
    snap: &Snap,
    old: Old,
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
    // A window only moves forward, one roll at a time.
    let (rolls, moved) = match old.rolls {
        Some(r) if start == join(before[4], before[5]) => (r, false),
        Some(r) => ((r + 1) & IDX_MASK, true),
        None => (0, true),
    };
    let h = (snap.h & GEN_BITS) | (rolls << IDX_SHIFT) | OPEN | u64::from(w[6]).min(COUNT);
    (h, moved.then_some(start))
}

impl<'a> Table<'a> {
    /// Runs `f` on hot entry `e` (of generation `gen`) as of `now`,
    /// lock-free, and commits what it changed.
    /// `Ok(None)`: the entry is dead or no longer of generation `gen`, or a
    /// SLOTS entry must become a locked one or is becoming one: take the
    /// locked path, which looks again. `LOCKED`: the caller holds the
    /// entry lock (and undoes a conversion a killed holder left frozen).
    /// `f` may run more than once (after a failed swap): it must change
    /// nothing but the cell.
    #[inline(always)]
    pub(crate) fn hot_update<T, const LOCKED: bool>(
        &self,
        e: &Entry,
        gen: u32,
        now: u64,
        f: impl FnMut(&mut Cell) -> Result<T, Error>,
    ) -> Result<Option<T>, Error> {
        self.hot_update_fast::<T, LOCKED>(e, gen, now, |_| None, f)
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
        fast: impl Fn(&Snap) -> Option<(u64, T)>,
        f: impl FnMut(&mut Cell) -> Result<T, Error>,
    ) -> Result<Option<T>, Error> {
        // Codec word 0 (no limit needed to pick the code).
        let cfg = u64::from(e.word0());
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
                    x if x == Algorithm::Interval as u32 && is_first(cfg) => self.hot_run::<T, LOCKED, false>(e, gen, now, Algorithm::Interval, true, first, f),
                    $(x if x == Algorithm::$a as u32 => self.hot_run::<T, LOCKED, false>(e, gen, now, Algorithm::$a, false, first, f),)*
                    x if x == Algorithm::Slots as u32 => self.hot_run::<T, LOCKED, false>(e, gen, now, Algorithm::Slots, false, first, f),
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
        alg: Algorithm,
        first_call: bool,
        f: impl FnMut(&mut Cell) -> Result<T, Error>,
    ) -> Result<Option<T>, Error> {
        self.hot_run::<T, LOCKED, true>(e, gen, now, alg, first_call, None, f)
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
                // it a locked entry, whose buffer 0 holds its leases, fewer
                // than 2^24, in the low half here).
                (snap.h & OPEN == 0, snap.h & FROZEN != 0)
            } else {
                (
                    snap.h & (FROZEN | OPEN | DEAD) == DEAD,
                    snap.h & FROZEN != 0,
                )
            };
            if !same_gen || dead || frozen {
                if alg != Algorithm::Slots && frozen && same_gen && !dead {
                    // A marked roll: anyone finishes it (`hot/roll.rs`).
                    roll::finish(e, snap.h);
                    continue;
                }
                if LOCKED && frozen {
                    // A conversion frozen under our lock: left by a killed
                    // holder that recovery did not see (a corrupt region);
                    // undo it.
                    self.hot_recover(e);
                    continue;
                }
                return Ok(None);
            }
            let (before, old) = snap.words(alg, first_call);
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
                pack(gcra, &after, &before, &snap, old)
            };
            match (moved, old.rolls) {
                // The first window: claimed by one caller, opened by
                // anyone, the claimant's call counted (`hot/roll.rs`).
                // Only checks open or move a window, each counting its own
                // call (a SLIDING drop, which counts nothing, moves
                // nothing: `SlidingWindow::check`).
                (Some(start), None) => match h & COUNT {
                    1 if !FIRST => {
                        return self.hot_open::<T, LOCKED>(e, gen, now, alg, first_call, f);
                    }
                    1 => {
                        if !roll::open(e, snap.h, start) {
                            continue;
                        }
                    }
                    _ => return Err(Error::Corrupt),
                },
                // A roll (`hot/roll.rs`): of windows from the first call,
                // claim, mark, finish; of aligned ones, mark and finish.
                // Either commits even when `H` comes out the same (2^16
                // rolls on, with the same count).
                (Some(start), Some(_)) => match h & COUNT {
                    1 if first_call => {
                        if !roll::roll_first(e, snap, start) {
                            continue;
                        }
                    }
                    1 => {
                        if !roll::roll_aligned(e, snap, start) {
                            continue;
                        }
                    }
                    _ => return Err(Error::Corrupt),
                },
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
            // (Codec word 0 is the entry's for life: only the limit moves.)
            if after[1] != snap.limit {
                e[E_LIMIT].store(after[1], Ordering::Relaxed);
            }
            if u64::from(after[8]) != snap.x && gcra {
                e.s[S_X].store(u64::from(after[8]), Ordering::Relaxed);
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
        // The meta word, with the rest of codec word 0, comes after (the
        // insert publishes it).
        e[E_LIMIT].store(w[1], Ordering::Relaxed);
        e.s[S_IV].store(join(w[2], w[3]), Ordering::Relaxed);
        let (x, p0) = if is_gcra(cfg) {
            (u64::from(w[8]), 0)
        } else if is_slots(cfg) {
            (0, 0)
        } else {
            // Rolls 0, last count 0, tagged with the generation; window
            // 0's start unclaimed (`hot/roll.rs`, "The first window").
            (fresh(cfg, gen) & GEN_BITS, UNCLAIMED)
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
        e.s[S_H].cas(snap.h, dead(snap.cfg(), snap.h)).is_ok()
    }

    /// Swaps hot entry `e`'s `H` to dead whatever it holds (a removal),
    /// retrying while checks commit; [`Error::Busy`] after [`RETRIES`].
    pub(crate) fn hot_kill_any(&self, e: &Entry) -> Result<(), Error> {
        for _ in 0..RETRIES {
            let snap = Snap::read(e);
            if is_dead(snap.cfg(), snap.h) || self.hot_kill(e, &snap) {
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
