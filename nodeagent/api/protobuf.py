"""Kubernetes' protobuf bodies (``application/vnd.kubernetes.protobuf``), read into the
JSON the handlers take and written from the JSON they give.

A body is the four bytes ``k8s\\0`` and a ``runtime.Unknown``: the TypeMeta, and the
object's own message as ``raw``.  The wire format is protobuf's (varints,
length-delimited fields); what each field is comes from the tables of protoschema.py.
kubectl's typed clients (create deployment, configmap, secret, namespace, service;
drain's DELETE; create token) send their bodies so, and client-go asks for protobuf
answers first.

Reading follows Go's encoder: a non-pointer scalar is always sent, so a zero string,
number or false there means "not set" and is dropped, as the JSON omits it; a pointer
field keeps its zero.  A field this server does not read, sent with a value, is a 400
naming it: dropping it would lose what the client set.  Writing answers with a 406 when
an object holds a field the tables cannot say (the caller then answers in JSON).

Bodies are capped upstream (3 MiB); nesting is bounded by the tables (no message holds
itself); a field of the wrong wire type or running past the end is a 400 naming it.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import functools
from typing import Any

import orjson

from nodeagent.api.accept import media_ranges
from nodeagent.api.status import ApiError
from nodeagent.objects.protoschema import KINDS, MESSAGES, ProtoField, members

__all__ = ["MEDIA_TYPE", "WATCH_MEDIA_TYPE", "EncodeError", "decode", "encode", "encode_list",
           "encode_watch_event", "kind_message", "put_bytes", "put_int", "put_varint",
           "wants_protobuf"]

MEDIA_TYPE = "application/vnd.kubernetes.protobuf"
WATCH_MEDIA_TYPE = MEDIA_TYPE + ";stream=watch"
MAGIC = b"k8s\x00"
SCALARS = {"s", "i", "b", "y"}


class EncodeError(Exception):
    """An object that protobuf cannot carry whole (a field without a number)."""


def wants_protobuf(accept: str) -> bool:
    """client-go's typed clients ask ``application/vnd.kubernetes.protobuf, */*``: the
    first type named decides."""
    return media_ranges(accept)[0][0] == MEDIA_TYPE


def kind_message(api_version: str, kind: str) -> str | None:
    return KINDS.get((api_version, kind))


# --- reading ---------------------------------------------------------------------------------


def _varint(data: bytes, i: int, where: str) -> tuple[int, int]:
    value = shift = 0
    while True:
        if i >= len(data) or shift > 63:
            raise ApiError.bad_request(f"protobuf body: {where}: a truncated varint")
        b = data[i]
        i += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, i
        shift += 7


def _fields(data: bytes, where: str) -> list[tuple[int, int, Any]]:
    """(field number, wire type, value) of one message's bytes."""
    out: list[tuple[int, int, Any]] = []
    i = 0
    while i < len(data):
        key, i = _varint(data, i, where)
        number, wire = key >> 3, key & 7
        value: Any
        if wire == 0:
            value, i = _varint(data, i, where)
        elif wire == 2:
            size, i = _varint(data, i, where)
            if i + size > len(data):
                raise ApiError.bad_request(f"protobuf body: {where}: field {number} runs past "
                                           "the end")
            value, i = data[i:i + size], i + size
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
            if i + size > len(data):
                raise ApiError.bad_request(f"protobuf body: {where}: field {number} truncated")
            value, i = int.from_bytes(data[i:i + size], "little"), i + size
        else:
            raise ApiError.bad_request(f"protobuf body: {where}: wire type {wire} is not "
                                       "supported")
        out.append((number, wire, value))
    return out


def _signed(value: int) -> int:
    # int64 and int32 are two's complement varints: the top bit makes one negative
    return value - (1 << 64) if value >= 1 << 63 else value


def _text(value: bytes, where: str) -> str:
    try:
        return value.decode()
    except UnicodeDecodeError:
        raise ApiError.bad_request(f"protobuf body: {where}: not UTF-8") from None


