"""WatchList (sendInitialEvents, KEP-3157), as client-go's reflector and kubectl ask for
it: the current state as ADDED events, then at once the bookmark annotated
``k8s.io/initial-events-end`` at the list's resourceVersion, then changes.  Before,
that bookmark came only on the 60 s timer, and kubectl wait and rollout status stalled
for it.  Periodic bookmarks carry no such annotation."""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Iterator

import pytest

from agentproc import AgentProcess

WATCH_LIST = {"watch": "1", "sendInitialEvents": "true", "allowWatchBookmarks": "true",
              "resourceVersionMatch": "NotOlderThan", "timeoutSeconds": "30"}


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AgentProcess]:
    a = AgentProcess(tmp_path_factory.mktemp("watchlist"), "wl").start()
    try:
        with a.client() as admin:
            for name in ("one", "two"):
                assert admin.post("/api/v1/namespaces/default/configmaps", json={
                    "metadata": {"name": name, "labels": {"set": "a"}}}).status_code == 201
        yield a
    finally:
        a.close()


def test_the_initial_events_end_with_their_bookmark_then_changes_follow(
        agent: AgentProcess) -> None:
    with agent.client(timeout_s=10) as admin, admin.stream(
            "GET", "/api/v1/namespaces/default/configmaps",
            params={**WATCH_LIST, "labelSelector": "set=a"}) as resp:
        assert resp.status_code == 200
        lines = resp.iter_lines()
        first = [json.loads(next(lines)) for _ in range(3)]
        assert [e["type"] for e in first] == ["ADDED", "ADDED", "BOOKMARK"]
        assert {e["object"]["metadata"]["name"] for e in first[:2]} == {"one", "two"}
        mark = first[2]["object"]
        assert mark["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}
        assert mark["kind"] == "ConfigMap" and int(mark["metadata"]["resourceVersion"]) >= max(
            int(e["object"]["metadata"]["resourceVersion"]) for e in first[:2])
        assert admin.post("/api/v1/namespaces/default/configmaps", json={
            "metadata": {"name": "three", "labels": {"set": "a"}}}).status_code == 201
        after = json.loads(next(lines))
        assert after["type"] == "ADDED" and after["object"]["metadata"]["name"] == "three"
        assert int(after["object"]["metadata"]["resourceVersion"]) > int(
            mark["metadata"]["resourceVersion"])


def test_an_empty_list_still_gets_its_bookmark_and_bad_asks_are_refused(
        agent: AgentProcess) -> None:
    with agent.client(timeout_s=10) as admin:
        with admin.stream("GET", "/api/v1/namespaces/default/configmaps",
                          params={**WATCH_LIST, "labelSelector": "set=none"}) as resp:
            event = json.loads(next(resp.iter_lines()))
            assert event["type"] == "BOOKMARK"
            assert event["object"]["metadata"]["annotations"] == {
                "k8s.io/initial-events-end": "true"}
        for drop in ("allowWatchBookmarks", "resourceVersionMatch"):
            params = {k: v for k, v in WATCH_LIST.items() if k != drop}
            r = admin.get("/api/v1/namespaces/default/configmaps", params=params)
            assert r.status_code == 422 and "sendInitialEvents" in r.json()["message"]
        r = admin.get("/api/v1/namespaces/default/configmaps",
                      params={**WATCH_LIST, "resourceVersion": "999999999"})
        assert r.status_code == 504


def test_kubectl_wait_and_delete_do_not_stall(agent: AgentProcess) -> None:
    """kubectl's watches ask for WatchList: they finish well within their own timeouts,
    which are far below the 60 s the bookmark used to take."""
    run = agent.kubectl
    waiter: list[subprocess.CompletedProcess[str]] = []
    thread = threading.Thread(target=lambda: waiter.append(run(
        "wait", "--for=jsonpath={.data.ready}=yes", "configmap/one", "--timeout=15s")))
    thread.start()
    with agent.client(timeout_s=10) as admin:
        r = admin.patch("/api/v1/namespaces/default/configmaps/one",
                        headers={"Content-Type": "application/merge-patch+json"},
                        content=json.dumps({"data": {"ready": "yes"}}))
        assert r.status_code == 200
    thread.join(30)
    assert waiter and waiter[0].returncode == 0, waiter[0].stderr if waiter else "no answer"
    deleted = run("delete", "configmap", "two", "--timeout=15s")
    assert deleted.returncode == 0 and 'configmap "two" deleted' in deleted.stdout, \
        deleted.stderr
