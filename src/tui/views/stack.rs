//! Stack: every service of the stack file with its state (absent, pulling n %, created, starting,
//! waiting for health with a countdown, healthy, unhealthy, exited with code), image, ports and
//! memory; below it the selected service's details, with the failing check and its last log lines
//! when it failed, or the last operation's error.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Row, StatefulWidget, Table, TableState, Widget, Wrap};

use crate::tui::app::{App, View};
use crate::tui::keys::Action;
use crate::tui::stack_panel::{StackRow, Tone};
use crate::tui::theme::Theme;
use indicatif::HumanBytes;

pub fn render(app: &App, area: Rect, buf: &mut Buffer) {
    let t = app.theme;
    let panel = &app.stack;
    if let Some(e) = &panel.load_error {
        Paragraph::new(vec![
            Line::styled("No stack to manage", t.error()),
            Line::from(e.clone()),
            Line::from(""),
            Line::styled(
                "run lab from the repository (stacks/ is there) or pass --stack NAME|PATH",
                t.dim(),
            ),
        ])
        .wrap(Wrap { trim: true })
        .block(Block::bordered().title(Line::styled(" Stack ", t.title())))
        .render(area, buf);
        return;
    }
    let detail_height = if area.height >= 20 { 10 } else { 6 };
    let [table_area, detail_area] =
        Layout::vertical([Constraint::Min(4), Constraint::Length(detail_height)]).areas(area);
    services_table(app, table_area, buf);
    details(app, detail_area, buf);
}

fn services_table(app: &App, area: Rect, buf: &mut Buffer) {
    let t = app.theme;
    let panel = &app.stack;
    let now = app.now.instant;
    let status = match &panel.busy {
        Some(b) => Span::styled(
            format!(" {} … {}s ", b.what, now.saturating_duration_since(b.since).as_secs()),
            t.accent(),
        ),
        None => match app.lab.docker.as_ref() {
            Some(d) => match &d.detail {
                Some(d) => Span::styled(format!(" Docker {} ", d.server_version), t.dim()),
                None => Span::styled(format!(" Docker: {} ", d.status.reason), t.error()),
            },
            None => Span::styled(" Docker: asking… ", t.dim()),
        },
    };
    let block = Block::bordered().title(Line::from(vec![
        Span::styled(format!(" Stack {} ", panel.name), t.title()),
        Span::styled(format!("({}) ", panel.file), t.dim()),
        status,
    ]));
    let selected = app.selection[View::Stack.index()];
    // Narrow terminals drop the image column (the details pane still names it).
    let wide = area.width >= 110;
    let rows: Vec<Row> = panel
        .rows
        .iter()
        .map(|r| {
            let mut cells = vec![
                Span::raw(service_label(r)),
                Span::styled(r.phase.label(now), tone_style(t, r.phase.tone())),
            ];
            if wide {
                cells.push(Span::raw(r.image.clone()));
            }
            cells.push(Span::raw(if r.ports.is_empty() {
                "-".to_string()
            } else {
                r.ports.join(",")
            }));
            cells.push(Span::raw(memory(r)));
            Row::new(cells)
        })
        .collect();
    let name_width = panel
        .rows
        .iter()
        .map(|r| service_label(r).chars().count() as u16 + 1)
        .max()
        .unwrap_or(8)
        .clamp(8, 28);
    let (header, widths) = if wide {
        (
            vec!["SERVICE", "STATE", "IMAGE", "PORTS (127.0.0.1)", "MEMORY  CPU"],
            vec![
                Constraint::Length(name_width),
                Constraint::Length(24),
                Constraint::Min(14),
                Constraint::Length(18),
                Constraint::Length(16),
            ],
        )
    } else {
        (
            vec!["SERVICE", "STATE", "PORTS", "MEMORY  CPU"],
            vec![
                Constraint::Length(name_width),
                Constraint::Length(24),
                Constraint::Min(10),
                Constraint::Length(15),
            ],
        )
    };
    let empty = rows.is_empty();
    let table = Table::new(rows, widths)
        .header(Row::new(header).style(t.title()))
        .row_highlight_style(t.selected())
        .block(block);
    let mut state = TableState::default().with_selected((!empty).then_some(selected));
    StatefulWidget::render(table, area, buf, &mut state);
    super::remember_rows(app, 0, area, 1, state.offset());
}

fn service_label(r: &StackRow) -> String {
    let mut s = r.service.clone();
    if r.one_shot {
        s.push_str(" (job)");
    }
    if !r.profiles.is_empty() {
        s.push_str(&format!(" [{}]", r.profiles.join(",")));
    }
    s
}

fn memory(r: &StackRow) -> String {
    let used = r.memory_used.map(|b| HumanBytes(b).to_string());
    let limit = r.memory_limit.map(|b| HumanBytes(b).to_string());
    let mem = match (used, limit) {
        (Some(u), Some(l)) => format!("{u}/{l}"),
        (Some(u), None) => u,
        (None, Some(l)) => format!("-/{l}"),
        (None, None) => "-".into(),
    };
    match r.cpu_percent {
        Some(c) => format!("{mem} {c:.0}%"),
        None => mem,
    }
}

fn tone_style(t: Theme, tone: Tone) -> ratatui::style::Style {
    match tone {
        Tone::Good => t.state("success"),
        Tone::Busy => t.state("running"),
        Tone::Bad => t.error(),
        Tone::Idle => t.dim(),
    }
}

fn details(app: &App, area: Rect, buf: &mut Buffer) {
    let t = app.theme;
    let panel = &app.stack;
    let row = panel.rows.get(app.selection[View::Stack.index()]);
    let mut lines = Vec::new();
    // The last operation's error first: it says what failed and what to do.
    if let Some(e) = &panel.last_error {
        for l in e.lines() {
            lines.push(Line::styled(l.to_string(), t.error()));
        }
    } else if let Some(r) = row {
        if let Some(f) = &r.failure {
            lines.push(Line::styled(format!("health check failed: {}", f.check), t.error()));
            lines.push(Line::styled(format!("last {} log lines:", f.logs.len()), t.dim()));
            for l in f
                .logs
                .iter()
                .rev()
                .take(usize::from(area.height.saturating_sub(4)))
                .rev()
            {
                lines.push(Line::from(format!("  | {l}")));
            }
        } else {
            let deps = if r.depends_on.is_empty() {
                "nothing".to_string()
            } else {
                r.depends_on.join(", ")
            };
            lines.push(Line::from(format!(
                "image {}; depends on {deps}; restarts {}",
                r.image, r.restarts
            )));
            let k = |a: Action| app.keymap.shown(a);
            lines.push(Line::styled(
                format!(
                    "{}: up all  {}: up this one (and its dependencies)  {}/{}/{}: stop/start/restart  {}/{}: down (+volumes)  {}: pull",
                    k(Action::StackUp),
                    k(Action::StackUpSelected),
                    k(Action::StopSelected),
                    k(Action::StartSelected),
                    k(Action::RestartSelected),
                    k(Action::StackDown),
                    k(Action::StackDownWithVolumes),
                    k(Action::PullImages)
                ),
                t.dim(),
            ));
        }
    }
    let title = row.map_or_else(|| " Details ".to_string(), |r| format!(" {} ", r.service));
    Paragraph::new(lines)
        .wrap(Wrap { trim: false })
        .block(Block::bordered().title(Line::styled(title, t.title())))
        .render(area, buf);
}
