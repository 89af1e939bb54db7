//! Helpers of the multi-process tests (Linux): a table file in /dev/shm,
//! shared anonymous memory for the children's reports, forked children that
//! end with `_exit`, pid owners and a monotonic clock.
//!
//! Children run in a copy of a multi-threaded test process, so the code they
//! run must not allocate or take locks another thread may have held at the
//! fork (malloc, stdout): the table API allocates nothing, and the children
//! report through atomics in shared memory and their exit code only.
#![allow(dead_code, unsafe_code)]

use std::ffi::CString;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::SeqCst};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use floodgate::table::{Config, Owner, Table};
use floodgate::Error;

/// Builds a table for `config` in a heap buffer's 8-aligned part, used
/// through `owner`, and runs `f` on it (the tests of one process).
pub fn with_heap_table<R>(config: &Config, owner: Owner, f: impl FnOnce(Table<'_>) -> R) -> R {
    let need = Table::size_for(config).expect("valid config");
    let mut buf = vec![0u8; need + 8];
    let off = buf.as_ptr().align_offset(8);
    let t = Table::init_in(&mut buf[off..off + need], config, owner)
        .expect("init_in on an aligned region");
    f(t)
}

/// Calls this process (or thread) made again after [`Error::Busy`] (see
/// [`again`]).
pub static BUSY: AtomicU64 = AtomicU64::new(0);

/// Makes the table call `f` until it is not [`Error::Busy`], at most 100
/// times. `Busy` (a holder that could not run for the whole bounded wait,
/// which a loaded machine may do to a process or a preempted thread)
/// changed nothing, so the call is not counted and is made again: every
/// count stays exact. Allocates nothing (forked children call it).
pub fn again<T>(mut f: impl FnMut() -> Result<T, Error>) -> Result<T, Error> {
    for _ in 0..100 {
        match f() {
            Err(Error::Busy) => BUSY.fetch_add(1, SeqCst),
            r => return r,
        };
    }
    f()
}

/// Exit code of a child whose code panicked (it should never).
pub const PANICKED: i32 = 99;

/// CLOCK_MONOTONIC in ns: the same clock in every process.
pub fn now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime");
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// This process's owner: floodgate's own pid owner (`table::process`).
pub fn pid_owner() -> Owner {
    floodgate::table::process::process_owner()
}

/// A file in /dev/shm, sized and mapped `MAP_SHARED` in this process; the
/// guard unmaps and removes it when dropped (also when a test panics).
pub struct ShmFile {
    pub path: CString,
    ptr: *mut u8,
    len: usize,
}

impl ShmFile {
    /// Creates `/dev/shm/floodgate-<tag>-<pid>-<n>` of `len` bytes.
    pub fn create(tag: &str, len: usize) -> ShmFile {
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let name = format!("/dev/shm/floodgate-{tag}-{}-{n}", std::process::id());
        let path = CString::new(name).unwrap();
        // SAFETY: `path` is a valid C string.
        let fd = unsafe {
            libc::open(
                path.as_ptr(),
                libc::O_RDWR | libc::O_CREAT | libc::O_EXCL | libc::O_CLOEXEC,
                0o600,
            )
        };
        assert!(
            fd >= 0,
            "open {path:?}: {}",
            std::io::Error::last_os_error()
        );
        // From here on the guard removes the file, whatever fails next.
        let mut file = ShmFile {
            path,
            ptr: std::ptr::null_mut(),
            len,
        };
        // SAFETY: `fd` is an open file descriptor we own.
        let rc = unsafe { libc::ftruncate(fd, len as libc::off_t) };
        let err = std::io::Error::last_os_error();
        if rc != 0 {
            // SAFETY: as above.
            unsafe { libc::close(fd) };
            panic!("ftruncate: {err}");
        }
        let ptr = map_fd(fd, len);
        // SAFETY: as above; the mapping stays valid after close.
        unsafe { libc::close(fd) };
        file.ptr = ptr.expect("mmap of the table file");
        file
    }

    /// The whole mapping as bytes (page-aligned, so 8-aligned).
    ///
    /// # Safety
    /// The slice must not outlive `self`, and only one may be used at a
    /// time in this process (the table reads and writes it atomically).
    pub unsafe fn bytes<'a>(&self) -> &'a mut [u8] {
        // SAFETY: `ptr` maps `len` readable and writable bytes (the caller
        // upholds the lifetime and aliasing rules).
        unsafe { std::slice::from_raw_parts_mut(self.ptr, self.len) }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    /// The `index`th 32-bit word of the mapping, read atomically (to look
    /// at lock words from outside the table).
    pub fn word(&self, index: usize) -> &AtomicU32 {
        assert!(index < self.len / 4);
        // SAFETY: in bounds (checked), 4-aligned (page-aligned mapping);
        // every access to the table's words, in every process, is atomic.
        unsafe { &*self.ptr.cast::<AtomicU32>().add(index) }
    }
}

impl Drop for ShmFile {
    fn drop(&mut self) {
        if !self.ptr.is_null() {
            // SAFETY: `ptr`/`len` are the mapping made in `create`.
            unsafe { libc::munmap(self.ptr.cast(), self.len) };
        }
        // SAFETY: `path` is a valid C string.
        unsafe { libc::unlink(self.path.as_ptr()) };
    }
}

fn map_fd(fd: libc::c_int, len: usize) -> Option<*mut u8> {
    // SAFETY: maps `len` bytes of an open file, shared; checked below.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            fd,
            0,
        )
    };
    (p != libc::MAP_FAILED).then_some(p.cast())
}

