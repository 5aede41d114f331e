//! The fault lessons that only need Kafka, run embedded: `lab lesson run NAME --embedded` and
//! `lab demo --lesson NAME` start an in-process broker (librdkafka's mock cluster, the real Kafka
//! protocol) and a local raw zone, and nothing else. The configured broker points at a closed
//! port, so a lesson that reached for it would fail. Each signal must really appear, as on the
//! real services (tests/lessons.rs).

mod common;
use common::OutputGuarded;

use std::path::Path;

use common::{assert_consumer_lag_report, assert_poison_report, json_stdout, lab, number_before, signal};
use serde_json::Value;

const CLOSED: &str = "127.0.0.1:9";

/// Runs `args` with no service configured; (exit ok, report or null, stderr).
fn run(args: &[&str], state: &Path) -> (bool, Value, String) {
    let out = lab()
        .args(args)
        .env("LAB_STATE_DIR", state)
        .env("LAB_KAFKA_BROKERS", CLOSED)
        .env("LAB_HDFS_URL", format!("hdfs://{CLOSED}"))
        .env("LAB_HDFS_HTTP", format!("http://{CLOSED}"))
        .env("LAB_AIRFLOW_URL", format!("http://{CLOSED}"))
        .output_guarded();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let report = if out.status.success() {
        json_stdout(&out)
    } else {
        Value::Null
    };
    (out.status.success(), report, stderr)
}

fn embedded(name: &str, state: &Path) -> (Value, String) {
    let (ok, report, narration) = run(&["lesson", "run", name, "--embedded", "--json"], state);
    assert!(ok, "embedded lesson {name} failed:\n{narration}");
    assert!(
        narration.contains("Embedded: an in-process Kafka broker at 127.0.0.1:"),
        "{narration}"
    );
    assert!(
        !narration.contains(CLOSED),
        "the configured broker was used: {narration}"
    );
    (report, narration)
}

#[test]
fn consumer_lag_runs_embedded() {
    let state = tempfile::tempdir().unwrap();
    let (report, _) = embedded("consumer-lag", state.path());
    assert_consumer_lag_report(&report);
    // The consumer really landed the records in the embedded raw zone.
    // (the default topic prefix, `yelp`, names the lab's directory in it)
    let raw = state.path().join("lessons/embedded/raw/yelp/review");
    assert!(raw.is_dir(), "no raw zone at {}", raw.display());
}

#[test]
fn poison_messages_run_embedded_from_lab_demo() {
    let state = tempfile::tempdir().unwrap();
    let (ok, report, narration) = run(&["demo", "--lesson", "poison-messages", "--headless"], state.path());
    assert!(ok, "{narration}");
    assert_poison_report(&report);
}

#[test]
fn broker_restart_runs_embedded() {
    let state = tempfile::tempdir().unwrap();
    let (report, _) = embedded("broker-restart", state.path());
    assert!(!signal(&report, "broker down").is_empty());
    let buffering = signal(&report, "producer buffering");
    assert!(number_before(buffering, " records sent") > 50, "{buffering}");
    let once = signal(&report, "every record delivered once");
    let sent = number_before(once, " sent");
    assert!(sent > 2000 && once.contains(&format!("{sent} delivered")), "{once}");
}

#[test]
fn lessons_that_need_hdfs_or_airflow_say_so_instead_of_running_embedded() {
    let state = tempfile::tempdir().unwrap();
    for (name, needs) in [("datanode-down", "HDFS"), ("slow-batch", "Airflow")] {
        let (ok, _, stderr) = run(&["lesson", "run", name, "--embedded"], state.path());
        assert!(!ok, "{name} ran embedded");
        assert!(
            stderr.contains(&format!("lesson {name}: it cannot run embedded: it needs {needs}"))
                && stderr.contains("lab up"),
            "{stderr}"
        );
    }
}
