//! The commands as Redis sees them: names, flags, key positions, and one
//! `extern "C"` entry point each, which hands the raw arguments to
//! [`store::dispatch`] with the command's pure function.
//!
//! Every command names exactly one key, its first argument, declared to
//! Redis (first key 1, last key 1, step 1): `COMMAND GETKEYS`, ACL key
//! patterns and Redis Cluster's redirection see it. Writing commands are
//! `write deny-oom` (refused with `OOM` at `maxmemory`), the two readers
//! `readonly`.
#![allow(unsafe_code)]

use std::ffi::{c_int, CStr};

use redis_module::raw::{self, RedisModuleCtx, RedisModuleString};
use redis_module::Context;

use crate::store::{self, Access, Handler};
use crate::{leases, pipe, throttle};

macro_rules! commands {
    ($($f:ident: $name:literal, $flags:literal, $handler:path, $access:expr;)*) => {
        $(
            extern "C" fn $f(
                ctx: *mut RedisModuleCtx,
                argv: *mut *mut RedisModuleString,
                argc: c_int,
            ) -> c_int {
                store::dispatch(ctx, argv, argc, $handler as Handler, $access)
            }
        )*

        /// Creates every command; the name of the first that fails.
        pub fn register(ctx: &Context) -> Result<(), &'static str> {
            // SAFETY: the API table is filled once at load, before this runs.
            let create = unsafe { raw::RedisModule_CreateCommand }.ok_or("(all)")?;
            $(
                let name: &CStr = $name;
                let flags: &CStr = $flags;
                // SAFETY: the load context, NUL-terminated strings Redis
                // copies, and an entry point of the right signature.
                let rc = unsafe { create(ctx.ctx, name.as_ptr(), Some($f), flags.as_ptr(), 1, 1, 1) };
                if rc != raw::REDISMODULE_OK as c_int {
                    return Err(name.to_str().unwrap_or("?"));
                }
            )*
            Ok(())
        }
    };
}

commands! {
    fg_check: c"fg.check", c"write deny-oom", pipe::check, Access::Write;
    fg_rate: c"fg.rate", c"write deny-oom", pipe::rate, Access::Write;
    fg_reset: c"fg.reset", c"write deny-oom", pipe::reset, Access::Write;
    fg_info: c"fg.info", c"readonly", pipe::info, Access::Info;
    fg_acquire: c"fg.acquire", c"write deny-oom", leases::acquire, Access::Write;
    fg_release: c"fg.release", c"write deny-oom", leases::release, Access::Write;
    fg_usage: c"fg.usage", c"readonly", leases::usage, Access::Read;
    fg_hub: c"fg.hub", c"write deny-oom", leases::hub, Access::Write;
    cl_throttle: c"cl.throttle", c"write deny-oom", throttle::throttle, Access::Write;
}
