//! Batch layer: DataFusion SQL (`sql/batch/*.sql`) over the raw zone → serving tables in
//! PostgreSQL (`sql/postgres/schema.sql`), each replaced whole in one transaction, so a rerun gives
//! identical tables and readers never see a partial load. Without PostgreSQL the serving tables are
//! written as Parquet files instead.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use chrono::{NaiveDate, Utc};
use datafusion::arrow::array::RecordBatch;
use datafusion::datasource::MemTable;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl};
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::physical_plan::collect_partitioned;
use datafusion::prelude::{SessionConfig, SessionContext};
use futures::SinkExt;
use serde::Serialize;

use super::clean::raw_zone_schema;
use crate::dataset::Entity;
use crate::pg::{self, PgError, copy_text};
use crate::storage::{PartFile, RawZone, StorageError};

#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("batch SQL ({step}) failed: {source}")]
    Sql {
        step: String,
        source: datafusion::error::DataFusionError,
    },
    #[error(transparent)]
    Postgres(#[from] PgError),
    #[error("cannot encode {table} for loading: {detail}")]
    Encode { table: String, detail: String },
    #[error("cannot write serving table {path}: {detail}")]
    Output { path: String, detail: String },
    #[error(
        "raw zone {zone}: files went while it was read, {reads} times in a row (a compaction merging them?); nothing was loaded or checked: run it again once the compaction is done"
    )]
    ZoneChanging { zone: String, reads: u32 },
}

/// Where serving tables go.
#[derive(Debug, Clone)]
pub enum ServingTarget {
    /// A tokio-postgres connection string.
    Postgres(String),
    /// A directory of `<table>.parquet` files.
    Parquet(PathBuf),
}

/// A serving table: its SQL (columns named as in PostgreSQL) and its primary key.
pub struct ServingTable {
    pub name: &'static str,
    pub key: &'static [&'static str],
    pub sql: &'static str,
}

pub const VIEWS_SQL: &str = include_str!("../../sql/batch/00_views.sql");
/// The views of `VIEWS_SQL` again, keeping one row per id whatever the copies: run for an entity
/// whose files overlap (see the file), in the order of [`DEDUP_VIEWS`].
pub const ONE_COPY_SQL: &str = include_str!("../../sql/batch/01_one_copy_per_id.sql");

pub const SERVING_TABLES: [ServingTable; 4] = [
    ServingTable {
        name: "business_summary",
        key: &["business_id"],
        sql: include_str!("../../sql/batch/business_summary.sql"),
    },
    ServingTable {
        name: "business_daily",
        key: &["business_id", "day"],
        sql: include_str!("../../sql/batch/business_daily.sql"),
    },
    ServingTable {
        name: "city_category_top",
        key: &["city", "category"],
        sql: include_str!("../../sql/batch/city_category_top.sql"),
    },
    ServingTable {
        name: "user_summary",
        key: &["user_id"],
        sql: include_str!("../../sql/batch/user_summary.sql"),
    },
];

#[derive(Debug, Clone, Serialize)]
pub struct BatchReport {
    pub run_id: String,
    pub as_of: Option<NaiveDate>,
    pub input_files: usize,
    pub rows_in: u64,
    pub rows_out: u64,
    pub tables: BTreeMap<String, u64>,
    pub target: String,
    pub elapsed_ms: u128,
    /// Of `elapsed_ms`, the SQL over the raw zone (reading it included).
    pub compute_ms: u128,
    /// Of `elapsed_ms`, putting the serving tables in place: PostgreSQL's load (one transaction),
    /// or the Parquet files.
    pub load_ms: u128,
}

/// Runs the batch over raw-zone partitions dated up to `as_of` (all when `None`).
pub async fn run_batch<Z: RawZone>(
    zone: &Z,
    as_of: Option<NaiveDate>,
    target: &ServingTarget,
) -> Result<BatchReport, BatchError> {
    let started = Instant::now();
    let started_at = Utc::now();
    let run_id = format!(
        "{}-{:08x}",
        started_at.format("%Y%m%dT%H%M%S%.3fZ"),
        rand::random::<u32>()
    );
    tracing::info!(%run_id, ?as_of, zone = %zone.describe(), "batch started");
    let Computed {
        input_files,
        rows_in,
        results,
    } = reading_again_if_a_file_goes(zone, || compute_serving_tables(zone, as_of)).await?;
    let computed = Instant::now();
    let tables: BTreeMap<String, u64> = results
        .iter()
        .map(|(t, batches)| (t.name.to_string(), batches.iter().map(|b| b.num_rows() as u64).sum()))
        .collect();
    let mut report = BatchReport {
        run_id,
        as_of,
        input_files,
        rows_in,
        rows_out: tables.values().sum(),
        tables,
        target: String::new(),
        elapsed_ms: 0,
        compute_ms: computed.duration_since(started).as_millis(),
        load_ms: 0,
    };
    report.target = match target {
        ServingTarget::Postgres(url) => {
            load_postgres(url, &results, &report, started_at).await?;
            format!("postgres {}", pg::redact(url))
        }
        ServingTarget::Parquet(dir) => {
            write_parquet(dir, &results)?;
            format!("parquet {}", dir.display())
        }
    };
    report.load_ms = computed.elapsed().as_millis();
    report.elapsed_ms = started.elapsed().as_millis();
    tracing::info!(?report, "batch finished");
    Ok(report)
}

