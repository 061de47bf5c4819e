"""The cluster's failures, on 3 lab nodes made by scripts/lab (each a Raft server running
pods, the proxy and gossip), with a client sending requests to the app's NodePort the
whole time and counting failures:

- kill -9 the leader's agent: a new leader and coordinator, no failed request, no pod
  restarted, no acknowledged write lost;
- restart every agent one by one (an upgrade of the agent): no failed request, no
  container restarted;
- a rolling update of the app over the three nodes: no failed request;
- kill a whole node (agent, launcher, pods; its link down): NotReady, its pods replaced on
  the others, failed requests only while its pods were still in the Service; back on,
  it stops its stale pods (no duplicates);
- partition the leader's node (nft in its namespace), then heal: the others elect a
  leader, the cut-off one does not lead on (no split brain) and takes no writes; after
  healing there is one leader and no duplicate pods.

Times (leader elected, NotReady) are printed, not asserted; scripts/bench/cluster.py
measures them.  The pods' eviction timeout is 10 s here to keep the tests short.
"""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import time
import uuid

import httpx
import pytest
from waiting import needs_root

pytestmark = needs_root("the lab")

from labcluster import Client, LabCluster  # noqa: E402
from waiting import until  # noqa: E402

from agentproc import kubectl_binary  # noqa: E402

APP = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: kubia}
spec:
  replicas: 3
  selector: {matchLabels: {app: kubia}}
  strategy: {rollingUpdate: {maxUnavailable: 0, maxSurge: 1}}
  template:
    metadata: {labels: {app: kubia}}
    spec:
      terminationGracePeriodSeconds: 3
      containers:
        - name: kubia
          image: kubia:latest
          imagePullPolicy: IfNotPresent
          ports: [{name: http, containerPort: 8080}]
          readinessProbe: {httpGet: {port: http, path: /}, periodSeconds: 1}
          resources: {requests: {cpu: 50m, memory: 32Mi}}
---
apiVersion: v1
kind: Service
metadata: {name: kubia}
spec:
  type: NodePort
  selector: {app: kubia}
  ports: [{port: 80, targetPort: http, nodePort: 30080}]
