//! Follows log files for the Logs view: the lab's own log directory and, when set, the services'
//! directory (`LAB_SERVICES_DIR`). New lines are read once a second from where the last read
//! stopped; a file that shrank (rotated) is read again from its start.

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// How much of an existing file is shown when following starts.
const INITIAL_TAIL_BYTES: u64 = 16 * 1024;
const POLL: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// The file's name without `.log` (`lab`, `namenode`, `api`…).
    pub source: String,
    pub text: String,
}

/// `*.log` files directly in `dir` or one level below it.
#[must_use]
pub fn log_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            if let Ok(sub) = std::fs::read_dir(&p) {
                out.extend(sub.flatten().map(|e| e.path()).filter(|p| is_log(p)));
            }
        } else if is_log(&p) {
            out.push(p);
        }
    }
    out.sort();
    out
}

fn is_log(p: &Path) -> bool {
    p.extension().is_some_and(|e| e == "log") && p.is_file()
}

fn source_name(p: &Path) -> String {
    p.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Reads what was appended to each file since the last call.
#[derive(Default)]
pub struct Follower {
    offsets: HashMap<PathBuf, u64>,
}

impl Follower {
    pub fn read_new(&mut self, files: &[PathBuf]) -> Vec<LogLine> {
        let mut lines = Vec::new();
        for path in files {
            let Ok(mut f) = std::fs::File::open(path) else { continue };
            let Ok(len) = f.metadata().map(|m| m.len()) else {
                continue;
            };
            let start = match self.offsets.get(path) {
                Some(&o) if o <= len => o,
                Some(_) => 0, // truncated or rotated
                None => len.saturating_sub(INITIAL_TAIL_BYTES),
            };
            if start == len || f.seek(SeekFrom::Start(start)).is_err() {
                self.offsets.insert(path.clone(), len);
                continue;
            }
            let mut buf = Vec::new();
            if f.take(len - start).read_to_end(&mut buf).is_err() {
                continue;
            }
            // Keep a trailing partial line for the next read.
            let complete = buf.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
            let skip_partial_first = !self.offsets.contains_key(path) && start > 0;
            let text = String::from_utf8_lossy(&buf[..complete]);
            let source = source_name(path);
            for (i, line) in text.lines().enumerate() {
                if i == 0 && skip_partial_first {
                    continue;
                }
                lines.push(LogLine {
                    source: source.clone(),
                    text: line.to_string(),
                });
            }
            self.offsets.insert(path.clone(), start + complete as u64);
        }
        lines
    }
}

/// Follows the files of `dirs` until cancelled, sending each batch of new lines to `tx` (as `M`:
/// the monitor wraps them in its own message type).
pub async fn follow<M: From<Vec<LogLine>>>(dirs: Vec<PathBuf>, tx: mpsc::Sender<M>, cancel: CancellationToken) {
    let mut follower = Follower::default();
    loop {
        let dirs2 = dirs.clone();
        let (f, lines) = match tokio::task::spawn_blocking(move || {
            let files: Vec<PathBuf> = dirs2.iter().flat_map(|d| log_files(d)).collect();
            let lines = follower.read_new(&files);
            (follower, lines)
        })
        .await
        {
            Ok(r) => r,
            Err(_) => return,
        };
        follower = f;
        if !lines.is_empty() && tx.send(lines.into()).await.is_err() {
            return;
        }
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(POLL) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn follower_reads_only_appended_complete_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("namenode.log");
        std::fs::write(&path, "one\ntwo\n").unwrap();
        let files = log_files(dir.path());
        assert_eq!(files, vec![path.clone()]);
        let mut f = Follower::default();
        let first: Vec<String> = f.read_new(&files).into_iter().map(|l| l.text).collect();
        assert_eq!(first, ["one", "two"]);
        let mut file = std::fs::OpenOptions::new().append(true).open(&path).unwrap();
        write!(file, "three\npart").unwrap();
        let next = f.read_new(&files);
        assert_eq!(next.len(), 1);
        assert_eq!(next[0].text, "three");
        assert_eq!(next[0].source, "namenode");
        writeln!(file, "ial").unwrap();
        assert_eq!(f.read_new(&files)[0].text, "partial");
        assert!(f.read_new(&files).is_empty());
    }
}
