//! Pipeline stages run inside the monitor (`:produce`, `:transform`, `:consume`, `:stop STAGE`):
//! the same library calls as `lab produce|transform|consume`, each on its own task with its own
//! cancellation, reporting its counters once a second as `Msg::StageStats` and its end as
//! `Msg::StageDone`. A stopped stage ends cleanly (commits only what is durable), as on Ctrl-C.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::msg::Msg;
use crate::config::LabConfig;
use crate::dataset::reader::DatasetSource;
use crate::pipeline::producer::{ProducerOptions, run_producer};
use crate::pipeline::sink::{RollPolicy, SinkOptions, run_sink};
use crate::pipeline::transform::{TransformOptions, run_transform};
use crate::pipeline::{StageCounters, StopWhen, Topics, kafka, sink, transform};
use crate::storage::AnyRawZone;

const REPORT_EVERY: Duration = Duration::from_secs(1);

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
}

impl StageConfig {
    #[must_use]
    pub fn from_config(config: &LabConfig) -> Self {
        Self {
            brokers: config.brokers.clone(),
            topic_prefix: config.topic_prefix.clone(),
            raw_zone: config.raw_zone.clone(),
        }
    }
}

struct Running {
    cancel: CancellationToken,
    handle: tokio::task::JoinHandle<()>,
}

/// The stages this monitor runs.
pub struct StageRunner {
    pub config: StageConfig,
    running: HashMap<StageKind, Running>,
    tx: mpsc::Sender<Msg>,
}

impl StageRunner {
    #[must_use]
    pub fn new(config: StageConfig, tx: mpsc::Sender<Msg>) -> Self {
        Self {
            config,
            running: HashMap::new(),
            tx,
        }
    }

    fn is_running(&mut self, kind: StageKind) -> bool {
        self.running.retain(|_, r| !r.handle.is_finished());
        self.running.contains_key(&kind)
    }

    /// Starts `kind`; an error text when it already runs.
    pub fn start(&mut self, kind: StageKind, how: &StageStart) -> Result<String, String> {
        if self.is_running(kind) {
            return Err(format!(
                "the {} already runs here (:stop {} first)",
                kind.name(),
                kind.name()
            ));
        }
        let cancel = CancellationToken::new();
        let counters = Arc::new(StageCounters::default());
        let handle = tokio::spawn(run_stage(
            kind,
            how.clone(),
            self.config.clone(),
            counters,
            cancel.clone(),
            self.tx.clone(),
        ));
        self.running.insert(kind, Running { cancel, handle });
        Ok(match how.rate {
            Some(r) => format!("{} started ({r} msg/s)", kind.name()),
            None => format!("{} started", kind.name()),
        })
    }

    /// Asks `kind` to stop; it reports `StageDone` once it has.
    pub fn stop(&mut self, kind: StageKind) -> Result<String, String> {
        if !self.is_running(kind) {
            return Err(format!("the {} is not running in this monitor", kind.name()));
        }
        if let Some(r) = self.running.get(&kind) {
            r.cancel.cancel();
        }
        Ok(format!(
            "stopping the {} (it commits what is durable first)",
            kind.name()
        ))
    }
}

impl Drop for StageRunner {
    fn drop(&mut self) {
        for r in self.running.values() {
            r.cancel.cancel();
        }
    }
}

/// Runs one stage to its end while reporting its counters.
async fn run_stage(
    kind: StageKind,
    how: StageStart,
    config: StageConfig,
    counters: Arc<StageCounters>,
    cancel: CancellationToken,
    tx: mpsc::Sender<Msg>,
) {
    let reporter = {
        let (tx, counters) = (tx.clone(), counters.clone());
        tokio::spawn(async move {
            let mut every = tokio::time::interval(REPORT_EVERY);
            loop {
                every.tick().await;
                if tx
                    .send(Msg::StageStats {
                        kind,
                        snapshot: counters.snapshot(),
                    })
                    .await
                    .is_err()
                {
                    break;
                }
            }
        })
    };
    let result = execute(kind, &how, &config, &counters, &cancel).await;
    reporter.abort();
    if let Err(e) = &result {
        tracing::warn!(stage = kind.name(), error = %e, "stage failed");
    }
    let done = Msg::StageDone {
        kind,
        snapshot: counters.snapshot(),
        result,
    };
    if tx.send(done).await.is_err() {
        tracing::debug!(stage = kind.name(), "the monitor closed before the stage ended");
    }
}

async fn execute(
    kind: StageKind,
    how: &StageStart,
    config: &StageConfig,
    counters: &Arc<StageCounters>,
    cancel: &CancellationToken,
) -> Result<String, String> {
    let topics = Topics::new(&config.topic_prefix);
    let text = |e: &dyn std::fmt::Display| e.to_string();
    kafka::ensure_topics(&config.brokers, &topics.all(), kafka::DEFAULT_PARTITIONS)
        .await
        .map_err(|e| text(&e))?;
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
                fetch_wait_ms: kafka::DEFAULT_FETCH_WAIT_MS,
                backpressure: None,
            };
            let report = run_transform(&opts, counters, cancel).await.map_err(|e| text(&e))?;
            Ok(format!(
                "transform stopped: {} consumed, {} clean, {} dead-lettered",
                report.consumed, report.clean, report.dead_lettered
            ))
        }
        StageKind::Consumer => {
            let zone = AnyRawZone::open(&config.raw_zone).map_err(|e| text(&e))?;
            let opts = SinkOptions {
                brokers: config.brokers.clone(),
                topics,
                group_id: kafka::default_group(sink::GROUP_STAGE, &config.topic_prefix),
                fetch_wait_ms: kafka::DEFAULT_FETCH_WAIT_MS,
                // Short files, so what a student streams shows up in the raw zone within seconds.
                roll: RollPolicy {
                    max_age: Duration::from_secs(5),
                    ..RollPolicy::default()
                },
                stop: StopWhen::Cancelled,
            };
            let report = run_sink(&zone, &opts, counters, cancel).await.map_err(|e| text(&e))?;
            Ok(format!(
                "consumer stopped: {} records in {} files",
                report.records_written, report.files_written
            ))
        }
    }
}
