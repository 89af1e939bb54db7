//! The AGI side of Asterisk played by the test against the real binary:
//! the header block, replies, HANGUP (as a line and as SIGHUP), and
//! malformed input, which gives a clear error and changes nothing.

mod common;

use common::*;

/// A table holding one link on node/2000 (max 5), one rate pipe, and the
/// lease handle of that link.
fn table_with_state(tag: &str) -> (TempTable, String) {
    let t = TempTable::new(tag);
    let mut ch = Channel::default();
    let (code, err) = serve(&t, &["link", "--node", "2000", "--max", "5"], &mut ch);
    assert_eq!(code, 0, "{err}");
    assert_eq!(ch.var("FG_VERDICT"), Some("ADMIT"));
    let r = cli(&t, &["set-pipe", "10.0.0.1", "TAILDROP", "3"]);
    assert_eq!(r.code, 0, "{r:?}");
    (t, ch.var("FG_LEASE").unwrap().to_owned())
}

#[test]
fn link_limit_admits_up_to_max_then_refuses_and_hangup_releases() {
    let t = TempTable::new("link");
    let mut channels = Vec::new();
    for i in 0..3 {
        let mut ch = Channel::default();
        let (code, err) = serve(&t, &["link", "--node", "2000", "--max", "2"], &mut ch);
        assert_eq!(code, 0, "link {i}: {err}");
        assert!(err.is_empty(), "{err}");
        channels.push(ch);
    }
    // Admitted: the lease handle first, then the verdict.
    for ch in &channels[..2] {
        assert_eq!(ch.sent.len(), 2, "{:?}", ch.sent);
        assert!(ch.sent[0].starts_with("SET VARIABLE FG_LEASE \""));
        assert_eq!(ch.sent[1], "SET VARIABLE FG_VERDICT \"ADMIT\"");
        assert!(ch.var("FG_LEASE").unwrap().parse::<u64>().is_ok());
    }
    assert_ne!(channels[0].var("FG_LEASE"), channels[1].var("FG_LEASE"));
    // Refused: only the verdict, no lease.
    assert_eq!(channels[2].sent, ["SET VARIABLE FG_VERDICT \"REFUSE\""]);
    assert_eq!(usage(&t, "node/2000"), 2);

    // The h extension of every channel, the refused one included; twice.
    for round in 0..2 {
        for ch in &mut channels {
            let (code, err) = serve(&t, &["release"], ch);
            assert_eq!(code, 0, "round {round}: {err}");
        }
        assert_eq!(usage(&t, "node/2000"), 0, "round {round}");
    }
    assert_eq!(channels[0].sent.last().unwrap(), "GET VARIABLE FG_LEASE");

    // A slot is free again.
    let mut ch = Channel::default();
    assert_eq!(
        serve(&t, &["link", "--node", "2000", "--max", "2"], &mut ch).0,
        0
    );
    assert_eq!(ch.var("FG_VERDICT"), Some("ADMIT"));
}

#[test]
fn release_by_argument_sends_no_command_and_is_idempotent() {
    let (t, lease) = table_with_state("relarg");
    for _ in 0..2 {
        let mut ch = Channel::default();
        let (code, err) = serve(&t, &["release", "--lease", &lease], &mut ch);
        assert_eq!(code, 0, "{err}");
        assert!(ch.sent.is_empty(), "{:?}", ch.sent);
        assert_eq!(usage(&t, "node/2000"), 0);
    }
    // ${FG_LEASE} of a refused link is empty: nothing to do.
    let mut ch = Channel::default();
    assert_eq!(serve(&t, &["release", "--lease", ""], &mut ch).0, 0);
}

#[test]
fn hub_balances_and_sends_to_the_dump_node_when_full() {
    let t = TempTable::new("hubsmall");
    let args = [
        "hub",
        "--members",
        "168501,168502",
        "--per-node",
        "2",
        "--total",
        "3",
        "--dump",
        "168505",
    ];
    let mut nodes = Vec::new();
    for _ in 0..4 {
        let mut ch = Channel::default();
        let (code, err) = serve(&t, &args, &mut ch);
        assert_eq!(code, 0, "{err}");
        nodes.push((
            ch.var("FG_NODE").unwrap().to_owned(),
            ch.var("FG_VERDICT").unwrap().to_owned(),
            ch.var("FG_LEASE").is_some(),
        ));
    }
    let want = [
        ("168501", "ADMIT", true), // tie: the first listed
        ("168502", "ADMIT", true), // least loaded
        ("168501", "ADMIT", true),
        ("168505", "FULL", false), // total 3 reached: the dump node
    ];
    for (got, want) in nodes.iter().zip(want) {
        assert_eq!((got.0.as_str(), got.1.as_str(), got.2), want);
    }
    assert_eq!(usage(&t, "node/168501"), 2);
    assert_eq!(usage(&t, "node/168502"), 1);
}

