//! Modelled traffic: a sum of terms, each a rate shape over (part of) the run,
//! with events spaced evenly or as a Poisson process. See [`super::SIMULATE_HELP`].
//!
//! Each term's events are the times where its cumulative count
//! `N(t) = integral of rate` reaches 0, 1, 2, ... (even spacing), or reaches
//! the partial sums of exponential variables with mean 1 (a Poisson process
//! with that rate: the time-rescaling theorem). The grammar is in
//! `floodgate simulate --help` ([`super::SIMULATE_HELP`]). The exponentials come from
//! ChaCha8 seeded with `--seed` and the term's position, so a run is the same
//! on every machine and every time.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Exp1};

use crate::cli::parse_duration;

#[derive(Debug, Clone, PartialEq)]
enum Shape {
    /// Rate per second.
    Const(f64),
    /// From, to (per second) over the term's span.
    Ramp(f64, f64),
    /// High, low (per second), period (s), duty (0..=1).
    Square(f64, f64, f64, f64),
}

/// One term of a model as written.
#[derive(Debug, Clone, PartialEq)]
pub struct TermSpec {
    shape: Shape,
    poisson: bool,
    from_ns: u64,
    to_ns: Option<u64>,
}

/// A parsed model: the sum of its terms.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelSpec {
    /// The model as written.
    pub text: String,
    terms: Vec<TermSpec>,
}

fn rate(s: &str, term: &str) -> Result<f64, String> {
    s.parse::<f64>()
        .ok()
        .filter(|r| r.is_finite() && *r >= 0.0 && *r <= 1e9)
        .ok_or_else(|| format!("{term:?}: {s:?} is not a rate per second in 0..=1e9"))
}

fn parse_term(term: &str) -> Result<TermSpec, String> {
    let (body, span) = match term.split_once('@') {
        Some((b, s)) => (b, Some(s)),
        None => (term, None),
    };
    let (from_ns, to_ns) = match span {
        None => (0, None),
        Some(s) => {
            let (a, b) = s
                .split_once("..")
                .ok_or_else(|| format!("{term:?}: a span is @FROM..TO, e.g. @30s..90s"))?;
            let a = parse_duration(a).map_err(|e| format!("{term:?}: {e}"))?;
            let b = parse_duration(b).map_err(|e| format!("{term:?}: {e}"))?;
            if b <= a {
                return Err(format!("{term:?}: a span must end after it starts"));
            }
            (a, Some(b))
        }
    };
    let mut parts = body.split(':');
    let name = parts.next().unwrap_or("");
    let args: Vec<&str> = parts.collect();
    let (poisson, name) = match name.strip_prefix("poisson-") {
        Some(n) => (true, n),
        None if name == "poisson" => (true, "const"),
        None => (false, name),
    };
    let want = |n: &[usize], usage: &str| -> Result<(), String> {
        if n.contains(&args.len()) {
            Ok(())
        } else {
            Err(format!("{term:?}: write it as {usage}"))
        }
    };
    let shape = match name {
        "const" => {
            want(&[1], "const:RATE or poisson:RATE")?;
            Shape::Const(rate(args[0], term)?)
        }
        "ramp" => {
            want(&[2], "ramp:FROM:TO")?;
            Shape::Ramp(rate(args[0], term)?, rate(args[1], term)?)
        }
        "square" => {
            want(&[3, 4], "square:HIGH:LOW:PERIOD[:DUTY]")?;
            let period = parse_duration(args[2]).map_err(|e| format!("{term:?}: {e}"))?;
            if period == 0 {
                return Err(format!("{term:?}: the period must be longer than 0"));
            }
            let duty = match args.get(3) {
                None => 0.5,
                Some(d) => d
                    .parse::<f64>()
                    .ok()
                    .filter(|d| (0.0..=1.0).contains(d))
                    .ok_or_else(|| format!("{term:?}: the duty {d:?} is not in 0..=1"))?,
            };
            Shape::Square(
                rate(args[0], term)?,
                rate(args[1], term)?,
                period as f64 / 1e9,
                duty,
            )
        }
        _ => {
            return Err(format!(
                "{term:?}: unknown shape {name:?}; one of const, ramp, square, poisson (see --help)"
            ))
        }
    };
    Ok(TermSpec {
        shape,
        poisson,
        from_ns,
        to_ns,
    })
}

