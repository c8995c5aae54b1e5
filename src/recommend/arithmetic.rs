//! The numbers under a recommendation: percentiles of samples, counters' increases, the
//! span of a history, and rounding up to values people write. Pure functions.

use std::time::Duration;

use super::api::Point;

/// The `quantile` (0 < q ≤ 1) of the values by nearest rank: the smallest value that at
/// least that share of the values does not exceed. Always one of the values, never an
/// interpolation. `None` without values; NaNs are left out.
pub fn percentile(values: &[f64], quantile: f64) -> Option<f64> {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| !v.is_nan()).collect();
    if sorted.is_empty() {
        return None;
    }
    sorted.sort_by(f64::total_cmp);
    let rank = (quantile * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// The middle value (the lower of the two middle ones for an even count).
pub fn median(values: &[f64]) -> Option<f64> {
    percentile(values, 0.5)
}

pub fn peak(values: &[f64]) -> Option<f64> {
    values
        .iter()
        .copied()
        .filter(|v| !v.is_nan())
        .max_by(f64::total_cmp)
}

/// How much a counter grew over its points: each rise counted, a fall read as a reset
/// (counting from 0 again, so the new value is all growth). When the series was born
/// inside the window (`born_inside`), its first value grew inside it too.
pub fn counter_increase(points: &[Point], born_inside: bool) -> f64 {
    let mut increase = match (born_inside, points.first()) {
        (true, Some(first)) => first.value.max(0.0),
        _ => 0.0,
    };
    for pair in points.windows(2) {
        let (before, after) = (pair[0].value, pair[1].value);
        increase += if after >= before {
            after - before
        } else {
            after
        };
    }
    increase
}

/// Whether a series began after the window's first point: the thing it counts started
/// inside the window (a container started, or first scraped, then).
pub fn born_inside(points: &[Point], first_point: f64, step: Duration) -> bool {
    points
        .first()
        .is_some_and(|first| first.time > first_point + step.as_secs_f64() / 2.0)
}

/// The time a history covers: from its first point to its last, each point standing for
/// the step that ends at it.
pub fn span(points: &[Point], step: Duration) -> Duration {
    match (points.first(), points.last()) {
        (Some(first), Some(last)) => span_between(first.time, last.time, step),
        _ => Duration::ZERO,
    }
}

/// The time from a first point to a last one (seconds since the epoch), each point
/// standing for the step that ends at it.
pub fn span_between(first: f64, last: f64, step: Duration) -> Duration {
    Duration::from_secs_f64((last - first).max(0.0)) + step
}

/// Rounds up to a value people write: 1, 1.25, 1.5 or 1.75 times a power of two (`48m`,
/// `384m`, `1.5g`, 80 tasks). Four steps per doubling, so the result is less than 25 %
/// above the value (it is exact for values up to 4). For sizes of 4 MiB and more every
/// step is a whole number of MiB.
pub fn round_up_quarter_power_of_two(value: f64) -> u64 {
    // NaN too.
    if value.is_nan() || value <= 0.0 {
        return 0;
    }
    let whole = value.ceil().min(u64::MAX as f64) as u64;
    if whole <= 4 {
        return whole;
    }
    let power = 63 - whole.leading_zeros();
    let step = 1u64 << (power - 2);
    whole.div_ceil(step).saturating_mul(step)
}

/// Hundredths of a CPU, so that recommended `cpus` are exact (`0.25`, not 0.25000000001).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct CentiCpus(pub u64);

impl CentiCpus {
    pub fn cpus(self) -> f64 {
        self.0 as f64 / 100.0
    }
}

impl std::fmt::Display for CentiCpus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (whole, hundredths) = (self.0 / 100, self.0 % 100);
        match hundredths {
            0 => write!(f, "{whole}"),
            h if h % 10 == 0 => write!(f, "{whole}.{}", h / 10),
            h => write!(f, "{whole}.{h:02}"),
        }
    }
}

/// Rounds CPUs up to a value people write: a multiple of 0.05 below 1 CPU, of 0.25 below
/// 4, of 0.5 from there. At most 0.05 CPU above the value below 1 CPU, and less than 25 %
/// above it beyond.
pub fn round_up_cpus(cpus: f64) -> CentiCpus {
    if cpus.is_nan() || cpus <= 0.0 {
        return CentiCpus(0);
    }
    // A hair under a step stays on it: 0.2 * 100 is 20.000000000000004.
    let hundredths = (cpus * 100.0 - 1e-6).ceil().max(1.0) as u64;
    let step = match hundredths {
        0..100 => 5,
        100..400 => 25,
        _ => 50,
    };
    CentiCpus(hundredths.div_ceil(step) * step)
}

