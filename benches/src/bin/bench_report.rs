//! Prints the ratio tables of BENCHMARKS.md from one criterion run.
//!
//! ```text
//! cargo run --release -p floodgate-benches --bin bench_report [CRITERION_DIR]
//! ```
//!
//! Reads the median of every benchmark from `CRITERION_DIR` (default:
//! `$CARGO_TARGET_DIR/criterion`, else `target/criterion` of the workspace),
//! that is from the last `cargo bench -p floodgate-benches`, and prints
//! markdown tables: medians in ns per operation, floodgate's time as a
//! fraction of each peer's, and each target met or missed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// (group, side, parameter) -> median ns.
type Medians = BTreeMap<(String, String, String), f64>;

fn read(dir: &Path, out: &mut Medians) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        if !p.is_dir() {
            continue;
        }
        if p.file_name().is_some_and(|n| n == "new") {
            let json = |f: &str| -> Option<serde_json::Value> {
                serde_json::from_str(&std::fs::read_to_string(p.join(f)).ok()?).ok()
            };
            if let (Some(b), Some(est)) = (json("benchmark.json"), json("estimates.json")) {
                let s = |v: &serde_json::Value| v.as_str().unwrap_or("").to_owned();
                if let Some(m) = est["median"]["point_estimate"].as_f64() {
                    out.insert(
                        (s(&b["group_id"]), s(&b["function_id"]), s(&b["value_str"])),
                        m,
                    );
                }
            }
        } else {
            read(&p, out);
        }
    }
}

fn fmt_ns(v: Option<f64>) -> String {
    match v {
        Some(v) if v >= 1000.0 => format!("{:.2} µs", v / 1000.0),
        Some(v) => format!("{v:.1} ns"),
        None => "—".to_owned(),
    }
}

fn ratio(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}", a / b),
        _ => "—".to_owned(),
    }
}

struct Report {
    m: Medians,
    targets: Vec<String>,
}

impl Report {
    fn get(&self, g: &str, side: &str, p: &str) -> Option<f64> {
        self.m
            .get(&(g.to_owned(), side.to_owned(), p.to_owned()))
            .copied()
    }

    /// Records a target `value <= bound` (or `>=` when `at_least`).
    fn target(&mut self, what: String, value: Option<f64>, bound: f64, at_least: bool) {
        let line = match value {
            None => format!("- {what}: not measured"),
            Some(v) => {
                let met = if at_least { v >= bound } else { v <= bound };
                let by = if at_least { bound / v } else { v / bound };
                if met {
                    format!("- {what}: {v:.2} (target {bound:.2}): **met**")
                } else {
                    format!("- {what}: {v:.2} (target {bound:.2}): **missed**, {by:.1}x off")
                }
            }
        };
        self.targets.push(line);
    }

    fn single_pipe(&mut self) {
        let g = "single_pipe";
        let peers = [
            ("governor_direct", "GCRA"),
            ("governor_direct_quanta", "GCRA"),
            ("ratelimit", "token_bucket"),
            ("mutex_map", "fixed_window"),
            ("pipelimit_table", "TAILDROP"),
            ("lock_floor", "cas"),
        ];
        println!("### Single pipe (ns per check)\n");
        println!("Peers (one limiter, or one key):\n");
        println!("| peer | median |\n| --- | --- |");
        for (side, p) in peers {
            println!("| {side} ({p}) | {} |", fmt_ns(self.get(g, side, p)));
        }
        println!();
        println!(
            "| algorithm | floodgate table | floodgate bare | table / governor_direct | table / ratelimit | table / mutex_map | table / pipelimit_table | bare / governor_direct |"
        );
        println!("| --- | --- | --- | --- | --- | --- | --- | --- |");
        let gd = self.get(g, "governor_direct", "GCRA");
        for a in ["TAILDROP", "RED", "FEEDBACK", "INTERVAL", "GCRA"] {
            let t = self.get(g, "floodgate", a);
            let b = self.get(g, "floodgate_bare", a);
            println!(
                "| {a} | {} | {} | {} | {} | {} | {} | {} |",
                fmt_ns(t),
                fmt_ns(b),
                ratio(t, gd),
                ratio(t, self.get(g, "ratelimit", "token_bucket")),
                ratio(t, self.get(g, "mutex_map", "fixed_window")),
                ratio(t, self.get(g, "pipelimit_table", "TAILDROP")),
                ratio(b, gd),
            );
            let r = t.zip(gd).map(|(t, gd)| t / gd);
            self.target(
                format!("single pipe {a}: floodgate table / governor direct"),
                r,
                1.0,
                false,
            );
        }
        println!();
    }

