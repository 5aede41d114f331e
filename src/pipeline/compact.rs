//! Compaction of a raw zone (a directory or HDFS): a partition's small files merged into one.
//!
//! The embedded lab rolls a raw-zone file per partition every 5 s, so what a student streams
//! shows up at once; `lab consume` every 30 s. Left running, that is thousands of files of a hundred kilobytes, which its
//! batch opens every 30 s: after 10 minutes of `lab demo`, 1,245 files and 1.9 s a batch, growing
//! with every file (measured). That is the small-files problem of every data lake, and this is its
//! usual answer: before a batch, the files of one partition and epoch that sit next to each other
//! in offset order, each small, are rewritten as one file named for their whole range
//! (`part-<p>-<first>-<last>-<epoch>.parquet`), and then removed.
//!
//! Nothing is lost or doubled on the way. The merged file is written atomically before any input
//! is removed: a crash in between leaves inputs inside the merged file's range, which the batch
//! reads once (overlapping files are deduplicated, `sql/batch/01_one_copy_per_id.sql`) and the
//! next compaction removes. The consumer resumes a partition after the highest offset of its
//! epoch in the raw zone, which a merge keeps.
//!
//! Who compacts: the embedded lab, in the task that runs its batch, and on HDFS `lab compact`,
//! which the Airflow DAG runs before its batch (one DAG run at a time): so no batch of theirs lists
//! a file that a merge then removes. A batch started by hand meanwhile may, and lists again
//! ([`crate::pipeline::batch::reading_again_if_a_file_goes`]). Two compactions at once are kept
//! apart by a lock file ([`LOCK`]).

use std::collections::BTreeMap;
use std::time::Instant;

use bytes::Bytes;
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use tokio_util::sync::CancellationToken;

use super::part::writer_properties;
pub use crate::storage::ZoneFile;
use crate::storage::{Epoch, PartFile, RawZone, StorageError};

/// Files at least this large are left as they are: a merge never rewrites them again.
pub const SMALL_FILE_BYTES: u64 = 4 << 20;
/// A merge takes inputs of at most this many bytes in all (its Arrow batches are held until the
/// file is written).
pub const MERGED_FILE_BYTES: u64 = 8 << 20;
/// The fewest neighbouring small files worth a merge: fewer, and the newest files of a busy
/// partition would be rewritten at every batch.
pub const MIN_MERGE_FILES: usize = 8;

#[derive(Debug, thiserror::Error)]
pub enum CompactError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(
        "raw zone {root}: cannot {action} {path}: {detail}\nnothing is lost (a file is removed only once its merge is written, and the merge's rows are counted first) and the batch reads the files as they are; run `lab compact` again once the cause is fixed"
    )]
    File {
        root: String,
        action: &'static str,
        path: String,
        detail: String,
    },
    #[error(
        "raw zone {zone}: another compaction is running ({holder}), so this one did nothing; if none is, remove {lock} and run it again"
    )]
    Busy { zone: String, holder: String, lock: String },
    #[error(
        "raw zone {zone}: the compaction lock is stale, and so are the claims of the compactions that died taking it over, {depth} deep; remove {lock} and the hidden .compact.lock.take-over-* files beside it, then run `lab compact` again"
    )]
    TakeOverStuck { zone: String, lock: String, depth: u32 },
}

/// The compaction's lock at the zone's root. Two compactions at once lose nothing, but may merge
/// overlapping runs, which leaves those partitions tangled and never compacted again. Hidden: no
/// listing holds it.
pub const LOCK: &str = ".compact.lock";

/// A lock whose holder has not written it for this long is taken over: its compaction died. A
/// holder writes it again before each merge (a merge takes a second or two), and stops when it
/// finds another holder's token in it. The times are each host's own clock: hosts sharing a raw
/// zone must agree on the time within minutes.
const LOCK_STALE: chrono::TimeDelta = chrono::TimeDelta::minutes(15);

/// Who holds the lock, and when they last wrote it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
struct LockHolder {
    token: u64,
    pid: u32,
    host: String,
    since: chrono::DateTime<chrono::Utc>,
}

impl LockHolder {
    fn describe(&self) -> String {
        format!(
            "pid {} on {}, last seen {}",
            self.pid,
            self.host,
            self.since.format("%Y-%m-%d %H:%M:%S UTC")
        )
    }

    /// The lock's bytes, stamped with the time now: every write is a sign of life, and a
    /// take-over's calls may take minutes on an HDFS that keeps failing (each is retried).
    fn to_bytes(&self, zone: &impl RawZone) -> Result<Vec<u8>, CompactError> {
        let now = LockHolder {
            since: chrono::Utc::now(),
            ..self.clone()
        };
        serde_json::to_vec(&now).map_err(|e| file_error(&zone.describe(), "write", LOCK, e))
    }
}

/// What the lock holds: nothing (no lock), a holder, or bytes that name none (written by hand:
/// [`RawZone::create_new`] puts a lock in place whole).
#[derive(Debug, PartialEq, Eq)]
enum LockState {
    Free,
    Held(LockHolder),
    Unreadable(Bytes),
}

async fn lock_state<Z: RawZone>(zone: &Z, path: &str) -> Result<LockState, StorageError> {
    match zone.read(path).await {
        Ok(bytes) => Ok(serde_json::from_slice(&bytes).map_or(LockState::Unreadable(bytes), LockState::Held)),
        Err(e) if e.is_not_found() => Ok(LockState::Free),
        Err(e) => Err(e),
    }
}

impl LockState {
    /// A lock (or a take-over's claim) whose holder has not written it for [`LOCK_STALE`], or
    /// that names no holder: its compaction died.
    fn is_stale(&self) -> bool {
        match self {
            LockState::Free => false,
            LockState::Held(holder) => chrono::Utc::now() - holder.since > LOCK_STALE,
            LockState::Unreadable(_) => true,
        }
    }

    fn describe(&self) -> String {
        match self {
            LockState::Free => "no lock".into(),
            LockState::Held(holder) => holder.describe(),
            LockState::Unreadable(_) => "a lock that names no holder".into(),
        }
    }

