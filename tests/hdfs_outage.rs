//! HDFS goes away while the consumer is streaming into it, then comes back: nothing is lost and
//! nothing is doubled. Its own test binary, because it stops the shared test HDFS (cargo runs
//! test binaries one after another, so no other test sees the outage).
// Needs the services tests/services/up.sh starts: `make test` turns this feature on,
// so a plain `cargo test` on a fresh clone skips it.
#![cfg(feature = "service-tests")]

mod common;
use common::OutputGuarded;

use std::process::Command;
use std::time::{Duration, Instant};

use common::services::{hdfs_client, hdfs_delete, hdfs_raw_zone, service_script};
use common::{
    Background, assert_tables_equal_reference, connect, fresh_database, json_stdout, reference, run_ok, sample_dir,
    service_env, stage_cmd, unique_prefix,
};
use serde_json::Value;

struct Env {
    prefix: String,
    raw_zone: String,
    state: tempfile::TempDir,
}

impl Env {
    fn cmd(&self, args: &[&str]) -> Command {
        stage_cmd(&self.prefix, self.raw_zone.as_ref(), self.state.path(), args)
    }

    fn run(&self, args: &[&str]) -> Value {
        json_stdout(&run_ok(&mut self.cmd(args)))
    }

    fn produce(&self, entities: &str) {
        let sample = sample_dir();
        let produced = self.run(&[
            "produce",
            "--data",
            sample.to_str().expect("UTF-8 path"),
            "--entities",
            entities,
        ]);
        assert_eq!(produced["sent"], produced["delivered"]);
        self.run(&["transform", "--until-caught-up"]);
    }
}

async fn files_under(dir: &str) -> usize {
    match hdfs_client().list_status(dir, true).await {
        Ok(list) => list.iter().filter(|s| !s.isdir && s.path.ends_with(".parquet")).count(),
        Err(_) => 0,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn hdfs_restart_while_consuming_loses_and_duplicates_nothing() {
    let env = Env {
        prefix: unique_prefix("outage"),
        raw_zone: hdfs_raw_zone("outage"),
        state: tempfile::tempdir().unwrap(),
    };
    let root = env
        .raw_zone
        .trim_start_matches(&service_env("LAB_TEST_HDFS_URL"))
        .to_string();
    let reference = reference(&sample_dir());
    let valid = reference.total_lines - reference.invalid_lines;

    // First half of the data, and a consumer that keeps running (no --until-caught-up).
    env.produce("business,user");
    let consumer = Background::spawn(&mut env.cmd(&["consume", "--roll-seconds", "1"]));
    let deadline = Instant::now() + Duration::from_secs(60);
    while files_under(&format!("{root}/{}/user", env.prefix)).await == 0 {
        assert!(
            Instant::now() < deadline,
            "the consumer wrote nothing to HDFS within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    // HDFS down; the second half arrives while the consumer cannot write.
    service_script("hdfs", "stop");
    env.produce("review,tip,checkin");
    tokio::time::sleep(Duration::from_secs(4)).await;
    service_script("hdfs", "restart");

    // The consumer resumes by itself and lands everything.
    let deadline = Instant::now() + Duration::from_secs(180);
    let parquet_out = tempfile::tempdir().unwrap();
    let mut last_error = String::new();
    loop {
        let out = env
            .cmd(&[
                "batch",
                "--json",
                "--parquet-out",
                parquet_out.path().to_str().expect("UTF-8 path"),
            ])
            .output_guarded();
        let rows_in = serde_json::from_slice::<Value>(&out.stdout)
            .ok()
            .and_then(|r| r["rows_in"].as_u64());
        if rows_in == Some(valid) {
            break;
        }
        if rows_in.is_none() {
            last_error = String::from_utf8_lossy(&out.stderr).into_owned();
        }
        if Instant::now() > deadline {
            let consumer_err = consumer.stderr();
            let log = std::fs::read_to_string(env.state.path().join("logs/lab.log")).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(30).collect();
            panic!(
                "raw zone has {rows_in:?} of {valid} records 180 s after HDFS came back\nlast batch error: {last_error}\n\
                 consumer stderr: {consumer_err}\nlog tail (newest first):\n{}",
                tail.join("\n")
            );
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }

    // Ctrl-C: a clean stop, with every record accounted for exactly once.
    let stopped = consumer.interrupt(Duration::from_secs(120));
    let stdout = String::from_utf8_lossy(&stopped.stdout);
    assert!(stopped.status.success(), "consumer exit {}: {stdout}", stopped.status);
    let report: Value = serde_json::from_str(&stdout).expect("consumer report");
    assert_eq!(report["records_written"], valid, "{report}");

    let log = std::fs::read_to_string(env.state.path().join("logs/lab.log")).unwrap_or_default();
    assert!(
        log.contains("HDFS call failed; retrying"),
        "the consumer never saw the outage, so this test proved nothing"
    );

    let url = fresh_database("lab_hdfs_outage").await;
    let batch = env.run(&["batch", "--json", "--pg", &url]);
    assert_eq!(batch["rows_in"], valid, "raw rows before deduplication: no duplicates");
    assert_tables_equal_reference(&connect(&url).await, &reference).await;
    hdfs_delete(root.trim_end_matches("/raw")).await;
}
