//! `lab`: the bigdata-lab command line. Parses flags, sets up logging to the state dir, and calls
//! the library; the only place errors become `anyhow`.

mod cli;

/// jemalloc for the whole process, librdkafka's C allocations included (the crate's unprefixed
/// `malloc`), with a background thread that returns freed pages after a second
/// (.cargo/config.toml). Measured on `lab demo --headless --reviews 1000000`: glibc's malloc kept
/// the stream's freed buffers resident into the batch (README: Performance).
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use bigdata_lab::config::{LabConfig, Overrides};
use bigdata_lab::dataset::generate::{GenerateOptions, generate};
use bigdata_lab::dataset::inspect::inspect;
use bigdata_lab::dataset::reader::DatasetSource;
use bigdata_lab::demo::{DemoOptions, run_demo};
use bigdata_lab::embedded_lab::EmbeddedSpec;
use bigdata_lab::lesson::{Lesson, RunOn};
use bigdata_lab::pipeline::StageCounters;
use bigdata_lab::pipeline::batch::{ServingTarget, run_batch};
use bigdata_lab::pipeline::compact::{compact, plan_of};
use bigdata_lab::pipeline::producer::run_producer;
use bigdata_lab::pipeline::quality::check_quality;
use bigdata_lab::pipeline::sink::{SinkOptions, run_sink};
use bigdata_lab::pipeline::stage::StageContext;
use bigdata_lab::pipeline::status_file::StatusFile;
use bigdata_lab::pipeline::transform::{TransformOptions, run_transform};
use bigdata_lab::pipeline::{CaughtUpTogether, PipelineError};
use bigdata_lab::progress::LiveView;
use bigdata_lab::runtime::stack_commands;
use bigdata_lab::storage::{AnyRawZone, RawZone};
use clap::Parser;
use cli::{Cli, Command, DatasetCommand, DemoArgs, LessonCommand};
use tokio_util::sync::CancellationToken;

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let overrides = cli.global;
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
    let command = cli.command.unwrap_or_else(|| Command::Tui(cli::TuiArgs::default()));
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

/// Creates the stage's topics; when the broker does not answer within a few seconds, says on
/// stderr that the stage waits for it, and for how long (a wrong `--brokers` should not look like
/// a hang).
async fn ensure_topics_saying_so(cx: &StageContext) -> Result<(), bigdata_lab::pipeline::PipelineError> {
    let ensure = cx.ensure_topics();
    tokio::pin!(ensure);
    tokio::select! {
        done = &mut ensure => return done,
        () = tokio::time::sleep(std::time::Duration::from_secs(3)) => {}
    }
    eprintln!(
        "waiting for the broker at {} (up to {} s, --broker-patience): is it running?",
        cx.brokers,
        cx.broker_patience.as_secs()
    );
    ensure.await
}

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
    // tokio_postgres logs each server NOTICE at info: every batch added a dozen lines of
    // `relation "…" already exists, skipping` from its idempotent DDL to the log and the Logs view.
    let filter = tracing_subscriber::EnvFilter::try_from_env("LAB_LOG").unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new("info,librdkafka=warn,rdkafka=warn,tokio_postgres=warn")
    });
    tracing_subscriber::fmt()
        .with_writer(writer)
        .with_ansi(false)
        .with_env_filter(filter)
        .try_init()
        .ok()?;
    Some(guard)
}

