"""Runs ConditionTriggers for a while in one asyncio loop, as a triggerer would (used in-process and as a
second process by test_sync_list_budget.py):

    python -m tests.library.budget_takers <seconds> '<json list of watch specs>'

prints ``ready`` once imported, then ``{"checks": n, "errors": [...]}`` on its last line.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

CONN_ID = "segment_budget"
POKE_INTERVAL_S = 0.2


def run_triggers(specs: list[dict[str, Any]], seconds: float) -> dict[str, Any]:
    from segment_rudderstack.triggers.condition import ConditionTrigger

    async def main() -> dict[str, Any]:
        deadline = time.time() + seconds
        triggers = [
            ConditionTrigger(
                watch={"class": s["class"], "kwargs": s["kwargs"]},
                poke_interval=POKE_INTERVAL_S,
                deadline=deadline,
            )
            for s in specs
        ]

        async def first_event(trigger):
            async for event in trigger.run():
                return event.payload

        events = await asyncio.gather(*(first_event(t) for t in triggers))
        return {
            "checks": sum(e.get("checks", 0) for e in events),
            "errors": [e for e in events if e["status"] != "timeout"],
        }

    return asyncio.run(main())


if __name__ == "__main__":
    import segment_rudderstack.triggers.condition  # noqa: F401 (imports done before saying ready)
    import segment_rudderstack.watches  # noqa: F401

    print("ready", flush=True)
    print(json.dumps(run_triggers(json.loads(sys.argv[2]), float(sys.argv[1]))))
