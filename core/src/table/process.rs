//! This process's table owner on Linux: the one implementation of the
//! pid-owner protocol (its id, the liveness test, what a waiter does) that
//! the C ABI, the `floodgate` command and the multi-process tests share.
//! Feature `process`.
//!
//! * The id is the pid, read from a static at every lock and refreshed in a
//!   child after `fork` (a `pthread_atfork` child handler), so one
//!   [`Owner`], and a table handle holding it, serves parent and child alike.
//! * A holder is dead when `kill(pid, 0)` fails with `ESRCH`; any other
//!   answer (success, or `EPERM`: another user's process) means alive.
//! * A waiter spins, giving the CPU away every 64 spins (a Pi runs more
//!   processes than it has cores).
#![allow(unsafe_code)]

use core::sync::atomic::{AtomicU32, Ordering};

use super::Owner;

/// This process's pid, refreshed in a child after `fork`; 0 until the first
/// [`process_owner`].
static PID: AtomicU32 = AtomicU32::new(0);
/// 0: the fork handler is not registered; 1: being registered; 2: done.
static REGISTERED: AtomicU32 = AtomicU32::new(0);

extern "C" fn after_fork_in_child() {
    // SAFETY: getpid is async-signal-safe and has no preconditions.
    PID.store(unsafe { libc::getpid() } as u32, Ordering::Relaxed);
}

/// Whether process `pid` may still hold a table lock: `kill(pid, 0)`
/// succeeds, or fails for another reason than "no such process". (A zombie
/// counts as alive until its parent reaps it.)
pub fn pid_is_alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    if pid <= 0 {
        return false;
    }
    // SAFETY: signal 0 only checks that the process exists; errno is this
    // thread's, read right after the call that set it.
    unsafe { libc::kill(pid, 0) == 0 || *libc::__errno_location() != libc::ESRCH }
}

/// Between spins on a busy lock: `sched_yield` every 64 spins, a spin hint
/// otherwise.
pub fn relax(spins: u32) {
    if spins.is_multiple_of(64) {
        // SAFETY: no arguments, no memory.
        unsafe { libc::sched_yield() };
    } else {
        core::hint::spin_loop();
    }
}

/// This process's owner: its pid (followed across `fork`), [`pid_is_alive`],
/// [`relax`].
pub fn process_owner() -> Owner {
    if REGISTERED.load(Ordering::Acquire) != 2 {
        if REGISTERED
            .compare_exchange(0, 1, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            // SAFETY: registers a plain extern "C" function with no state.
            unsafe { libc::pthread_atfork(None, None, Some(after_fork_in_child)) };
            after_fork_in_child();
            REGISTERED.store(2, Ordering::Release);
        } else if PID.load(Ordering::Relaxed) == 0 {
            // Another thread is registering: read our pid ourselves.
            after_fork_in_child();
        }
    }
    let pid = PID.load(Ordering::Relaxed);
    Owner::from_static(&PID, pid, pid_is_alive)
        .unwrap_or(Owner::SINGLE_PROCESS)
        .with_relax(relax)
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    // Miri has no kill(2); the normal test run covers this one.
    #[test]
    #[cfg_attr(miri, ignore = "Miri does not support kill(2)")]
    fn this_process_is_alive_and_a_free_or_invalid_pid_is_not() {
        assert!(pid_is_alive(std::process::id()));
        assert!(!pid_is_alive(0x7fff_fff0));
        assert!(!pid_is_alive(0));
        assert!(!pid_is_alive(u32::MAX));
    }

    #[test]
    fn the_owner_is_this_process_and_waits_politely() {
        let o = process_owner();
        assert_eq!(o.id(), std::process::id());
        assert_eq!(process_owner().id(), o.id());
        for spins in 60..70 {
            relax(spins);
        }
    }
}
