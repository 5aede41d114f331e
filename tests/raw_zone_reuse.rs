//! The raw zone outlives topics and brokers. Reusing it must never make the consumer skip records
//! it did not write: a second topic prefix landing in the same raw zone, and a broker reset to an
//! empty volume while the raw zone is kept, write every record; files the consumer cannot
//! attribute stop it with an error instead of a guess. Real broker(s), the `lab` binary, and what
//! the raw zone and the database hold afterwards.
// Needs the services tests/services/up.sh starts: `make test` turns this feature on,
// so a plain `cargo test` on a fresh clone skips it.
#![cfg(feature = "service-tests")]
// Helpers outside #[test] functions: a panic there is the test's failure report.
#![allow(clippy::unwrap_used)]

mod common;
use common::OutputGuarded;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::services::OwnBroker;
use common::*;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use serde_json::Value;

/// `lab ARGS` against `brokers`, with a topic prefix, a raw zone and a state dir.
fn lab_on(brokers: &str, prefix: &str, raw: &Path, state: &Path, args: &[&str]) -> Command {
    let mut cmd = lab();
    cmd.args(args)
        .args(["--brokers", brokers, "--topic-prefix", prefix])
        .arg("--raw-zone")
        .arg(raw)
        .arg("--state-dir")
        .arg(state);
    cmd
}

/// Produce `data`, transform and consume it (until caught up); returns the consumer's report.
fn stream(brokers: &str, prefix: &str, raw: &Path, state: &Path, data: &Path) -> Value {
    let data = data.to_str().expect("UTF-8 path");
    let produced = json_stdout(&run_ok(&mut lab_on(
        brokers,
        prefix,
        raw,
        state,
        &["produce", "--data", data],
    )));
    assert_eq!(produced["sent"], produced["delivered"]);
    run_ok(&mut lab_on(
        brokers,
        prefix,
        raw,
        state,
        &["transform", "--until-caught-up"],
    ));
    json_stdout(&run_ok(&mut lab_on(
        brokers,
        prefix,
        raw,
        state,
        &["consume", "--until-caught-up", "--roll-seconds", "1"],
    )))
}

/// A generated dataset other than the sample (other ids, other values).
fn other_dataset(dir: &Path, seed: &str) -> PathBuf {
    let out = dir.join(format!("data-{seed}"));
    run_ok(
        lab()
            .args([
                "dataset",
                "generate",
                "--reviews",
                "400",
                "--seed",
                seed,
                "--invalid-rate",
                "0.01",
                "--out",
            ])
            .arg(&out),
    );
    out
}

fn valid_lines(data: &Path) -> u64 {
    let r = reference(data);
    r.total_lines - r.invalid_lines
}

/// Every file under `dir` with its size.
fn files(dir: &Path) -> BTreeMap<PathBuf, u64> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("readable").flatten() {
            let path = e.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.insert(path.clone(), e.metadata().expect("metadata").len());
            }
        }
    }
    out
}

