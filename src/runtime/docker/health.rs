//! Waiting for a container to be healthy or to complete, with a deadline; on failure the error
//! carries the failing check's output and the last log lines.

use std::time::{Duration, Instant};

use bollard::container::LogOutput;
use bollard::models::{ContainerInspectResponse, ContainerStateStatusEnum, HealthStatusEnum};
use bollard::query_parameters::LogsOptionsBuilder;
use futures::StreamExt;

use super::{Engine, Error, FAILURE_LOG_LINES, api};
use crate::runtime::events::{Events, StackEvent};
use crate::stack::Service;

const POLL: Duration = Duration::from_millis(250);

impl Engine {
    pub(super) async fn wait_healthy(&self, id: &str, service: &Service, events: &Events) -> Result<(), Error> {
        let started = Instant::now();
        let deadline = started + service.start_timeout;
        events.send(StackEvent::WaitingHealth {
            service: service.name.clone(),
            deadline,
        });
        loop {
            let info = self.inspect(id).await?;
            let state = info.state.clone().unwrap_or_default();
            if !matches!(
                state.status,
                Some(ContainerStateStatusEnum::RUNNING | ContainerStateStatusEnum::CREATED)
            ) {
                return Err(self.exited(id, service, &info, events).await);
            }
            let health = state.health.unwrap_or_default();
            match health.status {
                Some(HealthStatusEnum::HEALTHY) => {
                    events.send(StackEvent::Healthy {
                        service: service.name.clone(),
                        after: started.elapsed(),
                    });
                    return Ok(());
                }
                Some(HealthStatusEnum::UNHEALTHY) => {
                    let check = service
                        .healthcheck
                        .as_ref()
                        .map(|h| h.test.join(" "))
                        .unwrap_or_default();
                    let last = health.log.unwrap_or_default().into_iter().last();
                    let output = match last {
                        Some(r) => format!(
                            "exit code {}, output: {:?}",
                            r.exit_code.unwrap_or_default(),
                            r.output.unwrap_or_default().trim()
                        ),
                        None => "no result recorded".into(),
                    };
                    let logs = self.last_logs(id).await;
                    events.send(StackEvent::Unhealthy {
                        service: service.name.clone(),
                        check: check.clone(),
                        last_logs: logs.clone(),
                    });
                    return Err(Error::Unhealthy {
                        service: service.name.clone(),
                        check,
                        output,
                        logs,
                    });
                }
                _ => {}
            }
            if Instant::now() >= deadline {
                return Err(Error::Timeout {
                    service: service.name.clone(),
                    wanted: "healthy",
                    timeout: service.start_timeout,
                    state: format!("health {:?}", health.status.unwrap_or(HealthStatusEnum::EMPTY)).to_lowercase(),
                    logs: self.last_logs(id).await,
                });
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits for a one-shot job to exit 0.
    pub(super) async fn wait_completed(&self, id: &str, service: &Service, events: &Events) -> Result<(), Error> {
        let deadline = Instant::now() + service.start_timeout;
        events.send(StackEvent::WaitingCompletion {
            service: service.name.clone(),
            deadline,
        });
        loop {
            let info = self.inspect(id).await?;
            let state = info.state.clone().unwrap_or_default();
            if matches!(
                state.status,
                Some(ContainerStateStatusEnum::EXITED | ContainerStateStatusEnum::DEAD)
            ) {
                if state.exit_code == Some(0) {
                    events.send(StackEvent::Completed {
                        service: service.name.clone(),
                    });
                    return Ok(());
                }
                return Err(self.exited(id, service, &info, events).await);
            }
            if Instant::now() >= deadline {
                return Err(Error::Timeout {
                    service: service.name.clone(),
                    wanted: "completed",
                    timeout: service.start_timeout,
                    state: format!("{:?}", state.status.unwrap_or(ContainerStateStatusEnum::EMPTY)).to_lowercase(),
                    logs: self.last_logs(id).await,
                });
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// A long-running service without a healthcheck must at least still be running.
    pub(super) async fn check_running(&self, id: &str, service: &Service, events: &Events) -> Result<(), Error> {
        let info = self.inspect(id).await?;
        let running = matches!(
            info.state.as_ref().and_then(|s| s.status),
            Some(ContainerStateStatusEnum::RUNNING)
        );
        if running {
            Ok(())
        } else {
            Err(self.exited(id, service, &info, events).await)
        }
    }

    async fn exited(&self, id: &str, service: &Service, info: &ContainerInspectResponse, events: &Events) -> Error {
        let state = info.state.clone().unwrap_or_default();
        let code = state.exit_code.unwrap_or(-1);
        events.send(StackEvent::Exited {
            service: service.name.clone(),
            code,
        });
        Error::Exited {
            service: service.name.clone(),
            code,
            oom: state.oom_killed.unwrap_or(false),
            logs: self.last_logs(id).await,
        }
    }

    pub(super) async fn inspect(&self, id: &str) -> Result<ContainerInspectResponse, Error> {
        self.docker
            .inspect_container(id, None)
            .await
            .map_err(api(format!("inspect container {id}")))
    }

    /// The last log lines (stdout and stderr), for error messages; empty if they cannot be read.
    pub(super) async fn last_logs(&self, id: &str) -> Vec<String> {
        let options = LogsOptionsBuilder::default()
            .stdout(true)
            .stderr(true)
            .tail(&FAILURE_LOG_LINES.to_string())
            .build();
        let mut stream = self.docker.logs(id, Some(options));
        let mut text = String::new();
        while let Some(item) = stream.next().await {
            match item {
                Ok(LogOutput::StdOut { message } | LogOutput::StdErr { message } | LogOutput::Console { message }) => {
                    text.push_str(&String::from_utf8_lossy(&message));
                }
                Ok(LogOutput::StdIn { .. }) => {}
                Err(e) => {
                    tracing::warn!(error = %e, container = id, "cannot read the container's logs");
                    break;
                }
            }
        }
        let lines: Vec<String> = text.lines().map(str::to_string).collect();
        let skip = lines.len().saturating_sub(FAILURE_LOG_LINES);
        lines.into_iter().skip(skip).collect()
    }
}
