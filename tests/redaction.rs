//! Secrets never reach output or logs (issue #8): a PostgreSQL password in `--pg`/`LAB_PG_URL`
//! (URL and keyword forms, with awkward characters) and the Airflow admin password stay out of
//! `lab status --json`, error messages, the demo's summary and the log file (at debug level),
//! whether the service answers or not. Against the real PostgreSQL and Airflow of `make test`.
// Needs the services tests/services/up.sh starts: `make test` turns this feature on,
// so a plain `cargo test` on a fresh clone skips it.
#![cfg(feature = "service-tests")]
#![allow(clippy::unwrap_used)]

mod common;
use common::OutputGuarded;

use std::path::Path;
use std::process::Output;

use common::{connect, lab, service_env};
use serde_json::Value;

/// A password with characters that break naive redaction: '@', spaces, quotes, '/'.
const PASSWORD: &str = "Red@cted/pass w0rd";
const ROLE: &str = "lab_redact";
const CLOSED_PORT: u16 = 9;

fn pg_port() -> String {
    let url = service_env("LAB_TEST_PG_URL");
    url.split_whitespace()
        .find_map(|kv| kv.strip_prefix("port="))
        .unwrap()
        .to_string()
}

/// The same password percent-encoded, as a URL must carry it.
const PASSWORD_ENCODED: &str = "Red%40cted%2Fpass%20w0rd";

/// The password as it could appear anywhere: whole, in pieces, encoded or not.
fn fragments() -> Vec<&'static str> {
    vec![
        PASSWORD,
        "Red@cted",
        "pass w0rd",
        "cted/pass",
        PASSWORD_ENCODED,
        "Red%40cted",
        "pass%20w0rd",
    ]
}

fn url_form(port: &str) -> String {
    format!("postgresql://{ROLE}:{PASSWORD_ENCODED}@127.0.0.1:{port}/{ROLE}")
}

fn keyword_form(port: &str) -> String {
    format!("host=127.0.0.1 port={port} user={ROLE} password='{PASSWORD}' dbname={ROLE}")
}

async fn ensure_role() {
    let admin = connect(&service_env("LAB_TEST_PG_URL")).await;
    let count = |sql: &'static str| {
        let admin = &admin;
        async move { admin.query_one(sql, &[&ROLE]).await.unwrap().get::<_, i64>(0) }
    };
    // The test cluster trusts loopback, so the password is never checked: only carried.
    if count("SELECT count(*) FROM pg_roles WHERE rolname = $1").await == 0 {
        admin
            .batch_execute(&format!("CREATE ROLE {ROLE} LOGIN PASSWORD 'unused'"))
            .await
            .unwrap();
    }
    if count("SELECT count(*) FROM pg_database WHERE datname = $1").await == 0 {
        admin
            .batch_execute(&format!("CREATE DATABASE {ROLE} OWNER {ROLE}"))
            .await
            .unwrap();
    }
}

fn run(state: &Path, args: &[&str], env: &[(&str, String)]) -> Output {
    let mut cmd = lab();
    cmd.args(args).env("LAB_STATE_DIR", state).env("LAB_LOG", "debug");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output_guarded()
}

/// Nothing of the password in stdout, stderr or the log.
fn assert_no_secret(what: &str, out: &Output, state: &Path, secrets: &[&str]) {
    let log = std::fs::read_to_string(state.join("logs/lab.log")).unwrap_or_default();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    for (stream, text) in [("stdout", &*stdout), ("stderr", &*stderr), ("log", log.as_str())] {
        for secret in secrets {
            assert!(
                !text.contains(secret),
                "{what}: {secret:?} leaked into {stream}:\n{text}"
            );
        }
    }
}

fn status_of(out: &Output, service: &str) -> Value {
    let json: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("status --json: {}", String::from_utf8_lossy(&out.stdout)));
    json["services"][service].clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_passwords_stay_out_of_status_errors_summaries_and_logs() {
    ensure_role().await;
    let port = pg_port();
    for url in [url_form(&port), keyword_form(&port)] {
        // Up: the probe connects with the password and reports the database.
        let state = tempfile::tempdir().unwrap();
        let out = run(
            state.path(),
            &["status", "--json", "--require", "postgres"],
            &[("LAB_PG_URL", url.clone())],
        );
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        // Connected (degraded only because this database holds no serving tables).
        let pg = status_of(&out, "postgres");
        assert!(
            matches!(pg["status"]["health"].as_str(), Some("up" | "degraded")),
            "{pg}"
        );
        assert_no_secret("status, PostgreSQL up", &out, state.path(), &fragments());

        // The embedded demo loading that database: its summary names the target, redacted.
        let out = run(state.path(), &["demo", "--headless", "--pg", &url], &[]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert!(summary["serving"].as_str().unwrap().contains("***"), "{summary}");
        assert_no_secret("demo summary", &out, state.path(), &fragments());
    }
    for url in [
        url_form(&CLOSED_PORT.to_string()),
        keyword_form(&CLOSED_PORT.to_string()),
    ] {
        // Down: the reason says where it tried, without the password.
        let state = tempfile::tempdir().unwrap();
        let out = run(
            state.path(),
            &["status", "--json", "--require", "postgres"],
            &[("LAB_PG_URL", url.clone())],
        );
        assert!(!out.status.success(), "postgres on a closed port counted as up");
        let pg = status_of(&out, "postgres");
        assert_eq!(pg["status"]["health"], "down", "{pg}");
        assert!(
            pg.to_string().contains("***"),
            "the reason names the redacted target: {pg}"
        );
        assert_no_secret("status, PostgreSQL down", &out, state.path(), &fragments());

        let out = run(state.path(), &["batch", "--pg", &url], &[]);
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("cannot connect to") && stderr.contains("***"),
            "{stderr}"
        );
        assert_no_secret("batch error", &out, state.path(), &fragments());
    }
}

#[test]
fn the_airflow_password_and_its_token_stay_out_of_status_and_logs() {
    let password_file = service_env("LAB_TEST_AIRFLOW_PASSWORD_FILE");
    let password = std::fs::read_to_string(&password_file).unwrap().trim().to_string();
    assert!(password.len() >= 12, "the harness generates a real password");
    let state = tempfile::tempdir().unwrap();
    let env = [
        ("LAB_AIRFLOW_URL", service_env("LAB_TEST_AIRFLOW_URL")),
        ("LAB_AIRFLOW_USER", service_env("LAB_TEST_AIRFLOW_USER")),
        ("LAB_AIRFLOW_PASSWORD_FILE", password_file),
    ];
    let out = run(state.path(), &["status", "--json", "--require", "airflow"], &env);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(status_of(&out, "airflow")["status"]["health"], "up");
    // The password, and any JWT (they start with the base64 of `{"`).
    assert_no_secret("status with Airflow", &out, state.path(), &[password.as_str(), "eyJ"]);
}
