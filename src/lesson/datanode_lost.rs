//! `datanode-lost`: on a cluster of three DataNodes or more, one is stopped for good (until the
//! repair) while files are replicated twice. What HDFS does about it, read from the NameNode:
//! writes go on (the client picks the live DataNodes), the NameNode declares the silent DataNode
//! dead after `2 × dfs.namenode.heartbeat.recheck-interval + 10 × dfs.heartbeat.interval` (10.5 min
//! by default; a teaching cluster shortens it, as the test harness does), its replicas turn
//! under-replicated, and the NameNode copies them again onto the live DataNodes until none is.
//! `datanode-down` is the single-DataNode case, where writes fail instead.

use std::time::Duration;

use super::scenarios::{POLL, datanode_lesson_probe, failed, hdfs_write, patience};
use super::watch::until;
use super::{Lesson, LessonContext, LessonError, SignalLog};
use crate::probes::hdfs::{HdfsProbe, HdfsSnapshot};

/// Files the lesson writes, each one block replicated twice: with three DataNodes each holds a
/// replica of about two thirds of them, so the one stopped holds some (checked, not assumed).
const CANARIES: u32 = 8;
const REPLICATION: u32 = 2;
const CANARY: &[u8] = b"a replica of this block lives on two DataNodes\n";

pub(super) async fn play(ctx: &LessonContext, log: &mut SignalLog) -> Result<bool, LessonError> {
    let lesson = Lesson::DatanodeLost;
    let name = lesson.name();
    let n = &ctx.narrator;
    let hdfs = &ctx.config.hdfs;
    let mut probe = datanode_lesson_probe(ctx, lesson).await?;
    let first = snapshot(&mut probe).await.map_err(|e| failed(lesson, e))?;
    if first.live_datanodes < 3 {
        return Err(failed(
            lesson,
            format!(
                "needs three live DataNodes or more (replicas on two, one lost, copied to a third); HDFS has {}: \
                 run it on a cluster, or use datanode-down",
                first.live_datanodes
            ),
        ));
    }
    let client = hdfs_native::ClientBuilder::new()
        .with_url(&hdfs.url)
        .build()
        .map_err(|e| failed(lesson, e.to_string()))?;
    let dir = format!("/.lab-lesson/datanode-lost-{}", std::process::id());
    let replicas_before: u64 = first.datanodes.iter().map(|d| d.blocks).sum();
    for i in 0..CANARIES {
        write_canary(&client, &format!("{dir}/canary-{i}")).await.map_err(|e| {
            failed(
                lesson,
                format!("HDFS does not accept writes even before the lesson: {e}"),
            )
        })?;
    }
    // The DataNodes report new replicas within a heartbeat or two.
    let placed = until!(name, "the canaries' replicas reported", patience(), POLL, {
        let d = snapshot(&mut probe).await?;
        let replicas: u64 = d.datanodes.iter().map(|d| d.blocks).sum();
        if replicas >= replicas_before + u64::from(CANARIES * REPLICATION) {
            Ok(d)
        } else {
            Err(format!(
                "{replicas} replicas reported, {replicas_before} before the canaries"
            ))
        }
    })?;
    log.saw(
        "canaries written",
        format!(
            "{CANARIES} files under {dir}, {REPLICATION} replicas each, on {} DataNodes",
            placed.live_datanodes
        ),
    );

    n.step(format!(
        "{} live DataNodes. Stopping one: the files keep a replica elsewhere, and HDFS must make the second again.",
        placed.live_datanodes
    ));
    ctx.control.stop("datanode").await?;
    let mut attempt = 0;
    until!(name, "writes going on", patience(), POLL, {
        attempt += 1;
        hdfs_write(&hdfs.url, attempt).await
    })?;
    log.saw(
        "raw-zone writes go on",
        "a test file was written with the DataNode stopped (the client picks live ones)",
    );
    let dead = until!(name, "the DataNode declared dead", patience(), POLL, {
        let d = snapshot(&mut probe).await?;
        if d.dead_datanodes >= 1 {
            Ok(d)
        } else {
            Err(format!(
                "{} live, 0 dead: the NameNode waits 2 × dfs.namenode.heartbeat.recheck-interval + 10 heartbeats \
                 (10.5 min by default) before it declares a silent DataNode dead",
                d.live_datanodes
            ))
        }
    })?;
    let lost = dead
        .datanodes
        .iter()
        .find(|d| !d.live)
        .map(|d| d.name.clone())
        .unwrap_or_default();
    let lost_replicas = placed.datanodes.iter().find(|d| d.name == lost).map_or(0, |d| d.blocks);
    if lost_replicas == 0 {
        return Err(failed(
            lesson,
            format!(
                "the DataNode stopped ({lost}) held no replica: nothing for HDFS to copy, the lesson shows nothing"
            ),
        ));
    }
    log.saw(
        "DataNode dead",
        format!(
            "{lost}: {} live, {} dead, {} under-replicated block(s) as it was declared",
            dead.live_datanodes, dead.dead_datanodes, dead.under_replicated_blocks
        ),
    );
    let healed = until!(name, "the lost replicas copied again", patience(), POLL, {
        let d = snapshot(&mut probe).await?;
        if d.under_replicated_blocks == 0 && d.pending_replication_blocks == 0 && d.missing_blocks == 0 {
            Ok(d)
        } else {
            Err(format!(
                "{} under-replicated, {} being copied, {} missing block(s)",
                d.under_replicated_blocks, d.pending_replication_blocks, d.missing_blocks
            ))
        }
    })?;
    let live_replicas: u64 = healed.datanodes.iter().filter(|d| d.live).map(|d| d.blocks).sum();
    log.saw(
        "replicas copied again",
        format!("no block under-replicated: the {lost_replicas} replica(s) {lost} held live again on the others ({live_replicas} on the live DataNodes)"),
    );
    for i in 0..CANARIES {
        let path = format!("{dir}/canary-{i}");
        let read = read_canary(&client, &path)
            .await
            .map_err(|e| failed(lesson, format!("{path}: {e}")))?;
        if read != CANARY {
            return Err(failed(lesson, format!("{path} reads back different bytes")));
        }
    }
    log.saw("every canary read", format!("{CANARIES} files, each byte as written"));

    n.step("Starting the DataNode again.");
    ctx.control.start("datanode").await?;
    let back = until!(name, "the DataNode back", patience(), POLL, {
        let d = snapshot(&mut probe).await?;
        if d.live_datanodes >= first.live_datanodes && d.dead_datanodes == 0 {
            Ok(d)
        } else {
            Err(format!("{} live, {} dead", d.live_datanodes, d.dead_datanodes))
        }
    })?;
    log.saw("DataNode live", format!("{} live DataNodes again", back.live_datanodes));
    if let Err(e) = client.delete(&dir, true).await {
        tracing::warn!(%dir, error = %e, "cannot remove the lesson's canaries");
    }
    Ok(true)
}

