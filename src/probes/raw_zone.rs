//! The raw zone when it is a local directory (the embedded lab): what the HDFS view shows of a
//! NameNode's namespace, read from the file system itself — files, bytes and date partitions per
//! entity, and the newest file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::{LabService, ProbeError, Probed};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LocalZoneSnapshot {
    /// The lab's raw-zone directory (`<raw zone>/<topic prefix>`).
    pub path: String,
    pub entities: Vec<EntityFiles>,
    /// Modification time of the newest data file.
    pub newest: Option<chrono::DateTime<chrono::Utc>>,
}

impl LocalZoneSnapshot {
    #[must_use]
    pub fn files(&self) -> u64 {
        self.entities.iter().map(|e| e.files).sum()
    }

    #[must_use]
    pub fn bytes(&self) -> u64 {
        self.entities.iter().map(|e| e.bytes).sum()
    }
}

/// One entity's directory: its totals and its `date=` partitions.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EntityFiles {
    pub entity: String,
    pub files: u64,
    pub bytes: u64,
    /// `date=YYYY-MM-DD` partition → (files, bytes).
    pub dates: BTreeMap<String, (u64, u64)>,
}

pub struct LocalZoneProbe {
    dir: PathBuf,
}

impl LocalZoneProbe {
    /// The raw zone of `topic_prefix` under the local directory `root`.
    #[must_use]
    pub fn new(root: &Path, topic_prefix: &str) -> Self {
        Self {
            dir: root.join(topic_prefix),
        }
    }

    pub async fn poll(&mut self) -> Probed<LocalZoneSnapshot> {
        let started = Instant::now();
        let dir = self.dir.clone();
        let result = match tokio::task::spawn_blocking(move || read(&dir)).await {
            Ok(r) => r,
            Err(e) => Err(ProbeError::Other {
                service: LabService::Hdfs,
                detail: format!("raw-zone probe task failed: {e}"),
            }),
        };
        Probed::from_result(result.map(|snap| (snap, Vec::new())), started)
    }
}

/// Walks `<dir>/<entity>/date=<date>/*.parquet`. A directory not created yet is an empty zone
/// (the consumer creates it with its first file); anything else unreadable is an error.
fn read(dir: &Path) -> Result<LocalZoneSnapshot, ProbeError> {
    let failed = |what: &Path, e: std::io::Error| ProbeError::Other {
        service: LabService::Hdfs,
        detail: format!("cannot read the raw zone {}: {e}", what.display()),
    };
    let mut snap = LocalZoneSnapshot {
        path: dir.display().to_string(),
        ..LocalZoneSnapshot::default()
    };
    let entities = match std::fs::read_dir(dir) {
        Ok(it) => it,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(snap),
        Err(e) => return Err(failed(dir, e)),
    };
    for entity in entities {
        let entity = entity.map_err(|e| failed(dir, e))?;
        if !entity.file_type().map_err(|e| failed(&entity.path(), e))?.is_dir() {
            continue;
        }
        let mut files = EntityFiles {
            entity: entity.file_name().to_string_lossy().into_owned(),
            ..EntityFiles::default()
        };
        for date in std::fs::read_dir(entity.path()).map_err(|e| failed(&entity.path(), e))? {
            let date = date.map_err(|e| failed(&entity.path(), e))?;
            let name = date.file_name().to_string_lossy().into_owned();
            let Some(day) = name.strip_prefix("date=") else {
                continue;
            };
            for file in std::fs::read_dir(date.path()).map_err(|e| failed(&date.path(), e))? {
                let file = file.map_err(|e| failed(&date.path(), e))?;
                // Only finished data files: the consumer writes under a temporary name first.
                if crate::storage::PartFile::parse(&file.file_name().to_string_lossy()).is_none() {
                    continue;
                }
                let meta = match file.metadata() {
                    Ok(meta) => meta,
                    // Merged into another file since the listing (a compaction).
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(failed(&file.path(), e)),
                };
                let entry = files.dates.entry(day.to_string()).or_default();
                entry.0 += 1;
                entry.1 += meta.len();
                files.files += 1;
                files.bytes += meta.len();
                if let Ok(modified) = meta.modified() {
                    let modified = chrono::DateTime::<chrono::Utc>::from(modified);
                    snap.newest = snap.newest.max(Some(modified));
                }
            }
        }
        snap.entities.push(files);
    }
    snap.entities.sort_by(|a, b| a.entity.cmp(&b.entity));
    Ok(snap)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn counts_data_files_per_entity_and_date_and_skips_the_rest() {
        let root = tempfile::tempdir().unwrap();
        let mut probe = LocalZoneProbe::new(root.path(), "yelp");
        let empty = probe.poll().await;
        assert_eq!(empty.status.health, super::super::Health::Up, "{:?}", empty.status);
        assert_eq!(empty.detail.unwrap().files(), 0, "no directory yet: an empty zone");

        let day = root.path().join("yelp/review/date=2026-12-03");
        std::fs::create_dir_all(&day).unwrap();
        std::fs::write(
            day.join("part-0-00000000000000000000-00000000000000000009-00000000000000a7.parquet"),
            [0u8; 100],
        )
        .unwrap();
        std::fs::write(
            day.join("part-1-00000000000000000000-00000000000000000004-00000000000000a7.parquet"),
            [0u8; 50],
        )
        .unwrap();
        std::fs::write(day.join(".part-2.tmp"), [0u8; 999]).unwrap();
        let other = root.path().join("yelp/business/date=2026-12-02");
        std::fs::create_dir_all(&other).unwrap();
        std::fs::write(
            other.join("part-0-00000000000000000000-00000000000000000000-00000000000000a7.parquet"),
            [0u8; 10],
        )
        .unwrap();

        let snap = probe.poll().await.detail.unwrap();
        assert_eq!((snap.files(), snap.bytes()), (3, 160));
        let review = snap.entities.iter().find(|e| e.entity == "review").unwrap();
        assert_eq!(review.dates.get("2026-12-03"), Some(&(2, 150)));
        assert_eq!(snap.entities[0].entity, "business", "sorted by entity");
        assert!(snap.newest.is_some());
    }
}