    /// The claim that the one compaction taking this stale file (`path`: the lock, or a claim
    /// itself) over puts in place first: named after the file's name and contents (FNV-1a: the
    /// same name in every process), so compactions that found the same stale file race for one
    /// name, which only one can create. A claim left by a compaction that died is named after
    /// contents no lock has again: a small hidden file, never in another take-over's way.
    fn take_over_claim(&self, path: &str) -> String {
        let bytes = match self {
            LockState::Held(holder) => serde_json::to_vec(holder).unwrap_or_default(),
            LockState::Unreadable(bytes) => bytes.to_vec(),
            LockState::Free => Vec::new(),
        };
        let hash = path.bytes().chain(bytes).fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
        });
        format!("{LOCK}.take-over-{hash:016x}")
    }
}

fn busy(zone: &impl RawZone, holder: String) -> CompactError {
    CompactError::Busy {
        zone: zone.describe(),
        holder,
        lock: zone.url_of(LOCK),
    }
}

/// Takes the lock, taking over one whose holder has not written it for [`LOCK_STALE`] or that
/// names no holder.
async fn take_lock<Z: RawZone>(zone: &Z) -> Result<LockHolder, CompactError> {
    let me = LockHolder {
        token: rand::random(),
        pid: std::process::id(),
        host: std::fs::read_to_string("/etc/hostname").map_or_else(|_| "this machine".into(), |h| h.trim().to_string()),
        since: chrono::Utc::now(),
    };
    for _ in 0..3 {
        if create_as(zone, LOCK, &me).await? {
            return Ok(me);
        }
        let found = lock_state(zone, LOCK).await?;
        match &found {
            LockState::Free => continue,
            // Put in place by an earlier try of this very call (its answer lost on the way).
            LockState::Held(holder) if holder.token == me.token => return Ok(me),
            stale if stale.is_stale() => {
                if take_over(zone, LOCK, stale, &me, 0).await? {
                    return Ok(me);
                }
            }
            held => return Err(busy(zone, held.describe())),
        }
    }
    Err(busy(zone, "another compaction took the lock at the same time".into()))
}

/// Creates `path` holding `me`'s lock; `true` also when it already holds `me`'s token (this very
/// call's create, retried by the HDFS zone after its answer was lost).
async fn create_as<Z: RawZone>(zone: &Z, path: &str, me: &LockHolder) -> Result<bool, CompactError> {
    if zone.create_new(path, me.to_bytes(zone)?).await? {
        return Ok(true);
    }
    Ok(matches!(lock_state(zone, path).await?, LockState::Held(holder) if holder.token == me.token))
}

/// A take-over's claim can itself be left stale by a compaction that died while taking over;
/// taking that over goes one claim deeper. Each level needs another compaction to have died.
const TAKE_OVER_DEPTH: u32 = 3;

/// Replaces the stale file at `path` (the lock, or a take-over's claim) with `me`'s, if no other
/// compaction is taking it over and it is still there as it was; `false` when it did not (the
/// caller looks again). Two compactions that found the same stale lock must not both go on: one
/// removing the lock the other has just put in its place left two compactions running, each
/// holding "the" lock. So the taker first creates the file's take-over claim (only one can),
/// checks the file is still the one it found, replaces it, and removes the claim only then. No
/// file is removed by name alone: a claim found stale is taken over the same way, one level
/// deeper, since another compaction may have just removed and created it again.
async fn take_over<Z: RawZone>(
    zone: &Z,
    path: &str,
    stale: &LockState,
    me: &LockHolder,
    depth: u32,
) -> Result<bool, CompactError> {
    let claim = stale.take_over_claim(path);
    if !zone.create_new(&claim, me.to_bytes(zone)?).await? {
        match lock_state(zone, &claim).await? {
            // Created by this very call, its answer lost on the way (HDFS's create retried).
            LockState::Held(holder) if holder.token == me.token => {}
            LockState::Free => return Ok(false),
            claimant if claimant.is_stale() && depth + 1 == TAKE_OVER_DEPTH => {
                return Err(CompactError::TakeOverStuck {
                    zone: zone.describe(),
                    lock: zone.url_of(LOCK),
                    depth: TAKE_OVER_DEPTH,
                });
            }
            claimant if claimant.is_stale() => {
                tracing::warn!(claim = %claim, claimant = %claimant.describe(), "taking over a stale take-over claim");
                if !Box::pin(take_over(zone, &claim, &claimant, me, depth + 1)).await? {
                    return Ok(false);
                }
            }
            claimant => {
                return Err(busy(
                    zone,
                    format!(
                        "{}, taking over the stale lock of {} (its claim: {})",
                        claimant.describe(),
                        stale.describe(),
                        zone.url_of(&claim)
                    ),
                ));
            }
        }
    }
    // This compaction holds the claim: the file at `path` is its to replace, if unchanged.
    let replaced = async {
        if lock_state(zone, path).await? != *stale {
            // Taken over (or released and taken) since it was read: not this one's to remove.
            return Ok(false);
        }
        tracing::warn!(path, holder = %stale.describe(), "a stale compaction lock taken over");
        zone.remove_once(path).await?;
        create_as(zone, path, me).await
    }
    .await;
    // Released only once this compaction's file is in place: one that read the same stale file
    // and creates the claim after this finds the file changed. A claim that cannot be removed
    // is left to go stale (15 minutes), and does not undo what was done.
    if let Err(e) = zone.remove_once(&claim).await {
        tracing::warn!(claim = %claim, error = %e, "a take-over claim could not be removed: it goes stale in 15 minutes");
    }
    replaced
}

/// Writes the lock again with the time now, if it is still `lock`'s; `false` when another
/// compaction took it over (this one was thought dead).
async fn still_holding<Z: RawZone>(zone: &Z, lock: &LockHolder) -> Result<bool, CompactError> {
    match lock_state(zone, LOCK).await? {
        LockState::Held(holder) if holder.token == lock.token => {
            zone.put_atomic(LOCK, lock.to_bytes(zone)?).await?;
            Ok(true)
        }
        _ => Ok(false),
    }
}

