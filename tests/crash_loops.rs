//! Crash loops on real services: each stage is SIGKILLed at random points at least ten times and
//! restarted, then the pipeline finishes normally, and the serving tables must equal the reference
//! computed straight from the input files: nothing lost, nothing doubled.
//!
//! - transform: killed while a rate-limited producer streams 200k reviews into the broker;
//! - consumer: killed while the data streams, writing its raw zone to the test HDFS;
//! - batch: killed mid-load (while it holds the load's lock in PostgreSQL), on a first load and on
//!   reloads, while a watcher polls the serving tables: it must only ever see "no load yet" or the
//!   complete result.
//!
//! The kill points come from a seed printed at the start of each test (LAB_CRASH_SEED replays one).
// Needs the services tests/services/up.sh starts: `make test` turns this feature on,
// so a plain `cargo test` on a fresh clone skips it.
#![cfg(feature = "service-tests")]
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use common::services::{hdfs_client, hdfs_delete, hdfs_raw_zone};
use common::{
    Background, Reference, Rng, assert_tables_equal_reference, connect, fresh_database, json_stdout, log_tail,
    reference, run_ok, service_env, stage_cmd, unique_prefix,
};
use serde_json::Value;

const REVIEWS: &str = "200000";
const KILLS: u32 = 10;
/// Messages per second of the background producer: the 290k messages stream for about 15 s, so
/// the kills land while data is arriving rather than after it is all there.
const STREAM_RATE: &str = "20000";

/// The tests share the machine's two cores and the test services: one at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The generated input (200k reviews with 1 % invalid lines) and its reference tables.
struct Dataset {
    dir: PathBuf,
    reference: Reference,
    /// Records a correct pipeline lands in the raw zone.
    valid: u64,
}

fn dataset() -> &'static Dataset {
    static DATA: OnceLock<Dataset> = OnceLock::new();
    DATA.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("crash-loops-data");
        run_ok(
            common::lab()
                .args(["dataset", "generate", "--reviews", REVIEWS, "--seed", "11"])
                .args(["--invalid-rate", "0.01", "--out", dir.to_str().unwrap()]),
        );
        let reference = reference(&dir);
        let valid = reference.total_lines - reference.invalid_lines;
        Dataset { dir, reference, valid }
    })
}

struct Env {
    prefix: String,
    raw_zone: String,
    state: tempfile::TempDir,
}

impl Env {
    fn new(name: &str, raw_zone: Option<String>) -> Self {
        let state = tempfile::tempdir().unwrap();
        let raw_zone = raw_zone.unwrap_or_else(|| state.path().join("raw").to_str().unwrap().to_string());
        Self {
            prefix: unique_prefix(name),
            raw_zone,
            state,
        }
    }

    fn cmd(&self, args: &[&str]) -> Command {
        stage_cmd(&self.prefix, self.raw_zone.as_ref(), self.state.path(), args)
    }

    fn run(&self, args: &[&str]) -> Value {
        json_stdout(&run_ok(&mut self.cmd(args)))
    }

    /// A stage in the background.
    fn spawn(&self, args: &[&str]) -> Background {
        Background::spawn(&mut self.cmd(args))
    }

    /// The rate-limited producer, streaming the whole dataset once.
    fn stream_in_background(&self, data: &Dataset) -> Background {
        self.spawn(&["produce", "--data", data.dir.to_str().unwrap(), "--rate", STREAM_RATE])
    }

    fn log_tail(&self) -> String {
        log_tail(self.state.path(), 40)
    }

    fn log_path(&self) -> std::path::PathBuf {
        self.state.path().join("logs/lab.log")
    }

    /// Bytes in the lab's log so far.
    fn log_len(&self) -> u64 {
        std::fs::metadata(self.log_path()).map_or(0, |m| m.len())
    }

