//! Rendering: `impl Widget for &App` draws the tab bar, the current view, the footer and any
//! overlay. Views only read the app; one file per view.

mod airflow;
mod browse;
mod embedded;
mod hdfs;
mod help;
mod kafka;
mod logs;
mod overview;
mod pipeline;
mod postgres;
mod spark;
mod stack;
pub mod tabs;
#[cfg(test)]
mod tests;

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Widget, Wrap};

use super::app::{App, Mode};
use super::theme::{Theme, health_label};
use crate::probes::{Health, LabService, Status};
use tabs::{View, tab_labels};

impl Widget for &App {
    fn render(self, area: Rect, buf: &mut Buffer) {
        self.hits.borrow_mut().clear();
        let [tabs, body, footer] = Layout::vertical([
            Constraint::Length(1),
            Constraint::Min(0),
            Constraint::Length(footer_rows(self, area.width)),
        ])
        .areas(area);
        render_tabs(self, tabs, buf);
        // A lag alert is shown where lag is watched too; the other banners where the stack is.
        let shows_banner = match self.view {
            View::Overview | View::Stack => true,
            View::Kafka | View::Pipeline => !self.lag_alerts().is_empty(),
            _ => false,
        };
        let body = match self.banner().filter(|_| shows_banner) {
            Some(banner) => {
                let style = if banner.error {
                    self.theme.error()
                } else {
                    self.theme.accent()
                };
                let banner = Paragraph::new(Line::styled(banner.text, style)).wrap(Wrap { trim: true });
                // As many lines as the text wraps to at this width (the reason of a missing
                // Docker engine was cut at 80 columns), at most four.
                let height = u16::try_from(banner.line_count(body.width))
                    .unwrap_or(u16::MAX)
                    .clamp(1, 4);
                let [top, rest] = Layout::vertical([Constraint::Length(height), Constraint::Min(0)]).areas(body);
                banner.render(top, buf);
                rest
            }
            _ => body,
        };
        // `:explain on`: the native commands of the latest actions beside the view.
        let body = if self.explain {
            let width = (body.width / 3).clamp(30, 70);
            let [view, panel] = Layout::horizontal([Constraint::Min(0), Constraint::Length(width)]).areas(body);
            render_explain(self, panel, buf);
            view
        } else {
            body
        };
        match self.view {
            View::Overview => overview::render(self, body, buf),
            View::Pipeline => pipeline::render(self, body, buf),
            View::Kafka => kafka::render(self, body, buf),
            View::Hdfs => hdfs::render(self, body, buf),
            View::Spark => spark::render(self, body, buf),
            View::Airflow => airflow::render(self, body, buf),
            View::Postgres => postgres::render(self, body, buf),
            View::Logs => logs::render(self, body, buf),
            View::Stack => stack::render(self, body, buf),
        }
        render_footer(self, footer, buf);
        match &self.mode {
            Mode::Help => help::render(self, body, buf),
            Mode::Confirm(cmd) => render_confirm(self.theme, &cmd.describe(), body, buf),
            _ => {}
        }
    }
}

/// The `:explain` panel: each action the monitor ran, newest at the bottom, with its native
/// command lines (comments dimmed).
fn render_explain(app: &App, area: Rect, buf: &mut Buffer) {
    let t = app.theme;
    let mut lines: Vec<Line> = Vec::new();
    if app.explained.is_empty() {
        lines.push(Line::styled(
            "The actions you take here (stop a service, trigger a DAG, reset offsets, replay) \
             show up here as the native tools' commands.",
            t.dim(),
        ));
    }
    for e in &app.explained {
        lines.push(Line::styled(format!("▸ {}", e.action), t.title()));
        for native in &e.native {
            let style = if native.starts_with('#') {
                t.dim()
            } else {
                Style::default()
            };
            lines.push(Line::styled(format!("  {native}"), style));
        }
    }
    let block = Block::bordered()
        .border_style(t.dim())
        .title(" Native commands (:explain off) ");
    // The newest at the bottom: scroll so that the end shows.
    let inner = block.inner(area);
    let wrapped: usize = lines
        .iter()
        .map(|l| (l.width() / usize::from(inner.width.max(1))) + 1)
        .sum();
    let scroll = wrapped.saturating_sub(usize::from(inner.height));
    Paragraph::new(lines)
        .block(block)
        .wrap(Wrap { trim: false })
        .scroll((u16::try_from(scroll).unwrap_or(u16::MAX), 0))
        .render(area, buf);
}