/// Parses a model (the grammar is in [`super::SIMULATE_HELP`]).
pub fn parse_model(s: &str) -> Result<ModelSpec, String> {
    let terms = s
        .split('+')
        .map(|t| parse_term(t.trim()))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ModelSpec {
        text: s.to_owned(),
        terms,
    })
}

impl ModelSpec {
    /// How many events the model makes over `duration_ns`, on average.
    pub fn expected_events(&self, duration_ns: u64) -> f64 {
        self.terms
            .iter()
            .map(|t| Term::new(t, duration_ns, 0, 0).total)
            .sum()
    }
}

/// One term, generating.
struct Term {
    shape: Shape,
    rng: Option<ChaCha8Rng>,
    /// Start of the term, ns.
    from_ns: u64,
    /// Length of the term, s.
    span_s: f64,
    /// The cumulative count of the next event.
    next_n: f64,
    /// The term's total count `N(span)`.
    total: f64,
    /// The next event's time, if any.
    next: Option<u64>,
}

impl Term {
    fn new(spec: &TermSpec, duration_ns: u64, seed: u64, index: u64) -> Term {
        let to = spec.to_ns.unwrap_or(duration_ns).min(duration_ns);
        let span_s = to.saturating_sub(spec.from_ns) as f64 / 1e9;
        let mut rng = spec.poisson.then(|| {
            ChaCha8Rng::seed_from_u64(seed.wrapping_add(index.wrapping_mul(0x9e37_79b9_7f4a_7c15)))
        });
        let next_n = match &mut rng {
            Some(r) => Exp1.sample(r),
            None => 0.0,
        };
        let mut t = Term {
            shape: spec.shape.clone(),
            rng,
            from_ns: spec.from_ns,
            span_s,
            next_n,
            total: 0.0,
            next: None,
        };
        t.total = t.count(span_s);
        t.next = t.time_of(t.next_n);
        t
    }

    /// `N(tau)`: events expected in the first `tau` seconds.
    fn count(&self, tau: f64) -> f64 {
        match self.shape {
            Shape::Const(r) => r * tau,
            Shape::Ramp(a, b) => {
                let c = if self.span_s > 0.0 {
                    (b - a) / self.span_s
                } else {
                    0.0
                };
                a * tau + c * tau * tau / 2.0
            }
            Shape::Square(h, l, p, d) => {
                let per = h * d * p + l * (1.0 - d) * p;
                let q = (tau / p).floor();
                let rest = tau - q * p;
                let part = if rest < d * p {
                    h * rest
                } else {
                    h * d * p + l * (rest - d * p)
                };
                q * per + part
            }
        }
    }

    /// The time (ns) at which `N` reaches `n`, if within the term.
    fn time_of(&self, n: f64) -> Option<u64> {
        if n >= self.total || self.total <= 0.0 {
            return None;
        }
        let tau = match self.shape {
            Shape::Const(r) => n / r,
            Shape::Ramp(a, b) => {
                let c = (b - a) / self.span_s;
                if n == 0.0 {
                    0.0
                } else {
                    // The root of c/2 tau^2 + a tau - n = 0 that is >= 0,
                    // in the form that stays exact when c is near 0.
                    2.0 * n / (a + (a * a + 2.0 * c * n).max(0.0).sqrt())
                }
            }
            Shape::Square(h, l, p, d) => {
                let per = h * d * p + l * (1.0 - d) * p;
                let q = (n / per).floor();
                let rest = n - q * per;
                let high = h * d * p;
                q * p
                    + if rest < high {
                        rest / h
                    } else {
                        d * p + (rest - high) / l
                    }
            }
        };
        if !tau.is_finite() || tau >= self.span_s {
            return None;
        }
        Some(
            self.from_ns
                .saturating_add((tau.max(0.0) * 1e9).round() as u64),
        )
    }

