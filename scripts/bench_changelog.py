"""Benchmark: the cost of recording one change in a plan's change log, at 10 and at 5,000 entries.

The change log (``segment_rudderstack.safety.changelog``) keeps one Airflow Variable per entry and a small head
Variable (next sequence number, latest entry per object, open intents), so a record writes a constant amount
whatever the log's length. This script measures it on the real Variable store (Airflow's metadata database,
the same table the Task SDK's ``Variable`` reaches through the API server), and for comparison the earlier
layout (one Variable holding the whole list, rewritten on every record).

    .venv/bin/python scripts/bench_changelog.py [--small 10] [--large 5000] [--records 30]

It prints the median time of one record at each size and the ratio large/small (goal: about 1).
Timings are from one run on one machine: compare the ratios, not the absolute numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import statistics
import sys
import time
import uuid
from dataclasses import asdict

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "plugins"), str(ROOT / "include")]
os.environ.setdefault("AIRFLOW_HOME", str(ROOT / ".airflow"))


def seed(key: str, count: int) -> None:
    """``count`` entries written in one transaction (what ``count`` records would have left)."""
    from airflow.models.variable import Variable
    from airflow.utils.session import create_session

    from segment_rudderstack.safety.changelog import Change, ChangeLog

    log = ChangeLog(key)
    latest = {}
    with create_session() as session:
        for seq in range(1, count + 1):
            change = Change(
                target="segment.destination",
                target_id=f"d{seq % 7}",
                field="enabled",
                before=False,
                after=True,
                task_id="seed",
                run_id="seed",
                seq=seq,
            )
            session.add(Variable(key=log._entry_key(seq), val=json.dumps(asdict(change))))
            latest[change.key] = seq
    Variable.set(key, {"format": 2, "next": count + 1, "latest": latest, "open": {}}, serialize_json=True)


def seed_list(key: str, count: int) -> None:
    from airflow.models.variable import Variable

    from segment_rudderstack.safety.changelog import Change

    Variable.set(
        key,
        [asdict(Change("segment.destination", "d", "enabled", False, True)) for _ in range(count)],
        serialize_json=True,
    )


def record_list(key: str, change) -> None:
    """The earlier layout: read the whole list, append, write it back."""
    from airflow.models.variable import Variable

    entries = Variable.get(key, default_var=[], deserialize_json=True)
    entries.append(asdict(change))
    Variable.set(key, entries, serialize_json=True)


def cleanup() -> None:
    from airflow.models.variable import Variable
    from airflow.utils.session import create_session

    with create_session() as session:
        session.query(Variable).filter(Variable.key.like("bench_changelog_%")).delete(
            synchronize_session=False
        )


def time_records(record, records: int) -> float:
    from segment_rudderstack.safety.changelog import Change

    samples = []
    for n in range(records):
        change = Change(
            target="rudderstack.destination",
            target_id=f"x{n % 5}",
            field="config.manualSync",
            before=True,
            after=False,
            task_id="bench",
            run_id="bench",
        )
        began = time.perf_counter()
        record(change)
        samples.append(time.perf_counter() - began)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=10)
    parser.add_argument("--large", type=int, default=5000)
    parser.add_argument("--records", type=int, default=30)
    args = parser.parse_args()
    from segment_rudderstack.safety.changelog import ChangeLog

    results = {}
    for layout in ("per-entry (now)", "one list (before)"):
        for size in (args.small, args.large):
            key = f"bench_changelog_{uuid.uuid4().hex[:8]}"
            if layout.startswith("per-entry"):
                seed(key, size)
                log = ChangeLog(key)
                assert len(log.latest()) <= 7 + 5
                results[(layout, size)] = time_records(log.record, args.records)
            else:
                seed_list(key, size)
                results[(layout, size)] = time_records(lambda c, k=key: record_list(k, c), args.records)
    cleanup()
    print(f"change-log record, median of {args.records} records (Airflow Variables in the metadata DB)")
    print(f"{'layout':<20} {'at ' + str(args.small):>10} {'at ' + str(args.large):>10} {'ratio':>7}")
    for layout in ("per-entry (now)", "one list (before)"):
        small, large = results[(layout, args.small)], results[(layout, args.large)]
        print(f"{layout:<20} {small * 1000:>8.1f}ms {large * 1000:>8.1f}ms {large / small:>6.2f}x")


if __name__ == "__main__":
    main()
