//! Outages of the real services under a running pipeline (issue #8):
//!
//! - the Kafka-protocol broker stops in the middle of `lab produce` and comes back on the same
//!   data: the idempotent producer buffers and retries, exits 0 with every line delivered, and
//!   downstream every record arrives exactly once (serving tables equal the reference);
//! - the broker restarts three times while the producer, the transform and the consumer all run:
//!   no stage exits by itself, and every entity is counted through the raw topic, the clean topic,
//!   the raw zone and the tables (SIGKILLs are the crash loops' part: a stage SIGKILLed and
//!   restarted right after a restart of this broker could hang joining its group, see the README);
//! - PostgreSQL is down: `lab batch` fails at once with a message that says what failed and what
//!   to do, and the Airflow DAG's batch task goes up for retry and succeeds on a later try once
//!   the database is back.
//!
//! Its own test binary, because it stops shared test services (cargo runs test binaries one after
//! another, so no other test sees the outages). A failing test restarts what it stopped.
// Needs the services tests/services/up.sh starts: `make test` turns this feature on,
// so a plain `cargo test` on a fresh clone skips it.
#![cfg(feature = "service-tests")]
#![allow(clippy::unwrap_used)]

mod common;
use common::OutputGuarded;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use bigdata_lab::dataset::Entity;
use bigdata_lab::pipeline::Topics;
use bigdata_lab::probes::kafka::KafkaProbe;
use common::services::{Airflow, Stopped, hdfs_delete};
use common::{
    Background, assert_tables_equal_reference, connect, fresh_database, json_stdout, log_tail, reference, run_stage,
    sample_dir, service_env, stage_cmd, stream_sample_into, unique_prefix,
};
use serde_json::{Value, json};

/// One outage at a time: the tests of this binary would otherwise run in parallel, each under
/// the other's outage.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// An empty broker: a restart saves and reloads all the broker holds (noida-db writes one JSON
/// snapshot, seconds per hundred MB), so one that holds the earlier suites' data would stay away
/// longer than the stream under test lasts.
fn fresh_broker() {
    common::services::service_script("kafka", "start");
}

