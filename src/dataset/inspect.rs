//! `inspect`: what a dataset holds and how much of it is valid, before anything is streamed.
//!
//! A line is valid when it deserialises into its [`types`](super::types) record, its ids are
//! non-empty, its timestamps parse, and (reviews) its stars are between 1 and 5 — the checks the
//! stream transform applies, so the malformed count predicts the dead-letter topic's size.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use indicatif::{HumanBytes, HumanCount};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::Entity;
use super::quirks;
use super::reader::{self, DatasetSource, LineRef, ReadError, ReadStats};
use super::types::{Business, Checkin, Review, Tip, User};

/// How many malformed lines the report quotes.
pub const MALFORMED_SAMPLES: usize = 20;

/// What [`inspect`] found. `Serialize` for `--json`, `Display` for a terminal table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InspectReport {
    /// [`DatasetSource::describe`] of what was inspected.
    pub source: String,
    /// One entry per entity present in the source.
    pub entities: BTreeMap<Entity, EntityReport>,
    /// The first [`MALFORMED_SAMPLES`] malformed lines, in reading order.
    pub malformed_samples: Vec<MalformedLine>,
}

/// Counts for one entity.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct EntityReport {
    /// Non-empty lines (valid + malformed).
    pub lines: u64,
    pub valid: u64,
    pub malformed: u64,
    /// Bytes read (uncompressed), line terminators included.
    pub bytes: u64,
    /// Earliest and latest timestamp of valid records: review and tip `date`, check-in dates,
    /// user `yelping_since`. `None` for businesses, which have no timestamp.
    pub first_date: Option<DateTime<Utc>>,
    pub last_date: Option<DateTime<Utc>>,
}

/// A line that is not a valid record, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MalformedLine {
    pub entity: Entity,
    /// File path, or `archive.tar:member`.
    pub source: String,
    pub line_no: u64,
    pub reason: String,
}

impl InspectReport {
    #[must_use]
    pub fn total_lines(&self) -> u64 {
        self.entities.values().map(|e| e.lines).sum()
    }

    #[must_use]
    pub fn total_valid(&self) -> u64 {
        self.entities.values().map(|e| e.valid).sum()
    }

    #[must_use]
    pub fn total_malformed(&self) -> u64 {
        self.entities.values().map(|e| e.malformed).sum()
    }

    #[must_use]
    pub fn total_bytes(&self) -> u64 {
        self.entities.values().map(|e| e.bytes).sum()
    }

    fn record(&mut self, line: LineRef<'_>) {
        let report = self.entities.entry(line.entity).or_default();
        report.lines += 1;
        match check_line(line.entity, line.text) {
            Ok(dates) => {
                report.valid += 1;
                if let Some((first, last)) = dates {
                    report.first_date = Some(report.first_date.map_or(first, |d| d.min(first)));
                    report.last_date = Some(report.last_date.map_or(last, |d| d.max(last)));
                }
            }
            Err(reason) => {
                report.malformed += 1;
                if self.malformed_samples.len() < MALFORMED_SAMPLES {
                    self.malformed_samples.push(MalformedLine {
                        entity: line.entity,
                        source: line.source.to_string(),
                        line_no: line.line_no,
                        reason,
                    });
                }
            }
        }
    }

    /// Adds what only the reader saw: byte counts, empty entities, and over-long lines (which the
    /// reader skips without passing them on, so they are malformed lines the callback never got).
    fn add_read_stats(&mut self, stats: &ReadStats) {
        for (entity, read) in &stats.entities {
            self.entities.entry(*entity).or_default().bytes = read.bytes;
        }
        for long in &stats.too_long {
            let report = self.entities.entry(long.entity).or_default();
            report.lines += 1;
            report.malformed += 1;
            let sample = MalformedLine {
                entity: long.entity,
                source: long.source.clone(),
                line_no: long.line_no,
                reason: format!(
                    "line of {} is longer than the reader accepts; skipped",
                    HumanBytes(long.bytes)
                ),
            };
            insert_in_reading_order(&mut self.malformed_samples, sample);
        }
        self.malformed_samples.truncate(MALFORMED_SAMPLES);
    }
}

