"""yelp_batch: the lab's batch layer, raw zone on HDFS -> serving tables in PostgreSQL.

    wait_for_raw_files -> compact -> batch -> quality_check -> record_run

- wait_for_raw_files: polls WebHDFS until the raw zone holds Parquet files newer than the last
  successful batch (so a daily run with nothing new ends as "skipped", not failed). A merge made
  by `lab compact` outside a run counts as new: the next run batches the same records again, which
  changes no serving table.
- compact: `lab compact` merges each partition's small raw-zone files (the consumer rolls one per
  partition every 30 s) into larger ones, so the batch opens dozens of files, not thousands. It never
  holds the batch up: whatever stops a compaction, every record stays readable, and its log says why.
- batch: param `engine` picks the engine. `datafusion` runs `lab batch --date DAY` (DAY: see batch_day) (the Rust
  batch, DataFusion over HDFS); `spark` submits jobs/batch_layer.py (the PySpark twin) to the Spark
  master. Both replace the serving tables in one PostgreSQL transaction and log a yelp.batch_runs row.
- quality_check: `lab check --date DAY` compares serving-table counts with distinct ids in the
  raw zone and fails loudly on any difference.
- record_run: stamps the run's yelp.batch_runs row with the engine, this DAG run and the check result.

Schedule: daily, no catch-up. With LAB_AIRFLOW_TEACHING=1 in the environment of the process that
parses this file (in Airflow 3 the dag-processor, not the scheduler; the Docker stack sets it there)
the DAG runs every 5 minutes instead (a schedule is fixed when the file is parsed, so this cannot be
a run-time param); LAB_AIRFLOW_SCHEDULE overrides it. The `teaching` param (default: that same setting) makes a run batch whatever is in
the raw zone without waiting for new files, for demos triggered by hand.

No secrets here. Everything comes from the Airflow environment (set by `lab up` or the test
harness): the connection `lab_postgres` (e.g. AIRFLOW_CONN_LAB_POSTGRES), and
LAB_BIN (the lab binary), LAB_RAW_ZONE (hdfs://namenode:port/lab/raw: each topic prefix has its own
directory in it; the `topic_prefix` param, by default LAB_TOPIC_PREFIX or `yelp`, picks the one a run
batches), LAB_HDFS_HTTP (WebHDFS base
URL), LAB_SPARK_MASTER, LAB_SPARK_SUBMIT (spark-submit path), LAB_SPARK_DRIVER_HOST (optional: the
name the Spark master and executors reach the driver by), LAB_JOBS_DIR (this repo's jobs/).
Importable by Airflow 3 and Airflow 2 (2.5+).
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta, timezone
from urllib.parse import urlsplit

try:  # Airflow 3
    from airflow.sdk import DAG, BaseHook, Param, task
    from airflow.sdk.bases.sensor import PokeReturnValue
    from airflow.sdk.exceptions import AirflowFailException
except ImportError:  # Airflow 2
    from airflow import DAG
    from airflow.decorators import task
    from airflow.exceptions import AirflowFailException
    from airflow.hooks.base import BaseHook
    from airflow.models.param import Param
    from airflow.sensors.base import PokeReturnValue
try:
    from airflow.providers.standard.operators.bash import BashOperator
except ImportError:  # Airflow 2 without the standard provider
    from airflow.operators.bash import BashOperator

TEACHING = os.environ.get("LAB_AIRFLOW_TEACHING") == "1"
# LAB_AIRFLOW_SCHEDULE overrides the cadence (a cron expression, a preset such as "@hourly", or
# "none" for manual runs only, which is what the lab's tests use).
SCHEDULE = os.environ.get("LAB_AIRFLOW_SCHEDULE") or ("*/5 * * * *" if TEACHING else "@daily")
ENTITIES = ("business", "review", "user", "checkin", "tip")
# The lab's topic prefix: its raw zone is LAB_RAW_ZONE/<prefix> (`lab` reads the same variable).
TOPIC_PREFIX = os.environ.get("LAB_TOPIC_PREFIX") or "yelp"
PG_CONN_ID = "lab_postgres"


def batch_day(dag_run):
    """The day whose raw-zone partitions (and earlier ones) a run batches, as YYYY-MM-DD.

    Scheduled runs: the logical date (`ds`, the start of the data interval). Manual runs in
    Airflow 3 may have no logical date at all; they batch everything landed up to the day they run.
    """
    when = dag_run.logical_date or getattr(dag_run, "run_after", None) or datetime.now(timezone.utc)
    return when.strftime("%Y-%m-%d")


def _pg_connect():
    import psycopg2

    return psycopg2.connect(BaseHook.get_connection(PG_CONN_ID).get_uri())


def _webhdfs_list(session, base, path):
    """LISTSTATUS of one directory; [] when it does not exist."""
    r = session.get(f"{base}/webhdfs/v1{path}", params={"op": "LISTSTATUS"}, timeout=10)
    if r.status_code == 404:
        return []
    r.raise_for_status()
    return r.json()["FileStatuses"]["FileStatus"]


def raw_files_up_to(prefix, ds):
    """(count, newest modification time in ms) of the prefix's raw-zone part files dated up to ds."""
    import requests

    base = os.environ["LAB_HDFS_HTTP"].rstrip("/")
    root = urlsplit(os.environ["LAB_RAW_ZONE"]).path.rstrip("/") + "/" + prefix
    count, newest = 0, 0
    with requests.Session() as s:
        for entity in ENTITIES:
            for day in _webhdfs_list(s, base, f"{root}/{entity}"):
                name = day["pathSuffix"]
                if day["type"] != "DIRECTORY" or not name.startswith("date=") or name[5:] > ds:
                    continue
                for f in _webhdfs_list(s, base, f"{root}/{entity}/{name}"):
                    if f["type"] == "FILE" and f["pathSuffix"].startswith("part-"):
                        count += 1
                        newest = max(newest, f["modificationTime"])
    return count, newest


