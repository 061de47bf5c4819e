"""The level-triggered loop every controller, the pod manager and the proxy run in.

``sync`` compares desired with actual state and acts; it is called once at
start, again when anything under the watched prefixes changes (changes that
arrive together are coalesced into one pass), when it asks to be called back
(a returned number of seconds: a minReadySeconds or a back-off coming due),
and on a resync timer anyway.  Missing an event therefore never breaks
anything: the next pass sees the state, not the event.  A pass that fails is
logged and retried with back-off; a bug in one controller never stops the
agent.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

import trio

from nodeagent.api.status import ApiError
from nodeagent.backoff import Backoff
from nodeagent.store.base import KeyValueStore

__all__ = ["Controller", "reconcile"]

log = logging.getLogger("nodeagent.reconcile")

Sync = Callable[[], Awaitable[float | None]]


class Controller(Protocol):
    async def sync(self) -> float | None:
        """One pass; a number asks to be called again that many seconds from now."""


async def reconcile(name: str, store: KeyValueStore, prefixes: Sequence[str], sync: Sync, *,
                    resync_s: float = 30.0, coalesce_s: float = 0.02, retry_max_s: float = 10.0,
                    wake: Callable[[], Awaitable[None]] | None = None,
                    expected: tuple[type[Exception], ...] = (),
                    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    """``wake``: something else to pass on besides the store (it returns when that
    changed: gossip's member states for the node lifecycle).  ``expected``: failures
    that are the world's and not a bug (the kernel refused a ruleset), logged as one
    line without a traceback."""
    changed = trio.Event()

    async def woken() -> None:
        assert wake is not None
        while True:
            await wake()
            changed.set()

    async def follow(prefix: str) -> None:
        while True:
            watch, _ = store.watch(prefix, 0)
            try:
                async for _ in watch:
                    changed.set()
            finally:
                watch.close()
            changed.set()  # the stream ended (it fell behind): the next pass relists

    async with trio.open_nursery() as nursery:
        for prefix in prefixes:
            nursery.start_soon(follow, prefix)
        if wake is not None:
            nursery.start_soon(woken)
        backoff = Backoff(0.05, retry_max_s)
        first = True
        while True:
            changed = trio.Event()
            try:
                again = await sync()
                backoff.reset()
            except ApiError as exc:
                # A conflict means someone wrote first: look again soon.  Anything else
                # is worth a line in the log.
                if exc.code != 409:
                    log.warning("%s: %s", name, exc.message)
                again = backoff.next()
            except expected as exc:
                again = backoff.next()
                log.warning("%s: %s; retrying in %.1fs", name, exc, again)
            except Exception:
                again = backoff.next()
                log.exception("%s: sync failed, retrying in %.1fs", name, again)
            if first:
                task_status.started()
                first = False
            wait = min(resync_s, again if again is not None else math.inf)
            with trio.move_on_after(wait):
                await changed.wait()
            await trio.sleep(coalesce_s)
