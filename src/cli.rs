//! The command line: every subcommand and flag of `lab` (clap), and what a flag turns into (a
//! stage context, a stop rule, refresh intervals). `main.rs` dispatches on [`Command`].

use std::path::{Path, PathBuf};
use std::time::Duration;

use bigdata_lab::config::{LabConfig, Overrides};
use bigdata_lab::dataset::Entity;
use bigdata_lab::lesson::Lesson;
use bigdata_lab::pipeline::stage::StageContext;
use bigdata_lab::pipeline::{StopWhen, kafka, sink, transform};
use bigdata_lab::probes::LabService;
use bigdata_lab::probes::scheduler::Intervals;
use bigdata_lab::runtime::stack_commands;
use chrono::NaiveDate;
use clap::{Args, Parser, Subcommand};

#[derive(Parser)]
#[command(name = "lab", version, about = "A big-data lambda-architecture lab on one laptop", long_about = None)]
pub struct Cli {
    #[command(flatten)]
    pub global: Overrides,
    /// Without a subcommand, `lab` opens the live monitor (`lab tui`).
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand)]
pub enum Command {
    /// The embedded lab (in-process Kafka, local raw zone, DataFusion, throwaway PostgreSQL) in the
    /// monitor until `q`; with --headless (or no terminal), the dataset once and a JSON summary.
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
    /// Merge each partition's small raw-zone files into larger ones (the small-files problem);
    /// what a batch reads stays the same. The Airflow DAG runs it before each batch.
    Compact(CompactArgs),
    /// Data-quality check: do the serving tables account for exactly the raw zone's records?
    /// Exits 1 on a mismatch (the Airflow DAG's quality gate).
    Check(CheckArgs),
    /// Start the lab's services (Kafka, HDFS, Spark, Airflow, PostgreSQL) in Docker and wait until healthy.
    Up(stack_commands::UpArgs),
    /// Remove the lab's containers and network (and volumes with --volumes); nothing else.
    Down(stack_commands::DownArgs),
    /// The lab's services: state, health, ports, uptime, restarts, CPU, memory.
    Ps(stack_commands::PsArgs),
    /// Print a service's log.
    Logs(stack_commands::LogsArgs),
    /// Stop one service.
    Stop(stack_commands::ServiceArgs),
    /// Start one stopped service.
    Start(stack_commands::ServiceArgs),
    /// Restart one service.
    Restart(stack_commands::ServiceArgs),
    /// Print an equivalent docker-compose file (secrets go to <state-dir>/compose.env).
    Compose(stack_commands::ComposeArgs),
    /// Can this machine run the stack? Docker engine, memory, disk, ports, state dir; each problem
    /// with its fix. Exits 1 when something must be fixed before `lab up`.
    Doctor(DoctorArgs),
    /// One snapshot of every service; exits non-zero when a required service is down.
    Status(StatusArgs),
    /// The live monitor: every service's health, lag, runs and tables, with actions.
    Tui(TuiArgs),
    /// Measure every stage against the tools users would use instead (`make bench`; needs the source tree).
    Bench(BenchArgs),
    /// Fault lessons for teaching: break one thing on purpose, watch the signal, repair it.
    #[command(subcommand)]
    Lesson(LessonCommand),
    /// Act on the broker's data: a topic's records (tail), a consumer group's offsets, and resetting them.
    #[command(subcommand)]
    Kafka(bigdata_lab::kafka_tools::commands::KafkaCommand),
    /// The dead-letter topic: reasons, examples, and replaying one reason after a fix.
    #[command(subcommand)]
    Dlq(bigdata_lab::kafka_tools::commands::DlqCommand),
}

