//! `floodgate simulate`: replays modelled or captured traffic through one or
//! more limiters, exactly as the core would decide in production (time is
//! an argument, so a day of traffic replays in seconds), and shows what
//! passes: a chart (SVG, and PNG when asked), a summary table or `--json`.
//!
//! * [`model`]: traffic models (`const`, `ramp`, `square`, `poisson`, sums).
//! * [`capture`]: SIP requests from pcap / pcapng captures, and CSV lines.
//! * [`sip`]: the request line and From header, as a script keys them.
//! * [`spec`]: the limiter specs and the FEEDBACK / NETWORK profiles.
//! * [`engine`]: the run itself, streaming, with bounded memory.
//! * [`chart`]: the chart.

pub mod capture;
pub mod chart;
pub mod engine;
pub mod model;
pub mod sip;
pub mod spec;

use std::path::PathBuf;

use clap::{ArgGroup, Args};

use crate::cli::parse_duration;
use crate::commands::show_key;
use crate::json::Value;
use crate::table_file::fmt_ns;
use crate::Failure;
use capture::{CaptureOptions, KeyBy};
use engine::{Engine, Options, Report, TooLong};
use model::{ModelEvents, ModelSpec};
use spec::{LimitSpec, LoadProfile, Steps};

/// `floodgate simulate --help`, after the options.
pub const SIMULATE_HELP: &str = concat!(
    "\
Limiters (LIMITER...): ALGO:LIMIT[/INTERVAL], INTERVAL a duration (1s when
left out), every algorithm of floodgate:
  TAILDROP:100/1s  RED:100/1s  REDP:100/1s  SLIDING:100/1s  INTERVAL:5/1s
  GCRA:100/1s[:BURST]  NOP  SLOTS:30 (calls held at once; each holds --hold)
  FEEDBACK:SETPOINT%/INTERVAL (with --load)  NETWORK:BYTES (with --queue)
All of them see the same traffic; keyed traffic gets one pipe per key.

",
    "Traffic models (--model): one or more terms joined with `+`; each term is
  const:RATE                     RATE requests per second, evenly spaced
  ramp:FROM:TO                   rate going linearly from FROM to TO per second
  square:HIGH:LOW:PERIOD[:DUTY]  HIGH per second for DUTY (0..1, default 0.5) of
                                 each PERIOD, LOW the rest (bursts)
  poisson:RATE                   Poisson arrivals, RATE per second on average
  poisson-ramp:..., poisson-square:...  the same shapes with Poisson arrivals
and may end in @FROM..TO (durations from the start: the term runs only then;
ramps and squares start there). Rates may have decimals. Poisson terms draw
from a ChaCha8 generator seeded with --seed: the same seed, the same traffic.
Examples: const:300                     300/s for --duration
          const:100+square:900:0:20s:0.25    a base load and 5 s bursts every 20 s
          poisson:50+poisson-ramp:0:500@30s..90s

",
    "Captures (--capture): pcap or pcapng, Ethernet, Linux cooked (SLL), raw IP or
loopback. Taken: UDP datagrams and TCP segments to a --port whose payload
begins with a SIP request line (of --method if given). Skipped and counted:
other traffic, IP fragments, responses, keep-alives, TCP segments that do not
begin a request (streams are not reassembled), other methods, requests
without the --key, malformed packets. Time 0 is the first request.
CSV (--csv): lines `time,key`, time in seconds (decimals allowed) or with a
unit (1500ms); the key is the rest of the line (empty: one shared pipe).

Out: a summary table (or --json), and the chart: per limiter, requests per
second offered, passed and dropped per --bin, and the worst burst: the most
requests passed in any 1 s span, what a server behind the limiter must absorb.

Exit codes:
  0  ok
  2  usage: a bad spec or option (the message names it)
  3  error: a file that cannot be read, is not a capture or breaks in the
     middle; a chart that cannot be written"
);

/// The most events a model may make (about 10 minutes of simulation).
pub const MAX_MODEL_EVENTS: f64 = 1e10;

