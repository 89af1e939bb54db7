//! 16 AGI processes at once against the seed's hub (4 virtual nodes, 50
//! links each, 200 in all, a dump node), while a sampler reads the shared
//! table through the library: never more than 50 links on a virtual node
//! nor 200 in all, and every release brings the counts back to zero.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Barrier, Mutex};
use std::time::{Duration, Instant};

use common::*;
use floodgate_cli::os::now_ns;
use floodgate_cli::table_file::{Spec, TableFile};

const WORKERS: usize = 16;
const MEMBERS: [&str; 4] = ["168501", "168502", "168503", "168504"];
const PER_NODE: u32 = 50;
const TOTAL: u32 = 200;

/// What the sampler checks: in which phase the sums of separate reads
/// are exact bounds too (counts only go up, or only down).
const FILL: u32 = 0;
const CHURN: u32 = 1;
const DRAIN: u32 = 2;

struct Sampler {
    stop: AtomicBool,
    phase: AtomicU32,
    samples: AtomicUsize,
    max_node: AtomicU32,
    max_total: AtomicU32,
    violation: Mutex<Option<String>>,
}

impl Sampler {
    fn run(&self, t: &TempTable) {
        let file = TableFile::open(&t.path, &Spec::default()).expect("attach the hub's table");
        let table = file.table().unwrap();
        while !self.stop.load(Ordering::SeqCst) {
            let phase = self.phase.load(Ordering::SeqCst);
            let now = now_ns();
            let counts: Vec<u32> = MEMBERS
                .iter()
                .map(|m| {
                    table
                        .get(format!("node/{m}").as_bytes(), now)
                        .map(|s| s.counter)
                        .unwrap_or(0)
                })
                .collect();
            let total: u32 = counts.iter().sum();
            self.max_node
                .fetch_max(*counts.iter().max().unwrap(), Ordering::SeqCst);
            self.max_total.fetch_max(total, Ordering::SeqCst);
            let mut problem = None;
            if counts.iter().any(|&c| c > PER_NODE) {
                problem = Some(format!("a virtual node above {PER_NODE}: {counts:?}"));
            }
            // Four reads are not one snapshot: while links come and go at
            // once (CHURN) their sum may count a moved link twice. With
            // counts that only rise (FILL) or only fall (DRAIN) the sum
            // is at most the total at the end (start) of the reads.
            // (In CHURN the per-node bound alone caps the total at 4 x 50.)
            if phase != CHURN && total > TOTAL {
                problem = Some(format!("more than {TOTAL} links: {counts:?}"));
            }
            if let Some(p) = problem {
                self.violation.lock().unwrap().get_or_insert(p);
            }
            self.samples.fetch_add(1, Ordering::SeqCst);
            std::thread::sleep(Duration::from_micros(300));
        }
    }
}

fn link(t: &TempTable) -> Channel {
    let mut ch = Channel::default();
    let (code, err) = serve(t, &hub_args(&["--hold", "1h"]), &mut ch);
    assert_eq!(code, 0, "hub: {err}");
    ch
}

fn hang_up(t: &TempTable, ch: &mut Channel, by_argument: bool) {
    let (code, err) = if by_argument {
        let lease = ch.var("FG_LEASE").unwrap_or("").to_owned();
        serve(t, &["release", "--lease", &lease], ch)
    } else {
        serve(t, &["release"], ch)
    };
    assert_eq!(code, 0, "release: {err}");
}

