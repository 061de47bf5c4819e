"""nodectl cordon, uncordon and drain against a running agent's coordinator.

The two nodes are Node objects whose "kubelet" is this test (the agent here runs no
pods): it marks the pods bound to them Running and Ready after a moment, and confirms
the deletion of pods being deleted, as a node's pod manager does.  What is checked is
the user's view: drain moves every replica off the node and never has more of them
unavailable at once than the Deployment's maxUnavailable, a pod no controller owns is
refused without --force, and cordoned nodes take no new pods.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

from agentproc import AgentProcess

DEPLOY = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 4
  selector: {matchLabels: {app: web}}
  strategy: {rollingUpdate: {maxUnavailable: 1, maxSurge: 1}}
  template:
    metadata: {labels: {app: web}}
    spec:
      terminationGracePeriodSeconds: 5
      containers: [{name: web, image: kubia:latest}]
"""


def nodectl(agent: AgentProcess, *args: str, ok: bool = True, stdin: str | None = None
            ) -> subprocess.CompletedProcess[str]:
    p = subprocess.run([sys.executable, "-m", "nodeagent.cli.nodectl", *args],
                       env={**os.environ, **agent.nodectl_env()}, input=stdin,
                       capture_output=True, text=True, timeout=120)
    assert "Traceback" not in p.stderr, p.stderr
    assert (p.returncode == 0) == ok, f"nodectl {' '.join(args)}: {p.stdout}\n{p.stderr}"
    return p


class Kubelets(threading.Thread):
    """The two fake nodes' pod managers, and a count of the app's unavailable replicas."""

    def __init__(self, agent: AgentProcess) -> None:
        super().__init__(daemon=True)
        self.http = agent.client(timeout_s=10)
        self.stop = threading.Event()
        self.max_unavailable = 0
        self.seen_since: dict[str, float] = {}

    def run(self) -> None:
        while not self.stop.is_set():
            pods = self.http.get("/api/v1/namespaces/default/pods").json()["items"]
            now = time.monotonic()
            ready = 0
            for pod in pods:
                meta, node = pod["metadata"], pod["spec"].get("nodeName")
                if not node:
                    continue
                if meta.get("deletionTimestamp"):
                    self.http.delete(f"/api/v1/namespaces/default/pods/{meta['name']}",
                                     params={"gracePeriodSeconds": 0})
                    continue
                conds = {c["type"]: c["status"] for c in pod["status"].get("conditions") or []}
                if conds.get("Ready") == "True":
                    ready += meta.get("labels", {}).get("app") == "web"
                    continue
                first = self.seen_since.setdefault(meta["uid"], now)
                if now - first >= 0.3:  # "starting" takes a moment
                    pod["status"] = {"phase": "Running", "podIP": "10.244.9.9", "conditions": [
                        {"type": "Ready", "status": "True"},
                        {"type": "ContainersReady", "status": "True"},
                        {"type": "PodScheduled", "status": "True"}]}
                    self.http.put(f"/api/v1/namespaces/default/pods/{meta['name']}/status",
                                  json=pod)
            if ready or self.max_unavailable:
                self.max_unavailable = max(self.max_unavailable, 4 - ready)
            time.sleep(0.05)


def _node(name: str) -> dict:
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}, "status": {
        "allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"},
        "conditions": [{"type": "Ready", "status": "True"}]}}


def _placement(agent: AgentProcess) -> dict[str, str]:
    with agent.client() as http:
        return {p["metadata"]["name"]: p["spec"].get("nodeName", "")
                for p in http.get("/api/v1/namespaces/default/pods").json()["items"]
                if not p["metadata"].get("deletionTimestamp")}


def _wait(check, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_drain_moves_the_replicas_no_faster_than_a_rolling_update(agent):
    with agent.client() as http:
        for name in ("node-a", "node-b"):
            http.post("/api/v1/nodes", json=_node(name)).raise_for_status()
    kubelets = Kubelets(agent)
    kubelets.start()
    try:
        nodectl(agent, "apply", "-f", "-", stdin=DEPLOY)
        _wait(lambda: kubelets.max_unavailable == 0 and len(_placement(agent)) == 4 and
              all(_placement(agent).values()))
        before = _placement(agent)
        assert sorted(before.values()) == ["node-a", "node-a", "node-b", "node-b"]  # spread
        kubelets.max_unavailable = 0

        assert nodectl(agent, "cordon", "node-b").stdout.strip() == "node/node-b cordoned"
        assert nodectl(agent, "cordon", "node-b").stdout.strip() == "node/node-b already cordoned"
        assert "SchedulingDisabled" in nodectl(agent, "get", "nodes").stdout
        assert nodectl(agent, "uncordon", "node-b").stdout.strip() == "node/node-b uncordoned"

        out = nodectl(agent, "drain", "node-a").stdout.splitlines()
        assert out[0] == "node/node-a cordoned" and out[-1] == "node/node-a drained"
        evicted = sorted(line.split("/")[1].split()[0] for line in out if line.endswith(" evicted"))
        assert evicted == sorted(p for p, n in before.items() if n == "node-a")
        _wait(lambda: len(_placement(agent)) == 4 and all(_placement(agent).values()))
        assert set(_placement(agent).values()) == {"node-b"}
        assert kubelets.max_unavailable <= 1, kubelets.max_unavailable  # maxUnavailable: 1

        # A pod nothing would replace: refused unless --force.
        with agent.client() as http:
            http.post("/api/v1/namespaces/default/pods", json={
                "metadata": {"name": "lonely"},
                "spec": {"nodeName": "node-b", "containers": [
                    {"name": "c", "image": "kubia:latest"}]}}).raise_for_status()
        refused = nodectl(agent, "drain", "node-b", "--timeout", "5", ok=False)
        assert "cannot delete Pods that declare no controller" in refused.stderr
        assert "default/lonely" in refused.stderr
    finally:
        kubelets.stop.set()
        kubelets.join(timeout=5)
