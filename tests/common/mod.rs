//! Shared helpers for the integration tests: running the `lab` binary, the real services the
//! Makefile starts (tests/services/), and an independent reference computation of the serving
//! tables straight from the input files (deliberately not using the pipeline's code or SQL).

#![allow(dead_code)] // each test binary uses a different subset

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use serde_json::Value;

pub mod monitor;
pub mod services;

pub fn lab() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lab"));
    cmd.env_remove("LAB_PG_URL")
        .env_remove("LAB_KAFKA_BROKERS")
        .env_remove("LAB_STATE_DIR")
        .env_remove("LAB_RAW_ZONE");
    cmd
}

/// A topic prefix (and name part) no other test or test run uses.
pub fn unique_prefix(name: &str) -> String {
    format!("t{}-{name}-{}", std::process::id(), Utc::now().timestamp_millis())
}

/// `lab ARGS` against the test broker, with a topic prefix, a raw zone (a directory or an
/// `hdfs://` URL) and a state dir.
pub fn stage_cmd(prefix: &str, raw_zone: &std::ffi::OsStr, state: &Path, args: &[&str]) -> Command {
    let mut cmd = lab();
    cmd.args(args)
        .args(["--brokers", &service_env("LAB_TEST_KAFKA"), "--topic-prefix", prefix])
        .arg("--raw-zone")
        .arg(raw_zone)
        .arg("--state-dir")
        .arg(state);
    cmd
}

/// Runs a stage (see [`stage_cmd`]) that must succeed; returns its JSON report.
pub fn run_stage(prefix: &str, raw_zone: &std::ffi::OsStr, state: &Path, args: &[&str]) -> Value {
    json_stdout(&run_ok(&mut stage_cmd(prefix, raw_zone, state, args)))
}

/// Streams the sample through the real broker (produce, transform, consume) into `raw_zone`, a
/// directory or an `hdfs://` URL; asserts every valid record landed and returns their count.
pub fn stream_sample_into(prefix: &str, raw_zone: &str, state: &Path) -> u64 {
    let sample = sample_dir();
    let produced = run_stage(
        prefix,
        raw_zone.as_ref(),
        state,
        &["produce", "--data", sample.to_str().expect("UTF-8 path")],
    );
    assert_eq!(produced["sent"], produced["delivered"]);
    run_stage(prefix, raw_zone.as_ref(), state, &["transform", "--until-caught-up"]);
    let consumed = run_stage(
        prefix,
        raw_zone.as_ref(),
        state,
        &["consume", "--until-caught-up", "--roll-seconds", "1"],
    );
    let written = consumed["records_written"].as_u64().expect("records_written");
    let reference = reference(&sample);
    assert_eq!(written, reference.total_lines - reference.invalid_lines);
    written
}

/// A fault lesson's report: the value of the signal called `what`, which must have been observed.
pub fn signal<'a>(report: &'a Value, what: &str) -> &'a str {
    report["signals"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["what"] == what))
        .and_then(|s| s["value"].as_str())
        .unwrap_or_else(|| panic!("signal {what:?} not observed: {report}"))
}

/// What `consumer-lag` must have seen, wherever it ran: lag of at least the 300 messages sent
/// while the consumer was paused, then drained to 0.
pub fn assert_consumer_lag_report(report: &Value) {
    assert_eq!(report["recovered"], true, "{report}");
    let grew = signal(report, "consumer lag grew");
    assert!(number_before(grew, " messages behind") >= 300, "{grew}");
    let drained = signal(report, "consumer lag drained");
    assert!(drained.starts_with("0 messages behind"), "{drained}");
}

/// What `poison-messages` must have seen, wherever it ran: every good review cleaned, the 7
/// poisoned ones dead-lettered, each with its own reason.
pub fn assert_poison_report(report: &Value) {
    assert_eq!(report["recovered"], true, "{report}");
    assert_eq!(
        signal(report, "good records flow past the poison"),
        "300 of 300 good reviews cleaned"
    );
    let dlq = signal(report, "DLQ grew");
    assert!(dlq.contains(": +7 ("), "{dlq}");
    for reason in ["invalid_json", "stars_out_of_range", "missing_field", "not_utf8"] {
        assert!(dlq.contains(reason), "no {reason} in {dlq}");
    }
}

