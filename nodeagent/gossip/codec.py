"""Gossip messages on the wire: msgpack with a version, checked field by field.

A UDP packet is ``[VERSION, [message, ...]]`` -- a compound of messages, as
memberlist's compoundMsg, so a ping carries the membership updates riding on it.
A TCP exchange (push-pull, the fallback ping) is one such packet.  ``decode``
accepts exactly what ``encode`` produces and raises DecodeError naming the field
for anything else, never another exception: the driver counts, logs and drops a
bad packet and its loop goes on.  Sizes are capped here (names, metadata, user
events, members in a push-pull), so no packet can make a member grow without bound.
"""

from __future__ import annotations

from typing import Any

import msgpack

from nodeagent.gossip.messages import (
    Ack,
    Address,
    Alive,
    Dead,
    IndirectPing,
    Member,
    MemberState,
    Message,
    Nack,
    Ping,
    PushPull,
    Suspect,
    UserEvent,
)
from nodeagent.wirecheck import FieldChecks

__all__ = ["MAX_META_BYTES", "MAX_NAME", "MAX_USER_EVENT_BYTES", "DecodeError", "decode",
           "encode", "message_size"]

VERSION = 1
MAX_NAME = 128
MAX_META_BYTES = 512  # memberlist's MetaMaxSize
MAX_USER_EVENT_BYTES = 512  # serf's UserEventSizeLimit
MAX_MEMBERS = 1024  # per push-pull; GossipConfig.max_members caps the table
MAX_EVENTS = 4096  # user events remembered and sent in a push-pull
COMPOUND_OVERHEAD = 8  # the outer array, the version and the inner array's header


class DecodeError(ValueError):
    """Bytes from the network that are not a message we send."""


def _addr(a: Address) -> list[Any]:
    return [a[0], a[1]]


def _member(m: Member) -> list[Any]:
    return [m.name, _addr(m.addr), m.incarnation, int(m.state), m.meta]


def _fields(m: Message | PushPull) -> list[Any]:
    if isinstance(m, Ping):
        return [0, m.seq, m.target, m.source, _addr(m.source_addr)]
    if isinstance(m, IndirectPing):
        return [1, m.seq, m.target, _addr(m.target_addr), m.source, _addr(m.source_addr), m.nack]
    if isinstance(m, Ack):
        return [2, m.seq]
    if isinstance(m, Nack):
        return [3, m.seq]
    if isinstance(m, Alive):
        return [4, m.incarnation, m.node, _addr(m.addr), m.meta]
    if isinstance(m, Suspect):
        return [5, m.incarnation, m.node, m.source]
    if isinstance(m, Dead):
        return [6, m.incarnation, m.node, m.source]
    if isinstance(m, UserEvent):
        return [7, m.ltime, m.name, m.payload]
    return [8, [_member(x) for x in m.members], m.event_ltime, m.join,
            [[e.ltime, e.name, e.payload] for e in m.events]]


def message_size(m: Message) -> int:
    """Bytes ``m`` adds to a compound packet (for the UDP budget)."""
    return len(msgpack.packb(_fields(m), use_bin_type=True))


def encode(messages: list[Message] | PushPull) -> bytes:
    body = [_fields(messages)] if isinstance(messages, PushPull) else \
        [_fields(m) for m in messages]
    return msgpack.packb([VERSION, body], use_bin_type=True)


# --- decoding ---------------------------------------------------------------------------------

_check = FieldChecks(DecodeError)
_int, _bytes, _bool, _list = _check.int, _check.bytes, _check.bool, _check.list


def _str(v: Any, name: str, limit: int = MAX_NAME) -> str:
    if type(v) is not str or not v or len(v) > limit:
        raise DecodeError(f"{name}: expected a name of 1 to {limit} characters")
    return v


def _address(v: Any, name: str) -> Address:
    host, port = _list(v, name, 2)
    port = _int(port, f"{name}.port")
    if port > 65535:
        raise DecodeError(f"{name}.port: {port} is not a port")
    return _str(host, f"{name}.host", 255), port


def _decode_member(v: Any, name: str) -> Member:
    f = _list(v, name, 5)
    try:
        state = MemberState(_int(f[3], f"{name}.state"))
    except ValueError as exc:
        raise DecodeError(f"{name}.state: unknown state {f[3]}") from exc
    return Member(_str(f[0], f"{name}.name"), _address(f[1], f"{name}.addr"),
                  _int(f[2], f"{name}.incarnation"), state,
                  _bytes(f[4], f"{name}.meta", MAX_META_BYTES))


_SHAPES = {0: 5, 1: 7, 2: 2, 3: 2, 4: 5, 5: 4, 6: 4, 7: 4, 8: 5}


def _decode_one(v: Any, name: str) -> Message | PushPull:
    f = _list(v, name)
    if not f or type(f[0]) is not int or f[0] not in _SHAPES:
        raise DecodeError(f"{name}: unknown message type")
    if len(f) != _SHAPES[f[0]] and not (f[0] == 8 and len(f) == 4):  # push-pull without events
        raise DecodeError(f"{name}: expected {_SHAPES[f[0]]} fields, got {len(f)}")
    t = f[0]
    if t == 0:
        return Ping(_int(f[1], "seq"), _str(f[2], "target"), _str(f[3], "source"),
                    _address(f[4], "source_addr"))
    if t == 1:
        return IndirectPing(_int(f[1], "seq"), _str(f[2], "target"),
                            _address(f[3], "target_addr"), _str(f[4], "source"),
                            _address(f[5], "source_addr"), _bool(f[6], "nack"))
    if t == 2:
        return Ack(_int(f[1], "seq"))
    if t == 3:
        return Nack(_int(f[1], "seq"))
    if t == 4:
        return Alive(_int(f[1], "incarnation"), _str(f[2], "node"), _address(f[3], "addr"),
                     _bytes(f[4], "meta", MAX_META_BYTES))
    if t == 5:
        return Suspect(_int(f[1], "incarnation"), _str(f[2], "node"), _str(f[3], "source"))
    if t == 6:
        return Dead(_int(f[1], "incarnation"), _str(f[2], "node"), _str(f[3], "source"))
    if t == 7:
        return UserEvent(_int(f[1], "ltime"), _str(f[2], "event name"),
                         _bytes(f[3], "payload", MAX_USER_EVENT_BYTES))
    members = _list(f[1], "members")
    if len(members) > MAX_MEMBERS:
        raise DecodeError(f"members: more than {MAX_MEMBERS}")
    events = _list(f[4], "events") if len(f) > 4 else []  # absent from agents before them
    if len(events) > MAX_EVENTS:
        raise DecodeError(f"events: more than {MAX_EVENTS}")
    return PushPull(tuple(_decode_member(m, f"members[{i}]") for i, m in enumerate(members)),
                    _int(f[2], "event_ltime"), _bool(f[3], "join"),
                    tuple(_decode_event(e, f"events[{i}]") for i, e in enumerate(events)))


def _decode_event(v: Any, name: str) -> UserEvent:
    f = _list(v, name, 3)
    return UserEvent(_int(f[0], f"{name}.ltime"), _str(f[1], f"{name}.name"),
                     _bytes(f[2], f"{name}.payload", MAX_USER_EVENT_BYTES))


def decode(data: bytes) -> list[Message | PushPull]:
    """The messages of one packet.  Raises DecodeError."""
    f = _list(_check.unpack(data), "packet", 2)
    if f[0] != VERSION:
        raise DecodeError(f"version: {f[0]!r} is not {VERSION}")
    return [_decode_one(m, f"messages[{i}]") for i, m in enumerate(_list(f[1], "messages"))]
