//! floodgate's C ABI, loaded from `libfloodgate.so` with `dlopen`.
//!
//! The ffi crate builds only a staticlib and a cdylib (its library is also
//! named `floodgate`, which would clash with the core crate), so Rust reaches
//! the C ABI the way a C program does: through the shared library's exported
//! symbols. Each call is an indirect call into another object, with the
//! library's own argument checks and panic boundary, exactly what a Kamailio
//! or FreeSWITCH module pays through the PLT.
//!
//! Build the library first: `cargo build --release -p floodgate-ffi`.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// `fg_table` (`FG_TABLE_HANDLE_WORDS` = 20 words of caller memory).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct FgTable {
    /// Opaque.
    pub opaque: [u64; 20],
}

/// `fg_config`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct FgConfig {
    /// Entries.
    pub capacity: u32,
    /// Lease records.
    pub lease_capacity: u32,
    /// Window length in ns.
    pub interval_ns: u64,
    /// Epoch of aligned windows in ns.
    pub epoch_ns: u64,
    /// Hash seed.
    pub seed: u64,
}

/// `FG_OK`.
pub const FG_OK: i32 = 0;
/// `FG_PASS`.
pub const FG_PASS: i32 = 1;
/// `FG_ACQUIRED`.
pub const FG_ACQUIRED: i32 = 3;
/// `FG_RELEASED`.
pub const FG_RELEASED: i32 = 4;
/// `FG_ALGO_TAILDROP`.
pub const FG_ALGO_TAILDROP: u32 = 0;
/// `FG_ANCHOR_ALIGNED`.
pub const FG_ANCHOR_ALIGNED: u32 = 0;
/// `FG_MAX_ZERO_REFUSE_ALL`.
pub const FG_MAX_ZERO_REFUSE_ALL: u32 = 0;

/// `fg_table_bytes`.
pub type TableBytesFn = unsafe extern "C" fn(*const FgConfig, *mut usize) -> i32;
/// `fg_table_init`.
pub type TableInitFn =
    unsafe extern "C" fn(*mut core::ffi::c_void, usize, *const FgConfig, *mut FgTable) -> i32;
/// `fg_check`.
pub type CheckFn = unsafe extern "C" fn(*const FgTable, *const u8, usize, u64) -> i32;
/// `fg_check_create`.
pub type CheckCreateFn =
    unsafe extern "C" fn(*const FgTable, *const u8, usize, u32, i64, u64) -> i32;
/// `fg_rate_check`.
pub type RateCheckFn =
    unsafe extern "C" fn(*const FgTable, *const u8, usize, i32, u64, u32, u32, u64) -> i32;
/// `fg_slot_acquire`.
pub type SlotAcquireFn = unsafe extern "C" fn(*const FgTable, *const u8, usize, i32, u64) -> i32;
/// `fg_slot_release`.
pub type SlotReleaseFn = unsafe extern "C" fn(*const FgTable, *const u8, usize, u64) -> i32;
/// `fg_lease_acquire`.
pub type LeaseAcquireFn =
    unsafe extern "C" fn(*const FgTable, *const u8, usize, i32, u64, u64, *mut u64) -> i32;
/// `fg_lease_release`.
pub type LeaseReleaseFn = unsafe extern "C" fn(*const FgTable, u64, u64) -> i32;
/// `fg_balance_acquire`.
pub type BalanceAcquireFn = unsafe extern "C" fn(
    *const FgTable,
    *const *const u8,
    *const usize,
    usize,
    i32,
    i32,
    u64,
    u64,
    *mut usize,
    *mut u64,
) -> i32;

/// The loaded library and the functions the benchmarks call.
#[derive(Debug)]
pub struct FgLib {
    /// `fg_table_bytes`.
    pub table_bytes: TableBytesFn,
    /// `fg_table_init`.
    pub table_init: TableInitFn,
    /// `fg_check`.
    pub check: CheckFn,
    /// `fg_check_create`.
    pub check_create: CheckCreateFn,
    /// `fg_rate_check`.
    pub rate_check: RateCheckFn,
    /// `fg_slot_acquire`.
    pub slot_acquire: SlotAcquireFn,
    /// `fg_slot_release`.
    pub slot_release: SlotReleaseFn,
    /// `fg_lease_acquire`.
    pub lease_acquire: LeaseAcquireFn,
    /// `fg_lease_release`.
    pub lease_release: LeaseReleaseFn,
    /// `fg_balance_acquire`.
    pub balance_acquire: BalanceAcquireFn,
    path: PathBuf,
    _lib: libloading::Library,
}

