//! Kafka plumbing shared by the stages: client configs, topic creation, catching-up checks.

use std::time::Duration;

use futures::FutureExt;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Header, OwnedHeaders};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};

use super::PipelineError;
use super::clean::Rejection;
use super::group::{GroupEvents, member_name};

/// How long a metadata/watermark query may take before we treat the broker as unreachable.
pub const QUERY_TIMEOUT: Duration = Duration::from_secs(5);

/// What a Kafka failure says about itself: its text, and whether it passes by itself.
pub trait KafkaDetail: std::fmt::Display {
    fn is_transient(&self) -> bool {
        false
    }
}

impl KafkaDetail for &str {}
impl KafkaDetail for String {}

impl KafkaDetail for RDKafkaErrorCode {
    fn is_transient(&self) -> bool {
        use RDKafkaErrorCode as C;
        matches!(
            self,
            // The broker is down, restarting or unreachable: librdkafka reconnects by itself.
            C::BrokerTransportFailure
                | C::AllBrokersDown
                | C::Resolve
                | C::NetworkException
                | C::RequestTimedOut
                | C::OperationTimedOut
                | C::MessageTimedOut
                // A coordinator or leader is being elected or loaded (after a restart, say).
                | C::CoordinatorNotAvailable
                | C::NotCoordinator
                | C::CoordinatorLoadInProgress
                | C::WaitingForCoordinator
                | C::LeaderNotAvailable
                | C::NotLeaderForPartition
                | C::NotEnoughReplicas
        )
    }
}

impl KafkaDetail for KafkaError {
    fn is_transient(&self) -> bool {
        match self {
            // A transaction librdkafka says can be retried, or aborted and tried again.
            KafkaError::Transaction(e) => !e.is_fatal() && (e.is_retriable() || e.txn_requires_abort()),
            // rdkafka gives no `rdkafka_error_code` for admin operations (create topics, say).
            KafkaError::AdminOp(code) => code.is_transient(),
            other => other.rdkafka_error_code().is_some_and(|c| c.is_transient()),
        }
    }
}

/// What the transform writes before its delivery mode (`exactly-once`, `at-least-once`) in its
/// offset commits' metadata, for whoever reads the group (the Kafka probe).
pub const DELIVERY_TAG: &str = "lab.delivery=";

/// How long a stage waits for an unreachable broker before it gives up (`--broker-patience`).
pub const DEFAULT_BROKER_PATIENCE: Duration = Duration::from_secs(300);

/// A broker outage a stage is riding out.
///
/// A broker restart is an outage, not a reason to exit: librdkafka reconnects by itself, so the
/// stage keeps polling, says it is waiting (log, its counters for the Pipeline view), and gives up
/// only when the broker stays away longer than `patience`, or on an error that does not pass.
pub struct BrokerOutage {
    patience: Duration,
    since: Option<std::time::Instant>,
    /// Outages begun so far (see [`super::txn_audit`]).
    count: u64,
    counters: std::sync::Arc<super::StageCounters>,
}

impl BrokerOutage {
    #[must_use]
    pub fn new(patience: Duration, counters: &std::sync::Arc<super::StageCounters>) -> Self {
        // A stage run starts outside any outage, also when it rejoins after the previous run of
        // the same stage (sharing its counters) ended inside one.
        counters.set_waiting_for_broker(false);
        Self {
            patience,
            since: None,
            count: 0,
            counters: counters.clone(),
        }
    }

    /// Takes a failure: a transient one starts (or continues) the outage, an `Err` once it has
    /// lasted longer than the patience; any other failure is returned as it is.
    pub fn ride_out(&mut self, error: PipelineError) -> Result<(), PipelineError> {
        if !error.is_transient() {
            return Err(error);
        }
        if self.since.is_none() {
            self.count += 1;
        }
        let since = *self.since.get_or_insert_with(|| {
            tracing::warn!(%error, "the broker is unreachable; waiting for it (librdkafka reconnects by itself)");
            std::time::Instant::now()
        });
        self.counters.set_waiting_for_broker(true);
        self.counters.note_outage();
        if since.elapsed() > self.patience {
            return Err(PipelineError::Other(format!(
                "{error}\nthe broker stayed unreachable for more than {} s (--broker-patience): the stage stopped. \
                 Nothing is lost: it resumes from its last commit when started again",
                self.patience.as_secs()
            )));
        }
        Ok(())
    }

    /// The broker answered again.
    pub fn over(&mut self) {
        if let Some(since) = self.since.take() {
            tracing::info!(after = ?since.elapsed(), "the broker is reachable again; resuming");
            self.counters.set_waiting_for_broker(false);
        }
    }

    #[must_use]
    pub fn is_on(&self) -> bool {
        self.since.is_some()
    }

    /// How many outages began so far.
    #[must_use]
    pub fn count(&self) -> u64 {
        self.count
    }
}

