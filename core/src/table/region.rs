//! Table memory: a caller's byte region seen as `u32` atomics, and the
//! const-generic [`StaticTable`]. The one `unsafe` block of the crate lives
//! here.
#![allow(unsafe_code)]
#![cfg_attr(loom, allow(dead_code))]

use super::layout::*;
use super::lock::{AtomicU32, Ordering};
use super::word::Entry;
use super::{Config, MAX_CAPACITY};
#[cfg(not(loom))]
use super::{Owner, Table};
use crate::{Error, PidController};

type Parts<'a> = (
    &'a [AtomicU32; HEADER_WORDS],
    &'a [AtomicU32],
    &'a [Entry],
    &'a [[AtomicU32; LEASE_WORDS]],
);

/// `region` as `u32` atomics, after checking alignment (8) and that it holds
/// at least `need` bytes.
#[cfg(not(loom))]
pub(crate) fn words(region: &mut [u8], need: usize) -> Result<&[AtomicU32], Error> {
    if region.as_ptr().align_offset(8) != 0 {
        return Err(Error::Misaligned);
    }
    if region.len() < need {
        return Err(Error::RegionTooSmall);
    }
    let n = region.len() / 4;
    // SAFETY: the pointer is non-null and aligned to 8 (checked above), so to
    // AtomicU32's 4; `n * 4 <= region.len()` bytes are in bounds of one
    // allocation. AtomicU32 has the size and alignment of u32 and every bit
    // pattern is a valid value, so any bytes are valid atomics. The result
    // borrows `region` mutably for its whole lifetime, so no other reference
    // of this process sees these bytes as plain `u8` while the atomics live;
    // other processes sharing the mapping only ever access it atomically too.
    let words = unsafe { core::slice::from_raw_parts(region.as_mut_ptr().cast::<AtomicU32>(), n) };
    Ok(words)
}

/// The `len` bytes at `ptr` as `u32` atomics, after checking null,
/// alignment (8) and that they hold at least `need` bytes.
///
/// # Safety
/// `ptr` must be valid for reads and writes of `len` bytes for `'a`, and
/// everyone touching those bytes during `'a` (threads or other processes)
/// must do so only through atomics, as floodgate does.
#[cfg(not(loom))]
pub(crate) unsafe fn raw_words<'a>(
    ptr: *mut u8,
    len: usize,
    need: usize,
) -> Result<&'a [AtomicU32], Error> {
    if ptr.is_null() || ptr.align_offset(8) != 0 {
        return Err(Error::Misaligned);
    }
    if len < need {
        return Err(Error::RegionTooSmall);
    }
    // SAFETY: non-null and aligned (checked); valid for `len >= n * 4` bytes
    // for 'a and accessed only atomically (the caller's contract); any bit
    // pattern is a valid AtomicU32, which has u32's size and alignment.
    Ok(unsafe { core::slice::from_raw_parts(ptr.cast::<AtomicU32>(), len / 4) })
}

/// Splits a table's words into header, tags, entries and leases.
pub(crate) fn split(
    words: &[AtomicU32],
    capacity: usize,
    lease_capacity: usize,
) -> Result<Parts<'_>, Error> {
    let (hdr, rest) = words
        .split_at_checked(HEADER_WORDS)
        .ok_or(Error::RegionTooSmall)?;
    let hdr = <&[AtomicU32; HEADER_WORDS]>::try_from(hdr).map_err(|_| Error::RegionTooSmall)?;
    let (tags, rest) = rest
        .split_at_checked(tag_words(capacity))
        .ok_or(Error::RegionTooSmall)?;
    let (entries, rest) = rest
        .split_at_checked(capacity * ENTRY_WORDS)
        .ok_or(Error::RegionTooSmall)?;
    let (leases, _) = rest
        .split_at_checked(lease_capacity * LEASE_WORDS)
        .ok_or(Error::RegionTooSmall)?;
    Ok((hdr, tags, as_entries(entries)?, leases.as_chunks().0))
}

/// `words` (a whole number of entries) as entries: [`Entry`] is
/// `#[repr(C)]` atomics only, [`ENTRY_WORDS`] words long, aligned to at most
/// 8 bytes, which the region's start (checked) and every part before the
/// entries (whole 64-byte lines of header and tags) keep.
#[cfg(not(loom))]
fn as_entries(words: &[AtomicU32]) -> Result<&[Entry], Error> {
    let ptr = words.as_ptr();
    if ptr.align_offset(core::mem::align_of::<Entry>()) != 0 {
        return Err(Error::Misaligned);
    }
    let n = words.len() / ENTRY_WORDS;
    // SAFETY: the `n` entries cover `n * ENTRY_WORDS` words of `words`
    // (size_of::<Entry>() == ENTRY_WORDS * 4, asserted in word.rs), the
    // pointer is aligned for Entry (checked above), and Entry is made of
    // atomics only, so any bits are a valid value and shared access through
    // `&` is what its atomics are for; the borrow keeps `words`' lifetime.
    Ok(unsafe { core::slice::from_raw_parts(ptr.cast::<Entry>(), n) })
}

