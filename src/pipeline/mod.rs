//! The streaming stages: producer (files → Kafka), stream transform (validate/clean/enrich, DLQ),
//! consumer (Kafka → raw zone Parquet) and batch (DataFusion SQL → PostgreSQL serving tables).
//!
//! Delivery guarantee: every stage is at-least-once — it commits its input offsets only after its
//! output is acknowledged by Kafka or durably written — and everything downstream is idempotent:
//! the consumer skips offsets already in the raw zone, and the batch deduplicates by record id and
//! replaces the serving tables whole, so a crash anywhere neither loses nor doubles a record in them.

pub mod batch;
pub mod clean;
pub mod compact;
pub mod embedded;
pub mod group;
pub mod kafka;
mod part;
pub mod producer;
pub mod quality;
mod resume;
pub mod sink;
pub mod stage;
pub mod stats;
pub mod status_file;
pub mod topics;
pub mod transform;
pub mod txn_audit;

pub use stats::{Backpressure, StageCounters, StageSnapshot};
pub use topics::Topics;

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(
        "Kafka: cannot {action} (brokers {brokers}): {detail}\nis the broker running and reachable? pass --brokers HOST:PORT or set LAB_KAFKA_BROKERS (`lab demo` needs no broker)"
    )]
    Kafka {
        action: String,
        brokers: String,
        detail: String,
        /// Whether the failure passes by itself (the broker restarting or briefly unreachable, a
        /// coordinator moving): a stage rides such failures out (see [`kafka::BrokerOutage`]).
        transient: bool,
    },
    #[error(transparent)]
    Read(#[from] crate::dataset::reader::ReadError),
    #[error(transparent)]
    Storage(#[from] crate::storage::StorageError),
    #[error("cannot write Parquet for {entity}: {detail}")]
    Parquet { entity: String, detail: String },
    #[error(
        "raw zone {zone}: it holds {entity} files for partition {partition} of {topic}, but consumer group {group} \
         has no record of writing them (its committed offset carries no raw-zone epoch: it was set by another tool or \
         an older lab), so the consumer cannot tell which records are already there. Nothing was written or skipped.\n\
         to land the topic again, move {zone}/{entity} aside (or delete it), or use another --raw-zone"
    )]
    UnknownRawZoneFiles {
        zone: String,
        entity: String,
        topic: String,
        partition: i32,
        group: String,
    },
    #[error(
        "another process joined this stage's consumer group as the same member and replaced this one: \
         run one process per group (stop the other), or give one of them its own --group"
    )]
    Fenced,
    #[error(
        "Kafka (brokers {brokers}): {records} record(s) of transactions this transform committed are not visible to \
         read_committed readers after the broker came back (e.g. {example}), while their input offsets stay committed: \
         the broker lost those transactions (or one still open holds them back), so exactly-once does not hold on it. \
         The stage stopped instead of losing records silently.\n\
         run the transform with --delivery at-least-once on this broker (nothing is lost; the batch removes re-sent \
         records); to get the hidden records back, transform the raw topics again under a new --group"
    )]
    TransactionsLost {
        brokers: String,
        records: usize,
        example: String,
    },
    /// Stopped on request (Ctrl-C, the monitor's `:stop`).
    #[error("cancelled")]
    Cancelled,
    #[error("{0}")]
    Other(String),
}

impl PipelineError {
    pub fn kafka(action: &str, brokers: &str, e: impl kafka::KafkaDetail) -> Self {
        PipelineError::Kafka {
            action: action.to_string(),
            brokers: brokers.to_string(),
            transient: e.is_transient(),
            detail: e.to_string(),
        }
    }

    /// A Kafka failure that passes by itself (see [`PipelineError::Kafka`]).
    #[must_use]
    pub fn is_transient(&self) -> bool {
        matches!(self, PipelineError::Kafka { transient: true, .. })
    }
}

/// When a long-running stage (transform, consumer) ends on its own.
#[derive(Debug, Clone, Default)]
pub enum StopWhen {
    /// Run until cancelled (Ctrl-C).
    #[default]
    Cancelled,
    /// End once the input topics are fully read and, if given, the upstream stage is done and
    /// the other workers of this process are caught up too.
    CaughtUp {
        upstream: Option<std::sync::Arc<StageCounters>>,
        /// This worker's slot among the process's workers that end together.
        together: Option<(std::sync::Arc<CaughtUpTogether>, usize)>,
    },
}

