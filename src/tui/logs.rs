//! Follows log files for the Logs view: the lab's own log directory and, when set, the services'
//! directory (`LAB_SERVICES_DIR`). New lines are read once a second from where the last read
//! stopped; a file that shrank (rotated) is read again from its start.
//!
//! A follower never falls behind a fast writer: it reads at most [`MAX_READ_PER_POLL`] of a file
//! per second (the newest part; what it skips is counted in bytes), and when the monitor is slow
//! to take what was read, the [`Outbox`] keeps the newest lines and counts the ones it drops. The
//! view says both (see [`super::log_buffer`]).

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// How much of an existing file is shown when following starts.
const INITIAL_TAIL_BYTES: u64 = 16 * 1024;
/// The most of one file read per poll: a writer faster than this loses its older lines (counted),
/// never the newest ones.
pub const MAX_READ_PER_POLL: u64 = 1024 * 1024;
/// Lines an [`Outbox`] holds while the monitor has not taken them; older ones are dropped, counted.
pub const OUTBOX_LINES: usize = 10_000;
const POLL: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// The file's name without `.log` (`lab`, `namenode`, `api`…).
    pub source: String,
    pub text: String,
}

/// What a source lost before its lines were shown: lines dropped, and bytes skipped unread.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Loss {
    pub lines: u64,
    pub bytes: u64,
}

impl Loss {
    pub fn add(&mut self, other: Loss) {
        self.lines += other.lines;
        self.bytes += other.bytes;
    }

    #[must_use]
    pub fn is_none(self) -> bool {
        self.lines == 0 && self.bytes == 0
    }
}

/// What a follower sends the monitor: new lines, and what each source lost since the last batch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogBatch {
    pub lines: Vec<LogLine>,
    pub lost: Vec<(String, Loss)>,
}

impl LogBatch {
    #[must_use]
    pub fn lines(lines: Vec<LogLine>) -> Self {
        Self {
            lines,
            lost: Vec::new(),
        }
    }

    fn is_empty(&self) -> bool {
        self.lines.is_empty() && self.lost.is_empty()
    }
}

/// Lines on their way to the monitor. Sends without waiting: while the monitor's queue is full,
/// the lines wait here, at most [`OUTBOX_LINES`] of them, the oldest dropped and counted, so a
/// follower keeps reading at its writer's pace instead of waiting behind the monitor.
#[derive(Debug, Default)]
pub struct Outbox {
    pending: LogBatch,
}

/// The monitor is gone: stop following.
#[derive(Debug)]
pub struct Closed;

impl Outbox {
    pub fn push(&mut self, batch: LogBatch) {
        self.pending.lines.extend(batch.lines);
        self.pending.lost.extend(batch.lost);
        let excess = self.pending.lines.len().saturating_sub(OUTBOX_LINES);
        if excess > 0 {
            let mut dropped: HashMap<String, u64> = HashMap::new();
            for line in self.pending.lines.drain(..excess) {
                *dropped.entry(line.source).or_default() += 1;
            }
            self.pending.lost.extend(
                dropped
                    .into_iter()
                    .map(|(source, lines)| (source, Loss { lines, bytes: 0 })),
            );
        }
    }

    /// Sends what waits, if the monitor's queue has room.
    pub fn flush<M: From<LogBatch>>(&mut self, tx: &mpsc::Sender<M>) -> Result<(), Closed> {
        if self.pending.is_empty() {
            return Ok(());
        }
        match tx.try_reserve() {
            Ok(permit) => {
                permit.send(std::mem::take(&mut self.pending).into());
                Ok(())
            }
            Err(mpsc::error::TrySendError::Full(())) => Ok(()),
            Err(mpsc::error::TrySendError::Closed(())) => Err(Closed),
        }
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }
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
    pub fn read_new(&mut self, files: &[PathBuf]) -> LogBatch {
        let mut batch = LogBatch::default();
        for path in files {
            let Ok(mut f) = std::fs::File::open(path) else { continue };
            let Ok(len) = f.metadata().map(|m| m.len()) else {
                continue;
            };
            let mut start = match self.offsets.get(path) {
                Some(&o) if o <= len => o,
                Some(_) => 0, // truncated or rotated
                None => len.saturating_sub(INITIAL_TAIL_BYTES),
            };
            // A writer faster than we read: skip to the newest part, and say how much was skipped.
            let mut skipped = 0;
            if len - start > MAX_READ_PER_POLL {
                skipped = len - MAX_READ_PER_POLL - start;
                start = len - MAX_READ_PER_POLL;
            }
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
            // Reading from the middle of a line (the first read, or after a skip): that line's
            // end is not a line.
            let mut body = &buf[..complete];
            if (!self.offsets.contains_key(path) && start > 0) || skipped > 0 {
                let first_end = body.iter().position(|b| *b == b'\n').map_or(0, |i| i + 1);
                if skipped > 0 {
                    skipped += first_end as u64;
                }
                body = &body[first_end..];
            }
            let text = String::from_utf8_lossy(body);
            let source = source_name(path);
            for line in text.lines() {
                batch.lines.push(LogLine {
                    source: source.clone(),
                    text: line.to_string(),
                });
            }
            if skipped > 0 {
                batch.lost.push((
                    source,
                    Loss {
                        lines: 0,
                        bytes: skipped,
                    },
                ));
            }
            self.offsets.insert(path.clone(), start + complete as u64);
        }
        batch
    }
}

