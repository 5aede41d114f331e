//! Smoke test of the real `lab tui` binary in a real terminal (tmux): it starts, every view and
//! the help overlay draw, `q` quits, and the terminal is restored (alternate screen left, cursor
//! shown, the shell's next output visible). Endpoints point at closed ports and there is no Docker
//! engine, so the views show the services as down with the reason, the Stack view lists the stack
//! with the first-run banner, and `e` starts the embedded lab in the same monitor: also checked.
//! And on the test broker: the dead-letter view browsed and one reason replayed, once.
// Needs tmux, which `make test` installs in CI: `make test` turns this feature on,
// so a plain `cargo test` on a fresh clone skips it.
#![cfg(feature = "service-tests")]

mod common;
mod tmux;
use std::time::Duration;

use tmux::Tmux;

/// `lab tui` in a 100×30 tmux window, endpoints on closed ports and no Docker engine.
fn start_monitor(tmux: &Tmux, state: &std::path::Path) {
    let closed = "127.0.0.1:9"; // the discard port: nothing listens, connections are refused
    let script = format!(
        "env -u NO_COLOR -u LAB_PG_URL LAB_LOG={log} LAB_STATE_DIR={state} LAB_KAFKA_BROKERS={closed} LAB_HDFS_HTTP=http://{closed} \
         LAB_SPARK_UI=http://{closed} LAB_AIRFLOW_URL=http://{closed} LAB_SERVICES_DIR= \
         DOCKER_HOST=unix:///nonexistent/docker.sock {bin} tui; echo TUI-EXITED-$?; sleep 600",
        state = state.display(),
        bin = env!("CARGO_BIN_EXE_lab"),
        log = tmux::MONITOR_LOG,
    );
    tmux.start(100, 30, &script);
}

#[test]
fn tui_draws_every_view_and_help_then_quits_and_restores_the_terminal() {
    let state = tempfile::tempdir().unwrap();
    let tmux = Tmux::new("lab-tui-test").with_log(state.path());
    start_monitor(&tmux, state.path());

    let s = tmux.wait_for(&["1 Overview", "9 Stack", "Kafka DOWN", "Spark DOWN"]);
    assert!(s.contains("connection refused"), "the reason shows:\n{s}");
    assert!(s.contains("PostgreSQL UNKNOWN") && s.contains("not configured"), "{s}");

    let views = [
        ("2", &["stage", "transform", "raw zone"][..]),
        ("3", &["Kafka DOWN", "cannot reach"][..]),
        ("4", &["HDFS DOWN"][..]),
        ("5", &["Spark DOWN"][..]),
        ("6", &["Airflow DOWN"][..]),
        ("7", &["PostgreSQL UNKNOWN", "not configured"][..]),
        ("8", &["Sources", "lines"][..]),
        // No Docker engine here: the Stack view lists the stack and the banner says what to do.
        ("9", &["Stack lambda", "namenode", "No Docker engine", "press e"][..]),
    ];
    for (key, needles) in views {
        tmux.keys(&[key]);
        tmux.wait_for(needles);
    }
    tmux.keys(&["Tab"]);
    tmux.wait_for(&["services up", "embedded lab"]); // Tab from the last view wraps to Overview
    tmux.keys(&["?"]);
    tmux.wait_for(&["Help", "command line", ":trigger DAG", ":down [--volumes]"]);
    tmux.keys(&["Escape"]);
    tmux.wait_gone(":trigger DAG");
    tmux.keys(&[":"]);
    // Typed before the command line is open, "bogus" would be keys (u = up, s = ...).
    tmux.wait_for(&[":▏"]);
    tmux.keys(&["-l", "bogus"]);
    tmux.keys(&["Enter"]);
    tmux.wait_for(&["unknown command :bogus"]);

    tmux.keys(&["q"]);
    let s = tmux.wait_for(&["TUI-EXITED-0"]);
    assert!(
        !s.contains("8 Logs"),
        "the monitor's screen is gone after quitting:\n{s}"
    );
    let flags = tmux.run(&["display-message", "-p", "-t", "mon", "#{alternate_on} #{cursor_flag}"]);
    assert_eq!(flags.trim(), "0 1", "alternate screen left and cursor visible again");
}

