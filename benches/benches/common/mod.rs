//! What every bench file shares: criterion's settings and a runner that
//! benchmarks a [`Case`] under its `group/side/parameter` name.
// Not every bench file uses every helper.
#![allow(dead_code)]

use std::hint::black_box;
use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, BenchmarkId, Criterion};
use floodgate_benches::cases::{verify, with_case, Case, Runner, NAMES};

/// Operations run (and checked to succeed) before a case is measured.
pub const VERIFY_OPS: usize = 20_000;

/// 1 s of warm-up, 3 s of measurement, 30 samples per benchmark: the whole
/// suite (64 benchmarks) measures for about 5 minutes.
pub fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(30)
        .configure_from_args()
}

struct GroupRunner<'a, 'b> {
    group: &'b mut BenchmarkGroup<'a, WallTime>,
}

impl Runner for GroupRunner<'_, '_> {
    fn run<C: Case>(&mut self, name: &str, mut case: C) {
        verify(name, &mut case, VERIFY_OPS);
        let mut parts = name.splitn(3, '/').skip(1);
        let (side, param) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        self.group
            .bench_function(BenchmarkId::new(side, param), |b| {
                b.iter(|| black_box(case.op()))
            });
    }
}

/// Benchmarks every case of `group` (see `NAMES`).
pub fn bench_group(c: &mut Criterion, group: &str) {
    let mut g = c.benchmark_group(group);
    let prefix = format!("{group}/");
    for name in NAMES.iter().filter(|n| n.starts_with(&prefix)) {
        assert!(
            with_case(name, &mut GroupRunner { group: &mut g }),
            "no case {name}"
        );
    }
    g.finish();
}