/// Config for a producer that never duplicates on retry (idempotence) and batches for throughput.
#[must_use]
pub fn producer_config(brokers: &str) -> ClientConfig {
    let mut cfg = ClientConfig::new();
    cfg.set("bootstrap.servers", brokers)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("compression.type", compression_for(brokers))
        .set("linger.ms", "20")
        .set("batch.size", "1000000")
        // librdkafka's default. A million (as before) let `lab produce` read 1M reviews far ahead
        // of the broker: 350-680 MB resident against 100-150 MB, in the same time (measured).
        .set("queue.buffering.max.messages", "100000")
        .set("queue.buffering.max.kbytes", "1048576")
        .set("message.timeout.ms", "300000");
    cfg
}

/// Gets an idempotent producer its producer id now instead of half a second from now.
///
/// librdkafka (2.12) asks for the id each time a metadata answer arrives, but only over a
/// connection to a broker the metadata named, and retries on a 500 ms timer when there is none
/// (`rd_kafka_idemp_pid_fsm` in `rdkafka_idempotence.c`, called from `rd_kafka_parse_Metadata`).
/// A new producer's first metadata answer comes over its bootstrap connection, before any such
/// connection is up, so it sent nothing for 500 ms: traced with strace on `lab produce`, the
/// InitProducerId request left 0.50 s after the first metadata answer, and 100 records took
/// 0.6 s to deliver. Reading the first partition's watermarks connects to its leader; a metadata
/// answer after that starts the id request at once. Errors change nothing (the timer still
/// runs), so they are only logged.
pub fn hasten_producer_id<C: rdkafka::ClientContext>(client: &rdkafka::client::Client<C>, topic: &str) {
    let nudged = client
        .fetch_watermarks(topic, 0, QUERY_TIMEOUT)
        .and_then(|_| client.fetch_metadata(Some(topic), QUERY_TIMEOUT));
    if let Err(e) = nudged {
        tracing::debug!(%e, topic, "could not hasten the producer id; librdkafka's own timer gets it");
    }
}

/// The producers' `compression.type` for `brokers`: none when every bootstrap broker is on this
/// machine, lz4 otherwise.
///
/// Over loopback compression saves no network and costs CPU on both sides of the same machine
/// (measured with `perf` on `lab demo`: lz4 was an eighth of the whole run's CPU, and `make bench`
/// gives the rate of a producer with and without it, README: Performance). Across a real network
/// lz4 sends a generated review in 56 % of its bytes (`lz4 -1` over 1 MB of them).
#[must_use]
pub fn compression_for(brokers: &str) -> &'static str {
    let loopback = |broker: &str| {
        let address = broker.trim().rsplit("://").next().unwrap_or_default();
        let host = match address.rsplit_once(':') {
            Some((host, port)) if port.chars().all(|c| c.is_ascii_digit()) => host,
            _ => address,
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        host.eq_ignore_ascii_case("localhost") || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
    };
    if brokers.split(',').all(loopback) {
        "none"
    } else {
        "lz4"
    }
}

/// The broker a stage's consumer talks to, for what its group settings must allow for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BrokerKind {
    /// Kafka, or a broker that speaks its protocol (the test broker, the Docker stack's).
    Kafka,
    /// librdkafka's in-process mock cluster ([`super::embedded`]).
    Embedded,
}

impl BrokerKind {
    /// How long a broker may hold a fetch that finds no data. Real brokers answer as soon as data
    /// arrives, so waiting costs nothing; the mock cluster always waits the full time.
    fn fetch_wait_ms(self) -> u32 {
        match self {
            Self::Kafka => 500,
            Self::Embedded => 10,
        }
    }
}

/// How long a stage's consumer may go without polling before librdkafka takes it out of its
/// group (`max.poll.interval.ms`), which is also the rebalance timeout it sends in JoinGroup: how
/// long a rebalance waits for a member that does not join again, and how long librdkafka waits for
/// the JoinGroup's answer (plus 3 s, `rd_kafka_JoinGroupRequest` in `rdkafka_request.c`).
///
/// librdkafka's default is 300 s. With it, the test broker (noida-db 0.2.3) left joins unanswered
/// while workers joined together (`tests/workers.rs` with `debug=cgrp`, 2026-12-06): four of
/// thirteen joins sent as generation 3 completed got no answer, and the other members' next joins
/// waited with them, until a request queued behind a lost join timed out 60 s later
/// (`socket.timeout.ms`); without such a request a join waits the whole rebalance timeout (likely
/// the suite's runs about 300 s slower than usual in `make test`). Four of five runs of the
/// transform workers' test stalled so, one to three times; with 30 s, none of five (each run of
/// the suite 52–97 s). The stages poll at least every second between batches; only an unreachable
/// broker holding a transaction's commit (`TXN_TIMEOUT` in `transform.rs`, 30 s) or the consumer's
/// revoke waiting for its files (`REVOKE_WAIT` in `sink.rs`) holds the poll longer, and a stage
/// that overstays joins its group again ([`next_batch`]).
pub const MAX_POLL_INTERVAL: Duration = Duration::from_secs(30);