/// `floodgate simulate`.
#[derive(Debug, Clone, Args)]
#[command(group(ArgGroup::new("source").required(true).args(["model", "capture", "csv"])))]
pub struct SimulateArgs {
    /// Limiters, each ALGO:LIMIT[/INTERVAL] (e.g. RED:100/1s TAILDROP:100/1s); see below.
    #[arg(required = true, value_name = "LIMITER", value_parser = spec::parse_limit_spec)]
    pub limiters: Vec<LimitSpec>,
    /// Modelled traffic, e.g. `const:300` or `const:100+square:900:0:20s:0.25` (see below).
    #[arg(long, value_name = "MODEL", value_parser = model::parse_model)]
    pub model: Option<ModelSpec>,
    /// A pcap or pcapng capture of SIP traffic.
    #[arg(long, value_name = "FILE")]
    pub capture: Option<PathBuf>,
    /// A CSV file of `time,key` lines.
    #[arg(long, value_name = "FILE")]
    pub csv: Option<PathBuf>,
    /// How long a --model runs.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_positive_duration)]
    pub duration: u64,
    /// Seed of the Poisson terms of a --model.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub seed: u64,
    /// Captures: destination ports that carry SIP (comma-separated).
    #[arg(
        long,
        value_name = "PORT",
        value_delimiter = ',',
        default_value = "5060"
    )]
    pub port: Vec<u16>,
    /// Captures: only requests of this method, e.g. INVITE (as written in the request line).
    #[arg(long, value_name = "METHOD")]
    pub method: Option<String>,
    /// Captures: the pipe key: source-ip ($si), from-user ($fU) or ruri-user ($rU).
    #[arg(long, value_name = "KEY", default_value = "source-ip", value_parser = parse_key_by)]
    pub key: KeyBy,
    /// Width of a chart bin.
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = parse_positive_duration)]
    pub bin: u64,
    /// Where the SVG chart goes.
    #[arg(long, value_name = "FILE", default_value = "floodgate-simulate.svg")]
    pub svg: PathBuf,
    /// Also draw the chart as PNG here.
    #[arg(long, value_name = "FILE")]
    pub png: Option<PathBuf>,
    /// The chart's title [default: what was simulated].
    #[arg(long, value_name = "TEXT")]
    pub title: Option<String>,
    /// FEEDBACK: the load fed to its PID each interval: `0.9`, steps `0.2,0.9@30s,0.4@60s`,
    /// or `passed:N` (what it passed last interval / N, a server taking N per interval).
    #[arg(long, value_name = "PROFILE", value_parser = spec::parse_load)]
    pub load: Option<LoadProfile>,
    /// NETWORK: bytes waiting on the host's queues, in steps: `0,50000@30s,0@40s`.
    #[arg(long, value_name = "PROFILE", value_parser = spec::parse_queue)]
    pub queue: Option<Steps>,
    /// SLOTS: how long each admitted call holds its slot.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_positive_duration)]
    pub hold: u64,
    /// Most pipes kept per limiter, and most keys counted one by one (memory bound).
    #[arg(long, value_name = "N", default_value_t = 100_000, value_parser = clap::value_parser!(u32).range(1..=10_000_000))]
    pub max_keys: u32,
    /// Keys shown per limiter in the top-by-drops list.
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub top: usize,
}

fn parse_positive_duration(s: &str) -> Result<u64, String> {
    match parse_duration(s)? {
        0 => Err("must be longer than 0".to_owned()),
        n => Ok(n),
    }
}

fn parse_key_by(s: &str) -> Result<KeyBy, String> {
    match s {
        "source-ip" | "si" => Ok(KeyBy::SourceIp),
        "from-user" | "fU" => Ok(KeyBy::FromUser),
        "ruri-user" | "rU" => Ok(KeyBy::RuriUser),
        _ => Err("one of source-ip, from-user, ruri-user".to_owned()),
    }
}

/// Where the traffic came from, for the summary.
#[derive(Debug, Clone)]
pub enum Source {
    /// A model.
    Model {
        /// As written.
        text: String,
        /// Seed of its Poisson terms.
        seed: u64,
        /// Run length, ns.
        duration_ns: u64,
    },
    /// A capture.
    Capture {
        /// The file.
        path: PathBuf,
        /// What it held.
        counts: capture::CaptureCounts,
    },
    /// A CSV file.
    Csv {
        /// The file.
        path: PathBuf,
        /// What it held.
        counts: capture::CsvCounts,
    },
}

impl Source {
    fn text(&self) -> String {
        match self {
            Source::Model {
                text,
                seed,
                duration_ns,
            } => format!("model {text} for {}, seed {seed}", fmt_ns(*duration_ns)),
            Source::Capture { path, counts } => {
                format!("{}: {}", path.display(), counts.text())
            }
            Source::Csv { path, counts } => {
                let mut s = format!(
                    "{}: {} lines, {} events",
                    path.display(),
                    counts.lines,
                    counts.events
                );
                if let Some(first) = counts.first_malformed {
                    s.push_str(&format!(
                        "; skipped {} lines that are not time,key (the first is line {first})",
                        counts.malformed
                    ));
                }
                s
            }
        }
    }

