"""The scheduler, the binding subresource and node registration against the real object
store: a node reports itself from psutil, pods that fit are bound to it, pods that do
not stay Pending with kube-scheduler's message."""

from __future__ import annotations

import psutil
import pytest

from nodeagent.api.status import ApiError
from nodeagent.coordinator.scheduler import Scheduler, pod_requests
from nodeagent.nodestatus import NodeReporter
from nodeagent.objects.kinds import by_kind

PODS = by_kind("Pod")
NODES = by_kind("Node")
EVENTS = by_kind("Event")


def pod(name: str, cpu: str | None = None, **spec) -> dict:  # type: ignore[no-untyped-def,type-arg]
    c: dict = {"name": "app", "image": "kubia:latest"}  # type: ignore[type-arg]
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
    svc_res = by_kind("Service")
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
