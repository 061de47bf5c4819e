"""Raft messages on the wire: msgpack arrays with a version, checked field by field.

A message from the network is untrusted bytes: ``decode`` accepts exactly what
``encode`` produces and raises CodecError (naming the field) for anything else --
never another exception, so the transport can count, log and drop a bad frame
without its loop dying.
"""

from __future__ import annotations

from typing import Any

import msgpack

from nodeagent.raft.messages import Entry, EntryKind, Message, MessageType, SnapshotMeta

__all__ = ["CodecError", "decode", "encode"]

VERSION = 1
MAX_ID = 2**63 - 1


class CodecError(ValueError):
    pass


def encode(m: Message) -> bytes:
    snap = None if m.snapshot is None else [m.snapshot.index, m.snapshot.term,
                                            list(m.snapshot.voters), list(m.snapshot.learners)]
    return msgpack.packb([VERSION, int(m.type), m.src, m.dst, m.term, m.log_term, m.index,
                          [[e.term, e.index, int(e.kind), e.data] for e in m.entries],
                          m.commit, m.reject, m.hint, m.context, snap, m.offset, m.data, m.done],
                         use_bin_type=True)


def _int(v: Any, name: str) -> int:
    if type(v) is not int or not 0 <= v <= MAX_ID:
        raise CodecError(f"{name}: expected a non-negative integer, got {type(v).__name__}")
    return v


def _bytes(v: Any, name: str) -> bytes:
    if type(v) is not bytes:
        raise CodecError(f"{name}: expected bytes, got {type(v).__name__}")
    return v


def _bool(v: Any, name: str) -> bool:
    if type(v) is not bool:
        raise CodecError(f"{name}: expected a boolean, got {type(v).__name__}")
    return v


def _list(v: Any, name: str, length: int | None = None) -> list[Any]:
    if type(v) is not list or (length is not None and len(v) != length):
        raise CodecError(f"{name}: expected a list" + (f" of {length}" if length else ""))
    return v


def decode(data: bytes) -> Message:
    try:
        raw = msgpack.unpackb(data, raw=False, strict_map_key=True, max_bin_len=len(data),
                              max_str_len=len(data), max_array_len=len(data),
                              max_map_len=len(data))
    except (ValueError, TypeError, msgpack.UnpackException, RecursionError) as exc:
        raise CodecError(f"not a msgpack message: {type(exc).__name__}") from None
    f = _list(raw, "message", 16)
    if f[0] != VERSION:
        raise CodecError(f"version: {f[0]!r} is not {VERSION}")
    try:
        kind = MessageType(_int(f[1], "type"))
    except ValueError:
        raise CodecError(f"type: unknown message type {f[1]}") from None
    entries = []
    for n, e in enumerate(_list(f[7], "entries")):
        e = _list(e, f"entries[{n}]", 4)
        try:
            ekind = EntryKind(_int(e[2], f"entries[{n}].kind"))
        except ValueError:
            raise CodecError(f"entries[{n}].kind: unknown entry kind {e[2]}") from None
        entries.append(Entry(_int(e[0], f"entries[{n}].term"), _int(e[1], f"entries[{n}].index"),
                             ekind, _bytes(e[3], f"entries[{n}].data")))
    snapshot = None
    if f[12] is not None:
        s = _list(f[12], "snapshot", 4)
        snapshot = SnapshotMeta(
            _int(s[0], "snapshot.index"), _int(s[1], "snapshot.term"),
            tuple(_int(v, "snapshot.voters") for v in _list(s[2], "snapshot.voters")),
            tuple(_int(v, "snapshot.learners") for v in _list(s[3], "snapshot.learners")))
    return Message(kind, _int(f[2], "src"), _int(f[3], "dst"), _int(f[4], "term"),
                   log_term=_int(f[5], "log_term"), index=_int(f[6], "index"),
                   entries=tuple(entries), commit=_int(f[8], "commit"),
                   reject=_bool(f[9], "reject"), hint=_int(f[10], "hint"),
                   context=_bytes(f[11], "context"), snapshot=snapshot,
                   offset=_int(f[13], "offset"), data=_bytes(f[14], "data"),
                   done=_bool(f[15], "done"))
