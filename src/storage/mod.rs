//! The raw zone: where the consumer lands Parquet files and the batch reads them.
//!
//! Layout: `<location>/<topic prefix>/<entity>/date=YYYY-MM-DD/part-<partition>-<firstOffset>-<lastOffset>-<epoch>.parquet`.
//! - The topic prefix keeps two labs (two prefixes) on one raw zone apart: each reads and writes
//!   only its own directory ([`AnyRawZone::open`] roots a zone there).
//! - The epoch names the incarnation of the topic the offsets belong to (see [`Epoch`]): a topic
//!   recreated on a reset broker restarts at offset 0, and its files must neither collide with nor
//!   be mistaken for the files of the topic it replaced.
//!
//! Writers go through [`RawZone::put_atomic`]: a file is either absent or complete, never partial,
//! which is what lets the consumer commit Kafka offsets right after a put returns.

mod hdfs;
mod local;

pub(crate) use hdfs::is_not_found as hdfs_not_found;
pub use hdfs::{HdfsRawZone, RetryPolicy, split_hdfs_url};
#[cfg(test)]
pub(crate) use local::HookedZone;
pub use local::LocalRawZone;

use std::future::Future;
use std::path::Path;

use bytes::Bytes;
use datafusion::prelude::SessionContext;

use crate::dataset::Entity;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error(
        "raw zone {root}: cannot {action} {path}: {source}\ncheck that the directory exists, is writable and has free space"
    )]
    Io {
        root: String,
        action: &'static str,
        path: String,
        source: std::io::Error,
    },
    #[error(
        "raw zone {root}: cannot {action} {path}: {source}\nis the HDFS NameNode running and reachable (lab up, lab status)? \
         the lab retried with backoff for about a minute before giving up; rerun the stage once HDFS is back, nothing was lost"
    )]
    Hdfs {
        root: String,
        action: &'static str,
        path: String,
        source: Box<hdfs_native::HdfsError>,
    },
    #[error("raw zone location {0:?} is not valid: use a directory or hdfs://host:port/dir")]
    BadLocation(String),
}

/// A raw-zone file: its path relative to the zone and its size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneFile {
    pub path: String,
    pub bytes: u64,
}

impl StorageError {
    /// Whether the file acted on does not exist (removed since it was listed).
    #[must_use]
    pub fn is_not_found(&self) -> bool {
        match self {
            Self::Io { source, .. } => source.kind() == std::io::ErrorKind::NotFound,
            Self::Hdfs { source, .. } => hdfs_not_found(source),
            Self::BadLocation(_) => false,
        }
    }
}

/// A place the raw zone can live (a local directory now; HDFS behind the same trait).
pub trait RawZone: Clone + Send + Sync + 'static {
    /// Writes `data` to `rel_path` so that readers see all of it or nothing, and it survives a crash
    /// once this returns.
    fn put_atomic(&self, rel_path: &str, data: Vec<u8>) -> impl Future<Output = Result<(), StorageError>> + Send;

    /// The complete files under `rel_dir` (paths relative to the root, sorted) with their sizes,
    /// recursively; empty if it does not exist.
    fn list_sized(&self, rel_dir: &str) -> impl Future<Output = Result<Vec<ZoneFile>, StorageError>> + Send;

    /// Paths (relative to the root) of the complete files under `rel_dir`, recursively; empty if it does not exist.
    fn list_files(&self, rel_dir: &str) -> impl Future<Output = Result<Vec<String>, StorageError>> + Send {
        async move { Ok(self.list_sized(rel_dir).await?.into_iter().map(|f| f.path).collect()) }
    }

    /// The whole of a file (the compaction reads files of a few MiB).
    fn read(&self, rel_path: &str) -> impl Future<Output = Result<Bytes, StorageError>> + Send;

    /// Removes a file; one already gone is no error (two compactions may race to remove it).
    fn remove(&self, rel_path: &str) -> impl Future<Output = Result<(), StorageError>> + Send;

    /// Removes a file with one request, never retried: for names another process may create
    /// again at any moment (the compaction's lock and its take-over claims), where a retried
    /// delete whose first answer was lost would remove the new file. Where nothing is retried (a
    /// local directory), [`RawZone::remove`].
    fn remove_once(&self, rel_path: &str) -> impl Future<Output = Result<(), StorageError>> + Send {
        self.remove(rel_path)
    }

    /// Creates `rel_path` holding `data` unless a file of that name exists (then `false`): of
    /// several callers at once, one gets `true` (the compaction's lock).
    fn create_new(&self, rel_path: &str, data: Vec<u8>) -> impl Future<Output = Result<bool, StorageError>> + Send;

    /// URL of a file for DataFusion (`file:///…`, later `hdfs://…`).
    fn url_of(&self, rel_path: &str) -> String;

    /// Human-readable location, for messages.
    fn describe(&self) -> String;

    /// Lets DataFusion read [`RawZone::url_of`] URLs (local files need nothing).
    fn register_with(&self, _ctx: &SessionContext) -> Result<(), StorageError> {
        Ok(())
    }
}

