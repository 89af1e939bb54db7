//! Shared harness for the floodgate-redis integration tests: start and stop
//! `redis-server` processes with the module loaded, talk to them with the
//! `redis` crate, and small helpers (a seeded RNG, reply accessors).
//!
//! Every wait here is bounded in iterations and time; every server is killed
//! (its whole process group, so a wrapper such as `faketime` goes too) and its
//! directory removed when the [`Server`] is dropped, also when a test panics.
#![allow(dead_code)]

use std::fs;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub use redis::{Connection, ConnectionLike, Value};

pub const MS: u64 = 1_000_000;
pub const S: u64 = 1_000_000_000;

/// The module to load: `$FG_REDIS_MODULE`, else
/// `<workspace>/target/release/libfloodgate_redis.so`. Missing: panic (a test
/// without its module fails, it never skips).
pub fn module_path() -> PathBuf {
    let path = match std::env::var_os("FG_REDIS_MODULE") {
        Some(p) => PathBuf::from(p),
        None => Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join("target/release/libfloodgate_redis.so"),
    };
    if !path.is_file() {
        panic!(
            "module not found at {}: build it first: cargo build --release -p floodgate-redis",
            path.display()
        );
    }
    path.canonicalize().expect("canonicalize module path")
}

/// `$FG_REDIS_SERVER` or `redis-server` from PATH.
pub fn redis_server_bin() -> String {
    std::env::var("FG_REDIS_SERVER").unwrap_or_else(|_| "redis-server".to_string())
}

/// How to start a server.
#[derive(Debug, Clone)]
pub struct ServerOpts {
    /// Load the module (false: a plain redis-server, for harness self-tests).
    pub load_module: bool,
    /// Arguments after `--loadmodule <path>` (e.g. `["TESTCLOCK", "yes"]`).
    pub module_args: Vec<String>,
    /// Extra redis-server arguments (e.g. `["--appendonly", "yes"]`).
    pub extra_args: Vec<String>,
    /// A command to run redis-server under (e.g. `["faketime", "-f", "+30s"]`).
    pub wrapper: Vec<String>,
    /// Extra environment variables for the server process.
    pub env: Vec<(String, String)>,
    /// Also keep port + 10000 free (the cluster bus port).
    pub cluster_bus: bool,
    /// How long to wait for PING after spawning.
    pub start_timeout: Duration,
}

impl Default for ServerOpts {
    fn default() -> Self {
        ServerOpts {
            load_module: true,
            module_args: Vec::new(),
            extra_args: Vec::new(),
            wrapper: Vec::new(),
            env: Vec::new(),
            cluster_bus: false,
            start_timeout: Duration::from_secs(10),
        }
    }
}

impl ServerOpts {
    pub fn new() -> Self {
        Self::default()
    }
    /// Module arguments, split on whitespace: `"TESTCLOCK yes INTERVAL 1000"`.
    pub fn module(mut self, args: &str) -> Self {
        self.module_args
            .extend(args.split_whitespace().map(String::from));
        self
    }
    /// Extra server arguments, split on whitespace: `"--appendonly yes"`.
    pub fn args(mut self, args: &str) -> Self {
        self.extra_args
            .extend(args.split_whitespace().map(String::from));
        self
    }
    /// One extra server argument kept whole (may contain spaces).
    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.extra_args.push(arg.into());
        self
    }
    pub fn wrapper(mut self, cmd: &[&str]) -> Self {
        self.wrapper = cmd.iter().map(|s| s.to_string()).collect();
        self
    }
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_string(), value.to_string()));
        self
    }
    /// Runs the server with its wall clock (CLOCK_REALTIME, gettimeofday,
    /// time) shifted by `offset_s` seconds, through [`clock_shim`]. This is
    /// what `faketime -f "+30s"` would do; faketime itself cannot be used:
    /// libfaketime deadlocks/crashes against the jemalloc that Debian's
    /// redis-server links (libfaketime issue #130), so the server never comes up.
    pub fn clock_offset(self, offset_s: i64) -> Self {
        let shim = clock_shim();
        self.env("LD_PRELOAD", shim.to_str().unwrap()).env(
            "FG_CLOCK_OFFSET_NS",
            &(offset_s * 1_000_000_000).to_string(),
        )
    }
    pub fn plain(mut self) -> Self {
        self.load_module = false;
        self
    }
    pub fn cluster_bus(mut self) -> Self {
        self.cluster_bus = true;
        self
    }
}

