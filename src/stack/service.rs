//! The validated stack: every service checked, relative bind mounts resolved against the stack
//! file's directory, dependencies known to exist and to be acyclic.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::model::{self, Condition, Mount, PortMapping, ServiceSpec, StackFile, is_simple_name};
use super::scale::{Replica, Scale};
use super::{EnvValue, Error, ImageRef, order};

const DEFAULT_START_TIMEOUT: Duration = Duration::from_secs(180);

#[derive(Debug, Clone)]
pub struct Stack {
    pub name: String,
    pub description: Option<String>,
    /// Disk space the stack needs (images plus data), from the file's `disk` or 1 GiB per service.
    pub disk_bytes: u64,
    /// Where relative bind mounts are resolved (the stack file's directory).
    pub base_dir: PathBuf,
    pub services: BTreeMap<String, Service>,
    pub endpoints: model::Endpoints,
    /// Replica count of every scalable service (see [`super::scale`]).
    pub scale: BTreeMap<String, u32>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Service {
    pub name: String,
    pub image: ImageRef,
    /// Built locally (by `lab up`) rather than pulled. Left out of the spec hash when absent, so
    /// services without one hash as they always did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub build: Option<Build>,
    pub entrypoint: Option<Vec<String>>,
    pub command: Option<Vec<String>>,
    pub env: BTreeMap<String, EnvValue>,
    pub ports: Vec<PortMapping>,
    /// Bind sources are absolute paths here.
    pub mounts: Vec<Mount>,
    pub healthcheck: Option<Healthcheck>,
    pub depends_on: BTreeMap<String, Condition>,
    pub memory_bytes: Option<u64>,
    pub profiles: Vec<String>,
    /// The image's published platforms (see `model::ServiceSpec::platforms`). Not in the spec
    /// hash: which one runs follows from the engine, which does not change under a container.
    #[serde(skip)]
    pub platforms: Vec<String>,
    pub one_shot: bool,
    pub hostname: Option<String>,
    pub share_network_with: Option<String>,
    pub user: Option<String>,
    pub working_dir: Option<String>,
    pub start_timeout: Duration,
    /// Set on replica N ≥ 2 of a scaled service (its containers carry the `lab.replica-of` label).
    /// Left out of the spec hash when absent, so replica 1 hashes as the unscaled service does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replica: Option<Replica>,
}

/// Where a locally built image comes from: the context directory (absolute, resolved against the
/// stack file like a bind mount; it is read by `lab up`, not here) and the Dockerfile inside it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Build {
    pub context: String,
    pub dockerfile: String,
    /// Where in the context the lab's own source goes (see `model::BuildSpec::lab_source`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lab_source: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Healthcheck {
    pub test: Vec<String>,
    pub interval: Duration,
    pub timeout: Duration,
    pub retries: u32,
    pub start_period: Duration,
}

/// Disk assumed per service when the stack file does not say (an image of a JVM service is ~0.5-1 GiB).
const DEFAULT_DISK_PER_SERVICE: u64 = 1 << 30;

impl Stack {
    /// Reads and validates a stack file; relative bind mounts resolve against its directory.
    pub fn load(path: &Path) -> Result<Self, Error> {
        Self::load_scaled(path, &Scale::default())
    }

    /// [`Stack::load`] with the scalable services at the replica counts `scale` asks for.
    pub fn load_scaled(path: &Path, scale: &Scale) -> Result<Self, Error> {
        let (file, base_dir) = Self::read(path)?;
        Self::from_file_scaled(file, base_dir, scale)
    }

    /// The stack file as written, and the directory its relative paths resolve against.
    pub fn read(path: &Path) -> Result<(StackFile, PathBuf), Error> {
        let text = std::fs::read_to_string(path).map_err(|cause| Error::Read {
            path: path.to_path_buf(),
            cause,
        })?;
        let file: StackFile = toml::from_str(&text).map_err(|cause| Error::Parse {
            path: path.to_path_buf(),
            cause: Box::new(cause),
        })?;
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let base_dir = std::path::absolute(dir).map_err(|cause| Error::Io {
            action: "resolve the directory of",
            path: path.to_path_buf(),
            cause,
        })?;
        Ok((file, base_dir))
    }

