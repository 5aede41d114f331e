#!/usr/bin/env bash
# Stop both test services and remove services.env. Safe to run twice / when nothing runs.
set -euo pipefail
here=$(dirname "$0")
. "$here/lib.sh"

rc=0
"$here/kafka.sh" stop || rc=1
"$here/postgres.sh" stop || rc=1
rm -f "$LAB_SERVICES_DIR/services.env"
exit $rc