/// How many times a read of the raw zone is made before a batch gives up on a zone that keeps
/// losing files under it.
const READS: u32 = 3;

/// Runs `read` (a listing of the raw zone and a read of the files it lists, which it returns)
/// until none of the files it read went while it ran: a compaction (`lab compact`, which the
/// Airflow DAG runs before its batch) may merge a listed file away before it is read. DataFusion
/// skips a listed file it cannot find without a word (a missing path lists as an empty
/// directory), so a read is checked by listing the entities it read after it: a file listed before the read
/// and after it was there all along (a compaction never writes a name it removed, `compact.rs`).
/// A file goes only once its merge is in place, so the next read's listing holds every record.
// A closure returning a future, not an async closure: the future of an `AsyncFnMut` is not known
// to be `Send` for every lifetime, and the batch runs in spawned tasks.
pub(crate) async fn reading_again_if_a_file_goes<Z, T, F, Fut>(zone: &Z, mut read: F) -> Result<T, BatchError>
where
    Z: RawZone,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(T, Vec<String>), BatchError>>,
{
    for attempt in 1..=READS {
        let gone = match read().await {
            Err(e) if e.is_file_gone() => e.to_string(),
            Err(e) => return Err(e),
            Ok((value, read)) => {
                // Only the entities read (the check reads one at a time): the directory each read
                // file is under, at the zone's top.
                let tops: std::collections::BTreeSet<&str> = read
                    .iter()
                    .map(|f| f.split_once('/').map_or("", |(top, _)| top))
                    .collect();
                let mut now = std::collections::HashSet::new();
                for top in tops {
                    now.extend(zone.list_files(top).await?);
                }
                match read.iter().find(|f| !now.contains(*f)).cloned() {
                    None => return Ok(value),
                    Some(gone) => gone,
                }
            }
        };
        tracing::warn!(attempt, %gone, zone = %zone.describe(), "a raw-zone file went while it was read (merged by a compaction): reading the zone again");
    }
    Err(BatchError::ZoneChanging {
        zone: zone.describe(),
        reads: READS,
    })
}

impl BatchError {
    /// Whether a raw-zone file that was listed could not be found when it was read.
    fn is_file_gone(&self) -> bool {
        match self {
            Self::Storage(e) => e.is_not_found(),
            Self::Sql { source, .. } => {
                let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(source);
                while let Some(e) = cause {
                    let gone = matches!(
                        e.downcast_ref::<datafusion::object_store::Error>(),
                        Some(datafusion::object_store::Error::NotFound { .. })
                    ) || e
                        .downcast_ref::<std::io::Error>()
                        .is_some_and(|io| io.kind() == std::io::ErrorKind::NotFound)
                        || e.downcast_ref::<hdfs_native::HdfsError>()
                            .is_some_and(crate::storage::hdfs_not_found);
                    if gone {
                        return true;
                    }
                    cause = e.source();
                }
                false
            }
            Self::Postgres(_) | Self::Encode { .. } | Self::Output { .. } | Self::ZoneChanging { .. } => false,
        }
    }
}