/// Config for a consumer-group member that commits offsets only by hand, after a durable write.
///
/// The member is static (`group.instance.id` = its [`member_name`]: the group, or `<group>.wN`
/// for worker N): a stage restarted after a crash takes its old place and partitions at once. A
/// dynamic member would wait for the group to expel the dead one first: `session.timeout.ms` on
/// Kafka, and forever on brokers that never expire members (noida-db). One process per member
/// name: a second one fences the first (see [`next_batch`]), as the transform's transactional id
/// (the same name) already requires. Workers of one group share its partitions.
///
/// On the mock cluster the group uses the consumer protocol of KIP-848: with the classic protocol
/// the mock holds a new group's first join for 3 s (`group_initial_rebalance_delay_ms` in
/// `rdkafka_mock.c`, which the rdkafka crate does not wrap), and `lab demo` lost those 3 s of its
/// 20 (measured). The classic protocol stays for real brokers, which may predate KIP-848.
#[must_use]
pub fn consumer_config(brokers: &str, group_id: &str, worker: Option<u32>, broker: BrokerKind) -> ClientConfig {
    let member = member_name(group_id, worker);
    let mut cfg = ClientConfig::new();
    cfg.set("bootstrap.servers", brokers)
        .set("fetch.wait.max.ms", broker.fetch_wait_ms().to_string())
        .set("group.id", group_id)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("isolation.level", "read_committed")
        // Some Kafka-protocol brokers ignore fetch.max.bytes and answer with a whole backlog.
        .set("receive.message.max.bytes", "1000000000")
        // The monitor names each member of a group by its client id.
        .set("client.id", &member)
        .set("group.instance.id", &member)
        .set("max.poll.interval.ms", MAX_POLL_INTERVAL.as_millis().to_string());
    match broker {
        // The broker decides the session timeout under KIP-848; librdkafka refuses to set it.
        BrokerKind::Embedded => cfg.set("group.protocol", "consumer"),
        BrokerKind::Kafka => cfg.set("session.timeout.ms", "10000"),
    };
    cfg
}

/// Partitions of the topics the CLI creates when they are missing.
pub const DEFAULT_PARTITIONS: i32 = 3;

/// Creates the topics that do not exist yet, with `partitions` partitions each. A broker that
/// cannot be reached (down, restarting) is waited for up to `patience`, as a running stage waits
/// out an outage: a stage started during a broker restart starts when the broker is back.
pub async fn ensure_topics(
    brokers: &str,
    topics: &[String],
    partitions: i32,
    patience: Duration,
) -> Result<(), PipelineError> {
    let started = std::time::Instant::now();
    loop {
        match create_missing_topics(brokers, topics, partitions).await {
            Err(e) if e.is_transient() && started.elapsed() < patience => {
                tracing::warn!(error = %e, "cannot create the topics yet: the broker is unreachable; waiting for it");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            other => return other,
        }
    }
}

async fn create_missing_topics(brokers: &str, topics: &[String], partitions: i32) -> Result<(), PipelineError> {
    // Only what is missing is created: a broker without the admin API (the embedded lab's
    // in-process broker, whose topics exist from its start) never gets the request. The topics are
    // read with a plain client: an admin client, once dropped, joins its polling thread, which
    // waits out a 100 ms poll (the rdkafka crate's `admin.rs`), and every stage paid that at start.
    let reader = watermark_client(brokers)?;
    let present: Vec<String> = tokio::task::spawn_blocking(move || {
        reader.fetch_metadata(None, QUERY_TIMEOUT).map(|m| {
            m.topics()
                .iter()
                .filter(|t| t.error().is_none())
                .map(|t| t.name().to_string())
                .collect()
        })
    })
    .await
    .map_err(|e| PipelineError::kafka("read the topics", brokers, e.to_string()))?
    .map_err(|e| PipelineError::kafka("read the topics", brokers, e))?;
    let new: Vec<NewTopic<'_>> = topics
        .iter()
        .filter(|t| !present.contains(t))
        // -1: the broker's own `default.replication.factor` (KIP-464, Kafka 2.4), so a cluster
        // replicates the lab's topics as it is configured to (a fixed 1 would leave them on one
        // broker, and unwritable with acks=all where min.insync.replicas is 2). The test broker
        // accepts it and replicates once on its single broker (checked with its admin API).
        .map(|t| NewTopic::new(t, partitions, TopicReplication::Fixed(-1)))
        .collect();
    if new.is_empty() {
        return Ok(());
    }
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .map_err(|e| PipelineError::kafka("create an admin client", brokers, e))?;
    let opts = AdminOptions::new()
        .operation_timeout(Some(QUERY_TIMEOUT))
        .request_timeout(Some(QUERY_TIMEOUT));
    let results = admin
        .create_topics(&new, &opts)
        .await
        .map_err(|e| PipelineError::kafka("create topics", brokers, e))?;
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => return Err(PipelineError::kafka(&format!("create topic {topic}"), brokers, code)),
        }
    }
    Ok(())
}

/// A group-less client for watermark and metadata queries.
///
/// It must not be the consumer itself: a consumer's broker connection is busy with long-polling
/// fetches (up to `fetch.wait.max.ms`), and a watermark request queued behind them waits that long,
/// for every partition.
pub fn watermark_client(brokers: &str) -> Result<BaseConsumer, PipelineError> {
    ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .map_err(|e| PipelineError::kafka("create a metadata client", brokers, e))
}

