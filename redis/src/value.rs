//! What the module stores in a key: a plain Redis string, versioned.
//!
//! | bytes | meaning |
//! | --- | --- |
//! | 0-1 | `FG` |
//! | 2 | encoding version ([`VERSION`]) |
//! | 3 | kind: 1 pipe (FG.CHECK), 2 rate (FG.RATE), 3 slots (FG.ACQUIRE), 4 hub (FG.HUB), 5 throttle (CL.THROTTLE) |
//! | pipe, rate | the core's [`floodgate::Limiter::to_words`], [`STATE_WORDS`] little-endian `u32` |
//! | slots, hub | `i32` max (per member), `i32` total max, `u32` n, then n leases: `u64` id, `u64` expiry ns, `u16` member length, member bytes (slots: length 0) |
//! | throttle | `u64` theoretical arrival time, ns |
//!
//! All integers little-endian. Plain strings (not a module data type) keep
//! `DUMP`/`RESTORE`, RDB, AOF, `MIGRATE` and replicas working with nothing
//! of the module's involved, even on a Redis that has not loaded it.
//!
//! Version 1 embeds the core's state words, whose meaning is the core's
//! codec's (unchanged since the core table's layout version 7; layout 9
//! moved where a table keeps them, not what they say). If that encoding
//! changes, [`VERSION`] is bumped: a key written by another version is refused with an error that
//! says so (it expires on its own, or `DEL` it), never misread.

use floodgate::{Limiter, STATE_WORDS};
use smallvec::SmallVec;

/// The encoding version this build reads and writes.
pub const VERSION: u8 = 1;

/// Most leases one key holds (`FG.ACQUIRE` with a count-only max, a hub's
/// total): bounds the value's size and each command's work.
pub const MAX_LEASES: usize = 100_000;

/// Most members of one hub.
pub const MAX_MEMBERS: usize = 64;

/// One lease: a slot held until released or until it expires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The holder's handle (printed as 16 hex digits).
    pub id: u64,
    /// When the slot frees itself, ns.
    pub expires: u64,
    /// Hub member the slot is on (empty for plain slots).
    pub member: Vec<u8>,
}

/// The leases of an `FG.ACQUIRE` or `FG.HUB` key.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Leases {
    /// Slots: max held; hub: max per member (as last given).
    pub max: i32,
    /// Hub: max in all (as last given; < 0 none). Slots: unused (-1).
    pub total_max: i32,
    /// The leases, in acquisition order.
    pub list: Vec<Lease>,
}

impl Leases {
    /// Drops the leases expired at `now`; true if any was.
    pub fn expire(&mut self, now: u64) -> bool {
        let before = self.list.len();
        self.list.retain(|l| l.expires > now);
        self.list.len() != before
    }

    /// The latest expiry, when the key may go (None: no lease).
    pub fn last_expiry(&self) -> Option<u64> {
        self.list.iter().map(|l| l.expires).max()
    }
}

/// A decoded key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// `FG.CHECK`: a pipelimit pipe.
    Pipe(Limiter),
    /// `FG.RATE`: a FreeSWITCH `max/interval` limit.
    Rate(Limiter),
    /// `FG.ACQUIRE`: concurrent slots held by leases.
    Slots(Leases),
    /// `FG.HUB`: a hub's members and their leases.
    Hub(Leases),
    /// `CL.THROTTLE`: a GCRA theoretical arrival time, ns.
    Throttle(u64),
}

/// When the value becomes no different from no value at all (ns): the
/// key's expiry. See [`crate::pipe::expiry`] for pipes.
pub fn expiry(v: &Value) -> u64 {
    match v {
        Value::Pipe(l) | Value::Rate(l) => crate::pipe::expiry(l),
        Value::Slots(ls) | Value::Hub(ls) => ls.last_expiry().unwrap_or(0),
        Value::Throttle(tat) => *tat,
    }
}

/// Why stored bytes could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// Not written by this module: the key holds the wrong kind of value.
    NotOurs,
    /// Written by another encoding version.
    Version(u8),
    /// Ours, but the bytes make no sense.
    Corrupt,
}

const KIND_PIPE: u8 = 1;
const KIND_RATE: u8 = 2;
const KIND_SLOTS: u8 = 3;
const KIND_HUB: u8 = 4;
const KIND_THROTTLE: u8 = 5;

