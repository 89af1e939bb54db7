//! Fixed-size keyed tables of limiters, shared by threads and processes, in
//! memory the caller owns.
//!
//! One table design serves Kamailio (forked workers sharing one table in
//! shared memory), Asterisk app_rpt (one process, many threads) and hamvoip's
//! short-lived scripts (separate processes mapping one file).
//!
//! # Storage
//! * [`StaticTable`]: capacities as const generics, for a `static` or a field
//!   (Rust and embedded users).
//! * A byte region the caller provides: [`Table::size_for`] tells its size,
//!   [`Table::init_in`] builds a table in it, [`Table::attach`] opens one that
//!   another process (or an earlier run) built. The region may live in
//!   Kamailio's shm, a `MAP_SHARED` mapping of a /dev/shm file or a static
//!   buffer; it must be aligned to 8 bytes. A header (magic, layout version,
//!   capacity, entry and lease sizes) lets `attach` refuse memory that holds
//!   no table ([`Error::NotATable`]) or another layout ([`Error::LayoutMismatch`]):
//!   files made by floodgate before layout version 9 (version 1: linear
//!   probing; version 2: every operation locked; version 3: SLOTS and
//!   first-call interval limits locked, which later versions keep hot;
//!   version 4: first-call interval limits rolled under the lock, with
//!   their words in other places; version 5: a pipe's first window opened
//!   under the lock, a new pipe's words set for that; version 6: aligned
//!   pipes kept window indices and records, and rolled far under the lock;
//!   versions 7 and 8: 168- and 160-byte entries, whose locked buffers
//!   held all nine codec words) are refused; delete them and let the next
//!   user create a new table.
//!
//! # Entries
//! Keys are byte strings of 1 to [`MAX_KEY_LEN`] (56) bytes: IPv6 address and
//! port, pipe names, realm/resource pairs; any bytes, NUL included. Each entry
//! holds one [`Limiter`] of any algorithm with its
//! parameters, so pipes of different algorithms share a table. An entry takes
//! 112 bytes: lock, meta word (with the algorithm and flags), generation,
//! limit, the 56-byte key and 40 bytes of state: the hot words
//! (see [`hot`]) or a locked entry's two buffers of what its operations
//! change (`read_words`); its tag 2 bytes more; a lease record takes 20
//! bytes. The header takes 192 bytes.
//!
//! # Placement: two buckets, tags apart
//! A keyed hash seeded at init (not cryptographic: seed it randomly so that
//! nobody can aim keys at one bucket) names two buckets of [`BUCKET_SLOTS`]
//! (32) entries; a key lives in any slot of either. An insert takes a free
//! slot in the bucket with more free slots ("two choices"), and entries
//! never move after that, so an entry's slot number identifies it for as
//! long as it lives. Each slot has a 16-bit tag (from the hash; 0 marks a
//! free slot) in an array apart from the entries, one bucket's tags to a
//! 64-byte line: a lookup reads at most two lines of tags and then only the
//! entries whose tag matches (a stranger matches one time in 65 535), where
//! the key is compared.
//!
//! Why this and not cuckoo hashing or linear probing: linear probing inside
//! a 32-slot window failed with [`Error::Full`] from 49% load at 1 000 000
//! keys (clusters fill windows); two choices of 32-slot buckets fail from
//! 92% to 94% (100 000 and 1 000 000 entries, 11 seeds each) and 95% to
//! 98% (1 000), measured by `core/tests/load.rs` with every entry busy.
//! Cuckoo hashing reaches more (about 98% with 8-slot buckets) but moves
//! entries to make room, which readers that take no lock, handles that name
//! a slot and processes killed in the middle of a move would all have to
//! survive; two choices of wide buckets get past 90% with nothing ever
//! moved. The tags are what make the wide buckets cheap: 32 slots are one
//! line of tags, not 32 entries.
//!
//! Tags are kept so that every entry in use has its tag: an insert writes
//! the tag before it publishes the entry (its meta word, with release
//! ordering), and a delete clears the tag after unpublishing it. A process
//! killed between the two leaves a tag on a free entry, which lookups pass
//! over (the meta word does not match), and whoever next locks that entry
//! (an insert or an eviction scan) clears it.
//!
//! # Concurrency
//! Any number of threads and processes may call at once. No OS lock is used.
//!
//! **Hot entries, no lock.** GCRA pipes, pipes whose windows are aligned
//! to an epoch (TAILDROP, RED, REDP, SLIDING, FEEDBACK, NETWORK, NOP),
//! interval limits (either anchor) and SLOTS entries without leases are
//! *hot* (where the target has 64-bit atomics): a check, a slot acquire or
//! release, a read, a new limit or a reset is one compare-and-swap of the
//! entry's 64-bit hot word, and any caller finishes a window rollover
//! or a first window another one started (a few swaps, however far the
//! window moves: see [`hot`] and `hot/roll.rs`). A lookup finds
//! the entry by its tag, meta word and key and validates it with the
//! entry's generation, read before the key and again after the state, as a
//! sequence lock's reader does (inserts and deletes make the generation odd
//! while they write).
//!
//! **Locked entries.** SLOTS entries that took a lease or joined a hub
//! (their first lease or balance makes them locked for good, see
//! `hot/convert.rs`) are locked: every entry has a
//! lock word (see [`lock`] for the protocol: compare-and-swap, the holder's
//! id, takeover from a dead holder). An operation locks the entry, decodes
//! its committed buffer, runs the limiter, writes the result into the other
//! buffer and commits by the unlocking store, which flips the buffer index.
//!
//! **Structural changes** (insert, delete, eviction, clean_unused, a new
//! algorithm or window for a key) take the entry's lock on any entry,
//! and a hot entry is first swapped to *dead*, from the exact state judged
//! (so a check that came between keeps it). Inserts are serialized by one
//! insert lock in the header (also taken over from dead holders), so a key
//! is never inserted twice. An entry that changes its algorithm or window
//! kind is deleted and inserted again under the insert lock; a caller
//! without a lock may find no entry meanwhile.
//!
//! So there is no lost update and no torn entry, a slot count never goes
//! above its max nor below zero, and a process killed at any instant leaves
//! every entry either before or after its operation (a killed delete or
//! replacement is finished by the next caller that takes the lock).
//!
//! Nobody can hang anybody: checks, reads, limit changes and resets of hot
//! entries, and listings of them, take no lock at all, so a process stopped
//! in the middle of anything (or a lock word forged to name a live process)
//! does not stop them. A waiter whose lock stays held by a live holder
//! gives up after a bounded number of spins with [`Error::Busy`] and
//! changes nothing (see [`lock`]): an operation on a locked entry, or one
//! that changes an entry's structure, returns `Busy`; the listings
//! ([`Table::entry_at`], [`Table::iter`]) leave out a locked entry whose
//! lock stays held, and [`Table::clean_unused`] leaves any such entry
//! alone, after one bounded wait per entry; [`Table::active`] and
//! [`Table::len`] take no entry lock. An insert passes over a free slot
//! that stays locked, and eviction over a candidate that does. Locks are
//! taken in one order: the controller's, then the insert lock, then
//! entries (several in ascending slot order).
//!
//! # Corrupted memory
//! Memory overwritten by someone else (a stray write in a process sharing
//! the region, a forged file) is survived: every operation returns, with a
//! result or an error ([`Error::Corrupt`] where stored state does not
//! decode), and never panics, reads out of bounds or loops without bound.
//! What it returns for overwritten entries is whatever they now say.
//!
//! # When full
//! An insert with no free slot in its two buckets evicts an idle entry (no
//! slot held, its window over), the least recently active (the oldest last
//! window, see `last_active`) of at most [`EVICT_CANDIDATES`] (3, as
//! nginx) found in those buckets; if none is idle
//! it fails with [`Error::Full`] and changes nothing. The caller decides
//! whether to pass or drop. Size a table for 90% of its capacity: with no
//! entry idle, inserts first fail at 92% to 98% load (above).
//!
//! # Time
//! As everywhere in floodgate, `now` is a `u64` of nanoseconds from the
//! caller. Windows of pipes created by the table are aligned to the table's
//! epoch and use its interval (pipelimit's `timer_interval`) unless the
//! operation names another (FreeSWITCH `max/interval`).

