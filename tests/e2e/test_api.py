"""The HTTP API's contract, over real sockets against a running agent."""

from __future__ import annotations

import json
import ssl
import time
from collections.abc import Iterator

import httpx
import pytest

from agentproc import AgentProcess

PODS = "/api/v1/namespaces/{ns}/pods"


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AgentProcess]:
    """An agent with a short request timeout and small history, to see both run out."""
    a = AgentProcess(tmp_path_factory.mktemp("api"), "api", "--request-timeout-s", "2",
                     "--history-revisions", "200").start()
    try:
        yield a
    finally:
        a.close()


@pytest.fixture
def http(api: AgentProcess) -> Iterator[httpx.Client]:
    with api.client() as c:
        yield c


@pytest.fixture
def ns(http: httpx.Client, request: pytest.FixtureRequest) -> str:
    name = request.node.name.lower().replace("_", "-")[:50].strip("-")
    r = http.post("/api/v1/namespaces", json={"metadata": {"name": name}})
    assert r.status_code == 201, r.text
    return name


def pod(name: str, **labels: str) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]}}


def test_health_version_and_discovery(http):
    for path in ("/healthz", "/readyz", "/livez"):
        r = http.get(path)
        assert (r.status_code, r.text) == (200, "ok")
    assert http.get("/version").json()["gitVersion"].startswith("v1.")
    assert http.get("/api").json()["versions"] == ["v1"]
    groups = {g["name"] for g in http.get("/apis").json()["groups"]}
    assert {"apps", "networking.k8s.io"} <= groups
    core = {r["name"]: r for r in http.get("/api/v1").json()["resources"]}
    assert core["pods"]["namespaced"] and core["pods"]["shortNames"] == ["po"]
    assert "pods/status" in core and not core["namespaces"]["namespaced"]
    apps = {r["name"] for r in http.get("/apis/apps/v1").json()["resources"]}
    assert {"deployments", "replicasets", "deployments/status"} <= apps


def test_create_get_conflicts_and_generate_name(http, ns):
    r = http.post(PODS.format(ns=ns), json=pod("p1"))
    assert r.status_code == 201
    created = r.json()
    meta = created["metadata"]
    assert meta["uid"] and meta["creationTimestamp"] and meta["namespace"] == ns
    assert created["status"]["phase"] == "Pending"
    dup = http.post(PODS.format(ns=ns), json=pod("p1"))
    assert dup.status_code == 409 and dup.json()["reason"] == "AlreadyExists"
    assert dup.json()["message"] == 'pods "p1" already exists'
    # Update with the current resourceVersion works; with a stale one it is a 409 Conflict.
    body = {**created, "metadata": {**meta, "labels": {"v": "1"}}}
    ok = http.put(f"{PODS.format(ns=ns)}/p1", json=body)
    assert ok.status_code == 200
    assert int(ok.json()["metadata"]["resourceVersion"]) > int(meta["resourceVersion"])
    stale = http.put(f"{PODS.format(ns=ns)}/p1", json=body)
    assert stale.status_code == 409 and stale.json()["reason"] == "Conflict"
    assert "the object has been modified" in stale.json()["message"]
    gen = http.post(PODS.format(ns=ns), json={**pod(""), "metadata": {"generateName": "web-"}})
    assert gen.status_code == 201 and gen.json()["metadata"]["name"].startswith("web-")
    assert len(gen.json()["metadata"]["name"]) == len("web-") + 5


