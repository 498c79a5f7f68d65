"""Run an operator in a forked child process that is SIGKILLed at a chosen point (a worker dying with its
task): the outside call happens, the process dies before the next change-log write."""

from __future__ import annotations

import multiprocessing
import os
import signal
from collections.abc import Callable
from typing import Any


def run_killed_after_call(run: Callable[[], Any], *, target: str, field: str, timeout: float = 60) -> int:
    """Fork, run ``run()`` in the child, and SIGKILL the child as soon as a change of ``target``/``field`` was
    made outside (right before its outcome would be written to the change log). Returns the exit code."""

    def child() -> None:
        from airflow import settings

        if getattr(settings, "engine", None) is not None:
            settings.engine.dispose(close=False)  # the parent's pooled DB connections are not ours
        from segment_rudderstack.safety import changelog

        original = changelog.ChangeLog.resolve

        def resolve(self, seq, status=changelog.DONE, **kwargs):
            for intent in self.open_intents(target, None, field):
                if intent.seq == seq and status == changelog.DONE:
                    os.kill(os.getpid(), signal.SIGKILL)
            return original(self, seq, status, **kwargs)

        changelog.ChangeLog.resolve = resolve
        run()
        os._exit(0)

    process = multiprocessing.get_context("fork").Process(target=child)
    process.start()
    process.join(timeout)
    if process.is_alive():
        process.kill()
        raise AssertionError("the task did not reach the outside call")
    return process.exitcode
