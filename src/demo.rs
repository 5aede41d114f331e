//! `lab demo`: the whole pipeline in one process, no Docker.
//!
//! librdkafka's in-process mock cluster is the broker (real Kafka protocol through rdkafka), the raw
//! zone is a directory under the state dir, DataFusion runs the batch, and PostgreSQL is the one
//! given, else a throwaway cluster from local server binaries, else Parquet files.
//! This is orchestration at the CLI edge, so errors are `anyhow`.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::dataset::generate::{GenerateOptions, generate};
use crate::dataset::reader::DatasetSource;
use crate::embedded_lab::{EmbeddedGround, read_back_rows};
use crate::pipeline::batch::{BatchReport, run_batch};
use crate::pipeline::producer::{ProducerReport, run_producer};
use crate::pipeline::sink::{SinkReport, run_sink};
use crate::pipeline::stage::StageContext;
use crate::pipeline::transform::{TransformReport, run_transform};
use crate::pipeline::{Backpressure, StageCounters, StopWhen};
use crate::progress::LiveView;

/// How far (uncompressed payload bytes) a stage may run ahead of its reader in the demo. The mock
/// cluster keeps at most 5 MB per partition; 4 MiB stays below that even if it all lands in one
/// partition.
const MOCK_BUDGET_BYTES: u64 = 4 << 20;

#[derive(Debug, Clone)]
pub struct DemoOptions {
    pub state_dir: PathBuf,
    pub topic_prefix: String,
    /// A dataset (file, directory or tar); `None` = the sample (see [`crate::dataset::sample`]).
    pub data: Option<PathBuf>,
    /// Generate this many reviews instead of reading `data`.
    pub reviews: Option<u64>,
    pub seed: u64,
    pub headless: bool,
    pub pg_url: Option<String>,
    /// Write serving tables as Parquet even when PostgreSQL is available.
    pub parquet: bool,
    pub partitions: i32,
    pub rate: Option<u32>,
}

#[derive(Debug, Serialize)]
pub struct DemoSummary {
    pub dataset: String,
    pub broker: String,
    pub raw_zone: String,
    pub serving: String,
    pub producer: ProducerReport,
    pub transform: TransformReport,
    pub consumer: SinkReport,
    pub dlq: u64,
    pub final_lag: BTreeMap<String, i64>,
    pub batch: BatchReport,
    /// Row counts read back from the serving store after the load.
    pub serving_rows: BTreeMap<String, u64>,
    pub timings_ms: BTreeMap<String, u128>,
}