def test_patches_and_status_subresource(http, ns):
    http.post(PODS.format(ns=ns), json=pod("p"))
    url = f"{PODS.format(ns=ns)}/p"
    r = http.patch(url, content=json.dumps({"metadata": {"labels": {"a": "1"}}}),
                   headers={"Content-Type": "application/merge-patch+json"})
    assert r.status_code == 200 and r.json()["metadata"]["labels"] == {"a": "1"}
    r = http.patch(url, content=json.dumps([{"op": "add", "path": "/metadata/labels/b",
                                             "value": "2"}]),
                   headers={"Content-Type": "application/json-patch+json"})
    assert r.json()["metadata"]["labels"] == {"a": "1", "b": "2"}
    bad = http.patch(url, content=json.dumps([{"op": "test", "path": "/metadata/labels/a",
                                               "value": "nope"}]),
                     headers={"Content-Type": "application/json-patch+json"})
    assert bad.status_code in (409, 422) and bad.json()["kind"] == "Status"
    # status is written only through /status, and /status writes only status.
    r = http.patch(url, content=json.dumps({"status": {"phase": "Running"}}),
                   headers={"Content-Type": "application/merge-patch+json"})
    assert r.json()["status"]["phase"] == "Pending"
    r = http.patch(url + "/status", content=json.dumps(
        {"status": {"phase": "Running"}, "metadata": {"labels": {"x": "y"}}}),
        headers={"Content-Type": "application/merge-patch+json"})
    assert r.status_code == 200
    assert r.json()["status"]["phase"] == "Running" and "x" not in r.json()["metadata"]["labels"]
    # Changing what a pod may not change is a 422 naming the field.
    r = http.patch(url, content=json.dumps({"spec": {"restartPolicy": "Never"}}),
                   headers={"Content-Type": "application/merge-patch+json"})
    assert r.status_code == 422 and r.json()["details"]["causes"][0]["field"] == "spec"


def test_list_selectors_and_pagination(http, ns):
    for i in range(7):
        http.post(PODS.format(ns=ns), json=pod(f"p{i}", app="kubia" if i % 2 else "other"))
    r = http.get(PODS.format(ns=ns), params={"labelSelector": "app=kubia"})
    assert [p["metadata"]["name"] for p in r.json()["items"]] == ["p1", "p3", "p5"]
    assert r.json()["kind"] == "PodList"
    r = http.get(PODS.format(ns=ns), params={"fieldSelector": "metadata.name=p4"})
    assert [p["metadata"]["name"] for p in r.json()["items"]] == ["p4"]
    r = http.get(PODS.format(ns=ns), params={"fieldSelector": "status.phase!=Pending"})
    assert r.json()["items"] == []
    bad = http.get(PODS.format(ns=ns), params={"fieldSelector": "spec.image=x"})
    assert bad.status_code == 400 and "spec.image" in bad.json()["message"]
    names, cont = [], None
    while True:
        r = http.get(PODS.format(ns=ns), params={"limit": 3, **({"continue": cont} if cont else {})})
        names += [p["metadata"]["name"] for p in r.json()["items"]]
        cont = r.json()["metadata"].get("continue")
        if not cont:
            break
    assert names == [f"p{i}" for i in range(7)]
    every = http.get("/api/v1/pods").json()["items"]
    assert {p["metadata"]["namespace"] for p in every} >= {ns}


def test_watch_streams_events_and_resumes(http, ns, api):
    rv = http.get(PODS.format(ns=ns)).json()["metadata"]["resourceVersion"]
    http.post(PODS.format(ns=ns), json=pod("w1"))
    http.patch(f"{PODS.format(ns=ns)}/w1", content=b'{"metadata":{"labels":{"a":"b"}}}',
               headers={"Content-Type": "application/merge-patch+json"})
    http.delete(f"{PODS.format(ns=ns)}/w1")
    events = []
    with http.stream("GET", PODS.format(ns=ns), params={
            "watch": "true", "resourceVersion": rv, "timeoutSeconds": "1"}) as r:
        assert r.status_code == 200
        for line in r.iter_lines():
            if line:
                events.append(json.loads(line))
    assert [e["type"] for e in events] == ["ADDED", "MODIFIED", "DELETED"]
    revs = [int(e["object"]["metadata"]["resourceVersion"]) for e in events]
    assert revs == sorted(revs)
    # Resuming from the middle replays only what came after.
    with http.stream("GET", PODS.format(ns=ns), params={
            "watch": "true", "resourceVersion": str(revs[0]), "timeoutSeconds": "1"}) as r:
        resumed = [json.loads(line)["type"] for line in r.iter_lines() if line]
    assert resumed == ["MODIFIED", "DELETED"]


