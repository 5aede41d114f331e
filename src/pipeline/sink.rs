//! Consumer: clean topics → raw zone Parquet, one file per (entity, Kafka partition, roll).
//!
//! Order of operations per file: encode → write to a temp name → rename (atomic) → commit the
//! partition's offset. A crash after the rename but before the commit makes the consumer re-read
//! records it already wrote; it recognises them from the offsets and epoch in the raw zone's file
//! names and skips them, so the raw zone holds every record exactly once. Only files of the
//! partition's own incarnation count (see [`super::resume`]): records of a recreated topic, a new
//! prefix or a reset broker are always written.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use rdkafka::consumer::{Consumer, ConsumerContext, StreamConsumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Message, Offset, TopicPartitionList};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::clean::Rejection;
use super::group::GroupEvents;
use super::kafka;
use super::part::{self, JsonLines};
use super::resume::{self, Owned};
use super::{PipelineError, StageCounters, StopWhen, Topics};
use crate::dataset::Entity;
use crate::storage::{Epoch, PartFile, RawZone};

/// Stage name in the default consumer group (see [`kafka::default_group`]).
pub const GROUP_STAGE: &str = "consumer";

/// When a buffered file is written out.
#[derive(Debug, Clone, Copy)]
pub struct RollPolicy {
    pub max_rows: usize,
    /// Largest buffer of one partition.
    pub max_bytes: usize,
    pub max_age: Duration,
    /// All buffers together: over it, the largest buffers are written out first until the rest
    /// fits (one bound on the consumer's memory, however many entities × partitions it owns).
    pub max_total_bytes: usize,
}

/// Default of [`RollPolicy::max_total_bytes`].
pub const DEFAULT_BUFFER_BUDGET: usize = 512 << 20;

impl Default for RollPolicy {
    fn default() -> Self {
        Self {
            max_rows: 500_000,
            max_bytes: 128 << 20,
            max_age: Duration::from_secs(30),
            max_total_bytes: DEFAULT_BUFFER_BUDGET,
        }
    }
}

/// Which buffers to write out so that the rest stay within `budget` bytes: the largest first.
/// `sizes` are (key, bytes) of the buffers held.
fn over_budget<K: Copy>(mut sizes: Vec<(K, usize)>, budget: usize) -> Vec<K> {
    let mut total: usize = sizes.iter().map(|(_, b)| b).sum();
    sizes.sort_by_key(|(_, bytes)| std::cmp::Reverse(*bytes));
    let mut out = Vec::new();
    for (key, bytes) in sizes {
        if total <= budget {
            break;
        }
        total -= bytes;
        out.push(key);
    }
    out
}

#[derive(Debug, Clone)]
pub struct SinkOptions {
    pub brokers: String,
    pub topics: Topics,
    pub group_id: String,
    /// This worker's number in the group (`--worker`); `None`: the group's only consumer.
    pub worker: Option<u32>,
    pub broker: kafka::BrokerKind,
    pub roll: RollPolicy,
    pub stop: StopWhen,
    /// How long to wait for an unreachable broker before giving up.
    pub broker_patience: Duration,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct SinkReport {
    /// The worker this report is of (`--worker`, `--workers`); absent for a group's only consumer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub worker: Option<u32>,
    pub records_written: u64,
    pub files_written: u64,
    pub skipped_already_durable: u64,
    /// Records that did not fit their entity's schema, sent to the dead-letter topic.
    pub dead_lettered: u64,
}

/// Raw-zone files being written, counted so that a revoke can wait for them: the partition's next
/// owner learns what is durable from the files, so a file landing after it looked would have its
/// records written twice (see [`super::group`]).
#[derive(Default)]
struct WritesInFlight {
    count: std::sync::Mutex<usize>,
    landed: std::sync::Condvar,
}

/// Held by a write while it runs.
struct WriteUnderWay(Arc<WritesInFlight>);

impl WritesInFlight {
    fn begin(self: &Arc<Self>) -> WriteUnderWay {
        *self.count.lock().unwrap_or_else(std::sync::PoisonError::into_inner) += 1;
        WriteUnderWay(Arc::clone(self))
    }

    fn idle(&self) -> bool {
        *self.count.lock().unwrap_or_else(std::sync::PoisonError::into_inner) == 0
    }