/// Why a start failed.
#[derive(Debug)]
pub struct StartError {
    /// The process exited (with this status) before answering PING.
    pub status: Option<ExitStatus>,
    /// The server log.
    pub log: String,
    /// The port could not be bound (worth retrying on another port).
    pub port_in_use: bool,
}

static DIR_SEQ: AtomicU64 = AtomicU64::new(0);

/// A fresh empty directory under the system temp dir.
pub fn temp_dir(tag: &str) -> PathBuf {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let dir = std::env::temp_dir().join(format!(
        "fg-redis-{tag}-{}-{}-{nanos}",
        std::process::id(),
        DIR_SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

/// A loopback port that was free a moment ago (and, for a cluster node, whose
/// bus port `+10000` was free too).
pub fn free_port(cluster_bus: bool) -> u16 {
    for _ in 0..200 {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = l.local_addr().unwrap().port();
        if !cluster_bus {
            return port;
        }
        if port <= 55535 && TcpListener::bind(("127.0.0.1", port + 10000)).is_ok() {
            return port;
        }
    }
    panic!("no free port found in 200 tries");
}

/// A redis-server process, killed and its directory removed on drop.
pub struct Server {
    pub port: u16,
    pub dir: PathBuf,
    pub opts: ServerOpts,
    child: Option<Child>,
    keep_dir: bool,
}

impl Server {
    /// Starts a server (retrying on another port if the one picked was taken)
    /// and waits until it answers PING; panics with the log's tail otherwise.
    pub fn start(opts: ServerOpts) -> Server {
        let mut last = None;
        for _ in 0..5 {
            let dir = temp_dir("srv");
            let port = free_port(opts.cluster_bus);
            match Server::spawn(opts.clone(), dir.clone(), port) {
                Ok(s) => return s,
                Err(e) => {
                    let _ = fs::remove_dir_all(&dir);
                    if e.port_in_use {
                        last = Some(e);
                        continue;
                    }
                    panic!(
                        "redis-server did not come up (exit status {:?}); log tail:\n{}",
                        e.status,
                        tail(&e.log, 40)
                    );
                }
            }
        }
        let e = last.unwrap();
        panic!(
            "redis-server could not bind a port in 5 tries; log tail:\n{}",
            tail(&e.log, 40)
        );
    }

    /// Starts a server that is expected to fail: returns the start error
    /// (exit status and log) or, if it came up after all, the server.
    pub fn try_start(opts: ServerOpts) -> Result<Server, StartError> {
        let dir = temp_dir("try");
        let port = free_port(opts.cluster_bus);
        let r = Server::spawn(opts, dir.clone(), port);
        if r.is_err() {
            let _ = fs::remove_dir_all(&dir);
        }
        r
    }

    fn command_line(opts: &ServerOpts, dir: &Path, port: u16) -> Vec<String> {
        let mut argv: Vec<String> = opts.wrapper.clone();
        argv.push(redis_server_bin());
        for a in [
            "--bind",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
            "--logfile",
            "",
            // A crash (module bug) reports at once instead of testing RAM first.
            "--crash-memcheck-enabled",
            "no",
            "--dir",
            dir.to_str().expect("utf-8 temp dir"),
        ] {
            argv.push(a.to_string());
        }
        // Later options override earlier ones (e.g. --appendonly yes).
        argv.extend(opts.extra_args.iter().cloned());
        if opts.load_module {
            argv.push("--loadmodule".to_string());
            argv.push(module_path().to_str().unwrap().to_string());
            argv.extend(opts.module_args.iter().cloned());
        }
        argv
    }

    fn spawn(opts: ServerOpts, dir: PathBuf, port: u16) -> Result<Server, StartError> {
        let argv = Server::command_line(&opts, &dir, port);
        let log_path = dir.join("server.log");
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .expect("open server log");
        let child = Command::new(&argv[0])
            .args(&argv[1..])
            .envs(opts.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            // Own process group: Drop kills the wrapper and the server together.
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {:?}: {e}", argv));
        let mut server = Server {
            port,
            dir,
            opts,
            child: Some(child),
            keep_dir: false,
        };
        match server.wait_ready() {
            Ok(()) => Ok(server),
            Err(status) => {
                server.kill();
                // The caller decides about the directory (restart keeps it).
                server.keep_dir = true;
                let log = server.log();
                let port_in_use = status.is_some() && log.contains("Address already in use");
                Err(StartError {
                    status,
                    log,
                    port_in_use,
                })
            }
        }
    }

    /// Waits (bounded) until PING answers PONG. `Err(Some(status))` if the
    /// process exited first, `Err(None)` on timeout.
    fn wait_ready(&mut self) -> Result<(), Option<ExitStatus>> {
        let deadline = Instant::now() + self.opts.start_timeout;
        for _ in 0..1000 {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                return Err(Some(status));
            }
            if let Ok(mut con) = self.try_con(Duration::from_millis(200)) {
                if let Ok(Value::SimpleString(s)) = con.req_command(&redis::cmd("PING")) {
                    if s == "PONG" {
                        return Ok(());
                    }
                }
                // LOADING or not yet accepting: keep waiting.
            }
            if Instant::now() >= deadline {
                return Err(None);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(None)
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    fn try_con(&self, timeout: Duration) -> redis::RedisResult<Connection> {
        let client = redis::Client::open(self.url())?;
        let con = client.get_connection_with_timeout(timeout)?;
        con.set_read_timeout(Some(Duration::from_secs(20)))?;
        con.set_write_timeout(Some(Duration::from_secs(20)))?;
        Ok(con)
    }

    /// A new connection (reads and writes time out after 20 s).
    pub fn con(&self) -> Connection {
        self.try_con(Duration::from_secs(5))
            .unwrap_or_else(|e| panic!("connect to {}: {e}; log:\n{}", self.url(), self.tail()))
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.join("server.log")
    }

    pub fn log(&self) -> String {
        fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// The last 40 lines of the log.
    pub fn tail(&self) -> String {
        tail(&self.log(), 40)
    }

    /// Pid of the process spawned (the wrapper's, if there is one).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// True while the spawned process has not exited.
    pub fn is_alive(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => c.try_wait().unwrap().is_none(),
            None => false,
        }
    }

    /// SIGKILL to the server's process group, then reap it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let pgid = child.id() as libc::pid_t;
            // SAFETY: plain syscall on a process group this harness created.
            unsafe {
                libc::kill(-pgid, libc::SIGKILL);
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kills the server (SIGKILL) and starts it again on the same directory
    /// and port with the same options (RDB / AOF reload), waiting for PING.
    pub fn restart(&mut self) {
        let opts = self.opts.clone();
        self.restart_with(opts);
    }

    /// As [`Server::restart`], with other options.
    pub fn restart_with(&mut self, opts: ServerOpts) {
        self.kill();
        let dir = self.dir.clone();
        let mut last = None;
        // The port was just freed; retry a few times if it is still held.
        for _ in 0..20 {
            match Server::spawn(opts.clone(), dir.clone(), self.port) {
                Ok(mut s) => {
                    self.child = s.child.take();
                    self.opts = opts;
                    s.keep_dir = true; // same dir: do not remove it
                    return;
                }
                Err(e) => {
                    if !e.port_in_use {
                        panic!(
                            "redis-server did not come back (exit status {:?}); log tail:\n{}",
                            e.status,
                            tail(&e.log, 40)
                        );
                    }
                    last = Some(e);
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        }
        panic!(
            "restart could not rebind port {}: {}",
            self.port,
            tail(&last.unwrap().log, 20)
        );
    }

    /// `INFO <section>` as `field -> value` lines.
    pub fn info(&self, con: &mut Connection, section: &str) -> Vec<(String, String)> {
        let text = match call(con, &["INFO", section]) {
            Value::BulkString(b) => String::from_utf8_lossy(&b).into_owned(),
            Value::VerbatimString { text, .. } => text,
            other => panic!("INFO {section}: {other:?}"),
        };
        text.lines()
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.to_string(), v.trim().to_string()))
            .collect()
    }

    pub fn info_field(&self, con: &mut Connection, section: &str, field: &str) -> Option<String> {
        self.info(con, section)
            .into_iter()
            .find(|(k, _)| k == field)
            .map(|(_, v)| v)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
        if !self.keep_dir {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

pub fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Polls `f` every `every` until it returns true or `timeout` passes; returns
/// whether it did.
pub fn wait_until(timeout: Duration, every: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    let max_iter = (timeout.as_millis() / every.as_millis().max(1)) as usize + 2;
    for _ in 0..max_iter {
        if f() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(every);
    }
    f()
}

// ---------------------------------------------------------------- clock shim

const CLOCK_SHIM_C: &str = r#"
// LD_PRELOAD shim: the wall clock shifted by $FG_CLOCK_OFFSET_NS.
// Uses raw syscalls only (no dlsym, no malloc), so it cannot recurse into
// jemalloc's initialisation the way libfaketime does.
#define _GNU_SOURCE
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static long long offset_ns(void) {
    static int done = 0;
    static long long off = 0;
    if (!done) {
        const char *s = getenv("FG_CLOCK_OFFSET_NS");
        off = s ? atoll(s) : 0;
        done = 1;
    }
    return off;
}

static void shift(struct timespec *ts) {
    long long ns = (long long)ts->tv_sec * 1000000000LL + ts->tv_nsec + offset_ns();
    ts->tv_sec = ns / 1000000000LL;
    ts->tv_nsec = ns % 1000000000LL;
}

int clock_gettime(clockid_t clk, struct timespec *ts) {
    int r = (int)syscall(SYS_clock_gettime, clk, ts);
    if (r == 0 && (clk == CLOCK_REALTIME || clk == CLOCK_REALTIME_COARSE)) shift(ts);
    return r;
}

int gettimeofday(struct timeval *tv, void *tz) {
    struct timespec ts;
    int r = clock_gettime(CLOCK_REALTIME, &ts);
    if (r == 0 && tv) { tv->tv_sec = ts.tv_sec; tv->tv_usec = ts.tv_nsec / 1000; }
    if (tz) { ((int *)tz)[0] = 0; ((int *)tz)[1] = 0; }
    return r;
}

time_t time(time_t *t) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (t) *t = ts.tv_sec;
    return ts.tv_sec;
}
"#;

/// Builds (once per test process) the clock-shifting LD_PRELOAD shim with
/// `cc` and returns its path.
pub fn clock_shim() -> PathBuf {
    static SHIM: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    SHIM.get_or_init(|| {
        let dir = temp_dir("shim");
        let src = dir.join("fgclock.c");
        let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
        let so_tmp = tmp.join(format!("fgclock-{}.so", std::process::id()));
        let so = tmp.join("fgclock.so");
        fs::write(&src, CLOCK_SHIM_C).unwrap();
        let out = Command::new("cc")
            .args(["-shared", "-fPIC", "-O2", "-o"])
            .arg(&so_tmp)
            .arg(&src)
            .output()
            .expect("run cc to build the clock shim");
        let _ = fs::remove_dir_all(&dir);
        assert!(
            out.status.success(),
            "cc failed building the clock shim: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // Atomic replace: a server of another test binary keeps its mapping.
        fs::rename(&so_tmp, &so).expect("install the clock shim");
        so
    })
    .clone()
}

// ---------------------------------------------------------------- commands

/// RESP encoding of one command.
pub fn pack<A: AsRef<[u8]>>(args: &[A]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        let a = a.as_ref();
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Sends one command (binary-safe arguments) and returns its reply; a server
/// error comes back as `Value::ServerError`. Panics on I/O errors.
pub fn call<A: AsRef<[u8]>>(con: &mut Connection, args: &[A]) -> Value {
    match con.req_packed_command(&pack(args)) {
        Ok(v) => v,
        Err(e) => panic!("{}: {e}", show_args(args)),
    }
}

/// As [`call`] with the command given as whitespace-separated words.
pub fn cmd(con: &mut Connection, line: &str) -> Value {
    let args: Vec<&str> = line.split_whitespace().collect();
    call(con, &args)
}

/// Sends many commands in one write and reads all their replies.
pub fn pipeline<A: AsRef<[u8]>>(con: &mut Connection, cmds: &[Vec<A>]) -> Vec<Value> {
    if cmds.is_empty() {
        return Vec::new();
    }
    let mut bytes = Vec::new();
    for c in cmds {
        bytes.extend_from_slice(&pack(c));
    }
    match con.req_packed_commands(&bytes, 0, cmds.len()) {
        Ok(v) => v,
        Err(e) => panic!("pipeline of {} commands: {e}", cmds.len()),
    }
}

/// As [`pipeline`], but an I/O error (e.g. the server died) is returned.
pub fn try_pipeline<A: AsRef<[u8]>>(
    con: &mut Connection,
    cmds: &[Vec<A>],
) -> redis::RedisResult<Vec<Value>> {
    if cmds.is_empty() {
        return Ok(Vec::new());
    }
    let mut bytes = Vec::new();
    for c in cmds {
        bytes.extend_from_slice(&pack(c));
    }
    con.req_packed_commands(&bytes, 0, cmds.len())
}

/// The interesting part of a server log after a crash (of the last server
/// run in that log): Rust panic lines and the Redis bug report's signal and
/// stack trace.
pub fn crash_summary(log: &str) -> String {
    let run = log
        .rfind("Redis is starting")
        .map_or(log, |i| &log[log[..i].rfind('\n').map_or(0, |n| n + 1)..]);
    // A Rust panic's line and the message after it.
    let lines: Vec<&str> = run.lines().collect();
    let mut out: Vec<String> = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        if l.contains("panicked") {
            out.extend(
                lines[i..(i + 2).min(lines.len())]
                    .iter()
                    .map(|l| l.to_string()),
            );
        }
    }
    if let Some(start) = run.find("REDIS BUG REPORT START") {
        let report = &run[start..];
        let end = report.find("------ REGISTERS").unwrap_or(report.len());
        out.extend(report[..end].lines().take(40).map(String::from));
    } else {
        out.push("(no Redis bug report in the log; its tail:)".into());
        out.push(tail(run, 20));
    }
    out.join("\n")
}

pub fn show_args<A: AsRef<[u8]>>(args: &[A]) -> String {
    args.iter()
        .map(|a| show_bytes(a.as_ref()))
        .collect::<Vec<_>>()
        .join(" ")
}

pub fn show_bytes(b: &[u8]) -> String {
    let s: String = b
        .iter()
        .flat_map(|&c| std::ascii::escape_default(c))
        .map(char::from)
        .collect();
    if s.is_empty() || s.contains(' ') {
        format!("\"{s}\"")
    } else {
        s
    }
}

/// The full text of an error reply (`"ERR something"`), or None.
pub fn err_text(v: &Value) -> Option<String> {
    match v {
        Value::ServerError(e) => Some(match e.details() {
            Some(d) => format!("{} {}", e.code(), d),
            None => e.code().to_string(),
        }),
        _ => None,
    }
}

/// The error text of a reply that must be an error.
pub fn expect_err(v: &Value, what: &str) -> String {
    err_text(v).unwrap_or_else(|| panic!("{what}: expected an error reply, got {v:?}"))
}

pub fn int(v: &Value) -> i64 {
    match v {
        Value::Int(i) => *i,
        other => panic!("expected an integer reply, got {other:?}"),
    }
}

pub fn bytes(v: &Value) -> Vec<u8> {
    match v {
        Value::BulkString(b) => b.clone(),
        Value::SimpleString(s) => s.clone().into_bytes(),
        Value::Okay => b"OK".to_vec(),
        other => panic!("expected a string reply, got {other:?}"),
    }
}

pub fn string(v: &Value) -> String {
    String::from_utf8_lossy(&bytes(v)).into_owned()
}

pub fn array(v: &Value) -> Vec<Value> {
    match v {
        Value::Array(a) => a.clone(),
        Value::Set(a) => a.clone(),
        other => panic!("expected an array reply, got {other:?}"),
    }
}

pub fn is_nil(v: &Value) -> bool {
    matches!(v, Value::Nil)
}

/// Every key (KEYS *), sorted.
pub fn keys(con: &mut Connection) -> Vec<Vec<u8>> {
    let mut k: Vec<Vec<u8>> = array(&cmd(con, "KEYS *")).iter().map(bytes).collect();
    k.sort();
    k
}

/// The server's clock (TIME) in ns.
pub fn server_time_ns(con: &mut Connection) -> u64 {
    let t = array(&cmd(con, "TIME"));
    let s: u64 = string(&t[0]).parse().unwrap();
    let us: u64 = string(&t[1]).parse().unwrap();
    s * S + us * 1000
}

/// `PING` answers `PONG`.
pub fn ping_ok(con: &mut Connection) -> bool {
    matches!(con.req_packed_command(&pack(&["PING"])), Ok(Value::SimpleString(s)) if s == "PONG")
}

pub fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

pub fn now_ms() -> u64 {
    now_ns() / MS
}

// ---------------------------------------------------------------- FG.INFO

/// FG.INFO's flat field/value array as pairs (values as text).
pub fn fg_info(con: &mut Connection, key: &[u8]) -> Vec<(String, String)> {
    let v = call(con, &[&b"FG.INFO"[..], key]);
    let a = array(&v);
    assert!(a.len().is_multiple_of(2), "FG.INFO odd length: {v:?}");
    a.chunks(2)
        .map(|p| {
            let val = match &p[1] {
                Value::Int(i) => i.to_string(),
                Value::Nil => "nil".to_string(),
                other => string(other),
            };
            (string(&p[0]), val)
        })
        .collect()
}

pub fn info_get(info: &[(String, String)], field: &str) -> Option<String> {
    info.iter()
        .find(|(k, _)| k == field)
        .map(|(_, v)| v.clone())
}

/// Proptest case count: `$PROPTEST_CASES` if set (for longer local runs),
/// else `default`.
pub fn proptest_cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

// ---------------------------------------------------------------- RNG

/// SplitMix64: a small seeded generator (no dependency, reproducible).
#[derive(Debug, Clone)]
pub struct Rng(pub u64);

impl Rng {
    /// Seed from `$FG_SEED` if set, else from the clock; printed so a failing
    /// run can be repeated with `FG_SEED=<seed>`.
    pub fn from_env(test: &str) -> Rng {
        let seed = std::env::var("FG_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| now_ns() ^ ((std::process::id() as u64) << 32));
        println!("{test}: seed {seed} (repeat with FG_SEED={seed})");
        Rng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo + 1)
    }
    /// True with probability `pct` percent.
    pub fn chance(&mut self, pct: u64) -> bool {
        self.next_u64() % 100 < pct
    }
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.next_u64() as usize % items.len()]
    }
}

// ---------------------------------------------------------------- self-test

/// Harness checks against a plain redis-server (no module): used by the
/// `harness_*` tests so the harness is verified even without the module.
pub fn harness_self_test() {
    let mut s = Server::start(ServerOpts::new().plain());
    let mut con = s.con();
    assert!(ping_ok(&mut con));
    assert_eq!(
        call(&mut con, &[&b"SET"[..], b"k\r\n\x00", b"v"]),
        Value::Okay
    );
    assert_eq!(keys(&mut con), vec![b"k\r\n\x00".to_vec()]);
    let e = expect_err(&cmd(&mut con, "NOSUCHCOMMAND"), "unknown command");
    assert!(e.starts_with("ERR unknown command"), "{e}");
    let e = expect_err(&cmd(&mut con, "GET"), "arity");
    assert_eq!(e, "ERR wrong number of arguments for 'get' command");
    cmd(&mut con, "SET plain v");
    let e = expect_err(&cmd(&mut con, "LPUSH plain x"), "wrongtype");
    assert_eq!(
        e,
        "WRONGTYPE Operation against a key holding the wrong kind of value"
    );
    let e = expect_err(&cmd(&mut con, "INCRBY plain x"), "not an integer");
    assert_eq!(e, "ERR value is not an integer or out of range");
    // Pipelines keep error replies in place.
    let r = pipeline(&mut con, &[vec!["PING"], vec!["GET"], vec!["PING"]]);
    assert!(
        r.len() == 3 && err_text(&r[1]).is_some() && err_text(&r[2]).is_none(),
        "{r:?}"
    );
    cmd(&mut con, "DEL plain");
    let before = call(&mut con, &["DUMP", "k\r\n\x00"]);
    cmd(&mut con, "SAVE");
    s.restart();
    let mut con = s.con();
    assert_eq!(call(&mut con, &["DUMP", "k\r\n\x00"]), before);
    let dir = s.dir.clone();
    drop(s);
    assert!(!dir.exists(), "Drop removes the server dir");

    // A server whose wall clock is 30 s ahead.
    let ahead = Server::start(ServerOpts::new().plain().clock_offset(30));
    let mut acon = ahead.con();
    let skew = server_time_ns(&mut acon) as i64 - now_ns() as i64;
    assert!(
        (29 * S as i64..31 * S as i64).contains(&skew),
        "clock offset did not take effect: skew {skew} ns"
    );
    // A key with a 60 s TTL set there has PEXPIRETIME 30 s in our future + 60 s.
    cmd(&mut acon, "SET x y PX 60000");
    let at = int(&cmd(&mut acon, "PEXPIRETIME x"));
    let expect = now_ms() as i64 + 90_000;
    assert!((at - expect).abs() < 1000, "PEXPIRETIME {at} vs {expect}");

    // The pid's process group is killed on drop (wrapper and server).
    let mut w = Server::start(ServerOpts::new().plain().wrapper(&["env", "FOO=1"]));
    assert!(w.is_alive());
    w.kill();
    assert!(!w.is_alive());
}
