"""Measured values of the deployment tests (wall time, peak memory, what was deferred), shared by the fixture
and the tests through this one module, printed in the terminal summary and saved as JSON."""

from __future__ import annotations

import json

from tests.deployment.targets import ROOT

ARTIFACTS = ROOT / "test-artifacts"
METRICS: dict[str, object] = {}


def record(key: str, value: object) -> None:
    METRICS[key] = value


def save() -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "deployment-metrics.json").write_text(json.dumps(METRICS, indent=2) + "\n")
