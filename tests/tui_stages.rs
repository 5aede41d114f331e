//! Stages started from the monitor's command line (`:produce`, `:transform`, `:consume`,
//! `:stop STAGE`) against the real broker of `make test`: the monitor's own update loop and
//! effects (as `lab tui` runs them, minus the terminal) stream the sample into a local raw zone,
//! the Pipeline view shows each stage's counters, and stopping them loses nothing.
// Needs the services tests/services/up.sh starts: `make test` turns this feature on,
// so a plain `cargo test` on a fresh clone skips it.
#![cfg(feature = "service-tests")]

mod common;

use bigdata_lab::tui::app::{App, View};
use bigdata_lab::tui::stages::StageKind;
use common::monitor::Monitor;
use common::{reference, sample_dir, service_env, unique_prefix};

fn snapshot(app: &App, kind: StageKind) -> bigdata_lab::pipeline::stats::StageSnapshot {
    app.stages.get(&kind).map(|v| v.snapshot).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stages_started_from_the_command_line_stream_the_sample_and_stop_cleanly() {
    let brokers = service_env("LAB_TEST_KAFKA");
    let raw = tempfile::tempdir().unwrap();
    let prefix = unique_prefix("tuistages");
    let mut m = Monitor::on_broker(&brokers, &prefix, raw.path());
    let expected = reference(&sample_dir());

    // Bad options are refused before anything starts.
    m.command("produce --rate fast");
    assert!(
        m.app
            .notice
            .as_ref()
            .unwrap()
            .text
            .contains("--rate needs a positive number")
    );
    assert!(m.app.stages.is_empty());

    m.command("produce");
    m.command("transform");
    m.command("consume");
    m.until("the producer to finish", |a| {
        a.stages
            .get(&StageKind::Producer)
            .is_some_and(|v| !v.running && v.outcome.is_some())
    })
    .await;
    let produced = snapshot(&m.app, StageKind::Producer);
    assert_eq!(produced.output, expected.total_lines, "every line delivered");
    m.until("the transform to read everything", |a| {
        snapshot(a, StageKind::Transform).input >= expected.total_lines
    })
    .await;
    m.until("the consumer to make everything durable", |a| {
        let t = snapshot(a, StageKind::Transform);
        let c = snapshot(a, StageKind::Consumer);
        // The transform's output counts every delivered record, dead letters included.
        t.input >= expected.total_lines && c.output == t.output - t.dlq
    })
    .await;
    m.command("view pipeline");
    let s = m.screen();
    assert_eq!(m.app.view, View::Pipeline);
    for needle in ["Run here", "producer", "transform", "consumer", "running", "stopped"] {
        assert!(s.contains(needle), "pipeline view lacks {needle:?}:\n{s}");
    }

    m.command("stop transform");
    m.command("stop consumer");
    m.until("both stages to stop", |a| {
        [StageKind::Transform, StageKind::Consumer]
            .iter()
            .all(|k| a.stages.get(k).is_some_and(|v| !v.running && v.outcome.is_some()))
    })
    .await;
    let t = snapshot(&m.app, StageKind::Transform);
    let c = snapshot(&m.app, StageKind::Consumer);
    assert_eq!(
        t.dlq, expected.invalid_lines,
        "the sample's invalid lines were dead-lettered"
    );
    assert_eq!(t.output, t.input, "every record delivered: clean or dead-lettered");
    assert_eq!(c.output, t.output - t.dlq, "every clean record is in the raw zone");
    for kind in [StageKind::Transform, StageKind::Consumer] {
        let outcome = m.app.stages[&kind].outcome.clone().unwrap();
        assert!(outcome.is_ok(), "{} stopped cleanly: {outcome:?}", kind.name());
    }
    let s = m.screen();
    assert!(s.contains(&format!("DLQ {}", expected.invalid_lines)), "{s}");
    // Parquet files landed in the local raw zone.
    let files = walk(raw.path())
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
        .count();
    assert!(files > 0, "no Parquet file under {}", raw.path().display());
    m.command("stop consumer");
    m.until("the refusal to stop a stopped stage", |a| {
        a.notice
            .as_ref()
            .is_some_and(|n| n.error && n.text.contains("consumer is not running"))
    })
    .await;
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).expect("the raw zone is readable").flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
