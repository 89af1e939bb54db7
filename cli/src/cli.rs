//! The command line: every command, its arguments, its `--help`, and the
//! checks that refuse bad values (exit 2) before anything is touched.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::PathBuf;

use clap::builder::{OsStringValueParser, TypedValueParser};
use clap::{ArgGroup, Args, Parser, Subcommand};
use floodgate::table::{MAX_CAPACITY, MAX_KEY_LEN, MAX_MEMBERS};
use floodgate::Algorithm;

use crate::agi::valid_var_name;

/// The exit codes, shown by every `--help`.
pub const EXIT_CODES: &str = "\
Exit codes:
  0  ok: done, passed, admitted, released
     (agi: the verdict was delivered to the channel, whatever it is)
  1  refused: no such entry, nothing to release
  2  usage: a bad argument, or a table file that does not match
     --capacity/--leases/--interval (the message names it)
  3  error: I/O, not a table, table full, an entry busy (locked by a
     stopped or stuck process), AGI protocol error or hangup
     (an agi command that fails holds nothing)";

/// `floodgate`: app_rpt link limits and hub balancing from Asterisk's
/// dialplan (AGI), and an operator's view of the shared table.
#[derive(Debug, Parser)]
#[command(
    name = "floodgate",
    version,
    about = "Rate and link limits in a shared-memory table: an operator's CLI and an AGI for Asterisk app_rpt",
    long_about = "Rate and link limits in a shared-memory table: an operator's CLI and an AGI for \
                  Asterisk app_rpt.\n\n\
                  Every command works on one table in a file (default /dev/shm/floodgate-app_rpt), \
                  made on first use with --capacity, --leases and --interval (given once; a later \
                  flag that differs is refused). AGI processes started by Asterisk and the \
                  operator's commands share it. See docs/app_rpt.md.",
    after_help = EXIT_CODES
)]
pub struct Cli {
    /// Which table, and its shape when it is made.
    #[command(flatten)]
    pub table: TableArgs,
    /// Print JSON instead of a human-readable table (not with `agi`).
    #[arg(long, global = true)]
    pub json: bool,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Which table file, and the shape of a new one.
#[derive(Debug, Clone, Args)]
pub struct TableArgs {
    /// Table name: the file /dev/shm/floodgate-NAME (letters, digits, `_`, `-`, `.`).
    #[arg(long, global = true, value_name = "NAME", default_value = "app_rpt", value_parser = parse_table_name)]
    pub table: String,
    /// The table's file, instead of /dev/shm/floodgate-NAME (keep it on a tmpfs such as /dev/shm).
    #[arg(long, global = true, value_name = "FILE", conflicts_with = "table")]
    pub path: Option<PathBuf>,
    /// Entries of a new table [default: 1024]; checked against an existing one.
    #[arg(long, global = true, value_name = "N", value_parser = parse_capacity)]
    pub capacity: Option<usize>,
    /// Lease records of a new table [default: as many as entries]; checked against an existing one.
    #[arg(long, global = true, value_name = "N", value_parser = parse_leases)]
    pub leases: Option<usize>,
    /// Window of a new table's pipes, e.g. 10s, 500ms, 1m [default: 10s]; checked against an existing one.
    #[arg(long, global = true, value_name = "DURATION", value_parser = parse_interval)]
    pub interval: Option<u64>,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// List every entry, or one (pipelimit pl.list / pl.get_pipes, FreeSWITCH limit_usage).
    #[command(after_help = EXIT_CODES)]
    List {
        /// Show only this entry (exit 1 if there is none).
        #[arg(value_parser = key_parser())]
        key: Option<Key>,
    },
    /// The table's shape and shared state, and each pipe's load and last counter (pl.stats).
    #[command(after_help = EXIT_CODES)]
    Stats,
    /// Create a pipe, or replace its algorithm and limit (pl.set_pipe).
    #[command(after_help = EXIT_CODES, allow_negative_numbers = true)]
    SetPipe {
        /// The pipe's key.
        #[arg(value_parser = key_parser())]
        name: Key,
        /// TAILDROP, RED, FEEDBACK, NETWORK, NOP, INTERVAL, SLOTS, GCRA, REDP or SLIDING.
        #[arg(value_parser = parse_algorithm)]
        algo: Algorithm,
        /// The limit, in the algorithm's own range (FEEDBACK: setpoint percent 0..=100).
        limit: i64,
    },
    /// Show the shared FEEDBACK PID controller (pl.get_pid).
    #[command(after_help = EXIT_CODES)]
    GetPid,
    /// Set the PID gains, in pipelimit's order (pl.set_pid ki kp kd); Kamailio's defaults are -25 0 0.
    #[command(after_help = EXIT_CODES, allow_negative_numbers = true)]
    SetPid {
        /// Integral gain.
        ki: f64,
        /// Proportional gain.
        kp: f64,
        /// Derivative gain.
        kd: f64,
    },
    /// Push a load in 0.0..=1.0 into the FEEDBACK controller (pl.push_load); prints the new drop rate.
    #[command(after_help = EXIT_CODES, allow_negative_numbers = true)]
    PushLoad {
        /// The load, 0.0 to 1.0.
        load: f64,
    },
    /// Slots held on a key now, after reclaiming expired leases (limit_usage; links on a node).
    #[command(after_help = EXIT_CODES)]
    Usage {
        /// The key, e.g. node/2000.
        #[arg(value_parser = key_parser())]
        key: Key,
    },
    /// Give back one slot of KEY (a plain one, else the lease expiring first), or the lease --lease HANDLE (exit 1 if nothing was held).
    #[command(after_help = EXIT_CODES, group(ArgGroup::new("what").required(true).args(["key", "lease"])))]
    Release {
        /// The key to give a slot back to: a plain slot if one is held, else its lease that would expire first.
        #[arg(value_parser = key_parser())]
        key: Option<Key>,
        /// A lease handle, as `agi link`/`agi hub` stored it in FG_LEASE.
        #[arg(long, value_name = "HANDLE")]
        lease: Option<u64>,
    },
    /// Zero the current window's count of a pipe now (FreeSWITCH limit_interval_reset).
    #[command(after_help = EXIT_CODES)]
    Reset {
        /// The pipe's key.
        #[arg(value_parser = key_parser())]
        key: Key,
    },
    /// Delete an entry and end its leases.
    #[command(after_help = EXIT_CODES)]
    Delete {
        /// The entry's key.
        #[arg(value_parser = key_parser())]
        key: Key,
    },
    /// Delete every pipe idle for N whole intervals (pipelimit clean_unused); prints how many.
    #[command(after_help = EXIT_CODES, allow_negative_numbers = true)]
    CleanUnused {
        /// Intervals without a request (0 deletes nothing).
        intervals: u32,
    },
    /// Replay modelled or captured traffic (pcap, pcapng, CSV) through limiters; chart and summary of what passes.
    #[command(
        after_help = crate::simulate::SIMULATE_HELP,
        long_about = "Replay modelled or captured traffic through one or more limiters, exactly as \
                      floodgate decides in production, and show what passes: a chart per run \
                      (SVG, and PNG with --png) and a summary (text, or --json). Uses no table \
                      file: --table, --path, --capacity, --leases and --interval do not apply. \
                      See docs/tuning.md."
    )]
    Simulate(Box<crate::simulate::SimulateArgs>),
    /// Run as an Asterisk AGI: link limits and hub balancing for app_rpt.
    #[command(after_help = EXIT_CODES)]
    Agi {
        /// What to do for the channel.
        #[command(subcommand)]
        command: AgiCommand,
    },
}