/// [`assigned_lag`] off the async worker, through `outage`: a lag the broker answered ends an
/// outage (a stage with its input read to the end receives no record that would), a transient
/// failure is ridden out (`None`). No lag (no partitions yet, the group's lag unknown) is no answer
/// either way: without partitions nothing may have been asked of the broker.
pub fn query_lag<C: ConsumerContext, K: Consumer<C>>(
    consumer: &K,
    watermarks: &BaseConsumer,
    outage: &mut BrokerOutage,
) -> Result<Option<i64>, PipelineError> {
    match tokio::task::block_in_place(|| assigned_lag(consumer, watermarks)) {
        Ok(Some(lag)) => {
            outage.over();
            Ok(Some(lag))
        }
        Ok(None) => Ok(None),
        Err(e) => outage.ride_out(e).map(|()| None),
    }
}

/// Messages between each assigned partition's read position and its high watermark, summed.
/// A consumer with no partition (a worker the group gave none: more workers than partitions, or
/// between a revoke and the next assignment) gets the whole group's lag instead, so that it ends
/// with the others; `None` while that is not known either.
///
/// Blocking (librdkafka queries): stages call it through [`query_lag`], off the async worker.
fn assigned_lag<C: ConsumerContext, K: Consumer<C>>(
    consumer: &K,
    watermarks: &BaseConsumer,
) -> Result<Option<i64>, PipelineError> {
    let kerr = |e| PipelineError::kafka("read the consumer position", "(configured brokers)", e);
    let assignment = consumer.assignment().map_err(kerr)?;
    if assignment.count() == 0 {
        // Not an outage: the group's offsets cannot be read while it rebalances, say.
        return Ok(group_lag(consumer, watermarks).unwrap_or_else(|e| {
            tracing::debug!(error = %e, "the group's lag is not known yet");
            None
        }));
    }
    let position = consumer.position().map_err(kerr)?;
    let committed = consumer.committed_offsets(assignment, QUERY_TIMEOUT).map_err(kerr)?;
    let mut lag = 0;
    for elem in position.elements() {
        let (topic, partition) = (elem.topic(), elem.partition());
        let (low, high) = watermarks
            .fetch_watermarks(topic, partition, QUERY_TIMEOUT)
            .map_err(kerr)?;
        let next = match elem.offset() {
            Offset::Offset(o) => o,
            // Nothing read since assignment: resume point is the committed offset, else the start.
            _ => match committed.find_partition(topic, partition).map(|e| e.offset()) {
                Some(Offset::Offset(o)) => o,
                _ => low,
            },
        };
        if next < low {
            // auto.offset.reset will jump to `low`: these records were deleted before being read.
            tracing::warn!(
                topic,
                partition,
                next,
                low,
                lost = low - next,
                "records expired (broker retention) before they were read"
            );
        }
        lag += partition_lag(Some(next), low, high);
    }
    Ok(Some(lag))
}

/// The group's lag over every partition of the topics `consumer` subscribed to, from the
/// group's committed offsets; `None` before it subscribed or while a topic has no partition.
fn group_lag<C: ConsumerContext, K: Consumer<C>>(
    consumer: &K,
    watermarks: &BaseConsumer,
) -> Result<Option<i64>, PipelineError> {
    let kerr = |e| PipelineError::kafka("read the group's lag", "(configured brokers)", e);
    let topics = consumer.subscription().map_err(kerr)?;
    let mut all = TopicPartitionList::new();
    for t in topics.elements() {
        let meta = watermarks
            .fetch_metadata(Some(t.topic()), QUERY_TIMEOUT)
            .map_err(kerr)?;
        for topic in meta.topics() {
            if topic.partitions().is_empty() {
                return Ok(None);
            }
            for p in topic.partitions() {
                all.add_partition(topic.name(), p.id());
            }
        }
    }
    if all.count() == 0 {
        return Ok(None);
    }
    let committed = consumer.committed_offsets(all, QUERY_TIMEOUT).map_err(kerr)?;
    let mut lag = 0;
    for elem in committed.elements() {
        let (low, high) = watermarks
            .fetch_watermarks(elem.topic(), elem.partition(), QUERY_TIMEOUT)
            .map_err(kerr)?;
        let next = match elem.offset() {
            Offset::Offset(o) => Some(o),
            _ => None,
        };
        lag += partition_lag(next, low, high);
    }
    Ok(Some(lag))
}

/// Lag of one partition: high − the next offset to read, or everything held (high − low) when
/// nothing was committed. Records below the low watermark expired before anyone read them: they
/// are not lag (no reader will ever get them). The one lag function of the stages, the Kafka probe
/// and the lessons.
#[must_use]
pub fn partition_lag(committed: Option<i64>, low: i64, high: i64) -> i64 {
    match committed {
        Some(c) => (high - c.max(low)).max(0),
        None => (high - low).max(0),
    }
}

