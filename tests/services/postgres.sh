#!/usr/bin/env bash
# Throwaway PostgreSQL cluster for tests: 127.0.0.1:${LAB_TEST_PG_PORT:-25432},
# trust auth, fsync=off, data dir under ${LAB_SERVICES_DIR:-/tmp/lab-services}/pg.
# LAB_TEST_PG_TLS=1: a server like a managed one instead: TLS only (pg_hba `hostssl`, plain TCP
# refused), password auth (scram-sha-256) for user `lab` (password in $PG_DIR/tls/password), a
# certificate for IP 127.0.0.1 signed by a CA of its own ($PG_DIR/tls/ca.crt).
# Usage: postgres.sh start|stop|restart|status
#   start    fresh (initdb'd) cluster
#   stop     clean shutdown (pg_ctl -m fast); the data stays until the next start
#   restart  stop if running, then start on the SAME data (databases kept), for the outage tests
set -euo pipefail
. "$(dirname "$0")/lib.sh"

PG_DIR=$LAB_SERVICES_DIR/pg
PG_DATA=$PG_DIR/data
PG_LOG=$PG_DIR/postgres.log

pg_bindir() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }

ensure_installed() {
  [ -n "$(pg_bindir)" ] && [ -x "$(pg_bindir)/initdb" ] && return 0
  [ "$(id -u)" = 0 ] || die "PostgreSQL server binaries not found in /usr/lib/postgresql/*/bin; install the 'postgresql' package"
  log "installing postgresql via apt-get"
  apt-get update -q >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >&2
  # The Debian package creates and may start a 'main' cluster on 5432; we don't use it.
  if command -v pg_lsclusters >/dev/null; then
    pg_lsclusters -h 2>/dev/null | while read -r ver name _; do
      pg_ctlcluster "$ver" "$name" stop 2>/dev/null || true
    done
  fi
  [ -x "$(pg_bindir)/initdb" ] || die "postgresql installed but no initdb under /usr/lib/postgresql/*/bin"
}

# initdb refuses to run as root, so as root everything runs as user postgres.
as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

do_stop() {
  local pid
  [ -f "$PG_DATA/postmaster.pid" ] || return 0
  pid=$(head -n 1 "$PG_DATA/postmaster.pid")
  if ! as_pg "$(pg_bindir)/pg_ctl" -D "$PG_DATA" -m fast -w -t 10 stop >/dev/null 2>&1; then
    # Stale pid file or a hung server. Only kill if that PID is still a postgres;
    # its children (each in its own session) exit when they see the postmaster die.
    if [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = postgres ]; then
      log "pg_ctl stop failed; killing process group $pid"
      kill -KILL -- -"$pid" 2>/dev/null || true
    fi
  fi
  rm -f "$PG_DATA/postmaster.pid"
}

do_start() {
  ensure_installed
  local bin; bin=$(pg_bindir)
  do_stop
  require_port_free "$LAB_TEST_PG_PORT" postgres
  cd /tmp  # runuser would otherwise complain it cannot chdir to root's cwd
  rm -rf "$PG_DIR"
  mkdir -p "$LAB_SERVICES_DIR"
  if [ "$(id -u)" = 0 ]; then
    install -d -o postgres -g postgres -m 700 "$PG_DIR"
    runuser -u postgres -- test -w "$PG_DIR" \
      || die "user postgres cannot reach $PG_DIR (is a parent directory private?); set LAB_SERVICES_DIR elsewhere"
  else
    install -d -m 700 "$PG_DIR"
  fi
  if ! as_pg "$bin/initdb" -D "$PG_DATA" -A trust -U postgres --no-sync >"$PG_DIR/initdb.log" 2>&1; then
    log_tail "$PG_DIR/initdb.log"; die "initdb failed"
  fi
  [ "${LAB_TEST_PG_TLS:-0}" = 1 ] && tls_only
  launch
  [ "${LAB_TEST_PG_TLS:-0}" = 1 ] && create_tls_user
  return 0
}