    fn keyed(&mut self) {
        let g = "keyed";
        println!("### Keyed check (ns per check)\n");
        println!(
            "| keys, pattern | floodgate | governor_keyed | governor_keyed_quanta | mutex_map | pipelimit_table | fg / governor_keyed | fg / governor_keyed_quanta | fg / mutex_map | fg / pipelimit_table |"
        );
        println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
        for p in ["1000_hot", "1000_uniform", "100000_hot", "100000_uniform"] {
            let f = self.get(g, "floodgate", p);
            let gk = self.get(g, "governor_keyed", p);
            let gq = self.get(g, "governor_keyed_quanta", p);
            let mm = self.get(g, "mutex_map", p);
            let pl = self.get(g, "pipelimit_table", p);
            println!(
                "| {p} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                fmt_ns(f),
                fmt_ns(gk),
                fmt_ns(gq),
                fmt_ns(mm),
                fmt_ns(pl),
                ratio(f, gk),
                ratio(f, gq),
                ratio(f, mm),
                ratio(f, pl),
            );
            let rg = f.zip(gk).map(|(a, b)| a / b);
            let rm = f.zip(mm).map(|(a, b)| a / b);
            self.target(
                format!("keyed {p}: floodgate / governor keyed"),
                rg,
                0.25,
                false,
            );
            self.target(
                format!("keyed {p}: floodgate / mutex map"),
                rm,
                1.0 / 3.0,
                false,
            );
        }
        println!();
    }

    fn threads(&mut self) {
        let g = "threads";
        println!("### Threads (ns per operation of the whole process = 1 / throughput)\n");
        let sides = [
            "floodgate",
            "mutex_map",
            "pipelimit_table",
            "governor_keyed_quanta",
            "compute_only",
        ];
        println!(
            "| side | 1 thread | 2 threads, distinct keys | 2 threads, one key | speed-up distinct | speed-up one key |"
        );
        println!("| --- | --- | --- | --- | --- | --- |");
        for side in sides {
            let one = self.get(g, side, "1_thread");
            let d = self.get(g, side, "2_distinct");
            let s = self.get(g, side, "2_same");
            println!(
                "| {side} | {} | {} | {} | {} | {} |",
                fmt_ns(one),
                fmt_ns(d),
                fmt_ns(s),
                ratio(one, d),
                ratio(one, s),
            );
            if side == "floodgate" {
                let r = one.zip(d).map(|(a, b)| a / b);
                self.target(
                    "2 threads on distinct keys: floodgate throughput / 1 thread".to_owned(),
                    r,
                    1.7,
                    true,
                );
            }
        }
        println!();
    }

    fn slots(&mut self) {
        let g = "slots";
        println!("### Slots, leases, balancing (ns per acquire + release)\n");
        println!(
            "| case | floodgate | mutex_map | pipelimit_table | fg / mutex_map | fg / pipelimit_table |"
        );
        println!("| --- | --- | --- | --- | --- | --- |");
        for p in ["slot", "lease", "balance4"] {
            let f = self.get(g, "floodgate", p);
            let m = self.get(g, "mutex_map", p);
            let c = self.get(g, "pipelimit_table", p);
            println!(
                "| {p} | {} | {} | {} | {} | {} |",
                fmt_ns(f),
                fmt_ns(m),
                fmt_ns(c),
                ratio(f, m),
                ratio(f, c)
            );
        }
        println!();
    }

    fn ffi(&mut self) {
        let g = "ffi";
        println!("### C ABI (ns per call, the same table)\n");
        println!(
            "| call | Rust (inlined) | Rust (not inlined) | C ABI (dlopen) | C ABI - Rust | C ABI - Rust not inlined |"
        );
        println!("| --- | --- | --- | --- | --- | --- |");
        for p in ["check", "check_create", "slot"] {
            let r = self.get(g, "rust", p);
            let n = self.get(g, "rust_noinline", p);
            let c = self.get(g, "c_abi", p);
            let diff = |a: Option<f64>, b: Option<f64>| match (a, b) {
                (Some(a), Some(b)) => format!("{:+.1} ns", a - b),
                _ => "—".to_owned(),
            };
            println!(
                "| {p} | {} | {} | {} | {} | {} |",
                fmt_ns(r),
                fmt_ns(n),
                fmt_ns(c),
                diff(c, r),
                diff(c, n)
            );
            if p == "check" {
                let d = c.zip(r).map(|(c, r)| c - r);
                let line = match d {
                    Some(d) if d <= 2.0 => format!("- C ABI fg_check - Table::check: {d:+.1} ns (target +2 ns): **met**"),
                    Some(d) => format!("- C ABI fg_check - Table::check: {d:+.1} ns (target +2 ns): **missed** by {:.1} ns", d - 2.0),
                    None => "- C ABI: not measured".to_owned(),
                };
                self.targets.push(line);
            }
        }
        println!();
    }
}

fn main() {
    let dir = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            std::env::var_os("CARGO_TARGET_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"))
                .join("criterion")
        });
    let mut m = Medians::new();
    read(&dir, &mut m);
    if m.is_empty() {
        eprintln!("no criterion results under {}", dir.display());
        std::process::exit(1);
    }
    let mut r = Report {
        m,
        targets: Vec::new(),
    };
    r.single_pipe();
    r.keyed();
    r.threads();
    r.slots();
    r.ffi();
    println!("### Targets\n");
    for t in &r.targets {
        println!("{t}");
    }
}
