//! Raw zone on HDFS, through the native Rust client (`hdfs-native`, no JVM).
//!
//! Same contract as the local zone: a put writes a hidden temp file, closes it (the NameNode then
//! has the complete file and its blocks are on a DataNode), and renames it into place; the rename
//! is one NameNode transaction, so readers see all of a file or nothing. Every operation has a
//! deadline (a hung NameNode must not hang the consumer) and is retried with exponential backoff,
//! so a NameNode or DataNode restart mid-stream costs a pause, not an error: the consumer does
//! not commit offsets until the put returns.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use datafusion::prelude::SessionContext;
use hdfs_native::client::FileStatus;
use hdfs_native::{Client, ClientBuilder, HdfsError, WriteOptions};

use super::{RawZone, StorageError, ZoneFile};

/// How long a single HDFS call may take before it counts as failed.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// How hard to try before reporting a failure.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub attempts: u32,
    pub first_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    /// About a minute in total: long enough to ride out a NameNode restart (a few seconds plus
    /// safe mode until the DataNode reports its blocks), short enough that a cluster that is
    /// really gone produces an error the user can act on.
    fn default() -> Self {
        Self {
            attempts: 12,
            first_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(8),
        }
    }
}

impl RetryPolicy {
    fn delay(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.min(16));
        self.first_delay.saturating_mul(factor).min(self.max_delay)
    }
}

#[derive(Clone)]
pub struct HdfsRawZone {
    client: Arc<Client>,
    /// `hdfs://host:port`, no path.
    namenode: String,
    /// Absolute directory of the zone on HDFS, without a trailing slash (e.g. `/lab/raw`).
    root: String,
    retry: RetryPolicy,
}

impl std::fmt::Debug for HdfsRawZone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HdfsRawZone")
            .field("namenode", &self.namenode)
            .field("root", &self.root)
            .finish_non_exhaustive()
    }
}

/// Splits `hdfs://host:port/some/dir` into (`hdfs://host:port`, `/some/dir`).
pub fn split_hdfs_url(url: &str) -> Option<(String, String)> {
    let rest = url.strip_prefix("hdfs://")?;
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    if authority.is_empty() {
        return None;
    }
    let path = format!("/{}", path.trim_end_matches('/'));
    let path = if path == "/" { String::new() } else { path };
    Some((format!("hdfs://{authority}"), path))
}

impl HdfsRawZone {
    /// Connects lazily: building the client does no I/O, the first operation does.
    pub fn new(namenode: &str, root: &str) -> Result<Self, StorageError> {
        let client = ClientBuilder::new()
            .with_url(namenode)
            // Only the URL counts: a stray HADOOP_CONF_DIR must not redirect the lab elsewhere.
            .with_config_dir("/nonexistent-lab-hadoop-conf")
            .build()
            .map_err(|e| StorageError::Hdfs {
                root: format!("{namenode}{root}"),
                action: "connect to",
                path: namenode.to_string(),
                source: Box::new(e),
            })?;
        Ok(Self {
            client: Arc::new(client),
            namenode: namenode.trim_end_matches('/').to_string(),
            root: root.trim_end_matches('/').to_string(),
            retry: RetryPolicy::default(),
        })
    }

    /// Parses `hdfs://host:port/dir`.
    pub fn from_url(url: &str) -> Result<Self, StorageError> {
        let (namenode, root) = split_hdfs_url(url).ok_or_else(|| StorageError::BadLocation(url.to_string()))?;
        Self::new(&namenode, &root)
    }

    #[must_use]
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    #[must_use]
    pub fn client(&self) -> &Client {
        &self.client
    }

    fn abs(&self, rel: &str) -> String {
        let rel = rel.trim_start_matches('/');
        if rel.is_empty() {
            if self.root.is_empty() {
                "/".to_string()
            } else {
                self.root.clone()
            }
        } else {
            format!("{}/{rel}", self.root)
        }
    }

    fn err(&self, action: &'static str, path: &str, source: HdfsError) -> StorageError {
        StorageError::Hdfs {
            root: format!("{}{}", self.namenode, self.root),
            action,
            path: path.to_string(),
            source: Box::new(source),
        }
    }

