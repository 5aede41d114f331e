//! Driving the real `lab` binary in a real terminal: a private tmux server per test.
#![allow(dead_code)] // each test binary uses its own part

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// `LAB_LOG` for a monitor under test: every key it took is in its log (debug), which a failed
/// wait prints ([`Tmux::with_log`]).
pub const MONITOR_LOG: &str = "warn,bigdata_lab=info,bigdata_lab::tui=debug";

pub struct Tmux {
    socket: String,
    /// The lab's log, shown with the screen when a wait fails.
    log: Option<PathBuf>,
}

impl Tmux {
    /// A private tmux server (its own socket), killed on drop.
    pub fn new(name: &str) -> Self {
        Self {
            socket: format!("{name}-{}", std::process::id()),
            log: None,
        }
    }

    /// Shows the end of the log of the lab run with `LAB_STATE_DIR=state_dir` when a wait fails
    /// (with `LAB_LOG=`[`MONITOR_LOG`] it has every key the monitor took).
    #[must_use]
    pub fn with_log(mut self, state_dir: &Path) -> Self {
        self.log = Some(state_dir.join("logs").join("lab.log"));
        self
    }

    fn log_tail(&self) -> String {
        let Some(path) = &self.log else {
            return String::new();
        };
        let text = std::fs::read_to_string(path).unwrap_or_else(|e| format!("({}: {e})", path.display()));
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(40)..].join("\n");
        format!("\nthe end of {}:\n{tail}", path.display())
    }

    /// Runs `script` (sh) in a detached session `mon` of `width`×`height`.
    pub fn start(&self, width: u16, height: u16, script: &str) {
        let (w, h) = (width.to_string(), height.to_string());
        self.run(&["new-session", "-d", "-s", "mon", "-x", &w, "-y", &h, "sh", "-c", script]);
    }

    pub fn cmd(&self) -> Command {
        let mut c = Command::new("tmux");
        c.args(["-L", &self.socket, "-f", "/dev/null"]);
        c
    }

    pub fn run(&self, args: &[&str]) -> String {
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

    pub fn screen(&self) -> String {
        self.run(&["capture-pane", "-p", "-t", "mon"])
    }

    pub fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "mon"];
        args.extend_from_slice(keys);
        self.run(&args);
    }

    /// Waits until the screen contains every one of `needles` (upper bound only).
    pub fn wait_for(&self, needles: &[&str]) -> String {
        self.wait_for_within(needles, Duration::from_secs(30))
    }

    /// Waits until `needle` is no longer on the screen. A key sent right after Escape can reach
    /// the program in the same read and be taken for Alt+key, so a test waits for what Escape
    /// closes to go away before it types on.
    pub fn wait_gone(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let s = self.screen();
            if !s.contains(needle) {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "screen kept showing {needle:?}:\n{s}{}",
                self.log_tail()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn wait_for_within(&self, needles: &[&str], limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let s = self.screen();
            if needles.iter().all(|n| s.contains(n)) {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "screen never showed {needles:?}:\n{s}{}",
                self.log_tail()
            );
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
