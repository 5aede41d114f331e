//! The keymap: which key does what, in which view. One table that `App::update` dispatches through
//! and that the `?` help overlay and the footer hints are drawn from, so a binding cannot exist
//! in one and not the other. `lab.toml`'s `[tui.keys]` replaces the keys of an action
//! (`stop_selected = "x"`, `quit = ["q", "F10"]`), checked for conflicts before the monitor opens.

use std::collections::BTreeMap;

use crossterm::event::KeyCode;

use super::views::tabs::View;
use crate::config::KeyList;

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

/// One binding of the built-in table: its keys, how help shows them, what they do and where.
#[derive(Debug, Clone, Copy)]
pub struct DefaultBinding {
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
) -> DefaultBinding {
    DefaultBinding {
        keys,
        shown,
        action,
        view: None,
        help,
        footer,
    }
}

const fn on(
    view: View,
    keys: &'static [KeyCode],
    shown: &'static str,
    action: Action,
    help: &'static str,
) -> DefaultBinding {
    DefaultBinding {
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

/// The built-in keymap.
pub const DEFAULTS: &[DefaultBinding] = &[
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

/// A binding as the monitor uses it: the built-in one, or its keys as `lab.toml` set them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    pub keys: Vec<KeyCode>,
    /// The keys as help and the footer show them (`↑ k`, `x F5`).
    pub shown: String,
    pub action: Action,
    /// `None`: in every view (a view's own binding for the same key wins).
    pub view: Option<View>,
    pub help: &'static str,
    /// Shown in the footer (the rest only in the help overlay).
    pub footer: bool,
}

/// What a `[tui.keys]` entry got wrong.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeymapError {
    #[error("`{0}` is not an action; the actions are: {1}")]
    UnknownAction(String, String),
    #[error("`{action}`: `{key}` is not a key; use one character (`x`, `X`, `.`) or a key name ({KEY_NAMES})")]
    UnknownKey { action: String, key: String },
    #[error("`{0}` needs at least one key")]
    NoKey(String),
    #[error("`show_view` stays on the digits 1-9 (one per view)")]
    FixedKeys,
    #[error("`{key}` would do both `{first}` and `{second}` {scope}; give one of them another key")]
    Conflict {
        key: String,
        first: String,
        second: String,
        scope: String,
    },
}

const KEY_NAMES: &str = "Enter, Esc, Tab, BackTab, Space, Backspace, Delete, Insert, Up, Down, Left, Right, Home, End, PageUp, PageDown, F1-F12";

/// The monitor's keymap: the built-in table with `[tui.keys]` applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keymap {
    bindings: Vec<Binding>,
}

impl Default for Keymap {
    fn default() -> Self {
        Self {
            bindings: DEFAULTS
                .iter()
                .map(|d| Binding {
                    keys: d.keys.to_vec(),
                    shown: d.shown.to_string(),
                    action: d.action,
                    view: d.view,
                    help: d.help,
                    footer: d.footer,
                })
                .collect(),
        }
    }
}

