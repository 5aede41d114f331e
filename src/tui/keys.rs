//! The key table: one list feeds the `?` help overlay and the footer hints, so they cannot drift
//! from each other. `App::update` implements these bindings.

use super::views::tabs::View;

/// One binding as shown to the user.
#[derive(Debug, Clone, Copy)]
pub struct KeyHelp {
    pub keys: &'static str,
    pub action: &'static str,
    /// `None`: works everywhere.
    pub view: Option<View>,
    /// Shown in the footer (the rest only in the help overlay).
    pub footer: bool,
}

const fn global(keys: &'static str, action: &'static str, footer: bool) -> KeyHelp {
    KeyHelp {
        keys,
        action,
        view: None,
        footer,
    }
}

const fn on(view: View, keys: &'static str, action: &'static str) -> KeyHelp {
    KeyHelp {
        keys,
        action,
        view: Some(view),
        footer: true,
    }
}

pub const KEYS: &[KeyHelp] = &[
    global("1-9", "switch view", true),
    global("Tab/S-Tab", "next / previous view", false),
    global("↑↓ j k", "move selection", false),
    global("PgUp PgDn g G", "page / first / last", false),
    global("← → h l", "switch pane", false),
    global("Enter", "drill in", false),
    global("Esc", "back / close", false),
    global("/", "filter the list", true),
    global(":", "command line", true),
    global("?", "help", true),
    global("q Ctrl-C", "quit", true),
    global("mouse", "click a tab or a row, scroll a list", false),
    global(
        "e",
        "run the embedded demo instead (offered when there is no Docker)",
        false,
    ),
    on(View::Overview, "u", "bring the stack up"),
    on(View::Stack, "u/U", "up all / the selected service and its dependencies"),
    on(View::Stack, "d/D", "down / down with volumes (asks)"),
    on(View::Stack, "s/S/r", "stop / start / restart the selected service"),
    on(View::Stack, "p", "pull the images"),
    on(View::Kafka, "Enter", "partition lag of the group"),
    on(View::Kafka, "s", "sort partitions by lag / name"),
    on(View::Airflow, "t", "trigger the DAG"),
    on(View::Airflow, "p", "pause / unpause"),
    on(View::Airflow, "c", "clear failed tasks of the last run"),
    on(View::Logs, "f", "follow on / off"),
    on(View::Logs, "n", "next search match"),
];

/// The `:` commands, for the help overlay.
pub const COMMANDS: &[(&str, &str)] = &[
    (":trigger DAG", "trigger a DAG run (asks to confirm)"),
    (":pause DAG / :unpause DAG", "pause or unpause a DAG"),
    (":clear DAG RUN", "clear the failed tasks of a run"),
    (":up [SERVICE…]", "bring the stack (or these services) up"),
    (":down [--volumes]", "remove the stack (asks; --volumes: its data too)"),
    (":stop / :start / :restart SVC", "one service of the stack"),
    (":pull", "pull the stack's images again"),
    (
        ":produce [--rate N] [--data P]",
        "run the producer in this monitor (sample by default)",
    ),
    (":transform / :consume", "run that stage in this monitor"),
    (":stop STAGE", "stop a stage run here (it commits what is durable)"),
    (
        ":lesson NAME",
        "run a fault lesson (consumer-lag, poison-messages, broker-restart, datanode-down, slow-batch)",
    ),
    (":view NAME", "open a view (overview, pipeline, kafka, …)"),
    (":q", "quit"),
];

/// Footer hints for `view`: its own keys first, then the global ones.
pub fn footer(view: View) -> impl Iterator<Item = &'static KeyHelp> {
    KEYS.iter()
        .filter(move |k| k.view == Some(view))
        .chain(KEYS.iter().filter(|k| k.view.is_none() && k.footer))
}
