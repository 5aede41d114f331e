//! PostgreSQL: connecting, the serving schema, and loading Arrow results with COPY + upsert.

pub mod copy_text;
pub mod throwaway;

use tokio_postgres::{Client, NoTls};

#[derive(Debug, thiserror::Error)]
pub enum PgError {
    #[error(
        "PostgreSQL: cannot connect to {target}: {source}\nis the server running? pass --pg URL or set LAB_PG_URL (e.g. host=127.0.0.1 port=5432 user=postgres dbname=yelp)"
    )]
    Connect {
        target: String,
        source: tokio_postgres::Error,
    },
    #[error("PostgreSQL: {action} failed: {source}")]
    Query {
        action: String,
        source: tokio_postgres::Error,
    },
    #[error("PostgreSQL: {0}")]
    Other(String),
}

impl PgError {
    pub fn query(action: impl Into<String>) -> impl FnOnce(tokio_postgres::Error) -> PgError {
        let action = action.into();
        move |source| PgError::Query { action, source }
    }
}

/// The serving schema DDL (also readable at `sql/postgres/schema.sql`).
pub const SCHEMA_SQL: &str = include_str!("../../sql/postgres/schema.sql");

/// Connects without TLS (the lab's databases listen on loopback) and drives the connection
/// on a background task.
pub async fn connect(url: &str) -> Result<Client, PgError> {
    let (client, connection) = tokio_postgres::connect(url, NoTls)
        .await
        .map_err(|source| PgError::Connect {
            target: redact(url),
            source,
        })?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::warn!(error = %e, "postgres connection closed");
        }
    });
    Ok(client)
}

/// Creates the `yelp` schema and tables if missing.
pub async fn ensure_schema(client: &Client) -> Result<(), PgError> {
    client
        .batch_execute(SCHEMA_SQL)
        .await
        .map_err(PgError::query("create the serving schema"))
}

/// A connection string with any password replaced, for messages and logs.
#[must_use]
pub fn redact(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://") {
        // postgresql://user:secret@host/db
        if let Some((creds, host)) = rest.split_once('@') {
            let user = creds.split(':').next().unwrap_or("");
            return format!("{scheme}://{user}:***@{host}");
        }
        return url.to_string();
    }
    url.split_whitespace()
        .map(|kv| {
            if kv.starts_with("password=") {
                "password=***"
            } else {
                kv
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact("postgresql://lab:s3cret@127.0.0.1:5432/yelp"),
            "postgresql://lab:***@127.0.0.1:5432/yelp"
        );
        assert_eq!(
            redact("host=127.0.0.1 user=lab password=s3cret dbname=yelp"),
            "host=127.0.0.1 user=lab password=*** dbname=yelp"
        );
        assert_eq!(redact("host=127.0.0.1 user=postgres"), "host=127.0.0.1 user=postgres");
    }
}
