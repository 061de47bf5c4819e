"""Every acknowledged write survives whatever a client sends: an object over the size
cap is refused before it reaches the log (it once took a 73 MB record that recovery
then cut off, and an acknowledged ConfigMap with it), and the agent restarted by kill -9
holds every write it answered 201 to.  Also: the data dir and its files are root's alone."""

from __future__ import annotations

import json
import os
import signal
import stat

from agentproc import AgentProcess

CM = "/api/v1/namespaces/default/configmaps"
DEPLOY = "/apis/apps/v1/namespaces/default/deployments"


def _pod(name: str, args_bytes: int) -> dict:
    half = "a" * (args_bytes // 2)
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"containers": [{"name": "c", "image": "busybox", "args": [half, half]}]}}


def _deployment(name: str) -> dict:
    labels = {"app": name}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": 0, "selector": {"matchLabels": labels}, "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}}


def _configmap(name: str, size: int = 10) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name},
            "data": {"k": "v" * size}}


def test_acknowledged_writes_survive_oversized_requests_and_a_restart(agent: AgentProcess) -> None:
    with agent.client() as c:
        assert c.post(CM, json=_configmap("before")).status_code == 201
        # The attack as found: one 1 MiB string aliased 70 times in a Pod's args.
        big = "x" * (1 << 20)
        pod = ("apiVersion: v1\nkind: Pod\nmetadata: {name: bomb}\nspec:\n  containers:\n"
               f"  - name: c\n    image: busybox\n    command: [&s '{big}']\n"
               f"    args: [{', '.join(['*s'] * 70)}]\n")
        r = c.post("/api/v1/namespaces/default/pods", content=pod,
                   headers={"content-type": "application/yaml"})
        assert r.status_code in (400, 413), r.text
        assert r.json()["kind"] == "Status"
        # Under the body cap, over the object cap: 413 before anything is proposed.
        r = c.post("/api/v1/namespaces/default/pods", content=json.dumps(_pod("huge", 2 << 20)),
                   headers={"content-type": "application/json"})
        assert r.status_code == 413 and "too large" in r.json()["message"]
        # A patch that grows an object past the cap is refused the same way.
        assert c.post(DEPLOY, json=_deployment("grows")).status_code == 201
        r = c.patch(f"{DEPLOY}/grows", content=json.dumps(
            {"spec": {"template": {"spec": {"containers": [
                {"name": "c", "image": "busybox", "args": ["v" * (1600 << 10)]}]}}}}),
                    headers={"content-type": "application/merge-patch+json"})
        assert r.status_code == 413
        assert c.post(CM, json=_configmap("after")).status_code == 201
    agent.close()  # kill -9
    agent.start()
    with agent.client() as c:
        names = {i["metadata"]["name"] for i in c.get(CM).json()["items"]}
        assert {"before", "after"} <= names
        assert c.get("/api/v1/namespaces/default/pods/huge").status_code == 404
        grows = c.get(f"{DEPLOY}/grows").json()["spec"]["template"]["spec"]["containers"]
        assert "args" not in grows[0]
    assert "torn_tail_bytes=0" in agent.log_text()


def test_the_data_dir_and_the_log_are_private(agent: AgentProcess) -> None:
    with agent.client() as c:
        assert c.post(CM, json=_configmap("x")).status_code == 201
    assert stat.S_IMODE(os.stat(agent.data_dir).st_mode) == 0o700
    logs = [p for p in agent.data_dir.iterdir() if p.is_file()]
    assert logs
    for p in logs:
        assert stat.S_IMODE(p.stat().st_mode) == 0o600, p
    # The operators' calls answer on a socket only root reaches, not on the network API.
    assert stat.S_IMODE(os.stat(agent.socket).st_mode) == 0o600
    with agent.client() as c:
        assert c.get("/snapshot").status_code == 404
        assert c.post("/raft/peers", json={"id": 9, "address": "127.0.0.1:1"}).status_code == 404
        assert c.get("/gossip/keys").status_code == 404
    assert agent.stop(signal.SIGTERM) == 0
