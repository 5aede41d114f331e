//! The typed model of a `stacks/*.toml` file, as written by people: serde structs with the
//! small value types (ports, volumes, durations, memory sizes) parsed into checked forms.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::Error;

/// A whole stack file.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StackFile {
    /// Names the lab's containers, network and volumes (`lab-<name>-<service>`), and the `lab.stack` label.
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    /// Disk the stack needs on the Docker host (images plus data), e.g. `8g`; `lab doctor` checks
    /// the free space against it. Default: 1 GiB per service.
    #[serde(default)]
    pub disk: Option<String>,
    /// Ordered by name, so the file's order never changes a hash or an export.
    pub services: BTreeMap<String, ServiceSpec>,
    /// Where the host reaches the services; written to `<state>/endpoints.toml` after `lab up`.
    #[serde(default)]
    pub endpoints: Endpoints,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ServiceSpec {
    /// The image to run. With `build`, the tag `lab up` builds and runs (still pinned: no `latest`).
    pub image: String,
    /// Build `image` locally from a Dockerfile instead of pulling it (see [`BuildSpec`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build: Option<BuildSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    /// Values may contain `${secret:NAME}`; `$$` is a literal `$`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// `127.0.0.1:HOST:CONTAINER[/tcp|/udp]`: the host side is always loopback.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<String>,
    /// `name:/path[:ro]` for a lab volume, `./dir:/path[:ro]` for a bind mount relative to the stack file.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<HealthcheckSpec>,
    /// Service name → condition (`started`, `healthy`, `completed`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub depends_on: BTreeMap<String, Condition>,
    /// `512m`, `2g`, …: the container's memory limit, and what `lab up` adds up before pulling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<String>,
    /// Only started when one of these profiles is selected (or the service is asked for by name).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub profiles: Vec<String>,
    /// The platforms the image is published for (`linux/amd64`, `linux/arm64`, …), as its
    /// publisher builds it. On an engine of another architecture the first one is pulled and run
    /// under emulation, and `lab doctor` says so. Empty: unknown, the engine picks.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub platforms: Vec<String>,
    /// A job that runs to completion (e.g. a database migration) rather than a long-running service.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub one_shot: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// Join another service's network namespace (Docker `--network container:`): both see each
    /// other on 127.0.0.1, and this service's ports are published by the other one. Must also be
    /// in `depends_on`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub share_network_with: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    /// How long `lab up` waits for this service to become healthy (or to complete). Default 180s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_timeout: Option<String>,
    /// The service may run as several replicas (`lab up --scale NAME=N`, see `stack::scale`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale: Option<ScaleSpec>,
}

/// `scale = { max = 3, port_step = 100 }`: how many replicas `--scale` may ask for, and how far
/// apart their ports are (`${port:BASE}` and published host ports of replica N move by
/// `port_step × (N − 1)`).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ScaleSpec {
    pub max: u32,
    #[serde(default = "default_port_step")]
    pub port_step: u16,
}

fn default_port_step() -> u16 {
    100
}

/// `build = { context = "./images/x", dockerfile = "Dockerfile" }`: `lab up` builds the service's
/// image from this directory (relative to the stack file) through the Docker API when the image is
/// missing or the directory's content changed since the last build, and rebuilds it (pulling fresh
/// base images) with `--pull always`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BuildSpec {
    pub context: String,
    /// The Dockerfile's path inside `context`. Default `Dockerfile`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dockerfile: Option<String>,
    /// A directory name: the context also gets the lab's own source (the one this binary was
    /// built from, see `stack::bundle`) under it, for a builder stage that compiles `lab` for the
    /// image's platform. A change to the source rebuilds the image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lab_source: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HealthcheckSpec {
    /// `["CMD", prog, args..]` or `["CMD-SHELL", "shell command"]`.
    pub test: Vec<String>,
    #[serde(default = "default_interval")]
    pub interval: String,
    #[serde(default = "default_timeout")]
    pub timeout: String,
    #[serde(default = "default_retries")]
    pub retries: u32,
    #[serde(default = "default_start_period")]
    pub start_period: String,
}