async fn batch_into(brokers: &str, prefix: &str, raw: &Path, state: &Path, db: &str) -> (Value, String) {
    let url = fresh_database(db).await;
    let report = json_stdout(&run_ok(&mut lab_on(
        brokers,
        prefix,
        raw,
        state,
        &["batch", "--json", "--pg", &url],
    )));
    (report, url)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_prefix_in_the_same_raw_zone_writes_every_record_and_batches_apart() {
    let brokers = service_env("LAB_TEST_KAFKA");
    let (raw, state, work) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let (a, b) = (unique_prefix("reuse-a"), unique_prefix("reuse-b"));

    let written_a = stream_sample_into(&a, raw.path().to_str().unwrap(), state.path());
    let data_b = other_dataset(work.path(), "11");
    let consumed_b = stream(&brokers, &b, raw.path(), state.path(), &data_b);
    assert_eq!(consumed_b["records_written"], valid_lines(&data_b), "{consumed_b}");
    assert_eq!(consumed_b["skipped_already_durable"], 0, "{consumed_b}");

    // Two prefixes are two labs: each batch reads its own records only.
    let (report_a, url_a) = batch_into(&brokers, &a, raw.path(), state.path(), "lab_reuse_prefix_a").await;
    assert_eq!(report_a["rows_in"], written_a, "{report_a}");
    assert_tables_equal_reference(&connect(&url_a).await, &reference(&sample_dir())).await;
    let (report_b, url_b) = batch_into(&brokers, &b, raw.path(), state.path(), "lab_reuse_prefix_b").await;
    assert_eq!(report_b["rows_in"], valid_lines(&data_b), "{report_b}");
    assert_tables_equal_reference(&connect(&url_b).await, &reference(&data_b)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reset_broker_with_the_raw_zone_kept_writes_every_new_record() {
    let mut broker = OwnBroker::start();
    let (raw, state, work) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let prefix = unique_prefix("reset");

    let first = stream(&broker.brokers(), &prefix, raw.path(), state.path(), &sample_dir());
    let valid_first = valid_lines(&sample_dir());
    assert_eq!(first["records_written"], valid_first, "{first}");
    let before = files(raw.path());

    // Same address, same prefix, same consumer group names, same raw zone: a new, empty broker.
    broker.reset();
    let data = other_dataset(work.path(), "23");
    let second = stream(&broker.brokers(), &prefix, raw.path(), state.path(), &data);
    assert_eq!(second["records_written"], valid_lines(&data), "{second}");
    assert_eq!(second["skipped_already_durable"], 0, "{second}");

    let after = files(raw.path());
    for (path, size) in &before {
        assert_eq!(after.get(path), Some(size), "{} changed or vanished", path.display());
    }
    let (report, _) = batch_into(&broker.brokers(), &prefix, raw.path(), state.path(), "lab_reuse_reset").await;
    assert_eq!(
        report["rows_in"].as_u64(),
        Some(valid_first + valid_lines(&data)),
        "both incarnations' records are in the raw zone: {report}"
    );
}

/// What a student does after `lab down --volumes` of the broker: the same data streamed again into
/// the raw zone kept. Partitioning by key puts each record at the partition and offset it had in
/// the first incarnation, so the raw zone holds two records at each (partition, offset), and the
/// batch must still load one row per id (it failed the whole load on the primary key before).
#[tokio::test(flavor = "multi_thread")]
async fn the_same_data_streamed_again_after_a_broker_reset_loads_each_record_once() {
    let mut broker = OwnBroker::start();
    let (raw, state) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let prefix = unique_prefix("again");
    let valid = valid_lines(&sample_dir());
    let first = stream(&broker.brokers(), &prefix, raw.path(), state.path(), &sample_dir());
    assert_eq!(first["records_written"], valid, "{first}");
    broker.reset();
    let second = stream(&broker.brokers(), &prefix, raw.path(), state.path(), &sample_dir());
    assert_eq!(second["records_written"], valid, "{second}");
    let (report, url) = batch_into(&broker.brokers(), &prefix, raw.path(), state.path(), "lab_reuse_again").await;
    assert_eq!(
        report["rows_in"].as_u64(),
        Some(2 * valid),
        "both incarnations are read: {report}"
    );
    assert_tables_equal_reference(&connect(&url).await, &reference(&sample_dir())).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn files_the_group_has_no_record_of_stop_the_consumer() {
    let brokers = service_env("LAB_TEST_KAFKA");
    let (raw, state) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let prefix = unique_prefix("unknown");
    stream_sample_into(&prefix, raw.path().to_str().unwrap(), state.path());

    // Another group, whose offsets some tool set without the consumer's epoch.
    let group = format!("{prefix}-by-hand");
    let by_hand: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("group.id", &group)
        .create()
        .unwrap();
    let mut offsets = TopicPartitionList::new();
    for entity in ["business", "review", "user", "checkin", "tip"] {
        let topic = format!("{prefix}.{entity}.clean");
        let meta = by_hand.fetch_metadata(Some(&topic), Duration::from_secs(10)).unwrap();
        for p in meta.topics()[0].partitions() {
            offsets.add_partition_offset(&topic, p.id(), Offset::Offset(1)).unwrap();
        }
    }
    by_hand.commit(&offsets, CommitMode::Sync).unwrap();

    let out = lab_on(
        &brokers,
        &prefix,
        raw.path(),
        state.path(),
        &["consume", "--until-caught-up", "--group", &group],
    )
    .output_guarded();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "the consumer guessed instead of stopping:\n{stderr}"
    );
    let zone = raw.path().join(&prefix);
    for needle in [
        zone.to_str().unwrap(),
        "has no record of writing them",
        "Nothing was written or skipped",
        "move",
    ] {
        assert!(stderr.contains(needle), "the error should say {needle:?}:\n{stderr}");
    }
}

/// The consumer's memory has one bound for all its buffers: 5 entities × 12 partitions under a
/// 1 MiB budget write files long before their roll age, largest first, and lose or double nothing.
#[tokio::test(flavor = "multi_thread")]
async fn a_small_buffer_budget_over_many_partitions_writes_early_and_exactly_once() {
    let brokers = service_env("LAB_TEST_KAFKA");
    let (raw, state, work) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let prefix = unique_prefix("budget");
    let data = work.path().join("data");
    run_ok(
        lab()
            .args(["dataset", "generate", "--reviews", "8000", "--seed", "5", "--out"])
            .arg(&data),
    );
    let on = |args: &[&str]| json_stdout(&run_ok(&mut lab_on(&brokers, &prefix, raw.path(), state.path(), args)));
    on(&["produce", "--partitions", "12", "--data", data.to_str().unwrap()]);
    on(&["transform", "--until-caught-up"]);
    let consumed = on(&[
        "consume",
        "--until-caught-up",
        "--roll-seconds",
        "3600",
        "--buffer-mib",
        "1",
    ]);
    let valid = valid_lines(&data);
    assert_eq!(consumed["records_written"], valid, "{consumed}");
    // Without the budget each (entity, partition) would be one file at the end (at most 60).
    assert!(consumed["files_written"].as_u64().unwrap() > 60, "{consumed}");
    let (report, _) = batch_into(&brokers, &prefix, raw.path(), state.path(), "lab_budget").await;
    assert_eq!(report["rows_in"], valid, "{report}");
}