"""


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    c = LabCluster(tmp_path_factory.mktemp("faultlab"), prefix=f"naf{uuid.uuid4().hex[:4]}",
                   subnet="192.168.219.0/24", agent_args="--unreachable-toleration-s 10")
    try:
        c.up()
        c.nodectl("apply", "-f", "-", stdin=APP)
        until(lambda: len(c.ready_pods()) == 3, 120, "3 kubia pods Ready")
        yield c
    finally:
        try:
            c.down()
        except AssertionError as exc:
            print(exc)


def healthy(lab: LabCluster) -> None:
    """Every agent up, every node Ready, one leader, 3 kubia pods Ready and no other."""
    lab.up()
    until(lambda: len(lab.ready_pods()) == 3 and len(lab.pods()) == 3, 120,
          "3 kubia pods, all Ready, none terminating")


def snapshot(lab: LabCluster) -> dict[str, tuple[str, int]]:
    """pod uid -> (node, restarts)"""
    return {p["metadata"]["uid"]: (p["spec"]["nodeName"],
                                   sum(c.get("restartCount", 0)
                                       for c in p["status"].get("containerStatuses") or []))
            for p in lab.pods()}


def test_kubectl_through_one_server_reaches_pods_on_every_node(lab):
    """kubectl pointed at node1 works with a pod on another node as with one on node1:
    logs, exec, port-forward and top are relayed to the agent of the pod's node."""
    healthy(lab)
    elsewhere = next(p for p in lab.ready_pods() if p["spec"]["nodeName"] != "node1")
    pod = elsewhere["metadata"]["name"]
    env = {**os.environ, "KUBECONFIG": str(lab.kubeconfig), "HOME": str(lab.dir)}

    def kubectl(*args: str) -> str:
        done = subprocess.run([kubectl_binary(), "--server", lab.api(1), *args], env=env,
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, f"kubectl {' '.join(args)}: {done.stderr}"
        return done.stdout

    assert pod in kubectl("exec", pod, "--", "hostname")
    assert "Received request" in kubectl("logs", pod, "--tail=5")  # its probes
    def top(what: str, names: list[str]) -> bool:
        done = subprocess.run([kubectl_binary(), "--server", lab.api(1), "top", what],
                              env=env, capture_output=True, text=True, timeout=60)
        return done.returncode == 0 and all(n in done.stdout for n in names)

    # Each agent samples its cgroups every few seconds: the first figures take a while.
    until(lambda: top("pods", [p["metadata"]["name"] for p in lab.ready_pods()]), 60,
          "kubectl top pods naming the pods of all three nodes")
    until(lambda: top("nodes", ["node1", "node2", "node3"]), 60,
          "kubectl top nodes naming the three nodes")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    forward = subprocess.Popen([kubectl_binary(), "--server", lab.api(1), "port-forward",
                                f"pod/{pod}", f"{port}:8080"], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    answer = ""
    try:
        answer = until(lambda: httpx.get(f"http://127.0.0.1:{port}/", timeout=5).text, 30,
                       "an answer through port-forward")
    finally:
        forward.terminate()
        said = forward.communicate(timeout=10)[0]
    assert pod in answer, said


def test_kill_9_of_the_leaders_agent_loses_nothing(lab):
    healthy(lab)
    before = snapshot(lab)
    old = lab.leader()
    others = [i for i in (1, 2, 3) if i != old]
    acked: list[str] = []
    stop = threading.Event()

    def writer() -> None:  # through a follower's API, which forwards to the leader
        n = 0
        while not stop.is_set():
            name = f"w-{n}"
            try:
                r = lab.http.post(f"{lab.api(others[0])}/api/v1/namespaces/default/configmaps",
                               json={"metadata": {"name": name}, "data": {"n": str(n)}}, timeout=3)
                if r.status_code == 201:
                    acked.append(name)
                    n += 1
            except httpx.HTTPError:
                pass
            time.sleep(0.02)
    t = threading.Thread(target=writer, daemon=True)
    with Client(f"http://{lab.addresses[others[1]]}:30080/") as client:
        t.start()
        time.sleep(1.0)
        killed_at = time.monotonic()
        lab.stop_agent(old, 9)
        new = until(lambda: lab.leader(set(others)), 30, "a new leader")
        print(f"\nnew leader {new} {time.monotonic() - killed_at:.2f} s after kill -9 of {old}")
        # Back at once, as systemd restarts it (RestartSec=2s), and it adopts its pods: gossip
        # declares its node failed in ~2 s, and with this lab's 10 s toleration of that, a
        # longer absence would have the pods evicted and replaced (the node-kill test's case).
        lab.lab("up", str(lab.n))
        at_new = len(acked)
        until(lambda: len(acked) >= at_new + 10, 30, "writes acknowledged by the new leader")
        time.sleep(1.0)
        stop.set()
        t.join(10)
    assert client.ok > 0 and not client.failures, client.failures
    have = {c["metadata"]["name"]
            for c in lab.get("/api/v1/namespaces/default/configmaps", others[0])["items"]}
    assert set(acked) <= have, sorted(set(acked) - have)  # no acknowledged write lost
    assert snapshot(lab) == before  # no pod restarted or replaced
    until(lambda: lab.ready_nodes() == {1, 2, 3}, 60, "every node Ready again")
    assert snapshot(lab) == before


def test_restarting_every_agent_one_by_one_drops_no_request(lab):
    healthy(lab)
    before = snapshot(lab)
    with Client(f"http://{lab.addresses[1]}:30080/") as client:
        for i in (1, 2, 3):
            lab.stop_agent(i)  # SIGTERM: a leader hands over first
            lab.up()
        time.sleep(1.0)
    assert client.ok > 0 and not client.failures, client.failures
    assert snapshot(lab) == before  # no container restarted, no pod replaced


def test_a_rolling_update_across_the_nodes_drops_no_request(lab):
    healthy(lab)
    before = set(snapshot(lab))
    with Client(f"http://{lab.addresses[2]}:30080/") as client:
        lab.nodectl("rollout", "restart", "deployment/kubia")
        lab.nodectl("rollout", "status", "deployment/kubia", "--timeout", "180s")
        until(lambda: len(lab.pods()) == 3, 60, "the old pods gone")
        time.sleep(1.0)
    assert client.ok > 0 and not client.failures, client.failures
    after = snapshot(lab)
    assert not set(after) & before and len(after) == 3  # every pod replaced
    assert len({node for node, _ in after.values()}) >= 2  # still spread


def test_a_dead_node_is_noticed_and_its_pods_replaced_elsewhere(lab):
    healthy(lab)
    leader = lab.leader()
    placed = {p["metadata"]["name"]: p["spec"]["nodeName"] for p in lab.pods()}
    # A node with a pod, not the leader's (that is the test above) if there is one.
    victim = next((int(n[4:]) for n in sorted(placed.values()) if int(n[4:]) != leader),
                  int(sorted(placed.values())[0][4:]))
    watcher = next(i for i in (1, 2, 3) if i != victim)
    dead_ips = {p["status"]["podIP"] for p in lab.pods() if p["spec"]["nodeName"] == f"node{victim}"}

    def endpoints() -> set[str]:
        ep = lab.get("/api/v1/namespaces/default/endpoints/kubia", watcher)
        return {a["ip"] for s in ep.get("subsets") or [] for a in s.get("addresses") or []}
    with Client(f"http://{lab.addresses[watcher]}:30080/") as client:
        time.sleep(1.0)
        killed_at = time.monotonic()
        lab.lab("kill", f"node{victim}")
        until(lambda: victim not in lab.ready_nodes(), 30, f"node{victim} NotReady")
        print(f"\nnode{victim} NotReady {time.monotonic() - killed_at:.2f} s after the kill")
        until(lambda: not endpoints() & dead_ips, 30, "its pods out of the Service")
        dropped_at = time.monotonic()
        until(lambda: len([p for p in lab.ready_pods()
                           if p["spec"]["nodeName"] != f"node{victim}"]) == 3, 120,
              "3 Ready pods on the other nodes")
        print(f"replacements Ready {time.monotonic() - killed_at:.2f} s after the kill")
        time.sleep(1.0)
    # Failures only from requests that went to the dead node's pods: none sent once those
    # were out of the Service, and the watcher's proxy had its moment to follow (0.5 s;
    # kube-proxy's own minimum between syncs is 1 s).  Failures are dated by when their
    # request was sent; before, by when it gave up, which made a request sent just before
    # the drop look late.
    late = [f for f in client.failures if f[0] > dropped_at + 0.5]
    assert not late, late
    assert client.ok > 0
    lab.lab("up", str(lab.n))  # on again: its stale pods are stopped, not run twice
    until(lambda: lab.ready_nodes() == {1, 2, 3}, 60, f"node{victim} Ready again")
    until(lambda: len(lab.pods()) == 3, 60, "the evicted pods gone")
    assert all(p["spec"]["nodeName"] != f"node{victim}" for p in lab.pods())


def test_a_partitioned_leader_steps_down_and_healing_leaves_no_duplicates(lab):
    healthy(lab)
    cut = lab.leader()
    others = {i for i in (1, 2, 3) if i != cut}
    lab.lab("partition", f"node{cut}")
    try:
        new = until(lambda: lab.leader(others), 30, "a leader among the others")
        assert new != cut
        # The cut-off server no longer leads (CheckQuorum) and takes no write.
        until(lambda: lab.in_node(cut, "curl", "-s", "-m", "2", f"{lab.api(cut)}/raft")
              .stdout.count('"role":"leader"') == 0, 30, "the cut-off server to step down")
        p = lab.in_node(cut, "curl", "-s", "-m", "3", "-o", "/dev/null", "-w", "%{http_code}",
                        "-X", "POST", "-H", "Content-Type: application/json", "-d",
                        '{"metadata":{"name":"split"}}',
                        f"{lab.api(cut)}/api/v1/namespaces/default/configmaps")
        assert p.stdout.strip() != "201", "the cut-off side acknowledged a write"
        until(lambda: cut not in lab.ready_nodes(), 30, f"node{cut} NotReady")
        until(lambda: len([p for p in lab.ready_pods()
                           if p["spec"]["nodeName"] != f"node{cut}"]) == 3, 120,
              "3 Ready pods on the majority side")
    finally:
        lab.lab("heal", f"node{cut}")
    until(lambda: lab.ready_nodes() == {1, 2, 3}, 60, "every node Ready after healing")
    until(lambda: len(lab.pods()) == 3, 60, "the cut-off node's stale pods gone")
    assert len(lab.leaders()) == 1
    names = lab.get("/api/v1/namespaces/default/configmaps")["items"]
    assert "split" not in {c["metadata"]["name"] for c in names}