/// What an AGI run does.
#[derive(Debug, Subcommand)]
pub enum AgiCommand {
    /// Admit or refuse a link to node N under max M: sets FG_LEASE, then FG_VERDICT to ADMIT or REFUSE.
    #[command(after_help = EXIT_CODES, allow_negative_numbers = true)]
    Link(LinkArgs),
    /// Pick the least-loaded virtual node of a hub, or the dump node when full: sets FG_LEASE, FG_VERDICT (ADMIT or FULL), then FG_NODE.
    #[command(after_help = EXIT_CODES, allow_negative_numbers = true)]
    Hub(HubArgs),
    /// At hangup (the h extension): give back the link's slot by its lease handle; idempotent.
    #[command(after_help = EXIT_CODES)]
    Release(AgiReleaseArgs),
}

/// `agi link`.
#[derive(Debug, Clone, Args)]
pub struct LinkArgs {
    /// The node linked to; its links are counted under the key node/N.
    #[arg(long, value_parser = parse_node)]
    pub node: String,
    /// Most links at once (a negative max counts without refusing, 0 refuses all).
    #[arg(long)]
    pub max: i32,
    /// Channel variable for the verdict: ADMIT or REFUSE (ERROR if the table failed).
    #[arg(long, default_value = "FG_VERDICT", value_parser = parse_var)]
    pub var: String,
    /// Channel variable for the lease handle, set before the verdict.
    #[arg(long, default_value = "FG_LEASE", value_parser = parse_var)]
    pub lease_var: String,
    /// Longest a link is counted without a release (its hangup never ran): e.g. 24h, 7d, 90m, or `never`.
    #[arg(long, default_value = "24h", value_parser = parse_hold)]
    pub hold: Hold,
}

