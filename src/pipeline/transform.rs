//! Stream transform: raw topics → `<topic>.clean`, invalid records → `<prefix>.dlq`.
//!
//! Delivery, chosen at start:
//! - **exactly-once** where the broker supports transactions: each batch's clean records, its
//!   dead letters and its input offsets are committed in one Kafka transaction, and readers use
//!   `isolation.level=read_committed`, so a crash at any point leaves either all of a batch or none
//!   of it visible. The transactional id is the worker's member name (the group, or `<group>.wN`
//!   for worker N, see [`super::group`]), so a restarted worker fences its stale predecessor; the
//!   offsets go with the consumer group's metadata (KIP-447), so a worker that lost its partitions
//!   to a rebalance cannot commit them any more. Workers of one group share the partitions.
//! - **at-least-once** otherwise: input offsets are committed only after every output of the batch
//!   is acknowledged; a crash between the two re-sends the batch and downstream dedupes by id.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use rdkafka::Message;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Header, Headers, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::clean::{Rejection, clean};
use super::group::{GroupEvents, member_name};
use super::kafka::{self, OffsetTracker};
use super::txn_audit::CommittedOutputs;
use super::{Backpressure, PipelineError, StageCounters, StopWhen, Topics};
use crate::dataset::Entity;

#[derive(Debug, Clone)]
pub struct TransformOptions {
    pub brokers: String,
    pub topics: Topics,
    pub group_id: String,
    /// This worker's number in the group (`--worker`); `None`: the group's only transform.
    pub worker: Option<u32>,
    pub stop: StopWhen,
    pub broker: kafka::BrokerKind,
    /// Stay at most this far ahead of the consumer (used by `lab demo`).
    pub backpressure: Option<Backpressure>,
    /// The delivery the user asked for; `None`: exactly-once where the broker has transactions.
    pub delivery: Option<Delivery>,
    /// How long to wait for an unreachable broker before giving up.
    pub broker_patience: Duration,
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
#[derive(Debug, Clone, Copy, Default, Serialize, serde::Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Delivery {
    ExactlyOnce,
    #[default]
    AtLeastOnce,
}

/// Longest a transactional call may take before the stage fails (and restarts from the last commit).
const TXN_TIMEOUT: Duration = Duration::from_secs(30);
/// `transaction.timeout.ms`: the broker aborts a transaction left open longer. After an outage the
/// check of committed transactions (see [`super::txn_audit`]) waits as long for a record a
/// pending transaction could still hold back, plus a margin.
const TRANSACTION_TIMEOUT: Duration = Duration::from_secs(60);
const CHECK_PATIENCE: Duration = Duration::from_secs(70);

#[derive(Debug, Clone, Default, Serialize)]
pub struct TransformReport {
    /// The worker this report is of (`--worker`, `--workers`); absent for a group's only transform.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub worker: Option<u32>,
    pub delivery: Delivery,
    pub consumed: u64,
    pub clean: u64,
    pub dead_lettered: u64,
    /// Clean records whose raw line held NUL characters, removed on the way (see `clean::text`).
    pub nul_removed: u64,
    /// From the start to the first record read: joining the group, the first fetch (`None`: no
    /// record arrived). Reported apart because a broker that answers a fetch with a whole backlog
    /// (the test broker) makes it seconds long, whatever the transform does.
    pub first_record_ms: Option<u128>,
    pub elapsed_ms: u128,
}

/// Runs until cancelled or, with [`StopWhen::CaughtUp`], until the raw topics are drained.
pub async fn run_transform(
    opts: &TransformOptions,
    counters: &Arc<StageCounters>,
    cancel: &CancellationToken,
) -> Result<TransformReport, PipelineError> {
    let result = kafka::rejoin_when_fenced_early(counters, || transform_loop(opts, counters, cancel)).await;
    counters.finish();
    result
}

async fn transform_loop(
    opts: &TransformOptions,
    counters: &Arc<StageCounters>,
    cancel: &CancellationToken,
) -> Result<TransformReport, PipelineError> {
    let brokers = opts.brokers.as_str();
    let consumer = kafka::GroupConsumer::new(
        kafka::consumer_config(brokers, &opts.group_id, opts.worker, opts.broker)
            .create_with_context(GroupEvents::default().noting_lost_assignments(Arc::clone(counters)))
            .map_err(|e| PipelineError::kafka("create the transform consumer", brokers, e))?,
    );
    let result = transform_with(consumer.get(), opts, counters, cancel).await;
    kafka::close_consumer(consumer).await;
    result
}

