//! `lab up`: images, the lab network and volumes, then each service in dependency order — kept if
//! it runs with the same spec hash on the same image, recreated if its spec or its image changed —
//! and finally every health and completion condition.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use bollard::models::{ContainerSummaryStateEnum, NetworkCreateRequest, VolumeCreateRequest};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, ListNetworksOptionsBuilder, RemoveContainerOptionsBuilder,
};

use super::{Engine, Error, PullPolicy, api, is_not_found, spec};
use crate::runtime::events::{Events, ResourceKind, StackEvent};
use crate::stack::{Condition, LABEL_REPLICA_OF, LABEL_SPEC_HASH, LABEL_STACK, Selection, Service, Stack};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceOutcome {
    /// Running with the same spec (or a one-shot job that already completed): untouched.
    Kept,
    /// Existed with the same spec but was stopped: started again.
    Restarted,
    Created,
    /// The spec changed: the old container was removed and a new one created.
    Recreated,
}

/// What was replaced under an existing container since it was created, beyond its own spec.
#[derive(Debug, Clone, Copy)]
struct Replaced {
    /// The service whose network namespace it shares got a new container.
    network_owner: bool,
    /// Its image tag now names another image.
    image: bool,
}

#[derive(Debug, Clone)]
pub struct UpReport {
    /// In start order: service, container id, outcome.
    pub services: Vec<(String, String, ServiceOutcome)>,
}

impl Engine {
    /// Brings the selection up and returns once every service is healthy, running, or completed.
    pub async fn up(
        &self,
        selection: &Selection<'_>,
        secrets: &BTreeMap<String, String>,
        pull: PullPolicy,
        events: &Events,
    ) -> Result<UpReport, Error> {
        let stack = selection.stack;
        if let Ok(found) = super::engine_host() {
            refuse_remote(&found)?;
        }
        // Before anything is pulled, built or created: a missing file would otherwise surface as
        // one service failing midway, with the others already started.
        let missing = selection.missing_bind_sources();
        if !missing.is_empty() {
            return Err(Error::MissingBindSources {
                missing: missing
                    .into_iter()
                    .map(|(service, source)| format!("{service}: {source}"))
                    .collect(),
            });
        }
        let image_ids = self.ensure_images(selection, pull, events).await?;
        self.ensure_network(stack, events).await?;
        let volumes: BTreeSet<&str> = selection.services.iter().flat_map(|s| s.volume_names()).collect();
        for volume in volumes {
            self.ensure_volume(stack, volume, events).await?;
        }
        let mut existing = self.stack_containers(&stack.name).await?;
        let mut ids: HashMap<&str, String> = HashMap::new();
        let mut satisfied: BTreeSet<(String, Condition)> = BTreeSet::new();
        let mut report = UpReport { services: Vec::new() };
        for service in &selection.services {
            for (dep, condition) in &service.depends_on {
                if satisfied.contains(&(dep.clone(), *condition)) {
                    continue;
                }
                let dep_service = &stack.services[dep];
                let dep_id = &ids[dep.as_str()];
                match condition {
                    Condition::Started => {}
                    Condition::Healthy => self.wait_healthy(dep_id, dep_service, events).await?,
                    Condition::Completed => self.wait_completed(dep_id, dep_service, events).await?,
                }
                satisfied.insert((dep.clone(), *condition));
            }
            // A namespace owner that got a new container leaves its sharers in a dead namespace.
            let owner_replaced = service.share_network_with.as_ref().is_some_and(|owner| {
                report
                    .services
                    .iter()
                    .any(|(s, _, o)| s == owner && matches!(o, ServiceOutcome::Created | ServiceOutcome::Recreated))
            });
            let current = existing.remove(&service.name);
            // A rebuilt image, or a tag pulled anew, keeps its name but not its id.
            let image_replaced = match (&current, image_ids.get(&service.image.to_string())) {
                (Some(c), Some(want)) => c.image_id.as_ref() != Some(want),
                _ => false,
            };
            let replaced = Replaced {
                network_owner: owner_replaced,
                image: image_replaced,
            };
            let (id, outcome) = self
                .converge(stack, service, current, replaced, secrets, events)
                .await?;
            report.services.push((service.name.clone(), id.clone(), outcome));
            ids.insert(&service.name, id);
        }
        self.remove_surplus_replicas(selection, existing, events).await?;
        for service in &selection.services {
            let id = &ids[service.name.as_str()];
            if service.one_shot {
                if !satisfied.contains(&(service.name.clone(), Condition::Completed)) {
                    self.wait_completed(id, service, events).await?;
                }
            } else if service.healthcheck.is_some() {
                if !satisfied.contains(&(service.name.clone(), Condition::Healthy)) {
                    self.wait_healthy(id, service, events).await?;
                }
            } else {
                self.check_running(id, service, events).await?;
            }
        }
        Ok(report)
    }

