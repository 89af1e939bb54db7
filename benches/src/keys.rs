//! Keys and how a case picks them.

/// `n` distinct keys that look like what pipelimit and FreeSWITCH users key
/// on: IPv4 addresses as strings, 8 to 11 bytes (`"10.0.0.0"` to
/// `"10.1.134.159"` for 100 000 keys).
pub fn ipv4_keys(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| format!("10.{}.{}.{}", (i >> 16) & 0xff, (i >> 8) & 0xff, i & 0xff))
        .collect()
}

/// Which key the next operation uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pattern {
    /// Always the same key (one caller flooding), among all the others.
    Hot,
    /// Uniformly at random over all keys.
    Uniform,
}

impl Pattern {
    /// Its name in benchmark ids.
    pub const fn name(self) -> &'static str {
        match self {
            Pattern::Hot => "hot",
            Pattern::Uniform => "uniform",
        }
    }
}

/// Picks key indices in `0..n` after a [`Pattern`]. A uniform pick is one
/// xorshift step and one multiply (about a nanosecond), the same for every
/// side.
#[derive(Debug, Clone)]
pub struct Picker {
    n: u64,
    state: u64,
    pattern: Pattern,
}

impl Picker {
    /// A picker over `n >= 1` keys. The hot key is the one in the middle.
    pub fn new(n: usize, pattern: Pattern) -> Picker {
        Picker {
            n: n.max(1) as u64,
            state: 0x9e37_79b9_7f4a_7c15,
            pattern,
        }
    }

    /// The index of the next key.
    #[inline(always)]
    pub fn next_index(&mut self) -> usize {
        match self.pattern {
            Pattern::Hot => (self.n / 2) as usize,
            Pattern::Uniform => {
                let mut x = self.state;
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                self.state = x;
                ((u128::from(x) * u128::from(self.n)) >> 64) as usize
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_distinct_and_short() {
        let k = ipv4_keys(100_000);
        let set: std::collections::HashSet<&String> = k.iter().collect();
        assert_eq!(set.len(), k.len());
        assert!(k.iter().all(|s| (7..=12).contains(&s.len())));
    }

    #[test]
    fn uniform_reaches_every_key_and_hot_one() {
        let mut p = Picker::new(1000, Pattern::Uniform);
        let mut seen = vec![false; 1000];
        for _ in 0..100_000 {
            seen[p.next_index()] = true;
        }
        assert!(seen.iter().all(|&s| s));
        let mut h = Picker::new(1000, Pattern::Hot);
        assert_eq!(h.next_index(), h.next_index());
    }
}