def _time(data: bytes, where: str, micro: bool) -> str | None:
    parts = {n: v for n, w, v in _fields(data, where) if w == 0}
    seconds, nanos = _signed(parts.get(1, 0)), parts.get(2, 0)
    if seconds == 0 and nanos == 0:
        return None  # Go's zero Time: JSON null
    try:
        t = dt.datetime.fromtimestamp(seconds, dt.UTC)
    except (OverflowError, OSError, ValueError):
        raise ApiError.bad_request(f"protobuf body: {where}: time out of range") from None
    if micro:
        return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{nanos // 1000:06d}Z"
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def _special(kind: str, value: Any, wire: int, where: str) -> Any:
    """A value of a scalar or well-known type, as JSON has it."""
    if kind in ("i", "b"):
        if wire != 0:
            raise ApiError.bad_request(f"protobuf body: {where}: expected a varint")
        return bool(value) if kind == "b" else _signed(value)
    if wire != 2:
        raise ApiError.bad_request(f"protobuf body: {where}: expected bytes")
    if kind == "s":
        return _text(value, where)
    if kind == "y":
        return base64.b64encode(value).decode()
    if kind in ("Time", "MicroTime"):
        return _time(value, where, kind == "MicroTime")
    if kind == "Quantity":
        found = [v for n, w, v in _fields(value, where) if n == 1 and w == 2]
        return _text(found[-1], where) if found else "0"
    if kind == "IntOrString":
        parts = {n: v for n, w, v in _fields(value, where) if (w == 2) == (n == 3)}
        if parts.get(1, 0) == 0:
            return _signed(parts.get(2, 0))
        return _text(parts.get(3, b""), where)
    if kind == "FieldsV1":
        raw = next((v for n, w, v in _fields(value, where) if n == 1 and w == 2), b"{}")
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise ApiError.bad_request(f"protobuf body: {where}: not JSON") from None
    if kind == "strings":
        return [_text(v, where) for n, w, v in _fields(value, where) if n == 1 and w == 2]
    return _message(kind, value, where)


def _zero(wire: int, value: Any, depth: int = 0) -> bool:
    """A value that Go sends for a field left unset: 0, "", or a message of such (a
    status struct with a zero Time in it); depth-capped."""
    if wire != 2:
        return value == 0
    if not value:
        return True
    if depth > 8:
        return False
    try:
        return all(_zero(w, v, depth + 1) for _n, w, v in _fields(value, ""))
    except ApiError:
        return False  # not a message: a string with something in it


def _message(name: str, data: bytes, where: str) -> dict[str, Any]:
    schema = MESSAGES[name]
    out: dict[str, Any] = {}
    for number, wire, value in _fields(data, where):
        field = schema.get(number)
        if field is None or field.kind == "-":
            if _zero(wire, value):
                continue  # Go sends unset non-pointer fields as zeros
            what = f" ({field.name})" if field is not None else ""
            raise ApiError.bad_request(
                f"protobuf body: {where}: field {number}{what} of {name} is not supported by "
                f"this server: send the object as application/json")
        path = f"{where}.{field.name}"
        if field.kind.startswith("{"):
            if wire != 2:
                raise ApiError.bad_request(f"protobuf body: {path}: expected a map entry")
            entry = {n: (w, v) for n, w, v in _fields(value, path)}
            if 1 in entry and entry[1][0] != 2:
                raise ApiError.bad_request(f"protobuf body: {path}: a map key must be a "
                                           "string")
            key = _text(entry[1][1], path) if 1 in entry else ""
            w, v = entry.get(2, (2, b""))
            out.setdefault(field.name, {})[key] = _special(field.kind[1:-1], v, w, path)
            continue
        decoded = _special(field.kind, value, wire, path)
        if field.inline:
            out.update(decoded)
            continue
        if field.repeated:
            out.setdefault(field.name, []).append(decoded)
            continue
        if decoded is None or (field.kind in SCALARS and not field.pointer
                               and decoded in ("", 0, False)):
            continue
        out[field.name] = decoded
    return out


def decode(body: bytes) -> dict[str, Any]:
    """A protobuf body as the JSON object it stands for.  ApiError 415 for a kind not
    read here, 400 for bytes that are not a body."""
    if not body.startswith(MAGIC):
        raise ApiError.bad_request("protobuf body: it does not start with the k8s\\0 envelope")
    envelope = {n: v for n, w, v in _fields(body[len(MAGIC):], "Unknown") if w == 2}
    type_meta = _message("TypeMeta", envelope.get(1, b""), "Unknown.typeMeta")
    api_version, kind = type_meta.get("apiVersion", ""), type_meta.get("kind", "")
    message = kind_message(api_version, kind)
    if message is None:
        raise ApiError(415, "UnsupportedMediaType", f"{MEDIA_TYPE} is not read for "
                       f"{kind or 'this body'} ({api_version}): send application/json")
    obj = _message(message, envelope.get(2, b""), kind)
    return {"apiVersion": api_version, "kind": kind, **obj}


# --- writing ---------------------------------------------------------------------------------


def put_varint(out: bytearray, value: int) -> None:
    value &= (1 << 64) - 1
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return


def put_bytes(out: bytearray, number: int, data: bytes) -> None:
    put_varint(out, number << 3 | 2)
    put_varint(out, len(data))
    out += data


def put_int(out: bytearray, number: int, value: int) -> None:
    put_varint(out, number << 3)
    put_varint(out, value)


def _encode_time(value: Any, where: str) -> bytes:
    try:
        t = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError as exc:
        raise EncodeError(f"{where}: not a time: {value!r}") from exc
    seconds = int(t.timestamp())
    out = bytearray()
    put_int(out, 1, seconds)
    if t.microsecond:
        put_int(out, 2, t.microsecond * 1000)
    return bytes(out)


def _encode_value(out: bytearray, number: int, kind: str, value: Any, where: str) -> None:
    if kind == "s":
        if not isinstance(value, str):
            raise EncodeError(f"{where}: expected a string")
        put_bytes(out, number, value.encode())
    elif kind == "i":
        if isinstance(value, bool) or not isinstance(value, int):
            raise EncodeError(f"{where}: expected an integer")
        put_int(out, number, value)
    elif kind == "b":
        if not isinstance(value, bool):
            raise EncodeError(f"{where}: expected a bool")
        put_int(out, number, int(value))
    elif kind == "y":
        try:
            put_bytes(out, number, base64.b64decode(value, validate=True))
        except (binascii.Error, TypeError, ValueError) as exc:
            raise EncodeError(f"{where}: not base64") from exc
    elif kind in ("Time", "MicroTime"):
        put_bytes(out, number, _encode_time(value, where))
    elif kind == "Quantity":
        inner = bytearray()
        put_bytes(inner, 1, str(value).encode())
        put_bytes(out, number, bytes(inner))
    elif kind == "IntOrString":
        inner = bytearray()
        if isinstance(value, int) and not isinstance(value, bool):
            put_int(inner, 1, 0)
            put_int(inner, 2, value)
        else:
            put_int(inner, 1, 1)
            put_bytes(inner, 3, str(value).encode())
        put_bytes(out, number, bytes(inner))
    elif kind == "FieldsV1":
        inner = bytearray()
        put_bytes(inner, 1, orjson.dumps(value))
        put_bytes(out, number, bytes(inner))
    elif kind == "strings":
        inner = bytearray()
        for item in value or []:
            put_bytes(inner, 1, str(item).encode())
        put_bytes(out, number, bytes(inner))
    elif kind == "-":
        raise EncodeError(f"{where}: not carried as protobuf here")
    else:
        if not isinstance(value, dict):
            raise EncodeError(f"{where}: expected an object")
        put_bytes(out, number, _encode_message(kind, value, where))


@functools.cache
def _in_order(message: str) -> tuple[ProtoField, ...]:
    """A message's fields in number order, as Go writes them."""
    return tuple(MESSAGES[message][n] for n in sorted(MESSAGES[message]))


def _encode_message(message: str, obj: dict[str, Any], where: str,
                    type_meta: bool = False) -> bytes:
    used: set[str] = {"apiVersion", "kind"} if type_meta else set()
    out = bytearray()
    for field in _in_order(message):
        number = field.number
        path = f"{where}.{field.name}"
        if field.inline:
            names = members(field.kind).keys()
            part = {k: v for k, v in obj.items() if k in names}
            used |= names
            if part:
                put_bytes(out, number, _encode_message(field.kind, part, path))
            continue
        used.add(field.name)
        value = obj.get(field.name)
        if value is None:
            continue
        if field.kind.startswith("{"):
            if not isinstance(value, dict):
                raise EncodeError(f"{path}: expected a map")
            for key in sorted(value):
                entry = bytearray()
                put_bytes(entry, 1, str(key).encode())
                _encode_value(entry, 2, field.kind[1:-1], value[key], f"{path}[{key}]")
                put_bytes(out, number, bytes(entry))
        elif field.repeated:
            if not isinstance(value, list):
                raise EncodeError(f"{path}: expected a list")
            for i, item in enumerate(value):
                _encode_value(out, number, field.kind, item, f"{path}[{i}]")
        else:
            _encode_value(out, number, field.kind, value, path)
    extra = set(obj) - used
    if extra:
        raise EncodeError(f"{where}: {', '.join(sorted(extra))} not in {message}")
    return bytes(out)


def _envelope(api_version: str, kind: str, raw: bytes) -> bytes:
    meta = bytearray()
    put_bytes(meta, 1, api_version.encode())
    put_bytes(meta, 2, kind.encode())
    unknown = bytearray()
    put_bytes(unknown, 1, bytes(meta))
    put_bytes(unknown, 2, raw)
    put_bytes(unknown, 3, b"")
    put_bytes(unknown, 4, b"")
    return MAGIC + bytes(unknown)


def encode(obj: dict[str, Any]) -> bytes:
    """An object as a protobuf body; EncodeError if its kind or a field has no message."""
    api_version, kind = obj.get("apiVersion", ""), obj.get("kind", "")
    message = kind_message(api_version, kind)
    if message is None:
        raise EncodeError(f"no protobuf message for {kind} ({api_version})")
    return _envelope(api_version, kind, _encode_message(message, obj, kind, type_meta=True))


def encode_list(obj: dict[str, Any]) -> bytes:
    """A list (``PodList`` ...) as a protobuf body: ListMeta, then each item's message."""
    api_version, list_kind = obj.get("apiVersion", ""), obj.get("kind", "")
    message = kind_message(api_version, list_kind.removesuffix("List"))
    if message is None or not list_kind.endswith("List"):
        raise EncodeError(f"no protobuf message for {list_kind} ({api_version})")
    out = bytearray()
    out += _encode_list_meta(obj.get("metadata") or {})
    for i, item in enumerate(obj.get("items") or []):
        put_bytes(out, 2, _encode_message(message, item, f"items[{i}]", type_meta=True))
    return _envelope(api_version, list_kind, bytes(out))


def encode_watch_event(event_type: str, obj: dict[str, Any]) -> bytes:
    """One event of a protobuf watch stream, as kube-apiserver frames it: four bytes of
    big-endian length, then a metav1.WatchEvent without envelope (its stream serializer is
    the raw one), whose object is the RawExtension of the object's own body (envelope
    included).  EncodeError as encode()."""
    raw = bytearray()
    put_bytes(raw, 1, encode(obj))
    event = bytearray()
    put_bytes(event, 1, event_type.encode())
    put_bytes(event, 2, bytes(raw))
    return len(event).to_bytes(4, "big") + bytes(event)


def _encode_list_meta(meta: dict[str, Any]) -> bytes:
    out = bytearray()
    put_bytes(out, 1, _encode_message("ListMeta", meta, "metadata"))
    return bytes(out)

