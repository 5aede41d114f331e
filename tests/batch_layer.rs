//! The real batch layer on real services started by `make test` (tests/services/): the raw zone
//! on HDFS, the Rust batch (DataFusion) and its PySpark twin on a Spark standalone cluster, and the
//! `yelp_batch` Airflow DAG driving either one through Airflow's REST API.
// Needs the services tests/services/up.sh starts: `make test` turns this feature on,
// so a plain `cargo test` on a fresh clone skips it.
#![cfg(feature = "service-tests")]

mod common;
use common::OutputGuarded;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use bigdata_lab::pipeline::compact::{LOCK, sample_in_small_files};
use bigdata_lab::storage::{AnyRawZone, PartFile, RawZone};
use common::services::{Airflow, hdfs_client, hdfs_delete, hdfs_raw_zone, jobs_dir, spark_submit};
use common::{
    TABLES, assert_tables_equal_reference, connect, fresh_database, lab, read_table, reference, run_ok, run_stage,
    sample_dir, service_env, stage_cmd, stream_sample_into, unique_prefix,
};
use serde_json::{Value, json};

/// Runs a `lab` stage against the test broker with the given raw zone; returns its JSON report.
fn stage(prefix: &str, raw_zone: &str, state: &std::path::Path, args: &[&str]) -> Value {
    run_stage(prefix, raw_zone.as_ref(), state, args)
}

async fn assert_same_tables(a_url: &str, b_url: &str) {
    let (a, b) = (connect(a_url).await, connect(b_url).await);
    for table in TABLES {
        let (ta, tb) = (read_table(&a, table).await, read_table(&b, table).await);
        assert_eq!(ta.len(), tb.len(), "{table}: row count");
        for (i, (ra, rb)) in ta.iter().zip(&tb).enumerate() {
            assert_eq!(ra, rb, "{table}: row {i} differs between the engines");
        }
    }
}

