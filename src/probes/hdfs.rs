//! HDFS: the NameNode's JMX (capacity, datanodes, blocks, safe mode) and WebHDFS content
//! summaries of the lab's raw zone (`/lab/raw/<topic prefix>/<entity>`).

use std::collections::BTreeMap;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::http;
use super::{LabService, ProbeError, Probed};
use crate::dataset::Entity;

/// Where the consumer lands the raw zone on HDFS: `/lab/raw/<topic prefix>/<entity>/date=YYYY-MM-DD/part-*.parquet`
/// (see `crate::storage`). The same directory `lab up` puts in endpoints.toml as the raw zone.
pub const RAW_ZONE_ROOT: &str = crate::stack::endpoints::STACK_RAW_ZONE_DIR;

const FS_STATE_BEAN: &str = "Hadoop:service=NameNode,name=FSNamesystemState";
const FS_BEAN: &str = "Hadoop:service=NameNode,name=FSNamesystem";
const INFO_BEAN: &str = "Hadoop:service=NameNode,name=NameNodeInfo";

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HdfsSnapshot {
    pub capacity_total: u64,
    pub capacity_used: u64,
    pub capacity_remaining: u64,
    pub live_datanodes: u32,
    pub dead_datanodes: u32,
    pub under_replicated_blocks: u64,
    /// Copies the NameNode has scheduled and not seen land yet: an under-replicated block leaves
    /// `under_replicated_blocks` once its copy is scheduled, and is whole only when this is 0 too.
    #[serde(default)]
    pub pending_replication_blocks: u64,
    pub missing_blocks: u64,
    pub files_total: u64,
    pub blocks_total: u64,
    /// `Operational` or `safeMode`.
    pub fs_state: String,
    pub safe_mode: bool,
    pub version: String,
    pub datanodes: Vec<DataNode>,
    /// The raw-zone directory `zones` summarises (`/lab/raw/<topic prefix>`).
    #[serde(default)]
    pub zone_dir: String,
    /// Raw-zone contents per entity; an entity with no directory yet is absent.
    pub zones: BTreeMap<String, ZoneUsage>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DataNode {
    pub name: String,
    pub state: String,
    pub capacity: u64,
    pub used: u64,
    pub remaining: u64,
    pub blocks: u64,
    /// Seconds since the last heartbeat.
    pub last_contact_s: i64,
    pub live: bool,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZoneUsage {
    pub bytes: u64,
    pub files: u64,
    pub directories: u64,
}

impl HdfsSnapshot {
    /// Files in the raw zone, over every entity.
    #[must_use]
    pub fn zone_files(&self) -> u64 {
        self.zones.values().map(|z| z.files).sum()
    }

    /// Bytes in the raw zone, over every entity.
    #[must_use]
    pub fn zone_bytes(&self) -> u64 {
        self.zones.values().map(|z| z.bytes).sum()
    }

    #[must_use]
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.safe_mode {
            problems.push("NameNode is in safe mode: writes fail until it leaves".to_string());
        }
        if self.live_datanodes == 0 {
            problems.push("no live DataNode: nothing can be stored".to_string());
        }
        if self.dead_datanodes > 0 {
            problems.push(format!("{} dead DataNode(s)", self.dead_datanodes));
        }
        if self.missing_blocks > 0 {
            problems.push(format!("{} missing block(s)", self.missing_blocks));
        }
        if self.under_replicated_blocks > 0 {
            problems.push(format!("{} under-replicated block(s)", self.under_replicated_blocks));
        }
        problems
    }

    /// Used share of the capacity, 0.0–1.0.
    #[must_use]
    pub fn used_ratio(&self) -> f64 {
        if self.capacity_total == 0 {
            0.0
        } else {
            self.capacity_used as f64 / self.capacity_total as f64
        }
    }
}

#[derive(Deserialize)]
struct Beans {
    beans: Vec<Value>,
}

fn bean_u64(bean: &Value, key: &str) -> u64 {
    bean.get(key).and_then(Value::as_u64).unwrap_or(0)
}

fn bean_str<'a>(bean: &'a Value, key: &str) -> &'a str {
    bean.get(key).and_then(Value::as_str).unwrap_or("")
}

fn first_bean(service_url: &str, body: &[u8]) -> Result<Value, ProbeError> {
    let beans: Beans = http::parse(LabService::Hdfs, service_url, body)?;
    beans.beans.into_iter().next().ok_or_else(|| ProbeError::Parse {
        service: LabService::Hdfs,
        url: service_url.to_string(),
        detail: "no JMX bean in the answer (is this a NameNode?)".to_string(),
    })
}

