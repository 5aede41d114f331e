//! The harness's HDFS and Spark as small clusters, started natively by this test on ports of their
//! own (`tests/services/hdfs.sh` and `spark.sh` with `LAB_TEST_HDFS_DATANODES=3`,
//! `LAB_TEST_SPARK_WORKERS=2`): three DataNodes, files replicated twice, and a NameNode that
//! declares a silent DataNode dead after about 14 s (heartbeat recheck 2 s); two Spark workers.
//!
//! Checked from the services' own APIs, through `lab status --json`:
//! - every DataNode (capacity, blocks, last contact) and every Spark worker (cores, memory);
//! - the sample streamed through the shared test broker into a raw zone on this HDFS and batched
//!   into PostgreSQL: the tables equal the reference, and the raw zone's blocks sit on several
//!   DataNodes;
//! - a DataNode lost: the NameNode declares it dead and the probe says so; every record is still
//!   read (the batch again equals the reference); the lost replicas are copied again to the two
//!   DataNodes left, until no block is under-replicated; the DataNode back, three live again;
//! - the `datanode-lost` lesson on the same cluster (another DataNode), its report's signals.
// Needs the services tests/services/up.sh starts (the broker, PostgreSQL, the test venv): `make
// test` turns this feature on, so a plain `cargo test` on a fresh clone skips it.
#![cfg(feature = "service-tests")]
#![allow(clippy::unwrap_used)]

mod common;
use common::OutputGuarded;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use bigdata_lab::stack::{Scale, Stack};
use common::{
    assert_tables_equal_reference, connect, fresh_database, json_stdout, reference, run_ok, sample_dir, stage_cmd,
    stream_sample_into, unique_prefix,
};
use serde_json::Value;

// This cluster's ports: beside the harness's (2xxxx) and, like them, below Linux's ephemeral range
// (32768–60999), from which outgoing connections take their local ports: a DataNode on 40064 once
// failed to start because a client connection held that port.
const HDFS_PORT: u16 = 26000;
const HDFS_HTTP_PORT: u16 = 26870;
/// DataNode I's ports are these + 100 × (I − 1), as hdfs.sh and the lambda stack place them
/// ([`datanode_port`]).
const DN_PORT: u16 = 26866;
const DN_HTTP_PORT: u16 = 26864;
const DN_IPC_PORT: u16 = 26867;
const SPARK_PORT: u16 = 24077;
const SPARK_UI_PORT: u16 = 24090;
/// Worker I's UI is this + I − 1 (spark.sh).
const SPARK_WORKER_UI_PORT: u16 = 24091;

/// DataNode `i`'s data-transfer port (its name in the NameNode's reports).
fn datanode_port(i: u32) -> u32 {
    u32::from(DN_PORT) + 100 * (i - 1)
}

/// HDFS with three DataNodes and Spark with two workers, stopped on drop.
struct Cluster {
    dir: tempfile::TempDir,
}

impl Cluster {
    fn start() -> Self {
        let cluster = Self {
            dir: tempfile::tempdir().unwrap(),
        };
        cluster.script("hdfs", &["start"]);
        cluster.script("spark", &["start"]);
        cluster
    }

    fn script_command(&self, service: &str) -> String {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join(format!("tests/services/{service}.sh"))
            .display()
            .to_string()
    }

    /// tests/services/<service>.sh with this cluster's directory, ports and sizes.
    fn script(&self, service: &str, args: &[&str]) {
        let mut cmd = Command::new(self.script_command(service));
        cmd.args(args);
        self.with_env(&mut cmd);
        let out = cmd.output_guarded();
        assert!(
            out.status.success(),
            "{service}.sh {args:?} failed:\n{}",
            common::output_text(&out)
        );
    }