/// The health of the service behind a view, for the tab's colour.
fn view_health(app: &App, view: View) -> Option<Health> {
    if let Some(embedded) = &app.embedded
        && (matches!(view, View::Spark | View::Airflow)
            || (view == View::Postgres && embedded::parquet_serving(embedded).is_some()))
    {
        return None; // not part of the embedded lab, so neither up nor down
    }
    let service = match view {
        View::Kafka => LabService::Kafka,
        View::Hdfs => LabService::Hdfs,
        View::Spark => LabService::Spark,
        View::Airflow => LabService::Airflow,
        View::Postgres => LabService::Postgres,
        _ => return None,
    };
    Some(app.lab.health(service))
}

fn render_tabs(app: &App, area: Rect, buf: &mut Buffer) {
    let mut spans = Vec::new();
    for (view, label) in tab_labels(area.width) {
        let mut style = view_health(app, view).map_or(Style::new(), |h| app.theme.health(h));
        if view == app.view {
            style = style.patch(app.theme.selected());
        }
        if !spans.is_empty() {
            spans.push(Span::raw("│"));
        }
        spans.push(Span::styled(label, style));
    }
    Paragraph::new(Line::from(spans)).render(area, buf);
}

/// The terminal columns `c` takes (two for a wide character), as ratatui counts them.
pub(super) fn columns_of(c: char) -> usize {
    let mut utf8 = [0; 4];
    Span::raw(&*c.encode_utf8(&mut utf8)).width()
}