/// Fills the NameNode figures from the three JMX answers (fixture-testable).
pub fn parse_jmx(fs_state: &[u8], fs: &[u8], info: &[u8]) -> Result<HdfsSnapshot, ProbeError> {
    let state = first_bean(FS_STATE_BEAN, fs_state)?;
    let fs = first_bean(FS_BEAN, fs)?;
    let info = first_bean(INFO_BEAN, info)?;
    let fs_state_name = bean_str(&state, "FSState").to_string();
    let mut datanodes = nodes(bean_str(&info, "LiveNodes"), true);
    datanodes.extend(nodes(bean_str(&info, "DeadNodes"), false));
    Ok(HdfsSnapshot {
        capacity_total: bean_u64(&state, "CapacityTotal"),
        capacity_used: bean_u64(&state, "CapacityUsed"),
        capacity_remaining: bean_u64(&state, "CapacityRemaining"),
        live_datanodes: u32::try_from(bean_u64(&state, "NumLiveDataNodes")).unwrap_or(u32::MAX),
        dead_datanodes: u32::try_from(bean_u64(&state, "NumDeadDataNodes")).unwrap_or(u32::MAX),
        under_replicated_blocks: bean_u64(&fs, "UnderReplicatedBlocks"),
        pending_replication_blocks: bean_u64(&fs, "PendingReplicationBlocks"),
        missing_blocks: bean_u64(&fs, "MissingBlocks"),
        files_total: bean_u64(&state, "FilesTotal"),
        blocks_total: bean_u64(&state, "BlocksTotal"),
        safe_mode: fs_state_name.eq_ignore_ascii_case("safeMode") || !bean_str(&info, "Safemode").is_empty(),
        fs_state: fs_state_name,
        version: bean_str(&info, "Version").to_string(),
        datanodes,
        zone_dir: String::new(),
        zones: BTreeMap::new(),
    })
}

/// NameNodeInfo's `LiveNodes`/`DeadNodes` are JSON objects encoded as strings.
fn nodes(encoded: &str, live: bool) -> Vec<DataNode> {
    let Ok(Value::Object(map)) = serde_json::from_str::<Value>(encoded) else {
        return Vec::new();
    };
    map.into_iter()
        .map(|(name, n)| DataNode {
            name,
            state: bean_str(&n, "adminState").to_string(),
            capacity: bean_u64(&n, "capacity"),
            used: bean_u64(&n, "used"),
            remaining: bean_u64(&n, "remaining"),
            blocks: bean_u64(&n, "numBlocks"),
            last_contact_s: n.get("lastContact").and_then(Value::as_i64).unwrap_or(0),
            live,
        })
        .collect()
}

#[derive(Deserialize)]
struct ContentSummaryBody {
    #[serde(rename = "ContentSummary")]
    content_summary: ContentSummary,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ContentSummary {
    length: u64,
    file_count: u64,
    directory_count: u64,
}

/// Parses a WebHDFS GETCONTENTSUMMARY answer.
pub fn parse_content_summary(body: &[u8]) -> Result<ZoneUsage, ProbeError> {
    let s: ContentSummaryBody = http::parse(LabService::Hdfs, "GETCONTENTSUMMARY", body)?;
    Ok(ZoneUsage {
        bytes: s.content_summary.length,
        files: s.content_summary.file_count,
        directories: s.content_summary.directory_count,
    })
}

pub struct HdfsProbe {
    client: reqwest::Client,
    base: String,
    /// The raw zone of the lab's topic prefix: `<raw root>/<prefix>`.
    zone_dir: String,
}

/// The HDFS directory the raw zone lives in: the configured raw zone's path when it is on HDFS
/// (`hdfs://namenode:8020/data/raw` → `/data/raw`), else the stack's [`RAW_ZONE_ROOT`] (a local raw
/// zone leaves the HDFS view with the stack's directory, which `lab up` would use).
#[must_use]
pub fn raw_root(raw_zone: &std::path::Path) -> String {
    raw_zone
        .to_str()
        .and_then(crate::storage::split_hdfs_url)
        .map(|(_, path)| path)
        .filter(|path| !path.is_empty())
        .unwrap_or_else(|| RAW_ZONE_ROOT.to_string())
}

impl HdfsProbe {
    /// `raw_root`: the directory holding every prefix's raw zone ([`raw_root`]).
    pub fn new(http_url: &str, raw_root: &str, topic_prefix: &str) -> Result<Self, ProbeError> {
        Ok(Self {
            client: http::client(LabService::Hdfs)?,
            base: http_url.trim_end_matches('/').to_string(),
            zone_dir: format!("{}/{topic_prefix}", raw_root.trim_end_matches('/')),
        })
    }

    pub async fn poll(&mut self) -> Probed<HdfsSnapshot> {
        let started = Instant::now();
        let result = self.read().await.map(|snap| {
            let problems = snap.problems();
            (snap, problems)
        });
        Probed::from_result(result, started)
    }

