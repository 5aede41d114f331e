//! The terminal and the event loop: input, probe snapshots, log lines and action results arrive on
//! one channel; the loop applies each to the [`App`], runs the actions it asks for as tasks, and
//! draws only when something changed (an idle monitor draws nothing).

use std::path::PathBuf;

use crossterm::event::{DisableMouseCapture, EnableMouseCapture, Event, EventStream};
use futures::StreamExt;
use ratatui::Terminal;
use ratatui::backend::Backend;
use tokio::sync::mpsc;

use crate::config::LabConfig;
use tokio_util::sync::CancellationToken;

use super::TuiError;
use super::actions::{self, StackContext};
use super::app::App;
use super::embedded::EmbeddedRunner;
use super::msg::{Cmd, Msg};
use super::stack_panel::StackPanel;
use super::stages::{StageContext, StageKind, StageRunner, StageStart};
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

/// Everything the monitor needs to start.
pub struct Setup {
    pub targets: ProbeTargets,
    pub intervals: Intervals,
    pub log_dir: PathBuf,
    pub stack: StackContext,
    pub panel: StackPanel,
    /// Where stages started from the monitor read and write.
    pub stages: StageContext,
    /// Resolves the endpoints again (after `up`/`down` rewrote them); `None` keeps the old ones.
    pub reload: Reload,
    /// What `:lesson` runs against.
    pub lessons: LabConfig,
    /// The embedded lab `e` (or `lab demo`) starts.
    pub embedded: crate::embedded_lab::EmbeddedSpec,
    /// Start the embedded lab at once (`lab demo`) instead of watching the configured services.
    pub start_embedded: bool,
    /// `[tui.keys]` and `[tui.theme]`, checked.
    pub keymap: super::keys::Keymap,
    pub theme: Theme,
}

/// Resolves the configuration again: the probes' targets and the stages' endpoints.
pub type Reload = Box<dyn Fn() -> Option<(ProbeTargets, StageContext)> + Send>;

/// How long quitting waits for the monitor's stages to commit what is durable and stop.
const STAGES_STOP_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// Opens the monitor on the real terminal until the user quits; everything it started (stages, a
/// lesson, the embedded lab) has stopped when this returns.
pub async fn run(setup: Setup) -> Result<(), TuiError> {
    let cancel = CancellationToken::new();
    let (tx, rx) = mpsc::channel::<Msg>(256);
    let (probes, airflow) = ProbeSupervisor::start(&setup.targets, setup.intervals, tx.clone(), &cancel)?;
    let mut tasks = Vec::new();
    let mut log_dirs = vec![setup.log_dir];
    if let Some(d) = std::env::var_os("LAB_SERVICES_DIR") {
        log_dirs.push(PathBuf::from(d));
    }
    tasks.push(tokio::spawn(super::logs::follow(log_dirs, tx.clone(), cancel.clone())));
    tasks.push(tokio::spawn(read_input(tx.clone(), cancel.clone())));
    tasks.push(tokio::spawn(quit_on_signal(tx.clone(), cancel.clone())));
    tasks.push(tokio::spawn(first_run_check(setup.stack.clone(), tx.clone())));
    tasks.push(tokio::spawn(super::container_logs::follow(
        setup.panel.name.clone(),
        tx.clone(),
        cancel.clone(),
    )));

    let terminal = ratatui::try_init()?;
    let _restore = RestoreGuard;
    crossterm::execute!(std::io::stdout(), EnableMouseCapture)?;
    let mut terminal = terminal;
    let mut app = App::new(setup.theme);
    app.keymap = setup.keymap;
    app.alerts = setup.lessons.alerts.clone();
    app.width = terminal.size()?.width;
    app.stack = setup.panel;
    let effects_tx = tx.clone();
    let mut effects = Effects {
        airflow,
        stack: setup.stack,
        stages: StageRunner::new(setup.stages, tx.clone()),
        tx,
        probes: Some(probes),
        reload: setup.reload,
        lessons: Some(setup.lessons),
        lesson: None,
        embedded: EmbeddedRunner::new(effects_tx),
        embedded_spec: Some(setup.embedded),
    };
    if setup.start_embedded {
        for cmd in app.start_embedded() {
            effects.run(cmd);
        }
    }
    let watched = cancel.child_token();
    let responsiveness = tokio::spawn(super::responsiveness::watch(watched.clone()));
    let result = event_loop(&mut terminal, app, rx, &mut effects).await;
    watched.cancel();
    match responsiveness.await {
        Ok(delays) => super::responsiveness::log(&delays),
        Err(e) => tracing::debug!(error = %e, "the responsiveness watcher failed"),
    }
    effects.finish().await;
    cancel.cancel();
    for t in tasks {
        t.abort();
    }
    result
}

