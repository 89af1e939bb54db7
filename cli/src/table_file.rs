//! A named floodgate table in a shared-memory file, created on first use.
//!
//! # Where
//! `--table NAME` (default `app_rpt`) is the file `/dev/shm/floodgate-NAME`;
//! `--path FILE` names any file instead. Every process that opens the same
//! file maps it `MAP_SHARED` and works on the same table: AGI processes,
//! the operator's commands, a C program using `fg_table_attach`.
//!
//! # Creation, without a race
//! The first process to find no file builds the whole table in a private
//! temporary file in the same folder (`O_CREAT | O_EXCL`, mode 0660,
//! `Table::init_raw` writes the header), then publishes it with `link(2)`
//! under the final name, which fails if another process published first.
//! So the final name only ever shows a complete table: many AGI processes
//! starting at once on an empty /dev/shm all end up on the one table that
//! won, and a creator killed half-way leaves at most a temporary file
//! (`.floodgate-NAME.PID.N.tmp`), never a half-built table. No lock is
//! needed. Every later process attaches (`Table::attach_raw`), which checks
//! the header's magic number and layout.
//!
//! # Shape, given once
//! Capacity (`--capacity`, default 1024 entries), lease records
//! (`--leases`, default: as many as entries) and the interval of pipes
//! (`--interval`, default 10s, pipelimit's `timer_interval`) are fixed when
//! the table is made. Later uses may leave the flags out; a flag that is
//! given and differs from the existing table is refused (exit 2) with the
//! table's actual values, and the file is left alone.
//!
//! # Reboots
//! Times in the table are `CLOCK_MONOTONIC` (see [`os`]), and
//! lock words hold pids: both mean nothing after a reboot. /dev/shm is
//! emptied at boot, so the default location is safe. For a file elsewhere,
//! the command keeps this boot's id (`/proc/sys/kernel/random/boot_id`) in a
//! 64-byte trailer after the table and refuses (exit 3) a file made during
//! another boot: remove it and the next use makes a new one. Files made by
//! other programs (no trailer) are attached without this check.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use floodgate::table::{Config, Table, HEADER_WORDS};

use crate::{os, Failure};

/// Folder of the tables named with `--table`.
pub const DEFAULT_DIR: &str = "/dev/shm";
/// Entries of a new table when `--capacity` is not given.
pub const DEFAULT_CAPACITY: usize = 1024;
/// Window length of a new table's pipes when `--interval` is not given (10 s).
pub const DEFAULT_INTERVAL_NS: u64 = 10_000_000_000;
/// Bytes of the command's trailer after the table.
pub const TRAILER_LEN: usize = 64;
const TRAILER_MAGIC: &[u8; 8] = b"FGCLI001";

/// The file of table `name` in [`DEFAULT_DIR`].
pub fn default_path(name: &str) -> PathBuf {
    Path::new(DEFAULT_DIR).join(format!("floodgate-{name}"))
}

/// The shape asked for on the command line; `None` means "whatever the
/// existing table has, or the default for a new one".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Spec {
    /// `--capacity`: entries.
    pub capacity: Option<usize>,
    /// `--leases`: lease records.
    pub lease_capacity: Option<usize>,
    /// `--interval`: window length in ns.
    pub interval_ns: Option<u64>,
}

impl Spec {
    /// The config of a new table: the flags given, defaults for the rest.
    pub fn config(&self) -> Config {
        let capacity = self.capacity.unwrap_or(DEFAULT_CAPACITY);
        Config {
            capacity,
            lease_capacity: self.lease_capacity.unwrap_or(capacity),
            interval_ns: self.interval_ns.unwrap_or(DEFAULT_INTERVAL_NS),
            epoch: 0,
            seed: os::random_seed(),
        }
    }
}

/// A table file mapped `MAP_SHARED` into this process; unmapped on drop.
#[derive(Debug)]
pub struct TableFile {
    path: PathBuf,
    ptr: *mut u8,
    len: usize,
    created: bool,
}

