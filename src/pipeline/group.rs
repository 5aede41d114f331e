//! A stage as one worker of its consumer group: the name the broker knows each worker by, and what
//! a worker must do when the group moves partitions between workers.
//!
//! Several transforms (or consumers) of one group share the input partitions by Kafka's group
//! protocol: each `lab transform --worker N` process, or each task of `--workers N`, is one static
//! member. On a rebalance a worker may hold records it read before the partition was taken away:
//! - the eager protocol (real brokers) revokes every partition and assigns them again, each read on
//!   from the group's committed offset, so records read before the revoke come again;
//! - under KIP-848 (the mock cluster) only the partitions that move are revoked; the others keep
//!   their read position.
//!
//! Either way, records of a revoked partition read before its revoke are stale: whoever owns the
//! partition now reads them again from the committed offset. [`GroupEvents`] remembers which
//! partitions were revoked, so that `kafka::next_batch` drops those records and the consumer drops
//! its buffers of them (a transform committing them would write them twice, and a consumer would
//! buffer them twice). Before the revoke completes, the consumer's hook waits for the raw-zone
//! files it is writing, so the next owner finds them when it learns what is durable.

use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance, RebalanceProtocol};
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientContext, TopicPartitionList};

use super::StageCounters;

/// The name a worker is known by to the broker: its static membership (`group.instance.id`), its
/// `client.id` (what the monitor lists for each member) and the transform's transactional id.
/// Without a worker number: the group itself, one process per group (as before workers existed, so
/// an upgraded lab keeps its transactional id). Worker N: `<group>.wN`.
#[must_use]
pub fn member_name(group: &str, worker: Option<u32>) -> String {
    match worker {
        None => group.to_string(),
        Some(n) => format!("{group}.w{n}"),
    }
}

/// The worker number in a member name made by [`member_name`] for `group`.
#[must_use]
pub fn worker_of(group: &str, member: &str) -> Option<u32> {
    member.strip_prefix(group)?.strip_prefix(".w")?.parse().ok()
}

/// Called before partitions are revoked; blocks the consumer's poll until it returns.
pub type BeforeRevoke = Box<dyn Fn() + Send + Sync>;

/// The stages' consumer context: counts rebalances and logs the partitions each one revoked.
#[derive(Default)]
pub struct GroupEvents {
    rebalances: AtomicU64,
    /// Partitions revoked since the stage last took them (see [`GroupEvents::take_revoked`]).
    revoked: Mutex<Vec<(String, i32)>>,
    before_revoke: Option<BeforeRevoke>,
    /// Set once the stage has left its group and its consumer is about to close (see
    /// [`GroupEvents::closing`]).
    closing: AtomicBool,
    /// The group's rebalance protocol as last seen before the close: 0 unknown, 1 eager, 2
    /// cooperative (asking during the close can hang, librdkafka issue #4041).
    protocol: AtomicU8,
    /// The stage's counters, told of an outage when the group takes the partitions away because
    /// the member's session ran out (see [`GroupEvents::noting_lost_assignments`]).
    outages: Option<Arc<StageCounters>>,
}

impl GroupEvents {
    #[must_use]
    pub fn with_before_revoke(hook: BeforeRevoke) -> Self {
        Self {
            before_revoke: Some(hook),
            ..Self::default()
        }
    }

    /// A revoke of a lost assignment (librdkafka's `rd_kafka_assignment_lost`: the member's session
    /// timed out without an answer from the coordinator, a frozen or restarted broker; also a
    /// member that went too long between polls, which rejoins the same way) counts as an outage of
    /// the broker on `counters`. The member then joins again under its static name, and
    /// the broker may fence what it still had in flight under its old registration: with the
    /// outage noted, [`super::kafka::rejoin_when_fenced_early`] joins again instead of ending the
    /// stage. A stage that saw no transport error during the freeze (its connections stay open)
    /// had no other sign of it.
    #[must_use]
    pub fn noting_lost_assignments(mut self, counters: Arc<StageCounters>) -> Self {
        self.outages = Some(counters);
        self
    }

    /// Runs the stage's hook for partitions about to be revoked (see [`GroupEvents::with_before_revoke`]).
    pub fn before_revoking(&self) {
        if let Some(hook) = &self.before_revoke {
            hook();
        }
    }

    /// The consumer is about to close: from now on every rebalance is answered by giving partitions
    /// up, and none at all once the group has terminated. Taking an assignment during the close
    /// never returns, nor does any answer after the group terminated (librdkafka issue #4884: seen
    /// here, a process's workers hung in `rd_kafka_assign` as they closed while their group
    /// rebalanced, and a drain's consumer in `rd_kafka_assign(NULL)` after a broker restart).
    pub fn closing(&self) {
        self.closing.store(true, Ordering::Release);
    }

