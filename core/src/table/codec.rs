//! A table cell's limiter state as [`BUF_WORDS`] plain `u32` words.
//!
//! | word | meaning |
//! | --- | --- |
//! | 0 | bits 0-3 algorithm, bit 4 first-event anchor, bit 5 window open, bits 6-7 [`MaxZero`] |
//! | 1 | limit / max (as u32 bits) / GCRA rate |
//! | 2-3 | window interval ns / GCRA period / SLOTS: earliest lease expiry |
//! | 4-5 | window start / GCRA TAT |
//! | 6 | window counter / SLOTS usage |
//! | 7 | last window counter / SLOTS unmatched releases |
//! | 8 | RED load / GCRA burst / SLOTS slots held by leases |
//!
//! Aligned windows take their epoch from the table header.

use crate::window::{WindowCounter, WindowState};
use crate::{
    Algorithm, Anchor, Error, Feedback, Gcra, IntervalLimit, Limiter, MaxZero, Network, Nop, Red,
    RedProportional, SlidingWindow, Slots, Taildrop, Window,
};

/// Words per state buffer.
pub(crate) const BUF_WORDS: usize = 9;

/// What one table entry holds: a limiter, plus lease bookkeeping for SLOTS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cell {
    pub limiter: Limiter,
    /// SLOTS: how many of the held slots belong to leases.
    pub leased: u32,
    /// SLOTS: earliest expiry among this entry's leases (u64::MAX: none).
    pub next_expiry: u64,
}

impl Cell {
    pub(crate) const fn new(limiter: Limiter) -> Cell {
        Cell {
            limiter,
            leased: 0,
            next_expiry: u64::MAX,
        }
    }
}

/// A 64-bit value as (low, high) `u32` halves.
#[inline(always)]
pub(crate) fn split(v: u64) -> (u32, u32) {
    (v as u32, (v >> 32) as u32)
}

/// The 64-bit value of (low, high) `u32` halves.
#[inline(always)]
pub(crate) fn join(lo: u32, hi: u32) -> u64 {
    u64::from(lo) | (u64::from(hi) << 32)
}

#[inline(always)]
fn put_counter(w: &mut [u32; BUF_WORDS], c: &WindowCounter) {
    if matches!(c.window.anchor(), Anchor::FirstEvent) {
        w[0] |= 1 << 4;
    }
    if c.state.open {
        w[0] |= 1 << 5;
    }
    (w[2], w[3]) = split(c.window.interval());
    (w[4], w[5]) = split(c.state.start);
    w[6] = c.counter;
    w[7] = c.last;
}

#[inline(always)]
fn get_counter(w: &[u32; BUF_WORDS], epoch: u64) -> Result<WindowCounter, Error> {
    let anchor = if w[0] & (1 << 4) != 0 {
        Anchor::FirstEvent
    } else {
        Anchor::Aligned { epoch }
    };
    let window = Window::new(join(w[2], w[3]), anchor).map_err(|_| Error::Corrupt)?;
    Ok(WindowCounter {
        window,
        state: WindowState {
            start: join(w[4], w[5]),
            open: w[0] & (1 << 5) != 0,
        },
        counter: w[6],
        last: w[7],
    })
}

#[inline(always)]
pub(crate) fn encode(cell: &Cell) -> [u32; BUF_WORDS] {
    let mut w = [0u32; BUF_WORDS];
    w[0] = cell.limiter.algorithm() as u32;
    match &cell.limiter {
        Limiter::Taildrop(l) => {
            w[1] = l.limit;
            put_counter(&mut w, &l.counter);
        }
        Limiter::Red(l) => {
            w[1] = l.limit;
            w[8] = l.load;
            put_counter(&mut w, &l.counter);
        }
        Limiter::Feedback(l) => put_counter(&mut w, &l.counter),
        Limiter::Network(l) => {
            w[1] = l.limit;
            put_counter(&mut w, &l.counter);
        }
        Limiter::Nop(l) => put_counter(&mut w, &l.counter),
        Limiter::Interval(l) => {
            w[1] = l.max as u32;
            w[0] |= (match l.zero {
                MaxZero::RefuseAll => 0,
                MaxZero::ModHash => 1,
                MaxZero::Unlimited => 2,
            }) << 6;
            put_counter(&mut w, &l.counter);
        }
        Limiter::Slots(s) => {
            w[1] = s.max as u32;
            (w[2], w[3]) = split(cell.next_expiry);
            w[6] = s.usage;
            w[7] = s.unmatched;
            w[8] = cell.leased;
        }
        Limiter::Gcra(g) => {
            w[1] = g.rate;
            (w[2], w[3]) = split(g.period);
            (w[4], w[5]) = split(g.tat);
            w[8] = g.burst;
        }
        Limiter::RedProportional(l) => {
            w[1] = l.limit;
            put_counter(&mut w, &l.counter);
        }
        Limiter::Sliding(l) => {
            w[1] = l.limit;
            put_counter(&mut w, &l.counter);
        }
    }
    w
}

pub(crate) fn decode(w: &[u32; BUF_WORDS], epoch: u64) -> Result<Cell, Error> {
    let algorithm = Algorithm::from_u8((w[0] & 0xf) as u8).ok_or(Error::Corrupt)?;
    decode_as(algorithm, w, epoch)
}

