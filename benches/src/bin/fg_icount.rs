//! Runs one benchmark case for N operations, for instruction counting under
//! callgrind (`benches/callgrind.sh`).
//!
//! ```text
//! fg_icount list              # every case name
//! fg_icount CASE N            # set CASE up, then run N operations
//! ```
//!
//! Setup (keys created, library loaded, 1 000 operations checked to
//! succeed) is the same whatever N is, so the instructions of one operation
//! are `(Ir(2N) - Ir(N)) / N`, which is what callgrind.sh computes.

use std::hint::black_box;
use std::process::ExitCode;

use floodgate_benches::cases::{verify, with_case, Case, Runner, NAMES};

struct Run {
    n: u64,
    ok: u64,
}

impl Runner for Run {
    fn run<C: Case>(&mut self, name: &str, mut case: C) {
        verify(name, &mut case, 1_000);
        for _ in 0..self.n {
            self.ok += black_box(case.op());
        }
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [cmd] if cmd == "list" => {
            for n in NAMES {
                println!("{n}");
            }
            ExitCode::SUCCESS
        }
        [case, n] => {
            let Ok(n) = n.parse::<u64>() else {
                eprintln!("N must be a number: {n}");
                return ExitCode::FAILURE;
            };
            let mut r = Run { n, ok: 0 };
            if !with_case(case, &mut r) {
                eprintln!("no case {case}: see `fg_icount list`");
                return ExitCode::FAILURE;
            }
            if r.ok != n {
                eprintln!("{case}: only {} of {n} operations succeeded", r.ok);
                return ExitCode::FAILURE;
            }
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("usage: fg_icount list | fg_icount CASE N");
            ExitCode::FAILURE
        }
    }
}
