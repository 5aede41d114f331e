//! Smoke test of the real `lab tui` binary in a real terminal (tmux): it starts, every view and
//! the help overlay draw, `q` quits, and the terminal is restored (alternate screen left, cursor
//! shown, the shell's next output visible). Endpoints point at closed ports, so the views show
//! the services as down with the reason, which is also what this checks.

use std::process::Command;
use std::time::{Duration, Instant};

struct Tmux {
    socket: String,
}

impl Tmux {
    fn cmd(&self) -> Command {
        let mut c = Command::new("tmux");
        c.args(["-L", &self.socket, "-f", "/dev/null"]);
        c
    }

    fn run(&self, args: &[&str]) -> String {
        let out = self
            .cmd()
            .args(args)
            .output()
            .expect("tmux runs (apt-get install tmux)");
        assert!(
            out.status.success(),
            "tmux {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn screen(&self) -> String {
        self.run(&["capture-pane", "-p", "-t", "mon"])
    }

    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "mon"];
        args.extend_from_slice(keys);
        self.run(&args);
    }

    /// Waits until the screen contains every one of `needles` (upper bound only).
    fn wait_for(&self, needles: &[&str]) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let s = self.screen();
            if needles.iter().all(|n| s.contains(n)) {
                return s;
            }
            assert!(Instant::now() < deadline, "screen never showed {needles:?}:\n{s}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        // Our own server only (its private socket), never other tmux sessions.
        if let Err(e) = self.cmd().arg("kill-server").output() {
            eprintln!("could not stop the test's tmux server: {e}");
        }
    }
}

#[test]
fn tui_draws_every_view_and_help_then_quits_and_restores_the_terminal() {
    let state = tempfile::tempdir().unwrap();
    let tmux = Tmux {
        socket: format!("lab-tui-test-{}", std::process::id()),
    };
    let closed = "127.0.0.1:9"; // the discard port: nothing listens, connections are refused
    let script = format!(
        "env -u NO_COLOR -u LAB_PG_URL LAB_STATE_DIR={state} LAB_KAFKA_BROKERS={closed} LAB_HDFS_HTTP=http://{closed} \
         LAB_SPARK_UI=http://{closed} LAB_AIRFLOW_URL=http://{closed} LAB_SERVICES_DIR= {bin} tui; \
         echo TUI-EXITED-$?; sleep 600",
        state = state.path().display(),
        bin = env!("CARGO_BIN_EXE_lab"),
    );
    tmux.run(&[
        "new-session",
        "-d",
        "-s",
        "mon",
        "-x",
        "100",
        "-y",
        "30",
        "sh",
        "-c",
        &script,
    ]);

    let s = tmux.wait_for(&["1 Overview", "8 Logs", "Kafka DOWN", "Spark DOWN"]);
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
    ];
    for (key, needles) in views {
        tmux.keys(&[key]);
        tmux.wait_for(needles);
    }
    tmux.keys(&["Tab"]);
    tmux.wait_for(&["Trends"]); // Tab from the last view wraps to Overview
    tmux.keys(&["?"]);
    tmux.wait_for(&["Help", "command line", ":trigger DAG"]);
    tmux.keys(&["Escape"]);
    tmux.keys(&[":"]);
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
