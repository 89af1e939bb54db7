//! Every benchmarked operation, set up once and driven one operation at a
//! time, by criterion (`benches/*.rs`) and by the instruction counter
//! (`bin/fg_icount.rs`) alike.
//!
//! Each case owns its limiter, its keys and a [`BenchClock`]. One
//! [`Case::op`] advances the clock by [`STEP_NS`](crate::STEP_NS), picks a
//! key if the case is keyed, and makes one call through the side's natural
//! API. Setup (creating every key, loading the library) is not measured.
//! [`verify`] runs a case a while and fails unless every operation
//! succeeded, so every side is measured on its pass path.
//!
//! Case names are `group/side/parameter`, the same as criterion's ids; see
//! [`NAMES`] and [`with_case`].

use std::num::NonZeroU32;
use std::time::Duration;

use floodgate::table::{Balanced, Config, Handle, LeaseRelease, LeaseVerdict, Owner, Table};
use floodgate::{Algorithm, Limiter, MaxZero, Release, Shared, SlotVerdict, Verdict, Window};
use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::state::keyed::DashMapStateStore;
use governor::state::{InMemoryState, NotKeyed};
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::clock::BenchClock;
use crate::ffi::{FgConfig, FgLib, FgTable};
use crate::keys::{ipv4_keys, Pattern, Picker};
use crate::peers::{ChainedTable, FixedWindow, LeasedSlots, MutexMap};
use crate::{INTERVAL_NS, RATE_PER_SEC, SEED};

/// One benchmarked operation.
pub trait Case {
    /// Does one operation; 1 if it succeeded (passed, acquired and
    /// released), else 0.
    fn op(&mut self) -> u64;
}

/// Runs `case` for `n` operations and fails unless every one succeeded.
pub fn verify<C: Case>(name: &str, case: &mut C, n: usize) {
    let ok: u64 = (0..n).map(|_| case.op()).sum();
    assert_eq!(
        ok, n as u64,
        "{name}: only {ok} of {n} operations succeeded"
    );
}

/// Slots max of the slot, lease and balance cases: never reached, since
/// every operation releases what it took.
pub const SLOT_MAX: i32 = 1_000;
/// Hold time of the lease cases (60 s of fake time).
pub const HOLD_NS: u64 = 60_000_000_000;

/// The algorithms of the single-pipe cases, as criterion parameters.
pub const ALGORITHMS: [(Algorithm, &str); 5] = [
    (Algorithm::Taildrop, "TAILDROP"),
    (Algorithm::Red, "RED"),
    (Algorithm::Feedback, "FEEDBACK"),
    (Algorithm::Interval, "INTERVAL"),
    (Algorithm::Gcra, "GCRA"),
];

/// The limit a table pipe of `a` gets: [`RATE_PER_SEC`] per
/// [`INTERVAL_NS`], or a FEEDBACK setpoint of 50 % (no load is pushed, so
/// its drop rate stays 0).
pub fn limit_of(a: Algorithm) -> i64 {
    match a {
        Algorithm::Feedback => 50,
        _ => i64::from(RATE_PER_SEC),
    }
}

/// A floodgate table in leaked memory (benchmarks keep it for the run),
/// windows of [`INTERVAL_NS`] from 0, seed [`SEED`].
pub fn leaked_table(capacity: usize, lease_capacity: usize) -> Table<'static> {
    let config = Config {
        capacity,
        lease_capacity,
        interval_ns: INTERVAL_NS,
        epoch: 0,
        seed: SEED,
    };
    let region = leaked_region(Table::size_for(&config).expect("valid table config"));
    Table::init_in(region, &config, Owner::SINGLE_PROCESS).expect("table init")
}

/// `bytes` of zeroed, 8-aligned, leaked memory.
pub fn leaked_region(bytes: usize) -> &'static mut [u8] {
    let words: &'static mut [u64] = Box::leak(vec![0u64; bytes.div_ceil(8)].into_boxed_slice());
    let len = words.len() * 8;
    // SAFETY: the words are leaked (valid for 'static) and this is the only
    // reference to them; u8 has no alignment requirement and every byte of
    // a u64 is initialised.
    unsafe { std::slice::from_raw_parts_mut(words.as_mut_ptr().cast::<u8>(), len) }
}

/// Entries for `keys` keys: 90 % load, as the table docs say to size.
///
/// With every pipe's window still open (nothing idle to evict), inserts
/// first fail with `Error::Full` at 92 % to 94 % load at 100 000 and
/// 1 000 000 entries and 95 % to 98 % at 1 000 (`core/tests/load.rs`).
pub fn capacity_for(keys: usize) -> usize {
    (keys * 10).div_ceil(9).max(1)
}

fn quota() -> Quota {
    Quota::per_second(NonZeroU32::new(RATE_PER_SEC).expect("non-zero rate"))
}

/// A quota that a real clock never exhausts (one cell per ns, a burst of
/// 2^32 - 1), for governor with its own (quanta) clock.
fn quota_unbounded() -> Quota {
    Quota::with_period(Duration::from_nanos(1))
        .expect("non-zero period")
        .allow_burst(NonZeroU32::MAX)
}

fn pass(v: Result<Verdict, floodgate::Error>) -> u64 {
    u64::from(matches!(v, Ok(Verdict::Pass)))
}

// ---------------------------------------------------------------------------
// Single pipe.

/// floodgate: one pipe of an algorithm in a table, checked by key
/// ([`Table::check`], pipelimit's `pl_check(name)`).
pub struct FgPipe {
    table: Table<'static>,
    key: &'static [u8],
    clock: BenchClock,
}

