"""Airflow's plugin manager loads only the project's small plugin module from plugins/, so a process that
loaded plugins can still import Segment's and RudderStack's SDKs (`segment.analytics`, `rudderstack.analytics`);
before, plugins/segment_rudderstack/operators/segment.py became the top-level module `segment`."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
AIRFLOW = pathlib.Path(sys.executable).with_name("airflow")

LOAD_PLUGINS_THEN_IMPORT_SDKS = """
import json, sys
from airflow import plugins_manager
plugins_manager.ensure_plugins_loaded()
loaded = [m for m in ("segment", "rudderstack", "base", "hooks", "segment_rudderstack_plugin") if m in sys.modules]
import segment.analytics, rudderstack.analytics
print(json.dumps({
    # plugins of the plugins folder (installed packages, e.g. the OpenLineage provider, bring their own)
    "plugins": [
        p.name for p in plugins_manager._get_plugins()[0] if type(p.source).__name__ == "PluginsDirectorySource"
    ],
    "import_errors": plugins_manager.get_import_errors(),
    "modules_before_sdk_import": loaded,
    "segment_sdk": segment.analytics.__file__,
    "rudderstack_sdk": rudderstack.analytics.__file__,
}))
"""


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        AIRFLOW__CORE__PLUGINS_FOLDER=str(ROOT / "plugins"),
        AIRFLOW__CORE__DAGS_FOLDER=str(ROOT / "dags"),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        PYTHONPATH=os.pathsep.join([str(ROOT / "plugins"), str(ROOT / "include")]),
    )
    return env


def test_a_process_that_loaded_the_plugins_imports_both_sdks():
    done = subprocess.run(
        [sys.executable, "-c", LOAD_PLUGINS_THEN_IMPORT_SDKS],
        env=_env(),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["plugins"] == ["segment_rudderstack"]
    assert result["import_errors"] == {}
    assert result["modules_before_sdk_import"] == ["segment_rudderstack_plugin"]  # no `segment`, `base`, ...
    assert "site-packages/segment/analytics" in result["segment_sdk"]
    assert "site-packages/rudderstack/analytics" in result["rudderstack_sdk"]


def test_airflow_plugins_lists_only_the_plugin_module():
    done = subprocess.run(
        [str(AIRFLOW), "plugins", "-o", "json"],
        env=_env(),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    listed = json.loads(done.stdout[done.stdout.index("[") :])
    from_folder = [(p["name"], p["source"]) for p in listed if p["source"].startswith("$PLUGINS_FOLDER")]
    assert from_folder == [("segment_rudderstack", "$PLUGINS_FOLDER/segment_rudderstack_plugin.py")]
    # anything else comes from an installed package's entry point (the optional OpenLineage provider's plugin)
    assert all(
        "EntryPoint(" in source
        for name, source in [(p["name"], p["source"]) for p in listed]
        if (name, source) not in from_folder
    ), listed
