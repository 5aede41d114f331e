//! `lab`: the bigdata-lab command line. Parses flags, sets up logging to the state dir, and calls
//! the library; the only place errors become `anyhow`.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use bigdata_lab::config::{LabConfig, Overrides};
use bigdata_lab::dataset::Entity;
use bigdata_lab::dataset::generate::{GenerateOptions, generate};
use bigdata_lab::dataset::inspect::inspect;
use bigdata_lab::dataset::reader::DatasetSource;
use bigdata_lab::demo::{DemoOptions, default_sample, run_demo};
use bigdata_lab::lesson::{Lesson, RunOn};
use bigdata_lab::pipeline::batch::{ServingTarget, run_batch};
use bigdata_lab::pipeline::producer::{ProducerOptions, run_producer};
use bigdata_lab::pipeline::quality::check_quality;
use bigdata_lab::pipeline::sink::{RollPolicy, SinkOptions, run_sink};
use bigdata_lab::pipeline::transform::{TransformOptions, run_transform};
use bigdata_lab::pipeline::{StageCounters, StopWhen, Topics, kafka, sink, transform};
use bigdata_lab::progress::LiveView;
use bigdata_lab::runtime::cli as stack_cli;
use bigdata_lab::storage::{AnyRawZone, RawZone};
use chrono::NaiveDate;
use clap::{Args, Parser, Subcommand};
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(name = "lab", version, about = "A big-data lambda-architecture lab on one laptop", long_about = None)]
struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
    /// Without a subcommand, `lab` opens the live monitor (`lab tui`).
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Args)]
struct GlobalArgs {
    /// Where the lab keeps logs, the raw zone and generated data.
    #[arg(long, global = true, env = "LAB_STATE_DIR")]
    state_dir: Option<PathBuf>,
    /// Kafka bootstrap servers.
    #[arg(long, global = true, env = "LAB_KAFKA_BROKERS")]
    brokers: Option<String>,
    /// Prefix of every topic name (`<prefix>.review`, `<prefix>.review.clean`, `<prefix>.dlq`).
    #[arg(long, global = true, env = "LAB_TOPIC_PREFIX")]
    topic_prefix: Option<String>,
    /// PostgreSQL connection string for the serving tables.
    #[arg(long = "pg", global = true, env = "LAB_PG_URL", hide_env_values = true)]
    pg_url: Option<String>,
    /// Raw zone: a directory or hdfs://HOST:PORT/DIR (default: <state-dir>/raw, or HDFS after `lab up`).
    #[arg(long, global = true, env = "LAB_RAW_ZONE")]
    raw_zone: Option<PathBuf>,
    /// HDFS NameNode RPC URL.
    #[arg(long = "hdfs", global = true, env = "LAB_HDFS_URL", help_heading = "Endpoints")]
    hdfs_url: Option<String>,
    /// HDFS NameNode HTTP URL (JMX, WebHDFS).
    #[arg(long, global = true, env = "LAB_HDFS_HTTP", help_heading = "Endpoints")]
    hdfs_http: Option<String>,
    /// Spark master URL.
    #[arg(long, global = true, env = "LAB_SPARK_MASTER", help_heading = "Endpoints")]
    spark_master: Option<String>,
    /// Spark master web UI URL.
    #[arg(long, global = true, env = "LAB_SPARK_UI", help_heading = "Endpoints")]
    spark_ui: Option<String>,
    /// Airflow API server URL.
    #[arg(long, global = true, env = "LAB_AIRFLOW_URL", help_heading = "Endpoints")]
    airflow_url: Option<String>,
    /// Airflow user name.
    #[arg(long, global = true, env = "LAB_AIRFLOW_USER", help_heading = "Endpoints")]
    airflow_user: Option<String>,
    /// File holding the Airflow password.
    #[arg(long, global = true, env = "LAB_AIRFLOW_PASSWORD_FILE", help_heading = "Endpoints")]
    airflow_password_file: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the whole pipeline in one process: mock Kafka, local raw zone, DataFusion, PostgreSQL.
    Demo(DemoArgs),
    /// Generate or inspect Yelp data.
    #[command(subcommand)]
    Dataset(DatasetCommand),
    /// Stream a dataset into the raw topics.
    Produce(ProduceArgs),
    /// Validate, clean and enrich raw topics into `<topic>.clean`; invalid records go to the DLQ.
    Transform(TransformArgs),
    /// Land the clean topics in the raw zone as Parquet.
    Consume(ConsumeArgs),
    /// Compute the serving tables from the raw zone and load them into PostgreSQL.
    Batch(BatchArgs),
    /// Data-quality check: do the serving tables account for exactly the raw zone's records?
    /// Exits 1 on a mismatch (the Airflow DAG's quality gate).
    Check(CheckArgs),
    /// Start the lab's services (Kafka, HDFS, Spark, Airflow, PostgreSQL) in Docker and wait until healthy.
    Up(stack_cli::UpArgs),
    /// Remove the lab's containers and network (and volumes with --volumes); nothing else.
    Down(stack_cli::DownArgs),
    /// The lab's services: state, health, ports, uptime, restarts, CPU, memory.
    Ps(stack_cli::PsArgs),
    /// Print a service's log.
    Logs(stack_cli::LogsArgs),
    /// Stop one service.
    Stop(stack_cli::ServiceArgs),
    /// Start one stopped service.
    Start(stack_cli::ServiceArgs),
    /// Restart one service.
    Restart(stack_cli::ServiceArgs),
    /// Print an equivalent docker-compose file (secrets go to <state-dir>/compose.env).
    Compose(stack_cli::ComposeArgs),
    /// Can this machine run the stack? Docker engine, memory, disk, ports, state dir; each problem
    /// with its fix. Exits 1 when something must be fixed before `lab up`.
    Doctor(DoctorArgs),
    /// One snapshot of every service; exits non-zero when a required service is down.
    Status(bigdata_lab::tui::cli::StatusArgs),
    /// The live monitor: every service's health, lag, runs and tables, with actions.
    Tui(bigdata_lab::tui::cli::TuiArgs),
    /// Measure every stage against the tools users would use instead (`make bench`; needs the source tree).
    Bench(BenchArgs),
    /// Fault lessons for teaching: break one thing on purpose, watch the signal, repair it.
    #[command(subcommand)]
    Lesson(LessonCommand),
}

