//! Overview: one tile per service (border and title coloured by health) with what a user looks for
//! first, and a sparkline of its main figure over the last minutes, plus a Lab tile (the stack's
//! containers, stages run here, alerts). Two columns, three at 150 columns and wider.
//!
//! A tile fills its box by priority at any size: its key figures first, then its sparklines (a
//! caption and at least one row each), then the details that only fit in a big tile (per entity,
//! per table, per group); what does not fit is left out, never wrapped into the next line. A line
//! wider than its tile keeps its whole fields and says `…` where it was cut, never a number cut in
//! two (`fit`).

use chrono::{DateTime, Duration, Utc};
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, RenderDirection, Sparkline, Widget};

use super::{columns_of, count, duration, rate, service_block, wrapped};
use crate::probes::kafka::Group;
use crate::probes::{Health, LabService};
use crate::tui::app::App;
use crate::tui::stack_panel::{Phase, Tone};
use crate::tui::trends::{Trend, known_sum};
use indicatif::HumanBytes;

/// Runs per DAG in the Airflow tile's strip.
const STRIP_RUNS: usize = 10;
/// A sparkline's most rows (beyond that a tile leaves the space empty rather than stretch it).
const SPARK_MAX_ROWS: u16 = 8;

pub fn render(app: &App, area: Rect, buf: &mut Buffer) {
    let columns: u32 = if area.width >= 150 { 3 } else { 2 };
    let rows = 6_u32.div_ceil(columns);
    let mut cells = Vec::new();
    for row in Layout::vertical(vec![Constraint::Ratio(1, rows); rows as usize])
        .split(area)
        .iter()
    {
        cells.extend(
            Layout::horizontal(vec![Constraint::Ratio(1, columns); columns as usize])
                .split(*row)
                .iter()
                .copied(),
        );
    }
    for (service, cell) in LabService::ALL.into_iter().zip(cells.iter()) {
        service_tile(app, service, *cell, buf);
    }
    let lab = Block::bordered().title(Line::styled(" Lab ", app.theme.title()));
    let width = lab.inner(cells[5]).width;
    draw(lab_tile(app, width), lab, cells[5], buf);
}

/// What a tile shows, by priority.
#[derive(Default)]
struct Tile {
    /// The key figures, always shown (as many as fit).
    figures: Vec<Line<'static>>,
    sparks: Vec<Spark>,
    /// Details for a big tile.
    details: Vec<Line<'static>>,
}

struct Spark {
    caption: String,
    data: Vec<u64>,
    style: Style,
    /// How a value reads: a count, or bytes.
    unit: fn(u64) -> String,
}

impl Spark {
    /// `written/s  now 1,234  max 2,000`: what the graph's top and right edge stand for.
    fn caption(&self) -> String {
        match (self.data.last(), self.data.iter().max()) {
            (Some(now), Some(max)) => format!("{}  now {}  max {}", self.caption, (self.unit)(*now), (self.unit)(*max)),
            _ => format!("{}  (no history yet)", self.caption),
        }
    }

    fn new(caption: &str, trend: &Trend, width: u16, style: Style) -> Self {
        Self {
            caption: caption.to_string(),
            data: trend.newest(width as usize),
            style,
            unit: |n| count(i64::try_from(n).unwrap_or(i64::MAX)),
        }
    }

    /// Values read as bytes, to three figures (`586 KiB`, `1.34 MiB`, not `1,402,725`).
    fn in_bytes(self) -> Self {
        Self {
            unit: three_figures_of_bytes,
            ..self
        }
    }
}

/// `n` bytes in a binary unit with three significant figures: short enough for a caption.
fn three_figures_of_bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    match unit {
        0 => format!("{n} B"),
        _ if value < 10.0 => format!("{value:.2} {}", UNITS[unit]),
        _ if value < 100.0 => format!("{value:.1} {}", UNITS[unit]),
        _ => format!("{value:.0} {}", UNITS[unit]),
    }
}

