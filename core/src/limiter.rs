//! One type for a limiter of any kind, so pipes of different algorithms can
//! live side by side (in a table, in an array, behind one C handle).

use crate::{
    Error, Feedback, Gcra, IntervalLimit, MaxZero, Network, Nop, Red, RedProportional, Release,
    SlidingWindow, SlotVerdict, Slots, Taildrop, Verdict, Window,
};

/// How many `u32` words [`Limiter::to_words`] takes.
pub const STATE_WORDS: usize = crate::table::codec::BUF_WORDS;

/// The algorithms, with stable numeric values (used at the C boundary and in
/// shared memory: they never change).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Algorithm {
    /// Kamailio pipelimit TAILDROP: `limit` per interval.
    Taildrop = 0,
    /// Kamailio pipelimit RED (compatible).
    Red = 1,
    /// Kamailio pipelimit FEEDBACK (PID on CPU load).
    Feedback = 2,
    /// Kamailio pipelimit NETWORK (bytes waiting).
    Network = 3,
    /// Kamailio pipelimit NOP: counts, passes with its own verdict.
    Nop = 4,
    /// FreeSWITCH `max/interval`.
    Interval = 5,
    /// Concurrent slots (FreeSWITCH concurrent limit, app_rpt links).
    Slots = 6,
    /// GCRA (governor).
    Gcra = 7,
    /// Proportional RED (beyond the references).
    RedProportional = 8,
    /// Sliding-window counter (beyond the references).
    Sliding = 9,
}

impl Algorithm {
    /// Every algorithm, in numeric order.
    pub const ALL: [Algorithm; 10] = [
        Algorithm::Taildrop,
        Algorithm::Red,
        Algorithm::Feedback,
        Algorithm::Network,
        Algorithm::Nop,
        Algorithm::Interval,
        Algorithm::Slots,
        Algorithm::Gcra,
        Algorithm::RedProportional,
        Algorithm::Sliding,
    ];

    /// The name pipelimit's scripts and RPC use (`TAILDROP`, `RED`, ...);
    /// floodgate's own algorithms have names of the same form.
    pub const fn name(self) -> &'static str {
        match self {
            Algorithm::Taildrop => "TAILDROP",
            Algorithm::Red => "RED",
            Algorithm::Feedback => "FEEDBACK",
            Algorithm::Network => "NETWORK",
            Algorithm::Nop => "NOP",
            Algorithm::Interval => "INTERVAL",
            Algorithm::Slots => "SLOTS",
            Algorithm::Gcra => "GCRA",
            Algorithm::RedProportional => "REDP",
            Algorithm::Sliding => "SLIDING",
        }
    }

    /// Parses a name, ASCII case-insensitively (pipelimit itself wants upper case).
    pub fn from_name(name: &[u8]) -> Option<Algorithm> {
        Algorithm::ALL
            .into_iter()
            .find(|a| a.name().as_bytes().eq_ignore_ascii_case(name))
    }

    /// The algorithm with numeric value `v`, if any.
    pub const fn from_u8(v: u8) -> Option<Algorithm> {
        if (v as usize) < Algorithm::ALL.len() {
            Some(Algorithm::ALL[v as usize])
        } else {
            None
        }
    }
}

/// Values every pipe of a table shares: the FEEDBACK drop rate and the
/// NETWORK bytes waiting, both pushed by the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Shared {
    /// FEEDBACK drop rate in percent (0..=100).
    pub drop_rate: u8,
    /// Bytes waiting on the host's network queues.
    pub bytes_waiting: u64,
}

/// What listings print of a limiter (pl.list, pl.stats, limit_usage).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Stats {
    /// The algorithm.
    pub algorithm: Algorithm,
    /// The limit (TAILDROP limit, interval max, slots max, GCRA rate...).
    pub limit: i64,
    /// Events in the current window; slots: slots held; GCRA: 0.
    pub counter: u32,
    /// Events in the previous window; slots: unmatched releases; GCRA: 0.
    pub last_counter: u32,
    /// pipelimit's load: RED `last / limit`, NETWORK 1 or -1, else 0.
    pub load: i32,
}

/// A limiter of any kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Limiter {
    /// See [`Taildrop`].
    Taildrop(Taildrop),
    /// See [`Red`].
    Red(Red),
    /// See [`Feedback`].
    Feedback(Feedback),
    /// See [`Network`].
    Network(Network),
    /// See [`Nop`].
    Nop(Nop),
    /// See [`IntervalLimit`].
    Interval(IntervalLimit),
    /// See [`Slots`].
    Slots(Slots),
    /// See [`Gcra`].
    Gcra(Gcra),
    /// See [`RedProportional`].
    RedProportional(RedProportional),
    /// See [`SlidingWindow`].
    Sliding(SlidingWindow),
}