    async fn read(&self) -> Result<HdfsSnapshot, ProbeError> {
        let urls = [FS_STATE_BEAN, FS_BEAN, INFO_BEAN].map(|b| self.jmx_url(b));
        let (state, fs, info) = tokio::try_join!(
            self.get_bytes(&urls[0]),
            self.get_bytes(&urls[1]),
            self.get_bytes(&urls[2]),
        )?;
        let mut snap = parse_jmx(&state, &fs, &info)?;
        snap.zone_dir.clone_from(&self.zone_dir);
        let zones = futures::future::join_all(Entity::ALL.iter().map(|e| self.zone(e.name()))).await;
        for (entity, usage) in Entity::ALL.iter().zip(zones) {
            if let Some(usage) = usage? {
                snap.zones.insert(entity.name().to_string(), usage);
            }
        }
        Ok(snap)
    }

    fn jmx_url(&self, bean: &str) -> String {
        format!("{}/jmx?qry={bean}", self.base)
    }

    async fn get_bytes(&self, url: &str) -> Result<bytes::Bytes, ProbeError> {
        http::send_bytes(LabService::Hdfs, url, self.client.get(url)).await
    }

    /// Content summary of one entity's raw-zone directory; `None` when it does not exist yet.
    async fn zone(&self, entity: &str) -> Result<Option<ZoneUsage>, ProbeError> {
        let url = format!(
            "{}/webhdfs/v1{}/{entity}?op=GETCONTENTSUMMARY",
            self.base, self.zone_dir
        );
        let resp = self
            .client
            .get(&url)
            .send()
            .await
            .map_err(|e| http::unreachable(LabService::Hdfs, &url, &e))?;
        if resp.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !resp.status().is_success() {
            return Err(ProbeError::Status {
                service: LabService::Hdfs,
                url,
                status: resp.status().as_u16(),
            });
        }
        let body = resp
            .bytes()
            .await
            .map_err(|e| http::unreachable(LabService::Hdfs, &url, &e))?;
        parse_content_summary(&body).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_raw_root_is_the_configured_raw_zone_on_hdfs_else_the_stacks() {
        use std::path::Path;
        assert_eq!(raw_root(Path::new("hdfs://nn:8020/data/lake/raw/")), "/data/lake/raw");
        assert_eq!(raw_root(Path::new("hdfs://127.0.0.1:9000/lab/raw")), "/lab/raw");
        // The file system's root, a local directory: the stack's directory.
        assert_eq!(raw_root(Path::new("hdfs://nn:8020")), RAW_ZONE_ROOT);
        assert_eq!(raw_root(Path::new("/home/me/.lab/raw")), RAW_ZONE_ROOT);
    }

    use crate::probes::test_fixture as fixture;

    #[test]
    fn namenode_jmx_gives_capacity_datanodes_and_blocks() {
        let s = parse_jmx(
            &fixture("hdfs_jmx_FSNamesystemState.json"),
            &fixture("hdfs_jmx_FSNamesystem.json"),
            &fixture("hdfs_jmx_NameNodeInfo.json"),
        )
        .unwrap();
        assert!(s.capacity_total > s.capacity_used && s.capacity_used > 0);
        assert_eq!(s.live_datanodes, 1);
        assert_eq!(s.dead_datanodes, 0);
        assert_eq!(s.fs_state, "Operational");
        assert!(!s.safe_mode);
        assert_eq!(s.missing_blocks, 0);
        assert!(s.files_total >= 2);
        assert!(s.version.starts_with("2.7.3"));
        assert_eq!(s.datanodes.len(), 1);
        assert!(s.datanodes[0].live && s.datanodes[0].name.starts_with("127.0.0.1"));
        assert!(s.problems().is_empty(), "{:?}", s.problems());
    }

    #[test]
    fn safe_mode_makes_hdfs_degraded() {
        let s = parse_jmx(
            &fixture("hdfs_jmx_FSNamesystemState_safemode.json"),
            &fixture("hdfs_jmx_FSNamesystem.json"),
            &fixture("hdfs_jmx_NameNodeInfo_safemode.json"),
        )
        .unwrap();
        assert!(s.safe_mode);
        assert!(s.problems()[0].contains("safe mode"));
    }

    #[test]
    fn content_summary_counts_bytes_and_files() {
        let z = parse_content_summary(&fixture("hdfs_contentsummary_review.json")).unwrap();
        assert_eq!(
            z,
            ZoneUsage {
                bytes: 300_000,
                files: 1,
                directories: 2
            }
        );
    }

    #[test]
    fn empty_or_foreign_jmx_answers_are_errors() {
        let empty = br#"{"beans":[]}"#;
        let err = parse_jmx(empty, empty, empty).unwrap_err();
        assert!(err.reason().contains("no JMX bean"), "{err}");
        let body = fixture("hdfs_jmx_FSNamesystemState.json");
        assert!(parse_jmx(&body[..body.len() / 3], &body, &body).is_err());
    }
}