/// Stops the sampler when dropped, so a failed assertion ends the test
/// instead of leaving the sampler spinning.
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// Runs `f(w, input)` on one thread per input, all started together;
/// a panic in any of them fails the caller once all have ended.
fn in_parallel<I: Send, T: Send>(inputs: Vec<I>, f: impl Fn(usize, I) -> T + Sync) -> Vec<T> {
    let start = Barrier::new(inputs.len());
    std::thread::scope(|s| {
        let hs: Vec<_> = inputs
            .into_iter()
            .enumerate()
            .map(|(w, input)| {
                let (f, start) = (&f, &start);
                s.spawn(move || {
                    start.wait();
                    f(w, input)
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

#[test]
fn sixteen_agi_processes_never_exceed_the_hub_limits() {
    let started = Instant::now();
    let t = TempTable::new("hub16");
    // Make the table before the sampler attaches to it.
    assert_eq!(cli(&t, &["stats"]).code, 0);
    let sampler = Sampler {
        stop: AtomicBool::new(false),
        phase: AtomicU32::new(FILL),
        samples: AtomicUsize::new(0),
        max_node: AtomicU32::new(0),
        max_total: AtomicU32::new(0),
        violation: Mutex::new(None),
    };
    // 256 connects for 200 places, 16 processes at a time.
    let attempts_per_worker = 16;
    let churn_per_worker = 4;
    let held: Vec<Channel> = std::thread::scope(|s| {
        let sampler_thread = s.spawn(|| sampler.run(&t));
        let stop = StopOnDrop(&sampler.stop);

        // FILL: connect until the hub is full.
        let results = in_parallel(vec![(); WORKERS], |_, ()| {
            let mut held = Vec::new();
            let mut full = 0;
            for _ in 0..attempts_per_worker {
                let ch = link(&t);
                match ch.var("FG_VERDICT") {
                    Some("ADMIT") => held.push(ch),
                    Some("FULL") => {
                        assert_eq!(ch.var("FG_NODE"), Some("168505"));
                        assert_eq!(ch.var("FG_LEASE"), None);
                        full += 1;
                    }
                    v => panic!("verdict {v:?}"),
                }
            }
            (held, full)
        });
        let admitted: usize = results.iter().map(|(h, _)| h.len()).sum();
        let full: usize = results.iter().map(|(_, f)| f).sum();
        assert_eq!(
            admitted, TOTAL as usize,
            "exactly the hub's places are held"
        );
        assert_eq!(full, WORKERS * attempts_per_worker - TOTAL as usize);
        // Who holds what, as the channels were told and as the table counts.
        let mut per_node: HashMap<String, u64> = HashMap::new();
        for ch in results.iter().flat_map(|(h, _)| h) {
            *per_node
                .entry(ch.var("FG_NODE").unwrap().to_owned())
                .or_default() += 1;
        }
        for m in MEMBERS {
            assert_eq!(per_node.get(m), Some(&u64::from(PER_NODE)), "{per_node:?}");
            assert_eq!(usage(&t, &format!("node/{m}")), u64::from(PER_NODE));
        }

        // CHURN: each worker hangs up one of its links, then connects
        // another: the place it freed is there for it, whoever else
        // connects meanwhile.
        sampler.phase.store(CHURN, Ordering::SeqCst);
        let held = in_parallel(
            results.into_iter().map(|(h, _)| h).collect(),
            |w, mut held: Vec<Channel>| {
                for i in 0..churn_per_worker.min(held.len()) {
                    let mut old = held.remove(0);
                    hang_up(&t, &mut old, i % 2 == 0);
                    let ch = link(&t);
                    assert_eq!(ch.var("FG_VERDICT"), Some("ADMIT"), "worker {w}");
                    held.push(ch);
                }
                held
            },
        );

        // DRAIN: every link hangs up, 16 processes at a time again.
        sampler.phase.store(DRAIN, Ordering::SeqCst);
        let held = in_parallel(held, |w, mut mine: Vec<Channel>| {
            for (i, ch) in mine.iter_mut().enumerate() {
                hang_up(&t, ch, (w + i) % 2 == 1);
            }
            mine
        });
        drop(stop);
        sampler_thread.join().unwrap();
        held.into_iter().flatten().collect()
    });
    if let Some(v) = sampler.violation.lock().unwrap().take() {
        panic!("{v}");
    }
    for m in MEMBERS {
        assert_eq!(usage(&t, &format!("node/{m}")), 0, "node {m}");
    }
    // Hanging up again changes nothing.
    for mut ch in held.into_iter().take(3) {
        hang_up(&t, &mut ch, false);
    }
    for m in MEMBERS {
        assert_eq!(usage(&t, &format!("node/{m}")), 0, "node {m}");
    }
    let samples = sampler.samples.load(Ordering::SeqCst);
    assert!(samples >= 20, "the sampler ran only {samples} times");
    assert_eq!(sampler.max_node.load(Ordering::SeqCst), PER_NODE);
    eprintln!(
        "{} AGI runs, {WORKERS} at a time, {samples} samples (max per node {}, max total {}) in {:?}",
        WORKERS * attempts_per_worker + 2 * WORKERS * churn_per_worker + 203,
        sampler.max_node.load(Ordering::SeqCst),
        sampler.max_total.load(Ordering::SeqCst),
        started.elapsed()
    );
}

#[test]
fn a_total_below_the_members_sum_is_kept_and_the_load_stays_even() {
    let t = TempTable::new("hub150");
    let args = [
        "hub",
        "--members",
        "168501,168502,168503,168504",
        "--per-node",
        "50",
        "--total",
        "30",
        "--dump",
        "168505",
    ];
    let verdicts: Vec<(String, String)> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..WORKERS)
            .map(|_| {
                let (t, args) = (&t, &args);
                s.spawn(move || {
                    (0..3)
                        .map(|_| {
                            let mut ch = Channel::default();
                            assert_eq!(serve(t, args, &mut ch).0, 0);
                            (
                                ch.var("FG_VERDICT").unwrap().to_owned(),
                                ch.var("FG_NODE").unwrap().to_owned(),
                            )
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        hs.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(verdicts.iter().filter(|(v, _)| v == "ADMIT").count(), 30);
    assert_eq!(
        verdicts.iter().filter(|(v, _)| v == "FULL").count(),
        48 - 30
    );
    let counts: Vec<u64> = MEMBERS
        .iter()
        .map(|m| usage(&t, &format!("node/{m}")))
        .collect();
    assert_eq!(counts.iter().sum::<u64>(), 30);
    // Least-loaded first, atomically: no node is ever two links ahead.
    let (min, max) = (counts.iter().min().unwrap(), counts.iter().max().unwrap());
    assert!(max - min <= 1, "{counts:?}");
}
