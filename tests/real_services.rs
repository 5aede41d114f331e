//! The pipeline's CLI stages against a real Kafka-protocol broker and a real PostgreSQL, both
//! started on 127.0.0.1 by `make test` (tests/services/). Checks the serving tables against an
//! independent computation, and idempotence: producing the sample twice and running every stage
//! twice gives identical tables (the batch deduplicates by record id and replaces the tables whole).
// Needs the services tests/services/up.sh starts: `make test` turns this feature on,
// so a plain `cargo test` on a fresh clone skips it.
#![cfg(feature = "service-tests")]

mod common;
use common::OutputGuarded;

use std::path::Path;

use common::{
    Reference, assert_tables_equal_reference, connect, fresh_database, read_table, reference, run_stage, sample_dir,
    service_env, stage_cmd, unique_prefix,
};

/// Runs a stage of the pipeline with the test's broker, topic prefix and a local raw zone.
fn stage(prefix: &str, raw: &Path, args: &[&str]) -> serde_json::Value {
    run_stage(prefix, raw.as_os_str(), &raw.join("state"), args)
}

/// Produces `data` (only `entities`, if given), then runs the transform and the consumer until
/// they are caught up; returns their reports.
fn run_stages(prefix: &str, raw: &Path, data: &Path, entities: Option<&str>) -> (serde_json::Value, serde_json::Value) {
    let data = data.to_str().expect("UTF-8 path");
    let mut produce = vec!["produce", "--data", data];
    if let Some(entities) = entities {
        produce.extend(["--entities", entities]);
    }
    let produced = stage(prefix, raw, &produce);
    assert_eq!(produced["sent"], produced["delivered"]);
    let transformed = stage(prefix, raw, &["transform", "--until-caught-up"]);
    let consumed = stage(prefix, raw, &["consume", "--until-caught-up", "--roll-seconds", "1"]);
    (transformed, consumed)
}

fn stream_once(prefix: &str, raw: &Path, data: &Path, reference: &Reference, round: u64) {
    let (transformed, consumed) = run_stages(prefix, raw, data, None);
    assert_eq!(
        transformed["delivery"], "exactly-once",
        "the test broker supports transactions"
    );
    // A second round reads only the second copy: offsets of the first were committed.
    assert_eq!(transformed["consumed"], reference.total_lines, "round {round}");
    assert_eq!(transformed["dead_lettered"], reference.invalid_lines, "round {round}");
    assert_eq!(
        consumed["records_written"],
        reference.total_lines - reference.invalid_lines,
        "round {round}"
    );
}

