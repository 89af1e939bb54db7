//! "Bad input never hurts Redis": malformed calls get an error reply that
//! names the problem, binary keys work, random argument vectors never crash
//! the server or leave a module key without a TTL, OOM is refused cleanly,
//! and bad module arguments stop the server from starting.

mod common;

use std::cell::RefCell;
use std::time::Duration;

use common::*;
use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence, TestCaseError, TestRunner};

const REGRESSIONS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/proptest-regressions/bad_input.txt"
);

/// Every command of the module with a minimal valid argument list.
const VALID: [&[&str]; 9] = [
    &["FG.CHECK", "K", "TAILDROP", "3"],
    &["FG.RATE", "K", "3", "1000"],
    &["FG.ACQUIRE", "K", "3"],
    &["FG.RELEASE", "K", "0123456789abcdef"],
    &["FG.USAGE", "K"],
    &["FG.HUB", "K", "2", "4", "m1", "m2"],
    &["FG.RESET", "K"],
    &["FG.INFO", "K"],
    &["CL.THROTTLE", "K", "4", "1", "1"],
];

/// Minimum argument counts (after the command name).
fn min_args(name: &str) -> usize {
    match name {
        "FG.CHECK" | "FG.RATE" => 3,
        "FG.ACQUIRE" | "FG.RELEASE" => 2,
        "FG.HUB" | "CL.THROTTLE" => 4,
        _ => 1,
    }
}

fn with_key<'a>(cmd: &[&'a str], key: &'a str) -> Vec<&'a str> {
    cmd.iter()
        .map(|a| if *a == "K" { key } else { *a })
        .collect()
}

/// Redis still answers, and the errors before wrote no key.
fn assert_alive_and_unwritten(con: &mut Connection) {
    assert!(ping_ok(con));
    assert_eq!(keys(con), Vec::<Vec<u8>>::new(), "errors wrote nothing");
}

/// The reply must be an error whose text (case-insensitively) contains one
/// of `any`.
#[track_caller]
fn assert_err_mentions(con: &mut Connection, args: &[&str], any: &[&str]) -> String {
    let reply = call(con, args);
    let text = expect_err(&reply, &show_args(args));
    let lower = text.to_lowercase();
    assert!(
        any.iter().any(|w| lower.contains(&w.to_lowercase())),
        "{}: error {text:?} names none of {any:?}",
        show_args(args)
    );
    text
}

#[test]
fn wrong_arity_is_an_error_for_every_command() {
    let s = Server::start(ServerOpts::new());
    let mut con = s.con();
    for cmd in VALID {
        let cmd = with_key(cmd, "arity");
        let name = cmd[0];
        for n in 0..min_args(name) {
            assert_err_mentions(&mut con, &cmd[..=n], &["argument", "arity"]);
        }
    }
    // Too many arguments where the syntax has a fixed end.
    for args in [
        "FG.USAGE arity extra",
        "FG.RESET arity extra",
        "FG.INFO arity extra",
        "FG.RELEASE arity 0123456789abcdef extra",
        "FG.CHECK arity TAILDROP 3 INTERVAL 1000 extra",
        "FG.CHECK arity TAILDROP 3 INTERVAL",
        "FG.ACQUIRE arity 3 HOLD 1000 extra",
        "FG.ACQUIRE arity 3 HOLD",
        "CL.THROTTLE arity 4 1 1 1 extra",
        "FG.RATE arity 3 1000 ALIGNED MAXZERO REFUSE extra",
        "FG.RATE arity 3 1000 BOGUS",
        "FG.RATE arity 3 1000 MAXZERO",
        "FG.RATE arity 3 1000 MAXZERO SOMETIMES",
    ] {
        let argv: Vec<&str> = args.split_whitespace().collect();
        assert_err_mentions(
            &mut con,
            &argv,
            &[
                "argument", "arity", "syntax", "option", "unknown", "extra", "bogus", "maxzero",
                "hold", "interval",
            ],
        );
    }
    // Without TESTCLOCK, NOW is just an (unexpected) argument.
    for args in [
        "FG.CHECK arity TAILDROP 3 NOW 1",
        "FG.RESET arity NOW 1",
        "CL.THROTTLE arity 4 1 1 NOW 1",
    ] {
        let argv: Vec<&str> = args.split_whitespace().collect();
        expect_err(&call(&mut con, &argv), args);
    }
    assert_alive_and_unwritten(&mut con);
}