/// Neighbouring files of one partition and epoch, and the file that replaces them.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Merge {
    pub inputs: Vec<String>,
    pub output: String,
}

#[derive(Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Plan {
    pub merges: Vec<Merge>,
    /// Files whose offsets another file of their epoch holds: left by a merge that stopped
    /// before it removed its inputs.
    pub leftovers: Vec<String>,
}

/// What a compaction did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct CompactionReport {
    /// Files merged, and the files they became.
    pub merged: usize,
    pub into: usize,
    pub leftovers_removed: usize,
    /// Files left as they were: files of another schema, which a merge does not mix, and runs
    /// with a file another compaction merged since the listing.
    pub skipped: usize,
    /// Files kept as they were because their merge failed (an unreadable file), and why the first
    /// one did: the other merges go on.
    pub failed: usize,
    pub first_failure: Option<String>,
    /// Stopped before its last merge: Ctrl-C (`timeout -s INT` in the DAG), or its lock taken
    /// over.
    pub interrupted: bool,
    pub elapsed_ms: u128,
}

/// A file and what its name says.
type Named<'a> = (PartFile, &'a ZoneFile);

/// Which files to merge: per directory (entity and date), partition and epoch, the files in
/// offset order, in runs of neighbouring small ones of at most [`MERGED_FILE_BYTES`], each run of
/// at least [`MIN_MERGE_FILES`]. The newest file of each is never merged: it holds the highest
/// offset, where a consumer resumes, and a consumer starting while a merge replaces it could list
/// neither the merge nor its inputs (no listing is a snapshot). A partition whose files overlap
/// other than by containment (which no consumer writes) is left alone.
#[must_use]
pub fn plan(files: &[ZoneFile]) -> Plan {
    let mut partitions: BTreeMap<(&str, i32, Epoch), Vec<Named<'_>>> = BTreeMap::new();
    for file in files {
        let Some(part) = PartFile::parse(&file.path) else {
            continue;
        };
        let dir = file.path.rsplit_once('/').map_or("", |(dir, _)| dir);
        partitions
            .entry((dir, part.partition, part.epoch))
            .or_default()
            .push((part, file));
    }
    let mut plan = Plan::default();
    for ((dir, ..), mut group) in partitions {
        // A file before the ones its range holds.
        group.sort_by_key(|(p, _)| (p.first_offset, std::cmp::Reverse(p.last_offset)));
        let mut kept: Vec<Named<'_>> = Vec::with_capacity(group.len());
        let mut leftovers = Vec::new();
        let mut tangled = false;
        for (part, file) in group {
            match kept.last() {
                Some((last, _)) if last.contains(part) => leftovers.push(file.path.clone()),
                Some((last, _)) if part.first_offset <= last.last_offset => tangled = true,
                _ => kept.push((part, file)),
            }
        }
        if tangled {
            tracing::warn!(dir, "raw-zone files of one partition overlap: not compacted");
            continue;
        }
        plan.leftovers.extend(leftovers);
        kept.pop();
        let mut run: Vec<Named<'_>> = Vec::new();
        let mut run_bytes = 0;
        let mut close = |run: &mut Vec<Named<'_>>, run_bytes: &mut u64| {
            if let (true, Some((first, _)), Some((last, _))) = (run.len() >= MIN_MERGE_FILES, run.first(), run.last()) {
                let whole = PartFile {
                    last_offset: last.last_offset,
                    ..*first
                };
                plan.merges.push(Merge {
                    inputs: run.iter().map(|(_, f)| f.path.clone()).collect(),
                    output: if dir.is_empty() {
                        whole.file_name()
                    } else {
                        format!("{dir}/{}", whole.file_name())
                    },
                });
            }
            run.clear();
            *run_bytes = 0;
        };
        for (part, file) in kept {
            if file.bytes >= SMALL_FILE_BYTES {
                close(&mut run, &mut run_bytes);
                continue;
            }
            if run_bytes + file.bytes > MERGED_FILE_BYTES {
                close(&mut run, &mut run_bytes);
            }
            run.push((part, file));
            run_bytes += file.bytes;
        }
        close(&mut run, &mut run_bytes);
    }
    plan
}

/// What [`compact`] would do to the zone as it is now; changes nothing (`lab compact --dry-run`).
pub async fn plan_of<Z: RawZone>(zone: &Z) -> Result<Plan, CompactError> {
    Ok(plan(&zone.list_sized("").await?))
}

/// Compacts the raw zone (see the module docs), holding its [`LOCK`]; once `stop` is cancelled
/// it does no further merge, releases the lock and reports what it did (`interrupted`).
pub async fn compact<Z: RawZone>(zone: &Z, stop: &CancellationToken) -> Result<CompactionReport, CompactError> {
    let started = Instant::now();
    let lock = take_lock(zone).await?;
    let compacted = compact_locked(zone, &lock, stop).await;
    // Not ours any more if it was taken over: the new holder's.
    if let Ok(LockState::Held(holder)) = lock_state(zone, LOCK).await
        && holder.token == lock.token
        && let Err(e) = zone.remove_once(LOCK).await
    {
        tracing::warn!(error = %e, "the compaction lock could not be removed: the next compaction takes it over once it is stale");
    }
    let mut report = compacted?;
    report.elapsed_ms = started.elapsed().as_millis();
    if report.merged + report.leftovers_removed > 0 {
        tracing::info!(zone = %zone.describe(), ?report, "raw zone compacted");
    }
    Ok(report)
}

