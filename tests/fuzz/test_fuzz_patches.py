"""JSON and merge patches at a real agent: any operations, paths, pointers and values,
and the copy chains that once doubled an object per op, get a 4xx at worst, never a 5xx,
never memory or loop time without bound."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

CM = "/api/v1/namespaces/default/configmaps/target"
DEPLOY = "/apis/apps/v1/namespaces/default/deployments/target"
SETTINGS = settings(max_examples=200, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow,
                                           HealthCheck.function_scoped_fixture])

SEGMENTS = st.sampled_from(["metadata", "labels", "annotations", "data", "spec", "template",
                            "containers", "0", "1", "-", "name", "image", "replicas", "a~1b",
                            "~0", "~2", "", "x" * 50, "999999", "status"])
POINTERS = st.lists(SEGMENTS, max_size=6).map(lambda p: "".join("/" + s for s in p)) | \
    st.text(max_size=20)
VALUES = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=40)),
                      lambda inner: st.one_of(st.lists(inner, max_size=3),
                                              st.dictionaries(st.text(max_size=6), inner,
                                                              max_size=3)), max_leaves=12)
OP = st.fixed_dictionaries({"op": st.sampled_from(["add", "remove", "replace", "move", "copy",
                                                   "test", "bogus"]),
                            "path": POINTERS},
                           optional={"from": POINTERS, "value": VALUES})
PATCH = st.one_of(st.lists(OP, max_size=30), VALUES)


def _setup(agent: Any) -> None:
    with agent.client() as c:
        c.post("/api/v1/namespaces/default/configmaps", json={
            "metadata": {"name": "target", "labels": {"a": "b"}}, "data": {"k": "v" * 300}})
        c.post("/apis/apps/v1/namespaces/default/deployments", json={
            "metadata": {"name": "target"},
            "spec": {"replicas": 0, "selector": {"matchLabels": {"a": "b"}},
                     "template": {"metadata": {"labels": {"a": "b"}},
                                  "spec": {"containers": [{"name": "c", "image": "x"}]}}}})


@SETTINGS
@given(patch=PATCH, target=st.sampled_from([CM, DEPLOY]),
       ctype=st.sampled_from(["application/json-patch+json", "application/merge-patch+json",
                              "application/strategic-merge-patch+json"]))
def test_any_patch_gets_a_clear_answer(fuzz_agent, patch, target, ctype) -> None:
    _setup(fuzz_agent)
    with fuzz_agent.client() as c:
        r = c.patch(target, content=json.dumps(patch), headers={"content-type": ctype})
    assert r.status_code < 500, (r.status_code, r.text[:300])


@SETTINGS
@given(n=st.integers(1, 40), first=st.sampled_from(["/data", "/metadata", "/spec"]))
def test_copy_chains_stop_at_the_growth_cap(fuzz_agent, n, first) -> None:
    _setup(fuzz_agent)
    ops = [{"op": "copy", "from": first if i == 0 else f"{first}/c{i - 1}",
            "path": f"{first}/c{i}"} for i in range(n)]
    ops += [{"op": "copy", "from": first, "path": f"{first}/d{i}"} for i in range(n)]
    with fuzz_agent.client() as c:
        r = c.patch(CM, content=json.dumps(ops),
                    headers={"content-type": "application/json-patch+json"})
    assert r.status_code < 500, (r.status_code, r.text[:300])


def test_the_most_operations_the_cap_allows(fuzz_agent) -> None:
    _setup(fuzz_agent)
    ops = [{"op": "test", "path": "/metadata/name", "value": "target"}] * 10_000
    with fuzz_agent.client() as c:
        r = c.patch(CM, content=json.dumps(ops),
                    headers={"content-type": "application/json-patch+json"})
        assert r.status_code == 200, r.text[:300]
        r = c.patch(CM, content=json.dumps(ops + ops[:1]),
                    headers={"content-type": "application/json-patch+json"})
        assert r.status_code == 422


def test_the_agent_stayed_healthy(fuzz_agent) -> None:
    fuzz_agent.check_healthy()
