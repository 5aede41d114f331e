//! Follows the stack's container logs for the Logs view (sources `docker:<service>`), next to the
//! log files of [`super::logs`]. Every few seconds it looks for running containers it does not
//! follow yet (new, or restarted); a container that stops ends its stream. Without an engine it
//! keeps looking, quietly.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::logs::{LogBatch, LogLine, Outbox};
use crate::runtime::docker::{self, Engine};

const LOOK_EVERY: Duration = Duration::from_secs(5);
/// Lines of history shown when a container is first followed.
const FIRST_TAIL: usize = 200;
/// How soon lines that found the monitor's queue full are offered again.
const RETRY_SEND: Duration = Duration::from_millis(200);

/// The Logs view's source name for a service's container.
#[must_use]
pub fn source_name(service: &str) -> String {
    format!("docker:{service}")
}

/// Follows the logs of the stack's containers until cancelled, sending each batch of new lines to
/// `tx` (as `M`, like [`super::logs::follow`]).
pub async fn follow<M: From<LogBatch> + Send + 'static>(stack: String, tx: mpsc::Sender<M>, cancel: CancellationToken) {
    if stack.is_empty() {
        return;
    }
    let following: Arc<Mutex<HashSet<String>>> = Arc::default();
    // Services seen before: a restarted container continues where its old stream ended.
    let mut seen: HashSet<String> = HashSet::new();
    let mut engine: Option<Engine> = None;
    loop {
        if engine.is_none() {
            engine = Engine::connect().await.ok();
        }
        if let Some(e) = &engine {
            match e.states(&stack).await {
                Ok(rows) => {
                    for row in rows.into_iter().filter(|r| r.state == "running") {
                        let new = following.lock().is_ok_and(|mut f| f.insert(row.service.clone()));
                        if new {
                            let tail = if seen.insert(row.service.clone()) {
                                FIRST_TAIL
                            } else {
                                0
                            };
                            tokio::spawn(stream_one(
                                e.clone(),
                                stack.clone(),
                                row.service,
                                tail,
                                following.clone(),
                                tx.clone(),
                                cancel.clone(),
                            ));
                        }
                    }
                }
                Err(err) => {
                    tracing::debug!(error = %err, "cannot list the stack's containers for their logs");
                    engine = None;
                }
            }
        }
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(LOOK_EVERY) => {}
        }
    }
}

async fn stream_one<M: From<LogBatch> + Send + 'static>(
    engine: Engine,
    stack: String,
    service: String,
    tail: usize,
    following: Arc<Mutex<HashSet<String>>>,
    tx: mpsc::Sender<M>,
    cancel: CancellationToken,
) {
    let source = source_name(&service);
    let window = docker::LogWindow {
        follow: true,
        tail: Some(tail),
        since: None,
    };
    match engine.logs(&stack, &service, window).await {
        Ok(stream) => {
            // Chunks arriving together go to the view as one message. The outbox never waits for
            // the monitor (a chatty container would fall behind): what it cannot send yet it
            // retries shortly, dropping the oldest lines beyond its bound, counted.
            let mut chunks = stream.ready_chunks(256);
            let mut outbox = Outbox::default();
            loop {
                let retry = !outbox.is_empty();
                let chunk = tokio::select! {
                    () = cancel.cancelled() => break,
                    () = tokio::time::sleep(RETRY_SEND), if retry => {
                        if outbox.flush(&tx).is_err() {
                            break;
                        }
                        continue;
                    }
                    c = chunks.next() => c,
                };
                let Some(chunk) = chunk else { break };
                let lines: Vec<LogLine> = chunk
                    .into_iter()
                    .filter_map(Result::ok)
                    .flat_map(|l| {
                        let text = match l {
                            docker::ContainerLogLine::Stdout(t) | docker::ContainerLogLine::Stderr(t) => t,
                        };
                        text.lines().map(str::to_string).collect::<Vec<_>>()
                    })
                    .filter(|t| !t.trim().is_empty())
                    .map(|text| LogLine {
                        source: source.clone(),
                        text,
                    })
                    .collect();
                outbox.push(LogBatch::lines(lines));
                if outbox.flush(&tx).is_err() {
                    break;
                }
            }
            // What the stream said last reaches the view even when it ended at once.
            if !outbox.is_empty() {
                for _ in 0..10 {
                    if outbox.flush(&tx).is_err() || outbox.is_empty() {
                        break;
                    }
                    tokio::time::sleep(RETRY_SEND).await;
                }
            }
        }
        Err(e) => tracing::debug!(error = %e, %service, "cannot follow the container's log"),
    }
    if let Ok(mut f) = following.lock() {
        f.remove(&service);
    }
}