/// Bytes a value keeps on the stack while it is encoded: a pipe's 40, a
/// throttle's 12; leases go to the heap, allocated once at their length.
pub const INLINE: usize = 64;

/// A value's bytes, as [`encode`] gives them.
pub type Encoded = SmallVec<[u8; INLINE]>;

/// The bytes of `v`.
pub fn encode(v: &Value) -> Encoded {
    let len = 4 + match v {
        Value::Pipe(_) | Value::Rate(_) => 4 * STATE_WORDS,
        Value::Slots(ls) | Value::Hub(ls) => {
            12 + ls.list.iter().map(|l| 18 + l.member.len()).sum::<usize>()
        }
        Value::Throttle(_) => 8,
    };
    let mut out = Encoded::from_elem(0, len);
    let mut w = Writer(&mut out);
    let kind = match v {
        Value::Pipe(_) => KIND_PIPE,
        Value::Rate(_) => KIND_RATE,
        Value::Slots(_) => KIND_SLOTS,
        Value::Hub(_) => KIND_HUB,
        Value::Throttle(_) => KIND_THROTTLE,
    };
    w.put(&[b'F', b'G', VERSION, kind]);
    match v {
        Value::Pipe(l) | Value::Rate(l) => {
            for word in l.to_words() {
                w.put(&word.to_le_bytes());
            }
        }
        Value::Slots(ls) | Value::Hub(ls) => {
            w.put(&ls.max.to_le_bytes());
            w.put(&ls.total_max.to_le_bytes());
            w.put(&(ls.list.len() as u32).to_le_bytes());
            for l in &ls.list {
                w.put(&l.id.to_le_bytes());
                w.put(&l.expires.to_le_bytes());
                w.put(&(l.member.len() as u16).to_le_bytes());
                w.put(&l.member);
            }
        }
        Value::Throttle(tat) => w.put(&tat.to_le_bytes()),
    }
    debug_assert!(w.0.is_empty(), "encode: length computed wrong");
    out
}

/// Fills a buffer sized in advance from its front.
struct Writer<'a>(&'a mut [u8]);

impl Writer<'_> {
    fn put(&mut self, bytes: &[u8]) {
        let (head, rest) = core::mem::take(&mut self.0).split_at_mut(bytes.len());
        head.copy_from_slice(bytes);
        self.0 = rest;
    }
}

/// Reads little-endian integers off the front of a slice.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.0.len() < n {
            return Err(DecodeError::Corrupt);
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        self.take(N)?.try_into().map_err(|_| DecodeError::Corrupt)
    }
}

