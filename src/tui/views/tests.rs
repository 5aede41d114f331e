//! Every view drawn into a `TestBackend` from snapshots captured from real services
//! (`lab status --json`, tests/fixtures/probes/lab_status_*.json), at 80×24 and at 200×60,
//! asserting the text that must appear and the colour of a down service.

use ratatui::style::Color;

use super::test_support::{app, down_lab, draw, find, live_lab, text};
use crate::probes::LabService;
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

/// Every view, with the services up and down, at both sizes: the whole screen as text, against
/// the snapshot in src/tui/views/snapshots/ (`cargo insta review` accepts a change made on
/// purpose). The checks below stay for what a snapshot does not say: colours, where a click lands.
#[test]
fn every_view_matches_its_snapshot() {
    for (state, lab) in [("live", live_lab()), ("down", down_lab())] {
        for view in View::ALL {
            let a = app(lab.clone(), view);
            for (w, h) in SIZES {
                let name = format!("{}_{state}_{w}x{h}", view.short_title().to_lowercase());
                insta::assert_snapshot!(name, screen(&a, w, h));
            }
        }
    }
}

/// The overlays and prompts drawn over a view (help, a `:` command being typed, a y/n question,
/// a `/` filter), each against its snapshot at both sizes.
#[test]
fn overlays_and_prompts_match_their_snapshots() {
    let overlays: [(&str, Mode, &str); 4] = [
        ("help", Mode::Help, ""),
        ("command_prompt", Mode::Command, "produce --rate 200"),
        (
            "confirm_down",
            Mode::Confirm(Cmd::Stack(crate::tui::msg::StackCmd::Down { volumes: true })),
            "",
        ),
        ("filter_prompt", Mode::Filter, "review"),
    ];
    for (name, mode, typed) in overlays {
        let mut a = app(live_lab(), View::Kafka);
        a.mode = mode;
        a.input = typed.into();
        for (w, h) in SIZES {
            insta::assert_snapshot!(format!("{name}_{w}x{h}"), screen(&a, w, h));
        }
    }
}

#[test]
fn a_long_notice_takes_more_rows_at_the_bottom_instead_of_being_cut() {
    let mut a = app(live_lab(), View::Overview);
    let error = "the stage failed: cannot create topic yelp.review.clean: the broker refused it \
                 (TOPIC_AUTHORIZATION_FAILED); grant Create on yelp.* to the lab's user and run :transform again";
    a.notice = Some(crate::tui::app::Notice {
        text: error.into(),
        error: true,
    });
    for (w, h) in SIZES {
        let s = screen(&a, w, h);
        let bottom: Vec<&str> = s.lines().rev().take(3).collect();
        let shown = bottom.into_iter().rev().collect::<Vec<_>>().join(" ");
        assert!(
            shown.split_whitespace().collect::<Vec<_>>().join(" ").contains(error),
            "{w}x{h}: the notice is cut:\n{s}"
        );
        assert!(s.contains("┌ Kafka"), "{w}x{h}: the view keeps the rest:\n{s}");
    }
}