    /// `--scale NAME=N` below the running count: the replicas of a selected service beyond N are
    /// removed (their volumes stay, as after `lab down`, for when the lab scales up again).
    async fn remove_surplus_replicas(
        &self,
        selection: &Selection<'_>,
        leftovers: HashMap<String, bollard::models::ContainerSummary>,
        events: &Events,
    ) -> Result<(), Error> {
        let stack = selection.stack;
        let selected: BTreeSet<&str> = selection.names().collect();
        for (service, container) in leftovers {
            let replica_of = container.labels.as_ref().and_then(|l| l.get(LABEL_REPLICA_OF));
            let surplus =
                replica_of.is_some_and(|of| selected.contains(of.as_str())) && !stack.services.contains_key(&service);
            if !surplus {
                continue;
            }
            let id = container.id.clone().unwrap_or_default();
            self.remove_container(&id, &current_name(&container)).await?;
            events.send(StackEvent::Removed {
                kind: ResourceKind::Container,
                name: stack.container_name(&service),
            });
        }
        Ok(())
    }

    /// Makes one service's container match its spec; returns its id.
    async fn converge(
        &self,
        stack: &Stack,
        service: &Service,
        current: Option<bollard::models::ContainerSummary>,
        replaced: Replaced,
        secrets: &BTreeMap<String, String>,
        events: &Events,
    ) -> Result<(String, ServiceOutcome), Error> {
        let hash = service.spec_hash(&stack.name);
        let mut outcome = ServiceOutcome::Created;
        if let Some(current) = current {
            let id = current.id.clone().unwrap_or_default();
            let same_spec = current.labels.as_ref().and_then(|l| l.get(LABEL_SPEC_HASH)) == Some(&hash)
                && !replaced.network_owner
                && !replaced.image;
            let state = current.state;
            if same_spec {
                match state {
                    Some(ContainerSummaryStateEnum::RUNNING) => {
                        events.send(StackEvent::Unchanged {
                            service: service.name.clone(),
                        });
                        return Ok((id, ServiceOutcome::Kept));
                    }
                    Some(ContainerSummaryStateEnum::EXITED) if service.one_shot && self.exited_ok(&id).await? => {
                        events.send(StackEvent::Unchanged {
                            service: service.name.clone(),
                        });
                        return Ok((id, ServiceOutcome::Kept));
                    }
                    Some(ContainerSummaryStateEnum::EXITED | ContainerSummaryStateEnum::CREATED) => {
                        self.start(&id, service, events).await?;
                        return Ok((id, ServiceOutcome::Restarted));
                    }
                    _ => {}
                }
            }
            let reason = if replaced.network_owner {
                "the service whose network it shares was replaced".to_string()
            } else if replaced.image {
                "its image changed (rebuilt, or pulled anew)".to_string()
            } else if same_spec {
                format!(
                    "container is {}",
                    state.map_or("in an unknown state".into(), |s| s.to_string())
                )
            } else {
                "spec changed".to_string()
            };
            events.send(StackEvent::Recreating {
                service: service.name.clone(),
                reason,
            });
            self.remove_container(&id, &current_name(&current)).await?;
            events.send(StackEvent::Removed {
                kind: ResourceKind::Container,
                name: stack.container_name(&service.name),
            });
            outcome = ServiceOutcome::Recreated;
        }
        let body = spec::container_body(stack, service, &hash, secrets)?;
        let name = stack.container_name(&service.name);
        let mut options = CreateContainerOptionsBuilder::default().name(&name);
        // An image without a variant for the engine's CPU runs the one pulled for it, emulated.
        if let Some(platform) = self.arch.as_deref().and_then(|a| service.emulated_platform(a)) {
            options = options.platform(platform);
        }
        let options = options.build();
        let created = self
            .docker
            .create_container(Some(options), body)
            .await
            .map_err(api(format!("create container {name}")))?;
        events.send(StackEvent::Created {
            service: service.name.clone(),
        });
        self.start(&created.id, service, events).await?;
        Ok((created.id, outcome))
    }

    async fn start(&self, id: &str, service: &Service, events: &Events) -> Result<(), Error> {
        check_ports_free(service)?;
        events.send(StackEvent::Starting {
            service: service.name.clone(),
        });
        self.docker
            .start_container(id, None)
            .await
            .map_err(api(format!("start the container of {}", service.name)))?;
        events.send(StackEvent::Started {
            service: service.name.clone(),
        });
        Ok(())
    }

    async fn exited_ok(&self, id: &str) -> Result<bool, Error> {
        let info = self.inspect(id).await?;
        Ok(info.state.and_then(|s| s.exit_code) == Some(0))
    }

