//! Airflow: component health, DAGs (paused, import errors, last run), and for the selected DAG a
//! run × task grid like Airflow's grid view (oldest run left), its recent runs, import errors.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, Paragraph, Row, StatefulWidget, Table, TableState, Widget, Wrap};

use super::{render_unavailable, service_block};
use crate::probes::LabService;
use crate::probes::airflow;
use crate::probes::airflow::AirflowSnapshot;
use crate::tui::app::{App, View};
use crate::tui::theme::Theme;

/// Runs shown in the grid at most.
const GRID_RUNS: usize = 20;

/// What the view shows, derived from the app state (the key handlers select from the same lists).
impl App {
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
}

pub fn render(app: &App, area: Rect, buf: &mut Buffer) {
    if let Some(embedded) = &app.embedded {
        return super::embedded::render_batch_runs(app, embedded, area, buf);
    }
    let t = app.theme;
    let status = app.lab.status(LabService::Airflow);
    let Some(a) = app.lab.airflow.as_ref().and_then(|p| p.detail.as_ref()) else {
        return render_unavailable(t, LabService::Airflow, status, area, buf);
    };
    let outer = service_block(t, LabService::Airflow, status);
    let inner = outer.inner(area);
    outer.render(area, buf);
    let errors_h = if a.import_errors.is_empty() {
        0
    } else {
        (a.import_errors.len() as u16 + 2).min(6)
    };
    let [head, main, errors] =
        Layout::vertical([Constraint::Length(1), Constraint::Fill(1), Constraint::Length(errors_h)]).areas(inner);
    let mut spans = Vec::new();
    for (name, state) in &a.components {
        let s = state.as_deref().unwrap_or("off");
        spans.push(Span::raw(format!("{name} ")));
        spans.push(Span::styled(
            format!("{s}  "),
            t.state(if s == "healthy" { "success" } else { s }),
        ));
    }
    if let Some(p) = &a.auth_problem {
        spans.push(Span::styled(p.clone(), t.error()));
    }
    Line::from(spans).render(head, buf);
    let [list, grid] = Layout::horizontal([Constraint::Percentage(40), Constraint::Percentage(60)]).areas(main);
    render_dags(app, a, list, buf);
    render_grid(app, a, grid, buf);
    if errors_h > 0 {
        let lines: Vec<Line> = a
            .import_errors
            .iter()
            .map(|e| {
                let last = e.stack_trace.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("");
                Line::from(vec![
                    Span::styled(format!("{} ", e.filename), t.error()),
                    Span::raw(last.trim().to_string()),
                ])
            })
            .collect();
        Paragraph::new(lines)
            .wrap(Wrap { trim: true })
            .block(Block::bordered().title(Line::styled(" Import errors ", t.error())))
            .render(errors, buf);
    }
}

fn render_dags(app: &App, a: &AirflowSnapshot, area: Rect, buf: &mut Buffer) {
    let t = app.theme;
    let rows: Vec<Row> = app
        .dags()
        .into_iter()
        .map(|d| {
            let last = a
                .runs_of(&d.dag_id)
                .next()
                .map_or("–", |r| r.state.as_str())
                .to_string();
            let mut name = d.dag_id.clone();
            if d.has_import_errors {
                name.push_str(" !");
            }
            Row::new(vec![
                Cell::from(name),
                Cell::from(if d.is_paused { "paused" } else { "active" }).style(if d.is_paused {
                    t.dim()
                } else {
                    t.state("success")
                }),
                Cell::from(last.clone()).style(t.state(&last)),
            ])
        })
        .collect();
    let empty = rows.is_empty();
    let table = Table::new(
        rows,
        [Constraint::Fill(1), Constraint::Length(6), Constraint::Length(8)],
    )
    .header(Row::new(["DAG", "", "last run"]).style(t.dim()))
    .row_highlight_style(t.selected())
    .block(Block::bordered().title(Line::styled(" DAGs (t trigger, p pause) ", t.title())));
    let mut state = TableState::default().with_selected((!empty).then_some(app.selection[View::Airflow.index()]));
    StatefulWidget::render(table, area, buf, &mut state);
    super::remember_rows(app, 0, area, 1, state.offset());
}

/// One grid cell: a coloured square, or the state's initial without colour.
fn cell(theme: Theme, state: Option<&str>) -> Span<'static> {
    let s = state.unwrap_or("none");
    let glyph = if theme.color {
        "■".to_string()
    } else {
        match s {
            "success" => "S",
            "failed" => "F",
            "upstream_failed" => "U",
            "running" => "R",
            "queued" | "scheduled" => "Q",
            "skipped" => "-",
            _ => "·",
        }
        .to_string()
    };
    Span::styled(glyph, theme.state(s))
}

fn render_grid(app: &App, a: &AirflowSnapshot, area: Rect, buf: &mut Buffer) {
    let t = app.theme;
    let Some(dag) = app.selected_dag() else {
        Paragraph::new("no DAG selected")
            .block(Block::bordered().title(Line::styled(" Grid ", t.title())))
            .render(area, buf);
        return;
    };
    let mut runs: Vec<_> = a.runs_of(&dag.dag_id).take(GRID_RUNS).collect();
    runs.reverse(); // oldest left, like Airflow
    let mut tasks: Vec<&str> = a
        .task_instances
        .iter()
        .filter(|ti| ti.dag_id == dag.dag_id)
        .map(|ti| ti.task_id.as_str())
        .collect();
    tasks.sort_unstable();
    tasks.dedup();
    let name_w = tasks.iter().map(|s| s.len()).max().unwrap_or(4).clamp(4, 24);
    let mut lines = Vec::new();
    let mut run_line = vec![Span::styled(format!("{:<name_w$} ", "run"), t.dim())];
    for r in &runs {
        run_line.push(cell(t, Some(&r.state)));
        run_line.push(Span::raw(" "));
    }
    lines.push(Line::from(run_line));
    for task in &tasks {
        let mut spans = vec![Span::raw(format!("{:<name_w$} ", truncate(task, name_w)))];
        for r in &runs {
            spans.push(cell(t, a.task_state(&dag.dag_id, &r.dag_run_id, task)));
            spans.push(Span::raw(" "));
        }
        lines.push(Line::from(spans));
    }
    lines.push(Line::from(""));
    let now = app.now.utc;
    for r in runs.iter().rev().take(5) {
        let dur = r
            .duration(now)
            .map_or_else(|| "–".into(), |d| super::duration(d.num_milliseconds() as f64 / 1000.0));
        lines.push(Line::from(vec![
            Span::styled(format!("{:<8} ", r.state), t.state(&r.state)),
            Span::raw(format!("{dur:>7}  {}", r.dag_run_id)),
        ]));
    }
    if runs.is_empty() {
        lines.push(Line::styled("no runs yet: t to trigger one", t.dim()));
    }
    Paragraph::new(lines)
        .block(Block::bordered().title(Line::styled(format!(" {} — runs × tasks ", dag.dag_id), t.title())))
        .render(area, buf);
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        s.chars()
            .take(n.saturating_sub(1))
            .chain(std::iter::once('…'))
            .collect()
    }
}
