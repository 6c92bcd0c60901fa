//! Hyndman–Fan type 7 percentiles (numpy's default), by selection instead of a
//! full sort: the values are reordered in place and no copy is made.

/// The percentiles the model reports, in ascending order.
pub const REPORTED_PERCENTILES: [f64; 5] = [5.0, 25.0, 50.0, 75.0, 95.0];

/// Type 7 percentiles of `values` for `percents` (ascending, each in 0..=100),
/// bit for bit as numpy computes them. Reorders `values`.
pub fn percentiles<const P: usize>(values: &mut [f64], percents: [f64; P]) -> [f64; P] {
    debug_assert!(percents.windows(2).all(|pair| pair[0] <= pair[1]));
    let count = values.len();
    if count == 0 {
        return [f64::NAN; P];
    }
    // Everything left of `settled` is <= everything from it on, so each
    // selection only needs to look at the part that is not yet ordered.
    let mut settled = 0;
    percents.map(|percent| {
        let position = (percent / 100.0) * (count - 1) as f64;
        let low_index = (position.floor() as usize).min(count - 1);
        let fraction = position - low_index as f64;
        let (_, low, above) =
            values[settled..].select_nth_unstable_by(low_index - settled, f64::total_cmp);
        let low = *low;
        let high = above.iter().copied().reduce(f64::min).unwrap_or(low);
        settled = low_index;
        numpy_lerp(low, high, fraction)
    })
}

/// numpy's `_lerp`: exact at both ends and monotone in `t`.
fn numpy_lerp(a: f64, b: f64, t: f64) -> f64 {
    let difference = b - a;
    if t >= 0.5 {
        b - difference * (1.0 - t)
    } else {
        a + difference * t
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sorted_reference(values: &[f64], percent: f64) -> f64 {
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        let position = (percent / 100.0) * (sorted.len() - 1) as f64;
        let low = position.floor() as usize;
        let high = (low + 1).min(sorted.len() - 1);
        numpy_lerp(sorted[low], sorted[high], position - low as f64)
    }

    #[test]
    fn known_values() {
        let mut values = [1.0, 2.0, 3.0, 4.0];
        // numpy.percentile([1,2,3,4], [5,25,50,75,95]) = 1.15, 1.75, 2.5, 3.25, 3.85
        let result = percentiles(&mut values, REPORTED_PERCENTILES);
        let expected = [1.15, 1.75, 2.5, 3.25, 3.85];
        for (got, want) in result.iter().zip(expected) {
            assert!((got - want).abs() < 1e-15, "{result:?}");
        }
        assert_eq!(percentiles(&mut [7.0], [0.0, 50.0, 100.0]), [7.0; 3]);
        assert!(percentiles(&mut [], [50.0])[0].is_nan());
    }

    proptest! {
        #[test]
        fn selection_equals_sorting_and_is_monotone(
            values in proptest::collection::vec(-1e6f64..1e6, 1..300)
        ) {
            let mut work = values.clone();
            let result = percentiles(&mut work, [0.0, 5.0, 25.0, 50.0, 75.0, 95.0, 100.0]);
            for (got, percent) in result.iter().zip([0.0, 5.0, 25.0, 50.0, 75.0, 95.0, 100.0]) {
                prop_assert_eq!(got.to_bits(), sorted_reference(&values, percent).to_bits());
            }
            prop_assert!(result.windows(2).all(|pair| pair[0] <= pair[1]));
        }
    }
}
