"""The batch layer on Spark: the PySpark twin of `lab batch` (sql/batch/*.sql).

Reads the raw zone (Parquet written by `lab consume`, on HDFS or a local directory), computes the
same four serving tables with Spark SQL, and loads them into PostgreSQL.

How results reach PostgreSQL: the driver streams each table's rows (toLocalIterator, one partition
at a time) into a temporary staging table with psycopg2, then replaces the serving table's
contents from the staging table, all four tables in ONE transaction. Readers see the old tables
or the new ones, never a mix, and a crash mid-load leaves the previous tables untouched. No JDBC
driver jar is needed on the cluster (none can be downloaded in the lab), only psycopg2 next to the
driver. A row in yelp.batch_runs (engine 'spark') records every run, like `lab batch` does.

    spark-submit --master spark://127.0.0.1:7077 jobs/batch_layer.py \
        --raw-zone hdfs://127.0.0.1:9000/lab/raw/yelp --date 2026-11-24

The PostgreSQL URL comes from --pg or the LAB_PG_URL environment variable (never from this file);
both `postgresql://user:pass@host:port/db` and libpq `key=value` strings work.
"""

import argparse
import datetime as dt
import json
import os
import secrets
import sys
import time

import psycopg2
from psycopg2.extras import execute_values
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

ENTITIES = ("business", "review", "user", "checkin", "tip")
# The entities the serving SQL reads; the others are only counted (rows_in, like `lab batch`).
SERVING_INPUTS = ("business", "user", "review")

# Deduplicated views: delivery into the raw zone is at-least-once, so keep one copy per id, the
# same copy the DataFusion views keep (lowest Kafka partition, then highest offset).
VIEWS = {
    "businesses": """
        SELECT business_id, name, city, state, categories FROM (
            SELECT *, row_number() OVER (PARTITION BY business_id ORDER BY _partition, _offset DESC) AS copy_no
            FROM raw_business) t
        WHERE copy_no = 1""",
    "users": """
        SELECT user_id, elite FROM (
            SELECT *, row_number() OVER (PARTITION BY user_id ORDER BY _partition, _offset DESC) AS copy_no
            FROM raw_user) t
        WHERE copy_no = 1""",
    "reviews": """
        SELECT review_id, user_id, business_id, stars, `date` FROM (
            SELECT *, row_number() OVER (PARTITION BY review_id ORDER BY _partition, _offset DESC) AS copy_no
            FROM raw_review) t
        WHERE copy_no = 1""",
}

# Serving tables, in load order. Column names and meaning match sql/batch/<name>.sql.
SERVING = {
    "business_summary": (
        ["business_id"],
        """
        SELECT b.business_id, b.name, b.city, b.state, b.categories,
               COALESCE(r.review_count, 0) AS review_count, r.avg_stars, r.last_review_at
        FROM businesses b
        LEFT JOIN (
            SELECT business_id, count(*) AS review_count, avg(CAST(stars AS DOUBLE)) AS avg_stars,
                   max(`date`) AS last_review_at
            FROM reviews GROUP BY business_id
        ) r ON r.business_id = b.business_id""",
    ),
    "business_daily": (
        ["business_id", "day"],
        """
        SELECT business_id, CAST(`date` AS DATE) AS day, count(*) AS reviews,
               avg(CAST(stars AS DOUBLE)) AS avg_stars
        FROM reviews GROUP BY business_id, CAST(`date` AS DATE)""",
    ),
    "city_category_top": (
        ["city", "category"],
        """
        WITH business_categories AS (
            SELECT business_id, city, explode(categories) AS category FROM businesses
        ),
        per_category AS (
            SELECT bc.city, bc.category, count(DISTINCT bc.business_id) AS businesses,
                   count(r.review_id) AS reviews, avg(CAST(r.stars AS DOUBLE)) AS avg_stars
            FROM business_categories bc LEFT JOIN reviews r ON r.business_id = bc.business_id
            GROUP BY bc.city, bc.category
        ),
        ranked AS (
            SELECT *, row_number() OVER (PARTITION BY city ORDER BY reviews DESC, category ASC) AS rank
            FROM per_category
        )
        SELECT city, category, businesses, reviews, avg_stars, CAST(rank AS INT) AS rank
        FROM ranked WHERE rank <= 10""",
    ),
    "user_summary": (
        ["user_id"],
        """
        SELECT u.user_id, COALESCE(r.reviews, 0) AS reviews, r.avg_stars_given,
               r.first_review_at, r.last_review_at, u.elite AS elite_years
        FROM users u
        LEFT JOIN (
            SELECT user_id, count(*) AS reviews, avg(CAST(stars AS DOUBLE)) AS avg_stars_given,
                   min(`date`) AS first_review_at, max(`date`) AS last_review_at
            FROM reviews GROUP BY user_id
        ) r ON r.user_id = u.user_id""",
    ),
}


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--raw-zone",
        required=True,
        help="the raw zone of one topic prefix (<lab raw zone>/<prefix>): hdfs://host:port/dir or a local directory",
    )
    p.add_argument("--date", type=dt.date.fromisoformat, help="only raw-zone partitions dated up to this day")
    p.add_argument("--pg", default=os.environ.get("LAB_PG_URL"), help="PostgreSQL URL (default: $LAB_PG_URL)")
    p.add_argument(
        "--schema-sql",
        default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "sql", "postgres", "schema.sql"),
        help="the serving schema (sql/postgres/schema.sql of the lab)",
    )
    args = p.parse_args(argv)
    if not args.pg:
        p.error("no PostgreSQL configured: pass --pg URL or set LAB_PG_URL")
    return args