/// `lab doctor`'s checks, once, for the banner.
async fn first_run_check(stack: StackContext, tx: mpsc::Sender<Msg>) {
    let report = crate::doctor::diagnose(stack.path.clone(), &stack.state_dir).await;
    if tx.send(Msg::Doctor(Box::new(report))).await.is_err() {
        tracing::debug!("the monitor stopped before the first-run check finished");
    }
}

/// The probe tasks, restartable with new endpoints.
struct ProbeSupervisor {
    /// What the probes currently read.
    targets: ProbeTargets,
    intervals: Intervals,
    tx: mpsc::Sender<Msg>,
    /// Cancels this generation of probe tasks (a child of the monitor's token).
    cancel: CancellationToken,
    parent: CancellationToken,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl ProbeSupervisor {
    fn start(
        targets: &ProbeTargets,
        intervals: Intervals,
        tx: mpsc::Sender<Msg>,
        parent: &CancellationToken,
    ) -> Result<(Self, AirflowProbe), TuiError> {
        let mut s = Self {
            targets: targets.clone(),
            intervals,
            tx,
            cancel: parent.child_token(),
            parent: parent.clone(),
            tasks: Vec::new(),
        };
        let airflow = s.spawn(targets)?;
        Ok((s, airflow))
    }

    fn spawn(&mut self, targets: &ProbeTargets) -> Result<AirflowProbe, TuiError> {
        let probes = Probes::new(targets)?;
        let airflow = probes.airflow.clone();
        let (snap_tx, mut snap_rx) = mpsc::channel(64);
        self.tasks = scheduler::spawn(probes, self.intervals, &snap_tx, &self.cancel);
        let forward = self.tx.clone();
        self.tasks.push(tokio::spawn(async move {
            while let Some(s) = snap_rx.recv().await {
                if forward.send(Msg::Probe(Box::new(s))).await.is_err() {
                    break;
                }
            }
        }));
        Ok(airflow)
    }

    /// Stops the current probes and starts new ones on `targets`.
    fn restart(&mut self, targets: &ProbeTargets) -> Result<AirflowProbe, TuiError> {
        self.cancel.cancel();
        for t in self.tasks.drain(..) {
            t.abort();
        }
        self.cancel = self.parent.child_token();
        self.targets = targets.clone();
        self.spawn(targets)
    }
}

/// Runs what `App::update` asks for, off the UI thread.
pub struct Effects {
    pub airflow: AirflowProbe,
    pub stack: StackContext,
    pub tx: mpsc::Sender<Msg>,
    stages: StageRunner<Msg>,
    probes: Option<ProbeSupervisor>,
    reload: Reload,
    lessons: Option<LabConfig>,
    /// The running `:lesson`: its stop token and task, so quitting the monitor repairs it first.
    lesson: Option<(CancellationToken, tokio::task::JoinHandle<()>)>,
    embedded: EmbeddedRunner<Msg>,
    /// What `Cmd::StartEmbedded` starts (`None`: the monitor cannot start one).
    embedded_spec: Option<crate::embedded_lab::EmbeddedSpec>,
}

/// Where `:save` without a path writes, under the state dir (not under `logs/`: the Logs view
/// follows that directory and would show the saved file as one more source).
pub const SAVED_LOGS_DIR: &str = "saved-logs";

/// Writes `saved` to its path, or to a new file in `default_dir`; never over an existing file.
/// The file is private to its owner (0600): a service's log can carry what the lab keeps private.
pub fn save_logs(saved: &super::app::SavedLogs, default_dir: &std::path::Path) -> Result<String, String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let path = match &saved.path {
        Some(p) => p.clone(),
        None => {
            let stamp = chrono::Local::now().format("%Y%m%d-%H%M%S");
            default_dir.join(format!("{}-{stamp}.log", saved.name))
        }
    };
    let fail = |what: &str, e: std::io::Error| {
        format!(
            "cannot save the logs: {what} {}: {e} (give another path: :save PATH)",
            path.display()
        )
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| fail("create the directory of", e))?;
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .map_err(|e| fail("create", e))?;
    file.write_all(saved.text.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| fail("write", e))?;
    Ok(format!("saved {} log lines to {}", saved.lines, path.display()))
}

/// How long quitting the monitor waits for a cancelled lesson to start again what it stopped.
const LESSON_REPAIR_WAIT: std::time::Duration = std::time::Duration::from_secs(90);

