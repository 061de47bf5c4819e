"""What every store offers readers: the MVCC state machine's reads and watches.

A store (LocalStore on one agent, RaftStore on Raft servers) owns an MVCC state
machine that one task applies commands to; reads are plain method calls (Trio
runs one task at a time, so they see a consistent state) and watches get the
events of every applied batch through ``_publish``.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Protocol

import orjson
import trio

from nodeagent.logs import ThrottledLog
from nodeagent.store.errors import StoreError, TxnRejectedError
from nodeagent.store.mvcc import MVCC, Event, KeyValue, OpKind, Txn, TxnResult

__all__ = ["KeyValueStore", "MVCCReads", "Watch", "apply_command", "check_values"]

_rejected_log = ThrottledLog(logging.getLogger("nodeagent.store"))


def apply_command(mvcc: MVCC, data: bytes) -> tuple[TxnResult | TxnRejectedError, list[Event]]:
    """Decode and apply one logged command.  A command that does not decode (a forged Raft
    entry, a log written by a newer version) changes nothing and gives TxnRejectedError,
    the same on every replica, instead of raising out of the apply loop and stopping the
    server at every restart."""
    try:
        txn = Txn.decode(data)
        check_values(txn)
    except StoreError as exc:
        _rejected_log.log("undecodable", "store: skipped a command that does not decode: %s", exc)
        return TxnRejectedError(f"the store could not apply the write: {exc}"), []
    return mvcc.apply(txn)


OBJECTS_PREFIX = "/registry/"
RAW_PREFIX = "/registry/allocations/"  # the allocator's keys hold plain text
SERVERS_PREFIX = "/registry/apiservers/"  # each server's API URL, written by the server


# A value sealed by the API's encryption at rest (api/encryption.py): the store cannot read
# it, and takes it where the API seals (Secrets).
SEALED_PREFIX = b"k8s:enc:aesgcm:v1:"
SEALED_KEYS = ("/registry/secrets/",)


def check_values(txn: Txn) -> None:
    """Raises StoreError unless every object a txn puts is a JSON object with a metadata
    object: readers (lists, watches, every controller) splice stored bytes into answers
    and decode them without a guard, so the store holds nothing else under /registry/."""
    for op in txn.success + txn.failure:
        if op.kind is not OpKind.PUT or not op.key.startswith(OBJECTS_PREFIX) \
                or op.key.startswith((RAW_PREFIX, SERVERS_PREFIX)):
            continue
        if op.key.startswith(SEALED_KEYS) and op.value.startswith(SEALED_PREFIX):
            continue
        try:
            obj = orjson.loads(op.value)
        except orjson.JSONDecodeError as exc:
            raise StoreError(f"{op.key}: the value is not JSON: {exc}") from exc
        if not isinstance(obj, dict) or not isinstance(obj.get("metadata"), dict):
            raise StoreError(f"{op.key}: the value is not an object with metadata")


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


class KeyValueStore(Protocol):
    """A store as the object store, the API and every reconcile loop use it: reads and
    watches served here from the MVCC state, writes as transactions.  LocalStore, RaftStore
    (a Raft server's) and RemoteStore (a follower's copy) are all one."""

    mvcc: MVCC

    @property
    def revision(self) -> int: ...
    @property
    def compact_revision(self) -> int: ...
    async def txn(self, txn: Txn) -> TxnResult: ...
    def get(self, key: str) -> KeyValue | None: ...
    def range(self, prefix: str, *, start_after: str | None = None, limit: int = 0,
              revision: int = 0) -> tuple[list[KeyValue], bool, int]: ...
    def count(self, prefix: str) -> int: ...
    def watch(self, prefix: str, start_revision: int) -> tuple[Watch, list[Event]]: ...


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
