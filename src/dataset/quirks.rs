//! Parsers for the quirks of the Yelp Open Dataset's string-encoded fields.
//!
//! Each function takes the field as it appears in the file and returns a normal value,
//! or a [`QuirkError`] that says what was wrong (the transform puts it in the DLQ header).

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuirkError {
    #[error("date {0:?} is not \"YYYY-MM-DD HH:MM:SS\"")]
    BadDate(String),
    #[error("hours for {day} {value:?} are not \"H:M-H:M\"")]
    BadHours { day: String, value: String },
    #[error("elite year {0:?} is not a year")]
    BadEliteYear(String),
}

/// Format used by every timestamp in the dataset.
const YELP_DATETIME: &str = "%Y-%m-%d %H:%M:%S";

/// Parses `"YYYY-MM-DD HH:MM:SS"` (the dataset has no zone; we read it as UTC).
pub fn parse_yelp_datetime(s: &str) -> Result<DateTime<Utc>, QuirkError> {
    let s = s.trim();
    if let Some(naive) = plain_datetime(s) {
        return Ok(naive.and_utc());
    }
    NaiveDateTime::parse_from_str(s, YELP_DATETIME)
        .map(|naive| naive.and_utc())
        .map_err(|_| QuirkError::BadDate(s.to_string()))
}

/// `YYYY-MM-DD HH:MM:SS` read digit by digit, or `None` for anything else (chrono then decides).
///
/// Every review, tip and user carries a date: chrono's format-string parser was a visible part of
/// the transform's profile, and the dataset writes them all in this one shape.
fn plain_datetime(s: &str) -> Option<NaiveDateTime> {
    let b = s.as_bytes();
    if b.len() != 19 || b[4] != b'-' || b[7] != b'-' || b[10] != b' ' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let number = |range: std::ops::Range<usize>| {
        b[range]
            .iter()
            .try_fold(0u32, |n, d| d.is_ascii_digit().then(|| n * 10 + u32::from(d - b'0')))
    };
    let year = i32::try_from(number(0..4)?).ok()?;
    chrono::NaiveDate::from_ymd_opt(year, number(5..7)?, number(8..10)?)?.and_hms_opt(
        number(11..13)?,
        number(14..16)?,
        number(17..19)?,
    )
}

/// RFC 3339 in UTC with a `Z`, second precision: `2018-07-07T22:09:11Z`.
#[must_use]
pub fn to_rfc3339(ts: DateTime<Utc>) -> String {
    use chrono::{Datelike, Timelike};
    if let Ok(year @ 0..=9999) = u32::try_from(ts.year())
        && ts.nanosecond() == 0
    {
        // Written digit by digit: chrono's format strings, then `format!`, were each a visible
        // part of the transform's profile (every review, tip and user carries a date).
        let mut out = String::with_capacity(20);
        let mut push = |n: u32, width: u32, then: char| {
            for power in (0..width).rev() {
                out.push(char::from_digit(n / 10u32.pow(power) % 10, 10).unwrap_or('0'));
            }
            out.push(then);
        };
        push(year, 4, '-');
        push(ts.month(), 2, '-');
        push(ts.day(), 2, 'T');
        push(ts.hour(), 2, ':');
        push(ts.minute(), 2, ':');
        push(ts.second(), 2, 'Z');
        out
    } else {
        ts.format("%Y-%m-%dT%H:%M:%SZ").to_string()
    }
}

/// `"Mexican, Burgers, Gastropubs"` or `null` → trimmed, non-empty, de-duplicated list in file order.
#[must_use]
pub fn parse_categories(raw: Option<&str>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for part in raw.unwrap_or("").split(',') {
        let part = part.trim();
        if !part.is_empty() && !out.iter().any(|c| c == part) {
            out.push(part.to_string());
        }
    }
    out
}

/// `"2007,2019,20,20,2021"` → `[2007, 2019, 2020, 2021]`. Empty string → no years.
///
/// The 2021 release writes the year 2020 as the two tokens `20,20`; we rejoin them.
pub fn parse_elite(raw: &str) -> Result<Vec<i32>, QuirkError> {
    let tokens: Vec<&str> = raw.split(',').map(str::trim).filter(|t| !t.is_empty()).collect();
    let mut years = Vec::with_capacity(tokens.len());
    let mut i = 0;
    while i < tokens.len() {
        if tokens[i] == "20" && tokens.get(i + 1) == Some(&"20") {
            years.push(2020);
            i += 2;
            continue;
        }
        match tokens[i].parse::<i32>() {
            Ok(year) if (1990..=2100).contains(&year) => years.push(year),
            _ => return Err(QuirkError::BadEliteYear(tokens[i].to_string())),
        }
        i += 1;
    }
    years.sort_unstable();
    years.dedup();
    Ok(years)
}

