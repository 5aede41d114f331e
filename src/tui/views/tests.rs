//! Every view drawn into a `TestBackend` from snapshots captured from real services
//! (`lab status --json`, tests/fixtures/probes/lab_status_*.json), at 80×24 and at 200×60,
//! asserting the text that must appear and the colour of a down service.

use ratatui::style::Color;

use super::test_support::{app, down_lab, draw, find, live_lab, text};
use crate::probes::Service;
use crate::tui::app::{App, Mode, View};
use crate::tui::msg::Cmd;

const SIZES: [(u16, u16); 2] = [(80, 24), (200, 60)];

fn screen(app: &App, w: u16, h: u16) -> String {
    text(&draw(app, w, h))
}

fn assert_shows(app: &App, needles: &[&str]) {
    for (w, h) in SIZES {
        let s = screen(app, w, h);
        for n in needles {
            assert!(s.contains(n), "{:?} at {w}x{h} lacks {n:?}:\n{s}", app.view);
        }
    }
}

#[test]
fn every_view_renders_at_both_sizes_without_panicking() {
    for lab in [live_lab(), down_lab(), crate::probes::LabSnapshot::default()] {
        for view in View::ALL {
            let a = app(lab.clone(), view);
            for (w, h) in SIZES.into_iter().chain([(20, 5), (1, 1)]) {
                draw(&a, w, h);
            }
        }
    }
}

#[test]
fn all_eight_tabs_fit_at_80_columns() {
    let s = screen(&app(live_lab(), View::Overview), 80, 24);
    let tabs = s.lines().next().unwrap();
    assert!(tabs.contains("1 Overview") && tabs.contains("8 Logs"), "{tabs}");
}

#[test]
fn overview_shows_a_tile_per_service_with_health_and_figures() {
    let lab = live_lab();
    let k = lab.kafka.as_ref().unwrap().detail.as_ref().unwrap();
    let lag: i64 = k.groups.iter().map(|g| g.total_lag).sum();
    let a = app(lab.clone(), View::Overview);
    assert_shows(
        &a,
        &[
            "Kafka UP",
            "HDFS",
            "Spark UP",
            "Airflow",
            "PostgreSQL",
            "Trends",
            &format!("lag {}", super::count(lag)),
        ],
    );
    let s = screen(&a, 200, 60);
    assert!(s.contains("workers 1"), "{s}");
}

#[test]
fn a_down_service_is_red_with_its_reason() {
    let a = app(down_lab(), View::Overview);
    for (w, h) in SIZES {
        let buf = draw(&a, w, h);
        let (x, y) = find(&buf, "Spark DOWN").unwrap_or_else(|| panic!("no Spark DOWN at {w}x{h}:\n{}", text(&buf)));
        let down = x + "Spark ".len() as u16;
        assert_eq!(buf[(down, y)].fg, Color::Red, "DOWN is red at {w}x{h}");
        let s = text(&buf);
        assert!(s.contains("connection refused") || s.contains("cannot reach"), "{s}");
    }
}

#[test]
fn no_color_keeps_the_words_and_drops_the_colours() {
    let mut a = app(down_lab(), View::Overview);
    a.theme.color = false;
    let buf = draw(&a, 80, 24);
    let (x, y) = find(&buf, "Spark DOWN").unwrap();
    assert_eq!(buf[(x + 6, y)].fg, Color::Reset);
}

#[test]
fn kafka_view_lists_groups_with_lag_and_drills_into_partitions() {
    let lab = live_lab();
    let k = lab.kafka.as_ref().unwrap().detail.as_ref().unwrap().clone();
    let mut a = app(lab, View::Kafka);
    let g = k
        .groups
        .iter()
        .find(|g| g.total_lag > 0)
        .expect("the fixture has a lagging group");
    let idx = k.groups.iter().position(|x| x.name == g.name).unwrap();
    a.selection[View::Kafka.index()] = idx;
    assert_shows(
        &a,
        &[&g.name, &super::count(g.total_lag), "Consumer groups", "Topics", "DLQ"],
    );
    a.kafka_drill = true;
    let table = a.lag_table();
    let worst = table[0];
    assert!(table.iter().all(|p| p.lag <= worst.lag), "sorted by lag");
    let worst = worst.clone();
    for (w, h) in SIZES {
        let s = screen(&a, w, h);
        assert!(s.contains("Partition lag of"), "{s}");
        // Sorted by lag: the first data row is the partition with the most lag.
        let header = s.lines().position(|l| l.contains("committed")).unwrap();
        let row = s.lines().nth(header + 1).unwrap();
        assert!(
            row.contains(&worst.topic) && row.contains(&super::count(worst.high)),
            "first row is the worst partition at {w}x{h}:\n{s}"
        );
    }
}

