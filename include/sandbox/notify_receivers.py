"""Local receivers for the migration's notifications: a stand-in for Slack's incoming-webhook endpoint (HTTP) and
an SMTP server (``aiosmtpd``), both on 127.0.0.1, keeping every message they accept so a rehearsal or a test can
read what a person would have received.

Slack's incoming webhook, as the stand-in speaks it (Slack API docs, "Sending messages using incoming webhooks",
and the changelog "Improving error conditions for Incoming Webhooks", 2016-05-17):

- ``POST /services/<T>/<B>/<secret>``: the webhook URL is the secret; any other path answers 404 ``no_service``;
- a JSON object body with ``text`` or ``blocks``: 200, body ``ok``; a body that is not a JSON object, or has
  neither, answers 400 ``invalid_payload``;
- only POST (anything else: 405).

The SMTP receiver is ``aiosmtpd``'s ``Controller`` with login required (AUTH PLAIN/LOGIN, allowed without TLS on
127.0.0.1 only), so a test can prove the sender's password is never part of a message. Without ``aiosmtpd``
installed the world runs without it (``SmtpReceiver.available()``).
"""

from __future__ import annotations

import email
import email.policy
import json
import logging
import secrets
import threading
import warnings
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse


@dataclass
class SlackStandIn:
    """The incoming-webhook endpoint: ``token`` (``T…/B…/secret``) is the connection's password."""

    token: str = field(default_factory=lambda: f"T0SANDBOX/B0SANDBOX/{secrets.token_hex(12)}")
    messages: list[dict[str, Any]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def app(self) -> FastAPI:
        app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
        stand_in = self

        @app.post("/services/{team}/{bot}/{secret}")
        async def post(team: str, bot: str, secret: str, request: Request):
            if f"{team}/{bot}/{secret}" != stand_in.token:
                return PlainTextResponse("no_service", status_code=404)
            try:
                body = json.loads(await request.body())
            except ValueError:
                return PlainTextResponse("invalid_payload", status_code=400)
            if not isinstance(body, dict) or not (body.get("text") or body.get("blocks")):
                return PlainTextResponse("invalid_payload", status_code=400)
            with stand_in._lock:
                stand_in.messages.append(body)
            return PlainTextResponse("ok")

        return app

    def texts(self) -> list[str]:
        with self._lock:
            return [str(m.get("text", "")) for m in self.messages]

    def connection(self, url: str) -> dict[str, Any]:
        """Airflow's Slack incoming-webhook connection (``slackwebhook``) to this stand-in."""
        return {"conn_type": "slackwebhook", "host": f"{url}/services", "password": self.token}


class SmtpReceiver:
    """An SMTP server on 127.0.0.1 that requires a login and keeps every message it accepts."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0):
        self.host = host
        self.port = port
        self.login = "migration-bot"
        self.password = f"smtp-{secrets.token_hex(10)}"
        self.messages: list[email.message.EmailMessage] = []
        self._controller = None
        self._lock = threading.Lock()

    @staticmethod
    def available() -> bool:
        try:
            import aiosmtpd  # noqa: F401
        except ImportError:
            return False
        return True

    def start(self) -> SmtpReceiver:
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult, LoginPassword

        receiver = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):
                message = email.message_from_bytes(envelope.content, policy=email.policy.default)
                with receiver._lock:
                    receiver.messages.append(message)
                return "250 Message accepted for delivery"

        def authenticator(server, session, envelope, mechanism, auth_data):
            ok = isinstance(auth_data, LoginPassword) and (
                auth_data.login.decode() == receiver.login
                and auth_data.password.decode() == receiver.password
            )
            return AuthResult(success=ok, handled=False)

        logging.getLogger("mail.log").setLevel(logging.WARNING)  # one line per SMTP command otherwise
        # aiosmtpd warns on every session that AUTH without TLS is unsafe: deliberate here, on 127.0.0.1 only
        warnings.filterwarnings(
            "ignore", message="Requiring AUTH while not requiring TLS", category=UserWarning
        )
        port = self.port or _free_port(self.host)
        self._controller = self._controller_for(Controller, Handler(), port, authenticator)
        self._controller.start()
        self.port = port
        return self

    def _controller_for(self, controller, handler, port, authenticator):
        return controller(
            handler,
            hostname=self.host,
            port=port,
            authenticator=authenticator,
            auth_required=True,
            auth_require_tls=False,  # 127.0.0.1 only
        )

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def bodies(self) -> list[tuple[str, str]]:
        """(subject, decoded body) of each message received."""
        with self._lock:
            return [
                (str(m["subject"]), str(m.get_body(("html", "plain")).get_content())) for m in self.messages
            ]

    def connection(self, from_email: str = "migration@sandbox.local") -> dict[str, Any]:
        """Airflow's SMTP connection (``smtp``) to this receiver: login required, no TLS (local only)."""
        return {
            "conn_type": "smtp",
            "host": self.host,
            "port": self.port,
            "login": self.login,
            "password": self.password,
            "extra": {"disable_ssl": True, "disable_tls": True, "from_email": from_email, "timeout": 10},
        }


def _free_port(host: str) -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]