fn service_tile(app: &App, service: LabService, area: Rect, buf: &mut Buffer) {
    if let Some(embedded) = &app.embedded
        && (matches!(service, LabService::Spark | LabService::Airflow)
            || (service == LabService::Postgres && super::embedded::parquet_serving(embedded).is_some()))
    {
        return super::embedded::render_tile(app, embedded, service, area, buf);
    }
    let status = app.lab.status(service);
    let block = service_block(app.theme, service, status);
    let width = block.inner(area).width;
    let mut tile = match service {
        LabService::Kafka => kafka(app, width),
        LabService::Hdfs => hdfs(app, width),
        LabService::Spark => spark(app, width),
        LabService::Airflow => airflow(app),
        LabService::Postgres => postgres(app, width),
        LabService::Docker => Tile::default(), // the Lab tile and the Stack view show the containers
    };
    match status {
        None => tile
            .figures
            .push(Line::styled("waiting for the first answer…", app.theme.dim())),
        // Why it is down or degraded comes right after the figures it still has, whole.
        Some(s) if !s.reason.is_empty() => tile.figures.extend(
            wrapped(&s.reason, width)
                .into_iter()
                .map(|l| Line::styled(l, app.theme.health(s.health))),
        ),
        Some(_) => {}
    }
    draw(tile, block, area, buf);
}

/// `line` in `width` columns: a longer one is cut after its last whole field (fields are parted
/// by two spaces or `, `; the comma inside `1,515` is not a break) that leaves room for a closing
/// `…`, or after its last whole word when that field ends before half the width, so that no
/// figure is cut through a number or a name.
fn fit(line: Line<'static>, width: u16) -> Line<'static> {
    let width = usize::from(width);
    if line.width() <= width {
        return line;
    }
    // Every character with the span it is in, to cut across spans and keep their styles.
    let chars: Vec<(char, usize)> = line
        .spans
        .iter()
        .enumerate()
        .flat_map(|(i, s)| s.content.chars().map(move |c| (c, i)))
        .collect();
    // `columns[n]`: the columns the first `n` characters take.
    let mut columns = vec![0];
    for (c, _) in &chars {
        columns.push(columns[columns.len() - 1] + columns_of(*c));
    }
    let room = width.saturating_sub(1);
    let at = |n: usize| chars.get(n).map(|(c, _)| *c);
    let ends_a_word = |n: usize| n > 0 && at(n) == Some(' ') && at(n - 1) != Some(' ');
    let ends_a_field =
        |n: usize| n > 0 && at(n - 1) != Some(' ') && matches!(at(n), Some(',' | ' ')) && at(n + 1) == Some(' ');
    let last_fitting =
        |ends: &dyn Fn(usize) -> bool| (1..chars.len()).filter(|n| ends(*n) && columns[*n] <= room).max();
    let cut = match last_fitting(&ends_a_field) {
        Some(n) if columns[n] * 2 >= room => n,
        field => last_fitting(&ends_a_word)
            .or(field)
            .unwrap_or_else(|| (0..chars.len()).filter(|n| columns[*n] <= room).max().unwrap_or(0)),
    };
    let mut spans: Vec<Span<'static>> = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for (c, i) in chars.into_iter().take(cut) {
        match &mut current {
            Some((span, text)) if *span == i => text.push(c),
            _ => {
                if let Some((span, text)) = current.take() {
                    spans.push(Span::styled(text, line.spans[span].style));
                }
                current = Some((i, c.to_string()));
            }
        }
    }
    let last_style = current
        .as_ref()
        .map_or(Style::new(), |(span, _)| line.spans[*span].style);
    if let Some((span, text)) = current {
        spans.push(Span::styled(text, line.spans[span].style));
    }
    spans.push(Span::styled("…", last_style));
    Line { spans, ..line }
}

/// `head` and then `fields` parted by commas, in lines of `width` columns: a new line where the
/// next field would not fit (a field too long for any line is `fit` later).
fn fields_wrapped(head: &str, fields: &[String], width: u16) -> Vec<String> {
    let width = usize::from(width);
    let mut lines = vec![head.to_string()];
    for (i, field) in fields.iter().enumerate() {
        let line = lines.last_mut().expect("lines start with the head");
        let sep = if i + 1 < fields.len() { "," } else { "" };
        let used = line.chars().count();
        if used > 0 && used + 1 + field.chars().count() + sep.len() > width {
            lines.push(format!("{field}{sep}"));
        } else {
            if used > 0 {
                line.push(' ');
            }
            line.push_str(field);
            line.push_str(sep);
        }
    }
    lines
}

