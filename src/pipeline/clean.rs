//! The stream transform's pure logic: raw Yelp line → validated, normalised, enriched record
//! (JSON on `<prefix>.<entity>.clean`), or a [`Rejection`] that goes to the dead-letter topic.
//!
//! Clean records carry nested values (attributes, hours) as JSON text so that every clean
//! record maps onto a flat Arrow schema ([`arrow_schema`]) that the consumer writes as Parquet.

use std::sync::Arc;

use chrono::{DateTime, Datelike, Utc};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::dataset::Entity;
use crate::dataset::quirks::{self, QuirkError};
use crate::dataset::types::{Business, Checkin, Review, Tip, User};

/// Why a record was sent to the dead-letter topic. `code` is stable (for counting and
/// dashboards); `detail` is for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub code: &'static str,
    pub detail: String,
}

impl Rejection {
    fn new(code: &'static str, detail: impl Into<String>) -> Self {
        Self {
            code,
            detail: detail.into(),
        }
    }

    /// The `lab.reason` header value: `code: detail`.
    #[must_use]
    pub fn header(&self) -> String {
        format!("{}: {}", self.code, self.detail)
    }
}

impl From<QuirkError> for Rejection {
    fn from(e: QuirkError) -> Self {
        let code = match e {
            QuirkError::BadDate(_) => "bad_date",
            QuirkError::BadHours { .. } => "bad_hours",
            QuirkError::BadEliteYear(_) => "bad_elite",
        };
        Rejection::new(code, e.to_string())
    }
}

/// Longest identifier accepted; real Yelp ids are 22 characters.
const MAX_ID_LEN: usize = 64;

/// The id, trimmed. Takes the parsed string so that an id already trimmed (nearly all of them) is
/// moved into the clean record, not copied.
fn check_id(field: &'static str, value: String) -> Result<String, Rejection> {
    let id = value.trim();
    if id.is_empty() {
        return Err(Rejection::new("missing_id", format!("{field} is empty")));
    }
    if id.len() > MAX_ID_LEN || id.chars().any(char::is_control) {
        return Err(Rejection::new(
            "bad_id",
            format!("{field} is not an id ({} bytes)", id.len()),
        ));
    }
    Ok(trimmed(value))
}

/// `value` trimmed: moved when there is nothing to trim (nearly always), copied otherwise.
fn trimmed(value: String) -> String {
    let kept = value.trim();
    if kept.len() == value.len() {
        return value;
    }
    kept.to_string()
}

fn check_review_stars(stars: f64) -> Result<i32, Rejection> {
    if (1.0..=5.0).contains(&stars) && stars.fract() == 0.0 {
        #[allow(clippy::cast_possible_truncation)] // checked: a whole number in 1..=5
        Ok(stars as i32)
    } else {
        Err(Rejection::new(
            "stars_out_of_range",
            format!("stars {stars} is not a whole number from 1 to 5"),
        ))
    }
}

fn check_business_stars(stars: f64) -> Result<f64, Rejection> {
    if (0.0..=5.0).contains(&stars) {
        Ok(stars)
    } else {
        Err(Rejection::new(
            "stars_out_of_range",
            format!("stars {stars} is not between 0 and 5"),
        ))
    }
}

