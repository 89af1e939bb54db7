//! Benchmarks of floodgate against its peers (filled in by the benchmarks issue).
#![deny(missing_docs)]

pub use floodgate;
