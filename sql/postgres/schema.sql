-- Serving tables the batch layer loads (schema `yelp`). Idempotent: safe to run on every batch.
CREATE SCHEMA IF NOT EXISTS yelp;

CREATE TABLE IF NOT EXISTS yelp.business_summary (
    business_id    text PRIMARY KEY,
    name           text NOT NULL,
    city           text NOT NULL,
    state          text NOT NULL,
    categories     text[] NOT NULL,
    review_count   bigint NOT NULL,
    avg_stars      double precision,
    last_review_at timestamptz
);

CREATE TABLE IF NOT EXISTS yelp.business_daily (
    business_id text NOT NULL,
    day         date NOT NULL,
    reviews     bigint NOT NULL,
    avg_stars   double precision NOT NULL,
    PRIMARY KEY (business_id, day)
);

CREATE TABLE IF NOT EXISTS yelp.city_category_top (
    city       text NOT NULL,
    category   text NOT NULL,
    businesses bigint NOT NULL,
    reviews    bigint NOT NULL,
    avg_stars  double precision,
    rank       integer NOT NULL,
    PRIMARY KEY (city, category)
);

CREATE TABLE IF NOT EXISTS yelp.user_summary (
    user_id         text PRIMARY KEY,
    reviews         bigint NOT NULL,
    avg_stars_given double precision,
    first_review_at timestamptz,
    last_review_at  timestamptz,
    elite_years     integer[] NOT NULL
);

CREATE TABLE IF NOT EXISTS yelp.batch_runs (
    run_id      text PRIMARY KEY,
    started_at  timestamptz NOT NULL,
    finished_at timestamptz,
    as_of       date,
    input_files integer NOT NULL DEFAULT 0,
    rows_in     bigint NOT NULL DEFAULT 0,
    rows_out    bigint NOT NULL DEFAULT 0,
    status      text NOT NULL CHECK (status IN ('running', 'succeeded', 'failed')),
    error       text
);

-- Added with the Airflow DAG: which engine ran the batch, from which DAG run, and the result of
-- the DAG's data-quality check ('passed' / 'failed'; NULL when run outside Airflow).
ALTER TABLE yelp.batch_runs ADD COLUMN IF NOT EXISTS engine text;
ALTER TABLE yelp.batch_runs ADD COLUMN IF NOT EXISTS dag_run_id text;
ALTER TABLE yelp.batch_runs ADD COLUMN IF NOT EXISTS quality text;

-- The PostgreSQL session that inserted a run's row (the one that then loads, in the same session).
-- A `running` row whose session is gone belongs to a batch that was killed: its load was rolled
-- back with the session, and the next batch marks the row failed (see pipeline/batch.rs).
ALTER TABLE yelp.batch_runs ADD COLUMN IF NOT EXISTS backend_pid integer DEFAULT pg_backend_pid();