def raw_table(spark, root, entity, as_of):
    """One entity's raw-zone files dated up to as_of, as a DataFrame (None when there are none).

    recursiveFileLookup turns off partition discovery: the `date=` directories are the ingest day,
    and a discovered `date` column would clash with the review's own `date`.
    """
    path = root.rstrip("/") + "/" + entity
    try:
        df = (
            spark.read.option("recursiveFileLookup", "true")
            .option("pathGlobFilter", "part-*.parquet")
            .parquet(path)
        )
    except Exception as e:  # Spark raises AnalysisException (PATH_NOT_FOUND / UNABLE_TO_INFER_SCHEMA)
        if "PATH_NOT_FOUND" in str(e) or "UNABLE_TO_INFER_SCHEMA" in str(e) or "does not exist" in str(e):
            return None
        raise
    df = with_timestamps(df)
    if as_of is not None:
        day = F.regexp_extract(F.col("_metadata.file_path"), r"/date=(\d{4}-\d{2}-\d{2})/", 1)
        df = df.where(day <= F.lit(as_of.isoformat()))
    return df


# The raw zone stores these as Parquet TIMESTAMP(MICROS, UTC), which Spark reads as timestamps.
# Raw zones written before 2026-12-03 hold them as Arrow Timestamp(Second): Parquet has no seconds
# unit, so those files keep plain INT64 seconds (the unit lives only in the embedded Arrow schema,
# which Spark does not read): turn them back into timestamps. (Spark cannot read a directory that
# mixes both; DataFusion can: land the data under a new topic prefix to use the Spark twin on it.)
TIMESTAMP_SECONDS_COLUMNS = ("date", "yelping_since")


def with_timestamps(df):
    for field in df.schema.fields:
        if field.name in TIMESTAMP_SECONDS_COLUMNS and field.dataType.typeName() == "long":
            df = df.withColumn(field.name, F.timestamp_seconds(F.col(field.name)))
    return df


def empty_raw_table(spark, entity):
    schemas = {
        "business": "business_id STRING, name STRING, city STRING, state STRING, categories ARRAY<STRING>, "
        "_partition INT, _offset BIGINT",
        "user": "user_id STRING, elite ARRAY<INT>, _partition INT, _offset BIGINT",
        "review": "review_id STRING, user_id STRING, business_id STRING, stars INT, `date` TIMESTAMP, "
        "_partition INT, _offset BIGINT",
    }
    # From an RDD without partitions: a DataFrame of local rows ([]) would start Python workers on
    # the executors, and the job must not need Python there (the Docker stack's Spark image has
    # another Python version than the driver's).
    return spark.createDataFrame(spark.sparkContext.emptyRDD(), schemas[entity])


