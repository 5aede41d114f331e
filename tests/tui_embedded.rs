//! `lab demo` in a real terminal (tmux): the monitor over a live embedded lab, with no Docker and
//! no configured service. Kafka is the in-process broker, the records move, `:batch` loads the
//! throwaway PostgreSQL and its row counts grow, `:stop transform` makes the transform group's
//! lag grow and `:transform` drains it with nothing doubled, `:lesson consumer-lag` runs on the
//! same broker and gives the pipeline back, and `q` exits 0 leaving no PostgreSQL process or files.
// Needs tmux and PostgreSQL's server binaries, which `make test` installs in CI: `make test`
// turns this feature on, so a plain `cargo test` on a fresh clone skips it.
#![cfg(feature = "service-tests")]

mod tmux;
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use tmux::Tmux;

/// The number right after `label` on the screen (`serving rows 1,234` → 1234).
fn number_after(screen: &str, label: &str) -> Option<i64> {
    let rest = &screen[screen.find(label)? + label.len()..];
    let digits: String = rest
        .trim_start()
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == ',')
        .filter(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// The number in the column headed `column` of the row named `row`, in the table whose first
/// column is headed `first`: read where the header puts that column (the columns before it have
/// changed before, and a cell may be two words: a group's state "not listed").
fn table_cell(screen: &str, first: &str, column: &str, row: &str) -> Option<i64> {
    let lines: Vec<Vec<char>> = screen.lines().map(|l| l.chars().collect()).collect();
    let word_at = |line: &[char], word: &str| -> Option<usize> {
        let word: Vec<char> = word.chars().collect();
        (0..line.len().saturating_sub(word.len() - 1)).find(|&i| {
            line[i..i + word.len()] == word[..]
                && (i == 0 || line[i - 1] == ' ' || line[i - 1] == '│')
                && line.get(i + word.len()).is_none_or(|c| *c == ' ' || *c == '│')
        })
    };
    let header = lines
        .iter()
        .find(|l| word_at(l, first).is_some() && word_at(l, column).is_some())?;
    let at = word_at(header, column)?;
    let line = lines.iter().find(|l| word_at(l, row).is_some())?;
    let cell: String = line
        .get(at..)?
        .iter()
        .take_while(|c| !c.is_whitespace() && **c != '│')
        .collect();
    cell.replace(',', "").parse().ok()
}

/// The records a topic holds on the Kafka view's Topics table.
fn topic_records(screen: &str, topic: &str) -> Option<i64> {
    table_cell(screen, "topic", "records", topic)
}

/// The transform group's lag on the Kafka view (`group  state  members  lag …`: the embedded
/// broker cannot list groups, and the state is that of the transform the monitor runs, one word).
fn transform_lag(tmux: &Tmux) -> Option<i64> {
    table_cell(&tmux.screen(), "group", "lag", "lab-transform-yelp")
}

/// Waits until `f` answers `Some(v)` with `ok(v)`; the last value seen otherwise.
fn wait_until(
    tmux: &Tmux,
    what: &str,
    limit: Duration,
    f: impl Fn(&Tmux) -> Option<i64>,
    ok: impl Fn(i64) -> bool,
) -> i64 {
    let deadline = Instant::now() + limit;
    loop {
        let v = f(tmux);
        if let Some(v) = v
            && ok(v)
        {
            return v;
        }
        assert!(Instant::now() < deadline, "{what}: last seen {v:?}\n{}", tmux.screen());
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn command(tmux: &Tmux, line: &str) {
    tmux.keys(&[":"]);
    tmux.wait_for(&[":▏"]);
    tmux.keys(&["-l", line]);
    tmux.keys(&["Enter"]);
}

/// A state directory, and the TMPDIR where `lab demo` puts its throwaway PostgreSQL: as root it
/// runs as `postgres`, who must reach it.
fn demo_dirs() -> (tempfile::TempDir, tempfile::TempDir) {
    let state = tempfile::tempdir().expect("a temporary state directory");
    let tmp = tempfile::tempdir().expect("a temporary TMPDIR");
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).expect("TMPDIR made 0755");
    (state, tmp)
}

/// The shell line that runs `lab demo` with no Docker and no configured service.
fn demo_command(state: &std::path::Path, tmp: &std::path::Path) -> String {
    format!(
        "env -u NO_COLOR -u LAB_PG_URL LAB_LOG={log} LAB_STATE_DIR={state} TMPDIR={tmp} LAB_SERVICES_DIR= \
         DOCKER_HOST=unix:///nonexistent/docker.sock {bin} demo",
        state = state.display(),
        tmp = tmp.display(),
        bin = env!("CARGO_BIN_EXE_lab"),
        log = tmux::MONITOR_LOG,
    )
}

/// The PostgreSQL servers running from under `tmp`: the server runs as
/// `postgres -D <TMPDIR>/lab-pg-…/data` (src/pg/throwaway.rs).
fn postgres_under(tmp: &std::path::Path) -> String {
    let ps = std::process::Command::new("pgrep")
        .args(["-af", &format!("{}/lab-pg-", tmp.display())])
        .output()
        .expect("pgrep runs");
    String::from_utf8_lossy(&ps.stdout).trim().to_string()
}

#[test]
fn lab_demo_opens_the_monitor_on_a_live_embedded_lab_and_q_removes_it() {
    let (state, tmp) = demo_dirs();
    let tmux = Tmux::new("lab-demo-test").with_log(state.path());
    let script = format!(
        "{}; echo DEMO-EXITED-$?; sleep 600",
        demo_command(state.path(), tmp.path())
    );
    tmux.start(120, 40, &script);

    // Kafka is the in-process broker; HDFS is the local raw zone; PostgreSQL the throwaway one.
    let s = tmux.wait_for_within(
        &["Embedded lab, no Docker", "Kafka UP", "PostgreSQL UP"],
        Duration::from_secs(120),
    );
    assert!(s.contains("127.0.0.1:"), "the banner names the broker's address:\n{s}");
    assert!(
        !s.contains("No Docker engine"),
        "no Docker banner over the embedded lab:\n{s}"
    );
    tmux.wait_for_within(
        &["HDFS UP", "raw zone", "not in the embedded lab"],
        Duration::from_secs(60),
    );

    // Records move: the raw review topic grows between two screens.
    tmux.keys(&["3"]);
    tmux.wait_for_within(&["lab-transform-yelp", "lab-consumer-yelp"], Duration::from_secs(60));
    let first = wait_until(
        &tmux,
        "records in yelp.review",
        Duration::from_secs(30),
        |t| topic_records(&t.screen(), "yelp.review"),
        |n| n > 0,
    );
    wait_until(
        &tmux,
        "yelp.review growing",
        Duration::from_secs(30),
        |t| topic_records(&t.screen(), "yelp.review"),
        |n| n > first,
    );

    // The batch loads PostgreSQL; run again later, the tables hold more rows (new records).
    tmux.keys(&["1"]);
    command(&tmux, "batch");
    tmux.wait_for_within(&["batch done in"], Duration::from_secs(60));
    let rows = wait_until(
        &tmux,
        "serving rows after :batch",
        Duration::from_secs(10),
        |t| number_after(&t.screen(), "serving rows"),
        |n| n > 0,
    );
    std::thread::sleep(Duration::from_secs(8));
    command(&tmux, "batch");
    tmux.wait_for_within(&["batch done in"], Duration::from_secs(60));
    wait_until(
        &tmux,
        "serving rows growing",
        Duration::from_secs(10),
        |t| number_after(&t.screen(), "serving rows"),
        |n| n > rows,
    );
    tmux.keys(&["6"]);
    tmux.wait_for(&["Batch runs", ":batch", "success"]);

    tmux.keys(&["?"]);
    tmux.wait_for(&["Help 1–", ":batch"]);
    tmux.keys(&["Escape"]);
    tmux.wait_gone(":trigger DAG");

    // Stop the transform: its group's lag grows while the producer goes on; start it: it drains.
    tmux.keys(&["3"]);
    command(&tmux, "stop transform");
    tmux.wait_for_within(&["transform stopped"], Duration::from_secs(30));
    let stopped_at = wait_until(
        &tmux,
        "the transform group's lag",
        Duration::from_secs(10),
        transform_lag,
        |_| true,
    );
    let grown = wait_until(
        &tmux,
        "the transform group's lag growing",
        Duration::from_secs(30),
        transform_lag,
        |l| l > stopped_at + 300,
    );
    command(&tmux, "transform");
    wait_until(
        &tmux,
        "the transform group's lag draining",
        Duration::from_secs(60),
        transform_lag,
        |l| l < grown / 2,
    );

    // Nothing doubled or lost across the stop and start: once the producer stops and the
    // transform has read everything, every raw record is in a clean topic or the DLQ, once.
    command(&tmux, "stop producer");
    tmux.wait_for_within(&["producer done"], Duration::from_secs(30));
    wait_until(
        &tmux,
        "the transform caught up",
        Duration::from_secs(60),
        transform_lag,
        |l| l == 0,
    );
    let s = tmux.screen();
    let entities = ["business", "user", "review", "tip", "checkin"];
    let raw: i64 = entities
        .iter()
        .map(|e| topic_records(&s, &format!("yelp.{e}")).unwrap())
        .sum();
    let clean: i64 = entities
        .iter()
        .map(|e| topic_records(&s, &format!("yelp.{e}.clean")).unwrap())
        .sum();
    let dlq = number_after(&s, "holds").unwrap();
    assert_eq!(
        raw,
        clean + dlq,
        "raw = clean + dead letters after a stop and a start:\n{s}"
    );

    // A lesson borrows the pipeline, narrates in the footer, and gives it back.
    command(&tmux, "lesson consumer-lag");
    tmux.wait_for(&["Run the consumer-lag lesson"]);
    tmux.keys(&["y"]);
    tmux.wait_for_within(&["lesson:"], Duration::from_secs(30));
    tmux.wait_for_within(&["lesson consumer-lag done"], Duration::from_secs(240));
    // The lesson's own producer has finished: records that keep coming are the monitor's again.
    let after = wait_until(
        &tmux,
        "records in yelp.review",
        Duration::from_secs(10),
        |t| topic_records(&t.screen(), "yelp.review"),
        |_| true,
    );
    wait_until(
        &tmux,
        "the monitor's producer running again",
        Duration::from_secs(30),
        |t| topic_records(&t.screen(), "yelp.review"),
        |n| n > after + 100,
    );

    tmux.keys(&["q"]);
    tmux.wait_for_within(&["DEMO-EXITED-0"], Duration::from_secs(90));
    let left: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .collect();
    assert!(
        left.is_empty(),
        "the throwaway PostgreSQL's files are removed: {left:?}"
    );
    let left = postgres_under(tmp.path());
    assert!(left.is_empty(), "no PostgreSQL runs after q: {left}");
}

/// Closing the terminal (SIGHUP) ends `lab demo` as `q` does: no PostgreSQL process or files are
/// left. Before, the hangup's default action killed the process and its PostgreSQL kept running.
#[test]
fn closing_the_terminal_stops_the_embedded_lab_and_removes_its_postgresql() {
    let (state, tmp) = demo_dirs();
    let tmux = Tmux::new("lab-demo-hangup-test").with_log(state.path());
    tmux.start(120, 40, &format!("exec {}", demo_command(state.path(), tmp.path())));
    tmux.wait_for_within(&["Embedded lab, no Docker", "PostgreSQL UP"], Duration::from_secs(120));
    // The terminal goes away: its processes get SIGHUP.
    tmux.run(&["kill-server"]);
    let postgres = || postgres_under(tmp.path());
    let files = || std::fs::read_dir(tmp.path()).unwrap().count();
    let deadline = Instant::now() + Duration::from_secs(90);
    while !postgres().is_empty() || files() > 0 {
        assert!(
            Instant::now() < deadline,
            "90 s after the hangup: PostgreSQL {:?}, {} file(s) left",
            postgres(),
            files()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}
