//! The peers written in this crate, as their authors would write them.
//!
//! * [`MutexMap`]: one `Mutex<HashMap<String, V>>` with std's default
//!   (SipHash, randomly keyed) hasher: what a module author writes first, and
//!   how FreeSWITCH's mod_hash keeps its limits (one hash behind one lock).
//! * [`ChainedTable`]: Kamailio pipelimit's pipe table (`pl_ht.c`): a
//!   power-of-two array of buckets, each with its own lock and a chain of
//!   heap-allocated pipes sorted by their `core_case_hash` id; a lookup
//!   hashes the name, locks the bucket, walks the chain comparing id then
//!   name, and works on the pipe under the bucket's lock.
//!
//! Both count windows with [`FixedWindow`], rolled over lazily by `now`
//! (pipelimit resets its counters from a timer instead; a lazy roll costs
//! the request path one comparison, so this favours no side).

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A fixed-window counter (pipelimit TAILDROP): windows of `interval` ns
/// aligned to 0; a request passes iff the window's count is `<= limit`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FixedWindow {
    start: u64,
    count: u32,
}

impl FixedWindow {
    /// Counts one request at `now` and tells whether it passes.
    #[inline]
    pub fn check(&mut self, now: u64, interval: u64, limit: u32) -> bool {
        // Time going backwards stays in the current window.
        if now.saturating_sub(self.start) >= interval {
            self.start = now - now % interval;
            self.count = 0;
        }
        self.count = self.count.saturating_add(1);
        self.count <= limit
    }

    /// Requests counted in the current window.
    pub fn count(&self) -> u32 {
        self.count
    }
}

/// One `Mutex<HashMap<String, V>>`.
#[derive(Debug, Default)]
pub struct MutexMap<V> {
    map: Mutex<HashMap<String, V>>,
}

impl<V> MutexMap<V> {
    /// An empty map.
    pub fn new() -> MutexMap<V> {
        MutexMap {
            map: Mutex::new(HashMap::new()),
        }
    }

    /// Runs `f` on `key`'s value under the lock, inserting `make()` first if
    /// the key is missing (which allocates the key's `String`).
    #[inline]
    pub fn with<R>(&self, key: &str, make: impl FnOnce() -> V, f: impl FnOnce(&mut V) -> R) -> R {
        let mut m = lock(&self.map);
        match m.get_mut(key) {
            Some(v) => f(v),
            None => f(m.entry(key.to_owned()).or_insert_with(make)),
        }
    }

    /// Runs `f` on the whole map under the lock (several keys at once).
    #[inline]
    pub fn with_map<R>(&self, f: impl FnOnce(&mut HashMap<String, V>) -> R) -> R {
        f(&mut lock(&self.map))
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        lock(&self.map).len()
    }

    /// Whether the map is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A key's slots with leases, as a module author would keep them in a
/// [`MutexMap`]: the count and the held leases (id, expiry).
#[derive(Debug, Default)]
pub struct LeasedSlots {
    leases: Vec<(u64, u64)>,
    next_id: u64,
}

impl LeasedSlots {
    /// Takes a slot under `max` for `hold` ns at `now`, after dropping
    /// expired leases; its id, or `None` if full.
    #[inline]
    pub fn acquire(&mut self, max: usize, hold: u64, now: u64) -> Option<u64> {
        self.leases.retain(|&(_, exp)| exp > now);
        if self.leases.len() >= max {
            return None;
        }
        self.next_id += 1;
        self.leases.push((self.next_id, now.saturating_add(hold)));
        Some(self.next_id)
    }

    /// Releases lease `id`; whether it was held.
    #[inline]
    pub fn release(&mut self, id: u64) -> bool {
        match self.leases.iter().position(|&(i, _)| i == id) {
            Some(p) => {
                self.leases.swap_remove(p);
                true
            }
            None => false,
        }
    }

    /// Slots held.
    pub fn usage(&self) -> usize {
        self.leases.len()
    }
}

/// Kamailio's `core_case_hash` of one string (`hash_func.h`): four bytes at
/// a time, lower-cased, `h += v ^ (v >> 3)`, then its final mix.
#[inline]
pub fn core_case_hash(s: &[u8]) -> u32 {
    #[inline(always)]
    fn lc(c: u8) -> u32 {
        u32::from(c.to_ascii_lowercase())
    }
    let mut h: u32 = 0;
    let mut chunks = s.chunks_exact(4);
    for c in &mut chunks {
        let v = (lc(c[0]) << 24) + (lc(c[1]) << 16) + (lc(c[2]) << 8) + lc(c[3]);
        h = h.wrapping_add(v ^ (v >> 3));
    }
    let mut v: u32 = 0;
    for &c in chunks.remainder() {
        v = (v << 8).wrapping_add(lc(c));
    }
    h = h.wrapping_add(v ^ (v >> 3));
    h.wrapping_add(h >> 11)
        .wrapping_add(h >> 13)
        .wrapping_add(h >> 23)
}

struct Node<V> {
    id: u32,
    name: Box<[u8]>,
    value: V,
    next: Option<Box<Node<V>>>,
}

/// A bucket: its lock and the chain it guards.
type Bucket<V> = Mutex<Option<Box<Node<V>>>>;

/// pipelimit's table: `2^size_log2` buckets, one lock each, chains of
/// boxed nodes sorted by hash id.
pub struct ChainedTable<V> {
    buckets: Box<[Bucket<V>]>,
    mask: u32,
}

impl<V> ChainedTable<V> {
    /// A table of `2^size_log2` buckets (pipelimit's `hash_size` modparam,
    /// default 6; size it to the number of keys for a fair comparison).
    pub fn new(size_log2: u32) -> ChainedTable<V> {
        let n = 1usize << size_log2;
        ChainedTable {
            buckets: (0..n).map(|_| Mutex::new(None)).collect(),
            mask: (n - 1) as u32,
        }
    }

