//! The `lab status` and `lab tui` commands: flags and entry points (main.rs only dispatches here).

use std::time::Duration;

use crate::config::LabConfig;
use crate::probes::report::{self, StatusReport};
use crate::probes::scheduler::Intervals;
use crate::probes::{ProbeTargets, Service};

use super::TuiError;

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
    /// Seconds between polls of HDFS, Spark, Airflow and PostgreSQL.
    #[arg(long, value_name = "SECONDS")]
    pub interval: Option<f64>,
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
        }
        i
    }
}

/// `lab status`: prints one snapshot; an error when a required service is down.
pub async fn run_status(config: &LabConfig, args: &StatusArgs) -> Result<(), TuiError> {
    let targets = ProbeTargets::from_config(config);
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

/// `lab tui` (and `lab` alone): the live monitor.
pub async fn run_tui(config: &LabConfig, args: &TuiArgs) -> Result<(), TuiError> {
    let targets = ProbeTargets::from_config(config);
    super::run::run(targets, args.intervals(), config.log_dir()).await
}
