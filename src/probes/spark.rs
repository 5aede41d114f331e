//! Spark standalone master: its web UI's `/json/` document (status, workers, applications).

use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::http;
use super::{LabService, ProbeError, Probed};

/// What the master reports (field names as in Spark's `/json/`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SparkSnapshot {
    pub url: String,
    /// `ALIVE`, `STANDBY`, `RECOVERING`…
    pub status: String,
    pub aliveworkers: u32,
    pub cores: u32,
    pub coresused: u32,
    /// MiB.
    pub memory: u64,
    pub memoryused: u64,
    pub workers: Vec<SparkWorker>,
    pub activeapps: Vec<SparkApp>,
    pub completedapps: Vec<SparkApp>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SparkWorker {
    pub id: String,
    pub host: String,
    pub state: String,
    pub cores: u32,
    pub coresused: u32,
    pub memory: u64,
    pub memoryused: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SparkApp {
    pub id: String,
    pub name: String,
    pub state: String,
    pub cores: i64,
    pub user: String,
    /// Milliseconds.
    pub duration: u64,
    pub starttime: i64,
}

impl SparkSnapshot {
    /// What makes a reachable master unusable for the batch layer.
    #[must_use]
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.status != "ALIVE" {
            problems.push(format!("master status is {:?}, not ALIVE", self.status));
        }
        if self.aliveworkers == 0 {
            problems.push("no alive worker: jobs cannot run (start a worker)".to_string());
        }
        problems
    }
}

pub struct SparkProbe {
    client: reqwest::Client,
    url: String,
}

impl SparkProbe {
    pub fn new(ui: &str) -> Result<Self, ProbeError> {
        Ok(Self {
            client: http::client(LabService::Spark)?,
            url: http::join(ui, "/json/"),
        })
    }

    pub async fn poll(&mut self) -> Probed<SparkSnapshot> {
        let started = Instant::now();
        let result = http::get_json::<SparkSnapshot>(&self.client, LabService::Spark, &self.url)
            .await
            .map(|snap| {
                let problems = snap.problems();
                (snap, problems)
            });
        Probed::from_result(result, started)
    }
}

/// Parses a `/json/` body (used by the probe and by fixture tests).
pub fn parse(body: &[u8]) -> Result<SparkSnapshot, ProbeError> {
    http::parse(LabService::Spark, "/json/", body)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::probes::test_fixture as fixture;

    #[test]
    fn idle_master_with_one_worker_is_healthy() {
        let s = parse(&fixture("spark_master_idle.json")).unwrap();
        assert_eq!(s.status, "ALIVE");
        assert_eq!(s.aliveworkers, 1);
        assert_eq!((s.cores, s.memory), (2, 2048));
        assert_eq!(s.workers[0].state, "ALIVE");
        assert!(s.activeapps.is_empty() && s.completedapps.is_empty());
        assert!(s.problems().is_empty());
    }

    #[test]
    fn running_and_completed_apps_are_read_with_duration() {
        let done = parse(&fixture("spark_master_apps.json")).unwrap();
        let app = &done.completedapps[0];
        assert_eq!((app.name.as_str(), app.state.as_str()), ("lab-fixture-job", "FINISHED"));
        assert!(app.duration > 0);
        let running = parse(&fixture("spark_master_running.json")).unwrap();
        assert_eq!(running.activeapps.len(), 1);
        assert_eq!(running.activeapps[0].state, "RUNNING");
        assert!(running.coresused > 0);
    }

    #[test]
    fn a_master_without_workers_is_degraded_and_partial_json_is_an_error() {
        let text = String::from_utf8(fixture("spark_master_idle.json")).unwrap();
        let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
        v["aliveworkers"] = 0.into();
        v["workers"] = serde_json::json!([]);
        let s = parse(v.to_string().as_bytes()).unwrap();
        assert!(s.problems()[0].contains("no alive worker"));
        let err = parse(&text.as_bytes()[..text.len() / 2]).unwrap_err();
        assert!(matches!(err, ProbeError::Parse { .. }), "{err}");
    }
}
