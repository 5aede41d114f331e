//! `down`, `ps`, `logs`, `stop`/`start`/`restart`: always found by the lab's labels, never by name,
//! so nothing else on the machine is touched.

use std::collections::HashMap;
use std::time::Duration;

use bollard::container::LogOutput;
use bollard::models::{ContainerStatsResponse, ContainerSummary};
use bollard::query_parameters::{
    ListNetworksOptionsBuilder, ListVolumesOptionsBuilder, LogsOptionsBuilder, RemoveVolumeOptions,
    RestartContainerOptionsBuilder, StatsOptionsBuilder, StopContainerOptionsBuilder,
};
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};

use super::{Engine, Error, api, is_not_found};
use crate::runtime::events::{Events, ResourceKind, StackEvent};
use crate::stack::LABEL_STACK;

/// Seconds a service gets to stop before it is killed.
const STOP_GRACE_SECS: i32 = 10;

/// One row of `lab ps`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServiceStatus {
    pub service: String,
    pub container: String,
    pub state: String,
    pub health: Option<String>,
    pub ports: Vec<String>,
    pub uptime: Option<Duration>,
    pub restarts: i64,
    pub cpu_percent: Option<f64>,
    pub memory_bytes: Option<u64>,
    pub exit_code: Option<i64>,
}

/// Which part of a container's log to read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LogWindow {
    /// Keep reading new lines until the container stops.
    pub follow: bool,
    /// Only the last N lines (of those since `since`).
    pub tail: Option<usize>,
    /// Only lines written at or after this time.
    pub since: Option<chrono::DateTime<chrono::Utc>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContainerLogLine {
    Stdout(String),
    Stderr(String),
}