    /// Waits until no write is under way, at most `limit`; whether none is.
    fn wait_idle(&self, limit: Duration) -> bool {
        let count = self.count.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let (count, _) = self
            .landed
            .wait_timeout_while(count, limit, |n| *n > 0)
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *count == 0
    }
}

impl Drop for WriteUnderWay {
    fn drop(&mut self) {
        *self.0.count.lock().unwrap_or_else(std::sync::PoisonError::into_inner) -= 1;
        self.0.landed.notify_all();
    }
}

/// How long a revoke waits for the files being written: it holds the poll, and past
/// [`kafka::MAX_POLL_INTERVAL`] the group goes on without this member anyway. A file normally
/// lands within a second or two; a raw zone slower than this lets the revoke go on (the warning
/// in [`group_events`]).
const REVOKE_WAIT: Duration = kafka::MAX_POLL_INTERVAL.saturating_sub(Duration::from_secs(10));

/// The consumer's group context: before its partitions are revoked, it waits for the files being
/// written (blocking the poll, which is what holds the rebalance back).
fn group_events(writes: &Arc<WritesInFlight>) -> GroupEvents {
    let writes = Arc::clone(writes);
    GroupEvents::with_before_revoke(Box::new(move || {
        // The rebalance callback runs inside the loop's poll, on a runtime worker (and in the
        // consumer's close, when nothing is being written any more).
        if !writes.idle() && !tokio::task::block_in_place(|| writes.wait_idle(REVOKE_WAIT)) {
            tracing::warn!(
                wait = ?REVOKE_WAIT,
                "raw-zone files still being written when partitions were revoked; their next owner may write their records again"
            );
        }
    }))
}

/// Records of one Kafka partition waiting to become one Parquet file.
struct PartBuffer {
    entity: Entity,
    topic: String,
    partition: i32,
    /// The incarnation of the topic these offsets belong to.
    epoch: Epoch,
    records: JsonLines,
    offsets: Vec<i64>,
    /// One past the highest offset buffered: what to commit once the buffer is handled.
    next_offset: i64,
    first_timestamp_ms: Option<i64>,
    started: Instant,
}

/// Runs until cancelled or, with [`StopWhen::CaughtUp`], until the clean topics are drained.
pub async fn run_sink<Z: RawZone>(
    zone: &Z,
    opts: &SinkOptions,
    counters: &Arc<StageCounters>,
    cancel: &CancellationToken,
) -> Result<SinkReport, PipelineError> {
    let result = kafka::rejoin_when_fenced_early(counters, || sink_loop(zone, opts, counters, cancel)).await;
    counters.finish();
    result
}

async fn sink_loop<Z: RawZone>(
    zone: &Z,
    opts: &SinkOptions,
    counters: &Arc<StageCounters>,
    cancel: &CancellationToken,
) -> Result<SinkReport, PipelineError> {
    let brokers = opts.brokers.as_str();
    let writes = Arc::new(WritesInFlight::default());
    let consumer = kafka::GroupConsumer::new(
        kafka::consumer_config(brokers, &opts.group_id, opts.worker, opts.broker)
            .create_with_context(group_events(&writes).noting_lost_assignments(Arc::clone(counters)))
            .map_err(|e| PipelineError::kafka("create the raw-zone consumer", brokers, e))?,
    );
    let result = sink_with(zone, consumer.get(), &writes, opts, counters, cancel).await;
    kafka::close_consumer(consumer).await;
    result
}

async fn sink_with<Z: RawZone>(
    zone: &Z,
    consumer: &StreamConsumer<GroupEvents>,
    writes: &Arc<WritesInFlight>,
    opts: &SinkOptions,
    counters: &Arc<StageCounters>,
    cancel: &CancellationToken,
) -> Result<SinkReport, PipelineError> {
    let brokers = opts.brokers.as_str();
    let watermarks = kafka::watermark_client(brokers)?;
    let dlq: FutureProducer = kafka::producer_config(brokers)
        .create()
        .map_err(|e| PipelineError::kafka("create the dead-letter producer", brokers, e))?;
    let dlq_topic = opts.topics.dlq();
    let inputs: Vec<String> = Entity::ALL.iter().map(|e| opts.topics.clean(*e)).collect();
    let input_refs: Vec<&str> = inputs.iter().map(String::as_str).collect();
    consumer
        .subscribe(&input_refs)
        .map_err(|e| PipelineError::kafka("subscribe to the clean topics", brokers, e))?;
    tracing::info!(zone = %zone.describe(), topics = ?inputs, "consumer started");

    // Learned at each assignment (the first one included: it, too, is a rebalance).
    let mut progress = Progress::default();
    progress.report.worker = opts.worker;
    let mut outage = kafka::BrokerOutage::new(opts.broker_patience, counters);
    let mut buffers: HashMap<(Entity, i32), PartBuffer> = HashMap::new();
    // The bytes held by `buffers`, against `RollPolicy::max_total_bytes`.
    let mut buffered_bytes = 0usize;
    let mut landings = Landings::new(Landing {
        zone,
        consumer,
        dlq: &dlq,
        dlq_topic: &dlq_topic,
        brokers,
        counters,
        writes,
    });
    let mut skipped_commits = kafka::OffsetTracker::default();
    let mut last_check = Instant::now() - Duration::from_secs(1);
    let mut seen_rebalances = 0;
    let rounds = async {
        loop {
            let mut pending = tokio::select! {
                () = cancel.cancelled() => break,
                batch = kafka::next_batch(consumer, Duration::from_millis(200), 50_000, brokers, &mut outage) => batch?,
            };
            let idle = pending.is_empty();
            let rebalances = consumer.context().rebalances();
            if rebalances != seen_rebalances {
                seen_rebalances = rebalances;
                // Files being written belong to the assignment before: finish and commit them
                // before what is durable is learned again, so that learning sees them.
                landings.finish_all(&mut progress).await?;
                // Partitions may have moved: forget what we no longer own, and what was read of
                // a revoked partition (its owner, maybe this worker again, reads it again from the
                // committed offset), then re-learn what is durable.
                let assigned = consumer
                    .assignment()
                    .map_err(|e| PipelineError::kafka("read the assignment", brokers, e))?;
                let revoked = consumer.context().take_revoked();
                buffers.retain(|_, b| {
                    assigned.find_partition(&b.topic, b.partition).is_some()
                        && !revoked.iter().any(|(t, p)| *t == b.topic && *p == b.partition)
                });
                buffered_bytes = buffers.values().map(|b| b.records.bytes()).sum();
                pending.retain(|m| assigned.find_partition(m.topic(), m.partition()).is_some());
                // Records of these partitions are already in `pending`: retry (the broker may be
                // restarting) rather than drop them.
                progress.owned = loop {
                    match resume::resume(zone, consumer, &watermarks, &opts.topics, &opts.group_id, brokers).await {
                        Ok(owned) => break owned,
                        Err(e) => {
                            outage.ride_out(e)?;
                            tokio::time::sleep(Duration::from_secs(1)).await;
                        }
                    }
                };
                progress.committed.clear();
            }
            for msg in pending {
                let Some(entity) = opts.topics.entity_of_clean(msg.topic()) else {
                    continue;
                };
                let (partition, offset) = (msg.partition(), msg.offset());
                let Some(state) = progress.owned.get(&(msg.topic().to_string(), partition)).copied() else {
                    return Err(PipelineError::Other(format!(
                        "internal: a record of {} partition {partition} arrived before its assignment was handled",
                        msg.topic()
                    )));
                };
                StageCounters::add(&counters.input, 1);
                if state.durable.is_some_and(|last| offset <= last) {
                    StageCounters::add(&counters.skipped, 1);
                    progress.report.skipped_already_durable += 1;
                    skipped_commits.processed(msg.topic(), partition, offset);
                    continue;
                }
                let payload = msg.payload().unwrap_or_default();
                StageCounters::add(&counters.bytes, payload.len() as u64);
                let buffer = buffers.entry((entity, partition)).or_insert_with(|| PartBuffer {
                    entity,
                    topic: msg.topic().to_string(),
                    partition,
                    epoch: state.epoch,
                    records: JsonLines::default(),
                    offsets: Vec::new(),
                    next_offset: offset,
                    first_timestamp_ms: msg.timestamp().to_millis(),
                    started: Instant::now(),
                });
                buffer.records.push(payload);
                buffer.offsets.push(offset);
                buffer.next_offset = offset + 1;
                buffered_bytes += payload.len() + 1;
                // The memory bound holds while a batch is taken in, not only after it, and counts
                // the buffers still being written.
                if buffered_bytes + landings.bytes > opts.roll.max_total_bytes {
                    landings.finish_all(&mut progress).await?;
                    let sizes = buffers.iter().map(|(k, b)| (*k, b.records.bytes())).collect();
                    for key in over_budget(sizes, opts.roll.max_total_bytes) {
                        if let Some(buffer) = buffers.remove(&key) {
                            buffered_bytes -= buffer.records.bytes();
                            landings.start(buffer, &mut progress).await?;
                        }
                    }
                    landings.finish_all(&mut progress).await?;
                }
            }
            landings.finish_ready(&mut progress).await?;

            let caught_up_check = last_check.elapsed() >= Duration::from_secs(1) || (idle && opts.stop.only_lag_left());
            let mut lag = None;
            if caught_up_check {
                last_check = Instant::now();
                lag = kafka::query_lag(consumer, &watermarks, &mut outage)?;
                counters.set_lag(lag.unwrap_or(-1));
            }
            if caught_up_check {
                commit_positions_past_markers(
                    consumer,
                    &buffers,
                    &landings,
                    &progress.owned,
                    &mut progress.committed,
                    brokers,
                )?;
            }
            let finishing = opts.stop.reached(lag);
            let mut due: Vec<(usize, (Entity, i32))> = buffers
                .iter()
                .filter(|(_, b)| {
                    finishing
                        || b.offsets.len() >= opts.roll.max_rows
                        || b.records.bytes() >= opts.roll.max_bytes
                        || b.started.elapsed() >= opts.roll.max_age
                })
                .map(|(k, b)| (b.records.bytes(), *k))
                .collect();
            due.sort_unstable_by_key(|(bytes, _)| std::cmp::Reverse(*bytes));
            for (_, key) in due {
                // Partitions fill evenly, so their buffers fall due together: the ones that find
                // no free writer, or whose partition is still being written, stay buffered (within
                // the memory bound) and the loop reads on, until the end, when they are written
                // one after another.
                let waits = |b: &PartBuffer| landings.is_full() || landings.holds(&b.topic, b.partition);
                if !finishing && buffers.get(&key).is_some_and(waits) {
                    continue;
                }
                if let Some(buffer) = buffers.remove(&key) {
                    buffered_bytes -= buffer.records.bytes();
                    landings.start(buffer, &mut progress).await?;
                }
            }
            if !skipped_commits.is_empty() {
                let mut tpl = resume::tagged(&skipped_commits.take()?, &progress.owned, brokers)?;
                // Never move a partition's commit back behind a file landed in this same round.
                tpl = without_backward_moves(&tpl, &progress.committed, brokers)?;
                kafka::commit_sync(consumer, &tpl, brokers)?;
                for elem in tpl.elements() {
                    if let Offset::Offset(next) = elem.offset() {
                        progress
                            .committed
                            .insert((elem.topic().to_string(), elem.partition()), next);
                    }
                }
            }
            if finishing && buffers.is_empty() {
                landings.finish_all(&mut progress).await?;
                commit_positions_past_markers(
                    consumer,
                    &buffers,
                    &landings,
                    &progress.owned,
                    &mut progress.committed,
                    brokers,
                )?;
                break;
            }
        }
        // Cancelled: the files being written are finished and committed; what is still buffered
        // is not committed, so it is re-read next time. Nothing is lost.
        landings.finish_all(&mut progress).await
    }
    .await;
    if let Err(e) = rounds {
        // No file of this run may land after it returns: whoever reads these partitions next (a
        // rejoin of this stage, a restart) learns what is durable from the raw zone, and must
        // find there every file this run will ever write.
        landings.settle(&mut progress).await;
        return Err(e);
    }
    tracing::info!(report = ?progress.report, unwritten_buffers = buffers.len(), "consumer finished");
    Ok(progress.report)
}

/// How many buffers may be written to the raw zone at once while the loop reads on: the two cores
/// of a small laptop, each encoding one file, when the stages upstream have nothing more to do.
const LANDINGS_IN_FLIGHT: usize = 2;

/// Buffers being written to the raw zone, oldest first, each on a task of its own.
///
/// Encoding a file takes a second or more; while a loop waited for it, it read nothing, and in
/// `lab demo` the backpressure then held back the transform and the producer too (measured: the
/// transform fell from ~110k to 4k–40k msg/s whenever files were written). The loop now reads on,
/// and the offsets after each file are committed in the order the files were started, once each
/// is durable, exactly as when the loop waited.
struct Landings<'a, Z: RawZone, C: ConsumerContext + 'static> {
    to: Landing<'a, Z, C>,
    queue: VecDeque<InFlight>,
    /// Bytes of the buffers in `queue` (still in memory until written).
    bytes: usize,
}

/// What the loop keeps about its partitions, updated as files land.
#[derive(Default)]
struct Progress {
    /// Owned partitions, each with its epoch and how far it is durable.
    owned: Owned,
    report: SinkReport,
    /// The last offset committed per partition, so a position is only committed when it moved.
    committed: HashMap<(String, i32), i64>,
}

/// One buffer being written.
struct InFlight {
    topic: String,
    partition: i32,
    bytes: usize,
    task: tokio::task::JoinHandle<Result<Landed, PipelineError>>,
}

/// A buffer written: its file (`None` if every record went to the dead-letter topic) and the
/// offsets of the records that went there.
struct Landed {
    buffer: PartBuffer,
    part: Option<PartFile>,
    dead_lettered: Vec<i64>,
}

impl<'a, Z: RawZone, C: ConsumerContext + 'static> Landings<'a, Z, C> {
    fn new(to: Landing<'a, Z, C>) -> Self {
        Self {
            to,
            queue: VecDeque::new(),
            bytes: 0,
        }
    }