pub fn number_before(text: &str, marker: &str) -> u64 {
    let head = text.split(marker).next().unwrap_or_default();
    let digits: String = head
        .chars()
        .rev()
        .skip_while(|c| !c.is_ascii_digit())
        .take_while(char::is_ascii_digit)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    digits
        .parse()
        .unwrap_or_else(|_| panic!("no number before {marker:?} in {text:?}"))
}

/// How long one command a test runs may take before it counts as hung: far above what any of
/// them needs, so it is a hang guard, not a timing assertion.
pub const HANG_GUARD: std::time::Duration = std::time::Duration::from_secs(600);

/// `Command::output` with a hang guard, the way every test runs a command to its end.
pub trait OutputGuarded {
    /// Runs the command to its end with no stdin, but one still running after [`HANG_GUARD`] is
    /// killed and the test fails with its output and its threads' stacks: a hang then says where
    /// it hung instead of holding CI until its time limit.
    fn output_guarded(&mut self) -> Output;
}

impl OutputGuarded for Command {
    fn output_guarded(&mut self) -> Output {
        Background::spawn(self.stdin(std::process::Stdio::null())).wait(HANG_GUARD)
    }
}

pub fn run_ok(cmd: &mut Command) -> Output {
    let out = cmd.output_guarded();
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A finished command's status, stdout and stderr, for a failure message.
pub fn output_text(out: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

pub fn json_stdout(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", String::from_utf8_lossy(&out.stdout)))
}

pub fn sample_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("datasets/sample")
}

/// The real services started by `make test` (tests/services/up.sh). Tests that need them fail
/// with instructions when they are absent rather than passing vacuously.
pub fn service_env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run the integration tests with `make test`, which starts PostgreSQL, a Kafka-protocol broker, HDFS, Spark and Airflow on 127.0.0.1 (tests/services/up.sh)")
    })
}

/// A fresh database on the test PostgreSQL server; returns its connection string.
pub async fn fresh_database(name: &str) -> String {
    let base = service_env("LAB_TEST_PG_URL");
    let (client, conn) = tokio_postgres::connect(&base, tokio_postgres::NoTls)
        .await
        .expect("connect to test postgres");
    tokio::spawn(conn);
    // Two calls: a multi-statement string runs as one transaction, which DROP DATABASE refuses.
    client
        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .await
        .expect("drop test database");
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .expect("create test database");
    base.split_whitespace()
        .map(|kv| {
            if kv.starts_with("dbname=") {
                format!("dbname={name}")
            } else {
                kv.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

pub async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(conn);
    client
}

/// A value compared with a tolerance for floats (averages computed in different orders).
#[derive(Debug, Clone)]
pub enum Cell {
    Text(String),
    Int(i64),
    Float(Option<f64>),
    Time(Option<DateTime<Utc>>),
    Day(NaiveDate),
    Texts(Vec<String>),
    Ints(Vec<i32>),
}

impl PartialEq for Cell {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Cell::Float(Some(a)), Cell::Float(Some(b))) => (a - b).abs() < 1e-9,
            (Cell::Text(a), Cell::Text(b)) => a == b,
            (Cell::Int(a), Cell::Int(b)) => a == b,
            (Cell::Float(None), Cell::Float(None)) => true,
            (Cell::Time(a), Cell::Time(b)) => a == b,
            (Cell::Day(a), Cell::Day(b)) => a == b,
            (Cell::Texts(a), Cell::Texts(b)) => a == b,
            (Cell::Ints(a), Cell::Ints(b)) => a == b,
            _ => false,
        }
    }
}

pub type Table = Vec<Vec<Cell>>;

