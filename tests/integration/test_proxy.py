"""The service proxy against a real store and real rules in a namespace the test makes:
Services and EndpointSlices written through the API's object layer show up as kernel
rules (ready endpoints only), follow changes, and go away."""

from __future__ import annotations

import subprocess
import uuid

import trio
from waiting import needs_root

pytestmark = needs_root("network namespaces")

from pyroute2 import netns  # noqa: E402
from waiting import until_async  # noqa: E402

from netns.nft import NftRules  # noqa: E402
from nodeagent.api.objects import ObjectStore  # noqa: E402
from nodeagent.objects.kinds import ENDPOINT_SLICES, NAMESPACES, SERVICES  # noqa: E402
from nodeagent.proxy import service as proxy  # noqa: E402
from nodeagent.store import LocalStore  # noqa: E402


def backends(ns: str) -> str:
    return subprocess.run(["ip", "netns", "exec", ns, "nft", "list", "table", "ip", "nodeagent"],
                          capture_output=True, text=True).stdout


async def test_rules_follow_services_and_endpoints(tmp_path):
    ns = f"natest-proxy-{uuid.uuid4().hex[:6]}"
    netns.create(ns)
    rules = NftRules(["192.168.56.11"], ns)
    try:
        store = LocalStore(str(tmp_path / "store"), fsync=False)
        async with trio.open_nursery() as nursery:
            await nursery.start(store.run)
            objects = ObjectStore(store)
            await objects.create(NAMESPACES, None, {"metadata": {"name": "default"}})
            await nursery.start(proxy.run, objects, rules)
            svc, sl = SERVICES, ENDPOINT_SLICES
            await objects.create(svc, "default", {"metadata": {"name": "kubia"}, "spec": {
                "clusterIP": "10.96.0.10", "selector": {"app": "kubia"},
                "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}})
            await until_async(lambda: "10.96.0.10 . tcp . 80" in backends(ns))  # no endpoints: reject
            labels = {"kubernetes.io/service-name": "kubia"}
            await objects.create(sl, "default", {
                "metadata": {"name": "kubia-a", "labels": labels}, "addressType": "IPv4",
                "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
                "endpoints": [{"addresses": ["10.244.1.5"]},  # no conditions: ready
                              {"addresses": ["10.244.1.6"], "conditions": {"ready": True}},
                              {"addresses": ["10.244.1.9"], "conditions": {
                                  "ready": False, "serving": True, "terminating": True}}]})
            await until_async(lambda: ": 10.244.1.6 . 8080" in backends(ns))
            assert "10.244.1.5" in backends(ns) and "10.244.1.9" not in backends(ns)
            await objects.patch(sl, "default", "kubia-a", {"endpoints": [
                {"addresses": ["10.244.1.7"], "conditions": {"ready": True}}]},
                                "application/merge-patch+json")
            await until_async(lambda: ": 10.244.1.7 . 8080" in backends(ns)
                        and "10.244.1.5" not in backends(ns))
            await objects.delete(svc, "default", "kubia")
            await until_async(lambda: "10.96.0.10" not in backends(ns))
            nursery.cancel_scope.cancel()
    finally:
        rules.close()
        netns.remove(ns)
