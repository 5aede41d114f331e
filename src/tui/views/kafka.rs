//! Kafka: consumer groups (state, members, lag, rate, catch-up), topics (partitions, replication,
//! records held, input rate), the selected group's per-partition lag table (Enter; `s` sorts), and
//! its lag trend. On a cluster (several brokers, or replication in trouble) a brokers table on top:
//! each broker's replicas, leaders and in-sync replicas, the under-replicated and offline
//! partitions, and the latest ISR and leader changes.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::Line;
use ratatui::widgets::{Block, Cell, Row, Sparkline, StatefulWidget, Table, TableState, Widget};

use super::{count, duration, rate, render_unavailable, service_block};
use crate::pipeline::kafka::default_group;
use crate::probes::Health;
use crate::probes::LabService;
use crate::probes::kafka::{Group, GroupPartition, KafkaSnapshot, NOT_LISTED, Topic};
use crate::probes::kafka_cluster::{ClusterHealth, NO_LEADER};
use crate::tui::app::{App, StageView, View};
use crate::tui::keys::Action;
use crate::tui::stages::StageKind;

/// What the view shows, derived from the app state (the key handlers select from the same lists).
impl App {
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

    /// The stage this monitor runs in consumer group `group` (the transform or the consumer it
    /// started, the embedded lab's among them), while it runs.
    #[must_use]
    pub fn stage_running_in(&self, group: &str) -> Option<&StageView> {
        let prefix = self
            .lab
            .kafka
            .as_ref()
            .and_then(|p| p.detail.as_ref())
            .and_then(|k| k.dlq_topic.strip_suffix(".dlq"))
            .unwrap_or("yelp");
        [StageKind::Transform, StageKind::Consumer]
            .into_iter()
            .find(|kind| default_group(kind.name(), prefix) == group)
            .and_then(|kind| self.stages.get(&kind))
            .filter(|v| v.running)
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
}

pub fn render(app: &App, area: Rect, buf: &mut Buffer) {
    let status = app.lab.status(LabService::Kafka);
    if let Some(browse) = &app.browse {
        // The browser reads the broker itself: it does not wait for the probe's first answer.
        let outer = service_block(app.theme, LabService::Kafka, status);
        let inner = outer.inner(area);
        outer.render(area, buf);
        return super::browse::render(app, browse, inner, buf);
    }
    let Some(k) = app.lab.kafka.as_ref().and_then(|p| p.detail.as_ref()) else {
        return render_unavailable(app.theme, LabService::Kafka, status, area, buf);
    };
    let outer = service_block(app.theme, LabService::Kafka, status);
    let inner = outer.inner(area);
    outer.render(area, buf);
    let head_height = if shows_cluster(app, k) {
        cluster_height(app, k, inner.height)
    } else {
        1
    };
    let [head, groups_area, lower, chart] = Layout::vertical([
        Constraint::Length(head_height),
        Constraint::Percentage(35),
        Constraint::Fill(1),
        Constraint::Length(5),
    ])
    .areas(inner);
    if shows_cluster(app, k) {
        render_cluster(app, k, head, buf);
    } else {
        let brokers: Vec<String> = k
            .brokers
            .iter()
            .map(|b| format!("{}:{} (id {})", b.host, b.port, b.id))
            .collect();
        Line::from(format!(
            "brokers {}   DLQ {} holds {}",
            brokers.join(", "),
            k.dlq_topic,
            k.dlq_shown(count)
        ))
        .render(head, buf);
    }
    let pane = app.pane[View::Kafka.index()];
    render_groups(app, pane == 0, groups_area, buf);
    if app.kafka_drill {
        render_lag_table(app, lower, buf);
    } else {
        render_topics(app, &k.cluster, pane == 1, lower, buf);
    }
    render_chart(app, chart, buf);
}

/// The brokers table earns its lines on a cluster, or when replication has something to say; a
/// single healthy broker keeps the one-line header.
fn shows_cluster(app: &App, k: &KafkaSnapshot) -> bool {
    k.cluster.brokers.len() > 1 || !k.cluster.healthy() || !app.replica_changes.is_empty()
}

/// Brokers shown at most in the table (the rest are summed up in its last row).
const BROKER_ROWS: usize = 6;
/// Latest replica changes shown under the table.
const CHANGE_ROWS: usize = 3;

/// Latest replica changes shown: fewer on a short terminal, where the groups and topics need the
/// lines.
fn change_rows(app: &App, height: u16) -> usize {
    app.replica_changes.len().min(if height < 40 { 1 } else { CHANGE_ROWS })
}

fn cluster_height(app: &App, k: &KafkaSnapshot, height: u16) -> u16 {
    let brokers = k.cluster.brokers.len().min(BROKER_ROWS + 1);
    let changes = change_rows(app, height);
    u16::try_from(2 + brokers + changes).unwrap_or(u16::MAX)
}

fn render_cluster(app: &App, k: &KafkaSnapshot, area: Rect, buf: &mut Buffer) {
    let t = app.theme;
    let c = &k.cluster;
    let brokers = c.brokers.len().min(BROKER_ROWS + 1);
    let changes = usize::from(area.height).saturating_sub(2 + brokers);
    let [summary, table_area, changes_area] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(u16::try_from(1 + brokers).unwrap_or(u16::MAX)),
        Constraint::Length(u16::try_from(changes).unwrap_or(u16::MAX)),
    ])
    .areas(area);
    let down = c.unlisted().count();
    let mut problems = Vec::new();
    if down > 0 {
        problems.push(format!("{down} not listed"));
    }
    if !c.under_replicated.is_empty() {
        problems.push(format!("{} under-replicated", count(c.under_replicated.len() as i64)));
    }
    if !c.offline.is_empty() {
        // Named: nobody can read or write them, the first thing to look at.
        let mut names: Vec<String> = c
            .offline
            .iter()
            .take(3)
            .map(|p| format!("{}[{}]", p.topic, p.partition))
            .collect();
        if c.offline.len() > 3 {
            names.push("…".into());
        }
        problems.push(format!(
            "{} offline: {}",
            count(c.offline.len() as i64),
            names.join(", ")
        ));
    }
    let (health, style) = if problems.is_empty() {
        ("every partition fully in sync".to_string(), t.state("success"))
    } else if c.offline.is_empty() && down == 0 {
        (problems.join(", "), t.state("running"))
    } else {
        (problems.join(", "), t.error())
    };
    Line::from(vec![
        ratatui::text::Span::raw(format!("brokers {}  ", k.brokers.len())),
        ratatui::text::Span::styled(health, style),
        ratatui::text::Span::raw(format!("   DLQ {} holds {}", k.dlq_topic, k.dlq_shown(count))),
    ])
    .render(summary, buf);
    let mut rows: Vec<Row> = c
        .brokers
        .iter()
        .take(if c.brokers.len() > BROKER_ROWS + 1 {
            BROKER_ROWS
        } else {
            BROKER_ROWS + 1
        })
        .map(|b| {
            let address = k.brokers.iter().find(|m| m.id == b.id).map_or_else(
                || "not listed (down?)".to_string(),
                |m| format!("{}:{}", m.host, m.port),
            );
            let in_sync = format!("{}/{}", b.in_sync, b.replicas);
            let row = Row::new(vec![
                Cell::from(b.id.to_string()),
                Cell::from(address),
                Cell::from(count(b.replicas as i64)),
                Cell::from(count(b.leaders as i64)),
                Cell::from(in_sync).style(if b.in_sync < b.replicas {
                    t.state("running")
                } else {
                    t.dim()
                }),
            ]);
            if b.listed { row } else { row.style(t.error()) }
        })
        .collect();
    if c.brokers.len() > BROKER_ROWS + 1 {
        rows.push(Row::new(vec![
            Cell::from("…"),
            Cell::from(format!("{} more", c.brokers.len() - BROKER_ROWS)),
        ]));
    }
    Widget::render(
        Table::new(
            rows,
            [
                Constraint::Length(6),
                Constraint::Fill(1),
                Constraint::Length(9),
                Constraint::Length(8),
                Constraint::Length(9),
            ],
        )
        .header(Row::new(["broker", "address", "replicas", "leaders", "in sync"]).style(t.dim())),
        table_area,
        buf,
    );
    let lines: Vec<Line> = app
        .replica_changes
        .iter()
        .rev()
        .take(changes)
        .map(|(at, change)| {
            let style = match change {
                crate::probes::kafka_cluster::ReplicaChange::IsrExpanded { .. } => t.state("success"),
                crate::probes::kafka_cluster::ReplicaChange::LeaderMoved { to, .. } if *to == NO_LEADER => t.error(),
                _ => t.state("running"),
            };
            Line::styled(format!("{} {change}", at.format("%H:%M:%S")), style)
        })
        .collect();
    ratatui::widgets::Paragraph::new(lines).render(changes_area, buf);
}