#[test]
fn hub_sets_the_node_last_and_undoes_if_it_cannot() {
    let t = TempTable::new("huborder");
    let args = hub_args(&[]);
    let mut ch = Channel::default();
    assert_eq!(serve(&t, &args, &mut ch).0, 0);
    let names: Vec<&str> = ch
        .sent
        .iter()
        .map(|c| c.split(' ').nth(2).unwrap())
        .collect();
    assert_eq!(names, ["FG_LEASE", "FG_VERDICT", "FG_NODE"]);
    // The node's SET fails: the slot is given back, exit 3.
    let mut p = AgiProcess::start(&t, &args);
    p.send(&format!(
        "{HEADER}200 result=1\n200 result=1\n510 Invalid or unknown command\n"
    ));
    while p.next_command().is_some() {}
    let (code, err) = p.finish();
    assert_eq!(code, 3);
    assert!(err.contains("given back"), "{err}");
    assert_eq!(
        usage(&t, "node/168501"),
        1,
        "only the first link holds a slot"
    );
    assert_eq!(usage(&t, "node/168502"), 0);
}

#[test]
fn custom_variable_names() {
    let t = TempTable::new("vars");
    let mut ch = Channel::default();
    let (code, err) = serve(
        &t,
        &[
            "link",
            "--node",
            "1999",
            "--max",
            "1",
            "--var",
            "LINKOK",
            "--lease-var",
            "LH",
        ],
        &mut ch,
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(ch.var("LINKOK"), Some("ADMIT"));
    let (code, _) = serve(&t, &["release", "--lease-var", "LH"], &mut ch);
    assert_eq!(code, 0);
    assert_eq!(usage(&t, "node/1999"), 0);
}

/// Runs `agi link` with `input` as everything Asterisk says; returns the
/// exit code, stderr and what the process sent.
fn link_with_input(t: &TempTable, input: &str, close: bool) -> (i32, String, Vec<String>) {
    let mut p = AgiProcess::start(t, &["link", "--node", "2000", "--max", "5"]);
    p.send(input);
    if close {
        p.close_stdin();
    }
    let mut sent = Vec::new();
    while let Some(line) = p.next_command() {
        sent.push(line);
    }
    let (code, err) = p.finish();
    (code, err, sent)
}

#[test]
fn malformed_input_gives_a_clear_error_and_changes_nothing() {
    let (t, _) = table_with_state("malformed");
    let before = snapshot(&t);
    let cases: &[(&str, &str)] = &[
        ("", "input closed while waiting for the agi_* header block"),
        ("agi_request: floodgate\nagi_channel: IAX2/x", "empty line that ends"),
        ("\n", "malformed header: empty"),
        ("hello world\n\n", "malformed header"),
        ("agi_channel: IAX2/x\n\n", "not agi_request"),
        ("agi_request: x\nagi channel: y\n\n", "does not start with `agi_<name>:`"),
        // A good header, then replies that are not AGI: the lease taken is
        // given back.
        ("{H}hello\n", "unknown reply \"hello\""),
        ("{H}200 result=1\n", "input closed while waiting for the reply"),
        ("{H}", "input closed while waiting for the reply"),
        ("{H}510 Invalid or unknown command\n", "510 Invalid or unknown command"),
        (
            "{H}511 Command Not Permitted on a dead channel\n",
            "511 Command Not Permitted",
        ),
        (
            "{H}520-Invalid command syntax.  Proper usage follows:\n Usage: SET VARIABLE <variablename> <value>\n520 End of proper usage.\n",
            "520 Invalid command syntax",
        ),
        ("{H}200 result=0\n", "unknown reply \"200 result=0\""),
    ];
    for (input, want) in cases {
        let input = input.replace("{H}", HEADER);
        let (code, err, sent) = link_with_input(&t, &input, true);
        assert_eq!(code, 3, "{input:?}: {err}");
        assert!(
            err.contains(want),
            "{input:?}: stderr {err:?} lacks {want:?}"
        );
        assert!(err.starts_with("floodgate: "), "{err}");
        if !input.starts_with(HEADER) {
            assert!(
                sent.is_empty(),
                "nothing is sent before a good header: {sent:?}"
            );
        } else {
            assert!(err.contains("was given back"), "{err}");
        }
        assert_eq!(snapshot(&t), before, "{input:?} changed the table");
    }
}

#[test]
fn a_hangup_line_undoes_the_link() {
    let (t, _) = table_with_state("hangupline");
    let before = snapshot(&t);
    // res_agi writes HANGUP, then still answers the dead-channel commands.
    let input = format!("{HEADER}HANGUP\n200 result=1\n200 result=1\n");
    let (code, err, sent) = link_with_input(&t, &input, false);
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains("hung up") && err.contains("given back"),
        "{err}"
    );
    assert_eq!(sent.len(), 2);
    assert_eq!(snapshot(&t), before);
    // HANGUP before the header's end: nothing is taken, nothing sent.
    let (code, err, sent) = link_with_input(&t, "agi_request: x\nHANGUP\n\n", false);
    assert_eq!(code, 3);
    assert!(err.contains("nothing was taken"), "{err}");
    assert!(sent.is_empty());
    assert_eq!(snapshot(&t), before);
}

