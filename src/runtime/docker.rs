//! The Docker engine, through bollard: the only module that talks to Docker.
//!
//! [`Engine::connect`] finds the engine as the docker CLI does ([`host`]: `DOCKER_HOST`, docker
//! contexts, the default socket) and negotiates the API version; `up` (in [`up`]) pulls, creates and starts a stack's selection in dependency order
//! and waits for health; [`manage`] has `down`, `ps`, `logs`, `stop`/`start`/`restart`. Progress
//! goes out as [`StackEvent`](super::events::StackEvent)s, never drawn here.

mod build;
mod health;
pub mod host;
mod manage;
mod pull;
mod spec;
mod up;

use std::collections::HashMap;

use bollard::Docker;
use bollard::models::ContainerSummary;
use bollard::query_parameters::ListContainersOptionsBuilder;

pub use host::EngineHost;
pub use manage::{ContainerLogLine, LogWindow, ServiceStatus};
pub use pull::PullPolicy;
pub use up::{ServiceOutcome, UpReport};

use crate::stack::{self, LABEL_SERVICE, LABEL_STACK};

/// Lines of a failing service's log shown with its error.
pub const FAILURE_LOG_LINES: usize = 30;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "cannot reach the Docker engine at {host}: {cause}\nstart Docker (e.g. `sudo systemctl start docker`, Docker Desktop, `colima start`) or point DOCKER_HOST or `docker context use` at a running engine{hint}"
    )]
    NoEngine {
        host: String,
        /// What else to try (sockets of other engines found on this machine), or empty.
        hint: String,
        // Not `#[source]`: the message already says it, and error chains would repeat it.
        cause: bollard::errors::Error,
    },
    #[error("Docker refused to {action}: {cause}")]
    Api {
        action: String,
        cause: bollard::errors::Error,
    },
    #[error(
        "image {image} (for {services}) is not on this machine and --pull never forbids pulling\nload it (`docker pull {image}` or `docker load`) or run with --pull missing"
    )]
    ImageMissing { image: String, services: String },
    #[error(
        "cannot pull image {image} (for {services}): {reason}\ncheck that this machine can reach the registry, or load the image locally and run with --pull never"
    )]
    PullFailed {
        image: String,
        services: String,
        reason: String,
    },
    #[error(
        "cannot read the build context of image {image} at {context}: {cause}\nthe stack file's build.context must name a directory (next to the stack file) that holds the Dockerfile"
    )]
    BuildContext {
        image: String,
        context: String,
        cause: String,
    },
    #[error("cannot tell which Docker engine to use: {reason}")]
    EngineHost { reason: String },
    #[error(
        "the Docker engine at {host} runs on another machine: the lab publishes its ports on that machine's 127.0.0.1 \
         only, so nothing here could reach them; run lab on that machine, or use a local engine (unset DOCKER_HOST, \
         `docker context use default`)"
    )]
    RemoteEngine { host: String },
    #[error(
        "nothing was started: {} bind-mount source(s) of the stack do not exist:\n{}\nthey are files of the stack (relative paths start at the stack file's directory): restore them from the repository, or bring up a stack built into lab (`lab up` outside a checkout writes its files under the state dir)",
        .missing.len(),
        indent(.missing)
    )]
    MissingBindSources { missing: Vec<String> },
    #[error(
        "cannot build image {image} (for {services}) from {context}: {reason}\nlast {} lines of the build:\n{}\nfix the Dockerfile, or check that this machine can reach the registry for its base images",
        line_count(.output),
        indent(.output)
    )]
    BuildFailed {
        image: String,
        services: String,
        context: String,
        reason: String,
        output: Vec<String>,
    },
    #[error("{name} {kind} already exists but does not belong to this lab (no lab.stack label); remove or rename it")]
    Foreign { kind: &'static str, name: String },
    #[error(
        "service {service} is unhealthy: check `{check}` failed: {output}\nlast {} log lines of {service}:\n{}\nsee `lab logs {service}`; fix the service and run `lab up` again",
        line_count(.logs),
        indent(.logs)
    )]
    Unhealthy {
        service: String,
        check: String,
        output: String,
        logs: Vec<String>,
    },
    #[error(
        "service {service} did not become {wanted} within {timeout:?} (state: {state})\nlast {} log lines of {service}:\n{}\nsee `lab logs {service}`; raise start_timeout in the stack file if it is only slow",
        line_count(.logs),
        indent(.logs)
    )]
    Timeout {
        service: String,
        wanted: &'static str,
        timeout: std::time::Duration,
        state: String,
        logs: Vec<String>,
    },
    #[error(
        "service {service} exited with code {code}{}\nlast {} log lines of {service}:\n{}\nsee `lab logs {service}`",
        oom_note(.oom),
        line_count(.logs),
        indent(.logs)
    )]
    Exited {
        service: String,
        code: i64,
        oom: bool,
        logs: Vec<String>,
    },
    #[error("no container for service {service} of stack {stack}; run `lab up` first (running services: {known})")]
    NoContainer {
        service: String,
        stack: String,
        known: String,
    },
    #[error(
        "cannot start {service}: {addr} is already in use by {holder}\nstop that process, or give {service} another host port in the stack file"
    )]
    PortTaken {
        service: String,
        addr: String,
        holder: crate::runtime::ports::PortHolder,
    },
    #[error("no stack file: {reason}")]
    NoStack { reason: String },
    #[error(transparent)]
    Stack(#[from] stack::Error),
}

