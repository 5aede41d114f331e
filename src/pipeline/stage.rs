//! The streaming stages as long-running tasks: what `:produce`, `:transform` and `:consume` in the
//! monitor and the fault lessons start. The same library calls as `lab produce|transform|consume`,
//! run until cancelled (a cancelled stage ends cleanly: it commits only what is durable).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::producer::{ProducerOptions, run_producer};
use super::sink::{RollPolicy, SinkOptions, run_sink};
use super::transform::{TransformOptions, run_transform};
use super::{StageCounters, StopWhen, Topics, kafka, sink, transform};
use crate::config::LabConfig;
use crate::dataset::reader::DatasetSource;
use crate::storage::AnyRawZone;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StageKind {
    Producer,
    Transform,
    Consumer,
}

impl StageKind {
    pub const ALL: [StageKind; 3] = [StageKind::Producer, StageKind::Transform, StageKind::Consumer];

    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            StageKind::Producer => "producer",
            StageKind::Transform => "transform",
            StageKind::Consumer => "consumer",
        }
    }

    /// `producer`/`produce`, `transform`, `consumer`/`consume`.
    #[must_use]
    pub fn parse(word: &str) -> Option<Self> {
        match word {
            "producer" | "produce" => Some(StageKind::Producer),
            "transform" => Some(StageKind::Transform),
            "consumer" | "consume" => Some(StageKind::Consumer),
            _ => None,
        }
    }
}

/// How to start a stage (`:produce --rate 50 --data DIR`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StageStart {
    pub rate: Option<u32>,
    pub data: Option<PathBuf>,
}

/// Where the stages read and write: from the same configuration as the CLI.
#[derive(Debug, Clone)]
pub struct StageConfig {
    pub brokers: String,
    pub topic_prefix: String,
    pub raw_zone: PathBuf,
    /// How long a fetch may wait for data ([`kafka::MOCK_FETCH_WAIT_MS`] on the in-process broker).
    pub fetch_wait_ms: u32,
    /// Create missing topics first. Off on the in-process broker, which holds them from the start
    /// (and whose admin API cannot create any).
    pub create_topics: bool,
}

impl StageConfig {
    #[must_use]
    pub fn from_config(config: &LabConfig) -> Self {
        Self {
            brokers: config.brokers.clone(),
            topic_prefix: config.topic_prefix.clone(),
            raw_zone: config.raw_zone.clone(),
            fetch_wait_ms: kafka::DEFAULT_FETCH_WAIT_MS,
            create_topics: true,
        }
    }

    /// Makes sure the stages' topics exist (when this broker needs to be asked).
    pub async fn ensure_topics(&self) -> Result<(), super::PipelineError> {
        if !self.create_topics {
            return Ok(());
        }
        let topics = Topics::new(&self.topic_prefix);
        kafka::ensure_topics(&self.brokers, &topics.all(), kafka::DEFAULT_PARTITIONS).await
    }
}

/// Runs `kind` until it ends (the producer) or is cancelled; a one-line summary, or the error.
pub async fn execute(
    kind: StageKind,
    how: &StageStart,
    config: &StageConfig,
    counters: &Arc<StageCounters>,
    cancel: &CancellationToken,
) -> Result<String, String> {
    let topics = Topics::new(&config.topic_prefix);
    let text = |e: &dyn std::fmt::Display| e.to_string();
    config.ensure_topics().await.map_err(|e| text(&e))?;
    match kind {
        StageKind::Producer => {
            let path = how.data.clone().unwrap_or_else(crate::demo::default_sample);
            let source = DatasetSource::open(&path).map_err(|e| format!("dataset {}: {e}", path.display()))?;
            let opts = ProducerOptions {
                brokers: config.brokers.clone(),
                topics,
                rate: how.rate,
                entities: Vec::new(),
                backpressure: None,
            };
            let (c, cancel) = (counters.clone(), cancel.clone());
            let report = tokio::task::spawn_blocking(move || run_producer(&source, &opts, &c, &cancel))
                .await
                .map_err(|e| text(&e))?
                .map_err(|e| text(&e))?;
            Ok(format!(
                "producer done: {} sent, {} delivered",
                report.sent, report.delivered
            ))
        }
        StageKind::Transform => {
            let opts = TransformOptions {
                brokers: config.brokers.clone(),
                topics,
                group_id: kafka::default_group(transform::GROUP_STAGE, &config.topic_prefix),
                stop: StopWhen::Cancelled,
                fetch_wait_ms: config.fetch_wait_ms,
                backpressure: None,
                delivery: None,
                broker_patience: kafka::DEFAULT_BROKER_PATIENCE,
            };
            let report = run_transform(&opts, counters, cancel).await.map_err(|e| text(&e))?;
            Ok(format!(
                "transform stopped: {} consumed, {} clean, {} dead-lettered",
                report.consumed, report.clean, report.dead_lettered
            ))
        }
        StageKind::Consumer => {
            let zone = AnyRawZone::open(&config.raw_zone, &config.topic_prefix).map_err(|e| text(&e))?;
            let opts = SinkOptions {
                brokers: config.brokers.clone(),
                topics,
                group_id: kafka::default_group(sink::GROUP_STAGE, &config.topic_prefix),
                fetch_wait_ms: config.fetch_wait_ms,
                // Short files, so what a student streams shows up in the raw zone within seconds.
                roll: RollPolicy {
                    max_age: Duration::from_secs(5),
                    ..RollPolicy::default()
                },
                stop: StopWhen::Cancelled,
                broker_patience: kafka::DEFAULT_BROKER_PATIENCE,
            };
            let report = run_sink(&zone, &opts, counters, cancel).await.map_err(|e| text(&e))?;
            Ok(format!(
                "consumer stopped: {} records in {} files",
                report.records_written, report.files_written
            ))
        }
    }
}