/// In a child: maps the file at `path` again (at an address of its own).
/// No allocation. `None` if it cannot.
pub fn map_again<'a>(path: &CString, len: usize) -> Option<&'a mut [u8]> {
    // SAFETY: `path` is a valid C string.
    let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
    if fd < 0 {
        return None;
    }
    let p = map_fd(fd, len);
    // SAFETY: `fd` is ours; the mapping stays valid after close.
    unsafe { libc::close(fd) };
    // SAFETY: a fresh mapping of `len` bytes, never unmapped (the child
    // ends with `_exit`), used only through this one slice.
    p.map(|p| unsafe { std::slice::from_raw_parts_mut(p, len) })
}

/// A `T` made only of atomics in anonymous shared memory, zeroed, seen by
/// this process and every child forked after it was made.
pub struct SharedMem<T> {
    ptr: *mut T,
}

impl<T> SharedMem<T> {
    /// # Safety
    /// Every field of `T` must be an atomic (all-zero bytes a valid value,
    /// safe to share between processes).
    pub unsafe fn new() -> SharedMem<T> {
        let len = std::mem::size_of::<T>().max(1);
        // SAFETY: an anonymous shared mapping, checked below.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert!(p != libc::MAP_FAILED, "mmap anonymous shared");
        SharedMem { ptr: p.cast() }
    }

    pub fn get(&self) -> &T {
        // SAFETY: zeroed page-aligned memory of the right size, valid as
        // `T` per `new`'s contract; only shared references are made.
        unsafe { &*self.ptr }
    }
}

impl<T> Drop for SharedMem<T> {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`.
        unsafe { libc::munmap(self.ptr.cast(), std::mem::size_of::<T>().max(1)) };
    }
}

/// How a child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    Exited(i32),
    Signaled(i32),
}

/// Forked children; those still running when the guard drops (a failed
/// test) are killed and reaped.
#[derive(Default)]
pub struct Children {
    running: Vec<libc::pid_t>,
}

impl Children {
    /// Forks a child that runs `f` and ends with `_exit(f())`.
    pub fn spawn(&mut self, f: impl FnOnce() -> i32) -> libc::pid_t {
        // SAFETY: the child only runs `f` (which must not allocate or lock)
        // and `_exit`, never returning into the test harness.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
        if pid == 0 {
            let code =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or(PANICKED);
            // SAFETY: ends the child without unwinding or running destructors.
            unsafe { libc::_exit(code) };
        }
        self.running.push(pid);
        pid
    }

    pub fn running(&self) -> &[libc::pid_t] {
        &self.running
    }

    /// Reaps `pid` if it ended.
    pub fn try_reap(&mut self, pid: libc::pid_t) -> Option<Ended> {
        let mut status = 0;
        // SAFETY: waits for our own child without blocking.
        let rc = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        assert!(rc >= 0, "waitpid: {}", std::io::Error::last_os_error());
        if rc == 0 {
            return None;
        }
        self.running.retain(|&p| p != pid);
        Some(if libc::WIFEXITED(status) {
            Ended::Exited(libc::WEXITSTATUS(status))
        } else {
            Ended::Signaled(libc::WTERMSIG(status))
        })
    }

    /// Waits for `pid` until `deadline`, calling `between` while it runs.
    pub fn wait(
        &mut self,
        pid: libc::pid_t,
        deadline: Instant,
        mut between: impl FnMut(),
    ) -> Option<Ended> {
        loop {
            if let Some(e) = self.try_reap(pid) {
                return Some(e);
            }
            if Instant::now() > deadline {
                return None;
            }
            between();
            std::thread::sleep(Duration::from_micros(200));
        }
    }

    /// Waits for every running child until `deadline`, calling `between`
    /// meanwhile; panics (killing the rest) if one is still running then.
    pub fn wait_all(
        &mut self,
        deadline: Instant,
        mut between: impl FnMut(),
    ) -> Vec<(libc::pid_t, Ended)> {
        let mut ended = Vec::new();
        while !self.running.is_empty() {
            for pid in self.running.clone() {
                if let Some(e) = self.try_reap(pid) {
                    ended.push((pid, e));
                }
            }
            if self.running.is_empty() {
                break;
            }
            assert!(
                Instant::now() <= deadline,
                "children {:?} still running at the deadline: the table wedged",
                self.running
            );
            between();
            std::thread::sleep(Duration::from_micros(200));
        }
        ended
    }
}

impl Drop for Children {
    fn drop(&mut self) {
        for &pid in &self.running {
            // SAFETY: our own children; then reap them.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, std::ptr::null_mut(), 0);
            }
        }
    }
}

/// Fails the whole test binary if the test is not done in time, even when
/// its own thread hangs in a table call (a lock never taken over): kills
/// the children, removes the table file and exits with status 101.
pub struct Watchdog {
    done: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Watchdog {
    /// Start it after the last fork: forked children only get the forking
    /// thread, but a thread that exists at a fork may hold a lock then.
    pub fn start(limit: Duration, pids: Vec<libc::pid_t>, file: &ShmFile) -> Watchdog {
        let (done, rx) = mpsc::channel::<()>();
        let path = file.path.clone();
        let thread = std::thread::spawn(move || {
            if let Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(limit) {
                eprintln!(
                    "watchdog: not done after {limit:?}, the table wedged; \
                     killing children {pids:?}"
                );
                // SAFETY: our own children and file; then the process ends
                // without unwinding.
                unsafe {
                    for &pid in &pids {
                        libc::kill(pid, libc::SIGKILL);
                    }
                    libc::unlink(path.as_ptr());
                    libc::_exit(101);
                }
            }
        });
        Watchdog {
            done: Some(done),
            thread: Some(thread),
        }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        if let Some(tx) = self.done.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
