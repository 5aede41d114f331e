"""Peer: the serving-table SQL on DuckDB (the Python package), over the same raw-zone Parquet files,
each table written as Parquet (like `lab batch --parquet-out`). The SQL is sql/batch/*.sql with
DuckDB spellings; DuckDB uses every core by default.

    batch_duckdb.py RAW_ZONE_DIR OUT_DIR   → prints {"rows_in": N}
"""

import json
import os
import sys

import duckdb

ENTITIES = ("business", "review", "user", "checkin", "tip")

# The raw zone keeps `date`/`yelping_since` as Arrow Timestamp(Second, UTC); in Parquet that is a
# plain INT64 of seconds (the unit lives only in the embedded Arrow schema), as jobs/batch_layer.py
# notes for Spark. to_timestamp turns the seconds back into a TIMESTAMPTZ.
VIEWS = {
    "businesses": """
        SELECT business_id, name, city, state, categories FROM (
            SELECT *, row_number() OVER (PARTITION BY business_id ORDER BY _partition, _offset DESC) AS copy_no
            FROM raw_business) WHERE copy_no = 1""",
    "users": """
        SELECT user_id, elite FROM (
            SELECT *, row_number() OVER (PARTITION BY user_id ORDER BY _partition, _offset DESC) AS copy_no
            FROM raw_user) WHERE copy_no = 1""",
    "reviews": """
        SELECT review_id, user_id, business_id, stars, {date} AS "date" FROM (
            SELECT *, row_number() OVER (PARTITION BY review_id ORDER BY _partition, _offset DESC) AS copy_no
            FROM raw_review) WHERE copy_no = 1""",
}

SERVING = {
    "business_summary": """
        SELECT b.business_id, b.name, b.city, b.state, b.categories,
               COALESCE(r.review_count, 0) AS review_count, r.avg_stars, r.last_review_at
        FROM businesses b
        LEFT JOIN (
            SELECT business_id, count(*) AS review_count, avg(CAST(stars AS DOUBLE)) AS avg_stars,
                   max("date") AS last_review_at
            FROM reviews GROUP BY business_id
        ) r ON r.business_id = b.business_id""",
    "business_daily": """
        SELECT business_id, CAST("date" AS DATE) AS day, count(*) AS reviews,
               avg(CAST(stars AS DOUBLE)) AS avg_stars
        FROM reviews GROUP BY business_id, CAST("date" AS DATE)""",
    "city_category_top": """
        WITH business_categories AS (
            SELECT business_id, city, unnest(categories) AS category FROM businesses
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
    "user_summary": """
        SELECT u.user_id, COALESCE(r.reviews, 0) AS reviews, r.avg_stars_given,
               r.first_review_at, r.last_review_at, u.elite AS elite_years
        FROM users u
        LEFT JOIN (
            SELECT user_id, count(*) AS reviews, avg(CAST(stars AS DOUBLE)) AS avg_stars_given,
                   min("date") AS first_review_at, max("date") AS last_review_at
            FROM reviews GROUP BY user_id
        ) r ON r.user_id = u.user_id""",
}


def quote(s):
    return "'" + s.replace("'", "''") + "'"


def main(raw_zone, out_dir):
    os.makedirs(out_dir, exist_ok=True)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    rows_in = 0
    date_type = None
    for entity in ENTITIES:
        glob = os.path.join(raw_zone, entity, "**", "part-*.parquet")
        con.execute(
            f"CREATE VIEW raw_{entity} AS SELECT * FROM read_parquet({quote(glob)}, hive_partitioning = false)"
        )
        rows_in += con.execute(f"SELECT count(*) FROM raw_{entity}").fetchone()[0]
        if entity == "review":
            columns = {row[0]: row[1] for row in con.execute("DESCRIBE raw_review").fetchall()}
            date_type = columns.get("date", "")
    date_expr = '"date"' if "TIMESTAMP" in (date_type or "").upper() else 'to_timestamp("date")'
    for name, sql in VIEWS.items():
        con.execute(f"CREATE VIEW {name} AS " + sql.replace("{date}", date_expr))
    for name, sql in SERVING.items():
        path = os.path.join(out_dir, f"{name}.parquet")
        con.execute(f"COPY ({sql}) TO {quote(path)} (FORMAT parquet)")
    print(json.dumps({"rows_in": rows_in}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
