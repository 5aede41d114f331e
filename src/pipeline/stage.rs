//! The streaming stages as long-running tasks: what `:produce`, `:transform` and `:consume` in the
//! monitor and the fault lessons start. The same library calls as `lab produce|transform|consume`,
//! run until cancelled (a cancelled stage ends cleanly: it commits only what is durable).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::producer::{ProducerOptions, ProducerReport, run_producer};
use super::sink::{RollPolicy, SinkOptions, run_sink};
use super::transform::{TransformOptions, run_transform};
use super::{StageCounters, StopWhen, Topics, kafka, sink, transform};
use crate::config::LabConfig;
use crate::dataset::generate::{GenerateOptions, generate};
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

    /// The command that runs it: `lab produce|transform|consume`.
    #[must_use]
    pub fn command(self) -> &'static str {
        match self {
            StageKind::Producer => "produce",
            StageKind::Transform => "transform",
            StageKind::Consumer => "consume",
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

/// Where the stages run and what differs by place: the CLI (`lab produce|transform|consume`), the
/// monitor and the lessons on a lab's services, and the embedded lab on the in-process broker.
/// Every stage is built from it ([`StageContext::producer`], [`StageContext::transform`],
/// [`StageContext::sink`]), so a setting is decided in one place for all of them; a caller only
/// adds what is its own (a group name from the command line, backpressure between embedded stages).
#[derive(Debug, Clone)]
pub struct StageContext {
    pub brokers: String,
    pub topic_prefix: String,
    pub raw_zone: PathBuf,
    /// The lab's state directory: where the sample this binary carries is written out for a
    /// producer sent without a dataset, outside a checkout.
    pub state_dir: PathBuf,
    /// The kind of broker: what the stages' consumers must allow for, and whether missing topics
    /// are created first (not on the in-process broker, which holds them from the start and whose
    /// admin API cannot create any).
    pub broker: kafka::BrokerKind,
    /// Partitions of the topics this context creates.
    pub partitions: i32,
    /// How long a stage rides out an unreachable broker before it gives up.
    pub broker_patience: Duration,
    /// When the consumer closes a raw-zone file.
    pub roll: RollPolicy,
    /// What the producer sends when no dataset is named.
    pub feed: Feed,
    /// The producer's pace when none is given (`None`: as fast as the broker takes records).
    pub default_rate: Option<u32>,
    /// The transform's delivery (`None`: exactly-once where the broker has transactions).
    pub delivery: Option<transform::Delivery>,
}

/// What the producer sends when `:produce` names no dataset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Feed {
    /// The sample, once (see [`crate::dataset::sample`]).
    Sample,
    /// Datasets until stopped (see [`EndlessFeed`]).
    Endless(EndlessFeed),
}

/// `first`, then generated datasets of `chunk_reviews` reviews with the seeds
/// `seed`, `seed + 1`, … until stopped, so a watched lab keeps moving with new records (new ids:
/// the serving tables grow). Each is written under `work_dir`, sent, and removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndlessFeed {
    pub first: PathBuf,
    pub seed: u64,
    pub chunk_reviews: u64,
    pub work_dir: PathBuf,
}

/// The monitor's, the lessons' and the embedded lab's raw-zone files close after this long, so
/// what a student streams shows up in the raw zone within seconds (the CLI's default is 30 s).
pub const WATCHED_ROLL_AGE: Duration = Duration::from_secs(5);

/// The embedded lab's largest raw-zone file (records as JSON, before Parquet), against the CLI's
/// 128 MiB. Everything runs in one process there: a smaller file holds less of the consumer's
/// memory, and at the end of `lab demo` what is still buffered is written in less time (with
/// 128 MiB, about 4 of its 20 s on 1M reviews were that last write, measured).
pub const EMBEDDED_FILE_BYTES: usize = 32 << 20;

impl StageContext {
    /// On the configured broker, with the CLI's defaults.
    #[must_use]
    pub fn from_config(config: &LabConfig) -> Self {
        Self::on_broker(
            &config.brokers,
            &config.topic_prefix,
            config.raw_zone.clone(),
            &config.state_dir,
        )
    }

    /// On the Kafka broker at `brokers`, with the CLI's defaults.
    #[must_use]
    pub fn on_broker(brokers: &str, topic_prefix: &str, raw_zone: PathBuf, state_dir: &Path) -> Self {
        Self {
            brokers: brokers.to_string(),
            topic_prefix: topic_prefix.to_string(),
            raw_zone,
            state_dir: state_dir.to_path_buf(),
            broker: kafka::BrokerKind::Kafka,
            partitions: kafka::DEFAULT_PARTITIONS,
            broker_patience: kafka::DEFAULT_BROKER_PATIENCE,
            roll: RollPolicy::default(),
            feed: Feed::Sample,
            default_rate: None,
            delivery: None,
        }
    }

    /// On an in-process broker at `brokers`, which already holds the topics; watched, with files
    /// of at most [`EMBEDDED_FILE_BYTES`].
    #[must_use]
    pub fn embedded(brokers: &str, topic_prefix: &str, raw_zone: PathBuf, state_dir: &Path) -> Self {
        let mut cx = Self {
            broker: kafka::BrokerKind::Embedded,
            ..Self::on_broker(brokers, topic_prefix, raw_zone, state_dir)
        }
        .watched();
        cx.roll.max_bytes = EMBEDDED_FILE_BYTES;
        cx
    }

    /// For stages someone watches (the monitor, the lessons, the embedded lab): files roll every
    /// [`WATCHED_ROLL_AGE`].
    #[must_use]
    pub fn watched(mut self) -> Self {
        self.roll.max_age = WATCHED_ROLL_AGE;
        self
    }

