//! The keyed hash that places keys in a table.
//!
//! Eight bytes at a time, each mixed with a multiply and rotate, then
//! murmur3's 64-bit finalizer. Not cryptographic: the seed keeps an outsider
//! from computing which keys collide, as long as the seed is random.

const K1: u64 = 0x9e37_79b9_7f4a_7c15;
const K2: u64 = 0xc2b2_ae3d_27d4_eb4f;

fn fmix(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// Hash of a key of `len` bytes held as 16 little-endian `u32` words,
/// zero-padded: equal to [`hash`] of the same bytes, two words at a time.
pub(crate) fn hash_words(seed: u64, words: &[u32; 16], len: usize) -> u64 {
    let mut h = seed ^ (len as u64).wrapping_mul(K1);
    let chunks = len.div_ceil(8);
    for w in words.chunks_exact(2).take(chunks) {
        let v = (u64::from(w[0]) | (u64::from(w[1]) << 32))
            .wrapping_mul(K2)
            .rotate_left(31);
        h = (h ^ v)
            .rotate_left(27)
            .wrapping_mul(K1)
            .wrapping_add(0x52dc_e729);
    }
    fmix(h)
}

/// Hash of the first `len` bytes of `bytes` (zero-padded to 64): the
/// definition [`hash_words`] must agree with.
#[cfg(test)]
pub(crate) fn hash(seed: u64, bytes: &[u8; 64], len: usize) -> u64 {
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
        let mut b = [0u8; 64];
        b[..key.len()].copy_from_slice(key);
        hash(seed, &b, key.len())
    }

    #[test]
    fn length_seed_and_content_matter() {
        assert_ne!(h(0, b"a"), h(0, b"a\0"));
        assert_ne!(h(0, b"10.0.0.1"), h(1, b"10.0.0.1"));
        assert_ne!(h(0, b"10.0.0.1"), h(0, b"10.0.0.2"));
        assert_eq!(h(5, &[7u8; 64]), h(5, &[7u8; 64]));
    }

    #[test]
    fn words_hash_equals_bytes_hash() {
        let mut x: u64 = 0x1234_5678_9abc_def1;
        for len in 1..=64usize {
            for _ in 0..50 {
                let mut b = [0u8; 64];
                for byte in b.iter_mut().take(len) {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    *byte = x as u8;
                }
                let words: [u32; 16] = core::array::from_fn(|i| {
                    u32::from_le_bytes([b[4 * i], b[4 * i + 1], b[4 * i + 2], b[4 * i + 3]])
                });
                assert_eq!(hash_words(x, &words, len), hash(x, &b, len), "len {len}");
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
