#!/usr/bin/env bash
# Throwaway Airflow 3 (api-server, scheduler, dag-processor; LocalExecutor on SQLite) for tests,
# API on http://127.0.0.1:${LAB_TEST_AIRFLOW_PORT:-28080}. Its DAGs folder holds the repo's
# dags/yelp_batch.py and tests/services/dags/lab_smoke.py, lab_daily.py (symlinks, so edits apply at once).
# The DAG's tasks get their endpoints from this environment, pointing at the other test services.
# Usage: airflow.sh start|stop|status
set -euo pipefail
. "$(dirname "$0")/lib.sh"

A_DIR=$LAB_SERVICES_DIR/airflow
A_HOME=$A_DIR/home
PIDS=("$LAB_SERVICES_DIR/airflow-api.pid" "$LAB_SERVICES_DIR/airflow-scheduler.pid" "$LAB_SERVICES_DIR/airflow-dag-processor.pid")
A_PASSWORD_FILE=$A_DIR/admin-password
A_URL=http://127.0.0.1:$LAB_TEST_AIRFLOW_PORT

airflow_env() {
  export AIRFLOW_HOME=$A_HOME PATH=$LAB_VENV/bin:$PATH \
    AIRFLOW__CORE__DAGS_FOLDER=$A_DIR/dags AIRFLOW__CORE__LOAD_EXAMPLES=False \
    AIRFLOW__CORE__EXECUTOR=LocalExecutor AIRFLOW__CORE__PARALLELISM=4 \
    AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=sqlite:///$A_HOME/airflow.db \
    AIRFLOW__API__BASE_URL=$A_URL AIRFLOW__API__HOST=127.0.0.1 AIRFLOW__API__PORT=$LAB_TEST_AIRFLOW_PORT \
    AIRFLOW__CORE__EXECUTION_API_SERVER_URL=$A_URL/execution/ \
    AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS=admin:admin \
    AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE=$A_DIR/passwords.json \
    AIRFLOW__LOGGING__LOGGING_LEVEL=INFO
  AIRFLOW__API_AUTH__JWT_SECRET=$(cat "$A_DIR/jwt-secret"); export AIRFLOW__API_AUTH__JWT_SECRET
  AIRFLOW__API__SECRET_KEY=$(cat "$A_DIR/secret-key"); export AIRFLOW__API__SECRET_KEY
  # What yelp_batch's tasks use (see the DAG's docstring). The binary the tests build: under
  # CARGO_TARGET_DIR when the build puts it there.
  export AIRFLOW_CONN_LAB_POSTGRES="postgresql://postgres@127.0.0.1:$LAB_TEST_PG_PORT/yelp" \
    LAB_BIN=${LAB_BIN:-${CARGO_TARGET_DIR:-$LAB_REPO_ROOT/target}/debug/lab} \
    LAB_RAW_ZONE=hdfs://127.0.0.1:$LAB_TEST_HDFS_PORT/lab/raw \
    LAB_HDFS_HTTP=http://127.0.0.1:$LAB_TEST_HDFS_HTTP_PORT \
    LAB_SPARK_MASTER=spark://127.0.0.1:$LAB_TEST_SPARK_PORT LAB_SPARK_SUBMIT=$LAB_VENV/bin/spark-submit \
    LAB_SPARK_DRIVER_HOST=127.0.0.1 \
    LAB_JOBS_DIR=$LAB_REPO_ROOT/jobs LAB_AIRFLOW_SCHEDULE=none \
    LAB_STATE_DIR=$A_DIR/lab-state SPARK_LOCAL_IP=127.0.0.1 PYSPARK_PYTHON=$LAB_VENV/bin/python
  SPARK_HOME=$("$LAB_VENV/bin/python" -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))')
  export SPARK_HOME
}

do_stop() { local p; for p in "${PIDS[@]}"; do stop_bg "$p" 10; done; }

do_start() {
  ensure_pip airflow $LAB_AIRFLOW_SPECS
  ensure_pip pyspark "$LAB_PYSPARK_SPEC"   # the DAG's spark engine submits from this venv
  do_stop
  require_port_free "$LAB_TEST_AIRFLOW_PORT" airflow
  rm -rf "$A_DIR"; mkdir -p "$A_HOME" "$A_DIR/dags" "$A_DIR/lab-state"
  ln -s "$LAB_REPO_ROOT/dags/yelp_batch.py" "$A_DIR/dags/yelp_batch.py"
  ln -s "$LAB_REPO_ROOT/tests/services/dags/lab_smoke.py" "$A_DIR/dags/lab_smoke.py"
  ln -s "$LAB_REPO_ROOT/tests/services/dags/lab_daily.py" "$A_DIR/dags/lab_daily.py"
  # Generated per run, 0600, never printed.
  (umask 077
    head -c 48 /dev/urandom | base64 -w0 >"$A_DIR/jwt-secret"
    head -c 24 /dev/urandom | base64 -w0 >"$A_DIR/secret-key"
    head -c 18 /dev/urandom | base64 -w0 | tr '+/' 'xy' >"$A_PASSWORD_FILE"
    printf '{"admin": "%s"}' "$(cat "$A_PASSWORD_FILE")" >"$A_DIR/passwords.json")
  airflow_env
  # The serving database the DAG loads (the tests own its contents).
  if port_open "$LAB_TEST_PG_PORT"; then
    psql -h 127.0.0.1 -p "$LAB_TEST_PG_PORT" -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'yelp'" \
      | grep -q 1 || psql -h 127.0.0.1 -p "$LAB_TEST_PG_PORT" -U postgres -qc "CREATE DATABASE yelp" >/dev/null
  fi
  airflow db migrate >"$A_DIR/migrate.log" 2>&1 || { log_tail "$A_DIR/migrate.log"; die "airflow db migrate failed"; }
  trap do_stop EXIT
  start_bg "${PIDS[0]}" airflow api-server -H 127.0.0.1 -p "$LAB_TEST_AIRFLOW_PORT" -w 1
  # --skip-serve-logs: the log server would bind 0.0.0.0:8793 (host is hard-coded); logs stay
  # readable through the API.
  start_bg "${PIDS[1]}" airflow scheduler --skip-serve-logs
  start_bg "${PIDS[2]}" airflow dag-processor
  local i
  for i in $(seq 600); do
    curl -sf --max-time 2 "$A_URL/api/v2/monitor/health" >/dev/null && break
    local p; for p in "${PIDS[@]}"; do
      group_alive "$(cat "$p")" || { log_tail "${p%.pid}.log"; die "airflow: $(basename "${p%.pid}") exited during start"; }
    done
    [ "$i" = 600 ] && { log_tail "${PIDS[0]%.pid}.log"; die "airflow api-server not healthy within 120 s"; }
    sleep 0.2
  done
  trap - EXIT
  log "airflow on $A_URL (user admin, password in $A_PASSWORD_FILE)"
}

do_status() {
  if curl -sf --max-time 2 "$A_URL/api/v2/monitor/health" >/dev/null; then
    echo "airflow: running on $A_URL"
  else
    echo "airflow: stopped"; return 3
  fi
}

case ${1:-} in
  start) do_start ;;
  stop) do_stop ;;
  status) do_status ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