/// Calls macro `$m` with every algorithm a rate pipe may have (all but
/// SLOTS), for the per-algorithm copies of the update paths.
macro_rules! rate_algorithms {
    ($m:ident) => {
        $m!(
            Taildrop,
            Red,
            Feedback,
            Network,
            Nop,
            Interval,
            Gcra,
            RedProportional,
            Sliding
        )
    };
}

mod balance;
pub(crate) mod codec;
mod ctrl;
mod handle;
mod hash;
pub mod hot;
mod layout;
mod leases;
pub mod lock;
mod lookup;
#[cfg(all(feature = "process", target_os = "linux", not(loom)))]
pub mod process;
mod region;
mod word;

pub use balance::Balanced;
pub use handle::Handle;
pub use layout::{
    bytes_for, entries_word, tag_words, BUCKET_SLOTS, ENTRY_WORDS, HEADER_WORDS, LAYOUT_VERSION,
    LEASE_WORDS,
};
pub use leases::{Lease, LeaseRelease, LeaseVerdict};
pub use lock::Owner;
#[cfg(not(loom))]
pub use region::StaticTable;

use codec::{decode, encode, join, split, Cell, BUF_WORDS};
use hot::Snap;
use layout::*;
use lock::{AtomicU32, Ordering};
use lookup::{key_error, Hot, Key};
pub use word::Entry;

use crate::{
    Algorithm, Error, IntervalLimit, Limiter, MaxZero, Release, Shared, SlotVerdict, Slots, Stats,
    Verdict, Window,
};

/// Longest key, in bytes: 56 (before layout version 9, 64; 56 keep an
/// entry at 112 bytes, see the module docs, "Entries").
pub const MAX_KEY_LEN: usize = 56;
/// Largest capacity (entries or lease records).
pub const MAX_CAPACITY: usize = 1 << 24;
// A key's candidate slots (two buckets) fit the bits of a u64
// (insert_locked's busy mask).
const _: () = assert!(2 * BUCKET_SLOTS <= 64);
/// Idle entries compared when evicting.
pub const EVICT_CANDIDATES: usize = 3;
/// Most members in a balancing group.
pub const MAX_MEMBERS: usize = 16;

/// A table's shape and time settings, fixed at init.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Config {
    /// Entries (1..=[`MAX_CAPACITY`]).
    pub capacity: usize,
    /// Lease records (0..=[`MAX_CAPACITY`]; 0 disables leases).
    pub lease_capacity: usize,
    /// Window length in ns for pipes the table creates (pipelimit's
    /// `timer_interval`); never 0.
    pub interval_ns: u64,
    /// Time (ns) at which aligned windows start.
    pub epoch: u64,
    /// Hash seed; pick it at random.
    pub seed: u64,
}

impl Config {
    /// `capacity` entries and as many lease records, windows of
    /// `interval_ns` from epoch 0, seed 0.
    pub const fn new(capacity: usize, interval_ns: u64) -> Config {
        Config {
            capacity,
            lease_capacity: capacity,
            interval_ns,
            epoch: 0,
            seed: 0,
        }
    }

    fn validate(&self) -> Result<(), Error> {
        if self.capacity == 0 || self.capacity > MAX_CAPACITY {
            return Err(Error::InvalidCapacity);
        }
        if self.lease_capacity > MAX_CAPACITY {
            return Err(Error::InvalidCapacity);
        }
        if self.interval_ns == 0 {
            return Err(Error::ZeroInterval);
        }
        Ok(())
    }
}

/// One entry as a listing shows it (pl.list, pl.stats, limit_usage).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryInfo {
    key: [u8; MAX_KEY_LEN],
    key_len: u8,
    /// Algorithm, limit, counters and load.
    pub stats: Stats,
}

impl EntryInfo {
    /// The key.
    pub fn key(&self) -> &[u8] {
        &self.key[..usize::from(self.key_len)]
    }
}

/// A handle on a table: cheap to copy, `Send + Sync`; all of its methods
/// take `&self` and may be called from any number of threads and processes.
#[derive(Debug, Clone, Copy)]
pub struct Table<'a> {
    hdr: &'a [AtomicU32; HEADER_WORDS],
    tags: &'a [AtomicU32],
    entries: &'a [Entry],
    leases: &'a [[AtomicU32; LEASE_WORDS]],
    owner: Owner,
    window: Window,
    interval: u64,
    epoch: u64,
    seed: u64,
}

/// An entry locked by this caller; unlocks (unchanged) when dropped.
pub(crate) struct Guard<'t> {
    e: &'t Entry,
    idx: usize,
    /// Index (0 or 1) of the committed buffer: a `usize`, so that a guard is
    /// three whole words that the compiler moves without partial loads.
    active: usize,
}

impl Guard<'_> {
    /// The committed buffer's codec words (of a locked entry).
    #[inline(always)]
    fn read(&self) -> [u32; BUF_WORDS] {
        read_words(self.e, self.active)
    }

    /// Whether the entry is hot (see [`hot`]): its state is not in the
    /// buffers this guard commits.
    #[inline(always)]
    fn hot(&self) -> bool {
        self.e[E_META].load(Ordering::Relaxed) & META_HOT != 0
    }

    fn gen(&self) -> u32 {
        self.e[E_GEN].load(Ordering::Relaxed)
    }

    /// Writes `cell` into the other buffer and commits it by unlocking.
    #[inline(always)]
    fn commit(self, cell: &Cell) {
        let next = (self.active ^ 1) & 1;
        write_buffer(self.e, next, cell);
        lock::unlock(&self.e[E_LOCK], next as u32);
        core::mem::forget(self);
    }
}

/// When an entry was last active, as its state says (no word records a
/// last use): the start of a window pipe's last window (0 before its
/// first), a GCRA's theoretical arrival time less one emission interval
/// (its last pass, or later while it pays off a burst), and 0 for SLOTS
/// (judged idle only while holding nothing). Eviction takes the least
/// recently active of its idle candidates; [`Table::clean_unused`] counts
/// windows from here.
fn last_active(cell: &Cell) -> u64 {
    match &cell.limiter {
        Limiter::Slots(_) => 0,
        Limiter::Gcra(g) => g.tat().saturating_sub(g.emission_interval()),
        l => l
            .window_counter()
            .and_then(|c| c.state().start())
            .unwrap_or(0),
    }
}

/// Writes `cell` into buffer `buf` (0 or 1) of a locked entry.
#[inline(always)]
fn write_buffer(e: &Entry, buf: usize, cell: &Cell) {
    write_words(e, buf, &encode(cell));
}

/// A locked entry's state words. What never changes in an entry's life
/// (the algorithm and flags: meta word; a window's interval or a GCRA's
/// period: state word 0) is kept once, the limit once (head word
/// [`E_LIMIT`], written before the commit: see below), and each buffer
/// holds only what an operation changes:
///
/// | kind | word 0 | words 1-2 | words 3-4 |
/// | --- | --- | --- | --- |
/// | window pipes | interval | buffer 0: start (`u64::MAX`: not open); count, last count | buffer 1, the same |
/// | GCRA | period | buffer 0: TAT; burst | buffer 1, the same |
/// | SLOTS | buffer 0: earliest lease expiry | buffer 0: leases, usage; unmatched (low half of word 2) | buffer 1 from the high half of word 2: the same five |
///
/// No window starts at `u64::MAX` (see `window.rs`), so a closed window
/// needs no bit of its own; RED's load is the last count over the limit,
/// as a check computes it. A SLOTS buffer 0 keeps its leases (fewer than
/// 2^24, [`MAX_CAPACITY`]) where a hot SLOTS entry kept `H` (word 1's low
/// half): that `H` never looks open again, so a caller that still thinks
/// the entry hot takes the locked path (`hot/convert.rs`). The SLOTS
/// buffers share word [`SHARED`]: the writer of one keeps the other's
/// half, so the committed buffer never changes, whenever the writer dies.
///
/// The limit is not in the buffers: a writer killed after storing a new
/// limit and before its commit leaves the new limit with the old state,
/// as if the limit had been set and the rest of the operation not run.
const SHARED: usize = 2;

