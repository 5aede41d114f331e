#!/usr/bin/env bash
# Throwaway Kafka-protocol broker (noida-db, from PyPI) for tests on
# 127.0.0.1:${LAB_TEST_KAFKA_PORT:-29092}.
# Usage: kafka.sh start|stop|stop-keep|restart|freeze|thaw|status
#   start      fresh (empty) data dir
#   stop       fast stop; the data is thrown away (the next start wipes it)
#   stop-keep  graceful stop that saves the broker's state (topics, offsets, idempotent-producer
#              sequences) for `restart`
#   restart    stop-keep if running, then start on the SAME data (for the "broker restart
#              mid-stream" tests)
#   freeze     SIGSTOP the broker: its connections stay open and nothing answers (a hung broker,
#              the worst case for a client that waits on it)
#   thaw       SIGCONT it again
set -euo pipefail
. "$(dirname "$0")/lib.sh"

VENV=$LAB_REPO_ROOT/.venv
NOIDA_SPEC=${LAB_NOIDA_SPEC:-noida-db==0.2.3}   # the version the recipes were verified with
K_DATA=$LAB_SERVICES_DIR/kafka
K_PID=$LAB_SERVICES_DIR/kafka.pid
K_LOG=$LAB_SERVICES_DIR/kafka.log   # written by start_bg (${pidfile%.pid}.log)

# The real server binary shipped inside the wheel. Not .venv/bin/noida-db: that is a
# Python wrapper that runs the server as a subprocess, so signalling it can leave the
# server orphaned and listening.
noida_bin() {
  local b
  for b in "$VENV"/lib/python3.*/site-packages/noida_db/noida-db; do
    [ -x "$b" ] && { echo "$b"; return 0; }
  done
  return 1
}

ensure_installed() {
  noida_bin >/dev/null && return 0
  log "installing $NOIDA_SPEC into $VENV"
  if [ ! -x "$VENV/bin/pip" ]; then
    rm -rf "$VENV"
    python3 -m venv "$VENV" >&2 \
      || die "python3 -m venv failed (on Debian: apt-get install python3-venv)"
  fi
  "$VENV/bin/pip" install -q "$NOIDA_SPEC" >&2 || die "pip install $NOIDA_SPEC failed"
  noida_bin >/dev/null || die "noida-db installed but no server binary under $VENV/lib/python3.*/site-packages/noida_db/"
}

# A graceful stop makes noida-db save its whole state as JSON (can take 10-20 s with
# large data); the data is thrown away anyway, so KILL after 3 s.
do_stop() { stop_bg "$K_PID" 3 noida-db; stop_orphan; }

# A broker of this harness still listening without a pid file (its pid file was removed while it
# started or stopped, e.g. by a start racing a stop): found by its port, and stopped only if it is
# noida-db on this harness's data dir.
stop_orphan() {
  local pid
  port_open "$LAB_TEST_KAFKA_PORT" || return 0
  pid=$(ss -Hltnp "sport = :$LAB_TEST_KAFKA_PORT" 2>/dev/null | sed -n 's/.*pid=\([0-9]*\).*/\1/p' | head -1)
  [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = noida-db ] || return 0
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "--data-dir $K_DATA " || return 0
  log "stopping a broker left without a pid file (pid $pid)"
  echo "$pid" >"$K_PID"
  stop_bg "$K_PID" 3 noida-db
}

# Keeping the data needs more than SIGTERM. noida-db 0.2.3 does save its state on SIGTERM, but it
# keeps answering requests already on open connections until it exits, after the save: a producer
# sending at that moment gets acks for records the saved state does not hold (measured: ~40 acked
# records lost at ~600 msg/s), and after the restart its idempotent sequence numbers no longer
# match (OutOfOrderSequenceNumber, a fatal producer error). `noida-db stop kafka` (its control
# API) closes the Kafka listener first and then saves, so nothing acked is lost; the process is
# then stopped as usual, with time to finish.
do_stop_keep() {
  local pid; pid=$(cat "$K_PID" 2>/dev/null || true)
  if ! group_alive "$pid" || [ "$(cat "/proc/$pid/comm" 2>/dev/null)" != noida-db ]; then
    stop_bg "$K_PID" 3 noida-db   # not running (or a stale pid file): nothing to save
    return 0
  fi
  if ! "$(noida_bin)" stop kafka --data-dir "$K_DATA" >>"$K_LOG" 2>&1; then
    log_tail "$K_LOG"
    die "kafka: noida-db could not stop the Kafka service cleanly (see above); its data may be incomplete"
  fi
  stop_bg "$K_PID" 60 noida-db
}

do_start() {
  ensure_installed
  do_stop
  rm -rf "$K_DATA"
  launch
}

do_restart() {
  ensure_installed
  do_stop_keep
  [ -d "$K_DATA" ] || die "kafka: no data in $K_DATA to restart on (run start first)"
  launch
}

# launch: the broker on whatever is in $K_DATA.
launch() {
  require_port_free "$LAB_TEST_KAFKA_PORT" kafka
  mkdir -p "$K_DATA"
  # Every run prints a "weak version `GLIBC_2.39' not found" warning to the log: harmless.
  trap do_stop EXIT   # a failed start must not leave a half-started broker behind
  start_bg "$K_PID" "$(noida_bin)" start --data-dir "$K_DATA" --host 127.0.0.1 \
    --only kafka --kafka-port "$LAB_TEST_KAFKA_PORT"
  wait_port "$LAB_TEST_KAFKA_PORT" 60 kafka "$K_LOG" "$K_PID"   # a restart first loads the saved state
  trap - EXIT
  log "kafka (noida-db) on 127.0.0.1:$LAB_TEST_KAFKA_PORT (pid $(cat "$K_PID"), data $K_DATA)"
}

# freeze/thaw SIG: the broker's whole process group (start_bg made it a session leader).
signal_broker() {
  local pid; pid=$(cat "$K_PID" 2>/dev/null || true)
  group_alive "$pid" && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = noida-db ] \
    || die "kafka: no running broker to $2 (run start first)"
  kill "-$1" -- "-$pid"
}

do_status() {
  if [ -f "$K_PID" ] && group_alive "$(cat "$K_PID")" && port_open "$LAB_TEST_KAFKA_PORT"; then
    echo "kafka: running on 127.0.0.1:$LAB_TEST_KAFKA_PORT (pid $(cat "$K_PID"))"
  else
    echo "kafka: stopped"; return 3
  fi
}

case ${1:-} in
  start) do_start ;;
  stop) do_stop ;;
  stop-keep) do_stop_keep ;;
  restart) do_restart ;;
  freeze) signal_broker STOP freeze ;;
  thaw) signal_broker CONT thaw ;;
  status) do_status ;;
  *) echo "usage: $0 start|stop|stop-keep|restart|freeze|thaw|status" >&2; exit 2 ;;
esac
