//! PostgreSQL: server, connections, serving-table row counts and the latest batch run.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, Paragraph, Row, Table, Widget, Wrap};

use super::{count, render_unavailable, service_block};
use crate::probes::LabService;
use crate::tui::app::App;

pub fn render(app: &App, area: Rect, buf: &mut Buffer) {
    if app
        .embedded
        .as_ref()
        .and_then(super::embedded::parquet_serving)
        .is_some()
    {
        return super::embedded::render_absent(app, LabService::Postgres, area, buf);
    }
    let t = app.theme;
    let status = app.lab.status(LabService::Postgres);
    let Some(p) = app.lab.postgres.as_ref().and_then(|p| p.detail.as_ref()) else {
        return render_unavailable(t, LabService::Postgres, status, area, buf);
    };
    let outer = service_block(t, LabService::Postgres, status);
    let inner = outer.inner(area);
    outer.render(area, buf);
    let [head, tables, batch] =
        Layout::vertical([Constraint::Length(1), Constraint::Length(8), Constraint::Fill(1)]).areas(inner);
    Line::from(format!(
        "{}  connections {}/{}",
        p.version, p.connections, p.max_connections
    ))
    .render(head, buf);
    let rows: Vec<Row> = p
        .tables
        .iter()
        .map(|(name, rows)| {
            Row::new(vec![
                Cell::from(format!("yelp.{name}")),
                Cell::from(rows.map_or_else(|| "missing".into(), count)).style(if rows.is_some() {
                    ratatui::style::Style::new()
                } else {
                    t.dim()
                }),
            ])
        })
        .collect();
    Table::new(rows, [Constraint::Fill(1), Constraint::Length(14)])
        .header(Row::new(["serving table", "rows"]).style(t.dim()))
        .block(Block::bordered().title(Line::styled(" Tables ", t.title())))
        .render(tables, buf);
    let lines = match &p.last_batch {
        None => vec![Line::styled("no batch run recorded yet (run `lab batch`)", t.dim())],
        Some(b) => {
            let took = b
                .finished_at
                .map(|f| super::duration((f - b.started_at).num_milliseconds() as f64 / 1000.0))
                .unwrap_or_else(|| "still running".into());
            let mut l = vec![
                Line::from(vec![
                    Span::raw("run "),
                    Span::styled(b.run_id.clone(), t.accent()),
                    Span::raw("  "),
                    Span::styled(b.status.clone(), t.state(&b.status)),
                ]),
                Line::from(format!(
                    "started {}  took {took}",
                    b.started_at.format("%Y-%m-%d %H:%M:%S UTC")
                )),
                Line::from(format!("rows in {}  rows out {}", count(b.rows_in), count(b.rows_out))),
            ];
            if let Some(e) = &b.error {
                l.push(Line::styled(format!("error: {e}"), t.error()));
            }
            l
        }
    };
    Paragraph::new(lines)
        .wrap(Wrap { trim: true })
        .block(Block::bordered().title(Line::styled(" Last batch ", t.title())))
        .render(batch, buf);
}