async fn transform_with(
    consumer: &StreamConsumer<GroupEvents>,
    opts: &TransformOptions,
    counters: &Arc<StageCounters>,
    cancel: &CancellationToken,
) -> Result<TransformReport, PipelineError> {
    let started = std::time::Instant::now();
    let brokers = opts.brokers.as_str();
    let mut outage = kafka::BrokerOutage::new(opts.broker_patience, counters);
    let member = member_name(&opts.group_id, opts.worker);
    let (producer, delivery) = create_producer(brokers, &member, opts.delivery, &mut outage, cancel).await?;
    counters.set_delivery(delivery);
    let watermarks = kafka::watermark_client(brokers)?;
    let inputs: Vec<String> = Entity::ALL.iter().map(|e| opts.topics.raw(*e)).collect();
    let input_refs: Vec<&str> = inputs.iter().map(String::as_str).collect();
    consumer
        .subscribe(&input_refs)
        .map_err(|e| PipelineError::kafka("subscribe to the raw topics", brokers, e))?;
    tracing::info!(group = %opts.group_id, %member, topics = ?inputs, ?delivery, "transform started");

    let mut report = TransformReport {
        worker: opts.worker,
        delivery,
        ..TransformReport::default()
    };
    let outputs = OutputTopics::new(&opts.topics);
    let mut committed = CommittedOutputs::default();
    let mut last_lag_check = tokio::time::Instant::now() - LAG_INTERVAL;
    loop {
        if let Some(bp) = &opts.backpressure {
            while bp.should_wait(counters) && !cancel.is_cancelled() {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }
        let batch = tokio::select! {
            () = cancel.cancelled() => break,
            batch = kafka::next_batch(consumer, IDLE_POLL, MAX_BATCH, brokers, &mut outage) => batch?,
        };
        // `next_batch` dropped what the revokes made stale; nothing else here outlives a batch.
        consumer.context().take_revoked();
        let idle = batch.is_empty();
        if !idle {
            let batch_started = std::time::Instant::now();
            if report.first_record_ms.is_none() {
                report.first_record_ms = Some(started.elapsed().as_millis());
            }
            let records = batch.len();
            let result = match delivery {
                Delivery::ExactlyOnce => {
                    transactional_batch(&batch, consumer, opts, &outputs, &producer, counters, &mut report)
                        .await
                        .map(|written| committed.committed(written))
                }
                Delivery::AtLeastOnce => {
                    match process_batch(&batch, opts, &outputs, &producer, counters, &mut report).await {
                        // Synchronous: once this returns the batch will not be re-read after a crash.
                        Ok((offsets, _)) => kafka::commit_sync(consumer, &with_delivery(offsets, delivery), brokers),
                        Err(e) => Err(e),
                    }
                }
            };
            drop(batch);
            tracing::debug!(records, took = ?batch_started.elapsed(), ok = result.is_ok(), "batch handled");
            if let Err(e) = result {
                // Nothing of this batch was committed. Exactly-once: abort it, so none of it becomes
                // visible. Then, if the failure passes (the broker restarting), read the batch again
                // from the last commit; otherwise stop, and a restart resumes from that commit.
                if delivery == Delivery::ExactlyOnce {
                    abort(&producer, brokers, &mut outage, e.is_transient()).await?;
                }
                outage.ride_out(e)?;
                kafka::rewind_to_committed(consumer, brokers, &mut outage).await?;
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
            if committed.needs_check(outage.count()) {
                // A transaction committed after an outage: did the broker keep the earlier ones?
                // (Unreachable again: ride it out; the check runs at the next commit.)
                if let Err(e) =
                    tokio::task::block_in_place(|| committed.check(brokers, outage.count(), CHECK_PATIENCE, cancel))
                {
                    outage.ride_out(e)?;
                }
            }
        }
        if last_lag_check.elapsed() >= LAG_INTERVAL || (idle && opts.stop.only_lag_left()) {
            last_lag_check = tokio::time::Instant::now();
            let lag = kafka::query_lag(consumer, &watermarks, &mut outage)?;
            counters.set_lag(lag.unwrap_or(-1));
            if opts.stop.reached(lag) {
                break;
            }
        }
    }
    if committed.needs_check(outage.count()) && !cancel.is_cancelled() {
        tokio::task::block_in_place(|| committed.check(brokers, outage.count(), CHECK_PATIENCE, cancel))?;
    }
    report.elapsed_ms = started.elapsed().as_millis();
    tracing::info!(?report, "transform finished");
    Ok(report)
}

/// What an `init_transactions` failure means for the choice of delivery.
#[derive(Debug, PartialEq, Eq)]
enum InitFailure {
    /// The broker has no transactions at all: only at-least-once is possible.
    NoTransactions,
    /// Passing (coordinator loading or moving, broker unreachable for now): try again.
    Transient,
    /// Anything else (authorisation, a fenced id, a bad configuration): the stage stops.
    Fatal,
}

fn classify_init_failure(code: RDKafkaErrorCode, retriable: bool) -> InitFailure {
    match code {
        // librdkafka's answer when no broker offers InitProducerId / transactions, and a broker's
        // own answer to a request version it does not know.
        RDKafkaErrorCode::UnsupportedFeature | RDKafkaErrorCode::UnsupportedVersion => InitFailure::NoTransactions,
        RDKafkaErrorCode::CoordinatorNotAvailable
        | RDKafkaErrorCode::NotCoordinator
        | RDKafkaErrorCode::CoordinatorLoadInProgress
        | RDKafkaErrorCode::OperationTimedOut
        | RDKafkaErrorCode::RequestTimedOut
        | RDKafkaErrorCode::BrokerTransportFailure
        | RDKafkaErrorCode::AllBrokersDown
        | RDKafkaErrorCode::ConcurrentTransactions => InitFailure::Transient,
        _ if retriable => InitFailure::Transient,
        _ => InitFailure::Fatal,
    }
}

/// The transform's producer and its delivery: transactional (exactly-once) unless the user asked
/// for at-least-once or the broker answers that it has no transactions. A passing failure is
/// retried, never taken for "no transactions"; falling back is logged as a warning and shown in
/// the report, `lab status` and the monitor (the stage's counters carry the mode).
async fn create_producer(
    brokers: &str,
    transactional_id: &str,
    wanted: Option<Delivery>,
    outage: &mut kafka::BrokerOutage,
    cancel: &CancellationToken,
) -> Result<(FutureProducer, Delivery), PipelineError> {
    let mut config = kafka::producer_config(brokers);
    config.set("linger.ms", "5");
    let plain = || {
        config
            .create()
            .map_err(|e| PipelineError::kafka("create the transform producer", brokers, e))
    };
    if wanted == Some(Delivery::AtLeastOnce) {
        tracing::info!("at-least-once delivery, as asked: no transactions");
        return Ok((plain()?, Delivery::AtLeastOnce));
    }
    let mut pause = Duration::from_millis(500);
    loop {
        let transactional: FutureProducer = config
            .clone()
            .set("transactional.id", transactional_id)
            // A message may not outlive the transaction it belongs to.
            .set("transaction.timeout.ms", TRANSACTION_TIMEOUT.as_millis().to_string())
            .set("message.timeout.ms", "60000")
            .create()
            .map_err(|e| PipelineError::kafka("create the transform producer", brokers, e))?;
        let Err(e) = tokio::task::block_in_place(|| transactional.init_transactions(TXN_TIMEOUT)) else {
            outage.over();
            return Ok((transactional, Delivery::ExactlyOnce));
        };
        let (code, retriable) = match &e {
            KafkaError::Transaction(t) => (t.code(), t.is_retriable()),
            other => (other.rdkafka_error_code().unwrap_or(RDKafkaErrorCode::Unknown), false),
        };
        match classify_init_failure(code, retriable) {
            InitFailure::NoTransactions if wanted == Some(Delivery::ExactlyOnce) => {
                return Err(PipelineError::kafka(
                    "start exactly-once delivery (--delivery exactly-once)",
                    brokers,
                    format!("the broker has no transactions ({e}); run with --delivery at-least-once"),
                ));
            }
            InitFailure::NoTransactions => {
                tracing::warn!(error = %e, "the broker has no transactions: the transform runs AT-LEAST-ONCE (downstream dedupes by id)");
                return Ok((plain()?, Delivery::AtLeastOnce));
            }
            InitFailure::Transient if !cancel.is_cancelled() => {
                // Never taken for "no transactions": wait for the broker (up to the patience).
                tracing::warn!(error = %e, retry_in = ?pause, "cannot start transactions yet; retrying");
                outage.ride_out(PipelineError::Kafka {
                    action: "start transactions (init_transactions)".into(),
                    brokers: brokers.into(),
                    detail: e.to_string(),
                    transient: true,
                })?;
                tokio::select! {
                    () = cancel.cancelled() => {}
                    () = tokio::time::sleep(pause) => {}
                }
                pause = (pause * 2).min(Duration::from_secs(10));
            }
            InitFailure::Transient | InitFailure::Fatal => {
                return Err(PipelineError::kafka(
                    "start transactions (init_transactions)",
                    brokers,
                    e,
                ));
            }
        }
    }
}

/// Aborts the open transaction, retrying while the broker is unreachable. An abort that fails for
/// good (a fenced or fatally failed producer) stops the stage: a restart resumes from the last
/// committed transaction. `quiet`: the batch failure was transient, so an abort failure is too.
async fn abort(
    producer: &FutureProducer,
    brokers: &str,
    outage: &mut kafka::BrokerOutage,
    quiet: bool,
) -> Result<(), PipelineError> {
    loop {
        match tokio::task::block_in_place(|| producer.abort_transaction(TXN_TIMEOUT)) {
            Ok(()) => return Ok(()),
            Err(e) if kafka::KafkaDetail::is_transient(&e) => {
                outage.ride_out(PipelineError::kafka("abort the failed transaction", brokers, e))?;
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(e) => {
                if !quiet {
                    tracing::warn!(error = %e, "aborting the failed transaction failed too");
                }
                return Err(PipelineError::kafka("abort the failed transaction", brokers, e));
            }
        }
    }
}

/// One batch in one transaction: outputs, dead letters and input offsets commit together.
/// Returns where the committed records ended on each output partition.
async fn transactional_batch(
    batch: &[BorrowedMessage<'_>],
    consumer: &StreamConsumer<GroupEvents>,
    opts: &TransformOptions,
    outputs: &OutputTopics,
    producer: &FutureProducer,
    counters: &StageCounters,
    report: &mut TransformReport,
) -> Result<BTreeMap<(String, i32), i64>, PipelineError> {
    let brokers = opts.brokers.as_str();
    let txn_err = |action: &str| {
        let action = action.to_string();
        move |e| PipelineError::kafka(&action, brokers, e)
    };
    producer.begin_transaction().map_err(txn_err("begin a transaction"))?;
    let (offsets, written) = process_batch(batch, opts, outputs, producer, counters, report).await?;
    let committing = std::time::Instant::now();
    let offsets = with_delivery(offsets, Delivery::ExactlyOnce);
    let group = consumer
        .group_metadata()
        .ok_or_else(|| PipelineError::kafka("read the consumer group metadata", brokers, "not in a group"))?;
    tokio::task::block_in_place(|| {
        producer.send_offsets_to_transaction(&offsets, &group, TXN_TIMEOUT)?;
        producer.commit_transaction(TXN_TIMEOUT)
    })
    .map_err(txn_err("commit the transaction"))?;
    tracing::debug!(took = ?committing.elapsed(), "transaction committed");
    Ok(written)
}

/// The output topics' names, made once: a record's delivery names its topic by index.
struct OutputTopics {
    /// Indexed by `Entity as usize`.
    clean: Vec<String>,
    dlq: String,
}

impl OutputTopics {
    const DLQ: usize = Entity::ALL.len();

    fn new(topics: &Topics) -> Self {
        let mut clean = vec![String::new(); Entity::ALL.len()];
        for entity in Entity::ALL {
            clean[entity as usize] = topics.clean(entity);
        }
        Self {
            clean,
            dlq: topics.dlq(),
        }
    }

    fn name(&self, index: usize) -> &str {
        self.clean.get(index).unwrap_or(&self.dlq)
    }
}

/// Cleans and forwards one batch, waits for every delivery, and returns the offsets to commit
/// and where the batch's records ended on each output partition.
async fn process_batch(
    batch: &[BorrowedMessage<'_>],
    opts: &TransformOptions,
    outputs: &OutputTopics,
    producer: &FutureProducer,
    counters: &StageCounters,
    report: &mut TransformReport,
) -> Result<(rdkafka::TopicPartitionList, BTreeMap<(String, i32), i64>), PipelineError> {
    let brokers = opts.brokers.as_str();
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
            Some(entity) => clean(entity, payload).map(|cleaned| (entity, cleaned)),
            None => Err(Rejection {
                code: "unknown_topic",
                detail: format!("no entity for topic {}", msg.topic()),
            }),
        };
        let clean_delivery = match outcome {
            Ok((entity, cleaned)) => {
                let topic = entity as usize;
                let mut record = FutureRecord::to(outputs.name(topic)).payload(&cleaned.json);
                if let Some(key) = msg.key() {
                    record = record.key(key);
                }
                let sent = send(producer, record, brokers).await?;
                if sent.is_ok() {
                    report.clean += 1;
                    report.nul_removed += u64::from(cleaned.nul_removed);
                    StageCounters::add(&counters.out_bytes, cleaned.json.len() as u64);
                }
                sent.map(|delivery| (topic, delivery))
            }
            Err(rejection) => Err(rejection),
        };
        let delivery = match clean_delivery {
            Ok(delivery) => delivery,
            Err(rejection) => {
                report.dead_lettered += 1;
                StageCounters::add(&counters.dlq, 1);
                tracing::debug!(topic = msg.topic(), offset = msg.offset(), reason = %rejection.header(), "dead-lettered");
                let headers = dlq_headers(msg, &rejection);
                let original = payload.to_vec();
                let mut record = FutureRecord::to(outputs.name(OutputTopics::DLQ))
                    .payload(&original)
                    .headers(headers);
                if let Some(key) = msg.key() {
                    record = record.key(key);
                }
                let delivery = send(producer, record, brokers)
                    .await?
                    .map_err(|too_large| PipelineError::kafka("dead-letter a record", brokers, too_large.detail))?;
                (OutputTopics::DLQ, delivery)
            }
        };
        deliveries.push(delivery);
    }
    let sent = std::time::Instant::now();
    let mut last: HashMap<(usize, i32), i64> = HashMap::new();
    for (topic, delivery) in deliveries {
        match delivery.await {
            Ok(Ok(done)) => {
                // Dead letters are counted in `dlq` when they are routed: `out` is the clean ones.
                if topic != OutputTopics::DLQ {
                    StageCounters::add(&counters.output, 1);
                }
                let end = last.entry((topic, done.partition)).or_insert(done.offset);
                *end = (*end).max(done.offset);
            }
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
    tracing::debug!(waited = ?sent.elapsed(), "every record of the batch acknowledged");
    let written = last
        .into_iter()
        .map(|((topic, partition), offset)| ((outputs.name(topic).to_string(), partition), offset))
        .collect();
    Ok((offsets.take()?, written))
}

/// `offsets` with the delivery mode in each commit's metadata: the broker then tells anyone who
/// reads the group (`lab status`, the monitor's Kafka view) how this transform delivers.
fn with_delivery(offsets: rdkafka::TopicPartitionList, delivery: Delivery) -> rdkafka::TopicPartitionList {
    let mode = match delivery {
        Delivery::ExactlyOnce => "exactly-once",
        Delivery::AtLeastOnce => "at-least-once",
    };
    let tag = format!("{}{mode}", kafka::DELIVERY_TAG);
    for mut elem in offsets.elements() {
        elem.set_metadata(&tag);
    }
    offsets
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
///
/// A record larger than the producer's `message.max.bytes` comes back as a [`Rejection`]
/// (`too_large`), for the caller to dead-letter: a clean record can outgrow its raw line (nested
/// attributes become escaped JSON text), and one such record must not stop the stage.
async fn send<'a, P: rdkafka::message::ToBytes + ?Sized>(
    producer: &FutureProducer,
    mut record: FutureRecord<'a, [u8], P>,
    brokers: &str,
) -> Result<Result<rdkafka::producer::DeliveryFuture, Rejection>, PipelineError> {
    use rdkafka::error::KafkaError::MessageProduction;
    use rdkafka::types::RDKafkaErrorCode::{MessageSizeTooLarge, QueueFull};
    loop {
        match producer.send_result(record) {
            Ok(delivery) => return Ok(Ok(delivery)),
            Err((MessageProduction(QueueFull), back)) => {
                record = back;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            Err((MessageProduction(MessageSizeTooLarge), back)) => {
                let size = back.payload.map_or(0, |p| p.to_bytes().len());
                return Ok(Err(Rejection {
                    code: "too_large",
                    detail: format!(
                        "the record is {size} bytes, more than a Kafka record may hold (message.max.bytes)"
                    ),
                }));
            }
            Err((e, _)) => return Err(PipelineError::kafka("queue a transformed record", brokers, e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The transform's `out` (the progress line, the monitor's rates) counts the clean records it
    /// delivered, not its dead letters, which `dlq` counts: in = out + dlq. On the embedded broker:
    /// three reviews, one of them without an id.
    #[tokio::test(flavor = "multi_thread")]
    async fn out_counts_clean_records_and_dlq_the_dead_letters() {
        use crate::pipeline::embedded::EmbeddedBroker;
        use crate::pipeline::stage::StageContext;
        use rdkafka::producer::{BaseProducer, BaseRecord};

        let prefix = "counted";
        let topics = Topics::new(prefix);
        let broker = EmbeddedBroker::for_stages(&topics, 1).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let cx = StageContext::embedded(broker.brokers(), prefix, dir.path().to_path_buf(), dir.path());
        let producer: BaseProducer = kafka::producer_config(broker.brokers()).create().unwrap();
        let raw = topics.raw(Entity::Review);
        for line in [
            r#"{"review_id":"r1","user_id":"u1","business_id":"b1","stars":4.0,"text":"ok","date":"2020-01-02 03:04:05"}"#,
            r#"{"user_id":"u1","business_id":"b1","stars":4.0,"text":"no id","date":"2020-01-02 03:04:05"}"#,
            r#"{"review_id":"r3","user_id":"u1","business_id":"b1","stars":2.0,"text":"ok","date":"2020-01-02 03:04:05"}"#,
        ] {
            producer.send(BaseRecord::<(), _>::to(&raw).payload(line)).unwrap();
        }
        producer.flush(Duration::from_secs(30)).unwrap();
        let counters = Arc::new(StageCounters::default());
        let report = run_transform(
            &cx.transform(StopWhen::CaughtUp {
                upstream: None,
                together: None,
            }),
            &counters,
            &CancellationToken::new(),
        )
        .await
        .unwrap();
        assert_eq!((report.consumed, report.clean, report.dead_lettered), (3, 2, 1));
        let now = counters.snapshot();
        assert_eq!((now.input, now.output, now.dlq), (3, 2, 1), "in, out, dlq");
    }

    #[test]
    fn only_a_broker_without_transactions_makes_the_transform_at_least_once() {
        use RDKafkaErrorCode as C;
        for code in [C::UnsupportedFeature, C::UnsupportedVersion] {
            assert_eq!(
                classify_init_failure(code, false),
                InitFailure::NoTransactions,
                "{code:?}"
            );
        }
        // An unreachable or restarting broker, a coordinator not elected yet: wait, do not degrade.
        for code in [
            C::CoordinatorNotAvailable,
            C::CoordinatorLoadInProgress,
            C::NotCoordinator,
            C::OperationTimedOut,
            C::BrokerTransportFailure,
            C::AllBrokersDown,
        ] {
            assert_eq!(classify_init_failure(code, false), InitFailure::Transient, "{code:?}");
        }
        assert_eq!(classify_init_failure(C::Unknown, true), InitFailure::Transient);
        for code in [
            C::TransactionalIdAuthorizationFailed,
            C::ClusterAuthorizationFailed,
            C::Fenced,
        ] {
            assert_eq!(classify_init_failure(code, false), InitFailure::Fatal, "{code:?}");
        }
    }
}
