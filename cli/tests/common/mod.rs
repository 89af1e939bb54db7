//! Helpers of the integration tests: a table file with a unique name that
//! goes away at the end, the built `floodgate` binary, and a fake Asterisk
//! that plays res_agi's side of AGI on the binary's stdin and stdout.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_floodgate");

/// What Asterisk sends first: the `agi_*` block and its empty line.
pub const HEADER: &str = "agi_request: floodgate\n\
agi_channel: IAX2/127.0.0.1:4569-1234\n\
agi_language: en\n\
agi_type: IAX2\n\
agi_uniqueid: 1700000000.42\n\
agi_version: 1.4.23-pre.hamvoip\n\
agi_callerid: 2001\n\
agi_calleridname: unknown\n\
agi_dnid: unknown\n\
agi_rdnis: unknown\n\
agi_context: radio-secure\n\
agi_extension: 2000\n\
agi_priority: 1\n\
agi_enhanced: 0.0\n\
agi_accountcode: \n\
agi_threadid: -1289290944\n\
\n";

/// A table file in /dev/shm (the real place) with a unique name, removed
/// when dropped (also when a test fails).
pub struct TempTable {
    pub path: PathBuf,
}

impl TempTable {
    pub fn new(tag: &str) -> TempTable {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = if Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        let path = dir.join(format!(
            "floodgate-test-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_file(&path);
        TempTable { path }
    }

    pub fn arg(&self) -> String {
        self.path.display().to_string()
    }
}

impl Drop for TempTable {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// How a CLI run ended.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `floodgate --path <table> args...` with no stdin.
pub fn cli(table: &TempTable, args: &[&str]) -> Run {
    let mut all = vec!["--path", table.path.to_str().unwrap()];
    all.extend_from_slice(args);
    cli_raw(&all)
}

/// Runs `floodgate args...`.
pub fn cli_raw(args: &[&str]) -> Run {
    let out = Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run floodgate");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs `floodgate --path <table> args...` with no stdin, as [`cli`] does,
/// but fails the test (killing the process) if it has not ended within
/// `limit`: a watchdog for runs that must not hang, not a timed assertion.
pub fn cli_within(table: &TempTable, args: &[&str], limit: Duration) -> Run {
    let mut child = Command::new(BIN)
        .arg("--path")
        .arg(&table.path)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run floodgate");
    // Read both pipes on threads, so a full pipe cannot stall the child.
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("floodgate {args:?} still running after {limit:?}: it hangs");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Run {
        code: status.code().unwrap_or(-1),
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}

/// Runs a command with `--json`, expects `code`, and parses stdout.
pub fn cli_json(table: &TempTable, args: &[&str], code: i32) -> serde_json::Value {
    let mut all = args.to_vec();
    all.push("--json");
    let r = cli(table, &all);
    assert_eq!(r.code, code, "{args:?}: {r:?}");
    serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{args:?}: {e}: {:?}", r.stdout))
}

/// Slots held on `key` (0 if there is no entry).
pub fn usage(table: &TempTable, key: &str) -> u64 {
    let r = cli(table, &["usage", key, "--json"]);
    match r.code {
        0 => serde_json::from_str::<serde_json::Value>(&r.stdout).unwrap()["usage"]
            .as_u64()
            .unwrap(),
        1 => 0,
        _ => panic!("usage {key}: {r:?}"),
    }
}

/// The whole table as `list --json` shows it.
pub fn snapshot(table: &TempTable) -> serde_json::Value {
    cli_json(table, &["list"], 0)
}

/// An AGI process started the way res_agi starts one, not yet served.
pub struct AgiProcess {
    pub child: Child,
    pub stdin: Option<ChildStdin>,
    pub stdout: BufReader<ChildStdout>,
}

impl AgiProcess {
    /// Starts `floodgate --path <table> agi args...`.
    pub fn start(table: &TempTable, args: &[&str]) -> AgiProcess {
        AgiProcess::start_with(table, &[], args)
    }

    /// Starts `floodgate --path <table> global... agi args...`.
    pub fn start_with(table: &TempTable, global: &[&str], args: &[&str]) -> AgiProcess {
        let mut child = Command::new(BIN)
            .arg("--path")
            .arg(&table.path)
            .args(global)
            .arg("agi")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn floodgate agi");
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        AgiProcess {
            child,
            stdin,
            stdout,
        }
    }

    /// Writes raw text to the process (ignores a closed pipe).
    pub fn send(&mut self, text: &str) {
        if let Some(w) = self.stdin.as_mut() {
            let _ = w.write_all(text.as_bytes());
            let _ = w.flush();
        }
    }

    /// The next command line it sends, or `None` at end of output.
    pub fn next_command(&mut self) -> Option<String> {
        let mut line = String::new();
        match self.stdout.read_line(&mut line) {
            Ok(0) | Err(_) => None,
            Ok(_) => Some(line.trim_end_matches('\n').to_owned()),
        }
    }

    /// Closes its stdin (Asterisk going away).
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Waits for it; returns the exit code and stderr.
    pub fn finish(mut self) -> (i32, String) {
        self.stdin = None;
        let mut rest = String::new();
        let _ = self.stdout.read_to_string(&mut rest);
        let mut err = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            let _ = e.read_to_string(&mut err);
        }
        let status = self.child.wait().expect("wait");
        assert!(
            rest.is_empty(),
            "unexpected output after the last command: {rest:?}"
        );
        (status.code().unwrap_or(-1), err)
    }
}

/// A channel as the fake Asterisk keeps it: its variables, and every
/// command the AGI sent.
#[derive(Debug, Default, Clone)]
pub struct Channel {
    pub vars: HashMap<String, String>,
    pub sent: Vec<String>,
}

impl Channel {
    pub fn var(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str)
    }
}

/// res_agi's reply to one command line, for a channel.
pub fn asterisk_reply(channel: &mut Channel, command: &str) -> String {
    let words: Vec<&str> = command.splitn(4, ' ').collect();
    match words.as_slice() {
        ["SET", "VARIABLE", name, value] => {
            let value = value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(value)
                .replace("\\\"", "\"")
                .replace("\\\\", "\\");
            channel.vars.insert(name.to_string(), value);
            "200 result=1".to_owned()
        }
        ["GET", "VARIABLE", name] => match channel.vars.get(*name) {
            Some(v) => format!("200 result=1 ({v})"),
            None => "200 result=0".to_owned(),
        },
        _ => "510 Invalid or unknown command".to_owned(),
    }
}

/// Plays Asterisk for one AGI run on `channel`: the header, then a reply
/// to every command until the process ends. Returns its exit code and
/// stderr.
pub fn serve(table: &TempTable, args: &[&str], channel: &mut Channel) -> (i32, String) {
    serve_with(table, &[], args, channel)
}

/// [`serve`] with global flags before `agi`.
pub fn serve_with(
    table: &TempTable,
    global: &[&str],
    args: &[&str],
    channel: &mut Channel,
) -> (i32, String) {
    let mut p = AgiProcess::start_with(table, global, args);
    p.send(HEADER);
    while let Some(command) = p.next_command() {
        let reply = asterisk_reply(channel, &command);
        channel.sent.push(command);
        p.send(&format!("{reply}\n"));
    }
    p.finish()
}

/// The hub of the seed: 4 virtual nodes, at most 50 links each and 200 in
/// all, 168505 the dump node; `extra` adds arguments. The members come one
/// argument each, as `AGI(floodgate,agi,hub,--members,168501,...)` passes
/// them.
pub fn hub_args<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec![
        "hub",
        "--members",
        "168501",
        "168502",
        "168503",
        "168504",
        "--per-node",
        "50",
        "--total",
        "200",
        "--dump",
        "168505",
    ];
    v.extend_from_slice(extra);
    v
}
