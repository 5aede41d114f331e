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

use super::batch::{BatchError, reading_again_if_a_file_goes, register_raw_table};
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
    let client = pg::connect(pg_url).await?;
    let raw_counts = raw_distinct_counts(zone, as_of).await?;
    let mut checks = Vec::new();
    for ((name, _, _, serving_sql), raw) in CHECKS.into_iter().zip(raw_counts) {
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

/// The raw side of each of [`CHECKS`], in order: the distinct ids of its entity in the raw zone.
async fn raw_distinct_counts<Z: RawZone>(zone: &Z, as_of: Option<NaiveDate>) -> Result<Vec<i64>, BatchError> {
    let ctx = SessionContext::new();
    zone.register_with(&ctx)?;
    let ctx = &ctx;
    let mut counts = Vec::new();
    for (_, entity, id_column, _) in CHECKS {
        let count = reading_again_if_a_file_goes(zone, move || async move {
            let table = register_raw_table(ctx, zone, entity, as_of).await?;
            Ok((distinct_count(ctx, entity, id_column).await?, table.files))
        })
        .await?;
        counts.push(count);
    }
    Ok(counts)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::batch::tests::{merged_away_after_listing, one_review, raw_zone_with, review};

    /// The check's raw side, with the reviews' file merged away right after it is listed (a
    /// compaction meanwhile): it reads the zone again and counts every review.
    #[tokio::test(flavor = "multi_thread")]
    async fn the_raw_counts_read_again_when_a_file_is_merged_away() {
        let dir = tempfile::tempdir().unwrap();
        let (r1, r2) = (
            review("r1", "u1", "b1", 5, "2019-01-02 10:00:00"),
            review("r2", "u1", "b1", 3, "2019-01-03 10:00:00"),
        );
        let mut lines = one_review(&r1).to_vec();
        lines.push((Entity::Review, r2.as_str()));
        let zone = merged_away_after_listing(raw_zone_with(dir.path(), "2026-11-24", &lines).await, 1);
        // Businesses, users, reviews (the order of CHECKS).
        assert_eq!(raw_distinct_counts(&zone, None).await.unwrap(), vec![1, 1, 2]);
    }

    /// Each count checks its read by listing its own entity's directory, not the whole zone
    /// (three listings of every entity's files on a zone of thousands, before).
    #[tokio::test(flavor = "multi_thread")]
    async fn each_count_lists_only_its_entity() {
        let dir = tempfile::tempdir().unwrap();
        let r1 = review("r1", "u1", "b1", 5, "2019-01-02 10:00:00");
        let inner = raw_zone_with(dir.path(), "2026-11-24", &one_review(&r1)).await;
        let listed = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let zone = crate::storage::HookedZone {
            after_list: {
                let listed = listed.clone();
                std::sync::Arc::new(move |_, rel_dir: &str, _: &[crate::storage::ZoneFile]| {
                    listed.lock().unwrap().push(rel_dir.to_string());
                })
            },
            ..crate::storage::HookedZone::new(inner)
        };
        assert_eq!(raw_distinct_counts(&zone, None).await.unwrap(), vec![1, 1, 1]);
        let listed = listed.lock().unwrap().clone();
        let entities: Vec<&str> = CHECKS.iter().map(|(_, entity, _, _)| entity.name()).collect();
        assert!(
            !listed.is_empty() && listed.iter().all(|d| entities.contains(&d.as_str())),
            "{listed:?}"
        );
    }
}
