//! Ctrl-C is a clean stop: a stage stopped that way says what it did and exits 130, and what it
//! says matches what the broker holds.
// Needs the services tests/services/up.sh starts: `make test` turns this feature on,
// so a plain `cargo test` on a fresh clone skips it.
#![cfg(feature = "service-tests")]
// Helpers outside #[test] functions: a panic there is the test's failure report.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};

/// Records in `topics` on the test broker (the producer is idempotent and not transactional, so
/// the high watermarks count its records exactly).
fn records_in(topics: &[String]) -> i64 {
    let client: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", service_env("LAB_TEST_KAFKA"))
        .create()
        .unwrap();
    let mut total = 0;
    for topic in topics {
        let meta = client.fetch_metadata(Some(topic), Duration::from_secs(10)).unwrap();
        // A topic not created yet has no partitions.
        for p in meta.topics()[0].partitions() {
            let (low, high) = client.fetch_watermarks(topic, p.id(), Duration::from_secs(10)).unwrap();
            total += high - low;
        }
    }
    total
}

#[test]
fn ctrl_c_on_produce_reports_what_was_delivered_and_exits_130() {
    let prefix = unique_prefix("ctrl-c");
    let (raw, state) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let sample = sample_dir();
    let mut producer = Background::spawn(&mut stage_cmd(
        &prefix,
        raw.path().as_os_str(),
        state.path(),
        &["produce", "--rate", "200", "--data", sample.to_str().unwrap()],
    ));
    // Let it send a few hundred records, far from the sample's end.
    let topics: Vec<String> = ["business", "review", "user", "checkin", "tip"]
        .iter()
        .map(|e| format!("{prefix}.{e}"))
        .chain([format!("{prefix}.dlq")])
        .collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    while records_in(&topics) < 200 {
        assert!(producer.is_running(), "the producer ended early: {}", producer.stderr());
        assert!(
            Instant::now() < deadline,
            "the producer sent nothing: {}",
            producer.stderr()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let out = producer.interrupt(Duration::from_secs(60));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(!stderr.contains("error:"), "a clean stop is no error:\n{stderr}");
    let report = json_stdout(&out);
    assert_eq!(report["interrupted"], true, "{report}");
    let delivered = report["delivered"].as_i64().unwrap();
    assert!((200..1000).contains(&delivered), "{report}");
    assert_eq!(
        report["sent"], report["delivered"],
        "everything sent was flushed: {report}"
    );
    assert_eq!(records_in(&topics), delivered, "the report says what the broker holds");
}
