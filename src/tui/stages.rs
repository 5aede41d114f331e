//! Pipeline stages run inside the monitor (`:produce`, `:transform`, `:consume`, `:stop STAGE`):
//! the same library calls as `lab produce|transform|consume`, each on its own task with its own
//! cancellation, reporting its counters once a second and its end as [`StageEvent`]s (the monitor
//! wraps them in its own message type). A stopped stage ends cleanly (commits only what is
//! durable), as on Ctrl-C.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub use crate::pipeline::stage::{StageContext, StageKind, StageStart};
use crate::pipeline::stats::StageSnapshot;
use crate::pipeline::{StageCounters, stage};

/// What a stage running in the monitor reports.
#[derive(Debug, Clone)]
pub enum StageEvent {
    /// Its counters, once a second.
    Stats { kind: StageKind, snapshot: StageSnapshot },
    /// It ended (stopped, done, or failed).
    Done {
        kind: StageKind,
        snapshot: StageSnapshot,
        result: Result<String, String>,
    },
}

const REPORT_EVERY: Duration = Duration::from_secs(1);

struct Running {
    cancel: CancellationToken,
    handle: tokio::task::JoinHandle<()>,
    /// Set before the stage reports its end: the monitor may act on that report (`:stop` says
    /// "not running", `:start` starts it again) before the task itself has returned.
    ended: Arc<std::sync::atomic::AtomicBool>,
}

/// The stages this monitor runs; their events go to `tx` as `M`.
pub struct StageRunner<M> {
    pub config: StageContext,
    running: HashMap<StageKind, Running>,
    tx: mpsc::Sender<M>,
}

impl<M: From<StageEvent> + Send + 'static> StageRunner<M> {
    #[must_use]
    pub fn new(config: StageContext, tx: mpsc::Sender<M>) -> Self {
        Self {
            config,
            running: HashMap::new(),
            tx,
        }
    }

    fn is_running(&mut self, kind: StageKind) -> bool {
        self.running
            .retain(|_, r| !r.handle.is_finished() && !r.ended.load(std::sync::atomic::Ordering::Acquire));
        self.running.contains_key(&kind)
    }

    /// Starts `kind`; an error text when it already runs.
    pub fn start(&mut self, kind: StageKind, how: &StageStart) -> Result<String, String> {
        if self.is_running(kind) {
            return Err(format!(
                "the {} already runs here (:stop {} first)",
                kind.name(),
                kind.name()
            ));
        }
        let cancel = CancellationToken::new();
        let counters = Arc::new(StageCounters::default());
        let ended = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let handle = tokio::spawn(run_stage(
            kind,
            how.clone(),
            self.config.clone(),
            counters,
            (cancel.clone(), ended.clone()),
            self.tx.clone(),
        ));
        self.running.insert(kind, Running { cancel, handle, ended });
        Ok(match how.rate {
            Some(r) => format!("{} started ({r} msg/s)", kind.name()),
            None => format!("{} started", kind.name()),
        })
    }

    /// Asks `kind` to stop; it reports `StageDone` once it has.
    pub fn stop(&mut self, kind: StageKind) -> Result<String, String> {
        if !self.is_running(kind) {
            return Err(format!("the {} is not running in this monitor", kind.name()));
        }
        if let Some(r) = self.running.get(&kind) {
            r.cancel.cancel();
        }
        Ok(format!(
            "stopping the {} (it commits what is durable first)",
            kind.name()
        ))
    }
}

impl<M> StageRunner<M> {
    /// Asks every running stage to stop and waits up to `within` for them to end (each commits
    /// what is durable first).
    pub async fn stop_all(&mut self, within: Duration) {
        wait_stopped(self.cancel_all(), within).await;
    }

    /// Asks every running stage to stop; their tasks, to wait for with [`wait_stopped`].
    pub fn cancel_all(&mut self) -> Vec<tokio::task::JoinHandle<()>> {
        self.running
            .drain()
            .map(|(_, r)| {
                r.cancel.cancel();
                r.handle
            })
            .collect()
    }
}

/// Waits up to `within` for stopped stages' tasks to end.
pub async fn wait_stopped(stages: Vec<tokio::task::JoinHandle<()>>, within: Duration) {
    if tokio::time::timeout(within, futures::future::join_all(stages))
        .await
        .is_err()
    {
        tracing::warn!("a stage did not stop within {} s", within.as_secs());
    }
}

impl<M> Drop for StageRunner<M> {
    fn drop(&mut self) {
        for r in self.running.values() {
            r.cancel.cancel();
        }
    }
}

/// Runs one stage to its end while reporting its counters.
async fn run_stage<M: From<StageEvent> + Send + 'static>(
    kind: StageKind,
    how: StageStart,
    config: StageContext,
    counters: Arc<StageCounters>,
    (cancel, ended): (CancellationToken, Arc<std::sync::atomic::AtomicBool>),
    tx: mpsc::Sender<M>,
) {
    let reporter = {
        let (tx, counters) = (tx.clone(), counters.clone());
        tokio::spawn(async move {
            let mut every = tokio::time::interval(REPORT_EVERY);
            loop {
                every.tick().await;
                if tx
                    .send(
                        StageEvent::Stats {
                            kind,
                            snapshot: counters.snapshot(),
                        }
                        .into(),
                    )
                    .await
                    .is_err()
                {
                    break;
                }
            }
        })
    };
    let result = stage::execute(kind, &how, &config, &counters, &cancel).await;
    reporter.abort();
    if let Err(e) = &result {
        tracing::warn!(stage = kind.name(), error = %e, "stage failed");
    }
    let done = StageEvent::Done {
        kind,
        snapshot: counters.snapshot(),
        result,
    };
    ended.store(true, std::sync::atomic::Ordering::Release);
    if tx.send(done.into()).await.is_err() {
        tracing::debug!(stage = kind.name(), "the monitor closed before the stage ended");
    }
}
