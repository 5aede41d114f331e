//! Dataset values and outside input never reach a shell or an SQL string unescaped (issue #8).
//!
//! - Values built to break SQL, PostgreSQL's COPY text format and shells (quotes, `'); DROP
//!   TABLE …`, tabs, newlines, backslashes, `\.` and `\N`, `$(…)` and backticks, NUL-free control
//!   characters, non-ASCII) go through the real broker, the transform, the raw zone and the
//!   batch into PostgreSQL and come out verbatim (trimmed, as the transform documents); every
//!   serving table still exists and no command ran.
//! - NUL, which PostgreSQL's `text` cannot hold, is removed by the transform (and counted) and
//!   dropped by the load for records that bypassed it: one such value never blocks a load.
//! - The Airflow DAG's params are validated before anything renders into its shell commands: a
//!   trigger whose `engine` or `lesson_slow_first_try` carries a command is refused by Airflow.
// Needs the services tests/services/up.sh starts: `make test` turns this feature on,
// so a plain `cargo test` on a fresh clone skips it.
#![cfg(feature = "service-tests")]
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;

use common::services::Airflow;
use common::{TABLES, connect, fresh_database, run_stage, unique_prefix};
use serde_json::json;

const ID_LEN: usize = 22;

fn id(seed: char) -> String {
    seed.to_string().repeat(ID_LEN)
}

/// Text that is harmless only if nobody interprets it. `marker` is a file a shell would create.
fn hostile(marker: &Path, what: &str) -> String {
    let m = marker.display();
    format!(
        "O'Brien \"{what}\"'); DROP TABLE yelp.business_summary; -- \t tab\nnew line\\back\\slash \\. \\N \
         $(touch {m}) `touch {m}` ; touch {m} | & > < 💥 Zürich \u{7}bell"
    )
}

