//! What the Overview's sparklines draw: a bounded, timestamped history of one figure per service,
//! fed by every probe answer. Each point carries its time because the probes answer at their own
//! interval (and back off while a service is down), so "the DLQ grew by N in the last minute" is
//! read from the times, not from a count of points.

use std::collections::VecDeque;

use chrono::{DateTime, Duration, Utc};

use crate::probes::ServiceSnapshot;

/// Points kept per figure: two minutes of Kafka answers (one a second), four of the others'.
pub const TREND_LEN: usize = 120;

/// One figure over time, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Trend {
    points: VecDeque<(DateTime<Utc>, u64)>,
}

impl Trend {
    pub fn push(&mut self, at: DateTime<Utc>, value: u64) {
        if self.points.len() == TREND_LEN {
            self.points.pop_front();
        }
        self.points.push_back((at, value));
    }

    #[must_use]
    pub fn last(&self) -> Option<u64> {
        self.points.back().map(|p| p.1)
    }

    /// The newest `n` values, oldest first (what a sparkline of width `n` draws).
    #[must_use]
    pub fn newest(&self, n: usize) -> Vec<u64> {
        let skip = self.points.len().saturating_sub(n);
        self.points.iter().skip(skip).map(|p| p.1).collect()
    }

    /// How much the figure changed over the last `window` before `now`, and over how long the
    /// history actually reaches back (shorter than `window` while it is young). `None` with fewer
    /// than two points.
    #[must_use]
    pub fn change(&self, window: Duration, now: DateTime<Utc>) -> Option<(i64, Duration)> {
        let &(last_at, last) = self.points.back()?;
        let since = now - window;
        // The oldest point inside the window, or the newest before it when none is inside.
        let from = self
            .points
            .iter()
            .rev()
            .find(|(at, _)| *at <= since)
            .or_else(|| self.points.front())?;
        if from.0 >= last_at {
            return None;
        }
        let delta = i64::try_from(last).unwrap_or(i64::MAX) - i64::try_from(from.1).unwrap_or(i64::MAX);
        Some((delta, last_at - from.0))
    }

    pub fn clear(&mut self) {
        self.points.clear();
    }
}

/// The sum of the rates known so far (a topic's or group's rate is known from its second answer
/// on); `None` only when none is.
#[must_use]
pub fn known_sum(rates: impl Iterator<Item = Option<f64>>) -> Option<f64> {
    rates.fold(None, |sum, r| match (sum, r) {
        (Some(s), Some(r)) => Some(s + r),
        (s, r) => s.or(r),
    })
}

/// The Overview's figures, one trend each.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Trends {
    /// Records per second written to every topic (what the broker takes in).
    pub kafka_in: Trend,
    /// Records per second the consumer groups read (the sum of their rates).
    pub kafka_out: Trend,
    /// Total lag of every consumer group.
    pub lag: Trend,
    /// Offsets held by the dead-letter topic.
    pub dlq: Trend,
    /// Bytes in the raw zone (on HDFS, or the embedded lab's local directory).
    pub raw_zone_bytes: Trend,
    /// Spark cores in use.
    pub spark_cores: Trend,
    /// Rows in the serving tables.
    pub serving_rows: Trend,
}

impl Trends {
    /// Adds what one probe answer says; an answer without figures (a service down) adds nothing,
    /// so a sparkline shows the figures it had, not zeros that never were.
    pub fn observe(&mut self, snap: &ServiceSnapshot, at: DateTime<Utc>) {
        let rounded = |r: f64| r.max(0.0).round() as u64;
        let non_negative = |n: i64| u64::try_from(n).unwrap_or(0);
        match snap {
            ServiceSnapshot::Kafka(p) => {
                let Some(k) = &p.detail else { return };
                if let Some(r) = known_sum(k.topics.iter().map(|t| t.rate_in)) {
                    self.kafka_in.push(at, rounded(r));
                }
                if let Some(r) = known_sum(k.groups.iter().map(|g| g.rate)) {
                    self.kafka_out.push(at, rounded(r));
                }
                self.lag.push(at, non_negative(k.total_lag()));
                // Only exact counts: offsets, or markers not counted out yet, would read as a
                // shrink once the census has counted them.
                if let crate::probes::kafka::DlqCount::Exact(n) = k.dlq_count() {
                    self.dlq.push(at, non_negative(n));
                }
            }
            ServiceSnapshot::Hdfs(p) => {
                if let Some(h) = &p.detail {
                    self.raw_zone_bytes.push(at, h.zone_bytes());
                }
            }
            ServiceSnapshot::RawZone(p) => {
                if let Some(z) = &p.detail {
                    self.raw_zone_bytes.push(at, z.bytes());
                }
            }
            ServiceSnapshot::Spark(p) => {
                if let Some(s) = &p.detail {
                    self.spark_cores.push(at, u64::from(s.coresused));
                }
            }
            ServiceSnapshot::Postgres(p) => {
                if let Some(pg) = &p.detail {
                    self.serving_rows.push(at, non_negative(pg.serving_rows()));
                }
            }
            ServiceSnapshot::Airflow(_) | ServiceSnapshot::Docker(_) => {}
        }
    }

    pub fn clear(&mut self) {
        *self = Self::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap()
    }

    #[test]
    fn a_sum_of_rates_counts_the_known_ones() {
        assert_eq!(known_sum([None, None].into_iter()), None);
        assert_eq!(known_sum([None, Some(2.0), Some(3.0)].into_iter()), Some(5.0));
    }

    #[test]
    fn a_trend_keeps_its_newest_points() {
        let mut t = Trend::default();
        for i in 0..(TREND_LEN as u64 + 3) {
            t.push(at(i as i64), i);
        }
        assert_eq!(t.newest(usize::MAX).len(), TREND_LEN);
        assert_eq!(t.newest(2), vec![TREND_LEN as u64 + 1, TREND_LEN as u64 + 2]);
        assert_eq!(t.last(), Some(TREND_LEN as u64 + 2));
    }

    #[test]
    fn change_reads_the_window_from_the_points_times() {
        let mut t = Trend::default();
        assert_eq!(t.change(Duration::seconds(60), at(0)), None);
        t.push(at(0), 10);
        assert_eq!(t.change(Duration::seconds(60), at(0)), None, "one point is no change");
        // Points every 10 s, growing by 1 each: over the last 60 s the figure grew by 6.
        for i in 1..=12 {
            t.push(at(i * 10), 10 + i as u64);
        }
        assert_eq!(
            t.change(Duration::seconds(60), at(120)),
            Some((6, Duration::seconds(60)))
        );
        // A young history says how far back it reaches.
        assert_eq!(
            t.change(Duration::seconds(600), at(120)),
            Some((12, Duration::seconds(120)))
        );
        // A shrinking figure (a topic recreated) is a negative change.
        t.push(at(130), 0);
        assert_eq!(
            t.change(Duration::seconds(10), at(130)),
            Some((-22, Duration::seconds(10)))
        );
    }
}
