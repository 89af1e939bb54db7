//! The operator's commands: Kamailio's `pl.*` RPC and FreeSWITCH's limit
//! API on the shared table. Each returns an [`Output`]: the same result as
//! a human-readable text and as a JSON value.

use floodgate::table::{EntryInfo, Lease, LeaseRelease, Table};
use floodgate::{Gains, PidController, Release, Stats};

use crate::cli::{Command, Key};
use crate::json::Value;
use crate::table_file::{fmt_ns, TableFile};
use crate::{os, table_error, Exit, Failure};

/// What a command prints, and its exit code.
#[derive(Debug, Clone, PartialEq)]
pub struct Output {
    /// 0, or 1 for a refusal that still reports something.
    pub exit: Exit,
    /// Human-readable, ends with a newline.
    pub text: String,
    /// The same as JSON.
    pub json: Value,
}

impl Output {
    fn ok(text: String, json: Value) -> Output {
        Output {
            exit: Exit::Ok,
            text,
            json,
        }
    }
}

/// A key as text: printable ASCII as is, `\\` and other bytes as `\xNN`.
pub fn show_key(key: &[u8]) -> String {
    let mut s = String::with_capacity(key.len());
    for &b in key {
        match b {
            b'\\' => s.push_str("\\\\"),
            0x20..=0x7e => s.push(b as char),
            _ => s.push_str(&format!("\\x{b:02x}")),
        }
    }
    s
}

/// Lays out rows under a header, columns left-aligned, numbers right-aligned.
pub fn table_text(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut width: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in width.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let numeric: Vec<bool> = (0..header.len())
        .map(|i| {
            !rows.is_empty()
                && rows
                    .iter()
                    .all(|r| r[i].parse::<f64>().is_ok() || r[i] == "-")
        })
        .collect();
    let line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut out = String::new();
        for (i, cell) in cells.enumerate() {
            if i > 0 {
                out.push_str("  ");
            }
            let pad = width[i].saturating_sub(cell.chars().count());
            if numeric[i] {
                out.push_str(&" ".repeat(pad));
                out.push_str(cell);
            } else {
                out.push_str(cell);
                out.push_str(&" ".repeat(pad));
            }
        }
        out.truncate(out.trim_end().len());
        out.push('\n');
        out
    };
    let mut text = line(&mut header.iter().copied());
    for row in rows {
        text.push_str(&line(&mut row.iter().map(String::as_str)));
    }
    text
}

fn stats_json(key: &[u8], s: &Stats) -> Value {
    Value::object([
        ("key", Value::from(show_key(key))),
        ("algorithm", Value::from(s.algorithm.name())),
        ("limit", Value::from(s.limit)),
        ("counter", Value::from(s.counter)),
        ("last_counter", Value::from(s.last_counter)),
        ("load", Value::from(s.load)),
    ])
}

fn stats_row(key: &[u8], s: &Stats) -> Vec<String> {
    vec![
        show_key(key),
        s.algorithm.name().to_owned(),
        s.limit.to_string(),
        s.counter.to_string(),
        s.last_counter.to_string(),
        s.load.to_string(),
    ]
}

const LIST_HEADER: [&str; 6] = ["KEY", "ALGORITHM", "LIMIT", "COUNTER", "LAST", "LOAD"];
const LIST_NOTE: &str =
    "(SLOTS: COUNTER is the slots held, LAST the unmatched releases; rate pipes: this window and the last)\n";

fn sorted_entries(t: &Table<'_>, now: u64) -> Vec<EntryInfo> {
    let mut all: Vec<EntryInfo> = t.iter(now).collect();
    all.sort_by(|a, b| a.key().cmp(b.key()));
    all
}

fn no_entry(key: &Key) -> Failure {
    Failure::refused(format!("{}: no such entry", show_key(&key.0)))
}

fn pid_output(c: &PidController) -> Output {
    let g = c.gains();
    let text = format!(
        "setpoint   {}%\nkp         {}\nki         {}\nkd         {}\nint_err    {}\nlast_err   {}\nload       {}\ndrop_rate  {}%\n",
        (c.setpoint() * 100.0).round(),
        g.kp,
        g.ki,
        g.kd,
        c.int_err(),
        c.last_err(),
        c.load(),
        c.drop_rate()
    );
    let json = Value::object([
        ("setpoint", Value::from(c.setpoint())),
        ("kp", Value::from(g.kp)),
        ("ki", Value::from(g.ki)),
        ("kd", Value::from(g.kd)),
        ("int_err", Value::from(c.int_err())),
        ("last_err", Value::from(c.last_err())),
        ("load", Value::from(c.load())),
        ("drop_rate", Value::from(c.drop_rate())),
    ]);
    Output::ok(text, json)
}