#[derive(Subcommand)]
enum LessonCommand {
    /// Every lesson: what it breaks, what to watch, how it is repaired.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Run one lesson against the running lab (`lab up`'s stack, or the endpoints configured;
    /// LAB_CONTROL_<SERVICE>_STOP/_START for services run outside Docker). Exits 1 when the
    /// signal never showed or the repair was not confirmed.
    Run {
        /// consumer-lag, poison-messages, broker-restart, datanode-down or slow-batch
        name: Lesson,
        /// Print the report as JSON on stdout (narration goes to stderr).
        #[arg(long)]
        json: bool,
        /// Run it without any service, on an in-process Kafka broker and a local raw zone
        /// (consumer-lag, poison-messages, broker-restart).
        #[arg(long)]
        embedded: bool,
    },
}

#[derive(Args)]
struct BenchArgs {
    /// Arguments for benches/bench.py, e.g. `--only batch --batch-sizes 1000000`
    /// (`benches/run.sh --help` lists them).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<String>,
}

#[derive(Args)]
struct DoctorArgs {
    #[command(flatten)]
    stack: stack_cli::StackArg,
    /// Print the findings as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct CheckArgs {
    /// Count raw-zone partitions dated up to this day (YYYY-MM-DD), as the batch did; default: all.
    #[arg(long)]
    date: Option<NaiveDate>,
    /// One JSON line on stdout (the table then goes to stderr).
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct DemoArgs {
    /// Dataset: a Yelp JSON file, a directory of them, or yelp_dataset.tar[.gz]. Default: the sample.
    #[arg(long)]
    data: Option<PathBuf>,
    /// Generate this many reviews (deterministic) instead of reading --data.
    #[arg(long, conflicts_with = "data")]
    reviews: Option<u64>,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// No live view: progress lines on stderr and one JSON summary on stdout.
    #[arg(long)]
    headless: bool,
    /// Write the serving tables as Parquet files instead of loading PostgreSQL (wins over --pg).
    #[arg(long)]
    parquet: bool,
    /// Partitions per topic.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(i32).range(1..=64))]
    partitions: i32,
    /// Producer rate limit in messages per second (a slow stream for teaching).
    #[arg(long)]
    rate: Option<u32>,
    /// Instead of the pipeline, run a fault lesson on the in-process broker (consumer-lag,
    /// poison-messages, broker-restart); with --headless its report is JSON on stdout.
    #[arg(long, conflicts_with_all = ["data", "reviews", "parquet", "rate"])]
    lesson: Option<Lesson>,
}

impl Default for DemoArgs {
    /// What plain `lab demo` does (the TUI offers it when there is no Docker).
    fn default() -> Self {
        Self {
            data: None,
            reviews: None,
            seed: 42,
            headless: false,
            parquet: false,
            partitions: 3,
            rate: None,
            lesson: None,
        }
    }
}

#[derive(Subcommand)]
enum DatasetCommand {
    /// Write a deterministic, referentially consistent dataset in the official files' format.
    Generate {
        #[arg(long)]
        out: PathBuf,
        #[arg(long)]
        reviews: u64,
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Fraction of review and tip lines replaced by invalid ones (to exercise the DLQ).
        #[arg(long, default_value_t = 0.0)]
        invalid_rate: f64,
    },
    /// Count records, date range and malformed lines of a dataset.
    Inspect {
        path: PathBuf,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args)]
struct ProduceArgs {
    /// Dataset to send (default: the checked-in sample).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Messages per second (default: unlimited).
    #[arg(long)]
    rate: Option<u32>,
    /// Only these entities (comma-separated: business,user,review,tip,checkin).
    #[arg(long, value_delimiter = ',')]
    entities: Vec<Entity>,
    /// Partitions for topics the producer creates.
    #[arg(long, default_value_t = kafka::DEFAULT_PARTITIONS)]
    partitions: i32,
}

#[derive(Args)]
struct StreamArgs {
    /// Consumer group.
    #[arg(long)]
    group: Option<String>,
    /// Exit once every input partition is read to its end (instead of running until Ctrl-C).
    #[arg(long)]
    until_caught_up: bool,
    /// Seconds to wait for an unreachable broker (a restart, say) before giving up.
    #[arg(long, value_name = "SECS", default_value_t = kafka::DEFAULT_BROKER_PATIENCE.as_secs())]
    broker_patience: u64,
}

#[derive(Args)]
struct TransformArgs {
    #[command(flatten)]
    stream: StreamArgs,
    /// auto: exactly-once where the broker has transactions, else at-least-once (with a warning);
    /// exactly-once: fail rather than fall back; at-least-once: never use transactions.
    #[arg(long, value_enum, default_value_t = DeliveryArg::Auto)]
    delivery: DeliveryArg,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum DeliveryArg {
    Auto,
    ExactlyOnce,
    AtLeastOnce,
}

impl DeliveryArg {
    fn wanted(self) -> Option<transform::Delivery> {
        match self {
            Self::Auto => None,
            Self::ExactlyOnce => Some(transform::Delivery::ExactlyOnce),
            Self::AtLeastOnce => Some(transform::Delivery::AtLeastOnce),
        }
    }
}

#[derive(Args)]
struct ConsumeArgs {
    #[command(flatten)]
    stream: StreamArgs,
    /// Write a file at the latest after this many seconds of buffering.
    #[arg(long, default_value_t = 30)]
    roll_seconds: u64,
    /// Memory for buffered records, all partitions together (MiB); over it the largest buffers
    /// are written out first.
    #[arg(long, value_name = "MIB", default_value_t = sink::DEFAULT_BUFFER_BUDGET >> 20)]
    buffer_mib: usize,
}

#[derive(Args)]
struct BatchArgs {
    /// Use raw-zone partitions dated up to this day (YYYY-MM-DD); default: all.
    #[arg(long)]
    date: Option<NaiveDate>,
    /// Write the serving tables as Parquet into this directory instead of PostgreSQL.
    #[arg(long)]
    parquet_out: Option<PathBuf>,
    /// Print the report as one JSON line (the last line of output, for Airflow's XCom).
    #[arg(long)]
    json: bool,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let overrides = Overrides {
        state_dir: cli.global.state_dir.clone(),
        brokers: cli.global.brokers.clone(),
        topic_prefix: cli.global.topic_prefix.clone(),
        pg_url: cli.global.pg_url.clone(),
        raw_zone: cli.global.raw_zone.clone(),
        hdfs_url: cli.global.hdfs_url.clone(),
        hdfs_http: cli.global.hdfs_http.clone(),
        spark_master: cli.global.spark_master.clone(),
        spark_ui: cli.global.spark_ui.clone(),
        airflow_url: cli.global.airflow_url.clone(),
        airflow_user: cli.global.airflow_user.clone(),
        airflow_password_file: cli.global.airflow_password_file.clone(),
    };
    let config = match LabConfig::resolve(overrides.clone()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let _log_guard = init_logging(&config);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let command = cli
        .command
        .unwrap_or_else(|| Command::Tui(bigdata_lab::tui::cli::TuiArgs::default()));
    match runtime.block_on(run(command, config, overrides)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        // Stopped by Ctrl-C after printing what it did: the shell convention, 128 + SIGINT.
        Err(e) if e.is::<Interrupted>() => std::process::ExitCode::from(130),
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "command failed");
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// A command stopped by Ctrl-C once it had reported what it did: exit status 130, no error text.
#[derive(Debug, thiserror::Error)]
#[error("interrupted")]
struct Interrupted;

/// `lab.log` is rotated when a run starts with it over this size; this many old ones are kept
/// (`lab.log.1` the newest).
const LOG_ROTATE_BYTES: u64 = 16 << 20;
const LOG_KEEP: u32 = 3;

/// Shifts `lab.log` → `lab.log.1` → … → `lab.log.<keep>` (the oldest dropped) when it has
/// `max_bytes` or more.
fn rotate_log(dir: &std::path::Path, max_bytes: u64, keep: u32) {
    let log = dir.join("lab.log");
    if std::fs::metadata(&log).map_or(true, |m| m.len() < max_bytes) {
        return;
    }
    let old = |n: u32| dir.join(format!("lab.log.{n}"));
    for n in (1..keep).rev() {
        match std::fs::rename(old(n), old(n + 1)) {
            // A missing older file is fine: there is just less history.
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                eprintln!("warning: cannot rotate {}: {e}", old(n).display());
            }
            _ => {}
        }
    }
    if let Err(e) = std::fs::rename(&log, old(1)) {
        eprintln!("warning: cannot rotate {}: {e}", log.display());
    }
}

/// Logs go to `<state-dir>/logs/lab.log`, never to the terminal the stages draw on.
fn init_logging(config: &LabConfig) -> Option<tracing_appender::non_blocking::WorkerGuard> {
    let dir = config.log_dir();
    std::fs::create_dir_all(&dir).ok()?;
    rotate_log(&dir, LOG_ROTATE_BYTES, LOG_KEEP);
    let appender = tracing_appender::rolling::never(&dir, "lab.log");
    let (writer, guard) = tracing_appender::non_blocking(appender);
    let filter = tracing_subscriber::EnvFilter::try_from_env("LAB_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,librdkafka=warn,rdkafka=warn"));
    tracing_subscriber::fmt()
        .with_writer(writer)
        .with_ansi(false)
        .with_env_filter(filter)
        .try_init()
        .ok()?;
    Some(guard)
}

/// Cancelled on the first Ctrl-C, so stages stop cleanly (nothing committed that is not durable).
fn ctrl_c_token() -> CancellationToken {
    let token = CancellationToken::new();
    let trigger = token.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("\nstopping… (Ctrl-C again to force)");
            trigger.cancel();
            if tokio::signal::ctrl_c().await.is_ok() {
                std::process::exit(130);
            }
        }
    });
    token
}