/// Inserts `line` after the samples of the same file with lower line numbers (or at the end
/// if its file has none), so over-long lines, known only after reading, appear where they were.
fn insert_in_reading_order(samples: &mut Vec<MalformedLine>, line: MalformedLine) {
    let same_file_after = samples
        .iter()
        .position(|s| s.source == line.source && s.line_no > line.line_no);
    let after_same_file = || samples.iter().rposition(|s| s.source == line.source).map(|i| i + 1);
    let at = same_file_after.or_else(after_same_file).unwrap_or(samples.len());
    samples.insert(at, line);
}

/// Reads the whole dataset once and reports, per entity, lines, valid and malformed records,
/// size and date range, with the first malformed lines and why they are malformed.
pub fn inspect(source: &DatasetSource) -> Result<InspectReport, ReadError> {
    inspect_capped(source, reader::MAX_LINE_BYTES)
}

fn inspect_capped(source: &DatasetSource, max_line_bytes: usize) -> Result<InspectReport, ReadError> {
    let mut report = InspectReport {
        source: source.describe(),
        entities: BTreeMap::new(),
        malformed_samples: Vec::new(),
    };
    let stats = reader::read_lines_capped::<ReadError, _>(source, &[], max_line_bytes, |line| {
        report.record(line);
        Ok(())
    })?;
    report.add_read_stats(&stats);
    Ok(report)
}

/// Earliest and latest timestamp of a valid record, if it has any.
type DateSpan = Option<(DateTime<Utc>, DateTime<Utc>)>;

/// Validates one line; `Err` holds the reason, phrased for a person reading the report.
fn check_line(entity: Entity, text: &[u8]) -> Result<DateSpan, String> {
    if let Err(e) = std::str::from_utf8(text) {
        return Err(format!("invalid UTF-8 at byte {}", e.valid_up_to()));
    }
    match entity {
        Entity::Business => {
            let b: Business = parse(text)?;
            require_id("business_id", &b.business_id)?;
            Ok(None)
        }
        Entity::User => {
            let u: User = parse(text)?;
            require_id("user_id", &u.user_id)?;
            single_date("yelping_since", &u.yelping_since)
        }
        Entity::Review => {
            let r: Review = parse(text)?;
            require_id("review_id", &r.review_id)?;
            require_id("user_id", &r.user_id)?;
            require_id("business_id", &r.business_id)?;
            if !(1.0..=5.0).contains(&r.stars) {
                return Err(format!("stars {} outside 1 to 5", r.stars));
            }
            single_date("date", &r.date)
        }
        Entity::Tip => {
            let t: Tip = parse(text)?;
            require_id("user_id", &t.user_id)?;
            require_id("business_id", &t.business_id)?;
            single_date("date", &t.date)
        }
        Entity::Checkin => {
            let c: Checkin = parse(text)?;
            require_id("business_id", &c.business_id)?;
            let dates = quirks::parse_checkin_dates(&c.date).map_err(|e| format!("date: {e}"))?;
            let first = dates.iter().min().copied();
            let last = dates.iter().max().copied();
            first
                .zip(last)
                .map(Some)
                .ok_or_else(|| "date holds no timestamp".to_string())
        }
    }
}

fn parse<T: DeserializeOwned>(text: &[u8]) -> Result<T, String> {
    serde_json::from_slice(text).map_err(|e| match e.classify() {
        serde_json::error::Category::Syntax | serde_json::error::Category::Eof => format!("invalid JSON: {e}"),
        _ => e.to_string(), // "missing field `review_id` at …", "invalid type: …"
    })
}

fn require_id(field: &str, value: &str) -> Result<(), String> {
    if value.trim().is_empty() {
        Err(format!("{field} is empty"))
    } else {
        Ok(())
    }
}

fn single_date(field: &str, value: &str) -> Result<DateSpan, String> {
    let ts = quirks::parse_yelp_datetime(value).map_err(|e| format!("{field}: {e}"))?;
    Ok(Some((ts, ts)))
}

