//! The monitor's own update loop and effects (as `lab tui` runs them, minus the terminal), driven
//! as a user would: keys and `:` commands in, the app's state and its screen out.

use std::path::Path;
use std::time::{Duration, Instant};

use bigdata_lab::probes::airflow::{AirflowProbe, AirflowTarget};
use bigdata_lab::tui::actions::StackContext;
use bigdata_lab::tui::app::App;
use bigdata_lab::tui::msg::Msg;
use bigdata_lab::tui::run::Effects;
use bigdata_lab::tui::stages::StageContext;
use bigdata_lab::tui::theme::Theme;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use tokio::sync::mpsc;

/// Upper bound for the stages to get through the sample (not a timing assertion).
pub const PATIENCE: Duration = Duration::from_secs(180);

pub struct Monitor {
    pub app: App,
    effects: Effects,
    rx: mpsc::Receiver<Msg>,
}

impl Monitor {
    /// A monitor whose stages and data commands use the broker at `brokers` with `prefix`, and
    /// `dir` for the raw zone and state (no Airflow, no stack).
    pub fn on_broker(brokers: &str, prefix: &str, dir: &Path) -> Self {
        // The stages' log, shown with a failing test's output (`lab tui` writes it to a file).
        let _already = tracing_subscriber::fmt()
            .with_test_writer()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
            )
            .try_init();
        let (tx, rx) = mpsc::channel(256);
        let airflow = AirflowProbe::new(AirflowTarget {
            url: "http://127.0.0.1:9".into(),
            username: "admin".into(),
            password_file: None,
        })
        .expect("a probe of a fixed URL");
        let stages = StageContext::on_broker(brokers, prefix, dir.to_path_buf(), dir).watched();
        let stack = StackContext {
            path: Err("no stack in this test".into()),
            state_dir: dir.to_path_buf(),
        };
        Self {
            app: App::new(Theme::no_color()),
            effects: Effects::detached(airflow, stack, stages, tx),
            rx,
        }
    }

    /// Presses `code`, as a user would.
    pub fn key(&mut self, code: KeyCode) {
        self.apply(Msg::Key(KeyEvent::new(code, KeyModifiers::NONE)));
    }

    pub fn apply(&mut self, msg: Msg) {
        for cmd in self.app.update(msg) {
            self.effects.run(cmd);
        }
    }

    /// Types `:line` and Enter, as a user would.
    pub fn command(&mut self, line: &str) {
        let key = |c| Msg::Key(KeyEvent::new(c, KeyModifiers::NONE));
        self.apply(key(KeyCode::Char(':')));
        for c in line.chars() {
            self.apply(key(KeyCode::Char(c)));
        }
        self.apply(key(KeyCode::Enter));
    }

    /// Applies messages until `done` holds for the app.
    pub async fn until(&mut self, what: &str, done: impl Fn(&App) -> bool) {
        let deadline = Instant::now() + PATIENCE;
        while !done(&self.app) {
            let left = deadline.saturating_duration_since(Instant::now());
            let msg = tokio::time::timeout(left, self.rx.recv())
                .await
                .unwrap_or_else(|_| panic!("gave up waiting for {what}; stages: {:#?}", self.app.stages))
                .expect("the channel stays open");
            self.apply(msg);
        }
    }

    /// Applies the messages that arrive within `d`, waiting on this thread's clock rather than the
    /// runtime's timers: those stop firing while every worker of the runtime is held, which is
    /// what a caller of this may want to find out.
    pub fn pump_for(&mut self, d: Duration) {
        let end = Instant::now() + d;
        while Instant::now() < end {
            match self.rx.try_recv() {
                Ok(msg) => self.apply(msg),
                Err(mpsc::error::TryRecvError::Empty) => std::thread::sleep(Duration::from_millis(20)),
                Err(mpsc::error::TryRecvError::Disconnected) => panic!("the monitor's channel closed"),
            }
        }
    }

    pub fn screen(&self) -> String {
        let mut terminal = Terminal::new(TestBackend::new(140, 30)).unwrap();
        terminal.draw(|f| f.render_widget(&self.app, f.area())).unwrap();
        let buf = terminal.backend().buffer().clone();
        let mut s = String::new();
        for y in 0..buf.area.height {
            for x in 0..buf.area.width {
                s.push_str(buf[(x, y)].symbol());
            }
            s.push('\n');
        }
        s
    }
}
