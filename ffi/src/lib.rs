//! C ABI for the floodgate core (libfloodgate.a / libfloodgate.so).
//!
//! The exports arrive with the C ABI issue; this crate already builds the two
//! libraries so that the workspace layout is complete.
#![deny(missing_docs)]

/// The floodgate core, re-exported under the name the C ABI will use.
pub use fg as core_crate;