    fn is_full(&self) -> bool {
        self.queue.len() >= LANDINGS_IN_FLIGHT
    }

    /// Whether a buffer of this partition is being written (its records are not durable yet).
    fn holds(&self, topic: &str, partition: i32) -> bool {
        self.queue.iter().any(|f| f.topic == topic && f.partition == partition)
    }

    /// Starts writing `buffer`, after the oldest writes when [`LANDINGS_IN_FLIGHT`] are going, and
    /// never beside a write of the same partition: a restart learns how far a partition is durable
    /// from the highest offset in its files, so a later file landing before an earlier one, then a
    /// crash, would have the earlier file's records skipped as written.
    async fn start(&mut self, buffer: PartBuffer, progress: &mut Progress) -> Result<(), PipelineError> {
        while self.is_full() || self.holds(&buffer.topic, buffer.partition) {
            self.finish_oldest(progress).await?;
        }
        let bytes = buffer.records.bytes();
        self.bytes += bytes;
        self.queue.push_back(InFlight {
            topic: buffer.topic.clone(),
            partition: buffer.partition,
            bytes,
            task: self.to.spawn(buffer),
        });
        Ok(())
    }

    /// Waits for the oldest write and commits the position after it.
    async fn finish_oldest(&mut self, progress: &mut Progress) -> Result<(), PipelineError> {
        let Some(flight) = self.queue.pop_front() else {
            return Ok(());
        };
        self.bytes -= flight.bytes;
        let landed = flight
            .task
            .await
            .map_err(|e| PipelineError::Other(format!("internal: writing a raw-zone file failed: {e}")))??;
        self.to.finish(landed, progress)
    }

