"""A versioned key-value state machine in the style of etcd's MVCC.

Theory of operation
-------------------
Every change is a :class:`Txn` command: compares, then the success or failure
ops.  :meth:`MVCC.apply` is pure and deterministic: the same sequence of
commands gives the same state on every machine, which is what lets a local
write-ahead log feed it today and Raft tomorrow.  It never reads a clock or
raises for a well-formed command.

One global revision counts changes: a txn that writes bumps it by one (all its
writes share it); a txn that writes nothing does not.  Each key records the
revision that created it, the last one that modified it, and its version
(writes since creation).

History: every write appends an :class:`Event`.  Events newer than
``compact_revision`` are kept, so a watch or a list can start from any
revision in that window; the window is bounded by ``history_revisions`` and
compaction happens inside ``apply`` (deterministically, at the same revision on
every replica).  Asking for a revision at or below ``compact_revision`` raises
:class:`CompactedError`.

Snapshots capture keys and revisions but not history; a store restored from a
snapshot starts its history at the snapshot's revision.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import msgpack
from sortedcontainers import SortedList

from nodeagent.store.errors import (
    CompactedError,
    FutureRevisionError,
    StoreError,
    TxnTooLargeError,
)

__all__ = ["MAX_TXN_BYTES", "MVCC", "Compare", "Event", "EventType", "KeyValue", "Op", "OpKind",
           "Txn", "TxnResult", "check_txn_size"]

# The largest transaction the store takes, encoded: an object at the API's cap (1.5 MiB,
# etcd's --max-request-bytes) with its allocation keys and compares.  Far below the
# log's record cap and Raft's entry cap, so nothing the store accepts can fail to be
# logged or replicated.
MAX_TXN_BYTES = 2 * 1024 * 1024


def check_txn_size(data: bytes) -> None:
    """Raises TxnTooLargeError for an encoded transaction over MAX_TXN_BYTES."""
    if len(data) > MAX_TXN_BYTES:
        raise TxnTooLargeError(f"request is too large: a {len(data)}-byte transaction is over "
                               f"the store's limit of {MAX_TXN_BYTES} bytes")


class OpKind(StrEnum):
    PUT = "put"
    DELETE = "delete"
    DELETE_PREFIX = "delete_prefix"


class EventType(StrEnum):
    PUT = "PUT"
    DELETE = "DELETE"


@dataclass(slots=True, frozen=True)
class KeyValue:
    key: str
    value: bytes
    create_revision: int
    mod_revision: int
    version: int


@dataclass(slots=True, frozen=True)
class Event:
    type: EventType
    kv: KeyValue  # for DELETE: value b"", mod_revision = revision of the delete
    prev_kv: KeyValue | None

    @property
    def revision(self) -> int:
        return self.kv.mod_revision


@dataclass(slots=True, frozen=True)
class Compare:
    """``target`` of ``key`` compared with ``value`` by ``op``.

    target: "mod" | "create" | "version" | "value"; op: "=" | "!=" | "<" | ">".
    A missing key has mod/create/version 0 and no value (only "!=" matches).
    """

    key: str
    target: str
    op: str
    value: Any


@dataclass(slots=True, frozen=True)
class Op:
    """``put`` key=value, ``delete`` key, or ``delete_prefix`` key.  A kind given as its
    text is taken as the OpKind it names (ValueError for none)."""

    kind: OpKind
    key: str
    value: bytes = b""

    def __post_init__(self) -> None:
        if type(self.kind) is not OpKind:
            object.__setattr__(self, "kind", OpKind(self.kind))


@dataclass(slots=True, frozen=True)
class Txn:
    compares: tuple[Compare, ...] = ()
    success: tuple[Op, ...] = ()
    failure: tuple[Op, ...] = ()

    def encode(self) -> bytes:
        return msgpack.packb([
            [[c.key, c.target, c.op, c.value] for c in self.compares],
            [[o.kind, o.key, o.value] for o in self.success],
            [[o.kind, o.key, o.value] for o in self.failure],
        ], use_bin_type=True)

    @classmethod
    def decode(cls, data: bytes, *, max_ops: int | None = None) -> Txn:
        """Raises StoreError naming what is malformed: commands come over the network
        (api/replica.py), and one that ``apply`` could not take would stop every replica.
        Any size is read: the caps (check_txn_size, ``max_ops`` for any one list) are for
        new writes, not for what a log already holds."""
        limits = {} if max_ops is None else {"max_array_len": max_ops, "max_map_len": max_ops}
        try:
            c, s, f = msgpack.unpackb(data, raw=False, **limits)
            txn = cls(tuple(Compare(*x) for x in c), tuple(Op(*x) for x in s),
                      tuple(Op(*x) for x in f))
        except (ValueError, TypeError, msgpack.UnpackException) as exc:
            raise StoreError(f"malformed command: {exc}") from exc
        for cmp in txn.compares:
            if not isinstance(cmp.key, str) or not isinstance(cmp.op, str) or cmp.op not in _OPS:
                raise StoreError(f"malformed compare: key {cmp.key!r}, op {cmp.op!r}")
            want = bytes if cmp.target == "value" else int
            if not isinstance(cmp.target, str) or cmp.target not in ("value", "mod", "create",
                                                                     "version") \
                    or not isinstance(cmp.value, want) or isinstance(cmp.value, bool):
                raise StoreError(f"malformed compare on {cmp.key!r}: target {cmp.target!r} "
                                 f"with value {cmp.value!r}")
        for op in txn.success + txn.failure:
            if not isinstance(op.key, str) or not isinstance(op.value, bytes):
                raise StoreError(f"malformed op: {op.kind!r} on {op.key!r}")
        return txn


@dataclass(slots=True)
class TxnResult:
    succeeded: bool
    revision: int  # store revision after the txn
    # For each op that ran: the key's value after a put, or the deleted previous value.
    kvs: list[KeyValue | None] = field(default_factory=list)
    prev_kvs: list[KeyValue | None] = field(default_factory=list)


_OPS = {
    "=": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    ">": lambda a, b: a > b,
}


class MVCC:
    """The state machine.  Not thread-safe: one task owns it."""

    def __init__(self, history_revisions: int = 100_000) -> None:
        if history_revisions < 1:
            raise ValueError("history_revisions must be >= 1")
        self.history_revisions = history_revisions
        self.revision = 0
        self.compact_revision = 0
        self._kv: dict[str, KeyValue] = {}
        self._keys: SortedList = SortedList()
        self._events: deque[Event] = deque()

    # --- writes -------------------------------------------------------------------------

    def apply(self, txn: Txn) -> tuple[TxnResult, list[Event]]:
        """Apply one command; returns its result and the events it produced."""
        ok = all(self._compare(c) for c in txn.compares)
        ops = txn.success if ok else txn.failure
        rev = self.revision + 1
        events: list[Event] = []
        result = TxnResult(ok, self.revision)
        for op in ops:
            if op.kind is OpKind.PUT:
                prev = self._kv.get(op.key)
                kv = KeyValue(op.key, op.value,
                              prev.create_revision if prev else rev, rev,
                              prev.version + 1 if prev else 1)
                if prev is None:
                    self._keys.add(op.key)
                self._kv[op.key] = kv
                events.append(Event(EventType.PUT, kv, prev))
                result.kvs.append(kv)
                result.prev_kvs.append(prev)
            elif op.kind is OpKind.DELETE:
                prev = self._delete(op.key, rev, events)
                result.kvs.append(None)
                result.prev_kvs.append(prev)
            elif op.kind is OpKind.DELETE_PREFIX:
                for key in list(self._keys.irange(op.key, op.key + "\uffff")):
                    if key.startswith(op.key):
                        self._delete(key, rev, events)
                result.kvs.append(None)
                result.prev_kvs.append(None)
            else:
                raise StoreError(f"unknown op {op.kind!r}")
        if events:
            self.revision = rev
            result.revision = rev
            self._events.extend(events)
            self._auto_compact()
        return result, events

    def install(self, revision: int, changes: list[tuple[EventType, KeyValue]]) -> list[Event]:
        """Take another replica's changes at ``revision`` as they were: a copy fed by a
        server's stream (store/remote.py) ends up with the same keys, revisions and
        versions, so resourceVersions mean the same on every agent.  ``changes`` are
        ("PUT", kv) or ("DELETE", kv with the key); a revision already held is skipped."""
        if revision <= self.revision:
            return []
        events: list[Event] = []
        for etype, kv in changes:
            prev = self._kv.get(kv.key)
            if etype is EventType.PUT:
                if prev is None:
                    self._keys.add(kv.key)
                self._kv[kv.key] = kv
                events.append(Event(EventType.PUT, kv, prev))
            elif prev is not None:
                self._delete(kv.key, revision, events)
        self.revision = revision
        self._events.extend(events)
        self._auto_compact()
        return events

    def _delete(self, key: str, rev: int, events: list[Event]) -> KeyValue | None:
        prev = self._kv.pop(key, None)
        if prev is not None:
            self._keys.remove(key)
            events.append(Event(EventType.DELETE, KeyValue(key, b"", 0, rev, 0), prev))
        return prev

    def _compare(self, c: Compare) -> bool:
        kv = self._kv.get(c.key)
        if c.target == "value":
            if kv is None:
                return c.op == "!="
            return _OPS[c.op](kv.value, c.value)
        actual = 0
        if kv is not None:
            actual = {"mod": kv.mod_revision, "create": kv.create_revision,
                      "version": kv.version}[c.target]
        return _OPS[c.op](actual, c.value)

    def _auto_compact(self) -> None:
        # Compact in steps of a tenth of the window so the cost is amortised.
        limit = self.history_revisions + max(1, self.history_revisions // 10)
        if self.revision - self.compact_revision > limit:
            self.compact(self.revision - self.history_revisions)

    def compact(self, revision: int) -> None:
        """Forget history at and below ``revision``."""
        revision = min(revision, self.revision)
        while self._events and self._events[0].revision <= revision:
            self._events.popleft()
        self.compact_revision = max(self.compact_revision, revision)

    # --- reads --------------------------------------------------------------------------

    def get(self, key: str) -> KeyValue | None:
        return self._kv.get(key)

    def range(self, prefix: str, *, start_after: str | None = None, limit: int = 0,
              revision: int = 0) -> tuple[list[KeyValue], bool, int]:
        """Keys with ``prefix`` in key order, after ``start_after``, at ``revision`` (0 = now).

        Returns (items, more, revision read at).  Raises CompactedError for a revision
        whose history is gone, FutureRevisionError for one not reached yet.
        """
        if revision == 0 or revision == self.revision:
            return (*self._range_now(prefix, start_after, limit), self.revision)
        self._check_revision(revision)
        view = {kv.key: kv for kv in self._iter_prefix(prefix, start_after)}
        for ev in reversed(self._events):
            if ev.revision <= revision:
                break
            key = ev.kv.key
            if not key.startswith(prefix) or (start_after is not None and key <= start_after):
                continue
            if ev.prev_kv is None:
                view.pop(key, None)
            else:
                view[key] = ev.prev_kv
        items = [view[k] for k in sorted(view)]
        if limit and len(items) > limit:
            return items[:limit], True, revision
        return items, False, revision

    def count(self, prefix: str) -> int:
        return sum(1 for _ in self._iter_keys(prefix, None))

    def _iter_keys(self, prefix: str, start_after: str | None) -> Iterator[str]:
        if start_after is None or start_after < prefix:
            lo, inclusive = prefix, True
        else:
            lo, inclusive = start_after, False
        for key in self._keys.irange(lo, prefix + "\uffff", inclusive=(inclusive, True)):
            if not key.startswith(prefix):
                break
            yield key

    def _iter_prefix(self, prefix: str, start_after: str | None) -> Iterator[KeyValue]:
        for key in self._iter_keys(prefix, start_after):
            yield self._kv[key]

    def _range_now(self, prefix: str, start_after: str | None,
                   limit: int) -> tuple[list[KeyValue], bool]:
        items: list[KeyValue] = []
        for kv in self._iter_prefix(prefix, start_after):
            if limit and len(items) == limit:
                return items, True
            items.append(kv)
        return items, False

    def _check_revision(self, revision: int) -> None:
        if revision <= self.compact_revision:
            raise CompactedError(revision, self.compact_revision)
        if revision > self.revision:
            raise FutureRevisionError(revision, self.revision)

    def events_since(self, revision: int, prefix: str = "") -> list[Event]:
        """Events with revision >= ``revision`` under ``prefix``, oldest first.

        Raises CompactedError if part of that history is gone.
        """
        if revision <= self.compact_revision:
            raise CompactedError(revision, self.compact_revision)
        if revision > self.revision:
            return []
        out: list[Event] = []
        for ev in reversed(self._events):
            if ev.revision < revision:
                break
            if ev.kv.key.startswith(prefix):
                out.append(ev)
        out.reverse()
        return out

    def __len__(self) -> int:
        return len(self._kv)

    # --- snapshots ----------------------------------------------------------------------

    def snapshot(self, exclude: tuple[str, ...] = ()) -> bytes:
        """The state as bytes (restore takes them); keys under ``exclude`` left out."""
        return msgpack.packb({
            "revision": self.revision,
            "kvs": [[kv.key, kv.value, kv.create_revision, kv.mod_revision, kv.version]
                    for kv in self._kv.values() if not (exclude and kv.key.startswith(exclude))],
        }, use_bin_type=True)

    def restore(self, data: bytes) -> None:
        try:
            snap = msgpack.unpackb(data, raw=False)
            kvs = [KeyValue(*row) for row in snap["kvs"]]
            revision = int(snap["revision"])
        except (ValueError, TypeError, KeyError, msgpack.UnpackException) as exc:
            raise StoreError(f"malformed snapshot: {exc}") from exc
        self._kv = {kv.key: kv for kv in kvs}
        self._keys = SortedList(self._kv)
        self._events.clear()
        self.revision = revision
        self.compact_revision = revision
