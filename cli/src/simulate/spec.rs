//! The limiter specs of `floodgate simulate` (`ALGO:LIMIT[/INTERVAL]`) and
//! the step profiles that FEEDBACK (`--load`) and NETWORK (`--queue`) read.

use floodgate::{Algorithm, Error, Gcra, Limiter, Window};

use crate::cli::parse_duration;

/// The interval of a spec that names none.
pub const DEFAULT_INTERVAL_NS: u64 = 1_000_000_000;

/// One limiter to simulate: `ALGO:LIMIT[/INTERVAL]`, and for GCRA an
/// optional `:BURST` after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitSpec {
    /// The text as given (upper-cased algorithm), the name in tables and charts.
    pub text: String,
    /// The algorithm.
    pub algorithm: Algorithm,
    /// The limit, as [`Limiter::new`] reads it.
    pub limit: i64,
    /// The window (or GCRA period), in ns.
    pub interval_ns: u64,
    /// GCRA only: cells that may pass at once (1 unless given).
    pub burst: u32,
}

impl LimitSpec {
    /// A fresh limiter for this spec, windows aligned to time 0 (the first
    /// simulated event).
    pub fn limiter(&self) -> Result<Limiter, Error> {
        let window = Window::aligned(self.interval_ns, 0)?;
        if self.algorithm == Algorithm::Gcra {
            let rate = u32::try_from(self.limit).map_err(|_| Error::InvalidLimit)?;
            return Ok(Limiter::Gcra(Gcra::new(
                rate,
                self.interval_ns,
                self.burst,
            )?));
        }
        Limiter::new(self.algorithm, self.limit, window)
    }
}

/// Parses `ALGO:LIMIT[/INTERVAL]` (GCRA: `GCRA:RATE[/PERIOD][:BURST]`).
/// NOP takes no limit (`NOP` alone is fine). The interval is a duration
/// such as `1s`, `500ms`, `10s` (no unit: seconds); 1 s when left out.
pub fn parse_limit_spec(s: &str) -> Result<LimitSpec, String> {
    let (name, rest) = match s.split_once(':') {
        Some((n, r)) => (n, Some(r)),
        None => (s, None),
    };
    let algorithm = Algorithm::from_name(name.as_bytes()).ok_or_else(|| {
        let names: Vec<&str> = Algorithm::ALL.iter().map(|a| a.name()).collect();
        format!(
            "{s:?}: unknown algorithm {name:?}; one of {} (a limiter is ALGO:LIMIT[/INTERVAL], e.g. RED:100/1s)",
            names.join(", ")
        )
    })?;
    let rest = match (rest, algorithm) {
        (Some(r), _) => r,
        (None, Algorithm::Nop) => "0",
        (None, _) => {
            return Err(format!(
                "{s:?}: a limiter is ALGO:LIMIT[/INTERVAL], e.g. {}:100/1s",
                algorithm.name()
            ))
        }
    };
    let (rest, burst) = match rest.split_once(':') {
        Some((r, b)) if algorithm == Algorithm::Gcra => {
            let burst: u32 =
                b.parse().ok().filter(|&b| b >= 1).ok_or_else(|| {
                    format!("{s:?}: the GCRA burst {b:?} is not a whole number >= 1")
                })?;
            (r, burst)
        }
        Some(_) => {
            return Err(format!(
                "{s:?}: only GCRA takes a third part (its burst, GCRA:RATE/PERIOD:BURST)"
            ))
        }
        None => (rest, 1),
    };
    let (limit, interval) = match rest.split_once('/') {
        Some((l, i)) => (l, Some(i)),
        None => (rest, None),
    };
    let limit: i64 = limit
        .parse()
        .map_err(|_| format!("{s:?}: the limit {limit:?} is not a whole number"))?;
    let interval_ns = match interval {
        Some(i) => match parse_duration(i).map_err(|e| format!("{s:?}: {e}"))? {
            0 => return Err(format!("{s:?}: an interval must be longer than 0")),
            n => n,
        },
        None => DEFAULT_INTERVAL_NS,
    };
    if algorithm == Algorithm::Slots && interval.is_some() {
        return Err(format!(
            "{s:?}: SLOTS counts calls held at once and has no interval (SLOTS:MAX; --hold sets how long each call holds its slot)"
        ));
    }
    let mut text = format!("{}:{limit}", algorithm.name());
    if algorithm != Algorithm::Slots {
        text.push('/');
        text.push_str(&crate::table_file::fmt_ns(interval_ns));
    }
    if algorithm == Algorithm::Gcra && burst > 1 {
        text.push_str(&format!(":{burst}"));
    }
    let spec = LimitSpec {
        text,
        algorithm,
        limit,
        interval_ns,
        burst,
    };
    spec.limiter().map_err(|e| {
        let range = match algorithm {
            Algorithm::Taildrop | Algorithm::Sliding | Algorithm::Network => "0..=4294967295",
            Algorithm::Red | Algorithm::RedProportional | Algorithm::Gcra => "1..=4294967295",
            Algorithm::Feedback => "a setpoint in percent, 0..=100",
            Algorithm::Interval | Algorithm::Slots => "-2147483648..=2147483647",
            Algorithm::Nop => "any",
        };
        format!("{s:?}: {e} ({} limits are {range})", algorithm.name())
    })?;
    Ok(spec)
}

