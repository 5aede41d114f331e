//! The monitor's state and its single mutation point, [`App::update`].

use std::collections::{BTreeMap, VecDeque};

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseButton, MouseEvent, MouseEventKind};

use super::command::{self, Command};
use super::data::{self, Browse, DataCmd, DataEvent};
use super::embedded::{BatchRunView, EmbeddedEvent};
use super::keys::{Action, Keymap};
use super::log_buffer::LogBuffer;
use super::logs::LogBatch;
use super::msg::{Cmd, Msg, StackCmd};
use super::stack_panel::StackPanel;
use super::stages::{StageEvent, StageKind};
use super::theme::Theme;
use super::views::tabs::tab_at;
pub use super::views::tabs::{VIEWS, View};
use crate::doctor::DoctorReport;
use crate::embedded_lab::EmbeddedInfo;
use crate::pipeline::stats::StageSnapshot;
use crate::probes::{LabSnapshot, ServiceSnapshot};
use crate::runtime::first_line;

mod log_actions;
pub use log_actions::SavedLogs;

/// Points kept per trend line (one per Kafka poll: two minutes at the default 1 s).
pub const HISTORY_LEN: usize = 120;
/// Actions the `:explain` panel keeps.
const EXPLAINED: usize = 12;

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

impl Mode {
    /// The mode's name, for the log (a confirmation's command can be a long plan).
    fn name(&self) -> &'static str {
        match self {
            Mode::Normal => "normal",
            Mode::Filter => "filter",
            Mode::Command => "command",
            Mode::Confirm(_) => "confirm",
            Mode::Help => "help",
        }
    }
}

/// A stage running (or run) in this monitor, with rates from the last two reports.
#[derive(Debug, Clone, Default)]
pub struct StageView {
    pub snapshot: StageSnapshot,
    pub rate_in: Option<f64>,
    pub rate_out: Option<f64>,
    pub running: bool,
    /// How it ended: its summary, or its error.
    pub outcome: Option<Result<String, String>>,
    last: Option<(std::time::Instant, StageSnapshot)>,
}

impl StageView {
    fn observe(&mut self, snapshot: StageSnapshot, now: std::time::Instant) {
        if let Some((at, prev)) = self.last {
            let secs = now.saturating_duration_since(at).as_secs_f64();
            if secs > 0.0 {
                self.rate_in = Some(snapshot.input.saturating_sub(prev.input) as f64 / secs);
                self.rate_out = Some(snapshot.output.saturating_sub(prev.output) as f64 / secs);
            }
        }
        self.last = Some((now, snapshot));
        self.snapshot = snapshot;
        self.running = !snapshot.done;
        self.outcome = None;
    }
}

/// Batch runs of the embedded lab kept for the Airflow view.
pub const BATCH_RUNS: usize = 50;

/// The embedded lab this monitor runs (`lab demo`, or `e` without Docker).
#[derive(Debug, Clone, Default)]
pub struct EmbeddedView {
    /// What it is made of; `None` while it starts.
    pub info: Option<EmbeddedInfo>,
    /// Its batch runs, newest first.
    pub batches: VecDeque<BatchRunView>,
    pub batch_running: bool,
}

/// A footer message: what an action did, or what went wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub text: String,
    pub error: bool,
}

/// The time the app's state was last updated at, read by `update` and the views instead of the
/// system clock, so a frame depends only on the state (view snapshots are exact).
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    pub instant: std::time::Instant,
    pub utc: chrono::DateTime<chrono::Utc>,
}

impl Clock {
    #[must_use]
    pub fn now() -> Self {
        Self {
            instant: std::time::Instant::now(),
            utc: chrono::Utc::now(),
        }
    }
}

/// How many rows a movement key moves a list (or the help) by: First and Last go as far as
/// there is.
fn movement(action: Action) -> Option<i64> {
    match action {
        Action::Down => Some(1),
        Action::Up => Some(-1),
        Action::PageDown => Some(10),
        Action::PageUp => Some(-10),
        Action::First => Some(-1_000_000),
        Action::Last => Some(1_000_000),
        _ => None,
    }
}

