"""Untrusted YAML and JSON within caps: a few hundred bytes cannot cost seconds or
gigabytes, deep nesting is a clear error rather than a RecursionError, and a JSON patch
cannot double the object on each operation."""

from __future__ import annotations

import json

import pytest

from nodeagent.api.objects import MAX_JSON_PATCH_OPS, json_patch
from nodeagent.api.status import ApiError
from nodeagent.objects.yamljson import MAX_DEPTH, DocumentError, load_json, load_yaml

LAUGHS = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"{b}: &{b} [{', '.join([f'*{a}'] * 9)}]\n" for a, b in zip("abcdefgh", "bcdefghi", strict=True))


def test_an_alias_bomb_is_refused_at_once() -> None:
    assert len(LAUGHS) < 600
    with pytest.raises(DocumentError, match="expands to more than"):
        load_yaml(LAUGHS, max_expanded_bytes=3 << 20)


def test_anchors_that_expand_modestly_still_work() -> None:
    docs = load_yaml("base: &b {image: busybox, args: [a, b]}\none: *b\ntwo: *b\n",
                     max_expanded_bytes=1000)
    assert docs == [{"base": {"image": "busybox", "args": ["a", "b"]},
                     "one": {"image": "busybox", "args": ["a", "b"]},
                     "two": {"image": "busybox", "args": ["a", "b"]}}]


def test_an_alias_counts_what_it_repeats_toward_the_cap() -> None:
    text = "s: &s " + "x" * 100 + "\nl: [" + ", ".join(["*s"] * 20) + "]\n"
    load_yaml(text, max_expanded_bytes=5000)
    with pytest.raises(DocumentError, match="expands"):
        load_yaml(text, max_expanded_bytes=1500)


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 5000])
def test_nesting_deeper_than_the_cap_is_a_clear_error(depth: int) -> None:
    with pytest.raises(DocumentError, match=r"nested deeper|nesting depth"):
        load_yaml("[" * depth + "]" * depth, max_expanded_bytes=1 << 20)
    with pytest.raises(DocumentError, match=r"nested deeper|depth limit"):
        load_json("[" * depth + "]" * depth)


def test_an_alias_to_a_deep_anchor_counts_its_depth() -> None:
    deep = "[" * 300 + "]" * 300
    with pytest.raises(DocumentError, match="nested deeper"):
        load_yaml(f"a: &a {deep}\nb: " + "[" * 150 + "*a" + "]" * 150, max_expanded_bytes=1 << 20)


def test_json_within_the_cap_reads() -> None:
    assert load_json("[" * 100 + "]" * 100) is not None


def _apply(patch: list, obj: dict) -> dict:
    return json_patch(patch)(obj)


def test_a_doubling_copy_patch_stops_at_the_growth_cap() -> None:
    obj = {"metadata": {"name": "x"}, "data": {"a": "y" * 500}}
    ops = [{"op": "add", "path": "/data/b", "value": ["z" * 400]}]
    ops += [{"op": "copy", "from": "/data", "path": f"/data/c{i}"} for i in range(30)]
    with pytest.raises(ApiError) as err:
        _apply(ops, obj)
    assert err.value.code == 422 and "grow" in err.value.message
    assert obj == {"metadata": {"name": "x"}, "data": {"a": "y" * 500}}  # untouched


def test_too_many_patch_operations_are_refused() -> None:
    ops = [{"op": "test", "path": "/metadata/name", "value": "x"}] * (MAX_JSON_PATCH_OPS + 1)
    with pytest.raises(ApiError) as err:
        json_patch(ops)
    assert err.value.code == 422


def test_an_ordinary_patch_applies() -> None:
    out = _apply([{"op": "copy", "from": "/metadata/name", "path": "/metadata/generateName"},
                  {"op": "replace", "path": "/spec/replicas", "value": 3}],
                 {"metadata": {"name": "x"}, "spec": {"replicas": 1}})
    assert out == {"metadata": {"name": "x", "generateName": "x"}, "spec": {"replicas": 3}}


def test_wide_json_is_counted_before_it_is_parsed() -> None:
    from nodeagent.objects.yamljson import count_values
    wide = b"[" + b",".join([b"[]"] * 1000) + b"]"
    assert count_values(wide, 10_000) == 1000 + 999 + 1
    with pytest.raises(DocumentError, match="more than 500 values"):
        load_json(wide, max_values=500)
    # Brackets and commas inside strings, escaped quotes included, are text.
    text = json.dumps({"a": '[{,"\\' * 1000, "b": [1, 2]}).encode()
    assert count_values(text, 10_000) == 1 + 1 + 1 + 1  # {, the comma, [ and its comma
    assert load_json(text, max_values=10)["b"] == [1, 2]