/// `lab lesson run` and `lab demo --lesson`: the lesson's narration, then its report.
async fn lesson(config: LabConfig, name: Lesson, how: RunOn, json: bool) -> Result<()> {
    let report = bigdata_lab::lesson::run_cli(config, name, how, json, ctrl_c_token()).await?;
    if json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!("Lesson {} done in {:.0} s.", name.name(), report.elapsed_s);
    }
    Ok(())
}

/// `lab demo`: the whole pipeline in one process.
async fn demo(args: DemoArgs, config: &LabConfig) -> Result<()> {
    if let Some(name) = args.lesson {
        return lesson(config.clone(), name, RunOn::Embedded, args.headless).await;
    }
    let cancel = ctrl_c_token();
    let opts = DemoOptions {
        state_dir: config.state_dir.clone(),
        topic_prefix: config.topic_prefix.clone(),
        data: args.data,
        reviews: args.reviews,
        seed: args.seed,
        headless: args.headless,
        pg_url: config.pg_url.clone(),
        parquet: args.parquet,
        partitions: args.partitions,
        rate: args.rate,
    };
    let summary = run_demo(&opts, &cancel).await?;
    if args.headless {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        print_demo_summary(&summary);
    }
    Ok(())
}

async fn run(command: Command, config: LabConfig, overrides: Overrides) -> Result<()> {
    let topics = Topics::new(&config.topic_prefix);
    match command {
        Command::Status(args) => {
            return bigdata_lab::tui::cli::run_status(&config, &args)
                .await
                .map_err(Into::into);
        }
        Command::Tui(args) => {
            let next = bigdata_lab::tui::cli::run_tui(&config, overrides, &args).await?;
            if next == Some(bigdata_lab::tui::app::AfterExit::Demo) {
                println!("No Docker engine: running the embedded demo instead (`lab demo`).");
                demo(DemoArgs::default(), &config).await?;
            }
        }
        Command::Doctor(args) => {
            let path = stack_cli::stack_path(&args.stack, &config.state_dir).map_err(|e| e.to_string());
            let report = bigdata_lab::doctor::diagnose(path, &config.state_dir).await;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", bigdata_lab::doctor::render_text(&report));
            }
            if report.failures() > 0 {
                bail!(
                    "lab doctor found {} problem(s); each has its fix above",
                    report.failures()
                );
            }
        }
        Command::Lesson(LessonCommand::List { json }) => {
            if json {
                let infos: Vec<_> = Lesson::ALL.iter().map(|l| l.info()).collect();
                println!("{}", serde_json::to_string_pretty(&infos)?);
            } else {
                print!("{}", bigdata_lab::lesson::render_list());
            }
        }
        Command::Lesson(LessonCommand::Run { name, json, embedded }) => {
            let how = if embedded { RunOn::Embedded } else { RunOn::Services };
            lesson(config, name, how, json).await?;
        }
        Command::Demo(args) => demo(args, &config).await?,
        Command::Dataset(DatasetCommand::Generate {
            out,
            reviews,
            seed,
            invalid_rate,
        }) => {
            if !(0.0..=1.0).contains(&invalid_rate) {
                bail!("--invalid-rate must be between 0 and 1, got {invalid_rate}");
            }
            let summary = tokio::task::spawn_blocking(move || {
                generate(
                    &out,
                    &GenerateOptions {
                        reviews,
                        seed,
                        invalid_rate,
                    },
                )
            })
            .await?
            .context("generating the dataset")?;
            println!("{summary}");
        }
        Command::Dataset(DatasetCommand::Inspect { path, json }) => {
            let report = tokio::task::spawn_blocking(move || -> Result<_> {
                let source = DatasetSource::open(&path).with_context(|| format!("opening {}", path.display()))?;
                Ok(inspect(&source)?)
            })
            .await??;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?)
            } else {
                println!("{report}")
            }
        }
        Command::Produce(args) => {
            let path = args.data.unwrap_or_else(default_sample);
            let source = DatasetSource::open(&path).with_context(|| format!("opening dataset {}", path.display()))?;
            kafka::ensure_topics(&config.brokers, &topics.all(), args.partitions).await?;
            let opts = ProducerOptions {
                brokers: config.brokers.clone(),
                topics,
                rate: args.rate,
                entities: args.entities,
                backpressure: None,
            };
            let counters = Arc::new(StageCounters::default());
            let view = LiveView::start(
                std::io::IsTerminal::is_terminal(&std::io::stderr()),
                &[("producer", &counters)],
            );
            let cancel = ctrl_c_token();
            let c = counters.clone();
            let report = tokio::task::spawn_blocking(move || run_producer(&source, &opts, &c, &cancel)).await??;
            view.finish().await;
            println!("{}", serde_json::to_string_pretty(&report)?);
            if report.interrupted {
                return Err(Interrupted.into());
            }
        }
        Command::Transform(args) => {
            // Created here too, so the stages can start before anything was produced.
            kafka::ensure_topics(&config.brokers, &topics.all(), kafka::DEFAULT_PARTITIONS).await?;
            let opts = TransformOptions {
                brokers: config.brokers.clone(),
                topics,
                group_id: args
                    .stream
                    .group
                    .unwrap_or_else(|| kafka::default_group(transform::GROUP_STAGE, &config.topic_prefix)),
                fetch_wait_ms: kafka::DEFAULT_FETCH_WAIT_MS,
                stop: stop_when(args.stream.until_caught_up),
                backpressure: None,
                delivery: args.delivery.wanted(),
                broker_patience: std::time::Duration::from_secs(args.stream.broker_patience),
            };
            let counters = Arc::new(StageCounters::default());
            let view = LiveView::start(
                std::io::IsTerminal::is_terminal(&std::io::stderr()),
                &[("transform", &counters)],
            );
            let report = run_transform(&opts, &counters, &ctrl_c_token()).await?;
            view.finish().await;
            println!("{}", serde_json::to_string_pretty(&report)?);
        }
        Command::Consume(args) => {
            kafka::ensure_topics(&config.brokers, &topics.all(), kafka::DEFAULT_PARTITIONS).await?;
            let zone = AnyRawZone::open(&config.raw_zone, &config.topic_prefix)?;
            let opts = SinkOptions {
                brokers: config.brokers.clone(),
                topics,
                group_id: args
                    .stream
                    .group
                    .unwrap_or_else(|| kafka::default_group(sink::GROUP_STAGE, &config.topic_prefix)),
                fetch_wait_ms: kafka::DEFAULT_FETCH_WAIT_MS,
                roll: RollPolicy {
                    max_age: std::time::Duration::from_secs(args.roll_seconds.max(1)),
                    max_total_bytes: args.buffer_mib.max(1) << 20,
                    ..RollPolicy::default()
                },
                stop: stop_when(args.stream.until_caught_up),
                broker_patience: std::time::Duration::from_secs(args.stream.broker_patience),
            };
            let counters = Arc::new(StageCounters::default());
            let view = LiveView::start(
                std::io::IsTerminal::is_terminal(&std::io::stderr()),
                &[("consumer", &counters)],
            );
            let report = run_sink(&zone, &opts, &counters, &ctrl_c_token()).await?;
            view.finish().await;
            println!("{}", serde_json::to_string_pretty(&report)?);
        }
        Command::Batch(args) => {
            let zone = AnyRawZone::open(&config.raw_zone, &config.topic_prefix)?;
            let target = match (args.parquet_out, &config.pg_url) {
                (Some(dir), _) => ServingTarget::Parquet(dir),
                (None, Some(url)) => ServingTarget::Postgres(url.clone()),
                (None, None) => {
                    bail!("no PostgreSQL configured: pass --pg URL, set LAB_PG_URL, or use --parquet-out DIR")
                }
            };
            let report = run_batch(&zone, args.date, &target).await?;
            if args.json {
                println!("{}", serde_json::to_string(&report)?);
            } else {
                println!(
                    "batch {}: {} files, {} rows in, {} rows out → {} in {} ms",
                    report.run_id,
                    report.input_files,
                    report.rows_in,
                    report.rows_out,
                    report.target,
                    report.elapsed_ms
                );
                for (table, rows) in &report.tables {
                    println!("  yelp.{table:<18} {rows:>10} rows");
                }
            }
        }
        Command::Check(args) => {
            let zone = AnyRawZone::open(&config.raw_zone, &config.topic_prefix)?;
            let Some(url) = &config.pg_url else {
                bail!("no PostgreSQL configured: pass --pg URL or set LAB_PG_URL");
            };
            let report = check_quality(&zone, args.date, url).await?;
            if args.json {
                // The table still goes to stderr, so one run serves a task log and a script.
                eprint!("{}", report.render());
                println!("{}", serde_json::to_string(&report)?);
            } else {
                print!("{}", report.render());
            }
            if !report.passed {
                bail!(
                    "data-quality check failed: the serving tables in PostgreSQL do not match the raw zone {} \
                     (see the FAIL lines); rerun the batch, and if it persists compare the batch SQL with the raw data",
                    zone.describe()
                );
            }
        }
        Command::Up(args) => {
            stack_cli::run_up(&args, &config.state_dir).await?;
        }
        Command::Down(args) => stack_cli::run_down(&args, &config.state_dir).await?,
        Command::Ps(args) => stack_cli::run_ps(&args, &config.state_dir).await?,
        Command::Logs(args) => stack_cli::run_logs(&args, &config.state_dir).await?,
        Command::Stop(args) => {
            stack_cli::run_service_action(stack_cli::ServiceAction::Stop, &args, &config.state_dir).await?
        }
        Command::Start(args) => {
            stack_cli::run_service_action(stack_cli::ServiceAction::Start, &args, &config.state_dir).await?
        }
        Command::Restart(args) => {
            stack_cli::run_service_action(stack_cli::ServiceAction::Restart, &args, &config.state_dir).await?
        }
        Command::Compose(args) => stack_cli::run_compose(&args, &config.state_dir)?,
        Command::Bench(args) => run_bench(&args.args).await?,
    }
    Ok(())
}

