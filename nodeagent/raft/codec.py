"""Raft messages on the wire: msgpack arrays with a version, checked field by field.

A message from the network is untrusted bytes: ``decode`` accepts exactly what
``encode`` produces and raises CodecError (naming the field) for anything else --
never another exception, so the transport can count, log and drop a bad frame
without its loop dying.
"""

from __future__ import annotations

import msgpack

from nodeagent.raft.messages import Entry, EntryKind, Message, MessageType, SnapshotMeta
from nodeagent.wirecheck import FieldChecks

__all__ = ["CodecError", "decode", "encode"]

VERSION = 1


class CodecError(ValueError):
    pass


def encode(m: Message) -> bytes:
    snap = None if m.snapshot is None else [m.snapshot.index, m.snapshot.term,
                                            list(m.snapshot.voters), list(m.snapshot.learners)]
    return msgpack.packb([VERSION, int(m.type), m.src, m.dst, m.term, m.log_term, m.index,
                          [[e.term, e.index, int(e.kind), e.data] for e in m.entries],
                          m.commit, m.reject, m.hint, m.context, snap, m.offset, m.data, m.done],
                         use_bin_type=True)


_check = FieldChecks(CodecError)
_int, _bytes, _bool, _list = _check.int, _check.bytes, _check.bool, _check.list


def decode(data: bytes) -> Message:
    f = _list(_check.unpack(data), "message", 16)
    if f[0] != VERSION:
        raise CodecError(f"version: {f[0]!r} is not {VERSION}")
    try:
        kind = MessageType(_int(f[1], "type"))
    except ValueError as exc:
        raise CodecError(f"type: unknown message type {f[1]}") from exc
    entries = []
    for n, e in enumerate(_list(f[7], "entries")):
        e = _list(e, f"entries[{n}]", 4)
        try:
            ekind = EntryKind(_int(e[2], f"entries[{n}].kind"))
        except ValueError as exc:
            raise CodecError(f"entries[{n}].kind: unknown entry kind {e[2]}") from exc
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
