//! The terminal and the event loop: input, probe snapshots, log lines and action results arrive on
//! one channel; the loop applies each to the [`App`], runs the actions it asks for as tasks, and
//! draws only when something changed (an idle monitor draws nothing).

use std::path::PathBuf;

use crossterm::event::{DisableMouseCapture, EnableMouseCapture, Event, EventStream};
use futures::StreamExt;
use ratatui::Terminal;
use ratatui::backend::Backend;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::TuiError;
use super::app::App;
use super::msg::{Cmd, Msg};
use super::theme::Theme;
use crate::probes::airflow::AirflowProbe;
use crate::probes::scheduler::{self, Intervals};
use crate::probes::{ProbeTargets, Probes};

/// Restores the terminal when dropped: on return, on error and while unwinding from a panic
/// (`ratatui::init` also installs a panic hook that restores before the message is printed).
struct RestoreGuard;

impl Drop for RestoreGuard {
    fn drop(&mut self) {
        if let Err(e) = crossterm::execute!(std::io::stdout(), DisableMouseCapture) {
            tracing::debug!(error = %e, "could not turn mouse capture off");
        }
        ratatui::restore();
    }
}

/// Opens the monitor on the real terminal until the user quits.
pub async fn run(targets: ProbeTargets, intervals: Intervals, log_dir: PathBuf) -> Result<(), TuiError> {
    let probes = Probes::new(&targets)?;
    let actions = probes.airflow.clone();
    let cancel = CancellationToken::new();
    let (tx, rx) = mpsc::channel::<Msg>(256);

    let (snap_tx, mut snap_rx) = mpsc::channel(64);
    let mut tasks = scheduler::spawn(probes, intervals, &snap_tx, &cancel);
    drop(snap_tx);
    let forward = tx.clone();
    tasks.push(tokio::spawn(async move {
        while let Some(s) = snap_rx.recv().await {
            if forward.send(Msg::Probe(Box::new(s))).await.is_err() {
                break;
            }
        }
    }));
    let mut log_dirs = vec![log_dir];
    if let Some(d) = std::env::var_os("LAB_SERVICES_DIR") {
        log_dirs.push(PathBuf::from(d));
    }
    tasks.push(tokio::spawn(super::logs::follow(log_dirs, tx.clone(), cancel.clone())));
    tasks.push(tokio::spawn(read_input(tx.clone(), cancel.clone())));
    tasks.push(tokio::spawn(quit_on_signal(tx.clone(), cancel.clone())));

    let terminal = ratatui::try_init()?;
    let _restore = RestoreGuard;
    crossterm::execute!(std::io::stdout(), EnableMouseCapture)?;
    let mut terminal = terminal;
    let mut app = App::new(Theme::from_env());
    app.width = terminal.size()?.width;
    let result = event_loop(&mut terminal, app, rx, tx, actions).await;
    cancel.cancel();
    for t in tasks {
        t.abort();
    }
    result
}

/// Terminal input as messages.
async fn read_input(tx: mpsc::Sender<Msg>, cancel: CancellationToken) {
    let mut events = EventStream::new();
    loop {
        let ev = tokio::select! {
            () = cancel.cancelled() => return,
            ev = events.next() => ev,
        };
        let msg = match ev {
            Some(Ok(Event::Key(k))) => Msg::Key(k),
            Some(Ok(Event::Mouse(m))) => Msg::Mouse(m),
            Some(Ok(Event::Resize(w, _))) => Msg::Resize(w),
            Some(Ok(_)) => continue,
            Some(Err(e)) => {
                tracing::warn!(error = %e, "terminal input failed");
                Msg::Quit
            }
            None => Msg::Quit,
        };
        if tx.send(msg).await.is_err() {
            return;
        }
    }
}

/// SIGINT/SIGTERM from outside (raw mode turns the terminal's own Ctrl-C into a key).
async fn quit_on_signal(tx: mpsc::Sender<Msg>, cancel: CancellationToken) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
            return;
        };
        tokio::select! {
            () = cancel.cancelled() => return,
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    }
    #[cfg(not(unix))]
    tokio::select! {
        () = cancel.cancelled() => return,
        _ = tokio::signal::ctrl_c() => {}
    }
    if tx.send(Msg::Quit).await.is_err() {
        tracing::debug!("the monitor had already stopped");
    }
}

/// Draw → wait for a message → update, until the app quits. Generic over the backend so tests
/// can drive it with `TestBackend`.
pub async fn event_loop<B: Backend>(
    terminal: &mut Terminal<B>,
    mut app: App,
    mut rx: mpsc::Receiver<Msg>,
    tx: mpsc::Sender<Msg>,
    actions: AirflowProbe,
) -> Result<(), TuiError>
where
    B::Error: Into<std::io::Error>,
{
    loop {
        if app.dirty {
            terminal.draw(|f| f.render_widget(&app, f.area())).map_err(Into::into)?;
            app.dirty = false;
        }
        let Some(msg) = rx.recv().await else { break };
        for cmd in app.update(msg) {
            tokio::spawn(run_action(cmd, actions.clone(), tx.clone()));
        }
        if app.quit {
            break;
        }
    }
    Ok(())
}

/// Runs one action against Airflow and reports the outcome.
async fn run_action(cmd: Cmd, airflow: AirflowProbe, tx: mpsc::Sender<Msg>) {
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