#[test]
fn unknown_and_misplaced_algorithms_are_named() {
    let s = Server::start(ServerOpts::new());
    let mut con = s.con();
    assert_err_mentions(&mut con, &["FG.CHECK", "a", "FOO", "3"], &["algorithm"]);
    assert_err_mentions(&mut con, &["FG.CHECK", "a", "", "3"], &["algorithm"]);
    assert_err_mentions(
        &mut con,
        &["FG.CHECK", "a", "TAILDROPX", "3"],
        &["algorithm"],
    );
    assert_err_mentions(
        &mut con,
        &["FG.CHECK", "a", "FEEDBACK", "3"],
        &["feedback", "host"],
    );
    assert_err_mentions(
        &mut con,
        &["FG.CHECK", "a", "NETWORK", "3"],
        &["network", "host"],
    );
    assert_err_mentions(&mut con, &["FG.CHECK", "a", "INTERVAL", "3"], &["FG.RATE"]);
    assert_err_mentions(&mut con, &["FG.CHECK", "a", "SLOTS", "3"], &["FG.ACQUIRE"]);
    // Case-insensitive names are accepted.
    assert_eq!(int(&cmd(&mut con, "FG.CHECK b taildrop 3")), 1);
    assert_eq!(int(&cmd(&mut con, "FG.CHECK c Gcra 3")), 1);
    assert_eq!(keys(&mut con), vec![b"b".to_vec(), b"c".to_vec()]);
}

#[test]
fn numbers_that_do_not_parse_or_are_out_of_range_are_named() {
    let s = Server::start(ServerOpts::new());
    let mut con = s.con();
    let number = ["integer", "number", "numeric", "range"];
    // (template with X for the bad value, words the error may name)
    let templates: [(&str, &[&str]); 13] = [
        ("FG.CHECK n TAILDROP X", &["limit"]),
        ("FG.CHECK n TAILDROP 3 INTERVAL X", &["interval"]),
        ("FG.RATE n X 1000", &["max", "limit"]),
        ("FG.RATE n 3 X", &["interval"]),
        ("FG.ACQUIRE n X", &["max", "limit"]),
        ("FG.ACQUIRE n 3 HOLD X", &["hold"]),
        ("FG.HUB n X 4 m1", &["max", "member", "limit"]),
        ("FG.HUB n 2 X m1", &["max", "total", "limit"]),
        ("FG.HUB n 2 4 m1 HOLD X", &["hold"]),
        ("CL.THROTTLE n X 1 1", &["burst"]),
        ("CL.THROTTLE n 4 X 1", &["count", "rate"]),
        ("CL.THROTTLE n 4 1 X", &["period"]),
        ("CL.THROTTLE n 4 1 1 X", &["quantity"]),
    ];
    for (template, names) in templates {
        for bad in [
            "abc",
            "1.5",
            "",
            "1e3",
            " 7",
            "0x10",
            "99999999999999999999",
            "-99999999999999999999",
        ] {
            let argv: Vec<&str> = template
                .split(' ')
                .map(|a| if a == "X" { bad } else { a })
                .collect();
            let mut any: Vec<&str> = number.to_vec();
            any.extend_from_slice(names);
            assert_err_mentions(&mut con, &argv, &any);
        }
    }
    // Out of range for the meaning, though they parse.
    for (args, any) in [
        ("FG.CHECK r TAILDROP 3 INTERVAL -1", &["interval"][..]),
        ("FG.CHECK r TAILDROP 3 INTERVAL 0", &["interval"]),
        ("FG.CHECK r TAILDROP 4294967296", &["limit"]),
        ("FG.CHECK r TAILDROP -1", &["limit"]),
        ("FG.CHECK r SLIDING 4294967296", &["limit"]),
        ("FG.CHECK r RED 0", &["limit"]),
        ("FG.CHECK r REDP 0", &["limit"]),
        ("FG.CHECK r GCRA 0", &["limit"]),
        ("FG.RATE r 3 0", &["interval"]),
        ("FG.RATE r 3 -5", &["interval"]),
        ("FG.RATE r 2147483648 1000", &["max", "limit", "range"]),
        ("FG.ACQUIRE r 2147483648", &["max", "limit", "range"]),
        ("FG.ACQUIRE r 3 HOLD 0", &["hold"]),
        ("FG.ACQUIRE r 3 HOLD -1", &["hold"]),
        ("FG.HUB r 2 4 m1 HOLD 0", &["hold"]),
        ("CL.THROTTLE r -1 1 1", &["burst"]),
        ("CL.THROTTLE r 4 0 1", &["count", "rate"]),
        ("CL.THROTTLE r 4 -1 1", &["count", "rate"]),
        ("CL.THROTTLE r 4 1 0", &["period"]),
        ("CL.THROTTLE r 4 1 -1", &["period"]),
        ("CL.THROTTLE r 4 1 1 -1", &["quantity"]),
    ] {
        let argv: Vec<&str> = args.split_whitespace().collect();
        assert_err_mentions(&mut con, &argv, any);
    }
    assert_alive_and_unwritten(&mut con);
}

