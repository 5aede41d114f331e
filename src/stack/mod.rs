//! Stacks: the services of a lab as a typed, validated model (pure data, no Docker).
//!
//! `stacks/*.toml` → [`StackFile`] (serde) → [`Stack`] (checked: images, ports, volumes, secrets,
//! dependencies) → a [`Selection`] of services in dependency order, each with its spec hash.
//! The runtime (`runtime::docker`) turns a selection into containers; [`compose`] exports it.

pub mod compose;
pub mod current;
pub mod endpoints;
mod env;
mod image;
pub mod model;
mod order;
pub mod scale;
pub mod secrets;
mod select;
mod service;

use std::path::{Path, PathBuf};

use crate::bundle;

pub use env::{EnvPart, EnvValue};
pub use image::ImageRef;
pub use model::{Condition, Mount, PortMapping, StackFile};
pub use scale::{Replica, Scale};
pub use select::{Selection, SelectionRequest};
pub use service::{Build, Healthcheck, Service, Stack, platform_of_arch};

/// Labels every resource of a lab carries; `lab down` removes by these and nothing else.
pub const LABEL_STACK: &str = "lab.stack";
pub const LABEL_SERVICE: &str = "lab.service";
pub const LABEL_SPEC_HASH: &str = "lab.spec-hash";
/// On replica N ≥ 2 of a scaled service: the service it is a copy of (so `lab up --scale NAME=1`
/// finds the replicas to remove).
pub const LABEL_REPLICA_OF: &str = "lab.replica-of";
/// On an image `lab up` built: the digest of the build context it was built from.
pub const LABEL_BUILD_HASH: &str = "lab.build-hash";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read stack file {path}: {cause}")]
    Read { path: PathBuf, cause: std::io::Error },
    #[error("{path} is not a valid stack file: {cause}")]
    Parse { path: PathBuf, cause: Box<toml::de::Error> },
    #[error("no stack named {name:?}: looked for {tried}; pass --stack with a stack name from stacks/ or a path")]
    NotFound { name: String, tried: String },
    #[error("stack name {0:?} is invalid: use lowercase letters, digits, '_' or '-'")]
    BadStackName(String),
    #[error("service name {0:?} is invalid: use lowercase letters, digits, '_' or '-'")]
    BadServiceName(String),
    #[error("disk {0:?} is invalid: write a size such as 8g or 500m")]
    BadDisk(String),
    #[error("stack has no services: add at least one [services.NAME] table")]
    NoServices,
    #[error("service {service}: image {image:?} is not a valid image reference: {reason}")]
    BadImage {
        service: String,
        image: String,
        reason: String,
    },
    #[error("service {service}: port {port:?} is invalid: {reason}")]
    BadPort {
        service: String,
        port: String,
        reason: String,
    },
    #[error(
        "service {service}: port {port:?} would listen beyond this machine; publish on 127.0.0.1 only (127.0.0.1:HOST:CONTAINER)"
    )]
    NonLoopbackPort { service: String, port: String },
    #[error(
        "image {image} is built by services {first} and {second} in different ways; give one of them another image tag"
    )]
    ConflictingBuilds {
        image: String,
        first: String,
        second: String,
    },
    #[error("host port {port} is published twice (by {first} and {second}); give one of them another host port")]
    PortClash { port: u16, first: String, second: String },
    #[error("service {service}: volume {volume:?} is invalid: {reason}")]
    BadVolume {
        service: String,
        volume: String,
        reason: String,
    },
    #[error("service {service}: env {key}: {reason}")]
    BadEnv {
        service: String,
        key: String,
        reason: String,
    },
    #[error("service {service}: {field} {value:?} is invalid: {reason}")]
    BadField {
        service: String,
        field: &'static str,
        value: String,
        reason: String,
    },
    #[error("service {service} depends on {dependency}, which is not a service of this stack")]
    UnknownDependency { service: String, dependency: String },
    #[error("service {service} waits for {dependency} to be {condition}, but {reason}")]
    BadCondition {
        service: String,
        dependency: String,
        condition: Condition,
        reason: String,
    },
    #[error("dependency cycle: {0}; remove one of these depends_on entries")]
    Cycle(String),
    #[error("endpoint {endpoint}: {reason}")]
    BadEndpoint { endpoint: &'static str, reason: String },
    #[error("no service named {name:?} in stack {stack} (services: {known})")]
    UnknownService { name: String, stack: String, known: String },
    #[error("no service of stack {stack} uses profile {profile:?} (profiles: {known})")]
    UnknownProfile {
        profile: String,
        stack: String,
        known: String,
    },
    #[error("secret {name}: {reason}")]
    Secret { name: String, reason: String },
    #[error(transparent)]
    Bundle(#[from] bundle::Error),
    #[error("cannot {action} {path}: {cause}")]
    Io {
        action: &'static str,
        path: PathBuf,
        cause: std::io::Error,
    },
}

/// Finds a stack by path, or by name: `stacks/<name>.toml` under the working dir, else the one
/// the binary carries (written out under `<state>/bundle/`, see [`bundle`]).
pub fn locate(name_or_path: &str, state_dir: &Path) -> Result<PathBuf, Error> {
    let as_path = Path::new(name_or_path);
    if name_or_path.ends_with(".toml") || name_or_path.contains('/') {
        return Ok(as_path.to_path_buf());
    }
    let candidate = Path::new("stacks").join(format!("{name_or_path}.toml"));
    if candidate.is_file() {
        return Ok(candidate);
    }
    if bundle::stack_names().iter().any(|n| n == name_or_path) {
        return Ok(bundle::write_stack(state_dir, name_or_path)?);
    }
    Err(Error::NotFound {
        name: name_or_path.to_string(),
        tried: format!(
            "{} and the stacks built into lab ({})",
            candidate.display(),
            bundle::stack_names().join(", ")
        ),
    })
}

#[cfg(test)]
mod tests;
