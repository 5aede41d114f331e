//! A service as Docker's container-create body: labels, env with secrets filled in, ports on
//! 127.0.0.1, lab volumes and bind mounts, healthcheck, memory limit, the lab network.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use bollard::models::{
    ContainerCreateBody, EndpointSettings, HealthConfig, HostConfig, MountType, NetworkingConfig, PortBinding,
    RestartPolicy, RestartPolicyNameEnum,
};

use super::Error;
use crate::stack::{Mount, Service, Stack};

pub(super) fn container_body(
    stack: &Stack,
    service: &Service,
    spec_hash: &str,
    secrets: &BTreeMap<String, String>,
) -> Result<ContainerCreateBody, Error> {
    let mut env = Vec::with_capacity(service.env.len());
    for (key, value) in &service.env {
        let resolved = value.resolve(secrets).map_err(|reason| crate::stack::Error::Secret {
            name: key.clone(),
            reason,
        })?;
        env.push(format!("{key}={resolved}"));
    }
    let mut port_bindings: HashMap<String, Option<Vec<PortBinding>>> = HashMap::new();
    for p in &service.ports {
        port_bindings
            .entry(p.container_key())
            .or_insert_with(|| Some(Vec::new()))
            .get_or_insert_with(Vec::new)
            .push(PortBinding {
                host_ip: Some(p.host_ip.clone()),
                host_port: Some(p.host_port.to_string()),
            });
    }
    // Lab volumes as `Binds` (created on first use, as they should be). Bind mounts as `Mounts` of
    // type bind: for those the engine refuses a missing source ("bind source path does not
    // exist"), where `Binds` would create it as an empty root-owned directory, in the user's
    // checkout, that the container then reads as if it were the file it wanted.
    let mut binds = Vec::new();
    let mut bind_mounts = Vec::new();
    for m in &service.mounts {
        match m {
            Mount::Volume {
                name,
                target,
                read_only,
            } => binds.push(format!("{}:{target}{}", stack.volume_name(name), ro(*read_only))),
            Mount::Bind {
                source,
                target,
                read_only,
            } => bind_mounts.push(bollard::models::Mount {
                target: Some(target.clone()),
                source: Some(source.clone()),
                typ: Some(MountType::BIND),
                read_only: Some(*read_only),
                ..Default::default()
            }),
        }
    }
    let network = stack.network_name();
    // Joining another service's namespace: Docker takes network, hostname and ports from it.
    let shared = service
        .share_network_with
        .as_ref()
        .map(|owner| format!("container:{}", stack.container_name(owner)));
    let healthcheck = service.healthcheck.as_ref().map(|h| HealthConfig {
        test: Some(h.test.clone()),
        interval: Some(nanos(h.interval)),
        timeout: Some(nanos(h.timeout)),
        retries: Some(i64::from(h.retries)),
        start_period: Some(nanos(h.start_period)),
        start_interval: None,
    });
    Ok(ContainerCreateBody {
        image: Some(service.image.to_string()),
        hostname: if shared.is_some() {
            None
        } else {
            Some(service.hostname.clone().unwrap_or_else(|| service.name.clone()))
        },
        entrypoint: service.entrypoint.clone(),
        cmd: service.command.clone(),
        user: service.user.clone(),
        working_dir: service.working_dir.clone(),
        env: Some(env),
        exposed_ports: Some(service.ports.iter().map(|p| p.container_key()).collect()),
        healthcheck,
        labels: Some(
            service
                .labels(&stack.name, spec_hash)
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
        ),
        host_config: Some(HostConfig {
            port_bindings: Some(port_bindings),
            binds: Some(binds),
            mounts: Some(bind_mounts),
            memory: service.memory_bytes.and_then(|m| i64::try_from(m).ok()),
            // tini as PID 1: services that ignore SIGTERM as PID 1 (busybox, some JVM wrappers) still stop at once.
            init: Some(true),
            network_mode: Some(shared.clone().unwrap_or_else(|| network.clone())),
            // `lab up` is the recovery path: a crash shows up as exited instead of a silent restart loop.
            restart_policy: Some(RestartPolicy {
                name: Some(RestartPolicyNameEnum::NO),
                maximum_retry_count: None,
            }),
            ..Default::default()
        }),
        networking_config: shared.is_none().then(|| NetworkingConfig {
            endpoints_config: Some(HashMap::from([(
                network,
                EndpointSettings {
                    aliases: Some(vec![service.name.clone()]),
                    ..Default::default()
                },
            )])),
        }),
        ..Default::default()
    })
}

fn ro(read_only: bool) -> &'static str {
    if read_only { ":ro" } else { "" }
}

fn nanos(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}