/// jobs/batch_layer.py on the Spark version the Docker stack runs (the apache/spark tag of
/// stacks/lambda.toml, whose scheduler image carries that Spark), in local mode over a local raw
/// zone: the same tables as DataFusion's, again with no Python on the executors.
#[tokio::test(flavor = "multi_thread")]
async fn the_pyspark_twin_runs_on_the_docker_stacks_spark_version() {
    let lambda =
        bigdata_lab::stack::Stack::load(&PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("stacks/lambda.toml")).unwrap();
    // The tag is the Spark version, maybe followed by the image variant (3.5.3-java17-python3).
    let tag = lambda.services["spark-worker"].image.tag.clone().unwrap();
    let spark_version = tag.split('-').next().unwrap();
    let venv = PathBuf::from(service_env("LAB_TEST_STACK_SPARK_VENV"));
    let python = venv.join("bin/python");
    let version =
        run_ok(std::process::Command::new(&python).args(["-c", "import pyspark; print(pyspark.__version__)"]));
    assert_eq!(
        String::from_utf8_lossy(&version.stdout).trim(),
        spark_version,
        "the harness installs the stack's Spark"
    );

    let prefix = unique_prefix("spark-stack");
    let raw = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let raw_zone = raw.path().to_str().unwrap();
    let valid = stream_sample_into(&prefix, raw_zone, state.path());
    let df_url = fresh_database("lab_stack_spark_df").await;
    stage(&prefix, raw_zone, state.path(), &["batch", "--json", "--pg", &df_url]);

    let spark_url = fresh_database("lab_stack_spark").await;
    let site = run_ok(
        std::process::Command::new(&python)
            .args(["-c", "import os, pyspark; print(os.path.dirname(pyspark.__file__))"]),
    );
    let out = run_ok(
        std::process::Command::new(venv.join("bin/spark-submit"))
            .env("SPARK_HOME", String::from_utf8_lossy(&site.stdout).trim())
            .env("SPARK_LOCAL_IP", "127.0.0.1")
            .args([
                "--master",
                "local[2]",
                "--conf",
                "spark.pyspark.python=/nonexistent/python3",
            ])
            .arg("--conf")
            .arg(format!("spark.pyspark.driver.python={}", python.display()))
            .arg(jobs_dir().join("batch_layer.py"))
            // The job reads one lab's raw zone: the prefix's directory.
            .args(["--raw-zone", &format!("{raw_zone}/{prefix}"), "--pg", &spark_url]),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report: Value = serde_json::from_str(stdout.lines().last().unwrap_or("")).expect("spark job report");
    assert_eq!(report["rows_in"], valid, "{report}");
    assert_same_tables(&df_url, &spark_url).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn datafusion_and_spark_build_identical_serving_tables_from_hdfs() {
    let prefix = unique_prefix("engines");
    let raw_zone = hdfs_raw_zone("engines");
    let state = tempfile::tempdir().unwrap();
    let valid = stream_sample_into(&prefix, &raw_zone, state.path());

    // The Rust batch, reading HDFS through the object-store adapter.
    let df_url = fresh_database("lab_engine_datafusion").await;
    let batch = stage(&prefix, &raw_zone, state.path(), &["batch", "--json", "--pg", &df_url]);
    assert_eq!(batch["rows_in"], valid, "no record lost or doubled on HDFS");
    assert_tables_equal_reference(&connect(&df_url).await, &reference(&sample_dir())).await;

    // The PySpark twin on the standalone cluster, same raw zone.
    let spark_url = fresh_database("lab_engine_spark").await;
    // The executors get no usable Python: the job must need none there (it is SQL and a
    // driver-side load), because the Docker stack's Spark image has another Python than the
    // Airflow image its driver runs in.
    let no_executor_python = |raw_zone: &str, pg_url: &str| {
        let driver_python = PathBuf::from(service_env("LAB_TEST_VENV")).join("bin/python");
        run_ok(
            spark_submit()
                .args(["--conf", "spark.pyspark.python=/nonexistent/python3"])
                .arg("--conf")
                .arg(format!("spark.pyspark.driver.python={}", driver_python.display()))
                .arg(jobs_dir().join("batch_layer.py"))
                .args(["--raw-zone", raw_zone, "--pg", pg_url]),
        )
    };
    let out = no_executor_python(&format!("{raw_zone}/{prefix}"), &spark_url);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report: Value = serde_json::from_str(stdout.lines().last().unwrap_or("")).expect("spark job report");
    assert_eq!(report["rows_in"], valid);
    assert_eq!(report["engine"], "spark");
    assert_same_tables(&df_url, &spark_url).await;
    // Entities missing from the raw zone become empty tables, still without Python on the executors.
    let empty_zone = tempfile::tempdir().unwrap();
    let empty_url = fresh_database("lab_engine_spark_empty").await;
    let out = no_executor_python(empty_zone.path().to_str().unwrap(), &empty_url);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let empty: Value = serde_json::from_str(stdout.lines().last().unwrap_or("")).expect("spark job report");
    assert_eq!(
        (empty["rows_in"].as_u64(), empty["rows_out"].as_u64()),
        (Some(0), Some(0)),
        "{empty}"
    );

    let client = connect(&spark_url).await;
    let row = client
        .query_one("SELECT engine, status FROM yelp.batch_runs", &[])
        .await
        .unwrap();
    assert_eq!(
        (row.get::<_, String>(0), row.get::<_, String>(1)),
        ("spark".into(), "succeeded".into())
    );
    hdfs_delete(
        raw_zone
            .trim_start_matches(&service_env("LAB_TEST_HDFS_URL"))
            .trim_end_matches("/raw"),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn lab_check_passes_on_a_good_load_and_fails_loudly_on_a_tampered_one() {
    let prefix = unique_prefix("check");
    let raw_zone = hdfs_raw_zone("check");
    let state = tempfile::tempdir().unwrap();
    stream_sample_into(&prefix, &raw_zone, state.path());
    let url = fresh_database("lab_quality_check").await;
    stage(&prefix, &raw_zone, state.path(), &["batch", "--json", "--pg", &url]);
    let check = stage(&prefix, &raw_zone, state.path(), &["check", "--json", "--pg", &url]);
    assert_eq!(check["passed"], true, "{check}");

    // One serving row lost: the check must name the failing comparison and exit non-zero.
    connect(&url)
        .await
        .execute(
            "DELETE FROM yelp.user_summary WHERE user_id IN (SELECT user_id FROM yelp.user_summary LIMIT 1)",
            &[],
        )
        .await
        .unwrap();
    let out = lab()
        .args(["check", "--pg", &url, "--raw-zone", &raw_zone])
        .arg("--state-dir")
        .arg(state.path())
        .output_guarded();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "check passed a tampered load:\n{stdout}");
    assert!(
        stdout.contains("FAIL users (distinct user_id) = user_summary rows"),
        "{stdout}"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("data-quality check failed"));
}

/// Every file under `dir` on the test HDFS (recursively), read from the NameNode.
async fn hdfs_files(dir: &str) -> Vec<String> {
    let mut files: Vec<String> = hdfs_client()
        .list_status(dir, true)
        .await
        .unwrap_or_else(|e| panic!("list {dir} on HDFS: {e}"))
        .into_iter()
        .filter(|s| !s.isdir)
        .map(|s| s.path)
        .collect();
    files.sort();
    files
}

/// Where a consumer resumes each partition: the highest offset of each entity's partition and
/// epoch among the part files.
fn resume_points(files: &[String]) -> BTreeMap<(String, i32, String), i64> {
    let mut points = BTreeMap::new();
    for path in files {
        let part = PartFile::parse(path).unwrap_or_else(|| panic!("not a part file: {path}"));
        let entity = path
            .split('/')
            .rev()
            .nth(2)
            .expect("<entity>/date=…/part-…")
            .to_string();
        let point = points
            .entry((entity, part.partition, part.epoch.to_string()))
            .or_insert(part.last_offset);
        *point = (*point).max(part.last_offset);
    }
    points
}

/// `lab compact` on HDFS: the sample in files of 20 records over three partitions, as a consumer
/// leaves them after a few minutes, becomes a few files per partition (as its dry run said,
/// which changed nothing); the batch loads the same
/// tables from them as before, with no record doubled, the quality check passes, and each
/// partition keeps its highest offset (where a consumer resumes). A compaction stopped after
/// writing its merge and before removing the inputs (the inputs put back) still loads each
/// record once, and the next compaction removes those inputs.
#[tokio::test(flavor = "multi_thread")]
async fn lab_compact_merges_small_files_on_hdfs_and_the_batch_loads_the_same_tables() {
    let prefix = unique_prefix("compact");
    let raw_zone = hdfs_raw_zone("compact");
    let state = tempfile::tempdir().unwrap();
    let zone = AnyRawZone::open(std::path::Path::new(&raw_zone), &prefix).unwrap();
    let written = sample_in_small_files(&zone, &sample_dir()).await.unwrap();
    let dir = format!(
        "{}/{prefix}",
        raw_zone.trim_start_matches(&service_env("LAB_TEST_HDFS_URL"))
    );
    let before = hdfs_files(&dir).await;
    assert_eq!(before.len(), written.len());

    let url_before = fresh_database("lab_compact_before").await;
    let batch_before = stage(
        &prefix,
        &raw_zone,
        state.path(),
        &["batch", "--json", "--pg", &url_before],
    );
    let planned = stage(&prefix, &raw_zone, state.path(), &["compact", "--dry-run", "--json"]);
    assert_eq!(hdfs_files(&dir).await, before, "the dry run changed the zone");
    let planned_inputs: usize = planned["merges"]
        .as_array()
        .unwrap_or_else(|| panic!("{planned}"))
        .iter()
        .map(|m| m["inputs"].as_array().map_or(0, Vec::len))
        .sum();
    // Another compaction's lock (a minute old): this one does nothing and says who holds it.
    let lock = json!({"token": 1, "pid": 4242, "host": "elsewhere", "since": chrono::Utc::now() - chrono::TimeDelta::minutes(1)});
    zone.put_atomic(LOCK, lock.to_string().into_bytes()).await.unwrap();
    let busy = stage_cmd(&prefix, raw_zone.as_ref(), state.path(), &["compact"]).output_guarded();
    let stderr = String::from_utf8_lossy(&busy.stderr);
    assert!(
        !busy.status.success() && stderr.contains("another compaction is running (pid 4242 on elsewhere"),
        "{stderr}"
    );
    zone.remove(LOCK).await.unwrap();
    assert_eq!(hdfs_files(&dir).await, before, "a refused compaction changed the zone");

    let compacted = stage(&prefix, &raw_zone, state.path(), &["compact", "--json"]);
    assert_eq!(compacted["merged"].as_u64(), Some(planned_inputs as u64), "{planned}");
    assert!(
        compacted["merged"].as_u64() > Some(0) && compacted["into"].as_u64() > Some(0),
        "{compacted}"
    );
    assert_eq!(
        (compacted["leftovers_removed"].as_u64(), compacted["skipped"].as_u64()),
        (Some(0), Some(0)),
        "{compacted}"
    );
    // What the NameNode holds: each merge's inputs gone, its output there, and no lock left.
    let after = hdfs_files(&dir).await;
    let planned_paths = |key: &str| -> Vec<String> {
        let merges = planned["merges"].as_array().unwrap_or_else(|| panic!("{planned}"));
        let named = merges.iter().flat_map(|m| match &m[key] {
            Value::Array(inputs) => inputs.iter().filter_map(Value::as_str).collect(),
            other => other.as_str().into_iter().collect::<Vec<_>>(),
        });
        named.map(|rel| format!("{dir}/{rel}")).collect()
    };
    let (inputs, outputs) = (planned_paths("inputs"), planned_paths("output"));
    let expected: BTreeSet<&String> = before.iter().filter(|f| !inputs.contains(f)).chain(&outputs).collect();
    assert_eq!(after.iter().collect::<BTreeSet<_>>(), expected, "{compacted}");
    assert!(
        planned_inputs > before.len() / 2,
        "{planned_inputs} of {} files merged",
        before.len()
    );
    assert_eq!(resume_points(&after), resume_points(&before));

    let url_after = fresh_database("lab_compact_after").await;
    let batch_after = stage(
        &prefix,
        &raw_zone,
        state.path(),
        &["batch", "--json", "--pg", &url_after],
    );
    assert_eq!(
        batch_after["rows_in"], batch_before["rows_in"],
        "no record lost or doubled"
    );
    assert_same_tables(&url_before, &url_after).await;
    let check = stage(
        &prefix,
        &raw_zone,
        state.path(),
        &["check", "--json", "--pg", &url_after],
    );
    assert_eq!(check["passed"], true, "{check}");

    // Stopped between writing a merge and removing its inputs: the inputs are still there.
    let first_merge: Vec<&str> = planned["merges"][0]["inputs"]
        .as_array()
        .unwrap_or_else(|| panic!("{planned}"))
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let inputs: Vec<&(String, Vec<u8>)> = written
        .iter()
        .filter(|(path, _)| first_merge.contains(&path.as_str()))
        .collect();
    assert_eq!(inputs.len(), first_merge.len(), "{first_merge:?}");
    for (path, bytes) in &inputs {
        zone.put_atomic(path, bytes.clone()).await.unwrap();
    }
    stage(
        &prefix,
        &raw_zone,
        state.path(),
        &["batch", "--json", "--pg", &url_after],
    );
    assert_same_tables(&url_before, &url_after).await;
    let cleanup = stage(&prefix, &raw_zone, state.path(), &["compact", "--json"]);
    assert_eq!(
        cleanup["leftovers_removed"].as_u64(),
        Some(inputs.len() as u64),
        "{cleanup}"
    );
    assert_eq!(cleanup["merged"].as_u64(), Some(0), "{cleanup}");
    assert_eq!(hdfs_files(&dir).await, after);
    hdfs_delete(dir.trim_end_matches(&format!("/raw/{prefix}"))).await;
}

/// The whole batch layer as a user runs it: stream into HDFS, then Airflow runs `yelp_batch`,
/// first with the DataFusion engine, then with Spark; both leave tables equal to the reference
/// and a recorded, quality-checked run.
#[tokio::test(flavor = "multi_thread")]
async fn airflow_yelp_batch_runs_both_engines_end_to_end() {
    // The harness's Airflow reads hdfs://…/lab/raw and loads the database `yelp` (its connection
    // lab_postgres); this test owns both.
    let raw_zone = format!("{}/lab/raw", service_env("LAB_TEST_HDFS_URL"));
    hdfs_delete("/lab/raw").await;
    let pg_url = service_env("LAB_TEST_AIRFLOW_PG_URL");
    let client = connect(&pg_url).await;
    client
        .batch_execute("DROP SCHEMA IF EXISTS yelp CASCADE")
        .await
        .unwrap();

    let prefix = unique_prefix("airflow");
    let state = tempfile::tempdir().unwrap();
    stream_sample_into(&prefix, &raw_zone, state.path());
    let reference = reference(&sample_dir());

    let airflow = Airflow::connect();
    airflow.unpause_when_parsed("yelp_batch");
    for engine in ["datafusion", "spark"] {
        let conf = json!({"engine": engine, "teaching": true, "topic_prefix": prefix});
        let run_id = airflow.trigger("yelp_batch", &conf);
        let state = airflow.wait_run("yelp_batch", &run_id, Duration::from_secs(600));
        let tasks = airflow.task_states("yelp_batch", &run_id);
        assert_eq!(
            state,
            "success",
            "{engine} run failed: {tasks}\nbatch log: {}\ncheck log: {}",
            airflow.task_log("yelp_batch", &run_id, "batch"),
            airflow.task_log("yelp_batch", &run_id, "quality_check")
        );
        for task in ["wait_for_raw_files", "compact", "batch", "quality_check", "record_run"] {
            assert!(tasks.contains(&format!("{task}=success")), "{tasks}");
        }
        // `lab compact` ran and printed its report: a failure leaves the task green (the batch
        // reads the files as they are) with no report, only the error, in the log.
        let compact_log = airflow.task_log("yelp_batch", &run_id, "compact");
        assert!(compact_log.contains("leftovers_removed"), "{compact_log}");
        assert_tables_equal_reference(&client, &reference).await;
        let row = client
            .query_one(
                "SELECT engine, quality, status, rows_in FROM yelp.batch_runs WHERE dag_run_id = $1",
                &[&run_id],
            )
            .await
            .unwrap_or_else(|e| panic!("no batch_runs row for {run_id}: {e}"));
        assert_eq!(row.get::<_, String>(0), engine);
        assert_eq!(row.get::<_, String>(1), "passed");
        assert_eq!(row.get::<_, String>(2), "succeeded");
        assert_eq!(
            row.get::<_, i64>(3),
            i64::try_from(reference.total_lines - reference.invalid_lines).unwrap()
        );
    }
}

/// The DAG file imports under the harness's Airflow and has the documented shape: daily by
/// default, every 5 minutes in teaching mode, manual with LAB_AIRFLOW_SCHEDULE=none.
#[test]
fn yelp_batch_dag_imports_with_the_documented_schedules() {
    let python = std::path::PathBuf::from(service_env("LAB_TEST_VENV")).join("bin/python");
    let dag = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("dags/yelp_batch.py");
    let probe = r#"
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("yelp_batch", sys.argv[1])
m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)
d = m.dag
print(json.dumps({"schedule": str(d.schedule), "catchup": d.catchup,
  "tasks": sorted(d.task_ids), "retries": d.default_args["retries"],
  "engine": d.params.get_param("engine").value}))
"#;
    let run = |envs: &[(&str, &str)]| -> Value {
        let mut cmd = std::process::Command::new(&python);
        cmd.args(["-c", probe]).arg(&dag);
        cmd.env_remove("LAB_AIRFLOW_TEACHING")
            .env_remove("LAB_AIRFLOW_SCHEDULE");
        cmd.env("AIRFLOW_HOME", tempfile::tempdir().unwrap().keep());
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let out = run_ok(&mut cmd);
        let stdout = String::from_utf8_lossy(&out.stdout);
        serde_json::from_str(stdout.lines().last().unwrap_or("")).expect("probe output")
    };
    let default = run(&[]);
    assert_eq!(default["schedule"], "@daily");
    assert_eq!(default["catchup"], false);
    assert_eq!(default["engine"], "datafusion");
    assert_eq!(
        default["tasks"],
        json!(["batch", "compact", "quality_check", "record_run", "wait_for_raw_files"])
    );
    assert!(default["retries"].as_u64().unwrap() >= 1);
    assert_eq!(run(&[("LAB_AIRFLOW_TEACHING", "1")])["schedule"], "*/5 * * * *");
    assert_eq!(run(&[("LAB_AIRFLOW_SCHEDULE", "none")])["schedule"], "None");
}
