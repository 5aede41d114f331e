//! The keymap: which key does what, in which view. One table that `App::update` dispatches through
//! and that the `?` help overlay and the footer hints are drawn from, so a binding cannot exist
//! in one and not the other (and a configurable keymap only has to replace this table).

use crossterm::event::KeyCode;

use super::views::tabs::View;

/// What a key does. `App::perform` carries each one out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Switch to the view of this digit (1-9).
    ShowView,
    NextView,
    PreviousView,
    Down,
    Up,
    PageDown,
    PageUp,
    First,
    Last,
    PreviousPane,
    NextPane,
    DrillIn,
    Back,
    Filter,
    CommandLine,
    Help,
    Quit,
    /// Without a Docker engine: start the embedded lab in this monitor.
    RunEmbedded,
    StackUp,
    StackUpSelected,
    StackDown,
    StackDownWithVolumes,
    StopSelected,
    StartSelected,
    RestartSelected,
    PullImages,
    SortPartitions,
    /// Kafka: the dead-letter topic grouped by reason.
    DeadLetters,
    /// Kafka: read the shown records or dead letters again.
    Refresh,
    /// Kafka's dead-letter list: replay the selected reason (shows the plan, asks y/n).
    ReplayReason,
    TriggerDag,
    TogglePause,
    ClearFailed,
    ToggleFollow,
    /// Logs: the next (newer) line matching the search, then the next source with one.
    NextMatch,
    /// Logs: the previous (older) matching line, then the previous source with one.
    PreviousMatch,
    /// Logs: only the lines matching the search, or every line with the matches highlighted.
    MatchingOnly,
}

/// One binding: its keys, how help shows them, what they do and where.
#[derive(Debug, Clone, Copy)]
pub struct Binding {
    pub keys: &'static [KeyCode],
    /// The keys as help shows them (`↑↓ j k`).
    pub shown: &'static str,
    pub action: Action,
    /// `None`: in every view (a view's own binding for the same key wins).
    pub view: Option<View>,
    pub help: &'static str,
    /// Shown in the footer (the rest only in the help overlay).
    pub footer: bool,
}

const fn global(
    keys: &'static [KeyCode],
    shown: &'static str,
    action: Action,
    help: &'static str,
    footer: bool,
) -> Binding {
    Binding {
        keys,
        shown,
        action,
        view: None,
        help,
        footer,
    }
}

const fn on(view: View, keys: &'static [KeyCode], shown: &'static str, action: Action, help: &'static str) -> Binding {
    Binding {
        keys,
        shown,
        action,
        view: Some(view),
        help,
        footer: true,
    }
}

use KeyCode::{BackTab, Char, Down, End, Enter, Esc, Home, Left, PageDown, PageUp, Right, Tab, Up};

const DIGITS: &[KeyCode] = &[
    Char('1'),
    Char('2'),
    Char('3'),
    Char('4'),
    Char('5'),
    Char('6'),
    Char('7'),
    Char('8'),
    Char('9'),
];

pub const KEYMAP: &[Binding] = &[
    global(DIGITS, "1-9", Action::ShowView, "switch view", true),
    global(&[Tab], "Tab", Action::NextView, "next view", false),
    global(&[BackTab], "S-Tab", Action::PreviousView, "previous view", false),
    global(&[Down, Char('j')], "↓ j", Action::Down, "move selection down", false),
    global(&[Up, Char('k')], "↑ k", Action::Up, "move selection up", false),
    global(&[PageDown], "PgDn", Action::PageDown, "page down", false),
    global(&[PageUp], "PgUp", Action::PageUp, "page up", false),
    global(&[Char('g'), Home], "g Home", Action::First, "first row", false),
    global(&[Char('G'), End], "G End", Action::Last, "last row", false),
    global(&[Left, Char('h')], "← h", Action::PreviousPane, "previous pane", false),
    global(&[Right, Char('l')], "→ l", Action::NextPane, "next pane", false),
    global(&[Enter], "Enter", Action::DrillIn, "drill in", false),
    global(&[Esc], "Esc", Action::Back, "back / close / clear the filter", false),
    global(&[Char('/')], "/", Action::Filter, "filter the list", true),
    global(&[Char(':')], ":", Action::CommandLine, "command line", true),
    global(&[Char('?')], "?", Action::Help, "help", true),
    global(&[Char('q')], "q Ctrl-C", Action::Quit, "quit", true),
    global(
        &[Char('e')],
        "e",
        Action::RunEmbedded,
        "start the embedded lab here (offered when there is no Docker)",
        false,
    ),
    on(View::Overview, &[Char('u')], "u", Action::StackUp, "bring the stack up"),
    on(View::Stack, &[Char('u')], "u", Action::StackUp, "up all"),
    on(
        View::Stack,
        &[Char('U')],
        "U",
        Action::StackUpSelected,
        "up selected (+ dependencies)",
    ),
    on(View::Stack, &[Char('d')], "d", Action::StackDown, "down (asks)"),
    on(
        View::Stack,
        &[Char('D')],
        "D",
        Action::StackDownWithVolumes,
        "down + volumes (asks)",
    ),
    on(View::Stack, &[Char('s')], "s", Action::StopSelected, "stop selected"),
    on(View::Stack, &[Char('S')], "S", Action::StartSelected, "start selected"),
    on(
        View::Stack,
        &[Char('r')],
        "r",
        Action::RestartSelected,
        "restart selected",
    ),
    on(View::Stack, &[Char('p')], "p", Action::PullImages, "pull images"),
    on(View::Kafka, &[Enter], "Enter", Action::DrillIn, "open: lag, records"),
    on(View::Kafka, &[Char('s')], "s", Action::SortPartitions, "sort lag"),
    on(
        View::Kafka,
        &[Char('d')],
        "d",
        Action::DeadLetters,
        "dead letters by reason",
    ),
    on(View::Kafka, &[Char('r')], "r", Action::Refresh, "read again"),
    on(View::Kafka, &[Char('R')], "R", Action::ReplayReason, "replay (asks)"),
    on(View::Airflow, &[Char('t')], "t", Action::TriggerDag, "trigger the DAG"),
    on(View::Airflow, &[Char('p')], "p", Action::TogglePause, "pause / unpause"),
    on(
        View::Airflow,
        &[Char('c')],
        "c",
        Action::ClearFailed,
        "clear failed tasks of the last run",
    ),
    on(View::Logs, &[Char('f')], "f", Action::ToggleFollow, "follow on / off"),
    on(
        View::Logs,
        &[Char('n')],
        "n",
        Action::NextMatch,
        "next match (newer, then the next source)",
    ),
    on(
        View::Logs,
        &[Char('N')],
        "N",
        Action::PreviousMatch,
        "previous match (older, then the previous source)",
    ),
    on(
        View::Logs,
        &[Char('m')],
        "m",
        Action::MatchingOnly,
        "only the matching lines / all",
    ),
];

