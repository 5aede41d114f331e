//! Everything that can change the monitor's state ([`Msg`]) and every effect it asks for ([`Cmd`]).

use crossterm::event::{KeyEvent, MouseEvent};

use super::embedded::EmbeddedEvent;
use super::logs::LogBatch;
use super::stages::StageEvent;
use crate::doctor::DoctorReport;
use crate::pipeline::stage::{StageKind, StageStart};
use crate::probes::ServiceSnapshot;
use crate::runtime::events::StackEvent;

#[derive(Debug, Clone)]
pub enum Msg {
    Key(KeyEvent),
    Mouse(MouseEvent),
    /// The terminal's new width.
    Resize(u16),
    Probe(Box<ServiceSnapshot>),
    /// A finished action: a message for the footer, or what went wrong.
    ActionDone(Result<String, String>),
    /// New lines of the followed log files and containers, and what the followers lost.
    Logs(LogBatch),
    /// Progress of the running stack operation (the runtime's own events).
    Stack(StackEvent),
    /// The stack operation finished: a message for the footer, or the full error.
    StackDone {
        cmd: StackCmd,
        result: Result<String, String>,
    },
    /// A second passed while a stack operation runs (health-wait countdowns).
    Tick,
    /// A stage running in this monitor: its counters, or its end.
    Stage(StageEvent),
    /// The first-run check finished.
    Doctor(Box<DoctorReport>),
    /// A step or a signal of the running fault lesson (`:lesson NAME`).
    Lesson(crate::lesson::LessonEvent),
    /// The lesson ended: its summary, or why it failed.
    LessonDone(Result<String, String>),
    /// The embedded lab started (or not), or its batch ran.
    Embedded(EmbeddedEvent),
    /// What the broker answered a data request (records, dead letters, a plan).
    Data(super::data::DataEvent),
    /// Ctrl-C or SIGTERM outside the terminal's raw mode.
    Quit,
}

impl From<EmbeddedEvent> for Msg {
    fn from(event: EmbeddedEvent) -> Self {
        Msg::Embedded(event)
    }
}

impl From<LogBatch> for Msg {
    fn from(batch: LogBatch) -> Self {
        Msg::Logs(batch)
    }
}

impl From<StageEvent> for Msg {
    fn from(event: StageEvent) -> Self {
        Msg::Stage(event)
    }
}

/// What the Stack view can ask of the Docker runtime: the same calls as `lab up|down|stop|…`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StackCmd {
    /// Everything (empty), or these services with what they depend on.
    Up {
        only: Vec<String>,
    },
    Down {
        volumes: bool,
    },
    Stop(String),
    Start(String),
    Restart(String),
    /// Pull every image of the stack again.
    Pull,
}

impl StackCmd {
    /// The command's name, as in the CLI.
    #[must_use]
    pub fn verb(&self) -> &'static str {
        match self {
            StackCmd::Up { .. } => "up",
            StackCmd::Down { .. } => "down",
            StackCmd::Stop(_) => "stop",
            StackCmd::Start(_) => "start",
            StackCmd::Restart(_) => "restart",
            StackCmd::Pull => "pull",
        }
    }

    /// What is happening while it runs.
    #[must_use]
    pub fn describe_progress(&self) -> String {
        match self {
            StackCmd::Up { only } if only.is_empty() => "bringing the stack up".into(),
            StackCmd::Up { only } => format!("bringing up {} and its dependencies", only.join(", ")),
            StackCmd::Down { volumes: false } => "bringing the stack down".into(),
            StackCmd::Down { volumes: true } => "removing the stack and its volumes".into(),
            StackCmd::Stop(s) => format!("stopping {s}"),
            StackCmd::Start(s) => format!("starting {s}"),
            StackCmd::Restart(s) => format!("restarting {s}"),
            StackCmd::Pull => "pulling the stack's images".into(),
        }
    }
}

/// Effects `update` asks the loop to run (off the UI thread; results come back as `Msg::ActionDone`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cmd {
    TriggerDag(String),
    SetPaused {
        dag_id: String,
        paused: bool,
    },
    ClearFailed {
        dag_id: String,
        dag_run_id: String,
    },
    Stack(StackCmd),
    StartStage {
        kind: StageKind,
        how: StageStart,
    },
    StopStage(StageKind),
    /// Run a fault lesson in the background, narrating into the footer.
    Lesson(crate::lesson::Lesson),
    /// `lab up`/`down` rewrote the endpoints: point the probes at them again.
    ReloadEndpoints,
    /// Start the embedded lab (no Docker): in-process broker, local raw zone, serving store.
    StartEmbedded,
    /// The embedded lab runs: point the probes and the stages at it.
    UseEmbedded,
    /// Run the embedded lab's batch now.
    Batch,
    /// Start the embedded lab's stages (consumer, transform, producer), saying only what fails:
    /// the footer keeps what the lab or the lesson said.
    StartEmbeddedStages,
    /// Read or change the broker's data (records, dead letters, offsets).
    Data(super::data::DataCmd),
    /// Write log lines to a file (`:save`).
    SaveLogs(Box<super::app::SavedLogs>),
}

impl Cmd {
    /// The question the confirmation dialog asks.
    #[must_use]
    pub fn describe(&self) -> String {
        match self {
            Cmd::TriggerDag(d) => format!("Trigger a run of DAG {d}?"),
            Cmd::SetPaused { dag_id, paused: true } => format!("Pause DAG {dag_id}?"),
            Cmd::SetPaused { dag_id, paused: false } => format!("Unpause DAG {dag_id}?"),
            Cmd::ClearFailed { dag_id, dag_run_id } => {
                format!("Clear the failed tasks of {dag_id} run {dag_run_id} (they run again)?")
            }
            Cmd::Stack(StackCmd::Down { volumes: false }) => {
                "Remove the stack's containers and network? (volumes, i.e. its data, are kept)".into()
            }
            Cmd::Stack(StackCmd::Down { volumes: true }) => {
                "Remove the stack's containers, network AND volumes (all its data)?".into()
            }
            Cmd::Stack(other) => format!("{}?", other.describe_progress()),
            Cmd::StartStage { kind, .. } => format!("Start the {} here?", kind.name()),
            Cmd::StopStage(kind) => format!("Stop the {}?", kind.name()),
            Cmd::Lesson(lesson) => format!("Run the {} lesson (it breaks something on purpose)?", lesson.name()),
            Cmd::ReloadEndpoints => "Reload the endpoints?".into(),
            Cmd::StartEmbedded => "Start the embedded lab?".into(),
            Cmd::UseEmbedded => "Use the embedded lab?".into(),
            Cmd::Batch => "Run the embedded lab's batch now?".into(),
            Cmd::StartEmbeddedStages => "Start the embedded lab's stages?".into(),
            Cmd::Data(d) => d.describe(),
            Cmd::SaveLogs(s) => format!("Save {} log lines?", s.lines),
        }
    }
}
