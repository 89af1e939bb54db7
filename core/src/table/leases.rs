//! Slots with leases: a handle per held slot, idempotent release, and a
//! maximum hold time after which the slot is reclaimed lazily.
//!
//! A lease record (in the table's lease area) names its entry and that
//! entry's generation, its expiry, and its own generation, which every claim
//! bumps. A [`Lease`] handle is (record, generation): releasing it a second
//! time, or after it expired, or after the entry was deleted, finds the
//! record free or reused and does nothing ([`LeaseRelease::AlreadyReleased`]).
//!
//! Records of an entry only change under that entry's lock. A record is
//! claimed with a compare-and-swap from free to "pending", filled in, then
//! marked held; the entry's own count of leased slots is committed with its
//! buffer. If a holder dies half-way, whoever takes its lock over recounts
//! the held records of that entry and frees its pending ones, so the count
//! always matches the records. A lease whose acquirer died after marking it
//! held, but before returning the handle, stays held until it expires.
//!
//! Expired leases are reclaimed by the next successful operation on their
//! entry (acquire, release, usage, lease calls, balance, set, reset): it
//! sees the count without them and frees their records as it commits; a
//! failed operation frees nothing. Listings (`get`, `iter`) and
//! `clean_unused` do not reclaim, so they still count a lease that expired
//! but was not reclaimed yet. Each entry keeps the earliest expiry of its
//! leases, so no scan happens before one is due.

use super::codec::Cell;
use super::layout::*;
use super::lock::Ordering;
use super::{Guard, Table};
use crate::{Error, Limiter, SlotVerdict, Slots};

/// A held slot's handle. Plain data: store it anywhere, send it to another
/// process of the same table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Lease {
    record: u32,
    gen: u32,
}

impl Lease {
    /// The handle as one `u64` (for C and for storage).
    pub const fn to_bits(self) -> u64 {
        (self.record as u64) << 32 | self.gen as u64
    }

    /// A handle from [`Lease::to_bits`].
    pub const fn from_bits(bits: u64) -> Lease {
        Lease {
            record: (bits >> 32) as u32,
            gen: bits as u32,
        }
    }
}

/// The result of a lease acquisition.
#[must_use = "an acquired lease must be released (or left to expire)"]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LeaseVerdict {
    /// A slot was taken; the handle releases it.
    Acquired(Lease),
    /// No slot was free; nothing was taken.
    Refused,
}

/// What a lease release did.
#[must_use]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LeaseRelease {
    /// The lease's slot was given back.
    Released,
    /// The handle names no held lease (released before, expired, or its
    /// entry deleted): nothing changed.
    AlreadyReleased,
}

fn expiry(rec: &[super::lock::AtomicU32; LEASE_WORDS]) -> u64 {
    u64::from(rec[L_EXPIRY].load(Ordering::Relaxed))
        | (u64::from(rec[L_EXPIRY + 1].load(Ordering::Relaxed)) << 32)
}

/// Claims a record for a new lease of entry `idx` (generation `gen`), under
/// its lock: a free record, or else an expired lease of one of the locked
/// entries in `reusable` (entry, generation), whose slot [`plan_reclaim`]
/// already took off that entry's count; [`apply_reclaim`] then leaves it
/// alone, since it no longer names that entry.
fn claim(
    t: &Table<'_>,
    idx: usize,
    gen: u32,
    expires: u64,
    now: u64,
    reusable: &[(usize, u32)],
) -> Result<Lease, Error> {
    let n = t.leases.len();
    if n == 0 {
        return Err(Error::LeasesFull);
    }
    let owner = idx as u32 + 1;
    let start = t.hdr[H_LEASE_HINT].fetch_add(1, Ordering::Relaxed) as usize % n;
    for i in 0..n {
        let r = (start + i) % n;
        if t.leases[r][L_OWNER]
            .compare_exchange(
                0,
                LEASE_PENDING | owner,
                Ordering::Acquire,
                Ordering::Relaxed,
            )
            .is_ok()
        {
            return Ok(fill(t, r, owner, gen, expires));
        }
    }
    for (r, rec) in t.leases.iter().enumerate() {
        let o = rec[L_OWNER].load(Ordering::Acquire);
        let egen = rec[L_ENTRY_GEN].load(Ordering::Relaxed);
        if reusable
            .iter()
            .any(|&(i, g)| o == i as u32 + 1 && egen == g)
            && expired(expiry(rec), now)
        {
            rec[L_OWNER].store(LEASE_PENDING | owner, Ordering::Relaxed);
            return Ok(fill(t, r, owner, gen, expires));
        }
    }
    Err(Error::LeasesFull)
}