/// `text` in lines of at most `width` characters, broken between words (inside a word longer
/// than a line).
pub(super) fn wrapped(text: &str, width: u16) -> Vec<String> {
    let width = usize::from(width.max(1));
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        let mut word: Vec<char> = word.chars().collect();
        loop {
            let used = line.chars().count();
            let gap = usize::from(used > 0);
            if used + gap + word.len() <= width {
                if gap == 1 {
                    line.push(' ');
                }
                line.extend(word);
                break;
            }
            if used > 0 {
                lines.push(std::mem::take(&mut line));
                continue;
            }
            let rest = word.split_off(width);
            lines.push(word.into_iter().collect());
            word = rest;
        }
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

/// The most rows a notice takes at the bottom (the view keeps the rest).
const NOTICE_MAX_ROWS: u16 = 3;

/// One row, or as many as the notice needs in `width` columns (up to [`NOTICE_MAX_ROWS`]): an
/// error cut at the screen's edge lost what to do about it.
fn footer_rows(app: &App, width: u16) -> u16 {
    match (&app.mode, &app.notice) {
        (Mode::Normal, Some(n)) => {
            u16::try_from(wrapped(&n.text, width).len()).map_or(NOTICE_MAX_ROWS, |r| r.clamp(1, NOTICE_MAX_ROWS))
        }
        _ => 1,
    }
}

fn render_footer(app: &App, area: Rect, buf: &mut Buffer) {
    let t = app.theme;
    let line = match &app.mode {
        Mode::Filter => Line::from(vec![
            Span::styled("/", t.accent()),
            Span::raw(app.input.clone()),
            Span::raw("▏"),
        ]),
        Mode::Command => Line::from(vec![
            Span::styled(":", t.accent()),
            Span::raw(app.input.clone()),
            Span::raw("▏"),
        ]),
        Mode::Confirm(_) => Line::from(Span::styled("y: yes   n/Esc: no", t.accent())),
        _ => match &app.notice {
            Some(n) => {
                let style = if n.error { t.error() } else { t.accent() };
                let lines: Vec<Line> = wrapped(&n.text, area.width)
                    .into_iter()
                    .map(|l| Line::styled(l, style))
                    .collect();
                return Paragraph::new(lines).render(area, buf);
            }
            None => {
                let mut spans = Vec::new();
                if !app.filter.is_empty() {
                    spans.push(Span::styled(format!("filter: {}  ", app.filter), t.accent()));
                }
                // The embedded lab has no Airflow: its DAG keys would only say so.
                let airflow_keys_apply = app.embedded.is_none() || app.view != View::Airflow;
                for k in app
                    .keymap
                    .footer(app.view)
                    .filter(|k| airflow_keys_apply || k.view.is_none())
                {
                    spans.push(Span::styled(k.shown.clone(), t.accent()));
                    spans.push(Span::styled(format!(" {}  ", k.help), t.dim()));
                }
                Line::from(spans)
            }
        },
    };
    Paragraph::new(line).render(area, buf);
}

/// The y/n dialog. A question of several lines (a reset's plan, a replay's counts) keeps its lines
/// and its columns; a long line wraps. The y/n answer sits in the bottom border, so it shows even
/// when the question is taller than the screen.
fn render_confirm(theme: Theme, question: &str, area: Rect, buf: &mut Buffer) {
    let widest = question.lines().map(|l| l.chars().count()).max().unwrap_or(0);
    let width = (widest as u16 + 6).clamp(30, area.width.max(30)).min(area.width);
    // Word wrapping breaks earlier than the width: leave room for it.
    let fits = usize::from(width.saturating_sub(2)).saturating_sub(8).max(1);
    let rows: usize = question.lines().map(|l| l.chars().count().div_ceil(fits).max(1)).sum();
    let height = (rows as u16 + 2).min(area.height);
    let popup = centered(area, width, height);
    Clear.render(popup, buf);
    let lines: Vec<Line> = question.lines().map(|l| Line::from(l.to_string())).collect();
    Paragraph::new(lines)
        .wrap(Wrap { trim: false })
        .block(
            Block::bordered()
                .title(" Confirm ")
                .title_bottom(Line::styled(" [y] yes    [n] no ", theme.accent()))
                .border_style(theme.accent()),
        )
        .render(popup, buf);
}

/// Records where a bordered list with `header_rows` drew its rows, for mouse selection.
pub fn remember_rows(app: &App, pane: usize, area: Rect, header_rows: u16, offset: usize) {
    let inner = Block::bordered().inner(area);
    let rows = Rect {
        y: inner.y + header_rows.min(inner.height),
        height: inner.height.saturating_sub(header_rows),
        ..inner
    };
    app.hits.borrow_mut().push(super::app::ListHit { pane, rows, offset });
}

/// A `w`×`h` rectangle centred in `area` (clipped to it).
#[must_use]
pub fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let w = w.min(area.width);
    let h = h.min(area.height);
    Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    }
}

/// A bordered block titled with the service's name and its health word, coloured by health.
pub fn service_block(theme: Theme, service: LabService, status: Option<&Status>) -> Block<'static> {
    let health = status.map_or(Health::Unknown, |s| s.health);
    let latency = status
        .and_then(|s| s.latency_ms)
        .map(|ms| format!(" {ms} ms"))
        .unwrap_or_default();
    Block::default()
        .borders(Borders::ALL)
        .border_style(theme.health(health))
        .title(Line::from(vec![
            Span::styled(format!(" {} ", service.title()), theme.title()),
            Span::styled(format!("{}{latency} ", health_label(health)), theme.health(health)),
        ]))
}

/// The body of a view whose service gave no details: why (down, not probed yet).
pub fn render_unavailable(theme: Theme, service: LabService, status: Option<&Status>, area: Rect, buf: &mut Buffer) {
    let block = service_block(theme, service, status);
    let text = match status {
        None => "waiting for the first answer…".to_string(),
        Some(s) if s.reason.is_empty() => "no details".to_string(),
        Some(s) => s.reason.clone(),
    };
    let health = status.map_or(Health::Unknown, |s| s.health);
    Paragraph::new(vec![
        Line::from(Span::styled(health_label(health), theme.health(health))),
        Line::from(text),
    ])
    .wrap(Wrap { trim: true })
    .block(block)
    .render(area, buf);
}

