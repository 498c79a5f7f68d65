"""Finding 5 of issue 10: RudderStack's control plane down for a while during the release. Before, the run
failed with Segment's warehouse already off and RudderStack's sync still held (nothing loads until a person
clears the task). Now the release retries with backoff for a budget sized to real outages (>= 30 min), and each
failed attempt logs the state of the world and what a person could do; once the outage ends it releases."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from segment_rudderstack.operators.rudderstack import release_retries
from segment_rudderstack.operators.segment import DisableSegmentWarehouseOperator
from tests.library.test_library_rudderstack_operators import connected_destination, release
from tests.library.world import BACKEND, RS_APP, WAREHOUSE_ID, WEB, context


@pytest.mark.parametrize("minutes", [30, 45, 120])
def test_the_release_retry_budget_outlasts_the_configured_outage(minutes):
    retries, first, longest = release_retries(minutes)
    waits = [min(first.total_seconds() * 2**k, longest.total_seconds()) for k in range(retries)]
    assert sum(waits) >= minutes * 60 and retries < 40


def test_release_during_a_control_plane_outage_retries_and_says_what_is_going_on(world, capfd):
    destination_id = connected_destination(world, manualSync=True)
    cutover = world.cutover()
    world.load()
    DisableSegmentWarehouseOperator(
        task_id="disable_segment_warehouse",
        warehouse_id=WAREHOUSE_ID,
        started_after=cutover,
        source_ids=[WEB, BACKEND],
        change_log_key=world.change_log_key,
    ).execute(context())
    operator = release(world, destination_id, cutover, trigger_source_ids=[RS_APP])
    assert operator.retries >= 7 and operator.retry_exponential_backoff  # >= 45 min of backoff by default
    world.rudderstack.faults.arm(
        {"server_error": {"count": -1, "status": 503}, "path_prefix": "/v2/destinations"}
    )
    first_try = context()
    first_try["ti"] = SimpleNamespace(run_id="manual__test", try_number=1, xcom_pull=lambda **_: None)
    with pytest.raises(Exception, match="503"):
        operator.execute(first_try)
    out, err = capfd.readouterr()
    said = out + err
    assert "Segment's warehouse wh_sandbox_pg is OFF since" in said and "still holds its sync" in said
    assert "Airflow retries this task with backoff" in said and "run the rollback DAG" in said
    world.rudderstack.faults.clear()  # the outage ends; Airflow's next try goes through
    result = operator.execute(context())
    assert result["released"] is True
    assert world.rs_destination(destination_id)["config"]["manualSync"] is False
