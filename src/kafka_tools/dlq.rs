//! The dead-letter topic, explained and replayed.
//!
//! The transform dead-letters a record with its original bytes and headers that say why
//! (`lab.reason`, `lab.reason.code`) and where it came from (`lab.source.topic`, `.partition`,
//! `.offset`, and `lab.source` = `file:line` when the producer knew it; see
//! `pipeline::kafka::dlq_headers`). [`summarize`] groups them by reason code; [`replay`] sends the
//! dead letters of one reason back to their source topics after a fix, once: the transform then
//! treats each like any new record.
//!
//! "Once" is kept on the broker: each reason has its own consumer group,
//! `lab-dlq-replay-<dlq topic>-<code>`, whose committed offsets on the DLQ say how far that
//! reason was replayed. A replay's records and the group's new offsets commit in one Kafka
//! transaction, so a replay that fails or is killed half-way sends nothing, and a second replay
//! sends only dead letters that arrived since.

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{BorrowedMessage, Header, Headers, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use serde::Serialize;

use super::tail::{self, ShownRecord};
use super::{KafkaToolError, REQUEST_TIMEOUT};

/// The header a replayed record carries: which dead letter it was (`<dlq>[p]@offset`).
pub const REPLAY_HEADER: &str = "lab.replay.of";
/// How long a replay's transaction may take.
const TXN_TIMEOUT: Duration = Duration::from_secs(60);

fn header<'a>(msg: &'a BorrowedMessage<'_>, name: &str) -> Option<&'a [u8]> {
    msg.headers()
        .and_then(|h| h.iter().find(|h| h.key == name))
        .and_then(|h| h.value)
}

fn header_text(msg: &BorrowedMessage<'_>, name: &str) -> Option<String> {
    header(msg, name).map(|v| String::from_utf8_lossy(v).into_owned())
}

/// One reason's dead letters.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Reason {
    pub code: String,
    pub count: u64,
    pub first_seen: Option<String>,
    pub last_seen: Option<String>,
    /// The first dead letter of this reason, with its full reason text and origin in its headers.
    pub example: ShownRecord,
}

/// The DLQ grouped by reason code, most frequent first.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    pub topic: String,
    pub dead_letters: u64,
    pub reasons: Vec<Reason>,
}

/// Reads the whole DLQ and groups it by `lab.reason.code`.
///
/// Blocking (librdkafka polls): call from a blocking thread.
pub fn summarize(brokers: &str, dlq: &str) -> Result<Summary, KafkaToolError> {
    let reader = tail::reader(brokers)?;
    let ranges = tail::watermarks(&reader, brokers, dlq, None)?;
    let mut by_code: BTreeMap<String, Reason> = BTreeMap::new();
    let dead_letters = tail::read_ranges(&reader, brokers, dlq, &ranges, |msg| {
        let code = header_text(msg, "lab.reason.code").unwrap_or_else(|| "(no reason header)".into());
        let shown = tail::show(msg);
        let at = shown.timestamp.clone();
        let reason = by_code.entry(code.clone()).or_insert_with(|| Reason {
            code,
            count: 0,
            first_seen: at.clone(),
            last_seen: at.clone(),
            example: shown,
        });
        reason.count += 1;
        if at < reason.first_seen || reason.first_seen.is_none() {
            reason.first_seen.clone_from(&at);
        }
        if at > reason.last_seen {
            reason.last_seen = at;
        }
        true
    })?;
    let mut reasons: Vec<Reason> = by_code.into_values().collect();
    reasons.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.code.cmp(&b.code)));
    Ok(Summary {
        topic: dlq.to_string(),
        dead_letters,
        reasons,
    })
}

/// What a replay sent (or, as a dry run, would send).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Replay {
    pub code: String,
    pub group: String,
    /// Dead letters of this reason not replayed before.
    pub replayed: u64,
    /// Per source topic.
    pub to_topics: BTreeMap<String, u64>,
    /// Dead letters of this reason left out: excerpts of records too large for Kafka, or
    /// without a source topic.
    pub skipped: u64,
    /// Dead letters of this reason replayed by an earlier run.
    pub already_replayed: u64,
    pub dry_run: bool,
}

/// The consumer group that remembers how far `code` was replayed from `dlq`.
#[must_use]
pub fn replay_group(dlq: &str, code: &str) -> String {
    format!("lab-dlq-replay-{dlq}-{code}")
}