    /// Commits after the writes that are done, oldest first, without waiting for the others.
    async fn finish_ready(&mut self, progress: &mut Progress) -> Result<(), PipelineError> {
        while self.queue.front().is_some_and(|f| f.task.is_finished()) {
            self.finish_oldest(progress).await?;
        }
        Ok(())
    }

    async fn finish_all(&mut self, progress: &mut Progress) -> Result<(), PipelineError> {
        while !self.queue.is_empty() {
            self.finish_oldest(progress).await?;
        }
        Ok(())
    }

    /// Waits for every write to end, commits nothing: the loop is failing. What landed is still
    /// counted as written: it is in the raw zone, and the next reader skips it (a rejoin of this
    /// stage shares its counters, so without this the Pipeline view would show fewer records
    /// written than the raw zone holds, for good).
    async fn settle(&mut self, progress: &mut Progress) {
        for flight in self.queue.drain(..) {
            // A file that landed is found and skipped by the next reader, uncommitted or not.
            match flight.task.await {
                Ok(Ok(landed)) => {
                    // Uncommitted, so the next reader reads again what lies past the file (or the
                    // whole buffer, without one) and dead-letters it again: count only the dead
                    // letters it will skip.
                    let durable = landed.part.as_ref().map_or(-1, |p| p.last_offset);
                    let skipped = landed.dead_lettered.iter().filter(|o| **o <= durable).count();
                    self.to.count(&landed, skipped, progress);
                }
                Ok(Err(e)) => tracing::warn!(error = %e, "a raw-zone write failed as the consumer stopped"),
                Err(e) => tracing::warn!(error = %e, "a raw-zone write ended abnormally as the consumer stopped"),
            }
        }
        self.bytes = 0;
    }
}

