//! No heap allocation on floodgate's hot paths: 1e5 checks, acquires and
//! releases (of every kind) through the Rust table API, and the same through
//! the C ABI of `libfloodgate.so`, allocate nothing.
//!
//! Two counters, kept per thread (the test harness allocates on threads of
//! its own while a test runs):
//! * **Rust**: a counting `#[global_allocator]`, which sees every allocation
//!   of the Rust code compiled into this test binary (floodgate's core and
//!   this test).
//! * **C**: `malloc`, `calloc`, `realloc`, `posix_memalign`, `aligned_alloc`,
//!   `memalign`, `valloc` and `pvalloc`, defined in this executable and
//!   forwarding to glibc's `__libc_*` functions. A shared library's
//!   allocations do not go through this binary's `#[global_allocator]`:
//!   `libfloodgate.so` carries its own copy of Rust's std, whose allocator
//!   calls `malloc` and `posix_memalign`. glibc lets a program replace those
//!   by ELF symbol interposition, so every allocation the library (or libc
//!   itself) makes lands in this executable's definitions and is counted.
//!
//! Both counters are checked to count: [`counters_see_rust_and_c_allocations`]
//! makes a `Box` (Rust counter) and calls libc's `strdup` (C counter, from
//! inside libc, as from inside any shared library). It was also checked by
//! hand, on a scratch copy of the repository, that the tests fail when a hot
//! path allocates once per call:
//! * `black_box(vec![0u8; 1])` added to `fg_check` in ffi/src/lib.rs:
//!   `c_abi_does_not_allocate` failed with "Rust allocations: 0, C
//!   allocations: 100000" (the library's own allocator, seen only through
//!   `malloc`); the Rust test passed.
//! * the same added to `Table::check` in core/src/table/mod.rs:
//!   `rust_table_api_does_not_allocate` failed with "Rust allocations:
//!   100000, C allocations: 100000", and `c_abi_does_not_allocate` with "C
//!   allocations: 100000".
//!
//! The C part needs `libfloodgate.so`: the test runs
//! `cargo build --release -p floodgate-ffi` itself (a no-op when it is up to
//! date) and loads the library cargo reports, or the one `$FLOODGATE_SO`
//! names.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::ffi::{c_char, c_int, c_void};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use floodgate::table::{Balanced, Config, LeaseVerdict, Owner, Table};
use floodgate::{Algorithm, MaxZero};
use floodgate_benches::ffi::{
    FgConfig, FgLib, FgTable, FG_ANCHOR_ALIGNED, FG_MAX_ZERO_REFUSE_ALL, FG_OK,
};

// ---------------------------------------------------------------------------
// Counters.

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static RUST_ALLOCS: Cell<u64> = const { Cell::new(0) };
    static C_ALLOCS: Cell<u64> = const { Cell::new(0) };
}

fn note(counter: &'static std::thread::LocalKey<Cell<u64>>) {
    if COUNTING.with(Cell::get) {
        counter.with(|c| c.set(c.get() + 1));
    }
}

/// Runs `f` and returns what it returned with the Rust and C allocations
/// this thread made meanwhile.
fn count<R>(f: impl FnOnce() -> R) -> (R, u64, u64) {
    RUST_ALLOCS.with(|c| c.set(0));
    C_ALLOCS.with(|c| c.set(0));
    COUNTING.with(|c| c.set(true));
    let r = f();
    COUNTING.with(|c| c.set(false));
    (r, RUST_ALLOCS.with(Cell::get), C_ALLOCS.with(Cell::get))
}

struct Counting;

// SAFETY: forwards every call unchanged to the system allocator.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(&RUST_ALLOCS);
        // SAFETY: the caller's contract, forwarded.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(&RUST_ALLOCS);
        // SAFETY: the caller's contract, forwarded.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(&RUST_ALLOCS);
        // SAFETY: the caller's contract, forwarded.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract, forwarded.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

extern "C" {
    fn __libc_malloc(size: usize) -> *mut c_void;
    fn __libc_calloc(n: usize, size: usize) -> *mut c_void;
    fn __libc_realloc(ptr: *mut c_void, size: usize) -> *mut c_void;
    fn __libc_memalign(align: usize, size: usize) -> *mut c_void;
    fn __libc_valloc(size: usize) -> *mut c_void;
    fn __libc_pvalloc(size: usize) -> *mut c_void;
    fn __libc_free(ptr: *mut c_void);
    fn strdup(s: *const c_char) -> *mut c_char;
}

