"""A real network path that can be closed and opened: a TCP port on 127.0.0.1 forwarding to a unix socket
(the embedded PostgreSQL listens on one) or to a TCP address (an emulator's HTTP server). While closed, nothing listens on the port, so connections are
refused exactly as by a server that is down; ``open()`` starts listening, ``close()`` stops and cuts every
forwarded connection (a reset, as when a server restarts)."""

from __future__ import annotations

import contextlib
import glob
import socket
import threading
from urllib.parse import parse_qs, urlparse


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def postgres_socket(dsn: str) -> str:
    """The unix socket file of an embedded PostgreSQL DSN (``postgresql://user:@/db?host=<dir>``)."""
    folder = parse_qs(urlparse(dsn).query)["host"][0]
    found = [p for p in glob.glob(f"{folder}/.s.PGSQL.*") if not p.endswith(".lock")]
    if not found:
        raise RuntimeError(f"no PostgreSQL socket in {folder}")
    return found[0]


def http_target(url: str) -> tuple[str, int]:
    """``(host, port)`` of an ``http://host:port`` URL (an emulator's server)."""
    parsed = urlparse(url)
    return parsed.hostname or "127.0.0.1", int(parsed.port or 80)


def tcp_dsn(dsn: str, port: int) -> str:
    parsed = urlparse(dsn)
    return f"postgresql://{parsed.username or 'postgres'}:@127.0.0.1:{port}{parsed.path}"


class Gate:
    """``target``: a unix socket path, or ``(host, port)`` of a TCP server."""

    def __init__(self, target: str | tuple[str, int], port: int | None = None):
        self.target = target
        self.port = port or free_port()
        self._listener: socket.socket | None = None
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()

    def open(self) -> Gate:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(16)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return self

    def close(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        with self._lock:
            conns, self._conns = self._conns, []
        for c in conns:
            with contextlib.suppress(OSError):
                c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                c.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            family = socket.AF_UNIX if isinstance(self.target, str) else socket.AF_INET
            upstream = socket.socket(family, socket.SOCK_STREAM)
            try:
                upstream.connect(self.target)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while chunk := src.recv(65536):
                dst.sendall(chunk)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                dst.shutdown(socket.SHUT_WR)