#[test]
fn wrong_types_are_refused_and_left_untouched() {
    let s = Server::start(ServerOpts::new());
    let mut con = s.con();
    cmd(&mut con, "RPUSH lk a b");
    cmd(&mut con, "SET sk hello");
    call(&mut con, &[&b"SET"[..], b"fk", b"FG"]); // the magic alone, no state
    call(
        &mut con,
        &[
            &b"SET"[..],
            b"gk",
            b"FG\xff\xff\xff\xffgarbage that is not a state",
        ],
    );
    for key in ["lk", "sk", "fk", "gk"] {
        for cmd in VALID {
            let argv = with_key(cmd, key);
            let reply = call(&mut con, &argv);
            let text = expect_err(&reply, &show_args(&argv));
            if key == "lk" || key == "sk" {
                assert!(
                    text.starts_with("WRONGTYPE"),
                    "{}: {text:?} is not WRONGTYPE",
                    show_args(&argv)
                );
            }
        }
    }
    assert_eq!(int(&cmd(&mut con, "LLEN lk")), 2);
    assert_eq!(string(&cmd(&mut con, "GET sk")), "hello");
    assert_eq!(bytes(&cmd(&mut con, "GET fk")), b"FG");
    for key in ["lk", "sk", "fk", "gk"] {
        assert_eq!(
            int(&cmd(&mut con, &format!("PTTL {key}"))),
            -1,
            "{key} got a TTL"
        );
    }

    // Keys of another FG command family.
    assert_eq!(int(&cmd(&mut con, "FG.CHECK fam:check TAILDROP 3")), 1);
    assert_eq!(int(&cmd(&mut con, "FG.RATE fam:rate 3 1000")), 1);
    assert_eq!(int(&array(&cmd(&mut con, "FG.ACQUIRE fam:sem 3"))[0]), 1);
    assert!(!is_nil(&array(&cmd(&mut con, "FG.HUB fam:hub 2 4 m1"))[0]));
    assert_eq!(
        int(&array(&cmd(&mut con, "CL.THROTTLE fam:cell 4 1 1"))[0]),
        0
    );
    for args in [
        "FG.RATE fam:check 3 1000",
        "FG.ACQUIRE fam:check 3",
        "FG.HUB fam:check 2 4 m1",
        "CL.THROTTLE fam:check 4 1 1",
        "FG.RELEASE fam:check 0123456789abcdef",
        "FG.CHECK fam:rate TAILDROP 3",
        "FG.ACQUIRE fam:rate 3",
        "CL.THROTTLE fam:rate 4 1 1",
        "FG.CHECK fam:sem TAILDROP 3",
        "FG.RATE fam:sem 3 1000",
        "CL.THROTTLE fam:sem 4 1 1",
        "FG.CHECK fam:hub TAILDROP 3",
        "FG.CHECK fam:cell TAILDROP 3",
        "FG.RATE fam:cell 3 1000",
        "FG.ACQUIRE fam:cell 3",
    ] {
        let argv: Vec<&str> = args.split_whitespace().collect();
        let text = expect_err(&call(&mut con, &argv), args);
        assert!(
            text.starts_with("WRONGTYPE"),
            "{args}: {text:?} is not WRONGTYPE"
        );
    }
    assert!(ping_ok(&mut con));
}

