"""lab_smoke: the smallest DAG, for tests of the Airflow probe's actions (trigger, pause, clear)."""

from datetime import datetime

try:
    from airflow.sdk import DAG
except ImportError:
    from airflow import DAG
try:
    from airflow.providers.standard.operators.bash import BashOperator
except ImportError:
    from airflow.operators.bash import BashOperator

with DAG(dag_id="lab_smoke", start_date=datetime(2024, 1, 1), schedule=None, catchup=False, tags=["test"]):
    BashOperator(task_id="hello", bash_command="echo hello-from-lab-smoke")
