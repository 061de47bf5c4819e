"""The node lifecycle controller on a real store: gossip's verdict on a member becomes its
Node's annotation, Ready=Unknown and the unreachable taints, and goes away when the
member is back; 'nodectl get nodes -o wide' shows it."""

from __future__ import annotations

import trio

from nodeagent.api.objects import ObjectStore
from nodeagent.cli.printers import table
from nodeagent.coordinator.nodelifecycle import ANNOTATION, UNREACHABLE, NodeLifecycle
from nodeagent.objects.kinds import by_kind
from nodeagent.store import LocalStore

NODES = by_kind("Node")
assert NODES is not None


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
        out = table("Node", [n1, n2], wide=True)
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