/// What landing a buffer needs: where it goes and whom to tell.
struct Landing<'a, Z: RawZone, C: ConsumerContext + 'static> {
    zone: &'a Z,
    consumer: &'a StreamConsumer<C>,
    dlq: &'a FutureProducer,
    dlq_topic: &'a str,
    brokers: &'a str,
    counters: &'a Arc<StageCounters>,
    writes: &'a Arc<WritesInFlight>,
}

impl<Z: RawZone, C: ConsumerContext + 'static> Landing<'_, Z, C> {
    /// Writes one buffer to the raw zone (its undecodable records to the DLQ) on a task of its own.
    fn spawn(&self, mut buffer: PartBuffer) -> tokio::task::JoinHandle<Result<Landed, PipelineError>> {
        let (zone, dlq) = (self.zone.clone(), self.dlq.clone());
        let (dlq_topic, brokers) = (self.dlq_topic.to_string(), self.brokers.to_string());
        let under_way = self.writes.begin();
        tokio::spawn(async move {
            let _under_way = under_way;
            let (dead_lettered, encoded) = encode_or_dead_letter(&mut buffer, &dlq, &dlq_topic, &brokers).await?;
            let part = match encoded {
                Some(bytes) => Some(write_part(&zone, &buffer, bytes).await?),
                None => None,
            };
            Ok(Landed {
                buffer,
                part,
                dead_lettered,
            })
        })
    }

    /// Counts a written buffer and commits the position after it.
    fn finish(&self, landed: Landed, progress: &mut Progress) -> Result<(), PipelineError> {
        self.count(&landed, landed.dead_lettered.len(), progress);
        let buffer = landed.buffer;
        commit_next(self.consumer, &buffer, &progress.owned, self.brokers)?;
        progress
            .committed
            .insert((buffer.topic, buffer.partition), buffer.next_offset);
        Ok(())
    }

    /// Counts what a landed buffer put in the raw zone, and `dead_lettered` of the records it
    /// sent to the dead-letter topic.
    fn count(&self, landed: &Landed, dead_lettered: usize, progress: &mut Progress) {
        let Landed { buffer, part, .. } = landed;
        let dead_lettered = dead_lettered as u64;
        StageCounters::add(&self.counters.dlq, dead_lettered);
        progress.report.dead_lettered += dead_lettered;
        if let Some(part) = part {
            if let Some(state) = progress.owned.get_mut(&(buffer.topic.clone(), buffer.partition)) {
                state.durable = Some(part.last_offset);
            }
            progress.report.files_written += 1;
            progress.report.records_written += buffer.offsets.len() as u64;
            StageCounters::add(&self.counters.files, 1);
            StageCounters::add(&self.counters.output, buffer.offsets.len() as u64);
        }
    }
}

/// `offsets` without the partitions whose last commit (`committed`) is already further on.
fn without_backward_moves(
    offsets: &TopicPartitionList,
    committed: &HashMap<(String, i32), i64>,
    brokers: &str,
) -> Result<TopicPartitionList, PipelineError> {
    let mut out = TopicPartitionList::new();
    for elem in offsets.elements() {
        let (topic, partition) = (elem.topic(), elem.partition());
        if let (Offset::Offset(next), Some(done)) = (elem.offset(), committed.get(&(topic.to_string(), partition)))
            && next <= *done
        {
            continue;
        }
        out.add_partition_offset(topic, partition, elem.offset())
            .map_err(|e| PipelineError::kafka("build the offsets to commit", brokers, e))?;
        if let Some(mut copy) = out.find_partition(topic, partition) {
            copy.set_metadata(elem.metadata());
        }
    }
    Ok(out)
}

