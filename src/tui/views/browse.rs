//! The Kafka view's data browser: a topic's records (list, then the selected record's headers and
//! JSON value), or the dead-letter topic grouped by reason (list, then the selected reason's
//! example with where it came from).

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::Line;
use ratatui::widgets::{Block, Cell, Paragraph, Row, StatefulWidget, Table, TableState, Widget, Wrap};

use super::count;
use crate::kafka_tools::dlq::Summary;
use crate::kafka_tools::tail::{ShownRecord, Start, Tail, TailRequest};
use crate::tui::app::App;
use crate::tui::data::Browse;
use crate::tui::keys::Action;

pub fn render(app: &App, browse: &Browse, area: Rect, buf: &mut Buffer) {
    let [list, detail] = Layout::vertical([Constraint::Percentage(45), Constraint::Fill(1)]).areas(area);
    match browse {
        Browse::Records {
            request,
            found,
            selected,
        } => match found {
            None => waiting(app, &format!(" {} ", request.topic), "reading the records …", area, buf),
            Some(Err(e)) => failed(app, &format!(" {} ", request.topic), e, area, buf),
            Some(Ok(tail)) => {
                render_records(app, request, tail, *selected, list, buf);
                render_record(app, tail.records.get(*selected), detail, buf);
            }
        },
        Browse::DeadLetters { found, selected } => match found {
            None => waiting(app, " Dead letters ", "reading the dead-letter topic …", area, buf),
            Some(Err(e)) => failed(app, " Dead letters ", e, area, buf),
            Some(Ok(summary)) => {
                render_reasons(app, summary, *selected, list, buf);
                render_reason(app, summary, *selected, detail, buf);
            }
        },
    }
}

fn block(app: &App, title: String) -> Block<'static> {
    Block::bordered()
        .border_style(app.theme.accent())
        .title(Line::styled(title, app.theme.title()))
}

fn waiting(app: &App, title: &str, text: &str, area: Rect, buf: &mut Buffer) {
    Paragraph::new(text.to_string())
        .style(app.theme.dim())
        .block(block(app, title.to_string()))
        .render(area, buf);
}

fn failed(app: &App, title: &str, error: &str, area: Rect, buf: &mut Buffer) {
    Paragraph::new(error.to_string())
        .style(app.theme.error())
        .wrap(Wrap { trim: false })
        .block(block(
            app,
            format!(
                "{title}({}: again, {}: back) ",
                app.keymap.shown(Action::Refresh),
                app.keymap.shown(Action::Back)
            ),
        ))
        .render(area, buf);
}

/// What was read to find the records: the filter, and how many records were scanned.
fn scan_summary(request: &TailRequest, tail: &Tail) -> String {
    let f = &request.filter;
    let mut filters = Vec::new();
    if let Some(k) = &f.key {
        filters.push(format!("key {k}"));
    }
    if let Some((n, v)) = &f.header {
        filters.push(format!("{n}={v}"));
    }
    if let Some((n, v)) = &f.field {
        filters.push(format!("{n}={v}"));
    }
    let filtered = if filters.is_empty() {
        String::new()
    } else {
        format!(" where {}", filters.join(", "))
    };
    let mut said = format!(
        "{} shown{filtered}; {} matched of {} scanned",
        count(tail.records.len() as i64),
        count(tail.matched as i64),
        count(tail.scanned as i64)
    );
    // The newest are read over their whole range, so the offsets no record came from are
    // transaction markers or records of aborted transactions (a read_committed reader skips both).
    if request.start == Start::Newest {
        let offsets: i64 = tail.ranges.values().map(|(first, end)| end - first).sum();
        let not_records = offsets - i64::try_from(tail.scanned).unwrap_or(i64::MAX);
        if not_records > 0 {
            said.push_str(&format!("; {} offsets were markers or aborted", count(not_records)));
        }
    }
    said
}

/// Below this width the lists show times without the date, and narrower key columns.
const WIDE: u16 = 120;

/// A record's RFC 3339 time, without the date when the list is narrow.
fn time(rfc3339: Option<&str>, wide: bool) -> String {
    match rfc3339 {
        None => "-".into(),
        Some(t) if wide => t.to_string(),
        Some(t) => t
            .split_once('T')
            .map_or(t, |(_, time)| time)
            .trim_end_matches('Z')
            .to_string(),
    }
}

