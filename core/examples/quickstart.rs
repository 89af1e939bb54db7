//! The README's Rust example: a table of per-IP limits in a `static`, one
//! TAILDROP pipe per source address, created on first use.
//! `cargo run -p floodgate --example quickstart`
use floodgate::table::{Owner, StaticTable};
use floodgate::{Algorithm, Verdict};

static PIPES: StaticTable<1024, 0> = StaticTable::new(); // 1024 keys, no leases

fn main() -> Result<(), floodgate::Error> {
    let table = PIPES.init(1_000_000_000, 0, 0x5eed, Owner::SINGLE_PROCESS)?; // 1 s windows
    for now in 1..=4 {
        // `now` is your monotonic clock in ns; at most 3 requests per window.
        let verdict = table.check_or_create(b"192.0.2.7", Algorithm::Taildrop, 3, now)?;
        println!("request {now}: {verdict:?}");
        assert_eq!(verdict == Verdict::Pass, now <= 3);
    }
    Ok(())
}
