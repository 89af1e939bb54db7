//! The simulation: every event goes through every limiter ("lane"), one
//! pipe per key as a Kamailio script's `pl_check("$si")` would make, with
//! counts per time bin for the chart, the worst burst, and drops per key.
//!
//! Memory stays flat however long the traffic: pipes live in a map of at
//! most `max_keys` entries per lane. When it is full, pipes idle long
//! enough to be as good as new are dropped first (a window-based pipe two
//! whole intervals after its last request, a GCRA pipe past its TAT, a
//! SLOTS entry holding nothing): this changes no verdict. Only if every
//! pipe is still busy is the least recently used one dropped, which can
//! change verdicts; `evicted_busy` counts those. Drops per key are counted
//! for the first `max_keys` keys; later keys are added up as "other".
//! Bins grow with the traffic's span (not its size), up to [`MAX_BINS`].

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};

use floodgate::{Algorithm, Limiter, PidController, Shared, SlotVerdict};

use super::spec::{LimitSpec, LoadProfile, Steps};

/// The most chart bins a run may have (`--bin` sets their width).
pub const MAX_BINS: usize = 2_000_000;

/// Nanoseconds in the sliding span of the worst burst.
pub const BURST_SPAN_NS: u64 = 1_000_000_000;

/// Settings of a run besides its limiters.
#[derive(Debug, Clone)]
pub struct Options {
    /// Width of a chart bin, ns.
    pub bin_ns: u64,
    /// Most pipes per lane, and most keys counted one by one.
    pub max_keys: usize,
    /// SLOTS: how long a call holds its slot, ns.
    pub hold_ns: u64,
    /// FEEDBACK: the load fed to the controller at each tick.
    pub load: Option<LoadProfile>,
    /// NETWORK: bytes waiting.
    pub queue: Option<Steps>,
}

#[derive(Debug, Clone, Copy)]
struct Pipe {
    limiter: Limiter,
    last: u64,
}

impl Pipe {
    /// True when dropping this pipe and making a new one later changes no
    /// verdict.
    fn as_good_as_new(&self, now: u64, interval: u64) -> bool {
        match &self.limiter {
            Limiter::Gcra(g) => g.tat() <= now,
            Limiter::Slots(s) => s.usage() == 0,
            _ => self.last.saturating_add(interval.saturating_mul(2)) <= now,
        }
    }
}

/// Requests and drops of one key.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KeyCount {
    /// Requests.
    pub offered: u64,
    /// Dropped (or refused) of them.
    pub dropped: u64,
}

/// `entry(key).or_default()` without making a key box for a key present.
trait EntryRef {
    fn entry_ref_or_default(&mut self, key: &[u8]) -> &mut KeyCount;
}

impl EntryRef for HashMap<Box<[u8]>, KeyCount> {
    fn entry_ref_or_default(&mut self, key: &[u8]) -> &mut KeyCount {
        if !self.contains_key(key) {
            self.insert(key.into(), KeyCount::default());
        }
        self.get_mut(key).expect("inserted above")
    }
}

/// One limiter's results.
#[derive(Debug, Clone)]
pub struct LaneReport {
    /// The spec.
    pub spec: LimitSpec,
    /// Requests offered.
    pub offered: u64,
    /// Passed (NOP's pass counts as a pass; SLOTS: acquired).
    pub passed: u64,
    /// Dropped (SLOTS: refused).
    pub dropped: u64,
    /// Most passed in any 1 s span.
    pub worst_burst: u64,
    /// Where that span starts (ns since the first event).
    pub worst_burst_from_ns: u64,
    /// Passed per bin.
    pub passed_bins: Vec<u32>,
    /// Keys by drops, most first (then by key), all counted keys.
    pub keys: Vec<(Box<[u8]>, KeyCount)>,
    /// Keys beyond `max_keys`, added up.
    pub other_keys: KeyCount,
    /// Busy pipes dropped from a full map (verdicts may differ from an
    /// unbounded table).
    pub evicted_busy: u64,
}

#[derive(Debug)]
struct Lane {
    spec: LimitSpec,
    fresh: Limiter,
    single: Option<Pipe>,
    pipes: HashMap<Box<[u8]>, Pipe>,
    offered: u64,
    passed: u64,
    dropped: u64,
    passed_bins: Vec<u32>,
    burst: VecDeque<u64>,
    worst: u64,
    worst_from: u64,
    pid: Option<PidController>,
    next_tick: u64,
    ticks: u64,
    passed_in_tick: u64,
    shared: Shared,
    releases: BinaryHeap<Reverse<(u64, Box<[u8]>)>>,
    keys: HashMap<Box<[u8]>, KeyCount>,
    other_keys: KeyCount,
    evicted_busy: u64,
}