impl FgPipe {
    /// A table of 1024 entries holding one pipe of `a`.
    pub fn new(a: Algorithm) -> FgPipe {
        FgPipe::in_table(leaked_table(1024, 0), a)
    }

    /// The pipe `"10.0.0.1"` of `a` in `table`.
    pub fn in_table(table: Table<'static>, a: Algorithm) -> FgPipe {
        let key: &'static [u8] = b"10.0.0.1";
        table.set(key, a, limit_of(a), 0).expect("create the pipe");
        FgPipe {
            table,
            key,
            clock: BenchClock::new(),
        }
    }
}

impl Case for FgPipe {
    #[inline(always)]
    fn op(&mut self) -> u64 {
        pass(self.table.check(self.key, self.clock.tick()))
    }
}

/// floodgate: one FreeSWITCH mod_hash limit (`RATE_PER_SEC` per
/// [`INTERVAL_NS`], windows from the first call) in a table, checked by
/// key ([`Table::rate_check`], `limit hash ... max/interval`).
pub struct FgModHash {
    table: Table<'static>,
    clock: BenchClock,
}

impl FgModHash {
    /// A table of 1024 entries; the limit is made by the first check.
    pub fn new() -> FgModHash {
        FgModHash {
            table: leaked_table(1024, 0),
            clock: BenchClock::new(),
        }
    }
}

impl Default for FgModHash {
    fn default() -> FgModHash {
        FgModHash::new()
    }
}

impl Case for FgModHash {
    #[inline(always)]
    fn op(&mut self) -> u64 {
        let now = self.clock.tick();
        let max = RATE_PER_SEC as i32;
        pass(
            self.table
                .rate_check(b"10.0.0.1", max, INTERVAL_NS, true, MaxZero::RefuseAll, now),
        )
    }
}

/// [`FgModHash`]'s limit, resolved once and checked through the handle
/// ([`Table::rate_check_ref`]): no hash, no lookup.
pub struct FgModHashRef {
    table: Table<'static>,
    handle: Handle,
    clock: BenchClock,
}

impl FgModHashRef {
    /// The limit made by one `rate_check`, then resolved.
    pub fn new() -> FgModHashRef {
        let mut m = FgModHash::new();
        m.op();
        FgModHashRef {
            handle: m.table.resolve(b"10.0.0.1").expect("resolve the limit"),
            table: m.table,
            clock: m.clock,
        }
    }
}

impl Default for FgModHashRef {
    fn default() -> FgModHashRef {
        FgModHashRef::new()
    }
}

impl Case for FgModHashRef {
    #[inline(always)]
    fn op(&mut self) -> u64 {
        let now = self.clock.tick();
        pass(
            self.table
                .rate_check_ref(self.handle, RATE_PER_SEC as i32, now),
        )
    }
}

/// floodgate's table pipe checked through a resolved handle
/// ([`Table::check_ref`]): no hash, no lookup; the entry's lock and the
/// generation check remain.
pub struct FgPipeRef {
    table: Table<'static>,
    handle: Handle,
    clock: BenchClock,
}

impl FgPipeRef {
    /// [`FgPipe::new`]'s pipe, resolved once.
    pub fn new(a: Algorithm) -> FgPipeRef {
        let p = FgPipe::new(a);
        FgPipeRef {
            handle: p.table.resolve(p.key).expect("resolve the pipe"),
            table: p.table,
            clock: p.clock,
        }
    }
}

impl Case for FgPipeRef {
    #[inline(always)]
    fn op(&mut self) -> u64 {
        pass(self.table.check_ref(self.handle, self.clock.tick()))
    }
}

/// floodgate's limiter itself: a `Copy` state machine behind `&mut`, with
/// no table, key or lock (what an embedded, single-owner user runs).
pub struct FgBare {
    limiter: Limiter,
    shared: Shared,
    clock: BenchClock,
}

impl FgBare {
    /// A limiter of `a` with the table pipes' parameters.
    pub fn new(a: Algorithm) -> FgBare {
        let w = Window::aligned(INTERVAL_NS, 0).expect("window");
        FgBare {
            limiter: Limiter::new(a, limit_of(a), w).expect("limiter"),
            shared: Shared::default(),
            clock: BenchClock::new(),
        }
    }
}

impl Case for FgBare {
    #[inline(always)]
    fn op(&mut self) -> u64 {
        pass(self.limiter.check(self.clock.tick(), &self.shared))
    }
}

/// governor's direct limiter on the benchmark clock.
pub struct GovDirect {
    lim: RateLimiter<NotKeyed, InMemoryState, BenchClock, NoOpMiddleware<Nanos>>,
    clock: BenchClock,
}

impl GovDirect {
    /// [`RATE_PER_SEC`] per second, burst as much.
    pub fn new() -> GovDirect {
        let clock = BenchClock::new();
        GovDirect {
            lim: RateLimiter::direct_with_clock(quota(), clock.clone()),
            clock,
        }
    }
}

impl Default for GovDirect {
    fn default() -> Self {
        Self::new()
    }
}

impl Case for GovDirect {
    #[inline(always)]
    fn op(&mut self) -> u64 {
        self.clock.tick();
        u64::from(self.lim.check().is_ok())
    }
}

/// governor's direct limiter as shipped (`DefaultDirectRateLimiter`, which
/// reads the TSC through quanta), with a quota real time never exhausts.
pub struct GovDirectQuanta {
    lim: DefaultDirectRateLimiter,
}

impl GovDirectQuanta {
    /// One cell per ns, burst 2^32 - 1.
    pub fn new() -> GovDirectQuanta {
        GovDirectQuanta {
            lim: RateLimiter::direct(quota_unbounded()),
        }
    }
}

