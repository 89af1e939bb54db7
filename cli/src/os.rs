//! What the command needs from Linux: the shared clock, this process's
//! table owner (its pid), and a SIGHUP flag for AGI.
//!
//! # Time
//! Every table call gets `now` from [`now_ns`]: `CLOCK_MONOTONIC` in
//! nanoseconds. That clock is one per boot and shared by every process of
//! the machine, so short-lived AGI processes, the operator's commands and a
//! long-running program agree on it. It restarts at each boot, which is why
//! a table file must not outlive a reboot (see
//! [`table_file`](crate::table_file)); lease hold times and windows are
//! measured on it. It does not advance while the machine is suspended.

use std::sync::atomic::{AtomicBool, Ordering};

use floodgate::table::Owner;

/// `CLOCK_MONOTONIC` in nanoseconds: the `now` of every table call.
pub fn now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    if rc != 0 {
        // CLOCK_MONOTONIC exists on every Linux; never reached in practice.
        return 0;
    }
    (ts.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(ts.tv_nsec as u64)
}

/// Whether process `pid` may still hold a table lock: `kill(pid, 0)`
/// succeeds, or fails for another reason than "no such process" (EPERM: it
/// exists but belongs to another user).
pub fn pid_is_alive(pid: u32) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    let rc = unsafe { libc::kill(pid as libc::pid_t, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

/// Between spins on a busy lock: yields the CPU every 64 spins, since a
/// Pi runs more processes than it has cores.
fn relax(spins: u32) {
    if spins.is_multiple_of(64) {
        // SAFETY: no arguments, no memory.
        unsafe { libc::sched_yield() };
    } else {
        std::hint::spin_loop();
    }
}

/// This process's table owner: its pid, with `kill(pid, 0)` liveness, so
/// the locks of a process killed mid-call are taken over by the others.
pub fn pid_owner() -> Result<Owner, floodgate::Error> {
    Ok(Owner::new(std::process::id(), pid_is_alive)?.with_relax(relax))
}

static HANGUP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_sighup(_: libc::c_int) {
    HANGUP.store(true, Ordering::SeqCst);
}

/// Replaces SIGHUP's default action (terminate) by setting a flag.
///
/// res_agi sends SIGHUP to a local AGI process when its channel hangs up
/// (unless the channel variable `AGISIGHUP` is `no`). Dying there could
/// leave a slot taken with nobody told about it, so the AGI commands note
/// the signal instead and check [`hangup_signalled`] at each step.
pub fn catch_sighup() -> std::io::Result<()> {
    // SAFETY: a zeroed sigaction is valid; the handler only stores to an
    // atomic, which is async-signal-safe. SA_RESTART: a read or write
    // interrupted by the signal goes on (std would retry it anyway).
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_sighup as extern "C" fn(libc::c_int) as usize;
        libc::sigemptyset(&mut sa.sa_mask);
        sa.sa_flags = libc::SA_RESTART;
        if libc::sigaction(libc::SIGHUP, &sa, std::ptr::null_mut()) != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Whether SIGHUP arrived since [`catch_sighup`].
pub fn hangup_signalled() -> bool {
    HANGUP.load(Ordering::SeqCst)
}

/// 8 random bytes for the table's hash seed (`getrandom`), or a mix of the
/// clock and the pid if that fails.
pub fn random_seed() -> u64 {
    let mut buf = [0u8; 8];
    // SAFETY: writes at most 8 bytes into `buf`.
    let n = unsafe { libc::getrandom(buf.as_mut_ptr().cast(), buf.len(), 0) };
    if n == 8 {
        u64::from_ne_bytes(buf)
    } else {
        now_ns().rotate_left(17) ^ u64::from(std::process::id()).wrapping_mul(0x9e37_79b9_7f4a_7c15)
    }
}

/// This boot's id (`/proc/sys/kernel/random/boot_id`), or `None`.
pub fn boot_id() -> Option<[u8; 36]> {
    let s = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    s.trim().as_bytes().try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_is_monotonic_and_nonzero() {
        let a = now_ns();
        let b = now_ns();
        assert!(a > 0 && b >= a);
    }

    #[test]
    fn this_process_is_alive_and_a_free_pid_is_not() {
        assert!(pid_is_alive(std::process::id()));
        // Above Linux's pid_max (4194304 at most): never a process.
        assert!(!pid_is_alive(0x7fff_fff0));
    }

    #[test]
    fn owner_is_this_pid() {
        assert!(pid_owner().is_ok());
    }

    #[test]
    fn boot_id_is_a_uuid() {
        let id = boot_id().expect("Linux has a boot id");
        assert_eq!(id.iter().filter(|&&b| b == b'-').count(), 4);
    }

    #[test]
    fn seeds_differ() {
        assert_ne!(random_seed(), random_seed());
    }
}
