//! Kafka: consumer groups (state, members, lag, rate, catch-up), topics (partitions, records held,
//! input rate), the selected group's per-partition lag table (Enter; `s` sorts), and its lag trend.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::Line;
use ratatui::widgets::{Block, Cell, Row, Sparkline, StatefulWidget, Table, TableState, Widget};

use super::{count, duration, rate, render_unavailable, service_block};
use crate::probes::LabService;
use crate::probes::kafka::{Group, GroupPartition, Topic};
use crate::tui::app::{App, View};
use crate::tui::keys::Action;

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
    let [head, groups_area, lower, chart] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Percentage(35),
        Constraint::Fill(1),
        Constraint::Length(5),
    ])
    .areas(inner);
    let brokers: Vec<String> = k
        .brokers
        .iter()
        .map(|b| format!("{}:{} (id {})", b.host, b.port, b.id))
        .collect();
    Line::from(format!(
        "brokers {}   DLQ {} holds {}",
        brokers.join(", "),
        k.dlq_topic,
        count(k.dlq_messages)
    ))
    .render(head, buf);
    let pane = app.pane[View::Kafka.index()];
    render_groups(app, pane == 0, groups_area, buf);
    if app.kafka_drill {
        render_lag_table(app, lower, buf);
    } else {
        render_topics(app, pane == 1, lower, buf);
    }
    render_chart(app, chart, buf);
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
            let row = Row::new(vec![
                Cell::from(g.name.clone()),
                Cell::from(g.state.clone()).style(t.state(&g.state)),
                Cell::from(g.members.len().to_string()),
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

fn render_topics(app: &App, focused: bool, area: Rect, buf: &mut Buffer) {
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
            Row::new(vec![
                Cell::from(topic.name.clone()),
                Cell::from(topic.partitions.len().to_string()),
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
            Constraint::Length(12),
            Constraint::Length(8),
            Constraint::Length(9),
        ],
    )
    .header(Row::new(["topic", "parts", "records", "markers", "in"]).style(t.dim()))
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
