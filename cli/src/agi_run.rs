//! The AGI commands: app_rpt's link limit, hub balancing and the release
//! at hangup, as one atomic table call each.
//!
//! Order of work, so that bad input changes nothing and nothing leaks:
//!
//! 1. The arguments were checked by the command line (exit 2).
//! 2. The whole `agi_*` header is read and checked (a missing, cut or
//!    malformed header: exit 3), and a hangup noticed so far stops here.
//! 3. Only then is the table opened and the slot taken (a lease, with the
//!    hold time).
//! 4. The lease handle is stored in the channel (`SET VARIABLE FG_LEASE`),
//!    then the verdict (`FG_VERDICT`), then for a hub the node (`FG_NODE`,
//!    last, since a dialplan may act on it alone). If a reply is anything but `200 result=1` (a 5xx
//!    error, an unknown line, closed input), or the channel hung up (a
//!    `HANGUP` line, SIGHUP), the lease is released again before exiting
//!    with 3: a failed run holds nothing. A table error (full) sets the
//!    verdict to `ERROR` if it can, and exits 3.
//!
//! The `h` extension's `agi release` gives the slot back by its handle,
//! which is idempotent: a second release, one after the hold time, or one
//! for a link that was refused (no handle) changes nothing and exits 0.

use std::io::{BufRead, Write};
use std::path::Path;

use floodgate::table::{Balanced, Lease, LeaseRelease, LeaseVerdict, Table};

use crate::agi::{Agi, AgiError};
use crate::cli::{AgiCommand, AgiReleaseArgs, HubArgs, LinkArgs, NODE_PREFIX};
use crate::table_file::{Spec, TableFile};
use crate::{os, table_error, Failure};

/// The verdict values.
pub const ADMIT: &str = "ADMIT";
/// `agi link`'s refusal.
pub const REFUSE: &str = "REFUSE";
/// `agi hub`'s "send it to the dump node".
pub const FULL: &str = "FULL";
/// A table error (full, not a table): the verdict variable says so when it can.
pub const ERROR: &str = "ERROR";

fn agi_failure(e: AgiError) -> Failure {
    Failure::error(e.to_string())
}

fn node_key(node: &str) -> Vec<u8> {
    format!("{NODE_PREFIX}{node}").into_bytes()
}

/// Runs an `agi` command with Asterisk on `input` / `output`.
pub fn run(
    command: &AgiCommand,
    path: &Path,
    spec: &Spec,
    input: impl BufRead,
    output: impl Write,
) -> Result<(), Failure> {
    if let AgiCommand::Hub(h) = command {
        h.check().map_err(Failure::usage)?;
    }
    let mut agi = Agi::new(input, output);
    agi.read_env().map_err(agi_failure)?;
    match command {
        AgiCommand::Link(a) => link(&mut agi, a, path, spec),
        AgiCommand::Hub(h) => hub(&mut agi, h, path, spec),
        AgiCommand::Release(r) => release(&mut agi, r, path, spec),
    }
}

/// Stops before the table is touched if the channel is already gone.
fn not_hung_up<R: BufRead, W: Write>(agi: &Agi<R, W>) -> Result<(), Failure> {
    if agi.hung_up() {
        return Err(Failure::error(
            "the channel hung up before the link was decided: nothing was taken".to_owned(),
        ));
    }
    Ok(())
}

/// A table error: tell the channel (best effort), then fail.
fn table_failed<R: BufRead, W: Write>(
    agi: &mut Agi<R, W>,
    verdict_var: &str,
    what: &str,
    e: floodgate::Error,
) -> Failure {
    let f = table_error(what, e);
    let told = agi.set_var(verdict_var, ERROR);
    match told {
        Ok(()) => f,
        Err(te) => Failure::error(format!("{}; and then {te}", f.message)),
    }
}

/// Delivers `vars` in order; on any failure or a hangup, releases `lease`.
fn deliver<R: BufRead, W: Write>(
    agi: &mut Agi<R, W>,
    t: &Table<'_>,
    key: &str,
    lease: Lease,
    vars: &[(&str, &str)],
) -> Result<(), Failure> {
    let mut result = Ok(());
    for (name, value) in vars {
        result = agi.set_var(name, value);
        if result.is_err() {
            break;
        }
    }
    let why = match result {
        Err(e) => e.to_string(),
        Ok(()) if agi.hung_up() => "the channel hung up before the link was made".to_owned(),
        Ok(()) => return Ok(()),
    };
    let undone = match t.lease_release(lease, os::now_ns()) {
        Ok(LeaseRelease::Released) => "given back".to_owned(),
        Ok(LeaseRelease::AlreadyReleased) => "already free".to_owned(),
        Err(e) => format!("NOT given back ({e}); it frees itself after the hold time"),
    };
    Err(Failure::error(format!(
        "{why}; the slot taken on {key} (lease {}) was {undone}",
        lease.to_bits()
    )))
}

