//! Live progress of running stages: indicatif lines in a terminal, plain periodic lines otherwise.
//! Both read the stages' lock-free counters; the stages never wait on the display.

use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::pipeline::{StageCounters, StageSnapshot};

pub struct LiveView {
    stop: CancellationToken,
    task: Option<JoinHandle<()>>,
}

const REFRESH: Duration = Duration::from_millis(250);
const PLAIN_REFRESH: Duration = Duration::from_secs(2);

impl LiveView {
    /// Starts refreshing. `interactive` draws bars on stderr; otherwise a line every 2 s.
    pub fn start(interactive: bool, stages: &[(&str, &Arc<StageCounters>)]) -> Self {
        let stages: Vec<(String, Arc<StageCounters>)> =
            stages.iter().map(|(n, c)| ((*n).to_string(), Arc::clone(c))).collect();
        let stop = CancellationToken::new();
        let token = stop.clone();
        let task = tokio::spawn(async move {
            if interactive {
                draw_bars(&stages, &token).await
            } else {
                print_lines(&stages, &token).await
            }
        });
        Self { stop, task: Some(task) }
    }

    /// Stops refreshing, draws the final state once, and returns when the screen is settled, so
    /// that whatever the caller prints next does not interleave with a redraw.
    pub async fn finish(mut self) {
        self.stop.cancel();
        if let Some(task) = self.task.take()
            && let Err(e) = task.await
        {
            tracing::warn!(error = %e, "progress display task failed");
        }
    }
}

impl Drop for LiveView {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

fn describe(name: &str, now: &StageSnapshot, rate: f64) -> String {
    let lag = if now.lag >= 0 {
        format!("lag {:>9}", now.lag)
    } else {
        "lag         -".to_string()
    };
    let state = if now.done { "done" } else { "" };
    format!(
        "{name:<9} in {:>10}  out {:>10}  dlq {:>7}  {lag}  {:>9.0} msg/s  {state}",
        now.input, now.output, now.dlq, rate
    )
}

async fn draw_bars(stages: &[(String, Arc<StageCounters>)], stop: &CancellationToken) {
    let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(4));
    let style = ProgressStyle::with_template("{spinner} {msg}").unwrap_or_else(|_| ProgressStyle::default_spinner());
    let header =
        multi
            .add(ProgressBar::new_spinner().with_style(
                ProgressStyle::with_template("{msg}").unwrap_or_else(|_| ProgressStyle::default_spinner()),
            ));
    header.set_message(format!(
        "  {:<9} {}",
        "stage", "dataset → producer → Kafka → transform → Kafka (+ DLQ) → consumer → raw zone"
    ));
    header.tick();
    let bars: Vec<ProgressBar> = stages
        .iter()
        .map(|_| multi.add(ProgressBar::new_spinner().with_style(style.clone())))
        .collect();
    let mut previous: Vec<StageSnapshot> = stages.iter().map(|(_, c)| c.snapshot()).collect();
    let mut last = Instant::now();
    loop {
        let stopped = tokio::select! {
            () = stop.cancelled() => true,
            () = tokio::time::sleep(REFRESH) => false,
        };
        let secs = last.elapsed().as_secs_f64();
        last = Instant::now();
        for ((name, counters), (bar, prev)) in stages.iter().zip(bars.iter().zip(previous.iter_mut())) {
            let now = counters.snapshot();
            bar.set_message(describe(name, &now, now.rate_since(prev, secs)));
            bar.tick();
            *prev = now;
        }
        if stopped {
            header.finish();
            for bar in &bars {
                bar.finish();
            }
            return;
        }
    }
}

async fn print_lines(stages: &[(String, Arc<StageCounters>)], stop: &CancellationToken) {
    let mut previous: Vec<StageSnapshot> = stages.iter().map(|(_, c)| c.snapshot()).collect();
    let mut last = Instant::now();
    loop {
        // The final state is printed too, so the last lines are never stale.
        let stopped = tokio::select! {
            () = stop.cancelled() => true,
            () = tokio::time::sleep(PLAIN_REFRESH) => false,
        };
        let secs = last.elapsed().as_secs_f64();
        last = Instant::now();
        for ((name, counters), prev) in stages.iter().zip(previous.iter_mut()) {
            let now = counters.snapshot();
            eprintln!("{}", describe(name, &now, now.rate_since(prev, secs)));
            *prev = now;
        }
        if stopped {
            return;
        }
    }
}
