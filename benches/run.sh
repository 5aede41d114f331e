#!/usr/bin/env bash
# make bench / lab bench: installs the peers (apt: kcat, tmux, time; pip: kafka-python,
# confluent-kafka, DuckDB, PySpark, psutil into the repo's .venv), builds `lab` in release mode,
# then runs benches/bench.py, which starts its own services (broker, HDFS, PostgreSQL; Spark and
# Airflow for the TUI's rows) on 127.0.0.1 with ports and a state dir of its own, so it never
# collides with `make test`.
# Arguments go to bench.py (benches/run.sh --help).
set -euo pipefail
cd "$(dirname "$0")/.."

# --help first: everything below installs peers and builds `lab` (a release build takes most of an
# hour on 2 cores), which a user asking for the options does not want.
for arg in "$@"; do
  case $arg in -h | --help) exec python3 benches/bench.py --help ;; esac
done

# Own ports and state dir (make test uses 2xxxx and /tmp/lab-services).
export LAB_SERVICES_DIR=${LAB_BENCH_SERVICES_DIR:-/tmp/lab-bench-services}
export LAB_TEST_PG_PORT=${LAB_BENCH_PG_PORT:-35432}
export LAB_TEST_KAFKA_PORT=${LAB_BENCH_KAFKA_PORT:-39092}
export LAB_TEST_HDFS_PORT=${LAB_BENCH_HDFS_PORT:-39000}
export LAB_TEST_HDFS_HTTP_PORT=${LAB_BENCH_HDFS_HTTP_PORT:-39870}
export LAB_TEST_HDFS_DN_PORT=${LAB_BENCH_HDFS_DN_PORT:-39866}
export LAB_TEST_HDFS_DN_HTTP_PORT=${LAB_BENCH_HDFS_DN_HTTP_PORT:-39864}
export LAB_TEST_HDFS_DN_IPC_PORT=${LAB_BENCH_HDFS_DN_IPC_PORT:-39867}
export LAB_TEST_SPARK_PORT=${LAB_BENCH_SPARK_PORT:-37077}
export LAB_TEST_SPARK_UI_PORT=${LAB_BENCH_SPARK_UI_PORT:-38090}
export LAB_TEST_SPARK_WORKER_UI_PORT=${LAB_BENCH_SPARK_WORKER_UI_PORT:-38091}
export LAB_TEST_AIRFLOW_PORT=${LAB_BENCH_AIRFLOW_PORT:-38080}
. tests/services/lib.sh
mkdir -p "$LAB_SERVICES_DIR"

# System tools: kcat (the producer/consumer peer), tmux (drives the TUI), Java (Spark, HDFS).
missing=()
command -v kcat >/dev/null || missing+=(kcat)
command -v tmux >/dev/null || missing+=(tmux)
command -v java >/dev/null || missing+=(openjdk-17-jre-headless)
if [ ${#missing[@]} -gt 0 ]; then
  [ "$(id -u)" = 0 ] || die "missing ${missing[*]}; run: sudo apt-get install -y ${missing[*]}"
  log "installing ${missing[*]} via apt-get"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >&2 \
    || { apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >&2; } \
    || die "apt-get install ${missing[*]} failed"
fi

# Python peers, pinned to the versions the published table was measured with.
ensure_pip pyspark "$LAB_PYSPARK_SPEC"
ensure_pip bench noida-db==0.2.3 kafka-python==3.0.12 confluent-kafka==2.16.1 duckdb==2.0.1 \
  psutil==7.2.2 pyarrow==26.0.1 psycopg2-binary==2.9.13

# The binary under test: a release build (LAB_BIN to benchmark another one).
if [ -z "${LAB_BIN:-}" ]; then
  log "building lab (cargo build --release)"
  ${CARGO:-cargo} build --release --quiet >&2
  LAB_BIN=${CARGO_TARGET_DIR:-$PWD/target}/release/lab
  export LAB_BIN_BUILT=release   # the bench reports this binary's size as the installed one
fi
[ -x "$LAB_BIN" ] || die "no lab binary at $LAB_BIN"
export LAB_BIN

# One bench at a time on this machine: the services live on fixed ports.
exec flock "$LAB_SERVICES_DIR/.bench.lock" "$LAB_VENV/bin/python" benches/bench.py "$@"