async fn compact_locked<Z: RawZone>(
    zone: &Z,
    lock: &LockHolder,
    stop: &CancellationToken,
) -> Result<CompactionReport, CompactError> {
    let plan = plan_of(zone).await?;
    let mut report = CompactionReport::default();
    for leftover in &plan.leftovers {
        zone.remove(leftover).await?;
        report.leftovers_removed += 1;
    }
    for merge in &plan.merges {
        if stop.is_cancelled() {
            report.interrupted = true;
            break;
        }
        if !still_holding(zone, lock).await? {
            tracing::warn!("the compaction lock was taken over (this compaction was thought dead): stopping");
            report.interrupted = true;
            break;
        }
        let merged = match merge_files(zone, merge).await {
            Ok(merged) => merged,
            // One unreadable file must not stop every merge after it, run after run. The storage
            // itself failing stops at the lock's next write.
            Err(e) => {
                tracing::warn!(error = %e, output = %merge.output, "a merge failed: its files are kept as they are");
                report.failed += merge.inputs.len();
                report.first_failure.get_or_insert_with(|| e.to_string());
                continue;
            }
        };
        match merged {
            Some(bytes) => {
                zone.put_atomic(&merge.output, bytes).await?;
                for input in &merge.inputs {
                    zone.remove(input).await?;
                }
                report.merged += merge.inputs.len();
                report.into += 1;
            }
            None => report.skipped += merge.inputs.len(),
        }
    }
    Ok(report)
}

/// The merged file of `merge`'s inputs, or `None` when it is not to be written: an input is
/// gone since the listing (another compaction merged it) or the inputs are of two schemas.
async fn merge_files<Z: RawZone>(zone: &Z, merge: &Merge) -> Result<Option<Vec<u8>>, CompactError> {
    let mut inputs = Vec::with_capacity(merge.inputs.len());
    for path in &merge.inputs {
        match zone.read(path).await {
            Ok(bytes) => inputs.push((path.clone(), bytes)),
            Err(e) if e.is_not_found() => {
                tracing::info!(%path, "raw-zone file gone since the listing: its run is not merged");
                return Ok(None);
            }
            Err(e) => return Err(e.into()),
        }
    }
    let root = zone.describe();
    // Decoding and encoding Parquet is CPU work: off the async workers.
    tokio::task::spawn_blocking(move || merged(&root, &inputs))
        .await
        .map_err(|e| file_error(&zone.describe(), "merge into", &merge.output, e))?
}

fn file_error(root: &str, action: &'static str, path: &str, detail: impl ToString) -> CompactError {
    CompactError::File {
        root: root.to_string(),
        action,
        path: path.to_string(),
        detail: detail.to_string(),
    }
}

/// The rows of `inputs` (paths and their bytes), in order, as one Parquet file written as the
/// consumer writes its files; `None` when the inputs are not all of one schema (files of an older
/// `lab`).
fn merged(root: &str, inputs: &[(String, Bytes)]) -> Result<Option<Vec<u8>>, CompactError> {
    let mut out: Option<(datafusion::arrow::datatypes::SchemaRef, ArrowWriter<Vec<u8>>)> = None;
    let mut rows_in = 0i64;
    for (path, bytes) in inputs {
        let builder =
            ParquetRecordBatchReaderBuilder::try_new(bytes.clone()).map_err(|e| file_error(root, "read", path, e))?;
        rows_in += builder.metadata().file_metadata().num_rows();
        let schema = builder.schema().clone();
        let writer = match &mut out {
            Some((first, _)) if *first != schema => {
                tracing::warn!(file = %path, "raw-zone files of two schemas side by side: not merged");
                return Ok(None);
            }
            Some((_, w)) => w,
            None => {
                let props = writer_properties().map_err(|e| file_error(root, "write a merge of", path, e))?;
                let writer = ArrowWriter::try_new(Vec::new(), schema.clone(), Some(props))
                    .map_err(|e| file_error(root, "write a merge of", path, e))?;
                &mut out.insert((schema, writer)).1
            }
        };
        let reader = builder.build().map_err(|e| file_error(root, "read", path, e))?;
        for batch in reader {
            let batch = batch.map_err(|e| file_error(root, "read", path, e))?;
            writer
                .write(&batch)
                .map_err(|e| file_error(root, "write a merge of", path, e))?;
        }
    }
    let (Some((_, writer)), Some((first, _))) = (out, inputs.first()) else {
        return Ok(None);
    };
    let bytes = writer
        .into_inner()
        .map_err(|e| file_error(root, "write a merge of", first, e))?;
    // Parse what was encoded and count its rows: the inputs are removed once it is written.
    let check = ParquetRecordBatchReaderBuilder::try_new(Bytes::from(bytes.clone()))
        .map_err(|e| file_error(root, "read back a merge of", first, e))?;
    let rows_out = check.metadata().file_metadata().num_rows();
    if rows_out != rows_in {
        return Err(file_error(
            root,
            "merge",
            first,
            format!("{rows_in} rows in, {rows_out} written: nothing was removed"),
        ));
    }
    Ok(Some(bytes))
}

