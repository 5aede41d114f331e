//! Raw zone on a local directory.

use std::io::Write;
use std::path::{Path, PathBuf};

use bytes::Bytes;

use super::{RawZone, StorageError, ZoneFile};

#[derive(Debug, Clone)]
pub struct LocalRawZone {
    root: PathBuf,
}

impl LocalRawZone {
    #[must_use]
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    #[must_use]
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn err(&self, action: &'static str, path: &Path, source: std::io::Error) -> StorageError {
        StorageError::Io {
            root: self.root.display().to_string(),
            action,
            path: path.display().to_string(),
            source,
        }
    }

    /// [`RawZone::put_atomic`], off the async workers.
    fn put_blocking(&self, rel_path: &str, data: &[u8]) -> Result<(), StorageError> {
        let target = self.root.join(rel_path);
        let dir = target.parent().unwrap_or(&self.root).to_path_buf();
        std::fs::create_dir_all(&dir).map_err(|e| self.err("create directory", &dir, e))?;
        let file_name = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        // Hidden and with a foreign extension, so neither listings nor DataFusion ever pick it up.
        let tmp = dir.join(format!(".{file_name}.{}.tmp", std::process::id()));
        let mut file = std::fs::File::create(&tmp).map_err(|e| self.err("create", &tmp, e))?;
        file.write_all(data).map_err(|e| self.err("write", &tmp, e))?;
        file.sync_all().map_err(|e| self.err("sync", &tmp, e))?;
        drop(file);
        std::fs::rename(&tmp, &target).map_err(|e| self.err("rename into", &target, e))?;
        // The rename is durable only once the directory entry is.
        std::fs::File::open(&dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| self.err("sync directory", &dir, e))
    }

    fn list_blocking(&self, rel_dir: &str) -> Result<Vec<ZoneFile>, StorageError> {
        let mut out = Vec::new();
        let mut stack = vec![self.root.join(rel_dir)];
        while let Some(dir) = stack.pop() {
            let entries = match std::fs::read_dir(&dir) {
                Ok(entries) => entries,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(self.err("list", &dir, e)),
            };
            for entry in entries {
                let entry = entry.map_err(|e| self.err("list", &dir, e))?;
                let path = entry.path();
                let name = entry.file_name();
                if name.to_string_lossy().starts_with('.') {
                    continue; // temp files of writers in flight
                }
                let metadata = match std::fs::metadata(&path) {
                    Ok(metadata) => metadata,
                    // Removed since the directory was read (merged by a compaction).
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(self.err("list", &path, e)),
                };
                if metadata.is_dir() {
                    stack.push(path);
                } else if let Ok(rel) = path.strip_prefix(&self.root) {
                    out.push(ZoneFile {
                        path: rel.to_string_lossy().replace('\\', "/"),
                        bytes: metadata.len(),
                    });
                }
            }
        }
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(out)
    }
}

impl RawZone for LocalRawZone {
    async fn put_atomic(&self, rel_path: &str, data: Vec<u8>) -> Result<(), StorageError> {
        let this = self.clone();
        let rel_path = rel_path.to_string();
        tokio::task::spawn_blocking(move || this.put_blocking(&rel_path, &data))
            .await
            .unwrap_or_else(|join| Err(self.err("write", Path::new("?"), std::io::Error::other(join))))
    }

    async fn list_sized(&self, rel_dir: &str) -> Result<Vec<ZoneFile>, StorageError> {
        let this = self.clone();
        let rel_dir = rel_dir.to_string();
        tokio::task::spawn_blocking(move || this.list_blocking(&rel_dir))
            .await
            .unwrap_or_else(|join| Err(self.err("list", Path::new("?"), std::io::Error::other(join))))
    }

    async fn read(&self, rel_path: &str) -> Result<Bytes, StorageError> {
        let path = self.root.join(rel_path);
        match tokio::fs::read(&path).await {
            Ok(data) => Ok(Bytes::from(data)),
            Err(e) => Err(self.err("read", &path, e)),
        }
    }

    async fn remove(&self, rel_path: &str) -> Result<(), StorageError> {
        let path = self.root.join(rel_path);
        match tokio::fs::remove_file(&path).await {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(self.err("remove", &path, e)),
            _ => Ok(()),
        }
    }

