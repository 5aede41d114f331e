//! PostgreSQL: reachable, version, connections, row counts of the serving tables (schema `yelp`)
//! and the latest `yelp.batch_runs` row.

use std::time::Instant;

use serde::{Deserialize, Serialize};
use tokio_postgres::Client;

use super::{LabService, ProbeError, Probed, REQUEST_TIMEOUT};

/// The serving tables the batch layer loads (sql/postgres/schema.sql).
pub const SERVING_TABLES: [&str; 5] = [
    "business_summary",
    "business_daily",
    "city_category_top",
    "user_summary",
    "batch_runs",
];

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PostgresSnapshot {
    /// `PostgreSQL 15.18`.
    pub version: String,
    pub connections: i64,
    pub max_connections: i64,
    /// Row count per serving table; `None` when the table does not exist yet.
    pub tables: Vec<(String, Option<i64>)>,
    pub last_batch: Option<BatchRun>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchRun {
    pub run_id: String,
    pub status: String,
    pub started_at: chrono::DateTime<chrono::Utc>,
    pub finished_at: Option<chrono::DateTime<chrono::Utc>>,
    pub rows_in: i64,
    pub rows_out: i64,
    pub error: Option<String>,
    /// The Airflow DAG's data-quality check of this run (`passed` / `failed`); `None` for a run
    /// outside Airflow.
    #[serde(default)]
    pub quality: Option<String>,
}

impl PostgresSnapshot {
    /// Rows in the serving tables that exist (the batch-run log is not one of them).
    #[must_use]
    pub fn serving_rows(&self) -> i64 {
        self.tables
            .iter()
            .filter(|(t, _)| t != "batch_runs")
            .filter_map(|(_, rows)| *rows)
            .sum()
    }

    #[must_use]
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.tables.iter().all(|(_, rows)| rows.is_none()) {
            problems.push("serving schema `yelp` not created yet (no batch has loaded it)".to_string());
        }
        if let Some(run) = &self.last_batch
            && run.status == "failed"
        {
            problems.push(format!(
                "last batch {} failed: {}",
                run.run_id,
                run.error.as_deref().unwrap_or("no error recorded")
            ));
        }
        problems
    }
}

/// Short server version from `SELECT version()`: `PostgreSQL 15.18 (Debian …) on …` → `PostgreSQL 15.18`.
#[must_use]
pub fn short_version(full: &str) -> String {
    full.split_whitespace().take(2).collect::<Vec<_>>().join(" ")
}

pub struct PostgresProbe {
    url: Option<String>,
    /// The connection of the last poll that read the server, kept for the next: a new one every
    /// poll (the monitor polls every 2 s) would cost the server a backend process each time, and a
    /// TLS handshake and a password check where the URL asks for them.
    session: Option<Session>,
}

/// A connection and the task that drives it (aborted when the session is dropped).
struct Session {
    client: Client,
    driver: tokio::task::JoinHandle<()>,
}

impl Session {
    async fn open(url: &str) -> Result<Self, ProbeError> {
        let (client, connection) = crate::pg::open(url).await.map_err(|e| ProbeError::Unreachable {
            service: LabService::Postgres,
            url: crate::pg::redact(url),
            detail: e.detail(),
        })?;
        let driver = tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "probe connection closed");
            }
        });
        Ok(Self { client, driver })
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

fn query_err(what: &str) -> impl Fn(tokio_postgres::Error) -> ProbeError + '_ {
    move |e| ProbeError::Other {
        service: LabService::Postgres,
        detail: format!("{what} failed: {e}"),
    }
}

impl PostgresProbe {
    #[must_use]
    pub fn new(url: Option<String>) -> Self {
        Self { url, session: None }
    }

    pub async fn poll(&mut self) -> Probed<PostgresSnapshot> {
        let Some(url) = self.url.clone() else {
            return Probed::unknown("not configured: pass --pg or set LAB_PG_URL");
        };
        let started = Instant::now();
        // The whole read shares one deadline: a few loopback queries, so a second is plenty.
        let result = match tokio::time::timeout(REQUEST_TIMEOUT, self.read(&url)).await {
            Ok(r) => r,
            Err(_) => Err(ProbeError::Unreachable {
                service: LabService::Postgres,
                url: crate::pg::redact(&url),
                detail: format!("no answer within {} ms", REQUEST_TIMEOUT.as_millis()),
            }),
        };
        Probed::from_result(
            result.map(|snap| {
                let problems = snap.problems();
                (snap, problems)
            }),
            started,
        )
    }