/// Reads a serving table in a fixed order as cells, using the column kinds the reference uses.
pub async fn read_table(client: &tokio_postgres::Client, table: &str) -> Table {
    let (sql, kinds): (&str, &[&str]) = match table {
        "business_summary" => (
            "SELECT business_id, name, city, state, categories, review_count, avg_stars, last_review_at FROM yelp.business_summary ORDER BY business_id COLLATE \"C\"",
            &["t", "t", "t", "t", "ts", "i", "f", "time"],
        ),
        "business_daily" => (
            "SELECT business_id, day, reviews, avg_stars FROM yelp.business_daily ORDER BY business_id COLLATE \"C\", day",
            &["t", "day", "i", "f"],
        ),
        "city_category_top" => (
            "SELECT city, category, businesses, reviews, avg_stars, rank FROM yelp.city_category_top ORDER BY city COLLATE \"C\", category COLLATE \"C\"",
            &["t", "t", "i", "i", "f", "i32"],
        ),
        "user_summary" => (
            "SELECT user_id, reviews, avg_stars_given, first_review_at, last_review_at, elite_years FROM yelp.user_summary ORDER BY user_id COLLATE \"C\"",
            &["t", "i", "f", "time", "time", "is"],
        ),
        other => panic!("unknown table {other}"),
    };
    let rows = client
        .query(sql, &[])
        .await
        .unwrap_or_else(|e| panic!("query {table}: {e}"));
    rows.iter()
        .map(|row| {
            kinds
                .iter()
                .enumerate()
                .map(|(i, kind)| match *kind {
                    "t" => Cell::Text(row.get(i)),
                    "i" => Cell::Int(row.get(i)),
                    "i32" => Cell::Int(i64::from(row.get::<_, i32>(i))),
                    "f" => Cell::Float(row.get(i)),
                    "time" => Cell::Time(row.get(i)),
                    "day" => Cell::Day(row.get(i)),
                    "ts" => Cell::Texts(row.get(i)),
                    "is" => Cell::Ints(row.get(i)),
                    _ => unreachable!(),
                })
                .collect()
        })
        .collect()
}

pub const TABLES: [&str; 4] = [
    "business_summary",
    "business_daily",
    "city_category_top",
    "user_summary",
];

/// Asserts every serving table equals the reference, with a readable first difference.
pub async fn assert_tables_equal_reference(client: &tokio_postgres::Client, reference: &Reference) {
    for table in TABLES {
        let actual = read_table(client, table).await;
        let expected = &reference.tables[table];
        assert_eq!(actual.len(), expected.len(), "{table}: row count");
        for (i, (a, e)) in actual.iter().zip(expected).enumerate() {
            assert_eq!(a, e, "{table}: row {i} differs");
        }
    }
}

#[derive(Debug, Default)]
pub struct Reference {
    pub tables: BTreeMap<&'static str, Table>,
    /// Lines that a correct transform must dead-letter.
    pub invalid_lines: u64,
    pub total_lines: u64,
}

fn ts(s: &str) -> Option<DateTime<Utc>> {
    NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S")
        .ok()
        .map(|t| t.and_utc())
}

fn nonempty(v: &Value, field: &str) -> Option<String> {
    v.get(field)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// An optional integer counter: absent, null or a whole number.
fn counter_ok(v: &Value, field: &str) -> bool {
    v.get(field).is_none_or(|c| c.is_null() || c.is_i64())
}

fn read_json_lines(dir: &Path, file: &str) -> Vec<Option<Value>> {
    let path = dir.join(file);
    let Ok(text) = std::fs::read(&path) else {
        return Vec::new();
    };
    text.split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice::<Value>(l).ok().filter(Value::is_object))
        .collect()
}

