//! Corrupted memory is survived: a table is built and filled in a heap
//! buffer, random byte ranges of its entries, its lease records and (in
//! some cases) its header are overwritten with random bytes or chosen
//! words, and then a random sequence of every public `Table` operation runs
//! on the attached table.
//!
//! Asserted, after every operation:
//! * it returned (no panic: proptest catches one and shrinks the case; no
//!   endless loop: a watchdog aborts the test binary after two minutes
//!   without progress, naming the operation);
//! * its result is a value or an error that the data or the arguments
//!   explain (`Corrupt`, `NoPipe`, `Full`, ...; never, say, `EmptyKey` for
//!   a valid key);
//! * it left no lock held: every lock word naming this caller named it
//!   before the operations started (an overwritten word), so no path, on
//!   garbage or not, forgets to unlock.
//!
//! A second test overwrites every word of an entry in use and of the lease
//! records, one at a time, for every algorithm, with edge values, and runs
//! every operation on that entry.
//!
//! Header corruption that hits the magic number or the layout fields makes
//! `attach` fail cleanly (`NotATable`, `LayoutMismatch`, `RegionTooSmall`).
//!
//! Most cases use an owner for which every other id is dead, so overwritten
//! lock words are taken over and the recovery path runs on garbage; a few
//! use an owner for which every id is alive, so overwritten lock words give
//! `Error::Busy` after the bounded wait instead of a hang. (An overwritten
//! word may also name this very caller, id 1: `Busy` in both.)

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Mutex, Once};
use std::time::Duration;

use floodgate::table::{
    entries_word, Config, Handle, Lease, Owner, Table, ENTRY_WORDS, HEADER_WORDS, LEASE_WORDS,
    MAX_KEY_LEN, MAX_MEMBERS,
};
use floodgate::{Algorithm, Error, Gains, MaxZero};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;

const S: u64 = 1_000_000_000;
/// This caller's owner id.
const ME: u32 = 1;
/// Owner id bits of a lock word.
const OWNER_MASK: u32 = 0x7fff_ffff;
/// Header words of the insert and controller locks (the layout's).
const HEADER_LOCKS: [usize; 2] = [12, 13];
/// Header bytes holding the magic number and the layout (words 0 to 5).
const LAYOUT_BYTES: usize = 24;
/// Where an entry's limiter state starts, and its `u32` words (the
/// layout's: lock, meta, generation, limit, 14 key words; then
/// five 64-bit state words: a hot entry's words, meta bit 31, or a locked
/// entry's interval and two buffers, whose committed one bit 31 of the
/// lock word names, see `read_words` in `core/src/table/mod.rs`).
const STATE_WORD: usize = 18;
const STATE_WORDS: usize = 10;
const _: () = assert!(STATE_WORD + STATE_WORDS == ENTRY_WORDS);

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "proptest-regressions/corrupt.txt",
        ))),
        ..ProptestConfig::default()
    }
}

// ---------------------------------------------------------------------------
// A watchdog: no progress for two minutes means an operation loops.

static BEAT: AtomicU64 = AtomicU64::new(0);
/// The case and the operation running now, for the watchdog's message.
static CASE: Mutex<String> = Mutex::new(String::new());
static CURRENT: Mutex<String> = Mutex::new(String::new());

fn start_watchdog() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        std::thread::spawn(|| {
            let (mut last, mut still) = (u64::MAX, 0);
            loop {
                std::thread::sleep(Duration::from_secs(5));
                let beat = BEAT.load(Ordering::Relaxed);
                still = if beat == last { still + 5 } else { 0 };
                last = beat;
                if still >= 120 {
                    let op = CURRENT.lock().map(|s| s.clone()).unwrap_or_default();
                    let case = CASE.lock().map(|s| s.clone()).unwrap_or_default();
                    eprintln!("watchdog: no progress for {still} s, in {op} of {case}: it loops");
                    std::process::abort();
                }
            }
        });
    });
}

// ---------------------------------------------------------------------------
// Cases

/// Keys the operations use: short, long, binary.
const KEYS: [&[u8]; 8] = [
    b"a",
    b"node/2000",
    b"sip:10.0.0.1",
    b"fs/gw1",
    b"\0\xff\x80",
    b"kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk",
    b"hub-1",
    b"hub-2",
];

fn key(k: u8) -> &'static [u8] {
    KEYS[usize::from(k) % KEYS.len()]
}