/// Commits `offsets` synchronously. A commit the group coordinator rejects because the group is
/// rebalancing is not an error: the partitions now belong to another member (or to this one under a
/// new generation), which re-reads from the last committed offset — at-least-once, and every
/// consumer of our topics is idempotent.
pub fn commit_sync<C: ConsumerContext, K: Consumer<C>>(
    consumer: &K,
    offsets: &TopicPartitionList,
    brokers: &str,
) -> Result<(), PipelineError> {
    // Nothing to commit (every partition filtered out, say): librdkafka would answer NoOffset.
    if offsets.count() == 0 {
        return Ok(());
    }
    // A synchronous commit waits for the broker: off the async worker, so the other tasks (the
    // monitor's UI among them) keep running.
    match tokio::task::block_in_place(|| consumer.commit(offsets, CommitMode::Sync)) {
        Ok(()) => Ok(()),
        // The broker is unreachable: not committing now loses nothing (what these offsets cover
        // is durable downstream, and a later commit covers it), at worst it is read again.
        Err(e) if e.is_transient() => {
            tracing::warn!(error = %e, "offset commit failed while the broker is unreachable; a later commit covers it");
            Ok(())
        }
        Err(KafkaError::ConsumerCommit(
            code @ (RDKafkaErrorCode::IllegalGeneration
            | RDKafkaErrorCode::RebalanceInProgress
            | RDKafkaErrorCode::UnknownMemberId),
        )) => {
            tracing::warn!(%code, "commit rejected by a group rebalance; the records will be re-read");
            Ok(())
        }
        Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::FencedInstanceId)) => Err(PipelineError::Fenced),
        Err(e) => Err(PipelineError::kafka("commit consumer offsets", brokers, e)),
    }
}

/// A fence this soon after joining, or after the broker was last unreachable, is taken for a stale
/// registration of this stage itself, not for a second live process: the stage joins again, a few
/// times in a row, instead of exiting. Soon after joining: the registration of a dead predecessor
/// (a SIGKILLed process the broker still holds). After an outage: a broker silent for longer than
/// the session timeout makes librdkafka join again under the same static member name, and the
/// broker then fences what the member still had in flight under its old registration (seen after a
/// 20 s freeze of the test broker, for both stages, in every run).
const EARLY_FENCE: Duration = Duration::from_secs(60);
const EARLY_FENCE_RETRIES: u32 = 3;

/// Runs a stage, joining its group again when it is fenced early (see [`EARLY_FENCE`]); `counters`
/// are the stage's, which remember its last outage across runs. A second live process with the
/// same member name keeps fencing it, so that case still ends in [`PipelineError::Fenced`].
pub async fn rejoin_when_fenced_early<T, F, Fut>(
    counters: &super::StageCounters,
    mut run: F,
) -> Result<T, PipelineError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, PipelineError>>,
{
    let mut tries = 0;
    loop {
        let started = std::time::Instant::now();
        let result = run().await;
        let early = started.elapsed() < EARLY_FENCE;
        if !early {
            // A run that lasted is not one of a string of quick fences.
            tries = 0;
        }
        match result {
            Err(PipelineError::Fenced)
                if (early || counters.outage_within(EARLY_FENCE)) && tries < EARLY_FENCE_RETRIES =>
            {
                tries += 1;
                tracing::warn!(
                    tries,
                    "fenced right after joining or after a broker outage (a stale registration of this stage?); joining again"
                );
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
            other => return other,
        }
    }
}

/// Waits up to `idle` for a message, then takes every message already fetched, up to `max`.
/// An empty batch means nothing arrived in `idle`.
///
/// Errors about a topic's state (one not created yet, say) are logged and skipped: they are not
/// failures of the stage, and the partition is picked up once it exists. Transport errors (the
/// broker restarting) go to `outage`, which waits them out up to its patience.
///
/// Records of a partition revoked while the batch was taken are dropped: they were read before
/// the rebalance, and the partition's owner reads them again from the committed offset (see
/// [`super::group`]).
pub async fn next_batch<'c>(
    consumer: &'c StreamConsumer<GroupEvents>,
    idle: Duration,
    max: usize,
    brokers: &str,
    outage: &mut BrokerOutage,
) -> Result<Vec<BorrowedMessage<'c>>, PipelineError> {
    let events = consumer.context();
    let (mut rebalances, mut mark) = (events.rebalances(), events.revoked_mark());
    let mut batch = Vec::new();
    let drop_stale = |batch: &mut Vec<BorrowedMessage<'c>>, rebalances: &mut u64, mark: &mut usize| {
        events.drop_stale(batch, rebalances, mark, |m| (m.topic(), m.partition()));
    };
    let Ok(first) = tokio::time::timeout(idle, consumer.recv()).await else {
        drop_stale(&mut batch, &mut rebalances, &mut mark);
        return Ok(batch);
    };
    let mut next = Some(first);
    while let Some(msg) = next {
        // A message comes after any rebalance handled while it was awaited: only the records
        // taken before are stale.
        drop_stale(&mut batch, &mut rebalances, &mut mark);
        match msg {
            Ok(msg) => {
                outage.over();
                batch.push(msg);
            }
            Err(KafkaError::MessageConsumption(code)) if code.is_transient() => {
                outage.ride_out(PipelineError::kafka("consume records", brokers, code))?;
            }
            Err(KafkaError::MessageConsumption(
                code @ (RDKafkaErrorCode::UnknownTopicOrPartition | RDKafkaErrorCode::UnknownTopic),
            )) => {
                tracing::warn!(%code, "a subscribed topic does not exist yet; waiting for it");
            }
            Err(KafkaError::MessageConsumption(RDKafkaErrorCode::PollExceeded)) => {
                // librdkafka took the member out of its group and revoked its partitions (their
                // records in `batch` are dropped as stale); the next poll joins again.
                tracing::warn!(
                    limit = ?MAX_POLL_INTERVAL,
                    "the stage went too long without polling (a commit or a revoke held up); it joins its group again"
                );
            }
            Err(
                KafkaError::MessageConsumption(RDKafkaErrorCode::FencedInstanceId)
                | KafkaError::MessageConsumptionFatal(RDKafkaErrorCode::FencedInstanceId),
            ) => return Err(PipelineError::Fenced),
            Err(e) => return Err(PipelineError::kafka("consume records", brokers, e)),
        }
        next = if batch.len() < max {
            consumer.recv().now_or_never()
        } else {
            None
        };
    }
    // A rebalance handled by the last, unanswered poll.
    drop_stale(&mut batch, &mut rebalances, &mut mark);
    Ok(batch)
}

