"""Protobuf bodies for every kind served: each model field has its number in the tables,
and an object with every field set survives the round trip through Kubernetes' wire
format (the ``k8s\\0`` envelope around ``runtime.Unknown``)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

from nodeagent.api import protobuf as pb
from nodeagent.api.status import ApiError
from nodeagent.api.strategicpatch import _value_model
from nodeagent.objects.kinds import SERVED, Resource
from nodeagent.objects.protoschema import MESSAGES, members


def _missing(model: type[BaseModel], message: str, where: str, seen: set[str]) -> list[str]:
    key = f"{model.__name__}:{message}"
    if key in seen:
        return []
    seen.add(key)
    fields = members(message)
    gaps: list[str] = []
    for name, info in model.model_fields.items():
        json_name = info.alias or name
        if json_name in ("apiVersion", "kind") and where.count(".") == 0:
            continue
        f = fields.get(json_name)
        if f is None:
            gaps.append(f"{where}.{json_name}")
            continue
        sub = _value_model(info.annotation)
        if sub is not None and f.kind in MESSAGES:
            gaps += _missing(sub, f.kind, f"{where}.{json_name}", seen)
    return gaps


@pytest.mark.parametrize("res", SERVED, ids=lambda r: r.api_version + "/" + r.kind)
def test_every_field_of_the_model_has_a_protobuf_number(res: Resource) -> None:
    message = pb.kind_message(res.api_version, res.kind)
    assert message is not None, f"{res.kind} has no protobuf message"
    gaps = [g for g in _missing(res.model, message, res.kind, set())
            if not g.endswith(".defaultMode")]  # ours also on projections: Kubernetes' not
    assert not gaps, gaps


def _sample(kind: str, depth: int) -> Any:
    if kind == "s":
        return "x"
    if kind == "i":
        return -7 if depth % 2 else 42
    if kind == "b":
        return True
    if kind == "y":
        return "aGVsbG8="
    if kind == "Time":
        return "2026-12-06T11:24:39Z"
    if kind == "MicroTime":
        return "2026-12-06T11:24:39.123456Z"
    if kind == "Quantity":
        return "250m"
    if kind == "IntOrString":
        return "http" if depth % 2 else 8080
    if kind == "FieldsV1":
        return {"f:metadata": {"f:labels": {}}}
    if kind == "strings":
        return ["a", "b"]
    if kind.startswith("{"):
        return {"k1": _sample(kind[1:-1], depth), "k2": _sample(kind[1:-1], depth + 1)}
    return _full(kind, depth + 1)


def _full(message: str, depth: int) -> dict[str, Any]:
    """Every readable field of a message set (nesting cut at a depth)."""
    out: dict[str, Any] = {}
    if depth > 12:
        return out
    for f in MESSAGES[message].values():
        if f.kind == "-":
            continue
        if f.inline:
            out.update(_full(f.kind, depth))
            continue
        value = _sample(f.kind, depth)
        out[f.name] = [value, _sample(f.kind, depth + 1)] if f.repeated else value
    return out


@pytest.mark.parametrize("res", SERVED, ids=lambda r: r.api_version + "/" + r.kind)
def test_an_object_with_every_field_survives_the_round_trip(res: Resource) -> None:
    message = pb.kind_message(res.api_version, res.kind)
    assert message is not None
    obj = {"apiVersion": res.api_version, "kind": res.kind, **_full(message, 0)}
    body = pb.encode(obj)
    assert body.startswith(b"k8s\x00")
    assert pb.decode(body) == obj


def test_a_list_is_listmeta_and_its_items() -> None:
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "a", "namespace": "d"}}
    body = pb.encode_list({"apiVersion": "v1", "kind": "PodList",
                           "metadata": {"resourceVersion": "12"}, "items": [pod, pod]})
    unknown = pb._message("Unknown", body[4:], "Unknown")
    assert unknown["typeMeta"] == {"apiVersion": "v1", "kind": "PodList"}


def test_zeros_of_go_non_pointer_fields_read_as_absent_and_pointers_keep_them() -> None:
    # Go sends every non-pointer field: "" and 0 and false there mean "not set".
    obj = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
           "spec": {"replicas": 0, "minReadySeconds": 0, "paused": False,
                    "template": {"spec": {"hostNetwork": False, "restartPolicy": ""}}}}
    back = pb.decode(pb.encode(obj))
    assert back["spec"] == {"replicas": 0, "template": {"spec": {}}}


def test_a_field_the_server_does_not_read_is_refused_by_name() -> None:
    out = bytearray()
    spec = bytearray()
    pb.put_bytes(spec, 34, b"\x0a\x01x")  # ephemeralContainers, not read here
    pod = bytearray()
    pb.put_bytes(pod, 2, bytes(spec))
    body = pb._envelope("v1", "Pod", bytes(pod))
    out += body
    with pytest.raises(ApiError) as err:
        pb.decode(bytes(out))
    assert err.value.code == 400 and "ephemeralContainers" in err.value.message


@pytest.mark.parametrize("body", [b"", b"k8s\x00\x0a", b"k8s\x00\x0a\x05\x0a\x02v1",
                                  b"nope", b"k8s\x00\x12\xff\xff\xff\xff\x0f"])
def test_broken_bodies_are_400s(body: bytes) -> None:
    with pytest.raises(ApiError) as err:
        pb.decode(body)
    assert err.value.code in (400, 415)


def test_an_unknown_kind_is_a_415_naming_it() -> None:
    with pytest.raises(ApiError) as err:
        pb.decode(pb._envelope("example.com/v1", "Widget", b""))
    assert err.value.code == 415 and "Widget" in err.value.message


def test_encoding_refuses_what_it_cannot_carry() -> None:
    with pytest.raises(pb.EncodeError):
        pb.encode({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"},
                   "notAField": 1})


