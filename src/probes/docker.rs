//! Docker probe: the lab's containers as the engine sees them (state, health, restarts, CPU and
//! memory from one stats sample each), found by the stack's label. Down when the engine does not
//! answer; the engine is not required (the services may run outside containers).

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::{LabService, ProbeError, Probed};
use crate::runtime::docker::{Engine, ServiceStatus};
use crate::runtime::first_line;

/// Connecting and listing are quick; the stats sample per container takes up to ~2 s.
const DOCKER_DEADLINE: Duration = Duration::from_secs(4);

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct DockerSnapshot {
    pub stack: String,
    pub server_version: String,
    pub api_version: String,
    /// The stack's containers by service name (running or not).
    pub containers: Vec<ServiceStatus>,
}

impl DockerSnapshot {
    /// Containers running (healthy, or without a healthcheck) of all present.
    #[must_use]
    pub fn running(&self) -> usize {
        self.containers
            .iter()
            .filter(|c| c.state == "running" && c.health.as_deref().is_none_or(|h| h == "healthy"))
            .count()
    }
}

pub struct DockerProbe {
    stack: String,
    engine: Option<(Engine, String)>,
}

impl DockerProbe {
    #[must_use]
    pub fn new(stack: &str) -> Self {
        Self {
            stack: stack.to_string(),
            engine: None,
        }
    }

    pub async fn poll(&mut self) -> Probed<DockerSnapshot> {
        let started = Instant::now();
        let result = tokio::time::timeout(DOCKER_DEADLINE, self.read())
            .await
            .unwrap_or_else(|_| {
                Err(ProbeError::Other {
                    service: LabService::Docker,
                    detail: format!("the engine did not answer within {} s", DOCKER_DEADLINE.as_secs()),
                })
            });
        if result.is_err() {
            self.engine = None; // reconnect next time (the engine may have restarted)
        }
        Probed::from_result(result, started)
    }

    async fn read(&mut self) -> Result<(DockerSnapshot, Vec<String>), ProbeError> {
        let other = |detail: String| ProbeError::Other {
            service: LabService::Docker,
            detail,
        };
        if self.engine.is_none() {
            let engine = Engine::connect().await.map_err(|e| other(first_line(&e.to_string())))?;
            let version = engine
                .info()
                .await
                .map(|i| i.server_version)
                .map_err(|e| other(e.to_string()))?;
            self.engine = Some((engine, version));
        }
        let Some((engine, version)) = &self.engine else {
            return Err(other("not connected".into()));
        };
        let containers = engine.ps(&self.stack).await.map_err(|e| other(e.to_string()))?;
        let problems = containers
            .iter()
            .filter_map(|c| match (c.state.as_str(), c.health.as_deref(), c.exit_code) {
                ("running", Some("unhealthy"), _) => Some(format!("{} is unhealthy", c.service)),
                ("exited", _, Some(code)) if code != 0 => Some(format!("{} exited with code {code}", c.service)),
                ("restarting", _, _) => Some(format!("{} keeps restarting", c.service)),
                _ => None,
            })
            .collect();
        Ok((
            DockerSnapshot {
                stack: self.stack.clone(),
                server_version: version.clone(),
                api_version: engine.api_version(),
                containers,
            },
            problems,
        ))
    }
}