#[test]
fn all_nine_tabs_fit_at_80_columns() {
    let s = screen(&app(live_lab(), View::Overview), 80, 24);
    let tabs = s.lines().next().unwrap();
    assert!(tabs.contains("1 Overview") && tabs.contains("9 Stack"), "{tabs}");
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
            "Lab",
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

/// `[alerts] lag = 1000` and the fixture's transform group 1,500 behind: that group turns red
/// and a banner says how far behind it is, on the views where lag is watched and on the Overview;
/// the consumer group (15 behind) stays as it was.
#[test]
fn a_group_over_its_lag_threshold_turns_red_with_a_banner() {
    let mut a = app(live_lab(), View::Kafka);
    a.alerts = crate::config::LagAlerts {
        lag: Some(1_000),
        groups: std::collections::BTreeMap::new(),
    };
    let banner = "lag alert: lab-transform-yelp is 1500 records behind (alert above 1000)";
    for view in [View::Kafka, View::Pipeline, View::Overview] {
        a.view = view;
        assert_shows(&a, &[banner]);
    }
    a.view = View::Kafka;
    for (w, h) in SIZES {
        let buf = draw(&a, w, h);
        // Two spaces: the table's padded cell, not the banner's "… is 1500 records behind".
        let colour = |group: &str| {
            let (x, y) = find(&buf, &format!("{group}  ")).unwrap_or_else(|| panic!("no {group}:\n{}", text(&buf)));
            buf[(x, y)].fg
        };
        assert_eq!(colour("lab-transform-yelp"), Color::Red, "at {w}x{h}");
        assert_ne!(colour("lab-consumer-yelp"), Color::Red, "at {w}x{h}");
    }
    a.view = View::Hdfs;
    assert!(
        !screen(&a, 200, 60).contains("lag alert"),
        "the HDFS view keeps its space"
    );
    // At the threshold, or with one of its own above the lag, the group is not in alert.
    a.view = View::Kafka;
    a.alerts.groups.insert("lab-transform-yelp".into(), 1_500);
    assert!(!screen(&a, 200, 60).contains("lag alert"));
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
            "Raw zone /lab/raw/yelp",
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
    for k in a.keymap.bindings() {
        assert!(s.contains(k.help), "help lacks {:?}:\n{s}", k.help);
    }
    // At 80x24 it still opens, titled.
    assert!(screen(&a, 80, 24).contains("Help"));
}

/// On a terminal too small for the whole help, the movement keys scroll it to its last line (every
/// key and every word of every command seen on the way) and any other key closes it.
#[test]
fn help_scrolls_on_a_small_terminal_to_every_line() {
    use crate::tui::msg::Msg;
    use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
    let press = |a: &mut App, code: KeyCode| a.update(Msg::Key(KeyEvent::new(code, KeyModifiers::NONE)));
    for (w, h) in [(80, 24), (120, 40)] {
        let mut a = app(live_lab(), View::Kafka);
        press(&mut a, KeyCode::Char('?'));
        let mut seen = screen(&a, w, h);
        let first = seen.clone();
        assert!(first.contains("Help 1–"), "{first}");
        // The title reads "Help a–b of b" once the last line is on screen.
        let at_end = |s: &str| {
            s.lines().any(|l| {
                l.split(" of ")
                    .nth(1)
                    .and_then(|rest| rest.split_whitespace().next())
                    .is_some_and(|total| l.contains(&format!("–{total} of {total} ")))
            })
        };
        let mut screens = 0;
        while !at_end(&screen(&a, w, h)) {
            press(&mut a, KeyCode::Char('j'));
            seen.push_str(&screen(&a, w, h));
            screens += 1;
            assert!(screens < 200, "never reached the end at {w}x{h}:\n{}", screen(&a, w, h));
        }
        assert_eq!(a.mode, Mode::Help);
        for k in a.keymap.bindings() {
            for word in k.help.split_whitespace() {
                assert!(
                    seen.contains(word),
                    "help at {w}x{h} never showed {word:?} of {:?}",
                    k.help
                );
            }
        }
        for (command, what) in crate::tui::keys::COMMANDS {
            for word in command.split_whitespace().chain(what.split_whitespace()) {
                assert!(
                    seen.contains(word),
                    "help at {w}x{h} never showed {word:?} of {command}"
                );
            }
        }
        // Past the end it stays at the end; g goes back to the top; another key closes it.
        let end = screen(&a, w, h);
        press(&mut a, KeyCode::PageDown);
        assert_eq!(screen(&a, w, h), end);
        press(&mut a, KeyCode::Char('g'));
        assert_eq!(screen(&a, w, h), first);
        // The mouse wheel scrolls it too, and a click closes it without selecting what is behind.
        let mouse = |a: &mut App, kind| {
            a.update(Msg::Mouse(crossterm::event::MouseEvent {
                kind,
                column: 10,
                row: 8,
                modifiers: KeyModifiers::NONE,
            }))
        };
        mouse(&mut a, crossterm::event::MouseEventKind::ScrollDown);
        let scrolled = screen(&a, w, h);
        assert!(scrolled.contains("Help 2–"), "{scrolled}");
        mouse(&mut a, crossterm::event::MouseEventKind::ScrollUp);
        assert_eq!(screen(&a, w, h), first);
        let selected = a.selection;
        mouse(
            &mut a,
            crossterm::event::MouseEventKind::Down(crossterm::event::MouseButton::Left),
        );
        assert_eq!((a.mode.clone(), a.selection), (Mode::Normal, selected));
        press(&mut a, KeyCode::Char('?'));
        press(&mut a, KeyCode::Char('x'));
        assert_eq!(a.mode, Mode::Normal);
    }
}

/// Long command lines wrap within their column instead of being cut (at 120 columns the command
/// column used to lose the end of `:lesson NAME`'s list).
#[test]
fn help_never_cuts_a_command_line() {
    let mut a = app(live_lab(), View::Kafka);
    a.mode = Mode::Help;
    for (w, h) in [(120, 60), (200, 60)] {
        let s = screen(&a, w, h);
        for (command, what) in crate::tui::keys::COMMANDS {
            for word in command.split_whitespace().chain(what.split_whitespace()) {
                assert!(s.contains(word), "help at {w}x{h} lacks {word:?} of {command}:\n{s}");
            }
        }
    }
}

#[test]
fn down_views_say_why() {
    for (view, service) in [
        (View::Kafka, LabService::Kafka),
        (View::Hdfs, LabService::Hdfs),
        (View::Spark, LabService::Spark),
        (View::Airflow, LabService::Airflow),
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
fn logs_view_search_highlights_matches_in_every_line_and_counts_them_per_source() {
    let mut a = app(live_lab(), View::Logs);
    for (source, text) in [("namenode", "INFO started"), ("lab", "WARN slow"), ("lab", "INFO done")] {
        a.logs.push(source, text);
    }
    a.filter = "warn".into();
    for (w, h) in SIZES {
        let s = screen(&a, w, h);
        assert!(
            s.contains("WARN slow") && s.contains("INFO done"),
            "every line stays: {s}"
        );
        assert!(
            s.contains("namenode 0") && s.contains("lab 1"),
            "matches per source: {s}"
        );
    }
    let buf = draw(&a, 80, 24);
    let (x, y) = find(&buf, "WARN slow").expect("the line is on screen");
    let marked = |x: u16| buf[(x, y)].modifier.contains(ratatui::style::Modifier::REVERSED);
    assert!(marked(x) && marked(x + 3), "the match is highlighted");
    assert!(!marked(x + 5), "the rest of the line is not");

    // m: only the matching lines.
    a.log_matching_only = true;
    let s = screen(&a, 80, 24);
    assert!(s.contains("WARN slow") && !s.contains("INFO done"), "{s}");
}

/// The sources take the width of their names (the log text the rest), up to 24 columns: a longer
/// name is cut, not the text.
#[test]
fn the_log_sources_are_as_wide_as_their_names_up_to_a_limit() {
    let mut a = app(live_lab(), View::Logs);
    a.logs.push("lab", "a line");
    let top_left = |a: &App| {
        let s = screen(a, 80, 24);
        let row = s
            .lines()
            .find(|l| l.starts_with("┌ Sources"))
            .unwrap_or_else(|| panic!("{s}"))
            .to_string();
        row.chars().position(|c| c == '┐').unwrap_or_else(|| panic!("{s}")) + 1
    };
    assert_eq!(top_left(&a), " Sources ".len() + 2, "all and lab fit under the title");
    a.logs.push("docker:lab-yelp-spark-worker-2", "a line");
    assert_eq!(top_left(&a), 24);
    assert!(screen(&a, 80, 24).contains("docker:lab-yelp-spark-w"));
}

/// At 80 columns a log line is read whole: wrapped at the pane's edge, today's timestamps from
/// their time of day, the source column only where sources are mixed; the newest line's end on
/// the bottom row.
#[test]
fn logs_view_wraps_long_lines_and_shortens_todays_timestamps() {
    let mut a = app(live_lab(), View::Logs);
    let message = "the mock cluster dropped 1,204 records of yelp.review [0] before the consumer read them";
    for i in 0..30 {
        a.logs.push(
            "lab",
            &format!("2026-11-24T22:56:{i:02}.188740Z  INFO bigdata_lab::pipeline::batch: batch {i} done"),
        );
    }
    a.logs.push(
        "lab",
        &format!("2026-11-24T22:56:59.000001Z  WARN bigdata_lab::pipeline::sink: {message}"),
    );
    a.logs.push(
        "namenode",
        "2026-11-23T08:00:00.000Z INFO yesterday's line keeps its date",
    );
    // The `lab` source alone.
    a.selection[View::Logs.index()] = 1;
    let s = screen(&a, 80, 24);
    let pane: Vec<String> = s
        .lines()
        .map(|l| l.split('│').nth(3).unwrap_or_default().trim_end().to_string())
        .collect();
    let joined = pane.concat();
    assert!(
        joined.contains(&format!("22:56:59.000  WARN bigdata_lab::pipeline::sink: {message}")),
        "{s}"
    );
    assert!(!joined.contains("2026-11-24T"), "today's date is left out:\n{s}");
    assert!(
        joined.ends_with(message),
        "the newest line ends on the bottom row:\n{s}"
    );
    assert!(!s.contains("lab       22:56"), "one source: no source column:\n{s}");
    // Every source mixed: each line says where it is from; another day's keeps its date.
    a.selection[View::Logs.index()] = 0;
    let s = screen(&a, 200, 60);
    assert!(s.contains("lab       22:56:59.000  WARN"), "{s}");
    assert!(s.contains("namenode  2026-11-23T08:00:00.000Z INFO yesterday's"), "{s}");
    insta::assert_snapshot!("logs_wrapped_80x24", screen(&a, 80, 24));
}

#[test]
fn logs_view_says_what_a_source_lost() {
    let mut a = app(live_lab(), View::Logs);
    let mut batch = crate::tui::logs::LogBatch::lines(vec![crate::tui::logs::LogLine {
        source: "lab".into(),
        text: "kept".into(),
    }]);
    batch.lost.push((
        "lab".into(),
        crate::tui::logs::Loss {
            lines: 1234,
            bytes: 3 * 1024 * 1024,
        },
    ));
    a.logs.apply(batch);
    let s = screen(&a, 100, 24);
    assert!(s.contains("1,234 lines dropped, 3.0 MiB skipped"), "{s}");
    assert!(s.contains("lab !"), "the source is marked: {s}");
}

mod stack_view {
    //! The Stack view driven by the runtime's own events through `App::update`.

    use std::time::Duration;

    use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
    use ratatui::style::Color;

    use super::embedded_lab::embedded_info;
    use super::*;
    use crate::doctor::{DoctorReport, Finding, Level};
    use crate::runtime::events::{ResourceKind, StackEvent};
    use crate::tui::embedded::EmbeddedEvent;
    use crate::tui::msg::{Msg, StackCmd};
    use crate::tui::stack_panel::StackPanel;

    fn stack_app() -> App {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/stacks/test.toml");
        let stack = crate::stack::Stack::load(&path).unwrap();
        let mut a = app(crate::probes::LabSnapshot::default(), View::Stack);
        a.stack = StackPanel::new(&stack, "tests/stacks/test.toml");
        a
    }

    /// The Overview's Lab tile lists the stack's containers once it has any: before `lab up` (and
    /// in the embedded lab) a column of "absent" would only repeat the count, or suggest that a
    /// service the embedded lab runs is missing.
    #[test]
    fn the_lab_tile_lists_containers_only_once_there_are_some() {
        let mut a = stack_app();
        a.view = View::Overview;
        let s = screen(&a, 200, 60);
        assert!(s.contains("containers up"), "{s}");
        assert!(!s.contains(" db absent"), "{s}");
        event(&mut a, StackEvent::Created { service: "db".into() });
        let s = screen(&a, 200, 60);
        assert!(s.contains("  db created"), "{s}");
        assert!(s.contains("  migrate absent"), "{s}");
    }

    fn key(a: &mut App, c: KeyCode) -> Vec<Cmd> {
        a.update(Msg::Key(KeyEvent::new(c, KeyModifiers::NONE)))
    }

    fn event(a: &mut App, e: StackEvent) {
        a.update(Msg::Stack(e));
    }

    fn select(a: &mut App, service: &str) {
        let i = a.stack.rows.iter().position(|r| r.service == service).unwrap();
        a.selection[View::Stack.index()] = i;
    }

    /// The cell colour where `needle` starts on the line that also shows `service`.
    fn colour_of(buf: &ratatui::buffer::Buffer, service: &str, needle: &str) -> Color {
        let s = text(buf);
        let (y, line) = s
            .lines()
            .enumerate()
            .find(|(_, l)| l.contains(&format!("│{service} ")) && l.contains(needle))
            .unwrap_or_else(|| panic!("no row {service} with {needle:?}:\n{s}"));
        let x = line.chars().collect::<String>().find(needle).unwrap();
        let col = line[..x].chars().count() as u16;
        buf[(col, y as u16)].fg
    }

    #[test]
    fn every_state_of_an_up_renders_with_its_colour() {
        let mut a = stack_app();
        assert_eq!(
            key(&mut a, KeyCode::Char('u')),
            vec![Cmd::Stack(StackCmd::Up { only: vec![] })]
        );
        let image = "lab-test/busybox:1".to_string();
        event(
            &mut a,
            StackEvent::PullStarted {
                image: image.clone(),
                services: vec!["db".into()],
            },
        );
        event(
            &mut a,
            StackEvent::Pulling {
                image,
                layer: "l1".into(),
                status: "Downloading".into(),
                current: Some(42),
                total: Some(100),
            },
        );
        assert_shows(
            &a,
            &["Stack labtest", "db", "pulling 42%", "18081", "bringing the stack up"],
        );
        event(&mut a, StackEvent::Created { service: "db".into() });
        let deadline = a.now.instant + Duration::from_secs(29);
        event(
            &mut a,
            StackEvent::WaitingHealth {
                service: "db".into(),
                deadline,
            },
        );
        event(
            &mut a,
            StackEvent::Completed {
                service: "migrate".into(),
            },
        );
        event(
            &mut a,
            StackEvent::Exited {
                service: "web".into(),
                code: 3,
            },
        );
        event(
            &mut a,
            StackEvent::Unhealthy {
                service: "api".into(),
                check: "CMD-SHELL wget -q -O- http://127.0.0.1:80/token".into(),
                last_logs: vec!["api-log-line-1".into(), "api-log-line-2".into()],
            },
        );
        event(
            &mut a,
            StackEvent::Healthy {
                service: "sidecar".into(),
                after: Duration::from_secs(2),
            },
        );
        assert_shows(
            &a,
            &[
                "waiting for health 2",
                "completed",
                "exited (3)",
                "unhealthy",
                "healthy",
            ],
        );
        let buf = draw(&a, 200, 60);
        assert_eq!(colour_of(&buf, "api", "unhealthy"), Color::Red);
        assert_eq!(colour_of(&buf, "web", "exited (3)"), Color::Red);
        assert_eq!(colour_of(&buf, "sidecar", "healthy"), Color::Green);
        assert_eq!(colour_of(&buf, "db", "waiting for health"), Color::Yellow);
        // The failure is explained where it happened: the check and the last log lines.
        select(&mut a, "api");
        assert_shows(&a, &["health check failed: CMD-SHELL wget", "api-log-line-2"]);
    }

    #[test]
    fn a_failed_operation_shows_its_error_and_up_or_down_reload_the_endpoints() {
        let mut a = stack_app();
        key(&mut a, KeyCode::Char('u'));
        // One operation at a time.
        assert!(key(&mut a, KeyCode::Char('p')).is_empty());
        assert!(a.notice.as_ref().unwrap().text.contains("still running"));
        let cmds = a.update(Msg::StackDone {
            cmd: StackCmd::Up { only: vec![] },
            result: Err("cannot start db: 127.0.0.1:18081 is already in use by nc (pid 7)\nstop that process".into()),
        });
        assert_eq!(cmds, vec![Cmd::ReloadEndpoints]);
        assert!(a.stack.busy.is_none());
        assert_shows(
            &a,
            &[
                "up failed: cannot start db",
                "18081 is already in use by nc (pid 7)",
                "stop that process",
            ],
        );
        // Stop, start and restart act on the selected service; pull needs no endpoint reload.
        select(&mut a, "web");
        assert_eq!(
            key(&mut a, KeyCode::Char('s')),
            vec![Cmd::Stack(StackCmd::Stop("web".into()))]
        );
        let cmds = a.update(Msg::StackDone {
            cmd: StackCmd::Stop("web".into()),
            result: Ok("web stopped".into()),
        });
        assert!(cmds.is_empty());
        assert_eq!(
            key(&mut a, KeyCode::Char('U')),
            vec![Cmd::Stack(StackCmd::Up {
                only: vec!["web".into()]
            })]
        );
    }

    #[test]
    fn down_asks_first_and_removed_containers_turn_absent() {
        let mut a = stack_app();
        event(
            &mut a,
            StackEvent::Healthy {
                service: "db".into(),
                after: Duration::ZERO,
            },
        );
        assert!(key(&mut a, KeyCode::Char('D')).is_empty());
        assert_eq!(a.mode, Mode::Confirm(Cmd::Stack(StackCmd::Down { volumes: true })));
        assert_shows(&a, &["AND volumes"]);
        assert_eq!(
            key(&mut a, KeyCode::Char('y')),
            vec![Cmd::Stack(StackCmd::Down { volumes: true })]
        );
        event(
            &mut a,
            StackEvent::Removed {
                kind: ResourceKind::Container,
                name: "db".into(),
            },
        );
        assert!(a.stack.all_absent());
        // The command line does the same.
        a.update(Msg::StackDone {
            cmd: StackCmd::Down { volumes: true },
            result: Ok("removed".into()),
        });
        key(&mut a, KeyCode::Char(':'));
        for c in "down --volumes".chars() {
            key(&mut a, KeyCode::Char(c));
        }
        key(&mut a, KeyCode::Enter);
        assert_eq!(a.mode, Mode::Confirm(Cmd::Stack(StackCmd::Down { volumes: true })));
        key(&mut a, KeyCode::Esc);
        key(&mut a, KeyCode::Char(':'));
        for c in "stop nosuch".chars() {
            key(&mut a, KeyCode::Char(c));
        }
        assert!(key(&mut a, KeyCode::Enter).is_empty());
        assert!(a.notice.as_ref().unwrap().text.contains("no service \"nosuch\""));
    }

    #[test]
    fn without_docker_the_banner_offers_the_embedded_lab_and_e_starts_it_here() {
        let mut a = stack_app();
        a.view = View::Overview;
        a.update(Msg::Doctor(Box::new(DoctorReport {
            stack: Some("labtest".into()),
            engine: None,
            findings: vec![Finding {
                check: "docker".into(),
                level: Level::Fail,
                detail: "cannot reach the Docker engine at unix:///nonexistent.sock".into(),
                fix: Some("start Docker".into()),
            }],
        })));
        assert_shows(&a, &["No Docker engine", "embedded lab", "1 Overview"]);
        // The banner takes the lines its text needs: at 80 columns the reason was cut off.
        let s = text(&draw(&a, 80, 24));
        assert!(s.contains("unix:///nonexistent.sock)"), "{s}");
        assert_eq!(key(&mut a, KeyCode::Char('e')), vec![Cmd::StartEmbedded]);
        assert!(!a.quit, "the monitor stays open");
        assert_shows(&a, &["Starting the embedded lab"]);
        assert!(key(&mut a, KeyCode::Char('e')).is_empty(), "one embedded lab at a time");

        let cmds = a.update(Msg::Embedded(EmbeddedEvent::Started(Ok(embedded_info()))));
        assert_eq!(
            cmds,
            vec![Cmd::UseEmbedded, Cmd::StartEmbeddedStages],
            "the probes and stages move to it, then its stages start"
        );
        assert_shows(&a, &["Embedded lab, no Docker", "127.0.0.1:39092"]);
        assert!(a.notice.as_ref().unwrap().text.contains("running at 200 msg/s"));
        assert!(
            !text(&draw(&a, 120, 30)).contains("No Docker engine"),
            "the embedded lab's banner replaces it"
        );
    }

    #[test]
    fn an_embedded_lab_that_cannot_start_says_why_and_can_be_tried_again() {
        let mut a = stack_app();
        a.start_embedded();
        a.update(Msg::Embedded(EmbeddedEvent::Started(Err(
            "initdb failed: disk full".into()
        ))));
        assert!(a.embedded.is_none());
        assert_shows(&a, &["the embedded lab did not start: initdb failed"]);
        assert_eq!(a.start_embedded(), vec![Cmd::StartEmbedded]);
    }

    #[test]
    fn clicking_a_row_selects_it() {
        use crossterm::event::{MouseButton, MouseEvent, MouseEventKind};
        let mut a = stack_app();
        let buf = draw(&a, 120, 40);
        let (_, y) = find(&buf, "│api ").unwrap();
        a.update(Msg::Mouse(MouseEvent {
            kind: MouseEventKind::Down(MouseButton::Left),
            column: 3,
            row: y,
            modifiers: KeyModifiers::NONE,
        }));
        assert_eq!(a.selected_service(), Some("api"));
        // The Kafka view's topics pane takes focus and selection on a click too.
        let mut k = app(live_lab(), View::Kafka);
        k.width = 200;
        let buf = draw(&k, 200, 60);
        let topic = &k.kafka_topics()[2].name.clone();
        let (x, y) = find(&buf, topic).unwrap();
        k.update(Msg::Mouse(MouseEvent {
            kind: MouseEventKind::Down(MouseButton::Left),
            column: x,
            row: y,
            modifiers: KeyModifiers::NONE,
        }));
        assert_eq!(k.pane[View::Kafka.index()], 1);
        assert_eq!(k.selection[View::Kafka.index()], 2);
    }

    #[test]
    fn a_stopped_stack_says_how_to_start_it() {
        let mut a = stack_app();
        a.stack.observe(&[]);
        assert_shows(&a, &["Stack labtest is not running: press u"]);
    }
}

mod embedded_lab {
    //! The views over the embedded lab: the raw zone where HDFS is, the batch runs where Airflow's
    //! DAG runs are, and what stands in for Spark and Airflow.

    use std::collections::BTreeMap;

    use super::*;
    use crate::embedded_lab::EmbeddedInfo;
    use crate::probes::raw_zone::{EntityFiles, LocalZoneSnapshot};
    use crate::probes::{LabSnapshot, Probed, Status};
    use crate::tui::app::EmbeddedView;
    use crate::tui::embedded::{BatchRunView, BatchTotals, BatchTrigger};
    use crate::tui::views::test_support::fixed_clock;

    pub fn embedded_info() -> EmbeddedInfo {
        EmbeddedInfo {
            brokers: "127.0.0.1:39092".into(),
            raw_zone: "/home/student/.local/state/lab/embedded/raw/yelp".into(),
            serving: "throwaway PostgreSQL 16.4 on 127.0.0.1:40000 (removed on exit)".into(),
            rate: 200,
        }
    }

    fn ago(secs: i64) -> chrono::DateTime<chrono::Utc> {
        fixed_clock().utc - chrono::Duration::seconds(secs)
    }

    /// The embedded lab a minute in: the live fixture's Kafka and PostgreSQL, a raw zone of two
    /// days, two batch runs (one failed).
    fn embedded_app(view: View) -> App {
        let live = live_lab();
        let zone = LocalZoneSnapshot {
            path: embedded_info().raw_zone,
            entities: vec![
                EntityFiles {
                    entity: "business".into(),
                    files: 3,
                    bytes: 90_000,
                    dates: BTreeMap::from([("2026-11-24".into(), (3, 90_000))]),
                },
                EntityFiles {
                    entity: "review".into(),
                    files: 12,
                    bytes: 1_200_000,
                    dates: BTreeMap::from([("2026-11-23".into(), (4, 400_000)), ("2026-11-24".into(), (8, 800_000))]),
                },
            ],
            newest: Some(ago(3)),
        };
        let lab = LabSnapshot {
            kafka: live.kafka,
            postgres: live.postgres,
            raw_zone: Some(Probed {
                status: Status::answered(&[], std::time::Instant::now()),
                detail: Some(zone),
            }),
            ..LabSnapshot::default()
        };
        let mut a = app(lab, view);
        // Latencies differ run to run; the snapshot compares the rest.
        for s in [a.lab.raw_zone.as_mut().map(|p| &mut p.status)].into_iter().flatten() {
            s.latency_ms = Some(1);
        }
        let tables = |n: u64| {
            BTreeMap::from([
                ("business_summary".to_string(), n),
                ("business_daily".to_string(), 3 * n),
                ("city_category_top".to_string(), 40),
                ("user_summary".to_string(), 2 * n),
            ])
        };
        a.embedded = Some(EmbeddedView {
            info: Some(embedded_info()),
            batches: [
                BatchRunView {
                    trigger: BatchTrigger::Command,
                    started: ago(12),
                    elapsed_ms: 1_400,
                    result: Ok(BatchTotals {
                        input_files: 15,
                        rows_in: 2_175,
                        tables: tables(150),
                        merged: (96, 12),
                    }),
                },
                BatchRunView {
                    trigger: BatchTrigger::Schedule,
                    started: ago(42),
                    elapsed_ms: 300,
                    result: Err("the serving database: connection refused".into()),
                },
            ]
            .into(),
            batch_running: false,
        });
        a
    }

    #[test]
    fn the_embedded_lab_views_match_their_snapshots() {
        for view in [View::Overview, View::Pipeline, View::Hdfs, View::Spark, View::Airflow] {
            let a = embedded_app(view);
            for (w, h) in SIZES {
                let name = format!("embedded_{}_{w}x{h}", view.short_title().to_lowercase());
                insta::assert_snapshot!(name, screen(&a, w, h));
            }
        }
    }

    /// The embedded lab as its broker answers: no group listed, so no state and no members.
    fn embedded_app_with_unlisted_groups(view: View) -> App {
        let mut a = embedded_app(view);
        for g in &mut a.lab.kafka.as_mut().unwrap().detail.as_mut().unwrap().groups {
            g.state = crate::probes::kafka::NOT_LISTED.into();
            g.members.clear();
        }
        a
    }

    /// The embedded broker lists no groups: the probe reads the stages' groups by name, without
    /// their members. The Kafka view must not say they have none (a newcomer read `0` as stopped).
    #[test]
    fn groups_read_by_name_show_their_members_as_unknown() {
        let a = embedded_app_with_unlisted_groups(View::Kafka);
        let name = a.lab.kafka.as_ref().unwrap().detail.as_ref().unwrap().groups[0]
            .name
            .clone();
        for (w, h) in SIZES {
            let s = screen(&a, w, h);
            let row = s
                .lines()
                .find(|l| l.contains(&name))
                .unwrap_or_else(|| panic!("{w}x{h}:\n{s}"));
            let cells: Vec<&str> = row.trim_matches('│').split_whitespace().collect();
            assert_eq!(cells[1..4], ["not", "listed", "–"], "{w}x{h}: {row}");
        }
    }

    /// The Kafka view and the Overview say the same as the Pipeline of a group the broker does not
    /// list: "running" (green, its member here) while this monitor runs its stage, "waiting" while
    /// that stage waits for the broker, and "not listed" with its members unknown otherwise
    /// (the embedded lab's groups all read "not listed" before, beside stages that ran).
    #[test]
    fn a_group_read_by_name_shows_the_stage_this_monitor_runs_in_it() {
        use crate::pipeline::stage::StageKind;
        let mut a = embedded_app_with_unlisted_groups(View::Kafka);
        a.stages.entry(StageKind::Transform).or_default().running = true;
        let cells = |a: &App, group: &str, w: u16, h: u16| -> Vec<String> {
            let s = screen(a, w, h);
            let row = s
                .lines()
                .find(|l| l.contains(group))
                .unwrap_or_else(|| panic!("{w}x{h}: no {group}:\n{s}"));
            row.trim_matches('│').split_whitespace().map(str::to_string).collect()
        };
        for (w, h) in SIZES {
            assert_eq!(
                cells(&a, "lab-transform-yelp", w, h)[1..3],
                ["running", "here"],
                "{w}x{h}"
            );
            assert_eq!(
                cells(&a, "lab-consumer-yelp", w, h)[1..4],
                ["not", "listed", "–"],
                "{w}x{h}"
            );
        }
        let buf = draw(&a, 120, 40);
        let (x, y) = find(&buf, "running").unwrap();
        assert_eq!(Some(buf[(x, y)].fg), a.theme.health(crate::probes::Health::Up).fg);

        a.stages
            .get_mut(&StageKind::Transform)
            .unwrap()
            .snapshot
            .waiting_for_broker = true;
        assert_eq!(cells(&a, "lab-transform-yelp", 120, 40)[1..3], ["waiting", "here"]);

        a.view = View::Overview;
        let s = screen(&a, 200, 60);
        assert!(s.contains("lab-transform-yelp waiting"), "{s}");
        assert!(s.contains("lab-consumer-yelp not listed"), "{s}");
    }

    /// Where the broker lists no groups, a stage this monitor runs reads "running" in its
    /// hop (the group's "not listed" in yellow read as a fault beside a stage that ran), one
    /// waiting for the broker says "waiting", and one it does not run stays "not listed", not
    /// yellow.
    #[test]
    fn the_pipeline_shows_a_stage_running_here_where_its_group_is_not_listed() {
        use crate::pipeline::stage::StageKind;
        let mut a = embedded_app_with_unlisted_groups(View::Pipeline);
        a.stages.entry(StageKind::Transform).or_default().running = true;
        let hop = |a: &App, stage: &str| -> String {
            let s = screen(a, 120, 40);
            let row = s
                .lines()
                .find(|l| l.contains(&format!("{stage}  ")) && l.contains("lab-"))
                .unwrap_or_else(|| panic!("no {stage} hop:\n{s}"));
            row.split_whitespace().collect::<Vec<_>>().join(" ")
        };
        assert!(
            hop(&a, "transform").contains("lab-transform-yelp running lag"),
            "{}",
            hop(&a, "transform")
        );
        assert!(
            hop(&a, "consumer").contains("lab-consumer-yelp not listed lag"),
            "{}",
            hop(&a, "consumer")
        );
        let up = a.theme.health(crate::probes::Health::Up);
        let unknown = a.theme.health(crate::probes::Health::Unknown);
        let colour_of = |a: &App, word: &str| {
            let buf = draw(a, 120, 40);
            let (x, y) = find(&buf, word).unwrap_or_else(|| panic!("{word} not drawn:\n{}", text(&buf)));
            buf[(x, y)].fg
        };
        assert_eq!(Some(colour_of(&a, "running  ")), up.fg);
        assert_eq!(Some(colour_of(&a, "not listed")), unknown.fg);

        let t = a.stages.get_mut(&StageKind::Transform).unwrap();
        t.snapshot.waiting_for_broker = true;
        assert!(
            hop(&a, "transform").contains("lab-transform-yelp waiting lag"),
            "{}",
            hop(&a, "transform")
        );
    }

    /// The Pipeline's batch layer is what the embedded lab runs: its local raw zone, DataFusion and
    /// its batch runs, not a stack's HDFS path and an absent Spark.
    #[test]
    fn the_embedded_pipeline_shows_the_raw_zone_and_batch_it_runs() {
        let a = embedded_app(View::Pipeline);
        assert_shows(
            &a,
            &[
                "→ local directory",
                "DataFusion, here",
                "last ok",
                "940 rows",
                "serving rows",
            ],
        );
        // What the last batch's compaction merged, where the figures column has room for it.
        for (w, h) in [(120, 40), (200, 60)] {
            let s = screen(&a, w, h);
            assert!(s.contains("15 files  1.23 MiB  merged 96 → 12 files"), "{w}x{h}:\n{s}");
        }
        for (w, h) in SIZES {
            let s = screen(&a, w, h);
            // Below the tabs, which name every view.
            let graph: String = s.lines().skip(1).collect();
            assert!(!graph.contains("HDFS") && !graph.contains("Spark"), "{w}x{h}:\n{s}");
        }
    }

    /// Before the embedded lab's first batch the PostgreSQL tile says when it comes: `lab batch`
    /// from another terminal would not find the lab's throwaway PostgreSQL.
    #[test]
    fn before_its_first_batch_the_embedded_lab_says_when_it_loads() {
        let mut a = embedded_app(View::Overview);
        let pg = a.lab.postgres.as_mut().and_then(|p| p.detail.as_mut()).unwrap();
        pg.last_batch = None;
        for (w, h) in [(120, 40), (200, 60)] {
            let s = screen(&a, w, h);
            assert!(s.contains("no batch yet (every 30 s, or :batch)"), "{w}x{h}:\n{s}");
            assert!(!s.contains("lab batch"), "{w}x{h}:\n{s}");
        }
        a.embedded = None;
        assert!(screen(&a, 200, 60).contains("no batch yet (lab batch, or the DAG)"));
    }

    #[test]
    fn the_raw_zone_stands_where_hdfs_is_and_lists_partitions_by_date() {
        let a = embedded_app(View::Hdfs);
        assert_shows(
            &a,
            &["HDFS", "UP", "15 files", "local directory", "date=2026-11-23", "review"],
        );
        let overview = embedded_app(View::Overview);
        assert_shows(&overview, &["raw zone 15 files", "newest file"]);
    }

    #[test]
    fn spark_and_airflow_say_what_stands_in_for_them_and_how_to_get_them() {
        let spark = embedded_app(View::Spark);
        assert_shows(&spark, &["not in the embedded lab", "DataFusion", "lab up"]);
        let airflow = embedded_app(View::Airflow);
        assert_shows(&airflow, &["Batch runs", ":batch", "success", "failed", "scheduled"]);
        let overview = embedded_app(View::Overview);
        assert_shows(&overview, &["last ok 12 s ago", "lab up"]);
        // Neither is coloured as down: they are not part of this lab.
        let buf = draw(&spark, 80, 24);
        let (x, y) = find(&buf, "5 Spark").unwrap();
        assert_ne!(buf[(x, y)].fg, Color::Red, "the Spark tab is not red");
    }

    #[test]
    fn without_postgresql_the_serving_tables_are_parquet_and_the_views_say_so() {
        for view in [View::Overview, View::Postgres] {
            let mut a = embedded_app(view);
            a.lab.postgres = None;
            let info = a.embedded.as_mut().unwrap().info.as_mut().unwrap();
            info.serving = "Parquet files in /tmp/lab/embedded/serving (no PostgreSQL: no server binaries)".into();
            assert_shows(&a, &["Parquet"]);
            let big = screen(&a, 200, 60);
            assert!(
                big.contains("Parquet files in /tmp/lab") && big.contains("initdb"),
                "{big}"
            );
            assert!(!big.contains("not configured"), "not the stack's advice:\n{big}");
        }
    }

    #[test]
    fn a_batch_run_is_listed_newest_first_and_a_command_run_says_what_it_did() {
        let mut a = embedded_app(View::Airflow);
        a.update(crate::tui::msg::Msg::Embedded(
            crate::tui::embedded::EmbeddedEvent::BatchStarted {
                trigger: BatchTrigger::Command,
            },
        ));
        assert_shows(&a, &["one running now"]);
        a.update(crate::tui::msg::Msg::Embedded(
            crate::tui::embedded::EmbeddedEvent::BatchDone(BatchRunView {
                trigger: BatchTrigger::Command,
                started: ago(1),
                elapsed_ms: 2_000,
                result: Ok(BatchTotals {
                    input_files: 20,
                    rows_in: 3_000,
                    tables: BTreeMap::from([("business_summary".to_string(), 7_777)]),
                    merged: (0, 0),
                }),
            }),
        ));
        let runs = &a.embedded.as_ref().unwrap().batches;
        assert_eq!((runs.len(), runs[0].elapsed_ms), (3, 2_000), "the newest first");
        assert!(
            a.notice
                .as_ref()
                .unwrap()
                .text
                .contains("20 raw-zone files, 7,777 rows")
        );
        assert_shows(&a, &["7,777"]);
    }

    #[test]
    fn batch_is_a_command_and_a_lesson_gives_the_pipeline_back() {
        let mut a = embedded_app(View::Overview);
        a.mode = Mode::Command;
        a.input = "batch".into();
        let cmds = a.update(crate::tui::msg::Msg::Key(crossterm::event::KeyEvent::new(
            crossterm::event::KeyCode::Enter,
            crossterm::event::KeyModifiers::NONE,
        )));
        assert_eq!(cmds, vec![Cmd::Batch]);
        let after = a.update(crate::tui::msg::Msg::LessonDone(Ok(
            "lesson consumer-lag done in 20 s".into()
        )));
        assert_eq!(after, vec![Cmd::StartEmbeddedStages], "the stages start again");
        assert_shows(&a, &["lesson consumer-lag done"]);
    }
}

/// The Kafka view's data browser and its actions, driven by keys and `:` commands as a user
/// would, with the broker's answers given as messages (the real broker's are tested in
/// tests/tui_data.rs).
mod data_browser {
    use std::collections::BTreeMap;

    use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

    use super::*;
    use crate::kafka_tools::dlq::{Reason, Replay, Summary};
    use crate::kafka_tools::offsets::{PlannedOffset, ResetPlan, ResetTo, Scope};
    use crate::kafka_tools::tail::{ShownRecord, Tail};
    use crate::tui::data::{self, Browse, DataCmd, DataEvent};
    use crate::tui::msg::Msg;

    fn key(a: &mut App, c: KeyCode) -> Vec<Cmd> {
        a.update(Msg::Key(KeyEvent::new(c, KeyModifiers::NONE)))
    }

    fn command(a: &mut App, line: &str) -> Vec<Cmd> {
        key(a, KeyCode::Char(':'));
        for c in line.chars() {
            key(a, KeyCode::Char(c));
        }
        key(a, KeyCode::Enter)
    }

    fn record(
        partition: i32,
        offset: i64,
        key: &str,
        headers: &[(&str, &str)],
        value: serde_json::Value,
    ) -> ShownRecord {
        ShownRecord {
            partition,
            offset,
            timestamp: Some(format!("2026-11-24T22:5{partition}:0{}.000Z", offset % 10)),
            timestamp_ms: 0,
            key: Some(key.into()),
            headers: headers
                .iter()
                .map(|(n, v)| ((*n).to_string(), (*v).to_string()))
                .collect(),
            value,
        }
    }

    fn reviews() -> Tail {
        Tail {
            topic: "yelp.review.clean".into(),
            scanned: 3_000,
            matched: 2,
            ranges: BTreeMap::from([(0, (0, 1_000)), (1, (0, 1_000)), (2, (0, 1_000))]),
            records: vec![
                record(
                    1,
                    998,
                    "r-1",
                    &[],
                    serde_json::json!({"review_id": "r-1", "stars": 1, "text": "cold fries"}),
                ),
                record(
                    2,
                    999,
                    "r-2",
                    &[("lab.replay.of", "yelp.dlq[0]@4")],
                    serde_json::json!({"review_id": "r-2", "stars": 1, "text": "replayed"}),
                ),
            ],
        }
    }

    fn dead_letters() -> Summary {
        let example = |code: &str, reason: &str, value: serde_json::Value| {
            record(
                0,
                4,
                "",
                &[
                    ("lab.reason", reason),
                    ("lab.reason.code", code),
                    ("lab.source", "yelp_academic_dataset_review.json:100"),
                    ("lab.source.offset", "99"),
                    ("lab.source.partition", "0"),
                    ("lab.source.topic", "yelp.review"),
                ],
                value,
            )
        };
        let reason = |code: &str, count, example| Reason {
            code: code.into(),
            count,
            first_seen: Some("2026-11-24T22:50:00.000Z".into()),
            last_seen: Some("2026-11-24T22:55:00.000Z".into()),
            example,
        };
        Summary {
            topic: "yelp.dlq".into(),
            dead_letters: 7,
            reasons: vec![
                reason(
                    "invalid_json",
                    5,
                    example(
                        "invalid_json",
                        "not JSON: expected value at line 1 column 1",
                        serde_json::Value::String("{not json".into()),
                    ),
                ),
                reason(
                    "stars_out_of_range",
                    2,
                    example(
                        "stars_out_of_range",
                        "stars 7 is outside 1..=5",
                        serde_json::json!({"review_id": "r-9", "stars": 7}),
                    ),
                ),
            ],
        }
    }

    fn kafka_app() -> App {
        app(live_lab(), View::Kafka)
    }

    #[test]
    fn enter_on_a_topic_browses_its_newest_records_and_esc_goes_back() {
        let mut a = kafka_app();
        key(&mut a, KeyCode::Right); // the Topics pane
        let topic = a.kafka_topics()[a.selected()].name.clone();
        let cmds = key(&mut a, KeyCode::Enter);
        assert_eq!(cmds, vec![Cmd::Data(DataCmd::Tail(data::newest(&topic)))]);
        assert_shows(&a, &["reading the records"]);

        // The answer to another request (the user moved on) changes nothing.
        let other = data::newest("elsewhere");
        a.update(Msg::Data(DataEvent::Tail(other, Ok(reviews()))));
        assert_shows(&a, &["reading the records"]);

        a.update(Msg::Data(DataEvent::Tail(data::newest(&topic), Ok(reviews()))));
        for (w, h) in SIZES {
            insta::assert_snapshot!(format!("kafka_records_{w}x{h}"), screen(&a, w, h));
        }
        assert_shows(&a, &["2 shown; 2 matched of 3,000 scanned", "cold fries"]);
        // 3,000 offsets read, 2,990 records among them: the rest were markers or aborted.
        let mut with_markers = reviews();
        with_markers.scanned = 2_990;
        a.update(Msg::Data(DataEvent::Tail(data::newest(&topic), Ok(with_markers))));
        assert!(screen(&a, 200, 60).contains("2 matched of 2,990 scanned; 10 offsets were markers or aborted"));
        a.update(Msg::Data(DataEvent::Tail(data::newest(&topic), Ok(reviews()))));
        key(&mut a, KeyCode::Down);
        assert_shows(&a, &["lab.replay.of: yelp.dlq[0]@4", "[2]@999"]);
        assert_eq!(
            key(&mut a, KeyCode::Char('r')),
            vec![Cmd::Data(DataCmd::Tail(data::newest(&topic)))]
        );
        key(&mut a, KeyCode::Esc);
        assert_eq!(a.browse, None);
        assert_shows(&a, &["Consumer groups"]);
    }

    #[test]
    fn tail_takes_the_cli_filters_and_a_failed_read_says_why() {
        let mut a = app(live_lab(), View::Overview);
        let cmds = command(&mut a, "tail yelp.review.clean --grep stars=1 -n 5");
        let Some(Cmd::Data(DataCmd::Tail(request))) = cmds.first().cloned() else {
            panic!("{cmds:?}");
        };
        assert_eq!(a.view, View::Kafka);
        assert_eq!(request.filter.field, Some(("stars".into(), "1".into())));
        assert_eq!(request.limit, 5);
        a.update(Msg::Data(DataEvent::Tail(request.clone(), Ok(reviews()))));
        assert_shows(&a, &["2 shown where stars=1; 2 matched of 3,000 scanned"]);
        a.update(Msg::Data(DataEvent::Tail(
            request,
            Err("Kafka: cannot read yelp.review.clean: the broker is unreachable".into()),
        )));
        assert_shows(&a, &["the broker is unreachable"]);
    }

    /// Enter before the broker answered opens nothing, and says so (a quick Enter seemed lost);
    /// the note goes when the reasons show, and Enter then opens the selected one.
    #[test]
    fn enter_on_the_dead_letters_before_they_are_read_says_so() {
        let mut a = kafka_app();
        key(&mut a, KeyCode::Char('d'));
        assert_eq!(key(&mut a, KeyCode::Enter), vec![]);
        assert!(matches!(a.browse, Some(Browse::DeadLetters { found: None, .. })));
        assert_shows(
            &a,
            &["reading the dead-letter topic …", "Enter opens a reason once they show"],
        );
        a.update(Msg::Data(DataEvent::DeadLetters(Ok(dead_letters()))));
        assert!(a.notice.is_none(), "{:?}", a.notice);
        assert_eq!(
            key(&mut a, KeyCode::Enter),
            vec![Cmd::Data(DataCmd::Tail(data::dead_letters_of(
                "yelp.dlq",
                "invalid_json"
            )))]
        );
    }

    #[test]
    fn the_dead_letters_by_reason_open_their_records_and_replay_asks_with_the_count() {
        let mut a = kafka_app();
        assert_eq!(key(&mut a, KeyCode::Char('d')), vec![Cmd::Data(DataCmd::DeadLetters)]);
        a.update(Msg::Data(DataEvent::DeadLetters(Ok(dead_letters()))));
        for (w, h) in SIZES {
            insta::assert_snapshot!(format!("kafka_dead_letters_{w}x{h}"), screen(&a, w, h));
        }
        assert_shows(
            &a,
            &[
                "invalid_json",
                "stars_out_of_range",
                "from yelp.review[0]@99",
                "{not json",
            ],
        );

        // Enter: the records of the selected reason, the whole DLQ scanned.
        key(&mut a, KeyCode::Down);
        let cmds = key(&mut a, KeyCode::Enter);
        assert_eq!(
            cmds,
            vec![Cmd::Data(DataCmd::Tail(data::dead_letters_of(
                "yelp.dlq",
                "stars_out_of_range"
            )))]
        );
        assert!(matches!(a.browse, Some(Browse::Records { .. })));

        // R: the replay is counted first (a dry run), then asked with the count.
        key(&mut a, KeyCode::Char('d'));
        a.update(Msg::Data(DataEvent::DeadLetters(Ok(dead_letters()))));
        assert_eq!(
            key(&mut a, KeyCode::Char('R')),
            vec![Cmd::Data(DataCmd::PlanReplay("invalid_json".into()))]
        );
        let plan = Replay {
            code: "invalid_json".into(),
            group: "lab-dlq-replay-yelp.dlq-invalid_json".into(),
            replayed: 5,
            to_topics: BTreeMap::from([("yelp.review".into(), 5)]),
            skipped: 0,
            already_replayed: 0,
            dry_run: true,
        };
        a.update(Msg::Data(DataEvent::ReplayPlanned(Ok(plan.clone()))));
        assert_shows(
            &a,
            &[
                "would replay 5 dead letter(s) of invalid_json (5 to yelp.review)",
                "[y] yes",
            ],
        );
        assert_eq!(
            key(&mut a, KeyCode::Char('y')),
            vec![Cmd::Data(DataCmd::Replay(Box::new(plan.clone())))]
        );

        // Nothing left to replay: said, not asked.
        a.update(Msg::Data(DataEvent::ReplayPlanned(Ok(Replay {
            replayed: 0,
            already_replayed: 5,
            ..plan
        }))));
        assert_eq!(a.mode, Mode::Normal);
        assert_shows(&a, &["nothing to replay for invalid_json: 5 replayed before"]);
    }

    #[test]
    fn a_reset_shows_its_plan_and_kafkas_command_and_is_refused_while_members_are_connected() {
        let mut a = kafka_app();
        let cmds = command(
            &mut a,
            "reset lab-consumer-yelp --shift-by 1 --topic yelp.review.clean:2",
        );
        assert_eq!(
            cmds,
            vec![Cmd::Data(DataCmd::PlanReset {
                group: "lab-consumer-yelp".into(),
                to: ResetTo::ShiftBy(1),
                scope: Scope {
                    topic: Some("yelp.review.clean".into()),
                    partition: Some(2)
                },
            })]
        );
        let plan = ResetPlan {
            group: "lab-consumer-yelp".into(),
            members: Vec::new(),
            partitions: vec![PlannedOffset {
                topic: "yelp.review.clean".into(),
                partition: 2,
                before: Some(41),
                after: 42,
                high: 500,
                lag_after: 458,
                metadata: String::new(),
            }],
            command: "kafka-consumer-groups.sh --bootstrap-server 127.0.0.1:9092 --group lab-consumer-yelp \
                      --reset-offsets --shift-by 1 --topic yelp.review.clean:2 --dry-run"
                .into(),
            note: None,
        };
        a.update(Msg::Data(DataEvent::ResetPlanned(Ok(ResetPlan {
            members: vec!["lab-consumer-yelp (127.0.0.1)".into()],
            ..plan.clone()
        }))));
        assert_eq!(
            a.mode,
            Mode::Normal,
            "a reset of a group with members must not be offered"
        );
        assert_shows(&a, &["still has connected members"]);

        a.update(Msg::Data(DataEvent::ResetPlanned(Ok(plan.clone()))));
        insta::assert_snapshot!("confirm_reset_200x60", screen(&a, 200, 60));
        let wide = screen(&a, 200, 60);
        for shown in [
            "BEFORE",
            "LAG AFTER",
            "--reset-offsets --shift-by 1",
            "Apply this reset?",
        ] {
            assert!(wide.contains(shown), "{shown:?} missing:\n{wide}");
        }
        assert_shows(&a, &["Apply this reset?", "[y] yes"]);
        assert_eq!(key(&mut a, KeyCode::Char('n')), Vec::<Cmd>::new());
        a.update(Msg::Data(DataEvent::ResetPlanned(Ok(plan.clone()))));
        assert_eq!(
            key(&mut a, KeyCode::Char('y')),
            vec![Cmd::Data(DataCmd::ApplyReset(Box::new(plan.clone())))]
        );
        // On a broker that cannot list groups (the embedded lab's) the dialog says how applying
        // checks for members instead.
        let note = "the broker cannot list consumer groups, so who is connected is not known";
        a.update(Msg::Data(DataEvent::ResetPlanned(Ok(ResetPlan {
            note: Some(note.into()),
            ..plan
        }))));
        assert_shows(&a, &[note, "Apply this reset?"]);
    }
}

#[test]
fn topics_table_counts_records_without_the_markers_the_census_found() {
    let mut lab = live_lab();
    let kafka = lab
        .kafka
        .as_mut()
        .and_then(|p| p.detail.as_mut())
        .expect("kafka detail");
    let clean = kafka.topics.iter_mut().find(|t| t.name == "yelp.review.clean").unwrap();
    clean.messages = 1_500;
    clean.not_records = Some(12);
    clean.census_complete = true;
    let user = kafka.topics.iter_mut().find(|t| t.name == "yelp.user.clean").unwrap();
    user.not_records = Some(3);
    let mut a = app(lab, View::Kafka);
    a.pane[View::Kafka.index()] = 1;
    a.selection[View::Kafka.index()] = 6;
    for (w, h) in SIZES {
        let s = screen(&a, w, h);
        let row = |name: &str| {
            s.lines()
                .find(|l| l.contains(&format!("{name} ")))
                .unwrap_or("")
                .to_string()
        };
        let review = row("yelp.review.clean");
        assert!(review.contains("1,488") && review.contains(" 12 "), "{review}");
        // The last topic, selected so that it is on screen at 80×24 too.
        a.selection[View::Kafka.index()] = 10;
        let s = screen(&a, w, h);
        assert!(
            s.lines().any(|l| l.contains("yelp.user.clean") && l.contains("≥3")),
            "still counting: {s}"
        );
        a.selection[View::Kafka.index()] = 6;
    }
}

#[test]
fn explain_shows_each_action_as_the_native_tools_do_it() {
    use crate::tui::msg::Msg;
    use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
    let mut a = app(live_lab(), View::Stack);
    a.stack.name = "lambda".into();
    let run = |a: &mut App, line: &str| {
        a.update(Msg::Key(KeyEvent::new(KeyCode::Char(':'), KeyModifiers::NONE)));
        for c in line.chars() {
            a.update(Msg::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE)));
        }
        a.update(Msg::Key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE)))
    };
    // Off: nothing is explained.
    run(&mut a, "trigger yelp_batch");
    a.update(Msg::Key(KeyEvent::new(KeyCode::Char('y'), KeyModifiers::NONE)));
    assert!(a.explained.is_empty());
    run(&mut a, "explain on");
    run(&mut a, "trigger yelp_batch");
    let cmds = a.update(Msg::Key(KeyEvent::new(KeyCode::Char('y'), KeyModifiers::NONE)));
    assert_eq!(cmds, [Cmd::TriggerDag("yelp_batch".into())]);
    for (w, h) in SIZES {
        let s = screen(&a, w, h);
        assert!(s.contains("Native commands"), "{s}");
        assert!(s.contains("airflow dags trigger"), "at {w}x{h}: {s}");
    }
    let brokers = {
        let k = a.lab.kafka.as_ref().and_then(|p| p.detail.as_ref()).unwrap();
        format!("{}:{}", k.brokers[0].host, k.brokers[0].port)
    };
    run(&mut a, "tail yelp.review");
    let last = a.explained.back().unwrap();
    assert!(
        last.native[0].starts_with(&format!(
            "kafka-console-consumer.sh --bootstrap-server {brokers} --topic yelp.review"
        )),
        "{last:?}"
    );
    run(&mut a, "explain off");
    assert!(!screen(&a, 200, 60).contains("Native commands"));
}

