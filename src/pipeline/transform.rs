//! Stream transform: raw topics → `<topic>.clean`, invalid records → `<prefix>.dlq`.
//!
//! At-least-once: a batch of input offsets is committed only after every output message of the
//! batch has been acknowledged. A crash between the two re-sends the batch; downstream dedupes by id.

use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use rdkafka::Message;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{BorrowedMessage, Header, Headers, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
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

#[derive(Debug, Clone, Default, Serialize)]
pub struct TransformReport {
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
    let producer: FutureProducer = kafka::producer_config(brokers)
        .set("linger.ms", "5")
        .create()
        .map_err(|e| PipelineError::kafka("create the transform producer", brokers, e))?;
    let watermarks = kafka::watermark_client(brokers)?;
    let inputs: Vec<String> = Entity::ALL.iter().map(|e| opts.topics.raw(*e)).collect();
    let input_refs: Vec<&str> = inputs.iter().map(String::as_str).collect();
    consumer
        .subscribe(&input_refs)
        .map_err(|e| PipelineError::kafka("subscribe to the raw topics", brokers, e))?;
    tracing::info!(group = %opts.group_id, topics = ?inputs, "transform started");

    let mut report = TransformReport::default();
    let mut last_lag_check = tokio::time::Instant::now() - LAG_INTERVAL;
    loop {
        if let Some(bp) = &opts.backpressure {
            while bp.should_wait(counters.out_bytes.load(std::sync::atomic::Ordering::Relaxed))
                && !cancel.is_cancelled()
            {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }
        let first = tokio::select! {
            () = cancel.cancelled() => break,
            msg = tokio::time::timeout(IDLE_POLL, consumer.recv()) => msg,
        };
        let mut batch = Vec::new();
        if let Ok(msg) = first {
            batch.push(msg.map_err(|e| PipelineError::kafka("consume raw records", brokers, e))?);
            while batch.len() < MAX_BATCH {
                match consumer.recv().now_or_never() {
                    Some(msg) => batch.push(msg.map_err(|e| PipelineError::kafka("consume raw records", brokers, e))?),
                    None => break,
                }
            }
        }
        if !batch.is_empty() {
            let offsets = process_batch(&batch, opts, &producer, counters, &mut report).await?;
            drop(batch);
            // Synchronous: once this returns the batch will not be re-read after a crash.
            kafka::commit_sync(&consumer, &offsets, brokers)?;
        }
        if last_lag_check.elapsed() >= LAG_INTERVAL {
            last_lag_check = tokio::time::Instant::now();
            let lag = tokio::task::block_in_place(|| kafka::assigned_lag(&consumer, &watermarks))?;
            counters.set_lag(lag.unwrap_or(-1));
            if lag == Some(0) && opts.stop.upstream_done() && matches!(opts.stop, StopWhen::CaughtUp { .. }) {
                break;
            }
        }
    }
    tracing::info!(?report, "transform finished");
    Ok(report)
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
    let reason = rejection.header();
    let partition = msg.partition().to_string();
    let offset = msg.offset().to_string();
    let mut headers = OwnedHeaders::new()
        .insert(Header {
            key: "lab.reason",
            value: Some(reason.as_bytes()),
        })
        .insert(Header {
            key: "lab.reason.code",
            value: Some(rejection.code.as_bytes()),
        })
        .insert(Header {
            key: "lab.source.topic",
            value: Some(msg.topic().as_bytes()),
        })
        .insert(Header {
            key: "lab.source.partition",
            value: Some(partition.as_bytes()),
        })
        .insert(Header {
            key: "lab.source.offset",
            value: Some(offset.as_bytes()),
        });
    if let Some(origin) = msg
        .headers()
        .and_then(|h| h.iter().find(|h| h.key == "lab.source"))
        .and_then(|h| h.value)
    {
        headers = headers.insert(Header {
            key: "lab.source",
            value: Some(origin),
        });
    }
    headers
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