/// Records held by the raw topics of `prefix`, as the broker reports them.
async fn raw_records(prefix: &str) -> Option<i64> {
    let topics = Topics::new(prefix);
    let raw: Vec<String> = Entity::ALL.iter().map(|e| topics.raw(*e)).collect();
    let snap = KafkaProbe::new(&service_env("LAB_TEST_KAFKA"), prefix)
        .poll()
        .await
        .detail?;
    Some(
        snap.topics
            .iter()
            .filter(|t| raw.contains(&t.name))
            .map(|t| t.messages)
            .sum(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn broker_restart_mid_produce_loses_and_duplicates_nothing() {
    let _serial = SERIAL.lock().await;
    fresh_broker();
    let prefix = unique_prefix("broker-outage");
    let raw_zone = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let sample = sample_dir();
    let reference = reference(&sample);
    let valid = reference.total_lines - reference.invalid_lines;

    // Rate-limited, so the outage falls in the middle: ~2,200 lines take about 11 s.
    let mut producer = Background::spawn(&mut stage_cmd(
        &prefix,
        raw_zone.path().as_os_str(),
        state.path(),
        &["produce", "--data", sample.to_str().unwrap(), "--rate", "200"],
    ));
    let deadline = Instant::now() + Duration::from_secs(60);
    let before = loop {
        match raw_records(&prefix).await {
            Some(n) if n > 0 => break n,
            _ => {}
        }
        assert!(
            producer.is_running() && Instant::now() < deadline,
            "nothing reached the broker within 60 s\nproducer stderr:\n{}\nlog:\n{}",
            producer.stderr(),
            log_tail(state.path(), 30)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };

    // The broker goes away (saving its state) and comes back on the same data.
    let outage = Stopped::stop("kafka", "stop-keep", "restart");
    assert!(
        producer.is_running() && u64::try_from(before).unwrap() < reference.total_lines,
        "the producer was not mid-way when the broker stopped ({before} of {} records in), so this test proved nothing",
        reference.total_lines
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    outage.start_again();

    let out = producer.wait(Duration::from_secs(300));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the producer did not survive the broker restart ({}):\nstderr:\n{stderr}\nlog:\n{}",
        out.status,
        log_tail(state.path(), 30)
    );
    let report = json_stdout(&out);
    assert_eq!(report["sent"], reference.total_lines, "{report}");
    assert_eq!(report["delivered"], report["sent"], "{report}");
    let log = std::fs::read_to_string(state.path().join("logs/lab.log")).unwrap_or_default();
    assert!(
        log.contains("Connection refused"),
        "the producer never saw the broker go away, so this test proved nothing; log:\n{}",
        log_tail(state.path(), 30)
    );
    // At the broker: every line once, retried batches not appended twice.
    assert_eq!(
        raw_records(&prefix).await,
        Some(i64::try_from(reference.total_lines).unwrap()),
        "records in the raw topics after the restart"
    );

    // Downstream: each valid record exactly once in the serving tables.
    let zone = raw_zone.path().as_os_str();
    run_stage(&prefix, zone, state.path(), &["transform", "--until-caught-up"]);
    let consumed = run_stage(
        &prefix,
        zone,
        state.path(),
        &["consume", "--until-caught-up", "--roll-seconds", "1"],
    );
    assert_eq!(consumed["records_written"], valid, "{consumed}");
    let url = fresh_database("lab_broker_outage").await;
    let batch = run_stage(&prefix, zone, state.path(), &["batch", "--json", "--pg", &url]);
    assert_eq!(batch["rows_in"], valid, "raw rows before deduplication: no duplicates");
    assert_tables_equal_reference(&connect(&url).await, &reference).await;
}

/// The distinct ids in each entity's clean topic, by entity name, as a reader with `isolation`
/// (`read_committed` or `read_uncommitted`) sees them: read to the end of every partition.
fn clean_topic_ids(prefix: &str, isolation: &str) -> BTreeMap<&'static str, BTreeSet<String>> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::error::KafkaError;
    use rdkafka::types::RDKafkaErrorCode;
    use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
    let client: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", service_env("LAB_TEST_KAFKA"))
        .set("group.id", format!("{prefix}-count"))
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .set("isolation.level", isolation)
        .set("receive.message.max.bytes", "1000000000")
        .create()
        .unwrap();
    let topics = Topics::new(prefix);
    let mut out = BTreeMap::new();
    for entity in Entity::ALL {
        let topic = topics.clean(entity);
        let meta = client.fetch_metadata(Some(&topic), Duration::from_secs(10)).unwrap();
        let mut tpl = TopicPartitionList::new();
        let mut open = BTreeSet::new();
        for p in meta.topics()[0].partitions() {
            tpl.add_partition_offset(&topic, p.id(), Offset::Beginning).unwrap();
            open.insert(p.id());
        }
        client.assign(&tpl).unwrap();
        let id_field = match entity {
            Entity::Business | Entity::Checkin => "business_id",
            Entity::Review => "review_id",
            Entity::User => "user_id",
            Entity::Tip => "tip_id",
        };
        let mut ids = BTreeSet::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        while !open.is_empty() {
            assert!(
                Instant::now() < deadline,
                "{topic} ({isolation}): partitions {open:?} not read to their end"
            );
            match client.poll(Duration::from_millis(500)) {
                Some(Ok(msg)) => {
                    let v: Value = serde_json::from_slice(msg.payload().unwrap_or_default()).unwrap();
                    ids.insert(v[id_field].as_str().unwrap().to_string());
                }
                Some(Err(KafkaError::PartitionEOF(p))) => {
                    open.remove(&p);
                }
                Some(Err(e)) if e.rdkafka_error_code() == Some(RDKafkaErrorCode::PartitionEOF) => {}
                Some(Err(e)) => panic!("{topic}: {e}"),
                None => {}
            }
        }
        out.insert(entity.name(), ids);
    }
    out
}

/// The distinct ids of each entity in a local raw zone, read with DataFusion from the Parquet files.
async fn raw_zone_ids(zone: &std::path::Path) -> BTreeMap<&'static str, BTreeSet<String>> {
    use datafusion::arrow::array::AsArray;
    use datafusion::prelude::{ParquetReadOptions, SessionContext};
    let ctx = SessionContext::new();
    let mut out = BTreeMap::new();
    for entity in Entity::ALL {
        let id_field = match entity {
            Entity::Business | Entity::Checkin => "business_id",
            Entity::Review => "review_id",
            Entity::User => "user_id",
            Entity::Tip => "tip_id",
        };
        let dir = zone.join(entity.name());
        let mut ids = BTreeSet::new();
        if dir.exists() {
            let df = ctx
                .read_parquet(dir.to_str().unwrap(), ParquetReadOptions::default())
                .await
                .unwrap()
                .select_columns(&[id_field])
                .unwrap();
            for batch in df.collect().await.unwrap() {
                let col =
                    datafusion::arrow::compute::cast(batch.column(0), &datafusion::arrow::datatypes::DataType::Utf8)
                        .unwrap();
                ids.extend(col.as_string::<i32>().iter().flatten().map(str::to_string));
            }
        }
        out.insert(entity.name(), ids);
    }
    out
}

/// Lines per entity file of a dataset directory.
fn lines_per_entity(dir: &std::path::Path) -> BTreeMap<&'static str, i64> {
    Entity::ALL
        .iter()
        .map(|e| {
            let text = std::fs::read(dir.join(format!("yelp_academic_dataset_{}.json", e.name()))).unwrap_or_default();
            let n = text
                .split(|b| *b == b'\n')
                .filter(|l| !l.iter().all(u8::is_ascii_whitespace))
                .count();
            (e.name(), i64::try_from(n).unwrap())
        })
        .collect()
}

/// Records in each entity's raw topic, as the broker reports them.
async fn raw_records_per_entity(prefix: &str) -> BTreeMap<&'static str, i64> {
    let topics = Topics::new(prefix);
    let snap = KafkaProbe::new(&service_env("LAB_TEST_KAFKA"), prefix)
        .poll()
        .await
        .detail
        .unwrap();
    Entity::ALL
        .iter()
        .map(|e| {
            let name = topics.raw(*e);
            (
                e.name(),
                snap.topics.iter().filter(|t| t.name == name).map(|t| t.messages).sum(),
            )
        })
        .collect()
}