fn parse<'a, T: Deserialize<'a>>(entity: Entity, payload: &'a [u8]) -> Result<T, Rejection> {
    let text = std::str::from_utf8(payload)
        .map_err(|e| Rejection::new("not_utf8", format!("{entity} line is not UTF-8: {e}")))?;
    serde_json::from_str(text).map_err(|e| {
        let code = match e.classify() {
            serde_json::error::Category::Data if e.to_string().starts_with("missing field") => "missing_field",
            serde_json::error::Category::Data => "bad_field",
            _ => "invalid_json",
        };
        Rejection::new(code, format!("{entity}: {e}"))
    })
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CleanBusiness {
    pub business_id: String,
    pub name: String,
    pub address: String,
    pub city: String,
    pub state: String,
    pub postal_code: String,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    pub stars: f64,
    pub review_count: i64,
    pub is_open: bool,
    /// JSON object text with Python literals resolved, or null.
    pub attributes: Option<String>,
    pub categories: Vec<String>,
    /// JSON object text weekday → `"HH:MM-HH:MM"`, or null.
    pub hours: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CleanReview {
    pub review_id: String,
    pub user_id: String,
    pub business_id: String,
    pub stars: i32,
    pub useful: i64,
    pub funny: i64,
    pub cool: i64,
    pub text: String,
    /// RFC 3339 UTC.
    pub date: String,
    pub text_length: i64,
    pub word_count: i64,
    pub year: i32,
    pub month: i32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CleanUser {
    pub user_id: String,
    pub name: String,
    pub review_count: i64,
    pub yelping_since: Option<String>,
    pub useful: i64,
    pub funny: i64,
    pub cool: i64,
    pub elite: Vec<i32>,
    pub friends: Vec<String>,
    pub fans: i64,
    pub average_stars: f64,
    pub compliments: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CleanTip {
    /// Tips have no id in the dataset; this one is derived from their content so duplicates collapse.
    pub tip_id: String,
    pub user_id: String,
    pub business_id: String,
    pub text: String,
    pub date: String,
    pub compliment_count: i64,
    pub text_length: i64,
    pub word_count: i64,
    pub year: i32,
    pub month: i32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CleanCheckin {
    pub business_id: String,
    pub dates: Vec<String>,
    pub checkin_count: i64,
}

/// A clean record, and what was repaired in it on the way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cleaned {
    pub json: Vec<u8>,
    /// The raw line held NUL characters (`\u0000`), and none of them is in the clean record (see
    /// [`text`]).
    pub nul_removed: bool,
}

/// Validates, normalises and enriches one raw line of `entity`, returning the clean JSON.
pub fn clean(entity: Entity, payload: &[u8]) -> Result<Cleaned, Rejection> {
    let size = payload.len();
    let json = match entity {
        Entity::Business => to_json(&clean_business(parse(entity, payload)?)?, size),
        Entity::Review => to_json(&clean_review(parse(entity, payload)?)?, size),
        Entity::User => to_json(&clean_user(parse(entity, payload)?)?, size),
        Entity::Tip => to_json(&clean_tip(parse(entity, payload)?)?, size),
        Entity::Checkin => to_json(&clean_checkin(parse(entity, payload)?)?, size),
    };
    Ok(Cleaned {
        json: json.map_err(|e| Rejection::new("internal", e.to_string()))?,
        // JSON can only carry a NUL inside a string, as this escape (a raw NUL byte is invalid
        // JSON): every string that reaches a clean record went through `text`, or is an id (ids
        // with control characters are rejected).
        nul_removed: memchr::memmem::find(payload, b"\\u0000").is_some(),
    })
}

/// `record` as JSON, in a buffer sized for it at once: a clean record is about as long as its raw
/// line (`raw_len`), and growing from serde_json's default 128 bytes was a visible part of the
/// transform's profile (reallocations).
fn to_json<T: Serialize>(record: &T, raw_len: usize) -> serde_json::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(raw_len + 256);
    serde_json::to_writer(&mut out, record)?;
    Ok(out)
}

/// A free-text field as the clean record carries it: trimmed, and without NUL characters.
///
/// NUL is removed rather than dead-lettered: it carries no meaning in Yelp's text, and PostgreSQL
/// cannot store it in `text` at all (`invalid byte sequence for encoding "UTF8": 0x00`), so a
/// single one would otherwise fail every load of the serving tables.
///
/// Takes the parsed string: one with nothing to remove (nearly all) is moved, not copied.
fn text(value: String) -> String {
    if value.contains('\0') {
        trimmed(value.replace('\0', ""))
    } else {
        trimmed(value)
    }
}

/// `value` with NUL characters removed from every string in it (keys included).
fn without_nul(value: Value) -> Value {
    match value {
        Value::String(s) if s.contains('\0') => Value::String(s.replace('\0', "")),
        Value::Array(items) => Value::Array(items.into_iter().map(without_nul).collect()),
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (k.replace('\0', ""), without_nul(v)))
                .collect(),
        ),
        other => other,
    }
}

pub fn clean_business(b: Business) -> Result<CleanBusiness, Rejection> {
    let hours = match &b.hours {
        Some(h) => Some(json_text(&quirks::normalize_hours(h)?)),
        None => None,
    };
    Ok(CleanBusiness {
        business_id: check_id("business_id", b.business_id)?,
        name: text(b.name),
        address: text(b.address),
        city: text(b.city),
        state: text(b.state),
        postal_code: text(b.postal_code),
        latitude: b.latitude.filter(|l| (-90.0..=90.0).contains(l)),
        longitude: b.longitude.filter(|l| (-180.0..=180.0).contains(l)),
        stars: check_business_stars(b.stars)?,
        review_count: b.review_count,
        is_open: b.is_open != 0,
        attributes: b
            .attributes
            .as_ref()
            .map(|a| json_text(&quirks::normalize_attributes(a))),
        categories: quirks::parse_categories(b.categories.map(text).as_deref()),
        hours,
    })
}

pub fn clean_review(r: Review) -> Result<CleanReview, Rejection> {
    let date = quirks::parse_yelp_datetime(&r.date)?;
    let text = text(r.text);
    Ok(CleanReview {
        review_id: check_id("review_id", r.review_id)?,
        user_id: check_id("user_id", r.user_id)?,
        business_id: check_id("business_id", r.business_id)?,
        stars: check_review_stars(r.stars)?,
        useful: r.useful,
        funny: r.funny,
        cool: r.cool,
        text_length: quirks::text_length(&text),
        word_count: quirks::word_count(&text),
        text,
        date: quirks::to_rfc3339(date),
        year: date.year(),
        month: month_of(date),
    })
}

pub fn clean_user(u: User) -> Result<CleanUser, Rejection> {
    let yelping_since = match u.yelping_since.trim() {
        "" => None,
        s => Some(quirks::to_rfc3339(quirks::parse_yelp_datetime(s)?)),
    };
    let compliments = [
        u.compliment_hot,
        u.compliment_more,
        u.compliment_profile,
        u.compliment_cute,
        u.compliment_list,
        u.compliment_note,
        u.compliment_plain,
        u.compliment_cool,
        u.compliment_funny,
        u.compliment_writer,
        u.compliment_photos,
    ]
    .iter()
    .sum();
    Ok(CleanUser {
        user_id: check_id("user_id", u.user_id)?,
        name: text(u.name),
        review_count: u.review_count,
        yelping_since,
        useful: u.useful,
        funny: u.funny,
        cool: u.cool,
        elite: quirks::parse_elite(&u.elite)?,
        friends: quirks::parse_friends(&text(u.friends)),
        fans: u.fans,
        average_stars: u.average_stars,
        compliments,
    })
}

pub fn clean_tip(t: Tip) -> Result<CleanTip, Rejection> {
    let date = quirks::parse_yelp_datetime(&t.date)?;
    let user_id = check_id("user_id", t.user_id)?;
    let business_id = check_id("business_id", t.business_id)?;
    let text = text(t.text);
    let date_text = quirks::to_rfc3339(date);
    Ok(CleanTip {
        tip_id: tip_id(&user_id, &business_id, &date_text, &text),
        user_id,
        business_id,
        text_length: quirks::text_length(&text),
        word_count: quirks::word_count(&text),
        text,
        date: date_text,
        compliment_count: t.compliment_count,
        year: date.year(),
        month: month_of(date),
    })
}

pub fn clean_checkin(c: Checkin) -> Result<CleanCheckin, Rejection> {
    let mut dates = quirks::parse_checkin_dates(&c.date)?;
    dates.sort_unstable();
    Ok(CleanCheckin {
        business_id: check_id("business_id", c.business_id)?,
        checkin_count: i64::try_from(dates.len()).unwrap_or(i64::MAX),
        dates: dates.into_iter().map(quirks::to_rfc3339).collect(),
    })
}

#[allow(clippy::cast_possible_wrap)] // a month is 1..=12
fn month_of(date: DateTime<Utc>) -> i32 {
    date.month() as i32
}

/// Nested values (attributes, hours) as JSON text, without NUL characters (see [`text`]).
fn json_text<T: Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .map(without_nul)
        .and_then(|v| serde_json::to_string(&v))
        .unwrap_or_default()
}

