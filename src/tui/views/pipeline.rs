//! Pipeline: the stage graph producer → Kafka → transform → Kafka → consumer → HDFS → batch →
//! PostgreSQL, each hop with its live figures (rates from watermark and commit deltas, lag, sizes).

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::Line;
use ratatui::widgets::{Block, Cell, Row, Table, Widget};

use super::{count, duration, rate};
use crate::pipeline::Topics;
use crate::pipeline::group::worker_of;
use crate::pipeline::kafka::default_group;
use crate::pipeline::transform::Delivery;
use crate::probes::kafka::{Group, KafkaSnapshot, Member};
use crate::probes::{Health, LabService};
use crate::runtime::first_line;
use crate::tui::app::{App, StageView};
use crate::tui::stages::StageKind;
use indicatif::HumanBytes;

/// One row of the graph.
struct Hop {
    stage: &'static str,
    place: String,
    state: String,
    health: Health,
    figures: String,
}

pub fn render(app: &App, area: Rect, buf: &mut Buffer) {
    let workers = worker_rows(app);
    // The workers' box only when some stage has members; it grows with them, leaving the graph
    // its ten lines.
    let workers_height = if workers.is_empty() {
        0
    } else {
        u16::try_from(workers.len() + 3).unwrap_or(u16::MAX)
    };
    let [graph_area, workers_area, stages_area] = Layout::vertical([
        Constraint::Min(10),
        Constraint::Max(workers_height),
        Constraint::Length(6),
    ])
    .areas(area);
    graph(app, graph_area, buf);
    if !workers.is_empty() {
        workers_table(app, workers, workers_area, buf);
    }
    stages(app, stages_area, buf);
}

/// One member of the lab's transform or consumer group, as the broker lists it.
struct WorkerRow {
    stage: &'static str,
    member: Member,
    /// The member's client id without the group: `w2`, or `only` for a group's single worker.
    name: String,
    /// Its partitions, topic by topic: `review 0,3,6  user 1,4`.
    partitions: String,
}

/// The members of this lab's transform and consumer groups, worker by worker.
fn worker_rows(app: &App) -> Vec<WorkerRow> {
    let Some(k) = app.lab.kafka.as_ref().and_then(|p| p.detail.as_ref()) else {
        return Vec::new();
    };
    let p = prefix(k);
    let names = Topics::new(p);
    let mut rows = Vec::new();
    for stage in ["transform", "consumer"] {
        let group_name = default_group(stage, p);
        let Some(group) = k.groups.iter().find(|g| g.name == group_name) else {
            continue;
        };
        let mut members = group.members.clone();
        members.sort_by(|a, b| {
            (worker_of(&group_name, &a.client_id), &a.id).cmp(&(worker_of(&group_name, &b.client_id), &b.id))
        });
        for member in members {
            let name = match worker_of(&group_name, &member.client_id) {
                Some(n) => format!("w{n}"),
                None if member.client_id == group_name => "only".to_string(),
                None => member.client_id.clone(),
            };
            let mut by_topic: std::collections::BTreeMap<String, Vec<i32>> = std::collections::BTreeMap::new();
            for (topic, partition) in &member.partitions {
                let entity = names
                    .entity_of_raw(topic)
                    .or_else(|| names.entity_of_clean(topic))
                    .map_or_else(|| topic.clone(), |e| e.name().to_string());
                by_topic.entry(entity).or_default().push(*partition);
            }
            let partitions = by_topic
                .into_iter()
                .map(|(entity, mut ids)| {
                    ids.sort_unstable();
                    let ids: Vec<String> = ids.iter().map(ToString::to_string).collect();
                    format!("{entity} {}", ids.join(","))
                })
                .collect::<Vec<_>>()
                .join("  ");
            rows.push(WorkerRow {
                stage,
                member,
                name,
                partitions,
            });
        }
    }
    rows
}

/// Each worker of the stages' groups with its partitions, commit rate and lag (from the broker:
/// workers in other processes or on other machines show too).
fn workers_table(app: &App, workers: Vec<WorkerRow>, area: Rect, buf: &mut Buffer) {
    let t = app.theme;
    let rows: Vec<Row> = workers
        .into_iter()
        .map(|w| {
            Row::new(vec![
                Cell::from(w.stage).style(t.title()),
                Cell::from(w.name),
                Cell::from(w.member.host.clone()),
                Cell::from(rate(w.member.rate)),
                Cell::from(count(w.member.lag)),
                Cell::from(format!("{:>3}  {}", w.member.partitions.len(), w.partitions)),
            ])
        })
        .collect();
    Table::new(
        rows,
        [
            Constraint::Length(10),
            Constraint::Length(8),
            Constraint::Length(16),
            Constraint::Length(10),
            Constraint::Length(9),
            Constraint::Fill(1),
        ],
    )
    .header(Row::new(["group", "worker", "host", "rate", "lag", "partitions"]).style(t.dim()))
    .block(Block::bordered().title(Line::styled(" Workers (members of the stages' groups) ", t.title())))
    .render(area, buf);
}

