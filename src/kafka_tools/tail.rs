//! Reading a topic's records for a person: the newest N (merged by timestamp across partitions),
//! or from an offset or a time, filtered by key, header or JSON field, with a bounded scan that
//! says how many records it read.
//!
//! It reads as `read_committed`, as the lab's stages do: records of aborted transactions are not
//! shown, and transaction markers (offsets that hold no record) never reach a client.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use chrono::{DateTime, FixedOffset, SecondsFormat, TimeZone, Utc};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Headers};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use serde::Serialize;

use super::{KafkaToolError, REQUEST_TIMEOUT};

/// Where reading starts on each partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Start {
    /// The newest records: the last `scan` offsets of each partition are read.
    Newest,
    Offset(i64),
    /// The first record at or after this time.
    Since(DateTime<FixedOffset>),
}

/// Which records are shown.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// The key, exactly.
    pub key: Option<String>,
    /// A header's name and value, exactly (`lab.reason.code=invalid_json` in the DLQ).
    pub header: Option<(String, String)>,
    /// A top-level JSON field and its value as text (`stars=1`, `business_id=…`).
    pub field: Option<(String, String)>,
}

impl Filter {
    /// Parses `NAME=VALUE`.
    pub fn pair(option: &str, text: &str) -> Result<(String, String), KafkaToolError> {
        match text.split_once('=') {
            Some((name, value)) if !name.is_empty() => Ok((name.to_string(), value.to_string())),
            _ => Err(KafkaToolError::Input(format!("{option} {text}: write NAME=VALUE"))),
        }
    }

    fn matches(&self, msg: &BorrowedMessage<'_>) -> bool {
        if let Some(key) = &self.key
            && msg.key() != Some(key.as_bytes())
        {
            return false;
        }
        if let Some((name, value)) = &self.header {
            let found = msg
                .headers()
                .is_some_and(|h| h.iter().any(|h| h.key == name && h.value == Some(value.as_bytes())));
            if !found {
                return false;
            }
        }
        if let Some((name, value)) = &self.field {
            let parsed: Option<serde_json::Value> = msg.payload().and_then(|p| serde_json::from_slice(p).ok());
            let field = parsed.as_ref().and_then(|v| v.get(name));
            let text = match field {
                Some(serde_json::Value::String(s)) => s.clone(),
                Some(other) => other.to_string(),
                None => return false,
            };
            if &text != value {
                return false;
            }
        }
        true
    }
}

/// What to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TailRequest {
    pub topic: String,
    /// One partition, or all of them.
    pub partition: Option<i32>,
    /// Records shown at most.
    pub limit: usize,
    pub start: Start,
    pub filter: Filter,
    /// Offsets read at most per partition.
    pub scan: i64,
}

/// One record as shown.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ShownRecord {
    pub partition: i32,
    pub offset: i64,
    /// RFC 3339, when the record has a timestamp.
    pub timestamp: Option<String>,
    #[serde(skip)]
    pub(crate) timestamp_ms: i64,
    pub key: Option<String>,
    pub headers: BTreeMap<String, String>,
    /// The value as JSON when it parses, else as text (invalid UTF-8 replaced).
    pub value: serde_json::Value,
}

/// The records, and how much was read to find them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Tail {
    pub topic: String,
    /// Records read (matching or not).
    pub scanned: u64,
    /// Of those, records that matched the filter.
    pub matched: u64,
    /// Offsets read on each partition: (first, end).
    pub ranges: BTreeMap<i32, (i64, i64)>,
    pub records: Vec<ShownRecord>,
}

/// A `read_committed` reader that belongs to no group.
pub(super) fn reader(brokers: &str) -> Result<BaseConsumer, KafkaToolError> {
    ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "lab-kafka-tail")
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .set("enable.partition.eof", "true")
        .set("receive.message.max.bytes", "1000000000")
        .create()
        .map_err(|e| KafkaToolError::kafka("create a reader", brokers, e))
}

/// The topic's partitions (or the one asked for), with their (low, high) watermarks.
pub(super) fn watermarks(
    reader: &BaseConsumer,
    brokers: &str,
    topic: &str,
    only: Option<i32>,
) -> Result<BTreeMap<i32, (i64, i64)>, KafkaToolError> {
    let meta = reader
        .fetch_metadata(Some(topic), REQUEST_TIMEOUT)
        .map_err(|e| KafkaToolError::kafka(&format!("read topic {topic}"), brokers, e))?;
    let partitions: Vec<i32> = meta
        .topics()
        .iter()
        .filter(|t| t.name() == topic && t.error().is_none())
        .flat_map(|t| t.partitions().iter().map(rdkafka::metadata::MetadataPartition::id))
        .filter(|p| only.is_none_or(|want| want == *p))
        .collect();
    if partitions.is_empty() {
        return Err(KafkaToolError::Input(match only {
            Some(p) => format!("topic {topic} has no partition {p} on {brokers}"),
            None => format!("topic {topic} does not exist on {brokers} (`lab status` lists the topics)"),
        }));
    }
    let mut out = BTreeMap::new();
    for p in partitions {
        let marks = reader
            .fetch_watermarks(topic, p, REQUEST_TIMEOUT)
            .map_err(|e| KafkaToolError::kafka(&format!("read the watermarks of {topic}[{p}]"), brokers, e))?;
        out.insert(p, marks);
    }
    Ok(out)
}