pub struct App {
    /// Set by the event loop before every message.
    pub now: Clock,
    pub view: View,
    pub lab: LabSnapshot,
    pub theme: Theme,
    /// Which key does what (`[tui.keys]` applied).
    pub keymap: Keymap,
    pub mode: Mode,
    /// Text being typed in Filter or Command mode.
    pub input: String,
    /// The applied `/` filter (case-insensitive substring) for the current view's lists.
    pub filter: String,
    /// Selected row per view.
    pub selection: [usize; VIEWS],
    /// Focused pane per view (Kafka: groups / topics; Airflow: DAGs / grid).
    pub pane: [usize; VIEWS],
    /// Kafka: showing the selected group's per-partition lag table.
    pub kafka_drill: bool,
    /// Kafka partition table: by lag (default) or by topic/partition.
    pub sort_by_name: bool,
    /// Kafka: a topic's records or the dead letters by reason, shown instead of groups and topics.
    pub browse: Option<Browse>,
    /// Lag thresholds (`lab.toml` `[alerts]`): a group over its own is red, with a banner.
    pub alerts: crate::config::LagAlerts,
    /// Total lag per consumer group, oldest first.
    pub lag_history: BTreeMap<String, VecDeque<u64>>,
    /// The Kafka cluster's ISR shrinks and expands and leader moves, as polls saw them, newest
    /// last (the probe reports each once, so the monitor keeps them).
    pub replica_changes: VecDeque<(
        chrono::DateTime<chrono::Utc>,
        crate::probes::kafka_cluster::ReplicaChange,
    )>,
    /// The Overview's figures over time (its sparklines).
    pub trends: super::trends::Trends,
    /// The followed log files' and containers' lines, per source.
    pub logs: LogBuffer,
    pub log_follow: bool,
    /// Lines scrolled up from the end when not following.
    pub log_scroll: usize,
    /// Logs: with a search, show only the matching lines (`m`), instead of every line with the
    /// matches highlighted.
    pub log_matching_only: bool,
    pub notice: Option<Notice>,
    /// The stack file's services and their containers (the Stack view).
    pub stack: StackPanel,
    /// Stages this monitor runs (`:produce`, `:transform`, `:consume`).
    pub stages: BTreeMap<StageKind, StageView>,
    /// `:explain on`: the side panel with each action's native commands, newest last.
    pub explain: bool,
    pub explained: VecDeque<super::explain::Explanation>,
    /// The first-run check (`lab doctor`), once it finished.
    pub doctor: Option<DoctorReport>,
    /// The embedded lab, when this monitor runs one instead of watching a stack's services.
    pub embedded: Option<EmbeddedView>,
    pub quit: bool,
    /// Something changed since the last frame.
    pub dirty: bool,
    /// Terminal width (the tab bar's layout depends on it).
    pub width: u16,
    /// Where the last frame drew its selectable lists, so a click can select a row. Written by
    /// the views while drawing (the only state they touch), read by `update`.
    pub hits: std::cell::RefCell<Vec<ListHit>>,
    /// The help overlay's first line shown, and (written by the overlay while drawing, like
    /// `hits`) how far it can scroll at this terminal's size.
    pub help_scroll: usize,
    pub help_scroll_max: std::cell::Cell<usize>,
}

/// A list on screen: its pane in the view, the rectangle of its rows, the first row shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListHit {
    pub pane: usize,
    pub rows: ratatui::layout::Rect,
    pub offset: usize,
}

impl App {
    #[must_use]
    pub fn new(theme: Theme) -> Self {
        Self {
            now: Clock::now(),
            view: View::Overview,
            lab: LabSnapshot::default(),
            theme,
            keymap: Keymap::default(),
            mode: Mode::Normal,
            input: String::new(),
            filter: String::new(),
            selection: [0; VIEWS],
            pane: [0; VIEWS],
            kafka_drill: false,
            sort_by_name: false,
            browse: None,
            alerts: crate::config::LagAlerts::default(),
            lag_history: BTreeMap::new(),
            replica_changes: VecDeque::new(),
            trends: super::trends::Trends::default(),
            logs: LogBuffer::default(),
            log_follow: true,
            log_scroll: 0,
            log_matching_only: false,
            notice: None,
            stack: StackPanel::default(),
            stages: BTreeMap::new(),
            doctor: None,
            explain: false,
            explained: VecDeque::new(),
            embedded: None,
            quit: false,
            dirty: true,
            width: 80,
            hits: std::cell::RefCell::new(Vec::new()),
            help_scroll: 0,
            help_scroll_max: std::cell::Cell::new(0),
        }
    }

    /// Applies one message; returns the actions to run.
    pub fn update(&mut self, msg: Msg) -> Vec<Cmd> {
        let cmds = self.handle(msg);
        if self.explain {
            let place = self.explain_place();
            for cmd in &cmds {
                if let Some(e) = super::explain::explain(cmd, &place) {
                    if self.explained.len() == EXPLAINED {
                        self.explained.pop_front();
                    }
                    self.explained.push_back(e);
                }
            }
        }
        cmds
    }

    /// What the native command lines need: the stack's name, the brokers the probe saw, the
    /// topic prefix (from the DLQ's name).
    fn explain_place(&self) -> super::explain::Place {
        let kafka = self.lab.kafka.as_ref().and_then(|p| p.detail.as_ref());
        super::explain::Place {
            stack: if self.stack.name.is_empty() {
                "<stack>".into()
            } else {
                self.stack.name.clone()
            },
            brokers: kafka
                .and_then(|k| k.brokers.first())
                .map_or_else(|| "<brokers>".into(), |b| format!("{}:{}", b.host, b.port)),
            prefix: kafka
                .and_then(|k| k.dlq_topic.strip_suffix(".dlq"))
                .unwrap_or("yelp")
                .to_string(),
        }
    }