    fn json(&self) -> Value {
        match self {
            Source::Model {
                text,
                seed,
                duration_ns,
            } => Value::object([
                ("kind", Value::from("model")),
                ("model", Value::from(text.as_str())),
                ("seed", Value::from(*seed)),
                ("duration_ns", Value::from(*duration_ns)),
            ]),
            Source::Capture { path, counts } => {
                let mut v = vec![
                    ("kind", Value::from("capture")),
                    ("path", Value::from(path.display().to_string())),
                ];
                if let Value::Object(more) = counts.json() {
                    v.extend(more);
                }
                Value::Object(v)
            }
            Source::Csv { path, counts } => Value::object([
                ("kind", Value::from("csv")),
                ("path", Value::from(path.display().to_string())),
                ("lines", Value::from(counts.lines)),
                ("events", Value::from(counts.events)),
                ("malformed_lines", Value::from(counts.malformed)),
            ]),
        }
    }
}

/// Runs the traffic of `args` through its limiters.
pub fn simulate(args: &SimulateArgs) -> Result<(Source, Report), Failure> {
    let opts = Options {
        bin_ns: args.bin,
        max_keys: args.max_keys as usize,
        hold_ns: args.hold,
        load: args.load.clone(),
        queue: args.queue.clone(),
    };
    let mut engine = Engine::new(&args.limiters, opts).map_err(Failure::usage)?;
    let mut too_long: Option<TooLong> = None;
    let mut feed = |t: u64, key: &[u8]| {
        if too_long.is_none() {
            if let Err(e) = engine.event(t, key) {
                too_long = Some(e);
            }
        }
    };
    let source = if let Some(m) = &args.model {
        let expected = m.expected_events(args.duration);
        if expected > MAX_MODEL_EVENTS {
            return Err(Failure::usage(format!(
                "--model {} makes about {expected:.3e} events over --duration {}; at most {MAX_MODEL_EVENTS:.0e}",
                m.text,
                fmt_ns(args.duration)
            )));
        }
        if args.duration / args.bin >= engine::MAX_BINS as u64 {
            return Err(Failure::usage(format!(
                "--duration {} is {} bins of --bin {}; at most {}: use a longer --bin",
                fmt_ns(args.duration),
                args.duration / args.bin,
                fmt_ns(args.bin),
                engine::MAX_BINS
            )));
        }
        for t in ModelEvents::new(m, args.duration, args.seed) {
            feed(t, b"");
        }
        Source::Model {
            text: m.text.clone(),
            seed: args.seed,
            duration_ns: args.duration,
        }
    } else if let Some(path) = &args.capture {
        let opts = CaptureOptions {
            ports: args.port.clone(),
            method: args.method.clone(),
            key: args.key,
        };
        let counts = capture::read_capture(path, &opts, &mut feed)?;
        Source::Capture {
            path: path.clone(),
            counts,
        }
    } else if let Some(path) = &args.csv {
        let counts = capture::read_csv(path, &mut feed)?;
        Source::Csv {
            path: path.clone(),
            counts,
        }
    } else {
        return Err(Failure::usage(
            "give the traffic: --model, --capture or --csv".to_owned(),
        ));
    };
    match too_long {
        None => {}
        Some(TooLong::Bins { at_ns }) => {
            return Err(Failure::usage(format!(
                "an event {} after the first is past {} bins of --bin {}: use a longer --bin",
                fmt_ns(at_ns),
                engine::MAX_BINS,
                fmt_ns(args.bin)
            )))
        }
        Some(TooLong::Ticks { limiter }) => {
            return Err(Failure::usage(format!(
                "{limiter}: the traffic spans more than {} intervals of its PID controller: use a longer interval",
                engine::MAX_TICKS
            )))
        }
    }
    if let Source::Model { duration_ns, .. } = &source {
        engine.run_until(*duration_ns);
    }
    Ok((source, engine.finish()))
}

fn ratio(passed: u64, offered: u64) -> f64 {
    if offered == 0 {
        1.0
    } else {
        passed as f64 / offered as f64
    }
}