/// Computes the serving tables directly from a directory of Yelp files.
pub fn reference(dir: &Path) -> Reference {
    let mut r = Reference::default();
    // Businesses: first valid copy per id.
    let mut businesses: BTreeMap<String, (String, String, String, Vec<String>)> = BTreeMap::new();
    for line in read_json_lines(dir, "yelp_academic_dataset_business.json") {
        r.total_lines += 1;
        let Some(v) = line else {
            r.invalid_lines += 1;
            continue;
        };
        let Some(id) = nonempty(&v, "business_id") else {
            r.invalid_lines += 1;
            continue;
        };
        let mut cats: Vec<String> = Vec::new();
        for c in v["categories"]
            .as_str()
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|c| !c.is_empty())
        {
            if !cats.iter().any(|x| x == c) {
                cats.push(c.to_string());
            }
        }
        let s = |f: &str| v[f].as_str().unwrap_or("").trim().to_string();
        businesses.entry(id).or_insert((s("name"), s("city"), s("state"), cats));
    }
    // Users: elite years with the "20,20" quirk.
    let mut users: BTreeMap<String, Vec<i32>> = BTreeMap::new();
    for line in read_json_lines(dir, "yelp_academic_dataset_user.json") {
        r.total_lines += 1;
        let Some(v) = line else {
            r.invalid_lines += 1;
            continue;
        };
        let Some(id) = nonempty(&v, "user_id") else {
            r.invalid_lines += 1;
            continue;
        };
        let tokens: Vec<&str> = v["elite"]
            .as_str()
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .collect();
        let mut years = BTreeSet::new();
        let mut i = 0;
        while i < tokens.len() {
            if tokens[i] == "20" && tokens.get(i + 1) == Some(&"20") {
                years.insert(2020);
                i += 2;
            } else {
                years.insert(tokens[i].parse::<i32>().expect("elite year"));
                i += 1;
            }
        }
        users.entry(id).or_insert_with(|| years.into_iter().collect());
    }
    // Reviews: valid ones, one per id.
    let mut reviews: BTreeMap<String, (String, String, i64, DateTime<Utc>)> = BTreeMap::new();
    for line in read_json_lines(dir, "yelp_academic_dataset_review.json") {
        r.total_lines += 1;
        let valid = line.as_ref().and_then(|v| {
            if !["useful", "funny", "cool"].iter().all(|f| counter_ok(v, f)) {
                return None;
            }
            let stars = v["stars"]
                .as_f64()
                .filter(|s| (1.0..=5.0).contains(s) && s.fract() == 0.0)?;
            Some((
                nonempty(v, "review_id")?,
                nonempty(v, "user_id")?,
                nonempty(v, "business_id")?,
                stars as i64,
                ts(v["date"].as_str()?)?,
            ))
        });
        match valid {
            Some((id, user, business, stars, date)) => {
                reviews.entry(id).or_insert((user, business, stars, date));
            }
            None => r.invalid_lines += 1,
        }
    }
    // Tips and checkins only count towards the input (no serving table reads them yet).
    for line in read_json_lines(dir, "yelp_academic_dataset_tip.json") {
        r.total_lines += 1;
        let ok = line.as_ref().is_some_and(|v| {
            nonempty(v, "user_id").is_some()
                && nonempty(v, "business_id").is_some()
                && v["date"].as_str().and_then(ts).is_some()
                && counter_ok(v, "compliment_count")
        });
        if !ok {
            r.invalid_lines += 1;
        }
    }
    for line in read_json_lines(dir, "yelp_academic_dataset_checkin.json") {
        r.total_lines += 1;
        let ok = line.as_ref().is_some_and(|v| {
            nonempty(v, "business_id").is_some()
                && v["date"].as_str().is_some_and(|d| {
                    d.split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .all(|s| ts(s).is_some())
                })
        });
        if !ok {
            r.invalid_lines += 1;
        }
    }

    // business_summary
    let mut by_business: HashMap<&str, Vec<(i64, DateTime<Utc>)>> = HashMap::new();
    for (_, business, stars, date) in reviews.values() {
        by_business.entry(business.as_str()).or_default().push((*stars, *date));
    }
    let avg = |xs: &[i64]| {
        if xs.is_empty() {
            None
        } else {
            Some(xs.iter().sum::<i64>() as f64 / xs.len() as f64)
        }
    };
    let summary: Table = businesses
        .iter()
        .map(|(id, (name, city, state, cats))| {
            let revs = by_business.get(id.as_str()).cloned().unwrap_or_default();
            let stars: Vec<i64> = revs.iter().map(|(s, _)| *s).collect();
            vec![
                Cell::Text(id.clone()),
                Cell::Text(name.clone()),
                Cell::Text(city.clone()),
                Cell::Text(state.clone()),
                Cell::Texts(cats.clone()),
                Cell::Int(revs.len() as i64),
                Cell::Float(avg(&stars)),
                Cell::Time(revs.iter().map(|(_, d)| *d).max()),
            ]
        })
        .collect();
    r.tables.insert("business_summary", summary);

    // business_daily
    let mut daily: BTreeMap<(String, NaiveDate), Vec<i64>> = BTreeMap::new();
    for (_, business, stars, date) in reviews.values() {
        daily
            .entry((business.clone(), date.date_naive()))
            .or_default()
            .push(*stars);
    }
    r.tables.insert(
        "business_daily",
        daily
            .into_iter()
            .map(|((b, d), s)| {
                vec![
                    Cell::Text(b),
                    Cell::Day(d),
                    Cell::Int(s.len() as i64),
                    Cell::Float(avg(&s)),
                ]
            })
            .collect(),
    );

    // city_category_top: top 10 categories per city by reviews, ties by category name.
    let mut per: BTreeMap<(String, String), (BTreeSet<String>, Vec<i64>)> = BTreeMap::new();
    for (id, (_, city, _, cats)) in &businesses {
        for cat in cats {
            let entry = per.entry((city.clone(), cat.clone())).or_default();
            entry.0.insert(id.clone());
            entry.1.extend(
                by_business
                    .get(id.as_str())
                    .map(|v| v.iter().map(|(s, _)| *s).collect::<Vec<_>>())
                    .unwrap_or_default(),
            );
        }
    }
    let mut by_city: BTreeMap<String, Vec<(String, usize, Vec<i64>)>> = BTreeMap::new();
    for ((city, cat), (biz, stars)) in per {
        by_city.entry(city).or_default().push((cat, biz.len(), stars));
    }
    let mut top = Vec::new();
    for (city, mut cats) in by_city {
        cats.sort_by(|a, b| b.2.len().cmp(&a.2.len()).then(a.0.cmp(&b.0)));
        for (rank, (cat, businesses, stars)) in cats.into_iter().take(10).enumerate() {
            top.push(vec![
                Cell::Text(city.clone()),
                Cell::Text(cat),
                Cell::Int(businesses as i64),
                Cell::Int(stars.len() as i64),
                Cell::Float(avg(&stars)),
                Cell::Int(rank as i64 + 1),
            ]);
        }
    }
    top.sort_by(|a, b| match (&a[0], &a[1], &b[0], &b[1]) {
        (Cell::Text(c1), Cell::Text(k1), Cell::Text(c2), Cell::Text(k2)) => (c1, k1).cmp(&(c2, k2)),
        _ => std::cmp::Ordering::Equal,
    });
    r.tables.insert("city_category_top", top);

    // user_summary
    let mut by_user: HashMap<&str, Vec<(i64, DateTime<Utc>)>> = HashMap::new();
    for (user, _, stars, date) in reviews.values() {
        by_user.entry(user.as_str()).or_default().push((*stars, *date));
    }
    r.tables.insert(
        "user_summary",
        users
            .iter()
            .map(|(id, elite)| {
                let revs = by_user.get(id.as_str()).cloned().unwrap_or_default();
                let stars: Vec<i64> = revs.iter().map(|(s, _)| *s).collect();
                vec![
                    Cell::Text(id.clone()),
                    Cell::Int(revs.len() as i64),
                    Cell::Float(avg(&stars)),
                    Cell::Time(revs.iter().map(|(_, d)| *d).min()),
                    Cell::Time(revs.iter().map(|(_, d)| *d).max()),
                    Cell::Ints(elite.clone()),
                ]
            })
            .collect(),
    );
    r
}

