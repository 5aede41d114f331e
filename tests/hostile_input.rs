//! A corpus of hostile Yelp lines between good ones, through the real broker of `make test`:
//! truncated JSON, wrong types, invalid UTF-8, a 10 MB text, stars 7, a missing id, a NUL byte in
//! an id, business attributes nested 2,000 deep, a business whose clean record outgrows a Kafka
//! record — each lands in the DLQ with its reason; unknown
//! fields and a duplicate id are not errors; the good records around them arrive untouched and the
//! counters match.
// Needs the services tests/services/up.sh starts: `make test` turns this feature on,
// so a plain `cargo test` on a fresh clone skips it.
#![cfg(feature = "service-tests")]
// Corpus builders outside #[test] functions: a panic there is the test's failure report.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::{run_stage, service_env, unique_prefix};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Headers;
use rdkafka::{ClientConfig, Message};
use serde_json::json;

fn review(id: &str, stars: serde_json::Value, text: &str) -> serde_json::Value {
    json!({"review_id": id, "user_id": "u".repeat(22), "business_id": "b".repeat(22), "stars": stars,
           "useful": 0, "funny": 0, "cool": 0, "text": text, "date": "2019-01-01 10:00:00"})
}

/// The corpus: (line, the DLQ reason code it must get, or None for a record that must pass).
fn corpus() -> Vec<(Vec<u8>, Option<&'static str>)> {
    let good = |i: u32| {
        review(&format!("goodreview{i:012}"), json!(4.0), &format!("fine {i}"))
            .to_string()
            .into_bytes()
    };
    let mut unknown = review("unknownfield0000000000", json!(3), "x");
    unknown["surprise"] = json!({"a": [1, 2]});
    let mut missing = review("", json!(3), "x");
    missing.as_object_mut().unwrap().remove("review_id");
    let mut bad_utf8 = review("badutf8review000000000", json!(3), "x").to_string().into_bytes();
    let at = bad_utf8.windows(3).position(|w| w == b"\"x\"").unwrap() + 1;
    bad_utf8.splice(at..at + 1, [0xc3, 0x28]);
    vec![
        (good(1), None),
        (good(2)[..40].to_vec(), Some("invalid_json")),
        (
            review("wrongtype0000000000000", json!("four"), "x")
                .to_string()
                .into_bytes(),
            Some("bad_field"),
        ),
        (good(3), None),
        (
            review("stars7review0000000000", json!(7), "x").to_string().into_bytes(),
            Some("stars_out_of_range"),
        ),
        (missing.to_string().into_bytes(), Some("missing_field")),
        (
            review("nul\u{0}review000000000000", json!(3), "x")
                .to_string()
                .into_bytes(),
            Some("bad_id"),
        ),
        (
            review("hugereview000000000000", json!(3), &"y".repeat(10 << 20))
                .to_string()
                .into_bytes(),
            Some("too_large"),
        ),
        (good(4), None),
        (unknown.to_string().into_bytes(), None),
        (bad_utf8, Some("not_utf8")),
        (good(1), None), // a duplicate id is not an error here: the batch keeps one row
        (good(5), None),
    ]
}

fn business(id: &str, attributes: serde_json::Value) -> Vec<u8> {
    json!({"business_id": id, "name": "Urban Kitchen", "address": "200 Speedway Way", "city": "Reno", "state": "NV",
           "postal_code": "89551", "latitude": 39.6, "longitude": -119.9, "stars": 4.0, "review_count": 22,
           "is_open": 1, "attributes": attributes, "categories": "Restaurants", "hours": null})
    .to_string()
    .into_bytes()
}

/// Businesses: one whose attributes nest 2,000 levels deep (the parser's depth limit refuses it).
fn business_corpus() -> Vec<(Vec<u8>, Option<&'static str>)> {
    let mut nested = json!("leaf");
    for _ in 0..2_000 {
        nested = json!({ "n": nested });
    }
    vec![
        (business("goodbusiness0000000001", json!({"WiFi": "u'free'"})), None),
        (business("deepbusiness0000000000", nested), Some("invalid_json")),
        (business("goodbusiness0000000002", serde_json::Value::Null), None),
        // 600 KB as a raw line, but each quote grows to 4 bytes once the attributes are JSON text
        // inside the clean JSON: 1.2 MB, more than a Kafka record holds. The transform
        // dead-letters it (the original line) instead of stopping.
        (
            business("bigattributes000000000", json!({"Quotes": "\"".repeat(300_000)})),
            Some("too_large"),
        ),
    ]
}