/// The summary as JSON.
pub fn json(source: &Source, report: &Report, args: &SimulateArgs) -> Value {
    let lanes = report
        .lanes
        .iter()
        .map(|l| {
            let mut v = vec![
                ("limiter", Value::from(l.spec.text.as_str())),
                ("algorithm", Value::from(l.spec.algorithm.name())),
                ("limit", Value::from(l.spec.limit)),
                ("interval_ns", Value::from(l.spec.interval_ns)),
                ("offered", Value::from(l.offered)),
                ("passed", Value::from(l.passed)),
                ("dropped", Value::from(l.dropped)),
                ("pass_ratio", Value::from(ratio(l.passed, l.offered))),
                ("worst_burst", Value::from(l.worst_burst)),
                ("worst_burst_from_ns", Value::from(l.worst_burst_from_ns)),
                ("evicted_busy", Value::from(l.evicted_busy)),
            ];
            if report.keyed {
                v.push(("keys_counted", Value::from(l.keys.len())));
                v.push((
                    "top_keys",
                    Value::Array(
                        l.keys
                            .iter()
                            .take(args.top)
                            .map(|(k, c)| {
                                Value::object([
                                    ("key", Value::from(show_key(k))),
                                    ("offered", Value::from(c.offered)),
                                    ("dropped", Value::from(c.dropped)),
                                ])
                            })
                            .collect(),
                    ),
                ));
                v.push((
                    "other_keys",
                    Value::object([
                        ("offered", Value::from(l.other_keys.offered)),
                        ("dropped", Value::from(l.other_keys.dropped)),
                    ]),
                ));
            }
            Value::Object(v)
        })
        .collect();
    Value::object([
        ("source", source.json()),
        ("events", Value::from(report.events)),
        ("events_before_first", Value::from(report.early)),
        ("origin_ns", Value::from(report.origin_ns)),
        ("span_ns", Value::from(report.span_ns)),
        ("bin_ns", Value::from(report.bin_ns)),
        ("keyed", Value::from(report.keyed)),
        ("limiters", Value::Array(lanes)),
        ("svg", Value::from(args.svg.display().to_string())),
        (
            "png",
            match &args.png {
                Some(p) => Value::from(p.display().to_string()),
                None => Value::Null,
            },
        ),
    ])
}

/// The summary as text.
pub fn text(source: &Source, report: &Report, args: &SimulateArgs) -> String {
    let mut out = format!(
        "{}\n{} events over {:.3} s; chart {}{}\n\n",
        source.text(),
        report.events,
        report.span_ns as f64 / 1e9,
        args.svg.display(),
        match &args.png {
            Some(p) => format!(" and {}", p.display()),
            None => String::new(),
        }
    );
    let rows: Vec<Vec<String>> = report
        .lanes
        .iter()
        .map(|l| {
            vec![
                l.spec.text.clone(),
                l.offered.to_string(),
                l.passed.to_string(),
                l.dropped.to_string(),
                format!("{:.1}", 100.0 * ratio(l.passed, l.offered)),
                l.worst_burst.to_string(),
            ]
        })
        .collect();
    out.push_str(&crate::commands::table_text(
        &[
            "LIMITER", "OFFERED", "PASSED", "DROPPED", "PASS%", "WORST 1s",
        ],
        &rows,
    ));
    if report.keyed {
        for l in &report.lanes {
            let top: Vec<Vec<String>> = l
                .keys
                .iter()
                .take(args.top)
                .filter(|(_, c)| c.dropped > 0)
                .map(|(k, c)| vec![show_key(k), c.offered.to_string(), c.dropped.to_string()])
                .collect();
            if top.is_empty() {
                continue;
            }
            out.push_str(&format!("\ntop keys by drops, {}:\n", l.spec.text));
            out.push_str(&crate::commands::table_text(
                &["KEY", "OFFERED", "DROPPED"],
                &top,
            ));
            if l.other_keys.offered > 0 {
                out.push_str(&format!(
                    "(keys beyond --max-keys, together: {} offered, {} dropped)\n",
                    l.other_keys.offered, l.other_keys.dropped
                ));
            }
        }
    }
    for l in &report.lanes {
        if l.evicted_busy > 0 {
            out.push_str(&format!(
                "\n{}: {} busy pipes were dropped from a full map (more than --max-keys {} keys active at once); verdicts may differ from a table that holds them all\n",
                l.spec.text, l.evicted_busy, args.max_keys
            ));
        }
    }
    out
}

/// The default chart title.
pub fn title(source: &Source, args: &SimulateArgs) -> String {
    if let Some(t) = &args.title {
        return t.clone();
    }
    match source {
        Source::Model { text, .. } => format!("floodgate simulate --model {text}"),
        Source::Capture { path, .. } => format!(
            "floodgate simulate --capture {}",
            path.file_name().unwrap_or_default().to_string_lossy()
        ),
        Source::Csv { path, .. } => format!(
            "floodgate simulate --csv {}",
            path.file_name().unwrap_or_default().to_string_lossy()
        ),
    }
}

/// The whole command: simulate, draw, and return the summary (text, JSON).
pub fn run(args: &SimulateArgs) -> Result<(String, Value), Failure> {
    let (source, report) = simulate(args)?;
    let title = title(&source, args);
    chart::write_svg(&report, &title, &args.svg)
        .map_err(|e| Failure::error(format!("{}: {e}", args.svg.display())))?;
    if let Some(png) = &args.png {
        chart::write_png(&report, &title, png)
            .map_err(|e| Failure::error(format!("{}: {e}", png.display())))?;
    }
    Ok((text(&source, &report, args), json(&source, &report, args)))
}