/// Reads each partition's offsets `first..end` (as `read_committed`: aborted records and markers
/// are skipped), handing each record to `visit`, which returns `false` once it has enough from
/// that partition. Returns the records read.
pub(super) fn read_ranges(
    reader: &BaseConsumer,
    brokers: &str,
    topic: &str,
    ranges: &BTreeMap<i32, (i64, i64)>,
    mut visit: impl FnMut(&BorrowedMessage<'_>) -> bool,
) -> Result<u64, KafkaToolError> {
    let mut assignment = TopicPartitionList::new();
    let mut open: BTreeMap<i32, i64> = BTreeMap::new();
    for (p, (first, end)) in ranges {
        if first < end {
            assignment
                .add_partition_offset(topic, *p, Offset::Offset(*first))
                .map_err(|e| KafkaToolError::kafka("assign the partitions", brokers, e))?;
            open.insert(*p, *end);
        }
    }
    if open.is_empty() {
        return Ok(0);
    }
    reader
        .assign(&assignment)
        .map_err(|e| KafkaToolError::kafka("assign the partitions", brokers, e))?;
    let mut scanned = 0;
    let mut idle_since = Instant::now();
    while !open.is_empty() {
        match reader.poll(Duration::from_millis(200)) {
            Some(Ok(msg)) => {
                idle_since = Instant::now();
                let p = msg.partition();
                let Some(end) = open.get(&p).copied() else { continue };
                if msg.offset() >= end {
                    open.remove(&p);
                    continue;
                }
                scanned += 1;
                if !visit(&msg) || msg.offset() + 1 >= end {
                    open.remove(&p);
                }
            }
            Some(Err(KafkaError::PartitionEOF(p))) => {
                open.remove(&p);
            }
            Some(Err(e)) => return Err(KafkaToolError::kafka(&format!("read {topic}"), brokers, e)),
            None => {
                // The rest of a range may be records of aborted transactions or markers, which a
                // read_committed reader never gets: nothing more arrives.
                if idle_since.elapsed() > Duration::from_secs(3) {
                    break;
                }
            }
        }
    }
    reader
        .unassign()
        .map_err(|e| KafkaToolError::kafka("unassign the partitions", brokers, e))?;
    Ok(scanned)
}

/// Reads the records `request` asks for.
///
/// Blocking (librdkafka polls): call from a blocking thread.
pub fn tail(brokers: &str, request: &TailRequest) -> Result<Tail, KafkaToolError> {
    let reader = reader(brokers)?;
    let topic = request.topic.as_str();
    let marks = watermarks(&reader, brokers, topic, request.partition)?;
    let by_time = match &request.start {
        Start::Since(t) => super::offsets_at(&reader, brokers, marks.keys().map(|p| (topic, *p)), t)?,
        _ => BTreeMap::new(),
    };
    let mut ranges = BTreeMap::new();
    for (p, (low, high)) in &marks {
        let first = match &request.start {
            Start::Newest => high - request.scan,
            Start::Offset(o) => *o,
            Start::Since(_) => by_time
                .get(&(topic.to_string(), *p))
                .copied()
                .flatten()
                .unwrap_or(*high),
        }
        .clamp(*low, *high);
        ranges.insert(*p, (first, (*high).min(first.saturating_add(request.scan))));
    }
    // From an offset or a time, the first `limit` matches per partition are enough; the newest
    // need the whole range read (the last matches win).
    let oldest_first = request.start != Start::Newest;
    let mut per_partition: BTreeMap<i32, Vec<ShownRecord>> = BTreeMap::new();
    let mut matched = 0;
    let scanned = read_ranges(&reader, brokers, topic, &ranges, |msg| {
        if !request.filter.matches(msg) {
            return true;
        }
        matched += 1;
        let shown = per_partition.entry(msg.partition()).or_default();
        shown.push(show(msg));
        if !oldest_first && shown.len() > request.limit {
            shown.remove(0);
        }
        !(oldest_first && shown.len() >= request.limit)
    })?;
    let mut records: Vec<ShownRecord> = per_partition.into_values().flatten().collect();
    records.sort_by_key(|r| (r.timestamp_ms, r.partition, r.offset));
    let skip = if oldest_first {
        0
    } else {
        records.len().saturating_sub(request.limit)
    };
    records.drain(..skip);
    records.truncate(request.limit);
    Ok(Tail {
        topic: topic.to_string(),
        scanned,
        matched,
        ranges,
        records,
    })
}

pub(super) fn show(msg: &BorrowedMessage<'_>) -> ShownRecord {
    let timestamp_ms = msg.timestamp().to_millis().unwrap_or(-1);
    let timestamp = (timestamp_ms >= 0)
        .then(|| Utc.timestamp_millis_opt(timestamp_ms).single())
        .flatten()
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true));
    let headers = msg
        .headers()
        .map(|h| {
            h.iter()
                .map(|h| {
                    (
                        h.key.to_string(),
                        h.value
                            .map(|v| String::from_utf8_lossy(v).into_owned())
                            .unwrap_or_default(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let payload = msg.payload().unwrap_or_default();
    let value = serde_json::from_slice(payload)
        .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(payload).into_owned()));
    ShownRecord {
        partition: msg.partition(),
        offset: msg.offset(),
        timestamp,
        timestamp_ms,
        key: msg.key().map(|k| String::from_utf8_lossy(k).into_owned()),
        headers,
        value,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_take_name_value_pairs() {
        assert_eq!(
            Filter::pair("--grep", "stars=1").unwrap(),
            ("stars".to_string(), "1".to_string())
        );
        assert_eq!(
            Filter::pair("--header", "lab.reason.code=bad=json").unwrap(),
            ("lab.reason.code".to_string(), "bad=json".to_string())
        );
        assert!(Filter::pair("--grep", "stars").is_err());
        assert!(Filter::pair("--grep", "=1").is_err());
    }
}