/// Lays a tile out in its box: figures, details, then the sparklines at the bottom.
fn draw(tile: Tile, block: Block<'static>, area: Rect, buf: &mut Buffer) {
    let inner = block.inner(area);
    block.render(area, buf);
    let h = inner.height;
    let figures = (tile.figures.len() as u16).min(h);
    let rest = h - figures;
    let details_wanted = tile.details.len() as u16;
    // Each sparkline takes a caption and at least one row, sharing what the details leave; with
    // a single row left, the first one is drawn without its caption.
    let mut sparks = tile.sparks;
    let mut n = sparks.len() as u16;
    while n > 0 && rest < 2 * n {
        n -= 1;
    }
    let heights: Vec<u16> = if n > 0 {
        let total = rest
            .saturating_sub(details_wanted)
            .clamp(2 * n, (SPARK_MAX_ROWS + 1) * n)
            .min(rest);
        let mut heights = vec![total / n; n as usize];
        heights[0] += total % n;
        heights
    } else if rest == 1 && !sparks.is_empty() {
        vec![1]
    } else {
        Vec::new()
    };
    sparks.truncate(heights.len());
    let details = details_wanted.min(rest - heights.iter().sum::<u16>());
    let mut lines = tile.figures;
    lines.truncate(figures as usize);
    lines.extend(tile.details.into_iter().take(details as usize));
    let lines: Vec<Line> = lines.into_iter().map(|l| fit(l, inner.width)).collect();
    Paragraph::new(lines).render(inner, buf);
    let mut bottom = inner.y + h;
    for (spark, rows) in sparks.into_iter().zip(heights).rev() {
        bottom -= rows;
        let area = Rect {
            y: bottom,
            height: rows,
            ..inner
        };
        let graph = if rows >= 2 {
            let [caption, graph] = Layout::vertical([Constraint::Length(1), Constraint::Fill(1)]).areas(area);
            fit(Line::from(spark.caption()), caption.width).render(caption, buf);
            graph
        } else {
            area
        };
        // Newest at the right edge, the history reaching left as it grows.
        let newest_first: Vec<u64> = spark.data.iter().rev().copied().collect();
        Sparkline::default()
            .data(&newest_first)
            .direction(RenderDirection::RightToLeft)
            .style(spark.style)
            .render(graph, buf);
    }
}

fn kafka(app: &App, width: u16) -> Tile {
    let Some(k) = app.lab.kafka.as_ref().and_then(|p| p.detail.as_ref()) else {
        return Tile::default();
    };
    let t = &app.trends;
    let theme = app.theme;
    let lag = k.total_lag();
    let written = known_sum(k.topics.iter().map(|t| t.rate_in));
    let read = known_sum(k.groups.iter().map(|g| g.rate));
    let mut figures = vec![Line::from(format!(
        "write {}  read {}  lag {}",
        rate(written),
        rate(read),
        count(lag)
    ))];
    let alerts = app.lag_alerts();
    let mut groups: Vec<_> = k.groups.iter().collect();
    groups.sort_by_key(|g| std::cmp::Reverse(g.total_lag));
    figures.push(match groups.first() {
        None => Line::styled("no consumer group yet", theme.dim()),
        Some(g) => {
            let style = if alerts.iter().any(|a| a.group == g.name) {
                theme.error()
            } else {
                Style::new()
            };
            Line::styled(worst_group(g, width), style)
        }
    });
    let growth = match t.dlq.change(Duration::minutes(1), app.now.utc) {
        Some((n, over)) if n > 0 => format!("  +{} in {}", count(n), duration(over.num_seconds() as f64)),
        Some(_) => "  not growing".to_string(),
        None => String::new(),
    };
    let dlq_style = if growth.contains('+') {
        theme.health(Health::Degraded)
    } else {
        Style::new()
    };
    figures.push(Line::styled(format!("DLQ {}{growth}", k.dlq_shown(count)), dlq_style));
    // A cluster in trouble says so first, at any terminal size (the Kafka view has the details).
    let c = &k.cluster;
    if !c.healthy() {
        let down = c.unlisted().count();
        figures.insert(
            0,
            Line::styled(
                format!(
                    "brokers {} ({down} down)  under-replicated {}  offline {}",
                    k.brokers.len(),
                    c.under_replicated.len(),
                    c.offline.len()
                ),
                if c.offline.is_empty() && down == 0 {
                    theme.state("running")
                } else {
                    theme.error()
                },
            ),
        );
    }
    let totals = Line::styled(
        format!(
            "brokers {}  topics {}  groups {}",
            k.brokers.len(),
            k.topics.len(),
            k.groups.len()
        ),
        theme.dim(),
    );
    let details = std::iter::once(totals)
        .chain(groups.iter().map(|g| {
            let state = super::kafka::unlisted_group_state(g, app.stage_running_in(&g.name))
                .map_or_else(|| g.state.to_lowercase(), |(state, _)| state);
            Line::from(format!(
                "  {} {state}  lag {}  {}",
                g.name,
                count(g.total_lag),
                rate(g.rate)
            ))
        }))
        .collect();
    Tile {
        figures,
        sparks: vec![
            Spark::new("written/s", &t.kafka_in, width, theme.health(Health::Up)),
            Spark::new("total lag", &t.lag, width, theme.health(Health::Degraded)),
        ],
        details,
    }
}