fn link<R: BufRead, W: Write>(
    agi: &mut Agi<R, W>,
    a: &LinkArgs,
    path: &Path,
    spec: &Spec,
) -> Result<(), Failure> {
    not_hung_up(agi)?;
    let file = TableFile::open(path, spec)?;
    let t = file.table()?;
    let key = node_key(&a.node);
    let key_text = String::from_utf8_lossy(&key).into_owned();
    let verdict = match t.lease_acquire(&key, a.max, a.hold.0, os::now_ns()) {
        Ok(v) => v,
        Err(e) => return Err(table_failed(agi, &a.var, &key_text, e)),
    };
    match verdict {
        LeaseVerdict::Acquired(lease) => deliver(
            agi,
            &t,
            &key_text,
            lease,
            &[
                (&a.lease_var, &lease.to_bits().to_string()),
                (&a.var, ADMIT),
            ],
        ),
        LeaseVerdict::Refused => agi.set_var(&a.var, REFUSE).map_err(agi_failure),
    }
}

fn hub<R: BufRead, W: Write>(
    agi: &mut Agi<R, W>,
    h: &HubArgs,
    path: &Path,
    spec: &Spec,
) -> Result<(), Failure> {
    not_hung_up(agi)?;
    let file = TableFile::open(path, spec)?;
    let t = file.table()?;
    let keys: Vec<Vec<u8>> = h.members.iter().map(|m| node_key(m)).collect();
    let members: Vec<&[u8]> = keys.iter().map(Vec::as_slice).collect();
    let what = format!("hub {}", h.members.join(","));
    let verdict = match t.balance_lease(&members, h.per_node, h.total, h.hold.0, os::now_ns()) {
        Ok(v) => v,
        Err(e) => return Err(table_failed(agi, &h.verdict_var, &what, e)),
    };
    match verdict {
        Balanced::Acquired {
            member,
            lease: Some(lease),
        } => {
            let node = &h.members[member];
            deliver(
                agi,
                &t,
                &format!("{NODE_PREFIX}{node}"),
                lease,
                // FG_NODE last: the dialplan may act on it alone
                // (`rpt,${FG_NODE}|X`), so it only names a member once
                // everything else was delivered.
                &[
                    (&h.lease_var, &lease.to_bits().to_string()),
                    (&h.verdict_var, ADMIT),
                    (&h.var, node),
                ],
            )
        }
        Balanced::Acquired { lease: None, .. } => Err(Failure::error(
            "the table took a slot without a lease (not expected)".to_owned(),
        )),
        Balanced::Full => agi
            .set_var(&h.verdict_var, FULL)
            .and_then(|()| agi.set_var(&h.var, &h.dump))
            .map_err(agi_failure),
    }
}

