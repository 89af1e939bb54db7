//! Throughput of two-step operations against a Redis server, for the Redis
//! module benchmark (`benches/redis-bench.sh`, BENCHMARKS.md "Redis module").
//!
//! redis-benchmark sends one command shape and cannot feed a reply into the
//! next command, so `FG.ACQUIRE` + `FG.RELEASE` (the release names the
//! lease the acquire returned) is measured here, together with a plain
//! Redis pair driven exactly the same way, for the ratio. So is
//! mod_hiredis's own interval limit (INCR, then EXPIRE only when the count
//! is 1: the second command depends on the first reply), next to FG.CHECK
//! and the Lua script in the same harness:
//!
//! ```text
//! redis_pairs PORT MODE OPS [CONNS] [PIPELINE] [KEYS]
//!   MODE acquire-release  FG.ACQUIRE fgp:K 1000000, then FG.RELEASE fgp:K <lease>
//!        set-get          SET setp:K x, then GET setp:K
//!        incr-expire      INCR ie:K, then EXPIRE ie:K 1 only where INCR replied 1
//!                         (mod_hiredis's interval limit: two commands, two round trips)
//!        evalsha          EVALSHA of the INCR+EXPIRE Lua script on lua:K (one step)
//!        check            FG.CHECK fgc:K TAILDROP 1000000 INTERVAL 1000 (one step)
//!   OPS  operations (pairs, or decisions) in all; CONNS 50, PIPELINE 16, KEYS 100000
//! ```
//!
//! One client thread drives CONNS connections in a ring, like
//! redis-benchmark's event loop: each connection always has one pipeline of
//! PIPELINE commands in flight, and as soon as a connection's replies are
//! read its next pipeline (the second step of the same PIPELINE operations,
//! or the first step of the next ones) is sent. Keys are uniform over KEYS
//! (`prefix:%012d`, as redis-benchmark's `__rand_int__`). Every reply is
//! checked: an error reply, a refused acquire, a failed release or a wrong
//! GET value makes the run fail, so a fast run is never a run of errors.
//!
//! Prints one line: `MODE,ops_per_s,commands_per_s,seconds,extra` where
//! `extra` counts the EXPIREs sent (incr-expire) or is 0.

use std::process::ExitCode;
use std::time::Instant;

use redis::{Connection, Value};

const LUA: &str = "local c = redis.call('INCR', KEYS[1]) if c == 1 then redis.call('EXPIRE', KEYS[1], ARGV[2]) end if c > tonumber(ARGV[1]) then return -1 end return 1";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    AcquireRelease,
    SetGet,
    IncrExpire,
    EvalSha,
    Check,
}

impl Mode {
    fn parse(s: &str) -> Option<Mode> {
        Some(match s {
            "acquire-release" => Mode::AcquireRelease,
            "set-get" => Mode::SetGet,
            "incr-expire" => Mode::IncrExpire,
            "evalsha" => Mode::EvalSha,
            "check" => Mode::Check,
            _ => return None,
        })
    }

    fn prefix(self) -> &'static str {
        match self {
            Mode::AcquireRelease => "fgp",
            Mode::SetGet => "setp",
            Mode::IncrExpire => "ie",
            Mode::EvalSha => "lua",
            Mode::Check => "fgc",
        }
    }

    fn two_steps(self) -> bool {
        !matches!(self, Mode::EvalSha | Mode::Check)
    }
}

/// One connection's state in the ring.
struct Slot {
    con: Connection,
    /// The keys of the operations in flight.
    keys: Vec<String>,
    /// Step 2's arguments (leases), or which keys need an EXPIRE.
    second: Vec<Option<Vec<u8>>>,
    /// Which step is in flight (0: nothing, 1 or 2).
    step: u8,
    /// Commands in flight.
    in_flight: usize,
}

