//! The embedded lab inside the monitor (`lab demo`, or `e` without Docker): starting it off the
//! UI thread, its batch on a schedule and on `:batch`, and stopping it when the monitor quits.
//! Its events reach the monitor as [`EmbeddedEvent`]s (the loop wraps them in its own message).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use crate::embedded_lab::{EmbeddedInfo, EmbeddedLab, EmbeddedSpec};
use crate::pipeline::stage::WATCHED_ROLL_AGE;

/// How often the batch runs on its own in the embedded lab (`:batch` runs it at once).
pub const BATCH_EVERY: Duration = Duration::from_secs(30);

/// The first batch runs once the consumer's first raw-zone files have closed (they close after
/// [`WATCHED_ROLL_AGE`]), not a whole period after the start: until a batch has loaded the
/// serving tables, the PostgreSQL tile of a newcomer's first `lab demo` reads degraded.
const FIRST_BATCH_AFTER: Duration = Duration::from_secs(WATCHED_ROLL_AGE.as_secs() + 5);

/// What the embedded lab reports to the monitor.
#[derive(Debug, Clone)]
pub enum EmbeddedEvent {
    /// It is running (its stages can start), or why it could not start.
    Started(Result<EmbeddedInfo, String>),
    /// A batch run began.
    BatchStarted { trigger: BatchTrigger },
    /// A batch run ended.
    BatchDone(BatchRunView),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchTrigger {
    Schedule,
    /// `:batch`.
    Command,
}

impl BatchTrigger {
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            BatchTrigger::Schedule => "scheduled",
            BatchTrigger::Command => ":batch",
        }
    }
}

/// One batch run as the monitor lists it (where the Airflow view lists DAG runs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchRunView {
    pub trigger: BatchTrigger,
    pub started: chrono::DateTime<chrono::Utc>,
    pub elapsed_ms: u128,
    /// Raw-zone files read and rows read, and each serving table's rows read back from the store;
    /// or what went wrong.
    pub result: Result<BatchTotals, String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchTotals {
    pub input_files: usize,
    pub rows_in: u64,
    pub tables: BTreeMap<String, u64>,
    /// Small raw-zone files merged before the batch, and the files they became.
    pub merged: (usize, usize),
}

/// The monitor's embedded lab: none until started; its events go to `tx` as `M`.
pub struct EmbeddedRunner<M> {
    tx: mpsc::Sender<M>,
    /// Where the starting task leaves the lab for [`EmbeddedRunner::adopt`].
    started: Arc<Mutex<Option<Arc<EmbeddedLab>>>>,
    lab: Option<Arc<EmbeddedLab>>,
    schedule: Option<tokio::task::JoinHandle<()>>,
    starting: bool,
}

