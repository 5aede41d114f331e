//! The raw zone: where the consumer lands Parquet files and the batch reads them.
//!
//! Layout: `<root>/<entity>/date=YYYY-MM-DD/part-<partition>-<firstOffset>-<lastOffset>.parquet`.
//! Writers go through [`RawZone::put_atomic`]: a file is either absent or complete, never partial,
//! which is what lets the consumer commit Kafka offsets right after a put returns.

mod local;

pub use local::LocalRawZone;

use std::future::Future;

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
