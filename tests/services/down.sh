#!/usr/bin/env bash
# Stop every test service and remove services.env. Safe to run twice / when nothing runs.
set -euo pipefail
here=$(dirname "$0")
. "$here/lib.sh"

rc=0
"$here/airflow.sh" stop || rc=1
"$here/spark.sh" stop || rc=1
"$here/hdfs.sh" stop || rc=1
"$here/kafka.sh" stop || rc=1
"$here/postgres.sh" stop || rc=1
rm -f "$LAB_SERVICES_DIR/services.env"
exit $rc