fn line_count(lines: &[String]) -> usize {
    lines.len()
}

fn oom_note(oom: &bool) -> &'static str {
    if *oom {
        " (out of memory: raise its memory limit)"
    } else {
        ""
    }
}

fn indent(lines: &[String]) -> String {
    if lines.is_empty() {
        return "  (no output)".into();
    }
    lines.iter().map(|l| format!("  | {l}")).collect::<Vec<_>>().join("\n")
}

fn api(action: impl Into<String>) -> impl FnOnce(bollard::errors::Error) -> Error {
    let action = action.into();
    move |cause| Error::Api { action, cause }
}

/// 404 from the engine: the thing asked for does not exist.
fn is_not_found(e: &bollard::errors::Error) -> bool {
    matches!(
        e,
        bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }
    )
}

/// The engine's identity and resources.
#[derive(Debug, Clone, serde::Serialize)]
pub struct EngineInfo {
    pub server_version: String,
    /// The API version spoken (negotiated down to the engine's own).
    pub api_version: String,
    pub root_dir: Option<String>,
    pub memory_bytes: Option<u64>,
    pub cpus: Option<u32>,
    /// `uname -m` of where the engine runs (x86_64, aarch64).
    pub architecture: Option<String>,
}

/// The engine this process talks to, found as the docker CLI finds it ([`host::resolve`]:
/// DOCKER_HOST, DOCKER_CONTEXT, the CLI config's current context, the default socket).
pub fn engine_host() -> Result<EngineHost, String> {
    let home = std::env::var_os("HOME").map(std::path::PathBuf::from);
    host::resolve(&|key| std::env::var(key).ok(), home.as_deref())
}

/// Where the engine is looked for, for messages (the address, or why it cannot be found).
#[must_use]
pub fn docker_host() -> String {
    engine_host().map_or_else(|reason| reason, |h| h.to_string())
}

/// A connection to the engine (cheap to clone).
#[derive(Debug, Clone)]
pub struct Engine {
    docker: Docker,
    /// The engine's CPU architecture (`uname -m` of where it runs: Docker Desktop's VM on a Mac),
    /// which decides the images that run emulated; None if it did not say.
    arch: Option<String>,
}