fn read_topic(topics: &[&str], prefix: &str, expected: usize) -> Vec<(Option<String>, Vec<u8>)> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", service_env("LAB_TEST_KAFKA"))
        .set("group.id", format!("{prefix}-check-{}", topics.join("-")))
        .set("auto.offset.reset", "earliest")
        .set("isolation.level", "read_committed")
        .create()
        .expect("create a reader");
    consumer.subscribe(topics).expect("subscribe");
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while out.len() < expected && Instant::now() < deadline {
        let Some(msg) = consumer.poll(Duration::from_millis(500)) else {
            continue;
        };
        let msg = msg.expect("read a record");
        let code = msg
            .headers()
            .and_then(|h| h.iter().find(|h| h.key == "lab.reason.code"))
            .and_then(|h| h.value)
            .map(|v| String::from_utf8_lossy(v).into_owned());
        out.push((code, msg.payload().unwrap_or_default().to_vec()));
    }
    assert!(
        consumer.poll(Duration::from_secs(2)).is_none(),
        "more records on {topics:?} than expected"
    );
    out
}

#[test]
fn every_hostile_line_is_dead_lettered_with_its_reason_and_good_lines_pass() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let corpus = corpus();
    let mut file = Vec::new();
    for (line, _) in &corpus {
        file.extend_from_slice(line);
        file.push(b'\n');
    }
    std::fs::write(data.join("yelp_academic_dataset_review.json"), file).unwrap();
    let businesses = business_corpus();
    let lines: Vec<Vec<u8>> = businesses.iter().map(|(l, _)| l.clone()).collect();
    std::fs::write(data.join("yelp_academic_dataset_business.json"), lines.join(&b'\n')).unwrap();
    let corpus: Vec<_> = corpus.into_iter().chain(businesses).collect();
    let prefix = unique_prefix("hostile");
    let raw = dir.path().join("raw");
    let stage = |args: &[&str]| run_stage(&prefix, raw.as_os_str(), &dir.path().join("state"), args);

    let produced = stage(&[
        "produce",
        "--data",
        data.to_str().unwrap(),
        "--entities",
        "review,business",
    ]);
    assert_eq!(produced["sent"], corpus.len(), "{produced}");
    assert_eq!(produced["delivered"], corpus.len(), "{produced}");
    assert_eq!(produced["dead_lettered"], 1, "the 10 MB line: {produced}");
    let transformed = stage(&["transform", "--until-caught-up"]);
    let bad: Vec<&str> = corpus.iter().filter_map(|(_, code)| *code).collect();
    let good = corpus.len() - bad.len();
    let clean_ids = || {
        let topics = [format!("{prefix}.review.clean"), format!("{prefix}.business.clean")];
        read_topic(
            &[&topics[0], &topics[1]],
            &prefix,
            transformed["clean"].as_u64().unwrap() as usize,
        )
        .iter()
        .map(|(_, p)| {
            let v: serde_json::Value = serde_json::from_slice(p).unwrap();
            v.get("review_id")
                .or(v.get("business_id"))
                .and_then(|i| i.as_str())
                .unwrap()
                .to_string()
        })
        .collect::<Vec<String>>()
    };
    assert_eq!(transformed["consumed"], corpus.len() - 1, "{transformed}");
    assert_eq!(
        transformed["dead_lettered"],
        bad.len() - 1,
        "{transformed} {:?}",
        clean_ids()
    );
    assert_eq!(transformed["clean"], good, "{transformed}");

    // The DLQ: one record per hostile line, each with its reason.
    let dlq = read_topic(&[&format!("{prefix}.dlq")], &prefix, bad.len());
    let mut got: BTreeMap<String, usize> = BTreeMap::new();
    for (code, payload) in &dlq {
        let code = code.clone().expect("every DLQ record has lab.reason.code");
        if code == "too_large" {
            // The producer keeps an excerpt of a line too large to send; the transform keeps the
            // whole original of a record that grew too large to send.
            let original = String::from_utf8_lossy(payload).contains("bigattributes");
            assert!(
                payload.len() == 64 * 1024 || original,
                "an excerpt of the huge line, or the original line"
            );
        } else {
            assert!(!payload.is_empty());
        }
        *got.entry(code).or_default() += 1;
    }
    let mut want: BTreeMap<String, usize> = BTreeMap::new();
    for code in &bad {
        *want.entry((*code).to_string()).or_default() += 1;
    }
    assert_eq!(got, want, "DLQ reasons");

    // The clean topic: exactly the good lines, in order, untouched by their neighbours.
    let ids = clean_ids();
    for i in [1, 3, 4, 5] {
        let id = format!("goodreview{i:012}");
        assert!(ids.contains(&id), "{id} is missing from the clean topic: {ids:?}");
    }
    assert!(
        ids.contains(&"unknownfield0000000000".to_string()),
        "unknown fields are ignored"
    );
    // Both copies of a duplicate travel: the batch keeps one row per id (tests/real_services.rs).
    assert_eq!(ids.iter().filter(|i| *i == "goodreview000000000001").count(), 2);

    for id in ["goodbusiness0000000001", "goodbusiness0000000002"] {
        assert!(ids.contains(&id.to_string()), "{id}: {ids:?}");
    }

    // The consumer lands every clean record in the raw zone.
    let consumed = stage(&["consume", "--until-caught-up", "--roll-seconds", "1"]);
    assert_eq!(consumed["records_written"], good, "{consumed}");
}
