//! Pipeline stages run inside the monitor (`:produce`, `:transform`, `:consume`, `:stop STAGE`):
//! the same library calls as `lab produce|transform|consume`, each on its own task with its own
//! cancellation, reporting its counters once a second as `Msg::StageStats` and its end as
//! `Msg::StageDone`. A stopped stage ends cleanly (commits only what is durable), as on Ctrl-C.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::msg::Msg;
pub use crate::pipeline::stage::{StageContext, StageKind, StageStart};
use crate::pipeline::{StageCounters, stage};

const REPORT_EVERY: Duration = Duration::from_secs(1);

struct Running {
    cancel: CancellationToken,
    handle: tokio::task::JoinHandle<()>,
}

/// The stages this monitor runs.
pub struct StageRunner {
    pub config: StageContext,
    running: HashMap<StageKind, Running>,
    tx: mpsc::Sender<Msg>,
}

impl StageRunner {
    #[must_use]
    pub fn new(config: StageContext, tx: mpsc::Sender<Msg>) -> Self {
        Self {
            config,
            running: HashMap::new(),
            tx,
        }
    }

    fn is_running(&mut self, kind: StageKind) -> bool {
        self.running.retain(|_, r| !r.handle.is_finished());
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
        let handle = tokio::spawn(run_stage(
            kind,
            how.clone(),
            self.config.clone(),
            counters,
            cancel.clone(),
            self.tx.clone(),
        ));
        self.running.insert(kind, Running { cancel, handle });
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

impl Drop for StageRunner {
    fn drop(&mut self) {
        for r in self.running.values() {
            r.cancel.cancel();
        }
    }
}

/// Runs one stage to its end while reporting its counters.
async fn run_stage(
    kind: StageKind,
    how: StageStart,
    config: StageContext,
    counters: Arc<StageCounters>,
    cancel: CancellationToken,
    tx: mpsc::Sender<Msg>,
) {
    let reporter = {
        let (tx, counters) = (tx.clone(), counters.clone());
        tokio::spawn(async move {
            let mut every = tokio::time::interval(REPORT_EVERY);
            loop {
                every.tick().await;
                if tx
                    .send(Msg::StageStats {
                        kind,
                        snapshot: counters.snapshot(),
                    })
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
    let done = Msg::StageDone {
        kind,
        snapshot: counters.snapshot(),
        result,
    };
    if tx.send(done).await.is_err() {
        tracing::debug!(stage = kind.name(), "the monitor closed before the stage ended");
    }
}