    /// `2^k` buckets for at least `keys` keys: about one key per bucket.
    pub fn for_keys(keys: usize) -> ChainedTable<V> {
        ChainedTable::new(keys.max(1).next_power_of_two().trailing_zeros())
    }

    /// The bucket `key` lives in.
    pub fn bucket_of(&self, key: &[u8]) -> usize {
        (core_case_hash(key) & self.mask) as usize
    }

    /// pipelimit's `pl_pipe_get` + work + `pl_pipe_release`: hashes `key`,
    /// locks its bucket, finds the pipe (inserting `make()` in id order if
    /// missing, which allocates), and runs `f` on it under the lock.
    #[inline]
    pub fn with<R>(&self, key: &[u8], make: impl FnOnce() -> V, f: impl FnOnce(&mut V) -> R) -> R {
        let id = core_case_hash(key);
        let mut head = lock(&self.buckets[(id & self.mask) as usize]);
        let mut cur = &mut *head;
        // Skip the nodes that sort before `key`: smaller ids, then same-id
        // nodes of other names.
        while cur
            .as_ref()
            .is_some_and(|n| n.id < id || (n.id == id && *n.name != *key))
        {
            if let Some(n) = cur {
                cur = &mut n.next;
            }
        }
        if let Some(n) = cur.as_mut() {
            if n.id == id {
                return f(&mut n.value);
            }
        }
        let next = cur.take();
        let n = cur.insert(Box::new(Node {
            id,
            name: key.into(),
            value: make(),
            next,
        }));
        f(&mut n.value)
    }

    /// Number of pipes (walks every chain).
    pub fn len(&self) -> usize {
        self.buckets
            .iter()
            .map(|b| {
                let head = lock(b);
                let mut n = 0;
                let mut cur = head.as_deref();
                while let Some(node) = cur {
                    n += 1;
                    cur = node.next.as_deref();
                }
                n
            })
            .sum()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<V> Drop for ChainedTable<V> {
    fn drop(&mut self) {
        // Unlink chains iteratively: a long chain must not recurse.
        for b in self.buckets.iter_mut() {
            let mut cur = b.get_mut().unwrap_or_else(PoisonError::into_inner).take();
            while let Some(mut n) = cur {
                cur = n.next.take();
            }
        }
    }
}

impl<V> std::fmt::Debug for ChainedTable<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChainedTable")
            .field("buckets", &self.buckets.len())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_window_counts_and_rolls() {
        let mut w = FixedWindow::default();
        assert!(w.check(5, 10, 2));
        assert!(w.check(6, 10, 2));
        assert!(!w.check(9, 10, 2));
        assert!(w.check(10, 10, 2));
        assert_eq!(w.count(), 1);
        assert!(w.check(3, 10, 2), "backwards stays in the window");
        assert_eq!(w.count(), 2);
    }

    #[test]
    fn chained_table_finds_inserts_and_keeps_order() {
        let t: ChainedTable<u32> = ChainedTable::new(2);
        let keys: Vec<String> = (0..200).map(|i| format!("k{i}")).collect();
        for k in &keys {
            t.with(k.as_bytes(), || 0, |v| *v += 1);
        }
        for k in &keys {
            assert_eq!(t.with(k.as_bytes(), || 100, |v| *v), 1);
        }
        assert_eq!(t.len(), 200);
        for b in t.buckets.iter() {
            let head = lock(b);
            let mut cur = head.as_deref();
            while let Some(n) = cur {
                if let Some(m) = n.next.as_deref() {
                    assert!(n.id <= m.id);
                }
                cur = n.next.as_deref();
            }
        }
    }

    #[test]
    fn core_case_hash_ignores_case_and_spreads() {
        assert_eq!(core_case_hash(b"Pipe-A"), core_case_hash(b"pipe-a"));
        assert_ne!(core_case_hash(b"10.0.0.1"), core_case_hash(b"10.0.0.2"));
        let t: ChainedTable<()> = ChainedTable::for_keys(1024);
        assert_eq!(t.buckets.len(), 1024);
    }

    #[test]
    fn mutex_map_and_leases() {
        let m: MutexMap<LeasedSlots> = MutexMap::new();
        let a = m.with("k", LeasedSlots::default, |s| s.acquire(2, 10, 0));
        let b = m.with("k", LeasedSlots::default, |s| s.acquire(2, 10, 0));
        assert!(a.is_some() && b.is_some());
        assert_eq!(
            m.with("k", LeasedSlots::default, |s| s.acquire(2, 10, 5)),
            None
        );
        assert!(m.with("k", LeasedSlots::default, |s| s.release(a.unwrap())));
        assert!(!m.with("k", LeasedSlots::default, |s| s.release(a.unwrap())));
        // Expired at 10: both slots free again.
        assert!(m
            .with("k", LeasedSlots::default, |s| s.acquire(2, 10, 20))
            .is_some());
        assert_eq!(m.with("k", LeasedSlots::default, |s| s.usage()), 1);
        assert_eq!(m.len(), 1);
    }
}
