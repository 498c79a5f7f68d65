"""The Airflow UI, in a real headless Chromium: log in with the simple auth manager's form, open the DAG's
trigger form, see every param with its description, and trigger a run from the form itself.

Needs Debian's Chromium (`apt-get install -y chromium`); without it this test is skipped with that reason.
The screenshot is saved to test-artifacts/trigger-form.png.
"""

from __future__ import annotations

import json
import time

import pytest

from scripts.airflow_local import free_port
from tests.deployment.browser import Chromium, find_chromium
from tests.deployment.metrics import ARTIFACTS

pytestmark = pytest.mark.slow

# The trigger modal (other [role=dialog] elements, e.g. popovers, may exist in the page).
TRIGGER_DIALOG = (
    "Array.from(document.querySelectorAll('[role=dialog]'))"
    ".find(d => d.innerText.includes('Trigger Dag') && d.innerText.includes('Run Parameters'))"
)


@pytest.fixture
def chromium():
    executable = find_chromium()
    if executable is None:
        reason = "Chromium is not installed (/usr/bin/chromium); install it with: apt-get install -y chromium"
        print(f"SKIPPED browser check: {reason}")
        pytest.skip(reason)
    ARTIFACTS.mkdir(exist_ok=True)
    with Chromium(executable, free_port(), ARTIFACTS / "chromium.log") as browser:
        yield browser


def test_trigger_form_renders_params_with_descriptions_and_triggers(chromium, deployment, api, target):
    dag_url = f"{deployment.base_url}/dags/{target.manual_dag_id}"
    chromium.navigate(dag_url)
    chromium.wait_for(
        "the simple auth manager's login form", "!!document.querySelector('input[name=password]')"
    )
    chromium.type_into("input[name=username]", deployment.spec.admin_user)
    chromium.type_into("input[name=password]", deployment.spec.admin_password)
    chromium.click_button("Sign in")
    chromium.wait_for(
        f"the page of DAG {target.manual_dag_id} after login",
        f"location.pathname === '/dags/{target.manual_dag_id}' && "
        "Array.from(document.querySelectorAll('button')).some(b => b.getAttribute('aria-label') === 'Trigger Dag')",
    )

    chromium.click_button("Trigger Dag")
    descriptions = list(target.described_params.values())
    form_text = chromium.wait_for(
        "the trigger form to show every param description",
        f"""(() => {{
            const dialog = {TRIGGER_DIALOG};
            if (!dialog) return null;
            const text = dialog.innerText;
            return {json.dumps(descriptions)}.every(d => text.includes(d)) ? text : null;
        }})()""",
    )
    shot = chromium.screenshot(ARTIFACTS / "trigger-form.png")
    assert shot.stat().st_size > 10_000, "the screenshot should show the rendered form"
    for param, description in target.described_params.items():
        assert description in form_text, f"param {param}: description {description!r} not rendered"

    # Submit the form as a user would; the run carries the form's default params.
    before = {run["dag_run_id"] for run in api.dag_runs(target.manual_dag_id)}
    chromium.click_button("Trigger", within=TRIGGER_DIALOG)
    deadline = time.monotonic() + 30
    created: list[dict] = []
    while time.monotonic() < deadline and not created:
        created = [run for run in api.dag_runs(target.manual_dag_id) if run["dag_run_id"] not in before]
        time.sleep(0.5)
    assert len(created) == 1, "clicking Trigger in the form should create exactly one run"
    assert set(target.described_params) <= set(created[0]["conf"]), created[0]["conf"]
    assert created[0]["triggering_user_name"] == deployment.spec.admin_user