impl Effects {
    /// Stops everything the monitor started, in order: the lesson (it repairs what it broke), the
    /// stages (they commit what is durable), then the embedded lab (broker, throwaway database).
    pub async fn finish(&mut self) {
        self.finish_lesson().await;
        self.stages.stop_all(STAGES_STOP_WAIT).await;
        self.embedded.shutdown().await;
    }

    /// Stops a running lesson and waits (a bounded time) for its repair: a lesson never leaves a
    /// service stopped because the monitor quit.
    async fn finish_lesson(&mut self) {
        let Some((cancel, task)) = self.lesson.take() else {
            return;
        };
        cancel.cancel();
        if tokio::time::timeout(LESSON_REPAIR_WAIT, task).await.is_err() {
            tracing::warn!("the cancelled lesson did not finish its repair in time");
        }
    }

    /// Effects without probes to restart (tests drive the loop with their own messages).
    #[must_use]
    pub fn detached(airflow: AirflowProbe, stack: StackContext, stages: StageContext, tx: mpsc::Sender<Msg>) -> Self {
        Self {
            airflow,
            stack,
            stages: StageRunner::new(stages, tx.clone()),
            embedded: EmbeddedRunner::new(tx.clone()),
            tx,
            probes: None,
            reload: Box::new(|| None),
            lessons: None,
            lesson: None,
            embedded_spec: None,
        }
    }

    /// An immediate outcome, for the footer.
    fn report(&self, result: Result<String, String>) {
        if let Err(e) = self.tx.try_send(Msg::ActionDone(result)) {
            tracing::warn!(error = %e, "the monitor's queue is full; an action's outcome was dropped");
        }
    }

    /// Runs one effect (spawned, or at once for the in-monitor stages' start and stop).
    pub fn run(&mut self, cmd: Cmd) {
        match cmd {
            Cmd::Stack(c) => {
                tokio::spawn(actions::run_stack(c, self.stack.clone(), self.tx.clone()));
            }
            Cmd::StartStage { kind, how } => {
                let result = self.stages.start(kind, &how);
                self.report(result);
            }
            Cmd::StopStage(kind) => {
                let result = self.stages.stop(kind);
                self.report(result);
            }
            Cmd::Lesson(lesson) => match self.lessons.clone() {
                Some(_) if self.lesson.as_ref().is_some_and(|(_, task)| !task.is_finished()) => {
                    self.report(Err("a lesson is already running: one at a time".into()));
                }
                Some(config) => {
                    let cancel = CancellationToken::new();
                    let place = match self.embedded.lab() {
                        Some(lab) => LessonPlace::Embedded {
                            lab: lab.clone(),
                            config: lab.lesson_config(&config),
                            stopping: self.stages.cancel_all(),
                        },
                        None => LessonPlace::Services(config),
                    };
                    let task = tokio::spawn(run_lesson(lesson, place, self.tx.clone(), cancel.clone()));
                    self.lesson = Some((cancel, task));
                }
                None => self.report(Err("lessons need the lab's configuration (run `lab tui`)".into())),
            },
            Cmd::StartEmbedded => match self.embedded_spec.clone() {
                Some(spec) => self.embedded.start(spec),
                None => self.report(Err("this monitor cannot start an embedded lab (run `lab demo`)".into())),
            },
            Cmd::UseEmbedded => {
                let Some(lab) = self.embedded.adopt() else {
                    return;
                };
                self.stages.config = lab.stage_context();
                if let Some(probes) = self.probes.as_mut() {
                    let targets = lab.probe_targets(&probes.targets);
                    if let Err(e) = probes.restart(&targets) {
                        tracing::warn!(error = %e, "cannot point the probes at the embedded lab");
                    }
                }
            }
            Cmd::Batch => {
                let result = self.embedded.batch_now();
                self.report(result);
            }
            Cmd::StartEmbeddedStages => {
                // Readers first, so that nothing the producer sends waits for one.
                for kind in [StageKind::Consumer, StageKind::Transform, StageKind::Producer] {
                    if let Err(e) = self.stages.start(kind, &StageStart::default()) {
                        self.report(Err(e));
                    }
                }
            }
            Cmd::Data(cmd) => {
                let target = super::data::DataTarget {
                    brokers: self.stages.config.brokers.clone(),
                    dlq: self.stages.config.topics().dlq(),
                };
                tokio::spawn(super::data::run(cmd, target, self.tx.clone()));
            }
            Cmd::SaveLogs(saved) => {
                let tx = self.tx.clone();
                let dir = self.stack.state_dir.join(SAVED_LOGS_DIR);
                tokio::spawn(async move {
                    let result = tokio::task::spawn_blocking(move || save_logs(&saved, &dir))
                        .await
                        .unwrap_or_else(|e| Err(format!("saving the logs failed: {e}")));
                    if tx.send(Msg::ActionDone(result)).await.is_err() {
                        tracing::debug!("the monitor ended before the logs were saved");
                    }
                });
            }
            Cmd::ReloadEndpoints if self.embedded.lab().is_some() => {
                // The monitor watches its embedded lab; a stack's endpoints do not replace it.
            }
            Cmd::ReloadEndpoints => {
                let Some((targets, stages)) = (self.reload)() else {
                    return;
                };
                self.stages.config = stages;
                let Some(probes) = self.probes.as_mut() else {
                    return;
                };
                match probes.restart(&targets) {
                    Ok(airflow) => self.airflow = airflow,
                    Err(e) => tracing::warn!(error = %e, "cannot restart the probes with the new endpoints"),
                }
            }
            _ if self.embedded.lab().is_some() => {
                self.report(Err(
                    "the embedded lab has no Airflow: :batch runs its batch (`lab up` brings Airflow)".into(),
                ));
            }
            other => {
                tokio::spawn(actions::run_airflow(other, self.airflow.clone(), self.tx.clone()));
            }
        }
    }
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

/// SIGINT/SIGTERM from outside (raw mode turns the terminal's own Ctrl-C into a key), and SIGHUP:
/// the terminal was closed. Each quits as `q` does, so the embedded lab still stops its stages and
/// removes its PostgreSQL and files (killed by the hangup's default action, it left its PostgreSQL
/// running).
async fn quit_on_signal(tx: mpsc::Sender<Msg>, cancel: CancellationToken) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut term), Ok(mut int), Ok(mut hup)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
            signal(SignalKind::hangup()),
        ) else {
            return;
        };
        tokio::select! {
            () = cancel.cancelled() => return,
            _ = term.recv() => {}
            _ = int.recv() => {}
            _ = hup.recv() => {}
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
    effects: &mut Effects,
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
        app.now = super::app::Clock::now();
        for cmd in app.update(msg) {
            effects.run(cmd);
        }
        if app.quit {
            break;
        }
    }
    Ok(())
}

