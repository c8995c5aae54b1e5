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

/// A byte count in Docker's notation, exactly, as people write it in `docker run --memory`:
/// the largest of `g`, `m`, `k` in which it is a whole number or has at most two decimals
/// (`384m`, `1.5g`, `1.25g`), else plain bytes. `parse_size` reads it back to the byte.
pub fn format_docker_size(bytes: u64) -> String {
    const UNITS: [(&str, u64); 3] = [("g", 1 << 30), ("m", 1 << 20), ("k", 1 << 10)];
    for (unit, size) in UNITS {
        // Hundredths of the unit, exact: `bytes * 100` is a multiple of the unit.
        if bytes >= size && (u128::from(bytes) * 100).is_multiple_of(u128::from(size)) {
            let hundredths = u128::from(bytes) * 100 / u128::from(size);
            return format!("{}{unit}", hundredths_text(hundredths));
        }
    }
    bytes.to_string()
}

/// An approximate size for people, one decimal in the largest binary unit it reaches
/// (`40.3MiB`, `1.5GiB`, `812B`): for measurements, where the last byte means nothing.
pub fn format_bytes_approximately(bytes: f64) -> String {
    const UNITS: [(&str, f64); 4] = [
        ("TiB", (1u64 << 40) as f64),
        ("GiB", (1u64 << 30) as f64),
        ("MiB", (1u64 << 20) as f64),
        ("KiB", (1u64 << 10) as f64),
    ];
    for (unit, size) in UNITS {
        if bytes >= size {
            let tenths = (bytes / size * 10.0).round() as u64;
            return format!("{}{unit}", hundredths_text(u128::from(tenths) * 10));
        }
    }
    format!("{}B", bytes.max(0.0).round() as u64)
}

/// `150` -> `1.5`, `125` -> `1.25`, `400` -> `4`.
fn hundredths_text(hundredths: u128) -> String {
    let (whole, fraction) = (hundredths / 100, hundredths % 100);
    match fraction {
        0 => whole.to_string(),
        f if f % 10 == 0 => format!("{whole}.{}", f / 10),
        f => format!("{whole}.{f:02}"),
    }
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

    #[test]
    fn sizes_in_dockers_notation() {
        assert_eq!(format_docker_size(384 << 20), "384m");
        assert_eq!(format_docker_size(1536 << 20), "1.5g");
        assert_eq!(format_docker_size(1280 << 20), "1.25g");
        assert_eq!(format_docker_size(2 << 30), "2g");
        assert_eq!(format_docker_size(48 << 20), "48m");
        assert_eq!(format_docker_size(1 << 10), "1k");
        assert_eq!(format_docker_size(1000), "1000");
        assert_eq!(format_docker_size((40 << 20) + 1), "41943041");
        assert_eq!(format_bytes_approximately(42_300_000.0), "40.3MiB");
        assert_eq!(format_bytes_approximately((1536u64 << 20) as f64), "1.5GiB");
        assert_eq!(format_bytes_approximately(812.0), "812B");
    }

    proptest! {
        #[test]
        fn docker_sizes_round_trip(bytes in 0u64..(1 << 52)) {
            prop_assert_eq!(parse_size(&format_docker_size(bytes)), Ok(bytes));
        }

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