/// Runs a stage's workers (one unless `--workers`), each on a task of its own with its own
/// counters, progress line and status file, and prints the report: the worker's own, or
/// `{"workers": [...]}` for several. The first worker to fail stops the others (each ends
/// cleanly, as on Ctrl-C) and its error is returned.
async fn run_workers<R, F, Fut>(
    config: &LabConfig,
    stage: &'static str,
    topic_prefix: &str,
    workers: Vec<Option<u32>>,
    run: F,
) -> Result<()>
where
    R: serde::Serialize + Send + 'static,
    F: Fn(usize, &Arc<CaughtUpTogether>, Option<u32>, Arc<StageCounters>, CancellationToken) -> Fut,
    Fut: std::future::Future<Output = Result<R, PipelineError>> + Send + 'static,
{
    let counters: Vec<Arc<StageCounters>> = workers.iter().map(|_| Arc::new(StageCounters::default())).collect();
    let names: Vec<String> = workers
        .iter()
        .map(|w| w.map_or_else(|| stage.to_string(), |n| format!("{stage} w{n}")))
        .collect();
    let rows: Vec<(&str, &Arc<StageCounters>)> = names.iter().map(String::as_str).zip(counters.iter()).collect();
    let view = LiveView::start(std::io::stderr().is_terminal(), &rows);
    let statuses: Vec<StatusFile> = workers
        .iter()
        .zip(&counters)
        .map(|(w, c)| StatusFile::start(&config.state_dir, stage, *w, topic_prefix, c))
        .collect();
    let stop = ctrl_c_token().child_token();
    // With --until-caught-up the process's workers end together (see CaughtUpTogether).
    let peers = CaughtUpTogether::new(workers.len());
    let tasks: Vec<_> = workers
        .iter()
        .zip(&counters)
        .enumerate()
        .map(|(slot, (w, c))| {
            let (run, stop) = (run(slot, &peers, *w, Arc::clone(c), stop.clone()), stop.clone());
            tokio::spawn(async move {
                let result = run.await;
                if result.is_err() {
                    stop.cancel();
                }
                result
            })
        })
        .collect();
    let mut reports = Vec::new();
    let mut failure: Option<anyhow::Error> = None;
    for task in tasks {
        let outcome = match task.await {
            Ok(Ok(report)) => {
                reports.push(report);
                continue;
            }
            Ok(Err(e)) => anyhow::Error::from(e),
            // A panic: the others stop too (the failing ones cancelled them already).
            Err(e) => {
                stop.cancel();
                anyhow::anyhow!("a {stage} worker ended abnormally: {e}")
            }
        };
        match &failure {
            None => failure = Some(outcome),
            Some(_) => tracing::error!(error = %outcome, "another {stage} worker failed too"),
        }
    }
    for status in statuses {
        status.finish().await;
    }
    view.finish().await;
    if let Some(e) = failure {
        return Err(e);
    }
    match reports.as_slice() {
        [one] => println!("{}", serde_json::to_string_pretty(one)?),
        all => println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({ "workers": all }))?
        ),
    }
    Ok(())
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
async fn demo(args: DemoArgs, config: &LabConfig, overrides: Overrides) -> Result<()> {
    if let Some(name) = args.lesson {
        return lesson(config.clone(), name, RunOn::Embedded, args.headless).await;
    }
    let opts = DemoOptions {
        state_dir: config.state_dir.clone(),
        topic_prefix: config.topic_prefix.clone(),
        data: args.data,
        reviews: args.reviews,
        seed: args.seed,
        headless: args.headless,
        pg_url: EmbeddedSpec::given_pg(&overrides),
        parquet: args.parquet,
        partitions: args.partitions,
        rate: args.rate,
    };
    let interactive = std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
    if !args.headless && interactive {
        // The monitor over a live embedded lab, until `q`.
        let spec = EmbeddedSpec {
            state_dir: opts.state_dir.clone(),
            topic_prefix: opts.topic_prefix.clone(),
            data: Some(bigdata_lab::demo::resolve_dataset(&opts)?),
            seed: opts.seed,
            pg_url: opts.pg_url.clone(),
            parquet: opts.parquet,
            partitions: opts.partitions,
            rate: opts.rate,
        };
        return Ok(bigdata_lab::tui::launch::run_embedded(config, overrides, spec).await?);
    }
    let cancel = ctrl_c_token();
    let summary = run_demo(&opts, &cancel).await?;
    if args.headless {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        print_demo_summary(&summary);
    }
    Ok(())
}