/// The value stored in `bytes`.
pub fn decode(bytes: &[u8]) -> Result<Value, DecodeError> {
    let mut r = Reader(bytes);
    let head: [u8; 4] = r.array().map_err(|_| DecodeError::NotOurs)?;
    if head[..2] != *b"FG" {
        return Err(DecodeError::NotOurs);
    }
    if head[2] != VERSION {
        return Err(DecodeError::Version(head[2]));
    }
    let v = match head[3] {
        KIND_PIPE | KIND_RATE => {
            let mut words = [0u32; STATE_WORDS];
            for w in &mut words {
                *w = u32::from_le_bytes(r.array()?);
            }
            // Aligned windows are aligned to the Unix epoch.
            let l = Limiter::from_words(&words, 0).map_err(|_| DecodeError::Corrupt)?;
            if head[3] == KIND_PIPE {
                Value::Pipe(l)
            } else {
                Value::Rate(l)
            }
        }
        KIND_SLOTS | KIND_HUB => {
            let max = i32::from_le_bytes(r.array()?);
            let total_max = i32::from_le_bytes(r.array()?);
            let n = u32::from_le_bytes(r.array()?) as usize;
            if n > MAX_LEASES {
                return Err(DecodeError::Corrupt);
            }
            let mut list = Vec::with_capacity(n.min(r.0.len() / 18));
            for _ in 0..n {
                let id = u64::from_le_bytes(r.array()?);
                let expires = u64::from_le_bytes(r.array()?);
                let len = u16::from_le_bytes(r.array()?) as usize;
                let member = r.take(len)?.to_vec();
                list.push(Lease {
                    id,
                    expires,
                    member,
                });
            }
            let ls = Leases {
                max,
                total_max,
                list,
            };
            if head[3] == KIND_SLOTS {
                Value::Slots(ls)
            } else {
                Value::Hub(ls)
            }
        }
        KIND_THROTTLE => Value::Throttle(u64::from_le_bytes(r.array()?)),
        _ => return Err(DecodeError::Corrupt),
    };
    if !r.0.is_empty() {
        return Err(DecodeError::Corrupt);
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use floodgate::{Algorithm, Shared, Window};

    fn lease(id: u64, member: &[u8]) -> Lease {
        Lease {
            id,
            expires: id * 10,
            member: member.to_vec(),
        }
    }

    #[test]
    fn every_kind_round_trips() {
        let w = Window::aligned(1_000_000_000, 0).unwrap();
        let mut pipe = Limiter::new(Algorithm::Red, 7, w).unwrap();
        for t in 0..30 {
            let _ = pipe.check(t * 100_000_000, &Shared::default());
        }
        let values = [
            Value::Pipe(pipe),
            Value::Rate(Limiter::new(Algorithm::Interval, -1, w).unwrap()),
            Value::Slots(Leases {
                max: 3,
                total_max: -1,
                list: vec![lease(1, b""), lease(2, b"")],
            }),
            Value::Hub(Leases {
                max: 50,
                total_max: 200,
                list: vec![lease(9, b"node\0\xff"), lease(3, b"")],
            }),
            // Past INLINE bytes: on the heap.
            Value::Hub(Leases {
                max: 2,
                total_max: 9,
                list: (1..=5).map(|i| lease(i, b"2001")).collect(),
            }),
            Value::Throttle(u64::MAX - 3),
        ];
        let mut spilled = 0;
        for v in values {
            let bytes = encode(&v);
            if bytes.spilled() {
                assert_eq!(
                    bytes.len(),
                    bytes.capacity(),
                    "{v:?}: allocated once, exactly"
                );
                spilled += 1;
            } else {
                assert!(bytes.len() <= INLINE);
            }
            if matches!(v, Value::Pipe(_) | Value::Rate(_) | Value::Throttle(_)) {
                assert!(!bytes.spilled(), "{v:?}: on the stack, no allocation");
            }
            assert_eq!(decode(&bytes), Ok(v.clone()), "{v:?}");
        }
        assert_eq!(spilled, 1, "the five-lease hub");
    }

    #[test]
    fn foreign_other_version_and_garbage_are_told_apart() {
        assert_eq!(decode(b""), Err(DecodeError::NotOurs));
        assert_eq!(decode(b"hello"), Err(DecodeError::NotOurs));
        assert_eq!(decode(b"FG\x02\x01"), Err(DecodeError::Version(2)));
        assert_eq!(decode(b"FG\x01\x09"), Err(DecodeError::Corrupt));
        assert_eq!(decode(b"FG\x01\x01\x00"), Err(DecodeError::Corrupt));
        let mut ok = encode(&Value::Throttle(5));
        ok.push(0);
        assert_eq!(decode(&ok), Err(DecodeError::Corrupt));
        // A lease count far beyond the bytes present.
        let mut slots = encode(&Value::Slots(Leases::default()));
        slots[12..16].copy_from_slice(&50_000u32.to_le_bytes());
        assert_eq!(decode(&slots), Err(DecodeError::Corrupt));
        slots[12..16].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(decode(&slots), Err(DecodeError::Corrupt));
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let v = Value::Hub(Leases {
            max: 1,
            total_max: 2,
            list: vec![lease(4, b"abc")],
        });
        let bytes = encode(&v);
        for n in 0..bytes.len() {
            assert!(decode(&bytes[..n]).is_err(), "{n}");
        }
    }

    #[test]
    fn expiry_drops_only_due_leases() {
        let mut ls = Leases {
            max: 5,
            total_max: -1,
            list: vec![lease(1, b""), lease(3, b""), lease(2, b"")],
        };
        assert_eq!(ls.last_expiry(), Some(30));
        assert!(!ls.expire(9));
        assert!(ls.expire(20));
        assert_eq!(ls.list, vec![lease(3, b"")]);
        assert!(ls.expire(30));
        assert_eq!(ls.last_expiry(), None);
    }
}