/// Under loom, entries are built as entries (`loom_table`), never cast.
#[cfg(loom)]
fn as_entries(_: &[AtomicU32]) -> Result<&[Entry], Error> {
    Err(Error::Misaligned)
}

fn put64(hdr: &[AtomicU32; HEADER_WORDS], i: usize, v: u64) {
    hdr[i].store(v as u32, Ordering::Relaxed);
    hdr[i + 1].store((v >> 32) as u32, Ordering::Relaxed);
}

/// Writes the controller into header buffer `buf` (0 or 1).
pub(crate) fn write_ctrl(hdr: &[AtomicU32; HEADER_WORDS], buf: u32, c: &PidController) {
    let base = H_CTRL + buf as usize * CTRL_WORDS;
    let g = c.gains();
    let vals = [
        c.setpoint(),
        g.kp,
        g.ki,
        g.kd,
        c.int_err(),
        c.last_err(),
        c.load(),
    ];
    for (i, v) in vals.into_iter().enumerate() {
        put64(hdr, base + 2 * i, v.to_bits());
    }
    hdr[base + 14].store(u32::from(c.drop_rate()), Ordering::Relaxed);
}

/// Fills in a zeroed header; the magic number goes last.
pub(crate) fn write_header(hdr: &[AtomicU32; HEADER_WORDS], config: &Config) {
    hdr[H_VERSION].store(LAYOUT_VERSION, Ordering::Relaxed);
    hdr[H_CAPACITY].store(config.capacity as u32, Ordering::Relaxed);
    hdr[H_ENTRY_WORDS].store(ENTRY_WORDS as u32, Ordering::Relaxed);
    hdr[H_LEASE_CAPACITY].store(config.lease_capacity as u32, Ordering::Relaxed);
    hdr[H_LEASE_WORDS].store(LEASE_WORDS as u32, Ordering::Relaxed);
    put64(hdr, H_INTERVAL, config.interval_ns);
    put64(hdr, H_EPOCH, config.epoch);
    put64(hdr, H_SEED, config.seed);
    write_ctrl(hdr, 0, &PidController::new());
    hdr[H_MAGIC].store(MAGIC, Ordering::Release);
}

/// Checks a header and returns (capacity, lease capacity).
pub(crate) fn check_header(hdr: &[AtomicU32]) -> Result<(usize, usize), Error> {
    if hdr[H_MAGIC].load(Ordering::Acquire) != MAGIC {
        return Err(Error::NotATable);
    }
    let get = |i: usize| hdr[i].load(Ordering::Relaxed) as usize;
    let (capacity, lease_capacity) = (get(H_CAPACITY), get(H_LEASE_CAPACITY));
    if get(H_VERSION) != LAYOUT_VERSION as usize
        || get(H_ENTRY_WORDS) != ENTRY_WORDS
        || get(H_LEASE_WORDS) != LEASE_WORDS
        || capacity == 0
        || capacity > MAX_CAPACITY
        || lease_capacity > MAX_CAPACITY
    {
        return Err(Error::LayoutMismatch);
    }
    Ok((capacity, lease_capacity))
}

/// A table with `N` entries and `L` lease records in a `static` or a field:
/// no region to size, capacities checked at compile time.
///
/// ```
/// use floodgate::table::{Owner, StaticTable};
/// use floodgate::{Algorithm, Verdict};
/// static PIPES: StaticTable<64, 16> = StaticTable::new();
/// let t = PIPES.init(10_000_000_000, 0, 0x5eed, Owner::SINGLE_PROCESS)?;
/// assert_eq!(t.check_or_create(b"10.0.0.1", Algorithm::Taildrop, 1, 0)?, Verdict::Pass);
/// assert_eq!(t.check(b"10.0.0.1", 1)?, Verdict::Drop);
/// # Ok::<(), floodgate::Error>(())
/// ```
#[cfg(not(loom))]
#[repr(C, align(8))]
pub struct StaticTable<const N: usize, const L: usize> {
    header: [AtomicU32; HEADER_WORDS],
    // One word per entry where the region layout has one per two, padded
    // to whole buckets: `tag_words(N)` cannot size an array on stable Rust.
    // The table uses the first `N.div_ceil(2)` (2 bytes an entry unused).
    tags: [AtomicU32; N],
    entries: [Entry; N],
    leases: [[AtomicU32; LEASE_WORDS]; L],
}

#[cfg(not(loom))]
const INITIALIZING: u32 = 1;