impl Limiter {
    /// A limiter from an algorithm and one limit, the way pipelimit's
    /// `pl_check(name, algorithm, limit)` and FreeSWITCH's `max/interval`
    /// describe one:
    ///
    /// | algorithm | `limit` means | range |
    /// | --- | --- | --- |
    /// | TAILDROP, SLIDING | requests per window | 0..=u32::MAX |
    /// | RED, REDP | requests per window | 1..=u32::MAX |
    /// | FEEDBACK | setpoint in percent (table-wide) | 0..=100 |
    /// | NETWORK | bytes waiting | 0..=u32::MAX |
    /// | NOP | ignored | any |
    /// | INTERVAL | max per window (<0 count only, 0 refuse all) | i32 |
    /// | SLOTS | max held (<0 count only, 0 refuse all) | i32 |
    /// | GCRA | cells per window, burst 1 | 1..=u32::MAX |
    ///
    /// Other values give [`Error::InvalidLimit`]. For other settings
    /// (GCRA burst, [`MaxZero`]) build the variant directly.
    pub fn new(algorithm: Algorithm, limit: i64, window: Window) -> Result<Limiter, Error> {
        let unsigned = || u32::try_from(limit).map_err(|_| Error::InvalidLimit);
        let signed = || i32::try_from(limit).map_err(|_| Error::InvalidLimit);
        Ok(match algorithm {
            Algorithm::Taildrop => Limiter::Taildrop(Taildrop::new(unsigned()?, window)),
            Algorithm::Red => Limiter::Red(Red::new(unsigned()?, window)?),
            Algorithm::Feedback => {
                if !(0..=100).contains(&limit) {
                    return Err(Error::InvalidLimit);
                }
                Limiter::Feedback(Feedback::new(window))
            }
            Algorithm::Network => Limiter::Network(Network::new(unsigned()?, window)),
            Algorithm::Nop => Limiter::Nop(Nop::new(window)),
            Algorithm::Interval => {
                Limiter::Interval(IntervalLimit::new(signed()?, window, MaxZero::RefuseAll))
            }
            Algorithm::Slots => Limiter::Slots(Slots::new(signed()?)),
            Algorithm::Gcra => Limiter::Gcra(Gcra::new(unsigned()?, window.interval(), 1)?),
            Algorithm::RedProportional => {
                Limiter::RedProportional(RedProportional::new(unsigned()?, window)?)
            }
            Algorithm::Sliding => Limiter::Sliding(SlidingWindow::new(unsigned()?, window)),
        })
    }

    /// The algorithm.
    pub const fn algorithm(&self) -> Algorithm {
        match self {
            Limiter::Taildrop(_) => Algorithm::Taildrop,
            Limiter::Red(_) => Algorithm::Red,
            Limiter::Feedback(_) => Algorithm::Feedback,
            Limiter::Network(_) => Algorithm::Network,
            Limiter::Nop(_) => Algorithm::Nop,
            Limiter::Interval(_) => Algorithm::Interval,
            Limiter::Slots(_) => Algorithm::Slots,
            Limiter::Gcra(_) => Algorithm::Gcra,
            Limiter::RedProportional(_) => Algorithm::RedProportional,
            Limiter::Sliding(_) => Algorithm::Sliding,
        }
    }

    /// Counts and decides one request at `now`. Slots are not rate pipes:
    /// for them this is [`Error::WrongAlgorithm`] and nothing changes.
    #[inline(always)]
    pub fn check(&mut self, now: u64, shared: &Shared) -> Result<Verdict, Error> {
        Ok(match self {
            Limiter::Taildrop(l) => l.check(now),
            Limiter::Red(l) => l.check(now),
            Limiter::Feedback(l) => l.check(now, shared.drop_rate),
            Limiter::Network(l) => l.check(now, shared.bytes_waiting),
            Limiter::Nop(l) => l.check(now),
            Limiter::Interval(l) => l.check(now),
            Limiter::Gcra(l) => l.check(now),
            Limiter::RedProportional(l) => l.check(now),
            Limiter::Sliding(l) => l.check(now),
            Limiter::Slots(_) => return Err(Error::WrongAlgorithm),
        })
    }