fn default_interval() -> String {
    "2s".into()
}
fn default_timeout() -> String {
    "5s".into()
}
fn default_retries() -> u32 {
    30
}
fn default_start_period() -> String {
    "0s".into()
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(rename_all = "snake_case")]
pub enum Condition {
    /// The dependency's container was started.
    Started,
    /// The dependency's healthcheck passes.
    Healthy,
    /// The dependency (a one-shot job) exited with code 0.
    Completed,
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Condition::Started => "started",
            Condition::Healthy => "healthy",
            Condition::Completed => "completed",
        })
    }
}

/// Which published ports (container side) the host's clients use; every field optional.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Endpoints {
    pub kafka: Option<KafkaEndpoint>,
    pub postgres: Option<PostgresEndpoint>,
    pub hdfs: Option<HdfsEndpoint>,
    pub spark: Option<SparkEndpoint>,
    pub airflow: Option<AirflowEndpoint>,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct KafkaEndpoint {
    pub service: String,
    pub port: u16,
    /// The cluster's other brokers, publishing the same container port: clients get all of them
    /// as bootstrap servers, so they start while any one broker is down.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub others: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PostgresEndpoint {
    pub service: String,
    pub port: u16,
    pub user: String,
    pub password_secret: String,
    pub database: String,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HdfsEndpoint {
    pub service: String,
    pub rpc_port: u16,
    pub http_port: u16,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SparkEndpoint {
    pub service: String,
    pub port: u16,
    pub ui_port: u16,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AirflowEndpoint {
    pub service: String,
    pub port: u16,
    pub username: String,
    pub password_secret: String,
}

/// A published port: always `127.0.0.1:host -> container/protocol`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PortMapping {
    pub host_ip: String,
    pub host_port: u16,
    pub container_port: u16,
    pub protocol: String,
}

impl PortMapping {
    pub const LOOPBACK: &str = "127.0.0.1";

    pub fn parse(service: &str, text: &str) -> Result<Self, Error> {
        let bad = |reason: &str| Error::BadPort {
            service: service.to_string(),
            port: text.to_string(),
            reason: reason.to_string(),
        };
        let (spec, protocol) = match text.rsplit_once('/') {
            Some((spec, proto @ ("tcp" | "udp"))) => (spec, proto),
            Some(_) => return Err(bad("the protocol must be tcp or udp")),
            None => (text, "tcp"),
        };
        let parts: Vec<&str> = spec.split(':').collect();
        let [ip, host, container] = parts.as_slice() else {
            return Err(bad("write it as 127.0.0.1:HOST_PORT:CONTAINER_PORT"));
        };
        if *ip != Self::LOOPBACK {
            return Err(Error::NonLoopbackPort {
                service: service.to_string(),
                port: text.to_string(),
            });
        }
        let number = |s: &str| s.parse::<u16>().ok().filter(|p| *p != 0);
        let host_port = number(host).ok_or_else(|| bad("the host port must be a number from 1 to 65535"))?;
        let container_port =
            number(container).ok_or_else(|| bad("the container port must be a number from 1 to 65535"))?;
        Ok(Self {
            host_ip: Self::LOOPBACK.to_string(),
            host_port,
            container_port,
            protocol: protocol.to_string(),
        })
    }

    /// Docker's key for the container side, e.g. `9092/tcp`.
    #[must_use]
    pub fn container_key(&self) -> String {
        format!("{}/{}", self.container_port, self.protocol)
    }
}

impl fmt::Display for PortMapping {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}->{}", self.host_ip, self.host_port, self.container_key())
    }
}

/// A mount: a lab-managed named volume or a bind mount of a host directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Mount {
    Volume {
        name: String,
        target: String,
        read_only: bool,
    },
    Bind {
        source: String,
        target: String,
        read_only: bool,
    },
}

