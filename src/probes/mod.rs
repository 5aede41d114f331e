//! Probes: one typed snapshot per service, read from the services' own APIs.
//!
//! Each probe answers "is it healthy, and what is it doing" as plain `Clone + Serialize` data, so
//! the TUI (through [`scheduler`]) and `lab status --json` (through [`poll_all_once`]) share them.
//! Every network request has a timeout of at most [`REQUEST_TIMEOUT`]: a hanging service shows as
//! down, it never freezes a caller.

pub mod airflow;
pub mod alerts;
pub mod docker;
pub mod hdfs;
mod http;
pub mod kafka;
pub mod kafka_census;
pub mod kafka_cluster;
pub mod postgres;
pub mod raw_zone;
pub mod report;
pub mod scheduler;
pub mod spark;

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::config::LabConfig;

/// Upper bound for one request to a service.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("{service}: cannot reach {url}: {detail}")]
    Unreachable {
        service: LabService,
        url: String,
        detail: String,
    },
    #[error("{service}: {url} answered HTTP {status}")]
    Status {
        service: LabService,
        url: String,
        status: u16,
    },
    #[error("{service}: unexpected answer from {url}: {detail}")]
    Parse {
        service: LabService,
        url: String,
        detail: String,
    },
    #[error("{service}: {detail}")]
    Other { service: LabService, detail: String },
}

impl ProbeError {
    /// One line for a status tile: what failed, without the service name the tile already shows.
    #[must_use]
    pub fn reason(&self) -> String {
        match self {
            ProbeError::Unreachable { url, detail, .. } => format!("cannot reach {url}: {detail}"),
            ProbeError::Status { url, status, .. } => format!("{url} answered HTTP {status}"),
            ProbeError::Parse { url, detail, .. } => format!("unexpected answer from {url}: {detail}"),
            ProbeError::Other { detail, .. } => detail.clone(),
        }
    }
}

/// The services the lab monitors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LabService {
    Kafka,
    Hdfs,
    Spark,
    Airflow,
    Postgres,
    /// The engine running the stack's containers: probed, shown, never required.
    Docker,
}

impl LabService {
    pub const ALL: [LabService; 5] = [
        LabService::Kafka,
        LabService::Hdfs,
        LabService::Spark,
        LabService::Airflow,
        LabService::Postgres,
    ];

    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            LabService::Kafka => "kafka",
            LabService::Hdfs => "hdfs",
            LabService::Spark => "spark",
            LabService::Airflow => "airflow",
            LabService::Postgres => "postgres",
            LabService::Docker => "docker",
        }
    }

    #[must_use]
    pub fn title(self) -> &'static str {
        match self {
            LabService::Kafka => "Kafka",
            LabService::Hdfs => "HDFS",
            LabService::Spark => "Spark",
            LabService::Airflow => "Airflow",
            LabService::Postgres => "PostgreSQL",
            LabService::Docker => "Docker",
        }
    }

    /// How often the scheduler polls it by default: Kafka moves fastest.
    #[must_use]
    pub fn default_interval(self) -> Duration {
        match self {
            LabService::Kafka => Duration::from_secs(1),
            _ => Duration::from_secs(2),
        }
    }
}

impl std::fmt::Display for LabService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.title())
    }
}

impl std::str::FromStr for LabService {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim().to_ascii_lowercase();
        LabService::ALL
            .into_iter()
            .find(|svc| svc.name() == s || (s == "pg" && *svc == LabService::Postgres))
            .ok_or_else(|| format!("unknown service {s:?}: use kafka, hdfs, spark, airflow or postgres"))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    /// Answers and reports nothing wrong.
    Up,
    /// Answers, but something needs attention (dead datanode, no Spark worker, import errors…).
    Degraded,
    /// Does not answer, or answers with an error.
    Down,
    /// Not probed yet, or not configured.
    Unknown,
}

/// Health of one service at one moment, with why and how fast it answered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Status {
    pub health: Health,
    /// Empty when up; otherwise what is wrong, in words a user can act on.
    pub reason: String,
    pub latency_ms: Option<u64>,
    pub checked_at: chrono::DateTime<chrono::Utc>,
}