#[derive(Debug, Clone)]
enum Op {
    Check(u8),
    CheckOrCreate(u8, u8, i64),
    Active(u8),
    Set(u8, u8, i64),
    Remove(u8),
    Get(u8),
    IntervalReset(u8),
    RateCheck(u8, i32, u64, bool, u8),
    Acquire(u8, i32),
    Release(u8),
    Usage(u8),
    LeaseAcquire(u8, i32, Option<u64>),
    /// A held handle (by index), or any bits if none is held.
    LeaseRelease(usize, u64),
    ReleaseLeaseOf(u8),
    /// Resolves a key; its handle is kept.
    Resolve(u8),
    /// Through a kept handle (by index), or any bits if none is kept.
    CheckRef(usize, u64),
    RateCheckRef(usize, u64, i32),
    /// Members (distinct keys), per-member max, total max, lease hold.
    Balance(Vec<u8>, i32, i32, Option<Option<u64>>),
    CleanUnused(u32),
    Iter,
    EntryAt(usize),
    Len,
    PidGet,
    PidSet(f64, f64, f64),
    SetSetpoint(u32),
    PushLoad(f64),
    PushNetwork(u64),
    Shared,
    /// Time moves on by this many ns.
    Wait(u64),
    /// Time moves on by the table's interval: into the next window.
    NextWindow,
}

fn limit() -> impl Strategy<Value = i64> {
    prop_oneof![
        Just(-1i64),
        Just(0),
        Just(1),
        Just(3),
        Just(50),
        Just(100),
        Just(1000),
        any::<i64>()
    ]
}

fn small_i32() -> impl Strategy<Value = i32> {
    prop_oneof![-1i32..=4, any::<i32>()]
}

