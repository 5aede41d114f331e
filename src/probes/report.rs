//! `lab status`: one snapshot of every service, as a table or JSON, and which required services fail.

use super::alerts::{LagBreach, breaches};
use super::{Health, LabService, LabSnapshot, ProbeError, ProbeTargets, Probes, poll_all_once};
use crate::config::{LabConfig, LagAlerts};
use crate::pipeline::status_file::StageStatus;
use indicatif::HumanBytes;

#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    #[error(transparent)]
    Probe(#[from] ProbeError),
    #[error(
        "required service(s) down: {}\nstart them (`lab up`), or choose which must be up with --require; without \
         Docker, `lab demo` runs the whole lab in one process",
        names(.0)
    )]
    RequiredDown(Vec<LabService>),
    #[error("{}\nstart or scale the stage that reads the group, or raise the threshold in lab.toml [alerts]", .0.join("\n"))]
    LagAlerts(Vec<String>),
}

fn names(services: &[LabService]) -> String {
    services.iter().map(|s| s.name()).collect::<Vec<_>>().join(", ")
}

/// `lab status`: prints one snapshot of the configured services (and the stack's containers), as
/// a table or JSON; an error when a required service is down.
pub async fn run_status(config: &LabConfig, require: &[LabService], json: bool) -> Result<(), StatusError> {
    let mut targets = ProbeTargets::from_config(config);
    if let Ok(name) = crate::stack::current::stack_name(None, &config.state_dir) {
        targets.docker_stack = name;
    }
    let mut report = status(&targets, require).await?;
    report.stages = crate::pipeline::status_file::read_all(&config.state_dir);
    report.alerts = lag_alerts(&report, &config.alerts);
    if json {
        let json = serde_json::json!({
            "services": report.snapshot,
            "required": report.required,
            "failing": report.failing,
            "stages": report.stages,
            "alerts": report.alerts,
        });
        println!("{}", serde_json::to_string_pretty(&json).unwrap_or_default());
    } else {
        print!("{}", render_text(&report));
    }
    if !report.failing.is_empty() {
        return Err(StatusError::RequiredDown(report.failing));
    }
    if report.required.contains(&LabService::Kafka) && !report.alerts.is_empty() {
        return Err(StatusError::LagAlerts(
            report.alerts.iter().map(LagBreach::describe).collect(),
        ));
    }
    Ok(())
}

/// The groups of the snapshot over their `[alerts]` threshold.
fn lag_alerts(report: &StatusReport, alerts: &LagAlerts) -> Vec<LagBreach> {
    report
        .snapshot
        .kafka
        .as_ref()
        .and_then(|p| p.detail.as_ref())
        .map(|k| breaches(alerts, k))
        .unwrap_or_default()
}

/// The result of `lab status`: the snapshot and the required services that are down.
pub struct StatusReport {
    pub snapshot: LabSnapshot,
    pub required: Vec<LabService>,
    pub failing: Vec<LabService>,
    /// Stages running in `lab produce|transform|consume` processes of this state dir.
    pub stages: Vec<StageStatus>,
    /// Consumer groups over their `[alerts]` lag threshold.
    pub alerts: Vec<LagBreach>,
}

/// Polls everything once. `require` empty means every configured service is required.
pub async fn status(targets: &ProbeTargets, require: &[LabService]) -> Result<StatusReport, ProbeError> {
    let mut probes = Probes::new(targets)?;
    let snapshot = poll_all_once(&mut probes).await;
    let required = if require.is_empty() {
        targets.configured()
    } else {
        require.to_vec()
    };
    let failing = failing(&snapshot, &required);
    Ok(StatusReport {
        snapshot,
        required,
        failing,
        stages: Vec::new(),
        alerts: Vec::new(),
    })
}

/// Required services that are down (or not probed / not configured).
#[must_use]
pub fn failing(snapshot: &LabSnapshot, required: &[LabService]) -> Vec<LabService> {
    required
        .iter()
        .copied()
        .filter(|s| matches!(snapshot.health(*s), Health::Down | Health::Unknown))
        .collect()
}

