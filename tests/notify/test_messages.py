"""Notification messages (notify/messages.py): what happened, where, what to do, a link; never a secret."""

from __future__ import annotations

from segment_rudderstack.notify import messages

TOKEN = "sgmt-token-0123456789abcdef"


def test_failure_says_what_failed_why_and_what_to_do_without_secrets():
    from airflow.sdk.log import mask_secret

    mask_secret(TOKEN)  # as the Task SDK does for a connection's password it hands out
    message = messages.failure(
        "prod",
        "manual__1",
        "segment_final_load.disable_segment_warehouse",
        phase="Segment's final load, warehouse off",
        reason=f"ApiError: 401 from https://api.segmentapis.com/warehouses?token={TOKEN} (Bearer {TOKEN})",
        todo="check the token",
        link="http://airflow/dags/x",
    )
    text = message.as_text() + message.as_html() + message.subject
    assert TOKEN not in text
    assert (
        "task `segment_final_load.disable_segment_warehouse` (Segment's final load, warehouse off) failed"
        in text
    )
    assert "What to do: check the token" in text and "http://airflow/dags/x" in text


def test_milestones_name_the_moment():
    cutover = messages.milestone(
        "prod", "r", "cutover", {"cutover_at": "2026-12-02T10:00:00+00:00"}, link=None
    )
    assert cutover.subject == "[prod] Cutover point: Segment's webhook to RudderStack is on"
    assert "since 2026-12-02T10:00:00+00:00" in cutover.text
    duplicates = messages.milestone(
        "prod", "r", "duplicates", {"duplicates": {"tracks": 3}, "removed": 3}, link=None
    )
    assert "3 duplicate row(s) found in the overlap window, 3 removed" in duplicates.text


def test_approval_carries_what_is_approved_and_who_may_answer():
    message = messages.approval(
        "prod",
        "r",
        "Disable Segment's warehouse now?",
        "Approving lets: ...",
        assigned=["alice"],
        link="http://airflow/required_actions",
    )
    assert "Disable Segment's warehouse now?" in message.subject
    assert "Approving lets: ..." in message.text and "assigned to alice" in message.text