/// Commits the position after a handled buffer, tagged with the buffer's epoch.
fn commit_next<C: ConsumerContext + 'static>(
    consumer: &StreamConsumer<C>,
    buffer: &PartBuffer,
    owned: &Owned,
    brokers: &str,
) -> Result<(), PipelineError> {
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(&buffer.topic, buffer.partition, Offset::Offset(buffer.next_offset))
        .map_err(|e| PipelineError::kafka("build the offset to commit", brokers, e))?;
    // If a rebalance rejects it, the file is durable anyway: whoever reads the partition next
    // finds its offsets in the raw zone and skips them.
    kafka::commit_sync(consumer, &resume::tagged(&tpl, owned, brokers)?, brokers)
}

/// Commits the read position of every partition with nothing buffered or being written, when it
/// moved past the last offset committed for it (`committed`, kept by the caller).
///
/// The clean topics are written in transactions, and each commit leaves a control marker after
/// the data: committing "last record + 1" would leave the group one message behind per partition
/// for ever, so `lab status`, the monitor and Kafka's own tools would never show lag 0. Everything
/// before the position of a partition without a buffer is durable (written, skipped as already
/// written, or dead-lettered), so committing it loses nothing.
fn commit_positions_past_markers<Z: RawZone, C: ConsumerContext + 'static>(
    consumer: &StreamConsumer<C>,
    buffers: &HashMap<(Entity, i32), PartBuffer>,
    landings: &Landings<'_, Z, C>,
    owned: &Owned,
    committed: &mut HashMap<(String, i32), i64>,
    brokers: &str,
) -> Result<(), PipelineError> {
    let position = consumer
        .position()
        .map_err(|e| PipelineError::kafka("read the consumer position", brokers, e))?;
    let mut tpl = TopicPartitionList::new();
    let mut moved = Vec::new();
    for elem in position.elements() {
        let (topic, partition) = (elem.topic(), elem.partition());
        let Offset::Offset(next) = elem.offset() else {
            continue;
        };
        let buffered =
            buffers.values().any(|b| b.topic == topic && b.partition == partition) || landings.holds(topic, partition);
        let key = (topic.to_string(), partition);
        if buffered || committed.get(&key) == Some(&next) {
            continue;
        }
        tpl.add_partition_offset(topic, partition, Offset::Offset(next))
            .map_err(|e| PipelineError::kafka("build the offsets to commit", brokers, e))?;
        moved.push((key, next));
    }
    let tpl = resume::tagged(&tpl, owned, brokers)?;
    if tpl.count() > 0 {
        tracing::debug!(positions = ?moved, "committing read positions of partitions with nothing buffered");
        kafka::commit_sync(consumer, &tpl, brokers)?;
        committed.extend(moved);
    }
    Ok(())
}

/// Puts a buffer's encoded Parquet file in the raw zone; returns what it wrote.
async fn write_part<Z: RawZone>(zone: &Z, buffer: &PartBuffer, bytes: Vec<u8>) -> Result<PartFile, PipelineError> {
    let (first_offset, last_offset) = match (buffer.offsets.first(), buffer.offsets.last()) {
        (Some(first), Some(last)) => (*first, *last),
        _ => return Err(PipelineError::Other("internal: empty buffer flushed".into())),
    };
    let part = PartFile {
        partition: buffer.partition,
        first_offset,
        last_offset,
        epoch: buffer.epoch,
    };
    // The date partition comes from the first record's Kafka timestamp, so a re-read after a
    // crash lands in the same directory as the first attempt.
    let date = buffer
        .first_timestamp_ms
        .and_then(DateTime::<Utc>::from_timestamp_millis)
        .unwrap_or_else(Utc::now)
        .format("%Y-%m-%d")
        .to_string();
    zone.put_atomic(&part.path(buffer.entity, &date), bytes).await?;
    tracing::debug!(entity = %buffer.entity, ?part, "raw-zone file written");
    Ok(part)
}