#[must_use]
pub fn health_word(h: Health) -> &'static str {
    match h {
        Health::Up => "up",
        Health::Degraded => "degraded",
        Health::Down => "down",
        Health::Unknown => "unknown",
    }
}

/// A one-line summary of what a service is doing (what the Overview tiles show too).
#[must_use]
pub fn summary(snapshot: &LabSnapshot, service: LabService) -> String {
    match service {
        LabService::Kafka => snapshot.kafka.as_ref().and_then(|p| p.detail.as_ref()).map(|k| {
            let lag = k.total_lag();
            let mut line = format!(
                "{} broker(s), {} topic(s), {} group(s), lag {lag}, DLQ {}",
                k.brokers.len(),
                k.topics.len(),
                k.groups.len(),
                k.dlq_shown(|n| n.to_string()),
            );
            // Loud when a transform runs without transactions: duplicates are possible downstream.
            for g in &k.groups {
                if let Some(d) = &g.delivery {
                    let mode = if d == "at-least-once" {
                        "AT-LEAST-ONCE"
                    } else {
                        d.as_str()
                    };
                    line.push_str(&format!("; {} {mode}", g.name));
                }
            }
            line
        }),
        LabService::Hdfs => snapshot.hdfs.as_ref().and_then(|p| p.detail.as_ref()).map(|h| {
            format!(
                "{} of {} used, {} live / {} dead datanode(s), {} files",
                HumanBytes(h.capacity_used),
                HumanBytes(h.capacity_total),
                h.live_datanodes,
                h.dead_datanodes,
                h.files_total
            )
        }),
        LabService::Spark => snapshot.spark.as_ref().and_then(|p| p.detail.as_ref()).map(|s| {
            format!(
                "{} worker(s), cores {}/{}, {} running / {} completed app(s)",
                s.aliveworkers,
                s.coresused,
                s.cores,
                s.activeapps.len(),
                s.completedapps.len()
            )
        }),
        LabService::Airflow => snapshot.airflow.as_ref().and_then(|p| p.detail.as_ref()).map(|a| {
            let running = a.runs.iter().filter(|r| r.state == "running").count();
            let failed = a.runs.iter().filter(|r| r.state == "failed").count();
            format!(
                "{} DAG(s), {running} running, {failed} failed recent run(s), {} import error(s)",
                a.dags.len(),
                a.import_errors.len()
            )
        }),
        LabService::Postgres => snapshot.postgres.as_ref().and_then(|p| p.detail.as_ref()).map(|p| {
            let last = p.last_batch.as_ref().map_or_else(
                || "no batch yet (`lab batch` or the DAG loads one)".to_string(),
                |b| format!("last batch {}", b.status),
            );
            format!("{}, {} connection(s), {last}", p.version, p.connections)
        }),
        LabService::Docker => snapshot.docker.as_ref().and_then(|p| p.detail.as_ref()).map(|d| {
            format!(
                "stack {}: {}/{} container(s) up, engine {} (API {})",
                d.stack,
                d.running(),
                d.containers.len(),
                d.server_version,
                d.api_version
            )
        }),
    }
    .unwrap_or_default()
}