/// Workers of one process that end together (`--workers N --until-caught-up`): each ends only
/// once every one of them has found its input read to the end. A worker ending alone while
/// another still joins the group would leave that one's rebalance waiting for it: a static member
/// that stops sends no leave, and the broker waits for it (Kafka until `session.timeout.ms`, the
/// test broker for good; seen: a drain by three workers hung when two ended before the third had
/// joined).
#[derive(Debug)]
pub struct CaughtUpTogether {
    caught_up: std::sync::Mutex<Vec<bool>>,
}

impl CaughtUpTogether {
    #[must_use]
    pub fn new(workers: usize) -> std::sync::Arc<Self> {
        std::sync::Arc::new(Self {
            caught_up: std::sync::Mutex::new(vec![false; workers]),
        })
    }

    /// Records whether the worker in `slot` is caught up; whether all of them are.
    fn report(&self, slot: usize, caught_up: bool) -> bool {
        let mut all = self.caught_up.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(mine) = all.get_mut(slot) {
            *mine = caught_up;
        }
        all.iter().all(|c| *c)
    }
}

impl StopWhen {
    /// Whether a stage whose input lag is `lag` (`None` = not known yet) should end now.
    #[must_use]
    pub fn reached(&self, lag: Option<i64>) -> bool {
        let mine = lag == Some(0) && self.only_lag_left();
        match self {
            StopWhen::CaughtUp {
                together: Some((peers, slot)),
                ..
            } => peers.report(*slot, mine),
            _ => mine,
        }
    }

    /// The same for worker `slot` of `peers`, which end together.
    #[must_use]
    pub fn together(self, peers: &std::sync::Arc<CaughtUpTogether>, slot: usize) -> Self {
        match self {
            StopWhen::CaughtUp { upstream, .. } => StopWhen::CaughtUp {
                upstream,
                together: Some((std::sync::Arc::clone(peers), slot)),
            },
            StopWhen::Cancelled => StopWhen::Cancelled,
        }
    }

    /// Whether only the lag stands between the stage and its end: then a stage that finds nothing
    /// to read checks its lag at once, not at its next periodic check (which made `lab demo`'s
    /// stages end up to a second each after their input did).
    #[must_use]
    pub fn only_lag_left(&self) -> bool {
        match self {
            StopWhen::Cancelled => false,
            StopWhen::CaughtUp { upstream, .. } => upstream.as_ref().is_none_or(|u| u.is_done()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn stop_when_caught_up_waits_for_upstream_and_zero_lag() {
        assert!(!StopWhen::Cancelled.reached(Some(0)));
        let upstream = Arc::new(StageCounters::default());
        let stop = StopWhen::CaughtUp {
            upstream: Some(upstream.clone()),
            together: None,
        };
        assert!(!stop.reached(Some(0)), "upstream still running");
        assert!(!stop.only_lag_left());
        upstream.finish();
        assert!(stop.only_lag_left());
        assert!(!StopWhen::Cancelled.only_lag_left());
        assert!(!stop.reached(None), "lag unknown (no assignment yet)");
        assert!(!stop.reached(Some(3)));
        assert!(stop.reached(Some(0)));
        assert!(
            StopWhen::CaughtUp {
                upstream: None,
                together: None
            }
            .reached(Some(0))
        );
    }

    #[test]
    fn workers_that_end_together_end_only_when_all_are_caught_up() {
        let peers = CaughtUpTogether::new(2);
        let caught_up = StopWhen::CaughtUp {
            upstream: None,
            together: None,
        };
        let (w0, w1) = (caught_up.clone().together(&peers, 0), caught_up.together(&peers, 1));
        assert!(!w0.reached(Some(0)), "w1 has not reported");
        assert!(!w1.reached(None), "w1 without a lag yet");
        assert!(!w0.reached(Some(0)));
        assert!(w1.reached(Some(0)), "both caught up");
        assert!(w0.reached(Some(0)));
        // A worker that falls behind again holds the others back.
        assert!(!w1.reached(Some(5)));
        assert!(!w0.reached(Some(0)));
    }
}
