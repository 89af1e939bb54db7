//! Model tests: every limiter against a plain reference model.
//!
//! Each model below is written from the module docs (and
//! `/work/shared/SEMANTICS.md`) in the most direct way available: windows are
//! a list of every window opened so far with its count, computed from the
//! absolute time with plain `u128` arithmetic; GCRA is the textbook formula
//! in `u128` / `i128`. Random operation sequences (checks, resets, limit
//! changes, slot acquire / release, listings) run on the real type and on the
//! model side by side, with random time steps that include going backwards,
//! idle windows, gaps of years and times near `u64::MAX`; every verdict and
//! every observable counter is compared after each step.

use floodgate::{
    network_load, Algorithm, Anchor, Error, Feedback, Gcra, IntervalLimit, Limiter, MaxZero,
    Network, Nop, Red, RedProportional, Release, Shared, SlidingWindow, SlotVerdict, Slots, Stats,
    Taildrop, Verdict, Window, WindowCounter,
};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;

const YEAR: u64 = 365 * 24 * 3600 * 1_000_000_000;
const MAX: u128 = u64::MAX as u128;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 512,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "proptest-regressions/model.txt",
        ))),
        ..ProptestConfig::default()
    }
}

// ---------------------------------------------------------------------------
// Time
// ---------------------------------------------------------------------------

/// What the time steps are relative to.
#[derive(Debug, Clone, Copy)]
struct Ctx {
    interval: u64,
    epoch: u64,
}

/// One move of the caller's clock.
#[derive(Debug, Clone, Copy)]
enum Step {
    Stay,
    /// Forward a few ns.
    Tiny(u8),
    /// Forward `f / 1000` of an interval.
    Frac(u16),
    /// Forward `n` intervals and `f / 1000` of one.
    Windows(u32, u16),
    /// Backward `f / 1000` of an interval.
    Back(u16),
    /// Backward any number of ns.
    BackNs(u64),
    /// Forward `n` years.
    Years(u16),
    /// To `u64::MAX - k`.
    NearMax(u16),
    /// To the epoch plus or minus a little.
    NearEpoch(i16),
    /// To anywhere.
    Abs(u64),
}

fn clamp(x: u128) -> u64 {
    if x > MAX {
        u64::MAX
    } else {
        x as u64
    }
}

impl Step {
    fn apply(self, t: u64, c: Ctx) -> u64 {
        let (t, iv) = (u128::from(t), u128::from(c.interval));
        match self {
            Step::Stay => clamp(t),
            Step::Tiny(n) => clamp(t + u128::from(n)),
            Step::Frac(f) => clamp(t + iv * u128::from(f) / 1000),
            Step::Windows(n, f) => clamp(t + iv * u128::from(n) + iv * u128::from(f) / 1000),
            Step::Back(f) => clamp(t.saturating_sub(iv * u128::from(f) / 1000)),
            Step::BackNs(n) => clamp(t.saturating_sub(u128::from(n))),
            Step::Years(n) => clamp(t + u128::from(YEAR) * u128::from(n)),
            Step::NearMax(k) => u64::MAX - u64::from(k),
            Step::NearEpoch(d) => clamp((i128::from(c.epoch) + i128::from(d)).max(0) as u128),
            Step::Abs(x) => x,
        }
    }
}

/// A step from raw random numbers (cheaper to generate than a union of
/// strategies; `sel` picks the kind with the weights below and shrinks
/// towards `Stay`).
fn decode_step(sel: u8, a: u32, b: u64) -> Step {
    match sel % 25 {
        0..=5 => Step::Stay,
        6..=8 => Step::Tiny(a as u8),
        9..=12 => Step::Frac((a % 1501) as u16),
        13..=15 => Step::Windows(1 + a % 3, (b % 1000) as u16),
        16 => Step::Windows(4 + a % 1_000_000, (b % 1000) as u16),
        17..=18 => Step::Back((a % 2501) as u16),
        19 => Step::BackNs(b),
        20 => Step::Years(1 + (a % 300) as u16),
        21..=22 => Step::NearMax((a % 1001) as u16),
        23 => Step::NearEpoch(a as i16),
        _ => Step::Abs(b),
    }
}

fn step() -> impl Strategy<Value = Step> {
    any::<(u8, u32, u64)>().prop_map(|(sel, a, b)| decode_step(sel, a, b))
}

fn interval() -> impl Strategy<Value = u64> {
    prop_oneof![
        2 => Just(1u64),
        3 => 2u64..=20,
        3 => 21u64..=1_000_000_000_000,
        1 => Just(YEAR),
        1 => (u64::MAX / 2)..=u64::MAX,
        1 => Just(u64::MAX),
        1 => any::<u64>().prop_map(|x| x.max(1)),
    ]
}

fn epoch() -> impl Strategy<Value = u64> {
    prop_oneof![
        3 => Just(0u64),
        2 => 0u64..1000,
        1 => any::<u64>(),
        1 => (u64::MAX - 1000)..=u64::MAX,
    ]
}

// ---------------------------------------------------------------------------
// Operations
// ---------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum Op {
    /// Move the clock, then check `1 + repeat` requests at that time (with
    /// the host's FEEDBACK drop rate and NETWORK bytes waiting of that moment).
    Check {
        step: Step,
        rate: u8,
        bytes: u64,
        repeat: u8,
    },
    /// Look at listings at a time relative to the clock, changing nothing.
    Probe(Step),
    Reset,
    SetLimit(i64),
    Acquire,
    Release,
}

/// A limit: mostly small, sometimes at or past the edges of `u32` / `i32`.
fn decode_limit(sel: u8, x: u64) -> i64 {
    match sel % 17 {
        0..=7 => (x % 11) as i64 - 2,
        8..=9 => 9 + (x % 52) as i64,
        10 => i64::from(x as i32),
        11 => (x % (u64::from(u32::MAX) + 1)) as i64,
        12 => i64::from(u32::MAX),
        13 => i64::from(u32::MAX) + 1,
        14 => i64::from(i32::MAX),
        15 => i64::from(i32::MIN),
        _ => x as i64,
    }
}

fn limit_val() -> impl Strategy<Value = i64> {
    any::<(u8, u64)>().prop_map(|(sel, x)| decode_limit(sel, x))
}

/// The raw random numbers one operation is decoded from.
type RawOp = (u8, u8, u32, u64, u16, u64, u8);