    /// Runs `op` until it succeeds, fails permanently, or the retry budget is spent.
    async fn with_retries<T, F, Fut>(&self, action: &'static str, path: &str, mut op: F) -> Result<T, StorageError>
    where
        F: FnMut(u32) -> Fut,
        Fut: Future<Output = Result<T, HdfsError>>,
    {
        let mut attempt = 0;
        loop {
            let outcome = match tokio::time::timeout(CALL_TIMEOUT, op(attempt)).await {
                Ok(result) => result,
                Err(_) => Err(HdfsError::OperationFailed(format!(
                    "no answer within {} s",
                    CALL_TIMEOUT.as_secs()
                ))),
            };
            match outcome {
                Ok(value) => return Ok(value),
                Err(e) if is_permanent(&e) || attempt + 1 >= self.retry.attempts => {
                    return Err(self.err(action, path, e));
                }
                Err(e) => {
                    let delay = self.retry.delay(attempt);
                    tracing::warn!(%action, %path, attempt, ?delay, error = %e, "HDFS call failed; retrying");
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
            }
        }
    }

    async fn put_once(&self, target: &str, data: Bytes, attempt: u32) -> Result<(), HdfsError> {
        let (dir, name) = target.rsplit_once('/').unwrap_or(("", target));
        // Hidden (listings skip dot files) and unique per attempt: an earlier attempt's writer may
        // still hold the lease on its temp file after a connection drop.
        let tmp = format!("{dir}/.{name}.{}.{attempt}.tmp", std::process::id());
        let expected_len = data.len();
        let result = async {
            let options = WriteOptions::default().overwrite(true).create_parent(true);
            let mut writer = self.client.create(&tmp, options).await?;
            writer.write(data).await?;
            writer.close().await?;
            self.client.rename(&tmp, target, true).await
        }
        .await;
        match result {
            Ok(()) => Ok(()),
            Err(e) => {
                // The rename may have been applied with its answer lost (NameNode restarted).
                if let Ok(status) = self.client.get_file_info(target).await
                    && status.length == expected_len
                    && matches!(self.client.get_file_info(&tmp).await, Err(HdfsError::FileNotFound(_)))
                {
                    return Ok(());
                }
                // Best effort: a stale temp file is hidden from listings and overwritten next time.
                if let Err(cleanup) = self.client.delete(&tmp, false).await {
                    tracing::debug!(%tmp, error = %cleanup, "could not remove a failed write's temp file");
                }
                Err(e)
            }
        }
    }

    /// Every complete file under `dir` (absolute), recursively.
    async fn list_once(&self, dir: &str) -> Result<Vec<FileStatus>, HdfsError> {
        match self.client.list_status(dir, true).await {
            Ok(list) => Ok(list),
            Err(HdfsError::FileNotFound(_)) => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }
}

/// Errors no retry can fix (bad paths, unsupported features); everything else — connection
/// refused, timeouts, safe mode, "could only be replicated to 0 nodes" while a DataNode
/// re-registers — is worth another try.
fn is_permanent(e: &HdfsError) -> bool {
    matches!(
        e,
        HdfsError::InvalidPath(_)
            | HdfsError::InvalidArgument(_)
            | HdfsError::UrlParseError(_)
            | HdfsError::IsADirectoryError(_)
            | HdfsError::UnsupportedFeature(_)
            | HdfsError::UnsupportedErasureCodingPolicy(_)
            | HdfsError::NoSASLMechanism
    )
}

/// Whether `e` says the path does not exist: the client's own answer, or the NameNode's
/// `java.io.FileNotFoundException`, which hdfs-native 0.13 passes on as an RPC error (it converts
/// only the already-exists exceptions, `hdfs/proxy.rs`): reading a file removed since it was
/// listed gets the latter.
pub(crate) fn is_not_found(e: &HdfsError) -> bool {
    match e {
        HdfsError::FileNotFound(_) => true,
        HdfsError::RPCError(class, _) => class == "java.io.FileNotFoundException",
        _ => false,
    }
}

/// Whether any component of `rel` is hidden (a writer's temp file or a stray).
fn is_hidden(rel: &str) -> bool {
    rel.split('/').any(|c| c.starts_with('.'))
}

impl RawZone for HdfsRawZone {
    async fn put_atomic(&self, rel_path: &str, data: Vec<u8>) -> Result<(), StorageError> {
        let target = self.abs(rel_path);
        let data = Bytes::from(data);
        self.with_retries("write", &target, |attempt| {
            self.put_once(&target, data.clone(), attempt)
        })
        .await
    }

    async fn list_sized(&self, rel_dir: &str) -> Result<Vec<ZoneFile>, StorageError> {
        let dir = self.abs(rel_dir);
        let statuses = self.with_retries("list", &dir, |_| self.list_once(&dir)).await?;
        let prefix = format!("{}/", self.root);
        let mut out: Vec<ZoneFile> = statuses
            .into_iter()
            .filter(|s| !s.isdir)
            .filter_map(|s| {
                // Paths come back absolute in this client; be lenient about a missing root prefix.
                let rel = s.path.strip_prefix(&prefix).unwrap_or(&s.path).trim_start_matches('/');
                (!is_hidden(rel)).then(|| ZoneFile {
                    path: rel.to_string(),
                    bytes: s.length as u64,
                })
            })
            .collect();
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(out)
    }

    async fn read(&self, rel_path: &str) -> Result<Bytes, StorageError> {
        let path = self.abs(rel_path);
        // A file removed since it was listed is an answer, not a failure to retry (a put retries
        // on it: a restarted NameNode may have lost its temp file).
        let read = self
            .with_retries("read", &path, |_| async {
                match self.client.read(&path).await {
                    Ok(reader) => reader.read_range(0, reader.file_length()).await.map(Some),
                    Err(e) if is_not_found(&e) => Ok(None),
                    Err(e) => Err(e),
                }
            })
            .await?;
        read.ok_or_else(|| self.err("read", &path, HdfsError::FileNotFound(path.clone())))
    }

    async fn remove(&self, rel_path: &str) -> Result<(), StorageError> {
        let path = self.abs(rel_path);
        self.with_retries("remove", &path, |_| async {
            // A path that is not there is deleted with `false`, no error.
            self.client.delete(&path, false).await.map(|_| ())
        })
        .await
    }

    async fn remove_once(&self, rel_path: &str) -> Result<(), StorageError> {
        let path = self.abs(rel_path);
        match tokio::time::timeout(CALL_TIMEOUT, self.client.delete(&path, false)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(self.err("remove", &path, e)),
            Err(_) => Err(self.err(
                "remove",
                &path,
                HdfsError::OperationFailed(format!("no answer within {} s", CALL_TIMEOUT.as_secs())),
            )),
        }
    }

    async fn create_new(&self, rel_path: &str, data: Vec<u8>) -> Result<bool, StorageError> {
        let target = self.abs(rel_path);
        let (dir, name) = target.rsplit_once('/').unwrap_or(("", &target));
        let tmp = format!("{dir}/.{name}.{}.{}.tmp", std::process::id(), rand::random::<u32>());
        let data = Bytes::from(data);
        self.with_retries("create", &target, |_| async {
            let options = WriteOptions::default().overwrite(true).create_parent(true);
            let mut writer = self.client.create(&tmp, options).await?;
            writer.write(data.clone()).await?;
            writer.close().await?;
            // Written whole, then renamed into place without replacing: the NameNode refuses an
            // existing name (FileAlreadyExistsException), so only one caller wins.
            match self.client.rename(&tmp, &target, false).await {
                Ok(()) => Ok(true),
                Err(HdfsError::AlreadyExists(_)) => {
                    if let Err(e) = self.client.delete(&tmp, false).await {
                        tracing::debug!(%tmp, error = %e, "could not remove a temp file");
                    }
                    Ok(false)
                }
                Err(e) => Err(e),
            }
        })
        .await
    }

    fn url_of(&self, rel_path: &str) -> String {
        format!("{}{}", self.namenode, self.abs(rel_path))
    }

    fn describe(&self) -> String {
        format!("{}{}", self.namenode, self.root)
    }

    fn register_with(&self, ctx: &SessionContext) -> Result<(), StorageError> {
        let url = url::Url::parse(&self.namenode).map_err(|_| StorageError::BadLocation(self.namenode.clone()))?;
        let store = hdfs_native_object_store::HdfsObjectStore::new(Client::clone(&self.client));
        ctx.register_object_store(&url, Arc::new(store));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hdfs_urls_split_into_namenode_and_root() {
        assert_eq!(
            split_hdfs_url("hdfs://127.0.0.1:9000/lab/raw/"),
            Some(("hdfs://127.0.0.1:9000".into(), "/lab/raw".into()))
        );
        assert_eq!(
            split_hdfs_url("hdfs://nn:8020"),
            Some(("hdfs://nn:8020".into(), String::new()))
        );
        assert_eq!(split_hdfs_url("hdfs:///x"), None);
        assert_eq!(split_hdfs_url("/tmp/raw"), None);
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let p = RetryPolicy::default();
        assert_eq!(p.delay(0), Duration::from_millis(250));
        assert_eq!(p.delay(1), Duration::from_millis(500));
        assert_eq!(p.delay(5), Duration::from_secs(8));
        assert_eq!(p.delay(40), Duration::from_secs(8));
    }

    #[test]
    fn temp_files_and_hidden_dirs_are_not_listed() {
        assert!(is_hidden("review/date=2026-01-01/.part-0-1-2.parquet.1.0.tmp"));
        assert!(is_hidden(".trash/x"));
        assert!(!is_hidden("review/date=2026-01-01/part-0-1-2.parquet"));
    }

    #[tokio::test]
    async fn an_unreachable_namenode_fails_fast_with_a_clear_message() {
        // Port 1 on loopback: connection refused at once. Two quick attempts, then the error.
        let zone = HdfsRawZone::new("hdfs://127.0.0.1:1", "/lab/raw")
            .unwrap()
            .with_retry(RetryPolicy {
                attempts: 2,
                first_delay: Duration::from_millis(10),
                max_delay: Duration::from_millis(10),
            });
        let err = zone.list_files("review").await.unwrap_err().to_string();
        assert!(err.contains("hdfs://127.0.0.1:1/lab/raw"), "{err}");
        assert!(err.contains("NameNode"), "{err}");
    }
}