impl Default for GovDirectQuanta {
    fn default() -> Self {
        Self::new()
    }
}

impl Case for GovDirectQuanta {
    #[inline(always)]
    fn op(&mut self) -> u64 {
        u64::from(self.lim.check().is_ok())
    }
}

/// ratelimit's lock-free token bucket on the benchmark clock.
pub struct RateLimit {
    lim: ratelimit::Ratelimiter<BenchClock>,
    clock: BenchClock,
}

impl RateLimit {
    /// [`RATE_PER_SEC`] per second, as many tokens at most and at start.
    pub fn new() -> RateLimit {
        let clock = BenchClock::new();
        let r = u64::from(RATE_PER_SEC);
        RateLimit {
            lim: ratelimit::Builder::with_clock(r, clock.clone())
                .max_tokens(r)
                .initial_available(r)
                .build()
                .expect("ratelimit"),
            clock,
        }
    }
}

impl Default for RateLimit {
    fn default() -> Self {
        Self::new()
    }
}

impl Case for RateLimit {
    #[inline(always)]
    fn op(&mut self) -> u64 {
        self.clock.tick();
        u64::from(self.lim.try_wait().is_ok())
    }
}

// ---------------------------------------------------------------------------
// Keyed checks.

/// floodgate: [`Table::check_or_create`] (pipelimit's `pl_check(name,
/// TAILDROP, limit)`, created on first use like governor's `check_key`).
pub struct FgKeyed {
    table: Table<'static>,
    keys: Vec<String>,
    pick: Picker,
    clock: BenchClock,
}

impl FgKeyed {
    /// `n` keys, all created, in a table of [`capacity_for`]`(n)` entries.
    pub fn new(n: usize, pattern: Pattern) -> FgKeyed {
        let c = FgKeyed {
            table: leaked_table(capacity_for(n), 0),
            keys: ipv4_keys(n),
            pick: Picker::new(n, pattern),
            clock: BenchClock::new(),
        };
        for k in &c.keys {
            let lim = i64::from(RATE_PER_SEC);
            let v = c
                .table
                .check_or_create(k.as_bytes(), Algorithm::Taildrop, lim, 0);
            assert_eq!(v, Ok(Verdict::Pass), "create {k}");
        }
        c
    }
}

impl Case for FgKeyed {
    #[inline(always)]
    fn op(&mut self) -> u64 {
        let now = self.clock.tick();
        let k = &self.keys[self.pick.next_index()];
        let lim = i64::from(RATE_PER_SEC);
        pass(
            self.table
                .check_or_create(k.as_bytes(), Algorithm::Taildrop, lim, now),
        )
    }
}

/// [`FgKeyed`]'s keys, each resolved once: [`Table::check_ref`] through
/// the picked key's handle.
pub struct FgKeyedRef {
    table: Table<'static>,
    handles: Vec<Handle>,
    pick: Picker,
    clock: BenchClock,
}

impl FgKeyedRef {
    /// `n` keys, all created and resolved.
    pub fn new(n: usize, pattern: Pattern) -> FgKeyedRef {
        let k = FgKeyed::new(n, pattern);
        let handles = k
            .keys
            .iter()
            .map(|key| k.table.resolve(key.as_bytes()).expect("resolve"))
            .collect();
        FgKeyedRef {
            table: k.table,
            handles,
            pick: k.pick,
            clock: k.clock,
        }
    }
}

impl Case for FgKeyedRef {
    #[inline(always)]
    fn op(&mut self) -> u64 {
        let now = self.clock.tick();
        let h = self.handles[self.pick.next_index()];
        pass(self.table.check_ref(h, now))
    }
}

/// governor's keyed limiter (its default store, a `DashMap<String, _>`) on
/// the benchmark clock.
pub struct GovKeyed {
    lim: RateLimiter<String, DashMapStateStore<String>, BenchClock, NoOpMiddleware<Nanos>>,
    keys: Vec<String>,
    pick: Picker,
    clock: BenchClock,
}

impl GovKeyed {
    /// `n` keys, all created.
    pub fn new(n: usize, pattern: Pattern) -> GovKeyed {
        let clock = BenchClock::new();
        let c = GovKeyed {
            lim: RateLimiter::dashmap_with_clock(quota(), clock.clone()),
            keys: ipv4_keys(n),
            pick: Picker::new(n, pattern),
            clock,
        };
        for k in &c.keys {
            assert!(c.lim.check_key(k).is_ok());
        }
        c
    }
}

impl Case for GovKeyed {
    #[inline(always)]
    fn op(&mut self) -> u64 {
        self.clock.tick();
        let k = &self.keys[self.pick.next_index()];
        u64::from(self.lim.check_key(k).is_ok())
    }
}

/// governor's `DefaultKeyedRateLimiter<String>` exactly as shipped (its
/// quanta clock reads the TSC), with a quota real time never exhausts.
pub struct GovKeyedQuanta {
    lim: DefaultKeyedRateLimiter<String>,
    keys: Vec<String>,
    pick: Picker,
}

impl GovKeyedQuanta {
    /// `n` keys, all created.
    pub fn new(n: usize, pattern: Pattern) -> GovKeyedQuanta {
        let c = GovKeyedQuanta {
            lim: RateLimiter::keyed(quota_unbounded()),
            keys: ipv4_keys(n),
            pick: Picker::new(n, pattern),
        };
        for k in &c.keys {
            assert!(c.lim.check_key(k).is_ok());
        }
        c
    }
}

impl Case for GovKeyedQuanta {
    #[inline(always)]
    fn op(&mut self) -> u64 {
        let k = &self.keys[self.pick.next_index()];
        u64::from(self.lim.check_key(k).is_ok())
    }
}