    /// Rebalances (assignments and revokes) handled so far.
    pub fn rebalances(&self) -> u64 {
        self.rebalances.load(Ordering::Acquire)
    }

    /// How many revoked partitions are logged: a mark for [`GroupEvents::revoked_since`].
    pub fn revoked_mark(&self) -> usize {
        self.lock().len()
    }

    /// Whether `topic`/`partition` was revoked after `mark`.
    pub fn revoked_since(&self, mark: usize, topic: &str, partition: i32) -> bool {
        self.lock()
            .get(mark..)
            .is_some_and(|after| after.iter().any(|(t, p)| t == topic && *p == partition))
    }

    /// When a rebalance was handled since `seen`: drops from `batch` the records of partitions
    /// revoked after `mark`, which were read before their revoke, then brings `seen` and `mark` up
    /// to date (records read after this point are fresh, whatever an earlier revoke said).
    pub fn drop_stale<T>(
        &self,
        batch: &mut Vec<T>,
        seen: &mut u64,
        mark: &mut usize,
        partition_of: impl Fn(&T) -> (&str, i32),
    ) {
        let now = self.rebalances();
        if now == *seen {
            return;
        }
        *seen = now;
        let before = batch.len();
        batch.retain(|r| {
            let (topic, partition) = partition_of(r);
            !self.revoked_since(*mark, topic, partition)
        });
        *mark = self.revoked_mark();
        if batch.len() < before {
            tracing::info!(
                dropped = before - batch.len(),
                "records of revoked partitions dropped from the batch"
            );
        }
    }