/// How long a stage waits for its consumer to close before it ends without it.
const CLOSE_PATIENCE: Duration = Duration::from_secs(10);

/// A stage's group consumer. However the stage ends, its close runs on a thread of its own (see
/// [`close_consumer`]): through `close_consumer`, or dropped with the stage's future (the task
/// cancelled when its runtime shuts down, a test that failed mid-stage). A consumer dropped in
/// place would close where it was dropped, and that close can hang for ever (librdkafka issue
/// #4884): seen holding a failed test's runtime shutdown, so the test never ended.
pub struct GroupConsumer(Option<StreamConsumer<GroupEvents>>);

impl GroupConsumer {
    #[must_use]
    pub fn new(consumer: StreamConsumer<GroupEvents>) -> Self {
        Self(Some(consumer))
    }

    /// The consumer, until its close takes it (only [`close_consumer`] and the drop do, and
    /// neither gives the wrapper back).
    pub fn get(&self) -> &StreamConsumer<GroupEvents> {
        self.0.as_ref().expect("a group consumer is only taken by its close")
    }

    /// Hands the consumer to a thread that closes it; the receiver hears when the close is done.
    /// From here on a rebalance the close delivers gives partitions up, never takes them.
    fn hand_off_close(&mut self) -> Option<tokio::sync::oneshot::Receiver<()>> {
        let consumer = self.0.take()?;
        consumer.context().closing();
        close_on_thread(consumer)
    }
}

impl Drop for GroupConsumer {
    fn drop(&mut self) {
        // Nobody waits for it: the stage is gone.
        drop(self.hand_off_close());
    }
}

/// Drops (closes) `consumer` on a plain thread, not `spawn_blocking`: a runtime waits for its
/// blocking tasks when it shuts down, so a hung close would hold the process's exit. The receiver
/// hears when the close is done.
fn close_on_thread(consumer: StreamConsumer<GroupEvents>) -> Option<tokio::sync::oneshot::Receiver<()>> {
    let (closed, done) = tokio::sync::oneshot::channel();
    let spawned = std::thread::Builder::new().name("kafka-close".into()).spawn(move || {
        drop(consumer);
        closed.send(()).ok();
    });
    match spawned {
        Ok(_) => Some(done),
        Err(e) => {
            tracing::warn!(error = %e, "no thread to close the Kafka consumer on; it was dropped unclosed");
            None
        }
    }
}

/// Leaves the group, then closes the consumer, never waiting on the close for ever.
///
/// librdkafka can hang for ever in the close of a consumer whose group is rebalancing: the revoke
/// the close delivers is answered with `rd_kafka_assign`, which never returns once the group has
/// terminated (librdkafka issue #4884; seen here with thirteen workers of one process ending
/// together while the group still rebalanced, and with a drain's consumer that joined right after
/// the broker restarted). Unsubscribing first and serving the revoke here, as the stage polls
/// anyway, leaves the close less to do; what it still delivers is answered by giving partitions up,
/// or not at all once the group has terminated ([`GroupEvents::closing`]). The close itself runs
/// on a thread of its own, and a close still running after [`CLOSE_PATIENCE`] is left behind with
/// a warning: by then everything the stage did is committed, and a static member's partitions stay
/// its own until its session times out anyway. Records still delivered are dropped: nothing past
/// what the stage committed counts.
pub async fn close_consumer(mut consumer: GroupConsumer) {
    {
        // Through the wrapper: cancelled while it waits here, the stage still closes it on a
        // thread of its own.
        let inner = consumer.get();
        inner.unsubscribe();
        let deadline = tokio::time::Instant::now() + CLOSE_PATIENCE;
        while inner.assignment().map_or(0, |a| a.count()) > 0 {
            if tokio::time::Instant::now() >= deadline {
                tracing::warn!("the consumer still held partitions 10 s after leaving its group; closing anyway");
                break;
            }
            drop(tokio::time::timeout(Duration::from_millis(100), inner.recv()).await);
        }
    }
    if let Some(done) = consumer.hand_off_close()
        && tokio::time::timeout(CLOSE_PATIENCE, done).await.is_err()
    {
        tracing::warn!(
            "closing the Kafka consumer took over 10 s (librdkafka issue #4884); \
             ending without it: its work is committed"
        );
    }
}