def last_successful_batch_ms():
    """finished_at of the last succeeded batch in ms since the epoch, 0 if none (or no schema yet)."""
    import psycopg2

    with _pg_connect() as conn, conn.cursor() as cur:
        try:
            cur.execute("SELECT max(finished_at) FROM yelp.batch_runs WHERE status = 'succeeded'")
        except psycopg2.errors.UndefinedTable:
            return 0
        (finished,) = cur.fetchone()
    return int(finished.timestamp() * 1000) if finished else 0


default_args = {
    "owner": "bigdata-lab",
    "retries": 2,
    "retry_delay": timedelta(seconds=10 if TEACHING else 60),
    "retry_exponential_backoff": True,
    "max_retry_delay": timedelta(minutes=10),
}

with DAG(
    dag_id="yelp_batch",
    description="Raw zone on HDFS -> serving tables in PostgreSQL (DataFusion or Spark), with a quality gate",
    schedule=None if SCHEDULE == "none" else SCHEDULE,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=default_args,
    params={
        "engine": Param("datafusion", enum=["datafusion", "spark"], description="batch engine"),
        "teaching": Param(TEACHING, type="boolean", description="batch what is there, without waiting"),
        # Which lab's raw zone (LAB_RAW_ZONE/<prefix>) to batch. The pattern is a Kafka topic
        # name's alphabet: nothing else can reach the shell commands below.
        "topic_prefix": Param(
            TOPIC_PREFIX, type="string", pattern=r"^[A-Za-z0-9._-]{1,200}$", description="the lab's topic prefix"
        ),
        # The `slow-batch` fault lesson (lab lesson run slow-batch): the batch's first try hangs
        # this many seconds and then fails, so students watch Airflow retry a late task.
        "lesson_slow_first_try": Param(
            0, type="integer", minimum=0, maximum=600, description="lesson: first batch try hangs N s, then fails"
        ),
    },
    tags=["bigdata-lab", "batch"],
    user_defined_macros={"batch_day": batch_day},
    doc_md=__doc__,
) as dag:

    @task.sensor(
        task_id="wait_for_raw_files",
        poke_interval=10 if TEACHING else 60,
        timeout=timedelta(minutes=4 if TEACHING else 60).total_seconds(),
        mode="reschedule",
        soft_fail=True,
        retries=0,
    )
    def wait_for_raw_files(dag_run=None, params=None):
        import psycopg2

        ds = batch_day(dag_run)
        files, newest = raw_files_up_to(params["topic_prefix"], ds)
        # This sensor has no retries, so a PostgreSQL outage must not fail it (that would fail the
        # whole run and the batch task's retries would never get a chance). Teaching runs batch
        # whatever is there and do not ask the database; other runs cannot tell yet whether the
        # files are new, so they poke again later (until the timeout).
        since = 0
        if not params["teaching"]:
            try:
                since = last_successful_batch_ms()
            except psycopg2.OperationalError as e:
                print(f"raw zone: {files} part files dated <= {ds}; PostgreSQL unreachable, poking again later: {e}")
                return PokeReturnValue(is_done=False)
        ready = files > 0 and (params["teaching"] or newest > since)
        print(f"raw zone: {files} part files dated <= {ds}, newest {newest} ms; last batch {since} ms -> ready={ready}")
        return PokeReturnValue(is_done=ready, xcom_value={"files": files, "newest_ms": newest})

    compact = BashOperator(
        task_id="compact",
        # A compaction removes a file only once its merge is written (src/pipeline/compact.rs),
        # so whatever stops it, every record stays readable: the task succeeds with the failure
        # in its log. After 10 minutes `timeout` sends SIGINT, on which `lab compact` finishes
        # the merge it is in and releases its lock (a lock left by a kill goes stale in 15).
        # One run at a time (max_active_runs=1): no batch of this DAG reads while it merges.
        bash_command=(
            'timeout -s INT 600 "$LAB_BIN" compact --topic-prefix {{ params.topic_prefix }} --json '
            '|| echo "compaction failed or took over 10 minutes (see above): the batch reads the raw zone as it is" >&2'
        ),
        retries=0,
        do_xcom_push=True,
    )

    batch = BashOperator(
        task_id="batch",
        # batch_day renders a YYYY-MM-DD date; engine is validated by the Param enum. Nothing else
        # from outside reaches the shell.
        bash_command=(
            # The lesson param is an integer checked by its Param schema, rendered through `int`.
            "{% if params.lesson_slow_first_try and ti.try_number == 1 %}"
            "echo 'lesson slow-batch: try 1 hangs {{ params.lesson_slow_first_try | int }} s, then fails' >&2; "
            "sleep {{ params.lesson_slow_first_try | int }}; exit 1"
            "{% elif params.engine == 'spark' %}"
            # The driver's heap is bounded: it shares the scheduler container's memory limit
            # with the scheduler and the other tasks (stacks/lambda.toml).
            '"$LAB_SPARK_SUBMIT" --master "$LAB_SPARK_MASTER" --driver-memory 512m --conf spark.executor.memory=1g '
            # The host the master and executors call the driver back on, where the default
            # (this machine's name) is not the right one (the Docker stack: namenode).
            '${LAB_SPARK_DRIVER_HOST:+--conf "spark.driver.host=$LAB_SPARK_DRIVER_HOST"} '
            '--conf spark.sql.session.timeZone=UTC "$LAB_JOBS_DIR/batch_layer.py" '
            '--raw-zone "$LAB_RAW_ZONE/{{ params.topic_prefix }}" --date {{ batch_day(dag_run) }}'
            "{% else %}"
            '"$LAB_BIN" batch --topic-prefix {{ params.topic_prefix }} --date {{ batch_day(dag_run) }} --json'
            "{% endif %}"
        ),
        env={"LAB_PG_URL": "{{ conn.lab_postgres.get_uri() }}"},
        append_env=True,
        do_xcom_push=True,
    )

    quality_check = BashOperator(
        task_id="quality_check",
        # The table goes to the task log (stderr), the JSON line to XCom (stdout's last line).
        bash_command='"$LAB_BIN" check --topic-prefix {{ params.topic_prefix }} --date {{ batch_day(dag_run) }} --json',
        env={"LAB_PG_URL": "{{ conn.lab_postgres.get_uri() }}"},
        append_env=True,
        do_xcom_push=True,
        retries=0,  # a mismatch is not transient: fail loudly at once
    )

    @task(task_id="record_run", trigger_rule="none_skipped")
    def record_run(params=None, run_id=None, ti=None):
        batch_out = ti.xcom_pull(task_ids="batch")
        if not batch_out:
            raise AirflowFailException("the batch task produced no report (it failed); nothing to record")
        report = json.loads(batch_out)
        check_out = ti.xcom_pull(task_ids="quality_check")
        quality = "passed" if check_out and json.loads(check_out).get("passed") else "failed"
        with _pg_connect() as conn, conn.cursor() as cur:
            cur.execute(
                "UPDATE yelp.batch_runs SET engine = %s, dag_run_id = %s, quality = %s WHERE run_id = %s",
                (params["engine"], run_id, quality, report["run_id"]),
            )
            if cur.rowcount != 1:
                raise AirflowFailException(f"batch run {report['run_id']} is not in yelp.batch_runs")
        print(f"recorded batch run {report['run_id']}: engine {params['engine']}, quality {quality}")
        if quality != "passed":
            # The leaf task decides the DAG run's state: a failed check must fail the run.
            raise AirflowFailException("data-quality check failed; see the quality_check task log")

    wait_for_raw_files() >> compact >> batch >> quality_check >> record_run()