/// `"id1, id2"` or `"None"` or `""` → list of ids.
#[must_use]
pub fn parse_friends(raw: &str) -> Vec<String> {
    let raw = raw.trim();
    if raw.is_empty() || raw == "None" {
        return Vec::new();
    }
    raw.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// One string of comma-separated timestamps → parsed timestamps, in file order.
pub fn parse_checkin_dates(raw: &str) -> Result<Vec<DateTime<Utc>>, QuirkError> {
    raw.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(parse_yelp_datetime)
        .collect()
}

/// Normalises opening hours: weekday → `"8:0-18:30"` becomes weekday → `"08:00-18:30"`.
pub fn normalize_hours(hours: &BTreeMap<String, String>) -> Result<BTreeMap<String, String>, QuirkError> {
    hours
        .iter()
        .map(|(day, value)| {
            let bad = || QuirkError::BadHours {
                day: day.clone(),
                value: value.clone(),
            };
            let (open, close) = value.split_once('-').ok_or_else(bad)?;
            let open = normalize_clock(open).ok_or_else(bad)?;
            let close = normalize_clock(close).ok_or_else(bad)?;
            Ok((day.trim().to_string(), format!("{open}-{close}")))
        })
        .collect()
}

fn normalize_clock(s: &str) -> Option<String> {
    let (h, m) = s.trim().split_once(':')?;
    let (h, m) = (h.parse::<u32>().ok()?, m.parse::<u32>().ok()?);
    // 24:00 appears in some listings as a closing time.
    (h <= 24 && m < 60).then(|| format!("{h:02}:{m:02}"))
}

/// Business attributes: each string value that holds a Python literal becomes the JSON value it
/// denotes (`"True"` → `true`, `"u'free'"` → `"free"`, `"None"` → `null`, a dict → an object);
/// strings that are not literals stay strings. Non-string values are kept as they are.
#[must_use]
pub fn normalize_attributes(attrs: &BTreeMap<String, Value>) -> serde_json::Map<String, Value> {
    attrs
        .iter()
        .map(|(name, value)| {
            let value = match value {
                Value::String(s) => parse_python_literal(s).unwrap_or_else(|| Value::String(s.trim().to_string())),
                other => other.clone(),
            };
            (name.trim().to_string(), value)
        })
        .collect()
}

/// Deepest nesting accepted in a Python literal; hostile input cannot exhaust the stack.
const MAX_LITERAL_DEPTH: usize = 16;

/// Parses a Python literal (dict, list, tuple, str with `u`/`b`/`r` prefix, int, float,
/// `True`/`False`/`None`) into JSON. Returns `None` if `s` is not exactly one literal.
#[must_use]
pub fn parse_python_literal(s: &str) -> Option<Value> {
    let mut p = LiteralParser {
        chars: s.trim().chars().collect(),
        pos: 0,
    };
    let value = p.value(0)?;
    p.skip_ws();
    (p.pos == p.chars.len()).then_some(value)
}

struct LiteralParser {
    chars: Vec<char>,
    pos: usize,
}

impl LiteralParser {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
    }

    fn eat(&mut self, c: char) -> bool {
        self.skip_ws();
        if self.peek() == Some(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn value(&mut self, depth: usize) -> Option<Value> {
        if depth > MAX_LITERAL_DEPTH {
            return None;
        }
        self.skip_ws();
        match self.peek()? {
            '{' => self.dict(depth),
            '[' => self.sequence(']', depth),
            '(' => self.sequence(')', depth),
            '\'' | '"' => self.string().map(Value::String),
            c if c.is_ascii_alphabetic() => self.word(),
            c if c.is_ascii_digit() || c == '-' || c == '+' || c == '.' => self.number(),
            _ => None,
        }
    }

    fn dict(&mut self, depth: usize) -> Option<Value> {
        self.pos += 1; // '{'
        let mut map = serde_json::Map::new();
        if self.eat('}') {
            return Some(Value::Object(map));
        }
        loop {
            let key = match self.value(depth + 1)? {
                Value::String(s) => s,
                Value::Null => "None".to_string(),
                other => other.to_string(),
            };
            if !self.eat(':') {
                return None;
            }
            let value = self.value(depth + 1)?;
            map.insert(key, value);
            if self.eat('}') {
                return Some(Value::Object(map));
            }
            if !self.eat(',') {
                return None;
            }
            if self.eat('}') {
                return Some(Value::Object(map)); // trailing comma
            }
        }
    }

    fn sequence(&mut self, close: char, depth: usize) -> Option<Value> {
        self.pos += 1; // '[' or '('
        let mut items = Vec::new();
        if self.eat(close) {
            return Some(Value::Array(items));
        }
        loop {
            items.push(self.value(depth + 1)?);
            if self.eat(close) {
                return Some(Value::Array(items));
            }
            if !self.eat(',') {
                return None;
            }
            if self.eat(close) {
                return Some(Value::Array(items));
            }
        }
    }

    /// A word: `True`, `False`, `None`, or a string prefix (`u'…'`, `b"…"`, `r'…'`).
    fn word(&mut self) -> Option<Value> {
        let start = self.pos;
        while self.peek().is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
            self.pos += 1;
        }
        let word: String = self.chars[start..self.pos].iter().collect();
        match word.as_str() {
            "True" => Some(Value::Bool(true)),
            "False" => Some(Value::Bool(false)),
            "None" => Some(Value::Null),
            prefix
                if matches!(self.peek(), Some('\'' | '"'))
                    && prefix.len() <= 2
                    && prefix
                        .chars()
                        .all(|c| matches!(c.to_ascii_lowercase(), 'u' | 'b' | 'r')) =>
            {
                self.string().map(Value::String)
            }
            _ => None,
        }
    }

    fn string(&mut self) -> Option<String> {
        let quote = self.peek()?;
        self.pos += 1;
        let mut out = String::new();
        loop {
            let c = self.peek()?;
            self.pos += 1;
            match c {
                c if c == quote => return Some(out),
                '\\' => {
                    let escaped = self.peek()?;
                    self.pos += 1;
                    out.push(match escaped {
                        'n' => '\n',
                        't' => '\t',
                        'r' => '\r',
                        '0' => '\0',
                        other => other,
                    });
                }
                c => out.push(c),
            }
        }
    }

    fn number(&mut self) -> Option<Value> {
        let start = self.pos;
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_digit() || matches!(c, '-' | '+' | '.' | 'e' | 'E'))
        {
            self.pos += 1;
        }
        let text: String = self.chars[start..self.pos].iter().collect();
        if let Ok(i) = text.parse::<i64>() {
            return Some(Value::from(i));
        }
        text.parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number)
    }
}

