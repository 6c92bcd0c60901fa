//! Standard normals by the ziggurat method (Marsaglia and Tsang, 2000): 256
//! layers of equal area under the density, the layer index and the uniform
//! taken from separate bits of one word (as in Doornik's ZIGNOR).
//!
//! One word gives a normal 98.5% of the time: layer `i` from bits 4 to 11
//! (above the generator's weak lowest bits), `u` in [-1, 1) from the top 52,
//! `x = u * x[i]`, accepted when `|x| < x[i + 1]`, inside the part of the
//! layer that lies wholly under the density. [`candidate`] is that test,
//! branch-free so that a batch runs it side by side; [`settle`] finishes the
//! rare rest one by one (the wedge beside a layer's rectangle, and the tail
//! beyond `x[1]`) with further words from the same stream. The tables are
//! constants (`ziggurat_tables.rs`, generated at 60 digits), and the wedge and
//! tail use the engine's own `exp` and `ln`, so a normal is the same on every
//! machine.

use crate::isa::InstructionSet;
use crate::rng::{LANES, LaneRng};
use crate::vmath;
use crate::ziggurat_tables::{DENSITIES, EDGES, TAIL_START};

/// Normals drawn at a time: one month of a block of paths.
pub const BATCH: usize = 512;
/// One bit per slot, set where the fast path rejected the slot's word.
type Rejected = [u64; BATCH / 64];

const LAYER_SHIFT: u32 = 4;
const LAYER_MASK: u64 = 0xff;
/// The exponent bits of 2.0: with 52 random mantissa bits, a double in [2, 4).
const EXPONENT_TWO: u64 = 0x4000_0000_0000_0000;

#[inline(always)]
fn layer(bits: u64) -> usize {
    ((bits >> LAYER_SHIFT) & LAYER_MASK) as usize
}

/// A double in [-1, 1) from the top 52 bits.
#[inline(always)]
fn signed_unit(bits: u64) -> f64 {
    f64::from_bits(EXPONENT_TWO | (bits >> 12)) - 3.0
}

/// Fills `out` with normals. Slot `s` takes the next word of lane `s % LANES`;
/// the slots the fast path rejects are then settled in slot order, each with
/// further words of its own lane. Every instruction set gives the same bits.
#[inline]
pub fn fill(rng: &mut LaneRng, out: &mut [f64; BATCH], isa: InstructionSet) {
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: callers pass the set the CPU runs (`crate::isa`), and every
        // CPU with AVX-512F has AVX2 and FMA too.
        InstructionSet::Avx2 | InstructionSet::Avx512 => unsafe { fill_avx2(rng, out) },
        _ => fill_portable(rng, out),
    }
}

/// A slot the fast path rejects keeps its word, as the bits of a double, until
/// [`settle_rejected`] puts the normal there: no separate buffer of words to
/// clear for every batch.
fn fill_portable(rng: &mut LaneRng, out: &mut [f64; BATCH]) {
    let mut rejected: Rejected = [0; BATCH / 64];
    for (slot, value) in out.iter_mut().enumerate() {
        let bits = rng.next_of(slot % LANES);
        let (x, stands) = candidate(bits);
        *value = if stands { x } else { f64::from_bits(bits) };
        rejected[slot / 64] |= u64::from(!stands) << (slot % 64);
    }
    settle_rejected(rng, out, rejected);
}

/// [`fill_portable`] four slots at a time.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn fill_avx2(rng: &mut LaneRng, out: &mut [f64; BATCH]) {
    use std::arch::x86_64::*;
    let mut rejected: Rejected = [0; BATCH / 64];
    let mut lanes = rng.load_avx2();
    let exponent_two = _mm256_set1_epi64x(EXPONENT_TWO as i64);
    let three = _mm256_set1_pd(3.0);
    let sign_bit = _mm256_set1_pd(-0.0);
    for (group, rejected) in rejected.iter_mut().enumerate() {
        // Collected in a register: one store per 64 slots.
        let mut fails = 0;
        for step in 0..64 / LANES {
            for (half, bits) in lanes.next().into_iter().enumerate() {
                let offset = step * LANES + half * 4;
                let unit = _mm256_or_si256(_mm256_srli_epi64::<12>(bits), exponent_two);
                let u = _mm256_sub_pd(_mm256_castsi256_pd(unit), three);
                let [edge, next_edge] = edges_of(bits);
                let x = _mm256_mul_pd(u, edge);
                let stands = _mm256_cmp_pd::<_CMP_LT_OQ>(_mm256_andnot_pd(sign_bit, x), next_edge);
                let kept = _mm256_blendv_pd(_mm256_castsi256_pd(bits), x, stands);
                // SAFETY: slots step by four within the 512 of `out`.
                unsafe { _mm256_storeu_pd(out.as_mut_ptr().add(group * 64 + offset), kept) };
                fails |= (!_mm256_movemask_pd(stands) as u64 & 0xf) << offset;
            }
        }
        *rejected = fails;
    }
    rng.store_avx2(lanes);
    settle_rejected(rng, out, rejected);
}