/// One operation from raw random numbers; `kind` picks it. With `slots`,
/// acquire and release are among the choices.
fn decode_op(raw: RawOp, slots: bool) -> Op {
    let (kind, sel, a, b, rate, bytes, repeat) = raw;
    let kind = if slots { kind % 23 } else { kind % 16 };
    match kind {
        0..=9 => Op::Check {
            step: decode_step(sel, a, b),
            // Mostly 0..=100, sometimes above 100 (acts as 100).
            rate: match rate % 8 {
                0..=2 => 0,
                3..=6 => ((rate >> 8) % 101) as u8,
                _ => (rate >> 8) as u8,
            },
            // Mostly near small limits, sometimes anything.
            bytes: if bytes % 4 == 3 {
                bytes
            } else {
                (bytes >> 2) % 13
            },
            // Mostly one request, sometimes a burst at the same instant.
            repeat: match repeat % 8 {
                0..=4 => 0,
                5..=6 => 1 + (repeat >> 3) % 4,
                _ => (repeat >> 3) % 32,
            },
        },
        10..=12 => Op::Probe(decode_step(sel, a, b)),
        13 => Op::Reset,
        14..=15 => Op::SetLimit(decode_limit(sel, b)),
        16..=19 => Op::Acquire,
        _ => Op::Release,
    }
}

/// Operations on rate pipes.
fn rate_ops() -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec(any::<RawOp>(), 1..160)
        .prop_map(|raw| raw.into_iter().map(|r| decode_op(r, false)).collect())
}

/// Every operation (for slots and the `Limiter` enum).
fn all_ops() -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec(any::<RawOp>(), 1..160)
        .prop_map(|raw| raw.into_iter().map(|r| decode_op(r, true)).collect())
}

// ---------------------------------------------------------------------------
// Reference windows
// ---------------------------------------------------------------------------

/// Every window opened so far, oldest first, each with its start and count.
#[derive(Debug, Clone)]
struct RefWindows {
    interval: u64,
    anchor: Anchor,
    windows: Vec<(u64, u32)>,
}

impl RefWindows {
    fn new(interval: u64, anchor: Anchor) -> RefWindows {
        RefWindows {
            interval,
            anchor,
            windows: Vec::new(),
        }
    }

    /// Where a window opened by an event at `t` starts.
    fn start_for(&self, t: u64) -> u64 {
        match self.anchor {
            // Before the epoch: the epoch's window (at `u64::MAX - 1` at
            // the latest).
            Anchor::Aligned { epoch } if t < epoch => epoch.min(u64::MAX - 1),
            Anchor::Aligned { epoch } => {
                let k = (u128::from(t) - u128::from(epoch)) / u128::from(self.interval);
                (u128::from(epoch) + k * u128::from(self.interval)) as u64
            }
            Anchor::FirstEvent => t,
        }
    }

    /// Goes to the window of an event at `t`: a new one iff `t` lies at or
    /// past the current window's end (`start + interval`, exactly, so a window
    /// reaching past `u64::MAX` holds every later time). Earlier times stay in
    /// the current window. True if a window was opened.
    fn enter(&mut self, t: u64) -> bool {
        // Windows take `u64::MAX` for `u64::MAX - 1`
        // (`floodgate::window::LAST_START`): none starts at `u64::MAX`.
        let t = t.min(u64::MAX - 1);
        let open = match self.windows.last() {
            None => true,
            Some(&(start, _)) => u128::from(t) >= u128::from(start) + u128::from(self.interval),
        };
        if open {
            let start = self.start_for(t);
            self.windows.push((start, 0));
        }
        open
    }

    /// Counts one event in the current window.
    fn add(&mut self) {
        self.windows.last_mut().expect("a window is open").1 += 1;
    }

    fn reset(&mut self) {
        if let Some(w) = self.windows.last_mut() {
            w.1 = 0;
        }
    }

    fn counter(&self) -> u32 {
        self.windows.last().map_or(0, |w| w.1)
    }

    /// The count of the window just before the current one: 0 if that
    /// window had no events (nobody opened it).
    fn last(&self) -> u32 {
        let n = self.windows.len();
        if n < 2 {
            return 0;
        }
        let ((prev_start, prev_count), (cur_start, _)) = (self.windows[n - 2], self.windows[n - 1]);
        let (p, c, iv) = (
            u128::from(prev_start),
            u128::from(cur_start),
            u128::from(self.interval),
        );
        let adjacent = match self.anchor {
            Anchor::Aligned { .. } => c == p + iv,
            // The previous window ended at p + iv; a whole empty window fits
            // in between iff the current one starts at or after p + 2 iv.
            Anchor::FirstEvent => c < p + 2 * iv,
        };
        if adjacent {
            prev_count
        } else {
            0
        }
    }

    fn start(&self) -> Option<u64> {
        self.windows.last().map(|w| w.0)
    }

    /// `(counter, last)` as of `t`, changing nothing.
    fn view(&self, t: u64) -> (u32, u32) {
        let mut copy = self.clone();
        copy.enter(t);
        (copy.counter(), copy.last())
    }

    /// Whether an event at `t` would open a window.
    fn would_open(&self, t: u64) -> bool {
        self.clone().enter(t)
    }

    /// ns of the current window gone at `t` (0 if `t` is before its start).
    fn elapsed(&self, t: u64) -> u128 {
        let start = self.start().expect("a window is open");
        if t >= start {
            u128::from(t - start)
        } else {
            0
        }
    }
}

fn assert_windows(
    real: &WindowCounter,
    m: &RefWindows,
    now: u64,
    probe: u64,
) -> Result<(), TestCaseError> {
    prop_assert_eq!(real.counter(), m.counter(), "counter");
    prop_assert_eq!(real.last_counter(), m.last(), "last_counter");
    prop_assert_eq!(real.state().start(), m.start(), "window start");
    prop_assert_eq!(real.view(now), m.view(now), "view at the clock {}", now);
    prop_assert_eq!(real.view(probe), m.view(probe), "view at probe {}", probe);
    prop_assert_eq!(real.window().interval(), m.interval);
    prop_assert_eq!(real.window().anchor(), m.anchor);
    Ok(())
}

fn window(interval: u64, anchor: Anchor) -> Window {
    Window::new(interval, anchor).expect("interval >= 1")
}

fn pass(p: bool) -> Verdict {
    if p {
        Verdict::Pass
    } else {
        Verdict::Drop
    }
}

// ---------------------------------------------------------------------------
// Reference limiters
// ---------------------------------------------------------------------------

/// TAILDROP: every request counted; pass iff the count `<= limit`.
#[derive(Debug, Clone)]
struct RefTaildrop {
    limit: u32,
    w: RefWindows,
}