impl FgLib {
    /// Loads the library at `path` and looks up its functions.
    pub fn load(path: &Path) -> Result<FgLib, String> {
        let err = |e: libloading::Error| format!("{}: {e}", path.display());
        // SAFETY: libfloodgate.so runs no code at load time beyond Rust's
        // standard library initialisation, and the types below are the
        // declarations of include/floodgate.h.
        unsafe {
            let lib = libloading::Library::new(path).map_err(err)?;
            macro_rules! sym {
                ($name:literal) => {
                    *lib.get(concat!($name, "\0").as_bytes()).map_err(err)?
                };
            }
            Ok(FgLib {
                table_bytes: sym!("fg_table_bytes"),
                table_init: sym!("fg_table_init"),
                check: sym!("fg_check"),
                check_create: sym!("fg_check_create"),
                rate_check: sym!("fg_rate_check"),
                slot_acquire: sym!("fg_slot_acquire"),
                slot_release: sym!("fg_slot_release"),
                lease_acquire: sym!("fg_lease_acquire"),
                lease_release: sym!("fg_lease_release"),
                balance_acquire: sym!("fg_balance_acquire"),
                path: path.to_owned(),
                _lib: lib,
            })
        }
    }

    /// Loads the library [`library_path`] finds, after checking that it is
    /// newer than the sources it is built from, and leaks it (benchmarks
    /// keep it for the whole run).
    pub fn load_fresh() -> Result<&'static FgLib, String> {
        let path = library_path();
        if !path.exists() {
            return Err(format!(
                "{} not found: build it first with `cargo build --release -p floodgate-ffi` \
                 (or set FLOODGATE_SO)",
                path.display()
            ));
        }
        if std::env::var_os("FLOODGATE_SO").is_none() {
            check_fresh(&path)?;
        }
        Ok(Box::leak(Box::new(FgLib::load(&path)?)))
    }

    /// Where the library was loaded from.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Where `libfloodgate.so` is: `$FLOODGATE_SO` if set, else the `release`
/// directory of the target directory this executable was built in
/// (`target/release/deps/x` → `target/release/libfloodgate.so`,
/// `target/debug/deps/x` → `target/release/libfloodgate.so`).
pub fn library_path() -> PathBuf {
    if let Some(p) = std::env::var_os("FLOODGATE_SO") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().unwrap_or_default();
    // <target>/<profile>/deps/<exe>, or <target>/<profile>/<exe> for bins.
    let mut dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    if dir
        .file_name()
        .is_some_and(|n| n == "deps" || n == "examples")
    {
        dir.pop();
    }
    dir.pop();
    dir.join("release").join("libfloodgate.so")
}

fn newest(dir: &Path, newest: &mut SystemTime) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            self::newest(&p, newest);
        } else if let Ok(t) = e.metadata().and_then(|m| m.modified()) {
            *newest = (*newest).max(t);
        }
    }
}

/// Fails if a source file of the library (under core/src or ffi/src) is
/// newer than `lib`, so that no run measures a stale build. (Cargo rebuilds
/// the library whenever one of those files changes, so a fresh build always
/// passes this check.)
pub fn check_fresh(lib: &Path) -> Result<(), String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut src = SystemTime::UNIX_EPOCH;
    for d in ["core/src", "ffi/src"] {
        newest(&root.join(d), &mut src);
    }
    let built = std::fs::metadata(lib)
        .and_then(|m| m.modified())
        .map_err(|e| format!("{}: {e}", lib.display()))?;
    if built < src {
        return Err(format!(
            "{} is older than its sources: rebuild it with `cargo build --release -p floodgate-ffi`",
            lib.display()
        ));
    }
    Ok(())
}