/// `x[i]` and `x[i + 1]` of the layers of four words, as two vectors: one
/// 16-byte load per word and four shuffles, which on Zen 3 beats two gathers.
#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx2")]
fn edges_of(bits: std::arch::x86_64::__m256i) -> [std::arch::x86_64::__m256d; 2] {
    use std::arch::x86_64::*;
    let mut words = [0u64; 4];
    // SAFETY: four words into an array of four.
    unsafe { _mm256_storeu_si256(words.as_mut_ptr().cast(), bits) };
    // SAFETY: a layer is at most 255 and EDGES holds 257 entries, so each
    // 16-byte load stays inside the table.
    let pair = |word: u64| unsafe { _mm_loadu_pd(EDGES.as_ptr().add(layer(word))) };
    let first_third =
        _mm256_insertf128_pd::<1>(_mm256_castpd128_pd256(pair(words[0])), pair(words[2]));
    let second_fourth =
        _mm256_insertf128_pd::<1>(_mm256_castpd128_pd256(pair(words[1])), pair(words[3]));
    [
        _mm256_unpacklo_pd(first_third, second_fourth),
        _mm256_unpackhi_pd(first_third, second_fourth),
    ]
}

/// Settles the rejected slots in slot order, each from the word it holds.
#[inline(always)]
fn settle_rejected(rng: &mut LaneRng, out: &mut [f64; BATCH], rejected: Rejected) {
    for (group, mut mask) in rejected.into_iter().enumerate() {
        while mask != 0 {
            let slot = group * 64 + mask.trailing_zeros() as usize;
            mask &= mask - 1;
            out[slot] = settle(out[slot].to_bits(), || rng.next_of(slot % LANES));
        }
    }
}

/// The fast path for one word: the candidate normal, and whether it stands.
#[inline(always)]
pub fn candidate(bits: u64) -> (f64, bool) {
    let layer = layer(bits);
    let x = signed_unit(bits) * EDGES[layer];
    (x, x.abs() < EDGES[layer + 1])
}

/// The normal that a word failing [`candidate`] leads to, drawing any further
/// words it needs from `next`. Inlined, so that it is compiled for the
/// caller's instruction set: elsewhere `mul_add` is a library call.
#[inline(always)]
pub fn settle(mut bits: u64, mut next: impl FnMut() -> u64) -> f64 {
    loop {
        let (x, stands) = candidate(bits);
        if stands {
            return x;
        }
        let layer = layer(bits);
        if layer == 0 {
            return tail(x < 0.0, &mut next);
        }
        // A point of the wedge's bounding box: under the density or not.
        let height = (DENSITIES[layer + 1] - DENSITIES[layer])
            .mul_add(vmath::one_to_two(next()) - 1.0, DENSITIES[layer]);
        if height < vmath::exp(-0.5 * x * x) {
            return x;
        }
        bits = next();
    }
}

