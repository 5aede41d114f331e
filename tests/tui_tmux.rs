//! Smoke test of the real `lab tui` binary in a real terminal (tmux): it starts, every view and
//! the help overlay draw, `q` quits, and the terminal is restored (alternate screen left, cursor
//! shown, the shell's next output visible). Endpoints point at closed ports and there is no Docker
//! engine, so the views show the services as down with the reason, the Stack view lists the stack
//! with the first-run banner, and `e` starts the embedded lab in the same monitor: also checked.
// Needs tmux, which `make test` installs in CI: `make test` turns this feature on,
// so a plain `cargo test` on a fresh clone skips it.
#![cfg(feature = "service-tests")]

mod tmux;
use std::time::Duration;

use tmux::Tmux;

/// `lab tui` in a 100×30 tmux window, endpoints on closed ports and no Docker engine.
fn start_monitor(tmux: &Tmux, state: &std::path::Path) {
    let closed = "127.0.0.1:9"; // the discard port: nothing listens, connections are refused
    let script = format!(
        "env -u NO_COLOR -u LAB_PG_URL LAB_STATE_DIR={state} LAB_KAFKA_BROKERS={closed} LAB_HDFS_HTTP=http://{closed} \
         LAB_SPARK_UI=http://{closed} LAB_AIRFLOW_URL=http://{closed} LAB_SERVICES_DIR= \
         DOCKER_HOST=unix:///nonexistent/docker.sock {bin} tui; echo TUI-EXITED-$?; sleep 600",
        state = state.display(),
        bin = env!("CARGO_BIN_EXE_lab"),
    );
    tmux.start(100, 30, &script);
}

#[test]
fn tui_draws_every_view_and_help_then_quits_and_restores_the_terminal() {
    let state = tempfile::tempdir().unwrap();
    let tmux = Tmux::new("lab-tui-test");
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
    tmux.wait_for(&["Trends", "embedded lab"]); // Tab from the last view wraps to Overview
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

#[test]
fn without_docker_e_starts_the_embedded_lab_in_the_same_monitor() {
    let state = tempfile::tempdir().unwrap();
    let tmux = Tmux::new("lab-tui-demo-test");
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