impl Mount {
    pub fn parse(service: &str, text: &str) -> Result<Self, Error> {
        let bad = |reason: &str| Error::BadVolume {
            service: service.to_string(),
            volume: text.to_string(),
            reason: reason.to_string(),
        };
        let parts: Vec<&str> = text.split(':').collect();
        let (source, target, read_only) = match parts.as_slice() {
            [s, t] => (*s, *t, false),
            [s, t, "ro"] => (*s, *t, true),
            [s, t, "rw"] => (*s, *t, false),
            [_, _, _] => return Err(bad("the mode must be ro or rw")),
            _ => return Err(bad("write it as SOURCE:/container/path[:ro]")),
        };
        if !target.starts_with('/') {
            return Err(bad("the container path must be absolute"));
        }
        if source.starts_with("./") || source.starts_with("../") || source.starts_with('/') {
            return Ok(Mount::Bind {
                source: source.to_string(),
                target: target.to_string(),
                read_only,
            });
        }
        if !is_simple_name(source) {
            return Err(bad(
                "a volume name uses lowercase letters, digits, '_' or '-'; a host directory starts with ./, ../ or /",
            ));
        }
        Ok(Mount::Volume {
            name: source.to_string(),
            target: target.to_string(),
            read_only,
        })
    }
}

/// Lowercase letters, digits, `_` and `-`, starting with a letter or digit: safe in container,
/// volume and DNS names.
#[must_use]
pub fn is_simple_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

/// `500ms`, `2s`, `3m`, `1h`.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (digits, unit) = text.split_at(split);
    let n: u64 = digits.parse().ok()?;
    match unit {
        "ms" => Some(Duration::from_millis(n)),
        "s" => Some(Duration::from_secs(n)),
        "m" => Some(Duration::from_secs(n.checked_mul(60)?)),
        "h" => Some(Duration::from_secs(n.checked_mul(3600)?)),
        _ => None,
    }
}

/// `512m`, `2g`, `1024k`, in bytes.
pub fn parse_memory(text: &str) -> Option<u64> {
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (digits, unit) = text.split_at(split);
    let n: u64 = digits.parse().ok().filter(|n| *n > 0)?;
    let factor: u64 = match unit.to_ascii_lowercase().as_str() {
        "k" => 1 << 10,
        "m" => 1 << 20,
        "g" => 1 << 30,
        _ => return None,
    };
    n.checked_mul(factor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_parse_loopback_only() {
        let p = PortMapping::parse("kafka", "127.0.0.1:9092:19092").unwrap();
        assert_eq!(
            (p.host_port, p.container_port, p.protocol.as_str()),
            (9092, 19092, "tcp")
        );
        assert_eq!(p.container_key(), "19092/tcp");
        assert!(matches!(
            PortMapping::parse("kafka", "0.0.0.0:9092:9092"),
            Err(Error::NonLoopbackPort { .. })
        ));
        assert!(matches!(
            PortMapping::parse("kafka", "9092:9092"),
            Err(Error::BadPort { .. })
        ));
        assert!(matches!(
            PortMapping::parse("kafka", "127.0.0.1:0:9092"),
            Err(Error::BadPort { .. })
        ));
        assert!(matches!(
            PortMapping::parse("kafka", "127.0.0.1:1:2/sctp"),
            Err(Error::BadPort { .. })
        ));
    }

    #[test]
    fn mounts_distinguish_volumes_and_binds() {
        assert_eq!(
            Mount::parse("s", "pgdata:/var/lib/postgresql/data").unwrap(),
            Mount::Volume {
                name: "pgdata".into(),
                target: "/var/lib/postgresql/data".into(),
                read_only: false
            }
        );
        assert!(matches!(
            Mount::parse("s", "../dags:/opt/airflow/dags:ro").unwrap(),
            Mount::Bind { read_only: true, .. }
        ));
        assert!(Mount::parse("s", "data:relative").is_err());
        assert!(Mount::parse("s", "Data:/x").is_err());
        assert!(Mount::parse("s", "data:/x:rx").is_err());
    }

    #[test]
    fn durations_and_sizes() {
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("3m"), Some(Duration::from_secs(180)));
        assert_eq!(parse_duration("3"), None);
        assert_eq!(parse_duration("s"), None);
        assert_eq!(parse_memory("512m"), Some(512 << 20));
        assert_eq!(parse_memory("2G"), Some(2 << 30));
        assert_eq!(parse_memory("0m"), None);
        assert_eq!(parse_memory("12"), None);
    }
}