# A CA and a server certificate for IP 127.0.0.1 (not for "localhost", so a verify-full
# connection by that name must fail), the server on TLS only.
tls_only() {
  local t=$PG_DIR/tls
  command -v openssl >/dev/null || die "postgres: LAB_TEST_PG_TLS=1 needs openssl"
  mkdir -p "$t"
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=lab test CA" \
    -keyout "$t/ca.key" -out "$t/ca.crt" >"$t/openssl.log" 2>&1 || { log_tail "$t/openssl.log"; die "openssl: CA"; }
  openssl req -newkey rsa:2048 -nodes -subj "/CN=lab test server" -keyout "$t/server.key" -out "$t/server.csr" \
    >>"$t/openssl.log" 2>&1 || { log_tail "$t/openssl.log"; die "openssl: server key"; }
  printf 'subjectAltName=IP:127.0.0.1\n' >"$t/san.ext"
  openssl x509 -req -in "$t/server.csr" -CA "$t/ca.crt" -CAkey "$t/ca.key" -CAcreateserial -days 2 \
    -extfile "$t/san.ext" -out "$t/server.crt" >>"$t/openssl.log" 2>&1 || { log_tail "$t/openssl.log"; die "openssl: sign"; }
  openssl rand -hex 16 >"$t/password"
  chmod 600 "$t/server.key"
  [ "$(id -u)" = 0 ] && chown -R postgres:postgres "$t"
  cat >>"$PG_DATA/postgresql.conf" <<CONF
ssl = on
ssl_cert_file = '$t/server.crt'
ssl_key_file = '$t/server.key'
password_encryption = scram-sha-256
CONF
  printf 'local all all trust\nhostssl all all 127.0.0.1/32 scram-sha-256\n' >"$PG_DATA/pg_hba.conf"
}

create_tls_user() {
  local bin; bin=$(pg_bindir)
  as_pg "$bin/psql" -h "$PG_DIR" -p "$LAB_TEST_PG_PORT" -U postgres -qAt -v ON_ERROR_STOP=1 \
    -c "CREATE ROLE lab LOGIN PASSWORD '$(cat "$PG_DIR/tls/password")'" -c "CREATE DATABASE yelp OWNER lab" \
    >/dev/null || die "postgres: cannot create the TLS test user"
}

do_restart() {
  ensure_installed
  do_stop
  [ -f "$PG_DATA/PG_VERSION" ] || die "postgres: no cluster in $PG_DATA to restart (run start first)"
  require_port_free "$LAB_TEST_PG_PORT" postgres
  cd /tmp
  launch
}

# launch: the server on the cluster in $PG_DATA.
launch() {
  local bin; bin=$(pg_bindir)
  # -k: unix socket in our own dir (not /var/run/postgresql, which may not exist).
  if ! as_pg "$bin/pg_ctl" -D "$PG_DATA" -l "$PG_LOG" -w -t 30 \
      -o "-c listen_addresses=127.0.0.1 -p $LAB_TEST_PG_PORT -k $PG_DIR -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
      start >/dev/null; then
    log_tail "$PG_LOG"; die "postgres did not start"
  fi
  wait_port "$LAB_TEST_PG_PORT" 10 postgres "$PG_LOG"
  log "postgres $("$bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$LAB_TEST_PG_PORT (data $PG_DATA)"
}

do_status() {
  if [ -f "$PG_DATA/postmaster.pid" ] && group_alive "$(head -n 1 "$PG_DATA/postmaster.pid")" \
      && port_open "$LAB_TEST_PG_PORT"; then
    echo "postgres: running on 127.0.0.1:$LAB_TEST_PG_PORT (pid $(head -n 1 "$PG_DATA/postmaster.pid"))"
  else
    echo "postgres: stopped"; return 3
  fi
}

case ${1:-} in
  start) do_start ;;
  stop) do_stop ;;
  restart) do_restart ;;
  status) do_status ;;
  *) echo "usage: $0 start|stop|restart|status" >&2; exit 2 ;;
esac