/// The group furthest behind, with its catch-up time: in words where they fit, else in the
/// fewest that still say lag and catch-up (at 80 columns the catch-up was cut off).
fn worst_group(g: &Group, width: u16) -> String {
    let lag = count(g.total_lag);
    let Some(catch_up) = g.catch_up_s.map(duration) else {
        return format!("worst {} lag {lag}", g.name);
    };
    let long = format!("worst {} lag {lag}, catch-up {catch_up}", g.name);
    if Line::from(long.as_str()).width() <= usize::from(width) {
        long
    } else {
        format!("{} lag {lag}, in {catch_up}", g.name)
    }
}

fn hdfs(app: &App, width: u16) -> Tile {
    let theme = app.theme;
    let spark = || Spark::new("raw zone", &app.trends.raw_zone_bytes, width, theme.accent()).in_bytes();
    if let Some(z) = app.lab.raw_zone.as_ref().and_then(|p| p.detail.as_ref()) {
        return Tile {
            figures: vec![
                Line::from(format!(
                    "local raw zone {} files, {}",
                    count(i64::try_from(z.files()).unwrap_or(i64::MAX)),
                    HumanBytes(z.bytes())
                )),
                Line::from(z.newest.map_or_else(
                    || "no file yet".to_string(),
                    |n| format!("newest file {}", n.format("%H:%M:%S")),
                )),
            ],
            sparks: vec![spark()],
            details: z
                .entities
                .iter()
                .map(|e| entity_line(&e.entity, e.files, e.bytes))
                .collect(),
        };
    }
    let Some(h) = app.lab.hdfs.as_ref().and_then(|p| p.detail.as_ref()) else {
        return Tile::default();
    };
    let used = h.used_ratio();
    let bar_style = theme.health(if used > 0.9 {
        Health::Down
    } else if used > 0.75 {
        Health::Degraded
    } else {
        Health::Up
    });
    let mut nodes = format!("datanodes {} live / {} dead", h.live_datanodes, h.dead_datanodes);
    if h.under_replicated_blocks > 0 || h.missing_blocks > 0 {
        nodes.push_str(&format!(
            "  under-replicated {}  missing {}",
            h.under_replicated_blocks, h.missing_blocks
        ));
    }
    if h.safe_mode {
        nodes.push_str("  SAFE MODE");
    }
    let (zone_files, zone_bytes) = (h.zone_files(), h.zone_bytes());
    Tile {
        figures: vec![
            Line::from(vec![
                Span::styled(bar(used, (width as usize / 4).clamp(5, 20)), bar_style),
                Span::raw(format!(
                    " {:.0}% of {} used",
                    used * 100.0,
                    HumanBytes(h.capacity_total)
                )),
            ]),
            Line::from(nodes),
            Line::from(format!(
                "raw zone {} files, {}",
                count(i64::try_from(zone_files).unwrap_or(i64::MAX)),
                HumanBytes(zone_bytes)
            )),
        ],
        sparks: vec![spark()],
        details: h
            .zones
            .iter()
            .map(|(entity, z)| entity_line(entity, z.files, z.bytes))
            .collect(),
    }
}