/// `agi hub`.
#[derive(Debug, Clone, Args)]
pub struct HubArgs {
    /// The hub's virtual nodes (1 to 16; ties go to the first listed), as `--members A,B,C`
    /// or `--members A B C` (what AGI(floodgate,...,--members,A,B,C) passes).
    #[arg(long, required = true, value_delimiter = ',', num_args = 1.., value_parser = parse_node)]
    pub members: Vec<String>,
    /// Most links on one virtual node.
    #[arg(long)]
    pub per_node: i32,
    /// Most links on all of them together (negative: no total).
    #[arg(long)]
    pub total: i32,
    /// The node FG_NODE names when the hub is full.
    #[arg(long, value_parser = parse_node)]
    pub dump: String,
    /// Channel variable for the chosen node (a member, or the dump node), set last.
    #[arg(long, default_value = "FG_NODE", value_parser = parse_var)]
    pub var: String,
    /// Channel variable for the verdict: ADMIT or FULL (ERROR if the table failed), set before the node.
    #[arg(long, default_value = "FG_VERDICT", value_parser = parse_var)]
    pub verdict_var: String,
    /// Channel variable for the lease handle, set first.
    #[arg(long, default_value = "FG_LEASE", value_parser = parse_var)]
    pub lease_var: String,
    /// Longest a link is counted without a release: e.g. 24h, 7d, or `never`.
    #[arg(long, default_value = "24h", value_parser = parse_hold)]
    pub hold: Hold,
}

/// `agi release`.
#[derive(Debug, Clone, Args)]
pub struct AgiReleaseArgs {
    /// The lease handle (e.g. ${FG_LEASE}; empty: nothing to release). Without it, the
    /// handle is read from the channel with GET VARIABLE.
    #[arg(long, value_name = "HANDLE", value_parser = parse_lease_arg)]
    pub lease: Option<LeaseArg>,
    /// Channel variable read when --lease is not given.
    #[arg(long, default_value = "FG_LEASE", value_parser = parse_var)]
    pub lease_var: String,
}

/// A key as bytes (any bytes the shell passes, 1 to [`MAX_KEY_LEN`] of them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key(pub Vec<u8>);

/// A lease hold time: `None` holds until released.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hold(pub Option<u64>);

/// A `--lease` value of `agi release`: `None` when empty (nothing held).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseArg(pub Option<u64>);

fn key_parser() -> impl TypedValueParser<Value = Key> {
    OsStringValueParser::new().try_map(|s: OsString| {
        let bytes = s.into_vec();
        if bytes.is_empty() {
            return Err("a key must not be empty".to_owned());
        }
        if bytes.len() > MAX_KEY_LEN {
            return Err(format!(
                "a key is at most {MAX_KEY_LEN} bytes, this one has {}",
                bytes.len()
            ));
        }
        Ok(Key(bytes))
    })
}

fn parse_table_name(s: &str) -> Result<String, String> {
    let ok = !s.is_empty()
        && s.len() <= 64
        && !s.starts_with('.')
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if ok {
        Ok(s.to_owned())
    } else {
        Err("a table name is 1 to 64 letters, digits, `_`, `-` or `.`, not starting with `.` (use --path for a file elsewhere)".to_owned())
    }
}

fn parse_count(s: &str, min: usize) -> Result<usize, String> {
    let n: usize = s.parse().map_err(|e| format!("not a whole number: {e}"))?;
    if n < min || n > MAX_CAPACITY {
        return Err(format!("must be in {min}..={MAX_CAPACITY}"));
    }
    Ok(n)
}