    fn handle(&mut self, msg: Msg) -> Vec<Cmd> {
        self.dirty = true;
        match msg {
            Msg::Key(key) if key.kind != KeyEventKind::Release => {
                // What is typed on the command line or into a filter stays out of the log.
                let code = match (&self.mode, key.code) {
                    (Mode::Filter | Mode::Command, KeyCode::Char(_)) => "a typed character".to_string(),
                    (_, code) => format!("{code:?}"),
                };
                tracing::debug!(code = %code, view = ?self.view, mode = self.mode.name(), "key");
                return self.on_key(key);
            }
            Msg::Key(_) => self.dirty = false,
            Msg::Mouse(m) => self.on_mouse(m),
            Msg::Resize(width) => self.width = width,
            Msg::Probe(snap) => self.on_snapshot(*snap),
            Msg::ActionDone(Ok(text)) => self.say(text),
            Msg::ActionDone(Err(text)) => self.fail(text),
            Msg::Logs(lines) => self.on_logs(lines),
            Msg::Stack(event) => self.stack.apply(&event),
            Msg::StackDone { cmd, result } => return self.on_stack_done(&cmd, result),
            // Only countdowns move with time: redraw while an operation runs on screen.
            Msg::Tick => self.dirty = self.stack.busy.is_some() && self.view == View::Stack,
            Msg::Doctor(report) => self.doctor = Some(*report),
            Msg::Stage(StageEvent::Stats { kind, snapshot }) => {
                self.stages.entry(kind).or_default().observe(snapshot, self.now.instant);
                self.dirty = self.view == View::Pipeline;
            }
            Msg::Stage(StageEvent::Done { kind, snapshot, result }) => {
                let view = self.stages.entry(kind).or_default();
                view.observe(snapshot, self.now.instant);
                view.running = false;
                view.rate_in = None;
                view.rate_out = None;
                self.notice = Some(match &result {
                    Ok(text) => Notice {
                        text: text.clone(),
                        error: false,
                    },
                    Err(e) => Notice {
                        text: format!("the {} failed: {}", kind.name(), first_line(e)),
                        error: true,
                    },
                });
                view.outcome = Some(result);
            }
            Msg::Lesson(event) => {
                self.say(match event {
                    crate::lesson::LessonEvent::Step { text } => format!("lesson: {text}"),
                    crate::lesson::LessonEvent::Signal { what, value } => format!("lesson ✔ {what}: {value}"),
                });
            }
            Msg::LessonDone(result) => {
                self.notice = Some(match result {
                    Ok(text) => Notice { text, error: false },
                    Err(e) => Notice {
                        text: format!("the lesson failed: {}", first_line(&e)),
                        error: true,
                    },
                });
                // In the embedded lab the lesson borrowed the pipeline; it runs again.
                if self.embedded.as_ref().is_some_and(|e| e.info.is_some()) {
                    return vec![Cmd::StartEmbeddedStages];
                }
            }
            Msg::Embedded(event) => return self.on_embedded(event),
            Msg::Data(event) => self.on_data(event),
            Msg::Quit => self.quit = true,
        }
        Vec::new()
    }

    /// An operation ended. After `up` or `down` the endpoints changed, so the probes reload them.
    fn on_stack_done(&mut self, cmd: &StackCmd, result: Result<String, String>) -> Vec<Cmd> {
        match result {
            Ok(text) => {
                self.stack.finish(None);
                self.say(text);
            }
            Err(text) => {
                let first = first_line(&text);
                self.stack.finish(Some(text));
                self.fail(format!("{} failed: {first}", cmd.verb()));
            }
        }
        if matches!(cmd, StackCmd::Up { .. } | StackCmd::Down { .. }) {
            vec![Cmd::ReloadEndpoints]
        } else {
            Vec::new()
        }
    }

    /// Starts a stack operation, unless one is already running (one at a time, like the CLI).
    fn stack_cmd(&mut self, cmd: StackCmd) -> Vec<Cmd> {
        if let Some(busy) = &self.stack.busy {
            self.fail(format!("wait: {} is still running", busy.what));
            return Vec::new();
        }
        if let Some(e) = &self.stack.load_error {
            self.fail(format!("no stack to manage: {}", first_line(e)));
            return Vec::new();
        }
        self.stack.begin(cmd.describe_progress(), self.now.instant);
        self.say(format!("{} …", cmd.describe_progress()));
        vec![Cmd::Stack(cmd)]
    }

    /// The selected row of the Stack view.
    #[must_use]
    pub fn selected_service(&self) -> Option<&str> {
        self.stack
            .rows
            .get(self.selection[View::Stack.index()])
            .map(|r| r.service.as_str())
    }

    /// The line shown above the Overview and Stack views: what the first-run check found, or how
    /// to bring a stopped stack up.
    #[must_use]
    pub fn banner(&self) -> Option<Notice> {
        let alerts = self.lag_alerts();
        if let Some(worst) = alerts.first() {
            let others = alerts.len() - 1;
            let more = if others > 0 {
                format!(" (+{others} more group(s) in alert: 3 Kafka)")
            } else {
                String::new()
            };
            return Some(Notice {
                text: format!("{}{more}", worst.describe()),
                error: true,
            });
        }
        if let Some(e) = &self.embedded {
            let text = match &e.info {
                None => "Starting the embedded lab (no Docker needed) …".to_string(),
                Some(i) => format!(
                    "Embedded lab, no Docker: Kafka {} in this process, raw zone on local disk, batch every {} s \
                     (:batch). q stops it all.",
                    i.brokers,
                    super::embedded::BATCH_EVERY.as_secs()
                ),
            };
            return Some(Notice { text, error: false });
        }
        if let Some(d) = &self.doctor {
            if !d.engine_reachable() {
                let why = d
                    .findings
                    .iter()
                    .find(|f| f.check == "docker")
                    .map_or(String::new(), |f| f.detail.clone());
                return Some(Notice {
                    text: format!(
                        "No Docker engine: press {} to start the embedded lab in this monitor (no Docker needed), \
                         or start Docker and press {}. ({why})",
                        self.keymap.shown(Action::RunEmbedded),
                        self.keymap.shown(Action::StackUp)
                    ),
                    error: true,
                });
            }
            if let Some(f) = d.problems().first()
                && f.level == crate::doctor::Level::Fail
            {
                return Some(Notice {
                    text: format!(
                        "doctor: {} — fix: {} (run `lab doctor` for all findings)",
                        f.detail,
                        f.fix.as_deref().unwrap_or("-")
                    ),
                    error: true,
                });
            }
        }
        if self.stack.observed && self.stack.busy.is_none() && self.stack.all_absent() && !self.stack.rows.is_empty() {
            return Some(Notice {
                text: format!(
                    "Stack {} is not running: press {} to bring it up (9: Stack view shows the progress)",
                    self.stack.name,
                    self.keymap.shown(Action::StackUp)
                ),
                error: false,
            });
        }
        None
    }