// The mapping is only ever accessed through the table's atomics.
// SAFETY: the pointer is to shared memory that the table API accesses only
// atomically; nothing in `TableFile` is tied to the creating thread.
unsafe impl Send for TableFile {}
// SAFETY: as above; `&TableFile` only hands out `Table` handles, which are
// `Sync`.
unsafe impl Sync for TableFile {}

fn io_failure(path: &Path, what: &str, e: io::Error) -> Failure {
    let hint = match e.kind() {
        io::ErrorKind::PermissionDenied => {
            " (the table file must be readable and writable by every user of it, e.g. Asterisk's: \
             chown it to that user, or let that user make it)"
        }
        _ => "",
    };
    Failure::error(format!("{}: {what}: {e}{hint}", path.display()))
}

fn round8(n: usize) -> usize {
    n.div_ceil(8) * 8
}

/// Formats nanoseconds with the largest exact unit (`10s`, `1500ms`).
pub fn fmt_ns(ns: u64) -> String {
    const UNITS: [(u64, &str); 6] = [
        (86_400_000_000_000, "d"),
        (3_600_000_000_000, "h"),
        (60_000_000_000, "m"),
        (1_000_000_000, "s"),
        (1_000_000, "ms"),
        (1_000, "us"),
    ];
    for (n, unit) in UNITS {
        if ns >= n && ns.is_multiple_of(n) {
            return format!("{}{unit}", ns / n);
        }
    }
    format!("{ns}ns")
}

