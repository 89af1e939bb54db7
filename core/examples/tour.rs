//! A tour of floodgate: the Kamailio, FreeSWITCH and app_rpt flows over one
//! shared table, with readable output. Every step checks its own result and
//! the program exits non-zero on a mismatch.
//!
//! Run it with `cargo run -p floodgate --example tour`.

use floodgate::table::{Balanced, Config, LeaseRelease, LeaseVerdict, Owner, Table};
use floodgate::{Algorithm, Error, MaxZero, Release, SlotVerdict, Verdict};
use std::process::ExitCode;

const S: u64 = 1_000_000_000;

fn expect<T: PartialEq + std::fmt::Debug>(what: &str, got: T, want: T) -> Result<(), String> {
    if got == want {
        println!("  ok   {what}: {got:?}");
        Ok(())
    } else {
        Err(format!("{what}: got {got:?}, expected {want:?}"))
    }
}

fn kamailio(t: &Table<'_>) -> Result<(), String> {
    println!("\n== Kamailio pipelimit: timer_interval 10 s ==");
    // pl_check("$si", "TAILDROP", 5): one pipe per source IP, created on the fly.
    let ip = b"192.0.2.7";
    let passed = (0..8)
        .filter(|i| t.check_or_create(ip, Algorithm::Taildrop, 5, i * S / 10) == Ok(Verdict::Pass))
        .count();
    expect("TAILDROP 5 per interval, 8 requests: passed", passed, 5)?;
    expect(
        "next interval passes again",
        t.check(ip, 10 * S),
        Ok(Verdict::Pass),
    )?;
    // RED under 3x overload: 30 requests per interval with limit 10.
    for i in 0..30 {
        let _ = t.check_or_create(b"red", Algorithm::Red, 10, 20 * S + i);
    }
    let passed = (0..30)
        .filter(|i| t.check(b"red", 30 * S + i) == Ok(Verdict::Pass))
        .count();
    expect("RED at 3x: passes one in three", passed, 10)?;
    // FEEDBACK driven by pushed CPU load (pl.push_load), setpoint 50 %.
    let _ = t.check_or_create(b"cpu", Algorithm::Feedback, 50, 0);
    for want in [10, 20, 30] {
        expect("pl.push_load 0.9 -> drop rate", t.push_load(0.9), Ok(want))?;
    }
    let drops = (0..100)
        .filter(|i| t.check(b"cpu", 40 * S + i) == Ok(Verdict::Drop))
        .count();
    expect("FEEDBACK drops per 100 requests", drops, 30)?;
    expect(
        "pl_check on a missing pipe",
        t.check(b"nope", 0),
        Err(Error::NoPipe),
    )?;
    // The 503 decision: a dropped request gets 503 with Retry-After.
    // Five more in the same interval: the 6th of the interval is dropped.
    let mut v = Verdict::Pass;
    for k in 1..=5 {
        v = t.check(ip, 10 * S + k).map_err(|e| e.to_string())?;
    }
    expect("6th request of the interval", v, Verdict::Drop)?;
    println!(
        "  ->   pl_check returned {} ({:?}): {}",
        v.code(),
        v,
        if v.passed() {
            "relay"
        } else {
            "send 503 Server Unavailable, Retry-After: 5"
        }
    );
    println!("  pl.list:");
    for e in t.iter(40 * S) {
        let s = e.stats;
        println!(
            "    {:<12} {:<9} limit {:>3}  counter {:>3}  last {:>3}  load {}",
            String::from_utf8_lossy(e.key()),
            s.algorithm.name(),
            s.limit,
            s.counter,
            s.last_counter,
            s.load
        );
    }
    Ok(())
}

