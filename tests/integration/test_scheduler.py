"""The scheduler, the binding subresource and node registration against the real object
store: a node reports itself from psutil, pods that fit are bound to it, pods that do
not stay Pending with kube-scheduler's message."""

from __future__ import annotations

import psutil
import pytest

from nodeagent.api.status import ApiError
from nodeagent.coordinator.scheduler import Scheduler, pod_requests
from nodeagent.nodestatus import NodeReporter
from nodeagent.objects.kinds import EVENTS, NAMESPACES, NODES, PODS, SERVICES


def pod(name: str, cpu: str | None = None, **spec) -> dict:
    c: dict = {"name": "app", "image": "kubia:latest"}
    if cpu:
        c["resources"] = {"requests": {"cpu": cpu, "memory": "16Mi"}}
    return {"metadata": {"name": name}, "spec": {"containers": [c], **spec}}


async def test_the_node_registers_with_psutil_capacity_and_reservations(objects, tmp_path):
    reporter = NodeReporter(objects, "node1", str(tmp_path), ["192.168.56.11"],
                            reserved_cpu_m=500, reserved_memory=256 * 1024 * 1024)
    node = await reporter.report()
    status = node["status"]
    assert status["capacity"]["cpu"] == str(psutil.cpu_count())
    assert status["allocatable"]["cpu"] == f"{psutil.cpu_count() * 1000 - 500}m"
    total_ki = psutil.virtual_memory().total // 1024
    assert status["capacity"]["memory"] == f"{total_ki}Ki"
    assert status["allocatable"]["memory"] == f"{total_ki - 256 * 1024}Ki"
    assert {"type": "InternalIP", "address": "192.168.56.11"} in status["addresses"]
    conds = {c["type"]: c for c in status["conditions"]}
    assert conds["Ready"]["status"] == "True" and conds["Ready"]["reason"] == "KubeletReady"
    assert set(conds) == {"Ready", "MemoryPressure", "DiskPressure", "PIDPressure"}
    assert node["metadata"]["labels"]["kubernetes.io/hostname"] == "node1"
    # A user's label and the heartbeat: the label stays, transition times stay.
    node["metadata"]["labels"]["disk"] = "ssd"
    await objects.update(NODES, None, "node1", node)
    again = await reporter.report()
    assert again["metadata"]["labels"]["disk"] == "ssd"
    assert {c["type"]: c for c in again["status"]["conditions"]}["Ready"]["lastTransitionTime"] == \
        conds["Ready"]["lastTransitionTime"]


async def test_pods_are_bound_and_unfit_ones_stay_pending_with_the_reason(objects, tmp_path):
    await NodeReporter(objects, "node1", str(tmp_path), ["192.168.56.11"]).report()
    cpus = psutil.cpu_count()
    await objects.create(PODS, "default", pod("small", "100m"))
    await objects.create(PODS, "default", pod("huge", f"{cpus * 4}"))
    await objects.create(PODS, "default", pod("picky", nodeSelector={"disk": "ssd"}))
    await Scheduler(objects).sync()
    small = objects.get(PODS, "default", "small")
    assert small["spec"]["nodeName"] == "node1"
    assert {c["type"]: c["status"] for c in small["status"]["conditions"]}["PodScheduled"] == "True"
    huge = objects.get(PODS, "default", "huge")
    assert not huge["spec"].get("nodeName")
    cond = {c["type"]: c for c in huge["status"]["conditions"]}["PodScheduled"]
    assert (cond["status"], cond["reason"]) == ("False", "Unschedulable")
    assert cond["message"] == "0/1 nodes are available: 1 Insufficient cpu."
    picky = {c["type"]: c for c in objects.get(PODS, "default", "picky")["status"]["conditions"]}
    assert picky["PodScheduled"]["message"] == (
        "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector.")
    events = {(e["involvedObject"]["name"], e["reason"]) for e in objects.list(EVENTS, "default")["items"]}
    assert ("small", "Scheduled") in events and ("huge", "FailedScheduling") in events
    # Cordon-like: unschedulable nodes take nothing new; a taint needs a toleration.
    node = objects.get(NODES, None, "node1")
    node["spec"]["taints"] = [{"key": "dedicated", "value": "db", "effect": "NoSchedule"}]
    await objects.update(NODES, None, "node1", node)
    await objects.create(PODS, "default", pod("plain"))
    await objects.create(PODS, "default", pod("tolerant", tolerations=[
        {"key": "dedicated", "operator": "Equal", "value": "db", "effect": "NoSchedule"}]))
    await Scheduler(objects).sync()
    assert not objects.get(PODS, "default", "plain")["spec"].get("nodeName")
    assert objects.get(PODS, "default", "tolerant")["spec"]["nodeName"] == "node1"


