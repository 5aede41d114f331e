//! The Stack view's state: every service of the stack file with its phase, fed by the runtime's
//! [`StackEvent`]s while an operation runs (the same events the CLI's progress bars draw) and by
//! the Docker probe's container list otherwise. Pure data: no Docker calls here.

use std::collections::BTreeMap;
use std::time::Instant;

use crate::runtime::docker::ServiceStatus;
use crate::runtime::events::{ResourceKind, StackEvent};
use crate::stack::Stack;

/// Where one service is, as the user should read it.
#[derive(Debug, Clone, PartialEq)]
pub enum Phase {
    /// No container.
    Absent,
    /// Its image is being pulled; percent over the layers whose size is known.
    Pulling(Option<u8>),
    /// Its image is being built; the builder's step (n of total) once it said one.
    Building(Option<(u32, u32)>),
    /// The image is here; the container is next.
    ImageReady,
    Recreating,
    Created,
    Starting,
    WaitingHealth {
        deadline: Instant,
    },
    WaitingCompletion {
        deadline: Instant,
    },
    Healthy,
    Unhealthy,
    /// Running, with no healthcheck to ask.
    Running,
    /// A one-shot job that exited 0.
    Completed,
    Exited(i64),
    Stopped,
}

impl Phase {
    /// The words shown in the STATE column (`now` for the countdowns).
    #[must_use]
    pub fn label(&self, now: Instant) -> String {
        match self {
            Phase::Absent => "absent".into(),
            Phase::Pulling(Some(p)) => format!("pulling {p}%"),
            Phase::Pulling(None) => "pulling".into(),
            Phase::Building(Some((n, of))) => format!("building {n}/{of}"),
            Phase::Building(None) => "building".into(),
            Phase::ImageReady => "image ready".into(),
            Phase::Recreating => "recreating".into(),
            Phase::Created => "created".into(),
            Phase::Starting => "starting".into(),
            Phase::WaitingHealth { deadline } => format!("waiting for health {}s", secs_left(*deadline, now)),
            Phase::WaitingCompletion { deadline } => format!("waiting to finish {}s", secs_left(*deadline, now)),
            Phase::Healthy => "healthy".into(),
            Phase::Unhealthy => "unhealthy".into(),
            Phase::Running => "running".into(),
            Phase::Completed => "completed".into(),
            Phase::Exited(code) => format!("exited ({code})"),
            Phase::Stopped => "stopped".into(),
        }
    }

    /// Good (green), in progress (yellow), failed (red) or idle (dim).
    #[must_use]
    pub fn tone(&self) -> Tone {
        match self {
            Phase::Healthy | Phase::Running | Phase::Completed => Tone::Good,
            Phase::Unhealthy | Phase::Exited(_) => Tone::Bad,
            Phase::Absent | Phase::Stopped => Tone::Idle,
            _ => Tone::Busy,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    Good,
    Busy,
    Bad,
    Idle,
}

fn secs_left(deadline: Instant, now: Instant) -> u64 {
    deadline.saturating_duration_since(now).as_secs()
}

/// Why a service failed, where it failed: the check and the last log lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub check: String,
    pub logs: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct StackRow {
    pub service: String,
    pub image: String,
    pub ports: Vec<String>,
    pub memory_limit: Option<u64>,
    pub depends_on: Vec<String>,
    pub profiles: Vec<String>,
    pub one_shot: bool,
    pub phase: Phase,
    pub memory_used: Option<u64>,
    pub cpu_percent: Option<f64>,
    pub restarts: i64,
    pub failure: Option<Failure>,
}

/// An operation in flight (one at a time).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Busy {
    pub what: String,
    pub since: Instant,
}

#[derive(Debug, Clone, Default)]
pub struct StackPanel {
    /// The stack's name (its `lab.stack` label), or empty when the file could not be loaded.
    pub name: String,
    pub file: String,
    /// Why the stack file could not be loaded.
    pub load_error: Option<String>,
    /// In dependency order.
    pub rows: Vec<StackRow>,
    pub busy: Option<Busy>,
    /// Layer progress per image being pulled: layer → (current, total) bytes.
    pulls: BTreeMap<String, BTreeMap<String, (u64, u64)>>,
    /// The last operation's error, in full (with its fix).
    pub last_error: Option<String>,
    /// The Docker probe has answered at least once (rows reflect real containers).
    pub observed: bool,
}

impl StackPanel {
    /// The panel for a loaded stack file: every service absent until the engine says otherwise.
    #[must_use]
    pub fn new(stack: &Stack, file: &str) -> Self {
        let order = crate::stack::SelectionRequest {
            only: Vec::new(),
            profiles: stack.services.values().flat_map(|s| s.profiles.clone()).collect(),
        };
        let names: Vec<String> = stack
            .select(&order)
            .map(|sel| sel.names().map(str::to_string).collect())
            .unwrap_or_else(|_| stack.services.keys().cloned().collect());
        let rows = names
            .iter()
            .filter_map(|n| stack.services.get(n))
            .map(|s| StackRow {
                service: s.name.clone(),
                image: s.image.to_string(),
                ports: s.ports.iter().map(|p| p.host_port.to_string()).collect(),
                memory_limit: s.memory_bytes,
                depends_on: s.depends_on.keys().cloned().collect(),
                profiles: s.profiles.clone(),
                one_shot: s.one_shot,
                phase: Phase::Absent,
                memory_used: None,
                cpu_percent: None,
                restarts: 0,
                failure: None,
            })
            .collect();
        Self {
            name: stack.name.clone(),
            file: file.to_string(),
            rows,
            ..Self::default()
        }
    }