/// The Overview after a few minutes of probe answers: figures, sparklines and details by size.
mod overview {
    use chrono::Duration;
    use ratatui::style::Color;

    use super::*;
    use crate::probes::airflow::{Dag, DagRun};
    use crate::probes::{LabSnapshot, ServiceSnapshot};
    use crate::tui::msg::Msg;
    use crate::tui::views::count;
    use crate::tui::views::test_support::fixed_clock;

    const POLLS: i64 = 40;

    /// The live fixture, answered every 2 s for 80 s while the pipeline moves: the raw topics
    /// take records at a rising rate, the consumer's lag grows then drains, the DLQ grows by one
    /// record every other answer, the raw zone and the serving tables grow, a Spark app takes
    /// cores. Airflow has `yelp_batch` scheduled with six runs (one failed, one running), and
    /// the last batch passed its quality check.
    pub fn overview_app() -> App {
        let live = live_lab();
        let mut a = app(LabSnapshot::default(), View::Overview);
        let end = fixed_clock().utc;
        for i in 0..POLLS {
            a.now.utc = end - Duration::seconds(2 * (POLLS - 1 - i));
            let mut lab = live.clone();
            let last = i == POLLS - 1;
            let k = lab.kafka.as_mut().and_then(|p| p.detail.as_mut()).unwrap();
            for (n, t) in k.topics.iter_mut().enumerate() {
                // The DLQ's rate is not known yet (a topic's first answer): the sum is of the others.
                t.rate_in = (!t.name.ends_with(".dlq")).then_some((i * 10 + n as i64) as f64);
            }
            for (n, g) in k.groups.iter_mut().enumerate() {
                let wave = if i < POLLS / 2 { i } else { POLLS - i };
                g.total_lag = if last { g.total_lag } else { wave * 50 * (n as i64 + 1) };
                g.rate = Some(100.0 + i as f64);
            }
            let dlq_now = k.dlq_messages;
            k.dlq_messages = dlq_now - (POLLS - 1 - i) / 2;
            let h = lab.hdfs.as_mut().and_then(|p| p.detail.as_mut()).unwrap();
            for z in h.zones.values_mut() {
                z.bytes = z.bytes * (i as u64 + 1) / POLLS as u64;
            }
            let s = lab.spark.as_mut().and_then(|p| p.detail.as_mut()).unwrap();
            s.coresused = u32::from(i % 10 >= 5) * 2;
            let p = lab.postgres.as_mut().and_then(|p| p.detail.as_mut()).unwrap();
            for (t, rows) in &mut p.tables {
                if t != "batch_runs" {
                    *rows = rows.map(|r| r * (i + 1) / POLLS);
                }
            }
            p.last_batch.as_mut().unwrap().quality = Some("passed".into());
            let af = lab.airflow.as_mut().and_then(|p| p.detail.as_mut()).unwrap();
            af.dags.push(Dag {
                dag_id: "yelp_batch".into(),
                next_run: Some(end + Duration::seconds(200)),
                ..Dag::default()
            });
            let states = ["running", "success", "failed", "success", "success", "success"];
            for (n, state) in states.into_iter().enumerate() {
                let start = end - Duration::minutes(5 * n as i64 + 1);
                af.runs.push(DagRun {
                    dag_id: "yelp_batch".into(),
                    dag_run_id: format!("scheduled__{n}"),
                    state: state.into(),
                    run_type: "scheduled".into(),
                    start_date: Some(start),
                    end_date: (state != "running").then_some(start + Duration::seconds(40)),
                });
            }
            af.runs.sort_by_key(|r| std::cmp::Reverse(r.start_date));
            let LabSnapshot {
                kafka,
                hdfs,
                spark,
                airflow,
                postgres,
                ..
            } = lab;
            let answers = [
                kafka.map(ServiceSnapshot::Kafka),
                hdfs.map(ServiceSnapshot::Hdfs),
                spark.map(ServiceSnapshot::Spark),
                airflow.map(ServiceSnapshot::Airflow),
                postgres.map(ServiceSnapshot::Postgres),
            ];
            for snap in answers.into_iter().flatten() {
                a.update(Msg::Probe(Box::new(snap)));
            }
        }
        a.now = fixed_clock();
        a
    }

