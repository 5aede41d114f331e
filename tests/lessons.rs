//! `lab lesson run NAME` on the real test services: each lesson's signal really appears in the
//! services' own APIs, and the repair really recovers. Its own test binary: broker-restart and
//! datanode-down stop shared services (cargo runs test binaries one after another).
//!
//! Services the lab does not run in Docker are stopped and started through the harness's scripts,
//! named in LAB_CONTROL_<SERVICE>_STOP/_START exactly as a course running its own services would.
// Needs the services tests/services/up.sh starts: `make test` turns this feature on,
// so a plain `cargo test` on a fresh clone skips it.
#![cfg(feature = "service-tests")]
// Helpers outside #[test] functions: a panic there is the test's failure report.
#![allow(clippy::unwrap_used)]

mod common;
use common::OutputGuarded;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::services::{Airflow, hdfs_delete};
use common::{
    Background, assert_consumer_lag_report, assert_poison_report, json_stdout, lab, number_before, run_ok, sample_dir,
    service_env, signal, stream_sample_into, unique_prefix,
};
use serde_json::Value;

/// One lesson at a time: they share the broker and stop services.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn script(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/services")
        .join(name)
        .display()
        .to_string()
}

/// `lab lesson run NAME --json` against the test services, with `extra_env` on top.
fn lesson_cmd(name: &str, prefix: &str, state: &Path, extra_env: &[(&str, String)]) -> Command {
    let mut cmd: Command = lab();
    cmd.args(["lesson", "run", name, "--json"])
        .env("LAB_STATE_DIR", state)
        .env("LAB_KAFKA_BROKERS", service_env("LAB_TEST_KAFKA"))
        .env("LAB_TOPIC_PREFIX", prefix)
        .env("LAB_RAW_ZONE", state.join("raw"))
        .env("LAB_HDFS_URL", service_env("LAB_TEST_HDFS_URL"))
        .env("LAB_HDFS_HTTP", service_env("LAB_TEST_HDFS_HTTP"));
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    cmd
}

/// A lesson that must succeed: its report and its narration.
fn lesson(name: &str, prefix: &str, state: &Path, extra_env: &[(&str, String)]) -> (Value, String) {
    let out = lesson_cmd(name, prefix, state, extra_env).output_guarded();
    let narration = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "lesson {name} failed ({}):\n{narration}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout)
    );
    (json_stdout(&out), narration)
}

#[tokio::test(flavor = "multi_thread")]
async fn consumer_lag_grows_while_the_consumer_is_paused_and_drains_after() {
    let _serial = SERIAL.lock().await;
    let state = tempfile::tempdir().unwrap();
    let (report, _) = lesson("consumer-lag", &unique_prefix("lesson-lag"), state.path(), &[]);
    assert_consumer_lag_report(&report);
}