/// A value that changes in steps over simulated time: `V[,V@TIME...]`,
/// the first value from the start, each later one from its time on (times
/// since the first event, increasing).
#[derive(Debug, Clone, PartialEq)]
pub struct Steps {
    /// `(from_ns, value)`, sorted by time, the first at 0.
    pub steps: Vec<(u64, f64)>,
}

impl Steps {
    /// The value at `t` (ns since the first event).
    pub fn at(&self, t: u64) -> f64 {
        let i = self.steps.partition_point(|&(from, _)| from <= t);
        self.steps[i.saturating_sub(1)].1
    }
}

/// Parses a step profile; each value must lie in `range` (`what` names it).
pub fn parse_steps(s: &str, what: &str, range: (f64, f64)) -> Result<Steps, String> {
    let mut steps: Vec<(u64, f64)> = Vec::new();
    for (i, part) in s.split(',').enumerate() {
        let (v, at) = match part.split_once('@') {
            Some((v, at)) => (v, Some(at)),
            None => (part, None),
        };
        let value: f64 = v
            .trim()
            .parse()
            .ok()
            .filter(|v: &f64| v.is_finite() && *v >= range.0 && *v <= range.1)
            .ok_or_else(|| {
                format!(
                    "{s:?}: {what} {v:?} is not a number in {}..={}",
                    range.0, range.1
                )
            })?;
        let from = match (i, at) {
            (0, None) => 0,
            (0, Some(at)) => {
                let t = parse_duration(at.trim()).map_err(|e| format!("{s:?}: {e}"))?;
                if t != 0 {
                    return Err(format!(
                        "{s:?}: the first {what} holds from the start (give it no @TIME, or @0)"
                    ));
                }
                0
            }
            (_, None) => {
                return Err(format!(
                    "{s:?}: every {what} after the first needs @TIME (e.g. 0.2,0.9@30s)"
                ))
            }
            (_, Some(at)) => parse_duration(at.trim()).map_err(|e| format!("{s:?}: {e}"))?,
        };
        if let Some(&(last, _)) = steps.last() {
            if from <= last {
                return Err(format!("{s:?}: the times of the steps must increase"));
            }
        }
        steps.push((from, value));
    }
    Ok(Steps { steps })
}

/// What FEEDBACK's controller is fed once per interval (Kamailio's timer
/// tick reads the CPU load; here it comes from `--load`).
#[derive(Debug, Clone, PartialEq)]
pub enum LoadProfile {
    /// A load (0.0..=1.0) that changes in steps over time.
    Steps(Steps),
    /// A closed loop: the load is what the FEEDBACK pipe passed in the last
    /// interval divided by this capacity (requests per interval a server
    /// can take), capped at 1.0.
    Passed(u64),
}