fn hold() -> impl Strategy<Value = Option<u64>> {
    prop_oneof![
        Just(None),
        (1u64..=100 * S).prop_map(Some),
        Just(Some(u64::MAX))
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let k = any::<u8>();
    prop_oneof![
        4 => k.prop_map(Op::Check),
        4 => (k, 0u8..10, limit()).prop_map(|(k, a, l)| Op::CheckOrCreate(k, a, l)),
        1 => k.prop_map(Op::Active),
        2 => (k, 0u8..10, limit()).prop_map(|(k, a, l)| Op::Set(k, a, l)),
        2 => k.prop_map(Op::Remove),
        2 => k.prop_map(Op::Get),
        1 => k.prop_map(Op::IntervalReset),
        2 => (k, small_i32(), prop_oneof![Just(S), 1u64..=u64::MAX], any::<bool>(), 0u8..3)
            .prop_map(|(k, m, i, a, z)| Op::RateCheck(k, m, i, a, z)),
        3 => (k, small_i32()).prop_map(|(k, m)| Op::Acquire(k, m)),
        2 => k.prop_map(Op::Release),
        2 => k.prop_map(Op::Usage),
        3 => (k, small_i32(), hold()).prop_map(|(k, m, h)| Op::LeaseAcquire(k, m, h)),
        2 => (any::<usize>(), any::<u64>()).prop_map(|(i, b)| Op::LeaseRelease(i, b)),
        1 => k.prop_map(Op::ReleaseLeaseOf),
        2 => k.prop_map(Op::Resolve),
        2 => (any::<usize>(), any::<u64>()).prop_map(|(i, b)| Op::CheckRef(i, b)),
        2 => (any::<usize>(), any::<u64>(), small_i32()).prop_map(|(i, b, m)| Op::RateCheckRef(i, b, m)),
        2 => (
            proptest::collection::btree_set(0u8..8, 1..=4),
            small_i32(),
            small_i32(),
            prop_oneof![Just(None), hold().prop_map(Some)]
        )
            .prop_map(|(m, p, t, h)| Op::Balance(m.into_iter().collect(), p, t, h)),
        1 => (0u32..4).prop_map(Op::CleanUnused),
        1 => Just(Op::Iter),
        1 => any::<usize>().prop_map(Op::EntryAt),
        1 => Just(Op::Len),
        1 => Just(Op::PidGet),
        1 => (-50.0f64..50.0, -50.0f64..50.0, -50.0f64..50.0)
            .prop_map(|(a, b, c)| Op::PidSet(a, b, c)),
        1 => (0u32..=100).prop_map(Op::SetSetpoint),
        1 => (0.0f64..=1.0).prop_map(Op::PushLoad),
        1 => any::<u64>().prop_map(Op::PushNetwork),
        1 => Just(Op::Shared),
        2 => prop_oneof![Just(0u64), 1u64..=3 * S, 1u64..=u64::MAX].prop_map(Op::Wait),
        2 => Just(Op::NextWindow),
    ]
}

/// Operations that make entries and leases, to fill a table before it is
/// overwritten.
fn filling_op() -> impl Strategy<Value = Op> {
    let k = any::<u8>();
    prop_oneof![
        3 => (k, 0u8..10, prop_oneof![Just(0i64), Just(3), Just(50)])
            .prop_map(|(k, a, l)| Op::CheckOrCreate(k, a, l)),
        2 => (k, small_i32()).prop_map(|(k, m)| Op::Acquire(k, m)),
        2 => (k, small_i32(), hold()).prop_map(|(k, m, h)| Op::LeaseAcquire(k, m, h)),
        1 => (k, 1i32..=5, prop_oneof![Just(S), 1u64..=u64::MAX], any::<bool>(), 0u8..3)
            .prop_map(|(k, m, i, a, z)| Op::RateCheck(k, m, i, a, z)),
        1 => op(),
    ]
}

/// Where an overwrite goes.
#[derive(Debug, Clone, Copy)]
enum Area {
    /// The entries' 16-bit tags (which slots are free, which key may be
    /// where): a wrong tag hides an entry or names a stranger.
    Tags,
    Entries,
    Leases,
    /// The header after its magic number and layout fields.
    HeaderRest,
    /// The whole header, layout fields included.
    Header,
    /// A lock word (an entry's, the insert lock or the controller lock):
    /// taken over from a dead holder, or Busy.
    Lock,
    /// An entry in use (its meta word says so, when overwritten): any of
    /// its fields.
    Used,
    /// The limiter state words of an entry in use: windows,
    /// counters, slot counts.
    State,
}

/// What is written.
#[derive(Debug, Clone)]
enum Fill {
    Bytes(Vec<u8>),
    /// One word (4-aligned): lock words, lengths and counts that matter.
    Word(u32),
}

#[derive(Debug, Clone)]
struct Overwrite {
    area: Area,
    /// Where in the area (modulo its size).
    at: usize,
    fill: Fill,
}

fn overwrite() -> impl Strategy<Value = Overwrite> {
    let area = prop_oneof![
        3 => Just(Area::Tags),
        6 => Just(Area::Entries),
        3 => Just(Area::Leases),
        2 => Just(Area::HeaderRest),
        1 => Just(Area::Header),
        2 => Just(Area::Lock),
        3 => Just(Area::Used),
        6 => Just(Area::State),
    ];
    let word = prop_oneof![
        4 => Just(0u32),
        2 => 0u32..16,
        1 => Just(u32::MAX - 1),
        1 => Just(ME),
        1 => Just(0x8000_0000 | ME),
        1 => Just(2),
        1 => Just(0x7fff_ffff),
        1 => Just(0x8000_0000),
        1 => Just(u32::MAX),
        2 => any::<u32>()
    ];
    let fill = prop_oneof![
        1 => proptest::collection::vec(any::<u8>(), 1..=48).prop_map(Fill::Bytes),
        2 => word.prop_map(Fill::Word),
    ];
    (area, any::<usize>(), fill).prop_map(|(area, at, fill)| Overwrite { area, at, fill })
}

#[derive(Debug, Clone)]
struct Case {
    capacity: usize,
    lease_capacity: usize,
    interval: u64,
    epoch: u64,
    /// Every other id alive (overwritten lock words are Busy), instead of dead.
    all_alive: bool,
    fill: Vec<Op>,
    overwrites: Vec<Overwrite>,
    ops: Vec<Op>,
}

fn case() -> impl Strategy<Value = Case> {
    (
        1usize..=12,
        0usize..=6,
        prop_oneof![Just(S), Just(1u64), Just(u64::MAX), 1u64..=u64::MAX],
        prop_oneof![Just(0u64), any::<u64>()],
        prop_oneof![15 => Just(false), 1 => Just(true)],
        proptest::collection::vec(filling_op(), 0..24),
        proptest::collection::vec(overwrite(), 1..16),
        proptest::collection::vec(op(), 1..40),
    )
        .prop_map(
            |(capacity, lease_capacity, interval, epoch, all_alive, fill, overwrites, ops)| {
                // Every Busy waits out the whole bound: fewer operations.
                let ops = if all_alive {
                    ops.into_iter().take(12).collect()
                } else {
                    ops
                };
                Case {
                    capacity,
                    lease_capacity,
                    interval,
                    epoch,
                    all_alive,
                    fill,
                    overwrites,
                    ops,
                }
            },
        )
}

// ---------------------------------------------------------------------------
// Running

fn owner(all_alive: bool) -> Owner {
    let o = if all_alive {
        Owner::new(ME, |_| true)
    } else {
        Owner::new(ME, |id| id == ME)
    };
    // No pause between spins: a Busy costs the bound's spins and no more.
    o.unwrap().with_relax(|_| {})
}

fn algorithm(a: u8) -> Algorithm {
    Algorithm::ALL[usize::from(a) % Algorithm::ALL.len()]
}

/// Errors that valid arguments on overwritten data may give.
fn explained(e: Error) -> bool {
    matches!(
        e,
        Error::Corrupt
            | Error::Busy
            | Error::NoPipe
            | Error::Full
            | Error::LeasesFull
            | Error::WrongAlgorithm
            // A handle whose entry the overwrite (or an operation since)
            // changed, or bits that never were a handle.
            | Error::Stale
            // Limits, bursts and rates out of range for the algorithm a
            // key holds (the generator mixes them freely), and loads or
            // gains refused by the controller.
            | Error::InvalidLimit
            | Error::InvalidBurst
            | Error::RateTooHigh
            | Error::ZeroInterval
    )
}

/// What a case's operations returned and later ones use.
#[derive(Default)]
struct Held {
    leases: Vec<Lease>,
    handles: Vec<Handle>,
}

impl Held {
    /// Kept handle `i % len`, or `bits` if none is kept.
    fn handle(&self, i: usize, bits: u64) -> Handle {
        match self.handles.len() {
            0 => Handle::from_bits(bits),
            n => self.handles[i % n],
        }
    }
}

/// Runs `op` on `t` at `now`; `Err` if it returned an unexplained error.
fn run(t: &Table<'_>, op: &Op, now: &mut u64, held: &mut Held) -> Result<(), String> {
    fn check<T: std::fmt::Debug>(r: Result<T, Error>) -> Result<(), String> {
        match r {
            Err(e) if !explained(e) => Err(format!("unexplained {e:?}")),
            _ => Ok(()),
        }
    }
    let n = *now;
    match op {
        Op::Check(k) => check(t.check(key(*k), n)),
        Op::CheckOrCreate(k, a, l) => check(t.check_or_create(key(*k), algorithm(*a), *l, n)),
        Op::Active(k) => check(t.active(key(*k))),
        Op::Set(k, a, l) => check(t.set(key(*k), algorithm(*a), *l, n)),
        Op::Remove(k) => check(t.remove(key(*k))),
        Op::Get(k) => check(t.get(key(*k), n)),
        Op::IntervalReset(k) => check(t.interval_reset(key(*k), n)),
        Op::RateCheck(k, m, i, a, z) => {
            let z = [MaxZero::RefuseAll, MaxZero::ModHash, MaxZero::Unlimited][usize::from(*z)];
            check(t.rate_check(key(*k), *m, *i, *a, z, n))
        }
        Op::Acquire(k, m) => check(t.acquire(key(*k), *m, n)),
        Op::Release(k) => check(t.release(key(*k), n)),
        Op::Usage(k) => check(t.usage(key(*k), n)),
        Op::LeaseAcquire(k, m, h) => {
            let r = t.lease_acquire(key(*k), *m, *h, n);
            if let Ok(floodgate::table::LeaseVerdict::Acquired(l)) = r {
                held.leases.push(l);
            }
            check(r)
        }
        Op::LeaseRelease(i, bits) => {
            let l = if held.leases.is_empty() {
                Lease::from_bits(*bits)
            } else {
                held.leases.swap_remove(i % held.leases.len())
            };
            check(t.lease_release(l, n))
        }
        Op::ReleaseLeaseOf(k) => check(t.release_lease_of(key(*k), n)),
        Op::Resolve(k) => {
            let r = t.resolve(key(*k));
            if let Ok(h) = r {
                held.handles.push(h);
            }
            check(r)
        }
        Op::CheckRef(i, bits) => check(t.check_ref(held.handle(*i, *bits), n)),
        Op::RateCheckRef(i, bits, m) => check(t.rate_check_ref(held.handle(*i, *bits), *m, n)),
        Op::Balance(m, per, total, hold) => {
            let members: Vec<&[u8]> = m.iter().map(|&k| KEYS[usize::from(k)]).collect();
            assert!(members.len() <= MAX_MEMBERS);
            let r = match hold {
                None => t.balance_acquire(&members, *per, *total, n),
                Some(h) => t.balance_lease(&members, *per, *total, *h, n),
            };
            if let Ok(floodgate::table::Balanced::Acquired { lease: Some(l), .. }) = r {
                held.leases.push(l);
            }
            check(r)
        }
        Op::CleanUnused(i) => {
            let removed = t.clean_unused(*i, n);
            (removed <= t.capacity())
                .then_some(())
                .ok_or_else(|| format!("clean_unused removed {removed}"))
        }
        Op::Iter => {
            let listed = t.iter(n).count();
            (listed <= t.capacity())
                .then_some(())
                .ok_or_else(|| format!("iter listed {listed}"))
        }
        Op::EntryAt(i) => {
            let i = if *i % 2 == 0 { i % t.capacity() } else { *i };
            if let Some(e) = t.entry_at(i, n) {
                let len = e.key().len();
                if len > MAX_KEY_LEN {
                    return Err(format!("a key of {len} bytes"));
                }
            }
            Ok(())
        }
        Op::Len => {
            let len = t.len();
            (len <= t.capacity())
                .then_some(())
                .ok_or_else(|| format!("len {len}"))
        }
        Op::PidGet => check(t.pid_get()),
        Op::PidSet(kp, ki, kd) => check(t.pid_set(Gains {
            kp: *kp,
            ki: *ki,
            kd: *kd,
        })),
        Op::SetSetpoint(p) => check(t.set_setpoint(*p)),
        Op::PushLoad(l) => {
            let r = t.push_load(*l);
            check(r)
        }
        Op::PushNetwork(b) => {
            t.push_network(*b);
            Ok(())
        }
        Op::Shared => {
            let s = t.shared();
            let _ = (s.drop_rate, s.bytes_waiting, t.setpoint_percent());
            Ok(())
        }
        Op::Wait(d) => {
            *now = now.saturating_add(*d);
            Ok(())
        }
        Op::NextWindow => {
            *now = now.saturating_add(t.interval());
            Ok(())
        }
    }
}

/// A table's lock words as word indices of its region: every entry's, the
/// insert lock and the controller lock.
fn lock_words(capacity: usize) -> Vec<usize> {
    (0..capacity)
        .map(|i| entries_word(capacity) + i * ENTRY_WORDS)
        .chain(HEADER_LOCKS)
        .collect()
}

/// The `u32` word `i` of the region at `base`.
///
/// # Safety
/// `base` points to a live region of more than `i` words, accessed only
/// atomically while the result is used.
unsafe fn word<'r>(base: *mut u8, i: usize) -> &'r AtomicU32 {
    // SAFETY: in bounds and 4-aligned (the region is 8-aligned), per the
    // caller; any bits are a valid AtomicU32.
    unsafe { &*base.cast::<AtomicU32>().add(i) }
}

fn overwrite_bytes(bytes: &mut [u8], o: &Overwrite, capacity: usize, lease_capacity: usize) {
    let header = HEADER_WORDS * 4;
    let first = entries_word(capacity) * 4;
    let entries = first + capacity * ENTRY_WORDS * 4;
    let end = entries + lease_capacity * LEASE_WORDS * 4;
    let (lo, hi) = match o.area {
        Area::Tags => (header, first),
        Area::Entries => (first, entries),
        Area::Leases => (entries, end),
        Area::HeaderRest => (LAYOUT_BYTES, header),
        Area::Header => (0, header),
        Area::Lock => {
            let locks = lock_words(capacity);
            let at = locks[o.at % locks.len()] * 4;
            (at, at + 4)
        }
        Area::Used | Area::State => {
            // Entries whose meta word (word 1) says "used" (state 1).
            let used: Vec<usize> = (0..capacity)
                .map(|i| first + i * ENTRY_WORDS * 4)
                .filter(|&e| bytes[e + 4] & 3 == 1)
                .collect();
            let Some(&e) = used.get(o.at % used.len().max(1)) else {
                return;
            };
            if matches!(o.area, Area::Used) {
                (e, e + ENTRY_WORDS * 4)
            } else {
                // The state words: a hot entry's, or a locked entry's
                // interval and both buffers (ten `u32` words, about what
                // one buffer of the codec's nine was before layout 9).
                let at = e + STATE_WORD * 4;
                (at, at + STATE_WORDS * 4)
            }
        }
    };
    if lo >= hi {
        return;
    }
    match &o.fill {
        Fill::Bytes(b) => {
            let at = lo + o.at % (hi - lo);
            let n = b.len().min(hi - at);
            bytes[at..at + n].copy_from_slice(&b[..n]);
        }
        Fill::Word(w) => {
            let at = lo + (o.at % (hi - lo)) / 4 * 4;
            let at = at.min(hi - 4);
            bytes[at..at + 4].copy_from_slice(&w.to_le_bytes());
        }
    }
}

/// `words` as bytes.
fn as_bytes(words: &mut [u64]) -> &mut [u8] {
    // SAFETY: u8 has alignment 1 and no invalid values, so the whole slice
    // is the middle part; it borrows `words` for as long as it lives.
    let (pre, bytes, post) = unsafe { words.align_to_mut::<u8>() };
    assert!(pre.is_empty() && post.is_empty());
    bytes
}

fn run_case(c: &Case) -> Result<(), TestCaseError> {
    start_watchdog();
    *CASE.lock().unwrap() = format!("{c:?}");
    let config = Config {
        capacity: c.capacity,
        lease_capacity: c.lease_capacity,
        interval_ns: c.interval,
        epoch: c.epoch,
        seed: 0x5eed,
    };
    let need = Table::size_for(&config).unwrap();
    let mut buf = vec![0u64; need.div_ceil(8)];
    let owner = owner(c.all_alive);
    let mut now = c.epoch.saturating_add(5 * S);
    let mut held = Held::default();
    {
        let t = Table::init_in(as_bytes(&mut buf), &config, owner).unwrap();
        for op in &c.fill {
            *CURRENT.lock().unwrap() = format!("fill {op:?}");
            // Uncorrupted: every error is explained by the arguments.
            run(&t, op, &mut now, &mut held).map_err(TestCaseError::fail)?;
            BEAT.fetch_add(1, Ordering::Relaxed);
        }
    }
    let bytes = as_bytes(&mut buf);
    let header = bytes[..HEADER_WORDS * 4].to_vec();
    for o in &c.overwrites {
        overwrite_bytes(bytes, o, c.capacity, c.lease_capacity);
    }
    let header_hit = bytes[..header.len()] != header[..];
    let layout_hit = bytes[..LAYOUT_BYTES] != header[..LAYOUT_BYTES];
    let base = bytes.as_mut_ptr();
    let len = bytes.len();
    // SAFETY: `buf` lives until the end of this function and is touched
    // only through this table and `word` (atomically) from here on.
    let t = match unsafe { Table::attach_raw(base, len, owner) } {
        Ok(t) => t,
        Err(e) => {
            prop_assert!(
                matches!(
                    e,
                    Error::NotATable | Error::LayoutMismatch | Error::RegionTooSmall
                ),
                "attach: {e:?}"
            );
            // Only the header can make attach fail: the magic number and
            // the layout fields, or (LayoutMismatch) the interval.
            prop_assert!(
                layout_hit || (header_hit && e == Error::LayoutMismatch),
                "attach failed with {e:?} though the fields it checks are intact"
            );
            return Ok(());
        }
    };
    // Lock words that name this caller before it did anything (overwritten).
    let mine = |t: &Table<'_>| -> Vec<usize> {
        lock_words(t.capacity())
            .into_iter()
            // SAFETY: lock words of the attached table, inside `buf`.
            .filter(|&i| unsafe { word(base, i) }.load(Ordering::Relaxed) & OWNER_MASK == ME)
            .collect()
    };
    let before = mine(&t);
    for op in &c.ops {
        *CURRENT.lock().unwrap() = format!("{op:?}");
        run(&t, op, &mut now, &mut held)
            .map_err(|e| TestCaseError::fail(format!("{op:?}: {e}")))?;
        let after = mine(&t);
        prop_assert!(
            after.iter().all(|w| before.contains(w)),
            "{op:?} left a lock held: words {after:?}, before {before:?}"
        );
        BEAT.fetch_add(1, Ordering::Relaxed);
    }
    drop(buf);
    Ok(())
}