/// [`decode`] of words whose algorithm (bits 0-3 of word 0) the caller has
/// already read as `algorithm`. Always inlined: with `algorithm` a constant,
/// the compiler keeps only its arm, here and in the limiter calls after it.
#[inline(always)]
pub(crate) fn decode_as(
    algorithm: Algorithm,
    w: &[u32; BUF_WORDS],
    epoch: u64,
) -> Result<Cell, Error> {
    let mut cell = Cell::new(Limiter::Nop(Nop::new(Window::aligned(1, 0)?)));
    cell.limiter = match algorithm {
        Algorithm::Taildrop => Limiter::Taildrop(Taildrop {
            limit: w[1],
            counter: get_counter(w, epoch)?,
        }),
        Algorithm::Red => {
            if w[1] == 0 {
                return Err(Error::Corrupt);
            }
            Limiter::Red(Red {
                limit: w[1],
                load: w[8],
                counter: get_counter(w, epoch)?,
            })
        }
        Algorithm::Feedback => Limiter::Feedback(Feedback {
            counter: get_counter(w, epoch)?,
        }),
        Algorithm::Network => Limiter::Network(Network {
            limit: w[1],
            counter: get_counter(w, epoch)?,
        }),
        Algorithm::Nop => Limiter::Nop(Nop {
            counter: get_counter(w, epoch)?,
        }),
        Algorithm::Interval => Limiter::Interval(IntervalLimit {
            max: w[1] as i32,
            zero: match (w[0] >> 6) & 3 {
                0 => MaxZero::RefuseAll,
                1 => MaxZero::ModHash,
                2 => MaxZero::Unlimited,
                _ => return Err(Error::Corrupt),
            },
            counter: get_counter(w, epoch)?,
        }),
        Algorithm::Slots => {
            cell.next_expiry = join(w[2], w[3]);
            cell.leased = w[8];
            if cell.leased > w[6] {
                return Err(Error::Corrupt);
            }
            Limiter::Slots(Slots {
                max: w[1] as i32,
                usage: w[6],
                unmatched: w[7],
            })
        }
        Algorithm::Gcra => {
            let mut g = Gcra::new(w[1], join(w[2], w[3]), w[8]).map_err(|_| Error::Corrupt)?;
            g.restore_tat(join(w[4], w[5]));
            Limiter::Gcra(g)
        }
        Algorithm::RedProportional => {
            if w[1] == 0 {
                return Err(Error::Corrupt);
            }
            Limiter::RedProportional(RedProportional {
                limit: w[1],
                counter: get_counter(w, epoch)?,
            })
        }
        Algorithm::Sliding => Limiter::Sliding(SlidingWindow {
            limit: w[1],
            counter: get_counter(w, epoch)?,
        }),
    };
    Ok(cell)
}

/// The epoch [`each_kind`]'s aligned windows start at.
#[cfg(test)]
pub(crate) const TEST_EPOCH: u64 = 12_345;

/// Calls `f` with every algorithm's new limiter (limit 7; FEEDBACK 50),
/// once with windows aligned to [`TEST_EPOCH`] and once with windows from
/// the first event, for tests of the encodings.
#[cfg(test)]
pub(crate) fn each_kind(mut f: impl FnMut(Algorithm, Limiter)) {
    let windows = [
        Window::aligned(1000, TEST_EPOCH).unwrap(),
        Window::first_event(777).unwrap(),
    ];
    for window in windows {
        for a in Algorithm::ALL {
            let limit = if a == Algorithm::Feedback { 50 } else { 7 };
            f(a, Limiter::new(a, limit, window).unwrap());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Shared;

    #[test]
    fn every_kind_round_trips_with_state() {
        let epoch = TEST_EPOCH;
        each_kind(|a, mut l| {
            for t in [epoch, epoch + 5, epoch + 1500, epoch + 1501, epoch + 9000] {
                let _ = l.check(t, &Shared::default());
                let _ = l.acquire();
            }
            let mut cell = Cell::new(l);
            if a == Algorithm::Slots {
                cell.leased = 2;
                cell.next_expiry = 99;
            }
            assert_eq!(decode(&encode(&cell), epoch), Ok(cell), "{a:?}");
        });
        let aligned = Window::aligned(1000, epoch).unwrap();
        let l = IntervalLimit::new(0, aligned, MaxZero::Unlimited);
        let cell = Cell::new(Limiter::Interval(l));
        assert_eq!(decode(&encode(&cell), epoch), Ok(cell));
        let l = IntervalLimit::new(-3, Window::first_event(777).unwrap(), MaxZero::ModHash);
        let cell = Cell::new(Limiter::Interval(l));
        assert_eq!(decode(&encode(&cell), epoch), Ok(cell));
    }

    #[test]
    fn garbage_is_corrupt_not_a_panic() {
        let bad = [
            [15, 0, 0, 0, 0, 0, 0, 0, 0],
            [0, 1, 0, 0, 0, 0, 0, 0, 0],
            [1, 0, 5, 0, 0, 0, 0, 0, 0],
            [5 | (3 << 6), 1, 5, 0, 0, 0, 0, 0, 0],
            [6, 1, 0, 0, 0, 0, 1, 0, 2],
            [7, 0, 5, 0, 0, 0, 0, 0, 1],
            [8, 0, 5, 0, 0, 0, 0, 0, 1],
        ];
        for w in bad {
            assert_eq!(decode(&w, 0), Err(Error::Corrupt), "{w:?}");
        }
    }
}
