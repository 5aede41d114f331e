//! Overview: one tile per service (border and title coloured by health) with its key figures,
//! plus a trends tile with sparklines of the raw-topic input rate and the total consumer lag.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::Line;
use ratatui::widgets::{Block, Paragraph, Sparkline, Widget, Wrap};

use super::{count, rate, service_block};
use crate::probes::{Health, LabService};
use crate::tui::app::App;
use indicatif::HumanBytes;

pub fn render(app: &App, area: Rect, buf: &mut Buffer) {
    let rows = Layout::vertical([Constraint::Ratio(1, 3); 3]).split(area);
    let mut cells = Vec::new();
    for row in rows.iter() {
        let [a, b] = Layout::horizontal([Constraint::Ratio(1, 2); 2]).areas(*row);
        cells.push(a);
        cells.push(b);
    }
    for (service, cell) in LabService::ALL.into_iter().zip(cells.iter()) {
        tile(app, service, *cell, buf);
    }
    trends(app, cells[5], buf);
}

fn tile(app: &App, service: LabService, area: Rect, buf: &mut Buffer) {
    if let Some(embedded) = &app.embedded
        && (matches!(service, LabService::Spark | LabService::Airflow)
            || (service == LabService::Postgres && super::embedded::parquet_serving(embedded).is_some()))
    {
        return super::embedded::render_tile(app, embedded, service, area, buf);
    }
    let status = app.lab.status(service);
    let block = service_block(app.theme, service, status);
    let mut lines: Vec<Line> = figures(app, service).into_iter().map(Line::from).collect();
    if let Some(s) = status
        && !s.reason.is_empty()
    {
        lines.push(Line::styled(s.reason.clone(), app.theme.health(s.health)));
    }
    if status.is_none() {
        lines.push(Line::styled("waiting for the first answer…", app.theme.dim()));
    }
    Paragraph::new(lines)
        .wrap(Wrap { trim: true })
        .block(block)
        .render(area, buf);
}

/// The key figures of one service, a short line each.
fn figures(app: &App, service: LabService) -> Vec<String> {
    let lab = &app.lab;
    match service {
        LabService::Kafka => lab.kafka.as_ref().and_then(|p| p.detail.as_ref()).map(|k| {
            let lag: i64 = k.groups.iter().map(|g| g.total_lag).sum();
            let rate_in: Option<f64> = k.topics.iter().map(|t| t.rate_in).sum();
            vec![
                format!(
                    "brokers {}  topics {}  groups {}",
                    k.brokers.len(),
                    k.topics.len(),
                    k.groups.len()
                ),
                format!(
                    "in {}  lag {}  DLQ {}",
                    rate(rate_in),
                    count(lag),
                    count(k.dlq_messages)
                ),
            ]
        }),
        LabService::Hdfs if lab.raw_zone.is_some() => lab.raw_zone.as_ref().and_then(|p| p.detail.as_ref()).map(|z| {
            vec![
                format!(
                    "raw zone {} files, {} (local directory)",
                    count(i64::try_from(z.files()).unwrap_or(i64::MAX)),
                    HumanBytes(z.bytes())
                ),
                z.newest.map_or_else(
                    || "no file yet".to_string(),
                    |n| format!("newest file {}", n.format("%H:%M:%S")),
                ),
            ]
        }),
        LabService::Hdfs => lab.hdfs.as_ref().and_then(|p| p.detail.as_ref()).map(|h| {
            vec![
                format!(
                    "used {} of {} ({:.0}%)",
                    HumanBytes(h.capacity_used),
                    HumanBytes(h.capacity_total),
                    h.used_ratio() * 100.0
                ),
                format!("datanodes {} live / {} dead", h.live_datanodes, h.dead_datanodes),
                format!(
                    "raw zone {} files",
                    count(h.zones.values().map(|z| z.files as i64).sum())
                ),
            ]
        }),
        LabService::Spark => lab.spark.as_ref().and_then(|p| p.detail.as_ref()).map(|s| {
            vec![
                format!("{}  workers {}", s.status, s.aliveworkers),
                format!(
                    "cores {}/{}  mem {}/{} MiB",
                    s.coresused, s.cores, s.memoryused, s.memory
                ),
                format!("apps {} running / {} done", s.activeapps.len(), s.completedapps.len()),
            ]
        }),
        LabService::Airflow => lab.airflow.as_ref().and_then(|p| p.detail.as_ref()).map(|a| {
            let last = a.runs.first().map_or_else(
                || "no runs yet".to_string(),
                |r| format!("last {} {}", r.dag_id, r.state),
            );
            vec![
                format!("DAGs {}  import errors {}", a.dags.len(), a.import_errors.len()),
                last,
            ]
        }),
        LabService::Postgres => lab.postgres.as_ref().and_then(|p| p.detail.as_ref()).map(|p| {
            let rows: i64 = p.tables.iter().filter_map(|(_, r)| *r).sum();
            let batch = p
                .last_batch
                .as_ref()
                .map_or_else(|| "no batch yet".to_string(), |b| format!("last batch {}", b.status));
            vec![
                format!("{}  conns {}", p.version, p.connections),
                format!("serving rows {}  {batch}", count(rows)),
            ]
        }),
        LabService::Docker => None, // the Stack view shows the containers
    }
    .unwrap_or_default()
}

fn trends(app: &App, area: Rect, buf: &mut Buffer) {
    let block = Block::bordered().title(Line::styled(" Trends ", app.theme.title()));
    let inner = block.inner(area);
    block.render(area, buf);
    let [l1, s1, l2, s2] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Max(2),
        Constraint::Length(1),
        Constraint::Max(2),
    ])
    .areas(inner);
    let rates: Vec<u64> = app.rate_history.iter().copied().collect();
    let mut lag: Vec<u64> = Vec::new();
    for h in app.lag_history.values() {
        // Sum aligned from the newest point backwards.
        for (i, v) in h.iter().rev().enumerate() {
            if lag.len() <= i {
                lag.push(0);
            }
            lag[i] += v;
        }
    }
    lag.reverse();
    let last = |v: &[u64]| v.last().map_or_else(|| "–".to_string(), |x| count(*x as i64));
    Line::from(format!("records in/s  {}", last(&rates))).render(l1, buf);
    let style = app.theme.health(Health::Up);
    Sparkline::default()
        .data(tail(&rates, s1.width))
        .style(style)
        .render(s1, buf);
    Line::from(format!("consumer lag  {}", last(&lag))).render(l2, buf);
    Sparkline::default()
        .data(tail(&lag, s2.width))
        .style(app.theme.health(Health::Degraded))
        .render(s2, buf);
}

/// The newest `width` points.
fn tail(v: &[u64], width: u16) -> Vec<u64> {
    v[v.len().saturating_sub(width as usize)..].to_vec()
}
