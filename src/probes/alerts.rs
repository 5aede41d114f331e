//! Lag alerts: the consumer groups of the Kafka probe's snapshot that are further behind than
//! their threshold (`lab.toml` `[alerts]`), with how long catching up takes at their current rate.
//! Read by the monitor (red group, banner) and by `lab status` (fails while Kafka is required).

use serde::Serialize;

use super::kafka::KafkaSnapshot;
use crate::config::LagAlerts;

/// A group over its threshold.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LagBreach {
    pub group: String,
    pub lag: i64,
    pub threshold: u64,
    /// Seconds to catch up at the group's current rate; `None` when it is not moving.
    pub catch_up_s: Option<f64>,
}

impl LagBreach {
    /// One line for a banner or `lab status`.
    #[must_use]
    pub fn describe(&self) -> String {
        let catch_up = match self.catch_up_s {
            Some(s) if s.is_finite() && s > 0.0 => format!("catches up in about {} at its current rate", seconds(s)),
            _ => "not catching up (nothing consumed since the last poll)".into(),
        };
        format!(
            "lag alert: {} is {} records behind (alert above {}); {catch_up}",
            self.group, self.lag, self.threshold
        )
    }
}

fn seconds(s: f64) -> String {
    let s = s.round() as u64;
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min {} s", s / 60, s % 60),
        _ => format!("{} h {} min", s / 3600, (s % 3600) / 60),
    }
}

/// The groups over their threshold, the furthest behind first.
#[must_use]
pub fn breaches(alerts: &LagAlerts, kafka: &KafkaSnapshot) -> Vec<LagBreach> {
    let mut over: Vec<LagBreach> = kafka
        .groups
        .iter()
        .filter_map(|g| {
            let threshold = alerts.threshold(&g.name)?;
            (g.total_lag > i64::try_from(threshold).unwrap_or(i64::MAX)).then(|| LagBreach {
                group: g.name.clone(),
                lag: g.total_lag,
                threshold,
                catch_up_s: g.catch_up_s,
            })
        })
        .collect();
    over.sort_by(|a, b| b.lag.cmp(&a.lag).then(a.group.cmp(&b.group)));
    over
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::probes::kafka::Group;

    fn group(name: &str, lag: i64, catch_up_s: Option<f64>) -> Group {
        Group {
            name: name.into(),
            total_lag: lag,
            catch_up_s,
            ..Group::default()
        }
    }

    #[test]
    fn a_group_over_its_own_or_the_general_threshold_is_in_alert() {
        let kafka = KafkaSnapshot {
            groups: vec![
                group("lab-transform-yelp", 1_500, Some(90.0)),
                group("lab-consumer-yelp", 600, None),
                group("quiet", 10, Some(0.0)),
            ],
            ..KafkaSnapshot::default()
        };
        let alerts = LagAlerts {
            lag: Some(1_000),
            groups: BTreeMap::from([("lab-consumer-yelp".to_string(), 500), ("quiet".to_string(), 10)]),
        };
        let over = breaches(&alerts, &kafka);
        let names: Vec<&str> = over.iter().map(|b| b.group.as_str()).collect();
        assert_eq!(
            names,
            ["lab-transform-yelp", "lab-consumer-yelp"],
            "at the threshold is no alert"
        );
        assert_eq!(
            over[0].describe(),
            "lag alert: lab-transform-yelp is 1500 records behind (alert above 1000); catches up in about 1 min 30 s at its current rate"
        );
        assert!(over[1].describe().contains("not catching up"), "{}", over[1].describe());
        assert!(
            breaches(&LagAlerts::default(), &kafka).is_empty(),
            "no thresholds, no alerts"
        );
    }
}
