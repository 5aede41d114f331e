//! Clients for the HDFS, Spark and Airflow test services (tests/services/): just enough to set up
//! a test and to drive Airflow's REST API the way a user's script would.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{Background, OutputGuarded, service_env};

/// A fresh raw-zone location on the test HDFS, unique per test run.
pub fn hdfs_raw_zone(name: &str) -> String {
    format!(
        "{}/lab-test/{name}-{}-{}/raw",
        service_env("LAB_TEST_HDFS_URL"),
        std::process::id(),
        chrono::Utc::now().timestamp_millis()
    )
}

pub fn hdfs_client() -> hdfs_native::Client {
    hdfs_native::ClientBuilder::new()
        .with_url(service_env("LAB_TEST_HDFS_URL"))
        .build()
        .expect("hdfs client")
}

/// Removes a directory on the test HDFS (recursively; fine if absent).
pub async fn hdfs_delete(path: &str) {
    match hdfs_client().delete(path, true).await {
        Ok(_) | Err(hdfs_native::HdfsError::FileNotFound(_)) => {}
        Err(e) => panic!("delete {path} on HDFS: {e}"),
    }
}

/// Runs a tests/services/<svc>.sh action (e.g. ("hdfs", "restart")) and waits for it.
pub fn service_script(service: &str, action: &str) {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("tests/services/{service}.sh"));
    let out = Command::new(&script).arg(action).output_guarded();
    assert!(
        out.status.success(),
        "{} {action} failed:\n{}",
        script.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A test service stopped by a test, brought back (on the same data) if the test fails before it
/// does, so the test binaries after it still find it running.
pub struct Stopped {
    service: &'static str,
    /// The action that starts it again on the same data.
    back: &'static str,
    is_back: bool,
}

impl Stopped {
    /// Runs `<service>.sh <stop>`; `back` is the action that starts it again on the same data.
    pub fn stop(service: &'static str, stop: &str, back: &'static str) -> Self {
        service_script(service, stop);
        Self {
            service,
            back,
            is_back: false,
        }
    }

    pub fn start_again(mut self) {
        self.is_back = true;
        service_script(self.service, self.back);
    }
}

impl Drop for Stopped {
    fn drop(&mut self) {
        if self.is_back {
            return;
        }
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("tests/services/{}.sh", self.service));
        match Command::new(&script).arg(self.back).output() {
            Ok(out) if out.status.success() => {}
            Ok(out) => eprintln!(
                "could not bring {} back: {}",
                self.service,
                String::from_utf8_lossy(&out.stderr)
            ),
            Err(e) => eprintln!("could not run {}: {e}", script.display()),
        }
    }
}

/// `spark-submit` of the harness's pyspark, against the test master.
pub fn spark_submit() -> Command {
    let venv = PathBuf::from(service_env("LAB_TEST_VENV"));
    let mut cmd = Command::new(venv.join("bin/spark-submit"));
    cmd.env("SPARK_HOME", service_env("LAB_TEST_SPARK_HOME"))
        .env("SPARK_LOCAL_IP", "127.0.0.1")
        .env("PYSPARK_PYTHON", venv.join("bin/python"))
        .args(["--master", &service_env("LAB_TEST_SPARK_MASTER")])
        .args(["--conf", "spark.executor.memory=1g"]);
    cmd
}

pub fn jobs_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("jobs")
}

/// Airflow 3 REST API (v2) with a JWT, through curl.
pub struct Airflow {
    url: String,
    token: String,
}

impl Airflow {
    pub fn connect() -> Self {
        let url = service_env("LAB_TEST_AIRFLOW_URL");
        let password =
            std::fs::read_to_string(service_env("LAB_TEST_AIRFLOW_PASSWORD_FILE")).expect("airflow password");
        let body = json!({"username": service_env("LAB_TEST_AIRFLOW_USER"), "password": password.trim()});
        let reply = curl(&url, "POST", "/auth/token", None, Some(&body));
        let token = reply["access_token"]
            .as_str()
            .unwrap_or_else(|| panic!("no token from Airflow: {reply}"))
            .to_string();
        Self { url, token }
    }

    pub fn get(&self, path: &str) -> Value {
        curl(&self.url, "GET", path, Some(&self.token), None)
    }

    pub fn post(&self, path: &str, body: &Value) -> Value {
        curl(&self.url, "POST", path, Some(&self.token), Some(body))
    }

    pub fn patch(&self, path: &str, body: &Value) -> Value {
        curl(&self.url, "PATCH", path, Some(&self.token), Some(body))
    }

    /// Waits until the dag-processor has parsed `dag_id`, then unpauses it.
    pub fn unpause_when_parsed(&self, dag_id: &str) {
        self.wait_parsed(dag_id);
        self.patch(&format!("/api/v2/dags/{dag_id}"), &json!({"is_paused": false}));
    }

