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

/// This process's table owner: its pid, with `kill(pid, 0)` liveness, so
/// the locks of a process killed mid-call are taken over by the others
/// (floodgate's one implementation, [`floodgate::table::process`]).
pub fn pid_owner() -> Result<Owner, floodgate::Error> {
    Ok(floodgate::table::process::process_owner())
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
    fn owner_is_this_pid() {
        assert_eq!(pid_owner().map(|o| o.id()), Ok(std::process::id()));
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
