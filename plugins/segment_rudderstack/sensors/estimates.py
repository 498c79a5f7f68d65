"""The ETA of each waiting sensor, made when it defers (:mod:`segment_rudderstack.evidence.eta`): kept as the task's
XCom ``eta`` (the migration view, the report and ``make demo`` show it), and, when the plan notifies, an overdue
notice the trigger sends once if the wait outlasts the estimate's upper end (plus ``notify.overdue_grace_minutes``).

Which estimate a sensor makes depends on what it waits for: Segment's next load (final load, sync gate; the drain
needs ``consecutive_loads`` of them), RudderStack's next upload slot (the release recorded it), or the adoption
trend (the sensor's checks so far).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from segment_rudderstack.evidence import eta as estimates
from segment_rudderstack.evidence.report_facts import phase_of
from segment_rudderstack.notify.channels import deliver, wants
from segment_rudderstack.notify.messages import overdue, phase_waiting
from segment_rudderstack.notify.notifier import view_link

log = logging.getLogger(__name__)
ETA_KEY = "eta"


def _reports(observation: Any) -> list[Any]:
    return (
        list(getattr(observation, "reports", observation) or []) if not isinstance(observation, dict) else []
    )


def _schedule(sensor: Any) -> dict[str, Any] | None:
    """Segment's advanced sync schedule (one call, at defer time); ``None`` where it is off or not readable."""
    try:
        from segment_rudderstack.hooks.segment import SegmentHook

        return SegmentHook(segment_conn_id=sensor.segment_conn_id).get_advanced_sync_schedule(
            sensor.warehouse_id
        )
    except Exception as exc:  # a plan without it, a 403/404: the observed cadence instead
        log.info(
            "Segment's advanced sync schedule not read (%s): the estimate uses the observed cadence", exc
        )
        return None


def _upload(sensor: Any, context: Any, now: datetime) -> estimates.Eta:
    ti = context.get("ti")
    release = next((t for t in sorted(sensor.upstream_task_ids) if t.endswith("release_sync")), None)
    result = ti.xcom_pull(task_ids=release) if (ti is not None and release) else None
    result = result if isinstance(result, dict) else {}
    if result.get("upload_triggered"):
        return estimates.Eta(
            "RudderStack's triggered upload", now, "an upload was triggered at the release: it starts at once"
        )
    return estimates.upload_slot(result.get("next_upload_slot"))


def estimate_for(sensor: Any, context: Any, now: datetime | None = None) -> estimates.Eta | None:
    """The sensor's ETA from its last observation, or ``None`` for a sensor that makes none."""
    now = now or datetime.now(UTC)
    kind = type(sensor).__name__
    observation = getattr(sensor, "_last_observation", None)
    if kind in ("SegmentWarehouseLoadSensor", "RudderStackSyncGateSensor"):
        return estimates.segment_next_load(_reports(observation), now, _schedule(sensor))
    if kind == "SegmentSourceDrainedSensor":
        return estimates.segment_next_load(_reports(observation), now, loads=int(sensor.consecutive_loads))
    if kind == "RudderStackUploadSensor":
        return _upload(sensor, context, now)
    if kind in ("ClientAdoptionSensor", "SegmentAdoptionSensor"):
        return estimates.adoption_eta(
            getattr(sensor, "_memory", []),
            float(sensor.threshold),
            consecutive_checks=int(float(sensor.consecutive_checks)),
            check_interval_seconds=float(sensor.poke_interval),
            now=now,
        )
    return None


def record_estimate(sensor: Any, context: Any) -> dict[str, Any] | None:
    """Estimate, keep it as XCom ``eta``, and return the overdue notice for the trigger (``None``: none)."""
    try:
        eta = sensor.estimate(context) or estimate_for(sensor, context)
    except Exception as exc:  # an estimate is a help, never a reason to fail the wait
        log.info("no ETA for %s: %s: %s", sensor.task_id, type(exc).__name__, exc)
        return None
    if eta is None:
        return None
    sensor.log.info("ETA: %s", eta.text())
    ti = context.get("ti")
    if getattr(ti, "xcom_push", None) is not None:
        ti.xcom_push(key=ETA_KEY, value=eta.to_dict())
    settings = sensor.notify_settings
    phase = phase_of(sensor.task_id)
    phase_name = f"{phase.label if phase else sensor.task_id} (task {sensor.task_id})"
    if wants(settings, "milestone"):  # the phase begins: its ETA goes out with the milestones
        announce = phase_waiting(
            sensor.plan_name,
            getattr(ti, "run_id", None),
            phase_name,
            eta=eta.text(),
            link=view_link(settings, getattr(ti, "dag_id", "")),
        )
        deliver(announce, settings, context)  # never raises: a channel that fails is logged
    end = eta.high or eta.at
    if end is None or not wants(settings, "stalled"):
        return None
    grace = timedelta(minutes=float(settings.get("overdue_grace_minutes") or 0))
    decision = getattr(sensor, "_last_decision", None)
    message = overdue(
        sensor.plan_name,
        getattr(ti, "run_id", None),
        phase_name,
        expected=estimates.utc_text(end),
        basis=eta.basis,
        waiting=decision.reason if decision else "the condition",
        link=view_link(settings, getattr(ti, "dag_id", "")),
    )
    return {"at": (end + grace).timestamp(), "settings": dict(settings), "message": message.__dict__}