/// What `code` does in `view`: the view's own binding first, then the global one.
#[must_use]
pub fn action(view: View, code: KeyCode) -> Option<Action> {
    let bound = |b: &&Binding| b.keys.contains(&code);
    KEYMAP
        .iter()
        .filter(|b| b.view == Some(view))
        .find(bound)
        .or_else(|| KEYMAP.iter().filter(|b| b.view.is_none()).find(bound))
        .map(|b| b.action)
}

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
    (":batch", "run the embedded lab's batch now (it also runs every 30 s)"),
    (
        ":lesson NAME",
        "run a fault lesson (consumer-lag, poison-messages, broker-restart, datanode-down, slow-batch)",
    ),
    (
        ":tail TOPIC [options]",
        "browse a topic's records, with lab kafka tail's options: -n N, --partition P, --offset O or --since T, --key K, --header N=V, --grep FIELD=VALUE",
    ),
    (":dlq", "the dead letters by reason (Enter: their records, R: replay)"),
    (
        ":reset GROUP --to-earliest|--to-latest|--to-datetime T|--shift-by N [--topic T[:P]]",
        "move an idle group's offsets: shows the plan and Kafka's own command, asks",
    ),
    (
        ":replay REASON",
        "send a reason's dead letters back once: shows the count, asks",
    ),
    (
        ":save [PATH]",
        "write the Logs view's source, or with a / search every matching line, to PATH (default: a new file under <state-dir>/saved-logs/)",
    ),
    (
        ":explain [on|off]",
        "a side panel with each action as the native tools do it (docker, airflow, kafka-consumer-groups.sh, hdfs)",
    ),
    (":view NAME", "open a view (overview, pipeline, kafka, …)"),
    (":q", "quit"),
];

/// Footer hints for `view`: its own keys first, then the global ones.
pub fn footer(view: View) -> impl Iterator<Item = &'static Binding> {
    KEYMAP
        .iter()
        .filter(move |k| k.view == Some(view))
        .chain(KEYMAP.iter().filter(|k| k.view.is_none() && k.footer))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn view_keys_reach_their_action_and_global_keys_work_everywhere() {
        assert_eq!(action(View::Kafka, Char('s')), Some(Action::SortPartitions));
        assert_eq!(action(View::Stack, Char('s')), Some(Action::StopSelected));
        assert_eq!(action(View::Airflow, Char('p')), Some(Action::TogglePause));
        assert_eq!(action(View::Stack, Char('p')), Some(Action::PullImages));
        assert_eq!(action(View::Logs, Char('s')), None);
        assert_eq!(action(View::Logs, Char('j')), Some(Action::Down));
        assert_eq!(action(View::Hdfs, Char('7')), Some(Action::ShowView));
    }

    /// A view may repeat a global key only to describe it there (Kafka's Enter), never to make it
    /// do something else: a global key works the same in every view.
    #[test]
    fn no_view_key_shadows_a_global_key() {
        for v in KEYMAP.iter().filter(|b| b.view.is_some()) {
            for g in KEYMAP.iter().filter(|b| b.view.is_none()) {
                for k in v.keys {
                    assert!(
                        !g.keys.contains(k) || g.action == v.action,
                        "{k:?} in {:?} does {:?}, not the global {:?}",
                        v.view,
                        v.action,
                        g.action
                    );
                }
            }
        }
    }

    #[test]
    fn no_key_is_bound_twice_in_one_scope() {
        for (i, a) in KEYMAP.iter().enumerate() {
            for b in &KEYMAP[i + 1..] {
                if a.view == b.view {
                    for k in a.keys {
                        assert!(!b.keys.contains(k), "{k:?} bound twice in {:?}", a.view);
                    }
                }
            }
        }
    }
}