#[test]
fn binary_keys_and_members_work() {
    let s = Server::start(ServerOpts::new());
    let mut con = s.con();
    let all: Vec<u8> = (0..=255u8).collect();
    let mut made: Vec<Vec<u8>> = Vec::new();
    for (i, body) in [all.clone(), b"\r\n".to_vec(), b"\x00".to_vec(), Vec::new()]
        .into_iter()
        .enumerate()
    {
        let key = |family: u8| {
            let mut k = vec![family, i as u8];
            k.extend_from_slice(&body);
            k
        };
        let (kc, ks, kh, kl) = (key(b'c'), key(b's'), key(b'h'), key(b'l'));
        let c = |k: &[u8], rest: &[&[u8]]| {
            let mut v: Vec<Vec<u8>> = vec![k.to_vec()];
            v.extend(rest.iter().map(|r| r.to_vec()));
            v
        };
        let mut argv = c(&kc, &[b"TAILDROP", b"1"]);
        argv.insert(0, b"FG.CHECK".to_vec());
        assert_eq!(int(&call(&mut con, &argv)), 1, "{}", show_args(&argv));
        assert_eq!(int(&call(&mut con, &argv)), -1, "{}", show_args(&argv));
        assert!(!array(&call(&mut con, &[&b"FG.INFO"[..], &kc])).is_empty());

        let got = array(&call(&mut con, &[&b"FG.ACQUIRE"[..], &ks, b"1"]));
        assert_eq!(int(&got[0]), 1);
        let lease = bytes(&got[1]);
        assert_eq!(int(&call(&mut con, &[&b"FG.USAGE"[..], &ks])), 1);
        assert_eq!(int(&call(&mut con, &[&b"FG.RELEASE"[..], &ks, &lease])), 1);
        assert_eq!(int(&call(&mut con, &[&b"FG.USAGE"[..], &ks])), 0);

        // Members are binary too: the reply names the member byte for byte.
        let member = key(b'm');
        let got = array(&call(&mut con, &[&b"FG.HUB"[..], &kh, b"1", b"1", &member]));
        assert_eq!(bytes(&got[0]), member);
        let got = array(&call(&mut con, &[&b"FG.HUB"[..], &kh, b"1", b"1", &member]));
        assert!(is_nil(&got[0]), "hub full: {got:?}");

        let r = array(&call(
            &mut con,
            &[&b"CL.THROTTLE"[..], &kl, b"0", b"1", b"60"],
        ));
        assert_eq!(int(&r[0]), 0);
        let r = array(&call(
            &mut con,
            &[&b"CL.THROTTLE"[..], &kl, b"0", b"1", b"60"],
        ));
        assert_eq!(int(&r[0]), 1);
        made.extend([kc, ks, kh, kl]);
    }
    let mut present = keys(&mut con);
    // A semaphore with no lease left may be deleted; every other key exists byte for byte.
    for k in &made {
        if k[0] == b's' {
            present.retain(|p| p != k);
            continue;
        }
        assert!(present.contains(k), "key {} missing", show_bytes(k));
        assert!(int(&call(&mut con, &[&b"PTTL"[..], k])) > 0);
    }
    made.retain(|k| k[0] != b's');
    made.sort();
    assert_eq!(present, made);
}

#[test]
fn a_lone_now_pair_is_an_arity_error() {
    // With TESTCLOCK, `NOW <ns>` as the only arguments leaves no key.
    let mut s = Server::start(ServerOpts::new().module("TESTCLOCK yes"));
    let mut con = s.con();
    for name in NAMES {
        let reply = match try_pipeline(&mut con, &[vec![name, "NOW", "0"]]) {
            Ok(mut r) => r.remove(0),
            Err(e) => {
                std::thread::sleep(Duration::from_millis(300));
                panic!(
                    "{name} NOW 0 broke the connection ({e}); server alive: {}\n{}",
                    s.is_alive(),
                    crash_summary(&s.log())
                );
            }
        };
        let text = expect_err(&reply, &format!("{name} NOW 0"));
        assert!(text.contains("argument"), "{name} NOW 0: {text}");
    }
    assert!(ping_ok(&mut con));
}

