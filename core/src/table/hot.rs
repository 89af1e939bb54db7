//! The lock-free hot path: checks on window pipes aligned to an epoch
//! (TAILDROP, RED, REDP, SLIDING, FEEDBACK, NETWORK, NOP, aligned interval
//! limits) and GCRA take no lock; one compare-and-swap of one 64-bit word
//! commits a check.
//!
//! # The words
//! A hot entry keeps its state in buffer 0's five 64-bit words:
//!
//! | word | holds | written by |
//! | --- | --- | --- |
//! | `S_CFG` | codec word 0 (algorithm, flags) and the limit | insert; a new limit (a plain store) |
//! | `S_IV` | the window interval / GCRA period | insert |
//! | `S_H` | the **hot word**: everything a check changes | compare-and-swap |
//! | `S_P` | the window before the current one: index (low 32 bits), count | compare-and-swap, only while `H` still holds that window |
//! | `S_X` | window pipes: the full index of the last roll's window; GCRA: codec word 8 (burst) | a roll, before its swap; insert; a new limit |
//!
//! Window pipes: `H` = 16 bits of the entry's generation (bits 48-63) |
//! the low 16 bits of the window index, counted from the table's epoch
//! (bits 32-47) | open bit 31 | count (31 bits, saturating). The rest of
//! the window index comes from `S_X`, the highest index any roll wrote
//! (raised before the roll's swap): the index is the one nearest to it
//! with those 16 low bits. An `H` that is not open holds no state: bit 0
//! set marks the entry **dead** (being removed, evicted or replaced: a
//! caller that sees it takes the locked path, which waits for the remover
//! or finishes its work). GCRA: `H` = the TAT, which stops at
//! `u64::MAX - 1`; `u64::MAX` is dead.
//!
//! # A check
//! Read the generation (even), compare the key, load `H` (acquire) and
//! `P`, fence, read the generation again (a changed one: the slot was
//! reused, look again; see `word::gen_begin` for the writer's side),
//! decode the limiter from the words, run it, encode `H'`; if `H' == H`
//! nothing changed (a drop that counts nothing); else compare-and-swap
//! `H -> H'`. A failed swap means another caller committed first: decode
//! again and retry (lock-free: each retry follows someone's progress; a
//! bound of 2^16 retries gives `Error::Busy`).
//!
//! # Rollover, finished by anyone
//! A check that moves `H` from window `i` (count `c`) to window `i + 1`
//! first records `(i, c)` in `P` (a compare-and-swap, made only while `H`
//! still holds what the check read, and skipped if `P` already holds
//! window `i` with a count as high: a check that read `H` long ago and
//! finds it moved on leaves `P` alone), then swaps `H`. If the swap fails,
//! `H` changed and the check retries, recording the newer count; if it
//! succeeds, `P` holds exactly the final count of window `i`, since counts
//! of a window only grow and its `H` is gone. A process killed between the two leaves `P` ahead of
//! `H` with a count not above the window's final one: any later roller
//! records the final count over it. A reader of window `j` takes the last
//! window's count from `P` if `P`'s window is `j - 1`, else 0 (an idle
//! window between). So no roll needs a lock, and none is ever half done in
//! a way another caller cannot finish.
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
//! stalled check read. A window pipe's `H` carries 16 bits of the
//! generation, so that takes 2^16 lives of the slot within one stalled
//! check. A GCRA's TAT has no room for them: after its swap, a GCRA check
//! reads the generation again, and if it changed and `H` still holds what
//! it wrote, swaps it back and looks again (a later check built on it
//! first would keep it: a third caller inside the same instant).
//!
//! # Limits of the packing
//! * A window's count saturates at 2^31 - 1 (a bare limiter's at 2^32 - 1).
//! * The window index is read back from 16 bits and the highest index a
//!   roll wrote: checks whose clocks disagree by 2^15 windows or more (a
//!   caller's clock gone back that far) would read a wrong window. A roll
//!   killed after raising that index and before its swap, with a clock
//!   far ahead, leaves the entry reading its window from there.
//! * A GCRA's TAT stops at `u64::MAX - 1` (so does a bare [`Gcra`](crate::Gcra)'s).
//! * Where the target has no 64-bit atomics (thumbv7em) nothing is hot:
//!   every operation takes the entry's lock, as all did before layout 3.

