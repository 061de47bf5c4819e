"""The OpenAPI v2 document as protobuf (gnostic's ``openapi.v2.Document``), which
client-go's ``OpenAPISchema()`` asks for: ``kubectl explain --output=plaintext-openapiv2``
and the tools built on kube-openapi's v2 models read nothing else.

It is written from the same JSON document /openapi/v2 serves, field by field as
gnostic's OpenAPIv2.proto numbers them, in the document's order (a protobuf reader takes
fields in any order).  Values that gnostic keeps as ``Any`` (defaults,
enums, examples, the ``x-kubernetes-*`` extensions) carry their YAML text, as gnostic
itself fills them; JSON is YAML.  A key the tables do not know is an error here, so the
two forms of the document cannot silently differ.
"""

from __future__ import annotations

import struct
from typing import Any

import orjson

from nodeagent.api.protobuf import put_bytes, put_int, put_varint

__all__ = ["MEDIA_TYPE", "encode_document"]

MEDIA_TYPE = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"

# Schema's scalar fields: JSON key -> (number, kind).  s: string, b: bool, i: int64,
# d: double, S: repeated string, A: Any, R: repeated Any.
_SCHEMA = {
    "$ref": (1, "s"), "format": (2, "s"), "title": (3, "s"), "description": (4, "s"),
    "default": (5, "A"), "multipleOf": (6, "d"), "maximum": (7, "d"),
    "exclusiveMaximum": (8, "b"), "minimum": (9, "d"), "exclusiveMinimum": (10, "b"),
    "maxLength": (11, "i"), "minLength": (12, "i"), "pattern": (13, "s"),
    "maxItems": (14, "i"), "minItems": (15, "i"), "uniqueItems": (16, "b"),
    "maxProperties": (17, "i"), "minProperties": (18, "i"), "required": (19, "S"),
    "enum": (20, "R"), "discriminator": (26, "s"), "readOnly": (27, "b"), "example": (30, "A"),
}
_SCHEMA_VENDOR = 31
# Non-body parameters (query, path, header, formData): the field numbers of each kind's
# sub-schema, after its own first fields.
_PARAM_IN = {"header": 1, "formData": 2, "query": 3, "path": 4}
_PARAM_COMMON = ("required", "in", "description", "name")
_PARAM_REST = ("type", "format", "items", "collectionFormat", "default", "maximum",
               "exclusiveMaximum", "minimum", "exclusiveMinimum", "maxLength", "minLength",
               "pattern", "maxItems", "minItems", "uniqueItems", "enum", "multipleOf")
_PARAM_KIND = {"required": "b", "in": "s", "description": "s", "name": "s",
               "allowEmptyValue": "b", "type": "s", "format": "s", "collectionFormat": "s",
               "default": "A", "maximum": "d", "exclusiveMaximum": "b", "minimum": "d",
               "exclusiveMinimum": "b", "maxLength": "i", "minLength": "i", "pattern": "s",
               "maxItems": "i", "minItems": "i", "uniqueItems": "b", "enum": "R",
               "multipleOf": "d"}
_OPERATION = {"tags": (1, "S"), "summary": (2, "s"), "description": (3, "s"),
              "operationId": (5, "s"), "produces": (6, "S"), "consumes": (7, "S"),
              "schemes": (10, "S"), "deprecated": (11, "b")}
_METHODS = {"get": 2, "put": 3, "post": 4, "delete": 5, "options": 6, "head": 7, "patch": 8}


class UnknownKey(ValueError):
    """A key of the JSON document that gnostic's message has no field for."""


def _message(fields: list[tuple[int, bytes]]) -> bytes:
    out = bytearray()
    for number, data in fields:
        put_bytes(out, number, data)
    return bytes(out)


def _any(value: Any) -> bytes:
    return _message([(2, orjson.dumps(value))])  # Any.yaml


def _scalar(out: bytearray, number: int, kind: str, value: Any, where: str) -> None:
    if kind == "s":
        put_bytes(out, number, str(value).encode())
    elif kind in ("b", "i"):
        put_int(out, number, int(value))
    elif kind == "d":
        put_varint(out, number << 3 | 1)
        out += struct.pack("<d", float(value))
    elif kind == "S":
        for item in value:
            put_bytes(out, number, str(item).encode())
    elif kind == "A":
        put_bytes(out, number, _any(value))
    elif kind == "R":
        for item in value:
            put_bytes(out, number, _any(item))
    else:  # pragma: no cover - the tables above name only these kinds
        raise UnknownKey(f"{where}: kind {kind}")


def _vendor(out: bytearray, number: int, key: str, value: Any) -> None:
    put_bytes(out, number, _message([(1, key.encode()), (2, _any(value))]))


def _named(name: str, value: bytes) -> bytes:
    return _message([(1, name.encode()), (2, value)])


def _schema(schema: dict[str, Any], where: str) -> bytes:
    out = bytearray()
    for key, value in schema.items():
        if key in _SCHEMA:
            number, kind = _SCHEMA[key]
            _scalar(out, number, kind, value, f"{where}.{key}")
        elif key == "additionalProperties":
            item = (_message([(1, _schema(value, f"{where}.{key}"))]) if isinstance(value, dict)
                    else bytes([2 << 3, int(bool(value))]))
            put_bytes(out, 21, item)
        elif key == "type":
            put_bytes(out, 22, _message([(1, t.encode()) for t in
                                         ([value] if isinstance(value, str) else value)]))
        elif key == "items":
            items = value if isinstance(value, list) else [value]
            put_bytes(out, 23, _message([(1, _schema(s, f"{where}.items")) for s in items]))
        elif key == "allOf":
            for i, s in enumerate(value):
                put_bytes(out, 24, _schema(s, f"{where}.allOf[{i}]"))
        elif key == "properties":
            put_bytes(out, 25, _message([(1, _named(name, _schema(s, f"{where}.{name}")))
                                         for name, s in value.items()]))
        elif key.startswith("x-"):
            _vendor(out, _SCHEMA_VENDOR, key, value)
        else:
            raise UnknownKey(f"{where}: {key}")
    return bytes(out)