/// A normal beyond `TAIL_START` (Marsaglia, 1964), on the side `negative` says.
#[inline(always)]
fn tail(negative: bool, next: &mut impl FnMut() -> u64) -> f64 {
    loop {
        // Both uniforms in (0, 1], so the logarithms are finite.
        let x = vmath::ln_unit(2.0 - vmath::one_to_two(next())) / TAIL_START;
        let y = vmath::ln_unit(2.0 - vmath::one_to_two(next()));
        if -2.0 * y >= x * x {
            let magnitude = TAIL_START - x;
            return if negative { -magnitude } else { magnitude };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn density(x: f64) -> f64 {
        (-0.5 * x * x).exp()
    }

    /// The unnormalised density's integral over [0, infinity).
    const HALF_AREA: f64 = 1.253_314_137_315_500_3;

    #[test]
    fn the_tables_are_a_ziggurat_of_the_normal_density() {
        assert_eq!(EDGES[1], TAIL_START);
        assert_eq!((EDGES[256], DENSITIES[256]), (0.0, 1.0));
        // The base layer: its rectangle and the tail beyond it, stretched to a
        // rectangle of x[0] (the quadrature is good to about 1e-14 absolute).
        let area = EDGES[0] * DENSITIES[1];
        let tail = HALF_AREA - area_up_to(EDGES[1]);
        assert!((EDGES[1] * DENSITIES[1] + tail - area).abs() < 1e-11 * area);
        for layer in 0..256 {
            assert!(EDGES[layer + 1] < EDGES[layer]);
            // The table holds f of the exact edge, rounded; f of the rounded
            // edge differs by up to x * ulp(x) relative.
            assert!((DENSITIES[layer] - density(EDGES[layer])).abs() <= 1e-14 * DENSITIES[layer]);
        }
        for layer in 1..256 {
            let layer_area = EDGES[layer] * (DENSITIES[layer + 1] - DENSITIES[layer]);
            assert!(
                (layer_area - area).abs() < 1e-14,
                "layer {layer}: {layer_area} against {area}"
            );
        }
        let fast: f64 = (0..256).map(|i| EDGES[i + 1] / EDGES[i]).sum::<f64>() / 256.0;
        assert!((0.98..0.99).contains(&fast), "{fast}");
    }

    /// The density's integral over [0, x], by Simpson's rule on a fine grid.
    fn area_up_to(x: f64) -> f64 {
        let steps = 100_000;
        let h = x / steps as f64;
        let inner: f64 = (1..steps)
            .map(|i| density(i as f64 * h) * if i % 2 == 1 { 4.0 } else { 2.0 })
            .sum();
        (density(0.0) + inner + density(x)) * h / 3.0
    }

    #[test]
    fn the_fast_path_is_settle_on_its_own_word() {
        let mut state = 7u64;
        for _ in 0..100_000 {
            state = crate::rng::mix64(state.wrapping_add(1));
            let (x, stands) = candidate(state);
            if stands {
                assert_eq!(settle(state, || unreachable!()), x);
            }
        }
    }

    #[test]
    fn tail_and_wedge_words_give_values_in_their_region() {
        let mut counter = 0u64;
        let mut next = || {
            counter += 1;
            crate::rng::mix64(counter)
        };
        // Layer 0 with u at either end: beyond the base rectangle, into the tail.
        for (word, sign) in [(u64::MAX << 12, 1.0), (0, -1.0)] {
            let (x, stands) = candidate(word);
            assert!(!stands && x * sign > TAIL_START, "{x}");
            for _ in 0..1_000 {
                let value = settle(word, &mut next) * sign;
                assert!(value > TAIL_START && value < 40.0, "{value}");
            }
        }
        // The top layer has no rectangle: every word goes to its wedge.
        let top_word = (255 << LAYER_SHIFT) | (0x123_4567_89ab << 12);
        assert!(!candidate(top_word).1);
        assert!(settle(top_word, &mut next).is_finite());
    }

    #[test]
    fn every_instruction_set_draws_the_same_normals() {
        let isas = [InstructionSet::Avx2, InstructionSet::Avx512]
            .into_iter()
            .filter(|isa| *isa <= InstructionSet::detected());
        for isa in isas {
            let (mut portable_rng, mut rng) = (LaneRng::new(9, 64), LaneRng::new(9, 64));
            let (mut portable, mut out) = ([0.0; BATCH], [0.0; BATCH]);
            for _ in 0..200 {
                fill(&mut portable_rng, &mut portable, InstructionSet::Portable);
                fill(&mut rng, &mut out, isa);
                assert_eq!(portable.map(f64::to_bits), out.map(f64::to_bits), "{isa:?}");
            }
            assert_eq!(portable_rng.next_of(3), rng.next_of(3));
        }
    }

    /// Two million normals drawn as the engine draws them: moments and
    /// the probability beyond each threshold, into the tail, at 4 standard errors.
    #[test]
    fn the_normals_have_the_normal_distribution() {
        let mut rng = LaneRng::new(2024, 0);
        let mut normals = [0.0; BATCH];
        let mut beyond = [0usize; THRESHOLDS.len()];
        let (mut sum, mut sum_sq, mut sum_4) = (0.0, 0.0, 0.0);
        let batches = 4_000;
        for _ in 0..batches {
            fill(&mut rng, &mut normals, InstructionSet::detected());
            for &z in &normals {
                sum += z;
                sum_sq += z * z;
                sum_4 += z * z * z * z;
                for (count, (threshold, _)) in beyond.iter_mut().zip(THRESHOLDS) {
                    *count += usize::from(z.abs() > threshold);
                }
            }
        }
        let n = (batches * BATCH) as f64;
        // Standard errors: mean 1/sqrt(n), variance sqrt(2/n), kurtosis sqrt(96/n).
        assert!((sum / n).abs() < 4.0 / n.sqrt(), "mean {}", sum / n);
        assert!((sum_sq / n - 1.0).abs() < 4.0 * (2.0 / n).sqrt());
        assert!((sum_4 / n - 3.0).abs() < 4.0 * (96.0 / n).sqrt());
        for (count, (threshold, probability)) in beyond.iter().zip(THRESHOLDS) {
            let observed = *count as f64 / n;
            let error = (probability * (1.0 - probability) / n).sqrt();
            assert!(
                (observed - probability).abs() < 4.0 * error,
                "P(|z| > {threshold}) = {observed}, expected {probability}"
            );
        }
    }

    /// `(t, P(|z| > t))` for a standard normal z: erfc(t / sqrt(2)).
    const THRESHOLDS: [(f64, f64); 9] = [
        (0.25, 0.802_587_348_634_152_6),
        (0.5, 0.617_075_077_451_973_8),
        (1.0, 0.317_310_507_862_914_1),
        (1.5, 0.133_614_402_537_716_13),
        (2.0, 0.045_500_263_896_358_41),
        (2.5, 0.012_419_330_651_552_27),
        (3.0, 0.002_699_796_063_260_189),
        (TAIL_START, 0.000_258_032_487_653_900_7),
        (4.0, 0.000_063_342_483_666_239_84),
    ];
}
