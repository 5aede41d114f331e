//! The monitor's state and its single mutation point, [`App::update`].

use std::collections::{BTreeMap, VecDeque};

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseButton, MouseEvent, MouseEventKind};

use super::logs::LogLine;
use super::msg::{Cmd, Msg};
use super::theme::Theme;
use crate::probes::kafka::{Group, GroupPartition, Topic};
use crate::probes::{LabSnapshot, ServiceSnapshot, airflow};

/// Points kept per trend line (one per Kafka poll: two minutes at the default 1 s).
pub const HISTORY_LEN: usize = 120;
/// Log lines kept in memory.
pub const LOG_LINES: usize = 5_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum View {
    Overview,
    Pipeline,
    Kafka,
    Hdfs,
    Spark,
    Airflow,
    Postgres,
    Logs,
}

impl View {
    pub const ALL: [View; 8] = [
        View::Overview,
        View::Pipeline,
        View::Kafka,
        View::Hdfs,
        View::Spark,
        View::Airflow,
        View::Postgres,
        View::Logs,
    ];

    #[must_use]
    pub fn title(self) -> &'static str {
        match self {
            View::Overview => "Overview",
            View::Pipeline => "Pipeline",
            View::Kafka => "Kafka",
            View::Hdfs => "HDFS",
            View::Spark => "Spark",
            View::Airflow => "Airflow",
            View::Postgres => "PostgreSQL",
            View::Logs => "Logs",
        }
    }

    #[must_use]
    pub fn index(self) -> usize {
        View::ALL.iter().position(|v| *v == self).unwrap_or(0)
    }

    fn from_name(name: &str) -> Option<View> {
        let n = name.to_ascii_lowercase();
        View::ALL.into_iter().find(|v| {
            let t = v.title().to_ascii_lowercase();
            t == n || ((n == "pg" || n == "postgres") && *v == View::Postgres)
        })
    }
}

/// What keys currently do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    Normal,
    /// Typing a `/` filter.
    Filter,
    /// Typing a `:` command.
    Command,
    /// Waiting for y/n before running an action.
    Confirm(Cmd),
    Help,
}

/// A footer message: what an action did, or what went wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub text: String,
    pub error: bool,
}

pub struct App {
    pub view: View,
    pub lab: LabSnapshot,
    pub theme: Theme,
    pub mode: Mode,
    /// Text being typed in Filter or Command mode.
    pub input: String,
    /// The applied `/` filter (case-insensitive substring) for the current view's lists.
    pub filter: String,
    /// Selected row per view.
    pub selection: [usize; 8],
    /// Focused pane per view (Kafka: groups / topics; Airflow: DAGs / grid).
    pub pane: [usize; 8],
    /// Kafka: showing the selected group's per-partition lag table.
    pub kafka_drill: bool,
    /// Kafka partition table: by lag (default) or by topic/partition.
    pub sort_by_name: bool,
    /// Total lag per consumer group, oldest first.
    pub lag_history: BTreeMap<String, VecDeque<u64>>,
    /// Records per second into the raw topics, oldest first.
    pub rate_history: VecDeque<u64>,
    pub logs: VecDeque<LogLine>,
    pub log_follow: bool,
    /// Lines scrolled up from the end when not following.
    pub log_scroll: usize,
    pub notice: Option<Notice>,
    pub quit: bool,
    /// Something changed since the last frame.
    pub dirty: bool,
    /// Terminal width (the tab bar's layout depends on it).
    pub width: u16,
}

impl App {
    #[must_use]
    pub fn new(theme: Theme) -> Self {
        Self {
            view: View::Overview,
            lab: LabSnapshot::default(),
            theme,
            mode: Mode::Normal,
            input: String::new(),
            filter: String::new(),
            selection: [0; 8],
            pane: [0; 8],
            kafka_drill: false,
            sort_by_name: false,
            lag_history: BTreeMap::new(),
            rate_history: VecDeque::new(),
            logs: VecDeque::new(),
            log_follow: true,
            log_scroll: 0,
            notice: None,
            quit: false,
            dirty: true,
            width: 80,
        }
    }