/// Number of characters (not bytes) of a text.
#[must_use]
pub fn text_length(text: &str) -> i64 {
    i64::try_from(text.chars().count()).unwrap_or(i64::MAX)
}

/// Number of whitespace-separated words of a text.
#[must_use]
pub fn word_count(text: &str) -> i64 {
    let words = if text.is_ascii() {
        // The same words `split_whitespace` finds in ASCII text, counted on bytes: its Unicode
        // matching was a visible part of the transform's profile, and nearly every review is ASCII.
        // A word starts at a non-space byte after a space byte (or at the start). The pairs are
        // counted in runs of 255 into a `u8`, a loop the compiler turns into vector instructions
        // (4x faster than one `windows(2)` pass, which was still an eighth of the transform's CPU).
        let space = |b: u8| (b == b' ') | (b'\t'..=b'\r').contains(&b);
        let bytes = text.as_bytes();
        let next = bytes.get(1..).unwrap_or_default();
        let starts: usize = bytes
            .chunks(255)
            .zip(next.chunks(255))
            .map(|(before, at)| {
                let run = before.iter().zip(at).map(|(&b, &a)| u8::from(space(b) & !space(a)));
                usize::from(run.fold(0u8, u8::wrapping_add))
            })
            .sum();
        starts + usize::from(bytes.first().is_some_and(|&b| !space(b)))
    } else {
        text.split_whitespace().count()
    };
    i64::try_from(words).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;
    use serde_json::json;

    #[test]
    fn words_counted_byte_by_byte_agree_with_split_whitespace() {
        let cases = [
            "",
            " ",
            "one",
            " one ",
            "one two\tthree\nfour\r\nfive",
            "a\x0Bb\x0Cc",
            "  lead and trail  ",
            "naïve café — ünïcode\u{a0}nbsp\u{2003}em",
            "x\u{85}y",
            "\t\t",
        ];
        for case in cases {
            assert_eq!(
                word_count(case),
                i64::try_from(case.split_whitespace().count()).unwrap(),
                "{case:?}"
            );
        }
    }

    #[test]
    fn words_counted_in_runs_agree_with_split_whitespace_across_run_boundaries() {
        // Texts of every length up to four runs (255 byte pairs each), spaces of each kind at
        // pseudo-random places, so that words start and end on, before and after each boundary.
        let mut x: u64 = 11;
        let mut next = || {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            x >> 33
        };
        for len in 0..1100 {
            for density in [2, 5, 40] {
                let text: String = (0..len)
                    .map(|_| match next() % density {
                        0 => [' ', '\t', '\n', '\x0B', '\x0C', '\r'][(next() % 6) as usize],
                        _ => 'w',
                    })
                    .collect();
                let expected = i64::try_from(text.split_whitespace().count()).unwrap();
                assert_eq!(word_count(&text), expected, "{text:?}");
            }
        }
        // The most word starts a run can hold, and one word longer than a run.
        let alternating = "a ".repeat(600);
        assert_eq!(word_count(&alternating), 600);
        assert_eq!(word_count(&"w".repeat(700)), 1);
        assert_eq!(word_count(&format!(" {} ", "w".repeat(254))), 1);
    }

    #[test]
    fn dates_written_digit_by_digit_agree_with_chrono_at_every_width() {
        for year in [0, 1, 9, 10, 99, 100, 999, 1000, 2024, 9999, 10_000, -1, -2024] {
            let ts = NaiveDate::from_ymd_opt(year, 1, 2)
                .and_then(|d| d.and_hms_opt(3, 4, 5))
                .unwrap()
                .and_utc();
            assert_eq!(to_rfc3339(ts), ts.format("%Y-%m-%dT%H:%M:%SZ").to_string(), "{year}");
        }
    }

    #[test]
    fn dates_read_digit_by_digit_agree_with_chrono() {
        let mut cases: Vec<String> = [
            "2018-07-07 22:09:11",
            "2016-02-29 00:00:00",
            "2015-02-29 00:00:00",
            "2018-13-07 22:09:11",
            "2018-07-07 24:00:00",
            "2018-07-07 23:59:60",
            "0000-01-01 00:00:00",
            "9999-12-31 23:59:59",
            "2018-07-07 2a:09:11",
            "2018-07-07T22:09:11",
            "+201-07-07 22:09:11",
            "2018-07-07 22:09:1",
        ]
        .map(String::from)
        .to_vec();
        let mut x: u64 = 7;
        for _ in 0..2000 {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let d = |shift: u32, modulo: u64| (x >> shift) % modulo;
            cases.push(format!(
                "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
                1990 + d(1, 40),
                d(7, 14),
                d(13, 33),
                d(19, 25),
                d(25, 61),
                d(31, 61)
            ));
        }
        for case in &cases {
            let chrono = NaiveDateTime::parse_from_str(case, YELP_DATETIME).ok();
            let read = plain_datetime(case);
            if read.is_some() || chrono.is_none() {
                assert_eq!(read, chrono, "{case}");
            }
            assert_eq!(parse_yelp_datetime(case).ok(), chrono.map(|n| n.and_utc()), "{case}");
            if let Some(n) = chrono {
                assert_eq!(
                    to_rfc3339(n.and_utc()),
                    n.and_utc().format("%Y-%m-%dT%H:%M:%SZ").to_string()
                );
            }
        }
    }

    #[test]
    fn dates_parse_as_utc_and_format_rfc3339() {
        let ts = parse_yelp_datetime("2018-07-07 22:09:11").unwrap();
        assert_eq!(to_rfc3339(ts), "2018-07-07T22:09:11Z");
        assert_eq!(
            to_rfc3339(parse_yelp_datetime(" 2012-05-18 02:17:21 ").unwrap()),
            "2012-05-18T02:17:21Z"
        );
        for bad in [
            "2018-07-07",
            "2018-13-07 22:09:11",
            "07/07/2018 22:09",
            "",
            "2018-07-07T22:09:11Z",
        ] {
            assert!(matches!(parse_yelp_datetime(bad), Err(QuirkError::BadDate(_))), "{bad}");
        }
    }

    #[test]
    fn categories_split_trim_and_dedupe() {
        assert_eq!(
            parse_categories(Some("Mexican, Burgers,  Gastropubs ")),
            ["Mexican", "Burgers", "Gastropubs"]
        );
        assert_eq!(parse_categories(Some("Bars, , Bars")), ["Bars"]);
        assert!(parse_categories(None).is_empty());
        assert!(parse_categories(Some("")).is_empty());
    }

    #[test]
    fn elite_years_including_the_20_20_quirk() {
        assert_eq!(parse_elite("2007,2019,20,20,2021").unwrap(), [2007, 2019, 2020, 2021]);
        assert_eq!(parse_elite("20,20").unwrap(), [2020]);
        assert!(parse_elite("").unwrap().is_empty());
        assert_eq!(parse_elite("2010, 2009").unwrap(), [2009, 2010]);
        assert_eq!(parse_elite("2010,abc"), Err(QuirkError::BadEliteYear("abc".into())));
        assert!(parse_elite("20").is_err());
    }

    #[test]
    fn friends_none_empty_and_list() {
        assert!(parse_friends("None").is_empty());
        assert!(parse_friends("").is_empty());
        assert_eq!(
            parse_friends("NSCy54eWehBJyZdG2iE84w, pe42u7DcCH2QmI81NX-8qA"),
            ["NSCy54eWehBJyZdG2iE84w", "pe42u7DcCH2QmI81NX-8qA"]
        );
    }

    #[test]
    fn checkin_dates() {
        let d = parse_checkin_dates("2020-03-13 21:10:56, 2020-06-02 22:18:06,2010-09-13 21:43:09").unwrap();
        assert_eq!(d.len(), 3);
        assert_eq!(to_rfc3339(d[2]), "2010-09-13T21:43:09Z");
        assert!(parse_checkin_dates("2020-03-13 21:10:56, yesterday").is_err());
        assert!(parse_checkin_dates("").unwrap().is_empty());
    }

    #[test]
    fn hours_are_zero_padded() {
        let hours: BTreeMap<String, String> = [("Monday", "0:0-0:0"), ("Friday", "8:0-18:30")]
            .into_iter()
            .map(|(a, b)| (a.into(), b.into()))
            .collect();
        let n = normalize_hours(&hours).unwrap();
        assert_eq!(n["Monday"], "00:00-00:00");
        assert_eq!(n["Friday"], "08:00-18:30");
        let bad: BTreeMap<String, String> = [("Monday".to_string(), "8-18".to_string())].into();
        assert!(matches!(normalize_hours(&bad), Err(QuirkError::BadHours { .. })));
    }

    #[test]
    fn python_literals() {
        assert_eq!(
            parse_python_literal("{'garage': False, 'street': False, 'validated': False, 'lot': True, 'valet': False}"),
            Some(json!({"garage": false, "street": false, "validated": false, "lot": true, "valet": false}))
        );
        assert_eq!(parse_python_literal("u'free'"), Some(json!("free")));
        assert_eq!(parse_python_literal("'none'"), Some(json!("none")));
        assert_eq!(parse_python_literal("None"), Some(Value::Null));
        assert_eq!(parse_python_literal("True"), Some(json!(true)));
        assert_eq!(parse_python_literal("2"), Some(json!(2)));
        assert_eq!(
            parse_python_literal("{'dj': None, u'karaoke': 'it\\'s'}"),
            Some(json!({"dj": null, "karaoke": "it's"}))
        );
        assert_eq!(parse_python_literal("{}"), Some(json!({})));
        assert_eq!(parse_python_literal("['a', (1, 2.5)]"), Some(json!(["a", [1, 2.5]])));
        // Not literals: stay strings in normalize_attributes.
        for s in ["free", "{'a': }", "'unterminated", "True False", "{'a' 1}"] {
            assert_eq!(parse_python_literal(s), None, "{s}");
        }
        let deep = format!("{}{}", "[".repeat(100), "]".repeat(100));
        assert_eq!(parse_python_literal(&deep), None);
    }

    #[test]
    fn attributes_normalise_literal_strings_only() {
        let attrs: BTreeMap<String, Value> = [
            ("WiFi", json!("u'free'")),
            ("BusinessParking", json!("{'garage': False, 'lot': True}")),
            ("Ambience", json!("None")),
            ("RestaurantsPriceRange2", json!("2")),
            ("Note", json!("ask at the desk")),
            ("Already", json!(true)),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let n = normalize_attributes(&attrs);
        assert_eq!(
            Value::Object(n),
            json!({
                "WiFi": "free", "BusinessParking": {"garage": false, "lot": true}, "Ambience": null,
                "RestaurantsPriceRange2": 2, "Note": "ask at the desk", "Already": true
            })
        );
    }

    #[test]
    fn text_metrics_count_chars_and_words() {
        assert_eq!(text_length("café au lait"), 12);
        assert_eq!(word_count("  two\twords \n"), 2);
        assert_eq!(word_count(""), 0);
    }
}
