//! `lab demo --headless` on the checked-in sample: the embedded pipeline (librdkafka mock cluster,
//! local raw zone, DataFusion) must produce serving tables equal to an independent computation.

mod common;
use common::OutputGuarded;

use common::{
    Reference, assert_tables_equal_reference, connect, fresh_database, json_stdout, lab, reference, run_ok, sample_dir,
};

fn check_stream_counts(summary: &serde_json::Value, reference: &Reference) {
    assert_eq!(
        summary["producer"]["sent"], reference.total_lines,
        "every input line is produced"
    );
    assert_eq!(
        summary["transform"]["consumed"], reference.total_lines,
        "every line reaches the transform"
    );
    assert_eq!(
        summary["transform"]["dead_lettered"], reference.invalid_lines,
        "exactly the invalid lines are dead-lettered"
    );
    assert_eq!(summary["dlq"], reference.invalid_lines);
    assert_eq!(
        summary["consumer"]["records_written"],
        reference.total_lines - reference.invalid_lines,
        "every clean record lands once"
    );
    assert_eq!(
        summary["transform"]["delivery"], "exactly-once",
        "the mock cluster supports transactions"
    );
    assert_eq!(summary["final_lag"]["transform"], 0);
    assert_eq!(summary["final_lag"]["consumer"], 0);
    assert!(reference.invalid_lines > 0, "the sample should exercise the DLQ");
}

#[cfg_attr(not(feature = "service-tests"), ignore = "needs PostgreSQL: run it with `make test`")]
#[tokio::test(flavor = "multi_thread")]
async fn headless_demo_into_postgres_matches_reference() {
    let url = fresh_database("lab_demo_embedded").await;
    let state = tempfile::tempdir().unwrap();
    let demo = || {
        run_ok(
            lab()
                .args(["demo", "--headless", "--pg", &url, "--state-dir"])
                .arg(state.path()),
        )
    };
    // Twice in the same state dir and database: the second run finds the first one's raw zone
    // and serving tables, and must load the same tables, not twice the records.
    demo();
    let out = demo();
    let log = std::fs::read_to_string(state.path().join("logs/lab.log")).expect("lab.log");
    assert!(
        !log.contains("already exists, skipping"),
        "PostgreSQL's notices on the second load reached the log"
    );
    let summary = json_stdout(&out);
    let reference = reference(&sample_dir());
    check_stream_counts(&summary, &reference);
    for table in common::TABLES {
        assert_eq!(
            summary["serving_rows"][table],
            reference.tables[table].len(),
            "{table} rows in the summary"
        );
    }
    let client = connect(&url).await;
    assert_tables_equal_reference(&client, &reference).await;
    let runs = client
        .query(
            "SELECT status, rows_out FROM yelp.batch_runs ORDER BY started_at DESC",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(runs.len(), 2, "one row per load");
    let run = &runs[0];
    assert_eq!(run.get::<_, String>(0), "succeeded");
    assert_eq!(run.get::<_, i64>(1), summary["batch"]["rows_out"].as_i64().unwrap());
}

fn throwaway_dirs() -> std::collections::BTreeSet<String> {
    std::fs::read_dir(std::env::temp_dir())
        .expect("list the temp dir")
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("lab-pg-"))
        .collect()
}