/// Parses `--load`: `LOAD[,LOAD@TIME...]` or `passed:CAPACITY`.
pub fn parse_load(s: &str) -> Result<LoadProfile, String> {
    if let Some(cap) = s.strip_prefix("passed:") {
        return match cap.parse::<u64>() {
            Ok(n) if n > 0 => Ok(LoadProfile::Passed(n)),
            _ => Err(format!(
                "{s:?}: passed:CAPACITY takes a whole number > 0 (requests per interval the server can take)"
            )),
        };
    }
    parse_steps(s, "load", (0.0, 1.0)).map(LoadProfile::Steps)
}

/// Parses `--queue`: bytes waiting on the host's queues, in steps.
pub fn parse_queue(s: &str) -> Result<Steps, String> {
    parse_steps(s, "bytes waiting", (0.0, 1e18))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_specs() {
        let s = parse_limit_spec("red:100").unwrap();
        assert_eq!(
            (s.algorithm, s.limit, s.interval_ns),
            (Algorithm::Red, 100, 1_000_000_000)
        );
        assert_eq!(s.text, "RED:100/1s");
        let s = parse_limit_spec("TAILDROP:50/10s").unwrap();
        assert_eq!((s.limit, s.interval_ns), (50, 10_000_000_000));
        let s = parse_limit_spec("GCRA:100/1s:20").unwrap();
        assert_eq!((s.burst, s.text.as_str()), (20, "GCRA:100/1s:20"));
        assert_eq!(parse_limit_spec("NOP").unwrap().algorithm, Algorithm::Nop);
        assert_eq!(parse_limit_spec("SLOTS:10").unwrap().text, "SLOTS:10");
        assert!(parse_limit_spec("SLOTS:10/1s")
            .unwrap_err()
            .contains("--hold"));
        assert!(parse_limit_spec("RED:0").unwrap_err().contains("1..="));
        assert!(parse_limit_spec("FEEDBACK:101")
            .unwrap_err()
            .contains("0..=100"));
        assert!(parse_limit_spec("FOO:1").unwrap_err().contains("TAILDROP"));
        assert!(parse_limit_spec("RED").unwrap_err().contains("ALGO:LIMIT"));
        assert!(parse_limit_spec("RED:x")
            .unwrap_err()
            .contains("whole number"));
        assert!(parse_limit_spec("RED:10/0s")
            .unwrap_err()
            .contains("longer"));
        assert!(parse_limit_spec("RED:10/1s:3")
            .unwrap_err()
            .contains("only GCRA"));
        assert!(parse_limit_spec("GCRA:10/1s:0").is_err());
        assert!(parse_limit_spec("GCRA:2000000000/1ns").is_err());
        for a in Algorithm::ALL {
            let text = match a {
                Algorithm::Feedback => "FEEDBACK:50".to_owned(),
                a => format!("{}:5", a.name()),
            };
            assert_eq!(parse_limit_spec(&text).unwrap().algorithm, a);
        }
    }

    #[test]
    fn steps_and_loads() {
        let s = parse_steps("0.2,0.9@30s,0.5@1m", "load", (0.0, 1.0)).unwrap();
        let sec = 1_000_000_000;
        assert_eq!(s.at(0), 0.2);
        assert_eq!(s.at(30 * sec - 1), 0.2);
        assert_eq!(s.at(30 * sec), 0.9);
        assert_eq!(s.at(3600 * sec), 0.5);
        assert!(parse_steps("0.2,0.9", "load", (0.0, 1.0)).is_err());
        assert!(parse_steps("0.2,0.9@30s,0.1@10s", "load", (0.0, 1.0)).is_err());
        assert!(parse_steps("1.5", "load", (0.0, 1.0)).is_err());
        assert!(parse_steps("0.5@3s", "load", (0.0, 1.0)).is_err());
        assert_eq!(parse_load("passed:90"), Ok(LoadProfile::Passed(90)));
        assert!(parse_load("passed:0").is_err());
        assert!(parse_queue("0,20000@10s").is_ok());
    }
}
