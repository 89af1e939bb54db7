//! Concurrent slots (FreeSWITCH `limit` without interval, app_rpt link counts).
//!
//! A call or link takes a slot on entry ([`Slots::acquire`]) and gives it back
//! when it ends ([`Slots::release`]). `acquire` is refused iff
//! `max >= 0 && usage + 1 > max`, so `max == 0` refuses everything and
//! `max < 0` counts only. A release at zero never takes the count below zero;
//! it is counted as an unmatched release instead, which an operator can read.
//!
//! Slots have no time: they are held until released. A table adds leases
//! with a maximum hold time for callers that may vanish.
//!
//! Differences from FreeSWITCH mod_hash: this counter does not know who holds
//! a slot, so it cannot refuse a second acquire by the same channel; a table's
//! leases give each holder its own handle. The usage saturates at `u32::MAX`,
//! where even a count-only (`max < 0`) acquire is refused rather than wrap.

use crate::{Release, SlotVerdict};

/// A concurrent-slot counter. See the [module docs](self).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Slots {
    pub(crate) max: i32,
    pub(crate) usage: u32,
    pub(crate) unmatched: u32,
}

impl Slots {
    /// At most `max` slots at once (`max < 0`: count only; 0: refuse all).
    pub const fn new(max: i32) -> Slots {
        Slots {
            max,
            usage: 0,
            unmatched: 0,
        }
    }

    /// A counter with `usage` slots already held (for stores that count the
    /// holders themselves, such as leases).
    pub const fn held(max: i32, usage: u32) -> Slots {
        Slots {
            max,
            usage,
            unmatched: 0,
        }
    }

    /// Whether one more slot may be taken now.
    pub const fn has_room(&self) -> bool {
        if self.usage == u32::MAX {
            return false;
        }
        self.max < 0 || self.usage < self.max as u32
    }

    /// Takes a slot if there is room.
    pub fn acquire(&mut self) -> SlotVerdict {
        if self.has_room() {
            self.usage += 1;
            SlotVerdict::Acquired
        } else {
            SlotVerdict::Refused
        }
    }

    /// Gives a slot back; at zero the release is counted as unmatched.
    pub fn release(&mut self) -> Release {
        if self.usage == 0 {
            self.unmatched = self.unmatched.saturating_add(1);
            Release::Unmatched
        } else {
            self.usage -= 1;
            Release::Released
        }
    }

    /// Slots held now (FreeSWITCH `limit_usage`).
    pub const fn usage(&self) -> u32 {
        self.usage
    }

    /// Releases that found the count at zero.
    pub const fn unmatched_releases(&self) -> u32 {
        self.unmatched
    }

    /// The maximum (negative: count only).
    pub const fn max(&self) -> i32 {
        self.max
    }

    /// Replaces the maximum. Slots already held stay held even if they are
    /// now above it; new acquires wait until the usage is below it.
    pub fn set_max(&mut self, max: i32) {
        self.max = max;
    }
}

/// Hub balancing (app_rpt): which of `members` takes the next slot. The
/// member with the fewest slots held among those with room wins, ties to the
/// one listed first; `None` when none has room or the members together hold
/// `total_max` or more (`total_max < 0`: no total). Send the link to the
/// dump node then.
pub fn least_loaded<I: IntoIterator<Item = Slots>>(members: I, total_max: i32) -> Option<usize> {
    let mut total: u64 = 0;
    let mut best: Option<(u32, usize)> = None;
    for (i, s) in members.into_iter().enumerate() {
        total += u64::from(s.usage());
        if s.has_room() && best.is_none_or(|(u, _)| s.usage() < u) {
            best = Some((s.usage(), i));
        }
    }
    match best {
        Some((_, i)) if total_max < 0 || total < total_max as u64 => Some(i),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exclusive_room_of_three() {
        let mut s = Slots::new(3);
        let v: [SlotVerdict; 4] = core::array::from_fn(|_| s.acquire());
        assert_eq!(v[..3], [SlotVerdict::Acquired; 3]);
        assert_eq!(v[3], SlotVerdict::Refused);
        assert_eq!(s.usage(), 3);
        assert_eq!(s.release(), Release::Released);
        assert_eq!(s.acquire(), SlotVerdict::Acquired);
    }

    #[test]
    fn release_at_zero_is_unmatched_and_never_negative() {
        let mut s = Slots::new(2);
        assert_eq!(s.release(), Release::Unmatched);
        assert_eq!(s.release(), Release::Unmatched);
        assert_eq!((s.usage(), s.unmatched_releases()), (0, 2));
        assert_eq!(s.acquire(), SlotVerdict::Acquired);
        assert_eq!(s.release(), Release::Released);
        assert_eq!(s.unmatched_releases(), 2);
    }

    #[test]
    fn zero_refuses_negative_counts_only() {
        let mut z = Slots::new(0);
        assert_eq!(z.acquire(), SlotVerdict::Refused);
        let mut c = Slots::new(-1);
        for _ in 0..1000 {
            assert_eq!(c.acquire(), SlotVerdict::Acquired);
        }
        assert_eq!(c.usage(), 1000);
        c.usage = u32::MAX;
        assert_eq!(c.acquire(), SlotVerdict::Refused);
    }

    #[test]
    fn least_loaded_picks_fewest_ties_first_and_respects_the_total() {
        let m = |u: &[u32]| u.iter().map(|&u| Slots::held(2, u)).collect::<Vec<_>>();
        assert_eq!(least_loaded(m(&[1, 0, 0]), -1), Some(1));
        assert_eq!(least_loaded(m(&[0, 0]), -1), Some(0));
        assert_eq!(least_loaded(m(&[2, 2, 1]), -1), Some(2));
        assert_eq!(least_loaded(m(&[2, 2]), -1), None);
        assert_eq!(least_loaded(m(&[1, 1, 0]), 2), None);
        assert_eq!(least_loaded(m(&[1, 0, 0]), 2), Some(1));
        assert_eq!(least_loaded(m(&[]), 5), None);
        assert_eq!(least_loaded(m(&[0]), 0), None);
        assert!(!Slots::held(3, 3).has_room());
    }

    #[test]
    fn lowering_max_keeps_held_slots() {
        let mut s = Slots::new(5);
        for _ in 0..5 {
            let _ = s.acquire();
        }
        s.set_max(2);
        assert_eq!(s.max(), 2);
        assert_eq!(s.usage(), 5);
        assert_eq!(s.acquire(), SlotVerdict::Refused);
        for _ in 0..3 {
            let _ = s.release();
        }
        assert_eq!(s.acquire(), SlotVerdict::Refused);
        let _ = s.release();
        assert_eq!(s.acquire(), SlotVerdict::Acquired);
    }
}
