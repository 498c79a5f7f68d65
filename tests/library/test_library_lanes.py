"""Lane-aware library pieces against the emulators: the preflight says when a source's slug (Segment's default
schema name) differs from the schema the plan gives it, without failing (the Public API shows no schema name)."""

from __future__ import annotations

from tests.library.world import (
    WEB,
    context,
    preflight_operator,
)


def test_preflight_notes_a_schema_that_differs_from_the_sources_slug(world):
    world.track(count=2)
    world.load()
    preflight = preflight_operator(world, source_ids=[WEB], destination_name="d")
    mark = world.mark()
    summary = preflight.execute(context())  # passes: a schema renamed in Segment's settings is legitimate
    (note,) = summary["schema_notes"]
    assert f"schema {world.schema!r}" in note and "slug 'web_app'" in note
    assert "does not show a schema name" in note
    assert world.changes(mark) == []
    preflight.namespace = "web_app"  # the slug itself: nothing to say (but that schema does not exist here)
    notes: dict = {}
    preflight._check_source_schemas(notes)
    assert notes["schema_notes"] == []