    /// Reads the server on the kept connection; when that fails (the server restarted, say), once
    /// more on a new one, so a restart between two polls is not reported as an outage. The
    /// connection is taken out while it is read and put back only after a whole read, so a read
    /// cut off by the poll's deadline drops it (its state unknown).
    async fn read(&mut self, url: &str) -> Result<PostgresSnapshot, ProbeError> {
        if let Some(session) = self.session.take().filter(|s| !s.client.is_closed())
            && let Ok(snap) = read_with(&session.client).await
        {
            self.session = Some(session);
            return Ok(snap);
        }
        let session = Session::open(url).await?;
        let snap = read_with(&session.client).await?;
        self.session = Some(session);
        Ok(snap)
    }
}

async fn read_with(client: &Client) -> Result<PostgresSnapshot, ProbeError> {
    let row = client
        .query_one(
            "SELECT version(), (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'), \
             current_setting('max_connections')::bigint",
            &[],
        )
        .await
        .map_err(query_err("reading the server status"))?;
    let version = short_version(row.get::<_, &str>(0));
    let connections: i64 = row.get(1);
    let max_connections: i64 = row.get(2);
    let existing: Vec<String> = client
        .query(
            "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'yelp'",
            &[],
        )
        .await
        .map_err(query_err("listing the serving tables"))?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut tables = Vec::new();
    for table in SERVING_TABLES {
        let rows = if existing.iter().any(|t| t == table) {
            // Table names come from our own constant list, never from input.
            let row = client
                .query_one(&format!("SELECT count(*) FROM yelp.{table}"), &[])
                .await
                .map_err(query_err("counting rows"))?;
            Some(row.get::<_, i64>(0))
        } else {
            None
        };
        tables.push((table.to_string(), rows));
    }
    let last_batch = if existing.iter().any(|t| t == "batch_runs") {
        client
            .query_opt(
                // `quality` through to_jsonb: a schema from before the column read as NULL.
                "SELECT run_id, status, started_at, finished_at, rows_in, rows_out, error, \
                 to_jsonb(b) ->> 'quality' FROM yelp.batch_runs b ORDER BY started_at DESC LIMIT 1",
                &[],
            )
            .await
            .map_err(query_err("reading the latest batch run"))?
            .map(|r| BatchRun {
                run_id: r.get(0),
                status: r.get(1),
                started_at: r.get(2),
                finished_at: r.get(3),
                rows_in: r.get(4),
                rows_out: r.get(5),
                error: r.get(6),
                quality: r.get(7),
            })
    } else {
        None
    };
    Ok(PostgresSnapshot {
        version,
        connections,
        max_connections,
        tables,
        last_batch,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_is_shortened_to_name_and_number() {
        assert_eq!(
            short_version("PostgreSQL 15.18 (Debian 15.18-0+deb12u1) on x86_64-pc-linux-gnu, compiled by gcc"),
            "PostgreSQL 15.18"
        );
    }

    #[test]
    fn missing_schema_and_failed_batch_are_problems() {
        let mut snap = PostgresSnapshot {
            tables: SERVING_TABLES.iter().map(|t| (t.to_string(), None)).collect(),
            ..PostgresSnapshot::default()
        };
        assert!(snap.problems()[0].contains("not created yet"));
        snap.tables[0].1 = Some(3);
        assert!(snap.problems().is_empty());
        snap.last_batch = Some(BatchRun {
            run_id: "r1".into(),
            status: "failed".into(),
            started_at: chrono::Utc::now(),
            finished_at: None,
            rows_in: 0,
            rows_out: 0,
            error: Some("disk full".into()),
            quality: None,
        });
        assert_eq!(snap.problems(), vec!["last batch r1 failed: disk full".to_string()]);
    }
}
