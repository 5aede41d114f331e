//! The probes against real running services (started by `make test`): Kafka lag as a group
//! consumes, HDFS NameNode + raw zone, Spark master + worker, Airflow 3 (trigger `lab_smoke`
//! through the probe's action and see it succeed), PostgreSQL serving tables.
//! A missing endpoint variable fails the test with instructions: nothing passes vacuously.
// Needs the services tests/services/up.sh starts: `make test` turns this feature on,
// so a plain `cargo test` on a fresh clone skips it.
#![cfg(feature = "service-tests")]
// Helpers outside #[test] functions: a panic there is the test's failure report.
#![allow(clippy::unwrap_used)]

mod common;
use common::OutputGuarded;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use bigdata_lab::probes::airflow::{AirflowProbe, AirflowTarget};
use bigdata_lab::probes::hdfs::{self, HdfsProbe};
use bigdata_lab::probes::kafka::KafkaProbe;
use bigdata_lab::probes::postgres::PostgresProbe;
use bigdata_lab::probes::spark::SparkProbe;
use bigdata_lab::probes::{Health, LabService, ProbeTargets};
use common::service_env;
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};

/// Waiting for a service to reach a state (not a timing assertion: only an upper bound).
const PATIENCE: Duration = Duration::from_secs(120);

fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_nanos();
    format!("{prefix}{}x{}", std::process::id(), nanos % 1_000_000_000)
}

/// Receives `n` records and commits the position after them.
async fn consume_and_commit(consumer: &StreamConsumer, n: usize) {
    for _ in 0..n {
        tokio::time::timeout(Duration::from_secs(30), consumer.recv())
            .await
            .expect("a record within 30 s")
            .expect("a record, not an error");
    }
    consumer.commit_consumer_state(CommitMode::Sync).expect("commit");
}