/// A topic's replication: its factor, and how many of its partitions the cluster counts short of
/// in-sync replicas or offline.
fn replication(topic: &Topic, cluster: &ClusterHealth) -> (String, bool, bool) {
    let factor = topic.partitions.iter().map(|p| p.replicas.len()).max().unwrap_or(0);
    let (under, offline) = cluster.topic_trouble(&topic.name);
    let text = match (under, offline) {
        (0, 0) => factor.to_string(),
        (u, 0) => format!("{factor} ({u} under)"),
        (0, o) => format!("{factor} ({o} offline)"),
        (u, o) => format!("{factor} ({o} off, {u} un)"),
    };
    (text, under > 0, offline > 0)
}

fn focus_block(app: &App, title: String, focused: bool) -> Block<'static> {
    let style = if focused { app.theme.accent() } else { app.theme.dim() };
    Block::bordered()
        .border_style(style)
        .title(Line::styled(title, app.theme.title()))
}

fn render_groups(app: &App, focused: bool, area: Rect, buf: &mut Buffer) {
    let t = app.theme;
    let alerts = app.lag_alerts();
    let rows: Vec<Row> = app
        .kafka_groups()
        .into_iter()
        .map(|g| {
            let in_alert = alerts.iter().any(|a| a.group == g.name);
            let (state, style, members) = match unlisted_group_state(g, app.stage_running_in(&g.name)) {
                // A group read by name (the embedded broker lists none): its members are unknown
                // unless this monitor runs them.
                Some((state, health)) => (
                    state,
                    t.health(health),
                    if health == Health::Unknown { "–" } else { "here" }.to_string(),
                ),
                None => (g.state.clone(), t.state(&g.state), g.members.len().to_string()),
            };
            let row = Row::new(vec![
                Cell::from(g.name.clone()),
                Cell::from(state).style(style),
                Cell::from(members),
                Cell::from(count(g.total_lag)),
                Cell::from(rate(g.rate)),
                Cell::from(g.catch_up_s.map_or_else(|| "–".into(), duration)),
            ]);
            // Over its `[alerts]` threshold: the whole group turns red.
            if in_alert { row.style(t.error()) } else { row }
        })
        .collect();
    let empty = rows.is_empty();
    let table = Table::new(
        rows,
        [
            Constraint::Fill(2),
            Constraint::Length(12),
            Constraint::Length(7),
            Constraint::Length(10),
            Constraint::Length(8),
            Constraint::Length(9),
        ],
    )
    .header(Row::new(["group", "state", "members", "lag", "rate", "catch-up"]).style(t.dim()))
    .row_highlight_style(t.selected())
    .block(focus_block(
        app,
        " Consumer groups (Enter: partitions) ".into(),
        focused,
    ));
    let mut state =
        TableState::default().with_selected((focused && !empty).then_some(app.selection[View::Kafka.index()]));
    StatefulWidget::render(table, area, buf, &mut state);
    super::remember_rows(app, 0, area, 1, state.offset());
}