    const THREE_SIZES: [(u16, u16); 3] = [(80, 24), (120, 40), (200, 60)];

    #[test]
    fn the_overview_matches_its_snapshots_at_three_sizes() {
        let a = overview_app();
        for (w, h) in THREE_SIZES {
            insta::assert_snapshot!(format!("overview_trends_{w}x{h}"), screen(&a, w, h));
        }
    }

    #[test]
    fn every_tile_shows_its_key_figures_at_every_size() {
        let a = overview_app();
        let k = a.lab.kafka.as_ref().and_then(|p| p.detail.as_ref()).unwrap();
        let lag: i64 = k.groups.iter().map(|g| g.total_lag).sum();
        let worst = k.groups.iter().max_by_key(|g| g.total_lag).unwrap();
        let pg = a.lab.postgres.as_ref().and_then(|p| p.detail.as_ref()).unwrap();
        for (w, h) in THREE_SIZES {
            let s = screen(&a, w, h);
            for needle in [
                format!("lag {}", count(lag)),
                format!("worst {}", worst.name),
                // 19 now, 20 answers ago (40 s, inside the minute) 19 - 19 / 2 … grew by one
                // every other answer: +15 over the 58 s the minute's oldest answer reaches back.
                format!("DLQ {}  +", count(k.dlq_messages)),
                "% of".into(),
                "datanodes 1 live".into(),
                "cores 2/2".into(),
                "yelp_batch ".into(),
                format!("serving rows {}", count(pg.serving_rows())),
                "last batch succeeded".into(),
            ] {
                assert!(s.contains(&needle), "{w}x{h} lacks {needle:?}:\n{s}");
            }
            // Sparklines draw with block characters.
            assert!(s.contains('█'), "{w}x{h} has no sparkline:\n{s}");
        }
        // Details only where there is room: each serving table, each raw-zone entity.
        let big = screen(&a, 200, 60);
        for needle in [
            "business_daily 1,459",
            "review 1 file",
            "quality passed",
            "written/s  now",
            "total lag",
        ] {
            assert!(big.contains(needle), "200x60 lacks {needle:?}:\n{big}");
        }
        assert!(!screen(&a, 80, 24).contains("business_daily 1,459"));
    }

