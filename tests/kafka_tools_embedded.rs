//! The data tools' command-line forms (`lab kafka tail|offsets|reset`, `lab dlq list|show|replay`)
//! against the embedded lab's broker: librdkafka's mock cluster, started in this test process on
//! 127.0.0.1 as `lab demo` starts it, fed by the real `lab produce`, `lab transform` and `lab
//! consume`. It cannot list consumer groups: `offsets` still reads a group's committed offsets, and
//! `reset` applies as a member of the group, refused while another member holds a partition it
//! moves. Needs no service: a plain `cargo test` runs it.
#![allow(clippy::unwrap_used)]

mod common;
use common::OutputGuarded;

use std::path::Path;
use std::process::Output;

use bigdata_lab::pipeline::Topics;
use bigdata_lab::pipeline::embedded::EmbeddedBroker;
use common::output_text as text;
use serde_json::Value;

const PREFIX: &str = "emb";

fn lab(brokers: &str, state: &Path, args: &[&str]) -> Output {
    common::lab()
        .args(args)
        .args(["--brokers", brokers, "--topic-prefix", PREFIX])
        .arg("--state-dir")
        .arg(state)
        .arg("--raw-zone")
        .arg(state.join("raw"))
        .output_guarded()
}

/// One record as the test's own `read_committed` reader gets it from the mock cluster.
struct Read {
    partition: i32,
    offset: i64,
    value: Value,
    reason_code: Option<String>,
}

/// Every record of `topic`, read to the end of each partition.
fn read_all(brokers: &str, topic: &str) -> Vec<Read> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::message::Headers;
    use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
    let reader: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "test-own-reader")
        .set("isolation.level", "read_committed")
        .set("enable.partition.eof", "true")
        .create()
        .unwrap();
    let meta = reader
        .fetch_metadata(Some(topic), std::time::Duration::from_secs(10))
        .unwrap();
    let parts: Vec<i32> = meta.topics()[0].partitions().iter().map(|p| p.id()).collect();
    let mut tpl = TopicPartitionList::new();
    for p in &parts {
        tpl.add_partition_offset(topic, *p, Offset::Beginning).unwrap();
    }
    reader.assign(&tpl).unwrap();
    let mut open = parts.len();
    let mut records = Vec::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while open > 0 {
        assert!(std::time::Instant::now() < deadline, "{topic} was not read to its end");
        match reader.poll(std::time::Duration::from_millis(200)) {
            Some(Ok(m)) => records.push(Read {
                partition: m.partition(),
                offset: m.offset(),
                value: m
                    .payload()
                    .and_then(|p| serde_json::from_slice(p).ok())
                    .unwrap_or_else(|| Value::String(String::from_utf8_lossy(m.payload().unwrap_or_default()).into())),
                reason_code: m
                    .headers()
                    .and_then(|h| h.iter().find(|h| h.key == "lab.reason.code"))
                    .and_then(|h| h.value)
                    .map(|v| String::from_utf8_lossy(v).into_owned()),
            }),
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(_))) => open -= 1,
            Some(Err(e)) => panic!("{e}"),
            None => {}
        }
    }
    records
}

fn json(out: &Output) -> Value {
    assert!(out.status.success(), "{}", text(out));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(out)))
}