/// Rounds CPUs down to a whole hundredth (for a cap: the host's CPUs).
pub fn round_down_cpus(cpus: f64) -> CentiCpus {
    CentiCpus((cpus * 100.0 + 1e-6).floor().max(0.0) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn points(values: &[f64]) -> Vec<Point> {
        values
            .iter()
            .enumerate()
            .map(|(index, &value)| Point {
                time: index as f64,
                value,
            })
            .collect()
    }

    #[test]
    fn percentiles_by_nearest_rank() {
        let values: Vec<f64> = (1..=20).map(f64::from).collect();
        assert_eq!(percentile(&values, 0.95), Some(19.0));
        assert_eq!(percentile(&values, 0.9), Some(18.0));
        assert_eq!(percentile(&values, 1.0), Some(20.0));
        assert_eq!(percentile(&values, 0.01), Some(1.0));
        assert_eq!(median(&values), Some(10.0));
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(percentile(&[5.0], 0.95), Some(5.0));
        assert_eq!(percentile(&[], 0.95), None);
        assert_eq!(percentile(&[f64::NAN, 2.0], 0.5), Some(2.0));
        assert_eq!(peak(&[1.0, f64::NAN, 7.0, 3.0]), Some(7.0));
        assert_eq!(peak(&[]), None);
    }

    #[test]
    fn counters_grow_across_resets_and_from_birth() {
        assert_eq!(counter_increase(&points(&[2.0, 2.0, 3.0, 5.0]), false), 3.0);
        // Reset to 1 after 5: one more since the reset.
        assert_eq!(counter_increase(&points(&[2.0, 5.0, 1.0, 2.0]), false), 5.0);
        assert_eq!(counter_increase(&points(&[2.0, 3.0]), true), 3.0);
        assert_eq!(counter_increase(&[], true), 0.0);
        let late = points(&[0.0, 1.0]);
        assert!(!born_inside(&late, 0.0, Duration::from_secs(1)));
        assert!(born_inside(&late, -5.0, Duration::from_secs(1)));
    }

    #[test]
    fn spans_count_a_step_per_point() {
        let step = Duration::from_secs(60);
        assert_eq!(span(&points(&[1.0]), step), step);
        assert_eq!(
            span(&points(&[1.0, 1.0, 1.0]), step),
            Duration::from_secs(62)
        );
        assert_eq!(span(&[], step), Duration::ZERO);
    }

    #[test]
    fn sizes_round_up_to_quarters_of_powers_of_two() {
        const MIB: f64 = 1024.0 * 1024.0;
        let mib = |value: u64| value << 20;
        assert_eq!(round_up_quarter_power_of_two(46.0 * MIB), mib(48));
        assert_eq!(round_up_quarter_power_of_two(48.0 * MIB), mib(48));
        assert_eq!(round_up_quarter_power_of_two(48.0 * MIB + 1.0), mib(56));
        assert_eq!(round_up_quarter_power_of_two(330.0 * MIB), mib(384));
        assert_eq!(round_up_quarter_power_of_two(1100.0 * MIB), mib(1280));
        assert_eq!(round_up_quarter_power_of_two(1.0), 1);
        assert_eq!(round_up_quarter_power_of_two(5.5), 6);
        assert_eq!(round_up_quarter_power_of_two(9.0), 10);
        assert_eq!(round_up_quarter_power_of_two(65.0), 80);
        assert_eq!(round_up_quarter_power_of_two(0.0), 0);
        assert_eq!(round_up_quarter_power_of_two(f64::NAN), 0);
    }

    #[test]
    fn cpus_round_up_to_twentieths_quarters_and_halves() {
        assert_eq!(round_up_cpus(0.2).to_string(), "0.2");
        assert_eq!(round_up_cpus(0.23).to_string(), "0.25");
        assert_eq!(round_up_cpus(0.001).to_string(), "0.05");
        assert_eq!(round_up_cpus(0.96).to_string(), "1");
        assert_eq!(round_up_cpus(1.1).to_string(), "1.25");
        assert_eq!(round_up_cpus(3.8).to_string(), "4");
        assert_eq!(round_up_cpus(4.1).to_string(), "4.5");
        assert_eq!(round_up_cpus(0.0), CentiCpus(0));
        assert_eq!(round_down_cpus(2.0), CentiCpus(200));
        assert_eq!(CentiCpus(5).to_string(), "0.05");
    }

    proptest! {
        #[test]
        fn a_percentile_is_one_of_the_values_and_grows_with_the_quantile(
            values in proptest::collection::vec(0.0f64..1e6, 1..50),
            low in 0.01f64..1.0,
            high in 0.01f64..1.0,
        ) {
            let (low, high) = (low.min(high), low.max(high));
            let at_low = percentile(&values, low).unwrap();
            let at_high = percentile(&values, high).unwrap();
            prop_assert!(values.contains(&at_low));
            prop_assert!(at_low <= at_high);
            let share_not_above = values.iter().filter(|v| **v <= at_high).count() as f64 / values.len() as f64;
            prop_assert!(share_not_above >= high);
        }

        #[test]
        fn sizes_round_up_by_less_than_a_quarter(value in 1.0f64..1e15) {
            let rounded = round_up_quarter_power_of_two(value) as f64;
            prop_assert!(rounded >= value);
            prop_assert!(rounded < value.ceil() * 1.25 || value <= 4.0);
        }

        #[test]
        fn cpus_round_up_within_the_stated_bound(cpus in 0.001f64..64.0) {
            let rounded = round_up_cpus(cpus).cpus();
            prop_assert!(rounded >= cpus - 1e-9);
            if cpus < 1.0 {
                prop_assert!(rounded - cpus < 0.05 + 1e-9);
            } else {
                prop_assert!(rounded < cpus * 1.25);
            }
        }

        #[test]
        fn counters_never_shrink(values in proptest::collection::vec(0.0f64..1e9, 0..30), born in any::<bool>()) {
            prop_assert!(counter_increase(&points(&values), born) >= 0.0);
        }
    }
}
