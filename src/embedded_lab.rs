//! The embedded lab: the whole lab in this process, with no Docker — librdkafka's in-process mock
//! cluster as the broker, a raw zone in a local directory, and PostgreSQL (the one given, else a
//! throwaway cluster from local server binaries) or Parquet files as the serving store.
//!
//! The monitor runs its stages and its batch on it (`lab demo`, or `e` on the banner when there is
//! no Docker engine); `lab demo --headless` streams a dataset through it once. Dropping it stops
//! the broker and removes the throwaway PostgreSQL with its files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::config::{LabConfig, Overrides};
use crate::pg::{self, throwaway::ThrowawayPg};
use crate::pipeline::batch::{BatchError, BatchReport, SERVING_TABLES, ServingTarget, run_batch};
use crate::pipeline::embedded::{EmbeddedBroker, EmbeddedError};
use crate::pipeline::stage::{EndlessFeed, Feed, StageContext};
use crate::pipeline::transform::Delivery;
use crate::pipeline::{Topics, kafka, sink, transform};
use crate::probes::{EmbeddedTargets, ProbeTargets};
use crate::storage::{AnyRawZone, StorageError};

/// The producer's pace in the monitor when none is given: slow enough that lag, rates and files
/// can be watched as they change, fast enough that the tables grow within a minute.
pub const TEACHING_RATE: u32 = 200;
/// Reviews per generated dataset once the first one has been sent (about 1,600 records with
/// their users, businesses, tips and check-ins: some 8 s at the teaching rate).
pub const CHUNK_REVIEWS: u64 = 1_000;

