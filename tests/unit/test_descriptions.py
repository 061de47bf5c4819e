"""kubectl explain has something to say about every field and every kind served: each
property of the OpenAPI documents carries a description, and no entry of the tables
describes a field that does not exist (a renamed field would silently lose its text)."""

from __future__ import annotations

from nodeagent.api.openapi import _build
from nodeagent.objects.descriptions import DESCRIPTIONS, TYPES


def test_every_property_and_kind_is_described() -> None:
    definitions = _build(False, None)["definitions"]
    undescribed = [f"{name.rsplit('.', 1)[1]}.{prop}" for name, schema in definitions.items()
                   if not name.endswith("List")
                   for prop, field in (schema.get("properties") or {}).items()
                   if not field.get("description")]
    assert undescribed == []
    for name, schema in definitions.items():
        if schema.get("x-kubernetes-group-version-kind"):
            assert schema.get("description"), name


def test_no_entry_describes_a_field_that_does_not_exist() -> None:
    definitions = _build(False, None)["definitions"]
    fields = {f"{name.rsplit('.', 1)[1]}.{prop}" for name, schema in definitions.items()
              for prop in schema.get("properties") or {}}
    types = {name.rsplit(".", 1)[1] for name in definitions}
    stale = [key for key in DESCRIPTIONS if not key.startswith("*.") and key not in fields]
    assert stale == []
    assert [t for t in TYPES if t not in types] == []