struct Bench {
    mode: Mode,
    pipeline: usize,
    keys: u64,
    rng: u64,
    sha: String,
    /// Operations not yet started.
    left: u64,
    commands: u64,
    expires: u64,
}

fn fail(msg: String) -> ! {
    eprintln!("redis_pairs: {msg}");
    std::process::exit(1);
}

impl Bench {
    fn next_key(&mut self) -> String {
        // xorshift64*: cheap, and the same key distribution in every mode.
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        let r = self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d) % self.keys;
        format!("{}:{r:012}", self.mode.prefix())
    }

    /// Sends step 1 of up to `pipeline` new operations; false when none left.
    fn start(&mut self, s: &mut Slot) -> bool {
        let n = self.left.min(self.pipeline as u64) as usize;
        if n == 0 {
            s.step = 0;
            return false;
        }
        self.left -= n as u64;
        s.keys.clear();
        let mut p = redis::pipe();
        for _ in 0..n {
            let k = self.next_key();
            match self.mode {
                Mode::AcquireRelease => p.cmd("FG.ACQUIRE").arg(&k).arg(1_000_000),
                Mode::SetGet => p.cmd("SET").arg(&k).arg("x"),
                Mode::IncrExpire => p.cmd("INCR").arg(&k),
                Mode::EvalSha => p
                    .cmd("EVALSHA")
                    .arg(&self.sha)
                    .arg(1)
                    .arg(&k)
                    .arg(1_000_000)
                    .arg(1),
                Mode::Check => p
                    .cmd("FG.CHECK")
                    .arg(&k)
                    .arg("TAILDROP")
                    .arg(1_000_000)
                    .arg("INTERVAL")
                    .arg(1000),
            };
            s.keys.push(k);
        }
        self.send(s, &p.get_packed_pipeline(), n, 1);
        true
    }

    fn send(&mut self, s: &mut Slot, packed: &[u8], n: usize, step: u8) {
        s.con
            .send_packed_command(packed)
            .unwrap_or_else(|e| fail(format!("send: {e}")));
        s.step = step;
        s.in_flight = n;
        self.commands += n as u64;
    }

    /// Reads the replies in flight on `s` and sends what follows.
    fn advance(&mut self, s: &mut Slot) -> bool {
        let mut replies = Vec::with_capacity(s.in_flight);
        for _ in 0..s.in_flight {
            match s.con.recv_response() {
                Ok(v) => replies.push(v),
                Err(e) => fail(format!("reply: {e}")),
            }
        }
        match (s.step, self.mode.two_steps()) {
            (1, true) => {
                s.second.clear();
                for v in &replies {
                    s.second.push(self.first_reply(v));
                }
                let mut p = redis::pipe();
                let mut n = 0;
                for (k, a) in s.keys.iter().zip(&s.second) {
                    match (self.mode, a) {
                        (Mode::AcquireRelease, Some(lease)) => {
                            p.cmd("FG.RELEASE").arg(k).arg(&lease[..]);
                        }
                        (Mode::SetGet, _) => {
                            p.cmd("GET").arg(k);
                        }
                        (Mode::IncrExpire, Some(_)) => {
                            p.cmd("EXPIRE").arg(k).arg(1);
                            self.expires += 1;
                        }
                        _ => continue,
                    }
                    n += 1;
                }
                if n == 0 {
                    return self.start(s);
                }
                self.send(s, &p.get_packed_pipeline(), n, 2);
                true
            }
            (1, false) => {
                for v in &replies {
                    // Limits of 1000000 per window: every call passes.
                    if *v != Value::Int(1) {
                        fail(format!("{} replied {v:?}", args_name(self.mode)));
                    }
                }
                self.start(s)
            }
            _ => {
                for v in &replies {
                    let ok = match self.mode {
                        Mode::AcquireRelease => *v == Value::Int(1),
                        Mode::SetGet => matches!(v, Value::BulkString(b) if b == b"x"),
                        Mode::IncrExpire => *v == Value::Int(1),
                        Mode::EvalSha | Mode::Check => false,
                    };
                    if !ok {
                        fail(format!("unexpected second reply {v:?}"));
                    }
                }
                self.start(s)
            }
        }
    }

    /// Checks step 1's reply; what step 2 needs (a lease, or whether the
    /// key needs an EXPIRE).
    fn first_reply(&self, v: &Value) -> Option<Vec<u8>> {
        match (self.mode, v) {
            (Mode::AcquireRelease, Value::Array(a)) => match &a[..] {
                [Value::Int(1), Value::BulkString(lease)] => Some(lease.clone()),
                _ => fail(format!("FG.ACQUIRE replied {v:?}")),
            },
            (Mode::SetGet, Value::Okay) => None,
            (Mode::IncrExpire, Value::Int(1)) => Some(Vec::new()),
            (Mode::IncrExpire, Value::Int(_)) => None,
            _ => fail(format!("unexpected first reply {v:?}")),
        }
    }
}