    #[test]
    fn the_lab_tile_names_every_stage_running_here_with_what_it_reads() {
        let mut a = overview_app();
        for (kind, read, written) in [
            (crate::pipeline::stage::StageKind::Producer, 200.0, 200.0),
            (crate::pipeline::stage::StageKind::Transform, 197.0, 197.0),
            // Between two rolls the consumer writes nothing while it reads.
            (crate::pipeline::stage::StageKind::Consumer, 203.0, 0.0),
        ] {
            let stage = a.stages.entry(kind).or_default();
            stage.running = true;
            stage.rate_in = Some(read);
            stage.rate_out = Some(written);
        }
        for (w, h) in THREE_SIZES {
            let s = screen(&a, w, h);
            let words = s
                .split(['│', ' ', ','])
                .filter(|w| !w.is_empty())
                .collect::<Vec<_>>()
                .join(" ");
            for stage in ["producer 200/s", "transform 197/s", "consumer 203/s"] {
                assert!(words.contains(stage), "{w}x{h} lacks {stage:?}:\n{s}");
            }
        }
    }

    #[test]
    fn the_dlq_growth_is_read_over_the_last_minute() {
        let a = overview_app();
        let s = screen(&a, 200, 60);
        // 40 answers 2 s apart; the DLQ grew by one every other answer. The minute before the
        // last answer starts at answer 9 (60 s back): (39 - 9) / 2 = 15 records in 60 s.
        assert!(s.contains("DLQ 19  +15 in 1m00s"), "{s}");
    }