/// Fills in record `r`, which this caller holds as pending, and marks it held.
fn fill(t: &Table<'_>, r: usize, owner: u32, gen: u32, expires: u64) -> Lease {
    let rec = &t.leases[r];
    let lgen = rec[L_GEN].load(Ordering::Relaxed).wrapping_add(1);
    rec[L_GEN].store(lgen, Ordering::Relaxed);
    rec[L_ENTRY_GEN].store(gen, Ordering::Relaxed);
    rec[L_EXPIRY].store(expires as u32, Ordering::Relaxed);
    rec[L_EXPIRY + 1].store((expires >> 32) as u32, Ordering::Relaxed);
    rec[L_OWNER].store(owner, Ordering::Release);
    Lease {
        record: r as u32,
        gen: lgen,
    }
}

/// Whether a lease expiring at `exp` has expired at `now`. `u64::MAX` never
/// does: it stands for a lease held until released, or one whose hold runs
/// past the end of time (`now + hold_ns` saturated).
fn expired(exp: u64, now: u64) -> bool {
    exp != u64::MAX && exp <= now
}

/// Whether some lease record is free now.
fn has_free_record(t: &Table<'_>) -> bool {
    t.leases
        .iter()
        .any(|rec| rec[L_OWNER].load(Ordering::Relaxed) == 0)
}

/// Takes the expired leases of the locked SLOTS entry `idx` off the counts
/// in `cell` (records untouched) and returns whether there were any: then
/// [`apply_reclaim`] must free their records when the operation commits.
/// A failed operation commits nothing and frees nothing.
#[inline(always)]
pub(crate) fn plan_reclaim(t: &Table<'_>, idx: usize, gen: u32, cell: &mut Cell, now: u64) -> bool {
    if cell.next_expiry > now || !matches!(cell.limiter, Limiter::Slots(_)) {
        return false;
    }
    // Out of line and by value, so that callers keep `cell` in registers.
    let (freed, next) = scan_expired(t, idx, gen, now);
    take(cell, freed);
    cell.next_expiry = next;
    freed > 0
}

/// How many of entry `idx`'s lease records expired by `now`, and the
/// earliest expiry among the others (`u64::MAX`: none).
#[inline(never)]
fn scan_expired(t: &Table<'_>, idx: usize, gen: u32, now: u64) -> (u32, u64) {
    let owner = idx as u32 + 1;
    let mut freed = 0u32;
    let mut next = u64::MAX;
    for rec in t.leases {
        if rec[L_OWNER].load(Ordering::Acquire) != owner
            || rec[L_ENTRY_GEN].load(Ordering::Relaxed) != gen
        {
            continue;
        }
        let exp = expiry(rec);
        if expired(exp, now) {
            freed += 1;
        } else {
            next = next.min(exp);
        }
    }
    (freed, next)
}

/// Frees the records of entry `idx`'s leases expired by `now`, under its
/// lock, right before the cell [`plan_reclaim`] adjusted is committed. A
/// holder killed in between leaves records freed and the count not yet
/// lowered; whoever takes its lock over recounts.
pub(crate) fn apply_reclaim(t: &Table<'_>, idx: usize, gen: u32, now: u64) {
    let owner = idx as u32 + 1;
    for rec in t.leases {
        if rec[L_OWNER].load(Ordering::Acquire) == owner
            && rec[L_ENTRY_GEN].load(Ordering::Relaxed) == gen
            && expired(expiry(rec), now)
        {
            rec[L_OWNER].store(0, Ordering::Release);
        }
    }
}

/// Takes `n` leased slots off `cell`'s counts.
#[inline(always)]
fn take(cell: &mut Cell, n: u32) {
    cell.leased = cell.leased.saturating_sub(n);
    if let Limiter::Slots(s) = &mut cell.limiter {
        s.usage = s.usage.saturating_sub(n);
    }
}

/// Frees every record of entry `idx` (the entry is being deleted).
pub(crate) fn free_all_of(t: &Table<'_>, idx: usize) {
    let owner = idx as u32 + 1;
    for rec in t.leases {
        if rec[L_OWNER].load(Ordering::Acquire) & !LEASE_PENDING == owner {
            rec[L_OWNER].store(0, Ordering::Release);
        }
    }
}

