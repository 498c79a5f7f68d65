"""The report's adoption chart (UTC, with the cutover, warehouse-off and webhook-off markers, the threshold
and the window); matplotlib is imported only when a chart is drawn."""

from __future__ import annotations

import pathlib
from datetime import UTC, timedelta
from typing import Any

from segment_rudderstack.evidence.report import adoption_points, duration, milestones
from segment_rudderstack.evidence.report_facts import ReportFacts


def adoption_chart(facts: ReportFacts, path: pathlib.Path) -> bool:
    """PNG of the adoption share over time, in UTC, with the milestones, the threshold and the window."""
    fig = adoption_figure(facts)
    if fig is None:
        return False
    import matplotlib.pyplot as plt

    fig.savefig(path)
    plt.close(fig)
    return True


def adoption_figure(facts: ReportFacts) -> Any:
    points = adoption_points(facts)
    if not points:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10, 3.8), dpi=100)
    times = [p[0] for p in points]
    ax.plot(times, [100 * p[1] for p in points], marker="o", label="share through Segment's webhook")
    if facts.threshold is not None:
        ax.axhline(
            100 * facts.threshold,
            color="tab:red",
            linestyle="-",
            linewidth=1,
            label=f"threshold {facts.threshold:.2%}",
        )
    if facts.window_seconds:
        end = times[-1]
        ax.axvspan(
            end - timedelta(seconds=float(facts.window_seconds)),
            end,
            color="tab:gray",
            alpha=0.12,
            label=f"window of the last check ({duration(facts.window_seconds)})",
        )
    marks = milestones(facts)
    for key, label, colour in (
        ("cutover", "cutover", "tab:green"),
        ("warehouse_off", "Segment warehouse off", "tab:purple"),
        ("webhook_off", "Segment webhook off", "tab:orange"),
    ):
        if marks[key]:
            ax.axvline(marks[key], color=colour, linestyle="--", linewidth=1, label=label)
    ax.set_ylabel("% of events")
    day = times[0].astimezone(UTC).strftime("%Y-%m-%d")
    ax.set_xlabel(f"time (UTC), {day}")
    ax.set_title(f"Client adoption, plan {facts.plan_name}: events still arriving through Segment")
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M:%S", tz=UTC))
    ax.set_ylim(bottom=0)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small")
    fig.autofmt_xdate()
    fig.tight_layout()
    return fig
