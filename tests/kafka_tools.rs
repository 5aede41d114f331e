//! `lab kafka offsets|reset` against the real broker (issue #19): every reset is checked by
//! reading the group's committed offsets back from the broker with a client of the test's own,
//! never from the tool's output alone.
// Needs the broker tests/services/up.sh starts: `make test` turns this feature on, so a plain
// `cargo test` on a fresh clone skips it.
#![cfg(feature = "service-tests")]
#![allow(clippy::unwrap_used)]

mod common;
use common::OutputGuarded;

use std::collections::BTreeMap;
use std::process::Output;
use std::time::Duration;

use common::{output_text as text, service_env, unique_prefix};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use serde_json::Value;

const PARTITIONS: i32 = 3;
/// How long creating a test topic waits for an unreachable broker.
const PATIENCE: std::time::Duration = std::time::Duration::from_secs(30);
/// Records per partition: the first half stamped an hour ago, the second half now.
const PER_PARTITION: i64 = 10;

fn brokers() -> String {
    service_env("LAB_TEST_KAFKA")
}

fn lab_kafka(args: &[&str]) -> Output {
    common::lab()
        .env("LAB_KAFKA_BROKERS", brokers())
        .arg("kafka")
        .args(args)
        .output_guarded()
}

/// The group's committed offsets and their metadata, as the broker holds them.
fn committed(group: &str, topic: &str) -> BTreeMap<i32, (Option<i64>, String)> {
    let client: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .set("group.id", group)
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition(topic, p);
    }
    let got = client.committed_offsets(tpl, Duration::from_secs(10)).unwrap();
    got.elements()
        .iter()
        .map(|e| {
            let offset = match e.offset() {
                Offset::Offset(o) => Some(o),
                _ => None,
            };
            (e.partition(), (offset, e.metadata().to_string()))
        })
        .collect()
}

