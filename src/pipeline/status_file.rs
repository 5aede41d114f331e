//! What a stage running in its own process (`lab produce|transform|consume`) tells other `lab`
//! commands: `<state>/stages/<stage>-<pid>.json`, rewritten every second while it runs and removed
//! when it ends. `lab status` reads them, so "the transform is waiting for the broker" shows there
//! too, not only in the stage's own terminal and log. A file whose process is gone (killed before
//! it could remove it) is ignored and deleted by the reader.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::transform::Delivery;
use super::{StageCounters, StageSnapshot};

const INTERVAL: Duration = Duration::from_secs(1);

/// One running stage, as its process last wrote it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageStatus {
    /// producer, transform or consumer.
    pub stage: String,
    pub pid: u32,
    /// The worker's number in its group (`--worker`, `--workers`); absent for a group's only one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker: Option<u32>,
    pub topic_prefix: String,
    /// When the file was last written (RFC 3339, UTC).
    pub updated_at: String,
    pub waiting_for_broker: bool,
    pub input: u64,
    pub output: u64,
    pub dlq: u64,
    /// Messages behind on the stage's input topics; -1 while unknown.
    pub lag: i64,
    pub delivery: Option<Delivery>,
}

impl StageStatus {
    fn of(stage: &str, worker: Option<u32>, topic_prefix: &str, s: &StageSnapshot) -> Self {
        Self {
            stage: stage.to_string(),
            pid: std::process::id(),
            worker,
            topic_prefix: topic_prefix.to_string(),
            updated_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            waiting_for_broker: s.waiting_for_broker,
            input: s.input,
            output: s.output,
            dlq: s.dlq,
            lag: s.lag,
            delivery: s.delivery,
        }
    }
}

fn dir(state_dir: &Path) -> PathBuf {
    state_dir.join("stages")
}

/// Keeps this process's status file current until [`StatusFile::finish`] (or drop) removes it.
pub struct StatusFile {
    path: PathBuf,
    stop: CancellationToken,
    task: Option<JoinHandle<()>>,
}

impl StatusFile {
    /// Starts writing. A state dir that cannot be written only costs `lab status` its view of
    /// this stage: the stage itself runs on (the reason goes to the log).
    #[must_use]
    pub fn start(
        state_dir: &Path,
        stage: &'static str,
        worker: Option<u32>,
        topic_prefix: &str,
        counters: &Arc<StageCounters>,
    ) -> Self {
        let name = match worker {
            None => format!("{stage}-{}.json", std::process::id()),
            Some(n) => format!("{stage}-{}-w{n}.json", std::process::id()),
        };
        let path = dir(state_dir).join(name);
        let stop = CancellationToken::new();
        let (token, file, counters, prefix) = (
            stop.clone(),
            path.clone(),
            Arc::clone(counters),
            topic_prefix.to_string(),
        );
        let task = tokio::spawn(async move {
            let mut warned = false;
            loop {
                let status = StageStatus::of(stage, worker, &prefix, &counters.snapshot());
                let target = file.clone();
                // Small file, but still file I/O: off the async workers.
                let written = tokio::task::spawn_blocking(move || write_atomically(&target, &status)).await;
                if let Ok(Err(e)) = written
                    && !warned
                {
                    tracing::warn!(path = %file.display(), error = %e, "cannot write the stage's status file; lab status will not show it");
                    warned = true;
                }
                tokio::select! {
                    () = token.cancelled() => break,
                    () = tokio::time::sleep(INTERVAL) => {}
                }
            }
        });
        Self {
            path,
            stop,
            task: Some(task),
        }
    }

    /// Stops writing, waits for a write in flight (so none lands after the removal), and removes
    /// the file (on drop).
    pub async fn finish(mut self) {
        self.stop.cancel();
        if let Some(task) = self.task.take() {
            drop(task.await);
        }
    }
}

impl Drop for StatusFile {
    /// Also the error path, where `finish` is not reached: the file goes at once (a write still in
    /// flight may put it back; readers drop files of processes that are gone).
    fn drop(&mut self) {
        self.stop.cancel();
        drop(std::fs::remove_file(&self.path));
    }
}

fn write_atomically(path: &Path, status: &StageStatus) -> std::io::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, serde_json::to_vec(status).map_err(std::io::Error::other)?)?;
    std::fs::rename(&tmp, path)
}

fn alive(pid: u32) -> bool {
    // /proc on Linux; elsewhere a file is trusted while it is fresh (see `read_all`).
    if Path::new("/proc/self").exists() {
        Path::new(&format!("/proc/{pid}")).exists()
    } else {
        true
    }
}

/// The stages running now, oldest pid first. Files of processes that are gone, or not rewritten
/// for 10 s (a hung or killed process elsewhere), are left out; the gone ones are removed.
#[must_use]
pub fn read_all(state_dir: &Path) -> Vec<StageStatus> {
    let Ok(entries) = std::fs::read_dir(dir(state_dir)) else {
        return Vec::new();
    };
    let now = chrono::Utc::now();
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let Ok(status) = std::fs::read(&path)
            .map_err(|_| ())
            .and_then(|b| serde_json::from_slice::<StageStatus>(&b).map_err(|_| ()))
        else {
            continue;
        };
        if !alive(status.pid) {
            drop(std::fs::remove_file(&path));
            continue;
        }
        let fresh = chrono::DateTime::parse_from_rfc3339(&status.updated_at)
            .is_ok_and(|t| (now - t.with_timezone(&chrono::Utc)).num_seconds() < 10);
        if fresh {
            out.push(status);
        }
    }
    out.sort_by_key(|s| (s.pid, s.stage.clone(), s.worker));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_running_stage_is_listed_until_it_finishes_and_dead_ones_are_dropped() {
        let state = tempfile::tempdir().unwrap();
        let counters = Arc::new(StageCounters::default());
        StageCounters::add(&counters.input, 7);
        counters.set_waiting_for_broker(true);
        let file = StatusFile::start(state.path(), "transform", None, "yelp", &counters);
        let mut listed = Vec::new();
        for _ in 0..50 {
            listed = read_all(state.path());
            if !listed.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(listed.len(), 1, "{listed:?}");
        assert_eq!(
            (
                listed[0].stage.as_str(),
                listed[0].pid,
                listed[0].input,
                listed[0].waiting_for_broker
            ),
            ("transform", std::process::id(), 7, true)
        );
        file.finish().await;
        assert!(read_all(state.path()).is_empty(), "removed when the stage ends");

        // A process that died without removing its file: ignored, and the file goes.
        let dead = StageStatus {
            pid: u32::MAX - 1,
            ..listed[0].clone()
        };
        let path = dir(state.path()).join("consumer-4294967294.json");
        write_atomically(&path, &dead).unwrap();
        assert!(read_all(state.path()).is_empty());
        assert!(!path.exists());
        // A live pid whose file went stale (not rewritten for 10 s) is not listed either.
        let stale = StageStatus {
            updated_at: "2026-01-01T00:00:00Z".into(),
            ..listed[0].clone()
        };
        write_atomically(&dir(state.path()).join("producer-1.json"), &stale).unwrap();
        assert!(read_all(state.path()).is_empty());
    }
}