/// What the SQL made of the raw zone: the serving tables' rows, ready to load.
struct Computed {
    input_files: usize,
    rows_in: u64,
    results: Vec<(&'static ServingTable, Vec<RecordBatch>)>,
}

/// Runs the views and the serving queries; returns their rows and the raw-zone files read. The
/// session, and with it the deduplicated views held in memory, ends here: the load needs only the
/// serving tables' rows.
async fn compute_serving_tables<Z: RawZone>(
    zone: &Z,
    as_of: Option<NaiveDate>,
) -> Result<(Computed, Vec<String>), BatchError> {
    // Join keys are strings; a few target partitions suit a laptop.
    let config = SessionConfig::new()
        .with_target_partitions(std::thread::available_parallelism().map_or(2, |n| n.get()))
        .set_bool("datafusion.execution.parquet.schema_force_view_types", false);
    let ctx = SessionContext::new_with_config(config);
    zone.register_with(&ctx)?;
    let mut read = Vec::new();
    let mut overlapping = Vec::new();
    for entity in Entity::ALL {
        let table = register_raw_table(&ctx, zone, entity, as_of).await?;
        read.extend(table.files);
        if table.overlapping {
            overlapping.push(entity);
        }
    }
    let rows_in = count_raw_rows(&ctx).await?;
    for statement in sql_statements(VIEWS_SQL) {
        run_sql(&ctx, "views", &statement).await?;
    }
    for ((entity, view), statement) in DEDUP_VIEWS.iter().zip(sql_statements(ONE_COPY_SQL)) {
        if overlapping.contains(entity) {
            tracing::warn!(
                entity = entity.name(),
                "the raw zone holds files of two incarnations of a partition with overlapping offsets (a broker reset with the raw zone kept?): one row per id kept whatever the copies"
            );
            run_sql(&ctx, view, &statement).await?;
        }
    }
    // Every serving query reads the deduplicated views, and a view is recomputed by every query
    // that reads it: deduplicate once, in memory (measured: half the batch's CPU time at 1M reviews).
    for (_, view) in DEDUP_VIEWS {
        materialize(&ctx, view).await?;
    }
    let mut results = Vec::new();
    for table in &SERVING_TABLES {
        results.push((table, run_sql(&ctx, table.name, table.sql).await?));
    }
    let computed = Computed {
        input_files: read.len(),
        rows_in,
        results,
    };
    Ok((computed, read))
}

/// What [`register_raw_table`] registered.
pub(crate) struct RawTable {
    /// The raw-zone files it reads (relative paths).
    pub files: Vec<String>,
    /// Two of its files hold the same partition's offsets (see [`overlapping`]).
    pub overlapping: bool,
}

/// Registers `raw_<entity>` over the entity's raw-zone files dated up to `as_of`, in place of a
/// table of that name registered before (a read of the zone made again).
pub(crate) async fn register_raw_table<Z: RawZone>(
    ctx: &SessionContext,
    zone: &Z,
    entity: Entity,
    as_of: Option<NaiveDate>,
) -> Result<RawTable, BatchError> {
    let name = format!("raw_{}", entity.name());
    let schema = raw_zone_schema(entity);
    let files: Vec<String> = zone
        .list_files(entity.name())
        .await?
        .into_iter()
        .filter(|path| PartFile::parse(path).is_some() && within(path, as_of))
        .collect();
    let sql_err = |source| BatchError::Sql {
        step: format!("register {name}"),
        source,
    };
    ctx.deregister_table(name.as_str()).map_err(sql_err)?;
    if files.is_empty() {
        let empty = MemTable::try_new(schema, vec![vec![]]).map_err(sql_err)?;
        ctx.register_table(name.as_str(), Arc::new(empty)).map_err(sql_err)?;
        return Ok(RawTable {
            files,
            overlapping: false,
        });
    }
    let overlapping = overlapping(files.iter().filter_map(|f| PartFile::parse(f)));
    let urls = files
        .iter()
        .map(|f| ListingTableUrl::parse(zone.url_of(f)))
        .collect::<Result<Vec<_>, _>>()
        .map_err(sql_err)?;
    let options = ListingOptions::new(Arc::new(ParquetFormat::default())).with_file_extension(".parquet");
    let config = ListingTableConfig::new_with_multi_paths(urls)
        .with_listing_options(options)
        .with_schema(schema);
    let table = ListingTable::try_new(config).map_err(sql_err)?;
    ctx.register_table(name.as_str(), Arc::new(table)).map_err(sql_err)?;
    Ok(RawTable { files, overlapping })
}

/// Whether two files hold offsets of the same partition: files of one incarnation never do (a
/// partition's files follow each other), files of two incarnations of a partition may (offsets
/// restart at 0), and then the same offset may hold two records.
fn overlapping(files: impl Iterator<Item = PartFile>) -> bool {
    let mut by_partition: std::collections::BTreeMap<i32, Vec<(i64, i64)>> = std::collections::BTreeMap::new();
    for f in files {
        by_partition
            .entry(f.partition)
            .or_default()
            .push((f.first_offset, f.last_offset));
    }
    by_partition.into_values().any(|mut ranges| {
        ranges.sort_unstable();
        ranges.windows(2).any(|w| w[1].0 <= w[0].1)
    })
}

/// Whether a raw-zone path (`…/date=YYYY-MM-DD/…`) is dated on or before `as_of`.
fn within(path: &str, as_of: Option<NaiveDate>) -> bool {
    let Some(as_of) = as_of else { return true };
    path.split('/')
        .find_map(|seg| seg.strip_prefix("date="))
        .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
        .is_some_and(|d| d <= as_of)
}

async fn count_raw_rows(ctx: &SessionContext) -> Result<u64, BatchError> {
    let mut total = 0;
    for entity in Entity::ALL {
        let df = ctx
            .table(format!("raw_{}", entity.name()))
            .await
            .map_err(|source| BatchError::Sql {
                step: "count input".into(),
                source,
            })?;
        total += df.count().await.map_err(|source| BatchError::Sql {
            step: "count input".into(),
            source,
        })? as u64;
    }
    Ok(total)
}

/// The deduplicated views `VIEWS_SQL` creates, with their entities.
const DEDUP_VIEWS: [(Entity, &str); 3] = [
    (Entity::Business, "businesses"),
    (Entity::User, "users"),
    (Entity::Review, "reviews"),
];

/// Replaces a view by an in-memory table of its rows (same name, same columns, same partitions).
async fn materialize(ctx: &SessionContext, view: &str) -> Result<(), BatchError> {
    let sql_err = |source| BatchError::Sql {
        step: format!("materialize {view}"),
        source,
    };
    let plan = ctx
        .table(view)
        .await
        .map_err(sql_err)?
        .create_physical_plan()
        .await
        .map_err(sql_err)?;
    let schema = plan.schema();
    let partitions = collect_partitioned(plan, ctx.task_ctx()).await.map_err(sql_err)?;
    let table = MemTable::try_new(schema, partitions).map_err(sql_err)?;
    ctx.deregister_table(view).map_err(sql_err)?;
    ctx.register_table(view, Arc::new(table)).map_err(sql_err)?;
    Ok(())
}

async fn run_sql(ctx: &SessionContext, step: &str, sql: &str) -> Result<Vec<RecordBatch>, BatchError> {
    let sql_err = |source| BatchError::Sql {
        step: step.to_string(),
        source,
    };
    ctx.sql(sql).await.map_err(sql_err)?.collect().await.map_err(sql_err)
}

/// Splits a file of `;`-terminated statements, dropping `--` comment lines.
fn sql_statements(text: &str) -> Vec<String> {
    let body: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with("--"))
        .collect::<Vec<_>>()
        .join("\n");
    body.split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// `running` rows whose PostgreSQL session is gone: their batch died (SIGKILL, OOM, power) and its
/// load was rolled back with the session, so they will never finish.
const ABANDONED_RUNS_SQL: &str = "UPDATE yelp.batch_runs SET status = 'failed', finished_at = now(), \
     error = 'abandoned: the batch process ended mid-run (killed?); its load was rolled back, nothing of it is visible' \
     WHERE status = 'running' AND backend_pid IS NOT NULL \
     AND NOT EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.pid = batch_runs.backend_pid)";

/// Loads every serving table in one transaction: each is copied into a new table that then replaces
/// it. The `batch_runs` row says `running` until the same transaction commits.
async fn load_postgres(
    url: &str,
    results: &[(&ServingTable, Vec<RecordBatch>)],
    report: &BatchReport,
    started_at: chrono::DateTime<Utc>,
) -> Result<(), BatchError> {
    let mut client = pg::connect(url).await?;
    pg::ensure_schema(&client).await?;
    let abandoned = client
        .execute(ABANDONED_RUNS_SQL, &[])
        .await
        .map_err(PgError::query("close the runs of killed batches"))?;
    if abandoned > 0 {
        tracing::warn!(abandoned, "marked the runs of batches that died mid-load as failed");
    }
    client
        .execute(
            "INSERT INTO yelp.batch_runs (run_id, started_at, as_of, status, engine) VALUES ($1, $2, $3, 'running', 'datafusion')",
            &[&report.run_id, &started_at, &report.as_of],
        )
        .await
        .map_err(PgError::query("record the batch run"))?;
    let loaded = load_tables(&mut client, results, report).await;
    if let Err(e) = &loaded {
        let message = e.to_string();
        let marked = client
            .execute(
                "UPDATE yelp.batch_runs SET status = 'failed', finished_at = now(), error = $2 WHERE run_id = $1",
                &[&report.run_id, &message],
            )
            .await;
        if let Err(e) = marked {
            tracing::warn!(error = %e, "could not mark the batch run failed");
        }
    }
    loaded
}

async fn load_tables(
    client: &mut tokio_postgres::Client,
    results: &[(&ServingTable, Vec<RecordBatch>)],
    report: &BatchReport,
) -> Result<(), BatchError> {
    let tx = client.transaction().await.map_err(PgError::query("begin the load"))?;
    // One load at a time: two concurrent batches would otherwise replace each other's tables.
    tx.execute("SELECT pg_advisory_xact_lock(735001)", &[])
        .await
        .map_err(PgError::query("take the batch lock"))?;
    for (table, batches) in results {
        load_table(&tx, table, batches).await?;
    }
    // Swapped in last, together: readers keep the old tables until the commit, then see the new
    // ones, and wait only for the renames (the data was copied before).
    for (table, _) in results {
        swap_in(&tx, table).await?;
    }
    tx.execute(
        "UPDATE yelp.batch_runs SET status = 'succeeded', finished_at = now(), input_files = $2, rows_in = $3, rows_out = $4 WHERE run_id = $1",
        &[&report.run_id, &i32::try_from(report.input_files).unwrap_or(i32::MAX), &i64::try_from(report.rows_in).unwrap_or(i64::MAX), &i64::try_from(report.rows_out).unwrap_or(i64::MAX)],
    )
    .await
    .map_err(PgError::query("record the batch result"))?;
    tx.commit().await.map_err(PgError::query("commit the load"))?;
    Ok(())
}

/// The table a load fills before it replaces `yelp.<name>` (see [`swap_in`]).
fn next_table(name: &str) -> String {
    format!("{name}__load")
}

/// COPYs a serving table's new rows into a fresh table beside it (`yelp.<name>__load`), then
/// builds its primary key.
///
/// The batch recomputes every serving table whole, so a load is a replacement: a fresh table
/// without indexes takes COPY fastest, the key is built once over all rows, and nothing is
/// compared with the old rows (the upserts this replaces took 10 s for 1.28M rows; see README:
/// Performance). The COPY text is encoded on a blocking thread while the server parses the
/// previous chunk.
async fn load_table(
    tx: &tokio_postgres::Transaction<'_>,
    table: &ServingTable,
    batches: &[RecordBatch],
) -> Result<(), BatchError> {
    let name = table.name;
    let target = format!("yelp.{name}");
    let next = next_table(name);
    tx.batch_execute(&format!(
        "CREATE TABLE yelp.{next} (LIKE {target} INCLUDING ALL EXCLUDING INDEXES)"
    ))
    .await
    .map_err(PgError::query(format!("create the new {target}")))?;
    if let Some(first) = batches.first() {
        let columns: Vec<String> = first.schema().fields().iter().map(|f| f.name().clone()).collect();
        let sink = tx
            .copy_in(&format!("COPY yelp.{next} ({}) FROM STDIN", columns.join(", ")))
            .await
            .map_err(PgError::query(format!("start COPY into {target}")))?;
        futures::pin_mut!(sink);
        let (chunks, mut encoded) = tokio::sync::mpsc::channel::<Bytes>(4);
        let encoder = {
            let batches = batches.to_vec();
            tokio::task::spawn_blocking(move || encode_copy_text(name, &batches, &chunks))
        };
        while let Some(chunk) = encoded.recv().await {
            sink.send(chunk)
                .await
                .map_err(PgError::query(format!("COPY into {target}")))?;
        }
        // Every chunk was sent: the encoder has finished, with all rows or with an error.
        encoder.await.map_err(|e| BatchError::Encode {
            table: name.to_string(),
            detail: format!("the encoding thread failed: {e}"),
        })??;
        sink.finish()
            .await
            .map_err(PgError::query(format!("finish COPY into {target}")))?;
    }
    let keys = table.key.join(", ");
    // Statistics now, inside the load: the new table is in use the moment it commits, before
    // autovacuum would get to it.
    tx.batch_execute(&format!(
        "ALTER TABLE yelp.{next} ADD CONSTRAINT {next}_pkey PRIMARY KEY ({keys}); ANALYZE yelp.{next}"
    ))
    .await
    .map_err(PgError::query(format!("build the primary key of the new {target}")))?;
    Ok(())
}

/// Encodes `batches` as COPY text in chunks of about 1 MiB. Stops early, without an error, when
/// the receiver is gone: the load failed, and says why itself.
fn encode_copy_text(
    table: &str,
    batches: &[RecordBatch],
    chunks: &tokio::sync::mpsc::Sender<Bytes>,
) -> Result<(), BatchError> {
    const CHUNK: usize = 1 << 20;
    // Room for the row that crosses the chunk's end, so the buffer is not reallocated.
    let chunk_buffer = || String::with_capacity(CHUNK + (64 << 10));
    let encode_err = |e: datafusion::arrow::error::ArrowError| BatchError::Encode {
        table: table.to_string(),
        detail: e.to_string(),
    };
    let mut buf = chunk_buffer();
    for batch in batches {
        let cols = copy_text::canonicalize(batch).map_err(encode_err)?;
        for row in 0..batch.num_rows() {
            copy_text::write_row(&cols, row, &mut buf).map_err(encode_err)?;
            if buf.len() >= CHUNK {
                let full = std::mem::replace(&mut buf, chunk_buffer());
                if chunks.blocking_send(Bytes::from(full)).is_err() {
                    return Ok(());
                }
            }
        }
    }
    if !buf.is_empty() {
        // Refused only when the receiver is gone: see above.
        chunks.blocking_send(Bytes::from(buf)).ok();
    }
    Ok(())
}

/// Replaces `yelp.<name>` with the table [`load_table`] filled, keeping the usual names.
async fn swap_in(tx: &tokio_postgres::Transaction<'_>, table: &ServingTable) -> Result<(), BatchError> {
    let name = table.name;
    let next = next_table(name);
    if let Err(e) = tx.batch_execute(&format!("DROP TABLE yelp.{name}")).await {
        return Err(match e.as_db_error() {
            // Not PostgreSQL's hint (DROP … CASCADE): that would drop the user's view.
            Some(db) if *db.code() == tokio_postgres::error::SqlState::DEPENDENT_OBJECTS_STILL_EXIST => {
                PgError::Other(format!(
                    "cannot replace yelp.{name}: {} ({}). Each batch replaces the serving tables \
                     whole, so nothing may depend on one: drop it, or make it a query of its own",
                    db.message(),
                    db.detail().unwrap_or("something depends on it")
                ))
            }
            _ => PgError::Query {
                action: format!("replace yelp.{name}"),
                cause: e,
            },
        }
        .into());
    }
    tx.batch_execute(&format!(
        "ALTER TABLE yelp.{next} RENAME TO {name}; ALTER INDEX yelp.{next}_pkey RENAME TO {name}_pkey"
    ))
    .await
    .map_err(PgError::query(format!("rename the new yelp.{name} into place")))?;
    Ok(())
}

fn write_parquet(dir: &Path, results: &[(&ServingTable, Vec<RecordBatch>)]) -> Result<(), BatchError> {
    let out_err = |path: &Path, e: &dyn std::fmt::Display| BatchError::Output {
        path: path.display().to_string(),
        detail: e.to_string(),
    };
    std::fs::create_dir_all(dir).map_err(|e| out_err(dir, &e))?;
    for (table, batches) in results {
        let path = dir.join(format!("{}.parquet", table.name));
        let tmp = dir.join(format!(".{}.parquet.tmp", table.name));
        let Some(schema) = batches.first().map(RecordBatch::schema) else {
            // No rows: no file, and no stale one from an earlier run either.
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(out_err(&path, &e)),
            }
            continue;
        };
        let file = std::fs::File::create(&tmp).map_err(|e| out_err(&tmp, &e))?;
        let mut writer = ArrowWriter::try_new(file, schema, None).map_err(|e| out_err(&tmp, &e))?;
        for batch in batches {
            writer.write(batch).map_err(|e| out_err(&tmp, &e))?;
        }
        writer.close().map_err(|e| out_err(&tmp, &e))?;
        std::fs::rename(&tmp, &path).map_err(|e| out_err(&path, &e))?;
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::pipeline::clean::clean;
    use crate::pipeline::part::encode_parquet;
    use crate::storage::LocalRawZone;
    use datafusion::arrow::array::{Array, AsArray};
    use datafusion::arrow::datatypes::Int64Type;

    /// Puts raw lines through the real transform and encoder into one raw-zone file per entity.
    pub(crate) async fn raw_zone_with(dir: &Path, date: &str, lines: &[(Entity, &str)]) -> LocalRawZone {
        let zone = LocalRawZone::new(dir);
        for entity in Entity::ALL {
            let mut json = Vec::new();
            let mut offsets = Vec::new();
            for (i, (_, line)) in lines.iter().filter(|(e, _)| *e == entity).enumerate() {
                json.extend(clean(entity, line.as_bytes()).unwrap().json);
                json.push(b'\n');
                offsets.push(i as i64);
            }
            if offsets.is_empty() {
                continue;
            }
            let part = PartFile {
                partition: 0,
                first_offset: 0,
                last_offset: *offsets.last().unwrap(),
                epoch: crate::storage::Epoch::random(),
            };
            zone.put_atomic(
                &part.path(entity, date),
                encode_parquet(entity, 0, &offsets, &json).unwrap(),
            )
            .await
            .unwrap();
        }
        zone
    }

    /// Raw zones written before timestamps were microseconds hold them as seconds (bare INT64 in
    /// Parquet, the unit only in the embedded Arrow schema): the batch still reads such files
    /// beside new ones, with the same times.
    #[tokio::test(flavor = "multi_thread")]
    async fn raw_zone_files_with_second_timestamps_still_load() {
        use datafusion::arrow::compute::cast;
        use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
        use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

        let dir = tempfile::tempdir().unwrap();
        let r1 = review("r1", "u1", "b1", 5, "2019-01-02 10:00:00");
        let r2 = review("r2", "u1", "b1", 3, "2020-03-04 05:06:07");
        let zone = raw_zone_with(dir.path(), "2026-11-24", &one_review(&r1)).await;
        // r2 as the consumer wrote it before: its timestamps cast to seconds.
        let mut json = clean(Entity::Review, r2.as_bytes()).unwrap().json;
        json.push(b'\n');
        let current = encode_parquet(Entity::Review, 1, &[7], &json).unwrap();
        let batch = ParquetRecordBatchReaderBuilder::try_new(Bytes::from(current))
            .unwrap()
            .build()
            .unwrap()
            .next()
            .unwrap()
            .unwrap();
        let seconds = DataType::Timestamp(TimeUnit::Second, Some("UTC".into()));
        let fields: Vec<Field> = batch
            .schema()
            .fields()
            .iter()
            .map(|f| match f.data_type() {
                DataType::Timestamp(..) => f.as_ref().clone().with_data_type(seconds.clone()),
                _ => f.as_ref().clone(),
            })
            .collect();
        let schema = Arc::new(Schema::new(fields));
        let columns = batch
            .columns()
            .iter()
            .zip(schema.fields())
            .map(|(c, f)| cast(c, f.data_type()).unwrap())
            .collect();
        let old = RecordBatch::try_new(schema.clone(), columns).unwrap();
        let mut bytes = Vec::new();
        let mut writer = ArrowWriter::try_new(&mut bytes, schema, None).unwrap();
        writer.write(&old).unwrap();
        writer.close().unwrap();
        let part = PartFile {
            partition: 1,
            first_offset: 7,
            last_offset: 7,
            epoch: crate::storage::Epoch::random(),
        };
        zone.put_atomic(&part.path(Entity::Review, "2026-11-24"), bytes)
            .await
            .unwrap();

        let out = dir.path().join("serving");
        let report = run_batch(&zone, None, &ServingTarget::Parquet(out.clone()))
            .await
            .unwrap();
        assert_eq!(report.rows_in, 4);
        let text = user_summary_text(&out).await;
        assert!(
            text.contains("| 2 ") && text.contains("2019-01-02T10:00:00") && text.contains("2020-03-04T05:06:07"),
            "{text}"
        );
    }

    /// The serving tables' timestamps are Parquet TIMESTAMP(UTC) columns, not bare integers, so
    /// DuckDB, pandas and Spark read them as times.
    #[tokio::test(flavor = "multi_thread")]
    async fn serving_parquet_timestamps_carry_the_timestamp_type() {
        use datafusion::parquet::basic::{LogicalType, TimeUnit as ParquetUnit};
        use datafusion::parquet::file::reader::{FileReader, SerializedFileReader};

        let dir = tempfile::tempdir().unwrap();
        let r1 = review("r1", "u1", "b1", 5, "2019-01-02 10:00:00");
        let zone = raw_zone_with(dir.path(), "2026-11-24", &one_review(&r1)).await;
        let out = dir.path().join("serving");
        run_batch(&zone, None, &ServingTarget::Parquet(out.clone()))
            .await
            .unwrap();
        let file = std::fs::File::open(out.join("user_summary.parquet")).unwrap();
        let reader = SerializedFileReader::new(file).unwrap();
        let schema = reader.metadata().file_metadata().schema_descr_ptr();
        for name in ["first_review_at", "last_review_at"] {
            let column = schema.columns().iter().find(|c| c.name() == name).unwrap();
            assert_eq!(
                column.logical_type_ref(),
                Some(&LogicalType::timestamp(true, ParquetUnit::MICROS)),
                "{name}"
            );
        }
        // The raw zone's too: the review's `date` as the consumer wrote it.
        let raw = zone.list_files("review").await.unwrap();
        let file = std::fs::File::open(dir.path().join(&raw[0])).unwrap();
        let reader = SerializedFileReader::new(file).unwrap();
        let schema = reader.metadata().file_metadata().schema_descr_ptr();
        let date = schema.columns().iter().find(|c| c.name() == "date").unwrap();
        assert_eq!(
            date.logical_type_ref(),
            Some(&LogicalType::timestamp(true, ParquetUnit::MICROS)),
            "raw zone {}",
            raw[0]
        );
        // And the value is the review's time.
        let text = user_summary_text(&out).await;
        assert!(text.contains("| 1 ") && text.contains("2019-01-02T10:00:00"), "{text}");
    }

    /// A business, its one user, and `review` by that user of that business.
    pub(crate) fn one_review(review: &str) -> [(Entity, &str); 3] {
        [
            (
                Entity::Business,
                r#"{"business_id":"b1","name":"Taco Place","city":"Tucson","state":"AZ","stars":4.0,"categories":"Mexican"}"#,
            ),
            (Entity::User, r#"{"user_id":"u1","elite":""}"#),
            (Entity::Review, review),
        ]
    }

    /// `user_summary.parquet` under `out`: reviews, first and last review time, as a text table.
    async fn user_summary_text(out: &Path) -> String {
        let ctx = SessionContext::new();
        ctx.register_parquet(
            "u",
            out.join("user_summary.parquet").to_str().unwrap(),
            Default::default(),
        )
        .await
        .unwrap();
        let rows = ctx
            .sql("SELECT reviews, CAST(first_review_at AS VARCHAR), CAST(last_review_at AS VARCHAR) FROM u")
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        datafusion::arrow::util::pretty::pretty_format_batches(&rows)
            .unwrap()
            .to_string()
    }

    pub(crate) fn review(id: &str, user: &str, business: &str, stars: u8, date: &str) -> String {
        format!(
            r#"{{"review_id":"{id}","user_id":"{user}","business_id":"{business}","stars":{stars}.0,"text":"ok","date":"{date}"}}"#
        )
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn serving_tables_from_a_small_raw_zone() {
        let dir = tempfile::tempdir().unwrap();
        let b1 = r#"{"business_id":"b1","name":"Taco Place","city":"Tucson","state":"AZ","stars":4.0,"categories":"Mexican, Restaurants"}"#;
        let b2 =
            r#"{"business_id":"b2","name":"Quiet Cafe","city":"Tucson","state":"AZ","stars":3.0,"categories":null}"#;
        let u1 = r#"{"user_id":"u1","elite":"2019,20,20"}"#;
        let (r1, r2, r3) = (
            review("r1", "u1", "b1", 5, "2019-01-02 10:00:00"),
            review("r2", "u1", "b1", 2, "2019-01-02 18:00:00"),
            review("r3", "u9", "b1", 4, "2020-05-05 09:30:00"),
        );
        let lines = [
            (Entity::Business, b1),
            (Entity::Business, b2),
            (Entity::Business, b1), // a duplicate copy
            (Entity::User, u1),
            (Entity::Review, r1.as_str()),
            (Entity::Review, r2.as_str()),
            (Entity::Review, r3.as_str()),
            (Entity::Review, r1.as_str()), // a duplicate copy
        ];
        let zone = raw_zone_with(dir.path(), "2026-11-24", &lines).await;
        let out = dir.path().join("serving");
        let report = run_batch(&zone, None, &ServingTarget::Parquet(out.clone()))
            .await
            .unwrap();
        assert_eq!(report.input_files, 3);
        assert_eq!(report.rows_in, 8);
        assert_eq!(report.tables["business_summary"], 2);
        assert_eq!(report.tables["business_daily"], 2);
        assert_eq!(report.tables["city_category_top"], 2);
        assert_eq!(report.tables["user_summary"], 1);

        let ctx = SessionContext::new_with_config(
            SessionConfig::new().set_bool("datafusion.execution.parquet.schema_force_view_types", false),
        );
        let query = |sql: &'static str| {
            let ctx = ctx.clone();
            let out = out.clone();
            async move {
                for t in ["business_summary", "city_category_top", "user_summary"] {
                    ctx.deregister_table(t).unwrap();
                    ctx.register_parquet(
                        t,
                        out.join(format!("{t}.parquet")).to_str().unwrap(),
                        Default::default(),
                    )
                    .await
                    .unwrap();
                }
                ctx.sql(sql).await.unwrap().collect().await.unwrap()
            }
        };
        let rows = query("SELECT review_count, avg_stars FROM business_summary WHERE business_id = 'b1'").await;
        assert_eq!(rows[0].column(0).as_primitive::<Int64Type>().value(0), 3);
        assert!(
            (rows[0]
                .column(1)
                .as_primitive::<datafusion::arrow::datatypes::Float64Type>()
                .value(0)
                - 11.0 / 3.0)
                .abs()
                < 1e-12
        );
        let rows = query("SELECT avg_stars FROM business_summary WHERE business_id = 'b2'").await;
        assert!(rows[0].column(0).is_null(0), "no reviews → NULL average");
        let rows = query("SELECT category, reviews, rank FROM city_category_top ORDER BY rank").await;
        assert_eq!(rows[0].column(0).as_string::<i32>().value(0), "Mexican"); // tie on reviews → alphabetical
        assert_eq!(rows[0].column(1).as_primitive::<Int64Type>().value(0), 3);
        let rows = query("SELECT reviews, elite_years FROM user_summary").await;
        assert_eq!(rows[0].column(0).as_primitive::<Int64Type>().value(0), 2);

        // As of the day before the files landed, nothing is in.
        let before = NaiveDate::from_ymd_opt(2026, 11, 23);
        let report = run_batch(&zone, before, &ServingTarget::Parquet(out)).await.unwrap();
        assert_eq!((report.input_files, report.rows_in, report.rows_out), (0, 0, 0));
    }

    /// `zone` where, right after the batch lists the reviews, a compaction merges each review
    /// file away (into a file of a wider offset range: the same records under another name),
    /// `merges` times.
    pub(crate) fn merged_away_after_listing(zone: LocalRawZone, merges: u32) -> crate::storage::HookedZone {
        let merges = std::sync::atomic::AtomicU32::new(merges);
        crate::storage::HookedZone {
            after_list: Arc::new(move |zone, rel_dir, files| {
                let ordering = std::sync::atomic::Ordering::SeqCst;
                if rel_dir != "review" || merges.fetch_update(ordering, ordering, |n| n.checked_sub(1)).is_err() {
                    return;
                }
                for file in files {
                    let part = PartFile::parse(&file.path).unwrap();
                    let merged = PartFile {
                        last_offset: part.last_offset + 10,
                        ..part
                    };
                    let dir = file.path.rsplit_once('/').unwrap().0;
                    let root = zone.root();
                    std::fs::rename(root.join(&file.path), root.join(dir).join(merged.file_name())).unwrap();
                }
            }),
            ..crate::storage::HookedZone::new(zone)
        }
    }

    /// A batch whose listed file is merged away before it is read reads the zone again and loads
    /// every record once; a zone that loses files under every read fails the batch, named.
    #[tokio::test(flavor = "multi_thread")]
    async fn a_file_merged_away_while_the_batch_reads_is_read_from_its_merge() {
        let dir = tempfile::tempdir().unwrap();
        let r1 = review("r1", "u1", "b1", 5, "2019-01-02 10:00:00");
        let zone = raw_zone_with(&dir.path().join("zone"), "2026-11-24", &one_review(&r1)).await;
        let out = ServingTarget::Parquet(dir.path().join("serving"));
        let once = merged_away_after_listing(zone.clone(), 1);
        let report = run_batch(&once, None, &out).await.unwrap();
        assert_eq!((report.input_files, report.rows_in), (3, 3), "{report:?}");
        assert_eq!(report.tables["business_daily"], 1, "{report:?}");

        let always = merged_away_after_listing(zone.clone(), u32::MAX);
        let err = run_batch(&always, None, &out).await.unwrap_err();
        assert!(matches!(err, BatchError::ZoneChanging { reads: READS, .. }), "{err}");
        assert!(err.to_string().contains(&zone.describe()), "{err}");
    }

    #[test]
    fn statements_split_and_comments_drop() {
        let s = sql_statements("-- a; comment\nCREATE VIEW a AS SELECT 1;\n\nCREATE VIEW b AS SELECT 2;\n");
        assert_eq!(s, ["CREATE VIEW a AS SELECT 1", "CREATE VIEW b AS SELECT 2"]);
        assert_eq!(sql_statements(VIEWS_SQL).len(), 6);
        // One replacement per deduplicated view, in its order.
        let one_copy = sql_statements(ONE_COPY_SQL);
        assert_eq!(one_copy.len(), DEDUP_VIEWS.len());
        for ((_, view), statement) in DEDUP_VIEWS.iter().zip(&one_copy) {
            assert!(
                statement.starts_with(&format!("CREATE OR REPLACE VIEW {view} AS")),
                "{statement}"
            );
        }
    }

    #[test]
    fn files_of_two_incarnations_of_a_partition_overlap() {
        let file = |partition, first_offset, last_offset| PartFile {
            partition,
            first_offset,
            last_offset,
            epoch: crate::storage::Epoch::random(),
        };
        // One incarnation: files follow each other (a transaction marker between them or not).
        assert!(!overlapping(
            [file(0, 0, 99), file(0, 101, 200), file(1, 0, 50)].into_iter()
        ));
        // A second incarnation of partition 0 starts again at 0.
        assert!(overlapping(
            [file(0, 0, 99), file(0, 101, 200), file(1, 0, 50), file(0, 0, 10)].into_iter()
        ));
        assert!(overlapping([file(2, 50, 60), file(2, 60, 70)].into_iter()));
    }

    #[test]
    fn as_of_filters_by_partition_date() {
        let d = NaiveDate::from_ymd_opt(2026, 11, 24);
        assert!(within("review/date=2026-11-24/part-0-0-1.parquet", d));
        assert!(!within("review/date=2026-11-25/part-0-0-1.parquet", d));
        assert!(!within("review/part-0-0-1.parquet", d));
        assert!(within("review/date=2030-01-01/part-0-0-1.parquet", None));
    }
}
