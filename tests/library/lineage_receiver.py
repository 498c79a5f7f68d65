"""A local OpenLineage receiver: a real HTTP server on 127.0.0.1 that keeps every
RunEvent the OpenLineage provider's HTTP transport posts (``POST /api/v1/lineage``, one JSON event per request,
as openlineage-python's ``HttpTransport`` sends them)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

ENDPOINT = "api/v1/lineage"


class LineageReceiver:
    """``with LineageReceiver() as receiver:`` serves until the block ends; ``receiver.events`` is what came."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    event = json.loads(body)
                except ValueError:
                    self.send_response(400)
                    self.end_headers()
                    return
                with receiver._lock:
                    receiver.events.append(event)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def airflow_env(self) -> dict[str, str]:
        """The Airflow settings that point the OpenLineage provider at this receiver."""
        transport = {"type": "http", "url": self.url, "endpoint": ENDPOINT, "timeout": 5}
        return {
            "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps(transport),
            "AIRFLOW__OPENLINEAGE__NAMESPACE": "srm-deployment-test",
        }

    def completed(self, job_suffix: str) -> list[dict[str, Any]]:
        """COMPLETE events of jobs whose name ends with ``job_suffix`` (``<dag_id>.<task_id>``)."""
        with self._lock:
            return [
                e
                for e in self.events
                if e.get("eventType") == "COMPLETE"
                and str(e.get("job", {}).get("name", "")).endswith(job_suffix)
            ]

    def __enter__(self) -> LineageReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self._server.shutdown()
        self._server.server_close()