fn freeswitch(t: &Table<'_>) -> Result<(), String> {
    println!("\n== FreeSWITCH limit ==");
    // limit hash conference exclusive_room 3
    let room = b"conference/exclusive_room";
    for _ in 0..3 {
        expect(
            "caller joins",
            t.acquire(room, 3, 0),
            Ok(SlotVerdict::Acquired),
        )?;
    }
    expect(
        "4th caller",
        t.acquire(room, 3, 0),
        Ok(SlotVerdict::Refused),
    )?;
    expect("hangup releases", t.release(room, 1), Ok(Release::Released))?;
    expect("limit_usage", t.usage(room, 1), Ok(2))?;
    // limit hash inbound gw1 5/1 (aligned, mod_hiredis-style windows)
    let passed = (0..8)
        .filter(|_| {
            t.rate_check(b"inbound/gw1", 5, S, false, MaxZero::RefuseAll, 100 * S)
                == Ok(Verdict::Pass)
        })
        .count();
    expect("5/1 with 8 calls in one second: admitted", passed, 5)?;
    t.interval_reset(b"inbound/gw1", 100 * S + 1)
        .map_err(|e| e.to_string())?;
    expect(
        "after limit_interval_reset",
        t.rate_check(b"inbound/gw1", 5, S, false, MaxZero::RefuseAll, 100 * S + 2),
        Ok(Verdict::Pass),
    )?;
    // A call transferred away never hangs up here: a lease with a 2 h hold.
    let hold = Some(7200 * S);
    let LeaseVerdict::Acquired(lease) = t
        .lease_acquire(b"trunk", 1, hold, 0)
        .map_err(|e| e.to_string())?
    else {
        return Err("lease refused".into());
    };
    expect(
        "trunk full while held",
        t.lease_acquire(b"trunk", 1, hold, S),
        Ok(LeaseVerdict::Refused),
    )?;
    expect(
        "after 2 h the slot is reclaimed",
        t.usage(b"trunk", 7200 * S),
        Ok(0),
    )?;
    expect(
        "a late release is harmless",
        t.lease_release(lease, 7201 * S),
        Ok(LeaseRelease::AlreadyReleased),
    )?;
    Ok(())
}

fn allstar(t: &Table<'_>) -> Result<(), String> {
    println!("\n== AllStarLink / hamvoip hub: 4 virtual nodes, 50 links each, 200 in all ==");
    let nodes: [&[u8]; 4] = [b"hub/2001", b"hub/2002", b"hub/2003", b"hub/2004"];
    let mut per = [0; 4];
    for link in 0..200 {
        match t
            .balance_acquire(&nodes, 50, 200, link)
            .map_err(|e| e.to_string())?
        {
            Balanced::Acquired { member, .. } => per[member] += 1,
            Balanced::Full => return Err(format!("link {link} refused")),
        }
    }
    expect("links per virtual node", per, [50; 4])?;
    expect(
        "link 201",
        t.balance_acquire(&nodes, 50, 200, 300),
        Ok(Balanced::Full),
    )?;
    println!("  ->   link 201 goes to the dump node");
    expect(
        "a link drops from node 2003",
        t.release(b"hub/2003", 301),
        Ok(Release::Released),
    )?;
    expect(
        "next link goes to the freed node",
        t.balance_acquire(&nodes, 50, 200, 302),
        Ok(Balanced::Acquired {
            member: 2,
            lease: None,
        }),
    )?;
    Ok(())
}

fn main() -> ExitCode {
    let config = Config {
        capacity: 256,
        lease_capacity: 64,
        interval_ns: 10 * S,
        epoch: 0,
        seed: 0x0f10_0d6a_7e00_0001,
    };
    let Ok(size) = Table::size_for(&config) else {
        eprintln!("bad config");
        return ExitCode::FAILURE;
    };
    // An 8-aligned region; in Kamailio this is shm_malloc'd, elsewhere a
    // MAP_SHARED mapping of a /dev/shm file.
    let mut buf = vec![0u8; size + 8];
    let off = buf.as_ptr().align_offset(8);
    let region = &mut buf[off..off + size];
    println!(
        "floodgate tour: a table of {} entries in {} bytes",
        config.capacity, size
    );
    let table = match Table::init_in(region, &config, Owner::SINGLE_PROCESS) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("init: {e}");
            return ExitCode::FAILURE;
        }
    };
    for step in [kamailio, freeswitch, allstar] {
        if let Err(e) = step(&table) {
            eprintln!("\nFAILED: {e}");
            return ExitCode::FAILURE;
        }
    }
    println!("\nall checks passed");
    ExitCode::SUCCESS
}