/// The state shown for a group the broker does not list (the embedded broker lists none): that
/// of the stage this monitor runs in it, if any ("running", or "waiting" for the broker), else
/// "not listed". `None` for a listed group, shown as the broker says. "not listed" in yellow
/// beside a stage that ran read as a fault to a newcomer.
pub(super) fn unlisted_group_state(g: &Group, here: Option<&StageView>) -> Option<(String, Health)> {
    (g.state == NOT_LISTED).then(|| match here {
        Some(v) if v.snapshot.waiting_for_broker => ("waiting".into(), Health::Degraded),
        Some(_) => ("running".into(), Health::Up),
        None => (NOT_LISTED.into(), Health::Unknown),
    })
}

fn render_topics(app: &App, cluster: &ClusterHealth, focused: bool, area: Rect, buf: &mut Buffer) {
    let t = app.theme;
    let rows: Vec<Row> = app
        .kafka_topics()
        .into_iter()
        .map(|topic| {
            // Markers and aborted records take offsets but are no records: the records column
            // leaves out those the census counted; "–" for a topic it has not read (not yet, or
            // not one of this lab's), "≥" while it is still reading.
            let markers = match (topic.not_records, topic.census_complete) {
                (None, _) => "–".to_string(),
                (Some(n), true) => count(n),
                (Some(n), false) => format!("≥{}", count(n)),
            };
            let (repl, under, offline) = replication(topic, cluster);
            let repl_style = if offline {
                t.error()
            } else if under {
                t.state("running")
            } else {
                t.dim()
            };
            Row::new(vec![
                Cell::from(topic.name.clone()),
                Cell::from(topic.partitions.len().to_string()),
                Cell::from(repl).style(repl_style),
                Cell::from(count(topic.records())),
                Cell::from(markers),
                Cell::from(rate(topic.rate_in)),
            ])
        })
        .collect();
    let table = Table::new(
        rows,
        [
            Constraint::Fill(1),
            Constraint::Length(5),
            Constraint::Length(15),
            Constraint::Length(12),
            Constraint::Length(8),
            Constraint::Length(9),
        ],
    )
    .header(Row::new(["topic", "parts", "replicas", "records", "markers", "in"]).style(t.dim()))
    .row_highlight_style(t.selected())
    .block(focus_block(
        app,
        format!(
            " Topics ({}: records, {}: dead letters) ",
            app.keymap.shown(Action::DrillIn),
            app.keymap.shown(Action::DeadLetters)
        ),
        focused,
    ));
    let mut state = TableState::default().with_selected(focused.then_some(app.selection[View::Kafka.index()]));
    StatefulWidget::render(table, area, buf, &mut state);
    super::remember_rows(app, 1, area, 1, state.offset());
}

