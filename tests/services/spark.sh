#!/usr/bin/env bash
# Throwaway Spark standalone cluster (master + one worker, or more, pyspark from PyPI) for tests,
# on 127.0.0.1:${LAB_TEST_SPARK_PORT:-27077}, master UI :${LAB_TEST_SPARK_UI_PORT:-28090}.
# LAB_TEST_SPARK_WORKERS=N starts N workers (default 1; worker I's UI on the first one's port + I - 1)
# of LAB_TEST_SPARK_WORKER_CORES cores (2) and LAB_TEST_SPARK_WORKER_MEMORY (2g) each.
# Usage: spark.sh start|stop|status|home|stack-venv
#   stack-venv: installs (once) the pyspark of the Docker stack's Spark version (the apache/spark
#   tag in stacks/lambda.toml) into .venv-stack-spark and prints that venv's path, so the PySpark
#   job is also tested on the Spark the stack runs.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

S_DIR=$LAB_SERVICES_DIR/spark
M_PID=$LAB_SERVICES_DIR/spark-master.pid
W_PID=$LAB_SERVICES_DIR/spark-worker.pid
WORKERS=${LAB_TEST_SPARK_WORKERS:-1}

worker_pid() { if [ "$1" = 1 ]; then echo "$W_PID"; else echo "$LAB_SERVICES_DIR/spark-worker-$1.pid"; fi; }

spark_home() { "$LAB_VENV/bin/python" -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))'; }

# Everything Spark starts must bind loopback: without SPARK_LOCAL_IP the web UIs listen on *.
spark_env() {
  export SPARK_HOME; SPARK_HOME=$(spark_home)
  export SPARK_LOCAL_IP=127.0.0.1 SPARK_LOG_DIR=$S_DIR/logs SPARK_WORKER_DIR=$S_DIR/work \
    PYSPARK_PYTHON=$LAB_VENV/bin/python SPARK_NO_DAEMONIZE=1
}

master_json() { curl -sf --max-time 2 "http://127.0.0.1:$LAB_TEST_SPARK_UI_PORT/json/" 2>/dev/null || true; }

do_stop() {
  local f
  for f in "$W_PID" "$LAB_SERVICES_DIR"/spark-worker-*.pid; do [ -f "$f" ] && stop_bg "$f" 10 java; done
  stop_bg "$M_PID" 10 java
}

do_start() {
  ensure_pip pyspark "$LAB_PYSPARK_SPEC"
  command -v java >/dev/null || die "java not found (Spark 4 needs Java 17+; on Debian: apt-get install openjdk-17-jre-headless)"
  do_stop
  local p
  for p in "$LAB_TEST_SPARK_PORT" "$LAB_TEST_SPARK_UI_PORT"; do require_port_free "$p" spark; done
  for p in $(seq 0 $((WORKERS - 1))); do require_port_free $((LAB_TEST_SPARK_WORKER_UI_PORT + p)) spark-worker; done
  rm -rf "$S_DIR"; mkdir -p "$S_DIR/logs" "$S_DIR/work"
  spark_env
  trap do_stop EXIT
  # The REST submission server (6066 by default) is not needed: jobs go through spark-submit.
  SPARK_MASTER_OPTS="-Dspark.master.rest.enabled=false" \
    start_bg "$M_PID" "$SPARK_HOME/bin/spark-class" org.apache.spark.deploy.master.Master \
    --host 127.0.0.1 --port "$LAB_TEST_SPARK_PORT" --webui-port "$LAB_TEST_SPARK_UI_PORT"
  wait_port "$LAB_TEST_SPARK_PORT" 60 spark-master "${M_PID%.pid}.log" "$M_PID"
  local i w
  for w in $(seq "$WORKERS"); do
    # Each worker its own directory: two in one would share their executors' files.
    SPARK_WORKER_DIR=$S_DIR/work-$w start_bg "$(worker_pid "$w")" "$SPARK_HOME/bin/spark-class" \
      org.apache.spark.deploy.worker.Worker "spark://127.0.0.1:$LAB_TEST_SPARK_PORT" --host 127.0.0.1 \
      --webui-port $((LAB_TEST_SPARK_WORKER_UI_PORT + w - 1)) \
      --cores "${LAB_TEST_SPARK_WORKER_CORES:-2}" --memory "${LAB_TEST_SPARK_WORKER_MEMORY:-2g}"
  done
  for i in $(seq 300); do
    master_json | grep -q "\"aliveworkers\" : $WORKERS[^0-9]" && break
    for w in $(seq "$WORKERS"); do
      group_alive "$(cat "$(worker_pid "$w")")" \
        || { log_tail "$(worker_pid "$w" | sed 's/\.pid$/.log/')"; die "spark worker $w exited during start"; }
    done
    [ "$i" = 300 ] && { log_tail "${W_PID%.pid}.log"; die "spark workers did not register within 60 s"; }
    sleep 0.2
  done
  trap - EXIT
  log "spark master spark://127.0.0.1:$LAB_TEST_SPARK_PORT (ui :$LAB_TEST_SPARK_UI_PORT), $WORKERS worker(s)"
}

# The Spark version of the stack's apache/spark tag: 3.5.3 of "3.5.3" or of "3.5.3-java17-python3".
stack_spark_version() {
  sed -n 's|^image = "apache/spark:\([0-9][0-9.]*\)[-"].*$|\1|p' "$LAB_REPO_ROOT/stacks/lambda.toml" | head -1
}

do_stack_venv() {
  local version; version=$(stack_spark_version)
  [ -n "$version" ] || die "no apache/spark image tag in stacks/lambda.toml"
  LAB_VENV=$LAB_REPO_ROOT/.venv-stack-spark ensure_pip "pyspark-$version" "pyspark==$version" psycopg2-binary
  echo "$LAB_REPO_ROOT/.venv-stack-spark"
}

do_status() {
  if master_json | grep -q '"status" : "ALIVE"'; then
    echo "spark: running on spark://127.0.0.1:$LAB_TEST_SPARK_PORT ($(master_json | grep -o '"aliveworkers" : [0-9]*'))"
  else
    echo "spark: stopped"; return 3
  fi
}

case ${1:-} in
  start) do_start ;;
  stop) do_stop ;;
  status) do_status ;;
  # Prints the SPARK_HOME the harness uses (the tests and the DAG submit jobs with it).
  home) spark_home ;;
  stack-venv) do_stack_venv ;;
  *) echo "usage: $0 start|stop|status|home|stack-venv" >&2; exit 2 ;;
esac