/// A run in progress. Feed it events in time order with [`Engine::event`],
/// then take the [`Report`].
#[derive(Debug)]
pub struct Engine {
    lanes: Vec<Lane>,
    opts: Options,
    offered_bins: Vec<u32>,
    origin: Option<u64>,
    events: u64,
    early: u64,
    last: u64,
    keyed: bool,
}

/// What a run found.
#[derive(Debug, Clone)]
pub struct Report {
    /// Events simulated.
    pub events: u64,
    /// Events timed before the first one (counted at the first one's time).
    pub early: u64,
    /// Time of the first event (as given: ns since 1970 for captures, 0 for models).
    pub origin_ns: u64,
    /// Time from the first event to the last, ns.
    pub span_ns: u64,
    /// Width of a bin, ns.
    pub bin_ns: u64,
    /// Offered per bin.
    pub offered_bins: Vec<u32>,
    /// Whether events had keys.
    pub keyed: bool,
    /// One per limiter, in the order given.
    pub lanes: Vec<LaneReport>,
}

/// The most FEEDBACK controller updates in one run (one per interval of
/// simulated time).
pub const MAX_TICKS: u64 = 100_000_000;

/// Why a run stopped before its traffic ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TooLong {
    /// An event lies past [`MAX_BINS`] bins.
    Bins {
        /// The event's time since the first, ns.
        at_ns: u64,
    },
    /// A FEEDBACK limiter would need more than [`MAX_TICKS`] updates.
    Ticks {
        /// The limiter.
        limiter: String,
    },
}