/// The sample streamed by the real `lab produce` and `lab transform` into the in-process broker;
/// `lab kafka tail` and `lab dlq list|show|replay --dry-run` then agree with the test's own
/// reader, `lab kafka offsets` reads a group's committed offsets and says what it cannot know,
/// and `lab kafka reset` refuses, saying why.
#[test]
fn the_data_tools_work_on_the_embedded_broker_and_say_what_it_cannot_do() {
    let topics = Topics::new(PREFIX);
    let broker = EmbeddedBroker::for_stages(&topics, 3).unwrap();
    let b = broker.brokers().to_string();
    let state = tempfile::tempdir().unwrap();
    let sample = common::sample_dir();
    // Its topics exist from its start and it has no admin API: the stages must not wait on it.
    let produced = json(&lab(&b, state.path(), &["produce", "--data", sample.to_str().unwrap()]));
    assert_eq!(produced["sent"], produced["delivered"], "{produced:#}");
    json(&lab(&b, state.path(), &["transform", "--until-caught-up"]));

    // The newest records of a raw topic are the broker's, record for record.
    let review = read_all(&b, "emb.review");
    let tail = json(&lab(
        &b,
        state.path(),
        &["kafka", "tail", "emb.review", "-n", "5", "--json"],
    ));
    let shown = tail["records"].as_array().unwrap();
    assert_eq!(shown.len(), 5, "{tail:#}");
    for r in shown {
        let (p, o) = (r["partition"].as_i64().unwrap() as i32, r["offset"].as_i64().unwrap());
        let own = review
            .iter()
            .find(|x| x.partition == p && x.offset == o)
            .unwrap_or_else(|| panic!("{p}/{o} not on the broker"));
        assert_eq!(r["value"], own.value, "{p}/{o}");
    }
    // A field filter over the whole clean topic matches what the broker holds.
    let clean = read_all(&b, "emb.review.clean");
    let ones = clean.iter().filter(|r| r.value["stars"].as_f64() == Some(1.0)).count();
    assert!(ones > 0, "the sample has one-star reviews");
    let filtered = json(&lab(
        &b,
        state.path(),
        &[
            "kafka",
            "tail",
            "emb.review.clean",
            "--grep",
            "stars=1",
            "-n",
            "100000",
            "--scan",
            "100000",
            "--json",
        ],
    ));
    assert_eq!(filtered["matched"].as_u64(), Some(ones as u64), "{filtered:#}");
    assert_eq!(filtered["scanned"].as_u64(), Some(clean.len() as u64));

    // The dead letters by reason, as the broker holds them.
    let dlq = read_all(&b, "emb.dlq");
    let mut own: std::collections::BTreeMap<String, u64> = std::collections::BTreeMap::new();
    for r in &dlq {
        *own.entry(r.reason_code.clone().expect("every dead letter has a reason"))
            .or_default() += 1;
    }
    assert!(own.get("invalid_json").copied().unwrap_or(0) > 0, "{own:?}");
    let listed = json(&lab(&b, state.path(), &["dlq", "list", "--json"]));
    let listed: std::collections::BTreeMap<String, u64> = listed["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["code"].as_str().unwrap().to_string(), r["count"].as_u64().unwrap()))
        .collect();
    assert_eq!(listed, own);
    let shown = json(&lab(
        &b,
        state.path(),
        &["dlq", "show", "invalid_json", "-n", "10000", "--json"],
    ));
    assert_eq!(
        shown["records"].as_array().unwrap().len() as u64,
        own["invalid_json"],
        "{shown:#}"
    );
    let dry = lab(&b, state.path(), &["dlq", "replay", "invalid_json", "--dry-run"]);
    assert!(dry.status.success(), "{}", text(&dry));
    assert!(
        String::from_utf8_lossy(&dry.stdout).contains(&format!("would replay {} dead letter(s)", own["invalid_json"])),
        "{}",
        text(&dry)
    );
    assert_eq!(
        read_all(&b, "emb.review").len(),
        review.len(),
        "a dry run sends nothing"
    );

    // A group's committed offsets, as the broker holds them (committed here by a client of the
    // test's own), though the mock cluster cannot say who is connected.
    {
        use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
        use rdkafka::{ClientConfig, Offset, TopicPartitionList};
        let own: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &b)
            .set("group.id", "own-group")
            .create()
            .unwrap();
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset("emb.review", 0, Offset::Offset(3)).unwrap();
        tpl.add_partition_offset("emb.review", 2, Offset::Offset(5)).unwrap();
        own.commit(&tpl, CommitMode::Sync).unwrap();
    }
    let g = json(&lab(&b, state.path(), &["kafka", "offsets", "own-group", "--json"]));
    let listed: Vec<(i64, i64)> = g["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["partition"].as_i64().unwrap(), p["committed"].as_i64().unwrap()))
        .collect();
    assert_eq!(listed, [(0, 3), (2, 5)], "{g:#}");
    assert_eq!(g["state"], "unknown");
    assert!(
        g["note"].as_str().unwrap().contains("cannot list consumer groups"),
        "{g:#}"
    );
    // A dry run says the broker cannot tell who is connected, and how applying checks instead.
    let dry = json(&lab(
        &b,
        state.path(),
        &["kafka", "reset", "own-group", "--to-earliest", "--dry-run", "--json"],
    ));
    assert!(
        dry["plan"]["note"].as_str().unwrap().contains("joins the group"),
        "{dry:#}"
    );
    assert_eq!(dry["applied"], false);
    assert_eq!(
        committed(&b, "own-group", "emb.review"),
        [(0, 3), (2, 5)],
        "a dry run commits nothing"
    );
}

/// The committed offset of `group` on each partition of `topic` that has one, as the broker
/// answers a client of the test's own.
fn committed(brokers: &str, group: &str, topic: &str) -> Vec<(i32, i64)> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::{ClientConfig, Offset, TopicPartitionList};
    let own: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", group)
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    for p in 0..3 {
        tpl.add_partition(topic, p);
    }
    let got = own.committed_offsets(tpl, std::time::Duration::from_secs(10)).unwrap();
    got.elements()
        .iter()
        .filter_map(|e| match e.offset() {
            Offset::Offset(o) => Some((e.partition(), o)),
            _ => None,
        })
        .collect()
}