/// Moves every assigned partition back to the group's committed offset (its start when nothing is
/// committed), so records read since the last commit are read again: what a stage does after a
/// batch failed before its commit. Retries transient failures within `outage`'s patience.
pub async fn rewind_to_committed<C: ConsumerContext + 'static>(
    consumer: &StreamConsumer<C>,
    brokers: &str,
    outage: &mut BrokerOutage,
) -> Result<(), PipelineError> {
    let once = || -> Result<(), PipelineError> {
        let kerr = |action: &'static str| move |e| PipelineError::kafka(action, brokers, e);
        let assignment = consumer.assignment().map_err(kerr("read the assignment"))?;
        let committed = consumer
            .committed_offsets(assignment, QUERY_TIMEOUT)
            .map_err(kerr("read the committed offsets"))?;
        for elem in committed.elements() {
            let to = match elem.offset() {
                Offset::Offset(o) => Offset::Offset(o),
                _ => Offset::Beginning,
            };
            consumer
                .seek(elem.topic(), elem.partition(), to, QUERY_TIMEOUT)
                .map_err(kerr("go back to the committed offset"))?;
        }
        Ok(())
    };
    loop {
        match tokio::task::block_in_place(once) {
            Ok(()) => return Ok(()),
            Err(e) => {
                outage.ride_out(e)?;
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

/// Headers of a dead-lettered record: why (`lab.reason` = `code: detail`, `lab.reason.code`) and
/// where it was read (`lab.source.topic`, `.partition`, `.offset`).
#[must_use]
pub fn dlq_headers(rejection: &Rejection, topic: &str, partition: i32, offset: i64) -> OwnedHeaders {
    let reason = rejection.header();
    let (partition, offset) = (partition.to_string(), offset.to_string());
    headers(&[
        ("lab.reason", reason.as_bytes()),
        ("lab.reason.code", rejection.code.as_bytes()),
        ("lab.source.topic", topic.as_bytes()),
        ("lab.source.partition", partition.as_bytes()),
        ("lab.source.offset", offset.as_bytes()),
    ])
}

/// Record headers from key/value pairs.
#[must_use]
pub fn headers(pairs: &[(&str, &[u8])]) -> OwnedHeaders {
    pairs.iter().fold(OwnedHeaders::new(), |headers, (key, value)| {
        headers.insert(Header {
            key,
            value: Some(*value),
        })
    })
}

/// The default consumer group of a stage. It includes the topic prefix so that two pipelines with
/// different prefixes on one broker never share (and keep rebalancing) a group.
#[must_use]
pub fn default_group(stage: &str, topic_prefix: &str) -> String {
    format!("lab-{stage}-{topic_prefix}")
}

/// The offsets to commit after processing: per partition, the highest processed offset + 1.
#[derive(Debug, Default)]
pub struct OffsetTracker {
    /// (topic, partition, next offset). A list, not a map: a batch touches a handful of
    /// partitions, and finding one by `&str` costs no allocation per record.
    next: Vec<(String, i32, i64)>,
}

impl OffsetTracker {
    pub fn processed(&mut self, topic: &str, partition: i32, offset: i64) {
        match self.next.iter_mut().find(|(t, p, _)| *p == partition && t == topic) {
            Some((_, _, next)) => *next = (*next).max(offset + 1),
            None => self.next.push((topic.to_string(), partition, offset + 1)),
        }
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.next.is_empty()
    }

    /// The list to commit; clears the tracker.
    pub fn take(&mut self) -> Result<TopicPartitionList, PipelineError> {
        let mut tpl = TopicPartitionList::new();
        for (topic, partition, next) in std::mem::take(&mut self.next) {
            tpl.add_partition_offset(&topic, partition, Offset::Offset(next))
                .map_err(|e| PipelineError::kafka("build the offsets to commit", "-", e))?;
        }
        Ok(tpl)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_admin_operation_that_timed_out_is_an_outage_and_a_refusal_is_not() {
        assert!(KafkaError::AdminOp(RDKafkaErrorCode::OperationTimedOut).is_transient());
        assert!(KafkaError::AdminOp(RDKafkaErrorCode::BrokerTransportFailure).is_transient());
        assert!(!KafkaError::AdminOp(RDKafkaErrorCode::TopicAuthorizationFailed).is_transient());
    }

    /// Seen on the real broker: a consumer fenced after a broker freeze rejoined with its counters
    /// still saying "waiting for the broker", and nothing of the new run would clear them.
    #[test]
    fn a_run_starts_outside_any_outage_and_only_a_transient_failure_is_ridden_out() {
        let counters = std::sync::Arc::new(super::super::StageCounters::default());
        counters.set_waiting_for_broker(true);
        let mut outage = BrokerOutage::new(Duration::from_secs(300), &counters);
        assert!(
            !counters.snapshot().waiting_for_broker,
            "a new run starts outside any outage"
        );
        let unreachable = PipelineError::kafka(
            "query the watermarks",
            "b:9092",
            KafkaError::MessageConsumption(RDKafkaErrorCode::BrokerTransportFailure),
        );
        outage.ride_out(unreachable).unwrap();
        assert!(outage.is_on() && counters.snapshot().waiting_for_broker);
        outage.over();
        assert!(!outage.is_on() && !counters.snapshot().waiting_for_broker);
        assert_eq!(outage.count(), 1);
        let refused = PipelineError::kafka(
            "read the topic",
            "b:9092",
            KafkaError::MessageConsumption(RDKafkaErrorCode::TopicAuthorizationFailed),
        );
        assert!(outage.ride_out(refused).is_err());
        assert!(!outage.is_on());
    }

    /// A stage held longer than `max.poll.interval.ms` between polls (a commit held up by the
    /// broker) is taken out of its group by librdkafka, which says so on the next poll: the stage
    /// reads on, joined again, instead of failing.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_stage_held_past_its_poll_interval_joins_again_and_reads_on() {
        use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
        let broker = super::super::embedded::EmbeddedBroker::start(vec![("t".into(), 1)]).unwrap();
        let producer: BaseProducer = producer_config(broker.brokers()).create().unwrap();
        let send = |payload: &str| {
            producer
                .send(BaseRecord::to("t").payload(payload).key("k"))
                .map_err(|(e, _)| e)
                .unwrap();
            producer.flush(Duration::from_secs(10)).unwrap();
        };
        send("first");
        let mut cfg = consumer_config(broker.brokers(), "g", None, BrokerKind::Embedded);
        cfg.set("max.poll.interval.ms", "1000");
        let consumer: StreamConsumer<GroupEvents> = cfg.create_with_context(GroupEvents::default()).unwrap();
        consumer.subscribe(&["t"]).unwrap();
        let counters = std::sync::Arc::new(super::super::StageCounters::default());
        let mut outage = BrokerOutage::new(Duration::from_secs(30), &counters);
        let mut read_until = async |wanted: &[u8]| {
            let deadline = std::time::Instant::now() + Duration::from_secs(30);
            loop {
                let batch = next_batch(
                    &consumer,
                    Duration::from_millis(200),
                    100,
                    broker.brokers(),
                    &mut outage,
                )
                .await
                .expect("polling after the member overstayed goes on");
                if batch.iter().any(|m| m.payload() == Some(wanted)) {
                    return;
                }
                assert!(std::time::Instant::now() < deadline, "never read {wanted:?}");
            }
        };
        read_until(b"first").await;
        // Held well past the interval without a poll, as a commit waiting for the broker holds it.
        std::thread::sleep(Duration::from_millis(2500));
        send("second");
        read_until(b"second").await;
    }

    #[test]
    fn offset_tracker_keeps_the_highest_next_offset() {
        let mut t = OffsetTracker::default();
        t.processed("a", 0, 5);
        t.processed("a", 0, 3);
        t.processed("a", 1, 0);
        t.processed("b", 0, 9);
        t.processed("a", 0, 4);
        let tpl = t.take().unwrap();
        assert_eq!(tpl.count(), 3);
        assert_eq!(tpl.find_partition("a", 0).unwrap().offset(), Offset::Offset(6));
        assert_eq!(tpl.find_partition("a", 1).unwrap().offset(), Offset::Offset(1));
        assert_eq!(tpl.find_partition("b", 0).unwrap().offset(), Offset::Offset(10));
        assert!(t.is_empty());
    }

    #[test]
    fn lag_is_high_minus_committed_or_everything_held_without_a_commit() {
        assert_eq!(partition_lag(Some(5), 0, 20), 15);
        assert_eq!(partition_lag(Some(20), 0, 20), 0);
        assert_eq!(partition_lag(None, 3, 20), 17);
        // Committed below the low watermark (records expired): only what is still held counts.
        assert_eq!(partition_lag(Some(1), 10, 20), 10);
    }

    #[test]
    fn producers_compress_only_for_a_broker_on_another_machine() {
        for local in [
            "127.0.0.1:9092",
            "localhost:29092",
            "[::1]:9092",
            "127.0.0.1:1,localhost:2",
            "PLAINTEXT://127.0.0.1:9092",
        ] {
            assert_eq!(compression_for(local), "none", "{local}");
        }
        for remote in [
            "kafka.example.org:9092",
            "10.0.0.5:9092",
            "127.0.0.1:9092,10.0.0.5:9092",
            "[fd00::1]:9092",
        ] {
            assert_eq!(compression_for(remote), "lz4", "{remote}");
        }
    }
}