#[derive(Debug, thiserror::Error)]
pub enum EmbeddedLabError {
    #[error(transparent)]
    Broker(#[from] EmbeddedError),
    #[error("the embedded lab's raw zone: {0}")]
    RawZone(#[from] StorageError),
    #[error("cannot clear the previous run's raw zone {path}: {source}; remove it by hand")]
    Clear {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the sample dataset: {0}")]
    Sample(#[from] crate::bundle::Error),
    #[error("the serving database: {0}")]
    Postgres(#[from] pg::PgError),
    #[error("the batch: {0}")]
    Batch(#[from] BatchError),
    #[error("reading the serving table {table} back: {detail}")]
    ReadBack { table: &'static str, detail: String },
}

/// What the embedded lab is made of.
#[derive(Debug, Clone)]
pub struct EmbeddedSpec {
    pub state_dir: PathBuf,
    pub topic_prefix: String,
    /// The first dataset the producer sends (`None`: the sample, see [`crate::dataset::sample`]); after it, the
    /// producer sends generated datasets until it is stopped.
    pub data: Option<PathBuf>,
    /// Seed of the first generated dataset (the next ones use the following seeds).
    pub seed: u64,
    /// A PostgreSQL the user named for this run (`--pg`, `LAB_PG_URL`); `None`: a throwaway one.
    /// Never the one of `lab.toml` or `lab up`'s endpoints: that is the lab's serving database,
    /// whose tables the embedded batch would replace every 30 s. See [`EmbeddedSpec::given_pg`].
    pub pg_url: Option<String>,
    /// Parquet serving tables even when PostgreSQL is available.
    pub parquet: bool,
    pub partitions: i32,
    /// The producer's pace; `None` is [`TEACHING_RATE`].
    pub rate: Option<u32>,
}

impl EmbeddedSpec {
    /// The lab's defaults for `config` (what `e` on the monitor's banner starts).
    #[must_use]
    pub fn from_config(config: &LabConfig, overrides: &Overrides) -> Self {
        Self {
            state_dir: config.state_dir.clone(),
            topic_prefix: config.topic_prefix.clone(),
            data: None,
            seed: 42,
            pg_url: Self::given_pg(overrides),
            parquet: false,
            partitions: 3,
            rate: None,
        }
    }

    /// The PostgreSQL the embedded lab loads: only one given on the command line or in
    /// `LAB_PG_URL`. A `lab.toml` or the `endpoints.toml` that `lab up` writes names the lab's
    /// own serving database (a stack's, a cluster's): the embedded lab started in the same
    /// directory loaded its batch there and replaced that database's serving tables with its own.
    #[must_use]
    pub fn given_pg(overrides: &Overrides) -> Option<String> {
        overrides.pg_url.clone()
    }
}

/// What the monitor shows about the embedded lab it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmbeddedInfo {
    pub brokers: String,
    pub raw_zone: String,
    pub serving: String,
    pub rate: u32,
}

/// One run of the batch: what it read and wrote, and the row counts read back from the store.
#[derive(Debug, Clone)]
pub struct BatchRun {
    pub report: BatchReport,
    pub rows: BTreeMap<String, u64>,
    /// The compaction before it (`None`: it failed, and the batch read the files as they were).
    pub compaction: Option<crate::pipeline::compact::CompactionReport>,
}

pub struct EmbeddedLab {
    broker: Arc<EmbeddedBroker>,
    stages: StageContext,
    zone: AnyRawZone,
    serving: ServingTarget,
    info: EmbeddedInfo,
    /// One batch at a time (the schedule and `:batch` may ask together).
    batch: tokio::sync::Mutex<()>,
    /// Dropped with the lab: stops the throwaway server and removes its files.
    _pg: Option<ThrowawayPg>,
}

/// What every embedded run stands on (the monitor's lab and `lab demo --headless`): the serving
/// store, a fresh raw zone and the mock broker with the stages' topics.
pub struct EmbeddedGround {
    pub broker: EmbeddedBroker,
    pub zone: AnyRawZone,
    /// The raw zone's root (the zone itself is `raw_root/<topic prefix>`).
    pub raw_root: PathBuf,
    pub serving: ServingTarget,
    /// Where the serving tables go, for people: "PostgreSQL …" or "Parquet files in …" and why.
    pub serving_desc: String,
    /// Dropped with the ground: stops the throwaway server and removes its files.
    pub pg: Option<ThrowawayPg>,
}

impl EmbeddedGround {
    /// Under `dir`: the serving store first (a database that is not there is reported before any
    /// work is done), then `dir/raw` cleared (the broker is new each run, and the raw zone, its
    /// probe and the batch then hold this run's records only), then the broker.
    pub async fn prepare(
        dir: &Path,
        topic_prefix: &str,
        partitions: i32,
        pg_url: Option<&str>,
        parquet: bool,
    ) -> Result<Self, EmbeddedLabError> {
        let (serving, pg, serving_desc) = serving_target(&dir.join("serving"), pg_url, parquet).await?;
        let raw_root = dir.join("raw");
        if raw_root.exists() {
            let path = raw_root.clone();
            let started = std::time::Instant::now();
            let cleared = tokio::task::spawn_blocking(move || std::fs::remove_dir_all(&path))
                .await
                .unwrap_or_else(|e| Err(std::io::Error::other(e)));
            cleared.map_err(|source| EmbeddedLabError::Clear {
                path: raw_root.clone(),
                source,
            })?;
            tracing::info!(path = %raw_root.display(), elapsed_ms = started.elapsed().as_millis(), "previous raw zone removed");
        }
        let broker = EmbeddedBroker::for_stages(&Topics::new(topic_prefix), partitions)?;
        let zone = AnyRawZone::open(&raw_root, topic_prefix)?;
        Ok(Self {
            broker,
            zone,
            raw_root,
            serving,
            serving_desc,
            pg,
        })
    }
}

impl EmbeddedLab {
    /// Starts the broker with every topic, a fresh raw zone under the state dir and the serving
    /// store. The raw zone is cleared: a new broker starts its topics at offset 0.
    pub async fn start(spec: &EmbeddedSpec) -> Result<Self, EmbeddedLabError> {
        let dir = spec.state_dir.join("embedded");
        let first = match &spec.data {
            Some(path) => path.clone(),
            None => crate::dataset::sample_async(&spec.state_dir).await?,
        };
        let EmbeddedGround {
            broker,
            zone,
            raw_root,
            serving,
            serving_desc,
            pg: pg_guard,
        } = EmbeddedGround::prepare(
            &dir,
            &spec.topic_prefix,
            spec.partitions,
            spec.pg_url.as_deref(),
            spec.parquet,
        )
        .await?;
        let rate = spec.rate.unwrap_or(TEACHING_RATE);
        let mut stages =
            StageContext::embedded(broker.brokers(), &spec.topic_prefix, raw_root.clone(), &spec.state_dir);
        stages.feed = Feed::Endless(EndlessFeed {
            first,
            seed: spec.seed,
            chunk_reviews: CHUNK_REVIEWS,
            work_dir: dir.join("generated"),
        });
        stages.default_rate = Some(rate);
        // librdkafka's mock cluster answers TxnOffsetCommit without storing the offsets
        // (rdkafka_mock_handlers.c, rd_kafka_mock_handle_TxnOffsetCommit), so an exactly-once
        // transform stopped and started again (`:stop transform`, a lesson) would read its whole
        // input again. Plain commits are stored: at-least-once, which a clean stop keeps exact.
        stages.delivery = Some(Delivery::AtLeastOnce);
        let info = EmbeddedInfo {
            brokers: broker.brokers().to_string(),
            raw_zone: raw_root.join(&spec.topic_prefix).display().to_string(),
            serving: serving_desc,
            rate,
        };
        tracing::info!(brokers = %info.brokers, raw_zone = %info.raw_zone, "embedded lab started");
        Ok(Self {
            broker: Arc::new(broker),
            stages,
            zone,
            serving,
            info,
            batch: tokio::sync::Mutex::new(()),
            _pg: pg_guard,
        })
    }

    #[must_use]
    pub fn info(&self) -> &EmbeddedInfo {
        &self.info
    }

    /// Where its stages read and write.
    #[must_use]
    pub fn stage_context(&self) -> StageContext {
        self.stages.clone()
    }

    /// Where a lesson's own stages run: the same broker and raw zone, sending the sample once at
    /// the lesson's own pace (the lesson decides what its producer sends).
    #[must_use]
    pub fn lesson_stages(&self) -> StageContext {
        StageContext {
            feed: Feed::Sample,
            default_rate: None,
            ..self.stages.clone()
        }
    }

    /// The broker, for lessons that stop and start it.
    #[must_use]
    pub fn broker(&self) -> Arc<EmbeddedBroker> {
        self.broker.clone()
    }

    /// What the probes read: this broker (and the stages' groups by name), the local raw zone and
    /// the serving database; `base` gives the rest (intervals' owners, the Airflow target).
    #[must_use]
    pub fn probe_targets(&self, base: &ProbeTargets) -> ProbeTargets {
        let prefix = &self.stages.topic_prefix;
        ProbeTargets {
            brokers: self.info.brokers.clone(),
            topic_prefix: prefix.clone(),
            pg_url: match &self.serving {
                ServingTarget::Postgres(url) => Some(url.clone()),
                ServingTarget::Parquet(_) => None,
            },
            embedded: Some(EmbeddedTargets {
                raw_zone: self.stages.raw_zone.clone(),
                groups: vec![
                    kafka::default_group(transform::GROUP_STAGE, prefix),
                    kafka::default_group(sink::GROUP_STAGE, prefix),
                ],
            }),
            ..base.clone()
        }
    }

    /// The configuration lessons run with inside the embedded lab: its broker and raw zone.
    #[must_use]
    pub fn lesson_config(&self, base: &LabConfig) -> LabConfig {
        let mut config = base.clone();
        config.brokers.clone_from(&self.info.brokers);
        config.raw_zone.clone_from(&self.stages.raw_zone);
        config.topic_prefix.clone_from(&self.stages.topic_prefix);
        config
    }

    /// Compacts the raw zone (its files roll every 5 s: see [`crate::pipeline::compact`]), runs
    /// the batch over the whole of it into the serving store and reads the row counts back; waits
    /// for a batch already running. A compaction that fails leaves the files as they were: the
    /// batch runs anyway.
    pub async fn run_batch(&self) -> Result<BatchRun, EmbeddedLabError> {
        let _one = self.batch.lock().await;
        // Never stopped half-way from here: a compaction of the embedded lab takes under a second,
        // and a new `lab demo` starts from an empty raw zone.
        let never = tokio_util::sync::CancellationToken::new();
        let compaction = match crate::pipeline::compact::compact(&self.zone, &never).await {
            Ok(report) => Some(report),
            Err(e) => {
                tracing::warn!(error = %e, "raw-zone compaction failed; the batch reads the files as they are");
                None
            }
        };
        let report = run_batch(&self.zone, None, &self.serving).await?;
        let rows = read_back_rows(&self.serving).await?;
        Ok(BatchRun {
            report,
            rows,
            compaction,
        })
    }
}

/// PostgreSQL from `pg_url`, else a throwaway cluster, else Parquet files in `parquet_dir`
/// (always with `parquet`): the target, the throwaway server's guard, and a description.
async fn serving_target(
    parquet_dir: &Path,
    pg_url: Option<&str>,
    parquet: bool,
) -> Result<(ServingTarget, Option<ThrowawayPg>, String), EmbeddedLabError> {
    // No printing here: the monitor owns the terminal. Why there is no PostgreSQL is in the
    // description, which the monitor, the demo's summary and the log show.
    let as_parquet = |why: &str| {
        (
            ServingTarget::Parquet(parquet_dir.to_path_buf()),
            None,
            format!("Parquet files in {}{why}", parquet_dir.display()),
        )
    };
    if parquet {
        return Ok(as_parquet(""));
    }
    if let Some(url) = pg_url {
        pg::connect(url).await?;
        return Ok((
            ServingTarget::Postgres(url.to_string()),
            None,
            format!("PostgreSQL {}", pg::redact(url)),
        ));
    }
    let Some(bin) = ThrowawayPg::find_binaries() else {
        tracing::warn!("no PostgreSQL server binaries and no --pg/LAB_PG_URL: Parquet serving tables");
        return Ok(as_parquet(
            " (no PostgreSQL: no server binaries (initdb, pg_ctl) found and no --pg/LAB_PG_URL given)",
        ));
    };
    match tokio::task::spawn_blocking(move || ThrowawayPg::start(&bin)).await {
        Ok(Ok(pg)) => {
            let desc = pg.describe();
            Ok((ServingTarget::Postgres(pg.url()), Some(pg), desc))
        }
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "no throwaway PostgreSQL: Parquet serving tables");
            Ok(as_parquet(&format!(" (could not start a throwaway PostgreSQL: {e})")))
        }
        Err(e) => {
            tracing::warn!(error = %e, "the throwaway PostgreSQL's start panicked: Parquet serving tables");
            Ok(as_parquet(&format!(" (starting a throwaway PostgreSQL panicked: {e})")))
        }
    }
}

/// The serving tables' row counts, read back from where they were loaded.
pub async fn read_back_rows(target: &ServingTarget) -> Result<BTreeMap<String, u64>, EmbeddedLabError> {
    let mut rows = BTreeMap::new();
    match target {
        ServingTarget::Postgres(url) => {
            let client = pg::connect(url).await?;
            for table in &SERVING_TABLES {
                let row = client
                    .query_one(&format!("SELECT count(*) FROM yelp.{}", table.name), &[])
                    .await
                    .map_err(|e| EmbeddedLabError::ReadBack {
                        table: table.name,
                        detail: e.to_string(),
                    })?;
                rows.insert(table.name.to_string(), u64::try_from(row.get::<_, i64>(0)).unwrap_or(0));
            }
        }
        ServingTarget::Parquet(dir) => {
            let dir = dir.clone();
            let counts = tokio::task::spawn_blocking(move || parquet_rows(&dir))
                .await
                .map_err(|e| EmbeddedLabError::ReadBack {
                    table: "(all)",
                    detail: e.to_string(),
                })??;
            rows.extend(counts);
        }
    }
    Ok(rows)
}

/// Row counts from the Parquet files' footers; a table not written yet has 0 rows.
fn parquet_rows(dir: &Path) -> Result<BTreeMap<String, u64>, EmbeddedLabError> {
    use datafusion::parquet::file::reader::{FileReader, SerializedFileReader};
    let mut rows = BTreeMap::new();
    for table in &SERVING_TABLES {
        let path = dir.join(format!("{}.parquet", table.name));
        let count = match std::fs::File::open(&path) {
            Ok(file) => {
                let reader = SerializedFileReader::new(file).map_err(|e| EmbeddedLabError::ReadBack {
                    table: table.name,
                    detail: format!("{}: {e}", path.display()),
                })?;
                u64::try_from(reader.metadata().file_metadata().num_rows()).unwrap_or(0)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(e) => {
                return Err(EmbeddedLabError::ReadBack {
                    table: table.name,
                    detail: format!("{}: {e}", path.display()),
                });
            }
        };
        rows.insert(table.name.to_string(), count);
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_lab_loads_only_a_postgresql_named_for_the_run() {
        let state = tempfile::tempdir().unwrap();
        std::fs::write(
            state.path().join(crate::config::ENDPOINTS_FILE),
            "[postgres]\nurl = \"host=127.0.0.1 port=5432 user=lab dbname=yelp\"\n",
        )
        .unwrap();
        let overrides = Overrides {
            state_dir: Some(state.path().to_path_buf()),
            ..Overrides::default()
        };
        let config = LabConfig::resolve(overrides.clone()).unwrap();
        assert!(config.pg_url.is_some(), "the stack's database is the lab's");
        assert_eq!(
            EmbeddedSpec::from_config(&config, &overrides).pg_url,
            None,
            "`e` on the banner must start a throwaway PostgreSQL, not load the stack's"
        );
        let named = Overrides {
            pg_url: Some("host=127.0.0.1 port=25432 user=postgres dbname=scratch".into()),
            ..overrides
        };
        let config = LabConfig::resolve(named.clone()).unwrap();
        assert_eq!(EmbeddedSpec::from_config(&config, &named).pg_url, named.pg_url);
    }
}