pub async fn run_demo(opts: &DemoOptions, cancel: &CancellationToken) -> Result<DemoSummary> {
    let total = Instant::now();
    let mut timings = BTreeMap::new();
    let dataset_path = resolve_dataset(opts)?;
    let source =
        DatasetSource::open(&dataset_path).with_context(|| format!("opening dataset {}", dataset_path.display()))?;

    let EmbeddedGround {
        broker,
        zone,
        raw_root: raw_dir,
        serving: target,
        serving_desc,
        pg: _pg_guard,
    } = EmbeddedGround::prepare(
        &opts.state_dir.join("demo"),
        &opts.topic_prefix,
        opts.partitions,
        opts.pg_url.as_deref(),
        opts.parquet,
    )
    .await?;
    let brokers = broker.brokers().to_string();
    let cx = StageContext::embedded(&brokers, &opts.topic_prefix, raw_dir.clone(), &opts.state_dir);

    let producer_counters = Arc::new(StageCounters::default());
    let transform_counters = Arc::new(StageCounters::default());
    let sink_counters = Arc::new(StageCounters::default());
    let view = LiveView::start(
        !opts.headless && std::io::stderr().is_terminal(),
        &[
            ("producer", &producer_counters),
            ("transform", &transform_counters),
            ("consumer", &sink_counters),
        ],
    );

    let stream_started = Instant::now();
    let producer_task = {
        let mut opts = cx.producer(opts.rate);
        opts.backpressure = Some(Backpressure {
            downstream: transform_counters.clone(),
            budget_bytes: MOCK_BUDGET_BYTES,
        });
        let (counters, cancel) = (producer_counters.clone(), cancel.clone());
        tokio::task::spawn_blocking(move || run_producer(&source, &opts, &counters, &cancel))
    };
    let mut transform_opts = cx.transform(StopWhen::CaughtUp {
        upstream: Some(producer_counters.clone()),
        together: None,
    });
    transform_opts.backpressure = Some(Backpressure {
        downstream: sink_counters.clone(),
        budget_bytes: MOCK_BUDGET_BYTES,
    });
    let sink_opts = cx.sink(StopWhen::CaughtUp {
        upstream: Some(transform_counters.clone()),
        together: None,
    });
    // Each stage on its own task: awaited together in this one future, the transform's cleaning
    // and the consumer's Parquet encoding would take turns on one thread (measured with `perf`: one
    // thread busy, the other core mostly idle).
    let transform_task = {
        let (counters, cancel) = (transform_counters.clone(), cancel.clone());
        tokio::spawn(async move { run_transform(&transform_opts, &counters, &cancel).await })
    };
    let sink_task = {
        let (zone, counters, cancel) = (zone.clone(), sink_counters.clone(), cancel.clone());
        tokio::spawn(async move { run_sink(&zone, &sink_opts, &counters, &cancel).await })
    };
    let (producer, transform, consumer) = tokio::join!(
        async {
            producer_task
                .await
                .context("producer thread panicked")?
                .context("producer failed")
        },
        async {
            transform_task
                .await
                .context("stream transform panicked")?
                .context("stream transform failed")
        },
        async { sink_task.await.context("consumer panicked")?.context("consumer failed") },
    );
    view.finish().await;
    if cancel.is_cancelled() {
        bail!("interrupted; the demo's raw zone is in {}", raw_dir.display());
    }
    let (producer, transform, consumer) = (producer?, transform?, consumer?);
    timings.insert("stream".to_string(), stream_started.elapsed().as_millis());
    // Every stage has finished with the broker; its topics' records need not stay in memory
    // through the batch.
    drop(broker);

    let batch_started = Instant::now();
    eprintln!("batch: DataFusion over {} → {serving_desc}", raw_dir.display());
    let batch = run_batch(&zone, None, &target).await.context("batch failed")?;
    timings.insert("batch".to_string(), batch_started.elapsed().as_millis());
    let serving_rows = read_back_rows(&target).await?;
    timings.insert("total".to_string(), total.elapsed().as_millis());

    Ok(DemoSummary {
        dataset: dataset_path.display().to_string(),
        broker: format!("librdkafka mock cluster {brokers}"),
        raw_zone: raw_dir.display().to_string(),
        serving: serving_desc,
        dlq: producer.dead_lettered + transform.dead_lettered + consumer.dead_lettered,
        final_lag: [
            ("transform".to_string(), transform_counters.snapshot().lag),
            ("consumer".to_string(), sink_counters.snapshot().lag),
        ]
        .into(),
        producer,
        transform,
        consumer,
        batch,
        serving_rows,
        timings_ms: timings,
    })
}

/// The dataset the demo sends: `--reviews N` generated (once, kept under the state dir),
/// `--data`, or the sample (see [`crate::dataset::sample`]).
pub fn resolve_dataset(opts: &DemoOptions) -> Result<PathBuf> {
    if let Some(reviews) = opts.reviews {
        let dir = opts
            .state_dir
            .join("datasets")
            .join(format!("generated-{reviews}-seed{}", opts.seed));
        if !dir.join(crate::dataset::Entity::Review.file_name()).is_file() {
            eprintln!(
                "generating {reviews} reviews (seed {}) into {}",
                opts.seed,
                dir.display()
            );
            generate(
                &dir,
                &GenerateOptions {
                    reviews,
                    seed: opts.seed,
                    invalid_rate: 0.001,
                },
            )
            .with_context(|| format!("generating a dataset into {}", dir.display()))?;
        }
        return Ok(dir);
    }
    let path = match &opts.data {
        Some(path) => path.clone(),
        None => crate::dataset::sample(&opts.state_dir).context("writing out the sample dataset this lab carries")?,
    };
    if !path.exists() {
        bail!(
            "dataset {} not found; pass --data PATH (a Yelp file, directory or yelp_dataset.tar) or --reviews N to generate one",
            path.display()
        );
    }
    Ok(path)
}
