//! # floodgate-cli: the `floodgate` command
//!
//! A std front end to the `floodgate` core's shared tables, for Asterisk
//! app_rpt nodes (AllStarLink, hamvoip) and their operators:
//!
//! * `floodgate agi link|hub|release`: an AGI program for the dialplan.
//!   Link limits and hub balancing as one atomic table call each, instead
//!   of AGI shell scripts, global variables and dialplan arithmetic (racy:
//!   two connects read the same count). Works with every Asterisk that has
//!   `AGI()`, hamvoip's 1.4 included. See [`agi`] for the protocol and
//!   [`agi_run`] for what each command does.
//! * `floodgate list|stats|set-pipe|get-pid|set-pid|push-load|usage|release|
//!   reset|delete|clean-unused`: the operator's commands, Kamailio's `pl.*`
//!   RPC and FreeSWITCH's limit API, with `--json` for scripts. See
//!   [`commands`].
//!
//! * `floodgate simulate`: replays modelled traffic, a pcap/pcapng capture
//!   of SIP requests or a CSV through any of the core's limiters and draws
//!   what passes. See [`simulate`].
//!
//! Every other command works on one table in a `MAP_SHARED` file, by default
//! `/dev/shm/floodgate-app_rpt`, made on first use ([`table_file`]). `now`
//! is `CLOCK_MONOTONIC` ([`os`]).
//!
//! # Exit codes
//! | code | meaning |
//! | --- | --- |
//! | 0 | ok: done, passed, admitted, released; for `agi`: the verdict was delivered, whatever it is |
//! | 1 | refused: no such entry, nothing to release |
//! | 2 | usage: a bad argument, or a table file that does not match `--capacity`/`--leases`/`--interval` |
//! | 3 | error: I/O, not a table, table full, an entry busy (locked by a stopped or stuck process), AGI protocol error or hangup (an `agi` run that fails holds nothing) |
//!
//! `agi` exits 0 for ADMIT and for REFUSE/FULL alike: Asterisk sets
//! `AGISTATUS=FAILURE` for any other status, which would read as a broken
//! script; the verdict is in the channel variable.
#![deny(missing_docs)]

pub mod agi;
pub mod agi_run;
pub mod cli;
pub mod commands;
pub mod json;
pub mod os;
pub mod simulate;
pub mod table_file;

use std::ffi::OsString;
use std::io::{self, Write};

use clap::Parser;

use crate::cli::{Cli, Command};
use crate::table_file::{default_path, Spec, TableFile};

/// The exit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Exit {
    /// Done, passed, admitted, released; `agi`: verdict delivered.
    Ok = 0,
    /// Refused: no such entry, nothing to release.
    Refused = 1,
    /// A bad argument, or a table file that does not match the flags.
    Usage = 2,
    /// I/O, not a table, table full, an entry busy, AGI protocol error or
    /// hangup.
    Error = 3,
}

impl Exit {
    /// The process exit status.
    pub const fn code(self) -> i32 {
        self as u8 as i32
    }
}

/// A command that did not succeed: its exit code and what to tell the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The exit code.
    pub exit: Exit,
    /// The message (stderr), naming the problem.
    pub message: String,
}

impl Failure {
    /// Exit 1.
    pub fn refused(message: String) -> Failure {
        Failure {
            exit: Exit::Refused,
            message,
        }
    }

    /// Exit 2.
    pub fn usage(message: String) -> Failure {
        Failure {
            exit: Exit::Usage,
            message,
        }
    }

    /// Exit 3.
    pub fn error(message: String) -> Failure {
        Failure {
            exit: Exit::Error,
            message,
        }
    }
}

/// A table error about `what` (a key, a command) as a failure: bad
/// arguments are exit 2, a missing entry 1, the rest 3 (a busy entry among
/// them: its lock stayed held by a live process for the bounded wait).
pub fn table_error(what: &str, e: floodgate::Error) -> Failure {
    use floodgate::Error as E;
    let message = format!("{what}: {e}");
    match e {
        E::NoPipe => Failure::refused(message),
        E::Busy => Failure::error(format!(
            "{message} (a process holding its lock is stopped or stuck; nothing was changed)"
        )),
        E::ZeroInterval
        | E::InvalidLimit
        | E::InvalidBurst
        | E::RateTooHigh
        | E::InvalidLoad
        | E::InvalidGain
        | E::WrongAlgorithm
        | E::EmptyKey
        | E::KeyTooLong
        | E::InvalidCapacity
        | E::InvalidGroup
        | E::DuplicateMember => Failure::usage(message),
        _ => Failure::error(message),
    }
}

/// Writes to stdout; a closed pipe (`floodgate list | head`) is not an error.
fn print(text: &str) -> Result<(), Failure> {
    let mut out = io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(Failure::error(format!("stdout: {e}"))),
    }
}

/// Runs the command line `args` (the program name first) and returns the
/// exit status. Output goes to stdout, messages to stderr.
pub fn run<I, T>(args: I) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            // --help and --version print to stdout and exit 0; errors go
            // to stderr with exit 2.
            let _ = e.print();
            return e.exit_code();
        }
    };
    match execute(&cli) {
        Ok(exit) => exit.code(),
        Err(f) => {
            eprintln!("floodgate: {}", f.message);
            f.exit.code()
        }
    }
}

fn execute(cli: &Cli) -> Result<Exit, Failure> {
    let path = match &cli.table.path {
        Some(p) => p.clone(),
        None => default_path(&cli.table.table),
    };
    let spec = Spec {
        capacity: cli.table.capacity,
        lease_capacity: cli.table.leases,
        interval_ns: cli.table.interval,
    };
    if let Command::Agi { command } = &cli.command {
        if cli.json {
            return Err(Failure::usage(
                "--json: agi talks to Asterisk on stdout; it has no JSON output".to_owned(),
            ));
        }
        os::catch_sighup().map_err(|e| Failure::error(format!("SIGHUP handler: {e}")))?;
        let stdin = io::stdin().lock();
        let stdout = io::stdout().lock();
        agi_run::run(command, &path, &spec, stdin, stdout)?;
        return Ok(Exit::Ok);
    }
    if let Command::Simulate(args) = &cli.command {
        let (text, json) = simulate::run(args)?;
        if cli.json {
            print(&format!("{json}\n"))?;
        } else {
            print(&text)?;
        }
        return Ok(Exit::Ok);
    }
    let file = TableFile::open(&path, &spec)?;
    let out = commands::run(&cli.command, &file)?;
    if cli.json {
        print(&format!("{}\n", out.json))?;
        if out.exit != Exit::Ok {
            // The JSON says what happened; stderr says why in words.
            eprint!("floodgate: {}", out.text);
        }
    } else if out.exit == Exit::Ok {
        print(&out.text)?;
    } else {
        eprint!("floodgate: {}", out.text);
    }
    Ok(out.exit)
}
