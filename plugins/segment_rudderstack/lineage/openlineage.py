"""OpenLineage facets on the steps that switch a table's writer: the release of RudderStack's sync (RudderStack
starts loading the lane's tables) and the switch-off of Segment's warehouse (Segment stops loading them).

Optional: the facets exist only where ``apache-airflow-providers-openlineage`` is installed and configured (the
extra ``openlineage`` of this provider package pins it). Its listener calls
:meth:`WriterChangeLineage.get_openlineage_facets_on_complete` after the task succeeded (provider module
``extractors/base.py``, ``DefaultExtractor``); without the provider nothing here is imported and nothing is read.

Each output dataset is a table of a switched lane, named as the Postgres and Snowflake providers name table
datasets (``convert_asset_to_openlineage``: namespace ``postgres://<host>:<port>`` or ``snowflake://<account>``,
name ``<database>.<schema>.<table>``), with the dataset facet ``segmentToRudderstackWriterChange``:
``previousWriter`` (``segment``), ``writer`` (``rudderstack``), ``cutoverAt``, ``step``, ``plan``, ``lane``,
``segmentWarehouseId``, ``rudderstackDestinationId``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

FACET_NAME = "segmentToRudderstackWriterChange"
#: The facet's schema, documented in docs/downstream.md (a URN: the facet has no public schema document).
FACET_SCHEMA_URL = "urn:airflow-provider-segment-rudderstack:facets:WriterChangeDatasetFacet:1-0-0"
RELEASE = "release_rudderstack_sync"
SEGMENT_SWITCH_OFF = "switch_off_segment_warehouse"


def _facet_class() -> type:
    """The facet's attrs class, built on first use (openlineage-python is an optional dependency)."""
    global _FACET
    if _FACET is None:
        import attrs
        from openlineage.client.facet_v2 import DatasetFacet

        @attrs.define
        class WriterChangeDatasetFacet(DatasetFacet):
            previousWriter: str  # noqa: N815 - OpenLineage's field names are camelCase
            writer: str
            step: str
            cutoverAt: str | None  # noqa: N815
            plan: str | None = None
            lane: str | None = None
            segmentWarehouseId: str | None = None  # noqa: N815
            rudderstackDestinationId: str | None = None  # noqa: N815

            @staticmethod
            def _get_schema() -> str:
                return FACET_SCHEMA_URL

        _FACET = WriterChangeDatasetFacet
    return _FACET


_FACET: type | None = None


def _text(value: Any) -> str | None:
    if value in (None, "", "None"):
        return None
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def writer_change_datasets(change: Mapping[str, Any], tables_of: Any, address: Any) -> list[Any]:
    """The output datasets of a writer change: one per table of each lane, with the facet.

    :param change: the rendered ``writer_change`` (``step``, ``plan``, ``cutover_at``, ``segment_warehouse_id``,
        ``lanes``: ``[{lane, schema, destination_id}]``).
    :param tables_of: schema -> its migrated tables.
    :param address: the warehouse's :class:`~segment_rudderstack.lineage.assets.WarehouseAddress`.
    """
    from openlineage.client.event_v2 import Dataset

    facet = _facet_class()
    datasets = []
    for lane in change.get("lanes") or []:
        for table in tables_of(lane["schema"]):
            datasets.append(
                Dataset(
                    namespace=address.namespace,
                    name=".".join(address.table_parts(lane["schema"], table)),
                    facets={
                        FACET_NAME: facet(
                            previousWriter="segment",
                            writer="rudderstack",
                            step=str(change.get("step")),
                            cutoverAt=_text(change.get("cutover_at")),
                            plan=change.get("plan"),
                            lane=lane.get("lane"),
                            segmentWarehouseId=change.get("segment_warehouse_id"),
                            rudderstackDestinationId=_text(lane.get("destination_id")),
                        )
                    },
                )
            )
    return datasets


class WriterChangeLineage:
    """Mixin of the steps that switch a table's writer from Segment to RudderStack: their OpenLineage lineage
    (output datasets = the lanes' tables, each with the writer-change facet). Concrete classes add
    ``"writer_change"`` to their ``template_fields``.

    :param writer_change: (templated) ``step``, ``plan``, ``warehouse_conn_id``, ``cutover_at``,
        ``segment_warehouse_id`` and ``lanes`` (``[{lane, schema, destination_id}]``); None: no lineage.
    """

    def __init__(self, *, writer_change: Mapping[str, Any] | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        self.writer_change = dict(writer_change) if writer_change else None

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """Called by the OpenLineage provider's listener once the task succeeded; None in a dry run, without
        wiring, or without the provider."""
        if not self.writer_change or getattr(self, "is_dry_run", False):
            return None
        try:
            from airflow.providers.openlineage.extractors import OperatorLineage
        except ImportError:  # the provider is optional
            return None
        from airflow.sdk import BaseHook

        from segment_rudderstack.dialects import dialect_for_conn_id
        from segment_rudderstack.lineage.assets import migrated_tables, warehouse_address

        conn_id = self.writer_change["warehouse_conn_id"]
        dialect = dialect_for_conn_id(conn_id)
        outputs = writer_change_datasets(
            self.writer_change,
            lambda schema: migrated_tables(dialect.list_tables(schema)),
            warehouse_address(BaseHook.get_connection(conn_id)),
        )
        return OperatorLineage(outputs=outputs)