use super::codec::{decode_as, encode, Cell, BUF_WORDS};
use super::layout::*;
use super::lock::{fence_acquire, Ordering};
use super::word::{Entry, HOT};
use super::Table;
use crate::{Algorithm, Anchor, Error, Limiter};

/// Codec words 0 (algorithm, flags) and 1 (limit).
pub(crate) const S_CFG: usize = 0;
/// Codec words 2-3: interval / period.
pub(crate) const S_IV: usize = 1;
/// The hot word.
pub(crate) const S_H: usize = 2;
/// The last window's index and count.
pub(crate) const S_P: usize = 3;
/// Codec word 8 (GCRA burst).
pub(crate) const S_X: usize = 4;

const OPEN: u64 = 1 << 31;
const COUNT: u64 = OPEN - 1;
/// A window pipe's `H`: the low 16 bits of its window index (bits 32-47).
const IDX_SHIFT: u32 = 32;
const IDX_MASK: u64 = 0xffff;
/// A window pipe's `H`: 16 bits of its entry's generation (bits 48-63).
const GEN_SHIFT: u32 = 48;
const GEN_BITS: u64 = 0xffff << GEN_SHIFT;
/// A GCRA's dead `H`; a live TAT stops one below it.
const GCRA_DEAD: u64 = u64::MAX;
const DEAD: u64 = 1;
/// Retries of a failed swap before [`Error::Busy`].
const RETRIES: u32 = 1 << 16;
/// Codec word 0's anchor and open bits, which `S_CFG` does not keep.
const WINDOW_BITS: u32 = 0x30;

/// Whether a cell is kept hot: GCRA, and pipes with aligned windows, on a
/// target with 64-bit atomics.
pub(crate) fn is_hot(cell: &Cell) -> bool {
    HOT && match &cell.limiter {
        Limiter::Slots(_) => false,
        Limiter::Gcra(_) => true,
        l => l
            .window_counter()
            .is_some_and(|c| matches!(c.window().anchor(), Anchor::Aligned { .. })),
    }
}

fn is_gcra(cfg: u64) -> bool {
    cfg as u32 & 0xf == Algorithm::Gcra as u32
}

