//! The monitor acting on the broker's data (`:dlq`, Enter on a reason, `R` to replay, `:reset`),
//! through its own update loop and effects against the real broker of `make test`. Every outcome
//! is read back from the broker with the test's own clients.
// Needs the services tests/services/up.sh starts: `make test` turns this feature on,
// so a plain `cargo test` on a fresh clone skips it.
#![cfg(feature = "service-tests")]
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use bigdata_lab::dataset::Entity;
use bigdata_lab::pipeline::Topics;
use bigdata_lab::tui::app::{App, Mode};
use bigdata_lab::tui::data::{Browse, DataCmd};
use bigdata_lab::tui::msg::Cmd;
use common::monitor::Monitor;
use common::{run_stage, sample_dir, service_env, unique_prefix};
use crossterm::event::KeyCode;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::Headers;
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};

const TIMEOUT: Duration = Duration::from_secs(10);

fn brokers() -> String {
    service_env("LAB_TEST_KAFKA")
}

fn client(group: &str) -> BaseConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .set("enable.partition.eof", "true")
        .create()
        .unwrap()
}

fn partitions_of(c: &BaseConsumer, topic: &str) -> Vec<i32> {
    let md = c.fetch_metadata(Some(topic), TIMEOUT).unwrap();
    md.topics()[0].partitions().iter().map(|p| p.id()).collect()
}

/// Dead letters per reason code, read committed from the start of the DLQ to its end.
fn dead_letters_by_reason(dlq: &str) -> BTreeMap<String, u64> {
    let c = client("unused");
    let parts = partitions_of(&c, dlq);
    let mut tpl = TopicPartitionList::new();
    for p in &parts {
        tpl.add_partition_offset(dlq, *p, Offset::Beginning).unwrap();
    }
    c.assign(&tpl).unwrap();
    let mut at_end = 0;
    let mut counts = BTreeMap::new();
    while at_end < parts.len() {
        match c.poll(TIMEOUT).expect("the DLQ answers") {
            Ok(msg) => {
                let code = msg
                    .headers()
                    .and_then(|h| h.iter().find(|h| h.key == "lab.reason.code"))
                    .and_then(|h| h.value)
                    .map(|v| String::from_utf8_lossy(v).into_owned())
                    .unwrap_or_default();
                *counts.entry(code).or_insert(0) += 1;
            }
            Err(rdkafka::error::KafkaError::PartitionEOF(_)) => at_end += 1,
            Err(e) => panic!("reading the DLQ: {e}"),
        }
    }
    counts
}

/// Records in the raw topics of `prefix` marked as replayed (`lab.replay.of`), read committed
/// from the start to the end (watermarks would count the replay's transaction markers too).
fn replayed_records(prefix: &str) -> u64 {
    let c = client("unused");
    let topics = Topics::new(prefix);
    let mut tpl = TopicPartitionList::new();
    for e in Entity::ALL {
        let topic = topics.raw(e);
        for p in partitions_of(&c, &topic) {
            tpl.add_partition_offset(&topic, p, Offset::Beginning).unwrap();
        }
    }
    let parts = tpl.count();
    c.assign(&tpl).unwrap();
    let (mut at_end, mut replayed) = (0, 0);
    while at_end < parts {
        match c.poll(TIMEOUT).expect("the raw topics answer") {
            Ok(msg) => {
                if msg
                    .headers()
                    .is_some_and(|h| h.iter().any(|h| h.key == "lab.replay.of"))
                {
                    replayed += 1;
                }
            }
            Err(rdkafka::error::KafkaError::PartitionEOF(_)) => at_end += 1,
            Err(e) => panic!("reading the raw topics: {e}"),
        }
    }
    replayed
}

fn committed(group: &str, topic: &str) -> Vec<Option<i64>> {
    let c = client(group);
    let mut tpl = TopicPartitionList::new();
    for p in partitions_of(&c, topic) {
        tpl.add_partition(topic, p);
    }
    c.committed_offsets(tpl, TIMEOUT)
        .unwrap()
        .elements()
        .iter()
        .map(|e| match e.offset() {
            Offset::Offset(o) => Some(o),
            _ => None,
        })
        .collect()
}

