//! Keyed checks over 1 000 and 100 000 keys, one hot key or uniform: floodgate, governor keyed (fake clock and as shipped), a mutex map and a pipelimit-style table.
//! See BENCHMARKS.md.

use criterion::{criterion_group, criterion_main, Criterion};

mod common;

fn benches(c: &mut Criterion) {
    common::bench_group(c, "keyed");
}

criterion_group! {
    name = group;
    config = common::config();
    targets = benches
}
criterion_main!(group);