    fn advance(&mut self) {
        self.next_n += match &mut self.rng {
            Some(r) => Exp1.sample(r),
            None => 1.0,
        };
        self.next = self.time_of(self.next_n);
    }
}

/// A model's events in time order, as an iterator of ns since the start.
pub struct ModelEvents {
    terms: Vec<Term>,
}

impl ModelEvents {
    /// The events of `spec` over `duration_ns`, Poisson terms seeded by `seed`.
    pub fn new(spec: &ModelSpec, duration_ns: u64, seed: u64) -> ModelEvents {
        ModelEvents {
            terms: spec
                .terms
                .iter()
                .enumerate()
                .map(|(i, t)| Term::new(t, duration_ns, seed, i as u64))
                .collect(),
        }
    }
}

impl Iterator for ModelEvents {
    type Item = u64;

    fn next(&mut self) -> Option<u64> {
        let (i, t) = self
            .terms
            .iter()
            .enumerate()
            .filter_map(|(i, term)| term.next.map(|t| (i, t)))
            .min_by_key(|&(_, t)| t)?;
        self.terms[i].advance();
        Some(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    fn events(model: &str, duration: u64, seed: u64) -> Vec<u64> {
        ModelEvents::new(&parse_model(model).unwrap(), duration, seed).collect()
    }

    #[test]
    fn constant_rate_is_evenly_spaced() {
        let e = events("const:100", S, 1);
        assert_eq!(e.len(), 100);
        assert_eq!(&e[..3], &[0, 10_000_000, 20_000_000]);
        assert!(e.windows(2).all(|w| w[1] - w[0] == 10_000_000));
        assert_eq!(events("const:0", 10 * S, 1).len(), 0);
    }

    #[test]
    fn ramp_square_and_spans_give_their_counts() {
        // 0 -> 200/s over 10 s: 1000 events, more of them late.
        let e = events("ramp:0:200", 10 * S, 1);
        assert!((999..=1000).contains(&e.len()), "{}", e.len());
        assert!(e.iter().filter(|&&t| t >= 5 * S).count() > 700);
        let e = events("ramp:100:100", 10 * S, 1);
        assert_eq!(e.len(), 1000);
        // 1000/s a quarter of each 4 s, 0 else: 1000 per period.
        let e = events("square:1000:0:4s:0.25", 20 * S, 1);
        assert_eq!(e.len(), 5000);
        assert!(e.iter().all(|&t| t % (4 * S) < S));
        let e = events("const:10@5s..7s", 60 * S, 1);
        assert_eq!(e.len(), 20);
        assert!(e.iter().all(|&t| (5 * S..7 * S).contains(&t)));
        let e = events("const:10+const:10", S, 1);
        assert_eq!(e.len(), 20);
        assert!(e.windows(2).all(|w| w[0] <= w[1]));
    }

    #[test]
    fn poisson_is_reproducible_and_about_right() {
        let a = events("poisson:1000", 10 * S, 7);
        let b = events("poisson:1000", 10 * S, 7);
        let c = events("poisson:1000", 10 * S, 8);
        assert_eq!(a, b);
        assert_ne!(a, c);
        // Mean 10000, sd 100: 5 sd either way.
        assert!((9500..=10500).contains(&a.len()), "{}", a.len());
        assert!(a.windows(2).all(|w| w[0] <= w[1]));
        let r = events("poisson-ramp:0:2000", 10 * S, 7);
        assert!((9500..=10500).contains(&r.len()), "{}", r.len());
    }

    #[test]
    fn bad_models_say_why() {
        for (m, want) in [
            ("const", "const:RATE"),
            ("const:-1", "rate"),
            ("wave:1", "unknown shape"),
            ("square:1:0:0s", "period"),
            ("square:1:0:1s:2", "duty"),
            ("const:1@5s", "span"),
            ("const:1@5s..1s", "end after"),
            ("ramp:1", "ramp:FROM:TO"),
        ] {
            let e = parse_model(m).unwrap_err();
            assert!(e.contains(want), "{m}: {e}");
        }
    }
}