/// The stages this monitor runs itself (`:produce`, `:transform`, `:consume`), from their own
/// counters: what they read and delivered per second, totals, dead letters, how they ended.
fn stages(app: &App, area: Rect, buf: &mut Buffer) {
    let t = app.theme;
    let rows: Vec<Row> = StageKind::ALL
        .into_iter()
        .map(|kind| {
            let (state, style, figures) = match app.stages.get(&kind) {
                None => ("not started".to_string(), t.dim(), String::new()),
                Some(v) => {
                    let s = &v.snapshot;
                    let mut figures = format!(
                        "in {}  out {}  total {} → {}  DLQ {}",
                        rate(v.rate_in),
                        rate(v.rate_out),
                        count(i64::try_from(s.input).unwrap_or(i64::MAX)),
                        count(i64::try_from(s.output).unwrap_or(i64::MAX)),
                        count(i64::try_from(s.dlq).unwrap_or(i64::MAX)),
                    );
                    // Loud when a transform could not get transactions: duplicates are possible.
                    match s.delivery {
                        Some(Delivery::ExactlyOnce) => figures.push_str("  exactly-once"),
                        Some(Delivery::AtLeastOnce) => figures.push_str("  AT-LEAST-ONCE"),
                        None => {}
                    }
                    match (&v.outcome, v.running) {
                        (_, true) if s.waiting_for_broker => (
                            "waiting for the broker".to_string(),
                            t.health(Health::Degraded),
                            figures,
                        ),
                        (_, true) => ("running".to_string(), t.health(Health::Up), figures),
                        (Some(Err(e)), _) => (format!("failed: {}", first_line(e)), t.error(), figures),
                        _ => ("stopped".to_string(), t.dim(), figures),
                    }
                }
            };
            Row::new(vec![
                Cell::from(kind.name()).style(t.title()),
                Cell::from(state).style(style),
                Cell::from(figures),
            ])
        })
        .collect();
    Table::new(
        rows,
        [Constraint::Length(12), Constraint::Length(24), Constraint::Fill(1)],
    )
    .block(Block::bordered().title(Line::styled(
        " Run here: :produce [--rate N]  :transform  :consume  :stop STAGE ",
        t.title(),
    )))
    .render(area, buf);
}

fn graph(app: &App, area: Rect, buf: &mut Buffer) {
    let t = app.theme;
    let rows: Vec<Row> = hops(app)
        .into_iter()
        .enumerate()
        .map(|(i, h)| {
            let arrow = if i == 0 { "  " } else { "▼ " };
            Row::new(vec![
                Cell::from(format!("{arrow}{}", h.stage)).style(t.title()),
                Cell::from(h.place),
                Cell::from(h.state).style(t.health(h.health)),
                Cell::from(h.figures),
            ])
        })
        .collect();
    Table::new(
        rows,
        [
            Constraint::Length(12),
            // As wide as `→ yelp.<entity>.clean` at 80 columns, to leave the state its 11.
            Constraint::Percentage(28),
            // "not running", the longest state: it was cut to "not runnin".
            Constraint::Length(11),
            Constraint::Fill(1),
        ],
    )
    .header(Row::new(["stage", "where", "state", "figures"]).style(t.dim()))
    .block(Block::bordered().title(Line::styled(" Pipeline ", t.title())))
    .row_highlight_style(Style::new())
    .render(area, buf);
}

fn prefix(k: &KafkaSnapshot) -> &str {
    k.dlq_topic.strip_suffix(".dlq").unwrap_or("yelp")
}