impl RefTaildrop {
    fn check(&mut self, t: u64) -> Verdict {
        self.w.enter(t);
        self.w.add();
        pass(self.w.counter() <= self.limit)
    }
}

/// RED: `load = last / limit` (0 after an empty window and in the first
/// one), with the limit of the request (a new limit applies at once, see
/// `Red::set_limit`); every request counted; pass iff `load == 0` or
/// `counter % load == 0`.
#[derive(Debug, Clone)]
struct RefRed {
    limit: u32,
    load: u32,
    w: RefWindows,
}

impl RefRed {
    fn new(limit: u32, w: RefWindows) -> Result<RefRed, Error> {
        if limit == 0 {
            return Err(Error::InvalidLimit);
        }
        Ok(RefRed { limit, load: 0, w })
    }

    fn check(&mut self, t: u64) -> Verdict {
        self.w.enter(t);
        self.load = self.w.last() / self.limit;
        self.w.add();
        let n = self.w.counter();
        pass(self.load == 0 || n.is_multiple_of(self.load))
    }

    fn load_at(&self, t: u64) -> u32 {
        if self.w.would_open(t) {
            self.w.view(t).1 / self.limit
        } else {
            self.w.last() / self.limit
        }
    }

    fn set_limit(&mut self, limit: u32) -> Result<(), Error> {
        if limit == 0 {
            return Err(Error::InvalidLimit);
        }
        self.limit = limit;
        Ok(())
    }
}

/// Proportional RED: every request counted; with last window count `L >
/// limit`, the n-th passes iff `n*limit/L > (n-1)*limit/L`; else all pass.
#[derive(Debug, Clone)]
struct RefRedP {
    limit: u32,
    w: RefWindows,
}

impl RefRedP {
    fn new(limit: u32, w: RefWindows) -> Result<RefRedP, Error> {
        if limit == 0 {
            return Err(Error::InvalidLimit);
        }
        Ok(RefRedP { limit, w })
    }

    fn check(&mut self, t: u64) -> Verdict {
        self.w.enter(t);
        self.w.add();
        let (n, l, lim) = (
            u128::from(self.w.counter()),
            u128::from(self.w.last()),
            u128::from(self.limit),
        );
        pass(l <= lim || n * lim / l > (n - 1) * lim / l)
    }

    fn load_at(&self, t: u64) -> u32 {
        self.w.view(t).1 / self.limit
    }

    fn set_limit(&mut self, limit: u32) -> Result<(), Error> {
        if limit == 0 {
            return Err(Error::InvalidLimit);
        }
        self.limit = limit;
        Ok(())
    }
}

/// Sliding window: only passes counted; pass iff
/// `prev * (I - e) + (current + 1) * I <= limit * I`.
#[derive(Debug, Clone)]
struct RefSliding {
    limit: u32,
    w: RefWindows,
}

impl RefSliding {
    fn check(&mut self, t: u64) -> Verdict {
        // A drop changes nothing: it opens no window.
        let opened = self.w.enter(t);
        let iv = u128::from(self.w.interval);
        let e = self.w.elapsed(t);
        let estimate =
            u128::from(self.w.last()) * (iv - e) + (u128::from(self.w.counter()) + 1) * iv;
        let ok = estimate <= u128::from(self.limit) * iv;
        if ok {
            self.w.add();
        } else if opened {
            self.w.windows.pop();
        }
        pass(ok)
    }
}

/// FEEDBACK pipe: every request counted; drop iff `(61 * (c % 100)) % 100 < rate`.
#[derive(Debug, Clone)]
struct RefFeedback {
    w: RefWindows,
}

impl RefFeedback {
    fn check(&mut self, t: u64, rate: u8) -> Verdict {
        self.w.enter(t);
        self.w.add();
        let position = (61 * (self.w.counter() % 100)) % 100;
        pass(position >= u32::from(rate))
    }
}

/// NETWORK: every request counted; pass iff bytes waiting `<= limit`.
#[derive(Debug, Clone)]
struct RefNetwork {
    limit: u32,
    w: RefWindows,
}

impl RefNetwork {
    fn check(&mut self, t: u64, bytes: u64) -> Verdict {
        self.w.enter(t);
        self.w.add();
        pass(u128::from(bytes) <= u128::from(self.limit))
    }
}

/// NOP: counts, passes with its own verdict.
#[derive(Debug, Clone)]
struct RefNop {
    w: RefWindows,
}

impl RefNop {
    fn check(&mut self, t: u64) -> Verdict {
        self.w.enter(t);
        self.w.add();
        Verdict::PassNop
    }
}

/// FreeSWITCH interval limit: every call counted.
#[derive(Debug, Clone)]
struct RefInterval {
    max: i32,
    zero: MaxZero,
    w: RefWindows,
}

impl RefInterval {
    fn check(&mut self, t: u64) -> Verdict {
        let first_of_window = self.w.enter(t);
        self.w.add();
        let n = i64::from(self.w.counter());
        pass(if self.max < 0 {
            true
        } else if self.max == 0 {
            match self.zero {
                MaxZero::RefuseAll => false,
                MaxZero::ModHash => first_of_window,
                MaxZero::Unlimited => true,
            }
        } else {
            n <= i64::from(self.max)
        })
    }
}

/// Concurrent slots.
#[derive(Debug, Clone)]
struct RefSlots {
    max: i32,
    usage: u64,
    unmatched: u64,
}

impl RefSlots {
    fn new(max: i32) -> RefSlots {
        RefSlots {
            max,
            usage: 0,
            unmatched: 0,
        }
    }

    fn acquire(&mut self) -> SlotVerdict {
        let full = self.usage >= u64::from(u32::MAX)
            || (self.max >= 0 && self.usage + 1 > self.max as u64);
        if full {
            SlotVerdict::Refused
        } else {
            self.usage += 1;
            SlotVerdict::Acquired
        }
    }

    fn release(&mut self) -> Release {
        if self.usage == 0 {
            self.unmatched = (self.unmatched + 1).min(u64::from(u32::MAX));
            Release::Unmatched
        } else {
            self.usage -= 1;
            Release::Released
        }
    }
}

/// GCRA, from SEMANTICS.md: `T = period / rate`, `tau = T * (burst - 1)`;
/// refuse iff `t < TAT - tau`; else `TAT = max(TAT, t) + T`. Computed
/// exactly; the only clamps are the documented ones (TAT stops at
/// `u64::MAX - 1`, tau at `u64::MAX`).
#[derive(Debug, Clone)]
struct RefGcra {
    period: u64,
    rate: u32,
    burst: u32,
    t: u128,
    tau: u128,
    tat: u128,
}

