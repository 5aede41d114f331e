//! The live monitor (ratatui + crossterm).
//!
//! State, update and rendering are separate: [`app::App`] is the only state and
//! [`app::App::update`] its only mutation point (keys, mouse, probe snapshots and action results
//! all arrive as [`msg::Msg`]); `views/` render `&App` without mutating it; [`run`] owns the
//! terminal, merges input and probe updates on one channel, runs actions as tasks and redraws only
//! when something changed.

pub mod actions;
pub mod app;
pub mod command;
pub mod container_logs;
pub mod data;
pub mod embedded;
pub mod explain;
pub mod keys;
pub mod launch;
pub mod log_buffer;
pub mod logs;
pub mod msg;
pub mod responsiveness;
pub mod run;
pub mod stack_panel;
pub mod stages;
pub mod theme;
pub mod trends;
pub mod views;

use crate::probes::ProbeError;

#[derive(Debug, thiserror::Error)]
pub enum TuiError {
    #[error(transparent)]
    Probe(#[from] ProbeError),
    #[error(
        "cannot use the terminal: {0}\nrun `lab tui` in an interactive terminal, or use `lab status` for a one-shot report"
    )]
    Terminal(#[from] std::io::Error),
    #[error("lab.toml [tui.keys]: {0}\nfix that entry of lab.toml, or remove it to keep the built-in keys")]
    Keys(#[from] keys::KeymapError),
    #[error("lab.toml [tui.theme]: {0}\nfix that entry of lab.toml, or remove it to keep the built-in colours")]
    Theme(#[from] theme::ThemeError),
}