/// Sends the dead letters of `code` not replayed before back to their source topics, with their
/// key, their `lab.source` and a [`REPLAY_HEADER`], in one transaction with the replay group's
/// new offsets.
///
/// Blocking (librdkafka calls): call from a blocking thread.
pub fn replay(brokers: &str, dlq: &str, code: &str, dry_run: bool) -> Result<Replay, KafkaToolError> {
    let group = replay_group(dlq, code);
    let reader = tail::reader(brokers)?;
    let marks = tail::watermarks(&reader, brokers, dlq, None)?;
    let tracker: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", &group)
        .set("enable.auto.commit", "false")
        .create()
        .map_err(|e| KafkaToolError::kafka("create a client", brokers, e))?;
    let mut tpl = TopicPartitionList::new();
    for p in marks.keys() {
        tpl.add_partition(dlq, *p);
    }
    let done = tracker
        .committed_offsets(tpl, REQUEST_TIMEOUT)
        .map_err(|e| KafkaToolError::kafka(&format!("read how far {code} was replayed"), brokers, e))?;
    let mut ranges = BTreeMap::new();
    let mut already_ranges = BTreeMap::new();
    for (p, (low, high)) in &marks {
        let from = match done.find_partition(dlq, *p).map(|e| e.offset()) {
            Some(Offset::Offset(o)) => o.clamp(*low, *high),
            _ => *low,
        };
        ranges.insert(*p, (from, *high));
        already_ranges.insert(*p, (*low, from));
    }
    let mut already_replayed = 0;
    tail::read_ranges(&reader, brokers, dlq, &already_ranges, |msg| {
        if header(msg, "lab.reason.code") == Some(code.as_bytes()) {
            already_replayed += 1;
        }
        true
    })?;

    let producer: Option<ThreadedProducer<DefaultProducerContext>> = if dry_run {
        None
    } else {
        let p: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set("transactional.id", &group)
            .set("enable.idempotence", "true")
            .create()
            .map_err(|e| KafkaToolError::kafka("create the replay producer", brokers, e))?;
        p.init_transactions(TXN_TIMEOUT)
            .map_err(|e| KafkaToolError::kafka("start the replay's transaction", brokers, e))?;
        p.begin_transaction()
            .map_err(|e| KafkaToolError::kafka("start the replay's transaction", brokers, e))?;
        Some(p)
    };
    let mut report = Replay {
        code: code.to_string(),
        group: group.clone(),
        replayed: 0,
        to_topics: BTreeMap::new(),
        skipped: 0,
        already_replayed,
        dry_run,
    };
    let mut send_error = None;
    tail::read_ranges(&reader, brokers, dlq, &ranges, |msg| {
        if header(msg, "lab.reason.code") != Some(code.as_bytes()) {
            return true;
        }
        let Some(source) = header_text(msg, "lab.source.topic") else {
            report.skipped += 1;
            return true;
        };
        if code == "too_large" {
            // The dead letter holds an excerpt, not the record.
            report.skipped += 1;
            return true;
        }
        if let Some(producer) = &producer {
            let replay_of = format!("{dlq}[{}]@{}", msg.partition(), msg.offset());
            let mut headers = OwnedHeaders::new().insert(Header {
                key: REPLAY_HEADER,
                value: Some(replay_of.as_bytes()),
            });
            if let Some(origin) = header(msg, "lab.source") {
                headers = headers.insert(Header {
                    key: "lab.source",
                    value: Some(origin),
                });
            }
            let payload = msg.payload().unwrap_or_default();
            let mut record = BaseRecord::<[u8], [u8]>::to(&source).payload(payload).headers(headers);
            if let Some(key) = msg.key() {
                record = record.key(key);
            }
            if let Err((e, _)) = producer.send(record) {
                send_error = Some(e);
                return false;
            }
        }
        report.replayed += 1;
        *report.to_topics.entry(source).or_default() += 1;
        true
    })?;
    let Some(producer) = producer else {
        return Ok(report);
    };
    let commit = || -> Result<(), KafkaToolError> {
        let failed = |e| {
            KafkaToolError::kafka(
                &format!("replay the {code} dead letters (nothing was sent)"),
                brokers,
                e,
            )
        };
        if let Some(e) = send_error {
            return Err(failed(e));
        }
        let mut offsets = TopicPartitionList::new();
        for (p, (_, high)) in &ranges {
            offsets
                .add_partition_offset(dlq, *p, Offset::Offset(*high))
                .map_err(failed)?;
        }
        let meta = tracker.group_metadata().ok_or_else(|| {
            KafkaToolError::Input(format!("replay the {code} dead letters: no metadata for group {group}"))
        })?;
        producer
            .send_offsets_to_transaction(&offsets, &meta, TXN_TIMEOUT)
            .and_then(|()| producer.commit_transaction(TXN_TIMEOUT))
            .map_err(failed)
    };
    if let Err(e) = commit() {
        // Nothing of the replay becomes visible; the abort's own failure changes nothing to that.
        let _aborted = producer.abort_transaction(TXN_TIMEOUT);
        return Err(e);
    }
    Ok(report)
}