/// The codec words in buffer `buf` (0 or 1) of a locked entry.
#[inline(always)]
fn read_words(e: &Entry, buf: usize) -> [u32; BUF_WORDS] {
    let at = |i: usize| split(e.s[i].load(Ordering::Relaxed));
    let mut w = [0u32; BUF_WORDS];
    w[0] = e.word0();
    w[1] = e[E_LIMIT].load(Ordering::Relaxed);
    let alg = w[0] & 0xf;
    if alg == Algorithm::Slots as u32 {
        let (a, b, c) = if buf & 1 == 0 {
            (at(0), at(1), at(SHARED).0)
        } else {
            let (_, x) = at(SHARED);
            let (y, l) = at(3);
            let (u, m) = at(4);
            ((x, y), (l, u), m)
        };
        (w[2], w[3]) = a;
        (w[8], w[6]) = b;
        w[7] = c;
        return w;
    }
    (w[2], w[3]) = at(0);
    let b = 1 + 2 * (buf & 1);
    let start = e.s[b].load(Ordering::Relaxed);
    let (lo, hi) = at(b + 1);
    if alg == Algorithm::Gcra as u32 {
        (w[4], w[5]) = split(start);
        w[8] = lo;
        return w;
    }
    if start != u64::MAX {
        w[0] |= CFG_OPEN;
        (w[4], w[5]) = split(start);
    }
    (w[6], w[7]) = (lo, hi);
    if alg == Algorithm::Red as u32 {
        w[8] = hi.checked_div(w[1]).unwrap_or(0);
    }
    w
}

/// Writes codec words `w` into buffer `buf` (0 or 1) of a locked entry
/// (see [`SHARED`] for where), and the limit into its head word.
#[inline(always)]
fn write_words(e: &Entry, buf: usize, w: &[u32; BUF_WORDS]) {
    let set = |i: usize, v: u64| e.s[i].store(v, Ordering::Relaxed);
    e[E_LIMIT].store(w[1], Ordering::Relaxed);
    let alg = w[0] & 0xf;
    if alg == Algorithm::Slots as u32 {
        let (lo, hi) = split(e.s[SHARED].load(Ordering::Relaxed));
        if buf & 1 == 0 {
            set(0, join(w[2], w[3]));
            set(1, join(w[8], w[6]));
            set(SHARED, join(w[7], hi));
        } else {
            set(SHARED, join(lo, w[2]));
            set(3, join(w[3], w[8]));
            set(4, join(w[6], w[7]));
        }
        return;
    }
    set(0, join(w[2], w[3]));
    let b = 1 + 2 * (buf & 1);
    if alg == Algorithm::Gcra as u32 {
        set(b, join(w[4], w[5]));
        set(b + 1, u64::from(w[8]));
        return;
    }
    let start = if w[0] & CFG_OPEN != 0 {
        join(w[4], w[5])
    } else {
        u64::MAX
    };
    set(b, start);
    set(b + 1, join(w[6], w[7]));
}

impl Drop for Guard<'_> {
    fn drop(&mut self) {
        lock::unlock(&self.e[E_LOCK], self.active as u32);
    }
}

impl<'a> Table<'a> {
    /// Bytes a table with `config`'s capacities needs in a caller's region.
    pub fn size_for(config: &Config) -> Result<usize, Error> {
        config.validate()?;
        bytes_for(config.capacity, config.lease_capacity).ok_or(Error::InvalidCapacity)
    }