def test_too_old_resource_version_is_410_gone(http, ns):
    for i in range(260):  # history is 200 revisions on this agent
        http.post(PODS.format(ns=ns), json=pod(f"g{i}"))
    r = http.get(PODS.format(ns=ns), params={"watch": "true", "resourceVersion": "2"})
    assert r.status_code == 410 and r.json()["reason"] == "Expired"
    r = http.get(PODS.format(ns=ns), params={"resourceVersion": "2",
                                             "resourceVersionMatch": "Exact"})
    assert r.status_code == 410


def test_bad_input_gets_clear_4xx(http, ns):
    url = PODS.format(ns=ns)
    r = http.post(url, content=b"{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and r.json()["kind"] == "Status"
    r = http.post(url, content=b"a: [b", headers={"Content-Type": "application/yaml"})
    assert r.status_code == 400
    r = http.post(url, content=b"x", headers={"Content-Type": "text/plain"})
    assert r.status_code == 415 and r.json()["reason"] == "UnsupportedMediaType"
    r = http.get("/api/v1/namespaces/default/widgets")
    assert r.status_code == 404 and r.json()["reason"] == "NotFound"
    r = http.get("/apis/apps/v2/deployments")
    assert r.status_code == 404
    yaml_pod = b"apiVersion: v1\nkind: Pod\nmetadata: {name: y}\nspec:\n  containers: [{name: c, image: x}]\n"
    r = http.post(url, content=yaml_pod, headers={"Content-Type": "application/yaml"})
    assert r.status_code == 201
    r = http.post(url, json={**pod("z"), "spec": {"containers": [], "bogus": 1}},
                  params={"fieldValidation": "Strict"})
    assert r.status_code == 400 and 'unknown field "spec.bogus"' in r.json()["message"]
    r = http.post(url, json={**pod("y2"), "metadata": {"name": "y2", "namespace": "other"}})
    assert r.status_code == 400 and "does not match the namespace" in r.json()["message"]
    r = http.post("/api/v1/namespaces/missing-ns/pods", json=pod("m"))
    assert r.status_code == 404 and r.json()["message"] == 'namespaces "missing-ns" not found'


def test_invalid_object_is_422_with_causes(http, ns):
    body = pod("bad")
    body["spec"]["containers"][0]["ports"] = [{"containerPort": 70000}]
    r = http.post(PODS.format(ns=ns), json=body)
    assert r.status_code == 422
    status = r.json()
    assert status["reason"] == "Invalid"
    assert status["details"]["causes"] == [{
        "reason": "FieldValueInvalid", "message": "Invalid value: 70000: must be between 1 and "
        "65535, inclusive", "field": "spec.containers[0].ports[0].containerPort"}]
    assert status["message"].startswith('Pod "bad" is invalid: spec.containers[0]')


def raw_request(api: AgentProcess, head: bytes, body: bytes = b"") -> bytes:
    with api.connect() as s:
        s.sendall(head + body)
        reply = s.recv(65536)
        while b"\r\n\r\n" in reply and not reply.rstrip().endswith(b"}"):
            more = s.recv(65536)
            if not more:
                break
            reply += more
        return reply


def test_bodies_over_3_mib_are_413(api):
    # The answer comes from the declared length, before the body is read.
    reply = raw_request(api, b"POST /api/v1/namespaces/default/configmaps HTTP/1.1\r\nHost: localhost\r\n"
                        b"Content-Type: application/json\r\nContent-Length: 3145729\r\n\r\n", b"{")
    assert reply.startswith(b"HTTP/1.1 413"), reply[:100]
    assert b'"reason":"RequestEntityTooLarge"' in reply.replace(b" ", b"")
    # A chunked body without a length is cut off when it passes the limit.
    chunk = b"x" * 65536
    head = (b"POST /api/v1/namespaces/default/configmaps HTTP/1.1\r\nHost: localhost\r\n"
            b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
    body = (b"10000\r\n" + chunk + b"\r\n") * 49 + b"0\r\n\r\n"
    with api.connect() as s:
        s.sendall(head)
        try:
            s.sendall(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may stop reading once it has answered
        reply = s.recv(65536)
    assert reply.startswith(b"HTTP/1.1 413"), reply[:100]


def test_slow_body_times_out_with_408(api):
    with api.connect() as s:
        s.sendall(b"POST /api/v1/namespaces/default/configmaps HTTP/1.1\r\nHost: localhost\r\n"
                  b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"a\":")
        started = time.monotonic()
        reply = s.recv(65536)
        assert reply.startswith(b"HTTP/1.1 408"), reply[:100]
        assert time.monotonic() - started < 8


def test_half_sent_headers_are_dropped(api):
    with api.connect() as s:
        s.sendall(b"GET /api/v1/namespaces HTTP/1.1\r\nHost: localhost\r\n")
        # The server closes the connection (request timeout 2 s here); a socket timeout
        # (10 s) would mean it held the connection open waiting for the rest.
        try:
            while s.recv(65536):
                pass
        except (ConnectionResetError, ssl.SSLError):
            pass


def test_deleting_a_namespace_deletes_its_contents(http, ns):
    http.post(PODS.format(ns=ns), json=pod("a"))
    http.post(f"/api/v1/namespaces/{ns}/configmaps", json={"metadata": {"name": "c"}})
    r = http.delete(f"/api/v1/namespaces/{ns}")
    assert r.status_code == 200
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if http.get(f"/api/v1/namespaces/{ns}").status_code == 404:
            break
        time.sleep(0.05)
    assert http.get(f"/api/v1/namespaces/{ns}").status_code == 404
    assert http.get(f"{PODS.format(ns=ns)}/a").status_code == 404
    assert http.get(f"/api/v1/namespaces/{ns}/configmaps/c").status_code == 404


def test_finalizers_and_graceful_pod_deletion(http, ns):
    cm = f"/api/v1/namespaces/{ns}/configmaps"
    http.post(cm, json={"metadata": {"name": "held", "finalizers": ["example.com/hold"]}})
    r = http.delete(f"{cm}/held")
    assert r.status_code in (200, 202)
    held = http.get(f"{cm}/held").json()
    assert held["metadata"]["deletionTimestamp"]
    held["metadata"]["finalizers"] = []
    assert http.put(f"{cm}/held", json=held).status_code == 200
    assert http.get(f"{cm}/held").status_code == 404
    # A pod bound to a node waits for that node's pod manager: deletionTimestamp, grace.
    bound = pod("bound")
    bound["spec"]["nodeName"] = "node-1"
    http.post(PODS.format(ns=ns), json=bound)
    http.delete(f"{PODS.format(ns=ns)}/bound")
    p = http.get(f"{PODS.format(ns=ns)}/bound").json()
    assert p["metadata"]["deletionTimestamp"] and p["metadata"]["deletionGracePeriodSeconds"] == 30
    forced = http.delete(f"{PODS.format(ns=ns)}/bound", params={"gracePeriodSeconds": 0})
    assert forced.status_code == 200
    assert http.get(f"{PODS.format(ns=ns)}/bound").status_code == 404


def test_yaml_that_json_cannot_carry_is_400(http, ns):
    url = PODS.format(ns=ns)
    for body in (b'{"\\ud800"}', b"!!binary aGVsbG8="):
        r = http.post(url, content=body, headers={"Content-Type": "application/yaml"})
        assert r.status_code == 400 and "converting YAML to JSON" in r.json()["message"]
