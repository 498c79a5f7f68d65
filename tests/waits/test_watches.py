"""Watches are typed values: built by one constructor, serialized for the trigger and rebuilt equal, frozen,
and they refuse arguments they do not have (a trigger from another library version fails loudly)."""

import dataclasses

import pytest

from segment_rudderstack.waits.watches import AdoptionWatch, SegmentLoadWatch, SyncGateWatch, load_watch


def test_the_final_load_gate_is_built_once_and_normalises_templated_arguments():
    gate = SyncGateWatch.final_load(
        segment_conn_id="segment_default",
        warehouse_id="wh",
        started_after="2026-11-29T07:00:00",
        source_ids="['src_a', 'src_b']",
    )
    assert gate.started_after == "2026-11-29T07:00:00+00:00"  # a naive instant is UTC
    assert gate.source_ids == ["src_a", "src_b"]  # a rendered list, parsed (never split into characters)
    load = SegmentLoadWatch.final_load(
        segment_conn_id="segment_default",
        warehouse_id="wh",
        started_after="2026-11-29T07:00:00",
        source_ids="['src_a', 'src_b']",
    )
    assert dataclasses.asdict(load) == {**dataclasses.asdict(gate)}  # the same gate, two decisions


def test_a_watch_survives_the_trip_to_the_triggerer_and_back():
    watch = AdoptionWatch(
        warehouse_conn_id="wh",
        namespace="app",
        webhook_source_id="rs_src",
        window_seconds=60,
        threshold=0.01,
        consecutive_checks=2,
        library_names=["analytics-python"],
    )
    spec = watch.spec()
    assert spec["kwargs"]["consecutive_checks"] == 2 and "_cache" not in spec["kwargs"]
    assert load_watch(spec) == watch


def test_watches_are_frozen_and_refuse_unknown_arguments():
    watch = SegmentLoadWatch(
        segment_conn_id="s", warehouse_id="wh", started_after="2026-11-29T07:00:00+00:00"
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        watch.warehouse_id = "other"  # type: ignore[misc]
    with pytest.raises(TypeError, match="consecutive"):
        load_watch(
            {
                "class": "segment_rudderstack.waits.watches.AdoptionWatch",
                "kwargs": {
                    "warehouse_conn_id": "wh",
                    "namespace": "app",
                    "webhook_source_id": "x",
                    "window_seconds": 60,
                    "threshold": 0.01,
                    "consecutive": 2,
                },
            }
        )
    with pytest.raises(ValueError, match="outside segment_rudderstack"):
        load_watch({"class": "os.system", "kwargs": {}})