async def test_binding_sets_the_node_once(objects):
    await objects.create(PODS, "default", pod("p"))
    bound = await objects.bind("default", "p", {"target": {"kind": "Node", "name": "node1"}})
    assert bound["spec"]["nodeName"] == "node1"
    with pytest.raises(ApiError) as exc:
        await objects.bind("default", "p", {"target": {"kind": "Node", "name": "node2"}})
    assert exc.value.code == 409 and 'already assigned to node "node1"' in exc.value.message
    with pytest.raises(ApiError) as exc:
        await objects.bind("default", "p", {"target": {}})
    assert exc.value.code == 422 and "target.name" in exc.value.message


def test_requests_count_init_containers_as_kubernetes():
    p = {"spec": {"containers": [{"resources": {"requests": {"cpu": "100m"}}},
                                 {"resources": {"requests": {"cpu": "200m", "memory": "1Gi"}}}],
                  "initContainers": [{"resources": {"requests": {"cpu": "500m"}}}]}}
    assert pod_requests(p) == {"cpu": 0.5, "memory": 1024 ** 3}


async def test_load_balancer_services_get_the_ready_nodes_addresses(objects, tmp_path):
    from nodeagent.coordinator.loadbalancer import LoadBalancerController
    svc_res = SERVICES
    await NodeReporter(objects, "node1", str(tmp_path), ["192.168.56.11"]).report()
    await objects.create(svc_res, "default", {"metadata": {"name": "web"}, "spec": {
        "type": "LoadBalancer", "selector": {"app": "web"}, "ports": [{"port": 80}]}})
    await objects.create(svc_res, "default", {"metadata": {"name": "plain"}, "spec": {
        "selector": {"app": "web"}, "ports": [{"port": 80}]}})
    lb = LoadBalancerController(objects)
    await lb.sync()
    web = objects.get(svc_res, "default", "web")
    assert web["status"]["loadBalancer"]["ingress"] == [{"ip": "192.168.56.11"}]
    assert web["spec"]["ports"][0]["nodePort"] >= 30000  # reachable there, on its NodePort
    assert not (objects.get(svc_res, "default", "plain").get("status") or {}).get(
        "loadBalancer", {}).get("ingress")
    web["spec"]["type"] = "ClusterIP"
    for p in web["spec"]["ports"]:
        p.pop("nodePort", None)
    await objects.update(svc_res, "default", "web", web)
    await lb.sync()
    assert not objects.get(svc_res, "default", "web")["status"]["loadBalancer"].get("ingress")


async def _node(objects, name: str, cpu: str = "4", memory: str = "8Gi", pods: str = "110",
                labels: dict | None = None, **spec) -> None:
    await objects.create(NODES, None, {
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, **(labels or {})}},
        "spec": spec, "status": {"allocatable": {"cpu": cpu, "memory": memory, "pods": pods},
                                 "conditions": [{"type": "Ready", "status": "True"}]}})


def _placed(objects) -> dict[str, str]:
    return {p["metadata"]["name"]: p["spec"].get("nodeName", "")
            for p in objects.list(PODS, "default")["items"]}


def _message(objects, name: str) -> str:
    return {c["type"]: c for c in objects.get(PODS, "default", name)["status"]["conditions"]}[
        "PodScheduled"]["message"]


