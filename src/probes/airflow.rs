//! Airflow: component health, DAGs and import errors, recent runs and their task instances, and
//! the actions a user takes from the TUI (trigger, pause/unpause, clear a failed task).
//!
//! Airflow 3 serves the v2 REST API behind a JWT from `POST /auth/token`; Airflow 2 serves v1
//! with basic auth. The probe tries the token first and falls back to v1 when `/auth/token` does
//! not exist. The client is cheap to clone: the scheduler polls with one copy, the TUI's actions
//! use another, and they share the token.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::Mutex;

use super::http;
use super::{LabService, ProbeError, Probed};

/// How many recent runs and task instances one poll reads (across all DAGs).
const RECENT_RUNS: usize = 100;
const RECENT_TASKS: usize = 300;
/// Airflow 2: the task instances of this many recent runs (its pages hold 100 rows).
const V1_TASK_RUNS: usize = 25;

#[derive(Debug, Clone)]
pub struct AirflowTarget {
    pub url: String,
    pub username: String,
    pub password_file: Option<PathBuf>,
}

impl From<&crate::config::AirflowEndpoint> for AirflowTarget {
    fn from(endpoint: &crate::config::AirflowEndpoint) -> Self {
        Self {
            url: endpoint.url.clone(),
            username: endpoint.username.clone(),
            password_file: endpoint.password_file.clone(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ApiVersion {
    /// Airflow 3: `/api/v2`, bearer token.
    V2,
    /// Airflow 2: `/api/v1`, basic auth.
    V1,
}

impl ApiVersion {
    fn prefix(self) -> &'static str {
        match self {
            ApiVersion::V2 => "/api/v2",
            ApiVersion::V1 => "/api/v1",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AirflowSnapshot {
    pub api: Option<ApiVersion>,
    /// Component → status (`healthy`, `unhealthy`, or `None` when the component does not run).
    pub components: Vec<(String, Option<String>)>,
    pub dags: Vec<Dag>,
    pub import_errors: Vec<ImportError>,
    /// Most recent first.
    pub runs: Vec<DagRun>,
    pub task_instances: Vec<TaskInstance>,
    /// Why DAGs could not be read (no password configured, login refused).
    pub auth_problem: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Dag {
    pub dag_id: String,
    pub is_paused: bool,
    pub has_import_errors: bool,
    /// When the scheduler starts the next run; `None` for a DAG without a schedule. Airflow 3's
    /// `next_dagrun_run_after` (api/v2 DAGResponse), Airflow 2's `next_dagrun_create_after`
    /// (api/v1 DAG schema).
    #[serde(alias = "next_dagrun_run_after", alias = "next_dagrun_create_after")]
    pub next_run: Option<chrono::DateTime<chrono::Utc>>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ImportError {
    pub filename: String,
    pub stack_trace: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DagRun {
    pub dag_id: String,
    pub dag_run_id: String,
    /// `queued`, `running`, `success`, `failed`.
    pub state: String,
    pub run_type: String,
    pub start_date: Option<chrono::DateTime<chrono::Utc>>,
    pub end_date: Option<chrono::DateTime<chrono::Utc>>,
}

impl DagRun {
    /// Wall time of the run; up to now while it is still running.
    #[must_use]
    pub fn duration(&self, now: chrono::DateTime<chrono::Utc>) -> Option<chrono::Duration> {
        let start = self.start_date?;
        Some(self.end_date.unwrap_or(now) - start)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TaskInstance {
    pub dag_id: String,
    pub dag_run_id: String,
    pub task_id: String,
    pub state: Option<String>,
    pub try_number: i64,
    /// Seconds.
    pub duration: Option<f64>,
}

impl AirflowSnapshot {
    #[must_use]
    pub fn problems(&self) -> Vec<String> {
        let mut problems: Vec<String> = self
            .components
            .iter()
            // The lab runs no triggerer; Airflow 2 parses DAGs inside the scheduler, so its
            // standalone dag_processor reports no status at all.
            .filter(|(name, status)| {
                let optional = name == "triggerer"
                    || (name == "dag_processor" && status.is_none() && self.api == Some(ApiVersion::V1));
                !optional && status.as_deref() != Some("healthy")
            })
            .map(|(name, status)| format!("{name} is {}", status.as_deref().unwrap_or("not running")))
            .collect();
        if let Some(auth) = &self.auth_problem {
            problems.push(auth.clone());
        }
        if !self.import_errors.is_empty() {
            problems.push(format!("{} DAG file(s) fail to import", self.import_errors.len()));
        }
        problems
    }

    /// The recent runs of one DAG, most recent first.
    pub fn runs_of<'a>(&'a self, dag_id: &'a str) -> impl Iterator<Item = &'a DagRun> + 'a {
        self.runs.iter().filter(move |r| r.dag_id == dag_id)
    }

    /// The state of one task in one run (`None` if not scheduled yet).
    #[must_use]
    pub fn task_state(&self, dag_id: &str, run_id: &str, task_id: &str) -> Option<&str> {
        self.task_instances
            .iter()
            .find(|t| t.dag_id == dag_id && t.dag_run_id == run_id && t.task_id == task_id)
            .and_then(|t| t.state.as_deref())
    }
}

/// Parses the health document (`/api/v2/monitor/health` or `/api/v1/health`).
pub fn parse_health(body: &[u8]) -> Result<Vec<(String, Option<String>)>, ProbeError> {
    let v: Value = http::parse(LabService::Airflow, "health", body)?;
    let Value::Object(map) = v else {
        return Err(ProbeError::Parse {
            service: LabService::Airflow,
            url: "health".into(),
            detail: "not a JSON object".into(),
        });
    };
    Ok(map
        .into_iter()
        .map(|(name, c)| {
            let status = c.get("status").and_then(Value::as_str).map(str::to_string);
            (name, status)
        })
        .collect())
}

#[derive(Deserialize)]
struct DagList {
    dags: Vec<Dag>,
}
#[derive(Deserialize)]
struct ImportErrorList {
    import_errors: Vec<ImportError>,
}
#[derive(Deserialize)]
struct DagRunList {
    dag_runs: Vec<DagRun>,
}
#[derive(Deserialize)]
struct TaskInstanceList {
    task_instances: Vec<TaskInstance>,
}

pub fn parse_dags(body: &[u8]) -> Result<Vec<Dag>, ProbeError> {
    http::parse::<DagList>(LabService::Airflow, "dags", body).map(|l| l.dags)
}
pub fn parse_import_errors(body: &[u8]) -> Result<Vec<ImportError>, ProbeError> {
    http::parse::<ImportErrorList>(LabService::Airflow, "importErrors", body).map(|l| l.import_errors)
}
pub fn parse_runs(body: &[u8]) -> Result<Vec<DagRun>, ProbeError> {
    http::parse::<DagRunList>(LabService::Airflow, "dagRuns", body).map(|l| l.dag_runs)
}
pub fn parse_task_instances(body: &[u8]) -> Result<Vec<TaskInstance>, ProbeError> {
    http::parse::<TaskInstanceList>(LabService::Airflow, "taskInstances", body).map(|l| l.task_instances)
}

#[derive(Debug, Clone)]
enum Auth {
    Bearer(String),
    Basic { user: String, password: String },
}

#[derive(Clone)]
pub struct AirflowProbe {
    client: reqwest::Client,
    target: AirflowTarget,
    /// Established on first use; dropped when the server rejects it.
    auth: Arc<Mutex<Option<(ApiVersion, Auth)>>>,
}

fn other(detail: String) -> ProbeError {
    ProbeError::Other {
        service: LabService::Airflow,
        detail,
    }
}

impl AirflowProbe {
    pub fn new(target: AirflowTarget) -> Result<Self, ProbeError> {
        Ok(Self {
            client: http::client(LabService::Airflow)?,
            target,
            auth: Arc::new(Mutex::new(None)),
        })
    }

    fn url(&self, path: &str) -> String {
        http::join(&self.target.url, path)
    }

    pub async fn poll(&mut self) -> Probed<AirflowSnapshot> {
        let started = Instant::now();
        let result = self.read().await.map(|snap| {
            let problems = snap.problems();
            (snap, problems)
        });
        Probed::from_result(result, started)
    }

    async fn read(&self) -> Result<AirflowSnapshot, ProbeError> {
        // Health needs no login: it answers "is it up" even when the password is wrong.
        let components = match self.get_bytes(&self.url("/api/v2/monitor/health"), None).await {
            Ok(body) => parse_health(&body)?,
            Err(ProbeError::Status { status: 404, .. }) => {
                parse_health(&self.get_bytes(&self.url("/api/v1/health"), None).await?)?
            }
            Err(e) => return Err(e),
        };
        let mut snap = AirflowSnapshot {
            components,
            ..AirflowSnapshot::default()
        };
        let (api, auth) = match self.login().await {
            Ok(a) => a,
            Err(e) => {
                snap.auth_problem = Some(e.reason());
                return Ok(snap);
            }
        };
        snap.api = Some(api);
        let p = api.prefix();
        let runs_order = match api {
            ApiVersion::V2 => "-run_after",
            ApiVersion::V1 => "-execution_date",
        };
        let paths = [
            format!("{p}/dags?limit=100"),
            format!("{p}/importErrors?limit=100"),
            format!("{p}/dags/~/dagRuns?limit={RECENT_RUNS}&order_by={runs_order}"),
            format!("{p}/dags/~/dagRuns/~/taskInstances?limit={RECENT_TASKS}&order_by=-start_date"),
        ];
        let tasks_v2 = async {
            match api {
                ApiVersion::V2 => self.get_authed(&paths[3], &auth).await.map(Some),
                ApiVersion::V1 => Ok(None),
            }
        };
        let (dags, errors, runs, tasks) = tokio::try_join!(
            self.get_authed(&paths[0], &auth),
            self.get_authed(&paths[1], &auth),
            self.get_authed(&paths[2], &auth),
            tasks_v2,
        )
        .inspect_err(|e| {
            if matches!(e, ProbeError::Status { status: 401, .. }) {
                // Token expired: log in again next time.
                if let Ok(mut guard) = self.auth.try_lock() {
                    *guard = None;
                }
            }
        })?;
        snap.dags = parse_dags(&dags)?;
        snap.dags.sort_by(|a, b| a.dag_id.cmp(&b.dag_id));
        snap.import_errors = parse_import_errors(&errors)?;
        snap.runs = parse_runs(&runs)?;
        let tasks = match tasks {
            Some(t) => t,
            None => self.task_instances_v1(&snap.runs, &auth).await?,
        };
        snap.task_instances = parse_task_instances(&tasks)?;
        Ok(snap)
    }

    fn password(&self) -> Result<String, ProbeError> {
        let Some(path) = &self.target.password_file else {
            return Err(other(
                "no password file configured: set LAB_AIRFLOW_PASSWORD_FILE or [airflow] password_file".into(),
            ));
        };
        std::fs::read_to_string(path)
            .map(|s| s.trim_end_matches(['\n', '\r']).to_string())
            .map_err(|e| other(format!("cannot read the password file {}: {e}", path.display())))
    }

    /// The API version and credentials, logging in on first use.
    async fn login(&self) -> Result<(ApiVersion, Auth), ProbeError> {
        let mut guard = self.auth.lock().await;
        if let Some(a) = guard.as_ref() {
            return Ok(a.clone());
        }
        let password = self.password()?;
        let url = self.url("/auth/token");
        let resp = self
            .client
            .post(&url)
            .json(&json!({"username": self.target.username, "password": password}))
            .send()
            .await
            .map_err(|e| http::unreachable(LabService::Airflow, &url, &e))?;
        let status = resp.status();
        let auth = if status.is_success() {
            #[derive(Deserialize)]
            struct Token {
                access_token: String,
            }
            let body = resp
                .bytes()
                .await
                .map_err(|e| http::unreachable(LabService::Airflow, &url, &e))?;
            let token: Token = http::parse(LabService::Airflow, &url, &body)?;
            (ApiVersion::V2, Auth::Bearer(token.access_token))
        } else if status == reqwest::StatusCode::NOT_FOUND || status == reqwest::StatusCode::METHOD_NOT_ALLOWED {
            // Airflow 2 has no token endpoint: v1 with basic auth.
            (
                ApiVersion::V1,
                Auth::Basic {
                    user: self.target.username.clone(),
                    password,
                },
            )
        } else if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
            return Err(other(format!(
                "login as {:?} refused (HTTP {}): check the password file",
                self.target.username,
                status.as_u16()
            )));
        } else {
            return Err(ProbeError::Status {
                service: LabService::Airflow,
                url,
                status: status.as_u16(),
            });
        };
        *guard = Some(auth.clone());
        Ok(auth)
    }

    fn with_auth(&self, req: reqwest::RequestBuilder, auth: Option<&Auth>) -> reqwest::RequestBuilder {
        match auth {
            Some(Auth::Bearer(t)) => req.bearer_auth(t),
            Some(Auth::Basic { user, password }) => req.basic_auth(user, Some(password)),
            None => req,
        }
    }

    async fn get_bytes(&self, url: &str, auth: Option<&Auth>) -> Result<bytes::Bytes, ProbeError> {
        http::send_bytes(LabService::Airflow, url, self.with_auth(self.client.get(url), auth)).await
    }

    async fn get_authed(&self, path: &str, auth: &Auth) -> Result<bytes::Bytes, ProbeError> {
        self.get_bytes(&self.url(path), Some(auth)).await
    }

    /// Airflow 2's list endpoint cannot sort task instances, so they are asked for by run: the
    /// batch endpoint with the recent runs' ids (v1 pages hold at most 100 rows).
    async fn task_instances_v1(&self, runs: &[DagRun], auth: &Auth) -> Result<bytes::Bytes, ProbeError> {
        let mut ids: Vec<&str> = runs.iter().take(V1_TASK_RUNS).map(|r| r.dag_run_id.as_str()).collect();
        ids.dedup();
        if ids.is_empty() {
            return Ok(bytes::Bytes::from_static(
                br#"{"task_instances": [], "total_entries": 0}"#,
            ));
        }
        let url = self.url("/api/v1/dags/~/dagRuns/~/taskInstances/list");
        let body = json!({"dag_run_ids": ids, "page_limit": 100});
        http::send_bytes(
            LabService::Airflow,
            &url,
            self.with_auth(self.client.post(&url), Some(auth)).json(&body),
        )
        .await
    }

    /// Sends a write request; on 401 logs in again and retries once.
    async fn write(&self, method: reqwest::Method, path_v2: &str, body: Value) -> Result<Value, ProbeError> {
        for attempt in 0..2 {
            let (api, auth) = self.login().await?;
            let path = path_v2.replacen("/api/v2", api.prefix(), 1);
            let url = self.url(&path);
            let body = match (api, &body) {
                // v1's trigger takes no logical_date; v2 requires the key (null = now).
                (ApiVersion::V1, Value::Object(m)) if m.contains_key("logical_date") => {
                    let mut m = m.clone();
                    m.remove("logical_date");
                    Value::Object(m)
                }
                _ => body.clone(),
            };
            let req = self
                .with_auth(self.client.request(method.clone(), &url), Some(&auth))
                .json(&body);
            let resp = req
                .send()
                .await
                .map_err(|e| http::unreachable(LabService::Airflow, &url, &e))?;
            let status = resp.status();
            if status == reqwest::StatusCode::UNAUTHORIZED && attempt == 0 {
                *self.auth.lock().await = None;
                continue;
            }
            let bytes = resp
                .bytes()
                .await
                .map_err(|e| http::unreachable(LabService::Airflow, &url, &e))?;
            if !status.is_success() {
                let detail: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
                let detail = detail
                    .get("detail")
                    .map_or_else(|| String::from_utf8_lossy(&bytes).into_owned(), ToString::to_string);
                return Err(other(format!(
                    "{method} {path} answered HTTP {}: {detail}",
                    status.as_u16()
                )));
            }
            return http::parse(LabService::Airflow, &url, &bytes);
        }
        Err(other("login refused twice".into()))
    }

    /// Starts a run of `dag_id` now; returns its run id.
    pub async fn trigger(&self, dag_id: &str) -> Result<String, ProbeError> {
        self.trigger_with(dag_id, &json!({})).await
    }

    /// Starts a run of `dag_id` now with run parameters (`conf`); returns its run id.
    pub async fn trigger_with(&self, dag_id: &str, conf: &Value) -> Result<String, ProbeError> {
        let v = self
            .write(
                reqwest::Method::POST,
                &format!("/api/v2/dags/{dag_id}/dagRuns"),
                json!({"logical_date": null, "conf": conf}),
            )
            .await?;
        v.get("dag_run_id")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| other(format!("trigger of {dag_id} answered without a dag_run_id: {v}")))
    }

    pub async fn set_paused(&self, dag_id: &str, paused: bool) -> Result<(), ProbeError> {
        self.write(
            reqwest::Method::PATCH,
            &format!("/api/v2/dags/{dag_id}"),
            json!({"is_paused": paused}),
        )
        .await
        .map(|_| ())
    }

    /// Clears the failed task instances of one run so the scheduler runs them again.
    pub async fn clear_failed(&self, dag_id: &str, dag_run_id: &str) -> Result<(), ProbeError> {
        self.write(
            reqwest::Method::POST,
            &format!("/api/v2/dags/{dag_id}/clearTaskInstances"),
            json!({"dry_run": false, "only_failed": true, "dag_run_id": dag_run_id, "reset_dag_runs": true}),
        )
        .await
        .map(|_| ())
    }

    /// The state of one run (`queued`, `running`, `success`, `failed`).
    pub async fn run_state(&self, dag_id: &str, dag_run_id: &str) -> Result<String, ProbeError> {
        let (api, auth) = self.login().await?;
        let body = self
            .get_authed(&format!("{}/dags/{dag_id}/dagRuns/{dag_run_id}", api.prefix()), &auth)
            .await?;
        let run: DagRun = http::parse(LabService::Airflow, "dagRun", &body)?;
        Ok(run.state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::probes::test_fixture as fixture;

    fn snapshot() -> AirflowSnapshot {
        AirflowSnapshot {
            api: Some(ApiVersion::V2),
            components: parse_health(&fixture("airflow_health.json")).unwrap(),
            dags: parse_dags(&fixture("airflow_dags.json")).unwrap(),
            import_errors: parse_import_errors(&fixture("airflow_import_errors.json")).unwrap(),
            runs: parse_runs(&fixture("airflow_dag_runs.json")).unwrap(),
            task_instances: parse_task_instances(&fixture("airflow_task_instances.json")).unwrap(),
            auth_problem: None,
        }
    }

    #[test]
    fn airflow3_answers_parse_into_dags_runs_and_tasks() {
        let s = snapshot();
        let ids: Vec<&str> = s.dags.iter().map(|d| d.dag_id.as_str()).collect();
        assert!(ids.contains(&"lab_smoke") && ids.contains(&"lab_fixture"), "{ids:?}");
        assert!(
            s.components
                .iter()
                .any(|(n, st)| n == "scheduler" && st.as_deref() == Some("healthy"))
        );
        // The triggerer does not run in the lab: reported as None, not a problem.
        assert!(s.components.iter().any(|(n, st)| n == "triggerer" && st.is_none()));
        let smoke = s.runs_of("lab_smoke").next().unwrap();
        assert_eq!(smoke.state, "success");
        assert!(smoke.duration(chrono::Utc::now()).unwrap() > chrono::Duration::zero());
        let failed = s.runs_of("lab_fixture").next().unwrap();
        assert_eq!(failed.state, "failed");
        assert_eq!(
            s.task_state("lab_fixture", &failed.dag_run_id, "extract"),
            Some("success")
        );
        assert_eq!(s.task_state("lab_fixture", &failed.dag_run_id, "load"), Some("failed"));
    }

    #[test]
    fn import_errors_make_airflow_degraded() {
        let s = snapshot();
        assert_eq!(s.import_errors.len(), 1);
        assert_eq!(s.import_errors[0].filename, "broken.py");
        assert!(s.import_errors[0].stack_trace.contains("nonexistent_module_xyz"));
        assert_eq!(s.problems(), vec!["1 DAG file(s) fail to import".to_string()]);
    }

    /// Captured from a real Airflow 2.10.5 (v1 API, basic auth) after a `lab_smoke` run
    /// triggered through this probe, with a DAG file that fails to import.
    #[test]
    fn airflow2_answers_parse_and_its_missing_dag_processor_is_no_problem() {
        let s = AirflowSnapshot {
            api: Some(ApiVersion::V1),
            components: parse_health(&fixture("airflow2_health.json")).unwrap(),
            dags: parse_dags(&fixture("airflow2_dags.json")).unwrap(),
            import_errors: parse_import_errors(&fixture("airflow2_import_errors.json")).unwrap(),
            runs: parse_runs(&fixture("airflow2_dag_runs.json")).unwrap(),
            task_instances: parse_task_instances(&fixture("airflow2_task_instances.json")).unwrap(),
            auth_problem: None,
        };
        let ids: Vec<&str> = s.dags.iter().map(|d| d.dag_id.as_str()).collect();
        assert_eq!(ids, vec!["lab_smoke", "yelp_batch"]);
        let run = s.runs_of("lab_smoke").next().unwrap();
        assert_eq!(run.state, "success");
        assert_eq!(s.task_state("lab_smoke", &run.dag_run_id, "hello"), Some("success"));
        assert!(
            s.import_errors[0]
                .stack_trace
                .contains("broken_module_that_does_not_exist")
        );
        // Airflow 2 parses DAGs in the scheduler: no dag_processor status is expected there…
        assert_eq!(s.problems(), vec!["1 DAG file(s) fail to import".to_string()]);
        // …while Airflow 3 needs its standalone dag processor.
        let as_v3 = AirflowSnapshot {
            api: Some(ApiVersion::V2),
            import_errors: Vec::new(),
            ..s
        };
        assert_eq!(as_v3.problems(), vec!["dag_processor is not running".to_string()]);
    }

    #[test]
    fn an_unhealthy_scheduler_is_a_problem_and_partial_json_an_error() {
        let mut v: Value = serde_json::from_slice(&fixture("airflow_health.json")).unwrap();
        v["scheduler"]["status"] = "unhealthy".into();
        let s = AirflowSnapshot {
            components: parse_health(v.to_string().as_bytes()).unwrap(),
            ..AirflowSnapshot::default()
        };
        assert_eq!(s.problems(), vec!["scheduler is unhealthy".to_string()]);
        let body = fixture("airflow_dag_runs.json");
        assert!(parse_runs(&body[..body.len() - 10]).is_err());
    }
}
