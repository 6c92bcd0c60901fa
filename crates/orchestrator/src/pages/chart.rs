//! The fan chart: the 5th, 25th, 50th, 75th and 95th percentiles of the
//! portfolio's value at each year end, drawn by the server as SVG. The two
//! outer ranges are shaded; each percentile is a line of its own.

use maud::{Markup, html};
use wire::Percentiles;

const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 320.0;
/// Room for the value labels on the left and the years below.
const LEFT: f64 = 72.0;
const BOTTOM: f64 = 36.0;
const TOP: f64 = 12.0;
const RIGHT: f64 = 16.0;

/// Reads one percentile of a year.
type Percentile = fn(&Percentiles) -> f64;

/// The percentiles drawn, with how each is named.
const BANDS: [(&str, Percentile); 5] = [
    ("5th", |p| p.p5),
    ("25th", |p| p.p25),
    ("50th (median)", |p| p.p50),
    ("75th", |p| p.p75),
    ("95th", |p| p.p95),
];

/// The chart of `years`, year 1 first.
pub fn fan_chart(title: &str, years: &[Percentiles]) -> Markup {
    let last = years.len().saturating_sub(1);
    let value_at = |band: usize, index: usize| BANDS[band].1(&years[index]);
    let top_value = (0..years.len())
        .map(|index| value_at(4, index))
        .fold(0.0, f64::max);
    let (ticks, step) = value_ticks(top_value);
    let ceiling = step * ticks as f64;
    let x = |index: usize| LEFT + (WIDTH - LEFT - RIGHT) * index as f64 / last.max(1) as f64;
    let y = |value: f64| HEIGHT - BOTTOM - (HEIGHT - BOTTOM - TOP) * (value / ceiling).max(0.0);
    let point =
        |band: usize, index: usize| format!("{:.1},{:.1}", x(index), y(value_at(band, index)));
    let line = |band: usize| -> String {
        (0..years.len())
            .map(|index| point(band, index))
            .collect::<Vec<_>>()
            .join(" L")
    };
    let area = |low: usize, high: usize| -> String {
        let upper: Vec<String> = (0..years.len()).map(|index| point(high, index)).collect();
        let lower: Vec<String> = (0..years.len())
            .rev()
            .map(|index| point(low, index))
            .collect();
        format!("M{} L{} Z", upper.join(" L"), lower.join(" L"))
    };
    // Year 1, the horizon, and round years between.
    let year_step = years.len().div_ceil(10).max(1);
    html! {
        svg.chart viewBox=(format!("0 0 {WIDTH} {HEIGHT}")) role="img" aria-label=(title) {
            title { (title) }
            @for tick in 0..=ticks {
                @let value = step * tick as f64;
                line.grid x1=(LEFT) x2=(WIDTH - RIGHT) y1=(y(value)) y2=(y(value)) {}
                text.axis-label.value x=(LEFT - 8.0) y=(y(value) + 4.0) text-anchor="end" { (money_short(value)) }
            }
            @for index in (0..years.len()).filter(|&index| index == 0 || index == last || (index + 1) % year_step == 0) {
                text.axis-label.year x=(x(index)) y=(HEIGHT - BOTTOM + 18.0) text-anchor="middle" { (index + 1) }
            }
            text.axis-title x=((LEFT + WIDTH - RIGHT) / 2.0) y=(HEIGHT - 4.0) text-anchor="middle" { "year" }
            path.range.outer d=(area(0, 4)) {}
            path.range.inner d=(area(1, 3)) {}
            @for (band, (name, _)) in BANDS.iter().enumerate() {
                path.band data-percentile=(name) d=(format!("M{}", line(band))) {
                    title { (name) " percentile" }
                }
            }
        }
    }
}

/// Round steps for the value axis: between 4 and 8 of them up to `top`.
fn value_ticks(top: f64) -> (usize, f64) {
    if top <= 0.0 || !top.is_finite() {
        return (1, 1.0);
    }
    let magnitude = 10f64.powf(top.log10().floor());
    let step = [0.1, 0.2, 0.25, 0.5, 1.0, 2.0]
        .into_iter()
        .map(|fraction| fraction * magnitude)
        .find(|step| (top / step).ceil() <= 8.0)
        .unwrap_or(2.0 * magnitude);
    ((top / step).ceil().max(1.0) as usize, step)
}

/// A value as an axis shows it: $850k, $1.2M.
pub fn money_short(value: f64) -> String {
    let magnitude = value.abs();
    if magnitude >= 1e9 {
        format!("${:.1}B", value / 1e9)
    } else if magnitude >= 1e6 {
        format!("${:.1}M", value / 1e6)
    } else if magnitude >= 1e3 {
        format!("${:.0}k", value / 1e3)
    } else {
        format!("${value:.0}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn year(scale: f64) -> Percentiles {
        Percentiles {
            p5: 80.0 * scale,
            p25: 90.0 * scale,
            p50: 100.0 * scale,
            p75: 110.0 * scale,
            p95: 130.0 * scale,
        }
    }

    #[test]
    fn five_bands_in_order_and_labelled_axes() {
        let years: Vec<Percentiles> = (1..=10).map(|y| year(1000.0 * f64::from(y))).collect();
        let svg = fan_chart("Nominal value", &years).into_string();
        assert_eq!(svg.matches("class=\"band\"").count(), 5);
        assert_eq!(svg.matches("class=\"range ").count(), 2);
        assert!(svg.contains(">year<"));
        let years: Vec<&str> = svg
            .split("class=\"axis-label year\"")
            .skip(1)
            .map(|label| label.split('>').nth(1).unwrap().split('<').next().unwrap())
            .collect();
        assert_eq!(years, ["1", "2", "3", "4", "5", "6", "7", "8", "9", "10"]);
        assert!(svg.contains("$1.4M"), "the top of the value axis: {svg}");
        // Higher percentiles are higher on the page (smaller y) at the horizon.
        let ends: Vec<f64> = svg
            .split("class=\"band\"")
            .skip(1)
            .map(|band| {
                let path = band.split("d=\"M").nth(1).unwrap();
                let path = &path[..path.find('"').unwrap()];
                let last = path.rsplit(" L").next().unwrap();
                last.split(',').nth(1).unwrap().parse().unwrap()
            })
            .collect();
        assert!(ends.windows(2).all(|pair| pair[0] > pair[1]), "{ends:?}");
    }

    #[test]
    fn ticks_are_round_and_cover_the_top() {
        for top in [1.0, 7.5, 999.0, 1_234_567.0, 98_000_000.0] {
            let (count, step) = value_ticks(top);
            assert!((1..=8).contains(&count), "{top}: {count}");
            assert!(step * count as f64 >= top, "{top}");
            let leading = step / 10f64.powf(step.log10().floor());
            assert!(
                [1.0, 2.0, 2.5, 5.0]
                    .iter()
                    .any(|round| (leading - round).abs() < 1e-9),
                "{top}: step {step}"
            );
        }
        assert_eq!(money_short(1_250_000.0), "$1.2M");
        assert_eq!(money_short(850_000.0), "$850k");
    }
}