    /// Takes a slot ([`Error::WrongAlgorithm`] unless this is SLOTS).
    pub fn acquire(&mut self) -> Result<SlotVerdict, Error> {
        match self {
            Limiter::Slots(s) => Ok(s.acquire()),
            _ => Err(Error::WrongAlgorithm),
        }
    }

    /// Gives a slot back ([`Error::WrongAlgorithm`] unless this is SLOTS).
    pub fn release(&mut self) -> Result<Release, Error> {
        match self {
            Limiter::Slots(s) => Ok(s.release()),
            _ => Err(Error::WrongAlgorithm),
        }
    }

    /// The limit as [`Limiter::new`] takes it. FEEDBACK pipes share the
    /// table's setpoint, passed in as `setpoint_percent`.
    pub fn limit(&self, setpoint_percent: u8) -> i64 {
        match self {
            Limiter::Taildrop(l) => l.limit().into(),
            Limiter::Red(l) => l.limit().into(),
            Limiter::Feedback(_) => setpoint_percent.into(),
            Limiter::Network(l) => l.limit().into(),
            Limiter::Nop(_) => 0,
            Limiter::Interval(l) => l.max().into(),
            Limiter::Slots(l) => l.max().into(),
            Limiter::Gcra(l) => l.rate().into(),
            Limiter::RedProportional(l) => l.limit().into(),
            Limiter::Sliding(l) => l.limit().into(),
        }
    }

    /// Replaces the limit, keeping the algorithm and the counters, with the
    /// ranges of [`Limiter::new`]. FEEDBACK and NOP keep nothing per pipe: the
    /// value is only range-checked (a table stores a FEEDBACK setpoint in its
    /// header). A GCRA keeps its period and burst and its TAT. On error
    /// nothing changes.
    #[inline(always)]
    pub fn set_limit(&mut self, limit: i64) -> Result<(), Error> {
        let unsigned = u32::try_from(limit).map_err(|_| Error::InvalidLimit);
        let signed = i32::try_from(limit).map_err(|_| Error::InvalidLimit);
        match self {
            Limiter::Taildrop(l) => l.set_limit(unsigned?),
            Limiter::Red(l) => l.set_limit(unsigned?)?,
            Limiter::Feedback(_) => {
                if !(0..=100).contains(&limit) {
                    return Err(Error::InvalidLimit);
                }
            }
            Limiter::Network(l) => l.set_limit(unsigned?),
            Limiter::Nop(_) => {}
            Limiter::Interval(l) => l.set_max(signed?),
            Limiter::Slots(l) => l.set_max(signed?),
            Limiter::Gcra(l) => {
                let mut new = Gcra::new(unsigned?, l.period(), l.burst())?;
                new.restore_tat(l.tat());
                *l = new;
            }
            Limiter::RedProportional(l) => l.set_limit(unsigned?)?,
            Limiter::Sliding(l) => l.set_limit(unsigned?),
        }
        Ok(())
    }

    /// What a listing shows at `now`, changing nothing.
    pub fn stats(&self, now: u64, shared: &Shared, setpoint_percent: u8) -> Stats {
        let (counter, last_counter, load) = match self {
            Limiter::Taildrop(l) => view(l.counter(), now, 0),
            Limiter::Red(l) => {
                let (c, last) = l.counter().view(now);
                (c, last, l.load_at(now).try_into().unwrap_or(i32::MAX))
            }
            Limiter::Feedback(l) => view(l.counter(), now, 0),
            Limiter::Network(l) => view(
                l.counter(),
                now,
                crate::network::network_load(shared.bytes_waiting, l.limit()),
            ),
            Limiter::Nop(l) => view(l.counter(), now, 0),
            Limiter::Interval(l) => view(l.counter(), now, 0),
            Limiter::Slots(s) => (s.usage(), s.unmatched_releases(), 0),
            Limiter::Gcra(_) => (0, 0, 0),
            Limiter::RedProportional(l) => {
                let (c, last) = l.counter().view(now);
                (c, last, l.load_at(now).try_into().unwrap_or(i32::MAX))
            }
            Limiter::Sliding(l) => view(l.counter(), now, 0),
        };
        Stats {
            algorithm: self.algorithm(),
            limit: self.limit(setpoint_percent),
            counter,
            last_counter,
            load,
        }
    }

