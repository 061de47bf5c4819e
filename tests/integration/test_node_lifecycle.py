"""The node lifecycle controller on a real store: gossip's verdict on a member becomes its
Node's annotation, Ready=Unknown and the unreachable taints, and goes away when the
member is back; 'nodectl get nodes -o wide' shows it."""

from __future__ import annotations

import trio

from nodeagent.agent import ensure_namespaces
from nodeagent.api.objects import ObjectStore
from nodeagent.api.tables import to_table
from nodeagent.cli.printers import render_table
from nodeagent.coordinator.nodelifecycle import ANNOTATION, UNREACHABLE, NodeLifecycle
from nodeagent.objects.kinds import ENDPOINTS, NODES, PODS, SERVICES
from nodeagent.store import LocalStore


async def test_a_failed_member_makes_its_node_unknown_and_tainted_until_it_is_back(tmp_path):
    store = LocalStore(str(tmp_path), fsync=False)
    async with trio.open_nursery() as nursery:
        await nursery.start(store.run)
        objects = ObjectStore(store)
        for name in ("n1", "n2"):
            await objects.create(NODES, None, {
                "metadata": {"name": name},
                "spec": {"taints": [{"key": "dedicated", "effect": "NoSchedule"}]},
                "status": {"conditions": [{"type": "Ready", "status": "True",
                                           "reason": "KubeletReady"}]}})
        states = {"n1": "alive", "n2": "failed"}
        controller = NodeLifecycle(objects, lambda: dict(states))
        await controller.sync()
        n1, n2 = (objects.get(NODES, None, n) for n in ("n1", "n2"))
        assert n1["metadata"]["annotations"][ANNOTATION] == "alive"
        assert [t["key"] for t in n1["spec"]["taints"]] == ["dedicated"]
        assert n2["metadata"]["annotations"][ANNOTATION] == "failed"
        assert sorted((t["key"], t["effect"]) for t in n2["spec"]["taints"]) == [
            ("dedicated", "NoSchedule"), (UNREACHABLE, "NoExecute"), (UNREACHABLE, "NoSchedule")]
        ready = next(c for c in n2["status"]["conditions"] if c["type"] == "Ready")
        assert (ready["status"], ready["reason"]) == ("Unknown", "NodeStatusUnknown")
        t = to_table("Node", [n1, n2], {})
        out = render_table(t["columnDefinitions"], t["rows"], wide=True)
        assert "GOSSIP" in out.splitlines()[0]
        assert "NotReady" in out.splitlines()[2] and "failed" in out.splitlines()[2]
        rv = n2["metadata"]["resourceVersion"]
        await controller.sync()  # nothing changed: nothing written
        assert objects.get(NODES, None, "n2")["metadata"]["resourceVersion"] == rv

        states["n2"] = "alive"  # back: the taints go (its own heartbeat sets Ready)
        await controller.sync()
        n2 = objects.get(NODES, None, "n2")
        assert [t["key"] for t in n2["spec"]["taints"]] == ["dedicated"]
        assert n2["metadata"]["annotations"][ANNOTATION] == "alive"
        nursery.cancel_scope.cancel()




def _pod(name: str, node: str, **spec: object) -> dict:
    return {"metadata": {"name": name, "namespace": "default"},
            "spec": {"nodeName": node, "containers": [{"name": "c", "image": "busybox"}], **spec},
            "status": {"phase": "Running", "conditions": [
                {"type": "Ready", "status": "True"}, {"type": "ContainersReady", "status": "True"}],
                "containerStatuses": [{"name": "c", "ready": True, "restartCount": 0}]}}