    /// Applies one message; returns the actions to run.
    pub fn update(&mut self, msg: Msg) -> Vec<Cmd> {
        self.dirty = true;
        match msg {
            Msg::Key(key) if key.kind != KeyEventKind::Release => return self.on_key(key),
            Msg::Key(_) => self.dirty = false,
            Msg::Mouse(m) => self.on_mouse(m),
            Msg::Resize(width) => self.width = width,
            Msg::Probe(snap) => self.on_snapshot(*snap),
            Msg::ActionDone(Ok(text)) => self.notice = Some(Notice { text, error: false }),
            Msg::ActionDone(Err(text)) => self.notice = Some(Notice { text, error: true }),
            Msg::Logs(lines) => self.on_logs(lines),
            Msg::Quit => self.quit = true,
        }
        Vec::new()
    }

    fn on_snapshot(&mut self, snap: ServiceSnapshot) {
        if let ServiceSnapshot::Kafka(k) = &snap
            && let Some(k) = &k.detail
        {
            for g in &k.groups {
                push_bounded(
                    self.lag_history.entry(g.name.clone()).or_default(),
                    u64::try_from(g.total_lag).unwrap_or(0),
                );
            }
            let rate: f64 = k.topics.iter().filter_map(|t| t.rate_in).sum();
            push_bounded(&mut self.rate_history, rate.round() as u64);
        }
        self.lab.apply(snap);
        self.clamp_selection();
    }

    fn on_logs(&mut self, lines: Vec<LogLine>) {
        for l in lines {
            if self.logs.len() == LOG_LINES {
                self.logs.pop_front();
            }
            self.logs.push_back(l);
        }
        if self.view != View::Logs {
            self.dirty = false; // nothing on screen changed
        }
    }

    fn on_mouse(&mut self, m: MouseEvent) {
        match m.kind {
            MouseEventKind::ScrollDown => self.move_selection(1),
            MouseEventKind::ScrollUp => self.move_selection(-1),
            MouseEventKind::Down(MouseButton::Left) if m.row == 0 => {
                if let Some(v) = tab_at(m.column, self.width) {
                    self.switch(v);
                }
            }
            _ => self.dirty = false,
        }
    }