impl Engine {
    /// Removes the stack's containers and network (and volumes with `volumes`), by label only.
    pub async fn down(&self, stack: &str, volumes: bool, events: &Events) -> Result<usize, Error> {
        let mut removed = 0;
        let mut containers: Vec<(String, ContainerSummary)> = self.stack_containers(stack).await?.into_iter().collect();
        containers.sort_by(|a, b| a.0.cmp(&b.0));
        for (service, c) in containers {
            let id = c.id.unwrap_or_default();
            self.remove_container(&id, &service).await?;
            events.send(StackEvent::Removed {
                kind: ResourceKind::Container,
                name: service,
            });
            removed += 1;
        }
        let label = format!("{LABEL_STACK}={stack}");
        let filters = HashMap::from([("label", vec![label.as_str()])]);
        let networks = self
            .docker
            .list_networks(Some(ListNetworksOptionsBuilder::default().filters(&filters).build()))
            .await
            .map_err(api("list the lab's networks"))?;
        for network in networks {
            let name = network.name.unwrap_or_default();
            match self.docker.remove_network(network.id.as_deref().unwrap_or(&name)).await {
                Ok(()) => {}
                Err(e) if is_not_found(&e) => {}
                Err(e) => return Err(api(format!("remove network {name}"))(e)),
            }
            events.send(StackEvent::Removed {
                kind: ResourceKind::Network,
                name,
            });
            removed += 1;
        }
        if volumes {
            let list = self
                .docker
                .list_volumes(Some(ListVolumesOptionsBuilder::default().filters(&filters).build()))
                .await
                .map_err(api("list the lab's volumes"))?;
            for volume in list.volumes.unwrap_or_default() {
                match self
                    .docker
                    .remove_volume(&volume.name, None::<RemoveVolumeOptions>)
                    .await
                {
                    Ok(()) => {}
                    Err(e) if is_not_found(&e) => {}
                    Err(e) => return Err(api(format!("remove volume {}", volume.name))(e)),
                }
                events.send(StackEvent::Removed {
                    kind: ResourceKind::Volume,
                    name: volume.name,
                });
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Every service of the stack with state, health, ports, uptime, restarts, CPU and memory.
    pub async fn ps(&self, stack: &str) -> Result<Vec<ServiceStatus>, Error> {
        self.statuses(stack, true).await
    }

    /// [`Engine::ps`] without CPU and memory: no stats sample (each takes the engine a second or
    /// two), for callers that only need states and ports.
    pub async fn states(&self, stack: &str) -> Result<Vec<ServiceStatus>, Error> {
        self.statuses(stack, false).await
    }

    async fn statuses(&self, stack: &str, with_usage: bool) -> Result<Vec<ServiceStatus>, Error> {
        let containers = self.stack_containers(stack).await?;
        let rows = futures::future::join_all(
            containers
                .into_iter()
                .map(|(service, c)| self.status_of(service, c, with_usage)),
        )
        .await;
        let mut rows = rows.into_iter().collect::<Result<Vec<_>, _>>()?;
        rows.sort_by(|a, b| a.service.cmp(&b.service));
        Ok(rows)
    }

    async fn status_of(&self, service: String, c: ContainerSummary, with_usage: bool) -> Result<ServiceStatus, Error> {
        let id = c.id.clone().unwrap_or_default();
        let info = self.inspect(&id).await?;
        let state = info.state.clone().unwrap_or_default();
        let running = state.running.unwrap_or(false);
        let uptime = running.then(|| state.started_at.as_deref().and_then(since)).flatten();
        let mut ports: Vec<String> = c
            .ports
            .unwrap_or_default()
            .into_iter()
            .filter_map(|p| {
                Some(format!(
                    "{}:{}->{}",
                    p.ip.unwrap_or_default(),
                    p.public_port?,
                    p.private_port
                ))
            })
            .collect();
        ports.sort();
        ports.dedup();
        let (cpu_percent, memory_bytes) = if running && with_usage {
            self.usage(&id).await
        } else {
            (None, None)
        };
        Ok(ServiceStatus {
            service,
            container: info.name.unwrap_or_default().trim_start_matches('/').to_string(),
            state: state.status.map_or_else(|| "unknown".into(), |s| s.to_string()),
            health: state
                .health
                .and_then(|h| h.status)
                .map(|s| s.to_string())
                .filter(|s| !s.is_empty() && s != "none"),
            ports,
            uptime,
            restarts: info.restart_count.unwrap_or(0),
            cpu_percent,
            memory_bytes,
            exit_code: (!running).then_some(state.exit_code).flatten(),
        })
    }

    /// CPU (percent of one core, summed over cores) and memory from one stats sample.
    async fn usage(&self, id: &str) -> (Option<f64>, Option<u64>) {
        let options = StatsOptionsBuilder::default().stream(false).build();
        match self.docker.stats(id, Some(options)).try_next().await {
            Ok(Some(stats)) => (cpu_percent(&stats), memory_used(&stats)),
            Ok(None) => (None, None),
            Err(e) => {
                tracing::warn!(error = %e, container = id, "cannot read container stats");
                (None, None)
            }
        }
    }

    /// The service's log as a stream of lines; with `follow` it ends only when the container stops.
    pub async fn logs(
        &self,
        stack: &str,
        service: &str,
        window: LogWindow,
    ) -> Result<BoxStream<'static, Result<ContainerLogLine, Error>>, Error> {
        let container = self.service_container(stack, service).await?;
        let id = container.id.unwrap_or_default();
        let tail = window.tail.map_or_else(|| "all".to_string(), |n| n.to_string());
        let mut options = LogsOptionsBuilder::default()
            .stdout(true)
            .stderr(true)
            .follow(window.follow)
            .tail(&tail);
        if let Some(since) = window.since {
            // The Engine API takes whole seconds since the epoch (an i32 in bollard); a time
            // before 1970 or after 2038 cannot be asked for, so it is clamped.
            let secs = since.timestamp().clamp(0, i64::from(i32::MAX));
            options = options.since(i32::try_from(secs).unwrap_or(i32::MAX));
        }
        let options = options.build();
        let service = service.to_string();
        let stream = self.docker.logs(&id, Some(options)).filter_map(move |item| {
            let service = service.clone();
            async move {
                match item {
                    Ok(LogOutput::StdOut { message } | LogOutput::Console { message }) => Some(Ok(
                        ContainerLogLine::Stdout(String::from_utf8_lossy(&message).into_owned()),
                    )),
                    Ok(LogOutput::StdErr { message }) => Some(Ok(ContainerLogLine::Stderr(
                        String::from_utf8_lossy(&message).into_owned(),
                    ))),
                    Ok(LogOutput::StdIn { .. }) => None,
                    Err(e) => Some(Err(api(format!("read the logs of {service}"))(e))),
                }
            }
        });
        Ok(stream.boxed())
    }

    pub async fn stop_service(&self, stack: &str, service: &str, events: &Events) -> Result<(), Error> {
        let id = self.service_container(stack, service).await?.id.unwrap_or_default();
        let options = StopContainerOptionsBuilder::default().t(STOP_GRACE_SECS).build();
        match self.docker.stop_container(&id, Some(options)).await {
            // 304: already stopped.
            Ok(()) | Err(bollard::errors::Error::DockerResponseServerError { status_code: 304, .. }) => {}
            Err(e) => return Err(api(format!("stop {service}"))(e)),
        }
        events.send(StackEvent::Stopped {
            service: service.to_string(),
        });
        Ok(())
    }

    pub async fn start_service(&self, stack: &str, service: &str, events: &Events) -> Result<(), Error> {
        let id = self.service_container(stack, service).await?.id.unwrap_or_default();
        match self.docker.start_container(&id, None).await {
            Ok(()) | Err(bollard::errors::Error::DockerResponseServerError { status_code: 304, .. }) => {}
            Err(e) => return Err(api(format!("start {service}"))(e)),
        }
        events.send(StackEvent::Started {
            service: service.to_string(),
        });
        Ok(())
    }

    pub async fn restart_service(&self, stack: &str, service: &str, events: &Events) -> Result<(), Error> {
        let id = self.service_container(stack, service).await?.id.unwrap_or_default();
        let options = RestartContainerOptionsBuilder::default().t(STOP_GRACE_SECS).build();
        self.docker
            .restart_container(&id, Some(options))
            .await
            .map_err(api(format!("restart {service}")))?;
        events.send(StackEvent::Started {
            service: service.to_string(),
        });
        Ok(())
    }
}

fn since(started_at: &str) -> Option<Duration> {
    let started = chrono::DateTime::parse_from_rfc3339(started_at).ok()?;
    (chrono::Utc::now() - started.with_timezone(&chrono::Utc)).to_std().ok()
}

fn cpu_percent(s: &ContainerStatsResponse) -> Option<f64> {
    let now = s.cpu_stats.as_ref()?;
    let before = s.precpu_stats.as_ref()?;
    let used = now.cpu_usage.as_ref()?.total_usage? as f64 - before.cpu_usage.as_ref()?.total_usage? as f64;
    let system = now.system_cpu_usage? as f64 - before.system_cpu_usage? as f64;
    let cpus = f64::from(now.online_cpus.unwrap_or(1).max(1));
    (system > 0.0 && used >= 0.0).then(|| used / system * cpus * 100.0)
}

/// Usage minus page cache, as `docker stats` shows it (cgroup v1 `total_inactive_file`, v2 `inactive_file`).
fn memory_used(s: &ContainerStatsResponse) -> Option<u64> {
    let m = s.memory_stats.as_ref()?;
    let usage = m.usage?;
    let cache = m
        .stats
        .as_ref()
        .and_then(|st| {
            st.get("total_inactive_file")
                .or_else(|| st.get("inactive_file"))
                .copied()
        })
        .unwrap_or(0);
    Some(usage.saturating_sub(cache))
}