/// Reads `<prefix>.dlq` from the start (committed transactions only, as every reader does):
/// exactly the invalid lines are there, each with a reason and where it came from.
fn assert_dlq_holds_invalid_lines(prefix: &str, expected: u64) {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::message::Headers;
    use rdkafka::{ClientConfig, Message};

    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", service_env("LAB_TEST_KAFKA"))
        .set("group.id", format!("{prefix}-dlq-check"))
        .set("auto.offset.reset", "earliest")
        .set("isolation.level", "read_committed")
        .create()
        .expect("create a DLQ reader");
    consumer
        .subscribe(&[&format!("{prefix}.dlq")])
        .expect("subscribe to the DLQ");
    let mut codes = std::collections::BTreeMap::<String, u64>::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let mut seen = 0;
    while seen < expected && std::time::Instant::now() < deadline {
        let Some(msg) = consumer.poll(std::time::Duration::from_millis(500)) else {
            continue;
        };
        let msg = msg.expect("read the DLQ");
        let header = |key: &str| {
            msg.headers()
                .and_then(|h| h.iter().find(|h| h.key == key))
                .and_then(|h| h.value)
                .map(|v| String::from_utf8_lossy(v).into_owned())
        };
        let reason = header("lab.reason").expect("lab.reason header");
        let code = header("lab.reason.code").expect("lab.reason.code header");
        assert!(reason.starts_with(&format!("{code}: ")), "{reason}");
        assert!(header("lab.source.topic").is_some_and(|t| t.starts_with(prefix)));
        assert!(
            msg.payload().is_some_and(|p| !p.is_empty()),
            "the original line is kept"
        );
        *codes.entry(code).or_default() += 1;
        seen += 1;
    }
    // Nothing more than expected either.
    assert!(
        consumer.poll(std::time::Duration::from_secs(2)).is_none(),
        "more DLQ records than invalid lines"
    );
    assert_eq!(seen, expected, "DLQ records by reason: {codes:?}");
    for code in [
        "invalid_json",
        "stars_out_of_range",
        "missing_field",
        "bad_date",
        "missing_id",
        "bad_field",
    ] {
        assert!(codes.contains_key(code), "no {code} in the DLQ: {codes:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn stages_on_real_broker_and_postgres_match_reference_and_are_idempotent() {
    let url = fresh_database("lab_real_services").await;
    let prefix = unique_prefix("e2e");
    let raw = tempfile::tempdir().unwrap();
    let data = sample_dir();
    let reference = reference(&data);

    stream_once(&prefix, raw.path(), &data, &reference, 1);
    assert_dlq_holds_invalid_lines(&prefix, reference.invalid_lines);
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

    // Each load replaces the tables whole: the primary keys keep their names, and nothing of a
    // load's own is left behind.
    let indexes = || async {
        let rows = client
            .query(
                "SELECT indexname::text FROM pg_indexes WHERE schemaname = 'yelp' ORDER BY 1",
                &[],
            )
            .await
            .unwrap();
        rows.iter().map(|r| r.get::<_, String>(0)).collect::<Vec<_>>()
    };
    let keys = [
        "batch_runs_pkey",
        "business_daily_pkey",
        "business_summary_pkey",
        "city_category_top_pkey",
        "user_summary_pkey",
    ];
    assert_eq!(indexes().await, keys);
    // A view over a serving table: the batch fails and says why, instead of dropping the view,
    // and the tables stay as they were.
    client
        .batch_execute(
            "CREATE VIEW public.top_users AS SELECT user_id FROM yelp.user_summary WHERE reviews > 1; \
             CREATE INDEX business_by_city ON yelp.business_summary (city)",
        )
        .await
        .unwrap();
    let refused = run_failing(&prefix, raw.path(), &["batch", "--json", "--pg", &url]);
    assert!(
        refused.contains("cannot replace yelp.user_summary")
            && refused.contains("top_users")
            && !refused.contains("CASCADE"),
        "{refused}"
    );
    for (table, before) in common::TABLES.iter().zip(&first) {
        assert_eq!(
            &read_table(&client, table).await,
            before,
            "{table} changed by a failed load"
        );
    }
    client.batch_execute("DROP VIEW public.top_users").await.unwrap();
    stage(&prefix, raw.path(), &["batch", "--json", "--pg", &url]);
    for (table, before) in common::TABLES.iter().zip(&first) {
        assert_eq!(&read_table(&client, table).await, before, "{table} after the reload");
    }
    // As the README says: an index of the user's own does not survive a load.
    assert_eq!(indexes().await, keys);
    let statuses: Vec<String> = client
        .query("SELECT status FROM yelp.batch_runs ORDER BY started_at", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(statuses, ["succeeded", "succeeded", "succeeded", "failed", "succeeded"]);
}

/// Runs a stage that must fail; returns what it printed.
fn run_failing(prefix: &str, raw: &Path, args: &[&str]) -> String {
    let out = stage_cmd(prefix, raw.as_os_str(), &raw.join("state"), args).output_guarded();
    let text = common::output_text(&out);
    assert!(!out.status.success(), "{args:?} succeeded: {text}");
    text
}

/// Moves `group`'s committed offsets on the clean topics of `prefix` back to offset 0, keeping
/// each commit's metadata (the consumer's raw-zone epoch): what the group's commits are after a
/// crash that came before the first offset commit of any file. It joins as the stage's own static
/// member (the broker refuses commits from outside a group that has one).
fn rewind_group(group: &str, prefix: &str) {
    use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
    use rdkafka::{ClientConfig, Offset, TopicPartitionList};
    let client: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", service_env("LAB_TEST_KAFKA"))
        .set("group.id", group)
        .set("group.instance.id", group)
        .set("enable.auto.commit", "false")
        .set("session.timeout.ms", "10000")
        .create()
        .expect("a group member");
    let topics: Vec<String> = ["business", "review", "user", "checkin", "tip"]
        .iter()
        .map(|e| format!("{prefix}.{e}.clean"))
        .collect();
    let refs: Vec<&str> = topics.iter().map(String::as_str).collect();
    client.subscribe(&refs).expect("subscribe");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while client.assignment().expect("assignment").count() == 0 {
        assert!(std::time::Instant::now() < deadline, "never joined {group}");
        drop(client.poll(std::time::Duration::from_millis(100)));
    }
    let committed = client
        .committed(std::time::Duration::from_secs(10))
        .expect("the group's commits");
    let mut rewound = TopicPartitionList::new();
    for elem in committed.elements() {
        if let Offset::Offset(_) = elem.offset() {
            rewound
                .add_partition_offset(elem.topic(), elem.partition(), Offset::Offset(0))
                .expect("an offset");
            rewound
                .find_partition(elem.topic(), elem.partition())
                .expect("just added")
                .set_metadata(elem.metadata());
        }
    }
    assert!(rewound.count() > 0, "group {group} has no commits to rewind");
    client
        .commit(&rewound, CommitMode::Sync)
        .expect("commit the rewound offsets");
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

    let (_, first) = run_stages(&prefix, raw.path(), &data, Some("business,user"));
    let (_, second) = run_stages(&prefix, raw.path(), &data, Some("review,tip,checkin"));
    let written = first["records_written"].as_u64().unwrap() + second["records_written"].as_u64().unwrap();
    assert_eq!(written, reference.total_lines - reference.invalid_lines);

    // Simulate a crash between the durable write and the offset commit: rewind the group to the
    // beginning, as its commits stood before the first file (same raw-zone epoch). The consumer
    // must recognise every record as already in the raw zone.
    rewind_group(&format!("lab-consumer-{prefix}"), &prefix);
    let rewound = stage(&prefix, raw.path(), &["consume", "--until-caught-up"]);
    assert_eq!(rewound["records_written"], 0);
    assert_eq!(
        rewound["skipped_already_durable"],
        reference.total_lines - reference.invalid_lines
    );

    stage(&prefix, raw.path(), &["batch", "--json", "--pg", &url]);
    assert_tables_equal_reference(&connect(&url).await, &reference).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn undecodable_record_on_a_clean_topic_is_dead_lettered_not_fatal() {
    use rdkafka::ClientConfig;
    use rdkafka::producer::{FutureProducer, FutureRecord};

    let brokers = service_env("LAB_TEST_KAFKA");
    let prefix = unique_prefix("poison");
    let raw = tempfile::tempdir().unwrap();
    let producer: FutureProducer = ClientConfig::new().set("bootstrap.servers", &brokers).create().unwrap();
    let topic = format!("{prefix}.review.clean");
    let good = r#"{"review_id":"r1","user_id":"u1","business_id":"b1","stars":4,"useful":0,"funny":0,"cool":0,"text":"ok","date":"2020-01-01T10:00:00Z","text_length":2,"word_count":1,"year":2020,"month":1}"#;
    for payload in [good, "this is not json {", good.replace("r1", "r2").as_str()] {
        producer
            .send(
                FutureRecord::<str, str>::to(&topic).payload(payload).key("b1"),
                std::time::Duration::from_secs(10),
            )
            .await
            .unwrap();
    }
    let report = stage(
        &prefix,
        raw.path(),
        &["consume", "--until-caught-up", "--roll-seconds", "1"],
    );
    assert_eq!(report["dead_lettered"], 1, "{report}");
    assert_eq!(report["records_written"], 2, "{report}");
    // Run again from the start: nothing new is written, the bad record is not fatal either.
    rewind_group(&format!("lab-consumer-{prefix}"), &prefix);
    let again = stage(&prefix, raw.path(), &["consume", "--until-caught-up"]);
    assert_eq!(again["records_written"], 0);
}

/// The transform's check after an outage (`txn_audit`) reads the broker, not its own notes: a
/// committed transaction a `read_committed` reader can read passes; one that a reader cannot read
/// (held back here by another producer's transaction left open, as a broker that lost a
/// transaction's marker holds it back) is reported, with the partition and offset; once the open
/// transaction is aborted the same records pass again.
#[tokio::test(flavor = "multi_thread")]
async fn the_transaction_check_reports_committed_records_a_reader_cannot_read() {
    use bigdata_lab::pipeline::PipelineError;
    use bigdata_lab::pipeline::txn_audit::CommittedOutputs;
    use rdkafka::ClientConfig;
    use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
    use std::collections::BTreeMap;
    use std::time::Duration;

    let brokers = service_env("LAB_TEST_KAFKA");
    let topic = format!("{}.txn-check", unique_prefix("txncheck"));
    bigdata_lab::pipeline::kafka::ensure_topics(
        &brokers,
        std::slice::from_ref(&topic),
        1,
        std::time::Duration::from_secs(30),
    )
    .await
    .unwrap();
    let transactional = |id: &str| -> FutureProducer {
        let p: FutureProducer = ClientConfig::new()
            .set("bootstrap.servers", &brokers)
            .set("transactional.id", format!("{topic}-{id}"))
            .set("transaction.timeout.ms", "600000")
            .create()
            .unwrap();
        p.init_transactions(Duration::from_secs(30)).unwrap();
        p
    };
    let ours = transactional("ours");
    let commit_three = || async {
        ours.begin_transaction().unwrap();
        let mut last = BTreeMap::new();
        for i in 0..3 {
            let d = ours
                .send(
                    FutureRecord::to(&topic).key("k").payload(&format!("{i}")),
                    Duration::from_secs(10),
                )
                .await
                .unwrap();
            last.insert((topic.clone(), d.partition), d.offset);
        }
        ours.commit_transaction(Duration::from_secs(30)).unwrap();
        last
    };
    let cancel = tokio_util::sync::CancellationToken::new();
    let patience = Duration::from_secs(5);
    let check = |outputs: &mut CommittedOutputs, outage: u64| {
        tokio::task::block_in_place(|| outputs.check(&brokers, outage, patience, &cancel))
    };

    let mut outputs = CommittedOutputs::default();
    outputs.committed(commit_three().await);
    assert!(outputs.needs_check(1));
    check(&mut outputs, 1).expect("a committed transaction a reader can read");
    assert!(
        !outputs.needs_check(1),
        "a passed check is not repeated for the same outage"
    );

    // Another producer's transaction, left open, holds back every record after its own.
    let other = transactional("open");
    other.begin_transaction().unwrap();
    other
        .send(
            FutureRecord::to(&topic).key("k").payload("open"),
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    let hidden = commit_three().await;
    outputs.committed(hidden.clone());
    match check(&mut outputs, 2) {
        Err(PipelineError::TransactionsLost { records, example, .. }) => {
            assert_eq!(records, 1, "the hidden transaction's last record");
            let (_, offset) = hidden.iter().next().unwrap();
            assert_eq!(example, format!("{topic}[0] offset {offset}"));
        }
        other => panic!("records a read_committed reader cannot read were not reported: {other:?}"),
    }
    assert!(outputs.needs_check(2), "a failed check is not taken for a passed one");

    other.abort_transaction(Duration::from_secs(30)).unwrap();
    check(&mut outputs, 2).expect("visible again once the open transaction is aborted");
}