/// The raw zone the configuration names: a local directory or `hdfs://host:port/dir`.
#[derive(Debug, Clone)]
pub enum AnyRawZone {
    Local(LocalRawZone),
    Hdfs(HdfsRawZone),
}

impl AnyRawZone {
    /// The raw zone of the lab whose topics start with `topic_prefix`: the directory
    /// `<location>/<topic_prefix>` of a local directory or `hdfs://host:port/dir`.
    pub fn open(location: &Path, topic_prefix: &str) -> Result<Self, StorageError> {
        let text = location.to_string_lossy();
        if text.starts_with("hdfs://") {
            let url = format!("{}/{topic_prefix}", text.trim_end_matches('/'));
            Ok(Self::Hdfs(HdfsRawZone::from_url(&url)?))
        } else if text.contains("://") {
            Err(StorageError::BadLocation(text.into_owned()))
        } else {
            Ok(Self::Local(LocalRawZone::new(location.join(topic_prefix))))
        }
    }
}

impl RawZone for AnyRawZone {
    async fn put_atomic(&self, rel_path: &str, data: Vec<u8>) -> Result<(), StorageError> {
        match self {
            Self::Local(z) => z.put_atomic(rel_path, data).await,
            Self::Hdfs(z) => z.put_atomic(rel_path, data).await,
        }
    }

    async fn list_sized(&self, rel_dir: &str) -> Result<Vec<ZoneFile>, StorageError> {
        match self {
            Self::Local(z) => z.list_sized(rel_dir).await,
            Self::Hdfs(z) => z.list_sized(rel_dir).await,
        }
    }

    async fn read(&self, rel_path: &str) -> Result<Bytes, StorageError> {
        match self {
            Self::Local(z) => z.read(rel_path).await,
            Self::Hdfs(z) => z.read(rel_path).await,
        }
    }

    async fn remove(&self, rel_path: &str) -> Result<(), StorageError> {
        match self {
            Self::Local(z) => z.remove(rel_path).await,
            Self::Hdfs(z) => z.remove(rel_path).await,
        }
    }

    async fn remove_once(&self, rel_path: &str) -> Result<(), StorageError> {
        match self {
            Self::Local(z) => z.remove_once(rel_path).await,
            Self::Hdfs(z) => z.remove_once(rel_path).await,
        }
    }

    async fn create_new(&self, rel_path: &str, data: Vec<u8>) -> Result<bool, StorageError> {
        match self {
            Self::Local(z) => z.create_new(rel_path, data).await,
            Self::Hdfs(z) => z.create_new(rel_path, data).await,
        }
    }

    fn url_of(&self, rel_path: &str) -> String {
        match self {
            Self::Local(z) => z.url_of(rel_path),
            Self::Hdfs(z) => z.url_of(rel_path),
        }
    }

    fn describe(&self) -> String {
        match self {
            Self::Local(z) => z.describe(),
            Self::Hdfs(z) => z.describe(),
        }
    }

    fn register_with(&self, ctx: &SessionContext) -> Result<(), StorageError> {
        match self {
            Self::Local(z) => z.register_with(ctx),
            Self::Hdfs(z) => z.register_with(ctx),
        }
    }
}

/// One incarnation of a topic partition, as the raw zone knows it.
///
/// Kafka offsets identify a record only within one incarnation of a topic: a topic deleted and
/// created again, or a broker reset to an empty volume, starts again at offset 0. Kafka's own
/// answer, topic IDs, is not available through the client (rdkafka has no DescribeTopics) nor on
/// every broker (the test broker returns the null ID), so the consumer keeps its own marker: a
/// random epoch chosen when it first lands a partition, written into every raw-zone file name of
/// that partition and into the metadata of every offset it commits for it. The committed offsets
/// live on the broker and die with the topic or the broker, so a partition whose group commit
/// carries epoch E is the incarnation whose files carry E; one with no commit is a new incarnation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Epoch(u64);

impl Epoch {
    /// What the consumer writes into its offset commits' metadata, before the epoch's hex digits.
    const TAG: &'static str = "lab.raw-zone.epoch=";

    /// A fresh epoch for a partition the raw zone has no record of.
    #[must_use]
    pub fn random() -> Self {
        Self(rand::random())
    }