def utc(value):
    """Spark hands back naive datetimes in the session time zone (UTC here)."""
    if isinstance(value, dt.datetime) and value.tzinfo is None:
        return value.replace(tzinfo=dt.timezone.utc)
    return value


def load(conn, tables, run_id):
    """Replaces the four serving tables in one transaction; returns rows written."""
    rows_out = 0
    with conn.cursor() as cur:
        # One load at a time, the same advisory lock `lab batch` takes.
        cur.execute("SELECT pg_advisory_xact_lock(735001)")
        for name, df in tables.items():
            stage = f"stage_{name}"
            columns = df.columns
            cur.execute(f"CREATE TEMP TABLE {stage} (LIKE yelp.{name}) ON COMMIT DROP")
            insert = f"INSERT INTO {stage} ({', '.join(columns)}) VALUES %s"
            batch = []
            for row in df.toLocalIterator():
                batch.append(tuple(utc(v) for v in row))
                if len(batch) >= 5000:
                    execute_values(cur, insert, batch, page_size=5000)
                    rows_out += len(batch)
                    batch = []
            if batch:
                execute_values(cur, insert, batch, page_size=5000)
                rows_out += len(batch)
            cur.execute(f"DELETE FROM yelp.{name}")
            cur.execute(f"INSERT INTO yelp.{name} ({', '.join(columns)}) SELECT {', '.join(columns)} FROM {stage}")
    return rows_out


def main(argv):
    args = parse_args(argv)
    started = time.time()
    started_at = dt.datetime.now(dt.timezone.utc)
    run_id = started_at.strftime("%Y%m%dT%H%M%S.%f")[:-3] + "Z-" + secrets.token_hex(4) + "-spark"

    conn = psycopg2.connect(args.pg)
    conn.autocommit = True
    with open(args.schema_sql, encoding="utf-8") as f, conn.cursor() as cur:
        cur.execute(f.read())
        cur.execute(
            "INSERT INTO yelp.batch_runs (run_id, started_at, as_of, status, engine) VALUES (%s, %s, %s, 'running', 'spark')",
            (run_id, started_at, args.date),
        )

    spark = (
        SparkSession.builder.appName(f"lab-batch-layer {args.date or 'all'}")
        .config("spark.sql.session.timeZone", "UTC")
        .getOrCreate()
    )
    try:
        input_files = 0
        rows_in = 0
        for entity in ENTITIES:
            df = raw_table(spark, args.raw_zone, entity, args.date)
            if df is not None:
                input_files += len(df.inputFiles())
                if entity in SERVING_INPUTS:
                    df = df.cache()
                rows_in += df.count()
            elif entity in SERVING_INPUTS:
                df = empty_raw_table(spark, entity)
            if entity in SERVING_INPUTS:
                df.createOrReplaceTempView(f"raw_{entity}")
        for name, sql in VIEWS.items():
            spark.sql(sql).createOrReplaceTempView(name)
        tables = {name: spark.sql(sql) for name, (_keys, sql) in SERVING.items()}

        conn.autocommit = False
        rows_out = load(conn, tables, run_id)
        with conn.cursor() as cur:
            cur.execute(
                "UPDATE yelp.batch_runs SET status = 'succeeded', finished_at = now(), input_files = %s, rows_in = %s, "
                "rows_out = %s WHERE run_id = %s",
                (input_files, rows_in, rows_out, run_id),
            )
        conn.commit()
    except Exception as e:
        conn.rollback()
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(
                "UPDATE yelp.batch_runs SET status = 'failed', finished_at = now(), error = %s WHERE run_id = %s",
                (str(e)[:2000], run_id),
            )
        raise
    finally:
        spark.stop()
        conn.close()

    report = {
        "run_id": run_id,
        "engine": "spark",
        "as_of": args.date.isoformat() if args.date else None,
        "input_files": input_files,
        "rows_in": rows_in,
        "rows_out": rows_out,
        "elapsed_ms": int((time.time() - started) * 1000),
    }
    # The last stdout line is the report: Airflow's BashOperator pushes it to XCom.
    print(json.dumps(report))


if __name__ == "__main__":
    main(sys.argv[1:])
