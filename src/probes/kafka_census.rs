//! How many offsets of each topic hold no record: transaction markers (one per partition for each
//! committed or aborted transaction) and the records of aborted transactions. A topic written
//! exactly-once holds more offsets than records, so its offset count alone makes
//! `yelp.review.clean` look bigger than `yelp.review`; Kafka does not report markers, so they are
//! counted by reading.
//!
//! A `read_committed` reader never gets markers or aborted records, and reads only up to the last
//! stable offset (LSO: offsets past it may still belong to an open transaction). Every offset
//! below the LSO that the reader skipped is therefore not a record. The census reads each
//! partition once, from where it stopped the last time, within a budget of records and time per
//! run, and keeps the skipped ranges so that those the log's start has passed (retention, the
//! embedded broker's small segments) stop counting.
//!
//! One reader follows every partition continuously (a queue per partition, so that an
//! end-of-partition event says which topic it is about). An end-of-partition event may be older
//! than the stable offset asked for, so a gap at the end counts only once a later run, the reader
//! having fetched on meanwhile, finds nothing new there. (On the test broker a read_committed
//! reader gets none of a producer's records written after that producer aborted a transaction it
//! read past: README, "a read after an aborted transaction"; the census counts them as no records
//! there, as every read_committed reader of that broker sees them.)
//!
//! Blocking (librdkafka polls): run it on a blocking thread.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::{Duration, Instant};

use std::sync::Arc;

use rdkafka::consumer::base_consumer::PartitionQueue;
use rdkafka::consumer::{BaseConsumer, Consumer, DefaultConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use super::kafka::Topic;

/// One partition's progress: the next offset to account for and the ranges that held no record.
#[derive(Debug, Default)]
struct PartitionScan {
    next: i64,
    /// The last stable offset, and the run, of an end of partition at `next` short of it: the
    /// offsets between count as no records when a later run still finds nothing new.
    unconfirmed_end: Option<(i64, u64)>,
    /// (first offset, length), oldest first, adjacent ranges merged.
    skipped: VecDeque<(i64, i64)>,
}

impl PartitionScan {
    fn skip_to(&mut self, offset: i64) {
        if offset <= self.next {
            return;
        }
        let len = offset - self.next;
        match self.skipped.back_mut() {
            Some((first, n)) if *first + *n == self.next => *n += len,
            _ => self.skipped.push_back((self.next, len)),
        }
        self.next = offset;
    }

    /// The log now starts at `low`: ranges before it are gone.
    fn start_at(&mut self, low: i64) {
        while let Some((first, n)) = self.skipped.front_mut() {
            if *first + *n <= low {
                self.skipped.pop_front();
            } else {
                if *first < low {
                    *n -= low - *first;
                    *first = low;
                }
                break;
            }
        }
        self.next = self.next.max(low);
    }

    fn not_records(&self) -> i64 {
        self.skipped.iter().map(|(_, n)| n).sum()
    }
}

/// What a run found for one topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopicCensus {
    /// Offsets below the scanned position that hold no record.
    pub not_records: i64,
    /// Every partition was read up to its last stable offset.
    pub complete: bool,
    /// The offsets read up to, summed over the partitions: a count is current only while this
    /// equals the topic's end (an open transaction, or records since the run, make it less).
    pub scanned_to: i64,
}

/// The census's `read_committed` client.
fn reader(brokers: &str) -> Result<BaseConsumer, KafkaError> {
    ClientConfig::new()
        .set("bootstrap.servers", brokers)
        // librdkafka wants a group id even for assigned partitions; this one never joins a
        // group nor commits, so no broker ever lists it.
        .set("group.id", "lab-marker-census")
        .set("isolation.level", "read_committed")
        .set("enable.partition.eof", "true")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        // Prefetch little: the census reads at its own pace, the monitor stays small. The fetch
        // waits keep librdkafka's default (500 ms): an idle lab costs a few requests a second.
        .set("queued.max.messages.kbytes", "1024")
        .set("socket.timeout.ms", super::REQUEST_TIMEOUT.as_millis().to_string())
        .set("reconnect.backoff.max.ms", "2000")
        .create()
}

type Key = (String, i32);

pub struct Census {
    reader: Arc<BaseConsumer>,
    brokers: String,
    scans: HashMap<Key, PartitionScan>,
    queues: HashMap<Key, PartitionQueue<DefaultConsumerContext>>,
    /// Runs so far (an unconfirmed end is confirmed by a later one).
    runs: u64,
}

impl Census {
    pub fn new(brokers: &str) -> Result<Self, KafkaError> {
        Ok(Self {
            reader: Arc::new(reader(brokers)?),
            brokers: brokers.to_string(),
            scans: HashMap::new(),
            queues: HashMap::new(),
            runs: 0,
        })
    }