    /// Zeroes the current window's count now (`limit_interval_reset`); a
    /// GCRA forgets its history; slots are not touched (release them).
    pub fn reset(&mut self) {
        match self {
            Limiter::Taildrop(l) => l.reset(),
            Limiter::Red(l) => l.reset(),
            Limiter::Feedback(l) => l.reset(),
            Limiter::Network(l) => l.reset(),
            Limiter::Nop(l) => l.reset(),
            Limiter::Interval(l) => l.reset(),
            Limiter::Slots(_) => {}
            Limiter::Gcra(l) => l.reset(),
            Limiter::RedProportional(l) => l.reset(),
            Limiter::Sliding(l) => l.reset(),
        }
    }

    /// The limiter's whole state as [`STATE_WORDS`] `u32` words, the
    /// encoding a table reads and writes its locked entries through (it
    /// keeps each word in one place of its own, see [`crate::table`]).
    /// Aligned windows do not store their epoch: [`Limiter::from_words`]
    /// takes it back. Stores that keep limiters elsewhere (floodgate's
    /// Redis module) use this too, so there is one encoding; where the
    /// table keeps its words may change with its layout version, the
    /// encoding itself only with a version of each store that keeps it.
    pub fn to_words(&self) -> [u32; STATE_WORDS] {
        crate::table::codec::encode(&crate::table::codec::Cell::new(*self))
    }

    /// The limiter that [`Limiter::to_words`] encoded, with aligned windows
    /// anchored at `epoch`; [`Error::Corrupt`] for words that make no sense.
    pub fn from_words(words: &[u32; STATE_WORDS], epoch: u64) -> Result<Limiter, Error> {
        crate::table::codec::decode(words, epoch).map(|c| c.limiter)
    }

    /// The window counter of the window-based kinds (`None` for SLOTS and GCRA).
    pub const fn window_counter(&self) -> Option<&crate::WindowCounter> {
        match self {
            Limiter::Taildrop(l) => Some(l.counter()),
            Limiter::Red(l) => Some(l.counter()),
            Limiter::Feedback(l) => Some(l.counter()),
            Limiter::Network(l) => Some(l.counter()),
            Limiter::Nop(l) => Some(l.counter()),
            Limiter::Interval(l) => Some(l.counter()),
            Limiter::RedProportional(l) => Some(l.counter()),
            Limiter::Sliding(l) => Some(l.counter()),
            Limiter::Slots(_) | Limiter::Gcra(_) => None,
        }
    }
}

