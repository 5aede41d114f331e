//! Stopping and starting one service for a lesson.
//!
//! On the Docker stack a lesson stops and starts the stack's own container (`kafka`, `datanode`)
//! through the same runtime calls as `lab stop|start`. For services run some other way (by hand,
//! by a course's scripts, by the lab's test harness) `LAB_CONTROL_<TARGET>_STOP` and `_START` name
//! shell commands that do it, e.g. `LAB_CONTROL_DATANODE_STOP="systemctl stop hadoop-datanode"`.

use std::path::PathBuf;
use std::sync::Arc;

use crate::pipeline::embedded::EmbeddedBroker;
use crate::runtime::docker::{Engine, Error as RuntimeError};
use crate::runtime::events::Events;

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error(
        "cannot {action} the {target}: no lab stack is running ({reason}) and LAB_CONTROL_{env}_{verb} is not set\n\
         bring the stack up with `lab up`, or set LAB_CONTROL_{env}_STOP and LAB_CONTROL_{env}_START to commands that stop and start it"
    )]
    NoWay {
        action: &'static str,
        target: String,
        env: String,
        verb: &'static str,
        reason: String,
    },
    #[error("cannot {action} the {target}: `{command}` {detail}")]
    Command {
        action: &'static str,
        target: String,
        command: String,
        detail: String,
    },
    #[error("cannot {action} the embedded Kafka broker: {detail}")]
    Embedded { action: &'static str, detail: String },
    #[error("cannot {action} the {target} container: {source}")]
    Docker {
        action: &'static str,
        target: String,
        source: Box<RuntimeError>,
    },
}

/// How to stop and start the lab's services.
#[derive(Clone)]
pub struct ServiceControl {
    state_dir: PathBuf,
    /// The in-process broker of an embedded lesson: `kafka` is this one.
    embedded_kafka: Option<Arc<EmbeddedBroker>>,
    /// What this control stopped and has not started again: [`ServiceControl::restore`] starts
    /// it, whatever way the lesson ended.
    stopped: Arc<std::sync::Mutex<Vec<String>>>,
    /// Held while a stop or start runs. An operation runs to its end in its own task even when
    /// the lesson is cancelled meanwhile, and the repair waits for it: a start never races the
    /// stop it repairs.
    running: Arc<tokio::sync::Mutex<()>>,
}

#[derive(Clone, Copy)]
enum Action {
    Stop,
    Start,
}

impl Action {
    fn verb(self) -> &'static str {
        match self {
            Action::Stop => "STOP",
            Action::Start => "START",
        }
    }

    fn word(self) -> &'static str {
        match self {
            Action::Stop => "stop",
            Action::Start => "start",
        }
    }
}

impl ServiceControl {
    /// `state_dir` tells which stack the last `lab up` started.
    #[must_use]
    pub fn new(state_dir: PathBuf) -> Self {
        Self {
            state_dir,
            embedded_kafka: None,
            stopped: Arc::default(),
            running: Arc::default(),
        }
    }

    /// For an embedded lesson: `kafka` is the in-process broker, stopped and started in place.
    #[must_use]
    pub fn embedded(state_dir: PathBuf, broker: Arc<EmbeddedBroker>) -> Self {
        Self {
            state_dir,
            embedded_kafka: Some(broker),
            stopped: Arc::default(),
            running: Arc::default(),
        }
    }

    /// The in-process broker, when `target` is it.
    fn embedded_target(&self, target: &str) -> Option<&EmbeddedBroker> {
        self.embedded_kafka.as_deref().filter(|_| target == "kafka")
    }

    /// Stops `target` (a stack service name: `kafka`, `datanode`).
    pub async fn stop(&self, target: &str) -> Result<(), ControlError> {
        // Noted first: a stop that fails half-way or is cancelled is still repaired.
        self.note_stopped(target, true);
        self.act(target, Action::Stop).await
    }

    pub async fn start(&self, target: &str) -> Result<(), ControlError> {
        self.act(target, Action::Start).await
    }

    /// Starts again everything this control stopped and has not started: a lesson's repair on
    /// every way out (a failed check, Ctrl-C, the monitor quitting). Returns what it started, each
    /// with the outcome.
    pub async fn restore(&self) -> Vec<(String, Result<(), ControlError>)> {
        // An operation the lesson was in the middle of finishes first.
        drop(self.running.lock().await);
        let targets = self.stopped.lock().map(|s| s.clone()).unwrap_or_default();
        let mut out = Vec::new();
        for target in targets {
            let result = self.start(&target).await;
            out.push((target, result));
        }
        out
    }

