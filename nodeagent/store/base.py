"""What every store offers readers: the MVCC state machine's reads and watches.

A store (LocalStore on one agent, RaftStore on Raft servers) owns an MVCC state
machine that one task applies commands to; reads are plain method calls (Trio
runs one task at a time, so they see a consistent state) and watches get the
events of every applied batch through ``_publish``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import trio

from nodeagent.store.mvcc import MVCC, Event, KeyValue

__all__ = ["MVCCReads", "Watch"]


class Watch:
    """A stream of events under a prefix, starting at a revision.

    Iterate it to receive lists of events in revision order.  The stream ends
    (``overflowed`` set) if the consumer falls more than ``buffer`` batches
    behind; the consumer then resumes from the last revision it saw, as
    Kubernetes clients do after a watch ends.
    """

    def __init__(self, store: MVCCReads, prefix: str, buffer: int) -> None:
        self.prefix = prefix
        self._store = store
        self._send, self._recv = trio.open_memory_channel[list[Event]](buffer)
        self.overflowed = False
        self.closed = False

    def _offer(self, events: list[Event]) -> None:
        mine = [e for e in events if e.kv.key.startswith(self.prefix)]
        if not mine or self.closed:
            return
        try:
            self._send.send_nowait(mine)
        except trio.WouldBlock:
            self.overflowed = True
            self.close()
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            self.close()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._send.close()
            self._store._watches.discard(self)

    def __aiter__(self) -> AsyncIterator[list[Event]]:
        return self._recv.__aiter__()

    async def __anext__(self) -> list[Event]:
        return await self._recv.__anext__()

    def receive_nowait(self) -> list[Event]:
        return self._recv.receive_nowait()

    async def receive(self) -> list[Event]:
        return await self._recv.receive()


class MVCCReads:
    mvcc: MVCC
    watch_buffer: int
    _watches: set[Watch]

    def _publish(self, events: list[Event]) -> None:
        if events:
            for w in list(self._watches):
                w._offer(events)

    def _close_watches(self) -> None:
        for w in list(self._watches):
            w.close()

    # --- reads ---------------------------------------------------------------------------

    @property
    def revision(self) -> int:
        return self.mvcc.revision

    @property
    def compact_revision(self) -> int:
        return self.mvcc.compact_revision

    def get(self, key: str) -> KeyValue | None:
        return self.mvcc.get(key)

    def range(self, prefix: str, *, start_after: str | None = None, limit: int = 0,
              revision: int = 0) -> tuple[list[KeyValue], bool, int]:
        return self.mvcc.range(prefix, start_after=start_after, limit=limit, revision=revision)

    def count(self, prefix: str) -> int:
        return self.mvcc.count(prefix)

    def watch(self, prefix: str, start_revision: int) -> tuple[Watch, list[Event]]:
        """Register a watch; returns it and the history events from ``start_revision``.

        No event is lost or repeated between the history and the live stream: both are
        taken without yielding to the event loop.  Raises CompactedError.
        """
        backlog = self.mvcc.events_since(start_revision, prefix) if start_revision else []
        w = Watch(self, prefix, self.watch_buffer)
        self._watches.add(w)
        return w, backlog