impl RefGcra {
    fn new(rate: u32, period: u64, burst: u32) -> Result<RefGcra, Error> {
        if period == 0 {
            return Err(Error::ZeroInterval);
        }
        if rate == 0 {
            return Err(Error::InvalidLimit);
        }
        if burst == 0 {
            return Err(Error::InvalidBurst);
        }
        let t = u128::from(period) / u128::from(rate);
        if t == 0 {
            return Err(Error::RateTooHigh);
        }
        Ok(RefGcra {
            period,
            rate,
            burst,
            t,
            tau: (t * (u128::from(burst) - 1)).min(MAX),
            tat: 0,
        })
    }

    fn check(&mut self, now: u64) -> Verdict {
        if i128::from(now) < self.tat as i128 - self.tau as i128 {
            return Verdict::Drop;
        }
        self.tat = (self.tat.max(u128::from(now)) + self.t).min(MAX - 1);
        Verdict::Pass
    }

    fn earliest(&self) -> u64 {
        (self.tat as i128 - self.tau as i128).max(0) as u64
    }
}

fn assert_gcra(real: &Gcra, m: &RefGcra) -> Result<(), TestCaseError> {
    prop_assert_eq!(u128::from(real.tat()), m.tat, "tat");
    prop_assert_eq!(real.earliest(), m.earliest(), "earliest");
    prop_assert_eq!(u128::from(real.emission_interval()), m.t, "T");
    prop_assert_eq!(u128::from(real.tolerance()), m.tau, "tau");
    prop_assert_eq!(real.rate(), m.rate);
    prop_assert_eq!(real.burst(), m.burst);
    Ok(())
}

/// The two anchors every window test runs with.
fn anchors(epoch: u64) -> [Anchor; 2] {
    [Anchor::Aligned { epoch }, Anchor::FirstEvent]
}

// ---------------------------------------------------------------------------
// Drivers, one per limiter
// ---------------------------------------------------------------------------

/// Runs one request on both sides: (real, model) verdicts. Arguments: time,
/// FEEDBACK drop rate, NETWORK bytes waiting.
type CheckFn<'a, R, M> = &'a dyn Fn(&mut R, &mut M, u64, u8, u64) -> (Verdict, Verdict);
/// Applies a new limit to both sides and compares the outcomes.
type SetLimitFn<'a, R, M> = &'a dyn Fn(&mut R, &mut M, i64) -> Result<(), TestCaseError>;
/// Compares everything observable, at the clock and at a probe time.
type AssertFn<'a, R, M> = &'a dyn Fn(&R, &M, u64, u64) -> Result<(), TestCaseError>;

/// Runs `ops` on a window-based pipe. `check` runs one request on both sides
/// and returns (real, model) verdicts; `set_limit` applies a new limit to
/// both; `assert` compares everything else.
struct Drive<'a, R, M> {
    ctx: Ctx,
    start: Step,
    real: R,
    model: M,
    check: CheckFn<'a, R, M>,
    reset: &'a dyn Fn(&mut R, &mut M),
    set_limit: SetLimitFn<'a, R, M>,
    assert: AssertFn<'a, R, M>,
}

impl<R, M> Drive<'_, R, M> {
    fn run(mut self, ops: &[Op]) -> Result<(), TestCaseError> {
        let mut clock = self.start.apply(0, self.ctx);
        (self.assert)(&self.real, &self.model, clock, clock)?;
        for (i, op) in ops.iter().enumerate() {
            let mut probe = clock;
            match *op {
                Op::Check {
                    step,
                    rate,
                    bytes,
                    repeat,
                } => {
                    clock = step.apply(clock, self.ctx);
                    probe = clock;
                    for k in 0..=repeat {
                        let (got, want) =
                            (self.check)(&mut self.real, &mut self.model, clock, rate, bytes);
                        prop_assert_eq!(got, want, "verdict {} of op {} at t = {}", k, i, clock);
                    }
                }
                Op::Probe(step) => probe = step.apply(clock, self.ctx),
                Op::Reset => (self.reset)(&mut self.real, &mut self.model),
                Op::SetLimit(l) => (self.set_limit)(&mut self.real, &mut self.model, l)?,
                Op::Acquire | Op::Release => {}
            }
            (self.assert)(&self.real, &self.model, clock, probe)
                .map_err(|e| TestCaseError::fail(format!("after op {i} {op:?}: {e}")))?;
        }
        Ok(())
    }
}

fn run_taildrop(ctx: Ctx, start: Step, limit: u32, ops: &[Op]) -> Result<(), TestCaseError> {
    for anchor in anchors(ctx.epoch) {
        Drive {
            ctx,
            start,
            real: Taildrop::new(limit, window(ctx.interval, anchor)),
            model: RefTaildrop {
                limit,
                w: RefWindows::new(ctx.interval, anchor),
            },
            check: &|r: &mut Taildrop, m: &mut RefTaildrop, t, _, _| (r.check(t), m.check(t)),
            reset: &|r: &mut Taildrop, m: &mut RefTaildrop| {
                r.reset();
                m.w.reset();
            },
            set_limit: &|r: &mut Taildrop, m: &mut RefTaildrop, l| {
                r.set_limit(l as u32);
                m.limit = l as u32;
                Ok(())
            },
            assert: &|r: &Taildrop, m: &RefTaildrop, now, probe| {
                prop_assert_eq!(r.limit(), m.limit);
                assert_windows(r.counter(), &m.w, now, probe)
            },
        }
        .run(ops)?;
    }
    Ok(())
}

fn run_red(ctx: Ctx, start: Step, limit: u32, ops: &[Op]) -> Result<(), TestCaseError> {
    for anchor in anchors(ctx.epoch) {
        let w = RefWindows::new(ctx.interval, anchor);
        let real = Red::new(limit, window(ctx.interval, anchor));
        let model = RefRed::new(limit, w);
        let (real, model) = match (real, model) {
            (Ok(r), Ok(m)) => (r, m),
            (r, m) => {
                prop_assert_eq!(r.err(), m.err());
                continue;
            }
        };
        Drive {
            ctx,
            start,
            real,
            model,
            check: &|r: &mut Red, m: &mut RefRed, t, _, _| (r.check(t), m.check(t)),
            reset: &|r: &mut Red, m: &mut RefRed| {
                r.reset();
                m.w.reset();
            },
            set_limit: &|r: &mut Red, m: &mut RefRed, l| {
                let before = *r;
                let (got, want) = (r.set_limit(l as u32), m.set_limit(l as u32));
                prop_assert_eq!(got, want);
                if got.is_err() {
                    prop_assert_eq!(*r, before, "a refused limit changes nothing");
                }
                Ok(())
            },
            assert: &|r: &Red, m: &RefRed, now, probe| {
                prop_assert_eq!(r.limit(), m.limit);
                prop_assert_eq!(r.load(), m.load, "load");
                prop_assert_eq!(r.load_at(now), m.load_at(now), "load_at clock");
                prop_assert_eq!(r.load_at(probe), m.load_at(probe), "load_at probe");
                assert_windows(r.counter(), &m.w, now, probe)
            },
        }
        .run(ops)?;
    }
    Ok(())
}

