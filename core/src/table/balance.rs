//! Hub balancing (app_rpt): take a slot on the least-loaded member of a
//! group of keys (virtual nodes), atomically, under a per-member and a group
//! total maximum.
//!
//! All members are locked at once, in ascending slot order (so two balancers
//! never deadlock), their usage read, the choice made and the slot taken
//! before any lock is released: two links connecting at once can never both
//! see the same counts. Ties go to the member listed first. When every member
//! is full, or the group total is reached, the verdict is
//! [`Balanced::Full`] and nothing changes: send the link to the dump node.

use super::codec::{self, Cell};
use super::layout::*;
use super::lock::Ordering;
use super::{leases, Guard, Key, Lease, LeaseVerdict, Table, MAX_MEMBERS};
use crate::{slots, Algorithm, Error, Limiter, Slots};

/// The verdict of a balanced acquisition.
#[must_use = "an acquired slot must be released; Full means: send to the dump node"]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Balanced {
    /// A slot was taken on `members[member]`; with a lease if one was asked for.
    Acquired {
        /// Index into the members given.
        member: usize,
        /// The lease handle, for [`Table::balance_lease`].
        lease: Option<Lease>,
    },
    /// Every member is at its max, or the group is at its total: nothing taken.
    Full,
}

impl Table<'_> {
    /// Takes a plain slot (release it with [`Table::release`] on the chosen
    /// member's key) on the least-loaded of `members`, each under
    /// `per_member_max` and all together under `total_max` (negative: no
    /// total limit). Members that do not exist yet are created as SLOTS;
    /// [`Error::Full`] if the table cannot hold them all at once.
    pub fn balance_acquire(
        &self,
        members: &[&[u8]],
        per_member_max: i32,
        total_max: i32,
        now: u64,
    ) -> Result<Balanced, Error> {
        self.balance(members, per_member_max, total_max, None, now)
    }

    /// As [`Table::balance_acquire`], with a lease (see
    /// [`Table::lease_acquire`] for `hold_ns`).
    pub fn balance_lease(
        &self,
        members: &[&[u8]],
        per_member_max: i32,
        total_max: i32,
        hold_ns: Option<u64>,
        now: u64,
    ) -> Result<Balanced, Error> {
        let expires = leases::expiry_of(hold_ns, now)?;
        self.balance(members, per_member_max, total_max, Some(expires), now)
    }

    fn balance(
        &self,
        members: &[&[u8]],
        per_max: i32,
        total_max: i32,
        lease_expiry: Option<u64>,
        now: u64,
    ) -> Result<Balanced, Error> {
        let n = members.len();
        if n == 0 || n > MAX_MEMBERS {
            return Err(Error::InvalidGroup);
        }
        let mut keys = [None::<Key>; MAX_MEMBERS];
        for (i, m) in members.iter().enumerate() {
            let k = self.key(m)?;
            // Equal keys have equal hashes: most pairs differ right there.
            if keys[..i]
                .iter()
                .flatten()
                .any(|o| o.hash == k.hash && o.bytes == k.bytes)
            {
                return Err(Error::DuplicateMember);
            }
            keys[i] = Some(k);
        }
        let keys = &keys[..n];
        let mut guards: [Option<Guard<'_>>; MAX_MEMBERS] = Default::default();
        let mut shared_slot = 0;
        'resolve: loop {
            let mut order = [(usize::MAX, 0usize); MAX_MEMBERS];
            for (i, k) in keys.iter().enumerate() {
                let k = k.as_ref().ok_or(Error::InvalidGroup)?;
                // Found members are not locked here (they are below, in
                // order, and checked again); new ones are created.
                let idx = match self.locate(k) {
                    Some(idx) => idx,
                    None => {
                        self.find_or_insert(k, now, || {
                            Ok(Cell::new(Limiter::Slots(Slots::new(per_max))))
                        })?
                        .0
                        .idx
                    }
                };
                order[i] = (idx, i);
            }
            let order = &mut order[..n];
            order.sort_unstable();
            if order.windows(2).any(|w| w[0].0 == w[1].0) {
                // A member was inserted in the slot of another one, evicted
                // (by that very insert when the table is full) or removed
                // since: locking that slot twice would wait on ourselves.
                // Retry; members that keep evicting each other do not fit.
                shared_slot += 1;
                if shared_slot == 4 {
                    return Err(Error::Full);
                }
                continue 'resolve;
            }
            for &(idx, i) in order.iter() {
                // Busy: the guards taken so far unlock as they drop.
                guards[i] = Some(self.lock_idx(idx)?);
            }
            for (i, k) in keys.iter().enumerate() {
                let (Some(g), Some(k)) = (&guards[i], k) else {
                    return Err(Error::InvalidGroup);
                };
                let m = g.e[E_META].load(Ordering::Relaxed);
                if !self.matches(g.idx, k, m) {
                    // Evicted or removed between creation and locking.
                    guards = Default::default();
                    continue 'resolve;
                }
            }
            break;
        }
        let mut cells = [None::<Cell>; MAX_MEMBERS];
        let mut due = [false; MAX_MEMBERS];
        // Every member must be SLOTS before anything is planned; a hot
        // one becomes a locked one (a hub is counted under its locks).
        for i in 0..n {
            let g = guards[i].as_mut().ok_or(Error::InvalidGroup)?;
            self.hot_to_locked(g)?;
            let g = &*g;
            let w = g.read();
            if g.hot() || w[0] & 0xf != Algorithm::Slots as u32 {
                // Another algorithm (or a corrupt word, which decode names).
                self.cell(g)?;
                return Err(Error::WrongAlgorithm);
            }
            cells[i] = Some(codec::decode_as(Algorithm::Slots, &w, self.epoch)?);
        }
        let mut held = [Slots::new(0); MAX_MEMBERS];
        for i in 0..n {
            let g = guards[i].as_ref().ok_or(Error::InvalidGroup)?;
            let cell = cells[i].as_mut().ok_or(Error::InvalidGroup)?;
            // Expired leases leave the counts now; their records are freed
            // below only if this balance commits (an error frees nothing).
            due[i] = leases::plan_reclaim(self, g.idx, g.gen(), cell, now);
            let Limiter::Slots(s) = &mut cell.limiter else {
                return Err(Error::WrongAlgorithm);
            };
            s.set_max(per_max);
            held[i] = *s;
        }
        let mut verdict = Balanced::Full;
        if let Some(i) = slots::least_loaded(held.into_iter().take(n), total_max) {
            let g = guards[i].as_ref().ok_or(Error::InvalidGroup)?;
            let (idx, gen) = (g.idx, g.gen());
            let cell = cells[i].as_mut().ok_or(Error::InvalidGroup)?;
            let lease = match lease_expiry {
                Some(exp) => {
                    // Any member's planned-for-reclaim record may serve.
                    let mut reusable = [(0usize, 0u32); MAX_MEMBERS];
                    let mut m = 0;
                    for (j, g) in guards.iter().enumerate().take(n) {
                        if let (true, Some(g)) = (due[j], g) {
                            reusable[m] = (g.idx, g.gen());
                            m += 1;
                        }
                    }
                    match leases::lease_one(self, idx, gen, cell, exp, now, &reusable[..m])? {
                        LeaseVerdict::Acquired(l) => Some(l),
                        LeaseVerdict::Refused => return Err(Error::Corrupt),
                    }
                }
                None => {
                    if let Limiter::Slots(s) = &mut cell.limiter {
                        let _ = s.acquire();
                    }
                    None
                }
            };
            verdict = Balanced::Acquired { member: i, lease };
        }
        for i in 0..n {
            if let (Some(g), Some(cell)) = (guards[i].take(), cells[i]) {
                if due[i] {
                    leases::apply_reclaim(self, g.idx, g.gen(), now);
                }
                g.commit(&cell);
            }
        }
        Ok(verdict)
    }
}