    /// Builds a new, empty table in `region` (zeroing what it uses) and
    /// returns a handle for `owner`. The region must be aligned to 8 bytes and
    /// at least [`Table::size_for`] bytes long.
    #[cfg(not(loom))]
    pub fn init_in(
        region: &'a mut [u8],
        config: &Config,
        owner: Owner,
    ) -> Result<Table<'a>, Error> {
        let need = Table::size_for(config)?;
        let words = region::words(region, need)?;
        for w in words.iter() {
            w.store(0, Ordering::Relaxed);
        }
        let (hdr, tags, entries, leases) =
            region::split(words, config.capacity, config.lease_capacity)?;
        region::write_header(hdr, config);
        Table::open(hdr, tags, entries, leases, owner)
    }

    /// Opens the table that [`Table::init_in`] built in `region` (in this or
    /// another process, mapped at any address).
    #[cfg(not(loom))]
    pub fn attach(region: &'a mut [u8], owner: Owner) -> Result<Table<'a>, Error> {
        let len = region.len();
        let words = region::words(region, HEADER_WORDS * 4)?;
        let (capacity, lease_capacity) = region::check_header(&words[..HEADER_WORDS])?;
        let need = bytes_for(capacity, lease_capacity).ok_or(Error::LayoutMismatch)?;
        if len < need {
            return Err(Error::RegionTooSmall);
        }
        let words = &words[..need / 4];
        let (hdr, tags, entries, leases) = region::split(words, capacity, lease_capacity)?;
        Table::open(hdr, tags, entries, leases, owner)
    }

    /// [`Table::init_in`] for memory reached through a raw pointer (the C
    /// ABI, a `mmap`ed file), without ever forming a `&mut [u8]` to it. A
    /// null pointer is [`Error::Misaligned`].
    ///
    /// # Safety
    /// `ptr` must be valid for reads and writes of `len` bytes for `'a`, and
    /// nobody may use those bytes during `'a` other than through floodgate
    /// tables (in this or other processes).
    #[cfg(not(loom))]
    #[allow(unsafe_code)]
    pub unsafe fn init_raw(
        ptr: *mut u8,
        len: usize,
        config: &Config,
        owner: Owner,
    ) -> Result<Table<'a>, Error> {
        let need = Table::size_for(config)?;
        // SAFETY: forwarded caller contract.
        let words = unsafe { region::raw_words(ptr, len, need)? };
        for w in &words[..need / 4] {
            w.store(0, Ordering::Relaxed);
        }
        let (hdr, tags, entries, leases) =
            region::split(words, config.capacity, config.lease_capacity)?;
        region::write_header(hdr, config);
        Table::open(hdr, tags, entries, leases, owner)
    }

    /// [`Table::attach`] for memory reached through a raw pointer.
    ///
    /// # Safety
    /// As for [`Table::init_raw`].
    #[cfg(not(loom))]
    #[allow(unsafe_code)]
    pub unsafe fn attach_raw(ptr: *mut u8, len: usize, owner: Owner) -> Result<Table<'a>, Error> {
        // SAFETY: forwarded caller contract.
        let words = unsafe { region::raw_words(ptr, len, HEADER_WORDS * 4)? };
        let (capacity, lease_capacity) = region::check_header(&words[..HEADER_WORDS])?;
        let need = bytes_for(capacity, lease_capacity).ok_or(Error::LayoutMismatch)?;
        if len < need {
            return Err(Error::RegionTooSmall);
        }
        let (hdr, tags, entries, leases) =
            region::split(&words[..need / 4], capacity, lease_capacity)?;
        Table::open(hdr, tags, entries, leases, owner)
    }

    pub(crate) fn open(
        hdr: &'a [AtomicU32; HEADER_WORDS],
        tags: &'a [AtomicU32],
        entries: &'a [Entry],
        leases: &'a [[AtomicU32; LEASE_WORDS]],
        owner: Owner,
    ) -> Result<Table<'a>, Error> {
        let get64 = |i: usize| {
            u64::from(hdr[i].load(Ordering::Relaxed))
                | (u64::from(hdr[i + 1].load(Ordering::Relaxed)) << 32)
        };
        let (interval, epoch) = (get64(H_INTERVAL), get64(H_EPOCH));
        let window = Window::aligned(interval, epoch).map_err(|_| Error::LayoutMismatch)?;
        if tags.len() < entries.len().div_ceil(2) {
            return Err(Error::RegionTooSmall);
        }
        Ok(Table {
            hdr,
            tags,
            entries,
            leases,
            owner,
            window,
            interval,
            epoch,
            seed: get64(H_SEED),
        })
    }

    /// The same table, used by another owner (for example after `fork`).
    pub fn with_owner(self, owner: Owner) -> Table<'a> {
        Table { owner, ..self }
    }

    /// Number of entries the table can hold.
    pub fn capacity(&self) -> usize {
        self.entries.len()
    }

    /// Number of lease records.
    pub fn lease_capacity(&self) -> usize {
        self.leases.len()
    }

    /// The window length (ns) of pipes the table creates.
    pub fn interval(&self) -> u64 {
        self.interval
    }

    /// The epoch (ns) of aligned windows.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Locks entry `idx`: [`Error::Busy`] if its holder stays (see [`lock`]).
    #[inline(always)]
    fn lock_idx(&self, idx: usize) -> Result<Guard<'a>, Error> {
        let e = self.entries.get(idx).ok_or(Error::Corrupt)?;
        let held = lock::lock(&e[E_LOCK], &self.owner)?;
        let g = Guard {
            e,
            idx,
            active: held.active as usize,
        };
        if held.recovered {
            return self.recover(g);
        }
        Ok(g)
    }

    /// Finds `k`, or inserts the cell `make` builds, and returns the entry
    /// locked with whether it was created.
    pub(crate) fn find_or_insert(
        &self,
        k: &Key,
        now: u64,
        make: impl FnOnce() -> Result<Cell, Error>,
    ) -> Result<(Guard<'a>, bool), Error> {
        match self.find(k) {
            Ok(g) => return Ok((g, false)),
            Err(Error::NoPipe) => {}
            Err(e) => return Err(e),
        }
        let cell = make()?;
        let ins = &self.hdr[H_INSERT_LOCK];
        let held = lock::lock(ins, &self.owner)?;
        let result = self.insert_locked(k, now, &cell);
        lock::unlock(ins, held.active);
        result
    }

    fn insert_locked(&self, k: &Key, now: u64, cell: &Cell) -> Result<(Guard<'a>, bool), Error> {
        match self.find(k) {
            Ok(g) => return Ok((g, false)),
            Err(Error::NoPipe) => {}
            Err(e) => return Err(e),
        }
        // Two choices: the bucket with more free slots first, then the
        // other; in each, the first free slot (tag 0) from the key's home
        // lane whose lock can be taken. One that stays locked is passed
        // over, and marked (by candidate position) so that eviction does not
        // wait for it again. A slot whose tag is 0 but whose entry is in use
        // (memory overwritten by someone else) is left alone.
        let (b1, b2) = self.bucket_pair(k);
        let first_len = self.bucket_len(b1);
        let second_first = b2 != b1 && self.free_in(b2, k) > self.free_in(b1, k);
        let order = self
            .candidates(k)
            .enumerate()
            .filter(|(i, _)| (*i < first_len) != second_first);
        let order = order.chain(
            self.candidates(k)
                .enumerate()
                .filter(|(i, _)| (*i < first_len) == second_first),
        );
        let mut free = None;
        let mut busy = 0u64;
        for (i, idx) in order {
            if self.tag_at(idx) != 0
                || meta_state(self.entries[idx][E_META].load(Ordering::Acquire)) == STATE_USED
            {
                continue;
            }
            match self.lock_idx(idx) {
                Ok(g) if meta_state(g.e[E_META].load(Ordering::Relaxed)) == STATE_USED => {}
                Ok(g) => {
                    free = Some(g);
                    break;
                }
                Err(Error::Busy) => busy |= 1 << i,
                Err(e) => return Err(e),
            }
        }
        let g = match free {
            Some(g) => g,
            None => match self.evict(k, now, busy) {
                // A free slot exists but stays locked: try again later.
                Err(Error::Full) if busy != 0 => return Err(Error::Busy),
                r => r?,
            },
        };
        // Only inserts (under the insert lock) turn a free slot into a used one.
        let e = g.e;
        let gen = word::gen_begin(e);
        for (i, w) in k.words().into_iter().enumerate() {
            e.key[i].store(w, Ordering::Relaxed);
        }
        let hot = hot::is_hot(cell);
        if hot {
            self.hot_write(e, gen, cell);
        } else {
            write_buffer(e, g.active, cell);
        }
        // The tag before the meta word: every entry in use has its tag, so
        // lookups find it from the moment it is in use. An insert killed
        // between the two leaves a tag on a free entry, which lookups pass
        // over (its meta word does not match) and eviction reuses.
        self.set_tag(g.idx, tag16(k.hash));
        let hot_bit = if hot { META_HOT } else { 0 };
        let cfg = meta_cfg(encode(cell)[0]);
        e[E_META].store(
            meta(STATE_USED, k.len(), k.hash) | cfg | hot_bit,
            Ordering::Release,
        );
        word::gen_end(e);
        Ok((g, true))
    }

    /// Evicts the least recently active idle entry (see [`last_active`])
    /// of at most [`EVICT_CANDIDATES`] in `k`'s two buckets and returns its slot locked
    /// and free; [`Error::Full`] if none is idle. An entry that stays locked
    /// is not idle; neither are the candidate positions set in `skip` (found
    /// locked already).
    fn evict(&self, k: &Key, now: u64, skip: u64) -> Result<Guard<'a>, Error> {
        let mut best: Option<(usize, u64)> = None;
        let mut seen = 0;
        for (i, idx) in self.candidates(k).enumerate() {
            if skip & (1 << i) != 0 {
                continue;
            }
            let g = match self.lock_idx(idx) {
                Ok(g) => g,
                Err(Error::Busy) => continue,
                Err(e) => return Err(e),
            };
            let judged = self.judge(&g).map(|(_, cell)| cell);
            if let Some(cell) = judged.filter(|cell| self.idle(&g, cell, now)) {
                let last = cell.as_ref().map_or(0, last_active);
                if best.is_none_or(|(_, b)| last < b) {
                    best = Some((idx, last));
                }
                seen += 1;
                if seen == EVICT_CANDIDATES {
                    break;
                }
            }
        }
        let (idx, _) = best.ok_or(Error::Full)?;
        let g = self.lock_idx(idx)?;
        // A hot entry is killed from the very state judged idle: a check
        // committed since makes the swap fail.
        let (snap, cell) = self.judge(&g).ok_or(Error::Full)?;
        if !self.idle(&g, &cell, now) || snap.is_some_and(|s| !self.hot_kill(g.e, &s)) {
            // It was used between the two looks: give up rather than wait.
            return Err(Error::Full);
        }
        self.free_entry(&g);
        Ok(g)
    }

    /// The locked entry's cell, read once to judge the entry and, if it is
    /// hot, to kill it from the same words: a hot entry's stable snapshot
    /// (a roll under way finished first, so that the judge sees its window
    /// and the kill's swap fails if another roll begins) with its cell;
    /// `None` while a roll stays under way for all of a stable read's
    /// retries (the entry is in use).
    fn judge(&self, g: &Guard<'_>) -> Option<(Option<Snap>, Result<Cell, Error>)> {
        if g.hot() {
            let snap = Snap::read_stable(g.e)?;
            Some((Some(snap), snap.cell(self.epoch)))
        } else {
            Some((None, decode(&g.read(), self.epoch)))
        }
    }

    /// Whether the locked entry, whose cell [`Table::judge`] read, may be
    /// evicted at `now`.
    fn idle(&self, g: &Guard<'_>, cell: &Result<Cell, Error>, now: u64) -> bool {
        if meta_state(g.e[E_META].load(Ordering::Relaxed)) != STATE_USED {
            return true;
        }
        let Ok(cell) = cell else {
            return true;
        };
        match &cell.limiter {
            Limiter::Slots(s) => s.usage() == 0,
            Limiter::Gcra(gc) => gc.tat() <= now,
            l => l.window_counter().is_none_or(|c| {
                c.state()
                    .start()
                    .is_none_or(|s| now >= s.saturating_add(c.window().interval()))
            }),
        }
    }

    /// Marks a locked entry free and releases its lease records.
    fn free_entry(&self, g: &Guard<'_>) {
        word::gen_begin(g.e);
        g.e[E_META].store(STATE_TOMB, Ordering::Release);
        // After the meta word (see insert_locked): killed between the two,
        // the tag stays on a free entry, which recover or eviction clears.
        self.set_tag(g.idx, 0);
        leases::free_all_of(self, g.idx);
        word::gen_end(g.e);
    }

    /// Repairs an entry whose holder died: what lies outside the buffers.
    #[cold]
    #[inline(never)]
    fn recover(&self, g: Guard<'a>) -> Result<Guard<'a>, Error> {
        // A writer killed inside an insert or a delete left its generation
        // odd: what it wrote is judged below, the generation made even.
        if g.gen() & 1 == 1 {
            word::gen_end(g.e);
        }
        let m = g.e[E_META].load(Ordering::Relaxed);
        if meta_state(m) == STATE_USED && m & META_HOT != 0 {
            // A hot entry's state needs no repair but a frozen SLOTS
            // conversion's undo (a marked roll is finished); a dead one
            // was being removed, evicted or replaced: finish the removal.
            self.hot_recover(g.e);
            let snap = Snap::read(g.e);
            if hot::is_dead(snap.cfg(), snap.h()) {
                self.free_entry(&g);
            }
            return Ok(g);
        }
        if meta_state(m) != STATE_USED {
            // It may have died deleting the entry, between marking it free
            // and freeing its lease records (no record may name a free
            // entry) or clearing its tag; or inserting it, after its tag.
            self.set_tag(g.idx, 0);
            leases::free_all_of(self, g.idx);
            return Ok(g);
        }
        let Ok(mut cell) = decode(&g.read(), self.epoch) else {
            return Ok(g);
        };
        if leases::recount(self, &g, &mut cell) {
            let idx = g.idx;
            g.commit(&cell);
            return self.lock_idx(idx);
        }
        Ok(g)
    }

    /// The locked entry's cell (hot or not).
    fn cell(&self, g: &Guard<'_>) -> Result<Cell, Error> {
        if g.hot() {
            return self.hot_cell(g.e);
        }
        decode(&g.read(), self.epoch)
    }

    /// A hot entry's cell, a roll under way finished first (its words are
    /// not all written); out of line, so that the locked entries' [`Table::cell`]
    /// stays as small as it was (59 instructions per lease, measured).
    #[inline(never)]
    fn hot_cell(&self, e: &Entry) -> Result<Cell, Error> {
        Snap::read_stable(e).ok_or(Error::Busy)?.cell(self.epoch)
    }

    /// The values every pipe shares: FEEDBACK drop rate, NETWORK bytes waiting.
    pub fn shared(&self) -> Shared {
        Shared {
            drop_rate: self.hdr[H_DROP_RATE].load(Ordering::Relaxed) as u8,
            bytes_waiting: u64::from(self.hdr[H_BYTES_WAITING].load(Ordering::Relaxed)),
        }
    }

    /// Runs `f` on the locked entry's cell and commits it.
    ///
    /// `f` sees the cell with the entry's expired leases already taken off
    /// its counts (lazily, as time has passed); their records are freed
    /// only if `f` succeeds, right before the commit. A failed `f` commits
    /// and frees nothing: a failed operation changes nothing.
    fn update<T>(
        &self,
        g: Guard<'_>,
        now: u64,
        f: impl FnMut(&mut Cell) -> Result<T, Error>,
    ) -> Result<T, Error> {
        if g.hot() {
            return self.hot_locked(g, now, f);
        }
        let cell = self.cell(&g)?;
        self.run_and_commit(g, now, cell, f)
    }

    /// [`Table::update`] of a hot entry, whose lock the caller holds: the
    /// hot path's swap, as for callers without the lock. A SLOTS entry
    /// whose counts outgrow `H` becomes a locked one first
    /// (`hot/convert.rs`), and `f` runs again there. Dead under the lock,
    /// the entry is gone ([`Error::NoPipe`]): only a holder of the lock
    /// kills an entry, and frees it before unlocking (or, killed, leaves it
    /// to [`Table::recover`]).
    #[cold]
    #[inline(never)]
    fn hot_locked<T>(
        &self,
        mut g: Guard<'_>,
        now: u64,
        mut f: impl FnMut(&mut Cell) -> Result<T, Error>,
    ) -> Result<T, Error> {
        if let Some(out) = self.hot_update::<_, true>(g.e, g.gen(), now, &mut f)? {
            return Ok(out);
        }
        if !self.hot_to_locked(&mut g)? {
            return Err(Error::NoPipe);
        }
        let cell = self.cell(&g)?;
        self.run_and_commit(g, now, cell, f)
    }

    /// The part of [`Table::update`] after decoding.
    #[inline(always)]
    fn run_and_commit<T>(
        &self,
        g: Guard<'_>,
        now: u64,
        mut cell: Cell,
        mut f: impl FnMut(&mut Cell) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let due = leases::plan_reclaim(self, g.idx, g.gen(), &mut cell, now);
        let out = f(&mut cell)?;
        if due {
            leases::apply_reclaim(self, g.idx, g.gen(), now);
        }
        g.commit(&cell);
        Ok(out)
    }

    /// [`Table::update`] for SLOTS operations, with the SLOTS state decoded
    /// where the compiler sees its type (as [`Table::update_rate`] does for
    /// rate pipes). Another algorithm takes [`Table::update`], and `f`
    /// decides (usually [`Error::WrongAlgorithm`]).
    #[inline(always)]
    fn update_slots<T>(
        &self,
        g: Guard<'_>,
        now: u64,
        f: impl FnMut(&mut Cell) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let w = g.read();
        if g.hot() || w[0] & 0xf != Algorithm::Slots as u32 {
            return self.update(g, now, f);
        }
        let cell = codec::decode_as(Algorithm::Slots, &w, self.epoch)?;
        self.run_and_commit(g, now, cell, f)
    }

    /// [`Table::update`] for operations on rate pipes (every algorithm but
    /// SLOTS), with one copy of the decode, `f` and encode per algorithm:
    /// the stored algorithm picks the copy, in which the compiler sees one
    /// limiter type instead of the `Limiter` enum, and keeps the state in
    /// registers. A SLOTS entry (leases to reclaim) takes [`Table::update`].
    /// Committing and failing are as in [`Table::update`].
    #[inline(always)]
    fn update_rate<T>(
        &self,
        g: Guard<'_>,
        now: u64,
        mut f: impl FnMut(&mut Limiter) -> Result<T, Error>,
    ) -> Result<T, Error> {
        if g.hot() {
            return self.hot_locked(g, now, |c| f(&mut c.limiter));
        }
        let w = g.read();
        macro_rules! per_algorithm {
            ($($a:ident),*) => {
                match w[0] & 0xf {
                    $(x if x == Algorithm::$a as u32 => {
                        let cell = codec::decode_as(Algorithm::$a, &w, self.epoch)?;
                        // Leases exist only on SLOTS: with the type known,
                        // run_and_commit's reclaim check folds away.
                        self.run_and_commit(g, now, cell, #[inline(always)] |c| f(&mut c.limiter))
                    })*
                    _ => self.update(g, now, |c| f(&mut c.limiter)),
                }
            };
        }
        rate_algorithms!(per_algorithm)
    }

    /// pipelimit `pl_check(name)`: counts and decides one request on an
    /// existing pipe; [`Error::NoPipe`] if there is none.
    pub fn check(&self, key: &[u8], now: u64) -> Result<Verdict, Error> {
        let Some(k) = self.try_key(key) else {
            return Err(key_error(key));
        };
        if let Some((e, gen)) = self.hot_entry(&k) {
            if let Some(v) = self.hot_check(e, gen, now)? {
                return Ok(v);
            }
        }
        self.check_locked(self.find(&k)?, now)
    }

    /// The locked check of [`Table::check`] and [`Table::check_ref`]: an
    /// entry that is not hot, or one the hot path found changing. Out of
    /// line, so that the hot path saves and restores few registers.
    #[inline(never)]
    pub(crate) fn check_locked(&self, g: Guard<'_>, now: u64) -> Result<Verdict, Error> {
        let shared = self.shared();
        self.update_rate(
            g,
            now,
            #[inline(always)]
            |l| l.check(now, &shared),
        )
    }

    /// pipelimit `pl_check(name, algorithm, limit)`: creates the pipe with the
    /// table's window if it does not exist; if it does, its algorithm is kept
    /// and its limit replaced when `limit > 0`. Then counts and decides one
    /// request. Creating a FEEDBACK pipe, or naming a FEEDBACK pipe with
    /// `limit > 0`, also sets the table's setpoint to `limit` percent.
    ///
    /// When `algorithm` is FEEDBACK and `limit` is not the setpoint, the
    /// controller is locked before the pipe, so that a controller that
    /// stays locked ([`Error::Busy`]) fails the call before anything
    /// changed. A FEEDBACK pipe named with another algorithm (or a setpoint
    /// changed by another caller meanwhile) gets its setpoint after the
    /// check, best effort: if the controller stays locked then, the verdict
    /// stands and a later call sets it.
    pub fn check_or_create(
        &self,
        key: &[u8],
        algorithm: Algorithm,
        limit: i64,
        now: u64,
    ) -> Result<Verdict, Error> {
        let Some(k) = self.try_key(key) else {
            return Err(key_error(key));
        };
        let percent = u32::try_from(limit).ok().filter(|&p| p <= 100);
        // Locks are taken controller first, then insert lock, then entries.
        let ctrl = match percent {
            Some(p)
                if algorithm == Algorithm::Feedback && u32::from(self.setpoint_percent()) != p =>
            {
                Some(self.ctrl_lock()?)
            }
            _ => None,
        };
        let hot = match self.hot_entry(&k) {
            Some((e, gen)) => self.hot_update_fast::<_, false>(
                e,
                gen,
                now,
                // A TAILDROP pipe: no setpoint to set.
                #[inline(always)]
                |snap| {
                    self.taildrop_in_window(snap, now, limit)
                        .map(|(h, v)| (h, (v, false)))
                },
                #[inline(always)]
                |c| check_with_limit(&mut c.limiter, false, limit, now, &self.shared()),
            )?,
            None => None,
        };
        let (verdict, feedback) = match hot {
            Some(out) => out,
            None => self.check_or_create_locked(&k, algorithm, limit, now)?,
        };
        if !feedback {
            return Ok(verdict);
        }
        // The range was checked by Limiter::new / set_limit (0..=100).
        let percent = percent.unwrap_or(0);
        match ctrl {
            Some(c) => c.update(|c| c.set_setpoint_percent(percent))?,
            None if u32::from(self.setpoint_percent()) != percent => {
                match self.set_setpoint(percent) {
                    // The verdict is committed: it stands.
                    Ok(()) | Err(Error::Busy) => {}
                    Err(e) => return Err(e),
                }
            }
            None => {}
        }
        Ok(verdict)
    }

    /// The locked path of [`Table::check_or_create`]: a new key, an entry
    /// that is not hot, or one the hot path found changing. Out of line,
    /// so that the hot path neither sets up nor saves what this one needs.
    /// The verdict, and whether the pipe is a FEEDBACK one.
    #[inline(never)]
    fn check_or_create_locked(
        &self,
        k: &Key<'_>,
        algorithm: Algorithm,
        limit: i64,
        now: u64,
    ) -> Result<(Verdict, bool), Error> {
        let shared = self.shared();
        let (g, created) = self.find_or_insert(k, now, || {
            let l = Limiter::new(algorithm, limit, self.window)?;
            if matches!(l, Limiter::Slots(_)) {
                // A SLOTS pipe cannot be checked: fail before creating it.
                return Err(Error::WrongAlgorithm);
            }
            Ok(Cell::new(l))
        })?;
        self.update_rate(g, now, |l| {
            check_with_limit(l, created, limit, now, &shared)
        })
    }

    /// pipelimit `pl_active(name)`: whether a pipe with this key exists.
    /// Read without locking the entry, so a holder that stays does not make
    /// it [`Error::Busy`].
    pub fn active(&self, key: &[u8]) -> Result<bool, Error> {
        let k = self.key(key)?;
        Ok(self.locate(&k).is_some())
    }

    /// pipelimit `pl.set_pipe`: creates the pipe or replaces its algorithm
    /// and limit. Same algorithm: the limit is replaced and the counters kept.
    /// Another algorithm: the pipe starts afresh, except that a SLOTS entry
    /// holding slots is not replaced ([`Error::WrongAlgorithm`]). A FEEDBACK
    /// pipe's limit becomes the table's setpoint (the controller is locked
    /// first: if it stays locked, nothing changes).
    pub fn set(&self, key: &[u8], algorithm: Algorithm, limit: i64, now: u64) -> Result<(), Error> {
        let k = self.key(key)?;
        let fresh = Cell::new(Limiter::new(algorithm, limit, self.window)?);
        // Locks are taken controller first, then insert lock, then entries.
        let ctrl = match algorithm {
            Algorithm::Feedback => Some(self.ctrl_lock()?),
            _ => None,
        };
        // The same algorithm on a hot entry: a new limit, without the lock.
        let same = |c: &mut Cell| {
            if c.limiter.algorithm() == algorithm {
                c.limiter.set_limit(limit).map(|()| true)
            } else {
                Ok(false)
            }
        };
        let done = self.try_hot(&k, now, same)? == Some(true);
        let (g, created) = match done {
            true => (None, false),
            false => {
                let (g, created) = self.find_or_insert(&k, now, || Ok(fresh))?;
                (Some(g), created)
            }
        };
        if let (Some(g), false) = (g, created) {
            // Another algorithm: a new entry (the meta word keeps the
            // algorithm for the entry's life, locked or hot).
            let replace = self.update(g, now, |c| {
                if c.limiter.algorithm() == algorithm {
                    c.limiter.set_limit(limit).map(|()| false)
                } else if matches!(c.limiter, Limiter::Slots(s) if s.usage() > 0) {
                    Err(Error::WrongAlgorithm)
                } else {
                    Ok(true)
                }
            })?;
            if replace {
                drop(self.replace(&k, now, &fresh, |c| {
                    c.limiter.algorithm() != algorithm
                        && !matches!(c.limiter, Limiter::Slots(s) if s.usage() > 0)
                })?);
            }
        }
        if let Some(c) = ctrl {
            // The range was checked by Limiter::new (0..=100).
            c.update(|c| c.set_setpoint_percent(u32::try_from(limit).unwrap_or(0)))?;
        }
        Ok(())
    }

    /// Deletes an entry ([`Error::NoPipe`] if absent); its leases end.
    pub fn remove(&self, key: &[u8]) -> Result<(), Error> {
        let k = self.key(key)?;
        let g = self.find(&k)?;
        if g.hot() {
            self.hot_kill_any(g.e)?;
        }
        self.free_entry(&g);
        Ok(())
    }

    /// Replaces `k`'s entry with a new one holding `cell`, if `still(old)`
    /// holds once the entry is locked again: under the insert lock, the
    /// old entry is killed (if hot) and freed, and `cell` inserted, so
    /// that no other insert of `k` comes between. A caller without a lock
    /// may see no entry meanwhile. Used where a hot entry changes its
    /// algorithm or window (its state words cannot change kind in place).
    /// Returns the new entry, locked.
    fn replace(
        &self,
        k: &Key,
        now: u64,
        cell: &Cell,
        mut still: impl FnMut(&Cell) -> bool,
    ) -> Result<Guard<'a>, Error> {
        let ins = &self.hdr[H_INSERT_LOCK];
        let held = lock::lock(ins, &self.owner)?;
        let result = (|| {
            match self.find(k) {
                Ok(g) => {
                    if !still(&self.cell(&g)?) {
                        return Ok(g);
                    }
                    if g.hot() {
                        self.hot_kill_any(g.e)?;
                    }
                    self.free_entry(&g);
                }
                Err(Error::NoPipe) => {}
                Err(e) => return Err(e),
            }
            self.insert_locked(k, now, cell).map(|(g, _)| g)
        })();
        lock::unlock(ins, held.active);
        result
    }

    /// What a listing shows of one entry at `now` (pl.list name, limit_usage).
    pub fn get(&self, key: &[u8], now: u64) -> Result<Stats, Error> {
        let k = self.key(key)?;
        let (shared, setpoint) = (self.shared(), self.setpoint_percent());
        // A hot entry is read without its lock (the closure changes nothing,
        // so nothing is swapped).
        let stats = |c: &mut Cell| Ok(c.limiter.stats(now, &shared, setpoint));
        if let Some(s) = self.try_hot(&k, now, stats)? {
            return Ok(s);
        }
        let g = self.find(&k)?;
        let cell = self.cell(&g)?;
        Ok(cell.limiter.stats(now, &shared, setpoint))
    }

    /// FreeSWITCH `limit_interval_reset`: zeroes the current window's count
    /// now (a GCRA forgets its history; SLOTS are left alone).
    pub fn interval_reset(&self, key: &[u8], now: u64) -> Result<(), Error> {
        let k = self.key(key)?;
        let reset = |c: &mut Cell| {
            c.limiter.reset();
            Ok(())
        };
        if let Some(()) = self.try_hot(&k, now, reset)? {
            return Ok(());
        }
        let g = self.find(&k)?;
        self.update(g, now, reset)
    }

    /// FreeSWITCH `limit ... max/interval`: at most `max` new calls per
    /// window of `interval_ns` (`max < 0` counts only, `max == 0` as
    /// `max_zero` says). Creates the entry on first use with windows as
    /// `anchor_first_event` says (false: aligned to the table's epoch, as
    /// mod_hiredis; true: from the first call, as mod_hash). Each call
    /// passes its max, which replaces the stored one; a different interval
    /// starts the entry afresh. [`Error::WrongAlgorithm`] if the key holds
    /// another kind.
    pub fn rate_check(
        &self,
        key: &[u8],
        max: i32,
        interval_ns: u64,
        anchor_first_event: bool,
        max_zero: MaxZero,
        now: u64,
    ) -> Result<Verdict, Error> {
        let window = if anchor_first_event {
            Window::first_event(interval_ns)?
        } else {
            Window::aligned(interval_ns, self.epoch)?
        };
        let fresh = IntervalLimit::new(max, window, max_zero);
        let k = self.key(key)?;
        let run = |c: &mut Cell| interval_check(c, &fresh, now);
        if let Some(Some(v)) = self.try_hot(
            &k,
            now,
            #[inline(always)]
            |c| interval_check(c, &fresh, now),
        )? {
            return Ok(v);
        }
        let fresh_cell = Cell::new(Limiter::Interval(fresh));
        let (g, _) = self.find_or_insert(&k, now, || Ok(fresh_cell))?;
        if let Some(v) = self.update(g, now, run)? {
            return Ok(v);
        }
        let g = self.replace(
            &k,
            now,
            &fresh_cell,
            |c| matches!(&c.limiter, Limiter::Interval(l) if interval_differs(l, &fresh)),
        )?;
        self.update(g, now, run)?.ok_or(Error::Busy)
    }

    /// FreeSWITCH concurrent `limit`, app_rpt link count: takes a slot of
    /// `key` under `max` (`< 0` counts only, 0 refuses all), creating the
    /// entry on first use; `max` replaces the stored one. Release it with
    /// [`Table::release`]. [`Error::WrongAlgorithm`] if the key holds another kind.
    pub fn acquire(&self, key: &[u8], max: i32, now: u64) -> Result<SlotVerdict, Error> {
        let Some(k) = self.try_key(key) else {
            return Err(key_error(key));
        };
        let take = |c: &mut Cell| {
            let Limiter::Slots(s) = &mut c.limiter else {
                return Err(Error::WrongAlgorithm);
            };
            s.set_max(max);
            Ok(s.acquire())
        };
        let g = match self.hot_or_lock(&k, now, take)? {
            Hot::Done(v) => return Ok(v),
            Hot::Locked(g) => g,
            Hot::Look => {
                self.find_or_insert(&k, now, || Ok(Cell::new(Limiter::Slots(Slots::new(max)))))?
                    .0
            }
        };
        self.update_slots(g, now, take)
    }

    /// Gives back a slot taken with [`Table::acquire`]. Slots held by leases
    /// are not touched: with none held otherwise the release is unmatched.
    pub fn release(&self, key: &[u8], now: u64) -> Result<Release, Error> {
        let Some(k) = self.try_key(key) else {
            return Err(key_error(key));
        };
        let give = |c: &mut Cell| {
            let leased = c.leased;
            let Limiter::Slots(s) = &mut c.limiter else {
                return Err(Error::WrongAlgorithm);
            };
            if s.usage() <= leased {
                s.unmatched = s.unmatched.saturating_add(1);
                return Ok(Release::Unmatched);
            }
            Ok(s.release())
        };
        let g = match self.hot_or_lock(&k, now, give)? {
            Hot::Done(r) => return Ok(r),
            Hot::Locked(g) => g,
            Hot::Look => self.find(&k)?,
        };
        self.update_slots(g, now, give)
    }

    /// Slots held on `key` now (FreeSWITCH `limit_usage`), after reclaiming
    /// expired leases.
    pub fn usage(&self, key: &[u8], now: u64) -> Result<u32, Error> {
        let k = self.key(key)?;
        let read = |c: &mut Cell| match &c.limiter {
            Limiter::Slots(s) => Ok(s.usage()),
            _ => Err(Error::WrongAlgorithm),
        };
        let g = match self.hot_or_lock(&k, now, read)? {
            Hot::Done(n) => return Ok(n),
            Hot::Locked(g) => g,
            Hot::Look => self.find(&k)?,
        };
        self.update(g, now, read)
    }

    /// Deletes every pipe (not SLOTS entries holding slots) that had no
    /// request for `intervals` whole windows, as pipelimit's `clean_unused`
    /// does at its timer ticks: a pipe last used in window `w` goes once the
    /// current window is `w + intervals + 1` or later. 0 deletes nothing.
    /// No word records a last use; the state says it: a window pipe was
    /// last used in the window it last opened (a pipe whose windows start
    /// at its first call may so go one window earlier than pipelimit's
    /// rule would let it), a GCRA at its theoretical arrival time less one
    /// emission interval, and a SLOTS entry holding nothing goes at once.
    /// Returns how many entries were deleted. An entry whose lock stays held
    /// by a live holder (see [`lock`]) is left alone.
    pub fn clean_unused(&self, intervals: u32, now: u64) -> usize {
        if intervals == 0 {
            return 0;
        }
        let mut removed = 0;
        for idx in 0..self.entries.len() {
            if meta_state(self.entries[idx][E_META].load(Ordering::Acquire)) != STATE_USED {
                continue;
            }
            let Ok(g) = self.lock_idx(idx) else { continue };
            if meta_state(g.e[E_META].load(Ordering::Relaxed)) != STATE_USED {
                continue;
            }
            // A hot entry is judged and killed from one read of its words:
            // an operation committed since makes the kill's swap fail.
            let Some((snap, Ok(cell))) = self.judge(&g) else {
                continue;
            };
            let interval = match &cell.limiter {
                Limiter::Slots(s) if s.usage() > 0 => continue,
                Limiter::Slots(_) => self.interval,
                Limiter::Gcra(gc) => gc.period(),
                l => l
                    .window_counter()
                    .map_or(self.interval, |c| c.window().interval()),
            };
            let window_of = |t: u64| t.saturating_sub(self.epoch) / interval;
            // Not saturating: a window past u64::MAX never comes.
            let due = window_of(last_active(&cell)).checked_add(u64::from(intervals) + 1);
            if due.is_some_and(|due| window_of(now) >= due)
                && snap.is_none_or(|s| self.hot_kill(g.e, &s))
            {
                self.free_entry(&g);
                removed += 1;
            }
        }
        removed
    }

    /// The entry at slot `index` as a listing shows it at `now`, or `None`
    /// if that slot is free, its state does not decode, or its lock stays
    /// held by a live holder (see [`lock`]): such an entry is left out.
    /// Slots run from 0 to [`Table::capacity`].
    pub fn entry_at(&self, index: usize, now: u64) -> Option<EntryInfo> {
        let e = self.entries.get(index)?;
        let gen = e[E_GEN].load(Ordering::Acquire);
        let m = e[E_META].load(Ordering::Acquire);
        if meta_state(m) != STATE_USED {
            return None;
        }
        let read_key = || {
            let mut key = [0u8; MAX_KEY_LEN];
            for i in 0..KEY_WORDS {
                key[4 * i..4 * i + 4]
                    .copy_from_slice(&e.key[i].load(Ordering::Relaxed).to_le_bytes());
            }
            key
        };
        // Hot: read without the lock (a marked roll is finished on the
        // way), unless a SLOTS entry's conversion is frozen (under way
        // under the lock, or left by a killed holder: the lock's path
        // waits for it, or undoes it).
        let hot = (m & META_HOT != 0 && gen & 1 == 0)
            .then(|| Snap::read_stable(e))
            .flatten();
        let (cell, key) = if let Some(snap) = hot {
            // Kept only if the entry was the same one (generation and meta
            // word) all along.
            let key = read_key();
            lock::fence_acquire();
            if e[E_GEN].load(Ordering::Relaxed) != gen
                || e[E_META].load(Ordering::Relaxed) != m
                || hot::is_dead(snap.cfg(), snap.h())
            {
                return None;
            }
            (snap.cell(self.epoch).ok()?, key)
        } else {
            let g = self.lock_idx(index).ok()?;
            // The same entry, though its holder may have made it a locked
            // one meanwhile (hot/convert.rs).
            if e[E_META].load(Ordering::Relaxed) & !META_HOT != m & !META_HOT {
                return None;
            }
            (self.cell(&g).ok()?, read_key())
        };
        let len = ((m >> 2) & 0x7f) as usize;
        Some(EntryInfo {
            key,
            key_len: len.min(MAX_KEY_LEN) as u8,
            stats: cell
                .limiter
                .stats(now, &self.shared(), self.setpoint_percent()),
        })
    }

    /// Every entry as a listing shows it at `now`, without allocating. Entries
    /// inserted or removed during the walk may or may not be seen. An entry
    /// that [`Table::entry_at`] leaves out (its state does not decode, or
    /// its lock stays held by a live holder) is not listed.
    pub fn iter(&self, now: u64) -> impl Iterator<Item = EntryInfo> + 'a {
        let t = *self;
        (0..t.entries.len()).filter_map(move |i| t.entry_at(i, now))
    }

    /// Number of entries in use (walks the table, without locks).
    pub fn len(&self) -> usize {
        self.entries
            .iter()
            .filter(|e| meta_state(e[E_META].load(Ordering::Relaxed)) == STATE_USED)
            .count()
    }

    /// Whether no entry is in use.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// `pl_check(name, algorithm, limit)` on an existing (`created`: a new)