const EINVAL: c_int = 22;
const ENOMEM: c_int = 12;

/// glibc's `malloc`, counted.
///
/// # Safety
/// As `malloc(3)`.
#[no_mangle]
pub unsafe extern "C" fn malloc(size: usize) -> *mut c_void {
    note(&C_ALLOCS);
    // SAFETY: as malloc(3).
    unsafe { __libc_malloc(size) }
}

/// glibc's `calloc`, counted.
///
/// # Safety
/// As `calloc(3)`.
#[no_mangle]
pub unsafe extern "C" fn calloc(n: usize, size: usize) -> *mut c_void {
    note(&C_ALLOCS);
    // SAFETY: as calloc(3).
    unsafe { __libc_calloc(n, size) }
}

/// glibc's `realloc`, counted.
///
/// # Safety
/// As `realloc(3)`.
#[no_mangle]
pub unsafe extern "C" fn realloc(ptr: *mut c_void, size: usize) -> *mut c_void {
    note(&C_ALLOCS);
    // SAFETY: as realloc(3).
    unsafe { __libc_realloc(ptr, size) }
}

/// glibc's `memalign`, counted.
///
/// # Safety
/// As `memalign(3)`.
#[no_mangle]
pub unsafe extern "C" fn memalign(align: usize, size: usize) -> *mut c_void {
    note(&C_ALLOCS);
    // SAFETY: as memalign(3).
    unsafe { __libc_memalign(align, size) }
}

/// `aligned_alloc`, counted (glibc's own is `memalign`).
///
/// # Safety
/// As `aligned_alloc(3)`.
#[no_mangle]
pub unsafe extern "C" fn aligned_alloc(align: usize, size: usize) -> *mut c_void {
    note(&C_ALLOCS);
    // SAFETY: as aligned_alloc(3).
    unsafe { __libc_memalign(align, size) }
}

/// `posix_memalign`, counted, on glibc's `memalign`.
///
/// # Safety
/// As `posix_memalign(3)`.
#[no_mangle]
pub unsafe extern "C" fn posix_memalign(out: *mut *mut c_void, align: usize, size: usize) -> c_int {
    note(&C_ALLOCS);
    if !align.is_power_of_two() || !align.is_multiple_of(std::mem::size_of::<*mut c_void>()) {
        return EINVAL;
    }
    // SAFETY: a valid alignment (checked above).
    let p = unsafe { __libc_memalign(align, size) };
    if p.is_null() {
        return ENOMEM;
    }
    // SAFETY: `out` is valid for a write, as posix_memalign(3) requires.
    unsafe { out.write(p) };
    0
}

/// glibc's `valloc`, counted.
///
/// # Safety
/// As `valloc(3)`.
#[no_mangle]
pub unsafe extern "C" fn valloc(size: usize) -> *mut c_void {
    note(&C_ALLOCS);
    // SAFETY: as valloc(3).
    unsafe { __libc_valloc(size) }
}

/// glibc's `pvalloc`, counted.
///
/// # Safety
/// As `pvalloc(3)`.
#[no_mangle]
pub unsafe extern "C" fn pvalloc(size: usize) -> *mut c_void {
    note(&C_ALLOCS);
    // SAFETY: as pvalloc(3).
    unsafe { __libc_pvalloc(size) }
}

/// glibc's `free`.
///
/// # Safety
/// As `free(3)`.
#[no_mangle]
pub unsafe extern "C" fn free(ptr: *mut c_void) {
    // SAFETY: as free(3); every allocator above is glibc's.
    unsafe { __libc_free(ptr) }
}

// ---------------------------------------------------------------------------
// The workload.

/// Operations of each kind.
const N: usize = 100_000;
/// Distinct keys cycled through (so pipes are created, then found).
const KEYS: usize = 48;

/// `KEYS` keys of 4 to 13 bytes, made before counting starts.
fn keys() -> Vec<Vec<u8>> {
    (0..KEYS)
        .map(|i| format!("10.0.{}.{}", i % 7, i).into_bytes())
        .collect()
}

const ALGOS: [Algorithm; 5] = [
    Algorithm::Taildrop,
    Algorithm::Red,
    Algorithm::Feedback,
    Algorithm::Gcra,
    Algorithm::Sliding,
];

fn limit(a: Algorithm) -> i64 {
    if a == Algorithm::Feedback {
        50
    } else {
        1_000
    }
}