/// Records per second, compact.
#[must_use]
pub fn rate(r: Option<f64>) -> String {
    match r {
        None => "–".into(),
        Some(r) if r >= 10_000.0 => format!("{:.1}k/s", r / 1000.0),
        Some(r) if r >= 10.0 => format!("{r:.0}/s"),
        Some(r) => format!("{r:.1}/s"),
    }
}

/// Seconds as `1h02m`, `3m05s`, `12.3s`.
#[must_use]
pub fn duration(secs: f64) -> String {
    if !secs.is_finite() || secs < 0.0 {
        return "–".into();
    }
    let s = secs.round() as u64;
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
    } else if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{secs:.1}s")
    }
}

/// Thousands separated by commas (`12,345`); a signed count (a lag) keeps its sign.
#[must_use]
pub fn count(n: i64) -> String {
    let digits = indicatif::HumanCount(n.unsigned_abs());
    if n < 0 {
        format!("-{digits}")
    } else {
        digits.to_string()
    }
}

#[cfg(test)]
pub(crate) mod test_support {
    //! Fixture snapshots and a helper that renders the app into a `TestBackend`.

    use ratatui::Terminal;
    use ratatui::backend::TestBackend;
    use ratatui::buffer::Buffer;

    use crate::probes::LabSnapshot;
    use crate::tui::app::{App, Clock, View};
    use crate::tui::theme::Theme;

    /// `lab status --json` captured from real services with the pipeline's data flowing, as the
    /// monitor has it once its census has counted the DLQ (no transaction markers there): a
    /// one-shot `lab status` never waits for that count, so its capture says offsets.
    pub fn live_lab() -> LabSnapshot {
        let v: serde_json::Value =
            serde_json::from_str(include_str!("../../../tests/fixtures/probes/lab_status_up.json")).unwrap();
        let mut lab: LabSnapshot = serde_json::from_value(v["services"].clone()).unwrap();
        if let Some(k) = lab.kafka.as_mut().and_then(|p| p.detail.as_mut()) {
            let dlq = k.dlq_topic.clone();
            for t in k.topics.iter_mut().filter(|t| t.name == dlq) {
                t.not_records = Some(0);
                t.census_complete = true;
            }
        }
        lab
    }

    /// The same with every service stopped.
    pub fn down_lab() -> LabSnapshot {
        let v: serde_json::Value =
            serde_json::from_str(include_str!("../../../tests/fixtures/probes/lab_status_down.json")).unwrap();
        serde_json::from_value(v["services"].clone()).unwrap()
    }

    /// The wall clock of every view test: the capture day of the fixtures, so durations and
    /// ages in the views are the same on every run.
    pub fn fixed_clock() -> Clock {
        Clock {
            instant: std::time::Instant::now(),
            utc: chrono::DateTime::parse_from_rfc3339("2026-11-24T22:56:20Z")
                .unwrap()
                .with_timezone(&chrono::Utc),
        }
    }

    pub fn app(lab: LabSnapshot, view: View) -> App {
        let mut app = App::new(Theme::default());
        app.now = fixed_clock();
        app.lab = lab;
        app.view = view;
        app
    }

    pub fn draw(app: &App, w: u16, h: u16) -> Buffer {
        let mut terminal = Terminal::new(TestBackend::new(w, h)).unwrap();
        terminal.draw(|f| f.render_widget(app, f.area())).unwrap();
        terminal.backend().buffer().clone()
    }

    pub fn text(buf: &Buffer) -> String {
        let mut s = String::new();
        for y in 0..buf.area.height {
            for x in 0..buf.area.width {
                s.push_str(buf[(x, y)].symbol());
            }
            s.push('\n');
        }
        s
    }

    /// Position of the first cell where `needle` starts.
    pub fn find(buf: &Buffer, needle: &str) -> Option<(u16, u16)> {
        let text = text(buf);
        for (y, line) in text.lines().enumerate() {
            let chars: Vec<char> = line.chars().collect();
            let n: Vec<char> = needle.chars().collect();
            for x in 0..chars.len().saturating_sub(n.len() - 1) {
                if chars[x..x + n.len()] == n[..] {
                    return Some((x as u16, y as u16));
                }
            }
        }
        None
    }
}