#[test]
fn sighup_does_not_kill_it_and_undoes_the_link() {
    let (t, _) = table_with_state("sighup");
    let before = snapshot(&t);
    let mut p = AgiProcess::start(&t, &["link", "--node", "2000", "--max", "5"]);
    p.send(HEADER);
    let first = p.next_command().expect("SET VARIABLE FG_LEASE");
    assert!(first.starts_with("SET VARIABLE FG_LEASE"), "{first}");
    assert_eq!(usage(&t, "node/2000"), 2, "the new link holds a slot now");
    // What res_agi does to a local AGI when the channel hangs up.
    // SAFETY: signals our own child.
    unsafe { libc::kill(p.child.id() as libc::pid_t, libc::SIGHUP) };
    p.send("200 result=1\n");
    // The dead channel still answers.
    while let Some(_line) = p.next_command() {
        p.send("200 result=1\n");
    }
    let (code, err) = p.finish();
    assert_eq!(code, 3, "killed by SIGHUP instead? {err}");
    assert!(
        err.contains("hung up") && err.contains("given back"),
        "{err}"
    );
    assert_eq!(snapshot(&t), before);
}

#[test]
fn a_full_table_sets_error_and_exits_3() {
    let t = TempTable::new("full");
    // One lease record: the second node's link finds none.
    let shape = ["--capacity", "8", "--leases", "1"];
    let mut ch = Channel::default();
    let (code, err) = serve_with(&t, &shape, &["link", "--node", "1", "--max", "5"], &mut ch);
    assert_eq!(code, 0, "{err}");
    assert_eq!(ch.var("FG_VERDICT"), Some("ADMIT"));
    let mut ch2 = Channel::default();
    let (code, err) = serve_with(&t, &shape, &["link", "--node", "2", "--max", "5"], &mut ch2);
    assert_eq!(code, 3);
    assert!(err.contains("no free lease record"), "{err}");
    assert_eq!(ch2.var("FG_VERDICT"), Some("ERROR"));
    assert_eq!(ch2.var("FG_LEASE"), None);
    assert_eq!(usage(&t, "node/1"), 1);
    assert_eq!(usage(&t, "node/2"), 0);
}

#[test]
fn bad_agi_arguments_exit_2_before_reading_anything() {
    let t = TempTable::new("agiargs");
    let cases: &[(&[&str], &str)] = &[
        (&["link", "--node", "2000"], "--max"),
        (&["link", "--node", "20 00", "--max", "1"], "a node is"),
        (&["link", "--node", "2000", "--max", "x"], "'x'"),
        (
            &["link", "--node", "2000", "--max", "1", "--hold", "0"],
            "hold time",
        ),
        (
            &["link", "--node", "2000", "--max", "1", "--hold", "5w"],
            "unknown unit",
        ),
        (
            &["link", "--node", "2000", "--max", "1", "--var", "A B"],
            "channel variable",
        ),
        (
            &[
                "hub",
                "--members",
                "1,1",
                "--per-node",
                "5",
                "--total",
                "9",
                "--dump",
                "3",
            ],
            "listed twice",
        ),
        (
            &[
                "hub",
                "--members",
                "1,2",
                "--per-node",
                "5",
                "--total",
                "9",
                "--dump",
                "2",
            ],
            "dump node",
        ),
        (
            &["hub", "--members", "1,2", "--per-node", "5", "--dump", "3"],
            "--total",
        ),
        (&["release", "--lease", "abc"], "not a lease handle"),
        (&["frobnicate"], "frobnicate"),
    ];
    for (args, want) in cases {
        let mut p = AgiProcess::start(&t, args);
        // Whatever Asterisk sends is not read: the arguments are wrong.
        p.send(HEADER);
        let mut sent = Vec::new();
        while let Some(l) = p.next_command() {
            sent.push(l);
        }
        let (code, err) = p.finish();
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err:?} lacks {want:?}");
        assert!(sent.is_empty(), "{args:?}: {sent:?}");
        assert!(!t.path.exists(), "{args:?} made the table");
    }
    let r = cli(&t, &["--json", "agi", "release"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("--json"), "{r:?}");
}