/// `Mutex<HashMap<String, FixedWindow>>`: the fixed window a module author
/// writes first.
pub struct MutexKeyed {
    map: MutexMap<FixedWindow>,
    keys: Vec<String>,
    pick: Picker,
    clock: BenchClock,
}

impl MutexKeyed {
    /// `n` keys, all created.
    pub fn new(n: usize, pattern: Pattern) -> MutexKeyed {
        let c = MutexKeyed {
            map: MutexMap::new(),
            keys: ipv4_keys(n),
            pick: Picker::new(n, pattern),
            clock: BenchClock::new(),
        };
        for k in &c.keys {
            c.map.with(k, FixedWindow::default, |w| {
                w.check(0, INTERVAL_NS, RATE_PER_SEC)
            });
        }
        c
    }
}

impl Case for MutexKeyed {
    #[inline(always)]
    fn op(&mut self) -> u64 {
        let now = self.clock.tick();
        let k = &self.keys[self.pick.next_index()];
        let ok = self.map.with(k, FixedWindow::default, |w| {
            w.check(now, INTERVAL_NS, RATE_PER_SEC)
        });
        u64::from(ok)
    }
}

/// pipelimit's chained table with one lock per bucket, one bucket per key.
pub struct ChainedKeyed {
    table: ChainedTable<FixedWindow>,
    keys: Vec<String>,
    pick: Picker,
    clock: BenchClock,
}

impl ChainedKeyed {
    /// `n` keys, all created, in `2^k >= n` buckets.
    pub fn new(n: usize, pattern: Pattern) -> ChainedKeyed {
        let c = ChainedKeyed {
            table: ChainedTable::for_keys(n),
            keys: ipv4_keys(n),
            pick: Picker::new(n, pattern),
            clock: BenchClock::new(),
        };
        for k in &c.keys {
            c.table.with(k.as_bytes(), FixedWindow::default, |w| {
                w.check(0, INTERVAL_NS, RATE_PER_SEC)
            });
        }
        c
    }
}

impl Case for ChainedKeyed {
    #[inline(always)]
    fn op(&mut self) -> u64 {
        let now = self.clock.tick();
        let k = &self.keys[self.pick.next_index()];
        let ok = self.table.with(k.as_bytes(), FixedWindow::default, |w| {
            w.check(now, INTERVAL_NS, RATE_PER_SEC)
        });
        u64::from(ok)
    }
}

// ---------------------------------------------------------------------------
// Slots, leases and balancing.

/// floodgate: [`Table::acquire`] then [`Table::release`] of one key
/// (FreeSWITCH's concurrent `limit` at call start and hangup).
pub struct FgSlot {
    table: Table<'static>,
    key: &'static [u8],
    clock: BenchClock,
}

impl FgSlot {
    /// One SLOTS key in a table of 1024 entries.
    pub fn new() -> FgSlot {
        FgSlot {
            table: leaked_table(1024, 1024),
            key: b"realm/resource",
            clock: BenchClock::new(),
        }
    }
}

impl Default for FgSlot {
    fn default() -> Self {
        Self::new()
    }
}

impl Case for FgSlot {
    #[inline(always)]
    fn op(&mut self) -> u64 {
        let now = self.clock.tick();
        let a = self.table.acquire(self.key, SLOT_MAX, now);
        let r = self.table.release(self.key, now);
        u64::from(a == Ok(SlotVerdict::Acquired) && r == Ok(Release::Released))
    }
}

/// floodgate: [`Table::lease_acquire`] (hold [`HOLD_NS`]) then
/// [`Table::lease_release`].
pub struct FgLease {
    table: Table<'static>,
    key: &'static [u8],
    clock: BenchClock,
}

impl FgLease {
    /// One SLOTS key in a table of 1024 entries and 1024 lease records.
    pub fn new() -> FgLease {
        FgLease {
            table: leaked_table(1024, 1024),
            key: b"realm/resource",
            clock: BenchClock::new(),
        }
    }
}

impl Default for FgLease {
    fn default() -> Self {
        Self::new()
    }
}

impl Case for FgLease {
    #[inline(always)]
    fn op(&mut self) -> u64 {
        let now = self.clock.tick();
        match self
            .table
            .lease_acquire(self.key, SLOT_MAX, Some(HOLD_NS), now)
        {
            Ok(LeaseVerdict::Acquired(l)) => {
                u64::from(self.table.lease_release(l, now) == Ok(LeaseRelease::Released))
            }
            _ => 0,
        }
    }
}

/// The four members of the balancing cases (app_rpt virtual nodes).
pub const MEMBERS: [&str; 4] = ["hub/2001", "hub/2002", "hub/2003", "hub/2004"];

