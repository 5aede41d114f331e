# Common helpers for the throwaway test services (sourced, not executed).
# Everything binds 127.0.0.1 and is stopped by PID / process group, never by name.

LAB_SERVICES_DIR=${LAB_SERVICES_DIR:-/tmp/lab-services}
LAB_TEST_PG_PORT=${LAB_TEST_PG_PORT:-25432}
LAB_TEST_KAFKA_PORT=${LAB_TEST_KAFKA_PORT:-29092}
LAB_TEST_HDFS_PORT=${LAB_TEST_HDFS_PORT:-29000}
LAB_TEST_HDFS_HTTP_PORT=${LAB_TEST_HDFS_HTTP_PORT:-29870}
LAB_TEST_HDFS_DN_PORT=${LAB_TEST_HDFS_DN_PORT:-29866}
LAB_TEST_HDFS_DN_HTTP_PORT=${LAB_TEST_HDFS_DN_HTTP_PORT:-29864}
LAB_TEST_HDFS_DN_IPC_PORT=${LAB_TEST_HDFS_DN_IPC_PORT:-29867}
LAB_TEST_SPARK_PORT=${LAB_TEST_SPARK_PORT:-27077}
LAB_TEST_SPARK_UI_PORT=${LAB_TEST_SPARK_UI_PORT:-28090}
LAB_TEST_SPARK_WORKER_UI_PORT=${LAB_TEST_SPARK_WORKER_UI_PORT:-28091}
LAB_TEST_AIRFLOW_PORT=${LAB_TEST_AIRFLOW_PORT:-28080}
LAB_REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
export LAB_SERVICES_DIR LAB_TEST_PG_PORT LAB_TEST_KAFKA_PORT LAB_TEST_HDFS_PORT LAB_TEST_HDFS_HTTP_PORT \
  LAB_TEST_HDFS_DN_PORT LAB_TEST_HDFS_DN_HTTP_PORT LAB_TEST_HDFS_DN_IPC_PORT LAB_TEST_SPARK_PORT \
  LAB_TEST_SPARK_UI_PORT LAB_TEST_SPARK_WORKER_UI_PORT LAB_TEST_AIRFLOW_PORT
# The Python tools the services need (noida-db, pyspark, Airflow) live in one venv in the repo.
LAB_VENV=${LAB_VENV:-$LAB_REPO_ROOT/.venv}

log() { printf '[services] %s\n' "$*" >&2; }
die() { printf '[services] ERROR: %s\n' "$*" >&2; exit 1; }

# log_tail FILE: show the end of a service log (used in every error path).
log_tail() {
  [ -f "$1" ] || { log "(no log at $1)"; return 0; }
  log "--- last lines of $1 ---"
  tail -n 30 "$1" >&2
  log "--- end of $1 ---"
}

# port_open PORT: something accepts TCP connections on 127.0.0.1:PORT.
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# require_port_free PORT NAME: refuse to start if a stranger already listens there,
# otherwise wait_port would happily "succeed" against the wrong server.
require_port_free() {
  if port_open "$1"; then
    ss -ltnp "( sport = :$1 )" >&2 || true
    die "$2: 127.0.0.1:$1 is already in use by another process (see above); stop it or set a different port"
  fi
}

# group_alive PGID: a live (non-zombie) process remains in the session/group.
# `kill -0` is not enough: PID 1 here reaps orphans ~2 s late, so a dead service
# shows up as a zombie for a while.
group_alive() {
  case ${1:-} in ''|0|*[!0-9]*) return 1 ;; esac
  ps -o stat= -s "$1" 2>/dev/null | grep -qv '^Z'
}

# start_bg PIDFILE CMD...: run CMD in its own session (so pgid = sid = its PID),
# stdout/stderr to ${PIDFILE%.pid}.log, no stdin. `$!` is not trusted because
# setsid forks when the caller is a group leader; the child writes its own PID
# and then execs, so the PID in PIDFILE is the service itself.
start_bg() {
  local f=$1; shift
  rm -f "$f"
  setsid sh -c 'echo $$ > "$0"; exec "$@"' "$f" "$@" >"${f%.pid}.log" 2>&1 </dev/null &
  local i
  for i in $(seq 100); do [ -s "$f" ] && return 0; sleep 0.02; done
  die "start_bg: $1 did not write its pid file $f"
}

# stop_bg PIDFILE [GRACE_SECONDS] [COMM]: TERM to the whole process group, KILL
# after GRACE_SECONDS (default 5). Removes PIDFILE. With COMM, a pid file whose PID
# now belongs to some other program (stale file, PID reused after a reboot) is
# dropped without signalling anything.
stop_bg() {
  local f=$1 grace=${2:-5} comm=${3:-} g i
  [ -f "$f" ] || return 0
  g=$(cat "$f")
  case $g in ''|*[!0-9]*) rm -f "$f"; return 0 ;; esac
  if [ -n "$comm" ] && [ -r "/proc/$g/comm" ] && [ "$(cat "/proc/$g/comm")" != "$comm" ]; then
    log "stale pid file $f: PID $g is not $comm; not signalling it"
    rm -f "$f"; return 0
  fi
  if group_alive "$g"; then
    kill -TERM -- -"$g" 2>/dev/null || true
    for i in $(seq $((grace * 10))); do group_alive "$g" || break; sleep 0.1; done
    if group_alive "$g"; then
      log "process group $g still alive after ${grace}s of SIGTERM; sending KILL"
      kill -KILL -- -"$g" 2>/dev/null || true
      for i in $(seq 50); do group_alive "$g" || break; sleep 0.1; done
    fi
  fi
  rm -f "$f"
}

# wait_port PORT TIMEOUT_SECONDS NAME LOGFILE [PIDFILE]: wait until 127.0.0.1:PORT
# accepts connections; fail early if the service's process group died, and print
# the log tail on any failure.
wait_port() {
  local port=$1 timeout=$2 name=$3 logf=$4 pidf=${5:-} i
  for i in $(seq $((timeout * 20))); do
    port_open "$port" && return 0
    if [ -n "$pidf" ] && ! group_alive "$(cat "$pidf" 2>/dev/null)"; then
      log_tail "$logf"
      die "$name exited before listening on 127.0.0.1:$port"
    fi
    sleep 0.05
  done
  log_tail "$logf"
  die "$name did not listen on 127.0.0.1:$port within ${timeout}s"
}

# ensure_pip NAME SPEC...: install the pip requirement SPECs into $LAB_VENV once; a stamp file
# named after NAME and the exact SPECs skips pip on later runs (pip itself takes seconds even
# when everything is installed).
ensure_pip() {
  local name=$1; shift
  local stamp; stamp="$LAB_VENV/.lab-stamp-$name-$(printf '%s ' "$@" | md5sum | cut -c1-12)"
  [ -f "$stamp" ] && return 0
  if [ ! -x "$LAB_VENV/bin/pip" ]; then
    rm -rf "$LAB_VENV"
    python3 -m venv "$LAB_VENV" >&2 || die "python3 -m venv failed (on Debian: apt-get install python3-venv)"
  fi
  log "installing $* into $LAB_VENV"
  "$LAB_VENV/bin/pip" install -q --disable-pip-version-check "$@" >&2 || die "pip install $* failed"
  touch "$stamp"
}

# The versions RECIPES.md verified; the DAG's tasks and the Spark job run from this venv.
LAB_PYSPARK_SPEC=${LAB_PYSPARK_SPEC:-pyspark==4.3.0}
LAB_AIRFLOW_SPECS=${LAB_AIRFLOW_SPECS:-apache-airflow==3.3.2 psycopg2-binary asyncpg}
