//! The effects the monitor asks for, run as tasks off the UI thread: Airflow actions through the
//! probe's client, and stack operations through the same runtime calls as `lab up|down|stop|…`
//! (their [`StackEvent`](crate::runtime::events::StackEvent)s stream back as `Msg::Stack`).

use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::mpsc;

use super::msg::{Cmd, Msg, StackCmd};
use crate::probes::airflow::AirflowProbe;
use crate::runtime::docker::{Engine, Error};
use crate::runtime::events::Events;
use crate::runtime::stack_commands;
use crate::stack::{SelectionRequest, secrets};

/// Where the stack operations find their stack file and state dir.
#[derive(Debug, Clone)]
pub struct StackContext {
    /// The stack file, or why there is none.
    pub path: Result<PathBuf, String>,
    pub state_dir: PathBuf,
}

/// Runs one Airflow action and reports the outcome as `Msg::ActionDone`.
pub async fn run_airflow(cmd: Cmd, airflow: AirflowProbe, tx: mpsc::Sender<Msg>) {
    let result = match &cmd {
        Cmd::TriggerDag(dag) => airflow
            .trigger(dag)
            .await
            .map(|run| format!("triggered {dag}: run {run}")),
        Cmd::SetPaused { dag_id, paused } => airflow
            .set_paused(dag_id, *paused)
            .await
            .map(|()| format!("{dag_id} {}", if *paused { "paused" } else { "unpaused" })),
        Cmd::ClearFailed { dag_id, dag_run_id } => airflow
            .clear_failed(dag_id, dag_run_id)
            .await
            .map(|()| format!("cleared the failed tasks of {dag_id} {dag_run_id}")),
        Cmd::Stack(_)
        | Cmd::StartStage { .. }
        | Cmd::StopStage(_)
        | Cmd::Lesson(_)
        | Cmd::ReloadEndpoints
        | Cmd::StartEmbedded
        | Cmd::UseEmbedded
        | Cmd::Batch
        | Cmd::StartEmbeddedStages
        | Cmd::Data(_)
        | Cmd::SaveLogs(_) => return,
    };
    if let Err(e) = &result {
        tracing::warn!(error = %e, ?cmd, "action failed");
    }
    if tx
        .send(Msg::ActionDone(result.map_err(|e| e.to_string())))
        .await
        .is_err()
    {
        tracing::debug!(?cmd, "the monitor stopped before the action finished");
    }
}

/// Runs one stack operation: its events go to the monitor as they happen, a tick every second
/// keeps countdowns moving, and `Msg::StackDone` carries the outcome (the full error text on
/// failure: the failing check, the last log lines, the fix).
pub async fn run_stack(cmd: StackCmd, ctx: StackContext, tx: mpsc::Sender<Msg>) {
    let (event_tx, mut event_rx) = mpsc::unbounded_channel();
    let forward_tx = tx.clone();
    let forward = tokio::spawn(async move {
        while let Some(event) = event_rx.recv().await {
            if forward_tx.send(Msg::Stack(event)).await.is_err() {
                break;
            }
        }
    });
    let tick_tx = tx.clone();
    let ticker = tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(1));
        loop {
            every.tick().await;
            if tick_tx.send(Msg::Tick).await.is_err() {
                break;
            }
        }
    });
    let events = Events::new(event_tx);
    let result = execute(&cmd, &ctx, &events).await;
    drop(events);
    if let Err(e) = forward.await {
        tracing::debug!(error = %e, "event forwarder ended");
    }
    ticker.abort();
    match &result {
        Ok(text) => tracing::info!(?cmd, %text, "stack operation done"),
        Err(e) => tracing::warn!(?cmd, error = %e, "stack operation failed"),
    }
    let result = result.map_err(|e| e.to_string());
    if tx.send(Msg::StackDone { cmd, result }).await.is_err() {
        tracing::debug!("the monitor stopped before the stack operation finished");
    }
}

async fn execute(cmd: &StackCmd, ctx: &StackContext, events: &Events) -> Result<String, Error> {
    let path = ctx.path.clone().map_err(|reason| Error::NoStack { reason })?;
    let state_dir = &ctx.state_dir;
    let stack = crate::stack::current::load_stack(&path, state_dir, &crate::stack::Scale::default())?;
    let engine = Engine::connect().await?;
    Ok(match cmd {
        StackCmd::Up { only } => {
            let selection = stack.select(&SelectionRequest {
                only: only.clone(),
                profiles: Vec::new(),
            })?;
            let secret_values = secrets::ensure(state_dir, &stack.secret_names())?;
            crate::stack::current::remember_stack(state_dir, &path)?;
            let report = stack_commands::up_with_events(
                &engine,
                &selection,
                &secret_values,
                crate::runtime::docker::PullPolicy::Missing,
                state_dir,
                events,
            )
            .await?;
            format!("stack {} is up ({} services)", stack.name, report.services.len())
        }
        StackCmd::Down { volumes } => {
            let removed = engine.down(&stack.name, *volumes, events).await?;
            stack_commands::forget_endpoints(state_dir);
            format!("stack {} removed ({removed} resources)", stack.name)
        }
        StackCmd::Stop(service) => {
            engine.stop_service(&stack.name, service, events).await?;
            format!("{service} stopped")
        }
        StackCmd::Start(service) => {
            engine.start_service(&stack.name, service, events).await?;
            format!("{service} started")
        }
        StackCmd::Restart(service) => {
            engine.restart_service(&stack.name, service, events).await?;
            format!("{service} restarted")
        }
        StackCmd::Pull => {
            let selection = stack.select(&SelectionRequest::default())?;
            engine.pull_images(&selection, events).await?;
            format!("images of stack {} pulled", stack.name)
        }
    })
}
