//! Random numbers: Xoshiro256+ streams run side by side in lanes, so that the
//! compiler keeps each lane in a SIMD register.
//!
//! Layout (part of the reproducibility contract, pinned by tests): paths are
//! grouped into blocks of [`crate::simulate::BLOCK_PATHS`]; block `b` owns the
//! [`LANES`] streams `b * LANES + lane`. Stream `s` starts from four SplitMix64
//! outputs seeded with `mix64(seed ^ mix64(s))`: exactly `rand_xoshiro`'s
//! `Xoshiro256Plus::seed_from_u64(mix64(seed ^ mix64(s)))`. Results therefore depend on the seed and
//! these constants only, never on threads or scheduling.
//!
//! Xoshiro256+ rather than ++: its authors' choice for floating-point output,
//! and two operations cheaper per word. Its lowest three bits are weak (low
//! linear complexity), so the normals (see [`crate::normal`]) use none of them.

/// Number of independent streams a block advances together.
pub const LANES: usize = 8;

/// The SplitMix64 finaliser: a bijective 64-bit mix.
#[inline]
pub fn mix64(value: u64) -> u64 {
    let mut z = value;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

const SPLITMIX_GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;

/// The starting state of stream `stream` for `seed`.
pub fn stream_state(seed: u64, stream: u64) -> [u64; 4] {
    let mut splitmix = mix64(seed ^ mix64(stream));
    std::array::from_fn(|_| {
        splitmix = splitmix.wrapping_add(SPLITMIX_GAMMA);
        mix64(splitmix)
    })
}

/// [`LANES`] Xoshiro256+ generators in structure-of-arrays form.
#[derive(Debug, Clone)]
pub struct LaneRng {
    state: [[u64; LANES]; 4],
}

impl LaneRng {
    /// The generators of streams `first_stream .. first_stream + LANES`.
    pub fn new(seed: u64, first_stream: u64) -> Self {
        let mut state = [[0; LANES]; 4];
        for lane in 0..LANES {
            let lane_state = stream_state(seed, first_stream + lane as u64);
            for (word, value) in lane_state.into_iter().enumerate() {
                state[word][lane] = value;
            }
        }
        LaneRng { state }
    }

    /// The next output of one lane alone.
    #[inline(always)]
    pub fn next_of(&mut self, lane: usize) -> u64 {
        let [s0, s1, s2, s3] = &mut self.state;
        let output = s0[lane].wrapping_add(s3[lane]);
        let t = s1[lane] << 17;
        s2[lane] ^= s0[lane];
        s3[lane] ^= s1[lane];
        s1[lane] ^= s2[lane];
        s0[lane] ^= s3[lane];
        s2[lane] ^= t;
        s3[lane] = s3[lane].rotate_left(45);
        output
    }
}

/// The [`LANES`] generators held in AVX2 registers, two per state word.
#[cfg(target_arch = "x86_64")]
pub(crate) struct Avx2Lanes {
    state: [[std::arch::x86_64::__m256i; 2]; 4],
}

#[cfg(target_arch = "x86_64")]
impl LaneRng {
    /// Loads the state into registers; [`LaneRng::store_avx2`] puts it back.
    #[target_feature(enable = "avx2")]
    pub(crate) fn load_avx2(&self) -> Avx2Lanes {
        use std::arch::x86_64::_mm256_loadu_si256;
        // SAFETY: each read is four in-bounds words of a `[u64; LANES]` row.
        let state = self.state.map(|row| unsafe {
            [
                _mm256_loadu_si256(row.as_ptr().cast()),
                _mm256_loadu_si256(row.as_ptr().add(4).cast()),
            ]
        });
        Avx2Lanes { state }
    }

    #[target_feature(enable = "avx2")]
    pub(crate) fn store_avx2(&mut self, lanes: Avx2Lanes) {
        use std::arch::x86_64::_mm256_storeu_si256;
        for (row, [low, high]) in self.state.iter_mut().zip(lanes.state) {
            // SAFETY: each write is four in-bounds words of a `[u64; LANES]` row.
            unsafe {
                _mm256_storeu_si256(row.as_mut_ptr().cast(), low);
                _mm256_storeu_si256(row.as_mut_ptr().add(4).cast(), high);
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
impl Avx2Lanes {
    /// The next output of every lane (lanes 0-3, then 4-7): the same step as
    /// [`LaneRng::next_of`].
    #[inline]
    #[target_feature(enable = "avx2")]
    pub(crate) fn next(&mut self) -> [std::arch::x86_64::__m256i; 2] {
        use std::arch::x86_64::*;
        std::array::from_fn(|half| {
            let [s0, s1, s2, s3] = self.state.each_mut().map(|word| &mut word[half]);
            let output = _mm256_add_epi64(*s0, *s3);
            let t = _mm256_slli_epi64::<17>(*s1);
            *s2 = _mm256_xor_si256(*s2, *s0);
            *s3 = _mm256_xor_si256(*s3, *s1);
            *s1 = _mm256_xor_si256(*s1, *s2);
            *s0 = _mm256_xor_si256(*s0, *s3);
            *s2 = _mm256_xor_si256(*s2, t);
            *s3 = _mm256_or_si256(_mm256_slli_epi64::<45>(*s3), _mm256_srli_epi64::<19>(*s3));
            output
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_xoshiro::Xoshiro256Plus;
    use rand_xoshiro::rand_core::{Rng, SeedableRng};

    #[test]
    fn each_lane_is_the_reference_xoshiro256plus() {
        let mut lanes = LaneRng::new(12345, 40);
        let out: Vec<u64> = (0..LANES * 100).map(|i| lanes.next_of(i % LANES)).collect();
        for lane in 0..LANES {
            let state = stream_state(12345, 40 + lane as u64);
            let mut seed_bytes = [0u8; 32];
            for (word, value) in state.iter().enumerate() {
                seed_bytes[word * 8..word * 8 + 8].copy_from_slice(&value.to_le_bytes());
            }
            let mut reference = Xoshiro256Plus::from_seed(seed_bytes);
            for step in 0..100 {
                assert_eq!(
                    out[step * LANES + lane],
                    reference.next_u64(),
                    "lane {lane} step {step}"
                );
            }
        }
    }

    #[test]
    fn stream_seeding_is_rands_seed_from_u64_of_the_mixed_seed() {
        let mut ours = LaneRng::new(99, 3);
        let out: Vec<u64> = (0..LANES * 4).map(|i| ours.next_of(i % LANES)).collect();
        for lane in 0..LANES {
            let stream_seed = mix64(99 ^ mix64(3 + lane as u64));
            let mut reference = Xoshiro256Plus::seed_from_u64(stream_seed);
            for step in 0..4 {
                assert_eq!(out[step * LANES + lane], reference.next_u64());
            }
        }
        assert_ne!(stream_state(1, 0), stream_state(1, 1));
        assert_ne!(stream_state(1, 0), stream_state(2, 0));
    }
}
