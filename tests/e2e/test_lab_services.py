"""Services in the multi-node lab: a real agent in node 1's namespace runs the proxy;
endpoints are pods on node 1 and node 2; a client pod on node 1 connects to the
ClusterIP and to the NodePort.  Everything lives in namespaces the test makes.
"""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections import Counter

import pytest
from waiting import needs_root

pytestmark = needs_root("the lab")


from agentproc import admin_client, readyz  # noqa: E402
from netlab import CLIENT, NAME_SERVER  # noqa: E402
from netns.lab import Lab  # noqa: E402


@pytest.fixture
def cluster(tmp_path):
    lab = Lab(prefix=f"ne{uuid.uuid4().hex[:5]}", subnet="192.168.215.0/24",
              state_dir=str(tmp_path / "lab"))
    procs: list[subprocess.Popen[bytes]] = []
    try:
        lab.up(2)
        addr = lab.node_address(1)
        assert lab.route_is_through_lab(addr)
        log = open(tmp_path / "agent.log", "wb")
        procs.append(subprocess.Popen(
            ["ip", "netns", "exec", lab.node_ns(1), sys.executable, "-m", "nodeagent", "run",
             "--name", "node1", "--data-dir", str(tmp_path / "data"), "--api-listen",
             f"{addr}:6443", "--proxy", "nft"], stdout=log, stderr=log))
        api = f"https://{addr}:6443"
        deadline = time.monotonic() + 20
        while not readyz(tmp_path / "data", api):
            assert time.monotonic() < deadline, (tmp_path / "agent.log").read_text()
            time.sleep(0.1)
        pods = {"a": lab.pods(1).create("ep-a"), "b": lab.pods(2).create("ep-b"),
                "client": lab.pods(1).create("client")}
        for name in ("a", "b"):
            procs.append(subprocess.Popen(["ip", "netns", "exec", pods[name].netns,
                                           sys.executable, "-c", NAME_SERVER, f"pod-{name}",
                                           "8080"]))
        time.sleep(0.5)
        with admin_client(tmp_path / "data", api) as http:
            yield {"lab": lab, "http": http, "pods": pods}
    finally:
        for p in procs:
            p.kill()
            p.wait()
        lab.down()


def ask(c: dict, ip: str, port: int, n: int) -> list[str]:
    p = subprocess.run(["ip", "netns", "exec", c["pods"]["client"].netns, sys.executable, "-c",
                        CLIENT, ip, str(port), str(n)], capture_output=True, text=True, timeout=60)
    return p.stdout.split()


def until_answers(c: dict, ip: str, port: int, wanted: set[str], n: int = 30) -> Counter:
    deadline = time.monotonic() + 10
    while True:
        seen = Counter(ask(c, ip, port, n))
        if set(seen) == wanted or time.monotonic() > deadline:
            return seen
        time.sleep(0.2)


def test_cluster_ip_and_node_port_reach_pods_on_both_nodes(cluster):
    # Selectorless, so the Endpoints are this test's to write (the pods here are bare
    # sandboxes, not Pod objects the endpoints controller could see).
    http, pods = cluster["http"], cluster["pods"]
    r = http.post("/api/v1/namespaces/default/services", json={
        "metadata": {"name": "kubia"},
        "spec": {"type": "NodePort", "clusterIP": "10.96.0.10",
                 "ports": [{"name": "http", "port": 80, "targetPort": 8080, "nodePort": 30080}]}})
    assert r.status_code == 201, r.text
    endpoints = {"metadata": {"name": "kubia"}, "subsets": [{
        "addresses": [{"ip": pods["a"].ip}, {"ip": pods["b"].ip}],
        "ports": [{"name": "http", "port": 8080}]}]}
    assert http.post("/api/v1/namespaces/default/endpoints", json=endpoints).status_code == 201
    assert set(until_answers(cluster, "10.96.0.10", 80, {"pod-a", "pod-b"})) == {"pod-a", "pod-b"}
    node1 = cluster["lab"].node_address(1)
    assert set(until_answers(cluster, node1, 30080, {"pod-a", "pod-b"})) == {"pod-a", "pod-b"}
    # Only the pod on node 2 stays ready: everything goes there, across the node routes.
    only_b = {"subsets": [{"addresses": [{"ip": pods["b"].ip}],
                           "ports": [{"name": "http", "port": 8080}]}]}
    r = http.patch("/api/v1/namespaces/default/endpoints/kubia", json=only_b,
                   headers={"Content-Type": "application/merge-patch+json"})
    assert r.status_code == 200
    assert set(until_answers(cluster, "10.96.0.10", 80, {"pod-b"})) == {"pod-b"}
    # No ready endpoint: refused at once, not a hang.
    http.delete("/api/v1/namespaces/default/endpoints/kubia")
    assert set(until_answers(cluster, "10.96.0.10", 80, {"ConnectionRefusedError"}, 3)) == \
        {"ConnectionRefusedError"}
