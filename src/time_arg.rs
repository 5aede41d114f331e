//! Times given on the command line (`--since`, `--to-datetime`): RFC 3339, a time without a zone
//! taken as UTC, or (where a start is asked for) an age such as `10m` before now. One parser, so
//! every command reads a time the same way.

use chrono::{DateTime, Duration, FixedOffset, NaiveDateTime, Utc};

/// How a time can be written, for error messages.
pub const TIME_FORMATS: &str = "2026-12-03T10:00:00Z, 2026-12-03T10:00:00+01:00 or 2026-12-03T10:00 (UTC)";

/// RFC 3339 (`2026-12-03T10:00:00+01:00`, `…Z`) or a time without zone (`2026-12-03T10:00[:00]`,
/// `2026-12-03 10:00`), taken as UTC.
#[must_use]
pub fn parse_time(text: &str) -> Option<DateTime<FixedOffset>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t);
    }
    [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
    ]
    .iter()
    .find_map(|format| NaiveDateTime::parse_from_str(text, format).ok())
    .map(|t| t.and_utc().fixed_offset())
}

/// A start: a time as [`parse_time`] reads it, or an age before `now` (`30s`, `10m`, `2h`, `1d`),
/// as `docker logs --since` takes it.
#[must_use]
pub fn parse_since(text: &str, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    if let Some(t) = parse_time(text) {
        return Some(t.with_timezone(&Utc));
    }
    let unit = text.chars().last()?;
    let n: i64 = text[..text.len() - unit.len_utf8()].parse().ok().filter(|n| *n >= 0)?;
    let age = match unit {
        's' => Duration::try_seconds(n),
        'm' => Duration::try_minutes(n),
        'h' => Duration::try_hours(n),
        'd' => Duration::try_days(n),
        _ => None,
    }?;
    now.checked_sub_signed(age)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_ages() {
        let now = DateTime::parse_from_rfc3339("2026-12-04T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let at = |s: &str| parse_since(s, now).map(|t| t.to_rfc3339());
        assert_eq!(at("10m").as_deref(), Some("2026-12-04T09:50:00+00:00"));
        assert_eq!(at("2h").as_deref(), Some("2026-12-04T08:00:00+00:00"));
        assert_eq!(at("1d").as_deref(), Some("2026-12-03T10:00:00+00:00"));
        assert_eq!(at("30s").as_deref(), Some("2026-12-04T09:59:30+00:00"));
        assert_eq!(at("2026-12-03T10:00").as_deref(), Some("2026-12-03T10:00:00+00:00"));
        assert_eq!(
            at("2026-12-03T10:00:00+01:00").as_deref(),
            Some("2026-12-03T09:00:00+00:00")
        );
        for bad in ["", "m", "-5m", "10x", "yesterday", "10 m", "99999999999999d"] {
            assert_eq!(at(bad), None, "{bad:?}");
        }
    }
}
