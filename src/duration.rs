//! Durations as people write and read them: one parser for every setting (`500ms`, `15s`,
//! `10m`, `2h`, `7d`), its inverse for the configuration log, and the prose form job messages
//! use ("after 4 s", "after 10 min").
use std::time::Duration;

/// `500ms`, `15s`, `10m`, `2h`, `7d` (a bare number is seconds); zero is refused.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("'{s}' is not a duration like 500ms, 15s, 10m, 2h or 7d"))?;
    let secs = match unit.trim() {
        "ms" => n / 1000.0,
        "" | "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        "d" => n * 86400.0,
        other => {
            return Err(format!(
                "unknown duration unit '{other}' in '{s}'; use ms, s, m, h or d"
            ));
        }
    };
    if !(secs > 0.0 && secs.is_finite()) {
        return Err(format!("'{s}': a duration must be greater than zero"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// The inverse of [`parse_duration`], for logs: `7d`, `2h`, `15s`, `250ms`.
pub fn fmt_duration(d: Duration) -> String {
    let ms = d.as_millis();
    for (unit, size) in [("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)] {
        if ms >= size && ms.is_multiple_of(size) {
            return format!("{}{unit}", ms / size);
        }
    }
    format!("{ms}ms")
}

/// For job messages: `4 s`, `10 min`, `2.5 h`.
pub fn human(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..=119 => format!("{s} s"),
        120..=7199 => format!("{} min", s / 60),
        _ => format!("{:.1} h", s as f64 / 3600.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("15s").unwrap(), Duration::from_secs(15));
        assert_eq!(parse_duration("2").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_duration("7d").unwrap(), Duration::from_secs(7 * 86400));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("5y").unwrap_err().contains("unknown duration unit"));
    }

    #[test]
    fn formats_round_trip_and_read_well() {
        for s in ["7d", "2h", "15s", "250ms", "90m"] {
            let d = parse_duration(s).unwrap();
            assert_eq!(parse_duration(&fmt_duration(d)).unwrap(), d);
        }
        assert_eq!(fmt_duration(Duration::from_secs(7200)), "2h");
        assert_eq!(human(Duration::from_secs(4)), "4 s");
        assert_eq!(human(Duration::from_secs(600)), "10 min");
        assert_eq!(human(Duration::from_secs(9000)), "2.5 h");
    }
}
