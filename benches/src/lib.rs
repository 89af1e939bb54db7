//! Benchmarks of floodgate against its peers: the pieces the criterion
//! benches (`benches/*.rs`), the instruction counter (`bin/fg_icount`) and
//! the allocation test (`tests/alloc.rs`) share.
//!
//! * [`clock`]: one fake time source that every side reads, so every side
//!   pays the same for time ([`clock::BenchClock`]).
//! * [`keys`]: the keys (IPv4 address strings) and how a case picks them
//!   (one hot key, or uniform over all).
//! * [`peers`]: the peers written in this crate: a `Mutex<HashMap<String, _>>`
//!   ([`peers::MutexMap`], what a module author writes first) and a chained
//!   hash table with one lock per bucket, laid out the way Kamailio's
//!   pipelimit stores its pipes ([`peers::ChainedTable`]). governor and
//!   ratelimit are used as published.
//! * [`ffi`]: floodgate's C ABI, loaded from `libfloodgate.so` with
//!   `dlopen`, so a call pays exactly what a C caller pays.
//! * [`cases`]: every benchmarked operation as a [`cases::Case`], set up
//!   once and driven by criterion or by the instruction counter alike.
//!
//! All sides run the same workload: time advances by [`STEP_NS`] per
//! operation and every limit allows [`RATE_PER_SEC`] per second, so every
//! check passes on every side and each is measured on its pass path.
#![deny(missing_docs)]

pub use floodgate;

pub mod cases;
pub mod clock;
pub mod ffi;
pub mod keys;
pub mod peers;

/// Fake time that passes per operation, in ns (1 µs).
pub const STEP_NS: u64 = 1_000;

/// The rate every limiter allows per second (and its burst): four times
/// what one clock reaches at [`STEP_NS`] per operation, so that checks pass
/// everywhere, also with two threads on one key.
pub const RATE_PER_SEC: u32 = 4_000_000;

/// Window length of the window-based limiters, in ns (1 s).
pub const INTERVAL_NS: u64 = 1_000_000_000;

/// Seed of floodgate tables (fixed so that runs are comparable).
pub const SEED: u64 = 0x5eed_f100_d6a7_e5ee;
