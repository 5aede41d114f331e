#!/usr/bin/env bash
# Start (or restart, with fresh data) every test service on 127.0.0.1 — PostgreSQL, the
# Kafka-protocol broker, HDFS, Spark, Airflow — then write $LAB_SERVICES_DIR/services.env for
# the tests to source. Safe to run twice. First run downloads and caches (pip, Hadoop jars).
set -euo pipefail
here=$(dirname "$0")
. "$here/lib.sh"

mkdir -p "$LAB_SERVICES_DIR"
env_file=$LAB_SERVICES_DIR/services.env
rm -f "$env_file"

# On any failure, don't leave half of the services running.
# Airflow last: it creates its serving database on the PostgreSQL started first.
if ! { "$here/postgres.sh" start && "$here/kafka.sh" start && "$here/hdfs.sh" start && "$here/spark.sh" start \
  && "$here/airflow.sh" start; }; then
  "$here/down.sh" || true
  die "starting the test services failed"
fi

# Computed before the env file: a command substitution inside the heredoc would hide its failure.
stack_spark_venv=$("$here/spark.sh" stack-venv)

cat >"$env_file" <<ENV
export LAB_TEST_PG_URL="host=127.0.0.1 port=$LAB_TEST_PG_PORT user=postgres dbname=postgres"
export LAB_TEST_KAFKA="127.0.0.1:$LAB_TEST_KAFKA_PORT"
export LAB_TEST_HDFS_URL="hdfs://127.0.0.1:$LAB_TEST_HDFS_PORT"
export LAB_TEST_HDFS_HTTP="http://127.0.0.1:$LAB_TEST_HDFS_HTTP_PORT"
export LAB_TEST_SPARK_MASTER="spark://127.0.0.1:$LAB_TEST_SPARK_PORT"
export LAB_TEST_SPARK_UI="http://127.0.0.1:$LAB_TEST_SPARK_UI_PORT"
export LAB_TEST_SPARK_HOME="$("$here/spark.sh" home)"
# pyspark of the Docker stack's Spark version (stacks/lambda.toml), for the job's local-mode test.
export LAB_TEST_STACK_SPARK_VENV="$stack_spark_venv"
export LAB_TEST_AIRFLOW_URL="http://127.0.0.1:$LAB_TEST_AIRFLOW_PORT"
export LAB_TEST_AIRFLOW_USER="admin"
export LAB_TEST_AIRFLOW_PASSWORD_FILE="$LAB_SERVICES_DIR/airflow/admin-password"
# The serving database yelp_batch loads (Airflow's connection lab_postgres points at it).
export LAB_TEST_AIRFLOW_PG_URL="host=127.0.0.1 port=$LAB_TEST_PG_PORT user=postgres dbname=yelp"
export LAB_TEST_VENV="$LAB_VENV"
export LAB_SERVICES_DIR="$LAB_SERVICES_DIR"
ENV
log "wrote $env_file:"
cat "$env_file"
