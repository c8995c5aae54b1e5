//! Durations as Prometheus writes them (`250ms`, `40s`, `1h30m`, `7d`, `1w`, `1y`): for
//! flags, for reading Prometheus' own settings (its retention), and written back for
//! people and for PromQL. Pure functions of their text.

use std::time::Duration;

/// The units, largest first: Prometheus' order, in which a compound duration must be
/// written (`1d12h`, never `12h1d`). A year is 365 days and a week 7, as in Prometheus.
const UNITS: [(&str, u64); 7] = [
    ("y", 365 * 24 * 3600 * 1000),
    ("w", 7 * 24 * 3600 * 1000),
    ("d", 24 * 3600 * 1000),
    ("h", 3600 * 1000),
    ("m", 60 * 1000),
    ("s", 1000),
    ("ms", 1),
];

/// Reads a duration: one or more `<whole number><unit>` with units `y w d h m s ms`, each
/// at most once and largest first, as Prometheus reads `[5m]` or `--storage.tsdb.retention.time`.
pub fn parse(text: &str) -> Result<Duration, String> {
    let invalid = |why: &str| {
        Err(format!(
            "{text:?} is not a duration ({why}); write e.g. 40s, 15m, 1h30m, 7d"
        ))
    };
    if text.is_empty() {
        return invalid("it is empty");
    }
    let mut rest = text;
    let mut millis: u64 = 0;
    // Units already used, as an index into UNITS: the next must come later in the list.
    let mut next_unit = 0;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return invalid("each part is a whole number and a unit");
        }
        let Ok(number) = rest[..digits].parse::<u64>() else {
            return invalid("a number is too large");
        };
        rest = &rest[digits..];
        if rest.starts_with('.') {
            return invalid("each part is a whole number and a unit: 90m, not 1.5h");
        }
        let unit_length = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = &rest[..unit_length];
        rest = &rest[unit_length..];
        let Some(index) = UNITS.iter().position(|(name, _)| *name == unit) else {
            return if unit.is_empty() {
                invalid("a number has no unit")
            } else {
                invalid(&format!("`{unit}` is not a unit: y, w, d, h, m, s or ms"))
            };
        };
        if index < next_unit {
            return invalid("units go from the largest to the smallest, each once");
        }
        next_unit = index + 1;
        let Some(part) = number.checked_mul(UNITS[index].1) else {
            return invalid("it is too long");
        };
        let Some(sum) = millis.checked_add(part) else {
            return invalid("it is too long");
        };
        millis = sum;
    }
    Ok(Duration::from_millis(millis))
}

/// A duration for people, in days, hours, minutes, seconds and milliseconds (`7d`,
/// `1d12h`, `1m30s`, `0s`); sub-millisecond parts are dropped. `parse` reads it back.
pub fn format(duration: Duration) -> String {
    let mut millis = duration.as_millis().min(u128::from(u64::MAX)) as u64;
    if millis == 0 {
        return "0s".to_owned();
    }
    let mut text = String::new();
    for (unit, size) in UNITS {
        // Weeks and years read less plainly than days in evidence ("8d", not "1w1d").
        if unit == "y" || unit == "w" {
            continue;
        }
        if millis >= size {
            text.push_str(&format!("{}{unit}", millis / size));
            millis %= size;
        }
    }
    text
}

/// A duration as a PromQL range or API parameter: whole seconds when it has no fraction
/// of one (`604800s`), milliseconds otherwise; every Prometheus version reads both.
pub fn promql(duration: Duration) -> String {
    let millis = duration.as_millis();
    if millis.is_multiple_of(1000) {
        format!("{}s", millis / 1000)
    } else {
        format!("{millis}ms")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn prometheus_durations() {
        assert_eq!(parse("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse("40s"), Ok(Duration::from_secs(40)));
        assert_eq!(parse("7d"), Ok(Duration::from_secs(7 * 86400)));
        assert_eq!(parse("1w"), Ok(Duration::from_secs(7 * 86400)));
        assert_eq!(parse("1y"), Ok(Duration::from_secs(365 * 86400)));
        assert_eq!(parse("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse("1d12h5s"), Ok(Duration::from_secs(86400 + 43200 + 5)));
        assert_eq!(parse("0s"), Ok(Duration::ZERO));
        assert_eq!(parse("1m1ms"), Ok(Duration::from_millis(60_001)));
    }

    #[test]
    fn what_is_not_a_duration_says_why() {
        for (text, why) in [
            ("", "empty"),
            ("5", "no unit"),
            ("m", "whole number"),
            ("1.5h", "whole number"),
            ("-1s", "whole number"),
            ("3 days", "not a unit"),
            ("3x", "`x` is not a unit"),
            ("30m1h", "largest to the smallest"),
            ("1s1s", "largest to the smallest"),
            ("99999999999999999999s", "too large"),
            ("999999999999y", "too long"),
        ] {
            let error = parse(text).unwrap_err();
            assert!(error.contains(why), "{text:?}: {error}");
        }
    }

    #[test]
    fn durations_for_people_and_for_promql() {
        assert_eq!(format(Duration::from_secs(7 * 86400)), "7d");
        assert_eq!(format(Duration::from_secs(86400 + 43200)), "1d12h");
        assert_eq!(format(Duration::from_secs(90)), "1m30s");
        assert_eq!(format(Duration::from_millis(1500)), "1s500ms");
        assert_eq!(format(Duration::ZERO), "0s");
        assert_eq!(promql(Duration::from_secs(604_800)), "604800s");
        assert_eq!(promql(Duration::from_millis(2500)), "2500ms");
    }

    /// Any text of up to 12 characters.
    const SHORT_TEXT: &str = "\\PC{0,12}";

    proptest! {
        #[test]
        fn only_numbers_with_units_are_read(text in SHORT_TEXT) {
            // Every part starts with a digit and nothing but digits and unit letters are
            // read; a refusal says what a duration looks like.
            match parse(&text) {
                Ok(_) => assert!(
                    text.starts_with(|c: char| c.is_ascii_digit())
                        && text.chars().all(|c| c.is_ascii_digit() || "ywdhms".contains(c)),
                    "{:?} was read", text
                ),
                Err(why) => assert!(why.contains("is not a duration"), "{}", why),
            }
        }

        #[test]
        fn formatted_durations_read_back(millis in 0u64..(400 * 365 * 86_400_000)) {
            let duration = Duration::from_millis(millis);
            prop_assert_eq!(parse(&format(duration)), Ok(duration));
            prop_assert_eq!(parse(&promql(duration)), Ok(duration));
        }

        #[test]
        fn compound_durations_add_their_parts(
            days in 0u64..1000, hours in 0u64..24, minutes in 0u64..60, seconds in 0u64..60,
        ) {
            let text = format!("{days}d{hours}h{minutes}m{seconds}s");
            let expected = ((days * 24 + hours) * 60 + minutes) * 60 + seconds;
            prop_assert_eq!(parse(&text), Ok(Duration::from_secs(expected)));
        }
    }
}