impl Status {
    #[must_use]
    pub fn unknown(reason: impl Into<String>) -> Self {
        Self {
            health: Health::Unknown,
            reason: reason.into(),
            latency_ms: None,
            checked_at: chrono::Utc::now(),
        }
    }

    #[must_use]
    pub fn down(err: &ProbeError, started: Instant) -> Self {
        Self {
            health: Health::Down,
            reason: err.reason(),
            latency_ms: Some(elapsed_ms(started)),
            checked_at: chrono::Utc::now(),
        }
    }

    /// Up, or degraded when `problems` is not empty (they become the reason).
    #[must_use]
    pub fn answered(problems: &[String], started: Instant) -> Self {
        Self {
            health: if problems.is_empty() {
                Health::Up
            } else {
                Health::Degraded
            },
            reason: problems.join("; "),
            latency_ms: Some(elapsed_ms(started)),
            checked_at: chrono::Utc::now(),
        }
    }
}

fn elapsed_ms(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// One probe's result: its status plus the details it could read (none when down).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Probed<T> {
    pub status: Status,
    pub detail: Option<T>,
}

impl<T> Probed<T> {
    /// Turns a probe's outcome into a snapshot: `Ok((detail, problems))` is up or degraded.
    pub fn from_result(result: Result<(T, Vec<String>), ProbeError>, started: Instant) -> Self {
        match result {
            Ok((detail, problems)) => Self {
                status: Status::answered(&problems, started),
                detail: Some(detail),
            },
            Err(e) => {
                tracing::debug!(error = %e, "probe failed");
                Self {
                    status: Status::down(&e, started),
                    detail: None,
                }
            }
        }
    }

    #[must_use]
    pub fn unknown(reason: &str) -> Self {
        Self {
            status: Status::unknown(reason),
            detail: None,
        }
    }
}

/// A snapshot of one service, as the scheduler sends it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "service", rename_all = "lowercase")]
pub enum ServiceSnapshot {
    Kafka(Probed<kafka::KafkaSnapshot>),
    Hdfs(Probed<hdfs::HdfsSnapshot>),
    Spark(Probed<spark::SparkSnapshot>),
    Airflow(Probed<airflow::AirflowSnapshot>),
    Postgres(Probed<postgres::PostgresSnapshot>),
    Docker(Probed<docker::DockerSnapshot>),
    /// The embedded lab's raw zone, a local directory: it stands where HDFS stands.
    RawZone(Probed<raw_zone::LocalZoneSnapshot>),
}

impl ServiceSnapshot {
    #[must_use]
    pub fn service(&self) -> LabService {
        match self {
            ServiceSnapshot::Kafka(_) => LabService::Kafka,
            ServiceSnapshot::Hdfs(_) => LabService::Hdfs,
            ServiceSnapshot::Spark(_) => LabService::Spark,
            ServiceSnapshot::Airflow(_) => LabService::Airflow,
            ServiceSnapshot::Postgres(_) => LabService::Postgres,
            ServiceSnapshot::Docker(_) => LabService::Docker,
            ServiceSnapshot::RawZone(_) => LabService::Hdfs,
        }
    }

    #[must_use]
    pub fn status(&self) -> &Status {
        match self {
            ServiceSnapshot::Kafka(p) => &p.status,
            ServiceSnapshot::Hdfs(p) => &p.status,
            ServiceSnapshot::Spark(p) => &p.status,
            ServiceSnapshot::Airflow(p) => &p.status,
            ServiceSnapshot::Postgres(p) => &p.status,
            ServiceSnapshot::Docker(p) => &p.status,
            ServiceSnapshot::RawZone(p) => &p.status,
        }
    }
}

/// Every service's latest snapshot (what `lab status --json` prints).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LabSnapshot {
    pub kafka: Option<Probed<kafka::KafkaSnapshot>>,
    pub hdfs: Option<Probed<hdfs::HdfsSnapshot>>,
    pub spark: Option<Probed<spark::SparkSnapshot>>,
    pub airflow: Option<Probed<airflow::AirflowSnapshot>>,
    pub postgres: Option<Probed<postgres::PostgresSnapshot>>,
    /// The stack's containers, when a Docker engine answers (or why not).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub docker: Option<Probed<docker::DockerSnapshot>>,
    /// The embedded lab's local raw zone (instead of HDFS).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub raw_zone: Option<Probed<raw_zone::LocalZoneSnapshot>>,
}