#[cfg_attr(not(feature = "service-tests"), ignore = "needs PostgreSQL: run it with `make test`")]
#[tokio::test(flavor = "multi_thread")]
async fn headless_demo_with_throwaway_postgres() {
    // No --pg: the demo starts (and removes) its own cluster from the local server binaries,
    // even where the state dir names the lab's serving database, as `lab up`'s endpoints.toml
    // does: the demo loaded its tables there and replaced the lab's.
    let labs_own = fresh_database("lab_demo_not_the_labs").await;
    let before = throwaway_dirs();
    let state = tempfile::tempdir().unwrap();
    std::fs::write(
        state.path().join("endpoints.toml"),
        format!("[postgres]\nurl = \"{labs_own}\"\n"),
    )
    .unwrap();
    let out = run_ok(lab().args(["demo", "--headless", "--state-dir"]).arg(state.path()));
    let summary = json_stdout(&out);
    assert!(
        summary["serving"].as_str().unwrap().contains("throwaway"),
        "{}",
        summary["serving"]
    );
    let tables: i64 = connect(&labs_own)
        .await
        .query_one(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema NOT IN ('pg_catalog', 'information_schema')",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(tables, 0, "the demo wrote tables into the lab's own database");
    let reference = reference(&sample_dir());
    check_stream_counts(&summary, &reference);
    for table in common::TABLES {
        assert_eq!(summary["serving_rows"][table], reference.tables[table].len(), "{table}");
    }
    let left: Vec<_> = throwaway_dirs().difference(&before).cloned().collect();
    assert!(left.is_empty(), "throwaway cluster directory left behind: {left:?}");
}

#[test]
fn generated_dataset_demo_with_parquet_serving_tables() {
    // 100k reviews (~50 MB) is ten times what librdkafka's mock cluster keeps per partition
    // (5 MB): without the demo's backpressure the broker drops records before they are read.
    let state = tempfile::tempdir().unwrap();
    let out = run_ok(
        lab()
            .args([
                "demo",
                "--headless",
                "--reviews",
                "100000",
                "--seed",
                "3",
                "--parquet",
                "--state-dir",
            ])
            .arg(state.path()),
    );
    let summary = json_stdout(&out);
    let data = state.path().join("datasets/generated-100000-seed3");
    let reference = reference(&data);
    check_stream_counts(&summary, &reference);
    for table in common::TABLES {
        assert_eq!(summary["serving_rows"][table], reference.tables[table].len(), "{table}");
        assert!(
            state.path().join(format!("demo/serving/{table}.parquet")).is_file(),
            "{table}.parquet"
        );
    }
}

/// A binary away from its source tree (`cargo install`, a copy) runs the demo from any directory:
/// the sample it carries is written out under the state dir, byte for byte the checkout's.
#[test]
fn a_copied_binary_runs_the_demo_from_an_empty_directory() {
    let bin = tempfile::tempdir().unwrap();
    let cwd = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let copy = bin.path().join("lab");
    std::fs::copy(env!("CARGO_BIN_EXE_lab"), &copy).unwrap();
    let mut cmd = std::process::Command::new(&copy);
    for var in ["LAB_PG_URL", "LAB_KAFKA_BROKERS", "LAB_STATE_DIR", "LAB_RAW_ZONE"] {
        cmd.env_remove(var);
    }
    cmd.current_dir(cwd.path())
        .args(["demo", "--headless", "--parquet", "--state-dir"])
        .arg(state.path());
    let summary = json_stdout(&run_ok(&mut cmd));
    let dataset = std::path::PathBuf::from(summary["dataset"].as_str().expect("the summary names its dataset"));
    assert!(
        dataset.starts_with(state.path().join("bundle")),
        "the demo read {}, not the sample written out under the state dir",
        dataset.display()
    );
    for entry in std::fs::read_dir(sample_dir()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap();
        assert_eq!(
            std::fs::read(dataset.join(name)).unwrap(),
            std::fs::read(&path).unwrap(),
            "{} differs from the checkout's",
            name.to_string_lossy()
        );
    }
    check_stream_counts(&summary, &reference(&sample_dir()));
    assert!(
        std::fs::read_dir(cwd.path()).unwrap().next().is_none(),
        "the demo wrote into the working directory"
    );
}

#[test]
fn unreachable_postgres_fails_before_streaming() {
    let state = tempfile::tempdir().unwrap();
    let out = lab()
        .args([
            "demo",
            "--headless",
            "--pg",
            "host=127.0.0.1 port=1 user=x dbname=y connect_timeout=2",
            "--state-dir",
        ])
        .arg(state.path())
        .output_guarded();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cannot connect") && stderr.contains("LAB_PG_URL"),
        "{stderr}"
    );
    assert!(
        !state.path().join("demo/raw").exists(),
        "nothing should have been streamed"
    );
}