    /// Before the census has counted the DLQ, its size is offsets (markers included), more than
    /// the dead letters counted a moment later: said so, and no growth is read across the two.
    #[test]
    fn a_dlq_not_counted_yet_says_offsets_and_its_count_is_no_shrink() {
        let lab_with_dlq = |offsets: i64, counted: Option<i64>| {
            let mut lab = live_lab();
            let k = lab.kafka.as_mut().and_then(|p| p.detail.as_mut()).unwrap();
            let dlq = k.topics.iter_mut().find(|t| t.name == "yelp.dlq").unwrap();
            dlq.messages = offsets;
            dlq.not_records = counted;
            dlq.census_complete = counted.is_some();
            k.dlq_messages = offsets - counted.unwrap_or(0);
            lab
        };
        let mut a = app(lab_with_dlq(21, None), View::Overview);
        let probe = |a: &mut App, lab: LabSnapshot| {
            a.update(Msg::Probe(Box::new(ServiceSnapshot::Kafka(lab.kafka.unwrap()))));
        };
        let start = a.now.utc;
        probe(&mut a, lab_with_dlq(21, None));
        for (w, h) in THREE_SIZES {
            assert!(screen(&a, w, h).contains("DLQ 21 offsets"), "{}", screen(&a, w, h));
        }
        a.view = View::Kafka;
        assert!(
            screen(&a, 200, 60).contains("DLQ yelp.dlq holds 21 offsets"),
            "{}",
            screen(&a, 200, 60)
        );
        // Read in part: 1 marker found so far, so at most 20 dead letters.
        let mut partial = lab_with_dlq(21, Some(1));
        let k = partial.kafka.as_mut().and_then(|p| p.detail.as_mut()).unwrap();
        k.topics
            .iter_mut()
            .find(|t| t.name == "yelp.dlq")
            .unwrap()
            .census_complete = false;
        probe(&mut a, partial);
        assert!(
            screen(&a, 200, 60).contains("DLQ yelp.dlq holds ≤20"),
            "{}",
            screen(&a, 200, 60)
        );
        // Counted: 3 of the 21 offsets are markers. Then one more dead letter.
        a.view = View::Overview;
        for (n, (offsets, markers)) in [(21, 3), (22, 3)].into_iter().enumerate() {
            a.now.utc = start + Duration::seconds(2 * (n as i64 + 1));
            probe(&mut a, lab_with_dlq(offsets, Some(markers)));
        }
        let s = screen(&a, 200, 60);
        assert!(s.contains("DLQ 19  +1 in 2.0s"), "{s}");
        assert!(!s.contains("offsets"), "{s}");
    }