    /// The offset-commit metadata naming this epoch.
    #[must_use]
    pub fn commit_metadata(self) -> String {
        format!("{}{self}", Self::TAG)
    }

    /// The epoch named by offset-commit metadata; `None` for metadata the consumer did not write.
    #[must_use]
    pub fn from_commit_metadata(metadata: &str) -> Option<Self> {
        metadata.strip_prefix(Self::TAG)?.parse().ok()
    }
}

impl std::fmt::Display for Epoch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl std::str::FromStr for Epoch {
    type Err = std::num::ParseIntError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() != 16 {
            // Make the error a ParseIntError too: only the canonical form names an epoch.
            return u64::from_str_radix("", 16).map(Self);
        }
        u64::from_str_radix(s, 16).map(Self)
    }
}

/// Name of a raw-zone file, parsed back: what part of which Kafka partition it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartFile {
    pub partition: i32,
    pub first_offset: i64,
    pub last_offset: i64,
    pub epoch: Epoch,
}

impl PartFile {
    /// `<entity>/date=<date>/part-<p>-<first>-<last>-<epoch>.parquet`
    #[must_use]
    pub fn path(self, entity: Entity, date: &str) -> String {
        format!("{}/date={date}/{}", entity.name(), self.file_name())
    }

    /// `part-<p>-<first>-<last>-<epoch>.parquet`
    #[must_use]
    pub fn file_name(self) -> String {
        format!(
            "part-{}-{:020}-{:020}-{}.parquet",
            self.partition, self.first_offset, self.last_offset, self.epoch
        )
    }

    /// Whether every offset of `other` is one of this file's.
    #[must_use]
    pub fn contains(self, other: PartFile) -> bool {
        self.partition == other.partition
            && self.epoch == other.epoch
            && self.first_offset <= other.first_offset
            && other.last_offset <= self.last_offset
    }

    /// Parses the file name part of a raw-zone path; `None` for anything else (temp files, strays).
    #[must_use]
    pub fn parse(path: &str) -> Option<PartFile> {
        let name = path.rsplit('/').next()?;
        let stem = name.strip_prefix("part-")?.strip_suffix(".parquet")?;
        let mut fields = stem.splitn(4, '-');
        let partition = fields.next()?.parse().ok()?;
        let first_offset = fields.next()?.parse().ok()?;
        let last_offset = fields.next()?.parse().ok()?;
        let epoch = fields.next()?.parse().ok()?;
        (first_offset <= last_offset).then_some(PartFile {
            partition,
            first_offset,
            last_offset,
            epoch,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn part_file_names_round_trip() {
        let p = PartFile {
            partition: 2,
            first_offset: 10,
            last_offset: 99,
            epoch: Epoch(0xab),
        };
        let path = p.path(Entity::Review, "2026-11-24");
        assert_eq!(
            path,
            "review/date=2026-11-24/part-2-00000000000000000010-00000000000000000099-00000000000000ab.parquet"
        );
        assert_eq!(PartFile::parse(&path), Some(p));
        assert_eq!(
            PartFile::parse("review/date=x/.part-1-1-2-00000000000000ab.parquet.tmp"),
            None
        );
        assert_eq!(PartFile::parse("review/part-1-9-2-00000000000000ab.parquet"), None);
        // Files of the layout before epochs: not this lab's, never read or skipped over.
        assert_eq!(PartFile::parse("review/part-1-1-2.parquet"), None);
        assert_eq!(PartFile::parse("review/part-1-1-2-ab.parquet"), None);
        assert_eq!(PartFile::parse("review/notes.txt"), None);
    }

    #[test]
    fn epochs_round_trip_through_commit_metadata() {
        let e = Epoch::random();
        assert_eq!(Epoch::from_commit_metadata(&e.commit_metadata()), Some(e));
        assert_eq!(Epoch::from_commit_metadata(""), None);
        assert_eq!(Epoch::from_commit_metadata("lab.raw-zone.epoch=xyz"), None);
        assert_eq!(Epoch::from_commit_metadata("something a tool wrote"), None);
    }

    #[test]
    fn a_zone_is_rooted_at_its_topic_prefix() {
        let Ok(AnyRawZone::Local(z)) = AnyRawZone::open(Path::new("/data/raw"), "yelp") else {
            panic!("a local zone");
        };
        assert_eq!(z.root(), Path::new("/data/raw/yelp"));
        let Ok(AnyRawZone::Hdfs(z)) = AnyRawZone::open(Path::new("hdfs://127.0.0.1:9000/lab/raw/"), "b") else {
            panic!("an HDFS zone");
        };
        assert!(z.describe().ends_with("/lab/raw/b"), "{}", z.describe());
    }
}