fn render_records(app: &App, request: &TailRequest, tail: &Tail, selected: usize, area: Rect, buf: &mut Buffer) {
    let wide = area.width >= WIDE;
    let rows: Vec<Row> = tail
        .records
        .iter()
        .map(|r| {
            Row::new(vec![
                Cell::from(r.partition.to_string()),
                Cell::from(r.offset.to_string()),
                Cell::from(time(r.timestamp.as_deref(), wide)),
                Cell::from(r.key.clone().unwrap_or_else(|| "-".into())),
                Cell::from(one_line(&r.value)),
            ])
        })
        .collect();
    let widths = [Constraint::Length(4), Constraint::Length(9)];
    let header = ["part", "offset", "timestamp", "key", "value"];
    let title = format!(" {}: {} ", tail.topic, scan_summary(request, tail));
    render_list(app, (rows, widths, header), wide, title, selected, area, buf);
}

/// A list of the browser: two columns of `widths`, two of times (or keys), then one that fills.
fn render_list(
    app: &App,
    (rows, widths, header): (Vec<Row>, [Constraint; 2], [&str; 5]),
    wide: bool,
    title: String,
    selected: usize,
    area: Rect,
    buf: &mut Buffer,
) {
    let empty = rows.is_empty();
    let time = Constraint::Length(if wide { 24 } else { 12 });
    let table = Table::new(rows, [widths[0], widths[1], time, time, Constraint::Fill(1)])
        .header(Row::new(header).style(app.theme.dim()))
        .row_highlight_style(app.theme.selected())
        .block(block(app, title));
    let mut state = TableState::default().with_selected((!empty).then_some(selected));
    StatefulWidget::render(table, area, buf, &mut state);
}

/// A value on one line, for the list.
fn one_line(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(text) => text.replace(['\n', '\r'], " "),
        other => other.to_string(),
    }
}

fn render_record(app: &App, record: Option<&ShownRecord>, area: Rect, buf: &mut Buffer) {
    let Some(r) = record else {
        waiting(app, " Record ", "no record matched (r reads again)", area, buf);
        return;
    };
    let lines: Vec<Line> = r
        .headers
        .iter()
        .map(|(name, value)| Line::styled(format!("{name}: {value}"), app.theme.dim()))
        .collect();
    let title = format!(
        " [{}]@{}  {}  key {} ",
        r.partition,
        r.offset,
        r.timestamp.as_deref().unwrap_or("-"),
        r.key.as_deref().unwrap_or("-")
    );
    render_value(app, lines, &r.value, title, area, buf);
}

/// `lines` (headers, origin), then a record's value: indented JSON, or its text as it is.
fn render_value(
    app: &App,
    mut lines: Vec<Line>,
    value: &serde_json::Value,
    title: String,
    area: Rect,
    buf: &mut Buffer,
) {
    let value = match value {
        serde_json::Value::String(text) => text.clone(),
        other => serde_json::to_string_pretty(other).unwrap_or_default(),
    };
    lines.extend(value.lines().map(|l| Line::from(l.to_string())));
    Paragraph::new(lines)
        .wrap(Wrap { trim: false })
        .block(block(app, title))
        .render(area, buf);
}

fn render_reasons(app: &App, summary: &Summary, selected: usize, area: Rect, buf: &mut Buffer) {
    let wide = area.width >= WIDE;
    let rows: Vec<Row> = summary
        .reasons
        .iter()
        .map(|r| {
            Row::new(vec![
                Cell::from(r.code.clone()),
                Cell::from(count(r.count as i64)),
                Cell::from(time(r.first_seen.as_deref(), wide)),
                Cell::from(time(r.last_seen.as_deref(), wide)),
                Cell::from(r.example.headers.get("lab.reason").cloned().unwrap_or_default()),
            ])
        })
        .collect();
    let widths = [Constraint::Length(22), Constraint::Length(7)];
    let header = ["reason", "count", "first seen", "last seen", "e.g."];
    let title = format!(
        " Dead letters in {}: {} ",
        summary.topic,
        count(summary.dead_letters as i64)
    );
    render_list(app, (rows, widths, header), wide, title, selected, area, buf);
}

fn render_reason(app: &App, summary: &Summary, selected: usize, area: Rect, buf: &mut Buffer) {
    let Some(reason) = summary.reasons.get(selected) else {
        waiting(app, " Example ", "the dead-letter topic is empty", area, buf);
        return;
    };
    let h = &reason.example.headers;
    let get = |name: &str| h.get(name).map_or("-", String::as_str).to_string();
    let lines = vec![
        Line::from(get("lab.reason")),
        Line::styled(
            format!(
                "from {}[{}]@{}  {}",
                get("lab.source.topic"),
                get("lab.source.partition"),
                get("lab.source.offset"),
                get("lab.source")
            ),
            app.theme.dim(),
        ),
        Line::from(""),
    ];
    let title = format!(
        " {} — its first dead letter, offset {} (original bytes) ",
        reason.code, reason.example.offset
    );
    render_value(app, lines, &reason.example.value, title, area, buf);
}