#[test]
fn pipeline_view_shows_every_stage() {
    let a = app(live_lab(), View::Pipeline);
    assert_shows(
        &a,
        &[
            "producer",
            "transform",
            "clean",
            "consumer",
            "raw zone",
            "batch",
            "serving",
        ],
    );
}

#[test]
fn hdfs_view_shows_usage_zones_and_datanodes() {
    let a = app(live_lab(), View::Hdfs);
    assert_shows(
        &a,
        &[
            "used of",
            "Raw zone /lab/raw",
            "review",
            "DataNodes 1 live / 0 dead",
            "live",
        ],
    );
}

#[test]
fn spark_view_shows_workers_and_apps() {
    let a = app(live_lab(), View::Spark);
    assert_shows(&a, &["ALIVE", "Workers", "Applications"]);
}

#[test]
fn airflow_view_shows_dags_grid_and_import_errors() {
    let lab = live_lab();
    let af = lab.airflow.as_ref().unwrap().detail.as_ref().unwrap().clone();
    let mut a = app(lab, View::Airflow);
    let fixture = af
        .dags
        .iter()
        .position(|d| d.dag_id == "lab_fixture")
        .expect("lab_fixture captured");
    a.selection[View::Airflow.index()] = fixture;
    assert_shows(
        &a,
        &[
            "lab_smoke",
            "lab_fixture",
            "runs × tasks",
            "extract",
            "load",
            "Import errors",
            "broken.py",
        ],
    );
    // The failed task's cell is red in the grid.
    let buf = draw(&a, 200, 60);
    let (x, y) = find(&buf, "load ").unwrap();
    let cells: Vec<Color> = (x..x + 40).map(|cx| buf[(cx, y)].fg).collect();
    assert!(cells.contains(&Color::Red), "{cells:?}");
}

#[test]
fn airflow_trigger_key_asks_for_confirmation_in_a_dialog() {
    let mut a = app(live_lab(), View::Airflow);
    a.mode = Mode::Confirm(Cmd::TriggerDag("lab_smoke".into()));
    assert_shows(&a, &["Confirm", "Trigger a run of DAG lab_smoke?", "[y] yes"]);
}

#[test]
fn postgres_view_shows_tables_and_last_batch() {
    let a = app(live_lab(), View::Postgres);
    assert_shows(
        &a,
        &["PostgreSQL", "yelp.business_summary", "yelp.batch_runs", "Last batch"],
    );
}

#[test]
fn help_overlay_lists_every_key() {
    let mut a = app(live_lab(), View::Kafka);
    a.mode = Mode::Help;
    let s = screen(&a, 200, 60);
    for k in crate::tui::keys::KEYS {
        assert!(s.contains(k.action), "help lacks {:?}:\n{s}", k.action);
    }
    // At 80x24 it still opens (clipped), titled.
    assert!(screen(&a, 80, 24).contains("Help"));
}

#[test]
fn down_views_say_why() {
    for (view, service) in [
        (View::Kafka, Service::Kafka),
        (View::Hdfs, Service::Hdfs),
        (View::Spark, Service::Spark),
        (View::Airflow, Service::Airflow),
    ] {
        let lab = down_lab();
        let reason = lab.status(service).unwrap().reason.clone();
        let a = app(lab, view);
        let s = screen(&a, 200, 60);
        assert!(s.contains("DOWN"), "{s}");
        assert!(
            s.contains(&reason[..reason.len().min(30)]),
            "{view:?} lacks {reason:?}:\n{s}"
        );
    }
}

#[test]
fn logs_view_filters_by_search() {
    let mut a = app(live_lab(), View::Logs);
    for (source, text) in [("namenode", "INFO started"), ("lab", "WARN slow"), ("lab", "INFO done")] {
        a.logs.push_back(crate::tui::logs::LogLine {
            source: source.into(),
            text: text.into(),
        });
    }
    a.filter = "warn".into();
    let s = screen(&a, 80, 24);
    assert!(s.contains("WARN slow") && !s.contains("INFO done"), "{s}");
    assert!(s.contains("namenode"), "sources listed: {s}");
}
