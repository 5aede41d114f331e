//! Stream transform: raw topics → `<topic>.clean`, invalid records → `<prefix>.dlq`.
//!
//! Delivery, chosen at start:
//! - **exactly-once** where the broker supports transactions: each batch's clean records, its
//!   dead letters and its input offsets are committed in one Kafka transaction, and readers use
//!   `isolation.level=read_committed`, so a crash at any point leaves either all of a batch or none
//!   of it visible. The transactional id is the consumer group, so a restarted transform fences a
//!   stale one (run one transform per group in this mode).
//! - **at-least-once** otherwise: input offsets are committed only after every output of the batch
//!   is acknowledged; a crash between the two re-sends the batch and downstream dedupes by id.

use std::sync::Arc;
use std::time::Duration;

use rdkafka::Message;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{BorrowedMessage, Header, Headers, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::clean::{Rejection, clean};
use super::kafka::{self, OffsetTracker};
use super::{Backpressure, PipelineError, StageCounters, StopWhen, Topics};
use crate::dataset::Entity;

#[derive(Debug, Clone)]
pub struct TransformOptions {
    pub brokers: String,
    pub topics: Topics,
    pub group_id: String,
    pub stop: StopWhen,
    /// `fetch.wait.max.ms` (see [`kafka::DEFAULT_FETCH_WAIT_MS`]).
    pub fetch_wait_ms: u32,
    /// Stay at most this far ahead of the consumer (used by `lab demo`).
    pub backpressure: Option<Backpressure>,
}

/// Stage name in the default consumer group (see [`kafka::default_group`]).
pub const GROUP_STAGE: &str = "transform";
/// Most messages handled between two commits.
const MAX_BATCH: usize = 20_000;
/// How long to wait for a message before checking whether the stage is done.
const IDLE_POLL: Duration = Duration::from_millis(200);
/// How often the lag gauge is refreshed.
const LAG_INTERVAL: Duration = Duration::from_secs(1);

/// How the transform hands its results downstream (see the module docs).
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Delivery {
    ExactlyOnce,
    #[default]
    AtLeastOnce,
}

/// Longest a transactional call may take before the stage fails (and restarts from the last commit).
const TXN_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Default, Serialize)]
pub struct TransformReport {
    pub delivery: Delivery,
    pub consumed: u64,
    pub clean: u64,
    pub dead_lettered: u64,
}

/// Runs until cancelled or, with [`StopWhen::CaughtUp`], until the raw topics are drained.
pub async fn run_transform(
    opts: &TransformOptions,
    counters: &Arc<StageCounters>,
    cancel: &CancellationToken,
) -> Result<TransformReport, PipelineError> {
    let result = transform_loop(opts, counters, cancel).await;
    counters.finish();
    result
}

