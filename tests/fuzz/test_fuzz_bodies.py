"""YAML and JSON request bodies, with aliases and depth, at a real agent: never a 5xx,
never a crash, and never the event loop held over 50 ms (a 393-byte alias bomb once held
it 3.6 s; deep nesting gave 500s with 200 KB tracebacks)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

PATHS = ["/api/v1/namespaces/default/configmaps", "/api/v1/namespaces/default/pods",
         "/apis/apps/v1/namespaces/default/deployments", "/api/v1/namespaces"]
SETTINGS = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow,
                                           HealthCheck.function_scoped_fixture])

SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70),
                    st.floats(allow_nan=False), st.text(max_size=30))
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=20)


def _yaml_scalar(v: Any) -> str:
    return json.dumps(v)  # JSON scalars are YAML scalars


@st.composite
def alias_yaml(draw: st.DrawFn) -> str:
    """A document whose anchors are repeated by aliases, level on level (up to a bomb)."""
    levels, fanout = draw(st.integers(1, 12)), draw(st.integers(1, 12))
    leaf = draw(st.text(alphabet="abcxyz", min_size=1, max_size=draw(st.integers(1, 2000))))
    lines = [f"a0: &a0 {json.dumps(leaf)}"]
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * fanout)}]")
    kind = draw(st.sampled_from(["ConfigMap", "Pod", "Deployment"]))
    return (f"apiVersion: v1\nkind: {kind}\nmetadata: {{name: bomb}}\n"
            + "\n".join(lines) + "\n")


@st.composite
def deep(draw: st.DrawFn) -> tuple[str, bytes]:
    depth = draw(st.integers(1, 1500))
    open_, close = draw(st.sampled_from([("[", "]"), ('{"a":', "}")]))
    inner = open_ * depth + "1" + close * depth
    doc = f'{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"deep"}},"data":{inner}}}'
    ctype = draw(st.sampled_from(["application/json", "application/yaml"]))
    return ctype, doc.encode()


@st.composite
def yaml_text(draw: st.DrawFn) -> str:
    """YAML with the constructs that have bitten parsers: tags, merges, anchors, flow."""
    parts = draw(st.lists(st.sampled_from([
        "a: &x {b: 1}\n", "c: *x\n", "<<: *x\n", "d: !!binary aGk=\n", "e: !!set {a, b}\n",
        "f: 2001-12-14t21:59:43.10-05:00\n", "g: !!python/object:os.system ls\n",
        "h: [1, [2, [3, [4]]]]\n", "? [k]\n: v\n", "i: |\n  text\n", "j: *undefined\n",
        "k: {a: b, a: c}\n", "---\n", "l: 0x1F\n", "m: .nan\n", "n: ~\n", "o: '\\ud800'\n",
    ]), max_size=8))
    return "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: y}\n" + "".join(parts)


def _post(agent: Any, path: str, ctype: str, body: bytes) -> None:
    with agent.client() as c:
        r = c.post(path, content=body, headers={"content-type": ctype})
    assert r.status_code < 500, (r.status_code, r.text[:300])
    if r.status_code >= 400:
        assert r.json()["kind"] == "Status"


@SETTINGS
@given(doc=alias_yaml(), path=st.sampled_from(PATHS))
def test_aliased_yaml_is_capped(fuzz_agent, doc, path) -> None:
    _post(fuzz_agent, path, "application/yaml", doc.encode())


@SETTINGS
@given(body=deep(), path=st.sampled_from(PATHS))
def test_deep_documents_are_refused_not_crashed(fuzz_agent, body, path) -> None:
    _post(fuzz_agent, path, body[0], body[1])


@SETTINGS
@given(doc=yaml_text(), path=st.sampled_from(PATHS))
def test_odd_yaml_gets_a_clear_answer(fuzz_agent, doc, path) -> None:
    _post(fuzz_agent, path, "application/yaml", doc.encode())


@SETTINGS
@given(value=VALUES, path=st.sampled_from(PATHS),
       ctype=st.sampled_from(["application/json", "application/yaml"]))
def test_any_json_value_gets_a_clear_answer(fuzz_agent, value, path, ctype) -> None:
    _post(fuzz_agent, path, ctype, json.dumps(value).encode())


@pytest.mark.parametrize("size", [1 << 20, 3 * (1 << 20) - 200])
def test_the_largest_bodies_the_caps_allow(fuzz_agent, size) -> None:
    """A Pod with args filling the body cap, and the widest flat list: answered within
    the loop's bound, since large bodies are parsed and validated in a thread."""
    half = "x" * (size // 2 - 200)
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"wide{size}"},
           "spec": {"containers": [{"name": "c", "image": "x", "args": [half, half]}]}}
    _post(fuzz_agent, PATHS[1], "application/json", json.dumps(pod).encode())
    flat = b"[" + b",".join([b"[]"] * (size // 3)) + b"]"
    _post(fuzz_agent, PATHS[0], "application/json", flat)


def test_the_agent_stayed_healthy(fuzz_agent) -> None:
    fuzz_agent.check_healthy()