/// After taking over a dead holder's lock: makes the entry's leased count
/// match its held records and frees records it left pending or stale.
/// Returns whether `cell` changed.
pub(crate) fn recount(t: &Table<'_>, g: &Guard<'_>, cell: &mut Cell) -> bool {
    let owner = g.idx as u32 + 1;
    let gen = g.gen();
    let mut held = 0u32;
    let mut next = u64::MAX;
    for rec in t.leases {
        let o = rec[L_OWNER].load(Ordering::Acquire);
        if o & !LEASE_PENDING != owner {
            continue;
        }
        if o & LEASE_PENDING != 0 || rec[L_ENTRY_GEN].load(Ordering::Relaxed) != gen {
            rec[L_OWNER].store(0, Ordering::Release);
        } else {
            held += 1;
            next = next.min(expiry(rec));
        }
    }
    let before = *cell;
    if let Limiter::Slots(s) = &mut cell.limiter {
        let plain = s.usage.saturating_sub(cell.leased);
        s.usage = plain.saturating_add(held);
        cell.leased = held;
        cell.next_expiry = next;
    }
    *cell != before
}

impl Table<'_> {
    /// Takes a slot of `key` under `max` (as [`Table::acquire`]) and returns
    /// a lease handle for it. With `hold_ns`, the slot is reclaimed once
    /// `hold_ns` have passed without a release (measured by the `now` of
    /// later calls); `None` holds it until released. [`Error::ZeroInterval`]
    /// for a hold of 0, [`Error::LeasesFull`] if no record is free (then
    /// nothing is taken).
    pub fn lease_acquire(
        &self,
        key: &[u8],
        max: i32,
        hold_ns: Option<u64>,
        now: u64,
    ) -> Result<LeaseVerdict, Error> {
        let expires = expiry_of(hold_ns, now)?;
        let k = self.key(key)?;
        let (mut g, _) = self.find_or_insert(&k, now, || {
            let s = Slots::new(max);
            // No record for the lease: fail before creating (or evicting) anything.
            if s.has_room() && !has_free_record(self) {
                return Err(Error::LeasesFull);
            }
            Ok(Cell::new(Limiter::Slots(s)))
        })?;
        // Leases are counted under the lock: a hot entry becomes a locked
        // one (another algorithm stays as it is, and is refused below).
        self.hot_to_locked(&mut g)?;
        let (idx, gen) = (g.idx, g.gen());
        self.update(g, now, |c| {
            let Limiter::Slots(s) = &mut c.limiter else {
                return Err(Error::WrongAlgorithm);
            };
            s.set_max(max);
            lease_one(self, idx, gen, c, expires, now, &[(idx, gen)])
        })
    }

    /// Releases a lease. Idempotent: a second release, or one after the
    /// lease expired or its entry was deleted, is
    /// [`LeaseRelease::AlreadyReleased`] and changes nothing.
    pub fn lease_release(&self, lease: Lease, now: u64) -> Result<LeaseRelease, Error> {
        let Some(rec) = self.leases.get(lease.record as usize) else {
            return Ok(LeaseRelease::AlreadyReleased);
        };
        let owner = rec[L_OWNER].load(Ordering::Acquire);
        let idx = owner.wrapping_sub(1) as usize;
        if owner == 0 || owner & LEASE_PENDING != 0 || idx >= self.entries.len() {
            return Ok(LeaseRelease::AlreadyReleased);
        }
        let g = self.lock_idx(idx)?;
        let gen = g.gen();
        if rec[L_OWNER].load(Ordering::Acquire) != owner
            || rec[L_GEN].load(Ordering::Relaxed) != lease.gen
            || rec[L_ENTRY_GEN].load(Ordering::Relaxed) != gen
            || meta_state(g.e[E_META].load(Ordering::Relaxed)) != STATE_USED
            // A hot entry holds no lease (its first one made it locked).
            || g.hot()
            // Expired by `now` but not reclaimed yet: as documented, a
            // release after expiry changes nothing (the next acquire,
            // release, usage or balance on the entry reclaims it).
            || expired(expiry(rec), now)
        {
            return Ok(LeaseRelease::AlreadyReleased);
        }
        self.update(g, now, |c| {
            rec[L_OWNER].store(0, Ordering::Release);
            take(c, 1);
            Ok(LeaseRelease::Released)
        })
    }
}