    fn on_key(&mut self, key: KeyEvent) -> Vec<Cmd> {
        if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
            self.quit = true;
            return Vec::new();
        }
        match self.mode.clone() {
            Mode::Help => {
                self.mode = Mode::Normal;
                if key.code == KeyCode::Char('q') {
                    self.quit = true;
                }
                Vec::new()
            }
            Mode::Confirm(cmd) => {
                self.mode = Mode::Normal;
                if matches!(key.code, KeyCode::Char('y' | 'Y') | KeyCode::Enter) {
                    self.notice = Some(Notice {
                        text: format!("{} …", cmd.describe().trim_end_matches('?')),
                        error: false,
                    });
                    vec![cmd]
                } else {
                    self.notice = Some(Notice {
                        text: "cancelled".into(),
                        error: false,
                    });
                    Vec::new()
                }
            }
            Mode::Filter | Mode::Command => {
                self.on_input_key(key);
                Vec::new()
            }
            Mode::Normal => {
                self.on_normal_key(key);
                Vec::new()
            }
        }
    }

    fn on_input_key(&mut self, key: KeyEvent) {
        match key.code {
            KeyCode::Esc => {
                if self.mode == Mode::Filter {
                    self.filter.clear();
                }
                self.input.clear();
                self.mode = Mode::Normal;
            }
            KeyCode::Enter => {
                let text = std::mem::take(&mut self.input);
                if self.mode == Mode::Filter {
                    self.mode = Mode::Normal;
                    self.filter = text;
                } else {
                    self.mode = Mode::Normal;
                    self.run_command(&text);
                }
            }
            KeyCode::Backspace => {
                self.input.pop();
                if self.mode == Mode::Filter {
                    self.filter.clone_from(&self.input);
                }
            }
            KeyCode::Char(c) => {
                self.input.push(c);
                if self.mode == Mode::Filter {
                    self.filter.clone_from(&self.input); // filter as you type
                    self.selection[self.view.index()] = 0;
                }
            }
            _ => self.dirty = false,
        }
    }

    fn on_normal_key(&mut self, key: KeyEvent) {
        match key.code {
            KeyCode::Char('q') => self.quit = true,
            KeyCode::Char('?') => self.mode = Mode::Help,
            KeyCode::Char('/') => {
                self.mode = Mode::Filter;
                self.input = self.filter.clone();
            }
            KeyCode::Char(':') => {
                self.mode = Mode::Command;
                self.input.clear();
            }
            KeyCode::Char(c @ '1'..='8') => {
                let i = (c as usize) - ('1' as usize);
                self.switch(View::ALL[i]);
            }
            KeyCode::Tab => self.switch(View::ALL[(self.view.index() + 1) % View::ALL.len()]),
            KeyCode::BackTab => self.switch(View::ALL[(self.view.index() + View::ALL.len() - 1) % View::ALL.len()]),
            KeyCode::Down | KeyCode::Char('j') => self.move_selection(1),
            KeyCode::Up | KeyCode::Char('k') => self.move_selection(-1),
            KeyCode::PageDown => self.move_selection(10),
            KeyCode::PageUp => self.move_selection(-10),
            KeyCode::Char('g') | KeyCode::Home => self.move_selection(-1_000_000),
            KeyCode::Char('G') | KeyCode::End => self.move_selection(1_000_000),
            KeyCode::Left | KeyCode::Char('h') => self.switch_pane(-1),
            KeyCode::Right | KeyCode::Char('l') => self.switch_pane(1),
            KeyCode::Enter => self.drill(true),
            KeyCode::Esc => {
                self.drill(false);
                self.notice = None;
                self.filter.clear();
            }
            KeyCode::Char('s') if self.view == View::Kafka => self.sort_by_name = !self.sort_by_name,
            KeyCode::Char('f') if self.view == View::Logs => {
                self.log_follow = !self.log_follow;
                self.log_scroll = 0;
            }
            KeyCode::Char('t') if self.view == View::Airflow => {
                if let Some(d) = self.selected_dag() {
                    self.mode = Mode::Confirm(Cmd::TriggerDag(d.dag_id.clone()));
                }
            }
            KeyCode::Char('p') if self.view == View::Airflow => {
                if let Some(d) = self.selected_dag() {
                    self.mode = Mode::Confirm(Cmd::SetPaused {
                        dag_id: d.dag_id.clone(),
                        paused: !d.is_paused,
                    });
                }
            }
            KeyCode::Char('c') if self.view == View::Airflow => self.ask_clear(None),
            _ => self.dirty = false,
        }
    }

    fn switch(&mut self, view: View) {
        if self.view != view {
            self.view = view;
            self.filter.clear();
            self.kafka_drill = false;
        }
    }

    fn switch_pane(&mut self, delta: i32) {
        let panes = match self.view {
            View::Kafka | View::Airflow | View::Logs => 2,
            _ => 1,
        };
        let i = self.view.index();
        self.pane[i] = (self.pane[i] as i32 + delta).rem_euclid(panes) as usize;
        self.selection[i] = 0;
    }

    fn drill(&mut self, into: bool) {
        match self.view {
            View::Kafka => self.kafka_drill = into && self.pane[View::Kafka.index()] == 0,
            View::Airflow => self.pane[View::Airflow.index()] = usize::from(into),
            _ => {}
        }
    }

    fn move_selection(&mut self, delta: i64) {
        if self.view == View::Logs && self.pane[View::Logs.index()] == 1 {
            // Scrolling the log text itself: up leaves follow mode.
            let max = self.visible_logs().len().saturating_sub(1);
            let s = (self.log_scroll as i64 - delta).clamp(0, max as i64) as usize;
            self.log_scroll = s;
            self.log_follow = s == 0;
            return;
        }
        let len = self.list_len();
        let i = self.view.index();
        self.selection[i] = if len == 0 {
            0
        } else {
            (self.selection[i] as i64 + delta).clamp(0, len as i64 - 1) as usize
        };
    }

    fn clamp_selection(&mut self) {
        let len = self.list_len();
        let i = self.view.index();
        if self.selection[i] >= len {
            self.selection[i] = len.saturating_sub(1);
        }
    }

    /// Rows of the list the selection moves in.
    fn list_len(&self) -> usize {
        let pane = self.pane[self.view.index()];
        match self.view {
            View::Kafka if pane == 0 => self.kafka_groups().len(),
            View::Kafka => self.kafka_topics().len(),
            View::Airflow => self.dags().len(),
            View::Spark => self
                .lab
                .spark
                .as_ref()
                .and_then(|p| p.detail.as_ref())
                .map_or(0, |s| s.activeapps.len() + s.completedapps.len()),
            View::Logs => self.log_sources().len(),
            View::Hdfs | View::Postgres | View::Overview | View::Pipeline => 0,
        }
    }

    #[must_use]
    pub fn selected(&self) -> usize {
        self.selection[self.view.index()]
    }

    fn matches(&self, name: &str) -> bool {
        self.filter.is_empty() || name.to_lowercase().contains(&self.filter.to_lowercase())
    }

    /// Consumer groups passing the filter.
    #[must_use]
    pub fn kafka_groups(&self) -> Vec<&Group> {
        self.lab
            .kafka
            .as_ref()
            .and_then(|p| p.detail.as_ref())
            .map(|k| k.groups.iter().filter(|g| self.matches(&g.name)).collect())
            .unwrap_or_default()
    }

    #[must_use]
    pub fn kafka_topics(&self) -> Vec<&Topic> {
        self.lab
            .kafka
            .as_ref()
            .and_then(|p| p.detail.as_ref())
            .map(|k| k.topics.iter().filter(|t| self.matches(&t.name)).collect())
            .unwrap_or_default()
    }

    #[must_use]
    pub fn selected_group(&self) -> Option<&Group> {
        let groups = self.kafka_groups();
        groups
            .get(self.selection[View::Kafka.index()].min(groups.len().saturating_sub(1)))
            .copied()
    }

    /// The selected group's partitions, sorted by lag (largest first) or by name.
    #[must_use]
    pub fn lag_table(&self) -> Vec<&GroupPartition> {
        let Some(g) = self.selected_group() else {
            return Vec::new();
        };
        let mut rows: Vec<&GroupPartition> = g.partitions.iter().collect();
        if self.sort_by_name {
            rows.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
        } else {
            rows.sort_by(|a, b| {
                b.lag
                    .cmp(&a.lag)
                    .then((&a.topic, a.partition).cmp(&(&b.topic, b.partition)))
            });
        }
        rows
    }

    #[must_use]
    pub fn dags(&self) -> Vec<&airflow::Dag> {
        self.lab
            .airflow
            .as_ref()
            .and_then(|p| p.detail.as_ref())
            .map(|a| a.dags.iter().filter(|d| self.matches(&d.dag_id)).collect())
            .unwrap_or_default()
    }

    #[must_use]
    pub fn selected_dag(&self) -> Option<&airflow::Dag> {
        let dags = self.dags();
        dags.get(self.selection[View::Airflow.index()].min(dags.len().saturating_sub(1)))
            .copied()
    }

    /// "all" followed by every log source seen.
    #[must_use]
    pub fn log_sources(&self) -> Vec<String> {
        let mut s: Vec<String> = self.logs.iter().map(|l| l.source.clone()).collect();
        s.sort();
        s.dedup();
        s.insert(0, "all".into());
        s
    }

    /// Log lines of the selected source that match the filter (the `/` search).
    #[must_use]
    pub fn visible_logs(&self) -> Vec<&LogLine> {
        let sources = self.log_sources();
        let source = sources
            .get(self.selection[View::Logs.index()])
            .map_or("all", String::as_str);
        self.logs
            .iter()
            .filter(|l| source == "all" || l.source == source)
            .filter(|l| self.matches(&l.text))
            .collect()
    }

    fn ask_clear(&mut self, run: Option<String>) {
        let Some(dag) = self.selected_dag().map(|d| d.dag_id.clone()) else {
            return;
        };
        self.ask_clear_of(&dag, run);
    }

    fn ask_clear_of(&mut self, dag: &str, run: Option<String>) {
        let run = run.or_else(|| {
            self.lab
                .airflow
                .as_ref()
                .and_then(|p| p.detail.as_ref())
                .and_then(|a| a.runs_of(dag).next().map(|r| r.dag_run_id.clone()))
        });
        match run {
            Some(dag_run_id) => {
                self.mode = Mode::Confirm(Cmd::ClearFailed {
                    dag_id: dag.to_string(),
                    dag_run_id,
                });
            }
            None => {
                self.notice = Some(Notice {
                    text: format!("{dag} has no run to clear"),
                    error: true,
                });
            }
        }
    }

    /// Runs a `:` command line.
    fn run_command(&mut self, line: &str) {
        let mut words = line.split_whitespace();
        let Some(cmd) = words.next() else { return };
        let arg = words.next().map(str::to_string);
        let err = |text: String| Some(Notice { text, error: true });
        match (cmd, arg) {
            ("q" | "quit", _) => self.quit = true,
            ("trigger", Some(dag)) => self.mode = Mode::Confirm(Cmd::TriggerDag(dag)),
            ("pause", Some(dag_id)) => self.mode = Mode::Confirm(Cmd::SetPaused { dag_id, paused: true }),
            ("unpause", Some(dag_id)) => self.mode = Mode::Confirm(Cmd::SetPaused { dag_id, paused: false }),
            ("clear", Some(dag)) => {
                let run = words.next().map(str::to_string);
                self.ask_clear_of(&dag, run);
            }
            ("view", Some(name)) => match View::from_name(&name) {
                Some(v) => self.switch(v),
                None => self.notice = err(format!("no view {name:?}: use one of the tab names")),
            },
            ("stop" | "start" | "restart", _) => {
                self.notice = err(format!(
                    ":{cmd} manages the containers of `lab up`; this monitor cannot do it yet: run `lab {cmd}` in a shell"
                ));
            }
            ("produce", _) => {
                self.notice =
                    err(":produce is not available in the monitor yet: run `lab produce --rate N` in a shell".into());
            }
            ("trigger" | "pause" | "unpause" | "clear" | "view", None) => {
                self.notice = err(format!(":{cmd} needs an argument (see ? for the commands)"));
            }
            (other, _) => self.notice = err(format!("unknown command :{other} (see ? for the commands)")),
        }
    }
}