    /// This cluster's directory, ports and sizes, as the scripts read them.
    fn with_env(&self, cmd: &mut Command) {
        cmd.env("LAB_SERVICES_DIR", self.dir.path())
            .env("LAB_TEST_HDFS_PORT", HDFS_PORT.to_string())
            .env("LAB_TEST_HDFS_HTTP_PORT", HDFS_HTTP_PORT.to_string())
            .env("LAB_TEST_HDFS_DN_PORT", DN_PORT.to_string())
            .env("LAB_TEST_HDFS_DN_HTTP_PORT", DN_HTTP_PORT.to_string())
            .env("LAB_TEST_HDFS_DN_IPC_PORT", DN_IPC_PORT.to_string())
            .env("LAB_TEST_HDFS_DATANODES", "3")
            .env("LAB_TEST_HDFS_REPLICATION", "2")
            .env("LAB_TEST_HDFS_RECHECK_MS", "2000")
            .env("LAB_TEST_SPARK_PORT", SPARK_PORT.to_string())
            .env("LAB_TEST_SPARK_UI_PORT", SPARK_UI_PORT.to_string())
            .env("LAB_TEST_SPARK_WORKER_UI_PORT", SPARK_WORKER_UI_PORT.to_string())
            .env("LAB_TEST_SPARK_WORKERS", "2")
            .env("LAB_TEST_SPARK_WORKER_CORES", "1")
            .env("LAB_TEST_SPARK_WORKER_MEMORY", "1g");
    }

    /// The healthcheck `stacks/lambda.toml` gives one replica (scaled to three DataNodes and two
    /// Spark workers), run against this cluster: the same report or page, parsed the same way,
    /// with the stack's ports moved to this cluster's (both space replicas 100 ports apart, and
    /// the workers' UIs here are one apart).
    fn stack_check_passes(&self, replica: &str) -> bool {
        let scale = Scale::from_pairs([("datanode".to_string(), 3), ("spark-worker".to_string(), 2)]);
        let lambda = Stack::load_scaled(
            &PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("stacks/lambda.toml"),
            &scale,
        )
        .unwrap();
        let service = &lambda.services[replica];
        let index = service.replica.as_ref().map_or(1, |r| r.index);
        let test = &service.healthcheck.as_ref().unwrap().test;
        let mut cmd = if replica.starts_with("datanode") {
            // `hdfs dfsadmin ... -report -live | grep -q 'Name: 127.0.0.1:<xfer> '`: the report
            // from this NameNode, the grep as the stack writes it.
            let (_, grep) = test[1].split_once(" | ").unwrap();
            let xfer = 9866 + 100 * (index - 1);
            let grep = grep.replace(&format!(":{xfer} "), &format!(":{} ", datanode_port(index)));
            assert!(!grep.contains(&format!(":{xfer} ")), "{grep}");
            let mut cmd = Command::new("bash");
            cmd.arg("-c").arg(format!(
                "{} dfsadmin -report -live | {grep}",
                self.script_command("hdfs")
            ));
            cmd
        } else {
            // bash -c '<read the worker's /json/ page and look for its master>'.
            assert_eq!(test[..3], ["CMD", "bash", "-c"], "{test:?}");
            let ui = 8081 + 100 * (index - 1);
            let script = test[3].replace(
                &format!("/{ui} "),
                &format!("/{} ", u32::from(SPARK_WORKER_UI_PORT) + index - 1),
            );
            assert!(!script.contains(&format!("/{ui} ")), "{script}");
            let mut cmd = Command::new("bash");
            cmd.arg("-c").arg(script);
            cmd
        };
        self.with_env(&mut cmd);
        cmd.status().unwrap().success()
    }

    fn hdfs_url(&self) -> String {
        format!("hdfs://127.0.0.1:{HDFS_PORT}")
    }

    /// `lab status --json` against this cluster (and the shared broker).
    fn status(&self, prefix: &str, state: &std::path::Path) -> Value {
        let mut cmd = stage_cmd(prefix, std::ffi::OsStr::new("unused"), state, &["status", "--json"]);
        cmd.args(["--hdfs", &self.hdfs_url()])
            .args(["--hdfs-http", &format!("http://127.0.0.1:{HDFS_HTTP_PORT}")])
            .args(["--spark-master", &format!("spark://127.0.0.1:{SPARK_PORT}")])
            .args(["--spark-ui", &format!("http://127.0.0.1:{SPARK_UI_PORT}")]);
        json_stdout(&cmd.output_guarded())
    }