fn notice(app: &App) -> String {
    app.notice.as_ref().map(|n| n.text.clone()).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_monitor_lists_dead_letters_by_reason_replays_one_once_and_resets_an_idle_group() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = unique_prefix("tuidata");
    let zone = dir.path().join("raw");
    let state = dir.path().join("state");
    let stage = |args: &[&str]| run_stage(&prefix, zone.as_os_str(), &state, args);
    stage(&["produce", "--data", sample_dir().to_str().unwrap()]);
    stage(&["transform", "--until-caught-up"]);
    let dlq = Topics::new(&prefix).dlq();
    let expected = dead_letters_by_reason(&dlq);
    assert!(
        !expected.is_empty(),
        "the sample's invalid lines were not dead-lettered"
    );
    let mut m = Monitor::on_broker(&brokers(), &prefix, dir.path());

    // :dlq groups the DLQ by reason, with the broker's counts.
    m.command("dlq");
    m.until("the dead letters", |a| {
        matches!(&a.browse, Some(Browse::DeadLetters { found: Some(_), .. }))
    })
    .await;
    let Some(Browse::DeadLetters {
        found: Some(Ok(summary)),
        ..
    }) = m.app.browse.clone()
    else {
        panic!("no dead letters: {:?}\n{}", m.app.browse, m.screen());
    };
    let shown: BTreeMap<String, u64> = summary.reasons.iter().map(|r| (r.code.clone(), r.count)).collect();
    assert_eq!(shown, expected, "the DLQ view's counts against the broker's");
    let screen = m.screen();
    let first = &summary.reasons[0];
    assert!(screen.contains(&first.code), "{screen}");

    // Enter: the records of the selected reason, each with that reason.
    m.key(KeyCode::Enter);
    m.until("the reason's records", |a| {
        matches!(&a.browse, Some(Browse::Records { found: Some(_), .. }))
    })
    .await;
    let Some(Browse::Records {
        found: Some(Ok(records)),
        ..
    }) = m.app.browse.clone()
    else {
        panic!("no records: {:?}", m.app.browse);
    };
    assert_eq!(records.records.len() as u64, first.count.min(200));
    for r in &records.records {
        assert_eq!(r.headers.get("lab.reason.code"), Some(&first.code), "{r:?}");
    }
    m.key(KeyCode::Esc);

    // R on a reason: counted first, asked, then sent back once, marked as replayed.
    m.command("dlq");
    m.until("the dead letters again", |a| {
        matches!(&a.browse, Some(Browse::DeadLetters { found: Some(_), .. }))
    })
    .await;
    m.key(KeyCode::Char('R'));
    m.until("the replay's question", |a| matches!(a.mode, Mode::Confirm(_)))
        .await;
    let Mode::Confirm(Cmd::Data(DataCmd::Replay(plan))) = m.app.mode.clone() else {
        panic!("{:?}", m.app.mode);
    };
    assert_eq!(plan.code, first.code);
    assert!(plan.replayed > 0, "{plan:?}");
    assert_eq!(replayed_records(&prefix), 0, "counting a replay sent something");
    m.key(KeyCode::Char('y'));
    m.until("the replay", |a| notice(a).starts_with("replayed")).await;
    let replayable = plan.replayed;
    assert_eq!(replayed_records(&prefix), replayable, "{}", notice(&m.app));
    m.key(KeyCode::Char('R'));
    m.until("the second replay's answer", |a| {
        notice(a).starts_with("nothing to replay")
    })
    .await;
    assert_eq!(replayed_records(&prefix), replayable, "a second replay sent again");

    // :reset on a group with a connected member is refused; once it left, it is planned, asked
    // and applied.
    let topic = Topics::new(&prefix).raw(Entity::Review);
    let group = format!("{prefix}-reset");
    let member = client(&group);
    member.subscribe(&[&topic]).unwrap();
    while member.assignment().unwrap().count() == 0 {
        let _ = member.poll(Duration::from_millis(100));
    }
    let mut at_end = TopicPartitionList::new();
    for p in partitions_of(&member, &topic) {
        let high = member.fetch_watermarks(&topic, p, TIMEOUT).unwrap().1;
        at_end.add_partition_offset(&topic, p, Offset::Offset(high)).unwrap();
    }
    member.commit(&at_end, CommitMode::Sync).unwrap();
    let committed_at_end = committed(&group, &topic);
    m.command(&format!("reset {group} --to-earliest"));
    m.until("the refusal", |a| notice(a).contains("connected members"))
        .await;
    assert_eq!(m.app.mode, Mode::Normal);
    member.unsubscribe();
    drop(member); // a dynamic member leaves its group on close
    m.command(&format!("reset {group} --to-earliest"));
    m.until("the reset's question", |a| matches!(a.mode, Mode::Confirm(_)))
        .await;
    assert_eq!(
        committed(&group, &topic),
        committed_at_end,
        "planning a reset moved offsets"
    );
    assert!(m.screen().contains("kafka-consumer-groups.sh"), "{}", m.screen());
    m.key(KeyCode::Char('y'));
    m.until("the reset", |a| notice(a).contains("partition(s) moved")).await;
    let n = committed_at_end.len();
    assert_eq!(committed(&group, &topic), vec![Some(0); n], "{}", notice(&m.app));
}