impl Engine {
    /// Connects to the engine [`engine_host`] finds and negotiates the API version, so older
    /// engines (e.g. 20.10, API 1.41) are spoken to in their own version.
    pub async fn connect() -> Result<Self, Error> {
        let found = engine_host().map_err(|reason| Error::EngineHost { reason })?;
        let host = found.to_string();
        let no_engine = |cause| Error::NoEngine {
            host: host.clone(),
            hint: no_engine_hint(&found),
            cause,
        };
        let docker = if let Some(path) = found.socket_path() {
            Docker::connect_with_unix(path, 120, bollard::API_DEFAULT_VERSION).map_err(no_engine)?
        } else if found.url.starts_with("tcp://") || found.url.starts_with("http://") {
            Docker::connect_with_http(&found.url, 120, bollard::API_DEFAULT_VERSION).map_err(no_engine)?
        } else {
            return Err(Error::EngineHost {
                reason: format!(
                    "the engine at {host} is reached over a protocol lab does not speak (it speaks unix sockets and \
                     plain TCP); forward it to a local socket, e.g. `ssh -NL /tmp/docker.sock:/var/run/docker.sock HOST` \
                     and DOCKER_HOST=unix:///tmp/docker.sock"
                ),
            });
        };
        let docker = docker.negotiate_version().await.map_err(no_engine)?;
        docker.ping().await.map_err(no_engine)?;
        tracing::info!(%host, version = ?docker.client_version(), "connected to the Docker engine");
        let arch = docker.info().await.ok().and_then(|i| i.architecture);
        Ok(Self { docker, arch })
    }

    /// The API version spoken with the engine (negotiated down to the engine's own).
    #[must_use]
    pub fn api_version(&self) -> String {
        self.docker.client_version().to_string()
    }

    /// What the engine says about itself (for `lab doctor`).
    pub async fn info(&self) -> Result<EngineInfo, Error> {
        let version = self.docker.version().await.map_err(api("report its version"))?;
        let info = self.docker.info().await.map_err(api("report its system info"))?;
        Ok(EngineInfo {
            server_version: version.version.unwrap_or_else(|| "unknown".into()),
            api_version: self.api_version(),
            root_dir: info.docker_root_dir,
            memory_bytes: info.mem_total.and_then(|m| u64::try_from(m).ok()),
            cpus: info.ncpu.and_then(|n| u32::try_from(n).ok()),
            architecture: info.architecture,
        })
    }

    /// Every container of the stack (running or not), by service name.
    async fn stack_containers(&self, stack: &str) -> Result<HashMap<String, ContainerSummary>, Error> {
        let label = format!("{LABEL_STACK}={stack}");
        let filters = HashMap::from([("label", vec![label.as_str()])]);
        let options = ListContainersOptionsBuilder::default()
            .all(true)
            .filters(&filters)
            .build();
        let list = self
            .docker
            .list_containers(Some(options))
            .await
            .map_err(api(format!("list the containers of stack {stack}")))?;
        Ok(list
            .into_iter()
            .filter_map(|c| {
                let service = c.labels.as_ref()?.get(LABEL_SERVICE)?.clone();
                Some((service, c))
            })
            .collect())
    }

    /// The container of one service, or a message naming the services that do exist.
    async fn service_container(&self, stack: &str, service: &str) -> Result<ContainerSummary, Error> {
        let mut all = self.stack_containers(stack).await?;
        match all.remove(service) {
            Some(c) => Ok(c),
            None => {
                let mut known: Vec<String> = all.into_keys().collect();
                known.sort();
                Err(Error::NoContainer {
                    service: service.to_string(),
                    stack: stack.to_string(),
                    known: if known.is_empty() {
                        "none".into()
                    } else {
                        known.join(", ")
                    },
                })
            }
        }
    }
}

/// For the error when the engine does not answer: on the default socket, the sockets of other
/// engines that exist here (Docker Desktop's, colima's, OrbStack's), as DOCKER_HOST values.
fn no_engine_hint(found: &EngineHost) -> String {
    if found.url != host::DEFAULT_SOCKET {
        return String::new();
    }
    let home = std::env::var_os("HOME").map(std::path::PathBuf::from);
    let sockets = host::sockets_found(home.as_deref());
    if sockets.is_empty() {
        return String::new();
    }
    format!(
        "\nengine sockets found here: {}; e.g. `export DOCKER_HOST={}`",
        sockets.join(", "),
        sockets[0]
    )
}