    /// Waits until the dag-processor has parsed `dag_id`.
    pub fn wait_parsed(&self, dag_id: &str) {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let dag = self.get(&format!("/api/v2/dags/{dag_id}"));
            if dag["dag_id"] == dag_id {
                break;
            }
            let errors = self.get("/api/v2/importErrors");
            assert!(
                Instant::now() < deadline,
                "{dag_id} not parsed within 120 s: {dag}; import errors: {errors}"
            );
            std::thread::sleep(Duration::from_secs(1));
        }
    }

    /// Triggers a run with `conf`; returns its run id.
    pub fn trigger(&self, dag_id: &str, conf: &Value) -> String {
        let run = self.post(
            &format!("/api/v2/dags/{dag_id}/dagRuns"),
            &json!({"logical_date": null, "conf": conf}),
        );
        run["dag_run_id"]
            .as_str()
            .unwrap_or_else(|| panic!("trigger {dag_id} failed: {run}"))
            .to_string()
    }

    /// Waits for a run to finish; returns its final state ("success" / "failed").
    pub fn wait_run(&self, dag_id: &str, run_id: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let run = self.get(&format!("/api/v2/dags/{dag_id}/dagRuns/{run_id}"));
            let state = run["state"].as_str().unwrap_or("").to_string();
            if state == "success" || state == "failed" {
                return state;
            }
            assert!(
                Instant::now() < deadline,
                "run {run_id} still {state:?} after {timeout:?}; tasks: {}",
                self.task_states(dag_id, run_id)
            );
            std::thread::sleep(Duration::from_secs(1));
        }
    }

    /// `task_id=state` of every task of a run, for assertions and failure messages.
    pub fn task_states(&self, dag_id: &str, run_id: &str) -> String {
        let tis = self.get(&format!("/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances"));
        tis["task_instances"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|t| {
                        format!(
                            "{}={}",
                            t["task_id"].as_str().unwrap_or("?"),
                            t["state"].as_str().unwrap_or("none")
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_else(|| tis.to_string())
    }

    /// The log of a task's first try, as text.
    pub fn task_log(&self, dag_id: &str, run_id: &str, task_id: &str) -> String {
        let log = self.get(&format!(
            "/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/logs/1"
        ));
        log.to_string()
    }

    /// The log of one try of a task, as text.
    pub fn task_log_try(&self, dag_id: &str, run_id: &str, task_id: &str, try_number: u64) -> String {
        let log = self.get(&format!(
            "/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/logs/{try_number}"
        ));
        log.to_string()
    }

    /// One task instance of a run as the API returns it (`state`, `try_number`, …).
    pub fn task_instance(&self, dag_id: &str, run_id: &str, task_id: &str) -> Value {
        self.get(&format!(
            "/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}"
        ))
    }

    /// A run's state (`queued`, `running`, `success`, `failed`).
    pub fn run_state(&self, dag_id: &str, run_id: &str) -> String {
        let run = self.get(&format!("/api/v2/dags/{dag_id}/dagRuns/{run_id}"));
        run["state"].as_str().unwrap_or("").to_string()
    }
}

fn curl(base: &str, method: &str, path: &str, token: Option<&str>, body: Option<&Value>) -> Value {
    let mut cmd = Command::new("curl");
    cmd.args([
        "-sS",
        "--max-time",
        "30",
        "-X",
        method,
        "-H",
        "Content-Type: application/json",
    ]);
    if let Some(token) = token {
        cmd.args(["-H", &format!("Authorization: Bearer {token}")]);
    }
    if let Some(body) = body {
        cmd.args(["--data-binary", &body.to_string()]);
    }
    cmd.arg(format!("{base}{path}"));
    let out = cmd.output_guarded();
    assert!(
        out.status.success(),
        "curl {method} {path}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&out.stdout).into_owned()))
}

/// A Kafka-protocol broker of one test's own (the harness's noida-db binary) on a free loopback
/// port, for tests that must not touch the shared one: a reset is a new process on an empty data
/// directory at the same address, as a new Kafka volume would be.
pub struct OwnBroker {
    port: u16,
    process: Option<Background>,
    data: Option<tempfile::TempDir>,
}

impl OwnBroker {
    pub fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut broker = Self {
            port,
            process: None,
            data: None,
        };
        broker.launch();
        broker
    }

    pub fn brokers(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Throws the broker and everything it held away and starts an empty one at the same address.
    pub fn reset(&mut self) {
        if let Some(mut p) = self.process.take() {
            p.kill();
        }
        self.data = None;
        self.launch();
    }

    fn launch(&mut self) {
        let data = tempfile::tempdir().expect("broker data dir");
        let venv = PathBuf::from(service_env("LAB_TEST_VENV"));
        let lib = std::fs::read_dir(venv.join("lib"))
            .expect("the test venv")
            .flatten()
            .map(|e| e.path().join("site-packages/noida_db/noida-db"))
            .find(|p| p.is_file())
            .expect("the harness's Kafka-protocol broker (tests/services/kafka.sh installs it)");
        let process = Background::spawn(
            Command::new(lib)
                .args(["start", "--host", "127.0.0.1", "--only", "kafka", "--kafka-port"])
                .arg(self.port.to_string())
                .arg("--data-dir")
                .arg(data.path()),
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "the test broker did not start: {}",
                process.stderr()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        self.process = Some(process);
        self.data = Some(data);
    }
}