/// `[tui.keys]` in `lab.toml`: the real monitor shows and obeys the configured keys.
#[test]
fn the_monitor_takes_its_keys_from_lab_toml() {
    let state = tempfile::tempdir().unwrap();
    std::fs::write(
        state.path().join("lab.toml"),
        "[tui.keys]\nhelp = \"H\"\nquit = [\"Q\", \"F10\"]\n[tui.theme]\nup = \"light-blue\"\n",
    )
    .unwrap();
    let tmux = Tmux::new("lab-tui-keys").with_log(state.path());
    start_monitor(&tmux, state.path());
    tmux.wait_for(&["1 Overview", "H help"]);
    tmux.keys(&["?"]);
    std::thread::sleep(Duration::from_millis(500));
    assert!(!tmux.screen().contains("Help "), "? no longer opens help");
    tmux.keys(&["H"]);
    tmux.wait_for(&["Help 1–", "Q F10 Ctrl-C  quit"]);
    tmux.keys(&["Escape"]);
    tmux.wait_gone("Help 1–");
    tmux.keys(&["q"]);
    std::thread::sleep(Duration::from_millis(500));
    assert!(!tmux.screen().contains("TUI-EXITED"), "q no longer quits");
    tmux.keys(&["F10"]);
    tmux.wait_for(&["TUI-EXITED-0"]);
}

#[test]
fn without_docker_e_starts_the_embedded_lab_in_the_same_monitor() {
    let state = tempfile::tempdir().unwrap();
    let tmux = Tmux::new("lab-tui-demo-test").with_log(state.path());
    start_monitor(&tmux, state.path());
    tmux.wait_for(&["No Docker engine", "press e to start the embedded lab"]);
    tmux.keys(&["e"]);
    // The same monitor now watches the embedded lab: its broker answers, the stages stream.
    let s = tmux.wait_for_within(&["Embedded lab, no Docker", "Kafka UP"], Duration::from_secs(120));
    assert!(!s.contains("TUI-EXITED"), "the monitor stayed open:\n{s}");
    tmux.keys(&["2"]);
    tmux.wait_for_within(&["producer", "running"], Duration::from_secs(30));
    tmux.keys(&["q"]);
    tmux.wait_for_within(&["TUI-EXITED-0"], Duration::from_secs(90));
}