fn args_name(m: Mode) -> &'static str {
    match m {
        Mode::Check => "FG.CHECK",
        _ => "EVALSHA",
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 3 {
        eprintln!("usage: redis_pairs PORT acquire-release|set-get|incr-expire|evalsha|check OPS [CONNS] [PIPELINE] [KEYS]");
        return ExitCode::from(2);
    }
    let num = |i: usize, default: u64| -> u64 {
        args.get(i).map_or(default, |s| {
            s.parse()
                .unwrap_or_else(|_| fail(format!("not a number: {s}")))
        })
    };
    let port = num(0, 0);
    let Some(mode) = Mode::parse(&args[1]) else {
        fail(format!("unknown mode {}", args[1]));
    };
    let ops = num(2, 0);
    let conns = num(3, 50).max(1) as usize;
    let pipeline = num(4, 16).max(1) as usize;
    let keys = num(5, 100_000).max(1);

    // No CLIENT SETINFO on connect: Redis 7.0 answers it with an error,
    // and redis-bench.sh requires a run without error replies.
    let info =
        redis::IntoConnectionInfo::into_connection_info(format!("redis://127.0.0.1:{port}/"))
            .unwrap_or_else(|e| fail(format!("address: {e}")));
    let settings = info.redis_settings().clone().set_skip_set_lib_name();
    let client = redis::Client::open(info.set_redis_settings(settings))
        .unwrap_or_else(|e| fail(format!("client: {e}")));
    let mut slots: Vec<Slot> = (0..conns)
        .map(|_| Slot {
            con: client
                .get_connection()
                .unwrap_or_else(|e| fail(format!("connect: {e}"))),
            keys: Vec::with_capacity(pipeline),
            second: Vec::with_capacity(pipeline),
            step: 0,
            in_flight: 0,
        })
        .collect();
    let sha: String = if mode == Mode::EvalSha {
        redis::cmd("SCRIPT")
            .arg("LOAD")
            .arg(LUA)
            .query(&mut slots[0].con)
            .unwrap_or_else(|e| fail(format!("SCRIPT LOAD: {e}")))
    } else {
        String::new()
    };
    let mut b = Bench {
        mode,
        pipeline,
        keys,
        rng: 0x9e37_79b9_7f4a_7c15,
        sha,
        left: ops,
        commands: 0,
        expires: 0,
    };

    let t = Instant::now();
    let mut active: Vec<usize> = Vec::with_capacity(conns);
    for (i, s) in slots.iter_mut().enumerate() {
        if b.start(s) {
            active.push(i);
        }
    }
    while !active.is_empty() {
        active.retain(|&i| b.advance(&mut slots[i]));
    }
    let secs = t.elapsed().as_secs_f64();
    println!(
        "{},{:.0},{:.0},{:.3},{}",
        args[1],
        ops as f64 / secs,
        b.commands as f64 / secs,
        secs,
        b.expires
    );
    ExitCode::SUCCESS
}
