//! Stages started from the monitor's command line (`:produce`, `:transform`, `:consume`,
//! `:stop STAGE`) against the real broker of `make test`: the monitor's own update loop and
//! effects (as `lab tui` runs them, minus the terminal) stream the sample into a local raw zone,
//! the Pipeline view shows each stage's counters, and stopping them loses nothing; and the
//! monitor's runtime stays free while those stages wait on a broker that has stopped answering.
// Needs the services tests/services/up.sh starts: `make test` turns this feature on,
// so a plain `cargo test` on a fresh clone skips it.
#![cfg(feature = "service-tests")]

mod common;

use std::time::Duration;

use bigdata_lab::tui::app::{App, View};
use bigdata_lab::tui::responsiveness;
use bigdata_lab::tui::stages::StageKind;
use common::monitor::Monitor;
use common::services::Stopped;
use common::{reference, sample_dir, service_env, unique_prefix};
use tokio_util::sync::CancellationToken;

/// One test at a time: the second one freezes the shared broker.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn snapshot(app: &App, kind: StageKind) -> bigdata_lab::pipeline::stats::StageSnapshot {
    app.stages.get(&kind).map(|v| v.snapshot).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stages_started_from_the_command_line_stream_the_sample_and_stop_cleanly() {
    let _serial = SERIAL.lock().await;
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
        // The transform's output counts its clean records, each landed once by the consumer.
        t.input >= expected.total_lines && c.output == t.output
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
    assert_eq!(
        t.output + t.dlq,
        t.input,
        "every record delivered: clean or dead-lettered"
    );
    assert_eq!(c.output, t.output, "every clean record is in the raw zone");
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

/// The stages run on the monitor's runtime, and a stage waiting on the broker must not hold one
/// of its workers: a synchronous offset commit or transaction commit blocks its thread until the
/// broker answers, and with every worker held the monitor stops drawing and reading keys (on 2
/// cores the runtime has 2 workers, and the transform and the consumer each wait at once). Here the
/// runtime has one worker, and the broker is frozen (SIGSTOP: connections stay open, nothing
/// answers) while the transform and the consumer have records in flight, so within seconds each is
/// inside a call that waits on the broker for as long as it stays frozen. The monitor's own
/// responsiveness watcher, started well into the freeze, must wake during it and never half the
/// window late (seen failing with the consumer's lag query and offset commit called on the
/// worker). It catches the first blocking call a stage makes in one poll of its task: tokio hands
/// the worker to a new thread at a `block_in_place`, so what follows it in that poll no longer
/// holds the worker.
///
/// Then the broker thaws and the stages finish the sample: every clean record in the raw zone
/// once, no stage still saying it waits for the broker, and the consumer's count of records
/// written equal to the raw zone's. The freeze outlasts the groups' session timeout, so both
/// stages are fenced by their own earlier registration and join again (seen in every run), although
/// they ran for longer than a fence counts as early (before, they exited then: seen failing); the
/// consumer's first run still had files landing then, and before they were counted the Pipeline
/// view showed 38–46 records fewer than the raw zone held (4 runs of 10).
#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn stages_waiting_on_a_frozen_broker_leave_the_monitors_runtime_free() {
    // The stages reach a call that waits on the broker well within this.
    const SETTLE: Duration = Duration::from_secs(8);
    const WATCHED: Duration = Duration::from_secs(8);
    const AFTER: Duration = Duration::from_secs(4);

    let _serial = SERIAL.lock().await;
    let brokers = service_env("LAB_TEST_KAFKA");
    let raw = tempfile::tempdir().unwrap();
    let prefix = unique_prefix("tuifrozen");
    let mut m = Monitor::on_broker(&brokers, &prefix, raw.path());
    let expected = reference(&sample_dir());

    // The stages run for longer than a fence counts as early anyway (`EARLY_FENCE`, 60 s): only
    // the outage may make them join again when the thaw fences them.
    m.command("transform");
    m.command("consume");
    m.pump_for(Duration::from_secs(65));
    // About 22 s of records at this rate: the producer is still sending when the broker freezes.
    m.command("produce --rate 100");
    m.until("the consumer's first durable records", |a| {
        snapshot(a, StageKind::Consumer).output > 0
    })
    .await;

    let frozen = Stopped::stop("kafka", "freeze", "thaw");
    // Off the runtime's clock from here on: its timers only fire on a free worker.
    m.pump_for(SETTLE);
    let cancel = CancellationToken::new();
    let watcher = tokio::spawn(responsiveness::watch(cancel.clone()));
    m.pump_for(WATCHED);
    cancel.cancel();
    m.pump_for(AFTER);
    frozen.start_again();
    let delays = watcher.await.unwrap();
    eprintln!("the monitor's runtime while the broker was frozen: {delays:?}");
    // A free worker wakes the watcher within milliseconds, a held one not until the call that
    // holds it returns: the bound only tells the two apart (a stall of half the window or more).
    assert!(
        delays.checks > 0 && delays.worst < WATCHED / 2,
        "the monitor's runtime stalled while the stages waited on the frozen broker: a stage holds \
         its worker in a blocking call ({delays:?})"
    );

    // From the raw zone itself: every clean record in a Parquet file, once.
    let clean = expected.total_lines - expected.invalid_lines;
    m.until("every clean record in the raw zone after the thaw", |_| {
        raw_zone_rows(raw.path()).is_ok_and(|rows| rows >= clean)
    })
    .await;
    // Waiting for the broker ends once it answers, also for a stage with nothing left to read.
    m.until("no stage saying it waits for the broker", |a| {
        [StageKind::Transform, StageKind::Consumer]
            .iter()
            .all(|k| !snapshot(a, *k).waiting_for_broker)
    })
    .await;
    m.command("stop transform");
    m.command("stop consumer");
    m.until("every stage to end", |a| {
        [StageKind::Producer, StageKind::Transform, StageKind::Consumer]
            .iter()
            .all(|k| a.stages.get(k).is_some_and(|v| !v.running && v.outcome.is_some()))
    })
    .await;
    for kind in [StageKind::Producer, StageKind::Transform, StageKind::Consumer] {
        let outcome = m.app.stages[&kind].outcome.clone().unwrap();
        assert!(outcome.is_ok(), "{} ended cleanly: {outcome:?}", kind.name());
    }
    assert_eq!(
        raw_zone_rows(raw.path()).unwrap(),
        clean,
        "every clean record in the raw zone once"
    );
    let t = snapshot(&m.app, StageKind::Transform);
    assert_eq!(
        t.dlq, expected.invalid_lines,
        "the sample's invalid lines were dead-lettered"
    );
    // The Pipeline view tells the truth: a consumer fenced by the broker's session timeout (as
    // the freeze makes it) rejoins, and counts what its first run left landing.
    assert_eq!(
        snapshot(&m.app, StageKind::Consumer).output,
        clean,
        "the consumer's count of records written is what the raw zone holds"
    );
}

/// Rows in the raw zone's Parquet files (an error for a file that cannot be read yet).
fn raw_zone_rows(dir: &std::path::Path) -> Result<u64, String> {
    use datafusion::parquet::file::reader::{FileReader, SerializedFileReader};
    let mut rows = 0;
    for path in walk(dir)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
    {
        let file = std::fs::File::open(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let reader = SerializedFileReader::new(file).map_err(|e| format!("{}: {e}", path.display()))?;
        rows += u64::try_from(reader.metadata().file_metadata().num_rows())
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(rows)
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
