//! Finding a key's entry: the checked, hashed [`Key`], linear probing
//! from its home slot within [`PROBE_LIMIT`] slots, and the comparison of
//! stored key words against the caller's bytes.
//!
//! This is the hot path of every operation, written so the compiler keeps
//! the key in registers (see [`Table::try_key`]).

use super::layout::*;
use super::lock::{AtomicU32, Ordering};
use super::{hash, Guard, Table, MAX_KEY_LEN, PROBE_LIMIT};
use crate::Error;

/// A key checked (1 to [`MAX_KEY_LEN`] bytes) and hashed. Its words, as the
/// table stores them, are read from the caller's bytes when compared
/// ([`Key::word`]): no copy of the key is built on the hot path.
#[derive(Clone, Copy)]
pub(crate) struct Key<'k> {
    pub(crate) bytes: &'k [u8],
    pub(crate) hash: u64,
}

impl Key<'_> {
    /// Word `i` of the key as stored: little-endian, the last one
    /// zero-padded, 0 past the end.
    #[inline(always)]
    fn word(&self, i: usize) -> u32 {
        let start = 4 * i;
        if let Some(Ok(w)) = self.bytes.get(start..start + 4).map(<[u8; 4]>::try_from) {
            return u32::from_le_bytes(w);
        }
        match self.bytes.len().checked_sub(start) {
            Some(rest @ 1..=3) => hash::tail_le(self.bytes, rest) as u32,
            _ => 0,
        }
    }

    /// The key's length in bytes.
    #[inline(always)]
    pub(crate) fn len(&self) -> usize {
        self.bytes.len()
    }

    /// The [`KEY_WORDS`] words the table stores for this key.
    pub(crate) fn words(&self) -> [u32; KEY_WORDS] {
        core::array::from_fn(|i| self.word(i))
    }
}

/// Whether entry `e` holds the key words of `k`. Meant after its meta word
/// was found equal to `k`'s: equal meta words mean equal key lengths, and
/// both keys are zero-padded, so only the words holding key bytes count.
/// Whole words are loaded from the caller's bytes; a partial last word is
/// [`hash::tail_le`].
#[inline(always)]
fn same_key(e: &[AtomicU32; ENTRY_WORDS], k: &Key<'_>) -> bool {
    let stored = &e[E_KEY..E_KEY + KEY_WORDS];
    let mut whole = k.bytes.chunks_exact(4);
    for (s, c) in stored.iter().zip(&mut whole) {
        let Ok(c) = <[u8; 4]>::try_from(c) else {
            return false;
        };
        if s.load(Ordering::Relaxed) != u32::from_le_bytes(c) {
            return false;
        }
    }
    let rest = whole.remainder().len();
    if rest == 0 {
        return true;
    }
    let last = hash::tail_le(k.bytes, rest) as u32;
    stored
        .get(k.len() / 4)
        .is_some_and(|s| s.load(Ordering::Relaxed) == last)
}

/// Why `key` is not a key: empty or longer than [`MAX_KEY_LEN`].
#[cold]
pub(crate) fn key_error(key: &[u8]) -> Error {
    if key.is_empty() {
        Error::EmptyKey
    } else {
        Error::KeyTooLong
    }
}

impl<'a> Table<'a> {
    /// The key, or why it cannot be one ([`key_error`]).
    #[inline(always)]
    pub(crate) fn key<'k>(&self, key: &'k [u8]) -> Result<Key<'k>, Error> {
        self.try_key(key).ok_or_else(|| key_error(key))
    }

    /// The key if it is 1 to [`MAX_KEY_LEN`] bytes. Hot paths use this with
    /// `let ... else` rather than [`Table::key`]: an `Option` has no error
    /// payload sharing bytes with the key's fields, so the compiler keeps
    /// the key in registers instead of writing it to the stack in pieces
    /// and reading it back whole (a store-forwarding stall of about 12
    /// cycles per call, measured).
    #[inline(always)]
    pub(crate) fn try_key<'k>(&self, key: &'k [u8]) -> Option<Key<'k>> {
        if key.is_empty() || key.len() > MAX_KEY_LEN {
            return None;
        }
        Some(Key {
            bytes: key,
            hash: hash::hash_key(self.seed, key),
        })
    }

    pub(crate) fn home(&self, k: &Key) -> usize {
        ((u128::from(k.hash) * self.entries.len() as u128) >> 64) as usize
    }

    pub(crate) fn probe(&self, k: &Key) -> impl Iterator<Item = usize> {
        let cap = self.entries.len();
        let home = self.home(k);
        // home < cap and i < cap, so one subtraction wraps (no division).
        (0..PROBE_LIMIT.min(cap)).map(move |i| {
            let j = home + i;
            if j >= cap {
                j - cap
            } else {
                j
            }
        })
    }

    #[inline(always)]
    pub(crate) fn matches(&self, idx: usize, k: &Key, m: u32) -> bool {
        m == meta(STATE_USED, k.len(), k.hash) && same_key(&self.entries[idx], k)
    }

    /// Where `k`'s entry was when probed, without locking it: the caller
    /// locks it and checks [`Table::matches`] again.
    #[inline(always)]
    pub(crate) fn locate(&self, k: &Key) -> Option<usize> {
        let want = meta(STATE_USED, k.len(), k.hash);
        for idx in self.probe(k) {
            let e = &self.entries[idx];
            let m = e[E_META].load(Ordering::Acquire);
            if m == want && same_key(e, k) {
                return Some(idx);
            }
            if meta_state(m) == STATE_EMPTY {
                return None;
            }
        }
        None
    }

    /// Finds `k` and returns its entry locked: [`Error::NoPipe`] if there is
    /// none, [`Error::Busy`] if its lock stays held (see [`lock`](super::lock)).
    #[inline(always)]
    pub(crate) fn find(&self, k: &Key) -> Result<Guard<'a>, Error> {
        loop {
            let idx = self.locate(k).ok_or(Error::NoPipe)?;
            let g = self.lock_idx(idx)?;
            if self.matches(idx, k, g.e[E_META].load(Ordering::Relaxed)) {
                return Ok(g);
            }
            // Removed or replaced between the probe and the lock: again.
        }
    }
}
