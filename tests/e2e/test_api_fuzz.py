"""Property-based fuzzing of the API: whatever arrives, the answer is never a 5xx.

Hypothesis builds requests from a mix of valid shapes and garbage: real and
made-up paths, every verb, content types, JSON of any shape, objects that are
almost valid pods/services/deployments with fields mutated, and raw bytes.
Every error must be a Kubernetes Status object.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

PATHS = st.sampled_from([
    "/api/v1/namespaces/fuzz/pods", "/api/v1/namespaces/fuzz/pods/p",
    "/api/v1/namespaces/fuzz/pods/p/status", "/api/v1/namespaces/fuzz/services",
    "/api/v1/namespaces/fuzz/services/s", "/apis/apps/v1/namespaces/fuzz/deployments",
    "/apis/apps/v1/namespaces/fuzz/deployments/d", "/api/v1/namespaces",
    "/api/v1/namespaces/fuzz-other", "/api/v1/nodes/n", "/apis/networking.k8s.io/v1/ingresses",
    "/api/v1/namespaces/fuzz/configmaps", "/api/v1/namespaces/fuzz/secrets/x",
    "/api/v1/namespaces/fuzz/endpoints", "/api/v1/pods", "/apis/apps/v1",
    "/api/v1/namespaces/fuzz/pods/p/exec", "/apis/x/y/z", "/api/v2/pods", "/api//v1/",
    "/api/v1/namespaces/%00/pods", "/api/v1/namespaces/fuzz/persistentvolumeclaims",
])
QUERY = st.dictionaries(
    st.sampled_from(["watch", "labelSelector", "fieldSelector", "limit", "continue",
                     "resourceVersion", "timeoutSeconds", "gracePeriodSeconds", "dryRun",
                     "propagationPolicy", "resourceVersionMatch", "allowWatchBookmarks"]),
    st.one_of(st.text(max_size=20), st.sampled_from(["true", "0", "-1", "1", "app=x",
                                                     "metadata.name=p", "999999999999"])),
    max_size=3)
CTYPES = st.sampled_from(["application/json", "application/yaml", "application/merge-patch+json",
                          "application/json-patch+json", "application/strategic-merge-patch+json",
                          "text/plain", "", "application/json; charset=utf-8"])

JSON = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
              st.text(max_size=10)),
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(st.text(max_size=8), inner, max_size=3)),
    max_leaves=10)

BASE_OBJECTS = [
    {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
     "spec": {"containers": [{"name": "c", "image": "x", "ports": [{"containerPort": 80}],
                              "resources": {"limits": {"cpu": "1"}},
                              "livenessProbe": {"httpGet": {"port": 80}}}]}},
    {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
     "spec": {"selector": {"a": "b"}, "ports": [{"port": 80, "targetPort": "http"}]}},
    {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
     "spec": {"replicas": 1, "selector": {"matchLabels": {"a": "b"}},
              "template": {"metadata": {"labels": {"a": "b"}},
                           "spec": {"containers": [{"name": "c", "image": "x"}]}}}},
]


def _paths(obj: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out += _paths(v, (*prefix, i))
    return out


@st.composite
def mutated_object(draw: st.DrawFn) -> Any:
    obj = json.loads(json.dumps(draw(st.sampled_from(BASE_OBJECTS))))
    for _ in range(draw(st.integers(1, 3))):
        paths = [p for p in _paths(obj) if p]
        path = draw(st.sampled_from(paths))
        parent = obj
        for k in path[:-1]:
            parent = parent[k]
        parent[path[-1]] = draw(JSON)
    return obj


BODIES = st.one_of(
    st.none(),
    st.binary(max_size=200),
    JSON.map(lambda v: json.dumps(v).encode()),
    mutated_object().map(lambda v: json.dumps(v).encode()),
    st.sampled_from([b"{", b"[]", b"null", b"\xff\xfe", b"a: [b", b"--- !!python/object:os.system"]),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(method=st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE"]), path=PATHS,
       query=QUERY, ctype=CTYPES, body=BODIES)
def test_no_input_gets_a_server_error(fuzz_client, method, path, query, ctype, body):
    if "watch" in query:
        query["timeoutSeconds"] = "1"  # a valid watch is a long response; keep it short
    headers = {"Content-Type": ctype} if ctype else {}
    r = fuzz_client.request(method, path, params=query, content=body, headers=headers)
    # The one 5xx Kubernetes itself answers to a client's request: a resourceVersion from
    # the future is "504 Timeout: Too large resource version" (the client retries).
    future_rv = r.status_code == 504 and "Too large resource version" in r.text
    assert r.status_code < 500 or future_rv, (r.status_code, r.text[:500])
    if r.status_code >= 400:
        status = r.json()
        assert status["kind"] == "Status" and status["code"] == r.status_code
        assert status["message"]


def test_the_fuzzer_really_creates_objects(fuzz_client):
    """Guard against a fuzzer that only ever hits errors: a valid body is accepted."""
    r = fuzz_client.post("/api/v1/namespaces/fuzz/pods",
                         json={**BASE_OBJECTS[0], "metadata": {"name": "guard"}})
    assert r.status_code == 201