/// The table `lab status` prints.
#[must_use]
pub fn render_text(report: &StatusReport) -> String {
    let mut out = String::new();
    out.push_str(&format!("{:<11} {:<9} {:>8}  DETAIL\n", "SERVICE", "HEALTH", "LATENCY"));
    // Docker only when an engine answered: the services may run without containers.
    let docker = report.snapshot.docker.is_some().then_some(LabService::Docker);
    for service in LabService::ALL.into_iter().chain(docker) {
        let status = report.snapshot.status(service);
        let health = status.map_or(Health::Unknown, |s| s.health);
        let latency = status
            .and_then(|s| s.latency_ms)
            .map_or_else(|| "-".to_string(), |ms| format!("{ms} ms"));
        let mut detail = summary(&report.snapshot, service);
        if let Some(reason) = status.map(|s| s.reason.as_str()).filter(|r| !r.is_empty()) {
            if !detail.is_empty() {
                detail.push_str(" — ");
            }
            detail.push_str(reason);
        }
        let marker = if report.required.contains(&service) {
            ""
        } else {
            " (not required)"
        };
        out.push_str(&format!(
            "{:<11} {:<9} {:>8}  {detail}{marker}\n",
            service.name(),
            health_word(health),
            latency
        ));
    }
    if !report.stages.is_empty() {
        out.push_str(&format!(
            "\n{:<14} {:<8} {:<22} {:<9} {:<9} {:<9} LAG\n",
            "STAGE", "PID", "STATE", "IN", "OUT", "DLQ"
        ));
        for s in &report.stages {
            let stage = match s.worker {
                Some(n) => format!("{} w{n}", s.stage),
                None => s.stage.clone(),
            };
            let state = if s.waiting_for_broker {
                "waiting for the broker"
            } else {
                "running"
            };
            let lag = if s.lag < 0 { "-".to_string() } else { s.lag.to_string() };
            out.push_str(&format!(
                "{:<14} {:<8} {:<22} {:<9} {:<9} {:<9} {lag}   (prefix {})\n",
                stage, s.pid, state, s.input, s.output, s.dlq, s.topic_prefix
            ));
        }
    }
    if !report.alerts.is_empty() {
        out.push('\n');
        for alert in &report.alerts {
            out.push_str(&alert.describe());
            out.push('\n');
        }
    }
    if !report.failing.is_empty() {
        let names: Vec<&str> = report.failing.iter().map(|s| s.name()).collect();
        out.push_str(&format!(
            "\nrequired service(s) down: {} (start them with `lab up`, or choose with --require)\n",
            names.join(", ")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probes::{ProbeError, Probed};
    use std::time::Instant;

    #[test]
    fn only_required_services_that_are_down_fail() {
        let snap = LabSnapshot {
            spark: Some(Probed::from_result(
                Err(ProbeError::Status {
                    service: LabService::Spark,
                    url: "u".into(),
                    status: 500,
                }),
                Instant::now(),
            )),
            kafka: Some(Probed::from_result(
                Ok((Default::default(), vec!["x".into()])),
                Instant::now(),
            )),
            ..LabSnapshot::default()
        };
        assert_eq!(failing(&snap, &[LabService::Kafka]), Vec::<LabService>::new()); // degraded is not down
        assert_eq!(
            failing(&snap, &[LabService::Kafka, LabService::Spark]),
            vec![LabService::Spark]
        );
        // Never probed counts as failing: `lab status` must not pass on a service it did not see.
        assert_eq!(failing(&snap, &[LabService::Hdfs]), vec![LabService::Hdfs]);
    }

    #[test]
    fn a_dlq_the_census_has_not_counted_is_given_in_offsets() {
        use crate::probes::kafka::{KafkaSnapshot, Topic};
        let kafka = |not_records: Option<i64>| {
            let dlq = Topic {
                name: "yelp.dlq".into(),
                messages: 19,
                not_records,
                census_complete: not_records.is_some(),
                ..Topic::default()
            };
            LabSnapshot {
                kafka: Some(Probed::from_result(
                    Ok((
                        KafkaSnapshot {
                            dlq_topic: "yelp.dlq".into(),
                            dlq_messages: dlq.records(),
                            topics: vec![dlq],
                            ..KafkaSnapshot::default()
                        },
                        vec![],
                    )),
                    Instant::now(),
                )),
                ..LabSnapshot::default()
            }
        };
        assert!(summary(&kafka(None), LabService::Kafka).ends_with("DLQ 19 offsets"));
        assert!(summary(&kafka(Some(3)), LabService::Kafka).ends_with("DLQ 16"));
    }
}