/// A stage's consumer group. `here`: the same stage run by this monitor, whose own state stands
/// in where the broker cannot list groups (the embedded broker).
fn group_hop(
    stage: &'static str,
    group: Option<&Group>,
    here: Option<&StageView>,
    name: String,
    kafka_health: Health,
) -> Hop {
    match group {
        Some(g) => {
            let (state, health) = match super::kafka::unlisted_group_state(g, here) {
                Some(shown) => shown,
                None if g.state.eq_ignore_ascii_case("stable") => (g.state.clone(), Health::Up),
                None => (g.state.clone(), Health::Degraded),
            };
            Hop {
                stage,
                place: name,
                state,
                health,
                figures: format!(
                    "lag {}  {}  catch-up {}",
                    count(g.total_lag),
                    rate(g.rate),
                    g.catch_up_s.map_or_else(|| "–".into(), duration)
                ),
            }
        }
        None => Hop {
            stage,
            place: name,
            state: if kafka_health == Health::Down {
                "unknown".into()
            } else {
                "not running".into()
            },
            health: Health::Unknown,
            figures: "no consumer group yet".into(),
        },
    }
}

fn hops(app: &App) -> Vec<Hop> {
    let lab = &app.lab;
    let kh = lab.health(LabService::Kafka);
    let kafka = lab.kafka.as_ref().and_then(|p| p.detail.as_ref());
    let mut out = Vec::new();
    let (raw_rate, raw_held, clean_rate, clean_held, dlq, p) =
        kafka.map_or((None, 0, None, 0, count(0), "yelp".to_string()), |k| {
            let p = prefix(k).to_string();
            // This lab's topics only: another prefix's topics on the same broker are another lab.
            let names = Topics::new(&p);
            let raw: Vec<_> = k
                .topics
                .iter()
                .filter(|t| names.entity_of_raw(&t.name).is_some())
                .collect();
            let clean: Vec<_> = k
                .topics
                .iter()
                .filter(|t| names.entity_of_clean(&t.name).is_some())
                .collect();
            (
                raw.iter().map(|t| t.rate_in).sum::<Option<f64>>(),
                raw.iter().map(|t| t.records()).sum::<i64>(),
                clean.iter().map(|t| t.rate_in).sum::<Option<f64>>(),
                // Records, not offsets: an exactly-once topic's markers are not records.
                clean.iter().map(|t| t.records()).sum::<i64>(),
                k.dlq_shown(count),
                p,
            )
        });
    let kstate = crate::tui::theme::health_label(kh).to_lowercase();
    out.push(Hop {
        stage: "producer",
        place: format!("→ {p}.<entity>"),
        state: kstate.clone(),
        health: kh,
        figures: format!("in {}  held {}", rate(raw_rate), count(raw_held)),
    });
    let group = |stage: &str| kafka.and_then(|k| k.groups.iter().find(|g| g.name == default_group(stage, &p)));
    out.push(group_hop(
        "transform",
        group("transform"),
        app.stage_running_in(&default_group("transform", &p)),
        default_group("transform", &p),
        kh,
    ));
    out.push(Hop {
        stage: "clean",
        place: format!("→ {p}.<entity>.clean"),
        state: kstate,
        health: kh,
        figures: format!("in {}  held {}  DLQ {}", rate(clean_rate), count(clean_held), dlq),
    });
    out.push(group_hop(
        "consumer",
        group("consumer"),
        app.stage_running_in(&default_group("consumer", &p)),
        default_group("consumer", &p),
        kh,
    ));
    out.extend(batch_layer_hops(app, &p));
    out
}

/// The raw zone, the batch and the serving tables: on a stack HDFS, Spark and PostgreSQL; in the
/// embedded lab a local directory, DataFusion in this process, and its throwaway PostgreSQL or
/// Parquet files (a stack's HDFS path and `Spark unknown` there described a lab not running).
fn batch_layer_hops(app: &App, p: &str) -> Vec<Hop> {
    let lab = &app.lab;
    let mut out = Vec::new();
    if let Some(embedded) = &app.embedded {
        let hh = lab.health(LabService::Hdfs);
        let zone = lab.raw_zone.as_ref().and_then(|z| z.detail.as_ref());
        out.push(Hop {
            stage: "raw zone",
            place: "→ local directory".into(),
            state: crate::tui::theme::health_label(hh).to_lowercase(),
            health: hh,
            figures: zone.map_or_else(String::new, |z| {
                let mut figures = zone_figures(z.entities.len(), z.files(), z.bytes());
                // The small-files problem, and its answer, in view: what the last batch merged.
                if let Some(Ok(run)) = embedded.batches.front().map(|r| &r.result)
                    && run.merged.0 > 0
                {
                    figures.push_str(&format!("  merged {} → {} files", run.merged.0, run.merged.1));
                }
                figures
            }),
        });
        let (state, health) = match embedded.batches.front() {
            _ if embedded.batch_running => ("running", Health::Up),
            None => ("waiting", Health::Unknown),
            Some(run) if run.result.is_ok() => ("succeeded", Health::Up),
            Some(_) => ("failed", Health::Down),
        };
        out.push(Hop {
            stage: "batch",
            place: "DataFusion, here".into(),
            state: state.into(),
            health,
            figures: super::embedded::last_run(app, embedded),
        });
        if let Some(files) = super::embedded::parquet_serving(embedded) {
            out.push(Hop {
                stage: "serving",
                place: "→ Parquet files".into(),
                state: state.into(),
                health,
                figures: files.to_string(),
            });
            return out;
        }
    } else {
        out.extend(hdfs_and_spark_hops(lab, p));
    }
    out.push(serving_hop(lab));
    out
}