impl fmt::Display for InspectReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "Yelp dataset: {}", self.source)?;
        writeln!(f)?;
        let row = |f: &mut fmt::Formatter<'_>, name: &str, lines, valid, malformed, bytes, dates: &str| {
            let (lines, valid, malformed) = (
                HumanCount(lines).to_string(),
                HumanCount(valid).to_string(),
                HumanCount(malformed).to_string(),
            );
            let size = HumanBytes(bytes).to_string();
            let row = format!("  {name:<9} {lines:>13} {valid:>13} {malformed:>10} {size:>11}  {dates}");
            writeln!(f, "{}", row.trim_end())
        };
        writeln!(
            f,
            "  {:<9} {:>13} {:>13} {:>10} {:>11}  dates",
            "entity", "lines", "valid", "malformed", "size"
        )?;
        for (entity, r) in &self.entities {
            let dates = match (r.first_date, r.last_date) {
                (Some(first), Some(last)) => format!("{} to {}", first.format("%Y-%m-%d"), last.format("%Y-%m-%d")),
                _ => String::new(),
            };
            row(f, entity.name(), r.lines, r.valid, r.malformed, r.bytes, &dates)?;
        }
        let (lines, valid, malformed, bytes) = (
            self.total_lines(),
            self.total_valid(),
            self.total_malformed(),
            self.total_bytes(),
        );
        row(f, "total", lines, valid, malformed, bytes, "")?;
        if self.malformed_samples.is_empty() {
            return write!(f, "\nNo malformed lines.");
        }
        let shown = self.malformed_samples.len();
        write!(
            f,
            "\nFirst {shown} malformed line{}:",
            if shown == 1 { "" } else { "s" }
        )?;
        for m in &self.malformed_samples {
            write!(f, "\n  {}:{}  [{}] {}", m.source, m.line_no, m.entity, m.reason)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::generate::{GenerateOptions, generate};
    use std::fs;

    #[test]
    fn malformed_counts_match_the_generators_injected_lines() {
        let dir = tempfile::tempdir().unwrap();
        let summary = generate(
            dir.path(),
            &GenerateOptions {
                reviews: 3_000,
                seed: 29,
                invalid_rate: 0.02,
            },
        )
        .unwrap();
        let report = inspect(&DatasetSource::open(dir.path()).unwrap()).unwrap();

        assert_eq!(
            report.entities.keys().copied().collect::<Vec<_>>(),
            Entity::ALL.to_vec()
        );
        for (entity, r) in &report.entities {
            let file = &summary.files[entity];
            assert_eq!(r.lines, file.lines, "{entity}");
            assert_eq!(r.malformed, file.invalid, "{entity}");
            assert_eq!(r.valid, file.lines - file.invalid, "{entity}");
            assert_eq!(r.bytes, file.bytes, "{entity}");
        }
        assert_eq!(report.total_malformed(), 60 + 7);
        assert_eq!(report.malformed_samples.len(), MALFORMED_SAMPLES);
        assert!(report.malformed_samples.iter().all(|m| m.entity == Entity::Review));
        assert!(report.malformed_samples.windows(2).all(|w| w[0].line_no < w[1].line_no));

        let reasons: Vec<&str> = report.malformed_samples.iter().map(|m| m.reason.as_str()).collect();
        assert!(reasons[0].starts_with("invalid JSON: EOF"), "{reasons:?}");
        assert_eq!(reasons[1], "stars 7 outside 1 to 5");
        assert!(reasons[2].starts_with("missing field `review_id`"), "{reasons:?}");
        assert_eq!(reasons[3], "date: date \"not a date\" is not \"YYYY-MM-DD HH:MM:SS\"");
        assert_eq!(reasons[4], "business_id is empty");
        assert!(reasons[5].starts_with("invalid type: string \"five\""), "{reasons:?}");

        let review = &report.entities[&Entity::Review];
        let (first, last) = (review.first_date.unwrap(), review.last_date.unwrap());
        assert!(first.format("%Y").to_string().as_str() >= "2005", "{first}");
        assert!(last.format("%Y-%m-%d").to_string().as_str() <= "2022-01-19", "{last}");
        assert!(report.entities[&Entity::Business].first_date.is_none());
        assert!(report.entities[&Entity::Checkin].first_date.is_some());
        assert!(report.entities[&Entity::User].first_date.is_some());
    }

    #[test]
    fn report_serialises_and_displays_as_a_table() {
        let dir = tempfile::tempdir().unwrap();
        generate(
            dir.path(),
            &GenerateOptions {
                reviews: 500,
                seed: 31,
                invalid_rate: 0.01,
            },
        )
        .unwrap();
        let report = inspect(&DatasetSource::open(dir.path()).unwrap()).unwrap();

        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["entities"]["review"]["malformed"], 5);
        assert_eq!(json["malformed_samples"][0]["entity"], "review");
        assert!(
            json["entities"]["review"]["first_date"]
                .as_str()
                .unwrap()
                .ends_with('Z')
        );

        let text = report.to_string();
        let header = text
            .lines()
            .find(|l| l.contains("malformed") && l.contains("entity"))
            .unwrap();
        let review_row = text.lines().find(|l| l.trim_start().starts_with("review")).unwrap();
        // Columns line up: the malformed count ends where the header's "malformed" ends.
        let column_end = header.find("malformed").unwrap() + "malformed".len();
        assert_eq!(&review_row[column_end - 1..column_end], "5", "\n{text}");
        assert!(text.contains("First 5 malformed lines:"), "{text}");
        assert!(text.contains("yelp_academic_dataset_review.json:"), "{text}");
    }

    #[test]
    fn reports_invalid_utf8_json_and_over_long_lines_in_reading_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(Entity::Tip.file_name());
        let good = r#"{"user_id":"u","business_id":"b","text":"ok","date":"2012-05-18 02:17:21","compliment_count":0}"#;
        let long = format!(
            r#"{{"user_id":"u","business_id":"b","text":"{}","date":"2012-05-18 02:17:21"}}"#,
            "x".repeat(300)
        );
        let content = format!("{good}\n{{\"user_id\":\n{long}\n\"caf\u{e9}\"\n");
        let mut bytes = content.into_bytes();
        bytes.extend_from_slice(b"{\"user_id\":\"caf\xE9\"}\n");
        fs::write(&path, bytes).unwrap();

        let report = inspect_capped(&DatasetSource::open(&path).unwrap(), 200).unwrap();
        let tip = &report.entities[&Entity::Tip];
        assert_eq!((tip.lines, tip.valid, tip.malformed), (5, 1, 4));
        let at: Vec<(u64, &str)> = report
            .malformed_samples
            .iter()
            .map(|m| (m.line_no, m.reason.as_str()))
            .collect();
        assert_eq!(at.iter().map(|(n, _)| *n).collect::<Vec<_>>(), [2, 3, 4, 5]);
        assert!(at[0].1.starts_with("invalid JSON: EOF"), "{at:?}");
        assert!(at[1].1.contains("longer than the reader accepts"), "{at:?}");
        assert!(
            at[2]
                .1
                .starts_with("invalid type: string \"café\", expected struct Tip"),
            "{at:?}"
        );
        assert_eq!(at[3].1, "invalid UTF-8 at byte 15");
        assert!(report.to_string().contains("First 4 malformed lines:"));
    }

    #[test]
    fn checks_every_entity() {
        let ok = |e, s: &str| check_line(e, s.as_bytes());
        assert_eq!(ok(Entity::Business, r#"{"business_id":"b"}"#), Ok(None));
        assert_eq!(
            ok(Entity::Business, r#"{"business_id":" "}"#),
            Err("business_id is empty".into())
        );
        assert!(
            ok(Entity::User, r#"{"user_id":"u","yelping_since":"2007-01-25 16:47:26"}"#)
                .unwrap()
                .is_some()
        );
        assert!(
            ok(Entity::User, r#"{"user_id":"u"}"#)
                .unwrap_err()
                .starts_with("yelping_since: date \"\"")
        );
        let review = |stars: &str| {
            format!(
                r#"{{"review_id":"r","user_id":"u","business_id":"b","stars":{stars},"date":"2018-07-07 22:09:11"}}"#
            )
        };
        assert!(ok(Entity::Review, &review("1.0")).is_ok() && ok(Entity::Review, &review("5.0")).is_ok());
        assert_eq!(
            ok(Entity::Review, &review("0.5")),
            Err("stars 0.5 outside 1 to 5".into())
        );
        let span = ok(
            Entity::Checkin,
            r#"{"business_id":"b","date":"2020-06-02 22:18:06, 2010-09-13 21:43:09"}"#,
        )
        .unwrap()
        .unwrap();
        assert_eq!(quirks::to_rfc3339(span.0), "2010-09-13T21:43:09Z");
        assert_eq!(quirks::to_rfc3339(span.1), "2020-06-02T22:18:06Z");
        assert_eq!(
            ok(Entity::Checkin, r#"{"business_id":"b","date":""}"#),
            Err("date holds no timestamp".into())
        );
        assert!(
            ok(Entity::Tip, r#"{"business_id":"b","date":"2012-05-18 02:17:21"}"#)
                .unwrap_err()
                .starts_with("missing field `user_id`")
        );
    }
}
