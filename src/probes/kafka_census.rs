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
//! One reader follows the partitions that have offsets left to account for (a queue per
//! partition, so that an end-of-partition event says which topic it is about). An
//! end-of-partition event may be older than the stable offset asked for, so a gap at the end
//! counts only once a later run, the reader having fetched on meanwhile, finds nothing new there.
//! (On the test broker a read_committed reader gets none of a producer's records written after
//! that producer aborted a transaction it read past: README, "a read after an aborted
//! transaction"; the census counts them as no records there, as every read_committed reader of
//! that broker sees them.)
//!
//! A partition accounted for up to its stable offset is let go until it has new offsets: a reader
//! at the end of a partition fetches again and again, which costs a Kafka broker a request held
//! up to `fetch.wait.max.ms`, but the test broker answers at once (kcat at the end of three
//! partitions there logged 300,000 fetch lines in 4 s), and the monitor then used 47 % of a core
//! idle.
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

        self.let_go_of_accounted(&stable)?;

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

    /// Follows every listed partition with offsets left to account for, from where its count
    /// stands (the log's start for a new one), and no longer those that are gone.
    fn follow(&mut self, topics: &[Topic], stable: &HashMap<Key, i64>) -> Result<(), KafkaError> {
        let mut gone = TopicPartitionList::new();
        let queues = &self.queues;
        self.scans.retain(|key, _| {
            let keep = stable.contains_key(key);
            if !keep && queues.contains_key(key) {
                gone.add_partition(&key.0, key.1);
            }
            keep
        });
        let mut added = TopicPartitionList::new();
        for t in topics {
            for p in &t.partitions {
                let key = (t.name.clone(), p.id);
                let Some(&lso) = stable.get(&key) else {
                    continue;
                };
                let recreated = self.scans.get(&key).is_some_and(|s| p.high < s.next);
                if recreated {
                    // The topic was deleted and created again: it starts over.
                    if self.queues.contains_key(&key) {
                        gone.add_partition(&t.name, p.id);
                    }
                    self.scans.remove(&key);
                }
                let scan = self.scans.entry(key.clone()).or_insert_with(|| PartitionScan {
                    next: p.low,
                    ..PartitionScan::default()
                });
                scan.start_at(p.low);
                let followed = self.queues.contains_key(&key) && !recreated;
                if !followed && scan.next < lso {
                    added.add_partition_offset(&t.name, p.id, Offset::Offset(scan.next))?;
                }
            }
        }
        self.unassign(&gone)?;
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

    /// Stops following the partitions accounted for up to their stable offset (a gap at the end
    /// still to be confirmed keeps its partition followed): `follow` takes one up again when it
    /// has new offsets.
    fn let_go_of_accounted(&mut self, stable: &HashMap<Key, i64>) -> Result<(), KafkaError> {
        let mut accounted = TopicPartitionList::new();
        for key in self.queues.keys() {
            if let (Some(scan), Some(lso)) = (self.scans.get(key), stable.get(key))
                && scan.next >= *lso
                && scan.unconfirmed_end.is_none()
            {
                accounted.add_partition(&key.0, key.1);
            }
        }
        self.unassign(&accounted)
    }

    fn unassign(&mut self, partitions: &TopicPartitionList) -> Result<(), KafkaError> {
        if partitions.count() == 0 {
            return Ok(());
        }
        for e in partitions.elements() {
            self.queues.remove(&(e.topic().to_string(), e.partition()));
        }
        self.reader.incremental_unassign(partitions)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probes::kafka::Partition;

    /// A partition accounted for to its end is no longer fetched (a reader at the end of a
    /// partition fetches again and again: half a core of the monitor on the test broker), and is
    /// followed again, from where its count stands, once it has new records.
    #[test]
    fn a_partition_accounted_for_is_let_go_until_it_has_new_records() {
        use rdkafka::mocking::MockCluster;
        use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
        let mock = MockCluster::new(1).unwrap();
        mock.create_topic("lab.review.clean", 2, 1).unwrap();
        let producer: BaseProducer = ClientConfig::new()
            .set("bootstrap.servers", mock.bootstrap_servers())
            .create()
            .unwrap();
        let send = |partition: i32, n: usize| {
            for _ in 0..n {
                producer
                    .send(
                        BaseRecord::<str, str>::to("lab.review.clean")
                            .partition(partition)
                            .payload("{}"),
                    )
                    .unwrap();
            }
            producer.flush(Duration::from_secs(10)).unwrap();
        };
        let listed = |high: [i64; 2]| {
            vec![Topic {
                name: "lab.review.clean".into(),
                partitions: (0..2)
                    .map(|id| Partition {
                        id,
                        high: high[id as usize],
                        ..Partition::default()
                    })
                    .collect(),
                messages: high.iter().sum(),
                ..Topic::default()
            }]
        };
        let followed = |c: &Census| -> Vec<i32> {
            let assigned = c.reader.assignment().unwrap();
            assigned.elements().iter().map(|e| e.partition()).collect()
        };
        let mut census = Census::new(&mock.bootstrap_servers()).unwrap();
        send(0, 5);
        send(1, 3);
        // Until every partition is read to its end: no records are markers here.
        let deadline = Instant::now() + Duration::from_secs(30);
        let counted = loop {
            let c = census.run(&listed([5, 3]), 1_000, Duration::from_millis(500)).unwrap();
            if c["lab.review.clean"].complete {
                break c["lab.review.clean"];
            }
            assert!(Instant::now() < deadline, "never read to the end: {c:?}");
        };
        assert_eq!((counted.not_records, counted.scanned_to), (0, 8));
        assert_eq!(
            followed(&census),
            Vec::<i32>::new(),
            "both partitions are accounted for"
        );

        send(1, 4);
        let c = census.run(&listed([5, 7]), 1_000, Duration::from_millis(500)).unwrap();
        assert!(!followed(&census).contains(&0), "only partition 1 has new records");
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut c = c["lab.review.clean"];
        while !c.complete {
            assert!(Instant::now() < deadline, "the new records were never read: {c:?}");
            c = census.run(&listed([5, 7]), 1_000, Duration::from_millis(500)).unwrap()["lab.review.clean"];
        }
        assert_eq!((c.not_records, c.scanned_to), (0, 12));
        assert_eq!(followed(&census), Vec::<i32>::new());
    }

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
