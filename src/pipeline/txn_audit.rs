//! After a broker outage, checks that the broker still shows the transform's committed
//! transactions to `read_committed` readers.
//!
//! A broker that loses transaction state or markers across a restart (the test broker, noida-db
//! 0.2.3: `tests/services/repro/txn_across_restart.py` shows it with no lab code) hides records of
//! transactions that had committed, while their input offsets stay committed too: exactly-once
//! would then go on and lose those records without a word. So the transform remembers where its
//! recent transactions ended on each output partition and, after riding out an outage, reads those
//! positions back as a downstream reader would. A record it committed and cannot read stops the
//! stage with [`PipelineError::TransactionsLost`] and the advice to run at-least-once there.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Message, Offset, TopicPartitionList};
use tokio_util::sync::CancellationToken;

use super::PipelineError;

/// Transactions kept for the check: the ones a restarting broker may not have persisted yet are
/// the most recent ones, and each holds at most one batch, so the re-read stays bounded.
const KEEP_TXNS: usize = 64;
const KEEP_FOR: Duration = Duration::from_secs(120);

/// Where one output partition's records of a transaction ended.
type Partition = (String, i32);

/// The last offset each recent committed transaction wrote on each output partition, and the
/// broker outages already checked.
#[derive(Debug, Default)]
pub struct CommittedOutputs {
    recent: VecDeque<(Instant, BTreeMap<Partition, i64>)>,
    outages_checked: u64,
}

impl CommittedOutputs {
    /// Records a transaction that committed, with the last offset it wrote per output partition.
    pub fn committed(&mut self, last_offsets: BTreeMap<Partition, i64>) {
        if last_offsets.is_empty() {
            return;
        }
        let now = Instant::now();
        self.recent.push_back((now, last_offsets));
        while self.recent.len() > KEEP_TXNS
            || self
                .recent
                .front()
                .is_some_and(|(at, _)| now.duration_since(*at) > KEEP_FOR && self.recent.len() > 1)
        {
            self.recent.pop_front();
        }
    }

    /// Whether outages happened (`outages` is [`super::kafka::BrokerOutage::count`]) that the
    /// committed transactions have not been checked against yet.
    #[must_use]
    pub fn needs_check(&self, outages: u64) -> bool {
        outages > self.outages_checked && !self.recent.is_empty()
    }

    /// Reads every remembered transaction's last record per partition with a `read_committed`
    /// reader. Waits up to `patience` for records a pending transaction still holds back (a
    /// healthy broker shows them at once: this transform's own transactions have all ended).
    /// A broker that stayed unreachable for the whole check is a transient error (the caller
    /// rides it out and checks again), not a loss.
    ///
    /// Blocking (librdkafka polls): call from `block_in_place` or a blocking thread.
    pub fn check(
        &mut self,
        brokers: &str,
        outages: u64,
        patience: Duration,
        cancel: &CancellationToken,
    ) -> Result<(), PipelineError> {
        let expected = self.expected();
        let missing = read_back(brokers, &expected, patience, cancel)?;
        if cancel.is_cancelled() {
            return Ok(());
        }
        if missing.is_empty() {
            tracing::info!(
                transactions = self.recent.len(),
                "the broker still shows every checked committed transaction after the outage"
            );
            self.outages_checked = outages;
            return Ok(());
        }
        let ((topic, partition), offset) = missing.iter().next().map(|(p, o)| (p.clone(), *o)).unwrap_or_default();
        Err(PipelineError::TransactionsLost {
            brokers: brokers.to_string(),
            records: missing.len(),
            example: format!("{topic}[{partition}] offset {offset}"),
        })
    }

    /// Per partition, the offsets that must be readable.
    fn expected(&self) -> BTreeMap<Partition, BTreeSet<i64>> {
        let mut expected: BTreeMap<Partition, BTreeSet<i64>> = BTreeMap::new();
        for (_, txn) in &self.recent {
            for (partition, offset) in txn {
                expected.entry(partition.clone()).or_default().insert(*offset);
            }
        }
        expected
    }
}