    /// A panel that explains why there is no stack to show.
    #[must_use]
    pub fn unavailable(file: &str, error: String) -> Self {
        Self {
            file: file.to_string(),
            load_error: Some(error),
            ..Self::default()
        }
    }

    fn row_mut(&mut self, service: &str) -> Option<&mut StackRow> {
        // Events name the service, except `Removed`, which may name the container.
        let prefix = format!("lab-{}-", self.name);
        let service = service.strip_prefix(&prefix).unwrap_or(service);
        self.rows.iter_mut().find(|r| r.service == service)
    }

    /// An operation starts: its services' old failures are cleared.
    pub fn begin(&mut self, what: String, now: Instant) {
        self.busy = Some(Busy { what, since: now });
        self.last_error = None;
        self.pulls.clear();
    }

    /// The operation ended: from now on the Docker probe is the source of truth again.
    pub fn finish(&mut self, error: Option<String>) {
        self.busy = None;
        self.last_error = error;
        // Services the operation did not create (outside the selection, or it failed first) have
        // no container, whatever their image did.
        for r in &mut self.rows {
            if matches!(r.phase, Phase::ImageReady | Phase::Pulling(_) | Phase::Building(_)) {
                r.phase = Phase::Absent;
            }
        }
        self.pulls.clear();
    }

    /// Applies one runtime event.
    pub fn apply(&mut self, event: &StackEvent) {
        match event {
            StackEvent::PullStarted { image, .. } => {
                self.pulls.insert(image.clone(), BTreeMap::new());
                self.set_image_phase(image, Phase::Pulling(None));
            }
            StackEvent::Pulling {
                image,
                layer,
                current,
                total,
                ..
            } => {
                let layers = self.pulls.entry(image.clone()).or_default();
                if let Some(total) = total {
                    layers.insert(layer.clone(), (current.unwrap_or(0).min(*total), *total));
                } else if let Some((done, total)) = layers.get_mut(layer) {
                    // "Pull complete" / "Already exists" carry no sizes: the layer is done.
                    *done = *total;
                }
                let percent = pull_percent(layers);
                self.set_image_phase(image, Phase::Pulling(percent));
            }
            StackEvent::BuildStarted { image, .. } => self.set_image_phase(image, Phase::Building(None)),
            StackEvent::Building { image, step, .. } => self.set_image_phase(image, Phase::Building(*step)),
            StackEvent::Pulled { image } | StackEvent::Built { image } | StackEvent::ImagePresent { image } => {
                self.pulls.remove(image);
                for r in self.rows.iter_mut().filter(|r| &r.image == image) {
                    if matches!(r.phase, Phase::Pulling(_) | Phase::Building(_) | Phase::Absent) {
                        r.phase = Phase::ImageReady;
                    }
                }
            }
            StackEvent::Recreating { service, .. } => self.set(service, Phase::Recreating),
            StackEvent::Created { service } => self.set(service, Phase::Created),
            StackEvent::Starting { service } => {
                if let Some(r) = self.row_mut(service) {
                    r.phase = Phase::Starting;
                    r.failure = None;
                }
            }
            StackEvent::Started { service } => self.set(service, Phase::Running),
            StackEvent::Unchanged { service } => {
                if let Some(r) = self.row_mut(service)
                    && matches!(r.phase, Phase::Absent | Phase::ImageReady)
                {
                    r.phase = Phase::Running;
                }
            }
            StackEvent::WaitingHealth { service, deadline } => {
                self.set(service, Phase::WaitingHealth { deadline: *deadline });
            }
            StackEvent::WaitingCompletion { service, deadline } => {
                self.set(service, Phase::WaitingCompletion { deadline: *deadline });
            }
            StackEvent::Healthy { service, .. } => self.set(service, Phase::Healthy),
            StackEvent::Unhealthy {
                service,
                check,
                last_logs,
            } => {
                if let Some(r) = self.row_mut(service) {
                    r.phase = Phase::Unhealthy;
                    r.failure = Some(Failure {
                        check: check.clone(),
                        logs: last_logs.clone(),
                    });
                }
            }
            StackEvent::Completed { service } => self.set(service, Phase::Completed),
            StackEvent::Exited { service, code } => self.set(service, Phase::Exited(*code)),
            StackEvent::Stopped { service } => self.set(service, Phase::Stopped),
            StackEvent::Removed {
                kind: ResourceKind::Container,
                name,
            } => {
                if let Some(r) = self.row_mut(name) {
                    r.phase = Phase::Absent;
                    r.memory_used = None;
                    r.cpu_percent = None;
                }
            }
            StackEvent::Removed { .. }
            | StackEvent::NetworkReady { .. }
            | StackEvent::VolumeReady { .. }
            | StackEvent::EndpointsWritten { .. } => {}
        }
    }

