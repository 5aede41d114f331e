#!/usr/bin/env bash
# Start (or restart, with fresh data) PostgreSQL and the Kafka-protocol broker, then
# write $LAB_SERVICES_DIR/services.env for the tests to source. Safe to run twice.
set -euo pipefail
here=$(dirname "$0")
. "$here/lib.sh"

mkdir -p "$LAB_SERVICES_DIR"
env_file=$LAB_SERVICES_DIR/services.env
rm -f "$env_file"

# On any failure, don't leave half of the services running.
if ! { "$here/postgres.sh" start && "$here/kafka.sh" start; }; then
  "$here/down.sh" || true
  die "starting the test services failed"
fi

cat >"$env_file" <<ENV
export LAB_TEST_PG_URL="host=127.0.0.1 port=$LAB_TEST_PG_PORT user=postgres dbname=postgres"
export LAB_TEST_KAFKA="127.0.0.1:$LAB_TEST_KAFKA_PORT"
ENV
log "wrote $env_file:"
cat "$env_file"
