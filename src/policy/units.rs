//! Docker's size notation (`512m`, `1.5g`, `10mb`: binary units, as `docker run --memory`
//! reads them), and sizes written back for people.

/// Bytes from Docker's notation: a number (fractions allowed), an optional space, an
/// optional unit among `b k m g t p` (any case), optionally followed by `i` and/or `b`.
/// Units are binary (`1k` = 1024), as in `docker run`.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let trimmed = text.trim();
    let number_end = trimmed
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(number_end);
    let invalid = || {
        format!(
            "{text:?} is not a size: write a number with an optional unit, e.g. 512m, 1.5g, 64MiB"
        )
    };
    if number.is_empty() || number.matches('.').count() > 1 || number.ends_with('.') {
        return Err(invalid());
    }
    let value: f64 = number.parse().map_err(|_| invalid())?;
    let unit = unit.trim_start().to_ascii_lowercase();
    let unit = unit.strip_suffix('b').unwrap_or(&unit);
    let unit = unit.strip_suffix('i').unwrap_or(unit);
    let multiplier: f64 = match unit {
        "" => 1.0,
        "k" => 1024.0,
        "m" => 1024.0 * 1024.0,
        "g" => 1024.0 * 1024.0 * 1024.0,
        "t" => 1024.0f64.powi(4),
        "p" => 1024.0f64.powi(5),
        _ => return Err(invalid()),
    };
    let bytes = value * multiplier;
    if !bytes.is_finite() || bytes >= 9.2e18 {
        return Err(format!("{text:?} is too large"));
    }
    Ok(bytes as u64)
}

/// A byte count as a person reads it, exactly: the largest binary unit that divides it
/// (`512MiB`, `1536MiB`, `100B`).
pub fn format_bytes(bytes: u64) -> String {
    const UNITS: [(&str, u64); 5] = [
        ("PiB", 1 << 50),
        ("TiB", 1 << 40),
        ("GiB", 1 << 30),
        ("MiB", 1 << 20),
        ("KiB", 1 << 10),
    ];
    for (unit, size) in UNITS {
        if bytes >= size && bytes.is_multiple_of(size) {
            return format!("{}{unit}", bytes / size);
        }
    }
    format!("{bytes}B")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn docker_sizes() {
        assert_eq!(parse_size("512m"), Ok(512 * 1024 * 1024));
        assert_eq!(parse_size("512M"), Ok(512 * 1024 * 1024));
        assert_eq!(parse_size("512mb"), Ok(512 * 1024 * 1024));
        assert_eq!(parse_size("512MiB"), Ok(512 * 1024 * 1024));
        assert_eq!(parse_size("1.5g"), Ok(1536 * 1024 * 1024));
        assert_eq!(parse_size("10 k"), Ok(10 * 1024));
        assert_eq!(parse_size("100"), Ok(100));
        assert_eq!(parse_size("100b"), Ok(100));
        assert!(parse_size("12x").is_err());
        assert!(parse_size("m").is_err());
        assert!(parse_size("-5m").is_err());
        assert!(parse_size("1.2.3m").is_err());
        assert!(parse_size("").is_err());
    }

    #[test]
    fn sizes_for_people() {
        assert_eq!(format_bytes(512 * 1024 * 1024), "512MiB");
        assert_eq!(format_bytes(1536 * 1024 * 1024), "1536MiB");
        assert_eq!(format_bytes(2 * 1024 * 1024 * 1024), "2GiB");
        assert_eq!(format_bytes(100), "100B");
    }

    proptest! {
        #[test]
        fn never_panics_and_a_size_has_digits(text in "\\PC*") {
            if parse_size(&text).is_ok() {
                prop_assert!(text.chars().any(|c| c.is_ascii_digit()));
            }
        }

        #[test]
        fn sizes_round_trip(bytes in 0u64..(1 << 52)) {
            prop_assert_eq!(parse_size(&format_bytes(bytes)), Ok(bytes));
        }
    }
}
