//! HDFS: capacity gauge, NameNode figures (blocks, files, safe mode), raw-zone usage per entity
//! and the DataNodes.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::Line;
use ratatui::widgets::{Block, Cell, Gauge, Row, Table, Widget};

use super::{count, render_unavailable, service_block};
use crate::probes::{Health, LabService};
use crate::tui::app::App;
use indicatif::HumanBytes;

pub fn render(app: &App, area: Rect, buf: &mut Buffer) {
    if app.lab.raw_zone.is_some() {
        return super::embedded::render_raw_zone(app, area, buf);
    }
    let t = app.theme;
    let status = app.lab.status(LabService::Hdfs);
    let Some(h) = app.lab.hdfs.as_ref().and_then(|p| p.detail.as_ref()) else {
        return render_unavailable(t, LabService::Hdfs, status, area, buf);
    };
    let outer = service_block(t, LabService::Hdfs, status);
    let inner = outer.inner(area);
    outer.render(area, buf);
    let [gauge, facts, tables] =
        Layout::vertical([Constraint::Length(1), Constraint::Length(2), Constraint::Fill(1)]).areas(inner);
    let ratio = h.used_ratio().clamp(0.0, 1.0);
    let gauge_health = if ratio > 0.9 {
        Health::Down
    } else if ratio > 0.75 {
        Health::Degraded
    } else {
        Health::Up
    };
    Gauge::default()
        .ratio(ratio)
        .label(format!(
            "{} used of {} ({:.1}%), {} free",
            HumanBytes(h.capacity_used),
            HumanBytes(h.capacity_total),
            ratio * 100.0,
            HumanBytes(h.capacity_remaining)
        ))
        .gauge_style(t.health(gauge_health))
        .render(gauge, buf);
    let safe = if h.safe_mode { "ON" } else { "off" };
    // Copies under way show only while there are: a DataNode lost on a cluster (datanode-lost).
    let copying = if h.pending_replication_blocks > 0 {
        format!(" (+{} being copied)", count(h.pending_replication_blocks as i64))
    } else {
        String::new()
    };
    Line::from(format!(
        "{} {}  safe mode {safe}  files {}  blocks {}  under-replicated {}{copying}  missing {}",
        if h.version.is_empty() { "NameNode" } else { "Hadoop" },
        h.version.split(',').next().unwrap_or(""),
        count(h.files_total as i64),
        count(h.blocks_total as i64),
        count(h.under_replicated_blocks as i64),
        count(h.missing_blocks as i64),
    ))
    .render(facts, buf);
    let [zones, nodes] = Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(tables);
    let zone_rows: Vec<Row> = crate::dataset::Entity::ALL
        .iter()
        .map(|e| {
            let z = h.zones.get(e.name());
            Row::new(vec![
                Cell::from(e.name()),
                Cell::from(z.map_or_else(|| "–".into(), |z| count(z.files as i64))),
                Cell::from(z.map_or_else(|| "not yet".into(), |z| HumanBytes(z.bytes).to_string())),
            ])
        })
        .collect();
    Table::new(
        zone_rows,
        [Constraint::Fill(1), Constraint::Length(8), Constraint::Length(11)],
    )
    .header(Row::new(["entity", "files", "size"]).style(t.dim()))
    .block(Block::bordered().title(Line::styled(format!(" Raw zone {} ", h.zone_dir), t.title())))
    .render(zones, buf);
    let node_rows: Vec<Row> = h
        .datanodes
        .iter()
        .map(|n| {
            let health = if n.live { Health::Up } else { Health::Down };
            Row::new(vec![
                Cell::from(n.name.clone()),
                Cell::from(if n.live { "live" } else { "DEAD" }).style(t.health(health)),
                Cell::from(HumanBytes(n.used).to_string()),
                Cell::from(count(n.blocks as i64)),
                Cell::from(format!("{}s", n.last_contact_s)),
            ])
        })
        .collect();
    Table::new(
        node_rows,
        [
            Constraint::Fill(1),
            Constraint::Length(5),
            Constraint::Length(10),
            Constraint::Length(7),
            Constraint::Length(5),
        ],
    )
    .header(Row::new(["datanode", "state", "used", "blocks", "seen"]).style(t.dim()))
    .block(Block::bordered().title(Line::styled(
        format!(" DataNodes {} live / {} dead ", h.live_datanodes, h.dead_datanodes),
        t.title(),
    )))
    .render(nodes, buf);
}