    /// Removes a container with its anonymous volumes: images that declare a `VOLUME` the stack
    /// does not mount (apache/kafka's /etc/kafka/secrets and /mnt/shared/config, the Hadoop
    /// runner's /data on YARN's daemons) get a fresh unnamed volume with every container, which
    /// would otherwise be left behind by every recreate and `lab down`. Named lab volumes are
    /// not anonymous and stay.
    pub(super) async fn remove_container(&self, id: &str, name: &str) -> Result<(), Error> {
        let options = RemoveContainerOptionsBuilder::default().force(true).v(true).build();
        match self.docker.remove_container(id, Some(options)).await {
            Ok(()) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => Err(api(format!("remove container {name}"))(e)),
        }
    }

    async fn ensure_network(&self, stack: &Stack, events: &Events) -> Result<(), Error> {
        let name = stack.network_name();
        let filters = HashMap::from([("name", vec![name.as_str()])]);
        let options = ListNetworksOptionsBuilder::default().filters(&filters).build();
        let networks = self
            .docker
            .list_networks(Some(options))
            .await
            .map_err(api("list networks"))?;
        // The name filter matches substrings: look for the exact name.
        if let Some(existing) = networks.iter().find(|n| n.name.as_deref() == Some(name.as_str())) {
            if existing.labels.as_ref().and_then(|l| l.get(LABEL_STACK)) != Some(&stack.name) {
                return Err(Error::Foreign { kind: "network", name });
            }
            events.send(StackEvent::NetworkReady { name, created: false });
            return Ok(());
        }
        let request = NetworkCreateRequest {
            name: name.clone(),
            driver: Some("bridge".into()),
            labels: Some(HashMap::from([(LABEL_STACK.to_string(), stack.name.clone())])),
            ..Default::default()
        };
        self.docker
            .create_network(request)
            .await
            .map_err(api(format!("create network {name}")))?;
        events.send(StackEvent::NetworkReady { name, created: true });
        Ok(())
    }

    async fn ensure_volume(&self, stack: &Stack, volume: &str, events: &Events) -> Result<(), Error> {
        let name = stack.volume_name(volume);
        match self.docker.inspect_volume(&name).await {
            Ok(existing) => {
                if existing.labels.get(LABEL_STACK) != Some(&stack.name) {
                    return Err(Error::Foreign { kind: "volume", name });
                }
                events.send(StackEvent::VolumeReady { name, created: false });
                return Ok(());
            }
            Err(e) if is_not_found(&e) => {}
            Err(e) => return Err(api(format!("inspect volume {name}"))(e)),
        }
        let request = VolumeCreateRequest {
            name: Some(name.clone()),
            labels: Some(HashMap::from([(LABEL_STACK.to_string(), stack.name.clone())])),
            ..Default::default()
        };
        self.docker
            .create_volume(request)
            .await
            .map_err(api(format!("create volume {name}")))?;
        events.send(StackEvent::VolumeReady { name, created: true });
        Ok(())
    }
}

/// A remote engine's ports are published on its machine's 127.0.0.1, unreachable from here: `up`
/// refuses it rather than write endpoints that point at nothing.
fn refuse_remote(found: &super::EngineHost) -> Result<(), Error> {
    if found.is_local() {
        Ok(())
    } else {
        Err(Error::RemoteEngine {
            host: found.to_string(),
        })
    }
}

/// Before creating a container: every host port it publishes must be free, or the error names the
/// process holding it (`up` runs only on a local engine, whose ports are this machine's).
fn check_ports_free(service: &Service) -> Result<(), Error> {
    for p in service.ports.iter().filter(|p| p.protocol == "tcp") {
        if let Err(holder) = crate::runtime::ports::check_free(&p.host_ip, p.host_port) {
            return Err(Error::PortTaken {
                service: service.name.clone(),
                addr: format!("{}:{}", p.host_ip, p.host_port),
                holder,
            });
        }
    }
    Ok(())
}

fn current_name(c: &bollard::models::ContainerSummary) -> String {
    c.names
        .as_ref()
        .and_then(|n| n.first())
        .map(|n| n.trim_start_matches('/').to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_remote_engine_is_refused_with_where_it_is_and_what_to_do() {
        let host = |url: &str| crate::runtime::docker::EngineHost {
            url: url.into(),
            found_by: "context build-box (~/.docker/config.json)".into(),
        };
        assert!(refuse_remote(&host("unix:///var/run/docker.sock")).is_ok());
        assert!(refuse_remote(&host("tcp://127.0.0.1:2375")).is_ok());
        let err = refuse_remote(&host("tcp://10.0.0.5:2375")).unwrap_err().to_string();
        assert!(
            err.contains(
                "tcp://10.0.0.5:2375 (from context build-box (~/.docker/config.json)) runs on another machine"
            ) && err.contains("use a local engine"),
            "{err}"
        );
    }
}