// ------------------------------------------------------------ proptest

const NAMES: [&str; 9] = [
    "FG.CHECK",
    "FG.RATE",
    "FG.ACQUIRE",
    "FG.RELEASE",
    "FG.USAGE",
    "FG.HUB",
    "FG.RESET",
    "FG.INFO",
    "CL.THROTTLE",
];

/// Keys the test writes itself (not the module): may lack a TTL.
const FOREIGN: [&str; 3] = ["lk", "sk", "fg"];

fn token() -> impl Strategy<Value = Vec<u8>> {
    let words = prop::sample::select(vec![
        "k1",
        "k2",
        "lk",
        "sk",
        "fg",
        "TAILDROP",
        "RED",
        "REDP",
        "SLIDING",
        "NOP",
        "GCRA",
        "FEEDBACK",
        "NETWORK",
        "SLOTS",
        "INTERVAL",
        "HOLD",
        "NOW",
        "ALIGNED",
        "FIRST",
        "MAXZERO",
        "REFUSE",
        "MODHASH",
        "UNLIMITED",
        "m1",
        "m2",
        "0123456789abcdef",
        "ffffffffffffffff",
    ]);
    let huge = prop::sample::select(vec![
        "99999999999999999999",
        "-99999999999999999999",
        "18446744073709551615",
        "18446744073709551616",
        "9223372036854775807",
        "9223372036854775808",
        "-9223372036854775808",
        "4294967295",
        "4294967296",
        "2147483647",
        "2147483648",
        "-2147483649",
        "1.5",
        "1e3",
        "+1",
        "0x10",
        "",
    ]);
    prop_oneof![
        4 => words.prop_map(|w| w.as_bytes().to_vec()),
        3 => (-5i64..2000).prop_map(|n| n.to_string().into_bytes()),
        2 => huge.prop_map(|w| w.as_bytes().to_vec()),
        1 => (i64::MIN..0).prop_map(|n| n.to_string().into_bytes()),
        1 => any::<u64>().prop_map(|n| n.to_string().into_bytes()),
        1 => prop::collection::vec(any::<u8>(), 0..20),
    ]
}

/// A `NOW` value: around the real clock (past, present, future), or extreme.
fn now_token() -> impl Strategy<Value = Vec<u8>> {
    let real = now_ns();
    prop_oneof![
        (0u64..4 * S).prop_map(move |d| (real - 2 * S + d).to_string().into_bytes()),
        Just(b"0".to_vec()),
        Just(b"1".to_vec()),
        Just(i64::MAX.to_string().into_bytes()),
        any::<u64>().prop_map(|n| n.to_string().into_bytes()),
        token(),
    ]
}

/// A command name (any case) with 0..8 arguments, often ending in a
/// `NOW <ns>` pair (which only the TESTCLOCK server takes as a time).
fn argv() -> impl Strategy<Value = Vec<Vec<u8>>> {
    (
        0usize..NAMES.len(),
        any::<bool>(),
        prop::collection::vec(token(), 0..8),
        prop::option::weighted(0.3, now_token()),
    )
        .prop_map(|(n, lower, args, now)| {
            let name = if lower {
                NAMES[n].to_lowercase()
            } else {
                NAMES[n].to_string()
            };
            let mut v = vec![name.into_bytes()];
            v.extend(args);
            if let Some(t) = now {
                v.push(b"NOW".to_vec());
                v.push(t);
            }
            v
        })
}

/// A reply is an integer, an error starting with ERR or WRONGTYPE, or a flat
/// array of integers, strings and nils.
fn reply_shape_ok(v: &Value) -> bool {
    match v {
        Value::Int(_) => true,
        Value::ServerError(_) => {
            let t = err_text(v).unwrap();
            t.starts_with("ERR") || t.starts_with("WRONGTYPE")
        }
        Value::Array(items) => items.iter().all(|i| {
            matches!(
                i,
                Value::Int(_) | Value::BulkString(_) | Value::SimpleString(_) | Value::Nil
            )
        }),
        _ => false,
    }
}