fn parse_capacity(s: &str) -> Result<usize, String> {
    parse_count(s, 1)
}

fn parse_leases(s: &str) -> Result<usize, String> {
    parse_count(s, 0)
}

/// Parses a duration: a whole number with an optional unit `ns`, `us`,
/// `ms`, `s`, `m`, `h` or `d` (no unit: seconds). Returns nanoseconds.
pub fn parse_duration(s: &str) -> Result<u64, String> {
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{s:?} is not a duration such as 10s, 500ms, 24h or 7d"))?;
    let scale: u64 = match unit {
        "ns" => 1,
        "us" => 1_000,
        "ms" => 1_000_000,
        "" | "s" => 1_000_000_000,
        "m" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        "d" => 86_400_000_000_000,
        _ => {
            return Err(format!(
                "unknown unit {unit:?} in {s:?} (use ns, us, ms, s, m, h or d)"
            ))
        }
    };
    n.checked_mul(scale)
        .ok_or_else(|| format!("{s:?} is too long a duration"))
}

fn parse_interval(s: &str) -> Result<u64, String> {
    match parse_duration(s)? {
        0 => Err("an interval must be longer than 0".to_owned()),
        n => Ok(n),
    }
}

fn parse_hold(s: &str) -> Result<Hold, String> {
    if s == "never" {
        return Ok(Hold(None));
    }
    match parse_duration(s)? {
        0 => Err("a hold time must be longer than 0 (or `never`)".to_owned()),
        n => Ok(Hold(Some(n))),
    }
}

fn parse_lease_arg(s: &str) -> Result<LeaseArg, String> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(LeaseArg(None));
    }
    s.parse()
        .map(|n| LeaseArg(Some(n)))
        .map_err(|_| format!("{s:?} is not a lease handle (a number, as FG_LEASE holds)"))
}

fn parse_var(s: &str) -> Result<String, String> {
    if valid_var_name(s) {
        Ok(s.to_owned())
    } else {
        Err(
            "a channel variable name is 1 to 80 letters, digits or `_`, not starting with a digit"
                .to_owned(),
        )
    }
}

/// The longest node name: the key `node/<name>` must fit in
/// [`MAX_KEY_LEN`] (56) bytes.
pub const MAX_NODE_LEN: usize = MAX_KEY_LEN - NODE_PREFIX.len();
/// The prefix of a node's key.
pub const NODE_PREFIX: &str = "node/";

fn parse_node(s: &str) -> Result<String, String> {
    let ok = !s.is_empty()
        && s.len() <= MAX_NODE_LEN
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if ok {
        Ok(s.to_owned())
    } else {
        Err(format!(
            "a node is 1 to {MAX_NODE_LEN} letters, digits, `_`, `-` or `.` (app_rpt nodes are numbers such as 2000 or 168501)"
        ))
    }
}

fn parse_algorithm(s: &str) -> Result<Algorithm, String> {
    Algorithm::from_name(s.as_bytes()).ok_or_else(|| {
        let names: Vec<&str> = Algorithm::ALL.iter().map(|a| a.name()).collect();
        format!("unknown algorithm {s:?}; one of {}", names.join(", "))
    })
}

impl HubArgs {
    /// Checks what clap cannot: member count, duplicates, the dump node.
    pub fn check(&self) -> Result<(), String> {
        if self.members.is_empty() || self.members.len() > MAX_MEMBERS {
            return Err(format!(
                "--members: a hub has 1 to {MAX_MEMBERS} virtual nodes, {} given",
                self.members.len()
            ));
        }
        for (i, m) in self.members.iter().enumerate() {
            if self.members[..i].contains(m) {
                return Err(format!("--members: node {m} is listed twice"));
            }
        }
        if self.members.contains(&self.dump) {
            return Err(format!(
                "--dump: the dump node {} is also a member; it must be a node of its own",
                self.dump
            ));
        }
        if self.per_node < 0 {
            return Err("--per-node: must be 0 or more".to_owned());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10"), Ok(10_000_000_000));
        assert_eq!(parse_duration("10s"), Ok(10_000_000_000));
        assert_eq!(parse_duration("500ms"), Ok(500_000_000));
        assert_eq!(parse_duration("2m"), Ok(120_000_000_000));
        assert_eq!(parse_duration("24h"), Ok(86_400_000_000_000));
        assert_eq!(parse_duration("7d"), Ok(7 * 86_400_000_000_000));
        assert_eq!(parse_duration("3us"), Ok(3_000));
        assert_eq!(parse_duration("3ns"), Ok(3));
        assert!(parse_duration("").is_err());
        assert!(parse_duration("s").is_err());
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("1.5s").is_err());
        assert!(parse_duration("1w").unwrap_err().contains("unknown unit"));
        assert!(parse_duration("999999999999d")
            .unwrap_err()
            .contains("too long"));
        assert!(parse_interval("0s").is_err());
        assert_eq!(parse_hold("never"), Ok(Hold(None)));
        assert!(parse_hold("0").is_err());
    }

