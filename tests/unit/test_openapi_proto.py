"""The OpenAPI v2 document as gnostic's protobuf: every definition and path is there,
with the fields kube-openapi's models read (type, properties, $ref, descriptions and the
x-kubernetes extensions, whose Any carries YAML)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from nodeagent.api import openapiproto
from nodeagent.api.openapi import _build
from nodeagent.api.protobuf import _fields


def fields(data: bytes) -> dict[int, list[Any]]:
    out: dict[int, list[Any]] = {}
    for number, _, value in _fields(data, "test"):
        out.setdefault(number, []).append(value)
    return out


def named(data: bytes) -> tuple[str, bytes]:
    f = fields(data)
    return f[1][0].decode(), f[2][0]


def test_every_definition_and_path_is_written_with_what_explain_reads() -> None:
    doc = _build(False, None)
    top = fields(openapiproto.encode_document(doc))
    assert top[1] == [b"2.0"]
    definitions = dict(named(d) for d in fields(top[9][0])[1])
    assert list(definitions) == list(doc["definitions"])
    paths = dict(named(p) for p in fields(top[8][0])[2])
    assert list(paths) == list(doc["paths"])

    pod = fields(definitions["io.k8s.api.core.v1.Pod"])
    assert fields(pod[22][0])[1] == [b"object"]  # type
    assert pod[4][0].decode().startswith("A group of containers")  # description
    props = dict(named(p) for p in fields(pod[25][0])[1])
    assert {"apiVersion", "kind", "metadata", "spec", "status"} <= set(props)
    assert fields(props["spec"])[1] == [b"#/definitions/io.k8s.api.core.v1.PodSpec"]
    (gvk,) = [named(v) for v in pod[31]]
    assert gvk[0] == "x-kubernetes-group-version-kind"
    assert orjson.loads(fields(gvk[1])[2][0]) == [{"group": "", "kind": "Pod", "version": "v1"}]

    # An operation keeps its id, its query parameters and its responses.
    item = fields(paths["/api/v1/namespaces/{namespace}/pods/{name}"])
    get = fields(item[2][0])
    assert get[5] == [b"readCoreV1NamespacedPod"]
    code, response = named(fields(get[9][0])[1][0])
    assert code == "200"
    schema = fields(fields(fields(response)[1][0])[2][0])[1][0]  # Response.schema.schema
    assert fields(schema)[1] == [b"#/definitions/io.k8s.api.core.v1.Pod"]


def test_a_key_gnostic_has_no_field_for_is_an_error_not_a_silent_loss() -> None:
    doc = {"swagger": "2.0", "info": {}, "paths": {}, "definitions": {
        "x": {"type": "object", "nullable": True}}}
    with pytest.raises(openapiproto.UnknownKey, match="x: nullable"):
        openapiproto.encode_document(doc)