async fn run(command: Command, config: LabConfig, overrides: Overrides) -> Result<()> {
    match command {
        Command::Status(args) => {
            return bigdata_lab::probes::report::run_status(&config, &args.require, args.json)
                .await
                .map_err(Into::into);
        }
        Command::Tui(args) => {
            let stack = args.stack.stack.as_deref();
            bigdata_lab::tui::launch::run_tui(&config, overrides, args.intervals(), stack).await?;
        }
        Command::Doctor(args) => {
            let path = args.stack_path(&config.state_dir);
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
        Command::Demo(args) => demo(args, &config, overrides).await?,
        Command::Kafka(command) => {
            let brokers = config.brokers.clone();
            tokio::task::spawn_blocking(move || bigdata_lab::kafka_tools::commands::run(&command, &brokers)).await??;
        }
        Command::Dlq(command) => {
            let brokers = config.brokers.clone();
            let dlq = bigdata_lab::pipeline::Topics::new(&config.topic_prefix).dlq();
            tokio::task::spawn_blocking(move || bigdata_lab::kafka_tools::commands::run_dlq(&command, &brokers, &dlq))
                .await??;
        }
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
            let path = match args.data {
                Some(path) => path,
                None => bigdata_lab::dataset::sample_async(&config.state_dir)
                    .await
                    .context("writing out the sample dataset this lab carries")?,
            };
            let source = DatasetSource::open(&path).with_context(|| format!("opening dataset {}", path.display()))?;
            let cx = StageContext {
                partitions: args.partitions,
                ..StageContext::from_config(&config)
            };
            ensure_topics_saying_so(&cx).await?;
            let mut opts = cx.producer(args.rate);
            opts.entities = args.entities;
            let counters = Arc::new(StageCounters::default());
            let view = LiveView::start(
                std::io::IsTerminal::is_terminal(&std::io::stderr()),
                &[("producer", &counters)],
            );
            let status = StatusFile::start(&config.state_dir, "producer", None, &cx.topic_prefix, &counters);
            let cancel = ctrl_c_token();
            let c = counters.clone();
            let report = tokio::task::spawn_blocking(move || run_producer(&source, &opts, &c, &cancel)).await??;
            status.finish().await;
            view.finish().await;
            println!("{}", serde_json::to_string_pretty(&report)?);
            if report.interrupted {
                return Err(Interrupted.into());
            }
        }
        Command::Transform(args) => {
            // Created here too, so the stages can start before anything was produced.
            let cx = args.stream.context(&config);
            ensure_topics_saying_so(&cx).await?;
            let mut opts = cx.transform(args.stream.stop_when());
            if let Some(group) = args.stream.group.clone() {
                opts.group_id = group;
            }
            opts.delivery = args.delivery.wanted();
            run_workers(
                &config,
                "transform",
                &cx.topic_prefix,
                args.stream.worker_ids(),
                |slot, peers, worker, counters, stop| {
                    let opts = TransformOptions {
                        worker,
                        stop: opts.stop.clone().together(peers, slot),
                        ..opts.clone()
                    };
                    async move { run_transform(&opts, &counters, &stop).await }
                },
            )
            .await?;
        }
        Command::Consume(args) => {
            let mut cx = args.stream.context(&config);
            cx.roll.max_age = std::time::Duration::from_secs(args.roll_seconds.max(1));
            cx.roll.max_total_bytes = args.buffer_mib.max(1) << 20;
            ensure_topics_saying_so(&cx).await?;
            let zone = AnyRawZone::open(&cx.raw_zone, &cx.topic_prefix)?;
            let mut opts = cx.sink(args.stream.stop_when());
            if let Some(group) = args.stream.group.clone() {
                opts.group_id = group;
            }
            run_workers(
                &config,
                "consumer",
                &cx.topic_prefix,
                args.stream.worker_ids(),
                |slot, peers, worker, counters, stop| {
                    let opts = SinkOptions {
                        worker,
                        stop: opts.stop.clone().together(peers, slot),
                        ..opts.clone()
                    };
                    let zone = zone.clone();
                    async move { run_sink(&zone, &opts, &counters, &stop).await }
                },
            )
            .await?;
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
                    "batch {}: {} files, {} rows in, {} rows out → {} in {} ms (SQL {} ms, load {} ms)",
                    report.run_id,
                    report.input_files,
                    report.rows_in,
                    report.rows_out,
                    report.target,
                    report.elapsed_ms,
                    report.compute_ms,
                    report.load_ms
                );
                for (table, rows) in &report.tables {
                    println!("  yelp.{table:<18} {rows:>10} rows");
                }
            }
        }
        Command::Compact(args) if args.dry_run => {
            let zone = AnyRawZone::open(&config.raw_zone, &config.topic_prefix)?;
            let plan = plan_of(&zone).await?;
            if args.json {
                println!("{}", serde_json::to_string(&plan)?);
            } else {
                println!(
                    "{} (dry run, nothing changed): {} files would be merged into {}, {} left by an interrupted compaction removed",
                    zone.describe(),
                    plan.merges.iter().map(|m| m.inputs.len()).sum::<usize>(),
                    plan.merges.len(),
                    plan.leftovers.len()
                );
                for merge in &plan.merges {
                    println!("  {} ← {} files", merge.output, merge.inputs.len());
                }
                for leftover in &plan.leftovers {
                    println!("  remove {leftover}");
                }
            }
        }
        Command::Compact(args) => {
            let zone = AnyRawZone::open(&config.raw_zone, &config.topic_prefix)?;
            let report = compact(&zone, &ctrl_c_token()).await?;
            if args.json {
                println!("{}", serde_json::to_string(&report)?);
            } else {
                println!(
                    "compacted {}: {} files merged into {}, {} left by an interrupted compaction removed, {} left as they were, {} kept because their merge failed, in {} ms",
                    zone.describe(),
                    report.merged,
                    report.into,
                    report.leftovers_removed,
                    report.skipped,
                    report.failed,
                    report.elapsed_ms
                );
            }
            if let Some(failure) = &report.first_failure {
                bail!(
                    "{} files could not be merged and are kept as they are; the first: {failure}",
                    report.failed
                );
            }
            if report.interrupted {
                return Err(Interrupted.into());
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
            stack_commands::run_up(&args, &config.state_dir).await?;
        }
        Command::Down(args) => stack_commands::run_down(&args, &config.state_dir).await?,
        Command::Ps(args) => stack_commands::run_ps(&args, &config.state_dir).await?,
        Command::Logs(args) => stack_commands::run_logs(&args, &config.state_dir).await?,
        Command::Stop(args) => {
            stack_commands::run_service_action(stack_commands::ServiceAction::Stop, &args, &config.state_dir).await?
        }
        Command::Start(args) => {
            stack_commands::run_service_action(stack_commands::ServiceAction::Start, &args, &config.state_dir).await?
        }
        Command::Restart(args) => {
            stack_commands::run_service_action(stack_commands::ServiceAction::Restart, &args, &config.state_dir).await?
        }
        Command::Compose(args) => stack_commands::run_compose(&args, &config.state_dir)?,
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
