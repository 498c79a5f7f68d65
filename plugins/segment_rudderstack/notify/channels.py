"""Delivering a message through Airflow's own notifiers: Slack incoming webhooks
(``apache-airflow-providers-slack``, ``SlackWebhookNotifier``) and e-mail (``apache-airflow-providers-smtp``,
``SmtpNotifier``). Both providers are optional: without one, its channel is skipped with one log line, and a
channel that fails (its server down, a wrong connection) never fails the task that notifies.

``settings`` is a plan's ``notify`` section as plain data (``NotifySettings.as_settings()``), so it can travel in a
trigger's or a deadline callback's arguments.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

from segment_rudderstack.notify.messages import Message, safe_text

log = logging.getLogger(__name__)

SENT = "sent"
SKIPPED = "skipped"
FAILED = "failed"


def wants(settings: Mapping[str, Any] | None, event: str) -> bool:
    """Whether a plan's notify settings ask for ``event`` and name any channel."""
    if not settings or not (settings.get("slack") or settings.get("email")):
        return False
    return event in (settings.get("events") or ())


def _send_slack(message: Message, slack: Mapping[str, Any], context: Any) -> None:
    from airflow.providers.slack.notifications.slack_webhook import SlackWebhookNotifier

    # notify(), not __call__: the text is final (a reason quoted from a log may hold "{{", never rendered)
    SlackWebhookNotifier(slack_webhook_conn_id=slack["conn_id"], text=message.as_text()).notify(context)


def _send_email(message: Message, email: Mapping[str, Any], context: Any) -> None:
    from airflow.providers.smtp.notifications.smtp import SmtpNotifier

    SmtpNotifier(
        to=list(email["to"]),
        from_email=email.get("from_email"),
        subject=message.subject,
        html_content=message.as_html(),
        smtp_conn_id=email["conn_id"],
    ).notify(context)


_PROVIDERS = {"slack": "apache-airflow-providers-slack", "email": "apache-airflow-providers-smtp"}


def deliver(message: Message, settings: Mapping[str, Any] | None, context: Any = None) -> dict[str, str]:
    """Send ``message`` to every channel of ``settings`` that asks for its event; ``{channel: outcome}``.

    Never raises: a missing provider or a failed delivery is logged (without secrets) and returned."""
    outcomes: dict[str, str] = {}
    if not wants(settings, message.event):
        return outcomes
    senders = {"slack": _send_slack, "email": _send_email}
    for channel, send in senders.items():
        target = settings.get(channel)  # type: ignore[union-attr]
        if not target:
            continue
        try:
            send(message, target, context if context is not None else {})
        except ImportError:
            outcomes[channel] = (
                f"{SKIPPED}: {_PROVIDERS[channel]} is not installed (pip install it, or make install)"
            )
            log.warning("notification %r not sent to %s: %s", message.subject, channel, outcomes[channel])
        except Exception as exc:  # a channel that fails never fails the migration
            outcomes[channel] = f"{FAILED}: {safe_text(f'{type(exc).__name__}: {exc}', limit=300)}"
            log.warning("notification %r not sent to %s: %s", message.subject, channel, outcomes[channel])
        else:
            outcomes[channel] = SENT
            log.info(
                "notification %r sent to %s (connection %s)", message.subject, channel, target["conn_id"]
            )
    return outcomes


async def adeliver(
    message: Message, settings: Mapping[str, Any] | None, context: Any = None
) -> dict[str, str]:
    """:func:`deliver` from the triggerer (a deadline callback, an overdue notice): in a worker thread, so the
    triggerer's event loop never blocks on a mail server."""
    return await asyncio.to_thread(deliver, message, settings, context)
