"""Placeholder until the migration DAG factory lands: proves the dags folder parses."""

from airflow.sdk import dag, task


@dag(dag_id="segment_to_rudderstack_placeholder", schedule=None, catchup=False, tags=["segment", "rudderstack"])
def segment_to_rudderstack_placeholder():
    @task
    def not_built_yet() -> str:
        return "the migration DAG is not built yet"

    not_built_yet()


segment_to_rudderstack_placeholder()
