//! A hot SLOTS entry made a locked one (see [`hot`](super)).
//!
//! A SLOTS entry is inserted hot: `H` holds its usage (31 bits) and its
//! unmatched releases (16 bits), and acquire, release and usage are
//! lock-free swaps of `H` as checks are. It becomes a locked entry, for
//! the rest of its life, when it needs what `H` cannot hold: its first
//! lease (leases are records of their own, counted under the entry lock),
//! a hub balance over it (which locks its members), or counts past what
//! `H` packs (usage 2^31 - 1, unmatched releases 2^16 - 1). So neither
//! count saturates earlier than a locked entry's. A lease or balance call
//! that is then refused (no room, no free record, a member of another
//! kind) may leave the entry converted: its state is the same, only where
//! it is kept changed.
//!
//! # The conversion, under the entry lock
//! 1. Swap `H` to itself with the frozen bit (a failed swap: a caller
//!    without the lock committed; read again). From here no caller
//!    without the lock changes the state: they see the bit and take the
//!    locked path, which waits for this holder.
//! 2. Write the state `H` held into buffer 1, whose words (the high half
//!    of state word 2, then 3 and 4) a hot SLOTS entry does not use (it
//!    uses only `H`, word 1).
//! 3. Commit buffer 1 in the lock word while keeping the lock
//!    (`lock::commit_held`).
//! 4. Clear the entry's hot bit (meta word).
//!
//! A holder killed before 4 leaves a hot entry with `H` frozen and its
//! whole state in `H`; the next locker takes the lock over and clears the
//! bit (`Table::hot_recover`): the entry stays hot, as if nothing
//! happened (buffer 1 and the lock word's buffer bit mean nothing to a
//! hot entry). Killed after 4, it leaves a locked entry whose committed
//! buffer (1) holds the state. Either way the state is one a caller can
//! read.
//!
//! A caller without the lock that read the hot bit before step 4 reads
//! `H` (word 1) afterwards: the frozen `H`, or, once a later commit wrote
//! buffer 0, that buffer's leases (low half) and usage, and the leases
//! (fewer than 2^24, `MAX_CAPACITY`) leave `H`'s open bit (31) clear. A
//! SLOTS `H` that is not open (dead, or any other) sends every caller to
//! the locked path, which reads the buffers; a hot SLOTS `H` is always
//! open, so no swap from a value read before the conversion can land
//! after it.

use super::super::layout::{E_LOCK, E_META, META_HOT};
use super::super::lock::{self, Ordering};
use super::super::{write_buffer, Guard, Table};
use super::{is_slots, Snap, FROZEN, OPEN, RETRIES, S_H};
use crate::Error;

impl Table<'_> {
    /// Makes the locked entry `g`, if it is a hot SLOTS entry, a locked
    /// one (module docs). `Ok(false)`: it is not hot, not SLOTS, or dead
    /// (its remover killed: the lock's recovery frees it). [`Error::Busy`]
    /// if callers without the lock keep changing it for `RETRIES` rounds.
    #[inline(always)]
    pub(crate) fn hot_to_locked(&self, g: &mut Guard<'_>) -> Result<bool, Error> {
        if !g.hot() {
            return Ok(false);
        }
        self.convert(g)
    }

    #[cold]
    #[inline(never)]
    fn convert(&self, g: &mut Guard<'_>) -> Result<bool, Error> {
        let e = g.e;
        for _ in 0..RETRIES {
            let snap = Snap::read(e);
            if !is_slots(snap.cfg()) || snap.h & OPEN == 0 {
                return Ok(false);
            }
            if snap.h & FROZEN != 0 {
                // Left by a killed holder whose lock recovery did not see.
                self.hot_recover(e);
                continue;
            }
            let cell = snap.cell(self.epoch)?;
            if e.s[S_H].cas(snap.h, snap.h | FROZEN).is_err() {
                continue;
            }
            write_buffer(e, 1, &cell);
            lock::commit_held(&e[E_LOCK], 1);
            g.active = 1;
            let m = e[E_META].load(Ordering::Relaxed);
            e[E_META].store(m & !META_HOT, Ordering::Release);
            return Ok(true);
        }
        Err(Error::Busy)
    }
}