#[cfg(not(loom))]
impl<const N: usize, const L: usize> Default for StaticTable<N, L> {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(not(loom))]
impl<const N: usize, const L: usize> StaticTable<N, L> {
    /// An uninitialized table (all zero); call [`StaticTable::init`].
    pub const fn new() -> Self {
        const {
            assert!(
                N >= 1 && N <= MAX_CAPACITY,
                "capacity must be 1..=MAX_CAPACITY"
            );
            assert!(L <= MAX_CAPACITY, "lease capacity must be <= MAX_CAPACITY");
        }
        StaticTable {
            header: [const { AtomicU32::new(0) }; HEADER_WORDS],
            tags: [const { AtomicU32::new(0) }; N],
            entries: [const { Entry::zero() }; N],
            leases: [const { [const { AtomicU32::new(0) }; LEASE_WORDS] }; L],
        }
    }

    /// Initializes the table on the first call (windows of `interval_ns`
    /// from `epoch`, hash `seed`) and returns a handle; later calls, from any
    /// thread, return a handle on the same table and ignore the settings.
    /// A call that finds another thread initializing waits for it, at most
    /// as long as for a lock ([`Error::Busy`]: see
    /// [`lock`](super::lock#bounded-waits)).
    pub fn init(
        &self,
        interval_ns: u64,
        epoch: u64,
        seed: u64,
        owner: Owner,
    ) -> Result<Table<'_>, Error> {
        let config = Config {
            capacity: N,
            lease_capacity: L,
            interval_ns,
            epoch,
            seed,
        };
        config.validate()?;
        let magic = &self.header[H_MAGIC];
        if magic
            .compare_exchange(0, INITIALIZING, Ordering::Acquire, Ordering::Acquire)
            .is_ok()
        {
            write_header(&self.header, &config);
        } else {
            // Another thread is writing the header (some fifty stores): a
            // bounded wait, as for locks, in case this memory was overwritten.
            let mut spins = 0u32;
            while magic.load(Ordering::Acquire) == INITIALIZING {
                spins += 1;
                if spins >= owner.busy_after() {
                    return Err(Error::Busy);
                }
                owner.relax(spins);
            }
        }
        self.table(owner)
    }

    /// A handle on the initialized table; [`Error::NotATable`] before
    /// [`StaticTable::init`].
    pub fn table(&self, owner: Owner) -> Result<Table<'_>, Error> {
        check_header(&self.header)?;
        Table::open(&self.header, &self.tags, &self.entries, &self.leases, owner)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::super::{Config, Owner, Table};
    use super::{StaticTable, H_MAGIC, INITIALIZING};
    use crate::table::lock::{Ordering, CHECK_EVERY};
    use crate::{Algorithm, Error, Verdict};

    #[test]
    fn a_static_table_stuck_initializing_is_busy_not_a_hang() {
        static T: StaticTable<4, 0> = StaticTable::new();
        // As if a thread had started the header and never finished it.
        T.header[H_MAGIC].store(INITIALIZING, Ordering::Relaxed);
        let o = Owner::SINGLE_PROCESS.with_busy_after(CHECK_EVERY);
        assert_eq!(T.init(1, 0, 0, o).unwrap_err(), Error::Busy);
        assert_eq!(T.table(o).unwrap_err(), Error::NotATable);
        // Once nobody is initializing, the next call does it.
        T.header[H_MAGIC].store(0, Ordering::Relaxed);
        assert!(T.init(1, 0, 0, o).is_ok());
    }

    #[test]
    fn raw_init_and_attach_share_one_table() {
        let c = Config::new(8, 1_000);
        let need = Table::size_for(&c).unwrap();
        let mut buf = vec![0u64; need / 8 + 1];
        let ptr = buf.as_mut_ptr().cast::<u8>();
        let len = buf.len() * 8;
        #[allow(unsafe_code)]
        // SAFETY: `buf` outlives both handles and is only used through them.
        let (a, b) = unsafe {
            let a = Table::init_raw(ptr, len, &c, Owner::SINGLE_PROCESS).unwrap();
            let b = Table::attach_raw(ptr, len, Owner::SINGLE_PROCESS).unwrap();
            assert_eq!(
                Table::attach_raw(ptr, need - 4, Owner::SINGLE_PROCESS).unwrap_err(),
                Error::RegionTooSmall
            );
            assert_eq!(
                Table::attach_raw(ptr.add(4), len - 4, Owner::SINGLE_PROCESS).unwrap_err(),
                Error::Misaligned
            );
            assert_eq!(
                Table::attach_raw(core::ptr::null_mut(), 0, Owner::SINGLE_PROCESS).unwrap_err(),
                Error::Misaligned
            );
            (a, b)
        };
        assert_eq!(
            a.check_or_create(b"k", Algorithm::Taildrop, 1, 0),
            Ok(Verdict::Pass)
        );
        assert_eq!(b.check(b"k", 1), Ok(Verdict::Drop));
        drop(buf);
    }
}