    /// Polls `lab status` until `done` holds for HDFS's detail, for at most `patience`.
    fn wait_hdfs(
        &self,
        prefix: &str,
        state: &std::path::Path,
        what: &str,
        patience: Duration,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + patience;
        loop {
            let status = self.status(prefix, state);
            let hdfs = &status["services"]["hdfs"]["detail"];
            if done(hdfs) {
                return hdfs.clone();
            }
            assert!(
                Instant::now() < deadline,
                "{what}: not within {patience:?}; HDFS as the probe saw it last:\n{hdfs:#}"
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.script("spark", &["stop"]);
        self.script("hdfs", &["stop"]);
    }
}

fn u64_at(v: &Value, field: &str) -> u64 {
    v[field].as_u64().unwrap_or_else(|| panic!("no {field} in {v}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn three_datanodes_and_two_spark_workers_carry_the_lab_and_survive_a_lost_datanode() {
    let cluster = Cluster::start();
    let state = tempfile::tempdir().unwrap();
    let prefix = unique_prefix("cluster");

    // Every node, as the services report it.
    let status = cluster.status(&prefix, state.path());
    let spark = &status["services"]["spark"]["detail"];
    assert_eq!(spark["aliveworkers"], 2, "{spark:#}");
    let workers = spark["workers"].as_array().unwrap();
    assert_eq!(workers.len(), 2, "{spark:#}");
    for w in workers {
        assert_eq!(w["state"], "ALIVE", "{w}");
        assert_eq!(w["cores"], 1, "{w}");
        assert_eq!(w["memory"], 1024, "{w}");
    }
    let hdfs = &status["services"]["hdfs"]["detail"];
    assert_eq!(hdfs["live_datanodes"], 3, "{hdfs:#}");
    let nodes = hdfs["datanodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 3, "{hdfs:#}");
    for n in nodes {
        assert!(n["live"].as_bool().unwrap() && u64_at(n, "capacity") > 0, "{n}");
    }
    for (replica, alive) in [("datanode", true), ("datanode-2", true), ("datanode-3", true)] {
        assert_eq!(cluster.stack_check_passes(replica), alive, "{replica}'s check");
    }
    for replica in ["spark-worker", "spark-worker-2"] {
        assert!(cluster.stack_check_passes(replica), "{replica}'s check");
    }

    // The lab's data on the cluster: its blocks on several DataNodes, the batch exact.
    let raw_zone = format!("{}/lab/raw", cluster.hdfs_url());
    stream_sample_into(&prefix, &raw_zone, state.path());
    let url = fresh_database("cluster").await;
    let batch = |url: String| {
        let mut cmd = stage_cmd(
            &prefix,
            raw_zone.as_ref(),
            state.path(),
            &["batch", "--json", "--pg", &url],
        );
        json_stdout(&run_ok(&mut cmd))
    };
    batch(url.clone());
    assert_tables_equal_reference(&connect(&url).await, &reference(&sample_dir())).await;
    let hdfs = cluster.wait_hdfs(&prefix, state.path(), "blocks reported", Duration::from_secs(30), |h| {
        h["datanodes"]
            .as_array()
            .is_some_and(|n| n.iter().filter(|n| u64_at(n, "blocks") > 0).count() >= 2)
    });
    let blocks: Vec<u64> = hdfs["datanodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| u64_at(n, "blocks"))
        .collect();
    eprintln!(
        "blocks per DataNode: {blocks:?}, under-replicated {}",
        hdfs["under_replicated_blocks"]
    );
    assert!(
        blocks.iter().sum::<u64>() >= 2 * u64_at(&hdfs, "blocks_total"),
        "every block on two DataNodes (replication 2): {hdfs:#}"
    );

    // DataNode 2 lost: declared dead, every record still read, its replicas copied again.
    cluster.script("hdfs", &["stop-datanode", "2"]);
    let hdfs = cluster.wait_hdfs(
        &prefix,
        state.path(),
        "DataNode 2 declared dead",
        Duration::from_secs(90),
        |h| h["dead_datanodes"] == 1 && h["live_datanodes"] == 2,
    );
    assert!(
        !cluster.stack_check_passes("datanode-2"),
        "the stack's check of a dead DataNode fails"
    );
    assert!(cluster.stack_check_passes("datanode-3"));
    let dead: Vec<&Value> = hdfs["datanodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["live"] == false)
        .collect();
    assert_eq!(dead.len(), 1, "{hdfs:#}");
    assert!(
        dead[0]["name"]
            .as_str()
            .unwrap()
            .contains(&format!(":{}", datanode_port(2))),
        "DataNode 2 (port {}) is the dead one: {hdfs:#}",
        datanode_port(2)
    );
    let url = fresh_database("cluster_lost").await;
    batch(url.clone());
    assert_tables_equal_reference(&connect(&url).await, &reference(&sample_dir())).await;
    // The NameNode's word (nothing under-replicated, no copy pending) and the DataNodes' own
    // block counts: the two left hold two replicas of every block.
    let live_replicas = |h: &Value| -> u64 {
        h["datanodes"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|n| n["live"] == true)
            .map(|n| u64_at(n, "blocks"))
            .sum()
    };
    cluster.wait_hdfs(
        &prefix,
        state.path(),
        "replicas copied again",
        Duration::from_secs(120),
        |h| {
            h["under_replicated_blocks"] == 0
                && h["pending_replication_blocks"] == 0
                && h["missing_blocks"] == 0
                && live_replicas(h) >= 2 * u64_at(h, "blocks_total")
        },
    );

    // Back: three live DataNodes, nothing under-replicated.
    cluster.script("hdfs", &["start-datanode", "2"]);
    cluster.wait_hdfs(&prefix, state.path(), "DataNode 2 back", Duration::from_secs(60), |h| {
        h["live_datanodes"] == 3 && h["dead_datanodes"] == 0 && h["under_replicated_blocks"] == 0
    });

    // The same as a lesson, on DataNode 3 (the harness's script is the lesson's control).
    let script = cluster.script_command("hdfs");
    let mut lesson = common::lab();
    lesson
        .args(["lesson", "run", "datanode-lost", "--json"])
        .args(["--state-dir", state.path().to_str().unwrap(), "--topic-prefix", &prefix])
        .args(["--hdfs", &cluster.hdfs_url()])
        .args(["--hdfs-http", &format!("http://127.0.0.1:{HDFS_HTTP_PORT}")])
        .env("LAB_CONTROL_DATANODE_STOP", format!("{script} stop-datanode 3"))
        .env("LAB_CONTROL_DATANODE_START", format!("{script} start-datanode 3"));
    cluster.with_env(&mut lesson);
    let out = lesson.output_guarded();
    assert!(out.status.success(), "{}", common::output_text(&out));
    let report = json_stdout(&out);
    assert_eq!(report["recovered"], true, "{report}");
    let signal = |what: &str| {
        report["signals"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["what"] == what)
            .and_then(|s| s["value"].as_str())
            .unwrap_or_else(|| panic!("no signal {what:?} in {report:#}"))
            .to_string()
    };
    assert!(
        signal("DataNode dead").contains(&format!(":{}", datanode_port(3))),
        "DataNode 3 (port {}): {report:#}",
        datanode_port(3)
    );
    for what in [
        "canaries written",
        "raw-zone writes go on",
        "replicas copied again",
        "every canary read",
        "DataNode live",
    ] {
        signal(what);
    }
    cluster.wait_hdfs(
        &prefix,
        state.path(),
        "after the lesson",
        Duration::from_secs(60),
        |h| h["live_datanodes"] == 3 && h["under_replicated_blocks"] == 0,
    );
}
