"""The migration view (Airflow UI plugin page): what it shows for a plan, and that it needs a login.
The page in a real Airflow with a real run is checked in headless Chromium by
tests/deployment/test_migration_view_browser.py."""

from __future__ import annotations

from types import SimpleNamespace

from fastapi.testclient import TestClient

from segment_rudderstack.ui import view as migration_view
from tests.evidence.test_report import T0, facts


def test_the_view_needs_an_airflow_login():
    client = TestClient(migration_view.create_app())
    for path in ("/", "/dags/segment_to_rudderstack__sandbox", "/api/dags/segment_to_rudderstack__sandbox"):
        response = client.get(path)
        assert response.status_code == 401, (path, response.text)


def test_a_plan_shows_steps_cutover_adoption_changes_duplicates_and_runs():
    f = facts(
        states={
            "client_adoption.wait_client_adoption": "deferred",
            "client_adoption.disable_segment_webhook": None,
        }
    )
    f.results["webhook_disabled"] = None
    f.tasks["client_adoption.wait_client_adoption"].start = T0
    run = SimpleNamespace(run_id="manual__2026-11-29", state="running", start_date=T0)
    extra = {
        "runs": [run],
        "dag_model": SimpleNamespace(is_paused=True),
        "adoption_live": True,
        "changes_all": f.changes,
    }
    page = migration_view.render_plan("segment_to_rudderstack__prod", f, extra)
    assert "WAITING for clients to move to the new app version" in page
    assert "(paused: scheduled runs start only once it is unpaused)" in page
    assert "Segment started sending to RudderStack at <strong>2026-11-29 06:02:00 UTC</strong>" in page
    assert (
        "<td>Client adoption, Segment&#x27;s webhook off</td><td class='state-running'>running</td>" in page
    )
    assert "id='adoption-chart'" in page and "data:image/png;base64," in page
    assert "(live: the sensor is still checking); threshold 1.00%" in page
    assert "found 3 (tracks 3), removed 3 (tracks 3)" in page
    assert "rudderstack.destination <code>dst_9</code> exists" in page
    assert "href='/dags/segment_to_rudderstack__prod/runs/manual__2026-11-29' target='_top'" in page


def test_the_plugin_registers_the_view_in_the_ui():
    import segment_rudderstack_plugin as plugin

    views = {v["destination"]: v for v in plugin.SegmentRudderStackPlugin.external_views}
    assert views["nav"]["href"] == "/segment-rudderstack/" and views["nav"]["category"] == "browse"
    assert views["dag"]["href"] == "/segment-rudderstack/dags/{DAG_ID}"
    [app] = plugin.SegmentRudderStackPlugin.fastapi_apps
    assert app["url_prefix"] == "/segment-rudderstack"