/// `lab bench` runs the source tree's `benches/run.sh` (the one `make bench` runs): the current
/// directory's, else the tree this binary was built from.
async fn run_bench(args: &[String]) -> Result<()> {
    let roots = [PathBuf::from("."), PathBuf::from(env!("CARGO_MANIFEST_DIR"))];
    let Some(script) = roots.iter().map(|r| r.join("benches/run.sh")).find(|p| p.is_file()) else {
        bail!(
            "`lab bench` needs the bigdata-lab source tree (benches/run.sh, not found in the current directory \
             or in {}): run it from a checkout, or `make bench` there",
            env!("CARGO_MANIFEST_DIR")
        );
    };
    // Ctrl-C reaches the script too (same process group): wait while it stops its services.
    tokio::spawn(async { while tokio::signal::ctrl_c().await.is_ok() {} });
    let status = tokio::process::Command::new(&script)
        .args(args)
        .status()
        .await
        .with_context(|| format!("running {}", script.display()))?;
    if !status.success() {
        bail!("{} failed ({status})", script.display());
    }
    Ok(())
}

fn stop_when(until_caught_up: bool) -> StopWhen {
    if until_caught_up {
        StopWhen::CaughtUp { upstream: None }
    } else {
        StopWhen::Cancelled
    }
}