    pub fn from_file(file: StackFile, base_dir: PathBuf) -> Result<Self, Error> {
        Self::from_file_scaled(file, base_dir, &Scale::default())
    }

    pub fn from_file_scaled(file: StackFile, base_dir: PathBuf, scale: &Scale) -> Result<Self, Error> {
        if !is_simple_name(&file.name) {
            return Err(Error::BadStackName(file.name));
        }
        if file.services.is_empty() {
            return Err(Error::NoServices);
        }
        // Each scale table is checked before replicas are made from it.
        for (name, spec) in &file.services {
            check_scale(name, spec)?;
        }
        let super::scale::Expanded {
            file,
            mut replicas,
            counts,
        } = super::scale::expand(&file, scale)?;
        let mut services = BTreeMap::new();
        for (name, spec) in &file.services {
            let mut service = Service::from_spec(name, spec, &base_dir)?;
            service.replica = replicas.remove(name);
            services.insert(name.clone(), service);
        }
        check_dependencies(&services)?;
        check_builds(&services)?;
        order::dependency_order(&services, services.keys().cloned().collect())?;
        check_port_clashes(&services)?;
        let disk_bytes = match &file.disk {
            None => DEFAULT_DISK_PER_SERVICE * services.len() as u64,
            Some(d) => model::parse_memory(d).ok_or_else(|| Error::BadDisk(d.clone()))?,
        };
        let stack = Self {
            name: file.name,
            description: file.description,
            disk_bytes,
            base_dir,
            services,
            endpoints: file.endpoints,
            scale: counts,
        };
        super::endpoints::check(&stack)?;
        Ok(stack)
    }

    /// Every secret any service's env refers to.
    #[must_use]
    pub fn secret_names(&self) -> BTreeSet<String> {
        self.services
            .values()
            .flat_map(|s| s.env.values().flat_map(|v| v.secrets().map(str::to_string)))
            .chain(self.endpoints.postgres.iter().map(|p| p.password_secret.clone()))
            .chain(self.endpoints.airflow.iter().map(|a| a.password_secret.clone()))
            .collect()
    }

    /// Resource names: `lab-<stack>-<service>`, `lab-<stack>` (network), `lab-<stack>-<volume>`.
    #[must_use]
    pub fn container_name(&self, service: &str) -> String {
        format!("lab-{}-{}", self.name, service)
    }
    #[must_use]
    pub fn network_name(&self) -> String {
        format!("lab-{}", self.name)
    }
    #[must_use]
    pub fn volume_name(&self, volume: &str) -> String {
        format!("lab-{}-{}", self.name, volume)
    }
}

