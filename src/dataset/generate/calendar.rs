//! Timestamps: the bounds of the simulated history, allocation-free `"YYYY-MM-DD HH:MM:SS"`
//! formatting of Unix seconds (with Howard Hinnant's civil-from-days conversion), and the
//! users' elite years.

use super::rng::{Prng, scaled};

/// 2005-01-01 00:00:00 UTC: the first sign-ups of the dataset are from late 2004, reviews from 2005.
pub(super) const USER_SINCE_START: i64 = 1_104_537_600;
/// 2021-12-31 00:00:00 UTC.
pub(super) const USER_SINCE_END: i64 = 1_640_908_800;
/// 2010-01-01 00:00:00 UTC: the check-in history starts in 2010.
pub(super) const CHECKIN_START: i64 = 1_262_304_000;
/// 2022-01-19 20:00:00 UTC, just after the last review of the 2022 release.
pub(super) const DATASET_END: i64 = 1_642_622_400;

/// Appends `"YYYY-MM-DD HH:MM:SS"` for Unix seconds, without allocating (chrono's `format`
/// would allocate and parse a format string per call, in the hottest loop).
pub(super) fn push_datetime(out: &mut String, unix: i64) {
    let (year, month, day) = civil_from_days(unix.div_euclid(86_400));
    let secs = unix.rem_euclid(86_400);
    push_padded(out, year, 4);
    out.push('-');
    push_padded(out, i64::from(month), 2);
    out.push('-');
    push_padded(out, i64::from(day), 2);
    out.push(' ');
    push_padded(out, secs / 3600, 2);
    out.push(':');
    push_padded(out, secs / 60 % 60, 2);
    out.push(':');
    push_padded(out, secs % 60, 2);
}

fn push_padded(out: &mut String, value: i64, width: u32) {
    let mut divisor = 10i64.pow(width - 1);
    while divisor > 0 {
        out.push(char::from(b'0' + (value / divisor % 10) as u8));
        divisor /= 10;
    }
}

/// (year, month, day) of a day count since 1970-01-01, by Howard Hinnant's `civil_from_days`.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

pub(super) fn year_of(unix: i64) -> i64 {
    civil_from_days(unix.div_euclid(86_400)).0
}

/// Elite years: a run of consecutive years after sign-up, for a few active users; 2020 is
/// written `20,20` as in the 2021+ releases of the dataset.
pub(super) fn push_elite(out: &mut String, rng: &mut Prng, since_year: i64, reviews: u32) {
    let p = if reviews >= 10 { 0.35 } else { 0.02 };
    if !rng.chance(p) {
        return;
    }
    let first = (since_year + 1).max(2006);
    if first > 2021 {
        return;
    }
    let start = rng.range_i64(first, 2021);
    let end = (start + scaled(rng, 7.0, 2)).min(2021);
    for year in start..=end {
        if !out.is_empty() {
            out.push(',');
        }
        if year == 2020 {
            out.push_str("20,20");
        } else {
            push_padded(out, year, 4);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datetime_formatting_agrees_with_chrono() {
        for unix in [
            0,
            USER_SINCE_START,
            USER_SINCE_END,
            CHECKIN_START,
            DATASET_END,
            951_782_400,
            1_582_934_399,
            4_102_444_800,
        ] {
            let mut s = String::new();
            push_datetime(&mut s, unix);
            let expected = chrono::DateTime::from_timestamp(unix, 0)
                .unwrap()
                .format("%Y-%m-%d %H:%M:%S")
                .to_string();
            assert_eq!(s, expected);
        }
        assert_eq!(year_of(DATASET_END), 2022);
    }
}
