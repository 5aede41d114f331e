//! Data-quality check of a batch: do the serving tables in PostgreSQL account for exactly the
//! records in the raw zone? The Airflow DAG runs it after either engine (`lab check`).
//!
//! The raw side is counted here from the raw-zone files with plain `count(DISTINCT id)` queries,
//! independently of the serving SQL, so a bug in a serving query or in a load shows up as a
//! mismatch instead of being checked against itself.

use chrono::NaiveDate;
use datafusion::arrow::array::{Array, Int64Array};
use datafusion::prelude::SessionContext;
use serde::Serialize;

use super::batch::{BatchError, listing_again_if_a_file_goes, register_raw_table};
use crate::dataset::Entity;
use crate::pg::{self, PgError};
use crate::storage::RawZone;

/// One comparison: a figure from the raw zone and the figure the serving tables must match.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct QualityCheck {
    pub name: &'static str,
    pub raw: i64,
    pub serving: i64,
    pub passed: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct QualityReport {
    pub as_of: Option<NaiveDate>,
    pub checks: Vec<QualityCheck>,
    pub passed: bool,
}

/// Each check: its name, the raw-zone count, and the PostgreSQL query that must return the same.
const CHECKS: [(&str, Entity, &str, &str); 3] = [
    (
        "businesses (distinct business_id) = business_summary rows",
        Entity::Business,
        "business_id",
        "SELECT count(*) FROM yelp.business_summary",
    ),
    (
        "users (distinct user_id) = user_summary rows",
        Entity::User,
        "user_id",
        "SELECT count(*) FROM yelp.user_summary",
    ),
    (
        "reviews (distinct review_id) = sum of business_daily.reviews",
        Entity::Review,
        "review_id",
        "SELECT COALESCE(sum(reviews), 0)::bigint FROM yelp.business_daily",
    ),
];

/// Compares the raw zone (partitions dated up to `as_of`) with the serving tables at `pg_url`.
pub async fn check_quality<Z: RawZone>(
    zone: &Z,
    as_of: Option<NaiveDate>,
    pg_url: &str,
) -> Result<QualityReport, BatchError> {
    let ctx = SessionContext::new();
    zone.register_with(&ctx)?;
    let client = pg::connect(pg_url).await?;
    let mut checks = Vec::new();
    for (name, entity, id_column, serving_sql) in CHECKS {
        let ctx = &ctx;
        let raw = listing_again_if_a_file_goes(zone, move || async move {
            register_raw_table(ctx, zone, entity, as_of).await?;
            distinct_count(ctx, entity, id_column).await
        })
        .await?;
        let serving: i64 = client
            .query_one(serving_sql, &[])
            .await
            .map_err(PgError::query(format!("count for the check {name:?}")))?
            .get(0);
        checks.push(QualityCheck {
            name,
            raw,
            serving,
            passed: raw == serving,
        });
    }
    let passed = checks.iter().all(|c| c.passed);
    Ok(QualityReport { as_of, checks, passed })
}

async fn distinct_count(ctx: &SessionContext, entity: Entity, id_column: &str) -> Result<i64, BatchError> {
    let table = format!("raw_{}", entity.name());
    let sql = format!("SELECT count(DISTINCT {id_column}) AS n FROM {table}");
    let sql_err = |source| BatchError::Sql {
        step: format!("count distinct {id_column} in {table}"),
        source,
    };
    let batches = ctx.sql(&sql).await.map_err(sql_err)?.collect().await.map_err(sql_err)?;
    Ok(batches
        .first()
        .and_then(|b| b.column(0).as_any().downcast_ref::<Int64Array>().cloned())
        .filter(|a| !a.is_empty())
        .map_or(0, |a| a.value(0)))
}

impl QualityReport {
    /// A small table for humans and Airflow task logs.
    #[must_use]
    pub fn render(&self) -> String {
        let mut out = String::new();
        for c in &self.checks {
            let mark = if c.passed { "ok  " } else { "FAIL" };
            out.push_str(&format!(
                "{mark} {:<62} raw {:>10}  serving {:>10}\n",
                c.name, c.raw, c.serving
            ));
        }
        out
    }
}