    #[test]
    fn the_airflow_strip_colours_each_run_by_state_oldest_first_and_says_the_next_run() {
        let a = overview_app();
        let buf = draw(&a, 200, 60);
        let s = text(&buf);
        // Six runs, oldest first: success, success, success, failed, success, running.
        let (x, y) = find(&buf, "yelp_batch ■■■✗■□ 22:55").unwrap_or_else(|| panic!("{s}"));
        let strip = x + "yelp_batch ".len() as u16;
        assert_eq!(buf[(strip, y)].fg, Color::Green);
        assert_eq!(buf[(strip + 3, y)].fg, Color::Red);
        assert_eq!(buf[(strip + 5, y)].fg, Color::Yellow);
        assert!(s.contains("next 22:59"), "{s}");
        // A big tile lists the latest runs with their state and time taken.
        assert!(s.contains("22:55:20 yelp_batch running 1m00s  scheduled"), "{s}");
        assert!(s.contains("lab_smoke ") && s.contains("no schedule"), "{s}");
    }
}

/// `[tui.keys]`: the footer and the help overlay show the keys as configured, and the keys do
/// what they are configured to.
#[test]
fn help_and_footer_show_the_configured_keys_and_they_work() {
    use crate::config::KeyList;
    use crate::tui::keys::Keymap;
    use crate::tui::msg::Msg;
    use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
    let configured = [
        ("stop_selected".to_string(), KeyList::One("x".into())),
        ("quit".to_string(), KeyList::Many(vec!["Q".into(), "F10".into()])),
    ]
    .into();
    let mut a = app(live_lab(), View::Stack);
    a.keymap = Keymap::configured(&configured).unwrap();
    let footer = |a: &App| screen(a, 200, 60).lines().last().unwrap().to_string();
    let f = footer(&a);
    assert!(f.contains("x stop selected") && !f.contains("s stop selected"), "{f}");
    a.view = View::Overview;
    let f = footer(&a);
    assert!(f.contains("Q F10 Ctrl-C quit") && !f.contains("q Ctrl-C quit"), "{f}");
    a.view = View::Stack;
    a.mode = Mode::Help;
    for (w, h) in [(120, 60), (200, 60)] {
        let s = screen(&a, w, h);
        assert!(s.contains("x  [Stack] stop selected"), "{w}x{h}:\n{s}");
        assert!(s.contains("Q F10 Ctrl-C  quit"), "{w}x{h}:\n{s}");
    }
    a.mode = Mode::Normal;
    let press = |a: &mut App, c: KeyCode| a.update(Msg::Key(KeyEvent::new(c, KeyModifiers::NONE)));
    press(&mut a, KeyCode::Char('q'));
    assert!(!a.quit, "q is no longer quit");
    press(&mut a, KeyCode::F(10));
    assert!(a.quit);
}

