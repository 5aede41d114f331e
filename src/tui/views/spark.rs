//! Spark: master status, workers (cores and memory used), running and completed applications.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::Line;
use ratatui::widgets::{Block, Cell, Row, StatefulWidget, Table, TableState, Widget};

use super::{duration, render_unavailable, service_block};
use crate::probes::LabService;
use crate::tui::app::{App, View};

pub fn render(app: &App, area: Rect, buf: &mut Buffer) {
    if app.embedded.is_some() {
        return super::embedded::render_absent(app, LabService::Spark, area, buf);
    }
    let t = app.theme;
    let status = app.lab.status(LabService::Spark);
    let Some(s) = app.lab.spark.as_ref().and_then(|p| p.detail.as_ref()) else {
        return render_unavailable(t, LabService::Spark, status, area, buf);
    };
    let outer = service_block(t, LabService::Spark, status);
    let inner = outer.inner(area);
    outer.render(area, buf);
    let worker_rows = (s.workers.len() as u16 + 3).min(inner.height / 2).max(4);
    let [head, workers, apps] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(worker_rows),
        Constraint::Fill(1),
    ])
    .areas(inner);
    Line::from(vec![
        ratatui::text::Span::styled(s.status.clone(), t.state(&s.status)),
        ratatui::text::Span::raw(format!(
            "  {}  workers {}  cores {}/{}  memory {}/{} MiB",
            s.url, s.aliveworkers, s.coresused, s.cores, s.memoryused, s.memory
        )),
    ])
    .render(head, buf);
    let rows: Vec<Row> = s
        .workers
        .iter()
        .map(|w| {
            Row::new(vec![
                Cell::from(w.id.clone()),
                Cell::from(w.state.clone()).style(t.state(&w.state)),
                Cell::from(format!("{}/{}", w.coresused, w.cores)),
                Cell::from(format!("{}/{} MiB", w.memoryused, w.memory)),
            ])
        })
        .collect();
    let table = Table::new(
        rows,
        [
            Constraint::Fill(1),
            Constraint::Length(6),
            Constraint::Length(6),
            Constraint::Length(16),
        ],
    )
    .header(Row::new(["worker", "state", "cores", "memory"]).style(t.dim()))
    .block(Block::bordered().title(Line::styled(" Workers ", t.title())));
    Widget::render(table, workers, buf);
    let app_rows: Vec<Row> = s
        .activeapps
        .iter()
        .chain(s.completedapps.iter().rev())
        .map(|a| {
            Row::new(vec![
                Cell::from(a.name.clone()),
                Cell::from(a.state.clone()).style(t.state(&a.state)),
                Cell::from(a.cores.to_string()),
                Cell::from(duration(a.duration as f64 / 1000.0)),
                Cell::from(a.id.clone()),
            ])
        })
        .collect();
    let table = Table::new(
        app_rows,
        [
            Constraint::Fill(1),
            Constraint::Length(9),
            Constraint::Length(5),
            Constraint::Length(8),
            Constraint::Fill(1),
        ],
    )
    .header(Row::new(["application", "state", "cores", "duration", "id"]).style(t.dim()))
    .row_highlight_style(t.selected())
    .block(Block::bordered().title(Line::styled(
        format!(
            " Applications: {} running, {} completed ",
            s.activeapps.len(),
            s.completedapps.len()
        ),
        t.title(),
    )));
    let mut state = TableState::default().with_selected(Some(app.selection[View::Spark.index()]));
    StatefulWidget::render(table, apps, buf, &mut state);
    super::remember_rows(app, 0, apps, 1, state.offset());
}