fn offsets_only(c: &BTreeMap<i32, (Option<i64>, String)>) -> Vec<Option<i64>> {
    c.values().map(|(o, _)| *o).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn resets_move_the_group_on_the_broker_only_when_asked_and_no_member_is_connected() {
    let brokers = brokers();
    let topic = format!("{}.offsets", unique_prefix("kafkatools"));
    let group = format!("{topic}-group");
    bigdata_lab::pipeline::kafka::ensure_topics(&brokers, std::slice::from_ref(&topic), PARTITIONS, PATIENCE)
        .await
        .unwrap();
    let producer: FutureProducer = ClientConfig::new().set("bootstrap.servers", &brokers).create().unwrap();
    let now = chrono::Utc::now();
    let hour_ago = now - chrono::Duration::hours(1);
    for p in 0..PARTITIONS {
        for i in 0..PER_PARTITION {
            let at = if i < PER_PARTITION / 2 { hour_ago } else { now };
            producer
                .send(
                    FutureRecord::to(&topic)
                        .partition(p)
                        .key("k")
                        .payload(&format!("{i}"))
                        .timestamp(at.timestamp_millis()),
                    Duration::from_secs(10),
                )
                .await
                .unwrap();
        }
    }

    // A live (dynamic) member of the group reads everything and commits, with metadata on one
    // partition the way the lab's consumer keeps its raw-zone epoch there.
    let member: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("group.id", &group)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "6000")
        .create()
        .unwrap();
    member.subscribe(&[&topic]).unwrap();
    let mut read = 0;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while read < PER_PARTITION * i64::from(PARTITIONS) {
        assert!(std::time::Instant::now() < deadline, "read only {read} records");
        if let Some(m) = member.poll(Duration::from_millis(200)) {
            m.unwrap().offset();
            read += 1;
        }
    }
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition_offset(&topic, p, Offset::Offset(PER_PARTITION))
            .unwrap();
    }
    for mut e in tpl.elements() {
        if e.partition() == 0 {
            e.set_metadata("lab.epoch=kept");
        }
    }
    member.commit(&tpl, CommitMode::Sync).unwrap();
    let at_end = committed(&group, &topic);
    assert_eq!(offsets_only(&at_end), vec![Some(PER_PARTITION); PARTITIONS as usize]);

    // `lab kafka offsets` shows what the broker holds, and the member.
    let out = lab_kafka(&["offsets", &group, "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let shown: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(shown["members"].as_array().unwrap().len(), 1, "{shown:#}");
    let parts = shown["partitions"].as_array().unwrap();
    assert_eq!(parts.len(), PARTITIONS as usize, "{shown:#}");
    for p in parts {
        assert_eq!(p["committed"], PER_PARTITION, "{p}");
        assert_eq!(p["high"], PER_PARTITION, "{p}");
        assert_eq!(p["lag"], 0, "{p}");
    }

    // With the member connected, a reset is refused and nothing moves.
    let out = lab_kafka(&["reset", &group, "--to-earliest", "--yes"]);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("connected member"), "{}", text(&out));
    assert_eq!(committed(&group, &topic), at_end, "a refused reset moved offsets");
    member.unsubscribe();
    drop(member); // a dynamic member leaves its group on close

    // A dry run shows before, after and Kafka's own command, and changes nothing.
    let out = lab_kafka(&["reset", &group, "--to-earliest", "--dry-run", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let plan: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(plan["applied"], false);
    for p in plan["plan"]["partitions"].as_array().unwrap() {
        assert_eq!(
            (p["before"].as_i64(), p["after"].as_i64()),
            (Some(PER_PARTITION), Some(0)),
            "{p}"
        );
        assert_eq!(p["lag_after"], PER_PARTITION, "{p}");
    }
    assert_eq!(
        plan["plan"]["command"],
        format!(
            "kafka-consumer-groups.sh --bootstrap-server {brokers} --group {group} --reset-offsets --to-earliest --all-topics --dry-run"
        )
    );
    assert_eq!(committed(&group, &topic), at_end, "a dry run moved offsets");

    // No terminal to ask on and no --yes: not applied.
    let out = lab_kafka(&["reset", &group, "--to-earliest"]);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("--yes"), "{}", text(&out));
    assert_eq!(committed(&group, &topic), at_end, "an unconfirmed reset moved offsets");

    // Applied: every partition at its first record, partition 0's metadata kept.
    let out = lab_kafka(&["reset", &group, "--to-earliest", "--yes"]);
    assert!(out.status.success(), "{}", text(&out));
    let now_at = committed(&group, &topic);
    assert_eq!(
        offsets_only(&now_at),
        vec![Some(0); PARTITIONS as usize],
        "{}",
        text(&out)
    );
    assert_eq!(now_at[&0].1, "lab.epoch=kept", "the commit's metadata was dropped");

    // One partition shifted (skipping poison records), the others untouched.
    let out = lab_kafka(&[
        "reset",
        &group,
        "--shift-by",
        "2",
        "--topic",
        &format!("{topic}:1"),
        "--yes",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        offsets_only(&committed(&group, &topic)),
        vec![Some(0), Some(2), Some(0)]
    );
    // Shifted before the first record: held at the first record, as Kafka's tool does.
    let out = lab_kafka(&[
        "reset",
        &group,
        "--shift-by",
        "-3",
        "--topic",
        &format!("{topic}:1"),
        "--yes",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        offsets_only(&committed(&group, &topic)),
        vec![Some(0), Some(0), Some(0)]
    );

    // To a time: the first record stamped at or after it, on every partition of the topic.
    let since = (hour_ago + chrono::Duration::minutes(30)).to_rfc3339();
    let out = lab_kafka(&["reset", &group, "--to-datetime", &since, "--topic", &topic, "--yes"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        offsets_only(&committed(&group, &topic)),
        vec![Some(PER_PARTITION / 2); PARTITIONS as usize],
        "{}",
        text(&out)
    );

    let out = lab_kafka(&["reset", &group, "--to-latest", "--yes", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        offsets_only(&committed(&group, &topic)),
        vec![Some(PER_PARTITION); PARTITIONS as usize]
    );
}

/// Creates `topic` with one partition, from a test without a runtime of its own.
fn one_partition_topic(brokers: &str, topic: &str) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(bigdata_lab::pipeline::kafka::ensure_topics(
        brokers,
        &[topic.to_string()],
        1,
        PATIENCE,
    ))
    .unwrap();
}

#[test]
fn a_shift_of_a_partition_never_committed_says_what_to_use_instead() {
    let brokers = brokers();
    let topic = format!("{}.never", unique_prefix("kafkatools"));
    one_partition_topic(&brokers, &topic);
    let out = lab_kafka(&[
        "reset",
        &format!("{topic}-g"),
        "--shift-by",
        "1",
        "--topic",
        &topic,
        "--yes",
    ]);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("no committed offset there to shift from"),
        "{}",
        text(&out)
    );
}

/// A mistyped group name must not read as an empty group: the output names the groups the broker
/// knows. And a time reset of a group with nothing to move is a plan of nothing, not a broker
/// error (librdkafka refuses a time lookup of no partitions).
#[test]
fn a_group_the_broker_does_not_know_is_named_with_the_groups_it_does_know() {
    let brokers = brokers();
    let topic = format!("{}.known", unique_prefix("kafkatools"));
    let group = format!("{topic}-group");
    one_partition_topic(&brokers, &topic);
    // The group exists on the broker: it joined and committed.
    let member: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("group.id", &group)
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    member.subscribe(&[topic.as_str()]).unwrap();
    let deadline = std::time::Instant::now() + PATIENCE;
    while member.assignment().unwrap().count() == 0 {
        assert!(std::time::Instant::now() < deadline, "never assigned {topic}");
        member.poll(Duration::from_millis(100));
    }
    let mut at = TopicPartitionList::new();
    at.add_partition_offset(&topic, 0, Offset::Offset(0)).unwrap();
    member.commit(&at, CommitMode::Sync).unwrap();
    member.unsubscribe();
    drop(member);

    let typo = format!("{group}s");
    let out = lab_kafka(&["offsets", &typo]);
    assert!(out.status.success(), "{}", text(&out));
    let said = text(&out);
    assert!(
        said.contains(&format!("knows no consumer group named {typo}")),
        "{said}"
    );
    let known = said.lines().find(|l| l.contains("its groups:")).unwrap_or_default();
    assert!(known.split(", ").any(|g| g.ends_with(&group)), "{said}");
    let out = lab_kafka(&["offsets", &group]);
    assert!(!text(&out).contains("knows no consumer group"), "{}", text(&out));

    let out = lab_kafka(&["reset", &typo, "--to-datetime", "2026-01-01T00:00:00Z", "--dry-run"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("no partitions to reset"), "{}", text(&out));
    assert!(
        text(&out).contains(&format!("knows no consumer group named {typo}")),
        "{}",
        text(&out)
    );
}

/// `lab kafka tail` against records whose partitions, offsets, times, keys, headers and values the
/// test chose and the broker acknowledged: newest across partitions, from an offset, from a time,
/// each filter, a bounded scan, and no record of an aborted transaction.
#[tokio::test(flavor = "multi_thread")]
async fn tail_shows_the_records_the_broker_holds_newest_first_filtered_and_never_aborted_ones() {
    use rdkafka::message::{Header, OwnedHeaders};
    use rdkafka::producer::Producer;
    let brokers = brokers();
    let topic = format!("{}.tail", unique_prefix("kafkatools"));
    bigdata_lab::pipeline::kafka::ensure_topics(&brokers, std::slice::from_ref(&topic), PARTITIONS, PATIENCE)
        .await
        .unwrap();
    let producer: FutureProducer = ClientConfig::new().set("bootstrap.servers", &brokers).create().unwrap();
    let base = chrono::Utc::now().timestamp_millis() - 60_000;
    // 30 records, record i on partition i % 3, stamped base + i seconds; every fifth has stars 1
    // and a header; record 29 is not JSON.
    let mut sent = Vec::new(); // (i, partition, offset)
    for i in 0..30i64 {
        let value = if i == 29 {
            "not json \u{1F600}".to_string()
        } else {
            serde_json::json!({"id": format!("r{i}"), "stars": if i % 5 == 0 { 1 } else { 4 }}).to_string()
        };
        let mut headers = OwnedHeaders::new();
        if i % 5 == 0 {
            headers = headers.insert(Header {
                key: "lab.reason.code",
                value: Some("low"),
            });
        }
        let key = format!("k{i}");
        let d = producer
            .send(
                FutureRecord::to(&topic)
                    .partition((i % 3) as i32)
                    .key(&key)
                    .payload(&value)
                    .headers(headers)
                    .timestamp(base + i * 1000),
                Duration::from_secs(10),
            )
            .await
            .unwrap();
        sent.push((i, d.partition, d.offset));
    }
    // An aborted transaction's records on every partition: never shown, never counted.
    let txn: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("transactional.id", format!("{topic}-aborted"))
        .create()
        .unwrap();
    txn.init_transactions(Duration::from_secs(30)).unwrap();
    txn.begin_transaction().unwrap();
    for p in 0..PARTITIONS {
        txn.send(
            FutureRecord::to(&topic)
                .partition(p)
                .key("aborted")
                .payload(r#"{"id":"aborted","stars":1}"#)
                .timestamp(base + 100_000),
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    }
    txn.abort_transaction(Duration::from_secs(30)).unwrap();

    let tail = |args: &[&str]| -> Value {
        let mut all = vec!["tail", topic.as_str()];
        all.extend_from_slice(args);
        all.push("--json");
        let out = lab_kafka(&all);
        assert!(out.status.success(), "{}", text(&out));
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let ids = |v: &Value| -> Vec<String> {
        v["records"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| match &r["value"] {
                Value::Object(o) => o["id"].as_str().unwrap().to_string(),
                other => other.as_str().unwrap().to_string(),
            })
            .collect()
    };

    // The newest four across partitions, oldest of them first; the last one is shown as text.
    let newest = tail(&["-n", "4"]);
    assert_eq!(ids(&newest), ["r26", "r27", "r28", "not json \u{1F600}"], "{newest:#}");
    assert_eq!(
        newest["scanned"], 30,
        "aborted records are not read as records: {newest:#}"
    );
    let last = &newest["records"][3];
    let (_, p, o) = sent[29];
    assert_eq!(
        (last["partition"].as_i64(), last["offset"].as_i64()),
        (Some(i64::from(p)), Some(o))
    );
    assert_eq!(last["key"], "k29");
    assert_eq!(
        last["timestamp"],
        chrono::DateTime::from_timestamp_millis(base + 29_000)
            .unwrap()
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    );

    // From an offset of one partition, oldest first.
    let (_, _, o7) = sent[7]; // partition 1
    let from = tail(&["--partition", "1", "--offset", &o7.to_string(), "-n", "2"]);
    assert_eq!(ids(&from), ["r7", "r10"], "{from:#}");

    // From a time: the first records stamped at or after it.
    let since = chrono::DateTime::from_timestamp_millis(base + 20_500)
        .unwrap()
        .to_rfc3339();
    let later = tail(&["--since", &since, "-n", "3"]);
    assert_eq!(ids(&later), ["r21", "r22", "r23"], "{later:#}");

    // Filters: a JSON field, a header, a key; counts say how much was read to find them.
    let ones = tail(&["--grep", "stars=1", "-n", "100"]);
    assert_eq!(ids(&ones), ["r0", "r5", "r10", "r15", "r20", "r25"], "{ones:#}");
    assert_eq!(
        (ones["matched"].as_i64(), ones["scanned"].as_i64()),
        (Some(6), Some(30))
    );
    let flagged = tail(&["--header", "lab.reason.code=low", "-n", "2"]);
    assert_eq!(ids(&flagged), ["r20", "r25"], "{flagged:#}");
    assert_eq!(flagged["records"][0]["headers"]["lab.reason.code"], "low");
    assert_eq!(ids(&tail(&["--key", "k13"])), ["r13"]);

    // A bounded scan reads the last N offsets of each partition and says how many records that
    // was: of offsets 8..12, the aborted record and its abort marker hold two, so 2 records each.
    let bounded = tail(&["--grep", "stars=1", "--scan", "4", "-n", "100"]);
    assert_eq!(bounded["scanned"], 6, "{bounded:#}");
    assert_eq!(bounded["ranges"]["1"], serde_json::json!([8, 12]), "{bounded:#}");
    assert_eq!(
        ids(&bounded),
        ["r25"],
        "only the last four offsets of each partition: {bounded:#}"
    );

    let out = lab_kafka(&["tail", "no.such.topic.anywhere"]);
    assert!(!out.status.success());
    assert!(text(&out).contains("does not exist"), "{}", text(&out));
}

/// `lab dlq list|replay` on the dead letters the real transform wrote for the sample's bad lines,
/// plus one made by hand for a rule "since fixed" (a valid review dead-lettered with reason
/// `fixed_rule`). Counts come from the broker: the DLQ read by the test's own client, the raw
/// topics' watermarks, the clean topic's records.
#[tokio::test(flavor = "multi_thread")]
async fn dead_letters_are_listed_by_reason_and_replayed_once_into_the_transform() {
    use common::{run_stage, sample_dir, stage_cmd};
    use rdkafka::message::{Header, Headers, OwnedHeaders};
    let prefix = unique_prefix("dlqtools");
    let zone = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let z = zone.path().as_os_str();
    let sample = sample_dir();
    run_stage(
        &prefix,
        z,
        state.path(),
        &["produce", "--data", sample.to_str().unwrap()],
    );
    run_stage(&prefix, z, state.path(), &["transform", "--until-caught-up"]);
    let topics = bigdata_lab::pipeline::Topics::new(&prefix);
    let dlq = topics.dlq();
    let review = topics.raw(bigdata_lab::dataset::Entity::Review);

    // A valid review of a business and by a user of the sample (so it counts in the serving
    // tables), dead-lettered by a rule that has since been fixed.
    let reviews = std::fs::read_to_string(sample.join("yelp_academic_dataset_review.json")).unwrap();
    let known: Value = reviews
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["business_id"].is_string() && v["user_id"].is_string())
        .unwrap();
    let fixed_id = "fixedRule0000000000001";
    let line = serde_json::json!({
        "review_id": fixed_id, "user_id": known["user_id"], "business_id": known["business_id"], "stars": 4.0,
        "useful": 0, "funny": 0, "cool": 0, "text": "fine after all", "date": "2020-01-02 03:04:05"
    })
    .to_string();
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .create()
        .unwrap();
    let headers = [
        ("lab.reason", "fixed_rule: a rule since fixed"),
        ("lab.reason.code", "fixed_rule"),
        ("lab.source.topic", review.as_str()),
        ("lab.source", "hand-made:1"),
    ]
    .iter()
    .fold(OwnedHeaders::new(), |h, (k, v)| {
        h.insert(Header {
            key: k,
            value: Some(*v),
        })
    });
    producer
        .send(
            FutureRecord::to(&dlq).key("b-fixed").payload(&line).headers(headers),
            Duration::from_secs(10),
        )
        .await
        .unwrap();

    // The DLQ by reason, as the broker holds it.
    let by_reason = || -> BTreeMap<String, u64> {
        let reader: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", brokers())
            .set("group.id", format!("{prefix}-dlq-count"))
            .set("isolation.level", "read_committed")
            .set("enable.partition.eof", "true")
            .create()
            .unwrap();
        let meta = reader.fetch_metadata(Some(&dlq), Duration::from_secs(10)).unwrap();
        let mut tpl = TopicPartitionList::new();
        let parts: Vec<i32> = meta.topics()[0].partitions().iter().map(|p| p.id()).collect();
        for p in &parts {
            tpl.add_partition_offset(&dlq, *p, Offset::Beginning).unwrap();
        }
        reader.assign(&tpl).unwrap();
        let mut open = parts.len();
        let mut counts = BTreeMap::new();
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while open > 0 {
            assert!(std::time::Instant::now() < deadline, "the DLQ was not read to its end");
            match reader.poll(Duration::from_millis(200)) {
                Some(Ok(m)) => {
                    let code = m
                        .headers()
                        .and_then(|h| h.iter().find(|h| h.key == "lab.reason.code"))
                        .and_then(|h| h.value)
                        .map(|v| String::from_utf8_lossy(v).into_owned())
                        .unwrap();
                    *counts.entry(code).or_default() += 1;
                }
                Some(Err(rdkafka::error::KafkaError::PartitionEOF(_))) => open -= 1,
                Some(Err(e)) => panic!("{e}"),
                None => {}
            }
        }
        counts
    };
    let dlq_cmd = |args: &[&str]| -> Output {
        let mut all = vec!["dlq"];
        all.extend_from_slice(args);
        stage_cmd(&prefix, z, state.path(), &all).output_guarded()
    };
    let raw_high = || -> i64 {
        let client: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", brokers())
            .create()
            .unwrap();
        (0..3)
            .map(|p| client.fetch_watermarks(&review, p, Duration::from_secs(10)).unwrap().1)
            .sum()
    };

    let before = by_reason();
    assert_eq!(before["fixed_rule"], 1);
    assert!(before["invalid_json"] > 0, "the sample's bad lines: {before:?}");
    let out = dlq_cmd(&["list", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let listed: Value = serde_json::from_slice(&out.stdout).unwrap();
    let listed_counts: BTreeMap<String, u64> = listed["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["code"].as_str().unwrap().to_string(), r["count"].as_u64().unwrap()))
        .collect();
    assert_eq!(listed_counts, before, "{listed:#}");
    assert_eq!(listed["dead_letters"], before.values().sum::<u64>());

    // A dry run and an unconfirmed replay send nothing.
    let high0 = raw_high();
    let out = dlq_cmd(&["replay", "fixed_rule", "--dry-run", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(serde_json::from_slice::<Value>(&out.stdout).unwrap()["replayed"], 1);
    let out = dlq_cmd(&["replay", "fixed_rule"]);
    assert!(!out.status.success() && text(&out).contains("--yes"), "{}", text(&out));
    assert_eq!(raw_high(), high0, "a dry or unconfirmed replay sent records");

    // Replayed: once into the review topic, marked; a second replay sends nothing.
    let out = dlq_cmd(&["replay", "fixed_rule", "--yes", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let sent = raw_high() - high0;
    assert!(sent >= 1, "nothing reached {review}");
    let replayed = lab_kafka(&["tail", &review, "--grep", &format!("review_id={fixed_id}"), "--json"]);
    let replayed: Value = serde_json::from_slice(&replayed.stdout).unwrap();
    assert_eq!(replayed["matched"], 1, "{replayed:#}");
    assert!(
        replayed["records"][0]["headers"]["lab.replay.of"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{dlq}[")),
        "{replayed:#}"
    );
    let high1 = raw_high();
    let out = dlq_cmd(&["replay", "fixed_rule", "--yes", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let again: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (again["replayed"].as_u64(), again["already_replayed"].as_u64()),
        (Some(0), Some(1))
    );
    assert_eq!(raw_high(), high1, "a second replay sent records again");

    // The bad lines replayed as they are: the transform treats them like new records and
    // dead-letters each again, once, with its origin; the fixed one is now clean.
    let invalid = before["invalid_json"];
    let out = dlq_cmd(&["replay", "invalid_json", "--yes"]);
    assert!(out.status.success(), "{}", text(&out));
    run_stage(&prefix, z, state.path(), &["transform", "--until-caught-up"]);
    let after = by_reason();
    assert_eq!(after["invalid_json"], 2 * invalid, "{after:?}");
    for (code, n) in &before {
        if code != "invalid_json" {
            assert_eq!(after[code], *n, "{code}: {after:?}");
        }
    }
    let clean = lab_kafka(&[
        "tail",
        &topics.clean(bigdata_lab::dataset::Entity::Review),
        "--grep",
        &format!("review_id={fixed_id}"),
        "--json",
    ]);
    let clean: Value = serde_json::from_slice(&clean.stdout).unwrap();
    assert_eq!(
        clean["matched"], 1,
        "the replayed review did not come out clean once: {clean:#}"
    );

    // Carried into PostgreSQL: consumed into the raw zone and batched, the serving tables equal
    // the reference computed from the sample plus that one review, so it counts exactly once
    // (and the bad lines replayed count nowhere).
    run_stage(
        &prefix,
        z,
        state.path(),
        &["consume", "--until-caught-up", "--roll-seconds", "1"],
    );
    let url = common::fresh_database("lab_dlq_replay").await;
    run_stage(&prefix, z, state.path(), &["batch", "--json", "--pg", &url]);
    let with_fixed = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(&sample).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), with_fixed.path().join(entry.file_name())).unwrap();
    }
    let mut review_file = std::fs::OpenOptions::new()
        .append(true)
        .open(with_fixed.path().join("yelp_academic_dataset_review.json"))
        .unwrap();
    std::io::Write::write_all(&mut review_file, format!("\n{line}\n").as_bytes()).unwrap();
    let client = common::connect(&url).await;
    common::assert_tables_equal_reference(&client, &common::reference(with_fixed.path())).await;
}