impl Service {
    fn from_spec(name: &str, spec: &ServiceSpec, base_dir: &Path) -> Result<Self, Error> {
        if !is_simple_name(name) {
            return Err(Error::BadServiceName(name.to_string()));
        }
        let image = ImageRef::parse(&spec.image).map_err(|reason| Error::BadImage {
            service: name.to_string(),
            image: spec.image.clone(),
            reason,
        })?;
        let build = spec
            .build
            .as_ref()
            .map(|b| parse_build(name, b, base_dir))
            .transpose()?;
        let mut env = BTreeMap::new();
        for (key, value) in &spec.env {
            if key.is_empty() || key.contains('=') || key.contains('\0') {
                return Err(Error::BadEnv {
                    service: name.to_string(),
                    key: key.clone(),
                    reason: "a variable name must be non-empty and contain no '='".into(),
                });
            }
            let parsed = EnvValue::parse(value).map_err(|reason| Error::BadEnv {
                service: name.to_string(),
                key: key.clone(),
                reason,
            })?;
            env.insert(key.clone(), parsed);
        }
        let ports = spec
            .ports
            .iter()
            .map(|p| PortMapping::parse(name, p))
            .collect::<Result<Vec<_>, _>>()?;
        let mounts = spec
            .volumes
            .iter()
            .map(|v| {
                Mount::parse(name, v).map(|m| match m {
                    Mount::Bind {
                        source,
                        target,
                        read_only,
                    } => Mount::Bind {
                        source: resolve_bind(base_dir, &source),
                        target,
                        read_only,
                    },
                    volume => volume,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let bad_field = |field: &'static str, value: &str, reason: &str| Error::BadField {
            service: name.to_string(),
            field,
            value: value.to_string(),
            reason: reason.to_string(),
        };
        let duration = |field: &'static str, value: &str| {
            model::parse_duration(value)
                .ok_or_else(|| bad_field(field, value, "write a duration such as 500ms, 5s or 2m"))
        };
        let healthcheck = match &spec.healthcheck {
            None => None,
            Some(h) => {
                let valid_test = match h.test.first().map(String::as_str) {
                    Some("CMD") => h.test.len() >= 2,
                    Some("CMD-SHELL") => h.test.len() == 2,
                    _ => false,
                };
                if !valid_test {
                    return Err(bad_field(
                        "healthcheck.test",
                        &h.test.join(" "),
                        "write [\"CMD\", program, args...] or [\"CMD-SHELL\", \"shell command\"]",
                    ));
                }
                Some(Healthcheck {
                    test: h.test.clone(),
                    interval: duration("healthcheck.interval", &h.interval)?,
                    timeout: duration("healthcheck.timeout", &h.timeout)?,
                    retries: h.retries,
                    start_period: duration("healthcheck.start_period", &h.start_period)?,
                })
            }
        };
        let memory_bytes = match &spec.memory {
            None => None,
            Some(m) => {
                Some(model::parse_memory(m).ok_or_else(|| bad_field("memory", m, "write a size such as 512m or 2g"))?)
            }
        };
        let start_timeout = match &spec.start_timeout {
            None => DEFAULT_START_TIMEOUT,
            Some(t) => duration("start_timeout", t)?,
        };
        for profile in &spec.profiles {
            if !is_simple_name(profile) {
                return Err(bad_field(
                    "profiles",
                    profile,
                    "use lowercase letters, digits, '_' or '-'",
                ));
            }
        }
        for platform in &spec.platforms {
            if !KNOWN_PLATFORMS.contains(&platform.as_str()) {
                return Err(bad_field(
                    "platforms",
                    platform,
                    &format!("one of {}", KNOWN_PLATFORMS.join(", ")),
                ));
            }
        }
        Ok(Self {
            name: name.to_string(),
            image,
            build,
            entrypoint: spec.entrypoint.clone(),
            command: spec.command.clone(),
            env,
            ports,
            mounts,
            healthcheck,
            depends_on: spec.depends_on.clone(),
            memory_bytes,
            profiles: spec.profiles.clone(),
            platforms: spec.platforms.clone(),
            one_shot: spec.one_shot,
            hostname: spec.hostname.clone(),
            share_network_with: spec.share_network_with.clone(),
            user: spec.user.clone(),
            working_dir: spec.working_dir.clone(),
            start_timeout,
            replica: None,
        })
    }

    /// The platform to ask the engine for when the image is not published for the engine's own
    /// architecture (`arch` as Docker's /info gives it, `uname -m`: x86_64, aarch64): the image
    /// then runs emulated. None when it runs natively, or when its platforms are not known.
    #[must_use]
    pub fn emulated_platform(&self, arch: &str) -> Option<&str> {
        let native = platform_of_arch(arch)?;
        if self.platforms.is_empty() || self.platforms.iter().any(|p| p == native) {
            return None;
        }
        self.platforms.first().map(String::as_str)
    }

    /// A short hash of everything that shapes the container (not the secrets' values, which are
    /// stable per lab): unchanged hash and running → `lab up` keeps the container.
    #[must_use]
    pub fn spec_hash(&self, stack: &str) -> String {
        let canonical = serde_json::to_string(&(stack, self)).unwrap_or_default();
        let digest = Sha256::digest(canonical.as_bytes());
        digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
    }

    /// The labels its container carries (and the compose export writes): what `lab down` and
    /// `lab up` find the lab's containers by.
    #[must_use]
    pub fn labels(&self, stack: &str, spec_hash: &str) -> BTreeMap<&'static str, String> {
        let mut labels = BTreeMap::from([
            (super::LABEL_STACK, stack.to_string()),
            (super::LABEL_SERVICE, self.name.clone()),
            (super::LABEL_SPEC_HASH, spec_hash.to_string()),
        ]);
        if let Some(replica) = &self.replica {
            labels.insert(super::LABEL_REPLICA_OF, replica.of.clone());
        }
        labels
    }

    /// The named (lab-managed) volumes this service mounts.
    pub fn volume_names(&self) -> impl Iterator<Item = &str> {
        self.mounts.iter().filter_map(|m| match m {
            Mount::Volume { name, .. } => Some(name.as_str()),
            Mount::Bind { .. } => None,
        })
    }
}

fn parse_build(service: &str, spec: &model::BuildSpec, base_dir: &Path) -> Result<Build, Error> {
    let bad = |field: &'static str, value: &str, reason: &str| Error::BadField {
        service: service.to_string(),
        field,
        value: value.to_string(),
        reason: reason.to_string(),
    };
    let context = &spec.context;
    if !(context.starts_with("./") || context.starts_with("../") || context.starts_with('/')) || context.contains('\0')
    {
        return Err(bad(
            "build.context",
            context,
            "name a directory: ./dir or ../dir relative to the stack file, or an absolute path",
        ));
    }
    let dockerfile = spec.dockerfile.clone().unwrap_or_else(|| "Dockerfile".to_string());
    let inside = !dockerfile.is_empty()
        && !dockerfile.contains('\0')
        && Path::new(&dockerfile)
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_) | std::path::Component::CurDir));
    if !inside {
        return Err(bad(
            "build.dockerfile",
            &dockerfile,
            "a path inside the context, such as Dockerfile or docker/app.Dockerfile",
        ));
    }
    let lab_source = spec.lab_source.clone();
    if let Some(dir) = &lab_source {
        let one_name = !dir.is_empty() && !dir.starts_with('.') && !dir.contains(['/', '\\', '\0']);
        if !one_name {
            return Err(bad(
                "build.lab_source",
                dir,
                "a directory name inside the context, such as lab-src",
            ));
        }
    }
    Ok(Build {
        context: resolve_bind(base_dir, context),
        dockerfile,
        lab_source,
    })
}

