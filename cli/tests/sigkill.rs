//! A link holder killed with SIGKILL: its hangup never runs, its lease
//! expires after the hold time (real CLOCK_MONOTONIC), and the slot is
//! used again.

mod common;

use std::time::{Duration, Instant};

use common::*;

const HOLD: &str = "1500ms";
const HOLD_TIME: Duration = Duration::from_millis(1500);

fn link(t: &TempTable) -> Channel {
    let mut ch = Channel::default();
    let (code, err) = serve(
        t,
        &["link", "--node", "3000", "--max", "1", "--hold", HOLD],
        &mut ch,
    );
    assert_eq!(code, 0, "{err}");
    ch
}

/// Whether a check that ended now certainly ran before a lease taken after
/// `spawned` could expire. On a machine loaded enough to stall for the whole
/// hold time, the before-expiry checks are skipped rather than failed.
fn before_expiry(spawned: Instant) -> bool {
    let early = Instant::now() < spawned + HOLD_TIME;
    if !early {
        eprintln!("note: the machine was too slow to check the lease before it expired");
    }
    early
}

#[test]
fn a_killed_holder_s_slot_is_reused_after_the_hold_time() {
    let t = TempTable::new("sigkill");
    let spawned = Instant::now();
    let mut p = AgiProcess::start(
        &t,
        &["link", "--node", "3000", "--max", "1", "--hold", HOLD],
    );
    p.send(HEADER);
    // The lease is taken once it asks to store the handle.
    let first = p.next_command().expect("SET VARIABLE FG_LEASE");
    let acquired_by = Instant::now();
    assert!(first.starts_with("SET VARIABLE FG_LEASE"), "{first}");
    // SAFETY: kills our own child.
    unsafe { libc::kill(p.child.id() as libc::pid_t, libc::SIGKILL) };
    let status = p.child.wait().unwrap();
    assert!(status.code().is_none(), "killed by a signal: {status:?}");

    // Nobody released it: the node is full.
    let held = usage(&t, "node/3000");
    if before_expiry(spawned) {
        assert_eq!(held, 1);
    }
    let refused = link(&t);
    if before_expiry(spawned) {
        assert_eq!(refused.var("FG_VERDICT"), Some("REFUSE"));
    }

    // After the hold time the next link gets the slot.
    let wait = (acquired_by + HOLD_TIME + Duration::from_millis(100))
        .saturating_duration_since(Instant::now());
    std::thread::sleep(wait);
    let admitted = link(&t);
    assert_eq!(admitted.var("FG_VERDICT"), Some("ADMIT"));
    assert_eq!(
        usage(&t, "node/3000"),
        1,
        "the dead holder's slot was reclaimed"
    );

    // The killed holder's handle names nothing any more; the new one works.
    let mut new = admitted;
    let (code, _) = serve(&t, &["release"], &mut new);
    assert_eq!(code, 0);
    assert_eq!(usage(&t, "node/3000"), 0);
}

#[test]
fn an_unreleased_link_frees_itself_and_its_late_release_changes_nothing() {
    let t = TempTable::new("expiry");
    let spawned = Instant::now();
    let mut old = link(&t);
    assert_eq!(old.var("FG_VERDICT"), Some("ADMIT"));
    let taken = Instant::now();
    let second = link(&t);
    if before_expiry(spawned) {
        assert_eq!(second.var("FG_VERDICT"), Some("REFUSE"));
    }
    std::thread::sleep(
        (taken + HOLD_TIME + Duration::from_millis(100)).saturating_duration_since(Instant::now()),
    );
    let mut new = link(&t);
    assert_eq!(new.var("FG_VERDICT"), Some("ADMIT"));
    // The old link's hangup finally runs: its lease expired, so nothing
    // changes; the new link keeps its slot.
    assert_eq!(serve(&t, &["release"], &mut old).0, 0);
    assert_eq!(usage(&t, "node/3000"), 1);
    assert_eq!(serve(&t, &["release"], &mut new).0, 0);
    assert_eq!(usage(&t, "node/3000"), 0);
}