/// A cluster of three brokers with broker 2 down, built from the live fixture's topics: the
/// Kafka view's brokers table (broker 2 not listed, its replicas out of sync), the summary,
/// the topics' replication column and the ISR and leader changes the probe reported, and the
/// Overview's Kafka tile saying so first.
#[test]
fn a_cluster_with_a_broker_down_shows_replication_and_its_changes() {
    use crate::probes::kafka::Broker;
    use crate::probes::kafka_cluster::{self, NO_LEADER};
    use crate::probes::{Probed, ServiceSnapshot};
    use crate::tui::msg::Msg;

    let lab = live_lab();
    let probed = lab.kafka.clone().unwrap();
    let mut healthy = probed.detail.clone().unwrap();
    healthy.brokers = (1..=3)
        .map(|id| Broker {
            id,
            host: format!("kafka-{id}"),
            port: 9092,
        })
        .collect();
    // Replication 3 everywhere (the preferred leader rotating), the DLQ's partition 2 on broker 2
    // alone (replication 1).
    for t in &mut healthy.topics {
        for p in &mut t.partitions {
            let first = p.id % 3 + 1;
            p.replicas = vec![first, first % 3 + 1, (first + 1) % 3 + 1];
            p.leader = first;
            if t.name == "yelp.dlq" && p.id == 2 {
                p.replicas = vec![2];
                p.leader = 2;
            }
            p.isr = p.replicas.clone();
        }
    }
    healthy.cluster = kafka_cluster::health(&healthy.brokers, &healthy.topics);
    assert!(healthy.cluster.healthy());
    // Broker 2 goes down: it leaves the broker list and every ISR; the partitions it led move
    // to the next replica, the DLQ partition it alone held has no leader.
    let mut down = healthy.clone();
    down.brokers.retain(|b| b.id != 2);
    for t in &mut down.topics {
        for p in &mut t.partitions {
            p.isr.retain(|&b| b != 2);
            if p.leader == 2 {
                p.leader = p.isr.first().copied().unwrap_or(NO_LEADER);
            }
        }
    }
    down.cluster = kafka_cluster::health(&down.brokers, &down.topics);
    down.cluster.changes = kafka_cluster::changes(&kafka_cluster::replica_map(&healthy.topics), &down.topics);

    let mut a = app(lab, View::Kafka);
    for snap in [healthy, down] {
        a.update(Msg::Probe(Box::new(ServiceSnapshot::Kafka(Probed {
            status: probed.status.clone(),
            detail: Some(snap),
        }))));
    }
    for (w, h) in SIZES {
        insta::assert_snapshot!(format!("kafka_cluster_broker_down_{w}x{h}"), screen(&a, w, h));
    }
    assert_shows(
        &a,
        &["not listed (down?)", "32 under-replicated", "1 offline: yelp.dlq[2]"],
    );
    let changes: Vec<String> = a.replica_changes.iter().map(|(_, c)| c.to_string()).collect();
    assert!(
        changes.contains(&"yelp.dlq[2] offline: leader 2 lost".to_string()),
        "{changes:?}"
    );
    // The broker that is down in red, the offline partition's topic row in red.
    let buf = draw(&a, 200, 60);
    let (x, y) = find(&buf, "not listed (down?)").unwrap();
    assert_eq!(buf[(x, y)].fg, Color::Red);
    let wide = screen(&a, 200, 60);
    assert!(wide.contains("3 (1 off, 2 un)"), "{wide}");
    a.view = View::Overview;
    assert_shows(&a, &["brokers 2 (1 down)"]);
}

/// Three transform workers and two consumers sharing the lab's groups (`--worker`, `--workers`):
/// the Pipeline view lists each worker with its host, commit rate, lag and partitions, from the
/// group's members as the broker lists them.
#[test]
fn the_pipeline_lists_every_worker_of_the_stages_groups() {
    use crate::probes::kafka::Member;

    let mut lab = live_lab();
    let kafka = lab.kafka.as_mut().and_then(|p| p.detail.as_mut()).unwrap();
    for group in &mut kafka.groups {
        let (stage, workers) = if group.name.starts_with("lab-transform") {
            ("transform", 3)
        } else {
            ("consumer", 2)
        };
        let topics: Vec<String> = {
            let mut t: Vec<String> = group.partitions.iter().map(|p| p.topic.clone()).collect();
            t.dedup();
            t
        };
        group.members = (0..workers)
            .map(|w| Member {
                id: format!("lab-{stage}-yelp.w{w}-5f1c"),
                client_id: format!("lab-{stage}-yelp.w{w}"),
                host: format!("/127.0.0.{}", w + 1),
                // Round robin over every partition of every topic, as Kafka's range-free assignors do.
                partitions: topics
                    .iter()
                    .flat_map(|t| (0..3).map(move |p| (t.clone(), p)))
                    .enumerate()
                    .filter(|(i, _)| i % workers == w)
                    .map(|(_, tp)| tp)
                    .collect(),
                lag: 120 * (w as i64),
                rate: Some(1_500.0 + 500.0 * w as f64),
            })
            .collect();
    }
    let a = app(lab, View::Pipeline);
    for (w, h) in [(120, 40), (200, 60)] {
        insta::assert_snapshot!(format!("pipeline_workers_{w}x{h}"), screen(&a, w, h));
    }
    let wide = screen(&a, 200, 60);
    for needle in [
        "transform  w0",
        "transform  w2",
        "consumer   w1",
        "business 0,2  checkin 1",
    ] {
        assert!(wide.contains(needle), "{needle:?} not in\n{wide}");
    }
    // Workers listed in order of their number, each once.
    let rows: Vec<&str> = wide.lines().filter(|l| l.contains("/127.0.0.")).collect();
    assert_eq!(rows.len(), 5, "{wide}");
}