/// A one-line dataset file of `entity` in `dir`.
fn write_entity(dir: &Path, entity: &str, value: &serde_json::Value) {
    std::fs::write(
        dir.join(format!("yelp_academic_dataset_{entity}.json")),
        format!("{value}\n"),
    )
    .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_values_arrive_verbatim_and_nothing_runs() {
    let prefix = unique_prefix("inject");
    let data = tempfile::tempdir().unwrap();
    let raw = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let marker = data.path().join("a-command-ran");
    let (name, city, state_code, category, text) = (
        hostile(&marker, "name"),
        hostile(&marker, "city"),
        "X'; SELECT pg_sleep(30); --".to_string(),
        // Categories are split on commas: this one has none.
        hostile(&marker, "category").replace(',', ""),
        hostile(&marker, "text"),
    );
    let (business, user, review) = (id('b'), id('u'), id('r'));
    let write = |file: &str, value: serde_json::Value| write_entity(data.path(), file, &value);
    write(
        "business",
        json!({"business_id": business, "name": format!("  {name}  "), "address": "1 Main St", "city": city,
               "state": state_code, "postal_code": "00000", "latitude": 1.0, "longitude": 2.0, "stars": 4.0,
               "review_count": 1, "is_open": 1, "attributes": null, "categories": format!("{category}, Plain"),
               "hours": null}),
    );
    write(
        "user",
        json!({"user_id": user, "name": name, "review_count": 1, "yelping_since": "2015-08-26 14:47:40",
               "useful": 0, "funny": 0, "cool": 0, "elite": "", "friends": "None", "fans": 0, "average_stars": 4.0}),
    );
    write(
        "review",
        json!({"review_id": review, "user_id": user, "business_id": business, "stars": 4.0, "useful": 0,
               "funny": 0, "cool": 0, "text": text, "date": "2020-01-01 10:00:00"}),
    );

    let zone = raw.path().as_os_str();
    let produced = run_stage(
        &prefix,
        zone,
        state.path(),
        &["produce", "--data", data.path().to_str().unwrap()],
    );
    assert_eq!(produced["delivered"], 3, "{produced}");
    let transformed = run_stage(&prefix, zone, state.path(), &["transform", "--until-caught-up"]);
    assert_eq!(
        transformed["dead_lettered"], 0,
        "nothing here is invalid: {transformed}"
    );
    run_stage(&prefix, zone, state.path(), &["consume", "--until-caught-up"]);
    let url = fresh_database("lab_injection").await;
    run_stage(&prefix, zone, state.path(), &["batch", "--json", "--pg", &url]);

    let client = connect(&url).await;
    let row = client
        .query_one(
            "SELECT name, city, state, categories FROM yelp.business_summary WHERE business_id = $1",
            &[&business],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), name, "name (the transform trims it)");
    assert_eq!(row.get::<_, String>(1), city);
    assert_eq!(row.get::<_, String>(2), state_code);
    assert_eq!(
        row.get::<_, Vec<String>>(3),
        vec![category.clone(), "Plain".to_string()]
    );
    let top: Vec<(String, String)> = client
        .query(
            "SELECT city, category FROM yelp.city_category_top ORDER BY category",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(top, vec![(city.clone(), category), (city, "Plain".to_string())]);
    for table in TABLES {
        let n: i64 = client
            .query_one(&format!("SELECT count(*) FROM yelp.{table}"), &[])
            .await
            .unwrap_or_else(|e| panic!("yelp.{table} is gone: {e}"))
            .get(0);
        assert!(n >= 1, "yelp.{table} is empty");
    }
    assert!(!marker.exists(), "a shell ran a command taken from the data");
}

/// A NUL in a text field used to fail every load of the serving tables (PostgreSQL's `text`
/// cannot hold it). The transform removes it and counts the record; a record written to a clean
/// topic by something else, NUL and all, still cannot block the load.
#[tokio::test(flavor = "multi_thread")]
async fn nul_in_text_reaches_postgres_without_blocking_the_load() {
    use rdkafka::ClientConfig;
    use rdkafka::producer::{FutureProducer, FutureRecord};

    let prefix = unique_prefix("nul");
    let data = tempfile::tempdir().unwrap();
    let raw = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let (business, user, review, outsider) = (id('n'), id('v'), id('w'), id('o'));
    let write = |file: &str, value: serde_json::Value| write_entity(data.path(), file, &value);
    write(
        "business",
        json!({"business_id": business, "name": "Caf\u{0}é\u{0}", "address": "1\u{0} Main St", "city": "Zü\u{0}rich",
               "state": "Z\u{0}H", "postal_code": "8000", "latitude": 1.0, "longitude": 2.0, "stars": 4.0,
               "review_count": 1, "is_open": 1, "attributes": {"WiFi": "u'fr\u{0}ee'"},
               "categories": "Ba\u{0}rs, Plain", "hours": null}),
    );
    write(
        "user",
        json!({"user_id": user, "name": "A\u{0}na", "review_count": 1, "yelping_since": "2015-08-26 14:47:40",
               "useful": 0, "funny": 0, "cool": 0, "elite": "", "friends": "None", "fans": 0, "average_stars": 4.0}),
    );
    write(
        "review",
        json!({"review_id": review, "user_id": user, "business_id": business, "stars": 5.0, "useful": 0,
               "funny": 0, "cool": 0, "text": "gr\u{0}eat", "date": "2020-01-01 10:00:00"}),
    );
    let zone = raw.path().as_os_str();
    run_stage(
        &prefix,
        zone,
        state.path(),
        &["produce", "--data", data.path().to_str().unwrap()],
    );
    let transformed = run_stage(&prefix, zone, state.path(), &["transform", "--until-caught-up"]);
    assert_eq!(transformed["dead_lettered"], 0, "{transformed}");
    assert_eq!(
        transformed["nul_removed"], 3,
        "business, user and review each held NULs: {transformed}"
    );

    // Straight onto the clean topic, past the transform: what another producer could write.
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", common::service_env("LAB_TEST_KAFKA"))
        .create()
        .unwrap();
    let clean = json!({"business_id": outsider, "name": "Out\u{0}sider", "address": "", "city": "Be\u{0}rn",
                       "state": "BE", "postal_code": "", "latitude": null, "longitude": null, "stars": 3.0,
                       "review_count": 0, "is_open": true, "attributes": null, "categories": ["Te\u{0}a"],
                       "hours": null})
    .to_string();
    producer
        .send(
            FutureRecord::<str, str>::to(&format!("{prefix}.business.clean")).payload(&clean),
            std::time::Duration::from_secs(10),
        )
        .await
        .unwrap();
    run_stage(&prefix, zone, state.path(), &["consume", "--until-caught-up"]);
    let url = fresh_database("lab_injection_nul").await;
    let batch = run_stage(&prefix, zone, state.path(), &["batch", "--json", "--pg", &url]);
    assert_eq!(batch["rows_in"], 4, "{batch}");

    let client = connect(&url).await;
    let rows: Vec<(String, String, String, String, Vec<String>, i64)> = client
        .query(
            "SELECT business_id, name, city, state, categories, review_count FROM yelp.business_summary ORDER BY business_id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5)))
        .collect();
    assert_eq!(
        rows,
        vec![
            (
                business,
                "Café".into(),
                "Zürich".into(),
                "ZH".into(),
                vec!["Bars".into(), "Plain".into()],
                1
            ),
            (
                outsider,
                "Outsider".into(),
                "Bern".into(),
                "BE".into(),
                vec!["Tea".into()],
                0
            ),
        ]
    );
    let reviews: i64 = client
        .query_one("SELECT reviews FROM yelp.user_summary WHERE user_id = $1", &[&user])
        .await
        .unwrap()
        .get(0);
    assert_eq!(reviews, 1);
}

#[test]
fn the_dag_refuses_params_that_carry_commands() {
    let airflow = Airflow::connect();
    airflow.wait_parsed("yelp_batch");
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("a-command-ran");
    let command = format!("datafusion; touch {}", marker.display());
    for conf in [
        json!({"engine": command}),
        json!({"engine": "datafusion", "lesson_slow_first_try": format!("1; touch {}", marker.display())}),
        json!({"engine": "datafusion", "topic_prefix": format!("yelp; touch {}", marker.display())}),
    ] {
        let reply = airflow.post(
            "/api/v2/dags/yelp_batch/dagRuns",
            &json!({"logical_date": null, "conf": conf}),
        );
        assert!(
            reply.get("dag_run_id").is_none(),
            "Airflow accepted a run with {conf}: {reply}"
        );
        let why = reply.to_string();
        assert!(
            why.contains("engine")
                || why.contains("lesson_slow_first_try")
                || why.contains("topic_prefix")
                || why.contains("param"),
            "the refusal names the param: {why}"
        );
    }
    assert!(!marker.exists());
}