/// Where a `:lesson` runs.
enum LessonPlace {
    /// On the configured services (a stack).
    Services(LabConfig),
    /// In the monitor's embedded lab: it borrows the broker and the pipeline (the monitor's
    /// stages stop while it runs and start again after it).
    Embedded {
        lab: std::sync::Arc<crate::embedded_lab::EmbeddedLab>,
        config: LabConfig,
        /// The monitor's stages, stopping: the lesson starts once they have.
        stopping: Vec<tokio::task::JoinHandle<()>>,
    },
}

/// Runs a lesson, forwarding its narration to the footer.
async fn run_lesson(
    lesson: crate::lesson::Lesson,
    place: LessonPlace,
    tx: mpsc::Sender<Msg>,
    cancel: CancellationToken,
) {
    let (events_tx, mut events) = mpsc::unbounded_channel();
    let forward = {
        let tx = tx.clone();
        tokio::spawn(async move {
            while let Some(event) = events.recv().await {
                if tx.send(Msg::Lesson(event)).await.is_err() {
                    break;
                }
            }
        })
    };
    let narrator = crate::lesson::Narrator::new(events_tx);
    let ctx = match place {
        LessonPlace::Services(config) => crate::lesson::LessonContext::on_services(config, narrator, cancel),
        LessonPlace::Embedded { lab, config, stopping } => {
            super::stages::wait_stopped(stopping, STAGES_STOP_WAIT).await;
            crate::lesson::LessonContext::in_embedded_lab(config, lab.lesson_stages(), lab.broker(), narrator, cancel)
        }
    };
    let result = crate::lesson::run(lesson, &ctx).await;
    drop(ctx);
    if forward.await.is_err() {
        tracing::debug!("the lesson narration forwarder panicked");
    }
    let done = match result {
        Ok(report) if report.recovered => Ok(format!("lesson {} done in {:.0} s", lesson.name(), report.elapsed_s)),
        Ok(_) => Err(format!("lesson {}: the repair was not confirmed", lesson.name())),
        Err(e) => Err(e.to_string()),
    };
    if tx.send(Msg::LessonDone(done)).await.is_err() {
        tracing::debug!("the monitor closed before the lesson ended");
    }
}
