//! Where everything sits in a table's memory. All of it is `u32` words, so a
//! table works the same on 32-bit targets without 64-bit atomics, and holds
//! no pointers, so processes may map it at different addresses.
//!
//! ```text
//! header   HEADER_WORDS words (192 bytes)
//! tags     tag_words(capacity) words: a 16-bit tag per entry, two to a
//!          word, padded to whole buckets of BUCKET_SLOTS (64 bytes each)
//! entries  capacity       x ENTRY_WORDS words (112 bytes each): 18 u32
//!          words, then STATE_WORDS 64-bit words (see word::Entry)
//! leases   lease_capacity x LEASE_WORDS words (20 bytes each)
//! ```
//!
//! Entry `i` sits in bucket `i / BUCKET_SLOTS`; its tag is lane `i % 2` of
//! tag word `i / 2`, so one bucket's tags fill one 64-byte cache line (the
//! header is three whole lines, so a line-aligned region keeps them aligned).

use super::codec::BUF_WORDS;

/// "FGT1" in ASCII, little-endian.
pub(crate) const MAGIC: u32 = u32::from_le_bytes(*b"FGT1");
/// The layout version this floodgate builds and reads, stored in a table's
/// second word (bytes 4 to 7 of its region, native byte order). Bumped on
/// any change of the layout; a table of another version is refused with
/// [`Error::LayoutMismatch`](crate::Error::LayoutMismatch). Version 1 was
/// the layout before buckets and tags (linear probing, no tag array);
/// version 2 had 160-byte entries of `u32` words only, all locked;
/// version 3 had today's bytes, but kept SLOTS entries and interval limits
/// whose windows start at the first call locked: a build of version 3
/// would misread such entries that this one keeps hot (`hot.rs`), so the
/// two must not share a table; version 4 had today's bytes, but kept a
/// first-call interval limit's start in `S_X` and its last count in
/// `S_P0`, rolled under the lock (today: starts in `S_P0` and `S_P1`,
/// the last count in `S_X`, rolled without it, `hot/roll.rs`); version 5
/// had today's words, but opened a window pipe's first window under the
/// lock, and a new pipe's `S_X` (aligned windows) or `S_P0` (windows from
/// the first call) held 0, where today it holds `UNCLAIMED` until a caller
/// claims the first window without the lock; version 6 had today's words,
/// but an aligned window pipe kept the low 16 bits of its window's index
/// in `H`, the rest in `S_X`, and records of past windows in `S_P0` and
/// `S_P1`, rolled under the lock when 2^15 windows or more on (today: as
/// windows from the first call, the roll count in `H`, starts in `S_P0`
/// and `S_P1`, the last count in `S_X`, no roll under the lock); version
/// 7 had 168-byte entries, each locked state buffer in five whole state
/// words, the last half unused; version 8 had 160-byte entries, a hot
/// entry's algorithm, flags and limit in its first state word and a
/// locked entry's two buffers of nine codec words in nine state words
/// (today: the algorithm and flags in the meta word, the limit in the
/// fourth head word, a locked entry's buffers only what changes, in five
/// state words, no word of last use, keys of up to 56 bytes, not 64:
/// 112-byte entries; see `read_words` and `last_active` in
/// `table/mod.rs`).
pub const LAYOUT_VERSION: u32 = 9;

/// Entries per bucket: a key may live in any slot of its two buckets.
pub const BUCKET_SLOTS: usize = 32;
/// Tag words per bucket (two 16-bit tags a word).
pub(crate) const BUCKET_TAG_WORDS: usize = BUCKET_SLOTS / 2;

/// Buckets of a table of `capacity` entries (the last may be partial).
pub(crate) const fn buckets(capacity: usize) -> usize {
    capacity.div_ceil(BUCKET_SLOTS)
}

/// Tag words of a table of `capacity` entries: whole buckets.
pub const fn tag_words(capacity: usize) -> usize {
    buckets(capacity) * BUCKET_TAG_WORDS
}

/// The word of a table's region where its entries start (after the header
/// and the tags), for tools and tests that read a table's memory.
pub const fn entries_word(capacity: usize) -> usize {
    HEADER_WORDS + tag_words(capacity)
}

// Header words.
pub(crate) const H_MAGIC: usize = 0;
pub(crate) const H_VERSION: usize = 1;
pub(crate) const H_CAPACITY: usize = 2;
pub(crate) const H_ENTRY_WORDS: usize = 3;
pub(crate) const H_LEASE_CAPACITY: usize = 4;
pub(crate) const H_LEASE_WORDS: usize = 5;
pub(crate) const H_INTERVAL: usize = 6; // 2 words
pub(crate) const H_EPOCH: usize = 8; // 2 words
pub(crate) const H_SEED: usize = 10; // 2 words
pub(crate) const H_INSERT_LOCK: usize = 12;
pub(crate) const H_CTRL_LOCK: usize = 13;
pub(crate) const H_DROP_RATE: usize = 14;
pub(crate) const H_BYTES_WAITING: usize = 15;
pub(crate) const H_LEASE_HINT: usize = 16;
pub(crate) const H_SETPOINT: usize = 17; // setpoint percent, mirrored for lock-free reads
pub(crate) const H_CTRL: usize = 18; // 2 buffers of CTRL_WORDS
pub(crate) const CTRL_WORDS: usize = 15;
/// Words in the header.
pub const HEADER_WORDS: usize = H_CTRL + 2 * CTRL_WORDS;