fn run_redp(ctx: Ctx, start: Step, limit: u32, ops: &[Op]) -> Result<(), TestCaseError> {
    for anchor in anchors(ctx.epoch) {
        let real = RedProportional::new(limit, window(ctx.interval, anchor));
        let model = RefRedP::new(limit, RefWindows::new(ctx.interval, anchor));
        let (real, model) = match (real, model) {
            (Ok(r), Ok(m)) => (r, m),
            (r, m) => {
                prop_assert_eq!(r.err(), m.err());
                continue;
            }
        };
        Drive {
            ctx,
            start,
            real,
            model,
            check: &|r: &mut RedProportional, m: &mut RefRedP, t, _, _| (r.check(t), m.check(t)),
            reset: &|r: &mut RedProportional, m: &mut RefRedP| {
                r.reset();
                m.w.reset();
            },
            set_limit: &|r: &mut RedProportional, m: &mut RefRedP, l| {
                let before = *r;
                let (got, want) = (r.set_limit(l as u32), m.set_limit(l as u32));
                prop_assert_eq!(got, want);
                if got.is_err() {
                    prop_assert_eq!(*r, before, "a refused limit changes nothing");
                }
                Ok(())
            },
            assert: &|r: &RedProportional, m: &RefRedP, now, probe| {
                prop_assert_eq!(r.limit(), m.limit);
                prop_assert_eq!(r.load_at(now), m.load_at(now), "load_at clock");
                prop_assert_eq!(r.load_at(probe), m.load_at(probe), "load_at probe");
                assert_windows(r.counter(), &m.w, now, probe)
            },
        }
        .run(ops)?;
    }
    Ok(())
}

fn run_sliding(ctx: Ctx, start: Step, limit: u32, ops: &[Op]) -> Result<(), TestCaseError> {
    for anchor in anchors(ctx.epoch) {
        Drive {
            ctx,
            start,
            real: SlidingWindow::new(limit, window(ctx.interval, anchor)),
            model: RefSliding {
                limit,
                w: RefWindows::new(ctx.interval, anchor),
            },
            check: &|r: &mut SlidingWindow, m: &mut RefSliding, t, _, _| (r.check(t), m.check(t)),
            reset: &|r: &mut SlidingWindow, m: &mut RefSliding| {
                r.reset();
                m.w.reset();
            },
            set_limit: &|r: &mut SlidingWindow, m: &mut RefSliding, l| {
                r.set_limit(l as u32);
                m.limit = l as u32;
                Ok(())
            },
            assert: &|r: &SlidingWindow, m: &RefSliding, now, probe| {
                prop_assert_eq!(r.limit(), m.limit);
                assert_windows(r.counter(), &m.w, now, probe)
            },
        }
        .run(ops)?;
    }
    Ok(())
}

fn run_feedback(ctx: Ctx, start: Step, ops: &[Op]) -> Result<(), TestCaseError> {
    for anchor in anchors(ctx.epoch) {
        Drive {
            ctx,
            start,
            real: Feedback::new(window(ctx.interval, anchor)),
            model: RefFeedback {
                w: RefWindows::new(ctx.interval, anchor),
            },
            check: &|r: &mut Feedback, m: &mut RefFeedback, t, rate, _| {
                (r.check(t, rate), m.check(t, rate))
            },
            reset: &|r: &mut Feedback, m: &mut RefFeedback| {
                r.reset();
                m.w.reset();
            },
            set_limit: &|_: &mut Feedback, _: &mut RefFeedback, _| Ok(()),
            assert: &|r: &Feedback, m: &RefFeedback, now, probe| {
                assert_windows(r.counter(), &m.w, now, probe)
            },
        }
        .run(ops)?;
    }
    Ok(())
}

fn run_network(ctx: Ctx, start: Step, limit: u32, ops: &[Op]) -> Result<(), TestCaseError> {
    for anchor in anchors(ctx.epoch) {
        Drive {
            ctx,
            start,
            real: Network::new(limit, window(ctx.interval, anchor)),
            model: RefNetwork {
                limit,
                w: RefWindows::new(ctx.interval, anchor),
            },
            check: &|r: &mut Network, m: &mut RefNetwork, t, _, bytes| {
                let got = r.check(t, bytes);
                let want = m.check(t, bytes);
                // pipelimit's load: 1 over the limit, else -1; verdict is -load.
                let load = network_load(bytes, m.limit);
                assert_eq!(load, if want == Verdict::Drop { 1 } else { -1 });
                (got, want)
            },
            reset: &|r: &mut Network, m: &mut RefNetwork| {
                r.reset();
                m.w.reset();
            },
            set_limit: &|r: &mut Network, m: &mut RefNetwork, l| {
                r.set_limit(l as u32);
                m.limit = l as u32;
                Ok(())
            },
            assert: &|r: &Network, m: &RefNetwork, now, probe| {
                prop_assert_eq!(r.limit(), m.limit);
                assert_windows(r.counter(), &m.w, now, probe)
            },
        }
        .run(ops)?;
    }
    Ok(())
}

fn run_nop(ctx: Ctx, start: Step, ops: &[Op]) -> Result<(), TestCaseError> {
    for anchor in anchors(ctx.epoch) {
        Drive {
            ctx,
            start,
            real: Nop::new(window(ctx.interval, anchor)),
            model: RefNop {
                w: RefWindows::new(ctx.interval, anchor),
            },
            check: &|r: &mut Nop, m: &mut RefNop, t, _, _| (r.check(t), m.check(t)),
            reset: &|r: &mut Nop, m: &mut RefNop| {
                r.reset();
                m.w.reset();
            },
            set_limit: &|_: &mut Nop, _: &mut RefNop, _| Ok(()),
            assert: &|r: &Nop, m: &RefNop, now, probe| {
                assert_windows(r.counter(), &m.w, now, probe)
            },
        }
        .run(ops)?;
    }
    Ok(())
}