fn render_lag_table(app: &App, area: Rect, buf: &mut Buffer) {
    let t = app.theme;
    let name = app.selected_group().map_or("", |g| g.name.as_str());
    let rows: Vec<Row> = app
        .lag_table()
        .into_iter()
        .map(|p| {
            let lag_style = if p.lag > 0 {
                t.state("running")
            } else {
                t.state("success")
            };
            Row::new(vec![
                Cell::from(p.topic.clone()),
                Cell::from(p.partition.to_string()),
                Cell::from(p.committed.map_or_else(|| "none".into(), count)),
                Cell::from(count(p.high)),
                Cell::from(count(p.lag)).style(lag_style),
            ])
        })
        .collect();
    let sort = if app.sort_by_name { "by name" } else { "by lag" };
    let table = Table::new(
        rows,
        [
            Constraint::Fill(1),
            Constraint::Length(5),
            Constraint::Length(12),
            Constraint::Length(12),
            Constraint::Length(10),
        ],
    )
    .header(Row::new(["topic", "part", "committed", "high", "lag"]).style(t.dim()))
    .block(focus_block(
        app,
        format!(
            " Partition lag of {name} ({sort}; {}: sort, {}: back) ",
            app.keymap.shown(Action::SortPartitions),
            app.keymap.shown(Action::Back)
        ),
        true,
    ));
    Widget::render(table, area, buf);
}

fn render_chart(app: &App, area: Rect, buf: &mut Buffer) {
    let group = app.selected_group();
    let (title, data) = match group {
        Some(g) => (
            format!(" Lag of {} — now {} ", g.name, count(g.total_lag)),
            app.lag_history
                .get(&g.name)
                .map(|h| h.iter().copied().collect::<Vec<u64>>())
                .unwrap_or_default(),
        ),
        None => (" Lag (no consumer group) ".to_string(), Vec::new()),
    };
    let block = Block::bordered().title(Line::styled(title, app.theme.title()));
    let width = block.inner(area).width as usize;
    let data = &data[data.len().saturating_sub(width)..];
    Sparkline::default()
        .data(data)
        .style(app.theme.state("running"))
        .block(block)
        .render(area, buf);
}
