//! What the views show in the embedded lab, where the stack's services are not: the raw zone as
//! a local directory (where HDFS is), the batch runs (where Airflow's DAG runs are), and plain
//! words on what stands in for Spark and Airflow and how to get the real ones.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, Paragraph, Row, Table, Widget, Wrap};

use super::{count, render_unavailable, service_block};
use crate::probes::LabService;
use crate::probes::raw_zone::LocalZoneSnapshot;
use crate::tui::app::{App, EmbeddedView};
use crate::tui::embedded::BATCH_EVERY;
use indicatif::HumanBytes;

/// Where the embedded lab writes its serving tables when it has no PostgreSQL: `Some(what)`.
#[must_use]
pub fn parquet_serving(embedded: &EmbeddedView) -> Option<&str> {
    embedded
        .info
        .as_ref()
        .map(|i| i.serving.as_str())
        .filter(|s| s.starts_with("Parquet"))
}

/// Spark's, Airflow's and (without a database) PostgreSQL's place in the embedded lab.
fn stands_in(service: LabService) -> [&'static str; 2] {
    match service {
        LabService::Postgres => [
            "no PostgreSQL in the embedded lab: the batch writes its serving tables as Parquet files",
            "install PostgreSQL's server binaries (initdb, pg_ctl) or pass --pg URL to load a database",
        ],
        LabService::Spark => [
            "not in the embedded lab: DataFusion runs the batch in this process",
            "`lab up` starts a Spark cluster (the PySpark twin of the batch runs there)",
        ],
        _ => [
            "not in the embedded lab: the monitor runs the batch on a schedule and on :batch",
            "`lab up` starts Airflow with the lambda DAG",
        ],
    }
}

/// A tile's block for a service the embedded lab does not have: named, not coloured as down.
fn absent_block(app: &App, service: LabService) -> Block<'static> {
    Block::bordered().border_style(app.theme.dim()).title(Line::from(vec![
        Span::styled(format!(" {} ", service.title()), app.theme.title()),
        Span::styled("embedded lab ", app.theme.dim()),
    ]))
}

/// The Overview tile of Spark or Airflow in the embedded lab.
pub fn render_tile(app: &App, embedded: &EmbeddedView, service: LabService, area: Rect, buf: &mut Buffer) {
    let [what, how] = stands_in(service);
    let mut lines = Vec::new();
    // The batch's last run first: in a small tile the words around it are what gets left out.
    if service == LabService::Airflow {
        lines.push(Line::from(last_batch(app, embedded)));
    }
    lines.push(Line::from(what));
    if let (LabService::Postgres, Some(serving)) = (service, parquet_serving(embedded)) {
        lines.push(Line::from(serving.to_string()));
    }
    lines.push(Line::styled(how, app.theme.dim()));
    Paragraph::new(lines)
        .wrap(Wrap { trim: true })
        .block(absent_block(app, service))
        .render(area, buf);
}

/// The newest batch run, in one line, with the schedule.
fn last_batch(app: &App, embedded: &EmbeddedView) -> String {
    format!("batch every {} s: {}", BATCH_EVERY.as_secs(), last_run(app, embedded))
}

/// The newest batch run: `last ok 12 s ago, 940 rows`, `running now`, `no run yet`.
pub(super) fn last_run(app: &App, embedded: &EmbeddedView) -> String {
    if embedded.batch_running {
        return "running now".into();
    }
    match embedded.batches.front() {
        None => "no run yet".into(),
        Some(run) => {
            let ago = (app.now.utc - run.started).num_seconds().max(0);
            match &run.result {
                Ok(t) => format!(
                    "last ok {ago} s ago, {} rows",
                    count(i64::try_from(t.tables.values().sum::<u64>()).unwrap_or(i64::MAX))
                ),
                Err(e) => format!("last FAILED {ago} s ago: {e}"),
            }
        }
    }
}

/// The Spark view in the embedded lab, and the PostgreSQL view when it has no database.
pub fn render_absent(app: &App, service: LabService, area: Rect, buf: &mut Buffer) {
    let [what, how] = stands_in(service);
    let mut lines = vec![Line::from(what)];
    if service == LabService::Postgres
        && let Some(serving) = app.embedded.as_ref().and_then(parquet_serving)
    {
        lines.push(Line::from(serving.to_string()));
    }
    lines.extend([Line::from(""), Line::styled(how, app.theme.dim())]);
    Paragraph::new(lines)
        .wrap(Wrap { trim: true })
        .block(absent_block(app, service))
        .render(area, buf);
}