/// Every word of an entry in use (but its lock word: the random cases
/// cover those) and of the lease records, for every algorithm, overwritten
/// with each of a few edge values, then every operation on the entry in
/// the same window, the next one, much later and at the end of time: the
/// exhaustive companion of the random cases below.
#[test]
fn every_entry_and_lease_word_overwritten_with_edge_values_is_survived() {
    const VALUES: [u32; 14] = [
        0,
        1,
        2,
        0xf,
        0x10,
        0x20,
        0x3f,
        0xc0,
        1000,
        0x7fff_ffff,
        0x8000_0000,
        0xffff_fffe,
        u32::MAX,
        0x1234_5678,
    ];
    let mut cases = 0;
    // Every algorithm, and interval limits whose windows start at the
    // first call (created by rate_check: check_or_create aligns them).
    let interval = Algorithm::ALL
        .iter()
        .position(|&a| a == Algorithm::Interval);
    let kinds = (0..Algorithm::ALL.len() as u8)
        .map(|a| (a, false))
        .chain(interval.map(|a| (a as u8, true)));
    for (a, first_call) in kinds {
        let fill = if algorithm(a) == Algorithm::Slots {
            vec![
                Op::Acquire(0, 3),
                Op::LeaseAcquire(0, 3, Some(10 * S)),
                Op::Resolve(0),
            ]
        } else if first_call {
            vec![
                Op::RateCheck(0, 3, S, true, 1),
                Op::RateCheck(0, 3, S, true, 1),
                Op::Resolve(0),
            ]
        } else {
            let limit = if algorithm(a) == Algorithm::Feedback {
                50
            } else {
                3
            };
            vec![
                Op::CheckOrCreate(0, a, limit),
                Op::Check(0),
                Op::Check(0),
                Op::Resolve(0),
            ]
        };
        let ops = vec![
            Op::Check(0),
            Op::CheckRef(0, 0),
            Op::RateCheckRef(0, 0, 2),
            Op::Get(0),
            Op::Iter,
            Op::NextWindow,
            Op::Get(0),
            Op::Check(0),
            Op::Usage(0),
            Op::Acquire(0, 2),
            Op::Release(0),
            Op::LeaseAcquire(0, 2, Some(S)),
            Op::ReleaseLeaseOf(0),
            Op::LeaseRelease(0, 0),
            Op::RateCheck(0, 2, S, false, 0),
            Op::CheckOrCreate(0, a, 0),
            Op::Balance(vec![0, 1], 2, -1, None),
            Op::IntervalReset(0),
            Op::Wait(100 * S),
            Op::Get(0),
            Op::Check(0),
            Op::RateCheckRef(0, 0, 2),
            Op::CheckRef(0, 0),
            Op::CleanUnused(1),
            Op::Set(0, a, 3),
            Op::Wait(u64::MAX),
            Op::Get(0),
            Op::Check(0),
            Op::Remove(0),
        ];
        let targets = (1..ENTRY_WORDS)
            .map(|w| (Area::Used, w))
            .chain((0..2 * LEASE_WORDS).map(|w| (Area::Leases, w)));
        for (area, word) in targets {
            for v in VALUES {
                let c = Case {
                    capacity: 4,
                    lease_capacity: 2,
                    interval: S,
                    epoch: 0,
                    all_alive: false,
                    fill: fill.clone(),
                    overwrites: vec![Overwrite {
                        area,
                        at: word * 4,
                        fill: Fill::Word(v),
                    }],
                    ops: ops.clone(),
                };
                if let Err(e) = run_case(&c) {
                    panic!(
                        "{:?} (first call: {first_call}), {area:?} word {word} = {v:#x}: {e}",
                        algorithm(a)
                    );
                }
                cases += 1;
            }
        }
    }
    let per_algorithm = ENTRY_WORDS - 1 + 2 * LEASE_WORDS;
    assert_eq!(
        cases,
        (Algorithm::ALL.len() + 1) * per_algorithm * VALUES.len()
    );
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn corrupted_tables_are_survived(c in case()) {
        run_case(&c)?;
    }
}