fn entity_line(entity: &str, files: u64, bytes: u64) -> Line<'static> {
    Line::from(format!(
        "  {entity} {} {}, {}",
        count(i64::try_from(files).unwrap_or(i64::MAX)),
        if files == 1 { "file" } else { "files" },
        HumanBytes(bytes)
    ))
}

/// `[██████░░░░]`: `ratio` of `cells` filled, at least one cell for anything above zero.
fn bar(ratio: f64, cells: usize) -> String {
    let ratio = ratio.clamp(0.0, 1.0);
    let mut filled = (ratio * cells as f64).round() as usize;
    if ratio > 0.0 {
        filled = filled.max(1);
    }
    format!("[{}{}]", "█".repeat(filled), "░".repeat(cells - filled))
}

fn spark(app: &App, width: u16) -> Tile {
    let Some(s) = app.lab.spark.as_ref().and_then(|p| p.detail.as_ref()) else {
        return Tile::default();
    };
    let mut figures = vec![
        Line::from(vec![
            Span::styled(s.status.clone(), app.theme.state(&s.status)),
            Span::raw(format!("  workers {}", s.aliveworkers)),
        ]),
        Line::from(format!(
            "cores {}/{}  mem {}/{} MiB",
            s.coresused, s.cores, s.memoryused, s.memory
        )),
        Line::from(format!(
            "apps {} running / {} done",
            s.activeapps.len(),
            s.completedapps.len()
        )),
    ];
    // The app a user just started: the running one, else the latest finished.
    let latest = s
        .activeapps
        .iter()
        .max_by_key(|a| a.starttime)
        .or_else(|| s.completedapps.iter().max_by_key(|a| a.starttime));
    if let Some(a) = latest {
        figures.push(Line::from(vec![
            Span::raw(format!("latest {} ", a.name)),
            Span::styled(a.state.to_lowercase(), app.theme.state(&a.state)),
            Span::raw(format!(" {}", duration(a.duration as f64 / 1000.0))),
        ]));
    }
    Tile {
        figures,
        sparks: vec![Spark::new(
            "cores in use",
            &app.trends.spark_cores,
            width,
            app.theme.accent(),
        )],
        details: s
            .workers
            .iter()
            .map(|w| {
                Line::from(format!(
                    "  {} {}  cores {}/{}",
                    w.host,
                    w.state.to_lowercase(),
                    w.coresused,
                    w.cores
                ))
            })
            .collect(),
    }
}

fn airflow(app: &App) -> Tile {
    let Some(a) = app.lab.airflow.as_ref().and_then(|p| p.detail.as_ref()) else {
        return Tile::default();
    };
    let paused = a.dags.iter().filter(|d| d.is_paused).count();
    let mut figures = vec![Line::from(format!(
        "DAGs {}  paused {paused}  import errors {}",
        a.dags.len(),
        a.import_errors.len()
    ))];
    // The pipeline's own DAG first, then the others by name.
    let mut dags: Vec<_> = a.dags.iter().collect();
    dags.sort_by_key(|d| (d.dag_id != "yelp_batch", d.dag_id.clone()));
    if !dags.iter().any(|d| d.dag_id == "yelp_batch") {
        figures.push(Line::styled("yelp_batch not loaded", app.theme.dim()));
    }
    let mut lines: Vec<Line<'static>> = dags.iter().map(|d| dag_strip(app, d, &a.runs)).collect();
    let mut details = lines.split_off(lines.len().min(2));
    figures.extend(lines);
    // In a big tile: the latest runs, newest first.
    details.extend(a.runs.iter().take(STRIP_RUNS).map(|r| {
        let took = r
            .duration(app.now.utc)
            .map(|d| duration(d.num_milliseconds() as f64 / 1000.0))
            .unwrap_or_default();
        let started = r.start_date.map(|at| clock(at, app.now.utc, true)).unwrap_or_default();
        Line::from(vec![
            Span::raw(format!("  {started} {} ", r.dag_id)),
            Span::styled(r.state.clone(), app.theme.state(&r.state)),
            Span::raw(format!(" {took}  {}", r.run_type)),
        ])
    }));
    Tile {
        figures,
        sparks: Vec::new(),
        details,
    }
}