/// pipe's limiter: a limit above 0 replaces an existing pipe's, then one
/// check. Also says whether the pipe is FEEDBACK with a setpoint to set.
#[inline(always)]
fn check_with_limit(
    l: &mut Limiter,
    created: bool,
    limit: i64,
    now: u64,
    shared: &Shared,
) -> Result<(Verdict, bool), Error> {
    if !created && limit > 0 {
        l.set_limit(limit)?;
    }
    let v = l.check(now, shared)?;
    let fb = l.algorithm() == Algorithm::Feedback && (created || limit > 0);
    Ok((v, fb))
}

/// Whether interval limit `l` has another window or `max == 0` setting
/// than `fresh` (a [`Table::rate_check`] that must start it afresh).
#[inline(always)]
fn interval_differs(l: &IntervalLimit, fresh: &IntervalLimit) -> bool {
    l.counter().window() != fresh.counter().window() || l.max_zero() != fresh.max_zero()
}

/// [`Table::rate_check`] on cell `c`: with `fresh`'s max, one check at
/// `now`; `Ok(None)` if `c` differs from `fresh` as [`interval_differs`]
/// says: the entry is replaced (its window and `MaxZero` are its own for
/// life, in its meta and state words).
#[inline(always)]
fn interval_check(c: &mut Cell, fresh: &IntervalLimit, now: u64) -> Result<Option<Verdict>, Error> {
    let Limiter::Interval(l) = &mut c.limiter else {
        return Err(Error::WrongAlgorithm);
    };
    if interval_differs(l, fresh) {
        return Ok(None);
    }
    interval_call(c, fresh.max(), now).map(Some)
}