impl Table<'_> {
    /// Releases one lease of `key` without its handle: the held one that
    /// would expire first (an operator's `release KEY` when the channel
    /// that held the handle is gone). [`LeaseRelease::AlreadyReleased`] if
    /// the key holds no unexpired lease; [`Error::NoPipe`] if it does not
    /// exist, [`Error::WrongAlgorithm`] if it is not SLOTS.
    pub fn release_lease_of(&self, key: &[u8], now: u64) -> Result<LeaseRelease, Error> {
        let k = self.key(key)?;
        let g = self.find(&k)?;
        if g.hot() {
            // No lease: its first one would have made it a locked entry.
            return self.update(g, now, |c| match c.limiter {
                Limiter::Slots(_) => Ok(LeaseRelease::AlreadyReleased),
                _ => Err(Error::WrongAlgorithm),
            });
        }
        let (owner, gen) = (g.idx as u32 + 1, g.gen());
        self.update(g, now, |c| {
            if !matches!(c.limiter, Limiter::Slots(_)) {
                return Err(Error::WrongAlgorithm);
            }
            let first = self
                .leases
                .iter()
                .filter(|r| {
                    r[L_OWNER].load(Ordering::Acquire) == owner
                        && r[L_ENTRY_GEN].load(Ordering::Relaxed) == gen
                        && !expired(expiry(r), now)
                })
                .min_by_key(|r| expiry(r));
            let Some(rec) = first else {
                return Ok(LeaseRelease::AlreadyReleased);
            };
            rec[L_OWNER].store(0, Ordering::Release);
            take(c, 1);
            Ok(LeaseRelease::Released)
        })
    }
}

pub(crate) fn expiry_of(hold_ns: Option<u64>, now: u64) -> Result<u64, Error> {
    match hold_ns {
        Some(0) => Err(Error::ZeroInterval),
        Some(h) => Ok(now.saturating_add(h)),
        None => Ok(u64::MAX),
    }
}

/// Takes one leased slot on the locked SLOTS entry `idx` if it has room.
#[inline(always)]
pub(crate) fn lease_one(
    t: &Table<'_>,
    idx: usize,
    gen: u32,
    c: &mut Cell,
    expires: u64,
    now: u64,
    reusable: &[(usize, u32)],
) -> Result<LeaseVerdict, Error> {
    let Limiter::Slots(s) = &mut c.limiter else {
        return Err(Error::WrongAlgorithm);
    };
    if !s.has_room() {
        return Ok(LeaseVerdict::Refused);
    }
    let lease = claim(t, idx, gen, expires, now, reusable)?;
    let verdict = s.acquire();
    debug_assert_eq!(verdict, SlotVerdict::Acquired);
    c.leased += 1;
    c.next_expiry = c.next_expiry.min(expires);
    Ok(LeaseVerdict::Acquired(lease))
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::super::{Config, Owner, Table};
    use super::*;
    use crate::{Error, Release, SlotVerdict};

    #[test]
    fn release_lease_of_frees_the_lease_expiring_first() {
        let c = Config::new(8, 1_000);
        let mut buf = vec![0u8; Table::size_for(&c).unwrap() + 8];
        let off = buf.as_ptr().align_offset(8);
        let len = buf.len() - 8;
        let t = Table::init_in(&mut buf[off..off + len], &c, Owner::SINGLE_PROCESS).unwrap();
        assert_eq!(t.release_lease_of(b"node", 0), Err(Error::NoPipe));
        let LeaseVerdict::Acquired(late) = t.lease_acquire(b"node", 3, Some(500), 0).unwrap()
        else {
            panic!("refused")
        };
        let LeaseVerdict::Acquired(early) = t.lease_acquire(b"node", 3, Some(100), 0).unwrap()
        else {
            panic!("refused")
        };
        assert_eq!(t.acquire(b"node", 3, 0), Ok(SlotVerdict::Acquired));
        assert_eq!(t.release_lease_of(b"node", 1), Ok(LeaseRelease::Released));
        assert_eq!(t.lease_release(early, 2), Ok(LeaseRelease::AlreadyReleased));
        assert_eq!(
            t.usage(b"node", 2),
            Ok(2),
            "the plain slot and the later lease"
        );
        assert_eq!(t.release_lease_of(b"node", 3), Ok(LeaseRelease::Released));
        assert_eq!(t.lease_release(late, 4), Ok(LeaseRelease::AlreadyReleased));
        assert_eq!(
            t.release_lease_of(b"node", 5),
            Ok(LeaseRelease::AlreadyReleased)
        );
        assert_eq!(t.release(b"node", 6), Ok(Release::Released));
        assert_eq!(t.usage(b"node", 7), Ok(0));
        // A lease that expired is not released again (its slot is reclaimed).
        let LeaseVerdict::Acquired(_) = t.lease_acquire(b"node", 3, Some(10), 100).unwrap() else {
            panic!("refused")
        };
        assert_eq!(
            t.release_lease_of(b"node", 110),
            Ok(LeaseRelease::AlreadyReleased)
        );
        assert_eq!(t.usage(b"node", 111), Ok(0));
        let _ = t.check_or_create(b"rate", crate::Algorithm::Taildrop, 1, 0);
        assert_eq!(t.release_lease_of(b"rate", 0), Err(Error::WrongAlgorithm));
    }
}