async fn transform_loop(
    opts: &TransformOptions,
    counters: &Arc<StageCounters>,
    cancel: &CancellationToken,
) -> Result<TransformReport, PipelineError> {
    let brokers = opts.brokers.as_str();
    let consumer: StreamConsumer = kafka::consumer_config(brokers, &opts.group_id, opts.fetch_wait_ms)
        .create()
        .map_err(|e| PipelineError::kafka("create the transform consumer", brokers, e))?;
    let (producer, delivery) = create_producer(brokers, &opts.group_id)?;
    let watermarks = kafka::watermark_client(brokers)?;
    let inputs: Vec<String> = Entity::ALL.iter().map(|e| opts.topics.raw(*e)).collect();
    let input_refs: Vec<&str> = inputs.iter().map(String::as_str).collect();
    consumer
        .subscribe(&input_refs)
        .map_err(|e| PipelineError::kafka("subscribe to the raw topics", brokers, e))?;
    tracing::info!(group = %opts.group_id, topics = ?inputs, ?delivery, "transform started");

    let mut report = TransformReport {
        delivery,
        ..TransformReport::default()
    };
    let mut last_lag_check = tokio::time::Instant::now() - LAG_INTERVAL;
    loop {
        if let Some(bp) = &opts.backpressure {
            while bp.should_wait(counters) && !cancel.is_cancelled() {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }
        let batch = tokio::select! {
            () = cancel.cancelled() => break,
            batch = kafka::next_batch(&consumer, IDLE_POLL, MAX_BATCH, brokers) => batch?,
        };
        if !batch.is_empty() {
            match delivery {
                Delivery::ExactlyOnce => {
                    let result = transactional_batch(&batch, &consumer, opts, &producer, counters, &mut report).await;
                    if let Err(e) = result {
                        // Nothing of this batch becomes visible; the next run resumes from the last
                        // committed transaction.
                        let abort = tokio::task::block_in_place(|| producer.abort_transaction(TXN_TIMEOUT));
                        if let Err(abort) = abort {
                            tracing::warn!(error = %abort, "aborting the failed transaction failed too");
                        }
                        return Err(e);
                    }
                }
                Delivery::AtLeastOnce => {
                    let offsets = process_batch(&batch, opts, &producer, counters, &mut report).await?;
                    // Synchronous: once this returns the batch will not be re-read after a crash.
                    kafka::commit_sync(&consumer, &offsets, brokers)?;
                }
            }
            drop(batch);
        }
        if last_lag_check.elapsed() >= LAG_INTERVAL {
            last_lag_check = tokio::time::Instant::now();
            let lag = tokio::task::block_in_place(|| kafka::assigned_lag(&consumer, &watermarks))?;
            counters.set_lag(lag.unwrap_or(-1));
            if opts.stop.reached(lag) {
                break;
            }
        }
    }
    tracing::info!(?report, "transform finished");
    Ok(report)
}

/// A transactional producer when the broker supports transactions, else an idempotent one.
fn create_producer(brokers: &str, group_id: &str) -> Result<(FutureProducer, Delivery), PipelineError> {
    let mut config = kafka::producer_config(brokers);
    config.set("linger.ms", "5");
    let transactional: FutureProducer = config
        .clone()
        .set("transactional.id", group_id)
        // A message may not outlive the transaction it belongs to.
        .set("transaction.timeout.ms", "60000")
        .set("message.timeout.ms", "60000")
        .create()
        .map_err(|e| PipelineError::kafka("create the transform producer", brokers, e))?;
    // Only the broker's answer decides: a broker without transactions fails InitProducerId.
    match tokio::task::block_in_place(|| transactional.init_transactions(TXN_TIMEOUT)) {
        Ok(()) => Ok((transactional, Delivery::ExactlyOnce)),
        Err(e) => {
            tracing::warn!(error = %e, "the broker does not support transactions; the transform runs at-least-once");
            let producer = config
                .create()
                .map_err(|e| PipelineError::kafka("create the transform producer", brokers, e))?;
            Ok((producer, Delivery::AtLeastOnce))
        }
    }
}

/// One batch in one transaction: outputs, dead letters and input offsets commit together.
async fn transactional_batch(
    batch: &[BorrowedMessage<'_>],
    consumer: &StreamConsumer,
    opts: &TransformOptions,
    producer: &FutureProducer,
    counters: &StageCounters,
    report: &mut TransformReport,
) -> Result<(), PipelineError> {
    let brokers = opts.brokers.as_str();
    let txn_err = |action: &str| {
        let action = action.to_string();
        move |e| PipelineError::kafka(&action, brokers, e)
    };
    producer.begin_transaction().map_err(txn_err("begin a transaction"))?;
    let offsets = process_batch(batch, opts, producer, counters, report).await?;
    let group = consumer
        .group_metadata()
        .ok_or_else(|| PipelineError::kafka("read the consumer group metadata", brokers, "not in a group"))?;
    tokio::task::block_in_place(|| {
        producer.send_offsets_to_transaction(&offsets, &group, TXN_TIMEOUT)?;
        producer.commit_transaction(TXN_TIMEOUT)
    })
    .map_err(txn_err("commit the transaction"))
}

/// Cleans and forwards one batch, waits for every delivery, and returns the offsets to commit.
async fn process_batch(
    batch: &[BorrowedMessage<'_>],
    opts: &TransformOptions,
    producer: &FutureProducer,
    counters: &StageCounters,
    report: &mut TransformReport,
) -> Result<rdkafka::TopicPartitionList, PipelineError> {
    let brokers = opts.brokers.as_str();
    let dlq_topic = opts.topics.dlq();
    let mut deliveries = Vec::with_capacity(batch.len());
    let mut offsets = OffsetTracker::default();
    for msg in batch {
        let payload = msg.payload().unwrap_or_default();
        StageCounters::add(&counters.input, 1);
        StageCounters::add(&counters.bytes, payload.len() as u64);
        report.consumed += 1;
        offsets.processed(msg.topic(), msg.partition(), msg.offset());
        let entity = opts.topics.entity_of_raw(msg.topic());
        let outcome = match entity {
            Some(entity) => clean(entity, payload).map(|json| (entity, json)),
            None => Err(Rejection {
                code: "unknown_topic",
                detail: format!("no entity for topic {}", msg.topic()),
            }),
        };
        let delivery = match outcome {
            Ok((entity, json)) => {
                report.clean += 1;
                StageCounters::add(&counters.out_bytes, json.len() as u64);
                let topic = opts.topics.clean(entity);
                let mut record = FutureRecord::to(&topic).payload(&json);
                if let Some(key) = msg.key() {
                    record = record.key(key);
                }
                send(producer, record, brokers).await?
            }
            Err(rejection) => {
                report.dead_lettered += 1;
                StageCounters::add(&counters.dlq, 1);
                tracing::debug!(topic = msg.topic(), offset = msg.offset(), reason = %rejection.header(), "dead-lettered");
                let headers = dlq_headers(msg, &rejection);
                let original = payload.to_vec();
                let mut record = FutureRecord::to(&dlq_topic).payload(&original).headers(headers);
                if let Some(key) = msg.key() {
                    record = record.key(key);
                }
                send(producer, record, brokers).await?
            }
        };
        deliveries.push(delivery);
    }
    for delivery in deliveries {
        match delivery.await {
            Ok(Ok(_)) => StageCounters::add(&counters.output, 1),
            Ok(Err((e, _))) => return Err(PipelineError::kafka("deliver a transformed record", brokers, e)),
            Err(_) => {
                return Err(PipelineError::kafka(
                    "deliver a transformed record",
                    brokers,
                    "producer closed",
                ));
            }
        }
    }
    offsets.take()
}

/// Headers a dead-lettered record carries: why, and where it came from.
fn dlq_headers(msg: &BorrowedMessage<'_>, rejection: &Rejection) -> OwnedHeaders {
    let headers = kafka::dlq_headers(rejection, msg.topic(), msg.partition(), msg.offset());
    // The producer marks lines it could not parse with their file and line number; keep that.
    match msg
        .headers()
        .and_then(|h| h.iter().find(|h| h.key == "lab.source"))
        .and_then(|h| h.value)
    {
        Some(origin) => headers.insert(Header {
            key: "lab.source",
            value: Some(origin),
        }),
        None => headers,
    }
}

/// Enqueues a record, waiting for queue space when librdkafka's local queue is full.
async fn send<'a>(
    producer: &FutureProducer,
    mut record: FutureRecord<'a, [u8], Vec<u8>>,
    brokers: &str,
) -> Result<rdkafka::producer::DeliveryFuture, PipelineError> {
    loop {
        match producer.send_result(record) {
            Ok(delivery) => return Ok(delivery),
            Err((rdkafka::error::KafkaError::MessageProduction(rdkafka::types::RDKafkaErrorCode::QueueFull), back)) => {
                record = back;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            Err((e, _)) => return Err(PipelineError::kafka("queue a transformed record", brokers, e)),
        }
    }
}