    #[test]
    fn names() {
        assert!(parse_table_name("app_rpt").is_ok());
        assert!(parse_table_name("a/b").is_err());
        assert!(parse_table_name(".hidden").is_err());
        assert!(parse_table_name("").is_err());
        assert!(parse_node("168501").is_ok());
        assert!(parse_node(&"9".repeat(MAX_NODE_LEN)).is_ok());
        assert!(parse_node(&"9".repeat(MAX_NODE_LEN + 1)).is_err());
        assert!(parse_node("1 2").is_err());
        assert!(parse_algorithm("taildrop").is_ok());
        assert!(parse_algorithm("FOO").unwrap_err().contains("TAILDROP"));
        assert_eq!(parse_lease_arg(""), Ok(LeaseArg(None)));
        assert_eq!(parse_lease_arg(" 42 "), Ok(LeaseArg(Some(42))));
        assert!(parse_lease_arg("x").is_err());
    }

    #[test]
    fn hub_checks() {
        let hub = |members: &[&str], dump: &str, per_node: i32| HubArgs {
            members: members.iter().map(|s| s.to_string()).collect(),
            per_node,
            total: 200,
            dump: dump.to_owned(),
            var: "FG_NODE".into(),
            verdict_var: "FG_VERDICT".into(),
            lease_var: "FG_LEASE".into(),
            hold: Hold(None),
        };
        assert!(hub(&["1", "2"], "3", 50).check().is_ok());
        assert!(hub(&["1", "1"], "3", 50)
            .check()
            .unwrap_err()
            .contains("twice"));
        assert!(hub(&["1", "2"], "2", 50)
            .check()
            .unwrap_err()
            .contains("dump"));
        assert!(hub(&[], "3", 50).check().is_err());
        let many: Vec<String> = (0..17).map(|i| i.to_string()).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        assert!(hub(&many, "x", 50).check().is_err());
        assert!(hub(&["1"], "3", -1).check().is_err());
    }

    #[test]
    fn globals_go_before_or_after_the_command() {
        let a = Cli::try_parse_from(["floodgate", "--table", "t1", "list"]).unwrap();
        let b = Cli::try_parse_from(["floodgate", "list", "--table", "t1", "--json"]).unwrap();
        assert_eq!(a.table.table, "t1");
        assert_eq!(b.table.table, "t1");
        assert!(b.json);
        let c = Cli::try_parse_from([
            "floodgate",
            "agi",
            "link",
            "--node",
            "2000",
            "--max",
            "3",
            "--path",
            "/tmp/x",
        ])
        .unwrap();
        assert_eq!(c.table.path, Some(PathBuf::from("/tmp/x")));
    }

    #[test]
    fn hub_members_as_one_list_or_as_agi_passes_them() {
        let members = |args: &[&str]| -> Vec<String> {
            let mut all = vec!["floodgate", "agi", "hub"];
            all.extend_from_slice(args);
            all.extend(["--per-node", "50", "--total", "200", "--dump", "5"]);
            match Cli::try_parse_from(all).unwrap().command {
                Command::Agi {
                    command: AgiCommand::Hub(h),
                } => h.members,
                c => panic!("{c:?}"),
            }
        };
        let want = ["1", "2", "3", "4"];
        assert_eq!(members(&["--members", "1,2,3,4"]), want);
        // AGI(floodgate,agi,hub,--members,1,2,3,4,...): one argv each.
        assert_eq!(members(&["--members", "1", "2", "3", "4"]), want);
        assert_eq!(members(&["--members", "1,2", "3", "4"]), want);
    }
}