fn run_interval(ctx: Ctx, start: Step, max: i32, ops: &[Op]) -> Result<(), TestCaseError> {
    for anchor in anchors(ctx.epoch) {
        for zero in [MaxZero::RefuseAll, MaxZero::ModHash, MaxZero::Unlimited] {
            Drive {
                ctx,
                start,
                real: IntervalLimit::new(max, window(ctx.interval, anchor), zero),
                model: RefInterval {
                    max,
                    zero,
                    w: RefWindows::new(ctx.interval, anchor),
                },
                check: &|r: &mut IntervalLimit, m: &mut RefInterval, t, _, _| {
                    (r.check(t), m.check(t))
                },
                reset: &|r: &mut IntervalLimit, m: &mut RefInterval| {
                    r.reset();
                    m.w.reset();
                },
                set_limit: &|r: &mut IntervalLimit, m: &mut RefInterval, l| {
                    r.set_max(l as i32);
                    m.max = l as i32;
                    Ok(())
                },
                assert: &|r: &IntervalLimit, m: &RefInterval, now, probe| {
                    prop_assert_eq!(r.max(), m.max);
                    prop_assert_eq!(r.max_zero(), m.zero);
                    assert_windows(r.counter(), &m.w, now, probe)
                },
            }
            .run(ops)?;
        }
    }
    Ok(())
}

fn run_slots(max: i32, ops: &[Op]) -> Result<(), TestCaseError> {
    let mut real = Slots::new(max);
    let mut model = RefSlots::new(max);
    for (i, op) in ops.iter().enumerate() {
        match *op {
            Op::Acquire => prop_assert_eq!(real.acquire(), model.acquire(), "op {}", i),
            Op::Release => prop_assert_eq!(real.release(), model.release(), "op {}", i),
            Op::SetLimit(l) => {
                real.set_max(l as i32);
                model.max = l as i32;
            }
            // Slots have no time and no window: other operations are their
            // listing only.
            Op::Check { .. } | Op::Probe(_) | Op::Reset => {}
        }
        prop_assert_eq!(u64::from(real.usage()), model.usage, "usage after op {}", i);
        prop_assert_eq!(u64::from(real.unmatched_releases()), model.unmatched);
        prop_assert_eq!(real.max(), model.max);
        let mut copy = model.clone();
        prop_assert_eq!(
            real.has_room(),
            copy.acquire() == SlotVerdict::Acquired,
            "has_room"
        );
    }
    Ok(())
}