/// Runs an operator command (not `agi`) on the table in `file`.
pub fn run(command: &Command, file: &TableFile) -> Result<Output, Failure> {
    let t = file.table()?;
    let now = os::now_ns();
    let ctx = |k: &Key| show_key(&k.0);
    match command {
        Command::List { key: None } => {
            let all = sorted_entries(&t, now);
            let rows: Vec<Vec<String>> = all.iter().map(|e| stats_row(e.key(), &e.stats)).collect();
            let mut text = table_text(&LIST_HEADER, &rows);
            if all
                .iter()
                .any(|e| e.stats.algorithm == floodgate::Algorithm::Slots)
            {
                text.push_str(LIST_NOTE);
            }
            let json = Value::Array(all.iter().map(|e| stats_json(e.key(), &e.stats)).collect());
            Ok(Output::ok(text, json))
        }
        Command::List { key: Some(key) } => {
            let s = t.get(&key.0, now).map_err(|e| match e {
                floodgate::Error::NoPipe => no_entry(key),
                e => table_error(&ctx(key), e),
            })?;
            let text = table_text(&LIST_HEADER, &[stats_row(&key.0, &s)]);
            Ok(Output::ok(text, stats_json(&key.0, &s)))
        }
        Command::Stats => {
            let all = sorted_entries(&t, now);
            let shared = t.shared();
            let pipes: Vec<&EntryInfo> = all
                .iter()
                .filter(|e| e.stats.algorithm != floodgate::Algorithm::Slots)
                .collect();
            let slots = all.len() - pipes.len();
            let mut text = format!(
                "table      {}\nentries    {} of {} in use ({} pipes, {} slot entries)\nleases     {} records\ninterval   {}\nfeedback   setpoint {}%, drop rate {}%\nnetwork    {} bytes waiting\n",
                file.path().display(),
                all.len(),
                t.capacity(),
                pipes.len(),
                slots,
                t.lease_capacity(),
                fmt_ns(t.interval()),
                t.setpoint_percent(),
                shared.drop_rate,
                shared.bytes_waiting,
            );
            if !pipes.is_empty() {
                text.push('\n');
                let rows: Vec<Vec<String>> = pipes
                    .iter()
                    .map(|e| {
                        vec![
                            show_key(e.key()),
                            e.stats.algorithm.name().to_owned(),
                            e.stats.load.to_string(),
                            e.stats.last_counter.to_string(),
                        ]
                    })
                    .collect();
                text.push_str(&table_text(&["KEY", "ALGORITHM", "LOAD", "LAST"], &rows));
            }
            let json = Value::object([
                ("path", Value::from(file.path().display().to_string())),
                ("capacity", Value::from(t.capacity())),
                ("entries", Value::from(all.len())),
                ("pipes_count", Value::from(pipes.len())),
                ("slot_entries", Value::from(slots)),
                ("lease_capacity", Value::from(t.lease_capacity())),
                ("interval_ns", Value::from(t.interval())),
                ("epoch_ns", Value::from(t.epoch())),
                ("setpoint_percent", Value::from(t.setpoint_percent())),
                ("drop_rate", Value::from(shared.drop_rate)),
                ("bytes_waiting", Value::from(shared.bytes_waiting)),
                (
                    "pipes",
                    Value::Array(
                        pipes
                            .iter()
                            .map(|e| {
                                Value::object([
                                    ("key", Value::from(show_key(e.key()))),
                                    ("algorithm", Value::from(e.stats.algorithm.name())),
                                    ("load", Value::from(e.stats.load)),
                                    ("last_counter", Value::from(e.stats.last_counter)),
                                ])
                            })
                            .collect(),
                    ),
                ),
            ]);
            Ok(Output::ok(text, json))
        }
        Command::SetPipe { name, algo, limit } => {
            t.set(&name.0, *algo, *limit, now).map_err(|e| match e {
                floodgate::Error::WrongAlgorithm => Failure::refused(format!(
                    "{}: a SLOTS entry holding slots is not replaced (release them, or delete it)",
                    ctx(name)
                )),
                e => table_error(&format!("{} {} {limit}", ctx(name), algo.name()), e),
            })?;
            let s = t
                .get(&name.0, now)
                .map_err(|e| table_error(&ctx(name), e))?;
            let text = table_text(&LIST_HEADER, &[stats_row(&name.0, &s)]);
            Ok(Output::ok(text, stats_json(&name.0, &s)))
        }
        Command::GetPid => Ok(pid_output(
            &t.pid_get().map_err(|e| table_error("get-pid", e))?,
        )),
        Command::SetPid { ki, kp, kd } => {
            t.pid_set(Gains {
                kp: *kp,
                ki: *ki,
                kd: *kd,
            })
            .map_err(|e| table_error("set-pid", e))?;
            Ok(pid_output(
                &t.pid_get().map_err(|e| table_error("set-pid", e))?,
            ))
        }
        Command::PushLoad { load } => {
            let rate = t
                .push_load(*load)
                .map_err(|e| table_error(&format!("push-load {load}"), e))?;
            Ok(Output::ok(
                format!("load {load}: drop rate {rate}%\n"),
                Value::object([
                    ("load", Value::from(*load)),
                    ("drop_rate", Value::from(rate)),
                ]),
            ))
        }
        Command::Usage { key } => {
            let n = t.usage(&key.0, now).map_err(|e| match e {
                floodgate::Error::NoPipe => no_entry(key),
                floodgate::Error::WrongAlgorithm => Failure::usage(format!(
                    "{}: usage counts the slots of a SLOTS entry (links, concurrent calls); this is a rate pipe (see `list`)",
                    ctx(key)
                )),
                e => table_error(&ctx(key), e),
            })?;
            Ok(Output::ok(
                format!("{}  {n}\n", ctx(key)),
                Value::object([("key", Value::from(ctx(key))), ("usage", Value::from(n))]),
            ))
        }
        Command::Release {
            key: Some(key),
            lease: None,
        } => {
            let r = t.release(&key.0, now).map_err(|e| match e {
                floodgate::Error::NoPipe => no_entry(key),
                floodgate::Error::WrongAlgorithm => Failure::usage(format!(
                    "{}: release gives back a slot of a SLOTS entry; this is a rate pipe",
                    ctx(key)
                )),
                e => table_error(&ctx(key), e),
            })?;
            // No plain slot held: give back a leased one, the one that
            // would expire first (the channel holding its handle is gone).
            let r = match r {
                Release::Unmatched
                    if t.release_lease_of(&key.0, now) == Ok(LeaseRelease::Released) =>
                {
                    Release::Released
                }
                r => r,
            };
            let usage = t.usage(&key.0, now).unwrap_or(0);
            let json = |released: bool| {
                Value::object([
                    ("key", Value::from(ctx(key))),
                    ("released", Value::from(released)),
                    ("usage", Value::from(usage)),
                ])
            };
            match r {
                Release::Released => Ok(Output::ok(
                    format!("{}: released one slot, {usage} held\n", ctx(key)),
                    json(true),
                )),
                Release::Unmatched => {
                    let why = if usage > 0 {
                        format!(
                            "{}: no slot could be released though {usage} are held",
                            ctx(key)
                        )
                    } else {
                        format!(
                            "{}: nothing held; counted as an unmatched release",
                            ctx(key)
                        )
                    };
                    Ok(Output {
                        exit: Exit::Refused,
                        text: format!("{why}\n"),
                        json: json(false),
                    })
                }
            }
        }
        Command::Release {
            key: _,
            lease: Some(handle),
        } => {
            let r = t
                .lease_release(Lease::from_bits(*handle), now)
                .map_err(|e| table_error(&format!("lease {handle}"), e))?;
            let released = r == LeaseRelease::Released;
            let json = Value::object([
                ("lease", Value::from(*handle)),
                ("released", Value::from(released)),
            ]);
            Ok(if released {
                Output::ok(format!("lease {handle}: released\n"), json)
            } else {
                Output {
                    exit: Exit::Refused,
                    text: format!(
                        "lease {handle}: not held (released before, expired, or its entry deleted): nothing changed\n"
                    ),
                    json,
                }
            })
        }
        Command::Release {
            key: None,
            lease: None,
        } => Err(Failure::usage(
            "release: give a KEY or --lease HANDLE".to_owned(),
        )),
        Command::Reset { key } => {
            t.interval_reset(&key.0, now).map_err(|e| match e {
                floodgate::Error::NoPipe => no_entry(key),
                e => table_error(&ctx(key), e),
            })?;
            Ok(Output::ok(
                format!("{}: window count reset\n", ctx(key)),
                Value::object([("key", Value::from(ctx(key))), ("reset", Value::from(true))]),
            ))
        }
        Command::Delete { key } => {
            t.remove(&key.0).map_err(|e| match e {
                floodgate::Error::NoPipe => no_entry(key),
                e => table_error(&ctx(key), e),
            })?;
            Ok(Output::ok(
                format!("{}: deleted\n", ctx(key)),
                Value::object([
                    ("key", Value::from(ctx(key))),
                    ("deleted", Value::from(true)),
                ]),
            ))
        }
        Command::CleanUnused { intervals } => {
            let n = t.clean_unused(*intervals, now);
            Ok(Output::ok(
                format!("removed {n} entries idle for {intervals} intervals\n"),
                Value::object([
                    ("intervals", Value::from(*intervals)),
                    ("removed", Value::from(n)),
                ]),
            ))
        }
        Command::Simulate(_) => Err(Failure::usage(
            "simulate uses no table (run it as `floodgate simulate`)".to_owned(),
        )),
        Command::Agi { .. } => Err(Failure::usage(
            "agi commands run under Asterisk (see `floodgate agi --help`)".to_owned(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_show_escaped() {
        assert_eq!(show_key(b"node/2000"), "node/2000");
        assert_eq!(show_key(b"a\\b"), "a\\\\b");
        assert_eq!(show_key(b"\x00\xff\n"), "\\x00\\xff\\x0a");
    }

    #[test]
    fn tables_align() {
        let text = table_text(
            &["KEY", "N"],
            &[
                vec!["a".into(), "10".into()],
                vec!["longer".into(), "2".into()],
            ],
        );
        assert_eq!(text, "KEY      N\na       10\nlonger   2\n");
        assert_eq!(table_text(&["KEY", "N"], &[]), "KEY  N\n");
    }
}