/// The Airflow view in the embedded lab: the batch runs, newest first.
pub fn render_batch_runs(app: &App, embedded: &EmbeddedView, area: Rect, buf: &mut Buffer) {
    let t = app.theme;
    let block = absent_block(app, LabService::Airflow);
    let inner = block.inner(area);
    block.render(area, buf);
    let [what, how] = stands_in(LabService::Airflow);
    let head = Paragraph::new(vec![
        Line::from(format!("{what} (every {} s)", BATCH_EVERY.as_secs())),
        Line::styled(how, t.dim()),
    ])
    .wrap(Wrap { trim: true });
    // Wrapped, not cut: at 80 columns the first line ends past the edge.
    let head_rows = u16::try_from(head.line_count(inner.width)).unwrap_or(u16::MAX);
    let [head_area, runs] = Layout::vertical([Constraint::Length(head_rows), Constraint::Fill(1)]).areas(inner);
    head.render(head_area, buf);
    let tables: Vec<String> = crate::pipeline::batch::SERVING_TABLES
        .iter()
        .map(|t| t.name.to_string())
        .collect();
    let fixed = [8u16, 9, 8, 6, 6];
    let mut header = vec![
        "started".to_string(),
        "by".into(),
        "state".into(),
        "took".into(),
        "files".into(),
    ];
    // Each table's rows under its name, or a short name where the names do not fit (at 80
    // columns `business_summary` and `business_daily` were both cut to `business`).
    let column_count = u16::try_from(fixed.len() + tables.len()).unwrap_or(u16::MAX);
    let per_table = runs
        .width
        .saturating_sub(2 + fixed.iter().sum::<u16>() + column_count.saturating_sub(1))
        / u16::try_from(tables.len().max(1)).unwrap_or(1);
    // All full or all short: `summary` beside `user_summary` would read as the same table.
    let full_names_fit = tables.iter().all(|name| name.chars().count() <= usize::from(per_table));
    header.extend(tables.iter().map(|name| {
        if full_names_fit {
            name.clone()
        } else {
            short_table_name(name).to_string()
        }
    }));
    let rows: Vec<Row> = embedded
        .batches
        .iter()
        .map(|run| {
            let (state, style, files, counts) = match &run.result {
                Ok(totals) => (
                    "success".to_string(),
                    t.health(crate::probes::Health::Up),
                    count(i64::try_from(totals.input_files).unwrap_or(i64::MAX)),
                    tables
                        .iter()
                        .map(|name| {
                            totals
                                .tables
                                .get(name)
                                .map_or_else(|| "–".into(), |n| count(i64::try_from(*n).unwrap_or(i64::MAX)))
                        })
                        .collect::<Vec<_>>(),
                ),
                Err(e) => (
                    format!("failed: {e}"),
                    t.health(crate::probes::Health::Down),
                    "–".into(),
                    Vec::new(),
                ),
            };
            let mut cells = vec![
                Cell::from(run.started.format("%H:%M:%S").to_string()),
                Cell::from(run.trigger.name()),
                Cell::from(state).style(style),
                Cell::from(super::duration(run.elapsed_ms as f64 / 1000.0)),
                Cell::from(files),
            ];
            cells.extend(counts.into_iter().map(Cell::from));
            Row::new(cells)
        })
        .collect();
    let running = if embedded.batch_running {
        " (one running now)"
    } else {
        ""
    };
    let mut widths: Vec<Constraint> = fixed.into_iter().map(Constraint::Length).collect();
    widths.extend(tables.iter().map(|_| Constraint::Fill(1)));
    Table::new(rows, widths)
        .header(Row::new(header).style(t.title()))
        .block(Block::bordered().title(format!(" Batch runs{running} ")))
        .render(runs, buf);
}

/// A serving table's name in at most 7 characters, for a narrow batch-runs table (80 columns
/// leave each table 7).
fn short_table_name(table: &str) -> &str {
    match table {
        "business_summary" => "summary",
        "business_daily" => "daily",
        "city_category_top" => "top",
        "user_summary" => "users",
        other => other,
    }
}

/// The HDFS view in the embedded lab: the raw zone in its local directory.
pub fn render_raw_zone(app: &App, area: Rect, buf: &mut Buffer) {
    let t = app.theme;
    let status = app.lab.status(LabService::Hdfs);
    let Some(z) = app.lab.raw_zone.as_ref().and_then(|p| p.detail.as_ref()) else {
        return render_unavailable(t, LabService::Hdfs, status, area, buf);
    };
    let block = service_block(t, LabService::Hdfs, status).title(Line::styled(" raw zone: local directory ", t.dim()));
    let inner = block.inner(area);
    block.render(area, buf);
    let [head, table] = Layout::vertical([Constraint::Length(2), Constraint::Fill(1)]).areas(inner);
    Paragraph::new(vec![
        Line::from(summary(z)),
        Line::styled(
            "The embedded lab keeps its raw zone on this disk; `lab up` puts it on HDFS.",
            t.dim(),
        ),
    ])
    .render(head, buf);
    let mut rows = Vec::new();
    for e in &z.entities {
        for (date, (files, bytes)) in e.dates.iter().rev() {
            rows.push(Row::new(vec![
                Cell::from(e.entity.clone()),
                Cell::from(format!("date={date}")),
                Cell::from(count(i64::try_from(*files).unwrap_or(i64::MAX))),
                Cell::from(HumanBytes(*bytes).to_string()),
            ]));
        }
    }
    Table::new(
        rows,
        [
            Constraint::Length(10),
            Constraint::Length(16),
            Constraint::Length(8),
            Constraint::Fill(1),
        ],
    )
    .header(Row::new(vec!["entity", "partition", "files", "bytes"]).style(t.title()))
    .block(
        Block::bordered()
            .title(" Partitions by date ")
            .border_style(Style::new()),
    )
    .render(table, buf);
}

/// `N files, X in DIR, newest HH:MM:SS`.
pub fn summary(z: &LocalZoneSnapshot) -> String {
    let newest = z.newest.map_or_else(
        || "no file yet".to_string(),
        |n| format!("newest {}", n.format("%H:%M:%S")),
    );
    format!(
        "{} files, {} in {} ({newest})",
        count(i64::try_from(z.files()).unwrap_or(i64::MAX)),
        HumanBytes(z.bytes()),
        z.path
    )
}
