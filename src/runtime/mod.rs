//! Running stacks: the Docker engine ([`docker`], the only module that uses bollard), the typed
//! progress events it emits ([`events`]), their command-line rendering ([`render`]) and the
//! `lab up|down|ps|logs|stop|start|restart|compose` commands ([`cli`]).

pub mod docker;
pub mod events;
pub mod ports;
pub mod render;
pub mod stack_commands;

/// The first line of a (multi-line) error message, for a banner or a status tile.
#[must_use]
pub fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or_default().to_string()
}