impl LabSnapshot {
    /// Replaces the service's entry with `snap`.
    pub fn apply(&mut self, snap: ServiceSnapshot) {
        match snap {
            ServiceSnapshot::Kafka(p) => self.kafka = Some(p),
            ServiceSnapshot::Hdfs(p) => self.hdfs = Some(p),
            ServiceSnapshot::Spark(p) => self.spark = Some(p),
            ServiceSnapshot::Airflow(p) => self.airflow = Some(p),
            ServiceSnapshot::Postgres(p) => self.postgres = Some(p),
            ServiceSnapshot::Docker(p) => self.docker = Some(p),
            ServiceSnapshot::RawZone(p) => self.raw_zone = Some(p),
        }
    }

    #[must_use]
    pub fn status(&self, service: LabService) -> Option<&Status> {
        match service {
            LabService::Kafka => self.kafka.as_ref().map(|p| &p.status),
            LabService::Hdfs => self
                .hdfs
                .as_ref()
                .map(|p| &p.status)
                .or(self.raw_zone.as_ref().map(|p| &p.status)),
            LabService::Spark => self.spark.as_ref().map(|p| &p.status),
            LabService::Airflow => self.airflow.as_ref().map(|p| &p.status),
            LabService::Postgres => self.postgres.as_ref().map(|p| &p.status),
            LabService::Docker => self.docker.as_ref().map(|p| &p.status),
        }
    }

    /// Health of a service; `Unknown` until it was probed.
    #[must_use]
    pub fn health(&self, service: LabService) -> Health {
        self.status(service).map_or(Health::Unknown, |s| s.health)
    }
}

/// Everything a probe needs to know, taken from the resolved [`LabConfig`].
#[derive(Debug, Clone)]
pub struct ProbeTargets {
    pub brokers: String,
    pub topic_prefix: String,
    pub pg_url: Option<String>,
    pub hdfs_http: String,
    /// The HDFS directory of the raw zone ([`hdfs::raw_root`]).
    pub hdfs_raw_root: String,
    pub spark_ui: String,
    pub airflow: airflow::AirflowTarget,
    /// The stack whose containers the Docker probe lists (its `lab.stack` label).
    pub docker_stack: String,
    /// Set for the embedded lab, which replaces the stack's services.
    pub embedded: Option<EmbeddedTargets>,
}

/// What the embedded lab has instead of a stack: a raw zone in a local directory (probed where
/// HDFS would be), a broker that cannot list its groups (so the stages' groups are named), and
/// no Spark, Airflow or containers (the lab runs the batch itself).
#[derive(Debug, Clone)]
pub struct EmbeddedTargets {
    pub raw_zone: std::path::PathBuf,
    pub groups: Vec<String>,
}

impl ProbeTargets {
    #[must_use]
    pub fn from_config(config: &LabConfig) -> Self {
        Self {
            brokers: config.brokers.clone(),
            topic_prefix: config.topic_prefix.clone(),
            pg_url: config.pg_url.clone(),
            hdfs_http: config.hdfs.http.clone(),
            hdfs_raw_root: hdfs::raw_root(&config.raw_zone),
            spark_ui: config.spark.ui.clone(),
            airflow: airflow::AirflowTarget::from(&config.airflow),
            docker_stack: crate::stack::current::DEFAULT_STACK.to_string(),
            embedded: None,
        }
    }

    /// Services with an endpoint. PostgreSQL has no default URL; the others default to loopback.
    #[must_use]
    pub fn configured(&self) -> Vec<LabService> {
        LabService::ALL
            .into_iter()
            .filter(|s| *s != LabService::Postgres || self.pg_url.is_some())
            .collect()
    }
}