impl Engine {
    /// A run of `specs` (each checked by [`super::spec::parse_limit_spec`]).
    pub fn new(specs: &[LimitSpec], opts: Options) -> Result<Engine, String> {
        let lanes = specs
            .iter()
            .map(|spec| {
                let fresh = spec.limiter().map_err(|e| format!("{}: {e}", spec.text))?;
                let pid = match spec.algorithm {
                    Algorithm::Feedback => {
                        if opts.load.is_none() {
                            return Err(format!(
                                "{}: FEEDBACK needs --load (the load its PID controller is fed each interval)",
                                spec.text
                            ));
                        }
                        let mut pid = PidController::new();
                        pid.set_setpoint_percent(spec.limit as u32)
                            .map_err(|e| format!("{}: {e}", spec.text))?;
                        Some(pid)
                    }
                    _ => None,
                };
                if spec.algorithm == Algorithm::Network && opts.queue.is_none() {
                    return Err(format!(
                        "{}: NETWORK needs --queue (the bytes waiting on the host's queues over time)",
                        spec.text
                    ));
                }
                Ok(Lane {
                    spec: spec.clone(),
                    fresh,
                    single: None,
                    pipes: HashMap::new(),
                    offered: 0,
                    passed: 0,
                    dropped: 0,
                    passed_bins: Vec::new(),
                    burst: VecDeque::new(),
                    worst: 0,
                    worst_from: 0,
                    pid,
                    next_tick: spec.interval_ns,
                    ticks: 0,
                    passed_in_tick: 0,
                    shared: Shared::default(),
                    releases: BinaryHeap::new(),
                    keys: HashMap::new(),
                    other_keys: KeyCount::default(),
                    evicted_busy: 0,
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        if opts.bin_ns == 0 {
            return Err("--bin must be longer than 0".to_owned());
        }
        Ok(Engine {
            lanes,
            opts,
            offered_bins: Vec::new(),
            origin: None,
            events: 0,
            early: 0,
            last: 0,
            keyed: false,
        })
    }

    /// Makes `origin` time 0 of the run (else the first event's time is).
    pub fn start_at(&mut self, origin: u64) {
        self.origin = Some(origin);
    }

    /// Makes the bins reach `t` (ns since the origin) though no event came
    /// that late: a model's run lasts its whole duration.
    pub fn run_until(&mut self, t: u64) {
        let bins = (t.div_ceil(self.opts.bin_ns) as usize).min(MAX_BINS);
        if bins > self.offered_bins.len() {
            self.offered_bins.resize(bins, 0);
        }
        self.last = self.last.max(t);
    }

    /// One request at `time` (any origin; the first event is time 0 of the
    /// run) with `key` (empty: one pipe for all). Fails only when the
    /// traffic spans more than [`MAX_BINS`] bins.
    pub fn event(&mut self, time: u64, key: &[u8]) -> Result<(), TooLong> {
        let origin = *self.origin.get_or_insert(time);
        let t = match time.checked_sub(origin) {
            Some(t) => t,
            None => {
                self.early += 1;
                0
            }
        };
        let bin = (t / self.opts.bin_ns) as usize;
        if bin >= MAX_BINS {
            return Err(TooLong::Bins { at_ns: t });
        }
        if bin >= self.offered_bins.len() {
            self.offered_bins.resize(bin + 1, 0);
        }
        self.offered_bins[bin] = self.offered_bins[bin].saturating_add(1);
        self.events += 1;
        self.last = self.last.max(t);
        self.keyed |= !key.is_empty();
        for lane in &mut self.lanes {
            lane.event(t, bin, key, &self.opts);
            if lane.ticks > MAX_TICKS {
                return Err(TooLong::Ticks {
                    limiter: lane.spec.text.clone(),
                });
            }
        }
        Ok(())
    }

    /// The results.
    pub fn finish(self) -> Report {
        let bins = self.offered_bins.len();
        Report {
            events: self.events,
            early: self.early,
            origin_ns: self.origin.unwrap_or(0),
            span_ns: self.last,
            bin_ns: self.opts.bin_ns,
            offered_bins: self.offered_bins,
            keyed: self.keyed,
            lanes: self
                .lanes
                .into_iter()
                .map(|mut l| {
                    l.passed_bins.resize(bins, 0);
                    let mut keys: Vec<(Box<[u8]>, KeyCount)> = l.keys.into_iter().collect();
                    keys.sort_by(|a, b| b.1.dropped.cmp(&a.1.dropped).then(a.0.cmp(&b.0)));
                    LaneReport {
                        spec: l.spec,
                        offered: l.offered,
                        passed: l.passed,
                        dropped: l.dropped,
                        worst_burst: l.worst,
                        worst_burst_from_ns: l.worst_from,
                        passed_bins: l.passed_bins,
                        keys,
                        other_keys: l.other_keys,
                        evicted_busy: l.evicted_busy,
                    }
                })
                .collect(),
        }
    }
}

impl Lane {
    /// Makes room for one more pipe: idle pipes first, then the least
    /// recently used busy one.
    fn make_room(&mut self, t: u64, interval: u64, max_keys: usize) {
        if self.pipes.len() < max_keys {
            return;
        }
        self.pipes.retain(|_, p| !p.as_good_as_new(t, interval));
        if self.pipes.len() >= max_keys {
            let oldest = self
                .pipes
                .iter()
                .min_by_key(|(_, p)| p.last)
                .map(|(k, _)| k.clone());
            if let Some(k) = oldest {
                self.pipes.remove(&k);
                self.evicted_busy += 1;
            }
        }
    }

    fn event(&mut self, t: u64, bin: usize, key: &[u8], opts: &Options) {
        // Calls that hung up by now give their slots back.
        while let Some(Reverse((at, _))) = self.releases.peek() {
            if *at > t {
                break;
            }
            let Some(Reverse((_, k))) = self.releases.pop() else {
                break;
            };
            let pipe = if k.is_empty() {
                self.single.as_mut()
            } else {
                self.pipes.get_mut(&k)
            };
            if let Some(p) = pipe {
                let _ = p.limiter.release();
            }
        }
        // FEEDBACK: the controller's ticks up to now, one per interval.
        if let Some(pid) = &mut self.pid {
            if self.next_tick <= t {
                let due = (t - self.next_tick) / self.spec.interval_ns + 1;
                self.ticks = self.ticks.saturating_add(due);
                if self.ticks > MAX_TICKS {
                    return; // the engine stops the run
                }
            }
            while self.next_tick <= t {
                let load = match &opts.load {
                    Some(LoadProfile::Steps(s)) => s.at(self.next_tick),
                    Some(LoadProfile::Passed(cap)) => {
                        (self.passed_in_tick as f64 / *cap as f64).min(1.0)
                    }
                    None => 0.0,
                };
                if let Ok(rate) = pid.update(load) {
                    self.shared.drop_rate = rate;
                }
                self.passed_in_tick = 0;
                self.next_tick = self.next_tick.saturating_add(self.spec.interval_ns);
            }
        }
        if let Some(q) = &opts.queue {
            self.shared.bytes_waiting = q.at(t) as u64;
        }
        let interval = self.spec.interval_ns;
        let pipe: &mut Pipe = if key.is_empty() {
            self.single.get_or_insert(Pipe {
                limiter: self.fresh,
                last: t,
            })
        } else {
            if !self.pipes.contains_key(key) {
                self.make_room(t, interval, opts.max_keys);
                self.pipes.insert(
                    key.into(),
                    Pipe {
                        limiter: self.fresh,
                        last: t,
                    },
                );
            }
            match self.pipes.get_mut(key) {
                Some(p) => p,
                None => return, // inserted above
            }
        };
        pipe.last = t;
        let passed = if let Limiter::Slots(_) = pipe.limiter {
            let ok = pipe.limiter.acquire() == Ok(SlotVerdict::Acquired);
            if ok {
                self.releases
                    .push(Reverse((t.saturating_add(opts.hold_ns), key.into())));
            }
            ok
        } else {
            match pipe.limiter.check(t, &self.shared) {
                Ok(v) => v.passed(),
                Err(_) => false,
            }
        };
        self.offered += 1;
        if passed {
            self.passed += 1;
            self.passed_in_tick += 1;
            if bin >= self.passed_bins.len() {
                self.passed_bins.resize(bin + 1, 0);
            }
            self.passed_bins[bin] = self.passed_bins[bin].saturating_add(1);
            while let Some(&front) = self.burst.front() {
                if front.saturating_add(BURST_SPAN_NS) <= t {
                    self.burst.pop_front();
                } else {
                    break;
                }
            }
            self.burst.push_back(t);
            if self.burst.len() as u64 > self.worst {
                self.worst = self.burst.len() as u64;
                self.worst_from = self.burst.front().copied().unwrap_or(t);
            }
        } else {
            self.dropped += 1;
        }
        if !key.is_empty() {
            let room = self.keys.len() < opts.max_keys;
            let count = if room {
                self.keys.entry_ref_or_default(key)
            } else {
                match self.keys.get_mut(key) {
                    Some(c) => c,
                    None => &mut self.other_keys,
                }
            };
            count.offered += 1;
            count.dropped += u64::from(!passed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::spec::parse_limit_spec;
    use super::*;

    fn opts() -> Options {
        Options {
            bin_ns: 1_000_000_000,
            max_keys: 4,
            hold_ns: 1_000,
            load: None,
            queue: None,
        }
    }

    #[test]
    fn counts_bins_and_the_worst_burst() {
        let specs = [parse_limit_spec("TAILDROP:3/1s").unwrap()];
        let mut e = Engine::new(&specs, opts()).unwrap();
        e.start_at(0);
        // 5 in the last 100 ms of second 0, 5 in the first 100 ms of second 1.
        for i in 0..5 {
            e.event(900_000_000 + i, b"").unwrap();
        }
        for i in 0..5 {
            e.event(1_000_000_000 + i, b"").unwrap();
        }
        let r = e.finish();
        let l = &r.lanes[0];
        assert_eq!((l.offered, l.passed, l.dropped), (10, 6, 4));
        assert_eq!(l.passed_bins, vec![3, 3]);
        assert_eq!(r.offered_bins, vec![5, 5]);
        // The fixed window's edge: 6 pass within 100 ms.
        assert_eq!(l.worst_burst, 6);
        assert!(!r.keyed);
    }

    #[test]
    fn full_maps_drop_idle_pipes_first_and_count_busy_ones() {
        let specs = [parse_limit_spec("TAILDROP:1/1s").unwrap()];
        let mut e = Engine::new(&specs, opts()).unwrap();
        for k in 0..4u8 {
            e.event(0, &[b'a' + k]).unwrap();
        }
        // Two seconds later all four are as good as new: no busy eviction.
        e.event(2_000_000_000, b"z").unwrap();
        e.event(2_000_000_000, b"y").unwrap();
        e.event(2_000_000_001, b"x").unwrap();
        e.event(2_000_000_002, b"w").unwrap();
        e.event(2_000_000_003, b"v").unwrap();
        let r = e.finish();
        let l = &r.lanes[0];
        assert_eq!(l.evicted_busy, 1);
        assert_eq!(l.passed, 9);
        // Keys beyond max_keys are added up.
        assert_eq!(l.keys.len(), 4);
        assert_eq!(l.other_keys.offered, 5);
    }

    #[test]
    fn slots_hold_then_release() {
        let specs = [parse_limit_spec("SLOTS:1").unwrap()];
        let mut e = Engine::new(&specs, opts()).unwrap();
        for t in [0, 500, 1_000, 1_500, 2_500] {
            e.event(t, b"k").unwrap();
        }
        let l = &e.finish().lanes[0];
        // 0 holds until 1000; 1000 until 2000; 2500 is free again.
        assert_eq!((l.passed, l.dropped), (3, 2));
    }

    #[test]
    fn feedback_and_network_need_their_profiles() {
        let fb = [parse_limit_spec("FEEDBACK:50").unwrap()];
        assert!(Engine::new(&fb, opts()).unwrap_err().contains("--load"));
        let net = [parse_limit_spec("NETWORK:100").unwrap()];
        assert!(Engine::new(&net, opts()).unwrap_err().contains("--queue"));
    }

    #[test]
    fn spans_longer_than_the_bins_stop() {
        let specs = [parse_limit_spec("NOP").unwrap()];
        let mut o = opts();
        o.bin_ns = 1;
        let mut e = Engine::new(&specs, o).unwrap();
        e.event(10, b"").unwrap();
        assert_eq!(
            e.event(10 + MAX_BINS as u64, b""),
            Err(TooLong::Bins {
                at_ns: MAX_BINS as u64
            })
        );
    }
}