/// A process running in the background while a test does something to the services under it.
/// Its stdout and stderr go to files (a pipe nobody reads could block it); it is killed if the
/// test ends before it does.
pub struct Background {
    child: Option<std::process::Child>,
    what: String,
    stdout: PathBuf,
    stderr: PathBuf,
    _files: tempfile::TempDir,
}

impl Background {
    pub fn spawn(cmd: &mut Command) -> Self {
        let files = tempfile::tempdir().expect("temp dir");
        let (stdout, stderr) = (files.path().join("stdout"), files.path().join("stderr"));
        let child = cmd
            .stdout(std::fs::File::create(&stdout).expect("stdout file"))
            .stderr(std::fs::File::create(&stderr).expect("stderr file"))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
        Self {
            child: Some(child),
            what: format!("{cmd:?}"),
            stdout,
            stderr,
            _files: files,
        }
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, std::process::Child::id)
    }

    /// Still running (not exited yet)?
    pub fn is_running(&mut self) -> bool {
        self.child.is_some() && self.exited().is_none()
    }

    /// Its exit status, once it has exited on its own.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.as_mut().and_then(|c| c.try_wait().expect("poll the child"))
    }

    /// SIGKILL now: no signal handler, no flush, no goodbye to the broker or the database.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            kill_and_reap(&mut child);
        }
    }

    /// Ctrl-C (the stage's clean stop), then [`Background::wait`].
    pub fn interrupt(self, patience: std::time::Duration) -> Output {
        if let Some(child) = &self.child {
            run_ok(Command::new("kill").args(["-INT", &child.id().to_string()]));
        }
        self.wait(patience)
    }

    /// Its stderr so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Waits for it to exit; kills it and panics (with its output) if it takes longer than
    /// `patience`, which is a hang guard, not a timing assertion.
    pub fn wait(mut self, patience: std::time::Duration) -> Output {
        let mut child = self.child.take().expect("not waited for yet");
        let deadline = std::time::Instant::now() + patience;
        let status = loop {
            if let Some(status) = child.try_wait().expect("poll the child") {
                break status;
            }
            if std::time::Instant::now() > deadline {
                let stacks = thread_stacks(child.id());
                kill_and_reap(&mut child);
                panic!(
                    "{} still running after {patience:?}; killed.\nstdout:\n{}\nstderr:\n{}\nits threads:\n{stacks}",
                    self.what,
                    std::fs::read_to_string(&self.stdout).unwrap_or_default(),
                    self.stderr()
                );
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        };
        Output {
            status,
            stdout: std::fs::read(&self.stdout).unwrap_or_default(),
            stderr: std::fs::read(&self.stderr).unwrap_or_default(),
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The stack of every thread of a hung process, from gdb where it is installed.
fn thread_stacks(pid: u32) -> String {
    let out = Command::new("timeout")
        .args([
            "60",
            "gdb",
            "-p",
            &pid.to_string(),
            "-batch",
            "-ex",
            "thread apply all bt",
        ])
        .stdin(std::process::Stdio::null())
        .output();
    match out {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.starts_with("Thread ") || l.starts_with('#'))
            .collect::<Vec<_>>()
            .join("\n"),
        Ok(out) => format!("(gdb failed: {})", String::from_utf8_lossy(&out.stderr).trim()),
        Err(e) => format!("(no gdb: {e})"),
    }
}

fn kill_and_reap(child: &mut std::process::Child) {
    if let Err(e) = child.kill() {
        eprintln!("could not kill pid {}: {e}", child.id());
    }
    if let Err(e) = child.wait() {
        eprintln!("could not reap pid {}: {e}", child.id());
    }
}

/// The last `n` lines of a `lab` state dir's log (newest last), for failure messages.
pub fn log_tail(state: &Path, n: usize) -> String {
    let log = std::fs::read_to_string(state.join("logs/lab.log")).unwrap_or_default();
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Sends `n` keyed records to `topic` and waits for each to be delivered.
pub async fn produce(brokers: &str, topic: &str, n: usize) {
    let producer: rdkafka::producer::FutureProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .expect("producer");
    for i in 0..n {
        let key = i.to_string();
        producer
            .send(
                rdkafka::producer::FutureRecord::to(topic)
                    .key(&key)
                    .payload(&format!("record {i}")),
                std::time::Duration::from_secs(10),
            )
            .await
            .expect("record delivered");
    }
}

/// Kill points of the crash tests: a small xorshift generator, seeded from the clock or LAB_CRASH_SEED.
pub struct Rng(u64);

impl Rng {
    pub fn new(test: &str) -> Self {
        let seed = std::env::var("LAB_CRASH_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                u64::from(
                    std::time::SystemTime::UNIX_EPOCH
                        .elapsed()
                        .expect("a clock after 1970")
                        .subsec_nanos(),
                ) | 1
            });
        eprintln!("{test}: kill points from seed {seed} (LAB_CRASH_SEED={seed} replays them)");
        Self(seed)
    }

    pub fn millis(&mut self, lo: u64, hi: u64) -> std::time::Duration {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        std::time::Duration::from_millis(lo + self.0 % (hi - lo))
    }

    /// A number below `n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.millis(0, n).as_millis() as u64
    }
}