async fn snapshot(probe: &mut HdfsProbe) -> Result<HdfsSnapshot, String> {
    let snap = probe.poll().await;
    snap.detail.ok_or_else(|| format!("HDFS: {}", snap.status.reason))
}

async fn write_canary(client: &hdfs_native::Client, path: &str) -> Result<(), String> {
    let write = async {
        let options = hdfs_native::WriteOptions::default()
            .overwrite(true)
            .replication(REPLICATION);
        let mut writer = client.create(path, options).await?;
        writer.write(bytes::Bytes::from_static(CANARY)).await?;
        writer.close().await
    };
    match tokio::time::timeout(Duration::from_secs(20), write).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(crate::runtime::first_line(&e.to_string())),
        Err(_) => Err("no answer within 20 s".into()),
    }
}

async fn read_canary(client: &hdfs_native::Client, path: &str) -> Result<Vec<u8>, String> {
    let read = async {
        let reader = client.read(path).await?;
        reader.read_range(0, reader.file_length()).await
    };
    match tokio::time::timeout(Duration::from_secs(20), read).await {
        Ok(Ok(bytes)) => Ok(bytes.to_vec()),
        Ok(Err(e)) => Err(crate::runtime::first_line(&e.to_string())),
        Err(_) => Err("no answer within 20 s".into()),
    }
}
