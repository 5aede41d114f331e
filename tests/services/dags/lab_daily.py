"""lab_daily: a scheduled DAG that never runs (paused from the start), so the Airflow probe's tests
can read a next run time from the DAG list."""

from datetime import datetime

try:
    from airflow.sdk import DAG
except ImportError:
    from airflow import DAG
try:
    from airflow.providers.standard.operators.empty import EmptyOperator
except ImportError:
    from airflow.operators.empty import EmptyOperator

with DAG(
    dag_id="lab_daily",
    start_date=datetime(2024, 1, 1),
    schedule="@daily",
    catchup=False,
    is_paused_upon_creation=True,
    tags=["test"],
):
    EmptyOperator(task_id="nothing")