/// Stable 16-hex-digit id for a tip (FNV-1a 64 over its identifying fields).
/// Stable across runs and platforms, unlike `std`'s hasher.
#[must_use]
pub fn tip_id(user_id: &str, business_id: &str, date: &str, text: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in [user_id, business_id, date, text] {
        for byte in part.bytes().chain(std::iter::once(0xff)) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{hash:016x}")
}

/// Columns the consumer adds to every raw-zone file: where each record came from in Kafka.
pub const KAFKA_PARTITION_COLUMN: &str = "_partition";
pub const KAFKA_OFFSET_COLUMN: &str = "_offset";

/// The Arrow schema of an entity's clean records (without the Kafka columns).
#[must_use]
pub fn arrow_schema(entity: Entity) -> SchemaRef {
    // Microseconds, not the dataset's seconds: Parquet has no logical type for seconds, so those
    // would land as bare integers that Spark, DuckDB and pandas read as numbers.
    let ts = || DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
    let list = |item: DataType| DataType::List(Arc::new(Field::new("item", item, true)));
    let f = |name: &str, ty: DataType, nullable: bool| Field::new(name, ty, nullable);
    use DataType::{Boolean, Float64, Int32, Int64, Utf8};
    let fields = match entity {
        Entity::Business => vec![
            f("business_id", Utf8, false),
            f("name", Utf8, false),
            f("address", Utf8, false),
            f("city", Utf8, false),
            f("state", Utf8, false),
            f("postal_code", Utf8, false),
            f("latitude", Float64, true),
            f("longitude", Float64, true),
            f("stars", Float64, false),
            f("review_count", Int64, false),
            f("is_open", Boolean, false),
            f("attributes", Utf8, true),
            f("categories", list(Utf8), false),
            f("hours", Utf8, true),
        ],
        Entity::Review => vec![
            f("review_id", Utf8, false),
            f("user_id", Utf8, false),
            f("business_id", Utf8, false),
            f("stars", Int32, false),
            f("useful", Int64, false),
            f("funny", Int64, false),
            f("cool", Int64, false),
            f("text", Utf8, false),
            f("date", ts(), false),
            f("text_length", Int64, false),
            f("word_count", Int64, false),
            f("year", Int32, false),
            f("month", Int32, false),
        ],
        Entity::User => vec![
            f("user_id", Utf8, false),
            f("name", Utf8, false),
            f("review_count", Int64, false),
            f("yelping_since", ts(), true),
            f("useful", Int64, false),
            f("funny", Int64, false),
            f("cool", Int64, false),
            f("elite", list(Int32), false),
            f("friends", list(Utf8), false),
            f("fans", Int64, false),
            f("average_stars", Float64, false),
            f("compliments", Int64, false),
        ],
        Entity::Tip => vec![
            f("tip_id", Utf8, false),
            f("user_id", Utf8, false),
            f("business_id", Utf8, false),
            f("text", Utf8, false),
            f("date", ts(), false),
            f("compliment_count", Int64, false),
            f("text_length", Int64, false),
            f("word_count", Int64, false),
            f("year", Int32, false),
            f("month", Int32, false),
        ],
        Entity::Checkin => vec![
            f("business_id", Utf8, false),
            f("dates", list(ts()), false),
            f("checkin_count", Int64, false),
        ],
    };
    Arc::new(Schema::new(fields))
}

/// The schema of raw-zone Parquet files: the clean schema plus the Kafka columns.
#[must_use]
pub fn raw_zone_schema(entity: Entity) -> SchemaRef {
    let mut fields: Vec<Field> = arrow_schema(entity)
        .fields()
        .iter()
        .map(|f| f.as_ref().clone())
        .collect();
    fields.push(Field::new(KAFKA_PARTITION_COLUMN, DataType::Int32, false));
    fields.push(Field::new(KAFKA_OFFSET_COLUMN, DataType::Int64, false));
    Arc::new(Schema::new(fields))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn cleaned(entity: Entity, line: &str) -> Value {
        serde_json::from_slice(&clean(entity, line.as_bytes()).unwrap().json).unwrap()
    }

    fn rejected(entity: Entity, line: &[u8]) -> Rejection {
        clean(entity, line).unwrap_err()
    }

    #[test]
    fn review_is_normalised_and_enriched() {
        let v = cleaned(
            Entity::Review,
            r#"{"review_id":"KU_O5udG6zpxOg-VcAEodg","user_id":"mh_-eMZ6K5RLWhZyISBhwA","business_id":"XQfwVwDr-v0ZS3_CbbE5Xw","stars":3.0,"useful":1,"funny":0,"cool":0,"text":"  If you decide to eat here, café!  ","date":"2018-07-07 22:09:11"}"#,
        );
        assert_eq!(v["stars"], 3);
        assert_eq!(v["date"], "2018-07-07T22:09:11Z");
        assert_eq!(v["text"], "If you decide to eat here, café!");
        assert_eq!(v["text_length"], 32);
        assert_eq!(v["word_count"], 7);
        assert_eq!((v["year"].as_i64(), v["month"].as_i64()), (Some(2018), Some(7)));
    }

    #[test]
    fn ids_and_texts_are_trimmed_whether_moved_or_copied() {
        let v = cleaned(
            Entity::Review,
            r#"{"review_id":" r1\t","user_id":"u1","business_id":"b1 ","stars":4,"text":" a\u0000b ","date":"2018-07-07 22:09:11"}"#,
        );
        assert_eq!(
            (&v["review_id"], &v["user_id"], &v["business_id"]),
            (&json!("r1"), &json!("u1"), &json!("b1"))
        );
        assert_eq!(v["text"], "ab");
        let v = cleaned(
            Entity::Tip,
            r#"{"user_id":"u1 ","business_id":" b1","text":"as is","date":"2018-07-07 22:09:11","compliment_count":0}"#,
        );
        assert_eq!(
            (&v["user_id"], &v["business_id"], &v["text"]),
            (&json!("u1"), &json!("b1"), &json!("as is"))
        );
    }

    #[test]
    fn invalid_reviews_are_rejected_with_reasons() {
        let base = r#"{"review_id":"r1","user_id":"u1","business_id":"b1","stars":STARS,"text":"t","date":"DATE"}"#;
        let line = |stars: &str, date: &str| base.replace("STARS", stars).replace("DATE", date);
        assert_eq!(
            rejected(Entity::Review, line("7.0", "2018-07-07 22:09:11").as_bytes()).code,
            "stars_out_of_range"
        );
        assert_eq!(
            rejected(Entity::Review, line("4.5", "2018-07-07 22:09:11").as_bytes()).code,
            "stars_out_of_range"
        );
        assert_eq!(
            rejected(Entity::Review, line("0", "2018-07-07 22:09:11").as_bytes()).code,
            "stars_out_of_range"
        );
        assert_eq!(
            rejected(Entity::Review, line("4", "not a date").as_bytes()).code,
            "bad_date"
        );
        assert_eq!(
            rejected(Entity::Review, line("\"five\"", "2018-07-07 22:09:11").as_bytes()).code,
            "bad_field"
        );
        assert_eq!(
            rejected(Entity::Review, br#"{"review_id":"r1","user_id":"u1""#).code,
            "invalid_json"
        );
        assert_eq!(rejected(Entity::Review, b"{\"review_id\":\"\xff\"}").code, "not_utf8");
        let missing = rejected(
            Entity::Review,
            br#"{"user_id":"u1","business_id":"b1","stars":4,"date":"2018-07-07 22:09:11"}"#,
        );
        assert_eq!(missing.code, "missing_field");
        assert!(missing.detail.contains("review_id"), "{missing:?}");
        let empty = line("4", "2018-07-07 22:09:11").replace("\"b1\"", "\"  \"");
        assert_eq!(rejected(Entity::Review, empty.as_bytes()).code, "missing_id");
        // A raw NUL is invalid JSON; an escaped one parses but is no id.
        assert_eq!(
            rejected(Entity::Review, b"{\"review_id\":\"r\0\"}").code,
            "invalid_json"
        );
        assert_eq!(rejected(Entity::Review, b"{\"review_id\":\"r\\u0000\",\"user_id\":\"u\",\"business_id\":\"b\",\"stars\":4,\"date\":\"2018-07-07 22:09:11\"}").code, "bad_id");
        assert!(
            rejected(Entity::Review, b"[1,2]")
                .header()
                .starts_with("bad_field: review:")
        );
    }

    #[test]
    fn nul_is_removed_from_every_text_field_and_counted() {
        let line = r#"{"business_id":"b1","name":"Caf\u0000é","address":"\u00001 Main","city":"Zü\u0000rich","state":"Z\u0000H","postal_code":"80\u000000","stars":4.0,"review_count":1,"is_open":1,"attributes":{"Wi\u0000Fi":"u'fr\u0000ee'","Ambience":"{'ro\u0000mantic': True}"},"categories":"Ba\u0000rs, Te\u0000a","hours":{"Monday":"8:0-18:0"}}"#;
        let cleaned = clean(Entity::Business, line.as_bytes()).unwrap();
        assert!(cleaned.nul_removed);
        let v: Value = serde_json::from_slice(&cleaned.json).unwrap();
        assert_eq!(v["name"], "Café");
        assert_eq!(v["address"], "1 Main");
        assert_eq!(v["city"], "Zürich");
        assert_eq!(v["state"], "ZH");
        assert_eq!(v["postal_code"], "8000");
        assert_eq!(v["categories"], serde_json::json!(["Bars", "Tea"]));
        let attributes: Value = serde_json::from_str(v["attributes"].as_str().unwrap()).unwrap();
        assert_eq!(attributes["WiFi"], "free");
        assert_eq!(attributes["Ambience"]["romantic"], true);
        let review = r#"{"review_id":"r1","user_id":"u1","business_id":"b1","stars":5.0,"text":"gr\u0000eat","date":"2020-01-01 10:00:00"}"#;
        let cleaned = clean(Entity::Review, review.as_bytes()).unwrap();
        assert!(cleaned.nul_removed);
        assert_eq!(serde_json::from_slice::<Value>(&cleaned.json).unwrap()["text"], "great");
        let plain = r#"{"review_id":"r1","user_id":"u1","business_id":"b1","stars":5.0,"text":"fine","date":"2020-01-01 10:00:00"}"#;
        assert!(!clean(Entity::Review, plain.as_bytes()).unwrap().nul_removed);
    }

    #[test]
    fn business_quirks_are_resolved() {
        let v = cleaned(
            Entity::Business,
            r#"{"business_id":"Pns2l4eNsfO8kk83dixA6A","name":" Abby Rappoport ","address":"1616 Chapala St","city":"Santa Barbara","state":"CA","postal_code":"93101","latitude":34.42,"longitude":-119.71,"stars":5.0,"review_count":7,"is_open":0,"attributes":{"WiFi":"u'free'","BusinessParking":"{'garage': False, 'lot': True}","Alcohol":"None"},"categories":"Doctors, Traditional Chinese Medicine","hours":{"Monday":"0:0-0:0","Tuesday":"8:0-18:30"}}"#,
        );
        assert_eq!(v["name"], "Abby Rappoport");
        assert_eq!(v["is_open"], false);
        assert_eq!(
            v["categories"],
            serde_json::json!(["Doctors", "Traditional Chinese Medicine"])
        );
        let attrs: Value = serde_json::from_str(v["attributes"].as_str().unwrap()).unwrap();
        assert_eq!(
            attrs,
            serde_json::json!({"Alcohol": null, "BusinessParking": {"garage": false, "lot": true}, "WiFi": "free"})
        );
        let hours: Value = serde_json::from_str(v["hours"].as_str().unwrap()).unwrap();
        assert_eq!(hours["Tuesday"], "08:00-18:30");

        let nulls = cleaned(
            Entity::Business,
            r#"{"business_id":"b","name":"n","address":"","city":"c","state":"s","postal_code":"","latitude":1,"longitude":2,"stars":3.5,"review_count":1,"is_open":1,"attributes":null,"categories":null,"hours":null}"#,
        );
        assert_eq!(nulls["attributes"], Value::Null);
        assert_eq!(nulls["categories"], serde_json::json!([]));
        assert_eq!(nulls["hours"], Value::Null);
    }

    #[test]
    fn user_tip_checkin() {
        let u = cleaned(
            Entity::User,
            r#"{"user_id":"u1","name":"Walker","review_count":5,"yelping_since":"2007-01-25 16:47:26","elite":"2019,20,20","friends":"None","compliment_hot":2,"compliment_photos":3}"#,
        );
        assert_eq!(u["elite"], serde_json::json!([2019, 2020]));
        assert_eq!(u["friends"], serde_json::json!([]));
        assert_eq!(u["compliments"], 5);
        assert_eq!(u["yelping_since"], "2007-01-25T16:47:26Z");
        assert_eq!(
            rejected(Entity::User, br#"{"user_id":"u1","elite":"20x"}"#).code,
            "bad_elite"
        );

        let tip = r#"{"user_id":"u1","business_id":"b1","text":"Avengers time","date":"2012-05-18 02:17:21","compliment_count":0}"#;
        let t = cleaned(Entity::Tip, tip);
        assert_eq!(t["tip_id"], cleaned(Entity::Tip, tip)["tip_id"]);
        assert_eq!(t["tip_id"].as_str().unwrap().len(), 16);
        assert_ne!(
            t["tip_id"],
            cleaned(Entity::Tip, &tip.replace("Avengers", "Other"))["tip_id"]
        );

        let c = cleaned(
            Entity::Checkin,
            r#"{"business_id":"b1","date":"2020-06-02 22:18:06, 2010-09-13 21:43:09"}"#,
        );
        assert_eq!(
            c["dates"],
            serde_json::json!(["2010-09-13T21:43:09Z", "2020-06-02T22:18:06Z"])
        );
        assert_eq!(c["checkin_count"], 2);
    }

    #[test]
    fn clean_json_decodes_with_the_arrow_schema() {
        use datafusion::arrow::json::ReaderBuilder;
        let lines = [
            (
                Entity::Review,
                cleaned(
                    Entity::Review,
                    r#"{"review_id":"r","user_id":"u","business_id":"b","stars":5.0,"text":"x","date":"2018-07-07 22:09:11"}"#,
                ),
            ),
            (
                Entity::Checkin,
                cleaned(Entity::Checkin, r#"{"business_id":"b1","date":"2020-06-02 22:18:06"}"#),
            ),
            (
                Entity::User,
                cleaned(Entity::User, r#"{"user_id":"u1","elite":"2019","friends":"a, b"}"#),
            ),
            (
                Entity::Tip,
                cleaned(
                    Entity::Tip,
                    r#"{"user_id":"u1","business_id":"b1","date":"2012-05-18 02:17:21"}"#,
                ),
            ),
            (
                Entity::Business,
                cleaned(Entity::Business, r#"{"business_id":"b","categories":"A, B"}"#),
            ),
        ];
        for (entity, value) in lines {
            let mut decoder = ReaderBuilder::new(arrow_schema(entity)).build_decoder().unwrap();
            decoder.decode(value.to_string().as_bytes()).unwrap();
            let batch = decoder.flush().unwrap().unwrap();
            assert_eq!(batch.num_rows(), 1, "{entity}");
        }
    }
}
