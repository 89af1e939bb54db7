//! The keyed hash that places keys in a table.
//!
//! Eight bytes at a time, each mixed with a multiply and rotate, then
//! murmur3's 64-bit finalizer. Not cryptographic: the seed keeps an outsider
//! from computing which keys collide, as long as the seed is random.

#[cfg(any(test, doc))]
use super::MAX_KEY_LEN;

const K1: u64 = 0x9e37_79b9_7f4a_7c15;
const K2: u64 = 0xc2b2_ae3d_27d4_eb4f;

fn fmix(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

#[inline(always)]
fn round(h: u64, v: u64) -> u64 {
    let v = v.wrapping_mul(K2).rotate_left(31);
    (h ^ v)
        .rotate_left(27)
        .wrapping_mul(K1)
        .wrapping_add(0x52dc_e729)
}

/// Hash of `key` (at most [`MAX_KEY_LEN`] bytes): equal to `hash` (the definition, in
/// tests) of the key zero-padded, read from the caller's bytes directly,
/// eight at a time.
/// The last partial chunk is [`tail_le`], never read through a buffer: a
/// wide load of narrow stores would stall the CPU's store forwarding on the
/// hot path.
#[inline(always)]
pub(crate) fn hash_key(seed: u64, key: &[u8]) -> u64 {
    let mut h = seed ^ (key.len() as u64).wrapping_mul(K1);
    let mut chunks = key.chunks_exact(8);
    for c in &mut chunks {
        // Always eight bytes (chunks_exact): one load.
        if let Ok(b) = <[u8; 8]>::try_from(c) {
            h = round(h, u64::from_le_bytes(b));
        }
    }
    let rest = chunks.remainder().len();
    if rest > 0 {
        h = round(h, tail_le(key, rest));
    }
    fmix(h)
}

/// The last `rest` bytes of `key` (1 to 7) as a little-endian integer,
/// zero-padded: what a partial last chunk or word of a key holds. Loaded
/// as the key's last eight bytes and shifted, byte by byte only when the
/// key is shorter than eight.
#[inline(always)]
pub(crate) fn tail_le(key: &[u8], rest: usize) -> u64 {
    let last = |n: usize| key.len().checked_sub(n).and_then(|i| key.get(i..));
    if let Some(Ok(b)) = last(8).map(<[u8; 8]>::try_from) {
        return u64::from_le_bytes(b) >> (8 * (8 - rest));
    }
    last(rest)
        .unwrap_or(&[])
        .iter()
        .rev()
        .fold(0, |v, &b| (v << 8) | u64::from(b))
}

/// Hash of the first `len` bytes of `bytes` (zero-padded): the
/// definition [`hash_key`] must agree with.
#[cfg(test)]
pub(crate) fn hash(seed: u64, bytes: &[u8; MAX_KEY_LEN], len: usize) -> u64 {
    let mut h = seed ^ (len as u64).wrapping_mul(K1);
    let chunks = len.div_ceil(8);
    for c in bytes.chunks_exact(8).take(chunks) {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        let v = u64::from_le_bytes(w).wrapping_mul(K2).rotate_left(31);
        h = (h ^ v)
            .rotate_left(27)
            .wrapping_mul(K1)
            .wrapping_add(0x52dc_e729);
    }
    fmix(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(seed: u64, key: &[u8]) -> u64 {
        let mut b = [0u8; MAX_KEY_LEN];
        b[..key.len()].copy_from_slice(key);
        hash(seed, &b, key.len())
    }

    #[test]
    fn length_seed_and_content_matter() {
        assert_ne!(h(0, b"a"), h(0, b"a\0"));
        assert_ne!(h(0, b"10.0.0.1"), h(1, b"10.0.0.1"));
        assert_ne!(h(0, b"10.0.0.1"), h(0, b"10.0.0.2"));
        assert_eq!(h(5, &[7u8; MAX_KEY_LEN]), h(5, &[7u8; MAX_KEY_LEN]));
    }

    #[test]
    fn key_hash_equals_padded_bytes_hash() {
        let mut x: u64 = 0x1234_5678_9abc_def1;
        for len in 1..=MAX_KEY_LEN {
            // Miri runs the table's tests for its unsafe casts, slowly.
            for _ in 0..if cfg!(miri) { 3 } else { 50 } {
                let mut b = [0u8; MAX_KEY_LEN];
                for byte in b.iter_mut().take(len) {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    *byte = x as u8;
                }
                assert_eq!(hash_key(x, &b[..len]), hash(x, &b, len), "len {len}");
            }
        }
    }

    #[test]
    fn spreads_sequential_keys() {
        // 4096 keys into 64 buckets: no bucket wildly over its share of 64.
        let mut buckets = [0u32; 64];
        for i in 0u32..4096 {
            let k = i.to_le_bytes();
            let v = h(42, &k);
            buckets[((u128::from(v) * 64) >> 64) as usize] += 1;
        }
        assert!(
            buckets.iter().all(|&n| (32..=96).contains(&n)),
            "{buckets:?}"
        );
    }
}