fn push_bounded(buf: &mut VecDeque<u64>, v: u64) {
    if buf.len() == HISTORY_LEN {
        buf.pop_front();
    }
    buf.push_back(v);
}

/// Terminal width below which the tab labels drop their padding (so all eight fit in 80 columns).
const WIDE_TABS: u16 = 92;

/// The tab bar's layout: ` 1 Overview │ 2 Pipeline │…` (`1 Overview│2 Pipeline│…` when narrow),
/// the same for drawing and mouse clicks.
#[must_use]
pub fn tab_labels(width: u16) -> Vec<(View, String)> {
    View::ALL
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let label = if width >= WIDE_TABS {
                format!(" {} {} ", i + 1, v.title())
            } else {
                format!("{} {}", i + 1, v.title())
            };
            (*v, label)
        })
        .collect()
}

/// Which tab a click on the tab bar's column `x` hits, on a terminal `width` wide.
#[must_use]
pub fn tab_at(x: u16, width: u16) -> Option<View> {
    let mut start = 0u16;
    for (v, label) in tab_labels(width) {
        let end = start + label.chars().count() as u16;
        if x >= start && x < end {
            return Some(v);
        }
        start = end + 1; // one-column divider
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probes::{Probed, ServiceSnapshot};

    fn key(c: KeyCode) -> Msg {
        Msg::Key(KeyEvent::new(c, KeyModifiers::NONE))
    }

    #[test]
    fn number_keys_and_tab_switch_views() {
        let mut app = App::new(Theme { color: false });
        app.update(key(KeyCode::Char('3')));
        assert_eq!(app.view, View::Kafka);
        app.update(key(KeyCode::Tab));
        assert_eq!(app.view, View::Hdfs);
        app.update(key(KeyCode::BackTab));
        app.update(key(KeyCode::BackTab));
        assert_eq!(app.view, View::Pipeline);
        app.update(key(KeyCode::Char('8')));
        assert_eq!(app.view, View::Logs);
    }

    #[test]
    fn trigger_command_asks_for_confirmation_before_running() {
        let mut app = App::new(Theme { color: false });
        app.update(key(KeyCode::Char(':')));
        for c in "trigger yelp_batch".chars() {
            app.update(key(KeyCode::Char(c)));
        }
        assert!(app.update(key(KeyCode::Enter)).is_empty());
        assert_eq!(app.mode, Mode::Confirm(Cmd::TriggerDag("yelp_batch".into())));
        assert_eq!(
            app.update(key(KeyCode::Char('y'))),
            vec![Cmd::TriggerDag("yelp_batch".into())]
        );
        assert_eq!(app.mode, Mode::Normal);
        // And "n" cancels.
        app.update(key(KeyCode::Char(':')));
        for c in "pause d".chars() {
            app.update(key(KeyCode::Char(c)));
        }
        app.update(key(KeyCode::Enter));
        assert!(app.update(key(KeyCode::Char('n'))).is_empty());
        assert_eq!(app.notice.as_ref().unwrap().text, "cancelled");
    }

    #[test]
    fn unknown_commands_and_quit() {
        let mut app = App::new(Theme { color: false });
        app.run_command("frobnicate");
        assert!(app.notice.as_ref().unwrap().error);
        app.run_command("view kafka");
        assert_eq!(app.view, View::Kafka);
        app.run_command("q");
        assert!(app.quit);
    }

    #[test]
    fn help_overlay_opens_and_any_key_closes_it_and_ctrl_c_quits() {
        let mut app = App::new(Theme { color: false });
        app.update(key(KeyCode::Char('?')));
        assert_eq!(app.mode, Mode::Help);
        app.update(key(KeyCode::Esc));
        assert_eq!(app.mode, Mode::Normal);
        assert!(!app.quit);
        app.update(Msg::Key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL)));
        assert!(app.quit);
    }

    #[test]
    fn kafka_snapshots_feed_bounded_lag_history() {
        let mut app = App::new(Theme { color: false });
        for lag in 0..(HISTORY_LEN as i64 + 5) {
            let snap = crate::probes::kafka::KafkaSnapshot {
                groups: vec![Group {
                    name: "g".into(),
                    total_lag: lag,
                    ..Group::default()
                }],
                ..Default::default()
            };
            app.update(Msg::Probe(Box::new(ServiceSnapshot::Kafka(Probed {
                status: crate::probes::Status::unknown(""),
                detail: Some(snap),
            }))));
        }
        let h = &app.lag_history["g"];
        assert_eq!(h.len(), HISTORY_LEN);
        assert_eq!(*h.back().unwrap(), HISTORY_LEN as u64 + 4);
    }

    #[test]
    fn clicking_a_tab_opens_its_view() {
        for width in [80, 120] {
            let labels = tab_labels(width);
            let kafka_x = labels[..2]
                .iter()
                .map(|(_, l)| l.chars().count() as u16 + 1)
                .sum::<u16>()
                + 1;
            assert_eq!(tab_at(kafka_x, width), Some(View::Kafka));
            assert_eq!(tab_at(0, width), Some(View::Overview));
            let total: usize = labels.iter().map(|(_, l)| l.chars().count() + 1).sum();
            assert!(total <= width as usize, "all tabs fit in {width} columns");
        }
    }
}