fn prepare(con: &mut Connection) {
    cmd(con, "DEL lk sk fg");
    cmd(con, "RPUSH lk a");
    cmd(con, "SET sk hello");
    call(con, &[&b"SET"[..], b"fg", b"FG\x01\x00\x00garbage"]);
}

/// A server under fuzzing: restarted (same port and dir, log appended) when
/// a case killed it, so every case, shrinking included, meets a live server.
struct Target {
    name: &'static str,
    server: Server,
    con: Connection,
    crashes: usize,
}

impl Target {
    fn new(name: &'static str, opts: ServerOpts) -> Target {
        let server = Server::start(opts);
        let mut con = server.con();
        prepare(&mut con);
        Target {
            name,
            server,
            con,
            crashes: 0,
        }
    }

    fn revive(&mut self) {
        if !self.server.is_alive() {
            self.crashes += 1;
            self.server.restart();
        }
        self.con = self.server.con();
        prepare(&mut self.con);
    }

    /// Runs one batch and checks the invariants.
    fn case(&mut self, batch: &[Vec<Vec<u8>>]) -> Result<(), TestCaseError> {
        let name = self.name;
        let shown = || batch.iter().map(|a| show_args(a)).collect::<Vec<_>>();
        let replies = match try_pipeline(&mut self.con, batch) {
            Ok(r) => r,
            Err(e) => {
                // Give a dying server a moment to finish writing its report.
                std::thread::sleep(Duration::from_millis(300));
                let alive = self.server.is_alive();
                let summary = crash_summary(&self.server.log());
                self.revive();
                return Err(TestCaseError::fail(format!(
                    "{name} server: batch {:?} broke the connection ({e}); server alive: {alive}\n{summary}",
                    shown()
                )));
            }
        };
        for (argv, reply) in batch.iter().zip(&replies) {
            prop_assert!(
                reply_shape_ok(reply),
                "{} server: {} -> {:?}",
                name,
                show_args(argv),
                reply
            );
        }
        prop_assert!(
            ping_ok(&mut self.con),
            "{} server does not answer PING",
            name
        );
        prop_assert!(self.server.is_alive(), "{} server died", name);
        // Every key the module wrote carries a TTL.
        for key in keys(&mut self.con) {
            if FOREIGN.iter().any(|f| f.as_bytes() == key.as_slice()) {
                continue;
            }
            let pttl = int(&call(&mut self.con, &[&b"PTTL"[..], &key]));
            prop_assert!(
                pttl != -1,
                "{} server: key {} has no TTL after {:?}",
                name,
                show_bytes(&key),
                shown()
            );
        }
        // The foreign keys are untouched.
        prop_assert_eq!(int(&cmd(&mut self.con, "LLEN lk")), 1);
        prop_assert_eq!(string(&cmd(&mut self.con, "GET sk")), "hello");
        Ok(())
    }
}

#[test]
fn random_argument_vectors_never_hurt_the_server() {
    let targets = RefCell::new([
        Target::new("plain", ServerOpts::new()),
        Target::new(
            "TESTCLOCK",
            ServerOpts::new().module("TESTCLOCK yes INTERVAL 1000"),
        ),
    ]);
    let mut runner = TestRunner::new(Config {
        cases: proptest_cases(256),
        // Shrinking a crash restarts the server per attempt: bound it.
        max_shrink_time: 60_000,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(REGRESSIONS))),
        ..Config::default()
    });
    let result = runner.run(&prop::collection::vec(argv(), 1..30), |batch| {
        for t in targets.borrow_mut().iter_mut() {
            t.case(&batch)?;
        }
        Ok(())
    });
    let crashes: Vec<usize> = targets.borrow().iter().map(|t| t.crashes).collect();
    if let Err(e) = result {
        panic!(
            "{e}\n(server restarts after crashes while searching: plain {}, TESTCLOCK {})",
            crashes[0], crashes[1]
        );
    }
    assert_eq!(crashes, [0, 0], "a server crashed");
}

// ------------------------------------------------------------ OOM