fn release<R: BufRead, W: Write>(
    agi: &mut Agi<R, W>,
    r: &AgiReleaseArgs,
    path: &Path,
    spec: &Spec,
) -> Result<(), Failure> {
    // The h extension runs on a dead channel: hangups are expected here.
    let handle = match r.lease {
        Some(arg) => arg.0,
        None => {
            let value = agi.get_var(&r.lease_var).map_err(agi_failure)?;
            match value.as_deref().map(str::trim) {
                None | Some("") => None,
                Some(v) => Some(v.parse::<u64>().map_err(|_| {
                    Failure::error(format!(
                        "channel variable {} holds {v:?}, not a lease handle: nothing released",
                        r.lease_var
                    ))
                })?),
            }
        }
    };
    let Some(handle) = handle else {
        // A refused link, or one that never reached `agi link`: nothing held.
        return Ok(());
    };
    let file = TableFile::open(path, spec)?;
    let t = file.table()?;
    t.lease_release(Lease::from_bits(handle), os::now_ns())
        .map(|_| ())
        .map_err(|e| table_error(&format!("lease {handle}"), e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Hold, LeaseArg};
    use crate::Exit;
    use std::path::PathBuf;
    use std::sync::atomic::{AtomicU32, Ordering};

    const HEADER: &str = "agi_request: floodgate\nagi_channel: IAX2/x-1\n\n";

    fn temp_path() -> PathBuf {
        static N: AtomicU32 = AtomicU32::new(0);
        std::env::temp_dir().join(format!(
            "floodgate-cli-agi-unit-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ))
    }

    fn link_args(max: i32) -> AgiCommand {
        AgiCommand::Link(LinkArgs {
            node: "2000".into(),
            max,
            var: "FG_VERDICT".into(),
            lease_var: "FG_LEASE".into(),
            hold: Hold(Some(3_600_000_000_000)),
        })
    }

    fn usage(path: &Path) -> Option<u32> {
        let f = TableFile::open(path, &Spec::default()).ok()?;
        let t = f.table().ok()?;
        t.usage(b"node/2000", os::now_ns()).ok()
    }

    /// Runs `command` with `replies` after the header; returns the result
    /// and what was sent.
    fn run_with(path: &Path, command: &AgiCommand, input: &str) -> (Result<(), Failure>, String) {
        let mut out = Vec::new();
        let r = run(command, path, &Spec::default(), input.as_bytes(), &mut out);
        (r, String::from_utf8(out).unwrap())
    }

    #[test]
    fn link_admits_then_refuses_then_release_frees() {
        let path = temp_path();
        let ok = format!("{HEADER}200 result=1\n200 result=1\n");
        let (r, sent) = run_with(&path, &link_args(1), &ok);
        r.unwrap();
        let lease_line = sent.lines().next().unwrap();
        assert!(lease_line.starts_with("SET VARIABLE FG_LEASE \""), "{sent}");
        assert!(
            sent.ends_with("SET VARIABLE FG_VERDICT \"ADMIT\"\n"),
            "{sent}"
        );
        let handle: u64 = lease_line[23..lease_line.len() - 1].parse().unwrap();
        assert_eq!(usage(&path), Some(1));

        let (r, sent) = run_with(&path, &link_args(1), &format!("{HEADER}200 result=1\n"));
        r.unwrap();
        assert_eq!(sent, "SET VARIABLE FG_VERDICT \"REFUSE\"\n");
        assert_eq!(usage(&path), Some(1));

        let rel = AgiCommand::Release(AgiReleaseArgs {
            lease: None,
            lease_var: "FG_LEASE".into(),
        });
        let (r, sent) = run_with(&path, &rel, &format!("{HEADER}200 result=1 ({handle})\n"));
        r.unwrap();
        assert_eq!(sent, "GET VARIABLE FG_LEASE\n");
        assert_eq!(usage(&path), Some(0));
        // Idempotent, by argument this time; and an empty handle is nothing.
        for lease in [Some(handle), None] {
            let rel = AgiCommand::Release(AgiReleaseArgs {
                lease: Some(LeaseArg(lease)),
                lease_var: "FG_LEASE".into(),
            });
            let (r, sent) = run_with(&path, &rel, HEADER);
            r.unwrap();
            assert_eq!(sent, "");
        }
        assert_eq!(usage(&path), Some(0));
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn bad_replies_undo_the_acquisition() {
        let path = temp_path();
        for replies in [
            "510 Invalid or unknown command\n",
            "200 result=1\n511 Command Not Permitted on a dead channel\n",
            "520-Invalid command syntax.  Proper usage follows:\nUsage\n520 End of proper usage.\n",
            "garbage\n",
            "",
            "200 result=1\n",
            "HANGUP\n200 result=1\n200 result=1\n",
        ] {
            let (r, _) = run_with(&path, &link_args(5), &format!("{HEADER}{replies}"));
            let f = r.unwrap_err();
            assert_eq!(f.exit, Exit::Error, "{replies:?}");
            assert!(
                f.message.contains("given back"),
                "{replies:?}: {}",
                f.message
            );
            assert_eq!(usage(&path), Some(0), "{replies:?}");
        }
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn a_bad_header_touches_nothing() {
        let path = temp_path();
        for input in ["", "agi_request: x\n", "nonsense\n\n", "agi_channel: x\n\n"] {
            let (r, sent) = run_with(&path, &link_args(5), input);
            assert_eq!(r.unwrap_err().exit, Exit::Error, "{input:?}");
            assert_eq!(sent, "");
            assert!(!path.exists(), "the table was not even made");
        }
    }

    #[test]
    fn a_hangup_in_the_header_takes_nothing() {
        let path = temp_path();
        let (r, sent) = run_with(&path, &link_args(5), "agi_request: x\nHANGUP\n\n");
        assert!(r.unwrap_err().message.contains("hung up"));
        assert_eq!(sent, "");
        assert!(!path.exists());
    }
}