    async fn create_new(&self, rel_path: &str, data: Vec<u8>) -> Result<bool, StorageError> {
        let this = self.clone();
        let target = self.root.join(rel_path);
        tokio::task::spawn_blocking(move || {
            let dir = target.parent().unwrap_or(&this.root).to_path_buf();
            std::fs::create_dir_all(&dir).map_err(|e| this.err("create directory", &dir, e))?;
            let name = target
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            // Written whole under a name of its own, then linked into place: a link refuses an
            // existing name, so the file is never seen half-written and only one caller wins.
            let tmp = dir.join(format!(".{name}.{}.{}.tmp", std::process::id(), rand::random::<u32>()));
            let mut file = std::fs::File::create(&tmp).map_err(|e| this.err("create", &tmp, e))?;
            file.write_all(&data)
                .and_then(|()| file.sync_all())
                .map_err(|e| this.err("write", &tmp, e))?;
            drop(file);
            let linked = std::fs::hard_link(&tmp, &target);
            if let Err(e) = std::fs::remove_file(&tmp) {
                tracing::debug!(tmp = %tmp.display(), error = %e, "could not remove a temp file");
            }
            match linked {
                Ok(()) => Ok(true),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
                Err(e) => Err(this.err("link into place", &target, e)),
            }
        })
        .await
        .unwrap_or_else(|join| Err(self.err("create", Path::new(rel_path), std::io::Error::other(join))))
    }

    fn url_of(&self, rel_path: &str) -> String {
        let abs = std::path::absolute(self.root.join(rel_path)).unwrap_or_else(|_| self.root.join(rel_path));
        format!("file://{}", abs.display())
    }

    fn describe(&self) -> String {
        self.root.display().to_string()
    }
}

/// A local raw zone for tests, where something happens right after a listing, a put or a read
/// (a compaction merging files away, another compaction taking a lock over): `after_list` gets
/// the zone, the directory listed and the listing; `after_put` and `after_read` the zone and the
/// path put or read.
#[cfg(test)]
#[derive(Clone)]
pub(crate) struct HookedZone {
    pub zone: LocalRawZone,
    pub after_list: std::sync::Arc<AfterList>,
    pub after_put: std::sync::Arc<AfterPut>,
    pub after_read: std::sync::Arc<AfterPut>,
}

#[cfg(test)]
type AfterList = dyn Fn(&LocalRawZone, &str, &[ZoneFile]) + Send + Sync;
#[cfg(test)]
type AfterPut = dyn Fn(&LocalRawZone, &str) + Send + Sync;

#[cfg(test)]
impl HookedZone {
    pub(crate) fn new(zone: LocalRawZone) -> Self {
        Self {
            zone,
            after_list: std::sync::Arc::new(|_, _, _| {}),
            after_put: std::sync::Arc::new(|_, _| {}),
            after_read: std::sync::Arc::new(|_, _| {}),
        }
    }
}

#[cfg(test)]
impl RawZone for HookedZone {
    async fn put_atomic(&self, rel_path: &str, data: Vec<u8>) -> Result<(), StorageError> {
        self.zone.put_atomic(rel_path, data).await?;
        (self.after_put)(&self.zone, rel_path);
        Ok(())
    }
    async fn list_sized(&self, rel_dir: &str) -> Result<Vec<ZoneFile>, StorageError> {
        let files = self.zone.list_sized(rel_dir).await?;
        (self.after_list)(&self.zone, rel_dir, &files);
        Ok(files)
    }
    async fn read(&self, rel_path: &str) -> Result<Bytes, StorageError> {
        let bytes = self.zone.read(rel_path).await?;
        (self.after_read)(&self.zone, rel_path);
        Ok(bytes)
    }
    async fn remove(&self, rel_path: &str) -> Result<(), StorageError> {
        self.zone.remove(rel_path).await
    }
    async fn create_new(&self, rel_path: &str, data: Vec<u8>) -> Result<bool, StorageError> {
        self.zone.create_new(rel_path, data).await
    }
    fn url_of(&self, rel_path: &str) -> String {
        self.zone.url_of(rel_path)
    }
    fn describe(&self) -> String {
        self.zone.describe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn put_is_atomic_and_listing_skips_temp_files() {
        let dir = tempfile::tempdir().unwrap();
        let zone = LocalRawZone::new(dir.path());
        zone.put_atomic("review/date=2026-01-01/part-0-1-2.parquet", b"abc".to_vec())
            .await
            .unwrap();
        std::fs::write(dir.path().join("review/date=2026-01-01/.stale.tmp"), b"x").unwrap();
        assert_eq!(
            zone.list_files("review").await.unwrap(),
            ["review/date=2026-01-01/part-0-1-2.parquet"]
        );
        assert!(zone.list_files("user").await.unwrap().is_empty());
        assert_eq!(
            std::fs::read(dir.path().join("review/date=2026-01-01/part-0-1-2.parquet")).unwrap(),
            b"abc"
        );
    }
}
