//! Live counters each stage updates and the progress views read (lock-free, cheap to bump; only
//! the time of the last broker outage sits behind a mutex, touched only around an outage).

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU8, AtomicU64, Ordering};

use serde::Serialize;

use super::transform::Delivery;

#[derive(Debug, Default)]
pub struct StageCounters {
    /// Records read from the stage's input.
    pub input: AtomicU64,
    /// Records the stage delivered downstream (acknowledged by Kafka or durably written): the
    /// transform's and the consumer's without their dead letters (`dlq`), the producer's all it
    /// sent (it checks each was acknowledged).
    pub output: AtomicU64,
    /// Records sent to the dead-letter topic.
    pub dlq: AtomicU64,
    /// Records skipped because they were already durable (a restart re-read them).
    pub skipped: AtomicU64,
    /// Payload bytes read.
    pub bytes: AtomicU64,
    /// Payload bytes written to the stage's main output topic (not the DLQ).
    pub out_bytes: AtomicU64,
    /// Files written (consumer) .
    pub files: AtomicU64,
    /// Messages behind the high watermark on the stage's input topics; -1 while unknown.
    pub lag: AtomicI64,
    /// Set when the stage has finished (successfully or not).
    pub done: AtomicBool,
    /// How the stage delivers (the transform says once it knows): 0 unknown, see [`Delivery`].
    delivery: AtomicU8,
    /// Set while the stage waits out an unreachable broker.
    waiting_for_broker: AtomicBool,
    /// When the stage last found the broker unreachable (kept across the runs of a stage that
    /// joins its group again, see [`super::kafka::rejoin_when_fenced_early`]).
    last_outage: std::sync::Mutex<Option<std::time::Instant>>,
}

/// A point-in-time copy of [`StageCounters`].
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct StageSnapshot {
    pub input: u64,
    pub output: u64,
    pub dlq: u64,
    pub skipped: u64,
    pub bytes: u64,
    pub files: u64,
    pub lag: i64,
    pub done: bool,
    /// The transform's delivery, once chosen (exactly-once or at-least-once).
    pub delivery: Option<Delivery>,
    /// The stage is waiting out an unreachable broker.
    pub waiting_for_broker: bool,
}

impl StageCounters {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// The broker was unreachable just now.
    pub fn note_outage(&self) {
        *self
            .last_outage
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(std::time::Instant::now());
    }

    /// Whether the broker was unreachable within the last `period`.
    #[must_use]
    pub fn outage_within(&self, period: std::time::Duration) -> bool {
        self.last_outage
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .is_some_and(|at| at.elapsed() < period)
    }

    pub fn set_lag(&self, lag: i64) {
        self.lag.store(lag, Ordering::Relaxed);
    }

    pub fn set_delivery(&self, delivery: Delivery) {
        let code = match delivery {
            Delivery::ExactlyOnce => 1,
            Delivery::AtLeastOnce => 2,
        };
        self.delivery.store(code, Ordering::Relaxed);
    }

    pub fn set_waiting_for_broker(&self, waiting: bool) {
        self.waiting_for_broker.store(waiting, Ordering::Relaxed);
    }

    pub fn finish(&self) {
        self.done.store(true, Ordering::Release);
    }

    /// Running again: the endless feed sends its next dataset through the same counters.
    pub fn reopen(&self) {
        self.done.store(false, Ordering::Release);
    }

    #[must_use]
    pub fn is_done(&self) -> bool {
        self.done.load(Ordering::Acquire)
    }

    #[must_use]
    pub fn snapshot(&self) -> StageSnapshot {
        StageSnapshot {
            input: self.input.load(Ordering::Relaxed),
            output: self.output.load(Ordering::Relaxed),
            dlq: self.dlq.load(Ordering::Relaxed),
            skipped: self.skipped.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
            files: self.files.load(Ordering::Relaxed),
            lag: self.lag.load(Ordering::Relaxed),
            done: self.is_done(),
            delivery: match self.delivery.load(Ordering::Relaxed) {
                1 => Some(Delivery::ExactlyOnce),
                2 => Some(Delivery::AtLeastOnce),
                _ => None,
            },
            waiting_for_broker: self.waiting_for_broker.load(Ordering::Relaxed),
        }
    }
}

/// Keeps a stage at most `budget_bytes` ahead of the stage that reads its output.
///
/// Needed where the broker may drop unread data: librdkafka's in-process mock cluster keeps at
/// most 5 MB per partition and silently discards older messages, so in `lab demo` a fast producer
/// would otherwise outrun the transform and lose records.
#[derive(Debug, Clone)]
pub struct Backpressure {
    pub downstream: std::sync::Arc<StageCounters>,
    pub budget_bytes: u64,
}

impl Backpressure {
    /// Whether `stage` has written (`out_bytes`) too far ahead of what the downstream stage has
    /// read (`bytes`). A finished downstream stage reads nothing more, so it never holds anyone
    /// back (its own error is reported by it).
    #[must_use]
    pub fn should_wait(&self, stage: &StageCounters) -> bool {
        let written = stage.out_bytes.load(Ordering::Relaxed);
        !self.downstream.is_done()
            && written.saturating_sub(self.downstream.bytes.load(Ordering::Relaxed)) > self.budget_bytes
    }
}

impl StageSnapshot {
    /// Records per second between two snapshots `secs` apart.
    #[must_use]
    #[allow(clippy::cast_precision_loss)]
    pub fn rate_since(&self, earlier: &StageSnapshot, secs: f64) -> f64 {
        if secs <= 0.0 {
            0.0
        } else {
            self.output.saturating_sub(earlier.output) as f64 / secs
        }
    }
}
