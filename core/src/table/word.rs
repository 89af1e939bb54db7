//! The 64-bit words of an entry's state, and the entry itself.
//!
//! An entry is four `u32` words (lock, meta, generation, limit), 14 `u32`
//! words of key and [`STATE_WORDS`] 64-bit words of limiter state. Where the target has
//! 64-bit atomics, a state word is an `AtomicU64`: the lock-free hot path
//! (see [`hot`](super::hot)) updates one with a compare-and-swap. Where it
//! has none (thumbv7em), a state word is two `AtomicU32` halves, read and
//! written only under the entry's lock, and every algorithm takes the
//! locked path: a check costs one uncontended lock more there, and a holder
//! that stays blocks that entry's callers until [`Error::Busy`](crate::Error::Busy).

use super::layout::{cfg_of_meta, ENTRY_HEAD_WORDS, E_GEN, E_KEY, E_META, KEY_WORDS, STATE_WORDS};
use super::lock::{AtomicU32, Ordering};

#[cfg(all(target_has_atomic = "64", not(loom)))]
use core::sync::atomic::AtomicU64;
#[cfg(loom)]
use loom::sync::atomic::AtomicU64;

/// Whether this target runs the lock-free hot path.
pub(crate) const HOT: bool = cfg!(any(target_has_atomic = "64", loom));

/// One 64-bit state word.
#[repr(transparent)]
pub(crate) struct W64(
    #[cfg(any(target_has_atomic = "64", loom))] AtomicU64,
    #[cfg(not(any(target_has_atomic = "64", loom)))] [AtomicU32; 2],
);

impl W64 {
    #[cfg(all(target_has_atomic = "64", not(loom)))]
    pub(crate) const fn zero() -> W64 {
        W64(AtomicU64::new(0))
    }

    #[cfg(loom)]
    pub(crate) fn zero() -> W64 {
        W64(AtomicU64::new(0))
    }

    #[cfg(not(any(target_has_atomic = "64", loom)))]
    pub(crate) const fn zero() -> W64 {
        W64([AtomicU32::new(0), AtomicU32::new(0)])
    }

    #[inline(always)]
    pub(crate) fn load(&self, o: Ordering) -> u64 {
        #[cfg(any(target_has_atomic = "64", loom))]
        return self.0.load(o);
        #[cfg(not(any(target_has_atomic = "64", loom)))]
        return u64::from(self.0[0].load(o)) | (u64::from(self.0[1].load(o)) << 32);
    }

    #[inline(always)]
    pub(crate) fn store(&self, v: u64, o: Ordering) {
        #[cfg(any(target_has_atomic = "64", loom))]
        self.0.store(v, o);
        #[cfg(not(any(target_has_atomic = "64", loom)))]
        {
            self.0[0].store(v as u32, o);
            self.0[1].store((v >> 32) as u32, o);
        }
    }

    /// Stores `v` by an atomic swap (a plain store where there are no
    /// 64-bit atomics: only the locked path runs there). See
    /// `Table::hot_write` for why a swap.
    #[inline(always)]
    pub(crate) fn swap(&self, v: u64) {
        #[cfg(any(target_has_atomic = "64", loom))]
        self.0.swap(v, Ordering::Relaxed);
        #[cfg(not(any(target_has_atomic = "64", loom)))]
        self.store(v, Ordering::Relaxed);
    }

    /// Compare-and-swap; only the hot path calls it, and only where
    /// [`HOT`] is true (it fails otherwise).
    #[inline(always)]
    pub(crate) fn cas(&self, old: u64, new: u64) -> Result<u64, u64> {
        #[cfg(any(target_has_atomic = "64", loom))]
        return self
            .0
            .compare_exchange(old, new, Ordering::AcqRel, Ordering::Acquire);
        #[cfg(not(any(target_has_atomic = "64", loom)))]
        {
            let _ = new;
            Err(old)
        }
    }
}

/// One entry of a table's memory: `#[repr(C)]`, 8-byte aligned, no padding
/// (18 x 4 + STATE_WORDS x 8 bytes), so a region of such entries is a plain
/// array of words that any process may map.
#[repr(C)]
pub struct Entry {
    /// Lock, meta, generation, limit.
    pub(crate) w: [AtomicU32; E_KEY],
    /// The key, little-endian words, zero-padded.
    pub(crate) key: [AtomicU32; KEY_WORDS],
    /// Limiter state: two buffers (locked entries) or the hot words.
    pub(crate) s: [W64; STATE_WORDS],
}

const _: () = assert!(E_KEY + KEY_WORDS == ENTRY_HEAD_WORDS);

impl Entry {
    /// The codec's word 0 (algorithm and flags, the open bit clear) as the
    /// meta word keeps it for the entry's life.
    #[inline(always)]
    pub(crate) fn word0(&self) -> u32 {
        cfg_of_meta(self[E_META].load(Ordering::Relaxed))
    }

    /// A zeroed entry.
    #[cfg(not(loom))]
    pub(crate) const fn zero() -> Entry {
        Entry {
            w: [const { AtomicU32::new(0) }; E_KEY],
            key: [const { AtomicU32::new(0) }; KEY_WORDS],
            s: [const { W64::zero() }; STATE_WORDS],
        }
    }

    /// A zeroed entry.
    #[cfg(loom)]
    pub(crate) fn zero() -> Entry {
        Entry {
            w: core::array::from_fn(|_| AtomicU32::new(0)),
            key: core::array::from_fn(|_| AtomicU32::new(0)),
            s: core::array::from_fn(|_| W64::zero()),
        }
    }
}

/// Starts a change of entry `e`'s key, meta word or kind (an insert or a
/// delete, under its lock): makes its generation odd (it stays odd if a
/// writer killed in the middle left it so), then a release fence, so a
/// reader that sees anything written after this sees the odd generation
/// (a sequence lock's writer side; readers: [`hot`](super::hot)). Returns
/// the generation the entry will have once [`gen_end`] ends the change.
pub(crate) fn gen_begin(e: &Entry) -> u32 {
    let odd = e[E_GEN].load(Ordering::Relaxed) | 1;
    e[E_GEN].store(odd, Ordering::Relaxed);
    fence_release();
    odd.wrapping_add(1)
}

/// Ends the change [`gen_begin`] started: the generation even again, one
/// above, with release ordering.
pub(crate) fn gen_end(e: &Entry) {
    let even = (e[E_GEN].load(Ordering::Relaxed) | 1).wrapping_add(1);
    e[E_GEN].store(even, Ordering::Release);
}

fn fence_release() {
    #[cfg(not(loom))]
    core::sync::atomic::fence(Ordering::Release);
    #[cfg(loom)]
    loom::sync::atomic::fence(Ordering::Release);
}

impl core::fmt::Debug for Entry {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Entry")
    }
}

impl core::ops::Index<usize> for Entry {
    type Output = AtomicU32;

    /// Word `i` of the first four (lock, meta, generation, limit). Only
    /// ever called with those constants.
    #[inline(always)]
    fn index(&self, i: usize) -> &AtomicU32 {
        &self.w[i]
    }
}

#[cfg(not(loom))]
const _: () = assert!(core::mem::size_of::<Entry>() == ENTRY_HEAD_WORDS * 4 + STATE_WORDS * 8);
#[cfg(not(loom))]
const _: () = assert!(core::mem::align_of::<Entry>() <= 8);