#[tokio::test(flavor = "multi_thread")]
async fn poison_messages_fill_the_dlq_with_their_reasons_while_good_records_flow() {
    let _serial = SERIAL.lock().await;
    let state = tempfile::tempdir().unwrap();
    let (report, narration) = lesson("poison-messages", &unique_prefix("lesson-poison"), state.path(), &[]);
    assert_poison_report(&report);
    assert!(
        narration.contains("kcat"),
        "the lesson tells how to read the DLQ: {narration}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn broker_restart_buffers_in_the_producer_and_delivers_everything_once() {
    let _serial = SERIAL.lock().await;
    // A fresh, empty broker: restarting one that holds the earlier suites' data means saving and
    // reloading all of it (minutes on noida-db), which is not what this lesson is about.
    common::services::service_script("kafka", "start");
    let state = tempfile::tempdir().unwrap();
    let kafka = script("kafka.sh");
    let (report, _) = lesson(
        "broker-restart",
        &unique_prefix("lesson-broker"),
        state.path(),
        &[
            ("LAB_CONTROL_KAFKA_STOP", format!("{kafka} stop-keep")),
            ("LAB_CONTROL_KAFKA_START", format!("{kafka} restart")),
        ],
    );
    assert_eq!(report["recovered"], true, "{report}");
    signal(&report, "broker down");
    assert!(number_before(signal(&report, "producer buffering"), " records sent") > 0);
    signal(&report, "broker back");
    let delivered = signal(&report, "every record delivered once");
    let lines = std::fs::read_dir(sample_dir())
        .unwrap()
        .map(|f| std::fs::read_to_string(f.unwrap().path()).unwrap().lines().count())
        .sum::<usize>();
    assert!(
        delivered.starts_with(&format!("{lines} new records in the raw topics for {lines} sent")),
        "{delivered} (the sample has {lines} lines)"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn datanode_down_fails_writes_and_they_recover_when_it_is_back() {
    let _serial = SERIAL.lock().await;
    let state = tempfile::tempdir().unwrap();
    let hdfs = script("hdfs.sh");
    let (report, narration) = lesson(
        "datanode-down",
        &unique_prefix("lesson-dn"),
        state.path(),
        &[
            ("LAB_CONTROL_DATANODE_STOP", format!("{hdfs} stop-datanode")),
            ("LAB_CONTROL_DATANODE_START", format!("{hdfs} start-datanode")),
        ],
    );
    assert_eq!(report["recovered"], true, "{report}");
    signal(&report, "DataNode silent");
    let failure = signal(&report, "raw-zone writes fail");
    assert!(!failure.is_empty());
    signal(&report, "raw-zone writes work again");
    assert!(number_before(signal(&report, "DataNode live"), " live DataNode") >= 1);
    assert!(narration.contains("heartbeat.recheck-interval"), "{narration}");
}

#[tokio::test(flavor = "multi_thread")]
async fn slow_batch_goes_up_for_retry_and_succeeds_on_a_later_try() {
    let _serial = SERIAL.lock().await;
    // The harness's Airflow batches hdfs://…/lab/raw: give it the sample.
    let raw_zone = format!("{}/lab/raw", service_env("LAB_TEST_HDFS_URL"));
    hdfs_delete("/lab/raw").await;
    let state = tempfile::tempdir().unwrap();
    let prefix = unique_prefix("lesson-slow");
    stream_sample_into(&prefix, &raw_zone, state.path());
    Airflow::connect().unpause_when_parsed("yelp_batch");

    let (report, _) = lesson(
        "slow-batch",
        &prefix,
        state.path(),
        &[
            ("LAB_AIRFLOW_URL", service_env("LAB_TEST_AIRFLOW_URL")),
            ("LAB_AIRFLOW_USER", service_env("LAB_TEST_AIRFLOW_USER")),
            (
                "LAB_AIRFLOW_PASSWORD_FILE",
                service_env("LAB_TEST_AIRFLOW_PASSWORD_FILE"),
            ),
        ],
    );
    assert_eq!(report["recovered"], true, "{report}");
    assert!(signal(&report, "batch up for retry").starts_with("try 1 failed"));
    let finished = signal(&report, "run finished late");
    assert!(finished.starts_with("run success"), "{finished}");
    assert!(number_before(finished, " tries") >= 2, "{finished}");
}

#[test]
fn lesson_list_names_every_lesson_and_unknown_names_are_refused() {
    let out = lab().args(["lesson", "list"]).output_guarded();
    let text = String::from_utf8_lossy(&out.stdout);
    for name in [
        "consumer-lag",
        "poison-messages",
        "broker-restart",
        "datanode-down",
        "slow-batch",
    ] {
        assert!(text.contains(name), "{name} missing from:\n{text}");
    }
    let out = lab().args(["lesson", "run", "datanode"]).output_guarded();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("datanode-down"), "the error lists the lessons: {err}");
}

/// A lesson started in the background.
fn lesson_in_background(name: &str, prefix: &str, state: &Path, extra_env: &[(&str, String)]) -> Background {
    Background::spawn(&mut lesson_cmd(name, prefix, state, extra_env))
}

/// A lesson whose service control does nothing must fail, saying which signal it never saw: its
/// checks read the service, not the control's word.
fn fails_with_a_control_that_does_nothing(name: &str, target: &str, never_saw: &str) {
    let state = tempfile::tempdir().unwrap();
    let (stop, start) = (
        format!("LAB_CONTROL_{target}_STOP"),
        format!("LAB_CONTROL_{target}_START"),
    );
    let out = lesson_in_background(
        name,
        &unique_prefix(&format!("{name}-nostop")),
        state.path(),
        &[
            (stop.as_str(), "true".into()),
            (start.as_str(), "true".into()),
            ("LAB_LESSON_PATIENCE_S", "15".into()),
        ],
    )
    .wait(Duration::from_secs(300));
    let narration = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{narration}");
    assert!(narration.contains(&format!("did not see {never_saw}")), "{narration}");
}

/// Waits until the lesson's narration says `text`.
fn wait_for_narration(lesson: &mut Background, text: &str) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !lesson.stderr().contains(text) {
        assert!(
            lesson.is_running(),
            "the lesson ended before {text:?}:\n{}",
            lesson.stderr()
        );
        assert!(Instant::now() < deadline, "no {text:?} in 120 s:\n{}", lesson.stderr());
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn kafka_port_open() -> bool {
    std::net::TcpStream::connect(service_env("LAB_TEST_KAFKA")).is_ok()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lesson_stopped_mid_way_starts_the_broker_again() {
    let _serial = SERIAL.lock().await;
    common::services::service_script("kafka", "start");
    let state = tempfile::tempdir().unwrap();
    let kafka = script("kafka.sh");
    // The stop holds on until the test lets it go, so the Ctrl-C below lands in the outage,
    // with the lesson's stop still in flight.
    let (stopped, go_on) = (state.path().join("stopped"), state.path().join("go-on"));
    let stop = format!(
        "{kafka} stop-keep && touch {} && while [ ! -e {} ]; do sleep 0.1; done",
        stopped.display(),
        go_on.display()
    );
    let mut lesson = lesson_in_background(
        "broker-restart",
        &unique_prefix("lesson-cancel"),
        state.path(),
        &[
            ("LAB_CONTROL_KAFKA_STOP", stop),
            ("LAB_CONTROL_KAFKA_START", format!("{kafka} restart")),
        ],
    );
    let deadline = Instant::now() + Duration::from_secs(120);
    while !stopped.exists() {
        assert!(lesson.is_running() && Instant::now() < deadline, "{}", lesson.stderr());
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!kafka_port_open(), "the broker was stopped, but it answers");
    // Ctrl-C in the middle of the outage; the stop then finishes, and the repair follows it.
    run_ok(Command::new("kill").args(["-INT", &lesson.pid().to_string()]));
    std::thread::sleep(Duration::from_secs(1));
    std::fs::write(&go_on, b"").unwrap();
    let out = lesson.wait(Duration::from_secs(120));
    let narration = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a stopped lesson is not a success:\n{narration}");
    assert!(narration.contains("Started the kafka again"), "{narration}");
    assert!(!narration.contains("Repaired:"), "{narration}");
    assert!(
        kafka_port_open(),
        "the broker is still down after the lesson stopped:\n{narration}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn poison_messages_fails_when_the_dlq_holds_one_dead_letter_too_many() {
    use rdkafka::ClientConfig;
    use rdkafka::producer::{FutureProducer, FutureRecord};
    let _serial = SERIAL.lock().await;
    let state = tempfile::tempdir().unwrap();
    let prefix = unique_prefix("lesson-extra");
    let mut lesson = lesson_in_background("poison-messages", &prefix, state.path(), &[]);
    wait_for_narration(&mut lesson, "Starting the transform");
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", service_env("LAB_TEST_KAFKA"))
        .create()
        .unwrap();
    producer
        .send(
            FutureRecord::<str, str>::to(&format!("{prefix}.dlq")).payload("not the lesson's"),
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    let out = lesson.wait(Duration::from_secs(300));
    let narration = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "an extra dead letter went unnoticed:\n{narration}"
    );
    assert!(narration.contains("NOT repaired"), "{narration}");
}

#[tokio::test(flavor = "multi_thread")]
async fn broker_restart_fails_when_the_broker_never_went_down() {
    let _serial = SERIAL.lock().await;
    fails_with_a_control_that_does_nothing("broker-restart", "KAFKA", "Kafka going down");
}

#[tokio::test(flavor = "multi_thread")]
async fn datanode_down_fails_when_the_datanode_never_stopped() {
    let _serial = SERIAL.lock().await;
    fails_with_a_control_that_does_nothing("datanode-down", "DATANODE", "writes failing");
}