    /// Reads what is new in `topics` (as the probe listed them), at most `budget` records and
    /// `patience` of polling, and returns each topic's count.
    pub fn run(
        &mut self,
        topics: &[Topic],
        budget: u64,
        patience: Duration,
    ) -> Result<BTreeMap<String, TopicCensus>, KafkaError> {
        // The last stable offsets: a read_committed client's "latest" offset is the LSO.
        let mut ends = TopicPartitionList::new();
        for t in topics {
            for p in &t.partitions {
                ends.add_partition_offset(&t.name, p.id, Offset::End)?;
            }
        }
        let stable: HashMap<Key, i64> = if ends.count() == 0 {
            HashMap::new()
        } else {
            self.reader
                .offsets_for_times(ends, super::REQUEST_TIMEOUT)?
                .elements()
                .iter()
                .filter_map(|e| match e.offset() {
                    Offset::Offset(o) => Some(((e.topic().to_string(), e.partition()), o)),
                    _ => None,
                })
                .collect()
        };
        self.follow(topics, &stable)?;
        // Served for librdkafka's callbacks; records come through the partition queues.
        while self.reader.poll(Duration::ZERO).is_some() {}

        let mut open: HashMap<Key, i64> = stable
            .iter()
            .filter(|(key, lso)| self.scans.get(*key).is_some_and(|s| s.next < **lso))
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        self.runs += 1;
        let run = self.runs;
        let deadline = Instant::now() + patience;
        let mut read = 0;
        while !open.is_empty() && read < budget && Instant::now() < deadline {
            let keys: Vec<Key> = open.keys().cloned().collect();
            for key in keys {
                let (Some(queue), Some(scan)) = (self.queues.get(&key), self.scans.get_mut(&key)) else {
                    open.remove(&key);
                    continue;
                };
                let lso = open[&key];
                while read < budget {
                    match queue.poll(Duration::from_millis(5)) {
                        Some(Ok(msg)) => {
                            read += 1;
                            if msg.offset() < scan.next {
                                continue; // counted already
                            }
                            // Offsets between the last record and this one were skipped: not
                            // records.
                            scan.unconfirmed_end = None;
                            scan.skip_to(msg.offset());
                            scan.next = msg.offset() + 1;
                            if scan.next >= lso {
                                open.remove(&key);
                                break;
                            }
                        }
                        Some(Err(KafkaError::PartitionEOF(_))) => {
                            // The end the reader reached. Below the stable offset, what it did not
                            // get held no record, unless this event is older than the offset asked
                            // for: counted when a later run finds nothing new (the reader fetches
                            // on in the background meanwhile).
                            scan.unconfirmed_end = Some((lso, run));
                            open.remove(&key);
                            break;
                        }
                        Some(Err(e)) => {
                            tracing::debug!(error = %e, brokers = %self.brokers, ?key, "the marker census could not read");
                            break;
                        }
                        None => {
                            if let Some((end, seen)) = scan.unconfirmed_end
                                && end == lso
                                && seen < run
                            {
                                scan.skip_to(lso);
                                scan.unconfirmed_end = None;
                                open.remove(&key);
                            }
                            break;
                        }
                    }
                }
            }
        }

        let mut out: BTreeMap<String, TopicCensus> = BTreeMap::new();
        for t in topics {
            let mut census = TopicCensus {
                not_records: 0,
                complete: true,
                scanned_to: 0,
            };
            for p in &t.partitions {
                let key = (t.name.clone(), p.id);
                match (self.scans.get_mut(&key), stable.get(&key)) {
                    (Some(scan), Some(lso)) => {
                        census.not_records += scan.not_records();
                        census.scanned_to += scan.next;
                        census.complete &= scan.next >= *lso;
                    }
                    _ => census.complete = false,
                }
            }
            out.insert(t.name.clone(), census);
        }
        Ok(out)
    }

    /// Follows every listed partition from where its count stands (the log's start for a new
    /// one), and no longer those that are gone.
    fn follow(&mut self, topics: &[Topic], stable: &HashMap<Key, i64>) -> Result<(), KafkaError> {
        let mut gone = TopicPartitionList::new();
        self.scans.retain(|key, _| {
            let keep = stable.contains_key(key);
            if !keep {
                gone.add_partition(&key.0, key.1);
            }
            keep
        });
        let mut added = TopicPartitionList::new();
        for t in topics {
            for p in &t.partitions {
                let key = (t.name.clone(), p.id);
                if !stable.contains_key(&key) {
                    continue;
                }
                let recreated = self.scans.get(&key).is_some_and(|s| p.high < s.next);
                if recreated {
                    // The topic was deleted and created again: it starts over.
                    gone.add_partition(&t.name, p.id);
                    self.scans.remove(&key);
                }
                if let Some(scan) = self.scans.get_mut(&key) {
                    scan.start_at(p.low);
                    continue;
                }
                self.scans.insert(
                    key.clone(),
                    PartitionScan {
                        next: p.low,
                        ..PartitionScan::default()
                    },
                );
                added.add_partition_offset(&t.name, p.id, Offset::Offset(p.low))?;
            }
        }
        if gone.count() > 0 {
            for e in gone.elements() {
                self.queues.remove(&(e.topic().to_string(), e.partition()));
            }
            self.reader.incremental_unassign(&gone)?;
        }
        if added.count() > 0 {
            // The queues first, so that no record of theirs lands in the main queue.
            for e in added.elements() {
                if let Some(q) = self.reader.split_partition_queue(e.topic(), e.partition()) {
                    self.queues.insert((e.topic().to_string(), e.partition()), q);
                }
            }
            self.reader.incremental_assign(&added)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skipped_ranges_merge_and_drop_out_as_the_log_start_passes_them() {
        let mut s = PartitionScan::default();
        s.skip_to(0);
        s.next = 5; // records 0..5
        s.skip_to(6); // a marker at 5
        s.next = 9; // records 6..9
        s.skip_to(12); // 9..12: aborted records and their marker
        s.skip_to(13); // one more marker, adjacent: merged
        assert_eq!(s.skipped, [(5, 1), (9, 4)]);
        assert_eq!(s.not_records(), 5);
        s.start_at(10);
        assert_eq!(s.skipped, [(10, 3)], "what the log's start passed no longer counts");
        s.start_at(20);
        assert_eq!((s.not_records(), s.next), (0, 20));
    }
}