/// `yelp_batch ■■■✗■□ 12:03  next 12:10`: its last runs, oldest first, coloured by state
/// (a failure is `✗` and a run not finished `□`, readable without colour), when the newest started.
fn dag_strip(app: &App, dag: &crate::probes::airflow::Dag, runs: &[crate::probes::airflow::DagRun]) -> Line<'static> {
    let theme = app.theme;
    let mut spans = vec![Span::raw(format!("{} ", dag.dag_id))];
    let mine: Vec<_> = runs
        .iter()
        .filter(|r| r.dag_id == dag.dag_id)
        .take(STRIP_RUNS)
        .collect();
    if mine.is_empty() {
        spans.push(Span::styled("no runs yet", theme.dim()));
    }
    for r in mine.iter().rev() {
        // Without colour the symbol still tells a failure from a success.
        let symbol = match r.state.as_str() {
            "success" => "■",
            "failed" => "✗",
            _ => "□",
        };
        spans.push(Span::styled(symbol, theme.state(&r.state)));
    }
    if let Some(at) = mine.first().and_then(|r| r.start_date) {
        spans.push(Span::raw(format!(" {}", clock(at, app.now.utc, false))));
    }
    let next = if dag.is_paused {
        "  paused".to_string()
    } else {
        match dag.next_run {
            Some(at) => format!("  next {}", clock(at, app.now.utc, false)),
            None => "  no schedule".to_string(),
        }
    };
    spans.push(Span::styled(next, theme.dim()));
    Line::from(spans)
}

/// A time in UTC as the other views show it: `HH:MM:SS` today (`HH:MM` where a strip must stay
/// short), with the date otherwise.
fn clock(at: DateTime<Utc>, now: DateTime<Utc>, seconds: bool) -> String {
    if at.date_naive() != now.date_naive() {
        at.format("%b %d %H:%M").to_string()
    } else if seconds {
        at.format("%H:%M:%S").to_string()
    } else {
        at.format("%H:%M").to_string()
    }
}

fn postgres(app: &App, width: u16) -> Tile {
    let Some(p) = app.lab.postgres.as_ref().and_then(|p| p.detail.as_ref()) else {
        return Tile::default();
    };
    let theme = app.theme;
    let serving: Vec<_> = p.tables.iter().filter(|(t, _)| t != "batch_runs").collect();
    let existing = serving.iter().filter(|(_, r)| r.is_some()).count();
    let mut figures = vec![Line::from(format!(
        "serving rows {} in {existing} of {} tables",
        count(p.serving_rows()),
        serving.len()
    ))];
    match &p.last_batch {
        // The embedded lab loads it itself; `lab batch` from another terminal would not find
        // its throwaway PostgreSQL.
        None if app.embedded.is_some() => figures.push(Line::styled(
            format!(
                "no batch yet (every {} s, or :batch)",
                crate::tui::embedded::BATCH_EVERY.as_secs()
            ),
            theme.dim(),
        )),
        None => figures.push(Line::styled("no batch yet (lab batch, or the DAG)", theme.dim())),
        Some(b) => {
            let took = b
                .finished_at
                .map(|f| format!(", {}", duration((f - b.started_at).num_milliseconds() as f64 / 1000.0)))
                .unwrap_or_default();
            figures.push(Line::from(vec![
                Span::raw("last batch "),
                Span::styled(b.status.clone(), theme.state(&b.status)),
                Span::raw(format!(" {}{took}", clock(b.started_at, app.now.utc, true))),
            ]));
            let quality = match b.quality.as_deref() {
                Some("passed") => Span::styled("quality passed", theme.state("success")),
                Some(q) => Span::styled(format!("quality {q}"), theme.error()),
                // A run outside the DAG has none.
                None => Span::styled("no quality check", theme.dim()),
            };
            figures.push(Line::from(vec![
                Span::raw(format!("{} in → {} out  ", count(b.rows_in), count(b.rows_out))),
                quality,
            ]));
        }
    }
    figures.push(Line::styled(
        format!("{}  conns {}/{}", p.version, p.connections, p.max_connections),
        theme.dim(),
    ));
    Tile {
        figures,
        sparks: vec![Spark::new(
            "serving rows",
            &app.trends.serving_rows,
            width,
            theme.accent(),
        )],
        details: serving
            .iter()
            .map(|(t, rows)| {
                Line::from(format!(
                    "  {t} {}",
                    rows.map_or_else(|| "not created".to_string(), count)
                ))
            })
            .collect(),
    }
}