fn print_demo_summary(s: &bigdata_lab::demo::DemoSummary) {
    println!();
    println!("dataset    {}", s.dataset);
    println!(
        "producer   {} lines sent ({} malformed, forwarded to the DLQ)",
        s.producer.sent, s.producer.malformed_lines
    );
    println!(
        "transform  {} consumed, {} clean, {} dead-lettered",
        s.transform.consumed, s.transform.clean, s.transform.dead_lettered
    );
    println!(
        "consumer   {} records in {} Parquet files under {}",
        s.consumer.records_written, s.consumer.files_written, s.raw_zone
    );
    println!(
        "batch      {} rows in → {} rows out, into {}",
        s.batch.rows_in, s.batch.rows_out, s.serving
    );
    for (table, rows) in &s.serving_rows {
        println!("  yelp.{table:<18} {rows:>10} rows");
    }
    let total = s.timings_ms.get("total").copied().unwrap_or_default();
    println!("done in {:.1} s", total as f64 / 1000.0);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_large_log_is_rotated_and_only_a_few_old_ones_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("lab.log");
        let read = |name: &str| std::fs::read_to_string(dir.path().join(name)).ok();
        for run in 0..5 {
            std::fs::write(&log, format!("run {run} {}", "x".repeat(100))).unwrap();
            rotate_log(dir.path(), 100, 3);
            assert!(!log.exists(), "rotated away before run {run} logs");
        }
        assert!(read("lab.log.1").unwrap().starts_with("run 4"));
        assert!(read("lab.log.2").unwrap().starts_with("run 3"));
        assert!(read("lab.log.3").unwrap().starts_with("run 2"));
        assert_eq!(read("lab.log.4"), None, "only 3 kept");
        // A small log stays where it is.
        std::fs::write(&log, "short").unwrap();
        rotate_log(dir.path(), 100, 3);
        assert_eq!(read("lab.log").as_deref(), Some("short"));
    }
}