    /// The partitions revoked since the last call, and forgets them.
    pub fn take_revoked(&self) -> Vec<(String, i32)> {
        std::mem::take(&mut *self.lock())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(String, i32)>> {
        self.revoked.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl ClientContext for GroupEvents {}

impl ConsumerContext for GroupEvents {
    /// rdkafka's own handling (the hooks around taking or giving up the partitions), except while
    /// closing, when every event gives them up (see [`GroupEvents::closing`]).
    fn rebalance(&self, consumer: &BaseConsumer<Self>, err: RDKafkaRespErr, tpl: &mut TopicPartitionList) {
        let closing = self.closing.load(Ordering::Acquire);
        let cooperative = if closing {
            self.protocol.load(Ordering::Acquire) == 2
        } else {
            let cooperative = matches!(consumer.rebalance_protocol(), RebalanceProtocol::Cooperative);
            self.protocol.store(if cooperative { 2 } else { 1 }, Ordering::Release);
            cooperative
        };
        let assign = err == RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS;
        let rebalance = match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => Rebalance::Assign(tpl),
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => Rebalance::Revoke(tpl),
            other => Rebalance::Error(KafkaError::Rebalance(other.into())),
        };
        self.pre_rebalance(consumer, &rebalance);
        if closing && consumer.closed() {
            // The group has terminated: librdkafka drops what `assign` would send it without a
            // reply, so answering would wait for ever (librdkafka issue #4884). Nothing is owed.
            tracing::info!(
                assign,
                "a group rebalance arrived after the group closed; left unanswered"
            );
            self.post_rebalance(consumer, &rebalance);
            return;
        }
        let answered = match (assign, cooperative, closing) {
            (true, false, false) => consumer.assign(tpl),
            (true, true, _) => consumer.incremental_assign(tpl),
            (false, true, _) => consumer.incremental_unassign(tpl),
            // A revoke, or anything while closing, on the eager protocol: give everything up.
            (_, false, _) => consumer.unassign(),
        };
        if let Err(e) = answered {
            tracing::warn!(error = %e, assign, closing, "answering a group rebalance failed");
        }
        self.post_rebalance(consumer, &rebalance);
    }

    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(tpl) = rebalance {
            if consumer.assignment_lost() {
                tracing::warn!(
                    "the group took this member's partitions away: its session ran out (no answer from the broker) or it went too long between polls"
                );
                if let Some(counters) = &self.outages {
                    counters.note_outage();
                }
            }
            self.before_revoking();
            let gone: Vec<(String, i32)> = tpl
                .elements()
                .iter()
                .map(|e| (e.topic().to_string(), e.partition()))
                .collect();
            tracing::info!(partitions = gone.len(), "partitions revoked by a group rebalance");
            self.lock().extend(gone);
        }
    }

    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(tpl) = rebalance {
            tracing::info!(partitions = tpl.count(), "partitions assigned by a group rebalance");
        }
        self.rebalances.fetch_add(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A member whose broker stops answering loses its assignment once its session runs out, and
    /// the stage's counters then hold an outage, which lets the stage join again when the broker
    /// fences its old registration (as after a frozen test broker, `tests/tui_stages.rs`).
    #[test]
    fn a_session_that_runs_out_counts_as_an_outage() {
        use rdkafka::ClientConfig;
        use rdkafka::mocking::MockCluster;
        use std::time::{Duration, Instant};
        let mock = MockCluster::new(1).unwrap();
        mock.create_topic("t", 2, 1).unwrap();
        let counters = Arc::new(StageCounters::default());
        let member: BaseConsumer<GroupEvents> = ClientConfig::new()
            .set("bootstrap.servers", mock.bootstrap_servers())
            .set("group.id", "g")
            .set("group.instance.id", "g-member")
            .set("session.timeout.ms", "6000")
            .set("heartbeat.interval.ms", "500")
            .create_with_context(GroupEvents::default().noting_lost_assignments(Arc::clone(&counters)))
            .unwrap();
        member.subscribe(&["t"]).unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while member.assignment().map_or(0, |a| a.count()) == 0 {
            assert!(Instant::now() < deadline, "never joined the group");
            drop(member.poll(Duration::from_millis(100)));
        }
        assert!(!counters.outage_within(Duration::from_secs(60)));
        mock.broker_down(1).unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while !counters.outage_within(Duration::from_secs(60)) {
            assert!(
                Instant::now() < deadline,
                "no outage noted 30 s after the broker went silent"
            );
            drop(member.poll(Duration::from_millis(100)));
        }
    }

    #[test]
    fn one_worker_keeps_the_group_name_and_numbered_workers_get_their_own() {
        assert_eq!(member_name("lab-transform-yelp", None), "lab-transform-yelp");
        assert_eq!(member_name("lab-transform-yelp", Some(2)), "lab-transform-yelp.w2");
        assert_eq!(worker_of("lab-transform-yelp", "lab-transform-yelp.w2"), Some(2));
        assert_eq!(worker_of("lab-transform-yelp", "lab-transform-yelp"), None);
        assert_eq!(worker_of("lab-transform-yelp", "other.w2"), None);
    }

    #[test]
    fn a_rebalance_drops_the_records_of_partitions_it_revoked_and_only_those() {
        let events = GroupEvents::default();
        events.lock().push(("a".into(), 2)); // revoked before this batch began
        let (mut mark, mut seen) = (events.revoked_mark(), events.rebalances());
        let mut batch = vec![("a", 0, 10), ("a", 1, 11), ("a", 2, 12), ("b", 1, 13)];
        fn partition_of<'r>(r: &'r (&'static str, i32, i64)) -> (&'r str, i32) {
            (r.0, r.1)
        }
        // No rebalance yet: nothing is stale, whatever the log holds.
        events.drop_stale(&mut batch, &mut seen, &mut mark, partition_of);
        assert_eq!(batch.len(), 4);
        // A revoke of a/1 and b/1 (b/1 assigned again at once: still stale, its owner reads it again).
        events.lock().extend([("a".to_string(), 1), ("b".to_string(), 1)]);
        events.rebalances.fetch_add(2, Ordering::AcqRel);
        events.drop_stale(&mut batch, &mut seen, &mut mark, partition_of);
        let offsets: Vec<i64> = batch.iter().map(|r| r.2).collect();
        assert_eq!(
            offsets,
            vec![10, 12],
            "a/1 and b/1 dropped; a/2 was revoked before the batch began"
        );
        assert_eq!(seen, events.rebalances());
        // Records read after the rebalance are fresh, also when a later rebalance revokes another
        // partition: a/1 was assigned again, and only b/2 goes.
        batch.extend([("a", 1, 20), ("b", 2, 21)]);
        events.lock().push(("b".to_string(), 2));
        events.rebalances.fetch_add(1, Ordering::AcqRel);
        events.drop_stale(&mut batch, &mut seen, &mut mark, partition_of);
        let offsets: Vec<i64> = batch.iter().map(|r| r.2).collect();
        assert_eq!(offsets, vec![10, 12, 20]);
    }

    #[test]
    fn revokes_are_seen_after_their_mark_and_taken_once() {
        let events = GroupEvents::default();
        events.lock().push(("a".into(), 0));
        let mark = events.revoked_mark();
        assert!(!events.revoked_since(mark, "a", 0), "revoked before the mark");
        events.lock().push(("a".into(), 1));
        assert!(events.revoked_since(mark, "a", 1));
        assert!(!events.revoked_since(mark, "b", 1));
        assert_eq!(events.take_revoked().len(), 2);
        assert!(events.take_revoked().is_empty());
        // A mark past the log after a take sees nothing, and does not panic.
        assert!(!events.revoked_since(mark, "a", 1));
    }
}