async def _ready_node(objects: ObjectStore, name: str) -> None:
    await objects.create(NODES, None, {"metadata": {"name": name}, "status": {
        "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}]}})


async def test_pods_of_a_failed_node_turn_not_ready_at_once_and_are_evicted_after_the_toleration(
        tmp_path):
    """Endpoints drop a dead node's pods in the same pass (Ready=False), and the taint
    manager evicts them once the default toleration (here 1 s) or their own runs out; a
    pod that tolerates the taint for good stays."""
    from nodeagent.coordinator.endpoints import EndpointsController
    from nodeagent.coordinator.noexecute import TaintEviction
    store = LocalStore(str(tmp_path), fsync=False)
    async with trio.open_nursery() as nursery:
        await nursery.start(store.run)
        objects = ObjectStore(store)
        objects.default_toleration_s = 1  # admission gives pods the agent's setting
        await ensure_namespaces(objects)
        for name in ("n1", "n2"):
            await _ready_node(objects, name)
        await objects.create(PODS, "default", {**_pod("web-a", "n1"), "metadata": {
            "name": "web-a", "namespace": "default", "labels": {"app": "web"}}})
        await objects.create(PODS, "default", {**_pod("web-b", "n2"), "metadata": {
            "name": "web-b", "namespace": "default", "labels": {"app": "web"}}})
        await objects.create(PODS, "default", _pod("patient", "n2", tolerations=[
            {"key": "node.kubernetes.io/unreachable", "operator": "Exists",
             "effect": "NoExecute", "tolerationSeconds": 3}]))
        await objects.create(PODS, "default", _pod("forever", "n2", tolerations=[
            {"operator": "Exists"}]))
        for name in ("web-a", "web-b", "patient", "forever"):  # status as the agents write it
            pod = objects.get(PODS, "default", name)
            await objects.update(PODS, "default", name, {**pod, "status": _pod("x", "y")["status"]},
                                 subresource="status")
        await objects.create(SERVICES, "default", {"metadata": {"name": "web"}, "spec": {
            "selector": {"app": "web"}, "ports": [{"port": 80}]}})
        endpoints = EndpointsController(objects)

        async def ready_addresses() -> list[str]:
            await endpoints.sync()
            subsets = objects.get(ENDPOINTS, "default", "web").get("subsets") or []
            return sorted(a.get("nodeName", "") for s in subsets for a in s.get("addresses") or [])

        # Pods without IPs have no endpoints; give them some.
        for i, name in enumerate(("web-a", "web-b")):
            pod = objects.get(PODS, "default", name)
            await objects.update(PODS, "default", name, {**pod, "status": {
                **pod["status"], "podIP": f"10.244.{i + 1}.5"}}, subresource="status")
        assert await ready_addresses() == ["n1", "n2"]

        states = {"n1": "alive", "n2": "failed"}
        now = [0.0]
        from nodeagent.objects.podutil import parse_time
        await NodeLifecycle(objects, lambda: dict(states)).sync()
        assert await ready_addresses() == ["n1"]  # the dead node's pod left the Service
        web_b = objects.get(PODS, "default", "web-b")
        ready = next(c for c in web_b["status"]["conditions"] if c["type"] == "Ready")
        assert (ready["status"], ready["reason"]) == ("False", "NodeNotReady")
        assert objects.get(PODS, "default", "web-a")["status"]["conditions"][0]["status"] == "True"

        taint_added = parse_time(next(t["timeAdded"] for t in objects.get(NODES, None, "n2")[
            "spec"]["taints"] if t["effect"] == "NoExecute"))
        eviction = TaintEviction(objects, default_toleration_s=1, clock=lambda: now[0])
        now[0] = taint_added + 0.5
        again = await eviction.sync()
        assert again is not None and 0.4 <= again <= 0.6  # the next one is due then
        assert not objects.get(PODS, "default", "web-b")["metadata"].get("deletionTimestamp")
        now[0] = taint_added + 1.5
        await eviction.sync()
        gone = {n for n in ("web-a", "web-b", "patient", "forever")
                if objects.get(PODS, "default", n)["metadata"].get("deletionTimestamp")}
        assert gone == {"web-b"}  # marked for deletion: its node's agent finishes it
        now[0] = taint_added + 3.5
        await eviction.sync()
        gone = {n for n in ("web-a", "web-b", "patient", "forever")
                if objects.get(PODS, "default", n)["metadata"].get("deletionTimestamp")}
        assert gone == {"web-b", "patient"}
        nursery.cancel_scope.cancel()


async def test_the_coordinator_hands_out_pod_cidrs_and_keeps_configured_ones(tmp_path):
    from nodeagent.coordinator.nodeipam import NodeIpam
    from nodeagent.noderoutes import wanted_routes
    store = LocalStore(str(tmp_path), fsync=False)
    async with trio.open_nursery() as nursery:
        await nursery.start(store.run)
        objects = ObjectStore(store)
        await objects.create(NODES, None, {"metadata": {"name": "fixed"},
                                           "spec": {"podCIDR": "10.244.0.0/24"}})
        for name in ("a", "b"):
            await _ready_node(objects, name)
        ipam = NodeIpam(objects, "10.244.0.0/16", 24)
        await ipam.sync()
        cidrs = {n: objects.get(NODES, None, n)["spec"]["podCIDR"] for n in ("fixed", "a", "b")}
        assert cidrs == {"fixed": "10.244.0.0/24", "a": "10.244.1.0/24", "b": "10.244.2.0/24"}
        assert objects.get(NODES, None, "a")["spec"]["podCIDRs"] == ["10.244.1.0/24"]
        await objects.delete(NODES, None, "a")
        await _ready_node(objects, "c")
        await ipam.sync()  # a's block is free again
        assert objects.get(NODES, None, "c")["spec"]["podCIDR"] == "10.244.1.0/24"

        # Every node routes the others' blocks via their InternalIP.
        nodes = objects.list(NODES, None)["items"]
        ips = {"fixed": "192.168.56.11", "b": "192.168.56.12", "c": "192.168.56.13"}
        for node in nodes:
            node.setdefault("status", {})["addresses"] = [
                {"type": "InternalIP", "address": ips[node["metadata"]["name"]]},
                {"type": "Hostname", "address": node["metadata"]["name"]}]
        assert wanted_routes(nodes, "b") == {"10.244.0.0/24": "192.168.56.11",
                                             "10.244.1.0/24": "192.168.56.13"}

        small = NodeIpam(objects, "10.9.0.0/30", 31)  # two blocks, both taken by others
        await objects.create(NODES, None, {"metadata": {"name": "x"}, "spec": {"podCIDR": "10.9.0.0/31"}})
        await objects.create(NODES, None, {"metadata": {"name": "y"}, "spec": {"podCIDR": "10.9.0.2/31"}})
        await objects.create(NODES, None, {"metadata": {"name": "z"}})
        await small.sync()  # no block left: z waits, nothing breaks
        assert not (objects.get(NODES, None, "z").get("spec") or {}).get("podCIDR")
        nursery.cancel_scope.cancel()


async def test_a_member_that_left_is_an_agent_restart_until_its_heartbeat_goes_stale(tmp_path):
    """A stopped agent leaves gossip but its pods keep running: its Node stays Ready while
    its heartbeat is fresh, and turns Unknown (tainted) once it is 40 s old."""
    from nodeagent.api.objects import now_rfc3339
    from nodeagent.objects.podutil import parse_time
    store = LocalStore(str(tmp_path), fsync=False)
    async with trio.open_nursery() as nursery:
        await nursery.start(store.run)
        objects = ObjectStore(store)
        beat = now_rfc3339()
        await objects.create(NODES, None, {"metadata": {"name": "n1"}, "status": {"conditions": [
            {"type": "Ready", "status": "True", "lastHeartbeatTime": beat}]}})
        now = [parse_time(beat) + 5]
        controller = NodeLifecycle(objects, lambda: {"n1": "left"}, clock=lambda: now[0])
        await controller.sync()
        n1 = objects.get(NODES, None, "n1")
        assert n1["metadata"]["annotations"][ANNOTATION] == "left"
        assert not n1["spec"].get("taints") and n1["status"]["conditions"][0]["status"] == "True"
        now[0] += 40
        await controller.sync()
        n1 = objects.get(NODES, None, "n1")
        assert {t["key"] for t in n1["spec"]["taints"]} == {UNREACHABLE}
        assert n1["status"]["conditions"][0]["status"] == "Unknown"
        nursery.cancel_scope.cancel()
