//! The pipeline's CLI stages against a real Kafka-protocol broker and a real PostgreSQL, both
//! started on 127.0.0.1 by `make test` (tests/services/). Checks the serving tables against an
//! independent computation, and idempotence: producing the sample twice and running every stage
//! twice gives identical tables (the batch deduplicates by record id and upserts).

mod common;

use std::path::Path;

use common::{
    Reference, assert_tables_equal_reference, connect, fresh_database, json_stdout, lab, read_table, reference, run_ok,
    sample_dir, service_env,
};

/// Runs a stage of the pipeline with the test's broker, topic prefix and raw zone.
fn stage(prefix: &str, raw: &Path, args: &[&str]) -> serde_json::Value {
    let brokers = service_env("LAB_TEST_KAFKA");
    let out = run_ok(
        lab()
            .args(args)
            .args(["--brokers", &brokers, "--topic-prefix", prefix, "--raw-zone"])
            .arg(raw)
            .arg("--state-dir")
            .arg(raw.join("state")),
    );
    json_stdout(&out)
}

fn unique_prefix(name: &str) -> String {
    format!(
        "t{}-{name}-{}",
        std::process::id(),
        chrono::Utc::now().timestamp_millis()
    )
}

fn stream_once(prefix: &str, raw: &Path, data: &Path, reference: &Reference, round: u64) {
    let produced = stage(prefix, raw, &["produce", "--data", data.to_str().expect("UTF-8 path")]);
    assert_eq!(produced["sent"], reference.total_lines);
    assert_eq!(produced["delivered"], reference.total_lines);
    let transformed = stage(prefix, raw, &["transform", "--until-caught-up"]);
    // A second round reads only the second copy: offsets of the first were committed.
    assert_eq!(transformed["consumed"], reference.total_lines, "round {round}");
    assert_eq!(transformed["dead_lettered"], reference.invalid_lines, "round {round}");
    let consumed = stage(prefix, raw, &["consume", "--until-caught-up", "--roll-seconds", "2"]);
    assert_eq!(
        consumed["records_written"],
        reference.total_lines - reference.invalid_lines,
        "round {round}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn stages_on_real_broker_and_postgres_match_reference_and_are_idempotent() {
    let url = fresh_database("lab_real_services").await;
    let prefix = unique_prefix("e2e");
    let raw = tempfile::tempdir().unwrap();
    let data = sample_dir();
    let reference = reference(&data);

    stream_once(&prefix, raw.path(), &data, &reference, 1);
    let batch = stage(&prefix, raw.path(), &["batch", "--json", "--pg", &url]);
    assert_eq!(batch["rows_in"], reference.total_lines - reference.invalid_lines);
    let client = connect(&url).await;
    assert_tables_equal_reference(&client, &reference).await;
    let mut first = Vec::new();
    for table in common::TABLES {
        first.push(read_table(&client, table).await);
    }

    // Produce the same data again and run every stage again: the raw zone now holds every record
    // twice, and the serving tables must not change.
    stream_once(&prefix, raw.path(), &data, &reference, 2);
    let batch2 = stage(&prefix, raw.path(), &["batch", "--json", "--pg", &url]);
    assert_eq!(batch2["rows_in"], 2 * (reference.total_lines - reference.invalid_lines));
    stage(&prefix, raw.path(), &["batch", "--json", "--pg", &url]);
    for (table, before) in common::TABLES.iter().zip(&first) {
        assert_eq!(
            &read_table(&client, table).await,
            before,
            "{table} changed after a duplicate run"
        );
    }
    let runs = client
        .query("SELECT status FROM yelp.batch_runs ORDER BY started_at", &[])
        .await
        .unwrap();
    assert_eq!(
        runs.iter().map(|r| r.get::<_, String>(0)).collect::<Vec<_>>(),
        ["succeeded"; 3]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn consumer_restart_neither_loses_nor_duplicates() {
    // The consumer is stopped (by reaching the end) after the first half, then more data arrives;
    // a second consumer run must continue exactly where the raw zone ends.
    let url = fresh_database("lab_consumer_restart").await;
    let prefix = unique_prefix("restart");
    let raw = tempfile::tempdir().unwrap();
    let data = sample_dir();
    let reference = reference(&data);

    stage(
        &prefix,
        raw.path(),
        &[
            "produce",
            "--data",
            data.to_str().unwrap(),
            "--entities",
            "business,user",
        ],
    );
    stage(&prefix, raw.path(), &["transform", "--until-caught-up"]);
    let first = stage(
        &prefix,
        raw.path(),
        &["consume", "--until-caught-up", "--roll-seconds", "1"],
    );
    stage(
        &prefix,
        raw.path(),
        &[
            "produce",
            "--data",
            data.to_str().unwrap(),
            "--entities",
            "review,tip,checkin",
        ],
    );
    stage(&prefix, raw.path(), &["transform", "--until-caught-up"]);
    let second = stage(
        &prefix,
        raw.path(),
        &["consume", "--until-caught-up", "--roll-seconds", "1"],
    );
    let written = first["records_written"].as_u64().unwrap() + second["records_written"].as_u64().unwrap();
    assert_eq!(written, reference.total_lines - reference.invalid_lines);

    // Simulate a crash between the durable write and the offset commit: rewind the group to the
    // beginning. The consumer must recognise every record as already in the raw zone.
    let brokers = service_env("LAB_TEST_KAFKA");
    let rewound = run_ok(
        lab()
            .args([
                "consume",
                "--until-caught-up",
                "--group",
                "lab-consumer-rewound",
                "--brokers",
                &brokers,
                "--topic-prefix",
                &prefix,
                "--raw-zone",
            ])
            .arg(raw.path())
            .arg("--state-dir")
            .arg(raw.path().join("state")),
    );
    let rewound = json_stdout(&rewound);
    assert_eq!(rewound["records_written"], 0);
    assert_eq!(
        rewound["skipped_already_durable"],
        reference.total_lines - reference.invalid_lines
    );

    stage(&prefix, raw.path(), &["batch", "--json", "--pg", &url]);
    assert_tables_equal_reference(&connect(&url).await, &reference).await;
}