#[test]
fn out_of_memory_refuses_writes_and_keeps_reads() {
    let s = Server::start(ServerOpts::new().args("--maxmemory 1mb --maxmemory-policy noeviction"));
    let mut con = s.con();
    let value = "x".repeat(1000);
    // Pipelined batches first (fast), then single SETs: a pipeline's own
    // query buffer counts as used memory while it runs, so an OOM seen inside
    // a batch can vanish once the batch is done.
    let mut n = 0u64;
    let mut set_oom = |con: &mut Connection, batch: usize| -> bool {
        let cmds: Vec<Vec<String>> = (0..batch)
            .map(|_| {
                n += 1;
                vec!["SET".into(), format!("fill:{n}"), value.clone()]
            })
            .collect();
        pipeline(con, &cmds).iter().any(|r| match err_text(r) {
            Some(t) => {
                assert!(t.starts_with("OOM"), "unexpected error while filling: {t}");
                true
            }
            None => false,
        })
    };
    let mut oom = false;
    for _ in 0..100 {
        if set_oom(&mut con, 100) {
            break;
        }
    }
    for _ in 0..2000 {
        if set_oom(&mut con, 1) {
            oom = true;
            break;
        }
    }
    assert!(oom, "SETs of 1 KB never hit maxmemory 1mb");
    // Right at the limit, freeing a client buffer can bring memory back
    // under it: go well over (1 MB more with the limit lifted), then put the
    // limit back.
    assert_eq!(cmd(&mut con, "CONFIG SET maxmemory 0"), Value::Okay);
    assert!(!set_oom(&mut con, 1000), "OOM without a limit");
    assert_eq!(cmd(&mut con, "CONFIG SET maxmemory 1mb"), Value::Okay);
    let probe = expect_err(&cmd(&mut con, "SET probe x"), "SET over maxmemory");
    assert!(probe.starts_with("OOM"), "{probe}");
    for args in [
        "FG.CHECK new TAILDROP 3",
        "FG.RATE new 3 1000",
        "FG.ACQUIRE new 3",
        "FG.HUB new 2 4 m1",
        "CL.THROTTLE new 4 1 1",
    ] {
        let argv: Vec<&str> = args.split_whitespace().collect();
        let text = expect_err(&call(&mut con, &argv), args);
        assert!(
            text.starts_with("OOM"),
            "{args}: {text:?} is not an OOM error"
        );
    }
    // Read-only commands still answer.
    assert_eq!(int(&cmd(&mut con, "FG.USAGE new")), 0);
    assert_eq!(array(&cmd(&mut con, "FG.INFO new")), Vec::<Value>::new());
    assert!(ping_ok(&mut con));
    assert_eq!(int(&cmd(&mut con, "EXISTS new")), 0);
}

// ------------------------------------------------------------ module arguments

#[test]
fn bad_module_arguments_stop_the_server_and_name_the_problem() {
    for (args, names) in [
        ("INTERVAL abc", &["interval"][..]),
        ("INTERVAL 0", &["interval"]),
        ("INTERVAL -5", &["interval"]),
        ("INTERVAL", &["interval"]),
        ("INTERVAL 99999999999999999999", &["interval"]),
        ("TESTCLOCK maybe", &["testclock"]),
        ("TESTCLOCK", &["testclock"]),
        ("FOO 1", &["foo"]),
    ] {
        let opts = ServerOpts::new().module(args);
        match Server::try_start(opts) {
            Ok(mut s) => {
                let log = s.tail();
                s.kill();
                panic!("module args {args:?}: the server started; log:\n{log}");
            }
            Err(e) => {
                let status = e.status.unwrap_or_else(|| {
                    panic!(
                        "module args {args:?}: server neither exited nor answered; log:\n{}",
                        e.log
                    )
                });
                assert!(
                    !status.success(),
                    "module args {args:?}: exit status {status}"
                );
                // Lines the module logged (not the path on the command line).
                let lower: String = e
                    .log
                    .lines()
                    .filter(|l| !l.contains("libfloodgate_redis.so"))
                    .collect::<Vec<_>>()
                    .join("\n")
                    .to_lowercase();
                assert!(
                    names.iter().any(|n| lower.contains(n)),
                    "module args {args:?}: log names none of {names:?}:\n{}",
                    e.log
                );
            }
        }
    }
}