#[tokio::test(flavor = "multi_thread")]
async fn kafka_probe_reports_watermarks_lag_as_a_group_consumes_and_dlq_size() {
    let brokers = service_env("LAB_TEST_KAFKA");
    let prefix = unique("mon");
    let topic = format!("{prefix}.review");
    let admin: AdminClient<DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", &brokers).create().unwrap();
    admin
        .create_topics(
            &[
                NewTopic::new(&topic, 2, TopicReplication::Fixed(1)),
                NewTopic::new(&format!("{prefix}.dlq"), 1, TopicReplication::Fixed(1)),
            ],
            &AdminOptions::new(),
        )
        .await
        .unwrap();
    common::produce(&brokers, &topic, 100).await;
    common::produce(&brokers, &format!("{prefix}.dlq"), 3).await;

    let group = format!("lab-transform-{prefix}");
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("group.id", &group)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    consumer.subscribe(&[&topic]).unwrap();
    consume_and_commit(&consumer, 30).await;

    let mut probe = KafkaProbe::new(&brokers, &prefix);
    let snap = probe.poll().await;
    assert_eq!(snap.status.health, Health::Up, "{:?}", snap.status);
    let k = snap.detail.unwrap();
    assert!(!k.brokers.is_empty());
    let t = k.topics.iter().find(|t| t.name == topic).expect("topic listed");
    assert_eq!(t.partitions.len(), 2);
    assert_eq!(t.messages, 100);
    assert_eq!(t.partitions.iter().map(|p| p.high).sum::<i64>(), 100);
    assert_eq!(k.dlq_messages, 3);
    let g = k.groups.iter().find(|g| g.name == group).expect("group listed");
    assert_eq!(g.total_lag, 70, "{g:?}");
    assert_eq!(g.partitions.iter().filter_map(|p| p.committed).sum::<i64>(), 30);

    // More records arrive and the group catches up: the rate shows and the lag drops to 0.
    common::produce(&brokers, &topic, 50).await;
    consume_and_commit(&consumer, 120).await;
    let k = probe.poll().await.detail.unwrap();
    let t = k.topics.iter().find(|t| t.name == topic).unwrap();
    assert_eq!(t.messages, 150);
    assert!(t.rate_in.is_some_and(|r| r > 0.0), "{t:?}");
    let g = k.groups.iter().find(|g| g.name == group).unwrap();
    assert_eq!(g.total_lag, 0, "{g:?}");
    assert_eq!(g.catch_up_s, Some(0.0));
    assert!(g.rate.is_some_and(|r| r > 0.0));
    assert!(!g.members.is_empty(), "the consumer is a live member: {g:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn hdfs_probe_reads_the_namenode_and_the_raw_zone() {
    let http = service_env("LAB_TEST_HDFS_HTTP");
    let rpc = service_env("LAB_TEST_HDFS_URL");
    // A file in the stack's raw zone and two in a raw zone elsewhere (an existing cluster's
    // `[raw_zone] path`), written through WebHDFS (create answers with a DataNode redirect).
    let client = reqwest::Client::new();
    let elsewhere = format!("/{}/raw", unique("elsewhere-"));
    let day = format!("date=2026-01-0{}", std::process::id() % 9 + 1);
    for (dir, files) in [
        (format!("/lab/raw/yelp/tip/{day}"), 1),
        (format!("{elsewhere}/yelp/tip/{day}"), 2),
    ] {
        for _ in 0..files {
            let name = unique("part-");
            let url = format!("{http}/webhdfs/v1{dir}/{name}.parquet?op=CREATE&overwrite=true&user.name=lab");
            let resp = client.put(&url).body(vec![7u8; 4096]).send().await.unwrap();
            assert!(resp.status().is_success(), "WebHDFS create: {}", resp.status());
        }
    }

    let mut probe = HdfsProbe::new(&http, hdfs::RAW_ZONE_ROOT, "yelp").unwrap();
    let snap = probe.poll().await;
    assert_ne!(snap.status.health, Health::Down, "{:?}", snap.status);
    let h = snap.detail.unwrap();
    assert!(h.capacity_total > 0 && h.capacity_remaining > 0);
    assert!(h.live_datanodes >= 1);
    assert_eq!(h.fs_state, "Operational");
    let tip = h.zones.get("tip").expect("tip zone summarised");
    assert!(tip.files >= 1 && tip.bytes >= 4096, "{tip:?}");

    // The raw zone elsewhere, as `lab status` is configured for it: exactly its two files.
    let state = tempfile::tempdir().unwrap();
    let out = common::lab()
        .args(["status", "--json", "--require", "hdfs"])
        .env("LAB_HDFS_URL", &rpc)
        .env("LAB_HDFS_HTTP", &http)
        .env("LAB_RAW_ZONE", format!("{rpc}{elsewhere}"))
        .env("LAB_STATE_DIR", state.path())
        .output_guarded();
    let json = common::json_stdout(&out);
    let detail = &json["services"]["hdfs"]["detail"];
    assert_eq!(detail["zone_dir"], format!("{elsewhere}/yelp"), "{json:#}");
    assert_eq!(detail["zones"]["tip"]["files"], 2, "{json:#}");
    assert_eq!(detail["zones"]["tip"]["bytes"], 2 * 4096, "{json:#}");
}

#[tokio::test(flavor = "multi_thread")]
async fn spark_probe_sees_the_master_and_its_worker() {
    let ui = service_env("LAB_TEST_SPARK_UI");
    let _master = service_env("LAB_TEST_SPARK_MASTER");
    let mut probe = SparkProbe::new(&ui).unwrap();
    let deadline = Instant::now() + PATIENCE;
    loop {
        let snap = probe.poll().await;
        if snap.status.health == Health::Up {
            let s = snap.detail.unwrap();
            assert_eq!(s.status, "ALIVE");
            assert!(s.aliveworkers >= 1 && s.cores >= 1);
            assert!(s.workers.iter().any(|w| w.state == "ALIVE"));
            break;
        }
        assert!(
            Instant::now() < deadline,
            "Spark never became healthy: {:?}",
            snap.status
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn airflow_target() -> AirflowTarget {
    AirflowTarget {
        url: service_env("LAB_TEST_AIRFLOW_URL"),
        username: service_env("LAB_TEST_AIRFLOW_USER"),
        password_file: Some(PathBuf::from(service_env("LAB_TEST_AIRFLOW_PASSWORD_FILE"))),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn airflow_probe_triggers_lab_smoke_and_sees_it_succeed() {
    let mut probe = AirflowProbe::new(airflow_target()).unwrap();
    // The DAG processor lists new DAG files after a while.
    let deadline = Instant::now() + PATIENCE;
    loop {
        let snap = probe.poll().await;
        assert_ne!(snap.status.health, Health::Down, "{:?}", snap.status);
        let a = snap.detail.unwrap();
        assert_eq!(a.auth_problem, None);
        let listed = |id: &str| a.dags.iter().find(|d| d.dag_id == id);
        if let (Some(smoke), Some(daily)) = (listed("lab_smoke"), listed("lab_daily")) {
            // The next run as Airflow computed it: none without a schedule, the next midnight
            // for @daily (paused or not).
            assert_eq!(smoke.next_run, None, "{smoke:?}");
            let next = daily
                .next_run
                .unwrap_or_else(|| panic!("lab_daily has no next run: {daily:?}"));
            let now = chrono::Utc::now();
            assert!(
                next > now - chrono::Duration::days(1) && next <= now + chrono::Duration::days(1),
                "{next}"
            );
            assert_eq!(next.format("%H:%M:%S").to_string(), "00:00:00", "{next}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "lab_smoke and lab_daily never listed: {:?}",
            a.dags
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    probe.set_paused("lab_smoke", false).await.unwrap();
    let run = probe.trigger("lab_smoke").await.unwrap();
    let deadline = Instant::now() + PATIENCE;
    loop {
        // The API server answers within the probe's 1 s most of the time; a slow answer while the
        // scheduler starts the run is asked again, until the deadline.
        let state = match probe.run_state("lab_smoke", &run).await {
            Ok(state) => state,
            Err(e) if e.to_string().contains("no answer within") && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
            Err(e) => panic!("run {run}: {e}"),
        };
        if state == "success" {
            break;
        }
        assert_ne!(state, "failed", "lab_smoke run {run} failed");
        assert!(Instant::now() < deadline, "run {run} still {state}");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let a = probe.poll().await.detail.unwrap();
    let r = a.runs.iter().find(|r| r.dag_run_id == run).expect("run listed");
    assert_eq!(r.state, "success");
    let tasks: Vec<_> = a.task_instances.iter().filter(|t| t.dag_run_id == run).collect();
    assert!(!tasks.is_empty());
    assert!(tasks.iter().all(|t| t.state.as_deref() == Some("success")), "{tasks:?}");
    // Unknown DAGs are refused with the server's reason.
    let err = probe.trigger("no_such_dag_xyz").await.unwrap_err();
    assert!(err.to_string().contains("404"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn airflow_probe_reports_a_wrong_password_as_an_auth_problem() {
    let mut target = airflow_target();
    let dir = tempfile::tempdir().unwrap();
    let wrong = dir.path().join("wrong");
    std::fs::write(&wrong, "not-the-password\n").unwrap();
    target.password_file = Some(wrong);
    let snap = AirflowProbe::new(target).unwrap().poll().await;
    assert_eq!(snap.status.health, Health::Degraded, "{:?}", snap.status);
    assert!(snap.status.reason.contains("refused"), "{}", snap.status.reason);
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_probe_counts_serving_rows_and_reads_the_last_batch() {
    let url = common::fresh_database("lab_probe_pg").await;
    let mut probe = PostgresProbe::new(Some(url.clone()));
    let before = probe.poll().await;
    assert_eq!(
        before.status.health,
        Health::Degraded,
        "no schema yet: {:?}",
        before.status
    );

    let client = common::connect(&url).await;
    client.batch_execute(bigdata_lab::pg::SCHEMA_SQL).await.unwrap();
    client
        .batch_execute(
            "INSERT INTO yelp.business_daily VALUES ('b1', '2026-01-01', 3, 4.0), ('b2', '2026-01-01', 1, 2.0);
             INSERT INTO yelp.batch_runs (run_id, started_at, finished_at, rows_in, rows_out, status, quality)
               VALUES ('old', now() - interval '1 hour', now() - interval '59 minutes', 1, 1, 'succeeded', 'failed'),
                      ('new', now(), now(), 10, 2, 'succeeded', 'passed');",
        )
        .await
        .unwrap();
    let snap = probe.poll().await;
    assert_eq!(snap.status.health, Health::Up, "{:?}", snap.status);
    let p = snap.detail.unwrap();
    assert!(p.version.starts_with("PostgreSQL"));
    assert!(p.connections >= 1);
    let rows = |t: &str| p.tables.iter().find(|(n, _)| n == t).and_then(|(_, r)| *r);
    assert_eq!(rows("business_daily"), Some(2));
    assert_eq!(rows("batch_runs"), Some(2));
    assert_eq!(p.serving_rows(), 2, "the batch-run log is not a serving table");
    let last = p.last_batch.unwrap();
    assert_eq!((last.run_id.as_str(), last.rows_in, last.rows_out), ("new", 10, 2));
    assert_eq!(last.quality.as_deref(), Some("passed"));

    // One connection for every poll (not a backend per poll), and a new one when the server
    // dropped it, within the same poll.
    let kept = probe_backends(&client).await;
    assert_eq!(kept.len(), 1, "the probe keeps its connection between polls: {kept:?}");
    for _ in 0..3 {
        assert_eq!(probe.poll().await.status.health, Health::Up);
        assert_eq!(probe_backends(&client).await, kept, "every poll on the kept connection");
    }
    client
        .execute("SELECT pg_terminate_backend($1)", &[&kept[0]])
        .await
        .unwrap();
    let after = probe.poll().await;
    assert_eq!(after.status.health, Health::Up, "{:?}", after.status);
    let replaced = probe_backends(&client).await;
    assert_eq!(replaced.len(), 1, "{replaced:?}");
    assert_ne!(replaced, kept, "the dropped connection was replaced");
}

/// The backends connected to `client`'s database other than `client` itself.
async fn probe_backends(client: &tokio_postgres::Client) -> Vec<i32> {
    client
        .query(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() \
             AND pid <> pg_backend_pid() AND backend_type = 'client backend' ORDER BY pid",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn lab_status_json_covers_every_service_and_exits_zero_when_all_are_up() {
    let out = common::lab()
        .args(["status", "--json"])
        .env("LAB_KAFKA_BROKERS", service_env("LAB_TEST_KAFKA"))
        .env("LAB_PG_URL", service_env("LAB_TEST_PG_URL"))
        .env("LAB_HDFS_URL", service_env("LAB_TEST_HDFS_URL"))
        .env("LAB_HDFS_HTTP", service_env("LAB_TEST_HDFS_HTTP"))
        .env("LAB_SPARK_MASTER", service_env("LAB_TEST_SPARK_MASTER"))
        .env("LAB_SPARK_UI", service_env("LAB_TEST_SPARK_UI"))
        .env("LAB_AIRFLOW_URL", service_env("LAB_TEST_AIRFLOW_URL"))
        .env("LAB_AIRFLOW_USER", service_env("LAB_TEST_AIRFLOW_USER"))
        .env(
            "LAB_AIRFLOW_PASSWORD_FILE",
            service_env("LAB_TEST_AIRFLOW_PASSWORD_FILE"),
        )
        .env("LAB_STATE_DIR", tempfile::tempdir().unwrap().path())
        .output_guarded();
    let json = common::json_stdout(&out);
    for s in LabService::ALL {
        let health = json["services"][s.name()]["status"]["health"]
            .as_str()
            .unwrap_or("missing");
        assert!(
            health == "up" || health == "degraded",
            "{}: {health}\n{json:#}",
            s.name()
        );
    }
    assert_eq!(json["failing"], serde_json::json!([]));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    // A required service that is not there fails the command and says which.
    let out = common::lab()
        .args(["status", "--require", "spark"])
        .env("LAB_SPARK_UI", "http://127.0.0.1:9")
        .env("LAB_STATE_DIR", tempfile::tempdir().unwrap().path())
        .output_guarded();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("required service(s) down: spark"), "{stderr}");
    // What to do, including for a newcomer without Docker.
    assert!(stderr.contains("`lab up`") && stderr.contains("`lab demo`"), "{stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("spark       down"), "{stdout}");
}

#[test]
fn probe_targets_come_from_the_lab_config() {
    // Guards the wiring `lab status` relies on (flags/env → LabConfig → probes).
    let dir = tempfile::tempdir().unwrap();
    let config = bigdata_lab::config::LabConfig::resolve(bigdata_lab::config::Overrides {
        state_dir: Some(dir.path().to_path_buf()),
        spark_ui: Some("http://127.0.0.1:18090".into()),
        ..Default::default()
    })
    .unwrap();
    let t = ProbeTargets::from_config(&config);
    assert_eq!(t.spark_ui, "http://127.0.0.1:18090");
    assert!(!t.configured().contains(&LabService::Postgres), "no PG URL configured");
    // A local raw zone: the HDFS view summarises the stack's directory.
    assert_eq!(t.hdfs_raw_root, hdfs::RAW_ZONE_ROOT);
    let on_hdfs = bigdata_lab::config::LabConfig::resolve(bigdata_lab::config::Overrides {
        state_dir: Some(dir.path().to_path_buf()),
        raw_zone: Some("hdfs://namenode:8020/data/lake/raw/".into()),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(ProbeTargets::from_config(&on_hdfs).hdfs_raw_root, "/data/lake/raw");
}

/// `[alerts]` in lab.toml: `lab status` fails while a group is further behind than its threshold
/// and Kafka is required, names the group and says how far behind it is; above the lag it passes.
/// The group is the lab's transform, left behind by a second copy of the sample.
#[tokio::test(flavor = "multi_thread")]
async fn lab_status_fails_on_a_lag_alert_while_kafka_is_required() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = common::unique_prefix("lagalert");
    let zone = dir.path().join("raw");
    let state = dir.path().join("state");
    let sample = common::sample_dir();
    let stage = |args: &[&str]| common::stage_cmd(&prefix, zone.as_os_str(), &state, args);
    let run = |args: &[&str]| common::json_stdout(&common::run_ok(&mut stage(args)));
    run(&["produce", "--data", sample.to_str().unwrap()]);
    run(&["transform", "--until-caught-up"]);
    let produced = run(&["produce", "--data", sample.to_str().unwrap()]);
    let behind = produced["delivered"].as_i64().unwrap();
    let group = format!("lab-transform-{prefix}");
    let status = |threshold: i64| {
        std::fs::write(
            state.join("lab.toml"),
            format!("[alerts.groups]\n\"{group}\" = {threshold}\n"),
        )
        .unwrap();
        stage(&["status", "--require", "kafka", "--json"]).output_guarded()
    };

    let out = status(behind - 1);
    let json = common::json_stdout(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a lag alert passed: {json:#}");
    assert!(
        stderr.contains(&format!("lag alert: {group} is {behind} records behind")),
        "{stderr}"
    );
    let alerts = json["alerts"].as_array().unwrap();
    assert_eq!(alerts.len(), 1, "{json:#}");
    assert_eq!(alerts[0]["lag"], behind);

    let out = status(behind);
    assert!(
        out.status.success(),
        "at the threshold is no alert: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(common::json_stdout(&out)["alerts"], serde_json::json!([]));
}

/// The marker census (issue #19): on a topic written in transactions, the probe's topic row says
/// how many offsets hold no record (commit and abort markers, aborted records), counted again as
/// more arrives, never counting an open transaction's records; the records it then reports equal
/// what a read_committed reader of the test's own gets from the broker. The topic is the DLQ (the
/// transform writes dead letters in its transactions too), whose count the Overview, the Kafka
/// view and `lab status` show: records, as `lab dlq list` counts them, not offsets.
#[tokio::test(flavor = "multi_thread")]
async fn kafka_probe_counts_transaction_markers_and_aborted_records_apart_from_records() {
    use rdkafka::consumer::BaseConsumer;
    use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
    let brokers = service_env("LAB_TEST_KAFKA");
    let prefix = unique("census");
    let topic = bigdata_lab::pipeline::Topics::new(&prefix).dlq();
    let admin: AdminClient<DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", &brokers).create().unwrap();
    admin
        .create_topics(
            &[NewTopic::new(&topic, 1, TopicReplication::Fixed(1))],
            &AdminOptions::new(),
        )
        .await
        .unwrap();
    // The aborted transaction comes from a producer of its own: the test broker answers a
    // read_committed fetch past an abort marker with none of that producer's later records
    // (README: the test broker), which would hide the records this test counts.
    let transactional = |id: &str| -> FutureProducer {
        let p: FutureProducer = ClientConfig::new()
            .set("bootstrap.servers", &brokers)
            .set("transactional.id", format!("{topic}-{id}"))
            .create()
            .unwrap();
        p.init_transactions(Duration::from_secs(30)).unwrap();
        p
    };
    let producer = transactional("writer");
    let aborter = transactional("aborter");
    let txn = |producer: &FutureProducer, n: usize, commit: bool| {
        let producer = producer.clone();
        let topic = topic.clone();
        async move {
            producer.begin_transaction().unwrap();
            for i in 0..n {
                producer
                    .send(
                        FutureRecord::to(&topic)
                            .partition(0)
                            .key("k")
                            .payload(&format!("{{\"i\":{i}}}")),
                        Duration::from_secs(10),
                    )
                    .await
                    .unwrap();
            }
            if commit {
                producer.commit_transaction(Duration::from_secs(30)).unwrap();
            } else {
                producer.abort_transaction(Duration::from_secs(30)).unwrap();
            }
        }
    };
    // What the broker gives a read_committed reader: the records, counted by the test itself.
    let committed_records = || -> i64 {
        let reader: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &brokers)
            .set("group.id", format!("{topic}-reader"))
            .set("isolation.level", "read_committed")
            .set("enable.partition.eof", "true")
            .create()
            .unwrap();
        let mut tpl = rdkafka::TopicPartitionList::new();
        tpl.add_partition_offset(&topic, 0, rdkafka::Offset::Beginning).unwrap();
        reader.assign(&tpl).unwrap();
        let mut n = 0;
        let deadline = Instant::now() + PATIENCE;
        loop {
            assert!(Instant::now() < deadline, "the topic was not read to its end");
            match reader.poll(Duration::from_millis(200)) {
                Some(Ok(_)) => n += 1,
                Some(Err(rdkafka::error::KafkaError::PartitionEOF(_))) => return n,
                Some(Err(e)) => panic!("{e}"),
                None => {}
            }
        }
    };
    // Built as the monitor and `lab status` build it (from the lab's config), so the test also
    // guards the wiring: a census left off there shows "–" in every monitor.
    let state = tempfile::tempdir().unwrap();
    let config = bigdata_lab::config::LabConfig::resolve(bigdata_lab::config::Overrides {
        state_dir: Some(state.path().to_path_buf()),
        brokers: Some(brokers.clone()),
        topic_prefix: Some(prefix.clone()),
        ..Default::default()
    })
    .unwrap();
    let mut probe = bigdata_lab::probes::Probes::new(&ProbeTargets::from_config(&config))
        .unwrap()
        .kafka;

    // 5 committed (offsets 0-4, marker 5), 3 aborted (6-8, marker 9), 2 committed (10-11, 12).
    txn(&producer, 5, true).await;
    txn(&aborter, 3, false).await;
    txn(&producer, 2, true).await;
    let t = counted(&mut probe, &topic).await;
    assert_eq!((t.messages, t.not_records), (13, Some(6)), "{t:?}");
    assert_eq!(t.records(), committed_records());
    assert_eq!(t.records(), 7);

    // More arrives: counted from where the census stopped.
    txn(&producer, 4, true).await;
    let t = counted(&mut probe, &topic).await;
    assert_eq!((t.messages, t.not_records, t.records()), (18, Some(7), 11), "{t:?}");

    // An open transaction's records are not decided yet: not counted as markers.
    producer.begin_transaction().unwrap();
    for _ in 0..2 {
        producer
            .send(
                FutureRecord::to(&topic).partition(0).key("k").payload("{}"),
                Duration::from_secs(10),
            )
            .await
            .unwrap();
    }
    // Polls past the census's interval, so that it runs while the transaction is open: the count
    // stays, as a lower bound (the open transaction's offsets are not decided).
    let mut t = None;
    for _ in 0..4 {
        t = probe
            .poll()
            .await
            .detail
            .and_then(|k| k.topics.into_iter().find(|t| t.name == topic));
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    // (The test broker holds an open transaction's records back from its high watermark too, so
    // the topic's end stays at 18 there; Kafka's moves to 20 and the count is then a lower bound.)
    let t = t.unwrap();
    assert_eq!(t.not_records, Some(7), "{t:?}");
    producer.commit_transaction(Duration::from_secs(30)).unwrap();
    let t = counted(&mut probe, &topic).await;
    assert_eq!((t.messages, t.not_records, t.records()), (21, Some(8), 13), "{t:?}");
    assert_eq!(t.records(), committed_records());
}

/// Polls until the marker census has read `topic` (the DLQ) to its last stable offset; the
/// snapshot's DLQ count is then its records.
async fn counted(probe: &mut KafkaProbe, topic: &str) -> bigdata_lab::probes::kafka::Topic {
    let deadline = Instant::now() + PATIENCE;
    loop {
        assert!(Instant::now() < deadline, "the census never finished the topic");
        let Some(snap) = probe.poll().await.detail else {
            tokio::time::sleep(Duration::from_millis(500)).await;
            continue;
        };
        if let Some(t) = snap.topics.iter().find(|t| t.name == topic)
            && t.census_complete
        {
            assert_eq!(snap.dlq_topic, topic);
            assert_eq!(snap.dlq_messages, t.records(), "the DLQ's count is its records: {t:?}");
            return t.clone();
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