/// The stages `lab status --json` lists as waiting for the broker, asked until one is (up to 20 s:
/// a stage notices the outage at its next call to the broker).
fn stages_waiting_for_the_broker(prefix: &str, zone: &std::ffi::OsStr, state: &std::path::Path) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let out = stage_cmd(prefix, zone, state, &["status", "--json"]).output_guarded();
        let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        let waiting: Vec<String> = report["stages"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|s| s["waiting_for_broker"] == true)
            .filter_map(|s| s["stage"].as_str().map(str::to_string))
            .collect();
        if !waiting.is_empty() || Instant::now() > deadline {
            return waiting;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// The scenario: a broker restarted under every running stage is an outage to ride out,
/// with the transform and the consumer SIGKILLed and restarted right after the second restart and
/// a few seconds after the third; the restarted stages must catch up by themselves.
///
/// The transform runs at-least-once here. The test broker (noida-db) loses the outcome of
/// transactions across a restart, so records of transactions that committed before it become
/// invisible to `read_committed` readers (../shared/RECIPES.md records a reproduction with
/// confluent-kafka alone, no lab code): exactly-once across a restart cannot hold on this broker
/// whatever the client does. At-least-once plus the batch's deduplication by id is what can.
#[tokio::test(flavor = "multi_thread")]
async fn broker_restarts_under_every_stage_lose_nothing() {
    let _serial = SERIAL.lock().await;
    fresh_broker();
    let prefix = unique_prefix("restarts");
    let raw_zone = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let zone = raw_zone.path().as_os_str();
    let sample = sample_dir();
    let reference = reference(&sample);
    let stage = |args: &[&str]| Background::spawn(&mut stage_cmd(&prefix, zone, state.path(), args));
    let transform_args = ["transform", "--delivery", "at-least-once"];
    let consume_args = ["consume", "--roll-seconds", "1"];

    // ~2,200 lines at 60/s: about 37 s of streaming, in which the first restart falls (the
    // producer must still be running then); the transform and the consumer see all three.
    let mut producer = stage(&["produce", "--data", sample.to_str().unwrap(), "--rate", "60"]);
    let mut transform = stage(&transform_args);
    let mut consumer = stage(&consume_args);
    let deadline = Instant::now() + Duration::from_secs(60);
    while raw_records(&prefix).await.unwrap_or(0) == 0 {
        assert!(Instant::now() < deadline, "nothing produced: {}", producer.stderr());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let alive = |what: &str, b: &mut Background| {
        assert!(
            b.is_running(),
            "{what} exited by itself during the broker restarts:\n{}\nlog:\n{}",
            b.stderr(),
            log_tail(state.path(), 40)
        );
    };
    for round in 0..3 {
        tokio::time::sleep(Duration::from_secs(4)).await;
        if round == 0 {
            alive("the producer", &mut producer);
        }
        let outage = Stopped::stop("kafka", "stop-keep", "restart");
        tokio::time::sleep(Duration::from_secs(3)).await;
        if round == 0 {
            // `lab status` (another process, the same state dir) sees the stages waiting.
            let waiting = stages_waiting_for_the_broker(&prefix, zone, state.path());
            assert!(
                waiting.iter().any(|s| s == "transform" || s == "consumer"),
                "lab status showed no stage waiting for the broker during the outage: {waiting:?}\nlog:\n{}",
                log_tail(state.path(), 40)
            );
        }
        alive("the transform", &mut transform);
        alive("the consumer", &mut consumer);
        outage.start_again();
        if round > 0 {
            // SIGKILLs on top, at once (round 1) or a few seconds after the broker came back
            // (round 2): each stage restarts as the same static member while the broker still
            // holds the dead process's registration, and must take its place.
            if round == 2 {
                tokio::time::sleep(Duration::from_secs(3)).await;
            }
            transform.kill();
            consumer.kill();
            transform = stage(&transform_args);
            consumer = stage(&consume_args);
        }
        tokio::time::sleep(Duration::from_secs(3)).await;
        alive("the transform", &mut transform);
        alive("the consumer", &mut consumer);
    }
    let out = producer.wait(Duration::from_secs(300));
    assert!(
        out.status.success(),
        "the producer failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let log = std::fs::read_to_string(state.path().join("logs/lab.log")).unwrap_or_default();
    assert!(
        log.contains("the broker is unreachable; waiting for it"),
        "no stage ever waited for the broker, so this test proved nothing; log:\n{}",
        log_tail(state.path(), 40)
    );
    // The restarted stages hold their partitions: each catches up while running, as the broker
    // reports its group's offsets (a stage that never got its partitions back stays behind).
    for (what, group) in [
        ("transform", format!("lab-transform-{prefix}")),
        ("consumer", format!("lab-consumer-{prefix}")),
    ] {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let out = stage_cmd(&prefix, zone, state.path(), &["kafka", "offsets", &group, "--json"]).output_guarded();
            let offsets: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
            let parts = offsets["partitions"].as_array().cloned().unwrap_or_default();
            let lag: i64 = parts.iter().filter_map(|p| p["lag"].as_i64()).sum();
            if !parts.is_empty() && lag == 0 {
                break;
            }
            alive(
                what,
                if what == "transform" {
                    &mut transform
                } else {
                    &mut consumer
                },
            );
            assert!(
                Instant::now() < deadline,
                "the restarted {what} did not catch up within 120 s (lag {lag}): {offsets:#}\nlog:\n{}",
                log_tail(state.path(), 40)
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    // Stop the long-running stages cleanly, then drain what is left.
    for (what, b) in [("transform", transform), ("consumer", consumer)] {
        let out = b.interrupt(Duration::from_secs(120));
        assert!(
            out.status.success(),
            "the {what} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // Stages that ended leave no status behind.
    let out = stage_cmd(&prefix, zone, state.path(), &["status", "--json"]).output_guarded();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["stages"], serde_json::json!([]), "{report:#}");
    run_stage(
        &prefix,
        zone,
        state.path(),
        &["transform", "--until-caught-up", "--delivery", "at-least-once"],
    );
    run_stage(
        &prefix,
        zone,
        state.path(),
        &["consume", "--until-caught-up", "--roll-seconds", "1"],
    );

    // Every entity through every hop: the raw topic holds each line once (idempotent producer),
    // the clean topic and the raw zone the same ids, and the tables equal the reference.
    assert_eq!(
        raw_records_per_entity(&prefix).await,
        lines_per_entity(&sample),
        "raw topics"
    );
    let clean = clean_topic_ids(&prefix, "read_uncommitted");
    let landed = raw_zone_ids(&raw_zone.path().join(&prefix)).await;
    for entity in Entity::ALL {
        let name = entity.name();
        assert!(!clean[name].is_empty(), "{name}: no clean records");
        assert_eq!(clean[name], landed[name], "{name}: clean topic ids vs raw zone ids");
    }
    let url = fresh_database("lab_broker_restarts").await;
    run_stage(&prefix, zone, state.path(), &["batch", "--json", "--pg", &url]);
    assert_tables_equal_reference(&connect(&url).await, &reference).await;
    let check = run_stage(&prefix, zone, state.path(), &["check", "--json", "--pg", &url]);
    assert_eq!(check["passed"], true, "{check}");
}

/// The same restarts under an exactly-once transform. The test broker loses transactions across a
/// restart (see above), and the transform must notice: after riding out an outage it reads its
/// recent committed transactions back as a `read_committed` reader would, and stops with the
/// at-least-once advice where one is gone. Judged by the broker, not by the transform: the clean
/// topics' ids read committed and read uncommitted differ exactly when records of committed
/// transactions vanished (a re-sent batch repeats ids, so aborted batches alone make no
/// difference), and the transform must have stopped then and only then.
#[tokio::test(flavor = "multi_thread")]
async fn exactly_once_stops_where_the_broker_loses_committed_transactions() {
    let _serial = SERIAL.lock().await;
    fresh_broker();
    let prefix = unique_prefix("txnloss");
    let raw_zone = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let zone = raw_zone.path().as_os_str();
    // Many small transactions, so the restarts fall while some are in flight (as in the issue's
    // run: 37,500 generated records): ~37,000 records at 1,200/s stream for about 30 s.
    let data = tempfile::tempdir().unwrap();
    common::run_ok(
        common::lab()
            .args(["dataset", "generate", "--reviews", "20000", "--seed", "3", "--out"])
            .arg(data.path()),
    );
    let stage = |args: &[&str]| Background::spawn(&mut stage_cmd(&prefix, zone, state.path(), args));
    let producer = stage(&["produce", "--data", data.path().to_str().unwrap(), "--rate", "1200"]);
    let mut transform = stage(&["transform", "--delivery", "exactly-once"]);
    let deadline = Instant::now() + Duration::from_secs(60);
    while raw_records(&prefix).await.unwrap_or(0) == 0 {
        assert!(Instant::now() < deadline, "nothing produced: {}", producer.stderr());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_secs(4)).await;
        if !transform.is_running() {
            break;
        }
        let outage = Stopped::stop("kafka", "stop-keep", "restart");
        tokio::time::sleep(Duration::from_secs(3)).await;
        outage.start_again();
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    let out = producer.wait(Duration::from_secs(300));
    assert!(
        out.status.success(),
        "the producer failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The check runs after the first commit that follows an outage and may wait up to 70 s for a
    // record a pending transaction holds back: give the transform that long to stop by itself.
    let waited = Instant::now();
    while transform.is_running() && waited.elapsed() < Duration::from_secs(100) {
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let stopped_by_itself = !transform.is_running();
    let out = if stopped_by_itself {
        transform.wait(Duration::from_secs(5))
    } else {
        transform.interrupt(Duration::from_secs(120))
    };
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let committed = clean_topic_ids(&prefix, "read_committed");
    let uncommitted = clean_topic_ids(&prefix, "read_uncommitted");
    let hidden: BTreeMap<&str, usize> = Entity::ALL
        .iter()
        .map(|e| (e.name(), uncommitted[e.name()].difference(&committed[e.name()]).count()))
        .filter(|(_, n)| *n > 0)
        .collect();
    eprintln!("records of committed transactions the broker hid: {hidden:?}; the transform said:\n{stderr}");
    let log = std::fs::read_to_string(state.path().join("logs/lab.log")).unwrap_or_default();
    if hidden.is_empty() {
        assert!(
            out.status.success() && !stopped_by_itself,
            "the broker kept every transaction, yet the transform stopped:\n{stderr}\nlog:\n{}",
            log_tail(state.path(), 40)
        );
        assert!(
            log.contains("the broker still shows every checked committed transaction"),
            "the transform never checked its transactions after the outages, so this run proved nothing; log:\n{}",
            log_tail(state.path(), 40)
        );
    } else {
        assert!(
            stopped_by_itself && !out.status.success(),
            "the broker hid committed records {hidden:?}, and the transform went on as if exactly-once held:\n{stderr}"
        );
        assert!(
            stderr.contains("are not visible to read_committed readers after the broker came back")
                && stderr.contains("--delivery at-least-once"),
            "the transform stopped, but not with the advice: {stderr}"
        );
    }
}

/// Polls the batch task of a run until it is up for retry; panics if it gets anywhere else.
fn wait_up_for_retry(airflow: &Airflow, run_id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(240);
    loop {
        let ti = airflow.task_instance("yelp_batch", run_id, "batch");
        let state = ti["state"].as_str().unwrap_or("none");
        if state == "up_for_retry" {
            return ti;
        }
        let run = airflow.run_state("yelp_batch", run_id);
        assert!(
            !matches!(state, "success" | "failed" | "upstream_failed" | "skipped")
                && !matches!(run.as_str(), "success" | "failed")
                && Instant::now() < deadline,
            "with PostgreSQL down the batch task should be up for retry, but it is {state} (run {run}); tasks: {}\n\
             sensor log: {}\nbatch log: {}",
            airflow.task_states("yelp_batch", run_id),
            airflow.task_log("yelp_batch", run_id, "wait_for_raw_files"),
            airflow.task_log("yelp_batch", run_id, "batch"),
        );
        std::thread::sleep(Duration::from_secs(1));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_down_fails_the_batch_fast_and_airflow_retries_it() {
    let _serial = SERIAL.lock().await;
    // The harness's Airflow batches hdfs://…/lab/raw into the database `yelp`; this test owns both
    // (as does batch_layer.rs's Airflow test, which runs in another binary).
    let raw_zone = format!("{}/lab/raw", service_env("LAB_TEST_HDFS_URL"));
    hdfs_delete("/lab/raw").await;
    let pg_url = service_env("LAB_TEST_AIRFLOW_PG_URL");
    connect(&pg_url)
        .await
        .batch_execute("DROP SCHEMA IF EXISTS yelp CASCADE")
        .await
        .unwrap();
    let prefix = unique_prefix("pg-outage");
    let state = tempfile::tempdir().unwrap();
    let reference = reference(&sample_dir());
    let valid = stream_sample_into(&prefix, &raw_zone, state.path());
    let airflow = Airflow::connect();
    airflow.unpause_when_parsed("yelp_batch");

    let outage = Stopped::stop("postgres", "stop", "restart");

    // By hand: a non-zero exit straight away (the patience is only a hang guard), saying what
    // failed and what to do.
    let out = Background::spawn(&mut stage_cmd(
        &prefix,
        raw_zone.as_ref(),
        state.path(),
        &["batch", "--json", "--pg", &pg_url],
    ))
    .wait(Duration::from_secs(120));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "batch succeeded without PostgreSQL:\n{stderr}");
    assert!(
        out.stdout.is_empty(),
        "no report for a failed batch: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    for needle in [
        &format!("PostgreSQL: cannot connect to {pg_url}"),
        "Connection refused",
        "is the server running? pass --pg URL or set LAB_PG_URL",
    ] {
        assert!(stderr.contains(needle), "the error should say {needle:?}:\n{stderr}");
    }

    // Through Airflow: the batch task fails on its first try and is retried.
    let conf = json!({"engine": "datafusion", "teaching": true, "topic_prefix": prefix});
    let run_id = airflow.trigger("yelp_batch", &conf);
    let ti = wait_up_for_retry(&airflow, &run_id);
    assert_eq!(ti["try_number"], 1, "{ti}");
    let first_try = airflow.task_log_try("yelp_batch", &run_id, "batch", 1);
    assert!(
        first_try.contains("cannot connect to"),
        "the first try should fail on the connection: {first_try}"
    );
    outage.start_again();

    let run_state = airflow.wait_run("yelp_batch", &run_id, Duration::from_secs(600));
    let tasks = airflow.task_states("yelp_batch", &run_id);
    let ti = airflow.task_instance("yelp_batch", &run_id, "batch");
    assert_eq!(
        run_state,
        "success",
        "the run failed after PostgreSQL came back: {tasks}\nbatch: {ti}\nlast batch log: {}",
        airflow.task_log_try("yelp_batch", &run_id, "batch", ti["try_number"].as_u64().unwrap_or(1))
    );
    assert!(
        ti["try_number"].as_u64().unwrap() >= 2,
        "the batch was not retried: {ti}"
    );
    for task in ["wait_for_raw_files", "batch", "quality_check", "record_run"] {
        assert!(tasks.contains(&format!("{task}=success")), "{tasks}");
    }
    let client = connect(&pg_url).await;
    assert_tables_equal_reference(&client, &reference).await;
    let row = client
        .query_one(
            "SELECT status, quality, rows_in FROM yelp.batch_runs WHERE dag_run_id = $1",
            &[&run_id],
        )
        .await
        .unwrap_or_else(|e| panic!("no batch_runs row for {run_id}: {e}"));
    assert_eq!(row.get::<_, String>(0), "succeeded");
    assert_eq!(row.get::<_, String>(1), "passed");
    assert_eq!(row.get::<_, i64>(2), i64::try_from(valid).unwrap());
}

/// A broker that cannot be reached when the transform starts is waited for, never taken for a
/// broker without transactions: the transform that starts in the outage ends exactly-once, having
/// read every record once (the report's count, and the group's offsets on the broker).
#[tokio::test(flavor = "multi_thread")]
async fn a_transform_started_while_the_broker_is_down_waits_and_stays_exactly_once() {
    let _serial = SERIAL.lock().await;
    fresh_broker();
    let prefix = unique_prefix("startdown");
    let raw_zone = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let zone = raw_zone.path().as_os_str();
    let sample = sample_dir();
    let lines: i64 = lines_per_entity(&sample).values().sum();
    run_stage(
        &prefix,
        zone,
        state.path(),
        &["produce", "--data", sample.to_str().unwrap()],
    );

    let outage = Stopped::stop("kafka", "stop-keep", "restart");
    let transform = Background::spawn(&mut stage_cmd(
        &prefix,
        zone,
        state.path(),
        &["transform", "--until-caught-up"],
    ));
    tokio::time::sleep(Duration::from_secs(8)).await;
    outage.start_again();
    let out = transform.wait(Duration::from_secs(300));
    assert!(
        out.status.success(),
        "the transform started in the outage failed: {}\nlog:\n{}",
        String::from_utf8_lossy(&out.stderr),
        log_tail(state.path(), 40)
    );
    let report = json_stdout(&out);
    assert_eq!(
        report["delivery"], "exactly-once",
        "an unreachable broker was taken for one without transactions: {report:#}"
    );
    assert_eq!(report["consumed"].as_i64(), Some(lines), "{report:#}");
    let log = std::fs::read_to_string(state.path().join("logs/lab.log")).unwrap_or_default();
    assert!(
        log.contains("cannot start transactions yet") || log.contains("the broker is unreachable"),
        "the transform never saw the outage, so this test proved nothing; log:\n{}",
        log_tail(state.path(), 40)
    );
}
