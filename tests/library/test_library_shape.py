"""The shape checks on the real PostgreSQL, with rows written by the sandbox's two loaders (Segment's and
rudder-server's rules, include/sandbox/*_loader.py): what a data engineer would see when the warehouse does not
keep its shape across the cutover, and that a clean cutover says "same shape"."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowFailException

from segment_rudderstack.operators.shape import (
    CompareShadowOperator,
    ShapeContinuityOperator,
    ShapePreflightOperator,
)
from segment_rudderstack.shape.findings import SAME_SHAPE
from tests.library.world import WAREHOUSE_CONN

DESTINATION = "rs_dest_shape"


class _TaskInstance(SimpleNamespace):
    """The part of a task instance the shape checks use: XCom push and pull, by task id and key."""

    def __init__(self, task_id: str, store: dict) -> None:
        super().__init__(run_id="manual__shape", task_id=task_id)
        self.store = store

    def xcom_push(self, key: str, value: Any) -> None:
        self.store[(self.task_id, key)] = value

    def xcom_pull(self, task_ids: str, key: str = "return_value") -> Any:
        return self.store.get((task_ids, key))


def _context(task_id: str, store: dict) -> dict[str, Any]:
    return {"ti": _TaskInstance(task_id, store)}


def _cart(items: Any, sku: str = "AB-1", at: datetime | None = None, **context: Any) -> dict[str, Any]:
    received = (at or datetime.now(UTC)).isoformat()
    return {
        "type": "track",
        "event": "Cart Viewed",
        "userId": "u1",
        "anonymousId": "a1",
        "messageId": f"m-{uuid.uuid4()}",
        "properties": {"items": items, "SKUCode": sku},
        "context": {"library": {"name": "analytics-python", "version": "2.3.4"}, **context},
        "receivedAt": received,
        "timestamp": received,
        "sentAt": received,
    }


def _segment_loads(world, n: int = 30, at: datetime | None = None) -> None:
    world.warehouse.load_segment(world.schema, [_cart(i + 1, at=at) for i in range(n)])


def _rudderstack_loads(world, events: list[dict[str, Any]]) -> None:
    world.warehouse.load_rudderstack(
        events,
        source={"id": "rs_src_app", "type": "HTTP"},
        destination={"id": DESTINATION, "type": "POSTGRES", "config": {"namespace": world.schema}},
    )


def _preflight(world, store: dict, **kwargs: Any) -> dict[str, Any]:
    step = ShapePreflightOperator(
        task_id="shape.check_shape", warehouse_conn_id=WAREHOUSE_CONN, namespace=world.schema, **kwargs
    )
    return step.execute(_context(step.task_id, store))


def _continuity(world, store: dict, cutover: datetime) -> ShapeContinuityOperator:
    return ShapeContinuityOperator(
        task_id="shape_checks.check_shape_continuity",
        warehouse_conn_id=WAREHOUSE_CONN,
        namespace=world.schema,
        destination_id=DESTINATION,
        cutover_at=cutover.isoformat(),
        released_at=cutover.isoformat(),
        preflight_task_id="shape.check_shape",
        min_rows=10,
    )


def test_a_schema_rudderstack_would_snake_case_is_refused_before_any_change(world):
    schema = "web_v2"
    step = ShapePreflightOperator(
        task_id="shape.check_shape", warehouse_conn_id=WAREHOUSE_CONN, namespace=schema
    )
    with pytest.raises(AirflowFailException) as failed:
        step.execute(_context(step.task_id, {}))
    message = str(failed.value)
    assert "web_v_2" in message and "web_v2" in message
    assert "nothing irreversible was done" in message


def test_the_preflight_records_the_before_snapshot_and_passes_a_clean_schema(world):
    _segment_loads(world)
    store: dict = {}
    result = _preflight(world, store)
    assert result["verdict"] == SAME_SHAPE
    before = result["facts"]["before"]
    assert before["cart_viewed"]["items"] == "bigint"
    assert before["cart_viewed"]["skucode"] == "text"
    assert store[("shape.check_shape", "needs_approval")] is False


def test_the_preflight_estimates_the_shadow_loads_extra_rows_and_asks_when_over_the_plans_budget(world):
    _segment_loads(world, n=30)  # 30 rows in the last 72 h
    store: dict = {}
    shadow = f"{world.schema}_rs_shadow"
    result = _preflight(world, store, shadow_schema=shadow, lookback_hours=72, shadow_overlap_hours=144)
    cost = result["facts"]["shadow_cost"]
    assert cost["by_table"]["cart_viewed"] == 60 and cost["rows"] >= 60  # twice the window: twice its rows
    assert cost["bytes"] > cost["rows"] * 10  # every row carries ids, timestamps and context as text
    assert result["verdict"] == SAME_SHAPE and store[("shape.check_shape", "needs_approval")] is False

    store = {}
    result = _preflight(
        world, store, shadow_schema=shadow, lookback_hours=72, shadow_overlap_hours=144, shadow_max_rows=50
    )
    (finding,) = [f for f in result["findings"] if f["kind"] == "shadow_budget"]
    assert finding["grade"] == "approve" and finding["table"] == shadow
    assert f"{cost['rows']:,} rows > max_rows 50" in finding["cause"]
    assert store[("shape.check_shape", "needs_approval")] is True
    assert "shape.shadow.max_rows" in store[("shape.check_shape", "approval_text")]


def test_a_clean_cutover_keeps_the_shape(world):
    cutover = datetime.now(UTC) - timedelta(seconds=5)
    _segment_loads(world, at=cutover - timedelta(minutes=5))
    store: dict = {}
    _preflight(world, store)
    # the new clients send the same properties, under the names Segment's columns have
    _rudderstack_loads(
        world,
        [_cart(i + 1, sku=None) | {"properties": {"items": i + 1, "skucode": "AB-1"}} for i in range(30)],
    )
    step = _continuity(world, store, cutover)
    result = step.execute(_context(step.task_id, store))
    assert result["verdict"] == SAME_SHAPE, result["findings"]
    table = result["facts"]["tables"]["cart_viewed"]
    assert table["before_rows"] == 30 and table["after_rows"] == 30
    assert table["columns"]["items"] == [1.0, 1.0]


def test_drift_after_the_cutover_stops_before_the_webhook_switch_off_naming_each_column(world):
    cutover = datetime.now(UTC) - timedelta(seconds=5)
    _segment_loads(world, at=cutover - timedelta(minutes=5))
    store: dict = {}
    _preflight(world, store)
    # the new app version sends items as text ("3 items") and SKUCode, which RudderStack names sku_code
    _rudderstack_loads(world, [_cart(f"{i + 1} items") for i in range(30)])
    step = _continuity(world, store, cutover)
    with pytest.raises(AirflowFailException) as failed:
        step.execute(_context(step.task_id, store))
    message = str(failed.value)
    assert "cart_viewed.items: discarded" in message  # NULL + rudder_discards: bigint <- string
    assert "cart_viewed.skucode: stopped filling" in message
    result = store[("shape_checks.check_shape_continuity", "shape")]
    kinds = {(f["table"], f["column"], f["kind"]) for f in result["findings"]}
    assert ("cart_viewed", "sku_code", "new_column") in kinds
    discards = result["facts"]["discards"]
    assert [(d["table_name"], d["column_name"]) for d in discards] == [("cart_viewed", "items")]
    assert discards[0]["examples"][0]["column_value"].endswith("items")


def test_the_report_shows_the_shape_verdict_first_then_each_check_and_the_columns_that_changed(
    world, tmp_path
):
    from segment_rudderstack.evidence.report_facts import ReportFacts
    from segment_rudderstack.evidence.report_render import write_report
    from segment_rudderstack.evidence.shape_report import section_shape  # noqa: F401 - registers the section
    from segment_rudderstack.shape.findings import SHAPE_KEY

    cutover = datetime.now(UTC) - timedelta(seconds=5)
    _segment_loads(world, at=cutover - timedelta(minutes=5))
    store: dict = {}
    _preflight(world, store, shadow_schema=f"{world.schema}_rs_shadow")
    _rudderstack_loads(world, [_cart(f"{i + 1} items") for i in range(30)])
    step = _continuity(world, store, cutover)
    with pytest.raises(AirflowFailException):
        step.execute(_context(step.task_id, store))
    facts = ReportFacts(plan_name="shape", run_id="manual__shape")
    facts.extra[SHAPE_KEY] = {task: value for (task, key), value in store.items() if key == SHAPE_KEY}
    paths = write_report(facts, tmp_path, "run")
    text = paths["markdown"].read_text()
    section = text[text.index("## Shape continuity") :]
    assert section.startswith("## Shape continuity\n\n**Verdict: shape differs.**")
    assert "**Before any change (preflight)** (`shape.check_shape`): **same shape**." in section
    assert (
        f"The shadow load into `{world.schema}_rs_shadow` adds about 20 rows and " in section
    )  # 2 x 30 in 72 h
    assert " bytes over 24 h (rows Segment loaded per hour" in section
    assert "| stop | `cart_viewed.items` | discarded |" in section
    assert "| `cart_viewed` | `skucode` | 100% | 0% |" in section  # fill before / after
    assert "<h2>Shape continuity</h2>" in paths["html"].read_text()


class _RolledBackMidComparison(CompareShadowOperator):
    """The comparison with the rollback's undo of the scratch schema (``drop_schema``, as ``undo_scratch_schema``
    runs it) happening between its reads of the first table and the next."""

    def _table(self, dialect, table, *args):
        from segment_rudderstack.dialects.scratch_schema import drop_schema

        found = super()._table(dialect, table, *args)
        drop_schema(dialect, self.shadow_schema)
        return found


def _compare(world, cls=CompareShadowOperator, cutover: datetime | None = None) -> CompareShadowOperator:
    return cls(
        task_id="shape_checks.compare_shadow",
        warehouse_conn_id=WAREHOUSE_CONN,
        namespace=world.schema,
        shadow_schema=f"{world.schema}_rs_shadow",
        shadow_destination_id="rs_dest_shadow",
        cutover_at=(cutover or datetime.now(UTC) - timedelta(hours=1)).isoformat(),
        min_rows=10,
    )


def test_a_scratch_schema_missing_or_removed_mid_comparison_is_never_read_as_the_same_shape(world):
    events = [_cart(i + 1) for i in range(20)]
    world.warehouse.load_segment(world.schema, events)
    store: dict = {}
    with pytest.raises(AirflowFailException, match="found no schema: nothing can be compared") as missing:
        _compare(world).execute(_context("shape_checks.compare_shadow", store))
    assert "shape.shadow.enabled: false" in str(missing.value)

    shadow = f"{world.schema}_rs_shadow"
    world.warehouse.load_rudderstack(  # the shadow loaded the same events into the scratch schema
        events,
        source={"id": "rs_src_app", "type": "HTTP"},
        destination={"id": "rs_dest_shadow", "type": "POSTGRES", "config": {"namespace": shadow}},
    )
    with pytest.raises(AirflowFailException, match="during the comparison, found no schema"):
        _compare(world, _RolledBackMidComparison).execute(_context("shape_checks.compare_shadow", store))
    assert ("shape_checks.compare_shadow", "shape") not in store  # no verdict was recorded
