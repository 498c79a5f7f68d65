"""The migration view in the real Airflow UI, in headless Chromium: after the migration run of this session
(test_local_deployment.py), the "Migrations" page (Browse menu, an Airflow 3 plugin page in an iframe) and
the plan's own page show the verdict, the runbook steps with their state and times, the cutover point, the
adoption chart, the change log, the last duplicate check and links to the runs.

Screenshots: test-artifacts/migration-view-in-airflow.png and test-artifacts/migration-view.png.
"""

from __future__ import annotations

import pytest

from scripts.airflow_local import free_port
from tests.deployment.browser import Chromium, find_chromium
from tests.deployment.metrics import ARTIFACTS

pytestmark = pytest.mark.slow

IFRAME_DOC = "(document.querySelector('iframe') && document.querySelector('iframe').contentDocument)"


@pytest.fixture
def chromium():
    executable = find_chromium()
    if executable is None:
        reason = "Chromium is not installed (/usr/bin/chromium); install it with: apt-get install -y chromium"
        print(f"SKIPPED browser check: {reason}")
        pytest.skip(reason)
    ARTIFACTS.mkdir(exist_ok=True)
    with Chromium(executable, free_port(), ARTIFACTS / "chromium-migration-view.log") as browser:
        yield browser


@pytest.fixture
def finished_run(api, target) -> str:
    """The session's successful run of the plan (started here when this file runs alone)."""
    runs = [r for r in api.dag_runs(target.manual_dag_id) if r["state"] == "success"]
    if not runs:
        api.unpause(target.manual_dag_id)
        response = api.trigger(target.manual_dag_id, target.conf)
        assert response.status_code == 200, response.text
        run_id = response.json()["dag_run_id"]
        assert api.wait_for_run(target.manual_dag_id, run_id, timeout=target.run_timeout).state == "success"
        return run_id
    return runs[-1]["dag_run_id"]


def test_migration_view_shows_the_plan_in_the_airflow_ui(chromium, deployment, api, target, finished_run):
    if not target.manual_dag_id.startswith("segment_to_rudderstack__"):
        pytest.skip(f"the {target.name!r} deployment target has no migration plan")
    dag_id = target.manual_dag_id
    base = deployment.base_url

    # The view's JSON twin, with the API token (bearer), says the same as the page will.
    summary = api.get_json(f"/segment-rudderstack/api/dags/{dag_id}")
    assert summary["run_id"] == finished_run
    assert summary["verdict"]["kind"] == "complete", summary["verdict"]
    assert summary["milestones"]["cutover"] and summary["milestones"]["warehouse_off"]
    assert {s["phase"] for s in summary["steps"]} >= {
        "preflight",
        "cutover",
        "final_load",
        "release",
        "adoption",
    }
    assert all(s["state"] in ("done", "skipped") for s in summary["steps"]), summary["steps"]

    chromium.navigate(f"{base}/plugin/segment-rudderstack-migrations")
    chromium.wait_for(
        "the simple auth manager's login form", "!!document.querySelector('input[name=password]')"
    )
    chromium.type_into("input[name=username]", deployment.spec.admin_user)
    chromium.type_into("input[name=password]", deployment.spec.admin_password)
    chromium.click_button("Sign in")
    in_airflow = chromium.wait_for(
        "the Migrations page inside the Airflow UI (plugin iframe)",
        f"{IFRAME_DOC} && {IFRAME_DOC}.querySelector(\"section[data-dag-id='{dag_id}'] #steps\") "
        f"&& {IFRAME_DOC}.body.innerText",
        timeout=60,
    )
    assert "COMPLETE:" in in_airflow
    chromium.screenshot(ARTIFACTS / "migration-view-in-airflow.png")

    chromium.navigate(f"{base}/segment-rudderstack/dags/{dag_id}")
    text = chromium.wait_for(
        "the plan's migration page", "document.querySelector('#steps') && document.body.innerText"
    )
    shot = chromium.screenshot(ARTIFACTS / "migration-view.png")
    assert shot.stat().st_size > 20_000
    assert "COMPLETE: Segment's warehouse off since" in text
    assert "Segment started sending to RudderStack at" in text
    for label in (
        "Preflight",
        "Cutover: Segment's webhook to RudderStack",
        "Segment's final load, warehouse off",
        "RudderStack's sync released, first upload",
        "Client adoption, Segment's webhook off",
    ):
        assert label in text, label
    assert "Last duplicate check" in text
    assert chromium.evaluate("document.querySelector('#duplicates').innerText").startswith("at 20")
    assert chromium.evaluate("document.querySelector('#adoption-chart').naturalWidth") > 300
    assert chromium.evaluate("document.querySelectorAll('#changes tbody tr').length") >= 5
    links = chromium.evaluate(
        "Array.from(document.querySelectorAll('#runs a')).map(a => a.getAttribute('href'))"
    )
    assert f"/dags/{dag_id}/runs/{finished_run}" in links