#[test]
fn counters_see_rust_and_c_allocations() {
    let (b, rust, _) = count(|| Box::new(7u64));
    assert_eq!(*b, 7);
    assert!(rust >= 1, "the global allocator saw no Box");
    let s = c"counted";
    // SAFETY: a valid NUL-terminated string; the copy is freed below.
    let (p, rust, c) = count(|| unsafe { strdup(s.as_ptr()) });
    assert!(!p.is_null());
    // SAFETY: strdup's result, freed once.
    unsafe { free(p.cast()) };
    assert!(c >= 1, "malloc called from inside libc was not seen");
    assert_eq!(rust, 0);
    let (_, rust, c) = count(|| 1 + 1);
    assert_eq!((rust, c), (0, 0));
}

#[test]
fn rust_table_api_does_not_allocate() {
    let config = Config {
        capacity: 256,
        lease_capacity: 256,
        interval_ns: 1_000_000,
        epoch: 0,
        seed: 0x5eed,
    };
    let mut region = vec![0u64; Table::size_for(&config).unwrap() / 8 + 1];
    // SAFETY: a plain u64 buffer seen as bytes, used only through the table.
    let bytes = unsafe {
        std::slice::from_raw_parts_mut(region.as_mut_ptr().cast::<u8>(), region.len() * 8)
    };
    let keys = keys();
    let members: [&[u8]; 4] = [b"hub/1", b"hub/2", b"hub/3", b"hub/4"];
    let (done, rust, c) = count(|| {
        let t = Table::init_in(bytes, &config, Owner::SINGLE_PROCESS).unwrap();
        let mut done = 0u64;
        for i in 0..N {
            let now = i as u64 * 1_000;
            let k = &keys[i % KEYS];
            let a = ALGOS[i % KEYS % ALGOS.len()];
            // Checks: create on first use, then find.
            let _ = t.check_or_create(k, a, limit(a), now).unwrap();
            let _ = t.check(k, now).unwrap();
            let _ = t
                .rate_check(
                    b"fs/interval",
                    100,
                    1_000_000,
                    i % 2 == 0,
                    MaxZero::ModHash,
                    now,
                )
                .unwrap();
            // Slots: acquire, release.
            let _ = t.acquire(b"fs/slots", 1_000, now).unwrap();
            let _ = t.release(b"fs/slots", now).unwrap();
            // Leases: every other one is left to expire and be reclaimed.
            match t
                .lease_acquire(b"fs/leases", 1_000, Some(50_000), now)
                .unwrap()
            {
                LeaseVerdict::Acquired(l) if i % 2 == 0 => {
                    let _ = t.lease_release(l, now).unwrap();
                }
                _ => {}
            }
            // Balancing over 4 members: with leases (two of three left to
            // expire), and plain slots released on the chosen member.
            if let Balanced::Acquired { lease: Some(l), .. } = t
                .balance_lease(&members, 100, 200, Some(30_000), now)
                .unwrap()
            {
                if i % 3 == 0 {
                    let _ = t.lease_release(l, now).unwrap();
                }
            }
            if let Balanced::Acquired { member, .. } =
                t.balance_acquire(&members, 100, -1, now).unwrap()
            {
                let _ = t.release(members[member], now).unwrap();
            }
            done += 1;
        }
        let _ = t.clean_unused(1, N as u64 * 1_000 + 10_000_000);
        done
    });
    assert_eq!(done, N as u64);
    assert_eq!(
        (rust, c),
        (0, 0),
        "Rust allocations: {rust}, C allocations: {c}"
    );
}

