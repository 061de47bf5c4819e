"""Kubernetes' protobuf bodies, read into the JSON the handlers take.

kubectl sends some requests as ``application/vnd.kubernetes.protobuf``: the four bytes
``k8s\\0`` and a ``runtime.Unknown`` (its TypeMeta, and the object's own message as
``raw``).  The wire format is protobuf's (varints, length-delimited fields); what each
field is comes from a table per message, written from the published ``.proto`` files
of k8s.io/api (generated.proto), field numbers as there.  Only the kinds in SCHEMAS are
read; any other is a 415 naming it, as before.

Bodies are capped upstream (3 MiB); nesting is bounded by the tables (no message here
holds itself), a field of the wrong wire type or running past the end is a 400 naming it.
"""

from __future__ import annotations

from typing import Any

from nodeagent.api.status import ApiError

__all__ = ["MEDIA_TYPE", "SCHEMAS", "decode"]

MEDIA_TYPE = "application/vnd.kubernetes.protobuf"
MAGIC = b"k8s\x00"

# message -> {field number: (json name, type, repeated)}; a type is "string", "bool",
# "int", "bytes", "map<string,strings>" or another message of this table.
Field = tuple[str, str, bool]
MESSAGES: dict[str, dict[int, Field]] = {
    "Unknown": {1: ("typeMeta", "TypeMeta", False), 2: ("raw", "bytes", False),
                3: ("contentEncoding", "string", False), 4: ("contentType", "string", False)},
    "TypeMeta": {1: ("apiVersion", "string", False), 2: ("kind", "string", False)},
    "ObjectMeta": {1: ("name", "string", False), 2: ("generateName", "string", False),
                   3: ("namespace", "string", False)},
    "ResourceAttributes": {1: ("namespace", "string", False), 2: ("verb", "string", False),
                           3: ("group", "string", False), 4: ("version", "string", False),
                           5: ("resource", "string", False), 6: ("subresource", "string", False),
                           7: ("name", "string", False)},
    "NonResourceAttributes": {1: ("path", "string", False), 2: ("verb", "string", False)},
    "SelfSubjectAccessReviewSpec": {1: ("resourceAttributes", "ResourceAttributes", False),
                                    2: ("nonResourceAttributes", "NonResourceAttributes", False)},
    "SubjectAccessReviewSpec": {1: ("resourceAttributes", "ResourceAttributes", False),
                                2: ("nonResourceAttributes", "NonResourceAttributes", False),
                                3: ("user", "string", False), 4: ("groups", "string", True),
                                5: ("extra", "map<string,strings>", False),
                                6: ("uid", "string", False)},
    "SelfSubjectRulesReviewSpec": {1: ("namespace", "string", False)},
    "SelfSubjectAccessReview": {1: ("metadata", "ObjectMeta", False),
                                2: ("spec", "SelfSubjectAccessReviewSpec", False)},
    "SubjectAccessReview": {1: ("metadata", "ObjectMeta", False),
                            2: ("spec", "SubjectAccessReviewSpec", False)},
    "LocalSubjectAccessReview": {1: ("metadata", "ObjectMeta", False),
                                 2: ("spec", "SubjectAccessReviewSpec", False)},
    "SelfSubjectRulesReview": {1: ("metadata", "ObjectMeta", False),
                               2: ("spec", "SelfSubjectRulesReviewSpec", False)},
    "SelfSubjectReview": {1: ("metadata", "ObjectMeta", False)},
    "BoundObjectReference": {1: ("kind", "string", False), 2: ("apiVersion", "string", False),
                             3: ("name", "string", False), 4: ("uid", "string", False)},
    "TokenRequestSpec": {1: ("audiences", "string", True),
                         3: ("boundObjectRef", "BoundObjectReference", False),
                         4: ("expirationSeconds", "int", False)},
    "TokenRequest": {1: ("metadata", "ObjectMeta", False), 2: ("spec", "TokenRequestSpec", False)},
    "MapEntry": {1: ("key", "string", False), 2: ("value", "ExtraValue", False)},
    "ExtraValue": {1: ("items", "string", True)},
}
# The top-level kinds read, by apiVersion and kind.
SCHEMAS = {("authorization.k8s.io/v1", k): k for k in
           ("SelfSubjectAccessReview", "SubjectAccessReview", "LocalSubjectAccessReview",
            "SelfSubjectRulesReview")} | {
    ("authentication.k8s.io/v1", "SelfSubjectReview"): "SelfSubjectReview",
    ("authentication.k8s.io/v1", "TokenRequest"): "TokenRequest"}


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


def _message(name: str, data: bytes, where: str) -> dict[str, Any]:
    schema = MESSAGES[name]
    out: dict[str, Any] = {}
    for number, wire, value in _fields(data, where):
        field = schema.get(number)
        if field is None:
            continue  # a field we do not read (newer than our table), as protobuf skips it
        key, kind, repeated = field
        path = f"{where}.{key}"
        if kind in ("int", "bool"):
            if wire != 0:
                raise ApiError.bad_request(f"protobuf body: {path}: expected a varint")
            # int64 and int32 are two's complement varints: the top bit makes one negative
            decoded: Any = bool(value) if kind == "bool" else \
                value - (1 << 64) if value >= 1 << 63 else value
        else:
            if wire != 2:
                raise ApiError.bad_request(f"protobuf body: {path}: expected bytes")
            if kind == "string":
                try:
                    decoded = value.decode()
                except UnicodeDecodeError:
                    raise ApiError.bad_request(f"protobuf body: {path}: not UTF-8") from None
            elif kind == "bytes":
                decoded = value
            elif kind == "map<string,strings>":
                entry = _message("MapEntry", value, path)
                out.setdefault(key, {})[entry.get("key", "")] = \
                    (entry.get("value") or {}).get("items", [])
                continue
            else:
                decoded = _message(kind, value, path)
        if repeated:
            out.setdefault(key, []).append(decoded)
        else:
            out[key] = decoded
    return out


def decode(body: bytes) -> dict[str, Any]:
    """A protobuf body as the JSON object it stands for.  ApiError 415 for a kind not
    read here, 400 for bytes that are not a body."""
    if not body.startswith(MAGIC):
        raise ApiError.bad_request("protobuf body: it does not start with the k8s\\0 envelope")
    unknown = _message("Unknown", body[len(MAGIC):], "Unknown")
    type_meta = unknown.get("typeMeta") or {}
    api_version, kind = type_meta.get("apiVersion", ""), type_meta.get("kind", "")
    schema = SCHEMAS.get((api_version, kind))
    if schema is None:
        raise ApiError(415, "UnsupportedMediaType", f"{MEDIA_TYPE} is read for "
                       f"{', '.join(sorted(k for _, k in SCHEMAS))}, not {kind or 'this body'} "
                       f"({api_version}): send application/json")
    obj = _message(schema, unknown.get("raw", b""), kind)
    return {"apiVersion": api_version, "kind": kind, **obj}