impl TableFile {
    /// Opens the table at `path`, making it first if there is no file.
    /// Flags in `spec` that differ from an existing table are refused
    /// ([`Exit::Usage`](crate::Exit::Usage)) and leave the file alone.
    pub fn open(path: &Path, spec: &Spec) -> Result<TableFile, Failure> {
        // Check the flags before touching anything.
        let config = spec.config();
        Table::size_for(&config)
            .map_err(|e| Failure::usage(format!("--capacity/--leases/--interval: {e}")))?;
        for _ in 0..8 {
            match OpenOptions::new()
                .read(true)
                .write(true)
                .custom_flags(libc::O_CLOEXEC)
                .open(path)
            {
                Ok(file) => return TableFile::attach(path, &file, spec),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    if let Some(made) = TableFile::create(path, &config)? {
                        return Ok(made);
                    }
                    // Another process published its table first: attach it.
                }
                Err(e) => return Err(io_failure(path, "open", e)),
            }
        }
        Err(Failure::error(format!(
            "{}: appears and disappears while being opened: is something removing it?",
            path.display()
        )))
    }

    /// Builds a table in a temporary file and links it to `path`. `None`
    /// if another process linked its own first.
    fn create(path: &Path, config: &Config) -> Result<Option<TableFile>, Failure> {
        static N: AtomicU32 = AtomicU32::new(0);
        let table_len = Table::size_for(config).map_err(|e| Failure::usage(e.to_string()))?;
        let len = round8(table_len) + TRAILER_LEN;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "table".to_owned());
        let tmp = path.with_file_name(format!(
            ".{name}.{}.{}.tmp",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o660)
            .custom_flags(libc::O_CLOEXEC)
            .open(&tmp)
            .map_err(|e| io_failure(&tmp, "create", e))?;
        // From here on the temporary name goes, whatever fails.
        let unlink_tmp = Unlink(&tmp);
        // The umask may have taken group write away: users of the table
        // (Asterisk and the operator) often share a group.
        file.set_permissions(fs::Permissions::from_mode(0o660))
            .map_err(|e| io_failure(&tmp, "chmod", e))?;
        file.set_len(len as u64)
            .map_err(|e| io_failure(&tmp, "size", e))?;
        let mut made = TableFile::map(&tmp, &file, len)?;
        let owner = os::pid_owner().map_err(|e| Failure::error(e.to_string()))?;
        // SAFETY: the mapping is `len` bytes, readable and writable, alive
        // as long as `made`; nobody else knows the temporary file yet.
        unsafe { Table::init_raw(made.ptr, len, config, owner) }
            .map_err(|e| Failure::error(format!("{}: {e}", tmp.display())))?;
        let mut trailer = [0u8; TRAILER_LEN];
        trailer[..8].copy_from_slice(TRAILER_MAGIC);
        if let Some(id) = os::boot_id() {
            trailer[8..44].copy_from_slice(&id);
        }
        // The trailer lies after the table's bytes and is written once,
        // before the file is published, through the file (not the mapping).
        file.write_all_at(&trailer, (len - TRAILER_LEN) as u64)
            .map_err(|e| io_failure(&tmp, "write", e))?;
        match fs::hard_link(&tmp, path) {
            Ok(()) => {
                drop(unlink_tmp);
                made.path = path.to_owned();
                made.created = true;
                Ok(Some(made))
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(None),
            Err(e) => Err(io_failure(path, "publish (link)", e)),
        }
    }

    fn map(path: &Path, file: &File, len: usize) -> Result<TableFile, Failure> {
        // SAFETY: maps `len` bytes of an open file, shared; checked below.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io_failure(path, "mmap", io::Error::last_os_error()));
        }
        Ok(TableFile {
            path: path.to_owned(),
            ptr: p.cast(),
            len,
            created: false,
        })
    }

    fn attach(path: &Path, file: &File, spec: &Spec) -> Result<TableFile, Failure> {
        let len = file
            .metadata()
            .map_err(|e| io_failure(path, "stat", e))?
            .len();
        let not_a_table = || {
            Failure::error(format!(
                "{}: not a floodgate table ({len} bytes{}); remove it or choose another --table/--path",
                path.display(),
                if len == 0 { ", empty" } else { "" }
            ))
        };
        let len = usize::try_from(len).map_err(|_| not_a_table())?;
        if len < HEADER_WORDS * 4 {
            return Err(not_a_table());
        }
        let mapped = TableFile::map(path, file, len)?;
        let t = mapped.table()?;
        let (capacity, leases, interval) = (t.capacity(), t.lease_capacity(), t.interval());
        let mut wrong = Vec::new();
        if spec.capacity.is_some_and(|c| c != capacity) {
            wrong.push(format!("--capacity {}", spec.capacity.unwrap_or(0)));
        }
        if spec.lease_capacity.is_some_and(|c| c != leases) {
            wrong.push(format!("--leases {}", spec.lease_capacity.unwrap_or(0)));
        }
        if spec.interval_ns.is_some_and(|i| i != interval) {
            wrong.push(format!(
                "--interval {}",
                fmt_ns(spec.interval_ns.unwrap_or(0))
            ));
        }
        if !wrong.is_empty() {
            return Err(Failure::usage(format!(
                "{}: the table there has capacity {capacity}, {leases} lease records and interval {}; \
                 {} does not match (drop the flag, or remove the file to make a new table)",
                path.display(),
                fmt_ns(interval),
                wrong.join(", ")
            )));
        }
        mapped.check_boot(file, capacity, leases)?;
        Ok(mapped)
    }

    /// Refuses a file whose trailer names another boot.
    fn check_boot(&self, file: &File, capacity: usize, leases: usize) -> Result<(), Failure> {
        let Some(table_len) = floodgate::table::bytes_for(capacity, leases) else {
            return Ok(());
        };
        let at = round8(table_len);
        if self.len < at + TRAILER_LEN {
            return Ok(()); // made by another program: no trailer
        }
        let mut trailer = [0u8; TRAILER_LEN];
        file.read_exact_at(&mut trailer, at as u64)
            .map_err(|e| io_failure(&self.path, "read", e))?;
        if &trailer[..8] != TRAILER_MAGIC {
            return Ok(());
        }
        match os::boot_id() {
            Some(id) if trailer[8..44] != id => Err(Failure::error(format!(
                "{}: made during another boot of this machine: its times and lock owners mean \
                 nothing now; remove it and the next use makes a new table (in /dev/shm, the \
                 default place, this cannot happen: a reboot empties it)",
                self.path.display()
            ))),
            _ => Ok(()),
        }
    }

    /// A handle on the table for this process (its pid is the owner).
    pub fn table(&self) -> Result<Table<'_>, Failure> {
        let owner = os::pid_owner().map_err(|e| Failure::error(e.to_string()))?;
        // SAFETY: `ptr` maps `len` readable and writable bytes until `self`
        // drops, which outlives the returned handle ('_ borrows self); every
        // user of the file (this and other processes) goes through
        // floodgate's atomics, except the trailer past the table, which is
        // written once before the file is published.
        unsafe { Table::attach_raw(self.ptr, self.len, owner) }.map_err(|e| {
            use floodgate::Error as E;
            match e {
                E::NotATable => Failure::error(format!(
                    "{}: not a floodgate table (bad magic number); remove it or choose another \
                     --table/--path",
                    self.path.display()
                )),
                E::LayoutMismatch => Failure::error(layout_mismatch(&self.path)),
                e => Failure::error(format!("{}: {e}", self.path.display())),
            }
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether this call made the table (first use).
    pub fn created(&self) -> bool {
        self.created
    }

    /// Bytes mapped (the file's size).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is mapped (never, for an open table).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Drop for TableFile {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` are the mapping made in `map`; no handle on it
        // outlives `self`.
        unsafe { libc::munmap(self.ptr.cast(), self.len) };
    }
}