/// Builds `libfloodgate.so` (a no-op when it is up to date) and returns
/// its path, or `$FLOODGATE_SO`.
fn library() -> PathBuf {
    if let Some(p) = std::env::var_os("FLOODGATE_SO") {
        return PathBuf::from(p);
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args([
        "build",
        "--release",
        "-p",
        "floodgate-ffi",
        "--message-format=json-render-diagnostics",
    ])
    .current_dir(env!("CARGO_MANIFEST_DIR"))
    .stdout(Stdio::piped())
    .stderr(Stdio::inherit());
    // Under `cargo test --release` the outer cargo holds the release
    // directory: build in a target directory of its own then.
    let exe = std::env::current_exe().unwrap();
    if exe.components().any(|c| c.as_os_str() == "release") {
        let target = exe.ancestors().nth(3).unwrap().join("alloc-test-ffi");
        cmd.arg("--target-dir").arg(target);
    }
    let mut child = cmd.spawn().expect("run cargo build -p floodgate-ffi");
    let mut out = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut out, &mut s).map(|_| s)
    });
    let deadline = Instant::now() + Duration::from_secs(20 * 60);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("cargo build --release -p floodgate-ffi took over 20 minutes");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let json = reader.join().unwrap().unwrap();
    assert!(
        status.success(),
        "cargo build --release -p floodgate-ffi failed"
    );
    for line in json.lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if v["reason"] != "compiler-artifact" || v["target"]["name"] != "floodgate" {
            continue;
        }
        for f in v["filenames"].as_array().into_iter().flatten() {
            if let Some(f) = f.as_str().filter(|f| f.ends_with("libfloodgate.so")) {
                return PathBuf::from(f);
            }
        }
    }
    panic!("cargo reported no libfloodgate.so");
}

#[test]
fn c_abi_does_not_allocate() {
    let lib = FgLib::load(&library()).unwrap();
    let cfg = FgConfig {
        capacity: 256,
        lease_capacity: 256,
        interval_ns: 1_000_000,
        epoch_ns: 0,
        seed: 0x5eed,
    };
    let mut bytes = 0usize;
    // SAFETY: valid pointers.
    assert_eq!(unsafe { (lib.table_bytes)(&cfg, &mut bytes) }, FG_OK);
    let mut region = vec![0u64; bytes / 8 + 1];
    let mut h = FgTable::default();
    let keys = keys();
    let members: [&[u8]; 4] = [b"hub/1", b"hub/2", b"hub/3", b"hub/4"];
    let ptrs = members.map(<[u8]>::as_ptr);
    let lens = members.map(<[u8]>::len);
    let algos = ALGOS.map(|a| a as u32);
    let (done, rust, c) = count(|| {
        // SAFETY: every pointer is valid for the call; the region outlives
        // the handle's use.
        unsafe {
            let r = (lib.table_init)(region.as_mut_ptr().cast(), bytes, &cfg, &mut h);
            assert_eq!(r, FG_OK);
            let mut done = 0u64;
            for i in 0..N {
                let now = i as u64 * 1_000;
                let k = &keys[i % KEYS];
                let a = algos[i % KEYS % ALGOS.len()];
                let lim = limit(ALGOS[i % KEYS % ALGOS.len()]);
                assert!((lib.check_create)(&h, k.as_ptr(), k.len(), a, lim, now) > -100);
                assert!((lib.check)(&h, k.as_ptr(), k.len(), now) > -100);
                let key = b"fs/interval";
                let anchor = if i % 2 == 0 { FG_ANCHOR_ALIGNED } else { 1 };
                let r = (lib.rate_check)(
                    &h,
                    key.as_ptr(),
                    key.len(),
                    100,
                    1_000_000,
                    anchor,
                    FG_MAX_ZERO_REFUSE_ALL,
                    now,
                );
                assert!(r > -100);
                let key = b"fs/slots";
                assert!((lib.slot_acquire)(&h, key.as_ptr(), key.len(), 1_000, now) > -100);
                assert!((lib.slot_release)(&h, key.as_ptr(), key.len(), now) > -100);
                let key = b"fs/leases";
                let mut lease = 0u64;
                let r = (lib.lease_acquire)(
                    &h,
                    key.as_ptr(),
                    key.len(),
                    1_000,
                    50_000,
                    now,
                    &mut lease,
                );
                assert!(r > -100);
                if i % 2 == 0 {
                    assert!((lib.lease_release)(&h, lease, now) > -100);
                }
                let mut member = 0usize;
                let r = (lib.balance_acquire)(
                    &h,
                    ptrs.as_ptr(),
                    lens.as_ptr(),
                    4,
                    100,
                    -1,
                    0,
                    now,
                    &mut member,
                    std::ptr::null_mut(),
                );
                assert!(r > -100);
                if r == floodgate_benches::ffi::FG_ACQUIRED {
                    let m = members[member];
                    assert!((lib.slot_release)(&h, m.as_ptr(), m.len(), now) > -100);
                }
                done += 1;
            }
            done
        }
    });
    assert_eq!(done, N as u64);
    assert_eq!(
        (rust, c),
        (0, 0),
        "Rust allocations: {rust}, C allocations: {c}"
    );
}
