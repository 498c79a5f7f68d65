"""Lanes (one per warehouse schema): whether this run migrates a lane, and the cutover point of several lanes.

A plan whose sources load into several schemas gets one lane per schema (``Plan.lanes``); the DAG repeats the
per-lane steps for each lane and keeps Segment's final load and its warehouse switch-off warehouse-wide.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowSkipException

from segment_rudderstack.instants import as_utc
from segment_rudderstack.rendered import as_list


def selected_source_ids(lane_sources: Mapping[str, Sequence[str]], params: Mapping[str, Any]) -> list[str]:
    """The sources a run migrates: those selected in the trigger form (``params.sources``) whose lane is
    selected too (``params.lanes``; all lanes when the form has no such field)."""
    lanes = as_list(params.get("lanes"))
    in_lanes = {s for lane, ids in lane_sources.items() if lanes is None or lane in lanes for s in ids}
    sources = as_list(params.get("sources"))
    return [s for s in (sources if sources is not None else in_lanes) if s in in_lanes]


class LaneSelectedOperator(BaseOperator):
    """First task of a lane: skips the lane (and so every task of it) when this run migrates none of its
    sources, so nothing is created or changed for a lane that was not selected.

    :param lane: the lane's name (its schema in lower case).
    :param schema: the warehouse schema of the lane.
    :param source_ids: the lane's Segment sources.
    :param selected_source_ids: the sources this run migrates (templated; rendered from the trigger form).
    """

    template_fields = ("selected_source_ids",)
    ui_color = "#eeeeee"

    def __init__(
        self,
        *,
        lane: str,
        schema: str,
        source_ids: Sequence[str],
        selected_source_ids: Sequence[str] | str | None,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.lane = lane
        self.schema = schema
        self.source_ids = list(source_ids)
        self.selected_source_ids = selected_source_ids

    def execute(self, context: Any) -> dict[str, Any]:
        selected = as_list(self.selected_source_ids)
        mine = [s for s in self.source_ids if selected is None or s in selected]
        if not mine:
            message = (
                f"lane {self.lane!r} (schema {self.schema!r}) is not migrated in this run: none of its sources "
                f"{self.source_ids} is selected; its tasks are skipped"
            )
            self.log.info(message)
            raise AirflowSkipException(message)
        self.log.info("lane %r (schema %r) migrates sources %s", self.lane, self.schema, mine)
        return {"lane": self.lane, "schema": self.schema, "sources": mine}


class CutoverPointOperator(BaseOperator):
    """The warehouse-wide cutover point of several lanes: the latest instant at which a lane's webhooks were
    all enabled. Segment's final load must start after it, so that it carries every event that reached
    Segment before any lane's webhook took over. Lanes skipped in this run are left out.

    :param cutovers: each lane's cutover point (ISO instants; ``None`` for a skipped lane).
    """

    template_fields = ("cutovers",)
    ui_color = "#eeeeee"

    def __init__(self, *, cutovers: Sequence[Any], **kwargs: Any):
        super().__init__(**kwargs)
        self.cutovers = cutovers

    def execute(self, context: Any) -> str:
        instants = [as_utc(c) for c in self.cutovers or [] if c not in (None, "", "None")]
        if not instants:
            raise ValueError(
                "no lane reported a cutover point: expected each migrated lane's ensure_webhooks task to "
                "return cutover_at; check those tasks' logs"
            )
        latest = max(instants)
        self.log.info("cutover point of %d lane(s): %s", len(instants), latest.isoformat())
        return latest.isoformat()