impl Keymap {
    /// The built-in keymap with each configured action's keys replaced (in every view it is
    /// bound in), refused when an action or key is unknown or two actions would share a key.
    pub fn configured(keys: &BTreeMap<String, KeyList>) -> Result<Self, KeymapError> {
        let mut map = Self::default();
        for (name, list) in keys {
            let action = map
                .bindings
                .iter()
                .map(|b| b.action)
                .find(|a| action_name(*a) == *name)
                .ok_or_else(|| KeymapError::UnknownAction(name.clone(), map.action_names()))?;
            if action == Action::ShowView {
                return Err(KeymapError::FixedKeys);
            }
            let specs = list.keys();
            if specs.is_empty() {
                return Err(KeymapError::NoKey(name.clone()));
            }
            let codes = specs
                .iter()
                .map(|k| {
                    parse_key(k).ok_or_else(|| KeymapError::UnknownKey {
                        action: name.clone(),
                        key: (*k).to_string(),
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            let mut shown = codes.iter().map(|c| key_label(*c)).collect::<Vec<_>>().join(" ");
            if action == Action::Quit {
                shown.push_str(" Ctrl-C"); // always quits, whatever the keymap says
            }
            for b in map.bindings.iter_mut().filter(|b| b.action == action) {
                b.keys.clone_from(&codes);
                b.shown.clone_from(&shown);
            }
        }
        map.check()?;
        Ok(map)
    }

    /// No key does two things in one view: two bindings of one scope never share a key, and a
    /// view's key shares one with a global binding only to describe it there (Kafka's Enter).
    pub fn check(&self) -> Result<(), KeymapError> {
        for (i, a) in self.bindings.iter().enumerate() {
            for b in &self.bindings[i + 1..] {
                let same_scope = a.view == b.view && a.action != b.action;
                let shadows = a.view.is_some() != b.view.is_some() && a.action != b.action;
                if !(same_scope || shadows) {
                    continue;
                }
                if let Some(k) = a.keys.iter().find(|k| b.keys.contains(k)) {
                    let view = a.view.or(b.view);
                    return Err(KeymapError::Conflict {
                        key: key_label(*k),
                        first: action_name(a.action),
                        second: action_name(b.action),
                        scope: view.map_or("in every view".to_string(), |v| format!("in the {} view", v.title())),
                    });
                }
            }
        }
        Ok(())
    }

    /// What `code` does in `view`: the view's own binding first, then the global one.
    #[must_use]
    pub fn action(&self, view: View, code: KeyCode) -> Option<Action> {
        let bound = |b: &&Binding| b.keys.contains(&code);
        self.bindings
            .iter()
            .filter(|b| b.view == Some(view))
            .find(bound)
            .or_else(|| self.bindings.iter().filter(|b| b.view.is_none()).find(bound))
            .map(|b| b.action)
    }

    #[must_use]
    pub fn bindings(&self) -> &[Binding] {
        &self.bindings
    }

    /// Footer hints for `view`: its own keys first, then the global ones.
    pub fn footer(&self, view: View) -> impl Iterator<Item = &Binding> {
        self.bindings
            .iter()
            .filter(move |k| k.view == Some(view))
            .chain(self.bindings.iter().filter(|k| k.view.is_none() && k.footer))
    }

    /// The keys bound to `action` as help shows them (the first binding's), for the hints in
    /// titles and banners.
    #[must_use]
    pub fn shown(&self, action: Action) -> &str {
        self.bindings
            .iter()
            .find(|b| b.action == action)
            .map_or("?", |b| b.shown.as_str())
    }

    fn action_names(&self) -> String {
        let mut names: Vec<String> = self.bindings.iter().map(|b| action_name(b.action)).collect();
        names.dedup();
        names.join(", ")
    }
}

/// An action's name in `[tui.keys]`: `StopSelected` → `stop_selected`.
#[must_use]
pub fn action_name(action: Action) -> String {
    let mut name = String::new();
    for (i, c) in format!("{action:?}").chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                name.push('_');
            }
            name.push(c.to_ascii_lowercase());
        } else {
            name.push(c);
        }
    }
    name
}

/// One key as `lab.toml` writes it: a character, or a key's name (any case).
fn parse_key(spec: &str) -> Option<KeyCode> {
    let mut chars = spec.chars();
    if let (Some(c), None) = (chars.next(), chars.next()) {
        return Some(KeyCode::Char(c));
    }
    let lower = spec.to_ascii_lowercase();
    Some(match lower.as_str() {
        "enter" | "return" => KeyCode::Enter,
        "esc" | "escape" => KeyCode::Esc,
        "tab" => KeyCode::Tab,
        "backtab" | "shift-tab" | "s-tab" => KeyCode::BackTab,
        "space" => KeyCode::Char(' '),
        "backspace" => KeyCode::Backspace,
        "delete" | "del" => KeyCode::Delete,
        "insert" | "ins" => KeyCode::Insert,
        "up" => KeyCode::Up,
        "down" => KeyCode::Down,
        "left" => KeyCode::Left,
        "right" => KeyCode::Right,
        "home" => KeyCode::Home,
        "end" => KeyCode::End,
        "pageup" | "pgup" => KeyCode::PageUp,
        "pagedown" | "pgdn" => KeyCode::PageDown,
        f if f.starts_with('f') => match f[1..].parse::<u8>() {
            Ok(n @ 1..=12) => KeyCode::F(n),
            _ => return None,
        },
        _ => return None,
    })
}

/// A key as help shows it.
fn key_label(code: KeyCode) -> String {
    match code {
        KeyCode::Char(' ') => "Space".into(),
        KeyCode::Char(c) => c.to_string(),
        KeyCode::Enter => "Enter".into(),
        KeyCode::Esc => "Esc".into(),
        KeyCode::Tab => "Tab".into(),
        KeyCode::BackTab => "S-Tab".into(),
        KeyCode::Backspace => "Backspace".into(),
        KeyCode::Delete => "Del".into(),
        KeyCode::Insert => "Ins".into(),
        KeyCode::Up => "↑".into(),
        KeyCode::Down => "↓".into(),
        KeyCode::Left => "←".into(),
        KeyCode::Right => "→".into(),
        KeyCode::Home => "Home".into(),
        KeyCode::End => "End".into(),
        KeyCode::PageUp => "PgUp".into(),
        KeyCode::PageDown => "PgDn".into(),
        KeyCode::F(n) => format!("F{n}"),
        other => format!("{other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(entries: &[(&str, &[&str])]) -> BTreeMap<String, KeyList> {
        entries
            .iter()
            .map(|(a, k)| (a.to_string(), KeyList::Many(k.iter().map(|s| s.to_string()).collect())))
            .collect()
    }

    #[test]
    fn view_keys_reach_their_action_and_global_keys_work_everywhere() {
        let map = Keymap::default();
        assert_eq!(map.action(View::Kafka, Char('s')), Some(Action::SortPartitions));
        assert_eq!(map.action(View::Stack, Char('s')), Some(Action::StopSelected));
        assert_eq!(map.action(View::Airflow, Char('p')), Some(Action::TogglePause));
        assert_eq!(map.action(View::Stack, Char('p')), Some(Action::PullImages));
        assert_eq!(map.action(View::Logs, Char('s')), None);
        assert_eq!(map.action(View::Logs, Char('j')), Some(Action::Down));
        assert_eq!(map.action(View::Hdfs, Char('7')), Some(Action::ShowView));
    }

    /// The built-in table passes the same check a configured one must.
    #[test]
    fn the_built_in_keymap_has_no_conflict() {
        assert_eq!(Keymap::default().check(), Ok(()));
    }

    #[test]
    fn a_configured_key_replaces_the_actions_keys_in_every_view_it_is_bound_in() {
        let map = Keymap::configured(&keys(&[("stop_selected", &["x", "F5"]), ("stack_up", &["B"])])).unwrap();
        assert_eq!(map.action(View::Stack, Char('x')), Some(Action::StopSelected));
        assert_eq!(map.action(View::Stack, KeyCode::F(5)), Some(Action::StopSelected));
        assert_eq!(map.action(View::Stack, Char('s')), None, "the old key is free");
        assert_eq!(map.action(View::Overview, Char('B')), Some(Action::StackUp));
        assert_eq!(map.action(View::Stack, Char('B')), Some(Action::StackUp));
        assert_eq!(map.shown(Action::StopSelected), "x F5");
        // A global action moves too, and names are any case.
        let map = Keymap::configured(&keys(&[("quit", &["Q"]), ("down", &["DOWN", "J"])])).unwrap();
        assert_eq!(map.action(View::Kafka, Char('Q')), Some(Action::Quit));
        assert_eq!(map.action(View::Kafka, Char('q')), None);
        assert_eq!(map.action(View::Kafka, KeyCode::Down), Some(Action::Down));
        assert_eq!(map.action(View::Kafka, Char('J')), Some(Action::Down));
        assert_eq!(map.action(View::Kafka, Char('j')), None);
    }

    #[test]
    fn a_wrong_entry_is_refused_with_what_to_do() {
        let err = |e: &[(&str, &[&str])]| Keymap::configured(&keys(e)).unwrap_err();
        let e = err(&[("stopp", &["x"])]);
        assert!(
            matches!(&e, KeymapError::UnknownAction(n, all) if n == "stopp" && all.contains("stop_selected")),
            "{e}"
        );
        assert_eq!(
            err(&[("quit", &["ctrl-q"])]),
            KeymapError::UnknownKey {
                action: "quit".into(),
                key: "ctrl-q".into()
            }
        );
        assert_eq!(err(&[("quit", &[])]), KeymapError::NoKey("quit".into()));
        assert_eq!(err(&[("show_view", &["x"])]), KeymapError::FixedKeys);
        // Two actions of one view on one key.
        assert_eq!(
            err(&[("stop_selected", &["r"])]).to_string(),
            "`r` would do both `stop_selected` and `restart_selected` in the Stack view; give one of them another key"
        );
        // A view's key over a global one.
        let e = err(&[("trigger_dag", &["q"])]);
        assert!(e.to_string().contains("`q` would do both"), "{e}");
        // Two global actions.
        let e = err(&[("help", &["/"])]);
        assert!(e.to_string().contains("in every view"), "{e}");
    }

    #[test]
    fn action_names_are_snake_case() {
        assert_eq!(action_name(Action::StopSelected), "stop_selected");
        assert_eq!(action_name(Action::Quit), "quit");
        assert_eq!(action_name(Action::StackDownWithVolumes), "stack_down_with_volumes");
    }
}
