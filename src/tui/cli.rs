//! The `lab status` and `lab tui` commands: flags and entry points (main.rs only dispatches here).

use std::time::Duration;

use crate::config::{LabConfig, Overrides};
use crate::probes::report::{self, StatusReport};
use crate::probes::scheduler::Intervals;
use crate::probes::{ProbeTargets, Service};
use crate::runtime::cli::{StackArg, stack_name, stack_path};
use crate::stack::Stack;

use super::TuiError;
use super::actions::StackContext;
use super::app::AfterExit;
use super::stack::StackPanel;
use super::stages::StageConfig;

#[derive(Debug, Clone, Default, clap::Args)]
pub struct StatusArgs {
    /// Print the snapshot as JSON.
    #[arg(long)]
    pub json: bool,
    /// Services that must be up for a zero exit status (comma-separated: kafka,hdfs,spark,airflow,postgres).
    /// Default: every configured service.
    #[arg(long, value_delimiter = ',')]
    pub require: Vec<Service>,
}

#[derive(Debug, Clone, Default, clap::Args)]
pub struct TuiArgs {
    /// Seconds between Kafka polls.
    #[arg(long, value_name = "SECONDS")]
    pub kafka_interval: Option<f64>,
    /// Seconds between polls of HDFS, Spark, Airflow, PostgreSQL and Docker.
    #[arg(long, value_name = "SECONDS")]
    pub interval: Option<f64>,
    /// The stack the Stack view manages.
    #[command(flatten)]
    pub stack: StackArg,
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

/// `lab status`: prints one snapshot; an error when a required service is down.
pub async fn run_status(config: &LabConfig, args: &StatusArgs) -> Result<(), TuiError> {
    let mut targets = ProbeTargets::from_config(config);
    if let Ok(name) = stack_name(&StackArg::default(), &config.state_dir) {
        targets.docker_stack = name;
    }
    let report: StatusReport = report::status(&targets, &args.require).await?;
    if args.json {
        let json = serde_json::json!({
            "services": report.snapshot,
            "required": report.required,
            "failing": report.failing,
        });
        println!("{}", serde_json::to_string_pretty(&json).unwrap_or_default());
    } else {
        print!("{}", report::render_text(&report));
    }
    if report.failing.is_empty() {
        Ok(())
    } else {
        Err(TuiError::RequiredDown(report.failing))
    }
}

/// `lab tui` (and `lab` alone): the live monitor. `overrides` re-resolve the endpoints after the
/// monitor ran `up` or `down`. Returns what to do after it closed.
pub async fn run_tui(config: &LabConfig, overrides: Overrides, args: &TuiArgs) -> Result<Option<AfterExit>, TuiError> {
    let path = stack_path(&args.stack, &config.state_dir).map_err(|e| e.to_string());
    let panel = match path.as_ref().map(|p| (p, Stack::load(p))) {
        Ok((p, Ok(stack))) => StackPanel::new(&stack, &p.display().to_string()),
        Ok((p, Err(e))) => StackPanel::unavailable(&p.display().to_string(), e.to_string()),
        Err(e) => StackPanel::unavailable("-", e.clone()),
    };
    let docker_stack = panel.name.clone();
    let with_stack = move |config: &LabConfig| {
        let mut t = ProbeTargets::from_config(config);
        if !docker_stack.is_empty() {
            t.docker_stack.clone_from(&docker_stack);
        }
        t
    };
    let targets = with_stack(config);
    let reload = Box::new(move || match LabConfig::resolve(overrides.clone()) {
        Ok(c) => Some((with_stack(&c), StageConfig::from_config(&c))),
        Err(e) => {
            tracing::warn!(error = %e, "cannot resolve the endpoints again");
            None
        }
    });
    super::run::run(super::run::Setup {
        targets,
        intervals: args.intervals(),
        log_dir: config.log_dir(),
        stack: StackContext {
            path,
            state_dir: config.state_dir.clone(),
        },
        panel,
        stages: StageConfig::from_config(config),
        reload,
        lessons: config.clone(),
    })
    .await
}