/// floodgate: [`Table::balance_acquire`] over four members, then
/// [`Table::release`] on the chosen one.
pub struct FgBalance {
    table: Table<'static>,
    members: [&'static [u8]; 4],
    clock: BenchClock,
}

impl FgBalance {
    /// Four SLOTS members in a table of 1024 entries.
    pub fn new() -> FgBalance {
        FgBalance {
            table: leaked_table(1024, 1024),
            members: MEMBERS.map(str::as_bytes),
            clock: BenchClock::new(),
        }
    }
}

impl Default for FgBalance {
    fn default() -> Self {
        Self::new()
    }
}

impl Case for FgBalance {
    #[inline(always)]
    fn op(&mut self) -> u64 {
        let now = self.clock.tick();
        match self.table.balance_acquire(&self.members, SLOT_MAX, -1, now) {
            Ok(Balanced::Acquired { member, .. }) => {
                u64::from(self.table.release(self.members[member], now) == Ok(Release::Released))
            }
            _ => 0,
        }
    }
}

/// `Mutex<HashMap<String, u32>>` slot counts: acquire and release.
pub struct MutexSlot {
    map: MutexMap<u32>,
    key: String,
    clock: BenchClock,
}

impl MutexSlot {
    /// One key.
    pub fn new() -> MutexSlot {
        MutexSlot {
            map: MutexMap::new(),
            key: "realm/resource".to_owned(),
            clock: BenchClock::new(),
        }
    }
}

impl Default for MutexSlot {
    fn default() -> Self {
        Self::new()
    }
}

/// Takes a slot of `usage` under `max`.
#[inline(always)]
fn take(usage: &mut u32, max: i32) -> bool {
    let room = max < 0 || i64::from(*usage) < i64::from(max);
    if room {
        *usage += 1;
    }
    room
}

/// Gives back a slot of `usage`.
#[inline(always)]
fn give(usage: &mut u32) -> bool {
    let held = *usage > 0;
    *usage = usage.saturating_sub(1);
    held
}

impl Case for MutexSlot {
    #[inline(always)]
    fn op(&mut self) -> u64 {
        self.clock.tick();
        let a = self.map.with(&self.key, || 0, |u| take(u, SLOT_MAX));
        let r = self.map.with(&self.key, || 0, give);
        u64::from(a && r)
    }
}

/// pipelimit-style chained table slot counts: acquire and release.
pub struct ChainedSlot {
    table: ChainedTable<u32>,
    key: &'static [u8],
    clock: BenchClock,
}

impl ChainedSlot {
    /// One key in 1024 buckets.
    pub fn new() -> ChainedSlot {
        ChainedSlot {
            table: ChainedTable::for_keys(1024),
            key: b"realm/resource",
            clock: BenchClock::new(),
        }
    }
}

impl Default for ChainedSlot {
    fn default() -> Self {
        Self::new()
    }
}

impl Case for ChainedSlot {
    #[inline(always)]
    fn op(&mut self) -> u64 {
        self.clock.tick();
        let a = self.table.with(self.key, || 0, |u| take(u, SLOT_MAX));
        let r = self.table.with(self.key, || 0, give);
        u64::from(a && r)
    }
}

/// `Mutex<HashMap<String, LeasedSlots>>`: a lease (id, expiry) per held
/// slot, expired ones dropped on acquire.
pub struct MutexLease {
    map: MutexMap<LeasedSlots>,
    key: String,
    clock: BenchClock,
}

impl MutexLease {
    /// One key.
    pub fn new() -> MutexLease {
        MutexLease {
            map: MutexMap::new(),
            key: "realm/resource".to_owned(),
            clock: BenchClock::new(),
        }
    }
}

impl Default for MutexLease {
    fn default() -> Self {
        Self::new()
    }
}

impl Case for MutexLease {
    #[inline(always)]
    fn op(&mut self) -> u64 {
        let now = self.clock.tick();
        let max = SLOT_MAX as usize;
        let id = self.map.with(&self.key, LeasedSlots::default, |s| {
            s.acquire(max, HOLD_NS, now)
        });
        match id {
            Some(id) => u64::from(
                self.map
                    .with(&self.key, LeasedSlots::default, |s| s.release(id)),
            ),
            None => 0,
        }
    }
}

/// `Mutex<HashMap<String, u32>>` balancing: under the one lock, the least
/// loaded of four members takes a slot; then it is released.
pub struct MutexBalance {
    map: MutexMap<u32>,
    members: [String; 4],
    clock: BenchClock,
}

impl MutexBalance {
    /// Four members.
    pub fn new() -> MutexBalance {
        MutexBalance {
            map: MutexMap::new(),
            members: MEMBERS.map(str::to_owned),
            clock: BenchClock::new(),
        }
    }
}

impl Default for MutexBalance {
    fn default() -> Self {
        Self::new()
    }
}

impl Case for MutexBalance {
    #[inline(always)]
    fn op(&mut self) -> u64 {
        self.clock.tick();
        let members = &self.members;
        let chosen = self.map.with_map(|m| {
            let mut best: Option<(u32, usize)> = None;
            for (i, k) in members.iter().enumerate() {
                let u = m.get(k.as_str()).copied().unwrap_or(0);
                if i64::from(u) < i64::from(SLOT_MAX) && best.is_none_or(|(b, _)| u < b) {
                    best = Some((u, i));
                }
            }
            let (_, i) = best?;
            match m.get_mut(members[i].as_str()) {
                Some(u) => *u += 1,
                None => {
                    m.insert(members[i].clone(), 1);
                }
            }
            Some(i)
        });
        match chosen {
            Some(i) => u64::from(self.map.with(&self.members[i], || 0, give)),
            None => 0,
        }
    }
}

// ---------------------------------------------------------------------------
// The C ABI.

/// A table built by `fg_table_init` in leaked memory, with a C handle on it
/// and a Rust [`Table`] attached to the same memory, so both sides call the
/// very same entries.
pub struct SharedTable {
    /// The library.
    pub lib: &'static FgLib,
    /// The C handle (`fg_table`).
    pub handle: &'static FgTable,
    /// The same table, opened from Rust.
    pub table: Table<'static>,
}

impl SharedTable {
    /// 1024 entries and lease records, windows of [`INTERVAL_NS`].
    pub fn new(lib: &'static FgLib) -> SharedTable {
        let cfg = FgConfig {
            capacity: 1024,
            lease_capacity: 1024,
            interval_ns: INTERVAL_NS,
            epoch_ns: 0,
            seed: SEED,
        };
        let mut bytes = 0usize;
        // SAFETY: both pointers are valid for the call.
        let r = unsafe { (lib.table_bytes)(&cfg, &mut bytes) };
        assert_eq!(r, crate::ffi::FG_OK, "fg_table_bytes");
        let region = leaked_region(bytes);
        let (ptr, len) = (region.as_mut_ptr(), region.len());
        let handle: &'static mut FgTable = Box::leak(Box::default());
        // SAFETY: the region is leaked and from now on only touched through
        // floodgate (the C handle and the Rust table below).
        let r = unsafe { (lib.table_init)(ptr.cast(), len, &cfg, handle) };
        assert_eq!(r, crate::ffi::FG_OK, "fg_table_init");
        // SAFETY: as above: valid for 'static, accessed only atomically.
        let table = unsafe { Table::attach_raw(ptr, len, Owner::SINGLE_PROCESS) }
            .expect("attach the table from Rust");
        SharedTable { lib, handle, table }
    }
}

/// `fg_check` on an existing TAILDROP pipe, through the shared library.
pub struct FfiCheck {
    t: SharedTable,
    key: &'static [u8],
    clock: BenchClock,
}

impl FfiCheck {
    /// The pipe `"10.0.0.1"` (made by `in_table` of [`FgPipe`] on the same
    /// table, or here).
    pub fn new(t: SharedTable) -> FfiCheck {
        let key: &'static [u8] = b"10.0.0.1";
        let a = Algorithm::Taildrop;
        t.table
            .set(key, a, limit_of(a), 0)
            .expect("create the pipe");
        FfiCheck {
            t,
            key,
            clock: BenchClock::new(),
        }
    }
}

impl Case for FfiCheck {
    #[inline(always)]
    fn op(&mut self) -> u64 {
        let now = self.clock.tick();
        // SAFETY: a valid handle and key.
        let r =
            unsafe { (self.t.lib.check)(self.t.handle, self.key.as_ptr(), self.key.len(), now) };
        u64::from(r == crate::ffi::FG_PASS)
    }
}

/// `fg_check_create` (TAILDROP) through the shared library.
pub struct FfiCheckCreate {
    t: SharedTable,
    key: &'static [u8],
    clock: BenchClock,
}

impl FfiCheckCreate {
    /// On the pipe `"10.0.0.2"`.
    pub fn new(t: SharedTable) -> FfiCheckCreate {
        FfiCheckCreate {
            t,
            key: b"10.0.0.2",
            clock: BenchClock::new(),
        }
    }
}

impl Case for FfiCheckCreate {
    #[inline(always)]
    fn op(&mut self) -> u64 {
        let now = self.clock.tick();
        let (k, n) = (self.key.as_ptr(), self.key.len());
        let lim = i64::from(RATE_PER_SEC);
        // SAFETY: a valid handle and key.
        let r = unsafe {
            (self.t.lib.check_create)(self.t.handle, k, n, crate::ffi::FG_ALGO_TAILDROP, lim, now)
        };
        u64::from(r == crate::ffi::FG_PASS)
    }
}

/// [`Table::check_or_create`] (TAILDROP) from Rust, on the table a
/// [`SharedTable`] shares with C.
pub struct RustCheckCreate {
    table: Table<'static>,
    key: &'static [u8],
    clock: BenchClock,
}

impl RustCheckCreate {
    /// On the pipe `"10.0.0.2"`.
    pub fn new(table: Table<'static>) -> RustCheckCreate {
        RustCheckCreate {
            table,
            key: b"10.0.0.2",
            clock: BenchClock::new(),
        }
    }
}

impl Case for RustCheckCreate {
    #[inline(always)]
    fn op(&mut self) -> u64 {
        let now = self.clock.tick();
        let lim = i64::from(RATE_PER_SEC);
        pass(
            self.table
                .check_or_create(self.key, Algorithm::Taildrop, lim, now),
        )
    }
}

/// [`Table::check`] from Rust behind a call that is never inlined: what the
/// C ABI adds besides the call itself.
pub struct RustCheckNoInline(pub FgPipe);

#[inline(never)]
fn check_no_inline(t: &Table<'static>, key: &[u8], now: u64) -> Result<Verdict, floodgate::Error> {
    t.check(key, now)
}

impl Case for RustCheckNoInline {
    #[inline(always)]
    fn op(&mut self) -> u64 {
        let p = &mut self.0;
        pass(check_no_inline(&p.table, p.key, p.clock.tick()))
    }
}

/// `fg_slot_acquire` then `fg_slot_release` through the shared library.
pub struct FfiSlot {
    t: SharedTable,
    key: &'static [u8],
    clock: BenchClock,
}

impl FfiSlot {
    /// On the key `"realm/resource"`.
    pub fn new(t: SharedTable) -> FfiSlot {
        FfiSlot {
            t,
            key: b"realm/resource",
            clock: BenchClock::new(),
        }
    }
}

impl Case for FfiSlot {
    #[inline(always)]
    fn op(&mut self) -> u64 {
        let now = self.clock.tick();
        let (k, n, h) = (self.key.as_ptr(), self.key.len(), self.t.handle);
        // SAFETY: a valid handle and key.
        let (a, r) = unsafe {
            (
                (self.t.lib.slot_acquire)(h, k, n, SLOT_MAX, now),
                (self.t.lib.slot_release)(h, k, n, now),
            )
        };
        u64::from(a == crate::ffi::FG_ACQUIRED && r == crate::ffi::FG_RELEASED)
    }
}

/// [`Table::acquire`] then [`Table::release`] from Rust on a given table.
pub struct RustSlot {
    table: Table<'static>,
    key: &'static [u8],
    clock: BenchClock,
}

impl RustSlot {
    /// On the key `"realm/resource"` of `table`.
    pub fn new(table: Table<'static>) -> RustSlot {
        RustSlot {
            table,
            key: b"realm/resource",
            clock: BenchClock::new(),
        }
    }
}

impl Case for RustSlot {
    #[inline(always)]
    fn op(&mut self) -> u64 {
        let now = self.clock.tick();
        let a = self.table.acquire(self.key, SLOT_MAX, now);
        let r = self.table.release(self.key, now);
        u64::from(a == Ok(SlotVerdict::Acquired) && r == Ok(Release::Released))
    }
}

// ---------------------------------------------------------------------------
// Baselines: what the harness itself costs per operation.

/// Only the clock tick every case does.
pub struct Tick {
    clock: BenchClock,
}

impl Case for Tick {
    #[inline(always)]
    fn op(&mut self) -> u64 {
        u64::from(self.clock.tick() > 0)
    }
}

/// The clock tick and the uniform key pick of the keyed cases.
pub struct TickPick {
    keys: Vec<String>,
    pick: Picker,
    clock: BenchClock,
}

impl Case for TickPick {
    #[inline(always)]
    fn op(&mut self) -> u64 {
        let now = self.clock.tick();
        let k = &self.keys[self.pick.next_index()];
        u64::from(now > 0 && !k.is_empty())
    }
}

/// The floor of any shared pipe guarded by a lock word: the clock tick, one
/// uncontended compare-and-swap that takes a lock and the release store
/// that frees it, and nothing else (no key, no state). floodgate's table
/// takes exactly one such lock per check; governor's direct limiter makes
/// one compare-and-swap on its state. Not a peer: a reference line.
pub struct LockFloor {
    word: std::sync::atomic::AtomicU32,
    clock: BenchClock,
}

impl LockFloor {
    /// An unlocked word.
    pub fn new() -> LockFloor {
        LockFloor {
            word: std::sync::atomic::AtomicU32::new(0),
            clock: BenchClock::new(),
        }
    }
}

impl Default for LockFloor {
    fn default() -> LockFloor {
        LockFloor::new()
    }
}

impl Case for LockFloor {
    #[inline(always)]
    fn op(&mut self) -> u64 {
        use std::sync::atomic::Ordering;
        let now = self.clock.tick();
        let w = std::hint::black_box(&self.word);
        let cur = w.load(Ordering::Relaxed);
        if cur & 1 != 0
            || w.compare_exchange(cur, cur | 1, Ordering::Acquire, Ordering::Relaxed)
                .is_err()
        {
            return 0;
        }
        w.store(cur ^ 0x8000_0000, Ordering::Release);
        u64::from(now > 0)
    }
}

// ---------------------------------------------------------------------------
// By name.

/// Something that runs a case it is handed (generic, so each case's
/// operation is compiled and inlined for itself).
pub trait Runner {
    /// Runs `case`.
    fn run<C: Case>(&mut self, name: &str, case: C);
}

/// Key counts of the keyed cases.
pub const KEY_COUNTS: [usize; 2] = [1_000, 100_000];

/// Every case name, `group/side/parameter`. The criterion bench files run
/// the groups single_pipe, keyed, slots and ffi (threads has its own file);
/// `baseline/*` (the harness alone) is only counted by callgrind.sh.
pub const NAMES: &[&str] = &[
    "single_pipe/floodgate/TAILDROP",
    "single_pipe/floodgate/RED",
    "single_pipe/floodgate/FEEDBACK",
    "single_pipe/floodgate/INTERVAL",
    "single_pipe/floodgate/INTERVAL_FIRST",
    "single_pipe/floodgate/GCRA",
    "single_pipe/floodgate_ref/TAILDROP",
    "single_pipe/floodgate_ref/GCRA",
    "single_pipe/floodgate_ref/INTERVAL_FIRST",
    "single_pipe/floodgate_bare/TAILDROP",
    "single_pipe/floodgate_bare/RED",
    "single_pipe/floodgate_bare/FEEDBACK",
    "single_pipe/floodgate_bare/INTERVAL",
    "single_pipe/floodgate_bare/GCRA",
    "single_pipe/governor_direct/GCRA",
    "single_pipe/governor_direct_quanta/GCRA",
    "single_pipe/ratelimit/token_bucket",
    "single_pipe/mutex_map/fixed_window",
    "single_pipe/pipelimit_table/TAILDROP",
    "single_pipe/lock_floor/cas",
    "keyed/floodgate/1000_hot",
    "keyed/floodgate/1000_uniform",
    "keyed/floodgate/100000_hot",
    "keyed/floodgate/100000_uniform",
    "keyed/floodgate_ref/1000_hot",
    "keyed/floodgate_ref/1000_uniform",
    "keyed/floodgate_ref/100000_hot",
    "keyed/floodgate_ref/100000_uniform",
    "keyed/governor_keyed/1000_hot",
    "keyed/governor_keyed/1000_uniform",
    "keyed/governor_keyed/100000_hot",
    "keyed/governor_keyed/100000_uniform",
    "keyed/governor_keyed_quanta/1000_hot",
    "keyed/governor_keyed_quanta/1000_uniform",
    "keyed/governor_keyed_quanta/100000_hot",
    "keyed/governor_keyed_quanta/100000_uniform",
    "keyed/mutex_map/1000_hot",
    "keyed/mutex_map/1000_uniform",
    "keyed/mutex_map/100000_hot",
    "keyed/mutex_map/100000_uniform",
    "keyed/pipelimit_table/1000_hot",
    "keyed/pipelimit_table/1000_uniform",
    "keyed/pipelimit_table/100000_hot",
    "keyed/pipelimit_table/100000_uniform",
    "slots/floodgate/slot",
    "slots/floodgate/lease",
    "slots/floodgate/balance4",
    "slots/mutex_map/slot",
    "slots/mutex_map/lease",
    "slots/mutex_map/balance4",
    "slots/pipelimit_table/slot",
    "ffi/rust/check",
    "ffi/rust_noinline/check",
    "ffi/c_abi/check",
    "ffi/rust/check_create",
    "ffi/c_abi/check_create",
    "ffi/rust/slot",
    "ffi/c_abi/slot",
    "baseline/clock/tick",
    "baseline/clock_pick/100000_uniform",
];

fn algorithm(p: &str) -> Option<Algorithm> {
    ALGORITHMS.iter().find(|(_, n)| *n == p).map(|(a, _)| *a)
}

fn keyed_param(p: &str) -> Option<(usize, Pattern)> {
    let (n, pat) = p.split_once('_')?;
    let pattern = match pat {
        "hot" => Pattern::Hot,
        "uniform" => Pattern::Uniform,
        _ => return None,
    };
    Some((n.parse().ok()?, pattern))
}

/// Builds the case called `name` (one of [`NAMES`]) and hands it to `r`;
/// false if there is no such case. The `ffi/*` cases load the library
/// with [`FgLib::load_fresh`] (and panic if that fails).
pub fn with_case<R: Runner>(name: &str, r: &mut R) -> bool {
    let mut parts = name.splitn(3, '/');
    let (Some(group), Some(side), Some(param)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    let lib = || FgLib::load_fresh().unwrap_or_else(|e| panic!("{e}"));
    match (group, side) {
        ("single_pipe", "floodgate") if param == "INTERVAL_FIRST" => r.run(name, FgModHash::new()),
        ("single_pipe", "floodgate") => match algorithm(param) {
            Some(a) => r.run(name, FgPipe::new(a)),
            None => return false,
        },
        ("single_pipe", "floodgate_ref") if param == "INTERVAL_FIRST" => {
            r.run(name, FgModHashRef::new())
        }
        ("single_pipe", "floodgate_ref") => match algorithm(param) {
            Some(a) => r.run(name, FgPipeRef::new(a)),
            None => return false,
        },
        ("single_pipe", "floodgate_bare") => match algorithm(param) {
            Some(a) => r.run(name, FgBare::new(a)),
            None => return false,
        },
        ("single_pipe", "governor_direct") => r.run(name, GovDirect::new()),
        ("single_pipe", "lock_floor") => r.run(name, LockFloor::new()),
        ("single_pipe", "governor_direct_quanta") => r.run(name, GovDirectQuanta::new()),
        ("single_pipe", "ratelimit") => r.run(name, RateLimit::new()),
        ("single_pipe", "mutex_map") => r.run(name, MutexKeyed::new(1, Pattern::Hot)),
        ("single_pipe", "pipelimit_table") => r.run(name, ChainedKeyed::new(1, Pattern::Hot)),
        ("keyed", side) => {
            let Some((n, p)) = keyed_param(param) else {
                return false;
            };
            match side {
                "floodgate" => r.run(name, FgKeyed::new(n, p)),
                "floodgate_ref" => r.run(name, FgKeyedRef::new(n, p)),
                "governor_keyed" => r.run(name, GovKeyed::new(n, p)),
                "governor_keyed_quanta" => r.run(name, GovKeyedQuanta::new(n, p)),
                "mutex_map" => r.run(name, MutexKeyed::new(n, p)),
                "pipelimit_table" => r.run(name, ChainedKeyed::new(n, p)),
                _ => return false,
            }
        }
        ("slots", side) => match (side, param) {
            ("floodgate", "slot") => r.run(name, FgSlot::new()),
            ("floodgate", "lease") => r.run(name, FgLease::new()),
            ("floodgate", "balance4") => r.run(name, FgBalance::new()),
            ("mutex_map", "slot") => r.run(name, MutexSlot::new()),
            ("mutex_map", "lease") => r.run(name, MutexLease::new()),
            ("mutex_map", "balance4") => r.run(name, MutexBalance::new()),
            ("pipelimit_table", "slot") => r.run(name, ChainedSlot::new()),
            _ => return false,
        },
        ("ffi", side) => {
            let t = SharedTable::new(lib());
            match (side, param) {
                ("rust", "check") => r.run(name, FgPipe::in_table(t.table, Algorithm::Taildrop)),
                ("rust_noinline", "check") => r.run(
                    name,
                    RustCheckNoInline(FgPipe::in_table(t.table, Algorithm::Taildrop)),
                ),
                ("c_abi", "check") => r.run(name, FfiCheck::new(t)),
                ("rust", "check_create") => r.run(name, RustCheckCreate::new(t.table)),
                ("c_abi", "check_create") => r.run(name, FfiCheckCreate::new(t)),
                ("rust", "slot") => r.run(name, RustSlot::new(t.table)),
                ("c_abi", "slot") => r.run(name, FfiSlot::new(t)),
                _ => return false,
            }
        }
        ("baseline", "clock") => r.run(
            name,
            Tick {
                clock: BenchClock::new(),
            },
        ),
        ("baseline", "clock_pick") => {
            let Some((n, p)) = keyed_param(param) else {
                return false;
            };
            r.run(
                name,
                TickPick {
                    keys: ipv4_keys(n),
                    pick: Picker::new(n, p),
                    clock: BenchClock::new(),
                },
            )
        }
        _ => return false,
    }
    true
}