    fn note_stopped(&self, target: &str, stopped: bool) {
        if let Ok(mut list) = self.stopped.lock() {
            list.retain(|t| t != target);
            if stopped {
                list.push(target.to_string());
            }
        }
    }

    /// Whether `target` can be controlled at all, checked before a lesson breaks anything.
    pub async fn check(&self, target: &str) -> Result<(), ControlError> {
        if self.embedded_target(target).is_some() {
            return Ok(());
        }
        for action in [Action::Stop, Action::Start] {
            if command(target, action).is_none() {
                self.stack(target, action).await?;
            }
        }
        Ok(())
    }

    /// Runs the operation in its own task (see [`ServiceControl::running`]).
    async fn act(&self, target: &str, action: Action) -> Result<(), ControlError> {
        let guard = self.running.clone().lock_owned().await;
        let (this, owned_target) = (self.clone(), target.to_string());
        let task = tokio::spawn(async move {
            let _running = guard;
            let result = this.act_now(&owned_target, action).await;
            if result.is_ok() && matches!(action, Action::Start) {
                this.note_stopped(&owned_target, false);
            }
            result
        });
        task.await.unwrap_or_else(|e| {
            Err(ControlError::Command {
                action: action.word(),
                target: target.to_string(),
                command: "(lesson control)".into(),
                detail: format!("the operation's task failed: {e}"),
            })
        })
    }

    async fn act_now(&self, target: &str, action: Action) -> Result<(), ControlError> {
        if let Some(broker) = self.embedded_target(target) {
            let result = match action {
                Action::Stop => broker.stop_serving(),
                Action::Start => broker.start_serving(),
            };
            return result.map_err(|e| ControlError::Embedded {
                action: action.word(),
                detail: e.to_string(),
            });
        }
        if let Some(cmd) = command(target, action) {
            return run_command(target, action, &cmd).await;
        }
        let (engine, stack) = self.stack(target, action).await?;
        let events = Events::discard();
        let result = match action {
            Action::Stop => engine.stop_service(&stack, target, &events).await,
            Action::Start => engine.start_service(&stack, target, &events).await,
        };
        result.map_err(|source| ControlError::Docker {
            action: action.word(),
            target: target.to_string(),
            source: Box::new(source),
        })
    }

    /// The engine and the running stack's name, when the stack has this service running.
    async fn stack(&self, target: &str, action: Action) -> Result<(Engine, String), ControlError> {
        let no_way = |reason: String| ControlError::NoWay {
            action: action.word(),
            target: target.to_string(),
            env: env_name(target),
            verb: action.verb(),
            reason,
        };
        let name = crate::stack::current::stack_name(None, &self.state_dir)
            .map_err(|e| no_way(crate::runtime::first_line(&e.to_string())))?;
        let engine = Engine::connect()
            .await
            .map_err(|e| no_way(crate::runtime::first_line(&e.to_string())))?;
        let states = engine
            .states(&name)
            .await
            .map_err(|e| no_way(crate::runtime::first_line(&e.to_string())))?;
        if !states.iter().any(|c| c.service == target) {
            return Err(no_way(format!("stack {name} has no {target} container")));
        }
        Ok((engine, name))
    }
}

/// `datanode` → `DATANODE`, `spark-master` → `SPARK_MASTER`.
fn env_name(target: &str) -> String {
    target.to_ascii_uppercase().replace('-', "_")
}

fn command(target: &str, action: Action) -> Option<String> {
    std::env::var(format!("LAB_CONTROL_{}_{}", env_name(target), action.verb()))
        .ok()
        .filter(|c| !c.trim().is_empty())
}

async fn run_command(target: &str, action: Action, cmd: &str) -> Result<(), ControlError> {
    let err = |detail: String| ControlError::Command {
        action: action.word(),
        target: target.to_string(),
        command: cmd.to_string(),
        detail,
    };
    tracing::info!(target, action = action.word(), cmd, "lesson control command");
    let out = tokio::process::Command::new("sh")
        .args(["-c", cmd])
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .map_err(|e| err(format!("could not run: {e}")))?;
    if out.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    Err(err(format!(
        "exited with {}: {}",
        out.status,
        stderr
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("(no output)")
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_names_are_upper_snake_case() {
        assert_eq!(env_name("datanode"), "DATANODE");
        assert_eq!(env_name("spark-master"), "SPARK_MASTER");
    }

    #[tokio::test]
    async fn a_failing_command_says_which_and_why() {
        let e = run_command("kafka", Action::Stop, "echo boom >&2; exit 3")
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("cannot stop the kafka") && e.contains("boom"), "{e}");
        run_command("kafka", Action::Start, "true").await.unwrap();
    }
}