/// A member of a consumer group, reading on a thread of its own until dropped.
struct LiveMember {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl LiveMember {
    /// Joins `group` with `protocol` (`classic` or `consumer`), subscribed to `topic`, and commits
    /// `offset` on every partition it is given; returns once it committed.
    fn join(brokers: &str, group: &str, protocol: &str, topic: &str, offset: i64) -> Self {
        use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
        use rdkafka::{ClientConfig, Offset};
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (ready_tx, ready) = std::sync::mpsc::channel();
        let (brokers, group, protocol, topic) = (
            brokers.to_string(),
            group.to_string(),
            protocol.to_string(),
            topic.to_string(),
        );
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || {
            let member: BaseConsumer = ClientConfig::new()
                .set("bootstrap.servers", &brokers)
                .set("group.id", &group)
                .set("group.protocol", &protocol)
                .set("enable.auto.commit", "false")
                .create()
                .unwrap();
            member.subscribe(&[topic.as_str()]).unwrap();
            let mut ready_tx = Some(ready_tx);
            while !stopped.load(std::sync::atomic::Ordering::Relaxed) {
                drop(member.poll(std::time::Duration::from_millis(100)));
                let mut mine = member.assignment().unwrap();
                if ready_tx.is_some() && mine.count() > 0 {
                    mine.set_all_offsets(Offset::Offset(offset)).unwrap();
                    member.commit(&mine, CommitMode::Sync).unwrap();
                    ready_tx.take().unwrap().send(()).unwrap();
                }
            }
            member.unsubscribe();
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            while member.assignment().unwrap().count() > 0 && std::time::Instant::now() < deadline {
                drop(member.poll(std::time::Duration::from_millis(100)));
            }
        });
        ready
            .recv_timeout(std::time::Duration::from_secs(30))
            .expect("the test's member was given partitions and committed");
        LiveMember {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for LiveMember {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
    }
}

/// `lab kafka reset` on the embedded broker, which cannot list groups: applied as a member of the
/// group, for a classic group (the command-line consumer's, which then reads its input again) and
/// for one of KIP-848's consumer protocol (the embedded lab's stages use it there); refused, with
/// nothing changed, while another member holds a partition it moves; and the group still works
/// for its own members afterwards.
#[test]
fn offsets_reset_on_the_embedded_broker_as_a_member_of_the_group() {
    let topics = Topics::new(PREFIX);
    let broker = EmbeddedBroker::for_stages(&topics, 3).unwrap();
    let b = broker.brokers().to_string();
    let state = tempfile::tempdir().unwrap();
    let sample = common::sample_dir();
    json(&lab(&b, state.path(), &["produce", "--data", sample.to_str().unwrap()]));
    json(&lab(&b, state.path(), &["transform", "--until-caught-up"]));
    let clean = read_all(&b, "emb.review.clean").len() as u64;
    let consume = || {
        json(&lab(
            &b,
            state.path(),
            &["consume", "--until-caught-up", "--group", "emb-raw"],
        ))
    };
    let first = consume();
    assert!(first["records_written"].as_u64().unwrap() >= clean, "{first:#}");
    let ends: Vec<(i32, i64)> = committed(&b, "emb-raw", "emb.review.clean");
    assert_eq!(ends.len(), 3, "the consumer committed on every partition: {ends:?}");
    assert_eq!(
        consume()["skipped_already_durable"],
        0,
        "before the reset, a second consumer run reads nothing again"
    );

    // The consumer's classic group, which the mock cluster takes commits for from members only:
    // moved to the start.
    let reset = |group: &str| {
        lab(
            &b,
            state.path(),
            &[
                "kafka",
                "reset",
                group,
                "--to-earliest",
                "--topic",
                "emb.review.clean",
                "--yes",
            ],
        )
    };
    let out = reset("emb-raw");
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(committed(&b, "emb-raw", "emb.review.clean"), [(0, 0), (1, 0), (2, 0)]);
    // The consumer follows: it reads the topic again, and finds every record already in its files.
    let again = consume();
    assert_eq!(again["skipped_already_durable"].as_u64(), Some(clean), "{again:#}");
    assert_eq!(again["records_written"], 0, "{again:#}");
    assert_eq!(committed(&b, "emb-raw", "emb.review.clean"), ends);

    for protocol in ["consumer", "classic"] {
        let group = format!("emb-live-{protocol}");
        let member = LiveMember::join(&b, &group, protocol, "emb.review.clean", 2);
        assert_eq!(committed(&b, &group, "emb.review.clean"), [(0, 2), (1, 2), (2, 2)]);
        // Refused while the member reads, saying which partitions it holds; nothing moved.
        let out = reset(&group);
        assert!(!out.status.success(), "{protocol}: {}", text(&out));
        let t = text(&out);
        assert!(
            t.contains("stayed with another member") && t.contains("emb.review.clean["),
            "{protocol}: {t}"
        );
        assert_eq!(
            committed(&b, &group, "emb.review.clean"),
            [(0, 2), (1, 2), (2, 2)],
            "{protocol}: a refused reset commits nothing"
        );
        // Once it left: applied.
        drop(member);
        let out = reset(&group);
        assert!(out.status.success(), "{protocol}: {}", text(&out));
        assert_eq!(
            committed(&b, &group, "emb.review.clean"),
            [(0, 0), (1, 0), (2, 0)],
            "{protocol}"
        );
        // The group still takes its own members' commits.
        drop(LiveMember::join(&b, &group, protocol, "emb.review.clean", 1));
        assert_eq!(
            committed(&b, &group, "emb.review.clean"),
            [(0, 1), (1, 1), (2, 1)],
            "{protocol}"
        );
    }
}
