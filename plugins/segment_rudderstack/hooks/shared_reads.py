"""One read serves every check of a process that asks for the same thing at about the same time.

Segment's sync list allows 2 requests a minute for the whole workspace, and one plan waits on one warehouse
with several triggers at once (its final-load sensor, its sync gate, one drain sensor per server-side source).
Each of them asking for the warehouse's newest sync reports separately spends the workspace's budget several
times on the same page. In a triggerer, all of them run in one event loop, so they can share it:

- a read in flight is joined by every other check that wants the same key (no second request);
- a finished read is handed out for ``max_age`` seconds more. The Segment hook passes the spacing of the
  workspace's sync-list budget: a fresh read could not get a turn sooner than that after the shared one, so
  the shared page is never older than a fresh read would have been (without a budget, only reads in flight
  are shared).

A failed read is not kept: every check that joined it gets its error, and the next check reads anew. A check
cancelled while waiting (its sensor timed out) does not cancel the read for the others.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Any

# Per event loop (each triggerer has one; tests run several loops one after another):
# key -> (the read, when its result stops being handed out; None while it is in flight).
_READS: dict[int, dict[Hashable, tuple[asyncio.Future, float | None]]] = {}


def _reads_of_this_loop() -> dict[Hashable, tuple[asyncio.Future, float | None]]:
    loop = asyncio.get_running_loop()
    reads = _READS.get(id(loop))
    if reads is None or (reads and next(iter(reads.values()))[0].get_loop() is not loop):
        for other, its_reads in list(_READS.items()):  # forget the reads of loops that have ended
            if not its_reads or next(iter(its_reads.values()))[0].get_loop().is_closed():
                del _READS[other]
        reads = _READS[id(loop)] = {}  # a new loop (or one reusing a dead loop's id)
    return reads


def _forget_expired(reads: dict, now: float) -> None:
    for key, (_, expires_at) in list(reads.items()):
        if expires_at is not None and now > expires_at:
            del reads[key]


async def shared_read(key: Hashable, read: Callable[[], Awaitable[Any]], max_age: float) -> Any:
    """``await read()``, or the result of the same key's read that is in flight or finished at most
    ``max_age`` seconds ago in this event loop.

    :param key: what is read (e.g. the workspace's budget key, the warehouse id and the page size)
    :param read: makes the request; called only when no shared result is usable
    :param max_age: seconds a finished read is handed out after it finished (0: only reads in flight)
    """
    reads = _reads_of_this_loop()
    _forget_expired(reads, time.monotonic())
    entry = reads.get(key)
    if entry is None:
        task = asyncio.ensure_future(read())
        reads[key] = (task, None)
        task.add_done_callback(lambda done: _finished(reads, key, done, max_age))
    else:
        task = entry[0]
    # shield: a waiter cancelled (its trigger stopped) leaves the read running for the others
    return await asyncio.shield(task)


def _finished(reads: dict, key: Hashable, task: asyncio.Future, max_age: float) -> None:
    current = reads.get(key)
    if current is None or current[0] is not task:
        return
    if task.cancelled() or task.exception() is not None:
        del reads[key]  # a failed read is not handed out: the next check reads anew
    else:
        reads[key] = (task, time.monotonic() + max_age)
