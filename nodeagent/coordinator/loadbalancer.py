"""Service load balancer, as k3s's: a LoadBalancer Service is reachable on its NodePort
at every node, so its status lists the nodes' addresses as ingress.

Ready nodes' InternalIPs, sorted; written through the status subresource when they
change (a node joining, leaving or going NotReady), and cleared when the Service
stops being of type LoadBalancer.
"""

from __future__ import annotations

from typing import Any

from nodeagent.api.status import ApiError
from nodeagent.objects.access import Objects
from nodeagent.objects.kinds import NODES, SERVICES
from nodeagent.objects.podutil import condition

__all__ = ["PREFIXES", "LoadBalancerController"]

PREFIXES = (SERVICES.prefix(None), NODES.prefix(None))
Obj = dict[str, Any]


class LoadBalancerController:
    def __init__(self, objects: Objects) -> None:
        self.objects = objects

    async def sync(self) -> float | None:
        addresses = sorted(
            a["address"] for n in self.objects.list(NODES, None)["items"]
            if (condition(n, "Ready") or {}).get("status") == "True"
            for a in (n.get("status") or {}).get("addresses") or [] if a.get("type") == "InternalIP")
        for svc in self.objects.list(SERVICES, None)["items"]:
            want = [{"ip": ip} for ip in addresses] \
                if (svc.get("spec") or {}).get("type") == "LoadBalancer" else None
            status = svc.get("status") or {}
            have = (status.get("loadBalancer") or {}).get("ingress")
            if (have or None) == (want or None):
                continue
            lb = {"ingress": want} if want else {}
            try:
                await self.objects.update(SERVICES, svc["metadata"]["namespace"],
                                          svc["metadata"]["name"],
                                          {**svc, "status": {**status, "loadBalancer": lb}},
                                          subresource="status")
            except ApiError as exc:
                if exc.code not in (404, 409):
                    raise
        return None