/// Reads each partition from its lowest expected offset past its highest, and returns the
/// expected (partition, offset) pairs a `read_committed` reader never got.
fn read_back(
    brokers: &str,
    expected: &BTreeMap<Partition, BTreeSet<i64>>,
    patience: Duration,
    cancel: &CancellationToken,
) -> Result<BTreeSet<(Partition, i64)>, PipelineError> {
    let reader: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "lab-transaction-check")
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .set("receive.message.max.bytes", "1000000000")
        .create()
        .map_err(|e| PipelineError::kafka("create a read_committed reader", brokers, e))?;
    let mut assignment = TopicPartitionList::new();
    for ((topic, partition), offsets) in expected {
        let first = *offsets.first().unwrap_or(&0);
        assignment
            .add_partition_offset(topic, *partition, Offset::Offset(first))
            .map_err(|e| PipelineError::kafka("assign the partitions to check", brokers, e))?;
    }
    reader
        .assign(&assignment)
        .map_err(|e| PipelineError::kafka("assign the partitions to check", brokers, e))?;

    let mut missing: BTreeSet<(Partition, i64)> = expected
        .iter()
        .flat_map(|(p, offsets)| offsets.iter().map(move |o| (p.clone(), *o)))
        .collect();
    // A partition is done once a record at or past its last expected offset was read: a lost
    // record there can no longer show up later.
    let mut open: BTreeMap<Partition, i64> = expected
        .iter()
        .map(|(p, offsets)| (p.clone(), *offsets.last().unwrap_or(&0)))
        .collect();
    let deadline = Instant::now() + patience;
    let mut received = 0u64;
    let mut unreachable = None;
    while !open.is_empty() && Instant::now() < deadline && !cancel.is_cancelled() {
        let Some(msg) = reader.poll(Duration::from_millis(200)) else {
            continue;
        };
        // Errors here (a partition's leader moving) pass; the deadline bounds the whole check.
        let msg = match msg {
            Ok(msg) => msg,
            Err(e) => {
                if super::kafka::KafkaDetail::is_transient(&e) {
                    unreachable = Some(e);
                }
                continue;
            }
        };
        received += 1;
        let key = (msg.topic().to_string(), msg.partition());
        missing.remove(&(key.clone(), msg.offset()));
        if open.get(&key).is_some_and(|last| msg.offset() >= *last) {
            open.remove(&key);
        }
    }
    // Nothing read while the broker could not be reached: an outage again, not a loss.
    if let (0, Some(e), false) = (received, unreachable, missing.is_empty()) {
        return Err(PipelineError::kafka("read back the committed transactions", brokers, e));
    }
    Ok(missing)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn txn(entries: &[(&str, i32, i64)]) -> BTreeMap<Partition, i64> {
        entries.iter().map(|(t, p, o)| ((t.to_string(), *p), *o)).collect()
    }

    #[test]
    fn only_the_most_recent_transactions_are_kept_and_each_offset_once() {
        let mut outputs = CommittedOutputs::default();
        assert!(!outputs.needs_check(1), "nothing committed: nothing to check");
        for i in 0..(KEEP_TXNS as i64 + 10) {
            outputs.committed(txn(&[("a.clean", 0, i * 10), ("a.dlq", 1, i)]));
        }
        outputs.committed(BTreeMap::new());
        assert_eq!(outputs.recent.len(), KEEP_TXNS);
        let expected = outputs.expected();
        assert_eq!(expected[&("a.clean".to_string(), 0)].len(), KEEP_TXNS);
        assert_eq!(expected[&("a.clean".to_string(), 0)].first(), Some(&100));
        assert_eq!(
            expected[&("a.dlq".to_string(), 1)].last(),
            Some(&(KEEP_TXNS as i64 + 9))
        );
        assert!(outputs.needs_check(1));
        outputs.outages_checked = 1;
        assert!(
            !outputs.needs_check(1),
            "an outage already checked is not checked again"
        );
        assert!(outputs.needs_check(2));
    }
}