// Entry words.
pub(crate) const E_LOCK: usize = 0;
pub(crate) const E_META: usize = 1;
pub(crate) const E_GEN: usize = 2;
/// The limit (codec word 1): SLOTS max, GCRA rate, a window pipe's limit.
pub(crate) const E_LIMIT: usize = 3;
pub(crate) const E_KEY: usize = 4; // KEY_WORDS words
pub(crate) const KEY_WORDS: usize = 14;
/// `u32` words before an entry's state words.
pub(crate) const ENTRY_HEAD_WORDS: usize = E_KEY + KEY_WORDS;
/// 64-bit state words of an entry: a hot entry's words, or a locked
/// entry's interval and two buffers of what its operations change (see
/// `read_words` in `table/mod.rs`).
pub(crate) const STATE_WORDS: usize = 5;
/// `u32` words in one entry (its size in bytes is 4 times this), for tools
/// and tests that read a table's memory: the lock word is the first.
pub const ENTRY_WORDS: usize = ENTRY_HEAD_WORDS + 2 * STATE_WORDS;

// Lease words.
pub(crate) const L_GEN: usize = 0;
pub(crate) const L_OWNER: usize = 1; // 0 free, entry + 1 held, | PENDING while claiming
pub(crate) const L_ENTRY_GEN: usize = 2;
pub(crate) const L_EXPIRY: usize = 3; // 2 words
/// Words in one lease record.
pub const LEASE_WORDS: usize = 5;
pub(crate) const LEASE_PENDING: u32 = 0x8000_0000;

// Entry meta word: bits 0-1 state, bits 2-8 key length, bits 9-16 the
// codec's word 0 as the entry keeps it for life (algorithm, first-event
// anchor, MaxZero; never the open bit), bits 17-30 hash tag, bit 31 hot
// (the entry's state is updated lock-free, see hot.rs).
/// A zeroed entry, as a new table's entries start (lookups go by tags,
/// so only "in use or not" matters).
#[allow(dead_code)]
pub(crate) const STATE_EMPTY: u32 = 0;
pub(crate) const STATE_USED: u32 = 1;
pub(crate) const STATE_TOMB: u32 = 2;

/// The meta word of a key (state, length, hash tag), without the bits
/// [`META_CFG`] and [`META_HOT`] add.
pub(crate) const fn meta(state: u32, len: usize, hash: u64) -> u32 {
    state | ((len as u32) << 2) | (tag(hash) << 17)
}

pub(crate) const fn tag(hash: u64) -> u32 {
    (hash as u32) >> 18
}

/// Where the meta word keeps the codec's word 0.
pub(crate) const META_CFG_SHIFT: u32 = 9;
/// The meta word's bits of the codec's word 0.
pub(crate) const META_CFG: u32 = 0xff << META_CFG_SHIFT;
/// The meta word's bits that [`meta`] sets: its state and its key's
/// length and hash tag (not the entry's algorithm, nor its hot bit).
pub(crate) const META_KEY: u32 = !(META_HOT | META_CFG);
/// Codec word 0's open bit: the state's, never kept in the meta word.
pub(crate) const CFG_OPEN: u32 = 1 << 5;

/// Meta bits for codec word 0 `w0` (its open bit aside).
pub(crate) const fn meta_cfg(w0: u32) -> u32 {
    ((w0 & 0xff & !CFG_OPEN) << META_CFG_SHIFT) & META_CFG
}

/// Codec word 0 as meta word `m` keeps it (the open bit clear).
#[inline(always)]
pub(crate) const fn cfg_of_meta(m: u32) -> u32 {
    (m & META_CFG) >> META_CFG_SHIFT
}

/// Meta bit 31: the entry's state is hot (lock-free, see hot.rs).
pub(crate) const META_HOT: u32 = 1 << 31;

pub(crate) const fn meta_state(m: u32) -> u32 {
    m & 3
}

/// Bytes a table of `capacity` entries and `lease_capacity` lease records
/// needs, or `None` if that does not fit in `usize`.
pub const fn bytes_for(capacity: usize, lease_capacity: usize) -> Option<usize> {
    let Some(e) = capacity.checked_mul(ENTRY_WORDS) else {
        return None;
    };
    let Some(e) = e.checked_add(tag_words(capacity)) else {
        return None;
    };
    let Some(l) = lease_capacity.checked_mul(LEASE_WORDS) else {
        return None;
    };
    let Some(words) = e.checked_add(l) else {
        return None;
    };
    let Some(words) = words.checked_add(HEADER_WORDS) else {
        return None;
    };
    words.checked_mul(4)
}

const _: () = assert!(ENTRY_WORDS * 4 == 112);
const _: () = assert!(KEY_WORDS * 4 == super::MAX_KEY_LEN);
const _: () = assert!(BUF_WORDS == 9);
const _: () = assert!(ENTRY_HEAD_WORDS.is_multiple_of(2));
const _: () = assert!(HEADER_WORDS * 4 <= 192);

/// A key's tag: the hash's top 16 bits, 1 where they are 0 (0 marks a free
/// slot).
pub(crate) const fn tag16(hash: u64) -> u32 {
    let t = (hash >> 48) as u32;
    if t == 0 {
        1
    } else {
        t
    }
}