    /// Consumer groups over their `[alerts]` threshold in the last Kafka snapshot, furthest
    /// behind first.
    #[must_use]
    pub fn lag_alerts(&self) -> Vec<crate::probes::alerts::LagBreach> {
        self.lab
            .kafka
            .as_ref()
            .and_then(|p| p.detail.as_ref())
            .map(|k| crate::probes::alerts::breaches(&self.alerts, k))
            .unwrap_or_default()
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
            for change in &k.cluster.changes {
                if self.replica_changes.len() == REPLICA_CHANGES_KEPT {
                    self.replica_changes.pop_front();
                }
                self.replica_changes.push_back((self.now.utc, change.clone()));
            }
        }
        self.trends.observe(&snap, self.now.utc);
        if let ServiceSnapshot::Docker(d) = &snap
            && let Some(d) = &d.detail
            && d.stack == self.stack.name
        {
            self.stack.observe(&d.containers);
        }
        self.lab.apply(snap);
        self.clamp_selection();
    }

    fn on_logs(&mut self, batch: LogBatch) {
        self.logs.apply(batch);
        if self.view != View::Logs {
            self.dirty = false; // nothing on screen changed
        }
    }

    fn on_mouse(&mut self, m: MouseEvent) {
        // Over the help, the wheel scrolls it and a click closes it (the view behind is hidden).
        if self.mode == Mode::Help {
            match m.kind {
                MouseEventKind::ScrollDown => self.scroll_help(1),
                MouseEventKind::ScrollUp => self.scroll_help(-1),
                MouseEventKind::Down(_) => self.mode = Mode::Normal,
                _ => self.dirty = false,
            }
            return;
        }
        match m.kind {
            MouseEventKind::ScrollDown => self.move_selection(1),
            MouseEventKind::ScrollUp => self.move_selection(-1),
            MouseEventKind::Down(MouseButton::Left) if m.row == 0 => {
                if let Some(v) = tab_at(m.column, self.width) {
                    self.switch(v);
                }
            }
            MouseEventKind::Down(MouseButton::Left) => self.click_row(m.column, m.row),
            _ => self.dirty = false,
        }
    }

    /// Moves the help overlay by `step` lines, within what the last frame could show.
    fn scroll_help(&mut self, step: i64) {
        let max = self.help_scroll_max.get() as i64;
        self.help_scroll = (self.help_scroll as i64).saturating_add(step).clamp(0, max) as usize;
    }

    /// A click on a row of a list selects it (and focuses its pane).
    fn click_row(&mut self, x: u16, y: u16) {
        let hit = self.hits.borrow().iter().copied().find(|h| {
            let r = h.rows;
            x >= r.x && x < r.x + r.width && y >= r.y && y < r.y + r.height
        });
        let Some(hit) = hit else {
            self.dirty = false;
            return;
        };
        let i = self.view.index();
        if self.pane[i] != hit.pane {
            self.pane[i] = hit.pane;
        }
        let row = hit.offset + usize::from(y - hit.rows.y);
        if row < self.list_len() {
            self.selection[i] = row;
        }
    }

    fn on_key(&mut self, key: KeyEvent) -> Vec<Cmd> {
        if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
            self.quit = true;
            return Vec::new();
        }
        match self.mode.clone() {
            Mode::Help => {
                // The help is longer than a small terminal: the movement keys scroll it, any
                // other key closes it.
                if let Some(step) = self.keymap.action(self.view, key.code).and_then(movement) {
                    self.scroll_help(step);
                    return Vec::new();
                }
                self.mode = Mode::Normal;
                if key.code == KeyCode::Char('q') {
                    self.quit = true;
                }
                Vec::new()
            }
            Mode::Confirm(cmd) => {
                self.mode = Mode::Normal;
                if matches!(key.code, KeyCode::Char('y' | 'Y') | KeyCode::Enter) {
                    if let Cmd::Stack(stack_cmd) = cmd {
                        return self.stack_cmd(stack_cmd);
                    }
                    let progress = match &cmd {
                        Cmd::Data(d) => d.progress(),
                        other => format!("{} …", other.describe().trim_end_matches('?')),
                    };
                    self.say(progress);
                    vec![cmd]
                } else {
                    self.say("cancelled".to_string());
                    Vec::new()
                }
            }
            Mode::Filter | Mode::Command => self.on_input_key(key),
            Mode::Normal => self.on_normal_key(key),
        }
    }

    fn on_input_key(&mut self, key: KeyEvent) -> Vec<Cmd> {
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
                    if self.view == View::Logs && !self.filter.is_empty() {
                        self.say_log_matches();
                    }
                } else {
                    self.mode = Mode::Normal;
                    return self.run_command(&text);
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
                    if self.view != View::Logs {
                        // A list shrinks to its matches; the Logs view keeps its source.
                        self.selection[self.view.index()] = 0;
                    }
                }
            }
            _ => self.dirty = false,
        }
        Vec::new()
    }

    fn on_normal_key(&mut self, key: KeyEvent) -> Vec<Cmd> {
        match self.keymap.action(self.view, key.code) {
            Some(action) => self.perform(action, key.code),
            None => {
                self.dirty = false;
                Vec::new()
            }
        }
    }

    /// Carries out what a key of the keymap ([`Keymap`]) is bound to.
    fn perform(&mut self, action: Action, code: KeyCode) -> Vec<Cmd> {
        let views = View::ALL.len();
        match action {
            Action::ShowView => {
                if let KeyCode::Char(c @ '1'..='9') = code {
                    self.switch(View::ALL[(c as usize) - ('1' as usize)]);
                }
            }
            Action::NextView => self.switch(View::ALL[(self.view.index() + 1) % views]),
            Action::PreviousView => self.switch(View::ALL[(self.view.index() + views - 1) % views]),
            Action::Down | Action::Up | Action::PageDown | Action::PageUp | Action::First | Action::Last => {
                if let Some(step) = movement(action) {
                    self.move_selection(step);
                }
            }
            Action::PreviousPane => self.switch_pane(-1),
            Action::NextPane => self.switch_pane(1),
            Action::DrillIn => return self.drill(true),
            Action::Back => {
                if self.view == View::Kafka && self.browse.take().is_some() {
                    return Vec::new();
                }
                self.drill(false);
                self.notice = None;
                self.filter.clear();
            }
            Action::Filter => {
                self.mode = Mode::Filter;
                self.input = self.filter.clone();
            }
            Action::CommandLine => {
                self.mode = Mode::Command;
                self.input.clear();
            }
            Action::Help => {
                self.help_scroll = 0;
                self.mode = Mode::Help;
            }
            Action::Quit => self.quit = true,
            Action::RunEmbedded => {
                if self.doctor.as_ref().is_some_and(|d| !d.engine_reachable()) {
                    return self.start_embedded();
                }
                self.dirty = false;
            }
            Action::StackDown | Action::StackDownWithVolumes => {
                let volumes = action == Action::StackDownWithVolumes;
                self.mode = Mode::Confirm(Cmd::Stack(StackCmd::Down { volumes }));
            }
            Action::SortPartitions => self.sort_by_name = !self.sort_by_name,
            Action::DeadLetters => return self.open_dead_letters(),
            Action::Refresh => match &self.browse {
                Some(b) => return vec![b.refresh().into()],
                None => self.dirty = false,
            },
            Action::ReplayReason => match self.browse.as_ref().and_then(Browse::selected_reason) {
                Some(code) => return self.plan(DataCmd::PlanReplay(code.to_string())),
                None => self.fail("select a reason in the dead-letter list (d) first".into()),
            },
            Action::ToggleFollow => {
                self.log_follow = !self.log_follow;
                self.log_scroll = 0;
            }
            Action::NextMatch => self.jump_to_match(true),
            Action::PreviousMatch => self.jump_to_match(false),
            Action::MatchingOnly => self.toggle_matching_only(),
            Action::TriggerDag => {
                if let Some(d) = self.selected_dag() {
                    self.mode = Mode::Confirm(Cmd::TriggerDag(d.dag_id.clone()));
                }
            }
            Action::TogglePause => {
                if let Some(d) = self.selected_dag() {
                    self.mode = Mode::Confirm(Cmd::SetPaused {
                        dag_id: d.dag_id.clone(),
                        paused: !d.is_paused,
                    });
                }
            }
            Action::ClearFailed => self.ask_clear(None),
            Action::StackUp => return self.stack_cmd(StackCmd::Up { only: Vec::new() }),
            Action::PullImages => return self.stack_cmd(StackCmd::Pull),
            Action::StackUpSelected => return self.on_selected_service(|s| StackCmd::Up { only: vec![s] }),
            Action::StopSelected => return self.on_selected_service(StackCmd::Stop),
            Action::StartSelected => return self.on_selected_service(StackCmd::Start),
            Action::RestartSelected => return self.on_selected_service(StackCmd::Restart),
        }
        Vec::new()
    }

    /// Runs `cmd` on the Stack view's selected service; nothing when no service is selected.
    fn on_selected_service(&mut self, cmd: fn(String) -> StackCmd) -> Vec<Cmd> {
        match self.selected_service().map(str::to_string) {
            Some(service) => self.stack_cmd(cmd(service)),
            None => Vec::new(),
        }
    }

    fn switch(&mut self, view: View) {
        if self.view != view {
            self.view = view;
            self.filter.clear();
            self.kafka_drill = false;
            self.browse = None;
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

    /// Enter (or Esc, `into` false): a group's partition lag, a topic's records, a reason's dead
    /// letters, an Airflow DAG's runs.
    fn drill(&mut self, into: bool) -> Vec<Cmd> {
        match self.view {
            View::Kafka if into => return self.drill_into_kafka(),
            View::Kafka => self.kafka_drill = false,
            View::Airflow => self.pane[View::Airflow.index()] = usize::from(into),
            _ => {}
        }
        Vec::new()
    }

    fn drill_into_kafka(&mut self) -> Vec<Cmd> {
        if let Some(browse) = &self.browse {
            let dlq = match browse {
                Browse::DeadLetters {
                    found: Some(Ok(summary)),
                    ..
                } => summary.topic.clone(),
                Browse::DeadLetters { found: None, .. } => {
                    // Said, not ignored: a quick Enter seemed lost.
                    self.say(STILL_READING_DLQ.into());
                    return Vec::new();
                }
                _ => return Vec::new(),
            };
            let Some(code) = browse.selected_reason() else {
                return Vec::new();
            };
            return self.open_records(data::dead_letters_of(&dlq, code));
        }
        if self.pane[View::Kafka.index()] == 0 {
            self.kafka_drill = true;
            return Vec::new();
        }
        let topics = self.kafka_topics();
        let Some(topic) = topics.get(self.selected()).map(|t| t.name.clone()) else {
            return Vec::new();
        };
        self.open_records(data::newest(&topic))
    }

    /// The topic browser on `request` (`:tail`, Enter on a topic or a reason).
    fn open_records(&mut self, request: crate::kafka_tools::tail::TailRequest) -> Vec<Cmd> {
        self.switch(View::Kafka);
        self.browse = Some(Browse::Records {
            request: request.clone(),
            found: None,
            selected: 0,
        });
        vec![DataCmd::Tail(request).into()]
    }

    /// The dead letters by reason (`d` in the Kafka view, `:dlq`).
    fn open_dead_letters(&mut self) -> Vec<Cmd> {
        self.switch(View::Kafka);
        self.browse = Some(Browse::DeadLetters {
            found: None,
            selected: 0,
        });
        vec![DataCmd::DeadLetters.into()]
    }

    /// Asks the broker for a plan (a reset, a replay), saying so; nothing changes before the user
    /// confirms it.
    fn plan(&mut self, cmd: DataCmd) -> Vec<Cmd> {
        self.say(cmd.progress());
        vec![cmd.into()]
    }

    /// A read or a plan came back from the broker.
    fn on_data(&mut self, event: DataEvent) {
        match event {
            DataEvent::Tail(answered, result) => {
                if let Some(Browse::Records { request, found, .. }) = &mut self.browse
                    && *request == answered
                {
                    *found = Some(result);
                } else {
                    self.dirty = false; // the user moved on
                }
            }
            DataEvent::DeadLetters(result) => {
                if self.notice.as_ref().is_some_and(|n| n.text == STILL_READING_DLQ) {
                    self.notice = None; // what it waited for is on screen
                }
                if let Some(Browse::DeadLetters { found, .. }) = &mut self.browse {
                    *found = Some(result);
                } else {
                    self.dirty = false;
                }
            }
            DataEvent::ResetPlanned(Err(e)) | DataEvent::ReplayPlanned(Err(e)) => self.fail(e),
            DataEvent::ResetPlanned(Ok(plan)) if !plan.members.is_empty() => self.fail(format!(
                "{} still has connected members ({}): stop them first (a reset only moves an idle group)",
                plan.group,
                plan.members.join(", ")
            )),
            DataEvent::ResetPlanned(Ok(plan)) if plan.partitions.is_empty() => self.fail(format!(
                "{} committed on no partition; name one with --topic TOPIC[:PARTITION]",
                plan.group
            )),
            DataEvent::ResetPlanned(Ok(plan)) => {
                self.mode = Mode::Confirm(DataCmd::ApplyReset(Box::new(plan)).into());
            }
            DataEvent::ReplayPlanned(Ok(plan)) if plan.replayed == 0 => self.say(format!(
                "nothing to replay for {}: {} replayed before, {} left out",
                plan.code, plan.already_replayed, plan.skipped
            )),
            DataEvent::ReplayPlanned(Ok(plan)) => {
                self.mode = Mode::Confirm(DataCmd::Replay(Box::new(plan)).into());
            }
        }
        if let Some(b) = &mut self.browse {
            b.move_selection(0); // keep the selection within what arrived
        }
    }

    fn move_selection(&mut self, delta: i64) {
        if self.view == View::Kafka
            && let Some(b) = &mut self.browse
        {
            b.move_selection(delta);
            return;
        }
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
            View::Stack => self.stack.rows.len(),
            View::Hdfs | View::Postgres | View::Overview | View::Pipeline => 0,
        }
    }

    #[must_use]
    pub fn selected(&self) -> usize {
        self.selection[self.view.index()]
    }

    /// Whether `name` passes the `/` filter.
    pub(crate) fn matches(&self, name: &str) -> bool {
        self.filter.is_empty() || name.to_lowercase().contains(&self.filter.to_lowercase())
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
                self.fail(format!("{dag} has no run to clear"));
            }
        }
    }

    /// Runs a `:` command line.
    fn run_command(&mut self, line: &str) -> Vec<Cmd> {
        let command = match command::parse(line) {
            Ok(Some(c)) => c,
            Ok(None) => return Vec::new(),
            Err(e) => {
                self.fail(e.to_string());
                return Vec::new();
            }
        };
        match command {
            Command::Quit => self.quit = true,
            Command::StartStage { kind, how } => return vec![Cmd::StartStage { kind, how }],
            Command::StopStage(kind) => return vec![Cmd::StopStage(kind)],
            Command::Stack(cmd @ StackCmd::Down { .. }) => self.mode = Mode::Confirm(Cmd::Stack(cmd)),
            Command::Stack(cmd) => {
                if let StackCmd::Stop(service) | StackCmd::Start(service) | StackCmd::Restart(service) = &cmd
                    && !self.stack.rows.iter().any(|r| &r.service == service)
                {
                    let known: Vec<&str> = self.stack.rows.iter().map(|r| r.service.as_str()).collect();
                    self.fail(format!(
                        "no service {service:?} in the stack (services: {})",
                        known.join(", ")
                    ));
                    return Vec::new();
                }
                return self.stack_cmd(cmd);
            }
            Command::Trigger(dag) => self.mode = Mode::Confirm(Cmd::TriggerDag(dag)),
            Command::SetPaused { dag_id, paused } => self.mode = Mode::Confirm(Cmd::SetPaused { dag_id, paused }),
            Command::Clear { dag_id, run } => self.ask_clear_of(&dag_id, run),
            Command::Lesson(lesson) => self.mode = Mode::Confirm(Cmd::Lesson(lesson)),
            Command::View(v) => self.switch(v),
            Command::Batch => return vec![Cmd::Batch],
            Command::Tail(request) => return self.open_records(request),
            Command::DeadLetters => return self.open_dead_letters(),
            Command::Reset { group, to, scope } => return self.plan(DataCmd::PlanReset { group, to, scope }),
            Command::Replay(code) => return self.plan(DataCmd::PlanReplay(code)),
            Command::Save(path) => return self.save_logs(path),
            Command::Explain(on) => {
                self.explain = on.unwrap_or(!self.explain);
                self.say(if self.explain {
                    "explaining: each action shows its native commands on the right (:explain off)".into()
                } else {
                    "no longer explaining".into()
                });
            }
        }
        Vec::new()
    }

    /// Starts the embedded lab in this monitor (once).
    pub fn start_embedded(&mut self) -> Vec<Cmd> {
        if self.embedded.is_some() {
            self.dirty = false;
            return Vec::new();
        }
        self.embedded = Some(EmbeddedView::default());
        self.say("starting the embedded lab: in-process Kafka broker, local raw zone, throwaway PostgreSQL …".into());
        vec![Cmd::StartEmbedded]
    }

    fn on_embedded(&mut self, event: EmbeddedEvent) -> Vec<Cmd> {
        match event {
            EmbeddedEvent::Started(Ok(info)) => {
                // What the probes said about the stack's endpoints no longer applies.
                let docker = self.lab.docker.take();
                self.lab = LabSnapshot {
                    docker,
                    ..LabSnapshot::default()
                };
                self.lag_history.clear();
                self.trends.clear();
                // The banner says the rest (the broker, the raw zone, the batch's schedule).
                self.say(format!(
                    "embedded lab running at {} msg/s: q stops it and removes its files",
                    info.rate
                ));
                self.embedded.get_or_insert_with(EmbeddedView::default).info = Some(info);
                return vec![Cmd::UseEmbedded, Cmd::StartEmbeddedStages];
            }
            EmbeddedEvent::Started(Err(e)) => {
                self.embedded = None;
                self.fail(format!("the embedded lab did not start: {}", first_line(&e)));
            }
            EmbeddedEvent::BatchStarted { .. } => {
                if let Some(e) = &mut self.embedded {
                    e.batch_running = true;
                }
            }
            EmbeddedEvent::BatchDone(run) => {
                match (&run.result, run.trigger) {
                    (Err(e), _) => self.fail(format!("the batch failed: {}", first_line(e))),
                    (Ok(totals), super::embedded::BatchTrigger::Command) => {
                        let rows: u64 = totals.tables.values().sum();
                        self.say(format!(
                            "batch done in {:.1} s: {} raw-zone files, {} rows in the serving tables",
                            run.elapsed_ms as f64 / 1000.0,
                            totals.input_files,
                            super::views::count(i64::try_from(rows).unwrap_or(i64::MAX))
                        ));
                    }
                    (Ok(_), _) => {}
                }
                if let Some(e) = &mut self.embedded {
                    e.batch_running = false;
                    if e.batches.len() == BATCH_RUNS {
                        e.batches.pop_back();
                    }
                    e.batches.push_front(run);
                }
            }
        }
        Vec::new()
    }

    /// Shows `text` in the footer as an error.
    fn fail(&mut self, text: String) {
        self.notice = Some(Notice { text, error: true });
    }

    /// Shows `text` in the footer.
    fn say(&mut self, text: String) {
        self.notice = Some(Notice { text, error: false });
    }
}