/// Follows the files of `dirs` until cancelled, sending each batch of new lines to `tx` (as `M`:
/// the monitor wraps them in its own message type).
pub async fn follow<M: From<LogBatch>>(dirs: Vec<PathBuf>, tx: mpsc::Sender<M>, cancel: CancellationToken) {
    let mut follower = Follower::default();
    let mut outbox = Outbox::default();
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
        outbox.push(lines);
        if outbox.flush(&tx).is_err() {
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
        let first: Vec<String> = f.read_new(&files).lines.into_iter().map(|l| l.text).collect();
        assert_eq!(first, ["one", "two"]);
        let mut file = std::fs::OpenOptions::new().append(true).open(&path).unwrap();
        write!(file, "three\npart").unwrap();
        let next = f.read_new(&files).lines;
        assert_eq!(next.len(), 1);
        assert_eq!(next[0].text, "three");
        assert_eq!(next[0].source, "namenode");
        writeln!(file, "ial").unwrap();
        assert_eq!(f.read_new(&files).lines[0].text, "partial");
        assert!(f.read_new(&files).is_empty());
    }

    #[test]
    fn a_writer_faster_than_a_poll_loses_its_oldest_lines_counted_never_the_newest() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chatty.log");
        std::fs::write(&path, "before\n").unwrap();
        let files = log_files(dir.path());
        let mut f = Follower::default();
        assert_eq!(f.read_new(&files).lines.len(), 1);
        // 3 MiB appended between two polls: 30,000 lines of 100 bytes (99 + the newline).
        let mut file = std::fs::OpenOptions::new().append(true).open(&path).unwrap();
        for i in 0..30_000 {
            writeln!(file, "{i:>99}").unwrap();
        }
        let batch = f.read_new(&files);
        let read = batch.lines.len() as u64;
        assert!(read > 0 && read * 100 <= MAX_READ_PER_POLL, "{read} lines read");
        assert_eq!(
            batch.lines.last().unwrap().text.trim(),
            "29999",
            "the newest line is kept"
        );
        let first: u64 = batch.lines[0].text.trim().parse().unwrap();
        assert_eq!(first + read, 30_000, "whole lines from the skip on, none doubled");
        assert_eq!(
            batch.lost,
            [(
                "chatty".to_string(),
                Loss {
                    lines: 0,
                    bytes: first * 100
                }
            )],
            "what was skipped is counted to the byte"
        );
        assert!(f.read_new(&files).is_empty(), "nothing read twice");
    }

    #[tokio::test]
    async fn a_full_queue_keeps_the_newest_lines_and_counts_the_dropped() {
        let (tx, mut rx) = mpsc::channel::<LogBatch>(1);
        let mut outbox = Outbox::default();
        let line = |i: usize| LogLine {
            source: "lab".into(),
            text: i.to_string(),
        };
        outbox.push(LogBatch::lines(vec![line(0)]));
        outbox.flush(&tx).unwrap();
        // The queue is full now: what follows waits in the outbox, bounded.
        outbox.push(LogBatch::lines((1..=OUTBOX_LINES + 5).map(line).collect()));
        outbox.flush(&tx).unwrap();
        assert!(!outbox.is_empty());
        assert_eq!(rx.recv().await.unwrap().lines, [line(0)]);
        outbox.flush(&tx).unwrap();
        let second = rx.recv().await.unwrap();
        assert_eq!(second.lines.len(), OUTBOX_LINES);
        assert_eq!(second.lines[0], line(6), "the oldest five dropped");
        assert_eq!(second.lines.last(), Some(&line(OUTBOX_LINES + 5)));
        assert_eq!(second.lost, [("lab".to_string(), Loss { lines: 5, bytes: 0 })]);
        drop(rx);
        outbox.push(LogBatch::lines(vec![line(1)]));
        assert!(outbox.flush(&tx).is_err(), "a closed monitor ends the follower");
    }
}
