"""The report's per-lane table: each lane's (schema's) figures side by side, one column per lane."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from segment_rudderstack.evidence.report import Markdown, Section, register_section
from segment_rudderstack.evidence.report_facts import ReportFacts
from segment_rudderstack.instants import as_utc

LANES_KEY = "lanes"  # ReportFacts.extra[LANES_KEY]: {lane: {step: result}}


def _get(result: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(result, Mapping):
            return None
        result = result.get(key)
    return result


def _share(adoption: Any) -> str:
    share = _get(adoption, "share")
    return "-" if share is None else f"{float(share):.2%}"


def _count(value: Any) -> str:
    if isinstance(value, (list, tuple, dict)):
        return str(len(value))
    return "-" if value is None else str(value)


# (row label, how to read it from the lane's step results)
ROWS: tuple[tuple[str, Callable[[Mapping[str, Any]], str]], ...] = (
    ("RudderStack destination", lambda r: _count(r.get("destination"))),
    ("Segment-type source", lambda r: _count(r.get("segment_source"))),
    ("webhooks enabled", lambda r: _count(_get(r.get("webhooks"), "destinations"))),
    ("cutover point", lambda r: _count(_get(r.get("webhooks"), "cutover_at"))),
    ("sync released at", lambda r: _count(_get(r.get("release"), "released_at"))),
    ("upload seen", lambda r: _count(_get(r.get("upload"), "reason"))),
    ("duplicate ids", lambda r: _count(_get(r.get("duplicates"), "duplicates"))),
    ("final adoption share", lambda r: _share(r.get("adoption"))),
    ("webhooks disabled", lambda r: _count(_get(r.get("webhook_disabled"), "disabled"))),
)


def lane_table(
    results: Mapping[str, Mapping[str, Any]], schemas: Mapping[str, str] | None = None
) -> list[str]:
    """Markdown lines: a table with one column per lane and one row per figure. ``results`` maps a lane's
    name to its step results (``destination``, ``webhooks``, ``release``, ``upload``, ``duplicates``,
    ``adoption``, ``webhook_disabled``), as the tasks returned them (``None`` for a skipped step)."""
    if not results:
        return []
    names = list(results)
    header = [f"{n} (`{schemas[n]}`)" if schemas and n in schemas else n for n in names]
    lines = [
        "| | " + " | ".join(header) + " |",
        "|---|" + "---|" * len(names),
    ]
    for label, read in ROWS:
        lines.append(
            f"| {label} | " + " | ".join(read(results[n] or {}).replace("|", "/") for n in names) + " |"
        )
    return lines


def _latest(values: list[Any]) -> str | None:
    moments = []
    for value in values:
        try:
            moment = as_utc(str(value))
        except ValueError:
            continue
        moments.append((moment, str(value)))
    return max(moments)[1] if moments else None


def run_wide_results(lanes: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The run-wide steps the report's verdict and timeline read (``webhooks``, ``release``,
    ``webhook_disabled``), made from the lanes': the latest lane's cutover and release, and the webhooks
    switched off once every lane's were (all of them listed)."""
    results = [lane or {} for lane in lanes.values()]
    step = {
        name: [r.get(name) for r in results if isinstance(r.get(name), Mapping)]
        for name in ("webhooks", "release", "webhook_disabled")
    }
    combined: dict[str, Any] = {}
    if step["webhooks"]:
        combined["webhooks"] = {"cutover_at": _latest([w.get("cutover_at") for w in step["webhooks"]])}
    if step["release"]:
        combined["release"] = {"released_at": _latest([r.get("released_at") for r in step["release"]])}
    disabled = [d for d in step["webhook_disabled"] if d.get("disabled")]
    if disabled:
        combined["webhook_disabled"] = {
            "disabled": [
                i for d in disabled for i in (d["disabled"] if isinstance(d["disabled"], list) else [])
            ],
            "at": _latest([d.get("at") for d in disabled]),
        }
    return combined


def section_lanes(facts: ReportFacts) -> Section | None:
    """The report's section for a plan of several schemas (after the key figures)."""
    lanes = facts.extra.get(LANES_KEY)
    if not lanes:
        return None
    return Section("Lanes side by side", [Markdown(lane_table(lanes))], key=LANES_KEY)


register_section(LANES_KEY, section_lanes, after="key_figures")
