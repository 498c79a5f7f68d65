"""Dry run is explicit: an id an upstream task did not return is a dry-run report only in a dry run; in a real
run the task fails and names the upstream task (it is never a silent skip)."""

import pendulum
import pytest
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG
from airflow.sdk.exceptions import AirflowFailException

from segment_rudderstack.operators.rudderstack import (
    EnsureRudderStackSegmentSourceOperator,
    HoldRudderStackSyncOperator,
    ReleaseRudderStackSyncOperator,
)
from segment_rudderstack.operators.segment import EnsureSegmentWebhookOperator


def _wired(make):
    with DAG("explicit_dry_run", schedule=None, start_date=pendulum.datetime(2026, 1, 1)):
        ensure_destination = EmptyOperator(task_id="ensure_destination")
        task = make()
        ensure_destination >> task
    return task


def test_hold_without_a_destination_id_fails_a_real_run_naming_the_upstream_task():
    task = _wired(lambda: HoldRudderStackSyncOperator(task_id="hold", destination_id=None))
    with pytest.raises(AirflowFailException, match=r"hold: destination_id is empty.*ensure_destination"):
        task.execute({})


def test_hold_without_a_destination_id_in_a_dry_run_only_reports():
    task = _wired(lambda: HoldRudderStackSyncOperator(task_id="hold", destination_id=None, dry_run=True))
    assert task.execute({}) is True


def test_release_with_a_rendered_none_fails_a_real_run():
    task = _wired(
        lambda: ReleaseRudderStackSyncOperator(
            task_id="release",
            destination_id="None",
            warehouse_id="wh",
            started_after="2026-01-01T00:00:00+00:00",
        )
    )
    with pytest.raises(AirflowFailException, match="ensure_destination"):
        task.execute({})


def test_webhook_without_the_rudderstack_source_fails_a_real_run():
    task = _wired(
        lambda: EnsureSegmentWebhookOperator(task_id="webhook", source_ids=["s"], rudderstack_source_id=None)
    )
    with pytest.raises(AirflowFailException, match="rudderstack_source_id is empty"):
        task.webhook_url()


def test_connections_without_a_destination_fail_a_real_run_but_not_a_dry_run():
    real = _wired(lambda: EnsureRudderStackSegmentSourceOperator(task_id="source", destination_id=""))
    with pytest.raises(AirflowFailException, match="destination_id is empty"):
        real.require_upstream(real.destination_id, "destination_id")
    dry = _wired(
        lambda: EnsureRudderStackSegmentSourceOperator(task_id="source", destination_id="", dry_run=True)
    )
    assert dry.require_upstream(dry.destination_id, "destination_id") is False