/// The `H` of a new entry of generation `gen`: no state yet.
pub(crate) fn fresh(cfg: u64, gen: u32) -> u64 {
    if is_gcra(cfg) {
        0
    } else {
        // The generation moves by 4 per life of an entry (word::gen_begin).
        (u64::from(gen >> 2) << GEN_SHIFT) & GEN_BITS
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

/// The full window index whose low 16 bits are `low`, nearest to `near`
/// (the highest index a roll of the entry wrote).
fn full_index(low: u16, near: u64) -> u64 {
    let d = low.wrapping_sub(near as u16) as i16;
    if d >= 0 {
        near.saturating_add(d as u64)
    } else {
        near.saturating_sub(u64::from(d.unsigned_abs()))
    }
}

/// One read of a hot entry's words.
#[derive(Clone, Copy)]
pub(crate) struct Snap {
    cfg: u64,
    iv: u64,
    x: u64,
    h: u64,
    p: u64,
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
            p: e.s[S_P].load(Ordering::Relaxed),
            cfg: e.s[S_CFG].load(Ordering::Relaxed),
            iv: e.s[S_IV].load(Ordering::Relaxed),
            x: e.s[S_X].load(Ordering::Relaxed),
        }
    }

    pub(crate) fn h(&self) -> u64 {
        self.h
    }

    pub(crate) fn cfg(&self) -> u64 {
        self.cfg
    }

    /// The codec's words for this state (`gcra`: whether the entry is a
    /// GCRA, as its `S_CFG` says; a constant on the hot path).
    #[inline(always)]
    fn words(&self, gcra: bool, epoch: u64) -> ([u32; BUF_WORDS], Old) {
        let mut w = [0u32; BUF_WORDS];
        (w[0], w[1]) = split(self.cfg);
        w[0] &= !WINDOW_BITS;
        (w[2], w[3]) = split(self.iv);
        if gcra {
            w[8] = self.x as u32;
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
        let idx = full_index(low, self.x);
        // Saturating: only a corrupt index can get there (a window starts
        // at or before the time that opened it); an interval of 0 is
        // Corrupt when decoded.
        let start = idx.saturating_mul(self.iv).saturating_add(epoch);
        w[0] |= 1 << 5;
        (w[4], w[5]) = split(start);
        w[6] = count;
        let (p_idx, p_count) = ((self.p >> 32) as u32, self.p as u32);
        // P names its window by the low 32 bits of its index.
        w[7] = match idx.checked_sub(1) {
            Some(last) if p_idx == last as u32 => p_count,
            _ => 0,
        };
        (w, Old { idx: Some(idx) })
    }

    /// The limiter, changing nothing (listings, idleness).
    pub(crate) fn cell(&self, epoch: u64) -> Result<Cell, Error> {
        let (w, _) = self.words(is_gcra(self.cfg), epoch);
        super::codec::decode(&w, epoch)
    }
}

/// `H` for the codec words `w` a check left, given what it read, and the
/// full index of its window if the window moved (or opened).
#[inline(always)]
fn pack(
    gcra: bool,
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
    if w[0] & (1 << 5) == 0 {
        return (snap.h, None);
    }
    let start = join(w[4], w[5]);
    let old_start = join(before[4], before[5]);
    let (idx, moved) = match old.idx {
        Some(i) if start == old_start => (i, false),
        Some(i) if start > old_start && snap.iv != 0 => {
            (i.saturating_add((start - old_start) / snap.iv), true)
        }
        _ => (start.saturating_sub(epoch) / snap.iv.max(1), true),
    };
    let h =
        (snap.h & GEN_BITS) | ((idx & IDX_MASK) << IDX_SHIFT) | OPEN | u64::from(w[6]).min(COUNT);
    (h, moved.then_some(idx))
}

/// Records the count of the window that `snap.h` holds in `P`, for the
/// roll from it to the next window, unless `P` already holds it with a
/// count as high. `P` is only written while `H` still holds `snap.h`: a
/// check that read `H` long ago and finds it moved on leaves `P` alone
/// (its swap of `H` fails anyway).
fn record_last(e: &Entry, snap: &Snap, idx: u64) {
    let (low, count) = (idx as u32, (snap.h & COUNT) as u32);
    let want = join(count, low);
    let mut p = e.s[S_P].load(Ordering::Acquire);
    for _ in 0..RETRIES {
        if p >> 32 == u64::from(low) && p as u32 >= count {
            return;
        }
        if e.s[S_H].load(Ordering::Acquire) != snap.h {
            return;
        }
        match e.s[S_P].cas(p, want) {
            Ok(_) => return,
            Err(now) => p = now,
        }
    }
}

impl<'a> Table<'a> {
    /// Runs `f` on hot entry `e` (of generation `gen`) as of `now`,
    /// lock-free, and commits what it changed; with `touch`, records `now`
    /// as the entry's last use (every operation but a read does). `Ok(None)`: the entry is
    /// dead or no longer of generation `gen` (take the locked path, which
    /// looks again). `f` may run more than once (after a failed swap): it
    /// must change nothing but the cell.
    #[inline(always)]
    pub(crate) fn hot_update<T>(
        &self,
        e: &Entry,
        gen: u32,
        now: u64,
        touch: bool,
        mut f: impl FnMut(&mut Cell) -> Result<T, Error>,
    ) -> Result<Option<T>, Error> {
        let alg = e.s[S_CFG].load(Ordering::Relaxed) as u32 & 0xf;
        macro_rules! per_algorithm {
            ($($a:ident),*) => {
                match alg {
                    $(x if x == Algorithm::$a as u32 => self.hot_run(e, gen, now, touch, Algorithm::$a, &mut f),)*
                    _ => Err(Error::Corrupt),
                }
            };
        }
        rate_algorithms!(per_algorithm)
    }

    #[inline(always)]
    fn hot_run<T>(
        &self,
        e: &Entry,
        gen: u32,
        now: u64,
        touch: bool,
        alg: Algorithm,
        f: &mut impl FnMut(&mut Cell) -> Result<T, Error>,
    ) -> Result<Option<T>, Error> {
        for _ in 0..RETRIES {
            let snap = Snap::read(e);
            // The reader side of the generation's sequence lock (see
            // word::gen_begin): `gen` was read (even) before the key was
            // compared; the same generation after the state was read means
            // no insert or delete came between.
            fence_acquire();
            let gcra = alg == Algorithm::Gcra;
            // The algorithm is the entry's for as long as its generation
            // holds (a new one takes a delete and an insert).
            let dead = if gcra {
                snap.h == GCRA_DEAD
            } else {
                snap.h & (OPEN | DEAD) == DEAD
            };
            if e[E_GEN].load(Ordering::Relaxed) != gen || dead {
                return Ok(None);
            }
            let (before, old) = snap.words(gcra, self.epoch);
            let mut cell = decode_as(alg, &before, self.epoch)?;
            let out = f(&mut cell)?;
            let after = encode(&cell);
            let (h, moved) = pack(gcra, &after, &before, &snap, old, self.epoch);
            if h != snap.h {
                if let Some(to) = moved {
                    if let Some(i) = old.idx.filter(|i| i.checked_add(1) == Some(to)) {
                        record_last(e, &snap, i);
                    }
                    // Before the swap: whoever reads the new H finds the
                    // rest of its window index from here. Only ever raised.
                    e.s[S_X].max(to);
                }
                if e.s[S_H].cas(snap.h, h).is_err() {
                    continue;
                }
                // A GCRA's fresh H (a TAT of 0) is the same in every entry
                // of the slot: if the slot was reused between reading H and
                // the swap, the swap may have landed on the new entry.
                // Undo it while it is still ours, and look again.
                if alg == Algorithm::Gcra
                    && e[E_GEN].load(Ordering::Acquire) != gen
                    && e.s[S_H].cas(h, snap.h).is_ok()
                {
                    return Ok(None);
                }
            }
            let cfg = join(after[0] & !WINDOW_BITS, after[1]);
            if cfg != snap.cfg {
                e.s[S_CFG].store(cfg, Ordering::Relaxed);
            }
            if u64::from(after[8]) != snap.x && alg == Algorithm::Gcra {
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
    pub(crate) fn hot_write(&self, e: &Entry, gen: u32, cell: &Cell) {
        let w = encode(cell);
        let cfg = join(w[0] & !WINDOW_BITS, w[1]);
        e.s[S_CFG].store(cfg, Ordering::Relaxed);
        e.s[S_IV].store(join(w[2], w[3]), Ordering::Relaxed);
        e.s[S_X].store(u64::from(w[8]), Ordering::Relaxed);
        e.s[S_P].store(0, Ordering::Relaxed);
        if !is_gcra(cfg) {
            e.s[S_X].store(0, Ordering::Relaxed);
        }
        e.s[S_H].store(fresh(cfg, gen), Ordering::Release);
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
    fn full_index_is_nearest_to_the_last_roll() {
        assert_eq!(full_index(5, 5), 5);
        assert_eq!(full_index(4, 5), 4);
        assert_eq!(full_index(6, 5), 6);
        // Across a wrap of the low 16 bits, either way.
        assert_eq!(full_index(u16::MAX, 1 << 32), (1 << 32) - 1);
        assert_eq!(full_index(0, (1 << 32) - 1), 1 << 32);
        assert_eq!(full_index(7, 3 << 32), (3 << 32) + 7);
        // Never below 0 or above u64::MAX.
        assert_eq!(full_index(u16::MAX, 3), 0);
        assert_eq!(full_index(1, u64::MAX), u64::MAX);
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
        // A live word becomes dead too.
        assert!(is_dead(td, dead(td, (7 << 32) | OPEN | 3)));
        assert!(is_dead(gc, dead(gc, 12_345)));
        assert!(!is_dead(gc, GCRA_DEAD - 1));
    }
}
