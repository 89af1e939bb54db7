//! Slot acquire+release, lease acquire+release and balancing over 4 members: floodgate, a mutex map and a pipelimit-style table.
//! See BENCHMARKS.md.

use criterion::{criterion_group, criterion_main, Criterion};

mod common;

fn benches(c: &mut Criterion) {
    common::bench_group(c, "slots");
}

criterion_group! {
    name = group;
    config = common::config();
    targets = benches
}
criterion_main!(group);