/// The stack's containers, the stages run in this monitor, the alerts and what is not up.
fn lab_tile(app: &App, width: u16) -> Tile {
    let theme = app.theme;
    let mut figures = Vec::new();
    if let Some(info) = app.embedded.as_ref().and_then(|e| e.info.as_ref()) {
        figures.push(Line::from(format!(
            "embedded: {} msg/s, batch every {} s",
            info.rate,
            crate::tui::embedded::BATCH_EVERY.as_secs()
        )));
    } else if let Some(e) = &app.stack.load_error {
        figures.push(Line::styled(format!("stack file: {e}"), theme.error()));
    } else if !app.stack.rows.is_empty() {
        let tones: Vec<Tone> = app.stack.rows.iter().map(|r| r.phase.tone()).collect();
        let good = tones.iter().filter(|t| **t == Tone::Good).count();
        let bad = tones.iter().filter(|t| **t == Tone::Bad).count();
        let style = if bad > 0 {
            theme.error()
        } else if good == tones.len() {
            theme.health(Health::Up)
        } else {
            Style::new()
        };
        figures.push(Line::styled(
            format!(
                "stack {}: {good}/{} containers up{}",
                app.stack.name,
                tones.len(),
                if bad > 0 {
                    format!(", {bad} failed")
                } else {
                    String::new()
                }
            ),
            style,
        ));
    }
    let stages: Vec<String> = app
        .stages
        .iter()
        .filter(|(_, s)| s.running)
        // What each stage reads: the consumer writes only when it rolls a file, so its output
        // rate read 0.0/s most of the time while records went through it.
        .map(|(kind, s)| format!("{} {}", kind.name(), rate(s.rate_in.or(s.rate_out))))
        .collect();
    if stages.is_empty() {
        figures.push(Line::styled("no stage runs here (:produce …)", theme.dim()));
    } else {
        // Every stage named, over as many lines as it takes.
        figures.extend(
            fields_wrapped("running here:", &stages, width)
                .into_iter()
                .map(Line::from),
        );
    }
    let alerts = app.lag_alerts();
    if alerts.is_empty() {
        figures.push(Line::styled("no lag alert", theme.dim()));
    }
    figures.extend(alerts.iter().map(|a| Line::styled(a.describe(), theme.error())));
    // Each tile says its own health; this is the count at a glance.
    let answered: Vec<Health> = LabService::ALL
        .into_iter()
        .filter_map(|s| app.lab.status(s).map(|st| st.health))
        .collect();
    if !answered.is_empty() {
        let up = answered.iter().filter(|h| **h == Health::Up).count();
        let worst = answered.iter().copied().max_by_key(|h| match h {
            Health::Up => 0,
            Health::Unknown => 1,
            Health::Degraded => 2,
            Health::Down => 3,
        });
        figures.push(Line::styled(
            format!("services up {up} of {}", answered.len()),
            theme.health(worst.unwrap_or(Health::Unknown)),
        ));
    }
    // In a big tile: each container of the stack, once it has any (before `lab up`, and in the
    // embedded lab, a list of absent containers would only repeat the count, or suggest that a
    // service the embedded lab runs is missing).
    let shown: &[_] = if app.stack.rows.iter().any(|r| r.phase != Phase::Absent) {
        &app.stack.rows
    } else {
        &[]
    };
    let details = shown
        .iter()
        .map(|r| {
            let label = r.phase.label(app.now.instant);
            let style = match r.phase.tone() {
                Tone::Good => theme.health(Health::Up),
                Tone::Bad => theme.error(),
                Tone::Busy => theme.health(Health::Degraded),
                Tone::Idle => theme.dim(),
            };
            Line::from(vec![Span::raw(format!("  {} ", r.service)), Span::styled(label, style)])
        })
        .collect();
    Tile {
        figures,
        sparks: Vec::new(),
        details,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reason_wraps_between_words_and_inside_a_word_too_long() {
        assert_eq!(wrapped("cannot reach the broker", 12), ["cannot reach", "the broker"]);
        assert_eq!(
            wrapped("http://127.0.0.1:9870/jmx down", 10),
            ["http://127", ".0.0.1:987", "0/jmx down"]
        );
        assert_eq!(wrapped("", 10), Vec::<String>::new());
    }

    fn text(line: &Line) -> String {
        line.spans.iter().map(|s| s.content.as_ref()).collect()
    }

    #[test]
    fn the_worst_group_keeps_its_catch_up_in_a_narrow_tile() {
        let g = Group {
            name: "lab-consumer-yelp".into(),
            total_lag: 957,
            catch_up_s: Some(200.0),
            ..Group::default()
        };
        assert_eq!(worst_group(&g, 60), "worst lab-consumer-yelp lag 957, catch-up 3m20s");
        // An 80-column terminal's tile.
        assert_eq!(worst_group(&g, 38), "lab-consumer-yelp lag 957, in 3m20s");
        let no_rate = Group { catch_up_s: None, ..g };
        assert_eq!(worst_group(&no_rate, 38), "worst lab-consumer-yelp lag 957");
    }

    #[test]
    fn a_line_too_wide_keeps_its_whole_fields_and_says_where_it_was_cut() {
        let line = || Line::from("write 1,234/s  read 987/s  lag 1,515,000");
        assert_eq!(text(&fit(line(), 41)), "write 1,234/s  read 987/s  lag 1,515,000");
        assert_eq!(text(&fit(line(), 38)), "write 1,234/s  read 987/s…");
        let caption = Line::from("worst lab-consumer-yelp lag 957, catch-up 3m20s");
        assert_eq!(text(&fit(caption, 38)), "worst lab-consumer-yelp lag 957…");
        // A first field longer than half the line: cut between words instead.
        let long = Line::from("not in the embedded lab, DataFusion runs it");
        assert_eq!(text(&fit(long, 30)), "not in the embedded lab…");
        let one_word = Line::from("hdfs://namenode.example.org:8020/lab/raw");
        assert_eq!(text(&fit(one_word, 12)), "hdfs://name…");
        for width in 1..45 {
            assert!(fit(line(), width).width() <= usize::from(width.max(1)), "{width}");
        }
    }

    #[test]
    fn a_cut_line_keeps_the_style_of_each_part() {
        let styled = Line::from(vec![
            Span::raw("last batch "),
            Span::styled("succeeded", Style::new().bold()),
            Span::raw(" 22:02:21, 0.2s"),
        ]);
        let cut = fit(styled, 30);
        assert_eq!(text(&cut), "last batch succeeded 22:02:21…");
        assert_eq!(cut.spans[1].style, Style::new().bold());
        assert_eq!(cut.spans[1].content, "succeeded");
    }

    #[test]
    fn bytes_in_a_caption_read_in_three_figures() {
        assert_eq!(three_figures_of_bytes(0), "0 B");
        assert_eq!(three_figures_of_bytes(1023), "1023 B");
        assert_eq!(three_figures_of_bytes(600_000), "586 KiB");
        assert_eq!(three_figures_of_bytes(1_402_725), "1.34 MiB");
        assert_eq!(three_figures_of_bytes(13_200_000_000), "12.3 GiB");
    }

    #[test]
    fn fields_go_to_the_next_line_whole() {
        let stages = [
            "producer 197/s".to_string(),
            "transform 191/s".into(),
            "consumer 0.0/s".into(),
        ];
        assert_eq!(
            fields_wrapped("running here:", &stages, 38),
            ["running here: producer 197/s,", "transform 191/s, consumer 0.0/s"]
        );
        assert_eq!(
            fields_wrapped("running here:", &stages, 80),
            ["running here: producer 197/s, transform 191/s, consumer 0.0/s"]
        );
    }

    #[test]
    fn a_bar_fills_its_share_and_shows_any_use_at_all() {
        assert_eq!(bar(0.0, 4), "[░░░░]");
        assert_eq!(bar(0.000_01, 4), "[█░░░]");
        assert_eq!(bar(0.5, 4), "[██░░]");
        assert_eq!(bar(1.5, 4), "[████]");
    }
}