/// The records of the dataset in `sample` (one JSON file per entity), cleaned by the real
/// transform, written into `zone` in files of 20 records over three partitions per entity: a raw
/// zone as a consumer leaves it after a few minutes of rolling small files. Returns each file
/// written with its bytes. For the compaction's tests, here and on HDFS (`tests/batch_layer.rs`).
#[cfg(any(test, feature = "service-tests"))]
pub async fn sample_in_small_files<Z: RawZone>(
    zone: &Z,
    sample: &std::path::Path,
) -> Result<Vec<(String, Vec<u8>)>, Box<dyn std::error::Error + Send + Sync>> {
    use crate::dataset::Entity;
    use crate::pipeline::clean::clean;
    use crate::pipeline::part::encode_parquet;

    let epoch = Epoch::random();
    let mut written = Vec::new();
    for entity in Entity::ALL {
        let text = std::fs::read(sample.join(entity.file_name()))?;
        let mut by_partition: BTreeMap<i32, Vec<Vec<u8>>> = BTreeMap::new();
        let lines = text.split(|b| *b == b'\n').filter(|l| !l.is_empty());
        for (i, line) in (0i32..).zip(lines) {
            if let Ok(cleaned) = clean(entity, line) {
                by_partition.entry(i % 3).or_default().push(cleaned.json);
            }
        }
        for (partition, records) in by_partition {
            for (first, records) in (0i64..).step_by(20).zip(records.chunks(20)) {
                let offsets: Vec<i64> = (first..).take(records.len()).collect();
                let part = PartFile {
                    partition,
                    first_offset: first,
                    last_offset: first + offsets.len() as i64 - 1,
                    epoch,
                };
                let path = part.path(entity, "2026-12-07");
                let bytes = encode_parquet(entity, partition, &offsets, &records.join(&b'\n'))?;
                zone.put_atomic(&path, bytes.clone()).await?;
                written.push((path, bytes));
            }
        }
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::Entity;
    use crate::pipeline::batch::{ServingTarget, run_batch};
    use crate::storage::LocalRawZone;
    use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
    use std::collections::BTreeSet;
    use std::path::Path;
    use std::sync::Arc;

    fn file(partition: i32, first: i64, last: i64, bytes: u64) -> ZoneFile {
        let epoch: Epoch = "00000000000000aa".parse().unwrap();
        let part = PartFile {
            partition,
            first_offset: first,
            last_offset: last,
            epoch,
        };
        ZoneFile {
            path: part.path(Entity::Review, "2026-12-07"),
            bytes,
        }
    }

    /// Ten files of ten offsets each, of `bytes` each, on partition 0.
    fn ten(bytes: u64) -> Vec<ZoneFile> {
        (0..10).map(|i| file(0, i * 10, i * 10 + 9, bytes)).collect()
    }

    #[test]
    fn neighbouring_small_files_of_a_partition_merge_into_their_whole_range_but_the_newest() {
        let merged = plan(&ten(1_000));
        assert_eq!(merged.merges.len(), 1);
        // The newest file (offsets 90..99), where a consumer resumes, stays as it is.
        assert_eq!(merged.merges[0].inputs.len(), 9);
        assert_eq!(merged.merges[0].output, file(0, 0, 89, 0).path);
        assert!(merged.leftovers.is_empty());
        // Fewer than MIN_MERGE_FILES besides the newest: left for a later batch.
        assert_eq!(plan(&ten(1_000)[..MIN_MERGE_FILES]), Plan::default());
    }

    #[test]
    fn a_large_file_is_never_rewritten_and_cuts_a_run() {
        let mut files = ten(1_000);
        files[4].bytes = SMALL_FILE_BYTES;
        // Four small files before it, four after besides the newest: neither run is long enough.
        assert_eq!(plan(&files), Plan::default());
        let mut files: Vec<ZoneFile> = (0..20).map(|i| file(0, i * 10, i * 10 + 9, 1_000)).collect();
        files[9].bytes = SMALL_FILE_BYTES;
        let merges = plan(&files).merges;
        assert_eq!(merges.len(), 2);
        assert_eq!(merges[0].output, file(0, 0, 89, 0).path);
        assert_eq!(merges[1].output, file(0, 100, 189, 0).path);
    }

    #[test]
    fn a_merge_takes_at_most_merged_file_bytes() {
        let files: Vec<ZoneFile> = (0..24)
            .map(|i| file(0, i * 10, i * 10 + 9, MERGED_FILE_BYTES / 10))
            .collect();
        let merges = plan(&files).merges;
        // 10 files a merge, the last 3 and the newest left.
        assert_eq!(merges.iter().map(|m| m.inputs.len()).collect::<Vec<_>>(), vec![10, 10]);
    }

    #[test]
    fn partitions_epochs_and_dates_merge_apart() {
        let mut files = ten(1_000);
        let other_epoch = files.iter().map(|f| ZoneFile {
            path: f.path.replace("00000000000000aa", "00000000000000bb"),
            bytes: f.bytes,
        });
        let other_partition = (0..10).map(|i| file(1, i * 10, i * 10 + 9, 1_000));
        let other_date = ten(1_000).into_iter().map(|f| ZoneFile {
            path: f.path.replace("2026-12-07", "2026-12-08"),
            bytes: f.bytes,
        });
        files = files
            .iter()
            .cloned()
            .chain(other_epoch)
            .chain(other_partition)
            .chain(other_date)
            .collect();
        let plan = plan(&files);
        assert_eq!(plan.merges.len(), 4);
        for m in &plan.merges {
            let dir = m.output.rsplit_once('/').unwrap().0;
            let out = PartFile::parse(&m.output).unwrap();
            for input in &m.inputs {
                let p = PartFile::parse(input).unwrap();
                assert!(input.starts_with(dir) && out.contains(p), "{input} into {}", m.output);
            }
        }
    }

    #[test]
    fn inputs_left_beside_their_merge_are_leftovers_and_a_tangle_is_left_alone() {
        let mut files = ten(1_000);
        files.push(file(0, 0, 99, 50_000));
        let cleanup = plan(&files);
        assert_eq!(cleanup.merges, vec![]);
        assert_eq!(cleanup.leftovers.len(), 10);
        // Offsets 95..99 in two files that do not hold each other: no consumer writes that.
        let mut files = ten(1_000);
        files.push(file(0, 0, 99, 50_000));
        files.push(file(0, 95, 104, 1));
        assert_eq!(plan(&files), Plan::default());
    }

    async fn sample_zone(dir: &Path) -> LocalRawZone {
        let zone = LocalRawZone::new(dir);
        let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("datasets/sample");
        sample_in_small_files(&zone, &sample).await.unwrap();
        zone
    }

    /// Every serving table as sorted rows of text.
    async fn serving_tables(zone: &LocalRawZone, out: &Path) -> BTreeMap<String, Vec<String>> {
        if out.exists() {
            std::fs::remove_dir_all(out).unwrap();
        }
        let report = run_batch(zone, None, &ServingTarget::Parquet(out.to_path_buf()))
            .await
            .unwrap();
        let mut tables = BTreeMap::new();
        for table in report.tables.keys() {
            let file = std::fs::File::open(out.join(format!("{table}.parquet"))).unwrap();
            let mut rows = Vec::new();
            for batch in ParquetRecordBatchReaderBuilder::try_new(file).unwrap().build().unwrap() {
                let batch = batch.unwrap();
                let options = FormatOptions::default();
                let columns: Vec<ArrayFormatter> = batch
                    .columns()
                    .iter()
                    .map(|c| ArrayFormatter::try_new(c.as_ref(), &options).unwrap())
                    .collect();
                for row in 0..batch.num_rows() {
                    rows.push(
                        columns
                            .iter()
                            .map(|c| c.value(row).to_string())
                            .collect::<Vec<_>>()
                            .join("|"),
                    );
                }
            }
            rows.sort();
            tables.insert(table.clone(), rows);
        }
        tables
    }

    /// Equal tables, or which one differs and by how many rows (not thousands of rows printed).
    fn assert_same(got: &BTreeMap<String, Vec<String>>, want: &BTreeMap<String, Vec<String>>, when: &str) {
        assert_eq!(
            got.keys().collect::<Vec<_>>(),
            want.keys().collect::<Vec<_>>(),
            "{when}"
        );
        for (table, rows) in want {
            let other = &got[table];
            let missing = rows.iter().filter(|r| !other.contains(r)).count();
            assert!(
                other == rows,
                "{when}: {table} has {} rows against {}, {missing} of them missing",
                other.len(),
                rows.len()
            );
        }
    }

    fn zone_files(dir: &Path) -> usize {
        let mut n = 0;
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                } else if PartFile::parse(&p.to_string_lossy()).is_some() {
                    n += 1;
                }
            }
        }
        n
    }

    /// On the sample in small files: the compaction leaves fewer files, the same serving tables,
    /// and the same place for the consumer to resume each partition; stopped after writing a
    /// merge and before removing its inputs, the batch still reads each record once and the next
    /// compaction removes the inputs.
    #[tokio::test(flavor = "multi_thread")]
    async fn a_compacted_zone_gives_the_same_tables_and_resume_points() {
        let dir = tempfile::tempdir().unwrap();
        let zone_dir = dir.path().join("zone");
        let out = dir.path().join("serving");
        let zone = sample_zone(&zone_dir).await;
        let files_before = zone_files(&zone_dir);
        let tables = serving_tables(&zone, &out).await;
        assert!(tables["business_summary"].len() > 10, "{tables:?}");
        let resume_points = crate::pipeline::resume::files_by_epoch(&zone).await.unwrap();

        // A merge written, its inputs not yet removed (a crash between the two).
        let first = plan(&zone.list_sized("").await.unwrap()).merges.remove(0);
        let bytes = merge_files(&zone, &first).await.unwrap().unwrap();
        zone.put_atomic(&first.output, bytes).await.unwrap();
        assert_same(
            &serving_tables(&zone, &out).await,
            &tables,
            "with a merge beside its inputs",
        );

        // The dry run names what the compaction then removes and writes.
        let planned = plan_of(&zone).await.unwrap();
        let files_planned = zone_files(&zone_dir);
        let before_compaction: BTreeSet<String> = zone.list_files("").await.unwrap().into_iter().collect();
        let report = compact(&zone, &CancellationToken::new()).await.unwrap();
        let after_compaction: BTreeSet<String> = zone.list_files("").await.unwrap().into_iter().collect();
        assert_eq!(planned.leftovers.len(), first.inputs.len(), "{planned:?}");
        let removed: BTreeSet<String> = planned
            .merges
            .iter()
            .flat_map(|m| m.inputs.iter().cloned())
            .chain(planned.leftovers.iter().cloned())
            .collect();
        let written: BTreeSet<String> = planned.merges.iter().map(|m| m.output.clone()).collect();
        assert_eq!(
            before_compaction
                .difference(&after_compaction)
                .cloned()
                .collect::<BTreeSet<_>>(),
            removed
        );
        assert_eq!(
            after_compaction
                .difference(&before_compaction)
                .cloned()
                .collect::<BTreeSet<_>>(),
            written
        );
        assert_eq!(report.leftovers_removed, first.inputs.len(), "{report:?}");
        assert!(report.merged > 0 && report.into > 0, "{report:?}");
        let files_after = zone_files(&zone_dir);
        assert_eq!(
            files_after,
            files_planned - report.leftovers_removed - report.merged + report.into,
            "{report:?}"
        );
        // The reviews (25 files a partition) merge, but for each partition's newest file.
        assert!(
            files_after < files_before / 2,
            "{files_before} files before, {files_after} after: {report:?}"
        );
        assert_same(&serving_tables(&zone, &out).await, &tables, "after the compaction");
        assert_eq!(
            crate::pipeline::resume::files_by_epoch(&zone).await.unwrap(),
            resume_points
        );
        // Done: a second compaction finds nothing to do.
        let again = compact(&zone, &CancellationToken::new()).await.unwrap();
        assert_eq!((again.merged, again.leftovers_removed), (0, 0), "{again:?}");
    }

    /// A compaction that finds another one's lock does nothing and says who holds it; a lock
    /// older than [`LOCK_STALE`] (its compaction died) is taken over, and removed when done.
    #[tokio::test(flavor = "multi_thread")]
    async fn a_running_compactions_lock_is_respected_and_a_stale_one_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let zone_dir = dir.path().join("zone");
        let zone = sample_zone(&zone_dir).await;
        let files_before = zone_files(&zone_dir);
        let running = LockHolder {
            token: 7,
            pid: 4242,
            host: "elsewhere".into(),
            since: chrono::Utc::now() - chrono::TimeDelta::minutes(1),
        };
        zone.put_atomic(LOCK, serde_json::to_vec(&running).unwrap())
            .await
            .unwrap();
        let err = compact(&zone, &CancellationToken::new()).await.unwrap_err();
        assert!(
            matches!(err, CompactError::Busy { .. }) && err.to_string().contains("pid 4242 on elsewhere"),
            "{err}"
        );
        assert_eq!(zone_files(&zone_dir), files_before);
        assert_eq!(
            std::fs::read(zone_dir.join(LOCK)).unwrap(),
            serde_json::to_vec(&running).unwrap(),
            "its lock is left to it"
        );

        // A lock that names no holder (written by hand: a compaction puts its lock in place whole).
        std::fs::write(zone_dir.join(LOCK), b"").unwrap();
        let report = compact(&zone, &CancellationToken::new()).await.unwrap();
        assert!(report.merged > 0, "{report:?}");
        assert!(!zone_dir.join(LOCK).exists(), "the lock is removed when done");

        let zone_dir = dir.path().join("zone2");
        let zone = sample_zone(&zone_dir).await;
        let died = LockHolder {
            token: 8,
            pid: 4243,
            host: "elsewhere".into(),
            since: chrono::Utc::now() - LOCK_STALE - chrono::TimeDelta::minutes(1),
        };
        zone.put_atomic(LOCK, serde_json::to_vec(&died).unwrap()).await.unwrap();
        let report = compact(&zone, &CancellationToken::new()).await.unwrap();
        assert!(report.merged > 0, "{report:?}");
        assert!(!zone_dir.join(LOCK).exists(), "the lock is removed when done");
    }

    /// Two compactions that found the same stale lock: only one takes it over. The other, going
    /// on from what it read, neither removes the lock now in its place nor takes one itself;
    /// one that finds the take-over under way stops and says so; one that read a dead
    /// take-over's claim just as another took it over leaves that claim alone; a claim whose
    /// claimant died is taken over, then the lock; a claim holding this compaction's own token
    /// is its own; a chain of dead claims [`TAKE_OVER_DEPTH`] deep is an error saying what to
    /// remove. No claim is left behind.
    #[tokio::test(flavor = "multi_thread")]
    async fn two_compactions_that_found_the_same_stale_lock_never_both_take_it() {
        let dir = tempfile::tempdir().unwrap();
        let zone = LocalRawZone::new(dir.path().to_path_buf());
        let holder = |token: u64, age: chrono::TimeDelta| LockHolder {
            token,
            pid: 4240 + u32::try_from(token).unwrap(),
            host: "elsewhere".into(),
            since: chrono::Utc::now() - age,
        };
        let died = holder(1, LOCK_STALE + chrono::TimeDelta::minutes(1));
        zone.put_atomic(LOCK, serde_json::to_vec(&died).unwrap()).await.unwrap();
        let lock_now = || serde_json::from_slice::<LockHolder>(&std::fs::read(dir.path().join(LOCK)).unwrap()).unwrap();
        let claims = || -> Vec<String> {
            std::fs::read_dir(dir.path())
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| n.contains("take-over"))
                .collect()
        };

        // Both read the stale lock; the first takes it over.
        let seen_by_second = lock_state(&zone, LOCK).await.unwrap();
        assert!(seen_by_second.is_stale());
        let first = take_lock(&zone).await.unwrap();
        assert_eq!(lock_now().token, first.token);
        assert_eq!(claims(), Vec::<String>::new());
        // The second goes on from what it read.
        let second = holder(2, chrono::TimeDelta::zero());
        assert!(!take_over(&zone, LOCK, &seen_by_second, &second, 0).await.unwrap());
        assert_eq!(lock_now().token, first.token, "the first's lock is left in place");
        assert_eq!(claims(), Vec::<String>::new());
        let err = take_lock(&zone).await.unwrap_err();
        assert!(matches!(err, CompactError::Busy { .. }), "{err}");

        // The stale lock again, with a take-over of it under way.
        zone.put_atomic(LOCK, serde_json::to_vec(&died).unwrap()).await.unwrap();
        let claim = LockState::Held(died.clone()).take_over_claim(LOCK);
        let taking = holder(3, chrono::TimeDelta::zero());
        zone.put_atomic(&claim, serde_json::to_vec(&taking).unwrap())
            .await
            .unwrap();
        let err = take_lock(&zone).await.unwrap_err();
        assert!(
            err.to_string().contains("pid 4243 on elsewhere, last seen")
                && err
                    .to_string()
                    .contains("taking over the stale lock of pid 4241 on elsewhere"),
            "{err}"
        );
        assert_eq!(lock_now(), died, "the lock is left to the compaction taking it over");

        // That take-over died too: its claim is stale. A compaction reads the stale claim, and
        // right then another takes it over (its fresh claim in the same place): the first, going
        // on from what it read, leaves that claim and the lock alone, and stops.
        let taking_died = holder(3, LOCK_STALE + chrono::TimeDelta::minutes(2));
        zone.put_atomic(&claim, serde_json::to_vec(&taking_died).unwrap())
            .await
            .unwrap();
        let under_way = holder(4, chrono::TimeDelta::zero());
        let replaced = std::sync::atomic::AtomicBool::new(false);
        let racing = crate::storage::HookedZone {
            after_read: {
                let (claim, under_way) = (claim.clone(), serde_json::to_vec(&under_way).unwrap());
                Arc::new(move |zone, rel_path| {
                    if rel_path == claim && !replaced.swap(true, std::sync::atomic::Ordering::SeqCst) {
                        std::fs::write(zone.root().join(&claim), &under_way).unwrap();
                    }
                })
            },
            ..crate::storage::HookedZone::new(zone.clone())
        };
        let err = take_lock(&racing).await.unwrap_err();
        assert!(err.to_string().contains("pid 4244 on elsewhere"), "{err}");
        assert_eq!(lock_state(&zone, &claim).await.unwrap(), LockState::Held(under_way));
        assert_eq!(lock_now(), died);
        assert_eq!(claims(), vec![claim.clone()]);

        // With the dead take-over's claim there, a compaction takes the claim over, then the lock.
        zone.put_atomic(&claim, serde_json::to_vec(&taking_died).unwrap())
            .await
            .unwrap();
        let third = take_lock(&zone).await.unwrap();
        assert_eq!(lock_now().token, third.token);
        assert_eq!(claims(), Vec::<String>::new());

        // A claim that holds this compaction's own token (HDFS's create retried after its answer
        // was lost) is its own: the take-over goes on.
        zone.put_atomic(LOCK, serde_json::to_vec(&died).unwrap()).await.unwrap();
        let retried = holder(6, chrono::TimeDelta::zero());
        zone.put_atomic(&claim, serde_json::to_vec(&retried).unwrap())
            .await
            .unwrap();
        assert!(
            take_over(&zone, LOCK, &LockState::Held(died.clone()), &retried, 0)
                .await
                .unwrap()
        );
        assert_eq!(lock_now().token, retried.token);
        assert_eq!(claims(), Vec::<String>::new());

        // The lock, its claim and the claim's claim all left by compactions that died, and the
        // claim of that: too deep to take over.
        zone.put_atomic(LOCK, serde_json::to_vec(&died).unwrap()).await.unwrap();
        let (mut path, mut contents) = (LOCK.to_string(), LockState::Held(died.clone()));
        for token in 7..7 + u64::from(TAKE_OVER_DEPTH) {
            let claimant = holder(token, LOCK_STALE + chrono::TimeDelta::minutes(3));
            path = contents.take_over_claim(&path);
            zone.put_atomic(&path, serde_json::to_vec(&claimant).unwrap())
                .await
                .unwrap();
            contents = LockState::Held(claimant);
        }
        let err = take_lock(&zone).await.unwrap_err();
        assert!(
            matches!(
                err,
                CompactError::TakeOverStuck {
                    depth: TAKE_OVER_DEPTH,
                    ..
                }
            ) && err.to_string().contains(".compact.lock.take-over-*"),
            "{err}"
        );
        assert_eq!(lock_now(), died);
        assert_eq!(claims().len(), usize::try_from(TAKE_OVER_DEPTH).unwrap());
        // One level less deep is taken over.
        zone.remove(&path).await.unwrap();
        let fourth = take_lock(&zone).await.unwrap();
        assert_eq!(lock_now().token, fourth.token);
    }

    /// A lock written is stamped with the time of the write, not of the compaction's start (a
    /// take-over's claim, written minutes after its start on a failing HDFS, looked stale at once);
    /// a create that finds the compaction's own token in place (its create retried after the
    /// answer was lost) counts as made, another's does not.
    #[tokio::test]
    async fn a_lock_is_stamped_when_written_and_a_create_finding_its_own_token_succeeds() {
        let dir = tempfile::tempdir().unwrap();
        let zone = LocalRawZone::new(dir.path().to_path_buf());
        let me = LockHolder {
            token: 11,
            pid: 1,
            host: "here".into(),
            since: chrono::Utc::now() - LOCK_STALE - chrono::TimeDelta::minutes(5),
        };
        let written: LockHolder = serde_json::from_slice(&me.to_bytes(&zone).unwrap()).unwrap();
        assert!(!LockState::Held(written).is_stale());

        zone.put_atomic(LOCK, serde_json::to_vec(&me).unwrap()).await.unwrap();
        assert!(create_as(&zone, LOCK, &me).await.unwrap());
        let other = LockHolder {
            token: 12,
            ..me.clone()
        };
        assert!(!create_as(&zone, LOCK, &other).await.unwrap());
        std::fs::remove_file(dir.path().join(LOCK)).unwrap();
        assert!(create_as(&zone, LOCK, &other).await.unwrap());
    }

    /// A compaction whose lock another one took over stops before its next merge, says so, and
    /// leaves the new holder's lock; stopped by its caller (Ctrl-C), it does no merge at all and
    /// releases its lock.
    #[tokio::test(flavor = "multi_thread")]
    async fn a_compaction_stops_when_its_lock_is_taken_over_or_it_is_told_to() {
        let dir = tempfile::tempdir().unwrap();
        let zone_dir = dir.path().join("zone");
        let inner = sample_zone(&zone_dir).await;
        assert!(plan_of(&inner).await.unwrap().merges.len() > 1);
        // Another compaction takes the lock over right after the first merge is written (this
        // one thought dead).
        let taken = std::sync::atomic::AtomicBool::new(false);
        let zone = crate::storage::HookedZone {
            after_put: Arc::new(move |zone, rel_path| {
                if PartFile::parse(rel_path).is_some() && !taken.swap(true, std::sync::atomic::Ordering::SeqCst) {
                    let other = LockHolder {
                        token: 9,
                        pid: 4244,
                        host: "elsewhere".into(),
                        since: chrono::Utc::now(),
                    };
                    std::fs::write(zone.root().join(LOCK), serde_json::to_vec(&other).unwrap()).unwrap();
                }
            }),
            ..crate::storage::HookedZone::new(inner.clone())
        };
        let report = compact(&zone, &CancellationToken::new()).await.unwrap();
        assert_eq!((report.into, report.interrupted), (1, true), "{report:?}");
        let lock: LockHolder = serde_json::from_slice(&std::fs::read(zone_dir.join(LOCK)).unwrap()).unwrap();
        assert_eq!(lock.pid, 4244, "the new holder's lock is left to it");

        std::fs::remove_file(zone_dir.join(LOCK)).unwrap();
        let stop = CancellationToken::new();
        stop.cancel();
        let report = compact(&inner, &stop).await.unwrap();
        assert_eq!((report.merged, report.interrupted), (0, true), "{report:?}");
        assert!(!zone_dir.join(LOCK).exists(), "the lock is released");
    }

    /// A file no merge can read (not Parquet) fails its own merge only: every other merge goes
    /// on, its run's files are kept, and the report names it.
    #[tokio::test(flavor = "multi_thread")]
    async fn an_unreadable_file_fails_its_merge_only() {
        let dir = tempfile::tempdir().unwrap();
        let zone_dir = dir.path().join("zone");
        let zone = sample_zone(&zone_dir).await;
        let planned = plan_of(&zone).await.unwrap();
        assert!(planned.merges.len() > 1, "{planned:?}");
        let (broken, others) = planned.merges.split_first().unwrap();
        std::fs::write(zone_dir.join(&broken.inputs[0]), b"not parquet").unwrap();
        let report = compact(&zone, &CancellationToken::new()).await.unwrap();
        assert_eq!(report.failed, broken.inputs.len(), "{report:?}");
        assert!(
            report
                .first_failure
                .as_deref()
                .is_some_and(|f| f.contains(&broken.inputs[0])),
            "{report:?}"
        );
        assert_eq!(
            report.merged,
            others.iter().map(|m| m.inputs.len()).sum::<usize>(),
            "{report:?}"
        );
        for input in &broken.inputs {
            assert!(zone_dir.join(input).exists(), "{input} was removed");
        }
    }
}
