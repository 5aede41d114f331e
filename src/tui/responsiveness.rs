//! How late the monitor's runtime runs a task that is due: the wait a key press or a redraw sees
//! when something blocks the async workers (blocking work belongs on blocking threads; a stage run
//! from the monitor shares its runtime). Measured all along, logged when the monitor quits.

use std::time::Duration;

use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

/// How often the watcher asks to be woken: often enough to see a stall a user would feel, rare
/// enough to cost nothing on an idle monitor.
const EVERY: Duration = Duration::from_millis(100);

/// A delay logged as it happens: one a user takes for a lost key.
const STALL: Duration = Duration::from_secs(1);

/// Upper bounds of the delay buckets (the last bucket holds the rest).
const BOUNDS_MS: [u64; 4] = [10, 50, 100, 250];

/// Wake-up delays seen while the monitor ran.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Delays {
    pub checks: u64,
    pub worst: Duration,
    /// Checks per bucket: under 10 ms, 10–50, 50–100, 100–250, 250 ms and over.
    pub buckets: [u64; BOUNDS_MS.len() + 1],
}

impl Delays {
    fn record(&mut self, late: Duration) {
        self.checks += 1;
        self.worst = self.worst.max(late);
        let ms = u64::try_from(late.as_millis()).unwrap_or(u64::MAX);
        let bucket = BOUNDS_MS.iter().position(|b| ms < *b).unwrap_or(BOUNDS_MS.len());
        self.buckets[bucket] += 1;
    }

    /// Checks that waited 50 ms or more: a delay a typing user notices.
    #[must_use]
    pub fn noticeable(&self) -> u64 {
        self.buckets[2..].iter().sum()
    }
}

/// Wakes every [`EVERY`] until `cancel`, recording how late each wake-up came.
pub async fn watch(cancel: CancellationToken) -> Delays {
    let mut delays = Delays::default();
    let mut ticks = tokio::time::interval(EVERY);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    ticks.tick().await;
    let mut due = Instant::now() + EVERY;
    loop {
        tokio::select! {
            // Cancelled first: a tick overdue when the cancel came does not count as a wake-up.
            biased;
            () = cancel.cancelled() => return delays,
            _ = ticks.tick() => {}
        }
        let now = Instant::now();
        let late = now.saturating_duration_since(due);
        if late >= STALL {
            // Said when it happens: a key that seemed lost is explained by the log's time.
            tracing::warn!(
                late_ms = late.as_millis(),
                "the monitor's runtime was blocked: keys and redraws waited"
            );
        }
        delays.record(late);
        due = now + EVERY;
    }
}

/// Logs what [`watch`] saw, for the measurement in the README.
pub fn log(delays: &Delays) {
    tracing::info!(
        checks = delays.checks,
        worst_ms = delays.worst.as_millis(),
        under_10ms = delays.buckets[0],
        from_10_to_50ms = delays.buckets[1],
        from_50_to_100ms = delays.buckets[2],
        from_100_to_250ms = delays.buckets[3],
        from_250ms = delays.buckets[4],
        "monitor responsiveness: how late the runtime woke a due task"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_fall_into_their_buckets() {
        let mut d = Delays::default();
        for ms in [0, 9, 10, 49, 50, 99, 100, 249, 250, 4000] {
            d.record(Duration::from_millis(ms));
        }
        assert_eq!(d.buckets, [2, 2, 2, 2, 2]);
        assert_eq!(d.checks, 10);
        assert_eq!(d.worst, Duration::from_secs(4));
        assert_eq!(d.noticeable(), 6);
    }

    /// A worker blocked for 300 ms (what a synchronous commit on the runtime does) shows.
    #[tokio::test(flavor = "current_thread")]
    async fn a_blocked_runtime_shows_as_a_late_wake_up() {
        let cancel = CancellationToken::new();
        let watcher = tokio::spawn(watch(cancel.clone()));
        tokio::time::sleep(Duration::from_millis(250)).await;
        std::thread::sleep(Duration::from_millis(300));
        tokio::time::sleep(Duration::from_millis(150)).await;
        cancel.cancel();
        let delays = watcher.await.unwrap();
        assert!(delays.worst >= Duration::from_millis(150), "{delays:?}");
        assert!(delays.noticeable() >= 1, "{delays:?}");
    }
}