fn view(c: &crate::WindowCounter, now: u64, load: i32) -> (u32, u32, i32) {
    let (counter, last) = c.view(now);
    (counter, last, load)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_round_trip_every_algorithm_and_refuse_garbage() {
        let w = Window::aligned(1_000, 0).unwrap();
        for a in Algorithm::ALL {
            let mut l = Limiter::new(a, if a == Algorithm::Feedback { 50 } else { 3 }, w).unwrap();
            for t in [5, 900, 1_500, 4_000] {
                let _ = l.check(t, &Shared::default());
                let _ = l.acquire();
            }
            assert_eq!(Limiter::from_words(&l.to_words(), 0), Ok(l), "{a:?}");
        }
        assert_eq!(
            Limiter::from_words(&[15; STATE_WORDS], 0),
            Err(Error::Corrupt)
        );
    }

    fn w() -> Window {
        Window::aligned(100, 0).unwrap()
    }

    #[test]
    fn names_round_trip_case_insensitively() {
        for (i, a) in Algorithm::ALL.into_iter().enumerate() {
            assert_eq!(a as usize, i);
            assert_eq!(Algorithm::from_u8(i as u8), Some(a));
            assert_eq!(Algorithm::from_name(a.name().as_bytes()), Some(a));
            let lower = a.name().to_ascii_lowercase();
            assert_eq!(Algorithm::from_name(lower.as_bytes()), Some(a));
        }
        assert_eq!(Algorithm::from_u8(10), None);
        assert_eq!(Algorithm::from_name(b"TAILDROPX"), None);
        assert_eq!(Algorithm::from_name(b""), None);
    }

    #[test]
    fn new_checks_ranges_per_algorithm() {
        use Algorithm::*;
        for (a, ok, bad) in [
            (Taildrop, 0, -1),
            (Red, 1, 0),
            (Feedback, 100, 101),
            (Network, u32::MAX as i64, u32::MAX as i64 + 1),
            (Interval, i32::MIN as i64, i32::MAX as i64 + 1),
            (Slots, -1, i32::MIN as i64 - 1),
            (Gcra, 1, 0),
            (RedProportional, 1, 0),
            (Sliding, 0, -5),
        ] {
            let l = Limiter::new(a, ok, w()).unwrap();
            assert_eq!(l.algorithm(), a);
            assert_eq!(Limiter::new(a, bad, w()), Err(Error::InvalidLimit), "{a:?}");
            let mut l2 = l;
            assert_eq!(l2.set_limit(bad), Err(Error::InvalidLimit), "{a:?}");
            assert_eq!(l2, l, "failed set_limit changes nothing");
        }
        assert!(Limiter::new(Nop, i64::MIN, w()).is_ok());
    }

    #[test]
    fn dispatch_and_wrong_algorithm() {
        let shared = Shared {
            drop_rate: 100,
            bytes_waiting: 10,
        };
        let mut fb = Limiter::new(Algorithm::Feedback, 50, w()).unwrap();
        assert_eq!(fb.check(0, &shared), Ok(Verdict::Drop));
        let mut net = Limiter::new(Algorithm::Network, 5, w()).unwrap();
        assert_eq!(net.check(0, &shared), Ok(Verdict::Drop));
        assert_eq!(net.stats(0, &shared, 0).load, 1);
        let mut nop = Limiter::new(Algorithm::Nop, 0, w()).unwrap();
        assert_eq!(nop.check(0, &shared), Ok(Verdict::PassNop));
        assert_eq!(nop.acquire(), Err(Error::WrongAlgorithm));
        assert_eq!(nop.release(), Err(Error::WrongAlgorithm));
        let mut slots = Limiter::new(Algorithm::Slots, 1, w()).unwrap();
        let before = slots;
        assert_eq!(slots.check(0, &shared), Err(Error::WrongAlgorithm));
        assert_eq!(slots, before);
        assert_eq!(slots.acquire(), Ok(SlotVerdict::Acquired));
        assert_eq!(slots.acquire(), Ok(SlotVerdict::Refused));
        let st = slots.stats(0, &shared, 0);
        assert_eq!((st.counter, st.limit), (1, 1));
        assert_eq!(slots.release(), Ok(Release::Released));
        assert_eq!(slots.release(), Ok(Release::Unmatched));
        assert_eq!(slots.stats(0, &shared, 0).last_counter, 1);
    }

    #[test]
    fn stats_show_what_a_timer_would() {
        let shared = Shared::default();
        let mut red = Limiter::new(Algorithm::Red, 10, w()).unwrap();
        for i in 0..35 {
            let _ = red.check(i, &shared);
        }
        let st = red.stats(150, &shared, 0);
        assert_eq!((st.counter, st.last_counter, st.load), (0, 35, 3));
        assert_eq!(st.limit, 10);
        let st = red.stats(250, &shared, 0);
        assert_eq!((st.last_counter, st.load), (0, 0));
        let fb = Limiter::new(Algorithm::Feedback, 40, w()).unwrap();
        assert_eq!(fb.stats(0, &shared, 40).limit, 40);
        assert!(red.window_counter().is_some());
        red.reset();
        assert_eq!(red.stats(1, &shared, 0).counter, 0);
    }

    #[test]
    fn gcra_set_limit_keeps_period_burst_and_tat() {
        let mut g = Limiter::new(Algorithm::Gcra, 10, Window::aligned(1000, 0).unwrap()).unwrap();
        let _ = g.check(5000, &Shared::default());
        g.set_limit(20).unwrap();
        let Limiter::Gcra(inner) = g else {
            panic!("kind changed")
        };
        assert_eq!(inner.emission_interval(), 50);
        assert_eq!(inner.tat(), 5100);
        assert_eq!(g.limit(0), 20);
        assert!(g.window_counter().is_none());
        g.reset();
        assert_eq!(g.check(0, &Shared::default()), Ok(Verdict::Pass));
    }

    #[test]
    fn gcra_set_limit_keeps_a_period_the_rate_does_not_divide() {
        // 3 per 10 ns: T = 3, and T * rate = 9, not 10. The new rate must be
        // spread over the real period: 2 per 10 ns is T = 5 (not 9 / 2 = 4).
        let mut g = Limiter::new(Algorithm::Gcra, 3, Window::aligned(10, 0).unwrap()).unwrap();
        g.set_limit(2).unwrap();
        let Limiter::Gcra(inner) = g else {
            panic!("kind changed")
        };
        assert_eq!((inner.period(), inner.emission_interval()), (10, 5));
    }
}
