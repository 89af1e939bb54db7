//! Finding a key's entry: the checked, hashed [`Key`], its two buckets and
//! their tags, and the comparison of stored key words against the caller's
//! bytes.
//!
//! A key may live in any slot of two buckets of [`BUCKET_SLOTS`] (32)
//! entries, chosen by its hash; an insert takes a free slot of the bucket
//! with more free slots (two choices), scanning from the key's home lane.
//! Each slot has a 16-bit tag (the hash's top bits, never 0; 0 marks a free
//! slot), kept apart from the entries, 32 to a cache line, so a lookup reads
//! at most two lines of tags and compares the key only in an entry whose tag
//! matches (a stranger's tag matches one time in 65 535).
//!
//! This is the hot path of every operation, written so the compiler keeps
//! the key in registers (see [`Table::try_key`]).

use super::layout::*;
use super::lock::{AtomicU32, Ordering};
use super::word::Entry;
use super::{hash, Guard, Table, MAX_KEY_LEN};
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
fn same_key(e: &Entry, k: &Key<'_>) -> bool {
    let stored = &e.key;
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

    /// `k`'s two buckets (equal only when the table has one bucket): the
    /// first from the hash's low 32 bits, the second from bits 16 to 47,
    /// moved to the next bucket if it came out equal to the first.
    #[inline(always)]
    pub(crate) fn bucket_pair(&self, k: &Key) -> (usize, usize) {
        let nb = buckets(self.entries.len()) as u64;
        let pick = |bits: u64| ((u64::from(bits as u32) * nb) >> 32) as usize;
        let b1 = pick(k.hash);
        let mut b2 = pick(k.hash >> 16);
        if b2 == b1 {
            b2 = if b1 + 1 >= nb as usize { 0 } else { b1 + 1 };
        }
        (b1, b2)
    }

    /// The slots of bucket `b`, from `k`'s home lane round to the lane
    /// before it; the last bucket may have fewer than [`BUCKET_SLOTS`].
    #[inline(always)]
    pub(crate) fn bucket_slots(&self, b: usize, k: &Key) -> impl Iterator<Item = usize> + use<> {
        let base = b * BUCKET_SLOTS;
        let valid = self.bucket_len(b);
        let home = 2 * home_word(k);
        let start = if home < valid {
            home
        } else {
            home % valid.max(1)
        };
        // start < valid and i < valid, so one subtraction wraps.
        (0..valid).map(move |i| {
            let j = start + i;
            base + if j >= valid { j - valid } else { j }
        })
    }

    /// Entries in bucket `b`: [`BUCKET_SLOTS`], fewer in a last, partial one.
    #[inline(always)]
    pub(crate) fn bucket_len(&self, b: usize) -> usize {
        self.entries
            .len()
            .saturating_sub(b * BUCKET_SLOTS)
            .min(BUCKET_SLOTS)
    }

    /// The slots where `k` may live: its first bucket's, then its second's.
    pub(crate) fn candidates(&self, k: &Key) -> impl Iterator<Item = usize> + use<> {
        let (b1, b2) = self.bucket_pair(k);
        let second = self
            .bucket_slots(b2, k)
            .take(if b2 != b1 { BUCKET_SLOTS } else { 0 });
        self.bucket_slots(b1, k).chain(second)
    }

    /// The tag of slot `idx` (0: free), 0 past the end.
    #[inline(always)]
    pub(crate) fn tag_at(&self, idx: usize) -> u32 {
        self.tags.get(idx / 2).map_or(0, |w| {
            (w.load(Ordering::Relaxed) >> (16 * (idx & 1))) & 0xffff
        })
    }

    /// Sets slot `idx`'s tag (0 frees it). Only the holder of the entry's
    /// lock writes its tag; the other lane of the word belongs to another
    /// entry, hence the atomic read-modify-writes.
    pub(crate) fn set_tag(&self, idx: usize, tag: u32) {
        if let Some(w) = self.tags.get(idx / 2) {
            let shift = 16 * (idx & 1);
            w.fetch_and(!(0xffff << shift), Ordering::Relaxed);
            if tag != 0 {
                w.fetch_or((tag & 0xffff) << shift, Ordering::Relaxed);
            }
        }
    }

    /// Free slots (tag 0) in bucket `b`.
    pub(crate) fn free_in(&self, b: usize, k: &Key) -> usize {
        self.bucket_slots(b, k)
            .filter(|&i| self.tag_at(i) == 0)
            .count()
    }

    /// If entry `idx` is in use and holds `k` (meta word `want`, the hot
    /// bit and the algorithm's bits aside): its generation, read before
    /// its meta word and key, and its meta word.
    #[inline(always)]
    fn holds(&self, idx: usize, k: &Key, want: u32) -> Option<(u32, u32)> {
        let e = self.entries.get(idx)?;
        let gen = e[E_GEN].load(Ordering::Acquire);
        let m = e[E_META].load(Ordering::Acquire);
        (m & META_KEY == want && same_key(e, k)).then_some((gen, m))
    }

    /// The slot holding `k` among the two of tag word `w` (slots `first`
    /// and `first + 1`), both lanes compared with the tag at once.
    #[inline(always)]
    fn check_word(
        &self,
        w: &AtomicU32,
        first: usize,
        pat: u32,
        k: &Key,
        want: u32,
    ) -> Option<Found> {
        let x = w.load(Ordering::Relaxed) ^ pat;
        if x & 0xffff == 0 {
            if let Some((gen, meta)) = self.holds(first, k, want) {
                return Some(Found {
                    idx: first,
                    gen,
                    meta,
                });
            }
        }
        if x >> 16 == 0 {
            if let Some((gen, meta)) = self.holds(first + 1, k, want) {
                return Some(Found {
                    idx: first + 1,
                    gen,
                    meta,
                });
            }
        }
        None
    }

    #[inline(always)]
    pub(crate) fn matches(&self, idx: usize, k: &Key, m: u32) -> bool {
        m & META_KEY == meta(STATE_USED, k.len(), k.hash)
            && self.entries.get(idx).is_some_and(|e| same_key(e, k))
    }

    /// Where `k`'s entry was when looked up, without locking it: the caller
    /// locks it and checks [`Table::matches`] again.
    #[inline(always)]
    pub(crate) fn locate(&self, k: &Key) -> Option<usize> {
        self.find_unlocked(k).map(|f| f.idx)
    }

    /// Runs `f` on `k`'s entry without a lock if the entry is hot (see
    /// [`hot`](super::hot)); `Ok(None)` if there is no entry, it is not
    /// hot, or it is changing: take the locked path.
    #[inline(always)]
    pub(crate) fn try_hot<T>(
        &self,
        k: &Key,
        now: u64,
        f: impl FnMut(&mut super::codec::Cell) -> Result<T, Error>,
    ) -> Result<Option<T>, Error> {
        match self.hot_entry(k) {
            Some((e, gen)) => self.hot_update::<_, false>(e, gen, now, f),
            None => Ok(None),
        }
    }

    /// [`Table::try_hot`], except that an entry that is not hot comes back
    /// locked from the same lookup ([`Hot::Locked`]); [`Hot::Look`]: no
    /// entry, or the hot path declined or the entry changed: look again
    /// under the lock.
    #[inline(always)]
    pub(crate) fn hot_or_lock<T>(
        &self,
        k: &Key,
        now: u64,
        f: impl FnMut(&mut super::codec::Cell) -> Result<T, Error>,
    ) -> Result<Hot<'a, T>, Error> {
        let Some(found) = self.find_unlocked(k) else {
            return Ok(Hot::Look);
        };
        if found.meta & META_HOT != 0 {
            let Some((e, gen)) = self.hot_of(found) else {
                return Ok(Hot::Look);
            };
            return Ok(match self.hot_update::<_, false>(e, gen, now, f)? {
                Some(v) => Hot::Done(v),
                None => Hot::Look,
            });
        }
        let g = self.lock_idx(found.idx)?;
        Ok(
            if self.matches(found.idx, k, g.e[E_META].load(Ordering::Relaxed)) {
                Hot::Locked(g)
            } else {
                Hot::Look
            },
        )
    }

    /// `k`'s entry and its generation, if the entry is hot and no insert
    /// or delete of it is under way (an odd generation, or one killed:
    /// the locked path waits for it, or finishes it).
    #[inline(always)]
    pub(crate) fn hot_entry(&self, k: &Key) -> Option<(&Entry, u32)> {
        self.find_unlocked(k).and_then(|found| self.hot_of(found))
    }

    /// The entry `found` names and its generation, if it is hot and no
    /// insert or delete of it was under way.
    #[inline(always)]
    fn hot_of(&self, found: Found) -> Option<(&Entry, u32)> {
        if found.meta & META_HOT == 0 || found.gen & 1 != 0 {
            return None;
        }
        self.entries.get(found.idx).map(|e| (e, found.gen))
    }

    /// [`Table::locate`], with the entry's generation (read before its key
    /// was compared) and meta word.
    #[inline(always)]
    fn find_unlocked(&self, k: &Key) -> Option<Found> {
        let want = meta(STATE_USED, k.len(), k.hash);
        let tag = tag16(k.hash);
        let pat = tag | (tag << 16);
        let (b1, b2) = self.bucket_pair(k);
        let two = b2 != b1;
        // Both buckets word by word from the home word, where inserts
        // start looking for a free slot: a key is usually a few words from
        // it, in either bucket.
        let home = home_word(k);
        for i in 0..BUCKET_TAG_WORDS {
            let j = (home + i) & (BUCKET_TAG_WORDS - 1);
            if let Some(w) = self.tags.get(b1 * BUCKET_TAG_WORDS + j) {
                if let Some(found) = self.check_word(w, b1 * BUCKET_SLOTS + 2 * j, pat, k, want) {
                    return Some(found);
                }
            }
            if two {
                if let Some(w) = self.tags.get(b2 * BUCKET_TAG_WORDS + j) {
                    if let Some(found) = self.check_word(w, b2 * BUCKET_SLOTS + 2 * j, pat, k, want)
                    {
                        return Some(found);
                    }
                }
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

/// What [`Table::hot_or_lock`] did.
pub(crate) enum Hot<'a, T> {
    /// The hot path ran: its result.
    Done(T),
    /// The entry is not hot: here it is, locked.
    Locked(Guard<'a>),
    /// Nothing done: look the key up again under the lock.
    Look,
}

/// An entry [`Table::find_unlocked`] found.
#[derive(Clone, Copy)]
struct Found {
    idx: usize,
    gen: u32,
    meta: u32,
}

/// `k`'s home word in a bucket: lookups start there, and inserts look for
/// a free slot from its first lane on.
#[inline(always)]
fn home_word(k: &Key) -> usize {
    (k.hash >> 40) as usize & (BUCKET_TAG_WORDS - 1)
}