/// The footer's answer to Enter on the dead-letter list before the broker answered.
const STILL_READING_DLQ: &str = "still reading the dead-letter topic: Enter opens a reason once they show";

/// Replica changes the monitor remembers (a broker going down moves every partition it hosted).
const REPLICA_CHANGES_KEPT: usize = 200;

fn push_bounded(buf: &mut VecDeque<u64>, v: u64) {
    if buf.len() == HISTORY_LEN {
        buf.pop_front();
    }
    buf.push_back(v);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probes::kafka::Group;
    use crate::probes::{Probed, ServiceSnapshot};
    use crate::tui::stages::StageStart;
    use crate::tui::views::tabs::tab_labels;

    fn key(c: KeyCode) -> Msg {
        Msg::Key(KeyEvent::new(c, KeyModifiers::NONE))
    }

    #[test]
    fn number_keys_and_tab_switch_views() {
        let mut app = App::new(Theme::no_color());
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
        let mut app = App::new(Theme::no_color());
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
    fn lesson_asks_first_then_runs_and_narrates_in_the_footer() {
        let mut app = App::new(Theme::no_color());
        assert!(app.run_command("lesson datanode").is_empty());
        assert!(app.notice.as_ref().unwrap().text.contains("datanode-down"));
        assert!(app.run_command("lesson consumer-lag").is_empty());
        assert_eq!(
            app.update(key(KeyCode::Char('y'))),
            vec![Cmd::Lesson(crate::lesson::Lesson::ConsumerLag)]
        );
        app.update(Msg::Lesson(crate::lesson::LessonEvent::Signal {
            what: "consumer lag grew".into(),
            value: "900 messages behind".into(),
        }));
        assert_eq!(
            app.notice.as_ref().unwrap().text,
            "lesson ✔ consumer lag grew: 900 messages behind"
        );
        app.update(Msg::LessonDone(Err("lesson consumer-lag: did not see x\nmore".into())));
        let notice = app.notice.as_ref().unwrap();
        assert!(
            notice.error && notice.text.ends_with("did not see x"),
            "{}",
            notice.text
        );
    }

    #[test]
    fn unknown_commands_and_quit() {
        let mut app = App::new(Theme::no_color());
        app.run_command("frobnicate");
        assert!(app.notice.as_ref().unwrap().error);
        app.run_command("view kafka");
        assert_eq!(app.view, View::Kafka);
        app.run_command("q");
        assert!(app.quit);
    }

    #[test]
    fn stage_commands_parse_their_options_and_services_stay_services() {
        let mut app = App::new(Theme::no_color());
        assert_eq!(
            app.run_command("produce --rate 50"),
            vec![Cmd::StartStage {
                kind: StageKind::Producer,
                how: StageStart {
                    rate: Some(50),
                    data: None
                }
            }]
        );
        assert_eq!(
            app.run_command("stop transform"),
            vec![Cmd::StopStage(StageKind::Transform)]
        );
        assert_eq!(
            app.run_command("start consume"),
            vec![Cmd::StartStage {
                kind: StageKind::Consumer,
                how: StageStart::default()
            }]
        );
        for bad in [
            "produce --rate 0",
            "produce --speed 3",
            "transform --rate 5",
            "restart consumer",
        ] {
            app.notice = None;
            assert!(app.run_command(bad).is_empty(), "{bad}");
            assert!(app.notice.as_ref().unwrap().error, "{bad}");
        }
        // Not a stage: a service of the stack (none loaded here, so it is refused by name).
        assert!(app.run_command("stop datanode").is_empty());
        assert!(app.notice.as_ref().unwrap().text.contains("no service \"datanode\""));
    }

    #[test]
    fn stage_reports_become_rates_and_an_outcome() {
        let mut app = App::new(Theme::no_color());
        let snap = |input, output| StageSnapshot {
            input,
            output,
            ..StageSnapshot::default()
        };
        let kind = StageKind::Producer;
        app.update(Msg::Stage(StageEvent::Stats {
            kind,
            snapshot: snap(0, 0),
        }));
        app.now.instant += std::time::Duration::from_millis(20);
        app.update(Msg::Stage(StageEvent::Stats {
            kind,
            snapshot: snap(100, 90),
        }));
        let v = &app.stages[&kind];
        assert!(v.running && v.rate_in.unwrap() > 0.0 && v.rate_out.unwrap() > 0.0);
        app.update(Msg::Stage(StageEvent::Done {
            kind,
            snapshot: snap(100, 100),
            result: Err("Kafka: cannot deliver\nis the broker running?".into()),
        }));
        let v = &app.stages[&kind];
        assert!(!v.running && v.rate_in.is_none());
        assert_eq!(v.snapshot.output, 100);
        assert_eq!(
            app.notice.as_ref().unwrap().text,
            "the producer failed: Kafka: cannot deliver"
        );
    }

    #[test]
    fn help_overlay_opens_and_any_key_closes_it_and_ctrl_c_quits() {
        let mut app = App::new(Theme::no_color());
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
        let mut app = App::new(Theme::no_color());
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
    fn replica_changes_are_kept_across_polls_and_bounded() {
        use crate::probes::kafka_cluster::{ClusterHealth, ReplicaChange};
        let mut app = App::new(Theme::no_color());
        let poll = |changes: Vec<ReplicaChange>| {
            Msg::Probe(Box::new(ServiceSnapshot::Kafka(Probed {
                status: crate::probes::Status::unknown(""),
                detail: Some(crate::probes::kafka::KafkaSnapshot {
                    cluster: ClusterHealth {
                        changes,
                        ..ClusterHealth::default()
                    },
                    ..Default::default()
                }),
            })))
        };
        let moved = |p: i32| ReplicaChange::LeaderMoved {
            topic: "t".into(),
            partition: p,
            from: 1,
            to: 2,
        };
        app.update(poll(vec![moved(0), moved(1)]));
        // The next poll reports nothing new: what the first one saw stays.
        app.update(poll(Vec::new()));
        assert_eq!(app.replica_changes.len(), 2);
        for p in 0..(REPLICA_CHANGES_KEPT as i32 + 3) {
            app.update(poll(vec![moved(p)]));
        }
        assert_eq!(app.replica_changes.len(), REPLICA_CHANGES_KEPT);
        assert_eq!(
            app.replica_changes.back().unwrap().1,
            moved(REPLICA_CHANGES_KEPT as i32 + 2)
        );
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
            // Labels with a divider between each two.
            let total: usize = labels.iter().map(|(_, l)| l.chars().count() + 1).sum::<usize>() - 1;
            assert!(total <= width as usize, "all tabs fit in {width} columns");
        }
    }
}