/// The real monitor on the test broker, in a real terminal: the dead-letter view (`d`) lists the
/// sample's reasons, Enter shows a reason's dead letters, and `:replay invalid_json`, confirmed
/// with `y`, sends exactly that reason's dead letters back once: judged by the raw topics' end
/// offsets on the broker, read by the test's own client. A second replay sends nothing.
#[test]
fn the_monitor_browses_the_dead_letters_and_replays_one_reason_once() {
    use rdkafka::ClientConfig;
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let brokers = common::service_env("LAB_TEST_KAFKA");
    let prefix = common::unique_prefix("tmuxdlq");
    let zone = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let z = zone.path().as_os_str();
    let sample = common::sample_dir();
    common::run_stage(
        &prefix,
        z,
        state.path(),
        &["produce", "--data", sample.to_str().unwrap()],
    );
    common::run_stage(&prefix, z, state.path(), &["transform", "--until-caught-up"]);
    let listed = common::json_stdout(&common::run_ok(
        common::stage_cmd(&prefix, z, state.path(), &["dlq", "list", "--json"]).stdin(std::process::Stdio::null()),
    ));
    let invalid = listed["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["code"] == "invalid_json")
        .and_then(|r| r["count"].as_u64())
        .expect("the sample's bad lines are dead letters");
    // Every raw topic's records and how many of them carry the replay header, as a read_committed
    // reader of the test's own gets them from the broker (offsets would count the replay's
    // transaction markers too).
    let raw_records = || -> (u64, u64) {
        use rdkafka::message::{Headers, Message};
        let reader: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &brokers)
            .set("group.id", format!("{prefix}-count"))
            .set("isolation.level", "read_committed")
            .set("enable.partition.eof", "true")
            .create()
            .unwrap();
        let topics = bigdata_lab::pipeline::Topics::new(&prefix);
        let mut tpl = rdkafka::TopicPartitionList::new();
        for e in bigdata_lab::dataset::Entity::ALL {
            let topic = topics.raw(e);
            let meta = reader.fetch_metadata(Some(&topic), Duration::from_secs(10)).unwrap();
            for p in meta.topics()[0].partitions() {
                tpl.add_partition_offset(&topic, p.id(), rdkafka::Offset::Beginning)
                    .unwrap();
            }
        }
        let mut open = tpl.count();
        reader.assign(&tpl).unwrap();
        let (mut records, mut replayed) = (0, 0);
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while open > 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "the raw topics were not read to their end"
            );
            match reader.poll(Duration::from_millis(200)) {
                Some(Ok(m)) => {
                    records += 1;
                    if m.headers().is_some_and(|h| h.iter().any(|h| h.key == "lab.replay.of")) {
                        replayed += 1;
                    }
                }
                Some(Err(rdkafka::error::KafkaError::PartitionEOF(_))) => open -= 1,
                Some(Err(e)) => panic!("{e}"),
                None => {}
            }
        }
        (records, replayed)
    };
    let (before, none) = raw_records();
    assert_eq!(none, 0);

    let tmux = Tmux::new("lab-tui-dlq").with_log(state.path());
    let closed = "127.0.0.1:9";
    let script = format!(
        "env -u NO_COLOR -u LAB_PG_URL LAB_LOG={log} LAB_STATE_DIR={state} LAB_KAFKA_BROKERS={brokers} LAB_TOPIC_PREFIX={prefix} \
         LAB_HDFS_HTTP=http://{closed} LAB_SPARK_UI=http://{closed} LAB_AIRFLOW_URL=http://{closed} LAB_SERVICES_DIR= \
         DOCKER_HOST=unix:///nonexistent/docker.sock {bin} tui; echo TUI-EXITED-$?; sleep 600",
        state = state.path().display(),
        bin = env!("CARGO_BIN_EXE_lab"),
        log = tmux::MONITOR_LOG,
    );
    tmux.start(160, 40, &script);
    tmux.wait_for(&["1 Overview", "Kafka UP"]);
    tmux.keys(&["3"]);
    tmux.wait_for(&["Topics", &format!("{prefix}.dlq")]);
    tmux.keys(&["d"]);
    // The list's own title: the groups shown before it may name `invalid_json` too (a replay's
    // group on a broker other tests used), and Enter before the list is read opens nothing.
    tmux.wait_for(&[
        &format!("Dead letters in {prefix}.dlq"),
        "invalid_json",
        &invalid.to_string(),
    ]);
    tmux.keys(&["Enter"]);
    tmux.wait_for(&["lab.reason"]);
    tmux.keys(&["Escape"]);
    tmux.keys(&[":"]);
    tmux.wait_for(&[":▏"]);
    tmux.keys(&["-l", "replay invalid_json"]);
    tmux.keys(&["Enter"]);
    // The plan first: how many, asked y/n; nothing sent yet.
    tmux.wait_for(&["Send them back", &format!("{invalid} dead letter")]);
    assert_eq!(raw_records(), (before, 0), "the plan sent records");
    tmux.keys(&["y"]);
    tmux.wait_for(&[&format!("replayed {invalid} dead letter")]);
    assert_eq!(
        raw_records(),
        (before + invalid, invalid),
        "exactly the reason's dead letters, once, marked as replays"
    );

    tmux.keys(&[":"]);
    tmux.wait_for(&[":▏"]);
    tmux.keys(&["-l", "replay invalid_json"]);
    tmux.keys(&["Enter"]);
    tmux.wait_for(&["nothing to replay for invalid_json"]);
    assert_eq!(
        raw_records(),
        (before + invalid, invalid),
        "a second replay sent records"
    );
    tmux.keys(&["q"]);
    tmux.wait_for(&["TUI-EXITED-0"]);
    // The keys are in the log (LAB_LOG's debug for the monitor), what was typed on the command
    // line is not: `_` was only ever typed there.
    let log = std::fs::read_to_string(state.path().join("logs/lab.log")).unwrap();
    assert!(log.contains("code=Enter"), "the keys are logged:\n{log}");
    assert!(log.contains("code=a typed character"), "{log}");
    assert!(!log.contains("Char('_')"), "typed text reached the log:\n{log}");
}