/// Two services may share a built image only if they build it the same way.
fn check_builds(services: &BTreeMap<String, Service>) -> Result<(), Error> {
    let mut builders: HashMap<String, &Service> = HashMap::new();
    for service in services.values() {
        let Some(build) = &service.build else { continue };
        let image = service.image.to_string();
        if let Some(first) = builders.get(&image)
            && first.build.as_ref() != Some(build)
        {
            return Err(Error::ConflictingBuilds {
                image,
                first: first.name.clone(),
                second: service.name.clone(),
            });
        }
        builders.insert(image, service);
    }
    Ok(())
}

fn resolve_bind(base_dir: &Path, source: &str) -> String {
    let path = Path::new(source);
    let joined = if path.is_absolute() {
        path.to_path_buf()
    } else {
        base_dir.join(path)
    };
    // Normalise `a/../b` lexically: Docker wants a clean absolute path, and the directory may not exist yet.
    let mut clean = PathBuf::new();
    for part in joined.components() {
        match part {
            std::path::Component::ParentDir => {
                clean.pop();
            }
            std::path::Component::CurDir => {}
            other => clean.push(other),
        }
    }
    clean.to_string_lossy().into_owned()
}

/// A scale table allows 1 to 16 replicas, spaced at least one port apart.
fn check_scale(name: &str, spec: &ServiceSpec) -> Result<(), Error> {
    let Some(scale) = &spec.scale else { return Ok(()) };
    let bad = |field: &'static str, value: String, reason: &str| Error::BadField {
        service: name.to_string(),
        field,
        value,
        reason: reason.to_string(),
    };
    if !(1..=MAX_REPLICAS).contains(&scale.max) {
        return Err(bad(
            "scale.max",
            scale.max.to_string(),
            &format!("a number from 1 to {MAX_REPLICAS}"),
        ));
    }
    if scale.port_step == 0 {
        return Err(bad(
            "scale.port_step",
            "0".into(),
            "at least 1, or replicas would listen on the same ports",
        ));
    }
    Ok(())
}

