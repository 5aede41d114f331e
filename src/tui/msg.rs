//! Everything that can change the monitor's state ([`Msg`]) and every effect it asks for ([`Cmd`]).

use crossterm::event::{KeyEvent, MouseEvent};

use crate::probes::ServiceSnapshot;

#[derive(Debug, Clone)]
pub enum Msg {
    Key(KeyEvent),
    Mouse(MouseEvent),
    /// The terminal's new width.
    Resize(u16),
    Probe(Box<ServiceSnapshot>),
    /// A finished action: a message for the footer, or what went wrong.
    ActionDone(Result<String, String>),
    /// New lines of the followed log files.
    Logs(Vec<crate::tui::logs::LogLine>),
    /// Ctrl-C or SIGTERM outside the terminal's raw mode.
    Quit,
}

/// Effects `update` asks the loop to run (off the UI thread; results come back as `Msg::ActionDone`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cmd {
    TriggerDag(String),
    SetPaused { dag_id: String, paused: bool },
    ClearFailed { dag_id: String, dag_run_id: String },
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
        }
    }
}