fn hdfs_and_spark_hops(lab: &crate::probes::LabSnapshot, p: &str) -> [Hop; 2] {
    let hh = lab.health(LabService::Hdfs);
    let hdfs = lab.hdfs.as_ref().and_then(|p| p.detail.as_ref());
    let raw_zone = Hop {
        stage: "raw zone",
        // Where the probe looked (the configured raw zone), once it answered.
        place: hdfs.map_or_else(
            || format!("→ HDFS {}/{p}", crate::probes::hdfs::RAW_ZONE_ROOT),
            |h| format!("→ HDFS {}", h.zone_dir),
        ),
        state: crate::tui::theme::health_label(hh).to_lowercase(),
        health: hh,
        figures: hdfs.map_or_else(String::new, |h| {
            zone_figures(h.zones.len(), h.zone_files(), h.zone_bytes())
        }),
    };
    let sh = lab.health(LabService::Spark);
    let spark = lab.spark.as_ref().and_then(|p| p.detail.as_ref());
    let batch = Hop {
        stage: "batch",
        place: "Spark".into(),
        state: crate::tui::theme::health_label(sh).to_lowercase(),
        health: sh,
        figures: spark.map_or_else(String::new, |s| {
            format!(
                "{} running, {} completed app(s)",
                s.activeapps.len(),
                s.completedapps.len()
            )
        }),
    };
    [raw_zone, batch]
}

/// `5 entities  72 files  1.53 MiB`: a raw zone, on HDFS or on local disk.
fn zone_figures(entities: usize, files: u64, bytes: u64) -> String {
    format!(
        "{entities} entities  {} files  {}",
        count(i64::try_from(files).unwrap_or(i64::MAX)),
        HumanBytes(bytes)
    )
}

fn serving_hop(lab: &crate::probes::LabSnapshot) -> Hop {
    let ph = lab.health(LabService::Postgres);
    let pg = lab.postgres.as_ref().and_then(|p| p.detail.as_ref());
    Hop {
        stage: "serving",
        place: "→ PostgreSQL yelp.*".into(),
        state: pg.and_then(|p| p.last_batch.as_ref()).map_or_else(
            || crate::tui::theme::health_label(ph).to_lowercase(),
            |b| b.status.clone(),
        ),
        health: ph,
        figures: pg.map_or_else(String::new, |p| {
            let rows: i64 = p
                .tables
                .iter()
                .filter(|(t, _)| t != "batch_runs")
                .filter_map(|(_, r)| *r)
                .sum();
            format!("{} serving rows", count(rows))
        }),
    }
}

#[cfg(test)]
mod tests {
    use crate::probes::kafka::Topic;
    use crate::tui::app::View;
    use crate::tui::views::test_support::{app, draw, live_lab, text};

    fn clean_row(screen: &str) -> String {
        screen
            .lines()
            .find(|l| l.contains(".<entity>.clean"))
            .expect("a clean row")
            .to_string()
    }

    /// Another prefix's topics on the same broker are another lab: they do not add to this one's.
    #[test]
    fn the_clean_hop_counts_only_this_labs_clean_topics() {
        let alone = clean_row(&text(&draw(&app(live_lab(), View::Pipeline), 160, 30)));
        let mut lab = live_lab();
        let kafka = lab
            .kafka
            .as_mut()
            .and_then(|p| p.detail.as_mut())
            .expect("kafka detail");
        kafka.topics.push(Topic {
            name: "another-lab.review.clean".into(),
            messages: 1_000_000,
            ..Topic::default()
        });
        let beside = clean_row(&text(&draw(&app(lab, View::Pipeline), 160, 30)));
        assert_eq!(alone, beside);
        assert!(alone.contains("held"), "{alone}");
    }
}