async def test_node_affinity_host_ports_and_reasons_counted_per_node(objects):
    await _node(objects, "a", labels={"zone": "z1", "gen": "3"})
    await _node(objects, "b", labels={"zone": "z2", "gen": "5"})
    await _node(objects, "c", labels={"zone": "z2", "gen": "7"}, unschedulable=True)

    def affinity(required=None, preferred=None):
        node = {}
        if required:
            node["requiredDuringSchedulingIgnoredDuringExecution"] = {"nodeSelectorTerms": required}
        if preferred:
            node["preferredDuringSchedulingIgnoredDuringExecution"] = preferred
        return {"nodeAffinity": node}
    await objects.create(PODS, "default", pod("in-z2", affinity=affinity(required=[
        {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["z2"]}]}])))
    await objects.create(PODS, "default", pod("gen-gt-4", affinity=affinity(required=[
        {"matchExpressions": [{"key": "gen", "operator": "Gt", "values": ["4"]}]}])))
    await objects.create(PODS, "default", pod("by-name", affinity=affinity(required=[
        {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["a"]}]}])))
    await objects.create(PODS, "default", pod("either", affinity=affinity(required=[  # terms: OR
        {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["nowhere"]}]},
        {"matchExpressions": [{"key": "zone", "operator": "NotIn", "values": ["z2"]}]}])))
    await objects.create(PODS, "default", pod("likes-b", affinity=affinity(preferred=[
        {"weight": 80, "preference": {"matchExpressions": [
            {"key": "gen", "operator": "In", "values": ["5"]}]}}])))
    # Host ports need a namespace Pod Security lets have them.
    await objects.patch(NAMESPACES, None, "default", {"metadata": {"labels": {
        "pod-security.kubernetes.io/enforce": "privileged"}}}, "application/merge-patch+json")
    port = [{"name": "app", "image": "kubia:latest", "ports": [{"containerPort": 8080,
                                                                  "hostPort": 8080}]}]
    for name in ("port-1", "port-2", "port-3"):
        await objects.create(PODS, "default", {"metadata": {"name": name},
                                               "spec": {"containers": port}})
    await objects.create(PODS, "default", pod("nowhere", affinity=affinity(required=[
        {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["z9"]}]}])))
    await Scheduler(objects).sync()
    placed = _placed(objects)
    assert placed["in-z2"] == "b" and placed["gen-gt-4"] == "b"  # c is cordoned
    assert placed["by-name"] == "a" and placed["either"] == "a" and placed["likes-b"] == "b"
    assert sorted(placed[p] for p in ("port-1", "port-2", "port-3")) == ["", "a", "b"]
    blocked = next(p for p in ("port-1", "port-2", "port-3") if not placed[p])
    assert _message(objects, blocked) == (
        "0/3 nodes are available: 2 node(s) didn't have free ports for the requested pod ports, "
        "1 node(s) were unschedulable.")
    assert _message(objects, "nowhere") == (
        "0/3 nodes are available: 2 node(s) didn't match Pod's node affinity/selector, "
        "1 node(s) were unschedulable.")


async def test_a_replicasets_pods_spread_and_hundreds_of_nodes_never_overfill(objects):
    """300 nodes with room for one small pod each and 300 pods: every pod bound, no node
    over its allocatable, though each pod is scored over a share of the nodes only; and a
    ReplicaSet's 3 pods on 3 equal nodes go one to each."""
    for i in range(3):
        await _node(objects, f"even-{i}")
    owner = [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web", "uid": "rs-1",
              "controller": True}]
    for i in range(3):
        await objects.create(PODS, "default", {**pod(f"web-{i}", "100m"), "metadata": {
            "name": f"web-{i}", "ownerReferences": owner}})
    await Scheduler(objects).sync()
    assert sorted(_placed(objects).values()) == ["even-0", "even-1", "even-2"]
    for i in range(3):
        await objects.delete(NODES, None, f"even-{i}")
        await objects.delete(PODS, "default", f"web-{i}", grace_period_s=0)

    for i in range(300):
        await _node(objects, f"n{i:03d}", cpu="150m", memory="1Gi")
    for i in range(300):
        await objects.create(PODS, "default", pod(f"p{i:03d}", "100m"))
    await Scheduler(objects).sync()
    placed = _placed(objects)
    assert all(placed.values()), [p for p, n in placed.items() if not n]
    assert len(set(placed.values())) == 300  # one each: a second would not fit