    /// What the lab's log gained after its first `from` bytes.
    fn log_since(&self, from: u64) -> String {
        let log = std::fs::read(self.log_path()).unwrap_or_default();
        let from = usize::try_from(from).unwrap_or(usize::MAX).min(log.len());
        String::from_utf8_lossy(&log[from..]).into_owned()
    }

    /// Batch into a fresh database; the raw zone must hold every valid record exactly once and the
    /// tables must equal the reference.
    async fn batch_equals_reference(&self, db: &str, data: &Dataset) {
        let url = fresh_database(db).await;
        let batch = self.run(&["batch", "--json", "--pg", &url]);
        assert_eq!(
            batch["rows_in"],
            data.valid,
            "raw-zone records: every valid input record exactly once\nlog tail:\n{}",
            self.log_tail()
        );
        assert_tables_equal_reference(&connect(&url).await, &data.reference).await;
    }
}

/// Starts `args` again and again, SIGKILLing it after a random 0.3–2.5 s, until it was killed
/// `KILLS` times and `producer` has finished. Returns the number of kills.
/// How a stage is killed: after a random 0.3 s to `up_to_ms`, counted from when its log says
/// `working` (if given).
struct KillPoints {
    working: Option<&'static str>,
    up_to_ms: u64,
}

/// Starts `lab ARGS` and SIGKILLs it at a random point, again and again: at least [`KILLS`] times
/// and until the producer has finished. With `working`, the delay counts from when the stage's
/// log says that line (the stage holds its partitions), so that a kill lands while it works and
/// not while it is still joining its group: a consumer restarted after a SIGKILL can take seconds
/// to rejoin, and a file needs its roll interval and an HDFS write on top (seen: 11 kills within
/// 0.3–2.5 s of the start and no file written, a test that proved nothing).
fn kill_loop(env: &Env, args: &[&str], points: &KillPoints, producer: &mut Background, rng: &mut Rng) -> u32 {
    let mut kills = 0;
    let mut produced = false;
    while kills < KILLS || !produced {
        let logged = env.log_len();
        let mut stage = env.spawn(args);
        if let Some(line) = points.working {
            let deadline = Instant::now() + Duration::from_secs(60);
            while !env.log_since(logged).contains(line) {
                if let Some(status) = stage.exited() {
                    panic!("lab {args:?} exited ({status}) before it worked\n{}", env.log_tail());
                }
                assert!(
                    Instant::now() < deadline,
                    "lab {args:?} never logged {line:?} within 60 s\n{}",
                    env.log_tail()
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        std::thread::sleep(rng.millis(300, points.up_to_ms));
        if let Some(status) = stage.exited() {
            panic!(
                "lab {args:?} exited on its own ({status}) instead of running\n{}",
                env.log_tail()
            );
        }
        stage.kill();
        kills += 1;
        if !produced && let Some(status) = producer.exited() {
            assert!(status.success(), "the producer failed: {status}\n{}", env.log_tail());
            produced = true;
        }
    }
    kills
}

fn u64_of(report: &Value, field: &str) -> u64 {
    report[field]
        .as_u64()
        .unwrap_or_else(|| panic!("no {field} in {report}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn transform_killed_repeatedly_while_streaming_loses_and_doubles_nothing() {
    let _serial = SERIAL.lock().await;
    let data = dataset();
    let env = Env::new("crash-transform", None);
    let mut rng = Rng::new("transform");

    let mut producer = env.stream_in_background(data);
    // Counted from the transform's assignment, as the consumer's kills count from its resume: a
    // busy machine once let all 14 kills land while the transform was still joining its group.
    let points = KillPoints {
        working: Some("partitions assigned by a group rebalance"),
        up_to_ms: 2500,
    };
    let kills = kill_loop(&env, &["transform"], &points, &mut producer, &mut rng);
    let last = env.run(&["transform", "--until-caught-up"]);
    assert!(
        u64_of(&last, "consumed") < data.reference.total_lines,
        "the {kills} killed transforms committed nothing, so this test proved nothing: {last}"
    );

    env.run(&["consume", "--until-caught-up"]);
    env.batch_equals_reference("lab_crash_transform", data).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn consumer_killed_repeatedly_while_streaming_to_hdfs_loses_and_doubles_nothing() {
    let _serial = SERIAL.lock().await;
    let data = dataset();
    let env = Env::new("crash-consumer", Some(hdfs_raw_zone("crash-consumer")));
    let root = env
        .raw_zone
        .trim_start_matches(&service_env("LAB_TEST_HDFS_URL"))
        .to_string();
    let mut rng = Rng::new("consumer");

    let mut producer = env.stream_in_background(data);
    let transform = env.spawn(&["transform"]);
    let kills = kill_loop(
        &env,
        &["consume", "--roll-seconds", "1"],
        &KillPoints {
            working: Some("partition resumed"),
            up_to_ms: 5000,
        },
        &mut producer,
        &mut rng,
    );
    let stopped = transform.interrupt(Duration::from_secs(120));
    assert!(stopped.status.success(), "the background transform failed: {stopped:?}");
    env.run(&["transform", "--until-caught-up"]);

    let files_before = parquet_files(&root).await;
    assert!(
        files_before > 0,
        "the {kills} killed consumers wrote no file, so this test proved nothing\n{}",
        env.log_tail()
    );
    let last = env.run(&["consume", "--until-caught-up"]);
    assert!(u64_of(&last, "records_written") < data.valid, "{last}");
    eprintln!("{kills} kills; {files_before} files written by killed consumers; the last one: {last}");

    env.batch_equals_reference("lab_crash_consumer", data).await;
    hdfs_delete(root.trim_end_matches("/raw")).await;
}

async fn parquet_files(root: &str) -> usize {
    match hdfs_client().list_status(root, true).await {
        Ok(list) => list.iter().filter(|s| !s.isdir && s.path.ends_with(".parquet")).count(),
        Err(_) => 0,
    }
}

/// What a reader of the serving tables sees, in one statement (so one snapshot).
const FINGERPRINT_SQL: &str = "SELECT (SELECT count(*) FROM yelp.business_summary)::text || ' ' || \
     (SELECT coalesce(sum(review_count), 0) FROM yelp.business_summary)::text || ' ' || \
     (SELECT count(*) FROM yelp.business_daily)::text || ' ' || \
     (SELECT count(*) FROM yelp.city_category_top)::text || ' ' || \
     (SELECT count(*) FROM yelp.user_summary)::text";
const EMPTY: &str = "0 0 0 0 0";
const NO_SCHEMA: &str = "(no schema yet)";

/// Is a batch inside its load transaction? It takes this advisory lock first thing.
const IN_LOAD_SQL: &str = "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database \
     WHERE d.datname = current_database() AND l.locktype = 'advisory' AND l.objid = 735001 AND l.granted";

#[tokio::test(flavor = "multi_thread")]
async fn batch_killed_mid_load_never_shows_a_partial_load() {
    let _serial = SERIAL.lock().await;
    let data = dataset();
    let env = Env::new("crash-batch", None);
    let mut rng = Rng::new("batch");
    let produced = env.run(&["produce", "--data", data.dir.to_str().unwrap()]);
    assert_eq!(produced["sent"], produced["delivered"]);
    env.run(&["transform", "--until-caught-up"]);
    env.run(&["consume", "--until-caught-up"]);

    let url = fresh_database("lab_crash_batch").await;
    let seen = Arc::new(Mutex::new(BTreeSet::new()));
    let stop_watching = tokio_util::sync::CancellationToken::new();
    let watcher = tokio::spawn(watch_tables(connect(&url).await, seen.clone(), stop_watching.clone()));
    let probe = connect(&url).await;

    // Kill loads until ten were killed inside the load; after five, one load completes, so the
    // other five are reloads over complete tables.
    let (mut killed_in_load, mut completed, mut attempts) = (0, 0, 0);
    while killed_in_load < KILLS || completed == 0 {
        attempts += 1;
        assert!(
            attempts < 60,
            "only {killed_in_load} of 60 batches could be killed mid-load"
        );
        if killed_in_load == KILLS / 2 && completed == 0 {
            env.run(&["batch", "--json", "--pg", &url]);
            completed += 1;
            continue;
        }
        // A killed load's session lives on until PostgreSQL notices, holding the lock: wait, or
        // the next batch would look mid-load before it even started.
        wait_until_no_load(&probe).await;
        let mut batch = env.spawn(&["batch", "--json", "--pg", &url]);
        match wait_for_load(&probe, &mut batch).await {
            None => completed += 1, // it finished before we saw it load: fine, try again
            Some(()) => {
                tokio::time::sleep(rng.millis(0, 400)).await;
                let finished_first = batch.exited().is_some();
                batch.kill();
                if !finished_first {
                    killed_in_load += 1;
                }
            }
        }
    }

    wait_until_no_load(&probe).await;
    let last = env.run(&["batch", "--json", "--pg", &url]);
    assert_eq!(last["rows_in"], data.valid, "{last}");
    stop_watching.cancel();
    watcher.await.unwrap();
    assert_tables_equal_reference(&probe, &data.reference).await;

    let full: String = probe.query_one(FINGERPRINT_SQL, &[]).await.unwrap().get(0);
    let seen = seen.lock().unwrap().clone();
    let allowed: BTreeSet<String> = [NO_SCHEMA, EMPTY, full.as_str()]
        .into_iter()
        .map(String::from)
        .collect();
    assert!(
        seen.is_subset(&allowed),
        "a reader saw a partial load: {seen:?} (allowed: {allowed:?})"
    );
    assert!(
        seen.contains(&full),
        "the watcher never saw the loaded tables: {seen:?}"
    );

    let runs = probe
        .query(
            "SELECT status, count(*), count(*) FILTER (WHERE error LIKE 'abandoned%') FROM yelp.batch_runs GROUP BY status",
            &[],
        )
        .await
        .unwrap();
    let count = |status: &str| -> (i64, i64) {
        runs.iter()
            .find(|r| r.get::<_, String>(0) == status)
            .map_or((0, 0), |r| (r.get(1), r.get(2)))
    };
    assert_eq!(count("running"), (0, 0), "a killed run still says running");
    let (failed, abandoned) = count("failed");
    assert_eq!(failed, abandoned, "every failed run is a killed one");
    // Every kill mid-load left a `running` row that a later batch closed as abandoned (one kill
    // may have raced the load's commit).
    assert!(
        abandoned >= i64::from(killed_in_load) - 1 && abandoned > 0,
        "{abandoned} runs marked abandoned after {killed_in_load} kills mid-load"
    );
    eprintln!("{killed_in_load} batches killed mid-load, {completed} completed; a reader saw {seen:?}");
}

/// Polls the serving tables' fingerprint until cancelled, recording every distinct one.
async fn watch_tables(
    client: tokio_postgres::Client,
    seen: Arc<Mutex<BTreeSet<String>>>,
    stop: tokio_util::sync::CancellationToken,
) {
    while !stop.is_cancelled() {
        let fingerprint = match client.query_one(FINGERPRINT_SQL, &[]).await {
            Ok(row) => row.get(0),
            Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::UNDEFINED_TABLE) => NO_SCHEMA.to_string(),
            Err(e) => panic!("watch the serving tables: {e}"),
        };
        seen.lock().unwrap().insert(fingerprint);
        tokio::time::sleep(Duration::from_millis(15)).await;
    }
}

/// Waits until the batch holds the load lock (`Some`) or exits on its own (`None`, successfully).
async fn wait_for_load(probe: &tokio_postgres::Client, batch: &mut Background) -> Option<()> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let holders: i64 = probe.query_one(IN_LOAD_SQL, &[]).await.unwrap().get(0);
        if holders > 0 {
            return Some(());
        }
        if let Some(status) = batch.exited() {
            assert!(status.success(), "a batch failed on its own: {status}");
            return None;
        }
        assert!(Instant::now() < deadline, "no batch load began within 120 s");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn wait_until_no_load(probe: &tokio_postgres::Client) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let holders: i64 = probe.query_one(IN_LOAD_SQL, &[]).await.unwrap().get(0);
        if holders == 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "a killed batch's session still holds the load lock after 60 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The raw topics' records the transform group of `env` has committed, and the records they hold,
/// as the broker reports them (`lab kafka offsets`).
fn transform_progress(env: &Env) -> (i64, i64) {
    let group = format!("lab-transform-{}", env.prefix);
    let out = run_ok(&mut env.cmd(&["kafka", "offsets", &group, "--json"]));
    let offsets = json_stdout(&out);
    let parts = offsets["partitions"].as_array().cloned().unwrap_or_default();
    let sum = |field: &str| parts.iter().filter_map(|p| p[field].as_i64()).sum::<i64>();
    (sum("committed"), sum("high"))
}

/// After a SIGKILL the broker still holds the dead process's registration of the stage's static
/// member, and a registration that arrives after the new process joined fences it (seen once: a
/// restarted transform exited with "another process joined … and replaced this one" with no other
/// process running). A fence right after joining must make the stage join again, not exit.
///
/// The dead predecessor is played by a test client that joins as the same static member right
/// after the transform did, then goes away without leaving (static members never send a leave),
/// as a killed process does. The transform must join again and keep transforming what arrives.
#[tokio::test(flavor = "multi_thread")]
async fn a_stage_fenced_by_its_dead_predecessor_joins_again_and_keeps_working() {
    use rdkafka::ClientConfig;
    use rdkafka::consumer::{BaseConsumer, Consumer};

    let _serial = SERIAL.lock().await;
    let env = Env::new("early-fence", None);
    let sample = common::sample_dir();
    let sample = sample.to_str().unwrap();
    env.run(&["produce", "--data", sample]);
    let logged = env.log_len();
    let mut transform = env.spawn(&["transform"]);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (committed, high) = transform_progress(&env);
        if high > 0 && committed == high {
            break;
        }
        assert!(transform.is_running(), "the transform exited\n{}", env.log_tail());
        assert!(
            Instant::now() < deadline,
            "the transform never caught up\n{}",
            env.log_tail()
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // The "predecessor" joins as the transform's static member, which fences the transform, and
    // vanishes without a leave: the broker keeps its registration.
    let group = format!("lab-transform-{}", env.prefix);
    let topics: Vec<String> = bigdata_lab::dataset::Entity::ALL
        .iter()
        .map(|e| bigdata_lab::pipeline::Topics::new(&env.prefix).raw(*e))
        .collect();
    let ghost: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", service_env("LAB_TEST_KAFKA"))
        .set("group.id", &group)
        .set("group.instance.id", &group)
        .set("session.timeout.ms", "10000")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    ghost
        .subscribe(&topics.iter().map(String::as_str).collect::<Vec<_>>())
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    // Until the transform notices the fence: it joins again (and says so) or it exits.
    while !env.log_since(logged).contains("fenced right after joining") && transform.is_running() {
        let _ = ghost.poll(Duration::from_millis(100));
        assert!(
            Instant::now() < deadline,
            "joining as the transform's member never fenced it, so this test proved nothing\n{}",
            env.log_tail()
        );
    }
    drop(ghost);

    // The transform joined again: it is running and transforms what arrives now.
    env.run(&["produce", "--data", sample]);
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if let Some(status) = transform.exited() {
            panic!(
                "the transform exited ({status}) after its dead predecessor fenced it\n{}",
                env.log_tail()
            );
        }
        let (committed, high) = transform_progress(&env);
        if committed == high {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the transform rejoined but never transformed the new records ({committed} of {high} committed)\n{}",
            env.log_tail()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let out = transform.interrupt(Duration::from_secs(60));
    assert!(
        out.status.success(),
        "the transform failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