/// One stateful probe per service (Kafka keeps the previous watermarks for rates, Airflow its token).
pub struct Probes {
    pub kafka: kafka::KafkaProbe,
    pub hdfs: hdfs::HdfsProbe,
    pub spark: spark::SparkProbe,
    pub airflow: airflow::AirflowProbe,
    pub postgres: postgres::PostgresProbe,
    pub docker: docker::DockerProbe,
    /// The embedded lab's raw zone; when set, the scheduler runs it instead of the HDFS, Spark,
    /// Airflow and Docker probes.
    pub raw_zone: Option<raw_zone::LocalZoneProbe>,
}

impl Probes {
    /// Builds every probe. Fails only when an HTTP client cannot be built (TLS backend missing).
    pub fn new(targets: &ProbeTargets) -> Result<Self, ProbeError> {
        let embedded = targets.embedded.as_ref();
        Ok(Self {
            kafka: match embedded {
                Some(e) => {
                    kafka::KafkaProbe::new(&targets.brokers, &targets.topic_prefix).on_embedded_broker(e.groups.clone())
                }
                None => kafka::KafkaProbe::new(&targets.brokers, &targets.topic_prefix),
            },
            hdfs: hdfs::HdfsProbe::new(&targets.hdfs_http, &targets.hdfs_raw_root, &targets.topic_prefix)?,
            spark: spark::SparkProbe::new(&targets.spark_ui)?,
            airflow: airflow::AirflowProbe::new(targets.airflow.clone())?,
            postgres: postgres::PostgresProbe::new(targets.pg_url.clone()),
            docker: docker::DockerProbe::new(&targets.docker_stack),
            raw_zone: embedded.map(|e| raw_zone::LocalZoneProbe::new(&e.raw_zone, &targets.topic_prefix)),
        })
    }
}

/// Polls every service once, concurrently (for `lab status`).
pub async fn poll_all_once(probes: &mut Probes) -> LabSnapshot {
    let Probes {
        kafka,
        hdfs,
        spark,
        airflow,
        postgres,
        docker,
        raw_zone: _,
    } = probes;
    let (k, h, s, a, p, d) = tokio::join!(
        kafka.poll(),
        hdfs.poll(),
        spark.poll(),
        airflow.poll(),
        postgres.poll(),
        docker.poll()
    );
    LabSnapshot {
        kafka: Some(k),
        hdfs: Some(h),
        spark: Some(s),
        airflow: Some(a),
        postgres: Some(p),
        // Only when the engine answers: without Docker the services may well run elsewhere.
        docker: (d.status.health != Health::Down).then_some(d),
        raw_zone: None,
    }
}

/// A response captured from a real service (tests/fixtures/probes/), for the parsers' unit tests.
#[cfg(test)]
pub(crate) fn test_fixture(name: &str) -> Vec<u8> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/probes");
    std::fs::read(format!("{path}/{name}")).unwrap_or_else(|e| panic!("fixture {name}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_names_parse_both_ways() {
        for s in LabService::ALL {
            assert_eq!(s.name().parse::<LabService>().unwrap(), s);
        }
        assert_eq!("PG".parse::<LabService>().unwrap(), LabService::Postgres);
        assert!("mysql".parse::<LabService>().unwrap_err().contains("unknown service"));
    }

    #[test]
    fn problems_make_a_service_degraded_and_errors_make_it_down() {
        let started = Instant::now();
        let ok: Probed<u8> = Probed::from_result(Ok((1, vec![])), started);
        assert_eq!(ok.status.health, Health::Up);
        let degraded: Probed<u8> = Probed::from_result(Ok((1, vec!["no worker".into()])), started);
        assert_eq!(degraded.status.health, Health::Degraded);
        assert_eq!(degraded.status.reason, "no worker");
        let down: Probed<u8> = Probed::from_result(
            Err(ProbeError::Status {
                service: LabService::Spark,
                url: "http://x/json/".into(),
                status: 503,
            }),
            started,
        );
        assert_eq!(down.status.health, Health::Down);
        assert_eq!(down.status.reason, "http://x/json/ answered HTTP 503");
        assert!(down.detail.is_none());
    }
}