    /// Applies the Docker probe's container list. While an operation runs its events are more
    /// precise (pull progress, countdowns), so only the figures are taken then.
    pub fn observe(&mut self, containers: &[ServiceStatus]) {
        self.observed = true;
        let busy = self.busy.is_some();
        for row in &mut self.rows {
            let c = containers.iter().find(|c| c.service == row.service);
            row.memory_used = c.and_then(|c| c.memory_bytes);
            row.cpu_percent = c.and_then(|c| c.cpu_percent);
            row.restarts = c.map_or(0, |c| c.restarts);
            if !busy {
                row.phase = c.map_or(Phase::Absent, |c| phase_of(c, row.one_shot));
            }
        }
    }

    /// Every service of the default selection (no profile) is healthy, running or completed.
    #[must_use]
    pub fn all_up(&self) -> bool {
        let default: Vec<&StackRow> = self.rows.iter().filter(|r| r.profiles.is_empty()).collect();
        !default.is_empty() && default.iter().all(|r| r.phase.tone() == Tone::Good)
    }

    /// No container of the stack exists (as far as the engine said).
    #[must_use]
    pub fn all_absent(&self) -> bool {
        self.rows.iter().all(|r| r.phase == Phase::Absent)
    }

    fn set(&mut self, service: &str, phase: Phase) {
        if let Some(r) = self.row_mut(service) {
            r.phase = phase;
        }
    }

    fn set_image_phase(&mut self, image: &str, phase: Phase) {
        for r in self.rows.iter_mut().filter(|r| r.image == image) {
            r.phase = phase.clone();
        }
    }
}

fn pull_percent(layers: &BTreeMap<String, (u64, u64)>) -> Option<u8> {
    let (done, total) = layers.values().fold((0u64, 0u64), |(d, t), (cd, ct)| (d + cd, t + ct));
    (total > 0).then(|| u8::try_from(done * 100 / total).unwrap_or(100))
}

/// The phase a container's state and health mean.
fn phase_of(c: &ServiceStatus, one_shot: bool) -> Phase {
    match (c.state.as_str(), c.health.as_deref()) {
        ("running", Some("healthy")) => Phase::Healthy,
        ("running", Some("unhealthy")) => Phase::Unhealthy,
        ("running", Some(_)) | ("restarting", _) => Phase::Starting,
        ("running", None) => Phase::Running,
        ("created", _) => Phase::Created,
        ("exited", _) if one_shot && c.exit_code == Some(0) => Phase::Completed,
        ("exited" | "dead", _) => Phase::Exited(c.exit_code.unwrap_or(-1)),
        ("paused", _) => Phase::Stopped,
        _ => Phase::Starting,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn panel() -> StackPanel {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/stacks/test.toml");
        let stack = Stack::load(&path).unwrap();
        StackPanel::new(&stack, "tests/stacks/test.toml")
    }

    fn row<'a>(p: &'a StackPanel, service: &str) -> &'a StackRow {
        p.rows.iter().find(|r| r.service == service).unwrap()
    }

    fn phase(p: &StackPanel, service: &str) -> Phase {
        row(p, service).phase.clone()
    }

    #[test]
    fn rows_follow_dependency_order_and_start_absent() {
        let p = panel();
        let names: Vec<&str> = p.rows.iter().map(|r| r.service.as_str()).collect();
        let pos = |n: &str| names.iter().position(|x| *x == n).unwrap();
        assert!(pos("db") < pos("migrate") && pos("migrate") < pos("api") && pos("api") < pos("web"));
        assert!(names.contains(&"broken"), "profile services are listed too");
        assert!(p.rows.iter().all(|r| r.phase == Phase::Absent));
    }