    #[must_use]
    pub fn topics(&self) -> Topics {
        Topics::new(&self.topic_prefix)
    }

    /// Makes sure the stages' topics exist (when this broker needs to be asked).
    pub async fn ensure_topics(&self) -> Result<(), super::PipelineError> {
        if self.broker == kafka::BrokerKind::Embedded {
            return Ok(());
        }
        kafka::ensure_topics(
            &self.brokers,
            &self.topics().all(),
            self.partitions,
            self.broker_patience,
        )
        .await
    }

    /// The producer, at `rate` records per second (None: as fast as the broker takes them).
    #[must_use]
    pub fn producer(&self, rate: Option<u32>) -> ProducerOptions {
        ProducerOptions {
            brokers: self.brokers.clone(),
            topics: self.topics(),
            rate,
            entities: Vec::new(),
            backpressure: None,
        }
    }

    /// The stream transform in the prefix's group, with the delivery the broker supports.
    #[must_use]
    pub fn transform(&self, stop: StopWhen) -> TransformOptions {
        TransformOptions {
            brokers: self.brokers.clone(),
            topics: self.topics(),
            group_id: kafka::default_group(transform::GROUP_STAGE, &self.topic_prefix),
            worker: None,
            stop,
            broker: self.broker,
            backpressure: None,
            delivery: self.delivery,
            broker_patience: self.broker_patience,
        }
    }

    /// The consumer into the raw zone, in the prefix's group.
    #[must_use]
    pub fn sink(&self, stop: StopWhen) -> SinkOptions {
        SinkOptions {
            brokers: self.brokers.clone(),
            topics: self.topics(),
            group_id: kafka::default_group(sink::GROUP_STAGE, &self.topic_prefix),
            worker: None,
            broker: self.broker,
            roll: self.roll,
            stop,
            broker_patience: self.broker_patience,
        }
    }
}

/// Sends one dataset; the report counts everything `counters` has seen (all datasets so far).
async fn produce_once(
    path: &std::path::Path,
    cx: &StageContext,
    rate: Option<u32>,
    counters: &Arc<StageCounters>,
    cancel: &CancellationToken,
) -> Result<ProducerReport, String> {
    let source = DatasetSource::open(path).map_err(|e| format!("dataset {}: {e}", path.display()))?;
    let opts = cx.producer(rate);
    let (c, cancel) = (counters.clone(), cancel.clone());
    tokio::task::spawn_blocking(move || run_producer(&source, &opts, &c, &cancel))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())
}

/// An [`EndlessFeed`]: its first dataset, then generated ones until cancelled; the last report.
async fn produce_endless(
    feed: &EndlessFeed,
    cx: &StageContext,
    rate: Option<u32>,
    counters: &Arc<StageCounters>,
    cancel: &CancellationToken,
) -> Result<ProducerReport, String> {
    let mut report = produce_once(&feed.first, cx, rate, counters, cancel).await?;
    for chunk_seed in feed.seed.. {
        if cancel.is_cancelled() {
            break;
        }
        let dir = feed.work_dir.join(format!("seed-{chunk_seed}"));
        let options = GenerateOptions {
            reviews: feed.chunk_reviews,
            seed: chunk_seed,
            invalid_rate: 0.001,
        };
        let made = dir.clone();
        tokio::task::spawn_blocking(move || generate(&made, &options))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("generating a dataset into {}: {e}", dir.display()))?;
        counters.reopen();
        let sent = produce_once(&dir, cx, rate, counters, cancel).await;
        let removed = dir.clone();
        match tokio::task::spawn_blocking(move || std::fs::remove_dir_all(removed)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(dir = %dir.display(), error = %e, "could not remove a sent dataset"),
            Err(e) => tracing::warn!(dir = %dir.display(), error = %e, "removing a sent dataset panicked"),
        }
        report = sent?;
    }
    Ok(report)
}

/// Runs `kind` until it ends (the producer) or is cancelled; a one-line summary, or the error.
pub async fn execute(
    kind: StageKind,
    how: &StageStart,
    cx: &StageContext,
    counters: &Arc<StageCounters>,
    cancel: &CancellationToken,
) -> Result<String, String> {
    let text = |e: &dyn std::fmt::Display| e.to_string();
    cx.ensure_topics().await.map_err(|e| text(&e))?;
    match kind {
        StageKind::Producer => {
            let rate = how.rate.or(cx.default_rate);
            let report = match (&how.data, &cx.feed) {
                (Some(path), _) => produce_once(path, cx, rate, counters, cancel).await?,
                (None, Feed::Sample) => {
                    let sample = crate::dataset::sample_async(&cx.state_dir)
                        .await
                        .map_err(|e| text(&e))?;
                    produce_once(&sample, cx, rate, counters, cancel).await?
                }
                (None, Feed::Endless(feed)) => produce_endless(feed, cx, rate, counters, cancel).await?,
            };
            Ok(format!(
                "producer done: {} sent, {} delivered",
                report.sent, report.delivered
            ))
        }
        StageKind::Transform => {
            let report = run_transform(&cx.transform(StopWhen::Cancelled), counters, cancel)
                .await
                .map_err(|e| text(&e))?;
            Ok(format!(
                "transform stopped: {} consumed, {} clean, {} dead-lettered",
                report.consumed, report.clean, report.dead_lettered
            ))
        }
        StageKind::Consumer => {
            let zone = AnyRawZone::open(&cx.raw_zone, &cx.topic_prefix).map_err(|e| text(&e))?;
            let report = run_sink(&zone, &cx.sink(StopWhen::Cancelled), counters, cancel)
                .await
                .map_err(|e| text(&e))?;
            Ok(format!(
                "consumer stopped: {} records in {} files",
                report.records_written, report.files_written
            ))
        }
    }
}