/// One FreeSWITCH `max/interval` call on cell `c`, in the window it has:
/// the call's `max` replaces the stored one (each call passes its own),
/// then the call is counted and decided at `now`. [`Error::WrongAlgorithm`]
/// if `c` holds another kind. [`Table::rate_check`] (through
/// [`interval_check`]) and [`Table::rate_check_ref`] both end here.
#[inline(always)]
pub(crate) fn interval_call(c: &mut Cell, max: i32, now: u64) -> Result<Verdict, Error> {
    let Limiter::Interval(l) = &mut c.limiter else {
        return Err(Error::WrongAlgorithm);
    };
    l.set_max(max);
    Ok(l.check(now))
}

#[cfg(all(test, not(loom)))]
mod tests;
#[cfg(all(test, not(loom)))]
mod tests_busy;
#[cfg(all(test, not(loom)))]
mod tests_first;
#[cfg(all(test, not(loom)))]
mod tests_hot;
#[cfg(all(test, not(loom)))]
mod tests_slots;
#[cfg(all(test, not(loom)))]
mod tests_tags;

/// A table in leaked heap memory built from loom's atomics, for loom models
/// (`RUSTFLAGS="--cfg loom" cargo test --test loom --release`).
#[cfg(loom)]
pub fn loom_table(config: &Config, owner: Owner) -> Result<Table<'static>, Error> {
    extern crate std;
    use std::{boxed::Box, vec::Vec};
    config.validate()?;
    let hdr: &'static [AtomicU32; HEADER_WORDS] =
        Box::leak(Box::new(core::array::from_fn(|_| AtomicU32::new(0))));
    let tags: &'static [AtomicU32] = Vec::leak(
        (0..tag_words(config.capacity))
            .map(|_| AtomicU32::new(0))
            .collect(),
    );
    let entries: &'static [Entry] =
        Vec::leak((0..config.capacity).map(|_| Entry::zero()).collect());
    let leases: &'static [[AtomicU32; LEASE_WORDS]] = Vec::leak(
        (0..config.lease_capacity)
            .map(|_| core::array::from_fn(|_| AtomicU32::new(0)))
            .collect(),
    );
    region::write_header(hdr, config);
    Table::open(hdr, tags, entries, leases, owner)
}