    #[test]
    fn pull_progress_is_the_share_of_known_layer_bytes() {
        let mut p = panel();
        let image = "lab-test/busybox:1".to_string();
        p.apply(&StackEvent::PullStarted {
            image: image.clone(),
            services: vec!["db".into()],
        });
        assert_eq!(phase(&p, "db"), Phase::Pulling(None));
        for (layer, current, total) in [("a", 50, 100), ("b", 0, 300)] {
            p.apply(&StackEvent::Pulling {
                image: image.clone(),
                layer: layer.into(),
                status: "Downloading".into(),
                current: Some(current),
                total: Some(total),
            });
        }
        assert_eq!(phase(&p, "api"), Phase::Pulling(Some(12)));
        p.apply(&StackEvent::Pulling {
            image: image.clone(),
            layer: "b".into(),
            status: "Pull complete".into(),
            current: None,
            total: None,
        });
        assert_eq!(phase(&p, "db"), Phase::Pulling(Some(87)));
        p.apply(&StackEvent::Pulled { image });
        assert_eq!(phase(&p, "db"), Phase::ImageReady);
    }

    #[test]
    fn a_build_shows_its_step_until_the_image_is_built() {
        let mut p = panel();
        let image = "lab-test/busybox:1".to_string();
        p.apply(&StackEvent::BuildStarted {
            image: image.clone(),
            services: vec!["db".into()],
        });
        assert_eq!(phase(&p, "db"), Phase::Building(None));
        p.apply(&StackEvent::Building {
            image: image.clone(),
            step: Some((2, 5)),
            line: "Step 2/5 : COPY a /a".into(),
        });
        assert_eq!(phase(&p, "api"), Phase::Building(Some((2, 5))));
        assert_eq!(Phase::Building(Some((2, 5))).label(Instant::now()), "building 2/5");
        p.apply(&StackEvent::Built { image });
        assert_eq!(phase(&p, "db"), Phase::ImageReady);
    }

    #[test]
    fn events_walk_a_service_through_its_phases() {
        let mut p = panel();
        let now = Instant::now();
        let db = || "db".to_string();
        p.apply(&StackEvent::Created { service: db() });
        assert_eq!(phase(&p, "db"), Phase::Created);
        p.apply(&StackEvent::WaitingHealth {
            service: db(),
            deadline: now + Duration::from_secs(30),
        });
        assert_eq!(phase(&p, "db").label(now), "waiting for health 30s");
        p.apply(&StackEvent::Unhealthy {
            service: db(),
            check: "wget …".into(),
            last_logs: vec!["boom".into()],
        });
        assert_eq!(phase(&p, "db").tone(), Tone::Bad);
        assert_eq!(row(&p, "db").failure.as_ref().unwrap().logs, vec!["boom".to_string()]);
        p.apply(&StackEvent::Starting { service: db() });
        assert!(row(&p, "db").failure.is_none(), "a new start clears the old failure");
        p.apply(&StackEvent::Removed {
            kind: ResourceKind::Container,
            name: "lab-labtest-db".into(),
        });
        assert_eq!(phase(&p, "db"), Phase::Absent);
    }

    #[test]
    fn the_probe_rules_when_idle_and_only_updates_figures_when_busy() {
        let mut p = panel();
        let status = |service: &str, state: &str, health: Option<&str>, code: Option<i64>| ServiceStatus {
            service: service.into(),
            container: format!("lab-labtest-{service}"),
            state: state.into(),
            health: health.map(str::to_string),
            ports: vec![],
            uptime: None,
            restarts: 2,
            cpu_percent: Some(1.5),
            memory_bytes: Some(1 << 20),
            exit_code: code,
        };
        let seen = vec![
            status("db", "running", Some("healthy"), None),
            status("migrate", "exited", None, Some(0)),
            status("web", "exited", None, Some(3)),
            status("sidecar", "running", Some("starting"), None),
        ];
        p.observe(&seen);
        assert_eq!(phase(&p, "db"), Phase::Healthy);
        assert_eq!(phase(&p, "migrate"), Phase::Completed);
        assert_eq!(phase(&p, "web"), Phase::Exited(3));
        assert_eq!(phase(&p, "sidecar"), Phase::Starting);
        assert_eq!(phase(&p, "api"), Phase::Absent);
        assert!(!p.all_up());
        p.begin("up".into(), Instant::now());
        p.apply(&StackEvent::Created { service: "api".into() });
        p.observe(&seen);
        assert_eq!(phase(&p, "api"), Phase::Created, "events win while busy");
        assert_eq!(row(&p, "db").restarts, 2);
    }
}