fn run_gcra(
    rate: u32,
    period: u64,
    burst: u32,
    start: Step,
    ops: &[Op],
) -> Result<(), TestCaseError> {
    let model = RefGcra::new(rate, period, burst);
    let real = Gcra::new(rate, period, burst);
    let (mut real, mut model) = match (real, model) {
        (Ok(r), Ok(m)) => (r, m),
        (r, m) => {
            prop_assert_eq!(r.err(), m.err());
            return Ok(());
        }
    };
    let ctx = Ctx {
        interval: clamp(model.t),
        epoch: 0,
    };
    let mut clock = start.apply(0, ctx);
    assert_gcra(&real, &model)?;
    for (i, op) in ops.iter().enumerate() {
        match *op {
            Op::Check { step, repeat, .. } => {
                clock = step.apply(clock, ctx);
                for k in 0..=repeat {
                    prop_assert_eq!(
                        real.check(clock),
                        model.check(clock),
                        "check {} of op {} at t = {}",
                        k,
                        i,
                        clock
                    );
                }
            }
            Op::Reset => {
                real.reset();
                model.tat = 0;
            }
            Op::SetLimit(x) => {
                // Puts back some TAT, near the clock or anywhere.
                let tat = clock.wrapping_add(x as u64);
                real.restore_tat(tat);
                model.tat = u128::from(tat).min(MAX - 1);
            }
            Op::Probe(_) | Op::Acquire | Op::Release => {}
        }
        assert_gcra(&real, &model)
            .map_err(|e| TestCaseError::fail(format!("after op {i} {op:?}: {e}")))?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// The Limiter enum against a plain dispatch over the models
// ---------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum RefLimiter {
    Taildrop(RefTaildrop),
    Red(RefRed),
    Feedback(RefFeedback),
    Network(RefNetwork),
    Nop(RefNop),
    Interval(RefInterval),
    Slots(RefSlots),
    Gcra(RefGcra),
    RedP(RefRedP),
    Sliding(RefSliding),
}

fn as_u32(limit: i64) -> Result<u32, Error> {
    if (0..=i64::from(u32::MAX)).contains(&limit) {
        Ok(limit as u32)
    } else {
        Err(Error::InvalidLimit)
    }
}

fn as_i32(limit: i64) -> Result<i32, Error> {
    if (i64::from(i32::MIN)..=i64::from(i32::MAX)).contains(&limit) {
        Ok(limit as i32)
    } else {
        Err(Error::InvalidLimit)
    }
}

fn percent(limit: i64) -> Result<(), Error> {
    if (0..=100).contains(&limit) {
        Ok(())
    } else {
        Err(Error::InvalidLimit)
    }
}

impl RefLimiter {
    /// `Limiter::new`'s table of what the limit means per algorithm.
    fn new(a: Algorithm, limit: i64, interval: u64, anchor: Anchor) -> Result<RefLimiter, Error> {
        let w = RefWindows::new(interval, anchor);
        Ok(match a {
            Algorithm::Taildrop => RefLimiter::Taildrop(RefTaildrop {
                limit: as_u32(limit)?,
                w,
            }),
            Algorithm::Red => RefLimiter::Red(RefRed::new(as_u32(limit)?, w)?),
            Algorithm::Feedback => {
                percent(limit)?;
                RefLimiter::Feedback(RefFeedback { w })
            }
            Algorithm::Network => RefLimiter::Network(RefNetwork {
                limit: as_u32(limit)?,
                w,
            }),
            Algorithm::Nop => RefLimiter::Nop(RefNop { w }),
            Algorithm::Interval => RefLimiter::Interval(RefInterval {
                max: as_i32(limit)?,
                zero: MaxZero::RefuseAll,
                w,
            }),
            Algorithm::Slots => RefLimiter::Slots(RefSlots::new(as_i32(limit)?)),
            Algorithm::Gcra => RefLimiter::Gcra(RefGcra::new(as_u32(limit)?, interval, 1)?),
            Algorithm::RedProportional => RefLimiter::RedP(RefRedP::new(as_u32(limit)?, w)?),
            Algorithm::Sliding => RefLimiter::Sliding(RefSliding {
                limit: as_u32(limit)?,
                w,
            }),
        })
    }

    fn check(&mut self, t: u64, shared: &Shared) -> Result<Verdict, Error> {
        Ok(match self {
            RefLimiter::Taildrop(m) => m.check(t),
            RefLimiter::Red(m) => m.check(t),
            RefLimiter::Feedback(m) => m.check(t, shared.drop_rate),
            RefLimiter::Network(m) => m.check(t, shared.bytes_waiting),
            RefLimiter::Nop(m) => m.check(t),
            RefLimiter::Interval(m) => m.check(t),
            RefLimiter::Slots(_) => return Err(Error::WrongAlgorithm),
            RefLimiter::Gcra(m) => m.check(t),
            RefLimiter::RedP(m) => m.check(t),
            RefLimiter::Sliding(m) => m.check(t),
        })
    }

    fn acquire(&mut self) -> Result<SlotVerdict, Error> {
        match self {
            RefLimiter::Slots(s) => Ok(s.acquire()),
            _ => Err(Error::WrongAlgorithm),
        }
    }

    fn release(&mut self) -> Result<Release, Error> {
        match self {
            RefLimiter::Slots(s) => Ok(s.release()),
            _ => Err(Error::WrongAlgorithm),
        }
    }

    /// Validates everything first, then changes: on error nothing changes.
    fn set_limit(&mut self, limit: i64) -> Result<(), Error> {
        match self {
            RefLimiter::Taildrop(m) => m.limit = as_u32(limit)?,
            RefLimiter::Red(m) => m.set_limit(as_u32(limit)?)?,
            RefLimiter::Feedback(_) => percent(limit)?,
            RefLimiter::Network(m) => m.limit = as_u32(limit)?,
            RefLimiter::Nop(_) => {}
            RefLimiter::Interval(m) => m.max = as_i32(limit)?,
            RefLimiter::Slots(m) => m.max = as_i32(limit)?,
            RefLimiter::Gcra(m) => {
                // Keeps its period, burst and TAT.
                let mut new = RefGcra::new(as_u32(limit)?, m.period, m.burst)?;
                new.tat = m.tat;
                *m = new;
            }
            RefLimiter::RedP(m) => m.set_limit(as_u32(limit)?)?,
            RefLimiter::Sliding(m) => m.limit = as_u32(limit)?,
        }
        Ok(())
    }

    fn reset(&mut self) {
        match self {
            RefLimiter::Taildrop(RefTaildrop { w, .. })
            | RefLimiter::Red(RefRed { w, .. })
            | RefLimiter::Feedback(RefFeedback { w })
            | RefLimiter::Network(RefNetwork { w, .. })
            | RefLimiter::Nop(RefNop { w })
            | RefLimiter::Interval(RefInterval { w, .. })
            | RefLimiter::RedP(RefRedP { w, .. })
            | RefLimiter::Sliding(RefSliding { w, .. }) => w.reset(),
            RefLimiter::Slots(_) => {}
            RefLimiter::Gcra(m) => m.tat = 0,
        }
    }

    fn windows(&self) -> Option<&RefWindows> {
        match self {
            RefLimiter::Taildrop(RefTaildrop { w, .. })
            | RefLimiter::Red(RefRed { w, .. })
            | RefLimiter::Feedback(RefFeedback { w })
            | RefLimiter::Network(RefNetwork { w, .. })
            | RefLimiter::Nop(RefNop { w })
            | RefLimiter::Interval(RefInterval { w, .. })
            | RefLimiter::RedP(RefRedP { w, .. })
            | RefLimiter::Sliding(RefSliding { w, .. }) => Some(w),
            RefLimiter::Slots(_) | RefLimiter::Gcra(_) => None,
        }
    }

    fn algorithm(&self) -> Algorithm {
        match self {
            RefLimiter::Taildrop(_) => Algorithm::Taildrop,
            RefLimiter::Red(_) => Algorithm::Red,
            RefLimiter::Feedback(_) => Algorithm::Feedback,
            RefLimiter::Network(_) => Algorithm::Network,
            RefLimiter::Nop(_) => Algorithm::Nop,
            RefLimiter::Interval(_) => Algorithm::Interval,
            RefLimiter::Slots(_) => Algorithm::Slots,
            RefLimiter::Gcra(_) => Algorithm::Gcra,
            RefLimiter::RedP(_) => Algorithm::RedProportional,
            RefLimiter::Sliding(_) => Algorithm::Sliding,
        }
    }

    fn limit(&self, setpoint: u8) -> i64 {
        match self {
            RefLimiter::Taildrop(m) => m.limit.into(),
            RefLimiter::Red(m) => m.limit.into(),
            RefLimiter::Feedback(_) => setpoint.into(),
            RefLimiter::Network(m) => m.limit.into(),
            RefLimiter::Nop(_) => 0,
            RefLimiter::Interval(m) => m.max.into(),
            RefLimiter::Slots(m) => m.max.into(),
            RefLimiter::Gcra(m) => m.rate.into(),
            RefLimiter::RedP(m) => m.limit.into(),
            RefLimiter::Sliding(m) => m.limit.into(),
        }
    }

    /// What the `Stats` docs say a listing shows.
    fn stats(&self, now: u64, shared: &Shared, setpoint: u8) -> Stats {
        let sat_i32 = |x: u32| i32::try_from(x).unwrap_or(i32::MAX);
        let (counter, last_counter) = match (self, self.windows()) {
            (_, Some(w)) => w.view(now),
            (RefLimiter::Slots(s), None) => (s.usage as u32, s.unmatched as u32),
            _ => (0, 0),
        };
        let load = match self {
            RefLimiter::Red(m) => sat_i32(m.load_at(now)),
            RefLimiter::RedP(m) => sat_i32(m.load_at(now)),
            RefLimiter::Network(m) => {
                if u128::from(shared.bytes_waiting) > u128::from(m.limit) {
                    1
                } else {
                    -1
                }
            }
            _ => 0,
        };
        Stats {
            algorithm: self.algorithm(),
            limit: self.limit(setpoint),
            counter,
            last_counter,
            load,
        }
    }
}

fn algorithm() -> impl Strategy<Value = Algorithm> {
    prop::sample::select(Algorithm::ALL.to_vec())
}

fn run_limiter(
    a: Algorithm,
    limit: i64,
    interval: u64,
    anchor: Anchor,
    start: Step,
    setpoint: u8,
    ops: &[Op],
) -> Result<(), TestCaseError> {
    let real = Limiter::new(a, limit, window(interval, anchor));
    let model = RefLimiter::new(a, limit, interval, anchor);
    let (mut real, mut model) = match (real, model) {
        (Ok(r), Ok(m)) => (r, m),
        (r, m) => {
            prop_assert_eq!(r.err(), m.err(), "Limiter::new({:?}, {})", a, limit);
            return Ok(());
        }
    };
    let epoch = match anchor {
        Anchor::Aligned { epoch } => epoch,
        Anchor::FirstEvent => 0,
    };
    let ctx = Ctx { interval, epoch };
    let mut shared = Shared::default();
    let mut clock = start.apply(0, ctx);
    for (i, op) in ops.iter().enumerate() {
        let mut probe = clock;
        match *op {
            Op::Check {
                step,
                rate,
                bytes,
                repeat,
            } => {
                clock = step.apply(clock, ctx);
                probe = clock;
                shared = Shared {
                    drop_rate: rate,
                    bytes_waiting: bytes,
                };
                for k in 0..=repeat {
                    let before = real;
                    let got = real.check(clock, &shared);
                    prop_assert_eq!(
                        got,
                        model.check(clock, &shared),
                        "check {} of op {} at t = {}",
                        k,
                        i,
                        clock
                    );
                    if got.is_err() {
                        prop_assert_eq!(real, before, "a refused check changes nothing");
                    }
                }
            }
            Op::Probe(step) => probe = step.apply(clock, ctx),
            Op::Reset => {
                real.reset();
                model.reset();
            }
            Op::SetLimit(l) => {
                let before = real;
                let got = real.set_limit(l);
                prop_assert_eq!(got, model.set_limit(l), "set_limit({}) at op {}", l, i);
                if got.is_err() {
                    prop_assert_eq!(real, before, "a refused limit changes nothing");
                }
            }
            Op::Acquire => prop_assert_eq!(real.acquire(), model.acquire(), "op {}", i),
            Op::Release => prop_assert_eq!(real.release(), model.release(), "op {}", i),
        }
        prop_assert_eq!(real.algorithm(), a);
        prop_assert_eq!(real.limit(setpoint), model.limit(setpoint));
        prop_assert_eq!(
            real.stats(clock, &shared, setpoint),
            model.stats(clock, &shared, setpoint),
            "stats at the clock {} after op {} {:?}",
            clock,
            i,
            op
        );
        prop_assert_eq!(
            real.stats(probe, &shared, setpoint),
            model.stats(probe, &shared, setpoint),
            "stats at probe {} after op {} {:?}",
            probe,
            i,
            op
        );
        match (real.window_counter(), model.windows()) {
            (Some(r), Some(m)) => assert_windows(r, m, clock, probe)?,
            (None, None) => {}
            (r, m) => prop_assert!(false, "window_counter {:?} vs model {:?}", r, m),
        }
        if let (Limiter::Gcra(r), RefLimiter::Gcra(m)) = (&real, &model) {
            assert_gcra(r, m)?;
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// The tests
// ---------------------------------------------------------------------------

fn ctx() -> impl Strategy<Value = Ctx> {
    (interval(), epoch()).prop_map(|(interval, epoch)| Ctx { interval, epoch })
}

fn limit_u32() -> impl Strategy<Value = u32> {
    limit_val().prop_map(|l| l as u32)
}

/// Limits for the RED family: mostly small, so that loads of 2 and more
/// (bursts of twice the limit) happen often.
fn red_limit() -> impl Strategy<Value = u32> {
    prop_oneof![3 => 1u32..=3, 1 => limit_u32()]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn taildrop_matches_model(ctx in ctx(), start in step(), limit in limit_u32(), ops in rate_ops()) {
        run_taildrop(ctx, start, limit, &ops)?;
    }

    #[test]
    fn red_matches_model(ctx in ctx(), start in step(), limit in red_limit(), ops in rate_ops()) {
        run_red(ctx, start, limit, &ops)?;
    }

    #[test]
    fn red_proportional_matches_model(
        ctx in ctx(), start in step(), limit in red_limit(), ops in rate_ops()
    ) {
        run_redp(ctx, start, limit, &ops)?;
    }

    #[test]
    fn sliding_matches_model(ctx in ctx(), start in step(), limit in limit_u32(), ops in rate_ops()) {
        run_sliding(ctx, start, limit, &ops)?;
    }

    #[test]
    fn feedback_matches_model(ctx in ctx(), start in step(), ops in rate_ops()) {
        run_feedback(ctx, start, &ops)?;
    }

    #[test]
    fn network_matches_model(ctx in ctx(), start in step(), limit in limit_u32(), ops in rate_ops()) {
        run_network(ctx, start, limit, &ops)?;
    }

    #[test]
    fn nop_matches_model(ctx in ctx(), start in step(), ops in rate_ops()) {
        run_nop(ctx, start, &ops)?;
    }

    #[test]
    fn interval_matches_model_for_every_max_zero_and_anchor(
        ctx in ctx(), start in step(), max in limit_val(), ops in rate_ops()
    ) {
        run_interval(ctx, start, max as i32, &ops)?;
    }

    #[test]
    fn slots_match_model(max in limit_val(), ops in all_ops()) {
        run_slots(max as i32, &ops)?;
    }

    #[test]
    fn gcra_matches_model(
        rate in prop_oneof![4 => 1u32..=5, 1 => 0u32..=1000, 1 => any::<u32>()],
        period in prop_oneof![
            2 => 1u64..=100,
            3 => 1_000u64..=1_000_000_000_000,
            1 => (u64::MAX / 2)..=u64::MAX,
            1 => Just(u64::MAX),
            1 => Just(0u64),
        ],
        burst in prop_oneof![4 => 1u32..=5, 1 => 0u32..=1000, 1 => any::<u32>(), 1 => Just(u32::MAX)],
        start in step(),
        ops in rate_ops(),
    ) {
        run_gcra(rate, period, burst, start, &ops)?;
    }

    #[test]
    fn limiter_dispatch_matches_model(
        a in algorithm(),
        limit in limit_val(),
        interval in interval(),
        epoch in epoch(),
        first_event in any::<bool>(),
        start in step(),
        setpoint in prop_oneof![0u8..=100, any::<u8>()],
        ops in all_ops(),
    ) {
        let anchor = if first_event { Anchor::FirstEvent } else { Anchor::Aligned { epoch } };
        run_limiter(a, limit, interval, anchor, start, setpoint, &ops)?;
    }
}
