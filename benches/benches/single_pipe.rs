//! One pipe per algorithm: floodgate's table pipe (pl_check) and bare limiter, governor direct, ratelimit, a mutex map and a pipelimit-style table with one key.
//! See BENCHMARKS.md.

use criterion::{criterion_group, criterion_main, Criterion};

mod common;

fn benches(c: &mut Criterion) {
    common::bench_group(c, "single_pipe");
}

criterion_group! {
    name = group;
    config = common::config();
    targets = benches
}
criterion_main!(group);