impl<M: From<EmbeddedEvent> + Send + 'static> EmbeddedRunner<M> {
    #[must_use]
    pub fn new(tx: mpsc::Sender<M>) -> Self {
        Self {
            tx,
            started: Arc::new(Mutex::new(None)),
            lab: None,
            schedule: None,
            starting: false,
        }
    }

    /// The running lab, once adopted.
    #[must_use]
    pub fn lab(&self) -> Option<&Arc<EmbeddedLab>> {
        self.lab.as_ref()
    }

    /// Starts the lab on a task; [`EmbeddedEvent::Started`] says when it runs.
    pub fn start(&mut self, spec: EmbeddedSpec) {
        if self.starting || self.lab.is_some() {
            return;
        }
        self.starting = true;
        let (tx, slot) = (self.tx.clone(), self.started.clone());
        tokio::spawn(async move {
            let event = match EmbeddedLab::start(&spec).await {
                Ok(lab) => {
                    let info = lab.info().clone();
                    *slot.lock().unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(lab));
                    EmbeddedEvent::Started(Ok(info))
                }
                Err(e) => {
                    tracing::warn!(error = %e, "the embedded lab did not start");
                    EmbeddedEvent::Started(Err(e.to_string()))
                }
            };
            if tx.send(event.into()).await.is_err() {
                tracing::debug!("the monitor closed while the embedded lab started");
            }
        });
    }

    /// Takes the started lab into use and starts its batch schedule; `None` if none started.
    pub fn adopt(&mut self) -> Option<Arc<EmbeddedLab>> {
        self.starting = false;
        let lab = self.started.lock().unwrap_or_else(PoisonError::into_inner).take()?;
        self.lab = Some(lab.clone());
        let (tx, scheduled) = (self.tx.clone(), lab.clone());
        self.schedule = Some(tokio::spawn(async move {
            let mut wait = FIRST_BATCH_AFTER;
            loop {
                tokio::time::sleep(wait).await;
                if !run_batch(&scheduled, BatchTrigger::Schedule, &tx).await {
                    break;
                }
                wait = BATCH_EVERY;
            }
        }));
        Some(lab)
    }

    /// `:batch`: a run now (after the one running, if any).
    pub fn batch_now(&self) -> Result<String, String> {
        let Some(lab) = self.lab.clone() else {
            return Err(
                ":batch runs the embedded lab's batch; start it with `lab demo` (on a stack, :trigger the DAG)".into(),
            );
        };
        let tx = self.tx.clone();
        tokio::spawn(async move { run_batch(&lab, BatchTrigger::Command, &tx).await });
        Ok("batch started".into())
    }

    /// Stops the schedule and the lab: the broker, and the throwaway PostgreSQL with its files.
    /// The stages must have stopped first (they commit what is durable to this broker).
    pub async fn shutdown(&mut self) {
        if let Some(schedule) = self.schedule.take() {
            schedule.abort();
            if let Err(e) = schedule.await
                && !e.is_cancelled()
            {
                tracing::warn!(error = %e, "the batch schedule failed");
            }
        }
        let lab = self
            .lab
            .take()
            .or_else(|| self.started.lock().unwrap_or_else(PoisonError::into_inner).take());
        if let Some(lab) = lab {
            // A `:batch` still running holds the lab; wait for it (bounded) so that the server is
            // stopped and its files removed here, not whenever that task ends.
            let deadline = Instant::now() + Duration::from_secs(60);
            let mut lab = lab;
            loop {
                match Arc::try_unwrap(lab) {
                    Ok(owned) => {
                        // Stopping PostgreSQL and removing its files blocks.
                        if tokio::task::spawn_blocking(move || drop(owned)).await.is_err() {
                            tracing::warn!("stopping the embedded lab panicked");
                        }
                        break;
                    }
                    Err(shared) if Instant::now() < deadline => {
                        lab = shared;
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    Err(_) => {
                        tracing::warn!("a batch still holds the embedded lab; it stops when that batch ends");
                        break;
                    }
                }
            }
        }
    }
}

/// One batch run with its events; false when the monitor is gone.
async fn run_batch<M: From<EmbeddedEvent>>(lab: &EmbeddedLab, trigger: BatchTrigger, tx: &mpsc::Sender<M>) -> bool {
    if tx.send(EmbeddedEvent::BatchStarted { trigger }.into()).await.is_err() {
        return false;
    }
    let started = chrono::Utc::now();
    let clock = Instant::now();
    let result = lab
        .run_batch()
        .await
        .map(|run| BatchTotals {
            input_files: run.report.input_files,
            rows_in: run.report.rows_in,
            tables: run.rows,
            merged: run.compaction.map_or((0, 0), |c| (c.merged, c.into)),
        })
        .map_err(|e| {
            tracing::warn!(error = %e, "embedded batch failed");
            e.to_string()
        });
    let view = BatchRunView {
        trigger,
        started,
        elapsed_ms: clock.elapsed().as_millis(),
        result,
    };
    tx.send(EmbeddedEvent::BatchDone(view).into()).await.is_ok()
}
