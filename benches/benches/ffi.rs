//! The C ABI through libfloodgate.so (dlopen) against the same table calls from Rust, in the same run. Build the library first: cargo build --release -p floodgate-ffi.
//! See BENCHMARKS.md.

use criterion::{criterion_group, criterion_main, Criterion};

mod common;

fn benches(c: &mut Criterion) {
    common::bench_group(c, "ffi");
}

criterion_group! {
    name = group;
    config = common::config();
    targets = benches
}
criterion_main!(group);