/// Removes a file when dropped.
struct Unlink<'p>(&'p Path);

impl Drop for Unlink<'_> {
    fn drop(&mut self) {
        let _ = fs::remove_file(self.0);
    }
}

/// What to say of a table file that floodgate refuses as another layout:
/// its version (bytes 4 to 7) against this floodgate's, and what to do.
fn layout_mismatch(path: &Path) -> String {
    use floodgate::table::LAYOUT_VERSION;
    // The version word alone (bytes 4 to 7), not the whole table.
    let mut word = [0u8; 4];
    let found = File::open(path)
        .and_then(|f| f.read_exact_at(&mut word, 4))
        .ok()
        .map(|()| u32::from_ne_bytes(word));
    let what = match found {
        Some(v) if v < LAYOUT_VERSION => format!(
            "a floodgate table of layout version {v}, made by an older floodgate; this one reads \
             version {LAYOUT_VERSION}"
        ),
        Some(v) if v > LAYOUT_VERSION => format!(
            "a floodgate table of layout version {v}, made by a newer floodgate; this one reads \
             version {LAYOUT_VERSION}"
        ),
        _ => format!(
            "a floodgate table of layout version {LAYOUT_VERSION} whose shape this floodgate does not \
             accept (entry or lease size, capacity or interval)"
        ),
    };
    format!(
        "{}: {what}. Stop every program using it, remove the file, and the next command makes \
         a new one (its pipes and leases start empty)",
        path.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Exit;

    fn temp_path(tag: &str) -> PathBuf {
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        std::env::temp_dir().join(format!(
            "floodgate-cli-unit-{tag}-{}-{n}",
            std::process::id()
        ))
    }

    #[test]
    fn durations_print_with_the_largest_exact_unit() {
        assert_eq!(fmt_ns(10_000_000_000), "10s");
        assert_eq!(fmt_ns(1_500_000_000), "1500ms");
        assert_eq!(fmt_ns(86_400_000_000_000), "1d");
        assert_eq!(fmt_ns(90 * 60_000_000_000), "90m");
        assert_eq!(fmt_ns(7), "7ns");
        assert_eq!(fmt_ns(0), "0ns");
    }

    #[test]
    fn first_use_creates_then_attaches_and_checks_flags() {
        let path = temp_path("create");
        let spec = Spec {
            capacity: Some(64),
            lease_capacity: Some(32),
            interval_ns: Some(1_000_000_000),
        };
        let a = TableFile::open(&path, &spec).unwrap();
        assert!(a.created());
        let t = a.table().unwrap();
        assert_eq!(
            (t.capacity(), t.lease_capacity(), t.interval()),
            (64, 32, 1_000_000_000)
        );
        assert_eq!(
            a.len(),
            round8(floodgate::table::bytes_for(64, 32).unwrap()) + TRAILER_LEN
        );
        // No temporary file is left behind.
        let dir = path.parent().unwrap();
        let stem = path.file_name().unwrap().to_string_lossy().into_owned();
        let left = fs::read_dir(dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| {
                e.file_name()
                    .to_string_lossy()
                    .starts_with(&format!(".{stem}."))
            })
            .count();
        assert_eq!(left, 0);

        let b = TableFile::open(&path, &Spec::default()).unwrap();
        assert!(!b.created());
        b.table()
            .unwrap()
            .set(b"p", floodgate::Algorithm::Taildrop, 3, 0)
            .unwrap();
        assert!(a.table().unwrap().active(b"p").unwrap(), "one shared table");

        let wrong = Spec {
            capacity: Some(128),
            interval_ns: Some(2_000_000_000),
            ..spec
        };
        let err = TableFile::open(&path, &wrong).unwrap_err();
        assert_eq!(err.exit, Exit::Usage);
        assert!(err.message.contains("--capacity 128"), "{}", err.message);
        assert!(err.message.contains("--interval 2s"), "{}", err.message);
        assert!(err.message.contains("capacity 64"), "{}", err.message);
        fs::remove_file(&path).unwrap();
    }

    #[test]
    fn a_foreign_file_is_not_a_table_and_stays_as_it_was() {
        let path = temp_path("foreign");
        fs::write(&path, vec![7u8; 4096]).unwrap();
        let err = TableFile::open(&path, &Spec::default()).unwrap_err();
        assert_eq!(err.exit, Exit::Error);
        assert!(
            err.message.contains("not a floodgate table"),
            "{}",
            err.message
        );
        assert_eq!(fs::read(&path).unwrap(), vec![7u8; 4096]);
        fs::write(&path, b"").unwrap();
        let err = TableFile::open(&path, &Spec::default()).unwrap_err();
        assert!(err.message.contains("empty"), "{}", err.message);
        fs::remove_file(&path).unwrap();
    }

    #[test]
    fn another_boot_is_refused() {
        let path = temp_path("boot");
        let made = TableFile::open(&path, &Spec::default()).unwrap();
        let at = made.len() - TRAILER_LEN;
        drop(made);
        let f = OpenOptions::new().write(true).open(&path).unwrap();
        f.write_all_at(b"00000000-0000-0000-0000-000000000000", at as u64 + 8)
            .unwrap();
        let err = TableFile::open(&path, &Spec::default()).unwrap_err();
        assert_eq!(err.exit, Exit::Error);
        assert!(err.message.contains("another boot"), "{}", err.message);
        fs::remove_file(&path).unwrap();
    }

    #[test]
    fn bad_shapes_are_usage_errors_before_any_file_is_made() {
        let path = temp_path("shape");
        let err = TableFile::open(
            &path,
            &Spec {
                capacity: Some(0),
                ..Spec::default()
            },
        )
        .unwrap_err();
        assert_eq!(err.exit, Exit::Usage);
        assert!(!path.exists());
    }

    #[test]
    fn racing_creators_share_one_table() {
        let path = temp_path("race");
        let files: Vec<TableFile> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..8)
                .map(|_| s.spawn(|| TableFile::open(&path, &Spec::default()).unwrap()))
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(files.iter().filter(|f| f.created()).count(), 1);
        let v = files[3].table().unwrap().acquire(b"k", 10, 0).unwrap();
        assert_eq!(v, floodgate::SlotVerdict::Acquired);
        for f in &files {
            assert_eq!(f.table().unwrap().usage(b"k", 0).unwrap(), 1);
        }
        fs::remove_file(&path).unwrap();
    }
}