def _parameter(param: dict[str, Any], where: str) -> bytes:
    """A ParametersItem: a $ref, a body parameter, or a non-body one by where it goes."""
    if "$ref" in param:
        return _message([(2, _message([(1, param["$ref"].encode())]))])
    out = bytearray()
    if param.get("in") == "body":
        for key, number in (("description", 1), ("name", 2), ("in", 3)):
            if key in param:
                put_bytes(out, number, str(param[key]).encode())
        if "required" in param:
            put_int(out, 4, int(bool(param["required"])))
        if "schema" in param:
            put_bytes(out, 5, _schema(param["schema"], f"{where}.schema"))
        extra = set(param) - {"description", "name", "in", "required", "schema"}
        if extra:
            raise UnknownKey(f"{where}: {sorted(extra)[0]}")
        return _message([(1, _message([(1, bytes(out))]))])
    place = param.get("in")
    if place not in _PARAM_IN:
        raise UnknownKey(f"{where}.in: {place!r}")
    order = [*_PARAM_COMMON, *(("allowEmptyValue",) if place in ("query", "formData")
                               else ()), *_PARAM_REST]
    for key in param:
        if key not in order and not key.startswith("x-"):
            raise UnknownKey(f"{where}: {key}")
    for number, key in enumerate(order, 1):
        if key not in param:
            continue
        if key == "items":
            raise UnknownKey(f"{where}: items")  # no array parameters are served
        _scalar(out, number, _PARAM_KIND[key], param[key], f"{where}.{key}")
    for key, value in param.items():
        if key.startswith("x-"):
            _vendor(out, len(order) + 1, key, value)
    sub = _message([(_PARAM_IN[place], bytes(out))])
    return _message([(1, _message([(2, sub)]))])


def _parameters(out: bytearray, number: int, params: list[Any], where: str) -> None:
    for i, p in enumerate(params):
        put_bytes(out, number, _parameter(p, f"{where}.parameters[{i}]"))


def _responses(responses: dict[str, Any], where: str) -> bytes:
    named = []
    for code, response in responses.items():
        body = bytearray()
        for key, value in response.items():
            if key == "description":
                put_bytes(body, 1, str(value).encode())
            elif key == "schema":
                put_bytes(body, 2, _message([(1, _schema(value, f"{where}.{code}.schema"))]))
            else:
                raise UnknownKey(f"{where}.{code}: {key}")
        named.append((1, _named(code, _message([(1, bytes(body))]))))
    return _message(named)


def _operation(op: dict[str, Any], where: str) -> bytes:
    out = bytearray()
    for key, value in op.items():
        if key in _OPERATION:
            number, kind = _OPERATION[key]
            _scalar(out, number, kind, value, f"{where}.{key}")
        elif key == "parameters":
            _parameters(out, 8, value, where)
        elif key == "responses":
            put_bytes(out, 9, _responses(value, f"{where}.responses"))
        elif key.startswith("x-"):
            _vendor(out, 13, key, value)
        else:
            raise UnknownKey(f"{where}: {key}")
    return bytes(out)


def _path_item(item: dict[str, Any], where: str) -> bytes:
    out = bytearray()
    for key, value in item.items():
        if key in _METHODS:
            put_bytes(out, _METHODS[key], _operation(value, f"{where}.{key}"))
        elif key == "parameters":
            _parameters(out, 9, value, where)
        elif key.startswith("x-"):
            _vendor(out, 10, key, value)
        else:
            raise UnknownKey(f"{where}: {key}")
    return bytes(out)


def _security_definitions(defs: dict[str, Any]) -> bytes:
    named = []
    for name, d in defs.items():
        if d.get("type") != "apiKey" or set(d) - {"type", "name", "in", "description"}:
            raise UnknownKey(f"securityDefinitions.{name}: only apiKey schemes are written")
        key = _message([(n, str(d[k]).encode()) for n, k in ((1, "type"), (2, "name"),
                                                               (3, "in"), (4, "description"))
                        if k in d])
        named.append((1, _named(name, _message([(2, key)]))))
    return _message(named)


def encode_document(doc: dict[str, Any]) -> bytes:
    """The v2 JSON document as an ``openapi.v2.Document``; UnknownKey for what gnostic
    has no field for."""
    out = bytearray()
    put_bytes(out, 1, doc["swagger"].encode())
    info = doc.get("info") or {}
    put_bytes(out, 2, _message([(n, str(info[k]).encode()) for n, k in ((1, "title"),
                                                                       (2, "version"),
                                                                       (3, "description"))
                                if k in info]))
    paths = doc.get("paths") or {}
    put_bytes(out, 8, _message([(2, _named(path, _path_item(item, path)))
                                for path, item in paths.items()]))
    put_bytes(out, 9, _message([(1, _named(name, _schema(s, name)))
                                for name, s in (doc.get("definitions") or {}).items()]))
    for requirement in doc.get("security") or []:
        put_bytes(out, 12, _message([(1, _named(name, _message([(1, s.encode()) for s in v])))
                                     for name, v in requirement.items()]))
    if doc.get("securityDefinitions"):
        put_bytes(out, 13, _security_definitions(doc["securityDefinitions"]))
    extra = set(doc) - {"swagger", "info", "paths", "definitions", "security",
                        "securityDefinitions"}
    if extra:
        raise UnknownKey(f"document: {sorted(extra)[0]}")
    return bytes(out)
