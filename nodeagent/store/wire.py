"""The store on the wire between a server and the agents that copy it (api/replica.py,
store/remote.py): msgpack, one object per message, no framing needed since msgpack
objects delimit themselves (msgpack.Unpacker reads a stream of them).

Stream messages, in order:
    {"t": "snap", "state": bytes}    the whole state (MVCC.snapshot) when the copy is new
                                     or too far behind for the server's history
    {"t": "ev", "e": [row, ...]}     changes in revision order; row = [type, key, value,
                                     create_revision, mod_revision, version]
    {"t": "rev", "r": N}             keep-alive: the server is at revision N
"""

from __future__ import annotations

from itertools import groupby
from typing import Any

import msgpack

from nodeagent.store.errors import StoreError
from nodeagent.store.mvcc import Event, EventType, KeyValue, TxnResult

__all__ = ["KEEPALIVE_S", "MEDIA_TYPE", "decode_result", "encode_result", "event_rows", "pack",
           "revisions"]

MEDIA_TYPE = "application/vnd.nodeagent.store+msgpack"
KEEPALIVE_S = 2.0  # a stream quiet for 3x this is dead: the copy moves to another server


def pack(obj: Any) -> bytes:
    return msgpack.packb(obj, use_bin_type=True)


def _kv_row(kv: KeyValue | None) -> list[Any] | None:
    if kv is None:
        return None
    return [kv.key, kv.value, kv.create_revision, kv.mod_revision, kv.version]


def _kv(row: Any) -> KeyValue | None:
    if row is None:
        return None
    key, value, create, mod, version = row
    if not isinstance(key, str) or not isinstance(value, bytes):
        raise TypeError(f"key/value of {key!r} are not str/bytes")
    return KeyValue(key, value, int(create), int(mod), int(version))


def event_rows(events: list[Event]) -> list[list[Any]]:
    return [[e.type, e.kv.key, e.kv.value, e.kv.create_revision, e.kv.mod_revision,
             e.kv.version] for e in events]


def revisions(rows: Any) -> list[tuple[int, list[tuple[EventType, KeyValue]]]]:
    """Rows of an "ev" message grouped by revision: [(revision, [(type, kv), ...])].
    Raises StoreError naming what is malformed."""
    try:
        changes = []
        for etype, key, value, create, mod, version in rows:
            kind = EventType(etype)  # ValueError for a type that is none
            kv = _kv([key, value, create, mod, version])
            assert kv is not None
            changes.append((kind, kv))
    except (ValueError, TypeError) as exc:
        raise StoreError(f"malformed change from the server: {exc}") from exc
    return [(rev, list(group)) for rev, group in
            groupby(changes, key=lambda change: change[1].mod_revision)]


def encode_result(result: TxnResult) -> bytes:
    return pack([result.succeeded, result.revision, [_kv_row(kv) for kv in result.kvs],
                 [_kv_row(kv) for kv in result.prev_kvs]])


def decode_result(data: bytes) -> TxnResult:
    try:
        ok, revision, kvs, prev_kvs = msgpack.unpackb(data, raw=False)
        return TxnResult(bool(ok), int(revision), [_kv(row) for row in kvs],
                         [_kv(row) for row in prev_kvs])
    except (ValueError, TypeError, msgpack.UnpackException) as exc:
        raise StoreError(f"malformed transaction result from the server: {exc}") from exc
