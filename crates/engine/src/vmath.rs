//! Branch-free `exp` and `ln` written so that a loop over them vectorises (AVX2
//! has no f64 <-> i64 conversion, so integer parts travel through the bits of
//! doubles), and the same on every machine. `exp` is within 2 ulp of the
//! correctly rounded result, which keeps the model's exact checks at 1e-12;
//! `ln` only shapes the rare tail of the random normals, where 1e-11 is far
//! below any Monte Carlo error.

use std::f64::consts::LOG2_E;

/// `1.5 * 2^52`: adding it rounds a double of magnitude below 2^51 to an integer,
/// which then sits in the low bits of the sum.
const ROUNDING_MAGIC: f64 = 6_755_399_441_055_744.0;
/// `2^52`, used to turn a small integer held in mantissa bits back into a double.
const TWO_POW_52: f64 = 4_503_599_627_370_496.0;
const EXPONENT_ONE: u64 = 0x3ff0_0000_0000_0000;
const MANTISSA_MASK: u64 = 0x000f_ffff_ffff_ffff;
/// High and low parts of ln 2 (fdlibm): `n * LN2_HI` is exact for |n| < 2^11.
const LN2_HI: f64 = f64::from_bits(0x3fe6_2e42_fee0_0000);
const LN2_LO: f64 = f64::from_bits(0x3dea_39ef_3579_3c76);

/// Horner evaluation with fused multiply-adds. `mul_add` rounds once whether the
/// CPU has FMA or not, so every build gets the same bits (without FMA it is a
/// slow library call, which is why the hot loops are compiled for AVX2 + FMA).
#[inline(always)]
fn horner(x: f64, coefficients_high_to_low: &[f64]) -> f64 {
    let mut result = coefficients_high_to_low[0];
    for &coefficient in &coefficients_high_to_low[1..] {
        result = result.mul_add(x, coefficient);
    }
    result
}

/// `1/n!` for n = 13 down to 2: the Taylor series of `(e^r - 1 - r) / r^2`.
const EXP_TAYLOR: [f64; 12] = [
    1.0 / 6_227_020_800.0,
    1.0 / 479_001_600.0,
    1.0 / 39_916_800.0,
    1.0 / 3_628_800.0,
    1.0 / 362_880.0,
    1.0 / 40_320.0,
    1.0 / 5_040.0,
    1.0 / 720.0,
    1.0 / 120.0,
    1.0 / 24.0,
    1.0 / 6.0,
    0.5,
];

/// `e^x` for x in [-708, 709] (clamped outside).
#[inline(always)]
pub fn exp(x: f64) -> f64 {
    let x = x.clamp(-708.0, 709.0);
    let shifted = x * LOG2_E + ROUNDING_MAGIC;
    let n = shifted - ROUNDING_MAGIC;
    // |r| <= ln(2)/2, where the Taylor series to degree 13 is exact to 4e-18.
    let r = (-n).mul_add(LN2_LO, (-n).mul_add(LN2_HI, x));
    // e^r = 1 + (r + r^2 p(r)): adding the small terms first keeps the rounding small.
    let exp_r = 1.0 + (r * r).mul_add(horner(r, &EXP_TAYLOR), r);
    // 2^n: the integer n sits in the low bits of `shifted`; move it into the exponent.
    let scale = f64::from_bits(shifted.to_bits().wrapping_add(1023) << 52);
    exp_r * scale
}

/// `1/(2j+1)` for j = 6 down to 1: `atanh(s) = s + s^3 (1/3 + s^2/5 + ...)`, truncated
/// at s^13 (error below 1e-12 for |s| <= 0.1716; it only shapes random normals).
const ATANH_TAYLOR: [f64; 6] = [
    1.0 / 13.0,
    1.0 / 11.0,
    1.0 / 9.0,
    1.0 / 7.0,
    1.0 / 5.0,
    1.0 / 3.0,
];

/// Natural logarithm for x in (0, 1] with x >= 2^-1022 (normal numbers), to about 2e-11.
#[inline(always)]
pub fn ln_unit(x: f64) -> f64 {
    let bits = x.to_bits();
    let mantissa = f64::from_bits((bits & MANTISSA_MASK) | EXPONENT_ONE);
    let exponent = f64::from_bits(0x4330_0000_0000_0000 | (bits >> 52)) - TWO_POW_52 - 1023.0;
    // Centre the mantissa on 1 so that |s| <= 0.1716.
    let high = mantissa > std::f64::consts::SQRT_2;
    let m = if high { mantissa * 0.5 } else { mantissa };
    let e = if high { exponent + 1.0 } else { exponent };
    let s = (m - 1.0) / (m + 1.0);
    let s2 = s * s;
    let ln_m = 2.0 * (s * s2).mul_add(horner(s2, &ATANH_TAYLOR), s);
    e.mul_add(std::f64::consts::LN_2, ln_m)
}

/// A double in [1, 2) from the top 52 bits of a random word.
#[inline(always)]
pub fn one_to_two(bits: u64) -> f64 {
    f64::from_bits(EXPONENT_ONE | (bits >> 12))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::f64::consts::LN_2;

    fn ulps(a: f64, b: f64) -> u64 {
        (a.to_bits() as i64 - b.to_bits() as i64).unsigned_abs()
    }

    #[test]
    fn exp_edges() {
        assert_eq!(exp(0.0), 1.0);
        assert!(ulps(exp(1.0), std::f64::consts::E) <= 1);
        assert!(exp(709.0).is_finite() && exp(1000.0).is_finite());
        assert!(exp(-1000.0) > 0.0);
        assert!(ulps(exp(LN_2 * 10.0), 1024.0) <= 2);
    }

    proptest! {
        #[test]
        fn exp_is_within_two_ulp_of_libm(x in -700.0f64..700.0) {
            prop_assert!(ulps(exp(x), x.exp()) <= 2, "x={} ours={} libm={}", x, exp(x), x.exp());
        }

        #[test]
        fn exp_is_within_two_ulp_on_monthly_returns(x in -0.5f64..0.5) {
            prop_assert!(ulps(exp(x), x.exp()) <= 2);
        }

        #[test]
        fn ln_matches_libm(x in 1e-300f64..=1.0) {
            prop_assert!((ln_unit(x) - x.ln()).abs() <= 2e-11 * x.ln().abs().max(1.0));
        }

    }
}
