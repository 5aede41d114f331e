//! The raw zone: where the consumer lands Parquet files and the batch reads them.
//!
//! Layout: `<root>/<entity>/date=YYYY-MM-DD/part-<partition>-<firstOffset>-<lastOffset>.parquet`.
//! Writers go through [`RawZone::put_atomic`]: a file is either absent or complete, never partial,
//! which is what lets the consumer commit Kafka offsets right after a put returns.

mod hdfs;
mod local;

pub use hdfs::{HdfsRawZone, RetryPolicy, split_hdfs_url};
pub use local::LocalRawZone;

use std::future::Future;
use std::path::Path;

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

/// A place the raw zone can live (a local directory now; HDFS behind the same trait).
pub trait RawZone: Send + Sync + 'static {
    /// Writes `data` to `rel_path` so that readers see all of it or nothing, and it survives a crash
    /// once this returns.
    fn put_atomic(&self, rel_path: &str, data: Vec<u8>) -> impl Future<Output = Result<(), StorageError>> + Send;

    /// Paths (relative to the root) of the complete files under `rel_dir`, recursively; empty if it does not exist.
    fn list_files(&self, rel_dir: &str) -> impl Future<Output = Result<Vec<String>, StorageError>> + Send;

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
    pub fn open(location: &Path) -> Result<Self, StorageError> {
        let text = location.to_string_lossy();
        if text.starts_with("hdfs://") {
            Ok(Self::Hdfs(HdfsRawZone::from_url(&text)?))
        } else if text.contains("://") {
            Err(StorageError::BadLocation(text.into_owned()))
        } else {
            Ok(Self::Local(LocalRawZone::new(location)))
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

    async fn list_files(&self, rel_dir: &str) -> Result<Vec<String>, StorageError> {
        match self {
            Self::Local(z) => z.list_files(rel_dir).await,
            Self::Hdfs(z) => z.list_files(rel_dir).await,
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

/// Name of a raw-zone file, parsed back: what part of which Kafka partition it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartFile {
    pub partition: i32,
    pub first_offset: i64,
    pub last_offset: i64,
}

impl PartFile {
    /// `<entity>/date=<date>/part-<p>-<first>-<last>.parquet`
    #[must_use]
    pub fn path(self, entity: Entity, date: &str) -> String {
        format!(
            "{}/date={date}/part-{}-{:020}-{:020}.parquet",
            entity.name(),
            self.partition,
            self.first_offset,
            self.last_offset
        )
    }

    /// Parses the file name part of a raw-zone path; `None` for anything else (temp files, strays).
    #[must_use]
    pub fn parse(path: &str) -> Option<PartFile> {
        let name = path.rsplit('/').next()?;
        let stem = name.strip_prefix("part-")?.strip_suffix(".parquet")?;
        let mut fields = stem.splitn(3, '-');
        let partition = fields.next()?.parse().ok()?;
        let first_offset = fields.next()?.parse().ok()?;
        let last_offset = fields.next()?.parse().ok()?;
        (first_offset <= last_offset).then_some(PartFile {
            partition,
            first_offset,
            last_offset,
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
        };
        let path = p.path(Entity::Review, "2026-11-24");
        assert_eq!(
            path,
            "review/date=2026-11-24/part-2-00000000000000000010-00000000000000000099.parquet"
        );
        assert_eq!(PartFile::parse(&path), Some(p));
        assert_eq!(PartFile::parse("review/date=x/.part-1-1-2.parquet.tmp"), None);
        assert_eq!(PartFile::parse("review/part-1-9-2.parquet"), None);
        assert_eq!(PartFile::parse("review/notes.txt"), None);
    }
}
