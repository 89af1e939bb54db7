//! # floodgate-redis
//!
//! floodgate's limiters inside Redis, so every Kamailio, FreeSWITCH and
//! Asterisk server behind a load balancer shares one limit: Redis (or Redis
//! Cluster) is the distributed engine, the core crate `floodgate` decides.
//! Build the cdylib and load it:
//!
//! ```text
//! cargo build --release -p floodgate-redis
//! redis-server --loadmodule target/release/libfloodgate_redis.so [INTERVAL ms] [TESTCLOCK yes|no]
//! ```
//!
//! | command | reference | reply |
//! | --- | --- | --- |
//! | `FG.CHECK key algorithm limit [INTERVAL ms]` | pipelimit `pl_check` | 1 pass, -1 drop, 2 NOP |
//! | `FG.RATE key max interval_ms [ALIGNED\|FIRST] [MAXZERO m]` | FreeSWITCH `max/interval` | 1 / -1 |
//! | `FG.ACQUIRE key max [HOLD ms] [PLAIN]` | FreeSWITCH concurrent limit | `[1, lease]` / `[0, ""]`; `PLAIN`: the lease or `0` |
//! | `FG.RELEASE key lease` | hangup | 1 / 0 |
//! | `FG.USAGE key` | `limit_usage` | slots held |
//! | `FG.HUB key per_member_max total_max member... [HOLD ms]` | app_rpt hub | `[member, lease]` / `[nil, ""]` |
//! | `FG.RESET key` | `limit_interval_reset` | 1 / 0 |
//! | `FG.INFO key` | `pl.list` for one pipe | field/value pairs |
//! | `CL.THROTTLE key max_burst count period [quantity]` | redis-cell | 5 integers |
//!
//! See `redis/README.md` for every command with an example, replication,
//! Redis Cluster, and the deliberate differences from pipelimit,
//! FreeSWITCH and redis-cell. Each command is a pure function (modules
//! [`pipe`], [`leases`], [`throttle`]) of its arguments and the key's old
//! [`value`]; [`store`] applies the result to Redis and replicates it.
#![deny(missing_docs)]
#![deny(unsafe_code)]
#![deny(clippy::undocumented_unsafe_blocks)]

pub mod args;
pub mod cmd;
pub mod commands;
pub mod leases;
pub mod pipe;
pub mod store;
pub mod throttle;
pub mod value;

use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::Ordering;

use redis_module::{redis_module, Context, RedisString, Status};

/// Module arguments as `loadmodule` gives them, checked: the default
/// interval (ns) and whether the test clock is on.
/// ```
/// use floodgate_redis::parse_module_args;
/// assert_eq!(parse_module_args(&[b"INTERVAL", b"1000"]), Ok((1_000_000_000, false)));
/// assert_eq!(
///     parse_module_args(&[b"INTERVAL", b"0"]),
///     Err("INTERVAL must be between 1 and 4294967295, got 0".to_string())
/// );
/// assert!(parse_module_args(&[b"TESTCLOCK", b"maybe"]).is_err());
/// assert!(parse_module_args(&[b"FOO", b"1"]).is_err());
/// assert!(parse_module_args(&[b"INTERVAL"]).is_err());
/// ```
pub fn parse_module_args(args: &[&[u8]]) -> Result<(u64, bool), String> {
    let mut interval = 10_000 * args::MS;
    let mut test_clock = false;
    let mut rest = args;
    while let [name, tail @ ..] = rest {
        let [v, tail @ ..] = tail else {
            return Err(format!(
                "module argument '{}' needs a value",
                args::show(name)
            ));
        };
        rest = tail;
        if args::is(name, "INTERVAL") {
            interval = args::millis(v, "INTERVAL").map_err(|e| match e {
                args::CmdError::Msg(m) => m,
                e => e.to_string(),
            })?;
        } else if args::is(name, "TESTCLOCK") {
            test_clock = if args::is(v, "yes") {
                true
            } else if args::is(v, "no") {
                false
            } else {
                return Err(format!(
                    "TESTCLOCK must be yes or no, not '{}'",
                    args::show(v)
                ));
            };
        } else {
            return Err(format!(
                "unknown module argument '{}' (INTERVAL ms, TESTCLOCK yes|no)",
                args::show(name)
            ));
        }
    }
    Ok((interval, test_clock))
}

fn init(ctx: &Context, args: &[RedisString]) -> Status {
    let raw: Vec<&[u8]> = args.iter().map(|a| a.as_slice()).collect();
    match parse_module_args(&raw) {
        Ok((interval, test_clock)) => {
            store::DEFAULT_INTERVAL.store(interval, Ordering::Relaxed);
            store::TEST_CLOCK.store(test_clock, Ordering::Relaxed);
        }
        Err(e) => {
            ctx.log_warning(&format!("floodgate: cannot load: {e}"));
            return Status::Err;
        }
    }
    if !store::load_api() {
        ctx.log_warning("floodgate: cannot load: this Redis lacks module API functions it needs (Redis 7.0 or later)");
        return Status::Err;
    }
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    store::IDS.store(h.finish(), Ordering::Relaxed);
    if let Err(name) = commands::register(ctx) {
        ctx.log_warning(&format!(
            "floodgate: cannot load: could not create command {name}"
        ));
        return Status::Err;
    }
    if store::TEST_CLOCK.load(Ordering::Relaxed) {
        ctx.log_warning(
            "floodgate: TESTCLOCK yes: commands may carry their own time (NOW ns); for tests only",
        );
    }
    Status::Ok
}

/// The module's registration (`RedisModule_OnLoad`), generated by the
/// `redis-module` crate; the commands are created in `init` (see
/// [`commands`]). The module's own allocations are the system
/// allocator's: they live for one command (argument lists, a value being
/// encoded), while every byte kept in a key is Redis's (string DMA), so
/// `used_memory` and `maxmemory` see all state; and the crate's unit tests
/// run outside Redis, where Redis's allocator does not exist.
#[allow(missing_docs)]
mod registration {
    use super::*;

    redis_module! {
        name: "floodgate",
        version: 1,
        allocator: (std::alloc::System, std::alloc::System),
        data_types: [],
        init: init,
    }
}