#[derive(Subcommand)]
pub enum LessonCommand {
    /// Every lesson: what it breaks, what to watch, how it is repaired.
    List {
        /// Print the lessons as JSON.
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
pub struct BenchArgs {
    /// Arguments for benches/bench.py, e.g. `--only batch --batch-sizes 1000000`
    /// (`benches/run.sh --help` lists them).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<String>,
}

#[derive(Args)]
pub struct DoctorArgs {
    #[command(flatten)]
    pub stack: stack_commands::StackArg,
    /// Print the findings as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct CheckArgs {
    /// Count raw-zone partitions dated up to this day (YYYY-MM-DD), as the batch did; default: all.
    #[arg(long)]
    pub date: Option<NaiveDate>,
    /// One JSON line on stdout (the table then goes to stderr).
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct DemoArgs {
    /// Dataset: a Yelp JSON file, a directory of them, or yelp_dataset.tar[.gz]. Default: the sample.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Generate this many reviews (deterministic) instead of reading --data.
    #[arg(long, conflicts_with = "data")]
    pub reviews: Option<u64>,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// No monitor: stream the dataset once, progress lines on stderr and one JSON summary on stdout.
    #[arg(long)]
    pub headless: bool,
    /// Write the serving tables as Parquet files instead of loading PostgreSQL (wins over --pg).
    #[arg(long)]
    pub parquet: bool,
    /// Partitions per topic.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(i32).range(1..=64))]
    pub partitions: i32,
    /// Producer rate limit in messages per second (in the monitor: 200 by default, a teaching
    /// pace; headless: unlimited).
    #[arg(long)]
    pub rate: Option<u32>,
    /// Instead of the pipeline, run a fault lesson on the in-process broker (consumer-lag,
    /// poison-messages, broker-restart); with --headless its report is JSON on stdout.
    #[arg(long, conflicts_with_all = ["data", "reviews", "parquet", "rate"])]
    pub lesson: Option<Lesson>,
}

#[derive(Subcommand)]
pub enum DatasetCommand {
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
        /// A dataset directory (yelp_academic_dataset_*.json files) or one such file.
        path: PathBuf,
        /// Print the counts as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args)]
pub struct ProduceArgs {
    /// Dataset to send (default: the checked-in sample).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Messages per second (default: unlimited).
    #[arg(long)]
    pub rate: Option<u32>,
    /// Only these entities (comma-separated: business,user,review,tip,checkin).
    #[arg(long, value_delimiter = ',')]
    pub entities: Vec<Entity>,
    /// Partitions for topics the producer creates.
    #[arg(long, default_value_t = kafka::DEFAULT_PARTITIONS)]
    pub partitions: i32,
}

#[derive(Args)]
pub struct StreamArgs {
    /// Consumer group.
    #[arg(long)]
    pub group: Option<String>,
    /// Exit once every input partition is read to its end (instead of running until Ctrl-C).
    #[arg(long)]
    pub until_caught_up: bool,
    /// Seconds to wait for an unreachable broker (a restart, say) before giving up.
    #[arg(long, value_name = "SECS", default_value_t = kafka::DEFAULT_BROKER_PATIENCE.as_secs())]
    pub broker_patience: u64,
    /// This process's worker number in the consumer group: give each process of one group its own
    /// (0, 1, 2…) and Kafka shares the partitions among them. With --workers, the first number.
    #[arg(long, value_name = "N")]
    pub worker: Option<u32>,
    /// Workers of the group run by this process, numbered from --worker (else 0).
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub workers: u32,
}

#[derive(Args)]
pub struct TransformArgs {
    #[command(flatten)]
    pub stream: StreamArgs,
    /// auto: exactly-once where the broker has transactions, else at-least-once (with a warning);
    /// exactly-once: fail rather than fall back; at-least-once: never use transactions.
    #[arg(long, value_enum, default_value_t = DeliveryArg::Auto)]
    pub delivery: DeliveryArg,
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum DeliveryArg {
    Auto,
    ExactlyOnce,
    AtLeastOnce,
}

impl DeliveryArg {
    pub fn wanted(self) -> Option<transform::Delivery> {
        match self {
            Self::Auto => None,
            Self::ExactlyOnce => Some(transform::Delivery::ExactlyOnce),
            Self::AtLeastOnce => Some(transform::Delivery::AtLeastOnce),
        }
    }
}

#[derive(Args)]
pub struct ConsumeArgs {
    #[command(flatten)]
    pub stream: StreamArgs,
    /// Write a file at the latest after this many seconds of buffering.
    #[arg(long, default_value_t = 30)]
    pub roll_seconds: u64,
    /// Memory for buffered records, all partitions together (MiB); over it the largest buffers
    /// are written out first.
    #[arg(long, value_name = "MIB", default_value_t = sink::DEFAULT_BUFFER_BUDGET >> 20)]
    pub buffer_mib: usize,
}

#[derive(Args)]
pub struct BatchArgs {
    /// Use raw-zone partitions dated up to this day (YYYY-MM-DD); default: all.
    #[arg(long)]
    pub date: Option<NaiveDate>,
    /// Write the serving tables as Parquet into this directory instead of PostgreSQL.
    #[arg(long)]
    pub parquet_out: Option<PathBuf>,
    /// Print the report as one JSON line (the last line of output, for Airflow's XCom).
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct CompactArgs {
    /// Say which files would be merged and removed; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Print the report (or the plan) as one JSON line.
    #[arg(long)]
    pub json: bool,
}

impl StreamArgs {
    /// The stage context on the configured broker, with this command's broker patience.
    pub fn context(&self, config: &LabConfig) -> StageContext {
        StageContext {
            broker_patience: Duration::from_secs(self.broker_patience),
            ..StageContext::from_config(config)
        }
    }

    /// The worker numbers this process runs: `[None]` for a group's only worker.
    pub fn worker_ids(&self) -> Vec<Option<u32>> {
        if self.workers == 1 {
            return vec![self.worker];
        }
        let first = self.worker.unwrap_or(0);
        (first..first.saturating_add(self.workers)).map(Some).collect()
    }

    pub fn stop_when(&self) -> StopWhen {
        if self.until_caught_up {
            StopWhen::CaughtUp {
                upstream: None,
                together: None,
            }
        } else {
            StopWhen::Cancelled
        }
    }
}

#[derive(Debug, Clone, Default, Args)]
pub struct StatusArgs {
    /// Print the snapshot as JSON.
    #[arg(long)]
    pub json: bool,
    /// Services that must be up for a zero exit status (comma-separated: kafka,hdfs,spark,airflow,postgres).
    /// Default: every configured service.
    #[arg(long, value_delimiter = ',')]
    pub require: Vec<LabService>,
}

#[derive(Debug, Clone, Default, Args)]
pub struct TuiArgs {
    /// Seconds between Kafka polls.
    #[arg(long, value_name = "SECONDS")]
    pub kafka_interval: Option<f64>,
    /// Seconds between polls of HDFS, Spark, Airflow, PostgreSQL and Docker.
    #[arg(long, value_name = "SECONDS")]
    pub interval: Option<f64>,
    /// The stack the Stack view manages.
    #[command(flatten)]
    pub stack: stack_commands::StackArg,
}

impl TuiArgs {
    /// Refresh intervals from the flags (at least 200 ms, so a typo cannot spin a core).
    #[must_use]
    pub fn intervals(&self) -> Intervals {
        let secs = |s: f64| Duration::from_secs_f64(s.max(0.2));
        let mut i = Intervals::default();
        if let Some(s) = self.kafka_interval {
            i.kafka = secs(s);
        }
        if let Some(s) = self.interval {
            let d = secs(s);
            i.hdfs = d;
            i.spark = d;
            i.airflow = d;
            i.postgres = d;
            i.docker = d;
        }
        i
    }
}

impl DoctorArgs {
    pub fn stack_path(&self, state_dir: &Path) -> Result<PathBuf, String> {
        self.stack.path(state_dir).map_err(|e| e.to_string())
    }
}