/// Encodes a buffer for writing, first moving records that do not fit the entity's schema (say,
/// written to a clean topic by some other producer) to the dead-letter topic, so that one bad
/// record cannot stop the consumer again on every restart. Returns the offsets of those moved and
/// the encoded file of the remaining records (`None` if none remain).
async fn encode_or_dead_letter(
    buffer: &mut PartBuffer,
    dlq: &FutureProducer,
    dlq_topic: &str,
    brokers: &str,
) -> Result<(Vec<i64>, Option<Vec<u8>>), PipelineError> {
    // Parquet encoding is CPU work (tens of MB per file): off the async worker.
    let encode = |buffer: &PartBuffer| {
        tokio::task::block_in_place(|| {
            part::encode(
                buffer.entity,
                buffer.partition,
                &buffer.records,
                &buffer.offsets,
                part::ROWS_PER_SLICE,
            )
        })
    };
    // The common case: every record fits, in one pass.
    match encode(buffer) {
        Ok(bytes) => return Ok((Vec::new(), Some(bytes))),
        Err(e @ part::EncodeError::Parquet(_)) => return Err(e.of(buffer.entity)),
        Err(part::EncodeError::Records(_)) => {}
    }
    let (mut records, mut offsets) = (JsonLines::default(), Vec::new());
    let mut moved = Vec::new();
    for (record, &offset) in buffer.records.iter().zip(&buffer.offsets) {
        match part::fits(buffer.entity, buffer.partition, record, offset) {
            Ok(()) => {
                records.push(record);
                offsets.push(offset);
            }
            Err(detail) => {
                let rejection = Rejection {
                    code: "consumer_schema",
                    detail: format!("cannot write Parquet for {}: {detail}", buffer.entity),
                };
                let headers = kafka::dlq_headers(&rejection, &buffer.topic, buffer.partition, offset);
                let record: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(dlq_topic).payload(record).headers(headers);
                dlq.send(record, Duration::from_secs(60))
                    .await
                    .map_err(|(e, _)| PipelineError::kafka("dead-letter an undecodable record", brokers, e))?;
                tracing::warn!(topic = %buffer.topic, partition = buffer.partition, offset, reason = %rejection.header(), "dead-lettered");
                moved.push(offset);
            }
        }
    }
    (buffer.records, buffer.offsets) = (records, offsets);
    if buffer.offsets.is_empty() {
        return Ok((moved, None));
    }
    let bytes = encode(buffer).map_err(|e| e.of(buffer.entity))?;
    Ok((moved, Some(bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering;

    /// A revoke waits for the raw-zone files being written: their partitions' next owner learns
    /// what is durable from the files, so a file landing after the revoke would be written twice.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_revoke_waits_for_the_files_being_written() {
        let writes = Arc::new(WritesInFlight::default());
        let events = group_events(&writes);
        let landed = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let under_way = writes.begin();
        let (open, gate) = tokio::sync::oneshot::channel::<()>();
        let flag = Arc::clone(&landed);
        let write = tokio::spawn(async move {
            drop(gate.await);
            flag.store(true, Ordering::SeqCst);
            drop(under_way);
        });
        let (started, starting) = tokio::sync::oneshot::channel::<()>();
        let flag = Arc::clone(&landed);
        let revoke = tokio::spawn(async move {
            started.send(()).unwrap();
            // What the consumer's poll runs before it gives partitions up.
            events.before_revoking();
            flag.load(Ordering::SeqCst)
        });
        // The file lands only once the revoke has begun: a revoke that does not wait for it
        // returns before.
        starting.await.unwrap();
        open.send(()).unwrap();
        assert!(revoke.await.unwrap(), "the revoke went on before the file landed");
        write.await.unwrap();
        // Nothing under way: a revoke does not wait (and needs no runtime worker to block).
        assert!(writes.idle());
        group_events(&writes).before_revoking();
    }

    #[test]
    fn over_the_budget_the_largest_buffers_go_first() {
        let sizes = vec![("a", 10), ("b", 50), ("c", 30), ("d", 5)];
        // 95 bytes held, 40 allowed: writing b (50) leaves 45, then c (30) leaves 15.
        assert_eq!(over_budget(sizes.clone(), 40), vec!["b", "c"]);
        assert_eq!(over_budget(sizes.clone(), 95), Vec::<&str>::new());
        assert_eq!(over_budget(sizes, 0), vec!["b", "c", "a", "d"]);
    }

    /// A local raw zone whose writes wait until the test opens the gate.
    #[derive(Clone)]
    struct GatedZone {
        inner: crate::storage::LocalRawZone,
        gate: Arc<tokio::sync::Semaphore>,
        started: Arc<std::sync::atomic::AtomicUsize>,
    }

    impl RawZone for GatedZone {
        async fn put_atomic(&self, rel_path: &str, data: Vec<u8>) -> Result<(), crate::storage::StorageError> {
            self.started.fetch_add(1, Ordering::SeqCst);
            let _pass = self.gate.acquire().await.expect("gate open");
            self.inner.put_atomic(rel_path, data).await
        }
        async fn list_sized(
            &self,
            rel_dir: &str,
        ) -> Result<Vec<crate::storage::ZoneFile>, crate::storage::StorageError> {
            self.inner.list_sized(rel_dir).await
        }
        async fn read(&self, rel_path: &str) -> Result<bytes::Bytes, crate::storage::StorageError> {
            self.inner.read(rel_path).await
        }
        async fn remove(&self, rel_path: &str) -> Result<(), crate::storage::StorageError> {
            self.inner.remove(rel_path).await
        }
        async fn create_new(&self, rel_path: &str, data: Vec<u8>) -> Result<bool, crate::storage::StorageError> {
            self.inner.create_new(rel_path, data).await
        }
        fn url_of(&self, rel_path: &str) -> String {
            self.inner.url_of(rel_path)
        }
        fn describe(&self) -> String {
            self.inner.describe()
        }
    }

    /// Waits (up to a minute: a condition, not a timing) until `done` holds.
    async fn until(what: &str, done: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !done() {
            assert!(Instant::now() < deadline, "gave up waiting until {what}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The loop reads on while a file is being written, and commits nothing of that file (not even
    /// the position past it, with nothing else of its partition buffered) until it is durable; a
    /// second file of the same partition waits for the first.
    /// In the embedded broker: 10 reviews on partition 0 fill a file (10 rows), whose write waits
    /// on a gate; 5 on partition 1 and 10 more on partition 0 must still be read meanwhile.
    #[tokio::test(flavor = "multi_thread")]
    async fn reads_on_while_a_file_is_written_and_commits_only_what_is_durable() {
        use crate::pipeline::embedded::EmbeddedBroker;
        use crate::pipeline::stage::StageContext;
        use rdkafka::consumer::BaseConsumer;
        use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

        let prefix = "gated";
        let topics = Topics::new(prefix);
        let broker = EmbeddedBroker::for_stages(&topics, 2).unwrap();
        let brokers = broker.brokers().to_string();
        let dir = tempfile::tempdir().unwrap();
        let zone = GatedZone {
            inner: crate::storage::LocalRawZone::new(dir.path()),
            gate: Arc::new(tokio::sync::Semaphore::new(0)),
            started: Arc::default(),
        };
        let mut opts =
            StageContext::embedded(&brokers, prefix, dir.path().to_path_buf(), dir.path()).sink(StopWhen::Cancelled);
        opts.roll.max_rows = 10;
        opts.roll.max_age = Duration::from_secs(3600);
        let reviews = topics.clean(Entity::Review);
        let producer: BaseProducer = kafka::producer_config(&brokers).create().unwrap();
        let send = |partition: i32, ids: std::ops::Range<u32>| {
            for i in ids {
                let raw = format!(
                    r#"{{"review_id":"r{i}","user_id":"u1","business_id":"b1","stars":4.0,"text":"ok","date":"2020-01-02 03:04:05"}}"#
                );
                let json = crate::pipeline::clean::clean(Entity::Review, raw.as_bytes())
                    .unwrap()
                    .json;
                let key = format!("r{i}");
                producer
                    .send(BaseRecord::to(&reviews).partition(partition).key(&key).payload(&json))
                    .unwrap();
            }
            producer.flush(Duration::from_secs(30)).unwrap();
        };
        let committed = || {
            let reader: BaseConsumer = kafka::consumer_config(&brokers, &opts.group_id, opts.worker, opts.broker)
                .create()
                .unwrap();
            let mut tpl = TopicPartitionList::new();
            tpl.add_partition(&reviews, 0);
            tpl.add_partition(&reviews, 1);
            let got = reader.committed_offsets(tpl, Duration::from_secs(10)).unwrap();
            (0..2)
                .map(|p| match got.find_partition(&reviews, p).unwrap().offset() {
                    Offset::Offset(o) => o,
                    _ => -1,
                })
                .collect::<Vec<_>>()
        };

        let (counters, cancel) = (Arc::new(StageCounters::default()), CancellationToken::new());
        let sink = {
            let (zone, opts, counters, cancel) = (zone.clone(), opts.clone(), counters.clone(), cancel.clone());
            tokio::spawn(async move { run_sink(&zone, &opts, &counters, &cancel).await })
        };
        send(0, 0..10);
        until("the first file's write started", || {
            zone.started.load(Ordering::SeqCst) == 1
        })
        .await;
        send(1, 10..15);
        send(0, 15..25);
        until("the records after it were read", || {
            counters.input.load(Ordering::SeqCst) == 25
        })
        .await;
        // Two lag checks later the loop has also tried committing positions past the partitions
        // it holds nothing of.
        for _ in 0..2 {
            counters.lag.store(-7, Ordering::SeqCst);
            until("a lag check", || counters.lag.load(Ordering::SeqCst) != -7).await;
        }
        // 0: the commit that starts the raw zone's epoch for each partition, nothing after it.
        assert_eq!(
            tokio::task::block_in_place(committed),
            vec![0, 0],
            "committed before the file was durable"
        );
        assert_eq!(counters.output.load(Ordering::SeqCst), 0);
        assert_eq!(
            zone.started.load(Ordering::SeqCst),
            1,
            "a second file of partition 0 was started while its first was being written"
        );

        zone.gate.add_permits(1_000);
        until("both files of partition 0 were counted", || {
            counters.output.load(Ordering::SeqCst) == 20
        })
        .await;
        send(1, 25..30);
        until("the file of partition 1 was counted", || {
            counters.output.load(Ordering::SeqCst) == 30
        })
        .await;
        cancel.cancel();
        let report = sink.await.unwrap().unwrap();
        assert_eq!((report.records_written, report.files_written), (30, 3));
        assert_eq!(tokio::task::block_in_place(committed), vec![20, 10]);
        let files = zone.inner.list_files(Entity::Review.name()).await.unwrap();
        assert_eq!(files.len(), 3, "{files:?}");
    }
}