/// More replicas than a laptop lab can hold is a typo.
const MAX_REPLICAS: u32 = 16;

fn check_dependencies(services: &BTreeMap<String, Service>) -> Result<(), Error> {
    for service in services.values() {
        if let Some(owner) = &service.share_network_with {
            let bad = |reason: &str| Error::BadField {
                service: service.name.clone(),
                field: "share_network_with",
                value: owner.clone(),
                reason: reason.to_string(),
            };
            match services.get(owner) {
                None => return Err(bad("no service of this stack has that name")),
                Some(o) if o.share_network_with.is_some() || o.one_shot => {
                    return Err(bad("it must be a long-running service with its own network"));
                }
                Some(_) => {}
            }
            if !service.depends_on.contains_key(owner) {
                return Err(bad("add it to depends_on too (its network must exist first)"));
            }
            if !service.ports.is_empty() || service.hostname.is_some() {
                return Err(bad(
                    "publish ports and set the hostname on the service that owns the network",
                ));
            }
        }
        for (dep, condition) in &service.depends_on {
            let Some(target) = services.get(dep) else {
                return Err(Error::UnknownDependency {
                    service: service.name.clone(),
                    dependency: dep.clone(),
                });
            };
            let bad = |reason: &str| Error::BadCondition {
                service: service.name.clone(),
                dependency: dep.clone(),
                condition: *condition,
                reason: reason.to_string(),
            };
            match condition {
                Condition::Healthy if target.healthcheck.is_none() => {
                    return Err(bad("it has no healthcheck"));
                }
                Condition::Completed if !target.one_shot => {
                    return Err(bad("it is not a one_shot job"));
                }
                Condition::Healthy if target.one_shot => {
                    return Err(bad("it is a one_shot job (wait for `completed`)"));
                }
                _ => {}
            }
        }
    }
    Ok(())
}

fn check_port_clashes(services: &BTreeMap<String, Service>) -> Result<(), Error> {
    let mut seen: HashMap<(u16, &str), &str> = HashMap::new();
    for service in services.values() {
        for port in &service.ports {
            if let Some(first) = seen.insert((port.host_port, port.protocol.as_str()), service.name.as_str()) {
                return Err(Error::PortClash {
                    port: port.host_port,
                    first: first.to_string(),
                    second: service.name.clone(),
                });
            }
        }
    }
    Ok(())
}

/// The platforms a stack file may name.
const KNOWN_PLATFORMS: &[&str] = &[
    "linux/amd64",
    "linux/arm64",
    "linux/arm/v7",
    "linux/386",
    "linux/ppc64le",
    "linux/s390x",
    "linux/riscv64",
];

/// An engine's architecture (Docker's /info `Architecture`, which is `uname -m`) as the platform
/// images are published for.
#[must_use]
pub fn platform_of_arch(arch: &str) -> Option<&'static str> {
    Some(match arch {
        "x86_64" | "amd64" => "linux/amd64",
        "aarch64" | "arm64" => "linux/arm64",
        "armv7l" | "armhf" => "linux/arm/v7",
        "i386" | "i686" => "linux/386",
        "ppc64le" => "linux/ppc64le",
        "s390x" => "linux/s390x",
        "riscv64" => "linux/riscv64",
        _ => return None,
    })
}
